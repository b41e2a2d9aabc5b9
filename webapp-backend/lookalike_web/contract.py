"""The HTTP contract's shared values, in one place: the upload limit and every error code.

The server reads them here; the page's copy, ``webapp-frontend/src/api/contract.ts``, is
generated from this module and ``webapp-backend/tests/test_contract.py`` fails when it is out of
date (regenerate with ``python -m lookalike_web.contract > webapp-frontend/src/api/contract.ts``);
the page's mock API (``webapp-frontend/scripts/mock_api.py``) imports this module too. Prose:
``docs/api.md``.
"""

from __future__ import annotations

# The largest photo a client may send; the page refuses bigger files before uploading.
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
# The whole request may be larger by the multipart form around the photo (Flask's 413 limit).
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 64 * 1024

# Every ``error.code`` the API answers with: its HTTP status and when it happens.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request could not be understood"),
    "missing_image": (400, "no file field named 'image'"),
    "empty_file": (400, "the uploaded file is empty"),
    "bad_parameter": (400, "top_k, gender, photo_id or box out of range"),
    "not_found": (404, "no such page, celebrity or photo"),
    "method_not_allowed": (405, "the address does not accept that method"),
    "too_large": (413, "an upload over the limit, or an image over the pixel limit"),
    "not_an_image": (415, "the file is not an image"),
    "unsupported_image": (415, "an image format the server does not decode"),
    "no_face": (422, "no face found in the photo"),
    "corrupt_image": (422, "a truncated or damaged image"),
    "cannot_explain": (422, "no face at the given box, or none in the celebrity photo"),
    "internal_error": (500, "a bug on the server's side"),
    "busy": (503, "the queue in front of the models is full; retry after Retry-After seconds"),
}


def status_of(code: str) -> int:
    """The HTTP status that goes with an error code."""
    return ERROR_CODES[code][0]


def typescript() -> str:
    """``webapp-frontend/src/api/contract.ts``: these values for the page."""
    lines = [
        "// Generated from webapp-backend/lookalike_web/contract.py: do not edit. Regenerate with",
        "// .venv/bin/python -m lookalike_web.contract > webapp-frontend/src/api/contract.ts",
        "",
        "/** Most bytes of a photo sent to the server in one upload. */",
        f"export const MAX_UPLOAD_BYTES = {MAX_UPLOAD_BYTES};",
        "",
        "/** Every `error.code` the API answers with, and its HTTP status. */",
        "export const ERROR_STATUS = {",
        *(f"  {code}: {status}," for code, (status, _meaning) in ERROR_CODES.items()),
        "} as const;",
        "",
        "export type ErrorCode = keyof typeof ERROR_STATUS;",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(typescript(), end="")
