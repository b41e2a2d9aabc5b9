"""Find faces and their five landmarks: YuNet (``lookalike.yunet``, the default) or MTCNN.

``detect_faces(image, detector="yunet" | "mtcnn")`` gives the same :class:`DetectedFace` either
way. YuNet (OpenCV) is ~8× faster; MTCNN (``mtcnn==1.0.0``, TensorFlow/Keras) finds smaller faces
(16 px against ~24 px at detection scale) and refines known boxes (:func:`landmarks_in_box`).
:func:`choose_subject` picks the face a gallery photo is about.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lookalike.errors import InvalidInputError
from lookalike.images import downscale

# Detection resolution, measured by benchmarks/bench_detection.py (2-core CPU, CPU ms/photo):
# 640 px finds every face at least 1.6% of the photo's longer side (crowd canvases 52/52) in
# ~90 ms; 800 px adds the 1.2% faces but costs ~25% more; full size of a 2-3 MP photo ~300-500.
# 640 leaves room in the ~150 ms budget of a 1 MP /api/match; pass max_side for crowd shots.
DEFAULT_MAX_SIDE = 640
MIN_FACE_SIZE = 20  # MTCNN's default smallest face, in pixels of the (downscaled) detection image
ONET_SIZE = 48

Box = tuple[float, float, float, float]
DETECTORS = ("yunet", "mtcnn")
DEFAULT_DETECTOR = "yunet"
MTCNN_MIN_CONFIDENCE = 0.9
SUBJECT_RULES = ("centre", "largest", "size-centre")
DEFAULT_SUBJECT_RULE = "centre"
# Known boxes (IMDB's face_location) are refined by MTCNN's ONet: 9.6 ms against 17.6 ms a face
# for YuNet on the crop, top-1 98.96% against 97.92% on data/sample (bench_known_boxes.py).
KNOWN_BOX_REFINER = "mtcnn"
SURE_CONFIDENCE = 0.9  # YuNet faces below this are shown only when they are the only face

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


def detector_for(model_info: dict, detector: str | None = None) -> str:
    """``detector`` when given, else the one the model is measured best with (its ``model.json``
    ``detector``: ``mtcnn`` for the dlib port, whose template was fitted to MTCNN's points),
    else :data:`DEFAULT_DETECTOR`."""
    return check_detector(detector or model_info.get("detector") or DEFAULT_DETECTOR)


def check_detector(name: str) -> str:
    """``name`` if it is a known detector, else ``ValueError`` listing them."""
    if name not in DETECTORS:
        raise InvalidInputError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return name


def default_min_confidence(detector: str) -> float:
    """The score threshold each detector is used with (YuNet's own scores run lower)."""
    from lookalike import yunet

    if check_detector(detector) == "yunet":
        return yunet.DEFAULT_MIN_CONFIDENCE
    return MTCNN_MIN_CONFIDENCE


def checked_confidence(min_confidence: float | None, detector: str) -> float:
    """``min_confidence``, or the detector's default when None; ``ValueError`` outside (0, 1)."""
    if min_confidence is None:
        return default_min_confidence(detector)
    value = float(min_confidence)
    if not 0.0 < value < 1.0:
        raise InvalidInputError(
            f"the score threshold must be between 0 and 1, got {min_confidence}"
        )
    return value


def detect_faces(
    image: np.ndarray,
    *,
    detector: str = DEFAULT_DETECTOR,
    min_confidence: float | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_face_size: int = MIN_FACE_SIZE,
) -> list[DetectedFace]:
    """Every face in an RGB uint8 image with confidence ≥ ``min_confidence``, largest first.

    The image is shrunk so its longer side is at most ``max_side`` (``None``: full size) before
    detection; ``min_face_size`` (MTCNN only) is in those detection pixels. Coordinates are in
    ``image``'s pixels. ``min_confidence`` defaults to the detector's own threshold.
    """
    return detect_faces_batch(
        [image],
        detector=detector,
        min_confidence=min_confidence,
        max_side=max_side,
        min_face_size=min_face_size,
    )[0]


def detect_faces_batch(
    images: Sequence[np.ndarray],
    *,
    detector: str = DEFAULT_DETECTOR,
    min_confidence: float | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_face_size: int = MIN_FACE_SIZE,
    batch_size: int = 16,
) -> list[list[DetectedFace]]:
    """:func:`detect_faces` for many images; one list per image.

    MTCNN runs in batches, grouped by size (it pads every image of a batch to the largest);
    YuNet runs one image at a time (it is that fast).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    min_confidence = checked_confidence(min_confidence, check_detector(detector))
    shrunk = [downscale(_checked(image, index), max_side) for index, image in enumerate(images)]
    if detector == "yunet":
        # OpenCV releases the GIL: a few threads (one YuNet object each) keep both cores busy.
        def run(pair: tuple[tuple[np.ndarray, float], np.ndarray]) -> list[DetectedFace]:
            (small, scale), image = pair
            return _yunet_faces(small, scale, image, min_confidence)

        pairs = list(zip(shrunk, images, strict=True))
        if len(pairs) < 2:
            return [run(pair) for pair in pairs]
        return list(_yunet_pool().map(run, pairs))
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


_pool: ThreadPoolExecutor | None = None


def _yunet_pool() -> ThreadPoolExecutor:
    global _pool
    with _detector_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="yunet"
            )
    return _pool


def _yunet_faces(
    small: np.ndarray, scale: float, image: np.ndarray, min_confidence: float
) -> list[DetectedFace]:
    from lookalike import yunet

    height, width = image.shape[:2]
    faces = []
    for row in yunet.detect_rows(small, min_confidence):
        x, y, w, h = row[:4]
        corners = _unscale(np.array([[x, y], [x + w, y + h]]), scale)
        # YuNet's boxes may reach past the photo: clip them to it.
        corners[:, 0] = np.clip(corners[:, 0], 0, width)
        corners[:, 1] = np.clip(corners[:, 1], 0, height)
        landmarks = _unscale(row[4:14].reshape(5, 2), scale)
        faces.append(_make_face(corners.ravel(), float(row[14]), landmarks))
    faces.sort(key=lambda face: face.area, reverse=True)
    return faces


def keep_confident(
    faces: Sequence[DetectedFace], sure: float = SURE_CONFIDENCE
) -> list[DetectedFace]:
    """Faces to show for an uploaded photo: every face scored at least ``sure``, or, when there
    is none, the best-scored face alone.

    YuNet needs a low threshold (0.6) not to miss faces, but at that threshold it also reports
    the odd face-like patch of background (0.83 on a landscape behind a portrait in the test
    photos). A lone face under ``sure`` is still kept: it is usually the photo's subject.
    """
    confident = [face for face in faces if face.confidence >= sure]
    if confident or not faces:
        return confident
    return [max(faces, key=lambda face: face.confidence)]


def choose_subject(
    faces: Sequence[DetectedFace], image_shape: tuple[int, ...], rule: str = DEFAULT_SUBJECT_RULE
) -> DetectedFace | None:
    """The face a gallery photo is about, or None when there is none.

    ``largest``: the biggest box. ``centre``: the face whose centre is nearest the photo's
    centre (LFW and IMDB crops centre their subject). ``size-centre``: the largest
    area × (1 − distance to the centre / half-diagonal)². Measured on lfw-dev by
    ``benchmarks/bench_quality.py``.
    """
    if rule not in SUBJECT_RULES:
        raise ValueError(f"unknown subject rule {rule!r}; choose one of {', '.join(SUBJECT_RULES)}")
    if not faces:
        return None
    if rule == "largest" or len(faces) == 1:
        return max(faces, key=lambda face: face.area)
    height, width = image_shape[:2]
    centre = np.array([width / 2.0, height / 2.0])
    half_diagonal = float(np.hypot(width, height)) / 2.0

    def distance(face: DetectedFace) -> float:
        x1, y1, x2, y2 = face.box
        return float(np.hypot((x1 + x2) / 2.0 - centre[0], (y1 + y2) / 2.0 - centre[1]))

    if rule == "centre":
        return min(faces, key=distance)
    return max(faces, key=lambda f: f.area * (1.0 - min(distance(f) / half_diagonal, 1.0)) ** 2)


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
    detector: str = "mtcnn",
    min_confidence: float = 0.5,
    passes: int = 2,
) -> list[DetectedFace | None]:
    """:func:`landmarks_in_box` for one known box per image, with one ONet call per pass.

    With ``detector="yunet"``, YuNet runs on the crop around each box (plus half its size on
    every side) and the face overlapping the known box most is kept (None below IoU 0.3).
    """
    if len(images) != len(boxes):
        raise DetectionInputError(f"got {len(boxes)} boxes for {len(images)} images")
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    if not images:
        return []
    checked = [_checked(image, index) for index, image in enumerate(images)]
    current = np.array([_box_array(box, index) for index, box in enumerate(boxes)])
    if check_detector(detector) == "yunet":
        return [_yunet_in_box(image, box) for image, box in zip(checked, current, strict=True)]
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


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _yunet_in_box(image: np.ndarray, box: np.ndarray, min_iou: float = 0.3) -> DetectedFace | None:
    height, width = image.shape[:2]
    margin = 0.5 * max(box[2] - box[0], box[3] - box[1])
    left, top = int(max(box[0] - margin, 0)), int(max(box[1] - margin, 0))
    right, bottom = int(min(box[2] + margin, width)), int(min(box[3] + margin, height))
    if right - left < 2 or bottom - top < 2:
        return None
    crop = image[top:bottom, left:right]
    faces = detect_faces(crop, detector="yunet", max_side=DEFAULT_MAX_SIDE)
    shift = np.array([left, top], np.float64)
    best, best_iou = None, min_iou
    for face in faces:
        placed = np.asarray(face.box, np.float64) + np.tile(shift, 2)
        overlap = _iou(placed, box)
        if overlap >= best_iou:
            best, best_iou = (placed, face), overlap
    if best is None:
        return None
    placed, face = best
    return _make_face(placed, face.confidence, face.landmarks + shift)


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
