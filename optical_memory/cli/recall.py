"""``optical-memory recall``: read a page back as text.

Two forms::

    optical-memory recall PAGE.png [--reader NAME]                      # an image file
    optical-memory recall --db FILE [--session S] --page ID [--reader NAME]   # a stored page

The text goes to stdout; a one-line summary (reader, rung, seconds) to stderr. ``--stream`` prints the
``deepseek`` reader's text as it is generated. Reader settings (``--checkpoint``, ``--base-url``, ...) apply
to the reader that uses them; :func:`add_reader_arguments` and :func:`reader_from_args` are shared with
``optical-memory bench``. An image file is decoded by :func:`optical_memory.images.open_image_file`: PNG, JPEG,
WebP, GIF, BMP or TIFF, at most 64 MiB and 25 million pixels; anything else is a one-line error (status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optical_memory.errors import ConfigError, InputError

__all__ = ["add_reader_arguments", "reader_from_args", "register", "run"]


def add_reader_arguments(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    """Add ``--reader`` and the reader settings to a parser."""
    from optical_memory.recall.base import READERS

    parser.add_argument(
        "--reader",
        choices=list(READERS),
        default=default,
        help="how to read: " + ", ".join(READERS) + (f" (default {default})" if default else ""),
    )
    group = parser.add_argument_group("reader settings")
    group.add_argument(
        "--checkpoint", help="deepseek: DeepSeek-OCR folder (default $OPTICAL_MEMORY_CHECKPOINT)"
    )
    group.add_argument("--device", help="deepseek: cuda or cpu (default: cuda when available)")
    group.add_argument("--dtype", help="deepseek: bfloat16 or float32 (default: bf16 on GPU, fp32 on CPU)")
    group.add_argument("--prompt", help="deepseek/endpoint: 'free' (default), 'markdown', or a prompt text")
    group.add_argument("--max-new-tokens", type=int, help="deepseek/endpoint: bound on generated tokens")
    group.add_argument("--base-url", help="endpoint: server root with /v1 (default $OPENAI_BASE_URL)")
    group.add_argument("--model", help="endpoint: model name (default $OPTICAL_MEMORY_OCR_MODEL)")
    group.add_argument("--lang", help="tesseract: language codes, e.g. eng+chi_sim (default eng)")


def reader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The constructor settings of the chosen reader taken from the command line.

    Raises:
        ConfigError: For a setting the chosen reader does not use.
    """
    from optical_memory.recall.endpoint import DEFAULT_PROMPT

    given = {
        key: getattr(args, key, None)
        for key in ("checkpoint", "device", "dtype", "prompt", "max_new_tokens", "base_url", "model", "lang")
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.reader == "endpoint" and given.get("prompt") in ("free", "markdown"):
        given["prompt"] = (
            DEFAULT_PROMPT if given["prompt"] == "free" else "<|grounding|>Convert the document to markdown."
        )
    if args.reader == "endpoint" and "max_new_tokens" in given:
        given["max_tokens"] = given.pop("max_new_tokens")
    accepted = {
        "deepseek": {"checkpoint", "device", "dtype", "prompt", "max_new_tokens"},
        "endpoint": {"base_url", "model", "prompt", "max_tokens"},
        "tesseract": {"lang"},
    }.get(args.reader, set())
    extra = sorted(set(given) - accepted)
    if extra:
        names = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ConfigError(f"{names} do(es) not apply to the {args.reader} reader")
    return given


def reader_from_args(args: argparse.Namespace) -> Any:
    """Build the reader the command line names, with its settings.

    Raises:
        ConfigError: For an unknown reader or a setting it does not use.
        MissingDependencyError: If the reader's extra is not installed.
    """
    from optical_memory.recall.base import get_reader

    return get_reader(args.reader, **reader_kwargs(args))


def register(subparsers: Any) -> None:
    """Add the ``recall`` command."""
    parser = subparsers.add_parser(
        "recall",
        help="read a page back as text (an image file, or a page of a memory file)",
        description="Read a page back as text: an image file, or a stored page of a memory (--db, --page).",
    )
    parser.add_argument("image", nargs="?", type=Path, help="a page image (PNG, ...) to read")
    parser.add_argument("--db", type=Path, help="a memory file (SQLite) to read a stored page from")
    parser.add_argument("--session", default="default", help="session in the memory file (default 'default')")
    parser.add_argument("--page", type=int, help="id of the stored page to read (with --db)")
    parser.add_argument("--rung", help="the rung an image file is at (default: from its size)")
    parser.add_argument("--stream", action="store_true", help="deepseek: print the text as it is generated")
    add_reader_arguments(parser, default=None)
    parser.set_defaults(run=run)


def _read_image(args: argparse.Namespace) -> Any:
    from optical_memory.images import open_image_file
    from optical_memory.recall.api import default_reader_name

    image = open_image_file(args.image)  # bounded: file size, pixels, formats
    if args.reader is None:
        args.reader = default_reader_name(text_kept=False)
    reader = reader_from_args(args)
    if args.stream and args.reader == "deepseek":
        reading = reader.read(
            image, rung=args.rung, on_text=lambda s: (sys.stdout.write(s), sys.stdout.flush())
        )
        sys.stdout.write("\n")
        return reading, True
    return reader.read(image, rung=args.rung), False


def _read_stored(args: argparse.Namespace) -> Any:
    from optical_memory.memory import OpticalMemory
    from optical_memory.recall.api import recall_page

    if not args.db.is_file():
        raise InputError(f"no such memory file: {args.db}")
    if args.page is None:
        raise InputError("--db needs --page ID (list pages with: optical-memory show --db FILE)")
    with OpticalMemory.open(args.db, session=args.session) as memory:
        reader = reader_from_args(args) if args.reader is not None else None
        return recall_page(memory, args.page, reader), False


def run(args: argparse.Namespace) -> int:
    """Read the page and print its text."""
    if (args.image is None) == (args.db is None):
        raise InputError("give either an image file or --db FILE --page ID")
    if args.page is not None and args.db is None:
        raise InputError("--page needs --db FILE")
    reading, streamed = _read_image(args) if args.image is not None else _read_stored(args)
    if not streamed:
        sys.stdout.write(reading.text + ("\n" if not reading.text.endswith("\n") else ""))
    rung = reading.rung.value if reading.rung is not None else "off-ladder"
    tokens = f", {reading.tokens} tokens" if reading.tokens is not None else ""
    print(f"[{reading.reader} at {rung}: {reading.seconds:.2f} s{tokens}]", file=sys.stderr)
    return 0
