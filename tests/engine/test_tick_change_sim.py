"""Trading through a tick-size change near the edge, against the simulated venue over real sockets.

The sim's exchange makes a market's tick 10x finer while a best price is beyond 0.96 (or below 0.04) and coarse again
when it comes back (`ExchangeConfig.tick_fine_edge`), and says so on the market channel (`tick_size_change`). The
engine's market data applies it to the books, and the live venue signs on the books' tick (`Books.tick_of`, as the
composition root wires it): an order priced on the grid in force is signed exactly as priced, and one priced off it
is refused before anything is signed, written or sent (`PRICE_OFF_TICK`), never floored and never an exception.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.engine.live_sim import NO, YES, engine, wait_for
from trader.domain.enums import OrderStatus, OrderType
from trader.domain.numbers import Side
from trader.engine.order_manager import PrepareFailed
from trader.integrations.store.base import IntentState
from trader.venues.base import PRICE_OFF_TICK

D = Decimal


@pytest.mark.timeout(60)
async def test_orders_priced_on_the_grid_in_force_trade_through_a_tick_change_near_the_edge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine(tick_fine_edge=D("0.04")) as e:
        e.bob_buys(YES, "0.90", "100")  # YES bid 0.90
        near_edge = e.bob_buys(NO, "0.05", "100")  # YES ask 0.95: inside [0.04, 0.96], tick 0.01
        await wait_for(lambda: all(t.ready for t in e.books.tokens()))
        await e.tick_is("0.01")

        # On the coarse grid a 3-decimal price is refused before signing: nothing written as pending, nothing sent.
        with pytest.raises(PrepareFailed) as refused:
            await e.submit(Side.BUY, "0.955", "5")
        assert refused.value.reason == PRICE_OFF_TICK
        assert e.sim.exchange.open_orders(e.venue.credentials.api_key) == []
        (record,) = e.store.intents.values()
        assert (record.state, record.reason) == (IntentState.NOT_SENT, PRICE_OFF_TICK)

        # The YES ask moves beyond 0.96: the venue's tick becomes 0.001, and the engine's books follow.
        e.bob_cancels(near_edge)
        edge = e.bob_buys(NO, "0.02", "100")  # YES ask 0.98
        await e.tick_is("0.001")
        e.bob_buys(NO, "0.037", "10")  # YES ask 0.963: a price only the fine grid has

        # A FOK priced on the new grid is signed at 0.965 (floored to the old grid, 0.96, it would be killed).
        fok = await e.submit(Side.BUY, "0.965", "10", OrderType.FOK)
        await wait_for(lambda: e.manager.order(fok.client_order_id).status is OrderStatus.FILLED)
        filled = e.manager.order(fok.client_order_id)
        assert {f.price for f in filled.fills} == {D("0.963")}
        assert e.sim.exchange.order(fok.order_id) is not None

        # A resting GTC on the new grid rests at the venue at exactly its price.
        gtc = await e.submit(Side.BUY, "0.955", "5")
        assert gtc.status is OrderStatus.ACCEPTED
        (resting,) = e.sim.exchange.open_orders(e.venue.credentials.api_key)
        assert (resting.order_id, e.sim.exchange.order_view(resting).price) == (gtc.order_id, "0.955")

        # Back from the edge: the tick is 0.01 again, and a 3-decimal price is refused again (ours keeps resting).
        e.bob_cancels(edge)
        await e.tick_is("0.01")
        with pytest.raises(PrepareFailed) as again:
            await e.submit(Side.BUY, "0.945", "5")
        assert again.value.reason == PRICE_OFF_TICK
        assert [o.order_id for o in e.sim.exchange.open_orders(e.venue.credentials.api_key)] == [gtc.order_id]
        assert e.manager.order(gtc.client_order_id).status is OrderStatus.ACCEPTED
        on_grid = await e.submit(Side.BUY, "0.94", "5")
        assert on_grid.status is OrderStatus.ACCEPTED
