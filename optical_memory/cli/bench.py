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

``optical-memory bench needles INPUT [--needles 20] [--seed 0] [--limit-turns N] [--provider P ...]
[--reader NAME | --no-read] [--out runs.json] [--plot runs.png]`` plants exact values in the conversation,
replays it with each provider's defaults and reports per needle age and rung whether each is in the context
exactly, read from its page image by the reader, and found by search in the top 3, against plain truncation
at the same number of tokens (see :mod:`optical_memory.recall.needles`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optical_memory.cli.recall import add_reader_arguments, reader_from_args
from optical_memory.errors import InputError

__all__ = [
    "format_curve",
    "format_legibility",
    "format_needles",
    "register",
    "run",
    "run_forgetting",
    "run_legibility",
    "run_needles",
]


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
    needles = benches.add_parser(
        "needles",
        help="plant exact values in a conversation, replay it, report what the context, search and OCR keep",
        description="Plant needles (ids, numbers with units, URLs, hashes, code names) in INPUT, replay it with "
        "each provider's defaults, and report per needle age and rung whether each is in the context exactly, "
        "read from its page by --reader, and found by search in the top 3, against truncation at equal tokens.",
    )
    needles.add_argument("input", type=Path, help="conversation file (JSON, JSONL or ShareGPT)")
    needles.add_argument("--needles", type=int, default=20, help="needles to plant (1-20, default 20)")
    needles.add_argument("--seed", type=int, default=0, help="where and what to plant (default 0)")
    needles.add_argument("--limit-turns", type=int, help="replay only the first N turns of INPUT")
    needles.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help=f"a provider to replay with (repeatable; default {', '.join(NEEDLE_PROVIDERS)})",
    )
    needles.add_argument("--no-read", action="store_true", help="do not read needle pages with the reader")
    needles.add_argument("--out", type=Path, help="write the runs as JSON here")
    needles.add_argument("--plot", type=Path, help="draw the runs as a PNG here")
    add_reader_arguments(needles, default="rapidocr")
    needles.set_defaults(run=run_needles)
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


NEEDLE_PROVIDERS = ("deepseek-ocr", "openai:gpt-4o", "anthropic:claude-sonnet-4-5")
"""The providers ``bench needles`` replays with by default."""


def format_needles(run: Any) -> str:
    """One needle run as a plain-text table: totals, then per age bucket and per rung."""
    from optical_memory.recall.needles import age_bucket

    s = run.summary()
    read = f"{s['read_by_reader']}/{s['read_tried']} read by {run.reader}" if run.reader else "not read"
    lines = [
        f"{run.provider}: {run.turns} turns, context {run.context_tokens:,} tokens for {run.history_tokens:,} "
        f"of history; truncation at the same tokens keeps the last {run.truncation_turns} turns",
        f"  in context {s['in_context']}/{s['needles']} (exact on shown pages {s['exact_on_shown_pages']}/"
        f"{s['on_shown_pages']}), truncation {s['truncation']}/{s['needles']} (spending the whole budget "
        f"{_budget(run.budget)}: {s['truncation_at_budget']}), search top 3 "
        f"{s['found_top3']}/{s['paged']}, {read}",
        f"  {'group':<16} {'n':>3} {'context':>8} {'read':>6} {'search':>7} {'trunc':>6}",
    ]
    groups: dict[str, list[Any]] = {}
    for r in sorted(run.results, key=lambda r: r.age):
        groups.setdefault(f"age {age_bucket(r.age)}", []).append(r)
    for r in run.results:
        groups.setdefault(f"rung {r.rung or r.where}", []).append(r)

    def count(rows: list[Any], attr: str) -> str:
        known = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return f"{sum(known)}/{len(known)}" if known else "-"

    for name, rows in groups.items():
        lines.append(
            f"  {name:<16} {len(rows):>3} {count(rows, 'in_context'):>8} {count(rows, 'read'):>6} "
            f"{count(rows, 'found'):>7} {count(rows, 'truncation'):>6}"
        )
    return "\n".join(lines)


def _budget(budget: int | None) -> str:
    return "unbounded" if budget is None else f"{budget:,}"


def run_needles(args: argparse.Namespace) -> int:
    """Plant needles, replay per provider, print the tables; write JSON and a plot when asked."""
    from optical_memory.cli.files import save_image, write_json
    from optical_memory.conversation import load_conversation
    from optical_memory.recall.needles import measure, plant

    turns = load_conversation(args.input)
    if args.limit_turns is not None:
        turns = turns[: args.limit_turns]
    try:
        planted, needles = plant(turns, args.needles, seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    reader = None if args.no_read else reader_from_args(args)
    runs = []
    for provider in args.provider or NEEDLE_PROVIDERS:
        run = measure(
            planted, needles, provider, reader=reader, progress=lambda note: print(note, file=sys.stderr)
        )
        print(format_needles(run))
        runs.append(run)
    if args.out is not None:
        body = {"input": str(args.input), "seed": args.seed, "runs": [r.to_dict() for r in runs]}
        write_json(args.out, body)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.plot is not None:
        from optical_memory.recall.needle_plot import draw_needles

        save_image(args.plot, draw_needles(runs))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
