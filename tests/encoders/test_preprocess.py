"""DeepSeek-OCR preprocessing in Pillow + torch: resize or grey pad, [-1, 1] pixels, Gundam tiles."""

from __future__ import annotations

import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from optical_memory.encoders.preprocess import (  # noqa: E402
    GREY,
    fit_page,
    gundam_tiles,
    normalize,
    normalize_bytes,
    page_bytes,
    prepare_gundam,
    prepare_page,
    prepare_pages,
    to_rgb,
)
from optical_memory.errors import ConfigError, InputError  # noqa: E402
from tests.encoders.tiny import noise_image  # noqa: E402


def test_normalize_is_totensor_then_half_mean_half_std():
    image = Image.new("RGB", (3, 2))
    image.putdata([(0, 0, 0), (255, 255, 255), (127, 127, 127), (10, 20, 30), (1, 2, 3), (254, 128, 64)])
    pixels = normalize(image)
    assert pixels.shape == (3, 2, 3) and pixels.dtype == torch.float32
    expected = (torch.tensor([[0.0, 255.0, 127.0], [10.0, 1.0, 254.0]]) / 255.0 - 0.5) / 0.5
    torch.testing.assert_close(pixels[0], expected, rtol=0, atol=0)
    assert pixels[0, 0, 0] == -1.0 and pixels[0, 0, 1] == 1.0


def test_grey_padding_normalises_just_below_zero():
    assert GREY == (127, 127, 127)
    assert normalize(Image.new("RGB", (1, 1), GREY))[0, 0, 0].item() == pytest.approx(-1 / 255)


@pytest.mark.parametrize(("rung", "size"), [("tiny", 512), ("small", 640)])
def test_tiny_and_small_resize_to_the_square(rung, size):
    image = noise_image(800, 400)
    page = fit_page(image, size, pad=False)
    assert page.size == (size, size)
    torch.testing.assert_close(
        prepare_page(image, rung), normalize(image.resize((size, size))), rtol=0, atol=0
    )


@pytest.mark.parametrize(("rung", "size"), [("base", 1024), ("large", 1280)])
def test_base_and_large_pad_with_grey_keeping_the_aspect(rung, size):
    image = Image.new("RGB", (400, 800), (255, 0, 0))  # tall: grey bars left and right
    pixels = prepare_page(image, rung)
    assert pixels.shape == (3, size, size)
    grey = normalize(Image.new("RGB", (1, 1), GREY))[0, 0, 0]
    assert torch.all(pixels[:, :, : size // 8] == grey)
    assert torch.all(pixels[:, :, -size // 8 :] == grey)
    torch.testing.assert_close(pixels[:, size // 2, size // 2], torch.tensor([1.0, -1.0, -1.0]))


def test_any_mode_becomes_rgb_and_exif_orientation_is_applied():
    assert to_rgb(Image.new("L", (4, 4), 9)).mode == "RGB"
    assert to_rgb(Image.new("RGBA", (4, 4), (1, 2, 3, 0))).getpixel((0, 0)) == (1, 2, 3)
    rotated = Image.new("RGB", (30, 10))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated.info["exif"] = exif.tobytes()
    rotated = Image.open(_png_roundtrip(rotated, exif))
    assert to_rgb(rotated).size == (10, 30)


def _png_roundtrip(image: Image.Image, exif: Image.Exif):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    buffer.seek(0)
    return buffer


def test_bad_inputs_are_refused():
    with pytest.raises(InputError):
        prepare_page("not an image", "tiny")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        prepare_page(noise_image(8, 8), "forgotten")
    with pytest.raises(ConfigError):
        prepare_gundam(noise_image(8, 8), max_tiles=1)


def test_batch_stacks_pages():
    images = [noise_image(100, 200, seed=s) for s in range(3)]
    pixels = prepare_pages(images, "small")
    assert pixels.shape == (3, 3, 640, 640) and pixels.dtype == torch.float32
    raw = page_bytes(images, "small")
    assert raw.dtype == torch.uint8
    torch.testing.assert_close(normalize_bytes(raw), pixels, rtol=0, atol=0)
    torch.testing.assert_close(pixels[1], prepare_page(images[1], "small"), rtol=0, atol=0)


def _grid_image(cols: int, rows: int) -> Image.Image:
    """An image whose 640 px tiles are flat colours numbered row-major in the red channel."""
    image = Image.new("RGB", (640 * cols, 640 * rows))
    for r in range(rows):
        for c in range(cols):
            image.paste((10 * (r * cols + c), 200, 50), (640 * c, 640 * r, 640 * (c + 1), 640 * (r + 1)))
    return image


@pytest.mark.parametrize(("cols", "rows"), [(3, 2), (2, 3)])
def test_gundam_tiles_run_row_major_width_first(cols, rows):
    image = _grid_image(cols, rows)
    prepared = prepare_gundam(image)
    assert prepared.grid == (cols, rows)
    assert prepared.tiles.shape == (cols * rows, 3, 640, 640) and prepared.tiles.dtype == torch.uint8
    reds = [int(t[0, 320, 320]) for t in prepared.tiles]
    assert reds == [10 * i for i in range(cols * rows)]
    assert prepared.global_view.shape == (3, 1024, 1024)
    assert [tile.size for tile in gundam_tiles(image, (cols, rows))] == [(640, 640)] * (cols * rows)


def test_gundam_small_image_has_no_tiles_and_a_padded_global_view():
    prepared = prepare_gundam(noise_image(600, 300))
    assert prepared.grid == (1, 1) and prepared.tiles.shape == (0, 3, 640, 640)
    torch.testing.assert_close(
        normalize_bytes(prepared.global_view), prepare_page(noise_image(600, 300), "base"), rtol=0, atol=0
    )


def test_gundam_max_tiles_is_configurable():
    wide = noise_image(640 * 9, 640)
    assert prepare_gundam(wide).grid == (9, 1)
    assert prepare_gundam(wide, max_tiles=6).grid == (6, 1)
