"""Look-alike quality of every registered model and both detectors on a folder-per-person set
(default ../shared/data/lfw-dev), all on the same photos in one run.

Variants (an embedding per photo; a zero row and "missed" when no face was found):
  DETECTOR/MODEL[+flip]/RULE   the product's path: detect (yunet or mtcnn at its default
                               threshold, photo shrunk to 640 px), pick the subject face by
                               RULE (centre, largest, size-centre), align to the model's
                               template, embed (+flip: averaged with the mirrored chip)
  fusion sface+arcface-mbf     w·cos_sface + (1−w)·cos_mbf, w chosen on half A of the people
                               (a 0.1 grid), reported on half B only, beside both models on B
  dlib (--with-dlib)           dlib's own pipeline (HOG detector, 5-point chip, ResNet)

Identification: for each person with ≥ 2 photos the first file is the query, the gallery is
every other photo (singletons included). Pairs: every same-person pair (sampled to 6,000) and
as many stranger pairs, 10-fold threshold. Detections are cached under data/cache/ keyed by the
photos (paths, sizes, mtimes), the detector and its settings; embeddings are always computed.

    python benchmarks/bench_quality.py [--images-dir DIR] [--max-people N] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lookalike import config, detection, evaluation, gallery, images
from lookalike.pipeline import FacePipeline

MODELS = ("sface", "arcface-mbf", "dlib-resnet")
DETECTOR_MODELS = {"yunet": MODELS, "mtcnn": ("sface", "dlib-resnet")}


def photo_fingerprint(photos: list) -> str:
    digest = hashlib.sha256()
    for photo in photos:
        stat = Path(photo.path).stat()
        digest.update(f"{photo.path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def detect_all(
    photos: list,
    detector: str,
    cache_dir: Path,
    *,
    max_side: int | None = detection.DEFAULT_MAX_SIDE,
    min_confidence: float | None = None,
) -> tuple[list, float]:
    """Every face of every photo (box, confidence, landmarks), cached with its provenance."""
    if min_confidence is None:
        min_confidence = detection.default_min_confidence(detector)
    settings = {
        "detector": detector,
        "min_confidence": min_confidence,
        "max_side": max_side,
        "photos": photo_fingerprint(photos),
        "cache_format": 2,  # per-photo seconds
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    cache = cache_dir / f"faces-{detector}-{key}.json"
    if cache.is_file():
        record = json.loads(cache.read_text())
        if record["settings"] == settings:
            return record["faces"], record["seconds"]
    faces, seconds = [], []
    for photo in tqdm(photos, desc=f"detect ({detector}, {max_side})", unit="photo"):
        image = images.load_image(photo.path)
        started = time.perf_counter()
        found = detection.detect_faces(
            image, detector=detector, min_confidence=min_confidence, max_side=max_side
        )
        seconds.append(time.perf_counter() - started)
        faces.append(
            [[list(f.box), f.confidence, f.landmarks.tolist(), list(image.shape)] for f in found]
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"settings": settings, "faces": faces, "seconds": seconds}))
    return faces, seconds


def chosen_faces(faces: list, rule: str, min_score: float = 0.0) -> list:
    """Per photo: the index (in its face list) of the subject face under ``rule``, or None.

    Faces scored below ``min_score`` are left out (a higher threshold than detection used).
    """
    chosen = []
    for photo_faces in faces:
        objects = [
            detection.DetectedFace(tuple(box), conf, np.asarray(points, np.float32))
            for box, conf, points, _shape in photo_faces
        ]
        kept = [face for face in objects if face.confidence >= min_score]
        if not kept:
            chosen.append(None)
            continue
        subject = detection.choose_subject(kept, tuple(photo_faces[0][3]), rule)
        chosen.append(objects.index(subject))  # DetectedFace compares by identity
    return chosen


def embed_faces(pipeline: FacePipeline, photos: list, faces: list, wanted: set) -> dict:
    """Plain and mirrored embeddings of each wanted (photo, face) pair."""
    out = {}
    by_photo: dict[int, list[int]] = {}
    for row, face in sorted(wanted):
        by_photo.setdefault(row, []).append(face)
    rows = sorted(by_photo)
    name = pipeline.model_path.parent.name
    for start in tqdm(range(0, len(rows), 64), desc=f"embed ({name})", unit="batch"):
        keys, chips = [], []
        for row in rows[start : start + 64]:
            image = images.load_image(photos[row].path)
            for face in by_photo[row]:
                box, conf, points, _ = faces[row][face]
                detected = detection.DetectedFace(tuple(box), conf, np.asarray(points, np.float32))
                chips.append(pipeline.align(image, [detected])[0])
                keys.append((row, face))
        chips = np.stack(chips)
        pipeline.flip_average = False
        plain = pipeline.embed_chips(chips)
        mirrored = pipeline.embed_chips(np.ascontiguousarray(chips[:, :, ::-1]))
        for key, a, b in zip(keys, plain, mirrored, strict=True):
            out[key] = (a, b)
    return out


def variant(photos: list, embedded: dict, chosen: list, flip: bool, size: int):
    vectors = np.zeros((len(photos), size), np.float32)
    found = np.zeros(len(photos), bool)
    for row, face in enumerate(chosen):
        if face is None:
            continue
        plain, mirrored = embedded[(row, face)]
        vector = plain + mirrored if flip else plain
        vectors[row] = vector / np.linalg.norm(vector)
        found[row] = True
    return vectors, found


def print_row(name: str, row: dict) -> None:
    print(
        f"{name:<34}{row['missed_faces']:>7}{row['top1']:>8.2%}{row['top5']:>8.2%}"
        f"{row['per_person_top1']:>8.2%}{row['pair_accuracy']:>8.2%}{row['pair_auc']:>8.4f}",
        flush=True,
    )


def evaluate(paths, labels, vectors, found, mask=None) -> dict:
    if mask is not None:
        paths = [path for path, keep in zip(paths, mask, strict=True) if keep]
        labels, vectors, found = labels[mask], vectors[mask], found[mask]
    report = evaluation.evaluate(evaluation.LabelledEmbeddings(paths, labels, vectors, found))
    return {**evaluation.headline(report), "missed_faces": report["missed_faces"]}


def fusion_rows(paths, labels, sface, mbf, found) -> dict:
    """Choose w on half A of the people (0.1 grid, top-1 then pairs), report half B."""
    people = sorted(set(labels))
    half_a = np.isin(labels, people[0::2])
    half_b = ~half_a
    best_w, best_key = None, None
    for w in np.round(np.arange(0.0, 1.01, 0.1), 1):
        fused = np.concatenate([np.sqrt(w) * sface, np.sqrt(1 - w) * mbf], axis=1)
        row = evaluate(paths, labels, fused, found, half_a)
        key = (row["top1"], row["pair_accuracy"])
        if best_key is None or key > best_key:
            best_w, best_key = w, key
    fused = np.concatenate([np.sqrt(best_w) * sface, np.sqrt(1 - best_w) * mbf], axis=1)
    return {
        "w": float(best_w),
        "half_b": {
            f"fusion w={best_w}": evaluate(paths, labels, fused, found, half_b),
            "sface (half B)": evaluate(paths, labels, sface, found, half_b),
            "arcface-mbf (half B)": evaluate(paths, labels, mbf, found, half_b),
        },
    }


def tune_yunet(photos: list, paths: list, labels: np.ndarray, cache_dir: Path) -> dict:
    """YuNet's detection size × score threshold (+ retries when nothing is found), with SFace
    (+flip, nearest-centre face): misses, identification, pairs and detection ms per photo."""
    # lfw-dev photos are 250×250: only sizes below that change anything here.
    sizes = {"128": 128, "160": 160, "200": 200, "full": None}
    thresholds = (0.5, 0.6, 0.7, 0.8, 0.9)
    pipeline = FacePipeline("sface", detector="yunet")
    results, kept = {}, {}
    for size_name, side in sizes.items():
        faces, seconds = detect_all(photos, "yunet", cache_dir, max_side=side, min_confidence=0.5)
        choices = {t: chosen_faces(faces, "centre", t) for t in thresholds}
        wanted = {(r, f) for ch in choices.values() for r, f in enumerate(ch) if f is not None}
        embedded = embed_faces(pipeline, photos, faces, wanted)
        kept[size_name] = (choices, embedded, seconds)
        for t, chosen in choices.items():
            vectors, found = variant(photos, embedded, chosen, True, pipeline.embedding_size)
            row = evaluate(paths, labels, vectors, found) | {"ms": 1000 * float(np.mean(seconds))}
            results[f"yunet {size_name} >= {t}"] = row
            print_row(f"yunet {size_name} >= {t}  ({row['ms']:.1f} ms)", row)

    # A retry at full size for photos where 160 px at 0.6 finds nothing.
    choices, embedded, seconds = kept["160"]
    base = variant(photos, embedded, choices[0.6], True, pipeline.embedding_size)
    full_choices, full_embedded, full_seconds = kept["full"]
    retry = [row for row, face in enumerate(choices[0.6]) if face is None]
    vectors, found = base[0].copy(), base[1].copy()
    full = variant(photos, full_embedded, full_choices[0.6], True, pipeline.embedding_size)
    vectors[retry], found[retry] = full[0][retry], full[1][retry]
    ms = 1000 * (np.sum(seconds) + np.sum(np.asarray(full_seconds)[retry])) / len(photos)
    results["yunet 640 >= 0.6, retry full"] = evaluate(paths, labels, vectors, found) | {"ms": ms}
    print_row(
        f"yunet 640 >= 0.6, retry full ({ms:.1f} ms)", results["yunet 640 >= 0.6, retry full"]
    )
    print(f"[{len(retry)} photos retried]")
    return results


def dlib_reference(photos: list) -> tuple[np.ndarray, np.ndarray]:
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    vectors = np.zeros((len(photos), 128), np.float32)
    found = np.zeros(len(photos), bool)
    for row, photo in enumerate(tqdm(photos, desc="dlib reference", unit="photo")):
        image = images.load_image(photo.path)
        rectangles = detector(image, 1)
        if not len(rectangles):
            continue
        face = max(rectangles, key=lambda r: r.width() * r.height())
        chip = dlib.get_face_chip(image, predictor(image, face), size=150, padding=0.25)
        vector = np.asarray(network.compute_face_descriptor(chip), np.float32)
        vectors[row], found[row] = vector / np.linalg.norm(vector), True
    return vectors, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-dir", type=Path, default=config.shared_data_dir() / "lfw-dev")
    parser.add_argument("--max-people", type=int, default=None, help="first N people only")
    parser.add_argument("--with-dlib", action="store_true", help="also dlib's own pipeline (slow)")
    parser.add_argument(
        "--dlib-only", action="store_true", help="only dlib's own pipeline (the reference row)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write summary.json here")
    parser.add_argument(
        "--tune-yunet", action="store_true", help="only YuNet's size × threshold table (SFace)"
    )
    args = parser.parse_args()

    photos = gallery.from_folders(args.images_dir)
    if args.max_people:
        keep = set(sorted({photo.celebrity_id for photo in photos})[: args.max_people])
        photos = [photo for photo in photos if photo.celebrity_id in keep]
    print(f"{len(photos)} photos of {len({p.celebrity_id for p in photos})} people")
    labels = np.array([photo.celebrity_id for photo in photos])
    paths = [str(photo.path) for photo in photos]
    cache_dir = config.cache_dir() / "bench-quality"

    results: dict[str, dict] = {}
    if args.tune_yunet:
        print(f"{'setting':<34}{'missed':>7}{'top-1':>8}{'top-5':>8}{'pers.1':>8}{'pairs':>8}")
        results = tune_yunet(photos, paths, labels, cache_dir)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "yunet-tuning.json").write_text(json.dumps(results, indent=1))
        return
    header = (
        f"{'variant':<34}{'missed':>7}{'top-1':>8}{'top-5':>8}{'pers.1':>8}{'pairs':>8}{'AUC':>8}"
    )
    print(header)
    flip_vectors = {}
    for detector, model_names in () if args.dlib_only else DETECTOR_MODELS.items():
        faces, seconds = detect_all(photos, detector, cache_dir)
        print(f"[{detector}: {1000 * np.mean(seconds):.1f} ms per photo, detection alone]")
        rules = {rule: chosen_faces(faces, rule) for rule in detection.SUBJECT_RULES}
        wanted = {(row, face) for chosen in rules.values() for row, face in enumerate(chosen)}
        wanted = {key for key in wanted if key[1] is not None}
        for model in model_names:
            pipeline = FacePipeline(model, detector=detector)
            embedded = embed_faces(pipeline, photos, faces, wanted)
            for rule, chosen in rules.items():
                for flip in (False, True):
                    if rule != detection.DEFAULT_SUBJECT_RULE and not flip:
                        continue  # rules compared with flip only, to keep the table short
                    vectors, found = variant(
                        photos, embedded, chosen, flip, pipeline.embedding_size
                    )
                    name = f"{detector}/{model}{'+flip' if flip else ''}/{rule}"
                    results[name] = evaluate(paths, labels, vectors, found)
                    print_row(name, results[name])
                    if detector == "yunet" and flip and rule == detection.DEFAULT_SUBJECT_RULE:
                        flip_vectors[model] = (vectors, found)

    if {"sface", "arcface-mbf"} <= set(flip_vectors):
        sface, found_a = flip_vectors["sface"]
        mbf, found_b = flip_vectors["arcface-mbf"]
        fusion = fusion_rows(paths, labels, sface, mbf, found_a & found_b)
        print(f"fusion: w = {fusion['w']} chosen on half A of the people; half B:")
        for name, row in fusion["half_b"].items():
            print_row(name, row)
        results["fusion"] = fusion

    if args.with_dlib or args.dlib_only:
        vectors, found = dlib_reference(photos)
        results["dlib (reference)"] = evaluate(paths, labels, vectors, found)
        print_row("dlib (reference)", results["dlib (reference)"])

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
