"""Fixtures for the full-gallery tests: an IMDB-layout dataset in the published tar layout, cut
from the committed sample with one photo of some people held out, served from 127.0.0.1, and the
index ``lookalike gallery imdb`` builds from it (once per session)."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

HELD_OUT_PEOPLE = 20
CHUNK_SIZE = 4  # photos per resumable build chunk: many chunks, so a kill lands mid-build


@dataclass
class HeldOut:
    name: str
    path: Path


@dataclass
class ImdbFixture:
    root: Path  # holds imdb_crop/
    tar: Path  # imdb_crop.tar in the published layout
    held_out: list[HeldOut]
    rows: int


@pytest.fixture(scope="session")
def imdb_fixture(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ImdbFixture:
    """The sample minus the third photo of 20 people (held out, never indexed), as a tar."""
    from lookalike.fixtures import write_imdb_mat
    from lookalike.imdb import load_metadata

    metadata = load_metadata(sample_dir / "imdb_crop" / "imdb.mat")
    clean = metadata[np.isfinite(metadata["face_score"]) & metadata["second_face_score"].isna()]
    held_rows = []
    for _name, rows in sorted(clean.groupby("name")):
        if len(rows) >= 3:
            held_rows.append(rows.sort_values("full_path").index[2])
        if len(held_rows) == HELD_OUT_PEOPLE:
            break
    root = tmp_path_factory.mktemp("imdb-fixture")
    held_dir = root / "held-out"
    held_dir.mkdir()
    held_out = []
    for row in held_rows:
        source = sample_dir / "imdb_crop" / metadata.at[row, "full_path"]
        target = held_dir / source.name
        shutil.copy(source, target)
        held_out.append(HeldOut(metadata.at[row, "name"], target))
    kept = metadata.drop(index=held_rows)
    crop_root = root / "imdb_crop"
    for relative in kept["full_path"]:
        (crop_root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_dir / "imdb_crop" / relative, crop_root / relative)
    write_imdb_mat(kept, crop_root / "imdb.mat", variable="imdb")
    mirror = root / "mirror"
    mirror.mkdir()
    tar_path = mirror / "imdb_crop.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(crop_root, arcname="imdb_crop", filter=_fixed_time)
    # A mirror publishes its own md5 beside the file (the fixture is not the published tar).
    md5 = hashlib.md5(tar_path.read_bytes(), usedforsecurity=False).hexdigest()
    (mirror / "imdb_crop.tar.md5").write_text(f"{md5}  imdb_crop.tar\n")
    return ImdbFixture(root, tar_path, held_out, len(kept))


def _fixed_time(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.mtime = 1_600_000_000
    return member


@dataclass
class Mirror:
    """A folder served over HTTP on 127.0.0.1, with Range support and an optional throttle."""

    root: Path
    url: str = ""
    delay_per_block: float = 0.0  # seconds slept per 16 KiB sent
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture(scope="session")
def mirror(imdb_fixture: ImdbFixture) -> Iterator[Mirror]:
    state = Mirror(imdb_fixture.tar.parent)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Range")))
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            range_header = self.headers.get("Range")
            if range_header and range_header.startswith("bytes="):
                start = int(range_header[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            try:
                for offset in range(start, len(data), 16384):
                    self.wfile.write(data[offset : offset + 16384])
                    if state.delay_per_block:
                        time.sleep(state.delay_per_block)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class BuiltGallery:
    dest: Path
    index: Path
    summary: dict


@pytest.fixture(scope="session")
def gallery_index(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> BuiltGallery:
    """``lookalike gallery imdb`` run once, uninterrupted, against the mirror."""
    from lookalike.gallery_imdb import build_imdb_gallery

    root = tmp_path_factory.mktemp("gallery")
    summary = build_imdb_gallery(
        dest=root / "imdb",
        index_dir=root / "imdb-index",
        url=mirror.url,
        chunk_size=CHUNK_SIZE,
        progress=False,
        echo=lambda line: None,
    )
    return BuiltGallery(root / "imdb", root / "imdb-index", summary)


@pytest.fixture(scope="session")
def held_out_embeddings(gallery_index: BuiltGallery, imdb_fixture: ImdbFixture):
    """(names, unit embeddings) of the held-out photos' faces, by the default pipeline."""
    from lookalike.pipeline import FacePipeline

    pipeline = FacePipeline()
    names, vectors = [], []
    for held in imdb_fixture.held_out:
        faces = pipeline.faces_in_file(held.path).faces
        if faces:
            names.append(held.name)
            vectors.append(faces[0].embedding)
    return names, np.stack(vectors)
