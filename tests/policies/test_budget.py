"""Worked examples of the budget rule every policy applies, including the provider-aware case."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.policies import AgeLadder, PageState, get_policy, ladder_costs
from optical_memory.pricing.providers import get_provider

L, B, S, T, F = Rung.LARGE, Rung.BASE, Rung.SMALL, Rung.TINY, Rung.FORGOTTEN


def _costs(provider: str) -> Mapping[Rung, int]:
    return ladder_costs(get_provider(provider).image_tokens)


def _pages(n: int, costs: Mapping[Rung, int], **pins: Rung) -> list[PageState]:
    """``n`` pages stored at Large, oldest first, aged n-1..0 in pages; ``p3=Rung.LARGE`` pins page 3."""
    return [
        PageState(page_id=i, rung=L, age_pages=n - 1 - i, pinned=pins.get(f"p{i}"), costs=costs)
        for i in range(n)
    ]


def test_provider_costs_per_rung() -> None:
    assert dict(_costs("deepseek-ocr")) == {L: 421, B: 273, S: 111, T: 73, F: 0}
    assert dict(_costs("openai:gpt-4o")) == {L: 765, B: 765, S: 765, T: 255, F: 0}
    assert dict(_costs("anthropic:claude-sonnet-4-5")) == {L: 1521, B: 1369, S: 529, T: 361, F: 0}


def test_the_same_budget_buys_different_rungs_per_provider() -> None:
    """Six pages (age ladder: S S B B L L), 500 tokens of recent text, a budget of 3,000.

    - DeepSeek-OCR: 2*111 + 2*273 + 2*421 = 1,610 fits in 2,500: nothing moves.
    - gpt-4o: 6*765 = 4,590, 2,090 over. Large, Base and Small all cost 765, so only Tiny (255) saves:
      the four oldest pages go to Tiny (-2,040, still 50 over), then the fifth (-510): 2,040.
    - Claude: 6,838, 4,338 over. The four oldest to Tiny (-2,352), the fifth all the way (-1,160), then the
      newest one rung to Base (-152, 674 over) and one more to Small (-840): 5*361 + 529 = 2,334.
    """
    policy = get_policy("age")
    expected = {
        "deepseek-ocr": ((S, S, B, B, L, L), 1610),
        "openai:gpt-4o": ((T, T, T, T, T, L), 2040),
        "anthropic:claude-sonnet-4-5": ((T, T, T, T, T, S), 2334),
    }
    for provider, (rungs, cost) in expected.items():
        result = policy.assign(_pages(6, _costs(provider)), budget=3000, fixed_cost=500)
        assert (result.rungs, result.cost, result.forgotten_for_budget) == (rungs, cost, ()), provider


def test_forgets_the_oldest_when_every_page_at_tiny_does_not_fit() -> None:
    """Claude, budget 2,000 for images: six Tiny pages cost 2,166, so the oldest page is forgotten."""
    result = AgeLadder().assign(_pages(6, _costs("anthropic:claude")), budget=2500, fixed_cost=500)
    assert result.rungs == (F, T, T, T, T, T)
    assert result.forgotten_for_budget == (0,)
    assert result.cost == 5 * 361


def test_pins_are_the_last_thing_demoted() -> None:
    costs = _costs("deepseek-ocr")
    pages = _pages(6, costs, p0=L)
    # 421 (pinned) + 5 * 73 = 786: the other pages go to Tiny, the pin holds
    assert AgeLadder().assign(pages, budget=786).rungs == (L, T, T, T, T, T)
    # one token less: unpinned pages are forgotten, oldest first, before the pin moves
    assert AgeLadder().assign(pages, budget=785).rungs == (L, F, T, T, T, T)
    assert AgeLadder().assign(pages, budget=421).rungs == (L, F, F, F, F, F)
    # nothing unpinned is left: now the pin goes down, one rung at a time, and finally is forgotten
    result = AgeLadder().assign(pages, budget=420)
    assert (result.rungs, result.cost) == ((B, F, F, F, F, F), 273)
    assert result.forgotten_for_budget == (1, 2, 3, 4, 5)
    result = AgeLadder().assign(pages, budget=72)
    assert (result.rungs, result.forgotten_for_budget) == ((F,) * 6, (1, 2, 3, 4, 5, 0))


def test_a_budget_exactly_the_recent_text_forgets_every_page() -> None:
    result = AgeLadder().assign(_pages(3, _costs("deepseek-ocr")), budget=900, fixed_cost=900)
    assert (result.rungs, result.cost) == ((F, F, F), 0)


def test_budget_smaller_than_the_recent_text() -> None:
    with pytest.raises(
        ConfigError, match=r"budget of 999 tokens is smaller than the recent text alone \(1000"
    ):
        AgeLadder().assign(_pages(2, _costs("deepseek-ocr")), budget=999, fixed_cost=1000)
    with pytest.raises(ConfigError, match="fixed_cost must not be negative"):
        AgeLadder().assign([], budget=10, fixed_cost=-1)


def test_no_budget_keeps_the_policy_choice() -> None:
    pages = _pages(6, _costs("deepseek-ocr"))
    assert AgeLadder().assign(pages).rungs == (S, S, B, B, L, L)
    assert AgeLadder().assign(pages, budget=6 * 73).rungs == (T,) * 6
    # by turns every page has age 0 (Large); a budget takes the three oldest to Tiny
    assert AgeLadder(unit="turns").assign(_pages(4, _costs("deepseek-ocr")), budget=421 + 3 * 73).rungs == (
        T, T, T, L,
    )  # fmt: skip


def test_a_reachable_budget_always_fits_even_when_the_policy_estimate_misses() -> None:
    """Found with the Agents SDK adapter: tool-result pages at tiny, 8 tokens over, and the policy's own
    estimate kept every page; the context now leaves the oldest out instead of failing."""
    import json

    from optical_memory.memory import OpticalMemory

    # pages without verbatim spans: the costs of the case as it was found
    memory = OpticalMemory(
        {"provider": "openai:gpt-4o", "recent_turns": 6, "budget": 6000, "exact_kinds": []}
    )
    memory.add("Read every module.", role="user")
    for i in range(22):
        path = f"src/mod{i}.py"
        arguments = json.dumps({"path": path}, separators=(",", ":"))
        memory.add(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": f"r{i}", "function": {"name": "read_file", "arguments": arguments}}],
            }
        )
        lines = (f"{path}:{n}: value_{n} = compute({n}, {len(path) * n}) # step {n}" for n in range(40))
        memory.add({"role": "tool", "tool_call_id": f"r{i}", "content": "\n".join(lines)})
    usage = memory.context(format="openai-responses").usage
    assert usage.context_tokens <= 6000
    assert usage.forgotten_for_budget and min(usage.forgotten_for_budget) == 0
