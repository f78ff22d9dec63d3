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
    assert (c.recent_turns, c.recent_tokens, c.profile, c.keep_text) == (8, None, None, False)
    assert (c.policy, c.provider, c.budget, c.encoder) == ("age", "deepseek-ocr", "window", None)
    assert c.top_rung is Rung.LARGE
    assert c.render_profile().name == "deepseek-ocr"
    assert MemoryConfig(provider="anthropic:claude-sonnet-4-5").render_profile().name == "anthropic"
    assert MemoryConfig(provider="openai:gpt-4o").render_profile().name == "openai-tile"
    assert all(f.description for f in MemoryConfig.model_fields.values())


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"recent_turn": 3}, "recent_turn: Extra inputs are not permitted"),
        ({"page_size": 1000}, "page_size must be one of the ladder sizes"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
        ({"profile": {"body_px": 300}}, "invalid profile override"),
        ({"profile": {"colour": 1}}, "unknown profile fields"),
        ({"budget": "half"}, "budget"),
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
    profile=st.none()
    | st.sampled_from(["anthropic", "gemini-2"])
    | st.builds(dict, body_px=st.integers(12, 24)),
    keep_text=st.booleans(),
    budget=st.none() | st.just("window") | st.integers(1, 10**7),
    large=st.integers(0, 5),
)
def test_json_round_trip_is_identity(recent_turns, recent_tokens, profile, keep_text, budget, large):
    c = MemoryConfig(
        recent_turns=recent_turns,
        recent_tokens=recent_tokens,
        profile=profile,
        keep_text=keep_text,
        budget=budget,
        policy_options={"large": large, "base": large + 1},
    )
    assert as_config(c.to_json()) == c
    assert as_config(c.model_dump()) == c


def test_compatibility():
    stored = MemoryConfig()
    MemoryConfig(recent_turns=2, keep_text=True).check_compatible(stored)
    MemoryConfig(profile="deepseek-ocr", provider="openai:gpt-4o").check_compatible(stored)
    with pytest.raises(ConfigError, match=r"profile 'anthropic'.*laid out with 'deepseek-ocr'"):
        MemoryConfig(provider="anthropic:claude-sonnet-4-5").check_compatible(stored)
    with pytest.raises(ConfigError, match="profile"):
        MemoryConfig(profile={"body_px": 20}).check_compatible(stored)


def test_configs_saved_by_version_0_1_are_translated():
    old = as_config('{"page_size": 640, "policy": "budget", "policy_options": {"budget": 900, "large": 1}, '
                    '"provider": "openai:gpt-4o"}')  # fmt: skip
    assert (old.policy, old.policy_options, old.budget) == ("age", {"large": 1}, 900)
    profile = old.render_profile()
    assert profile.name == "deepseek-ocr" and profile.top is Rung.SMALL
    assert [(r, s.width) for r, s in profile.rungs] == [(Rung.SMALL, 640), (Rung.TINY, 512)]
    assert (profile.body_px, profile.margin_px) == (11, 16)
    assert as_config('{"page_size": 1280}').budget is None  # 0.1 had no bound by default
