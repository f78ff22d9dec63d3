"""Downsampling, deterministic PNG bytes and refusing decompression bombs."""

import io
import struct
import zlib

import pytest
from PIL import Image

from optical_memory.errors import InputError
from optical_memory.images import decode_png, downsample, encode_png


def page(size=64):
    img = Image.new("L", (size, size), 255)
    img.paste(0, (8, 8, 40, 20))
    return img


def test_downsample_sizes_and_refuses_enlarging():
    assert downsample(page(1280), 512).size == (512, 512)
    assert downsample(page(64), 64).tobytes() == page(64).tobytes()
    with pytest.raises(InputError, match="larger"):
        downsample(page(64), 128)


def test_png_round_trip_is_deterministic():
    a, b = encode_png(page()), encode_png(page())
    assert a == b
    assert decode_png(a).tobytes() == page().tobytes()


def _png_header_only(width, height):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_decode_refuses_bombs_before_decoding():
    with pytest.raises(InputError, match="refusing to decode a 9000x9000"):
        decode_png(_png_header_only(9000, 9000))
    with pytest.raises(InputError, match="refusing to decode a decompression bomb"):
        decode_png(_png_header_only(100_000, 100_000))
    with pytest.raises(InputError, match="refusing"):
        decode_png(encode_png(page(64)), max_pixels=100)


def test_decode_garbage_is_input_error():
    with pytest.raises(InputError, match="cannot decode"):
        decode_png(b"not a png")
    buf = io.BytesIO()
    page().save(buf, "PNG")
    with pytest.raises(InputError):
        decode_png(buf.getvalue()[:40])
