"""``lookalike train`` and ``lookalike compare-models``: train, export and compare models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lookalike.cli import CommandError

# Flags that set one config value each (flag destination → dotted config key).
SHORTCUTS = {
    "model_type": "model",
    "name": "name",
    "data": "data.source",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "backbone": "transfer.backbone",
}


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a shipped preset (see --list-presets)")
    source.add_argument("--config", type=Path, help="a JSON config file (same keys as a preset)")
    parser.add_argument("--model-type", choices=["scratch", "transfer"], help="model to train")
    parser.add_argument("--name", help="run name (output folder models/<name>-<model>)")
    parser.add_argument("--data", help="dataset folder (IMDB layout or a folder per person)")
    parser.add_argument(
        "--backbone",
        metavar="NAME|PATH",
        help="the transfer model's pretrained backbone: a registered model (dlib-resnet, the "
        "default; sface; arcface-mbf) or a .keras file",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. --set scratch.image_size=80 (VALUE is JSON)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train a face-embedding model (scratch CNN or transfer) and export it"
    )
    _add_config_arguments(train)
    train.add_argument("--out", type=Path, help="output folder (default models/<name>-<model>)")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--batch-size", type=int, help="override training.batch_size")
    train.add_argument("--learning-rate", type=float, help="override training.learning_rate")
    train.add_argument("--list-presets", action="store_true", help="list presets and exit")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=run_train)

    compare = subparsers.add_parser(
        "compare-models",
        help="held-out identification and pairs of several embedding models on the same photos, "
        "each through its own face path",
    )
    _add_config_arguments(compare)
    compare.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="NAME=MODEL",
        help="a model to compare: a registered name (sface) or an embedding.keras; repeat",
    )
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.add_argument("--out", type=Path, help="write the table as CSV here too")
    compare.set_defaults(handler=run_compare)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in args.set:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise CommandError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text  # a bare word, e.g. --set model=transfer
    for flag, key in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None:
            values[key] = value
    return values


def _load(args: argparse.Namespace) -> Any:
    from lookalike.training_config import load_config

    if not args.preset and not args.config:
        raise CommandError("give --preset NAME or --config FILE")
    return load_config(args.preset, args.config, _overrides(args))


def run_train(args: argparse.Namespace) -> int:
    from lookalike.training import run_training
    from lookalike.training_config import list_presets

    if args.list_presets:
        print("\n".join(list_presets()))
        return 0
    settings = _load(args)
    result = run_training(settings, args.out, progress=not args.quiet)
    metrics = result.metrics
    print(
        f"{result.out_dir}: {metrics['classes']} identities, {metrics['epochs_run']} epochs, "
        f"{metrics['train_seconds']:.0f} s"
    )
    for split, scores in metrics["classification"].items():
        print(f"  {split:<10} loss {scores['loss']:.3f}  accuracy {scores['accuracy']:.2%}")
    heldout = metrics.get("heldout", {})
    if "top1" in heldout:
        print(
            f"  held-out ({heldout['people']} people): top-1 {heldout['top1']:.2%}, "
            f"top-5 {heldout['top5']:.2%}, pairs {heldout['pair_accuracy']:.2%}"
        )
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from lookalike.comparison import compare_models, heldout_photos
    from lookalike.training_data import prepare_training_data

    model_paths = {}
    for item in args.models:
        name, separator, location = item.partition("=")
        if not separator or not name or not location:
            raise CommandError(f"--model expects NAME=MODEL, got {item!r}")
        model_paths[name] = location
    settings = _load(args)
    photos = heldout_photos(prepare_training_data(settings.data), settings.data.source)
    table = compare_models(photos, model_paths, progress=not args.quiet).table
    print(table.drop(columns="licence").to_string(float_format=lambda value: f"{value:.4f}"))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out)
    return 0
