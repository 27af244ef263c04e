"""The venue side: where prices come from and where orders go (`open_venue`).

```
open_venue(settings, http, store, signer)  -> VenueSide        (one nursery, closed in this order on exit)
├── simulated venue      `--venue sim` only: the whole exchange on loopback, in-process (closed last)
├── market data          one task per WS connection; the books everyone reads (closed first, while the venue answers)
├── market refresh       Gamma discovery (whole listing, missing ticks from the CLOB): the first one before anything
│                        trades, then periodically
├── neg-risk events      which baskets are complete, re-read periodically
├── live venue           live mode: REST + user channel + dead-man heartbeat (its own nursery); it signs on the
│                        books' tick in force (`tick_size_change` reaches books, strategies and signer at once)
│   or paper venue       paper mode: fills against the books; the paper fill feed follows the books; its wallet
│                        continues from the store's (`PaperWalletKeeper` writes it after each change)
└── restart              before trading: the store brought up to date with the venue (`reconcile_at_start`)
```

The wallet's pUSD, for buying power, is `VenueSide.capital.collateral()`: the paper wallet's (`PaperCapital`), or live
the account's `GET /balance-allowance` with the exchange allowances it lacks (`PolymarketCapital`).

This is the only part of the composition root that knows venue implementations (Polymarket, the sim, paper); the
engine below sees them through the ports of `trader.venues.base`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import NoReturn

import httpx
import structlog
import trio

from trader.app.config import Settings, VenueKind
from trader.domain.capital import PositionsRedeemed, SetsMerged
from trader.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderFillReversed,
    OrderKilled,
)
from trader.domain.market import Market, NegRiskEvent
from trader.domain.numbers import ONE, ZERO
from trader.domain.positions import Position
from trader.engine.books import Books
from trader.engine.capital import MarketDirectory
from trader.engine.market_data import MarketDataService
from trader.engine.restart import RestartReport, reconcile_at_start
from trader.integrations.store.base import PaperWalletRecord, Store, StoreError
from trader.venues.base import Capital, Resolution, Venue
from trader.venues.errors import VenueError, VenueTimeout
from trader.venues.paper import PaperVenue, PaperWallet, follow_books
from trader.venues.paper_capital import PaperCapital
from trader.venues.polymarket.capital import VenueResolutions, open_polymarket_capital
from trader.venues.polymarket.gamma import (
    Announcements,
    Discovery,
    GammaClient,
    MarketQuery,
    RefreshStatistics,
    run_market_refresh,
)
from trader.venues.polymarket.market_ws import PolymarketMarketFeed, websocket_factory
from trader.venues.polymarket.paper_ids import PAPER_KEY, paper_order_id
from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.venue import SimConfig, SimVenue, run_sim_venue

__all__ = [
    "Endpoints",
    "NegRiskEvents",
    "PaperWalletKeeper",
    "VenueSide",
    "market_query",
    "open_venue",
    "paper_resolution",
    "paper_venue",
    "start_endpoints",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoints:
    rest: str
    ws_market: str
    ws_user: str
    gamma: str
    espn: str
    rpc: str  # the Polygon node (EOA merges and redemptions)
    relayer: str  # Polymarket's relayer (proxy, Safe and deposit wallets)


class NegRiskEvents:
    """The latest neg-risk events (and whether each is complete), for the strategies; re-read periodically."""

    def __init__(self) -> None:
        self.current: Sequence[NegRiskEvent] = ()


class _Capped:
    """Tracks at most `limit` markets in the market-data service (discovery may find thousands), and remembers each
    one in the market directory, so positions outlive a market leaving discovery."""

    def __init__(
        self,
        service: MarketDataService,
        limit: int,
        on_change: Callable[[], None],
        directory: MarketDirectory,
    ) -> None:
        self._service = service
        self._limit = limit
        self._on_change = on_change
        self._directory = directory
        self.tracked: dict[str, Market] = {}

    def track(self, market: Market) -> object:
        if market.condition_id not in self.tracked and len(self.tracked) >= self._limit:
            return None
        self.tracked[market.condition_id] = market
        self._directory.remember(market)
        cell = self._service.track(market)
        self._on_change()
        return cell

    def untrack(self, condition_id: str) -> None:
        if self.tracked.pop(condition_id, None) is not None:
            self._service.untrack(condition_id)
            self._on_change()


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueSide:
    """The open venue side: endpoints, books and market data, what is traded and where orders go."""

    endpoints: Endpoints
    sim: SimVenue | None  # `--venue sim`: the in-process venue, for its own records
    books: Books
    market_data: MarketDataService
    tracked: dict[str, Market]  # condition id -> the markets followed (at most `markets.max_markets`)
    events: NegRiskEvents
    gamma: GammaClient  # discovery's client: its statistics (pages, fallbacks, incomplete listings, drops)
    discovery: RefreshStatistics  # the market refresh: counters, and what the last refresh found
    venue: Venue  # where orders go: the live venue or the paper venue
    live: PolymarketVenue | None
    paper: PaperVenue | None
    restart: RestartReport | None  # what the restart found; None when the venue could not be asked
    positions: list[Position]  # as stored at start
    cash: Decimal  # pUSD at start: the paper wallet's (as stored, else the starting cash), or the live account's
    directory: MarketDirectory  # every market followed or held, also after discovery dropped it
    capital: Capital  # merges, resolutions, redemptions, and the wallet's pUSD: the chain (live) or the paper wallet

    def reconnects(self) -> dict[str, int]:
        """Reconnections so far, per channel (market, and user when live): for disconnect storms."""
        counts = {"market": self.market_data.statistics().reconnects}
        if self.live is not None:
            counts["user"] = sum(s.reconnects for s in self.live.statistics().user_streams)
        return counts


@asynccontextmanager
async def open_venue(
    settings: Settings, http: httpx.AsyncClient, store: Store, signer: OrderSigner | None
) -> AsyncIterator[VenueSide]:
    """Start the venue side (see the module docstring); on exit, market data closes first, within
    `supervisor.market_data_close_secs`, while the venue (maybe the in-process sim) still answers."""
    supervisor = settings.supervisor
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        sim, endpoints = await start_endpoints(settings, nursery)

        books = Books()
        announcements = Announcements()  # the venue's new_market: discovery looks them up at once
        market_data = MarketDataService(
            PolymarketMarketFeed(websocket_factory(endpoints.ws_market)),
            books,
            settings.market_data,
            on_new_market=announcements.announce,
        )
        md_scope, md_done = await nursery.start(_stoppable, market_data.run)
        live: PolymarketVenue | None = None

        def markets_changed() -> None:
            if live is not None:
                live.add_markets(capped.tracked.values())

        directory = MarketDirectory(await store.load_markets())
        capped = _Capped(market_data, settings.markets.max_markets, markets_changed, directory)
        # The CLOB's public side, without a key: the ticks Gamma leaves out, and paper trading's resolutions.
        public_rest = await stack.enter_async_context(open_rest_client(endpoints.rest, OrderSigner(PAPER_KEY)))
        gamma = GammaClient(http, endpoints.gamma, tick_size=public_rest.tick_size)
        discovery = RefreshStatistics()
        latest: list[Discovery] = []  # the last discovery only

        def discovered(found: Discovery) -> None:
            latest[:] = [found]

        try:
            with trio.fail_after(supervisor.discovery_timeout_secs):
                first: Discovery = await nursery.start(
                    partial(
                        run_market_refresh,
                        gamma,
                        market_query(settings),
                        capped,
                        period_secs=settings.markets.refresh_secs,
                        request_timeout_secs=supervisor.discovery_timeout_secs,
                        stats=discovery,
                        on_refresh=discovered,
                        announcements=announcements,
                    )
                )
        except trio.TooSlowError:  # the operator's message names what did not answer, and the wait
            raise VenueTimeout(
                f"market discovery: no answer from Gamma at {endpoints.gamma} within "
                f"{supervisor.discovery_timeout_secs:g} s (TRADER_SUPERVISOR__DISCOVERY_TIMEOUT_SECS)"
            ) from None
        discovered(first)
        log.info(
            "markets_selected",
            found=len(first.markets),
            followed=len(capped.tracked),
            max_markets=settings.markets.max_markets,
            complete=first.complete,
            pages=first.pages,
            paging=first.paging,
        )
        events = NegRiskEvents()
        nursery.start_soon(_run_events, gamma, events, lambda: latest[-1], settings)

        if signer is not None:
            live = await stack.enter_async_context(
                open_polymarket_venue(
                    PolymarketVenueSettings(rest_url=endpoints.rest, ws_user_url=endpoints.ws_user),
                    signer,
                    credentials=settings.keys.credentials(),
                    tick_of=books.tick_of,  # the books' tick: every tick_size_change reaches the signer at once
                )
            )
            live.add_markets(capped.tracked.values())
        # Restart: bring the store up to date with the venue, then rebuild the state from it.
        restart: RestartReport | None = None
        try:
            restart = await reconcile_at_start(store, live, lookback_secs=settings.orders.trades_lookback_secs)
        except (VenueError, trio.TooSlowError) as exc:  # the order manager still resolves pending intents by id
            log.error("restart_reconcile_failed", error=repr(exc))
        positions = await store.load_positions()
        venue: Venue
        paper: PaperVenue | None = None
        capital: Capital
        if live is not None:
            venue = live
            chain = dataclasses.replace(settings.chain, rpc_url=endpoints.rpc, relayer_url=endpoints.relayer)
            capital = await stack.enter_async_context(
                open_polymarket_capital(chain, live.signer, live.rest, gamma_url=endpoints.gamma)
            )
            cash = await _live_cash(capital, supervisor.discovery_timeout_secs)
        else:
            cash = await _paper_cash(store, settings.run.starting_cash_usd, positions)
            paper = paper_venue(settings, books, cash, positions)
            await nursery.start(follow_books, paper, books)
            venue = paper
            public = VenueResolutions(public_rest, http, endpoints.gamma)
            capital = PaperCapital(paper, partial(paper_resolution, books, public), settings.paper_capital)
        try:
            yield VenueSide(
                endpoints=endpoints,
                sim=sim,
                books=books,
                market_data=market_data,
                tracked=capped.tracked,
                events=events,
                venue=venue,
                live=live,
                paper=paper,
                restart=restart,
                positions=positions,
                cash=cash,
                directory=directory,
                capital=capital,
                gamma=gamma,
                discovery=discovery,
            )
        finally:
            md_scope.cancel()  # close the market connections while the venue still answers
            with trio.move_on_after(supervisor.market_data_close_secs, shield=True):
                await md_done.wait()


#: The events after which the paper wallet may have changed (cash: fills, merges, redemptions; reservations: orders
#: resting or closing).
_WALLET_EVENTS = (
    OrderFilled,
    OrderFillReversed,
    OrderAccepted,
    OrderCanceled,
    OrderKilled,
    OrderExpired,
    SetsMerged,  # the capital service's: a merge or a redemption landed in the wallet
    PositionsRedeemed,
)


class PaperWalletKeeper:
    """Writes the paper wallet (cash, reserved) to the store after each change, so that a restart continues from it.

    `on_event` (a listener of the order manager and of the capital service) or `request_save()` (anything else that
    moved the wallet) wake `run`, which writes it if it changed; `save()` writes it now (at shutdown)."""

    def __init__(self, paper: PaperVenue, store: Store) -> None:
        self._paper = paper
        self._store = store
        self._changed = trio.Event()
        self._saved: PaperWallet | None = None

    def on_event(self, event: object) -> None:
        if isinstance(event, _WALLET_EVENTS):
            self._changed.set()

    def request_save(self) -> None:
        self._changed.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._changed.wait()
            self._changed = trio.Event()
            await self.save()

    async def save(self) -> None:
        wallet = self._paper.wallet()
        if wallet == self._saved:
            return
        record = PaperWalletRecord(cash=wallet.cash, reserved=wallet.reserved, updated_at_ns=time.time_ns())
        try:
            await self._store.record_paper_wallet(record)
        except StoreError as exc:
            log.error("paper_wallet_write_failed", error=str(exc))
            return
        self._saved = wallet


async def _paper_cash(store: Store, starting_cash: Decimal, positions: list[Position]) -> Decimal:
    """The paper wallet's cash as stored (a restart continues from it), else the starting cash. What resting buys had
    reserved is free again: the restart closed them (`ENGINE_RESTARTED`)."""
    wallet = await store.load_paper_wallet()
    if wallet is not None:
        log.info("paper_wallet_restored", cash=str(wallet.cash), reserved_released=str(wallet.reserved))
        return wallet.cash
    if any(p.quantity for p in positions):
        log.warning("paper_wallet_missing", starting_cash=str(starting_cash), positions=len(positions))
    return starting_cash


async def _live_cash(capital: Capital, timeout_secs: float) -> Decimal:
    """The live account's pUSD at start (what the portfolio shows as cash); 0 when it cannot be read now (buying
    power reads it again on its own)."""
    try:
        with trio.fail_after(timeout_secs):
            return (await capital.collateral()).balance
    except (VenueError, trio.TooSlowError) as exc:
        log.error("live_cash_unread", error=repr(exc))
        return Decimal(0)


def paper_venue(settings: Settings, books: Books, cash: Decimal, positions: list[Position]) -> PaperVenue:
    return PaperVenue(
        lambda t: tb.book if (tb := books.get_token(t)) is not None else None,
        lambda t: books.markets[tb.condition_id].market if (tb := books.get_token(t)) is not None else None,
        cash=cash,
        settings=settings.paper,
        shares={p.token_id: p.quantity for p in positions if p.quantity},
        order_ids=paper_order_id,
    )


async def paper_resolution(books: Books, public: VenueResolutions | None, condition_id: str) -> Resolution | None:
    """A resolution for paper trading: as the market channel told it (`market_resolved` with a winner: 1/0 or
    0/1), else as the venue's public word has it (the CLOB market, Gamma: also 50/50; a backtest has none)."""
    cell = books.markets.get(condition_id)
    if cell is not None and cell.resolved_winner is not None and cell.market.has_token(cell.resolved_winner):
        await trio.lowlevel.checkpoint()
        yes_won = cell.resolved_winner == cell.market.yes_token_id
        return Resolution(condition_id=condition_id, payouts=(ONE, ZERO) if yes_won else (ZERO, ONE))
    if public is None:
        await trio.lowlevel.checkpoint()
        return None
    return await public.resolution(condition_id)


def market_query(settings: Settings) -> MarketQuery:
    markets = settings.markets
    return MarketQuery(
        slugs=markets.slugs,
        condition_ids=markets.condition_ids,
        token_ids=markets.token_ids,
        tag_id=markets.tag_id,
        category=markets.category,
        min_liquidity=markets.min_liquidity,
        max_pages=markets.max_pages,
    )


async def start_endpoints(settings: Settings, nursery: trio.Nursery) -> tuple[SimVenue | None, Endpoints]:
    if settings.run.venue is VenueKind.SIM:
        params = dict(p.split("=", 1) for p in settings.sim.params if "=" in p)
        sim: SimVenue = await nursery.start(
            run_sim_venue,
            SimConfig(
                scenario=settings.sim.scenario,
                markets=settings.sim.markets,
                seed=settings.sim.seed,
                scenario_params=params,
            ),
        )
        urls = sim.urls
        log.info("sim_venue_started", rest=urls.rest)
        return sim, Endpoints(urls.rest, urls.ws_market, urls.ws_user, urls.gamma, urls.espn, urls.rpc, urls.relayer)
    e, chain = settings.endpoints, settings.chain
    return None, Endpoints(
        e.rest_url, e.ws_market_url, e.ws_user_url, e.gamma_url, e.espn_url, chain.rpc_url, chain.relayer_url
    )


async def _stoppable(
    service: Callable[..., Awaitable[object]],
    *,
    task_status: trio.TaskStatus[tuple[trio.CancelScope, trio.Event]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `service` (started with `nursery.start`) in a scope of its own, so shutdown can stop it before others."""
    done = trio.Event()
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(service)
                task_status.started((scope, done))
    finally:
        done.set()


async def _run_events(
    gamma: GammaClient, events: NegRiskEvents, discovered: Callable[[], Discovery], settings: Settings
) -> NoReturn:
    """Keep the neg-risk events (and whether each is complete) current for the strategies."""
    supervisor = settings.supervisor
    while True:
        found = discovered()
        if any(d.market.neg_risk for d in found.markets):
            try:
                with trio.fail_after(supervisor.events_timeout_secs):
                    events.current = tuple(await gamma.neg_risk_events(found.markets))
            except Exception as exc:  # a failed refresh keeps the last known events
                log.warning("neg_risk_events_failed", error=repr(exc))
        await trio.sleep(supervisor.events_refresh_secs)
