"""``optical-memory bench``: measurements a user can run on their own conversations and providers.

``optical-memory bench forgetting INPUT --reader NAME [--out curve.json] [--plot curve.png]
[--limit-pages N]`` renders the conversation, reads every page back at each rung (and at 384 and 256 px
below Tiny) and prints the forgetting curve: character accuracy, bag-of-characters recall, text and vision
tokens, compression and seconds per page. The curve always names its reader.

``optical-memory bench legibility --provider P [--profile NAME|FILE] [--reader rapidocr | --reader endpoint
--base-url URL --model M] [--pages N] [--out report.json] [--write-profile FILE]`` renders needle pages
with P's render profile, takes them down every rung, applies P's own resize, reads them back and reports
character accuracy and exact needles per rung (see :mod:`optical_memory.recall.legibility`);
``--write-profile`` saves a calibrated profile a memory can load (``profile="FILE"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optical_memory.cli.recall import add_reader_arguments, reader_from_args

__all__ = ["format_curve", "format_legibility", "register", "run", "run_forgetting", "run_legibility"]


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
    legibility = benches.add_parser(
        "legibility",
        help="read needle pages back at every rung of a provider's profile, after its own resize",
        description="Render pages with planted numbers, hex ids, URLs, Chinese and code using the provider's "
        "render profile, take them down every rung, apply the provider's resize, read them back, report per rung.",
    )
    legibility.add_argument(
        "--provider", required=True, metavar="NAME", help="e.g. anthropic:claude-sonnet-4-5"
    )
    legibility.add_argument(
        "--profile", metavar="NAME|FILE", help="measure this profile instead of the provider's"
    )
    legibility.add_argument("--pages", type=int, default=2, help="pages read per rung (default 2)")
    legibility.add_argument("--out", type=Path, help="write the report as JSON here")
    legibility.add_argument(
        "--write-profile", type=Path, metavar="FILE", help="calibrate and save the profile as JSON here"
    )
    add_reader_arguments(legibility, default="rapidocr")
    legibility.set_defaults(run=run_legibility)
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
    from optical_memory.cli.files import save_image, write_json
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
        from optical_memory.recall.plot import draw_curve

        save_image(args.plot, draw_curve(curve))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def format_legibility(report: Any) -> str:
    """A legibility report as a plain-text table."""
    head = f"{'rung':<7} {'size':>10} {'served':>10} {'detail':>7} {'cost':>6} {'char acc':>8} {'exact':>6}  needles found/planted"
    lines = [
        f"legibility of {report.profile['name']} on {report.provider} ({report.pages} pages)",
        report.note,
        head,
    ]
    for r in report.rows:
        found = " ".join(f"{k} {v[0]}/{v[1]}" for k, v in r.needles.items())
        lines.append(
            f"{r.rung:<7} {f'{r.width}x{r.height}':>10} {f'{r.served[0]}x{r.served[1]}':>10} {r.detail or '-':>7} "
            f"{r.cost:>6} {r.char_accuracy:>8.3f} {r.exact:>6.2f}  {found}"
        )
    return "\n".join(lines)


def run_legibility(args: argparse.Namespace) -> int:
    """Measure (and with ``--write-profile`` calibrate) a provider's render profile."""
    from optical_memory.cli.files import write_json
    from optical_memory.cli.progress import progress
    from optical_memory.config import as_config
    from optical_memory.pricing.providers import get_provider
    from optical_memory.recall.legibility import TRANSCRIBE, calibrate, measure

    provider = get_provider(args.provider)
    profile = as_config({"provider": provider.name, "profile": args.profile}).render_profile()
    if args.reader == "endpoint" and args.prompt is None:
        args.prompt = TRANSCRIBE
    reader = reader_from_args(args)
    if args.write_profile is None:
        report = measure(profile, provider, reader, pages=args.pages, progress=progress)
    else:
        calibrated, report = calibrate(profile, provider, reader, pages=args.pages, progress=progress)
        write_json(args.write_profile, calibrated.to_dict())
        print(f"wrote {args.write_profile}: profile {calibrated.describe()}", file=sys.stderr)
    print(format_legibility(report))
    if args.out is not None:
        write_json(args.out, report.to_dict())
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
