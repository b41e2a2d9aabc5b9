# The two commands a fresh machine needs (see README.md):
#   make run    set everything up, then serve the web app on the bundled demo gallery
#   make test   set everything up (plus test-only tools), then run every test
#   make imdb   build the full IMDB gallery's index (then: make run INDEX=models/imdb-index)
# Every other target is a step of those two; each is skipped when its output is up to date.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
INDEX ?=
STORE ?=
# Extra lookalike serve flags, e.g. make run SERVE_ARGS="--queue-size 32" (README: Serving under load)
SERVE_ARGS ?=
IMDB_INDEX ?= models/imdb-index
IMDB_URL ?=

PY_STAMP := $(VENV)/.requirements.stamp
REF_STAMP := $(VENV)/.reference.stamp
EXTRAS_STAMP := $(VENV)/.extras.stamp
WEIGHTS := models/pretrained/node_modules/@vladmandic/face-api/model/face_recognition_model.bin
# The default embedder (SFace, Apache-2.0) and face detector (YuNet, MIT), from a pinned wheel.
MODEL := models/sface/embedding.keras
YUNET := models/yunet/face_detection_yunet_2023mar_int8bq.onnx
# Test-only models: the dlib port (reference, training backbone) and the opt-in ArcFace-MBF
# (non-commercial licence: installed for its tests, never served by default).
DLIB_MODEL := models/dlib-resnet/embedding.keras
MBF_MODEL := models/arcface-mbf/embedding.keras
CONVERTER := lookalike/onnx_keras.py lookalike/model_registry.py
FRONTEND_DIST := webapp-frontend/dist/index.html
FRONTEND_MODULES := webapp-frontend/node_modules/.package-lock.json
DEMO_INDEX := models/demo-index/index.json
CHROMIUM := /usr/bin/chromium

.PHONY: run test setup setup-test serve imdb lint format bench notebooks clean

run: setup serve

test: setup setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd webapp-frontend && npm run lint && npm test
	$(BIN)/python -m pytest

setup: $(PY_STAMP) $(MODEL) $(YUNET) $(FRONTEND_DIST) $(DEMO_INDEX)

setup-test: $(REF_STAMP) $(CHROMIUM) $(DLIB_MODEL) $(MBF_MODEL)

# make run INDEX=models/imdb-index [STORE=milvus-lite:///path/faces.db] serves another index.
serve:
	$(BIN)/lookalike serve --host $(HOST) --port $(PORT) $(if $(INDEX),--index $(INDEX)) \
		$(if $(STORE),--store $(STORE)) $(SERVE_ARGS)

# The full IMDB gallery (~7 GB download, hours on a CPU; resumable: run it again after a stop).
imdb: setup
	$(BIN)/lookalike gallery imdb --index $(IMDB_INDEX) $(if $(IMDB_URL),--url $(IMDB_URL))
	@echo "serve it: make run INDEX=$(IMDB_INDEX)"

$(PY_STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(REF_STAMP): requirements-reference.txt $(PY_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-reference.txt
	touch $@

# The optional extras (.[milvus], .[ray]), pinned, so that their tests run in CI.
setup-test: $(EXTRAS_STAMP)

$(EXTRAS_STAMP): requirements-extras.txt $(PY_STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.txt -r requirements-extras.txt
	touch $@

# The pretrained face-recognition weights come from a pinned npm package (integrity-checked by
# its lockfile) and are converted once into a Keras model.
$(WEIGHTS): models/pretrained/package-lock.json
	cd models/pretrained && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(DLIB_MODEL): $(WEIGHTS) lookalike/dlib_network.py lookalike/tfjs_weights.py lookalike/model_files.py $(PY_STAMP)
	$(BIN)/lookalike model install dlib-resnet

# SFace, ArcFace-MBF and YuNet: the exact wheel is fetched with pip, sha256-checked, and the
# ONNX file converted to Keras (lookalike/onnx_keras.py); nothing is fetched at run time.
$(MODEL): $(CONVERTER) lookalike/model_files.py $(PY_STAMP)
	$(BIN)/lookalike model install sface

$(MBF_MODEL): $(CONVERTER) lookalike/model_files.py $(PY_STAMP)
	$(BIN)/lookalike model install arcface-mbf

$(YUNET): lookalike/model_registry.py $(PY_STAMP)
	$(BIN)/lookalike model install yunet

$(FRONTEND_MODULES): webapp-frontend/package-lock.json
	cd webapp-frontend && npm ci --no-audit --no-fund

$(FRONTEND_DIST): $(FRONTEND_MODULES) $(shell find webapp-frontend/src webapp-frontend/public -type f 2>/dev/null) \
		webapp-frontend/index.html webapp-frontend/vite.config.ts webapp-frontend/package.json
	cd webapp-frontend && npm run build

$(DEMO_INDEX): $(MODEL) $(YUNET) data/sample/imdb_crop/imdb.mat
	$(BIN)/lookalike index build --imdb data/sample --out models/demo-index

# Debian's Chromium for the browser tests (downloaded browser builds cannot work here).
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	cd webapp-frontend && npm run lint

format:
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: setup setup-test
	$(BIN)/lookalike bench all

# Re-run the six notebooks in place with their default parameters (outputs are committed).
notebooks: setup $(DLIB_MODEL)
	for notebook in notebooks/0*.ipynb; do \
		$(BIN)/papermill --cwd notebooks "$$notebook" "$$notebook" || exit 1; \
	done

clean:
	rm -rf $(VENV) webapp-frontend/node_modules webapp-frontend/dist models/pretrained/node_modules \
		models/dlib-resnet models/sface models/arcface-mbf models/yunet models/pretrained/wheels \
		models/demo-index
