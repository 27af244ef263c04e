"""The risk gate's states and events as values (the gate itself is `trader.engine.risk.RiskGate`).

Trading states are NautilusTrader's: ACTIVE (everything the limits allow), REDUCING (only orders that reduce
exposure), HALTED (nothing). A state change and a daily-loss breach are frozen events, read by the event bus, Slack
and the store alike; `ts` is wall-clock epoch seconds passed in by the caller.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["DailyLossBreached", "RiskEvent", "RiskStateChanged", "TradingState"]


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskStateChanged:
    previous: TradingState
    state: TradingState
    reason: str
    ts: float  # wall-clock epoch seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyLossBreached:
    day: dt.date
    pnl: Decimal  # realized + unrealized since the day started (negative)
    limit: Decimal
    ts: float


RiskEvent = RiskStateChanged | DailyLossBreached
