"""The PostgreSQL `Store`: asyncpg through the trio-asyncio bridge, on one held connection.

    async with open_postgres_store(PostgresSettings(url="postgresql://trader@db:5432/trader")) as store:
        await store.record_intent(record)

- **One connection, held.** A pool acquire/release doubles the cost of a single insert (stack.md), so the store
  keeps one connection and a `trio.Lock` serialises calls on it. Statements are prepared and cached by asyncpg.
  Batches use `executemany` (one round trip, atomic).
- **Same schema history as SQLite.** The versioned files in `migrations/` are portable SQL (TEXT decimals, BIGINT
  nanoseconds, no SERIAL) and are applied here too, recorded in the same `schema_migrations` table with the same
  checksums. Migrating takes a transaction-scoped advisory lock, so two processes starting at once do not race.
  A database with a migration this code does not know, or whose applied file changed, is refused.
- **Transactions and cancellation.** Cancelling a Trio caller cancels the asyncio task running its query (asyncpg
  then cancels it server-side). Cancelling inside a transaction would also cancel its ROLLBACK and leave the
  connection in a failed transaction, so COMMIT and ROLLBACK run in a *shielded* scope with a deadline
  (`commit_timeout_secs`); past it the connection is dropped and the outcome reported unknown.
- **Availability.** When the connection is lost (the server stopped, the network broke, a ping failed), `available`
  turns False at once and every call fails fast with `StoreUnavailable` (a `StoreError`): the order manager then
  writes no intent and so sends no order. A background task reconnects with backoff (`Backoff`), re-checks the
  schema, and turns `available` back on; `wait_available()` blocks until then. While idle, a ping every
  `ping_interval_secs` notices an outage before the next write does.
- Errors: a unique violation is `DuplicateKeyError`; any other database error is `StoreError`. The database URL
  may hold a password: it never appears in errors, logs or `repr` (`redact_url`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog
import trio

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import Side
from trader.domain.positions import Position
from trader.integrations.backoff import Backoff, BackoffCounter
from trader.integrations.store.base import (
    DailyPnlRecord,
    DuplicateKeyError,
    IntentRecord,
    IntentState,
    Migration,
    OpportunityRecord,
    OrderEventRecord,
    OrderRecord,
    RiskEventRecord,
    SnipedMarket,
    StoreError,
    StoreStatistics,
    TradeRecord,
    dump_detail,
    load_detail,
    load_migrations,
)
from trader.integrations.trio_asyncio_bridge import AsyncioBridge, collapse_group, open_asyncio_bridge

log = structlog.get_logger(__name__)

T = TypeVar("T")

__all__ = [
    "PostgresSettings",
    "PostgresStore",
    "PostgresStoreStatistics",
    "StoreUnavailable",
    "drop_postgres_schema",
    "migrate_postgres",
    "open_postgres_store",
    "redact_url",
]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_LOCK_KEY = 0x7472616465720001  # "trader" + 1: the advisory lock that serialises migrations
_MIN_BIGINT = -(2**63)


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the store is reconnecting. Nothing was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresSettings:
    """Where and how to reach PostgreSQL (`TRADER_STORE__*`; the URL also as `TRADER_DATABASE_URL`).

    - `url`: `postgresql://user[:password]@host:port/database` (never logged).
    - `schema` (default None: the server's search_path): a schema to create if missing and to work in.
    - `connect_timeout_secs` (5.0): one connection attempt.
    - `commit_timeout_secs` (2.0): deadline of the shielded COMMIT/ROLLBACK (and of closing).
    - `ping_interval_secs` (2.0): health check of an idle connection, so an outage is seen without a write.
    - `reconnect_initial_secs` (0.25), `reconnect_max_secs` (5.0): backoff between reconnection attempts.
    """

    url: str = field(repr=False)
    schema: str | None = None
    connect_timeout_secs: float = 5.0
    commit_timeout_secs: float = 2.0
    ping_interval_secs: float = 2.0
    reconnect_initial_secs: float = 0.25
    reconnect_max_secs: float = 5.0

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"url: expected a postgresql:// URL, got {redact_url(self.url)!r}")
        if self.schema is not None and not _SCHEMA_NAME.match(self.schema):
            raise ValueError(f"schema: expected a lower-case SQL identifier, got {self.schema!r}")
        for name in ("connect_timeout_secs", "commit_timeout_secs", "ping_interval_secs", "reconnect_initial_secs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if not self.reconnect_max_secs >= self.reconnect_initial_secs:
            raise ValueError("reconnect_max_secs: must be >= reconnect_initial_secs")

    @property
    def backoff(self) -> Backoff:
        return Backoff(initial_secs=self.reconnect_initial_secs, max_secs=self.reconnect_max_secs)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresStoreStatistics(StoreStatistics):
    available: bool
    outages: int  # times the connection was lost
    reconnects: int  # times it came back
    unavailable_calls: int  # calls refused while it was down


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***` (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _rows_affected(status: str) -> int:
    """The row count of a command status such as 'INSERT 0 1' or 'UPDATE 3'."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


def _quote_ident(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _datetime_to_ns(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // dt.timedelta(microseconds=1) * 1_000


def _ns_to_datetime(ns: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def _exponent(text: str) -> Decimal | int:
    value = Decimal(text)
    return int(value) if "." not in text and "E" not in text.upper() else value


# -- SQL ---------------------------------------------------------------------------------------------------------

_CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_ns BIGINT NOT NULL
)
"""

_UPSERT_MARKET = """
    INSERT INTO markets (condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size,
                         neg_risk, neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active,
                         accepting_orders, closed, end_date_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
    ON CONFLICT (condition_id) DO UPDATE SET
        question = excluded.question, slug = excluded.slug, yes_token_id = excluded.yes_token_id,
        no_token_id = excluded.no_token_id, outcomes = excluded.outcomes, tick_size = excluded.tick_size,
        min_order_size = excluded.min_order_size, neg_risk = excluded.neg_risk,
        neg_risk_market_id = excluded.neg_risk_market_id, fee_rate = excluded.fee_rate,
        fee_exponent = excluded.fee_exponent, fee_taker_only = excluded.fee_taker_only, active = excluded.active,
        accepting_orders = excluded.accepting_orders, closed = excluded.closed, end_date_ns = excluded.end_date_ns,
        updated_at_ns = excluded.updated_at_ns
"""
_SELECT_MARKETS = """
    SELECT condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size, neg_risk,
           neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active, accepting_orders, closed, end_date_ns
    FROM markets ORDER BY condition_id
"""
_INSERT_INTENT = """
    INSERT INTO order_intents (client_order_id, order_id, strategy, condition_id, token_id, side, price, size,
                               order_type, post_only, expiration, group_id, created_at_ns, state, reason,
                               resolved_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""
_SELECT_INTENTS = """
    SELECT client_order_id, order_id, strategy, condition_id, token_id, side, price, size, order_type, post_only,
           expiration, group_id, created_at_ns, state, reason, resolved_at_ns
    FROM order_intents
"""
_RESOLVE_INTENT = """
    UPDATE order_intents SET state = $1, reason = $2, resolved_at_ns = $3, order_id = COALESCE($4, order_id)
    WHERE client_order_id = $5
"""
# One statement, so it is atomic without a transaction: upsert the order and, when its status or matched size
# changed (compared as numbers: '7.5' = '7.50'), append the next event. Data-modifying CTEs always run.
_RECORD_ORDER = """
    WITH before AS (
        SELECT status, size_matched FROM orders WHERE order_id = $1 FOR UPDATE
    ), upsert AS (
        INSERT INTO orders (order_id, client_order_id, strategy, condition_id, token_id, side, price, original_size,
                            size_matched, order_type, status, reason, is_open, created_at_ns, updated_at_ns)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
        ON CONFLICT (order_id) DO UPDATE SET
            client_order_id = COALESCE(excluded.client_order_id, orders.client_order_id),
            strategy = COALESCE(excluded.strategy, orders.strategy),
            condition_id = COALESCE(excluded.condition_id, orders.condition_id),
            size_matched = excluded.size_matched, status = excluded.status, reason = excluded.reason,
            is_open = excluded.is_open, updated_at_ns = excluded.updated_at_ns
        RETURNING 1
    )
    INSERT INTO order_events (order_id, seq, status, size_matched, reason, ts_ns)
    SELECT $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_events WHERE order_id = $1), $11, $9, $16, $15
    WHERE NOT EXISTS (
        SELECT 1 FROM before WHERE before.status = $11 AND before.size_matched::numeric = $9::text::numeric
    )
"""
_SELECT_ORDERS = """
    SELECT order_id, client_order_id, strategy, condition_id, token_id, side, price, original_size, size_matched,
           order_type, status, reason, created_at_ns, updated_at_ns
    FROM orders
"""
_UPSERT_TRADE = """
    INSERT INTO trades (trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity,
                        status, match_time_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (trade_id, order_id) DO UPDATE SET
        client_order_id = COALESCE(excluded.client_order_id, trades.client_order_id),
        status = excluded.status, fee = excluded.fee, fee_shares = excluded.fee_shares,
        updated_at_ns = excluded.updated_at_ns
"""
_SELECT_TRADES = """
    SELECT trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity, status,
           match_time_ns, updated_at_ns
    FROM trades WHERE match_time_ns >= $1 ORDER BY match_time_ns, trade_id, order_id
"""
_UPSERT_POSITION = """
    INSERT INTO positions (token_id, quantity, cost_basis, realized_pnl, fees_paid, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (token_id) DO UPDATE SET
        quantity = excluded.quantity, cost_basis = excluded.cost_basis, realized_pnl = excluded.realized_pnl,
        fees_paid = excluded.fees_paid, updated_at_ns = excluded.updated_at_ns
"""
_UPSERT_DAILY_PNL = """
    INSERT INTO daily_pnl (day, realized, unrealized, fees, updated_at_ns) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (day) DO UPDATE SET
        realized = excluded.realized, unrealized = excluded.unrealized, fees = excluded.fees,
        updated_at_ns = excluded.updated_at_ns
"""
_INSERT_RISK_EVENT = """
    INSERT INTO risk_events (event_id, ts_ns, kind, reason_code, trading_state, detail) VALUES ($1, $2, $3, $4, $5, $6)
"""
_INSERT_OPPORTUNITY = """
    INSERT INTO opportunities (opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


# -- migrations --------------------------------------------------------------------------------------------------


async def _migrate_on(bridge: AsyncioBridge, conn: Any, migrations: Sequence[Migration]) -> int:
    """Apply the migrations not yet applied, in one transaction under an advisory lock. Returns the version."""

    async def body(conn: Any) -> list[Migration]:
        await conn.execute("BEGIN")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        await conn.execute(_CREATE_SCHEMA_MIGRATIONS)
        applied = {r[0]: r[1] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
        known = {m.version: m for m in migrations}
        newer = sorted(set(applied) - set(known))
        if newer:
            raise StoreError(f"database schema has migrations {newer} that this code does not know: refusing to use it")
        done = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise StoreError(f"migration {migration.version:04d}_{migration.name} changed after it was applied")
                continue
            await conn.execute(migration.sql)  # the simple-query protocol runs every statement of the file
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at_ns) VALUES ($1, $2, $3, $4)",
                migration.version,
                migration.name,
                migration.checksum,
                time.time_ns(),
            )
            done.append(migration)
        return done

    try:
        done = await bridge.run(body, conn)
    except BaseException:
        with trio.move_on_after(5.0, shield=True):
            await bridge.run(conn.execute, "ROLLBACK")
        raise
    with trio.move_on_after(5.0, shield=True) as scope:
        await bridge.run(conn.execute, "COMMIT")
    if scope.cancelled_caught:  # pragma: no cover - needs a server that hangs on COMMIT
        raise StoreUnavailable("COMMIT of the migrations did not complete in time: outcome unknown")
    for migration in done:
        log.info("store_migrated", version=migration.version, name=migration.name)
    return max((m.version for m in migrations), default=0)


async def _connect(bridge: AsyncioBridge, settings: PostgresSettings) -> Any:
    server_settings = {"application_name": "trader"}
    if settings.schema is not None:
        server_settings["search_path"] = settings.schema
    conn = await bridge.run(
        asyncpg.connect, settings.url, timeout=settings.connect_timeout_secs, server_settings=server_settings
    )
    try:
        if settings.schema is not None:
            # IF NOT EXISTS is not safe against a concurrent CREATE: the loser sees a unique violation.
            with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
                await bridge.run(conn.execute, f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(settings.schema)}")
    except BaseException:
        conn.terminate()
        raise
    return conn


async def migrate_postgres(settings: PostgresSettings) -> int:
    """Connect, apply the shipped migrations (`trader db migrate`), disconnect. Returns the schema version."""
    async with open_asyncio_bridge() as bridge:
        try:
            conn = await _connect(bridge, settings)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreUnavailable(f"cannot connect to {redact_url(settings.url)}: {exc}") from exc
        try:
            return await _migrate_on(bridge, conn, load_migrations())
        except asyncpg.PostgresError as exc:
            raise StoreError(f"migration failed: {exc}") from exc
        finally:
            with trio.CancelScope(shield=True):
                await bridge.run(conn.close, timeout=settings.commit_timeout_secs)


async def drop_postgres_schema(settings: PostgresSettings) -> None:
    """Drop `settings.schema` and everything in it (test teardown, throwaway databases)."""
    if settings.schema is None:
        raise ValueError("schema: name the schema to drop")
    async with open_asyncio_bridge() as bridge:
        conn = await bridge.run(asyncpg.connect, settings.url, timeout=settings.connect_timeout_secs)
        try:
            await bridge.run(conn.execute, f"DROP SCHEMA IF EXISTS {_quote_ident(settings.schema)} CASCADE")
        finally:
            with trio.CancelScope(shield=True):
                await bridge.run(conn.close, timeout=settings.commit_timeout_secs)


# -- the store ---------------------------------------------------------------------------------------------------


class PostgresStore:
    """The `Store` on PostgreSQL. Open it with `open_postgres_store(settings)`."""

    def __init__(self, bridge: AsyncioBridge, settings: PostgresSettings) -> None:
        self._bridge = bridge
        self._settings = settings
        self._conn: Any = None
        self._lock = trio.Lock()
        self._lost = trio.Event()
        self._up = trio.Event()
        self._schema_version = 0
        self._closed = False
        self._last_used = trio.current_time()
        self._writes = 0
        self._reads = 0
        self._errors = 0
        self._outages = 0
        self._reconnects = 0
        self._unavailable_calls = 0

    # -- connection state ------------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True while the connection is up: new intents can be written (and so orders sent)."""
        return self._conn is not None and not self._closed

    async def wait_available(self) -> None:
        """Return once the store is available (at once if it is)."""
        while not self.available:
            if self._closed:
                raise StoreError("the store is closed")
            await self._up.wait()

    async def wait_unavailable(self) -> None:
        """Return once the connection is lost (at once if it is down): the engine halts new orders then."""
        while self.available:
            await self._lost.wait()

    async def _open(self) -> None:
        conn = await _connect(self._bridge, self._settings)
        try:
            self._schema_version = await _migrate_on(self._bridge, conn, load_migrations())
        except BaseException:
            conn.terminate()
            raise
        self._attach(conn)

    def _attach(self, conn: Any) -> None:
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self._lost = trio.Event()
        self._up.set()
        self._last_used = trio.current_time()

    def _on_terminated(self, conn: Any) -> None:
        # Called on the asyncio side when asyncpg sees the connection close (server shutdown, network).
        if conn is self._conn:
            self._drop("connection terminated")

    def _drop(self, why: str) -> None:
        """Forget the connection (terminating it) and let the reconnect task take over."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._outages += 1
        self._up = trio.Event()
        self._lost.set()
        log.warning("store_unavailable", reason=why)
        if not conn.is_closed():
            conn.terminate()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection: ping it while idle, reconnect with backoff when it is lost. Runs until cancelled."""
        counter = BackoffCounter(self._settings.backoff, reset_after_secs=self._settings.ping_interval_secs)
        task_status.started()
        while True:
            if self._conn is None:
                await self._reconnect(counter)
                continue
            with trio.move_on_at(self._last_used + self._settings.ping_interval_secs):
                await self._lost.wait()
                continue
            if trio.current_time() - self._last_used >= self._settings.ping_interval_secs:
                await self._ping()

    async def _ping(self) -> None:
        # `_call` drops the connection if it was lost; any other error shows on the next real call.
        with contextlib.suppress(StoreError):
            await self._call(lambda conn: self._bridge.run(conn.fetchval, "SELECT 1"), write=None)

    async def _reconnect(self, counter: BackoffCounter) -> None:
        delay = counter.next_delay(trio.current_time())
        await trio.sleep(delay)
        conn = None
        try:
            with trio.fail_after(self._settings.connect_timeout_secs * 2):
                conn = await _connect(self._bridge, self._settings)
                # The server may have come back empty (a new database): make sure the schema is there.
                self._schema_version = await _migrate_on(self._bridge, conn, load_migrations())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, trio.TooSlowError) as exc:
            log.info("store_reconnect_failed", attempt=counter.attempt, error=type(exc).__name__)
            if conn is not None:
                conn.terminate()
            return
        self._reconnects += 1
        counter.record_connected(trio.current_time())
        self._attach(conn)
        log.warning("store_available", outages=self._outages)

    # -- plumbing -------------------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[[Any], Awaitable[T]], *, write: bool | None) -> T:
        """Run `fn(conn)` with the connection held; map asyncpg errors; drop a connection that broke."""
        if self._closed:
            raise StoreError("the store is closed")
        async with self._lock:
            conn = self._conn
            if conn is None:
                self._unavailable_calls += 1
                raise StoreUnavailable("PostgreSQL store unavailable (reconnecting)")
            try:
                result = await fn(conn)
            except asyncpg.UniqueViolationError as exc:
                self._errors += 1
                raise DuplicateKeyError(f"duplicate key: {exc}") from exc
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self._errors += 1
                if conn.is_closed() or isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError):
                    self._drop(type(exc).__name__)
                    raise StoreUnavailable(f"PostgreSQL connection lost: {type(exc).__name__}") from exc
                if isinstance(exc, asyncpg.PostgresError):
                    raise StoreError(f"postgres: {exc}") from exc
                raise StoreError(f"postgres client: {exc}") from exc
            finally:
                self._last_used = trio.current_time()
        if write is True:
            self._writes += 1
        elif write is False:
            self._reads += 1
        return result

    async def _execute(self, sql: str, *args: object) -> str:
        status: str = await self._call(lambda conn: self._bridge.run(conn.execute, sql, *args), write=True)
        return status

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        rows: list[Any] = await self._call(lambda conn: self._bridge.run(conn.fetch, sql, *args), write=False)
        return rows

    async def _fetchrow(self, sql: str, *args: object) -> Any:
        return await self._call(lambda conn: self._bridge.run(conn.fetchrow, sql, *args), write=False)

    async def transaction(self, body: Callable[[Any], Awaitable[T]]) -> T:
        """Run `body(conn)` (an asyncio coroutine function, on the bridge) in a transaction.

        The body may be cancelled; COMMIT and ROLLBACK are shielded, with `commit_timeout_secs` as deadline. A COMMIT
        that does not answer in time drops the connection and raises `StoreUnavailable` (outcome unknown).
        """

        async def begin_and_run(conn: Any) -> T:
            await conn.execute("BEGIN")
            return await body(conn)

        async def run(conn: Any) -> T:
            try:
                result = await self._bridge.run(begin_and_run, conn)
            except BaseException:
                await self._finish(conn, "ROLLBACK")
                raise
            await self._finish(conn, "COMMIT")
            return result

        return await self._call(run, write=True)

    async def _finish(self, conn: Any, statement: str) -> None:
        timeout = self._settings.commit_timeout_secs
        try:
            with trio.move_on_after(timeout, shield=True) as scope:
                await self._bridge.run(conn.execute, statement)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if statement == "COMMIT":
                raise
            self._drop(f"{statement} failed")  # the original error propagates; the connection is not trusted
            return
        if scope.cancelled_caught:
            self._drop(f"{statement} timed out")
            if statement == "COMMIT":
                raise StoreUnavailable(f"COMMIT did not complete within {timeout}s: outcome unknown")

    async def aclose(self) -> None:
        """Close the connection (shielded, bounded by `commit_timeout_secs`). Idempotent."""
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        self._up.set()  # wake `wait_available` callers: they now see a closed store
        self._lost.set()
        if conn is not None and not conn.is_closed():
            with trio.move_on_after(self._settings.commit_timeout_secs, shield=True) as scope:
                await self._bridge.run(conn.close, timeout=self._settings.commit_timeout_secs)
            if scope.cancelled_caught:
                conn.terminate()

    def statistics(self) -> PostgresStoreStatistics:
        return PostgresStoreStatistics(
            writes=self._writes,
            reads=self._reads,
            errors=self._errors,
            schema_version=self._schema_version,
            available=self.available,
            outages=self._outages,
            reconnects=self._reconnects,
            unavailable_calls=self._unavailable_calls,
        )

    # -- markets --------------------------------------------------------------------------------------------------

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None:
        await self._execute(
            _UPSERT_MARKET,
            market.condition_id,
            market.question,
            market.slug,
            market.yes_token_id,
            market.no_token_id,
            json.dumps(list(market.outcomes)),
            str(market.tick_size),
            str(market.min_order_size),
            market.neg_risk,
            market.neg_risk_market_id,
            str(market.fees.rate),
            str(market.fees.exponent),
            market.fees.taker_only,
            market.active,
            market.accepting_orders,
            market.closed,
            None if market.end_date is None else _datetime_to_ns(market.end_date),
            ts_ns,
        )

    async def load_markets(self) -> list[Market]:
        markets = []
        for r in await self._fetch(_SELECT_MARKETS):
            outcomes = json.loads(r[5])
            markets.append(
                Market(
                    condition_id=r[0],
                    question=r[1],
                    slug=r[2],
                    yes_token_id=r[3],
                    no_token_id=r[4],
                    outcomes=(outcomes[0], outcomes[1]),
                    tick_size=Decimal(r[6]),
                    min_order_size=Decimal(r[7]),
                    neg_risk=r[8],
                    neg_risk_market_id=r[9],
                    fees=FeeSchedule(rate=Decimal(r[10]), exponent=_exponent(r[11]), taker_only=r[12]),
                    active=r[13],
                    accepting_orders=r[14],
                    closed=r[15],
                    end_date=None if r[16] is None else _ns_to_datetime(r[16]),
                )
            )
        return markets

    # -- intents (write-ahead) ------------------------------------------------------------------------------------

    async def record_intent(self, intent: IntentRecord) -> None:
        await self._execute(
            _INSERT_INTENT,
            intent.client_order_id,
            intent.order_id,
            intent.strategy,
            intent.condition_id,
            intent.token_id,
            intent.side.value,
            str(intent.price),
            str(intent.size),
            intent.order_type.value,
            intent.post_only,
            intent.expiration,
            intent.group_id,
            intent.created_at_ns,
            intent.state.value,
            intent.reason,
            intent.resolved_at_ns,
        )

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        status = await self._execute(_RESOLVE_INTENT, state.value, reason, ts_ns, order_id, client_order_id)
        if _rows_affected(status) != 1:
            raise StoreError(f"no intent with client_order_id {client_order_id!r}")

    async def load_pending_intents(self) -> list[IntentRecord]:
        sql = _SELECT_INTENTS + " WHERE state = $1 ORDER BY created_at_ns, client_order_id"
        return [_intent(r) for r in await self._fetch(sql, IntentState.PENDING.value)]

    async def load_intent(self, client_order_id: str) -> IntentRecord | None:
        row = await self._fetchrow(_SELECT_INTENTS + " WHERE client_order_id = $1", client_order_id)
        return None if row is None else _intent(row)

    # -- orders ---------------------------------------------------------------------------------------------------

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        await self._execute(
            _RECORD_ORDER,
            order.order_id,
            order.client_order_id,
            order.strategy,
            order.condition_id,
            order.token_id,
            order.side.value,
            str(order.price),
            str(order.original_size),
            str(order.size_matched),
            order.order_type.value,
            order.status.value,
            order.reason,
            order.status.is_open,
            order.created_at_ns,
            order.updated_at_ns,
            reason,
        )

    async def load_open_orders(self) -> list[OrderRecord]:
        sql = _SELECT_ORDERS + " WHERE is_open ORDER BY created_at_ns, order_id"
        return [_order(r) for r in await self._fetch(sql)]

    async def load_order(self, order_id: str) -> OrderRecord | None:
        row = await self._fetchrow(_SELECT_ORDERS + " WHERE order_id = $1", order_id)
        return None if row is None else _order(row)

    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]:
        sql = """SELECT order_id, seq, status, size_matched, reason, ts_ns FROM order_events
                 WHERE order_id = $1 ORDER BY seq"""
        return [
            OrderEventRecord(
                order_id=r[0], seq=r[1], status=OrderStatus(r[2]), size_matched=Decimal(r[3]), reason=r[4], ts_ns=r[5]
            )
            for r in await self._fetch(sql, order_id)
        ]

    # -- trades ---------------------------------------------------------------------------------------------------

    async def record_trade(self, trade: TradeRecord) -> None:
        await self._execute(
            _UPSERT_TRADE,
            trade.trade_id,
            trade.order_id,
            trade.client_order_id,
            trade.token_id,
            trade.side.value,
            str(trade.price),
            str(trade.size),
            str(trade.fee),
            str(trade.fee_shares),
            trade.liquidity.value,
            trade.status.value,
            trade.match_time_ns,
            trade.updated_at_ns,
        )

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]:
        rows = await self._fetch(_SELECT_TRADES, _MIN_BIGINT if since_ns is None else since_ns)
        return [
            TradeRecord(
                trade_id=r[0],
                order_id=r[1],
                client_order_id=r[2],
                token_id=r[3],
                side=Side(r[4]),
                price=Decimal(r[5]),
                size=Decimal(r[6]),
                fee=Decimal(r[7]),
                fee_shares=Decimal(r[8]),
                liquidity=Liquidity(r[9]),
                status=TradeStatus(r[10]),
                match_time_ns=r[11],
                updated_at_ns=r[12],
            )
            for r in rows
        ]

    # -- positions and PnL ----------------------------------------------------------------------------------------

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        await self._execute(
            _UPSERT_POSITION,
            position.token_id,
            str(position.quantity),
            str(position.cost_basis),
            str(position.realized_pnl),
            str(position.fees_paid),
            ts_ns,
        )

    async def load_positions(self) -> list[Position]:
        sql = "SELECT token_id, quantity, cost_basis, realized_pnl, fees_paid FROM positions ORDER BY token_id"
        return [
            Position(
                token_id=r[0],
                quantity=Decimal(r[1]),
                cost_basis=Decimal(r[2]),
                realized_pnl=Decimal(r[3]),
                fees_paid=Decimal(r[4]),
            )
            for r in await self._fetch(sql)
        ]

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None:
        await self._execute(
            _UPSERT_DAILY_PNL,
            pnl.day.isoformat(),
            str(pnl.realized),
            str(pnl.unrealized),
            str(pnl.fees),
            pnl.updated_at_ns,
        )

    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None:
        sql = "SELECT day, realized, unrealized, fees, updated_at_ns FROM daily_pnl WHERE day = $1"
        r = await self._fetchrow(sql, day.isoformat())
        if r is None:
            return None
        return DailyPnlRecord(
            day=dt.date.fromisoformat(r[0]),
            realized=Decimal(r[1]),
            unrealized=Decimal(r[2]),
            fees=Decimal(r[3]),
            updated_at_ns=r[4],
        )

    # -- risk events ----------------------------------------------------------------------------------------------

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await self._execute(
            _INSERT_RISK_EVENT,
            event.event_id,
            event.ts_ns,
            event.kind,
            event.reason_code,
            event.trading_state,
            dump_detail(event.detail),
        )

    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]:
        sql = """SELECT event_id, ts_ns, kind, reason_code, trading_state, detail FROM risk_events
                 WHERE ts_ns >= $1 ORDER BY ts_ns, event_id"""
        return [
            RiskEventRecord(
                event_id=r[0], ts_ns=r[1], kind=r[2], reason_code=r[3], trading_state=r[4], detail=load_detail(r[5])
            )
            for r in await self._fetch(sql, _MIN_BIGINT if since_ns is None else since_ns)
        ]

    # -- sniped markets -------------------------------------------------------------------------------------------

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        sql = """INSERT INTO sniped_markets (condition_id, token_id, sniped_at_ns, detail) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (condition_id) DO NOTHING"""
        status = await self._execute(
            sql, sniped.condition_id, sniped.token_id, sniped.sniped_at_ns, dump_detail(sniped.detail)
        )
        return _rows_affected(status) == 1

    async def load_sniped_markets(self) -> list[SnipedMarket]:
        sql = "SELECT condition_id, token_id, sniped_at_ns, detail FROM sniped_markets ORDER BY sniped_at_ns"
        return [
            SnipedMarket(condition_id=r[0], token_id=r[1], sniped_at_ns=r[2], detail=load_detail(r[3]))
            for r in await self._fetch(sql)
        ]

    # -- opportunities --------------------------------------------------------------------------------------------

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        rows = [
            (
                o.opportunity_id,
                o.ts_ns,
                o.strategy,
                o.kind,
                o.market,
                str(o.edge),
                str(o.size),
                o.traded,
                dump_detail(o.detail),
            )
            for o in opportunities
        ]
        if rows:  # executemany is one round trip and atomic (all rows or none)
            await self._call(lambda conn: self._bridge.run(conn.executemany, _INSERT_OPPORTUNITY, rows), write=True)

    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]:
        sql = """SELECT opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail FROM opportunities
                 WHERE ts_ns >= $1 ORDER BY ts_ns, opportunity_id"""
        return [
            OpportunityRecord(
                opportunity_id=r[0],
                ts_ns=r[1],
                strategy=r[2],
                kind=r[3],
                market=r[4],
                edge=Decimal(r[5]),
                size=Decimal(r[6]),
                traded=r[7],
                detail=load_detail(r[8]),
            )
            for r in await self._fetch(sql, _MIN_BIGINT if since_ns is None else since_ns)
        ]


def _intent(r: Any) -> IntentRecord:
    return IntentRecord(
        client_order_id=r[0],
        order_id=r[1],
        strategy=r[2],
        condition_id=r[3],
        token_id=r[4],
        side=Side(r[5]),
        price=Decimal(r[6]),
        size=Decimal(r[7]),
        order_type=OrderType(r[8]),
        post_only=r[9],
        expiration=r[10],
        group_id=r[11],
        created_at_ns=r[12],
        state=IntentState(r[13]),
        reason=r[14],
        resolved_at_ns=r[15],
    )


def _order(r: Any) -> OrderRecord:
    return OrderRecord(
        order_id=r[0],
        client_order_id=r[1],
        strategy=r[2],
        condition_id=r[3],
        token_id=r[4],
        side=Side(r[5]),
        price=Decimal(r[6]),
        original_size=Decimal(r[7]),
        size_matched=Decimal(r[8]),
        order_type=OrderType(r[9]),
        status=OrderStatus(r[10]),
        reason=r[11],
        created_at_ns=r[12],
        updated_at_ns=r[13],
    )


@asynccontextmanager
async def open_postgres_store(
    settings: PostgresSettings, *, bridge: AsyncioBridge | None = None
) -> AsyncIterator[PostgresStore]:
    """Connect, migrate, and keep the connection (reconnecting in the background) until the block exits.

    The first connection must succeed (`StoreUnavailable` otherwise): an engine does not start without its store.
    """
    if bridge is None:
        async with open_asyncio_bridge() as own_bridge, open_postgres_store(settings, bridge=own_bridge) as store:
            yield store
        return
    store = PostgresStore(bridge, settings)
    try:
        await store._open()
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, TimeoutError) as exc:
        raise StoreUnavailable(f"cannot connect to {redact_url(settings.url)}: {type(exc).__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"cannot open the store at {redact_url(settings.url)}: {exc}") from exc
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            try:
                yield store
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise collapse_group(group) from None  # the caller's own exception, not wrapped by our nursery
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
