"""The late-fill watch: legs are kept while open and for a window once closed, and never more than its bound."""

from __future__ import annotations

import pytest

from trader.engine.late_legs import LateLegWatch


def watch(open_legs: set[str], *, window: float = 10.0, max_legs: int = 100) -> LateLegWatch[str]:
    return LateLegWatch[str](window_secs=window, max_legs=max_legs, is_open=open_legs.__contains__)


def test_a_closed_leg_is_watched_for_the_window_then_forgotten() -> None:
    w = watch(set())
    w.add("a", "arb-1", now=0.0)
    w.add("b", "arb-2", now=5.0)
    assert (w.get("a"), w.get("b"), w.get("c")) == ("arb-1", "arb-2", None)
    w.expire(9.99)
    assert "a" in w
    w.expire(10.0)  # a window after its arbitrage ended
    assert ("a" in w, "b" in w) == (False, True)
    w.add("c", "arb-3", now=15.0)  # adding expires what is due
    assert (len(w), w.get("b"), w.get("c")) == (1, None, "arb-3")


def test_an_open_leg_stays_watched_and_then_a_full_window_once_closed() -> None:
    open_legs = {"a"}
    w = watch(open_legs)
    w.add("a", "arb-1", now=0.0)
    for now in (10.0, 25.0, 40.0):  # still open (an unknown outcome, a resting leg): kept
        w.expire(now)
        assert w.get("a") == "arb-1"
    open_legs.clear()  # closed somewhere after t=40
    w.expire(55.0)  # seen closed at t=55: a full window from there
    assert "a" in w
    w.expire(64.9)
    assert "a" in w
    w.expire(65.0)
    assert "a" not in w


def test_at_most_max_legs_are_watched_the_oldest_go_first() -> None:
    open_legs = {f"l{n}" for n in range(10)}  # open: only the count bound applies
    w = watch(open_legs, max_legs=4)
    for n in range(10):
        w.add(f"l{n}", f"arb-{n}", now=float(n))
    assert len(w) == 4
    assert [w.get(f"l{n}") for n in range(10)] == [None] * 6 + ["arb-6", "arb-7", "arb-8", "arb-9"]
    assert w.evicted == 6


def test_a_leg_added_again_is_watched_from_then() -> None:
    w = watch(set())
    w.add("a", "arb-1", now=0.0)
    w.add("b", "arb-1", now=1.0)
    w.add("a", "arb-2", now=8.0)
    w.expire(12.0)
    assert (w.get("a"), w.get("b")) == ("arb-2", None)


def test_a_long_session_keeps_the_watch_bounded_by_the_window() -> None:
    w = watch(set(), window=60.0)
    for n in range(10_000):  # one doubtful leg a second for almost three hours
        w.add(f"l{n}", "arb", now=float(n))
        assert len(w) <= 61
    assert w.evicted == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="window_secs"):
        watch(set(), window=0.0)
    with pytest.raises(ValueError, match="max_legs"):
        watch(set(), max_legs=0)
