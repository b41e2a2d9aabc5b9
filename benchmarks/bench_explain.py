"""Latency of "why this match" (``POST /api/explain``), beside ``POST /api/match`` (same photo).

A ~1-megapixel selfie (``tests/assets/face.jpg`` upscaled to 1152×864, JPEG in memory) is matched
once; then each of its top matches is explained ``--repeats`` times through the real Flask app
(test client: no network, the whole request handler is timed). Printed: p50 / p95 of the request
and of the explanation's stages (detect + align both faces, the one embedding batch of
2 + 2×5 occluded chips), the model's chip size, and the match request for scale.

    python benchmarks/bench_explain.py [--index DIR] [--model NAME_OR_PATH] [--repeats 20]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import explain, fixtures


def post(client, path: str, data: bytes, **fields: str):
    form = {"image": (io.BytesIO(data), "selfie.jpg"), **fields}
    started = time.perf_counter()
    response = client.post(path, data=form, content_type="multipart/form-data")
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(
            f"{path} answered {response.status_code}: {response.get_data(as_text=True)}"
        )
    return response.get_json(), elapsed


def percentiles(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50):7.1f}   p95 {np.percentile(values, 95):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=None, help="default: the demo index")
    parser.add_argument("--model", default=None, help="a registered model name or .keras path")
    parser.add_argument("--repeats", type=int, default=20, help="explanations per match")
    parser.add_argument("--matches", type=int, default=3, help="how many top matches to explain")
    args = parser.parse_args()

    from lookalike_web import create_app

    with tempfile.TemporaryDirectory() as no_frontend:
        app = create_app(
            {
                "TESTING": True,
                "INDEX_DIR": args.index,
                "MODEL_PATH": args.model,
                "FRONTEND_DIST": Path(no_frontend),
            }
        )
    client = app.test_client()
    pipeline = app.extensions["lookalike.matcher"].pipeline
    data = fixtures.selfie_jpeg()

    match_times = []
    for _ in range(max(5, args.repeats // 2)):
        matched, elapsed = post(client, "/api/match", data, top_k=str(args.matches))
        match_times.append(elapsed)
    face = matched["faces"][0]
    box = ",".join(str(value) for value in face["box"])

    # The first explanation builds the model's graph for the batch's shape: not timed.
    post(client, "/api/explain", data, photo_id=str(face["matches"][0]["photo_id"]), box=box)
    requests: list[float] = []
    stages: dict[str, list[float]] = {}
    for match in face["matches"]:
        for _ in range(args.repeats):
            body, elapsed = post(
                client, "/api/explain", data, photo_id=str(match["photo_id"]), box=box
            )
            requests.append(elapsed)
            for stage, ms in body["timings_ms"].items():
                stages.setdefault(stage, []).append(ms)
        top = body["regions"][0]
        print(
            f"  {match['name']:<24} similarity {body['similarity']:.3f} "
            f"(match {match['similarity']:.3f}); most alike: {top['label']} "
            f"({top['contribution']:+.4f}); {body['summary']}"
        )

    chips = 2 + 2 * len(explain.REGIONS)
    print(
        f"\nmodel chips {pipeline.chip_size}×{pipeline.chip_size}, {chips} chips per explanation "
        f"(flip-averaged: {pipeline.flip_average}), {len(requests)} explanations "
        f"of {len(face['matches'])} matches, 1152×864 JPEG selfie"
    )
    print(f"POST /api/explain, whole request  ms: {percentiles(requests)}")
    for stage in ("detect_align", "embed", "total"):
        print(f"  explanation {stage:<13}     ms: {percentiles(stages[stage])}")
    print(f"POST /api/match (same photo)      ms: {percentiles(match_times)}")


if __name__ == "__main__":
    main()
