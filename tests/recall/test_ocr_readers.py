"""The CPU OCR readers: rapidocr (reading order, a golden Large page) and tesseract where installed."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from optical_memory.errors import RecallError
from optical_memory.ladder import Rung
from optical_memory.recall import char_accuracy, get_reader
from optical_memory.recall.rapidocr import reading_order
from optical_memory.recall.tesseract import TesseractReader, glyph_px
from optical_memory.renderers import render_turns
from optical_memory.types import RenderedPage, Turn

GOLDEN_TURNS = [
    Turn("user", "Can you remind me what we decided about the release date for version 2.4?"),
    Turn(
        "assistant",
        "We agreed to ship version 2.4 on Thursday, March 12, after the migration tests pass. "
        "Priya owns the changelog and Marcus will tag the build at 09:30 UTC.",
    ),
    Turn("user", "And the rollback plan?"),
    Turn("assistant", "Keep the 2.3.7 images for two weeks; if error rates exceed 0.5% we roll back."),
]

needs_ocr = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the ocr extra (rapidocr, onnxruntime) is not installed",
)


@pytest.fixture(scope="module")
def golden_page() -> RenderedPage:
    pages = render_turns(GOLDEN_TURNS)
    assert len(pages) == 1 and pages[0].size == 1280
    return pages[0]


def test_reading_order_groups_lines_then_sorts_by_x() -> None:
    boxes = [
        (300, 52, 400, 70, "world"),  # same line as "hello", slightly lower, detected first
        (10, 100, 120, 120, "second"),
        (10, 50, 200, 70, "hello"),
        (150, 101, 250, 121, "line"),
    ]
    lines = reading_order(boxes)
    assert [[b[4] for b in line] for line in lines] == [["hello", "world"], ["second", "line"]]
    assert reading_order([]) == []


@needs_ocr
def test_rapidocr_reads_a_golden_large_page(golden_page: RenderedPage) -> None:
    reader = get_reader("rapidocr")
    reading = reader.read(golden_page.image)
    assert reading.reader == "rapidocr" and reading.rung is Rung.LARGE and reading.tokens is None
    assert char_accuracy(golden_page.text, reading.text) >= 0.98, reading.text
    assert reading.text.splitlines()[0].startswith("User")  # reading order: the first label comes first


def test_glyph_estimate_triggers_upscaling_below_tiny() -> None:
    assert glyph_px(1280) == 22
    assert glyph_px(512) < 10 and glyph_px(640) > 10


def test_tesseract_missing_binary_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RecallError, match="apt-get install tesseract-ocr tesseract-ocr-eng"):
        TesseractReader()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is not installed")
def test_tesseract_reads_a_small_page(golden_page: RenderedPage) -> None:
    from optical_memory.images import downsample

    reading = get_reader("tesseract").read(downsample(golden_page.image, 640))
    assert reading.reader == "tesseract" and reading.rung is Rung.SMALL
    assert char_accuracy(golden_page.text, reading.text) >= 0.9, reading.text
