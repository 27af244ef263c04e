"""Alerts: what the operator must hear about, wired from the engine's parts to the outputs (bus and Slack).

- `ObservedRiskGate`: the risk gate, telling the outputs of every state change and daily-loss breach;
- `watch_disconnects`: reconnect counts (market and user channels) into storm detectors; a storm is an alert;
- `DailyCounts` and `daily_summaries`: the day's summary at each risk-day reset (and at exit, by the supervisor);
- `run_store_gate`: while PostgreSQL cannot record intents, trading is halted (`STORE_UNAVAILABLE`) and resumed by
  itself when it is back;
- `money_alerts`: what must never happen to money, to Slack: the venue refusing an order for lack of balance (the
  buying power was wrong), and an arbitrage left with exposure above dust that it could not hedge.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
from trader.integrations.slack import Alert, AlertKind, DailySummary, DisconnectStormDetector
from trader.integrations.store.postgres import PostgresStore
from trader.venues.errors import VenueRejectCode

__all__ = [
    "STORE_AVAILABLE",
    "STORE_UNAVAILABLE",
    "DailyCounts",
    "ObservedRiskGate",
    "StoreGate",
    "daily_summaries",
    "money_alert",
    "money_alerts",
    "run_store_gate",
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
