"""Draw needle-benchmark runs as a PNG with Pillow: one panel per provider, one group of bars per needle age.

Each group shows the share of that age's needles that are in the context exactly (optical memory), found
by search in the top 3, read from the page image by the offline reader, and kept by plain truncation at
the same number of tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from optical_memory.recall.needles import NeedleRun, age_bucket

__all__ = ["draw_needles"]

PANEL_W, PANEL_H = 960, 300
LEFT, TOP, BOTTOM = 70, 60, 50
SERIES = (
    ("in context", (200, 40, 40)),
    ("search top 3", (40, 90, 200)),
    ("read (OCR)", (30, 150, 80)),
    ("truncation", (150, 150, 150)),
)
INK, GRID = (20, 20, 20), (225, 225, 225)


def _shares(run: NeedleRun) -> dict[str, tuple[int, list[float | None]]]:
    """Per age bucket: the needle count, and each series' share (None where the series has no data)."""
    out: dict[str, tuple[int, list[float | None]]] = {}
    buckets: dict[str, list[list[bool | None]]] = {}
    for r in sorted(run.results, key=lambda r: r.age):
        buckets.setdefault(age_bucket(r.age), []).append([r.in_context, r.found, r.read, r.truncation])
    for name, rows in buckets.items():
        shares: list[float | None] = []
        for i in range(len(SERIES)):
            known = [v for v in (row[i] for row in rows) if v is not None]
            shares.append(sum(known) / len(known) if known else None)
        out[name] = (len(rows), shares)
    return out


def draw_needles(runs: Sequence[NeedleRun]) -> Image.Image:
    """The runs as one RGB image, a panel per run."""
    img = Image.new("RGB", (PANEL_W, PANEL_H * len(runs)), "white")
    d = ImageDraw.Draw(img)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=12)
    for p, run in enumerate(runs):
        top = p * PANEL_H
        y0, y1, x0, x1 = top + PANEL_H - BOTTOM, top + TOP, LEFT, PANEL_W - 20
        s = run.summary()
        title = (
            f"{run.provider}: {s['in_context']}/{s['needles']} needles in a context of {run.context_tokens:,} "
            f"tokens; truncation at the same tokens keeps {s['truncation']}"
        )
        d.text((x0, top + 12), title, fill=INK, font=font)
        for i in range(6):
            y = y0 - (y0 - y1) * i / 5
            d.line([(x0, y), (x1, y)], fill=GRID)
            d.text((x0 - 8, y), f"{i * 20}%", fill=INK, font=small, anchor="rm")
        groups = _shares(run)
        width = (x1 - x0) / max(1, len(groups))
        bar = width / (len(SERIES) + 1.5)
        for g, (name, (count, shares)) in enumerate(groups.items()):
            gx = x0 + g * width + bar * 0.75
            for i, share in enumerate(shares):
                if share is None:
                    continue
                bx = gx + i * bar
                d.rectangle([bx, y0 - (y0 - y1) * share, bx + bar - 2, y0], fill=SERIES[i][1])
            d.text(
                (x0 + g * width + width / 2, y0 + 8),
                f"age {name} ({count})",
                fill=INK,
                font=small,
                anchor="mt",
            )
        lx = x0
        for label, color in SERIES:
            d.rectangle([lx, top + 36, lx + 10, top + 46], fill=color)
            d.text((lx + 14, top + 41), label, fill=INK, font=small, anchor="lm")
            lx += 130
    return img
