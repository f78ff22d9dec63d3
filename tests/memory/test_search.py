"""memory.search on a real chat of ``benchmarks/data/chats`` with a planted order id: it ranks by what the
memory still holds (kept text, verbatim spans, readings), follows pages as they decay and are forgotten,
keeps readings per page and rung across a reopen, and refuses bad queries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from optical_memory.errors import ConfigError, InputError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.store import ReadRow
from tests.memory.test_exact import KEY, ORDER, _chat, _planted_page
from tests.recall.fakes import ConstantReader


def _memory(path: Path | None = None, **config: object) -> OpticalMemory:
    settings = {"provider": "openai:gpt-4o", "recent_turns": 4, **config}
    return OpticalMemory(settings) if path is None else OpticalMemory.open(path, config=settings)


def test_kept_text_finds_the_planted_page_by_its_words() -> None:
    m = _memory(keep_text=True)
    m.extend(_chat(60))
    pid = _planted_page(m)
    hit = m.search("my order at the shop", 3)[0]
    assert hit.page_id == pid and ORDER in hit.spans and hit.source == "text"
    assert hit.snippet is not None and ORDER in hit.snippet
    assert "text" in hit.sources and "exact" in hit.sources


def _legacy(m: OpticalMemory) -> None:
    """Take every page's terms away, as a store written before version 7 has none."""
    with m._w.store.transaction():
        for page in m.pages():
            m._w.store.delete_page_terms(m._w.sid, page.page_id)
    m._index = type(m._index)()


def test_without_kept_text_a_page_is_found_by_the_terms_taken_as_it_was_sealed(tmp_path: Path) -> None:
    m = _memory(tmp_path / "m.db")
    m.extend(_chat(60))
    pid = _planted_page(m)
    assert m.page_text(pid) is None
    hit = m.search("what was my order at the shop?", 3)[0]
    assert (hit.page_id, hit.snippet, hit.source, hit.sources) == (pid, None, None, ("terms", "exact"))
    assert hit.spans == tuple(span for _, span, _ in m.pages()[pid].exact)  # no line to show: all of them
    assert ORDER in hit.spans
    stored = m._w.store.page_terms(m._w.sid, [pid])[pid].split()
    assert "order" in stored and "48213" in stored and KEY.split("-")[-1].lower() not in stored  # masked
    m.close()
    reopened = OpticalMemory.open(tmp_path / "m.db")
    assert reopened.search("what was my order at the shop?", 1)[0].page_id == pid  # the terms are stored
    reopened.close()


def test_a_page_without_terms_is_found_by_its_reading(tmp_path: Path) -> None:
    m = _memory(tmp_path / "m.db")
    m.extend(_chat(60))
    pid = _planted_page(m)
    _legacy(m)
    hit = m.search(ORDER, 3)[0]
    assert (hit.page_id, hit.snippet, hit.sources) == (pid, None, ("exact",))
    assert hit.spans == (ORDER, "https://shop.example.com/o/48213")  # both share a term with the query
    assert m.search("a parcel tracking note", 3) == []  # nothing the memory holds has those words
    m.recall(pid, reader=ConstantReader("a parcel tracking note"))  # a recall keeps what it read
    hit = m.search("parcel tracking", 3)[0]
    assert (hit.page_id, hit.source, hit.snippet) == (pid, "ocr:constant", "a parcel tracking note")
    m.close()
    reopened = OpticalMemory.open(tmp_path / "m.db")
    assert reopened.search("parcel tracking", 1)[0].page_id == pid  # readings are stored
    reopened.close()


def test_read_pages_reads_each_page_without_terms_once_per_rung() -> None:
    m = _memory()
    m.extend(_chat(60))
    reader = ConstantReader("read back")
    assert m.read_pages(reader) == 0  # every page has its terms
    _legacy(m)
    dropped = [p.page_id for p in m.pages() if p.sealed and not p.text_kept]
    assert m.read_pages(reader) == len(dropped) and len(dropped) >= 3
    assert len(reader.calls) == len(dropped)
    assert m.read_pages(reader) == 0  # all read at their rung
    assert {h.page_id for h in m.search("read back", 100)} == set(dropped)
    with pytest.raises(ConfigError, match="image reader"):
        m.read_pages("exact")
    with pytest.raises(ConfigError, match="unknown reader"):
        m.read_pages("magic")


def test_a_page_that_decays_or_is_forgotten_loses_its_reading_and_terms() -> None:
    m = _memory()
    m.extend(_chat(40))
    pid = _planted_page(m)
    rung = m.pages()[pid].rung
    _legacy(m)
    m.read_pages(ConstantReader("first reading"))
    assert pid in {h.page_id for h in m.search("first reading", 100)}
    m.extend(_chat(160)[40:])
    assert m.pages()[pid].rung is not rung  # it decayed: the reading was of another image
    assert pid not in {h.page_id for h in m.search("first reading", 100)}
    fresh = _memory()
    fresh.extend(_chat(40))
    assert fresh.search("my order at the shop", 1)[0].page_id == pid
    fresh.forget(pid)
    assert pid not in {h.page_id for h in fresh.search("my order at the shop", 100)}
    assert pid not in fresh._w.store.pages_with_terms(fresh._w.sid)


def test_a_reading_of_an_image_since_replaced_is_not_kept() -> None:
    m = _memory()
    m.extend(_chat(60))
    page = next(p for p in m.pages() if p.sealed and not p.text_kept)
    stale = "small" if page.rung is not Rung.SMALL else "tiny"
    m._w.cache_reading(ReadRow(page.page_id, "constant", stale, "read from an image since replaced"))
    assert m.search("replaced", 5) == [] and m._w.store.page_reads(m._w.sid) == []


def test_the_index_follows_new_pages_and_clear() -> None:
    m = _memory(keep_text=True)
    m.extend(_chat(20))
    assert m.search(ORDER, 1)
    m.add("the parcel ZX-00417 went to the depot", role="user")
    assert m.search("ZX-00417", 1) == []  # still in the recent window: the context has it as text
    m.extend(_chat(24)[20:])
    (hit,) = m.search("ZX-00417", 1)
    assert hit.page_id == m.pages()[-1].page_id and not m.pages()[-1].sealed  # the open page, by its text
    m.clear()
    assert m.search(ORDER, 1) == []


@pytest.mark.parametrize(
    ("query", "k"), [("", 5), ("   ", 5), ("!!", 5), ("order", 0), ("order", True), (3, 5)]
)
def test_bad_queries_are_refused(query: object, k: object) -> None:
    m = _memory()
    m.extend(_chat(20))
    with pytest.raises(InputError):
        m.search(query, k)  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="needs the ocr extra")
def test_a_page_read_by_the_offline_ocr_is_found_by_its_words() -> None:
    m = _memory()
    m.extend(_chat(40))
    pid = _planted_page(m)
    _legacy(m)
    assert pid not in {h.page_id for h in m.search("my order and the key", 5)}  # no span has those words
    reading = m.recall(pid, reader="rapidocr")
    hit = m.search("my order and the key", 1)[0]
    assert hit.page_id == pid and hit.source == "ocr:rapidocr" and "order" in reading.text.lower()
