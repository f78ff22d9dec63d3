"""Page image helpers: downsampling down the ladder, deterministic PNG bytes, and safe decoding.

Pages are rendered once at the top rung and every lower rung is made by downsampling that image, as the
DeepSeek-OCR paper describes for its optical-forgetting sketch. Stored pages are PNG bytes; decoding them
refuses absurd sizes so a corrupted or hostile store cannot exhaust memory (a decompression bomb).
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from optical_memory.errors import InputError

MAX_PIXELS = 64_000_000
"""Largest image :func:`decode_png` accepts (about 8000 x 8000), in pixels."""


def downsample(image: Image.Image, width: int, height: int | None = None) -> Image.Image:
    """Resize a page to ``width`` x ``height`` (square when ``height`` is None) with a Lanczos filter.

    A copy is returned when the page already has that size.

    Raises:
        InputError: If a side is not positive or would enlarge the page.
    """
    height = width if height is None else height
    if width <= 0 or height <= 0:
        raise InputError(f"page size must be positive, got {width}x{height}")
    if width > image.width or height > image.height:
        raise InputError(
            f"cannot downsample a {image.width}x{image.height} page to a larger {width}x{height} page"
        )
    if image.size == (width, height):
        return image.copy()
    return image.resize((width, height), Image.Resampling.LANCZOS)


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of an image, identical for identical pixels (no timestamps or text chunks)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode image bytes, refusing images larger than ``max_pixels``.

    The size is read from the header before any pixel is decoded.

    Raises:
        InputError: If the bytes are not an image or the image is too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(
                    f"refusing to decode a {width}x{height} image (over {max_pixels:,} pixels): "
                    "the data is corrupt or not a page"
                )
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"refusing to decode a decompression bomb: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot decode image data: {exc}") from exc
    return image
