"""The memory's in-RAM bookkeeping: turn and page records, and small caches of page images.

Internal to :mod:`optical_memory.memory`. Page metadata lives here so that an ``add()`` never reads old
pages back from the store; pixels are decoded only when a context or ``page_image()`` needs them, and the
decoded images (and the encoded parts a context sends) are kept in least-recently-used caches keyed by
(page, rung).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from PIL import Image

from optical_memory.context import turn_range
from optical_memory.ladder import Rung, as_rung
from optical_memory.spans import line
from optical_memory.store import PageRow, TurnRow
from optical_memory.types import ToolCall, Turn, TurnImage, TurnSpan, as_tool_call

_V = TypeVar("_V")


@dataclass(slots=True)
class TurnRecord:
    """One stored turn. ``content`` is None once its text was forgotten (its calls and ids stay; its images
    go with the text)."""

    role: str
    name: str | None
    content: str | None
    tokens: dict[str, int]
    added: float
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    images: tuple[TurnImage, ...] = ()

    def turn(self) -> Turn:
        """The turn as a :class:`Turn` (its text must still be kept)."""
        assert self.content is not None, "the text of this turn was forgotten"
        return Turn(self.role, self.content, self.name, self.tool_calls, self.tool_call_id, self.images)

    @classmethod
    def from_row(cls, row: TurnRow) -> TurnRecord:
        """The record of a stored turn."""
        calls = tuple(as_tool_call(c) for c in json.loads(row.tool_calls)) if row.tool_calls else ()
        images = tuple(TurnImage(data, mime, w, h) for mime, w, h, data in row.images)
        return cls(row.role, row.name, row.content, row.tokens, row.added, calls, row.tool_call_id, images)

    def to_row(self, turn_id: int) -> TurnRow:
        """The store row of this turn."""
        calls = json.dumps([c.to_dict() for c in self.tool_calls]) if self.tool_calls else None
        return TurnRow(
            turn_id,
            self.role,
            self.name,
            self.content,
            self.tokens,
            self.added,
            None,
            calls,
            self.tool_call_id,
            tuple((i.mime, i.width, i.height, i.data) for i in self.images),
        )


@dataclass(slots=True)
class Page:
    """A sealed page's metadata (mutable: its rung, pin and verbatim spans change).

    ``exact`` holds the page's verbatim spans, (kind, text, role) in order of appearance (see
    :mod:`optical_memory.spans`), ``masked`` how many credentials were masked on it. ``tallied`` is what the
    memory's running cost counted for the page: (image cost, text cost or None).
    """

    page_id: int
    rung: Rung
    spans: tuple[TurnSpan, ...]
    text_tokens: int
    missing_glyphs: int
    sealed_at: float
    pinned: Rung | None = None
    text_cost: dict[str, int] = field(default_factory=dict)
    exact: tuple[tuple[str, str, str], ...] = ()
    masked: int = 0
    tallied: tuple[int, int | None] | None = field(default=None, compare=False)
    turns: tuple[int, int] = field(init=False, compare=False)
    """Ids of the first and last turn on the page."""
    exact_line: str = field(init=False, compare=False)
    """The verbatim spans as a context sends them beside the page's image ("" when there are none)."""

    def __post_init__(self) -> None:
        self.turns = turn_range(self.spans)
        self.exact_line = line(self.page_id, self.exact)

    def set_exact(self, exact: tuple[tuple[str, str, str], ...]) -> None:
        """Replace the page's verbatim spans (and their line)."""
        self.exact, self.exact_line = exact, line(self.page_id, exact)

    @classmethod
    def from_row(cls, row: PageRow) -> Page:
        """The record of a stored page."""
        return cls(
            row.page_id,
            as_rung(row.rung),
            tuple(TurnSpan(*s) for s in row.spans),
            row.text_tokens,
            row.missing_glyphs,
            row.sealed_at,
            None if row.pinned is None else as_rung(row.pinned),
            dict(row.text_cost),
            row.exact,
            row.masked,
        )

    def to_row(self) -> PageRow:
        """The store row of this page."""
        return PageRow(
            self.page_id,
            self.rung.value,
            tuple((s.turn, s.start, s.end) for s in self.spans),
            self.text_tokens,
            self.missing_glyphs,
            self.sealed_at,
            None if self.pinned is None else self.pinned.value,
            self.rung is not Rung.FORGOTTEN,
            self.text_cost,
            self.exact,
            self.masked,
        )


class TurnLookup(Mapping[int, Turn]):
    """Turns whose text is kept, by id, built on demand (what ``PagePacker.restore`` reads)."""

    def __init__(self, turns: list[TurnRecord]) -> None:
        self._turns = turns

    def __getitem__(self, tid: int) -> Turn:
        if tid not in self:
            raise KeyError(tid)
        return self._turns[tid].turn()

    def __contains__(self, tid: object) -> bool:
        return isinstance(tid, int) and 0 <= tid < len(self._turns) and self._turns[tid].content is not None

    def __iter__(self) -> Iterator[int]:
        return (i for i, t in enumerate(self._turns) if t.content is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PageCache(Generic[_V]):
    """Values per (page id, rung), least recently used out first, bounded by their total weight.

    Args:
        limit: The most total weight held (the newest value stays even when it alone is heavier).
        weigh: A value's weight (pixels of an image, bytes of an encoded part).
    """

    def __init__(self, limit: int, weigh: Callable[[_V], int]) -> None:
        self.limit = limit
        self._weigh = weigh
        self._items: OrderedDict[tuple[int, Rung], _V] = OrderedDict()
        self._weight = 0

    def get(self, page_id: int, rung: Rung) -> _V | None:
        """The cached value, or None."""
        value = self._items.get((page_id, rung))
        if value is not None:
            self._items.move_to_end((page_id, rung))
        return value

    def put(self, page_id: int, rung: Rung, value: _V) -> None:
        """Cache a value (evicting the least recently used ones beyond ``limit``)."""
        key = (page_id, rung)
        old = self._items.pop(key, None)
        if old is not None:
            self._weight -= self._weigh(old)
        self._items[key] = value
        self._weight += self._weigh(value)
        while self._weight > self.limit and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._weight -= self._weigh(evicted)

    def drop(self, page_id: int) -> None:
        """Forget every cached value of a page."""
        for key in [k for k in self._items if k[0] == page_id]:
            self._weight -= self._weigh(self._items.pop(key))

    def clear(self) -> None:
        """Empty the cache."""
        self._items.clear()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._items)


def image_cache(max_pixels: int = 40 * 1280 * 1280) -> PageCache[Image.Image]:
    """A cache of decoded page images (the default holds about 40 pages at 1280 px, ~65 MB in mode L)."""
    return PageCache(max_pixels, lambda image: image.width * image.height)
