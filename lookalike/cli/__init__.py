"""The ``lookalike`` command line: one sub-command module per concern, each a thin caller."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lookalike.errors import LookalikeError

# Each module exposes ``register(subparsers)``; its handlers receive the parsed namespace and
# return an exit code. Modules are imported lazily inside handlers where they pull in TensorFlow.
COMMAND_MODULES = [
    "lookalike.cli.bench",
    "lookalike.cli.data",
    "lookalike.cli.faces",
    "lookalike.cli.gallery",
    "lookalike.cli.index",
    "lookalike.cli.model",
    "lookalike.cli.serve",
    "lookalike.cli.train",
]


class CommandError(LookalikeError):
    """A wrong argument or combination of arguments: printed as one line, exit status 2."""


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model NAME|PATH``: a registered model (``lookalike model list``) or a ``.keras`` file."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="embedding model: a registered name (see `lookalike model list`) or a .keras file "
        "(default: $LOOKALIKE_MODEL, else the index's own model, else sface)",
    )


def add_detector_argument(parser: argparse.ArgumentParser, *, for_index: bool = False) -> None:
    """``--detector yunet|mtcnn`` (and, building embeddings, ``--min-score``).

    With ``for_index`` (match, serve) the default is the detector the index was built with.
    """
    from lookalike.detection import DEFAULT_DETECTOR, DETECTORS

    default_text = (
        "the index's own"
        if for_index
        else f"the model's own: {DEFAULT_DETECTOR}, mtcnn for dlib-resnet"
    )
    parser.add_argument(
        "--detector",
        choices=DETECTORS,
        default=None,
        help=f"face detector (default: {default_text}; mtcnn finds smaller faces, ~8× slower)",
    )
    if not for_index:
        parser.add_argument(
            "--min-score",
            type=float,
            default=None,
            help="the detector's score threshold, 0-1 (default: yunet 0.6, mtcnn 0.9)",
        )


def add_ray_arguments(
    parser: argparse.ArgumentParser,
    *,
    workers_default: int | None = None,
    workers_help: str = "Ray actors (default: one per CPU)",
) -> None:
    """``--ray [ADDRESS]`` and ``--workers N``, for the commands that embed a gallery."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="embed on Ray Data: local Ray, or the cluster at ADDRESS (needs .[ray])",
    )
    parser.add_argument("--workers", type=int, default=workers_default, help=workers_help)


def require_at_least_one(**counts: int | None) -> None:
    """Refuse a count flag (``max_people=…`` is ``--max-people``) given below 1; None: not given."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike", description="Celebrity look-alike pipeline: data, faces, models, index."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it picked
    try:
        return int(args.handler(args) or 0)
    except LookalikeError as error:  # anything else is a bug of ours: its traceback shows
        print(f"lookalike {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
