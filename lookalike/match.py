"""Look-alike matching: every face in a photo against the celebrity index.

``Matcher`` is what the CLI and the web API hold: the face pipeline and the index, loaded once,
safe to share between threads (the models are only called, never changed).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from lookalike import detection
from lookalike.errors import InvalidInputError, LookalikeError
from lookalike.index import CelebrityIndex
from lookalike.pipeline import FacePipeline, PhotoFaces

logger = logging.getLogger(__name__)

MAX_TOP_K = 20
MAX_FACES = 20  # faces matched per photo; more are counted but not matched
GENDERS = ("female", "male")


class NoFaceError(LookalikeError, ValueError):
    """The photo decoded fine but holds no face we can match."""


def photo_url(photo_id: int) -> str:
    """Where the web API serves a photo's face thumbnail (``GET /api/photos/<id>``)."""
    return f"/api/photos/{photo_id}"


@dataclass(frozen=True)
class MatchOptions:
    top_k: int = 5
    gender: str | None = None
    max_faces: int = MAX_FACES

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidInputError(f"top_k must be between 1 and {MAX_TOP_K}, got {self.top_k}")
        if self.gender is not None and self.gender not in GENDERS:
            raise InvalidInputError(
                f"gender must be one of {', '.join(GENDERS)}, got {self.gender!r}"
            )
        if self.max_faces < 1:
            raise InvalidInputError(f"max_faces must be at least 1, got {self.max_faces}")


class Matcher:
    """Find the celebrities each face in a photo looks like."""

    def __init__(
        self,
        index_dir: str | os.PathLike,
        model_path: str | os.PathLike | None = None,
        *,
        store: str | None = None,
        detector: str | None = None,
    ) -> None:
        """``model_path``: a registered name or ``.keras`` path (default: the index's own
        model when installed, else the default). ``detector``: default the index's own."""
        from lookalike import model_files

        # store: a Milvus URI (lookalike.milvus_store); None searches in this process.
        self.index = CelebrityIndex(index_dir, store=store)
        if model_path is None and not os.environ.get("LOOKALIKE_MODEL"):
            model_path = self.index.registered_model_name()  # the index's own model, if any
        model_info = model_files.model_info(model_path)
        self.index.check_model(model_info)
        built_with = (self.index.manifest.get("detector") or {}).get("name")
        if detector is None:
            detector = built_with or detection.detector_for(model_info)
        elif built_with and detector != built_with:
            # Embeddings stay comparable; alignment differs slightly (measured in the README).
            logger.warning(
                "index %s was built with the %s detector; matching with %s",
                index_dir,
                built_with,
                detector,
            )
        self.pipeline = FacePipeline(model_path, detector=detector)

    def warm_up(self) -> None:
        """Run every model once so that the first real request is not the slow one."""
        # A real face from the index's own thumbnails exercises every detector stage.
        self.pipeline.faces_in_file(self.index.thumbnail(0))

    def match(self, source: bytes | str | os.PathLike, options: MatchOptions | None = None) -> dict:
        """Match every face in a photo (bytes or path): the JSON-ready result of the API contract.

        Raises ``lookalike.images.ImageError`` for unreadable input and ``NoFaceError`` when no
        face is found.
        """
        options = options or MatchOptions()
        started = time.perf_counter()
        photo = self.pipeline.faces_in_file(source, max_faces=options.max_faces)
        return self.describe(photo, options, started)

    def describe(self, photo: PhotoFaces, options: MatchOptions, started: float) -> dict:
        """The API result for a photo's embedded faces: search every face, add the timings
        (``total`` since ``started``, a ``time.perf_counter()``). ``NoFaceError`` without faces.

        ``match`` in one call; ``lookalike.batching`` embeds photos in batches, then this.
        """
        timer = photo.timer
        if not photo.faces:
            raise NoFaceError(
                "No face found in this photo. Try a clear, front-facing photo with good light "
                "where the face is not too small, covered or turned away."
            )
        search_started = time.perf_counter()
        results = []
        for found in photo.faces:
            x1, y1, x2, y2 = found.face.box
            candidates = self.index.search(found.embedding, options.top_k, gender=options.gender)
            results.append(
                {
                    "box": [round(x1), round(y1), round(x2 - x1), round(y2 - y1)],
                    "confidence": round(float(found.face.confidence), 4),
                    "matches": [self._describe(candidate) for candidate in candidates],
                }
            )
        timer.add("search", search_started)
        timings = {stage: round(ms, 1) for stage, ms in timer.milliseconds.items()}
        timings["total"] = round((time.perf_counter() - started) * 1000.0, 1)
        return {
            "image": {"width": photo.width, "height": photo.height},
            "faces": results,
            "faces_total": photo.total_faces,
            "timings_ms": timings,
        }

    def _describe(self, candidate) -> dict:
        celebrity = self.index.celebrities.iloc[candidate.celebrity_row]
        record = self.index.photo_record(candidate.photo_id)
        return {
            "celebrity_id": str(celebrity["celebrity_id"]),
            "name": str(celebrity["name"]),
            "similarity": round(candidate.similarity, 4),
            "score": round(float(self.index.calibration.score(candidate.similarity)), 1),
            "photo_id": record["photo_id"],
            "photo_url": photo_url(record["photo_id"]),
            "age": record["age"],
            "photo_year": record["photo_year"],
            "gender": record["gender"],
        }
