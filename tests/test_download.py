"""Tests for lookalike.download against a real HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import re
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lookalike import config, download
from lookalike.download import DownloadError, download_dataset, download_file, extract_tar

# --- a small IMDB-like archive --------------------------------------------------------------

ARCHIVE_FILES = {
    "imdb_crop/imdb.mat": random.Random(0).randbytes(150_000),
    "imdb_crop/01/nm0000001_rm124825600_1899-5-10_1968.jpg": random.Random(1).randbytes(40_000),
    "imdb_crop/02/nm0000002_rm1346607872_1924-9-16_2004.jpg": random.Random(2).randbytes(30_000),
}


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ARCHIVE = _tar_bytes(ARCHIVE_FILES)
ARCHIVE_MD5 = hashlib.md5(ARCHIVE).hexdigest()
CUT = 100_000  # bytes the "flaky" server sends before dropping the first connection


# --- the test server ------------------------------------------------------------------------


@dataclasses.dataclass
class Behaviour:
    """What the handler does; tests change it, the handler records what it saw."""

    files: dict[str, bytes]
    honour_range: bool = True
    cut_first_after: int | None = None  # drop the first GET after this many body bytes
    stall: str | None = None  # "headers": never answer; "body": send some bytes, then hang
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    requests: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)
    statuses: list[int] = dataclasses.field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour  # set on a per-server subclass

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def _status(self, code: int) -> None:
        self.behaviour.statuses.append(code)
        self.send_response(code)

    def do_GET(self) -> None:
        b = self.behaviour
        first = not b.requests
        b.requests.append((self.path, self.headers.get("Range")))
        if b.stall == "headers":
            b.release.wait(10)
            return
        data = b.files.get(self.path.lstrip("/"))
        if data is None:
            self._status(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        start = 0
        range_header = self.headers.get("Range")
        if range_header and b.honour_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self._status(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._status(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self._status(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

        if b.stall == "body":
            self.wfile.write(body[:1000])
            self.wfile.flush()
            b.release.wait(10)
            return
        if first and b.cut_first_after is not None:
            # HTTP/1.0: returning closes the socket, short of the promised Content-Length.
            self.wfile.write(body[: b.cut_first_after])
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>; yields (base URL, behaviour)."""
    behaviour = Behaviour(files={"imdb_crop.tar": ARCHIVE, "wiki_crop.tar": ARCHIVE})
    handler = type("BoundHandler", (Handler,), {"behaviour": behaviour})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", behaviour
    finally:
        behaviour.release.set()  # unblock stalled handlers
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


# --- download_file --------------------------------------------------------------------------


def test_full_download_checks_md5_and_extracts(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "dl" / "imdb_crop.tar"

    got = download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert got == target
    assert target.read_bytes() == ARCHIVE
    assert not target.with_name("imdb_crop.tar.part").exists()
    assert behaviour.requests == [("/imdb_crop.tar", None)]
    out = extract_tar(target, tmp_path / "out", progress=False)
    assert out == tmp_path / "out"
    assert _files_under(out) == ARCHIVE_FILES


def test_resume_after_interrupted_download(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.cut_first_after = CUT
    target = tmp_path / "imdb_crop.tar"
    part = tmp_path / "imdb_crop.tar.part"

    with pytest.raises(DownloadError, match="run again to resume") as info:
        download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)
    assert f"{CUT} of {len(ARCHIVE)} bytes" in str(info.value)
    assert not target.exists()
    assert part.read_bytes() == ARCHIVE[:CUT]

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert behaviour.requests == [("/imdb_crop.tar", None), ("/imdb_crop.tar", f"bytes={CUT}-")]
    assert behaviour.statuses == [200, 206]
    assert target.read_bytes() == ARCHIVE
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.honour_range = False
    target = tmp_path / "imdb_crop.tar"
    # Garbage prefix: had it been kept and appended to, the md5 would fail.
    (tmp_path / "imdb_crop.tar.part").write_bytes(b"\xff" * 5000)

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert behaviour.requests == [("/imdb_crop.tar", "bytes=5000-")]
    assert behaviour.statuses == [200]
    assert target.read_bytes() == ARCHIVE


def test_416_on_a_complete_part_finishes_without_downloading(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "imdb_crop.tar"
    (tmp_path / "imdb_crop.tar.part").write_bytes(ARCHIVE)  # complete, but never renamed

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert behaviour.requests == [("/imdb_crop.tar", f"bytes={len(ARCHIVE)}-")]
    assert behaviour.statuses == [416]
    assert target.read_bytes() == ARCHIVE


def test_416_on_an_oversized_part_starts_over(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "imdb_crop.tar"
    (tmp_path / "imdb_crop.tar.part").write_bytes(ARCHIVE + b"junk")

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert behaviour.statuses == [416, 200]
    assert behaviour.requests[1] == ("/imdb_crop.tar", None)
    assert target.read_bytes() == ARCHIVE


def test_md5_mismatch_raises_and_leaves_no_file(server, tmp_path: Path) -> None:
    url, _ = server
    target = tmp_path / "imdb_crop.tar"
    wrong = "0" * 32

    with pytest.raises(DownloadError, match="md5 mismatch") as info:
        download_file(url + "imdb_crop.tar", target, expected_md5=wrong, progress=False)

    assert wrong in str(info.value) and ARCHIVE_MD5 in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_404_names_status_and_url(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download_file(url + "missing.tar", tmp_path / "missing.tar", progress=False)
    assert url + "missing.tar" in str(info.value)
    assert "base URL" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stall", ["headers", "body"])
def test_stalled_server_times_out_on_the_configured_timeout(
    server, tmp_path: Path, stall: str
) -> None:
    url, behaviour = server
    behaviour.stall = stall

    with pytest.raises(DownloadError, match=r"timed out: no data .* for 0\.3 s") as info:
        download_file(url + "imdb_crop.tar", tmp_path / "x.tar", progress=False, timeout=0.3)

    # The client gave up on its own: the server was still holding the connection open (had it
    # closed it, the error would be a dropped connection, not a timeout). How long giving up
    # takes is a figure of `lookalike bench refusals`, not a test.
    assert not behaviour.release.is_set()
    cause = info.value.__cause__  # the socket's timeout (urllib wraps it while connecting)
    assert isinstance(getattr(cause, "reason", cause), TimeoutError)
    assert behaviour.requests == [("/imdb_crop.tar", None)]  # no retry against a stalled server
    assert not (tmp_path / "x.tar").exists()
    if stall == "body":  # the bytes that did arrive are kept for a resume
        assert (tmp_path / "x.tar.part").read_bytes() == ARCHIVE[:1000]


def test_existing_file_with_right_md5_is_not_downloaded_again(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "imdb_crop.tar"
    target.write_bytes(ARCHIVE)
    before = target.stat().st_mtime_ns

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert behaviour.requests == []
    assert target.stat().st_mtime_ns == before


def test_existing_file_with_wrong_md5_is_replaced(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "imdb_crop.tar"
    target.write_bytes(b"stale")

    download_file(url + "imdb_crop.tar", target, expected_md5=ARCHIVE_MD5, progress=False)

    assert len(behaviour.requests) == 1
    assert target.read_bytes() == ARCHIVE


def test_progress_bar_shows_total_size(server, tmp_path: Path, capsys) -> None:
    url, _ = server
    download_file(url + "imdb_crop.tar", tmp_path / "imdb_crop.tar", chunk_size=16_384)
    err = capsys.readouterr().err
    assert "imdb_crop.tar" in err
    assert "100%" in err


def test_bad_arguments_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 hex digits"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", expected_md5="abc")
    with pytest.raises(ValueError, match="imdb-meta"):
        download_dataset("nope", tmp_path)


# --- download_dataset -----------------------------------------------------------------------


def test_registry_entries_are_usable() -> None:
    """Every entry is one ``download_dataset`` can fetch and check: a file on the mirror, an md5
    that ``download_file`` accepts (or none), contents inside the folder it unpacks to."""
    for name, entry in download.DATASETS.items():
        assert entry.name == name
        assert download.dataset_url(name, "http://mirror/a") == f"http://mirror/a/{entry.filename}"
        assert entry.md5 is None or re.fullmatch(r"[0-9a-f]{32}", entry.md5), name
        assert entry.contents.startswith(entry.folder + "/"), name


def test_registry_md5s_are_the_published_ones() -> None:
    """The md5s against the dataset page's, as recorded in the developer docs (an independent
    record: the code's literals are not compared with themselves)."""
    doc = config.shared_data_dir().parent / "docs" / "imdb-format.md"
    if not doc.is_file():
        pytest.skip(f"needs the developer docs at {doc} (absent on a user's machine)")
    published = {
        file: None if md5 == "–" else md5.strip("`")
        for file, md5 in re.findall(
            r"^\| `([\w.]+\.tar)` \| [^|]+ \| ([^|]+?) \|", doc.read_text(), re.M
        )
    }
    for entry in download.DATASETS.values():
        assert entry.md5 == published[entry.filename], entry.name


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.BASE_URL_ENV, raising=False)
    assert download.dataset_url("imdb") == download.DEFAULT_BASE_URL + "imdb_crop.tar"
    monkeypatch.setenv(download.BASE_URL_ENV, "http://127.0.0.1:1/m/")
    assert download.dataset_url("imdb") == "http://127.0.0.1:1/m/imdb_crop.tar"
    assert download.dataset_url("imdb", "http://x/") == "http://x/imdb_crop.tar"


@pytest.fixture
def imdb_with_test_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the registry's ``imdb`` entry at the md5 of the small test archive."""
    entry = dataclasses.replace(download.DATASETS["imdb"], md5=ARCHIVE_MD5)
    monkeypatch.setitem(download.DATASETS, "imdb", entry)


def test_download_dataset_end_to_end_and_rerun_is_a_noop(
    server, tmp_path: Path, imdb_with_test_md5
) -> None:
    url, behaviour = server
    dest = tmp_path / "data"

    folder = download_dataset("imdb", dest, base_url=url, progress=False)

    assert folder == dest / "imdb_crop"
    assert _files_under(dest) == {"imdb_crop.tar": ARCHIVE, **ARCHIVE_FILES}
    assert len(behaviour.requests) == 1

    # Second run: no request, even with the archive gone, and local edits survive.
    (dest / "imdb_crop.tar").unlink()
    (folder / "imdb.mat").write_bytes(b"edited")
    assert download_dataset("imdb", dest, base_url=url, progress=False) == folder
    assert len(behaviour.requests) == 1
    assert (folder / "imdb.mat").read_bytes() == b"edited"


def test_download_dataset_uses_env_base_url_and_skips_md5_for_wiki(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    url, behaviour = server
    monkeypatch.setenv(download.BASE_URL_ENV, url)

    archive = download_dataset("wiki", tmp_path, extract=False, progress=False)

    assert archive == tmp_path / "wiki_crop.tar"
    assert archive.read_bytes() == ARCHIVE
    assert behaviour.requests == [("/wiki_crop.tar", None)]
    assert "no published md5" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wiki_crop.tar"]  # not extracted


def test_download_dataset_rejects_archive_with_wrong_md5(server, tmp_path: Path) -> None:
    url, _ = server  # the registry's real md5 cannot match the test archive
    with pytest.raises(DownloadError, match=download.DATASETS["imdb"].md5):
        download_dataset("imdb", tmp_path, base_url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_dataset_checks_archive_contents(server, tmp_path: Path) -> None:
    url, _ = server  # the test archive holds imdb_crop/, not wiki_crop/wiki.mat
    with pytest.raises(DownloadError, match="wiki_crop/wiki.mat"):
        download_dataset("wiki", tmp_path, base_url=url, progress=False)


# --- extract_tar ----------------------------------------------------------------------------


def _evil_tar(path: Path, outside: Path, kind: str) -> None:
    """Write a tar with one good file and one hostile member of the given ``kind``."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, type_: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x"):
            info = tarfile.TarInfo(name)
            info.type = type_
            info.linkname = link
            info.size = len(data) if type_ == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)

        add("good/ok.txt")
        if kind == "dotdot":
            add("good/../../evil.txt")
        elif kind == "absolute":
            add(str(outside / "abs.txt"))
        elif kind == "symlink":
            add("good/link", tarfile.SYMTYPE, "../../outside")
            add("good/link/through.txt")
        elif kind == "abs-symlink":
            add("good/link", tarfile.SYMTYPE, str(outside))
        elif kind == "hardlink":
            add("hard", tarfile.LNKTYPE, "../outside/victim.txt")
        elif kind == "device":
            add("dev", tarfile.CHRTYPE)
        elif kind == "chain":
            # Each link looks inside on paper; together they point at dest/..
            add("d/l", tarfile.SYMTYPE, "..")
            add("d/l/e", tarfile.SYMTYPE, "..")
            add("d/l/e/evil.txt")


@pytest.mark.parametrize("own_checks_only", [False, True], ids=["with-tarfile-filter", "own"])
@pytest.mark.parametrize(
    "kind", ["dotdot", "absolute", "symlink", "abs-symlink", "hardlink", "device", "chain"]
)
def test_hostile_archive_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, own_checks_only: bool
) -> None:
    if own_checks_only:  # prove our checks hold even where tarfile has no "data" filter
        monkeypatch.setattr(download, "_HAS_DATA_FILTER", False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"precious")
    dest = tmp_path / "dest"
    tar_path = tmp_path / "evil.tar"
    _evil_tar(tar_path, outside, kind)
    before = sorted(p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest)

    with pytest.raises(DownloadError, match="refusing to extract member"):
        extract_tar(tar_path, dest, progress=False)

    after = sorted(p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest)
    assert after == before, "something was written outside dest"
    assert (outside / "victim.txt").read_bytes() == b"precious"
    assert not (tmp_path / "evil.txt").exists()
    assert not list(dest.glob(".*.extracted"))
    if kind != "chain":  # caught by the up-front scan: nothing extracted at all
        assert list(dest.iterdir()) == []


def test_extract_rerun_is_noop_and_interrupted_extraction_is_redone(tmp_path: Path) -> None:
    tar_path = tmp_path / "imdb_crop.tar"
    tar_path.write_bytes(ARCHIVE)
    dest = tmp_path / "out"
    extract_tar(tar_path, dest, progress=False)
    mat = dest / "imdb_crop" / "imdb.mat"

    mat.unlink()
    extract_tar(tar_path, dest, progress=False)
    assert not mat.exists()  # the marker said "done": nothing was re-extracted

    (dest / ".imdb_crop.tar.extracted").unlink()  # as if the first run had been killed
    extract_tar(tar_path, dest, progress=False)
    assert _files_under(dest) == ARCHIVE_FILES


def test_extract_corrupt_archive_is_a_download_error(tmp_path: Path) -> None:
    tar_path = tmp_path / "broken.tar"
    tar_path.write_bytes(os.urandom(2048))
    with pytest.raises(DownloadError, match="not a readable tar archive"):
        extract_tar(tar_path, tmp_path / "out", progress=False)
