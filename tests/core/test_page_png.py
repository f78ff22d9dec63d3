"""Stored pages keep 16 or 6 gray levels: 4-bit grayscale PNGs that decode to L, stay legible, are smaller."""

from __future__ import annotations

import importlib.util
import io
import struct

import numpy as np
import pytest
from PIL import Image

from optical_memory.decay import COARSE_LEVELS, FINE_LEVELS, keep_levels, page_levels, page_png
from optical_memory.errors import InputError
from optical_memory.images import decode_png, downsample, encode_png, quantize_gray
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.profiles import PROFILES
from optical_memory.renderers import ChatRenderer
from optical_memory.types import RenderedPage, Turn

from ..memory.helpers import turns

PROFILE = PROFILES["deepseek-ocr"]
DEEPSEEK_RUNGS = [rung for rung, _ in PROFILE.rungs]

REALISTIC = [
    Turn("user", "The deploy failed again. Here is the log; can you tell me what broke?"),
    Turn(
        "assistant",
        "The migration step timed out after 300 s while holding a lock on `orders`. Run it again with "
        "`--lock-timeout 30s`, then check request id 7f3a9c21-04be-4d2e-9b1a-5e8f6c0d2a17 in the gateway "
        "logs. The retry budget is 3 attempts at 0.5, 1.5 and 4.5 s.\n\n"
        "```python\ndef retry(fn, attempts=3, base=0.5):\n    for i in range(attempts):\n"
        "        try:\n            return fn()\n        except TimeoutError:\n"
        "            time.sleep(base * 3 ** i)\n    raise RuntimeError('gave up')\n```",
    ),
    Turn("user", "部署在 14:05 UTC 失败，错误码 E4012，重试了 3 次。价格是 ¥1,280.50 吗？"),
    Turn(
        "assistant",
        "Yes: the invoice INV-2024-00831 totals 1,280.50 CNY. Version 2.4.1 ships on Thursday; Priya owns "
        "the changelog and Marcus tags the build at 09:30 UTC. " * 6,
    ),
]


def _chain(top: Image.Image) -> dict[Rung, Image.Image]:
    """A page kept at each rung the way the memory demotes it: one rung at a time, from the kept image."""
    out: dict[Rung, Image.Image] = {}
    current = top
    for rung, shape in PROFILE.rungs:
        current = keep_levels(downsample(current, shape.width, shape.height), page_levels(PROFILE, rung))
        out[rung] = current
    return out


def _bit_depth(png: bytes) -> int:
    assert png[12:16] == b"IHDR"
    depth, color_type = struct.unpack(">BB", png[24:26])
    assert color_type == 0  # grayscale, not a palette
    return depth


def _render(turns_: list[Turn]) -> RenderedPage:
    page = ChatRenderer(PROFILE.style()).render(turns_)[0]
    assert page.image.mode == "L"
    return page


@pytest.fixture(scope="module")
def page() -> RenderedPage:
    return _render(REALISTIC)


@pytest.fixture(scope="module")
def memory() -> OpticalMemory:
    m = OpticalMemory({"recent_turns": 3})
    m.add("You are a careful assistant.", role="system")
    for t in turns(24, words=400):
        m.add(t)
    return m


@pytest.mark.parametrize(("levels", "bits"), [(4, 2), (6, 4), (16, 4)])
def test_quantized_png_round_trips_to_the_same_l_pixels(levels, bits):
    rng = np.random.default_rng(levels)
    for width in (1, 3, 5, 64, 513):
        image = Image.fromarray(rng.integers(0, 256, (7, width), dtype=np.uint8), "L")
        png = encode_png(image, levels=levels)
        assert _bit_depth(png) == bits
        decoded = decode_png(png)
        assert decoded.mode == "L" and decoded.size == image.size
        assert decoded.tobytes() == quantize_gray(image, levels).tobytes()
    ramp = Image.frombytes("L", (256, 1), bytes(range(256)))
    kept = quantize_gray(ramp, levels).tobytes()
    step = 255 // (levels - 1)
    assert set(kept) == set(range(0, 256, step))  # evenly spaced, black and white kept
    assert max(abs(a - b) for a, b in zip(kept, range(256), strict=True)) <= step // 2  # the nearest


@pytest.mark.parametrize("levels", [FINE_LEVELS, COARSE_LEVELS])
def test_quantizing_twice_changes_nothing(page, levels):
    once = quantize_gray(page.image, levels)
    assert quantize_gray(once, levels).tobytes() == once.tobytes()
    assert encode_png(once, levels=levels) == encode_png(page.image, levels=levels)


def test_page_png_is_deterministic(page):
    a, b = page_png(page.image, FINE_LEVELS), page_png(page.image.copy(), FINE_LEVELS)
    assert a[1] == b[1]
    assert a[0].tobytes() == b[0].tobytes() == decode_png(a[1]).tobytes()


def test_bad_levels_and_modes_are_refused():
    with pytest.raises(InputError, match="gray levels must be one of 4, 6, 16, 256"):
        encode_png(Image.new("L", (4, 4)), levels=8)
    with pytest.raises(InputError, match="mode L"):
        encode_png(Image.new("RGB", (4, 4)), levels=16)
    rgb = Image.new("RGB", (4, 4), (10, 20, 30))
    kept, png = page_png(rgb, FINE_LEVELS)  # not a rendered page: stored as it is
    assert kept is rgb and decode_png(png).mode == "RGB"


def test_only_the_last_rung_with_large_enough_glyphs_keeps_6_levels():
    # DeepSeek-OCR: 22 px prose at 1280 px, 8.8 px at its 512 px Tiny; upper rungs feed the lower ones
    assert [page_levels(PROFILE, r) for r in DEEPSEEK_RUNGS] == [FINE_LEVELS] * 3 + [COARSE_LEVELS]
    anthropic = PROFILES["anthropic"]  # 16 px at 1092 px: 6.6 px glyphs at its 448 px Tiny
    assert {page_levels(anthropic, r) for r, _ in anthropic.rungs} == {FINE_LEVELS}
    gemini = PROFILES["gemini-2"]  # one rung, 11 px glyphs
    assert page_levels(gemini, Rung.LARGE) == page_levels(gemini, Rung.TINY) == COARSE_LEVELS


def test_kept_pages_stay_close_to_the_8_bit_render_at_every_rung(page):
    kept = _chain(page.image)
    for rung, shape in PROFILE.rungs:
        exact = np.asarray(downsample(page.image, shape.width, shape.height), dtype=np.int16)
        mine = np.asarray(kept[rung], dtype=np.int16)
        assert mine.shape == exact.shape
        diff = np.abs(mine - exact)
        assert diff.mean() < 4.0, (rung, diff.mean())
        dark = exact < 96  # glyph strokes stay dark, paper stays light
        assert (mine[dark] < 128).mean() > 0.99, rung
        assert (mine[exact > 224] > 192).mean() > 0.99, rung


def test_a_realistic_page_takes_far_fewer_png_bytes_at_every_rung(page):
    kept = _chain(page.image)
    for rung, shape in PROFILE.rungs:
        before = len(encode_png(downsample(page.image, shape.width, shape.height)))
        after = len(encode_png(kept[rung], levels=page_levels(PROFILE, rung)))
        most = 0.35 if rung is PROFILE.last else 0.6  # where pages stay: 6 levels, about a quarter
        assert after < most * before, (rung, before, after)


def test_stored_pages_are_4_bit_l_images_of_their_rung_size_and_match_the_cache(memory):
    pages = [p for p in memory.pages() if p.sealed]
    assert {p.rung for p in pages} == set(DEEPSEEK_RUNGS)  # every rung is exercised
    for p in pages:
        png = memory._w.store.page_png(memory._w.sid, p.page_id)
        assert png is not None and _bit_depth(png) == 4
        decoded = decode_png(png)
        shape = PROFILE.shape(p.rung)
        assert decoded.mode == "L" and decoded.size == (shape.width, shape.height)
        assert decoded.tobytes() == memory.page_image(p.page_id).tobytes()  # cached == stored


def test_a_reloaded_memory_sends_the_same_pages(tmp_path):
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"recent_turns": 3}) as m:
        for t in turns(16):
            m.add(t)
        live = m.context(provider="openai:gpt-4o", budget=None).messages
        lower = m.context(provider="openai:gpt-4o", budget=2_000).messages  # pages demoted for the budget
    with OpticalMemory.open(path) as again:
        assert again.context(provider="openai:gpt-4o", budget=None).messages == live
        assert again.context(provider="openai:gpt-4o", budget=2_000).messages == lower


needs_ocr = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the ocr extra (rapidocr, onnxruntime) is not installed",
)


@needs_ocr
@pytest.mark.slow
def test_rapidocr_reads_kept_pages_as_well_as_8_bit_ones():
    from optical_memory.recall import char_accuracy, get_reader

    short = _render([REALISTIC[0], REALISTIC[2]])  # English and Chinese with numbers: a quick read
    truth = short.text.translate(str.maketrans("", "", "↵¶↪↔"))  # the layout's own marks
    reader = get_reader("rapidocr")
    kept = _chain(short.image)
    for rung, shape in PROFILE.rungs[-1:]:  # the smallest glyphs lose the most to fewer gray levels
        exact = downsample(short.image, shape.width, shape.height)
        stored = decode_png(encode_png(kept[rung], levels=page_levels(PROFILE, rung)))
        box = Image.eval(exact, lambda v: 255 - v).getbbox()  # the text, not the blank rest of the page
        exact, stored = exact.crop(box), stored.crop(box)
        before = char_accuracy(truth, reader.read(exact).text)
        after = char_accuracy(truth, reader.read(stored).text)
        assert after >= before - 0.02, (rung, before, after)
        assert after > 0.8, (rung, after)


def test_png_bytes_open_with_plain_pillow_as_grayscale(page):
    png = page_png(page.image, FINE_LEVELS)[1]
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "L" and image.format == "PNG"
