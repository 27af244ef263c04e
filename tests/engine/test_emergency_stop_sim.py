"""Emergency stop with many orders in flight, against the simulated venue over real loopback sockets through the
live Polymarket adapter: every order task is cancelled, the cancel-all reaches the venue (it holds none of our
orders open afterwards, including the ones whose requests were still on the wire), the engine closes every order it
sent (also those that never got to the venue), and nothing new is sent until the operator resumes.

Real time, generous deadlines (see `tests/engine/test_arbitrage_sim.py`, whose harness this shares).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from tests.engine.test_arbitrage_sim import CASH, MARKET, NO, YES, Trading, leg, trading
from trader.domain.enums import OrderStatus, OrderType
from trader.domain.events import OrderReason
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.risk import TradingState
from trader.engine.arbitrage import ArbitrageSettings, ArbStatus
from trader.engine.execution import ExecutionSettings
from trader.engine.order_manager import SUBMIT_NOT_FOUND, OrderManagerSettings
from trader.testing import make_arb, make_intent
from trader.venues.polymarket.venue import PolymarketVenueSettings

D = Decimal
RESTING_BASKETS = 6  # GTC YES+NO baskets below the asks: 12 resting orders, 6 arbitrage tasks waiting on them
#: Single GTC buys sent at once, more than the adapter has connections: the first POOL reach the venue, which holds
#: them for DELAY_SECS (they land after the cancel-all); the rest wait for a connection and never get there.
DELAYED_ORDERS = 25
POOL = PolymarketVenueSettings().max_connections
DELAY_SECS = 1.5


def resting_basket(n: int) -> ArbIntent:
    size = str(10 + n)  # distinct sizes: not duplicates for the risk gate
    return make_arb(
        leg(f"arb-{n}-yes", YES, "0.40", size=size, order_type=OrderType.GTC),
        leg(f"arb-{n}-no", NO, "0.48", size=size, order_type=OrderType.GTC),
        arb_id=f"arb-{n}",
    )


def bid(n: int) -> OrderIntent:
    return make_intent(
        f"bid-{n}", strategy="quoter", condition_id=MARKET.condition_id, token_id=YES, price="0.30", size=10 + n
    )


def count_delayed_requests(t: Trading, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the sim has received and is holding back (its delay fault consulted)."""
    held: list[str] = []
    consult = t.sim.faults.http_delay

    def counting(service: str, path: str) -> float:
        delay = consult(service, path)
        if delay:
            held.append(path)
        return delay

    monkeypatch.setattr(t.sim.faults, "http_delay", counting)
    return held


async def test_emergency_stop_with_many_orders_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ExecutionSettings(
        arbitrage=ArbitrageSettings(leg_timeout_secs=60.0),  # resting legs keep waiting
        reconcile_interval_secs=0.5,
    )
    # The deadline outlasts the sim's delay (the stop hits the requests on the wire); the window before "not found"
    # is a verdict on the orders it cut short is that deadline plus the grace.
    orders = OrderManagerSettings(request_timeout_secs=5.0, unknown_grace_secs=1.0)
    async with trading(orders=orders, execution=settings) as t:
        held = count_delayed_requests(t, monkeypatch)
        for n in range(RESTING_BASKETS):
            await t.send.send(resting_basket(n))
        await t.wait_for(lambda: len(t.sim_open_orders()) == 2 * RESTING_BASKETS, "the baskets to rest")
        t.sim.faults.delay_http(DELAY_SECS, count=DELAYED_ORDERS, path_prefix="/order")  # these bids, not cancels
        for n in range(DELAYED_ORDERS):
            await t.send.send(bid(n))
        await t.wait_for(lambda: t.manager.statistics().submitted == 2 * RESTING_BASKETS + DELAYED_ORDERS, "sends")
        await t.wait_for(lambda: len(held) == POOL, "the bids to reach the venue")
        in_flight = RESTING_BASKETS + DELAYED_ORDERS
        assert t.service.statistics().order_tasks_active == in_flight

        await t.service.emergency_stop("operator pressed the button")
        t.sim.faults.clear()  # the delay must not hold back the cancels to come

        await t.wait_for(lambda: t.service.statistics().order_tasks_active == 0, "the order tasks to unwind")
        stats = t.service.statistics()
        assert stats.trading_state is TradingState.HALTED
        assert (stats.order_tasks_active, stats.order_tasks_cancelled) == (0, in_flight)
        assert stats.cancel_all_failures == 0
        assert t.manager.statistics().cancel_alls == 1
        for n in range(RESTING_BASKETS):  # the resting legs were taken off the book by the cancel-all
            for side in ("yes", "no"):
                order = t.manager.order(f"arb-{n}-{side}")
                assert (order.status, order.reason) == (OrderStatus.CANCELED, OrderReason.EMERGENCY_STOP)
                at_venue = t.sim.exchange.order(order.order_id)
                assert at_venue is not None
                assert at_venue.status == "CANCELED"
        assert stats.arbitrage.by_status == {ArbStatus.NOT_FILLED: RESTING_BASKETS}  # interrupted, nothing filled
        assert t.service.residuals() == []
        assert [e.kind for e in t.store.risk_events] == ["EMERGENCY_STOP"]
        assert t.store.risk_events[0].detail["order_tasks_cancelled"] == in_flight

        # The bids held on the wire land after the cancel-all; each is pulled as soon as the venue reports it (or
        # once asked for by id, if that came first: the cancel-all deferred it until then). Those that never got
        # there are closed as not found once the window has passed.
        sent = 2 * RESTING_BASKETS + DELAYED_ORDERS
        landed = 2 * RESTING_BASKETS + POOL
        await t.wait_for(lambda: t.sim_order_count() == landed, "the held bids to land")
        await t.wait_for(lambda: t.sim_open_orders() == [], "no order of ours to rest at the venue")
        await t.wait_for(lambda: t.manager.open_orders() == [], "every order of ours to be closed")
        bids = [t.manager.order(f"bid-{n}") for n in range(DELAYED_ORDERS)]
        assert {o.status for o in bids} == {OrderStatus.CANCELED}
        never_arrived = [o for o in bids if t.sim.exchange.order(o.order_id) is None]
        assert len(never_arrived) == DELAYED_ORDERS - POOL
        assert {o.reason for o in never_arrived} == {SUBMIT_NOT_FOUND}
        assert {o.reason for o in bids if o not in never_arrived} <= {OrderReason.EMERGENCY_STOP, SUBMIT_NOT_FOUND}

        # Halted: intents keep coming and are consumed (denied), nothing reaches the venue.
        assert t.manager.statistics().submitted == t.venue.statistics().submitted == sent
        for n in range(DELAYED_ORDERS, DELAYED_ORDERS + 10):
            await t.send.send(bid(n))
        await t.send.send(resting_basket(RESTING_BASKETS))
        await t.wait_for(lambda: t.service.statistics().intents_denied.get("TRADING_HALTED") == 11, "the denials")
        await trio.sleep(0.2)  # room for a wrongly sent order to reach the venue
        assert t.sim_order_count() == landed
        assert t.manager.statistics().submitted == t.venue.statistics().submitted == sent
        assert t.sim_open_orders() == []
        await t.assert_positions_match()
        assert t.ours() == ({}, CASH)

        # The operator resumes: orders go out again.
        await t.service.resume()
        await t.send.send(bid(100))
        await t.wait_for(lambda: t.sim_order_count() == landed + 1, "the order after resume to reach the venue")
        await t.wait_for(lambda: t.manager.order("bid-100").status is OrderStatus.ACCEPTED, "its acceptance")
        assert t.service.trading_state is TradingState.ACTIVE
        assert [e.kind for e in t.store.risk_events] == ["EMERGENCY_STOP", "RESUME"]
