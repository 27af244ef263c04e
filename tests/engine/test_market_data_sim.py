"""Differential test over real sockets: after thousands of random book changes on the simulated venue (and forced
disconnects, stalls and malformed frames mid-stream), every local book equals the sim's book exactly."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial
from typing import cast

import httpx
import pytest
import trio

from trader.domain.book import OrderBook
from trader.engine.books import Books
from trader.engine.market_data import MarketDataService, MarketDataSettings
from trader.infra.backoff import Backoff
from trader.venues.polymarket.gamma import GammaClient, MarketQuery, RefreshStatistics, run_market_refresh
from trader.venues.polymarket.market_ws import PolymarketMarketFeed, websocket_factory
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, make_market
from trader.venues.sim.scenarios.synthetic import SyntheticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

pytestmark = pytest.mark.slow

FINEST_TICK = Decimal("0.0001")


def sim_book(sim: SimVenue, token_id: str) -> OrderBook:
    bids, asks = sim.exchange.book_levels(token_id)
    book = OrderBook(token_id, FINEST_TICK)
    book.apply_snapshot(
        [(Decimal(p) / PIPS_PER_ONE, Decimal(s) / UNITS_PER_ONE) for p, s in bids],
        [(Decimal(p) / PIPS_PER_ONE, Decimal(s) / UNITS_PER_ONE) for p, s in asks],
        now=0,
    )
    return book


def differences(sim: SimVenue, books: Books) -> list[str]:
    out = []
    for token in books.tokens():
        if not token.ready or token.suspect:
            out.append(f"{token.asset_id[:8]}: ready={token.ready} suspect={token.suspect}")
        elif token.book != sim_book(sim, token.asset_id):
            out.append(f"{token.asset_id[:8]}: {token.book!r} != {sim_book(sim, token.asset_id)!r}")
    return out


async def converged(sim: SimVenue, books: Books, *, timeout_secs: float = 60) -> None:
    """Wait until every local book is ready, not suspect and equal to the sim's (the sim is not moving)."""
    with trio.move_on_after(timeout_secs):
        while differences(sim, books):
            await books.wait_changed(books.version)
            await trio.sleep(0.01)  # let a burst of frames land before comparing 24 books again
    assert differences(sim, books) == []


async def churn(sim: SimVenue, steps: int) -> None:
    """Random book changes: the synthetic scenario's own step (requotes, resizes, taker trades, gaps)."""
    scenario = cast(SyntheticScenario, sim.scenario)
    for n in range(steps):
        scenario.step(sim.exchange, sim.now())
        if n % 20 == 0:
            await trio.sleep(0.005)  # let the sim's writers drain, as a real feed would


@pytest.fixture
async def setup() -> AsyncIterator[tuple[SimVenue, MarketDataService]]:
    config = SimConfig(
        scenario="static",
        markets=6,
        seed=11,
        rate_limits=None,
        ws_queue_size=1_000_000,  # sim and client share one thread here: let bursts queue instead of dropping us
        scenario_params={"levels": "6", "taker_rate_per_min": "600", "gap_rate_per_min": "300"},
    )
    async with open_sim_venue(config) as sim, httpx.AsyncClient() as http:
        found = await GammaClient(http, sim.urls.gamma).markets(MarketQuery())
        books = Books()
        for discovered in found.markets:
            books.add(discovered.market)
        settings = MarketDataSettings(
            ping_interval_secs=0.2,
            stall_timeout_secs=1.0,
            resync_timeout_secs=2.0,
            backoff=Backoff(initial_secs=0.05, max_secs=0.4),
            max_assets_per_connection=8,  # several connections even for a small listing
        )
        service = MarketDataService(PolymarketMarketFeed(websocket_factory(sim.urls.ws_market)), books, settings)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield sim, service
            nursery.cancel_scope.cancel()


async def test_books_equal_the_sims_after_thousands_of_random_changes(
    setup: tuple[SimVenue, MarketDataService],
) -> None:
    sim, service = setup
    books = service.books
    assert len(books) >= 8  # standalone and neg-risk markets
    assert service.statistics().connections >= 2
    await converged(sim, books)
    await churn(sim, 400)  # ~35,000 level changes (each step requotes a market: cancels, new orders, trades)
    await converged(sim, books)
    stats = service.statistics()
    assert stats.entries > 10_000
    assert stats.drops == {}
    assert stats.resyncs == 0
    assert stats.reconnects == 0


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
async def test_books_equal_the_sims_after_disconnects_stalls_and_bad_frames_mid_stream(
    setup: tuple[SimVenue, MarketDataService],
) -> None:
    sim, service = setup
    books = service.books
    await converged(sim, books)
    for _ in range(3):
        await churn(sim, 100)
        sim.faults.drop_ws("market")  # abrupt close, no close frame
        await churn(sim, 100)  # changes we cannot see while away
        await converged(sim, books)
    assert service.statistics().reconnects >= 3

    sim.faults.stall_ws()  # open but silent: PINGs unanswered
    await churn(sim, 100)
    await trio.sleep(1.5)
    sim.faults.resume_ws()
    await converged(sim, books)
    assert service.statistics().stalls >= 1

    for kind in ("garbage", "out_of_range", "unknown_event", "missing_fields"):
        sim.faults.malformed_frames(kind)
        await churn(sim, 50)
        await converged(sim, books)
    stats = service.statistics()
    assert {"MALFORMED_JSON", "UNKNOWN_EVENT_TYPE", "BAD_FIELD"} <= set(stats.drops)
    assert stats.resyncs >= 1  # the bad frames named our books: resynced, then exact again


async def test_trader_watch_shows_the_sims_books() -> None:
    config = SimConfig(scenario="static", markets=2, seed=5, rate_limits=None)
    async with open_sim_venue(config) as sim:
        market = sim.exchange.markets[0]
        argv = [sys.executable, "-m", "trader", "watch", "--slug", market.slug, "--token-id", market.token_ids[1]]
        argv += ["--ws-url", sim.urls.ws_market, "--gamma-url", sim.urls.gamma, "--duration-secs", "1.5"]
        with trio.fail_after(60):
            done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    last = done.stdout.decode().split("--- ")[-1]
    assert market.slug in last
    bid_pips, _ = sim.exchange.best_prices(market.token_ids[0])
    assert bid_pips is not None
    assert f" {Decimal(bid_pips) / PIPS_PER_ONE} x " in last
    assert "books ready 2/2" in last
    assert "NOT READY" not in last


async def test_gamma_refresh_follows_a_market_listed_while_running() -> None:
    config = SimConfig(scenario="static", markets=2, seed=9, rate_limits=None)
    async with open_sim_venue(config) as sim, httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        books = Books()
        service = MarketDataService(PolymarketMarketFeed(websocket_factory(sim.urls.ws_market)), books)
        await nursery.start(service.run)
        gamma = GammaClient(http, sim.urls.gamma)
        stats = RefreshStatistics()
        found = await nursery.start(
            partial(run_market_refresh, gamma, MarketQuery(), service, period_secs=0.2, stats=stats)
        )
        assert {d.market.condition_id for d in found.markets} == set(books.markets)
        first = len(books.markets)
        listed = make_market("late:listing", question="Listed while the engine runs?")
        sim.exchange.add_market(listed)
        with trio.fail_after(20):
            while listed.condition_id not in books.markets:
                await books.wait_changed(books.version)
            await books.wait_ready(listed.condition_id)
        assert len(books.markets) == first + 1
        assert stats.added == first + 1
        nursery.cancel_scope.cancel()
