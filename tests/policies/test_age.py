"""Worked examples of the age ladder: defaults per unit, forgetting, pins, stored rungs, validation."""

from __future__ import annotations

import pytest

from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.policies import AgeLadder, PageState

L, B, S, T, F = Rung.LARGE, Rung.BASE, Rung.SMALL, Rung.TINY, Rung.FORGOTTEN


def _pages(n: int, **kw: object) -> list[PageState]:
    """``n`` pages stored at Large, oldest first, aged 0..n-1 in pages."""
    return [PageState(page_id=i, rung=L, age_pages=n - 1 - i, **kw) for i in range(n)]  # type: ignore[arg-type]


def test_default_ladder_by_pages() -> None:
    result = AgeLadder().assign(_pages(10))
    assert result.rungs == (T, T, S, S, S, S, B, B, L, L)
    assert result.cost == 2 * 73 + 4 * 111 + 2 * 273 + 2 * 421
    assert result.forgotten_for_budget == ()


def test_defaults_per_unit() -> None:
    assert AgeLadder().settings() == {
        "unit": "pages", "large": 2, "base": 4, "small": 8, "forget_after": None,
    }  # fmt: skip
    turns = AgeLadder(unit="turns")
    assert [turns.age_rank(a) for a in (0, 7, 8, 15, 16, 31, 32, 10_000)] == [0, 0, 1, 1, 2, 2, 3, 3]
    seconds = AgeLadder(unit="seconds")
    hour, day, week = 3600, 86400, 604800
    assert [seconds.age_rank(a) for a in (0, hour - 1, hour, day, week - 1, week)] == [0, 0, 1, 2, 2, 3]


def test_units_read_their_own_age() -> None:
    pages = [
        PageState(page_id=1, rung=L, age_pages=0, age_turns=20, age_seconds=10.0),
        PageState(page_id=2, rung=L, age_pages=0, age_turns=0, age_seconds=2 * 86400.0),
    ]
    assert AgeLadder(unit="pages").assign(pages).rungs == (L, L)
    assert AgeLadder(unit="turns").assign(pages).rungs == (S, L)
    # by seconds the second page is older; the first is held at least as blunt (monotone in order)
    assert AgeLadder(unit="seconds").assign(pages).rungs == (S, S)


def test_forget_after() -> None:
    result = AgeLadder(forget_after=9).assign(_pages(11))
    assert result.rungs == (F, F, T, S, S, S, S, B, B, L, L)
    assert result.forgotten_for_budget == ()


def test_equal_thresholds_skip_rungs() -> None:
    assert AgeLadder(large=0, base=0, small=3).assign(_pages(4)).rungs == (T, S, S, S)


def test_a_page_is_never_sharpened_by_age() -> None:
    pages = _pages(3)
    pages[2] = PageState(page_id=2, rung=S, age_pages=0)
    # the newest page is stored at Small: it stays Small, and older pages are held at least as blunt
    assert AgeLadder().assign(pages).rungs == (S, S, S)


def test_pins_hold_a_page_at_its_rung() -> None:
    pages = _pages(10)
    pages[0] = PageState(page_id=0, rung=L, age_pages=9, pinned=L)  # old, pinned sharp
    pages[9] = PageState(page_id=9, rung=L, age_pages=0, pinned=T)  # newest, pinned blunt
    assert AgeLadder().assign(pages).rungs == (L, T, S, S, S, S, B, B, L, T)


def test_a_sharper_pin_needs_the_text() -> None:
    lost = PageState(page_id=0, rung=T, age_pages=9, pinned=L, can_sharpen=False)
    kept = PageState(page_id=1, rung=T, age_pages=9, pinned=L, can_sharpen=True)
    forgotten = PageState(page_id=2, rung=F, age_pages=9, pinned=B, can_sharpen=True)
    assert AgeLadder().assign([lost, kept, forgotten]).rungs == (T, L, B)


def test_an_unpinned_page_drops_to_its_newer_neighbours() -> None:
    # page 0 was pinned Large and is now unpinned; newer pages already sit at Tiny
    pages = [
        PageState(page_id=0, rung=L, age_pages=12),
        PageState(page_id=1, rung=T, age_pages=11),
        PageState(page_id=2, rung=F, age_pages=10),  # forgotten by hand: does not drag others down
        PageState(page_id=3, rung=L, age_pages=0),
    ]
    assert AgeLadder().assign(pages).rungs == (T, T, F, L)


def test_empty() -> None:
    result = AgeLadder().assign([])
    assert (result.rungs, result.cost) == ((), 0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"unit": "days"}, "unknown age unit 'days'"),
        ({"large": -1}, "large must be a non-negative number"),
        ({"base": float("nan")}, "base must be a non-negative number"),
        ({"small": "8"}, "small must be a non-negative number"),
        ({"large": 5, "base": 3}, "base=3 is below large=5"),
        ({"forget_after": 4}, "forget_after=4 is below small=8"),
    ],
)
def test_bad_thresholds(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AgeLadder(**kw)  # type: ignore[arg-type]


def test_missing_cost_is_a_config_error() -> None:
    page = PageState(page_id=7, rung=L, age_pages=0, costs={T: 1})
    with pytest.raises(ConfigError, match="page 7 has no cost for rung 'large'"):
        AgeLadder().assign([page])
