"""An index's vectors in Milvus: ``lookalike index push`` and the ``MilvusSearcher``.

The index folder stays the source of truth for metadata, thumbnails and calibration; the store
holds only what search needs, one entity per photo: ``photo_id`` (the row in the index, primary
key), ``celebrity_row``, the celebrity's ``gender`` (``""`` when unknown) and the embedding.
Search asks Milvus for the best photo of each celebrity (``group_by_field="celebrity_row"``)
and filters gender in the engine (``gender == "female"``), not afterwards.

Store URIs (``--store``, ``$LOOKALIKE_STORE``):

- ``milvus-lite:///abs/path/faces.db`` or ``milvus-lite://relative/faces.db``: Milvus Lite,
  in-process (what the tests use);
- ``milvus://host:19530/collection`` (``milvus+https://`` for TLS): a Milvus standalone or
  cluster server; ``$LOOKALIKE_MILVUS_TOKEN`` (``user:password`` or an API key) is sent when set.

Both take ``?collection=NAME`` (default ``lookalike_faces``). Only the URI differs: the client
calls are the same. The collection's properties record the model's sha256, a fingerprint of the
index's vectors and rows, the counts and whether the push finished; opening a store for an index
of another model, another index or an unfinished push is refused with an ``IndexFormatError``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import numpy as np

from lookalike.errors import InvalidInputError
from lookalike.search import COMPRESSED_SEARCH_MIN_PHOTOS, Candidate, check_query

if TYPE_CHECKING:
    from lookalike.index import CelebrityIndex

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "lookalike_faces"
TOKEN_ENV = "LOOKALIKE_MILVUS_TOKEN"
INDEX_TYPES = ("auto", "FLAT", "HNSW")
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
HNSW_MIN_EF = 64
PUSH_BATCH = 10_000
PROPERTY_PREFIX = "lookalike."
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_GENDER = re.compile(r"[a-z]{1,8}")


@dataclass(frozen=True)
class StoreAddress:
    """Where a store lives: what ``MilvusClient`` is given, and the collection."""

    uri: str
    collection: str
    token: str = ""

    @property
    def is_lite(self) -> bool:
        return "://" not in self.uri


def parse_store_uri(store: str) -> StoreAddress:
    """``milvus-lite://PATH`` or ``milvus[+https]://HOST:PORT[/COLLECTION]`` → a StoreAddress."""
    parts = urlsplit(store)
    query = parse_qs(parts.query)
    scheme = parts.scheme.lower()
    if scheme == "milvus-lite":
        path = store.split("://", 1)[1].split("?", 1)[0]
        if not path:
            raise InvalidInputError(f"store {store!r}: no file path (milvus-lite:///path/faces.db)")
        collection = query.get("collection", [DEFAULT_COLLECTION])[0]
        address = StoreAddress(str(Path(path).expanduser()), collection)
    elif scheme in ("milvus", "milvus+http", "milvus+https"):
        if not parts.hostname:
            raise InvalidInputError(f"store {store!r}: no host (milvus://host:19530/collection)")
        transport = "https" if scheme == "milvus+https" else "http"
        collection = parts.path.strip("/") or query.get("collection", [DEFAULT_COLLECTION])[0]
        address = StoreAddress(
            f"{transport}://{parts.hostname}:{parts.port or 19530}",
            collection,
            os.environ.get(TOKEN_ENV, ""),
        )
    else:
        raise InvalidInputError(
            f"store {store!r} is not a milvus-lite:///path/faces.db or "
            "milvus://host:19530/collection URI"
        )
    if not _COLLECTION_NAME.fullmatch(address.collection):
        raise InvalidInputError(f"store {store!r}: {address.collection!r} is not a collection name")
    return address


def connect(address: StoreAddress):
    """A ``MilvusClient`` for the address (a clear error when pymilvus is not installed)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as error:  # the optional extra
        raise ImportError(
            "a Milvus store needs pymilvus (and milvus-lite for milvus-lite:// stores): "
            "pip install '.[milvus]'"
        ) from error
    if address.is_lite:
        Path(address.uri).parent.mkdir(parents=True, exist_ok=True)
        return MilvusClient(address.uri)
    return MilvusClient(uri=address.uri, token=address.token)


def index_fingerprint(index: CelebrityIndex) -> str:
    """sha256 of what a store copies from an index: its vectors and celebrity rows."""
    digest = hashlib.sha256()
    for name in ("embeddings.npy", "celebrities.csv"):
        with open(index.path / name, "rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def _properties(index: CelebrityIndex, fingerprint: str, complete: bool) -> dict[str, str]:
    model = index.manifest.get("model", {})
    values = {
        "model_sha256": index.model_sha256 or "",
        "model_name": str(model.get("name", "")),
        "index_fingerprint": fingerprint,
        "photos": str(len(index)),
        "celebrities": str(len(index.celebrities)),
        "embedding_size": str(index.embeddings.shape[1]),
        "complete": "1" if complete else "0",
    }
    return {PROPERTY_PREFIX + key: value for key, value in values.items()}


def _celebrity_genders(index: CelebrityIndex) -> np.ndarray:
    genders = index.celebrities["gender"]
    return genders.where(genders.notna(), "").astype(str).to_numpy()


def push_index(
    index: CelebrityIndex,
    store: str,
    *,
    index_type: str = "auto",
    batch_size: int = PUSH_BATCH,
    progress: bool = True,
) -> dict:
    """Load an index's vectors into a store (replacing the collection) and record what it holds.

    ``index_type``: ``FLAT`` (exact), ``HNSW`` (graph ANN), or ``auto`` (FLAT below
    ``COMPRESSED_SEARCH_MIN_PHOTOS`` photos, else HNSW). A store that already holds this very
    index, complete, is left alone. Returns the recorded properties.
    """
    if index_type not in INDEX_TYPES:
        raise InvalidInputError(
            f"index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}"
        )
    if index_type == "auto":
        index_type = "FLAT" if len(index) < COMPRESSED_SEARCH_MIN_PHOTOS else "HNSW"
    address = parse_store_uri(store)
    fingerprint = index_fingerprint(index)
    wanted = _properties(index, fingerprint, complete=True)
    client = connect(address)
    try:
        if client.has_collection(address.collection):
            held = _stored_properties(client, address.collection)
            if {key: held.get(key) for key in wanted} == wanted:
                log.info("%s already holds this index: nothing to push", store)
                return wanted
            log.info("replacing collection %s in %s", address.collection, address.uri)
            client.drop_collection(address.collection)

        _create_collection(client, address.collection, index, index_type, fingerprint)
        _insert_rows(client, address.collection, index, batch_size, progress)
        client.flush(address.collection)
        client.load_collection(address.collection)
        # Last: only a finished push is marked complete, so an interrupted one is refused.
        client.alter_collection_properties(address.collection, properties=wanted)
        return wanted
    finally:
        client.close()


def _create_collection(
    client, collection: str, index: CelebrityIndex, index_type: str, fingerprint: str
) -> None:
    """An empty collection for the index's vectors, marked incomplete until the push ends."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("photo_id", DataType.INT64, is_primary=True)
    schema.add_field("celebrity_row", DataType.INT64)
    schema.add_field("gender", DataType.VARCHAR, max_length=16)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(index.embeddings.shape[1]))
    index_params = client.prepare_index_params()
    index_params.add_index(
        field_name="embedding",
        index_type=index_type,
        metric_type="IP",
        params=HNSW_PARAMS if index_type == "HNSW" else {},
    )
    client.create_collection(
        collection,
        schema=schema,
        index_params=index_params,
        properties=_properties(index, fingerprint, complete=False)
        | {PROPERTY_PREFIX + "index_type": index_type},
    )


def _insert_rows(
    client, collection: str, index: CelebrityIndex, batch_size: int, progress: bool
) -> None:
    """Every photo's vector, celebrity row and gender, in batches."""
    from tqdm.auto import tqdm

    counts = index.celebrities["photo_count"].to_numpy(np.int64)
    rows = np.repeat(np.arange(len(counts)), counts)
    genders = _celebrity_genders(index)[rows]
    with tqdm(total=len(index), unit="photo", desc="push to Milvus", disable=not progress) as bar:
        for start in range(0, len(index), batch_size):
            stop = min(start + batch_size, len(index))
            vectors = np.asarray(index.embeddings[start:stop], dtype=np.float32)
            client.insert(
                collection,
                [
                    {
                        "photo_id": photo_id,
                        "celebrity_row": int(rows[photo_id]),
                        "gender": str(genders[photo_id]),
                        "embedding": vectors[photo_id - start],
                    }
                    for photo_id in range(start, stop)
                ],
            )
            bar.update(stop - start)


def _stored_properties(client, collection: str) -> dict[str, str]:
    properties = client.describe_collection(collection).get("properties", {}) or {}
    return {str(key): str(value) for key, value in properties.items()}


class MilvusSearcher:
    """Search in a Milvus collection pushed from this very index."""

    name = "milvus"

    def __init__(self, store: str, index: CelebrityIndex) -> None:
        from lookalike.index import IndexFormatError

        self.store = store
        self.address = parse_store_uri(store)
        self._dimension = int(index.embeddings.shape[1])
        self._celebrities = len(index.celebrities)
        self._client = connect(self.address)
        try:
            if not self._client.has_collection(self.address.collection):
                raise IndexFormatError(
                    f"store {store} has no collection {self.address.collection!r}: fill it "
                    f"with `lookalike index push {index.path} --store {store}`"
                )
            held = _stored_properties(self._client, self.address.collection)
            self.properties = held
            self.model_sha256 = held.get(PROPERTY_PREFIX + "model_sha256") or None
            problem = _mismatch(held, index)
            if problem is not None:
                raise IndexFormatError(
                    f"store {store} does not match index {index.path}: {problem}; push it again "
                    f"with `lookalike index push {index.path} --store {store}`"
                )
            self._ef = HNSW_MIN_EF
            self._client.load_collection(self.address.collection)
        except BaseException:
            self._client.close()
            raise

    def count(self) -> int:
        return int(self.properties[PROPERTY_PREFIX + "photos"])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def search(
        self, query: np.ndarray, top_k: int = 5, *, gender: str | None = None
    ) -> list[Candidate]:
        query = check_query(query, top_k, self._dimension)
        if gender is not None and not _GENDER.fullmatch(gender):
            raise ValueError(f"gender must be a lower-case word, got {gender!r}")
        limit = min(top_k, self._celebrities)
        hits = self._client.search(
            self.address.collection,
            data=[query],
            limit=limit,
            anns_field="embedding",
            search_params={"metric_type": "IP", "params": {"ef": max(self._ef, 4 * limit)}},
            group_by_field="celebrity_row",
            output_fields=["celebrity_row"],
            filter=f'gender == "{gender}"' if gender is not None else "",
        )[0]
        candidates = [
            Candidate(
                int(hit["entity"]["celebrity_row"]), int(hit["photo_id"]), float(hit["distance"])
            )
            for hit in hits
        ]
        candidates.sort(key=lambda candidate: -candidate.similarity)
        return candidates[:top_k]


def _mismatch(held: dict[str, str], index: CelebrityIndex) -> str | None:
    """Why a store's recorded properties do not fit an index, or None when they do."""

    def value(key: str) -> str | None:
        return held.get(PROPERTY_PREFIX + key)

    if value("complete") != "1":
        return "its push did not finish" if value("complete") == "0" else "no lookalike push"
    expected_model = index.model_sha256 or ""
    if value("model_sha256") != expected_model:
        return (
            f"it holds embeddings of model {value('model_name')} (sha256 "
            f"{(value('model_sha256') or '?')[:12]}…), the index was built with "
            f"{index.manifest.get('model', {}).get('name')} (sha256 {expected_model[:12]}…)"
        )
    if value("photos") != str(len(index)) or value("celebrities") != str(len(index.celebrities)):
        return (
            f"it holds {value('photos')} photos of {value('celebrities')} celebrities, the index "
            f"{len(index)} of {len(index.celebrities)}"
        )
    if value("index_fingerprint") != index_fingerprint(index):
        return "it was pushed from another index (the vectors differ)"
    return None


def open_store(store: str, index: CelebrityIndex) -> MilvusSearcher:
    """The searcher of a store URI, checked against the index it serves."""
    return MilvusSearcher(store, index)
