"""Refining a face box the dataset already gives (IMDB's ``face_location``): MTCNN's last stage
(ONet) against YuNet on the crop around the box, with the default embedder.

Sets: the committed IMDB-layout sample (``data/sample``: its boxes were written by
``lookalike data make-fixture``), and, when present, lfw-dev with each photo's box taken as a
known box from a full MTCNN detection (largest face) — the closest to IMDB's boxes, which came
from a detector too. Per refiner: faces found, ms per face (refinement alone), identification
top-1 and pairs (first photo of each person with ≥ 2 photos is the query), and how far the two
refiners' landmarks lie apart (median, in eye distances).

    python benchmarks/bench_known_boxes.py [--max-people N] [--model NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lookalike import config, detection, evaluation, gallery, images
from lookalike.pipeline import FacePipeline


def known_boxes(photos: list, decoded: list) -> list:
    """The dataset's box when it has one, else the largest MTCNN face's (lfw-dev)."""
    boxes = [photo.face_box(image.shape) for photo, image in zip(photos, decoded, strict=True)]
    missing = [i for i, box in enumerate(boxes) if box is None]
    for i in tqdm(missing, desc="boxes from MTCNN", unit="photo", disable=not missing):
        faces = detection.detect_faces(decoded[i], detector="mtcnn")
        boxes[i] = faces[0].box if faces else None
    return boxes


def refine(decoded: list, boxes: list, refiner: str) -> tuple[list, float]:
    rows = [i for i, box in enumerate(boxes) if box is not None]
    faces: list = [None] * len(decoded)
    started = time.perf_counter()
    for start in range(0, len(rows), 32):
        chunk = rows[start : start + 32]
        found = detection.landmarks_in_boxes(
            [decoded[i] for i in chunk], [boxes[i] for i in chunk], detector=refiner
        )
        for i, face in zip(chunk, found, strict=True):
            faces[i] = face
    return faces, (time.perf_counter() - started) / max(len(rows), 1)


def report(name: str, photos: list, decoded: list, model: str | None) -> None:
    boxes = known_boxes(photos, decoded)
    pipeline = FacePipeline(model)
    labels = np.array([photo.celebrity_id for photo in photos])
    paths = [str(photo.path) for photo in photos]
    refined = {}
    print(f"\n{name}: {len(photos)} photos, {sum(b is not None for b in boxes)} with a known box")
    print(f"{'refiner':<8}{'found':>7}{'ms/face':>9}{'top-1':>8}{'pairs':>8}")
    for refiner in ("mtcnn", "yunet"):
        faces, seconds = refine(decoded, boxes, refiner)
        refined[refiner] = faces
        vectors = np.zeros((len(photos), pipeline.embedding_size), np.float32)
        found = np.array([face is not None for face in faces])
        chips = [
            pipeline.align(image, [face])[0]
            for image, face in zip(decoded, faces, strict=True)
            if face
        ]
        if chips:
            vectors[found] = pipeline.embed_chips(np.stack(chips))
        result = evaluation.evaluate(evaluation.LabelledEmbeddings(paths, labels, vectors, found))
        print(
            f"{refiner:<8}{int(found.sum()):>7}{1000 * seconds:>9.2f}"
            f"{result['identification']['per_photo']['top1']:>8.2%}"
            f"{result['pairs']['accuracy']:>8.2%}"
        )
    gaps = []
    for ours, theirs in zip(refined["yunet"], refined["mtcnn"], strict=True):
        if ours is not None and theirs is not None:
            eyes = np.linalg.norm(theirs.landmarks[1] - theirs.landmarks[0])
            gaps.append(np.median(np.linalg.norm(ours.landmarks - theirs.landmarks, axis=1)) / eyes)
    print(f"landmarks yunet vs mtcnn: median {np.median(gaps):.1%} of the eye distance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-people", type=int, default=None, help="lfw-dev: first N people")
    parser.add_argument("--model", default=None, help="registered name or .keras path")
    args = parser.parse_args()

    sample = gallery.from_imdb(config.sample_dir())
    decoded = [images.load_image(photo.path) for photo in sample]
    report("data/sample (IMDB layout)", sample, decoded, args.model)
    lfw = config.shared_data_dir() / "lfw-dev"
    if lfw.is_dir():
        photos = gallery.from_folders(lfw)
        if args.max_people:
            keep = set(sorted({photo.celebrity_id for photo in photos})[: args.max_people])
            photos = [photo for photo in photos if photo.celebrity_id in keep]
        decoded = [images.load_image(Path(photo.path)) for photo in photos]
        report("lfw-dev (MTCNN boxes as known boxes)", photos, decoded, args.model)


if __name__ == "__main__":
    main()
