"""``lookalike bench NAME``: run a benchmark script from ``benchmarks/`` and print its figures.

Benchmarks measure; tests never assert timings. Each script also runs alone:
``python benchmarks/bench_NAME.py --help``.
"""

from __future__ import annotations

import argparse
import runpy
import sys

from lookalike import config

BENCHMARKS = {
    "imdb-load": "bench_imdb_load.py",
    "refusals": "bench_refusals.py",
    "pipeline": "bench_pipeline.py",
    "detection": "bench_detection.py",
    "embedder": "bench_embedder.py",
    "quality": "bench_quality.py",
    "known-boxes": "bench_known_boxes.py",
    "search": "bench_search.py",
    "scale": "bench_scale.py",
    "chip-store": "bench_chip_store.py",
    "build": "bench_build.py",
    "api": "bench_api.py",
    "explain": "bench_explain.py",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="run a benchmark (speed, memory, quality) and print its figures"
    )
    bench.add_argument("name", choices=[*BENCHMARKS, "all"])
    bench.add_argument("script_args", nargs=argparse.REMAINDER, help="passed to the script")
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    for name in names:
        script = config.REPO_ROOT / "benchmarks" / BENCHMARKS[name]
        if not script.is_file():
            raise FileNotFoundError(f"benchmark script not found: {script}")
        print(f"\n=== {name} ({script.name}) ===", flush=True)
        saved_argv = sys.argv
        sys.argv = [str(script), *(args.script_args if args.name != "all" else [])]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_status:
            if exit_status.code not in (0, None):
                return int(exit_status.code) if isinstance(exit_status.code, int) else 1
        finally:
            sys.argv = saved_argv
    return 0
