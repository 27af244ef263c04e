"""Atomic arbitrage with faults injected through the FakeVenue: every basket ends hedged, or with its residual
exposure reported, and our positions equal the venue's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.events import OrderFilled
from trader.domain.intents import ArbIntent, Intent, OrderIntent
from trader.domain.numbers import Side
from trader.domain.positions import Portfolio
from trader.engine.arbitrage import (
    ARB_BELOW_MIN_SIZE,
    ARB_INTERRUPTED,
    ARB_LEG_SHORT,
    ARB_LEG_UNKNOWN,
    ARB_UNWIND_REFUSED,
    ARB_UNWIND_SHORT,
    ArbitrageSettings,
    ArbResidual,
    ArbStatus,
    run_arbitrage,
    summarize,
)
from trader.engine.execution import ARB_LATE_FILL, ExecutionService
from trader.engine.order_manager import SUBMIT_NOT_FOUND, OrderManager, pump_venue_events
from trader.engine.risk import BookHealth, RiskGate, RiskSettings
from trader.errors import ConfigError
from trader.strategies.base import intent_key
from trader.testing import make_arb, make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.errors import VenueRejectCode, VenueTimeout

YES = "1001"
NO = "1002"
WALL = 1_700_000_000.0
NO_BIDS = Outcome(reply="reject", reason=VenueRejectCode.FOK_NOT_FILLED)  # a FOK that finds nothing to match
CASH = Decimal(1000)


def leg(cid: str, token: str, price: str, *, size: str = "10", order_type: OrderType = OrderType.FOK) -> OrderIntent:
    return make_intent(cid, strategy="sum_to_100", token_id=token, price=price, size=size, order_type=order_type)


def basket(order_type: OrderType = OrderType.FOK, *, size: str = "10") -> ArbIntent:
    return make_arb(
        leg("yes", YES, "0.45", size=size, order_type=order_type),
        leg("no", NO, "0.52", size=size, order_type=order_type),
    )


@asynccontextmanager
async def manager_with_pump(venue: FakeVenue) -> AsyncIterator[OrderManager]:
    manager = OrderManager(
        venue,
        MemoryStore(),
        portfolio=Portfolio(cash=CASH),
        wall_ns=lambda: int(WALL * 1e9),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        yield manager
        nursery.cancel_scope.cancel()


async def assert_positions_match(manager: OrderManager, venue: FakeVenue) -> None:
    await trio.testing.wait_all_tasks_blocked()
    assert manager.positions() == await venue.positions()
    assert manager.portfolio.cash == venue.cash - (Decimal(1_000_000) - CASH)
    venue.check()


async def test_both_legs_fill_complete(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        assert outcome.status is ArbStatus.COMPLETE
        assert outcome.matched == Decimal(10)
        assert outcome.residual == {}
        assert manager.positions() == {YES: Decimal(10), NO: Decimal(10)}
        assert manager.portfolio.cash == CASH - Decimal("9.70")
        await assert_positions_match(manager, venue)


async def test_one_leg_rejected_the_filled_leg_is_sold_back(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())

        assert outcome.status is ArbStatus.NOT_FILLED
        assert outcome.matched == 0
        assert outcome.unwound == {YES: Decimal(10)}
        assert outcome.residual == {}
        unwind = manager.order("yes-unwind-1")
        assert (unwind.side, unwind.order_type, unwind.size) == (Side.SELL, OrderType.FAK, Decimal(10))
        assert unwind.price == Decimal("0.43")  # the fill price less the 0.02 slippage cap
        assert manager.positions() == {}
        assert manager.portfolio.cash == CASH - Decimal("0.20")  # bought at 0.45, sold back at 0.43
        assert [r.status for r in outcome.legs] == [OrderStatus.FILLED, OrderStatus.REJECTED]
        await assert_positions_match(manager, venue)


async def test_one_leg_partially_filled_the_excess_is_sold_back(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(fill=Decimal(6)))  # FAK: 6 of 10, the rest cancelled
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(OrderType.FAK))

        assert outcome.status is ArbStatus.PARTIAL
        assert outcome.matched == Decimal(6)
        assert outcome.unwound == {YES: Decimal(4)}
        assert manager.positions() == {YES: Decimal(6), NO: Decimal(6)}
        assert manager.order("yes-unwind-1").size == Decimal(4)
        await assert_positions_match(manager, venue)


@pytest.mark.parametrize("lands", [True, False])
async def test_one_leg_timing_out_is_resolved_by_id_then_hedged(
    autojump_clock: trio.testing.MockClock, lands: bool
) -> None:
    venue = FakeVenue(wall=WALL)
    # The reply never comes and the order's events are lost: only asking by id can tell whether it matched.
    venue.script(NO, Outcome(reply="hang", lands=lands, silent=True))
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())

        # asked by id (until the venue shows it, or its absence once the window has passed), not resent
        assert venue.lookups == [manager.order("no").order_id] * (1 if lands else 5)
        assert [o.client_order_id for o in venue.submitted].count("no") == 1
        if lands:
            assert outcome.status is ArbStatus.COMPLETE
            assert manager.positions() == {YES: Decimal(10), NO: Decimal(10)}
        else:
            assert outcome.status is ArbStatus.NOT_FILLED
            assert outcome.unwound == {YES: Decimal(10)}
            assert manager.positions() == {}
        assert outcome.residual == {}
        await assert_positions_match(manager, venue)


async def test_resting_legs_that_do_not_fill_are_cancelled_and_the_other_unwound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(fill=Decimal(10)))  # YES matches at once; NO rests and never fills
    settings = ArbitrageSettings(leg_timeout_secs=1.0)
    async with manager_with_pump(venue) as manager:
        start = trio.current_time()
        outcome = await run_arbitrage(manager, basket(OrderType.GTC), settings=settings)
        assert trio.current_time() - start == pytest.approx(1.0)  # the leg timeout, then cancel and unwind
        assert manager.order("no").status is OrderStatus.CANCELED
        assert manager.order("no").order_id in venue.canceled
        assert outcome.status is ArbStatus.NOT_FILLED
        assert outcome.unwound == {YES: Decimal(10)}
        assert venue.live_order_ids() == []
        await assert_positions_match(manager, venue)


async def test_a_short_leg_cancels_the_resting_other_at_once(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="reject", reason=VenueRejectCode.NOT_ENOUGH_BALANCE))
    async with manager_with_pump(venue) as manager:
        start = trio.current_time()
        outcome = await run_arbitrage(manager, basket(OrderType.GTC))  # YES rests, nothing filled
        assert trio.current_time() - start < 0.1  # did not wait for the leg timeout
        assert manager.order("yes").status is OrderStatus.CANCELED
        assert outcome.status is ArbStatus.NOT_FILLED
        assert outcome.unwound == {}
        assert manager.positions() == {}
        await assert_positions_match(manager, venue)


async def test_unwind_that_keeps_finding_no_buyers_leaves_residual_exposure_after_its_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), Outcome(fill=Decimal(3)), Outcome(fill=Decimal(2)), NO_BIDS)  # 3 of 10, 2 of 7, 0
    async with manager_with_pump(venue) as manager:
        started = trio.current_time()
        outcome = await run_arbitrage(manager, basket())
        assert trio.current_time() - started == pytest.approx(2.0 + 4.0)  # retried after 2 s, then 4 s
        assert outcome.status is ArbStatus.RESIDUAL
        assert outcome.residual == {YES: Decimal(5)}
        assert outcome.unwound == {YES: Decimal(5)}
        sizes = [manager.order(f"yes-unwind-{n}").size for n in (1, 2, 3)]
        assert sizes == [Decimal(10), Decimal(7), Decimal(5)]  # each offers what is held then, never more
        assert outcome.reasons == (
            f"{ARB_LEG_SHORT}:no",
            f"{ARB_UNWIND_SHORT}:{YES}",
            f"{ARB_UNWIND_SHORT}:{YES}",
            f"{ARB_UNWIND_REFUSED}:VENUE_FOK_NOT_FILLED",
        )
        assert manager.positions() == {YES: Decimal(5)}
        await assert_positions_match(manager, venue)


async def test_unwind_sold_short_is_tried_again_and_sells_the_rest(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), Outcome(fill=Decimal(3)))  # the first FAK unwind sells 3 of 10; the next, the rest
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        assert outcome.status is ArbStatus.NOT_FILLED
        assert (outcome.residual, outcome.unwound) == ({}, {YES: Decimal(10)})
        assert manager.order("yes-unwind-2").size == Decimal(7)
        assert manager.positions() == {}
        await assert_positions_match(manager, venue)


async def test_unwind_refused_by_the_risk_check_leaves_residual(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    asked: list[str] = []

    def refuse(intent: OrderIntent) -> str:
        asked.append(intent.client_order_id)
        return "TRADING_HALTED"

    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(), check=refuse)
        assert outcome.residual == {YES: Decimal(10)}
        assert outcome.reasons == (f"{ARB_LEG_SHORT}:no", f"{ARB_UNWIND_REFUSED}:TRADING_HALTED")
        assert asked == ["yes-unwind-1"]  # a halt does not clear by itself: not asked again
        assert "yes-unwind-1" not in {o.client_order_id for o in venue.submitted}
        await assert_positions_match(manager, venue)


@pytest.mark.parametrize("reason", ["RISK_STALE_BOOK", "RISK_SIZE_BOUNDS"])
async def test_only_a_refusal_that_can_clear_is_asked_again(
    reason: str, autojump_clock: trio.testing.MockClock
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    asked: list[str] = []

    def refuse(intent: OrderIntent) -> str:
        asked.append(intent.client_order_id)
        return reason

    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(), check=refuse)
        assert outcome.residual == {YES: Decimal(10)}
        # A stale book is confirmed again; an order too small for the gate stays too small.
        assert len(asked) == (3 if reason == "RISK_STALE_BOOK" else 1)


async def test_unwind_refused_once_is_sent_when_the_check_lets_it_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # An open breaker, a stale book, the rate limit: refusals that pass. The next attempt sells.
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    refusals = ["CIRCUIT_OPEN"]
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(), check=lambda _intent: refusals.pop() if refusals else None)
        assert outcome.status is ArbStatus.NOT_FILLED
        assert (outcome.residual, outcome.unwound) == ({}, {YES: Decimal(10)})
        assert outcome.reasons == (f"{ARB_LEG_SHORT}:no", f"{ARB_UNWIND_REFUSED}:CIRCUIT_OPEN")  # the way there
        assert manager.positions() == {}
        await assert_positions_match(manager, venue)


async def test_an_unwind_whose_outcome_is_unknown_is_not_tried_again(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), Outcome(reply="hang", lands=False))  # the unwind: no answer, and none by id
    venue.lookup_error = VenueTimeout("no answer")
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        # What the unwind sold is not known: another one could sell shares that are gone. Residual, and why.
        assert manager.order("yes-unwind-1").status is OrderStatus.UNKNOWN
        assert manager.get("yes-unwind-2") is None
        assert outcome.residual == {YES: Decimal(10)}
        assert outcome.reasons[-1] == f"{ARB_LEG_UNKNOWN}:yes-unwind-1"


async def test_one_attempt_only_when_set_so(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), Outcome(fill=Decimal(3)))
    settings = ArbitrageSettings(unwind_attempts=1)
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(), settings=settings)
        assert outcome.residual == {YES: Decimal(7)}
        assert manager.get("yes-unwind-2") is None
        await assert_positions_match(manager, venue)


async def test_excess_below_the_minimum_is_residual(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(fill=Decimal(8)))
    settings = ArbitrageSettings(min_unwind_shares=Decimal(5))
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket(OrderType.FAK), settings=settings)
        assert outcome.residual == {YES: Decimal(2)}
        assert f"{ARB_BELOW_MIN_SIZE}:{YES}" in outcome.reasons
        await assert_positions_match(manager, venue)


async def test_leg_whose_fills_never_arrive_is_reconciled_by_id(autojump_clock: trio.testing.MockClock) -> None:
    # The venue answers MATCHED but its trade events are lost: the leg asks by id after its timeout.
    venue = FakeVenue(wall=WALL)
    manager = OrderManager(
        venue,
        MemoryStore(),
        portfolio=Portfolio(cash=CASH),
        wall_ns=lambda: int(WALL * 1e9),
    )
    outcome = await run_arbitrage(manager, basket(), settings=ArbitrageSettings(leg_timeout_secs=0.5))
    assert outcome.status is ArbStatus.COMPLETE
    assert sorted(venue.lookups) == sorted(manager.order(c).order_id for c in ("yes", "no"))
    assert manager.positions() == await venue.positions()


async def test_fees_withheld_in_shares_leave_dust_not_residual(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(fee_shares=Decimal("0.005")))
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        assert outcome.status is ArbStatus.COMPLETE
        assert outcome.matched == Decimal("9.995")
        assert outcome.dust == {NO: Decimal("0.005")}
        assert outcome.residual == {}
        assert outcome.unwound == {}
        assert summarize(manager, basket()) == outcome
        await assert_positions_match(manager, venue)


async def test_a_filled_basket_holding_unequal_shares_after_fees_sells_the_excess_back_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(fee_shares=Decimal("0.5")))  # both legs fill 10; YES holds 9.5, NO 10
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        unwind = manager.order("no-unwind-1")
        assert (unwind.side, unwind.size, unwind.filled) == (Side.SELL, Decimal("0.5"), Decimal("0.5"))
        assert outcome.status is ArbStatus.COMPLETE
        assert (outcome.matched, outcome.unwound, outcome.residual) == (Decimal("9.5"), {NO: Decimal("0.5")}, {})
        assert manager.positions() == {YES: Decimal("9.5"), NO: Decimal("9.5")}
        await assert_positions_match(manager, venue)


def execution_service(
    venue: FakeVenue, *, on_intent_done: Callable[[Intent], None] | None = None
) -> tuple[ExecutionService, trio.MemorySendChannel[Intent], MemoryStore, list[object]]:
    """An execution service over `venue`: its intent channel, its store and the domain events it publishes."""
    store = MemoryStore()
    manager = OrderManager(venue, store, portfolio=Portfolio(cash=CASH), wall_ns=lambda: int(WALL * 1e9))
    events: list[object] = []
    manager.add_listener(events.append)
    send, receive = trio.open_memory_channel[Intent](4)
    service = ExecutionService(
        manager,
        RiskGate(RiskSettings(max_orders_per_market=100, max_orders_global=100)),
        receive,
        book_health=lambda _t: BookHealth(age_ms=0.0),
        on_intent_done=on_intent_done,
    )
    return service, send, store, events


# -- through the execution service: residual exposure is reported ---------------------------------------------------


async def test_service_reports_residual_exposure(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), NO_BIDS, NO_BIDS, NO_BIDS)  # every unwind attempt fails
    service, send, store, events = execution_service(venue)
    manager = service.manager
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(basket())
        await trio.sleep(10)  # past the unwind's last attempt (retried after 2 s, then 4 s)

        residuals = [e for e in events if isinstance(e, ArbResidual)]
        assert [(r.arb_id, dict(r.residual)) for r in residuals] == [("arb-1", {YES: Decimal(10)})]
        # Each attempt passed the risk gate (2 s apart: past its duplicate window) and reached the venue.
        unwinds = [o.client_order_id for o in venue.submitted if "unwind" in o.client_order_id]
        assert unwinds == ["yes-unwind-1", "yes-unwind-2", "yes-unwind-3"]
        stats = service.statistics().arbitrage
        assert (stats.started, stats.residual_events) == (1, 1)
        assert stats.by_status == {"RESIDUAL": 1}
        assert stats.residual_shares == {YES: Decimal(10)}
        assert [e.kind for e in store.risk_events] == ["ARB_RESIDUAL"]
        assert store.risk_events[0].detail["residual"] == {YES: "10"}
        assert service.snapshot()["residual_exposure"] == {YES: "10"}
        assert manager.positions() == await venue.positions()
        nursery.cancel_scope.cancel()


async def test_a_drain_lets_unwind_retries_run_within_its_time_then_reports_what_is_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, NO_BIDS)
    venue.script(YES, Outcome(), NO_BIDS, NO_BIDS, NO_BIDS)
    service, send, _store, events = execution_service(venue)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(basket())
        await trio.sleep(0.5)  # the first sell-back was refused; the next is due 2 s after it
        assert [o.client_order_id for o in venue.submitted if "unwind" in o.client_order_id] == ["yes-unwind-1"]
        started = trio.current_time()
        report = await service.drain(3.0)  # Ctrl+C: the retry at +2 s fits in the drain, the one at +6 s does not
        await trio.testing.wait_all_tasks_blocked()

        assert trio.current_time() - started == pytest.approx(3.0)
        assert (report.tasks_finished, report.tasks_cancelled) == (0, 1)
        unwinds = [o.client_order_id for o in venue.submitted if "unwind" in o.client_order_id]
        assert unwinds == ["yes-unwind-1", "yes-unwind-2"]
        residuals = [e for e in events if isinstance(e, ArbResidual)]
        assert [dict(r.residual) for r in residuals] == [{YES: Decimal(10)}]
        assert residuals[0].reasons[-1] == ARB_INTERRUPTED
        assert service.manager.positions() == await venue.positions() == {YES: Decimal(10)}
        nursery.cancel_scope.cancel()


async def test_emergency_stop_during_an_arbitrage_reports_what_it_holds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(fill=Decimal(10)))  # YES fills; NO rests (GTC) waiting for a fill
    service, send, store, events = execution_service(venue)
    manager = service.manager
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(basket(OrderType.GTC))
        await venue.wait_submitted(2)
        await trio.testing.wait_all_tasks_blocked()
        await service.emergency_stop()
        await trio.testing.wait_all_tasks_blocked()

        residuals = [e for e in events if isinstance(e, ArbResidual)]
        assert len(residuals) == 1
        assert dict(residuals[0].residual) == {YES: Decimal(10)}
        assert ARB_INTERRUPTED in residuals[0].reasons
        assert venue.live_order_ids() == []  # the resting NO leg went with the cancel-all
        assert manager.order("no").status is OrderStatus.CANCELED
        assert manager.positions() == await venue.positions() == {YES: Decimal(10)}
        # the stop is persisted once; the interrupted basket's residual is reported, not written a second time
        assert [e.kind for e in store.risk_events] == ["EMERGENCY_STOP"]
        nursery.cancel_scope.cancel()


async def test_failed_trade_after_an_arbitrage_is_reversed(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    async with manager_with_pump(venue) as manager:
        await run_arbitrage(manager, basket())
        no_trade = next(t.trade_id for t in await venue.trades() if t.order_id == manager.order("no").order_id)
        venue.set_trade_status(no_trade, TradeStatus.FAILED)
        await trio.testing.wait_all_tasks_blocked()
        assert manager.positions() == {YES: Decimal(10)}
        assert manager.order("no").filled == 0
        await assert_positions_match(manager, venue)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        ArbitrageSettings(leg_timeout_secs=0)
    with pytest.raises(ConfigError):
        ArbitrageSettings(dust_shares=Decimal(-1))
    for attempts in (0, 11, 2.5):
        with pytest.raises(ConfigError, match="unwind_attempts"):
            ArbitrageSettings(unwind_attempts=attempts)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unwind_retry_secs"):
        ArbitrageSettings(unwind_retry_secs=float("inf"))


async def test_a_timed_out_leg_whose_events_arrived_needs_no_lookup(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="hang", lands=True, fill=Decimal(10)))  # no reply, but its trade event comes
    venue.lookup_error = VenueTimeout("no answer")  # and asking would not work
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        assert outcome.status is ArbStatus.COMPLETE
        assert venue.lookups == []
        assert manager.statistics().unresolved == 0
        await assert_positions_match(manager, venue)


async def test_a_leg_whose_outcome_stays_unknown_is_not_sold_against(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="hang", lands=False))  # never landed, and the venue cannot be asked
    venue.lookup_error = VenueTimeout("no answer")
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, basket())
        # NO may still be at the venue and fill: selling YES back now would unhedge it then. Nothing is sold; the
        # exposure as it stands is residual, and the outcome says why.
        assert manager.order("no").status is OrderStatus.UNKNOWN
        assert manager.statistics().unresolved == 1
        assert manager.statistics().breakers["reads"].state == "open"  # the lookups' failures, theirs alone
        assert manager.statistics().breakers["orders"].state == "closed"
        assert outcome.status is ArbStatus.RESIDUAL
        assert outcome.unwound == {}
        assert outcome.residual == {YES: Decimal(10)}
        assert f"{ARB_LEG_UNKNOWN}:no" in outcome.reasons
        assert [leg.status for leg in outcome.legs] == [OrderStatus.FILLED, OrderStatus.UNKNOWN]
        assert manager.deferred_cancels() == {"no": "ARB_LEG_CANCELED"}  # sent if the venue ever shows it open
        await assert_positions_match(manager, venue)


async def test_a_leg_found_late_completes_the_basket_instead_of_an_unwind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="hang", lands=False))  # the request is held up past our deadline
    async with manager_with_pump(venue) as manager, trio.open_nursery() as nursery:
        nursery.start_soon(run_arbitrage, manager, basket())
        await trio.sleep(1.0)  # the first lookups found nothing: before the fix, NO was given up and YES sold back
        assert manager.order("no").status is OrderStatus.UNKNOWN
        venue.land(manager.order("no").order_id)  # the venue takes it now: a FOK, filled
    assert manager.positions() == {YES: Decimal(10), NO: Decimal(10)}
    assert [o.client_order_id for o in venue.submitted] == ["yes", "no"]  # nothing sold back, nothing resent
    await assert_positions_match(manager, venue)


async def test_an_unknown_leg_leaves_only_the_certain_excess_sold(autojump_clock: trio.testing.MockClock) -> None:
    third = "1003"
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(fill=Decimal(6)))  # a FAK: 6 of 10
    venue.script(third, Outcome(reply="hang", lands=False))
    venue.lookup_error = VenueTimeout("no answer")
    arb = make_arb(
        leg("a", YES, "0.30", order_type=OrderType.FAK),
        leg("b", NO, "0.33", order_type=OrderType.FAK),
        leg("c", third, "0.32", order_type=OrderType.FAK),
        arb_id="basket",
    )
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, arb)
    # whatever c holds, at most 6 sets are complete: 4 of a are excess for sure; the rest waits on c's verdict
    assert outcome.unwound == {YES: Decimal(4)}
    assert manager.positions() == {YES: Decimal(6), NO: Decimal(6)}
    assert f"{ARB_LEG_UNKNOWN}:c" in outcome.reasons


async def test_neg_risk_basket_of_three_legs_unwinds_the_two_that_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    third = "1003"
    venue = FakeVenue(wall=WALL)
    venue.script(third, NO_BIDS)
    arb = make_arb(leg("a", YES, "0.30"), leg("b", NO, "0.33"), leg("c", third, "0.32"), arb_id="basket")
    async with manager_with_pump(venue) as manager:
        outcome = await run_arbitrage(manager, arb)
        assert outcome.status is ArbStatus.NOT_FILLED
        assert outcome.unwound == {YES: Decimal(10), NO: Decimal(10)}
        assert manager.order("a-unwind-1").price == Decimal("0.28")
        assert manager.order("b-unwind-1").price == Decimal("0.31")
        assert manager.positions() == {}
        await assert_positions_match(manager, venue)


async def test_a_late_fill_is_reported_while_the_leg_is_watched_and_the_watch_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The NO leg never answered and was not found when asked (SUBMIT_NOT_FOUND): it may still land. A fill of it
    # after the basket ended is residual; once closed for `late_fill_watch_secs`, it is no longer watched.
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(reply="hang", lands=False, silent=True))
    done: dict[str, trio.Event] = {"arb-1": trio.Event(), "arb-2": trio.Event()}
    service, send, _store, events = execution_service(venue, on_intent_done=lambda i: done[intent_key(i)].set())
    manager = service.manager
    assert service.settings.late_fill_watch_secs == 600.0

    def late_fill(cid: str, trade: str) -> OrderFilled:
        return OrderFilled(client_order_id=cid, trade_id=trade, token_id=NO, side=Side.BUY, price=Decimal("0.52"),
                           size=Decimal(10), liquidity=Liquidity.TAKER, ts=WALL)  # fmt: skip

    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(basket())
        await done["arb-1"].wait()  # the NO submit timed out, was asked for, and the basket ended
        ended_at = trio.current_time()
        assert manager.order("no").reason == SUBMIT_NOT_FOUND
        assert "no" in service._ended_legs
        await trio.sleep_until(ended_at + 599)
        service._on_manager_event(late_fill("no", "t-late"))  # what the manager tells its listeners
        residuals = [e for e in events if isinstance(e, ArbResidual)]
        assert [(r.arb_id, dict(r.residual), r.reasons) for r in residuals] == [
            ("arb-1", {NO: Decimal(10)}, (f"{ARB_LATE_FILL}:no",))
        ]
        await trio.sleep(2)  # the window has passed: the next basket to end expires the watch
        venue.script(NO, Outcome(reply="hang", lands=False, silent=True))
        await send.send(make_arb(leg("yes-2", YES, "0.45"), leg("no-2", NO, "0.52"), arb_id="arb-2"))
        await done["arb-2"].wait()
        assert ("no" in service._ended_legs, "no-2" in service._ended_legs) == (False, True)
        assert len(service._ended_legs) == 1
        nursery.cancel_scope.cancel()
