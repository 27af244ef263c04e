"""The supervisor: `trader run` as one Trio nursery tree, and the order in which it shuts down.

```
run_trader
└── sinks                  open_sinks: store, intent journal, write-behind store, in-process bus, Redis, Slack
    └── http client        httpx, shared by Gamma discovery and ESPN
        └── venue side     open_venue: the sim (--venue sim), market data, discovery, neg-risk events, the live or
            │              paper venue, the restart reconciliation
            └── core       open_core: order manager, ESPN, execution (ONE orders scope), strategy engine
                └── operator   http server (GET / the dashboard, /health /ready /metrics /status,
                               POST /emergency-stop /resume), dashboard equity sampler, status lines,
                               book summaries, store gate, venue gate, disconnect storms, daily summaries,
                               abort watch
```

Each `open_*` is an async context manager that owns its nursery and yields a complete, typed object; this module
only nests them, builds the control facade (`Control`) and the metrics, and runs the shutdown.

Every domain event reaches the event bus (and Slack, for the alerts it knows) without waiting: order events, fills
and risk denials from the order manager, intents once written (write-ahead), risk state changes and daily-loss
breaches from the risk gate, risk events and emergency stops once recorded, opportunities from the analyzers, and
book summaries. None of the sinks can block trading; the store's writes wait (bounded) rather than being lost.

Restart (`trader.engine.restart`, before trading): the store is brought up to date with the venue (orders left
resting are cancelled, missing fills recorded, positions rebuilt from the trades when a write was lost); pending
intents are resolved by order id (the order manager). Nothing is sent again.

Shutdown (`stop` returns: SIGINT/SIGTERM, `--duration`, or a fatal error in a service):
1. the strategies stop (no new intents);
2. execution drains: in-flight orders finish within `run.drain_secs` (shielded); resting orders are cancelled at
   the venue unless `run.cancel_resting_on_exit` is off;
3. the last closed opportunities go to the store's writer; the summary is taken;
4. the operator services stop, then the core;
5. the venue side closes: market data first (while the venue, maybe the in-process sim, still answers), then the
   live venue, then the sim;
6. the sinks flush (store, Slack, Redis; each within its deadline), then the store closes.
`abort` (a second Ctrl+C) cuts the drain short.

Active/standby (`ha.enabled`, docs/ha.md): `_Pair` keeps the market side warm and opens the trading side and the core
for each term this engine leads (see its docstring).

An emergency stop (HTTP, or a daily-loss breach) halts trading and cancels every order task and every resting order,
but leaves market data and the HTTP server running, so the operator still sees the market.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import httpx
import structlog
import trio
from prometheus_client import CollectorRegistry

from trader.app.alerts import (
    DailyCounts,
    StoreGate,
    TradingHolds,
    VenueGate,
    daily_summaries,
    run_store_gate,
    run_venue_gate,
    watch_disconnects,
)
from trader.app.config import Settings, check_ha
from trader.app.control import Control, RunningEngine, log_status_lines
from trader.app.core import open_core
from trader.app.dashboard import Dashboard, build_web_app
from trader.app.ha import LeadershipCollector, PairControl, PairDashboard, PairWeb, open_leadership
from trader.app.metrics import EngineCollector, SinkCollector, TickToTrade
from trader.app.sinks import Sinks, open_sinks
from trader.app.summary import RunSummary, build_summary, check_wallet, standby_summary
from trader.app.venue import MarketSide, open_market_side, open_trading_side, open_venue
from trader.engine.execution import ExecutionService
from trader.engine.leadership import Leadership
from trader.engine.order_manager.guard import NotLeader
from trader.integrations.bus import run_book_summaries
from trader.integrations.http_server import OperatorApp, run_http_server
from trader.integrations.slack import DisconnectStormDetector
from trader.integrations.store.base import StoreError
from trader.venues.errors import VenueError
from trader.venues.polymarket.signing import OrderSigner, preload_transaction_signing

__all__ = ["run_trader"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


async def run_trader(
    settings: Settings,
    *,
    stop: Callable[[], Awaitable[object]],
    abort: trio.Event | None = None,
    task_status: trio.TaskStatus[RunningEngine] = trio.TASK_STATUS_IGNORED,
) -> RunSummary:
    """Run the engine until `stop()` returns (or `settings.run.duration_secs` passes); drain; return the summary."""
    check_ha(settings)
    run = settings.run
    started_at = trio.current_time()
    signer = settings.keys.signer("live trading") if run.live else None
    registry = CollectorRegistry()
    tick_to_trade = TickToTrade(registry)
    if settings.ha.enabled:
        pair = _Pair(settings, signer, registry, tick_to_trade, abort, started_at)
        return await pair.run(stop, task_status)
    async with (
        open_sinks(settings) as sinks,
        httpx.AsyncClient(timeout=settings.supervisor.http_backstop_secs) as http,
        open_venue(settings, http, sinks.store, signer) as venue,
        open_core(settings, sinks, venue, http, on_submitted=tick_to_trade.observe) as core,
    ):
        control = Control(
            settings=settings, sinks=sinks, venue=venue, core=core, store_gate=StoreGate(), venue_gate=VenueGate()
        )
        registry.register(EngineCollector(control))
        registry.register(SinkCollector(control))
        async with trio.open_nursery() as operator:
            dashboard = Dashboard(control)
            await operator.start(dashboard.run)
            operator_routes = OperatorApp(control, registry, admin_token=settings.http.admin_token)
            app = build_web_app(dashboard, operator_routes)  # GET / (the page) and its feed, then the routes
            http_url = await operator.start(partial(run_http_server, app, settings.http))
            daily = await _start_operator_services(operator, settings, control, abort)
            log.info(
                "engine_started",
                mode=control.mode,
                venue=str(run.venue),
                markets=len(venue.tracked),
                http=http_url,
                strategies=[s.name for s in core.strategies],
                store="postgresql" if sinks.postgres is not None else "sqlite",
                redis=sinks.outputs.redis is not None,
                slack=sinks.outputs.slack is not None,
            )
            task_status.started(RunningEngine(control=control, http_url=http_url))

            exit_reason = await _wait_for_stop(stop, run.duration_secs)
            log.info("shutdown_started", reason=exit_reason)
            summary = await _shut_down(settings, control, daily, exit_reason, trio.current_time() - started_at)
            operator.cancel_scope.cancel()
        # leaving the `async with`: the core stops, the venue side closes (market data first), the sinks flush
    log.info("engine_stopped", **{k: v for k, v in summary.to_json().items() if not isinstance(v, dict)})
    return summary


async def _start_operator_services(
    operator: trio.Nursery, settings: Settings, control: Control, abort: trio.Event | None
) -> DailyCounts:
    """The services around the core that only watch it or alert about it."""
    sinks, venue, core = control.sinks, control.venue, control.core
    if abort is not None:
        operator.start_soon(_abort_on, abort, core.execution)
    holds = TradingHolds(core.execution)  # the store gate and the venue gate: trading resumes when neither holds
    if sinks.postgres is not None:
        await operator.start(partial(run_store_gate, sinks.postgres, core.execution, control.store_gate, holds=holds))
    await operator.start(
        partial(
            run_venue_gate,
            core.execution,
            control.venue_gate,
            sinks.outputs,
            holds=holds,
            on_healthy=core.funds.request_refresh,
        )
    )
    if settings.run.status_line_secs > 0:
        operator.start_soon(log_status_lines, control.status_line, settings.run.status_line_secs)
    if settings.bus.book_summary_secs > 0:
        await operator.start(
            partial(run_book_summaries, venue.books, sinks.outputs, period_secs=settings.bus.book_summary_secs)
        )
    daily = DailyCounts(core.manager)  # storms and daily summaries go to the bus, and to Slack when it is on
    slack = settings.slack
    detectors = {
        source: DisconnectStormDetector(source, threshold=slack.storm_disconnects, window_secs=slack.storm_window_secs)
        for source in ("market", "user")
    }
    operator.start_soon(
        watch_disconnects, venue.reconnects, detectors, sinks.outputs, settings.supervisor.disconnect_check_secs
    )
    if slack.daily_summary:
        operator.start_soon(daily_summaries, daily, core.risk, core.marks, sinks.outputs)
    return daily


async def _shut_down(
    settings: Settings, control: Control, daily: DailyCounts, exit_reason: str, duration: float
) -> RunSummary:
    """Steps 1 to 3 of the shutdown (see the module docstring); the rest is leaving the context managers."""
    run, core = settings.run, control.core
    core.strategy_scope.cancel()  # 1. no new intents
    report = await core.execution.drain(  # 2. in-flight orders finish; resting orders cancelled (configurable)
        run.drain_secs, cancel_resting=run.cancel_resting_on_exit
    )
    if core.paper_wallet is not None:  # the wallet as the run leaves it, for the next one
        with trio.move_on_after(settings.store.flush_secs, shield=True):
            await core.paper_wallet.save()
    with trio.move_on_after(settings.supervisor.opportunities_flush_secs, shield=True):  # 3. what the store lacks
        await core.opportunities.write()
    wallet: dict[str, object] = {}
    with trio.move_on_after(settings.supervisor.opportunities_flush_secs, shield=True):
        try:
            if control.venue.live is not None:  # the summary's cash is the venue's (what merges paid since the read)
                with contextlib.suppress(trio.TooSlowError):
                    await core.funds.refresh()
            wallet = await check_wallet(control.venue, core)
        except VenueError as exc:  # the summary says it could not be checked
            wallet = {"error": repr(exc)}
    summary = build_summary(
        settings, control.venue, core, report, exit_reason=exit_reason, duration=duration, wallet=wallet
    )
    if settings.slack.daily_summary:
        control.sinks.outputs(daily.summary(core.risk.risk_day(dt.datetime.now(dt.UTC)), core.marks(), reset=False))
    return summary


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


# -- active/standby (`ha.enabled`, docs/ha.md) --------------------------------------------------------------------


class _Pair:
    """`run_trader` for an engine of an active/standby pair:

    ```
    sinks -> http client -> leadership (lease) -> market side (warm: discovery, books)
    └── operator: http server (PairControl: the role in /status, /ready false unless leading), the stop watch
        └── each term this engine leads: trading side (live venue + heartbeat, restart reconciliation) -> core
            -> operator services; the term ends at a stop (drain, summary, the lease released) or at once when
            the lease is lost (nothing more is sent; `ha.on_fenced`: stand by again, or exit)
    ```
    """

    def __init__(  # noqa: PLR0917 - the pieces run_trader has already built
        self,
        settings: Settings,
        signer: OrderSigner | None,
        registry: CollectorRegistry,
        tick_to_trade: TickToTrade,
        abort: trio.Event | None,
        started_at: float,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.registry = registry
        self.tick_to_trade = tick_to_trade
        self.abort = abort
        self.started_at = started_at
        self.stopping = trio.Event()
        self.exit_reason = "signal"
        self.http_url = ""
        self.reported = False
        self.web: PairWeb

    async def run(
        self, stop: Callable[[], Awaitable[object]], task_status: trio.TaskStatus[RunningEngine]
    ) -> RunSummary:
        settings = self.settings
        summary: RunSummary | None = None
        if self.signer is not None:  # warm: what a takeover would otherwise import on the event loop
            await trio.to_thread.run_sync(preload_transaction_signing)
        async with (
            open_sinks(settings) as sinks,
            httpx.AsyncClient(timeout=settings.supervisor.http_backstop_secs) as http,
            open_leadership(settings, sinks) as leadership,
            open_market_side(settings, http, sinks.store) as market,
        ):
            pair = PairControl(settings, sinks, market, leadership)
            self.registry.register(LeadershipCollector(pair))
            async with trio.open_nursery() as operator:
                routes = OperatorApp(pair, self.registry, admin_token=settings.http.admin_token)
                self.web = PairWeb(pair, routes)
                self.http_url = await operator.start(partial(run_http_server, self.web, settings.http))
                operator.start_soon(self._watch_stop, stop)
                log.info("engine_standing_by", instance=leadership.instance, http=self.http_url)
                while summary is None:
                    epoch = await _first_of(leadership.wait_elected, self.stopping.wait)
                    if self.stopping.is_set():
                        break
                    assert sinks.postgres is not None
                    assert epoch is not None
                    sinks.postgres.fence_epoch = epoch  # every intent of this term carries it
                    summary = await self._term(sinks, http, market, leadership, pair, epoch, task_status)
                    if summary is None and settings.ha.on_fenced == "exit":
                        self.exit_reason = "fenced"
                        break
                operator.cancel_scope.cancel()
            await market.close_market_data(settings.supervisor.market_data_close_secs)
        if summary is None:
            summary = standby_summary(
                settings, exit_reason=self.exit_reason, duration=trio.current_time() - self.started_at
            )
        log.info("engine_stopped", **{k: v for k, v in summary.to_json().items() if not isinstance(v, dict)})
        return summary

    async def _watch_stop(self, stop: Callable[[], Awaitable[object]]) -> None:
        self.exit_reason = await _wait_for_stop(stop, self.settings.run.duration_secs)
        log.info("shutdown_started", reason=self.exit_reason)
        self.stopping.set()

    async def _term(  # noqa: PLR0917 - one term's open parts
        self,
        sinks: Sinks,
        http: httpx.AsyncClient,
        market: MarketSide,
        leadership: Leadership,
        pair: PairControl,
        epoch: int,
        task_status: trio.TaskStatus[RunningEngine],
    ) -> RunSummary | None:
        """Lead until a stop (the summary; the lease released) or the lease is lost (None, nothing more sent)."""
        settings, fence = self.settings, leadership.may_send
        took_at = trio.current_time()
        summary: RunSummary | None = None
        lost: str | None = None

        async def ready() -> None:  # the live venue connects meanwhile; nothing is reconciled or sent before
            if not await leadership.wait_term_leader(epoch):
                raise _TermLost(leadership.last_loss or "lost")
            postgres = sinks.postgres
            assert postgres is not None
            if not postgres.available:  # the server restarting: reconcile once the store is back (or give up)
                log.warning("ha_takeover_waits_for_store", epoch=epoch)
                await _first_of(postgres.wait_available, partial(leadership.wait_lost, epoch))
                if not leadership.may_send():
                    raise _TermLost(leadership.last_loss or "lost")
            # This engine's own earlier term may have left writes queued behind the store's outage (its fills, their
            # positions): land them before this term reads the store, or it would start from positions without
            # them, and its own later writes (absolute quantities) would make the loss permanent.
            await _first_of(sinks.store.flush, partial(leadership.wait_lost, epoch))
            if not leadership.may_send():
                raise _TermLost(leadership.last_loss or "lost")

        try:
            async with (
                open_trading_side(
                    settings, market, sinks.store, self.signer, http, may_send=fence, ready=ready
                ) as venue,
                open_core(settings, sinks, venue, http, on_submitted=self.tick_to_trade.observe, fence=fence) as core,
            ):
                control = Control(
                    settings=settings,
                    sinks=sinks,
                    venue=venue,
                    core=core,
                    store_gate=StoreGate(),
                    venue_gate=VenueGate(),
                )
                pair.current = control
                try:
                    async with trio.open_nursery() as term:
                        dashboard = PairDashboard(control, leadership)
                        await term.start(dashboard.run)
                        self.web.term_app = build_web_app(dashboard, self.web.routes)  # the page, while leading
                        daily = await _start_operator_services(term, settings, control, self.abort)
                        log.warning(
                            "ha_trading",
                            epoch=epoch,
                            reconcile_secs=round(trio.current_time() - took_at, 3),
                            restart=None if venue.restart is None else str(venue.restart),
                        )
                        if not self.reported:
                            self.reported = True
                            task_status.started(RunningEngine(control=control, http_url=self.http_url))
                        lost = await _first_of(partial(leadership.wait_lost, epoch), self.stopping.wait)
                        if self.stopping.is_set() and leadership.may_send():
                            lost = None
                            duration = trio.current_time() - self.started_at
                            summary = await _shut_down(settings, control, daily, self.exit_reason, duration)
                        term.cancel_scope.cancel()
                finally:
                    pair.current = None
                    self.web.term_app = None
                if lost is not None:  # leaving the blocks cancels every order task at once: nothing more is sent
                    log.error("ha_trading_stopped", epoch=epoch, reason=lost)
        except* NotLeader:  # a send refused as the lease ran out, before the loss was seen: the same stop
            log.error("ha_trading_stopped", epoch=epoch, reason="not_leader")
        except* _TermLost as group:  # lost while the previous leader's lease ran out: nothing was done
            log.error("ha_takeover_abandoned", epoch=epoch, reason=str(group.exceptions[0]))
        except* StoreError as group:  # the store failed while the term opened (or ran): stand by, compete again
            log.error("ha_term_failed", epoch=epoch, error=str(group.exceptions[0]))
            await leadership.resign("store_error", hold_off=False)
        if summary is not None:
            await leadership.resign("shutdown")
        return summary


class _TermLost(Exception):
    """The lease was lost before this engine's term could lead."""


async def _first_of(*waits: Callable[[], Awaitable[T]]) -> T | None:
    """Run the waits concurrently; the result of the first to return (the others are cancelled)."""
    results: list[T | None] = []
    async with trio.open_nursery() as nursery:

        async def one(wait: Callable[[], Awaitable[T]]) -> None:
            result = await wait()
            if not results:
                results.append(result)
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(one, wait)
    return results[0] if results else None
