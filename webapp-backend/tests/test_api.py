"""The HTTP contract of docs/api.md, through Flask's test client, on the real matcher and index."""

from __future__ import annotations

import io
import logging
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import werkzeug.formparser
import werkzeug.wrappers.request
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from lookalike import config
from lookalike.cli import main as lookalike_main
from lookalike.fixtures import png_header_only
from lookalike.match import MAX_FACES

MATCH_FIELDS = {
    "celebrity_id",
    "name",
    "similarity",
    "score",
    "photo_id",
    "photo_url",
    "age",
    "photo_year",
    "gender",
}


# --------------------------------------------------------------------------------------------
# Helpers: uploads made in memory from real photos
# --------------------------------------------------------------------------------------------


def encode(image: Image.Image, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def post_image(client: FlaskClient, data: bytes, filename: str = "photo.jpg", **fields: str) -> Any:
    form: dict[str, Any] = {"image": (io.BytesIO(data), filename), **fields}
    return client.post("/api/match", data=form, content_type="multipart/form-data")


def assert_error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def assert_match_body(body: dict, top_k: int = 5) -> None:
    """The 200 shape of POST /api/match."""
    width, height = body["image"]["width"], body["image"]["height"]
    assert body["faces_total"] >= len(body["faces"]) >= 1
    assert {"total", "request", "detect", "embed"} <= set(body["timings_ms"])
    areas = []
    for face in body["faces"]:
        x, y, w, h = face["box"]
        assert w > 0 and h > 0
        # Boxes are in the decoded image's pixels (a detector box may overhang an edge a bit).
        assert -0.25 * w <= x and x + w <= width + 0.25 * w
        assert -0.25 * h <= y and y + h <= height + 0.25 * h
        areas.append(w * h)
        matches = face["matches"]
        assert 1 <= len(matches) <= top_k
        assert all(set(match) == MATCH_FIELDS for match in matches)
        scores = [match["score"] for match in matches]
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= score <= 100 for score in scores)
        assert len({match["celebrity_id"] for match in matches}) == len(matches)
        for match in matches:
            assert match["photo_url"] == f"/api/photos/{match['photo_id']}"
            assert -1.0 <= match["similarity"] <= 1.0
    # Largest face first (boxes are rounded to whole pixels, so allow for that).
    assert all(a >= b * 0.97 for a, b in zip(areas, areas[1:], strict=False))


def top_match(body: dict) -> str:
    return body["faces"][0]["matches"][0]["celebrity_id"]


def no_face_image() -> Image.Image:
    """A smooth colour gradient: decodes fine, holds no face."""
    y, x = np.mgrid[0:360, 0:480]
    pixels = np.stack([x * 255 // 479, y * 255 // 359, (x + y) * 255 // 838], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def padded(image: Image.Image, extra_height: int) -> Image.Image:
    """``image`` on a taller white canvas, so its width and height differ."""
    canvas = Image.new("RGB", (image.width, image.height + extra_height), "white")
    canvas.paste(image, (0, 0))
    return canvas


def collage(app: Flask, count: int) -> Image.Image:
    """``count`` real face thumbnails from the index on a grid, with gaps between them."""
    index = app.extensions["lookalike.matcher"].index
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    tile, gap = 160, 24
    sheet = Image.new("RGB", (columns * (tile + gap), rows * (tile + gap)), "white")
    for number in range(count):
        with Image.open(io.BytesIO(index.thumbnail(number % len(index)))) as thumbnail:
            face = thumbnail.convert("RGB").resize((tile, tile))
        row, column = divmod(number, columns)
        sheet.paste(face, (column * (tile + gap) + gap // 2, row * (tile + gap) + gap // 2))
    return sheet


# --------------------------------------------------------------------------------------------
# GET /api/health, /api/celebrities/<id>, /api/photos/<id>
# --------------------------------------------------------------------------------------------


def test_health_reports_the_loaded_index(client: FlaskClient, app: Flask) -> None:
    index = app.extensions["lookalike.matcher"].index
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    # The version pyproject.toml publishes the package under, not the code's own constant.
    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert body["version"] == project["version"]
    assert body["model"] == index.manifest["model"]["name"]
    # The default model's weights are Apache-2.0: nothing limits what people do with it.
    assert body["model_license"]["name"] == "Apache-2.0"
    assert body["model_license"]["commercial_use"] is True
    assert body["detector"] in ("yunet", "mtcnn")
    assert body["index"] == {
        "photos": len(index),
        "celebrities": len(index.celebrities),
        # Built from the bundled sample (data/sample, relative or absolute): the demo gallery.
        "demo": Path(index.manifest["source"]["path"]).parts[-2:] == ("data", "sample"),
    }


def test_celebrity_lists_every_photo(client: FlaskClient, expected_celebrity: str) -> None:
    response = client.get(f"/api/celebrities/{expected_celebrity}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["celebrity_id"] == expected_celebrity
    assert body["name"]
    assert body["gender"] in ("female", "male", None)
    assert body["photos"]
    for photo in body["photos"]:
        assert set(photo) == {"photo_id", "photo_url", "age", "photo_year"}
        assert photo["photo_url"] == f"/api/photos/{photo['photo_id']}"
    # Every listed photo is served.
    first = client.get(body["photos"][0]["photo_url"])
    assert first.status_code == 200 and first.mimetype == "image/jpeg"


def test_unknown_celebrity_is_a_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/api/celebrities/no-such-person"), 404, "not_found")


def test_photo_is_a_cacheable_jpeg(client: FlaskClient) -> None:
    response = client.get("/api/photos/0")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    data = response.get_data()
    assert data[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(data)) as thumbnail:
        assert 100 <= thumbnail.width <= 300
    assert response.cache_control.public
    assert response.cache_control.max_age >= 24 * 3600
    etag = response.headers["ETag"]
    again = client.get("/api/photos/0", headers={"If-None-Match": etag})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/api/photos/999999", "/api/photos/-1", "/api/photos/abc"])
def test_unknown_photo_is_a_json_404(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


# --------------------------------------------------------------------------------------------
# POST /api/match: photos that work
# --------------------------------------------------------------------------------------------


def test_match_finds_the_person(
    client: FlaskClient, face_photo: tuple[Path, str], face_image: Image.Image
) -> None:
    path, celebrity_id = face_photo
    response = post_image(client, path.read_bytes(), path.name)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_match_body(body)
    assert body["image"] == {"width": face_image.width, "height": face_image.height}
    assert top_match(body) == celebrity_id  # another photo of them: the query is held out
    own = body["faces"][0]["matches"][0]
    assert own["photo_url"] != "" and own["similarity"] < 0.99  # not the very same photo
    assert response.cache_control.no_store


def test_match_top_k_and_gender(
    client: FlaskClient, face_photo: tuple[Path, str], app: Flask
) -> None:
    data = face_photo[0].read_bytes()
    body = post_image(client, data, top_k="2").get_json()
    assert_match_body(body, top_k=2)
    celebrities = len(app.extensions["lookalike.matcher"].index.celebrities)
    assert len(body["faces"][0]["matches"]) == min(2, celebrities)
    response = post_image(client, data, gender="female")
    assert response.status_code == 200
    for face in response.get_json()["faces"]:
        assert all(match["gender"] == "female" for match in face["matches"])


@pytest.mark.parametrize(
    "fields",
    [{"top_k": "0"}, {"top_k": "21"}, {"top_k": "abc"}, {"top_k": "2.5"}, {"gender": "other"}],
)
def test_bad_parameters_are_400(
    client: FlaskClient, face_photo: tuple[Path, str], fields: dict[str, str]
) -> None:
    assert_error(post_image(client, face_photo[0].read_bytes(), **fields), 400, "bad_parameter")


@pytest.mark.parametrize(
    "variant",
    ["png", "webp", "bmp", "tiff", "cmyk_jpeg", "png16", "animated_gif", "rgba_png"],
)
def test_photo_formats_and_modes(
    client: FlaskClient, face_image: Image.Image, expected_celebrity: str, variant: str
) -> None:
    if variant == "cmyk_jpeg":
        data = encode(face_image.convert("CMYK"), "JPEG", quality=95)
    elif variant == "png16":
        grey = np.asarray(face_image.convert("L"), dtype=np.uint16) * 257
        data = encode(Image.fromarray(grey), "PNG")
        with Image.open(io.BytesIO(data)) as check:
            assert check.mode.startswith("I")  # really 16 bits per pixel
    elif variant == "animated_gif":
        # The face is the first frame; a blank second frame would give no face.
        blank = Image.new("RGB", face_image.size, "grey")
        data = encode(face_image, "GIF", save_all=True, append_images=[blank], duration=200)
        with Image.open(io.BytesIO(data)) as check:
            assert check.n_frames == 2
    elif variant == "rgba_png":
        data = encode(face_image.convert("RGBA"), "PNG")
    else:
        data = encode(face_image, variant.upper())
    response = post_image(client, data, f"photo.{variant}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_match_body(body)
    assert top_match(body) == expected_celebrity


def test_exif_rotated_photo_is_matched_upright(
    client: FlaskClient, face_image: Image.Image, expected_celebrity: str
) -> None:
    upright = padded(face_image, extra_height=face_image.height // 3)
    upright_body = post_image(client, encode(upright, "JPEG", quality=95)).get_json()
    # A phone stores the sensor's pixels sideways and says "rotate 90° clockwise" (orientation 6).
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    response = post_image(client, encode(sideways, "JPEG", quality=95, exif=exif.tobytes()))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_match_body(body)
    assert body["image"] == {"width": upright.width, "height": upright.height}
    assert top_match(body) == top_match(upright_body) == expected_celebrity
    tolerance = 0.05 * max(upright.size)
    for got, want in zip(body["faces"][0]["box"], upright_body["faces"][0]["box"], strict=True):
        assert abs(got - want) <= tolerance


def test_group_photo_matches_every_face(client: FlaskClient, group_photo: Path) -> None:
    response = post_image(client, group_photo.read_bytes(), group_photo.name, top_k="3")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_match_body(body, top_k=3)
    assert body["faces_total"] == len(body["faces"]) >= 2


def test_many_faces_are_matched_up_to_the_cap(client: FlaskClient, app: Flask) -> None:
    sheet = collage(app, MAX_FACES + 5)
    response = post_image(client, encode(sheet, "JPEG", quality=92), top_k="1")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_match_body(body, top_k=1)
    assert body["faces_total"] > MAX_FACES
    assert len(body["faces"]) == MAX_FACES


def test_concurrent_requests_get_the_same_answers(
    app: Flask, face_photo: tuple[Path, str], group_photo: Path
) -> None:
    uploads = [face_photo[0].read_bytes(), group_photo.read_bytes()] * 2

    def faces_of(data: bytes) -> list:
        body = post_image(app.test_client(), data).get_json()
        return body["faces"]

    alone = [faces_of(data) for data in uploads[:2]]
    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        together = list(pool.map(faces_of, uploads))
    for number, faces in enumerate(together):
        expected = alone[number % 2]
        assert [face["box"] for face in faces] == [face["box"] for face in expected]
        for got, want in zip(faces, expected, strict=True):
            assert [m["celebrity_id"] for m in got["matches"]] == [
                m["celebrity_id"] for m in want["matches"]
            ]
            assert [m["similarity"] for m in got["matches"]] == pytest.approx(
                [m["similarity"] for m in want["matches"]], abs=1e-3
            )


# --------------------------------------------------------------------------------------------
# POST /api/match: bad input is a JSON error, never a 500
# --------------------------------------------------------------------------------------------


def test_no_file_is_400(client: FlaskClient) -> None:
    assert_error(client.post("/api/match"), 400, "missing_image")
    wrong_field = {"photo": (io.BytesIO(b"abc"), "a.jpg")}
    response = client.post("/api/match", data=wrong_field, content_type="multipart/form-data")
    assert_error(response, 400, "missing_image")


def test_empty_file_is_400(client: FlaskClient) -> None:
    assert_error(post_image(client, b""), 400, "empty_file")


def test_text_file_is_415(client: FlaskClient) -> None:
    assert_error(post_image(client, b"just some notes\n" * 20, "notes.txt"), 415, "not_an_image")


def test_unsupported_image_format_is_415(client: FlaskClient, face_image: Image.Image) -> None:
    icon = encode(face_image.resize((64, 64)), "ICO")
    assert_error(post_image(client, icon, "face.ico"), 415, "unsupported_image")


def test_truncated_jpeg_is_422(client: FlaskClient, face_image: Image.Image) -> None:
    data = encode(face_image, "JPEG", quality=90)
    assert_error(post_image(client, data[: len(data) * 6 // 10]), 422, "corrupt_image")


def test_decompression_bomb_is_413(client: FlaskClient) -> None:
    bomb = png_header_only(20_000, 20_000)  # a decompression bomb
    assert len(bomb) < 10_000
    assert_error(post_image(client, bomb, "bomb.png"), 413, "too_large")


def test_oversized_upload_is_413_json(client: FlaskClient, app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = assert_error(post_image(client, b"\xff" * (limit + 1)), 413, "too_large")
    assert "MB" in body["error"]["message"]


def test_photo_without_a_face_is_422_with_advice(client: FlaskClient) -> None:
    body = assert_error(post_image(client, encode(no_face_image(), "PNG")), 422, "no_face")
    assert "front-facing" in body["error"]["message"]


# --------------------------------------------------------------------------------------------
# Privacy and unexpected failures
# --------------------------------------------------------------------------------------------


def test_uploads_stay_in_memory(
    client: FlaskClient,
    face_image: Image.Image,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Werkzeug would spool this (> 500 kB) upload to a temporary file; ours must not.
    def no_disk(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was about to be written to a temporary file")

    monkeypatch.setattr(werkzeug.wrappers.request, "default_stream_factory", no_disk)
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_disk)
    big = encode(face_image.resize((800, 800)), "BMP")  # uncompressed: ~1.9 MB
    assert len(big) > 600_000
    with caplog.at_level(logging.DEBUG):
        response = post_image(client, big, "big.bmp")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert not any("big.bmp" in record.getMessage() for record in caplog.records)


def test_unexpected_error_is_a_generic_500(
    client: FlaskClient,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = b"PRIVATE-PIXELS-7f3a"

    def broken(source: bytes, options: object = None) -> dict:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(app.extensions["lookalike.matcher"], "match", broken)
    monkeypatch.setattr(app.extensions["lookalike.batcher"], "match", broken)  # the default path
    with caplog.at_level(logging.ERROR):
        response = post_image(client, marker * 100)
    body = assert_error(response, 500, "internal_error")
    assert "exploded" not in body["error"]["message"]
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    assert "model exploded" in logged  # the operator sees what went wrong...
    assert "PRIVATE-PIXELS" not in logged  # ...never what was uploaded


# --------------------------------------------------------------------------------------------
# Routing and CORS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api"), ("get", "/api/nope"), ("post", "/api/nope"), ("delete", "/api/a/b")],
)
def test_unknown_api_route_is_a_json_404(client: FlaskClient, method: str, path: str) -> None:
    assert_error(getattr(client, method)(path), 404, "not_found")


def test_wrong_method_is_a_json_405(client: FlaskClient) -> None:
    response = client.get("/api/match")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(client.post("/api/health"), 405, "method_not_allowed")


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1:5173"])
def test_cors_allows_the_vite_dev_server(client: FlaskClient, origin: str) -> None:
    response = client.get("/api/health", headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    preflight = client.options(
        "/api/match",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_cors_refuses_other_origins_and_non_api_paths(client: FlaskClient) -> None:
    response = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    page = client.get("/", headers={"Origin": "http://localhost:5173"})
    assert "Access-Control-Allow-Origin" not in page.headers


# --------------------------------------------------------------------------------------------
# lookalike serve: refuses to start without its inputs
# --------------------------------------------------------------------------------------------


def test_serve_without_an_index_says_how_to_build_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lookalike_main(["serve", "--index", str(tmp_path / "missing")]) == 2
    assert "lookalike index build" in capsys.readouterr().err
