"""What an image and a text cost on each provider, in that provider's own tokens.

Hosted models bill the same page very differently (a 512 px page: 73 positions on DeepSeek-OCR, 255
tokens on gpt-4o at high detail, 350 on Claude), so a token budget must be spent in the target's tokens.
Each formula below is a pure function of the image size (and detail, where it applies), written from the
providers' published rules (see ``reference/peers.md`` section 4):

- ``deepseek-ocr``: the language-model positions of a native mode (421 / 273 / 111 / 73 for square pages
  of 1280 / 1024 / 640 / 512 px), Gundam tiling for any other size.
- OpenAI tile models (gpt-4o family, gpt-4.1, gpt-4.5, o1, o3): fit in 2048 x 2048, then shortest side to
  768, then ``base + tile * ceil(w/512) * ceil(h/512)``; ``detail="low"`` costs the base.
- OpenAI patch models (gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano): 32 px patches, at most 1536 (larger
  images shrink so whole patches fit), times the model's multiplier.
- Anthropic: ``ceil(w * h / 750)`` after scaling down to a long edge of 1568 px and about 1.19 MP
  (1092 x 1092 for a square).
- Gemini 2.x: 258 for an image whose sides are both at most 384 px, else 258 per 768 px tile.
- Qwen2.5-VL: one token per 28 x 28 after ``smart_resize`` rounding, plus the two vision wrapper tokens.

Names look like ``deepseek-ocr``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``,
``gemini:gemini-2.0-flash``, ``qwen2.5-vl``. A model a known provider does not list is priced with that
provider's current formula, and a log line says so. Text is counted with tiktoken's o200k_base unless the
provider's own tokenizer is available (cl100k_base for older OpenAI models); for Anthropic, Gemini and
Qwen it is an estimate, which :attr:`Provider.exact_text` reports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from optical_memory import ladder
from optical_memory.errors import ProviderError
from optical_memory.tokens import count_tokens

logger = logging.getLogger(__name__)

ImageCost = Callable[[int, int], int]


# --- the formulas ---------------------------------------------------------------------------------------


def deepseek_ocr_tokens(width: int, height: int) -> int:
    """Language-model positions DeepSeek-OCR uses for an image of this size.

    A square image at a rung's size uses that native mode; anything else goes through Gundam tiling
    (a 1024 px global view, plus 640 px tiles when a side exceeds 640 px).
    """
    if width == height and (rung := ladder.rung_for_size(width)) is not None:
        return ladder.positions(rung)
    return ladder.gundam_positions(*ladder.gundam_grid(width, height))


def openai_tile_tokens(width: int, height: int, *, base: int, tile: int, detail: str = "high") -> int:
    """OpenAI tile models: base + tile cost per 512 px tile after the 2048 fit and 768 shortest side."""
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(int(w) / 512) * math.ceil(int(h) / 512)
    return base + tile * tiles


def openai_patch_tokens(width: int, height: int, *, multiplier: float, cap: int = 1536) -> int:
    """OpenAI patch models: 32 px patches (at most ``cap``, shrinking larger images) times a multiplier."""
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > cap:
        shrink = math.sqrt(cap * 32 * 32 / (width * height))
        # shrink a little further so a whole number of patches spans the narrower fit
        shrink *= min(
            math.floor(width * shrink / 32) / (width * shrink / 32),
            math.floor(height * shrink / 32) / (height * shrink / 32),
        )
        patches = math.ceil(int(width * shrink) / 32) * math.ceil(int(height * shrink) / 32)
    return int(patches * multiplier + 0.5)


def anthropic_tokens(width: int, height: int, *, long_edge: int = 1568, max_pixels: int = 1092 * 1092) -> int:
    """Claude: ``ceil(w * h / 750)`` after the documented downscale (long edge and about 1.19 MP)."""
    scale = min(1.0, long_edge / max(width, height), math.sqrt(max_pixels / (width * height)))
    w, h = (width, height) if scale >= 1.0 else (round(width * scale), round(height * scale))
    return math.ceil(w * h / 750)


def gemini_tokens(width: int, height: int, *, flat: bool = False) -> int:
    """Gemini 2.x: 258 up to 384 x 384, else 258 per 768 px tile; Gemini 1.5: a flat 258."""
    if flat or (width <= 384 and height <= 384):
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def qwen25_vl_tokens(
    width: int, height: int, *, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 16384
) -> int:
    """Qwen2.5-VL: one token per 28 x 28 after ``smart_resize``, plus the two vision wrapper tokens."""
    factor = 28
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return (h_bar // factor) * (w_bar // factor) + 2


# --- the provider table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provider:
    """A target model: how it prices images and text, and which message format it takes.

    Attributes:
        name: The canonical name, e.g. ``openai:gpt-4o``.
        family: ``deepseek-ocr``, ``openai``, ``anthropic``, ``gemini`` or ``qwen2.5-vl``.
        model: The model part of the name ('' for single-model providers).
        detail: The OpenAI detail setting used for images (``high`` or ``low``), else None.
        text_encoding: The tiktoken encoding used for text.
        exact_text: True when ``text_encoding`` is the provider's own tokenizer.
        known_model: False when the model was not in the table and the family's current formula is used.
    """

    name: str
    family: str
    model: str
    image_cost: ImageCost = field(repr=False, compare=False)
    detail: str | None = None
    text_encoding: str = "o200k_base"
    exact_text: bool = False
    message_overhead: int = 0
    known_model: bool = True

    def image_tokens(self, width: int, height: int) -> int:
        """Tokens this provider bills for an image of ``width`` x ``height`` pixels."""
        if width <= 0 or height <= 0:
            raise ProviderError(f"image size must be positive, got {width}x{height}")
        return self.image_cost(width, height)

    def text_tokens(self, text: str) -> int:
        """Tokens of a text in this provider's encoding (an estimate when ``exact_text`` is False)."""
        return count_tokens(text, self.text_encoding)


# OpenAI tile models: model prefix -> (base, tile). Longest prefix wins.
OPENAI_TILE = {
    "gpt-4o-mini": (2833, 5667),
    "gpt-4o": (85, 170),
    "chatgpt-4o": (85, 170),
    "gpt-4.1": (85, 170),
    "gpt-4.5": (85, 170),
    "gpt-4-turbo": (85, 170),
    "o1": (75, 150),
    "o3": (75, 150),
}
# OpenAI patch models: model prefix -> multiplier.
OPENAI_PATCH = {
    "gpt-4.1-mini": 1.62,
    "gpt-4.1-nano": 2.46,
    "o4-mini": 1.72,
    "gpt-5-mini": 1.62,
    "gpt-5-nano": 2.46,
}
ANTHROPIC_MODELS = ("claude-3", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4")
GEMINI_MODELS = ("gemini-1.5", "gemini-2.0", "gemini-2.5")
FAMILIES = ("deepseek-ocr", "openai", "anthropic", "gemini", "qwen2.5-vl")
_ALIASES = {
    "deepseek": "deepseek-ocr",
    "qwen2.5vl": "qwen2.5-vl",
    "qwen": "qwen2.5-vl",
    "claude": "anthropic",
}


def _longest_prefix(model: str, table: Mapping[str, object] | tuple[str, ...]) -> str | None:
    matches = [p for p in table if model.startswith(p)]
    return max(matches, key=len) if matches else None


def _openai(model: str, detail: str | None) -> Provider:
    detail = detail or "high"
    if detail not in ("high", "low", "auto"):
        raise ProviderError(f"OpenAI image detail must be 'high', 'low' or 'auto', got {detail!r}")
    detail = "high" if detail == "auto" else detail  # auto picks high for page-sized images
    encoding = "cl100k_base" if model.startswith(("gpt-4-", "gpt-3.5")) and "turbo" in model else "o200k_base"
    common = {"family": "openai", "model": model, "text_encoding": encoding, "exact_text": True}
    name = f"openai:{model}"
    # patch prefixes are more specific than tile ones ("gpt-4.1-mini" vs "gpt-4.1")
    if (prefix := _longest_prefix(model, OPENAI_PATCH)) is not None:
        cost = partial(openai_patch_tokens, multiplier=OPENAI_PATCH[prefix])
        return Provider(name, image_cost=cost, message_overhead=3, **common)  # type: ignore[arg-type]
    prefix = _longest_prefix(model, OPENAI_TILE)
    known = prefix is not None
    if not known:
        logger.info("unknown OpenAI model %r: pricing images with the gpt-4o tile formula", model)
    base, tile = OPENAI_TILE[prefix or "gpt-4o"]
    cost = partial(openai_tile_tokens, base=base, tile=tile, detail=detail)
    return Provider(name, image_cost=cost, detail=detail, message_overhead=3, known_model=known, **common)  # type: ignore[arg-type]


def _anthropic(model: str) -> Provider:
    known = _longest_prefix(model, ANTHROPIC_MODELS) is not None
    if not known:
        logger.info(
            "unknown Anthropic model %r: pricing images with w*h/750 after the 1568 px downscale", model
        )
    return Provider(f"anthropic:{model}", "anthropic", model, anthropic_tokens, known_model=known)


def _gemini(model: str) -> Provider:
    known = _longest_prefix(model, GEMINI_MODELS) is not None
    if not known:
        logger.info("unknown Gemini model %r: pricing images with the Gemini 2.x 768 px tile formula", model)
    cost = partial(gemini_tokens, flat=model.startswith("gemini-1.5"))
    return Provider(f"gemini:{model}", "gemini", model, cost, known_model=known)


def get_provider(name: str, *, detail: str | None = None) -> Provider:
    """Look up a provider by name, e.g. ``deepseek-ocr``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``.

    Args:
        name: ``family`` or ``family:model``.
        detail: OpenAI image detail (``high``, the default, or ``low``); ignored by other families.

    Raises:
        ProviderError: For an unknown family (the message lists the known ones) or a missing model.
    """
    if not isinstance(name, str) or not name.strip():
        raise ProviderError(f"provider name must be a non-empty string; known: {', '.join(FAMILIES)}")
    family, _, model = name.strip().partition(":")
    family = _ALIASES.get(family.lower(), family.lower())
    model = model.strip()
    if family == "deepseek-ocr":
        return Provider("deepseek-ocr", "deepseek-ocr", model, deepseek_ocr_tokens)
    if family == "qwen2.5-vl":
        return Provider("qwen2.5-vl", "qwen2.5-vl", model, qwen25_vl_tokens)
    if family in ("openai", "anthropic", "gemini") and not model:
        raise ProviderError(f"name the model too, e.g. '{family}:{_EXAMPLES[family]}'")
    if family == "openai":
        return _openai(model, detail)
    if family == "anthropic":
        return _anthropic(model)
    if family == "gemini":
        return _gemini(model)
    raise ProviderError(
        f"unknown provider {name!r}: use one of deepseek-ocr, openai:<model>, anthropic:<model>, "
        "gemini:<model>, qwen2.5-vl"
    )


_EXAMPLES = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.0-flash"}
