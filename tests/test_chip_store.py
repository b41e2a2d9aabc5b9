"""The on-disk chip store for training at IMDB scale: rows as written, resume after an
interruption (an exception, and ``kill -9`` of a real process), a store for other photos made
again, and training data on disk identical to the in-RAM chips, through ``tf.data`` too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lookalike import chip_store
from lookalike.chip_store import ChipArray, ChipStore

# (lookalike.training imports TensorFlow: imported inside the tests that use it, so that the
# killed fill's process, which imports this module for _synthetic, starts quickly.)

SIZE = 6  # synthetic chip side


def _synthetic(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Chips that say which row they are; every third photo "has no face"."""
    rows = np.arange(start, stop)
    found = rows % 3 != 1
    chips = np.broadcast_to(
        (rows[found] % 251).astype(np.uint8)[:, None, None, None], (int(found.sum()), SIZE, SIZE, 3)
    ).copy()
    chips[:, 0, 0, 0] = rows[found] // 251
    return chips, found


def _expected(count: int) -> tuple[np.ndarray, np.ndarray]:
    chips, found = _synthetic(0, count)
    full = np.zeros((count, SIZE, SIZE, 3), np.uint8)
    full[found] = chips
    return full, found


def test_store_keeps_rows_in_place_and_reads_any_order(tmp_path: Path) -> None:
    store = ChipStore.open_or_create(tmp_path / "s", key="a", count=40, chip_size=SIZE)
    assert not store.complete and store.done == 0
    store.fill(_synthetic, chunk=7, progress=False)
    full, found = _expected(40)
    assert store.complete and store.done == 40
    np.testing.assert_array_equal(store.found, found)
    np.testing.assert_array_equal(store.memmap(), full)  # a plain .npy, rows in photo order
    rows = np.array([31, 2, 3, 4, 2, 0, 39])  # unsorted, a run, a repeat
    np.testing.assert_array_equal(store.read(rows), full[rows])
    assert store.read([]).shape == (0, SIZE, SIZE, 3)
    with pytest.raises(IndexError):
        store.read([40])

    chips = store.chips()  # the found rows
    assert len(chips) == found.sum() and chips.shape == (found.sum(), SIZE, SIZE, 3)
    np.testing.assert_array_equal(np.asarray(chips), full[found])
    np.testing.assert_array_equal(chips[3], full[found][3])
    np.testing.assert_array_equal(chips[2:5], full[found][2:5])
    picked = chips.take([5, 1])
    assert isinstance(picked, ChipArray)
    np.testing.assert_array_equal(
        picked.read_positions(np.array([1, 0, 1])), full[found][[1, 5, 1]]
    )

    # Opening again with the same key reuses it; another key starts again.
    assert ChipStore.open_or_create(tmp_path / "s", key="a", count=40, chip_size=SIZE).complete
    other = ChipStore.open_or_create(tmp_path / "s", key="b", count=40, chip_size=SIZE)
    assert not other.complete and other.done == 0


def test_fill_refuses_chips_that_do_not_fit(tmp_path: Path) -> None:
    store = ChipStore.open_or_create(tmp_path / "s", key="a", count=4, chip_size=SIZE)
    with pytest.raises(ValueError, match="expected"):
        store.fill(
            lambda start, stop: (
                np.zeros((stop - start, 5, 5, 3), np.uint8),
                np.ones(stop - start, bool),
            ),
            progress=False,
        )
    assert store.done == 0 and not store.complete


def test_interrupted_fill_resumes_without_redoing_chunks(tmp_path: Path) -> None:
    calls: list[int] = []

    def fails_on_third(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(start)
        return _synthetic(start, stop)

    store = ChipStore.open_or_create(tmp_path / "s", key="a", count=25, chip_size=SIZE)
    with pytest.raises(KeyboardInterrupt):
        store.fill(fails_on_third, chunk=5, progress=False)
    assert store.done == 10 and not store.complete
    assert store.found[10:].sum() == 0  # rows not yet written do not count as found

    resumed: list[int] = []
    again = ChipStore.open_or_create(tmp_path / "s", key="a", count=25, chip_size=SIZE)
    again.fill(
        lambda start, stop: (resumed.append(start), _synthetic(start, stop))[1],
        chunk=5,
        progress=False,
    )
    assert resumed == [10, 15, 20]
    np.testing.assert_array_equal(again.memmap(), _expected(25)[0])


KILLED_FILL = """
import sys, time
sys.path.insert(0, {tests!r})
from test_chip_store import _synthetic
from lookalike.chip_store import ChipStore

def slow(start, stop):
    time.sleep(0.05)
    return _synthetic(start, stop)

ChipStore.open_or_create({path!r}, key="k", count=600, chip_size={size}).fill(
    slow, chunk=4, progress=False)
"""


def test_fill_killed_with_sigkill_resumes_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "store"
    script = KILLED_FILL.format(tests=str(Path(__file__).parent), path=str(path), size=SIZE)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = path / chip_store.PROGRESS_FILE
            if progress.is_file() and json.loads(progress.read_text() or "{}").get("done", 0) >= 40:
                break
            assert process.poll() is None, "the fill ended before it could be killed"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    store = ChipStore(path)
    killed_at = store.done
    assert 40 <= killed_at < 600 and not store.complete

    starts: list[int] = []
    store.fill(
        lambda start, stop: (starts.append(start), _synthetic(start, stop))[1],
        chunk=4,
        progress=False,
    )
    assert starts[0] == killed_at
    full, found = _expected(600)
    np.testing.assert_array_equal(store.memmap(), full)
    np.testing.assert_array_equal(store.found, found)


# --------------------------------------------------------------------------------------------
# Training data on disk: the committed sample, real alignment
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(sample_dir: Path):
    from lookalike import training_config

    if not (sample_dir / "imdb_crop" / "imdb.mat").is_file():
        pytest.skip("needs the committed sample data/sample")
    return training_config.load_config("tiny", overrides={"data.source": str(sample_dir)}).data


def _assert_same_split(memory, disk) -> None:
    assert isinstance(disk.chips, ChipArray) and isinstance(memory.chips, np.ndarray)
    np.testing.assert_array_equal(np.asarray(disk.chips), memory.chips)
    np.testing.assert_array_equal(disk.identities, memory.identities)
    assert disk.paths == memory.paths


def test_training_data_on_disk_resumes_and_equals_the_in_ram_chips(
    tiny_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lookalike import training_data

    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path / "cache"))
    memory = training_data.prepare_training_data(
        replace(tiny_data, chip_store="memory"), progress=False
    )

    # Aligning into the store is interrupted after its first chunk, then run again.
    real_align = training_data._align_chunk
    aligned: list[int] = []

    def interrupted(photos, spec):
        if aligned:
            raise KeyboardInterrupt
        aligned.append(len(photos))
        return real_align(photos, spec)

    monkeypatch.setattr(training_data, "_align_chunk", interrupted)
    on_disk = replace(tiny_data, chip_store="disk")
    with pytest.raises(KeyboardInterrupt):
        training_data.prepare_training_data(on_disk, progress=False)
    monkeypatch.setattr(training_data, "_align_chunk", real_align)
    disk = training_data.prepare_training_data(on_disk, progress=False)
    chunk = training_data.DETECTION_CHUNK
    assert disk.summary["chip_store"] == "disk"
    assert disk.summary["cache_resumed_at"] == chunk and not disk.summary["cache_reused"]
    assert (
        disk.summary["cache"].endswith(".store")
        and disk.summary["missed_faces"] == (memory.summary["missed_faces"])
    )
    assert disk.classes == memory.classes
    for part in ("train", "validation", "test", "heldout"):
        _assert_same_split(getattr(memory, part), getattr(disk, part))
    assert training_data.prepare_training_data(on_disk, progress=False).summary["cache_reused"]

    # tf.data yields the same batches from disk as from RAM (shuffled alike when training).
    still = replace(tiny_data, augment_flip=False, augment_shift=0.0, augment_brightness=0.0)
    labels = memory.class_labels(memory.train)
    for is_training in (False, True):
        batches = [
            list(
                training_data.make_dataset(
                    chips,
                    labels,
                    image_size=48,
                    batch_size=5,
                    training=is_training,
                    settings=still,
                    seed=3,
                ).as_numpy_iterator()
            )
            for chips in (memory.train.chips, disk.train.chips)
        ]
        assert len(batches[0]) == len(batches[1]) == -(-len(labels) // 5)
        for (ram_images, ram_labels), (disk_images, disk_labels) in zip(*batches, strict=True):
            np.testing.assert_array_equal(disk_labels, ram_labels)
            np.testing.assert_array_equal(disk_images, ram_images)


def test_auto_storage_goes_to_disk_for_large_sets() -> None:
    from lookalike import training_config, training_data

    settings = training_data.DataConfig()
    assert training_data.chip_storage(settings, training_data.DISK_ABOVE) == "memory"
    assert training_data.chip_storage(settings, training_data.DISK_ABOVE + 1) == "disk"
    assert training_data.chip_storage(replace(settings, chip_store="memory"), 10**6) == "memory"
    assert training_config.load_config("imdb-gpu").data.chip_store == "disk"
    with pytest.raises(ValueError, match="chip_store"):
        training_data.DataConfig(chip_store="ram")


def test_a_tiny_run_trains_from_the_chip_store(
    tiny_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lookalike import training, training_config

    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path / "cache"))
    settings = training_config.load_config(
        "tiny", overrides={"data.source": tiny_data.source, "data.chip_store": "disk"}
    )
    result = training.run_training(settings, tmp_path / "run", progress=False)
    assert result.metrics["data"]["chip_store"] == "disk"
    assert isinstance(result.data.train.chips, ChipArray)
    assert (result.out_dir / "embedding.keras").is_file()
    assert "top1" in result.metrics["heldout"]  # held-out chips embedded block by block
