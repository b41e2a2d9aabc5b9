"""``lookalike model``: create the embedding model from the pretrained weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike import config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lookalike model convert-pretrained``."""
    model = subparsers.add_parser("model", help="create and inspect embedding models")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    convert = actions.add_parser(
        "convert-pretrained",
        help="convert dlib's face ResNet (tfjs weights of @vladmandic/face-api) to a .keras file",
    )
    convert.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help=f"folder with the tfjs manifest and .bin (default: {config.pretrained_weights_dir()})",
    )
    convert.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output .keras file (default: {config.default_model_path()})",
    )
    convert.set_defaults(handler=run_convert_pretrained)


def run_convert_pretrained(args: argparse.Namespace) -> int:
    """Build the Keras network, load the weights, save it and its ``model.json``."""
    from lookalike import embedder  # TensorFlow is imported only when the command runs

    path = embedder.convert_pretrained(args.weights_dir, args.out)
    info = embedder.model_info(path)
    print(f"{path}: {info['name']}, sha256 {info['sha256'][:12]}…, {embedder.EMBEDDING_SIZE}-D")
    return 0
