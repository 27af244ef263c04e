"""Settlement through every 2026 trade status, against the simulated venue over real sockets.

The sim's `settlement_path` fault (armed through `POST /_sim/faults`, as an operator would) makes our next trade
settle along one of the venue's paths (protocol.md §11 item 8); the user channel reports each step, and the order
manager follows it: RETRYING back to MINED then CONFIRMED is settled money, FAILED after MINED reverses the fill in
the order and in the position, a trade first reported MATCHED_NOT_BROADCASTED is an ordinary match.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio
import trio.testing

from tests.engine.live_sim import NO, YES, Engine, engine, wait_for
from trader.domain.enums import OrderStatus, OrderType, TradeStatus
from trader.domain.numbers import Side
from trader.domain.orders import Order

D = Decimal


async def buy_along(e: Engine, http: httpx.AsyncClient, path: str) -> Order:
    """Arm the fault for our next order, buy 10 YES at 0.40 (a FOK against bob's ask), wait for its last status."""
    armed = await http.post(
        e.sim.urls.rest + "/_sim/faults",
        json={"kind": "settlement_path", "path": path, "owner": e.venue.credentials.api_key},
    )
    assert armed.status_code == 200, armed.text
    order = await e.submit(Side.BUY, "0.40", "10", OrderType.FOK)
    await wait_for(lambda: e.manager.order(order.client_order_id).status is OrderStatus.FILLED)
    trade_id = e.manager.order(order.client_order_id).fills[0].trade_id
    await wait_for(lambda: e.store.trades[(trade_id, order.order_id)].status.is_terminal)
    return e.manager.order(order.client_order_id)


@pytest.mark.timeout(60)
async def test_the_engine_follows_every_settlement_path_of_2026(autojump_clock: trio.testing.MockClock) -> None:
    async with engine() as e, httpx.AsyncClient() as http:
        e.bob_buys(NO, "0.60", "100")  # a YES ask at 0.40 for 100 shares
        await wait_for(lambda: all(t.ready for t in e.books.tokens()))

        retried = await buy_along(e, http, "retrying")
        (fill,) = retried.fills
        assert e.store.trades[(fill.trade_id, retried.order_id)].status is TradeStatus.CONFIRMED
        assert e.manager.portfolio.position(YES).unsettled == ()  # RETRYING -> MINED -> CONFIRMED: settled

        failed = await buy_along(e, http, "failed_after_mined")
        (undone,) = failed.reversed_fills  # FAILED after MINED: the fill is undone in the order...
        assert (failed.status, failed.filled) == (OrderStatus.CANCELED, D(0))
        assert e.store.trades[(undone.trade_id, failed.order_id)].status is TradeStatus.FAILED
        assert e.manager.positions() == {YES: D(10)}  # ... and in the position

        broadcast_late = await buy_along(e, http, "not_broadcasted")
        (late_fill,) = broadcast_late.fills
        assert e.store.trades[(late_fill.trade_id, broadcast_late.order_id)].status is TradeStatus.CONFIRMED

        # The books agree with the venue: 20 shares bought and kept, the failed 10 gone, nothing unsettled.
        assert e.manager.positions() == await e.venue.positions() == {YES: D(20)}
        assert e.manager.portfolio.position(YES).unsettled == ()
        stats = e.manager.statistics()
        assert (stats.fills, stats.trades_confirmed, stats.trades_failed) == (3, 2, 1)
        assert (stats.late_events, stats.unknown_trade_statuses) == (0, 0)  # every step was in order
