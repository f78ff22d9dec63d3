"""Property tests: the rules every policy keeps, on random page lists, costs, pins and budgets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.errors import ConfigError
from optical_memory.ladder import ORDER, Rung, rank
from optical_memory.policies import AgeLadder, Assignment, PageState, get_policy
from optical_memory.policies.base import pinned_rank

from .strategies import page_lists

POLICY_SETTINGS = st.sampled_from(
    [
        {},
        {"unit": "turns"},
        {"unit": "seconds"},
        {"large": 0, "base": 1, "small": 1, "forget_after": 3},
        {"unit": "turns", "large": 1, "forget_after": 40},
    ]
)


def _total(pages: list[PageState], result: Assignment) -> int:
    return sum(page.cost(rung) for page, rung in zip(pages, result.rungs, strict=True))


def _held(page: PageState) -> Rung:
    assert page.pinned is not None
    return page.rung if rank(page.pinned) < rank(page.rung) and not page.can_sharpen else page.pinned


@st.composite
def budget_cases(draw: st.DrawFn, **page_kw: bool) -> tuple[list[PageState], AgeLadder, int, int]:
    pages = draw(page_lists(**page_kw))
    ladder = AgeLadder(**draw(POLICY_SETTINGS))
    fixed = draw(st.integers(0, 3000))
    unlimited = ladder.assign(pages)
    budget = fixed + draw(st.integers(0, max(0, unlimited.cost + 500)))
    return pages, ladder, fixed, budget


@given(budget_cases())
def test_never_exceeds_the_budget_and_reports_its_cost(
    case: tuple[list[PageState], AgeLadder, int, int],
) -> None:
    pages, ladder, fixed, budget = case
    for policy in (ladder,):
        result = policy.assign(pages, budget=budget, fixed_cost=fixed)
        assert len(result.rungs) == len(pages)
        assert result.cost == _total(pages, result)
        assert fixed + result.cost <= budget


@given(budget_cases())
def test_never_sharpens_a_page_by_itself(case: tuple[list[PageState], AgeLadder, int, int]) -> None:
    pages, ladder, fixed, budget = case
    for result in (ladder.assign(pages), ladder.assign(pages, budget=budget, fixed_cost=fixed)):
        for page, rung in zip(pages, result.rungs, strict=True):
            floor = page.pinned if page.pinned is not None and page.can_sharpen else page.rung
            assert rank(rung) >= rank(floor), (page, rung)


@given(page_lists(), POLICY_SETTINGS)
def test_pins_win_over_age(pages: list[PageState], kw: dict[str, float]) -> None:
    result = AgeLadder(**kw).assign(pages)
    for page, rung in zip(pages, result.rungs, strict=True):
        if page.pinned is not None:
            assert rung is _held(page)
    assert result.forgotten_for_budget == ()


@given(budget_cases())
def test_pins_are_demoted_last_under_a_budget(case: tuple[list[PageState], AgeLadder, int, int]) -> None:
    pages, ladder, fixed, budget = case
    result = ladder.assign(pages, budget=budget, fixed_cost=fixed)
    pinned_moved = any(
        page.pinned is not None and rung is not _held(page)
        for page, rung in zip(pages, result.rungs, strict=True)
    )
    if pinned_moved:
        assert all(
            rung is Rung.FORGOTTEN
            for page, rung in zip(pages, result.rungs, strict=True)
            if page.pinned is None
        )


@given(budget_cases())
def test_older_unpinned_pages_are_never_sharper_than_newer_ones(
    case: tuple[list[PageState], AgeLadder, int, int],
) -> None:
    pages, ladder, fixed, budget = case
    for result in (ladder.assign(pages), ladder.assign(pages, budget=budget, fixed_cost=fixed)):
        bluntest_newer = 0
        for page, rung in reversed(list(zip(pages, result.rungs, strict=True))):
            if page.pinned is not None or page.rung is Rung.FORGOTTEN:
                continue
            assert rank(rung) >= bluntest_newer
            bluntest_newer = rank(rung)


@given(budget_cases())
def test_a_budget_only_demotes_and_reports_what_it_forgot(
    case: tuple[list[PageState], AgeLadder, int, int],
) -> None:
    pages, ladder, fixed, budget = case
    free = ladder.assign(pages)
    tight = ladder.assign(pages, budget=budget, fixed_cost=fixed)
    for a, b in zip(free.rungs, tight.rungs, strict=True):
        assert rank(b) >= rank(a)
    forgotten = [
        page.page_id
        for page, a, b in zip(pages, free.rungs, tight.rungs, strict=True)
        if a is not Rung.FORGOTTEN and b is Rung.FORGOTTEN
    ]
    assert sorted(tight.forgotten_for_budget) == forgotten
    if fixed + free.cost <= budget:
        assert tight == free


@settings(max_examples=200)
@given(budget_cases(pins=False))
def test_demotes_no_more_than_needed(case: tuple[list[PageState], AgeLadder, int, int]) -> None:
    """Undoing the budget's last step (the newest page it touched, one step back) no longer fits."""
    pages, ladder, fixed, budget = case
    free = ladder.assign(pages)
    tight = ladder.assign(pages, budget=budget, fixed_cost=fixed)
    changed = [i for i, (a, b) in enumerate(zip(free.rungs, tight.rungs, strict=True)) if a is not b]
    if not changed:
        return
    if tight.forgotten_for_budget:
        last = max(i for i in changed if tight.rungs[i] is Rung.FORGOTTEN)
        undone = Rung.TINY
    else:
        last = max(changed)
        undone = ORDER[rank(tight.rungs[last]) - 1]
    restored = fixed + tight.cost - pages[last].cost(tight.rungs[last]) + pages[last].cost(undone)
    assert restored > budget


@given(page_lists(), st.integers(1, 10_000), st.integers(0, 10_000))
def test_a_budget_below_the_recent_text_is_a_config_error(
    pages: list[PageState], fixed: int, slack: int
) -> None:
    budget = max(0, fixed - 1 - slack)
    with pytest.raises(ConfigError, match=rf"budget of {budget} tokens.*\({fixed} tokens\)"):
        get_policy("age").assign(pages, budget=budget, fixed_cost=fixed)


@given(page_lists(), POLICY_SETTINGS)
def test_pinned_rank_matches_the_documented_rule(pages: list[PageState], kw: dict[str, float]) -> None:
    for page in pages:
        if page.pinned is not None:
            assert ORDER[pinned_rank(page)] is _held(page)
