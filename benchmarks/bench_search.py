"""Index search at IMDB scale, and index build throughput on the committed sample.

Search: a synthetic index of 460,723 unit vectors (128-D) in 20,284 celebrity clusters is
written in the real on-disk format, loaded twice (exact and compressed search) and queried with
noisy copies of its own photos. Prints ms per top-10 query (p50/p95) and the compressed
search's celebrity-level recall@10 against exact search.

Build: ``lookalike index build --imdb data/sample`` timed end to end (photos/s).

    python benchmarks/bench_search.py [--photos 460723] [--queries 300] [--skip-build]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import config, fixtures
from lookalike.index import CelebrityIndex


def write_clustered_index(out: Path, photos: int, celebrities: int, seed: int = 0) -> np.ndarray:
    """A valid index folder of clustered random embeddings; returns the embeddings."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(photos - celebrities, np.ones(celebrities) / celebrities) + 1
    labels = np.repeat(np.arange(celebrities), counts)
    centres = rng.standard_normal((celebrities, 128)).astype(np.float32)
    embeddings = centres[labels] + 0.9 * rng.standard_normal((photos, 128), dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    genders = np.where(np.arange(celebrities) % 2 == 0, "female", "male")
    fixtures.write_synthetic_index(out, embeddings, counts, genders, {"name": "synthetic"})
    return embeddings


def time_queries(index: CelebrityIndex, queries: np.ndarray, top_k: int = 10):
    results, milliseconds = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(index.search(query, top_k))
        milliseconds.append((time.perf_counter() - started) * 1000)
    return results, np.array(milliseconds)


def bench_search(photos: int, celebrities: int, query_count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        embeddings = write_clustered_index(Path(folder), photos, celebrities)
        print(f"synthetic index: {photos:,} × 128 in {time.perf_counter() - started:.1f} s")
        rng = np.random.default_rng(1)
        queries = embeddings[rng.choice(photos, query_count, replace=False)]
        queries = queries + 0.6 * rng.standard_normal(queries.shape, dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)

        exact = CelebrityIndex(folder, search="exact")
        exact_results, exact_ms = time_queries(exact, queries)
        started = time.perf_counter()
        compressed = CelebrityIndex(folder, search="compressed")
        load_s = time.perf_counter() - started
        compressed_results, compressed_ms = time_queries(compressed, queries)
        recall = np.mean(
            [
                len({c.celebrity_row for c in a} & {c.celebrity_row for c in b}) / len(a)
                for a, b in zip(exact_results, compressed_results, strict=True)
            ]
        )
        print(f"{'search (top-10 celebrities)':<34}{'p50 ms':>8}{'p95 ms':>8}")
        for name, ms in (
            ("exact float32", exact_ms),
            ("compressed 8-bit + re-score", compressed_ms),
        ):
            print(f"{name:<34}{np.percentile(ms, 50):8.2f}{np.percentile(ms, 95):8.2f}")
        print(
            f"compressed recall@10 vs exact: {recall:.4f}  (its load incl. encoding {load_s:.1f} s)"
        )


def bench_build() -> None:
    from lookalike import gallery
    from lookalike.index_build import build_index

    photos = gallery.from_imdb(config.sample_dir(), progress=False)
    for run in ("first (loads the models)", "second (models loaded)"):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            build_index(photos, Path(folder) / "index", progress=False)
            seconds = time.perf_counter() - started
        print(
            f"index build on data/sample, {run}: {len(photos)} photos in {seconds:.1f} s "
            f"= {len(photos) / seconds:.1f} photos/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=460_723)
    parser.add_argument("--celebrities", type=int, default=20_284)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    bench_search(args.photos, args.celebrities, args.queries)
    if not args.skip_build:
        bench_build()


if __name__ == "__main__":
    main()
