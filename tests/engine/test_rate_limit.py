from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import trio
import trio.testing

from trader.engine.rate_limit import (
    CANCEL_BUCKET,
    ORDER_BUCKET,
    POLYMARKET_ENDPOINTS,
    POLYMARKET_LIMITS,
    SIGNER_TIERS,
    BucketLimit,
    EndpointRule,
    LimitSpec,
    Priority,
    RateLimiter,
    RateLimitSettings,
    TierSource,
    WindowLimit,
    with_signer_buckets,
)
from trader.errors import ConfigError
from trader.venues.base import RateLimitReport

NO_RESERVE = RateLimitSettings(reserve_fraction=0.0, slots=10)


def _limiter(
    limits: Mapping[str, LimitSpec],
    endpoints: Mapping[str, EndpointRule],
    settings: RateLimitSettings = NO_RESERVE,
) -> RateLimiter:
    return RateLimiter(settings, limits=limits, endpoints=endpoints)


def _simple(limit: int = 10, period_secs: float = 10.0, **kwargs: Any) -> RateLimiter:
    settings = RateLimitSettings(reserve_fraction=0.0, slots=10, **kwargs)
    return _limiter({"w": WindowLimit(limit, period_secs)}, {"e": EndpointRule(("w",))}, settings)


def _grant_all(limiter: RateLimiter, endpoint: str, now: float, cost: int = 1) -> int:
    granted = 0
    while limiter.try_acquire(endpoint, cost, now) == 0:
        granted += 1
    return granted


def test_window_grants_up_to_the_limit_then_says_how_long_to_wait() -> None:
    limiter = _simple()
    assert _grant_all(limiter, "e", 0.0) == 10
    # one-second slots: the units taken at t=0 leave the window when their slot (ending t=1) is 10 s old
    assert limiter.try_acquire("e", 1, 0.5) == 10.5
    assert limiter.try_acquire("e", 1, 10.9) == pytest.approx(0.1)
    assert limiter.try_acquire("e", 1, 11.0) == 0.0


def test_window_slides_releasing_the_oldest_slot_first() -> None:
    limiter = _simple()
    assert _grant_all(limiter, "e", 0.0, cost=1) == 10
    assert limiter.try_acquire("e", 1, 11.0) == 0.0
    limiter2 = _simple()
    for _ in range(5):
        assert limiter2.try_acquire("e", 1, 0.0) == 0.0
    for _ in range(5):
        assert limiter2.try_acquire("e", 1, 5.5) == 0.0
    assert limiter2.try_acquire("e", 1, 10.0) == 1.0  # the t=0 slot frees at t=11
    assert _grant_all(limiter2, "e", 11.0) == 5
    assert limiter2.try_acquire("e", 1, 11.0) == 5.0  # the t=5.5 slot frees at t=16


def test_refused_calls_charge_nothing() -> None:
    limiter = _simple(limit=2)
    assert _grant_all(limiter, "e", 0.0) == 2
    for _ in range(100):
        assert limiter.try_acquire("e", 1, 1.0) > 0
    assert _grant_all(limiter, "e", 11.0) == 2
    stats = limiter.statistics().endpoints["e"]
    assert stats.granted == 4
    assert stats.throttled == 102  # the 100 above, and the refusal that ends each _grant_all


def test_request_windows_count_a_batch_once_token_windows_count_its_size() -> None:
    limiter = _limiter(
        {"requests": WindowLimit(100, 10.0), "tokens": WindowLimit(30, 10.0, per_token=True)},
        {"batch": EndpointRule(("requests", "tokens"))},
    )
    assert limiter.try_acquire("batch", 15, 0.0) == 0.0
    assert limiter.try_acquire("batch", 15, 0.0) == 0.0
    assert limiter.try_acquire("batch", 1, 0.0) > 0
    usage = limiter.statistics().usage
    assert usage["requests"] == 2
    assert usage["tokens"] == 30


def test_a_cost_that_can_never_fit_is_an_error_not_an_endless_wait() -> None:
    limiter = _limiter({"tokens": WindowLimit(10, 10.0, per_token=True)}, {"batch": EndpointRule(("tokens",))})
    with pytest.raises(ValueError, match="never fit"):
        limiter.try_acquire("batch", 11, 0.0)
    with pytest.raises(ValueError, match="cost"):
        limiter.try_acquire("batch", 0, 0.0)


def test_unknown_endpoint_and_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="no rate limit rule"):
        _simple().try_acquire("GET /nowhere", 1, 0.0)
    with pytest.raises(ConfigError, match="unknown limits"):
        _limiter({}, {"e": EndpointRule(("missing",))})
    with pytest.raises(ConfigError):
        _limiter({"w": WindowLimit(0, 10.0)}, {})
    with pytest.raises(ConfigError):
        _limiter({"b": BucketLimit(10, 0.0)}, {})
    with pytest.raises(ConfigError):
        RateLimitSettings(reserve_fraction=1.0)
    with pytest.raises(ConfigError):
        RateLimitSettings(slots=0)
    with pytest.raises(ConfigError):
        RateLimitSettings(backoff_max_secs=float("inf"))


def test_high_priority_uses_the_reserve_that_normal_calls_cannot() -> None:
    limiter = _limiter(
        {"shared": WindowLimit(10, 10.0)},
        {"order": EndpointRule(("shared",)), "cancel": EndpointRule(("shared",), Priority.HIGH)},
        RateLimitSettings(reserve_fraction=0.2, slots=10),
    )
    assert _grant_all(limiter, "order", 0.0) == 8
    assert _grant_all(limiter, "cancel", 0.0) == 2
    assert limiter.try_acquire("order", 1, 0.0) > 0


#: The published Cloudflare table alone, without the per-signer buckets.
WINDOWS_ONLY = RateLimitSettings(signer_buckets=False)


def test_default_table_posts_orders_at_90_percent_and_cancels_still_pass() -> None:
    limiter = RateLimiter(WINDOWS_ONLY)
    assert _grant_all(limiter, "POST /order", 0.0) == 3_150  # 3,500 per 10 s minus the 10% reserve
    assert limiter.try_acquire("DELETE /order", 1, 0.0) == 0.0
    assert limiter.try_acquire("POST /v1/heartbeats", 1, 0.0) == 0.0
    assert limiter.try_acquire("GET /book", 1, 0.0) == 0.0


def _max_in_window(times: Sequence[float], period: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_greedy_client_never_exceeds_the_published_burst_or_sustained_limit() -> None:
    limiter = RateLimiter(WINDOWS_ONLY)
    granted: list[float] = []
    now = 0.0
    while now < 1_300.0:
        wait = limiter.try_acquire("POST /order", 1, now)
        if wait == 0:
            granted.append(now)
        else:
            now += wait
    assert _max_in_window(granted, 10.0) <= 3_500
    assert _max_in_window(granted, 600.0) <= 36_000
    # and it is not needlessly slow: over 20 minutes it gets at least 90% of the sustained allowance
    assert len(granted) >= 0.9 * 2 * 32_400


def test_429_blocks_the_endpoint_for_retry_after() -> None:
    limiter = RateLimiter()
    assert limiter.record_429("POST /order", 100.0, retry_after_secs=2.5) == 102.5
    assert limiter.try_acquire("POST /order", 1, 100.0) == 2.5
    assert limiter.try_acquire("DELETE /order", 1, 100.0) == 0.0  # other endpoints unaffected
    assert limiter.try_acquire("POST /order", 1, 102.5) == 0.0
    assert limiter.statistics().endpoints["POST /order"].responses_429 == 1
    limiter.record_warning("POST /order")
    assert limiter.statistics().endpoints["POST /order"].warnings == 1


def test_429_without_retry_after_backs_off_exponentially_and_resets_on_success() -> None:
    limiter = _simple(backoff_initial_secs=1.0, backoff_max_secs=5.0)
    blocks = [limiter.record_429("e", 0.0) for _ in range(5)]
    # each block extends from now, never shortening an earlier one
    assert blocks == [1.0, 2.0, 4.0, 5.0, 5.0]
    limiter.record_success("e")
    assert limiter.record_429("e", 10.0) == 11.0


def test_absurd_retry_after_is_capped() -> None:
    limiter = _simple(retry_after_max_secs=60.0)
    assert limiter.record_429("e", 0.0, retry_after_secs=1e9) == 60.0
    assert limiter.record_429("e", 0.0, retry_after_secs=float("nan")) == 60.0  # ignored: backoff instead


def test_signer_buckets_charge_a_batch_its_size_and_cancel_all_after_the_fact() -> None:
    limits, endpoints = with_signer_buckets(
        POLYMARKET_LIMITS,
        POLYMARKET_ENDPOINTS,
        order=BucketLimit(capacity=20, refill_per_sec=2.0),
        cancel=BucketLimit(capacity=10, refill_per_sec=1.0),
    )
    limiter = _limiter(limits, endpoints, RateLimitSettings(reserve_fraction=0.0))
    assert limiter.try_acquire("POST /orders", 15, 0.0) == 0.0
    assert limiter.try_acquire("POST /orders", 15, 0.0) == 5.0  # 5 tokens left, 10 more at 2/s
    assert limiter.try_acquire("POST /order", 1, 0.0) == 0.0  # single orders share the order bucket
    assert limiter.try_acquire("POST /orders", 15, 5.5) == 0.0
    # cancel-all costs 1 up front, then 1 per order it cancelled
    assert limiter.try_acquire("DELETE /cancel-all", 1, 0.0) == 0.0
    limiter.charge("DELETE /cancel-all", 12, 0.0)
    assert limiter.try_acquire("DELETE /order", 1, 0.0) == 4.0  # the bucket is 3 in debt
    assert limiter.statistics().usage["signer cancels"] == 13


async def test_acquire_sleeps_on_the_trio_clock_until_granted(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _simple(limit=2)
    start = trio.current_time()
    for _ in range(3):
        await limiter.acquire("e")
    assert trio.current_time() - start == pytest.approx(11.0, abs=1e-9)
    stats = limiter.statistics().endpoints["e"]
    assert (stats.granted, stats.waited) == (3, 1)


async def test_normal_calls_are_served_in_fifo_order(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _simple(limit=1)
    order: list[int] = []

    async def call(i: int) -> None:
        await limiter.acquire("e")
        order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(call, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3]


async def test_cancels_are_never_queued_behind_waiting_orders(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _limiter(
        {"shared": WindowLimit(10, 10.0)},
        {"order": EndpointRule(("shared",)), "cancel": EndpointRule(("shared",), Priority.HIGH)},
        RateLimitSettings(reserve_fraction=0.2, slots=10),
    )
    cancel_done_at: list[float] = []
    async with trio.open_nursery() as nursery:
        for _ in range(12):  # 8 go at once, 4 wait holding the order queue
            nursery.start_soon(limiter.acquire, "order")
        await trio.testing.wait_all_tasks_blocked()
        await limiter.acquire("cancel")
        cancel_done_at.append(trio.current_time())
    assert cancel_done_at == [0.0]


async def test_a_cancelled_waiter_charges_nothing(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _simple(limit=1)
    await limiter.acquire("e")
    with trio.move_on_after(1.0) as scope:
        await limiter.acquire("e")
    assert scope.cancelled_caught
    assert limiter.statistics().endpoints["e"].granted == 1
    await limiter.acquire("e")
    assert trio.current_time() == pytest.approx(11.0, abs=1e-9)


async def test_a_call_granted_at_once_does_not_yield_but_stays_a_cancel_point(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = _simple(limit=2)
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)  # runnable, not run yet
        await limiter.acquire("e")  # granted at once: no schedule point, so `other` has not run
        assert ran == []
    assert ran == ["other"]
    with trio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire("e")  # cancelled before anything is charged
    assert scope.cancelled_caught
    stats = limiter.statistics().endpoints["e"]
    assert (stats.granted, stats.waited, stats.throttled) == (1, 0, 0)


async def test_a_call_that_must_wait_is_counted_once_and_yields(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _simple(limit=1)
    await limiter.acquire("e")
    start = trio.current_time()
    await limiter.acquire("e")  # the window is full: one answer says wait, the next grants
    assert trio.current_time() - start == pytest.approx(11.0, abs=1e-9)  # the end of the first one's slot + 10 s
    stats = limiter.statistics().endpoints["e"]
    assert (stats.granted, stats.waited, stats.throttled) == (2, 1, 1)


async def test_a_call_arriving_while_another_waits_queues_behind_it(autojump_clock: trio.testing.MockClock) -> None:
    limiter = _simple(limit=1)
    await limiter.acquire("e")
    order: list[str] = []

    async def call(name: str) -> None:
        await limiter.acquire("e")
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "first")
        await trio.testing.wait_all_tasks_blocked()  # waits for the window, holding the queue
        limiter.record_success("e")
        nursery.start_soon(call, "second")
    assert order == ["first", "second"]


async def test_a_bounded_acquire_gives_up_past_its_wait_charging_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = _simple(limit=2)
    assert await limiter.acquire("e", max_wait_secs=0)
    assert await limiter.acquire("e", max_wait_secs=0)
    assert not await limiter.acquire("e", max_wait_secs=0)  # the window is full: refused, nothing charged
    assert limiter.statistics().endpoints["e"].granted == 2
    assert limiter.statistics().endpoints["e"].throttled == 1  # one call, one throttle
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, "e")  # waits for the window, holding the FIFO queue
        await trio.testing.wait_all_tasks_blocked()
        autojump_clock.jump(11.0)  # room again, but the queued call is ahead
        assert not await limiter.acquire("e", max_wait_secs=0)
    assert await limiter.acquire("e", max_wait_secs=0)  # the queue is empty and there is room
    assert limiter.statistics().endpoints["e"].granted == 4


# -- the venue's per-signer buckets, by tier ------------------------------------------------------------------------


def _report(endpoint: str, **kwargs: Any) -> RateLimitReport:
    return RateLimitReport(endpoint=endpoint, status=kwargs.pop("status", 200), **kwargs)


def test_until_the_venue_names_a_tier_the_buckets_are_standard_and_say_so() -> None:
    limiter = RateLimiter()
    stats = limiter.statistics()
    assert (stats.tier, stats.tier_source) == ("standard", "assumed")
    assert stats.buckets[ORDER_BUCKET].capacity == 60
    assert stats.buckets[CANCEL_BUCKET].capacity == 120
    # 54 single orders at once (the reserve is headroom for network jitter), then 40 a second
    assert _grant_all(limiter, "POST /order", 0.0) == 54
    assert limiter.try_acquire("POST /order", 1, 0.0) == pytest.approx(1 / 40)
    # cancels have their own bucket: 120 at once, whatever the orders did
    assert _grant_all(limiter, "DELETE /order", 0.0) == 120


def test_the_tier_from_the_venue_resizes_the_buckets() -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire("POST /orders", 15, 0.0) == 0.0  # 45 left
    assert limiter.set_tier("Gold", TierSource.ENDPOINT, 0.0)
    stats = limiter.statistics()
    assert (stats.tier, stats.tier_source) == ("gold", "endpoint")
    assert stats.buckets[ORDER_BUCKET].capacity == 600
    assert stats.buckets[ORDER_BUCKET].tokens == 45  # a larger burst fills up by refilling (400/s)
    assert limiter.try_acquire("POST /orders", 15, 1.0) == 0.0
    assert limiter.statistics().buckets[ORDER_BUCKET].tokens == 45 + 400 - 15
    assert limiter.set_tier("standard", TierSource.HEADER, 1.0)
    assert limiter.statistics().buckets[ORDER_BUCKET].tokens == 60  # a smaller burst drops what is above it
    # a name the table does not know changes nothing
    assert not limiter.set_tier("mithril", TierSource.HEADER, 1.0)
    assert limiter.statistics().tier == "standard"
    assert limiter.statistics().unknown_tiers == 1


def test_every_tier_of_the_table() -> None:
    assert {
        name: (t.order.refill_per_sec, t.order.capacity, t.cancel.refill_per_sec, t.cancel.capacity)
        for name, t in SIGNER_TIERS.items()
    } == {
        "standard": (40, 60, 80, 120),
        "copper": (60, 90, 120, 180),
        "bronze": (80, 120, 160, 240),
        "silver": (200, 300, 400, 600),
        "gold": (400, 600, 800, 1200),
        "platinum": (450, 675, 900, 1350),
        "diamond": (525, 787, 1050, 1575),
        "elite": (600, 900, 1200, 1800),
    }


def test_the_venues_remaining_count_only_lowers_ours_and_a_debt_is_waited_out() -> None:
    limiter = RateLimiter()
    limiter.observe(_report("DELETE /order", remaining=-8.0, tier="standard"), 0.0)
    stats = limiter.statistics()
    assert stats.buckets[CANCEL_BUCKET].tokens == -8
    assert stats.tier_source == "header"
    assert limiter.try_acquire("DELETE /order", 1, 0.0) == pytest.approx(9 / 80)
    limiter.observe(_report("DELETE /order", remaining=500.0), 0.0)  # never raised above what we count
    assert limiter.statistics().buckets[CANCEL_BUCKET].tokens == -8


def test_a_429_blocks_the_whole_bucket_for_retry_after_and_an_empty_one_until_reset() -> None:
    limiter = RateLimiter()
    limiter.observe(_report("POST /order", status=429, remaining=0.0, retry_after_secs=2.0), 10.0)
    assert limiter.try_acquire("POST /orders", 2, 10.0) == pytest.approx(2.0)  # the batch endpoint shares it
    assert limiter.try_acquire("DELETE /order", 1, 10.0) == 0.0  # cancels do not
    assert limiter.try_acquire("POST /orders", 2, 12.0) == 0.0
    limiter.observe(_report("DELETE /orders", remaining=0.0), 20.0, reset_in_secs=3.0)
    assert limiter.try_acquire("DELETE /order", 1, 20.0) == pytest.approx(3.0)
    limiter.observe(_report("POST /order", remaining=10.0), 30.0, reset_in_secs=3.0)  # not empty: no block
    assert limiter.try_acquire("POST /order", 1, 30.0) == 0.0


def test_warnings_are_counted_per_endpoint() -> None:
    limiter = RateLimiter()
    limiter.observe(_report("POST /orders", warning=True, remaining=1.0), 0.0)
    limiter.observe(_report("GET /nowhere", warning=True), 0.0)  # an endpoint the table does not have: ignored
    stats = limiter.statistics()
    assert stats.endpoints["POST /orders"].warnings == 1
    assert stats.reports == 1


def test_max_cost_says_how_to_split_what_can_never_pass() -> None:
    limiter = RateLimiter()
    assert limiter.max_cost("POST /orders") == 54
    assert limiter.max_cost("DELETE /orders") == 120
    assert limiter.max_cost("GET /book") is None  # requests, not tokens
    with pytest.raises(ValueError, match="can never fit"):
        limiter.try_acquire("DELETE /orders", 121, 0.0)
    limiter.set_tier("silver", TierSource.HEADER, 0.0)
    assert limiter.max_cost("DELETE /orders") == 600
    assert RateLimiter(WINDOWS_ONLY).statistics().tier is None


async def test_a_standard_signer_never_sends_more_than_its_bucket_allows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A greedy client on the Trio clock: at most 60 + 40 t orders by time t, and close to that."""
    limiter = RateLimiter()
    sent: list[float] = []

    async def greedy(batch: int) -> None:
        while trio.current_time() < 10.0:
            await limiter.acquire("POST /orders", batch)
            sent.extend([trio.current_time()] * batch)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(greedy, 2)
        nursery.start_soon(greedy, 15)
    for n, t in enumerate(sent, start=1):
        assert n <= 60 + 40 * (t - start) + 1e-6
    assert len(sent) >= 60 + 40 * 9.5
