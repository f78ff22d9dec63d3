"""Page image helpers: downsampling down the ladder, deterministic PNG bytes, and safe decoding.

Pages are rendered once at the top rung and every lower rung is made by downsampling that image, as the
DeepSeek-OCR paper describes for its optical-forgetting sketch. Stored pages are PNG bytes; decoding them
refuses absurd sizes so a corrupted or hostile store cannot exhaust memory (a decompression bomb). Image
files a user gives are opened through :func:`open_image_file`, which caps the file size and the pixels too.

A stored page keeps fewer gray levels than its render (:func:`encode_png` with ``levels=16`` or ``6``,
evenly spaced, black and white among them, in a 4-bit grayscale PNG): antialiased text needs a few levels
to stay legible, not 256, and such a PNG is a quarter to a half of the 8-bit one's bytes, in the store and in
every request that sends it. It still decodes to a mode ``L`` image (grayscale, not a palette), whose
pixels are :func:`quantize_gray` of the page.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from optical_memory.errors import InputError

MAX_PIXELS = 64_000_000
"""Largest image :func:`decode_png` accepts (about 8000 x 8000), in pixels; also the cap on a pasted image
in a conversation file."""

PAGE_MAX_PIXELS = 25_000_000
"""Largest image :func:`open_image_file` accepts by default (5000 x 5000), in pixels: a page of any render
profile (2048 px at most), a screenshot, or a 300 dpi scan of an A4 page fits."""

MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
"""Largest image file :func:`open_image_file` reads, in bytes."""

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
"""The formats decoded; Pillow's other plugins (some of which start external programs) are never tried."""

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error)
"""What Pillow raises for truncated or malformed data (UnidentifiedImageError is an OSError)."""

GRAY_LEVELS = (4, 6, 16, 256)
"""The gray levels :func:`encode_png` keeps: 4 (a 2-bit grayscale PNG), 6 or 16 (4-bit), or all 256 (8-bit).
Evenly spaced levels that a PNG grayscale bit depth holds exactly, so a page decodes to mode ``L`` (PNG's
1-bit gray is left out: Pillow decodes it to mode ``1``)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEFLATE_LEVEL = 6
"""zlib level of the low-depth writer: level 9 saves under 2% more on pages and takes about 6x as long."""


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


def _check_levels(levels: int) -> None:
    if levels not in GRAY_LEVELS:
        raise InputError(f"gray levels must be one of {', '.join(map(str, GRAY_LEVELS))}; got {levels!r}")


def _png_bits(levels: int) -> int:
    """The smallest PNG grayscale bit depth whose values hold ``levels`` evenly spaced levels exactly."""
    return 2 if levels == 4 else 4 if levels in (6, 16) else 8


@functools.cache
def _level_table(levels: int, scale: int = 1) -> list[int]:
    """Per 8-bit value: its nearest of ``levels`` evenly spaced levels, as the 8-bit value over ``scale``."""
    step = 255 // (levels - 1)  # 85, 51, 17 or 1: every level is a whole 8-bit value
    return [(v + step // 2) // step * step // scale for v in range(256)]


def quantize_gray(image: Image.Image, levels: int) -> Image.Image:
    """A grayscale image with ``levels`` evenly spaced gray levels (0 and 255 among them), each pixel rounded.

    These are exactly the pixels that :func:`encode_png` with the same ``levels`` stores (and that
    :func:`decode_png` gives back). Quantizing twice changes nothing; ``levels=256`` returns the image.

    Raises:
        InputError: If ``levels`` is not in :data:`GRAY_LEVELS`, or the image is not mode ``L`` when
            ``levels < 256``.
    """
    _check_levels(levels)
    if levels == 256:
        return image
    _check_gray(image)
    return image.point(_level_table(levels))


def _check_gray(image: Image.Image) -> None:
    if image.mode != "L":
        raise InputError(f"only grayscale (mode L) images take fewer gray levels; got mode {image.mode}")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_low_depth(image: Image.Image, levels: int) -> bytes:
    """A grayscale PNG of 2 or 4 bits a pixel: rows packed most significant bits first, filter None.

    Written here rather than by Pillow, whose PNG writer takes a bit depth for mode ``L`` only in recent
    releases; filter None also compresses packed text pages better than Pillow's adaptive filters.
    """
    bits = _png_bits(levels)
    scale = 255 // ((1 << bits) - 1)  # a level's 8-bit value over this is its PNG sample value
    samples = np.asarray(image.point(_level_table(levels, scale)), dtype=np.uint8)
    height, width = samples.shape
    per_byte = 8 // bits
    samples = np.pad(samples, ((0, 0), (0, -width % per_byte)))
    groups = samples.reshape(height, -1, per_byte)
    packed = np.zeros(groups.shape[:2], dtype=np.uint8)
    for k in range(per_byte):
        packed |= groups[:, :, k] << (8 - bits * (k + 1))
    rows = np.hstack([np.zeros((height, 1), dtype=np.uint8), packed])  # filter byte 0 (None) per row
    header = struct.pack(">IIBBBBB", width, height, bits, 0, 0, 0, 0)  # color type 0: grayscale
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), _DEFLATE_LEVEL))
        + _chunk(b"IEND", b"")
    )


def encode_png(image: Image.Image, *, levels: int = 256) -> bytes:
    """PNG bytes of an image, identical for identical pixels (no timestamps or text chunks).

    Args:
        image: The image (any mode PNG holds when ``levels`` is 256; mode ``L`` otherwise).
        levels: Gray levels kept. 256 writes the image as it is; 4 (a 2-bit PNG), 6 or 16 (4-bit) write a
            grayscale PNG holding :func:`quantize_gray` of the image, as stored pages are.

    Raises:
        InputError: If ``levels`` is not in :data:`GRAY_LEVELS`, or the image is not mode ``L`` when
            ``levels < 256``.
    """
    _check_levels(levels)
    if levels < 256:
        _check_gray(image)
        return _encode_low_depth(image, levels)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode image bytes, refusing images larger than ``max_pixels``.

    The size is read from the header before any pixel is decoded.

    Raises:
        InputError: If the bytes are not an image or the image is too large.
    """
    return _decode(data, max_pixels, failure="cannot decode image data", cap_name="")


def open_image_file(
    path: str | Path, *, max_pixels: int | None = None, max_bytes: int | None = None
) -> Image.Image:
    """Decode an image file a user gives (a page to read back, ...), safely.

    The file is read only up to ``max_bytes``, only the formats in :data:`IMAGE_FORMATS` are tried, and
    the size in the header is checked against ``max_pixels`` before any pixel is decoded, so a huge,
    truncated or crafted file fails with one clear line instead of a traceback or hundreds of MB of memory.

    Args:
        path: The image file.
        max_pixels: Largest width x height accepted (default :data:`PAGE_MAX_PIXELS`, read at each call).
        max_bytes: Largest file accepted (default :data:`MAX_IMAGE_FILE_BYTES`, read at each call).

    Returns:
        The decoded image (pixels loaded, the file closed).

    Raises:
        InputError: If the file is missing or unreadable, over a cap, or not a readable image; the message
            names the file.
    """
    file = Path(path)
    pixels = PAGE_MAX_PIXELS if max_pixels is None else max_pixels
    cap = MAX_IMAGE_FILE_BYTES if max_bytes is None else max_bytes
    if not file.is_file():
        raise InputError(f"no such image file: {file}")
    try:
        with file.open("rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise InputError(
            f"{file} is larger than {cap:,} bytes, the cap on an image file "
            "(optical_memory.images.MAX_IMAGE_FILE_BYTES): is it really a page?"
        )
    return _decode(
        data,
        pixels,
        failure=f"cannot read {file} as an image",
        cap_name="optical_memory.images.PAGE_MAX_PIXELS",
        where=f"{file}: ",
    )


def _decode(data: bytes, max_pixels: int, *, failure: str, cap_name: str, where: str = "") -> Image.Image:
    """Decode ``data`` (a format of :data:`IMAGE_FORMATS`), refusing more than ``max_pixels`` before decoding.

    Raises:
        InputError: ``where`` + what went wrong, for a bomb; ``failure`` + the reason, for unreadable data.
    """
    cap = f"{max_pixels:,} pixels" + (f", the cap {cap_name}" if cap_name else "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's complaints about corrupt metadata: errors below say it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(
                    f"{where}refusing to decode a {width}x{height} image (over {cap}): "
                    "the data is corrupt or not a page"
                )
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{where}refusing to decode a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise InputError(
            f"{failure}: not a {', '.join(IMAGE_FORMATS[:-1])} or {IMAGE_FORMATS[-1]} image"
        ) from None
    except _DECODE_ERRORS as exc:
        raise InputError(f"{failure}: {exc or type(exc).__name__}") from None
    return image
