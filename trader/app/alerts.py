"""Alerts: what the operator must hear about, wired from the engine's parts to the outputs (bus and Slack).

- `ObservedRiskGate`: the risk gate, telling the outputs of every state change and daily-loss breach;
- `watch_disconnects`: reconnect counts (market and user channels) into storm detectors; a storm is an alert;
- `DailyCounts` and `daily_summaries`: the day's summary at each risk-day reset (and at exit, by the supervisor);
- `run_store_gate`: while PostgreSQL cannot record intents, trading is halted (`STORE_UNAVAILABLE`) and resumed by
  itself when it is back;
- `money_alerts`: what must never happen to money, to Slack: the venue refusing an order for lack of balance (the
  buying power was wrong), and an arbitrage left with exposure above dust that it could not hedge.
- `run_venue_gate`: while the venue refuses our credentials (`VENUE_AUTH_FAILED`) or answers nothing
  (`VENUE_UNREACHABLE`), trading is halted, with an alert, and resumed by itself when it answers correctly again;
- `TradingHolds`: what the two gates share, so that trading resumes only when neither holds it, and never after an
  operator's emergency stop.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NoReturn

import structlog
import trio

from trader.domain.events import OrderRejected
from trader.domain.risk import DailyLossBreached, RiskEvent, RiskStateChanged, TradingState
from trader.engine.arbitrage import ArbResidual
from trader.engine.execution import ExecutionService
from trader.engine.order_manager import OrderManager
from trader.engine.risk import RiskGate, RiskSettings
from trader.engine.venue_health import VENUE_HEALTHY, VenueProblem
from trader.integrations.slack import Alert, AlertKind, DailySummary, DisconnectStormDetector
from trader.integrations.store.postgres import PostgresStore
from trader.venues.errors import VenueRejectCode

__all__ = [
    "STORE_AVAILABLE",
    "STORE_UNAVAILABLE",
    "DailyCounts",
    "ObservedRiskGate",
    "StoreGate",
    "TradingHolds",
    "VenueGate",
    "daily_summaries",
    "money_alert",
    "money_alerts",
    "run_store_gate",
    "run_venue_gate",
    "watch_disconnects",
]

log = structlog.get_logger(__name__)

#: Reason codes of the store gate.
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"  # the store cannot record intents: trading halted until it is back
STORE_AVAILABLE = "STORE_AVAILABLE"  # ... and resumed by itself


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


# -- money ------------------------------------------------------------------------------------------------------


def money_alert(event: object) -> Alert | None:
    """The alert for an event that must never happen to money, or None."""
    if isinstance(event, OrderRejected) and event.reason == VenueRejectCode.NOT_ENOUGH_BALANCE:
        text = (
            f":rotating_light: The venue refused order {event.client_order_id} for lack of balance or allowance "
            f"({event.message or event.reason}): the engine's buying power disagreed with the venue's. Check "
            "`trader doctor` and /status (funds)."
        )
        return Alert(kind=AlertKind.RISK, key="venue_balance_rejection", text=text, ts=event.ts)
    if isinstance(event, ArbResidual):
        held = ", ".join(f"{shares} of {token}" for token, shares in event.residual.items())
        text = (
            f":warning: Arbitrage {event.arb_id} ({event.strategy}) left unhedged exposure above dust: {held} "
            f"({', '.join(event.reasons) or 'no reason given'})"
        )
        return Alert(kind=AlertKind.RISK, key=f"arb_residual:{event.arb_id}", text=text, ts=event.ts)
    return None


def money_alerts(notify: Callable[[object], object]) -> Callable[[object], None]:
    """An order-manager listener that hands `money_alert`s to `notify` (Slack's)."""

    def listener(event: object) -> None:
        alert = money_alert(event)
        if alert is not None:
            notify(alert)

    return listener


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
    holds: TradingHolds | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """While the store cannot record intents, trade nothing: the risk gate is HALTED and the order manager's sending
    blocked, both with reason `STORE_UNAVAILABLE` (a hold of `holds`, shared with the venue gate). When the store is
    back, both are lifted, unless another hold remains or something else (an emergency stop, a drain) took over
    meanwhile: then the operator decides."""
    holds = holds if holds is not None else TradingHolds(execution)
    task_status.started()
    while True:
        await store.wait_unavailable()
        gate.outages += 1
        holds.hold(STORE_UNAVAILABLE)
        gate.halted, gate.halted_at = True, trio.current_time()
        log.error("trading_halted", reason=STORE_UNAVAILABLE)
        await store.wait_available()
        resumed = holds.release(STORE_UNAVAILABLE, resume_reason=STORE_AVAILABLE)
        gate.halted = False
        log.warning("store_back", trading_resumed=resumed, down_secs=round(trio.current_time() - gate.halted_at, 3))


# -- automatic halts, shared -----------------------------------------------------------------------------------------


class TradingHolds:
    """The halts the gates put on trading by themselves (`STORE_UNAVAILABLE`, `VENUE_AUTH_FAILED`, ...).

    The first hold HALTS the risk gate and blocks the order manager's sending (if nothing blocks it yet), each with its
    reason; further holds add their reason. When the last is released, sending is allowed again if a hold had blocked
    it, and trading resumes if a hold had halted it, unless an emergency stop came meanwhile (the operator's word is
    never lifted by a gate) or something else halted it."""

    def __init__(self, execution: ExecutionService) -> None:
        self._execution = execution
        self._holds: list[str] = []
        self._episode: set[str] = set()  # every reason held since trading was last free of holds
        self._halted = False  # a hold of this episode halted trading (it was not halted already)
        self._stops = 0  # emergency stops before the episode began

    @property
    def reasons(self) -> tuple[str, ...]:
        """The holds in force, oldest first."""
        return tuple(self._holds)

    def hold(self, reason: str) -> bool:
        """Halt for `reason`; True when this halted trading (it was not halted already)."""
        if reason in self._holds:
            return False
        execution = self._execution
        manager = execution.manager
        if not self._holds:
            self._episode.clear()
            self._halted = False
            self._stops = execution.statistics().emergency_stops
        self._holds.append(reason)
        self._episode.add(reason)
        if manager.sending_blocked is None:
            manager.block_sending(reason)
        halted = execution.risk.halt(reason=reason, ts=manager.now()) is not None
        self._halted = self._halted or halted
        return halted

    def release(self, reason: str, *, resume_reason: str) -> bool:
        """Let go of `reason`; True when trading resumed (`resume_reason`) because no hold remains."""
        if reason not in self._holds:
            return False
        self._holds.remove(reason)
        if self._holds:
            return False
        execution = self._execution
        manager, risk = execution.manager, execution.risk
        if manager.sending_blocked in self._episode:
            manager.allow_sending()
        if not self._halted or risk.state is not TradingState.HALTED:
            return False
        if execution.statistics().emergency_stops != self._stops:
            return False  # an emergency stop came meanwhile: the operator decides
        return risk.resume(reason=resume_reason, ts=manager.now()) is not None


# -- the venue's credentials and reachability ------------------------------------------------------------------------


@dataclass(slots=True)
class VenueGate:
    """What the venue gate did: halts by reason code, the problem halting trading now, the venue asked meanwhile."""

    halts: Counter[str] = field(default_factory=Counter)
    halted_by: VenueProblem | None = None
    halted_at: float | None = None
    probes: int = 0


_VENUE_TEXT = {
    VenueProblem.AUTH_FAILED: "the venue refuses our API credentials (401/403): check TRADER_API_KEY, "
    "TRADER_API_SECRET and TRADER_API_PASSPHRASE",
    VenueProblem.UNREACHABLE: "the venue's REST endpoint answers nothing (no connection, no reply)",
}


def venue_alert(problem: VenueProblem, *, halted: bool, resumed: bool = False) -> Alert:
    """The operator's alert for a venue problem that halted trading (`halted`), or for its end."""
    if halted:
        text = f":no_entry: Trading halted, {problem.value}: {_VENUE_TEXT[problem]}. It resumes by itself once the "
        text += "venue answers correctly again."
    else:
        outcome = "trading resumed" if resumed else "trading stays halted (another hold, or an emergency stop)"
        text = f"Venue answers correctly again ({problem.value} lifted): {outcome}"
    key = f"venue:{problem.value}:{'halted' if halted else 'lifted'}"
    return Alert(kind=AlertKind.RISK, key=key, text=text, ts=time.time())


async def run_venue_gate(
    execution: ExecutionService,
    gate: VenueGate,
    emit: Callable[[object], None],
    *,
    holds: TradingHolds,
    on_healthy: Callable[[], None] = lambda: None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Halt trading while the venue refuses our credentials or answers nothing (`trader.engine.venue_health`), and
    lift the halt by itself when it answers correctly again.

    On the first suspicion (a refusal of our credentials, a request without an answer) the venue is asked
    (`OrderManager.probe_venue`, every `orders.venue_health.probe_secs`) until the suspicion is cleared or becomes a
    problem. A problem is a hold (`holds`) with its code, an alert to `emit` (the outputs: bus and Slack) and an error
    log line; the venue is then asked at the same pace until the problem ends, and the hold is released (trading
    resumes unless another hold remains or an operator's emergency stop came meanwhile). `on_healthy()` is called
    then (the wallet's balance is read again: reads failed while the venue refused us)."""
    manager = execution.manager
    health = manager.health
    pause = health.settings.probe_secs
    task_status.started()
    while True:
        await health.wait_suspect()
        while (problem := health.problem(trio.current_time())) is None and health.suspect:
            await trio.sleep(pause)
            gate.probes += 1
            await manager.probe_venue()
        if problem is None:
            continue
        gate.halts[problem] += 1
        gate.halted_by, gate.halted_at = problem, trio.current_time()
        holds.hold(problem)
        stats = health.statistics(trio.current_time())
        log.error(
            "trading_halted",
            reason=problem,
            auth_refusals=stats.consecutive_auth_refusals,
            silent_secs=None if stats.silent_for_secs is None else round(stats.silent_for_secs, 3),
        )
        emit(venue_alert(problem, halted=True))
        while health.problem(trio.current_time()) is not None:
            await trio.sleep(pause)
            gate.probes += 1
            await manager.probe_venue()
        on_healthy()
        resumed = holds.release(problem, resume_reason=VENUE_HEALTHY)
        down = round(trio.current_time() - gate.halted_at, 3)
        gate.halted_by = None
        log.warning("venue_back", problem=problem, trading_resumed=resumed, down_secs=down)
        emit(venue_alert(problem, halted=False, resumed=resumed))


# -- disconnect storms and daily summaries -------------------------------------------------------------------------


async def watch_disconnects(
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


class DailyCounts:
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


async def daily_summaries(
    counts: DailyCounts, risk: RiskGate, marks: Callable[[], Mapping[str, Decimal]], emit: Callable[[object], None]
) -> NoReturn:
    """At each risk-day reset (`risk.daily_reset_utc`), the day's summary."""
    while True:
        wall = dt.datetime.now(dt.UTC)
        day = risk.risk_day(wall)
        await trio.sleep((_next_reset(risk.settings, wall) - wall).total_seconds() + 0.001)
        emit(counts.summary(day, marks(), reset=True))
