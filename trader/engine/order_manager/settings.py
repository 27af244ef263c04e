"""The order manager's settings, and the statistics it reports (`OrderManager.statistics()`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trader.engine.breaker import BreakerStatistics
from trader.engine.rate_limit import RateLimiterStatistics
from trader.engine.restrictions import RestrictionSettings, RestrictionStatistics
from trader.errors import ConfigError

__all__ = ["OrderManagerSettings", "OrderManagerStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerSettings:
    """- `request_timeout_secs` (default 0.5): the deadline of each venue request.
    - `max_rate_wait_secs` (default 1.0): the longest a submit or lookup waits for the rate limiter before it is
      given up (not sent); cancels are not bounded here (the caller's deadline applies).
    - `resolve_attempts` (default 3) and `resolve_retry_secs` (default 0.5): asking the venue about an order whose
      submit outcome is unknown.
    - `trades_lookback_secs` (default 3600): how far before an order's creation to ask for its trades.
    - `recent_events` (default 200): how many domain events `recent_events()` keeps.
    - `forget_closed_after_secs` (default 600): a closed order, with nothing about it outstanding (outcome known,
      fills applied, trades settled), leaves memory this long after it closed (the store keeps it).
    - `max_closed_orders` (default 10000): at most this many closed orders in memory; past it the oldest of those
      with nothing outstanding leave at once.
    - `restrictions`: how the venue's trading restrictions are ridden out (`RestrictionSettings`).
    """

    request_timeout_secs: float = 0.5
    max_rate_wait_secs: float = 1.0
    resolve_attempts: int = 3
    resolve_retry_secs: float = 0.5
    trades_lookback_secs: float = 3600.0
    recent_events: int = 200
    forget_closed_after_secs: float = 600.0
    max_closed_orders: int = 10_000
    restrictions: RestrictionSettings = field(default_factory=RestrictionSettings)

    def __post_init__(self) -> None:
        for name in (
            "request_timeout_secs",
            "max_rate_wait_secs",
            "resolve_retry_secs",
            "trades_lookback_secs",
            "forget_closed_after_secs",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and value != float("inf")):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.request_timeout_secs <= 0:
            raise ConfigError("request_timeout_secs must be > 0")
        if self.resolve_attempts < 1:
            raise ConfigError("resolve_attempts must be >= 1")
        if self.recent_events < 1:
            raise ConfigError("recent_events must be >= 1")
        if self.max_closed_orders < 1:
            raise ConfigError("max_closed_orders must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerStatistics:
    orders: int  # in memory (open, and closed recently)
    open_orders: int
    submitted: int  # orders that went out
    accepted: int
    rejected: dict[str, int]  # venue rejections, by code
    not_sent: dict[str, int]  # by reason
    ambiguous: int  # submits whose outcome was unknown
    resolved_found: int
    resolved_not_found: int
    unresolved: int  # still unknown now
    timeouts: int  # requests past their deadline (any endpoint)
    responses_429: int
    responses_5xx: int
    responses_4xx: int  # other 4xx answers
    venue_errors: int  # disconnects, protocol and connection errors
    breaker_refusals: int
    breaker_bypassed: int  # forced calls (emergency cancel-all) made while the breaker was open
    cancels_sent: int
    cancel_alls: int
    fills: int
    trades_confirmed: int
    trades_failed: int  # FAILED trades whose fill was reversed
    late_events: int  # events the order's state no longer accepts, or about a forgotten order (counted, not applied)
    unknown_events: int  # events for order ids we do not know
    ghost_orders: int  # orders found live after we closed them as not found (cancelled at once)
    store_errors: int
    recovered: int  # pending intents found at start and resolved by id
    event_gaps: int  # times the venue's event subscription ended and was reopened
    orders_forgotten: int  # closed orders dropped from memory (the store keeps them)
    breaker: BreakerStatistics
    rate_limiter: RateLimiterStatistics
    unknown_trade_statuses: int = 0  # trade reports with a status we do not know (the trade kept as it was)
    restrictions: RestrictionStatistics | None = None
    restricted: dict[str, int] = field(default_factory=dict)  # venue refusals for a trading restriction, by it
    restart_retries: int = 0  # calls sent again after a 425
