"""What is particular to the SQLite store: WAL, migrations bookkeeping, refusing databases it does not understand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from trader.integrations.store import StoreError, open_sqlite_store
from trader.integrations.store.base import Migration, load_migrations
from trader.integrations.store.sqlite import migrate


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
