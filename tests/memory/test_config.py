"""MemoryConfig: strict validation at the boundary, JSON round trips, compatibility on reopen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optical_memory.config import MemoryConfig, as_config
from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung


def test_defaults():
    c = MemoryConfig()
    assert (c.recent_turns, c.recent_tokens, c.page_size, c.keep_text) == (8, None, 1280, False)
    assert (c.policy, c.provider, c.budget, c.encoder) == ("age", "deepseek-ocr", None, None)
    assert c.top_rung is Rung.LARGE
    assert all(f.description for f in MemoryConfig.model_fields.values())


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"recent_turn": 3}, "recent_turn: Extra inputs are not permitted"),
        ({"page_size": 1000}, "page_size must be one of the ladder sizes"),
        ({"policy": "lru"}, "unknown policy 'lru'"),
        ({"policy_options": {"unit": "weeks"}}, "unknown age unit"),
        ({"policy_options": {"colour": "red"}}, "unexpected keyword argument .colour."),
        ({"provider": "nope"}, "unknown provider"),
        ({"provider": "openai"}, "name the model too"),
        ({"recent_turns": -1}, "recent_turns"),
        ({"budget": 0}, "budget"),
        ({"recent_turns": None, "recent_tokens": None}, "set recent_turns or recent_tokens"),
    ],
)
def test_bad_settings_are_config_errors(settings, match):
    with pytest.raises(ConfigError, match=match):
        as_config(settings)


def test_provider_is_canonicalised_and_json_round_trips():
    c = as_config({"provider": "Claude:claude-sonnet-4-5", "keep_text": True, "policy_options": {"large": 1}})
    assert c.provider == "anthropic:claude-sonnet-4-5"
    assert as_config(c.to_json()) == c
    with pytest.raises(ConfigError, match="must be a MemoryConfig"):
        as_config(42)  # type: ignore[arg-type]


@given(
    recent_turns=st.none() | st.integers(0, 1000),
    recent_tokens=st.integers(0, 10**6),
    page_size=st.sampled_from([512, 640, 1024, 1280]),
    keep_text=st.booleans(),
    budget=st.none() | st.integers(1, 10**7),
    large=st.integers(0, 5),
)
def test_json_round_trip_is_identity(recent_turns, recent_tokens, page_size, keep_text, budget, large):
    c = MemoryConfig(
        recent_turns=recent_turns,
        recent_tokens=recent_tokens,
        page_size=page_size,
        keep_text=keep_text,
        budget=budget,
        policy_options={"large": large, "base": large + 1},
    )
    assert as_config(c.to_json()) == c
    assert as_config(c.model_dump()) == c


def test_compatibility():
    stored = MemoryConfig()
    MemoryConfig(recent_turns=2, keep_text=True).check_compatible(stored)
    with pytest.raises(ConfigError, match="page_size 640"):
        MemoryConfig(page_size=640).check_compatible(stored)
