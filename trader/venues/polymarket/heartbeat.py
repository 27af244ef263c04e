"""The venue's dead-man switch (protocol.md §4, `POST /v1/heartbeats`): keep it fed, so that a dead engine's orders
are cancelled by the venue.

Once a client has sent one heartbeat, the venue cancels ALL its open orders when none arrives within 10 s (plus up
to 5 s of grace). `HeartbeatService.run` posts one every `interval_secs` (default 5 s) on a drift-free schedule,
each carrying the last id the venue gave. A stale id is answered 400 with the right one: it is adopted and sent
again at once. A failed post (network, 429, 5xx) is counted and logged; the next tick tries again. When no
heartbeat has succeeded for `lapse_warning_secs`, the venue has probably cancelled our orders: that is logged as an
error and visible in `statistics()`.

Each post gets at most `request_timeout_secs` (a protocol timer, from config): a hung request must not hold the
schedule back. `stop()` ends the loop (tests use it to let the venue's switch fire).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import trio

from trader.infra.ticks import Ticker
from trader.venues.errors import VenueError
from trader.venues.polymarket.rest import HeartbeatReply

__all__ = ["HeartbeatService", "HeartbeatSettings", "HeartbeatStatistics"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatSettings:
    """Defaults: a heartbeat every 5 s, each allowed 4 s, a lapse warned about after 10 s without success."""

    interval_secs: float = 5.0
    request_timeout_secs: float = 4.0
    lapse_warning_secs: float = 10.0

    def __post_init__(self) -> None:
        if not self.interval_secs > 0:
            raise ValueError(f"interval_secs must be > 0, got {self.interval_secs}")
        if not 0 < self.request_timeout_secs <= self.interval_secs:
            raise ValueError("request_timeout_secs must be > 0 and at most interval_secs")
        if not self.lapse_warning_secs >= self.interval_secs:
            raise ValueError("lapse_warning_secs must be at least interval_secs")


@dataclass(frozen=True, slots=True)
class HeartbeatStatistics:
    sent: int
    succeeded: int
    stale_ids_adopted: int
    failures: int
    consecutive_failures: int
    last_success_at: float | None  # Trio time
    lapsed: bool  # no success for lapse_warning_secs: expect the venue to have cancelled our orders
    running: bool
    withheld: int = 0  # beats not sent because `allowed()` said no (active/standby: not the leader)


class HeartbeatService:
    """Feeds the venue's dead-man switch. `send(heartbeat_id)` is the REST call (`PolymarketRestClient.heartbeat`)."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[HeartbeatReply]],
        settings: HeartbeatSettings | None = None,
        *,
        allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        """`allowed()` is asked before each beat (active/standby: only the leader feeds the switch)."""
        self._send = send
        self._allowed = allowed
        self._withheld = 0
        self._settings = settings or HeartbeatSettings()
        self._heartbeat_id = ""
        self._sent = 0
        self._succeeded = 0
        self._stale = 0
        self._failures = 0
        self._consecutive_failures = 0
        self._last_success_at: float | None = None
        self._started_at: float | None = None
        self._lapse_logged = False
        self._scope: trio.CancelScope | None = None

    def statistics(self) -> HeartbeatStatistics:
        return HeartbeatStatistics(
            sent=self._sent,
            succeeded=self._succeeded,
            stale_ids_adopted=self._stale,
            failures=self._failures,
            consecutive_failures=self._consecutive_failures,
            last_success_at=self._last_success_at,
            lapsed=self._lapsed(trio.current_time()) if self._started_at is not None else False,
            running=self._scope is not None,
            withheld=self._withheld,
        )

    def stop(self) -> None:
        """End `run` (the venue's switch then fires after its timeout)."""
        if self._scope is not None:
            self._scope.cancel(reason="heartbeat stopped")

    def _lapsed(self, now: float) -> bool:
        since = self._last_success_at if self._last_success_at is not None else self._started_at
        return since is not None and now - since >= self._settings.lapse_warning_secs

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat until cancelled or `stop()`ped. The first one is sent before `task_status.started()`, so the
        caller knows the switch is armed (or that the first try failed, which is logged and retried)."""
        with trio.CancelScope() as scope:
            self._scope = scope
            ticks = Ticker(self._settings.interval_secs)
            self._started_at = trio.current_time()
            try:
                await self._beat()
                task_status.started()
                while True:
                    await ticks.next()
                    await self._beat()
            finally:
                self._scope = None

    async def _beat(self) -> None:
        if not self._allowed():
            self._withheld += 1
            return
        reply: HeartbeatReply | None = None
        with trio.move_on_after(self._settings.request_timeout_secs):
            try:
                reply = await self._post(self._heartbeat_id)
                if not reply.ok:  # stale id: the venue told us the right one
                    self._stale += 1
                    log.info("heartbeat_id_adopted")
                    reply = await self._post(reply.heartbeat_id)
            except VenueError as exc:
                reply = None
                log.warning("heartbeat_failed", error=str(exc), consecutive=self._consecutive_failures + 1)
        now = trio.current_time()
        if reply is not None and reply.ok:
            self._heartbeat_id = reply.heartbeat_id
            self._succeeded += 1
            self._consecutive_failures = 0
            self._last_success_at = now
            if self._lapse_logged:
                log.info("heartbeat_recovered")
                self._lapse_logged = False
            return
        if reply is not None:  # stale twice in a row: start over with the id we were given
            self._heartbeat_id = reply.heartbeat_id
        self._failures += 1
        self._consecutive_failures += 1
        if self._lapsed(now) and not self._lapse_logged:
            self._lapse_logged = True
            since = self._last_success_at if self._last_success_at is not None else self._started_at or now
            log.error("heartbeat_lapsed", secs_without_success=round(now - since, 3))

    async def _post(self, heartbeat_id: str) -> HeartbeatReply:
        self._sent += 1
        reply = await self._send(heartbeat_id)
        if reply.ok:
            self._heartbeat_id = reply.heartbeat_id
        return reply
