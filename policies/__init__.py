"""Decay policies: which rung each page sits on (age ladder, token budget, pins).

A policy sees :class:`PageState` metadata (never pixels), oldest page first, and returns an
:class:`Assignment` with one rung per page. One policy ships, by name in :data:`POLICIES`:

- ``"age"``: :class:`AgeLadder`, rungs by age in pages, turns or seconds (defaults: newest 2 pages Large,
  next 2 Base, next 4 Small, then Tiny, never forgotten).

Every policy honours a ``budget`` passed to ``assign`` with the same rule (see :mod:`.base`): pins are
the last thing demoted, a page never becomes sharper by itself, order is preserved, the budget is never
exceeded, and a budget below the recent text alone is a :class:`~optical_memory.errors.ConfigError`. The
budget itself is the memory's one setting (``MemoryConfig.budget``), not the policy's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from optical_memory.errors import ConfigError
from optical_memory.policies.age import DEFAULTS, AgeLadder
from optical_memory.policies.base import (
    DEEPSEEK_COSTS,
    Assignment,
    DecayPolicy,
    PageState,
    fit_to_budget,
    ladder_costs,
)

__all__ = [
    "DEEPSEEK_COSTS",
    "DEFAULTS",
    "POLICIES",
    "AgeLadder",
    "Assignment",
    "DecayPolicy",
    "PageState",
    "fit_to_budget",
    "get_policy",
    "ladder_costs",
]


POLICIES: Mapping[str, Callable[..., DecayPolicy]] = MappingProxyType({"age": AgeLadder})
"""Policy names and their factories."""


def get_policy(name: str, **settings: Any) -> DecayPolicy:
    """Build a policy by name, e.g. ``get_policy("age", unit="turns", forget_after=400)``.

    Raises:
        ConfigError: For an unknown name, an unknown setting, or an invalid value.
    """
    key = str(name).strip().lower()
    if key not in POLICIES:
        raise ConfigError(f"unknown policy {name!r}: use one of {', '.join(POLICIES)}")
    try:
        return POLICIES[key](**settings)
    except TypeError as exc:
        raise ConfigError(f"bad settings for policy {key!r}: {exc}") from None
