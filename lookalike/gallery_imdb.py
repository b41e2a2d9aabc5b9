"""``lookalike gallery imdb``: the full IMDB gallery in one command, resumable at every stage.

Stages, each with its own progress bar, each skipped when a previous run finished it:

1. **download** ``imdb_crop.tar`` (published URL or a ``--url`` mirror serving the same file
   names; md5 from the mirror's ``imdb_crop.tar.md5`` when it has one, else the published md5):
   streams to ``.part`` and resumes with an HTTP Range request (``lookalike.download``);
2. **extract** it safely; an interrupted extraction continues, files already written whole are
   not written again, and a marker records the finished extraction;
3. **validate** ``imdb.mat``: the report and filter table of ``lookalike data validate``, then
   the gallery's own filters (one confident face, a name) and the files that are really there;
4. **dedup**: a content hash of every kept crop, in resumable chunks on ``--workers`` threads;
   an image filed under two names is dropped, repeated copies under one name kept once;
5. **build** the index (``lookalike.index_build``: resumable chunks; ``--ray`` for Ray Data);
6. **push** its vectors to a Milvus store when ``--store`` is given.

State lives under ``<dest>/.gallery-state/`` (small files, each written atomically). The report
(validation, what each step dropped, counts, wall time per stage) is printed and saved as
``<index>/gallery-report.json``; a run that finds the index already built from the same photos
with the same model does nothing but print it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from lookalike.errors import InvalidInputError
from lookalike.state_files import read_json, write_json

log = logging.getLogger(__name__)

STAGES = ("download", "extract", "validate", "dedup", "build", "push")
STATE_DIR = ".gallery-state"
REPORT_NAME = "gallery-report.json"
HASH_CHUNK = 5_000  # crops hashed per resumable chunk
DATASET = "imdb"


def _write_pickle(path: Path, frame: pd.DataFrame) -> None:
    partial = path.with_name(path.name + ".tmp")
    frame.to_pickle(partial)
    os.replace(partial, path)


class StageClock:
    """Wall time per stage, kept across interrupted runs (``stages.json``)."""

    def __init__(self, state: Path) -> None:
        self.path = state / "stages.json"
        self.stages: dict[str, dict] = read_json(self.path) or {}

    def run(self, stage: str, work: Callable[[], Any]) -> Any:
        record = self.stages.setdefault(stage, {"seconds": 0.0, "runs": 0})
        started = time.perf_counter()
        try:
            return work()
        finally:
            record["seconds"] = round(record["seconds"] + time.perf_counter() - started, 3)
            record["runs"] += 1
            write_json(self.path, self.stages)

    def skip(self, stage: str, why: str) -> None:
        self.stages.setdefault(stage, {"seconds": 0.0, "runs": 0})["skipped"] = why
        write_json(self.path, self.stages)


def mirror_md5(base_url: str, filename: str, timeout: float = 30.0) -> str | None:
    """The md5 a mirror publishes beside a file (``<file>.md5``), or None when it has none."""
    url = base_url.rstrip("/") + "/" + filename + ".md5"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read(4096).decode("ascii", "replace")
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 404:
            return None
        raise
    except urllib.error.URLError:
        return None  # the download itself will say what is wrong with the address
    words = text.split()
    if not words or len(words[0]) != 32:
        raise InvalidInputError(f"{url} does not hold an md5 (expected 32 hex digits first)")
    return words[0].lower()


def _mat_identity(mat: Path) -> dict:
    status = mat.stat()
    return {"path": str(mat), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def validate_stage(crop_root: Path, state: Path, *, min_score: float, progress: bool) -> dict:
    """Report and clean ``imdb.mat``; keep the gallery's rows whose crops exist."""
    from lookalike import cleaning, gallery, imdb

    mat = crop_root / "imdb.mat"
    identity = _mat_identity(mat)
    saved = read_json(state / "validate.json")
    if (
        saved
        and saved.get("mat") == identity
        and saved.get("min_score", 1.0) == min_score
        and (state / "validated.pkl").is_file()
    ):
        log.info("validate: reusing the result of an earlier run")
        return saved
    with tqdm(total=4, unit="step", desc="validate", disable=not progress) as bar:
        metadata = imdb.load_metadata(mat)
        bar.update()
        report = cleaning.validation_report(metadata, min_score=min_score)
        kept, steps = cleaning.apply_filters(metadata, cleaning.standard_filters(min_score))
        bar.update()
        rows, gallery_steps = cleaning.apply_filters(metadata, gallery.imdb_gallery_filters())
        bar.update()
        present = np.array([(crop_root / path).is_file() for path in rows["full_path"]], bool)
        rows = rows[present]
        bar.update()
    gallery_steps.append(
        {"filter": "crop_file_present", "removed": int((~present).sum()), "remaining": len(rows)}
    )
    if rows.empty:
        raise InvalidInputError(f"no usable photos listed in {mat}")
    result = {
        "mat": identity,
        "min_score": min_score,
        # What `lookalike data validate --json` prints for this file:
        "validation": {"file": str(mat), "report": report, "filters": steps, "kept": len(kept)},
        "gallery_filters": gallery_steps,
        "rows": len(rows),
        "celebrities_listed": int(metadata.attrs.get("n_celebrities", 0)),
    }
    _write_pickle(state / "validated.pkl", rows.reset_index(drop=True))
    write_json(state / "validate.json", result)
    return result


def _hash_file(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except (FileNotFoundError, IsADirectoryError):
        return ""
    return digest.hexdigest()


def dedup_stage(crop_root: Path, state: Path, *, workers: int, progress: bool) -> dict:
    """Hash every kept crop (resumable chunks) and drop images filed under several names."""
    from lookalike import cleaning

    rows = pd.read_pickle(state / "validated.pkl")
    validated = read_json(state / "validate.json")
    saved = read_json(state / "dedup.json")
    if saved and saved.get("mat") == validated["mat"] and (state / "gallery.pkl").is_file():
        log.info("dedup: reusing the result of an earlier run")
        return saved
    hashes_dir = state / "hashes"
    hashes_dir.mkdir(parents=True, exist_ok=True)
    paths = [crop_root / path for path in rows["full_path"]]
    chunks = [
        (start, paths[start : start + HASH_CHUNK]) for start in range(0, len(paths), HASH_CHUNK)
    ]
    stamp = hashlib.sha256("\n".join(rows["full_path"]).encode()).hexdigest()
    if (read_json(hashes_dir / "inputs.json") or {}).get("rows") != stamp:
        for old in hashes_dir.glob("chunk-*.txt"):
            old.unlink()
        write_json(hashes_dir / "inputs.json", {"rows": stamp})
    hashes: list[str] = []
    done = sum((hashes_dir / f"chunk-{start:08d}.txt").is_file() for start, _ in chunks)
    with (
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(
            total=len(paths),
            initial=min(done * HASH_CHUNK, len(paths)),
            unit="img",
            desc="dedup (hashing)",
            disable=not progress,
        ) as bar,
    ):
        for start, chunk in chunks:
            path = hashes_dir / f"chunk-{start:08d}.txt"
            if not path.is_file():
                values = list(pool.map(_hash_file, chunk))
                partial = path.with_name(path.name + ".tmp")
                partial.write_text("\n".join(values) + "\n")
                os.replace(partial, path)  # a chunk exists only once it is complete
                bar.update(len(chunk))
            hashes.extend(path.read_text().splitlines())
    if len(hashes) != len(rows):
        raise RuntimeError(f"{hashes_dir} holds {len(hashes)} hashes for {len(rows)} rows")
    rows[cleaning.HASH_COLUMN] = pd.array([value or None for value in hashes], dtype="string")
    kept = cleaning.drop_conflicting_duplicates(rows)
    hashed = rows[cleaning.HASH_COLUMN].notna()
    names = rows[hashed].groupby(cleaning.HASH_COLUMN, sort=False)["celeb_name"].nunique()
    in_conflict = rows[cleaning.HASH_COLUMN].isin(names.index[names > 1]) & hashed
    result = {
        "mat": validated["mat"],
        "hashed": int(hashed.sum()),
        "dropped_filed_under_several_names": int(in_conflict.sum()),
        "dropped_repeated_copies": int(len(rows) - len(kept) - int(in_conflict.sum())),
        "rows": len(kept),
        "celebrities": int(kept["celeb_name"].nunique()),
    }
    _write_pickle(state / "gallery.pkl", kept.reset_index(drop=True))
    write_json(state / "dedup.json", result)
    return result


def _build_key(photos: list, model_sha256: str, chunk_size: int, detector: str = "") -> str:
    digest = hashlib.sha256(f"{model_sha256}\n{chunk_size}\n{detector}\n".encode())
    for photo in photos:
        digest.update(f"{photo.path}\t{photo.celebrity_id}\n".encode())
    return digest.hexdigest()


def build_imdb_gallery(
    *,
    dest: str | Path,
    index_dir: str | Path,
    url: str | None = None,
    workers: int = 2,
    store: str | None = None,
    chunk_size: int = 256,
    model_path: str | Path | None = None,
    detector: str | None = None,
    min_confidence: float | None = None,
    ray_address: str | None = None,
    min_score: float = 1.0,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run every stage (skipping finished ones) and return the summary that is saved and printed.

    ``model_path`` is a registered model name or a ``.keras`` path; ``detector`` (``yunet`` or
    ``mtcnn``, default the model's own) and its ``min_confidence`` find the faces, on Ray's
    actors too.
    ``min_score`` is imdb.mat's face_score threshold of the validation report.
    """
    from lookalike import detection, download, gallery, model_files

    detector = detection.detector_for(model_files.model_info(model_path), detector)
    threshold = detection.checked_confidence(min_confidence, detector)

    started = time.perf_counter()
    dest, index_dir = Path(dest), Path(index_dir)
    dataset = download.get_dataset(DATASET)
    state = dest / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    clock = StageClock(state)
    crop_root = dest / dataset.folder
    base_url = url or os.environ.get(download.BASE_URL_ENV) or download.DEFAULT_BASE_URL
    _fetch_stages(clock, dest, dataset, base_url, progress)

    validated = clock.run(
        "validate",
        lambda: validate_stage(crop_root, state, min_score=min_score, progress=progress),
    )
    _print_validation(validated, echo)
    deduped = clock.run(
        "dedup", lambda: dedup_stage(crop_root, state, workers=workers, progress=progress)
    )

    photos = gallery.imdb_photos(pd.read_pickle(state / "gallery.pkl"), crop_root)
    model_sha256 = model_files.model_info(model_path)["sha256"]
    build_key = _build_key(photos, model_sha256, chunk_size, f"{detector}/{threshold}")
    source = {"kind": "imdb", "path": str(dest), "url": base_url, "archive": dataset.filename}
    build = dict(model_path=model_path, chunk_size=chunk_size, progress=progress, source=source)
    build |= dict(detector=detector, min_confidence=min_confidence)
    previous = read_json(index_dir / REPORT_NAME) or {}
    if (index_dir / "index.json").is_file() and previous.get("build_key") == build_key:
        clock.skip("build", "index already built from these photos with this model and detector")
    else:
        (index_dir / REPORT_NAME).unlink(missing_ok=True)
        clock.run("build", lambda: _build_stage(photos, index_dir, build, ray_address, workers))
    manifest = json.loads((index_dir / "index.json").read_text())
    pushed = clock.run("push", lambda: _push_stage(index_dir, store, progress)) if store else None

    summary = {
        **_found(index_dir, manifest, validated, deduped),
        "detector": {"name": detector, "min_confidence": threshold},
        "store": store,
        "pushed": pushed is not None,
        "build_key": build_key,
        "stage_seconds": {
            stage: clock.stages[stage]["seconds"] for stage in STAGES if stage in clock.stages
        },
        "stages": clock.stages,
        "this_run_seconds": round(time.perf_counter() - started, 3),
    }
    write_json(index_dir / REPORT_NAME, summary)
    _print_summary(summary, echo)
    return summary


def _found(index_dir: Path, manifest: dict, validated: dict, deduped: dict) -> dict:
    """What the stages found: counts, and what each filter skipped."""
    return {
        "index": str(index_dir),
        "photos_indexed": manifest["photos"],
        "celebrities": manifest["celebrities"],
        "rows_in_metadata": validated["validation"]["report"]["total_rows"],
        "skipped": {
            **{step["filter"]: step["removed"] for step in validated["gallery_filters"]},
            "filed_under_several_names": deduped["dropped_filed_under_several_names"],
            "repeated_copies": deduped["dropped_repeated_copies"],
            "no_face_found": manifest["photos_without_face"],
        },
        "validation": validated["validation"],
        "model": (manifest.get("model") or {}).get("name"),
    }


def _fetch_stages(clock: StageClock, dest: Path, dataset, base_url: str, progress: bool) -> None:
    """Download and extract the crops archive, unless an earlier run extracted it."""
    from lookalike import download

    archive = dest / dataset.filename
    extracted = (
        download._read_marker(dest, archive.name) is not None
        and (dest / dataset.contents).is_file()
    )
    if extracted:
        clock.skip("download", "already extracted")
        clock.skip("extract", "already extracted")
        return
    md5 = clock.run("download", lambda: _download(base_url, dataset, archive, progress))
    log.info("%s: md5 %s checked", archive.name, md5)
    clock.run("extract", lambda: _extract(archive, dest, dataset, progress))


def _build_stage(
    photos: list, index_dir: Path, build: dict, ray_address: str | None, workers: int
) -> Path:
    """``index_build.build_index`` of the gallery with the ``build`` options, on a Ray actor
    pool of ``workers`` when given an address."""
    from lookalike.index_build import build_index

    if ray_address is not None:
        from lookalike.ray_build import RayChunkRunner

        build = {**build, "runner": RayChunkRunner(ray_address or None, workers=workers)}
    return build_index(photos, index_dir, **build)


def _push_stage(index_dir: Path, store: str, progress: bool) -> dict:
    """Load the index's vectors into the Milvus ``store``."""
    from lookalike.index import CelebrityIndex
    from lookalike.milvus_store import push_index

    index = CelebrityIndex(index_dir, search="exact")
    try:
        return push_index(index, store, progress=progress)
    finally:
        index.close()


def _download(base_url: str, dataset, archive: Path, progress: bool) -> str:
    from lookalike import download

    md5 = mirror_md5(base_url, dataset.filename) or dataset.md5
    download.download_file(
        base_url.rstrip("/") + "/" + dataset.filename,
        archive,
        expected_md5=md5,
        progress=progress,
    )
    return md5 or "(none published)"


def _extract(archive: Path, dest: Path, dataset, progress: bool) -> None:
    from lookalike import download

    download.extract_tar(archive, dest, progress=progress, resume=True)
    if not (dest / dataset.contents).is_file():
        raise download.DownloadError(
            f"{archive} was extracted but holds no {dataset.contents}: it is not the expected "
            "archive. Delete it and download again (check --url)."
        )


def _print_validation(validated: dict, echo: Callable[[str], None]) -> None:
    from lookalike.cli.data import format_validation

    data = validated["validation"]
    echo(format_validation(data["file"], data["report"], data["filters"]))
    echo(f"\n  {'gallery step':<24} {'removed':>9} {'remaining':>10}")
    for step in validated["gallery_filters"]:
        echo(f"  {step['filter']:<24} {step['removed']:>9,} {step['remaining']:>10,}")


def _print_summary(summary: dict, echo: Callable[[str], None]) -> None:
    echo(
        f"\n{summary['index']}: {summary['photos_indexed']:,} photos of "
        f"{summary['celebrities']:,} celebrities indexed "
        f"(of {summary['rows_in_metadata']:,} rows in imdb.mat)"
    )
    echo("skipped:")
    for reason, count in summary["skipped"].items():
        echo(f"  {reason:<28} {count:>9,}")
    echo("wall time per stage (all runs):")
    for stage, record in summary["stages"].items():
        note = f"  ({record['skipped']})" if record.get("skipped") and not record["runs"] else ""
        echo(f"  {stage:<10} {record['seconds']:>10.1f} s{note}")
    detector = summary.get("detector") or {}
    echo(
        f"model {summary.get('model')}, detector {detector.get('name')} "
        f"(score ≥ {detector.get('min_confidence')})"
    )
    if summary["store"]:
        echo(f"vectors pushed to {summary['store']}")
    echo(f"serve it: make run INDEX={summary['index']}")
