"""Download and safely unpack the published IMDB-WIKI archives.

The archives are large (``imdb_crop.tar`` is about 7 GB), so a download streams to
``<name>.part``, resumes with an HTTP ``Range`` request when run again, checks the published
md5 and only then renames the file to its final name. Extraction refuses any member that
could write outside the destination and leaves a marker file behind, so running the same
command twice does no work the second time.

The base URL can be overridden (``base_url=`` or ``$LOOKALIKE_IMDB_BASE_URL``) to use a
mirror, and the tests point it at a server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from tqdm import tqdm

from lookalike import __version__
from lookalike.errors import InvalidInputError, LookalikeError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/static/"
BASE_URL_ENV = "LOOKALIKE_IMDB_BASE_URL"
DEFAULT_TIMEOUT = 60.0
DEFAULT_CHUNK_SIZE = 1 << 20
PART_SUFFIX = ".part"

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
# tarfile's own "data" filter exists from 3.11.4 / 3.12; older 3.11 releases lack it.
_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


class DownloadError(LookalikeError, RuntimeError):
    """A download or an extraction failed; the message says why and what to do next."""


@dataclass(frozen=True)
class Dataset:
    """One published archive: its file name, md5 and what it unpacks to."""

    name: str
    filename: str
    md5: str | None  # None: the authors publish no checksum, so none is checked
    folder: str  # top-level folder the archive unpacks to, returned by download_dataset
    contents: str  # a file that must exist after extraction (sanity check)
    description: str


DATASETS: dict[str, Dataset] = {
    "imdb": Dataset(
        name="imdb",
        filename="imdb_crop.tar",
        md5="44b7548f288c14397cb7a7bab35ebe14",
        folder="imdb_crop",
        contents="imdb_crop/imdb.mat",
        description="IMDB face crops (~7 GB) with imdb_crop/imdb.mat",
    ),
    "imdb-meta": Dataset(
        name="imdb-meta",
        filename="imdb_meta.tar",
        md5="469433135f1e961c9f4c0304d0b5db1e",
        folder="imdb",
        contents="imdb/imdb.mat",
        description="IMDB metadata only (imdb/imdb.mat)",
    ),
    "wiki": Dataset(
        name="wiki",
        filename="wiki_crop.tar",
        md5=None,
        folder="wiki_crop",
        contents="wiki_crop/wiki.mat",
        description="Wikipedia face crops (~1 GB) with wiki_crop/wiki.mat; no published md5",
    ),
}


def get_dataset(name: str) -> Dataset:
    """Return the registry entry for ``name``; ValueError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise InvalidInputError(f"unknown dataset {name!r}; choose one of: {known}") from None


def dataset_url(name: str, base_url: str | None = None) -> str:
    """URL of a dataset's archive: ``base_url``, else ``$LOOKALIKE_IMDB_BASE_URL``, else ETH's."""
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return base.rstrip("/") + "/" + get_dataset(name).filename


def download_dataset(
    name: str,
    dest: Path,
    *,
    base_url: str | None = None,
    extract: bool = True,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download dataset ``name`` into ``dest`` and unpack it there.

    Returns the extracted folder (e.g. ``dest/imdb_crop``), or the archive's path when
    ``extract`` is False. The archive is kept in ``dest`` (delete it by hand to save space);
    a completed extraction is remembered, so a second call makes no network request at all.
    """
    dataset = get_dataset(name)
    dest = Path(dest)
    archive = dest / dataset.filename
    folder = dest / dataset.folder
    if extract and _read_marker(dest, archive.name) is not None:
        if (dest / dataset.contents).exists():
            logger.info("%s is already extracted in %s", archive.name, dest)
            return folder
        # Marker without the files: someone deleted them, so extract again.
        _marker_path(dest, archive.name).unlink(missing_ok=True)

    if dataset.md5 is None:
        logger.warning(
            "%s has no published md5: the download is checked for length only", archive.name
        )
    download_file(
        dataset_url(name, base_url),
        archive,
        expected_md5=dataset.md5,
        progress=progress,
        timeout=timeout,
    )
    if not extract:
        return archive

    extract_tar(archive, dest, progress=progress)
    if not (dest / dataset.contents).exists():
        raise DownloadError(
            f"{archive} was extracted but holds no {dataset.contents}: it is not the expected "
            f"{dataset.name} archive. Delete it and download again (check the base URL)."
        )
    return folder


def download_file(
    url: str,
    target: Path,
    *,
    expected_md5: str | None = None,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``url`` to ``target`` (resumable, md5-checked, atomic) and return ``target``.

    Bytes go to ``target.part``; when that exists the request asks for the rest with
    ``Range: bytes=N-``. ``timeout`` (seconds) bounds every socket wait, so a stalled server
    raises DownloadError instead of hanging. On an md5 mismatch the part file is deleted.
    An existing ``target`` whose md5 matches (or with no md5 given) is returned untouched.
    """
    if expected_md5 is not None:
        expected_md5 = expected_md5.strip().lower()
        if not _MD5_HEX.fullmatch(expected_md5):
            raise ValueError(f"expected_md5 must be 32 hex digits, got {expected_md5!r}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")

    target = Path(target)
    if target.exists():
        if expected_md5 is None:
            logger.info("%s already exists (no md5 to check)", target)
            return target
        actual = _md5_of_file(target).hexdigest()
        if actual == expected_md5:
            logger.info("%s already exists with the right md5", target)
            return target
        logger.warning("%s has md5 %s, not %s: downloading it again", target, actual, expected_md5)
        target.unlink()

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    actual = _fetch_into_part(url, part, progress, chunk_size, timeout, allow_restart=True)

    if expected_md5 is not None and actual != expected_md5:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"md5 mismatch for {target.name} from {url}: expected {expected_md5}, got {actual}. "
            "The corrupt download was deleted; run again to fetch it afresh (if it fails again, "
            "the file on the server differs from the published one)."
        )
    logger.info("downloaded %s (md5 %s)", target, actual)
    # Atomic: the final name only ever holds a complete, verified file.
    os.replace(part, target)
    return target


def extract_tar(tar_path: Path, dest: Path, *, progress: bool = True, resume: bool = False) -> Path:
    """Safely extract ``tar_path`` into ``dest`` and return ``dest``.

    Refuses (DownloadError, before anything is written when possible) absolute member paths,
    ``..`` traversal, symlinks or hardlinks resolving outside ``dest``, and device files or
    pipes. A marker file in ``dest`` records a finished extraction of this archive, so running
    again is a no-op; an interrupted extraction (no marker) is simply redone, or with ``resume``
    continued: regular files already on disk at their full size and modification time (which
    tarfile sets only after writing a file's last byte) are not written again.
    """
    tar_path = Path(tar_path)
    dest = Path(dest)
    try:
        size = tar_path.stat().st_size
    except FileNotFoundError:
        raise DownloadError(f"cannot extract {tar_path}: the file does not exist") from None
    marker = _read_marker(dest, tar_path.name)
    if marker is not None and marker.get("size") == size:
        logger.info("%s is already extracted in %s", tar_path.name, dest)
        return dest

    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    try:
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
            # Check every member before writing anything: a hostile archive leaves no trace.
            for member in members:
                _check_member(member, root)
            todo = [m for m in members if not (resume and _already_extracted(m, root))]
            with tqdm(
                total=len(members),
                initial=len(members) - len(todo),
                unit="file",
                desc=f"extract {tar_path.name}",
                disable=not progress,
            ) as bar:
                checked = _recheck_while_extracting(todo, root, bar)
                if _HAS_DATA_FILTER:
                    tar.extractall(root, members=checked, filter="data")
                else:
                    tar.extractall(root, members=checked)
    except tarfile.FilterError as exc:
        # Our own checks run first, so this is a belt-and-braces refusal by tarfile itself.
        raise DownloadError(
            f"refusing to extract {tar_path}: {exc}. The archive is unsafe; do not use it."
        ) from exc
    except (tarfile.TarError, EOFError) as exc:
        raise DownloadError(
            f"{tar_path} is not a readable tar archive ({exc}); delete it and download again."
        ) from exc

    _write_marker(
        dest, tar_path.name, {"archive": tar_path.name, "size": size, "members": len(members)}
    )
    return dest


# --- download internals -------------------------------------------------------------------


class _StartOver(Exception):
    """The part file cannot be continued: it is longer than the server's file, or the server
    resumed at another byte. The message is the error to report when starting over is not
    allowed (any more)."""


@dataclass
class _Resume:
    """How the bytes of one response go into the part file."""

    mode: str  # "ab": append at ``offset``; "wb": write from byte 0
    offset: int
    total: int | None  # the whole file's size, when the server says it
    hasher: Any  # md5 of the part file so far


def _fetch_into_part(
    url: str, part: Path, progress: bool, chunk_size: int, timeout: float, *, allow_restart: bool
) -> str:
    """Complete ``part`` from ``url`` and return the md5 of the whole part file."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open_from(url, part, offset, timeout)
        if response is None:
            logger.info("%s was already complete", part)
            return _md5_of_file(part).hexdigest()
        with response:
            resume = _resume_plan(response, url, part, offset)
            received = _stream_into(response, part, resume, url, progress, chunk_size, timeout)
    except _StartOver as problem:
        if not allow_restart:
            raise DownloadError(str(problem)) from None
        return _restart(url, part, progress, chunk_size, timeout)
    # http.client returns EOF quietly when a server closes early, so count the bytes.
    if resume.total is not None and received != resume.total:
        raise DownloadError(
            f"connection to {url} closed after {received} of {resume.total} bytes; the partial "
            f"file {part} is kept: run again to resume."
        )
    return resume.hasher.hexdigest()


def _open_from(url: str, part: Path, offset: int, timeout: float) -> Any | None:
    """The response for ``url`` from byte ``offset`` on; None when the part is already whole."""
    headers = {"User-Agent": f"lookalike/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # frees the socket; headers stay readable
        message = _http_error_message(exc.code, exc.reason, url)
        if exc.code == 416 and offset:
            _, _, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return None
            raise _StartOver(message) from None  # longer than the file, or its size unknown
        raise DownloadError(message) from None
    except TimeoutError as exc:
        raise _stalled(url, part, timeout) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _stalled(url, part, timeout) from exc
        raise DownloadError(
            f"could not reach {url}: {exc.reason}. Check the network connection and the "
            f"base URL (--base-url or ${BASE_URL_ENV})."
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"connection to {url} failed: {exc!r}; run again to retry.") from exc


def _resume_plan(response: Any, url: str, part: Path, offset: int) -> _Resume:
    """Append (a 206 from the right byte) or write from scratch (a 200), by the answer."""
    status = response.status or 200  # a file:// URL has no status
    length = response.headers.get("Content-Length")
    if status == 206:
        start, _, total = _parse_content_range(response.headers.get("Content-Range"))
        if start is not None and start != offset:
            # Appending at the wrong place would corrupt the file silently.
            raise _StartOver(f"{url} answered a range request for byte {offset} with byte {start}")
        if total is None and length is not None:
            total = offset + int(length)
        hasher = _md5_of_file(part) if offset else hashlib.md5(usedforsecurity=False)
        return _Resume("ab", offset, total, hasher)
    if status == 200:
        if offset:
            logger.info("%s ignored the Range request: restarting from byte 0", url)
        total = int(length) if length is not None else None
        return _Resume("wb", 0, total, hashlib.md5(usedforsecurity=False))
    raise DownloadError(
        f"unexpected HTTP {status} {response.reason} for {url}; expected the file itself."
    )


def _stream_into(
    response: Any,
    part: Path,
    resume: _Resume,
    url: str,
    progress: bool,
    chunk_size: int,
    timeout: float,
) -> int:
    """Copy the response's body into the part file (hashing it); the part's size after."""
    received = resume.offset
    read = getattr(response, "read1", response.read)
    with (
        part.open(resume.mode) as fh,
        tqdm(
            total=resume.total,
            initial=resume.offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(PART_SUFFIX),
            disable=not progress,
        ) as bar,
    ):
        while True:
            try:
                chunk = read(chunk_size)
            except TimeoutError as exc:
                raise _stalled(url, part, timeout, received) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"connection to {url} broke after {received} bytes ({exc!r}); the "
                    f"partial file {part} is kept: run again to resume."
                ) from exc
            if not chunk:
                break
            fh.write(chunk)
            resume.hasher.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
        fh.flush()
        os.fsync(fh.fileno())
    return received


def _restart(url: str, part: Path, progress: bool, chunk_size: int, timeout: float) -> str:
    logger.warning("discarding %s, which does not match the server's file", part)
    part.unlink(missing_ok=True)
    return _fetch_into_part(url, part, progress, chunk_size, timeout, allow_restart=False)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 99, 100); ``bytes */100`` -> (None, None, 100)."""
    match = _CONTENT_RANGE.fullmatch(value.strip()) if value else None
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(total) if total != "*" else None,
    )


def _http_error_message(code: int, reason: str, url: str) -> str:
    if code == 404:
        hint = (
            "the file is not at this address: check the base URL (--base-url or "
            f"${BASE_URL_ENV}) or whether the dataset moved"
        )
    elif code in (401, 403):
        hint = "the server refused access; the dataset may have moved or need a licence step"
    elif code >= 500:
        hint = "the server is failing: try again later (a partial download is kept)"
    else:
        hint = "check the URL and try again"
    return f"HTTP {code} {reason} for {url}: {hint}."


def _stalled(url: str, part: Path, timeout: float, received: int | None = None) -> DownloadError:
    kept = f"; {received} bytes are kept in {part}" if received else ""
    return DownloadError(
        f"timed out: no data from {url} for {timeout:g} s (stalled connection){kept}. "
        "Run again to resume, or raise the timeout."
    )


def _md5_of_file(path: Path) -> hashlib._Hash:
    hasher = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(DEFAULT_CHUNK_SIZE):
            hasher.update(block)
    return hasher


# --- extraction internals -----------------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_member(member: tarfile.TarInfo, root: str) -> None:
    """Raise DownloadError unless ``member`` would land (and point) inside ``root``.

    Uses realpath, so when called just before a member is extracted it also sees symlinks
    that earlier members created (the classic ``a -> .``, ``a/b -> ..`` chain).
    """
    name = member.name

    def refuse(why: str) -> DownloadError:
        return DownloadError(
            f"refusing to extract member {name!r}: {why}. The archive is unsafe or corrupt; "
            "nothing outside the destination was written. Do not use this archive."
        )

    if (
        not name
        or name.startswith(("/", "\\"))
        or os.path.isabs(name)
        or PureWindowsPath(name).drive
    ):
        raise refuse("it has an absolute path")
    if not _inside(os.path.realpath(os.path.join(root, name)), root):
        raise refuse(f"it would be written outside {root} ('..' traversal or a symlinked folder)")
    if member.ischr() or member.isblk() or member.isfifo():
        raise refuse("it is a device file or a pipe")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise refuse(f"it has an unsupported type {member.type!r}")
    if member.issym() or member.islnk():
        link = member.linkname
        kind = "symlink" if member.issym() else "hardlink"
        if link.startswith(("/", "\\")) or os.path.isabs(link) or PureWindowsPath(link).drive:
            raise refuse(f"it is a {kind} to the absolute path {link!r}")
        # A symlink is relative to its own folder, a hardlink to the archive's root.
        base = os.path.join(root, os.path.dirname(name)) if member.issym() else root
        if not _inside(os.path.realpath(os.path.join(base, link)), root):
            raise refuse(f"it is a {kind} to {link!r}, outside {root}")


def _already_extracted(member: tarfile.TarInfo, root: str) -> bool:
    """A regular file member already written in full by an earlier, interrupted extraction."""
    if not member.isreg():
        return False
    try:
        status = os.lstat(os.path.join(root, member.name))
    except OSError:
        return False
    return status.st_size == member.size and int(status.st_mtime) == int(member.mtime)


def _recheck_while_extracting(
    members: list[tarfile.TarInfo], root: str, bar: tqdm
) -> Iterator[tarfile.TarInfo]:
    """Yield members to extractall, re-checking each one against what is on disk by then."""
    for member in members:
        _check_member(member, root)
        yield member
        bar.update(1)


def _marker_path(dest: Path, archive_name: str) -> Path:
    return dest / f".{archive_name}.extracted"


def _read_marker(dest: Path, archive_name: str) -> dict | None:
    path = _marker_path(dest, archive_name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(dest: Path, archive_name: str, data: dict) -> None:
    path = _marker_path(dest, archive_name)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)
