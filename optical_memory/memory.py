"""The facade users hold: :class:`OpticalMemory` (add turns, get a priced context, see and pin pages).

How a turn travels:

1. ``add(turn)`` checks it (a tool result must answer a call the session made) and stores it. Leading
   system turns (the system prompt) stay text for good; every other turn enters the recent window, which
   holds the newest turns as text (``recent_turns`` / ``recent_tokens``).
2. Turns leaving the window go, in order, to a :class:`~optical_memory.renderers.PagePacker`, which lays
   out only that turn and appends it to the open page. An assistant turn that calls tools leaves together
   with its results (it waits for them), so a call and its result are never split by the window. Pages
   are laid out with the config's render profile (by default the provider's; see
   :mod:`optical_memory.pricing.profiles`). Sealed pages are stored as PNG at the top rung, with what their turn
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
All of it is carried out by the session's one write path, :class:`~optical_memory.writer.SessionWriter`
(this facade validates, locks and delegates): rendered and encoded before the store's write lock is taken,
then committed in one short transaction; if anything fails the transaction rolls back and the in-memory
state is reloaded from the store, so memory and store never disagree. All methods are thread-safe, and
``aadd``, ``acontext``, ``arecall``, ``apages`` and ``asearch`` run them on a worker thread for an event loop.
``sync(history)`` adds what a whole handed-over history has beyond the stored turns (what the framework
adapters in :mod:`optical_memory.integrations` call on every model call); ``pop`` and ``clear`` undo.

``observe_usage(context, input_tokens)`` learns, per model, how the provider's bill compares with the
image formula, and prices later contexts (and their budgets) with that ratio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from PIL import Image

from optical_memory import assembly, telemetry
from optical_memory.backends import MEMORY
from optical_memory.config import Budget, MemoryConfig, as_config
from optical_memory.context import AddResult, Context, PageInfo, turn_range
from optical_memory.errors import ConfigError, InputError, PageNotFoundError, StoreError
from optical_memory.formats import EMBEDDINGS, Item, PageItem, build_messages
from optical_memory.ladder import Rung, as_rung, rank
from optical_memory.pricing.budget import resolve_budget
from optical_memory.pricing.costs import CostModel, turn_text_tokens
from optical_memory.pricing.profiles import RenderProfile
from optical_memory.pricing.providers import Provider, get_provider
from optical_memory.recall.search import SearchHit, SearchIndex, terms, update_index
from optical_memory.records import Page
from optical_memory.renderers.packer import page_capacity
from optical_memory.spans import line
from optical_memory.store import ReadRow, Store
from optical_memory.tokens import ENCODINGS
from optical_memory.types import Turn, TurnSpan, as_turn
from optical_memory.vision import TokenRequest, page_tokens
from optical_memory.writer import SessionWriter

if TYPE_CHECKING:
    from optical_memory.recall.base import Reading, RecallBackend
    from optical_memory.recall.tools import MemoryTools

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
CALIBRATION_BOUNDS = (0.5, 2.0)
"""The learned billed/predicted image ratio stays within these bounds (a report outside them is clipped)."""
_EMBEDDINGS_FITS = 4
"""How many times an ``embeddings`` context is fitted again when its positions overshoot the budget."""
_ENCODE_AHEAD = 2
"""How many times an ``embeddings`` context steps out of the lock to get the vision tokens it lacks (the
fits after that encode what they still lack under the lock: pages that changed meanwhile)."""
_CALIBRATION_MEMORY = 20
"""Reports a learned ratio averages over (later reports move it by at most 1/20 each)."""


class _EncodeFirst(Exception):
    """An ``embeddings`` context lacks these pages' vision tokens: get them outside the lock, then build."""

    def __init__(self, requests: list[TokenRequest], keys: list[tuple[object, ...]], encoder: Any) -> None:
        super().__init__(f"{len(requests)} pages to encode first")
        self.requests, self.keys, self.encoder = requests, keys, encoder


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

    def _attach(self, store: Store, session: str, config: MemoryConfig | None) -> None:
        self._lock = threading.RLock()
        weakref.finalize(self, store.close)  # a memory dropped without close() still closes its file
        self._w = SessionWriter(store, session, config)
        self._readers: dict[str, RecallBackend] = {}  # the readers this memory built, by name
        self._index = SearchIndex()

    @property
    def session(self) -> str:
        """The session's name."""
        return self._w.session

    @property
    def config(self) -> MemoryConfig:
        """The session's config (as stored: another writer may have replaced it)."""
        return self._w.config

    @property
    def profile(self) -> RenderProfile:
        """The render profile the session's pages are laid out with."""
        return self._w.profile

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

    # --- adding turns ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            if not self._w.store.closed:
                self._w.refresh()
            return len(self._w.turns)

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
            return self._w.write(
                lambda: [self._w.add(t, n) for t, n in zip(checked, tokens, strict=True)],
                check=lambda: self._answer(checked),
            )

    def _answer(self, turns: list[Turn]) -> None:
        """Check that each tool result answers a call the session or an earlier turn of ``turns`` made, and
        give a result without a name its call's name (in place).

        Raises:
            InputError: For a result answering an unknown call.
        """
        calls = dict(self._w.calls)
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
            n = len(self._w.turns)
            if len(history) < n:
                raise InputError(
                    f"the history has {len(history)} messages but session {self.session!r} already holds "
                    f"{n} turns: messages were removed upstream; clear() the session or start a new one"
                )
            if n:
                last, given = self._w.turns[n - 1], as_turn(history[n - 1])
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
            self._w.write(lambda: popped.append(self._w.pop()), check=self._check_pop)
            return popped[0]

    def _check_pop(self) -> None:
        if not self._w.turns:
            raise InputError(f"session {self.session!r} has no turn to remove")
        tid = len(self._w.turns) - 1
        if not (self._w.window and self._w.window[-1] == tid) and tid >= self._w.n_system:
            raise InputError(
                f"turn {tid} of session {self.session!r} is already laid out on a page and cannot be "
                "removed; only turns still in the recent window can be"
            )

    def clear(self) -> None:
        """Remove every turn and page of this session; its config stays."""
        with self._lock:
            self._check_open()
            self._w.clear()

    # --- decay (the age rule and its images: optical_memory.decay) -------------------------------------

    # --- reading the records ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Refuse a closed memory, and catch up with writes other processes made to the session."""
        if self._w.store.closed:
            raise StoreError("this memory is closed")
        self._w.refresh()

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
        ready: dict[tuple[object, ...], Any] = {}  # vision tokens encoded ahead, outside the lock
        for attempt in range(_ENCODE_AHEAD + 1):
            try:
                return self._locked_context(target, budget, format, ready, ahead=attempt < _ENCODE_AHEAD)
            except _EncodeFirst as first:
                self._encode_ahead(first, ready)
        raise AssertionError("the last attempt encodes what it lacks itself")  # pragma: no cover

    def _locked_context(
        self,
        target: Provider,
        budget: Budget | Literal["config"],
        format: str | None,
        ready: dict[tuple[object, ...], Any],
        *,
        ahead: bool,
    ) -> Context:
        with self._lock:
            self._check_open()
            if self._w.age_unit == "seconds":  # wall-clock ages move without adds: decay now
                self._w.write(lambda: self._w.apply_age(force=True))
            cost = self._w.cost_model(target)
            fmt = assembly.resolve_format(format, cost.provider)
            limit = resolve_budget(self.config.budget if budget == "config" else budget, target)
            allow_text = fmt != EMBEDDINGS
            records = self._records()
            texts = assembly.PageTexts(records, cost, allow_text=allow_text)

            def build(fit_to: int | None) -> Context:
                pages, rungs, left_out = self._rungs(records, texts, cost, fit_to, allow_text=allow_text)
                shown = assembly.show(records, pages, rungs, texts, cost, allow_text=allow_text)
                # hosted formats send PNG bytes: reuse the stored ones (hf and embeddings take pixels)
                with_png = fmt not in ("hf", EMBEDDINGS)
                older = assembly.older_items(
                    records,
                    shown,
                    cost,
                    lambda p, r: self._w.images.item(p, r, with_png=with_png, detail=cost.detail(r)),
                    self._w.pending_png if with_png else lambda: None,
                )
                items = assembly.ordered(records, older)
                if fmt == EMBEDDINGS:
                    return self._embeddings_context(
                        records, items, shown, cost, left_out, limit, ready, ahead=ahead
                    )
                usage = assembly.message_usage(records, cost, items, shown, left_out, limit)
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
            self._w.turns,
            (*range(self._w.n_system), *self._w.window),
            self._w.n_system,
            self._w.pages,
            sorted(self._w.pinned),
            self._w.forgotten,
            self._w.pending(),
            self._w.open_cost(),
            line(len(self._w.pages), self._w.open_exact()),
            self._w.top,
            self._w.history_tokens,
            self._w.sealed_text,
            self._w.held,
        )

    def _rungs(
        self,
        records: assembly.Records,
        texts: assembly.PageTexts,
        cost: CostModel,
        budget: int | None,
        *,
        allow_text: bool,
    ) -> tuple[list[Page], list[Rung], tuple[int, ...]]:
        """The pages this context may show and each one's rung: the stored one, or what fits ``budget``;
        and the ids of the pages left out for the budget."""
        if budget is None:
            pages = records.visible()
            return pages, [p.rung for p in pages], ()
        now = time.time()
        states = assembly.PageStates(cost, texts, lambda p, costs: self._w.state(p, costs, now))
        pages, rungs, left_out = assembly.fit(
            self._w.policy, records, states, texts, cost, budget, allow_text=allow_text
        )
        return pages, [r if r is Rung.FORGOTTEN else self.profile.clamp(r) for r in rungs], left_out

    def _embeddings_context(
        self,
        records: assembly.Records,
        items: list[Item],
        shown: assembly.Shown,
        cost: CostModel,
        left_out: tuple[int, ...],
        budget: int | None,
        ready: dict[tuple[object, ...], Any],
        *,
        ahead: bool,
    ) -> Context:
        """The ``embeddings`` context: vision tokens (cached per page, rung and encoder) laid out as ids.

        Tokens in ``ready`` (encoded ahead) are used as they are; with ``ahead``, pages without them raise
        :class:`_EncodeFirst`, so that they are read or encoded without holding the memory's lock.
        """
        from optical_memory.embeddings import load_tokenizer

        tokenizer = load_tokenizer(self._w.vision.tokenizer_path())  # fail before encoding anything
        encoder = self._w.vision.encoder
        images = [i for i in items if isinstance(i, PageItem)]

        def ident(page_id: int) -> object:
            """What identifies a page's tokens across attempts: a sealed page's sealing time, the open
            page's pieces."""
            if page_id < records.n_sealed:
                return records.pages[page_id].sealed_at
            return records.open_page.spans if records.open_page is not None else None

        keys = [(p.page_id, p.rung, ident(p.page_id), encoder.fingerprint) for p in images]
        requests = [
            TokenRequest(p.page_id, p.rung, p.image, cacheable=p.page_id < records.n_sealed) for p in images
        ]
        todo = [i for i, key in enumerate(keys) if key not in ready]
        if todo and ahead:
            raise _EncodeFirst([requests[i] for i in todo], [keys[i] for i in todo], encoder)
        found, new_rows = page_tokens(self._w.store, self._w.sid, encoder, [requests[i] for i in todo])
        if new_rows:
            self._w.write(lambda: self._w.cache_tokens(encoder.fingerprint, new_rows), staged=False)
        ready.update(zip((keys[i] for i in todo), found, strict=True))
        tokens = [ready[key] for key in keys]
        inputs = assembly.embedding_inputs(tokenizer, items, tokens, self._w.n_system, self._w.vision.table)
        image = int(inputs.image_mask.sum())
        usage = assembly.usage(records, cost, len(inputs) - image, image, images, shown, left_out, budget)
        return Context([], None, usage, EMBEDDINGS, cost.provider.name, tuple(items), inputs)

    def _encode_ahead(self, first: _EncodeFirst, ready: dict[tuple[object, ...], Any]) -> None:
        """Read or encode the vision tokens a context lacks without holding the memory's lock (adds and
        other calls go on meanwhile), then cache the new rows of pages that are still the same pages."""
        found, rows = page_tokens(self._w.store, self._w.sid, first.encoder, first.requests)
        ready.update(zip(first.keys, found, strict=True))
        sealed_at = {key[0]: key[2] for key in first.keys}
        with self._lock:
            self._check_open()
            pages = self._w.pages
            rows = [
                r
                for r in rows
                if r.page_id < len(pages) and pages[r.page_id].sealed_at == sealed_at[r.page_id]
            ]
            if rows:
                self._w.write(lambda: self._w.cache_tokens(first.encoder.fingerprint, rows), staged=False)

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
            fingerprint = self._w.vision.encoder.fingerprint
            return self._w.write(lambda: self._w.prune(fingerprint), staged=False)

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
            learned = self._w.store.calibration(context.provider)
            ratio, samples = learned if learned is not None else (1.0, 0)
            weight = min(samples, _CALIBRATION_MEMORY - 1)
            low, high = CALIBRATION_BOUNDS
            ratio = min(max((ratio * weight + report) / (weight + 1), low), high)
            self._w.learn(context.provider, ratio, samples + 1)
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
                self._info(
                    p.page_id, p.rung, p.spans, p.pinned, p.text_tokens, p.exact, p.masked, sealed=True
                )
                for p in self._w.pages
            ]
            pending = self._w.pending()
            if pending is not None:
                out.append(
                    self._info(
                        len(self._w.pages),
                        self._w.top,
                        pending.spans,
                        self._w.open_pin,
                        pending.text_tokens,
                        self._w.open_exact(),
                        self._w.masked_in(pending.spans),
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
        exact: tuple[tuple[str, str, str], ...],
        masked: int,
        *,
        sealed: bool,
    ) -> PageInfo:
        turns = turn_range(spans)
        age_pages = len(self._w.pages) - 1 - page_id if sealed else -1
        age_turns = len(self._w.turns) - 1 - turns[1]
        text_kept = self._w.text_kept(spans)
        shape = None if rung is Rung.FORGOTTEN else self.profile.shape(rung)
        fill = text_tokens / page_capacity(self._w.style)
        return PageInfo(
            page_id,
            rung,
            age_pages,
            age_turns,
            turns,
            spans,
            self._w.cost.images[rung],
            sealed,
            pinned,
            text_kept,
            shape.width if shape else 0,
            shape.height if shape else 0,
            text_tokens,
            fill,
            exact,
            masked,
        )

    def _page(self, page_id: int) -> Page:
        if isinstance(page_id, bool) or not isinstance(page_id, int) or not 0 <= page_id < len(self._w.pages):
            raise PageNotFoundError(
                f"no sealed page {page_id!r} in session {self.session!r} ({len(self._w.pages)} pages)"
            )
        return self._w.pages[page_id]

    def _is_open_page(self, page_id: int) -> bool:
        return page_id == len(self._w.pages) and bool(self._w.pending_ids)

    def page_image(self, page_id: int, *, sharpest: bool = False) -> Image.Image:
        """A page's image at its current rung (the open page at the top rung).

        With ``sharpest``, a page whose text was kept is rendered again at the top rung (nothing stored
        changes); a page whose text is gone has only its stored image.

        Raises:
            PageNotFoundError: If there is no such page, or it was forgotten and its text is gone.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                pending = self._w.pending()
                assert pending is not None
                return pending.image.copy()
            page = self._page(page_id)
            if sharpest and self._w.can_sharpen(page) and page.rung is not self._w.top:
                return self._w.rerender(page)
            if page.rung is Rung.FORGOTTEN:
                raise PageNotFoundError(f"page {page_id} was forgotten: it has no image")
            return self._w.images.get(page, page.rung).copy()

    def page_text(self, page_id: int) -> str | None:
        """The exact text of the turn pieces on a page, when it was kept (else None).

        Raises:
            PageNotFoundError: If there is no such page.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                pending = self._w.pending()
                spans = pending.spans if pending is not None else ()
            else:
                spans = self._page(page_id).spans
            return self._w.page_text(spans)

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

        reading = recall_page(self, page_id, reader, readers=self._readers)
        if reading.reader != "exact" and reading.rung is not None:
            with self._lock:
                self._w.cache_reading(ReadRow(page_id, reading.reader, reading.rung.value, reading.text))
        return reading

    def read_pages(self, reader: str | RecallBackend, *, limit: int | None = None) -> int:
        """Read with ``reader`` the sealed pages that have neither kept text nor search terms (pages stored
        before version 7 took terms), newest first, and keep what it reads, so that :meth:`search` finds
        them by their words. Pages it already read at their rung are skipped.

        A CPU OCR takes seconds a page: call this off the agent's hot path (between turns, in a worker).
        Readings are kept in the store, one per page and reader, while the page stays at the rung it was
        read at; ``recall`` keeps its readings the same way.

        Args:
            reader: A reader name (``rapidocr``, ``tesseract``, ``endpoint``, ``deepseek``) or a reader object.
            limit: Read at most this many pages (None: all that need it).

        Returns:
            How many pages were read.

        Raises:
            ConfigError: For ``exact`` (it reads no image) or an unknown reader name.
            MissingDependencyError: If the reader needs an extra that is not installed.
            RecallError: If the reader fails.
        """
        from optical_memory.recall.api import built_reader, reader_name

        if reader_name(reader) == "exact":
            raise ConfigError("read_pages reads page images: name an image reader such as 'rapidocr'")
        backend = built_reader(reader, self._readers)
        done = 0
        for page_id in self._unread(backend.name):
            if limit is not None and done >= limit:
                break
            self._recall(page_id, backend)
            done += 1
        return done

    def _unread(self, reader: str) -> list[int]:
        """Sealed pages with an image and no kept text that ``reader`` has not read at their rung, newest first."""
        with self._lock:
            self._check_open()
            self._w.refresh()
            readings = self._w.readings()
            indexed = self._w.store.pages_with_terms(self._w.sid)
            out = []
            for page in reversed(self._w.pages):
                if page.rung is Rung.FORGOTTEN or page.page_id in indexed or self._w.text_kept(page.spans):
                    continue
                row = readings.get(page.page_id, {}).get(reader)
                if row is None or row.rung != page.rung.value:
                    out.append(page.page_id)
            return out

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """The ``k`` pages that best match ``query``, best first, ranked by BM25 over what the memory still
        holds of each: kept text, else the terms taken as it was sealed (or a reading), and its verbatim
        spans (see :mod:`optical_memory.recall.search`). The open page is searched by its text; the recent turns,
        which the context carries as text, are not searched.

        Raises:
            InputError: If ``query`` has no words or numbers, or ``k`` is not a positive integer.
        """
        if not isinstance(query, str) or not terms(query):
            raise InputError("search needs a query with words or numbers in it, such as 'order id'")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, not {k!r}")
        with telemetry.operation("search", self.session) as op, self._lock:
            self._check_open()
            self._w.refresh()
            update_index(self._index, self._w)
            hits = self._index.search(query, k)
            op.set(hits=len(hits), pages=len(self._index))
        return hits

    def tools(self, *, reader: str | RecallBackend | None = None) -> MemoryTools:
        """The memory as tools an agent can call (``search_memory``, ``recall_page``, ``expand_page``): their
        schemas in OpenAI and Anthropic shapes, and a handler (see :mod:`optical_memory.recall.tools`).

        Args:
            reader: The reader ``recall_page`` reads page images with, chosen here by the application (the
                model never chooses it): a name or a reader object; None for ``rapidocr``. A page whose
                text was kept is given as that text, without reading its image.
        """
        from optical_memory.recall.tools import MemoryTools

        return MemoryTools(self, reader)

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
            if target is not None and rank(target) < rank(self._w.top):
                raise ConfigError(
                    f"pages are rendered with profile {self.profile.name!r}: the sharpest rung is {self._w.top.value}"
                )
            if self._is_open_page(page_id):
                self._w.write(lambda: self._w.set_open_pin(target or self._w.top))
                return
            self._w.write(
                lambda: self._w.pin(page_id, target or self._w.pages[page_id].rung),
                check=lambda: self._check_pin(page_id, target),
            )

    def _check_pin(self, page_id: int, target: Rung | None) -> None:
        page = self._page(page_id)
        if target is not None and rank(target) < rank(page.rung) and not self._w.can_sharpen(page):
            raise ConfigError(
                f"page {page_id} is stored at {page.rung.value} and its text was dropped, so it cannot be "
                f"pinned at the sharper {target.value} (keep_text=True keeps text for this)"
            )

    def unpin(self, page_id: int) -> None:
        """Release a pin; the page then follows the age policy again (it never becomes sharper).

        Raises:
            PageNotFoundError: If there is no such page.
        """
        with self._lock:
            self._check_open()
            if self._is_open_page(page_id):
                self._w.write(lambda: self._w.set_open_pin(None))
                return
            self._w.write(lambda: self._w.pin(page_id, None), check=lambda: self._page(page_id))

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
            self._w.write(lambda: self._w.forget(page_id), check=lambda: self._page(page_id))

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

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        """:meth:`search` without blocking the event loop."""
        return await asyncio.to_thread(self.search, query, k)

    def close(self) -> None:
        """Close the store (idempotent). The open page stays open: reopening resumes it."""
        with self._lock:
            self._w.store.close()

    def __enter__(self) -> OpticalMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self._w.store.path == MEMORY else self._w.store.path
        return f"OpticalMemory({where!r}, session={self.session!r}, turns={len(self._w.turns)}, pages={len(self._w.pages)})"
