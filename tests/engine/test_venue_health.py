"""The venue's health as the requests tell it: refusals of our credentials and silence, and what ends each."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trader.engine.venue_health import VenueHealth, VenueHealthSettings, VenueProblem
from trader.errors import ConfigError


def test_refusals_of_our_credentials_in_a_row_are_an_auth_failure() -> None:
    health = VenueHealth(VenueHealthSettings(auth_failures=2))
    health.on_auth_refused(1.0)
    assert (health.suspect, health.problem(1.0)) == (True, None)
    health.on_answer(1.5)  # an answer proving our key (a 200, a 400 about the order) breaks the streak
    assert not health.suspect
    health.on_auth_refused(2.0)
    health.on_answer(2.1, authenticated=False)  # a 5xx or 429 says nothing of our key
    health.on_auth_refused(2.2)
    assert health.problem(2.2) is VenueProblem.AUTH_FAILED
    health.on_answer(3.0)
    assert health.problem(3.0) is None
    assert health.statistics(3.0).auth_refusals == 3


def test_silence_long_enough_and_asked_twice_is_unreachable() -> None:
    health = VenueHealth(VenueHealthSettings(unreachable_secs=5.0))
    health.on_no_answer(10.0)
    assert health.problem(20.0) is None  # asked once only: one lost request is not an outage
    health.on_no_answer(11.0)
    assert health.problem(14.9) is None
    assert health.problem(15.0) is VenueProblem.UNREACHABLE
    assert health.statistics(15.0).silent_for_secs == 5.0
    health.on_answer(16.0, authenticated=False)  # any answer: it is there
    assert (health.problem(16.0), health.suspect) == (None, False)


def test_an_auth_failure_outranks_silence() -> None:
    health = VenueHealth(VenueHealthSettings(auth_failures=1, unreachable_secs=1.0))
    health.on_no_answer(0.0)
    health.on_no_answer(1.0)
    assert health.problem(1.0) is VenueProblem.UNREACHABLE
    health.on_auth_refused(2.0)  # an answer (it is reachable), refusing our key
    assert health.problem(2.0) is VenueProblem.AUTH_FAILED


async def test_a_suspicion_wakes_whoever_waits(autojump_clock: trio.testing.MockClock) -> None:
    health = VenueHealth()
    woke: list[float] = []

    async def waiter() -> None:
        await health.wait_suspect()
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1.0)
        health.on_answer(trio.current_time())
        await trio.sleep(1.0)
        assert woke == []
        health.on_no_answer(trio.current_time())
    assert woke == [2.0]


@pytest.mark.parametrize("changes", [{"auth_failures": 0}, {"unreachable_secs": 0}, {"probe_secs": float("inf")}])
def test_bad_settings_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        VenueHealthSettings(**changes)  # type: ignore[arg-type]
