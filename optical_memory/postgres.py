"""PostgreSQL as a store backend, for memories that many workers on many machines share (extra ``postgres``).

``OpticalMemory.open("postgresql://user@host/db", session=...)`` stores sessions in the database's tables
(created on first use, in one transaction under an advisory lock, so workers starting together do not race).
Every process keeps one psycopg 3 connection pool per URL (``OPTICAL_MEMORY_PG_POOL`` connections at most,
default 8); a store takes a connection for a transaction and gives it back at the end, and takes one for
a single statement outside a transaction.

The guarantees are those of the SQLite store, across machines:

- one ``add()`` is one transaction; a killed worker leaves nothing of its unfinished transaction;
- writers of one session take turns: a write transaction locks the session's row (``SELECT ... FOR UPDATE``),
  reads the session's write version, and reloads the session first when another writer moved it on;
  writers of different sessions run in parallel;
- readers never block writers: a context or a reload reads one ``REPEATABLE READ`` snapshot.

Row sizes: a page row holds its PNG at its current rung in ``bytea`` (TOAST-compressed out of line; a dense
1280 px page is about 100-250 KB, a tiny one 15-40 KB), its spans and text cost as JSON text (under 1 KB); a
turn row holds its text, token counts and tool calls (its text size plus about 200 bytes); pasted images are
rows of ``turn_images`` as sent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from optical_memory.backends import Row
from optical_memory.errors import MissingDependencyError, StoreError
from optical_memory.store import V6_PAGES, V7_SEARCH

SCHEMA_VERSION = 7
"""The schema version the tables are created at (the SQLite store's, with the same semantics)."""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS optical_memory_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    packer_state TEXT,
    n_system INTEGER NOT NULL DEFAULT 0,
    packed_upto INTEGER NOT NULL DEFAULT 0,
    open_pin TEXT,
    created DOUBLE PRECISION NOT NULL,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS turns (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    name TEXT,
    content TEXT,
    tokens TEXT NOT NULL,
    added DOUBLE PRECISION NOT NULL,
    packer_before TEXT,
    tool_calls TEXT,
    tool_call_id TEXT,
    PRIMARY KEY (session, turn_id)
);
CREATE TABLE IF NOT EXISTS turn_images (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    mime TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (session, turn_id, idx)
);
CREATE TABLE IF NOT EXISTS pages (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    page_id INTEGER NOT NULL,
    rung TEXT NOT NULL,
    png BYTEA,
    spans TEXT NOT NULL,
    text_tokens INTEGER NOT NULL,
    missing_glyphs INTEGER NOT NULL,
    sealed_at DOUBLE PRECISION NOT NULL,
    pinned TEXT,
    text_cost TEXT,
    exact TEXT,
    masked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session, page_id)
);
CREATE TABLE IF NOT EXISTS vision_tokens (
    session BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    page_id INTEGER NOT NULL,
    rung TEXT NOT NULL,
    encoder TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (session, page_id, rung, encoder, dtype)
);
CREATE TABLE IF NOT EXISTS calibration (
    model TEXT PRIMARY KEY,
    ratio DOUBLE PRECISION NOT NULL,
    samples INTEGER NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
"""
    + V7_SEARCH
)
_MIGRATIONS = {6: V6_PAGES.replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS"), 7: V7_SEARCH}
"""Schema version -> the statements that upgrade tables from the version before it (version 5 was the
first these tables were created at)."""
_TABLES = (
    "sessions",
    "turns",
    "turn_images",
    "pages",
    "vision_tokens",
    "page_terms",
    "page_reads",
    "calibration",
)
_SCHEMA_LOCK = 0x6F6D656D  # the advisory lock that serialises schema creation ("omem")

CONNECT_TIMEOUT_S = 10.0
"""How long opening a store waits for its first connection."""

_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def _pool(url: str) -> Any:
    """The process's connection pool for ``url`` (opened on first use)."""
    try:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "psycopg", "postgres", "a PostgreSQL store") from exc
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            size = int(os.environ.get("OPTICAL_MEMORY_PG_POOL", "8"))
            try:  # one direct try first: a pool would keep reconnecting in the background
                psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT_S)).close()
            except psycopg.Error as exc:
                raise StoreError(
                    f"cannot connect to the store {masked(url)}: {str(exc).strip()} (is the server running, and "
                    "does the URL name it?)"
                ) from None
            pool = ConnectionPool(
                url, min_size=1, max_size=max(size, 1), kwargs={"autocommit": True}, open=False, timeout=30.0
            )
            try:
                pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except PoolTimeout:
                pool.close()
                raise StoreError(f"cannot connect to the store {masked(url)}") from None
            _pools[url] = pool
        return pool


def close_pools() -> None:
    """Close every connection pool this process opened (at shutdown; a later open starts a new pool)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def masked(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresBackend:
    """A PostgreSQL database, its tables created at :data:`SCHEMA_VERSION` when missing.

    Raises:
        MissingDependencyError: Without the ``postgres`` extra.
        StoreError: If the server cannot be reached, or its tables are from a newer optical-memory.
    """

    def __init__(self, url: str) -> None:
        self.where = masked(url)
        self._url = url
        self._held: Any = None
        self._pool = _pool(url)
        self._run(self._ensure_schema)

    def _ensure_schema(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA.split(";"):
                conn.execute(statement)
            row = conn.execute("SELECT version FROM optical_memory_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO optical_memory_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"the tables in {self.where} have schema version {row[0]}, newer than this "
                    f"optical-memory supports ({SCHEMA_VERSION}): upgrade optical-memory to use them"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS.get(version, "").split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute("UPDATE optical_memory_schema SET version = %s", (SCHEMA_VERSION,))

    def _run(self, call: Any) -> Any:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            return call()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"store {self.where}: {exc}".strip()) from exc

    def begin(self, *, write: bool) -> None:
        conn = self._run(self._pool.getconn)
        try:
            self._run(
                lambda: conn.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            )
        except StoreError:
            self._pool.putconn(conn)
            raise
        self._held = conn

    def commit(self) -> None:
        conn = self._held
        self._run(lambda: conn.execute("COMMIT"))
        self._release()

    def rollback(self) -> None:
        if self._held is not None:
            try:
                self._held.execute("ROLLBACK")
            finally:
                self._release()

    def _release(self) -> None:
        conn, self._held = self._held, None
        if conn is not None:
            self._pool.putconn(conn)

    @property
    def in_transaction(self) -> bool:
        return self._held is not None

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        query = sql.replace("?", "%s")

        def run(conn: Any) -> list[Row]:
            cur = conn.execute(query, tuple(params))
            return cur.fetchall() if cur.description is not None else []

        if self._held is not None:
            return self._run(lambda: run(self._held))  # type: ignore[no-any-return]
        return self._run(lambda: self._with_connection(run))  # type: ignore[no-any-return]

    def _with_connection(self, run: Any) -> Any:
        with self._pool.connection() as conn:
            return run(conn)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        query = sql.replace("?", "%s")

        def run(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(query, [tuple(r) for r in rows])

        if self._held is not None:
            self._run(lambda: run(self._held))
        else:
            self._run(lambda: self._with_connection(run))

    def lock_session(self, sid: int) -> None:
        self.execute("SELECT id FROM sessions WHERE id = ? FOR UPDATE", (sid,))

    def size_bytes(self) -> int:
        rows = self.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname = ANY(?) AND c.relkind = 'r'",
            (list(_TABLES),),
        )
        return int(rows[0][0])

    def close(self) -> None:
        """Give back a connection still held (the pool stays open for the process's other stores)."""
        self.rollback()
