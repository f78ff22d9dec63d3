"""``optical-memory render INPUT --out DIR``: draw a conversation file as page images.

Writes ``DIR/page-00000.png`` ... with ``page-00000.txt`` beside each (exactly the text drawn on it) and
``DIR/pages.json``: one entry per page with ``file``, ``rung``, ``size``, ``turns`` (``[turn, start, end]``
character ranges), ``text_tokens`` and ``missing_glyphs``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``render`` command."""
    parser = subparsers.add_parser(
        "render",
        help="draw a conversation file as page images",
        description="Render a conversation (JSON list of messages, {'messages': ...}, JSONL or ShareGPT) "
        "into square grayscale page images, with the text and token count of each page.",
    )
    parser.add_argument("input", metavar="INPUT", help="conversation file")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the pages into")
    parser.add_argument("--size", type=int, default=1280, help="page side in pixels (default 1280, Large)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render ``args.input`` into ``args.out``; returns the exit status."""
    from optical_memory.cli.files import make_folder
    from optical_memory.cli.progress import progress
    from optical_memory.conversation import load_conversation
    from optical_memory.images import encode_png
    from optical_memory.ladder import rung_for_size
    from optical_memory.renderers import ChatRenderer, RenderStyle

    turns = load_conversation(args.input)
    style = RenderStyle.for_size(args.size)
    out = Path(args.out)
    make_folder(out)
    rung = rung_for_size(style.size)
    entries: list[dict[str, Any]] = []
    chars = sum(len(t.content) for t in turns)
    estimate = max(1, chars // 4000) if chars > 40_000 else None
    pages = ChatRenderer(style).iter_pages(turns)
    for number, page in enumerate(progress(pages, total=estimate, label="render")):
        name = f"page-{number:05d}"
        (out / f"{name}.png").write_bytes(encode_png(page.image))
        (out / f"{name}.txt").write_text(page.text, encoding="utf-8")
        entries.append(
            {
                "file": f"{name}.png",
                "rung": rung.value if rung is not None else None,
                "size": page.size,
                "turns": [[s.turn, s.start, s.end] for s in page.spans],
                "text_tokens": page.text_tokens,
                "missing_glyphs": page.missing_glyphs,
            }
        )
    listing = ",\n ".join(json.dumps(e, ensure_ascii=False) for e in entries)
    (out / "pages.json").write_text(f"[{listing}]\n" if entries else "[]\n", encoding="utf-8")
    tokens = sum(e["text_tokens"] for e in entries)
    missing = sum(e["missing_glyphs"] for e in entries)
    print(
        f"rendered {len(turns)} turns into {len(entries)} pages of {style.size} px in {out} "
        f"({tokens:,} text tokens; {missing} missing glyphs)",
        file=sys.stdout,
    )
    return 0
