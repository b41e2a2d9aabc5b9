"""JSON errors for the API: ``{"error": {"code": ..., "message": ...}}`` with a fitting status.

Every failure under ``/api`` ends here, so the front end never has to parse an HTML error page:
our own :class:`ApiError`, Werkzeug's HTTP errors (404, 405, 413 from ``MAX_CONTENT_LENGTH``) and,
as a last resort, any unexpected exception (a generic 500; the details go to the log only).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from lookalike_web import contract

# Werkzeug's status → our machine-readable code and a message for a person.
_HTTP_ERRORS = {
    400: ("bad_request", "The request could not be understood."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that HTTP method."),
    413: ("too_large", "The upload is larger than {limit}. Try a smaller photo."),
}
_INTERNAL = ("internal_error", "Something went wrong on our side. Please try again.")


class ApiError(Exception):
    """An error the API reports to the client as-is: HTTP status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}  # e.g. Retry-After on a 503


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    """The contract's error body with ``status``."""
    return jsonify({"error": {"code": code, "message": message}}), status


def _is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _size_text(size: int) -> str:
    # Binary megabytes, as the page writes them (webapp-frontend/src/lib/files.ts).
    return f"{size / 2**20:.3g} MB" if size >= 2**20 else f"{size / 2**10:.3g} kB"


def handle_api_error(error: ApiError) -> tuple[Response, int]:
    """Our own errors: already in the contract's terms."""
    response, status = error_response(error.status, error.code, error.message)
    response.headers.update(error.headers)
    return response, status


def handle_http_exception(error: HTTPException) -> tuple[Response, int] | HTTPException:
    """Werkzeug's errors: JSON under ``/api``, Flask's usual page elsewhere."""
    if not _is_api_request():
        return error
    status = error.code or 500
    code, message = _HTTP_ERRORS.get(status, (f"http_{status}", error.description or ""))
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        form = contract.MAX_REQUEST_BYTES - contract.MAX_UPLOAD_BYTES  # not the photo's
        message = message.format(limit=_size_text(limit - form) if limit else "the size limit")
    response, status = error_response(status, code, message)
    if status == MethodNotAllowed.code and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response, status


def handle_unexpected(error: Exception) -> tuple[Response, int] | HTTPException:
    """Anything not foreseen: logged with its traceback (never the upload), generic 500 out.

    HTTP errors never get here: Flask picks the most specific handler, the one above.
    """
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    if not _is_api_request():
        return InternalServerError()
    return error_response(500, *_INTERNAL)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the whole app (blueprint handlers cannot see routing errors)."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
