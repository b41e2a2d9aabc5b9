"""POST /api/explain (docs/api.md): why a match, on the real model, the real index, real photos."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from lookalike.explain import REGIONS, SUMMARY_NAMES
from lookalike_web.api import _is_demo_gallery

REGION_FIELDS = {"region", "label", "contribution", "you", "celebrity", "outline"}


def post(client: FlaskClient, path: str, data: bytes, **fields: str) -> Any:
    form: dict[str, Any] = {"image": (io.BytesIO(data), "photo.jpg"), **fields}
    return client.post(path, data=form, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def photo_bytes(face_photo: tuple[Path, str]) -> bytes:
    return face_photo[0].read_bytes()


@pytest.fixture(scope="module")
def matched(app: Flask, photo_bytes: bytes) -> dict:
    """The photo's /api/match answer: its face box and matches."""
    response = post(app.test_client(), "/api/match", photo_bytes, top_k="3")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["faces"][0]


def box_field(face: dict) -> str:
    return ",".join(str(value) for value in face["box"])


def explain(client: FlaskClient, data: bytes, match: dict, face: dict) -> Any:
    return post(client, "/api/explain", data, photo_id=str(match["photo_id"]), box=box_field(face))


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


def test_explains_the_best_match_region_by_region(
    client: FlaskClient, app: Flask, photo_bytes: bytes, matched: dict
) -> None:
    best = matched["matches"][0]
    response = explain(client, photo_bytes, best, matched)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    assert body["method"] == "occlusion"
    assert body["photo_id"] == best["photo_id"]
    regions = body["regions"]
    assert sorted(region["region"] for region in regions) == sorted(REGIONS)
    assert all(set(region) == REGION_FIELDS for region in regions)
    contributions = [region["contribution"] for region in regions]
    assert contributions == sorted(contributions, reverse=True)
    for region in regions:
        assert region["contribution"] == pytest.approx(
            (region["you"] + region["celebrity"]) / 2, abs=2e-4
        )
        assert region["outline"], region["region"]
        points = np.array([point for polygon in region["outline"] for point in polygon])
        assert points.min() >= 0 and points.max() <= 1
    # The summary names the most alike region first.
    top = regions[0]
    named = SUMMARY_NAMES.get(top["region"], top["label"].lower())
    assert body["summary"].lower().startswith(named)
    # The chips' similarity: the same faces as the match (the celebrity's re-aligned from the
    # stored thumbnail, so close to, not exactly, the match's figure).
    assert body["similarity"] == pytest.approx(best["similarity"], abs=0.08)
    size = app.extensions["lookalike.matcher"].pipeline.chip_size
    assert body["chips"]["size"] == size
    for side in ("you", "celebrity"):
        assert decode_data_url(body["chips"][side]).size == (size, size)
    assert {"detect_align", "embed", "total", "request"} <= set(body["timings_ms"])


def test_same_request_same_explanation(
    client: FlaskClient, photo_bytes: bytes, matched: dict
) -> None:
    runner_up = matched["matches"][1]
    first = explain(client, photo_bytes, runner_up, matched).get_json()
    second = explain(client, photo_bytes, runner_up, matched).get_json()
    for body in (first, second):
        del body["timings_ms"]
    assert first == second


def test_hiding_parts_of_the_same_person_lowers_the_similarity(
    client: FlaskClient, photo_bytes: bytes, matched: dict, expected_celebrity: str
) -> None:
    # The photo's own celebrity (a held-out photo of an indexed person): the same person's
    # likeness is spread over the face, so hiding a region lowers the similarity on both faces
    # for most regions, and never raises it much (another photo of the same person differs in
    # pose and expression: hiding a mouth that smiles differently may help a little).
    own = next(m for m in matched["matches"] if m["celebrity_id"] == expected_celebrity)
    body = explain(client, photo_bytes, own, matched).get_json()
    # The explanation re-aligns the celebrity's face from its thumbnail: close to the match's.
    assert abs(body["similarity"] - own["similarity"]) < 0.1
    lowered = [r for r in body["regions"] if r["you"] > 0 and r["celebrity"] > 0]
    assert len(lowered) > len(body["regions"]) / 2, body["regions"]
    assert sum(r["you"] for r in body["regions"]) > 0
    assert sum(r["celebrity"] for r in body["regions"]) > 0
    assert all(min(r["you"], r["celebrity"]) > -0.05 for r in body["regions"]), body["regions"]


def test_without_a_box_the_largest_face_is_explained(
    client: FlaskClient, photo_bytes: bytes, matched: dict
) -> None:
    best = matched["matches"][0]
    with_box = explain(client, photo_bytes, best, matched).get_json()
    response = post(client, "/api/explain", photo_bytes, photo_id=str(best["photo_id"]))
    assert response.status_code == 200
    assert response.get_json()["regions"] == with_box["regions"]


def test_a_box_on_no_face_cannot_be_explained(
    client: FlaskClient, photo_bytes: bytes, matched: dict
) -> None:
    best = matched["matches"][0]
    x, y, width, height = matched["box"]
    elsewhere = f"{x + 3 * width},{y + 3 * height},{width},{height}"
    response = post(
        client, "/api/explain", photo_bytes, photo_id=str(best["photo_id"]), box=elsewhere
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "cannot_explain"


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({}, 400, "bad_parameter"),
        ({"photo_id": "abc"}, 400, "bad_parameter"),
        ({"photo_id": "-1"}, 400, "bad_parameter"),
        ({"photo_id": "99999999"}, 404, "not_found"),
        ({"photo_id": "0", "box": "1,2,3"}, 400, "bad_parameter"),
        ({"photo_id": "0", "box": "10,10,0,40"}, 400, "bad_parameter"),
    ],
)
def test_bad_parameters(
    client: FlaskClient, photo_bytes: bytes, fields: dict, status: int, code: str
) -> None:
    response = post(client, "/api/explain", photo_bytes, **fields)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


def test_bad_uploads_get_the_match_errors(client: FlaskClient) -> None:
    missing = client.post("/api/explain", data={"photo_id": "0"})
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "missing_image"
    text = post(client, "/api/explain", b"plain text, not a photo", photo_id="0")
    assert text.status_code == 415
    assert text.get_json()["error"]["code"] == "not_an_image"


def test_photo_without_a_face_cannot_be_explained(client: FlaskClient) -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    response = post(client, "/api/explain", buffer.getvalue(), photo_id="0")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "cannot_explain"


@pytest.mark.parametrize(
    ("source", "demo"),
    [
        ({"kind": "imdb", "path": "data/sample"}, True),
        ({"kind": "imdb", "path": "data/imdb"}, False),
        ({"kind": "folders", "path": "/elsewhere/people"}, False),
        ({}, False),
    ],
)
def test_demo_gallery_is_the_bundled_sample(source: dict, demo: bool) -> None:
    assert _is_demo_gallery({"source": source}) is demo


def test_each_face_of_a_group_photo_is_explained_at_its_box(
    client: FlaskClient, group_photo: Path
) -> None:
    data = group_photo.read_bytes()
    matched = post(client, "/api/match", data, top_k="1")
    assert matched.status_code == 200
    faces = matched.get_json()["faces"]
    assert len(faces) >= 2
    photo_id = str(faces[0]["matches"][0]["photo_id"])  # one celebrity, two different faces
    answers = [
        post(client, "/api/explain", data, photo_id=photo_id, box=box_field(face)).get_json()
        for face in faces[:2]
    ]
    you = [decode_data_url(answer["chips"]["you"]) for answer in answers]
    celebrity = [answer["chips"]["celebrity"] for answer in answers]
    assert celebrity[0] == celebrity[1]
    # The two faces are different people: their chips differ, and so do their similarities.
    difference = np.abs(np.asarray(you[0], float) - np.asarray(you[1], float)).mean()
    assert difference > 20
    assert answers[0]["similarity"] != answers[1]["similarity"]
