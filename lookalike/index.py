"""The celebrity index: its on-disk format, loading, and exact search.

An index folder (format version 1) holds:

- ``index.json``: format and version, the model it was built with (name and sha256), counts,
  the score calibration (see ``lookalike.calibration``) and where the photos came from;
- ``embeddings.npy``: float32 (photos × D), unit-length rows, grouped by celebrity in the order
  of ``celebrities.csv`` (memory-mapped on load);
- ``photos.csv``: one row per embedded photo (``photo_id`` = row in ``embeddings.npy``):
  celebrity_id, source_path, photo_year, age, gender;
- ``celebrities.csv``: celebrity_id, name, gender, first_photo, photo_count;
- ``thumbnails.bin`` + ``thumbnail_offsets.npy``: JPEG face thumbnails, one after the other.

``lookalike.index_build.write_index`` writes it. Other files are ignored (an index written by
an older version may also hold a ``centroids.npy``, which nothing reads).

Search goes through a ``lookalike.search.Searcher``: for small indexes, exact — one
matrix-vector product over all photos, then the best photo of each celebrity
(``np.maximum.reduceat`` over the grouped rows) and a partial sort over celebrities. From
``COMPRESSED_SEARCH_MIN_PHOTOS`` photos on, the scan reads 8-bit codes instead (FAISS scalar
quantiser: 4× fewer bytes, the scan is bound by memory bandwidth), and the best candidates are
re-scored exactly from the float32 rows; if the candidates hold fewer than ``top_k``
celebrities the exact scan answers instead. With ``store=`` (a ``milvus-lite://`` or
``milvus://`` URI) the vectors are searched in Milvus instead (``lookalike.milvus_store``).
``benchmarks/bench_search.py`` and ``benchmarks/bench_scale.py`` measure them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lookalike.calibration import Calibration
from lookalike.errors import LookalikeError
from lookalike.gallery import optional_int
from lookalike.search import (  # noqa: F401 (re-exported: where callers found them before)
    CANDIDATES_PER_RESULT,
    COMPRESSED_SEARCH_MIN_PHOTOS,
    Candidate,
    Searcher,
    open_searcher,
)

FORMAT_NAME = "lookalike-index"
FORMAT_VERSION = 1


class IndexFormatError(LookalikeError, ValueError):
    """An index folder that is missing, damaged, or built for another model."""


class CelebrityIndex:
    """A loaded index folder: embeddings, metadata, calibration and thumbnails."""

    def __init__(
        self, index_dir: str | Path, *, search: str = "auto", store: str | None = None
    ) -> None:
        if search not in ("auto", "exact", "compressed"):
            raise ValueError(f"search must be auto, exact or compressed, got {search!r}")
        self.path = Path(index_dir)
        manifest_path = self.path / "index.json"
        if not manifest_path.is_file():
            raise IndexFormatError(
                f"no index at {self.path} (index.json missing): build one with "
                "`lookalike index build`"
            )
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise IndexFormatError(f"{manifest_path} is not valid JSON: {error}") from error
        if self.manifest.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"{manifest_path} is not a lookalike index")
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"index format version {self.manifest.get('format_version')} is not supported "
                f"(this lookalike reads version {FORMAT_VERSION}); rebuild the index"
            )
        try:
            self.embeddings = np.load(self.path / "embeddings.npy", mmap_mode="r")
            self.thumbnail_offsets = np.load(self.path / "thumbnail_offsets.npy")
            self.photos = pd.read_csv(self.path / "photos.csv", keep_default_na=True)
            self.celebrities = pd.read_csv(self.path / "celebrities.csv", keep_default_na=True)
        except (OSError, ValueError, pd.errors.ParserError) as error:
            raise IndexFormatError(f"index at {self.path} is damaged: {error}") from error
        self._check_consistency()
        self.calibration = Calibration.from_dict(self.manifest["calibration"])
        self._row_of_celebrity = {
            cid: row for row, cid in enumerate(self.celebrities["celebrity_id"].astype(str))
        }
        self.searcher: Searcher = open_searcher(self, search, store)

    def _check_consistency(self) -> None:
        photos, celebrities = len(self.photos), len(self.celebrities)
        dimension = self.manifest.get("embedding_size")
        problems = []
        if self.embeddings.ndim != 2 or self.embeddings.shape != (photos, dimension):
            problems.append(f"embeddings {self.embeddings.shape} vs {photos} photos × {dimension}")
        if self.embeddings.dtype != np.float32:
            problems.append(f"embeddings dtype {self.embeddings.dtype}")
        if len(self.thumbnail_offsets) != photos + 1:
            problems.append("thumbnail offsets do not match the photos")
        if photos == 0 or celebrities == 0:
            problems.append("the index is empty")
        elif self.celebrities["photo_count"].sum() != photos:
            problems.append("celebrity photo counts do not add up")
        if problems:
            raise IndexFormatError(f"index at {self.path} is damaged: " + "; ".join(problems))

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def model_sha256(self) -> str | None:
        return self.manifest.get("model", {}).get("sha256")

    def check_model(self, model_info: dict) -> None:
        """Refuse a query model other than the one the index was built with."""
        expected = self.model_sha256
        if expected and model_info.get("sha256") and model_info["sha256"] != expected:
            raise IndexFormatError(
                f"index {self.path} was built with model {self.manifest['model'].get('name')} "
                f"(sha256 {expected[:12]}…) but the loaded model is "
                f"{model_info.get('name')} (sha256 {model_info['sha256'][:12]}…): "
                "rebuild the index with this model or load the index's model"
            )

    def registered_model_name(self) -> str | None:
        """The registered model (``models/<name>/``) this index was built with, when installed."""
        from lookalike import config

        name = self.manifest.get("model", {}).get("registry_name")
        if isinstance(name, str) and config.model_path(name).is_file():
            return name
        return None

    def search(
        self, query: np.ndarray, top_k: int = 5, *, gender: str | None = None
    ) -> list[Candidate]:
        """The ``top_k`` celebrities most similar to one unit-length query embedding."""
        return self.searcher.search(query, top_k, gender=gender)

    def close(self) -> None:
        """Release the searcher (a Milvus connection, the 8-bit scan)."""
        self.searcher.close()

    def thumbnail(self, photo_id: int) -> bytes:
        """The JPEG thumbnail of one photo's face."""
        if not 0 <= photo_id < len(self.photos):
            raise KeyError(photo_id)
        start, stop = self.thumbnail_offsets[photo_id], self.thumbnail_offsets[photo_id + 1]
        with open(self.path / "thumbnails.bin", "rb") as file:
            file.seek(int(start))
            return file.read(int(stop - start))

    def celebrity_row(self, celebrity_id: str) -> int:
        """Row of a celebrity in ``celebrities`` (KeyError when unknown)."""
        return self._row_of_celebrity[celebrity_id]

    def photo_record(self, photo_id: int) -> dict:
        """What the index knows about one photo, JSON-ready (None for unknowns)."""
        row = self.photos.iloc[photo_id]
        return {
            "photo_id": int(photo_id),
            "age": optional_int(row["age"]),
            "photo_year": optional_int(row["photo_year"]),
            "gender": None if pd.isna(row["gender"]) else str(row["gender"]),
        }
