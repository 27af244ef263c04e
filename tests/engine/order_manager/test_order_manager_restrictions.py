"""The order manager through the venue's trading restrictions and per-signer rate limits, against a scripted
FakeVenue on the MockClock: an order refused with 425 is sent again under its id at each probe (1 s, 2 s, 4 s ...)
and never trips the breaker; the post-only window, cancel-only, trading disabled and closed-only are verdicts with
their own codes, and what they forbid is not sent; the venue's rate-limit reports drive the limiter; cancels of many
orders are split by the 1000-id cap and the cancel bucket's burst."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.engine.order_manager.test_order_manager import NO, WALL, YES, manager_for
from tests.engine.test_restrictions import state_of
from trader.domain.enums import OrderStatus
from trader.domain.numbers import Side
from trader.domain.risk import TradingState
from trader.engine.breaker import Breakers, BreakerSettings, BreakerState, EndpointFamily
from trader.engine.order_manager import OrderManager, OrderManagerSettings
from trader.engine.rate_limit import CANCEL_BUCKET, ORDER_BUCKET, RateLimiter, TierSource
from trader.engine.restrictions import RestrictionSettings, follow_restrictions, watch_venue_account
from trader.engine.risk import RiskCode, RiskGate
from trader.integrations.store.base import IntentState
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.base import RateLimitReport
from trader.venues.errors import TradingRestriction, VenueRejectCode, VenueRequestError

EARLY = VenueRequestError.from_reply(425, "the matching engine is restarting")
CANCEL_ONLY = VenueRequestError.from_reply(
    503, "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
)
#: A breaker that a handful of failures would open: restrictions must never count as failures.
TOUCHY = BreakerSettings(consecutive_failures=2, orders_consecutive_failures=2, cool_down_secs=30.0)
SETTINGS = OrderManagerSettings(
    request_timeout_secs=1.0,
    max_rate_wait_secs=60.0,
    restrictions=RestrictionSettings(order_retry_secs=10.0, post_only_window_secs=120.0, probe_initial_secs=5.0),
)


def refused(error: VenueRequestError) -> Outcome:
    return Outcome(reply="raise", error=error, lands=False)


def harness(venue: FakeVenue, store: MemoryStore | None = None) -> OrderManager:
    return manager_for(venue, store, breakers=Breakers(TOUCHY), settings=SETTINGS)


async def test_an_order_refused_with_425_is_sent_again_at_each_probe_and_never_trips_the_breaker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, refused(EARLY), refused(EARLY), refused(EARLY), Outcome())
    manager = harness(venue, store)
    start = trio.current_time()

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.ACCEPTED
    assert [round(t - start, 6) for t in venue.submit_times] == [0.0, 1.0, 3.0, 7.0]  # 1 s, then doubling
    assert {o.order_id for o in venue.submitted} == {order.order_id}  # one order, sent again under its id
    venue.check()
    stats = manager.statistics()
    orders = stats.breakers["orders"]
    assert (orders.state, orders.opens, orders.failures) == (BreakerState.CLOSED, 0, 0)
    assert orders.restricted == 3
    assert stats.restricted == {"RESTARTING": 3}
    assert stats.restart_retries == 3
    assert stats.submitted == 1  # one order went out (three times)
    assert store.intents["c1"].state is IntentState.ACKED
    # the restart is over; the post-only window follows it
    restrictions = manager.restrictions
    assert [a.restriction for a in restrictions.active(trio.current_time())] == [TradingRestriction.POST_ONLY]
    taker = await manager.submit(make_intent("c2"))
    assert (taker.status, taker.reason) == (OrderStatus.REJECTED, RiskCode.RESTRICTED_POST_ONLY)
    assert store.intents["c2"].state is IntentState.NOT_SENT
    maker = await manager.submit(make_intent("c3", post_only=True, price="0.30"))
    assert maker.status is OrderStatus.ACCEPTED
    assert len(venue.submitted) == 5
    autojump_clock.jump(120.0)
    assert (await manager.submit(make_intent("c4", price="0.31"))).status is OrderStatus.ACCEPTED


async def test_an_order_still_refused_after_order_retry_secs_is_rejected_by_the_venues_425(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.default = refused(EARLY)
    manager = harness(venue)
    start = trio.current_time()

    order = await manager.submit(make_intent("c1"))

    assert (order.status, order.reason) == (OrderStatus.REJECTED, VenueRejectCode.ENGINE_RESTARTING)
    assert [round(t - start, 6) for t in venue.submit_times] == [0.0, 1.0, 3.0, 7.0]  # the next, 15 s, is too late
    assert venue.lookups == []  # a verdict, not an unknown outcome
    assert manager.unresolved() == []
    assert manager.breakers[EndpointFamily.ORDERS].state is BreakerState.CLOSED
    # meanwhile new orders are not sent until the next probe
    late = await manager.submit(make_intent("c2", price="0.39"))
    assert (late.status, late.reason) == (OrderStatus.REJECTED, RiskCode.RESTRICTED_RESTARTING)
    assert len(venue.submitted) == 4
    venue.check()


async def test_a_retry_that_the_post_only_window_forbids_is_not_made(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = harness(venue)
    resting = await manager.submit(make_intent("rest", price="0.20"))
    venue.script(YES, refused(EARLY))

    async def cancel_soon() -> None:
        await trio.sleep(0.5)
        await manager.cancel("rest")  # a cancel answered: the restart is over, the post-only window begins

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_soon)
        order = await manager.submit(make_intent("taker"))

    assert (order.status, order.reason) == (OrderStatus.REJECTED, VenueRejectCode.ENGINE_RESTARTING)
    assert manager.order("rest").status is OrderStatus.CANCELED
    assert len(venue.submitted) == 2  # the resting order, and the taker once
    assert manager.restrictions.holds(TradingRestriction.POST_ONLY)
    assert resting.order_id in venue.canceled


async def test_cancels_are_sent_again_through_a_restart(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = harness(venue)
    await manager.submit(make_intent("rest", price="0.20"))
    venue.cancel_errors = [EARLY, EARLY]
    start = trio.current_time()
    order = await manager.cancel("rest")
    assert order.status is OrderStatus.CANCELED
    assert round(trio.current_time() - start, 6) == 3.0  # 1 s, then 2 s
    assert manager.breakers[EndpointFamily.ORDERS].state is BreakerState.CLOSED
    assert manager.statistics().restricted == {"RESTARTING": 2}


async def test_a_cancel_only_503_is_a_verdict_and_new_orders_wait_for_a_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, refused(CANCEL_ONLY), refused(CANCEL_ONLY), refused(CANCEL_ONLY))
    manager = harness(venue)

    order = await manager.submit(make_intent("c1"))
    assert (order.status, order.reason) == (OrderStatus.REJECTED, VenueRejectCode.CANCEL_ONLY)
    assert venue.lookups == []  # a 503 that names a restriction is not an unknown outcome
    for n in range(3):  # not sent while cancel-only holds
        denied = await manager.submit(make_intent(f"d{n}", price=f"0.3{n}"))
        assert denied.reason == RiskCode.RESTRICTED_CANCEL_ONLY
    assert len(venue.submitted) == 1
    autojump_clock.jump(5.0)  # the probe: refused again (the wait doubles), then the venue is back
    assert (await manager.submit(make_intent("p1", price="0.35"))).reason == VenueRejectCode.CANCEL_ONLY
    autojump_clock.jump(9.0)
    assert (await manager.submit(make_intent("p2", price="0.36"))).reason == RiskCode.RESTRICTED_CANCEL_ONLY
    autojump_clock.jump(1.0)
    assert (await manager.submit(make_intent("p3", price="0.37"))).reason == VenueRejectCode.CANCEL_ONLY
    autojump_clock.jump(20.0)
    assert (await manager.submit(make_intent("p4", price="0.38"))).status is OrderStatus.ACCEPTED
    assert manager.restrictions.active(trio.current_time()) == ()
    assert all(b.failures == 0 for b in manager.breakers.statistics().values())


async def test_refusals_in_a_batch_name_their_restriction(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="reject", reason=VenueRejectCode.POST_ONLY_MODE, message="post-only mode"))
    venue.script(NO, Outcome(reply="reject", reason=VenueRejectCode.POST_ONLY_MODE, message="post-only mode"))
    manager = harness(venue)
    yes, no = await manager.submit_batch([make_intent("y"), make_intent("n", token_id=NO, condition_id="0xc")])
    assert (yes.status, yes.reason) == (OrderStatus.REJECTED, VenueRejectCode.POST_ONLY_MODE)  # not "would cross"
    assert (no.status, no.reason) == (OrderStatus.REJECTED, VenueRejectCode.POST_ONLY_MODE)
    assert manager.statistics().restricted == {"POST_ONLY": 2}
    assert manager.restrictions.holds(TradingRestriction.POST_ONLY)
    assert (await manager.submit(make_intent("t", price="0.41"))).reason == RiskCode.RESTRICTED_POST_ONLY
    autojump_clock.jump(120.0)
    assert (await manager.submit(make_intent("t2", price="0.42"))).status is OrderStatus.ACCEPTED


async def test_closed_only_puts_the_gate_in_reducing_until_the_venue_lifts_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(
        YES, Outcome(reply="reject", reason=VenueRejectCode.CLOSED_ONLY, message="address in closed only mode")
    )
    settings = dataclasses.replace(
        SETTINGS, restrictions=dataclasses.replace(SETTINGS.restrictions, closed_only_poll_secs=30.0)
    )
    manager = manager_for(venue, settings=settings)
    gate = RiskGate()
    follow_restrictions(gate, manager.restrictions, manager.now)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_venue_account, manager)
        assert venue.closed_only_asks == 1  # at start
        venue.closed_only_answer = True
        order = await manager.submit(make_intent("buy"))
        assert (order.status, order.reason) == (OrderStatus.REJECTED, VenueRejectCode.CLOSED_ONLY)
        assert state_of(gate) is TradingState.REDUCING
        await trio.sleep(0.1)
        assert venue.closed_only_asks == 2  # the refusal asked at once
        sell = await manager.submit(make_intent("sell", side=Side.SELL, price="0.60"))
        assert sell.status is OrderStatus.ACCEPTED  # reducing orders still go
        buy = await manager.submit(make_intent("buy2", price="0.41"))
        assert buy.reason == RiskCode.RESTRICTED_CLOSED_ONLY
        venue.closed_only_answer = False
        await trio.sleep(30.0)
        assert venue.closed_only_asks == 3
        assert state_of(gate) is TradingState.ACTIVE
        assert (await manager.submit(make_intent("buy3", price="0.42"))).status is OrderStatus.ACCEPTED
        nursery.cancel_scope.cancel()


async def test_the_tier_comes_from_the_venue_and_its_reports_drive_the_buckets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.tier_answer = "bronze"
    manager = harness(venue)
    assert manager.limiter.statistics().tier_source == "assumed"
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_venue_account, manager)
        nursery.cancel_scope.cancel()
    stats = manager.limiter.statistics()
    assert (stats.tier, stats.tier_source) == ("bronze", "endpoint")
    assert stats.buckets[ORDER_BUCKET].capacity == 120
    # a 429 says: nothing for 2 s on the order bucket
    venue.report_rate_limit(RateLimitReport(endpoint="POST /order", status=429, remaining=0.0, retry_after_secs=2.0))
    start = trio.current_time()
    await manager.submit_batch([make_intent("a"), make_intent("b", price="0.41")])
    assert round(venue.submit_times[0] - start, 6) == 2.0
    assert manager.limiter.statistics().buckets[ORDER_BUCKET].tokens == pytest.approx(120 - 2)  # a batch costs 2


async def test_a_burst_of_orders_is_metered_by_the_standard_bucket(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = harness(venue)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for n in range(140):
            nursery.start_soon(manager.submit, make_intent(f"c{n}", price=f"0.{10 + n % 80}", size=10 + n))
    times = sorted(t - start for t in venue.submit_times)
    assert len(times) == 140
    for count, t in enumerate(times, start=1):
        assert count <= 60 + 40 * t + 1e-6  # never more than the burst plus 40 a second
    assert times[53] == 0.0  # 54 at once: 6 tokens of the burst are left as headroom for the network
    assert times[-1] == pytest.approx((140 - 54) / 40)  # and no slower than that


async def test_cancel_many_is_split_by_the_cancel_burst_and_the_1000_id_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue, settings=SETTINGS, cash=Decimal(10**9))
    manager.limiter.set_tier("gold", TierSource.ENDPOINT, trio.current_time())  # order burst 600, cancel 1,200
    cids = [f"c{n}" for n in range(1_100)]
    async with trio.open_nursery() as nursery:
        for n, cid in enumerate(cids):
            nursery.start_soon(manager.submit, make_intent(cid, price=f"0.{10 + n % 80}", size=10 + n))
    assert len(venue.live_order_ids()) == 1_100
    orders = await manager.cancel_many(cids, reason="TEST")
    assert venue.cancel_batches == [1_000, 100]
    assert {o.status for o in orders} == {OrderStatus.CANCELED}
    assert {o.reason for o in orders} == {"TEST"}

    standard = manager_for(FakeVenue(wall=WALL), settings=SETTINGS)
    venue2 = standard.venue
    assert isinstance(venue2, FakeVenue)
    async with trio.open_nursery() as nursery:
        for n in range(130):
            nursery.start_soon(standard.submit, make_intent(f"s{n}", price=f"0.{10 + n % 80}", size=10 + n))
    await standard.cancel_many([f"s{n}" for n in range(130)], reason="TEST")
    assert venue2.cancel_batches == [120, 10]  # a Standard signer's cancel burst is 120
    assert standard.limiter.statistics().buckets[CANCEL_BUCKET].capacity == 120


def test_a_limiter_without_signer_buckets_leaves_batches_at_the_venues_cap() -> None:
    manager = manager_for(FakeVenue(wall=WALL))
    assert manager.max_batch_orders() == 15
    assert isinstance(manager.limiter, RateLimiter)
