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

from collections.abc import Callable, Mapping, Sequence
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
        visible: The sealed pages not forgotten, oldest first.
        forgotten: The sealed pages forgotten, oldest first.
        n_sealed: Sealed pages, forgotten ones too (the open page's id).
        open_page: A render of the open page, or None.
        open_cost: The open page's turn pieces' text cost (see :func:`~optical_memory.pricing.costs.text_cost`).
        top: The rung pages are rendered at (the open page's rung).
        history_tokens: Tokens of every turn's text in an encoding (what the history would cost as text,
            without message overheads).
    """

    turns: Sequence[TurnRecord]
    text: Sequence[int]
    n_system: int
    visible: Sequence[Page]
    forgotten: Sequence[Page]
    n_sealed: int
    open_page: RenderedPage | None
    open_cost: Mapping[str, int]
    top: Rung
    history_tokens: Callable[[str], int]

    def open_turns(self) -> tuple[int, int]:
        """The open page's first and last turn ids ((-1, -1) when there is none)."""
        return turn_range(self.open_page.spans) if self.open_page is not None else (-1, -1)

    def kept(self, spans: Sequence[TurnSpan]) -> bool:
        """Whether the text of every turn on a page is still kept."""
        return all(self.turns[s.turn].content is not None for s in spans)


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
    """Each visible page's cost as text (None when its text is not kept, or pages go as images only),
    worked out for the pages a context looks at, once.

    Args:
        records: The memory's records.
        cost: The target provider's prices.
        allow_text: False when pages go as images only.
    """

    def __init__(self, records: Records, cost: CostModel, *, allow_text: bool) -> None:
        self._records, self._cost, self._allow = records, cost, allow_text
        self._known: dict[int, int | None] = {}

    def __getitem__(self, i: int) -> int | None:
        if i in self._known:
            return self._known[i]
        page = self._records.visible[i]
        text = (
            self._cost.page_text(page.text_cost) if self._allow and self._records.kept(page.spans) else None
        )
        self._known[i] = text
        return text


class PageStates:
    """What the policy sees of each visible page, built only for the pages a fit looks at.

    Args:
        records: The memory's records.
        cost: The target provider's prices.
        texts: Each visible page's cost as text (see :class:`PageTexts`).
        state: A page's state given its costs at every rung.
    """

    def __init__(
        self,
        records: Records,
        cost: CostModel,
        texts: PageTexts,
        state: Callable[[Page, Mapping[Rung, int]], PageState],
    ) -> None:
        self._records, self._cost, self._texts, self._state = records, cost, texts, state
        self._built: dict[int, PageState] = {}

    def costs(self, i: int) -> Mapping[Rung, int]:
        """Visible page ``i``'s cost at every rung: as an image, or as text where that is cheaper."""
        page = self._records.visible[i]
        return self._cost.page_costs(page.page_id, page.turns, self._texts[i])

    def __getitem__(self, i: int) -> PageState:
        state = self._built.get(i)
        if state is None:
            state = self._built[i] = self._state(self._records.visible[i], self.costs(i))
        return state


def first_fitting(records: Records, states: PageStates, room: int) -> int:
    """The oldest unpinned page the budget rule may still show when ``room`` tokens are left for pages.

    Every policy shares :func:`~optical_memory.policies.base.fit_to_budget`: unpinned pages are forgotten,
    oldest first, only once every unpinned page is at Tiny, and pinned pages go last. So once the newest
    pages, even all at Tiny (no visible rung costs less), overflow ``room``, every older unpinned page is
    forgotten whatever the rest. The unpinned page where they first overflow is returned: it stays among
    the pages fitted (the fit itself forgets it), so the fit sees the same overflow and decides the same
    as it would over every page. This keeps a context's fit to the pages a budget can hold, however long
    the history.
    """
    visible = records.visible
    used = 0
    for i in range(len(visible) - 1, -1, -1):
        used += states.costs(i)[Rung.TINY]
        if used > room and visible[i].pinned is None:
            return i
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
        as_text: Per visible page, whether it goes as text (False for a page left out).
        open_as_text: Whether the open page goes as text.
        cost: What the pages cost, the introduction included.
    """

    as_text: tuple[bool, ...]
    open_as_text: bool
    cost: int


def show(
    records: Records, rungs: Sequence[Rung], texts: PageTexts, cost: CostModel, *, allow_text: bool
) -> Shown:
    """Whether each page goes as text or as an image at its rung, and what the pages then cost."""
    tally = Tally()
    as_text = [False] * len(rungs)
    for i, rung in enumerate(rungs):
        if rung is not Rung.FORGOTTEN:
            page = records.visible[i]
            as_text[i] = tally.add(cost.page(page.page_id, page.turns, rung), texts[i])
    open_text = False
    if records.open_page is not None:
        image = cost.page(records.n_sealed, records.open_turns(), records.top)
        open_text = tally.add(image, cost.page_text(records.open_cost) if allow_text else None)
    intro = cost.intro(1)
    if tally.all_text(intro):
        as_text = [t or r is not Rung.FORGOTTEN for t, r in zip(as_text, rungs, strict=True)]
        open_text = records.open_page is not None
    return Shown(tuple(as_text), open_text, tally.total(intro))


def fit(
    policy: DecayPolicy,
    records: Records,
    states: PageStates,
    texts: PageTexts,
    cost: CostModel,
    budget: int,
    *,
    allow_text: bool,
) -> tuple[list[Rung], tuple[int, ...]]:
    """Rungs that fit ``budget`` for one context (the policy's budget rule; stored pages are untouched).

    Args:
        policy: The memory's policy.
        records: The memory's records.
        states: The visible pages' states, priced by ``cost``.
        texts: The visible pages' costs as text (see :class:`PageTexts`).
        cost: The target provider's prices.
        budget: Most tokens the context may cost.
        allow_text: Whether the open page may go as text.

    Only the pages :func:`first_fitting` says a budget may hold are handed to the policy (with every
    pinned page): the older ones are left out, as the budget rule would leave them.

    Returns:
        One rung per visible page (never sharper than stored), and the ids left out only for the budget.

    Raises:
        ConfigError: If the budget is below what always stays (the text and the open page).
    """
    visible = records.visible
    text = text_cost_of(records, cost)
    rungs = [Rung.FORGOTTEN] * len(visible)
    floor = show(records, rungs, texts, cost, allow_text=allow_text).cost  # the open page alone
    check_floor(budget, text, floor)
    target = budget
    left_out: list[int] = []
    # costs are additive except the introduction, paid once when any image shows: re-fit on overshoot
    for _ in range(_FIT_TRIES):
        first = first_fitting(records, states, target - text - floor)
        older_pinned = [i for i in range(first) if visible[i].pinned is not None]
        fitted = [*older_pinned, *range(first, len(visible))]
        assignment = policy.assign([states[i] for i in fitted], budget=target, fixed_cost=text + floor)
        rungs = [Rung.FORGOTTEN] * len(visible)
        for i, r in zip(fitted, assignment.rungs, strict=True):
            rungs[i] = r if rank(r) >= rank(visible[i].rung) else visible[i].rung
        left_out = [p.page_id for p in visible[:first] if p.pinned is None]
        left_out += assignment.forgotten_for_budget
        total = text + show(records, rungs, texts, cost, allow_text=allow_text).cost
        if total <= budget:
            return rungs, tuple(sorted(left_out))
        target -= total - budget
    # the policy's estimate kept missing (its prices leave out what showing pages adds): leave pages out,
    # unpinned ones oldest first, then pinned ones; with every page out the floor checked above fits
    order = sorted(range(len(visible)), key=lambda i: (visible[i].pinned is not None, i))
    for i in order:
        if rungs[i] is Rung.FORGOTTEN:
            continue
        rungs[i] = Rung.FORGOTTEN
        left_out.append(visible[i].page_id)
        if text + show(records, rungs, texts, cost, allow_text=allow_text).cost <= budget:
            break
    return rungs, tuple(sorted(left_out))


def older_items(
    records: Records,
    rungs: Sequence[Rung],
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
    for page, rung, as_text in zip(records.visible, rungs, shown.as_text, strict=True):
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
            items.append(PageItem(pid, records.open_page.image.copy(), top, label, png, cost.detail(top)))
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
    left_out: tuple[int, ...],
    budget: int | None,
    as_text: int,
) -> Usage:
    """What a message context costs: its text items, the introduction and page labels, and page images."""
    turns = {p.page_id: p.turns for p in records.visible}
    turns[records.n_sealed] = records.open_turns()
    pages = [i for i in items if isinstance(i, PageItem)]
    labels = sum(cost.label(i.page_id, turns[i.page_id]) for i in pages)
    text = sum(_item_text_cost(i, records, cost) for i in items if isinstance(i, TextItem))
    text += cost.intro(len(pages)) + labels
    image = sum(cost.images[i.rung] for i in pages)
    image += sum(cost.pictures(i.images) for i in items if isinstance(i, TextItem))
    return usage(records, cost, text, image, pages, left_out, budget, as_text)


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
    shown: Sequence[PageItem],
    left_out: tuple[int, ...],
    budget: int | None,
    as_text: int,
) -> Usage:
    """The :class:`~optical_memory.context.Usage` of a context sending ``text`` and ``image`` tokens."""
    history = records.history_tokens(cost.encoding) + cost.overhead * len(records.turns)
    out = set(left_out)
    dropped = [p for p in records.visible if p.page_id in out] + list(records.forgotten)
    carried = history - sum(cost.page_text(p.text_cost) or p.text_tokens for p in dropped)
    total = text + image
    ratio = history / total if total else 1.0
    per_rung = _per_rung(records, shown, as_text)
    return Usage(
        history, text, image, total, per_rung, ratio, tuple(left_out), max(carried, 0), as_text, budget
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
    pages = [PagePart(p.page_id, t) for p, t in zip(shown, tokens, strict=True)]
    return build_inputs(tokenizer, system, pages, turns, table)


def page_text_cost(turns: Sequence[TurnRecord], spans: Sequence[TurnSpan]) -> dict[str, int]:
    """What a page's turn pieces cost as text, per bundled encoding (their text must be kept); empty for a
    page holding a turn that carries images."""
    if any(turns[s.turn].images for s in spans):
        return {}  # its text would lose the pictures: such a page always goes as its image
    pieces = []
    for span in spans:
        rec = turns[span.turn]
        content = rec.content or ""
        pieces.append((content[span.start : span.end], rec.tool_calls if span.end >= len(content) else ()))
    return text_cost(pieces, ENCODINGS)
