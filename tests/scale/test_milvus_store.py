"""The Milvus store: URIs, push, the CLI (`index push`, `match --store`), and the same top-10
celebrities as exact search for real held-out photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BuiltGallery, ImdbFixture
from lookalike.index import CelebrityIndex, IndexFormatError
from lookalike.milvus_store import DEFAULT_COLLECTION, parse_store_uri

pytest.importorskip("pymilvus")


def test_store_uris(monkeypatch: pytest.MonkeyPatch):
    lite = parse_store_uri("milvus-lite:///data/faces.db")
    assert (lite.uri, lite.collection, lite.is_lite) == ("/data/faces.db", DEFAULT_COLLECTION, True)
    assert parse_store_uri("milvus-lite://rel/faces.db?collection=imdb").collection == "imdb"
    monkeypatch.setenv("LOOKALIKE_MILVUS_TOKEN", "root:Milvus")
    server = parse_store_uri("milvus://milvus.internal:19530/celebrities")
    assert (server.uri, server.collection, server.token) == (
        "http://milvus.internal:19530",
        "celebrities",
        "root:Milvus",
    )
    assert parse_store_uri("milvus+https://host").uri == "https://host:19530"
    for bad in ("faces.db", "milvus-lite://", "milvus:///x", "milvus://h/bad-name!"):
        with pytest.raises(ValueError):
            parse_store_uri(bad)


def test_pushed_index_gives_the_top_10_of_exact_search_for_held_out_photos(
    gallery_index: BuiltGallery, held_out_embeddings, tmp_path: Path, capsys
):
    from lookalike.cli import main

    uri = f"milvus-lite://{tmp_path / 'faces.db'}"
    assert main(["index", "push", str(gallery_index.index), "--store", uri]) == 0
    assert "photos of 100 celebrities" in capsys.readouterr().out
    exact = CelebrityIndex(gallery_index.index, search="exact")
    milvus = CelebrityIndex(gallery_index.index, store=uri)
    try:
        for query in held_out_embeddings[1]:
            assert [c.celebrity_row for c in milvus.search(query, 10)] == [
                c.celebrity_row for c in exact.search(query, 10)
            ]
    finally:
        milvus.close()


def test_match_and_push_through_the_cli(
    gallery_index: BuiltGallery, imdb_fixture: ImdbFixture, tmp_path: Path, capsys
):
    from lookalike.cli import main

    uri = f"milvus-lite://{tmp_path / 'faces.db'}"
    held = imdb_fixture.held_out[0]
    args = ["match", str(held.path), "--index", str(gallery_index.index), "--json"]
    assert main([*args, "--store", uri]) == 2  # nothing pushed yet: a one-line error
    assert "lookalike index push" in capsys.readouterr().err
    assert main(["index", "push", str(gallery_index.index), "--store", uri]) == 0
    assert main(["index", "push", str(gallery_index.index), "--store", uri]) == 0  # a no-op
    capsys.readouterr()
    assert main([*args, "--store", uri]) == 0
    from_store = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    in_process = json.loads(capsys.readouterr().out)
    assert [m["celebrity_id"] for m in from_store["faces"][0]["matches"]] == [
        m["celebrity_id"] for m in in_process["faces"][0]["matches"]
    ]


def test_an_unfinished_push_is_refused(gallery_index: BuiltGallery, tmp_path: Path):
    from pymilvus import MilvusClient

    from lookalike.milvus_store import PROPERTY_PREFIX, push_index

    uri = f"milvus-lite://{tmp_path / 'faces.db'}"
    index = CelebrityIndex(gallery_index.index, search="exact")
    push_index(index, uri, progress=False)
    client = MilvusClient(str(tmp_path / "faces.db"))
    client.alter_collection_properties(
        DEFAULT_COLLECTION, properties={PROPERTY_PREFIX + "complete": "0"}
    )
    client.close()
    with pytest.raises(IndexFormatError, match="did not finish"):
        CelebrityIndex(gallery_index.index, store=uri)
