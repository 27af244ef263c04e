"""An in-memory lease server for leadership tests on MockClock: the advisory lock and the `ha_lease` row as
`trader.integrations.store.lease.PostgresLease` keeps them, with faults (the server down, one client cut off).

    server = FakeLeaseServer()
    a, b = server.client("a"), server.client("b")      # each is a `LeaseBackend`
"""

from __future__ import annotations

import trio

from trader.integrations.store.lease import Acquired, LeaseRow, Renewal
from trader.integrations.store.postgres import StoreUnavailable

__all__ = ["FakeLease", "FakeLeaseServer"]


class FakeLeaseServer:
    """The database's side: who holds the lock, the row (times on Trio's clock), and the faults."""

    def __init__(self) -> None:
        self.lock_holder: FakeLease | None = None
        self.epoch = 0
        self.holder = ""
        self.lease_secs = 0.0
        self.acquired_at = 0.0
        self.renewed_at = 0.0
        self.released = False
        self.step_down = False
        self.has_row = False
        self.down = False  # every call fails (the server restarting)
        self.broken: list[str] = []  # holders whose session a standby ended

    def client(self, holder: str) -> FakeLease:
        return FakeLease(self, holder)

    def restart(self) -> None:
        """Every session ends (the locks with them); the row stays."""
        self.lock_holder = None

    def row(self) -> LeaseRow | None:
        if not self.has_row:
            return None
        now = trio.current_time()
        return LeaseRow(
            epoch=self.epoch,
            holder=self.holder,
            lease_secs=self.lease_secs,
            age_secs=now - self.renewed_at,
            held_for_secs=now - self.acquired_at,
            released=self.released,
            step_down=self.step_down,
        )


class FakeLease:
    """One engine's lease connection. `cut` makes its calls hang (a partition from the database)."""

    def __init__(self, server: FakeLeaseServer, holder: str) -> None:
        self.server = server
        self.holder = holder
        self.cut = False
        self.calls = 0

    async def _enter(self) -> FakeLeaseServer:
        self.calls += 1
        await trio.sleep(0.001)  # a round trip
        if self.cut:
            await trio.sleep_forever()
        if self.server.down:
            raise StoreUnavailable("fake lease: the server is down")
        return self.server

    async def read(self) -> LeaseRow | None:
        return (await self._enter()).row()

    async def try_acquire(self, *, lease_secs: float) -> Acquired | None:
        server = await self._enter()
        if server.lock_holder is not None and server.lock_holder is not self:
            return None
        server.lock_holder = self
        previous = server.row()
        now = trio.current_time()
        server.epoch += 1
        server.has_row = True
        server.holder, server.lease_secs = self.holder, lease_secs
        server.acquired_at = server.renewed_at = now
        server.released = server.step_down = False
        wait = 0.0 if previous is None or previous.released else max(0.0, previous.lease_secs - previous.age_secs)
        return Acquired(epoch=server.epoch, wait_secs=wait, previous=previous)

    async def renew(self, epoch: int, *, lease_secs: float) -> Renewal:
        server = await self._enter()
        if server.lock_holder is not self or server.epoch != epoch:
            return Renewal(ok=False, step_down=False)
        server.renewed_at, server.lease_secs = trio.current_time(), lease_secs
        return Renewal(ok=True, step_down=server.step_down)

    async def release(self, epoch: int) -> None:
        server = await self._enter()
        if server.epoch == epoch:
            server.released, server.step_down = True, False
        if server.lock_holder is self:
            server.lock_holder = None

    async def break_stale(self) -> int | None:
        server = await self._enter()
        holder = server.lock_holder
        if holder is None or holder is self:
            return None
        server.lock_holder = None
        server.broken.append(holder.holder)
        return 1

    def drop(self) -> None:
        """Close the session: the server frees the lock, unless this client is cut off (it never hears)."""
        if self.server.lock_holder is self and not self.cut:
            self.server.lock_holder = None
