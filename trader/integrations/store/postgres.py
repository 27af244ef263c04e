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
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog
import trio

from trader.config import check_positive_secs
from trader.infra.backoff import Backoff, BackoffCounter
from trader.infra.groups import collapse_group
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
from trader.integrations.store.sql import SqlStore
from trader.integrations.trio_asyncio_bridge import AsyncioBridge, open_asyncio_bridge

log = structlog.get_logger(__name__)

T = TypeVar("T")

__all__ = [
    "PostgresSettings",
    "PostgresStore",
    "PostgresStoreStatistics",
    "StoreFenced",
    "StoreUnavailable",
    "connect_postgres",
    "drop_postgres_schema",
    "migrate_postgres",
    "migrate_postgres_on",
    "open_postgres_store",
    "redact_url",
]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_LOCK_KEY = 0x7472616465720001  # "trader" + 1: the advisory lock that serialises migrations


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the store is reconnecting. Nothing was written."""


class StoreFenced(StoreError):
    """An intent from a leader whose epoch is no longer the lease's (a successor took over): refused, not written."""


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
        check_positive_secs(
            self, "connect_timeout_secs", "commit_timeout_secs", "ping_interval_secs", "reconnect_initial_secs"
        )
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
    fenced_writes: int = 0  # intents refused: written by a leader of an older epoch (HA)


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


# -- SQL (the shared statements are in `rows`) --------------------------------------------------------------------

# One statement, so it is atomic without a transaction: upsert the order (`rows.UPSERT_ORDER`, $1..$15) and, when
# its status or matched size changed (compared as numbers: '7.5' = '7.50'), append the next event with the reason
# $16. Data-modifying CTEs always run.
_RECORD_ORDER = (
    """
    WITH before AS (
        SELECT status, size_matched FROM orders WHERE order_id = $1 FOR UPDATE
    ), upsert AS ("""  # noqa: S608 - constants only; every value is a $n parameter
    + rows.UPSERT_ORDER
    + """
        RETURNING 1
    )
    INSERT INTO order_events (order_id, seq, status, size_matched, reason, ts_ns)
    SELECT $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_events WHERE order_id = $1), $11, $9, $16, $15
    WHERE NOT EXISTS (
        SELECT 1 FROM before WHERE before.status = $11 AND before.size_matched::numeric = $9::text::numeric
    )
"""
)


_LEASE_EPOCH = "SELECT epoch FROM ha_lease WHERE id = 1 FOR SHARE"
_INSERT_INTENT_WITH_EPOCH = rows.INSERT_INTENT.replace("resolved_at_ns)", "resolved_at_ns, epoch)").replace(
    "$16)", "$16, $17)"
)


# -- migrations ---------------------------------------------------------------------------------------------------


async def _migrate_on(bridge: AsyncioBridge, conn: Any, migrations: Sequence[Migration]) -> int:
    """Apply the migrations not yet applied, in one transaction under an advisory lock. Returns the version."""

    async def body(conn: Any) -> list[Migration]:
        await conn.execute("BEGIN")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        await conn.execute(rows.CREATE_SCHEMA_MIGRATIONS)
        applied = {r[0]: r[1] for r in await conn.fetch(rows.SELECT_APPLIED_MIGRATIONS)}
        done = pending_migrations(applied, migrations)
        for migration in done:
            await conn.execute(migration.sql)  # the simple-query protocol runs every statement of the file
            await conn.execute(
                rows.INSERT_MIGRATION, migration.version, migration.name, migration.checksum, time.time_ns()
            )
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


async def connect_postgres(bridge: AsyncioBridge, settings: PostgresSettings) -> Any:
    """A new connection (in `settings.schema`, created if missing), not migrated."""
    return await _connect(bridge, settings)


async def migrate_postgres_on(bridge: AsyncioBridge, conn: Any) -> int:
    """Apply the shipped migrations on an open connection; the schema version."""
    return await _migrate_on(bridge, conn, load_migrations())


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


# -- the store ----------------------------------------------------------------------------------------------------


class PostgresStore(SqlStore):
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
        self._fenced_writes = 0
        #: The leader's epoch (HA): set, every intent carries it and is refused once the lease has another epoch.
        self.fence_epoch: int | None = None

    # -- connection state -----------------------------------------------------------------------------------------

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
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # a connection the server ended mid-operation (a protocol state clash)
                TimeoutError,
            ) as exc:
                self._errors += 1
                broken = OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError
                if conn.is_closed() or isinstance(exc, broken):
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

    async def _execute(self, sql: str, *args: object) -> int:
        status: str = await self._call(lambda conn: self._bridge.run(conn.execute, sql, *args), write=True)
        return _rows_affected(status)

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
            fenced_writes=self._fenced_writes,
        )

    # -- what PostgreSQL does its own way -------------------------------------------------------------------------

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        await self._execute(_RECORD_ORDER, *rows.order_values(order), reason)

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        values = [rows.intent_values(i) for i in intents]
        if not values:
            return
        epoch = self.fence_epoch
        if epoch is None:  # executemany is one round trip and atomic (all rows or none)
            await self._call(lambda conn: self._bridge.run(conn.executemany, rows.INSERT_INTENT, values), write=True)
            return

        async def fenced(conn: Any) -> None:
            # FOR SHARE: a takeover's new epoch waits for this transaction, and this one sees any committed before.
            current = await conn.fetchval(_LEASE_EPOCH)
            if current != epoch:
                raise StoreFenced(f"intent refused: written under epoch {epoch}, the lease is at epoch {current}")
            await conn.executemany(_INSERT_INTENT_WITH_EPOCH, [(*v, epoch) for v in values])

        try:
            await self.transaction(fenced)
        except StoreFenced:
            self._fenced_writes += 1
            raise

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        values = [rows.opportunity_values(o) for o in opportunities]
        if values:  # executemany is one round trip and atomic (all rows or none)
            await self._call(
                lambda conn: self._bridge.run(conn.executemany, rows.INSERT_OPPORTUNITY, values), write=True
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
