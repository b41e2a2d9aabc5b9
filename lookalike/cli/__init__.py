"""The ``lookalike`` command line: one sub-command module per concern, each a thin caller."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

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


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, no traceback."""


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
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"lookalike {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
