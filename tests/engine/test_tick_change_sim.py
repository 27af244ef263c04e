"""Trading through a tick-size change near the edge, against the simulated venue over real sockets.

The sim's exchange makes a market's tick 10x finer while a best price is beyond 0.96 (or below 0.04) and coarse again
when it comes back (`ExchangeConfig.tick_fine_edge`), and says so on the market channel (`tick_size_change`). The
engine's market data applies it to the books, and the live venue signs on the books' tick (`Books.tick_of`, as the
composition root wires it): an order priced on the grid in force is signed exactly as priced, and one priced off it
is refused before anything is signed, written or sent (`PRICE_OFF_TICK`), never floored and never an exception.
Time is trio's autojump MockClock (the sim runs on the Trio clock).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.engine.books import Books
from trader.engine.market_data import MarketDataService
from trader.engine.order_manager import OrderManager, PrepareFailed, pump_venue_events
from trader.integrations.store.base import IntentState
from trader.testing import make_intent, market_from_sim
from trader.testing.memory_store import MemoryStore
from trader.venues.base import PRICE_OFF_TICK
from trader.venues.polymarket.market_ws import PolymarketMarketFeed, websocket_factory
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import Accepted, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import make_market
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

D = Decimal
KEY = "0x" + "5d" * 32
T0 = 1_767_225_600.0
SIM_MARKET = make_market("tick-edge", question="Will the tick change reach the signer?")
MARKET = market_from_sim(SIM_MARKET)
YES, NO = MARKET.yes_token_id, MARKET.no_token_id
BOB = "0x" + "b0" * 20
_ids = itertools.count(1)


@dataclass
class Engine:
    sim: SimVenue
    books: Books
    venue: PolymarketVenue
    manager: OrderManager
    store: MemoryStore

    async def submit(self, side: Side, price: str, size: str, order_type: OrderType = OrderType.GTC) -> Order:
        intent = make_intent(
            f"c-{next(_ids)}",
            condition_id=MARKET.condition_id,
            token_id=YES,
            side=side,
            price=price,
            size=size,
            order_type=order_type,
        )
        return await self.manager.submit(intent)

    def bob_buys(self, token_id: str, price: str, size: str) -> str:
        """Another trader's resting BUY, straight into the exchange (a BUY NO at p is a YES ask at 1 - p)."""
        order_id = f"0x{next(_ids):064x}"
        units, cash = int(D(size) * 1_000_000), int(D(size) * D(price) * 1_000_000)
        result = self.sim.exchange.submit(
            OrderRequest(
                order_id=order_id,
                owner="bob",
                maker_address=BOB,
                token_id=token_id,
                side=Side.BUY,
                maker_amount=cash,
                taker_amount=units,
            ),
            self.sim.now(),
        )
        assert isinstance(result, Accepted), result
        return order_id

    def bob_cancels(self, order_id: str) -> None:
        assert self.sim.exchange.cancel("bob", [order_id], self.sim.now()).canceled == (order_id,)

    async def tick_is(self, tick: str) -> None:
        """Wait until the engine's books have applied the venue's tick for both tokens."""
        await wait_for(lambda: self.books.tick_of(YES) == self.books.tick_of(NO) == D(tick))
        assert self.sim.exchange.tick_size(YES) == D(tick)


async def wait_for(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(30):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.05)


@asynccontextmanager
async def engine() -> AsyncIterator[Engine]:
    config = SimConfig(
        scenario=StaticScenario([SIM_MARKET]),
        start_time=T0,
        seed=5,
        rate_limits=None,
        exchange=ExchangeConfig(seed=5, tick_fine_edge=D("0.04")),
    )
    async with open_sim_venue(config) as sim, trio.open_nursery() as nursery:
        books = Books()
        market_data = MarketDataService(PolymarketMarketFeed(websocket_factory(sim.urls.ws_market)), books)
        market_data.track(MARKET)
        await nursery.start(market_data.run)
        settings = PolymarketVenueSettings(
            rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user, heartbeat_enabled=False
        )
        async with open_polymarket_venue(settings, OrderSigner(KEY), wall_secs=sim.now, tick_of=books.tick_of) as venue:
            venue.add_markets([MARKET])  # discovery's tick: 0.01
            store = MemoryStore()
            manager = OrderManager(
                venue, store, portfolio=Portfolio(cash=D(1000)), wall_ns=lambda: int(sim.now() * 1e9)
            )
            await nursery.start(pump_venue_events, manager)
            yield Engine(sim, books, venue, manager, store)
            nursery.cancel_scope.cancel()


@pytest.mark.timeout(60)
async def test_orders_priced_on_the_grid_in_force_trade_through_a_tick_change_near_the_edge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine() as e:
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
