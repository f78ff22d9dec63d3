"""The policy name table and settings round trips."""

from __future__ import annotations

import pytest

import optical_memory.policies as policies
from optical_memory.errors import ConfigError
from optical_memory.policies import POLICIES, AgeLadder, DecayPolicy, get_policy


def test_public_names() -> None:
    assert set(policies.__all__) == {
        "DEEPSEEK_COSTS", "DEFAULTS", "POLICIES", "AgeLadder", "Assignment", "DecayPolicy", "PageState",
        "fit_to_budget", "get_policy", "ladder_costs",
    }  # fmt: skip
    assert set(POLICIES) == {"age"}


def test_get_policy_builds_each_kind() -> None:
    assert get_policy("age") == AgeLadder()
    assert get_policy(" Age ", unit="turns", large=3) == AgeLadder(unit="turns", large=3)
    assert isinstance(get_policy("age"), DecayPolicy)


def test_settings_round_trip() -> None:
    policy = AgeLadder(unit="turns", base=20, forget_after=100)
    assert get_policy("age", **policy.settings()) == policy


def test_unknown_names_and_settings() -> None:
    with pytest.raises(ConfigError, match="unknown policy 'lru': use one of age"):
        get_policy("lru")
    with pytest.raises(ConfigError, match="bad settings for policy 'age'"):
        get_policy("age", tiny=3)
    with pytest.raises(ConfigError, match="unknown age unit"):
        get_policy("age", unit="weeks")
