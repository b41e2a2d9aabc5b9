"""``lookalike embed`` and ``lookalike match``: the face pipeline on files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lookalike import config
from lookalike.cli import CommandError, add_detector_argument, add_model_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser(
        "embed", help="embed the largest face of every image in a folder into an .npz"
    )
    embed.add_argument("--images-dir", type=Path, required=True)
    embed.add_argument("--out", type=Path, required=True, help="output .npz file")
    add_model_argument(embed)
    add_detector_argument(embed)
    embed.add_argument("--batch-size", type=int, default=32)
    embed.set_defaults(handler=run_embed)

    match = subparsers.add_parser("match", help="the celebrities each face in a photo looks like")
    match.add_argument("image", type=Path)
    match.add_argument("--index", type=Path, default=None, help="index folder (default: demo)")
    add_model_argument(match)
    add_detector_argument(match, for_index=True)
    match.add_argument("--top-k", type=int, default=5)
    match.add_argument("--gender", choices=["female", "male"], default=None)
    match.add_argument("--json", action="store_true", help="print the API's JSON")
    match.add_argument(
        "--store", default=None, help="search a Milvus store (default: $LOOKALIKE_STORE, else here)"
    )
    match.set_defaults(handler=run_match)


def run_embed(args: argparse.Namespace) -> int:
    from lookalike.gallery import list_images
    from lookalike.pipeline import FacePipeline, embed_image_files

    relative_paths = list_images(args.images_dir)
    pipeline = FacePipeline(args.model, detector=args.detector, min_confidence=args.min_score)
    embeddings, found = embed_image_files(
        pipeline, [args.images_dir / path for path in relative_paths], batch_size=args.batch_size
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out, paths=np.array(relative_paths, dtype=str), embeddings=embeddings, face_found=found
    )
    print(f"{args.out}: {len(relative_paths)} images, faces found in {int(found.sum())}")
    return 0


def run_match(args: argparse.Namespace) -> int:
    from lookalike.images import ImageError
    from lookalike.match import Matcher, MatchOptions, NoFaceError
    from lookalike.search import default_store

    matcher = Matcher(
        args.index or config.default_index_dir(),
        args.model,
        store=args.store or default_store(),
        detector=args.detector,
    )
    try:
        result = matcher.match(args.image, MatchOptions(top_k=args.top_k, gender=args.gender))
    except (ImageError, NoFaceError) as error:
        raise CommandError(f"{args.image}: {error}") from error
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for number, face in enumerate(result["faces"], start=1):
        x, y, width, height = face["box"]
        print(f"face {number} at x={x} y={y} ({width}×{height} px):")
        for rank, match in enumerate(face["matches"], start=1):
            age = (
                f", age {match['age']} in {match['photo_year']}" if match["age"] is not None else ""
            )
            print(
                f"  {rank}. {match['name']:<28} score {match['score']:5.1f}/100  "
                f"(cosine {match['similarity']:.3f}{age})"
            )
    hidden = result["faces_total"] - len(result["faces"])
    if hidden:
        print(f"({hidden} more faces not matched)")
    return 0
