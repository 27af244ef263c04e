"""The SQLite `Store`: the standard library's sqlite3 on one dedicated connection, run through `trio.to_thread`.

One connection, WAL journal, autocommit mode with explicit transactions; a `CapacityLimiter(1)` makes sure only
one thread touches it at a time. The order path's write-ahead (`record_intent`, `record_intents`) runs INLINE, on the
Trio thread, when the connection is free: one small commit costs ~25 µs there, against ~100 µs for the hop to a
worker thread and back on an idle loop and far more on a busy one (the worker waits for the GIL). The price is that
the loop waits for that commit; the one long write, the WAL checkpoint, never runs inline (`CHECKPOINT_EVERY_WRITES`).
An inline write is a cancel point but not a schedule point: the order it protects goes out with no task in between.

A thread call is not abandoned when the caller is cancelled, so a write that started completes (and is durable) even
if the engine is shutting down around it. `synchronous=NORMAL` by default: in WAL mode a committed write survives the
process dying (it is in the OS's page cache), not a power loss of the host; `"FULL"` adds an fsync to every commit
so that it survives that too, for 0.3 to 1 ms a commit.

Schema changes are the versioned files in `migrations/`, applied in order inside a transaction each and recorded
in `schema_migrations` (version, name, checksum, time). A database whose applied migration differs from the shipped
file, or that is newer than this code, is refused rather than guessed at.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Literal, TypeVar

import trio

from trader.integrations.store import rows
from trader.integrations.store.base import (
    DuplicateKeyError,
    IntentRecord,
    Migration,
    OpportunityRecord,
    OrderRecord,
    StoreError,
    StoreStatistics,
    load_migrations,
    pending_migrations,
)
from trader.integrations.store.rows import sqlite_sql
from trader.integrations.store.sql import SqlStore

T = TypeVar("T")
Synchronous = Literal["FULL", "NORMAL"]

#: SQLite's automatic WAL checkpoint is off (it runs inside whichever commit crosses its threshold, and that could be
#: an inline write on the Trio thread); instead a write in a worker thread runs a PASSIVE checkpoint after itself once
#: this many writes have gone by since the last one. An inline write is not made while one is due.
CHECKPOINT_EVERY_WRITES = 500

# Statements only this store runs (the shared ones are in `rows`, spelled for SQLite by `_sql`).
_SELECT_ORDER_STATE = "SELECT status, size_matched FROM orders WHERE order_id = ?"
_NEXT_ORDER_EVENT_SEQ = "SELECT COALESCE(MAX(seq), 0) + 1 FROM order_events WHERE order_id = ?"
_INSERT_ORDER_EVENT = (
    "INSERT INTO order_events (order_id, seq, status, size_matched, reason, ts_ns) VALUES (?, ?, ?, ?, ?, ?)"
)


@functools.lru_cache(maxsize=64)
def _sql(statement: str) -> str:
    """A statement of `rows` with SQLite's `?n` parameters (translated once per statement)."""
    return sqlite_sql(statement)


def _now_ns() -> int:
    return time.time_ns()


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations not yet applied, each in its own transaction. Returns the schema version."""
    conn.execute(rows.CREATE_SCHEMA_MIGRATIONS)
    applied = {row[0]: row[1] for row in conn.execute(rows.SELECT_APPLIED_MIGRATIONS)}
    for migration in pending_migrations(applied, migrations):
        conn.execute("BEGIN")
        try:
            # sqlite3.executescript would COMMIT first; run the statements one by one inside our transaction.
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                _sql(rows.INSERT_MIGRATION), (migration.version, migration.name, migration.checksum, _now_ns())
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return max((m.version for m in migrations), default=0)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (the files use no semicolons inside strings or triggers)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


class SqliteStore(SqlStore):
    """The `Store` on SQLite. Open it with `open_sqlite_store(path)`."""

    def __init__(self, conn: sqlite3.Connection, schema_version: int) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)
        self._schema_version = schema_version
        self._writes = 0
        self._reads = 0
        self._errors = 0
        self._closed = False
        self._inline_writes = 0
        self._writes_since_checkpoint = 0

    # -- plumbing -------------------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool, inline: bool = False) -> T:
        """Run `fn(conn)` in a worker thread; or, with `inline` and the connection free, right here on the Trio
        thread (see the module docstring: the order path's writes). Either way nothing else touches the connection
        meanwhile (the limiter)."""
        if self._closed:
            raise StoreError("the store is closed")
        try:
            inline = inline and self._writes_since_checkpoint < CHECKPOINT_EVERY_WRITES
            if inline:
                await trio.lowlevel.checkpoint_if_cancelled()
            if inline and self._take_connection():
                try:
                    result = fn(self._conn)
                finally:
                    self._limiter.release_on_behalf_of(self)
                self._inline_writes += 1
            else:
                if write and self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES:
                    fn = functools.partial(_then_checkpoint, fn)
                    self._writes_since_checkpoint = 0
                result = await trio.to_thread.run_sync(fn, self._conn, limiter=self._limiter)
        except sqlite3.IntegrityError as exc:
            self._errors += 1
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise DuplicateKeyError(f"duplicate key: {exc}") from exc
            raise StoreError(f"sqlite: {exc}") from exc
        except sqlite3.Error as exc:
            self._errors += 1
            raise StoreError(f"sqlite: {exc}") from exc
        if write:
            self._writes += 1
            self._writes_since_checkpoint += 1
        else:
            self._reads += 1
        return result

    def _take_connection(self) -> bool:
        try:
            self._limiter.acquire_on_behalf_of_nowait(self)
        except trio.WouldBlock:
            return False
        return True

    @staticmethod
    def _transaction(conn: sqlite3.Connection, body: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _execute(self, sql: str, *args: object) -> int:
        """Run one write; the number of rows it changed."""
        changed: int = await self._run(lambda conn: conn.execute(_sql(sql), args).rowcount, write=True)
        return changed

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        fetched: list[Any] = await self._run(lambda conn: conn.execute(_sql(sql), args).fetchall(), write=False)
        return fetched

    async def _fetchrow(self, sql: str, *args: object) -> Any:
        return await self._run(lambda conn: conn.execute(_sql(sql), args).fetchone(), write=False)

    async def aclose(self) -> None:
        """Checkpoint the WAL and close. Idempotent."""
        if self._closed:
            return

        def close(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

        await self._run(close, write=False)
        self._closed = True

    @property
    def available(self) -> bool:
        return not self._closed

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(
            writes=self._writes, reads=self._reads, errors=self._errors, schema_version=self._schema_version
        )

    # -- what SQLite does its own way -----------------------------------------------------------------------------

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        values = rows.order_values(order)

        def write(conn: sqlite3.Connection) -> None:
            def body() -> None:
                before = conn.execute(_SELECT_ORDER_STATE, (order.order_id,)).fetchone()
                conn.execute(_sql(rows.UPSERT_ORDER), values)
                # Compared as numbers: '7.5' and '7.50' are the same matched size.
                if before is None or before[0] != order.status.value or Decimal(before[1]) != order.size_matched:
                    seq = conn.execute(_NEXT_ORDER_EVENT_SEQ, (order.order_id,)).fetchone()[0]
                    event = (
                        order.order_id,
                        seq,
                        order.status.value,
                        str(order.size_matched),
                        reason,
                        order.updated_at_ns,
                    )
                    conn.execute(_INSERT_ORDER_EVENT, event)

            self._transaction(conn, body)

        await self._run(write, write=True)

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        values = [rows.intent_values(i) for i in intents]

        def write(conn: sqlite3.Connection) -> None:
            self._transaction(conn, lambda: conn.executemany(_sql(rows.INSERT_INTENT), values))

        if values:
            await self._run(write, write=True, inline=True)

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        values = [rows.opportunity_values(o) for o in opportunities]

        def write(conn: sqlite3.Connection) -> None:
            self._transaction(conn, lambda: conn.executemany(_sql(rows.INSERT_OPPORTUNITY), values))

        if values:
            await self._run(write, write=True)


def _then_checkpoint(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    result = fn(conn)
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return result


def _connect(path: str, synchronous: Synchronous) -> tuple[sqlite3.Connection, int]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal" and path != ":memory:":
            raise StoreError(f"could not switch {path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a worker thread: `CHECKPOINT_EVERY_WRITES`
        version = migrate(conn, load_migrations())
    except BaseException:
        conn.close()
        raise
    return conn, version


@asynccontextmanager
async def open_sqlite_store(
    path: str | os.PathLike[str], *, synchronous: Synchronous = "NORMAL"
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database at `path`, and close it on exit."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
    try:
        conn, version = await trio.to_thread.run_sync(_connect, os.fspath(path), synchronous)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open sqlite store at {os.fspath(path)}: {exc}") from exc
    store = SqliteStore(conn, version)
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
