"""One contract for every searcher, checked against exact search on the same real index (the
gallery built from the IMDB-layout fixture): exact, 8-bit, and Milvus (milvus-lite, FLAT)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import BuiltGallery
from lookalike.index import CelebrityIndex, IndexFormatError
from lookalike.search import ExactSearcher, Searcher

KINDS = ["exact", "compressed", "milvus"]


@pytest.fixture(scope="module")
def store_uri(gallery_index: BuiltGallery, tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("pymilvus")
    from lookalike.milvus_store import push_index

    uri = f"milvus-lite://{tmp_path_factory.mktemp('milvus') / 'faces.db'}"
    index = CelebrityIndex(gallery_index.index, search="exact")
    push_index(index, uri, index_type="FLAT", progress=False)
    index.close()
    return uri


@pytest.fixture(scope="module")
def exact(gallery_index: BuiltGallery) -> CelebrityIndex:
    return CelebrityIndex(gallery_index.index, search="exact")


@pytest.fixture(scope="module", params=KINDS)
def searcher(request, gallery_index: BuiltGallery) -> Searcher:
    kind = request.param
    if kind == "milvus":
        index = CelebrityIndex(gallery_index.index, store=request.getfixturevalue("store_uri"))
    else:
        index = CelebrityIndex(gallery_index.index, search=kind)
    assert index.searcher.name == kind
    yield index.searcher
    index.close()


def _queries(exact: CelebrityIndex, held_out_embeddings) -> np.ndarray:
    _names, held = held_out_embeddings
    photos = np.asarray(exact.embeddings[:: max(1, len(exact) // 15)])
    return np.concatenate([held, photos])


def _same(found, expected) -> None:
    assert [c.celebrity_row for c in found] == [c.celebrity_row for c in expected]
    assert [c.photo_id for c in found] == [c.photo_id for c in expected]
    np.testing.assert_allclose(
        [c.similarity for c in found], [c.similarity for c in expected], atol=2e-3
    )


def test_searcher_agrees_with_exact_search(searcher, exact, held_out_embeddings):
    assert isinstance(searcher, Searcher)
    assert searcher.count() == len(exact)
    for query in _queries(exact, held_out_embeddings):
        _same(searcher.search(query, 10), exact.search(query, 10))


def test_gender_filter_is_applied_in_the_search(searcher, exact, held_out_embeddings):
    genders = exact.celebrities["gender"].to_numpy()
    for query in _queries(exact, held_out_embeddings)[:10]:
        for gender in ("female", "male"):
            found = searcher.search(query, 10, gender=gender)
            assert len(found) == 10 and all(genders[c.celebrity_row] == gender for c in found)
            _same(found, exact.search(query, 10, gender=gender))


def test_one_best_photo_per_celebrity(searcher, exact, held_out_embeddings):
    starts = exact.celebrities["first_photo"].to_numpy()
    counts = exact.celebrities["photo_count"].to_numpy()
    query = held_out_embeddings[1][0]
    found = searcher.search(query, 20)
    rows = [c.celebrity_row for c in found]
    assert len(set(rows)) == len(rows) == 20
    for candidate in found:
        start, stop = (
            starts[candidate.celebrity_row],
            starts[candidate.celebrity_row] + counts[candidate.celebrity_row],
        )
        assert start <= candidate.photo_id < stop
        best = float(np.max(np.asarray(exact.embeddings[start:stop]) @ query))
        assert candidate.similarity == pytest.approx(best, abs=2e-3)


def test_top_k_beyond_the_celebrities_and_empty_results(searcher, exact, held_out_embeddings):
    query = held_out_embeddings[1][0]
    everyone = searcher.search(query, 500)
    assert len(everyone) == len(exact.celebrities)
    assert [c.similarity for c in everyone] == sorted(
        (c.similarity for c in everyone), reverse=True
    )
    women = (exact.celebrities["gender"] == "female").sum()
    assert len(searcher.search(query, 500, gender="female")) == women
    assert searcher.search(query, 5, gender="unknown") == []  # no celebrity has it
    with pytest.raises(ValueError, match="top_k"):
        searcher.search(query, 0)


def test_another_model_or_index_is_refused(
    searcher, gallery_index: BuiltGallery, tmp_path: Path, request
):
    other_model = tmp_path / "other-model"
    shutil.copytree(gallery_index.index, other_model)
    manifest = json.loads((other_model / "index.json").read_text())
    manifest["model"]["sha256"] = "0" * 64
    (other_model / "index.json").write_text(json.dumps(manifest))
    if searcher.name != "milvus":
        index = CelebrityIndex(other_model, search=searcher.name)
        with pytest.raises(IndexFormatError, match="rebuild the index"):
            index.check_model(CelebrityIndex(gallery_index.index).manifest["model"])
        return
    store = request.getfixturevalue("store_uri")
    with pytest.raises(IndexFormatError, match="holds embeddings of model"):
        CelebrityIndex(other_model, store=store)
    other_index = tmp_path / "other-index"
    shutil.copytree(gallery_index.index, other_index)
    embeddings = np.load(other_index / "embeddings.npy")
    np.save(other_index / "embeddings.npy", embeddings[:, ::-1].copy())
    with pytest.raises(IndexFormatError, match="pushed from another index"):
        CelebrityIndex(other_index, store=store)


def test_exact_searcher_refuses_inconsistent_counts():
    with pytest.raises(ValueError, match="add up"):
        ExactSearcher(np.zeros((3, 4), np.float32), np.array([1, 1]), np.array(["f", "m"]))
