"""The one write path of a session: window -> pack -> seal -> decay -> persist.

:class:`SessionWriter` holds a session's in-memory state (its turns, pages, recent window, open page and
running costs, the mirror of what the store holds) and is the only thing that changes it or writes the
session to the store. :class:`~optical_memory.memory.OpticalMemory` validates requests, holds its lock,
reads the state, and hands every change to :meth:`SessionWriter.write`.

How a write commits (one writer per session, across threads, processes and machines):

1. The session is reloaded if another writer changed it (its version in the store moved).
2. The request is checked against that state, then carried out in memory: layout, rendering, PNG encoding
   and downsampling all happen here, while the store's writes are only staged (an :class:`Overlay`), so no
   database lock is held and other sessions' writers (SQLite has one write lock per file) never wait on a
   render.
3. One short transaction takes the session's write lock, checks the version is still the one the request
   was carried out on, applies the staged writes and bumps the version. If another writer committed
   meanwhile, nothing is written: the session is reloaded and the request carried out again (a few
   times; the last try holds the lock throughout, so a write always gets through).

Anything that fails rolls the transaction back and reloads the session, so that memory and store never
disagree. Writes with no heavy work (the vision-token cache, clearing) run under the lock directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from PIL import Image

from optical_memory import assembly, decay
from optical_memory.config import EncoderConfig, MemoryConfig, as_config
from optical_memory.context import AddResult
from optical_memory.errors import ConfigError, InputError, OpticalMemoryError, StoreError
from optical_memory.gate import FidelityGate
from optical_memory.images import downsample, encode_png
from optical_memory.ladder import Rung, as_rung, rank
from optical_memory.policies import AgeLadder, PageState
from optical_memory.pricing.costs import CostModel, tokens_in, turn_text_tokens
from optical_memory.pricing.providers import Provider, get_provider
from optical_memory.recall.search import terms
from optical_memory.records import Page, TurnLookup, TurnRecord
from optical_memory.renderers import PagePacker
from optical_memory.spans import (
    EXACT_SHARE,
    MASK,
    Exact,
    Span,
    extract,
    line,
    mask_secrets,
    on_page,
    trim,
    turn_kinds,
)
from optical_memory.store import PageRow, ReadRow, Store, TurnRow
from optical_memory.tokens import DEFAULT_ENCODING, ENCODINGS
from optical_memory.types import RenderedPage, Turn, TurnSpan
from optical_memory.vision import Vision

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_FOUND_TURNS = 64
"""How many turns' verbatim spans the writer keeps found (the open page's turns are what it asks again)."""
OPTIMISTIC_TRIES = 3
"""How many times a write is carried out outside the lock before the last try holds the lock throughout."""


class _Stale(Exception):
    """Another writer committed to the session while a staged write was carried out."""


class Overlay:
    """The store as the write path sees it: its writes go straight through, or are staged until a commit.

    While staging, the page PNGs and packer states written are also what the write path reads back, so a
    page sealed earlier in the same request can be demoted before anything reached the store. Its methods
    are the :class:`~optical_memory.store.Store`'s of the same names.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ops: list[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] | None = None
        self._pngs: dict[int, bytes | None] = {}
        self._before: dict[int, str] = {}

    def stage(self) -> None:
        """Hold the writes from now on, until :meth:`flush` or :meth:`discard`."""
        self._ops, self._pngs, self._before = [], {}, {}

    def flush(self) -> None:
        """Apply the staged writes (inside the caller's transaction) and write through again."""
        ops, self._ops = self._ops or [], None
        self._pngs, self._before = {}, {}
        for method, args, kwargs in ops:
            method(*args, **kwargs)

    def discard(self) -> None:
        """Drop the staged writes and write through again."""
        self._ops, self._pngs, self._before = None, {}, {}

    def _do(self, method: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        if self._ops is None:
            method(*args, **kwargs)
        else:
            self._ops.append((method, args, kwargs))

    def insert_turn(self, sid: int, turn: TurnRow) -> None:
        self._do(self.store.insert_turn, sid, turn)

    def delete_turn(self, sid: int, turn_id: int) -> None:
        self._do(self.store.delete_turn, sid, turn_id)

    def update_turn_text(self, sid: int, turn: TurnRow) -> None:
        self._do(self.store.update_turn_text, sid, turn)

    def set_packer_before(self, sid: int, turn_id: int, state: str) -> None:
        if self._ops is not None:
            self._before[turn_id] = state
        self._do(self.store.set_packer_before, sid, turn_id, state)

    def turn_packer_before(self, sid: int, turn_id: int) -> str | None:
        if turn_id in self._before:
            return self._before[turn_id]
        return self.store.turn_packer_before(sid, turn_id)

    def drop_turn_text(self, sid: int, turn_ids: Sequence[int]) -> None:
        self._do(self.store.drop_turn_text, sid, list(turn_ids))

    def update_session(self, sid: int, **fields: Any) -> None:
        self._do(self.store.update_session, sid, **fields)

    def insert_page(self, sid: int, page: PageRow, png: bytes | None) -> None:
        if self._ops is not None:
            self._pngs[page.page_id] = png
        self._do(self.store.insert_page, sid, page, png)

    def set_page_image(self, sid: int, page_id: int, rung: str, png: bytes | None) -> None:
        if self._ops is not None:
            self._pngs[page_id] = png
        self._do(self.store.set_page_image, sid, page_id, rung, png)

    def page_png(self, sid: int, page_id: int) -> bytes | None:
        if page_id in self._pngs:
            return self._pngs[page_id]
        return self.store.page_png(sid, page_id)

    def set_pin(self, sid: int, page_id: int, pinned: str | None) -> None:
        self._do(self.store.set_pin, sid, page_id, pinned)

    def set_page_exact(self, sid: int, page_id: int, exact: Sequence[tuple[str, str, str]]) -> None:
        self._do(self.store.set_page_exact, sid, page_id, exact)

    def put_page_terms(self, sid: int, page_id: int, terms: str) -> None:
        self._do(self.store.put_page_terms, sid, page_id, terms)

    def delete_page_terms(self, sid: int, page_id: int) -> None:
        self._do(self.store.delete_page_terms, sid, page_id)


class SessionWriter:
    """A session's state, and the one path that changes it (callers hold the memory's lock).

    Args:
        store: The store.
        session: The session's name; created with ``config`` (or the defaults) when new.
        config: A config replacing the stored one (it must be compatible), or None to keep it.

    Raises:
        StoreError: If the store cannot be read or holds damaged data.
        ConfigError: If ``config`` is incompatible with the stored one.
    """

    def __init__(self, store: Store, session: str, config: MemoryConfig | None) -> None:
        self.store = store
        self._out = Overlay(store)
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
                store.bump_version(row.id)
        self.sid = row.id
        self.load()

    def load(self) -> None:
        """(Re)build every in-memory structure from the store, from one consistent snapshot of it."""
        with self.store.snapshot():
            try:
                self._load_snapshot()
            except (OpticalMemoryError, ValueError, KeyError, IndexError, TypeError) as exc:
                if isinstance(exc, StoreError):
                    raise
                raise StoreError(
                    f"{self.store.path}: session {self.session!r} holds damaged data ({exc})"
                ) from exc

    def _load_snapshot(self) -> None:
        row = self.store.session(self.session)
        if row is None:
            raise StoreError(f"session {self.session!r} vanished from the store")
        self.config = as_config(row.config)
        self.profile = self.config.render_profile()
        self.policy = self.config.build_policy()
        self.age_unit = getattr(self.policy, "unit", None)
        never_forgets = isinstance(self.policy, AgeLadder) and self.policy.forget_after is None
        self._final = self.profile.last if never_forgets else None
        # pages below this index are unpinned and at their final rung: the age pass skips them
        self._settled = 0
        self.top = self.profile.top
        self.style = self.profile.style()
        self.images = decay.PageImages(self._out, self.sid, self.profile)
        self._costs: dict[tuple[str, str | None], CostModel] = {}
        self.cost = self.cost_model(get_provider(self.config.provider))
        vision: Vision | None = getattr(self, "vision", None)
        if vision is None or vision.config != self.config.encoder:
            vision = Vision(self.config.encoder)
        self.vision = vision  # kept across reloads while its settings hold: the encoder loads once
        gate: FidelityGate | None = getattr(self, "gate", None)
        reader, least = self.config.gate_reader, self.config.gate_min_accuracy
        if reader is None:
            gate = None
        elif gate is None or (gate.reader_name, gate.min_accuracy) != (reader, least):
            gate = FidelityGate(reader, least)
        self.gate = gate  # kept across reloads like the encoder: its reader loads once, its verdicts hold
        self.held: set[int] = set()  # pages the gate holds above the rung their age asks
        self.turns = [TurnRecord.from_row(t) for t in self.store.turns(self.sid)]
        self.calls = {c.id: c.name for rec in self.turns for c in rec.tool_calls}
        self._history: dict[str, int] = {}  # every turn's tokens per encoding, counted once then kept
        self.pages = [Page.from_row(p) for p in self.store.pages(self.sid)]
        self.pinned = {p.page_id for p in self.pages if p.pinned is not None}
        self.forgotten = {p.page_id for p in self.pages if p.rung is Rung.FORGOTTEN}
        self._sealed: dict[str, list[int]] = {}  # the sealed pages' text per encoding: tokens, messages
        self.open_pin = None if row.open_pin is None else as_rung(row.open_pin)
        self.n_system = row.n_system
        self.packed_upto = row.packed_upto
        self.version = row.version
        self.window: deque[int] = deque(range(self.packed_upto, len(self.turns)))
        self._window_o200k = sum(self.turns[t].tokens.get(DEFAULT_ENCODING, 0) for t in self.window)
        self.packer = self._restore_packer(row.packer_state)
        self.pending_ids = self.packer.pending_turn_ids()
        self._pending_render: RenderedPage | None = None
        self._open_png: bytes | None = None  # the open page's PNG, encoded once per open page
        self._pending_cost: dict[str, int] | None = None
        self._pending_exact: Exact | None = None
        self._found: dict[int, list[Span]] = {}  # spans of the newest paged turns' text, by turn id
        self._piece_costs: dict[TurnSpan, dict[str, int]] = {}  # the open page's pieces' text costs
        self._readings: dict[int, dict[str, ReadRow]] | None = None  # read from the store when first asked
        self.tally = assembly.Tally()  # the sealed pages' share of the context cost, kept as running sums
        for page in self.pages:
            self._account(page, 1)

    def _restore_packer(self, state: str | None) -> PagePacker:
        """The packer of the open page; an open page saved by an older layout is laid out again."""
        if not state:
            return PagePacker(self.style)
        try:
            return PagePacker.restore(json.loads(state), TurnLookup(self.turns), self.style)
        except InputError as exc:
            ids = [int(i) for i in json.loads(state).get("turn_ids", [])]
            logger.warning("laying out the open page of session %r again (%s)", self.session, exc)
            packer = PagePacker(self.style)
            for tid in ids:
                for _ in packer.iter_add(self.turns[tid].turn(), tid):
                    pass  # an older layout may overflow: the open page keeps its last part
            return packer

    def cost_model(self, provider: Provider) -> CostModel:
        """The cost model pricing this session's pages on ``provider`` (with its learned ratio)."""
        key = (provider.name, provider.detail)
        model = self._costs.get(key)
        if model is None:
            learned = self.store.calibration(provider.name)
            ratio = 1.0 if learned is None else learned[0]
            model = self._costs[key] = CostModel(provider, self.profile, ratio)
        return model

    def add(self, t: Turn, tokens: dict[str, int]) -> AddResult:
        """Store a checked turn with its token counts, then page, seal and decay what it pushes out."""
        tid = len(self.turns)
        rec = TurnRecord(
            t.role, t.name, t.content, tokens, time.time(), t.tool_calls, t.tool_call_id, t.images
        )
        self.turns.append(rec)
        self.calls.update((c.id, c.name) for c in t.tool_calls)
        for encoding in self._history:
            self._history[encoding] += tokens_in(tokens, encoding)
        self._out.insert_turn(self.sid, rec.to_row(tid))
        if self.n_system == tid and t.role == "system":
            self.n_system += 1
            self.packed_upto = tid + 1
        else:
            self.window.append(tid)
            self._window_o200k += tokens.get(DEFAULT_ENCODING, 0)
        sealed = self._evict()
        demoted = self.apply_age(force=bool(sealed))
        if not self.config.keep_text:
            self._drop_paid_text([*sealed, *demoted])
        self._save_session()
        return AddResult(tid, tuple(sealed), tuple(demoted), self.current_cost())

    def pop(self) -> Turn:
        """Remove the newest turn (in the recent window, or a leading system turn) and return it."""
        tid = len(self.turns) - 1
        in_window = bool(self.window) and self.window[-1] == tid
        turn = self.turns[tid].turn()
        self._out.delete_turn(self.sid, tid)
        rec = self.turns.pop()
        for call in rec.tool_calls:
            self.calls.pop(call.id, None)
        for encoding in self._history:
            self._history[encoding] -= tokens_in(rec.tokens, encoding)
        if in_window:
            self.window.pop()
            self._window_o200k -= rec.tokens.get(DEFAULT_ENCODING, 0)
        else:  # a leading system turn
            self.n_system -= 1
            self.packed_upto = tid
        self._save_session()
        return turn

    def _over_window(self) -> bool:
        cfg = self.config
        if cfg.recent_turns is not None and len(self.window) > cfg.recent_turns:
            return True
        return cfg.recent_tokens is not None and self._window_o200k > cfg.recent_tokens

    def _group(self) -> int:
        """How many turns leave the window together from its oldest end (0: they must wait).

        An assistant turn that calls tools leaves with the tool turns answering it; while a call is
        unanswered and nothing newer than its results has come, the turn waits in the window. The newest
        tool step (a call with all its results) leaves only when something newer comes, so an agent reads
        the results it just asked for as text (unless ``recent_turns=0`` asks for no text at all).
        """
        head = self.turns[self.window[0]]
        if not head.tool_calls:
            return 1
        waiting = {c.id for c in head.tool_calls}
        n = 1
        while n < len(self.window) and waiting:
            rec = self.turns[self.window[n]]
            if rec.role != "tool" or rec.tool_call_id not in waiting:
                break
            waiting.discard(rec.tool_call_id)
            n += 1
        whole = n == len(self.window)  # the newest step: it stays text, whatever its size
        return 0 if whole and (waiting or self.config.recent_turns != 0) else n

    def _evict(self) -> list[int]:
        """Move turns leaving the recent window into pages; returns the ids of pages sealed."""
        sealed: list[int] = []
        packed = False
        while self.window and self._over_window():
            n = self._group()
            if n == 0:
                break
            for _ in range(n):
                tid = self.window.popleft()
                rec = self.turns[tid]
                self._window_o200k -= rec.tokens.get(DEFAULT_ENCODING, 0)
                self._mask(tid)
                if self.config.keep_text:
                    self._out.set_packer_before(self.sid, tid, json.dumps(self.packer.state()))
                for rendered in self.packer.iter_add(self.turns[tid].turn(), tid):
                    sealed.append(self._seal(rendered))
                self.packed_upto = tid + 1
            packed = True
        if packed:
            self.pending_ids = self.packer.pending_turn_ids()
            self._pending_render = None
            self._pending_cost = None
            self._pending_exact = None
            self._open_png = None
        return sealed

    def _mask(self, tid: int) -> None:
        """Mask the credentials of a turn leaving the window (its text and its calls' arguments), before it
        is laid out: pages, their verbatim spans and the text kept never carry them (see
        :func:`~optical_memory.spans.mask_secrets`)."""
        rec = self.turns[tid]
        if rec.content is None:
            return
        content, n = mask_secrets(rec.content)
        calls = []
        for call in rec.tool_calls:
            arguments, k = mask_secrets(call.arguments)
            calls.append(dataclasses.replace(call, arguments=arguments))
            n += k
        if not n:
            return
        tokens = {enc: turn_text_tokens(content, calls, enc) for enc in ENCODINGS}
        for encoding in self._history:
            self._history[encoding] += tokens_in(tokens, encoding) - tokens_in(rec.tokens, encoding)
        rec.content, rec.tool_calls, rec.tokens = content, tuple(calls), tokens
        self._out.update_turn_text(self.sid, rec.to_row(tid))

    def _exact(self, spans: Sequence[TurnSpan], rung: Rung) -> Exact:
        """The verbatim spans of a page's turn pieces (their text must be kept), fitted to ``rung``."""
        found = on_page((self.turns[s.turn].role, self._turn_spans(s.turn), s.start, s.end) for s in spans)
        return trim(found, self._exact_chars(rung))

    def _turn_spans(self, tid: int) -> list[Span]:
        """The verbatim spans of a turn's whole text, found once while the turn is on the open page."""
        found = self._found.get(tid)
        if found is None:
            rec = self.turns[tid]
            found = extract(rec.content or "", turn_kinds(rec.role, self.config.exact_kinds))
            if len(self._found) >= _FOUND_TURNS:
                del self._found[next(iter(self._found))]
            self._found[tid] = found
        return found

    def masked_in(self, spans: Sequence[TurnSpan]) -> int:
        """How many credentials were masked in a page's turn pieces (whose text must be kept)."""
        return sum((self.turns[s.turn].content or "")[s.start : s.end].count(MASK) for s in spans)

    def _exact_chars(self, rung: Rung) -> int:
        """Most characters of verbatim spans a page keeps at ``rung``."""
        return int(self.config.exact_chars * EXACT_SHARE[rung])

    def _seal(self, rendered: RenderedPage) -> int:
        pid = len(self.pages)
        page = Page(
            pid,
            self.top,
            rendered.spans,
            rendered.text_tokens,
            rendered.missing_glyphs,
            time.time(),
            text_cost=assembly.page_text_cost(self.turns, rendered.spans),
            exact=self._exact(rendered.spans, self.top),
            masked=self.masked_in(rendered.spans),
        )
        page.pinned, self.open_pin = self.open_pin, None  # a pin on the open page holds once it is sealed
        self.images.insert(page, rendered.image)
        self._out.put_page_terms(self.sid, pid, " ".join(terms(self.page_text(rendered.spans) or "")))
        self.pages.append(page)
        if page.pinned is not None:
            self.pinned.add(pid)
        for encoding, sums in self._sealed.items():
            _count_sealed(sums, page, encoding)
        self._account(page, 1)
        return pid

    def _pays(self, page: Page) -> bool:
        """Whether a sealed page's image at its rung, with the introduction images bring, costs less than
        its text on the memory's provider."""
        if page.rung is Rung.FORGOTTEN:
            return True
        text = self.cost.page_text(page.text_cost)
        image = self.cost.page(page.page_id, page.turns, page.rung, page.exact_line) + self.cost.intro(1)
        return text is None or image < text

    def _drop_paid_text(self, page_ids: Iterable[int]) -> None:
        """Forget the text of the turns on these pages that lie wholly on sealed pages paying as images."""
        first_open = self.pending_ids[0] if self.pending_ids else len(self.turns)
        done: dict[int, list[Page]] = {}
        for pid in sorted(set(page_ids)):
            if not self._pays(self.pages[pid]):
                continue
            for span in self.pages[pid].spans:
                t = span.turn
                if t in done or t >= first_open or self.turns[t].content is None:
                    continue
                pages = self._pages_of(t, pid)
                if all(self._pays(p) for p in pages):
                    done[t] = pages
        if not done:
            return
        touched = {p.page_id: p for pages in done.values() for p in pages}.values()
        for page in touched:
            self._account(page, -1)
        self._out.drop_turn_text(self.sid, sorted(done))
        for t in done:
            self.turns[t].content = None
            self.turns[t].images = ()
        for page in touched:
            self._account(page, 1)

    def _pages_of(self, turn: int, page_id: int) -> list[Page]:
        """The sealed pages holding a piece of ``turn``, one of which is ``page_id``."""
        first = last = page_id
        while first > 0 and self.pages[first - 1].spans[-1].turn == turn:
            first -= 1
        while last + 1 < len(self.pages) and self.pages[last + 1].spans[0].turn == turn:
            last += 1
        return self.pages[first : last + 1]

    def _save_session(self) -> None:
        self._out.update_session(
            self.sid,
            packer_state=json.dumps(self.packer.state()) if self.pending_ids else None,
            n_system=self.n_system,
            packed_upto=self.packed_upto,
            open_pin=None if self.open_pin is None else self.open_pin.value,
        )

    def state(self, page: Page, costs: Mapping[Rung, int], now: float) -> PageState:
        """What a policy sees of ``page`` now, priced with ``costs``."""
        return decay.page_state(
            page,
            costs,
            now,
            n_pages=len(self.pages),
            n_turns=len(self.turns),
            can_sharpen=self.can_sharpen(page),
        )

    def apply_age(self, *, force: bool) -> list[int]:
        """Run the policy's age rule (no budget) and store the rungs it picks; returns demoted ids."""
        if not self.pages or (self.age_unit == "pages" and not force):
            return []
        now = time.time()
        self._settled = decay.settled_upto(self.pages, self._settled, final=self._final)
        live = decay.movable(self.pages[self._settled :])
        assignment = self.policy.assign([self.state(p, self.cost.images, now) for p in live])
        demoted = []
        for page, rung in zip(live, assignment.rungs, strict=True):
            rung = self.profile.clamp(rung)
            if rank(rung) > rank(page.rung):
                allowed = self._gated(page, rung)
                if allowed is not rung:
                    self.held.add(page.page_id)
                    if allowed is page.rung:
                        continue
                    rung = allowed
                else:
                    self.held.discard(page.page_id)
                demoted.append(page.page_id)
            self._set_rung(page, rung)
        return demoted

    def _gated(self, page: Page, rung: Rung) -> Rung:
        """The lowest rung down to ``rung`` the fidelity gate (if any) lets ``page`` go to (its own when none;
        forgetting is not gated; see :mod:`optical_memory.gate`)."""
        if self.gate is None or rung is Rung.FORGOTTEN:
            return rung
        steps = [r for r, _ in self.profile.rungs if rank(page.rung) < rank(r) <= rank(rung)]
        return next((r for r in reversed(steps) if self._gate_allows(page, r)), page.rung)

    def _gate_allows(self, page: Page, rung: Rung) -> bool:
        assert self.gate is not None
        shape = self.profile.shape(rung)

        def image() -> Image.Image:
            return downsample(self.images.get(page, page.rung), shape.width, shape.height)

        def reference() -> tuple[str | None, str | None, tuple[str, ...]]:
            text = self.page_text(page.spans)
            bag = None if text else self.store.page_terms(self.sid, [page.page_id]).get(page.page_id)
            return text, bag, tuple(span for _, span, _ in page.exact)

        return self.gate.allows(page.page_id, rung, image, reference)

    def _set_rung(self, page: Page, rung: Rung) -> None:
        """Store a page at another rung: downsample in place, re-render from kept text, or forget."""
        rung = self.profile.clamp(rung)
        if rung is page.rung:
            return
        sharper = rung is not Rung.FORGOTTEN and rank(rung) < rank(page.rung)
        self.images.store_at(page, rung, self.rerender(page) if sharper else None)
        if self._readings is not None:  # the store dropped them with the image
            self._readings.pop(page.page_id, None)
        # the spans follow the page: found again from its kept text when it is made sharper, else trimmed
        exact = self._exact(page.spans, rung) if sharper else trim(page.exact, self._exact_chars(rung))
        if exact != page.exact:
            self._out.set_page_exact(self.sid, page.page_id, exact)
        self._account(page, -1)
        page.rung = rung
        page.set_exact(exact)
        if rung is Rung.FORGOTTEN:
            self._out.delete_page_terms(self.sid, page.page_id)
            self.forgotten.add(page.page_id)
        else:
            self.forgotten.discard(page.page_id)
        self._account(page, 1)

    def _account(self, page: Page, sign: int) -> None:
        """Add (or take away) a sealed page's share of the running context cost on the memory's provider."""
        if sign < 0:
            if page.tallied is not None:
                self.tally.add(*page.tallied, sign=-1)
            page.tallied = None
            return
        if page.rung is not Rung.FORGOTTEN:
            text = self.cost.page_text(page.text_cost) if self.text_kept(page.spans) else None
            page.tallied = (self.cost.page(page.page_id, page.turns, page.rung, page.exact_line), text)
            self.tally.add(*page.tallied)

    def rerender(self, page: Page) -> Image.Image:
        """The page at the top rung again, replayed from kept text with the same packer layout.

        Raises:
            ConfigError: If the text of a turn on the page was not kept.
            StoreError: If the replay does not reproduce the page's layout.
        """
        if not self.can_sharpen(page):
            raise ConfigError(
                f"page {page.page_id} cannot be made sharper than {page.rung.value}: its text was dropped "
                "(the memory keeps only the page image unless keep_text=True)"
            )
        return self.images.rerender(page, TurnLookup(self.turns), self.packed_upto, self.style)

    def can_sharpen(self, page: Page) -> bool:
        """Whether a page can be re-rendered sharper (its turns' text is kept)."""
        return self.config.keep_text and self.text_kept(page.spans)

    def text_kept(self, spans: tuple[TurnSpan, ...]) -> bool:
        """Whether the text of every turn these spans cut from is still kept."""
        return all(self.turns[s.turn].content is not None for s in spans)

    def page_text(self, spans: Sequence[TurnSpan]) -> str | None:
        """The text of a page's turn pieces, or None when a turn's text was dropped."""
        if not self.text_kept(tuple(spans)):
            return None
        return "\n\n".join((self.turns[s.turn].content or "")[s.start : s.end] for s in spans)

    def readings(self) -> dict[int, dict[str, ReadRow]]:
        """The cached readings of the pages, by page id then reader (read from the store once per load)."""
        if self._readings is None:
            self._readings = {}
            for row in self.store.page_reads(self.sid):
                self._readings.setdefault(row.page_id, {})[row.reader] = row
        return self._readings

    def cache_reading(self, row: ReadRow) -> None:
        """Keep a page's reading (the store keeps it only while the page is stored at the rung it was read
        at). It does not change the session's version: another memory sees it after its next reload."""
        if row.page_id >= len(self.pages):  # the open page (it has no stored image), or gone meanwhile
            return
        with self.store.transaction():
            self.store.put_page_read(self.sid, row)
        if self.pages[row.page_id].rung.value == row.rung:
            self.readings().setdefault(row.page_id, {})[row.reader] = row

    def pending(self) -> RenderedPage | None:
        """The open page rendered (once per open page), or None when there is none."""
        if self._pending_render is None and self.pending_ids:
            self._pending_render = self.packer.pending()
        return self._pending_render

    def pending_png(self) -> bytes | None:
        """The open page's PNG (encoded once per open page), or None."""
        pending = self.pending()
        if pending is not None and self._open_png is None:
            self._open_png = encode_png(pending.image)
        return self._open_png

    def open_cost(self) -> dict[str, int]:
        """What the open page's turn pieces cost as text, per encoding (counted once per open page)."""
        if not self.pending_ids:
            return {}
        if self._pending_cost is None:
            spans = self.packer.pending_spans()
            known = {s: c for s, c in self._piece_costs.items() if s in spans}  # the pieces still open
            self._pending_cost = assembly.page_text_cost(self.turns, spans, known)
            self._piece_costs = known
        return self._pending_cost

    def open_exact(self) -> Exact:
        """The open page's verbatim spans (found once per open page)."""
        if not self.pending_ids:
            return ()
        if self._pending_exact is None:
            self._pending_exact = self._exact(self.packer.pending_spans(), self.top)
        return self._pending_exact

    def history_tokens(self, encoding: str) -> int:
        """Tokens of every turn's text in ``encoding`` (counted once, then kept as a running sum)."""
        n = self._history.get(encoding)
        if n is None:
            n = self._history[encoding] = sum(tokens_in(t.tokens, encoding) for t in self.turns)
        return n

    def sealed_text(self, cost: CostModel) -> int:
        """What every sealed page counts for in the history on ``cost`` (the sum of
        :meth:`~optical_memory.pricing.costs.CostModel.page_history`; counted once, then kept as running
        sums)."""
        sums = self._sealed.get(cost.encoding)
        if sums is None:
            sums = self._sealed[cost.encoding] = [0, 0]
            for page in self.pages:
                _count_sealed(sums, page, cost.encoding)
        return sums[0] + cost.overhead * sums[1]

    def current_cost(self) -> int:
        """The memory's provider's context cost without a budget (kept as running sums)."""
        c = self.cost
        text = sum(
            c.turn(self.turns[t].tokens, self.turns[t].images) for t in (*range(self.n_system), *self.window)
        )
        tally = dataclasses.replace(self.tally)
        if self.pending_ids:
            turns = (self.pending_ids[0], self.pending_ids[-1])
            exact = line(len(self.pages), self.open_exact())
            tally.add(c.page(len(self.pages), turns, self.top, exact), c.page_text(self.open_cost()))
        return text + tally.total(c.intro(1))

    def cache_tokens(self, fingerprint: str, rows: list[Any]) -> None:
        """Cache encoded vision tokens, then bound the cache (call under :meth:`write`, not staged)."""
        self.store.put_vision_tokens(self.sid, fingerprint, rows)
        self.prune(fingerprint)

    def prune(self, fingerprint: str) -> int:
        """Bound the vision-token cache; returns the rows deleted (call under :meth:`write`, not staged)."""
        mb = (self.config.encoder or EncoderConfig()).cache_mb
        return self.store.prune_vision_tokens(self.sid, fingerprint, None if mb is None else int(mb * 2**20))

    def pin(self, page_id: int, target: Rung | None) -> None:
        """Hold a sealed page at ``target`` (re-rendered when sharper), or release its pin (None)."""
        page = self.pages[page_id]
        self._settled = min(self._settled, page.page_id)
        self._out.set_pin(self.sid, page.page_id, None if target is None else target.value)
        page.pinned = target
        if target is not None:
            self.pinned.add(page_id)
            self._set_rung(page, target)
        else:
            self.pinned.discard(page_id)
            self.apply_age(force=True)

    def set_open_pin(self, pin: Rung | None) -> None:
        """Pin the open page (it takes effect when the page is sealed), or release its pin."""
        self.open_pin = pin
        self._save_session()

    def forget(self, page_id: int) -> None:
        """Forget a sealed page now (releasing any pin); its kept text stays."""
        page = self.pages[page_id]
        if page.pinned is not None:
            self._out.set_pin(self.sid, page.page_id, None)
            page.pinned = None
            self.pinned.discard(page_id)
        self._set_rung(page, Rung.FORGOTTEN)
        if not self.config.keep_text:
            self._drop_paid_text([page.page_id])

    def write(
        self, action: Callable[[], _T], check: Callable[[], object] | None = None, *, staged: bool = True
    ) -> _T:
        """Carry out ``action`` (which changes the session) and commit it as one transaction.

        ``check`` validates the request against the session's current state first (raising before
        anything changes); callers have caught up with the store just before (a write that slipped in since
        is found at the commit). With ``staged`` (for requests that render or encode), the action runs outside
        the store's lock and its writes are applied by a short commit, carried out again if another writer
        committed meanwhile (see the module docstring); without, it runs under the lock.
        """
        if staged:
            for _ in range(OPTIMISTIC_TRIES - 1):
                if check is not None:
                    check()
                self._out.stage()
                try:
                    result = action()
                    self._commit_staged()
                    return result
                except _Stale:
                    logger.info(
                        "session %r was written meanwhile: carrying the write out again", self.session
                    )
                    self.load()
                except BaseException:
                    self._out.discard()
                    self.load()
                    raise
        return self._write_locked(action, check)

    def _commit_staged(self) -> None:
        """Apply the staged writes if the session is still at the version they were made on.

        Raises:
            _Stale: If another writer committed meanwhile (nothing is written then).
        """
        with self.store.transaction():
            self.store.lock_session(self.sid)
            if self.store.version(self.sid) != self.version:
                self._out.discard()
                raise _Stale
            self._out.flush()
            self.version = self.store.bump_version(self.sid)

    def _write_locked(self, action: Callable[[], _T], check: Callable[[], object] | None) -> _T:
        """Carry out ``action`` inside one write transaction holding the session's lock throughout."""
        started = False
        try:
            with self.store.transaction():
                self.store.lock_session(self.sid)
                if self.store.version(self.sid) != self.version:
                    logger.info("session %r changed in the store: reloading it before writing", self.session)
                    self.load()
                if check is not None:
                    check()
                started = True
                result = action()
                self.version = self.store.bump_version(self.sid)
                return result
        except BaseException:
            if started:
                self.load()
            raise

    def refresh(self) -> None:
        """Reload the session if another writer changed it (what a reader calls before answering)."""
        if self.store.version(self.sid) != self.version:
            self.load()

    def learn(self, provider: str, ratio: float, samples: int) -> None:
        """Save a model's learned billed/predicted image ratio, and price later contexts with it."""
        self.write(lambda: self.store.set_calibration(provider, ratio, samples), staged=False)
        self._costs = {k: v for k, v in self._costs.items() if k[0] != provider}
        if provider == self.cost.provider.name:  # the memory's own prices change: recount
            self.cost = self.cost_model(self.cost.provider)
            self.tally = assembly.Tally()
            for page in self.pages:
                page.tallied = None
                self._account(page, 1)

    def clear(self) -> None:
        """Remove every turn and page of the session (its config stays)."""
        self.write(lambda: self.store.clear_session(self.sid), staged=False)
        self.load()


def _count_sealed(sums: list[int], page: Page, encoding: str) -> None:
    """Add a sealed page's text (tokens in ``encoding``, messages) to running sums, as
    :meth:`~optical_memory.pricing.costs.CostModel.page_history` counts it."""
    if page.text_cost:
        sums[0] += tokens_in(page.text_cost, encoding)
        sums[1] += page.text_cost.get("messages", 1)
    else:
        sums[0] += page.text_tokens
