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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from PIL import Image

from optical_memory import assembly, decay, ladder
from optical_memory.config import MemoryConfig, as_config
from optical_memory.context import AddResult, Context, CostModel, PageInfo, turn_range
from optical_memory.errors import ConfigError, InputError, PageNotFoundError, StoreError
from optical_memory.formats import EMBEDDINGS, Item, PageItem, build_messages
from optical_memory.ladder import Rung, as_rung, rank
from optical_memory.policies import AgeLadder, PageState, TokenBudget
from optical_memory.providers import get_provider
from optical_memory.records import Page, TurnLookup, TurnRecord
from optical_memory.renderers import PagePacker, RenderStyle
from optical_memory.store import MEMORY, Store, TurnRow
from optical_memory.tokens import DEFAULT_ENCODING, ENCODINGS, count_tokens
from optical_memory.types import RenderedPage, Turn, TurnSpan, as_turn
from optical_memory.vision import TokenRequest, Vision, page_tokens

if TYPE_CHECKING:
    from optical_memory.recall.base import Reading, RecallBackend

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


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
        self._images = decay.PageImages(store, row.id)
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
        # pages below this index are unpinned and at their final rung: the age pass skips them
        self._settled = 0
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
        self._images.clear()
        self._page_cost_sum = sum(self._cost.page(p.page_id, p.turns, p.rung) for p in self._pages)

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
            return self._write(lambda: self._add(t, tokens))

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
        page = Page(
            pid, self._top, rendered.spans, rendered.text_tokens, rendered.missing_glyphs, time.time()
        )
        page.pinned, self._open_pin = self._open_pin, None  # a pin on the open page holds once it is sealed
        self._images.insert(page, rendered.image)
        self._pages.append(page)
        self._page_cost_sum += self._cost.page(pid, page.turns, page.rung)
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

    # --- decay (the age rule and its images: optical_memory.decay) -------------------------------------

    def _state(self, page: Page, costs: Mapping[Rung, int], now: float) -> PageState:
        return decay.page_state(
            page,
            costs,
            now,
            n_pages=len(self._pages),
            n_turns=len(self._turns),
            can_sharpen=self._can_sharpen(page),
        )

    def _apply_age(self, *, force: bool) -> list[int]:
        """Run the policy's age rule (no budget) and store the rungs it picks; returns demoted ids."""
        if not self._pages or (self._age_unit == "pages" and not force):
            return []
        now = time.time()
        self._settled = decay.settled_upto(self._pages, self._settled, tiny_final=self._tiny_final)
        live = decay.movable(self._pages[self._settled :])
        assignment = self._age_policy.assign([self._state(p, self._cost.images, now) for p in live])
        demoted = []
        for page, rung in zip(live, assignment.rungs, strict=True):
            if rank(rung) > rank(page.rung):
                demoted.append(page.page_id)
            self._set_rung(page, rung)
        return demoted

    def _set_rung(self, page: Page, rung: Rung) -> None:
        """Store a page at another rung: downsample in place, re-render from kept text, or forget."""
        if rung is page.rung:
            return
        sharper = rung is not Rung.FORGOTTEN and rank(rung) < rank(page.rung)
        self._images.store_at(page, rung, self._rerender(page) if sharper else None)
        old, new = (self._cost.page(page.page_id, page.turns, r) for r in (page.rung, rung))
        self._page_cost_sum += new - old
        page.rung = rung

    def _rerender(self, page: Page) -> Image.Image:
        """The page at the top rung again, replayed from kept text with the same packer layout.

        Raises:
            ConfigError: If the text of a turn on the page was not kept.
            StoreError: If the replay does not reproduce the page's layout.
        """
        if not self._can_sharpen(page):
            raise ConfigError(
                f"page {page.page_id} cannot be made sharper than {page.rung.value}: its text was dropped "
                "(the memory keeps only the page image unless keep_text=True)"
            )
        return self._images.rerender(page, TurnLookup(self._turns), self._packed_upto, self._style)

    def _can_sharpen(self, page: Page) -> bool:
        return self.config.keep_text and self._text_kept(page.spans)

    def _text_kept(self, spans: tuple[TurnSpan, ...]) -> bool:
        return all(self._turns[s.turn].content is not None for s in spans)

    # --- reading the records ----------------------------------------------------------------------------

    def _pending(self) -> RenderedPage | None:
        if self._pending_render is None and self._pending_ids:
            self._pending_render = self._packer.pending()
        return self._pending_render

    def _open_turns(self) -> tuple[int, int]:
        return (self._pending_ids[0], self._pending_ids[-1])

    def _visible(self) -> Iterator[Page]:
        return (p for p in self._pages if p.rung is not Rung.FORGOTTEN)

    def _text_turns(self) -> list[TurnRecord]:
        """The turns sent as text: the system prompt, then the recent window."""
        return [self._turns[t] for t in (*range(self._n_system), *self._window)]

    def _current_cost(self) -> int:
        """The default provider's context cost without a budget (kept as running sums)."""
        c = self._cost
        text = sum(c.text(t.tokens) for t in self._text_turns())
        shown = sum(1 for _ in self._visible()) + bool(self._pending_ids)
        pending = c.page(len(self._pages), self._open_turns(), self._top) if self._pending_ids else 0
        return text + self._page_cost_sum + pending + c.intro(shown)

    def _check_open(self) -> None:
        if self._store.closed:
            raise StoreError("this memory is closed")

    # --- the context (assembled by optical_memory.assembly) -------------------------------------------

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
            fmt = assembly.resolve_format(format, cost.provider)
            if budget is None:
                budget = assembly.default_budget(self.config.budget, self._policy)
            records = self._records()
            rungs, left_out = self._rungs(records, cost, budget)
            # hosted formats send PNG bytes: reuse the stored ones (hf and embeddings take pixels)
            with_png = fmt not in ("hf", EMBEDDINGS)
            shown = assembly.page_items(
                records, rungs, lambda p, r: self._images.item(p, r, with_png=with_png)
            )
            items = assembly.ordered(records, shown)
            if fmt == EMBEDDINGS:
                return self._embeddings_context(records, items, shown, cost, left_out)
            usage = assembly.message_usage(records, cost, shown, left_out)
            formatted = build_messages(items, format=fmt, detail=cost.provider.detail)
            return Context(formatted.messages, formatted.system, usage, fmt, name, tuple(items))

    def _records(self) -> assembly.Records:
        return assembly.Records(
            self._turns,
            self._text_turns(),
            self._n_system,
            list(self._visible()),
            len(self._pages),
            self._pending(),
            self._top,
        )

    def _rungs(
        self, records: assembly.Records, cost: CostModel, budget: int | None
    ) -> tuple[list[Rung], tuple[int, ...]]:
        """Each visible page's rung in this context: the stored one, or what fits ``budget``."""
        if budget is None:
            return [p.rung for p in records.visible], ()
        now = time.time()
        states = [self._state(p, cost.page_costs(p.page_id, p.turns), now) for p in records.visible]
        return assembly.fit(self._policy, records, states, cost, budget)

    def _embeddings_context(
        self,
        records: assembly.Records,
        items: list[Item],
        shown: list[PageItem],
        cost: CostModel,
        left_out: tuple[int, ...],
    ) -> Context:
        """The ``embeddings`` context: vision tokens (cached per page, rung and encoder) laid out as ids."""
        from optical_memory.embeddings import load_tokenizer

        tokenizer = load_tokenizer(self._vision.tokenizer_path())  # fail before encoding anything
        encoder = self._vision.encoder
        requests = [
            TokenRequest(p.page_id, p.rung, p.image, cacheable=p.page_id < records.n_sealed) for p in shown
        ]
        tokens, new_rows = page_tokens(self._store, self._sid, encoder, requests)
        if new_rows:
            self._write(lambda: self._store.put_vision_tokens(self._sid, encoder.fingerprint, new_rows))
        inputs = assembly.embedding_inputs(tokenizer, items, tokens, self._n_system, self._vision.table)
        image = int(inputs.image_mask.sum())
        usage = assembly.usage(records, cost, len(inputs) - image, image, shown, left_out)
        return Context([], None, usage, EMBEDDINGS, cost.provider.name, tuple(items), inputs)

    # --- pages ------------------------------------------------------------------------------------------

    def pages(self) -> list[PageInfo]:
        """Every page, oldest first: sealed pages (forgotten ones too), then the open page if any."""
        with self._lock:
            self._check_open()
            out = [self._info(p.page_id, p.rung, p.spans, p.pinned, sealed=True) for p in self._pages]
            pending = self._pending()
            if pending is not None:
                out.append(
                    self._info(len(self._pages), self._top, pending.spans, self._open_pin, sealed=False)
                )
            return out

    def _info(
        self, page_id: int, rung: Rung, spans: tuple[TurnSpan, ...], pinned: Rung | None, *, sealed: bool
    ) -> PageInfo:
        turns = turn_range(spans)
        age_pages = len(self._pages) - 1 - page_id if sealed else -1
        age_turns = len(self._turns) - 1 - turns[1]
        text_kept = self._text_kept(spans) if sealed else True  # the open page's turns keep their text
        cost = ladder.positions(rung)
        return PageInfo(page_id, rung, age_pages, age_turns, turns, spans, cost, sealed, pinned, text_kept)

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
            return self._images.get(page, page.rung).copy()

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
            self._write(lambda: self._forget(page))

    def _forget(self, page: Page) -> None:
        if page.pinned is not None:
            self._store.set_pin(self._sid, page.page_id, None)
            page.pinned = None
        self._set_rung(page, Rung.FORGOTTEN)

    def _write(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` in one transaction; if it fails, reload so that memory agrees with the store."""
        try:
            with self._store.transaction():
                return action()
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
