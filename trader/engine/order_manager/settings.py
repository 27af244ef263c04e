"""The order manager's settings, and the statistics it reports (`OrderManager.statistics()`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trader.engine.breaker import BreakerStatistics
from trader.engine.rate_limit import RateLimiterStatistics
from trader.engine.restrictions import RestrictionSettings, RestrictionStatistics
from trader.engine.venue_health import VenueHealthSettings, VenueHealthStatistics
from trader.errors import ConfigError

__all__ = ["OrderManagerSettings", "OrderManagerStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerSettings:
    """- `request_timeout_secs` (default 0.5): the deadline of each venue request.
    - `max_rate_wait_secs` (default 1.0): the longest a submit or lookup waits for the rate limiter before it is
      given up (not sent); cancels are not bounded here (the caller's deadline applies).
    - `unknown_grace_secs` (default 5.0): an order whose submit outcome is unknown (UNKNOWN) is closed as not
      found only if the venue still does not have it this long after its request's deadline passed: the window
      covers the venue's ack latency (up to our deadline, `request_timeout_secs`) plus this grace, for replies (and
      orders) held up longer. Before the window ends, "not found" is no verdict.
    - `lookup_initial_secs` (default 0.25) and `lookup_max_secs` (default 2.0): the lookups by id of an UNKNOWN order
      follow this backoff (the first this long after the request failed, each next one twice as far, at most
      `lookup_max_secs` apart), until the venue shows the order, and once more when the window ends.
    - `trades_lookback_secs` (default 3600): how far before an order's creation to ask for its trades.
    - `recent_events` (default 200): how many domain events `recent_events()` keeps.
    - `forget_closed_after_secs` (default 600): a closed order, with nothing about it outstanding (outcome known,
      fills applied, trades settled), leaves memory this long after it closed (the store keeps it).
    - `max_closed_orders` (default 10000): at most this many closed orders in memory; past it the oldest of those
      with nothing outstanding leave at once.
    - `restrictions`: how the venue's trading restrictions are ridden out (`RestrictionSettings`).
    - `venue_health`: when the venue's refusals of our credentials or its silence halt trading
      (`VenueHealthSettings`).
    """

    request_timeout_secs: float = 0.5
    max_rate_wait_secs: float = 1.0
    unknown_grace_secs: float = 5.0
    lookup_initial_secs: float = 0.25
    lookup_max_secs: float = 2.0
    trades_lookback_secs: float = 3600.0
    recent_events: int = 200
    forget_closed_after_secs: float = 600.0
    max_closed_orders: int = 10_000
    restrictions: RestrictionSettings = field(default_factory=RestrictionSettings)
    venue_health: VenueHealthSettings = field(default_factory=VenueHealthSettings)

    def __post_init__(self) -> None:
        for name in (
            "request_timeout_secs",
            "max_rate_wait_secs",
            "unknown_grace_secs",
            "trades_lookback_secs",
            "forget_closed_after_secs",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and value != float("inf")):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("request_timeout_secs", "lookup_initial_secs", "lookup_max_secs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        if self.lookup_max_secs < self.lookup_initial_secs:
            raise ConfigError("lookup_max_secs must be >= lookup_initial_secs")
        if self.recent_events < 1:
            raise ConfigError("recent_events must be >= 1")
        if self.max_closed_orders < 1:
            raise ConfigError("max_closed_orders must be >= 1")

    @property
    def unknown_window_secs(self) -> float:
        """From sending an order whose outcome is unknown to when "not found" is a verdict (see the class doc)."""
        return self.request_timeout_secs + self.unknown_grace_secs


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerStatistics:
    orders: int  # in memory (open, and closed recently)
    open_orders: int
    submitted: int  # orders that went out
    accepted: int
    rejected: dict[str, int]  # venue rejections, by code
    not_sent: dict[str, int]  # by reason
    ambiguous: int  # submits whose outcome was unknown (orders that went UNKNOWN)
    resolved_found: int  # UNKNOWN orders the venue showed (by id, by an event, by their trades)
    resolved_not_found: int  # UNKNOWN orders the venue did not have once the window had passed
    unresolved: int  # UNKNOWN now
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
    breakers: dict[str, BreakerStatistics]  # by endpoint family (orders, cancels, reads)
    rate_limiter: RateLimiterStatistics
    unknown_trade_statuses: int = 0  # trade reports with a status we do not know (the trade kept as it was)
    restrictions: RestrictionStatistics | None = None
    restricted: dict[str, int] = field(default_factory=dict)  # venue refusals for a trading restriction, by it
    restart_retries: int = 0  # calls sent again after a 425
    lookups: int = 0  # lookups by id of UNKNOWN orders (the schedule's, and reconciliation's)
    late_fills: int = 0  # fills of orders closed without one (rejected, not found, never sent): applied, reported
    cancels_deferred: int = 0  # cancels of orders whose id the venue had not confirmed yet: sent once it did
    venue_health: VenueHealthStatistics | None = None
