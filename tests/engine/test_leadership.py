"""Leadership on MockClock against the in-memory lease server: one leader at a time, epochs that grow by one per
takeover, a leader that stops sending before a standby may take over, step-down, and the server restarting."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trader.engine.leadership import HaSettings, Leadership, LeaseTimes, Role, lock_key_for
from trader.errors import ConfigError
from trader.testing.fake_lease import FakeLease, FakeLeaseServer

SETTINGS = HaSettings(enabled=True, lease_secs=2.0, renew_secs=0.5, takeover_secs=5.0, poll_secs=0.5)


@asynccontextmanager
async def running(lease: FakeLease, name: str) -> AsyncIterator[tuple[Leadership, trio.CancelScope]]:
    """A leadership service in a scope of its own (cancel the scope: the process is gone)."""
    leadership = Leadership(lease, dataclasses.replace(SETTINGS, instance=name))
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await leadership.run()

        nursery.start_soon(run)
        yield leadership, scope
        nursery.cancel_scope.cancel()


def test_lease_times_count_from_the_renewal_start() -> None:
    times = LeaseTimes(2.0)
    assert not times.valid(0.0)
    times.renewed(10.0)
    assert times.valid(11.9)
    assert not times.valid(12.0)
    times.renewed(9.0)  # an older renewal never shortens it
    assert times.valid_until == 12.0


def test_settings_refuse_a_takeover_wait_not_longer_than_the_lease() -> None:
    with pytest.raises(ConfigError, match="takeover_secs"):
        HaSettings(lease_secs=5.0, takeover_secs=5.0)
    with pytest.raises(ConfigError, match="renew_secs"):
        HaSettings(lease_secs=1.0, renew_secs=1.0)
    assert lock_key_for(HaSettings(), "a") != lock_key_for(HaSettings(), "b")
    assert lock_key_for(HaSettings(lock_key=42), "a") == 42


async def test_first_engine_leads_at_once_the_second_stands_by(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeLeaseServer()
    async with running(server.client("a"), "a") as (a, _):
        await a.wait_leader()
        async with running(server.client("b"), "b") as (b, _):
            await trio.sleep(10)
            assert a.is_leader
            assert a.may_send()
            assert a.epoch == 1
            assert b.role is Role.STANDBY
            assert not b.may_send()
            assert b.statistics().leader == "a"
            assert a.takeovers == 1
            assert b.takeovers == 0


async def test_killed_leader_standby_takes_over_after_the_old_lease(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeLeaseServer()
    async with running(server.client("a"), "a") as (a, a_scope):
        await a.wait_leader()
        async with running(server.client("b"), "b") as (b, _):
            await trio.sleep(3)
            killed_at = trio.current_time()
            a_scope.cancel()  # kill -9: the process is gone ...
            server.lock_holder = None  # ... and the server frees its lock with its session
            epoch = await b.wait_leader()
            took = trio.current_time() - killed_at
            assert epoch == 2
            # Never before a's last renewal + its lease: a might still have been sending until then.
            assert server.renewed_at >= killed_at
            assert 1.0 <= took <= SETTINGS.lease_secs + SETTINGS.poll_secs + 0.1


async def test_paused_leader_stops_sending_before_the_standby_breaks_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeLeaseServer()
    a_lease = server.client("a")
    async with running(a_lease, "a") as (a, _):
        await a.wait_leader()
        async with running(server.client("b"), "b") as (b, _):
            await trio.sleep(1)
            a_lease.cut = True  # a's renewals hang: partitioned from the database, still running
            cut_at = trio.current_time()
            stopped: list[float] = []

            async def watch_a() -> None:
                while a.may_send():  # noqa: ASYNC110 - the lease runs out on the clock, no event says so
                    await trio.sleep(0.01)
                stopped.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_a)
                await b.wait_leader()
            assert stopped
            assert stopped[0] - cut_at <= SETTINGS.lease_secs
            assert trio.current_time() - cut_at >= SETTINGS.takeover_secs  # b waited the takeover wait out
            assert server.broken == ["a"]
            assert b.epoch == 2
            assert a.role is Role.STANDBY
            assert a.fenced == 1
            assert not a.may_send()


async def test_step_down_hands_over_without_waiting_the_lease(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeLeaseServer()
    async with running(server.client("a"), "a") as (a, _):
        await a.wait_leader()
        async with running(server.client("b"), "b") as (b, _):
            await trio.sleep(2)
            server.step_down = True  # `trader ha step-down`
            asked = trio.current_time()
            await b.wait_leader()
            assert trio.current_time() - asked <= SETTINGS.renew_secs + SETTINGS.poll_secs + 0.1
            assert a.role is Role.STANDBY
            assert a.step_downs == 1
            assert a.last_loss == "step_down"
            await trio.sleep(30)
            assert b.is_leader  # a does not take it back
            assert not a.is_leader
            assert server.epoch == 2


async def test_server_restart_never_two_leaders(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeLeaseServer()
    leaders_at_once: list[int] = []
    async with running(server.client("a"), "a") as (a, _):
        await a.wait_leader()
        async with running(server.client("b"), "b") as (b, _):

            async def watch() -> None:
                while True:
                    leaders_at_once.append(a.may_send() + b.may_send())
                    await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                await trio.sleep(2)
                server.down = True
                server.restart()  # every session (and lock) ends
                await trio.sleep(1.0)
                server.down = False
                await trio.sleep(20)
                nursery.cancel_scope.cancel()
            assert max(leaders_at_once) == 1
            assert a.is_leader != b.is_leader  # trading resumed under one of them
            assert server.epoch == 2


async def test_both_started_at_once_exactly_one_leads(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeLeaseServer()
    async with running(server.client("a"), "a") as (a, _), running(server.client("b"), "b") as (b, _):
        await trio.sleep(5)
        assert [a.is_leader, b.is_leader].count(True) == 1
        assert server.epoch == 1
