"""Speed of the Keras face embedder vs dlib's own ``compute_face_descriptor``, same chips, same run.

Chips are dlib's aligned 150x150 chips of lfw-dev photos (random pixels when ../shared/data is
absent; the network's cost does not depend on the content). For each batch size: median ms per
call, ms per face and faces/s over several repeats, for

* ``embed_chips`` (the project's path: one traced ``tf.function`` per model, any batch size),
* the alternatives it was chosen over: eager ``model(x, training=False)`` and
  ``model.predict_on_batch``,
* dlib (single chips, and dlib's own batch call on a list of chips).

Also prints the load time of the ``.keras`` file and the first (tracing) call. dlib is a
bench-only reference.

    .venv/bin/python benchmarks/bench_embedder.py [--model PATH] [--repeats 5] [--batches 1,8,64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np

from lookalike import config, embedder


def dlib_chips(count: int) -> np.ndarray:
    """dlib-aligned chips of the first photo of lfw-dev people, or random ones without data."""
    lfw = config.shared_data_dir() / "lfw-dev"
    if not lfw.is_dir():
        print(f"({lfw} absent: timing random chips)")
        return np.random.default_rng(0).integers(0, 256, (count, 150, 150, 3), dtype=np.uint8)
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    chips = []
    for person in sorted(lfw.iterdir()):
        image = dlib.load_rgb_image(str(sorted(person.glob("*.jpg"))[0]))
        detections = detector(image, 1)
        if detections:
            shape = predictor(image, max(detections, key=lambda rect: rect.area()))
            chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        if len(chips) == count:
            break
    return np.stack(chips)


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``function()`` after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a .keras embedding model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8,64", help="comma-separated batch sizes")
    parser.add_argument("--dlib-faces", type=int, default=16, help="chips timed through dlib")
    args = parser.parse_args()
    batches = [int(value) for value in args.batches.split(",")]

    model_path = args.model or config.default_model_path()
    if not model_path.is_file():
        model_path = Path(tempfile.mkdtemp()) / "embedding.keras"
        started = time.perf_counter()
        embedder.convert_pretrained(out_path=model_path)
        print(f"converted the pretrained weights in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    model = embedder.load_embedding_model(model_path)
    print(f"loaded {model_path} in {time.perf_counter() - started:.2f} s")

    chips = dlib_chips(max(batches))
    # Repeat the chips when fewer faces were found than the largest batch.
    chips = np.resize(chips, (max(batches), *chips.shape[1:]))
    started = time.perf_counter()
    embedder.embed_chips(model, chips[:1])
    print(f"first embed_chips call (traces the graph): {time.perf_counter() - started:.2f} s")

    rows = []  # (method, batch, seconds per call)
    for batch in batches:
        data = chips[:batch]
        floats = data.astype(np.float32)
        rows.append(
            (
                "embed_chips",
                batch,
                median_seconds(lambda d=data: embedder.embed_chips(model, d), args.repeats),
            )
        )
        rows.append(
            (
                "embed_chips flip_average",
                batch,
                median_seconds(
                    lambda d=data: embedder.embed_chips(model, d, flip_average=True), args.repeats
                ),
            )
        )
        # Fewer repeats for the slow eager path keep the run short.
        rows.append(
            (
                "eager model(x)",
                batch,
                median_seconds(
                    lambda f=floats: np.asarray(model(f, training=False)), max(2, args.repeats // 2)
                ),
            )
        )
        rows.append(
            (
                "model.predict_on_batch",
                batch,
                median_seconds(lambda f=floats: model.predict_on_batch(f), args.repeats),
            )
        )

    recogniser = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location()
    )
    dlib_set = [np.ascontiguousarray(chip) for chip in chips[: args.dlib_faces]]
    single = median_seconds(
        lambda: [recogniser.compute_face_descriptor(chip) for chip in dlib_set], 1
    ) / len(dlib_set)
    rows.append(("dlib compute_face_descriptor", 1, single))
    batched = median_seconds(lambda: recogniser.compute_face_descriptor(dlib_set), 1)
    rows.append(("dlib compute_face_descriptor (list)", len(dlib_set), batched))

    print()
    print(f"{'method':<38}{'batch':>6}{'ms/call':>10}{'ms/face':>10}{'faces/s':>10}")
    for method, batch, seconds in rows:
        per_face = seconds / batch
        print(
            f"{method:<38}{batch:>6}{seconds * 1e3:>10.1f}{per_face * 1e3:>10.2f}"
            f"{1 / per_face:>10.0f}"
        )
    keras_64 = min(seconds / batch for method, batch, seconds in rows if method == "embed_chips")
    print(f"\nembed_chips best {keras_64 * 1e3:.2f} ms/face vs dlib {single * 1e3:.1f} ms/face")


if __name__ == "__main__":
    main()
