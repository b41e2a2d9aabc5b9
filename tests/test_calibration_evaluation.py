"""The score calibration and the evaluation maths, on embeddings with a known structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike import evaluation
from lookalike.calibration import REFERENCE_DIR, Calibration, fit_calibration, pair_similarities


def clustered_embeddings(people: int, photos_each: int, noise: float, seed: int = 0):
    """Unit vectors scattered around one random centre per person."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, 64))
    labels = np.repeat(np.arange(people), photos_each)
    vectors = centres[labels] + noise * rng.standard_normal((len(labels), 64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels.astype(str)


def test_pair_similarities_separates_same_person_from_strangers():
    vectors, labels = clustered_embeddings(30, 4, noise=0.5)
    same, strangers = pair_similarities(vectors, labels)
    assert len(same) == 30 * 6  # every within-person pair: C(4, 2) per person
    assert same.mean() > 0.7 > 0.2 > abs(strangers.mean())


def test_score_is_monotone_and_anchored_on_both_distributions():
    vectors, labels = clustered_embeddings(30, 4, noise=0.5)
    calibration = fit_calibration(vectors, labels)
    similarities = np.linspace(-1, 1, 401)
    scores = calibration.score(similarities)
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0 and scores[-1] == 100
    # More similar than every stranger pair but below every same-person pair reads 50.
    gap = (calibration.strangers_quantiles[-1] + calibration.same_person_quantiles[0]) / 2
    assert calibration.strangers_quantiles[-1] < calibration.same_person_quantiles[0]  # a gap
    assert calibration.score(gap) == pytest.approx(50.0)
    median_same = calibration.same_person_quantiles[100]
    assert calibration.score(median_same) == pytest.approx(75.0, abs=1.0)


def test_calibration_round_trips_through_json_and_rejects_damage():
    vectors, labels = clustered_embeddings(10, 3, noise=0.6)
    calibration = fit_calibration(vectors, labels)
    again = Calibration.from_dict(calibration.to_dict())
    assert again.score(0.5) == pytest.approx(calibration.score(0.5), abs=1e-4)
    broken = calibration.to_dict() | {"strangers_quantiles": [0.1, 0.2]}
    with pytest.raises(ValueError, match="quantiles"):
        Calibration.from_dict(broken)


def test_calibration_needs_people_with_two_photos():
    vectors, labels = clustered_embeddings(20, 1, noise=0.5)
    with pytest.raises(ValueError, match="at least two photos"):
        fit_calibration(vectors, labels)


def test_queries_are_the_first_photo_of_people_with_two_or_more():
    paths = ["b/2.jpg", "a/1.jpg", "b/1.jpg", "c/1.jpg", "a/2.jpg"]
    labels = np.array(["b", "a", "b", "c", "a"])
    assert evaluation.split_queries(paths, labels).tolist() == [False, True, True, False, False]


def test_identification_is_perfect_on_tight_clusters_and_counts_missed_queries():
    vectors, labels = clustered_embeddings(25, 3, noise=0.05)
    paths = [f"{label}/{index}.jpg" for index, label in enumerate(labels)]
    found = np.ones(len(labels), bool)
    found[0] = False  # the first person's query photo had no face
    data = evaluation.LabelledEmbeddings(paths, labels, vectors, found)
    result = evaluation.identification(data)
    assert result["queries"] == 25 and result["queries_without_face"] == 1
    assert result["per_photo"]["top1"] == pytest.approx(24 / 25)
    assert result["per_person"]["top5"] == pytest.approx(24 / 25)


def test_identification_degrades_with_noise_and_cmc_is_monotone():
    vectors, labels = clustered_embeddings(60, 3, noise=1.6, seed=3)
    paths = [f"{label}/{index}.jpg" for index, label in enumerate(labels)]
    data = evaluation.LabelledEmbeddings(paths, labels, vectors, np.ones(len(labels), bool))
    result = evaluation.identification(data)
    cmc = result["per_photo"]["cmc"]
    assert 0 < cmc[0] < 1
    assert all(later >= earlier for earlier, later in zip(cmc, cmc[1:], strict=False))


def test_best_threshold_splits_separable_scores():
    similarities = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    is_same = np.array([False, False, False, True, True, True])
    assert evaluation.best_threshold(similarities, is_same) == pytest.approx(0.7)


def test_pair_verification_and_report_files(tmp_path):
    vectors, labels = clustered_embeddings(40, 4, noise=0.9)
    paths = [f"{label}/{index}.jpg" for index, label in enumerate(labels)]
    data = evaluation.LabelledEmbeddings(paths, labels, vectors, np.ones(len(labels), bool))
    report = evaluation.evaluate(data)
    assert 0.8 < report["pairs"]["accuracy"] <= 1.0
    assert report["pairs"]["roc_auc"] > 0.9
    written = evaluation.save_report(report, tmp_path, title="synthetic")
    assert [path.name for path in written] == ["report.json", "roc.png", "cmc.png"]
    assert all(path.stat().st_size > 1000 for path in written[1:])
    assert "top-1" in evaluation.summary_text(report)


def test_small_gallery_prefers_the_models_reference_else_fits_roughly():
    import pandas as pd

    from lookalike.index_build import _calibrate

    vectors, labels = clustered_embeddings(12, 2, noise=0.5)  # 12 same-person pairs: few
    table = pd.DataFrame({"group": labels})
    reference = json.loads((REFERENCE_DIR / "dlib_face_resnet.json").read_text())
    shipped = {"sha256": reference["model_sha256"]}
    borrowed, source = _calibrate(vectors, table, shipped)
    assert "reference" in source
    # It is that model's shipped calibration, not one fitted on these few pairs.
    assert borrowed.to_dict() == Calibration.from_dict(reference["calibration"]).to_dict()
    assert borrowed.to_dict() != fit_calibration(vectors, labels).to_dict()
    _, source = _calibrate(vectors, table, {"sha256": "0" * 64})  # e.g. a freshly trained model
    assert "rough" in source
