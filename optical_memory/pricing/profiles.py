"""Render profiles: per provider, how large a page is at each rung and how large its glyphs are.

A page is rendered once at its profile's top rung; every lower rung is a downsample of that render (the
DeepSeek-OCR paper's optical forgetting) to a size that sits on the provider's next billing step, so each
rung costs strictly less than the one above it on that provider. A provider with fewer billing steps has
fewer rungs (Gemini 2.x bills any page up to 768 x 768 the same 258 tokens, so its profile has one rung,
and pages stay there until they are forgotten); the age ladder's rungs below a profile's last rung map to
that last rung (:meth:`RenderProfile.clamp`).

The glyph size at the top rung starts from the published legibility floors: Claude and GPT-5-class models
read digits and hex exactly from 14 px monospace cells of 9 x 16 px (144 px^2 a character; pxpipe
``eval/opus-density/RESULTS.md``, ``eval/sol-profile/RESULTS.md``), and snapcompact's validated shapes use
176 px^2 a character on Claude, OpenAI and Gemini 3 (npm ``@oh-my-pi/snapcompact`` 18.2.11). Noto Sans at
16 px on 20 px lines takes about 166 px^2 a character of English prose. Gemini Flash reads far denser text
(5 x 8 cells, pxpipe ``eval/gemini-profile``); DeepSeek-OCR keeps its native 1280 / 1024 / 640 / 512
ladder with 22 px prose, readable down to Tiny.

:data:`PROFILES` is the table, one dated and sourced row per image formula (see
:mod:`optical_memory.pricing.providers`). A memory's config may name another row, override fields of its
provider's row (``{"body_px": 18}``), or load a profile file that ``optical-memory bench legibility
--write-profile`` calibrated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optical_memory.errors import ConfigError
from optical_memory.ladder import ORDER, Rung, as_rung, rank
from optical_memory.renderers.style import RenderStyle


@dataclass(frozen=True, slots=True)
class RungShape:
    """A page's size at one rung, and the image detail it is sent with.

    Attributes:
        width: Width in pixels.
        height: Height in pixels.
        detail: OpenAI ``detail`` or Gemini 3 ``media_resolution`` level for images at this rung (None:
            the model's default). Applies only on the provider formula the profile was made for.
    """

    width: int
    height: int
    detail: str | None = None

    def __post_init__(self) -> None:
        if (
            not (isinstance(self.width, int) and isinstance(self.height, int))
            or min(self.width, self.height) < 64
        ):
            raise ConfigError(
                f"a rung's size must be whole pixels, at least 64; got {self.width}x{self.height}"
            )


@dataclass(frozen=True, slots=True)
class RenderProfile:
    """How pages are made for one provider formula.

    Attributes:
        name: The profile's name (its row in :data:`PROFILES`, or a calibrated file's name).
        formula: The provider image formula it was made for (``anthropic``, ``openai-tile``, ...).
        rungs: The visible rungs it uses, sharpest first, each with its page size; a contiguous run of
            the ladder (most start at ``large``).
        body_px: The glyph size of prose at the top rung (code and labels scale with it).
        margin_px: The blank border of a page at the top rung.
        flow: Run source lines on with a visible mark (``↵``) instead of one drawn line per source line.
        dated: When the row was last checked (YYYY-MM-DD).
        source: Where its numbers come from.
        measured: Accuracy per rung from a legibility run (empty for table rows).
    """

    name: str
    formula: str
    rungs: tuple[tuple[Rung, RungShape], ...]
    body_px: int
    margin_px: int
    dated: str
    source: str
    measured: Mapping[str, float] = field(default_factory=dict, compare=False)
    flow: bool = True

    def __post_init__(self) -> None:
        if not self.rungs:
            raise ConfigError(f"profile {self.name!r} has no rungs")
        ranks = [rank(r) for r, _ in self.rungs]
        if Rung.FORGOTTEN in (r for r, _ in self.rungs) or ranks != list(
            range(ranks[0], ranks[0] + len(ranks))
        ):
            raise ConfigError(f"profile {self.name!r}: rungs must be a run of the ladder, sharpest first")
        top = self.rungs[0][1]
        for rung, shape in self.rungs[1:]:
            if shape.width > top.width or shape.height > top.height:
                raise ConfigError(f"profile {self.name!r}: rung {rung.value} is larger than the top rung")
        self.style()  # the glyphs must fit the page

    @property
    def top(self) -> Rung:
        """The rung pages are rendered at."""
        return self.rungs[0][0]

    @property
    def last(self) -> Rung:
        """The bluntest rung before forgetting."""
        return self.rungs[-1][0]

    def clamp(self, rung: Rung | str) -> Rung:
        """The profile's rung for a ladder rung: sharper ones map to the top, blunter ones to the last."""
        r = as_rung(rung)
        if r is Rung.FORGOTTEN:
            return r
        return min(max(r, self.top, key=rank), self.last, key=rank)

    def shape(self, rung: Rung | str) -> RungShape:
        """The page size (and detail) at a rung, after :meth:`clamp`.

        Raises:
            ConfigError: For ``forgotten``, which has no page.
        """
        r = self.clamp(rung)
        if r is Rung.FORGOTTEN:
            raise ConfigError("the 'forgotten' rung has no page")
        return dict(self.rungs)[r]

    def style(self) -> RenderStyle:
        """The render style of the top rung.

        Raises:
            ConfigError: If the glyphs do not fit the page.
        """
        top = self.rungs[0][1]
        return RenderStyle.for_page(
            top.width, top.height, self.body_px, margin=self.margin_px, flow=self.flow
        )

    def describe(self) -> str:
        """``'anthropic' (1092x1092 at the top, 16 px text)``: how to tell two profiles apart."""
        top = self.rungs[0][1]
        return f"{self.name!r} ({top.width}x{top.height} at the top, {self.body_px} px text)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (what a profile file holds)."""
        return {
            "name": self.name,
            "formula": self.formula,
            "rungs": {r.value: [s.width, s.height, s.detail] for r, s in self.rungs},
            "body_px": self.body_px,
            "margin_px": self.margin_px,
            "flow": self.flow,
            "dated": self.dated,
            "source": self.source,
            "measured": dict(self.measured),
        }

    def overridden(self, changes: Mapping[str, Any]) -> RenderProfile:
        """This profile with some fields replaced (``rungs`` as ``{"large": [w, h, detail], ...}``).

        Raises:
            ConfigError: For an unknown field or a value that does not make a valid profile.
        """
        unknown = set(changes) - set(RenderProfile.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown profile fields {sorted(unknown)}: use {', '.join(RenderProfile.__dataclass_fields__)}"
            )
        values = dict(changes)
        if "rungs" in values and isinstance(values["rungs"], Mapping):
            values["rungs"] = _parse_rungs(values["rungs"])
        try:
            return replace(self, **values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid profile override {dict(changes)!r}: {exc}") from None


def _parse_rungs(rungs: Mapping[str, Any]) -> tuple[tuple[Rung, RungShape], ...]:
    out = []
    for name, value in rungs.items():
        if not isinstance(value, list | tuple) or len(value) not in (2, 3):
            raise ConfigError(
                f"rung {name!r} must be [width, height] or [width, height, detail]; got {value!r}"
            )
        out.append((as_rung(name), RungShape(*value)))
    return tuple(sorted(out, key=lambda item: rank(item[0])))


def _square(*sides: int) -> tuple[tuple[Rung, RungShape], ...]:
    return tuple((rung, RungShape(side, side)) for rung, side in zip(ORDER, sides, strict=False))


_LEGIBILITY = (
    "pxpipe eval/opus-density, eval/sol-profile (14 px 9x16 cells exact); snapcompact 18.2.11 shapes"
)

PROFILES: Mapping[str, RenderProfile] = {
    p.name: p
    for p in (
        RenderProfile(
            "deepseek-ocr", "deepseek-ocr", _square(1280, 1024, 640, 512), 22, 32, "2026-12-01",
            "DeepSeek-OCR native modes (arXiv 2510.18234 Table 1); 22 px prose read by eye down to Tiny",
        ),
        RenderProfile(
            "openai-tile", "openai-tile",
            (
                (Rung.LARGE, RungShape(768, 1024)),  # 2 x 2 tiles: 765 on gpt-4o
                (Rung.BASE, RungShape(512, 683)),  # 1 x 2 tiles: 425
                (Rung.SMALL, RungShape(384, 512)),  # 1 tile: 255
                (Rung.TINY, RungShape(384, 512, "low")),  # the base alone: 85
            ),
            15, 14, "2026-12-01",
            "OpenAI vision docs: 768 px short side, 512 px tiles, low detail = base; " + _LEGIBILITY,
        ),
        RenderProfile(
            "openai-patch", "openai-patch", _square(1248, 992, 736, 512), 16, 16, "2026-12-01",
            "32 px patches (1,521 / 961 / 529 / 256 patches, under the 1,536 cap); " + _LEGIBILITY,
        ),
        RenderProfile(
            "anthropic", "anthropic", _square(1092, 868, 644, 448), 16, 16, "2026-12-01",
            "28 px patches (39^2 / 31^2 / 23^2 / 16^2), 1092 px is the largest unscaled square; " + _LEGIBILITY,
        ),
        RenderProfile(
            "anthropic-legacy", "anthropic-legacy", _square(1092, 868, 644, 448), 16, 16, "2026-12-01",
            "Claude 3: w*h/750 after the 1.15 MP downscale; " + _LEGIBILITY,
        ),
        RenderProfile(
            "gemini-2", "gemini-2", _square(768), 11, 10, "2026-12-01",
            "Gemini 2.x bills 258 for anything up to one 768 px tile, so one rung; Gemini Flash reads "
            "5x8 cells (pxpipe eval/gemini-profile); 11 px prose keeps a margin for 2.x",
        ),
        RenderProfile(
            "gemini-3", "gemini-3",
            (
                (Rung.LARGE, RungShape(2048, 2048, "high")),  # 1,120
                (Rung.BASE, RungShape(1448, 1448, "medium")),  # 560
                (Rung.SMALL, RungShape(1024, 1024, "low")),  # 280
            ),
            16, 16, "2026-12-01",
            "Gemini 3 media_resolution levels; snapcompact sends 2048 px frames at high (1,120)",
        ),
        RenderProfile(
            "qwen-28", "qwen-28", _square(1092, 868, 644, 448), 16, 16, "2026-12-01",
            "28 px per token; Qwen reads 14 px hex (pxpipe eval/qwen-profile)",
        ),
        RenderProfile(
            "qwen-32", "qwen-32", _square(1248, 992, 736, 512), 16, 16, "2026-12-01",
            "32 px per token (Qwen3-VL); Qwen reads 14 px hex (pxpipe eval/qwen-profile)",
        ),
    )
}  # fmt: skip
"""The render profile table, keyed by name; each provider formula has the row of the same name."""


def profile_for(formula: str) -> RenderProfile:
    """The table's profile for a provider image formula (DeepSeek-OCR's for a formula without a row)."""
    return PROFILES.get(formula, PROFILES["deepseek-ocr"])


def load_profile(value: str | Mapping[str, Any], *, base: RenderProfile) -> RenderProfile:
    """A profile from a config value: a table name, a profile file, or overrides of ``base``.

    Args:
        value: A name in :data:`PROFILES`; a path to a JSON profile file (``.json``); or a mapping of
            fields to replace in ``base`` (a full description works too), also as a JSON object string.
        base: The provider's own profile.

    Raises:
        ConfigError: For an unknown name, an unreadable file, or an invalid profile.
    """
    if isinstance(value, Mapping):
        return base.overridden(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"profile must be a name, a .json file or a dict of fields; got {value!r}")
    if value in PROFILES:
        return PROFILES[value]
    if value.lstrip().startswith("{"):  # overrides written as JSON (the CLI's --profile '{"body_px": 18}')
        try:
            changes = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"profile overrides are not valid JSON: {exc}") from None
        return (
            load_profile(changes, base=base) if isinstance(changes, Mapping) else load_profile("", base=base)
        )
    if value.endswith(".json"):
        path = Path(value)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the profile file {path}: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"the profile file {path} must hold a JSON object")
        return base.overridden(data)
    raise ConfigError(f"unknown profile {value!r}: use one of {', '.join(PROFILES)}, a .json file, or a dict")
