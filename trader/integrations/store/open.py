"""Opening the store a database URL names, and the intent journal in front of it.

- `open_store(url, settings)`: `sqlite:PATH` (the embedded default), a plain path, or `postgresql://...`;
- `intent_journal_path(url, settings)`: where the order path's write-ahead goes first (`StoreSettings.intent_journal`);
- `open_intent_journal(path, store)`: replays what a crash left only in the journal, then keeps it open.

`trader run` and the operator commands (`reconcile`, `flatten`, `db migrate`) open their store here, so a URL means
the same everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog

from trader.errors import ConfigError
from trader.integrations.store.base import Store
from trader.integrations.store.journal import IntentJournal, replay_journal
from trader.integrations.store.postgres import PostgresSettings, open_postgres_store
from trader.integrations.store.settings import StoreSettings
from trader.integrations.store.sqlite import open_sqlite_store
from trader.integrations.store.urls import sqlite_path

__all__ = ["intent_journal_path", "open_intent_journal", "open_store", "postgres_settings"]

log = structlog.get_logger(__name__)


def intent_journal_path(database_url: str, settings: StoreSettings | None = None) -> Path | None:
    """Where the order path's write-ahead goes first (`StoreSettings.intent_journal`): "auto" is `<file>-intents`
    next to a SQLite file, and none for PostgreSQL or an in-memory SQLite; "off" is none; anything else is the
    journal's path. None: intents are written straight to the database."""
    choice = (settings or StoreSettings()).intent_journal
    if choice == "off":
        return None
    if choice != "auto":
        return Path(choice)
    path = sqlite_path(database_url)
    if path is None or str(path) == ":memory:":
        return None
    return path.with_name(f"{path.name}-intents")


@asynccontextmanager
async def open_intent_journal(path: Path | None, store: Store) -> AsyncIterator[IntentJournal | None]:
    """Replay the journal at `path` into `store` (intents a crash left only there), then keep it open for the
    run; None when there is no journal."""
    if path is None:
        yield None
        return
    replay = await replay_journal(path, store)
    log.info("intent_journal_open", path=str(path), restored=replay.restored, torn=replay.torn)
    journal = IntentJournal.open(path)
    try:
        yield journal
    finally:
        journal.close()


@asynccontextmanager
async def open_store(database_url: str, settings: StoreSettings | None = None) -> AsyncIterator[Store]:
    """`sqlite:PATH` (the embedded default), a plain path, or `postgresql://...` (`settings` tune the connection)."""
    s = settings or StoreSettings()
    path = sqlite_path(database_url)
    if path is not None:
        async with open_sqlite_store(path, synchronous=s.sqlite_synchronous) as sqlite_store:
            yield sqlite_store
    else:
        async with open_postgres_store(postgres_settings(database_url, s)) as pg_store:
            yield pg_store


def postgres_settings(database_url: str, settings: StoreSettings) -> PostgresSettings:
    """How to reach the PostgreSQL server of `database_url` with the store's settings (`ConfigError` if bad)."""
    s = settings
    try:
        return PostgresSettings(
            url=database_url,
            schema=s.schema,
            connect_timeout_secs=s.connect_timeout_secs,
            commit_timeout_secs=s.commit_timeout_secs,
            ping_interval_secs=s.ping_interval_secs,
            reconnect_initial_secs=s.reconnect_initial_secs,
            reconnect_max_secs=s.reconnect_max_secs,
        )
    except ValueError as exc:
        raise ConfigError(f"database_url: {exc}") from None
