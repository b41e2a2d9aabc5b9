"""Why this match: how much each part of the face carries the look-alike similarity.

Occlusion sensitivity on the aligned chips, with the product's own embedding model. For each
region (eyes, eyebrows, nose, mouth, jaw and face shape) the region is painted over with the
chip's mean colour (soft edges) on ONE face at a time, and we measure how far the cosine
similarity to the OTHER face's unoccluded chip falls:

    drop_you(r)       = cos(you, celebrity) - cos(you with r hidden, celebrity)
    drop_celebrity(r) = cos(you, celebrity) - cos(you, celebrity with r hidden)
    contribution(r)   = (drop_you(r) + drop_celebrity(r)) / 2

A region whose hiding lowers the similarity a lot is one the model found alike in the two faces;
a negative contribution means hiding it makes them MORE alike (that part differs). All 2 + 2×R
chips go through the model in one batch, so the cost is one detection per face plus one small
embedding batch (``benchmarks/bench_explain.py`` measures it). The result is deterministic: the
same photos give the same numbers.

Regions are placed from the pipeline's landmark template (where the eyes, nose tip and mouth
corners sit in a chip of ``pipeline.chip_size``), so they follow any embedding model's framing.
It is an approximation: the model sees the face as a whole, and regions interact.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from lookalike import detection
from lookalike.detection import DetectedFace
from lookalike.errors import LookalikeError

METHOD = "occlusion"
REGIONS = ("eyes", "brows", "nose", "mouth", "jaw")
REGION_LABELS = {
    "eyes": "Eyes",
    "brows": "Eyebrows",
    "nose": "Nose",
    "mouth": "Mouth",
    "jaw": "Jaw and face shape",
}
# Shorter names for the summary line ("Face shape and nose look most alike.").
SUMMARY_NAMES = {"jaw": "face shape", "brows": "eyebrows"}
# Softening of the painted region's edge, as a fraction of the distance between the eyes.
FEATHER = 0.08
# Below this contribution (cosine units) a region is not called "alike" in the summary.
NOTABLE_CONTRIBUTION = 0.005
# A face of the photo is "the face at the box" when their boxes overlap at least this much (IoU).
MIN_BOX_OVERLAP = 0.3
CHIP_JPEG_QUALITY = 90


class ExplainError(LookalikeError, ValueError):
    """The match cannot be explained: no face at the given box, or none in the celebrity photo."""


class ChipPipeline(Protocol):
    """What the explanation needs of ``lookalike.pipeline.FacePipeline``."""

    min_confidence: float

    @property
    def chip_size(self) -> int: ...

    @property
    def template(self) -> np.ndarray: ...

    def align(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray: ...

    def embed_chips(self, chips: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RegionScore:
    """One region's share in the similarity (cosine units; positive: alike)."""

    region: str
    label: str
    contribution: float
    you: float
    celebrity: float


@dataclass(frozen=True)
class Explanation:
    """Per-region contributions, most alike first, and the chips' own similarity."""

    similarity: float
    regions: list[RegionScore]

    @property
    def summary(self) -> str:
        return summary_text(self.regions)


def _ellipse(shape: int, centre: np.ndarray, radii: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[0:shape, 0:shape].astype(np.float32) + 0.5
    return ((cols - centre[0]) / radii[0]) ** 2 + ((rows - centre[1]) / radii[1]) ** 2 <= 1.0


def region_masks(template: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Boolean size×size masks of each region, placed from the 5 template landmarks.

    ``template`` is (5, 2): image-left eye, image-right eye, nose tip, mouth corners (left,
    right), in chip pixels. Every size is a multiple of the distance between the eyes, so the
    masks scale with the model's chip framing. The regions do not overlap.
    """
    points = np.asarray(template, dtype=np.float32)
    if points.shape != (5, 2):
        raise ValueError(f"template must be 5×2 landmarks, got {points.shape}")
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eye_gap = float(np.linalg.norm(right_eye - left_eye))
    eyes_mid = (left_eye + right_eye) / 2
    mouth_mid = (mouth_left + mouth_right) / 2
    mouth_half = float(np.linalg.norm(mouth_right - mouth_left)) / 2
    nose_drop = float(nose[1] - eyes_mid[1])
    up = np.array([0.0, -1.0], np.float32)

    eyes = _ellipse(size, left_eye, (0.30 * eye_gap, 0.17 * eye_gap)) | _ellipse(
        size, right_eye, (0.30 * eye_gap, 0.17 * eye_gap)
    )
    brows = _ellipse(size, left_eye + 0.36 * eye_gap * up, (0.36 * eye_gap, 0.13 * eye_gap))
    brows |= _ellipse(size, right_eye + 0.36 * eye_gap * up, (0.36 * eye_gap, 0.13 * eye_gap))
    nose_centre = np.array([nose[0], eyes_mid[1] + 0.62 * nose_drop], np.float32)
    nose_mask = _ellipse(size, nose_centre, (0.22 * eye_gap, 0.5 * nose_drop + 0.12 * eye_gap))
    mouth_centre = mouth_mid + np.array([0.0, 0.04 * eye_gap], np.float32)
    mouth = _ellipse(size, mouth_centre, (mouth_half + 0.14 * eye_gap, 0.22 * eye_gap))
    # Jaw and face shape: the lower outline of the face (cheeks, jaw line, chin), i.e. a band
    # inside the face's oval, below the nose tip, outside the inner face.
    outer = _ellipse(size, eyes_mid, (1.3 * eye_gap, 1.9 * eye_gap))
    inner_radius_y = float(mouth_mid[1] - nose[1]) + 0.25 * eye_gap
    inner = _ellipse(size, np.array([mouth_mid[0], nose[1]]), (0.75 * eye_gap, inner_radius_y))
    rows = np.arange(size, dtype=np.float32)[:, None] + 0.5
    jaw = outer & ~inner & (rows >= nose[1]) & np.ones((1, size), bool)

    masks = {"eyes": eyes, "brows": brows & ~eyes, "nose": nose_mask & ~eyes}
    masks["mouth"] = mouth & ~masks["nose"]
    masks["jaw"] = jaw & ~mouth & ~nose_mask
    return {name: masks[name] for name in REGIONS}


def occlude(chip: np.ndarray, mask: np.ndarray, feather_px: float) -> np.ndarray:
    """``chip`` with ``mask`` painted in the chip's mean colour, edges softened by a Gaussian."""
    weight = mask.astype(np.float32)
    if feather_px > 0:
        weight = cv2.GaussianBlur(weight, (0, 0), sigmaX=feather_px)
        weight = np.maximum(weight, mask)  # the region itself stays fully hidden
    fill = chip.reshape(-1, 3).mean(axis=0)
    blended = chip.astype(np.float32) * (1 - weight[..., None]) + fill * weight[..., None]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def explain_chips(
    pipeline: ChipPipeline, you_chip: np.ndarray, celebrity_chip: np.ndarray
) -> Explanation:
    """Occlusion sensitivity of the cosine similarity between two aligned chips (one batch)."""
    size = pipeline.chip_size
    for chip in (you_chip, celebrity_chip):
        if chip.shape != (size, size, 3):
            raise ValueError(f"chips must be {size}×{size}×3, got {chip.shape}")
    template = np.asarray(pipeline.template, dtype=np.float32)
    masks = region_masks(template, size)
    eye_gap = float(np.linalg.norm(template[1] - template[0]))
    feather = FEATHER * eye_gap
    batch = [you_chip, celebrity_chip]
    batch += [occlude(you_chip, masks[name], feather) for name in REGIONS]
    batch += [occlude(celebrity_chip, masks[name], feather) for name in REGIONS]
    vectors = np.asarray(pipeline.embed_chips(np.stack(batch)), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    you, celebrity = vectors[0], vectors[1]
    count = len(REGIONS)
    similarity = float(you @ celebrity)
    you_hidden = vectors[2 : 2 + count] @ celebrity
    celebrity_hidden = vectors[2 + count :] @ you
    scores = []
    for position, name in enumerate(REGIONS):
        drop_you = similarity - float(you_hidden[position])
        drop_celebrity = similarity - float(celebrity_hidden[position])
        scores.append(
            RegionScore(
                region=name,
                label=REGION_LABELS[name],
                contribution=(drop_you + drop_celebrity) / 2,
                you=drop_you,
                celebrity=drop_celebrity,
            )
        )
    # Most alike first; ties (identical numbers) keep the fixed region order.
    scores.sort(key=lambda score: -score.contribution)
    return Explanation(similarity=similarity, regions=scores)


def warm_up(pipeline: ChipPipeline) -> None:
    """Run the model once on a batch of an explanation's size, so the first "why" is not slow."""
    size = pipeline.chip_size
    pipeline.embed_chips(np.zeros((2 + 2 * len(REGIONS), size, size, 3), np.uint8))


def summary_text(regions: Sequence[RegionScore]) -> str:
    """The summary line, e.g. "Eyes and nose look most alike." (regions most alike first)."""
    notable = [score for score in regions if score.contribution >= NOTABLE_CONTRIBUTION][:2]
    if not notable:
        return "No single part of the face stands out: the likeness is spread over the face."
    names = [SUMMARY_NAMES.get(score.region, score.label.lower()) for score in notable]
    names[0] = names[0][0].upper() + names[0][1:]
    plural = len(names) > 1 or notable[0].region in ("eyes", "brows")
    verb = "look" if plural else "looks"
    return f"{' and '.join(names)} {verb} most alike."


def region_outlines(template: np.ndarray, size: int) -> dict[str, list[list[list[float]]]]:
    """Each region's outline polygons, in fractions (0..1) of the chip's side, for drawing."""
    outlines = {}
    for name, mask in region_masks(template, size).items():
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        polygons = []
        for contour in sorted(contours, key=lambda c: (c[:, 0, 0].min(), c[:, 0, 1].min())):
            simplified = cv2.approxPolyDP(contour, 0.6, True)[:, 0, :].astype(np.float64)
            if len(simplified) >= 3:
                # Pixel centres to the pixel grid's edges, then fractions of the side.
                polygons.append((np.round((simplified + 0.5) / size, 4)).tolist())
        outlines[name] = polygons
    return outlines


def box_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def thumbnail_face_box(side: int) -> tuple[float, float, float, float]:
    """Where the face sits in an index thumbnail of ``side`` px: centred, 1 / (1 + 2·margin) of
    it (``lookalike.index_build.face_thumbnail``)."""
    from lookalike.index_build import THUMBNAIL_MARGIN

    face = side / (1 + 2 * THUMBNAIL_MARGIN)
    start = (side - face) / 2
    return (start, start, start + face, start + face)


def face_at_box(faces: Sequence[DetectedFace], box: Sequence[float] | None) -> DetectedFace | None:
    """The face whose box best overlaps ``box`` (x1, y1, x2, y2); the largest when no box."""
    if not faces:
        return None
    if box is None:
        return faces[0]
    best = max(faces, key=lambda face: box_overlap(face.box, box))
    return best if box_overlap(best.box, box) >= MIN_BOX_OVERLAP else None


def detect(pipeline: ChipPipeline, image: np.ndarray) -> list[DetectedFace]:
    """Every face of ``image``, found the way the pipeline finds them for matching."""
    detector = getattr(pipeline, "detector", None)  # pipelines that choose their detector
    options = {"detector": detector} if detector else {}
    return detection.detect_faces(image, min_confidence=pipeline.min_confidence, **options)


def chip_of(pipeline: ChipPipeline, image: np.ndarray, box: Sequence[float] | None) -> np.ndarray:
    """The aligned chip of the face at ``box`` (x1, y1, x2, y2) in ``image``, or the largest."""
    faces = detect(pipeline, image)
    face = face_at_box(faces, box)
    if face is None:
        raise ExplainError(
            "No face was found at that place in the photo. Match the photo again, then ask why."
            if faces
            else "No face was found in this photo."
        )
    return pipeline.align(image, [face])[0]


def chip_data_url(chip: np.ndarray) -> str:
    """A JPEG data URL of an RGB chip (sent back to the page, never stored)."""
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(chip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, CHIP_JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("could not encode a chip")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def explain_match(
    pipeline: ChipPipeline,
    photo: np.ndarray,
    celebrity_photo: np.ndarray,
    *,
    box: Sequence[float] | None = None,
) -> dict:
    """The JSON-ready explanation (docs/api.md, ``POST /api/explain``) of one match.

    ``photo`` is the user's decoded photo and ``box`` (x1, y1, x2, y2) the face that was matched
    (None: the largest); ``celebrity_photo`` is the celebrity's decoded face thumbnail, whose
    centred face is used (else its largest). Raises ``ExplainError`` when either face cannot be
    found.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    you_chip = chip_of(pipeline, photo, box)
    # The thumbnail is centred on the indexed face; another face at its edge is not the one.
    celebrity_faces = detect(pipeline, celebrity_photo)
    celebrity_face = face_at_box(
        celebrity_faces, thumbnail_face_box(max(celebrity_photo.shape[:2]))
    ) or face_at_box(celebrity_faces, None)
    if celebrity_face is None:
        raise ExplainError("The celebrity's photo has no face we can explain.")
    celebrity_chip = pipeline.align(celebrity_photo, [celebrity_face])[0]
    timings["detect_align"] = (time.perf_counter() - started) * 1000.0
    embed_started = time.perf_counter()
    explanation = explain_chips(pipeline, you_chip, celebrity_chip)
    timings["embed"] = (time.perf_counter() - embed_started) * 1000.0
    size = pipeline.chip_size
    outlines = region_outlines(pipeline.template, size)
    regions = [
        {
            "region": score.region,
            "label": score.label,
            "contribution": round(score.contribution, 4),
            "you": round(score.you, 4),
            "celebrity": round(score.celebrity, 4),
            "outline": outlines[score.region],
        }
        for score in explanation.regions
    ]
    timings["total"] = (time.perf_counter() - started) * 1000.0
    return {
        "method": METHOD,
        "similarity": round(explanation.similarity, 4),
        "summary": explanation.summary,
        "regions": regions,
        "chips": {
            "size": size,
            "you": chip_data_url(you_chip),
            "celebrity": chip_data_url(celebrity_chip),
        },
        "timings_ms": {stage: round(ms, 1) for stage, ms in timings.items()},
    }
