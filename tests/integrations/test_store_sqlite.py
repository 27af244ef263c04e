"""What is particular to the SQLite store: WAL, migrations bookkeeping, refusing databases it does not understand."""

from __future__ import annotations

import sqlite3
import threading
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from trader.domain.enums import OrderType
from trader.integrations.store import StoreError, open_sqlite_store
from trader.integrations.store.base import IntentRecord, IntentState, Migration, load_migrations
from trader.integrations.store.sqlite import CHECKPOINT_EVERY_WRITES, migrate
from trader.testing import make_intent_record


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _execute(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def test_shipped_migrations_are_numbered_from_one() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "init"
    assert "CREATE TABLE order_intents" in migrations[0].sql


async def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with open_sqlite_store(path) as store:
        assert store.statistics().schema_version == len(load_migrations())
    async with open_sqlite_store(path):
        pass
    rows = await trio.to_thread.run_sync(_query, path, "SELECT version, name FROM schema_migrations")
    assert rows == [(m.version, m.name) for m in load_migrations()]
    mode = await trio.to_thread.run_sync(_query, path, "PRAGMA journal_mode")
    assert mode == [("wal",)]


async def test_a_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with open_sqlite_store(path):
        pass
    await trio.to_thread.run_sync(_execute, path, "INSERT INTO schema_migrations VALUES (999, 'future', 'x', 0)")
    with pytest.raises(StoreError, match="does not know"):
        async with open_sqlite_store(path):
            pass  # pragma: no cover


async def test_an_edited_applied_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with open_sqlite_store(path):
        pass
    await trio.to_thread.run_sync(_execute, path, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(StoreError, match="changed after it was applied"):
        async with open_sqlite_store(path):
            pass  # pragma: no cover


def test_a_failing_migration_leaves_nothing_half_applied() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    broken = [
        Migration(1, "ok", "CREATE TABLE a (x TEXT);"),
        Migration(2, "broken", "CREATE TABLE b (x TEXT); -- a comment; with a semicolon\nCREATE TABLE a (x TEXT);"),
    ]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"schema_migrations", "a"}
    assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    conn.close()


def test_no_column_is_named_like_a_secret() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, load_migrations())
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns = {f"{table}.{row[1]}" for table in tables for row in conn.execute(f"PRAGMA table_info({table})")}
    conn.close()
    assert columns
    assert not [c for c in columns if any(word in c for word in ("secret", "passphrase", "private", "api_key"))]


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        async with open_sqlite_store(tmp_path / "missing-dir" / "t.db"):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="synchronous"):
        async with open_sqlite_store(tmp_path / "t.db", synchronous="OFF"):  # type: ignore[arg-type]
            pass  # pragma: no cover


def _intent(n: int) -> IntentRecord:
    return make_intent_record(
        f"c-{n}",
        order_id=f"0x{n:064x}",
        strategy="sum_to_100",
        condition_id="0xc1",
        price="0.45",
        order_type=OrderType.FOK,
        group_id="arb-1",
        created_at_ns=n,
    )


async def test_the_write_ahead_commits_without_letting_another_task_run(tmp_path: Path) -> None:
    """The order an intent protects goes out right after it: no other task runs in between (inline write), and the
    intent is committed (another connection reads it) when the call returns."""
    path = tmp_path / "t.db"
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with open_sqlite_store(path) as store, trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(other)
        await store.record_intents([_intent(1), _intent(2)])
        assert ran == ["other"]  # the second task has not run yet
        assert _query(path, "SELECT client_order_id FROM order_intents ORDER BY 1") == [("c-1",), ("c-2",)]
        await store.record_intent(_intent(3))
        assert ran == ["other"]


async def test_the_write_ahead_waits_for_a_busy_connection(tmp_path: Path) -> None:
    """While a worker thread holds the connection, the intent write waits for it (never interleaves with it)."""
    async with open_sqlite_store(tmp_path / "t.db") as store:
        release = threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            release.wait(5)
            conn.execute("ROLLBACK")  # what this transaction did is undone: the intent must not be part of it

        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(store._run, hold, write=True))
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(0.05) as waited:
                await store.record_intent(_intent(1))
            assert waited.cancelled_caught  # still waiting for the connection
            release.set()
        await store.record_intent(_intent(1))
        assert [i.client_order_id for i in await store.load_pending_intents()] == ["c-1"]


async def test_the_wal_is_checkpointed_off_the_trio_thread(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    wal = path.with_name(path.name + "-wal")
    sizes = []
    async with open_sqlite_store(path) as store:
        for n in range(4 * CHECKPOINT_EVERY_WRITES):
            await store.record_intent(_intent(n))
            if n % 50 == 0:  # the write-behind traffic (orders, trades) runs in a worker thread
                await store.resolve_intent(f"c-{n}", IntentState.ACKED, ts_ns=n)
            if n % CHECKPOINT_EVERY_WRITES == CHECKPOINT_EVERY_WRITES - 1:
                sizes.append(wal.stat().st_size)
        assert len(await store.load_pending_intents()) == 4 * CHECKPOINT_EVERY_WRITES - 40
    # Checkpointed, the WAL is rewound and reused: it stops growing after the first period (without, it grows
    # by the same amount every period).
    assert sizes[3] <= sizes[1] * 1.2, sizes
