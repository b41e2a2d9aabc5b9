"""Cut aligned face chips: a similarity transform from 5 detected landmarks to a model's template.

Each embedding model names its chip size and template in its ``model.json``: the standard
ArcFace 112×112 template for SFace and ArcFace-MBF (:data:`ARCFACE_TEMPLATE_112`), and for the
dlib port 150×150 chips framed like dlib's
``get_face_chip(size=150, padding=0.25)``. dlib frames chips from its own 5-point predictor;
we only have MTCNN's points, so :data:`LANDMARK_TEMPLATE` says where MTCNN's points fall, on
average, in dlib's chips (fitted by ``benchmarks/fit_alignment_template.py``). Sampling follows
dlib too: halve with a Gaussian pyramid while the chip is less than half the face's scale, then
bilinear, and black outside the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.detection import DetectedFace

CHIP_SIZE = 150
DLIB_CHIP_SIZE = CHIP_SIZE

# Mean position of MTCNN's landmarks (left eye, right eye, nose, mouth left, mouth right;
# "left" = image-left) inside dlib's get_face_chip(size=150, padding=0.25) chips, fitted by
# benchmarks/fit_alignment_template.py on 394 lfw-dev faces (the first photo of every 7th
# person: 400 photos, 4 without a dlib face, 1 without a matching MTCNN face, 1 outlier).
# Spread across faces (SD): eyes 1.7-2.0 px, nose 4.6-6.2 px, mouth corners 4.6-5.7 px; after
# each face's own similarity fit the points stay 4.3 px (RMS) off the template.
LANDMARK_TEMPLATE = np.array(
    [
        [46.6, 44.9],
        [100.7, 44.7],
        [73.0, 76.2],
        [49.4, 103.8],
        [97.9, 103.6],
    ],
    dtype=np.float32,
)
LANDMARK_TEMPLATE.setflags(write=False)
DLIB_TEMPLATE_150 = tuple((float(x), float(y)) for x, y in LANDMARK_TEMPLATE)

# The standard 112×112 ArcFace template (InsightFace), used by SFace and ArcFace-MBF.
ARCFACE_TEMPLATE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


@dataclass(frozen=True)
class ChipSpec:
    """How chips are cut: their side in pixels, the landmark template (None: dlib's), and the
    detector whose landmarks the template was made for (dlib's was fitted to MTCNN's points)."""

    size: int = CHIP_SIZE
    template: tuple[tuple[float, float], ...] | None = None
    detector: str = "mtcnn"

    @property
    def points(self) -> np.ndarray:
        """The 5×2 template in chip pixels."""
        return template_for(self.size, self.template)


class AlignmentError(ValueError):
    """Landmarks that cannot define a chip (wrong shape, not finite, or all in one place)."""


def template_for(size: int, template: np.ndarray | Sequence | None = None) -> np.ndarray:
    """The 5×2 landmark template in chip pixels: ``template`` as given, or dlib's scaled to size."""
    if template is None:
        return LANDMARK_TEMPLATE.astype(np.float64) * (size / CHIP_SIZE)
    points = np.asarray(template, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise AlignmentError(f"a landmark template must be 5×2 finite numbers, got {points.shape}")
    return points


def model_template(info: dict, size: int) -> np.ndarray:
    """The template a model was made for (its ``model.json`` ``alignment``), else dlib's."""
    recorded = (info.get("alignment") or {}) if isinstance(info, dict) else {}
    if isinstance(recorded, dict) and recorded.get("template") is not None:
        if int(recorded.get("chip_size", size)) != size:
            raise AlignmentError(
                f"model.json describes {recorded.get('chip_size')}-px chips, the model takes {size}"
            )
        return template_for(size, recorded["template"])
    return template_for(size)


def chip_transform(
    landmarks: np.ndarray, *, size: int = CHIP_SIZE, template: np.ndarray | None = None
) -> np.ndarray:
    """The 2×3 similarity matrix (rotation, uniform scale, shift) taking image pixels to chip
    pixels that best fits ``landmarks`` (5×2, image pixels) onto the template (least squares).
    ``template`` is in chip pixels (default: dlib's, scaled to ``size``).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise AlignmentError(f"landmarks must have shape (5, 2), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise AlignmentError("landmarks contain NaN or infinite coordinates")
    if size < 1:
        raise AlignmentError(f"size must be a positive number of pixels, got {size}")
    if np.ptp(points, axis=0).max() < 1e-3:
        raise AlignmentError("the 5 landmarks coincide; they cannot define a face chip")
    target = template_for(size, template)
    # A threshold far beyond any chip keeps all 5 points as inliers, so the Levenberg-Marquardt
    # refinement ends at the plain least-squares fit (no random RANSAC subset wins).
    matrix, _ = cv2.estimateAffinePartial2D(
        points, target, method=cv2.RANSAC, ransacReprojThreshold=1e9, refineIters=50
    )
    if matrix is None or not np.all(np.isfinite(matrix)):
        raise AlignmentError("no similarity transform fits these landmarks")
    return matrix


def warp_chip(image: np.ndarray, matrix: np.ndarray, *, size: int = CHIP_SIZE) -> np.ndarray:
    """Resample ``image`` through a 2×3 image→chip matrix into a size×size chip, like dlib's
    extract_image_chip: Gaussian-pyramid halving for large reductions, bilinear, black border.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise AlignmentError(f"image must be H×W×3 uint8, got {image.shape} {image.dtype}")
    matrix = np.asarray(matrix, dtype=np.float64).copy()
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # chip pixels per image pixel
    # Only the part of the photo that the chip sees (plus a margin for the filters) is used.
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    seen = corners @ inverse[:, :2].T + inverse[:, 2]
    margin = 4.0 / max(scale, 1e-6)
    height, width = image.shape[:2]
    left = int(np.clip(np.floor(seen[:, 0].min() - margin), 0, width))
    top = int(np.clip(np.floor(seen[:, 1].min() - margin), 0, height))
    right = int(np.clip(np.ceil(seen[:, 0].max() + margin), 0, width))
    bottom = int(np.clip(np.ceil(seen[:, 1].max() + margin), 0, height))
    if right - left < 1 or bottom - top < 1:  # the chip lies wholly outside the photo
        return np.zeros((size, size, 3), np.uint8)
    region = image[top:bottom, left:right]
    matrix[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
    # Bilinear sampling of a much larger face aliases; halve first (dlib's pyramid_down<2>
    # and cv2.pyrDown both use the 5-tap 1-4-6-4-1 filter), keeping the last step ≤ 2×.
    while scale < 0.5 and min(region.shape[:2]) >= 2:
        region = cv2.pyrDown(region)
        matrix[:, :2] *= 2.0  # pyrDown's pixel i sits on pixel 2i of its input
        scale *= 2.0
    return cv2.warpAffine(
        region,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    *,
    size: int = CHIP_SIZE,
    template: np.ndarray | None = None,
) -> np.ndarray:
    """The size×size×3 uint8 chip of the face with these 5 landmarks (image pixels)."""
    return warp_chip(image, chip_transform(landmarks, size=size, template=template), size=size)


def align_faces(
    image: np.ndarray,
    faces: Sequence[DetectedFace],
    *,
    size: int = CHIP_SIZE,
    template: np.ndarray | None = None,
) -> np.ndarray:
    """Chips of all ``faces`` of one image, stacked as (N, size, size, 3) uint8 (N may be 0)."""
    chips = np.zeros((len(faces), size, size, 3), np.uint8)
    for index, face in enumerate(faces):
        chips[index] = align_face(image, face.landmarks, size=size, template=template)
    return chips
