"""The reconnect schedule: capped, exponential, jittered upwards only, and reset after a healthy period."""

from __future__ import annotations

from typing import Any

import pytest

from trader.infra.backoff import Backoff, BackoffCounter


def test_delays_double_until_the_cap() -> None:
    backoff = Backoff(initial_secs=0.5, max_secs=4, jitter=0)
    assert [backoff.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_jitter_lengthens_by_at_most_the_jitter_fraction() -> None:
    assert Backoff(initial_secs=1, max_secs=8, jitter=0.25, random_fn=lambda: 0.0).delay(2) == 4.0
    assert Backoff(initial_secs=1, max_secs=8, jitter=0.25, random_fn=lambda: 0.5).delay(2) == 4.5
    assert Backoff(initial_secs=1, max_secs=8, jitter=0.25, random_fn=lambda: 0.999).delay(9) == pytest.approx(
        8 * 1.24975
    )


def test_a_very_long_outage_stays_at_the_cap() -> None:
    backoff = Backoff(initial_secs=0.5, max_secs=30, multiplier=1e10, jitter=0)
    assert backoff.delay(10_000) == 30


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial_secs": 0}, "initial_secs"),
        ({"initial_secs": 2, "max_secs": 1}, "max_secs"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Backoff(**kwargs)


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(-1)


def test_counter_advances_on_each_failure_and_resets_after_a_healthy_period() -> None:
    counter = BackoffCounter(Backoff(initial_secs=1, max_secs=8, jitter=0), reset_after_secs=30)
    # Three failed connects in a row: the schedule grows.
    assert [counter.next_delay(now=t) for t in (0, 1, 3)] == [1, 2, 4]
    # A connection that drops after 10 s was not healthy long enough: the schedule keeps growing.
    counter.record_connected(now=7)
    counter.record_healthy(now=17)
    assert counter.next_delay(now=17) == 8
    # One that held for 30 s resets it.
    counter.record_connected(now=25)
    counter.record_healthy(now=55)
    assert counter.attempt == 0
    assert counter.next_delay(now=60) == 1


def test_counter_resets_when_the_failure_comes_after_a_long_healthy_connection() -> None:
    counter = BackoffCounter(Backoff(initial_secs=1, max_secs=8, jitter=0), reset_after_secs=30)
    counter.next_delay(now=0)
    counter.next_delay(now=1)
    counter.record_connected(now=3)
    # No frame told the counter the connection was healthy, but the failure itself comes 40 s later.
    assert counter.next_delay(now=43) == 1
