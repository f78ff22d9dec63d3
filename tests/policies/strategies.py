"""Hypothesis strategies for page lists, shared by the policy property tests."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import accumulate

from hypothesis import strategies as st

from optical_memory.ladder import ORDER, Rung
from optical_memory.policies import PageState

VISIBLE = ORDER[:-1]


@st.composite
def cost_tables(draw: st.DrawFn) -> Mapping[Rung, int]:
    """A cost per visible rung: usually non-increasing down the ladder (equal steps allowed), sometimes not."""
    values = draw(st.lists(st.integers(0, 2000), min_size=4, max_size=4))
    if draw(st.booleans()):
        values.sort(reverse=True)
    return {**dict(zip(VISIBLE, values, strict=True)), Rung.FORGOTTEN: 0}


@st.composite
def page_lists(
    draw: st.DrawFn, *, max_pages: int = 25, pins: bool = True, forgotten: bool = True
) -> list[PageState]:
    """Pages oldest first, with ages that do not increase towards the newest and arbitrary stored rungs."""
    n = draw(st.integers(0, max_pages))
    shared = draw(st.booleans())
    table = draw(cost_tables())
    rungs = st.sampled_from(ORDER if forgotten else VISIBLE)
    page_gaps = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    turn_gaps = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    second_gaps = draw(st.lists(st.floats(0, 50_000), min_size=n, max_size=n))
    # ages accumulate from the newest page (last) backwards
    ages = [
        list(accumulate(reversed(gaps)))[::-1] if gaps else [] for gaps in (page_gaps, turn_gaps, second_gaps)
    ]
    pages = []
    for i in range(n):
        pinned = draw(st.none() | rungs) if pins and draw(st.integers(0, 4)) == 0 else None
        pages.append(
            PageState(
                page_id=100 + i,
                rung=draw(rungs),
                age_pages=int(ages[0][i]),
                age_turns=int(ages[1][i]),
                age_seconds=float(ages[2][i]),
                pinned=pinned,
                can_sharpen=draw(st.booleans()),
                costs=table if shared else draw(cost_tables()),
            )
        )
    return pages
