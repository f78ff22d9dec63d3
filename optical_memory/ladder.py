"""The resolution ladder: DeepSeek-OCR's native modes, as rungs a page moves down as it ages.

| rung      | page px | token grid | resize                   |
|-----------|---------|------------|--------------------------|
| large     | 1280    | 20 x 20    | padded to keep the ratio |
| base      | 1024    | 16 x 16    | padded to keep the ratio |
| small     | 640     | 10 x 10    | resized to the square    |
| tiny      | 512     | 8 x 8      | resized to the square    |
| forgotten | -       | -          | -                        |

A view of side N becomes an (N/64) x (N/64) grid of vision tokens (16x16 patches, then a 16x token
compressor). Gundam mode (for images larger than a page) cuts the image into w x h tiles of 640 px plus a
1024 px global view. This module is the geometry only; what a view costs (vision tokens, language-model
positions, the ``<image>`` token id) is :mod:`optical_memory.pricing.deepseek`.

Source: DeepSeek-OCR (arXiv 2510.18234) Table 1 and `modeling_deepseekocr.py` (HF remote code), whose
`dynamic_preprocess` chooses the tile grid reproduced in :func:`gundam_grid`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from optical_memory.errors import ConfigError

PATCH_PX = 16  # SAM patch size
DOWNSAMPLE = 4  # the 16x token compressor: two stride-2 convolutions
TOKEN_PX = PATCH_PX * DOWNSAMPLE
"""Page pixels per side of one vision token, in every DeepSeek-OCR mode (64)."""
GUNDAM_TILE_PX = 640
GUNDAM_GLOBAL_PX = 1024
GUNDAM_MIN_TILES = 2
GUNDAM_MAX_TILES = 9  # HF remote code; vLLM's processor stops at 6


class Rung(enum.StrEnum):
    """A step of the ladder, from sharpest to forgotten."""

    LARGE = "large"
    BASE = "base"
    SMALL = "small"
    TINY = "tiny"
    FORGOTTEN = "forgotten"


@dataclass(frozen=True, slots=True)
class RungSpec:
    """Geometry of one native DeepSeek-OCR mode (its token cost: :mod:`optical_memory.pricing.deepseek`).

    Attributes:
        rung: Which rung this describes.
        size: Side of the square page in pixels.
        grid: Side of the vision-token grid (size / 64).
        resize: True when DeepSeek-OCR resizes the image to the square (Tiny, Small); False when it pads
            it with grey to keep the aspect ratio (Base, Large).
    """

    rung: Rung
    size: int
    grid: int
    resize: bool


def _spec(rung: Rung, size: int, *, resize: bool) -> RungSpec:
    return RungSpec(rung, size, size // TOKEN_PX, resize)


LADDER: tuple[RungSpec, ...] = (
    _spec(Rung.LARGE, 1280, resize=False),
    _spec(Rung.BASE, 1024, resize=False),
    _spec(Rung.SMALL, 640, resize=True),
    _spec(Rung.TINY, 512, resize=True),
)
"""The four visible rungs, sharpest first."""

_BY_RUNG = {spec.rung: spec for spec in LADDER}
ORDER: tuple[Rung, ...] = (*(spec.rung for spec in LADDER), Rung.FORGOTTEN)
_RANKS = {rung: i for i, rung in enumerate(ORDER)}


def as_rung(value: Rung | str) -> Rung:
    """Parse a rung name (case-insensitive).

    Raises:
        ConfigError: If the name is not a rung.
    """
    if isinstance(value, Rung):
        return value
    try:
        return Rung(str(value).strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in ORDER)
        raise ConfigError(f"unknown rung {value!r}: use one of {names}") from None


def spec(rung: Rung | str) -> RungSpec:
    """The geometry of a visible rung.

    Raises:
        ConfigError: For an unknown name or for ``forgotten``, which has no page.
    """
    r = as_rung(rung)
    if r is Rung.FORGOTTEN:
        raise ConfigError("the 'forgotten' rung has no page size or vision tokens")
    return _BY_RUNG[r]


def rank(rung: Rung | str) -> int:
    """0 for the sharpest rung, increasing down the ladder; forgotten is last."""
    return _RANKS[as_rung(rung)]


def sharper(a: Rung | str, b: Rung | str) -> bool:
    """True when rung ``a`` is sharper than rung ``b``."""
    return rank(a) < rank(b)


def below(rung: Rung | str) -> Rung:
    """The next rung down (forgotten stays forgotten)."""
    i = rank(rung)
    return ORDER[min(i + 1, len(ORDER) - 1)]


def rung_for_size(size: int) -> Rung | None:
    """The rung whose page side is ``size`` pixels, if any."""
    return next((s.rung for s in LADDER if s.size == size), None)


# --- Gundam: tiled views for images larger than a page -------------------------------------------------


def gundam_grid(
    width: int,
    height: int,
    *,
    min_tiles: int = GUNDAM_MIN_TILES,
    max_tiles: int = GUNDAM_MAX_TILES,
) -> tuple[int, int]:
    """The tile grid ``(w_tiles, h_tiles)`` DeepSeek-OCR picks for an image, width first.

    An image no larger than one tile in both directions is not tiled (1, 1). Otherwise the candidate
    grids with ``min_tiles <= w * h <= max_tiles`` are tried in order of tile count, and the one whose
    aspect ratio is closest to the image's wins; on an exact tie a later (larger) grid wins when the
    image area exceeds half the grid's pixel area. This is ``dynamic_preprocess`` of the reference code.

    Raises:
        InputError: For a non-positive size.
    """
    from optical_memory.errors import InputError

    if width <= 0 or height <= 0:
        raise InputError(f"image size must be positive, got {width}x{height}")
    if width <= GUNDAM_TILE_PX and height <= GUNDAM_TILE_PX:
        return (1, 1)
    candidates = sorted(
        {
            (i, j)
            for n in range(min_tiles, max_tiles + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if min_tiles <= i * j <= max_tiles
        },
        key=lambda g: g[0] * g[1],
    )
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for i, j in candidates:
        diff = abs(aspect - i / j)
        if diff < best_diff:
            best, best_diff = (i, j), diff
        elif diff == best_diff and area > 0.5 * GUNDAM_TILE_PX * GUNDAM_TILE_PX * i * j:
            best = (i, j)
    return best
