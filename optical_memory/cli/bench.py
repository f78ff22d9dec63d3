"""``optical-memory bench``: measurements a user can run on their own conversations.

``optical-memory bench forgetting INPUT --reader NAME [--out curve.json] [--plot curve.png]
[--limit-pages N]`` renders the conversation, reads every page back at each rung (and at 384 and 256 px
below Tiny) and prints the forgetting curve: character accuracy, bag-of-characters recall, text and vision
tokens, compression and seconds per page. The curve always names its reader.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optical_memory.cli.recall import add_reader_arguments, reader_from_args

__all__ = ["format_curve", "register", "run", "run_forgetting"]


def register(subparsers: Any) -> None:
    """Add the ``bench`` command and its ``forgetting`` subcommand."""
    parser = subparsers.add_parser("bench", help="measure recall on a conversation (forgetting curve)")
    benches = parser.add_subparsers(title="benchmarks", metavar="BENCH")
    forgetting = benches.add_parser(
        "forgetting",
        help="read every page back at each rung and report how much text survives",
        description="Render INPUT, take every page down the ladder, read it back with --reader, report per rung.",
    )
    forgetting.add_argument("input", type=Path, help="conversation file (JSON, JSONL or ShareGPT)")
    forgetting.add_argument("--out", type=Path, help="write the curve as JSON here")
    forgetting.add_argument("--plot", type=Path, help="draw the curve as a PNG here")
    forgetting.add_argument("--limit-pages", type=int, help="read only the first N pages")
    add_reader_arguments(forgetting, default="rapidocr")
    forgetting.set_defaults(run=run_forgetting)
    parser.set_defaults(run=run, bench_help=parser.format_help)


def format_curve(curve: Any) -> str:
    """The curve as a plain-text table."""
    head = f"{'rung':<7} {'px':>5} {'char acc':>8} {'worst':>6} {'bag':>6} {'text tok':>8} {'vis tok':>8} {'ratio':>6} {'s/page':>7}"
    lines = [f"forgetting curve, reader: {curve.reader} ({curve.pages} pages)", curve.note, head]
    for r in curve.rows:
        vis = f"{r.vision_tokens}{'*' if r.vision_tokens_extrapolated else ''}"
        lines.append(
            f"{r.rung:<7} {r.size:>5} {r.char_accuracy:>8.3f} {r.char_accuracy_min:>6.3f} {r.bag_recall:>6.3f} "
            f"{r.text_tokens:>8.0f} {vis:>8} {r.compression:>5.1f}x {r.seconds_per_page:>7.2f}"
        )
    if any(r.vision_tokens_extrapolated for r in curve.rows):
        lines.append(
            "* below Tiny DeepSeek-OCR has no mode: vision tokens extrapolated (64 px per token side)"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``optical-memory bench`` without a benchmark: print the list of benchmarks."""
    print(args.bench_help(), file=sys.stderr)
    return 2


def run_forgetting(args: argparse.Namespace) -> int:
    """Measure and print the forgetting curve; write JSON and a plot when asked."""
    from optical_memory.cli.files import write_json
    from optical_memory.cli.progress import progress
    from optical_memory.conversation import load_conversation
    from optical_memory.recall.forgetting import forgetting_curve, render_pages

    turns = load_conversation(args.input)
    pages = render_pages(turns, limit_pages=args.limit_pages)
    reader = reader_from_args(args)
    curve = forgetting_curve(pages, reader, progress=progress)
    print(format_curve(curve))
    if args.out is not None:
        write_json(args.out, {"input": str(args.input), **curve.to_dict()})
        print(f"wrote {args.out}", file=sys.stderr)
    if args.plot is not None:
        from optical_memory.recall.plot import save_curve

        save_curve(curve, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
