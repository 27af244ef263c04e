"""Issue 15 item 1's done-when, over real sockets against the simulated venue: with the replies of the order endpoint
delayed past the request timeout (the sim's `delay_http` fault on `/order`, armed through `POST /_sim/faults`), every
verdict the engine gives about an order matches the sim's own records of it, and the fills that come after the
timeout are applied.

The sim holds each `POST /order` (and each cancel on `/order`) 1 s before it takes it; the engine's deadline is 0.5 s.
The first lookups by id therefore find nothing, which used to be the final verdict ("not found", intent rejected)
for orders the venue then took and filled. Four kinds of order go out in turn: FOK buys that fill against bob's ask,
GTC buys that rest (each cancelled while its outcome is still unknown: the cancel must wait for the venue to confirm
the order), FOK buys larger than bob's ask (killed by the venue) and FOK buys larger than the wallet (refused by the
venue, so never in its records). The orders breaker is made hard to open here: every order is to time out, and the
point is the verdicts (the breaker's own test is `test_breaker_sim.py`).
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio
import trio.testing

from tests.engine.live_sim import NO, YES, Engine, engine, wait_for
from trader.domain.enums import OrderStatus, OrderType
from trader.domain.events import OrderFilled, OrderOutcomeUnknown
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.engine.breaker import Breakers, BreakerSettings
from trader.engine.order_manager import SUBMIT_NOT_FOUND
from trader.venues.sim.markets import UNITS_PER_ONE

D = Decimal
PER_KIND = 6
KINDS = 4
PATIENT = BreakerSettings(consecutive_failures=1000, orders_consecutive_failures=1000, min_calls=1000)


def contradictions(e: Engine, orders: list[Order]) -> list[str]:
    """Each way the engine's final word on an order differs from the sim's record of it."""
    found: list[str] = []
    for order in orders:
        record = e.sim.exchange.order(order.order_id)
        venue_matched = D(0) if record is None else D(record.matched) / UNITS_PER_ONE
        said_absent = order.status is OrderStatus.REJECTED or order.reason == SUBMIT_NOT_FOUND
        if said_absent and record is not None and (record.matched or record.status == "LIVE"):
            found.append(f"{order.client_order_id}: called {order.reason}, the venue has it ({record.status})")
        if not said_absent and record is None:
            found.append(f"{order.client_order_id}: {order.status}, the venue never had it")
        if order.filled != venue_matched:
            found.append(f"{order.client_order_id}: filled {order.filled}, the venue matched {venue_matched}")
        if order.is_open != (record is not None and record.status == "LIVE"):
            found.append(f"{order.client_order_id}: {order.status}, the venue says {record and record.status}")
    return found


@pytest.mark.timeout(120)
async def test_replies_delayed_past_the_deadline_get_the_venues_verdict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine(breakers=Breakers(PATIENT)) as e, httpx.AsyncClient() as http:
        e.bob_buys(NO, "0.60", "1000")  # a YES ask at 0.40 for 1000 shares
        await wait_for(lambda: all(t.ready for t in e.books.tokens()))
        went_unknown: set[str] = set()
        fills_after_unknown: list[str] = []

        def watch(event: object) -> None:
            if isinstance(event, OrderOutcomeUnknown):
                went_unknown.add(event.client_order_id)
            elif isinstance(event, OrderFilled) and event.client_order_id in went_unknown:
                fills_after_unknown.append(event.client_order_id)

        e.manager.add_listener(watch)
        armed = await http.post(
            e.sim.urls.rest + "/_sim/faults", json={"kind": "delay_http", "secs": "1.0", "path_prefix": "/order"}
        )
        assert armed.status_code == 200, armed.text

        orders: list[Order] = []

        async def send(side: Side, price: str, size: str, order_type: OrderType, cancel: bool) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: e.submit(side, price, size, order_type))
                await trio.sleep(0.6)  # past the deadline: the outcome is unknown
                (order,) = [
                    o for o in e.manager.orders() if o.client_order_id not in {x.client_order_id for x in orders}
                ]
                orders.append(order)
                assert e.manager.order(order.client_order_id).status is OrderStatus.UNKNOWN
                if cancel:
                    await e.manager.cancel(order.client_order_id)  # deferred: the venue has not confirmed it

        for _ in range(PER_KIND):
            await send(Side.BUY, "0.40", "10", OrderType.FOK, cancel=False)  # fills
            await send(Side.BUY, "0.30", "10", OrderType.GTC, cancel=True)  # rests, then cancelled
            await send(Side.BUY, "0.40", "5000", OrderType.FOK, cancel=False)  # more than bob offers: killed
            await send(Side.BUY, "0.40", "30000", OrderType.FOK, cancel=False)  # 12000 pUSD: refused for balance

        await (await http.delete(e.sim.urls.rest + "/_sim/faults")).aclose()
        await wait_for(lambda: all(e.manager.order(o.client_order_id).is_terminal for o in orders))
        final = [e.manager.order(o.client_order_id) for o in orders]

    assert went_unknown == {o.client_order_id for o in final}  # every one of them timed out
    assert contradictions(e, final) == []  # 0 contradicted verdicts
    by_kind = [final[k::KINDS] for k in range(KINDS)]
    assert {(o.status, o.filled) for o in by_kind[0]} == {(OrderStatus.FILLED, D(10))}
    assert {(o.status, o.reason) for o in by_kind[1]} == {(OrderStatus.CANCELED, "CANCELED_BY_USER")}
    assert {(o.status, o.reason) for o in by_kind[2]} == {(OrderStatus.CANCELED, "FOK_NOT_FILLED")}
    assert {(o.status, o.reason) for o in by_kind[3]} == {(OrderStatus.CANCELED, SUBMIT_NOT_FOUND)}
    assert sorted(fills_after_unknown) == sorted(o.client_order_id for o in by_kind[0])  # late fills applied
    assert e.manager.positions() == {YES: D(10) * PER_KIND}
    stats = e.manager.statistics()
    found, not_found = (KINDS - 1) * PER_KIND, PER_KIND
    assert (stats.ambiguous, stats.resolved_found, stats.resolved_not_found) == (KINDS * PER_KIND, found, not_found)
    assert (stats.cancels_deferred, stats.late_fills, stats.unresolved) == (PER_KIND, 0, 0)
    assert e.sim.exchange.open_orders() == [o for o in e.sim.exchange.open_orders() if o.owner == "bob"]
