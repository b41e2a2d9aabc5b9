"""The page and the server share one contract (``lookalike_web.contract``): they cannot drift."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from lookalike import config, images
from lookalike_web import api, contract, errors

GENERATED = config.REPO_ROOT / "webapp-frontend" / "src" / "api" / "contract.ts"
SERVER_SOURCES = [api.__file__, errors.__file__]


def test_the_page_has_the_servers_contract():
    assert GENERATED.read_text() == contract.typescript(), (
        "webapp-frontend/src/api/contract.ts is out of date: regenerate it with "
        "`.venv/bin/python -m lookalike_web.contract > webapp-frontend/src/api/contract.ts`"
    )


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
