"""The leadership lease on PostgreSQL: an advisory lock held on a connection of its own, plus the `ha_lease` row.

    async with open_postgres_lease(settings, key=lock_key, holder="engine-a") as lease:
        won = await lease.try_acquire(lease_secs=2.0)   # None: another engine holds the lock
        reply = await lease.renew(won.epoch, lease_secs=2.0)

- **The lock** (`pg_try_advisory_lock(key)`, session level) says who may hold the lease. It is held on a connection
  used for nothing else, so it dies with the process: a killed engine's lock is released by the server as soon as
  its socket closes.
- **The row** (`ha_lease`, migration 0005) carries the epoch (the fencing token, +1 at each takeover), the holder's
  name, its lease and its last renewal, on the server's clock. A renewal is `UPDATE ... WHERE epoch = mine`: once a
  successor took over, it finds nothing and the old holder knows it is fenced.
- **Breaking a stale holder**: an engine that is paused (SIGSTOP, a frozen VM) keeps its socket and so its lock. A
  standby that sees the row unrenewed for longer than its takeover wait ends that session
  (`pg_terminate_backend` of the lock's holder, found in `pg_locks`), which frees the lock. Both engines must
  connect as the same role (or one with `pg_signal_backend`).
- **Waiting out the previous lease**: a successor that acquires the lock while the previous holder's lease may
  still run (the server restarted, the lock fell with every session) gets `wait_secs`: how long before that lease
  has certainly ended. It must not send before then; its new epoch already fences the old holder's writes.

Everything here raises `StoreError` (`StoreUnavailable` when the connection is gone); the connection is reopened on
the next call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import structlog
import trio

from trader.integrations.store.base import StoreError
from trader.integrations.store.postgres import (
    PostgresSettings,
    StoreUnavailable,
    connect_postgres,
    migrate_postgres_on,
    redact_url,
)
from trader.integrations.trio_asyncio_bridge import AsyncioBridge, open_asyncio_bridge

__all__ = ["Acquired", "LeaseRow", "PostgresLease", "Renewal", "open_postgres_lease", "read_lease", "request_step_down"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

_NOW_NS = "(extract(epoch from clock_timestamp()) * 1000000000)::bigint"
_SELECT_ROW = f"""
    SELECT epoch, holder, lease_ms, {_NOW_NS} - renewed_at_ns, released, step_down, {_NOW_NS} - acquired_at_ns
    FROM ha_lease WHERE id = 1
"""  # noqa: S608 - constants only
_TAKE = f"""
    INSERT INTO ha_lease (id, epoch, holder, lease_ms, acquired_at_ns, renewed_at_ns, released, step_down)
    VALUES (1, 1, $1, $2, {_NOW_NS}, {_NOW_NS}, false, false)
    ON CONFLICT (id) DO UPDATE SET epoch = ha_lease.epoch + 1, holder = EXCLUDED.holder,
        lease_ms = EXCLUDED.lease_ms, acquired_at_ns = EXCLUDED.acquired_at_ns,
        renewed_at_ns = EXCLUDED.renewed_at_ns, released = false, step_down = false
    RETURNING epoch
"""  # noqa: S608 - constants only
_RENEW = f"""
    UPDATE ha_lease SET renewed_at_ns = {_NOW_NS}, lease_ms = $2 WHERE id = 1 AND epoch = $1 RETURNING step_down
"""  # noqa: S608 - constants only
_RELEASE = "UPDATE ha_lease SET released = true, step_down = false WHERE id = 1 AND epoch = $1"
_STEP_DOWN = "UPDATE ha_lease SET step_down = true WHERE id = 1 AND NOT released RETURNING epoch, holder"
#: The session holding the advisory lock `key` (a bigint key is split into classid, objid; objsubid 1).
_LOCK_HOLDER = """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database
        WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = $1
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRow:
    """The lease as the database has it; ages on the server's clock."""

    epoch: int
    holder: str
    lease_secs: float
    age_secs: float  # since the last renewal
    held_for_secs: float  # since it was acquired
    released: bool
    step_down: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquired:
    """The lease was taken: the new `epoch`, and how long the previous holder's lease may still run."""

    epoch: int
    wait_secs: float
    previous: LeaseRow | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewal:
    """`ok`: still ours (False: a successor took over: fenced). `step_down`: an operator asked us to step down."""

    ok: bool
    step_down: bool


def _row(record: Any) -> LeaseRow | None:
    if record is None:
        return None
    return LeaseRow(
        epoch=int(record[0]),
        holder=str(record[1]),
        lease_secs=int(record[2]) / 1000,
        age_secs=max(0, int(record[3])) / 1e9,
        held_for_secs=max(0, int(record[6])) / 1e9,
        released=bool(record[4]),
        step_down=bool(record[5]),
    )


class PostgresLease:
    """The lock and the row for one engine (`holder`), on a connection of its own. Open with `open_postgres_lease`."""

    def __init__(self, bridge: AsyncioBridge, settings: PostgresSettings, *, key: int, holder: str) -> None:
        if not 0 < key < 2**63:
            raise ValueError(f"lock key: 1 to 2**63-1, got {key}")
        self._bridge = bridge
        self._settings = settings
        self.key = key
        self.holder = holder
        self._conn: Any = None
        self._lock = trio.Lock()
        self.locked = False  # this connection holds the advisory lock

    async def _call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self.locked = False
                try:
                    with trio.fail_after(self._settings.connect_timeout_secs * 2):
                        self._conn = await connect_postgres(self._bridge, self._settings)
                        await migrate_postgres_on(self._bridge, self._conn)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, trio.TooSlowError) as e:
                    self._conn = None
                    raise StoreUnavailable(f"lease: cannot connect to {redact_url(self._settings.url)}: {e!r}") from e
            conn = self._conn
            try:
                return await fn(conn)
            except (
                OSError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                TimeoutError,
                asyncpg.PostgresConnectionError,
            ) as exc:
                self.drop()
                raise StoreUnavailable(f"lease: connection lost: {type(exc).__name__}") from exc
            except asyncpg.PostgresError as exc:
                if conn.is_closed():
                    self.drop()
                    raise StoreUnavailable(f"lease: connection lost: {exc}") from exc
                raise StoreError(f"lease: {exc}") from exc

    def drop(self) -> None:
        """Forget the connection (terminating it: the lock, if held, goes with it)."""
        conn, self._conn = self._conn, None
        self.locked = False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def read(self) -> LeaseRow | None:
        """The row (None before any engine led)."""
        return _row(await self._call(lambda conn: self._bridge.run(conn.fetchrow, _SELECT_ROW)))

    async def try_acquire(self, *, lease_secs: float) -> Acquired | None:
        """Take the lock if it is free, then the lease with the next epoch; None when another session holds it."""

        async def take(conn: Any) -> Acquired | None:
            if not self.locked:
                if not await self._bridge.run(conn.fetchval, "SELECT pg_try_advisory_lock($1)", self.key):
                    return None
                self.locked = True
            previous = _row(await self._bridge.run(conn.fetchrow, _SELECT_ROW))
            epoch = int(await self._bridge.run(conn.fetchval, _TAKE, self.holder, round(lease_secs * 1000)))
            wait = 0.0
            if previous is not None and not previous.released:
                wait = max(0.0, previous.lease_secs - previous.age_secs)
            return Acquired(epoch=epoch, wait_secs=wait, previous=previous)

        return await self._call(take)

    async def renew(self, epoch: int, *, lease_secs: float) -> Renewal:
        """Renew our lease (`epoch`); `ok=False` when a successor has taken over (or we lost the lock)."""

        async def renew(conn: Any) -> Renewal:
            if not self.locked:
                return Renewal(ok=False, step_down=False)
            record = await self._bridge.run(conn.fetchrow, _RENEW, epoch, round(lease_secs * 1000))
            return Renewal(ok=record is not None, step_down=record is not None and bool(record[0]))

        return await self._call(renew)

    async def release(self, epoch: int) -> None:
        """Step down: mark the lease released (a successor need not wait it out) and let go of the lock."""

        async def release(conn: Any) -> None:
            await self._bridge.run(conn.execute, _RELEASE, epoch)
            if self.locked:
                await self._bridge.run(conn.fetchval, "SELECT pg_advisory_unlock($1)", self.key)
                self.locked = False

        await self._call(release)

    async def break_stale(self) -> int | None:
        """End the session holding the lock (a paused or cut-off holder whose lease ran out); its pid, or None."""

        async def kill(conn: Any) -> int | None:
            pid = await self._bridge.run(conn.fetchval, _LOCK_HOLDER, self.key)
            if pid is None or pid == conn.get_server_pid():
                return None
            await self._bridge.run(conn.fetchval, "SELECT pg_terminate_backend($1)", pid)
            return int(pid)

        return await self._call(kill)

    async def aclose(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            self.locked = False
            if conn is not None and not conn.is_closed():
                with trio.move_on_after(self._settings.commit_timeout_secs, shield=True) as scope:
                    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                        await self._bridge.run(conn.close, timeout=self._settings.commit_timeout_secs)
                if scope.cancelled_caught:
                    conn.terminate()


@asynccontextmanager
async def open_postgres_lease(
    settings: PostgresSettings, *, key: int, holder: str, bridge: AsyncioBridge | None = None
) -> AsyncIterator[PostgresLease]:
    """A lease handle on a connection of its own (opened lazily, reopened after a loss); closed on exit."""
    if bridge is None:
        async with (
            open_asyncio_bridge() as own,
            open_postgres_lease(settings, key=key, holder=holder, bridge=own) as lease,
        ):
            yield lease
        return
    lease = PostgresLease(bridge, settings, key=key, holder=holder)
    try:
        yield lease
    finally:
        with trio.CancelScope(shield=True):
            await lease.aclose()


async def read_lease(settings: PostgresSettings) -> LeaseRow | None:
    """The lease row of the database (`trader ha status`)."""
    async with open_postgres_lease(settings, key=1, holder="") as lease:
        return await lease.read()


async def request_step_down(settings: PostgresSettings) -> LeaseRow | None:
    """Ask the leader to step down (`trader ha step-down`): it sees it at its next renewal. The row before, or None
    when nobody leads."""
    async with open_postgres_lease(settings, key=1, holder="") as lease:
        before = await lease.read()
        await lease._call(lambda conn: lease._bridge.run(conn.fetchrow, _STEP_DOWN))
        return before
