"""The databases a :class:`~optical_memory.store.Store` runs on: SQLite (a file or RAM) and PostgreSQL.

The store writes one dialect of SQL (``?`` placeholders, ``ON CONFLICT`` upserts, ``RETURNING``) that both
run; a backend owns what differs: connecting, the schema and its migrations, how a write transaction takes
the session's lock, how a read sees one consistent snapshot, and how big the data is.

- :class:`SQLiteBackend`: one connection, WAL mode, ``BEGIN IMMEDIATE`` (one writer per file at a time, others
  wait up to :data:`BUSY_TIMEOUT_S`), schema version in ``PRAGMA user_version``.
- ``PostgresBackend`` (:mod:`optical_memory.postgres`, extra ``postgres``): a psycopg 3 connection pool per
  URL; a write transaction locks the session's row (``SELECT ... FOR UPDATE``), so writers of different
  sessions run in parallel across machines and writers of one session take turns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from optical_memory.errors import StoreError

MEMORY = ":memory:"
BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write transaction before giving up."""

Row = tuple[Any, ...]
_T = TypeVar("_T")


class Backend(Protocol):
    """What a store needs from a database."""

    where: str
    """The location, fit for messages (a file path, or a URL without its password)."""

    def begin(self, *, write: bool) -> None:
        """Open a transaction: a write one, or a read one that sees a single snapshot."""

    def commit(self) -> None:
        """Commit the open transaction."""

    def rollback(self) -> None:
        """Roll the open transaction back (nothing when none is open)."""

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders); its rows (empty for statements that return none)."""

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement for each row of parameters."""

    def lock_session(self, sid: int) -> None:
        """Inside a write transaction: hold the session's write lock until it ends."""

    def size_bytes(self) -> int:
        """How much room the store's data takes."""

    def close(self) -> None:
        """Release the connection."""


class SQLiteBackend:
    """A SQLite file (created when missing) or ``:memory:``, migrated to the current schema.

    Raises:
        StoreError: If the file cannot be opened, is not a store, or comes from a newer version.
    """

    def __init__(self, path: str, *, durable: bool, migrate: Callable[[sqlite3.Connection], int]) -> None:
        self.where = path
        try:
            if path != MEMORY:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        try:
            if path != MEMORY:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            migrate(self._conn)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a damaged schema may not even decode
            self._conn.close()
            raise StoreError(f"{path} is not a readable optical-memory store: {exc}") from exc
        except StoreError:
            self._conn.close()
            raise

    def begin(self, *, write: bool) -> None:
        self._run(lambda: self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN"))

    def commit(self) -> None:
        self._run(lambda: self._conn.execute("COMMIT"))

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._run(lambda: self._conn.execute(sql, params).fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._run(lambda: self._conn.executemany(sql, rows))

    def _run(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise StoreError(f"store {self.where}: {exc}") from exc

    def lock_session(self, sid: int) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already holds the whole file's write lock."""

    def size_bytes(self) -> int:
        count = self._conn.execute("PRAGMA page_count").fetchone()[0]
        size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int(count) * int(size)

    def close(self) -> None:
        self._conn.close()
