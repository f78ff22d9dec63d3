"""DeepSeek-OCR image preprocessing in Pillow and torch (no torchvision).

What DeepSeek-OCR's ``infer()`` does before the DeepEncoder (HF ``modeling_deepseekocr.py``; vLLM
``process/image_process.py`` agrees except for its 6-tile limit), reproduced bit for bit:

- every image: EXIF orientation applied, converted to RGB, then ``ToTensor`` ([0, 1], float32) and
  ``Normalize(mean=0.5, std=0.5)``, so pixels lie in [-1, 1];
- Tiny (512) and Small (640): a direct resize to the square (aspect ratio not kept; Pillow's default
  bicubic filter);
- Base (1024) and Large (1280): ``ImageOps.pad`` to the square, aspect ratio kept, centred on grey
  (127, 127, 127) = int(0.5 * 255), which normalises to -1/255 rather than 0;
- Gundam: the tile grid of :func:`optical_memory.ladder.gundam_grid` (2 to 9 tiles by default; none when
  the image fits in 640 x 640), the whole image resized to (640 w, 640 h) and cut into 640 px tiles row by
  row (left to right, top to bottom), and a global view padded to 1024 as in Base.

The tensors match what ``UnlimitedOcrModel.get_image_features`` takes: ``pixel_values`` (B, 3, S, S) for the
global views, ``pixel_values_local`` (all tiles, 3, 640, 640), ``num_local_patches`` and ``patches_grid``
(``[columns, rows]`` per image, width first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from optical_memory.errors import ConfigError, InputError, MissingDependencyError
from optical_memory.ladder import (
    GUNDAM_GLOBAL_PX,
    GUNDAM_MAX_TILES,
    GUNDAM_MIN_TILES,
    GUNDAM_TILE_PX,
    Rung,
    gundam_grid,
    spec,
)

try:
    import torch
except ImportError as exc:  # the package imports this module lazily, from the DeepSeek encoder only
    raise MissingDependencyError("torch", "model", "DeepSeek-OCR preprocessing") from exc

GREY = (127, 127, 127)  # int(0.5 * 255): DeepSeek-OCR pads with the normalisation mean


@dataclass(frozen=True, slots=True)
class GundamInput:
    """One image prepared for Gundam mode.

    Pixels are uint8 RGB; :func:`normalize_bytes` turns them into model input where the model runs.

    Attributes:
        global_view: (3, 1024, 1024) pixels of the whole image padded on grey.
        tiles: (w * h, 3, 640, 640) tiles in row-major order, or (0, 3, 640, 640) if not tiled.
        grid: ``(columns, rows)`` of the tile grid; (1, 1) when the image is not tiled.
    """

    global_view: torch.Tensor
    tiles: torch.Tensor
    grid: tuple[int, int]


def to_rgb(image: Image.Image) -> Image.Image:
    """The image upright (EXIF orientation) and in RGB, as DeepSeek-OCR's ``load_image`` gives it.

    Raises:
        InputError: If ``image`` is not a PIL image or has no pixels.
    """
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a PIL image, got {type(image).__name__}")
    if image.width <= 0 or image.height <= 0:
        raise InputError(f"image has no pixels ({image.width}x{image.height})")
    if image.getexif().get(0x0112, 1) != 1:  # Orientation tag other than 'normal'
        image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def to_bytes(image: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8 RGB pixels of the image (upright, RGB)."""
    rgb = np.array(to_rgb(image), dtype=np.uint8)  # (H, W, 3), a writable copy
    return torch.from_numpy(rgb).permute(2, 0, 1)


def normalize_bytes(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any shape, any device) to float32 in [-1, 1]: torchvision's ``ToTensor`` ([0, 1])
    then ``Normalize(mean=0.5, std=0.5)``, the same float32 operations in the same order."""
    return pixels.float().div_(255.0).sub_(0.5).div_(0.5)


def normalize(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 pixels in [-1, 1] of the image."""
    return normalize_bytes(to_bytes(image))


def fit_page(image: Image.Image, size: int, *, pad: bool) -> Image.Image:
    """The image as a ``size`` square: padded on grey keeping its aspect (``pad``) or resized to it."""
    rgb = to_rgb(image)
    if pad:
        return ImageOps.pad(rgb, (size, size), color=GREY)
    return rgb if rgb.size == (size, size) else rgb.resize((size, size))


def prepare_page(image: Image.Image, rung: Rung | str) -> torch.Tensor:
    """(3, S, S) model input for a page at a native rung (Tiny/Small resize, Base/Large pad).

    Raises:
        ConfigError: For an unknown rung or ``forgotten``.
        InputError: If ``image`` is not a usable PIL image.
    """
    rs = spec(rung)
    return normalize(fit_page(image, rs.size, pad=not rs.resize))


def page_bytes(images: Sequence[Image.Image], rung: Rung | str) -> torch.Tensor:
    """(B, 3, S, S) uint8 pages fitted to a native rung, to normalise where the model runs.

    Raises:
        ConfigError: For an unknown rung or ``forgotten``.
        InputError: If an image is not a usable PIL image.
    """
    rs = spec(rung)
    return torch.stack([to_bytes(fit_page(im, rs.size, pad=not rs.resize)) for im in images])


def prepare_pages(images: Sequence[Image.Image], rung: Rung | str) -> torch.Tensor:
    """(B, 3, S, S) float32 model input for pages at a native rung.

    Raises:
        ConfigError: For an unknown rung or ``forgotten``.
        InputError: If an image is not a usable PIL image.
    """
    return normalize_bytes(page_bytes(images, rung))


def gundam_tiles(image: Image.Image, grid: tuple[int, int]) -> list[Image.Image]:
    """The 640 px tiles of ``image`` for a ``(columns, rows)`` grid, row by row."""
    cols, rows = grid
    whole = to_rgb(image).resize((GUNDAM_TILE_PX * cols, GUNDAM_TILE_PX * rows))
    t = GUNDAM_TILE_PX
    return [whole.crop((c * t, r * t, (c + 1) * t, (r + 1) * t)) for r in range(rows) for c in range(cols)]


def prepare_gundam(
    image: Image.Image,
    *,
    min_tiles: int = GUNDAM_MIN_TILES,
    max_tiles: int = GUNDAM_MAX_TILES,
) -> GundamInput:
    """Gundam-mode input for one image: 640 px tiles (if larger than one tile) and a 1024 px global view.

    Raises:
        ConfigError: If ``min_tiles``/``max_tiles`` do not allow at least a 2-tile grid.
        InputError: If ``image`` is not a usable PIL image.
    """
    if not 2 <= min_tiles <= max_tiles:
        raise ConfigError(f"Gundam needs 2 <= min_tiles <= max_tiles, got {min_tiles} and {max_tiles}")
    rgb = to_rgb(image)
    grid = gundam_grid(rgb.width, rgb.height, min_tiles=min_tiles, max_tiles=max_tiles)
    global_view = to_bytes(fit_page(rgb, GUNDAM_GLOBAL_PX, pad=True))
    if grid == (1, 1):
        tiles = torch.empty((0, 3, GUNDAM_TILE_PX, GUNDAM_TILE_PX), dtype=torch.uint8)
    else:
        tiles = torch.stack([to_bytes(tile) for tile in gundam_tiles(rgb, grid)])
    return GundamInput(global_view, tiles, grid)
