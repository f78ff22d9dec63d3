"""The facade users hold: :class:`OpticalMemory` (add turns, get a priced context, see and pin pages).

How a turn travels:

1. ``add(turn)`` checks it (a tool result must answer a call the session made) and stores it. Leading
   system turns (the system prompt) stay text for good; every other turn enters the recent window, which
   holds the newest turns as text (``recent_turns`` / ``recent_tokens``).
2. Turns leaving the window go, in order, to a :class:`~optical_memory.renderers.PagePacker`, which lays
   out only that turn and appends it to the open page. An assistant turn that calls tools leaves together
   with its results (it waits for them), so a call and its result are never split by the window. Pages
   are laid out with the config's render profile (by default the provider's; see
   :mod:`optical_memory.profiles`). Sealed pages are stored as PNG at the top rung, with what their turn
   pieces would cost as text. The open page is never decayed and not stored as an image: its turns'
   text is kept until sealed, and a reopened store rebuilds it with ``PagePacker.restore``.
3. A sealed page's turns keep their text until the page's image (at its rung) costs less than that text
   on the memory's provider; then the text of turns wholly on such pages is dropped (only their token
   counts stay), unless ``keep_text=True``. The configured policy's age rule runs on every add (for
   ``unit="pages"`` only when a page was sealed, since ages change only then) and demotes pages *in
   place*: the stored PNG is replaced by a downsampled one (rungs the profile lacks map to its nearest).
   A page never becomes sharper by itself; with kept text a page pinned sharper is re-rendered from its
   turns with the same packer layout (a replay from the packer state saved just before its first turn).
4. ``context(provider=..., budget=...)`` builds the messages: system text, then the older conversation
   oldest first (each page at its rung, as an image, or as its turns' text when that is no dearer and
   still kept; under the budget the policy demotes or leaves out pages for this response only, on
   copies), then the recent turns. The budget defaults to half the target model's context window.

Cost per add is flat in the history: one turn's layout, a PNG encode per sealed page, a downsample per
demoted page, and at most one pass over page metadata (kept in memory; only changed rows are written).
Everything is one SQLite transaction; if anything fails the transaction rolls back and the in-memory
state is reloaded from the store, so memory and store never disagree. All methods are thread-safe, and
``aadd``, ``acontext``, ``arecall`` and ``apages`` run them on a worker thread for an event loop.
``sync(history)`` adds what a whole handed-over history has beyond the stored turns (what the framework
adapters in :mod:`optical_memory.integrations` call on every model call); ``pop`` and ``clear`` undo.

``observe_usage(context, input_tokens)`` learns, per model, how the provider's bill compares with the
image formula, and prices later contexts (and their budgets) with that ratio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from PIL import Image

from optical_memory import assembly, decay, telemetry
from optical_memory.backends import MEMORY
from optical_memory.config import Budget, EncoderConfig, MemoryConfig, as_config
from optical_memory.context import AddResult, Context, CostModel, PageInfo, turn_range, turn_text_tokens
from optical_memory.errors import ConfigError, InputError, OpticalMemoryError, PageNotFoundError, StoreError
from optical_memory.formats import EMBEDDINGS, Item, PageItem, build_messages
from optical_memory.images import encode_png
from optical_memory.ladder import Rung, as_rung, rank
from optical_memory.policies import AgeLadder, PageState
from optical_memory.providers import Provider, get_provider
from optical_memory.records import Page, TurnLookup, TurnRecord
from optical_memory.renderers import PagePacker
from optical_memory.renderers.packer import page_capacity
from optical_memory.store import Store
from optical_memory.tokens import DEFAULT_ENCODING, ENCODINGS
from optical_memory.types import RenderedPage, Turn, TurnSpan, as_turn
from optical_memory.vision import TokenRequest, Vision, page_tokens

if TYPE_CHECKING:
    from optical_memory.recall.base import Reading, RecallBackend

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
CALIBRATION_BOUNDS = (0.5, 2.0)
"""The learned billed/predicted image ratio stays within these bounds (a report outside them is clipped)."""
_EMBEDDINGS_FITS = 4
"""How many times an ``embeddings`` context is fitted again when its positions overshoot the budget."""
_CALIBRATION_MEMORY = 20
"""Reports a learned ratio averages over (later reports move it by at most 1/20 each)."""


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
        compatible with the stored one (the same render profile) and replaces it.

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
                store.bump_version(row.id)
        self._sid = row.id
        self._load()

    def _load(self) -> None:
        """(Re)build every in-memory structure from the store, from one consistent snapshot of it."""
        with self._store.snapshot():
            try:
                self._load_snapshot()
            except (OpticalMemoryError, ValueError, KeyError, IndexError, TypeError) as exc:
                if isinstance(exc, StoreError):
                    raise
                raise StoreError(
                    f"{self._store.path}: session {self.session!r} holds damaged data ({exc})"
                ) from exc

    def _load_snapshot(self) -> None:
        row = self._store.session(self.session)
        if row is None:
            raise StoreError(f"session {self.session!r} vanished from the store")
        self.config = as_config(row.config)
        self.profile = self.config.render_profile()
        self._policy = self.config.build_policy()
        self._age_unit = getattr(self._policy, "unit", None)
        never_forgets = isinstance(self._policy, AgeLadder) and self._policy.forget_after is None
        self._final = self.profile.last if never_forgets else None
        # pages below this index are unpinned and at their final rung: the age pass skips them
        self._settled = 0
        self._top = self.profile.top
        self._style = self.profile.style()
        self._images = decay.PageImages(self._store, self._sid, self.profile)
        self._costs: dict[tuple[str, str | None], CostModel] = {}
        self._cost = self._cost_model(get_provider(self.config.provider))
        vision: Vision | None = getattr(self, "_vision", None)
        if vision is None or vision.config != self.config.encoder:
            vision = Vision(self.config.encoder)
        self._vision = vision  # kept across reloads while its settings hold: the encoder loads once
        self._turns = [TurnRecord.from_row(t) for t in self._store.turns(self._sid)]
        self._calls = {c.id: c.name for rec in self._turns for c in rec.tool_calls}
        self._pages = [Page.from_row(p) for p in self._store.pages(self._sid)]
        self._open_pin = None if row.open_pin is None else as_rung(row.open_pin)
        self._n_system = row.n_system
        self._packed_upto = row.packed_upto
        self._version = row.version
        self._window: deque[int] = deque(range(self._packed_upto, len(self._turns)))
        self._window_o200k = sum(self._turns[t].tokens.get(DEFAULT_ENCODING, 0) for t in self._window)
        self._packer = self._restore_packer(row.packer_state)
        self._pending_ids = self._packer.pending_turn_ids()
        self._pending_render: RenderedPage | None = None
        self._open_png: bytes | None = None  # the open page's PNG, encoded once per open page
        self._pending_cost: dict[str, int] | None = None
        self._images.clear()
        self._tally = assembly.Tally()  # the sealed pages' share of the context cost, kept as running sums
        for page in self._pages:
            self._account(page, 1)

    def _restore_packer(self, state: str | None) -> PagePacker:
        """The packer of the open page; an open page saved by an older layout is laid out again."""
        if not state:
            return PagePacker(self._style)
        try:
            return PagePacker.restore(json.loads(state), TurnLookup(self._turns), self._style)
        except InputError as exc:
            ids = [int(i) for i in json.loads(state).get("turn_ids", [])]
            logger.warning("laying out the open page of session %r again (%s)", self.session, exc)
            packer = PagePacker(self._style)
            for tid in ids:
                for _ in packer.iter_add(self._turns[tid].turn(), tid):
                    pass  # an older layout may overflow: the open page keeps its last part
            return packer

    def _cost_model(self, provider: Provider) -> CostModel:
        key = (provider.name, provider.detail)
        model = self._costs.get(key)
        if model is None:
            learned = self._store.calibration(provider.name)
            ratio = 1.0 if learned is None else learned[0]
            model = self._costs[key] = CostModel(provider, self.profile, ratio)
        return model

    # --- adding turns ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            if not self._store.closed:
                self._refresh()
            return len(self._turns)

    def add(self, turn: Turn | Mapping[str, Any] | str, *, role: str | None = None) -> AddResult:
        """Add one turn: a Turn, an OpenAI-style dict (with ``tool_calls`` / ``tool_call_id``), or a string
        with ``role=``.

        Raises:
            InputError: If the turn is malformed (no role, unknown role, non-text content, tool call
                arguments that are not JSON) or answers a tool call this session never made; nothing is
                stored then.
            StoreError: If the store cannot be written (nothing of the turn is kept then).
        """
        return self.extend([as_turn(turn, role=role)])[0]

    def extend(self, turns: Sequence[Turn | Mapping[str, Any]]) -> list[AddResult]:
        """Add several turns, all or nothing: every turn is checked (a tool result may answer a call made
        earlier in the batch) before any is stored, and they are stored in one transaction.

        Raises:
            InputError: If a turn is malformed or answers a call neither the session nor an earlier turn of
                the batch made; nothing of the batch is stored then.
            StoreError: If the store cannot be written (nothing of the batch is kept then).
        """
        with telemetry.operation("add", self.session) as op:
            results = self._extend(turns)
            op.set(
                turns=len(results),
                sealed=sum(len(r.sealed) for r in results),
                demoted=sum(len(r.demoted) for r in results),
            )
            op.demoted(sum(len(r.demoted) for r in results))
        return results

    def _extend(self, turns: Sequence[Turn | Mapping[str, Any]]) -> list[AddResult]:
        checked = [as_turn(t) for t in turns]
        tokens = [{enc: turn_text_tokens(t.content, t.tool_calls, enc) for enc in ENCODINGS} for t in checked]
        with self._lock:
            self._check_open()
            return self._write(
                lambda: [self._add(t, n) for t, n in zip(checked, tokens, strict=True)],
                check=lambda: self._answer(checked),
            )

    def _answer(self, turns: list[Turn]) -> None:
        """Check that each tool result answers a call the session or an earlier turn of ``turns`` made, and
        give a result without a name its call's name (in place).

        Raises:
            InputError: For a result answering an unknown call.
        """
        calls = dict(self._calls)
        for i, t in enumerate(turns):
            if t.tool_call_id is not None:
                if t.tool_call_id not in calls:
                    raise InputError(
                        f"tool result answers call {t.tool_call_id!r}, which no assistant turn of session "
                        f"{self.session!r} made: add the assistant turn with that tool call first"
                    )
                if t.name is None:
                    turns[i] = dataclasses.replace(t, name=calls[t.tool_call_id])
            calls.update((c.id, c.name) for c in t.tool_calls)

    def _add(self, t: Turn, tokens: dict[str, int]) -> AddResult:
        tid = len(self._turns)
        rec = TurnRecord(
            t.role, t.name, t.content, tokens, time.time(), t.tool_calls, t.tool_call_id, t.images
        )
        self._turns.append(rec)
        self._calls.update((c.id, c.name) for c in t.tool_calls)
        self._store.insert_turn(self._sid, rec.to_row(tid))
        if self._n_system == tid and t.role == "system":
            self._n_system += 1
            self._packed_upto = tid + 1
        else:
            self._window.append(tid)
            self._window_o200k += tokens.get(DEFAULT_ENCODING, 0)
        sealed = self._evict()
        demoted = self._apply_age(force=bool(sealed))
        if not self.config.keep_text:
            self._drop_paid_text([*sealed, *demoted])
        self._save_session()
        return AddResult(tid, tuple(sealed), tuple(demoted), self._current_cost())

    def sync(self, history: Sequence[Turn | Mapping[str, Any]]) -> list[AddResult]:
        """Add the turns of ``history`` this memory does not hold yet, for a caller that hands over the whole
        conversation each time (as agent frameworks do).

        The stored turns must be a prefix of ``history``: turn ``i`` of the memory and item ``i`` of the
        history must have the same role and tool-call ids (checked for the newest stored turn, so a sync
        costs nothing per stored turn).

        Raises:
            InputError: If ``history`` is shorter than what is stored or does not continue it (messages
                were removed or rewritten upstream: optical memory never rewrites turns already on pages;
                start a new session, or :meth:`clear` this one), or a new turn is malformed (nothing new
                is stored then: the new turns go in with :meth:`extend`).
        """
        with self._lock:
            self._check_open()
            n = len(self._turns)
            if len(history) < n:
                raise InputError(
                    f"the history has {len(history)} messages but session {self.session!r} already holds "
                    f"{n} turns: messages were removed upstream; clear() the session or start a new one"
                )
            if n:
                last, given = self._turns[n - 1], as_turn(history[n - 1])
                if (last.role, last.tool_call_id, [c.id for c in last.tool_calls]) != (
                    given.role,
                    given.tool_call_id,
                    [c.id for c in given.tool_calls],
                ):
                    raise InputError(
                        f"message {n - 1} of the history ({given.role}) is not turn {n - 1} of session "
                        f"{self.session!r} ({last.role}): the history was rewritten upstream; clear() the "
                        "session or start a new one"
                    )
            return self.extend(history[n:])

    def pop(self) -> Turn:
        """Remove the newest turn and return it (undo an add).

        Only a turn still in the recent window (text, not yet laid out on a page) can be removed.

        Raises:
            InputError: If the memory is empty, or its newest turn is already on a page.
        """
        with self._lock:
            self._check_open()
            popped: list[Turn] = []
            self._write(lambda: popped.append(self._pop()), check=self._check_pop)
            return popped[0]

    def _check_pop(self) -> None:
        if not self._turns:
            raise InputError(f"session {self.session!r} has no turn to remove")
        tid = len(self._turns) - 1
        if not (self._window and self._window[-1] == tid) and tid >= self._n_system:
            raise InputError(
                f"turn {tid} of session {self.session!r} is already laid out on a page and cannot be "
                "removed; only turns still in the recent window can be"
            )

    def _pop(self) -> Turn:
        tid = len(self._turns) - 1
        in_window = bool(self._window) and self._window[-1] == tid
        turn = self._turns[tid].turn()
        self._store.delete_turn(self._sid, tid)
        rec = self._turns.pop()
        for call in rec.tool_calls:
            self._calls.pop(call.id, None)
        if in_window:
            self._window.pop()
            self._window_o200k -= rec.tokens.get(DEFAULT_ENCODING, 0)
        else:  # a leading system turn
            self._n_system -= 1
            self._packed_upto = tid
        self._save_session()
        return turn

    def clear(self) -> None:
        """Remove every turn and page of this session; its config stays."""
        with self._lock:
            self._check_open()
            self._write(lambda: self._store.clear_session(self._sid))
            self._load()

    def _over_window(self) -> bool:
        cfg = self.config
        if cfg.recent_turns is not None and len(self._window) > cfg.recent_turns:
            return True
        return cfg.recent_tokens is not None and self._window_o200k > cfg.recent_tokens

    def _group(self) -> int:
        """How many turns leave the window together from its oldest end (0: they must wait).

        An assistant turn that calls tools leaves with the tool turns answering it; while a call is
        unanswered and nothing newer than its results has come, the turn waits in the window. The newest
        tool step (a call with all its results) leaves only when something newer comes, so an agent reads
        the results it just asked for as text (unless ``recent_turns=0`` asks for no text at all).
        """
        head = self._turns[self._window[0]]
        if not head.tool_calls:
            return 1
        waiting = {c.id for c in head.tool_calls}
        n = 1
        while n < len(self._window) and waiting:
            rec = self._turns[self._window[n]]
            if rec.role != "tool" or rec.tool_call_id not in waiting:
                break
            waiting.discard(rec.tool_call_id)
            n += 1
        whole = n == len(self._window)  # the newest step: it stays text, whatever its size
        return 0 if whole and (waiting or self.config.recent_turns != 0) else n

    def _evict(self) -> list[int]:
        """Move turns leaving the recent window into pages; returns the ids of pages sealed."""
        sealed: list[int] = []
        packed = False
        while self._window and self._over_window():
            n = self._group()
            if n == 0:
                break
            for _ in range(n):
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
            self._pending_cost = None
            self._open_png = None
        return sealed

    def _seal(self, rendered: RenderedPage) -> int:
        pid = len(self._pages)
        page = Page(
            pid,
            self._top,
            rendered.spans,
            rendered.text_tokens,
            rendered.missing_glyphs,
            time.time(),
            text_cost=assembly.page_text_cost(self._turns, rendered.spans),
        )
        page.pinned, self._open_pin = self._open_pin, None  # a pin on the open page holds once it is sealed
        self._images.insert(page, rendered.image)
        self._pages.append(page)
        self._account(page, 1)
        return pid

    def _pays(self, page: Page) -> bool:
        """Whether a sealed page's image at its rung, with the introduction images bring, costs less than
        its text on the memory's provider."""
        if page.rung is Rung.FORGOTTEN:
            return True
        text = self._cost.page_text(page.text_cost)
        image = self._cost.page(page.page_id, page.turns, page.rung) + self._cost.intro(1)
        return text is None or image < text

    def _drop_paid_text(self, page_ids: Iterable[int]) -> None:
        """Forget the text of the turns on these pages that lie wholly on sealed pages paying as images."""
        first_open = self._pending_ids[0] if self._pending_ids else len(self._turns)
        done: dict[int, list[Page]] = {}
        for pid in sorted(set(page_ids)):
            if not self._pays(self._pages[pid]):
                continue
            for span in self._pages[pid].spans:
                t = span.turn
                if t in done or t >= first_open or self._turns[t].content is None:
                    continue
                pages = self._pages_of(t, pid)
                if all(self._pays(p) for p in pages):
                    done[t] = pages
        if not done:
            return
        touched = {p.page_id: p for pages in done.values() for p in pages}.values()
        for page in touched:
            self._account(page, -1)
        self._store.drop_turn_text(self._sid, sorted(done))
        for t in done:
            self._turns[t].content = None
            self._turns[t].images = ()
        for page in touched:
            self._account(page, 1)

    def _pages_of(self, turn: int, page_id: int) -> list[Page]:
        """The sealed pages holding a piece of ``turn``, one of which is ``page_id``."""
        first = last = page_id
        while first > 0 and self._pages[first - 1].spans[-1].turn == turn:
            first -= 1
        while last + 1 < len(self._pages) and self._pages[last + 1].spans[0].turn == turn:
            last += 1
        return self._pages[first : last + 1]

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
        self._settled = decay.settled_upto(self._pages, self._settled, final=self._final)
        live = decay.movable(self._pages[self._settled :])
        assignment = self._policy.assign([self._state(p, self._cost.images, now) for p in live])
        demoted = []
        for page, rung in zip(live, assignment.rungs, strict=True):
            rung = self.profile.clamp(rung)
            if rank(rung) > rank(page.rung):
                demoted.append(page.page_id)
            self._set_rung(page, rung)
        return demoted

    def _set_rung(self, page: Page, rung: Rung) -> None:
        """Store a page at another rung: downsample in place, re-render from kept text, or forget."""
        rung = self.profile.clamp(rung)
        if rung is page.rung:
            return
        sharper = rung is not Rung.FORGOTTEN and rank(rung) < rank(page.rung)
        self._images.store_at(page, rung, self._rerender(page) if sharper else None)
        self._account(page, -1)
        page.rung = rung
        self._account(page, 1)

    def _account(self, page: Page, sign: int) -> None:
        """Add (or take away) a sealed page's share of the running context cost on the memory's provider."""
        if sign < 0:
            if page.tallied is not None:
                self._tally.add(*page.tallied, sign=-1)
            page.tallied = None
            return
        if page.rung is not Rung.FORGOTTEN:
            text = self._cost.page_text(page.text_cost) if self._text_kept(page.spans) else None
            page.tallied = (self._cost.page(page.page_id, page.turns, page.rung), text)
            self._tally.add(*page.tallied)

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

    def _pending_png(self) -> bytes | None:
        pending = self._pending()
        if pending is not None and self._open_png is None:
            self._open_png = encode_png(pending.image)
        return self._open_png

    def _open_cost(self) -> dict[str, int]:
        """What the open page's turn pieces cost as text, per encoding (counted once per open page)."""
        pending = self._pending()
        if pending is None:
            return {}
        if self._pending_cost is None:
            self._pending_cost = assembly.page_text_cost(self._turns, pending.spans)
        return self._pending_cost

    def _visible(self) -> Iterator[Page]:
        return (p for p in self._pages if p.rung is not Rung.FORGOTTEN)

    def _current_cost(self) -> int:
        """The memory's provider's context cost without a budget (kept as running sums)."""
        c = self._cost
        text = sum(
            c.turn(self._turns[t].tokens, self._turns[t].images)
            for t in (*range(self._n_system), *self._window)
        )
        tally = dataclasses.replace(self._tally)
        if self._pending_ids:
            turns = (self._pending_ids[0], self._pending_ids[-1])
            tally.add(c.page(len(self._pages), turns, self._top), c.page_text(self._open_cost()))
        return text + tally.total(c.intro(1))

    def _check_open(self) -> None:
        """Refuse a closed memory, and catch up with writes other processes made to the session."""
        if self._store.closed:
            raise StoreError("this memory is closed")
        self._refresh()

    # --- the context (assembled by optical_memory.assembly) -------------------------------------------

    def context(
        self,
        *,
        provider: str | None = None,
        budget: Budget | Literal["config"] = "config",
        format: str | None = None,
        detail: str | None = None,
    ) -> Context:
        """The context to send: system text, the older conversation oldest first, then the recent turns.

        Each page of the older conversation goes at its rung as an image, or as its turns' text when its
        image would cost at least as much and its text is still kept.

        Args:
            provider: Target provider (prices images and text); the config's provider when None.
            budget: Most tokens the context may cost, in the provider's tokens: a number, ``"window"``
                (half the model's context window), None (no bound), or ``"config"`` (the default: the
                config's ``budget``). Pages are demoted or left out for this context only (stored pages
                are untouched).
            format: Message format (see :data:`optical_memory.formats.FORMATS`); the provider's default
                when None. ``"embeddings"`` (provider ``deepseek-ocr``) returns no messages but
                ``Context.embeddings``: input ids and ``inputs_embeds`` for a self-hosted DeepSeek-OCR
                language model (layout in :mod:`optical_memory.embeddings`), with vision tokens from the
                configured encoder, cached in the store per page, rung and encoder; every page goes as an
                image there. Its ``usage`` counts sequence positions: image positions, and the rest as
                text tokens.
            detail: The image detail every page is sent with (OpenAI ``low``, ``high``, ``auto``,
                ``original``; a Gemini 3 ``media_resolution`` level), overriding the profile's per-rung
                detail; priced accordingly.

        Raises:
            ProviderError: For an unknown provider, or a detail the provider does not take.
            ConfigError: For an unknown format, a budget smaller than the text that must stay, or the
                ``embeddings`` format for another provider or without a DeepSeek-OCR tokenizer configured.
            CheckpointError: If the configured checkpoint cannot be loaded.
        """
        with telemetry.operation("context", self.session) as op:
            ctx = self._context(provider=provider, budget=budget, format=format, detail=detail)
            used = ctx.usage
            op.set(
                **{"gen_ai.provider.name": ctx.provider},
                format=ctx.format,
                context_tokens=used.context_tokens,
                image_tokens=used.image_tokens,
                history_text_tokens=used.history_text_tokens,
            )
            op.context(ctx.provider, used.history_text_tokens - used.context_tokens, used.pages_per_rung)
        return ctx

    def _context(
        self,
        *,
        provider: str | None = None,
        budget: Budget | Literal["config"] = "config",
        format: str | None = None,
        detail: str | None = None,
    ) -> Context:
        target = get_provider(provider or self.config.provider, detail=detail)
        with self._lock:
            self._check_open()
            if self._age_unit == "seconds":  # wall-clock ages move without adds: decay now
                self._write(lambda: self._apply_age(force=True))
            cost = self._cost_model(target)
            fmt = assembly.resolve_format(format, cost.provider)
            limit = assembly.resolve_budget(self.config.budget if budget == "config" else budget, target)
            allow_text = fmt != EMBEDDINGS
            records = self._records()
            texts = assembly.page_texts(records, cost, allow_text=allow_text)

            def build(fit_to: int | None) -> Context:
                rungs, left_out = self._rungs(records, texts, cost, fit_to, allow_text=allow_text)
                shown = assembly.show(records, rungs, texts, cost, allow_text=allow_text)
                # hosted formats send PNG bytes: reuse the stored ones (hf and embeddings take pixels)
                with_png = fmt not in ("hf", EMBEDDINGS)
                older = assembly.older_items(
                    records,
                    rungs,
                    shown,
                    cost,
                    lambda p, r: self._images.item(p, r, with_png=with_png, detail=cost.detail(r)),
                    self._pending_png if with_png else lambda: None,
                )
                as_text = sum(shown.as_text) + shown.open_as_text
                items = assembly.ordered(records, older)
                if fmt == EMBEDDINGS:
                    return self._embeddings_context(records, items, cost, left_out, limit)
                usage = assembly.message_usage(records, cost, items, left_out, limit, as_text)
                formatted = build_messages(items, format=fmt, detail=target.detail)
                return Context(
                    formatted.messages,
                    formatted.system,
                    usage,
                    fmt,
                    target.name,
                    tuple(items),
                    image_ratio=cost.ratio,
                )

            context = build(limit)
            if limit is None:
                return context
            # the embeddings layout counts sequence positions (DeepSeek's tokenizer, special tokens), which
            # the cost model only estimates: fit again to what the positions overshot, until they fit
            fit_to = limit
            for _ in range(_EMBEDDINGS_FITS):
                if context.usage.context_tokens <= limit:
                    return context
                fit_to -= context.usage.context_tokens - limit
                try:
                    context = build(fit_to)
                except ConfigError:  # what must stay no longer fits the smaller estimate
                    break
            if context.usage.context_tokens <= limit:
                return context
            raise ConfigError(
                f"the {fmt} context takes {context.usage.context_tokens} positions, over the budget of {limit}: "
                "raise the budget or keep fewer recent turns as text"
            )

    def _records(self) -> assembly.Records:
        return assembly.Records(
            self._turns,
            (*range(self._n_system), *self._window),
            self._n_system,
            list(self._visible()),
            [p for p in self._pages if p.rung is Rung.FORGOTTEN],
            len(self._pages),
            self._pending(),
            self._open_cost(),
            self._top,
        )

    def _rungs(
        self,
        records: assembly.Records,
        texts: list[int | None],
        cost: CostModel,
        budget: int | None,
        *,
        allow_text: bool,
    ) -> tuple[list[Rung], tuple[int, ...]]:
        """Each visible page's rung in this context: the stored one, or what fits ``budget``."""
        if budget is None:
            return [p.rung for p in records.visible], ()
        now = time.time()
        states = assembly.page_states(records, cost, texts, lambda p, costs: self._state(p, costs, now))
        rungs, left_out = assembly.fit(
            self._policy, records, states, texts, cost, budget, allow_text=allow_text
        )
        return [self.profile.clamp(r) for r in rungs], left_out

    def _embeddings_context(
        self,
        records: assembly.Records,
        items: list[Item],
        cost: CostModel,
        left_out: tuple[int, ...],
        budget: int | None,
    ) -> Context:
        """The ``embeddings`` context: vision tokens (cached per page, rung and encoder) laid out as ids."""
        from optical_memory.embeddings import load_tokenizer

        tokenizer = load_tokenizer(self._vision.tokenizer_path())  # fail before encoding anything
        encoder = self._vision.encoder
        shown = [i for i in items if isinstance(i, PageItem)]
        requests = [
            TokenRequest(p.page_id, p.rung, p.image, cacheable=p.page_id < records.n_sealed) for p in shown
        ]
        tokens, new_rows = page_tokens(self._store, self._sid, encoder, requests)
        if new_rows:
            self._write(lambda: self._cache_tokens(encoder.fingerprint, new_rows))
        inputs = assembly.embedding_inputs(tokenizer, items, tokens, self._n_system, self._vision.table)
        image = int(inputs.image_mask.sum())
        usage = assembly.usage(records, cost, len(inputs) - image, image, shown, left_out, budget, 0)
        return Context([], None, usage, EMBEDDINGS, cost.provider.name, tuple(items), inputs)

    def _cache_tokens(self, fingerprint: str, rows: list[Any]) -> None:
        self._store.put_vision_tokens(self._sid, fingerprint, rows)
        self._prune(fingerprint)

    def _prune(self, fingerprint: str) -> int:
        mb = (self.config.encoder or EncoderConfig()).cache_mb
        return self._store.prune_vision_tokens(
            self._sid, fingerprint, None if mb is None else int(mb * 2**20)
        )

    def prune(self) -> int:
        """Bound the session's vision-token cache now: rows of encoders other than the configured one go,
        then the oldest pages' rows beyond ``encoder.cache_mb`` (this happens after every encoding too).

        Returns:
            How many cached rows were deleted.

        Raises:
            CheckpointError: If the configured encoder cannot be set up (its fingerprint names the rows kept).
        """
        with self._lock:
            self._check_open()
            fingerprint = self._vision.encoder.fingerprint
            return self._write(lambda: self._prune(fingerprint))

    def observe_usage(self, context: Context, input_tokens: int) -> float | None:
        """Learn from the input tokens a provider reported for a request built from ``context``.

        The image part of the bill (``input_tokens`` less the context's text tokens) over the image
        tokens the formula predicted is one report; the model's ratio is the running mean of its reports
        (the last :data:`_CALIBRATION_MEMORY`), kept within :data:`CALIBRATION_BOUNDS` and saved in the
        store (shared by its sessions). Later contexts for that model, and their budgets, are priced
        with it.

        Args:
            context: A context this memory built.
            input_tokens: The input (prompt) tokens the provider reported for the request.

        Returns:
            The model's ratio now, or None when the context had no image to learn from.

        Raises:
            InputError: If ``input_tokens`` is not a positive whole number, or the context is not a
                message context.
        """
        if isinstance(input_tokens, bool) or not isinstance(input_tokens, int) or input_tokens <= 0:
            raise InputError(
                f"input_tokens must be the positive number of input tokens billed; got {input_tokens!r}"
            )
        if context.format == EMBEDDINGS:
            raise InputError("usage is learned from hosted providers' bills, not from an embeddings context")
        used = context.usage
        if used.image_tokens == 0:
            return None
        formula = used.image_tokens / context.image_ratio
        report = min(max((input_tokens - used.text_tokens) / formula, 0.25), 4.0)
        with self._lock:
            self._check_open()
            learned = self._store.calibration(context.provider)
            ratio, samples = learned if learned is not None else (1.0, 0)
            weight = min(samples, _CALIBRATION_MEMORY - 1)
            low, high = CALIBRATION_BOUNDS
            ratio = min(max((ratio * weight + report) / (weight + 1), low), high)
            self._write(lambda: self._store.set_calibration(context.provider, ratio, samples + 1))
            self._costs = {k: v for k, v in self._costs.items() if k[0] != context.provider}
            if context.provider == self._cost.provider.name:  # the memory's own prices change: recount
                self._cost = self._cost_model(self._cost.provider)
                self._tally = assembly.Tally()
                for page in self._pages:
                    page.tallied = None
                    self._account(page, 1)
        logger.info(
            "%s: billed/predicted image tokens %.3f this request; learned ratio %.3f from %d reports",
            context.provider,
            report,
            ratio,
            samples + 1,
        )
        return ratio

    # --- pages ------------------------------------------------------------------------------------------

    def pages(self) -> list[PageInfo]:
        """Every page, oldest first: sealed pages (forgotten ones too), then the open page if any."""
        with self._lock:
            self._check_open()
            out = [
                self._info(p.page_id, p.rung, p.spans, p.pinned, p.text_tokens, sealed=True)
                for p in self._pages
            ]
            pending = self._pending()
            if pending is not None:
                out.append(
                    self._info(
                        len(self._pages),
                        self._top,
                        pending.spans,
                        self._open_pin,
                        pending.text_tokens,
                        sealed=False,
                    )
                )
            return out

    def _info(
        self,
        page_id: int,
        rung: Rung,
        spans: tuple[TurnSpan, ...],
        pinned: Rung | None,
        text_tokens: int,
        *,
        sealed: bool,
    ) -> PageInfo:
        turns = turn_range(spans)
        age_pages = len(self._pages) - 1 - page_id if sealed else -1
        age_turns = len(self._turns) - 1 - turns[1]
        text_kept = self._text_kept(spans)
        shape = None if rung is Rung.FORGOTTEN else self.profile.shape(rung)
        fill = text_tokens / page_capacity(self._style)
        return PageInfo(
            page_id,
            rung,
            age_pages,
            age_turns,
            turns,
            spans,
            self._cost.images[rung],
            sealed,
            pinned,
            text_kept,
            shape.width if shape else 0,
            shape.height if shape else 0,
            text_tokens,
            fill,
        )

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
        with telemetry.operation("recall", self.session) as op:
            reading = self._recall(page_id, reader)
            op.set(page=page_id, reader=reading.reader, chars=len(reading.text))
        return reading

    def _recall(self, page_id: int, reader: str | RecallBackend | None) -> Reading:
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
                    f"pages are rendered with profile {self.profile.name!r}: the sharpest rung is {self._top.value}"
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
        if not self.config.keep_text:
            self._drop_paid_text([page.page_id])

    def _write(self, action: Callable[[], _T], check: Callable[[], None] | None = None) -> _T:
        """Run ``action`` in one write transaction of this session.

        Inside it, the session is first reloaded if another writer (another process, or another memory
        on the same file) changed it since this memory last saw it; then ``check`` validates the request
        against that fresh state (raising before anything is written). If ``action`` fails, the
        transaction rolls back and the memory reloads, so that memory and store never disagree.
        """
        started = False
        try:
            with self._store.transaction():
                self._store.lock_session(self._sid)
                if self._store.version(self._sid) != self._version:
                    logger.info("session %r changed in the store: reloading it before writing", self.session)
                    self._load()
                if check is not None:
                    check()
                started = True
                result = action()
                self._version = self._store.bump_version(self._sid)
                return result
        except BaseException:
            if started:
                self._load()
            raise

    def _refresh(self) -> None:
        """Reload the session if another writer changed it (what a reader calls before answering)."""
        if self._store.version(self._sid) != self._version:
            self._load()

    # --- async: the same calls on a worker thread, so an event loop never waits on SQLite or rendering ---

    async def aadd(self, turn: Turn | Mapping[str, Any] | str, *, role: str | None = None) -> AddResult:
        """:meth:`add` without blocking the event loop."""
        return await asyncio.to_thread(self.add, turn, role=role)

    async def acontext(
        self,
        *,
        provider: str | None = None,
        budget: Budget | Literal["config"] = "config",
        format: str | None = None,
        detail: str | None = None,
    ) -> Context:
        """:meth:`context` without blocking the event loop."""
        return await asyncio.to_thread(
            self.context, provider=provider, budget=budget, format=format, detail=detail
        )

    async def arecall(self, page_id: int, *, reader: str | RecallBackend | None = None) -> Reading:
        """:meth:`recall` without blocking the event loop."""
        return await asyncio.to_thread(self.recall, page_id, reader=reader)

    async def apages(self) -> list[PageInfo]:
        """:meth:`pages` without blocking the event loop."""
        return await asyncio.to_thread(self.pages)

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
