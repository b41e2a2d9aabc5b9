"""``index_build.write_index``, the one writer of index folders (the build and the benchmarks')."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lookalike import fixtures
from lookalike.calibration import fit_calibration
from lookalike.index import CelebrityIndex
from lookalike.index_build import write_index

DOCUMENTED_FILES = {
    "index.json",
    "embeddings.npy",
    "photos.csv",
    "celebrities.csv",
    "thumbnails.bin",
    "thumbnail_offsets.npy",
}


def _clustered(counts: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    centres = rng.standard_normal((len(counts), 16))
    vectors = centres[labels] + 0.3 * rng.standard_normal((len(labels), 16))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_written_index_loads_and_finds_its_own_celebrity(tmp_path: Path) -> None:
    counts = np.array([3, 1, 4, 2])
    embeddings = _clustered(counts.tolist())
    genders = np.array(["female", "male", "female", "male"])
    out = fixtures.write_synthetic_index(tmp_path / "index", embeddings, counts, genders, {})
    assert {path.name for path in out.iterdir()} == DOCUMENTED_FILES  # no centroids.npy

    index = CelebrityIndex(out, search="exact")
    assert len(index) == counts.sum() and index.manifest["celebrities"] == len(counts)
    assert index.celebrities["first_photo"].tolist() == [0, 3, 4, 8]
    best = index.search(embeddings[5], top_k=2)[0]  # a photo of celebrity-2
    assert index.celebrities.iloc[best.celebrity_row]["celebrity_id"] == "celebrity-2"
    assert index.photo_record(9)["gender"] == "male"


def test_thumbnails_are_stored_per_photo(tmp_path: Path) -> None:
    embeddings = _clustered([2, 1])
    photos = pd.DataFrame(
        {
            "celebrity_id": ["a", "a", "b"],
            "source_path": ["a1.jpg", "a2.jpg", "b1.jpg"],
            "photo_year": [2000, None, 2010],
            "age": [30, None, 40],
            "gender": ["female", "female", None],
        }
    )
    celebrities = pd.DataFrame(
        {"celebrity_id": ["a", "b"], "name": ["A", "B"], "gender": ["female", None]}
    ).assign(photo_count=[2, 1])
    calibration = fit_calibration(_clustered([4, 4, 4]), np.repeat(np.arange(3), 4))
    blobs = [b"first", b"", b"third!"]
    write_index(
        tmp_path,
        embeddings,
        photos,
        celebrities,
        model_info={},
        calibration=calibration,
        thumbnails=blobs,
    )
    index = CelebrityIndex(tmp_path)
    assert [index.thumbnail(row) for row in range(3)] == blobs
    assert index.photo_record(1) == {
        "photo_id": 1,
        "age": None,
        "photo_year": None,
        "gender": "female",
    }


def test_a_leftover_centroids_file_is_ignored(tmp_path: Path) -> None:
    counts = np.array([4, 4, 4])
    genders = np.array(["female", "male", "male"])
    out = fixtures.write_synthetic_index(tmp_path, _clustered([4, 4, 4]), counts, genders, {})
    np.save(out / "centroids.npy", np.zeros((5, 3), np.float32))  # an older build's, even wrong
    assert len(CelebrityIndex(out)) == 12


def test_tables_that_disagree_are_refused(tmp_path: Path) -> None:
    embeddings = _clustered([4, 4, 4])
    photos = pd.DataFrame({"celebrity_id": np.repeat(["a", "b", "c"], 4)}).assign(
        source_path="", photo_year=2000, age=40, gender=None
    )
    celebrities = pd.DataFrame(
        {"celebrity_id": ["a", "b", "c"], "name": ["A", "B", "C"], "gender": None}
    ).assign(photo_count=[4, 4, 3])
    calibration = fit_calibration(embeddings, np.repeat(np.arange(3), 4))
    with pytest.raises(ValueError, match="must agree"):
        write_index(
            tmp_path, embeddings, photos, celebrities, model_info={}, calibration=calibration
        )
    assert not (tmp_path / "index.json").exists()
