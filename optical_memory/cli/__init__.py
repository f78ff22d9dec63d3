"""The ``optical-memory`` command line: one module per command, listed in :data:`COMMANDS`.

Each command module defines ``register(subparsers)``, which adds its parser and sets ``run``, and
``run(args) -> int``. Errors the library raises on purpose are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from optical_memory import __version__
from optical_memory.errors import OpticalMemoryError

COMMANDS = ("demo", "compress", "show", "render", "recall", "bench", "mcp")
"""Command modules under ``optical_memory.cli``, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available command registered."""
    parser = argparse.ArgumentParser(
        prog="optical-memory",
        description="Optical memory for chat agents: old turns become page images that fade down a ladder.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does to stderr")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"optical_memory.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"optical_memory.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 for a usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except OpticalMemoryError as exc:
        print(f"optical-memory: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optical-memory: interrupted", file=sys.stderr)
        return 130
