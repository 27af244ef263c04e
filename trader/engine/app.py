"""The supervisor: `trader run` as one Trio nursery tree (ARCHITECTURE.md).

```
run_trader
├── store                       (SQLite file or PostgreSQL), opened first, closed last
├── sinks                       each behind a bounded channel, flushed (bounded) after everything else stopped
│   ├── store writer            write-behind: intents written straight through, every other write queued (lossless)
│   ├── redis bus               `--redis-url`: pub/sub + capped stream (lossy, counted); the in-process bus always
│   └── slack notifier          when a webhook is set: fills, risk, emergency stops, disconnect storms, daily summary
└── services nursery            lives until the very end
    ├── simulated venue         `--venue sim` only: the whole exchange on loopback, in-process
    ├── market data service     one task per WS connection; books for everyone below
    ├── market refresh          Gamma discovery, periodically: new markets tracked, closed ones dropped
    ├── neg-risk events         which baskets are complete
    ├── paper fill feed         paper mode: trade prints and book changes into the paper venue
    ├── http server             /health /ready /metrics /status, POST /emergency-stop /resume
    ├── book summaries          top of book to the event bus at `bus.book_summary_secs`
    ├── store gate              PostgreSQL down: trading HALTED (`STORE_UNAVAILABLE`); back: resumed by itself
    ├── alerts                  reconnect counts -> disconnect storms; the daily summary at the risk-day reset
    └── live venue              live mode: REST + user channel + dead-man heartbeat (its own service nursery)
        └── core nursery
            ├── execution       risk gate -> order tasks, all inside ONE orders scope
            └── strategy engine book changes + 100 ms ticks -> intents (bounded channel) -> execution
```

Every domain event reaches the event bus (and Slack, for the alerts it knows) without waiting: order events, fills
and risk denials from the order manager, intents once written (write-ahead), risk state changes and daily-loss
breaches from the risk gate, risk events and emergency stops once recorded, opportunities from the analyzers, and
book summaries. None of the sinks can block trading; the store's writes wait (bounded) rather than being lost.

Restart (`trader.engine.restart`, before trading): the store is brought up to date with the venue (orders left
resting are cancelled, missing fills recorded, positions rebuilt from the trades when a write was lost); pending
intents are resolved by order id (the order manager). Nothing is sent again.

Shutdown (`stop` returns: SIGINT/SIGTERM, `--duration`, or a fatal error in a service): strategies are stopped
first (no new intents), execution drains (in-flight orders finish within `drain_secs`, shielded; resting orders are
cancelled at the venue unless configured to stay), then everything else is cancelled, the sinks are flushed (each
within a deadline), the store is closed, and a `RunSummary` is returned. `abort` (a second Ctrl+C) cuts the drain
short.

An emergency stop (HTTP, or a daily-loss breach) halts trading and cancels every order task and every resting order,
but leaves market data and the HTTP server running, so the operator still sees the market.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import structlog
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trader.config import Secret
from trader.domain.events import OrderSubmitted
from trader.domain.intents import Intent
from trader.domain.market import Market, NegRiskEvent
from trader.domain.positions import Portfolio, marks_at_mid
from trader.domain.risk import DailyLossBreached, RiskEvent, RiskStateChanged, TradingState
from trader.engine.books import BookHealth, Books
from trader.engine.breaker import BreakerState, CircuitBreaker
from trader.engine.execution import DrainReport, ExecutionService, book_health_from, tick_from
from trader.engine.market_data import MarketDataService
from trader.engine.order_manager import OrderManager
from trader.engine.rate_limit import RateLimiter
from trader.engine.restart import RestartReport, reconcile_at_start
from trader.engine.risk import RiskGate, RiskSettings
from trader.engine.strategy_engine import StrategyEngine, opportunity_record, store_claim
from trader.errors import ConfigError
from trader.integrations.bus import BusPublisher, BusStatistics, EmergencyStop, EventBus, MemoryBus, run_book_summaries
from trader.integrations.bus.base import BusEvent
from trader.integrations.bus.redis import RedisBus, RedisBusSettings, open_redis_bus
from trader.integrations.espn import EspnClient, EspnPoller
from trader.integrations.http_server import OperatorApp, run_http_server
from trader.integrations.metrics import EngineCollector, TickToTrade
from trader.integrations.sinks import SinkSettings, SinkStatistics, StoreSink, WriteBehindStore, open_sink
from trader.integrations.slack import (
    DailySummary,
    DisconnectStormDetector,
    SlackNotifier,
    SlackSettings,
    open_slack_notifier,
)
from trader.integrations.store.base import (
    IntentRecord,
    RiskEventRecord,
    Store,
    StoreError,
)
from trader.integrations.store.journal import IntentJournal, replay_journal
from trader.integrations.store.postgres import PostgresSettings, PostgresStore, open_postgres_store
from trader.integrations.store.sqlite import open_sqlite_store
from trader.integrations.store.urls import sqlite_path
from trader.settings import Settings, SlackAlertSettings, StoreSettings, VenueKind
from trader.strategies import build_analyzers, build_strategies
from trader.strategies.base import intent_key
from trader.strategies.sum_deviation import Opportunity
from trader.venues.base import Venue
from trader.venues.errors import VenueError
from trader.venues.paper import PaperVenue, follow_books
from trader.venues.polymarket.gamma import Discovery, GammaClient, MarketQuery, run_market_refresh
from trader.venues.polymarket.market_ws import websocket_factory
from trader.venues.polymarket.paper_ids import paper_order_id
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


#: Reason codes of the supervisor.
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"  # the store cannot record intents: trading halted until it is back
STORE_AVAILABLE = "STORE_AVAILABLE"  # ... and resumed by itself

#: Bounded flushes at exit: the bus and Slack (lossy sinks; the store has its own setting).
_SINK_FLUSH_SECS = 5.0

T = TypeVar("T")


def intent_journal_path(database_url: str, settings: StoreSettings | None = None) -> Path | None:
    """Where the order path's write-ahead goes first (`StoreSettings.intent_journal`): "auto" is `<file>-intents`
    next to a SQLite file, and none for PostgreSQL or an in-memory SQLite; "off" is none; anything else is the
    journal's path. None: intents are written straight to the database."""
    choice = (settings or StoreSettings()).intent_journal
    if choice == "off":
        return None
    if choice != "auto":
        return Path(choice)
    path = sqlite_path(database_url)
    if path is None or str(path) == ":memory:":
        return None
    return path.with_name(f"{path.name}-intents")


@asynccontextmanager
async def open_intent_journal(path: Path | None, store: Store) -> AsyncIterator[IntentJournal | None]:
    """Replay the journal at `path` into `store` (intents a crash left only there), then keep it open for the
    run; None when there is no journal."""
    if path is None:
        yield None
        return
    replay = await replay_journal(path, store)
    log.info("intent_journal_open", path=str(path), restored=replay.restored, torn=replay.torn)
    journal = IntentJournal.open(path)
    try:
        yield journal
    finally:
        journal.close()


@asynccontextmanager
async def open_store(database_url: str, settings: StoreSettings | None = None) -> AsyncIterator[Store]:
    """`sqlite:PATH` (the embedded default), a plain path, or `postgresql://...` (`settings` tune the connection)."""
    s = settings or StoreSettings()
    path = sqlite_path(database_url)
    if path is not None:
        async with open_sqlite_store(path, synchronous=s.sqlite_synchronous) as sqlite_store:
            yield sqlite_store
    else:
        try:
            pg_settings = PostgresSettings(
                url=database_url,
                schema=s.schema,
                connect_timeout_secs=s.connect_timeout_secs,
                commit_timeout_secs=s.commit_timeout_secs,
                ping_interval_secs=s.ping_interval_secs,
                reconnect_initial_secs=s.reconnect_initial_secs,
                reconnect_max_secs=s.reconnect_max_secs,
            )
        except ValueError as exc:
            raise ConfigError(f"database_url: {exc}") from None
        async with open_postgres_store(pg_settings) as pg_store:
            yield pg_store


@asynccontextmanager
async def _exit_within(secs: float, manager: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter `manager`. Leaving normally, its exit (a sink's flush) is shielded from the caller's cancellation but
    bounded by `secs`; leaving by an exception, it exits as it does by itself (a sink then stops at once)."""
    with trio.CancelScope() as scope:
        async with manager as value:
            yield value  # an exception here propagates untouched: this scope was never cancelled
            scope.deadline = trio.current_time() + secs
            scope.shield = True
    if scope.cancelled_caught:
        log.error("sink_flush_timed_out", secs=secs)


class EngineStore(WriteBehindStore):
    """The engine's store: writes queued behind a lossless sink, claims straight through, and every written intent
    and recorded risk event handed to `on_record` (the event bus).

    Intents are the write-ahead: the order is sent only once its intent is written. With an `IntentJournal` that
    write is one append to the journal, and the database row is queued like the other writes (the queue is FIFO,
    so it lands before any later write about the intent); without one, the intent goes straight to the database.
    """

    def __init__(
        self,
        store: Store,
        runner: Any,
        sink: StoreSink,
        on_record: Callable[[object], None],
        journal: IntentJournal | None = None,
    ) -> None:
        super().__init__(store, runner, sink)
        self._on_record = on_record
        self.journal = journal

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        journal = self.journal
        if journal is None:
            await super().record_intents(intents)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            rows = list(intents)
            journal.append(rows)  # the write-ahead: from here on the intent survives the engine dying
            try:
                await self._queue("record_intents", partial(self._store_journaled, journal, rows), at_once=True)
            except BaseException:
                # Not queued (the sink closed, or cancelled while waiting for room): this raises, so the order is
                # not sent, and no row will come for these lines. Let them go, or the journal could never be emptied.
                journal.stored(len(rows))
                raise
        for intent in intents:
            self._on_record(intent)

    async def _store_journaled(self, journal: IntentJournal, rows: list[IntentRecord]) -> None:
        try:
            await self.store.record_intents(rows)
        except StoreError:
            if self.store.available:  # refused for good (a duplicate): the sink counts and logs it
                journal.stored(len(rows))
            raise  # else the store is down: retried later, and the journal keeps them meanwhile
        journal.stored(len(rows))

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await super().record_risk_event(event)
        self._on_record(event)


@asynccontextmanager
async def open_engine_store(
    store: Store,
    settings: SinkSettings | None = None,
    *,
    on_record: Callable[[object], None] = lambda _: None,
    journal: IntentJournal | None = None,
) -> AsyncIterator[EngineStore]:
    """`store` behind a lossless write-behind sink for the block; a normal exit flushes the queued writes."""
    sink = StoreSink(store)
    async with open_sink("store", sink, settings, lossless=True) as runner:
        yield EngineStore(store, runner, sink, on_record, journal)


class _FanOut:
    """One `EventBus` that hands each event to several (the in-process bus, and Redis when configured)."""

    def __init__(self, buses: Sequence[EventBus]) -> None:
        self.buses = tuple(buses)

    def publish(self, event: BusEvent) -> bool:
        ok = True
        for bus in self.buses:
            ok = bus.publish(event) and ok
        return ok

    def statistics(self) -> BusStatistics:
        stats = [bus.statistics() for bus in self.buses]
        return BusStatistics(
            published=max(s.published for s in stats),
            delivered=sum(s.delivered for s in stats),
            dropped=sum(s.dropped for s in stats),
            undelivered=sum(s.undelivered for s in stats),
            available=all(s.available for s in stats),
        )


class Outputs:
    """Engine events out: the event bus (in-process, plus Redis when configured) and Slack. Never blocks.

    Call it with any engine event (it is an order-manager listener); `record` takes the store's records (intents,
    risk events) and turns a recorded emergency stop into an `EmergencyStop` event."""

    def __init__(self, memory: MemoryBus, redis: RedisBus | None = None, slack: SlackNotifier | None = None) -> None:
        self.memory = memory
        self.redis = redis
        self.slack = slack
        self.publisher = BusPublisher(_FanOut([memory] if redis is None else [memory, redis]))
        self.stop_source = "risk"  # who asked for the next emergency stop (the HTTP route says "http")

    def __call__(self, event: object) -> None:
        self.publisher(event)
        if self.slack is not None:
            self.slack.notify(event)

    def record(self, record: object) -> None:
        self(record)
        if isinstance(record, RiskEventRecord) and record.kind == "EMERGENCY_STOP":
            detail = record.detail
            cancelled = detail.get("orders_canceled", 0)
            self(
                EmergencyStop(
                    reason=str(detail.get("reason", record.reason_code)),
                    source=self.stop_source,
                    orders_cancelled=cancelled if isinstance(cancelled, int) else 0,
                    ts=record.ts_ns / 1e9,
                )
            )
            self.stop_source = "risk"

    def statistics(self) -> dict[str, object]:
        document: dict[str, object] = {
            "published": self.publisher.published,
            "dropped": self.publisher.dropped,
            "skipped": self.publisher.skipped,
            "memory": _asdict(self.memory.statistics()),
        }
        if self.redis is not None:
            document["redis"] = _asdict(self.redis.sink_statistics())
        if self.slack is not None:
            document["slack"] = _asdict(self.slack.statistics())
        return document


class ObservedRiskGate(RiskGate):
    """The risk gate, telling `on_event` about every state change and daily-loss breach (for the bus and Slack)."""

    def __init__(self, settings: RiskSettings | None, on_event: Callable[[object], None]) -> None:
        super().__init__(settings)
        self._on_event = on_event

    def set_state(self, state: TradingState, *, reason: str, ts: float) -> RiskStateChanged | None:
        changed = super().set_state(state, reason=reason, ts=ts)
        if changed is not None:
            self._on_event(changed)
        return changed

    def mark_pnl(self, *, realized: Decimal, unrealized: Decimal, wall: dt.datetime) -> list[RiskEvent]:
        events = super().mark_pnl(realized=realized, unrealized=unrealized, wall=wall)
        for event in events:
            if isinstance(event, DailyLossBreached):  # the state change was told by set_state
                self._on_event(event)
        return events


def _slack_settings(slack: SlackAlertSettings, webhook: Secret) -> SlackSettings:
    try:
        return SlackSettings(
            webhook_url=webhook,
            label=slack.label,
            min_interval_secs=slack.min_interval_secs,
            dedupe_window_secs=slack.dedupe_window_secs,
            timeout_secs=slack.timeout_secs,
            fills=slack.fills,
        )
    except ValueError as exc:
        raise ConfigError(f"slack: {exc}") from None


def _redis_settings(settings: Settings, url: str) -> RedisBusSettings:
    r = settings.redis
    try:
        return RedisBusSettings(
            url=url,
            prefix=r.prefix,
            stream_maxlen=r.stream_maxlen,
            socket_timeout_secs=r.socket_timeout_secs,
            connect_timeout_secs=r.connect_timeout_secs,
        )
    except ValueError as exc:
        raise ConfigError(f"redis: {exc}") from None


# -- store outages -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class StoreGate:
    """What the store gate did: outages seen, and whether trading is halted by it right now."""

    outages: int = 0
    halted: bool = False
    halted_at: float | None = None


async def run_store_gate(
    store: PostgresStore,
    execution: ExecutionService,
    gate: StoreGate,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """While the store cannot record intents, trade nothing: the risk gate is HALTED and the order manager's sending
    blocked, both with reason `STORE_UNAVAILABLE`. When the store is back, both are lifted, unless something else
    (an emergency stop, a drain) took over meanwhile: then the operator decides."""
    manager, risk = execution.manager, execution.risk
    task_status.started()
    while True:
        await store.wait_unavailable()
        gate.outages += 1
        stops = execution.statistics().emergency_stops
        if manager.sending_blocked is None:
            manager.block_sending(STORE_UNAVAILABLE)
        halted = risk.halt(reason=STORE_UNAVAILABLE, ts=manager.now()) is not None
        gate.halted, gate.halted_at = True, trio.current_time()
        log.error("trading_halted", reason=STORE_UNAVAILABLE)
        await store.wait_available()
        if manager.sending_blocked == STORE_UNAVAILABLE:
            manager.allow_sending()
        resumed = False
        if halted and risk.state is TradingState.HALTED and execution.statistics().emergency_stops == stops:
            resumed = risk.resume(reason=STORE_AVAILABLE, ts=manager.now()) is not None
        gate.halted = False
        log.warning("store_back", trading_resumed=resumed, down_secs=round(trio.current_time() - gate.halted_at, 3))


# -- alerts --------------------------------------------------------------------------------------------------------


async def _watch_disconnects(
    counts: Callable[[], Mapping[str, int]],
    detectors: Mapping[str, DisconnectStormDetector],
    emit: Callable[[object], None],
    period_secs: float = 1.0,
) -> NoReturn:
    """Feed every new reconnect (market channel, user channel) to its storm detector; a storm is an alert."""
    last = dict(counts())
    while True:
        await trio.sleep(period_secs)
        now, wall = trio.current_time(), time.time()
        for source, count in counts().items():
            detector = detectors.get(source)
            for _ in range(max(0, count - last.get(source, 0))):
                storm = None if detector is None else detector.record(now, ts=wall)
                if storm is not None:
                    log.warning("disconnect_storm", source=source, disconnects=storm.disconnects)
                    emit(storm)
            last[source] = count


def _next_reset(risk: RiskSettings, wall: dt.datetime) -> dt.datetime:
    reset = dt.datetime.combine(wall.date(), risk.daily_reset_utc, tzinfo=dt.UTC)
    return reset if reset > wall else reset + dt.timedelta(days=1)


class _DailyCounts:
    """Orders and fills since the risk day began, from the order manager's running totals."""

    def __init__(self, manager: OrderManager) -> None:
        self._manager = manager
        stats = manager.statistics()
        self._orders, self._fills = stats.submitted, stats.fills

    def summary(self, day: dt.date, marks: Mapping[str, Decimal], *, reset: bool) -> DailySummary:
        stats, portfolio = self._manager.statistics(), self._manager.portfolio
        summary = DailySummary(
            day=day,
            realized_pnl=portfolio.realized_pnl,
            unrealized_pnl=portfolio.marked_unrealized_pnl(marks),
            fees=portfolio.fees_paid,
            fills=stats.fills - self._fills,
            orders=stats.submitted - self._orders,
            ts=time.time(),
        )
        if reset:
            self._orders, self._fills = stats.submitted, stats.fills
        return summary


async def _daily_summaries(
    counts: _DailyCounts, risk: RiskGate, marks: Callable[[], Mapping[str, Decimal]], emit: Callable[[object], None]
) -> NoReturn:
    """At each risk-day reset (`risk.daily_reset_utc`), the day's summary."""
    while True:
        wall = dt.datetime.now(dt.UTC)
        day = risk.risk_day(wall)
        await trio.sleep((_next_reset(risk.settings, wall) - wall).total_seconds() + 0.001)
        emit(counts.summary(day, marks(), reset=True))


# -- metrics -------------------------------------------------------------------------------------------------------


class SinkCollector(Collector):
    """Prometheus metrics of the store and the sinks (read from their statistics at scrape time).

    `trader_store_available` (gauge), `trader_store_outages_total`, `trader_sink_queued{sink}`,
    `trader_sink_available{sink}` (gauges), `trader_sink_delivered_total{sink}`, `trader_sink_dropped_total{sink}`,
    `trader_sink_undelivered_total{sink}`, `trader_sink_failures_total{sink}`, `trader_bus_events_total{outcome}`.
    """

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        engine = self._engine
        available = GaugeMetricFamily("trader_store_available", "1 while the store can record intents")
        available.add_metric([], 1.0 if engine.store_available() else 0.0)
        yield available
        outages = engine.store_gate.outages
        raw = engine.raw_store
        if isinstance(raw, PostgresStore):
            outages = max(outages, raw.statistics().outages)
        yield CounterMetricFamily("trader_store_outages", "times the store became unavailable", value=outages)
        sinks = engine.sink_statistics()
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "queued": GaugeMetricFamily("trader_sink_queued", "items waiting in a sink's channel", labels=["sink"]),
            "up": GaugeMetricFamily("trader_sink_available", "1 while a sink delivers", labels=["sink"]),
            "delivered": CounterMetricFamily("trader_sink_delivered", "items a sink delivered", labels=["sink"]),
            "dropped": CounterMetricFamily("trader_sink_dropped", "items refused: channel full", labels=["sink"]),
            "undelivered": CounterMetricFamily(
                "trader_sink_undelivered", "items a lossy sink could not deliver (server down)", labels=["sink"]
            ),
            "failures": CounterMetricFamily("trader_sink_failures", "failed delivery attempts", labels=["sink"]),
        }
        for name, s in sorted(sinks.items()):
            families["queued"].add_metric([name], s.queued + s.pending)
            families["up"].add_metric([name], 1.0 if s.available else 0.0)
            families["delivered"].add_metric([name], s.delivered)
            families["dropped"].add_metric([name], s.dropped)
            families["undelivered"].add_metric([name], s.undelivered)
            families["failures"].add_metric([name], s.failures)
        yield from families.values()
        outputs = engine.outputs
        if outputs is not None:
            events = CounterMetricFamily("trader_bus_events", "engine events offered to the bus", labels=["outcome"])
            events.add_metric(["published"], outputs.publisher.published)
            events.add_metric(["dropped"], outputs.publisher.dropped)
            events.add_metric(["skipped"], outputs.publisher.skipped)
            yield events


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


class _Engine:
    """The running parts, for the HTTP server (it is the server's `EngineControl`), the metrics and the summary."""

    def __init__(self, settings: Settings, store: Store, books: Books, market_data: MarketDataService) -> None:
        self.settings = settings
        self.store = store  # what the engine writes to (the write-behind store)
        self.raw_store: Store = store  # the database itself
        self.books = books
        self.market_data = market_data
        self.execution: ExecutionService | None = None
        self.strategies: StrategyEngine | None = None
        self.outputs: Outputs | None = None
        self.store_gate = StoreGate()
        self.restart: RestartReport | None = None
        self.events: Sequence[NegRiskEvent] = ()
        self.sim: SimVenue | None = None  # `--venue sim`: the in-process venue, for its own records
        self.http_url = ""
        self.opportunities: list[Opportunity] = []
        self.recent: list[dict[str, object]] = []

    def store_available(self) -> bool:
        return self.store.available

    def sink_statistics(self) -> dict[str, SinkStatistics]:
        sinks: dict[str, SinkStatistics] = {}
        if isinstance(self.store, WriteBehindStore):
            sinks["store"] = self.store.sink_statistics()
        outputs = self.outputs
        if outputs is not None and outputs.redis is not None:
            sinks["redis"] = outputs.redis.sink_statistics()
        if outputs is not None and outputs.slack is not None:
            sinks["slack"] = outputs.slack.statistics().sink
        return sinks

    def readiness(self) -> dict[str, bool]:
        now = trio.current_time()
        stats = self.market_data.statistics()
        max_age = self.settings.risk.max_book_age_ms / 1000
        tokens = list(self.books.tokens())
        fresh = [t for t in tokens if _fresh(t.health(now), max_age)]
        execution = self.execution
        venue_ok = stats.connected > 0
        if execution is not None and self.settings.run.live:
            venue_ok = venue_ok and execution.manager.breaker.statistics().state is not BreakerState.OPEN
        return {
            "books_fresh": bool(tokens) and len(fresh) * 10 >= len(tokens) * 9,
            "venue_reachable": venue_ok,
            "store_writable": self.store_available(),
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
        store: dict[str, object] = {
            "available": self.store_available(),
            "halted_trading": self.store_gate.halted,
            "outages": self.store_gate.outages,
            "statistics": _asdict(self.raw_store.statistics()),
        }
        document["store"] = store
        document["sinks"] = {name: _asdict(s) for name, s in self.sink_statistics().items()}
        if self.outputs is not None:
            document["bus"] = self.outputs.statistics()
        if self.restart is not None:
            document["restart"] = _asdict(self.restart)
        document["recent_opportunities"] = self.recent[-20:]
        return document

    async def emergency_stop(self, reason: str) -> None:
        if self.execution is None:
            raise ConfigError("the engine is not trading yet")
        if self.outputs is not None:
            self.outputs.stop_source = "http"
        await self.execution.emergency_stop(reason)

    async def resume(self) -> None:
        if self.execution is not None:
            await self.execution.resume()

    def publish(self, event: object) -> None:
        """Analyzer events (opportunities) from the strategy engine: to the bus, kept for /status, and (closed ones)
        written to the store."""
        if self.outputs is not None:
            self.outputs(event)
        if isinstance(event, Opportunity):
            self.recent.append(_opportunity_json(event))
            del self.recent[:-100]
            if str(event.status) == "CLOSED":
                self.opportunities.append(event)


def _fresh(health: BookHealth, max_age_secs: float) -> bool:
    return health.usable and health.age_secs is not None and health.age_secs <= max_age_secs


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
    signer = settings.keys.signer("live trading") if run.live else None
    exit_reason = "stopped"
    async with AsyncExitStack() as stack:
        raw_store = await stack.enter_async_context(open_store(run.database_url, settings.store))
        memory_bus = MemoryBus(keep_last=settings.bus.keep_last)
        redis_bus: RedisBus | None = None
        if run.redis_url is not None:
            redis_bus = await stack.enter_async_context(
                _exit_within(
                    _SINK_FLUSH_SECS, open_redis_bus(_redis_settings(settings, run.redis_url), settings.redis_sink)
                )
            )
        slack: SlackNotifier | None = None
        webhook = settings.slack.webhook_url
        if webhook is not None:
            slack = await stack.enter_async_context(
                _exit_within(
                    _SINK_FLUSH_SECS, open_slack_notifier(_slack_settings(settings.slack, webhook), settings.slack_sink)
                )
            )
        outputs = Outputs(memory_bus, redis_bus, slack)
        journal = await stack.enter_async_context(
            open_intent_journal(intent_journal_path(run.database_url, settings.store), raw_store)
        )
        store = await stack.enter_async_context(
            _exit_within(
                settings.store.flush_secs,
                open_engine_store(raw_store, settings.store_sink, on_record=outputs.record, journal=journal),
            )
        )
        services = await stack.enter_async_context(trio.open_nursery())
        sim, endpoints = await _endpoints(settings, services)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=_HTTP_BACKSTOP_SECS))

        books = Books()
        market_data = MarketDataService(websocket_factory(endpoints.ws_market), books, settings.market_data)
        md_scope, md_done = await services.start(_stoppable, market_data.run)
        engine = _Engine(settings, store, books, market_data)
        engine.raw_store = raw_store
        engine.outputs = outputs
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
        registry.register(SinkCollector(engine))
        tick_to_trade = TickToTrade(registry)
        app = OperatorApp(engine, registry, admin_token=settings.http.admin_token)
        http_url = await services.start(partial(run_http_server, app, settings.http))
        engine.http_url = http_url

        venue: Venue
        if signer is not None:
            credentials = settings.keys.credentials()
            live_venue = await stack.enter_async_context(
                open_polymarket_venue(
                    PolymarketVenueSettings(rest_url=endpoints.rest, ws_user_url=endpoints.ws_user),
                    signer,
                    credentials=credentials,
                )
            )
            live_venue.add_markets(capped.tracked.values())
        # Restart: bring the store up to date with the venue, then rebuild the state from it.
        try:
            engine.restart = await reconcile_at_start(
                raw_store, live_venue, lookback_secs=settings.orders.trades_lookback_secs
            )
        except (VenueError, trio.TooSlowError) as exc:  # the order manager still resolves pending intents by id
            log.error("restart_reconcile_failed", error=repr(exc))
        stored_positions = await store.load_positions()
        portfolio = Portfolio(cash=run.starting_cash_usd, positions=stored_positions)
        if live_venue is not None:
            venue = live_venue
        else:
            paper = PaperVenue(
                lambda t: tb.book if (tb := books.get_token(t)) is not None else None,
                lambda t: books.markets[tb.condition_id].market if (tb := books.get_token(t)) is not None else None,
                order_ids=paper_order_id,
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
        manager.add_listener(outputs)  # order events, fills, risk denials -> bus and Slack
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
            espn_settings = dataclasses.replace(settings.espn, base_url=endpoints.espn)  # the sim serves its own
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
        risk = ObservedRiskGate(settings.risk, outputs)
        marks = partial(_marks, books)
        execution = ExecutionService(
            manager,
            risk,
            receive,
            settings=settings.execution,
            book_health=book_health_from(books),
            tick_of=tick_from(books),
            marks=marks,
            on_intent_done=lambda intent: strategy_engine.finish(intent_key(intent)),
        )
        engine.execution = execution
        engine.strategies = strategy_engine
        services.start_soon(_flush_opportunities, engine)
        if abort is not None:
            services.start_soon(_abort_on, abort, execution)
        if isinstance(raw_store, PostgresStore):
            await services.start(run_store_gate, raw_store, execution, engine.store_gate)
        if settings.bus.book_summary_secs > 0:
            await services.start(
                partial(run_book_summaries, books, outputs, period_secs=settings.bus.book_summary_secs)
            )
        daily = _DailyCounts(manager)  # storms and daily summaries go to the bus, and to Slack when it is on
        detectors = {
            source: DisconnectStormDetector(
                source, threshold=settings.slack.storm_disconnects, window_secs=settings.slack.storm_window_secs
            )
            for source in ("market", "user")
        }
        services.start_soon(_watch_disconnects, partial(_reconnects, market_data, live_venue), detectors, outputs)
        if settings.slack.daily_summary:
            services.start_soon(_daily_summaries, daily, risk, marks, outputs)

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
            store="postgresql" if isinstance(raw_store, PostgresStore) else "sqlite",
            redis=redis_bus is not None,
            slack=slack is not None,
        )
        task_status.started(engine)

        exit_reason = await _wait_for_stop(stop, run.duration_secs)
        log.info("shutdown_started", reason=exit_reason)
        strategy_scope.cancel()  # 1. no new intents
        report = await execution.drain(  # 2. in-flight orders finish; resting orders cancelled (configurable)
            run.drain_secs, cancel_resting=run.cancel_resting_on_exit
        )
        with trio.move_on_after(2, shield=True):  # 3. hand what the store has not got yet to its writer
            await _write_opportunities(engine)
        summary = _summary(engine, manager, execution, report, exit_reason, trio.current_time() - started_at)
        if settings.slack.daily_summary:
            outputs(daily.summary(risk.risk_day(dt.datetime.now(dt.UTC)), marks(), reset=False))
        core.cancel_scope.cancel()
        md_scope.cancel()  # 4. close the market connections while the venue (maybe the in-process sim) still answers
        with trio.move_on_after(3, shield=True):
            await md_done.wait()
        services.cancel_scope.cancel()
        # 5. leaving the stack: the sinks flush (store, Slack, Redis; each bounded), then the store closes
    log.info("engine_stopped", **{k: v for k, v in summary.to_json().items() if not isinstance(v, dict)})
    return summary


def _marks(books: Books) -> dict[str, Decimal]:
    return marks_at_mid(t.book for t in books.tokens())


def _reconnects(market_data: MarketDataService, live_venue: Any) -> dict[str, int]:
    counts = {"market": market_data.statistics().reconnects}
    if live_venue is not None:
        counts["user"] = sum(s.reconnects for s in live_venue.statistics().user_streams)
    return counts


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
    marks = _marks(engine.books)
    unrealized = portfolio.marked_unrealized_pnl(marks)
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
