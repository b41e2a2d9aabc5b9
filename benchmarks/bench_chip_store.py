"""Memory of the on-disk chip store (training at IMDB scale) against keeping the chips in RAM.

The chips are SYNTHETIC (seeded uniform noise, 150×150×3 uint8 like the training chips): the
memory and I/O of the store do not depend on what the pixels show, and aligning 100k real faces
would take hours here. Three phases, each in its own fresh process, resident memory (RSS, and
its anonymous / file-backed parts from /proc) sampled every 0.1 s:

1. **fill** a ``ChipStore`` of ``--chips`` chips in resumable chunks, as
   ``lookalike.training_data`` does for the ``imdb-gpu`` preset (the aligner replaced by noise);
2. **stream**: ``--epochs`` shuffled training epoch(s) through ``make_dataset`` (read by index,
   resized to ``--image-size``, augmented, batches of ``--batch``), as ``lookalike train``
   would consume them, with chips/s;
3. **in RAM** (for contrast, at ``--ram-chips``, smaller so that it fits beside other jobs):
   the same chips as one array through ``make_dataset``'s in-RAM path, which the RAM cache
   used before.

    python benchmarks/bench_chip_store.py [--chips 100000] [--ram-chips 10000] [--epochs 1]
        [--dir data/cache/bench-chip-store] [--keep] [--out bench-results/chip-store]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

from lookalike import config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phases import run_phase, save_report  # noqa: E402  (benchmarks/ is not a package)

CHIP = 150


def _memory_mb() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[name] = int(value.split()[0]) / 1024
    return fields


class PeakMemory:
    """Samples this process's memory in a thread; the peak of each field."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for name, value in _memory_mb().items():
            self.peak[name] = max(self.peak.get(name, 0.0), value)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _noise(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(start)
    return rng.integers(0, 256, (stop - start, CHIP, CHIP, 3), np.uint8), np.ones(
        stop - start, bool
    )


def _labels(count: int) -> np.ndarray:
    # IMDB's ~22.7 photos per celebrity.
    return (np.arange(count) // 23).astype(np.int32)


def phase_fill(folder: str, chips: int) -> dict:
    from lookalike.chip_store import ChipStore

    baseline = _memory_mb()
    started = time.perf_counter()
    with PeakMemory() as peak:
        store = ChipStore.open_or_create(folder, key="bench", count=chips, chip_size=CHIP)
        store.fill(_noise, chunk=256, progress=False)
    return {
        "seconds": time.perf_counter() - started,
        "baseline_mb": baseline,
        "peak_mb": peak.peak,
        "disk_gb": store.nbytes() / 1e9,
    }


def _stream(chips, labels, image_size: int, batch: int, epochs: int) -> dict:
    from lookalike.training_data import DataConfig, make_dataset

    dataset = make_dataset(
        chips,
        labels,
        image_size=image_size,
        batch_size=batch,
        training=True,
        settings=DataConfig(),
        seed=0,
    )
    seen, started = 0, time.perf_counter()
    for _ in range(epochs):
        for images, _labels_batch in dataset:
            seen += int(images.shape[0])
    seconds = time.perf_counter() - started
    return {"chips_streamed": seen, "seconds": seconds, "chips_per_s": seen / seconds}


def phase_stream(folder: str, image_size: int, batch: int, epochs: int) -> dict:
    import tensorflow as tf  # noqa: F401 - imported before the baseline, as in training

    from lookalike.chip_store import ChipStore

    baseline = _memory_mb()
    with PeakMemory() as peak:
        store = ChipStore(folder)
        result = _stream(store.chips(), _labels(store.count), image_size, batch, epochs)
    return {**result, "baseline_mb": baseline, "peak_mb": peak.peak}


def phase_ram(chips: int, image_size: int, batch: int) -> dict:
    import tensorflow as tf  # noqa: F401

    baseline = _memory_mb()
    with PeakMemory() as peak:
        array = np.concatenate(
            [_noise(start, min(start + 256, chips))[0] for start in range(0, chips, 256)]
        )
        result = _stream(array, _labels(chips), image_size, batch, 1)
    return {**result, "chips": chips, "baseline_mb": baseline, "peak_mb": peak.peak}


def _growth(result: dict, field: str = "VmRSS") -> float:
    return result["peak_mb"][field] - result["baseline_mb"][field]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chips", type=int, default=100_000)
    parser.add_argument("--ram-chips", type=int, default=10_000, help="0: skip the RAM phase")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=112, help="imdb-gpu's scratch input")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=config.cache_dir() / "bench-chip-store")
    parser.add_argument("--keep", action="store_true", help="keep the store (else deleted)")
    parser.add_argument(
        "--out", type=Path, default=config.REPO_ROOT / "bench-results" / "chip-store"
    )
    args = parser.parse_args()

    need_gb = args.chips * CHIP * CHIP * 3 / 1e9
    free_gb = shutil.disk_usage(args.dir.parent if not args.dir.exists() else args.dir).free / 1e9
    print(
        f"{args.chips:,} synthetic {CHIP}-px chips: {need_gb:.2f} GB on disk "
        f"({free_gb:.0f} GB free)"
    )
    if need_gb > free_gb - 2:
        sys.exit(f"not enough disk space under {args.dir}")
    args.dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        fill = run_phase("bench_chip_store", "fill", str(args.dir), args.chips)
        print(
            f"fill: {fill['seconds']:.1f} s ({args.chips / fill['seconds']:,.0f} chips/s), "
            f"RSS peak {fill['peak_mb']['VmRSS']:.0f} MB (+{_growth(fill):.0f} MB)"
        )
        stream = run_phase(
            "bench_chip_store", "stream", str(args.dir), args.image_size, args.batch, args.epochs
        )
        print(
            f"stream ({args.epochs} epoch(s), batch {args.batch}, {args.image_size} px, "
            f"augmented): {stream['chips_per_s']:,.0f} chips/s, "
            f"RSS peak {stream['peak_mb']['VmRSS']:.0f} MB "
            f"(+{_growth(stream):.0f} MB; anonymous +{_growth(stream, 'RssAnon'):.0f}, "
            f"file-backed +{_growth(stream, 'RssFile'):.0f})"
        )
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    ram = None
    if args.ram_chips:
        ram = run_phase("bench_chip_store", "ram", args.ram_chips, args.image_size, args.batch)
        # Beyond the pipeline's own buffers (the stream phase's growth, same batch and size):
        chips_mb = _growth(ram) - _growth(stream)
        per_chip_kb = chips_mb * 1024 / args.ram_chips
        print(
            f"in RAM ({args.ram_chips:,} chips): RSS peak {ram['peak_mb']['VmRSS']:.0f} MB "
            f"(+{_growth(ram):.0f} MB; +{chips_mb:.0f} MB more than streaming from the store: "
            f"{per_chip_kb:.0f} KB per chip → ~{per_chip_kb * args.chips / 2**20:.1f} GB "
            f"at {args.chips:,})"
        )
    report = {
        "chips": args.chips,
        "chip_size": CHIP,
        "synthetic": True,
        "fill": fill,
        "stream": stream,
        "ram": ram,
        "cpus": os.cpu_count(),
    }
    save_report(args.out, "chip_store.json", report)


if __name__ == "__main__":
    main()
