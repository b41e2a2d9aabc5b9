"""``lookalike index build`` and ``lookalike evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lookalike.cli import (
    add_detector_argument,
    add_model_argument,
    add_ray_arguments,
    require_at_least_one,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="build the celebrity index")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = index_commands.add_parser("build", help="embed a gallery into an index folder")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--images-dir", type=Path, help="a folder per person")
    source.add_argument("--imdb", type=Path, help="an IMDB-layout dataset (imdb_crop/imdb.mat)")
    build.add_argument("--out", type=Path, required=True, help="index folder to write")
    add_model_argument(build)
    build.add_argument("--chunk-size", type=int, default=256, help="photos per resumable chunk")
    add_detector_argument(build)
    add_ray_arguments(build)
    build.set_defaults(handler=run_index_build)

    push = index_commands.add_parser(
        "push", help="load an index's vectors into a Milvus store (--store URI)"
    )
    push.add_argument("index_dir", type=Path, help="index folder (the source of truth)")
    push.add_argument(
        "--store",
        required=True,
        help="milvus-lite:///path/faces.db or milvus://host:19530/collection",
    )
    push.add_argument(
        "--index-type",
        choices=["auto", "FLAT", "HNSW"],
        default="auto",
        help="Milvus vector index (auto: FLAT below 50,000 photos, else HNSW)",
    )
    push.set_defaults(handler=run_index_push)

    evaluate = subparsers.add_parser(
        "evaluate", help="identification and pair accuracy on a folder-per-person set"
    )
    evaluate.add_argument("protocol", choices=["identification", "pairs", "all"])
    evaluate.add_argument("--images-dir", type=Path, required=True)
    add_model_argument(evaluate)
    evaluate.add_argument("--out", type=Path, default=None, help="folder for report.json + plots")
    add_detector_argument(evaluate)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=run_evaluate)


def chunk_runner(args: argparse.Namespace):
    """The chunk runner that ``--ray`` asks for, or None for the in-process build."""
    if args.ray is None:
        return None
    from lookalike.ray_build import RayChunkRunner

    return RayChunkRunner(args.ray or None, workers=args.workers)


def run_index_push(args: argparse.Namespace) -> int:
    from lookalike.index import CelebrityIndex
    from lookalike.milvus_store import push_index

    index = CelebrityIndex(args.index_dir, search="exact")
    try:
        recorded = push_index(index, args.store, index_type=args.index_type)
    finally:
        index.close()
    print(
        f"{args.store}: {recorded['lookalike.photos']} photos of "
        f"{recorded['lookalike.celebrities']} celebrities (model sha256 "
        f"{recorded['lookalike.model_sha256'][:12]}…)"
    )
    return 0


def run_index_build(args: argparse.Namespace) -> int:
    from lookalike import gallery
    from lookalike.index_build import build_index

    require_at_least_one(workers=args.workers)  # before hours of hashing, not after
    if args.images_dir:
        photos = gallery.from_folders(args.images_dir)
        source = {"kind": "folders", "path": str(args.images_dir)}
    else:
        photos = gallery.from_imdb(args.imdb)
        source = {"kind": "imdb", "path": str(args.imdb)}
    runner = chunk_runner(args)
    extra = {"runner": runner} if runner is not None else {}
    out = build_index(
        photos,
        args.out,
        model_path=args.model,
        chunk_size=args.chunk_size,
        source=source,
        detector=args.detector,
        min_confidence=args.min_score,
        **extra,
    )
    manifest = json.loads((out / "index.json").read_text())
    print(
        f"{out}: {manifest['photos']} photos of {manifest['celebrities']} celebrities "
        f"({manifest['photos_without_face']} photos without a face left out)"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from lookalike import evaluation, gallery
    from lookalike.pipeline import FacePipeline, embed_image_files

    photos = gallery.from_folders(args.images_dir)
    pipeline = FacePipeline(args.model, detector=args.detector, min_confidence=args.min_score)
    embeddings, found = embed_image_files(pipeline, [photo.path for photo in photos])
    data = evaluation.LabelledEmbeddings(
        paths=[str(photo.path) for photo in photos],
        labels=np.array([photo.celebrity_id for photo in photos]),
        embeddings=embeddings,
        found=found,
    )
    report = {"photos": len(photos), "missed_faces": int((~found).sum())}
    if args.protocol in ("identification", "all"):
        report["identification"] = evaluation.identification(data)
    if args.protocol in ("pairs", "all"):
        report["pairs"] = evaluation.pair_verification(data)
    if args.out:
        evaluation.save_report(report, args.out)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(evaluation.summary_text(report))
    return 0
