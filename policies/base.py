"""What a decay policy sees and returns, and the budget rule every policy shares.

A policy sees page metadata only, never pixels: a :class:`PageState` per page (oldest first), and returns
an :class:`Assignment`, one rung per page in the same order. The plug-in point is one method,
:meth:`DecayPolicy.assign`.

Rules every policy keeps:

- **Order is preserved**: ``assignment.rungs[i]`` belongs to ``pages[i]``.
- **A page never becomes sharper by itself**: the rung returned is never sharper than the page's current
  rung, except for a page pinned at a sharper rung whose text was kept (``can_sharpen``), which can be
  re-rendered at its pin.
- **Pins**: a pinned page is held at exactly its pinned rung (a pin sharper than the stored rung holds the
  stored rung when the page cannot be sharpened). Under a budget a pinned page is the last thing touched:
  see :func:`fit_to_budget`.
- **Budgets**: when ``assign`` gets a ``budget`` (in the target provider's tokens), ``fixed_cost`` (the
  recent text and everything that is not a page) plus the cost of the assigned rungs never exceeds it.

The budget rule, :func:`fit_to_budget`, runs after the policy's own choice and only ever demotes:

1. Unpinned pages, oldest first, go down one rung at a time towards Tiny (the oldest page reaches Tiny
   before the next one is touched) until the context fits; the page where it first fits stops there.
2. When every unpinned page at Tiny still does not fit, unpinned pages are forgotten, oldest first, until
   it fits. Their ids are reported in :attr:`Assignment.forgotten_for_budget`.
3. Only when no unpinned page is left visible are pinned pages demoted (oldest first, down to Tiny), then
   forgotten (oldest first).
4. A budget smaller than ``fixed_cost`` alone cannot be met by any choice of rungs: :class:`ConfigError`.

Costs come from the target provider: ``PageState.costs`` maps each visible rung to what that provider
bills for the page at that rung (:func:`ladder_costs` builds it from an image-cost function), so the same
budget keeps more pages sharp on DeepSeek-OCR (a 512 px page is 73 positions) than on gpt-4o (255) or
Claude (350).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from optical_memory import ladder
from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.pricing import deepseek

ORDER: tuple[Rung, ...] = ladder.ORDER
RANK: Mapping[Rung, int] = MappingProxyType({rung: i for i, rung in enumerate(ORDER)})
TINY = RANK[Rung.TINY]
FORGOTTEN = RANK[Rung.FORGOTTEN]


def ladder_costs(image_tokens: Callable[[int, int], int]) -> Mapping[Rung, int]:
    """The cost of a square page at each rung, priced by ``image_tokens(width, height)``.

    Pass a provider's ``image_tokens`` method, e.g.
    ``ladder_costs(get_provider("openai:gpt-4o").image_tokens)``; forgotten costs 0.
    """
    costs = {spec.rung: int(image_tokens(spec.size, spec.size)) for spec in ladder.LADDER}
    costs[Rung.FORGOTTEN] = 0
    return MappingProxyType(costs)


DEEPSEEK_COSTS: Mapping[Rung, int] = MappingProxyType({rung: deepseek.positions(rung) for rung in ORDER})
"""DeepSeek-OCR positions per rung (421 / 273 / 111 / 73 / 0): the default page cost."""


@dataclass(frozen=True, slots=True)
class PageState:
    """What a policy knows about one page: metadata only, never pixels.

    Attributes:
        page_id: The page's id in its session.
        rung: The rung the page is stored at now.
        age_pages: Sealed pages newer than this one (0 = the newest sealed page).
        age_turns: Turns added after the page's last turn.
        age_seconds: Wall-clock seconds since the page was sealed.
        pinned: When set, the page is held at exactly this rung.
        can_sharpen: True when the page's text was kept, so it can be re-rendered sharper when pinned.
        costs: The target provider's cost of this page at each visible rung (forgotten costs 0).
    """

    page_id: int
    rung: Rung
    age_pages: int
    age_turns: int = 0
    age_seconds: float = 0.0
    pinned: Rung | None = None
    can_sharpen: bool = False
    costs: Mapping[Rung, int] = field(default_factory=lambda: DEEPSEEK_COSTS)

    def cost(self, rung: Rung) -> int:
        """This page's cost at ``rung`` (0 when forgotten).

        Raises:
            ConfigError: If ``costs`` has no entry for a visible rung.
        """
        if rung is Rung.FORGOTTEN:
            return 0
        try:
            return self.costs[rung]
        except KeyError:
            raise ConfigError(f"page {self.page_id} has no cost for rung {rung.value!r}") from None


@dataclass(frozen=True, slots=True)
class Assignment:
    """A policy's decision: one rung per page, in the order the pages were given.

    Attributes:
        rungs: The rung of each input page, same order.
        forgotten_for_budget: Ids of the pages forgotten only to fit the budget.
        cost: Total cost of the assigned rungs (not counting ``fixed_cost``).
    """

    rungs: tuple[Rung, ...]
    forgotten_for_budget: tuple[int, ...] = ()
    cost: int = 0


@runtime_checkable
class DecayPolicy(Protocol):
    """Chooses the rung of every page; see the module docstring for the rules it must keep."""

    def assign(
        self, pages: Sequence[PageState], *, budget: int | None = None, fixed_cost: int = 0
    ) -> Assignment:
        """One rung per page (oldest first), fitting ``fixed_cost + cost <= budget`` when a budget is given.

        Raises:
            ConfigError: If the budget is negative or smaller than ``fixed_cost``.
        """
        ...


def pinned_rank(page: PageState) -> int:
    """The rank a pinned page is held at: its pin, or its current rung if the pin needs a re-render."""
    assert page.pinned is not None
    pin, current = RANK[page.pinned], RANK[page.rung]
    return pin if pin >= current or page.can_sharpen else current


def _cost(page: PageState, rank: int) -> int:
    return 0 if rank == FORGOTTEN else page.cost(ORDER[rank])


def check_budget(budget: int, fixed_cost: int) -> None:
    """Refuse budgets no assignment can meet.

    Raises:
        ConfigError: If ``fixed_cost`` is negative, or the budget is smaller than ``fixed_cost``.
    """
    if fixed_cost < 0:
        raise ConfigError(f"fixed_cost must not be negative, got {fixed_cost}")
    if budget < fixed_cost:
        raise ConfigError(
            f"the budget of {budget} tokens is smaller than the recent text alone ({fixed_cost} tokens): "
            "raise the budget or keep fewer recent turns as text"
        )


def fit_to_budget(
    pages: Sequence[PageState], ranks: Sequence[int], *, budget: int | None, fixed_cost: int = 0
) -> Assignment:
    """Demote, then forget, pages until ``fixed_cost`` plus their cost fits ``budget``.

    ``ranks`` is a policy's own choice (indices into the ladder, 0 = Large, 4 = forgotten), one per page.
    With no budget the choice is returned as is. The order of demotion is the module docstring's: unpinned
    pages oldest first down to Tiny, then unpinned pages forgotten oldest first, then pinned pages. Linear
    in the number of pages.

    Raises:
        ConfigError: If the budget is smaller than ``fixed_cost``, or a page lacks a cost.
    """
    out = list(ranks)
    total = sum(_cost(page, rank) for page, rank in zip(pages, out, strict=True))
    if budget is None:
        return _assignment(out, (), total)
    check_budget(budget, fixed_cost)
    excess = fixed_cost + total - budget
    forgotten: list[int] = []
    for pinned in (False, True):
        if excess <= 0:
            break
        chosen = [i for i, page in enumerate(pages) if (page.pinned is not None) is pinned]
        excess = _demote_to_tiny(pages, out, chosen, excess)
        excess = _forget_oldest(pages, out, chosen, excess, forgotten)
    assert excess <= 0, "forgetting every page must fit a budget no smaller than fixed_cost"
    return _assignment(out, tuple(forgotten), budget - fixed_cost + excess)


def _demote_to_tiny(pages: Sequence[PageState], out: list[int], chosen: list[int], excess: int) -> int:
    for i in chosen:
        if excess <= 0:
            break
        page = pages[i]
        while out[i] < TINY and excess > 0:
            excess -= _cost(page, out[i]) - _cost(page, out[i] + 1)
            out[i] += 1
    return excess


def _forget_oldest(
    pages: Sequence[PageState], out: list[int], chosen: list[int], excess: int, forgotten: list[int]
) -> int:
    for i in chosen:
        if excess <= 0:
            break
        if out[i] != FORGOTTEN:
            excess -= _cost(pages[i], out[i])
            out[i] = FORGOTTEN
            forgotten.append(pages[i].page_id)
    return excess


def _assignment(ranks: Sequence[int], forgotten: tuple[int, ...], cost: int) -> Assignment:
    return Assignment(tuple(ORDER[r] for r in ranks), forgotten, cost)
