"""The contact sheet: one picture of what a memory remembers, and how sharply.

Every page is drawn in order (oldest first, left to right, wrapping into rows) at its current rung and
at its true relative size: a page stored at 512 px is drawn at 512/1280 of the side of a Large page, from
its stored (downsampled) pixels, so fading is visible both as size and as blur. Each page carries a
label (page id, turns, rung, cost in the chosen provider's tokens, fill) and a coloured frame per rung;
forgotten pages appear as empty dashed frames, the open (still filling) page is marked ``open``, pinned
pages ``pinned``. A title line gives the session's totals and a legend the rung colours and, for a
memory, its render profile's size at each rung.

:func:`draw_sheet` draws from plain :class:`SheetPage` values (no memory needed, easy to test);
:func:`contact_sheet` collects them from an :class:`~optical_memory.memory.OpticalMemory`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from optical_memory.errors import ConfigError, PageNotFoundError
from optical_memory.ladder import Rung
from optical_memory.pricing.providers import get_provider
from optical_memory.renderers.fontchain import load_font

if TYPE_CHECKING:
    from optical_memory.memory import OpticalMemory

RUNG_COLOURS: dict[Rung, tuple[int, int, int]] = {
    Rung.LARGE: (27, 120, 55),
    Rung.BASE: (33, 102, 172),
    Rung.SMALL: (230, 140, 20),
    Rung.TINY: (200, 40, 40),
    Rung.FORGOTTEN: (150, 150, 150),
}
"""Frame colour of each rung on the sheet."""

BACKGROUND = (238, 238, 238)
INK = (20, 20, 20)
MUTED = (95, 95, 95)
FRAME = 4  # frame width in sheet pixels, at any scale
GAP = 24  # space between pages and rows
LABEL_PX = 18  # label font size
TITLE_PX = 26


@dataclass(frozen=True, slots=True)
class SheetPage:
    """One page as the sheet draws it.

    Attributes:
        page_id: The page's id.
        turns: First and last turn ids on the page.
        rung: Its rung (``forgotten`` draws an empty frame).
        cost: What the page costs in the sheet's provider's tokens at this rung (0 when forgotten).
        image: The page at its rung; None when forgotten.
        sealed: False for the open page.
        pinned: The rung it is pinned at, if any.
        fill: Its text tokens over what a page of plain prose holds (None: not shown).
    """

    page_id: int
    turns: tuple[int, int]
    rung: Rung
    cost: int
    image: Image.Image | None = field(default=None, repr=False, compare=False)
    sealed: bool = True
    pinned: Rung | None = None
    fill: float | None = None


def page_caption(page: SheetPage, unit: str = "tok") -> tuple[str, str]:
    """The two label lines under a page: ``page 3 · turns 10-14`` and ``small · 111 tok · fill 92%``."""
    first, last = page.turns
    span = f"turn {first}" if first == last else f"turns {first}-{last}"
    head = f"page {page.page_id} · {span}"
    tail = page.rung.value if page.rung is Rung.FORGOTTEN else f"{page.rung.value} · {page.cost:,} {unit}"
    if page.fill is not None:
        tail += f" · fill {page.fill:.0%}"
    marks = [m for m, on in (("open", not page.sealed), ("pinned", page.pinned is not None)) if on]
    if marks:
        tail += " · " + ", ".join(marks)
    return head, tail


_EMPTY = 256  # side of the frame a forgotten page is drawn as, in stored pixels


def _drawn_size(page: SheetPage, scale: float) -> tuple[int, int]:
    w, h = page.image.size if page.image is not None else (_EMPTY, _EMPTY)
    return max(8, round(w * scale)), max(8, round(h * scale))


def _layout(
    sizes: Sequence[tuple[int, int]], label_h: int, max_width: int
) -> tuple[list[tuple[int, int]], int, int]:
    """Top-left corners of page frames in a left-to-right flow, bottom-aligned per row."""
    rows: list[list[int]] = [[]]
    x = GAP
    for i, (side, _) in enumerate(sizes):
        w = side + 2 * FRAME
        if rows[-1] and x + w + GAP > max_width:
            rows.append([])
            x = GAP
        rows[-1].append(i)
        x += w + GAP
    corners: list[tuple[int, int]] = [(0, 0)] * len(sizes)
    y = 0
    width = 0
    for row in rows:
        row_h = max((sizes[i][1] + 2 * FRAME for i in row), default=0)
        x = GAP
        for i in row:
            w, h = sizes[i][0] + 2 * FRAME, sizes[i][1] + 2 * FRAME
            corners[i] = (x, y + row_h - h)
            x += w + GAP
        width = max(width, x)
        y += row_h + label_h + GAP
    return corners, width, y


def _dashed_rect(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colour: tuple[int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    dash = 12
    for x in range(x0, x1, 2 * dash):
        draw.line([(x, y0), (min(x + dash, x1), y0)], fill=colour, width=FRAME)
        draw.line([(x, y1), (min(x + dash, x1), y1)], fill=colour, width=FRAME)
    for y in range(y0, y1, 2 * dash):
        draw.line([(x0, y), (x0, min(y + dash, y1))], fill=colour, width=FRAME)
        draw.line([(x1, y), (x1, min(y + dash, y1))], fill=colour, width=FRAME)


def _legend(
    draw: ImageDraw.ImageDraw, y: int, font: ImageFont.FreeTypeFont, sizes: Mapping[Rung, str]
) -> None:
    x = GAP
    for rung, colour in RUNG_COLOURS.items():
        text = f"{rung.value} {sizes[rung]}" if rung in sizes else rung.value
        draw.rectangle([x, y + 2, x + 18, y + 20], outline=colour, width=FRAME)
        draw.text((x + 26, y), text, font=font, fill=INK)
        x += 26 + int(font.getlength(text)) + 28


def draw_sheet(
    pages: Sequence[SheetPage],
    *,
    title: str = "",
    subtitle: str = "",
    unit: str = "tok",
    scale: float = 0.5,
    max_width: int = 2400,
    rung_sizes: Mapping[Rung, str] | None = None,
) -> Image.Image:
    """Draw a contact sheet of pages, in the given order, at ``scale`` times their stored size.

    Args:
        pages: The pages, oldest first.
        title: A bold first line (e.g. the session and its totals).
        subtitle: A second line under the title.
        unit: The cost unit shown in labels (e.g. ``tok``).
        scale: Sheet pixels per stored page pixel (the same for every page, so sizes stay relative).
        max_width: Widest the sheet may be before rows wrap (a wider page still gets its own row).
        rung_sizes: What the legend says of each rung's size (e.g. ``{Rung.LARGE: "1092x1092"}``).

    Raises:
        ConfigError: If ``scale`` is not in (0, 1] or ``max_width`` is too small to be useful.
    """
    if not 0 < scale <= 1:
        raise ConfigError(f"sheet scale must be in (0, 1], got {scale}")
    if max_width < 200:
        raise ConfigError(f"sheet max_width must be at least 200 px, got {max_width}")
    label_font = load_font("NotoSans-Regular.ttf", LABEL_PX)
    title_font = load_font("NotoSans-Bold.ttf", TITLE_PX)
    label_h = 2 * (LABEL_PX + 6) + 4
    header_h = GAP + TITLE_PX + 10 + (LABEL_PX + 10 if subtitle else 0) + LABEL_PX + 8 + GAP
    sizes = [_drawn_size(p, scale) for p in pages]
    corners, body_w, body_h = _layout(sizes, label_h, max_width)
    text_w = max(
        int(title_font.getlength(title)) if title else 0,
        int(label_font.getlength(subtitle)) if subtitle else 0,
        720,  # the legend
    )
    width = max(body_w, text_w + 2 * GAP)
    sheet = Image.new("RGB", (width, header_h + body_h + (0 if pages else GAP)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = GAP
    if title:
        draw.text((GAP, y), title, font=title_font, fill=INK)
    y += TITLE_PX + 10
    if subtitle:
        draw.text((GAP, y), subtitle, font=label_font, fill=MUTED)
        y += LABEL_PX + 10
    _legend(draw, y, label_font, rung_sizes or {})
    for page, size, (x, top) in zip(pages, sizes, corners, strict=True):
        _draw_page(sheet, draw, page, size, x, header_h + top, label_font, unit)
    return sheet


def _draw_page(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    page: SheetPage,
    size: tuple[int, int],
    x: int,
    y: int,
    font: ImageFont.FreeTypeFont,
    unit: str,
) -> None:
    colour = RUNG_COLOURS[page.rung]
    outer_w, outer_h = size[0] + 2 * FRAME, size[1] + 2 * FRAME
    box = (x, y, x + outer_w - 1, y + outer_h - 1)
    if page.image is None:
        draw.rectangle(box, fill=(250, 250, 250))
        _dashed_rect(draw, box, colour)
    else:
        picture = page.image.convert("RGB")
        if picture.size != size:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        draw.rectangle(box, fill=colour)
        sheet.paste(picture, (x + FRAME, y + FRAME))
    head, tail = page_caption(page, unit)
    draw.text((x, y + outer_h + 4), head, font=font, fill=INK)
    draw.text((x, y + outer_h + 4 + LABEL_PX + 6), tail, font=font, fill=colour if page.image else MUTED)


def contact_sheet(
    memory: OpticalMemory,
    *,
    provider: str | None = None,
    scale: float = 0.5,
    max_width: int = 2400,
    title: str | None = None,
) -> Image.Image:
    """The contact sheet of a memory: every page (forgotten ones too) at its rung, with totals.

    Args:
        memory: The memory to draw.
        provider: Whose tokens the page costs and totals are given in (default: the memory's provider).
        scale: Sheet pixels per stored page pixel.
        max_width: Widest the sheet may be before rows wrap.
        title: The first line; by default the session name and its totals.

    Raises:
        ProviderError: For an unknown provider.
        ConfigError: For a bad ``scale`` or ``max_width``.
    """
    target = get_provider(provider or memory.config.provider)
    own = target.name == memory.config.provider
    entries = []
    for info in memory.pages():
        image = None
        if info.rung is not Rung.FORGOTTEN:
            try:
                image = memory.page_image(info.page_id)
            except PageNotFoundError:  # forgotten between the two calls
                image = None
        rung = info.rung if image is not None else Rung.FORGOTTEN
        cost = 0 if image is None else info.cost if own else target.image_tokens(image.width, image.height)
        entries.append(
            SheetPage(info.page_id, info.turns, rung, cost, image, info.sealed, info.pinned, info.fill)
        )
    usage = memory.context(provider=target.name, budget=None).usage
    counts = ", ".join(f"{name} {n}" for name, n in usage.pages_per_rung.items())
    if title is None:
        title = f"optical memory · session {memory.session!r} · {len(memory)} turns · {len(entries)} pages"
    subtitle = (
        f"{counts}, as text {usage.pages_as_text} · history {usage.history_text_tokens:,} text tokens -> "
        f"context {usage.context_tokens:,} {target.name} tokens (text {usage.text_tokens:,} + images "
        f"{usage.image_tokens:,}), ratio {usage.ratio:.2f}x · page costs are image tokens"
    )
    profile = memory.profile
    sizes = {r: f"{s.width}x{s.height}" for r, s in profile.rungs}
    return draw_sheet(
        entries, title=title, subtitle=subtitle, scale=scale, max_width=max_width, rung_sizes=sizes
    )
