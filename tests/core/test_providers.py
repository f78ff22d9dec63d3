"""Image and text token costs per provider: the published examples and the ladder table."""

import logging

import pytest

from optical_memory.errors import ProviderError
from optical_memory.providers import FAMILIES, get_provider

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


def test_anthropic_area_after_downscale():
    p = get_provider("anthropic:claude-sonnet-4-5")
    assert p.image_tokens(200, 200) == 54
    assert p.image_tokens(1000, 1000) == 1334
    assert p.image_tokens(1092, 1092) == 1590
    assert p.image_tokens(512, 512) == 350
    assert p.image_tokens(1280, 1280) == 1590  # downscaled to 1092 x 1092
    assert p.image_tokens(1568, 784) <= 1640  # long edge at the limit
    assert p.image_tokens(4000, 1000) == p.image_tokens(1568, 392)


def test_gemini_tiles():
    assert costs("gemini:gemini-2.0-flash") == [258, 258, 1032, 1032]
    assert get_provider("gemini:gemini-2.0-flash").image_tokens(384, 384) == 258
    assert get_provider("gemini:gemini-1.5-pro").image_tokens(1280, 1280) == 258


def test_qwen_one_token_per_28px_plus_wrappers():
    assert costs("qwen2.5-vl") == [18 * 18 + 2, 23 * 23 + 2, 37 * 37 + 2, 46 * 46 + 2]
    assert get_provider("qwen2.5-vl").image_tokens(10, 10) == 4 + 2  # raised to min_pixels


def test_unknown_model_of_known_provider_logs_and_uses_current_formula(caplog):
    with caplog.at_level(logging.INFO, logger="optical_memory.providers"):
        p = get_provider("openai:gpt-9-vision")
    assert not p.known_model
    assert p.image_tokens(1024, 1024) == 765
    assert "unknown OpenAI model 'gpt-9-vision'" in caplog.text
    assert get_provider("openai:gpt-4o-2024-08-06").known_model


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


def test_text_tokens_use_provider_encoding():
    text = "Hello, world. 你好，世界。"
    assert get_provider("openai:gpt-4o").text_tokens(text) > 0
    assert get_provider("openai:gpt-4o").text_encoding == "o200k_base"
    assert get_provider("openai:gpt-4-turbo").text_encoding == "cl100k_base"
    assert not get_provider("anthropic:claude-opus-4-1").exact_text
