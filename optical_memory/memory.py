"""The facade users hold: :class:`OpticalMemory` (add turns, get a priced context, see and pin pages).

How a turn travels (see ``design/ARCHITECTURE.md``):

1. ``add(turn)`` stores it. Leading system turns (the system prompt) stay text for good; every other turn
   enters the recent window, which holds the newest turns as text (``recent_turns`` / ``recent_tokens``).
2. Turns leaving the window go, in order, to a :class:`~optical_memory.renderers.PagePacker`, which lays
   out only that turn and appends it to the open page. Sealed pages are stored as PNG at the top rung.
   The open page is shown at the top rung, never decays, and is not stored as an image: its turns' text
   is kept until sealed, and a reopened store rebuilds it with ``PagePacker.restore``.
3. Once a turn lies wholly in sealed pages its text is dropped (only its token counts stay), unless
   ``keep_text=True``. The configured policy's age rule runs on every add (for ``unit="pages"`` only when
   a page was sealed, since ages change only then) and demotes pages *in place*: the stored PNG is
   replaced by a downsampled one. A page never becomes sharper by itself; with kept text a page pinned
   sharper is re-rendered from its turns with the same packer layout (a replay from the packer state saved
   just before its first turn was packed).
4. ``context(provider=..., budget=...)`` builds the messages: system text, pages oldest first (each at its
   rung; under a budget the policy demotes or leaves out pages for this response only, on copies), the
   open page, then the recent turns.

Cost per add is flat in the history: one turn's layout, a PNG encode per sealed page, a downsample per
demoted page, and at most one pass over page metadata (kept in memory; only changed rows are written).
Everything is one SQLite transaction; if anything fails the transaction rolls back and the in-memory
state is reloaded from the store, so memory and store never disagree. All methods are thread-safe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from optical_memory import ladder
from optical_memory.config import MemoryConfig, as_config
from optical_memory.context import AddResult, Context, CostModel, PageInfo, Usage, turn_range
from optical_memory.errors import ConfigError, InputError, PageNotFoundError, StoreError
from optical_memory.formats import (
    EMBEDDINGS,
    PageItem,
    TextItem,
    build_messages,
    check_format,
    default_format,
    page_label,
    plain_role,
)
from optical_memory.images import decode_png, downsample, encode_png
from optical_memory.ladder import Rung, as_rung, rank
from optical_memory.policies import AgeLadder, PageState, TokenBudget
from optical_memory.providers import get_provider
from optical_memory.records import ImageCache, Page, TurnLookup, TurnRecord
from optical_memory.renderers import PagePacker, RenderStyle
from optical_memory.store import MEMORY, Store, TurnRow
from optical_memory.tokens import DEFAULT_ENCODING, ENCODINGS, count_tokens
from optical_memory.types import RenderedPage, Turn, TurnSpan, as_turn
from optical_memory.vision import TokenRequest, Vision, page_tokens

if TYPE_CHECKING:
    from optical_memory.recall.base import Reading, RecallBackend

logger = logging.getLogger(__name__)

_RUNG_NAMES = tuple(r.value for r in ladder.ORDER)


class OpticalMemory:
    """A chat history whose older turns become page images that fade down the ladder.

    Args:
        config: A :class:`~optical_memory.config.MemoryConfig`, a dict of its fields, or None (defaults).
            The memory lives in RAM; use :meth:`open` for a SQLite file.

    Raises:
        ConfigError: If the config is invalid.
    """

    def __init__(self, config: MemoryConfig | Mapping[str, Any] | None = None) -> None:
        self._attach(Store(MEMORY), "default", as_config(config))

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        session: str = "default",
        config: MemoryConfig | Mapping[str, Any] | None = None,
    ) -> OpticalMemory:
        """Open (or create) a session in a SQLite file and resume it exactly.

        An existing session keeps its stored config unless ``config`` is given; a new config must be
        compatible with the stored one (same ``page_size``) and replaces it.

        Raises:
            StoreError: If the file is not a store, is from a newer version, or cannot be read.
            ConfigError: If ``config`` is invalid or incompatible with the stored one.
        """
        if not isinstance(session, str) or not session:
            raise ConfigError("session must be a non-empty string")
        new = None if config is None else as_config(config)
        store = Store(path)
        try:
            memory = cls.__new__(cls)
            memory._attach(store, session, new)
        except BaseException:
            store.close()
            raise
        return memory

    # --- setup and reload ---------------------------------------------------------------------------

    def _attach(self, store: Store, session: str, config: MemoryConfig | None) -> None:
        self._lock = threading.RLock()
        self._store = store
        weakref.finalize(self, store.close)  # a memory dropped without close() still closes its file
        self.session = session
        row = store.session(session)
        if row is None:
            cfg = config or MemoryConfig()
            with store.transaction():
                row = store.create_session(session, cfg.to_json())
        elif config is not None:
            config.check_compatible(as_config(row.config))
            with store.transaction():
                store.update_session(
                    row.id,
                    packer_state=row.packer_state,
                    n_system=row.n_system,
                    packed_upto=row.packed_upto,
                    open_pin=row.open_pin,
                    config=config.to_json(),
                )
        self._sid = row.id
        self._cache = ImageCache()
        self._costs: dict[str, CostModel] = {}
        self._load()

    def _load(self) -> None:
        """(Re)build every in-memory structure from the store."""
        row = self._store.session(self.session)
        if row is None:
            raise StoreError(f"session {self.session!r} vanished from the store")
        self.config = as_config(row.config)
        self._policy = self.config.build_policy()
        # stored rungs follow the age rule alone; a budget (TokenBudget's standing one too) is per context
        self._age_policy = self._policy.inner if isinstance(self._policy, TokenBudget) else self._policy
        self._age_unit = getattr(self._age_policy, "unit", None)
        self._tiny_final = isinstance(self._age_policy, AgeLadder) and self._age_policy.forget_after is None
        self._settled = (
            0  # pages below this index are unpinned and at their final rung: the age pass skips them
        )
        self._top = self.config.top_rung
        self._style = RenderStyle.for_size(self.config.page_size)
        self._cost = self._cost_model(self.config.provider)
        vision: Vision | None = getattr(self, "_vision", None)
        if vision is None or vision.config != self.config.encoder:
            vision = Vision(self.config.encoder)
        self._vision = vision  # kept across reloads while its settings hold: the encoder loads once
        self._turns = [
            TurnRecord(t.role, t.name, t.content, t.tokens, t.added) for t in self._store.turns(self._sid)
        ]
        self._pages = [Page.from_row(p) for p in self._store.pages(self._sid)]
        self._open_pin = None if row.open_pin is None else as_rung(row.open_pin)
        self._text_floor = row.n_system  # packed turns below this have had their text dropped
        self._n_system = row.n_system
        self._packed_upto = row.packed_upto
        self._window: deque[int] = deque(range(self._packed_upto, len(self._turns)))
        self._window_o200k = sum(self._turns[t].tokens.get(DEFAULT_ENCODING, 0) for t in self._window)
        if row.packer_state:
            state = json.loads(row.packer_state)
            self._packer = PagePacker.restore(state, TurnLookup(self._turns), self._style)
        else:
            self._packer = PagePacker(self._style)
        self._pending_ids = self._packer.pending_turn_ids()
        self._pending_render: RenderedPage | None = None
        self._cache.clear()
        self._page_cost_sum = sum(self._page_cost(self._cost, p, p.rung) for p in self._pages)

    def _cost_model(self, provider: str) -> CostModel:
        model = self._costs.get(provider)
        if model is None:
            model = self._costs[provider] = CostModel(get_provider(provider), self.config.page_size)
        return model

    # --- adding turns ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._turns)

    def add(self, turn: Turn | Mapping[str, Any] | str, *, role: str | None = None) -> AddResult:
        """Add one turn: a Turn, an OpenAI-style dict, or a string with ``role=``.

        Raises:
            InputError: If the turn is malformed (no role, unknown role, non-text content).
            StoreError: If the store cannot be written (nothing of the turn is kept then).
        """
        t = as_turn(turn, role=role)
        tokens = {enc: count_tokens(t.content, enc) for enc in ENCODINGS}
        with self._lock:
            self._check_open()
            try:
                with self._store.transaction():
                    return self._add(t, tokens)
            except BaseException:
                self._load()  # the transaction rolled back: make memory agree with the store again
                raise

    def _add(self, t: Turn, tokens: dict[str, int]) -> AddResult:
        tid = len(self._turns)
        now = time.time()
        self._turns.append(TurnRecord(t.role, t.name, t.content, tokens, now))
        self._store.insert_turn(self._sid, TurnRow(tid, t.role, t.name, t.content, tokens, now))
        if self._n_system == tid and t.role == "system":
            self._n_system += 1
            self._packed_upto = tid + 1
        else:
            self._window.append(tid)
            self._window_o200k += tokens.get(DEFAULT_ENCODING, 0)
        sealed = self._evict()
        demoted = self._apply_age(force=bool(sealed))
        self._save_session()
        return AddResult(tid, tuple(sealed), tuple(demoted), self._current_cost())

    def _over_window(self) -> bool:
        cfg = self.config
        if cfg.recent_turns is not None and len(self._window) > cfg.recent_turns:
            return True
        return cfg.recent_tokens is not None and self._window_o200k > cfg.recent_tokens

    def _evict(self) -> list[int]:
        """Move turns leaving the recent window into pages; returns the ids of pages sealed."""
        sealed: list[int] = []
        packed = False
        while self._window and self._over_window():
            tid = self._window.popleft()
            rec = self._turns[tid]
            self._window_o200k -= rec.tokens.get(DEFAULT_ENCODING, 0)
            if self.config.keep_text:
                self._store.set_packer_before(self._sid, tid, json.dumps(self._packer.state()))
            for rendered in self._packer.iter_add(rec.turn(), tid):
                sealed.append(self._seal(rendered))
            self._packed_upto = tid + 1
            packed = True
        if packed:
            self._pending_ids = self._packer.pending_turn_ids()
            self._pending_render = None
            if sealed and not self.config.keep_text:
                self._drop_sealed_text()
        return sealed

    def _seal(self, rendered: RenderedPage) -> int:
        pid = len(self._pages)
        now = time.time()
        page = Page(pid, self._top, rendered.spans, rendered.text_tokens, rendered.missing_glyphs, now)
        page.pinned, self._open_pin = self._open_pin, None  # a pin on the open page holds once it is sealed
        self._store.insert_page(self._sid, page.to_row(), encode_png(rendered.image))
        self._pages.append(page)
        self._cache.put(pid, self._top, rendered.image)
        self._page_cost_sum += self._page_cost(self._cost, page, page.rung)
        return pid

    def _drop_sealed_text(self) -> None:
        """Forget the text of every packed turn that lies wholly in sealed pages."""
        bound = self._pending_ids[0] if self._pending_ids else self._packed_upto
        done = [
            t
            for t in range(max(self._text_floor, self._n_system), bound)
            if self._turns[t].content is not None
        ]
        self._text_floor = max(self._text_floor, bound)
        if done:
            self._store.drop_turn_text(self._sid, done)
            for t in done:
                self._turns[t].content = None

    def _save_session(self) -> None:
        self._store.update_session(
            self._sid,
            packer_state=json.dumps(self._packer.state()) if self._pending_ids else None,
            n_system=self._n_system,
            packed_upto=self._packed_upto,
            open_pin=None if self._open_pin is None else self._open_pin.value,
        )

    # --- decay ------------------------------------------------------------------------------------------

    def _can_sharpen(self, page: Page) -> bool:
        return self.config.keep_text and all(self._turns[s.turn].content is not None for s in page.spans)

    def _state(self, page: Page, costs: Mapping[Rung, int], now: float) -> PageState:
        return PageState(
            page_id=page.page_id,
            rung=page.rung,
            age_pages=len(self._pages) - 1 - page.page_id,
            age_turns=len(self._turns) - 1 - page.turns[1],
            age_seconds=max(0.0, now - page.sealed_at),
            pinned=page.pinned,
            can_sharpen=self._can_sharpen(page),
            costs=costs,
        )

    def _apply_age(self, *, force: bool) -> list[int]:
        """Run the policy's age rule (no budget) and store the rungs it picks; returns demoted ids."""
        if not self._pages or (self._age_unit == "pages" and not force):
            return []
        now = time.time()
        costs = self._cost.images
        while self._settled < len(self._pages) and self._is_settled(self._pages[self._settled]):
            self._settled += 1
        live = [
            p for p in self._pages[self._settled :] if p.rung is not Rung.FORGOTTEN or p.pinned is not None
        ]
        states = [self._state(p, costs, now) for p in live]
        assignment = self._age_policy.assign(states)
        demoted = []
        for page, rung in zip(live, assignment.rungs, strict=True):
            if rung is not page.rung:
                if rank(rung) > rank(page.rung):
                    demoted.append(page.page_id)
                self._set_rung(page, rung)
        return demoted

    def _is_settled(self, page: Page) -> bool:
        """True when no age can move this page again: unpinned and forgotten, or at Tiny for good."""
        if page.pinned is not None:
            return False
        return page.rung is Rung.FORGOTTEN or (page.rung is Rung.TINY and self._tiny_final)

    def _set_rung(self, page: Page, rung: Rung) -> None:
        """Store a page at another rung: downsample in place, re-render from kept text, or forget."""
        if rung is page.rung:
            return
        image: Image.Image | None = None
        if rung is not Rung.FORGOTTEN:
            if rank(rung) < rank(page.rung):
                image = downsample(self._rerender(page), ladder.spec(rung).size)
            else:
                image = downsample(self._image(page, page.rung), ladder.spec(rung).size)
        self._store.set_page_image(
            self._sid, page.page_id, rung.value, None if image is None else encode_png(image)
        )
        self._cache.drop(page.page_id)
        if image is not None:
            self._cache.put(page.page_id, rung, image)
        self._page_cost_sum += self._page_cost(self._cost, page, rung) - self._page_cost(
            self._cost, page, page.rung
        )
        page.rung = rung

    def _rerender(self, page: Page) -> Image.Image:
        """The page at the top rung again, replayed from kept text with the same packer layout.

        Raises:
            ConfigError: If the text of a turn on the page was not kept.
        """
        if not self._can_sharpen(page):
            raise ConfigError(
                f"page {page.page_id} cannot be made sharper than {page.rung.value}: its text was dropped "
                "(the memory keeps only the page image unless keep_text=True)"
            )
        first = page.spans[0].turn
        before = self._store.turn_packer_before(self._sid, first)
        lookup = TurnLookup(self._turns)
        packer = (
            PagePacker.restore(json.loads(before), lookup, self._style) if before else PagePacker(self._style)
        )
        for tid in range(first, self._packed_upto):
            for rendered in packer.iter_add(lookup[tid], tid):
                if rendered.spans == page.spans:
                    image: Image.Image = rendered.image
                    return image
        raise StoreError(f"re-rendering page {page.page_id} from its kept text did not reproduce its layout")

    # --- reading pages -------------------------------------------------------------------------------

    def _image(self, page: Page, rung: Rung, png: bytes | None = None) -> Image.Image:
        """A page's image at ``rung`` (its stored rung or lower), through the decoded-image cache.

        ``png``: the stored PNG when the caller has already read it.
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
        image = downsample(stored, ladder.spec(rung).size)
        self._cache.put(page.page_id, rung, image)
        return image

    def _pending(self) -> RenderedPage | None:
        if self._pending_render is None and self._pending_ids:
            self._pending_render = self._packer.pending()
        return self._pending_render

    def _page_cost(self, cost: CostModel, page: Page, rung: Rung) -> int:
        return cost.page(page.page_id, page.turns, rung)

    def _current_cost(self) -> int:
        """The default provider's context cost without a budget (kept as running sums)."""
        c = self._cost
        text = sum(c.text(self._turns[t].tokens) for t in range(self._n_system))
        text += sum(c.text(self._turns[t].tokens) for t in self._window)
        shown = sum(1 for _ in self._visible()) + (1 if self._pending_ids else 0)
        pending = 0
        if self._pending_ids:
            turns = (self._pending_ids[0], self._pending_ids[-1])
            pending = c.page(len(self._pages), turns, self._top)
        return text + self._page_cost_sum + pending + c.intro(shown)

    def _visible(self) -> Iterator[Page]:
        return (p for p in self._pages if p.rung is not Rung.FORGOTTEN)

    def _check_open(self) -> None:
        if self._store.closed:
            raise StoreError("this memory is closed")

    # --- the context ----------------------------------------------------------------------------------

    def context(
        self, *, provider: str | None = None, budget: int | None = None, format: str | None = None
    ) -> Context:
        """The context to send: system text, pages oldest first, the open page, then the recent turns.

        Args:
            provider: Target provider (prices images and text); the config's provider when None.
            budget: Most tokens the context may cost, in the provider's tokens; the config's budget when
                None. Pages are demoted or left out for this context only (stored pages are untouched).
            format: Message format (see :data:`optical_memory.formats.FORMATS`); the provider's default
                when None. ``"embeddings"`` (provider ``deepseek-ocr``) returns no messages but
                ``Context.embeddings``: input ids and ``inputs_embeds`` for a self-hosted DeepSeek-OCR
                language model (layout in :mod:`optical_memory.embeddings`), with vision tokens from the
                configured encoder, cached in the store per page, rung and encoder. Its ``usage`` counts
                sequence positions: image positions, and the rest as text tokens; the budget is fitted
                with the provider's estimate (o200k text), and ``history_text_tokens`` stays that estimate.

        Raises:
            ProviderError: For an unknown provider.
            ConfigError: For an unknown format, a budget smaller than the text that must stay, or the
                ``embeddings`` format for another provider or without a DeepSeek-OCR tokenizer configured.
            CheckpointError: If the configured checkpoint cannot be loaded.
        """
        name = get_provider(provider or self.config.provider).name
        with self._lock:
            self._check_open()
            if self._age_unit == "seconds":  # wall-clock ages move without adds: decay now
                self._write(lambda: self._apply_age(force=True))
            cost = self._cost_model(name)
            fmt = self._check_format(format, cost)
            if budget is None:
                budget = (
                    self.config.budget
                    if self.config.budget is not None
                    else getattr(self._policy, "budget", None)
                )
            text_items = [TextItem(t.role, t.content or "", t.name) for t in self._text_turns()]
            text_cost = sum(cost.text(self._turns[t].tokens) for t in self._text_ids())
            visible = list(self._visible())
            rungs: list[Rung] = [p.rung for p in visible]
            left_out: tuple[int, ...] = ()
            pending = self._pending()
            if budget is not None:
                rungs, left_out = self._fit(visible, cost, budget, text_cost, pending is not None)
            items: list[TextItem | PageItem] = [*text_items[: self._n_system]]
            image_cost = 0
            encodes = fmt not in ("hf", EMBEDDINGS)  # these formats send PNG bytes: reuse the stored ones
            for page, rung in zip(visible, rungs, strict=True):
                if rung is not Rung.FORGOTTEN:
                    png = (
                        self._store.page_png(self._sid, page.page_id)
                        if encodes and rung is page.rung
                        else None
                    )
                    items.append(
                        PageItem(
                            page.page_id,
                            self._image(page, rung, png).copy(),  # the cache keeps its own
                            rung,
                            page_label(page.page_id, page.turns, rung),
                            png,
                        )
                    )
                    image_cost += cost.images[rung]
            if pending is not None:
                turns = turn_range(pending.spans)
                items.append(
                    PageItem(
                        len(self._pages),
                        pending.image.copy(),
                        self._top,
                        page_label(len(self._pages), turns, self._top),
                    )
                )
                image_cost += cost.images[self._top]
            items.extend(text_items[self._n_system :])
            if fmt == EMBEDDINGS:
                return self._embeddings_context(items, cost, left_out)
            usage = self._usage(cost, items, text_cost, image_cost, left_out)
            formatted = build_messages(items, format=fmt, detail=cost.provider.detail)
            return Context(formatted.messages, formatted.system, usage, fmt, name, tuple(items))

    def _check_format(self, format: str | None, cost: CostModel) -> str:
        if format is None:
            return default_format(cost.provider)
        if str(format).strip().lower() != EMBEDDINGS:
            return check_format(format)
        if cost.provider.family != "deepseek-ocr":
            raise ConfigError(
                f"the {EMBEDDINGS!r} format feeds a self-hosted DeepSeek-OCR language model: use "
                f"provider='deepseek-ocr', not {cost.provider.name!r}"
            )
        return EMBEDDINGS

    def _embeddings_context(
        self, items: list[TextItem | PageItem], cost: CostModel, left_out: tuple[int, ...]
    ) -> Context:
        """The ``embeddings`` context: vision tokens (cached per page, rung and encoder) laid out as ids."""
        from optical_memory.embeddings import PagePart, TextPart, build_inputs, load_tokenizer

        tokenizer = load_tokenizer(self._vision.tokenizer_path())  # fail before encoding anything
        encoder = self._vision.encoder
        shown = [i for i in items if isinstance(i, PageItem)]
        requests = [
            TokenRequest(p.page_id, p.rung, p.image, cacheable=p.page_id < len(self._pages)) for p in shown
        ]
        tokens, new_rows = page_tokens(self._store, self._sid, encoder, requests)
        if new_rows:
            self._write(lambda: self._store.put_vision_tokens(self._sid, encoder.fingerprint, new_rows))
        system = [i.content for i in items[: self._n_system] if isinstance(i, TextItem)]
        turns = [TextPart(*plain_role(i)) for i in items[self._n_system :] if isinstance(i, TextItem)]
        pages = [PagePart(p.page_id, t) for p, t in zip(shown, tokens, strict=True)]
        inputs = build_inputs(tokenizer, system, pages, turns, self._vision.table)
        image = int(inputs.image_mask.sum())
        history = sum(cost.text(t.tokens) for t in self._turns)
        total = len(inputs)
        usage = Usage(history, total - image, image, total, self._per_rung(shown), history / total, left_out)
        return Context([], None, usage, EMBEDDINGS, cost.provider.name, tuple(items), inputs)

    def _per_rung(self, shown: list[PageItem]) -> dict[str, int]:
        per_rung = dict.fromkeys(_RUNG_NAMES, 0)
        for item in shown:
            per_rung[item.rung.value] += 1
        per_rung[Rung.FORGOTTEN.value] = len(self._pages) + bool(self._pending_ids) - len(shown)
        return per_rung

    def _text_ids(self) -> list[int]:
        return [*range(self._n_system), *self._window]

    def _text_turns(self) -> list[TurnRecord]:
        return [self._turns[t] for t in self._text_ids()]

    def _fit(
        self, visible: list[Page], cost: CostModel, budget: int, text_cost: int, has_pending: bool
    ) -> tuple[list[Rung], tuple[int, ...]]:
        """Rungs that fit ``budget`` for this context (the policy's budget rule on copies)."""
        now = time.time()
        states = [self._state(p, cost.page_costs(p.page_id, p.turns), now) for p in visible]
        fixed = text_cost
        if has_pending:
            first, last = self._pending_ids[0], self._pending_ids[-1]
            fixed += cost.page(len(self._pages), (first, last), self._top)
        floor = fixed + cost.intro(int(has_pending))
        if budget < floor:
            open_page = f" and the open page ({fixed - text_cost} tokens)" if has_pending else ""
            raise ConfigError(
                f"the budget of {budget} tokens is smaller than the recent text alone ({text_cost} tokens)"
                f"{open_page}, which always stay: raise the budget or keep fewer recent turns as text"
            )
        target = budget
        for _ in range(4):  # costs are additive except the introduction's page count: re-fit if it overshoots
            shown = len(visible) + has_pending
            assignment = self._policy.assign(states, budget=target, fixed_cost=fixed + cost.intro(shown))
            rungs = [
                r if rank(r) >= rank(p.rung) else p.rung
                for p, r in zip(visible, assignment.rungs, strict=True)
            ]
            shown = sum(r is not Rung.FORGOTTEN for r in rungs) + has_pending
            total = (
                fixed
                + cost.intro(shown)
                + sum(cost.page(p.page_id, p.turns, r) for p, r in zip(visible, rungs, strict=True))
            )
            if total <= budget:
                return rungs, assignment.forgotten_for_budget
            target -= total - budget
        raise ConfigError(f"could not fit the context into a budget of {budget} tokens")

    def _usage(
        self,
        cost: CostModel,
        items: list[TextItem | PageItem],
        text_cost: int,
        image_cost: int,
        left_out: tuple[int, ...],
    ) -> Usage:
        shown = [i for i in items if isinstance(i, PageItem)]
        text = (
            text_cost
            + cost.intro(len(shown))
            + sum(cost.label(i.page_id, _turns_of(i, self), i.rung) for i in shown)
        )
        history = sum(cost.text(t.tokens) for t in self._turns)
        per_rung = self._per_rung(shown)
        total = text + image_cost
        ratio = history / total if total else 1.0
        return Usage(history, text, image_cost, total, per_rung, ratio, tuple(left_out))

    # --- pages ------------------------------------------------------------------------------------------

    def pages(self) -> list[PageInfo]:
        """Every page, oldest first: sealed pages (forgotten ones too), then the open page if any."""
        with self._lock:
            self._check_open()
            n_pages, last_turn = len(self._pages), len(self._turns) - 1
            out = [
                PageInfo(
                    p.page_id,
                    p.rung,
                    n_pages - 1 - p.page_id,
                    last_turn - p.turns[1],
                    p.turns,
                    p.spans,
                    ladder.positions(p.rung),
                    True,
                    p.pinned,
                    self._text_kept(p.spans),
                )
                for p in self._pages
            ]
            pending = self._pending()
            if pending is not None:
                turns = turn_range(pending.spans)
                out.append(
                    PageInfo(
                        n_pages,
                        self._top,
                        -1,
                        last_turn - turns[1],
                        turns,
                        pending.spans,
                        ladder.positions(self._top),
                        False,
                        self._open_pin,
                        True,
                    )
                )
            return out

    def _text_kept(self, spans: tuple[TurnSpan, ...]) -> bool:
        return all(self._turns[s.turn].content is not None for s in spans)

    def _page(self, page_id: int) -> Page:
        if isinstance(page_id, bool) or not isinstance(page_id, int) or not 0 <= page_id < len(self._pages):
            raise PageNotFoundError(
                f"no sealed page {page_id!r} in session {self.session!r} ({len(self._pages)} pages)"
            )
        return self._pages[page_id]

    def _is_open_page(self, page_id: int) -> bool:
        return page_id == len(self._pages) and bool(self._pending_ids)

    def page_image(self, page_id: int) -> Image.Image:
        """A page's image at its current rung (the open page at the top rung).

        Raises:
            PageNotFoundError: If there is no such page, or it was forgotten.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                pending = self._pending()
                assert pending is not None
                return pending.image.copy()
            page = self._page(page_id)
            if page.rung is Rung.FORGOTTEN:
                raise PageNotFoundError(f"page {page_id} was forgotten: it has no image")
            return self._image(page, page.rung).copy()

    def page_text(self, page_id: int) -> str | None:
        """The exact text of the turn pieces on a page, when it was kept (else None).

        Raises:
            PageNotFoundError: If there is no such page.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                pending = self._pending()
                spans = pending.spans if pending is not None else ()
            else:
                spans = self._page(page_id).spans
            if not self._text_kept(spans):
                return None
            return "\n\n".join((self._turns[s.turn].content or "")[s.start : s.end] for s in spans)

    def recall(self, page_id: int, *, reader: str | RecallBackend | None = None) -> Reading:
        """Read a page back as text, as well as it can still be read at its rung.

        Args:
            page_id: The page to read.
            reader: A reader name (``exact``, ``rapidocr``, ``tesseract``, ``endpoint``, ``deepseek``) or a
                reader object; default ``exact`` when the page's text was kept, else ``rapidocr``.

        Raises:
            PageNotFoundError: If there is no such page.
            MissingDependencyError: If the reader needs an extra that is not installed.
            RecallError: If the reader fails.
        """
        from optical_memory.recall import recall_page

        return recall_page(self, page_id, reader)

    def pin(self, page_id: int, rung: Rung | str | None = None) -> None:
        """Hold a page at exactly ``rung`` (its current rung when None), whatever its age.

        A pin sharper than the page's stored rung needs its text (``keep_text=True``): the page is then
        re-rendered. The open page's pin takes effect when it is sealed.

        Raises:
            PageNotFoundError: If there is no such page.
            ConfigError: For an unknown rung, or a sharper pin on a page whose text was dropped.
        """
        with self._lock:
            self._check_open()
            target = None if rung is None else as_rung(rung)
            if target is not None and rank(target) < rank(self._top):
                raise ConfigError(
                    f"pages are rendered at {self.config.page_size} px: the sharpest rung is {self._top.value}"
                )
            if self._is_open_page(page_id):
                pin = target or self._top
                self._write(lambda: self._set_open_pin(pin))
                return
            page = self._page(page_id)
            target = target or page.rung
            if rank(target) < rank(page.rung) and not self._can_sharpen(page):
                raise ConfigError(
                    f"page {page_id} is stored at {page.rung.value} and its text was dropped, so it cannot be "
                    f"pinned at the sharper {target.value} (keep_text=True keeps text for this)"
                )
            self._write(lambda: self._pin(page, target))

    def _pin(self, page: Page, target: Rung | None) -> None:
        self._settled = min(self._settled, page.page_id)
        self._store.set_pin(self._sid, page.page_id, None if target is None else target.value)
        page.pinned = target
        if target is not None:
            self._set_rung(page, target)
        else:
            self._apply_age(force=True)

    def _set_open_pin(self, pin: Rung | None) -> None:
        self._open_pin = pin
        self._save_session()

    def unpin(self, page_id: int) -> None:
        """Release a pin; the page then follows the age policy again (it never becomes sharper).

        Raises:
            PageNotFoundError: If there is no such page.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                self._write(lambda: self._set_open_pin(None))
                return
            page = self._page(page_id)
            self._write(lambda: self._pin(page, None))

    def forget(self, page_id: int) -> None:
        """Forget a sealed page now: its image is deleted from the store (and any pin released).

        Text kept with ``keep_text=True`` stays (``page_text`` still returns it).

        Raises:
            PageNotFoundError: If there is no such sealed page.
            InputError: If the page is the open page, which is still filling.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                raise InputError(
                    f"page {page_id} is still open (filling); only sealed pages can be forgotten"
                )
            page = self._page(page_id)

            def run() -> None:
                if page.pinned is not None:
                    self._store.set_pin(self._sid, page.page_id, None)
                    page.pinned = None
                self._set_rung(page, Rung.FORGOTTEN)

            self._write(run)

    def _write(self, action: Any) -> None:
        try:
            with self._store.transaction():
                action()
        except BaseException:
            self._load()
            raise

    def close(self) -> None:
        """Close the store (idempotent). The open page stays open: reopening resumes it."""
        with self._lock:
            self._store.close()

    def __enter__(self) -> OpticalMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self._store.path == MEMORY else self._store.path
        return f"OpticalMemory({where!r}, session={self.session!r}, turns={len(self._turns)}, pages={len(self._pages)})"


def _turns_of(item: PageItem, memory: OpticalMemory) -> tuple[int, int]:
    if item.page_id < len(memory._pages):
        return memory._pages[item.page_id].turns
    return (memory._pending_ids[0], memory._pending_ids[-1])
