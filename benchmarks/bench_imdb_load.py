"""Time ``load_metadata`` on a synthetic full-size ``imdb.mat`` (460,723 rows, 20,284 names).

The file is written with ``write_imdb_mat``, so its cells look like the real file's: face boxes
as float64, uint8 or uint16 cells, about 1% empty names, ``-inf`` scores with whole-photo boxes
for ~30% of rows, NaN second-face scores and genders. The write is timed separately; each read
is repeated ``--repeat`` times and the median is the figure (the spread is printed beside it).

    .venv/bin/python benchmarks/bench_imdb_load.py [--rows 460723] [--celebs 20284] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from lookalike.fixtures import write_imdb_mat
from lookalike.imdb import load_metadata


def synthetic_rows(rows: int, celebs: int, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like ``load_metadata``'s output, with the real file's mix of oddities."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = sorted({"".join(rng.choice(letters, 12)).title() for _ in range(celebs * 2)})[:celebs]
    celeb = np.asarray(names, dtype=object)[rng.integers(0, celebs, rows)]
    name = np.where(rng.random(rows) < 0.01, "", celeb)
    dob = rng.integers(693962, 730486, rows)  # serial days of 1900..2000
    photo_taken = rng.integers(1960, 2016, rows)
    no_face = rng.random(rows) < 0.3
    width, height = rng.integers(100, 1200, rows), rng.integers(100, 1200, rows)
    x1 = rng.uniform(1, 80, rows)
    side = rng.uniform(40, 90, rows)
    boxes = np.stack([x1, x1, x1 + side, x1 + side], axis=1)
    boxes[no_face] = np.stack([np.ones(rows), np.ones(rows), width, height], axis=1)[no_face]
    score = np.where(no_face, -np.inf, rng.uniform(0.7, 7.0, rows))
    second = np.where(~no_face & (rng.random(rows) < 0.1), rng.uniform(0.5, 4.0, rows), np.nan)
    gender = rng.choice([0.0, 1.0, np.nan], size=rows, p=[0.45, 0.5, 0.05])
    return pd.DataFrame(
        {
            "full_path": [f"{i % 100:02d}/nm{i:07d}_rm{i}_1970-1-1_2000.jpg" for i in range(rows)],
            "name": name,
            "celeb_name": celeb,
            "dob": dob,
            "photo_taken": photo_taken,
            "gender": gender,
            "face_x1": boxes[:, 0],
            "face_y1": boxes[:, 1],
            "face_x2": boxes[:, 2],
            "face_y2": boxes[:, 3],
            "face_score": score,
            "second_face_score": second,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=460_723)
    parser.add_argument("--celebs", type=int, default=20_284)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    rows = synthetic_rows(args.rows, args.celebs)
    print(f"generate {len(rows):,} rows in memory: {time.perf_counter() - start:6.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "imdb.mat"
        start = time.perf_counter()
        write_imdb_mat(rows, path)
        print(f"write_imdb_mat:                 {time.perf_counter() - start:6.2f} s")
        print(f"file size:                      {path.stat().st_size / 1e6:6.1f} MB")
        kinds = {
            cell.dtype.str for cell in scipy.io.loadmat(path)["imdb"][0, 0]["face_location"][0]
        }
        print(f"face_location cell dtypes:      {sorted(kinds)}")

        raw, full = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            scipy.io.loadmat(path)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            df = load_metadata(path)
            full.append(time.perf_counter() - start)
    print(f"median of {args.repeat} runs (fastest – slowest):")
    for label, times in (("scipy.io.loadmat alone:", raw), ("load_metadata (to DataFrame):", full)):
        spread = f"{min(times):.2f} – {max(times):.2f}"
        print(f"{label:<32}{statistics.median(times):6.2f} s ({spread})")
    memory = df.memory_usage(deep=True).sum() / 1e6
    print(f"rows {len(df):,}, celebrities {df.attrs['n_celebrities']:,}, ", end="")
    print(f"celeb_id base {df.attrs['celeb_id_base']}, DataFrame {memory:.0f} MB")


if __name__ == "__main__":
    main()
