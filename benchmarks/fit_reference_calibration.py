"""Fit the reference score calibration shipped for a registered model (default: the default).

Small galleries (a few people) cannot measure how similar two photos of one person are; they
borrow this calibration instead. It is fitted with the product's own pipeline (``FacePipeline``:
YuNet, the model's template chips, the face nearest the centre, flip-averaged embeddings) on
every photo of a folder-per-person set (default ``../shared/data/lfw-dev``) and written to
``lookalike/calibrations/<model>.json``.

    python benchmarks/fit_reference_calibration.py [--images-dir DIR] [--model NAME|PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lookalike import config, gallery, model_files
from lookalike.calibration import REFERENCE_DIR, fit_calibration
from lookalike.pipeline import FacePipeline, embed_image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-dir", type=Path, default=config.shared_data_dir() / "lfw-dev")
    parser.add_argument("--model", default=None, help="registered name or .keras path")
    args = parser.parse_args()

    photos = gallery.from_folders(args.images_dir)
    pipeline = FacePipeline(args.model)
    embeddings, found = embed_image_files(pipeline, [photo.path for photo in photos])
    labels = np.array([photo.celebrity_id for photo in photos])[found]
    calibration = fit_calibration(embeddings[found], labels)
    info = model_files.model_info(args.model)
    record = {
        "model_name": info["name"],
        "model_sha256": info["sha256"],
        "fitted_on": f"{args.images_dir.name}: {int(found.sum())} photos of "
        f"{len(set(labels))} people, product pipeline ({pipeline.detector}, flip-averaged)",
        "calibration": calibration.to_dict(),
    }
    REFERENCE_DIR.mkdir(exist_ok=True)
    out = REFERENCE_DIR / f"{(info.get('registry_name') or info['name']).replace('-', '_')}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    scores = calibration.score(np.array([0.80, 0.85, 0.90, 0.93, 0.95]))
    print(
        f"wrote {out}: {calibration.same_person_pairs} same-person and "
        f"{calibration.stranger_pairs} stranger pairs; score at cosine 0.80/0.85/0.90/0.93/0.95: "
        + " / ".join(f"{score:.0f}" for score in scores)
    )


if __name__ == "__main__":
    main()
