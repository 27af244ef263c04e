"""What is particular to the PostgreSQL store, on the real server (marked `pg`).

The Store contract itself runs on PostgreSQL in test_store.py. Here: the shared migration history, refusing a
database it does not understand, cancellation inside a transaction (the trap in stack.md), and noticing a killed
connection and reconnecting, without stopping the server (test_outages.py stops it).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import trio

from trader.integrations.store import RiskEventRecord, StoreError
from trader.integrations.store.base import load_migrations
from trader.integrations.store.postgres import (
    PostgresSettings,
    StoreUnavailable,
    drop_postgres_schema,
    migrate_postgres,
    open_postgres_store,
    redact_url,
)
from trader.integrations.trio_asyncio_bridge import open_asyncio_bridge

from .servers import pg_dsn

pytestmark = pytest.mark.pg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
INSERT_EVENT = "INSERT INTO risk_events (event_id, ts_ns, kind, reason_code, detail) VALUES ($1, 1, 'K', 'R', '{}')"


@pytest.fixture
async def settings() -> AsyncIterator[PostgresSettings]:
    """A fresh schema per test (dropped afterwards), quick pings and reconnects."""
    value = PostgresSettings(
        url=pg_dsn(),
        schema=f"test_pg_{uuid.uuid4().hex[:16]}",
        ping_interval_secs=0.1,
        reconnect_initial_secs=0.05,
        reconnect_max_secs=0.2,
    )
    yield value
    await drop_postgres_schema(value)


async def _query(settings: PostgresSettings, sql: str, *args: object) -> list[Any]:
    async with open_asyncio_bridge() as bridge:
        conn = await bridge.run(asyncpg.connect, settings.url, server_settings={"search_path": settings.schema or ""})
        try:
            rows: list[Any] = await bridge.run(conn.fetch, sql, *args)
            return rows
        finally:
            await bridge.run(conn.close)


def _event(event_id: str) -> RiskEventRecord:
    return RiskEventRecord(
        event_id=event_id, ts_ns=1, kind="EMERGENCY_STOP", reason_code="OPERATOR", trading_state="HALTED"
    )


async def test_the_same_migration_history_as_sqlite_is_applied_once(settings: PostgresSettings) -> None:
    async with open_postgres_store(settings) as store:
        assert store.statistics().schema_version == len(load_migrations())
    assert await migrate_postgres(settings) == len(load_migrations())  # `trader db migrate` again: nothing to do
    rows = await _query(settings, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in rows] == [(m.version, m.name, m.checksum) for m in load_migrations()]


async def test_two_processes_migrating_at_once_both_succeed(settings: PostgresSettings) -> None:
    results: list[int] = []

    async def migrate() -> None:
        results.append(await migrate_postgres(settings))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(migrate)
    assert results == [len(load_migrations())] * 3
    assert len(await _query(settings, "SELECT version FROM schema_migrations")) == len(load_migrations())


async def test_a_database_from_newer_code_or_an_edited_migration_is_refused(settings: PostgresSettings) -> None:
    await migrate_postgres(settings)
    await _query(settings, "INSERT INTO schema_migrations VALUES (999, 'future', 'x', 0)")
    with pytest.raises(StoreError, match="does not know"):
        async with open_postgres_store(settings):
            pass  # pragma: no cover
    await _query(settings, "DELETE FROM schema_migrations WHERE version = 999")
    await _query(settings, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(StoreError, match="changed after it was applied"):
        await migrate_postgres(settings)


async def test_cancelling_inside_a_transaction_rolls_back_and_leaves_the_connection_usable(
    settings: PostgresSettings,
) -> None:
    async with open_postgres_store(settings) as store:

        async def slow_body(conn: Any) -> None:
            await conn.execute(INSERT_EVENT, "half")
            await conn.execute("SELECT pg_sleep(30)")

        with trio.move_on_after(0.3) as scope:
            await store.transaction(slow_body)
        assert scope.cancelled_caught
        # Not "current transaction is aborted": the shielded ROLLBACK ran, and the half-done insert is gone.
        await store.record_risk_event(_event("after"))
        assert [e.event_id for e in await store.load_risk_events()] == ["after"]
        assert store.available
        assert store.statistics().outages == 0


async def test_a_transaction_commits_all_or_nothing(settings: PostgresSettings) -> None:
    async with open_postgres_store(settings) as store:

        async def two_inserts(conn: Any) -> int:
            for event_id in ("a", "b"):
                await conn.execute(INSERT_EVENT, event_id)
            return 2

        assert await store.transaction(two_inserts) == 2

        async def duplicate(conn: Any) -> None:
            await conn.execute(INSERT_EVENT, "c")
            await conn.execute(INSERT_EVENT, "a")

        with pytest.raises(StoreError, match="duplicate"):
            await store.transaction(duplicate)
        assert [e.event_id for e in await store.load_risk_events()] == ["a", "b"]


async def test_a_killed_connection_makes_the_store_unavailable_until_it_reconnects(
    settings: PostgresSettings,
) -> None:
    async with open_postgres_store(settings) as store:
        pid = await store.transaction(lambda conn: conn.fetchval("SELECT pg_backend_pid()"))
        await _query(settings, "SELECT pg_terminate_backend($1)", pid)
        with trio.fail_after(5):
            await store.wait_unavailable()  # the termination listener (or the next ping) notices
            with pytest.raises(StoreUnavailable):
                await store.record_risk_event(_event("while-down"))
            await store.wait_available()
        await store.record_risk_event(_event("after"))
        stats = store.statistics()
    assert [r[0] for r in await _load_events(settings)] == ["after"]
    assert (stats.outages, stats.reconnects, stats.available) == (1, 1, True)
    assert stats.unavailable_calls >= 1


async def _load_events(settings: PostgresSettings) -> list[Any]:
    return await _query(settings, "SELECT event_id FROM risk_events ORDER BY event_id")


async def test_an_unreachable_server_is_reported_without_the_password() -> None:
    settings = PostgresSettings(url="postgresql://trader:hunter2@127.0.0.1:9/x", connect_timeout_secs=1)
    with pytest.raises(StoreUnavailable) as info:
        async with open_postgres_store(settings):
            pass  # pragma: no cover
    assert "hunter2" not in str(info.value)
    assert "trader:***@127.0.0.1:9" in str(info.value)
    assert "hunter2" not in repr(settings)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresSettings(url="mysql://x/y")
    with pytest.raises(ValueError, match="schema"):
        PostgresSettings(url=DEFAULT_DSN, schema='x"; DROP TABLE orders; --')
    with pytest.raises(ValueError, match="commit_timeout_secs"):
        PostgresSettings(url=DEFAULT_DSN, commit_timeout_secs=0)
    with pytest.raises(ValueError, match="reconnect_max_secs"):
        PostgresSettings(url=DEFAULT_DSN, reconnect_initial_secs=2, reconnect_max_secs=1)
    assert redact_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert redact_url(DEFAULT_DSN) == DEFAULT_DSN
    assert PostgresSettings(url=DEFAULT_DSN).backoff.max_secs == 5.0


async def test_decimals_are_stored_as_their_exact_text(settings: PostgresSettings) -> None:
    async with open_postgres_store(settings) as store:
        await store.record_risk_event(_event("e"))
        from trader.domain.positions import Position

        await store.record_position(
            Position(token_id="1", quantity=Decimal("0.1000000000000000000000000001"), cost_basis=Decimal("1E-7")),
            ts_ns=1,
        )
    rows = await _query(settings, "SELECT quantity, cost_basis FROM positions")
    assert tuple(rows[0]) == ("0.1000000000000000000000000001", "1E-7")
    assert urlsplit(settings.url).scheme.startswith("postgres")
