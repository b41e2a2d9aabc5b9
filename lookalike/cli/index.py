"""``lookalike index build`` and ``lookalike evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="build the celebrity index")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = index_commands.add_parser("build", help="embed a gallery into an index folder")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--images-dir", type=Path, help="a folder per person")
    source.add_argument("--imdb", type=Path, help="an IMDB-layout dataset (imdb_crop/imdb.mat)")
    build.add_argument("--out", type=Path, required=True, help="index folder to write")
    build.add_argument("--model", type=Path, default=None, help="embedding .keras model")
    build.add_argument("--chunk-size", type=int, default=256, help="photos per resumable chunk")
    build.set_defaults(handler=run_index_build)

    evaluate = subparsers.add_parser(
        "evaluate", help="identification and pair accuracy on a folder-per-person set"
    )
    evaluate.add_argument("protocol", choices=["identification", "pairs", "all"])
    evaluate.add_argument("--images-dir", type=Path, required=True)
    evaluate.add_argument("--model", type=Path, default=None)
    evaluate.add_argument("--out", type=Path, default=None, help="folder for report.json + plots")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=run_evaluate)


def run_index_build(args: argparse.Namespace) -> int:
    from lookalike import gallery
    from lookalike.index_build import build_index

    if args.images_dir:
        photos = gallery.from_folders(args.images_dir)
        source = {"kind": "folders", "path": str(args.images_dir)}
    else:
        photos = gallery.from_imdb(args.imdb)
        source = {"kind": "imdb", "path": str(args.imdb)}
    out = build_index(
        photos, args.out, model_path=args.model, chunk_size=args.chunk_size, source=source
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
    pipeline = FacePipeline(args.model)
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
