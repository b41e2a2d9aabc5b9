"""Every answer of the app under test, checked against the contract (``docs/openapi.json``, made
from ``lookalike_web.contract``).

:func:`install` adds an ``after_request`` hook to a test app: each response under ``/api`` must
have a status that its operation lists, a JSON body valid against that status's schema (or the
JSON error body of a status any address may answer) and, for an error, a code that goes with
the status and the operation. A response that does not raises :class:`ContractViolation` in
the test that made the request (Flask re-raises it while ``TESTING``), so every test of the
API checks the contract, not only ``test_contract.py``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from flask import Flask, Response, request
from jsonschema import Draft202012Validator

from lookalike_web import contract

DOCUMENT = contract.openapi()
# Answered by Flask itself (CORS preflight, HEAD of a GET): not part of the contract.
UNCHECKED_METHODS = {"HEAD", "OPTIONS"}
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


class ContractViolation(AssertionError):
    """A response of the API that the contract does not allow."""


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    document = {"$ref": f"#/components/schemas/{schema_name}", **DOCUMENT}
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def schema_errors(schema_name: str, body: Any) -> list[str]:
    """How ``body`` breaks the named schema (``contract.SCHEMAS``): one line each, or []."""
    errors = _validator(schema_name).iter_errors(body)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in errors
    ]


def _operation(method: str, path: str) -> dict[str, Any] | None:
    for template, operations in DOCUMENT["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return operations.get(method.lower())
    return None


def _allowed(operation: dict[str, Any] | None, status: int) -> dict[str, Any] | None:
    """The response the contract allows for ``status``: the operation's own, plus the errors
    any address may answer (and ``not_found`` where the API has no such operation)."""
    codes = [code for code in contract.ANY_ERRORS if contract.status_of(code) == status]
    if operation is None and status == contract.status_of("not_found"):
        codes.append("not_found")
    listed = (operation or {}).get("responses", {}).get(str(status))
    if listed is None:
        return {"content": ERROR_JSON, "x-error-codes": codes} if codes else None
    return listed | {"x-error-codes": listed.get("x-error-codes", []) + codes}


def violations(
    method: str, path: str, status: int, content_type: str, body: Any | None
) -> list[str]:
    """How one response breaks the contract (``body``: its JSON, or None when it has none)."""
    allowed = _allowed(_operation(method, path), status)
    if allowed is None:
        return [f"status {status} is not in the contract of {method} {path}"]
    if "content" not in allowed:
        return []  # e.g. 304 Not Modified
    media_type = content_type.split(";")[0].strip()
    if media_type not in allowed["content"]:
        return [f"{media_type!r} is not the contract's {sorted(allowed['content'])}"]
    if media_type != "application/json":
        return []
    ref = allowed["content"][media_type]["schema"]["$ref"]
    problems = schema_errors(ref.rsplit("/", 1)[-1], body)
    code = (body or {}).get("error", {}).get("code") if status >= 400 else None
    if not problems and status >= 400 and code not in allowed["x-error-codes"]:
        problems.append(f"error code {code!r} is not one the contract lists for {status} here")
    return problems


def check(method: str, path: str, response: Response) -> None:
    """Raise :class:`ContractViolation` when ``response`` breaks the contract."""
    body = response.get_json(silent=True) if response.is_json else None
    problems = violations(method, path, response.status_code, response.content_type or "", body)
    if problems:
        raise ContractViolation(
            f"{method} {path} answered {response.status_code} outside the contract "
            "(lookalike_web.contract, docs/openapi.json):\n  " + "\n  ".join(problems)
        )


def install(app: Flask) -> Flask:
    """Check every ``/api`` response of ``app`` against the contract (see the module)."""

    @app.after_request
    def _check_contract(response: Response) -> Response:
        api = request.path == "/api" or request.path.startswith("/api/")
        if api and request.method not in UNCHECKED_METHODS:
            check(request.method, request.path, response)
        return response

    return app
