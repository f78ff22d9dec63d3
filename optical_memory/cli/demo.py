"""``optical-memory demo``: the main job on the bundled sample conversation, with nothing to download.

Adds the sample (an English and Chinese coding session with code blocks, shipped as
``optical_memory/data/sample_conversation.json``) to an in-memory :class:`OpticalMemory` with the default
settings, prints what the context costs on DeepSeek-OCR and a few hosted providers (with and without a
budget), and writes the contact sheet and the context JSON into ``--out`` (default
``./optical-memory-demo``). No GPU, weights or network are involved: pages are rendered with the bundled
fonts and priced with each provider's published image formula.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SAMPLE = "sample_conversation.json"
PROVIDERS = ("deepseek-ocr", "openai:gpt-4o", "anthropic:claude-sonnet-4-5", "gemini:gemini-2.0-flash")
"""Providers the demo table prices the same memory for."""

BUDGETS = {"deepseek-ocr": 3_500, "openai:gpt-4o": 5_000}
"""Extra rows: the same provider under a token budget."""


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
    from optical_memory.cli.compress import add_turns, usage_table, write_context
    from optical_memory.cli.show import save_sheet
    from optical_memory.memory import OpticalMemory
    from optical_memory.providers import get_provider
    from optical_memory.sheet import contact_sheet

    start = time.monotonic()
    main = get_provider(args.provider).name
    out = Path(args.out)
    turns = sample_turns()
    providers = [main, *(p for p in PROVIDERS if p != main)]
    with OpticalMemory({"provider": main}) as memory:
        add_turns(memory, turns)
        rows: list[tuple[str, int | None, Any]] = []
        for name in providers:
            rows.append((name, None, memory.context(provider=name).usage))
            if name in BUDGETS:
                rows.append((name, BUDGETS[name], memory.context(provider=name, budget=BUDGETS[name]).usage))
        write_context(out / "context.json", memory.context(provider=main))
        save_sheet(contact_sheet(memory, provider=main), out / "sheet.png")
        pages = len(memory.pages())
    print(
        f"optical-memory demo: {len(turns)} turns of a bundled English/Chinese coding session -> {pages} pages"
    )
    print()
    print(usage_table(rows, turns=len(turns)))
    print()
    print(f"contact sheet: {out / 'sheet.png'}")
    print(f"context ({main}): {out / 'context.json'}")
    print(f"done in {time.monotonic() - start:.1f} s")
    return 0
