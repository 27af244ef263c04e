"""The supervisor: `trader run` as one Trio nursery tree (ARCHITECTURE.md).

```
run_trader
├── store                       (SQLite file or PostgreSQL), opened first, closed last
└── services nursery            lives until the very end
    ├── simulated venue         `--venue sim` only: the whole exchange on loopback, in-process
    ├── market data service     one task per WS connection; books for everyone below
    ├── market refresh          Gamma discovery, periodically: new markets tracked, closed ones dropped
    ├── neg-risk events         which baskets are complete
    ├── paper fill feed         paper mode: trade prints and book changes into the paper venue
    ├── http server             /health /ready /metrics /status, POST /emergency-stop /resume
    └── live venue              live mode: REST + user channel + dead-man heartbeat (its own service nursery)
        └── core nursery
            ├── execution       risk gate -> order tasks, all inside ONE orders scope
            └── strategy engine book changes + 100 ms ticks -> intents (bounded channel) -> execution
```

Shutdown (`stop` returns: SIGINT/SIGTERM, `--duration`, or a fatal error in a service): strategies are stopped
first (no new intents), execution drains (in-flight orders finish within `drain_secs`, shielded; resting orders are
cancelled at the venue unless configured to stay), then everything else is cancelled, the store is flushed and
closed, and a `RunSummary` is returned. `abort` (a second Ctrl+C) cuts the drain short.

An emergency stop (HTTP, or a daily-loss breach) halts trading and cancels every order task and every resting order,
but leaves market data and the HTTP server running, so the operator still sees the market.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import structlog
import trio
from prometheus_client import CollectorRegistry

from trader.domain.events import OrderSubmitted
from trader.domain.market import Market, NegRiskEvent
from trader.domain.numbers import ZERO
from trader.domain.positions import Portfolio, marks_at_mid
from trader.engine.books import BookHealth, Books
from trader.engine.breaker import CircuitBreaker
from trader.engine.execution import DrainReport, ExecutionService, Intent, book_health_from, tick_from
from trader.engine.market_data import MarketDataService
from trader.engine.orders import OrderManager
from trader.engine.rate_limit import RateLimiter
from trader.engine.risk import RiskGate
from trader.engine.strategy_engine import StrategyEngine, opportunity_record, store_claim
from trader.errors import ConfigError
from trader.integrations.espn import EspnClient, EspnPoller, EspnSettings
from trader.integrations.http_server import OperatorApp, run_http_server
from trader.integrations.metrics import EngineCollector, TickToTrade
from trader.integrations.store.base import Store
from trader.integrations.store.postgres import PostgresSettings, open_postgres_store
from trader.integrations.store.sqlite import open_sqlite_store
from trader.settings import Settings, VenueKind
from trader.strategies import build_analyzers, build_strategies
from trader.strategies.base import intent_key
from trader.strategies.sum_deviation import Opportunity
from trader.venues.base import Venue
from trader.venues.paper import PaperVenue, follow_books
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.gamma import Discovery, GammaClient, MarketQuery, run_market_refresh
from trader.venues.polymarket.market_ws import websocket_factory
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.venue import SimConfig, SimVenue, run_sim_venue

log = structlog.get_logger(__name__)

#: httpx's own timeout, a backstop only: every call is bounded by its caller's fail_after first.
_HTTP_BACKSTOP_SECS = 60.0

__all__ = ["Endpoints", "RunSummary", "open_store", "run_trader"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    rest: str
    ws_market: str
    ws_user: str
    gamma: str
    espn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What a run did, printed at exit and written by `--summary-json`. Decimals stay exact (JSON strings)."""

    exit_reason: str
    mode: str
    venue: str
    duration_secs: float
    markets: int
    orders_submitted: int
    fills: int
    opportunities: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_paid: Decimal
    cash: Decimal
    open_orders_at_exit: int
    intents: int
    intents_denied: Mapping[str, int]
    arbitrage: Mapping[str, int]
    positions: Mapping[str, Mapping[str, str]]
    drain: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "exit_reason": self.exit_reason,
            "mode": self.mode,
            "venue": self.venue,
            "duration_secs": round(self.duration_secs, 3),
            "markets": self.markets,
            "orders_submitted": self.orders_submitted,
            "fills": self.fills,
            "opportunities": self.opportunities,
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
            "fees_paid": str(self.fees_paid),
            "cash": str(self.cash),
            "open_orders_at_exit": self.open_orders_at_exit,
            "intents": self.intents,
            "intents_denied": dict(self.intents_denied),
            "arbitrage": dict(self.arbitrage),
            "positions": {k: dict(v) for k, v in self.positions.items()},
            "drain": dict(self.drain),
        }


@asynccontextmanager
async def open_store(database_url: str) -> AsyncIterator[Store]:
    """`sqlite:PATH` (the embedded default) or `postgresql://...`."""
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:").removeprefix("//") or "trader.sqlite3"
        async with open_sqlite_store(path) as sqlite_store:
            yield sqlite_store
    else:
        try:
            pg_settings = PostgresSettings(url=database_url)
        except ValueError as exc:
            raise ConfigError(f"database_url: {exc}") from None
        async with open_postgres_store(pg_settings) as pg_store:
            yield pg_store


class _Capped:
    """Tracks at most `limit` markets in the market-data service (discovery may find thousands)."""

    def __init__(self, service: MarketDataService, limit: int, on_change: Callable[[], None]) -> None:
        self._service = service
        self._limit = limit
        self._on_change = on_change
        self.tracked: dict[str, Market] = {}

    def track(self, market: Market) -> object:
        if market.condition_id not in self.tracked and len(self.tracked) >= self._limit:
            return None
        self.tracked[market.condition_id] = market
        cell = self._service.track(market)
        self._on_change()
        return cell

    def untrack(self, condition_id: str) -> None:
        if self.tracked.pop(condition_id, None) is not None:
            self._service.untrack(condition_id)
            self._on_change()


class _Control:
    """What the HTTP server may ask of the engine (`EngineControl`)."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def readiness(self) -> Mapping[str, bool]:
        return self._engine.readiness()

    def status(self) -> Mapping[str, object]:
        return self._engine.status()

    async def emergency_stop(self, reason: str) -> None:
        await self._engine.emergency_stop(reason)

    async def resume(self) -> None:
        await self._engine.resume()


class _Engine:
    """The running parts, for the HTTP server, the metrics and the summary."""

    def __init__(self, settings: Settings, store: Store, books: Books, market_data: MarketDataService) -> None:
        self.settings = settings
        self.store = store
        self.books = books
        self.market_data = market_data
        self.execution: ExecutionService | None = None
        self.strategies: StrategyEngine | None = None
        self.events: Sequence[NegRiskEvent] = ()
        self.sim: SimVenue | None = None  # `--venue sim`: the in-process venue, for its own records
        self.http_url = ""
        self.opportunities: list[Opportunity] = []
        self.recent: list[dict[str, object]] = []

    def readiness(self) -> dict[str, bool]:
        now = trio.current_time()
        stats = self.market_data.statistics()
        max_age = self.settings.risk.max_book_age_ms / 1000
        tokens = list(self.books.tokens())
        fresh = [t for t in tokens if _fresh(t.health(now), max_age)]
        execution = self.execution
        venue_ok = stats.connected > 0
        if execution is not None and self.settings.run.live:
            venue_ok = venue_ok and str(execution.manager.breaker.statistics().state) != "OPEN"
        return {
            "books_fresh": bool(tokens) and len(fresh) * 10 >= len(tokens) * 9,
            "venue_reachable": venue_ok,
            "store_writable": bool(getattr(self.store, "available", True)),
            "trading_engine": execution is not None,
        }

    def status(self) -> dict[str, object]:
        document: dict[str, object] = {
            "mode": "live" if self.settings.run.live else "paper",
            "venue": str(self.settings.run.venue),
            "markets": len(self.books.markets),
            "market_data": _asdict(self.market_data.statistics()),
        }
        if self.execution is not None:
            document.update(self.execution.snapshot())
        if self.strategies is not None:
            document["strategies"] = self.strategies.status()
        document["recent_opportunities"] = self.recent[-20:]
        return document

    async def emergency_stop(self, reason: str) -> None:
        if self.execution is None:
            raise ConfigError("the engine is not trading yet")
        await self.execution.emergency_stop(reason)

    async def resume(self) -> None:
        if self.execution is not None:
            await self.execution.resume()

    def publish(self, event: object) -> None:
        """Analyzer events (opportunities) from the strategy engine: kept for /status and written to the store."""
        if isinstance(event, Opportunity):
            self.recent.append(_opportunity_json(event))
            del self.recent[:-100]
            if str(event.status) == "CLOSED":
                self.opportunities.append(event)


def _fresh(health: BookHealth, max_age_secs: float) -> bool:
    age = health.age_secs
    return health.ready and not health.suspect and age is not None and age <= max_age_secs


def _asdict(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _asdict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _asdict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_asdict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _opportunity_json(op: Opportunity) -> dict[str, object]:
    document = _asdict(op)
    assert isinstance(document, dict)
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in document.items()}


async def _flush_opportunities(engine: _Engine, period_secs: float = 1.0) -> None:
    """Closed opportunities go to the store in batches, off the strategy engine's path."""
    while True:
        await trio.sleep(period_secs)
        await _write_opportunities(engine)


async def _write_opportunities(engine: _Engine) -> None:
    batch, engine.opportunities = engine.opportunities, []
    if batch:
        try:
            await engine.store.record_opportunities([opportunity_record(op) for op in batch])
        except Exception as exc:  # a store outage must not stop trading; the records are logged
            log.error("opportunities_write_failed", count=len(batch), error=repr(exc))


async def _run_events(
    gamma: GammaClient, engine: _Engine, discovered: Callable[[], Discovery | None], period_secs: float
) -> None:
    """Keep the neg-risk events (and whether each is complete) current for the strategies."""
    while True:
        found = discovered()
        if found is not None and any(d.market.neg_risk for d in found.markets):
            try:
                with trio.fail_after(20):
                    engine.events = tuple(await gamma.neg_risk_events(found.markets))
            except Exception as exc:  # a failed refresh keeps the last known events
                log.warning("neg_risk_events_failed", error=repr(exc))
        await trio.sleep(period_secs)


async def run_trader(
    settings: Settings,
    *,
    stop: Callable[[], Awaitable[object]],
    abort: trio.Event | None = None,
    task_status: trio.TaskStatus[_Engine] = trio.TASK_STATUS_IGNORED,
) -> RunSummary:
    """Run the engine until `stop()` returns (or `settings.run.duration_secs` passes); drain; return the summary."""
    run = settings.run
    started_at = trio.current_time()
    signer = _signer(settings) if run.live else None
    exit_reason = "stopped"
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(run.database_url))
        services = await stack.enter_async_context(trio.open_nursery())
        sim, endpoints = await _endpoints(settings, services)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=_HTTP_BACKSTOP_SECS))

        books = Books()
        market_data = MarketDataService(websocket_factory(endpoints.ws_market), books, settings.market_data)
        md_scope, md_done = await services.start(_stoppable, market_data.run)
        engine = _Engine(settings, store, books, market_data)
        engine.sim = sim

        gamma = GammaClient(http, endpoints.gamma)
        latest: list[Discovery] = []
        live_venue: Any = None

        def markets_changed() -> None:
            if live_venue is not None:
                live_venue.add_markets(capped.tracked.values())

        capped = _Capped(market_data, settings.markets.max_markets, markets_changed)
        query = MarketQuery(
            slugs=settings.markets.slugs,
            condition_ids=settings.markets.condition_ids,
            token_ids=settings.markets.token_ids,
            tag_id=settings.markets.tag_id,
            category=settings.markets.category,
            min_liquidity=settings.markets.min_liquidity,
        )
        with trio.fail_after(60):
            first: Discovery = await services.start(
                partial(
                    run_market_refresh,
                    gamma,
                    query,
                    capped,
                    period_secs=settings.markets.refresh_secs,
                    on_refresh=latest.append,
                )
            )
        latest.append(first)
        log.info("markets_selected", found=len(first.markets), followed=len(capped.tracked))
        services.start_soon(_run_events, gamma, engine, lambda: latest[-1] if latest else None, 60.0)
        del latest[:-1]

        registry = CollectorRegistry()
        registry.register(EngineCollector(engine))
        tick_to_trade = TickToTrade(registry)
        app = OperatorApp(_Control(engine), registry, admin_token=settings.http.admin_token)
        http_url = await services.start(partial(run_http_server, app, settings.http))
        engine.http_url = http_url

        stored_positions = await store.load_positions()
        portfolio = Portfolio(cash=run.starting_cash_usd, positions=stored_positions)
        venue: Venue
        if signer is not None:
            credentials = _credentials(settings)
            live_venue = await stack.enter_async_context(
                open_polymarket_venue(
                    PolymarketVenueSettings(rest_url=endpoints.rest, ws_user_url=endpoints.ws_user),
                    signer,
                    credentials=credentials,
                )
            )
            live_venue.add_markets(capped.tracked.values())
            venue = live_venue
        else:
            paper = PaperVenue(
                lambda t: tb.book if (tb := books.get_token(t)) is not None else None,
                lambda t: books.markets[tb.condition_id].market if (tb := books.get_token(t)) is not None else None,
                cash=run.starting_cash_usd,
                settings=settings.paper,
                shares={p.token_id: p.quantity for p in stored_positions if p.quantity},
            )
            await services.start(follow_books, paper, books)
            venue = paper

        manager = OrderManager(
            venue,
            store,
            portfolio=portfolio,
            breaker=CircuitBreaker(settings.breaker, name="venue"),
            limiter=RateLimiter(settings.rate_limit),
            settings=settings.orders,
        )

        def on_order_event(event: object) -> None:
            if isinstance(event, OrderSubmitted) and books.last_change_at is not None:
                tick_to_trade.observe(trio.current_time() - books.last_change_at)

        manager.add_listener(on_order_event)
        send, receive = trio.open_memory_channel[Intent](run.intent_buffer)
        sniped = {m.condition_id for m in await store.load_sniped_markets()}
        strategies = build_strategies(
            sum_to_100=settings.sum_to_100,
            clipper=settings.clipper,
            sniper=settings.sniper,
            already_sniped=sniped,
        )
        espn: EspnPoller | None = None
        if settings.sniper.enabled:
            espn_settings = EspnSettings(
                **{**_fields(settings.espn), "base_url": endpoints.espn}  # the sim serves its own scoreboard
            )
            espn = EspnPoller(EspnClient(http, espn_settings.base_url), espn_settings)
            await services.start(espn.run)
        strategy_engine = StrategyEngine(
            books=books,
            strategies=strategies,
            analyzers=build_analyzers(settings.sum_deviation),
            intents=send,
            settings=settings.strategy_engine,
            events=lambda: engine.events,
            positions=portfolio,
            scoreboard=espn.latest if espn is not None else lambda: None,
            claim=store_claim(store),
            publish=engine.publish,
        )
        execution = ExecutionService(
            manager,
            RiskGate(settings.risk),
            receive,
            settings=settings.execution,
            book_health=book_health_from(books),
            tick_of=tick_from(books),
            marks=lambda: marks_at_mid(t.book for t in books.tokens()),
            on_intent_done=lambda intent: strategy_engine.finish(intent_key(intent)),
        )
        engine.execution = execution
        engine.strategies = strategy_engine
        services.start_soon(_flush_opportunities, engine)
        if abort is not None:
            services.start_soon(_abort_on, abort, execution)

        core = await stack.enter_async_context(trio.open_nursery())
        await core.start(execution.run)
        strategy_scope: trio.CancelScope = await core.start(strategy_engine.run)
        log.info(
            "engine_started",
            mode="live" if run.live else "paper",
            venue=str(run.venue),
            markets=len(capped.tracked),
            http=http_url,
            strategies=[s.name for s in strategies],
        )
        task_status.started(engine)

        exit_reason = await _wait_for_stop(stop, run.duration_secs)
        log.info("shutdown_started", reason=exit_reason)
        strategy_scope.cancel()  # 1. no new intents
        report = await execution.drain(  # 2. in-flight orders finish; resting orders cancelled (configurable)
            run.drain_secs, cancel_resting=run.cancel_resting_on_exit
        )
        with trio.move_on_after(2, shield=True):  # 3. flush what the store has not got yet
            await _write_opportunities(engine)
        summary = _summary(engine, manager, execution, report, exit_reason, trio.current_time() - started_at)
        core.cancel_scope.cancel()
        md_scope.cancel()  # 4. close the market connections while the venue (maybe the in-process sim) still answers
        with trio.move_on_after(3, shield=True):
            await md_done.wait()
        services.cancel_scope.cancel()
    log.info("engine_stopped", **{k: v for k, v in summary.to_json().items() if not isinstance(v, dict)})
    return summary


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


async def _abort_on(abort: trio.Event, execution: ExecutionService) -> None:
    await abort.wait()
    execution.abort()


async def _wait_for_stop(stop: Callable[[], Awaitable[object]], duration_secs: float | None) -> str:
    reason = "signal"
    with trio.move_on_after(math.inf if duration_secs is None else duration_secs) as timer:
        await stop()
    if timer.cancelled_caught:
        reason = "duration"
    return reason


async def _endpoints(settings: Settings, services: trio.Nursery) -> tuple[SimVenue | None, Endpoints]:
    if settings.run.venue is VenueKind.SIM:
        params = dict(p.split("=", 1) for p in settings.sim.params if "=" in p)
        sim: SimVenue = await services.start(
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
        return sim, Endpoints(urls.rest, urls.ws_market, urls.ws_user, urls.gamma, urls.espn)
    e = settings.endpoints
    return None, Endpoints(e.rest_url, e.ws_market_url, e.ws_user_url, e.gamma_url, e.espn_url)


def _signer(settings: Settings) -> OrderSigner:
    keys = settings.keys
    if keys.private_key is None:
        raise ConfigError("live trading needs TRADER_PRIVATE_KEY")
    try:
        return OrderSigner(keys.private_key.get(), signature_type=keys.signature_type, funder=keys.funder)
    except ValueError as exc:  # InputError names the field and never the key
        raise ConfigError(f"live trading keys: {exc}") from None


def _credentials(settings: Settings) -> ApiCredentials | None:
    keys = settings.keys
    given = (keys.api_key, keys.api_secret, keys.api_passphrase)
    if all(v is None for v in given):
        return None  # derived from the key (L1)
    if keys.api_key is None or keys.api_secret is None or keys.api_passphrase is None:
        raise ConfigError("give all three of TRADER_API_KEY, TRADER_API_SECRET and TRADER_API_PASSPHRASE, or none")
    return ApiCredentials(keys.api_key, keys.api_secret.get(), keys.api_passphrase.get())


def _fields(value: object) -> dict[str, Any]:
    assert dataclasses.is_dataclass(value)
    assert not isinstance(value, type)
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _summary(  # noqa: PLR0917
    engine: _Engine,
    manager: OrderManager,
    execution: ExecutionService,
    report: DrainReport,
    exit_reason: str,
    duration: float,
) -> RunSummary:
    stats = execution.statistics()
    orders = stats.orders
    portfolio = manager.portfolio
    marks = marks_at_mid(t.book for t in engine.books.tokens())
    unrealized = sum(
        (p.unrealized_pnl(marks[t]) for t, p in portfolio.positions.items() if p.quantity and t in marks), ZERO
    )
    opportunities = 0
    if engine.strategies is not None:
        for summary in engine.strategies.summaries().values():
            opportunities += int(getattr(summary, "count", 0) or 0)
    positions = {
        token: {"quantity": str(p.quantity), "realized_pnl": str(p.realized_pnl), "fees_paid": str(p.fees_paid)}
        for token, p in portfolio.positions.items()
        if p.quantity or p.realized_pnl
    }
    return RunSummary(
        exit_reason=exit_reason,
        mode="live" if engine.settings.run.live else "paper",
        venue=str(engine.settings.run.venue),
        duration_secs=duration,
        markets=len(engine.books.markets),
        orders_submitted=orders.submitted,
        fills=orders.fills,
        opportunities=opportunities,
        realized_pnl=portfolio.realized_pnl,
        unrealized_pnl=unrealized,
        fees_paid=portfolio.fees_paid,
        cash=portfolio.cash,
        open_orders_at_exit=len(report.open_orders_left),
        intents=stats.intents_received,
        intents_denied=dict(stats.intents_denied),
        arbitrage=dict(stats.arbitrage.by_status),
        positions=positions,
        drain={
            "tasks_finished": report.tasks_finished,
            "tasks_cancelled": report.tasks_cancelled,
            "canceled_orders": len(report.canceled_order_ids),
            "cancel_all_ok": report.cancel_all_ok,
        },
    )
