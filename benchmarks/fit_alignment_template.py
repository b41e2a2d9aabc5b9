"""Fit ``lookalike.alignment.LANDMARK_TEMPLATE``: where MTCNN's 5 points fall in dlib's chips.

For a few hundred lfw-dev photos (one per person): dlib's detector + 5-point predictor give
``get_face_chip_details(size=150, padding=0.25)``, i.e. the chip the embedding network was
trained on; MTCNN finds the same face; its landmarks are mapped into that chip through dlib's own
image→chip transform. The template is the mean of those points over the faces that agree
(outliers beyond 3× the median deviation dropped). Also checks that ``alignment.warp_chip``
reproduces dlib's chip pixels when given dlib's transform, and how far our template-aligned chips
sit from dlib's. dlib is a TEST/BENCH-ONLY reference here; run-time code never imports it.

    .venv/bin/python benchmarks/fit_alignment_template.py [--count 400]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np

from lookalike import alignment, config, detection, images

# dlib's get_face_chip_details template for the 5-point model (unit square, before padding).
DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
NAMES = ("left eye", "right eye", "nose", "mouth left", "mouth right")


def pick_photos(lfw: Path, count: int) -> list[Path]:
    """The first photo of every k-th person (sorted), about ``count`` photos in all."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    step = max(1, len(people) // count)
    return [sorted(person.glob("*.jpg"))[0] for person in people[::step]][:count]


def dlib_chip_matrix(details) -> np.ndarray:
    """dlib's get_mapping_to_chip: the rotated rectangle's corners onto the chip's corners."""
    rect = details.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    corners = np.array(
        [[rect.left(), rect.top()], [rect.right(), rect.top()], [rect.right(), rect.bottom()]]
    )
    source = (corners - centre) @ rotation.T + centre
    target = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]])
    # Exact affine through 3 point pairs: solve [x y 1] @ M.T = target.
    design = np.hstack([source, np.ones((3, 1))])
    return np.linalg.solve(design, target.astype(np.float64)).T


def to_chip(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--lfw", type=Path, default=config.shared_data_dir() / "lfw-dev")
    args = parser.parse_args()

    face_detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    photos = pick_photos(args.lfw, args.count)
    pictures = [images.load_image(path) for path in photos]
    started = time.perf_counter()
    mtcnn_faces = detection.detect_faces_batch(pictures, max_side=None)
    print(f"MTCNN on {len(photos)} photos: {time.perf_counter() - started:.1f} s")

    mapped, dlib_mapped, pixel_errors = [], [], []
    skipped = {"no dlib face": 0, "no MTCNN face": 0}
    for picture, faces in zip(pictures, mtcnn_faces, strict=True):
        rects = face_detector(picture, 1)
        if not rects:
            skipped["no dlib face"] += 1
            continue
        centre = np.array(picture.shape[1::-1]) / 2
        rect = min(
            rects, key=lambda r: np.hypot(r.center().x - centre[0], r.center().y - centre[1])
        )
        shape = predictor(picture, rect)
        details = dlib.get_face_chip_details(shape, size=alignment.CHIP_SIZE, padding=0.25)
        matrix = dlib_chip_matrix(details)
        box_centre = np.array([rect.center().x, rect.center().y])
        near = [
            f
            for f in faces
            if np.hypot(*(np.mean(np.reshape(f.box, (2, 2)), 0) - box_centre)) < 0.5 * rect.width()
        ]
        if not near:
            skipped["no MTCNN face"] += 1
            continue
        face = max(near, key=lambda f: f.confidence)
        mapped.append(to_chip(matrix, face.landmarks.astype(np.float64)))
        parts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
        dlib_mapped.append(to_chip(matrix, parts))
        ours = alignment.warp_chip(picture, matrix)
        theirs = dlib.get_face_chip(picture, shape, size=alignment.CHIP_SIZE, padding=0.25)
        pixel_errors.append(np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).mean())
    points = np.array(mapped)
    print(f"faces used: {len(points)} of {len(photos)} photos; skipped: {skipped}")
    # dlib's chip is the least-squares fit of its 5 points onto its fixed template, so their
    # mean in the chips lies near (not exactly on) it; the pixel comparison is the exact check.
    expected = (0.25 + DLIB_TEMPLATE) / 1.5 * alignment.CHIP_SIZE
    offset = np.abs(np.array(dlib_mapped).mean(0) - expected).max()
    print(f"dlib's own 5 points: mean in chip within {offset:.2f} px of dlib's template")
    print(
        f"warp_chip vs dlib.get_face_chip with dlib's transform: mean |diff| "
        f"{np.mean(pixel_errors):.2f} grey levels (max over faces {np.max(pixel_errors):.2f})"
    )

    median = np.median(points, axis=0)
    deviation = np.sqrt(((points - median) ** 2).sum(-1).mean(-1))  # RMS per face, chip px
    keep = deviation <= 3 * np.median(deviation)
    template = points[keep].mean(axis=0)
    spread = points[keep].std(axis=0)
    print(
        f"outliers dropped (RMS deviation > 3× median {np.median(deviation):.2f} px): "
        f"{int((~keep).sum())}; template from {int(keep.sum())} faces"
    )
    print(f"{'point':12s} {'mean x':>7s} {'mean y':>7s} {'sd x':>6s} {'sd y':>6s} {'median':>14s}")
    for name, mean, sd, med in zip(NAMES, template, spread, median, strict=True):
        print(
            f"{name:12s} {mean[0]:7.2f} {mean[1]:7.2f} {sd[0]:6.2f} {sd[1]:6.2f} "
            f"({med[0]:6.2f}, {med[1]:6.2f})"
        )

    # What alignment to this template leaves over: per-face residual after its own similarity
    # fit, and how far the chip frame moves from dlib's (mean corner displacement).
    residuals, corner_shifts = [], []
    corners = np.array([[0, 0], [149, 0], [0, 149], [149, 149]], np.float64)
    for chip_points in points[keep]:
        fit = alignment.chip_transform(chip_points)
        residuals.append(np.sqrt(((to_chip(fit, chip_points) - template) ** 2).sum(-1).mean()))
        corner_shifts.append(np.sqrt(((to_chip(fit, corners) - corners) ** 2).sum(-1)).mean())
    print(
        f"residual after similarity alignment: RMS {np.mean(residuals):.2f} px per point "
        f"(median face {np.median(residuals):.2f})"
    )
    print(
        f"our chip frame vs dlib's: corners move {np.mean(corner_shifts):.2f} px on average "
        f"(median {np.median(corner_shifts):.2f}, 95th pct {np.percentile(corner_shifts, 95):.2f})"
    )
    print("\nLANDMARK_TEMPLATE = np.array(\n    [")
    for mean in template:
        print(f"        [{mean[0]:.1f}, {mean[1]:.1f}],")
    print("    ],\n    dtype=np.float32,\n)")


if __name__ == "__main__":
    main()
