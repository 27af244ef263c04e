from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing

from trader.engine.breaker import (
    Breakers,
    BreakerSettings,
    BreakerState,
    CallOutcome,
    CircuitBreaker,
    CircuitOpenError,
    EndpointFamily,
    classify_error,
)
from trader.errors import ConfigError, TraderError
from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueProtocolError,
    VenueRejectCode,
    VenueRequestError,
    VenueTimeout,
)

SETTINGS = BreakerSettings(
    consecutive_failures=3, failure_rate=0.5, min_calls=10, window_secs=10.0, cool_down_secs=5.0, probe_timeout_secs=2.0
)


def _breaker() -> CircuitBreaker:
    return CircuitBreaker(SETTINGS, name="venue")


def _state(breaker: CircuitBreaker) -> BreakerState:
    # a call, so that mypy does not narrow the property across the state changes a test makes
    return breaker.state


def _trip(breaker: CircuitBreaker, now: float) -> None:
    for _ in range(SETTINGS.consecutive_failures):
        assert breaker.allow(now)
        breaker.record_failure(now)


def test_opens_after_consecutive_failures_and_refuses_calls() -> None:
    breaker = _breaker()
    for _ in range(2):
        assert breaker.allow(0.0)
        breaker.record_failure(0.0)
    assert _state(breaker) is BreakerState.CLOSED
    breaker.record_failure(0.0)
    assert _state(breaker) is BreakerState.OPEN
    assert not breaker.allow(1.0)
    assert not breaker.allow(4.999)
    stats = breaker.statistics()
    assert (stats.opens, stats.rejections, stats.failures) == (1, 2, 3)


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = _breaker()
    for now in (0.0, 1.0, 2.0):
        breaker.record_failure(now)
        breaker.record_failure(now)
        breaker.record_success(now)
    assert _state(breaker) is BreakerState.CLOSED  # 6 failures, never 3 in a row, fewer than min_calls
    assert breaker.statistics().consecutive_failures == 0


def test_opens_on_failure_rate_over_the_window_only_with_enough_calls() -> None:
    breaker = _breaker()
    # alternate: never 3 in a row, failure rate 50%
    for i in range(9):
        breaker.record(CallOutcome.FAILURE if i % 2 == 0 else CallOutcome.SUCCESS, i * 0.1)
    assert _state(breaker) is BreakerState.CLOSED  # 5/9 but fewer than min_calls
    breaker.record_success(0.9)  # 5/10 = 0.5
    assert _state(breaker) is BreakerState.CLOSED  # the rule runs on failures only
    breaker.record_failure(1.0)  # 6/11 >= 0.5
    assert _state(breaker) is BreakerState.OPEN


def test_old_calls_leave_the_window() -> None:
    fresh = _breaker()
    for i in range(8):
        fresh.record(CallOutcome.FAILURE if i % 2 == 0 else CallOutcome.SUCCESS, 0.0)
    # 10 s later the first eight calls are gone: two new failures are not a 50% rate over >= 10 calls
    fresh.record_success(10.0)
    fresh.record_failure(10.0)
    fresh.record_success(10.0)
    fresh.record_failure(10.0)
    assert fresh.statistics().window_calls == 4
    assert _state(fresh) is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_and_its_success_closes() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    assert breaker.retry_at() == 5.0
    assert breaker.allow(5.0)  # the probe
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow(5.1)
    assert not breaker.allow(6.0)
    breaker.record_success(6.5)
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.allow(6.6)
    assert breaker.allow(6.6)
    assert breaker.statistics().probes == 1


def test_a_failed_probe_reopens_for_a_fresh_cool_down() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    assert breaker.allow(5.0)
    breaker.record_failure(5.5)
    assert _state(breaker) is BreakerState.OPEN
    assert not breaker.allow(10.0)  # cool-down counts from the failed probe
    assert breaker.allow(10.5)
    assert breaker.statistics().opens == 2


def test_a_lost_probe_is_replaced_after_the_probe_timeout() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    assert breaker.allow(5.0)
    assert not breaker.allow(6.9)
    assert breaker.allow(7.0)  # probe presumed lost after 2 s
    assert breaker.statistics().probes == 2


def test_released_or_throttled_probe_frees_the_slot_without_a_verdict() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    assert breaker.allow(5.0)
    breaker.release(5.1)
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow(5.2)
    breaker.record(CallOutcome.THROTTLED, 5.3)
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow(5.4)
    assert breaker.statistics().throttled == 1


def test_throttling_and_rejections_never_open_the_breaker() -> None:
    breaker = _breaker()
    for _ in range(50):
        breaker.record(CallOutcome.THROTTLED, 0.0)
        breaker.record(CallOutcome.REJECTED, 0.0)
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.statistics().failures == 0


def test_late_outcomes_while_open_change_nothing() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    breaker.record_success(1.0)
    breaker.record_failure(1.0)
    assert _state(breaker) is BreakerState.OPEN
    assert breaker.retry_at() == 5.0


def test_check_raises_circuit_open_error_in_the_trader_tree() -> None:
    breaker = _breaker()
    _trip(breaker, 0.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(1.0)
    assert isinstance(info.value, TraderError)
    assert info.value.retry_at == 5.0
    assert "venue" in str(info.value)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (VenueRequestError(500, VenueRejectCode.SERVER_ERROR), CallOutcome.FAILURE),
        (VenueRequestError(503, VenueRejectCode.SERVER_ERROR), CallOutcome.FAILURE),
        (VenueRequestError(503, VenueRejectCode.TRADING_DISABLED), CallOutcome.RESTRICTED),
        (VenueRequestError(503, VenueRejectCode.CANCEL_ONLY), CallOutcome.RESTRICTED),
        (VenueRequestError(503, VenueRejectCode.POST_ONLY_MODE), CallOutcome.RESTRICTED),
        (VenueRequestError(425, VenueRejectCode.ENGINE_RESTARTING), CallOutcome.RESTRICTED),
        (VenueRequestError(429, VenueRejectCode.RATE_LIMITED), CallOutcome.THROTTLED),
        (VenueRequestError(400, VenueRejectCode.MIN_SIZE), CallOutcome.REJECTED),
        (VenueRequestError(401, VenueRejectCode.UNAUTHORIZED), CallOutcome.REJECTED),
        (VenueTimeout("slow"), CallOutcome.FAILURE),
        (trio.TooSlowError(), CallOutcome.FAILURE),
        (VenueConnectionError("refused"), CallOutcome.FAILURE),
        (VenueDisconnected("eof"), CallOutcome.FAILURE),
        (VenueProtocolError("garbage"), CallOutcome.FAILURE),
        (RuntimeError("unexpected"), CallOutcome.FAILURE),
    ],
)
def test_classify_error(exc: BaseException, outcome: CallOutcome) -> None:
    assert classify_error(exc) is outcome


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"min_calls": 0},
        {"cool_down_secs": -1.0},
        {"window_secs": float("nan")},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BreakerSettings(**kwargs)  # type: ignore[arg-type]


async def _fail_with(exc: Exception) -> None:
    await trio.sleep(0.1)
    raise exc


async def _ok() -> str:
    await trio.sleep(0.1)
    return "ok"


async def test_call_shell_trips_waits_cool_down_and_recovers(autojump_clock: trio.testing.MockClock) -> None:
    breaker = _breaker()
    for _ in range(3):
        with pytest.raises(VenueTimeout):
            await breaker.call(partial(_fail_with, VenueTimeout("slow")))
    with pytest.raises(CircuitOpenError):
        await breaker.call(_ok)
    opened = breaker.retry_at()
    await trio.sleep_until(opened)
    assert await breaker.call(_ok) == "ok"
    assert _state(breaker) is BreakerState.CLOSED
    assert trio.current_time() == pytest.approx(opened + 0.1, abs=1e-9)


async def test_call_shell_counts_4xx_as_healthy_and_reraises(autojump_clock: trio.testing.MockClock) -> None:
    breaker = _breaker()
    for _ in range(5):
        with pytest.raises(VenueRequestError):
            await breaker.call(partial(_fail_with, VenueRequestError(400, VenueRejectCode.MIN_SIZE)))
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.statistics().successes == 5


async def test_cancelled_probe_frees_the_slot(autojump_clock: trio.testing.MockClock) -> None:
    breaker = _breaker()
    _trip(breaker, trio.current_time())
    await trio.sleep_until(breaker.retry_at())
    with trio.move_on_after(0.05):
        await breaker.call(_ok)  # the probe, cancelled before it finishes
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert await breaker.call(_ok) == "ok"  # a new probe goes at once
    assert _state(breaker) is BreakerState.CLOSED


def test_transitions_are_counted_and_timed() -> None:
    breaker = _breaker()
    assert (breaker.statistics().changed_at, breaker.statistics().retry_at) == (None, None)
    for t in (1.0, 2.0, 3.0):
        breaker.record_failure(t)
    opened = breaker.statistics()
    assert (opened.state, opened.opens, opened.changed_at, opened.retry_at) == (BreakerState.OPEN, 1, 3.0, 8.0)
    assert breaker.allow(8.0)  # the probe
    assert (breaker.statistics().half_opens, breaker.statistics().changed_at) == (1, 8.0)
    breaker.record_success(8.5)
    closed = breaker.statistics()
    assert (closed.state, closed.closes, closed.changed_at, closed.retry_at) == (BreakerState.CLOSED, 1, 8.5, None)


def test_each_endpoint_family_has_a_breaker_of_its_own() -> None:
    breakers = Breakers(SETTINGS)
    assert list(breakers) == [EndpointFamily.ORDERS, EndpointFamily.CANCELS, EndpointFamily.READS]
    for t in range(3):
        breakers[EndpointFamily.ORDERS].record_failure(float(t))
        breakers[EndpointFamily.READS].record_success(float(t))  # successes elsewhere dilute nothing
    stats = breakers.statistics()
    assert {family: s.state for family, s in stats.items()} == {
        "orders": BreakerState.OPEN,
        "cancels": BreakerState.CLOSED,
        "reads": BreakerState.CLOSED,
    }
    assert stats["orders"].name == "venue:orders"


def test_the_orders_family_opens_sooner() -> None:
    breakers = Breakers(BreakerSettings(consecutive_failures=5, orders_consecutive_failures=2))
    for family in EndpointFamily:
        breakers[family].record_failure(1.0)
        breakers[family].record_failure(2.0)
    assert {f: s.state for f, s in breakers.statistics().items()} == {
        "orders": BreakerState.OPEN,
        "cancels": BreakerState.CLOSED,
        "reads": BreakerState.CLOSED,
    }
