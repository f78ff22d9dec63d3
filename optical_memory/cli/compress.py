"""``optical-memory compress INPUT``: the main job -- a conversation in, a priced context out.

Reads a conversation (the same forms as ``render``), adds its turns to an :class:`OpticalMemory` (in RAM,
or a session in a SQLite file with ``--db``), and asks for the context for one provider. Writes
``{"provider", "format", "system", "messages", "usage"}`` as JSON with ``--out`` (images as base64 in
the provider's format; the ``hf`` format's PIL images become PNG data URLs), each page at its current
rung with ``--pages DIR`` (plus ``pages.json``), and prints a short table: turns, pages per rung,
history text tokens, context tokens, ratio. The helpers here are shared with ``demo``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optical_memory.config import Budget
    from optical_memory.context import Context, Usage
    from optical_memory.memory import OpticalMemory
    from optical_memory.types import Turn

RUNG_LETTERS = "L/B/S/T/F"


def register(subparsers: Any) -> None:
    """Add the ``compress`` command."""
    from optical_memory.formats import FORMATS

    parser = subparsers.add_parser(
        "compress",
        help="turn a conversation into a context that fits a provider's budget",
        description="Add a conversation's turns to an optical memory and write the context for one "
        "provider: recent turns as text, older turns as page images fading down the ladder.",
    )
    parser.add_argument("input", metavar="INPUT", help="conversation file (JSON, JSONL or ShareGPT)")
    parser.add_argument(
        "--provider",
        default="deepseek-ocr",
        metavar="NAME",
        help="target provider, e.g. deepseek-ocr, openai:gpt-4o, anthropic:claude-sonnet-4-5, "
        "gemini:gemini-2.0-flash (default deepseek-ocr)",
    )
    parser.add_argument(
        "--budget",
        default="window",
        metavar="N|window|none",
        help="most tokens the context may cost: a number, 'window' (half the model's window, the default) "
        "or 'none'",
    )
    parser.add_argument("--profile", metavar="NAME|FILE", help="render profile (default: the provider's)")
    parser.add_argument("--recent", type=int, metavar="N", help="newest turns kept as text (default 8)")
    parser.add_argument("--format", choices=FORMATS, help="message format (default: the provider's)")
    parser.add_argument("--keep-text", action="store_true", help="keep paged turns' text in the store too")
    parser.add_argument("--out", metavar="FILE", help="write the context as JSON to FILE")
    parser.add_argument("--pages", metavar="DIR", help="write each page at its current rung into DIR")
    parser.add_argument("--db", metavar="FILE", help="keep the memory in this SQLite file")
    parser.add_argument("--session", metavar="NAME", help="session name in --db (default 'default')")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compress ``args.input``; returns the exit status."""
    from optical_memory.config import as_config
    from optical_memory.conversation import load_conversation
    from optical_memory.errors import ConfigError
    from optical_memory.pricing.providers import get_provider

    if args.session is not None and args.db is None:
        raise ConfigError("--session names a session in a store file: give --db FILE too")
    provider = get_provider(args.provider).name
    budget = parse_budget(args.budget)
    settings: dict[str, Any] = {"provider": provider, "keep_text": args.keep_text, "profile": args.profile}
    if args.recent is not None:
        settings["recent_turns"] = args.recent
    config = as_config(settings)
    turns = load_conversation(args.input)
    memory = open_memory(args.db, args.session or "default", config)
    with memory:
        add_turns(memory, turns)
        context = memory.context(provider=provider, budget=budget, format=args.format)
        if args.out:
            write_context(Path(args.out), context)
        if args.pages:
            write_pages(memory, Path(args.pages))
    print(usage_table([(provider, context.usage)], turns=len(turns)))
    for label, target in (("context", args.out), ("pages", args.pages), ("store", args.db)):
        if target:
            print(f"{label}: {target}")
    return 0


def parse_budget(value: str) -> Budget:
    """The ``--budget`` value: a positive number of tokens, ``window``, or ``none`` (no bound).

    Raises:
        ConfigError: For anything else.
    """
    from optical_memory.errors import ConfigError

    word = value.strip().lower()
    if word == "window":
        return "window"
    if word == "none":
        return None
    try:
        tokens = int(word)
    except ValueError:
        tokens = 0
    if tokens < 1:
        raise ConfigError(f"--budget must be a positive number of tokens, 'window' or 'none'; got {value!r}")
    return tokens


def open_memory(db: str | None, session: str, config: Any) -> OpticalMemory:
    """A fresh memory in RAM, or a new (or empty) session in a SQLite file.

    Raises:
        InputError: If the session already holds turns (compressing again would repeat them).
        StoreError: If the file is not a store.
    """
    from optical_memory.errors import InputError
    from optical_memory.memory import OpticalMemory

    if db is None:
        return OpticalMemory(config)
    existing = OpticalMemory.open(db, session=session)
    held = len(existing)
    existing.close()
    if held:
        raise InputError(
            f"session {session!r} in {db} already holds {held} turns; compressing would add them again: "
            "use another --session or a new --db file"
        )
    return OpticalMemory.open(db, session=session, config=config)


def add_turns(memory: OpticalMemory, turns: Sequence[Turn]) -> None:
    """Add turns in order, with a progress bar on long inputs."""
    from optical_memory.cli.progress import progress

    for turn in progress(turns, total=len(turns), label="compress"):
        memory.add(turn)


def context_json(context: Context) -> dict[str, Any]:
    """The JSON document ``--out`` writes for a context (PIL images as PNG data URLs)."""
    from optical_memory.formats import jsonable

    return {
        "provider": context.provider,
        "format": context.format,
        "system": context.system,
        "messages": jsonable(context.messages),
        "usage": context.usage.to_dict(),
    }


def write_context(path: Path, context: Context) -> None:
    """Write a context as JSON.

    Raises:
        InputError: If the file cannot be written.
    """
    from optical_memory.cli.files import write_json

    write_json(path, context_json(context))


def write_pages(memory: OpticalMemory, folder: Path) -> list[dict[str, Any]]:
    """Write every page at its current rung as ``page-00000.png`` plus ``pages.json``; return the entries.

    An entry gives the page's rung, size, turns, pin, its image's cost in the memory's provider's tokens,
    its text tokens and its fill (text tokens over what a page of plain prose holds). Forgotten pages have
    no image: they are listed with ``"file": null``.

    Raises:
        InputError: If the folder cannot be written.
    """
    from optical_memory.cli.files import make_folder, save_image, write_listing
    from optical_memory.ladder import Rung

    entries: list[dict[str, Any]] = []
    make_folder(folder)
    for info in memory.pages():
        entry: dict[str, Any] = {
            "page_id": info.page_id,
            "file": None,
            "rung": info.rung.value,
            "width": info.width or None,
            "height": info.height or None,
            "turns": list(info.turns),
            "sealed": info.sealed,
            "pinned": info.pinned.value if info.pinned is not None else None,
            "cost": info.cost,
            "text_tokens": info.text_tokens,
            "fill": round(info.fill, 3),
            "exact": [{"kind": kind, "text": text, "role": role} for kind, text, role in info.exact],
            "masked": info.masked,
        }
        if info.rung is not Rung.FORGOTTEN:
            image = memory.page_image(info.page_id)
            name = f"page-{info.page_id:05d}.png"
            save_image(folder / name, image)
            entry["file"] = name
        entries.append(entry)
    write_listing(folder / "pages.json", entries)
    return entries


def usage_table(rows: Sequence[tuple[str, Usage]], *, turns: int) -> str:
    """A plain-text table, one row per (provider, usage): what the CLI prints."""
    from optical_memory.ladder import ORDER

    header = (
        "provider",
        "budget",
        "turns",
        f"pages {RUNG_LETTERS}",
        "as text",
        "history text tok",
        "context tok",
        "= text + images",
        "ratio",
    )
    lines = [header]
    for provider, usage in rows:
        per_rung = "/".join(str(usage.pages_per_rung.get(rung.value, 0)) for rung in ORDER)
        lines.append(
            (
                provider,
                "-" if usage.budget is None else f"{usage.budget:,}",
                f"{turns:,}",
                per_rung,
                str(usage.pages_as_text),
                f"{usage.history_text_tokens:,}",
                f"{usage.context_tokens:,}",
                f"{usage.text_tokens:,} + {usage.image_tokens:,}",
                f"{usage.ratio:.2f}x",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append(
        "tokens are each provider's own; pages L/B/S/T/F are images per rung (F: forgotten); as text: pages "
        "sent as their turns' text because that was cheaper; ratio = history text / context"
    )
    return "\n".join(out)
