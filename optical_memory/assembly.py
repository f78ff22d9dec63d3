"""Context assembly for :meth:`~optical_memory.memory.OpticalMemory.context`: the format, the rungs that
fit a budget, and what the built context costs.

Internal to :mod:`optical_memory.memory`, which reads its records under its lock and hands them here.
Nothing here touches the store: rungs are chosen on copies, for one context only. Prices come from a
:class:`~optical_memory.context.CostModel` and are additive except the introduction, whose wording
counts the pages shown; :func:`fit` re-fits when that overshoots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optical_memory import ladder
from optical_memory.context import CostModel, Usage, turn_range
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
from optical_memory.providers import Provider
from optical_memory.records import Page, TurnRecord
from optical_memory.types import RenderedPage

if TYPE_CHECKING:
    from optical_memory.embeddings import EmbeddingInputs

_RUNG_NAMES = tuple(r.value for r in ladder.ORDER)
_FIT_TRIES = 4


@dataclass(frozen=True, slots=True)
class Records:
    """The memory's records a context is built from, read under its lock.

    Attributes:
        turns: Every turn of the session (what the history would cost as text).
        text: The turns sent as text: the system prompt, then the recent window.
        n_system: How many of ``text`` are the system prompt.
        visible: The sealed pages not forgotten, oldest first.
        n_sealed: Sealed pages, forgotten ones too (the open page's id).
        open_page: A render of the open page, or None.
        top: The rung pages are rendered at (the open page's rung).
    """

    turns: Sequence[TurnRecord]
    text: Sequence[TurnRecord]
    n_system: int
    visible: Sequence[Page]
    n_sealed: int
    open_page: RenderedPage | None
    top: Rung

    def open_turns(self) -> tuple[int, int]:
        """The open page's first and last turn ids ((-1, -1) when there is none)."""
        return turn_range(self.open_page.spans) if self.open_page is not None else (-1, -1)


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


def default_budget(configured: int | None, policy: DecayPolicy) -> int | None:
    """The budget of a context asked for without one: the config's, else the policy's standing one."""
    return configured if configured is not None else getattr(policy, "budget", None)


def text_cost(records: Records, cost: CostModel) -> int:
    """What the turns sent as text cost."""
    return sum(cost.text(t.tokens) for t in records.text)


def fit(
    policy: DecayPolicy, records: Records, states: Sequence[PageState], cost: CostModel, budget: int
) -> tuple[list[Rung], tuple[int, ...]]:
    """Rungs that fit ``budget`` for one context (the policy's budget rule; stored pages are untouched).

    Args:
        policy: The memory's policy.
        records: The memory's records.
        states: The visible pages' states, priced by ``cost``.
        cost: The target provider's prices.
        budget: Most tokens the context may cost.

    Returns:
        One rung per visible page (never sharper than stored), and the ids left out only for the budget.

    Raises:
        ConfigError: If the budget is below what always stays (the text and the open page), or no
            assignment fits it.
    """
    visible, has_open = records.visible, records.open_page is not None
    open_cost = cost.page(records.n_sealed, records.open_turns(), records.top) if has_open else None
    text = text_cost(records, cost)
    fixed = text + (open_cost or 0)
    _check_floor(budget, fixed + cost.intro(int(has_open)), text, open_cost)
    target = budget
    # costs are additive except the introduction's page count: re-fit while that overshoots
    for _ in range(_FIT_TRIES):
        assignment = policy.assign(
            states, budget=target, fixed_cost=fixed + cost.intro(len(visible) + has_open)
        )
        rungs = [
            r if rank(r) >= rank(p.rung) else p.rung for p, r in zip(visible, assignment.rungs, strict=True)
        ]
        shown = sum(r is not Rung.FORGOTTEN for r in rungs) + has_open
        pages = sum(cost.page(p.page_id, p.turns, r) for p, r in zip(visible, rungs, strict=True))
        total = fixed + cost.intro(shown) + pages
        if total <= budget:
            return rungs, assignment.forgotten_for_budget
        target -= total - budget
    raise ConfigError(f"could not fit the context into a budget of {budget} tokens")


def _check_floor(budget: int, floor: int, text: int, open_cost: int | None) -> None:
    if budget < floor:
        open_page = "" if open_cost is None else f" and the open page ({open_cost} tokens)"
        raise ConfigError(
            f"the budget of {budget} tokens is smaller than the recent text alone ({text} tokens)"
            f"{open_page}, which always stay: raise the budget or keep fewer recent turns as text"
        )


def page_items(
    records: Records, rungs: Sequence[Rung], item: Callable[[Page, Rung], PageItem]
) -> list[PageItem]:
    """The pages shown, oldest first: each visible page not left out (``item`` makes it), the open page."""
    shown = [item(p, r) for p, r in zip(records.visible, rungs, strict=True) if r is not Rung.FORGOTTEN]
    if records.open_page is not None:
        pid, top = records.n_sealed, records.top
        label = page_label(pid, records.open_turns(), top)
        shown.append(PageItem(pid, records.open_page.image.copy(), top, label))
    return shown


def ordered(records: Records, shown: Sequence[PageItem]) -> list[Item]:
    """The context's items in order: system text, the pages shown, then the recent turns."""
    text = [TextItem(t.role, t.content or "", t.name) for t in records.text]
    return [*text[: records.n_system], *shown, *text[records.n_system :]]


def message_usage(
    records: Records, cost: CostModel, shown: Sequence[PageItem], left_out: tuple[int, ...]
) -> Usage:
    """What a message context costs: text turns, the introduction and page labels, and page images."""
    turns = {p.page_id: p.turns for p in records.visible}
    turns[records.n_sealed] = records.open_turns()
    labels = sum(cost.label(i.page_id, turns[i.page_id], i.rung) for i in shown)
    text = text_cost(records, cost) + cost.intro(len(shown)) + labels
    return usage(records, cost, text, sum(cost.images[i.rung] for i in shown), shown, left_out)


def usage(
    records: Records,
    cost: CostModel,
    text: int,
    image: int,
    shown: Sequence[PageItem],
    left_out: tuple[int, ...],
) -> Usage:
    """The :class:`~optical_memory.context.Usage` of a context sending ``text`` and ``image`` tokens."""
    history = sum(cost.text(t.tokens) for t in records.turns)
    total = text + image
    ratio = history / total if total else 1.0
    return Usage(history, text, image, total, _per_rung(records, shown), ratio, tuple(left_out))


def _per_rung(records: Records, shown: Sequence[PageItem]) -> Mapping[str, int]:
    """Pages shown at each rung, every rung name present; ``forgotten`` counts the pages not shown."""
    per_rung = dict.fromkeys(_RUNG_NAMES, 0)
    for item in shown:
        per_rung[item.rung.value] += 1
    n_pages = records.n_sealed + (records.open_page is not None)
    per_rung[Rung.FORGOTTEN.value] = n_pages - len(shown)
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
