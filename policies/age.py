"""The age ladder: newer pages sharp, older pages further down the ladder, optionally forgotten.

Age is counted in one unit: ``pages`` (sealed pages newer than this one), ``turns`` (turns added after the
page's last turn) or ``seconds`` (wall-clock time since the page was sealed). Each threshold is the age at
which a page *leaves* a rung:

=========  =====  =====  ======  ============  =================================================
unit       large  base   small   forget_after  so, by default
=========  =====  =====  ======  ============  =================================================
pages      2      4      8       None          newest 2 pages Large, next 2 Base, next 4 Small,
                                               then Tiny, never forgotten
turns      8      16     32      None          Large for 8 turns, Base until 16, Small until 32
seconds    3600   86400  604800  None          Large for an hour, Base for a day, Small for a week
=========  =====  =====  ======  ============  =================================================

A page of age ``a`` sits on Large when ``a < large``, Base when ``a < base``, Small when ``a < small``,
Tiny when ``forget_after`` is None or ``a < forget_after``, and is forgotten otherwise. Thresholds must not
decrease; two equal thresholds skip a rung (``large=0`` starts pages at Base).

On top of the ages:

- a page never becomes sharper by itself: the result is the blunter of the age rung and the stored rung;
- older pages are never sharper than newer ones: an unpinned page is held at least as blunt as every
  newer unpinned page (pages already forgotten when given do not count), so a page that was pinned sharp
  and then unpinned drops to its neighbours' rung;
- a pinned page sits at its pin regardless of age (see :func:`~optical_memory.policies.base.pinned_rank`);
- a ``budget`` given to :meth:`AgeLadder.assign` is honoured with the shared rule of
  :func:`~optical_memory.policies.base.fit_to_budget`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from optical_memory.errors import ConfigError
from optical_memory.policies.base import (
    FORGOTTEN,
    RANK,
    Assignment,
    PageState,
    fit_to_budget,
    pinned_rank,
)

AgeUnit = Literal["pages", "turns", "seconds"]

DEFAULTS: dict[str, tuple[float, float, float]] = {
    "pages": (2, 4, 8),
    "turns": (8, 16, 32),
    "seconds": (3600.0, 86400.0, 604800.0),
}
"""Default (large, base, small) thresholds per unit; ``forget_after`` defaults to None (never)."""


@dataclass(frozen=True, slots=True)
class AgeLadder:
    """Rungs by age: see the module docstring for the rule and the defaults.

    Attributes:
        unit: ``pages``, ``turns`` or ``seconds``.
        large: Age at which a page leaves Large (None: the unit's default).
        base: Age at which a page leaves Base (None: the unit's default).
        small: Age at which a page leaves Small (None: the unit's default).
        forget_after: Age at which a page leaves Tiny and is forgotten (None: never).
    """

    unit: AgeUnit = "pages"
    large: float | None = None
    base: float | None = None
    small: float | None = None
    forget_after: float | None = None
    _thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fill the unit's defaults and check the thresholds.

        Raises:
            ConfigError: For an unknown unit, a negative threshold, or thresholds that decrease.
        """
        if self.unit not in DEFAULTS:
            raise ConfigError(f"unknown age unit {self.unit!r}: use one of {', '.join(DEFAULTS)}")
        given = (self.large, self.base, self.small)
        filled = tuple(d if v is None else v for v, d in zip(given, DEFAULTS[self.unit], strict=True))
        for name, value in zip(("large", "base", "small"), filled, strict=True):
            object.__setattr__(self, name, value)
        thresholds = (*filled, math.inf if self.forget_after is None else self.forget_after)
        names = ("large", "base", "small", "forget_after")
        for name, value in zip(names, thresholds, strict=True):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)
                or value < 0
            ):
                raise ConfigError(f"age threshold {name} must be a non-negative number, got {value!r}")
        for i in range(len(names) - 1):
            if thresholds[i + 1] < thresholds[i]:
                raise ConfigError(
                    f"age thresholds must not decrease: {names[i + 1]}={thresholds[i + 1]} is below "
                    f"{names[i]}={thresholds[i]} ({self.unit})"
                )
        object.__setattr__(self, "_thresholds", thresholds)

    def age_rank(self, age: float) -> int:
        """The ladder index (0 = Large, 4 = forgotten) for a page of this age, ignoring pins and stored rung."""
        return bisect.bisect_right(self._thresholds, age)

    def assign(
        self, pages: Sequence[PageState], *, budget: int | None = None, fixed_cost: int = 0
    ) -> Assignment:
        """One rung per page by age, then fitted to ``budget`` when one is given.

        Raises:
            ConfigError: If the budget is smaller than ``fixed_cost`` or a page lacks a cost.
        """
        ranks = self.ranks(pages)
        return fit_to_budget(pages, ranks, budget=budget, fixed_cost=fixed_cost)

    def ranks(self, pages: Sequence[PageState]) -> list[int]:
        """The ladder index of each page by age, pins, stored rung and monotonicity; linear time."""
        age_of = _AGE_FIELD[self.unit]
        ranks = [
            pinned_rank(page)
            if page.pinned is not None
            else max(RANK[page.rung], self.age_rank(age_of(page)))
            for page in pages
        ]
        floor = 0
        for i in range(len(pages) - 1, -1, -1):  # newest to oldest
            page = pages[i]
            if page.pinned is not None or RANK[page.rung] == FORGOTTEN:
                continue
            if ranks[i] < floor:
                ranks[i] = floor
            else:
                floor = ranks[i]
        return ranks

    def settings(self) -> dict[str, object]:
        """The constructor arguments, for saving a configuration and rebuilding it with ``get_policy``."""
        return {
            "unit": self.unit,
            "large": self.large,
            "base": self.base,
            "small": self.small,
            "forget_after": self.forget_after,
        }


def _age_pages(page: PageState) -> float:
    return page.age_pages


def _age_turns(page: PageState) -> float:
    return page.age_turns


def _age_seconds(page: PageState) -> float:
    return page.age_seconds


_AGE_FIELD = {"pages": _age_pages, "turns": _age_turns, "seconds": _age_seconds}
