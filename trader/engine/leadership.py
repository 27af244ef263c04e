"""Active/standby leadership (`TRADER_HA__*`): which of the engines sharing one PostgreSQL store may trade.

```
Leadership.run
├── standby      every `poll_secs`: try the lease (the advisory lock, then the next epoch); if another holds it and
│                its row was not renewed for `takeover_secs` (the database's clock), end that holder's session
├── taking over  the lease is ours (our epoch fences the old leader's writes at once), but the previous holder's
│                lease may still run: wait it out (`Acquired.wait_secs`), renewing ours meanwhile
└── leader       renew every `renew_secs`; each renewal that lands extends the right to send to `lease_secs` after it
                 was STARTED. A renewal that finds another epoch (a successor), the lock lost, or `lease_secs` without
                 one landing: fenced, back to standby at once. An operator's `trader ha step-down`: released.
```

`may_send()` is the check before every send (orders, cancels, merges, heartbeats): this instance leads and its lease
has not run out on its own clock. A leader that is paused never gets to renew, so when it wakes the check already
fails, before it learns anything from the database. A standby breaks a holder only after `takeover_secs` without a
renewal on the server's clock; since `takeover_secs` > `lease_secs` and the leader counts its lease from before its
renewal left, the leader's right to send has ended before a successor can take over (clock RATES are assumed to
agree; no clock needs to be set right). The window left is the time between the check and the request leaving the
process: see docs/ha.md.

The pure part (`LeaseTimes`) takes the time as an argument; the service runs on Trio time (MockClock in tests).
"""

from __future__ import annotations

import enum
import math
import os
import socket
import zlib
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog
import trio

from trader.errors import ConfigError
from trader.integrations.store.base import StoreError
from trader.integrations.store.lease import Acquired, LeaseRow, Renewal

__all__ = ["HaSettings", "Leadership", "LeadershipStatistics", "LeaseBackend", "LeaseTimes", "Role", "lock_key_for"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HaSettings:
    """`TRADER_HA__*`: active/standby on the PostgreSQL store (see docs/ha.md). SQLite has no HA.

    - `enabled` (false): compete for leadership; only the leader trades, the others stand by (warm).
    - `instance` (none: `<hostname>-<pid>`): this engine's name in the lease row, `/status` and `trader ha status`.
    - `lock_key` (none: derived from `store.schema`): the PostgreSQL advisory lock key the engines of one account
      share (1 to 2**63-1). Pairs on different schemas of one database get different keys by default.
    - `lease_secs` (2.0): a leader stops sending this long after its last renewal started.
    - `renew_secs` (0.5): how often the leader renews (less than `lease_secs`).
    - `takeover_secs` (5.0): a standby ends the session of a holder that has not renewed for this long (more than
      `lease_secs`: the old leader has stopped sending by then). A killed leader's lock is free at once; this wait
      is for a paused or cut-off one.
    - `poll_secs` (0.5): how often a standby tries the lease.
    - `on_fenced` (standby): what a leader that lost its lease does once it has stopped trading: `standby` (compete
      again, warm) or `exit` (the process ends with status 3, for a supervisor such as systemd to restart).
    """

    enabled: bool = False
    instance: str | None = None
    lock_key: int | None = None
    lease_secs: float = 2.0
    renew_secs: float = 0.5
    takeover_secs: float = 5.0
    poll_secs: float = 0.5
    on_fenced: Literal["standby", "exit"] = "standby"

    def __post_init__(self) -> None:
        for name in ("lease_secs", "renew_secs", "takeover_secs", "poll_secs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"ha.{name}: must be a positive number of seconds, got {value}")
        if not self.renew_secs < self.lease_secs:
            raise ConfigError("ha.renew_secs: must be less than ha.lease_secs (a lease renewed before it runs out)")
        if not self.takeover_secs > self.lease_secs:
            raise ConfigError("ha.takeover_secs: must be more than ha.lease_secs (the old leader stops sending first)")
        if self.lock_key is not None and not 0 < self.lock_key < 2**63:
            raise ConfigError(f"ha.lock_key: 1 to 2**63-1, got {self.lock_key}")
        if self.instance is not None and not self.instance.strip():
            raise ConfigError("ha.instance: a name, or unset for <hostname>-<pid>")

    @property
    def instance_name(self) -> str:
        return self.instance or f"{socket.gethostname()}-{os.getpid()}"


def lock_key_for(settings: HaSettings, schema: str | None) -> int:
    """The advisory lock key: `ha.lock_key`, else one derived from the store's schema (stable across hosts)."""
    if settings.lock_key is not None:
        return settings.lock_key
    return 0x7472616400000000 | zlib.crc32(f"trader-ha:{schema or ''}".encode())


class Role(enum.StrEnum):
    STANDBY = "standby"
    TAKING_OVER = "taking_over"
    LEADER = "leader"


class LeaseBackend(Protocol):
    """The lease store (`trader.integrations.store.lease.PostgresLease`; a fake in `trader.testing`)."""

    async def read(self) -> LeaseRow | None: ...

    async def try_acquire(self, *, lease_secs: float) -> Acquired | None: ...

    async def renew(self, epoch: int, *, lease_secs: float) -> Renewal: ...

    async def release(self, epoch: int) -> None: ...

    async def break_stale(self) -> int | None: ...

    def drop(self) -> None: ...


@dataclass(slots=True)
class LeaseTimes:
    """The leader's own view of its lease, on its clock (pure: every method takes `now`)."""

    lease_secs: float
    valid_until: float = -math.inf
    renewed_at: float | None = None

    def renewed(self, started_at: float) -> None:
        """A renewal (or the acquisition) that left at `started_at` landed."""
        self.renewed_at = started_at
        self.valid_until = max(self.valid_until, started_at + self.lease_secs)

    def valid(self, now: float) -> bool:
        return now < self.valid_until

    def age(self, now: float) -> float | None:
        return None if self.renewed_at is None else now - self.renewed_at

    def end(self) -> None:
        self.valid_until = -math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadershipStatistics:
    instance: str
    role: str
    epoch: int | None
    lease_age_secs: float | None  # since our last renewal started (leader), else None
    lease_left_secs: float | None  # how long we may still send without another renewal
    takeovers: int  # times this instance became the leader
    fenced: int  # times it lost the lease without stepping down
    step_downs: int
    leader: str | None  # the holder as last read (standby) or us
    last_loss: str | None


class Leadership:
    """See the module docstring. One per engine process."""

    def __init__(self, lease: LeaseBackend, settings: HaSettings) -> None:
        self._lease = lease
        self.settings = settings
        self.instance = settings.instance_name
        self.role = Role.STANDBY
        self.epoch: int | None = None
        self._times = LeaseTimes(settings.lease_secs)
        self._takeover_at = math.inf
        self._rejoin_at = -math.inf
        self._changed = trio.Event()
        self.takeovers = 0
        self.fenced = 0
        self.step_downs = 0
        self.last_loss: str | None = None
        self.last_seen: LeaseRow | None = None
        self.breaks = 0

    # -- what the engine asks ---------------------------------------------------------------------------------------

    def may_send(self) -> bool:
        """True while this instance leads and its lease has not run out: the check before every send."""
        return self.role is Role.LEADER and self._times.valid(trio.current_time())

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    async def wait_leader(self) -> int:
        """Return the epoch once this instance leads (at once if it does)."""
        while self.role is not Role.LEADER:
            await self._changed.wait()
        assert self.epoch is not None
        return self.epoch

    async def wait_elected(self) -> int:
        """Return the epoch once this instance holds the lease (taking over or leading; at once if it does). It may
        not send before `wait_leader` returns: the previous leader's lease may still run."""
        while self.role is Role.STANDBY:
            await self._changed.wait()
        assert self.epoch is not None
        return self.epoch

    async def wait_term_leader(self, epoch: int) -> bool:
        """Wait until the term of `epoch` leads (True) or ends before it does (False)."""
        while self.role is Role.TAKING_OVER and self.epoch == epoch:
            await self._changed.wait()
        return self.role is Role.LEADER and self.epoch == epoch

    async def wait_lost(self, epoch: int) -> str:
        """Return (why) once the term of `epoch` is over."""
        while self.role is Role.LEADER and self.epoch == epoch:
            await self._changed.wait()
        return self.last_loss or "lost"

    def statistics(self) -> LeadershipStatistics:
        now = trio.current_time()
        leading = self.role is not Role.STANDBY
        seen = self.last_seen
        return LeadershipStatistics(
            instance=self.instance,
            role=str(self.role),
            epoch=self.epoch if leading else (seen.epoch if seen is not None else self.epoch),
            lease_age_secs=self._times.age(now) if leading else (None if seen is None else seen.age_secs),
            lease_left_secs=max(0.0, self._times.valid_until - now) if leading else None,
            takeovers=self.takeovers,
            fenced=self.fenced,
            step_downs=self.step_downs,
            leader=self.instance if leading else (None if seen is None or seen.released else seen.holder),
            last_loss=self.last_loss,
        )

    # -- the service -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Compete, lead, lose, compete again: until cancelled."""
        task_status.started()
        while True:
            if self.role is Role.STANDBY:
                await self._campaign()
            else:
                await self._hold()

    async def resign(self, why: str = "shutdown", *, hold_off: bool = True) -> None:
        """Give the lease up cleanly (a graceful exit): a standby takes over without waiting it out. `hold_off`:
        do not compete again for `takeover_secs` (so another engine takes it)."""
        epoch, was = self.epoch, self.role
        self._set_role(Role.STANDBY, why)
        if was is not Role.STANDBY and epoch is not None:
            self.step_downs += 1
            with trio.move_on_after(self.settings.lease_secs, shield=True):
                try:
                    await self._lease.release(epoch)
                except StoreError as exc:
                    log.warning("ha_release_failed", error=str(exc))
                    self._lease.drop()  # the lock goes with the connection
            log.warning("ha_stepped_down", epoch=epoch, reason=why, instance=self.instance)
        if hold_off:
            self._rejoin_at = trio.current_time() + self.settings.takeover_secs

    async def _campaign(self) -> None:
        s = self.settings
        while True:
            now = trio.current_time()
            if now >= self._rejoin_at:
                won: Acquired | None = None
                try:
                    with trio.fail_after(s.lease_secs):
                        won = await self._lease.try_acquire(lease_secs=s.lease_secs)
                        if won is None:
                            await self._look_at_holder()
                except (StoreError, trio.TooSlowError) as exc:
                    log.info("ha_campaign_failed", error=str(exc) or type(exc).__name__)
                if won is not None:
                    self._won(won, now)
                    return
            await trio.sleep(s.poll_secs)

    async def _look_at_holder(self) -> None:
        row = await self._lease.read()
        self.last_seen = row
        if row is not None and not row.released and row.age_secs > self.settings.takeover_secs:
            pid = await self._lease.break_stale()
            if pid is not None:
                self.breaks += 1
                log.warning("ha_stale_leader_ended", holder=row.holder, epoch=row.epoch, age_secs=row.age_secs)

    def _won(self, won: Acquired, started_at: float) -> None:
        self.epoch = won.epoch
        self._times = LeaseTimes(self.settings.lease_secs)
        self._times.renewed(started_at)
        self._takeover_at = trio.current_time() + won.wait_secs
        self.last_seen = None
        log.warning(
            "ha_lease_acquired",
            epoch=won.epoch,
            instance=self.instance,
            previous=None if won.previous is None else won.previous.holder,
            wait_secs=round(won.wait_secs, 3),
        )
        self._set_role(Role.TAKING_OVER, None)

    async def _hold(self) -> None:
        s, times = self.settings, self._times
        epoch = self.epoch
        assert epoch is not None
        last_try = times.renewed_at if times.renewed_at is not None else trio.current_time()
        while True:
            if self.role is Role.STANDBY or self.epoch != epoch:
                return  # resigned meanwhile (a step-down, a shutdown, a term that could not open)
            now = trio.current_time()
            if self.role is Role.TAKING_OVER and now >= self._takeover_at:
                if not times.valid(now):
                    self._lose("lease expired while taking over")
                    return
                self.takeovers += 1
                self._set_role(Role.LEADER, None)
                log.warning("ha_leader", epoch=epoch, instance=self.instance)
            wake = last_try + s.renew_secs
            if self.role is Role.TAKING_OVER:
                wake = min(wake, self._takeover_at)
            if wake > now:
                await trio.sleep_until(wake)
                late = trio.current_time() - wake
                if late > s.renew_secs:  # the event loop was stalled (a blocking call, CPU starvation, a pause)
                    log.warning("ha_renewal_late", epoch=epoch, late_secs=round(late, 3))
                continue
            started = last_try = now
            if not times.valid(started):
                self._lose("lease expired: no renewal landed in time")
                return
            try:
                with trio.fail_after(max(1e-3, times.valid_until - started)):
                    reply = await self._lease.renew(epoch, lease_secs=s.lease_secs)
            except (StoreError, trio.TooSlowError) as exc:  # tried again after renew_secs; the lease is not extended
                log.warning("ha_renew_failed", epoch=epoch, error=str(exc) or type(exc).__name__)
                continue
            if not reply.ok:
                self._lose("fenced: the lease has a newer epoch or the lock was lost")
                return
            times.renewed(started)
            if reply.step_down:
                await self.resign("step_down")
                return

    def _lose(self, why: str) -> None:
        self.fenced += 1
        log.error("ha_fenced", epoch=self.epoch, reason=why, instance=self.instance)
        self._lease.drop()  # whatever the lock's state, it goes with the connection
        self._set_role(Role.STANDBY, why)

    def _set_role(self, role: Role, loss: str | None) -> None:
        if role is Role.STANDBY:
            self._times.end()
            self._takeover_at = math.inf
            if self.role is not Role.STANDBY:
                self.last_loss = loss
        self.role = role
        self._changed.set()
        self._changed = trio.Event()
