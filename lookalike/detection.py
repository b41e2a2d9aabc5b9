"""Find faces and their five landmarks with MTCNN (``mtcnn==1.0.0``, TensorFlow/Keras).

One MTCNN object per process, built lazily under a lock and shared by threads. Large photos are
shrunk to ``max_side`` for detection (the cost grows with the pixel count) and the boxes and
landmarks are mapped back to the caller's pixels. When a face's box is already known (IMDB crops),
:func:`landmarks_in_box` runs only MTCNN's last network (ONet) on that box.

Landmark order is MTCNN's: left eye, right eye, nose, mouth left, mouth right, where "left" means
IMAGE-left (the person's own right eye); for an upright face ``landmarks[0, 0] < landmarks[1, 0]``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lookalike.images import downscale

# Detection resolution, measured by benchmarks/bench_detection.py (2-core CPU, CPU ms/photo):
# 640 px finds every face at least 1.6% of the photo's longer side (crowd canvases 52/52) in
# ~90 ms; 800 px adds the 1.2% faces but costs ~25% more; full size of a 2-3 MP photo ~300-500.
# 640 leaves room in the ~150 ms budget of a 1 MP /api/match; pass max_side for crowd shots.
DEFAULT_MAX_SIDE = 640
MIN_FACE_SIZE = 20  # MTCNN's default smallest face, in pixels of the (downscaled) detection image
ONET_SIZE = 48

Box = tuple[float, float, float, float]

_detector: Any = None
_detector_lock = threading.Lock()


class DetectionInputError(ValueError):
    """The array handed to the detector is not an H×W×3 uint8 image, or a box is malformed."""


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face: box (x1, y1, x2, y2), MTCNN confidence and 5 landmarks (x, y), image pixels."""

    box: Box
    confidence: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        """Box area in square pixels (what the faces are sorted by)."""
        return max(self.width, 0.0) * max(self.height, 0.0)


def get_detector() -> Any:
    """The process-wide ``mtcnn.MTCNN`` object (TensorFlow is imported on first use)."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:  # another thread may have built it while we waited
                # Quiet TensorFlow's C++ start-up chatter (only effective before its import).
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                from mtcnn import MTCNN

                _detector = MTCNN(device="CPU:0")
    return _detector


def detect_faces(
    image: np.ndarray,
    *,
    min_confidence: float = 0.9,
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_face_size: int = MIN_FACE_SIZE,
) -> list[DetectedFace]:
    """Every face in an RGB uint8 image with confidence ≥ ``min_confidence``, largest first.

    The image is shrunk so its longer side is at most ``max_side`` (``None``: full size) before
    detection; ``min_face_size`` is in those detection pixels. Coordinates are in ``image``'s
    pixels.
    """
    return detect_faces_batch(
        [image], min_confidence=min_confidence, max_side=max_side, min_face_size=min_face_size
    )[0]


def detect_faces_batch(
    images: Sequence[np.ndarray],
    *,
    min_confidence: float = 0.9,
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_face_size: int = MIN_FACE_SIZE,
    batch_size: int = 16,
) -> list[list[DetectedFace]]:
    """:func:`detect_faces` for many images, through MTCNN's batched mode; one list per image.

    Images are grouped by size before batching, because MTCNN pads every image of a batch to
    the largest one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    shrunk = [downscale(_checked(image, index), max_side) for index, image in enumerate(images)]
    results: list[list[DetectedFace]] = [[] for _ in images]
    # Tiny images have no pyramid level MTCNN can run on: they simply hold no face.
    usable = [i for i, (small, _) in enumerate(shrunk) if min(small.shape[:2]) >= 12]
    usable.sort(key=lambda i: shrunk[i][0].shape[0] * shrunk[i][0].shape[1])
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        rows = _run_mtcnn([shrunk[i][0] for i in chunk], min_face_size)
        for row in rows:
            index = chunk[int(row[0])]
            face = _face_from_row(row, shrunk[index][1])
            if face.confidence >= min_confidence:
                results[index].append(face)
    for faces in results:
        faces.sort(key=lambda face: face.area, reverse=True)
    return results


def _run_mtcnn(images: list[np.ndarray], min_face_size: int) -> np.ndarray:
    detector = get_detector()
    # "topleft" puts every image at (0, 0) of the padded batch: mtcnn 1.0.0 subtracts the
    # padding offsets per image id present, which misassigns them when an image has no face.
    rows = detector.detect_faces(
        images if len(images) > 1 else images[0],
        box_format="xyxy",
        output_type="numpy",
        min_face_size=min_face_size,
        batch_stack_justification="topleft",
    )
    return np.asarray(rows, dtype=np.float64).reshape(-1, 16)


def _face_from_row(row: np.ndarray, scale: float) -> DetectedFace:
    # Row: image id, x1, y1, x2, y2, confidence, then the 5 x's, then the 5 y's.
    box = _unscale(row[1:5].reshape(2, 2), scale).ravel()
    landmarks = _unscale(np.stack([row[6:11], row[11:16]], axis=1), scale)
    return _make_face(box, float(row[5]), landmarks)


def _unscale(points: np.ndarray, scale: float) -> np.ndarray:
    # Pixel centres: pixel i of the small image covers [i, i + 1) / scale of the original.
    return points if scale == 1.0 else (points + 0.5) / scale - 0.5


def _make_face(box: np.ndarray, confidence: float, landmarks: np.ndarray) -> DetectedFace:
    points = np.ascontiguousarray(landmarks, dtype=np.float32).reshape(5, 2)
    points.setflags(write=False)  # the dataclass is frozen; keep its array so too
    x1, y1, x2, y2 = (float(value) for value in box)
    return DetectedFace(box=(x1, y1, x2, y2), confidence=confidence, landmarks=points)


def _checked(image: np.ndarray, index: int = 0) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise DetectionInputError(f"image {index} must be an H×W×3 RGB array, got {shape}")
    if image.dtype != np.uint8:
        raise DetectionInputError(f"image {index} must be uint8 (0-255), got {image.dtype}")
    return image


def landmarks_in_box(
    image: np.ndarray, box: Sequence[float], *, min_confidence: float = 0.5, passes: int = 2
) -> DetectedFace | None:
    """The face inside a box that is already known (x1, y1, x2, y2), or ``None`` if ONet says
    there is no face there (confidence below ``min_confidence``).

    Runs only MTCNN's output network (ONet) on the box: pass 1 refines the box with ONet's
    regression, later passes take the landmarks from the refined box. See
    :func:`landmarks_in_boxes` for many photos at once.
    """
    return landmarks_in_boxes([image], [box], min_confidence=min_confidence, passes=passes)[0]


def landmarks_in_boxes(
    images: Sequence[np.ndarray],
    boxes: Sequence[Sequence[float]],
    *,
    min_confidence: float = 0.5,
    passes: int = 2,
) -> list[DetectedFace | None]:
    """:func:`landmarks_in_box` for one known box per image, with one ONet call per pass."""
    if len(images) != len(boxes):
        raise DetectionInputError(f"got {len(boxes)} boxes for {len(images)} images")
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    if not images:
        return []
    checked = [_checked(image, index) for index, image in enumerate(images)]
    current = np.array([_box_array(box, index) for index, box in enumerate(boxes)])
    onet = get_detector().get_stage(stage_id=3).model
    for _ in range(passes):
        squares = _square(current)
        patches = np.stack(
            [_onet_patch(image, square) for image, square in zip(checked, squares, strict=True)]
        )
        offsets, landmarks, scores = (np.asarray(out, np.float64) for out in onet(patches))
        # Same arithmetic (and +1/-1 pixel conventions) as mtcnn's StageONet, so landmarks
        # from here match those of a full detection.
        sides = (squares[:, 2:3] - squares[:, 0:1]) + 1.0
        points_x = sides * landmarks[:, 0:5] + squares[:, 0:1] - 1.0
        points_y = sides * landmarks[:, 5:10] + squares[:, 1:2] - 1.0
        current = squares + offsets * sides
    faces: list[DetectedFace | None] = []
    for i, score in enumerate(scores[:, 1]):
        if score < min_confidence:
            faces.append(None)
        else:
            points = np.stack([points_x[i], points_y[i]], axis=1)
            faces.append(_make_face(current[i], float(score), points))
    return faces


def _box_array(box: Sequence[float], index: int) -> np.ndarray:
    values = np.asarray(box, dtype=np.float64).ravel()
    if values.shape != (4,) or not np.all(np.isfinite(values)):
        raise DetectionInputError(f"box {index} must be 4 finite numbers x1, y1, x2, y2: {box!r}")
    if values[2] <= values[0] or values[3] <= values[1]:
        raise DetectionInputError(f"box {index} is empty or inverted (need x1 < x2, y1 < y2)")
    return values


def _square(boxes: np.ndarray) -> np.ndarray:
    # MTCNN feeds ONet square boxes (the longer side, same centre).
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2.0
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2.0
    return np.concatenate([centres - half, centres + half], axis=1)


def _onet_patch(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    # Like tf.image.crop_and_resize in mtcnn: bilinear samples with the box corners on the
    # corner pixels of the 48×48 patch, mid-grey outside the image, then (x - 127.5) / 128.
    height, width = image.shape[:2]
    left, top = max(int(np.floor(box[0])) - 1, 0), max(int(np.floor(box[1])) - 1, 0)
    right, bottom = min(int(np.ceil(box[2])) + 2, width), min(int(np.ceil(box[3])) + 2, height)
    if right <= left or bottom <= top:  # the box lies wholly outside the photo
        return np.zeros((ONET_SIZE, ONET_SIZE, 3), np.float32)
    region = image[top:bottom, left:right].astype(np.float32)  # only the pixels ONet sees
    step_x = (box[2] - box[0]) / (ONET_SIZE - 1)
    step_y = (box[3] - box[1]) / (ONET_SIZE - 1)
    to_region = np.array([[step_x, 0.0, box[0] - left], [0.0, step_y, box[1] - top]])
    patch = cv2.warpAffine(
        region,
        to_region,
        (ONET_SIZE, ONET_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(127.5, 127.5, 127.5),
    )
    return (patch - 127.5) / 128.0
