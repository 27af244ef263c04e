"""The engine's order path against the simulated venue over real sockets, wired as the composition root wires it:
market data into the books, the live venue signing on the books' tick (`Books.tick_of`), the order manager with its
venue event pump (the user channel). Time is trio's autojump MockClock (the sim runs on the Trio clock)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import trio
import trio.testing

from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.engine.books import Books
from trader.engine.breaker import Breakers
from trader.engine.market_data import MarketDataService
from trader.engine.order_manager import OrderManager, pump_venue_events
from trader.testing import make_intent, market_from_sim
from trader.testing.memory_store import MemoryStore
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
SIM_MARKET = make_market("engine-live-sim", question="Will the engine trade it right?")
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
async def engine(*, breakers: Breakers | None = None, **exchange: object) -> AsyncIterator[Engine]:
    """`exchange`: `ExchangeConfig` fields; `breakers`: the order manager's (default: `Breakers()`)."""
    config = SimConfig(
        scenario=StaticScenario([SIM_MARKET]),
        start_time=T0,
        seed=5,
        rate_limits=None,
        exchange=ExchangeConfig(seed=5, **exchange),  # type: ignore[arg-type]
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
                venue,
                store,
                portfolio=Portfolio(cash=D(1000)),
                breakers=breakers,
                wall_ns=lambda: int(sim.now() * 1e9),
            )
            await nursery.start(pump_venue_events, manager)
            yield Engine(sim, books, venue, manager, store)
            nursery.cancel_scope.cancel()
