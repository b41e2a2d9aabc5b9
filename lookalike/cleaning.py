"""Find and remove the bad rows of the IMDB-WIKI metadata (a DataFrame from ``load_metadata``).

``validation_report`` counts every known problem without removing anything. Filters are plain
functions ``DataFrame -> DataFrame`` with a readable ``__name__``, so they compose and
``apply_filters`` can say how many rows each one removed. Content-hash dedup handles the IMDB
half's heavy identity noise: one image filed under two names is unusable.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lookalike.imdb import BOX_COLUMNS

logger = logging.getLogger(__name__)

Filter = Callable[[pd.DataFrame], pd.DataFrame]
HASH_COLUMN = "content_hash"
STANDARD_MIN_SCORE = 1.0


def validation_report(df: pd.DataFrame, *, min_score: float = STANDARD_MIN_SCORE) -> dict[str, int]:
    """Count each problem (a row may have several; ``below_min_score``: finite, < min_score)."""
    score = df["face_score"].to_numpy(dtype=np.float64)
    boxes = df[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)
    age = df["age"]
    report = {
        "total_rows": len(df),
        "no_face": int(np.isneginf(score).sum()),
        "broken_box": int((boxes == 1).all(axis=1).sum()),
        "second_face": int(df["second_face_score"].notna().sum()),
        "low_score_0_to_1": int(((score > 0) & (score < 1)).sum()),
        "below_min_score": int((score < min_score).sum() - np.isneginf(score).sum()),
        "invalid_dob": int(df["dob"].isna().sum()),
        "birth_year_before_1900": int((df["birth_year"] < 1900).sum()),
        "unknown_photo_year": int(df["photo_taken"].isna().sum()),
        "age_negative": int((age < 0).sum()),
        "age_over_100": int((age > 100).sum()),
        "missing_gender": int(df["gender"].isna().sum()),
        "empty_name": int((df["name"] == "").sum()),
        "duplicate_full_path": int(df["full_path"].duplicated().sum()),
    }
    return report


def distinct_celebrities(df: pd.DataFrame) -> int:
    """How many different people the rows show: distinct ``celeb_id`` (imdb.mat), else distinct
    non-empty ``name`` (wiki.mat has no ids)."""
    if "celeb_id" in df.columns:
        return int(df["celeb_id"].nunique())
    return int(df.loc[df["name"] != "", "name"].nunique())


def _named(name: str, function: Filter) -> Filter:
    function.__name__ = function.__qualname__ = name
    return function


def has_face(df: pd.DataFrame) -> pd.DataFrame:
    """Rows where the detector found a face (``face_score`` is not ``-inf``)."""
    return df[np.isfinite(df["face_score"].to_numpy(dtype=np.float64))]


def single_face(df: pd.DataFrame) -> pd.DataFrame:
    """Rows without a second face."""
    return df[df["second_face_score"].isna()]


def gender_known(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose gender is 0 or 1."""
    return df[df["gender"].isin([0.0, 1.0])]


def has_name(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a non-empty name."""
    return df[df["name"].fillna("").str.strip() != ""]


def not_broken(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose face box is not the broken-download marker ``[1 1 1 1]``."""
    return df[~(df[list(BOX_COLUMNS)] == 1).all(axis=1)]


def min_face_score(threshold: float) -> Filter:
    """A filter keeping rows with ``face_score >= threshold`` (drops -inf and NaN)."""
    return _named(
        f"min_face_score({threshold:g})", lambda df: df[df["face_score"].ge(threshold).to_numpy()]
    )


def age_in_range(low: int = 0, high: int = 100) -> Filter:
    """A filter keeping rows whose known age lies in ``[low, high]`` (unknown ages drop)."""
    if low > high:
        raise ValueError(f"age range is empty: low {low} > high {high}")

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        age = df["age"]
        return df[((age >= low) & (age <= high)).fillna(False).to_numpy(dtype=bool)]

    return _named(f"age_in_range({low}, {high})", keep)


def standard_filters(min_score: float = STANDARD_MIN_SCORE) -> list[Filter]:
    """The common clean-up: a face with score ≥ 1, no second face, age 0–100, gender known."""
    return [has_face, min_face_score(min_score), single_face, age_in_range(0, 100), gender_known]


def apply_filters(
    df: pd.DataFrame, filters: Sequence[Filter]
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Apply ``filters`` in order; report rows removed and remaining after each one."""
    report = []
    for keep in filters:
        before = len(df)
        df = keep(df)
        name = getattr(keep, "__name__", repr(keep))
        report.append({"filter": name, "removed": before - len(df), "remaining": len(df)})
    return df, report


def hash_images(
    df: pd.DataFrame, images_root: str | Path, *, progress: bool = True
) -> pd.DataFrame:
    """Copy of ``df`` with a ``content_hash`` column (SHA-1 of each file; <NA> when missing)."""
    root = Path(images_root)
    hashes: list[str | None] = []
    missing = 0
    for relative in tqdm(df["full_path"], desc="hashing", unit="img", disable=not progress):
        try:
            hashes.append(hashlib.sha1((root / relative).read_bytes()).hexdigest())
        except (FileNotFoundError, IsADirectoryError):
            hashes.append(None)
            missing += 1
    if missing:
        logger.warning("%d of %d images missing under %s", missing, len(df), root)
    result = df.copy()
    result[HASH_COLUMN] = pd.array(hashes, dtype="string")
    return result


def drop_conflicting_duplicates(df: pd.DataFrame, *, identity: str | None = None) -> pd.DataFrame:
    """Drop every copy of an image filed under two identities; keep one copy per identity.

    ``identity`` defaults to ``celeb_name`` (imdb) or ``name`` (wiki). Needs the
    ``content_hash`` column from :func:`hash_images`; rows without a hash (missing files) are
    kept, since nothing is known against them.
    """
    if HASH_COLUMN not in df.columns:
        raise ValueError(f"no {HASH_COLUMN!r} column: run hash_images first")
    if identity is None:
        identity = "celeb_name" if "celeb_name" in df.columns else "name"
    hashed = df[HASH_COLUMN].notna().to_numpy()
    identities = df.loc[hashed].groupby(HASH_COLUMN, sort=False)[identity].nunique()
    conflicting = identities.index[identities > 1]
    in_conflict = df[HASH_COLUMN].isin(conflicting).to_numpy() & hashed
    repeated = df.duplicated(subset=[HASH_COLUMN, identity]).to_numpy() & hashed
    kept = df[~in_conflict & ~repeated]
    logger.info(
        "dedup: %d rows of %d images under several names dropped, %d repeated copies dropped",
        int(in_conflict.sum()),
        len(conflicting),
        int((repeated & ~in_conflict).sum()),
    )
    return kept
