"""A memory in a SQLite file: reopening resumes exactly, sessions share a file, configs are kept."""

from __future__ import annotations

import sqlite3
import struct
import zlib

import pytest

from optical_memory.errors import ConfigError, InputError, StoreError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory

from .helpers import turns


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _snapshot(m: OpticalMemory):
    ctx = m.context()
    images = [i.image.tobytes() for i in ctx.items if hasattr(i, "image")]
    texts = [(i.role, i.content) for i in ctx.items if hasattr(i, "content")]
    return len(m), m.pages(), images, texts, ctx.usage


def test_reopen_resumes_exactly_and_continues_identically(tmp_path):
    path = tmp_path / "mem.db"
    cfg = {"recent_turns": 3, "keep_text": False}
    data = turns(26)
    ref = OpticalMemory(cfg)
    with OpticalMemory.open(path, config=cfg) as m:
        for t in data[:13]:
            m.add(t)
            ref.add(t)
        before = _snapshot(m)
    with OpticalMemory.open(path) as m:
        assert m.config.recent_turns == 3
        assert _snapshot(m) == before
        assert m.pages()[-1].sealed is False  # the open page was rebuilt from its turns' text
        for t in data[13:]:
            m.add(t)
            ref.add(t)
        assert _snapshot(m) == _snapshot(ref)  # a reopen changes nothing about what comes next


def test_sessions_share_a_file(tmp_path):
    path = tmp_path / "mem.db"
    a = OpticalMemory.open(path, session="a", config={"recent_turns": 1})
    b = OpticalMemory.open(path, session="b", config={"recent_turns": 5})
    for t in turns(4):
        a.add(t)
    b.add("only one", role="user")
    a.close()
    b.close()
    with OpticalMemory.open(path, session="a") as a, OpticalMemory.open(path, session="b") as b:
        assert (len(a), len(b)) == (4, 1)
        assert (a.config.recent_turns, b.config.recent_turns) == (1, 5)
        assert a._w.store.sessions() == ["a", "b"]


def test_reopen_config_rules(tmp_path):
    path = tmp_path / "mem.db"
    OpticalMemory.open(path, config={"recent_turns": 2}).close()
    with pytest.raises(ConfigError, match=r"1024x1024.*1280x1280"):
        OpticalMemory.open(path, config={"page_size": 1024})
    with pytest.raises(ConfigError, match="profile 'anthropic'"):
        OpticalMemory.open(path, config={"provider": "anthropic:claude-sonnet-4-5"})
    with OpticalMemory.open(path, config={"recent_turns": 6, "keep_text": True}) as m:
        assert m.config.recent_turns == 6  # a compatible new config replaces the stored one
    with OpticalMemory.open(path) as m:
        assert m.config.recent_turns == 6 and m.config.keep_text


def test_closed_memory_refuses_work(tmp_path):
    m = OpticalMemory.open(tmp_path / "m.db")
    m.close()
    m.close()
    with pytest.raises(StoreError, match="closed"):
        m.add("x", role="user")


def test_corrupt_stored_page_image_is_refused_not_decoded(tmp_path):
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"recent_turns": 1}) as m:
        for t in turns(12):
            m.add(t)
        page = m.pages()[0]
    with sqlite3.connect(path) as conn:  # a 9000 x 9000 page: a decompression bomb
        conn.execute(
            "UPDATE pages SET png = ? WHERE page_id = ?", (_png_header_only(9000, 9000), page.page_id)
        )
    with OpticalMemory.open(path) as m, pytest.raises(InputError, match="refusing to decode"):
        m.page_image(page.page_id)


def test_failed_add_leaves_memory_and_store_consistent(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    m = OpticalMemory.open(path, config={"recent_turns": 1})
    for t in turns(6):
        m.add(t)
    before = (len(m), m.pages())

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr("optical_memory.decay.encode_png", boom)
    with pytest.raises(OSError, match="disk on fire"):
        for t in turns(10, start=6):
            m.add(t)
    monkeypatch.undo()
    n = len(m)
    assert n >= before[0]
    assert m.pages()[: len(before[1]) - 1] == before[1][:-1]
    m.add(turns(1, start=50)[0])
    m.close()
    with OpticalMemory.open(path) as again:
        assert len(again) == n + 1


def test_a_pin_on_the_open_page_survives_reopen_and_holds_once_sealed(tmp_path):
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"recent_turns": 1}) as m:
        for t in turns(3):
            m.add(t)
        open_page = m.pages()[-1]
        assert not open_page.sealed
        m.pin(open_page.page_id, "small")
    with OpticalMemory.open(path) as m:
        assert m.pages()[-1].pinned is Rung.SMALL
        for t in turns(20, start=3):
            m.add(t)
        page = m.pages()[open_page.page_id]
        assert page.sealed and page.pinned is Rung.SMALL and page.rung is Rung.SMALL
        assert all(p.pinned is None for p in m.pages() if p.page_id != open_page.page_id)
