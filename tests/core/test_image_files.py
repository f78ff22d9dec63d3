"""Opening an image file a user gives: bounded in bytes, pixels and formats, one clear error otherwise."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from optical_memory import images
from optical_memory.errors import InputError
from optical_memory.images import PAGE_MAX_PIXELS, encode_png, open_image_file


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` and which holds no pixels at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _page(path: Path, size: tuple[int, int] = (640, 640)) -> Path:
    image = Image.new("L", size, 255)
    image.paste(0, (10, 10, 200, 40))
    path.write_bytes(encode_png(image))
    return path


def test_a_page_file_opens_with_its_pixels(tmp_path: Path) -> None:
    path = _page(tmp_path / "page.png")
    image = open_image_file(path)
    assert image.size == (640, 640) and image.getpixel((20, 20)) == 0
    jpeg = tmp_path / "page.jpg"
    image.save(jpeg, format="JPEG")
    assert open_image_file(jpeg).size == (640, 640)


def test_missing_and_non_image_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such image file"):
        open_image_file(tmp_path / "nope.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match=r"cannot read .*notes\.png as an image: not a PNG, JPEG"):
        open_image_file(text)
    # formats outside IMAGE_FORMATS are never tried (EPS would start Ghostscript)
    eps = tmp_path / "page.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(InputError, match=r"cannot read .*page\.eps as an image"):
        open_image_file(eps)


def test_truncated_files_are_input_errors(tmp_path: Path) -> None:
    whole = _page(tmp_path / "page.png").read_bytes()
    for cut in (8, 40, len(whole) // 2, len(whole) * 3 // 4):
        path = tmp_path / f"cut{cut}.png"
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError, match=rf"cut{cut}\.png"):
            open_image_file(path)


@pytest.mark.parametrize(
    ("side", "message"),
    [
        (5_001, r"refusing to decode a 5001x5001 image \(over 25,000,000 pixels, the cap .*PAGE_MAX_PIXELS"),
        (10_000, "refusing to decode a decompression bomb"),  # over Pillow's warning limit
        (100_000, "refusing to decode a decompression bomb"),  # over Pillow's error limit
    ],
)
def test_bombs_are_refused_before_decoding(tmp_path: Path, side: int, message: str) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(InputError, match=message) as info:
        open_image_file(path)
    assert str(path) in str(info.value)
    assert PAGE_MAX_PIXELS == 5_000 * 5_000


def test_caps_can_be_set_per_call_or_per_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _page(tmp_path / "page.png")
    with pytest.raises(InputError, match="over 100 pixels"):
        open_image_file(path, max_pixels=100)
    with pytest.raises(InputError, match=r"larger than 100 bytes.*MAX_IMAGE_FILE_BYTES"):
        open_image_file(path, max_bytes=100)
    monkeypatch.setattr(images, "MAX_IMAGE_FILE_BYTES", 100)
    with pytest.raises(InputError, match="larger than 100 bytes"):
        open_image_file(path)
    monkeypatch.setattr(images, "MAX_IMAGE_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(images, "PAGE_MAX_PIXELS", 640 * 640 - 1)
    with pytest.raises(InputError, match="640x640"):
        open_image_file(path)
