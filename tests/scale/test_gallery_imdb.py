"""``lookalike gallery imdb`` end to end, as CI runs it: a fixture tar in the published layout
served from 127.0.0.1, the index built from it, a held-out photo matched, and a run killed
(SIGKILL) mid-download and mid-build that resumes to the very same index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CHUNK_SIZE, BuiltGallery, ImdbFixture, Mirror
from lookalike.index import CelebrityIndex
from lookalike.match import Matcher, MatchOptions


def test_gallery_command_builds_and_reports(gallery_index: BuiltGallery, imdb_fixture):
    summary = gallery_index.summary
    manifest = json.loads((gallery_index.index / "index.json").read_text())
    assert summary["photos_indexed"] == manifest["photos"] > 200
    assert summary["celebrities"] == manifest["celebrities"] == 100
    assert summary["rows_in_metadata"] == imdb_fixture.rows
    skipped = summary["skipped"]
    # Every row is indexed or skipped for a stated reason.
    assert summary["photos_indexed"] + sum(skipped.values()) == imdb_fixture.rows
    assert skipped["has_face"] == 1 and skipped["single_face"] > 0
    # The validation report is the one `lookalike data validate --json` prints.
    from lookalike import cleaning
    from lookalike.imdb import load_metadata

    mat = gallery_index.dest / "imdb_crop" / "imdb.mat"
    metadata = load_metadata(mat)
    assert summary["validation"]["report"] == cleaning.validation_report(metadata)
    saved = json.loads((gallery_index.index / "gallery-report.json").read_text())
    assert saved["validation"] == summary["validation"]
    assert set(summary["stage_seconds"]) == {"download", "extract", "validate", "dedup", "build"}


def test_rerun_does_no_work(gallery_index: BuiltGallery, mirror: Mirror):
    from lookalike.gallery_imdb import build_imdb_gallery

    before = len(mirror.requests)
    index_json = (gallery_index.index / "index.json").read_bytes()
    lines: list[str] = []
    summary = build_imdb_gallery(
        dest=gallery_index.dest,
        index_dir=gallery_index.index,
        url=mirror.url,
        chunk_size=CHUNK_SIZE,
        progress=False,
        echo=lines.append,
    )
    assert len(mirror.requests) == before  # nothing downloaded again
    assert (gallery_index.index / "index.json").read_bytes() == index_json  # not rebuilt
    assert summary["stages"]["build"]["skipped"]
    assert any(line.startswith("serve it: make run INDEX=") for line in lines)


def test_held_out_photo_is_matched_to_its_person(gallery_index: BuiltGallery, imdb_fixture):
    matcher = Matcher(gallery_index.index)
    indexed = set(matcher.index.celebrities["name"])
    hits, in_top5, total = 0, 0, 0
    for held in imdb_fixture.held_out:
        assert held.name in indexed
        assert not any(Path(p).name == held.path.name for p in matcher.index.photos["source_path"])
        result = matcher.match(held.path, MatchOptions(top_k=5))
        names = [match["name"] for match in result["faces"][0]["matches"]]
        hits += names[0] == held.name
        in_top5 += held.name in names
        total += 1
    assert hits >= total - 3, f"top-1: {hits} of {total}"
    assert in_top5 >= total - 1, f"top-5: {in_top5} of {total}"


def _command(mirror: Mirror, dest: Path, index: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lookalike",
        "gallery",
        "imdb",
        "--url",
        mirror.url,
        "--dest",
        str(dest),
        "--index",
        str(index),
        "--chunk-size",
        str(CHUNK_SIZE),
        "--no-progress",
    ]


def _kill_when(process: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be interrupted"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _same_index(first: Path, second: Path) -> None:
    for name in ("embeddings.npy", "thumbnail_offsets.npy"):
        np.testing.assert_array_equal(np.load(first / name), np.load(second / name), err_msg=name)
    assert (first / "thumbnails.bin").read_bytes() == (second / "thumbnails.bin").read_bytes()
    for name in ("photos.csv", "celebrities.csv"):
        left, right = pd.read_csv(first / name), pd.read_csv(second / name)
        if "source_path" in left:  # the same photos, under two different download folders
            left["source_path"] = left["source_path"].map(lambda path: Path(path).name)
            right["source_path"] = right["source_path"].map(lambda path: Path(path).name)
        pd.testing.assert_frame_equal(left, right)
    manifests = [json.loads((folder / "index.json").read_text()) for folder in (first, second)]
    for manifest in manifests:
        manifest.pop("created")
        manifest.pop("source")
    assert manifests[0] == manifests[1]


def finished_chunks(build_dir: Path) -> list[Path]:
    """Chunks written whole: a chunk being written is ``chunk-N.tmp.npz`` until it is renamed."""
    return [path for path in build_dir.glob("chunk-*.npz") if not path.name.endswith(".tmp.npz")]


@pytest.mark.slow
def test_killed_mid_download_and_mid_build_resumes_to_the_same_index(
    gallery_index: BuiltGallery, imdb_fixture: ImdbFixture, mirror: Mirror, tmp_path: Path
):
    dest, index = tmp_path / "imdb", tmp_path / "imdb-index"
    command = _command(mirror, dest, index)
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    part = dest / "imdb_crop.tar.part"
    total = imdb_fixture.tar.stat().st_size

    # 1. SIGKILL while the archive is half downloaded (the mirror sends it slowly).
    mirror.delay_per_block = 0.05
    try:
        first = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
        _kill_when(first, lambda: part.is_file() and part.stat().st_size >= 8 * 16384)
    finally:
        mirror.delay_per_block = 0.0
    kept = part.stat().st_size
    assert 0 < kept < total and not (dest / "imdb_crop.tar").exists()

    # 2. Run again: the download resumes where it stopped; SIGKILL once a few chunks are built.
    requests_before = len(mirror.requests)
    chunks = index / ".build"
    second = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    _kill_when(second, lambda: len(finished_chunks(chunks)) >= 3)
    done = len(finished_chunks(chunks))
    assert not (index / "index.json").exists()
    ranges = [header for path, header in mirror.requests[requests_before:] if path.endswith(".tar")]
    assert ranges and ranges[0] == f"bytes={kept}-"  # resumed, not restarted
    with tarfile.open(dest / "imdb_crop.tar") as tar:  # the resumed archive is whole
        assert len(tar.getmembers()) > imdb_fixture.rows

    # 3. Run to the end: the finished chunks are kept, the index is the uninterrupted one.
    third = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"resuming: {done} of" in third.stderr or f"resuming: {done + 1} of" in third.stderr
    assert "serve it: make run INDEX=" in third.stdout
    _same_index(gallery_index.index, index)
    assert CelebrityIndex(index).manifest["photos"] == gallery_index.summary["photos_indexed"]


def test_interrupted_extraction_continues_without_rewriting_whole_files(
    imdb_fixture: ImdbFixture, tmp_path: Path
):
    from lookalike.download import extract_tar

    with tarfile.open(imdb_fixture.tar) as tar:
        members = [member for member in tar.getmembers() if member.isfile()]
        tar.extractall(tmp_path, members=members[:10], filter="data")  # an earlier, cut-short run
    whole = tmp_path / members[0].name
    cut = tmp_path / members[10].name
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(b"half")  # a file the interrupted run was writing
    whole_inode = whole.stat().st_ino
    os.utime(whole, (members[0].mtime, members[0].mtime))
    extract_tar(imdb_fixture.tar, tmp_path, progress=False, resume=True)
    assert whole.stat().st_ino == whole_inode  # not written again
    with tarfile.open(imdb_fixture.tar) as tar:
        assert cut.read_bytes() == tar.extractfile(members[10]).read()


def test_mirror_md5_is_used_and_checked(mirror: Mirror, tmp_path: Path, imdb_fixture):
    import hashlib

    from lookalike.cli import main
    from lookalike.gallery_imdb import mirror_md5

    real = hashlib.md5(imdb_fixture.tar.read_bytes(), usedforsecurity=False).hexdigest()
    assert mirror_md5(mirror.url, "imdb_crop.tar") == real
    assert mirror_md5(mirror.url, "wiki_crop.tar") is None  # none there: the published md5 applies
    md5_file = mirror.root / "imdb_crop.tar.md5"
    md5_file.write_text("0" * 32 + "  imdb_crop.tar\n")
    try:
        status = main(
            ["gallery", "imdb", "--url", mirror.url, "--dest", str(tmp_path / "d"),
             "--index", str(tmp_path / "i"), "--no-progress"]
        )  # fmt: skip
        assert status == 2  # md5 mismatch: a one-line error, the corrupt download deleted
        assert not list((tmp_path / "d").glob("imdb_crop.tar*"))
    finally:
        md5_file.write_text(f"{real}  imdb_crop.tar\n")


def test_model_and_detector_options_reach_the_build(
    gallery_index: BuiltGallery, mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture
):
    from lookalike.cli import main

    index = tmp_path / "mtcnn-index"
    arguments = ["gallery", "imdb", "--url", mirror.url, "--dest", str(gallery_index.dest),
                 "--index", str(index), "--chunk-size", "64", "--no-progress",
                 "--model", "sface", "--detector", "mtcnn", "--min-score", "0.8",
                 "--min-face-score", "2.0"]  # fmt: skip
    assert main(arguments) == 0
    manifest = json.loads((index / "index.json").read_text())
    assert manifest["detector"] == {"name": "mtcnn", "min_confidence": 0.8}
    assert manifest["model"]["name"] == "sface"
    report = json.loads((index / "gallery-report.json").read_text())
    assert report["detector"] == manifest["detector"] and report["model"] == "sface"
    assert report["stages"]["download"]["skipped"]  # the dataset of the first run, reused
    assert "detector mtcnn (score ≥ 0.8)" in capsys.readouterr().out
    # The same command again finds the index built with this detector; the default rebuilds.
    assert main(arguments) == 0
    again = json.loads((index / "gallery-report.json").read_text())
    assert again["stages"]["build"]["skipped"]
    assert main([*arguments[:8], "--chunk-size", "64", "--no-progress"]) == 0
    assert json.loads((index / "index.json").read_text())["detector"]["name"] == "yunet"
