"""Face chips: the similarity transform, dlib-like sampling, and upright chips of rolled faces."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

from lookalike import alignment, detection
from lookalike.alignment import CHIP_SIZE, LANDMARK_TEMPLATE, AlignmentError
from lookalike.images import load_image

# These tests pin MTCNN's behaviour (the reference detector, and the one the dlib template was
# fitted to); YuNet, the default, has its own tests in test_yunet.py.
mtcnn_faces = functools.partial(detection.detect_faces, detector="mtcnn")


@pytest.fixture(scope="module")
def face_image(assets: Path) -> np.ndarray:
    return load_image(assets / "face.jpg")


@pytest.fixture(scope="module")
def face(face_image: np.ndarray) -> detection.DetectedFace:
    (found,) = mtcnn_faces(face_image)
    return found


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def rotation_about(centre: np.ndarray, degrees: float, scale: float = 1.0) -> np.ndarray:
    return cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, scale)


def test_template_is_a_plausible_face() -> None:
    assert LANDMARK_TEMPLATE.shape == (5, 2) and LANDMARK_TEMPLATE.dtype == np.float32
    left_eye, right_eye, nose, mouth_left, mouth_right = LANDMARK_TEMPLATE
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert abs((left_eye[0] + right_eye[0]) / 2 - CHIP_SIZE / 2) < 5  # centred


@pytest.mark.parametrize("size", [150, 112, 300])
def test_transform_puts_similar_landmarks_exactly_on_the_template(size: int) -> None:
    # Any rotated, scaled, shifted copy of the template maps back onto it (scaled to size).
    placed = apply(rotation_about(np.array([75, 75]), 33.0, 2.7), LANDMARK_TEMPLATE) + 400
    matrix = alignment.chip_transform(placed, size=size)
    np.testing.assert_allclose(apply(matrix, placed), LANDMARK_TEMPLATE * size / 150, atol=1e-3)


def test_chip_shape_dtype_and_eyes_on_the_template(face_image, face) -> None:
    chip = alignment.align_face(face_image, face.landmarks)
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and chip.dtype == np.uint8
    assert alignment.align_face(face_image, face.landmarks, size=112).shape == (112, 112, 3)
    # Detect again on the chip: the eyes sit where the template says (MTCNN's own jitter aside).
    (again,) = mtcnn_faces(chip)
    assert np.abs(again.landmarks[:2] - LANDMARK_TEMPLATE[:2]).max() < 5


def test_align_faces_stacks_chips(face_image, face) -> None:
    chips = alignment.align_faces(face_image, [face, face])
    assert chips.shape == (2, CHIP_SIZE, CHIP_SIZE, 3) and chips.dtype == np.uint8
    np.testing.assert_array_equal(chips[0], alignment.align_face(face_image, face.landmarks))
    assert alignment.align_faces(face_image, []).shape == (0, CHIP_SIZE, CHIP_SIZE, 3)


def test_rolled_face_comes_out_upright(face_image, face) -> None:
    upright_chip = alignment.align_face(face_image, face.landmarks)
    centre = face.landmarks.mean(axis=0)
    for degrees in (-35.0, 25.0):
        turn = rotation_about(centre, degrees)
        rolled = cv2.warpAffine(face_image, turn, face_image.shape[1::-1], flags=cv2.INTER_CUBIC)
        (found,) = mtcnn_faces(rolled)
        eyes = found.landmarks[1] - found.landmarks[0]
        assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) > 15  # really rolled
        chip = alignment.align_face(rolled, found.landmarks)
        (again,) = mtcnn_faces(chip)
        level = again.landmarks[1] - again.landmarks[0]
        assert abs(np.degrees(np.arctan2(level[1], level[0]))) < 5  # eyes level in the chip
        # Same framing as the unrolled chip, up to MTCNN's landmark jitter (a few pixels).
        inner = (slice(25, 125), slice(25, 125))
        match = np.corrcoef(chip[inner].ravel(), upright_chip[inner].ravel())[0, 1]
        assert match > 0.75, f"rolled by {degrees}°: correlation {match:.2f} with upright"


def test_outside_the_photo_is_black(face_image, face) -> None:
    # Shift the face to the top-left corner: the chip's top-left part lies outside the photo.
    shifted = face.landmarks - np.array([face.box[0], face.box[1]], np.float32)
    chip = alignment.align_face(face_image, shifted)
    assert (chip[:10, :10] == 0).all()
    assert chip[100:, 100:].mean() > 20


def test_large_faces_are_smoothed_before_sampling() -> None:
    # A 1-pixel checkerboard seen from 8× away averages to grey; plain bilinear would alias.
    board = (np.indices((1600, 1600)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    landmarks = (LANDMARK_TEMPLATE - 75) * 8 + 800
    chip = alignment.align_face(image, landmarks)
    assert abs(chip.mean() - 127.5) < 3 and chip.std() < 6


@pytest.mark.parametrize(
    "landmarks",
    [np.zeros((4, 2)), np.full((5, 2), np.nan), np.full((5, 2), 7.0)],
    ids=["shape", "nan", "coincident"],
)
def test_bad_landmarks_raise(face_image, landmarks: np.ndarray) -> None:
    with pytest.raises(AlignmentError):
        alignment.align_face(face_image, landmarks)


def test_sampling_matches_dlib_chips(face_image) -> None:
    """With dlib's own chip transform, warp_chip reproduces dlib.get_face_chip (bench-only dlib)."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    (rect,) = dlib.get_frontal_face_detector()(face_image, 1)
    shape = predictor(face_image, rect)
    details = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=0.25)
    # dlib's get_mapping_to_chip: rotated rectangle corners → chip corners.
    rect = details.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    corners = np.array(
        [[rect.left(), rect.top()], [rect.right(), rect.top()], [rect.right(), rect.bottom()]]
    )
    turn = rotation_about(centre, -np.degrees(details.angle))
    source = apply(turn, corners).astype(np.float32)
    target = np.float32([[0, 0], [CHIP_SIZE - 1, 0], [CHIP_SIZE - 1, CHIP_SIZE - 1]])
    matrix = cv2.getAffineTransform(source, target)
    ours = alignment.warp_chip(face_image, matrix)
    theirs = dlib.get_face_chip(face_image, shape, size=CHIP_SIZE, padding=0.25)
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.5
