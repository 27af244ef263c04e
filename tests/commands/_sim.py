"""A simulated venue with one market, our key's live adapter on it, and other traders' orders straight into its
exchange: the setting of the operator tools' tests (real loopback sockets, the real Trio clock)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from trader.cli import main
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.testing import make_intent, market_from_sim
from trader.venues.base import SubmitAccepted
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import Accepted, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import UNITS_PER_ONE, SimMarket, make_market
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

D = Decimal
KEY = "0x" + "5d" * 32
ADDRESS = OrderSigner(KEY).address
SIM_MARKET = make_market("operator-tools", question="Will the operator tools work?")
MARKET = market_from_sim(SIM_MARKET)
YES, NO = SIM_MARKET.token_ids
BOB = "0x" + "b0" * 20
_ids = itertools.count(1)


def sim_config(markets: Sequence[SimMarket] = (SIM_MARKET,), exchange: ExchangeConfig | None = None) -> SimConfig:
    # By default trades stay MATCHED for the test's life, so that nothing settles between two reads.
    exchange = exchange or ExchangeConfig(seed=5, mined_after_secs=1e6, confirmed_after_secs=2e6)
    return SimConfig(scenario=StaticScenario(markets), seed=5, rate_limits=None, exchange=exchange)


@asynccontextmanager
async def sim_and_venue(
    markets: Sequence[SimMarket] = (SIM_MARKET,), exchange: ExchangeConfig | None = None
) -> AsyncIterator[tuple[SimVenue, PolymarketVenue]]:
    async with open_sim_venue(sim_config(markets, exchange)) as sim:
        settings = PolymarketVenueSettings(
            rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user, heartbeat_enabled=False
        )
        async with open_polymarket_venue(settings, OrderSigner(KEY)) as venue:
            venue.add_markets([market_from_sim(m) for m in markets])
            yield sim, venue


def other_trader(sim: SimVenue, side: Side, price: str, size: str, *, token_id: str = YES) -> str:
    """A resting order of another trader (with shares and pUSD to back it), placed straight into the exchange."""
    units = int(D(size) * UNITS_PER_ONE)
    cash = int(D(size) * D(price) * UNITS_PER_ONE)
    sim.exchange.fund(BOB, shares=dict.fromkeys({YES, NO, token_id}, 1_000 * UNITS_PER_ONE))
    maker, taker = (cash, units) if side is Side.BUY else (units, cash)
    order_id = f"0x{next(_ids):064x}"
    request = OrderRequest(
        order_id=order_id,
        owner="bob",
        maker_address=BOB,
        token_id=token_id,
        side=side,
        maker_amount=maker,
        taker_amount=taker,
    )
    assert isinstance(sim.exchange.submit(request, sim.now()), Accepted)
    return order_id


async def place(
    sim: SimVenue, venue: PolymarketVenue, side: Side, price: str, size: str, *, token_id: str = YES
) -> tuple[Order, SubmitAccepted]:
    """Our own GTC order, signed and sent by the live adapter."""
    intent = make_intent(
        f"test-{next(_ids)}", condition_id=MARKET.condition_id, token_id=token_id, side=side, price=price, size=size
    )
    order = await venue.prepare(intent, ts=sim.now())
    result = await venue.submit(order)
    assert isinstance(result, SubmitAccepted), result
    return order, result


def our_shares(sim: SimVenue, token_id: str) -> Decimal:
    return D(sim.exchange.wallet(ADDRESS).shares.get(token_id, 0)) / UNITS_PER_ONE


def point_at(monkeypatch: pytest.MonkeyPatch, sim: SimVenue, database: Path | None = None) -> None:
    """The settings of a command run against `sim` with our key (and a store)."""
    monkeypatch.setenv("TRADER_PRIVATE_KEY", KEY)
    monkeypatch.setenv("TRADER_ENDPOINTS__REST_URL", sim.urls.rest)
    monkeypatch.setenv("TRADER_ENDPOINTS__WS_USER_URL", sim.urls.ws_user)
    monkeypatch.setenv("TRADER_ENDPOINTS__WS_MARKET_URL", sim.urls.ws_market)
    if database is not None:
        monkeypatch.setenv("TRADER_DATABASE_URL", f"sqlite:{database}")


async def cli(*argv: str) -> int:
    """`trader ...` in a worker thread (it runs its own `trio.run`) while the sim serves on the test's loop."""
    return await trio.to_thread.run_sync(main, list(argv))
