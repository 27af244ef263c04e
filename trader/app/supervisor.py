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

An emergency stop (HTTP, or a daily-loss breach) halts trading and cancels every order task and every resting order,
but leaves market data and the HTTP server running, so the operator still sees the market.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from functools import partial

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
from trader.app.config import Settings
from trader.app.control import Control, RunningEngine, log_status_lines
from trader.app.core import open_core
from trader.app.dashboard import Dashboard, build_web_app
from trader.app.metrics import EngineCollector, SinkCollector, TickToTrade
from trader.app.sinks import open_sinks
from trader.app.summary import RunSummary, build_summary, check_wallet
from trader.app.venue import open_venue
from trader.engine.execution import ExecutionService
from trader.integrations.bus import run_book_summaries
from trader.integrations.http_server import OperatorApp, run_http_server
from trader.integrations.slack import DisconnectStormDetector
from trader.venues.errors import VenueError

__all__ = ["run_trader"]

log = structlog.get_logger(__name__)


async def run_trader(
    settings: Settings,
    *,
    stop: Callable[[], Awaitable[object]],
    abort: trio.Event | None = None,
    task_status: trio.TaskStatus[RunningEngine] = trio.TASK_STATUS_IGNORED,
) -> RunSummary:
    """Run the engine until `stop()` returns (or `settings.run.duration_secs` passes); drain; return the summary."""
    run = settings.run
    started_at = trio.current_time()
    signer = settings.keys.signer("live trading") if run.live else None
    registry = CollectorRegistry()
    tick_to_trade = TickToTrade(registry)
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
