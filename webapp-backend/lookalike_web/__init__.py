"""The lookalike web back end: a Flask app around ``lookalike.match.Matcher``.

``create_app`` loads the face models and the celebrity index once, warms them up, and serves the
JSON API under ``/api`` (docs/api.md) plus the built front end at ``/``.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path
from typing import IO, Any

from flask import Flask, Request
from flask_cors import CORS

from lookalike import batching, explain
from lookalike import config as paths
from lookalike.match import Matcher
from lookalike_web import api, contract, errors, frontend

DEFAULT_CONFIG: dict[str, Any] = {
    # None: lookalike.config's defaults (models/demo-index, models/dlib-resnet/embedding.keras).
    "INDEX_DIR": None,
    "MODEL_PATH": None,
    # "yunet" or "mtcnn"; None: the detector the index was built with.
    "DETECTOR": None,
    # A Milvus store URI (lookalike.milvus_store); None: $LOOKALIKE_STORE, else search in-process.
    "STORE": None,
    # Whole-request limit (the photo limit plus the form around it, lookalike_web.contract);
    # Flask answers 413 (JSON under /api) above it.
    "MAX_CONTENT_LENGTH": contract.MAX_REQUEST_BYTES,
    "FRONTEND_DIST": paths.REPO_ROOT / "webapp-frontend" / "dist",
    # Pages served from elsewhere that call the API directly: the Vite dev server's origin (its
    # own /api proxy needs no CORS, but a page opened at :5173 calling :5000 does).
    "CORS_ORIGINS": ["http://localhost:5173", "http://127.0.0.1:5173"],
    # One model call at a time; off because Matcher is thread-safe (see benchmarks/bench_api.py).
    # Only used with BATCHING off.
    "SERIALIZE_MATCHING": False,
    # Batching across requests (lookalike.batching; README "Serving under load"): photos that
    # arrive together are detected and embedded together by one model thread.
    "BATCHING": True,
    "BATCH_SIZE": 8,  # photos per batch
    "BATCH_WAIT_MS": 5.0,  # wait for more photos, only while others are being decoded
    "QUEUE_SIZE": 16,  # photos waiting for the models; more get 503 + Retry-After at once
    "QUEUE_DEADLINE_S": 10.0,  # a photo that waited longer in the queue gets 503
    "MODEL_THREADS": 2,  # threads taking batches off the queue (one detects, one embeds)
}


class InMemoryUploadRequest(Request):
    """A request whose uploaded files stay in memory.

    Werkzeug spools uploads over 500 kB to a temporary file; user photos must never touch the
    disk, and ``MAX_CONTENT_LENGTH`` already bounds the memory this takes.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: load and warm up the model and index (once), register the routes.

    Settings: ``DEFAULT_CONFIG``, then ``LOOKALIKE_WEB_*`` environment variables, then
    ``test_config`` (any Flask setting may be given too). Raises
    ``lookalike.index.IndexFormatError`` or ``FileNotFoundError`` when the index or the model
    is missing, so a server never starts half-working.
    """
    app = Flask(__name__)
    app.request_class = InMemoryUploadRequest
    app.config.from_mapping(DEFAULT_CONFIG)
    # Deployment overrides, e.g. LOOKALIKE_WEB_MAX_CONTENT_LENGTH=20000000 (values read as JSON).
    app.config.from_prefixed_env("LOOKALIKE_WEB")
    if test_config:
        app.config.from_mapping(test_config)
    index_dir = Path(app.config["INDEX_DIR"] or paths.default_index_dir())
    app.config["INDEX_DIR"] = index_dir

    started = time.perf_counter()
    from lookalike.search import default_store

    matcher = Matcher(
        index_dir,
        app.config["MODEL_PATH"],
        store=app.config["STORE"] or default_store(),
        detector=app.config["DETECTOR"],
    )
    matcher.warm_up()
    explain.warm_up(matcher.pipeline)  # the "why this match" batch has its own shape
    app.extensions["lookalike.matcher"] = matcher
    app.extensions["lookalike.index_tag"] = _index_tag(index_dir)
    app.extensions["lookalike.match_lock"] = (
        threading.Lock() if app.config["SERIALIZE_MATCHING"] else None
    )
    if app.config["BATCHING"]:
        batcher = batching.BatchingMatcher(matcher, _batch_settings(app.config))
        batcher.warm_up()  # every embedding call size a batch makes, before the first request
        app.extensions["lookalike.batcher"] = batcher
    app.logger.info(
        "index %s (%d photos, %d celebrities) and model loaded and warmed up in %.1f s",
        index_dir,
        len(matcher.index),
        len(matcher.index.celebrities),
        time.perf_counter() - started,
    )

    CORS(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    errors.register_error_handlers(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(frontend.bp)
    return app


def _batch_settings(config: dict[str, Any]) -> batching.BatchSettings:
    return batching.BatchSettings(
        max_batch=int(config["BATCH_SIZE"]),
        max_wait_ms=float(config["BATCH_WAIT_MS"]),
        queue_size=int(config["QUEUE_SIZE"]),
        deadline_s=float(config["QUEUE_DEADLINE_S"]),
        model_threads=int(config["MODEL_THREADS"]),
    )


def _index_tag(index_dir: Path) -> str:
    # index.json holds the build time, counts and model hash: it changes with every rebuild.
    return hashlib.sha256((index_dir / "index.json").read_bytes()).hexdigest()[:16]
