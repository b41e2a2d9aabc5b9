"""The 0–100 look-alike score, fitted on the gallery's own similarities.

Raw cosine similarity means little to a person (is 0.55 a lot?). The score places a similarity
on two distributions measured on the gallery:

    score = 50 · P(strangers are less similar) + 50 · P(two photos of one person are less similar)

so 0–50 reads "as similar as strangers usually are", 50 means "more similar than any stranger
pair we measured", and 100 means "as similar as the closest photos of the same person". Both
curves are monotone, so the score keeps the ranking of the similarities.

A gallery too small to measure itself well (fewer than ``RELIABLE_PAIRS`` same-person pairs)
borrows the reference calibration shipped for its model (``lookalike/calibrations/``, fitted on
LFW people by ``benchmarks/fit_reference_calibration.py``), matched by the model file's sha256;
a model without one (a freshly trained model) is fitted on what the gallery has, down to
``MIN_PAIRS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUANTILE_COUNT = 201
MIN_PAIRS = 10  # below this, quantiles of the gallery's pairs mean nothing
RELIABLE_PAIRS = 50  # below this, a shipped reference calibration is preferred
REFERENCE_DIR = Path(__file__).resolve().parent / "calibrations"


@dataclass(frozen=True)
class Calibration:
    """Quantiles of same-person and different-person cosine similarities."""

    same_person_quantiles: np.ndarray
    strangers_quantiles: np.ndarray
    same_person_pairs: int
    stranger_pairs: int

    def score(self, similarity: np.ndarray | float) -> np.ndarray:
        """Calibrated score(s) in [0, 100] for cosine similarities."""
        levels = np.linspace(0.0, 1.0, QUANTILE_COUNT)
        below_strangers = np.interp(similarity, self.strangers_quantiles, levels)
        below_same_person = np.interp(similarity, self.same_person_quantiles, levels)
        return 50.0 * below_strangers + 50.0 * below_same_person

    def to_dict(self) -> dict:
        return {
            "method": "50*P_strangers(s'<s) + 50*P_same_person(s'<s)",
            "same_person_pairs": self.same_person_pairs,
            "stranger_pairs": self.stranger_pairs,
            "same_person_quantiles": np.round(self.same_person_quantiles, 6).tolist(),
            "strangers_quantiles": np.round(self.strangers_quantiles, 6).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        try:
            same = np.asarray(data["same_person_quantiles"], dtype=np.float64)
            strangers = np.asarray(data["strangers_quantiles"], dtype=np.float64)
            counts = int(data["same_person_pairs"]), int(data["stranger_pairs"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"calibration record is malformed: {error}") from error
        if same.shape != (QUANTILE_COUNT,) or strangers.shape != (QUANTILE_COUNT,):
            raise ValueError(f"calibration needs {QUANTILE_COUNT} quantiles per distribution")
        return cls(same, strangers, *counts)


def pair_similarities(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of same-label pairs (all, or a sample) and of random stranger pairs."""
    labels = np.asarray(labels)
    if len(embeddings) != len(labels):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.diff(np.r_[starts, len(labels)])

    first, second = [], []
    for start, size in zip(starts, sizes, strict=True):
        if size >= 2:
            rows, cols = np.triu_indices(size, k=1)
            first.append(order[start + rows])
            second.append(order[start + cols])
    if first:
        same_a, same_b = np.concatenate(first), np.concatenate(second)
        if len(same_a) > max_pairs:
            keep = rng.choice(len(same_a), max_pairs, replace=False)
            same_a, same_b = same_a[keep], same_b[keep]
    else:
        same_a = same_b = np.zeros(0, dtype=np.int64)

    stranger_a = rng.integers(0, len(labels), size=max_pairs)
    stranger_b = rng.integers(0, len(labels), size=max_pairs)
    strangers = labels[stranger_a] != labels[stranger_b]
    stranger_a, stranger_b = stranger_a[strangers], stranger_b[strangers]

    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", embeddings[a], embeddings[b], dtype=np.float64)

    return cosine(same_a, same_b), cosine(stranger_a, stranger_b)


def fit_calibration(
    embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0, min_pairs: int = MIN_PAIRS
) -> Calibration:
    """Fit the score on a labelled set of unit-length embeddings (e.g. the gallery itself)."""
    same_person, strangers = pair_similarities(embeddings, labels, seed=seed)
    if len(same_person) < min_pairs or len(strangers) < min_pairs:
        raise ValueError(
            f"cannot calibrate scores: {len(same_person)} same-person and {len(strangers)} "
            f"stranger pairs (need {min_pairs} of each: the gallery needs more celebrities "
            "with at least two photos)"
        )
    levels = np.linspace(0.0, 1.0, QUANTILE_COUNT)
    return Calibration(
        same_person_quantiles=np.quantile(same_person, levels),
        strangers_quantiles=np.quantile(strangers, levels),
        same_person_pairs=len(same_person),
        stranger_pairs=len(strangers),
    )


def reference_calibration(model_sha256: str) -> Calibration | None:
    """The calibration shipped for the model with this sha256, if there is one."""
    for path in sorted(REFERENCE_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("model_sha256") == model_sha256:
            return Calibration.from_dict(record["calibration"])
    return None
