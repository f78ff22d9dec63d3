"""The token budget: any inner policy first, then demote and forget the oldest pages until it fits.

``TokenBudget(inner=AgeLadder(), budget=None)`` asks ``inner`` for its rungs (without a budget), then
applies :func:`~optical_memory.policies.base.fit_to_budget` with the budget given to :meth:`assign`, or,
when none is given there, its own standing ``budget`` (None: no budget, the inner choice as is):

1. unpinned pages, oldest first, go down one rung at a time towards Tiny until
   ``fixed_cost + cost <= budget`` (the oldest reaches Tiny before the next is touched);
2. if every unpinned page at Tiny still does not fit, unpinned pages are forgotten, oldest first, and
   their ids reported in ``Assignment.forgotten_for_budget``;
3. pinned pages are the last thing demoted: only when no unpinned page is left visible are they taken
   down to Tiny and then forgotten, oldest first;
4. a budget smaller than ``fixed_cost`` (the recent text alone) raises ConfigError naming both numbers.

The budget is never exceeded and a page never becomes sharper than the inner policy put it. Costs are
``PageState.costs``, the target provider's tokens, so the same budget buys different rungs per provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from optical_memory.errors import ConfigError
from optical_memory.policies.age import AgeLadder
from optical_memory.policies.base import RANK, Assignment, DecayPolicy, PageState, fit_to_budget


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """Fit a budget in the target provider's tokens on top of an inner policy.

    Attributes:
        inner: The policy whose rungs are the starting point (default: the default age ladder).
        budget: The standing budget, used when :meth:`assign` is not given one (None: no budget).
    """

    inner: DecayPolicy = field(default_factory=AgeLadder)
    budget: int | None = None

    def __post_init__(self) -> None:
        """Check the standing budget.

        Raises:
            ConfigError: If the budget is not a non-negative integer.
        """
        if self.budget is not None and (
            isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 0
        ):
            raise ConfigError(f"budget must be a non-negative number of tokens, got {self.budget!r}")

    def assign(
        self, pages: Sequence[PageState], *, budget: int | None = None, fixed_cost: int = 0
    ) -> Assignment:
        """The inner policy's rungs, fitted to ``budget`` (or the standing budget).

        Raises:
            ConfigError: If the budget is smaller than ``fixed_cost`` or a page lacks a cost.
        """
        chosen = self.inner.assign(pages, fixed_cost=fixed_cost)
        if len(chosen.rungs) != len(pages):
            raise ConfigError(f"the inner policy returned {len(chosen.rungs)} rungs for {len(pages)} pages")
        limit = self.budget if budget is None else budget
        ranks = [RANK[rung] for rung in chosen.rungs]
        return fit_to_budget(pages, ranks, budget=limit, fixed_cost=fixed_cost)

    def settings(self) -> dict[str, object]:
        """Flat constructor settings for ``get_policy("budget", **settings)`` (inner age ladder only).

        Raises:
            ConfigError: If the inner policy is not an :class:`AgeLadder`, which has no flat settings.
        """
        if not isinstance(self.inner, AgeLadder):
            raise ConfigError(f"cannot describe an inner policy of type {type(self.inner).__name__}")
        return {**self.inner.settings(), "budget": self.budget}
