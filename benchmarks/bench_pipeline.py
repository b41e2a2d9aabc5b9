"""Per-stage speed of the face pipeline, side by side with dlib's reference pipeline.

Single photo: a ~1-megapixel selfie (``tests/assets/face.jpg`` upscaled to 1152×864 and
re-encoded as JPEG, in memory), decoded → detected → aligned → embedded, p50 over repeats, for
the product's pipeline with each detector (``FacePipeline``: YuNet or MTCNN at 640 px, the
default model's template chip and network, flip-averaged; runs interleaved so that load on the
machine hits both alike) and for dlib's (HOG detector, 5-point chip, dlib ResNet), same run.

Batched: photos/s and faces/s of ``FacePipeline.align_subjects`` + ``embed_subjects`` over a
folder of 250×250 photos (default: the first 256 photos of ../shared/data/lfw-dev, else the
sample's crops).

    python benchmarks/bench_pipeline.py [--repeats 30] [--batch 32] [--model NAME]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lookalike import config, fixtures, gallery, images
from lookalike.pipeline import FacePipeline


def ours_single(
    pipelines: dict[str, FacePipeline], data: bytes, repeats: int
) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, pipeline in pipelines.items():  # interleaved
            started = time.perf_counter()
            photo = pipeline.faces_in_file(data)
            total = (time.perf_counter() - started) * 1000
            if not photo.faces:
                raise SystemExit(f"the {name} pipeline found no face in the selfie")
            runs[name].append({**photo.timer.milliseconds, "total": total})
    return {
        name: {stage: float(np.median([run[stage] for run in done])) for stage in done[0]}
        for name, done in runs.items()
    }


def dlib_single(data: bytes, repeats: int) -> dict[str, float]:
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    runs = []
    for _ in range(repeats):
        times = {}
        started = time.perf_counter()
        image = images.load_image(data)
        times["decode"] = time.perf_counter()
        faces = detector(image, 1)  # face_recognition's default: upsample once
        times["detect"] = time.perf_counter()
        if not faces:
            raise SystemExit("dlib found no face in the selfie")
        chip = dlib.get_face_chip(image, predictor(image, faces[0]), size=150, padding=0.25)
        times["align"] = time.perf_counter()
        network.compute_face_descriptor(chip)
        times["embed"] = time.perf_counter()
        previous, stages = started, {}
        for stage, moment in times.items():
            stages[stage] = (moment - previous) * 1000
            previous = moment
        stages["total"] = (previous - started) * 1000
        runs.append(stages)
    return {stage: float(np.median([run[stage] for run in runs])) for stage in runs[0]}


def batched(pipeline: FacePipeline, batch_size: int, limit: int) -> None:
    lfw = config.shared_data_dir() / "lfw-dev"
    if lfw.is_dir():
        paths = [photo.path for photo in gallery.from_folders(lfw)][:limit]
    else:
        paths = sorted((config.sample_dir() / "imdb_crop").glob("*/*.jpg"))[:limit]
    decoded = [images.load_image(path) for path in paths]
    pipeline.embed_subjects(pipeline.align_subjects(decoded[:batch_size]))  # warm-up
    started = time.perf_counter()
    found = 0
    for start in range(0, len(decoded), batch_size):
        subjects = pipeline.align_subjects(decoded[start : start + batch_size])
        pipeline.embed_subjects(subjects)
        found += int(subjects.found.sum())
    seconds = time.perf_counter() - started
    print(
        f"batched (batch {batch_size}, {len(decoded)} photos of ~250×250, decode excluded): "
        f"{len(decoded) / seconds:.0f} photos/s, {found / seconds:.0f} faces/s, "
        f"{1000 * seconds / len(decoded):.1f} ms per photo"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--model", default=None, help="registered name or .keras path")
    args = parser.parse_args()

    data = fixtures.selfie_jpeg()
    pipelines = {
        detector: FacePipeline(args.model, detector=detector) for detector in ("yunet", "mtcnn")
    }
    for pipeline in pipelines.values():
        pipeline.faces_in_file(data)  # builds and warms every model
    ours = ours_single(pipelines, data, args.repeats)
    try:
        reference = dlib_single(data, max(3, args.repeats // 5))
    except ImportError:
        reference = None
        print("dlib is not installed (requirements-reference.txt): reference column left out")

    model = pipelines["yunet"].model_path.parent.name
    stages = ["decode", "detect", "align", "embed", "total"]
    print(f"1-megapixel selfie ({len(data) // 1000} kB JPEG), {model}, p50 ms per stage:")
    print(f"{'stage':<10}{'yunet':>10}{'mtcnn':>10}{'dlib':>10}")
    for stage in stages:
        dlib_ms = f"{reference[stage]:10.1f}" if reference else f"{'-':>10}"
        print(f"{stage:<10}{ours['yunet'][stage]:10.1f}{ours['mtcnn'][stage]:10.1f}{dlib_ms}")
    ratio = ours["mtcnn"]["total"] / ours["yunet"]["total"]
    print(f"end to end, mtcnn ÷ yunet: {ratio:.1f}×")
    for detector, pipeline in pipelines.items():
        print(f"[{detector}]", end=" ")
        batched(pipeline, args.batch, args.photos)


if __name__ == "__main__":
    main()
