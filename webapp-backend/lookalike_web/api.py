"""The ``/api`` blueprint: HTTP in, ``lookalike.match.Matcher`` call, JSON out (docs/api.md).

No face or matching logic lives here; this module only reads requests, checks parameters and
translates the pipeline's results and exceptions into the HTTP contract.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, request

from lookalike import __version__, explain, images
from lookalike import config as paths
from lookalike.batching import Overloaded
from lookalike.images import ImageError
from lookalike.match import GENDERS, MAX_TOP_K, Matcher, MatchOptions, NoFaceError, photo_url
from lookalike_web.errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_TOP_K = 5
# Thumbnails never change for a given index; the ETag carries the index's identity, so a rebuilt
# index (whose photo ids mean other photos) is refetched once the week is over or on revalidation.
PHOTO_MAX_AGE = 7 * 24 * 3600

# lookalike.images error codes → HTTP status (docs/api.md).
IMAGE_ERROR_STATUS = {
    "empty_file": 400,
    "too_large": 413,
    "not_an_image": 415,
    "unsupported_image": 415,
    "corrupt_image": 422,
}


def get_matcher() -> Matcher:
    """The app's ``Matcher``, built once by ``create_app``."""
    return current_app.extensions["lookalike.matcher"]


def _matching_guard() -> AbstractContextManager[object]:
    # Only set when the app is configured to serialise model calls (SERIALIZE_MATCHING).
    lock = current_app.extensions.get("lookalike.match_lock")
    return lock if lock is not None else nullcontext()


def _top_k() -> int:
    raw = request.values.get("top_k", "").strip()
    if not raw:
        return DEFAULT_TOP_K
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TOP_K:
        raise ApiError(
            400, "bad_parameter", f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {raw!r}"
        )
    return value


def _gender() -> str | None:
    raw = request.values.get("gender", "").strip().lower()
    if not raw:
        return None
    if raw not in GENDERS:
        raise ApiError(
            400, "bad_parameter", f"gender must be one of {', '.join(GENDERS)}, not {raw!r}"
        )
    return raw


def _upload_bytes() -> bytes:
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(
            400,
            "missing_image",
            "No photo received: send it as multipart/form-data in a file field named 'image'.",
        )
    # The app's request class keeps uploads in memory; read them, never save them.
    return upload.stream.read()


@bp.post("/match")
def match() -> Response:
    """Match every face of the uploaded photo against the celebrity index."""
    started = time.perf_counter()
    data = _upload_bytes()  # first: the size limit (413) applies before parameter errors
    options = MatchOptions(top_k=_top_k(), gender=_gender())
    batcher = current_app.extensions.get("lookalike.batcher")
    try:
        if batcher is not None:  # the default: batched with other requests (lookalike.batching)
            result = batcher.match(data, options)
        else:
            with _matching_guard():
                result = get_matcher().match(data, options)
    except Overloaded as error:
        raise busy(error) from None
    except ImageError as error:
        raise ApiError(IMAGE_ERROR_STATUS.get(error.code, 400), error.code, error.message) from None
    except NoFaceError as error:
        raise ApiError(422, "no_face", str(error)) from None
    result["timings_ms"]["request"] = round((time.perf_counter() - started) * 1000.0, 1)
    response = jsonify(result)
    response.cache_control.no_store = True  # results about someone's face: keep no copies
    return response


def busy(error: Overloaded) -> ApiError:
    """503 with ``Retry-After``: the queue in front of the models is full, or the photo waited
    in it past the deadline (docs/api.md)."""
    return ApiError(
        503,
        "busy",
        "The server is busy right now. Please try again in a moment.",
        headers={"Retry-After": str(error.retry_after_s)},
    )


def _explain_photo_id() -> int:
    raw = request.values.get("photo_id", "").strip()
    if not raw.isdigit():
        raise ApiError(
            400, "bad_parameter", f"photo_id must be the photo_id of a match, not {raw!r}"
        )
    photo_id = int(raw)
    if photo_id >= len(get_matcher().index):
        raise ApiError(404, "not_found", f"No photo with id {photo_id}.")
    return photo_id


def _explain_box() -> tuple[float, float, float, float] | None:
    """The optional ``box`` field, "x,y,w,h" as in a match's face, as (x1, y1, x2, y2)."""
    raw = request.values.get("box", "").strip()
    if not raw:
        return None
    try:
        x, y, width, height = (float(part) for part in raw.split(","))
    except ValueError:
        x = y = width = height = -1.0
    if not (width > 0 and height > 0 and x > -width and y > -height):
        raise ApiError(400, "bad_parameter", f"box must be x,y,w,h of a matched face, not {raw!r}")
    return (x, y, x + width, y + height)


@bp.post("/explain")
def explain_match() -> Response:
    """Why a match: per-region occlusion sensitivity of the similarity (lookalike.explain)."""
    started = time.perf_counter()
    data = _upload_bytes()
    photo_id, box = _explain_photo_id(), _explain_box()
    matcher = get_matcher()
    try:
        photo = images.load_image(data)
    except ImageError as error:
        raise ApiError(IMAGE_ERROR_STATUS.get(error.code, 400), error.code, error.message) from None
    del data
    celebrity = images.load_image(matcher.index.thumbnail(photo_id))
    try:
        with _matching_guard():
            result = explain.explain_match(matcher.pipeline, photo, celebrity, box=box)
    except explain.ExplainError as error:
        raise ApiError(422, "cannot_explain", str(error)) from None
    result["photo_id"] = photo_id
    result["timings_ms"]["request"] = round((time.perf_counter() - started) * 1000.0, 1)
    response = jsonify(result)
    response.cache_control.no_store = True  # holds the user's aligned face: keep no copies
    return response


@bp.get("/health")
def health() -> Response:
    """Liveness plus what is loaded: version, model (with its licence), detector, index size."""
    matcher = get_matcher()
    index = matcher.index
    model = matcher.pipeline.model_info
    license_ = model.get("license") or {}
    return jsonify(
        {
            "status": "ok",
            "version": __version__,
            "model": index.manifest.get("model", {}).get("name"),
            "model_title": model.get("title") or model.get("name"),
            # Shown by the page when the weights' licence limits what people may do with it.
            "model_license": {
                "name": license_.get("name", "unknown"),
                "commercial_use": bool(license_.get("commercial_use", False)),
                "summary": license_.get("summary", ""),
            },
            "detector": matcher.pipeline.detector,
            "index": {
                "photos": len(index),
                "celebrities": len(index.celebrities),
                "demo": _is_demo_gallery(index.manifest),
            },
            # Batching across requests: queue and batch settings, counts so far (or null).
            "serving": _serving_stats(),
        }
    )


def _serving_stats() -> dict | None:
    batcher = current_app.extensions.get("lookalike.batcher")
    return batcher.batcher.stats() if batcher is not None else None


def _is_demo_gallery(manifest: dict) -> bool:
    """Whether the index was built from the small bundled demo gallery (``data/sample``)."""
    source = manifest.get("source") or {}
    if not source.get("path"):
        return False
    path = Path(source["path"])
    path = path if path.is_absolute() else paths.REPO_ROOT / path
    return path.resolve() == paths.sample_dir().resolve()


@bp.get("/celebrities/<celebrity_id>")
def celebrity(celebrity_id: str) -> Response:
    """One celebrity and every indexed photo of them."""
    index = get_matcher().index
    try:
        row = index.celebrity_row(celebrity_id)
    except KeyError:
        raise ApiError(404, "not_found", f"No celebrity with id {celebrity_id!r}.") from None
    record = index.celebrities.iloc[row]
    first = int(record["first_photo"])
    photos = []
    for photo_id in range(first, first + int(record["photo_count"])):
        photo = index.photo_record(photo_id)
        photos.append(
            {
                "photo_id": photo_id,
                "photo_url": photo_url(photo_id),
                "age": photo["age"],
                "photo_year": photo["photo_year"],
            }
        )
    gender = record["gender"]
    return jsonify(
        {
            "celebrity_id": str(record["celebrity_id"]),
            "name": str(record["name"]),
            "gender": None if pd.isna(gender) else str(gender),
            "photos": photos,
        }
    )


@bp.get("/photos/<int:photo_id>")
def photo(photo_id: int) -> Response:
    """The index's JPEG face thumbnail of one photo, cacheable."""
    try:
        jpeg = get_matcher().index.thumbnail(photo_id)
    except KeyError:
        raise ApiError(404, "not_found", f"No photo with id {photo_id}.") from None
    response = Response(jpeg, mimetype="image/jpeg")
    response.cache_control.public = True
    response.cache_control.max_age = PHOTO_MAX_AGE
    response.set_etag(f"{current_app.extensions['lookalike.index_tag']}-{photo_id}")
    return response.make_conditional(request)
