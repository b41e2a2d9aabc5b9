"""Speed of every installed embedding model, and of dlib's own ``compute_face_descriptor``, on
real aligned chips in the same run.

Chips: the first photo of lfw-dev people, detected by the product's detector and aligned to each
model's own template (random pixels when ../shared/data is absent; a network's cost does not
depend on the content). For each model and batch size: median ms per ``embed_chips`` call, ms
per face and faces/s (plain and flip-averaged), plus the ``.keras`` load time and the first
(tracing) call, and each model's multiply-adds per face (what bounds its speed on a CPU). dlib
is a bench-only reference. ``--dtype-policy mixed_bfloat16`` also times a copy of each model
under that Keras dtype policy, with the cosine of its embeddings to the float32 ones.

    .venv/bin/python benchmarks/bench_embedder.py [--models sface,arcface-mbf] [--batches 1,8,16,64]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import dlib
import face_recognition_models
import keras
import numpy as np

from lookalike import config, embedder, images, model_files, model_registry
from lookalike.pipeline import FacePipeline


def model_chips(pipeline: FacePipeline, count: int) -> np.ndarray:
    """The model's chips of the first photo of lfw-dev people (random without the data)."""
    lfw = config.shared_data_dir() / "lfw-dev"
    size = pipeline.chip_size
    if not lfw.is_dir():
        return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    chips = []
    for person in sorted(lfw.iterdir()):
        photo = pipeline.faces_in_file(sorted(person.glob("*.jpg"))[0], max_faces=1)
        if photo.faces:
            image = images.load_image(sorted(person.glob("*.jpg"))[0])
            chips.append(pipeline.align(image, [photo.faces[0].face])[0])
        if len(chips) == count:
            break
    return np.resize(np.stack(chips), (count, size, size, 3))


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


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one face through the model's convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        outputs = int(np.prod(layer.output.shape[1:]))
        kernel = layer.kernel.shape
        if kind == "Conv2D":
            total += outputs * kernel[0] * kernel[1] * kernel[2]
        elif kind == "DepthwiseConv2D":
            total += outputs * kernel[0] * kernel[1]
        else:  # a Dense layer costs its input size per output value, at every position
            total += outputs * kernel[0]
    return total


def with_dtype_policy(model: keras.Model, policy: str) -> keras.Model:
    """A copy of a functional model whose layers compute under ``policy``, same weights."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


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
    parser.add_argument("--models", default=",".join(model_registry.REGISTRY))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8,16,64", help="comma-separated batch sizes")
    parser.add_argument("--dlib-faces", type=int, default=16, help="chips timed through dlib")
    parser.add_argument(
        "--dtype-policy", default=None, help="also time each model under this Keras dtype policy"
    )
    args = parser.parse_args()
    batches = [int(value) for value in args.batches.split(",")]

    rows = []  # (model, method, batch, seconds per call)
    for name in args.models.split(","):
        if not config.model_path(name).is_file():
            print(f"{name}: not installed (`lookalike model install {name}`), skipped")
            continue
        started = time.perf_counter()
        model = model_files.load_embedding_model(name)
        loaded = time.perf_counter() - started
        chips = model_chips(FacePipeline(name), max(batches))
        started = time.perf_counter()
        embedder.embed_chips(model, chips[:1])
        traced = time.perf_counter() - started
        macs = multiply_adds(model)
        print(
            f"{name}: loaded in {loaded:.2f} s, first call (tracing) {traced:.2f} s; "
            f"{macs / 1e6:.0f} M multiply-adds ({2 * macs / 1e9:.2f} GFLOP) a face"
        )
        variants = {"embed_chips": model}
        if args.dtype_policy:
            variants[f"embed_chips {args.dtype_policy}"] = with_dtype_policy(
                model, args.dtype_policy
            )
            plain = embedder.embed_chips(model, chips)
            other = embedder.embed_chips(variants[f"embed_chips {args.dtype_policy}"], chips)
            print(
                f"  {args.dtype_policy}: cosine to float32 ≥ {np.min(np.sum(plain * other, 1)):.5f}"
            )
        for batch in batches:
            data = chips[:batch]
            for method, variant in variants.items():
                for flip in (False, True):
                    seconds = median_seconds(
                        lambda m=variant, d=data, f=flip: embedder.embed_chips(
                            m, d, batch_size=len(d), flip_average=f
                        ),
                        args.repeats,
                    )
                    rows.append((name, method + (" +flip" if flip else ""), batch, seconds))
        if name == "dlib-resnet":
            dlib_model = face_recognition_models.face_recognition_model_location()
            recogniser = dlib.face_recognition_model_v1(dlib_model)
            dlib_set = [np.ascontiguousarray(chip) for chip in chips[: args.dlib_faces]]
            single = median_seconds(
                lambda r=recogniser, s=dlib_set: [r.compute_face_descriptor(c) for c in s], 1
            ) / len(dlib_set)
            rows.append(("dlib (reference)", "compute_face_descriptor", 1, single))

    print()
    print(f"{'model':<18}{'method':<36}{'batch':>6}{'ms/call':>10}{'ms/face':>10}{'faces/s':>10}")
    for model_name, method, batch, seconds in rows:
        per_face = seconds / batch
        print(
            f"{model_name:<18}{method:<36}{batch:>6}{seconds * 1e3:>10.1f}"
            f"{per_face * 1e3:>10.2f}{1 / per_face:>10.0f}"
        )


if __name__ == "__main__":
    main()
