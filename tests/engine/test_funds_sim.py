"""Live buying power against the simulated venue over real loopback sockets: the wallet's pUSD comes from the sim's
`GET /balance-allowance` (through the live `Capital`, `PolymarketCapital.collateral`), follows a fill at once, and is
read again after it; a wallet without the exchange allowance is refused trading with its own reason. Real time (see
`test_arbitrage_sim`); the book and the market are that module's."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import trio

from trader.domain.enums import OrderStatus
from trader.domain.intents import Intent
from trader.domain.positions import Portfolio
from trader.engine.execution import ExecutionService
from trader.engine.funds import Funds, FundsSettings
from trader.engine.order_manager import OrderManager, OrderManagerSettings
from trader.engine.risk import BookHealth, RiskGate, RiskSettings
from trader.testing.memory_store import MemoryStore
from trader.venues.polymarket.capital import ChainSettings, open_polymarket_capital
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import ExchangeConfig
from trader.venues.sim.markets import UNITS_PER_ONE
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

from .test_arbitrage_sim import CASH, DEADLINE_SECS, MARKET, YES, fee, leg, seed_book, sim_config

D = Decimal


@dataclass
class Live:
    sim: SimVenue
    venue: PolymarketVenue
    manager: OrderManager
    funds: Funds
    service: ExecutionService
    send: trio.MemorySendChannel[Intent]
    events: list[object]

    def sim_collateral(self) -> Decimal:
        return D(self.sim.exchange.wallet(self.venue.signer.address).collateral) / UNITS_PER_ONE


@asynccontextmanager
async def live(config: SimConfig) -> AsyncIterator[Live]:
    async with open_sim_venue(config) as sim:
        seed_book(sim)
        settings = PolymarketVenueSettings(rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user)
        signer = OrderSigner("0x" + secrets.token_hex(32))
        async with (
            open_polymarket_venue(settings, signer, wall_secs=sim.now) as v,
            open_polymarket_capital(ChainSettings(), signer, v.rest) as capital,
        ):
            v.add_markets([MARKET])
            portfolio = Portfolio(cash=CASH)
            manager = OrderManager(
                v,
                MemoryStore(),
                portfolio=portfolio,
                settings=OrderManagerSettings(request_timeout_secs=2.0),
                wall_ns=lambda: int(sim.now() * 1e9),
            )
            events: list[object] = []
            manager.add_listener(events.append)
            funds = Funds(capital, portfolio, FundsSettings(fill_refresh_delay_secs=0.2))
            manager.add_listener(funds.on_event)
            send, receive = trio.open_memory_channel[Intent](8)
            service = ExecutionService(
                manager,
                RiskGate(RiskSettings(max_orders_per_market=1000, max_orders_global=1000)),
                receive,
                book_health=lambda _token: BookHealth(age_ms=0.0),
                funds=funds,
                fees_of=lambda _token: MARKET.fees,
            )
            async with trio.open_nursery() as nursery:
                with trio.fail_after(DEADLINE_SECS):
                    await nursery.start(funds.run)
                    await nursery.start(service.run)
                yield Live(sim, v, manager, funds, service, send, events)
                nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], object], what: str) -> None:
    with trio.move_on_after(DEADLINE_SECS):
        while not predicate():  # noqa: ASYNC110 - state spread over the sim, sockets and the engine
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_live_balance_is_the_sims_and_follows_a_fill() -> None:
    async with live(sim_config()) as t:
        assert t.funds.balance == CASH == t.sim_collateral()
        reads = t.funds.statistics().reads
        await t.send.send(leg("c1", YES, "0.45", size="10"))
        await wait_until(lambda: t.manager.get("c1") is not None and t.manager.order("c1").is_terminal, "the fill")
        assert t.manager.order("c1").status is OrderStatus.FILLED
        # at once, from the fill itself: 10 x 0.45 and the taker fee, exactly what the sim took
        spent = D("4.5") + fee("10", "0.45")
        await wait_until(lambda: t.funds.balance == CASH - spent, "the fill to move the balance")
        assert t.sim_collateral() == CASH - spent
        # and read again from the venue shortly after the fill
        await wait_until(lambda: t.funds.statistics().reads > reads, "a read after the fill")
        assert t.funds.statistics().last_read == CASH - spent
        assert t.service.statistics().balance_rejections == 0


async def test_a_wallet_without_the_exchange_allowance_is_refused_trading() -> None:
    config = SimConfig(scenario=sim_config().scenario, seed=7, exchange=ExchangeConfig(allowance=0))
    async with live(config) as t:
        assert len(t.funds.missing_allowances) == 3  # the sim's three exchange spenders: none approved
        await t.send.send(leg("c1", YES, "0.45", size="10"))
        await wait_until(lambda: t.service.statistics().intents_denied, "the denial")
        assert t.service.statistics().intents_denied == {"RISK_ALLOWANCE_MISSING": 1}
        assert t.manager.get("c1") is None  # nothing was written or sent
