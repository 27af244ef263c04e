"""The execution service on the MockClock: risk gate first, one orders scope, emergency stop, resume, drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.events import OrderReason, RiskRejected
from trader.domain.intents import ArbIntent, Intent, OrderIntent
from trader.domain.positions import Portfolio
from trader.domain.risk import TradingState
from trader.engine.execution import DRAINING, ExecutionService, ExecutionSettings, book_health_from, tick_from
from trader.engine.order_manager import OrderManager
from trader.engine.risk import BookHealth, RiskGate, RiskSettings
from trader.errors import ConfigError
from trader.testing import Num, make_arb, make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.errors import VenueTimeout

YES = "1001"
NO = "1002"
WALL = 1_700_000_000.0


def intent(n: int, *, size: Num | None = None, **terms: Any) -> OrderIntent:
    """Intent n (client order id "c<n>"): size 10 + n unless given, so that no two are duplicates."""
    return make_intent(f"c{n}", size=10 + n if size is None else size, **terms)


def fresh(token_id: str) -> BookHealth:
    del token_id
    return BookHealth(age_ms=0.0)


@dataclass
class Harness:
    venue: FakeVenue
    store: MemoryStore
    manager: OrderManager
    service: ExecutionService
    send: trio.MemorySendChannel[Intent]
    events: list[object]

    async def send_and_settle(self, *intents: Intent) -> None:
        for item in intents:
            await self.send.send(item)
        await trio.testing.wait_all_tasks_blocked()


@asynccontextmanager
async def running(
    venue: FakeVenue | None = None,
    *,
    settings: ExecutionSettings | None = None,
    risk: RiskSettings | None = None,
    cash: Decimal = Decimal(10_000),
) -> AsyncIterator[Harness]:
    venue = venue or FakeVenue(wall=WALL)
    store = MemoryStore()
    manager = OrderManager(venue, store, portfolio=Portfolio(cash=cash), wall_ns=lambda: int(WALL * 1e9))
    events: list[object] = []
    manager.add_listener(events.append)
    gate = RiskGate(risk or RiskSettings(max_orders_per_market=1000, max_orders_global=1000))
    send, receive = trio.open_memory_channel[Intent](8)
    service = ExecutionService(manager, gate, receive, settings=settings, book_health=fresh)
    async with trio.open_nursery() as nursery:
        started = await nursery.start(service.run)
        assert started is service
        yield Harness(venue, store, manager, service, send, events)
        nursery.cancel_scope.cancel()


async def test_approved_intent_becomes_an_order(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        await h.send_and_settle(intent(1))
        assert [o.client_order_id for o in h.venue.submitted] == ["c1"]
        assert h.manager.order("c1").status is OrderStatus.ACCEPTED
        stats = h.service.statistics()
        assert (stats.intents_received, stats.order_tasks_started, stats.order_tasks_active) == (1, 1, 0)
        assert stats.trading_state is TradingState.ACTIVE


async def test_risk_denial_is_a_counted_value_and_nothing_is_written_or_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(risk=RiskSettings(max_order_notional_usd=Decimal(5))) as h:
        await h.send_and_settle(intent(1, size="100"))  # 40 pUSD > 5
        assert h.venue.submitted == []
        assert h.store.intents == {}
        assert h.service.statistics().intents_denied == {"RISK_MAX_NOTIONAL": 1}
        denials = [e for e in h.events if isinstance(e, RiskRejected)]
        assert [(d.client_order_id, d.reason) for d in denials] == [("c1", "RISK_MAX_NOTIONAL")]


async def test_stale_book_is_denied(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    manager = OrderManager(venue, MemoryStore())
    send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(manager, RiskGate(), receive, book_health=lambda _t: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(intent(1))
        await trio.testing.wait_all_tasks_blocked()
        assert service.statistics().intents_denied == {"RISK_STALE_BOOK": 1}
        nursery.cancel_scope.cancel()


async def test_emergency_stop_cancels_every_order_task_and_sends_nothing_until_resume(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.default = Outcome(reply="hang", lands=True)  # every submit lands but its reply never comes
    async with running(venue) as h:
        for n in range(20):
            await h.send.send(intent(n))
        await venue.wait_submitted(20)
        assert h.service.statistics().order_tasks_active == 20
        assert len(venue.live_order_ids()) == 20

        start = trio.current_time()
        await h.service.emergency_stop("operator pressed the button")
        venue.halted = True  # from here on, any submit is a violation (FakeVenue.check)

        assert trio.current_time() - start < 0.5  # no order task was waited for
        await trio.testing.wait_all_tasks_blocked()
        stats = h.service.statistics()
        assert stats.trading_state is TradingState.HALTED
        assert stats.order_tasks_active == 0
        assert stats.order_tasks_cancelled == 20
        assert stats.emergency_stops == 1
        assert venue.cancel_all_reasons == [OrderReason.EMERGENCY_STOP]
        assert venue.live_order_ids() == []  # the cancel-all reached the venue
        assert {h.manager.order(f"c{n}").status for n in range(20)} == {OrderStatus.CANCELED}
        assert [e.kind for e in h.store.risk_events] == ["EMERGENCY_STOP"]
        assert h.store.risk_events[0].detail["order_tasks_cancelled"] == 20

        # Nothing new goes out while halted; intents are still consumed (denied), so producers never block.
        venue.default = Outcome()
        for n in range(20, 30):
            await h.send.send(intent(n))
        await trio.testing.wait_all_tasks_blocked()
        assert len(venue.submitted) == 20
        assert h.service.statistics().intents_denied == {"TRADING_HALTED": 10}
        venue.check()

        await h.service.resume()
        venue.halted = False
        await h.send_and_settle(intent(40))
        assert [o.client_order_id for o in venue.submitted][-1] == "c40"
        assert h.manager.order("c40").status is OrderStatus.ACCEPTED
        assert h.service.trading_state is TradingState.ACTIVE
        assert [e.kind for e in h.store.risk_events] == ["EMERGENCY_STOP", "RESUME"]


async def test_emergency_stop_cancels_tasks_waiting_in_the_rate_limiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    async with running(venue) as h:
        h.manager.limiter.record_429("POST /order", trio.current_time(), 0.9)  # submits wait (< 1 s bound)
        for n in range(5):
            await h.send.send(intent(n))
        await trio.testing.wait_all_tasks_blocked()
        assert h.service.statistics().order_tasks_active == 5
        await h.service.emergency_stop()
        await trio.sleep(2)
        assert venue.submitted == []
        assert {h.manager.order(f"c{n}").reason for n in range(5)} == {OrderReason.NEVER_SENT}
        assert {h.store.intents[f"c{n}"].state.value for n in range(5)} == {"NOT_SENT"}


async def test_emergency_stop_cancel_all_has_a_deadline(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.cancel_all_delay_secs = 60.0  # the venue never answers the cancel-all in time
    settings = ExecutionSettings(cancel_all_timeout_secs=2.0)
    async with running(venue, settings=settings) as h:
        await h.send_and_settle(intent(1))
        start = trio.current_time()
        await h.service.emergency_stop()
        assert trio.current_time() - start == pytest.approx(2.0)
        assert h.service.statistics().cancel_all_failures == 1
        assert h.store.risk_events[0].detail["cancel_all_ok"] is False


async def test_emergency_stop_from_a_task_that_is_being_cancelled_still_cancels_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    async with running(venue) as h:
        await h.send_and_settle(intent(1))
        with trio.CancelScope() as scope:
            scope.cancel()
            await h.service.emergency_stop()  # shielded inside
        assert venue.cancel_all_reasons == [OrderReason.EMERGENCY_STOP]
        assert venue.live_order_ids() == []


async def test_drain_lets_in_flight_orders_finish_then_cancels_resting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(delay_secs=0.3), Outcome(delay_secs=0.3))
    async with running(venue) as h:
        await h.send.send(intent(1))
        await h.send.send(intent(2))
        await trio.testing.wait_all_tasks_blocked()
        assert h.service.statistics().order_tasks_active == 2

        report = await h.service.drain(1.0)

        assert (report.tasks_finished, report.tasks_cancelled) == (2, 0)
        assert report.cancel_all_ok
        assert sorted(report.canceled_order_ids) == sorted(o.order_id for o in venue.submitted)
        assert report.open_orders_left == ()
        assert venue.cancel_all_reasons == [OrderReason.SHUTDOWN]
        # Intents after the drain are denied, not sent.
        await h.send_and_settle(intent(3))
        assert len(venue.submitted) == 2
        assert h.service.statistics().intents_denied == {DRAINING: 1}


async def test_drain_cancels_what_does_not_finish_and_reports_it(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    # No reply, no event, and asking about it fails: more than a second of work.
    venue.script(YES, Outcome(reply="hang", lands=True, silent=True))
    venue.lookup_error = VenueTimeout("no answer")
    async with running(venue) as h:
        await h.send_and_settle(intent(1))
        report = await h.service.drain(1.0, cancel_resting=False)
        assert (report.tasks_finished, report.tasks_cancelled) == (0, 1)
        assert not report.cancel_all_ok
        assert venue.cancel_all_reasons == []
        assert h.service.statistics().order_tasks_cancelled == 1


async def test_drain_keeps_resting_orders_when_told_and_reports_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        await h.send_and_settle(intent(1))
        report = await h.service.drain(1.0, cancel_resting=False)
        assert report.open_orders_left == ("c1",)
        assert h.venue.live_order_ids() == [h.manager.order("c1").order_id]


async def test_snapshot_and_statistics_for_status(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(NO, Outcome(fill=Decimal(10)))
    async with running(venue) as h:
        await h.send_and_settle(intent(1), intent(2, token_id=NO, size="10", price="0.55", order_type=OrderType.FOK))
        snapshot = h.service.snapshot()
        assert snapshot["trading_state"] == "ACTIVE"
        assert [o["client_order_id"] for o in snapshot["open_orders"]] == ["c1"]  # type: ignore[attr-defined]
        assert snapshot["positions"] == {
            NO: {
                "quantity": "10",
                "avg_cost": "0.55",
                "cost_basis": "5.50",
                "realized_pnl": "0",
                "unrealized_pnl": None,
                "fees_paid": "0.00",
                "unsettled_fills": 1,
            }
        }
        assert snapshot["cash"] == "9994.50"
        stats = h.service.statistics()
        assert stats.orders.fills == 1
        assert {b.state for b in stats.orders.breakers.values()} == {"closed"}


async def test_arbitrage_intents_run_as_one_task_and_risk_checks_every_leg(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(risk=RiskSettings(max_order_notional_usd=Decimal(5), max_orders_per_market=100)) as h:
        legs = (
            intent(1, token_id=YES, size="10", price="0.45", order_type=OrderType.FOK),
            intent(2, token_id=NO, size="10", price="0.52", order_type=OrderType.FOK),  # 5.2 > 5: the basket is denied
        )
        await h.send_and_settle(make_arb(*legs, arb_id="a1", strategy="test"))
        assert h.venue.submitted == []
        assert h.service.statistics().intents_denied == {"RISK_MAX_NOTIONAL": 1}
        assert sorted(e.client_order_id for e in h.events if isinstance(e, RiskRejected)) == ["c1", "c2"]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        ExecutionSettings(cancel_all_timeout_secs=0)


async def test_book_health_and_tick_come_from_the_live_books(autojump_clock: trio.testing.MockClock) -> None:
    from trader.domain.market import Market
    from trader.engine.books import Books

    books = Books()
    market = Market(
        condition_id="0xcond", question="q", slug="q", yes_token_id=YES, no_token_id=NO, tick_size=Decimal("0.001")
    )
    books.add(market)
    health, tick = book_health_from(books), tick_from(books)
    assert health("999") is None
    assert health(YES) == BookHealth(age_ms=None, ready=False, suspect=False)
    token = books.token(YES)
    token.ready, token.confirmed_at = True, trio.current_time() - 0.25
    state = health(YES)
    assert state is not None
    assert state.age_ms == pytest.approx(250.0)
    assert tick(YES) == Decimal("0.001")
    assert tick("999") == Decimal("0.01")


async def test_daily_loss_breach_is_an_emergency_stop(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    store = MemoryStore()
    manager = OrderManager(
        venue,
        store,
        portfolio=Portfolio(cash=Decimal(100)),
        wall_ns=lambda: int(WALL * 1e9),
    )
    marks = {YES: Decimal("0.40")}
    send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(
        manager,
        RiskGate(RiskSettings(max_daily_loss_usd=Decimal(1))),
        receive,
        book_health=fresh,
        marks=lambda: marks,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(intent(1, size="10", order_type=OrderType.FOK))  # 10 YES at 0.40
        await send.send(intent(2, size="10", price="0.10"))  # a resting bid
        await trio.sleep(1.5)  # one PnL mark at 0.40: the day's baseline
        assert service.statistics().trading_state is TradingState.ACTIVE
        marks[YES] = Decimal("0.25")  # 10 x -0.15 = -1.5 pUSD: beyond the 1 pUSD limit
        await trio.sleep(1)
        assert service.trading_state is TradingState.HALTED
        assert venue.cancel_all_reasons == [OrderReason.EMERGENCY_STOP]
        assert venue.live_order_ids() == []
        assert [(e.kind, e.detail["reason"]) for e in store.risk_events] == [("EMERGENCY_STOP", "RISK_DAILY_LOSS")]
        assert service.snapshot()["pnl"] == {
            "realized": "0",
            "unrealized": "-1.50",
            "fees": "0.00",
            "daily": "-1.50",
        }
        nursery.cancel_scope.cancel()


async def test_an_intent_leaves_flight_only_when_denied_or_all_its_orders_are_terminal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    manager = OrderManager(venue, MemoryStore(), portfolio=Portfolio(cash=Decimal(10_000)))
    gate = RiskGate(RiskSettings(max_order_notional_usd=Decimal(50)))
    send, receive = trio.open_memory_channel[Intent](8)
    done: list[str] = []
    service = ExecutionService(
        manager,
        gate,
        receive,
        book_health=fresh,
        on_intent_done=lambda i: done.append(i.arb_id if isinstance(i, ArbIntent) else i.client_order_id),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(intent(1, size="1000"))  # 400 pUSD > 50: denied at once
        await send.send(intent(2))  # accepted and resting
        await trio.testing.wait_all_tasks_blocked()
        assert manager.order("c2").status is OrderStatus.ACCEPTED
        assert done == ["c1"]  # the resting order keeps its intent in flight
        await manager.cancel("c2")
        await trio.testing.wait_all_tasks_blocked()
        assert done == ["c1", "c2"]
        nursery.cancel_scope.cancel()


async def test_abort_cuts_a_drain_short_at_once(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=True, silent=True))
    venue.lookup_error = VenueTimeout("no answer")
    async with running(venue) as h:
        await h.send_and_settle(intent(1))
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.service.drain, 30.0)
            await trio.sleep(0.25)
            h.service.abort()  # the operator's second Ctrl+C
        assert trio.current_time() - start == pytest.approx(0.25)
        assert venue.cancel_all_reasons == []  # aborted before the cancel-all could go out


async def test_denials_while_halted_are_logged_once_then_counted_and_again_after_the_next_halt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    async with running(venue) as h:
        await h.service.emergency_stop("drill", by="the operator")
        assert h.service.last_stop is not None
        assert (h.service.last_stop.reason, h.service.last_stop.by) == ("drill", "the operator")
        with capture_logs() as logs:
            for n in range(5):
                await h.send.send(intent(n))
            await trio.testing.wait_all_tasks_blocked()
            await h.service.resume()
            await h.send_and_settle(intent(10))  # trading again: the next halt is said again
            await h.service.emergency_stop("second drill")
            await h.send.send(intent(11))
            await trio.testing.wait_all_tasks_blocked()
        denied = [e for e in logs if e["event"] == "intent_denied"]
        assert [e["log_level"] for e in denied] == ["info", "debug", "debug", "debug", "debug", "info"]
        assert "counted" in denied[0]["hint"]
        assert h.service.statistics().intents_denied == {"TRADING_HALTED": 6}
