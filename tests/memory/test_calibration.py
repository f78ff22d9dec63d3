"""Learning from reported usage: ``observe_usage`` with figures recorded from real provider bills.

Recorded figures used here (public measurements, see ``optical_memory.pricing.providers``):

- Claude on real traffic bills about 907 px^2 per image token (pxpipe ``docs/RENDER_SIZING.md``), where the
  28 px patch formula predicts 784: a ratio of about 0.864.
- A 1568 x 1568 frame billed 3,136 tokens on Claude and 2,881 on gpt-5.x at ``detail="original"``
  (snapcompact 18.2.11), where the formulas predict 3,136 and 2,882.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from optical_memory.errors import InputError
from optical_memory.memory import CALIBRATION_BOUNDS, OpticalMemory
from optical_memory.pricing.providers import get_provider

from .helpers import turns

CLAUDE = "anthropic:claude-sonnet-4-5"


def _memory(path: Path, provider: str = CLAUDE) -> OpticalMemory:
    m = OpticalMemory.open(path, config={"provider": provider, "recent_turns": 2})
    if len(m) == 0:
        for t in turns(40):
            m.add(t)
    return m


def test_the_formulas_match_recorded_bills() -> None:
    assert get_provider("anthropic:claude-opus-4-7").image_tokens(1568, 1568) == 3136
    assert abs(get_provider("openai:gpt-5.2").image_tokens(1568, 1568, "original") - 2881) <= 1


def test_a_recorded_ratio_is_learned_saved_and_applied(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with _memory(path) as m:
        ctx = m.context(budget=None)
        assert ctx.image_ratio == 1.0 and ctx.usage.image_tokens > 0
        billed = ctx.usage.text_tokens + round(ctx.usage.image_tokens * 784 / 907)
        ratio = m.observe_usage(ctx, billed)
        assert ratio == pytest.approx(784 / 907, abs=0.01)
        again = m.context(budget=None)
        assert again.image_ratio == pytest.approx(ratio)
        images = [i for i in again.items if hasattr(i, "image")]
        formula = sum(get_provider(CLAUDE).image_tokens(*i.image.size) for i in images)
        assert again.usage.image_tokens == sum(
            math.ceil(get_provider(CLAUDE).image_tokens(*i.image.size) * ratio - 1e-9) for i in images
        )
        assert again.usage.image_tokens < formula
        other = m.context(provider="openai:gpt-4o", budget=None)
        assert other.image_ratio == 1.0  # learned per model
    with OpticalMemory.open(path) as m:  # kept in the store
        assert m.context(budget=None).image_ratio == pytest.approx(ratio)


def test_reports_are_averaged_and_bounded(tmp_path: Path) -> None:
    with _memory(tmp_path / "m.db") as m:
        ctx = m.context(budget=None)
        assert (
            m.observe_usage(ctx, ctx.usage.text_tokens + 10 * ctx.usage.image_tokens) == CALIBRATION_BOUNDS[1]
        )
        ctx = m.context(budget=None)
        exact = ctx.usage.text_tokens + round(ctx.usage.image_tokens / ctx.image_ratio)
        second = m.observe_usage(ctx, exact)
        assert second == pytest.approx((2.0 + 1.0) / 2, abs=0.01)  # the mean of the two reports
        assert m._w.store.calibration(CLAUDE)[1] == 2


def test_nothing_to_learn_and_bad_reports(tmp_path: Path) -> None:
    with _memory(tmp_path / "m.db") as m:
        text_only = OpticalMemory()
        text_only.add("hi", role="user")
        assert m.observe_usage(text_only.context(), 10) is None
        with pytest.raises(InputError, match="positive"):
            m.observe_usage(m.context(), 0)
        with pytest.raises(InputError, match="positive"):
            m.observe_usage(m.context(), True)  # type: ignore[arg-type]
