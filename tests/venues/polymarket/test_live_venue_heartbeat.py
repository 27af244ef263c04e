"""The heartbeat service on trio's MockClock, against a scripted `send`."""

from __future__ import annotations

import trio
import trio.testing
from structlog.testing import capture_logs

from trader.venues.errors import VenueRejectCode, VenueRequestError
from trader.venues.polymarket.heartbeat import HeartbeatService, HeartbeatSettings
from trader.venues.polymarket.rest import HeartbeatReply


class ScriptedVenue:
    """Hands out ids hb-1, hb-2, ...; `stale_for` ids are refused as stale; `fail_from`/`hang_from` break it."""

    def __init__(self, *, stale_for: frozenset[str] = frozenset(), fail_from: float | None = None,
                 hang_from: float | None = None) -> None:  # fmt: skip
        self.calls: list[tuple[float, str]] = []
        self.stale_for = stale_for
        self.fail_from = fail_from
        self.hang_from = hang_from
        self.issued = 0

    async def __call__(self, heartbeat_id: str) -> HeartbeatReply:
        now = trio.current_time()
        self.calls.append((now, heartbeat_id))
        if self.hang_from is not None and now >= self.hang_from:
            await trio.sleep_forever()
        if self.fail_from is not None and now >= self.fail_from:
            raise VenueRequestError(503, VenueRejectCode.SERVER_ERROR, "unavailable")
        if heartbeat_id in self.stale_for:
            return HeartbeatReply(False, "hb-venue")
        self.issued += 1
        return HeartbeatReply(True, f"hb-{self.issued}")


async def test_beats_every_interval_with_the_last_id(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue()
    service = HeartbeatService(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        assert venue.calls == [(0.0, "")]  # armed before started()
        await trio.sleep(16)
        service.stop()
    assert venue.calls == [(0.0, ""), (5.0, "hb-1"), (10.0, "hb-2"), (15.0, "hb-3")]
    stats = service.statistics()
    assert (stats.sent, stats.succeeded, stats.failures, stats.running) == (4, 4, 0, False)


async def test_a_stale_id_is_adopted_and_sent_again_at_once(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue(stale_for=frozenset({"hb-1"}))
    service = HeartbeatService(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await trio.sleep(11)
        nursery.cancel_scope.cancel()
    # hb-1 is refused with the venue's id, which is sent at once and accepted; the next beat carries its answer
    assert venue.calls == [(0.0, ""), (5.0, "hb-1"), (5.0, "hb-venue"), (10.0, "hb-2")]
    stats = service.statistics()
    assert (stats.stale_ids_adopted, stats.succeeded, stats.failures) == (1, 3, 0)


async def test_failures_are_counted_and_a_lapse_is_logged(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue(fail_from=5.0)
    service = HeartbeatService(venue)
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await trio.sleep(11)
            stats = service.statistics()
            nursery.cancel_scope.cancel()
    assert (stats.failures, stats.consecutive_failures, stats.lapsed) == (2, 2, True)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["heartbeat_lapsed"]


async def test_a_hung_request_does_not_hold_the_schedule(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue(hang_from=5.0)
    service = HeartbeatService(venue, HeartbeatSettings(interval_secs=5, request_timeout_secs=2))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await trio.sleep(16)
        nursery.cancel_scope.cancel()
    assert [t for t, _ in venue.calls] == [0.0, 5.0, 10.0, 15.0]
    assert service.statistics().failures == 2  # 5 and 10 timed out; 15 is still hanging


async def test_a_heartbeat_is_withheld_while_this_engine_may_not_send(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue()
    leading = [False]  # active/standby: the lease is not (or no longer) ours
    service = HeartbeatService(venue, allowed=lambda: leading[0])
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await trio.sleep(6)
        leading[0] = True  # taken over
        await trio.sleep(5)
        leading[0] = False  # fenced
        await trio.sleep(10)
        service.stop()
    assert venue.calls == [(10.0, "")]
    assert service.statistics().withheld == 4
