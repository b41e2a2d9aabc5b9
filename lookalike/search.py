"""Search behind one small interface: the best photo of each of the celebrities nearest a query.

A ``Searcher`` answers ``search(query, top_k, gender=None)`` with at most ``top_k``
``Candidate``s, best first, one per celebrity (its best-matching photo), only celebrities of that
gender when one is given; ``count()`` is the number of photos it searches; ``close()`` frees what
it holds. Photos are rows of an index folder (``lookalike.index``), which stays the source of
truth for metadata, thumbnails and calibration: a searcher returns rows, never names.

Implementations:

- ``ExactSearcher``: one matrix-vector product over every photo, the best photo of each celebrity
  (``np.maximum.reduceat`` over the rows, which are grouped by celebrity), a partial sort;
- ``CompressedSearcher``: a FAISS 8-bit scalar-quantised scan (4× fewer bytes to read), the best
  candidates re-scored exactly from the float32 rows; when they hold fewer than ``top_k``
  celebrities the exact scan answers instead;
- ``lookalike.milvus_store.MilvusSearcher``: the vectors in Milvus (milvus-lite in-process, or a
  Milvus standalone/cluster server), grouped by celebrity and filtered by gender in the engine.

``open_searcher`` picks one from a ``--store`` URI (``LOOKALIKE_STORE``) or the index's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from lookalike.index import CelebrityIndex

STORE_ENV = "LOOKALIKE_STORE"
COMPRESSED_SEARCH_MIN_PHOTOS = 50_000
CANDIDATES_PER_RESULT = 16  # photos re-scored exactly per celebrity asked for
KINDS = ("auto", "exact", "compressed")


@dataclass(frozen=True)
class Candidate:
    """One celebrity's best-matching photo for a query."""

    celebrity_row: int
    photo_id: int
    similarity: float


@runtime_checkable
class Searcher(Protocol):
    """What the matcher needs from a search engine."""

    name: str

    def search(
        self, query: np.ndarray, top_k: int = 5, *, gender: str | None = None
    ) -> list[Candidate]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def check_query(query: np.ndarray, top_k: int, dimension: int) -> np.ndarray:
    """The query as a flat float32 vector of the right size; ValueError for a bad ``top_k``."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    vector = np.asarray(query, dtype=np.float32).reshape(-1)
    if vector.shape != (dimension,):
        raise ValueError(f"query has {vector.size} values, the index {dimension}")
    return vector


class ExactSearcher:
    """Exact inner-product search over rows grouped by celebrity."""

    name = "exact"

    def __init__(
        self, embeddings: np.ndarray, photo_counts: np.ndarray, celebrity_genders: np.ndarray
    ) -> None:
        self.embeddings = embeddings
        self._photo_counts = np.asarray(photo_counts, np.int64)
        self._segment_starts = np.r_[0, np.cumsum(self._photo_counts)[:-1]].astype(np.int64)
        self._genders = np.asarray(celebrity_genders, dtype=object)
        self._celebrity_of_photo = np.repeat(np.arange(len(self._photo_counts)), self._photo_counts)
        if int(self._photo_counts.sum()) != len(embeddings):
            raise ValueError("celebrity photo counts do not add up to the embeddings")

    @classmethod
    def for_index(cls, index: CelebrityIndex) -> ExactSearcher:
        celebrities = index.celebrities
        return cls(index.embeddings, celebrities["photo_count"], celebrities["gender"])

    def count(self) -> int:
        return len(self.embeddings)

    def close(self) -> None:
        pass

    def search(
        self, query: np.ndarray, top_k: int = 5, *, gender: str | None = None
    ) -> list[Candidate]:
        query = check_query(query, top_k, self.embeddings.shape[1])
        similarities = self.embeddings @ query
        per_celebrity = np.maximum.reduceat(similarities, self._segment_starts)
        if gender is not None:
            per_celebrity = np.where(self._genders == gender, per_celebrity, -np.inf)
        count = min(top_k, int(np.isfinite(per_celebrity).sum()))
        if count == 0:
            return []
        best = np.argpartition(-per_celebrity, count - 1)[:count]
        best = best[np.argsort(-per_celebrity[best], kind="stable")]
        candidates = []
        for row in best:
            start = self._segment_starts[row]
            stop = start + self._photo_counts[row]
            photo_id = int(start + np.argmax(similarities[start:stop]))
            candidates.append(Candidate(int(row), photo_id, float(per_celebrity[row])))
        return candidates


class CompressedSearcher(ExactSearcher):
    """An 8-bit scan for candidates, re-scored exactly; the exact scan when they are too few."""

    name = "compressed"

    def __init__(
        self, embeddings: np.ndarray, photo_counts: np.ndarray, celebrity_genders: np.ndarray
    ) -> None:
        super().__init__(embeddings, photo_counts, celebrity_genders)
        self._scan = compressed_scan(embeddings)

    def close(self) -> None:
        self._scan = None

    def search(
        self, query: np.ndarray, top_k: int = 5, *, gender: str | None = None
    ) -> list[Candidate]:
        query = check_query(query, top_k, self.embeddings.shape[1])
        found = self._search_candidates(query, top_k, gender)
        return found if found is not None else super().search(query, top_k, gender=gender)

    def _search_candidates(
        self, query: np.ndarray, top_k: int, gender: str | None
    ) -> list[Candidate] | None:
        """Compressed scan, exact re-scoring; None when the candidates are too few celebrities."""
        wanted = min(top_k * CANDIDATES_PER_RESULT, len(self.embeddings))
        _, photo_ids = self._scan.search(query[None], wanted)
        photo_ids = photo_ids[0][photo_ids[0] >= 0]
        photo_ids = np.sort(photo_ids)  # in file order: friendlier to the memory map
        similarities = self.embeddings[photo_ids] @ query
        rows = self._celebrity_of_photo[photo_ids]
        if gender is not None:
            keep = self._genders[rows] == gender
            photo_ids, similarities, rows = photo_ids[keep], similarities[keep], rows[keep]
        best_first = np.argsort(-similarities, kind="stable")
        _, first_of_row = np.unique(rows[best_first], return_index=True)
        if len(first_of_row) < top_k:
            return None
        chosen = best_first[np.sort(first_of_row)][:top_k]
        return [Candidate(int(rows[i]), int(photo_ids[i]), float(similarities[i])) for i in chosen]


def compressed_scan(embeddings: np.ndarray):
    """A FAISS 8-bit scalar-quantised copy of the embeddings for fast inner-product scans."""
    import faiss

    # One thread: a single query's scan is too short to gain from more, and the web server
    # runs several requests side by side.
    faiss.omp_set_num_threads(1)
    scan = faiss.IndexScalarQuantizer(
        embeddings.shape[1], faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
    )
    rows = np.ascontiguousarray(embeddings, dtype=np.float32)
    scan.train(rows)
    scan.add(rows)
    return scan


def default_store() -> str | None:
    """The store URI of ``$LOOKALIKE_STORE``; None (the default): search in this process."""
    return os.environ.get(STORE_ENV) or None


def open_searcher(index: CelebrityIndex, kind: str = "auto", store: str | None = None) -> Searcher:
    """The searcher for an index: a store URI (Milvus), else exact or 8-bit by ``kind``/size."""
    if store:
        from lookalike.milvus_store import open_store

        return open_store(store, index)
    if kind not in KINDS:
        raise ValueError(f"search must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "compressed" or (kind == "auto" and len(index) >= COMPRESSED_SEARCH_MIN_PHOTOS):
        return CompressedSearcher(
            index.embeddings, index.celebrities["photo_count"], index.celebrities["gender"]
        )
    return ExactSearcher.for_index(index)
