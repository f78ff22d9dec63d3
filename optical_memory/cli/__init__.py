"""The ``optical-memory`` command line: one module per command, listed in :data:`COMMANDS`.

Each command module defines ``register(subparsers)``, which adds its parser and sets ``run``, and
``run(args) -> int``. Errors the library raises on purpose are printed as one line, without a traceback
(exit status 2), and so are OS errors the library does not wrap (exit status 1; ``-v`` logs the traceback).
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
        print(f"optical-memory: error: {_message(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (`... | head`): stop quietly
        _silence_stdout()
        return 1
    except (
        OSError
    ) as exc:  # the system refused something the library does not wrap: one line, not a traceback
        logging.getLogger(__name__).debug("the failure in full", exc_info=True)
        print(f"optical-memory: error: {_message(exc)} (run with -v for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("optical-memory: interrupted", file=sys.stderr)
        return 130


def _message(exc: BaseException) -> str:
    """An error's message (its class name when it has none)."""
    return str(exc) or type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not fail again on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
