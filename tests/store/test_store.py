"""The SQLite store: schema versions and migrations, refusal of newer files, sessions, transactions."""

from __future__ import annotations

import sqlite3

import pytest

from optical_memory import store as store_mod
from optical_memory.errors import StoreError
from optical_memory.store import SCHEMA_VERSION, PageRow, ReadRow, Store, TokenRow, TurnRow


def _version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_new_store_is_current_version_in_wal_mode(tmp_path):
    path = tmp_path / "m.db"
    s = Store(path)
    assert _version(path) == SCHEMA_VERSION
    assert s._c().execute("PRAGMA journal_mode")[0][0] == "wal"
    assert s._c().execute("PRAGMA synchronous")[0][0] == 1  # NORMAL
    s.close()
    s = Store(path, durable=True)
    assert s._c().execute("PRAGMA synchronous")[0][0] == 2  # FULL
    s.close()


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _v1_file(path) -> None:
    """A store as version 1 of optical-memory wrote it (with a session and a page)."""
    with sqlite3.connect(path) as conn:
        store_mod._v1(conn)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO sessions (name, config, created) VALUES ('old', '{}', 1.0)")
        conn.execute(
            "INSERT INTO pages (session, page_id, rung, png, spans, text_tokens, missing_glyphs, sealed_at) "
            "VALUES (1, 0, 'large', x'89', '[[0, 0, 5]]', 3, 0, 2.0)"
        )


def test_version_1_file_gains_the_vision_token_table(tmp_path):
    path = tmp_path / "v1.db"
    _v1_file(path)
    assert "vision_cache" in _tables(path)
    s = Store(path)
    assert _version(path) == SCHEMA_VERSION == 7
    assert "vision_tokens" in _tables(path) and "vision_cache" not in _tables(path)
    assert {"calibration", "page_reads"} <= _tables(path)
    assert s.pages(1)[0].text_cost == {}  # pages from before version 3 have no text cost
    assert (s.pages(1)[0].exact, s.pages(1)[0].masked) == ((), 0)  # nor spans before version 6
    assert s.sessions() == ["old"]  # data kept
    assert s.page_png(1, 0) == b"\x89"
    s.put_vision_tokens(1, "fake:1", [TokenRow(0, "large", (2, 3), "float32", bytes(24))])
    assert s.vision_token_keys(1) == [(0, "large", "fake:1", "float32")]
    s.put_page_read(1, ReadRow(0, "rapidocr", "large", "read at large"))
    s.put_page_read(1, ReadRow(0, "tesseract", "small", "the page is not stored at small"))
    assert s.page_reads(1) == [ReadRow(0, "rapidocr", "large", "read at large")]
    s.set_page_image(1, 0, "base", b"\x89")  # a new image: its readings go
    assert s.page_reads(1) == []
    s.close()


def test_older_version_is_migrated_in_order(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    Store(path).close()  # a file at the current version
    calls = []
    nxt = SCHEMA_VERSION + 1

    def upgrade(conn):
        calls.append(nxt)
        conn.execute("ALTER TABLE sessions ADD COLUMN note TEXT")

    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(store_mod.MIGRATIONS, nxt, upgrade)
    s = Store(path)
    assert calls == [nxt]
    assert _version(path) == nxt
    cols = [r[1] for r in s._c().execute("PRAGMA table_info(sessions)")]
    assert "note" in cols
    s.close()
    Store(path).close()  # already current: not migrated again
    assert calls == [nxt]


def test_failed_migration_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    Store(path).close()
    nxt = SCHEMA_VERSION + 1

    def broken(conn):
        conn.execute("ALTER TABLE sessions ADD COLUMN note TEXT")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(store_mod.MIGRATIONS, nxt, broken)
    with pytest.raises(StoreError, match="cannot migrate"):
        Store(path)
    assert _version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert "note" not in [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]


def test_version_zero_file_is_created_from_scratch(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    Store(path).close()
    assert _version(path) == SCHEMA_VERSION


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this optical-memory supports"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable optical-memory store"):
        Store(path)


def test_sessions_are_independent_and_transactions_roll_back(tmp_path):
    s = Store(tmp_path / "m.db")
    a = s.create_session("a", "{}")
    b = s.create_session("b", "{}")
    assert s.sessions() == ["a", "b"]
    with s.transaction():
        s.insert_turn(a.id, TurnRow(0, "user", None, "hello", {"o200k_base": 1}, 1.0))
    with pytest.raises(RuntimeError), s.transaction():
        s.insert_turn(b.id, TurnRow(0, "user", None, "lost", {"o200k_base": 1}, 1.0))
        raise RuntimeError("boom")
    assert [t.content for t in s.turns(a.id)] == ["hello"]
    assert s.turns(b.id) == []
    with pytest.raises(StoreError):  # duplicate turn id
        s.insert_turn(a.id, TurnRow(0, "user", None, "again", {}, 1.0))
    s.close()


def test_pages_round_trip_and_forget(tmp_path):
    s = Store(tmp_path / "m.db")
    sid = s.create_session("x", "{}").id
    row = PageRow(0, "large", ((0, 0, 5), (1, 0, 9)), 12, 0, 3.5, None, True)
    s.insert_page(sid, row, b"png-bytes")
    tokens = TokenRow(0, "large", (1, 2), "float32", b"12345678")
    s.put_vision_tokens(sid, "fake", [tokens, TokenRow(0, "small", (1, 2), "float32", b"abcdefgh")])
    assert s.pages(sid) == [row]
    assert s.page_png(sid, 0) == b"png-bytes"
    assert s.vision_tokens(sid, "fake", [(0, "large"), (0, "tiny")], "float32") == {(0, "large"): tokens}
    assert s.vision_tokens(sid, "fake", [(0, "large")], "bfloat16") == {}  # dtype is part of the key
    assert s.vision_tokens(sid, "other", [(0, "large")], "float32") == {}  # so is the encoder
    s.set_page_image(sid, 0, "forgotten", None)  # also drops the page's cached vision tokens, every rung
    assert s.page_png(sid, 0) is None
    assert s.vision_token_keys(sid) == []
    assert s.pages(sid)[0].has_image is False
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.pages(sid)


def test_store_urls_name_a_file_or_are_refused_without_creating_anything(tmp_path, monkeypatch):
    from optical_memory.errors import StoreError
    from optical_memory.memory import OpticalMemory

    monkeypatch.chdir(tmp_path)
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="cannot connect to the store postgresql://"):
        OpticalMemory.open("postgresql://user@127.0.0.1:1/db?connect_timeout=1", session="s")
    with pytest.raises(StoreError, match="unknown store location"):
        OpticalMemory.open("redis://localhost/0")
    assert list(tmp_path.iterdir()) == []  # no folder named postgresql:, no file
    with OpticalMemory.open(f"sqlite:///{tmp_path / 'm.db'}") as memory:
        memory.add("hello", role="user")
    assert (tmp_path / "m.db").exists()
