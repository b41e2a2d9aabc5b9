"""lookalike.explain: region masks from any model's landmark template, and occlusion sensitivity.

These tests need no TensorFlow: a stand-in pipeline embeds chips as their coarse pixels, so what
makes two chips alike is known in advance. The real model is exercised through the web API
(webapp-backend/tests/test_explain_api.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike import alignment, explain
from lookalike.detection import DetectedFace

# The 150-px chips of the dlib-framed default model, and the common 112-px ArcFace framing.
DLIB_150 = (alignment.LANDMARK_TEMPLATE.astype(np.float32), 150)
ARCFACE_112 = (
    np.array(
        [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]],
        np.float32,
    ),
    112,
)
TEMPLATES = pytest.mark.parametrize(("template", "size"), [DLIB_150, ARCFACE_112])


class PixelPipeline:
    """Embeds a chip as its 48×48 area-averaged, zero-mean pixels (a transparent "model")."""

    min_confidence = 0.9

    def __init__(self, template: np.ndarray, size: int) -> None:
        self.template = template
        self.chip_size = size
        self.calls: list[int] = []

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        self.calls.append(len(chips))
        small = np.stack(
            [cv2.resize(chip, (48, 48), interpolation=cv2.INTER_AREA) for chip in chips]
        ).astype(np.float64)
        vectors = (small - 127.5).reshape(len(chips), -1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def blocky_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random 3-px blocks: structure that survives the stand-in's downsampling."""
    cells = -(-size // 3)
    coarse = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 3, axis=0), 3, axis=1)[:size, :size]


@TEMPLATES
def test_regions_sit_on_their_landmarks_and_do_not_overlap(template: np.ndarray, size: int):
    masks = explain.region_masks(template, size)
    assert list(masks) == list(explain.REGIONS)
    left_eye, right_eye, nose, mouth_left, mouth_right = np.rint(template - 0.5).astype(int)

    def covers(name: str, point: np.ndarray) -> bool:
        return bool(masks[name][point[1], point[0]])

    assert covers("eyes", left_eye) and covers("eyes", right_eye)
    assert covers("nose", nose)
    assert covers("mouth", (mouth_left + mouth_right) // 2)
    for name, mask in masks.items():
        assert mask.shape == (size, size) and mask.dtype == bool
        assert mask.sum() > 0.004 * size * size, name
    # Brows above the eyes, the jaw below the mouth, both eyes and both brows on either side.
    rows_of = {name: np.nonzero(mask)[0] for name, mask in masks.items()}
    eye_row = template[:2, 1].mean()
    assert rows_of["brows"].mean() < eye_row < rows_of["nose"].mean()
    assert rows_of["jaw"].mean() > template[3:, 1].mean()
    midline = template[:2, 0].mean()
    for name in ("eyes", "brows", "jaw"):
        columns = np.nonzero(masks[name])[1]
        assert columns.min() < midline < columns.max(), name
    stacked = np.stack(list(masks.values())).astype(int)
    assert stacked.sum(axis=0).max() == 1


def test_regions_scale_with_the_chip() -> None:
    template, size = DLIB_150
    small = explain.region_masks(template, size)
    large = explain.region_masks(template * 2, size * 2)
    for name in explain.REGIONS:
        assert large[name].sum() / small[name].sum() == pytest.approx(4.0, rel=0.06)


def test_occlusion_paints_only_the_region() -> None:
    template, size = DLIB_150
    rng = np.random.default_rng(1)
    chip = blocky_noise(rng, size)
    mask = explain.region_masks(template, size)["mouth"]
    hidden = explain.occlude(chip, mask, feather_px=4.0)
    fill = np.rint(chip.reshape(-1, 3).mean(axis=0))
    assert np.abs(hidden[mask].astype(float) - fill).max() <= 1
    far = cv2.dilate(mask.astype(np.uint8), np.ones((31, 31), np.uint8)) == 0
    assert np.array_equal(hidden[far], chip[far])


@TEMPLATES
@pytest.mark.parametrize("shared", explain.REGIONS)
def test_the_shared_region_explains_the_likeness(template: np.ndarray, size: int, shared: str):
    # Two unrelated random faces that have exactly one region in common: that region must come
    # out as the most alike, on both sides, and the summary must name it first.
    rng = np.random.default_rng(explain.REGIONS.index(shared))
    you, celebrity = blocky_noise(rng, size), blocky_noise(rng, size)
    region = explain.region_masks(template, size)[shared]
    celebrity[region] = you[region]
    pipeline = PixelPipeline(template, size)

    result = explain.explain_chips(pipeline, you, celebrity)

    assert pipeline.calls == [2 + 2 * len(explain.REGIONS)]  # one batch
    top = result.regions[0]
    assert top.region == shared
    assert top.you > 0 and top.celebrity > 0
    assert top.contribution > 2 * max(score.contribution for score in result.regions[1:])
    named = explain.SUMMARY_NAMES.get(shared, explain.REGION_LABELS[shared].lower())
    assert result.summary.lower().startswith(named)


def test_identical_chips_lose_likeness_wherever_hidden() -> None:
    template, size = DLIB_150
    chip = blocky_noise(np.random.default_rng(7), size)
    result = explain.explain_chips(PixelPipeline(template, size), chip, chip)
    assert result.similarity == pytest.approx(1.0)
    assert all(score.you > 0 and score.celebrity > 0 for score in result.regions)
    assert [score.contribution for score in result.regions] == sorted(
        (score.contribution for score in result.regions), reverse=True
    )


def test_same_chips_same_explanation() -> None:
    template, size = ARCFACE_112
    rng = np.random.default_rng(3)
    you, celebrity = blocky_noise(rng, size), blocky_noise(rng, size)
    first = explain.explain_chips(PixelPipeline(template, size), you, celebrity)
    second = explain.explain_chips(PixelPipeline(template, size), you, celebrity)
    assert first == second


def test_chips_of_the_wrong_size_are_refused() -> None:
    template, size = DLIB_150
    chip = np.zeros((112, 112, 3), np.uint8)
    with pytest.raises(ValueError, match="150"):
        explain.explain_chips(PixelPipeline(template, size), chip, chip)


def score(region: str, contribution: float) -> explain.RegionScore:
    return explain.RegionScore(region, explain.REGION_LABELS[region], contribution, 0.0, 0.0)


@pytest.mark.parametrize(
    ("regions", "text"),
    [
        ([score("eyes", 0.03), score("nose", 0.02)], "Eyes and nose look most alike."),
        ([score("jaw", 0.03), score("mouth", 0.001)], "Face shape looks most alike."),
        ([score("jaw", 0.03), score("nose", 0.02)], "Face shape and nose look most alike."),
        ([score("brows", 0.03), score("mouth", -0.01)], "Eyebrows look most alike."),
        ([score("mouth", 0.001), score("nose", -0.002)], "No single part of the face stands out"),
    ],
)
def test_summary(regions: list[explain.RegionScore], text: str) -> None:
    assert explain.summary_text(regions).startswith(text)


@TEMPLATES
def test_outlines_trace_the_masks(template: np.ndarray, size: int) -> None:
    outlines = explain.region_outlines(template, size)
    assert [len(outlines[name]) for name in explain.REGIONS] == [2, 2, 1, 1, 1]
    masks = explain.region_masks(template, size)
    for name, polygons in outlines.items():
        drawn = np.zeros((size, size), np.uint8)
        for polygon in polygons:
            points = np.array(polygon) * size - 0.5
            assert points.min() >= -0.5 and points.max() <= size
            cv2.fillPoly(drawn, [np.rint(points).astype(np.int32)], 1)
        overlap = (drawn.astype(bool) & masks[name]).sum() / masks[name].sum()
        assert overlap > 0.9, name


def face(box: tuple[float, float, float, float]) -> DetectedFace:
    return DetectedFace(box, 0.99, np.zeros((5, 2), np.float32))


def test_face_at_box_picks_the_overlapping_face() -> None:
    big, small = face((100, 100, 300, 300)), face((400, 120, 480, 200))
    assert explain.face_at_box([big, small], None) is big
    assert explain.face_at_box([big, small], (405, 118, 482, 205)) is small
    assert explain.face_at_box([big, small], (600, 600, 700, 700)) is None
    assert explain.face_at_box([], (0, 0, 10, 10)) is None
    assert explain.box_overlap((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_the_thumbnail_face_box_is_the_centred_face() -> None:
    x1, y1, x2, y2 = explain.thumbnail_face_box(180)
    assert (x2 - x1, y2 - y1) == pytest.approx((100.0, 100.0))
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((90.0, 90.0))
