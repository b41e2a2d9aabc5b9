"""The page and the server share one contract (``lookalike_web.contract``): they cannot drift.

- The page's ``src/api/contract.ts`` (limit, error codes, response types) and
  ``docs/openapi.json`` are generated from the contract: stale copies fail here.
- The real server's answers, on the real model and index, fit the contract's schemas: here for
  every endpoint, and in every other API test too (``contract_check``, installed on the test
  apps by ``conftest.py``).
"""

from __future__ import annotations

import ast
import copy
import io
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from contract_check import check, violations
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from lookalike import explain, images
from lookalike import match as matching
from lookalike_web import api, codegen, contract, errors

SERVER_SOURCES = [api.__file__, errors.__file__]
JSON = "application/json"


def test_the_generated_files_are_current():
    stale = [str(path.relative_to(codegen.REPO_ROOT)) for path in codegen.stale_files()]
    assert stale == [], f"out of date: {stale}; regenerate with `{contract.REGENERATE}`"


def _raised_codes() -> dict[str, int]:
    """``ApiError(status, "code", ...)`` calls in the server's source: code → status."""
    found = {}
    for source in SERVER_SOURCES:
        for node in ast.walk(ast.parse(Path(source).read_text(encoding="utf-8"))):
            is_call = isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ApiError"
            if is_call and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                status = node.args[0]
                if isinstance(status, ast.Constant):
                    found[node.args[1].value] = status.value
    return found


def test_every_code_the_server_sends_is_in_the_contract_with_its_status():
    sent = _raised_codes()
    sent |= {code: status for status, (code, _) in errors._HTTP_ERRORS.items()}
    sent[errors._INTERNAL[0]] = 500
    sent |= {code: api.IMAGE_ERROR_STATUS.get(code, 400) for code in images.ERROR_CODES}
    assert {"missing_image", "no_face", "busy", "not_found"} <= set(sent)  # the scan works
    assert {code: contract.status_of(code) for code in sent} == sent
    assert set(contract.ERROR_CODES) == set(sent)  # and the contract lists nothing stale


def test_the_contract_has_the_servers_values():
    schemas = contract.SCHEMAS
    assert tuple(schemas["Gender"]["enum"]) == matching.GENDERS
    assert tuple(schemas["RegionName"]["enum"]) == explain.REGIONS
    assert schemas["ExplainResponse"]["properties"]["method"] == {"const": explain.METHOD}
    assert (contract.MAX_TOP_K, contract.DEFAULT_TOP_K) == (matching.MAX_TOP_K, api.DEFAULT_TOP_K)


def test_a_photo_at_the_pages_limit_is_not_refused_for_its_size(client: FlaskClient, app: Flask):
    at_limit = b"\x00" * contract.MAX_UPLOAD_BYTES  # the largest file the page lets through
    form = {"image": (io.BytesIO(at_limit), "big.jpg")}
    response = client.post("/api/match", data=form, content_type="multipart/form-data")
    assert response.get_json()["error"]["code"] == "not_an_image"  # read, not refused: 415
    over = {"image": (io.BytesIO(b"\x00" * app.config["MAX_CONTENT_LENGTH"]), "big.jpg")}
    response = client.post("/api/match", data=over, content_type="multipart/form-data")
    body = response.get_json()
    assert response.status_code == 413 and body["error"]["code"] == "too_large"
    assert "15 MB" in body["error"]["message"]  # the photo limit, as the page words it


# -- the real server's answers ---------------------------------------------------------------------


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def _post(client: FlaskClient, path: str, photo: bytes | None, **fields: str) -> Any:
    form: dict[str, Any] = dict(fields)
    if photo is not None:
        form["image"] = (io.BytesIO(photo), "photo.jpg")
    return client.post(path, data=form, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def answers(app: Flask, face_photo_path: Path) -> dict[str, tuple[str, str, Any]]:
    """One real answer of each endpoint and each kind of error: name → (method, path, response)."""
    client = app.test_client()
    photo = face_photo_path.read_bytes()
    blank = _jpeg(Image.new("RGB", (320, 240), "grey"))
    got: dict[str, tuple[str, str, Any]] = {}

    def ask(name: str, method: str, path: str, upload: bytes | None = None, **fields: str) -> Any:
        if method == "GET":
            response = client.get(path, headers=fields)
        else:
            response = _post(client, path, upload, **fields)
        got[name] = (method, path, response)
        return response

    ask("health", "GET", "/api/health")
    face = ask("match", "POST", "/api/match", photo).get_json()["faces"][0]
    best, box = face["matches"][0], ",".join(map(str, face["box"]))
    ask("match_female", "POST", "/api/match", photo, top_k="2", gender="female")
    ask("explain", "POST", "/api/explain", photo, photo_id=str(best["photo_id"]), box=box)
    ask("celebrity", "GET", f"/api/celebrities/{best['celebrity_id']}")
    etag = ask("photo", "GET", best["photo_url"]).headers["ETag"]
    ask("photo_unchanged", "GET", best["photo_url"], **{"If-None-Match": etag})
    # Errors: one of each kind the contract names for these endpoints.
    ask("missing_image", "POST", "/api/match")
    ask("bad_parameter", "POST", "/api/match", photo, top_k="0")
    ask("not_an_image", "POST", "/api/match", b"plain text")
    ask("no_face", "POST", "/api/match", blank)
    ask("cannot_explain", "POST", "/api/explain", blank, photo_id="0")
    ask("no_photo", "GET", "/api/photos/999999")
    ask("no_celebrity", "GET", "/api/celebrities/nobody")
    ask("no_address", "GET", "/api/nothing-here")
    ask("wrong_method", "GET", "/api/match")
    return got


EXPECTED_STATUS = {
    "health": 200,
    "match": 200,
    "match_female": 200,
    "explain": 200,
    "celebrity": 200,
    "photo": 200,
    "photo_unchanged": 304,
    "missing_image": 400,
    "bad_parameter": 400,
    "not_an_image": 415,
    "no_face": 422,
    "cannot_explain": 422,
    "no_photo": 404,
    "no_celebrity": 404,
    "no_address": 404,
    "wrong_method": 405,
}


@pytest.mark.parametrize("name", EXPECTED_STATUS)
def test_the_servers_answers_fit_the_contract(answers: dict, name: str) -> None:
    method, path, response = answers[name]
    assert response.status_code == EXPECTED_STATUS[name], response.get_data(as_text=True)
    check(method, path, response)  # the schema of that status, and the code that goes with it
    if response.status_code >= 400:
        assert response.get_json()["error"]["code"] in {name, "not_found", "method_not_allowed"}


def test_health_without_batching_fits_the_contract(make_app: Callable[..., Flask]) -> None:
    response = make_app(BATCHING=False).test_client().get("/api/health")
    assert response.get_json()["serving"] is None
    check("GET", "/api/health", response)


def test_every_test_app_checks_its_answers_against_the_contract(app: Flask) -> None:
    hooks = app.after_request_funcs.get(None, [])
    assert any(hook.__name__ == "_check_contract" for hook in hooks)


def _broken(body: dict, change: Callable[[dict], None]) -> dict:
    body = copy.deepcopy(body)
    change(body)
    return body


def test_answers_off_the_contract_are_caught(answers: dict) -> None:
    """The check is not vacuous: a real answer, changed the way a careless server change would
    change it, breaks the contract."""
    match = answers["match"][2].get_json()
    assert violations("POST", "/api/match", 200, JSON, match) == []
    changes: dict[str, Callable[[dict], None]] = {
        "a field gone": lambda body: body["faces"][0]["matches"][0].pop("score"),
        "a field renamed": lambda body: body["image"].update(w=body["image"].pop("width")),
        "an undocumented field": lambda body: body.update(debug=True),
        "a number as text": lambda body: body["faces"][0]["matches"][0].update(score="93"),
        "a box of three": lambda body: body["faces"][0]["box"].pop(),
        "an unknown gender": lambda body: body["faces"][0]["matches"][0].update(gender="other"),
        "a stage renamed": lambda body: body["timings_ms"].update(
            find=body["timings_ms"].pop("detect")
        ),
    }
    for what, change in changes.items():
        assert violations("POST", "/api/match", 200, JSON, _broken(match, change)), what
    error = {"error": {"code": "no_face", "message": "No face."}}
    assert violations("POST", "/api/match", 422, JSON, error) == []
    assert violations("POST", "/api/match", 400, JSON, error)  # a code with another status
    assert violations("GET", "/api/health", 422, JSON, error)  # a status health never answers
    assert violations("POST", "/api/match", 200, "text/html", None)
    assert violations("GET", "/api/no-such-address", 200, JSON, {})


def _fetch(url: str, form: dict[str, Any] | None = None) -> tuple[int, str, Any]:
    """``(status, content type, JSON body or None)`` of a GET, or a multipart POST of ``form``."""
    request = urllib.request.Request(url)
    if form is not None:
        boundary, request.data = encode_multipart(MultiDict(form))
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, data = error.code, error.headers, error.read()
    content_type = headers.get("Content-Type", "")
    return status, content_type, json.loads(data) if content_type == JSON else None


def test_the_pages_mock_api_answers_as_the_contract_says(face_photo_path: Path) -> None:
    """The page's development stand-in (webapp-frontend/scripts/mock_api.py) keeps the contract,
    so the page shown against it behaves as against the real server."""
    sys.path.insert(0, str(codegen.REPO_ROOT / "webapp-frontend" / "scripts"))
    import mock_api

    def upload(data: bytes) -> dict[str, Any]:
        return {"image": FileStorage(io.BytesIO(data), "photo.jpg")}

    server = mock_api.start(0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        asked = {
            ("GET", "/api/health", None): 200,
            ("POST", "/api/match", "face"): 200,
            ("POST", "/api/match", "text"): 415,
            ("POST", "/api/match", "blank"): 422,
            ("GET", "/api/photos/0", None): 200,
            ("GET", "/api/photos/99999", None): 404,
        }
        photos = {
            "face": face_photo_path.read_bytes(),
            "text": b"plain text",
            "blank": _jpeg(Image.new("RGB", (320, 240), "grey")),
        }
        for (method, path, photo), expected in asked.items():
            form = upload(photos[photo]) if photo else None
            status, content_type, body = _fetch(base + path, form)
            assert status == expected, (path, photo, body)
            assert violations(method, path, status, content_type, body) == [], (path, photo)
    finally:
        server.shutdown()


# -- the TypeScript generator ----------------------------------------------------------------------


def test_the_typescript_says_what_the_schema_says():
    schemas = {
        "Pair": {"type": "array", "prefixItems": [{"type": "integer"}] * 2, "items": False},
        "Thing": {
            "description": "A thing.",
            "type": "object",
            "properties": {
                "pair": {"$ref": "#/components/schemas/Pair"},
                "note": {"description": "Optional.", "type": ["string", "null"]},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "sizes": {"type": "object", "additionalProperties": {"type": "number"}},
            },
            "required": ["pair", "tags", "sizes"],
            "additionalProperties": False,
        },
    }
    assert codegen.declarations(schemas) == (
        "export type Pair = [number, number];\n\n"
        "/** A thing. */\n"
        "export interface Thing {\n"
        "  pair: Pair;\n"
        "  /** Optional. */\n"
        "  note?: string | null;\n"
        "  tags: ('a' | 'b')[];\n"
        "  sizes: Record<string, number>;\n"
        "}\n"
    )


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}},  # other properties unsaid
        {"type": "string", "not": {"const": ""}},  # a keyword it does not know
        {"type": "array", "prefixItems": [{"type": "string"}]},  # an open-ended tuple
    ],
)
def test_the_typescript_generator_refuses_what_it_cannot_say(schema: dict) -> None:
    with pytest.raises(ValueError):
        codegen.declarations({"Thing": schema})
