"""Look-alike quality on a folder-per-person set (default: ../shared/data/lfw-dev), side by side
with dlib's own pipeline, in one run over the same photos.

Variants (each an embedding per photo, zero + "missed" when no face was found):
  dlib            dlib's HOG detector (upsample 1) + 5-point chip + dlib's ResNet (the reference)
  keras-dlibchip  our Keras port on dlib's own chips (shows the port alone)
  ours            MTCNN + our landmark template + the Keras port (the product's pipeline, no flip)
  ours+flip       the same, averaged with the mirrored chip (the product's default)

Identification: for each person with ≥ 2 photos the first file is the query, the gallery is every
other photo (singletons included). Pairs: every same-person pair (sampled to 6,000) and as many
stranger pairs, 10-fold threshold. Prints one table; ``--out`` also writes JSON and plots.

    python benchmarks/bench_quality.py [--images-dir DIR] [--max-people N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lookalike import alignment, config, detection, evaluation, gallery, images
from lookalike.pipeline import FacePipeline


def dlib_models():
    import dlib
    import face_recognition_models as models

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(models.face_recognition_model_location()),
    )


def largest(rectangles):
    return max(rectangles, key=lambda r: r.width() * r.height()) if len(rectangles) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-dir", type=Path, default=config.shared_data_dir() / "lfw-dev")
    parser.add_argument("--max-people", type=int, default=None, help="first N people only")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="folder for JSON + plots")
    args = parser.parse_args()

    import dlib

    photos = gallery.from_folders(args.images_dir)
    if args.max_people:
        keep = sorted({photo.celebrity_id for photo in photos})[: args.max_people]
        photos = [photo for photo in photos if photo.celebrity_id in set(keep)]
    print(f"{len(photos)} photos of {len({p.celebrity_id for p in photos})} people")

    detector, predictor, dlib_net = dlib_models()
    pipeline = FacePipeline(flip_average=False)
    size = pipeline.embedding_size
    names = ["dlib", "keras-dlibchip", "ours", "ours+flip"]
    vectors = {name: np.zeros((len(photos), size), np.float32) for name in names}
    found = {name: np.zeros(len(photos), bool) for name in names}
    seconds = dict.fromkeys(names, 0.0)

    for start in tqdm(range(0, len(photos), args.batch_size), unit="batch"):
        batch = photos[start : start + args.batch_size]
        decoded = [images.load_image(photo.path) for photo in batch]
        rows = np.arange(start, start + len(batch))

        started = time.perf_counter()
        dlib_chips, dlib_rows = [], []
        for row, image in zip(rows, decoded, strict=True):
            face = largest(detector(image, 1))
            if face is None:
                continue
            shape = predictor(image, face)
            dlib_chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
            dlib_rows.append(row)
            vectors["dlib"][row] = np.asarray(dlib_net.compute_face_descriptor(dlib_chips[-1]))
        seconds["dlib"] += time.perf_counter() - started
        found["dlib"][dlib_rows] = True
        found["keras-dlibchip"][dlib_rows] = True
        if dlib_chips:
            vectors["keras-dlibchip"][dlib_rows] = pipeline.embed_chips(np.stack(dlib_chips))

        started = time.perf_counter()
        faces = detection.detect_faces_batch(decoded)
        our_rows = [row for row, found_faces in zip(rows, faces, strict=True) if found_faces]
        chips = [
            alignment.align_face(image, found_faces[0].landmarks)
            for image, found_faces in zip(decoded, faces, strict=True)
            if found_faces
        ]
        if chips:
            chips = np.stack(chips)
            vectors["ours"][our_rows] = pipeline.embed_chips(chips)
            seconds["ours"] += time.perf_counter() - started
            pipeline.flip_average = True
            vectors["ours+flip"][our_rows] = pipeline.embed_chips(chips)
            pipeline.flip_average = False
        found["ours"][our_rows] = found["ours+flip"][our_rows] = True

    labels = np.array([photo.celebrity_id for photo in photos])
    paths = [str(photo.path) for photo in photos]
    vectors["dlib"] /= np.maximum(np.linalg.norm(vectors["dlib"], axis=1, keepdims=True), 1e-12)
    header = (
        f"{'variant':<16}{'missed':>7}{'top-1':>8}{'top-5':>8}{'cent.1':>8}{'pairs':>8}{'AUC':>8}"
    )
    print(header)
    reports = {}
    for name in names:
        data = evaluation.LabelledEmbeddings(paths, labels, vectors[name], found[name])
        report = evaluation.evaluate(data)
        reports[name] = report
        ident = report["identification"]
        print(
            f"{name:<16}{report['missed_faces']:>7}{ident['per_photo']['top1']:>8.2%}"
            f"{ident['per_photo']['top5']:>8.2%}{ident['per_person']['top1']:>8.2%}"
            f"{report['pairs']['accuracy']:>8.2%}{report['pairs']['roc_auc']:>8.4f}"
        )
        if args.out:
            evaluation.save_report(report, args.out / name, title=name)
    per_photo_ms = {name: 1000 * seconds[name] / len(photos) for name in ("dlib", "ours")}
    print(
        f"ms per photo (detect+align+embed): dlib {per_photo_ms['dlib']:.1f}, "
        f"ours {per_photo_ms['ours']:.1f} (batched)"
    )
    if args.out:
        summary = {
            name: {k: v for k, v in r.items() if k != "pairs"} for name, r in reports.items()
        }
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
