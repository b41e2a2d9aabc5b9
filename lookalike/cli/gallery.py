"""``lookalike gallery imdb``: download, validate, dedup and index the full IMDB gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike import config
from lookalike.cli import (
    add_detector_argument,
    add_model_argument,
    add_ray_arguments,
    require_at_least_one,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    gallery = subparsers.add_parser(
        "gallery", help="build a whole gallery in one command (resumable at every stage)"
    )
    kinds = gallery.add_subparsers(dest="gallery_command", required=True, metavar="SOURCE")
    imdb = kinds.add_parser(
        "imdb",
        help="the IMDB faces: download → validate/clean → dedup → index (→ push to a store)",
    )
    imdb.add_argument(
        "--url", default=None, help="a mirror of the published folder (same file names)"
    )
    imdb.add_argument(
        "--dest", type=Path, default=None, help=f"dataset folder (default: {config.imdb_dir()})"
    )
    imdb.add_argument(
        "--index",
        type=Path,
        default=None,
        help=f"index folder to write (default: {config.models_dir() / 'imdb-index'})",
    )
    imdb.add_argument("--store", default=None, help="also push the vectors to this Milvus store")
    add_model_argument(imdb)
    add_detector_argument(imdb)
    imdb.add_argument("--chunk-size", type=int, default=256, help="photos per resumable chunk")
    imdb.add_argument(
        "--min-face-score",
        type=float,
        default=1.0,
        help="imdb.mat's face_score threshold of the validation report (default 1.0)",
    )
    add_ray_arguments(
        imdb, workers_default=2, workers_help="hashing threads, and Ray actors with --ray"
    )
    imdb.add_argument("--no-progress", action="store_true", help="no progress bars")
    imdb.set_defaults(handler=run_gallery_imdb)


def run_gallery_imdb(args: argparse.Namespace) -> int:
    from lookalike.gallery_imdb import build_imdb_gallery

    require_at_least_one(workers=args.workers)
    # A DownloadError is a LookalikeError: one line for the user.
    build_imdb_gallery(
        dest=args.dest or config.imdb_dir(),
        index_dir=args.index or config.models_dir() / "imdb-index",
        url=args.url,
        workers=args.workers,
        store=args.store,
        chunk_size=args.chunk_size,
        model_path=args.model,
        detector=args.detector,
        min_confidence=args.min_score,
        ray_address=args.ray,
        min_score=args.min_face_score,
        progress=not args.no_progress,
    )
    return 0
