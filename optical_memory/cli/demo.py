"""``optical-memory demo``: the main job on the bundled sample conversation, with nothing to download.

Adds the sample (an English and Chinese coding session with code blocks and a tool call, shipped as
``optical_memory/data/sample_conversation.json``) to one in-memory :class:`OpticalMemory` per provider,
each with the default settings for that provider (its render profile), prints what each context costs
without a budget (and a few with one), and writes the main provider's contact sheet and context JSON
into ``--out`` (default ``./optical-memory-demo``). No GPU, weights or network are involved: pages are
rendered with the bundled fonts and priced with each provider's published image formula.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SAMPLE = "sample_conversation.json"
PROVIDERS = (
    "deepseek-ocr",
    "openai:gpt-4o",
    "openai:gpt-5.2",
    "openai:gpt-4.1-mini",
    "anthropic:claude-sonnet-4-5",
    "gemini:gemini-2.0-flash",
    "gemini:gemini-3-pro",
    "qwen2.5-vl",
)
"""Providers the demo builds a memory for."""

BUDGETS = {"deepseek-ocr": 2_500, "openai:gpt-4o": 4_000}
"""Extra rows: the same memory under a token budget."""


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the main job on a bundled sample conversation (no GPU, weights or network)",
        description="Compress the bundled sample conversation, print what its context costs per provider, "
        "and write a contact sheet and the context JSON.",
    )
    parser.add_argument(
        "--out",
        default="optical-memory-demo",
        metavar="DIR",
        help="output folder (default ./optical-memory-demo)",
    )
    parser.add_argument(
        "--provider", default="deepseek-ocr", metavar="NAME", help="provider of context.json and the sheet"
    )
    parser.set_defaults(run=run)


def sample_turns() -> list[Any]:
    """The bundled sample conversation as turns."""
    from importlib import resources

    from optical_memory.conversation import turns_from_json

    text = resources.files("optical_memory.data").joinpath(SAMPLE).read_text(encoding="utf-8")
    return turns_from_json(json.loads(text), SAMPLE)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    from optical_memory.cli.compress import usage_table, write_context
    from optical_memory.cli.show import save_sheet
    from optical_memory.memory import OpticalMemory
    from optical_memory.pricing.providers import get_provider
    from optical_memory.sheet import contact_sheet

    start = time.monotonic()
    main = get_provider(args.provider).name
    out = Path(args.out)
    turns = sample_turns()
    providers = [main, *(p for p in PROVIDERS if p != main)]
    rows: list[tuple[str, Any]] = []
    for name in providers:
        with OpticalMemory({"provider": name}) as memory:
            for turn in turns:
                memory.add(turn)
            rows.append((name, memory.context(budget=None).usage))
            if name in BUDGETS:
                rows.append((name, memory.context(budget=BUDGETS[name]).usage))
            if name == main:
                write_context(out / "context.json", memory.context())
                save_sheet(contact_sheet(memory), out / "sheet.png")
                pages = len(memory.pages())
    print(
        f"optical-memory demo: {len(turns)} turns of a bundled English/Chinese coding session -> {pages} pages "
        f"({main}); one memory per provider, each with that provider's render profile"
    )
    print()
    print(usage_table(rows, turns=len(turns)))
    print()
    print(f"contact sheet: {out / 'sheet.png'}")
    print(f"context ({main}): {out / 'context.json'}")
    print(f"done in {time.monotonic() - start:.1f} s")
    return 0
