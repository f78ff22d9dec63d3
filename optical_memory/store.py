"""The embedded SQLite store: sessions, turns, page images (PNG) and their rungs, in one file.

Standard-library ``sqlite3`` in WAL mode with ``synchronous=NORMAL``. Each ``add()`` of the memory is one
transaction. Durability: with WAL, a commit appends the transaction's frames to the ``-wal`` file with
``write()`` before it returns; ``NORMAL`` only skips the ``fsync``. A process killed at any moment (even by
SIGKILL) has handed every committed frame to the operating system, which writes it out, so no
acknowledged turn is lost and the next open recovers the WAL. Only an operating-system crash or a power
loss can lose the last few commits; ``Store(path, durable=True)`` sets ``synchronous=FULL`` for that.

Schema (``PRAGMA user_version`` holds its version; :data:`MIGRATIONS` maps each version to the function
that upgrades the previous one; a file from a newer version is refused with :class:`StoreError`)::

    sessions      one row per named session: its config (JSON), the page packer's state, counters, and its
                  write version (bumped by every write transaction of the session)
    turns         (session, turn_id): role, name, content (NULL once forgotten), token counts per encoding,
                  tool calls (JSON, assistant turns) and the call a tool turn answers
    pages         (session, page_id): rung, PNG at that rung (NULL once forgotten), spans, ages, pin, and
                  what the page's turn pieces cost sent as text (JSON: tokens per encoding, messages)
    vision_tokens (session, page_id, rung, encoder, dtype): a page's vision tokens at a rung for one encoder
                  (its fingerprint) and dtype: shape (JSON), and the raw little-endian bytes (bfloat16 as its
                  16-bit pattern); rows of a page are deleted whenever its stored image changes
    turn_images   (session, turn_id, idx): the images a user turn carries: media type, size, encoded bytes
                  (deleted with the turn's text)
    page_terms    (session, page_id): the search terms of a page's text, taken as it is sealed (what its
                  image shows, in the form search indexes; deleted when the page is forgotten)
    page_reads    (session, page_id, reader): a page's text as a reader read it at its stored rung (for pages
                  with no terms); rows of a page are deleted whenever its stored image changes
    calibration   (model): the learned ratio of billed to predicted image tokens, and how many reports
                  it was learned from (shared by every session of the file)

Version 1 had an unused ``vision_cache`` table; version 2 replaces it with ``vision_tokens``; version 3
adds tool calls to turns, text costs to pages, and the calibration table; version 4 adds turn images;
version 5 the sessions' write versions; version 6 a page's verbatim spans and masks; version 7 the
pages' search terms and readings.

One connection per store, shared across threads (``check_same_thread=False``); the memory facade
serialises every call with its own lock.

Many processes may share one file, and one session: SQLite lets one write transaction run at a time
(``BEGIN IMMEDIATE``; a writer waits up to ``busy_timeout``, 30 s, for another), and in WAL mode readers never
block writers nor see a half-written transaction. Each write transaction of a session bumps its
``version``; a memory whose last known version differs reloads the session inside the transaction before
writing, so a second writer appends after the first instead of colliding with it, and a reader
(``context()``, ``pages()``) reloads before answering. A writer killed mid-transaction leaves nothing of it:
the next open rolls the WAL back to the last commit.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from optical_memory.backends import MEMORY, Backend, Row, SQLiteBackend
from optical_memory.errors import StoreError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 7
_IN_CHUNK = 500
"""Most ids one ``IN (...)`` query names."""


def _v1(conn: sqlite3.Connection) -> None:
    """Version 1: sessions, turns, pages and an (empty) vision-token cache."""
    _script(
        conn,
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            config TEXT NOT NULL,
            packer_state TEXT,
            n_system INTEGER NOT NULL DEFAULT 0,
            packed_upto INTEGER NOT NULL DEFAULT 0,
            open_pin TEXT,
            created REAL NOT NULL
        );
        CREATE TABLE turns (
            session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL,
            role TEXT NOT NULL,
            name TEXT,
            content TEXT,
            tokens TEXT NOT NULL,
            added REAL NOT NULL,
            packer_before TEXT,
            PRIMARY KEY (session, turn_id)
        ) WITHOUT ROWID;
        CREATE TABLE pages (
            session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            page_id INTEGER NOT NULL,
            rung TEXT NOT NULL,
            png BLOB,
            spans TEXT NOT NULL,
            text_tokens INTEGER NOT NULL,
            missing_glyphs INTEGER NOT NULL,
            sealed_at REAL NOT NULL,
            pinned TEXT,
            PRIMARY KEY (session, page_id)
        );
        CREATE TABLE vision_cache (
            session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            page_id INTEGER NOT NULL,
            rung TEXT NOT NULL,
            encoder TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (session, page_id, rung, encoder)
        );
        """,
    )


def _v2(conn: sqlite3.Connection) -> None:
    """Version 2: the vision-token cache, keyed by encoder fingerprint and dtype, with shape and dtype."""
    _script(
        conn,
        """
        DROP TABLE IF EXISTS vision_cache;
        CREATE TABLE vision_tokens (
            session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            page_id INTEGER NOT NULL,
            rung TEXT NOT NULL,
            encoder TEXT NOT NULL,
            dtype TEXT NOT NULL,
            shape TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (session, page_id, rung, encoder, dtype)
        )
        """,
    )


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # not executescript(): it commits first, and a migration must stay inside one transaction
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v3(conn: sqlite3.Connection) -> None:
    """Version 3: tool calls on turns, a page's cost as text, and the per-model calibration."""
    _script(
        conn,
        """
        ALTER TABLE turns ADD COLUMN tool_calls TEXT;
        ALTER TABLE turns ADD COLUMN tool_call_id TEXT;
        ALTER TABLE pages ADD COLUMN text_cost TEXT;
        CREATE TABLE calibration (
            model TEXT PRIMARY KEY,
            ratio REAL NOT NULL,
            samples INTEGER NOT NULL,
            updated REAL NOT NULL
        )
        """,
    )


def _v4(conn: sqlite3.Connection) -> None:
    """Version 4: the images user turns carry."""
    _script(
        conn,
        """
        CREATE TABLE turn_images (
            session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            mime TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (session, turn_id, idx)
        )
        """,
    )


def _v5(conn: sqlite3.Connection) -> None:
    """Version 5: a session's write version, so a second writer notices and reloads."""
    _script(conn, "ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0")


def _v6(conn: sqlite3.Connection) -> None:
    """Version 6: a page's verbatim spans, and how many credentials were masked on it."""
    _script(conn, V6_PAGES)


V6_PAGES = """
ALTER TABLE pages ADD COLUMN exact TEXT;
ALTER TABLE pages ADD COLUMN masked INTEGER NOT NULL DEFAULT 0
"""
"""The columns version 6 adds to ``pages`` (the PostgreSQL store adds the same)."""


def _v7(conn: sqlite3.Connection) -> None:
    """Version 7: what search indexes of a page: its terms, and its readings (per reader, at its rung)."""
    _script(conn, V7_SEARCH)


V7_SEARCH = """
CREATE TABLE IF NOT EXISTS page_terms (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    page_id INTEGER NOT NULL,
    terms TEXT NOT NULL,
    PRIMARY KEY (session, page_id)
);
CREATE TABLE IF NOT EXISTS page_reads (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    page_id INTEGER NOT NULL,
    reader TEXT NOT NULL,
    rung TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (session, page_id, reader)
)
"""
"""The tables version 7 adds (the PostgreSQL store creates the same)."""

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
    5: _v5,
    6: _v6,
    7: _v7,
}
"""Schema version -> the function that upgrades a store from the version before it."""


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")


def store_location(where: str | Path) -> str:
    """What a store location names: a SQLite path (from a path, ``sqlite:///path`` or ``:memory:``), or a
    ``postgresql://`` URL.

    Raises:
        StoreError: For a URL of another kind (nothing is created then).
    """
    text = str(where)
    match = _URL.match(text) if isinstance(where, str) else None
    if match is None:
        return text
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "sqlite" and rest.startswith("/"):
        return rest[1:] or MEMORY
    if scheme in ("postgresql", "postgres"):
        return text
    raise StoreError(
        f"unknown store location {text!r}: give a SQLite file path, sqlite:///path/to/file.db, or a "
        "postgresql:// URL"
    )


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A stored session: its id, name, config JSON, packer state JSON, counters, the open page's pin and its
    write version."""

    id: int
    name: str
    config: str
    packer_state: str | None
    n_system: int
    packed_upto: int
    open_pin: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class TurnRow:
    """A stored turn. ``content`` is None once the turn's text was forgotten (it lives on in pages).

    ``tool_calls`` is the JSON list of an assistant turn's calls (OpenAI form), kept when the text is
    forgotten, like ``tool_call_id``. ``images`` holds ``(mime, width, height, bytes)`` per image of a user
    turn (dropped with the text).
    """

    turn_id: int
    role: str
    name: str | None
    content: str | None
    tokens: dict[str, int]
    added: float
    packer_before: str | None = None
    tool_calls: str | None = None
    tool_call_id: str | None = None
    images: tuple[tuple[str, int, int, bytes], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class PageRow:
    """A stored page's metadata (the PNG is read separately, on demand).

    ``text_cost`` maps each encoding to the tokens of the page's turn pieces, and ``"messages"`` to how
    many text messages they would take (empty for pages stored before version 3). ``exact`` holds the
    page's verbatim spans as (kind, text, role) and ``masked`` how many credentials were masked on it
    (none for pages stored before version 6).
    """

    page_id: int
    rung: str
    spans: tuple[tuple[int, int, int], ...]
    text_tokens: int
    missing_glyphs: int
    sealed_at: float
    pinned: str | None
    has_image: bool
    text_cost: dict[str, int] = field(default_factory=dict)
    exact: tuple[tuple[str, str, str], ...] = ()
    masked: int = 0


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A page's cached vision tokens at one rung: shape, element dtype name and raw bytes."""

    page_id: int
    rung: str
    shape: tuple[int, ...]
    dtype: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReadRow:
    """A page's text as one reader read it at the rung the page is stored at."""

    page_id: int
    reader: str
    rung: str
    text: str = field(repr=False)


class Store:
    """A SQLite file (or ``:memory:``) holding any number of sessions.

    Args:
        path: The database file (created when missing) or ``":memory:"``.
        durable: Use ``synchronous=FULL`` (survives power loss too; slower commits).

    Raises:
        StoreError: If the file is not a SQLite database, cannot be opened, or comes from a newer version.
    """

    def __init__(self, path: str | Path = MEMORY, *, durable: bool = False) -> None:
        where = store_location(path)
        self._lock = threading.RLock()
        self._db: Backend | None
        if where.startswith(("postgresql://", "postgres://")):
            from optical_memory.postgres import PostgresBackend

            self._db = PostgresBackend(where)
        else:
            self._db = SQLiteBackend(where, durable=durable, migrate=migrate)
        self.path = self._db.where

    # --- plumbing -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._db is None

    def _c(self) -> Backend:
        if self._db is None:
            raise StoreError("the store is closed")
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``COMMIT`` at the end; rolled back on any exception).

        Raises:
            StoreError: If the database fails (disk full, locked for longer than the timeout, ...).
        """
        with self._lock:
            db = self._c()
            db.begin(write=True)
            try:
                yield
            except BaseException:
                db.rollback()
                raise
            try:
                db.commit()
            except StoreError:
                db.rollback()
                raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees the same committed state (a write transaction
        already open serves as one)."""
        with self._lock:
            db = self._c()
            if db.in_transaction:
                yield
                return
            db.begin(write=False)
            try:
                yield
            finally:
                db.rollback()

    def lock_session(self, sid: int) -> None:
        """Inside a write transaction: hold this session's write lock until the transaction ends."""
        with self._lock:
            self._c().lock_session(sid)

    def _exec(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._c().execute(sql, params)

    def _one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        rows = self._exec(sql, params)
        return rows[0] if rows else None

    def _many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._c().executemany(sql, rows)

    # --- sessions -------------------------------------------------------------------------------------

    def sessions(self) -> list[str]:
        """Names of the sessions in this store, oldest first."""
        with self._lock:
            return [r[0] for r in self._exec("SELECT name FROM sessions ORDER BY id")]

    def session(self, name: str) -> SessionRow | None:
        """The session called ``name``, or None."""
        with self._lock:
            row = self._one(
                "SELECT id, name, config, packer_state, n_system, packed_upto, open_pin, version FROM sessions "
                "WHERE name = ?",
                (name,),
            )
        return None if row is None else SessionRow(*row)

    def version(self, sid: int) -> int:
        """A session's write version (bumped by :meth:`bump_version` in every write transaction)."""
        with self._lock:
            row = self._one("SELECT version FROM sessions WHERE id = ?", (sid,))
        if row is None:
            raise StoreError(f"store {self.path}: session {sid} was removed")
        return int(row[0])

    def bump_version(self, sid: int) -> int:
        """Count one more write of a session (inside its write transaction); returns the new version."""
        with self._lock:
            row = self._one(
                "UPDATE sessions SET version = version + 1 WHERE id = ? RETURNING version", (sid,)
            )
        if row is None:
            raise StoreError(f"store {self.path}: session {sid} was removed")
        return int(row[0])

    def create_session(self, name: str, config: str) -> SessionRow:
        """Create an empty session, or return the one another process created under that name meanwhile."""
        with self._lock:
            self._exec(
                "INSERT INTO sessions (name, config, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, config, time.time()),
            )
            row = self.session(name)
        if row is None:
            raise StoreError(f"store {self.path}: session {name!r} could not be created")
        return row

    def update_session(
        self,
        sid: int,
        *,
        packer_state: str | None,
        n_system: int,
        packed_upto: int,
        open_pin: str | None = None,
        config: str | None = None,
    ) -> None:
        """Save the session's counters, packer state and open-page pin (and its config when given)."""
        with self._lock:
            self._exec(
                "UPDATE sessions SET packer_state = ?, n_system = ?, packed_upto = ?, open_pin = ? WHERE id = ?",
                (packer_state, n_system, packed_upto, open_pin, sid),
            )
            if config is not None:
                self._exec("UPDATE sessions SET config = ? WHERE id = ?", (config, sid))

    def clear_session(self, sid: int) -> None:
        """Remove a session's turns, pages and cached vision tokens, and reset its counters (its config stays)."""
        with self._lock:
            for table in ("turns", "turn_images", "pages", "vision_tokens", "page_terms", "page_reads"):
                self._exec(f"DELETE FROM {table} WHERE session = ?", (sid,))
            self.update_session(sid, packer_state=None, n_system=0, packed_upto=0)

    # --- turns ----------------------------------------------------------------------------------------

    def insert_turn(self, sid: int, turn: TurnRow) -> None:
        """Store a new turn."""
        with self._lock:
            self._exec(
                "INSERT INTO turns (session, turn_id, role, name, content, tokens, added, packer_before, "
                "tool_calls, tool_call_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    turn.turn_id,
                    turn.role,
                    turn.name,
                    turn.content,
                    json.dumps(turn.tokens, sort_keys=True),
                    turn.added,
                    turn.packer_before,
                    turn.tool_calls,
                    turn.tool_call_id,
                ),
            )
            self._many(
                "INSERT INTO turn_images (session, turn_id, idx, mime, width, height, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(sid, turn.turn_id, i, *image) for i, image in enumerate(turn.images)],
            )

    def update_turn_text(self, sid: int, turn: TurnRow) -> None:
        """Replace a turn's text, token counts and tool calls (its credentials masked as it is paged)."""
        with self._lock:
            self._exec(
                "UPDATE turns SET content = ?, tokens = ?, tool_calls = ? WHERE session = ? AND turn_id = ?",
                (turn.content, json.dumps(turn.tokens, sort_keys=True), turn.tool_calls, sid, turn.turn_id),
            )

    def delete_turn(self, sid: int, turn_id: int) -> None:
        """Remove one turn (the memory only removes its newest, still-unpacked turn)."""
        with self._lock:
            for table in ("turns", "turn_images"):
                self._exec(f"DELETE FROM {table} WHERE session = ? AND turn_id = ?", (sid, turn_id))

    def set_packer_before(self, sid: int, turn_id: int, state: str) -> None:
        """Record the packer state just before a turn was packed (for re-rendering kept-text pages)."""
        with self._lock:
            self._exec(
                "UPDATE turns SET packer_before = ? WHERE session = ? AND turn_id = ?", (state, sid, turn_id)
            )

    def turn_packer_before(self, sid: int, turn_id: int) -> str | None:
        """The packer state saved just before a turn was packed (None when not saved)."""
        with self._lock:
            row = self._one(
                "SELECT packer_before FROM turns WHERE session = ? AND turn_id = ?", (sid, turn_id)
            )
        return None if row is None else row[0]

    def drop_turn_text(self, sid: int, turn_ids: Sequence[int]) -> None:
        """Forget the text and images of these turns (their token counts stay)."""
        rows = [(sid, t) for t in turn_ids]
        with self._lock:
            self._many("UPDATE turns SET content = NULL WHERE session = ? AND turn_id = ?", rows)
            self._many("DELETE FROM turn_images WHERE session = ? AND turn_id = ?", rows)

    def turns(self, sid: int) -> list[TurnRow]:
        """Every turn of a session, in order."""
        with self._lock:
            rows = self._exec(
                "SELECT turn_id, role, name, content, tokens, added, packer_before, tool_calls, tool_call_id "
                "FROM turns WHERE session = ? ORDER BY turn_id",
                (sid,),
            )
            images: dict[int, list[tuple[str, int, int, bytes]]] = {}
            for tid, mime, width, height, data in self._exec(
                "SELECT turn_id, mime, width, height, data FROM turn_images WHERE session = ? "
                "ORDER BY turn_id, idx",
                (sid,),
            ):
                images.setdefault(tid, []).append((mime, width, height, data))
        return [
            TurnRow(
                r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8], tuple(images.get(r[0], ()))
            )
            for r in rows
        ]

    def turn_texts(self, sid: int, turn_ids: Sequence[int]) -> dict[int, str]:
        """The kept text of these turns (turns whose text was forgotten are left out)."""
        out: dict[int, str] = {}
        with self._lock:
            for t in turn_ids:
                row = self._one("SELECT content FROM turns WHERE session = ? AND turn_id = ?", (sid, t))
                if row is not None and row[0] is not None:
                    out[t] = row[0]
        return out

    # --- pages ----------------------------------------------------------------------------------------

    def insert_page(self, sid: int, page: PageRow, png: bytes | None) -> None:
        """Store a newly sealed page with its PNG."""
        with self._lock:
            self._exec(
                "INSERT INTO pages (session, page_id, rung, png, spans, text_tokens, missing_glyphs, "
                "sealed_at, pinned, text_cost, exact, masked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    page.page_id,
                    page.rung,
                    png,
                    json.dumps([list(s) for s in page.spans]),
                    page.text_tokens,
                    page.missing_glyphs,
                    page.sealed_at,
                    page.pinned,
                    json.dumps(page.text_cost, sort_keys=True),
                    _exact_json(page.exact),
                    page.masked,
                ),
            )

    def set_page_image(self, sid: int, page_id: int, rung: str, png: bytes | None) -> None:
        """Replace a page's image and rung (``png=None`` forgets the image)."""
        with self._lock:
            self._exec(
                "UPDATE pages SET rung = ?, png = ? WHERE session = ? AND page_id = ?",
                (rung, png, sid, page_id),
            )
            for table in ("vision_tokens", "page_reads"):
                self._exec(f"DELETE FROM {table} WHERE session = ? AND page_id = ?", (sid, page_id))

    def set_page_exact(self, sid: int, page_id: int, exact: Sequence[tuple[str, str, str]]) -> None:
        """Replace a page's verbatim spans (trimmed as it decays, gone when it is forgotten)."""
        with self._lock:
            self._exec(
                "UPDATE pages SET exact = ? WHERE session = ? AND page_id = ?",
                (_exact_json(exact), sid, page_id),
            )

    def set_pin(self, sid: int, page_id: int, pinned: str | None) -> None:
        """Pin a page at a rung, or unpin it (None)."""
        with self._lock:
            self._exec(
                "UPDATE pages SET pinned = ? WHERE session = ? AND page_id = ?", (pinned, sid, page_id)
            )

    def pages(self, sid: int) -> list[PageRow]:
        """Metadata of every stored page of a session, in order (no pixels are read)."""
        with self._lock:
            rows = self._exec(
                "SELECT page_id, rung, spans, text_tokens, missing_glyphs, sealed_at, pinned, "
                "png IS NOT NULL, text_cost, exact, masked FROM pages WHERE session = ? ORDER BY page_id",
                (sid,),
            )
        return [
            PageRow(
                r[0],
                r[1],
                tuple(tuple(s) for s in json.loads(r[2])),
                r[3],
                r[4],
                r[5],
                r[6],
                bool(r[7]),
                json.loads(r[8]) if r[8] else {},
                tuple((kind, text, role) for kind, text, role in json.loads(r[9])) if r[9] else (),
                r[10],
            )
            for r in rows
        ]

    def page_png(self, sid: int, page_id: int) -> bytes | None:
        """The PNG bytes of a page at its stored rung (None when forgotten or missing)."""
        with self._lock:
            row = self._one("SELECT png FROM pages WHERE session = ? AND page_id = ?", (sid, page_id))
        return None if row is None else row[0]

    # --- search terms and readings ------------------------------------------------------------------------

    def put_page_terms(self, sid: int, page_id: int, terms: str) -> None:
        """Store a sealed page's search terms (space-separated, repeats kept)."""
        with self._lock:
            self._exec(
                "INSERT INTO page_terms (session, page_id, terms) VALUES (?, ?, ?)", (sid, page_id, terms)
            )

    def delete_page_terms(self, sid: int, page_id: int) -> None:
        """Delete a page's search terms (it was forgotten)."""
        with self._lock:
            self._exec("DELETE FROM page_terms WHERE session = ? AND page_id = ?", (sid, page_id))

    def pages_with_terms(self, sid: int) -> set[int]:
        """The ids of a session's pages that have search terms."""
        with self._lock:
            return {int(r[0]) for r in self._exec("SELECT page_id FROM page_terms WHERE session = ?", (sid,))}

    def page_terms(self, sid: int, page_ids: Sequence[int]) -> dict[int, str]:
        """The search terms of these pages (pages with none are left out)."""
        out: dict[int, str] = {}
        with self._lock:
            for i in range(0, len(page_ids), _IN_CHUNK):
                chunk = list(page_ids[i : i + _IN_CHUNK])
                marks = ", ".join("?" * len(chunk))
                rows = self._exec(
                    f"SELECT page_id, terms FROM page_terms WHERE session = ? AND page_id IN ({marks})",
                    (sid, *chunk),
                )
                out.update((int(r[0]), r[1]) for r in rows)
        return out

    def page_reads(self, sid: int) -> list[ReadRow]:
        """Every cached reading of a session's pages (each at the rung its page is stored at)."""
        with self._lock:
            rows = self._exec("SELECT page_id, reader, rung, text FROM page_reads WHERE session = ?", (sid,))
        return [ReadRow(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def put_page_read(self, sid: int, read: ReadRow) -> None:
        """Cache a page's reading by one reader (replacing that reader's earlier one), only if the page is
        still stored at the rung it was read at: a reading never outlives its image."""
        with self._lock:
            self._exec(
                "INSERT INTO page_reads (session, page_id, reader, rung, text) "
                "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM pages WHERE session = ? AND page_id = ? "
                "AND rung = ? AND png IS NOT NULL) "
                "ON CONFLICT (session, page_id, reader) DO UPDATE SET rung = excluded.rung, text = excluded.text",
                (sid, read.page_id, read.reader, read.rung, read.text, sid, read.page_id, read.rung),
            )

    # --- vision-token cache ----------------------------------------------------------------------------

    def vision_tokens(
        self, sid: int, encoder: str, keys: Sequence[tuple[int, str]], dtype: str
    ) -> dict[tuple[int, str], TokenRow]:
        """Cached vision tokens of the (page id, rung) ``keys`` for one encoder fingerprint and dtype.

        Keys with nothing cached are left out of the result.
        """
        out: dict[tuple[int, str], TokenRow] = {}
        with self._lock:
            for page_id, rung in keys:
                row = self._one(
                    "SELECT shape, data FROM vision_tokens WHERE session = ? AND page_id = ? AND rung = ? "
                    "AND encoder = ? AND dtype = ?",
                    (sid, page_id, rung, encoder, dtype),
                )
                if row is not None:
                    out[(page_id, rung)] = TokenRow(page_id, rung, tuple(json.loads(row[0])), dtype, row[1])
        return out

    def put_vision_tokens(self, sid: int, encoder: str, rows: Sequence[TokenRow]) -> None:
        """Cache vision tokens for one encoder fingerprint (replacing earlier rows with the same key)."""
        with self._lock:
            self._many(
                "INSERT INTO vision_tokens (session, page_id, rung, encoder, dtype, shape, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session, page_id, rung, encoder, dtype) "
                "DO UPDATE SET shape = excluded.shape, data = excluded.data",
                [(sid, r.page_id, r.rung, encoder, r.dtype, json.dumps(list(r.shape)), r.data) for r in rows],
            )

    def prune_vision_tokens(self, sid: int, encoder: str, max_bytes: int | None) -> int:
        """Delete a session's cached vision tokens of other encoders, then the oldest pages' rows until the
        rest holds at most ``max_bytes``; returns how many rows went."""
        with self._lock:
            gone = self._one(
                "SELECT COUNT(*) FROM vision_tokens WHERE session = ? AND encoder <> ?", (sid, encoder)
            )
            self._exec("DELETE FROM vision_tokens WHERE session = ? AND encoder <> ?", (sid, encoder))
            deleted = int(gone[0]) if gone else 0
            if max_bytes is None:
                return deleted
            rows = self._exec(
                "SELECT page_id, rung, dtype, length(data) FROM vision_tokens WHERE session = ? "
                "ORDER BY page_id DESC, rung, dtype",
                (sid,),
            )
            kept, old = 0, []
            for page_id, rung, dtype, size in rows:
                kept += int(size)
                if kept > max_bytes:
                    old.append((sid, page_id, rung, encoder, dtype))
            self._many(
                "DELETE FROM vision_tokens WHERE session = ? AND page_id = ? AND rung = ? AND encoder = ? "
                "AND dtype = ?",
                old,
            )
        return deleted + len(old)

    def vision_token_keys(self, sid: int) -> list[tuple[int, str, str, str]]:
        """(page id, rung, encoder, dtype) of every cached row of a session, sorted (no data is read)."""
        with self._lock:
            rows = self._exec(
                "SELECT page_id, rung, encoder, dtype FROM vision_tokens WHERE session = ? "
                "ORDER BY page_id, rung, encoder, dtype",
                (sid,),
            )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # --- calibration ------------------------------------------------------------------------------------

    def calibration(self, model: str) -> tuple[float, int] | None:
        """The learned (ratio, samples) of a model, or None."""
        with self._lock:
            row = self._one("SELECT ratio, samples FROM calibration WHERE model = ?", (model,))
        return None if row is None else (float(row[0]), int(row[1]))

    def set_calibration(self, model: str, ratio: float, samples: int) -> None:
        """Save a model's learned ratio."""
        with self._lock:
            self._exec(
                "INSERT INTO calibration (model, ratio, samples, updated) VALUES (?, ?, ?, ?) ON CONFLICT (model) "
                "DO UPDATE SET ratio = excluded.ratio, samples = excluded.samples, updated = excluded.updated",
                (model, ratio, samples, time.time()),
            )

    def size_bytes(self) -> int:
        """Bytes the store's data occupies (SQLite: pages in use, nothing of the WAL; PostgreSQL: its
        tables with their indexes and TOAST)."""
        with self._lock:
            return self._c().size_bytes()


def migrate(conn: sqlite3.Connection) -> int:
    """Bring a connection's schema up to :data:`SCHEMA_VERSION`; returns the version it found.

    Raises:
        StoreError: If the file was written by a newer optical-memory (higher ``user_version``) or a
            migration fails (the file is left as it was).
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"this store has schema version {found}, newer than this optical-memory supports "
            f"({SCHEMA_VERSION}): upgrade optical-memory to open it"
        )
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(found + 1, SCHEMA_VERSION + 1):
            logger.info("migrating store schema to version %d", version)
            MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise StoreError(f"cannot migrate the store from schema version {found}: {exc}") from exc
    return found


def _exact_json(exact: Sequence[tuple[str, str, str]]) -> str | None:
    """A page's verbatim spans as stored: a JSON list of [kind, text, role] (None when there are none)."""
    return json.dumps([list(pair) for pair in exact], ensure_ascii=False) if exact else None
