"""The forgetting curve: how much of a page a reader gets back at each rung of the ladder.

Render a conversation once at the top rung (1280 px), take every page down to each rung (Lanczos, as the
memory demotes pages: :func:`optical_memory.images.downsample`) and to two sizes below Tiny (384 and
256 px), read it back, and score the reading against the text drawn on the page
(:mod:`optical_memory.recall.metrics`). Per level the curve reports the mean character accuracy (and its
worst page), the bag-of-characters recall, text tokens per page (o200k_base, the renderer's count), vision
tokens, compression (text tokens / vision tokens) and the median seconds per page.

Vision tokens are DeepSeek-OCR's nominal counts (400 / 256 / 100 / 64; the paper's compression ratios use
these) with the sequence positions beside them (421 / 273 / 111 / 73). DeepSeek-OCR has no mode below Tiny:
for 384 and 256 px the counts are extrapolated from the same geometry (a 64 px cell per token: 36 and 16)
and flagged ``vision_tokens_extrapolated``.

The reader is part of the result: a classical OCR reading downsampled pixels measures pixel loss, not
DeepSeek-OCR's vision-token bottleneck. DeepSeek-OCR's published Fox figures (paper Table 2,
arXiv 2510.18234) are kept in :data:`FOX` for the plot (:mod:`.plot`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from optical_memory.errors import ConfigError, InputError
from optical_memory.images import downsample
from optical_memory.ladder import LADDER, Rung
from optical_memory.pricing.deepseek import view_positions, view_vision_tokens
from optical_memory.recall.base import RecallBackend
from optical_memory.recall.metrics import bag_recall, char_accuracy
from optical_memory.types import RenderedPage, Turn

__all__ = [
    "FOX",
    "LEVELS",
    "CurveRow",
    "ForgettingCurve",
    "FoxRow",
    "Level",
    "forgetting_curve",
    "reader_note",
    "render_pages",
]


@dataclass(frozen=True, slots=True)
class Level:
    """One point of the curve: a page side, and the rung it is (None below Tiny)."""

    name: str
    size: int
    rung: Rung | None

    @property
    def vision_tokens(self) -> int:
        """Nominal vision tokens: (size / 64) squared."""
        return view_vision_tokens(self.size)

    @property
    def positions(self) -> int:
        """Language-model positions: a newline per token row and one separator."""
        return view_positions(self.size)


LEVELS: tuple[Level, ...] = (
    *(Level(s.rung.value, s.size, s.rung) for s in LADDER),
    Level("384px", 384, None),
    Level("256px", 256, None),
)
"""Large, Base, Small, Tiny, then 384 and 256 px below Tiny."""


@dataclass(frozen=True, slots=True)
class FoxRow:
    """One row of DeepSeek-OCR's Fox table (paper Table 2): pages with ``lo``-``hi`` text tokens."""

    lo: int
    hi: int
    tiny_precision: float
    tiny_compression: float
    small_precision: float
    small_compression: float
    pages: int


FOX: tuple[FoxRow, ...] = (
    FoxRow(600, 700, 0.965, 10.5, 0.985, 6.7, 7),
    FoxRow(700, 800, 0.938, 11.8, 0.973, 7.5, 28),
    FoxRow(800, 900, 0.838, 13.2, 0.968, 8.5, 28),
    FoxRow(900, 1000, 0.859, 15.1, 0.968, 9.7, 14),
    FoxRow(1000, 1100, 0.793, 16.5, 0.915, 10.6, 11),
    FoxRow(1100, 1200, 0.764, 17.7, 0.898, 11.3, 8),
    FoxRow(1200, 1300, 0.591, 19.7, 0.871, 12.6, 4),
)
"""DeepSeek-OCR on Fox (English, 100 pages, ``<image>\\nFree OCR.``), by text tokens per page."""


@dataclass(frozen=True, slots=True)
class CurveRow:
    """The curve at one level.

    Attributes:
        rung: Level name (``large`` ... ``tiny``, ``384px``, ``256px``).
        size: Page side in pixels.
        pages: Pages read.
        char_accuracy: Mean character accuracy over the pages.
        char_accuracy_min: The worst page's.
        bag_recall: Mean bag-of-characters recall.
        text_tokens: Mean text tokens per page (o200k_base).
        vision_tokens: Nominal vision tokens of a page at this size.
        positions: Language-model positions of a page at this size.
        vision_tokens_extrapolated: True below Tiny, where DeepSeek-OCR has no native mode.
        compression: text_tokens / vision_tokens.
        seconds_per_page: Median seconds the reader took per page.
    """

    rung: str
    size: int
    pages: int
    char_accuracy: float
    char_accuracy_min: float
    bag_recall: float
    text_tokens: float
    vision_tokens: int
    positions: int
    vision_tokens_extrapolated: bool
    compression: float
    seconds_per_page: float


@dataclass(frozen=True, slots=True)
class ForgettingCurve:
    """A forgetting curve and the reader that produced it."""

    reader: str
    note: str
    pages: int
    rows: tuple[CurveRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"reader", "note", "pages", "rows": [{"rung": "large", ...}, ...]}``, ready for JSON."""
        return {
            "reader": self.reader,
            "note": self.note,
            "pages": self.pages,
            "text_tokens_encoding": "o200k_base",
            "rows": [asdict(row) for row in self.rows],
        }


def reader_note(reader: str) -> str:
    """One sentence on what a curve drawn with ``reader`` measures."""
    if reader == "deepseek":
        return "DeepSeek-OCR reads the page through its vision tokens: this is the optical-compression curve."
    if reader == "endpoint":
        return "Read by an OpenAI-compatible endpoint: what it measures depends on the model it serves."
    if reader == "exact":
        return "The exact reader returns the stored text: the ceiling, independent of the page image."
    return (
        f"{reader} is a classical OCR reading downsampled pixels: this measures pixel loss, not "
        "DeepSeek-OCR's vision-token bottleneck."
    )


def render_pages(
    turns: Sequence[Turn], *, limit_pages: int | None = None, size: int = 1280
) -> list[RenderedPage]:
    """Render turns to top-rung pages, stopping after ``limit_pages`` pages.

    Raises:
        InputError: If a turn is invalid or nothing renders.
        ConfigError: If ``limit_pages`` is not positive.
    """
    from optical_memory.renderers import ChatRenderer, RenderStyle

    if limit_pages is not None and limit_pages <= 0:
        raise ConfigError(f"limit_pages must be positive, got {limit_pages}")
    pages: list[RenderedPage] = []
    for page in ChatRenderer(RenderStyle.for_size(size)).iter_pages(turns):
        pages.append(page)
        if limit_pages is not None and len(pages) >= limit_pages:
            break
    if not pages:
        raise InputError("the conversation rendered no pages (is it empty?)")
    return pages


Progress = Callable[..., Iterable[Any]]


def _work(
    pages: Sequence[RenderedPage], levels: Sequence[Level]
) -> Iterator[tuple[int, RenderedPage, Level]]:
    for i, page in enumerate(pages):
        for level in levels:
            yield i, page, level


def forgetting_curve(
    pages: Sequence[RenderedPage],
    reader: RecallBackend,
    *,
    levels: Sequence[Level] = LEVELS,
    progress: Progress | None = None,
) -> ForgettingCurve:
    """Read every page at every level and summarise per level.

    Args:
        pages: Pages rendered at the top rung (see :func:`render_pages`).
        reader: The reader to measure.
        levels: The sizes to read at, sharpest first (default :data:`LEVELS`).
        progress: Optional wrapper ``progress(iterable, total=..., label=...)`` (the CLI's progress bar).

    Raises:
        InputError: If there are no pages or a page is smaller than a level.
        RecallError: If the reader fails.
    """
    if not pages:
        raise InputError("no pages to read")
    top = min(page.size for page in pages)
    too_big = [lv.name for lv in levels if lv.size > top]
    if too_big:
        raise InputError(f"pages of {top}px cannot be read at the larger level(s) {', '.join(too_big)}")
    scores: dict[str, list[tuple[float, float, float]]] = {lv.name: [] for lv in levels}
    work: Iterable[tuple[int, RenderedPage, Level]] = _work(pages, levels)
    if progress is not None:
        work = progress(work, total=len(pages) * len(levels), label=f"reading with {reader.name}")
    for _, page, level in work:
        image = downsample(page.image, level.size)
        start = time.perf_counter()
        reading = reader.read(image, rung=level.rung)
        seconds = time.perf_counter() - start
        scores[level.name].append(
            (char_accuracy(page.text, reading.text), bag_recall(page.text, reading.text), seconds)
        )
    text_tokens = statistics.fmean(page.text_tokens for page in pages)
    rows = []
    for level in levels:
        acc, bag, secs = zip(*scores[level.name], strict=True)
        rows.append(
            CurveRow(
                rung=level.name,
                size=level.size,
                pages=len(acc),
                char_accuracy=statistics.fmean(acc),
                char_accuracy_min=min(acc),
                bag_recall=statistics.fmean(bag),
                text_tokens=text_tokens,
                vision_tokens=level.vision_tokens,
                positions=level.positions,
                vision_tokens_extrapolated=level.rung is None,
                compression=text_tokens / level.vision_tokens,
                seconds_per_page=statistics.median(secs),
            )
        )
    return ForgettingCurve(reader.name, reader_note(reader.name), len(pages), tuple(rows))
