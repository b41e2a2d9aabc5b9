"""MTCNN face detection: all faces, coordinates in the caller's pixels, known-box landmarks."""

from __future__ import annotations

import functools
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lookalike import detection
from lookalike.detection import DetectedFace, DetectionInputError
from lookalike.images import load_image

# These tests pin MTCNN's behaviour (the reference detector, and the one the dlib template was
# fitted to); YuNet, the default, has its own tests in test_yunet.py.
mtcnn_faces = functools.partial(detection.detect_faces, detector="mtcnn")
mtcnn_faces_batch = functools.partial(detection.detect_faces_batch, detector="mtcnn")


def landscape(height: int = 360, width: int = 540, seed: int = 0) -> np.ndarray:
    """A face-free picture: sky gradient, blurred-noise hills and grass texture."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 1, height)[:, None]
    sky = np.dstack([120 + 80 * rows, 170 + 50 * rows, 235 - 20 * rows]) * np.ones((1, width, 1))
    ridge = height * (0.55 + 0.08 * np.sin(np.linspace(0, 7, width)))
    ground = np.arange(height)[:, None] > ridge[None, :]
    grass = cv2.GaussianBlur(rng.normal(0, 25, (height, width)), (0, 0), 2)
    sky[ground] = np.stack([60 + grass, 120 + grass, 40 + grass / 2], axis=-1)[ground]
    return np.clip(sky, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def face(assets: Path) -> np.ndarray:
    return load_image(assets / "face.jpg")


@pytest.fixture(scope="module")
def two_people(assets: Path) -> np.ndarray:
    return load_image(assets / "two_people.jpg")


def box_distance(a: DetectedFace, b: DetectedFace) -> float:
    return float(np.abs(np.subtract(a.box, b.box)).max())


def test_finds_both_faces_with_landmarks_in_order(two_people: np.ndarray) -> None:
    faces = mtcnn_faces(two_people)
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area
    for face in faces:
        assert face.confidence >= 0.9
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= two_people.shape[1] and 0 <= y1 < y2 <= two_people.shape[0]
        assert face.width == pytest.approx(x2 - x1) and face.height == pytest.approx(y2 - y1)
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
        assert (x1 <= face.landmarks[:, 0]).all() and (face.landmarks[:, 0] <= x2).all()
    with pytest.raises(ValueError):
        faces[0].landmarks[0, 0] = 0.0  # read-only: the dataclass is frozen


def test_no_face_in_a_landscape() -> None:
    assert mtcnn_faces(landscape()) == []
    assert mtcnn_faces(np.zeros((8, 8, 3), np.uint8)) == []  # below MTCNN's 12 px


def test_downscaled_detection_maps_back_to_original_pixels(two_people: np.ndarray) -> None:
    big = cv2.resize(two_people, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    native = mtcnn_faces(two_people, max_side=None)
    shrunk = mtcnn_faces(big, max_side=800)  # detection runs on ≈ two_people
    assert len(shrunk) == len(native) == 2
    for small, large in zip(native, shrunk, strict=True):
        # Same face, in the big photo's pixels: twice the native coordinates (pixel centres).
        expected = (np.asarray(small.box) + 0.5) * 2 - 0.5
        assert np.abs(np.asarray(large.box) - expected).max() < 6
        assert np.abs(large.landmarks - ((small.landmarks + 0.5) * 2 - 0.5)).max() < 6


def test_batch_matches_single_calls_and_keeps_order(
    face: np.ndarray, two_people: np.ndarray
) -> None:
    blank = np.zeros((500, 500, 3), np.uint8)  # no face, and larger than the others
    batch = mtcnn_faces_batch([blank, face, two_people, blank[:5]])
    assert [len(found) for found in batch] == [0, 1, 2, 0]
    for found, image in zip(batch[1:3], [face, two_people], strict=True):
        for batched, single in zip(found, mtcnn_faces(image), strict=True):
            assert box_distance(batched, single) < 8  # padding shifts the pyramid a little
    assert mtcnn_faces_batch([]) == []


def test_exif_rotated_photo_gives_the_same_face(assets: Path, face: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # pixels stored turned 90° clockwise; viewers turn them back
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(face, -1)))
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    upright_faces = mtcnn_faces(face)
    rotated_faces = mtcnn_faces(load_image(buffer.getvalue()))
    assert len(upright_faces) == len(rotated_faces) == 1
    assert box_distance(upright_faces[0], rotated_faces[0]) < 4


def test_landmarks_in_a_known_box(face: np.ndarray) -> None:
    (full,) = mtcnn_faces(face)
    eyes = np.linalg.norm(full.landmarks[1] - full.landmarks[0])
    x1, y1, x2, y2 = full.box
    loose = (x1 - 0.1 * full.width, y1 - 0.05 * full.height, x2 + 0.1 * full.width, y2)
    for box in (full.box, loose):
        found = detection.landmarks_in_box(face, box)
        assert found is not None and found.confidence > 0.9
        assert np.linalg.norm(found.landmarks - full.landmarks, axis=1).max() < 0.1 * eyes
    assert detection.landmarks_in_box(landscape(), (200, 40, 300, 140)) is None
    outside = detection.landmarks_in_box(face, (x1, y1 - 150, x2, y2))  # reaches above the photo
    assert outside is None or np.isfinite(outside.landmarks).all()
    many = detection.landmarks_in_boxes([face, face], [full.box, loose])
    assert all(isinstance(item, DetectedFace) for item in many)


def test_one_detector_shared_by_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detection, "_detector", None)  # race the lazy build again
    with ThreadPoolExecutor(max_workers=4) as pool:
        detectors = list(pool.map(lambda _: detection.get_detector(), range(8)))
    assert all(item is detectors[0] for item in detectors)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((20, 20), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3))],
    ids=["grey", "rgba", "float"],
)
def test_rejects_arrays_that_are_not_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(DetectionInputError):
        mtcnn_faces(bad)


@pytest.mark.parametrize("box", [(10, 10, 5, 40), (0, 0, 10), (0, 0, np.nan, 10)])
def test_rejects_malformed_boxes(face: np.ndarray, box: tuple) -> None:
    with pytest.raises(DetectionInputError):
        detection.landmarks_in_box(face, box)


# Faces counted by eye in each group photo (kit_with_rose: 2; obama_and_biden: Biden, Obama and
# the girl at the bottom right, the woman at the right edge shows no face; two_people: 2).
GROUP_FACES = {"kit_with_rose.jpg": 2, "obama_and_biden.jpg": 3, "two_people.jpg": 2}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(GROUP_FACES))
def test_group_photos_give_every_face(shared_data: Path, name: str) -> None:
    path = shared_data / "face_recognition_examples" / "_multi_face_unlabelled" / name
    image = load_image(path)
    faces = mtcnn_faces(image, min_confidence=0.8)
    assert len(faces) == GROUP_FACES[name]
    # The girl, looking down, scores 0.88 at the default 640 px (0.99 at 800 px and at full size),
    # so the 0.9 default keeps one face fewer there: a measured borderline, see bench_detection.
    confident = mtcnn_faces(image)
    assert len(confident) >= GROUP_FACES[name] - 1
