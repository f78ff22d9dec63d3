"""Decay: how a stored page moves down the ladder, and the page images each rung needs.

Internal to :mod:`optical_memory.writer`, which calls these under the memory's lock, with the store's writes
staged or inside its transaction.

- :func:`page_state` is what a policy sees of a page; :func:`settled_upto` and :func:`movable` keep the
  age pass to the pages an age can still move, so its cost stays flat in the history.
- :class:`PageImages` reads a session's page images through the decoded-image cache and stores a page at
  a new rung: downsampled from its stored image, downsampled from a re-render (:meth:`PageImages.rerender`,
  the packer replayed from the state saved just before the page's first turn), or no image once forgotten.
  A page never becomes sharper by itself: only a pin asks for a re-render.
- A page image at a rung keeps :func:`page_levels` gray levels (16; 6 at the last rung where the glyphs
  are large enough): that is the image cached, stored (a 4-bit grayscale PNG, a quarter to a half of the
  8-bit one's bytes) and sent, the same pixels before and after a reload.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from optical_memory.errors import PageNotFoundError, StoreError
from optical_memory.formats import PageItem, page_label
from optical_memory.images import decode_png, downsample, encode_png, quantize_gray
from optical_memory.ladder import Rung
from optical_memory.policies import PageState
from optical_memory.pricing.profiles import RenderProfile
from optical_memory.records import Page, PageCache, TurnLookup, image_cache
from optical_memory.renderers import PagePacker, RenderStyle
from optical_memory.store import PageRow

FINE_LEVELS = 16
"""Gray levels a page keeps at a rung that feeds a lower one, or where its glyphs are small (a 4-bit PNG)."""
COARSE_LEVELS = 6
"""Gray levels a page keeps at its profile's last rung when the glyphs there are at least
:data:`COARSE_GLYPH_PX` (also a 4-bit PNG, with fewer distinct values: about two thirds of the bytes)."""
COARSE_GLYPH_PX = 8.5
"""Prose glyph size (px) at the last rung from which pages there keep :data:`COARSE_LEVELS`.

Measured with rapidocr against 256 levels on 10 real chat pages (``benchmarks/data/chats``) demoted one rung
at a time, in character accuracy points: 16 levels at every rung cost 0.1 at DeepSeek-OCR's Tiny (8.8 px
glyphs) and 0.6 at Anthropic's Tiny (6.6 px); 6 levels at the last rung cost 0.8 at DeepSeek-OCR's Tiny and
none on Gemini 2's one rung (11 px), but 3.8 at Anthropic's Tiny. Upper rungs keep 16 levels because every
lower rung is made from them: with 6 levels from Large to Small, Anthropic's Tiny lost 2.0 points, not 0.6.
"""

PARTS_BYTES = 64 * 2**20
"""Bytes of encoded pages (PNG and base64) a session keeps at hand for the contexts it builds."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A page at a rung as a context sends it: PNG bytes and their base64 text."""

    png: bytes
    b64: str


def page_levels(profile: RenderProfile, rung: Rung) -> int:
    """The gray levels a page of ``profile`` keeps at ``rung``.

    :data:`COARSE_LEVELS` at the profile's last rung (where pages stay, so where the store's bytes are)
    when its prose glyphs are at least :data:`COARSE_GLYPH_PX`: ``body_px`` scaled by the rung's size over
    the top rung's. :data:`FINE_LEVELS` everywhere else.
    """
    if profile.clamp(rung) is not profile.last:
        return FINE_LEVELS
    top, shape = profile.shape(profile.top), profile.shape(rung)
    glyph_px = profile.body_px * min(shape.width / top.width, shape.height / top.height)
    return COARSE_LEVELS if glyph_px >= COARSE_GLYPH_PX else FINE_LEVELS


def keep_levels(image: Image.Image, levels: int) -> Image.Image:
    """A page image with ``levels`` gray levels; one that is not grayscale (pages are mode ``L``) as it is."""
    return quantize_gray(image, levels) if image.mode == "L" else image


def page_png(image: Image.Image, levels: int) -> tuple[Image.Image, bytes]:
    """A page image as kept with ``levels`` gray levels (:func:`keep_levels`), and its PNG bytes.

    The bytes are deterministic, and the image returned has exactly the pixels they decode to, so a cached
    page and a page read back from the store are the same.
    """
    kept = keep_levels(image, levels)
    return kept, encode_png(kept, levels=levels if kept.mode == "L" else 256)


def page_state(
    page: Page, costs: Mapping[Rung, int], now: float, *, n_pages: int, n_turns: int, can_sharpen: bool
) -> PageState:
    """What a policy sees of ``page`` in a session of ``n_pages`` sealed pages and ``n_turns`` turns."""
    return PageState(
        page_id=page.page_id,
        rung=page.rung,
        age_pages=n_pages - 1 - page.page_id,
        age_turns=n_turns - 1 - page.turns[1],
        age_seconds=max(0.0, now - page.sealed_at),
        pinned=page.pinned,
        can_sharpen=can_sharpen,
        costs=costs,
    )


def is_settled(page: Page, *, final: Rung | None) -> bool:
    """True when no age can move this page again: unpinned and forgotten, or at ``final`` for good."""
    if page.pinned is not None:
        return False
    return page.rung is Rung.FORGOTTEN or page.rung is final


def settled_upto(pages: Sequence[Page], start: int, *, final: Rung | None) -> int:
    """The first page from ``start`` on that an age can still move (``len(pages)`` when none can).

    ``final`` is the profile's last rung when the policy never forgets by age (None when it does).
    """
    while start < len(pages) and is_settled(pages[start], final=final):
        start += 1
    return start


def movable(pages: Sequence[Page]) -> list[Page]:
    """The pages an age pass looks at: the ones still shown, and pinned ones (which a pin may revive)."""
    return [p for p in pages if p.rung is not Rung.FORGOTTEN or p.pinned is not None]


class PageStore(Protocol):
    """What :class:`PageImages` reads and writes of a store (the store, or the writer's staging overlay)."""

    def page_png(self, sid: int, page_id: int) -> bytes | None: ...

    def insert_page(self, sid: int, page: PageRow, png: bytes | None) -> None: ...

    def set_page_image(self, sid: int, page_id: int, rung: str, png: bytes | None) -> None: ...

    def turn_packer_before(self, sid: int, turn_id: int) -> str | None: ...


class PageImages:
    """A session's stored page images, read through a cache of decoded images.

    Args:
        store: Where the session's pages are stored.
        sid: The session id.
        profile: The render profile: the size of a page at each rung.
    """

    def __init__(self, store: PageStore, sid: int, profile: RenderProfile) -> None:
        self._store = store
        self._sid = sid
        self.profile = profile
        self._cache = image_cache()
        self._parts: PageCache[Encoded] = PageCache(PARTS_BYTES, lambda part: len(part.png) + len(part.b64))

    def _resize(self, image: Image.Image, rung: Rung) -> Image.Image:
        """The page at ``rung``'s size, with the gray levels a page keeps at that rung."""
        shape = self.profile.shape(rung)
        return keep_levels(downsample(image, shape.width, shape.height), page_levels(self.profile, rung))

    def png(self, image: Image.Image, rung: Rung) -> tuple[Image.Image, bytes]:
        """A page image of ``rung``'s size as kept at that rung (:func:`page_levels`), and its PNG bytes."""
        return page_png(image, page_levels(self.profile, rung))

    def insert(self, page: Page, image: Image.Image) -> None:
        """Store a newly sealed page with its image (at the page's rung, with the levels kept there)."""
        kept, png = self.png(image, page.rung)
        self._store.insert_page(self._sid, page.to_row(), png)
        self._cache.put(page.page_id, page.rung, kept)
        self._keep_part(page.page_id, page.rung, png)

    def get(self, page: Page, rung: Rung, png: bytes | None = None) -> Image.Image:
        """A page's image at ``rung`` (its stored rung or lower); the cache keeps the returned image.

        Args:
            page: The page.
            rung: The rung wanted.
            png: The stored PNG when the caller has already read it.

        Raises:
            PageNotFoundError: If the page was forgotten.
        """
        image = self._cache.get(page.page_id, rung)
        if image is not None:
            return image
        stored = self._cache.get(page.page_id, page.rung)
        if stored is None:
            data = png if png is not None else self._store.page_png(self._sid, page.page_id)
            if data is None:
                raise PageNotFoundError(f"page {page.page_id} was forgotten: it has no image")
            stored = decode_png(data)
            self._cache.put(page.page_id, page.rung, stored)
        if rung is page.rung:
            return stored
        image = self._resize(stored, rung)
        self._cache.put(page.page_id, rung, image)
        return image

    def item(self, page: Page, rung: Rung, *, with_png: bool, detail: str | None) -> PageItem:
        """The page as a context item at ``rung``.

        With ``with_png`` (formats that send bytes), the item carries the page's PNG at ``rung`` (the stored
        one at the page's rung) and its base64 text, both kept per page and rung, and an image decoded only
        if used: a context of pages already sent costs no SQL, encoding or decoding. Without, it carries a
        copy of the decoded image.

        Raises:
            PageNotFoundError: If the page was forgotten.
        """
        label = page_label(page.page_id, page.turns)
        exact = page.exact_line
        if not with_png:
            return PageItem(page.page_id, self.get(page, rung).copy(), rung, label, None, detail, exact=exact)
        part = self._parts.get(page.page_id, rung)
        if part is None:
            png = self._store.page_png(self._sid, page.page_id) if rung is page.rung else None
            if png is None:
                png = self.png(self.get(page, rung), rung)[1]
            part = self._keep_part(page.page_id, rung, png)
        return PageItem(page.page_id, None, rung, label, part.png, detail, part.b64, exact)

    def store_at(self, page: Page, rung: Rung, top: Image.Image | None = None) -> None:
        """Replace a page's stored image by one at ``rung`` (none when forgotten); ``page.rung`` is unchanged.

        Args:
            page: The page, still at its old rung.
            rung: The new rung.
            top: A fresh render at the top rung to downsample (for a sharper rung); else the stored image.
        """
        image: Image.Image | None = None
        png: bytes | None = None
        if rung is not Rung.FORGOTTEN:
            source = top if top is not None else self.get(page, page.rung)
            shape = self.profile.shape(rung)
            image, png = self.png(downsample(source, shape.width, shape.height), rung)
        self._store.set_page_image(self._sid, page.page_id, rung.value, png)
        self._cache.drop(page.page_id)
        self._parts.drop(page.page_id)
        if image is not None and png is not None:
            self._cache.put(page.page_id, rung, image)
            self._keep_part(page.page_id, rung, png)

    def _keep_part(self, page_id: int, rung: Rung, png: bytes) -> Encoded:
        """Keep what a context sends of a page at a rung (kept as it is stored, so the next context reads
        nothing back)."""
        part = Encoded(png, base64.b64encode(png).decode("ascii"))
        self._parts.put(page_id, rung, part)
        return part

    def rerender(self, page: Page, turns: TurnLookup, packed_upto: int, style: RenderStyle) -> Image.Image:
        """The page at the top rung again, replayed from kept text with the same packer layout.

        Args:
            page: The page; the text of every turn on it must be in ``turns``.
            turns: The turns whose text is kept.
            packed_upto: One past the last turn packed so far.
            style: The memory's render style.

        Raises:
            StoreError: If the replay does not reproduce the page's layout.
        """
        first = page.spans[0].turn
        before = self._store.turn_packer_before(self._sid, first)
        packer = PagePacker.restore(json.loads(before), turns, style) if before else PagePacker(style)
        for tid in range(first, packed_upto):
            for rendered in packer.iter_add(turns[tid], tid):
                if rendered.spans == page.spans:
                    image: Image.Image = rendered.image
                    return image
        raise StoreError(f"re-rendering page {page.page_id} from its kept text did not reproduce its layout")
