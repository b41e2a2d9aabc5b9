"""The HTTP contract in one place: the upload limit, every error code, and the JSON of every
response as JSON Schemas.

Two files are generated from this module, both committed, and
``webapp-backend/tests/test_contract.py`` fails when either is out of date:

- ``docs/openapi.json``: the API as an OpenAPI 3.1 document (its ``components.schemas`` are
  :data:`SCHEMAS`);
- ``webapp-frontend/src/api/contract.ts``: the limit, the error codes and a TypeScript type per
  schema, which is where the page takes its response types from.

Regenerate both with ``.venv/bin/python -m lookalike_web.codegen`` (``--check`` only says which
are stale; :mod:`lookalike_web.codegen` holds the generator). The same test validates the real
server's responses against :data:`SCHEMAS`, so the server cannot change its JSON without
changing the contract. The page's mock API (``webapp-frontend/scripts/mock_api.py``) imports
this module too. Prose: ``docs/api.md``.
"""

from __future__ import annotations

from typing import Any

# The largest photo a client may send; the page refuses bigger files before uploading.
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
# The whole request may be larger by the multipart form around the photo (Flask's 413 limit).
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
# POST /api/match's ``top_k``: matches per face (lookalike.match.MAX_TOP_K, api.DEFAULT_TOP_K).
MAX_TOP_K = 20
DEFAULT_TOP_K = 5

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
# The codes of the upload that /api/match and /api/explain both read.
_UPLOAD_ERRORS = (
    *("missing_image", "empty_file", "too_large"),
    *("not_an_image", "unsupported_image", "corrupt_image"),
)
# Any address may answer these.
ANY_ERRORS = ("bad_request", "method_not_allowed", "internal_error")

# Writes docs/openapi.json and webapp-frontend/src/api/contract.ts from this module.
REGENERATE = ".venv/bin/python -m lookalike_web.codegen"


def status_of(code: str) -> int:
    """The HTTP status that goes with an error code."""
    return ERROR_CODES[code][0]


# -- the responses' JSON --------------------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _doc(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, **schema}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(
    description: str | None, properties: dict[str, dict], *, optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An object with exactly these properties (all required but ``optional``)."""
    schema: dict[str, Any] = {"description": description} if description else {}
    return schema | {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _timings(description: str, stages: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    number = {"type": "number", "minimum": 0}
    return _object(description, dict.fromkeys(stages, number), optional=optional)


_INTEGER = {"type": "integer"}
_COUNT = {"type": "integer", "minimum": 0}
_NUMBER = {"type": "number"}
_STRING = {"type": "string"}
_JPEG_DATA_URL = {"type": "string", "pattern": "^data:image/jpeg;base64,"}

# Named JSON Schemas (2020-12, as OpenAPI 3.1 uses) of everything the API answers with.
SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorCode": {
        "description": "Every `error.code` the API answers with (`ERROR_STATUS`: its HTTP status).",
        "type": "string",
        "enum": list(ERROR_CODES),
    },
    "ErrorBody": _object(
        "The body of every error response, whatever its status.",
        {
            "error": _object(
                None,
                {
                    "code": _ref("ErrorCode"),
                    "message": _doc(
                        "Plain words for a person.", {"type": "string", "minLength": 1}
                    ),
                },
            )
        },
    ),
    "Box": {
        "description": "`[x, y, w, h]` in pixels of the decoded, EXIF-upright image.",
        "type": "array",
        "prefixItems": [_INTEGER] * 4,
        "items": False,
        "minItems": 4,
    },
    "Gender": {"type": "string", "enum": ["female", "male"]},
    "ImageSize": _object(
        "The decoded image's size after EXIF rotation, in pixels.",
        {"width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}},
    ),
    "Match": _object(
        "One celebrity (their best-matching photo) for one face.",
        {
            "celebrity_id": _STRING,
            "name": _STRING,
            "similarity": _doc(
                "Raw cosine similarity, -1..1.", {"type": "number", "minimum": -1, "maximum": 1}
            ),
            "score": _doc(
                "Calibrated look-alike score, 0..100.",
                {"type": "number", "minimum": 0, "maximum": 100},
            ),
            "photo_id": _COUNT,
            "photo_url": {"type": "string", "pattern": "^/api/photos/[0-9]+$"},
            "age": _doc("The celebrity's age in that photo; null when unknown.", _nullable(_COUNT)),
            "photo_year": _nullable(_INTEGER),
            "gender": _nullable(_ref("Gender")),
        },
    ),
    "Face": _object(
        None,
        {
            "box": _ref("Box"),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "matches": _doc(
                "One per celebrity, best `score` first.", {"type": "array", "items": _ref("Match")}
            ),
        },
    ),
    "MatchTimings": _timings(
        "Milliseconds per stage (`queue`: waiting for the models), `request`: the whole handler.",
        ("decode", "queue", "detect", "align", "embed", "search", "total", "request"),
        optional=("queue",),
    ),
    "MatchResponse": _object(
        "POST /api/match: the faces found (largest first, at most 20) and their look-alikes.",
        {
            "image": _ref("ImageSize"),
            "faces": {"type": "array", "items": _ref("Face"), "minItems": 1},
            "faces_total": _doc("Every face found, matched or not.", _COUNT),
            "timings_ms": _ref("MatchTimings"),
        },
    ),
    "RegionName": {"type": "string", "enum": ["eyes", "brows", "nose", "mouth", "jaw"]},
    "Polygon": {
        "description": "A polygon as [x, y] points in fractions (0..1) of a chip's side.",
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [_NUMBER, _NUMBER],
            "items": False,
            "minItems": 2,
        },
        "minItems": 3,
    },
    "RegionExplanation": _object(
        None,
        {
            "region": _ref("RegionName"),
            "label": _STRING,
            "contribution": _doc(
                "Mean drop of the cosine similarity when this region is hidden (positive: alike).",
                _NUMBER,
            ),
            "you": _doc("The drop when it is hidden on the user's face only.", _NUMBER),
            "celebrity": _doc("The drop when it is hidden on the celebrity's face only.", _NUMBER),
            "outline": {"type": "array", "items": _ref("Polygon")},
        },
    ),
    "ExplainTimings": _timings(
        "Milliseconds per stage.", ("detect_align", "embed", "total", "request")
    ),
    "ExplainResponse": _object(
        "POST /api/explain: which parts of the face carry the similarity of one match.",
        {
            "method": {"const": "occlusion"},
            "photo_id": _COUNT,
            "similarity": {"type": "number", "minimum": -1, "maximum": 1},
            "summary": _STRING,
            "regions": _doc(
                "Most alike first.", {"type": "array", "items": _ref("RegionExplanation")}
            ),
            "chips": _object(
                "The two aligned faces, `size` px square, as JPEG data URLs.",
                {"size": _COUNT, "you": _JPEG_DATA_URL, "celebrity": _JPEG_DATA_URL},
            ),
            "timings_ms": _ref("ExplainTimings"),
        },
    ),
    "ModelLicense": _object(
        "The weights' licence; the page shows `summary` when commercial use is not allowed.",
        {"name": _STRING, "commercial_use": {"type": "boolean"}, "summary": _STRING},
    ),
    "ServingStats": _object(
        "Batching across requests, for the worker process that answered.",
        {
            "queued": _COUNT,
            "queue_size": _COUNT,
            "max_batch": _COUNT,
            "max_wait_ms": _NUMBER,
            "deadline_s": _NUMBER,
            "model_threads": _COUNT,
            "batches": _COUNT,
            "photos": _COUNT,
            "mean_batch": _NUMBER,
            "largest_batch": _COUNT,
            "refused": _object(None, {"queue_full": _COUNT, "deadline": _COUNT}),
        },
    ),
    "HealthResponse": _object(
        "GET /api/health: liveness and what is loaded.",
        {
            "status": {"const": "ok"},
            "version": _STRING,
            "model": _nullable(_STRING),
            "model_title": _nullable(_STRING),
            "model_license": _ref("ModelLicense"),
            "detector": _STRING,
            "index": _object(
                None,
                {
                    "photos": _COUNT,
                    "celebrities": _COUNT,
                    "demo": _doc(
                        "Built from the small bundled gallery (data/sample).", {"type": "boolean"}
                    ),
                },
            ),
            "serving": _doc("Null when batching is off.", _nullable(_ref("ServingStats"))),
        },
    ),
    "CelebrityPhoto": _object(
        None,
        {
            "photo_id": _COUNT,
            "photo_url": {"type": "string", "pattern": "^/api/photos/[0-9]+$"},
            "age": _nullable(_COUNT),
            "photo_year": _nullable(_INTEGER),
        },
    ),
    "CelebrityResponse": _object(
        "GET /api/celebrities/{celebrity_id}: one celebrity and every indexed photo of them.",
        {
            "celebrity_id": _STRING,
            "name": _STRING,
            "gender": _nullable(_ref("Gender")),
            "photos": {"type": "array", "items": _ref("CelebrityPhoto")},
        },
    ),
}


# -- the OpenAPI document -------------------------------------------------------------------------


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema_name)}}


def _error_response(codes: list[str]) -> dict[str, Any]:
    """One error status: its codes (``x-error-codes``, each with its meaning) and body."""
    meanings = "; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in codes)
    return {"description": meanings, "x-error-codes": codes, "content": _json("ErrorBody")}


def _responses(ok: dict[str, Any], codes: tuple[str, ...]) -> dict[str, Any]:
    """200, one response per error status of ``codes``, and ``default``: what any address may
    answer (``ANY_ERRORS``)."""
    by_status: dict[str, list[str]] = {}
    for code in codes:
        by_status.setdefault(str(status_of(code)), []).append(code)
    responses = {"200": ok} | {status: _error_response(of) for status, of in by_status.items()}
    if "503" in responses:
        retry = "Whole seconds to wait before sending the same request again."
        retry_after = {"description": retry, "schema": {"type": "integer", "minimum": 1}}
        responses["503"]["headers"] = {"Retry-After": retry_after}
    responses["default"] = _error_response(list(ANY_ERRORS))
    return responses


def _form(fields: dict[str, dict], required: tuple[str, ...]) -> dict[str, Any]:
    schema = {"type": "object", "properties": fields, "required": list(required)}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def _path_parameter(name: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": schema}]


_PHOTO_FIELD = {"type": "string", "format": "binary", "description": "The photo file."}


def _match_operation() -> dict[str, Any]:
    top_k = {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": DEFAULT_TOP_K}
    gender = _doc("Only celebrities of that gender; empty: any.", _ref("Gender"))
    return {
        "summary": "Match every face of the photo against the celebrity index",
        "requestBody": _form({"image": _PHOTO_FIELD, "top_k": top_k, "gender": gender}, ("image",)),
        "responses": _responses(
            {"description": "The faces and their look-alikes", "content": _json("MatchResponse")},
            (*_UPLOAD_ERRORS, "bad_parameter", "no_face", "busy"),
        ),
    }


def _explain_operation() -> dict[str, Any]:
    fields = {
        "image": _PHOTO_FIELD,
        "photo_id": _doc("The match's `photo_id`.", _COUNT),
        "box": _doc(
            "The matched face's `box` as `x,y,w,h`; without it, the largest face.", _STRING
        ),
    }
    return {
        "summary": "Why a match: which parts of the face carry the similarity",
        "requestBody": _form(fields, ("image", "photo_id")),
        "responses": _responses(
            {"description": "The explanation", "content": _json("ExplainResponse")},
            (*_UPLOAD_ERRORS, "bad_parameter", "not_found", "cannot_explain"),
        ),
    }


def _thumbnail_operation() -> dict[str, Any]:
    jpeg = {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}
    responses = _responses({"description": "The thumbnail", "content": jpeg}, ("not_found",))
    responses["304"] = {"description": "Not modified (`If-None-Match`: its ETag)"}
    return {
        "summary": "The index's JPEG thumbnail of one photo's face (about 160x160)",
        "parameters": _path_parameter("photo_id", _COUNT),
        "responses": responses,
    }


def openapi() -> dict[str, Any]:
    """``docs/openapi.json``: the API as an OpenAPI 3.1 document (prose: ``docs/api.md``)."""
    health = {
        "summary": "Liveness and what is loaded",
        "responses": _responses({"description": "OK", "content": _json("HealthResponse")}, ()),
    }
    celebrity = {
        "summary": "One celebrity and every indexed photo of them",
        "parameters": _path_parameter("celebrity_id", _STRING),
        "responses": _responses(
            {"description": "The celebrity", "content": _json("CelebrityResponse")}, ("not_found",)
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lookalike",
            "version": "1",
            "description": (
                "Generated from webapp-backend/lookalike_web/contract.py: do not edit. "
                f"Regenerate with `{REGENERATE}`. Prose: docs/api.md."
            ),
        },
        "paths": {
            "/api/match": {"post": _match_operation()},
            "/api/explain": {"post": _explain_operation()},
            "/api/health": {"get": health},
            "/api/celebrities/{celebrity_id}": {"get": celebrity},
            "/api/photos/{photo_id}": {"get": _thumbnail_operation()},
        },
        "components": {"schemas": SCHEMAS},
    }
