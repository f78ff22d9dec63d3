"""Draw a forgetting curve as a PNG with Pillow (no matplotlib).

x is compression (text tokens per vision token), y is character accuracy. The measured curve is drawn as a
line through one labelled point per level; DeepSeek-OCR's published Fox figures (paper Table 2: Tiny and
Small precision by text-token bucket) are drawn beside it as hollow markers for reference. The title names
the reader and the caption says what it measures: a classical OCR's curve shows pixel loss, not
DeepSeek-OCR's token bottleneck, and Fox "precision" is not the same edit measure as character accuracy,
so the comparison is of shapes.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from optical_memory.errors import InputError
from optical_memory.recall.forgetting import FOX, ForgettingCurve

__all__ = ["draw_curve", "save_curve"]

WIDTH, HEIGHT = 960, 640
LEFT, RIGHT, TOP, BOTTOM = 80, 210, 90, 100
CURVE = (200, 40, 40)
FOX_TINY = (40, 90, 200)
FOX_SMALL = (30, 150, 80)
GRID = (225, 225, 225)
INK = (20, 20, 20)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _bounds(curve: ForgettingCurve) -> tuple[float, float, float]:
    xs = [r.compression for r in curve.rows] + [f.tiny_compression for f in FOX]
    ys = [r.char_accuracy for r in curve.rows] + [f.tiny_precision for f in FOX]
    x_max = max(5.0, math.ceil(max(xs) * 1.08 / 5) * 5)
    y_min = min(0.5, math.floor(min(ys) * 10) / 10)
    return x_max, max(0.0, y_min), 1.0


def draw_curve(curve: ForgettingCurve) -> Image.Image:
    """The plot as an RGB image."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    x_max, y_min, y_max = _bounds(curve)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP

    def at(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x1 - x0) * x / x_max, y0 - (y0 - y1) * (y - y_min) / (y_max - y_min))

    small, body = _font(13), _font(15)
    for i in range(round((y_max - y_min) * 10) + 1):  # horizontal grid every 10 points
        y = y_min + i / 10
        d.line([at(0, y), at(x_max, y)], fill=GRID)
        d.text((x0 - 8, at(0, y)[1]), f"{y * 100:.0f}%", fill=INK, font=small, anchor="rm")
    step = 5 if x_max > 10 else 1
    for x in range(0, int(x_max) + 1, step):
        d.line([at(x, y_min), at(x, y_max)], fill=GRID)
        d.text((at(x, y_min)[0], y0 + 8), f"{x}x", fill=INK, font=small, anchor="mt")
    d.rectangle([x0, y1, x1, y0], outline=INK)
    d.text(
        ((x0 + x1) / 2, y0 + 30),
        "compression: text tokens per vision token",
        fill=INK,
        font=body,
        anchor="mt",
    )
    d.text((16, (y0 + y1) / 2), "char\naccuracy", fill=INK, font=small, anchor="lm")

    for color, pts, shape in (
        (FOX_TINY, [(f.tiny_compression, f.tiny_precision) for f in FOX], "square"),
        (FOX_SMALL, [(f.small_compression, f.small_precision) for f in FOX], "triangle"),
    ):
        for fx, fy in pts:
            _marker(d, at(fx, fy), shape, color)

    points = sorted((r.compression, r.char_accuracy, r.rung) for r in curve.rows)
    d.line([at(px, py) for px, py, _ in points], fill=CURVE, width=3)
    for i, (px, py, name) in enumerate(points):
        cx, cy = at(px, py)
        d.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=CURVE)
        # alternate labels above and below the line so neighbouring points stay readable
        d.text((cx + 6, cy - 8 if i % 2 == 0 else cy + 20), name, fill=CURVE, font=small, anchor="ls")

    lx, ly = x1 + 16, y1 + 4
    for color, shape, label in (
        (CURVE, "dot", f"measured: {curve.reader}"),
        (INK, "", "DeepSeek-OCR paper:"),
        (FOX_TINY, "square", "Fox, Tiny (64 tok)"),
        (FOX_SMALL, "triangle", "Fox, Small (100 tok)"),
    ):
        if shape == "dot":
            d.ellipse([lx, ly + 2, lx + 10, ly + 12], fill=color)
        elif not shape:  # a heading
            d.text((lx, ly + 12), label, fill=color, font=small, anchor="lm")
            ly += 24
            continue
        else:
            _marker(d, (lx + 5, ly + 7), shape, color)
        d.text((lx + 16, ly + 7), label, fill=INK, font=small, anchor="lm")
        ly += 24

    title = f"Forgetting curve, reader: {curve.reader} ({curve.pages} page{'s' if curve.pages != 1 else ''})"
    d.text((x0, 24), title, fill=INK, font=_font(20))
    d.text((x0, 54), curve.note, fill=INK, font=small)
    caption = (
        "Text tokens: o200k_base. Below Tiny (384 / 256 px) the vision tokens are extrapolated.\n"
        "Fox: DeepSeek-OCR paper Table 2, precision per text-token bucket (a different edit measure): "
        "compare shapes, not decimals."
    )
    d.multiline_text((x0, HEIGHT - 36), caption, fill=(90, 90, 90), font=_font(12), spacing=4)
    return img


def _marker(
    d: ImageDraw.ImageDraw, centre: tuple[float, float], shape: str, color: tuple[int, int, int]
) -> None:
    cx, cy = centre
    if shape == "square":
        d.rectangle([cx - 5, cy - 5, cx + 5, cy + 5], outline=color, width=2)
    else:
        d.polygon([(cx, cy - 6), (cx - 6, cy + 5), (cx + 6, cy + 5)], outline=color, width=2)


def save_curve(curve: ForgettingCurve, path: str | Path) -> Path:
    """Draw the curve and write it as a PNG (creating its folder); returns the path.

    Raises:
        InputError: If the file or its folder cannot be written.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        draw_curve(curve).save(out, format="PNG")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
