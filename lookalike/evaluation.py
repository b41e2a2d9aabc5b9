"""How well embeddings tell people apart: identification (top-k, CMC) and pair verification (ROC).

Everything here works on embeddings and labels, so the same numbers can be computed for any
model — ours, a trained one, or the dlib reference in the benchmarks.

Identification protocol: for each person with at least two photos, the first file (sorted by
name) is the query; the gallery is every other photo, singletons included (distractors).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lookalike.calibration import pair_similarities
from lookalike.errors import InvalidInputError

CMC_RANKS = 20


@dataclass(frozen=True)
class LabelledEmbeddings:
    """Embeddings of a labelled photo set; rows whose face was missed are zero with found=False."""

    paths: list[str]
    labels: np.ndarray
    embeddings: np.ndarray
    found: np.ndarray

    def __post_init__(self) -> None:
        count = len(self.paths)
        if not len(self.labels) == len(self.embeddings) == len(self.found) == count:
            raise ValueError("paths, labels, embeddings and found must have the same length")


def split_queries(paths: list[str], labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the query photos: the first path (by name) of each person with ≥ 2 photos."""
    labels = np.asarray(labels)
    order = sorted(range(len(paths)), key=lambda index: paths[index])
    seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    for index in order:
        counts[labels[index]] = counts.get(labels[index], 0) + 1
        seen.setdefault(labels[index], index)
    is_query = np.zeros(len(paths), bool)
    for label, first in seen.items():
        if counts[label] >= 2:
            is_query[first] = True
    return is_query


def _rank_of_truth(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """0-based rank of the true class in each row of scores (-inf marks impossible classes)."""
    true_scores = scores[np.arange(len(scores)), truth]
    return (scores > true_scores[:, None]).sum(axis=1)


def identification(data: LabelledEmbeddings) -> dict:
    """Top-1/top-5 per photo (best gallery photo per person) and per person (centroid), CMC."""
    is_query = split_queries(data.paths, data.labels)
    names, label_ids = np.unique(data.labels, return_inverse=True)
    gallery = ~is_query & data.found
    queries = np.flatnonzero(is_query)
    answered = queries[data.found[queries]]
    if len(answered) == 0:
        raise InvalidInputError("identification needs people with at least two photos with faces")

    similarities = data.embeddings[answered] @ data.embeddings[gallery].T
    gallery_labels = label_ids[gallery]
    per_photo = np.full((len(answered), len(names)), -np.inf)
    for column, label in enumerate(gallery_labels):
        np.maximum(per_photo[:, label], similarities[:, column], out=per_photo[:, label])

    centroids = np.zeros((len(names), data.embeddings.shape[1]))
    np.add.at(centroids, gallery_labels, data.embeddings[gallery])
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    has_photos = norms[:, 0] > 0
    centroids[has_photos] /= norms[has_photos]
    per_person = data.embeddings[answered] @ centroids.T
    per_person[:, ~has_photos] = -np.inf

    truth = label_ids[answered]
    results = {
        "queries": int(len(queries)),
        "queries_without_face": int(len(queries) - len(answered)),
    }
    results["gallery_photos"] = int(gallery.sum())
    results["gallery_people"] = int(has_photos.sum())
    for method, scores in (("per_photo", per_photo), ("per_person", per_person)):
        ranks = _rank_of_truth(scores, truth)
        # A query whose face was missed counts as a failure at every rank.
        cmc = [float((ranks < rank).sum() / len(queries)) for rank in range(1, CMC_RANKS + 1)]
        results[method] = {"top1": cmc[0], "top5": cmc[4], "cmc": cmc}
    return results


def best_threshold(similarities: np.ndarray, is_same: np.ndarray) -> float:
    """The similarity threshold (predict "same" at or above it) with the best accuracy."""
    order = np.argsort(similarities, kind="stable")
    ordered, same = similarities[order], is_same[order]
    same_before = np.r_[0, np.cumsum(same)]
    different_before = np.r_[0, np.cumsum(~same)]
    # Threshold at ordered[i]: pairs from i on are called "same".
    correct = (same_before[-1] - same_before[:-1]) + different_before[:-1]
    return float(ordered[int(np.argmax(correct))])


def pair_verification(data: LabelledEmbeddings, *, folds: int = 10, seed: int = 0) -> dict:
    """Same/different-person accuracy with a threshold chosen by k-fold cross-validation; AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rows = np.flatnonzero(data.found)
    same, strangers = pair_similarities(
        data.embeddings[rows], data.labels[rows], max_pairs=6000, seed=seed
    )
    if len(same) < folds or len(strangers) < folds:
        raise InvalidInputError(
            "pair verification needs people with at least two photos with faces"
        )
    rng = np.random.default_rng(seed)
    strangers = rng.choice(strangers, size=min(len(strangers), len(same)), replace=False)
    similarities = np.r_[same, strangers]
    is_same = np.r_[np.ones(len(same), bool), np.zeros(len(strangers), bool)]
    fold_of = rng.permutation(len(similarities)) % folds

    accuracies, thresholds = [], []
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        threshold = best_threshold(similarities[train], is_same[train])
        thresholds.append(threshold)
        accuracies.append(float(((similarities[test] >= threshold) == is_same[test]).mean()))
    false_positive_rate, true_positive_rate, _ = roc_curve(is_same, similarities)
    return {
        "same_pairs": int(len(same)),
        "different_pairs": int(len(strangers)),
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "threshold": float(np.mean(thresholds)),
        "roc_auc": float(roc_auc_score(is_same, similarities)),
        "roc": {
            "false_positive_rate": false_positive_rate[:: max(1, len(false_positive_rate) // 200)]
            .round(5)
            .tolist(),
            "true_positive_rate": true_positive_rate[:: max(1, len(true_positive_rate) // 200)]
            .round(5)
            .tolist(),
        },
    }


def evaluate(data: LabelledEmbeddings) -> dict:
    """Identification, pair verification and missed faces of one labelled embedding set."""
    return {
        "photos": len(data.paths),
        "people": int(len(np.unique(data.labels))),
        "missed_faces": int((~data.found).sum()),
        "identification": identification(data),
        "pairs": pair_verification(data),
    }


def headline(report: dict) -> dict[str, Any]:
    """The figures of a report that fit in one table row (photos, people, top-k, pairs)."""
    found = report["identification"]
    return {
        "photos": report["photos"],
        "people": report["people"],
        "queries": found["queries"],
        "top1": found["per_photo"]["top1"],
        "top5": found["per_photo"]["top5"],
        "per_person_top1": found["per_person"]["top1"],
        "per_person_top5": found["per_person"]["top5"],
        "pair_accuracy": report["pairs"]["accuracy"],
        "pair_auc": report["pairs"]["roc_auc"],
    }


def save_report(report: dict, out_dir: str | Path, *, title: str = "") -> list[Path]:
    """Write report.json and, for what the report holds, the ROC and CMC curves (PNG)."""
    # No backend is forced here: headless runs pick a file backend by themselves, and notebooks
    # keep their inline one. The curves are drawn by lookalike.plots, as in the notebooks.
    import matplotlib.pyplot as plt

    from lookalike import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(report, indent=1))

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        written.append(out / name)
        figure.savefig(written[-1], dpi=120)
        plt.close(figure)

    if "pairs" in report:
        figure, axes = plt.subplots(figsize=(5, 4))
        plots.roc_curves({"pairs": report}, ax=axes, title=f"{title} ROC".strip(), log_scale=True)
        save(figure, "roc.png")
    if "identification" in report:
        figure, axes = plt.subplots(figsize=(5, 4))
        for method in ("per_photo", "per_person"):
            label = method.replace("_", " ")
            plots.cmc_curves({label: report}, method=method, ax=axes, title=f"{title} CMC".strip())
        save(figure, "cmc.png")
    return written


def summary_text(report: dict) -> str:
    """A few human-readable lines of a report."""
    lines = [f"photos: {report['photos']}, missed faces: {report['missed_faces']}"]
    if "identification" in report:
        found = report["identification"]
        lines.append(
            f"identification ({found['queries']} queries, {found['gallery_photos']} gallery "
            f"photos): per photo top-1 {found['per_photo']['top1']:.2%} "
            f"top-5 {found['per_photo']['top5']:.2%}; per person top-1 "
            f"{found['per_person']['top1']:.2%} top-5 {found['per_person']['top5']:.2%}"
        )
    if "pairs" in report:
        pairs = report["pairs"]
        lines.append(
            f"pairs ({pairs['same_pairs']} same + {pairs['different_pairs']} different): "
            f"accuracy {pairs['accuracy']:.2%} ± {pairs['accuracy_std']:.2%}, "
            f"AUC {pairs['roc_auc']:.4f}, threshold {pairs['threshold']:.3f}"
        )
    return "\n".join(lines)


class MatchMiss(NamedTuple):
    """A held-out query photo the app did not answer right at rank 1."""

    photo: Any  # the query's GalleryPhoto
    best: dict | None  # the app's #1 match; None when no face was found
    truth: dict | None  # the right person's match, when among the top MAX_TOP_K
    rank: int | None  # 1-based rank of the right person, when among them


def app_misses(matcher: Any, queries: Sequence[Any]) -> list[MatchMiss]:
    """Match each query photo (a ``GalleryPhoto`` of an indexed person, not itself in the index)
    as the app does, with ``matcher`` (a ``lookalike.match.Matcher``); the ones not right at
    rank 1. The first face found is the query's."""
    from lookalike.match import MAX_TOP_K, MatchOptions, NoFaceError

    misses = []
    for photo in queries:
        try:
            found = matcher.match(photo.path, MatchOptions(top_k=MAX_TOP_K))
        except NoFaceError:
            misses.append(MatchMiss(photo, None, None, None))
            continue
        matches = found["faces"][0]["matches"]
        ranks = [
            rank for rank, hit in enumerate(matches) if hit["celebrity_id"] == photo.celebrity_id
        ]
        if not ranks:
            misses.append(MatchMiss(photo, matches[0], None, None))
        elif ranks[0] > 0:
            misses.append(MatchMiss(photo, matches[0], matches[ranks[0]], ranks[0] + 1))
    return misses
