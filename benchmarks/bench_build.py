"""Index build throughput: the in-process build against the Ray Data build, on the same photos.

``--photos`` photos (default 256, a seeded choice from lfw-dev, else the committed sample) are
indexed by ``lookalike.index_build.build_index`` with the default model and ``--detector``,
once in process and once on local Ray with ``--workers`` actors (one fresh process each, so
neither profits from the other's warm caches). Every chunk's arrival is timed, which splits
each build into:

- **start-up**: Ray's own (``ray.init``, timed alone), then until the first chunk comes back
  (process pool / actors started, models loaded once per actor, the first chunk embedded); for
  the in-process build, the model load alone is timed too;
- **steady state**: photos per second from the first round of chunks (one per worker) to the
  last, when every worker has its models loaded.

    python benchmarks/bench_build.py [--photos 256] [--chunk-size 16] [--workers 2]
        [--detector yunet] [--out bench-results/build]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phases import run_phase, save_report  # noqa: E402  (benchmarks/ is not a package)


def _photos(count: int, seed: int = 0) -> tuple[list, str]:
    from lookalike import gallery

    lfw = config.shared_data_dir() / "lfw-dev"
    if lfw.is_dir():
        photos, source = gallery.from_folders(lfw), "lfw-dev"
    else:
        photos, source = gallery.from_imdb(config.REPO_ROOT / "data" / "sample"), "sample"
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(photos), size=min(count, len(photos)), replace=False))
    return [photos[i] for i in chosen], source


def _timed(runner, marks: list[tuple[float, int]]):
    def run(make_pipeline, pending):
        sizes = {number: len(chunk) for number, chunk in pending}
        for number, arrays in runner(make_pipeline, pending):
            marks.append((time.perf_counter(), sizes[number]))
            yield number, arrays

    return run


def _timed_build(photos: list, chunk_size: int, detector: str, runner):
    """Build an index of ``photos`` in a temporary folder, each chunk embedded by ``runner``;
    returns (start time, wall seconds, [(arrival time, photos) of each chunk])."""
    from lookalike import index_build

    marks: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        index_build.build_index(
            photos,
            Path(folder) / "index",
            chunk_size=chunk_size,
            progress=False,
            detector=detector,
            runner=_timed(runner, marks),
        )
        return started, time.perf_counter() - started, marks


def _steady(started: float, marks: list[tuple[float, int]], workers: int) -> dict:
    """Start-up (to the first chunk) and photos/s after the first round of chunks."""
    first_round = min(workers, len(marks) - 1)
    after = marks[first_round - 1][0] if first_round else started
    photos = sum(size for _, size in marks[first_round:])
    seconds = marks[-1][0] - after
    return {
        "to_first_chunk_s": marks[0][0] - started,
        "steady_photos": photos,
        "steady_s": seconds,
        "steady_photos_per_s": photos / seconds if seconds > 0 else None,
    }


def phase_in_process(count: int, chunk_size: int, detector: str) -> dict:
    from lookalike import index_build
    from lookalike.pipeline import FacePipeline

    photos, source = _photos(count)
    started = time.perf_counter()
    FacePipeline(detector=detector)  # the model load alone (the build loads its own)
    load_s = time.perf_counter() - started
    started, wall, marks = _timed_build(photos, chunk_size, detector, index_build.embed_in_process)
    return {
        "source": source,
        "photos": len(photos),
        "model_load_s": load_s,
        "wall_s": wall,
        **_steady(started, marks, 1),
    }


def phase_ray(count: int, chunk_size: int, detector: str, workers: int) -> dict:
    import logging

    import ray

    from lookalike.ray_build import RayChunkRunner

    photos, source = _photos(count)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    runner = RayChunkRunner(workers=workers)
    try:
        started, wall, marks = _timed_build(photos, chunk_size, detector, runner)
    finally:
        stopping = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - stopping
    return {
        "source": source,
        "photos": len(photos),
        "ray_init_s": init_s,
        "ray_shutdown_s": shutdown_s,
        "wall_s": wall,
        "stats": runner.stats,
        **_steady(started, marks, int(runner.stats.get("workers", workers))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors")
    parser.add_argument("--detector", default="yunet")
    parser.add_argument("--no-ray", action="store_true", help="only the in-process build")
    parser.add_argument("--out", type=Path, default=config.REPO_ROOT / "bench-results" / "build")
    args = parser.parse_args()

    local = run_phase("bench_build", "in_process", args.photos, args.chunk_size, args.detector)
    print(
        f"{local['photos']} {local['source']} photos, chunks of {args.chunk_size}, "
        f"detector {args.detector}, {os.cpu_count()} CPUs (shared with other jobs)"
    )
    print(
        f"in process: {local['wall_s']:.1f} s wall; model load {local['model_load_s']:.1f} s, "
        f"first chunk after {local['to_first_chunk_s']:.1f} s, then "
        f"{local['steady_photos_per_s']:.1f} photos/s"
    )
    remote = None
    if not args.no_ray:
        remote = run_phase(
            "bench_build", "ray", args.photos, args.chunk_size, args.detector, args.workers
        )
        stats = remote["stats"]
        print(
            f"Ray ({stats.get('workers')} actors × {stats.get('cpus_per_actor')} CPU): "
            f"{remote['wall_s']:.1f} s wall after ray.init {remote['ray_init_s']:.1f} s; "
            f"first chunk after {remote['to_first_chunk_s']:.1f} s, then "
            f"{remote['steady_photos_per_s']:.1f} photos/s; "
            f"shutdown {remote['ray_shutdown_s']:.1f} s"
        )
    report = {
        "photos": args.photos,
        "chunk_size": args.chunk_size,
        "detector": args.detector,
        "cpus": os.cpu_count(),
        "in_process": local,
        "ray": remote,
    }
    save_report(args.out, "build.json", report)


if __name__ == "__main__":
    main()
