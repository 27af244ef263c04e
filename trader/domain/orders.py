"""Orders and trades, each with an explicit state-transition table (NautilusTrader style).

`Order.apply(event) -> Order` looks the pair (current status, event kind) up in `ORDER_TRANSITIONS`; a pair that is
not in the table raises `InvalidTransition` (a bug, not control flow: check `can_apply` first where a race is
expected). Fills and reversals get their kind from the quantities: a fill that completes the order is `FILL`,
otherwise `PARTIAL_FILL`.

Decisions worth knowing:

* Late and repeated messages are expected (REST answers race the user WebSocket, the venue re-sends trades on each
  status change), so the table accepts them where they are harmless: a late `ACCEPT` after a fill or a cancel, a
  repeated `CANCEL`, `CANCEL_REQUEST` or `EXPIRE`, and a fill reported after the cancel or the expiry it raced
  (the order stays CANCELED/EXPIRED, or becomes FILLED if that fill completes it). A fill whose key was already
  applied is a no-op, whatever the status.
* UNKNOWN (the request that sent the order failed without an answer) is a state, not a verdict: it moves on only
  when the venue shows the order (an acceptance, a fill, a kill, a cancel, an expiry: what a lookup by id or an event
  says) or its absence (a CANCEL with the not-found reason, given once the window for the venue's answer has passed).
  It is never REJECTED (the venue did not say no), and a cancel is not applied to it (the order manager defers it until
  the venue has confirmed the order's id).
* `RESTING` in the table means "back on the book": ACCEPTED when nothing is filled, otherwise PARTIALLY_FILLED.
* Fill reversal (the trade FAILED on chain): every fill of that trade is undone (filled size, notional and fees go
  down; the fills move to `reversed_fills`). A resting order (PARTIALLY_FILLED) goes back to RESTING; PENDING_CANCEL,
  CANCELED and EXPIRED keep their status. A FILLED order becomes CANCELED: the venue took it off the book when it
  matched and does not put it back, so it is closed with an unfilled remainder, exactly like a canceled order.
  A terminal order never becomes open again. Reversing a trade twice is a no-op; reversing a trade this order never
  filled raises `InvariantViolation`.
* Overfills raise `InvariantViolation`, except for a FOK/FAK BUY ("market buy"), whose `size` is the least number
  of shares the spent pUSD buys: better prices can buy more. So do fills worse than the limit price, fills for
  another token or side, a rejection of an order that has filled, and a kill of a resting (GTC/GTD) order.

Trades follow the venue's settlement statuses in `TRADE_TRANSITIONS`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.errors import InvalidTransition, InvariantViolation
from trader.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderFillReversed,
    OrderKilled,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderSubmitted,
)
from trader.domain.intents import OrderIntent, check_order_terms
from trader.domain.market import is_token_id
from trader.domain.numbers import ZERO, Side
from trader.errors import InputError

__all__ = [
    "ORDER_TRANSITIONS",
    "RESTING",
    "TRADE_TRANSITIONS",
    "Liquidity",
    "Order",
    "OrderEventKind",
    "OrderStatus",
    "OrderType",
    "Trade",
    "TradeStatus",
    "is_order_id",
]

_ORDER_ID = re.compile(r"0x[0-9a-f]{64}")


def is_order_id(value: object) -> bool:
    """A venue order id: "0x" + 64 lower-case hex digits (the EIP-712 digest of the signed order)."""
    return isinstance(value, str) and _ORDER_ID.fullmatch(value) is not None


class OrderEventKind(enum.StrEnum):
    SUBMIT = "SUBMIT"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # the request failed without an answer: the order may be at the venue
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    CANCEL_REQUEST = "CANCEL_REQUEST"
    CANCEL_REJECT = "CANCEL_REJECT"
    CANCEL = "CANCEL"
    EXPIRE = "EXPIRE"
    KILL = "KILL"  # FOK not filled / FAK remainder canceled at once by the venue
    REVERSE_FILL = "REVERSE_FILL"


class _Resting:
    """Table target: ACCEPTED if nothing is filled, else PARTIALLY_FILLED."""

    def __repr__(self) -> str:
        return "RESTING"


RESTING: Final = _Resting()

S = OrderStatus
K = OrderEventKind

#: (status, event kind) -> new status. Anything absent is an `InvalidTransition`.
ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, OrderEventKind], OrderStatus | _Resting] = MappingProxyType(
    {
        # intent persisted, not sent: it may still be dropped (shutdown) or refused on the way out
        (S.CREATED, K.SUBMIT): S.SUBMITTED,
        (S.CREATED, K.REJECT): S.REJECTED,
        (S.CREATED, K.CANCEL): S.CANCELED,
        # sent, no answer yet: fills can arrive on the user stream before the REST answer
        (S.SUBMITTED, K.ACCEPT): S.ACCEPTED,
        (S.SUBMITTED, K.REJECT): S.REJECTED,
        (S.SUBMITTED, K.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.SUBMITTED, K.FILL): S.FILLED,
        (S.SUBMITTED, K.KILL): S.CANCELED,
        (S.SUBMITTED, K.CANCEL_REQUEST): S.PENDING_CANCEL,
        (S.SUBMITTED, K.CANCEL): S.CANCELED,
        (S.SUBMITTED, K.EXPIRE): S.EXPIRED,
        (S.SUBMITTED, K.OUTCOME_UNKNOWN): S.UNKNOWN,
        # sent, outcome unknown: only what the venue shows of it (or of its absence, as a CANCEL) moves it on
        (S.UNKNOWN, K.OUTCOME_UNKNOWN): S.UNKNOWN,
        (S.UNKNOWN, K.ACCEPT): S.ACCEPTED,
        (S.UNKNOWN, K.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.UNKNOWN, K.FILL): S.FILLED,
        (S.UNKNOWN, K.KILL): S.CANCELED,
        (S.UNKNOWN, K.CANCEL): S.CANCELED,
        (S.UNKNOWN, K.EXPIRE): S.EXPIRED,
        # resting, nothing filled
        (S.ACCEPTED, K.ACCEPT): S.ACCEPTED,
        (S.ACCEPTED, K.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.ACCEPTED, K.FILL): S.FILLED,
        (S.ACCEPTED, K.CANCEL_REQUEST): S.PENDING_CANCEL,
        (S.ACCEPTED, K.CANCEL): S.CANCELED,
        (S.ACCEPTED, K.EXPIRE): S.EXPIRED,
        (S.ACCEPTED, K.KILL): S.CANCELED,
        # resting, partly filled
        (S.PARTIALLY_FILLED, K.ACCEPT): S.PARTIALLY_FILLED,
        (S.PARTIALLY_FILLED, K.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.PARTIALLY_FILLED, K.FILL): S.FILLED,
        (S.PARTIALLY_FILLED, K.CANCEL_REQUEST): S.PENDING_CANCEL,
        (S.PARTIALLY_FILLED, K.CANCEL): S.CANCELED,
        (S.PARTIALLY_FILLED, K.EXPIRE): S.EXPIRED,
        (S.PARTIALLY_FILLED, K.KILL): S.CANCELED,
        (S.PARTIALLY_FILLED, K.REVERSE_FILL): RESTING,
        # cancel sent, no answer yet
        (S.PENDING_CANCEL, K.ACCEPT): S.PENDING_CANCEL,
        (S.PENDING_CANCEL, K.REJECT): S.REJECTED,
        (S.PENDING_CANCEL, K.CANCEL_REQUEST): S.PENDING_CANCEL,
        (S.PENDING_CANCEL, K.CANCEL_REJECT): RESTING,
        (S.PENDING_CANCEL, K.CANCEL): S.CANCELED,
        (S.PENDING_CANCEL, K.PARTIAL_FILL): S.PENDING_CANCEL,
        (S.PENDING_CANCEL, K.FILL): S.FILLED,
        (S.PENDING_CANCEL, K.EXPIRE): S.EXPIRED,
        (S.PENDING_CANCEL, K.KILL): S.CANCELED,
        (S.PENDING_CANCEL, K.REVERSE_FILL): S.PENDING_CANCEL,
        # terminal: only late or repeated news, and reversals
        (S.FILLED, K.ACCEPT): S.FILLED,
        (S.FILLED, K.REVERSE_FILL): S.CANCELED,
        (S.CANCELED, K.ACCEPT): S.CANCELED,
        (S.CANCELED, K.CANCEL): S.CANCELED,
        (S.CANCELED, K.KILL): S.CANCELED,
        (S.CANCELED, K.PARTIAL_FILL): S.CANCELED,
        (S.CANCELED, K.FILL): S.FILLED,
        (S.CANCELED, K.REVERSE_FILL): S.CANCELED,
        (S.EXPIRED, K.ACCEPT): S.EXPIRED,
        (S.EXPIRED, K.EXPIRE): S.EXPIRED,
        (S.EXPIRED, K.PARTIAL_FILL): S.EXPIRED,
        (S.EXPIRED, K.FILL): S.FILLED,
        (S.EXPIRED, K.REVERSE_FILL): S.EXPIRED,
        (S.REJECTED, K.REJECT): S.REJECTED,
    }
)

_KIND_OF: dict[type, OrderEventKind] = {
    OrderSubmitted: K.SUBMIT,
    OrderOutcomeUnknown: K.OUTCOME_UNKNOWN,
    OrderAccepted: K.ACCEPT,
    OrderRejected: K.REJECT,
    OrderCancelRequested: K.CANCEL_REQUEST,
    OrderCancelRejected: K.CANCEL_REJECT,
    OrderCanceled: K.CANCEL,
    OrderExpired: K.EXPIRE,
    OrderKilled: K.KILL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """One order, from the persisted intent to its terminal state. Immutable: `apply` returns a new Order."""

    client_order_id: str
    order_id: str  # 0x + 64 hex: the EIP-712 digest, computed before sending
    token_id: str
    side: Side
    price: Decimal  # limit price (for FOK/FAK: the worst acceptable price)
    size: Decimal  # shares
    created_ts: float
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    expiration: int = 0  # unix seconds, GTD only
    condition_id: str = ""
    strategy: str = ""
    status: OrderStatus = OrderStatus.CREATED
    filled: Decimal = ZERO
    filled_notional: Decimal = ZERO  # sum(price * size) of the fills
    fees: Decimal = ZERO  # pUSD
    fee_shares: Decimal = ZERO  # shares withheld as fees (buys on the paper venue)
    fills: tuple[OrderFilled, ...] = ()
    reversed_fills: tuple[OrderFilled, ...] = ()
    reason: str | None = None  # reason code of a rejection, cancellation or kill
    updated_ts: float | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise InputError("client_order_id", "must not be empty")
        if not is_order_id(self.order_id):
            raise InputError("order_id", f"must be 0x + 64 lower-case hex digits, got {self.order_id!r}")
        if not is_token_id(self.token_id):
            raise InputError("token_id", f"must be a decimal string of digits, got {self.token_id!r}")
        if not isinstance(self.side, Side):
            raise InputError("side", f"must be a Side, got {self.side!r}")
        check_order_terms(
            price=self.price,
            size=self.size,
            order_type=self.order_type,
            post_only=self.post_only,
            expiration=self.expiration,
        )
        if self.updated_ts is None:
            object.__setattr__(self, "updated_ts", self.created_ts)

    @classmethod
    def from_intent(cls, intent: OrderIntent, *, order_id: str, ts: float) -> Order:
        """A CREATED order for an intent the risk gate accepted (persist it, then send it)."""
        return cls(
            client_order_id=intent.client_order_id,
            order_id=order_id,
            token_id=intent.token_id,
            side=intent.side,
            price=intent.price,
            size=intent.size,
            created_ts=ts,
            order_type=intent.order_type,
            post_only=intent.post_only,
            expiration=intent.expiration,
            condition_id=intent.condition_id,
            strategy=intent.strategy,
        )

    # -- views ---------------------------------------------------------------------------------------------------

    @property
    def remaining(self) -> Decimal:
        """Shares still to fill (0 once filled, also after a market buy bought more than `size`)."""
        return max(self.size - self.filled, ZERO)

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self.filled_notional / self.filled if self.filled else None

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_market_buy(self) -> bool:
        return self.side is Side.BUY and not self.order_type.rests

    # -- transitions ---------------------------------------------------------------------------------------------

    def kind_of(self, event: OrderEvent) -> OrderEventKind:
        """The table's event kind for `event` applied to this order (fills depend on the filled size)."""
        if isinstance(event, OrderFilled):
            return K.FILL if self.filled + event.size >= self.size else K.PARTIAL_FILL
        if isinstance(event, OrderFillReversed):
            return K.REVERSE_FILL
        return _KIND_OF[type(event)]

    def can_apply(self, event: OrderEvent) -> bool:
        """True when `apply` would not raise `InvalidTransition` (duplicates count as applicable)."""
        if self._is_duplicate(event):
            return True
        return (self.status, self.kind_of(event)) in ORDER_TRANSITIONS

    def _is_duplicate(self, event: OrderEvent) -> bool:
        if isinstance(event, OrderFilled):
            key = event.key
            return any(f.key == key for f in self.fills) or any(f.key == key for f in self.reversed_fills)
        if isinstance(event, OrderFillReversed):
            trade_id = event.trade_id
            return not any(f.trade_id == trade_id for f in self.fills) and any(
                f.trade_id == trade_id for f in self.reversed_fills
            )
        return False

    def apply(self, event: OrderEvent) -> Order:
        if event.client_order_id != self.client_order_id:
            raise InvariantViolation(
                f"event for order {event.client_order_id!r} applied to order {self.client_order_id!r}"
            )
        if self._is_duplicate(event):
            return self
        kind = self.kind_of(event)
        target = ORDER_TRANSITIONS.get((self.status, kind))
        if target is None:
            raise InvalidTransition(f"order {self.client_order_id}", self.status, kind)
        if isinstance(event, OrderFilled):
            return self._fill(event, target)
        if isinstance(event, OrderFillReversed):
            return self._reverse(event, target)
        if kind is K.REJECT and self.filled:
            raise InvariantViolation(f"order {self.client_order_id}: rejected after it filled {self.filled}")
        if kind is K.KILL and self.order_type.rests:
            raise InvariantViolation(
                f"order {self.client_order_id}: only FOK/FAK orders are killed, not {self.order_type}"
            )
        status = self._resolve(target, self.filled)
        reason = self.reason
        if status is not self.status and isinstance(event, OrderRejected | OrderCanceled | OrderKilled):
            reason = event.reason
        elif status is not self.status and kind is K.EXPIRE:
            reason = "EXPIRED"
        return self._evolve(status=status, reason=reason, updated_ts=event.ts)

    def _evolve(self, **changes: object) -> Order:
        """`dataclasses.replace` for the state `apply` computes, without validating the terms again: they were
        checked when the order was built and no transition changes them (the order path applies several events per
        order; the checks were most of their cost)."""
        order = object.__new__(Order)
        for name in _ORDER_FIELDS:
            object.__setattr__(order, name, changes[name] if name in changes else getattr(self, name))
        return order

    @staticmethod
    def _resolve(target: OrderStatus | _Resting, filled: Decimal) -> OrderStatus:
        if isinstance(target, _Resting):
            return S.PARTIALLY_FILLED if filled else S.ACCEPTED
        return target

    def _fill(self, fill: OrderFilled, target: OrderStatus | _Resting) -> Order:
        if fill.token_id != self.token_id or fill.side is not self.side:
            raise InvariantViolation(
                f"order {self.client_order_id}: fill {fill.key} is {fill.side} {fill.token_id}, "
                f"the order is {self.side} {self.token_id}"
            )
        if fill.price > self.price if self.side is Side.BUY else fill.price < self.price:
            raise InvariantViolation(
                f"order {self.client_order_id}: fill {fill.key} at {fill.price} is worse than the limit {self.price}"
            )
        filled = self.filled + fill.size
        if filled > self.size and not self.is_market_buy:
            raise InvariantViolation(
                f"order {self.client_order_id}: fill {fill.key} overfills ({filled} > size {self.size})"
            )
        return self._evolve(
            status=self._resolve(target, filled),
            filled=filled,
            filled_notional=self.filled_notional + fill.notional,
            fees=self.fees + fill.fee,
            fee_shares=self.fee_shares + fill.fee_shares,
            fills=(*self.fills, fill),
            updated_ts=fill.ts,
        )

    def _reverse(self, event: OrderFillReversed, target: OrderStatus | _Resting) -> Order:
        undone = tuple(f for f in self.fills if f.trade_id == event.trade_id)
        if not undone:
            raise InvariantViolation(f"order {self.client_order_id}: no fill of trade {event.trade_id} to reverse")
        filled = self.filled - sum((f.size for f in undone), ZERO)
        return self._evolve(
            status=self._resolve(target, filled),
            filled=filled,
            filled_notional=self.filled_notional - sum((f.notional for f in undone), ZERO),
            fees=self.fees - sum((f.fee for f in undone), ZERO),
            fee_shares=self.fee_shares - sum((f.fee_shares for f in undone), ZERO),
            fills=tuple(f for f in self.fills if f.trade_id != event.trade_id),
            reversed_fills=(*self.reversed_fills, *undone),
            updated_ts=event.ts,
        )


#: The fields `Order._evolve` copies (every field: frozen, slotted).
_ORDER_FIELDS: Final = tuple(f.name for f in fields(Order))


_T = TradeStatus
_ON_CHAIN_OR_DONE: Final = frozenset({_T.MINED, _T.CONFIRMED, _T.RETRYING, _T.FAILED})

#: status -> the statuses it may move to. A status re-sent is a no-op (not listed); CONFIRMED and FAILED are final.
#: Skipping a step (MATCHED -> CONFIRMED) is allowed: updates can be missed across a reconnect. MATCHED and
#: MATCHED_NOT_BROADCASTED are the same step (matched, nothing on chain) in either order; RETRYING goes back to
#: MINED or CONFIRMED, or on to FAILED; FAILED may follow MINED (the fill is then reversed). UNKNOWN is no trade's
#: status: it is not a key, and no status moves to it.
TRADE_TRANSITIONS: Mapping[TradeStatus, frozenset[TradeStatus]] = MappingProxyType(
    {
        _T.MATCHED: _ON_CHAIN_OR_DONE | {_T.MATCHED_NOT_BROADCASTED},
        _T.MATCHED_NOT_BROADCASTED: _ON_CHAIN_OR_DONE | {_T.MATCHED},
        _T.MINED: frozenset({_T.CONFIRMED, _T.RETRYING, _T.FAILED}),
        _T.RETRYING: frozenset({_T.MINED, _T.CONFIRMED, _T.FAILED}),
        _T.CONFIRMED: frozenset(),
        _T.FAILED: frozenset(),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One venue trade of one of our orders, followed through settlement. MATCHED is not settled money."""

    trade_id: str
    client_order_id: str
    order_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    liquidity: Liquidity
    match_ts: float
    fee: Decimal = ZERO
    fee_shares: Decimal = ZERO
    status: TradeStatus = TradeStatus.MATCHED
    updated_ts: float | None = None

    def __post_init__(self) -> None:
        if not self.trade_id:
            raise InputError("trade_id", "must not be empty")
        if self.status is TradeStatus.UNKNOWN:
            raise InputError("status", "UNKNOWN is no trade's status (a trade seen first so is MATCHED)")
        if self.size <= ZERO:
            raise InputError("size", f"must be > 0, got {self.size}")
        if self.updated_ts is None:
            object.__setattr__(self, "updated_ts", self.match_ts)

    @property
    def is_settled(self) -> bool:
        return self.status is TradeStatus.CONFIRMED

    @property
    def is_failed(self) -> bool:
        return self.status is TradeStatus.FAILED

    def can_transition(self, status: TradeStatus) -> bool:
        return status is self.status or status in TRADE_TRANSITIONS[self.status]

    def apply_status(self, status: TradeStatus, ts: float) -> Trade:
        """The trade in its new settlement status; the same status again is a no-op; one the table does not allow
        (UNKNOWN included) raises `InvalidTransition` (check `can_transition` first)."""
        if status is self.status:
            return self
        if status not in TRADE_TRANSITIONS[self.status]:
            raise InvalidTransition(f"trade {self.trade_id}", self.status, status)
        return replace(self, status=status, updated_ts=ts)

    def fill_event(self, *, fill_id: str | None = None) -> OrderFilled:
        """The `OrderFilled` this trade means for its order."""
        return OrderFilled(
            client_order_id=self.client_order_id,
            trade_id=self.trade_id,
            fill_id=fill_id,
            token_id=self.token_id,
            side=self.side,
            price=self.price,
            size=self.size,
            liquidity=self.liquidity,
            fee=self.fee,
            fee_shares=self.fee_shares,
            ts=self.match_ts,
        )
