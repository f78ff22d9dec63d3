"""What an image and a text cost on each provider, in that provider's own tokens, and how long its window is.

Hosted models bill the same page very differently (a 512 px square: 73 positions on DeepSeek-OCR, 255
tokens on gpt-4o at high detail, 361 on Claude), so a token budget must be spent in the target's tokens.
Each formula below is a pure function of the image size and the ``detail`` the image is sent with; the
rows of :data:`MODELS` say which formula and which constants a model uses, each row dated and sourced:

- ``deepseek-ocr``: the language-model positions of a native mode (421 / 273 / 111 / 73 for square pages
  of 1280 / 1024 / 640 / 512 px), Gundam tiling for any other size (:mod:`optical_memory.pricing.deepseek`).
- OpenAI tile models (gpt-4o, gpt-4.1, gpt-4.5, o1, o3, gpt-5 and gpt-5.1): fit in 2048 x 2048, then the
  shortest side to 768, then ``base + tile * ceil(w/512) * ceil(h/512)``; ``detail="low"`` costs the base.
- OpenAI patch models (gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano, gpt-5.2 and later): 32 px patches,
  at most 1,536 (10,000 with ``detail="original"``; 256 with ``"low"``), larger images shrinking so whole
  patches fit, times the model's multiplier, rounded up.
- Anthropic: ``ceil(w/28) * ceil(h/28)`` visual tokens after scaling down to a 1,568 px long edge and
  about 1.19 MP (1092 x 1092); Opus 4.7 and later: 2,576 px and 3.75 MP (1,568 px -> 3,136 tokens was
  measured on live bills by snapcompact, npm ``@oh-my-pi/snapcompact`` 18.2.11); Claude 3 models bill
  ``w * h / 750`` after the same downscale.
- Gemini 2.x: 258 for an image whose sides are both at most 384 px, else 258 per 768 px tile; Gemini 1.5
  a flat 258; Gemini 3 a fixed price per ``media_resolution`` level (low 280, medium 560, high 1,120, the
  default, ultra_high 2,240), whatever the pixels.
- Qwen2.5-VL: one token per 28 x 28 after ``smart_resize`` rounding, plus the two vision wrapper tokens;
  Qwen3-VL the same with 32 x 32 patches.

Names look like ``deepseek-ocr``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``,
``gemini:gemini-2.0-flash``, ``qwen2.5-vl``, ``qwen3-vl``. A model a known family does not list is priced
with that family's newest row, and a log line says so. Text is counted with tiktoken's o200k_base unless the
provider's own tokenizer is available (cl100k_base for older OpenAI models); for Anthropic, Gemini and
Qwen it is an estimate, which :attr:`Provider.exact_text` reports. ``context_window`` is the model's
published context length in tokens (DeepSeek-OCR: its decoder's 8,192 positions).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from optical_memory.errors import ProviderError
from optical_memory.pricing.deepseek import deepseek_ocr_tokens
from optical_memory.tokens import count_tokens

logger = logging.getLogger(__name__)

ImageCost = Callable[[int, int, str | None], int]
"""``(width, height, detail) -> tokens``; ``detail`` None means the model's default."""
ImageView = Callable[[int, int, str | None], tuple[int, int]]
"""``(width, height, detail) -> (width, height)``: the size the model sees after the provider's resize."""

DETAILS: dict[str, tuple[str, ...]] = {
    "openai-tile": ("high", "low", "auto"),
    "openai-patch": ("high", "low", "auto", "original"),
    "gemini-3": ("low", "medium", "high", "ultra_high"),
}
"""The ``detail`` values each formula understands (others take none)."""


# --- the formulas ---------------------------------------------------------------------------------------


def served(width: int, height: int, detail: str | None = None) -> tuple[int, int]:
    """The size a model sees an image at when its provider does not resize it."""
    return width, height


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return (width, height) if scale >= 1.0 else (max(1, int(width * scale)), max(1, int(height * scale)))


def openai_tile_view(width: int, height: int, detail: str | None = None) -> tuple[int, int]:
    """OpenAI tile models: ``low`` fits 512 x 512; else fit 2048 x 2048, then the shortest side to 768."""
    if detail == "low":
        return _scaled(width, height, 512 / max(width, height))
    w, h = _scaled(width, height, 2048 / max(width, height))
    return _scaled(w, h, 768 / min(w, h))


def openai_tile_tokens(width: int, height: int, detail: str | None = None, *, base: int, tile: int) -> int:
    """OpenAI tile models: base + tile cost per 512 px tile after the 2048 fit and 768 shortest side."""
    if detail == "low":
        return base
    w, h = openai_tile_view(width, height)
    return base + tile * math.ceil(w / 512) * math.ceil(h / 512)


def patch_view(width: int, height: int, *, cap: int, patch: int = 32) -> tuple[int, int]:
    """The size of an image shrunk (when over ``cap`` patches) so that whole patches fit the cap."""
    if math.ceil(width / patch) * math.ceil(height / patch) <= cap:
        return width, height
    shrink = math.sqrt(cap * patch * patch / (width * height))
    # shrink a little further so a whole number of patches spans the narrower fit
    shrink *= min(
        math.floor(width * shrink / patch) / (width * shrink / patch),
        math.floor(height * shrink / patch) / (height * shrink / patch),
    )
    return int(width * shrink), int(height * shrink)


def patches_after_fit(width: int, height: int, *, cap: int, patch: int = 32) -> int:
    """Patches of an image after :func:`patch_view`."""
    w, h = patch_view(width, height, cap=cap, patch=patch)
    return math.ceil(w / patch) * math.ceil(h / patch)


_PATCH_CAPS = {"original": 10_000, "low": 256}


def openai_patch_view(width: int, height: int, detail: str | None = None) -> tuple[int, int]:
    """OpenAI patch models: shrunk to at most 1,536 patches (10,000 at ``original``, 256 at ``low``)."""
    return patch_view(width, height, cap=_PATCH_CAPS.get(detail or "high", 1536))


def openai_patch_tokens(
    width: int, height: int, detail: str | None = None, *, multiplier: float, round_up: bool = False
) -> int:
    """OpenAI patch models: 32 px patches (at most 1,536; 10,000 at ``original``; 256 at ``low``) x multiplier.

    gpt-5.2 and later round the product up; the older models round it to the nearest token.
    """
    cap = _PATCH_CAPS.get(detail or "high", 1536)
    tokens = patches_after_fit(width, height, cap=cap) * multiplier
    return math.ceil(tokens - 1e-9) if round_up else int(tokens + 0.5)


def anthropic_view(
    width: int,
    height: int,
    detail: str | None = None,
    *,
    long_edge: int = 1568,
    max_pixels: int | None = None,
    max_tokens: int | None = None,
) -> tuple[int, int]:
    """Claude: the image scaled down to the long-edge, pixel and token limits."""
    limits = [1.0, long_edge / max(width, height)]
    if max_pixels is not None:
        limits.append(math.sqrt(max_pixels / (width * height)))
    scale = min(limits)
    while True:
        w, h = _scaled(width, height, scale)
        if max_tokens is None or math.ceil(w / 28) * math.ceil(h / 28) <= max_tokens:
            return w, h
        scale = min(scale, 1.0) * math.sqrt(max_tokens / (math.ceil(w / 28) * math.ceil(h / 28))) * 0.999


def anthropic_tokens(
    width: int,
    height: int,
    detail: str | None = None,
    *,
    long_edge: int = 1568,
    max_pixels: int | None = None,
    max_tokens: int | None = None,
) -> int:
    """Claude: ``ceil(w/28) * ceil(h/28)`` after :func:`anthropic_view`."""
    w, h = anthropic_view(width, height, long_edge=long_edge, max_pixels=max_pixels, max_tokens=max_tokens)
    return math.ceil(w / 28) * math.ceil(h / 28)


def anthropic_legacy_view(width: int, height: int, detail: str | None = None) -> tuple[int, int]:
    """Claude 3: scaled to a 1,568 px long edge and about 1.19 MP."""
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1092 * 1092 / (width * height)))
    return (width, height) if scale >= 1.0 else (round(width * scale), round(height * scale))


def anthropic_legacy_tokens(width: int, height: int, detail: str | None = None) -> int:
    """Claude 3: ``ceil(w * h / 750)`` after :func:`anthropic_legacy_view`."""
    w, h = anthropic_legacy_view(width, height)
    return math.ceil(w * h / 750)


def gemini_tokens(width: int, height: int, detail: str | None = None, *, flat: bool = False) -> int:
    """Gemini 2.x: 258 up to 384 x 384, else 258 per 768 px tile; Gemini 1.5: a flat 258."""
    if flat or (width <= 384 and height <= 384):
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


GEMINI3_LEVELS = {"low": 280, "medium": 560, "high": 1120, "ultra_high": 2240}
"""Gemini 3 tokens per image at each ``media_resolution`` level (third-party figures, 2026-12)."""


def gemini3_tokens(width: int, height: int, detail: str | None = None) -> int:
    """Gemini 3: a fixed price per ``media_resolution`` level (``high`` by default), whatever the pixels."""
    return GEMINI3_LEVELS[detail or "high"]


def qwen_vl_view(
    width: int,
    height: int,
    detail: str | None = None,
    *,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 16384,
) -> tuple[int, int]:
    """Qwen-VL's ``smart_resize``: both sides rounded to ``factor``, the area kept within the bounds."""
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
    return w_bar, h_bar


def qwen_vl_tokens(
    width: int, height: int, detail: str | None = None, *, factor: int = 28, max_pixels: int = 28 * 28 * 16384
) -> int:
    """Qwen-VL: one token per ``factor`` x ``factor`` after :func:`qwen_vl_view`, plus two wrapper tokens."""
    w, h = qwen_vl_view(width, height, factor=factor, max_pixels=max_pixels)
    return (w // factor) * (h // factor) + 2


# --- the model table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One row of the provider table: which models it covers and how they bill.

    Attributes:
        family: The provider family.
        pattern: A regular expression the model name must match from its start.
        formula: The image formula family (``openai-tile``, ``openai-patch``, ``gemini-3``, ...): which
            ``detail`` values apply, and which render profile suits it.
        cost: The image cost function with the row's constants bound.
        window: The context window in tokens.
        dated: When the row was last checked (YYYY-MM-DD).
        source: Where its numbers come from.
        view: The provider's resize: the size the model sees an image at.
    """

    family: str
    pattern: str
    formula: str
    cost: ImageCost = field(repr=False, compare=False)
    window: int
    dated: str
    source: str
    view: ImageView = field(default=served, repr=False, compare=False)


_OPENAI_DOCS = "platform.openai.com/docs/guides/images-vision (calculating costs)"
_ANTHROPIC_DOCS = "docs.anthropic.com/en/docs/build-with-claude/vision (image costs)"
_GEMINI_DOCS = "ai.google.dev/gemini-api/docs/tokens, /media-resolution"


def _tile(base: int, tile: int) -> ImageCost:
    return partial(openai_tile_tokens, base=base, tile=tile)


def _anthropic(pattern: str, source: str, **limits: Any) -> ModelRow:
    cost, view = partial(anthropic_tokens, **limits), partial(anthropic_view, **limits)
    return ModelRow("anthropic", pattern, "anthropic", cost, 200_000, "2026-12-01", source, view)


def _openai(pattern: str, cost: ImageCost, window: int, source: str = _OPENAI_DOCS) -> ModelRow:
    tiles = cost.func is openai_tile_tokens  # type: ignore[attr-defined]
    formula = "openai-tile" if tiles else "openai-patch"
    view = openai_tile_view if tiles else openai_patch_view
    return ModelRow("openai", pattern, formula, cost, window, "2026-12-01", source, view)


def _patch(multiplier: float, *, round_up: bool = False) -> ImageCost:
    return partial(openai_patch_tokens, multiplier=multiplier, round_up=round_up)


MODELS: tuple[ModelRow, ...] = (
    ModelRow("deepseek-ocr", "", "deepseek-ocr", deepseek_ocr_tokens, 8_192, "2026-12-01",
             "DeepSeek-OCR paper (arXiv 2510.18234) Table 1; max_position_embeddings 8192"),
    # OpenAI: the most specific pattern wins (a row whose pattern matches more of the name)
    _openai("gpt-4o-mini", _tile(2833, 5667), 128_000),
    _openai("(chatgpt-)?gpt-4o", _tile(85, 170), 128_000),
    _openai("gpt-4-turbo", _tile(85, 170), 128_000),
    _openai("gpt-4\\.1", _tile(85, 170), 1_047_576),
    _openai("gpt-4\\.5", _tile(85, 170), 128_000),
    _openai("o[13]", _tile(75, 150), 200_000),
    _openai("gpt-5(\\.1)?(-chat)?(-latest)?($|-\\d)", _tile(70, 140), 400_000),
    _openai("gpt-4\\.1-mini", _patch(1.62), 1_047_576),
    _openai("gpt-4\\.1-nano", _patch(2.46), 1_047_576),
    _openai("o4-mini", _patch(1.72), 200_000),
    _openai("gpt-5(\\.1)?-mini", _patch(1.62), 400_000),
    _openai("gpt-5(\\.1)?-nano", _patch(2.46), 400_000),
    _openai("gpt-5\\.([2-9]|\\d\\d)", _patch(1.2, round_up=True), 400_000,
            "openai/codex #19806 and PR #19865; llxprt-code #3477 (x1.2, 1,536 patches, 10,000 at original)"),
    _openai("gpt-5\\.([2-9]|\\d\\d)[.\\d]*-nano", _patch(1.5, round_up=True), 400_000,
            "openai/codex #19806 (nano x1.5)"),
    ModelRow("anthropic", "claude-3", "anthropic-legacy", anthropic_legacy_tokens, 200_000, "2026-12-01",
             _ANTHROPIC_DOCS + " (w*h/750 wording, 1.15 MP)", anthropic_legacy_view),
    _anthropic("claude-", _ANTHROPIC_DOCS + " (1,568 px long edge, about 1.19 MP: 1092 x 1092 unscaled)",
               max_pixels=1092 * 1092),
    _anthropic("claude-(opus-4-([7-9]|\\d\\d)|[a-z]+-([5-9]|\\d\\d))",
               _ANTHROPIC_DOCS + " (Opus 4.7: 2,576 px, 3.75 MP, 4,784 tokens at most)",
               long_edge=2576, max_pixels=3_750_000, max_tokens=4784),
    ModelRow("gemini", "gemini-1\\.5-pro", "gemini-2", partial(gemini_tokens, flat=True), 2_097_152,
             "2026-12-01", _GEMINI_DOCS),
    ModelRow("gemini", "gemini-1\\.5", "gemini-2", partial(gemini_tokens, flat=True), 1_048_576, "2026-12-01",
             _GEMINI_DOCS),
    ModelRow("gemini", "gemini-2", "gemini-2", gemini_tokens, 1_048_576, "2026-12-01", _GEMINI_DOCS),
    ModelRow("gemini", "gemini-([3-9]|\\d\\d)", "gemini-3", gemini3_tokens, 1_048_576, "2026-12-01",
             _GEMINI_DOCS + " (per-part media_resolution; token figures third-party; its resize is unpublished)"),
    ModelRow("qwen2.5-vl", "", "qwen-28", qwen_vl_tokens, 32_768, "2026-12-01",
             "Qwen2.5-VL preprocessor_config.json and transformers smart_resize (28 px, 2 wrapper tokens)",
             qwen_vl_view),
    ModelRow("qwen3-vl", "", "qwen-32", partial(qwen_vl_tokens, factor=32, max_pixels=32 * 32 * 16384), 262_144,
             "2026-12-01", "Qwen3-VL preprocessor_config.json (patch 16, merge 2: 32 px per token)",
             partial(qwen_vl_view, factor=32, max_pixels=32 * 32 * 16384)),
)  # fmt: skip
"""The provider table, one dated and sourced row per model group."""

FAMILIES = ("deepseek-ocr", "openai", "anthropic", "gemini", "qwen2.5-vl", "qwen3-vl")
_NEWEST = {"openai": "gpt-5.2", "anthropic": "claude-opus-4-7", "gemini": "gemini-3"}
"""The model whose row prices an unknown model of a family (the family's current formula)."""
_ALIASES = {
    "deepseek": "deepseek-ocr",
    "qwen2.5vl": "qwen2.5-vl",
    "qwen": "qwen2.5-vl",
    "qwen3vl": "qwen3-vl",
    "claude": "anthropic",
    "google": "gemini",
}
_EXAMPLES = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.0-flash"}


@dataclass(frozen=True, slots=True)
class Provider:
    """A target model: how it prices images and text, which message format it takes, and its window.

    Attributes:
        name: The canonical name, e.g. ``openai:gpt-4o``.
        family: ``deepseek-ocr``, ``openai``, ``anthropic``, ``gemini``, ``qwen2.5-vl`` or ``qwen3-vl``.
        model: The model part of the name ('' for single-model providers).
        formula: The image formula family of its table row (e.g. ``openai-tile``, ``gemini-3``).
        detail: The image detail every image is sent with (overriding a render profile's per-rung
            detail), or None to let each image use its own (the model's default when it has none).
        text_encoding: The tiktoken encoding used for text.
        exact_text: True when ``text_encoding`` is the provider's own tokenizer.
        message_overhead: Tokens each message costs beyond its content.
        context_window: The model's context length in tokens.
        known_model: False when the model was not in the table and the family's newest row is used.
    """

    name: str
    family: str
    model: str
    image_cost: ImageCost = field(repr=False, compare=False)
    image_view: ImageView = field(default=served, repr=False, compare=False)
    formula: str = ""
    detail: str | None = None
    text_encoding: str = "o200k_base"
    exact_text: bool = False
    message_overhead: int = 0
    context_window: int = 128_000
    known_model: bool = True

    @property
    def details(self) -> tuple[str, ...]:
        """The ``detail`` values this model's images can be sent with (empty when it takes none)."""
        return DETAILS.get(self.formula, ())

    def image_tokens(self, width: int, height: int, detail: str | None = None) -> int:
        """Tokens this provider bills for an image of ``width`` x ``height`` pixels.

        Args:
            width: Image width in pixels.
            height: Image height in pixels.
            detail: How the image is sent (``low``, ``high``, ``original`` for OpenAI; a Gemini 3
                ``media_resolution`` level); ignored when the provider fixes one or takes none.

        Raises:
            ProviderError: For a size that is not positive.
        """
        if width <= 0 or height <= 0:
            raise ProviderError(f"image size must be positive, got {width}x{height}")
        return self.image_cost(width, height, self._detail(detail))

    def served_size(self, width: int, height: int, detail: str | None = None) -> tuple[int, int]:
        """The size the model sees an image of ``width`` x ``height`` at, after the provider's own resize.

        Gemini 3 resizes per ``media_resolution`` in ways it does not publish: its images are taken as sent.
        """
        return self.image_view(width, height, self._detail(detail))

    def _detail(self, detail: str | None) -> str | None:
        chosen = self.detail or detail
        if chosen not in self.details:
            return None
        return "high" if chosen == "auto" else chosen  # auto picks high for page-sized images

    def text_tokens(self, text: str) -> int:
        """Tokens of a text in this provider's encoding (an estimate when ``exact_text`` is False)."""
        return count_tokens(text, self.text_encoding)


def _row(family: str, model: str) -> ModelRow | None:
    """The table row of a model: among the family's rows whose pattern matches, the longest match wins."""
    best: tuple[int, ModelRow] | None = None
    for row in MODELS:
        if row.family != family:
            continue
        m = re.match(row.pattern, model)
        if m is not None and (best is None or m.end() >= best[0]):
            best = (m.end(), row)
    return None if best is None else best[1]


def get_provider(name: str, *, detail: str | None = None) -> Provider:
    """Look up a provider by name, e.g. ``deepseek-ocr``, ``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``.

    Args:
        name: ``family`` or ``family:model``.
        detail: The image detail every image is sent with (see :attr:`Provider.details`); None lets each
            image use its render profile's detail or the model's default.

    Raises:
        ProviderError: For an unknown family (the message lists the known ones), a missing model, or a
            detail the model does not take.
    """
    if not isinstance(name, str) or not name.strip():
        raise ProviderError(f"provider name must be a non-empty string; known: {', '.join(FAMILIES)}")
    family, _, model = name.strip().partition(":")
    family = _ALIASES.get(family.lower(), family.lower())
    model = model.strip()
    if family not in FAMILIES:
        raise ProviderError(
            f"unknown provider {name!r}: use one of deepseek-ocr, openai:<model>, anthropic:<model>, "
            "gemini:<model>, qwen2.5-vl, qwen3-vl"
        )
    if family in _EXAMPLES and not model:
        raise ProviderError(f"name the model too, e.g. '{family}:{_EXAMPLES[family]}'")
    row = _row(family, model)
    known = row is not None
    if row is None:
        row = _row(family, _NEWEST[family])
        assert row is not None
        logger.info("unknown %s model %r: pricing images like %s", family, model, _NEWEST[family])
    canonical = f"{family}:{model}" if family in _EXAMPLES else family
    provider = Provider(
        canonical,
        family,
        model,
        row.cost,
        row.view,
        formula=row.formula,
        text_encoding=_text_encoding(family, model),
        exact_text=family == "openai",
        message_overhead=3 if family == "openai" else 0,
        context_window=row.window,
        known_model=known,
    )
    if detail is not None:
        if detail not in provider.details:
            takes = ", ".join(repr(d) for d in provider.details) or "no detail setting"
            raise ProviderError(f"{canonical} images take {takes}; got detail={detail!r}")
        provider = dataclasses.replace(provider, detail=detail)
    return provider


def _text_encoding(family: str, model: str) -> str:
    if family == "openai" and model.startswith(("gpt-4-", "gpt-3.5")) and "turbo" in model:
        return "cl100k_base"
    return "o200k_base"
