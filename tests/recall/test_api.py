"""The reader table, recall_page on a memory, and the exact reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from optical_memory.errors import ConfigError, MissingDependencyError, PageNotFoundError, RecallError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.recall import (
    READERS,
    Reading,
    RecallBackend,
    default_reader_name,
    get_reader,
    recall_page,
)
from optical_memory.recall import api as recall_api
from optical_memory.recall.base import resolve_rung
from optical_memory.recall.exact import ExactReader
from tests.recall.fakes import ConstantReader


def _memory(*, keep_text: bool) -> OpticalMemory:
    memory = OpticalMemory({"recent_turns": 1, "keep_text": keep_text})
    for i in range(24):
        role = "user" if i % 2 == 0 else "assistant"
        memory.add(
            {"role": role, "content": f"Turn {i}: " + "we talked about the ladder and the pages " * 30}
        )
    return memory


@pytest.fixture(scope="module")
def kept() -> Iterator[OpticalMemory]:
    with _memory(keep_text=True) as memory:
        yield memory


@pytest.fixture(scope="module")
def dropped() -> Iterator[OpticalMemory]:
    with _memory(keep_text=False) as memory:
        yield memory


def test_reader_table_and_unknown_names() -> None:
    assert set(READERS) == {"exact", "rapidocr", "tesseract", "endpoint", "deepseek"}
    assert isinstance(get_reader("exact"), RecallBackend)
    with pytest.raises(ConfigError, match=r"unknown reader 'nope'.*rapidocr"):
        get_reader("nope")


def test_importing_recall_is_light() -> None:
    code = (
        "import sys, optical_memory.recall, optical_memory.cli.recall, optical_memory.cli.bench;"
        "heavy = [m for m in ('torch', 'transformers', 'rapidocr', 'onnxruntime') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reading_is_a_frozen_value() -> None:
    reading = Reading("text", "exact", Rung.TINY, 0.1)
    with pytest.raises(AttributeError):
        reading.text = "other"  # type: ignore[misc]
    assert reading.tokens is None


def test_resolve_rung() -> None:
    assert resolve_rung(Image.new("L", (640, 640)), None) is Rung.SMALL
    assert resolve_rung(Image.new("L", (700, 640)), None) is None
    assert resolve_rung(Image.new("L", (384, 384)), "base") is Rung.BASE
    with pytest.raises(ValueError, match="forgotten"):
        resolve_rung(Image.new("L", (64, 64)), "forgotten")


def test_exact_reader_sources() -> None:
    assert ExactReader({3: "three"}).read(page=3).text == "three"
    assert ExactReader(lambda i: f"page {i}").read(page=5).text == "page 5"
    with pytest.raises(RecallError, match="page="):
        ExactReader({}).read()
    with pytest.raises(RecallError, match="not kept"):
        ExactReader({}).read(page=1)


def test_default_reader_is_exact_when_text_was_kept(kept: OpticalMemory) -> None:
    info = kept.pages()[0]
    assert info.sealed and info.text_kept
    reading = recall_page(kept, info.page_id)
    assert reading.reader == "exact" and reading.rung is info.rung
    assert reading.text == kept.page_text(info.page_id)
    assert reading.text.startswith("Turn 0: we talked about the ladder")


def test_default_reader_without_text_is_rapidocr_or_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_reader_name(text_kept=True) == "exact"
    monkeypatch.setattr(recall_api, "_ocr_installed", lambda: True)
    assert default_reader_name(text_kept=False) == "rapidocr"
    monkeypatch.setattr(recall_api, "_ocr_installed", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"optical-memory\[ocr\]"):
        default_reader_name(text_kept=False)


def test_recall_with_a_reader_instance_reads_the_stored_image(dropped: OpticalMemory) -> None:
    info = dropped.pages()[0]
    assert not info.text_kept
    reader = ConstantReader()
    reading = recall_page(dropped, info.page_id, reader)
    assert reading.text == "hello page" and reading.rung is info.rung
    from optical_memory.ladder import spec

    assert reader.calls == [(spec(info.rung).size, info.rung)]
    with pytest.raises(RecallError, match="not kept"):
        recall_page(dropped, info.page_id, "exact")


def test_recall_errors() -> None:
    with _memory(keep_text=True) as memory:
        with pytest.raises(PageNotFoundError):
            recall_page(memory, 999)
        first = memory.pages()[0].page_id
        memory.forget(first)
        with pytest.raises(RecallError, match=r"forgotten.*reader='exact'"):
            recall_page(memory, first, ConstantReader())
        assert recall_page(memory, first).reader == "exact"  # the kept text outlives the image
