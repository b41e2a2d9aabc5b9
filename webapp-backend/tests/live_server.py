"""Plain helpers (no pytest) for tests that need a real index or a real running server.

- :func:`ensure_test_index`: an index to test against: the demo index when it has been built,
  else one built (once, then cached) from ``data/sample`` or, failing that, from ten people of
  ``../shared/data/lfw-dev``. With ``held_out=True`` always a built one, with one photo of
  some people left out of it (listed in its ``held_out.json``).
- :func:`find_face_photo`: a real photo file of a face whose celebrity is in that index: a
  held-out photo when the index has them (recognition, not lookup).
- :func:`start_live_server` / :func:`stop_live_server` / :func:`live_server`: ``lookalike serve``
  as a real subprocess on 127.0.0.1 (gunicorn), ready once ``/api/health`` answers.

The backend's conftest, the end-to-end browser tests and ``benchmarks/bench_api.py`` share them.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from lookalike import config

LFW_PEOPLE = 10
LFW_PHOTOS_PER_PERSON = 4
HELD_OUT_PEOPLE = 8  # people with one photo left out of a held-out test index
HELD_OUT_FILE = "held_out.json"
_LISTENING = re.compile(r"Listening at: (http://\S+)")


def ensure_test_index(cache_dir: Path, *, held_out: bool = False) -> tuple[Path, Path | None]:
    """``(index_dir, model_path)`` to test against; ``model_path`` None means the default model.

    Uses the demo index (``config.default_index_dir()``) when it exists. Otherwise builds one in
    ``cache_dir`` (reused on later runs while the photos and the model stay the same), from
    ``data/sample`` when present, else from a small folder-per-person copy of LFW.

    ``held_out``: always build, leaving out the last photo of the first ``HELD_OUT_PEOPLE``
    people with three or more photos; their paths and ids go to ``<index>/held_out.json``.
    """
    from lookalike import gallery, model_files
    from lookalike.index_build import build_index

    default_index = config.default_index_dir()
    if not held_out and (default_index / "index.json").is_file():
        return default_index, None
    cache_dir = Path(cache_dir)
    model_path = config.default_model_path()
    if not model_path.is_file():
        # Installed by `make setup`; a test run without it is a broken set-up, not a skip.
        raise RuntimeError(f"no default model at {model_path}: run `make setup` first")

    sample = config.sample_dir()
    if (sample / "imdb_crop" / "imdb.mat").is_file():
        photos = gallery.from_imdb(sample)
        source = {"kind": "imdb", "path": str(sample)}
    else:
        folders = _lfw_gallery(cache_dir / "lfw-gallery")
        photos = gallery.from_folders(folders)
        source = {"kind": "folders", "path": str(folders)}
    queries = _held_out_photos(photos) if held_out else []
    photos = [photo for photo in photos if photo not in queries]
    # A cached index is reused only for the same photos and the same model.
    fingerprint = hashlib.sha256(model_files.model_info(model_path)["sha256"].encode())
    for photo in photos:
        fingerprint.update(
            f"{photo.path}|{photo.path.stat().st_size}|{photo.celebrity_id}\n".encode()
        )
    index_dir = cache_dir / f"index-{source['kind']}-{fingerprint.hexdigest()[:12]}"
    if not (index_dir / "index.json").is_file():
        build_index(photos, index_dir, model_path=model_path, progress=False, source=source)
        listed = [{"path": str(p.path), "celebrity_id": p.celebrity_id} for p in queries]
        (index_dir / HELD_OUT_FILE).write_text(json.dumps(listed, indent=1))
    return index_dir, model_path


def _held_out_photos(photos: Sequence) -> list:
    """The last photo of each of the first ``HELD_OUT_PEOPLE`` people with 3+ photos."""
    by_person: dict[str, list] = collections.defaultdict(list)
    for photo in photos:
        by_person[photo.celebrity_id].append(photo)
    chosen = [group[-1] for group in by_person.values() if len(group) >= 3]
    return chosen[:HELD_OUT_PEOPLE]


def _lfw_gallery(out: Path) -> Path:
    """A folder-per-person gallery: the first people of lfw-dev with enough photos, copied."""
    if out.is_dir() and any(out.iterdir()):
        return out
    lfw = config.shared_data_dir() / "lfw-dev"
    if not lfw.is_dir():
        raise FileNotFoundError(
            f"no index to test against: build the demo index (`make setup`), add data/sample, "
            f"or provide {lfw}"
        )
    chosen = 0
    for person in sorted(path for path in lfw.iterdir() if path.is_dir()):
        files = sorted(person.glob("*.jpg"))
        if len(files) < LFW_PHOTOS_PER_PERSON:
            continue
        (out / person.name).mkdir(parents=True, exist_ok=True)
        for file in files[:LFW_PHOTOS_PER_PERSON]:
            shutil.copyfile(file, out / person.name / file.name)
        chosen += 1
        if chosen == LFW_PEOPLE:
            break
    return out


def find_face_photo(index_dir: Path, out_dir: Path) -> tuple[Path, str]:
    """``(photo_path, celebrity_id)``: a real photo file of someone in the index.

    The index's first held-out photo (``held_out.json``: the person is indexed, this photo is
    not), else the source photo of the index's first photo when it is still on disk, else that
    photo's thumbnail written to ``out_dir/face.jpg`` (a real face crop too).
    """
    from lookalike.index import CelebrityIndex

    listed = Path(index_dir) / HELD_OUT_FILE
    if listed.is_file() and (queries := json.loads(listed.read_text())):
        return Path(queries[0]["path"]), str(queries[0]["celebrity_id"])
    index = CelebrityIndex(index_dir)
    for photo_id, row in enumerate(index.photos.itertuples(index=False)):
        source = Path(str(row.source_path))
        for candidate in (source, config.REPO_ROOT / source):
            if candidate.is_file():
                return candidate, str(row.celebrity_id)
        if photo_id >= 20:
            break
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "face.jpg"
    path.write_bytes(index.thumbnail(0))
    return path, str(index.photos["celebrity_id"].iat[0])


def start_live_server(
    index_dir: Path,
    port: int = 0,
    *,
    model_path: Path | None = None,
    host: str = "127.0.0.1",
    threads: int | None = 4,
    timeout: float = 180.0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> tuple[str, subprocess.Popen]:
    """Run ``lookalike serve`` (gunicorn) in a subprocess; return ``(base_url, process)``.

    ``port=0`` lets the OS pick a free port (read back from gunicorn's "Listening at" line).
    Returns once ``GET /api/health`` answers 200; raises ``RuntimeError`` with the server's
    last log lines if it exits or is not ready within ``timeout`` seconds. The server's output
    is drained in the background and kept (last 200 lines) as ``process.log_tail``. ``env``
    adds environment variables (e.g. ``LOOKALIKE_WEB_*`` app settings).
    """
    command = [sys.executable, "-m", "lookalike", "serve", "--index", str(index_dir)]
    if model_path is not None:
        command += ["--model", str(model_path)]
    command += ["--host", host, "--port", str(port), *extra_args]
    if threads is not None:  # None: lookalike serve's own default
        command += ["--threads", str(threads)]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=environment,
        cwd=config.REPO_ROOT,
        text=True,
        start_new_session=True,  # our signals reach gunicorn's master only, as in production
    )
    log_tail: collections.deque[str] = collections.deque(maxlen=200)
    address: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        # Read until the server exits, so a chatty server never blocks on a full pipe.
        for line in process.stdout:
            log_tail.append(line.rstrip("\n"))
            found = _LISTENING.search(line)
            if found and not address:
                address.append(found.group(1))
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain, name="live-server-log", daemon=True)
    reader.start()
    process.log_tail = log_tail  # type: ignore[attr-defined]
    process.log_reader = reader  # type: ignore[attr-defined]

    deadline = time.monotonic() + timeout
    try:
        listening.wait(timeout)
        if not address:
            raise RuntimeError("the server did not start listening")
        url = address[0].rstrip("/")
        _wait_for_health(url, process, deadline)
    except BaseException as error:
        stop_live_server(process)
        tail = "\n".join(log_tail)
        raise RuntimeError(f"lookalike serve did not become ready: {error}\n{tail}") from error
    return url, process


def _wait_for_health(url: str, process: subprocess.Popen, deadline: float) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError("timed out waiting for /api/health")
        try:
            # The worker loads the models first; until then the connection just waits.
            with urllib.request.urlopen(f"{url}/api/health", timeout=min(remaining, 10)) as reply:
                if reply.status == 200 and json.load(reply).get("status") == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)


def stop_live_server(process: subprocess.Popen, timeout: float = 30.0) -> int:
    """Stop the server like a service manager would (SIGTERM, then SIGKILL); its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of its worker
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Gunicorn's master did not finish: kill its whole session (master and worker).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    reader = getattr(process, "log_reader", None)
    if reader is not None:
        reader.join(timeout)
    return process.returncode


@contextlib.contextmanager
def live_server(index_dir: Path, port: int = 0, **options: object) -> Iterator[str]:
    """``with live_server(index_dir) as url:`` a running ``lookalike serve``, stopped after."""
    url, process = start_live_server(index_dir, port, **options)  # type: ignore[arg-type]
    try:
        yield url
    finally:
        stop_live_server(process)
