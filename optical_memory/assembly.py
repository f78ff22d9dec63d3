"""Context assembly for :meth:`~optical_memory.memory.OpticalMemory.context`: the format, the budget, the rungs
that fit it, whether each page goes as an image or as text, and what the built context costs.

Internal to :mod:`optical_memory.memory`, which reads its records under its lock and hands them here.
Nothing here touches the store: rungs are chosen on copies, for one context only. A page whose text is
still kept goes as text when its image (at the rung chosen) would cost at least as much, so a context
never costs more than the plain history of the turns it carries. Prices come from a
:class:`~optical_memory.pricing.costs.CostModel` and are additive except the introduction, paid once when any
image is shown; :func:`fit` re-fits when that overshoots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optical_memory import ladder
from optical_memory.context import Usage, turn_range
from optical_memory.errors import ConfigError
from optical_memory.formats import (
    EMBEDDINGS,
    Item,
    PageItem,
    TextItem,
    check_format,
    default_format,
    page_label,
    plain_role,
)
from optical_memory.ladder import Rung, rank
from optical_memory.policies import DecayPolicy, PageState
from optical_memory.pricing.budget import check_floor
from optical_memory.pricing.costs import CostModel, text_cost
from optical_memory.pricing.providers import Provider
from optical_memory.records import Page, TurnRecord
from optical_memory.tokens import ENCODINGS
from optical_memory.types import RenderedPage, TurnSpan

if TYPE_CHECKING:
    from optical_memory.embeddings import EmbeddingInputs

_RUNG_NAMES = tuple(r.value for r in ladder.ORDER)
_FIT_TRIES = 4


@dataclass(frozen=True, slots=True)
class Records:
    """The memory's records a context is built from, read under its lock.

    Attributes:
        turns: Every turn of the session (what the history would cost as text).
        text: Ids of the turns sent as text: the system prompt, then the recent window.
        n_system: How many of ``text`` are the system prompt.
        pages: Every sealed page, forgotten ones too, by id.
        pinned: Ids of the pinned pages, ascending.
        forgotten: Ids of the pages forgotten in the store.
        open_page: A render of the open page, or None.
        open_cost: The open page's turn pieces' text cost (see :func:`~optical_memory.pricing.costs.text_cost`).
        open_exact: The open page's verbatim spans as the text sent beside its image ("" when none).
        top: The rung pages are rendered at (the open page's rung).
        history_tokens: Tokens of every turn's text in an encoding (what the history would cost as text,
            without message overheads).
        sealed_text: What every sealed page counts for in the history on a cost model (the sum of
            :meth:`~optical_memory.pricing.costs.CostModel.page_history` over them).
        held: Ids of the pages the fidelity gate holds above the rung their age asks.
    """

    turns: Sequence[TurnRecord]
    text: Sequence[int]
    n_system: int
    pages: Sequence[Page]
    pinned: Sequence[int]
    forgotten: Set[int]
    open_page: RenderedPage | None
    open_cost: Mapping[str, int]
    open_exact: str
    top: Rung
    history_tokens: Callable[[str], int]
    sealed_text: Callable[[CostModel], int]
    held: Set[int] = frozenset()

    @property
    def n_sealed(self) -> int:
        """Sealed pages, forgotten ones too (the open page's id)."""
        return len(self.pages)

    def open_turns(self) -> tuple[int, int]:
        """The open page's first and last turn ids ((-1, -1) when there is none)."""
        return turn_range(self.open_page.spans) if self.open_page is not None else (-1, -1)

    def kept(self, spans: Sequence[TurnSpan]) -> bool:
        """Whether the text of every turn on a page is still kept."""
        return all(self.turns[s.turn].content is not None for s in spans)

    def visible(self, start: int = 0) -> list[Page]:
        """The pages not forgotten a context may show when the unpinned ones before id ``start`` are left
        out: the pinned pages before ``start``, then every page from ``start`` on, oldest first."""
        older = [self.pages[i] for i in self.pinned if i < start]
        return [*older, *(p for p in self.pages[start:] if p.rung is not Rung.FORGOTTEN)]

    def left_before(self, start: int) -> list[int]:
        """Ids of the pages not forgotten and not pinned before id ``start``, ascending (built from the few
        ids to skip, not by looking at every page)."""
        out: list[int] = []
        first = 0
        for skip in sorted(i for i in (*self.pinned, *self.forgotten) if i < start):
            out.extend(range(first, skip))
            first = skip + 1
        out.extend(range(first, start))
        return out

    def page_turns(self, page_id: int) -> tuple[int, int]:
        """A page's first and last turn ids, the open page's too."""
        return self.pages[page_id].turns if page_id < len(self.pages) else self.open_turns()


def resolve_format(format: str | None, provider: Provider) -> str:
    """The message format to build: ``format`` checked, or the provider's default when None.

    Raises:
        ConfigError: For an unknown format, or ``embeddings`` for a provider other than DeepSeek-OCR.
    """
    if format is None:
        return default_format(provider)
    if str(format).strip().lower() != EMBEDDINGS:
        return check_format(format)
    if provider.family != "deepseek-ocr":
        raise ConfigError(
            f"the {EMBEDDINGS!r} format feeds a self-hosted DeepSeek-OCR language model: use "
            f"provider='deepseek-ocr', not {provider.name!r}"
        )
    return EMBEDDINGS


def text_cost_of(records: Records, cost: CostModel) -> int:
    """What the turns sent as text (system and recent) cost."""
    return sum(cost.turn(records.turns[t].tokens, records.turns[t].images) for t in records.text)


class PageTexts:
    """Each sealed page's cost as text (None when its text is not kept, or pages go as images only),
    worked out for the pages a context looks at, once.

    Args:
        records: The memory's records.
        cost: The target provider's prices.
        allow_text: False when pages go as images only.
    """

    def __init__(self, records: Records, cost: CostModel, *, allow_text: bool) -> None:
        self._records, self._cost, self._allow = records, cost, allow_text
        self._known: dict[int, int | None] = {}

    def __getitem__(self, page: Page) -> int | None:
        if page.page_id in self._known:
            return self._known[page.page_id]
        text = (
            self._cost.page_text(page.text_cost) if self._allow and self._records.kept(page.spans) else None
        )
        self._known[page.page_id] = text
        return text


class PageStates:
    """What the policy sees of each page, built only for the pages a fit looks at.

    Args:
        cost: The target provider's prices.
        texts: Each page's cost as text (see :class:`PageTexts`).
        state: A page's state given its costs at every rung.
    """

    def __init__(
        self, cost: CostModel, texts: PageTexts, state: Callable[[Page, Mapping[Rung, int]], PageState]
    ) -> None:
        self._cost, self._texts, self._state = cost, texts, state
        self._built: dict[int, PageState] = {}

    def costs(self, page: Page) -> Mapping[Rung, int]:
        """A page's cost at every rung: as an image, or as text where that is cheaper."""
        return self._cost.page_costs(page.page_id, page.turns, self._texts[page], page.exact_line)

    def __getitem__(self, page: Page) -> PageState:
        state = self._built.get(page.page_id)
        if state is None:
            state = self._built[page.page_id] = self._state(page, self.costs(page))
        return state


def first_fitting(records: Records, states: PageStates, room: int) -> int:
    """The id of the oldest unpinned page the budget rule may still show when ``room`` tokens are left for
    pages.

    Every policy shares :func:`~optical_memory.policies.base.fit_to_budget`: unpinned pages are forgotten,
    oldest first, only once every unpinned page is at Tiny, and pinned pages go last. So once the newest
    pages, even all at Tiny (no visible rung costs less), overflow ``room``, every older unpinned page is
    forgotten whatever the rest. The unpinned page where they first overflow is returned: it stays among
    the pages fitted (the fit itself forgets it), so the fit sees the same overflow and decides the same
    as it would over every page. This keeps a context's work to the pages a budget can hold, however long
    the history.
    """
    used = 0
    for page in reversed(records.pages):
        if page.rung is Rung.FORGOTTEN:
            continue
        used += states.costs(page)[Rung.TINY]
        if used > room and page.pinned is None:
            return page.page_id
    return 0


@dataclass(slots=True)
class Tally:
    """What the pages of a context cost, page by page, and whether showing any image is worth it.

    Each page goes as text when that is no dearer than its image (and its text is kept). Images bring
    the introduction with them, once: when every image's text is kept and together they save no more
    than the introduction costs, all of them go as text instead (:meth:`total`), so a context never
    costs more than the plain text of the turns it carries.
    """

    cost: int = 0  # every page at its own choice
    images: int = 0
    forced: int = 0  # images whose text is gone
    savings: int = 0  # text less image, over the images whose text is kept

    def add(self, image: int, text: int | None, sign: int = 1) -> bool:
        """Count a page shown at ``image`` cost (``text``: its cost as text, if kept); True: it goes as text."""
        as_text = text is not None and text <= image
        self.cost += sign * (text if as_text else image)  # type: ignore[operator]
        if not as_text:
            self.images += sign
            if text is None:
                self.forced += sign
            else:
                self.savings += sign * (text - image)
        return as_text

    def all_text(self, intro: int) -> bool:
        """Whether the images are better sent as text: none is forced and they save no more than ``intro``."""
        return self.images > 0 and not self.forced and self.savings <= intro

    def total(self, intro: int) -> int:
        """The pages' cost, the introduction included when any image is shown."""
        if self.all_text(intro):
            return self.cost + self.savings
        return self.cost + (intro if self.images else 0)


@dataclass(frozen=True, slots=True)
class Shown:
    """How the older conversation goes into one context.

    Attributes:
        pages: The pages the context may show, oldest first (the pages before them are left out).
        rungs: Each page's rung in this context (forgotten: left out).
        as_text: Per page, whether it goes as text (False for a page left out).
        open_as_text: Whether the open page goes as text.
        cost: What the pages cost, the introduction included.
    """

    pages: Sequence[Page]
    rungs: Sequence[Rung]
    as_text: tuple[bool, ...]
    open_as_text: bool
    cost: int

    @property
    def n_as_text(self) -> int:
        """Pages sent as text, the open page included."""
        return sum(self.as_text) + self.open_as_text


def show(
    records: Records,
    pages: Sequence[Page],
    rungs: Sequence[Rung],
    texts: PageTexts,
    cost: CostModel,
    *,
    allow_text: bool,
) -> Shown:
    """Whether each of ``pages`` goes as text or as an image at its rung, and what the pages then cost."""
    tally = Tally()
    as_text = [False] * len(rungs)
    for i, (page, rung) in enumerate(zip(pages, rungs, strict=True)):
        if rung is not Rung.FORGOTTEN:
            as_text[i] = tally.add(cost.page(page.page_id, page.turns, rung, page.exact_line), texts[page])
    open_text = False
    if records.open_page is not None:
        image = cost.page(records.n_sealed, records.open_turns(), records.top, records.open_exact)
        open_text = tally.add(image, cost.page_text(records.open_cost) if allow_text else None)
    intro = cost.intro(1)
    if tally.all_text(intro):
        as_text = [t or r is not Rung.FORGOTTEN for t, r in zip(as_text, rungs, strict=True)]
        open_text = records.open_page is not None
    return Shown(pages, rungs, tuple(as_text), open_text, tally.total(intro))


def fit(
    policy: DecayPolicy,
    records: Records,
    states: PageStates,
    texts: PageTexts,
    cost: CostModel,
    budget: int,
    *,
    allow_text: bool,
) -> tuple[list[Page], list[Rung], tuple[int, ...]]:
    """Rungs that fit ``budget`` for one context (the policy's budget rule; stored pages are untouched).

    Args:
        policy: The memory's policy.
        records: The memory's records.
        states: The pages' states, priced by ``cost``.
        texts: The pages' costs as text (see :class:`PageTexts`).
        cost: The target provider's prices.
        budget: Most tokens the context may cost.
        allow_text: Whether the open page may go as text.

    Only the pages :func:`first_fitting` says a budget may hold are handed to the policy (with every
    pinned page): the older ones are left out, as the budget rule would leave them.

    Returns:
        The pages the context may show (see :meth:`Records.visible`), one rung per page (never sharper
        than stored), and the ids of every page left out only for the budget.

    Raises:
        ConfigError: If the budget is below what always stays (the text and the open page).
    """
    text = text_cost_of(records, cost)
    floor = show(records, [], [], texts, cost, allow_text=allow_text).cost  # the open page alone
    check_floor(budget, text, floor)
    target = budget
    # costs are additive except the introduction, paid once when any image shows: re-fit on overshoot;
    # a lower target only moves the first page fitted later, so the pages of the first try hold them all
    start = first = first_fitting(records, states, target - text - floor)
    pages = records.visible(start)
    rungs: list[Rung] = []
    for _ in range(_FIT_TRIES):
        fitted = [p for p in pages if p.page_id >= first or p.pinned is not None]
        assignment = policy.assign([states[p] for p in fitted], budget=target, fixed_cost=text + floor)
        chosen = {p.page_id: r for p, r in zip(fitted, assignment.rungs, strict=True)}
        rungs = [_no_sharper(chosen.get(p.page_id, Rung.FORGOTTEN), p) for p in pages]
        total = text + show(records, pages, rungs, texts, cost, allow_text=allow_text).cost
        if total <= budget:
            return pages, rungs, _left_out(records, start, pages, rungs)
        target -= total - budget
        first = first_fitting(records, states, target - text - floor)
    # the policy's estimate kept missing (its prices leave out what showing pages adds): leave pages out,
    # unpinned ones oldest first, then pinned ones; with every page out the floor checked above fits
    order = sorted(range(len(pages)), key=lambda i: (pages[i].pinned is not None, i))
    for i in order:
        if rungs[i] is Rung.FORGOTTEN:
            continue
        rungs[i] = Rung.FORGOTTEN
        if text + show(records, pages, rungs, texts, cost, allow_text=allow_text).cost <= budget:
            break
    return pages, rungs, _left_out(records, start, pages, rungs)


def _no_sharper(rung: Rung, page: Page) -> Rung:
    """``rung``, or the page's stored rung when ``rung`` is sharper."""
    return rung if rank(rung) >= rank(page.rung) else page.rung


def _left_out(records: Records, start: int, pages: Sequence[Page], rungs: Sequence[Rung]) -> tuple[int, ...]:
    """Ids of the pages a fit left out, ascending: the unpinned ones before ``start``, and those of
    ``pages`` it forgot."""
    later = [p.page_id for p, r in zip(pages, rungs, strict=True) if r is Rung.FORGOTTEN]
    return tuple(sorted([*records.left_before(start), *later]))


def older_items(
    records: Records,
    shown: Shown,
    cost: CostModel,
    image: Callable[[Page, Rung], PageItem],
    open_png: Callable[[], bytes | None] = lambda: None,
) -> list[Item]:
    """The older conversation, oldest first: each page as its turns' text or as an image, as ``shown`` says.

    Consecutive pieces of one turn sent as text are joined into one item; ``open_png`` gives the open
    page's PNG when the format sends bytes.
    """
    items: list[Item] = []
    for page, rung, as_text in zip(shown.pages, shown.rungs, shown.as_text, strict=True):
        if rung is Rung.FORGOTTEN:
            continue
        if as_text:
            _add_text(items, records, page.spans)
        else:
            items.append(image(page, rung))
    if records.open_page is not None:
        if shown.open_as_text:
            _add_text(items, records, records.open_page.spans)
        else:
            pid, top = records.n_sealed, records.top
            label = page_label(pid, records.open_turns())
            png = open_png()
            pixels = records.open_page.image.copy()
            items.append(PageItem(pid, pixels, top, label, png, cost.detail(top), exact=records.open_exact))
    return items


def _add_text(items: list[Item], records: Records, spans: Sequence[TurnSpan]) -> None:
    """Append a page's turn pieces as text items, joining a piece onto the one before it from its turn."""
    for span in spans:
        rec = records.turns[span.turn]
        content = rec.content or ""
        piece = content[span.start : span.end]
        calls = rec.tool_calls if span.end >= len(content) else ()  # the calls close the turn
        prev = items[-1] if items else None
        if isinstance(prev, TextItem) and prev.turn == span.turn:
            piece = prev.content + piece
            items.pop()
        items.append(TextItem(rec.role, piece, rec.name, calls, rec.tool_call_id, span.turn))


def text_items(records: Records, ids: Sequence[int]) -> list[TextItem]:
    """Whole turns as text items."""
    out = []
    for t in ids:
        rec = records.turns[t]
        out.append(
            TextItem(rec.role, rec.content or "", rec.name, rec.tool_calls, rec.tool_call_id, t, rec.images)
        )
    return out


def ordered(records: Records, older: Sequence[Item]) -> list[Item]:
    """The context's items in order: system text, the older conversation, then the recent turns."""
    text = text_items(records, records.text)
    return [*text[: records.n_system], *older, *text[records.n_system :]]


def message_usage(
    records: Records,
    cost: CostModel,
    items: Sequence[Item],
    shown: Shown,
    left_out: tuple[int, ...],
    budget: int | None,
) -> Usage:
    """What a message context costs: its text items, the introduction and page labels, and page images."""
    pages = [i for i in items if isinstance(i, PageItem)]
    captions = sum(cost.caption(i.page_id, records.page_turns(i.page_id), i.exact) for i in pages)
    text = sum(_item_text_cost(i, records, cost) for i in items if isinstance(i, TextItem))
    text += cost.intro(len(pages)) + captions
    image = sum(cost.images[i.rung] for i in pages)
    image += sum(cost.pictures(i.images) for i in items if isinstance(i, TextItem))
    return usage(records, cost, text, image, pages, shown, left_out, budget)


def _item_text_cost(item: TextItem, records: Records, cost: CostModel) -> int:
    """A text item's cost: a whole turn's counted tokens, or a piece counted now."""
    if item.turn is not None:
        content = records.turns[item.turn].content
        if content is not None and len(item.content) == len(content):  # the whole turn
            return cost.text(records.turns[item.turn].tokens)
    counts = text_cost([(item.content, item.tool_calls)], (cost.encoding,))
    return counts[cost.encoding] + cost.overhead


def usage(
    records: Records,
    cost: CostModel,
    text: int,
    image: int,
    images: Sequence[PageItem],
    shown: Shown,
    left_out: tuple[int, ...],
    budget: int | None,
) -> Usage:
    """The :class:`~optical_memory.context.Usage` of a context sending ``text`` and ``image`` tokens, with
    ``images`` among its items and its pages as ``shown`` says."""
    history = records.history_tokens(cost.encoding) + cost.overhead * len(records.turns)
    # what the sealed pages not carried (forgotten or left out) count for: all of them less those carried
    carried_pages = sum(
        cost.page_history(p.text_cost, p.text_tokens)
        for p, r in zip(shown.pages, shown.rungs, strict=True)
        if r is not Rung.FORGOTTEN
    )
    carried = history - (records.sealed_text(cost) - carried_pages)
    total = text + image
    ratio = history / total if total else 1.0
    per_rung = _per_rung(records, images, shown.n_as_text)
    held = tuple(p.page_id for p in shown.pages if p.page_id in records.held)
    return Usage(
        history, text, image, total, per_rung, ratio, left_out, max(carried, 0), shown.n_as_text, budget, held
    )


def _per_rung(records: Records, shown: Sequence[PageItem], as_text: int) -> Mapping[str, int]:
    """Pages shown as images at each rung, every rung name present; ``forgotten`` counts pages not shown."""
    per_rung = dict.fromkeys(_RUNG_NAMES, 0)
    for item in shown:
        per_rung[item.rung.value] += 1
    n_pages = records.n_sealed + (records.open_page is not None)
    per_rung[Rung.FORGOTTEN.value] = n_pages - len(shown) - as_text
    return per_rung


def embedding_inputs(
    tokenizer: Any, items: Sequence[Item], tokens: Sequence[Any], n_system: int, table: Any
) -> EmbeddingInputs:
    """The ``embeddings`` layout of ``items``: system text, pages with their vision ``tokens``, turns.

    Raises:
        ConfigError: If the embedding table's width differs from the vision tokens' width.
        MissingDependencyError: If torch is not installed.
    """
    from optical_memory.embeddings import PagePart, TextPart, build_inputs

    system = [i.content for i in items[:n_system] if isinstance(i, TextItem)]
    turns = [TextPart(*plain_role(i)) for i in items[n_system:] if isinstance(i, TextItem)]
    shown = [i for i in items if isinstance(i, PageItem)]
    pages = [PagePart(p.page_id, t, p.exact) for p, t in zip(shown, tokens, strict=True)]
    return build_inputs(tokenizer, system, pages, turns, table)


def page_text_cost(
    turns: Sequence[TurnRecord],
    spans: Sequence[TurnSpan],
    known: dict[TurnSpan, dict[str, int]] | None = None,
) -> dict[str, int]:
    """What a page's turn pieces cost as text, per bundled encoding (their text must be kept); empty for a
    page holding a turn that carries images. ``known`` keeps each piece's cost, for pieces asked again (the
    open page's, as it fills)."""
    if any(turns[s.turn].images for s in spans):
        return {}  # its text would lose the pictures: such a page always goes as its image
    total = dict.fromkeys([*ENCODINGS, "messages"], 0)
    for span in spans:
        cost = known.get(span) if known is not None else None
        if cost is None:
            rec = turns[span.turn]
            content = rec.content or ""
            calls = rec.tool_calls if span.end >= len(content) else ()  # the calls close the turn
            cost = text_cost([(content[span.start : span.end], calls)], ENCODINGS)
            if known is not None:
                known[span] = cost
        for key, n in cost.items():
            total[key] += n
    return total
