"""The order manager against a scripted FakeVenue, on the MockClock: write-ahead, timeouts resolved by order id,
429/5xx/breaker handling, venue events, settlement and FAILED-trade reversal."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import pytest
import trio

from trader.domain.enums import OrderStatus, OrderType, TradeStatus
from trader.domain.events import OrderReason
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.engine.breaker import Breakers, BreakerSettings, BreakerState, CircuitOpenError, EndpointFamily
from trader.engine.order_manager import (
    CIRCUIT_OPEN,
    SENDING_BLOCKED,
    STORE_WRITE_FAILED,
    SUBMIT_NOT_FOUND,
    DuplicateClientOrderId,
    OrderManager,
    OrderManagerSettings,
    pump_venue_events,
)
from trader.integrations.store.base import IntentRecord, IntentState
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.base import (
    Balances,
    CancelResult,
    SubmitResult,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
    lookup_in_open_orders_and_trades,
)
from trader.venues.errors import VenueDisconnected, VenueRejectCode, VenueRequestError, VenueTimeout

YES = "1001"
NO = "1002"
WALL = 1_700_000_000.0


def manager_for(
    venue: object,
    store: MemoryStore | None = None,
    *,
    breakers: Breakers | None = None,
    cash: Decimal = Decimal(1000),
    settings: OrderManagerSettings | None = None,
) -> OrderManager:
    return OrderManager(
        venue,  # type: ignore[arg-type]
        store if store is not None else MemoryStore(),
        portfolio=Portfolio(cash=cash),
        breakers=breakers,
        settings=settings,
        wall_ns=lambda: int(WALL * 1e9),
    )


def intent_state(store: MemoryStore, cid: str) -> IntentState:
    """The intent's state now (a call, so that a type checker does not carry one assertion's narrowing to the next)."""
    return store.intents[cid].state


class TimelineStore(MemoryStore):
    """Records the write-ahead intent in the same timeline as the venue's arrivals."""

    def __init__(self, timeline: list[str]) -> None:
        super().__init__()
        self.timeline = timeline

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        await super().record_intents(intents)
        self.timeline.append("intent " + " ".join(i.client_order_id for i in intents))  # one entry per store call


class TimelineVenue(FakeVenue):
    def __init__(self, timeline: list[str]) -> None:
        super().__init__(wall=WALL)
        self.timeline = timeline

    async def submit(self, order: Order) -> SubmitResult:
        self.timeline.append(f"submit {order.client_order_id}")
        return await super().submit(order)


async def test_intent_is_written_before_the_order_is_sent(autojump_clock: trio.testing.MockClock) -> None:
    timeline: list[str] = []
    venue, store = TimelineVenue(timeline), TimelineStore(timeline)
    manager = manager_for(venue, store)

    order = await manager.submit(make_intent("c1"))

    assert timeline == ["intent c1", "submit c1"]
    assert order.status is OrderStatus.ACCEPTED
    assert store.intents["c1"].state is IntentState.ACKED
    assert store.intents["c1"].order_id == order.order_id
    assert store.orders[order.order_id].status is OrderStatus.ACCEPTED
    venue.check()


async def test_order_id_is_computed_before_sending_and_is_what_the_venue_gets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    order = await manager.submit(make_intent("c1"))
    assert venue.submitted[0].order_id == order.order_id == "0x" + "0" * 63 + "1"


async def test_timed_out_submit_that_landed_is_resolved_by_asking_for_its_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=True))
    manager = manager_for(venue)

    start = trio.current_time()
    order = await manager.submit(make_intent("c1"))

    # the default per-request timeout (0.5 s), then the first lookup of the schedule (0.25 s later)
    assert trio.current_time() - start == pytest.approx(0.75)
    assert venue.lookups == [order.order_id]  # asked by id ...
    assert len(venue.submitted) == 1  # ... never resent
    assert order.status is OrderStatus.ACCEPTED
    stats = manager.statistics()
    assert (stats.ambiguous, stats.resolved_found, stats.unresolved, stats.timeouts) == (1, 1, 0, 1)
    assert manager.store.intents["c1"].state is IntentState.ACKED  # type: ignore[attr-defined]
    venue.check()


async def test_timed_out_submit_that_never_landed_is_closed_as_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=False))
    store = MemoryStore()
    manager = manager_for(venue, store)

    start = trio.current_time()
    order = await manager.submit(make_intent("c1"))

    # "Not found" is a verdict only once the window has passed: the request's deadline (0.5 s) plus the grace (5 s).
    # Asked on the backoff schedule: 0.25 s after the timeout, then 0.5, 1 and 2 s apart, and when the window ends.
    assert trio.current_time() - start == pytest.approx(5.5)
    assert venue.lookups == [order.order_id] * 5
    assert len(venue.submitted) == 1
    assert order.status is OrderStatus.CANCELED
    assert order.reason == SUBMIT_NOT_FOUND
    assert store.intents["c1"].state is IntentState.REJECTED
    assert store.intents["c1"].reason == SUBMIT_NOT_FOUND
    assert manager.statistics().resolved_not_found == 1
    venue.check()


async def test_a_timed_out_order_the_venue_takes_late_is_found_not_rejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The harness's case: the reply (and the order) are held up past our deadline; the first lookups find nothing.
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=False))
    store = MemoryStore()
    manager = manager_for(venue, store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager.submit, make_intent("c1", order_type=OrderType.FOK))
        await trio.sleep(1.5)  # two lookups so far (0.75 s and 1.25 s after sending), both "not found"
        order = manager.order("c1")
        assert (order.status, venue.lookups) == (OrderStatus.UNKNOWN, [order.order_id] * 2)
        assert store.orders[order.order_id].status is OrderStatus.UNKNOWN  # visible in the store, intent pending
        assert intent_state(store, "c1") is IntentState.PENDING
        assert [o.client_order_id for o in manager.unresolved()] == ["c1"]
        venue.land(order.order_id, Outcome(fill=Decimal(10)))  # the venue takes it now, and it fills

    order = manager.order("c1")
    assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal(10))  # the next lookup found it
    assert manager.positions() == {YES: Decimal(10)}
    assert intent_state(store, "c1") is IntentState.ACKED
    stats = manager.statistics()
    assert (stats.ambiguous, stats.resolved_found, stats.resolved_not_found, stats.unresolved) == (1, 1, 0, 0)
    assert (stats.lookups, stats.late_fills) == (3, 0)
    venue.check()


async def test_timed_out_submit_that_matched_gets_its_fills_from_the_venue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The reply is lost and no event stream is open: the fills come from asking the venue.
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=True, fill=Decimal(10)))
    manager = manager_for(venue)

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.FILLED
    assert manager.positions() == {YES: Decimal(10)}
    assert manager.positions() == await venue.positions()
    assert manager.portfolio.cash == Decimal(1000) - Decimal("4.00")


async def test_a_disconnect_on_submit_is_an_unknown_outcome_too(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="raise", error=VenueDisconnected("peer closed"), lands=True))
    manager = manager_for(venue)
    order = await manager.submit(make_intent("c1"))
    assert order.status is OrderStatus.ACCEPTED
    assert venue.lookups == [order.order_id]


async def test_unresolvable_submit_stays_unknown_and_is_counted(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=True))
    venue.lookup_error = VenueTimeout("no answer")
    store = MemoryStore()
    manager = manager_for(venue, store)

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.UNKNOWN  # the venue could not be asked: no verdict
    assert len(venue.lookups) == 5  # the whole schedule
    assert manager.statistics().unresolved == 1
    assert [o.client_order_id for o in manager.unresolved()] == ["c1"]
    assert intent_state(store, "c1") is IntentState.PENDING
    # A later event settles it.
    venue.lookup_error = None
    await manager.handle_venue_event((await venue.open_orders())[0])
    assert manager.order("c1").status is OrderStatus.ACCEPTED
    assert manager.statistics().unresolved == 0
    assert intent_state(store, "c1") is IntentState.ACKED


async def test_venue_rejection_is_a_value_with_its_code(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="reject", reason=VenueRejectCode.MIN_SIZE, message="Size lower than the minimum"))
    store = MemoryStore()
    manager = manager_for(venue, store)

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "VENUE_MIN_SIZE"
    assert store.intents["c1"].state is IntentState.REJECTED
    assert manager.statistics().rejected == {"VENUE_MIN_SIZE": 1}


async def test_429_blocks_the_endpoint_and_is_not_a_breaker_failure(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    error = VenueRequestError(429, VenueRejectCode.RATE_LIMITED, "Too Many Requests", retry_after_secs=5.0)
    venue.script(YES, Outcome(reply="raise", error=error, lands=False), Outcome())
    manager = manager_for(venue)

    first = await manager.submit(make_intent("c1"))
    assert first.status is OrderStatus.REJECTED
    assert first.reason == "VENUE_RATE_LIMITED"
    assert venue.lookups == []  # a 429 is a clear "not taken": nothing to resolve
    stats = manager.statistics()
    assert stats.responses_429 == 1
    assert stats.breakers["orders"].state is BreakerState.CLOSED
    assert stats.breakers["orders"].failures == 0
    assert stats.rate_limiter.endpoints["POST /order"].responses_429 == 1

    # The endpoint is blocked for Retry-After (5 s): longer than a submit may wait (1 s), so the next is not sent.
    second = await manager.submit(make_intent("c2"))
    assert second.status is OrderStatus.REJECTED
    assert second.reason == "RATE_LIMITED"
    assert len(venue.submitted) == 1
    await trio.sleep(5)
    third = await manager.submit(make_intent("c3"))
    assert third.status is OrderStatus.ACCEPTED


async def test_5xx_counts_against_the_breaker_and_is_resolved_by_id(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    error = VenueRequestError(503, VenueRejectCode.SERVER_ERROR, "upstream")
    venue.script(YES, Outcome(reply="raise", error=error, lands=False))
    manager = manager_for(venue)

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.CANCELED
    assert order.reason == SUBMIT_NOT_FOUND
    stats = manager.statistics()
    assert (stats.responses_5xx, stats.responses_429, stats.breakers["orders"].failures) == (1, 0, 1)


async def test_open_breaker_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    breakers = Breakers(BreakerSettings(orders_consecutive_failures=2, cool_down_secs=30.0))
    breaker = breakers[EndpointFamily.ORDERS]
    timeout = VenueTimeout("slow")
    venue.script(YES, Outcome(reply="raise", error=timeout, lands=False), Outcome(reply="raise", error=timeout))
    manager = manager_for(venue, breakers=breakers)
    breaker.record_failure(trio.current_time())  # one failure already: c1's timeout opens the breaker
    await manager.submit(make_intent("c1"))
    assert breaker.state is BreakerState.OPEN
    # c1's lookups succeeded (the venue answered "not found"): reads have a breaker of their own, still closed
    assert breakers[EndpointFamily.READS].state is BreakerState.CLOSED
    assert manager.order("c1").reason == SUBMIT_NOT_FOUND

    order = await manager.submit(make_intent("c2"))

    assert order.status is OrderStatus.REJECTED
    assert order.reason == CIRCUIT_OPEN
    assert [o.client_order_id for o in venue.submitted] == ["c1"]
    assert manager.store.intents["c2"].state is IntentState.NOT_SENT  # type: ignore[attr-defined]
    assert manager.statistics().breaker_refusals >= 1


async def test_store_failure_means_nothing_is_sent(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    store = MemoryStore(fail_writes=True)
    manager = manager_for(venue, store)

    order = await manager.submit(make_intent("c1"))

    assert order.status is OrderStatus.REJECTED
    assert order.reason == STORE_WRITE_FAILED
    assert venue.submitted == []
    assert manager.statistics().store_errors >= 1


async def test_blocked_sending_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    manager.block_sending("EMERGENCY_STOP")
    order = await manager.submit(make_intent("c1"))
    assert order.status is OrderStatus.REJECTED
    assert order.reason == SENDING_BLOCKED
    assert venue.submitted == []
    manager.allow_sending()
    assert (await manager.submit(make_intent("c2"))).status is OrderStatus.ACCEPTED


async def test_reused_client_order_id_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    await manager.submit(make_intent("c1"))
    with pytest.raises(DuplicateClientOrderId):
        await manager.submit(make_intent("c1"))
    assert len(venue.submitted) == 1


async def test_fills_settlement_and_failed_trade_reversal(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    store = MemoryStore()
    manager = manager_for(venue, store, cash=Decimal(100))
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1", size="10", price="0.40"))
        assert order.status is OrderStatus.ACCEPTED

        first = venue.fill(order.order_id, Decimal(4))
        second = venue.fill(order.order_id, Decimal(6))
        filled = await manager.wait_until("c1", lambda o: o.filled == Decimal(10))
        assert filled.status is OrderStatus.FILLED
        assert manager.positions() == {YES: Decimal(10)}
        assert manager.portfolio.cash == Decimal(96)

        venue.set_trade_status(first, TradeStatus.CONFIRMED)
        venue.set_trade_status(second, TradeStatus.FAILED)
        await manager.wait_until("c1", lambda o: o.filled == Decimal(4))
        await trio.testing.wait_all_tasks_blocked()  # the event pump has persisted everything
        reversed_order = manager.order("c1")

        # The failed trade's fill is gone from the order and the position; the confirmed one stays.
        assert reversed_order.status is OrderStatus.CANCELED  # the venue took it off the book when it matched
        assert [f.trade_id for f in reversed_order.reversed_fills] == [second]
        assert manager.positions() == {YES: Decimal(4)}
        assert manager.portfolio.cash == Decimal(100) - Decimal("1.60")
        assert manager.positions() == await venue.positions()
        assert store.trades[(second, order.order_id)].status is TradeStatus.FAILED
        assert store.positions[YES].quantity == Decimal(4)
        stats = manager.statistics()
        assert (stats.fills, stats.trades_failed, stats.trades_confirmed) == (2, 1, 1)
        nursery.cancel_scope.cancel()
    venue.check()


async def test_every_2026_settlement_path_and_an_unknown_status(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    manager = manager_for(venue, store, cash=Decimal(100))

    def unsettled() -> list[str]:
        return [f.trade_id for f in manager.portfolio.position(YES).unsettled]

    async def settle(trade_id: str, *statuses: TradeStatus) -> None:
        for status in statuses:
            venue.set_trade_status(trade_id, status)
            await trio.testing.wait_all_tasks_blocked()

    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1", size="12", price="0.50"))
        retried = venue.fill(order.order_id, Decimal(4), status=TradeStatus.MATCHED_NOT_BROADCASTED)
        failed = venue.fill(order.order_id, Decimal(4))
        unknown = venue.fill(order.order_id, Decimal(4), status=TradeStatus.UNKNOWN)
        await manager.wait_until("c1", lambda o: o.filled == Decimal(12))
        await trio.testing.wait_all_tasks_blocked()  # the event pump has persisted everything
        assert unsettled() == [retried, failed, unknown]  # matched is not settled money, whatever its status
        assert store.trades[(unknown, order.order_id)].status is TradeStatus.MATCHED  # kept as a match

        # RETRYING goes back to MINED, then CONFIRMED: settled.
        await settle(retried, TradeStatus.MATCHED, TradeStatus.MINED, TradeStatus.RETRYING, TradeStatus.MINED)
        assert store.trades[(retried, order.order_id)].status is TradeStatus.MINED
        await settle(retried, TradeStatus.CONFIRMED)
        assert unsettled() == [failed, unknown]
        # FAILED after MINED reverses the fill, in the order and in the position.
        await settle(failed, TradeStatus.MINED, TradeStatus.FAILED)
        assert [f.trade_id for f in manager.order("c1").reversed_fills] == [failed]
        assert manager.positions() == {YES: Decimal(8)}
        assert manager.portfolio.cash == Decimal(100) - Decimal(4)
        # A status we do not know, again: counted, the trade keeps its status; a known one moves it on.
        await settle(unknown, TradeStatus.MINED)
        venue.set_trade_status(unknown, TradeStatus.UNKNOWN)
        await trio.testing.wait_all_tasks_blocked()
        assert store.trades[(unknown, order.order_id)].status is TradeStatus.MINED
        await settle(unknown, TradeStatus.CONFIRMED)
        assert unsettled() == []
        assert manager.positions() == await venue.positions() == {YES: Decimal(8)}
        stats = manager.statistics()
        assert (stats.fills, stats.trades_confirmed, stats.trades_failed) == (3, 2, 1)
        assert (stats.unknown_trade_statuses, stats.late_events) == (2, 0)
        nursery.cancel_scope.cancel()


async def test_failed_trade_on_a_resting_order_puts_it_back_on_the_book(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1", size="10"))
        trade = venue.fill(order.order_id, Decimal(3))
        await manager.wait_until("c1", lambda o: o.filled == Decimal(3))
        assert manager.order("c1").status is OrderStatus.PARTIALLY_FILLED
        venue.set_trade_status(trade, TradeStatus.FAILED)
        back = await manager.wait_until("c1", lambda o: o.filled == 0)
        assert back.status is OrderStatus.ACCEPTED
        assert manager.positions() == {}
        assert manager.portfolio.cash == Decimal(1000)
        nursery.cancel_scope.cancel()


async def test_immediate_orders_fill_on_entry_and_fak_remainder_is_killed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(fill=Decimal(4)))
    manager = manager_for(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        await manager.submit(make_intent("fak", order_type=OrderType.FAK))
        done = await manager.wait_until("fak", lambda o: o.filled == Decimal(4))
        assert done.status is OrderStatus.CANCELED
        assert done.reason == OrderReason.FAK_REMAINDER_CANCELED
        await manager.submit(make_intent("fok", token_id=NO, order_type=OrderType.FOK))
        fok = await manager.wait_until("fok", lambda o: o.is_terminal)
        assert fok.status is OrderStatus.FILLED
        assert manager.positions() == {YES: Decimal(4), NO: Decimal(10)}
        nursery.cancel_scope.cancel()


async def test_cancel_and_cancel_all(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        for n in range(3):
            await manager.submit(make_intent(f"c{n}", price=f"0.3{n}"))
        canceled = await manager.cancel("c0")
        assert canceled.status is OrderStatus.CANCELED
        assert canceled.reason == OrderReason.CANCELED_BY_USER
        result = await manager.cancel_all(reason="SHUTDOWN")
        assert len(result.canceled) == 2
        assert {manager.order(c).status for c in ("c1", "c2")} == {OrderStatus.CANCELED}
        assert {manager.order(c).reason for c in ("c1", "c2")} == {"SHUTDOWN"}
        assert venue.cancel_all_reasons == ["SHUTDOWN"]
        assert manager.open_orders() == []
        # Cancelling a closed order is a no-op, cancelling one the venue refuses puts it back to resting.
        assert (await manager.cancel("c0")).status is OrderStatus.CANCELED
        nursery.cancel_scope.cancel()


async def test_cancel_refused_by_venue_returns_order_to_resting(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    order = await manager.submit(make_intent("c1"))
    venue.fill(order.order_id, Decimal(10))  # filled meanwhile: the cancel will be refused; no pump running
    result = await manager.cancel("c1")
    assert result.status is OrderStatus.ACCEPTED
    assert manager.statistics().cancels_sent == 1


async def test_late_live_event_for_an_order_closed_as_not_found_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=False))
    manager = manager_for(venue)
    order = await manager.submit(make_intent("c1"))
    assert order.reason == SUBMIT_NOT_FOUND
    # The venue reports the order live after all (the request landed after our lookup).
    ghost = VenueOrder(
        order_id=order.order_id,
        token_id=YES,
        side=Side.BUY,
        price=order.price,
        original_size=order.size,
        size_matched=Decimal(0),
        status=VenueOrderStatus.LIVE,
        order_type=OrderType.GTC,
        ts=WALL,
    )
    await manager.handle_venue_event(ghost)
    assert venue.canceled == [order.order_id]
    assert manager.statistics().ghost_orders == 1


async def test_events_for_unknown_orders_are_counted_not_applied(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    other = FakeVenue(wall=WALL)
    stranger = await manager_for(other).submit(make_intent("x"))
    for live in await other.open_orders():
        await manager.handle_venue_event(live)
    other.fill(stranger.order_id, Decimal(1))
    for event in await other.trades():
        await manager.handle_venue_event(event)
    assert manager.statistics().unknown_events == 2
    assert manager.positions() == {}


class NoLookupVenue:
    """A venue without a by-id endpoint: its `lookup` answers from its open orders and trades."""

    def __init__(self, inner: FakeVenue) -> None:
        self.inner = inner

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        return await self.inner.prepare(intent, ts=ts)

    async def lookup(self, order_id: str) -> VenueOrder | None:
        return await lookup_in_open_orders_and_trades(self, order_id)

    async def submit(self, order: Order) -> SubmitResult:
        return await self.inner.submit(order)

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        return await self.inner.submit_batch(orders)

    async def cancel(self, order_id: str) -> CancelResult:
        return await self.inner.cancel(order_id)

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        return await self.inner.cancel_orders(order_ids)

    async def cancel_all(self, *, reason: str) -> CancelResult:
        return await self.inner.cancel_all(reason=reason)

    async def open_orders(self) -> list[VenueOrder]:
        return await self.inner.open_orders()

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        return await self.inner.trades(since_ts=since_ts)

    async def balances(self) -> Balances:
        return await self.inner.balances()

    async def positions(self) -> Mapping[str, Decimal]:
        return await self.inner.positions()

    def open_events(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[VenueEvent]]:
        return self.inner.open_events()


@pytest.mark.parametrize(
    ("outcome", "status", "position"),
    [
        (Outcome(reply="hang", lands=True), OrderStatus.ACCEPTED, {}),
        (Outcome(reply="hang", lands=True, fill=Decimal(10)), OrderStatus.FILLED, {YES: Decimal(10)}),
        (Outcome(reply="hang", lands=False), OrderStatus.CANCELED, {}),
    ],
)
async def test_resolution_without_a_lookup_endpoint(
    autojump_clock: trio.testing.MockClock, outcome: Outcome, status: OrderStatus, position: dict[str, Decimal]
) -> None:
    inner = FakeVenue(wall=WALL)
    inner.script(YES, outcome)
    manager = manager_for(NoLookupVenue(inner))
    order = await manager.submit(make_intent("c1"))
    assert order.status is status
    assert manager.positions() == position
    assert len(inner.submitted) == 1


async def test_reconcile_asks_by_id(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    order = await manager.submit(make_intent("c1"))
    venue.fill(order.order_id, Decimal(2))  # no event pump: only reconcile can learn it
    reconciled = await manager.reconcile("c1")
    assert reconciled.filled == Decimal(2)
    assert reconciled.status is OrderStatus.PARTIALLY_FILLED
    assert venue.lookups == [order.order_id]


async def test_cancelled_while_waiting_to_send_closes_the_order(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    store = MemoryStore()
    manager = manager_for(venue, store)
    # Block the endpoint so the submit waits in the rate limiter, then cancel it there.
    manager.limiter.record_429("POST /order", trio.current_time(), 0.8)
    with trio.move_on_after(0.1):
        await manager.submit(make_intent("c1"))
    assert venue.submitted == []
    assert manager.order("c1").status is OrderStatus.CANCELED
    assert manager.order("c1").reason == OrderReason.NEVER_SENT
    assert store.intents["c1"].state is IntentState.NOT_SENT


async def test_settings_are_checked() -> None:
    from trader.errors import ConfigError

    with pytest.raises(ConfigError):
        OrderManagerSettings(request_timeout_secs=0)
    with pytest.raises(ConfigError):
        OrderManagerSettings(lookup_initial_secs=0)
    with pytest.raises(ConfigError):
        OrderManagerSettings(lookup_initial_secs=3.0, lookup_max_secs=2.0)
    with pytest.raises(ConfigError):
        OrderManagerSettings(unknown_grace_secs=-1)
    assert OrderManagerSettings(request_timeout_secs=0.4, unknown_grace_secs=2.0).unknown_window_secs == 2.4
    with pytest.raises(ConfigError):
        OrderManagerSettings(max_rate_wait_secs=-1)


async def test_cancels_have_priority_over_a_blocked_order_endpoint(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue)
    await manager.submit(make_intent("c1"))
    manager.limiter.record_429("POST /order", trio.current_time(), 30.0)  # orders are blocked for 30 s
    start = trio.current_time()
    canceled = await manager.cancel("c1")
    assert canceled.status is OrderStatus.CANCELED
    assert trio.current_time() - start < 0.01  # the cancel did not wait behind the order endpoint
    assert (await manager.submit(make_intent("c2"))).reason == "RATE_LIMITED"


async def test_forced_cancel_all_goes_out_with_the_breaker_open(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    breakers = Breakers(BreakerSettings(consecutive_failures=1))
    manager = manager_for(venue, breakers=breakers)
    await manager.submit(make_intent("c1"))
    await manager.submit(make_intent("c2"))
    # the ORDERS breaker open stops no cancel: each family has its own
    breakers[EndpointFamily.ORDERS].record_failure(trio.current_time())
    assert (await manager.cancel("c1")).status is OrderStatus.CANCELED
    breakers[EndpointFamily.CANCELS].record_failure(trio.current_time())
    assert breakers[EndpointFamily.CANCELS].state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await manager.cancel_all(reason="SHUTDOWN")
    # the emergency cancel-all and each of its retries go out with the CANCELS breaker open
    for _ in range(2):
        result = await manager.cancel_all(reason=OrderReason.EMERGENCY_STOP, force=True)
    assert venue.cancel_all_reasons == [OrderReason.EMERGENCY_STOP] * 2
    assert manager.order("c2").status is OrderStatus.CANCELED
    assert result.canceled == ()  # the second found nothing left
    stats = manager.statistics()
    assert (stats.breaker_bypassed, stats.breaker_refusals) == (2, 1)


async def test_with_the_sqlite_store(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from trader.integrations.store.sqlite import open_sqlite_store

    venue = FakeVenue(wall=WALL)
    async with open_sqlite_store(Path(str(tmp_path)) / "trader.db") as store:
        manager = OrderManager(venue, store, wall_ns=lambda: int(WALL * 1e9))
        order = await manager.submit(make_intent("c1"))
        assert [i.client_order_id for i in await store.load_pending_intents()] == []  # resolved: ACKED
        venue.fill(order.order_id, Decimal(10))
        await manager.reconcile("c1")  # applies (and persists) the fill in this task
        assert [p.quantity for p in await store.load_positions()] == [Decimal(10)]
        events = await store.load_order_events(order.order_id)
        assert [e.status for e in events] == [OrderStatus.ACCEPTED, OrderStatus.FILLED]
        assert [t.trade_id for t in await store.load_trades()] == ["fake-trade-1"]


async def test_open_orders_follow_every_state_change(autojump_clock: trio.testing.MockClock) -> None:
    # `open_orders()` is an index kept as states change (the risk gate reads it on every intent): after every event
    # it must say what a scan of all orders says, in creation order, whatever the order went through.
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(), Outcome(fill=Decimal(10)), Outcome(reply="hang", lands=False), Outcome())
    venue.script(NO, Outcome(reply="reject"), Outcome(fill=Decimal(4)), Outcome(), Outcome())
    manager = manager_for(venue)
    checks: list[int] = []

    def agrees(_event: object) -> None:
        scanned = [o for o in manager.orders() if o.is_open]
        assert manager.open_orders() == scanned
        assert manager.statistics().open_orders == len(scanned)
        checks.append(len(scanned))

    manager.add_listener(agrees)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        rests = await manager.submit(make_intent("rests", price="0.30"))  # YES: accepted, rests
        await manager.submit(make_intent("rejected", token_id=NO))  # NO: refused
        await manager.submit(make_intent("fok", order_type=OrderType.FOK))  # YES: filled on entry
        await manager.submit(make_intent("fak", token_id=NO, order_type=OrderType.FAK))  # NO: 4 of 10, rest killed
        await manager.submit(make_intent("lost", price="0.31"))  # YES: no reply, not there: closed as not found
        partial_fill = await manager.submit(make_intent("partial", token_id=NO, price="0.32"))  # NO: rests
        await manager.submit(make_intent("cancelled", token_id=NO, price="0.33"))  # NO: rests
        await manager.submit(make_intent("last", price="0.34"))  # YES: rests
        await manager.wait_until("fok", lambda o: o.status is OrderStatus.FILLED)
        await manager.wait_until("fak", lambda o: o.is_terminal)
        assert [o.client_order_id for o in manager.open_orders()] == ["rests", "partial", "cancelled", "last"]

        trade = venue.fill(partial_fill.order_id, Decimal(3))
        await manager.wait_until("partial", lambda o: o.filled == Decimal(3))
        await manager.cancel("cancelled")
        venue.set_trade_status(trade, TradeStatus.FAILED)  # the fill is reversed: still open, back to resting
        await manager.wait_until("partial", lambda o: o.filled == 0)
        venue.fill(rests.order_id, Decimal(10))
        await manager.wait_until("rests", lambda o: o.status is OrderStatus.FILLED)
        assert [o.client_order_id for o in manager.open_orders()] == ["partial", "last"]

        await manager.cancel_all(reason="SHUTDOWN")
        assert manager.open_orders() == []
        assert manager.statistics().open_orders == 0
        nursery.cancel_scope.cancel()
    assert len(checks) > 20  # the check ran at every state change


# -- several orders in one request -------------------------------------------------------------------------------


class BatchTimelineVenue(TimelineVenue):
    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        self.timeline.append("submit_batch " + " ".join(o.client_order_id for o in orders))
        return await FakeVenue.submit_batch(self, orders)


async def test_a_batch_is_written_in_one_store_call_then_sent_in_one_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline: list[str] = []
    venue, store = BatchTimelineVenue(timeline), TimelineStore(timeline)
    venue.script(NO, Outcome(reply="reject", reason=VenueRejectCode.MIN_SIZE))  # one refusal refuses only its order
    manager = manager_for(venue, store)

    yes, no = await manager.submit_batch([make_intent("c1"), make_intent("c2", token_id=NO)], group_id="g")

    assert timeline[0] == "intent c1 c2"
    assert timeline[1] == "submit_batch c1 c2"
    assert (yes.status, no.status, no.reason) == (OrderStatus.ACCEPTED, OrderStatus.REJECTED, "VENUE_MIN_SIZE")
    assert [store.intents[c].state for c in ("c1", "c2")] == [IntentState.ACKED, IntentState.REJECTED]
    assert {store.intents[c].group_id for c in ("c1", "c2")} == {"g"}
    stats = manager.statistics()
    assert (stats.submitted, stats.accepted, stats.rate_limiter.endpoints["POST /orders"].granted) == (2, 1, 1)


async def test_a_batch_that_times_out_resolves_every_order_by_id(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="hang", lands=False, silent=True))  # the request never answers
    manager = manager_for(venue)

    yes, no = await manager.submit_batch([make_intent("c1"), make_intent("c2", token_id=NO)])

    # c1 landed (its events came), c2 never did: asked for by id, closed as not found; neither was resent.
    assert (yes.status, no.status, no.reason) == (OrderStatus.ACCEPTED, OrderStatus.CANCELED, SUBMIT_NOT_FOUND)
    stats = manager.statistics()
    assert (stats.ambiguous, stats.resolved_found, stats.resolved_not_found, stats.unresolved) == (2, 1, 1, 0)
    assert [o.client_order_id for o in venue.submitted] == ["c1", "c2"]


async def test_a_bad_batch_writes_and_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    manager = manager_for(venue, store)
    await manager.submit(make_intent("c0"))
    with pytest.raises(DuplicateClientOrderId):
        await manager.submit_batch([make_intent("c1"), make_intent("c1", token_id=NO)])
    with pytest.raises(DuplicateClientOrderId):
        await manager.submit_batch([make_intent("c2"), make_intent("c0", token_id=NO)])
    with pytest.raises(ValueError, match="post-only"):
        await manager.submit_batch(
            [make_intent("c4"), dataclasses.replace(make_intent("c5", token_id=NO), post_only=True)]
        )
    with pytest.raises(ValueError, match="1 to 15"):
        await manager.submit_batch([])
    assert [o.client_order_id for o in venue.submitted] == ["c0"]
    assert list(store.intents) == ["c0"]


async def test_a_store_failure_sends_no_order_of_the_batch(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = manager_for(venue, MemoryStore(fail_writes=True))
    orders = await manager.submit_batch([make_intent("c1"), make_intent("c2", token_id=NO)])
    assert [(o.status, o.reason) for o in orders] == [(OrderStatus.REJECTED, STORE_WRITE_FAILED)] * 2
    assert venue.submitted == []


async def test_memory_holds_what_is_recent_not_the_whole_session(autojump_clock: trio.testing.MockClock) -> None:
    """Closed orders whose trades settled leave memory (the store keeps them); one with a trade still unsettled
    stays however old; news about a forgotten order is late, not unknown, and its client id is not taken again (for
    as long as `max_closed_orders` more are forgotten; the store refuses it after that)."""
    wall = [WALL]
    venue = FakeVenue(wall=WALL)
    store = MemoryStore()
    manager = OrderManager(
        venue,
        store,
        portfolio=Portfolio(cash=Decimal(10**6)),
        settings=OrderManagerSettings(forget_closed_after_secs=60.0, max_closed_orders=50),
        wall_ns=lambda: int(wall[0] * 1e9),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        unsettled = await manager.submit(make_intent("c0", order_type=OrderType.FOK))  # its trade stays MATCHED
        await trio.testing.wait_all_tasks_blocked()
        (unsettled_trade,) = [t for t in await venue.trades() if t.order_id == unsettled.order_id]
        venue.default = Outcome(trade_status=TradeStatus.CONFIRMED)
        for n in range(1, 201):
            wall[0] += 1.0
            await manager.submit(make_intent(f"c{n}", order_type=OrderType.FOK))
            await trio.testing.wait_all_tasks_blocked()
        stats = manager.statistics()
        assert stats.orders == 50  # at most 50 closed: the one whose trade has not settled, and the 49 newest
        assert (stats.fills, stats.orders_forgotten) == (201, 151)
        assert manager.get("c0") is not None
        assert manager.get("c1") is None
        assert manager.get("c200") is not None
        assert len(store.orders) == 201  # the store keeps every one

        venue.set_trade_status(unsettled_trade.trade_id, TradeStatus.CONFIRMED)
        await trio.testing.wait_all_tasks_blocked()
        wall[0] += 61.0  # a minute on: every closed order is due
        await manager.submit(make_intent("c201", order_type=OrderType.FOK))
        await trio.testing.wait_all_tasks_blocked()
        manager.forget_closed()  # the periodic housekeeping
        assert manager.get("c0") is None  # settled at last: forgotten too
        assert manager.statistics().orders == 1  # c201, closed just now

        old_trade = next(t for t in await venue.trades() if t.order_id == unsettled.order_id)
        venue.resend(old_trade.trade_id)
        await trio.testing.wait_all_tasks_blocked()
        stats = manager.statistics()
        assert stats.unknown_events == 0
        assert stats.late_events >= 1
        assert manager.positions() == {YES: Decimal(10) * 202}  # every fill counted once
        with pytest.raises(DuplicateClientOrderId):  # a recently forgotten client id is not taken again
            await manager.submit(make_intent("c0"))
        nursery.cancel_scope.cancel()
