"""``optical-memory render INPUT --out DIR``: draw a conversation file as page images.

Pages are drawn with the render profile of ``--provider`` (default DeepSeek-OCR's 1280 px Large page), or
of ``--profile``. Writes ``DIR/page-00000.png`` ... with ``page-00000.txt`` beside each (exactly the text
drawn on it) and ``DIR/pages.json``: one entry per page with ``file``, ``rung``, ``width``, ``height``,
``turns`` (``[turn, start, end]`` character ranges), ``text_tokens``, ``fill`` (text tokens over what a
page of plain prose holds) and ``missing_glyphs``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``render`` command."""
    parser = subparsers.add_parser(
        "render",
        help="draw a conversation file as page images",
        description="Render a conversation (JSON list of messages, {'messages': ...}, JSONL or ShareGPT) "
        "into grayscale page images at a provider's top rung, with the text and token count of each page.",
    )
    parser.add_argument("input", metavar="INPUT", help="conversation file")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the pages into")
    parser.add_argument(
        "--provider",
        default="deepseek-ocr",
        metavar="NAME",
        help="whose render profile to use (default deepseek-ocr)",
    )
    parser.add_argument("--profile", metavar="NAME|FILE", help="a render profile name or .json file instead")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render ``args.input`` into ``args.out``; returns the exit status."""
    from optical_memory.cli.files import make_folder, save_image, write_file, write_listing
    from optical_memory.cli.progress import progress
    from optical_memory.config import as_config
    from optical_memory.conversation import load_conversation
    from optical_memory.renderers import ChatRenderer
    from optical_memory.renderers.packer import page_capacity

    profile = as_config({"provider": args.provider, "profile": args.profile}).render_profile()
    style = profile.style()
    turns = load_conversation(args.input)
    out = Path(args.out)
    make_folder(out)
    capacity = page_capacity(style)
    entries: list[dict[str, Any]] = []
    chars = sum(len(t.content) for t in turns)
    estimate = max(1, chars // 4000) if chars > 40_000 else None
    pages = ChatRenderer(style).iter_pages(turns)
    for number, page in enumerate(progress(pages, total=estimate, label="render")):
        name = f"page-{number:05d}"
        save_image(out / f"{name}.png", page.image)
        write_file(out / f"{name}.txt", page.text)
        entries.append(
            {
                "file": f"{name}.png",
                "rung": profile.top.value,
                "width": page.image.width,
                "height": page.image.height,
                "turns": [[s.turn, s.start, s.end] for s in page.spans],
                "text_tokens": page.text_tokens,
                "fill": round(page.text_tokens / capacity, 3),
                "missing_glyphs": page.missing_glyphs,
            }
        )
    write_listing(out / "pages.json", entries)
    tokens = sum(e["text_tokens"] for e in entries)
    missing = sum(e["missing_glyphs"] for e in entries)
    fills = sorted(e["fill"] for e in entries)
    median = fills[len(fills) // 2] if fills else 0.0
    print(
        f"rendered {len(turns)} turns into {len(entries)} pages of {style.width}x{style.height} px "
        f"(profile {profile.name}) in {out} ({tokens:,} text tokens; median fill {median:.0%}; "
        f"{missing} missing glyphs)",
        file=sys.stdout,
    )
    return 0
