"""DeepSeek-OCR's token arithmetic: the ``<image>`` token id, and what a view costs in vision tokens and
language-model positions.

| rung      | page px | vision tokens | positions in the LM sequence |
|-----------|---------|---------------|------------------------------|
| large     | 1280    | 400           | 421                          |
| base      | 1024    | 256           | 273                          |
| small     | 640     | 100           | 111                          |
| tiny      | 512     | 64            | 73                           |
| forgotten | -       | 0             | 0                            |

A view of side N is a g x g grid of vision tokens (g = N / 64, :data:`optical_memory.ladder.TOKEN_PX`),
as the paper counts them. The language model sees each grid row followed by a learned newline embedding,
then one view separator: g * (g + 1) + 1 positions, each holding the ``<image>`` token (id 128815) in the
input ids. Gundam mode (for images larger than a page) stitches w x h tiles of 640 px into one
(10h) x (10w) grid with a newline per row, followed by the 1024 px global view and the separator:
10h * (10w + 1) + 273 positions, 100 * w * h + 256 nominal tokens (an untiled image is the global view
alone). Sizes and tile grids are the geometry of :mod:`optical_memory.ladder`, the one module this one
imports, so the ladder's users, the encoders, the readers and the provider table all count alike.

Sources: DeepSeek-OCR (arXiv 2510.18234) Table 1; HF ``modeling_deepseekocr.py`` (``image_newline``,
``view_seperator``, local tiles before the global view); the checkpoint's ``tokenizer.json``
(``<image>``).
"""

from __future__ import annotations

from optical_memory.ladder import (
    GUNDAM_GLOBAL_PX,
    GUNDAM_TILE_PX,
    TOKEN_PX,
    Rung,
    as_rung,
    gundam_grid,
    rung_for_size,
    spec,
)

IMAGE_TOKEN_ID = 128815
"""The id of ``<image>``: every image position of the input ids holds it."""


def _rows(rows: int, cols: int) -> int:
    """Positions of a token grid with a newline after each row."""
    return rows * (cols + 1)


def view_vision_tokens(size: int) -> int:
    """Nominal vision tokens of a square view of side ``size``: (size / 64) squared."""
    grid = size // TOKEN_PX
    return grid * grid


def view_positions(size: int) -> int:
    """Language-model positions of a square view of side ``size``: g * (g + 1) + 1 for a g x g grid."""
    grid = size // TOKEN_PX
    return _rows(grid, grid) + 1  # the view separator


def vision_tokens(rung: Rung | str) -> int:
    """Nominal vision tokens of a page at ``rung`` (0 for forgotten).

    Raises:
        ConfigError: For an unknown rung name.
    """
    r = as_rung(rung)
    return 0 if r is Rung.FORGOTTEN else view_vision_tokens(spec(r).size)


def positions(rung: Rung | str) -> int:
    """Language-model positions a page at ``rung`` takes (0 for forgotten).

    Raises:
        ConfigError: For an unknown rung name.
    """
    r = as_rung(rung)
    return 0 if r is Rung.FORGOTTEN else view_positions(spec(r).size)


def gundam_vision_tokens(w_tiles: int, h_tiles: int) -> int:
    """Nominal vision tokens of a Gundam image cut into ``w_tiles`` x ``h_tiles`` tiles."""
    tiles = w_tiles * h_tiles
    local = 0 if tiles <= 1 else tiles * view_vision_tokens(GUNDAM_TILE_PX)
    return local + view_vision_tokens(GUNDAM_GLOBAL_PX)


def gundam_positions(w_tiles: int, h_tiles: int) -> int:
    """Positions of a Gundam image: 10h(10w + 1) + 273, or 273 when it is not tiled."""
    whole = view_positions(GUNDAM_GLOBAL_PX)
    if w_tiles * h_tiles <= 1:
        return whole
    grid = GUNDAM_TILE_PX // TOKEN_PX
    return _rows(grid * h_tiles, grid * w_tiles) + whole


def deepseek_ocr_tokens(width: int, height: int, detail: str | None = None) -> int:
    """Language-model positions DeepSeek-OCR uses for an image of this size (the provider table's formula).

    A square image at a rung's size uses that native mode; anything else goes through Gundam tiling
    (a 1024 px global view, plus 640 px tiles when a side exceeds 640 px). ``detail`` is ignored.

    Raises:
        InputError: For a non-positive size.
    """
    if width == height and (rung := rung_for_size(width)) is not None:
        return positions(rung)
    return gundam_positions(*gundam_grid(width, height))
