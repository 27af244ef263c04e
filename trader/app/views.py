"""What the operator's short views share (`/status`, the console's status line, the exit summary, `trader status`):
why trading is halted and by whom, and the refusals by reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from trader.app.alerts import STORE_UNAVAILABLE
from trader.domain.risk import TradingState
from trader.engine.execution import EMERGENCY_STOP, ExecutionService, ExecutionStatistics
from trader.engine.risk import RiskCode
from trader.engine.venue_health import VenueProblem

__all__ = ["by_count", "halt_of", "refusals_of"]

_HALTED_BY = {
    RiskCode.RISK_DAILY_LOSS: "the daily loss limit (risk.max_daily_loss_usd)",
    STORE_UNAVAILABLE: "the store gate (the database is unreachable)",
    VenueProblem.AUTH_FAILED: "the venue gate (the venue refuses our API credentials)",
    VenueProblem.UNREACHABLE: "the venue gate (the venue answers nothing)",
}
_WHAT_TO_DO = {
    EMERGENCY_STOP: "`trader stop --resume` (or POST /resume) once it is safe to trade again",
    RiskCode.RISK_DAILY_LOSS: "it stays halted for the day; `trader stop --resume` trades again regardless",
    STORE_UNAVAILABLE: "bring the database back: trading resumes by itself",
    VenueProblem.AUTH_FAILED: "check TRADER_API_KEY, TRADER_API_SECRET and TRADER_API_PASSPHRASE; trading resumes "
    "by itself once the venue accepts them",
    VenueProblem.UNREACHABLE: "nothing to do if the venue is down: trading resumes by itself when it answers",
}
_LOOK = "see /status?full=1 (venue_restrictions, venue_health) for the cause"


def halt_of(execution: ExecutionService) -> dict[str, object] | None:
    """Why trading is not ACTIVE (the reason of the last state change, or the emergency stop's own words), who
    stopped it, since when (UTC) and what brings it back; None while ACTIVE."""
    risk = execution.risk
    if risk.state is TradingState.ACTIVE:
        return None
    change = risk.last_change
    code = change.reason if change is not None else str(risk.state)
    reason, by = code, _HALTED_BY.get(code, "the engine")
    stop = execution.last_stop
    if code == EMERGENCY_STOP and stop is not None:
        reason, by = stop.reason, stop.by
    return {
        "state": str(risk.state),
        "reason": reason,
        "by": by,
        "since": None if change is None else dt.datetime.fromtimestamp(change.ts, dt.UTC).isoformat(timespec="seconds"),
        "what_to_do": _WHAT_TO_DO.get(code, _LOOK),
    }


def refusals_of(stats: ExecutionStatistics) -> dict[str, dict[str, int]]:
    """Why intents and orders were turned down, by stable reason code, most frequent first: `denied` by the risk
    gate (and while draining or halted), `rejected` by the venue, `not_sent` (never sent: breaker, restriction,
    signing)."""
    return {
        "denied": by_count(stats.intents_denied),
        "rejected": by_count(stats.orders.rejected),
        "not_sent": by_count(stats.orders.not_sent),
    }


def by_count(counts: Mapping[str, int]) -> dict[str, int]:
    """Non-zero counts, most frequent first."""
    return {str(k): v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))) if v}
