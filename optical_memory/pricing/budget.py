"""The budget check: how many tokens a context may cost, and whether that covers what always stays.

A budget is one setting (:data:`optical_memory.config.Budget`): a number of tokens, ``"window"``
(:data:`WINDOW_SHARE` of the target model's context window, from the provider table) or None (no bound).
Whatever the policy demotes or leaves out, the system prompt, the recent turns and the open page always
stay, so a budget below their cost is refused (:func:`check_floor`) rather than silently exceeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optical_memory.errors import ConfigError

if TYPE_CHECKING:
    from optical_memory.config import Budget
    from optical_memory.pricing.providers import Provider

WINDOW_SHARE = 0.5
"""The share of the target model's context window a context fits by default (``budget="window"``)."""


def resolve_budget(budget: Budget, provider: Provider) -> int | None:
    """Tokens a context may cost: ``budget`` itself, the window share for ``"window"``, or None.

    Args:
        budget: The setting: a positive number of tokens, ``"window"`` or None.
        provider: The target, whose context window ``"window"`` takes a share of.

    Raises:
        ConfigError: For anything else.
    """
    if budget is None:
        return None
    if budget == "window":
        return int(provider.context_window * WINDOW_SHARE)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget must be a positive number of tokens, 'window' or None; got {budget!r}")
    return budget


def check_floor(budget: int, text: int, open_cost: int) -> None:
    """Check that ``budget`` covers what always stays: the text sent as text and the open page.

    Args:
        budget: Most tokens the context may cost.
        text: What the system prompt and the recent turns cost.
        open_cost: What the open page costs (0 when there is none).

    Raises:
        ConfigError: If the budget is below ``text + open_cost``.
    """
    if budget < text + open_cost:
        open_page = f" and the open page ({open_cost} tokens)" if open_cost else ""
        raise ConfigError(
            f"the budget of {budget} tokens is smaller than the recent text alone ({text} tokens)"
            f"{open_page}, which always stay: raise the budget or keep fewer recent turns as text"
        )
