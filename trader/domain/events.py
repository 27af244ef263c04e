"""Frozen domain events: what happened to an order, a trade or an intent, as values.

Order events are keyed by `client_order_id` and applied with `trader.domain.orders.Order.apply`. Every `ts` is a
value passed in by the caller (seconds on the caller's clock: the engine passes wall-clock epoch seconds); the
domain never reads a clock.

Reasons are stable codes: upper-case words joined by underscores ("RISK_MAX_NOTIONAL", "TRADING_HALTED",
"INVALID_ORDER_MIN_TICK_SIZE", "FOK_NOT_FILLED"); the free text goes in `message`. `RiskReason` and `OrderReason`
list the codes the domain knows of; other components may use further codes of the same shape.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from trader.domain.enums import Liquidity, TradeStatus
from trader.domain.numbers import ONE, ZERO, Side
from trader.errors import InputError

__all__ = [
    "OrderAccepted",
    "OrderCancelRejected",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderEvent",
    "OrderExpired",
    "OrderFillReversed",
    "OrderFilled",
    "OrderKilled",
    "OrderLateFill",
    "OrderOutcomeUnknown",
    "OrderReason",
    "OrderRejected",
    "OrderSubmitted",
    "RiskReason",
    "RiskRejected",
    "TradeStatusChanged",
    "is_reason_code",
]

_REASON_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def is_reason_code(value: object) -> bool:
    return isinstance(value, str) and _REASON_CODE.fullmatch(value) is not None


def _check_reason(reason: str, field: str = "reason") -> None:
    if not is_reason_code(reason):
        raise InputError(field, f"a reason is a stable UPPER_SNAKE code, got {reason!r}")


class RiskReason(enum.StrEnum):
    """Reason codes of the risk gate's denials (a denial is a `RiskRejected` event, never an exception)."""

    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"  # only orders that reduce a position are allowed
    RISK_MAX_NOTIONAL = "RISK_MAX_NOTIONAL"
    RISK_MAX_POSITION = "RISK_MAX_POSITION"
    RISK_MAX_EXPOSURE = "RISK_MAX_EXPOSURE"
    RISK_MAX_OPEN_ORDERS = "RISK_MAX_OPEN_ORDERS"
    RISK_DAILY_LOSS = "RISK_DAILY_LOSS"
    RISK_INSUFFICIENT_BALANCE = "RISK_INSUFFICIENT_BALANCE"
    RISK_MIN_ORDER_SIZE = "RISK_MIN_ORDER_SIZE"
    RISK_PRICE_OFF_TICK = "RISK_PRICE_OFF_TICK"
    RISK_PRICE_OUT_OF_RANGE = "RISK_PRICE_OUT_OF_RANGE"
    RISK_MARKET_NOT_TRADABLE = "RISK_MARKET_NOT_TRADABLE"
    RISK_STALE_BOOK = "RISK_STALE_BOOK"
    RISK_INCOMPLETE_BASKET = "RISK_INCOMPLETE_BASKET"
    RISK_RATE_LIMIT = "RISK_RATE_LIMIT"
    RISK_DUPLICATE_ORDER = "RISK_DUPLICATE_ORDER"


class OrderReason(enum.StrEnum):
    """Reason codes for order outcomes that are not the venue's own error strings."""

    FOK_NOT_FILLED = "FOK_NOT_FILLED"  # a FOK order found too little liquidity: killed, nothing filled
    FAK_REMAINDER_CANCELED = "FAK_REMAINDER_CANCELED"  # a FAK order's unfilled remainder
    CANCELED_BY_USER = "CANCELED_BY_USER"
    CANCELED_BY_VENUE = "CANCELED_BY_VENUE"  # cancel-all, heartbeat timeout, market closed
    SHUTDOWN = "SHUTDOWN"
    EMERGENCY_STOP = "EMERGENCY_STOP"
    UNWIND = "UNWIND"
    NEVER_SENT = "NEVER_SENT"  # the intent was persisted but the order was not sent


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted:
    """The order was sent to the venue (its intent and id were persisted before)."""

    client_order_id: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderOutcomeUnknown:
    """The request that sent the order failed in a way that leaves its fate unknown (a timeout, a disconnect, a 5xx,
    a garbled reply, a cancellation while on the wire): the order is UNKNOWN until the venue shows it or its absence.
    `cause` is a stable code of the failure (`TIMEOUT`, `SERVER_ERROR`, ...), for the record."""

    client_order_id: str
    ts: float
    cause: str

    def __post_init__(self) -> None:
        _check_reason(self.cause, "cause")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted:
    """The venue accepted the order and it rests on the book (venue status LIVE)."""

    client_order_id: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected:
    """The venue (or the sending path) refused the order; it was never on the book."""

    client_order_id: str
    reason: str
    ts: float
    message: str = ""

    def __post_init__(self) -> None:
        _check_reason(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled:
    """One fill of one of our orders.

    `fee` is charged in pUSD. `fee_shares` (BUY only) is a fee withheld from the shares bought, as the paper venue
    collects buy fees: the position grows by `size - fee_shares`. `fill_id` must be unique per fill; it defaults to
    `trade_id`, and a caller that splits one venue trade into several fills (a taker matched against several
    makers) gives each its own `fill_id` with the same `trade_id`.
    """

    client_order_id: str
    trade_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    liquidity: Liquidity
    ts: float
    fee: Decimal = ZERO
    fee_shares: Decimal = ZERO
    fill_id: str | None = None

    def __post_init__(self) -> None:
        if not self.trade_id:
            raise InputError("trade_id", "must not be empty")
        if not ZERO <= self.price <= ONE:
            raise InputError("price", f"fill price {self.price} is outside [0, 1]")
        if self.size <= ZERO:
            raise InputError("size", f"fill size must be > 0, got {self.size}")
        if self.fee < ZERO:
            raise InputError("fee", f"must not be negative, got {self.fee}")
        if self.fee_shares < ZERO or self.fee_shares > self.size:
            raise InputError("fee_shares", f"must be within [0, size], got {self.fee_shares}")
        if self.fee_shares and self.side is not Side.BUY:
            raise InputError("fee_shares", "only a buy can pay its fee in shares")

    @property
    def key(self) -> str:
        """The identity of this fill: `fill_id`, or `trade_id` when the trade is one fill."""
        return self.fill_id if self.fill_id is not None else self.trade_id

    @property
    def notional(self) -> Decimal:
        return self.price * self.size

    @property
    def net_shares(self) -> Decimal:
        """Shares that change hands for us: size less the fee withheld in shares."""
        return self.size - self.fee_shares


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRequested:
    client_order_id: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRejected:
    """The venue did not cancel (the order may have filled meanwhile); the order is back to resting."""

    client_order_id: str
    reason: str
    ts: float
    message: str = ""

    def __post_init__(self) -> None:
        _check_reason(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled:
    client_order_id: str
    ts: float
    reason: str = OrderReason.CANCELED_BY_USER

    def __post_init__(self) -> None:
        _check_reason(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired:
    """A GTD order reached its expiration."""

    client_order_id: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderKilled:
    """The venue cancelled an immediate order at once: a FOK that could not fill, or a FAK's remainder."""

    client_order_id: str
    ts: float
    reason: str = OrderReason.FOK_NOT_FILLED

    def __post_init__(self) -> None:
        _check_reason(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFillReversed:
    """A trade FAILED on chain: every fill of this order with `trade_id` is undone."""

    client_order_id: str
    trade_id: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLateFill:
    """A fill of an order that had been closed without the venue showing a fill could come (rejected, or closed as
    not found or never sent): the fill is applied to the position all the same, and reported (alert-worthy: the
    verdict we gave was contradicted). Not an order event: it reports what happened, the fill changes the order."""

    client_order_id: str
    order_id: str
    trade_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    status: str  # the order's status when the fill arrived (REJECTED, CANCELED)
    reason: str | None  # why it had been closed (SUBMIT_NOT_FOUND, NEVER_SENT, the venue's code)
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeStatusChanged:
    trade_id: str
    previous: TradeStatus | None
    status: TradeStatus
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRejected:
    """The risk gate denied an intent; nothing was sent."""

    client_order_id: str
    strategy: str
    reason: str
    ts: float
    message: str = ""

    def __post_init__(self) -> None:
        _check_reason(self.reason)


OrderEvent = (
    OrderSubmitted
    | OrderOutcomeUnknown
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCancelRequested
    | OrderCancelRejected
    | OrderCanceled
    | OrderExpired
    | OrderKilled
    | OrderFillReversed
)
