"""Search at real scale with real-looking embeddings: exact, 8-bit and Milvus (milvus-lite).

How the embeddings are made (isotropic Gaussian vectors flatter 8-bit and ANN recall; real face
embeddings sit in a narrow cone):

1. Real faces: up to ``--photos`` lfw-dev photos (``../shared/data/lfw-dev``, seeded choice),
   each photo's largest face detected and aligned by the default ``FacePipeline``; every chip
   embedded by the default model as itself and with ``--augmentations`` random augmentations
   (a crop of 80-100% of the side resized back, a horizontal flip half the time, brightness
   ±25%, contrast ±25%, saturation ±30%, a Gaussian blur of sigma 0-1.5 px half the time).
2. From those real embeddings, the between-person spread (covariance of the per-person means
   around their mean direction) and the within-person spread (covariance of each embedding
   around its person's mean: augmentations AND different photos of one person) are measured.
3. A gallery of N photos of N / 22.7 celebrities (IMDB's 460,723 / 20,284) is drawn from them:
   celebrity centres ~ N(mean of the real person means, between-person covariance), photos
   = centre + N(0, within-person covariance), normalised; every celebrity has one photo, the
   rest are spread by gamma(2) weights (mean 22.7). It is written as a real index folder.
4. Queries: half are new photos of indexed celebrities (same generator), half are REAL embeddings
   of lfw-dev people (not in the gallery), as a stranger's selfie would be.

Per N and searcher: build/push seconds, p50/p95 ms of a top-10 query with and without the
gender filter, celebrity-level recall@10 against exact search, and resident memory (RSS
growth of a fresh process that opens the index and builds the searcher; for milvus-lite this
includes its in-process server). Each measurement runs in its own process.

    python benchmarks/bench_scale.py [--sizes 10000,100000,460723,2000000] [--queries 200]
        [--searchers exact,compressed,milvus] [--milvus-max 2000000] [--milvus-timeout 1800]
        [--fresh] [--out bench-results/scale]

Rows measured by an earlier run (same real embeddings) stay in ``scale.json`` unless measured
again or ``--fresh``, so sizes can be run one at a time. Milvus steps run under
``--milvus-timeout`` seconds each: Milvus Lite builds its HNSW index in a background thread
after the push, and its process only exits once that is done; the row says what happened.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lookalike import config, fixtures

PHOTOS_PER_CELEBRITY = 460_723 / 20_284


def augment(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random augmentation of an aligned RGB chip (uint8), the same size back."""
    import cv2

    size = chip.shape[0]
    side = int(round(size * rng.uniform(0.8, 1.0)))
    x, y = rng.integers(0, size - side + 1, 2)
    out = cv2.resize(chip[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    image = out.astype(np.float32)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.7, 1.3)  # saturation
    image = (image - image.mean()) * rng.uniform(0.75, 1.25) + image.mean()  # contrast
    image = image * rng.uniform(0.75, 1.25)  # brightness
    out = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.1, 1.5))
    return np.ascontiguousarray(out)


def real_embeddings(photos: int, augmentations: int, cache: Path, seed: int = 0) -> dict:
    """Embeddings of real lfw-dev faces and their augmentations (cached)."""
    if cache.is_file():
        with np.load(cache) as saved:
            return {key: saved[key] for key in saved.files}
    from lookalike import images
    from lookalike.pipeline import FacePipeline

    lfw = config.shared_data_dir() / "lfw-dev"
    if not lfw.is_dir():
        raise SystemExit(f"needs {lfw} (the developer data set) for real face embeddings")
    rng = np.random.default_rng(seed)
    files = sorted(lfw.glob("*/*.jpg"))
    files = [files[i] for i in sorted(rng.choice(len(files), min(photos, len(files)), False))]
    pipeline = FacePipeline()
    vectors, people, is_original = [], [], []
    started = time.perf_counter()
    for number, path in enumerate(files):
        image = images.load_image(path)
        found = pipeline.faces_in_image(image, max_faces=1).faces
        if not found:
            continue
        chip = pipeline.align(image, [found[0].face])[0]
        chips = np.stack([chip] + [augment(chip, rng) for _ in range(augmentations)])
        vectors.append(pipeline.embed_chips(chips))
        people += [path.parent.name] * len(chips)
        is_original += [True] + [False] * augmentations
        if number % 200 == 0:
            seconds = time.perf_counter() - started
            print(f"  embedded {number}/{len(files)} photos ({seconds:.0f} s)")
    result = {
        "embeddings": np.concatenate(vectors).astype(np.float32),
        "people": np.array(people),
        "original": np.array(is_original),
        "chip_size": np.array(pipeline.chip_size),
        "model": np.array(pipeline.model_info.get("name", "?")),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


class Generator:
    """Celebrities and photos drawn with the spreads measured on the real embeddings."""

    def __init__(self, real: dict, seed: int = 0) -> None:
        embeddings, people = real["embeddings"], real["people"]
        names, inverse = np.unique(people, return_inverse=True)
        means = np.zeros((len(names), embeddings.shape[1]))
        np.add.at(means, inverse, embeddings)
        means /= np.bincount(inverse)[:, None]
        self.centre_mean = means.mean(axis=0)
        self.between = np.linalg.cholesky(np.cov(means.T) + 1e-6 * np.eye(means.shape[1]))
        within = embeddings - means[inverse]
        self.within = np.linalg.cholesky(np.cov(within.T) + 1e-6 * np.eye(means.shape[1]))
        self.rng = np.random.default_rng(seed)
        self.dimension = embeddings.shape[1]
        self.facts = {
            "real_people": len(names),
            "real_embeddings": len(embeddings),
            "mean_cosine_to_mean_direction": float(
                np.mean(embeddings @ (self.centre_mean / np.linalg.norm(self.centre_mean)))
            ),
        }

    def centres(self, count: int) -> np.ndarray:
        noise = self.rng.standard_normal((count, self.dimension))
        return self.centre_mean + noise @ self.between.T

    def photos(self, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = np.empty((len(labels), self.dimension), np.float32)
        for start in range(0, len(labels), 200_000):
            part = labels[start : start + 200_000]
            noise = self.rng.standard_normal((len(part), self.dimension))
            vectors = centres[part] + noise @ self.within.T
            out[start : start + len(part)] = vectors / np.linalg.norm(vectors, axis=1)[:, None]
        return out


def write_index(out: Path, generator: Generator, photos: int, seed: int = 0):
    """A real index folder of ``photos`` generated embeddings; returns (centres, counts)."""
    rng = np.random.default_rng(seed)
    celebrities = max(2, int(round(photos / PHOTOS_PER_CELEBRITY)))
    # At least one photo each, the rest spread unevenly (gamma weights) to an exact total.
    weights = rng.gamma(2.0, size=celebrities)
    counts = 1 + rng.multinomial(photos - celebrities, weights / weights.sum())
    labels = np.repeat(np.arange(celebrities), counts)
    centres = generator.centres(celebrities)
    embeddings = generator.photos(centres, labels)
    genders = np.where(rng.random(celebrities) < 0.4, "female", "male")
    model_info = {"name": "bench-scale", "sha256": "b" * 64}
    fixtures.write_synthetic_index(out, embeddings, counts, genders, model_info)
    return centres, counts


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _measure(kind: str, folder: str, store: str | None, queries_path: str, out_path: str) -> None:
    """In a fresh process: open, build the searcher, time queries; results to a JSON file."""
    from lookalike.index import CelebrityIndex

    queries = np.load(queries_path)
    before = _rss_mb()
    started = time.perf_counter()
    if kind == "milvus":
        index = CelebrityIndex(folder, store=store)
    else:
        index = CelebrityIndex(folder, search=kind)
    open_s = time.perf_counter() - started
    for query in queries[:5]:  # warm-up
        index.search(query, 10)
    results, timings = {}, {}
    for gender in (None, "female"):
        found, milliseconds = [], []
        for query in queries:
            started = time.perf_counter()
            candidates = index.search(query, 10, gender=gender)
            milliseconds.append((time.perf_counter() - started) * 1000)
            found.append([c.celebrity_row for c in candidates])
        results[str(gender)] = found
        timings[str(gender)] = milliseconds
    memory = _rss_mb() - before
    index.close()
    Path(out_path).write_text(
        json.dumps({"open_s": open_s, "rss_mb": memory, "results": results, "ms": timings})
    )


def _push(folder: str, store: str, out_path: str) -> None:
    from lookalike.index import CelebrityIndex
    from lookalike.milvus_store import push_index

    index = CelebrityIndex(folder, search="exact")
    started = time.perf_counter()
    push_index(index, store, progress=False)
    # When the push returned: the process may still have background work before it can exit.
    Path(out_path).write_text(
        json.dumps({"push_s": time.perf_counter() - started, "returned_at": time.time()})
    )


WORKERS = {"measure": _measure, "push": _push}


def _in_process(target, *args, timeout: float | None = None) -> bool:
    """Run a worker function in a fresh Python process (clean memory figures).

    False when it ran past ``timeout`` seconds (it is killed).
    """
    name = next(key for key, function in WORKERS.items() if function is target)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(args)]
    try:
        finished = subprocess.run(command, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: killed after {timeout:.0f} s", flush=True)
        return False
    if finished.returncode != 0:
        raise RuntimeError(f"{name}{args[:1]} failed (exit {finished.returncode})")
    return True


def _read_saved(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _failed(size: int, kind: str, note: str) -> dict:
    return {"N": size, "searcher": kind, "build_s": None, "p50_ms": None, "note": note}


def recall_at_10(found: list[list[int]], exact: list[list[int]]) -> float:
    overlaps = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(found, exact, strict=True)]
    return float(np.mean(overlaps))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,460723,2000000")
    parser.add_argument("--searchers", default="exact,compressed,milvus")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--photos", type=int, default=1200, help="real lfw-dev photos embedded")
    parser.add_argument("--augmentations", type=int, default=7, help="per real photo")
    parser.add_argument("--milvus-max", type=int, default=2_000_000, help="largest N for milvus")
    parser.add_argument(
        "--milvus-timeout", type=float, default=1800, help="seconds per Milvus push / measure"
    )
    parser.add_argument("--fresh", action="store_true", help="drop the rows of earlier runs")
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "bench-scale")
    parser.add_argument("--out", type=Path, default=config.REPO_ROOT / "bench-results" / "scale")
    return parser.parse_args()


def _real_generator(args: argparse.Namespace) -> tuple[dict, Generator]:
    """The real lfw-dev embeddings (cached per model) and the generator fitted to them."""
    from lookalike import model_files

    model = model_files.model_info(None)  # the default model: the cache is per model
    name = f"real-{args.photos}x{args.augmentations}-{model['name']}-{model['sha256'][:12]}.npz"
    real = real_embeddings(args.photos, args.augmentations, args.work / name)
    generator = Generator(real)
    facts = generator.facts
    facts["model"] = str(real["model"])
    print(
        f"real embeddings: {facts['real_embeddings']:,} of {facts['real_people']:,} lfw-dev "
        f"people by {facts['model']} (chip {int(real['chip_size'])} px); mean cosine to "
        f"their mean direction {facts['mean_cosine_to_mean_direction']:.3f}"
    )
    return real, generator


class Rows:
    """The measured rows, merged with an earlier run's (same generator) into scale.json."""

    def __init__(self, out: Path, facts: dict, fresh: bool) -> None:
        self.path, self.facts, self.rows = out / "scale.json", facts, []
        saved = {} if fresh else _read_saved(self.path)
        self.earlier = saved.get("rows", []) if saved.get("facts") == facts else []

    def add(self, row: dict) -> pd.DataFrame:
        self.rows.append(row)
        return self.save()

    def save(self) -> pd.DataFrame:
        again = {(row["N"], row["searcher"]) for row in self.rows}
        kept = [row for row in self.earlier if (row["N"], row["searcher"]) not in again]
        order = {kind: number for number, kind in enumerate(("exact", "compressed", "milvus"))}
        merged = sorted(kept + self.rows, key=lambda row: (row["N"], order.get(row["searcher"], 9)))
        self.path.write_text(json.dumps({"facts": self.facts, "rows": merged}, indent=1))
        return pd.DataFrame(merged)


def _write_queries(
    path: Path, generator: Generator, real: dict, centres: np.ndarray, count: int, seed: int
) -> None:
    """Half new photos of indexed celebrities, half real strangers' embeddings."""
    rng = np.random.default_rng(seed)
    half = count // 2
    known = generator.photos(centres, rng.choice(len(centres), half))
    strangers = real["embeddings"][rng.choice(len(real["embeddings"]), count - half)]
    np.save(path, np.concatenate([known, strangers]).astype(np.float32))


def _push_to_milvus(work: Path, size: int, folder: Path, timeout: float) -> tuple | None:
    """Push the index into a fresh Milvus Lite file: (store URI, push seconds, note), or None
    when the push did not finish in time."""
    database = work / f"milvus-{size}" / "faces.db"
    shutil.rmtree(database.parent, ignore_errors=True)
    store = f"milvus-lite://{database}"
    push_out = work / f"push-{size}.json"
    push_out.unlink(missing_ok=True)
    exited = _in_process(_push, str(folder), store, str(push_out), timeout=timeout)
    if not push_out.is_file():
        return None
    pushed = json.loads(push_out.read_text())
    build_s = pushed["push_s"]
    after = time.time() - pushed["returned_at"]
    note = (
        f"push returned after {build_s:.0f} s; its process exited {after:.0f} s "
        "later (Milvus Lite's background compaction + index build)"
        if exited
        else f"push returned after {build_s:.0f} s; its process had still not "
        f"exited {after:.0f} s later (Milvus Lite's background compaction + index "
        "build) and was killed"
    )
    print(f"  {note}", flush=True)
    return store, build_s, note


def _row(size: int, kind: str, result: dict, exact: dict, build_s: float | None) -> dict:
    """One table row from a measurement (and the exact searcher's, for recall)."""
    row = {
        "N": size,
        "searcher": kind,
        "build_s": round(build_s if build_s is not None else result["open_s"], 2),
        "p50_ms": round(float(np.percentile(result["ms"]["None"], 50)), 2),
        "p95_ms": round(float(np.percentile(result["ms"]["None"], 95)), 2),
        "p50_ms_gender": round(float(np.percentile(result["ms"]["female"], 50)), 2),
        "p95_ms_gender": round(float(np.percentile(result["ms"]["female"], 95)), 2),
        "recall@10": round(recall_at_10(result["results"]["None"], exact["results"]["None"]), 4),
        "recall@10_gender": round(
            recall_at_10(result["results"]["female"], exact["results"]["female"]), 4
        ),
        "rss_mb": round(result["rss_mb"], 1),
    }
    if kind == "milvus":
        row["open_s"] = round(result["open_s"], 2)  # load_collection: indexes too
    return row


def _measure_size(
    args: argparse.Namespace,
    size: int,
    kinds: list[str],
    generator: Generator,
    real: dict,
    rows: Rows,
) -> None:
    """Write an index of ``size`` photos and measure every searcher on it."""
    folder = args.work / f"index-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    centres, _counts = write_index(folder, generator, size)
    write_s = time.perf_counter() - started
    queries_path = args.work / f"queries-{size}.npy"
    _write_queries(queries_path, generator, real, centres, args.queries, seed=size)
    print(f"\nN = {size:,}: {len(centres):,} celebrities, index written in {write_s:.1f} s")
    measured = {}
    for kind in ["exact", *[kind for kind in kinds if kind != "exact"]]:
        if kind == "milvus" and size > args.milvus_max:
            print(f"  milvus: skipped above --milvus-max {args.milvus_max:,}")
            continue
        store, build_s, note = None, None, ""
        timeout = args.milvus_timeout if kind == "milvus" else None
        if kind == "milvus":
            pushed = _push_to_milvus(args.work, size, folder, timeout)
            if pushed is None:
                rows.add(_failed(size, kind, f"push unfinished after {timeout:.0f} s"))
                continue
            store, build_s, note = pushed
        out_path = args.work / f"measure-{size}-{kind}.json"
        out_path.unlink(missing_ok=True)
        started = time.perf_counter()
        measure_args = (kind, str(folder), store, str(queries_path), str(out_path))
        if not _in_process(_measure, *measure_args, timeout=timeout):
            waited = time.perf_counter() - started
            note += f"; opening the store + queries unfinished after {waited:.0f} s"
            rows.add({**_failed(size, kind, note.lstrip("; ")), "build_s": build_s})
            continue
        measured[kind] = json.loads(out_path.read_text())
        row = _row(size, kind, measured[kind], measured["exact"], build_s)
        if note:
            row["note"] = note
        print("  " + "  ".join(f"{key} {value}" for key, value in row.items() if key != "N"))
        rows.add(row)
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get("BENCH_SCALE_KEEP") != "1":
        shutil.rmtree(args.work / f"milvus-{size}", ignore_errors=True)


def main() -> None:
    args = _arguments()
    real, generator = _real_generator(args)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = Rows(args.out, generator.facts, args.fresh)
    for size in [int(size) for size in args.sizes.split(",")]:
        _measure_size(args, size, args.searchers.split(","), generator, real, rows)
    table = rows.save()
    print("\n" + table.drop(columns=["note"], errors="ignore").to_string(index=False))
    plot(table.dropna(subset=["p50_ms"]), args.out / "scale.png")
    print(f"\n{args.out / 'scale.json'}, {args.out / 'scale.png'}")


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for kind, rows in table.groupby("searcher"):
        for axis, column in zip(axes, ("p50_ms", "recall@10", "rss_mb", "build_s"), strict=True):
            axis.plot(rows["N"], rows[column], marker="o", label=kind)
            axis.set_xscale("log")
            axis.set_title(column)
            axis.set_xlabel("photos (N)")
    axes[0].set_yscale("log")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        WORKERS[sys.argv[2]](*json.loads(sys.argv[3]))
    else:
        sys.exit(main())
