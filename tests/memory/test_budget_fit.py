"""A budgeted context fits only the pages its budget can hold, and decides exactly as a fit over every page."""

from __future__ import annotations

import pytest

from optical_memory import assembly
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider

from .helpers import turns


@pytest.fixture(scope="module")
def long_memory() -> OpticalMemory:
    m = OpticalMemory({"recent_turns": 2, "keep_text": True})
    m.add("You are a careful assistant.", role="system")
    m.extend(turns(90))
    m.forget(5)  # a page forgotten in the store, among the pages a budget may show
    return m


def _decided(m: OpticalMemory, provider: str, budget: int) -> tuple:
    ctx = m.context(provider=provider, budget=budget)
    shown = [(i.page_id, i.rung) for i in ctx.items if hasattr(i, "rung")]
    used = ctx.usage
    left_out = used.forgotten_for_budget
    # what the context carries: the history less every sealed page not shown, counted page by page here
    cost = m._w.cost_model(get_provider(provider))
    dropped = [p for p in m._w.pages if p.rung is Rung.FORGOTTEN or p.page_id in set(left_out)]
    carried = used.history_text_tokens - sum(cost.page_history(p.text_cost, p.text_tokens) for p in dropped)
    assert used.carried_text_tokens == max(carried, 0)
    return shown, left_out, used.context_tokens, used.carried_text_tokens, dict(used.pages_per_rung)


@pytest.mark.parametrize("provider", ["openai:gpt-4o", "anthropic:claude-sonnet-4-5", "deepseek-ocr"])
def test_the_fit_over_the_pages_a_budget_holds_decides_as_the_fit_over_every_page(
    long_memory: OpticalMemory, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = long_memory
    n_pages = len([p for p in m.pages() if p.sealed])
    assert n_pages >= 12
    m.pin(3, "base")  # an old pinned page is kept in the fit, whatever its age
    try:
        everything = m.context(provider=provider, budget=None).usage.context_tokens
        budgets = sorted({*(everything * k // 10 for k in range(1, 11)), everything + 1})
        trimmed = {}
        for budget in budgets:
            try:
                trimmed[budget] = _decided(m, provider, budget)
            except Exception as exc:  # a budget below the recent text: both ways refuse it
                trimmed[budget] = type(exc)
        with monkeypatch.context() as patch:
            patch.setattr(assembly, "first_fitting", lambda records, states, room: 0)
            for budget in budgets:
                try:
                    full = _decided(m, provider, budget)
                except Exception as exc:
                    full = type(exc)
                assert trimmed[budget] == full, budget
        small = [b for b in budgets if isinstance(trimmed[b], tuple) and trimmed[b][1]]
        assert small, "some budget must leave pages out"
        for budget in small:  # the pinned page is the last one left out
            left_out = set(trimmed[budget][1])
            assert 3 not in left_out or left_out == set(range(n_pages))
    finally:
        m.unpin(3)
