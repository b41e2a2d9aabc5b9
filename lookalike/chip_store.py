"""Aligned face chips on disk, for training sets too big for RAM (the full IMDB crops).

A :class:`ChipStore` is a folder:

- ``chips.npy``: a plain uint8 ``.npy`` of N × S × S × 3 (``np.load(..., mmap_mode="r")`` opens
  it), one row per photo of the list it was made for, in that order; a photo without a face keeps
  a black row;
- ``found.npy``: N booleans, whether each photo's face was found;
- ``store.json``: what the store was made for (the caller's key, N, S, the format version);
- ``progress.json``: how many photos (from the first) are written and synced;
- ``COMPLETE``: written last, once every row is there.

:meth:`ChipStore.fill` aligns the photos chunk by chunk with a progress bar; every chunk is
written and synced before ``progress.json`` moves on, so an interrupted fill (Ctrl-C, ``kill -9``,
a power cut) resumes at the first unsynced chunk and never trusts half-written rows. A store made
for another key (other photos, other alignment settings) is discarded and made again.

Reading goes through positioned reads (``os.preadv``) of the rows a batch asks for, straight into
the batch's array: the process holds the batches in flight, not the file. (A memory map would do
the same work but count every page it touched as the process's resident memory until the kernel
reclaims it.) :class:`ChipArray` is a row selection of a store that behaves enough like the
in-RAM array (``len``, ``shape``, slicing, ``np.asarray``) for the training code, and that
``lookalike.training_data.make_dataset`` streams from by index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.state_files import read_json, write_json

log = logging.getLogger(__name__)

STORE_VERSION = 1
CHIPS_FILE = "chips.npy"
FOUND_FILE = "found.npy"
META_FILE = "store.json"
PROGRESS_FILE = "progress.json"
COMPLETE_FILE = "COMPLETE"

Aligner = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def _create_npy(path: Path, shape: tuple[int, ...], dtype: type) -> None:
    # open_memmap writes the header and sizes the file without writing the rows (sparse).
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    del array


def _data_offset(path: Path) -> int:
    # Where the rows start: the length of the .npy header, as numpy's own memory map sees it.
    mapped = np.load(path, mmap_mode="r")
    try:
        return int(mapped.offset)
    finally:
        del mapped


def _pread_into(fd: int, buffer: memoryview, offset: int) -> None:
    done = 0
    while done < len(buffer):
        count = os.preadv(fd, [buffer[done:]], offset + done)
        if count == 0:
            raise OSError(f"unexpected end of the chip file at byte {offset + done}")
        done += count


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


class ChipStore:
    """A resumable on-disk array of N aligned chips (S × S × 3 uint8), read by row."""

    def __init__(self, path: str | os.PathLike) -> None:
        """Open an existing store (complete or not); :meth:`open_or_create` makes one."""
        self.path = Path(path)
        meta = read_json(self.path / META_FILE)
        if meta is None or meta.get("version") != STORE_VERSION:
            raise FileNotFoundError(f"no chip store (version {STORE_VERSION}) in {self.path}")
        self.key: str = meta["key"]
        self.count: int = int(meta["count"])
        self.chip_size: int = int(meta["chip_size"])
        self.row_shape = (self.chip_size, self.chip_size, 3)
        self.row_bytes = int(np.prod(self.row_shape))
        chips_path = self.path / CHIPS_FILE
        self._chips_offset = _data_offset(chips_path)
        self._found_offset = _data_offset(self.path / FOUND_FILE)
        self._fd: int | None = os.open(chips_path, os.O_RDONLY)
        self._found: np.ndarray | None = None

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike, *, key: str, count: int, chip_size: int
    ) -> ChipStore:
        """The store at ``path`` when it was made for ``key`` (N and S too), else a new one.

        A store made for anything else (another key, size or version) is deleted first.
        """
        if count < 0 or chip_size < 1:
            raise ValueError(
                f"a chip store needs count >= 0 and chip_size >= 1: {count}, {chip_size}"
            )
        path = Path(path)
        wanted = {"version": STORE_VERSION, "key": key, "count": count, "chip_size": chip_size}
        if read_json(path / META_FILE) == wanted:
            return cls(path)
        if path.exists():
            log.info("chip store %s was made for other photos or settings: starting again", path)
            shutil.rmtree(path)
        path.mkdir(parents=True)
        _create_npy(path / CHIPS_FILE, (count, chip_size, chip_size, 3), np.uint8)
        _create_npy(path / FOUND_FILE, (count,), np.bool_)
        write_json(path / PROGRESS_FILE, {"done": 0})
        write_json(path / META_FILE, wanted)  # last: a store exists once its files do
        return cls(path)

    # ---------------------------------------------------------------------------------------
    # state

    @property
    def done(self) -> int:
        """Photos (from the first) whose rows are written and synced."""
        return int((read_json(self.path / PROGRESS_FILE) or {}).get("done", 0))

    @property
    def complete(self) -> bool:
        return (self.path / COMPLETE_FILE).is_file()

    @property
    def found(self) -> np.ndarray:
        """Whether each photo's face was found (rows not yet filled read False)."""
        if self._found is not None:
            return self._found
        found = np.zeros(self.count, dtype=bool)
        done = self.done
        with open(self.path / FOUND_FILE, "rb") as handle:
            handle.seek(self._found_offset)
            found[:done] = np.frombuffer(handle.read(done), dtype=np.uint8).astype(bool)
        if self.complete:
            self._found = found  # final: read once
        return found

    def nbytes(self) -> int:
        """The chips' size on disk when complete (the file is sparse until then)."""
        return self.count * self.row_bytes

    # ---------------------------------------------------------------------------------------
    # writing

    def fill(
        self,
        align: Aligner,
        *,
        chunk: int = 32,
        progress: bool = True,
        desc: str = "align faces",
    ) -> None:
        """Write every row not yet written: ``align(start, stop)`` → (chips of the found faces,
        found mask of photos ``start:stop``). Resumes where an earlier fill stopped."""
        from tqdm.auto import tqdm

        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        if self.complete:
            return
        start = self.done
        if start:
            log.info("chip store %s: resuming at photo %d of %d", self.path, start, self.count)
        chips_fd = os.open(self.path / CHIPS_FILE, os.O_WRONLY)
        found_fd = os.open(self.path / FOUND_FILE, os.O_WRONLY)
        try:
            with tqdm(
                total=self.count, initial=start, unit="photo", desc=desc, disable=not progress
            ) as bar:
                while start < self.count:
                    stop = min(start + chunk, self.count)
                    chips, found = align(start, stop)
                    self._write_rows(chips_fd, found_fd, start, stop, chips, found)
                    write_json(self.path / PROGRESS_FILE, {"done": stop})
                    bar.update(stop - start)
                    start = stop
        finally:
            os.close(chips_fd)
            os.close(found_fd)
        write_json(self.path / COMPLETE_FILE, {"count": self.count, "found": int(self.found.sum())})
        self._found = None

    def _write_rows(
        self,
        chips_fd: int,
        found_fd: int,
        start: int,
        stop: int,
        chips: np.ndarray,
        found: np.ndarray,
    ) -> None:
        found = np.asarray(found, dtype=bool)
        if found.shape != (stop - start,):
            raise ValueError(f"align({start}, {stop}) gave {found.shape[0]} found flags")
        chips = np.asarray(chips)
        if chips.shape != (int(found.sum()), *self.row_shape) or chips.dtype != np.uint8:
            raise ValueError(
                f"align({start}, {stop}) gave chips {chips.shape} {chips.dtype}; expected "
                f"({int(found.sum())}, {', '.join(map(str, self.row_shape))}) uint8"
            )
        block = np.zeros((stop - start, *self.row_shape), np.uint8)
        block[found] = chips
        _pwrite_all(
            chips_fd, memoryview(block).cast("B"), self._chips_offset + start * self.row_bytes
        )
        _pwrite_all(found_fd, memoryview(found.view(np.uint8)), self._found_offset + start)
        os.fsync(chips_fd)
        os.fsync(found_fd)
        if hasattr(os, "posix_fadvise"):  # written and synced: leave the page cache to others
            os.posix_fadvise(
                chips_fd,
                self._chips_offset + start * self.row_bytes,
                len(block) * self.row_bytes,
                os.POSIX_FADV_DONTNEED,
            )

    # ---------------------------------------------------------------------------------------
    # reading

    def read(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The chips at these rows, in this order: a new (len(rows), S, S, 3) uint8 array.

        Sorted runs of consecutive rows are read with one system call each.
        """
        if self._fd is None:
            raise ValueError(f"chip store {self.path} is closed")
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), np.uint8)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= self.count:
            raise IndexError(
                f"chip rows must be in [0, {self.count}), got {rows.min()}..{rows.max()}"
            )
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        in_order = bool(np.all(order[1:] > order[:-1]))
        buffer = out if in_order else np.empty_like(out)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for first, last in zip(
            np.concatenate([[0], breaks]), np.concatenate([breaks, [len(ordered)]]), strict=True
        ):
            offset = self._chips_offset + int(ordered[first]) * self.row_bytes
            _pread_into(self._fd, memoryview(buffer[first:last]).cast("B"), offset)
        if not in_order:
            out[order] = buffer
        return out

    def chips(self, rows: np.ndarray | None = None) -> ChipArray:
        """A lazy array of these rows (default: the photos whose face was found)."""
        if rows is None:
            rows = np.flatnonzero(self.found)
        return ChipArray(self, rows)

    def memmap(self) -> np.ndarray:
        """The whole chip file as a read-only memory map (for notebooks and inspection)."""
        return np.load(self.path / CHIPS_FILE, mmap_mode="r")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown os may be gone
            self.close()

    def __enter__(self) -> ChipStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.done}/{self.count} filled"
        return f"ChipStore({str(self.path)!r}, {self.count} × {self.chip_size}², {state})"


class ChipArray:
    """Some rows of a :class:`ChipStore`, read on demand; numpy-like where training needs it.

    ``len``, ``shape``, ``dtype``, ``ndim``; indexing with an int, a slice or an array of
    positions reads those chips into a new array; ``np.asarray`` reads them all (only for small
    selections); :meth:`take` selects rows without reading; :meth:`read_positions` is what
    ``tf.data`` calls per batch.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, store: ChipStore, rows: np.ndarray) -> None:
        self.store = store
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.rows), *self.store.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self.store.row_bytes

    def take(self, positions: np.ndarray | list[int]) -> ChipArray:
        """A selection of this selection (positions into it), nothing read."""
        return ChipArray(self.store, self.rows[np.asarray(positions, dtype=np.int64)])

    def read_positions(self, positions: np.ndarray) -> np.ndarray:
        """The chips at these positions of the selection (for ``tf.numpy_function``)."""
        return self.store.read(self.rows[np.asarray(positions, dtype=np.int64)])

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.store.read(self.rows[[key]])[0]
        return self.store.read(self.rows[key])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        chips = self.store.read(self.rows)
        return chips if dtype is None else chips.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"ChipArray({len(self)} rows of {self.store!r})"
