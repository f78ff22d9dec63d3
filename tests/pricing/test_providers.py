"""Image and text token costs per provider: the published examples and the ladder table."""

import logging
import math

import pytest

from optical_memory.errors import ProviderError
from optical_memory.pricing.providers import FAMILIES, MODELS, get_provider

SIZES = (512, 640, 1024, 1280)


def costs(name, **kw):
    p = get_provider(name, **kw)
    return [p.image_tokens(s, s) for s in SIZES]


def test_deepseek_rungs_are_lm_positions():
    assert costs("deepseek-ocr") == [73, 111, 273, 421]
    assert get_provider("deepseek").name == "deepseek-ocr"


def test_deepseek_other_sizes_use_gundam():
    p = get_provider("deepseek-ocr")
    assert p.image_tokens(1920, 1280) == 893  # 3x2 tiles
    assert p.image_tokens(1280, 1920) == 903  # 2x3 tiles
    assert p.image_tokens(300, 200) == 273  # small image: global view only


def test_openai_tile_published_examples():
    p = get_provider("openai:gpt-4o")
    assert p.image_tokens(1024, 1024) == 765
    assert p.image_tokens(2048, 4096) == 1105
    assert get_provider("openai:gpt-4o", detail="low").image_tokens(4096, 4096) == 85
    assert costs("openai:gpt-4o") == [255, 765, 765, 765]


def test_openai_small_images_are_not_upscaled():
    assert get_provider("openai:gpt-4o").image_tokens(128, 64) == 255


def test_openai_tile_bases_per_model():
    assert get_provider("openai:o3").image_tokens(512, 512) == 75 + 150
    assert get_provider("openai:gpt-4o-mini").image_tokens(512, 512) == 2833 + 5667
    assert get_provider("openai:gpt-4.1").image_tokens(1024, 1024) == 765


def test_openai_patch_models():
    assert costs("openai:gpt-4.1-mini") == [415, 648, 1659, 2464]
    # 1280 px exceeds 1536 patches: shrunk to 39 x 39 whole patches
    assert get_provider("openai:gpt-4.1-nano").image_tokens(1280, 1280) == round(39 * 39 * 2.46)
    assert get_provider("openai:o4-mini").image_tokens(512, 512) == round(256 * 1.72)


def test_openai_gpt5_rows():
    """gpt-5 and 5.1 bill tiles (70 + 140 each); 5.2 and later 32 px patches x 1.2 rounded up (nano x 1.5)."""
    assert get_provider("openai:gpt-5").image_tokens(1024, 1024) == 70 + 4 * 140
    assert get_provider("openai:gpt-5.1").formula == "openai-tile"
    assert get_provider("openai:gpt-5-mini").image_tokens(512, 512) == round(256 * 1.62)
    p = get_provider("openai:gpt-5.2")
    assert p.formula == "openai-patch" and p.context_window == 400_000
    assert p.image_tokens(1248, 1248) == math.ceil(1521 * 1.2)
    assert p.image_tokens(4000, 4000) == math.ceil(1536 * 1.2 - 1e-9) or p.image_tokens(4000, 4000) <= 1844
    assert p.image_tokens(4000, 4000, "original") > 1844  # up to 10,000 patches at detail original
    assert p.image_tokens(1248, 1248, "low") == math.ceil(256 * 1.2)
    assert get_provider("openai:gpt-5.4-nano").image_tokens(512, 512) == math.ceil(256 * 1.5)


def test_anthropic_28px_patches_after_downscale():
    p = get_provider("anthropic:claude-sonnet-4-5")
    assert p.image_tokens(200, 200) == 8 * 8
    assert p.image_tokens(1092, 1092) == 39 * 39
    assert p.image_tokens(448, 448) == 16 * 16
    assert p.image_tokens(1280, 1280) == 39 * 39  # downscaled to about 1.19 MP
    assert p.image_tokens(4000, 1000) == p.image_tokens(1568, 392)
    hires = get_provider("anthropic:claude-opus-4-7")
    assert hires.image_tokens(1568, 1568) == 56 * 56  # 3,136, as measured on live bills
    assert hires.image_tokens(10_000, 10_000) <= 4784


def test_anthropic_claude_3_keeps_the_area_rule():
    p = get_provider("anthropic:claude-3-5-sonnet")
    assert p.image_tokens(1000, 1000) == 1334
    assert p.image_tokens(1092, 1092) == 1590
    assert p.image_tokens(512, 512) == 350


def test_gemini_tiles():
    assert costs("gemini:gemini-2.0-flash") == [258, 258, 1032, 1032]
    assert get_provider("gemini:gemini-2.0-flash").image_tokens(384, 384) == 258
    assert get_provider("gemini:gemini-1.5-pro").image_tokens(1280, 1280) == 258


def test_gemini_3_media_resolution_levels():
    p = get_provider("gemini:gemini-3-pro-preview")
    assert p.formula == "gemini-3"
    assert [p.image_tokens(2048, 2048, level) for level in ("low", "medium", "high", "ultra_high")] == [
        280, 560, 1120, 2240,
    ]  # fmt: skip
    assert p.image_tokens(100, 100) == 1120  # high by default, whatever the pixels


def test_qwen_one_token_per_28px_plus_wrappers():
    assert costs("qwen2.5-vl") == [18 * 18 + 2, 23 * 23 + 2, 37 * 37 + 2, 46 * 46 + 2]
    assert get_provider("qwen2.5-vl").image_tokens(10, 10) == 4 + 2  # raised to min_pixels
    assert get_provider("qwen3-vl").image_tokens(1248, 1248) == 39 * 39 + 2  # 32 px per token


def test_unknown_model_of_known_provider_logs_and_uses_current_formula(caplog):
    with caplog.at_level(logging.INFO, logger="optical_memory.pricing.providers"):
        p = get_provider("openai:gpt-9-vision")
    assert not p.known_model
    assert p.image_tokens(1024, 1024) == get_provider("openai:gpt-5.2").image_tokens(1024, 1024)
    assert "unknown openai model 'gpt-9-vision'" in caplog.text
    assert get_provider("openai:gpt-4o-2024-08-06").known_model


def test_every_row_is_dated_and_sourced_and_windows_are_known():
    for row in MODELS:
        assert len(row.dated) == 10 and row.source and row.window >= 8192
    assert get_provider("openai:gpt-4o").context_window == 128_000
    assert get_provider("anthropic:claude-sonnet-4-5").context_window == 200_000
    assert get_provider("deepseek-ocr").context_window == 8192


def test_unknown_provider_lists_known_ones():
    with pytest.raises(ProviderError, match="deepseek-ocr, openai:<model>, anthropic:<model>"):
        get_provider("mistral:pixtral")
    with pytest.raises(ProviderError, match="openai:gpt-4o"):
        get_provider("openai")
    assert set(FAMILIES) >= {"openai", "anthropic", "gemini", "qwen2.5-vl", "deepseek-ocr"}


def test_bad_sizes_and_detail_are_errors():
    with pytest.raises(ProviderError):
        get_provider("openai:gpt-4o").image_tokens(0, 10)
    with pytest.raises(ProviderError, match="detail"):
        get_provider("openai:gpt-4o", detail="ultra")
    with pytest.raises(ProviderError, match="no detail setting"):
        get_provider("anthropic:claude-sonnet-4-5", detail="low")
    # a detail the formula does not take is ignored when an image carries it (a profile of another family)
    assert get_provider("anthropic:claude-sonnet-4-5").image_tokens(448, 448, "low") == 256


def test_text_tokens_use_provider_encoding():
    text = "Hello, world. 你好，世界。"
    assert get_provider("openai:gpt-4o").text_tokens(text) > 0
    assert get_provider("openai:gpt-4o").text_encoding == "o200k_base"
    assert get_provider("openai:gpt-4-turbo").text_encoding == "cl100k_base"
    assert not get_provider("anthropic:claude-opus-4-1").exact_text
