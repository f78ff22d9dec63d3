"""Render profiles: every rung cheaper than the one above on its provider, data that can be overridden."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.pricing.profiles import PROFILES, RungShape, load_profile, profile_for
from optical_memory.pricing.providers import MODELS, get_provider


def test_every_formula_has_its_profile() -> None:
    assert {row.formula for row in MODELS} == set(PROFILES)
    for formula, profile in PROFILES.items():
        assert profile_for(formula) is profile and len(profile.dated) == 10 and profile.source


MODELS_PER_FORMULA = {
    "deepseek-ocr": ["deepseek-ocr"],
    "openai-tile": ["openai:gpt-4o", "openai:gpt-4.1", "openai:o3", "openai:gpt-5", "openai:gpt-4o-mini"],
    "openai-patch": [
        "openai:gpt-4.1-mini", "openai:gpt-4.1-nano", "openai:o4-mini", "openai:gpt-5-mini", "openai:gpt-5.2",
        "openai:gpt-5.4-nano",
    ],
    "anthropic": ["anthropic:claude-sonnet-4-5", "anthropic:claude-opus-4-7", "anthropic:claude-haiku-4-5"],
    "anthropic-legacy": ["anthropic:claude-3-5-sonnet"],
    "gemini-2": ["gemini:gemini-2.0-flash", "gemini:gemini-2.5-pro", "gemini:gemini-1.5-pro"],
    "gemini-3": ["gemini:gemini-3-pro", "gemini:gemini-3-flash"],
    "qwen-28": ["qwen2.5-vl"],
    "qwen-32": ["qwen3-vl"],
}  # fmt: skip


@pytest.mark.parametrize("formula", sorted(MODELS_PER_FORMULA))
def test_each_rung_costs_strictly_less_than_the_one_above(formula: str) -> None:
    profile = PROFILES[formula]
    for name in MODELS_PER_FORMULA[formula]:
        provider = get_provider(name)
        assert provider.formula == formula and profile_for(provider.formula) is profile
        costs = [provider.image_tokens(s.width, s.height, s.detail) for _, s in profile.rungs]
        assert all(a > b for a, b in itertools.pairwise(costs)), (name, costs)


def test_rungs_sit_on_billing_steps() -> None:
    for name, patch in (("anthropic", 28), ("qwen-28", 28), ("openai-patch", 32), ("qwen-32", 32)):
        assert all(s.width % patch == 0 and s.height % patch == 0 for _, s in PROFILES[name].rungs), name
    gpt4o = get_provider("openai:gpt-4o")
    tile = PROFILES["openai-tile"]
    assert [gpt4o.image_tokens(s.width, s.height, s.detail) for _, s in tile.rungs] == [765, 425, 255, 85]
    assert [s.width for _, s in PROFILES["deepseek-ocr"].rungs] == [1280, 1024, 640, 512]
    assert PROFILES["gemini-2"].last is Rung.LARGE  # one billing step below 768 px: one rung


def test_glyphs_respect_the_published_floors() -> None:
    for name in ("anthropic", "openai-patch", "qwen-28", "qwen-32", "gemini-3"):
        assert PROFILES[name].body_px >= 14  # 14 px cells are the smallest read exactly (pxpipe evals)


def test_missing_rungs_clamp_and_overrides_load(tmp_path: Path) -> None:
    gemini = PROFILES["gemini-2"]
    assert gemini.clamp(Rung.TINY) is Rung.LARGE and gemini.clamp(Rung.FORGOTTEN) is Rung.FORGOTTEN
    assert gemini.shape("small") == RungShape(768, 768)
    base = PROFILES["anthropic"]
    bigger = load_profile({"body_px": 18}, base=base)
    assert bigger.body_px == 18 and bigger.rungs == base.rungs and bigger.style().body_size == 18
    fewer = load_profile({"rungs": {"large": [1092, 1092], "base": [868, 868]}}, base=base)
    assert fewer.last is Rung.BASE and fewer.clamp(Rung.TINY) is Rung.BASE
    path = tmp_path / "calibrated.json"
    path.write_text(json.dumps({**base.to_dict(), "name": "mine", "body_px": 17}), encoding="utf-8")
    loaded = load_profile(str(path), base=PROFILES["deepseek-ocr"])
    assert (loaded.name, loaded.body_px, loaded.rungs) == ("mine", 17, base.rungs)
    assert load_profile("gemini-3", base=base) is PROFILES["gemini-3"]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("nope", "unknown profile"),
        ({"rungs": {"large": [64, 64], "base": [900, 900]}}, "larger than the top"),
        ({"rungs": {"large": [1092, 1092], "small": [500, 500]}}, "run of the ladder"),
        ({"rungs": {"large": [1092]}}, "width, height"),
        ({"body_px": 200}, "invalid profile override"),
        ("/no/such/file.json", "cannot read the profile file"),
    ],
)
def test_bad_profiles_are_config_errors(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_profile(value, base=PROFILES["anthropic"])  # type: ignore[arg-type]
