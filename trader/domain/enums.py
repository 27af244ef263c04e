"""The domain's small vocabularies, in one module so that orders, events, market and positions can share them."""

from __future__ import annotations

import enum


class Liquidity(enum.StrEnum):
    """Which side of a match we were on. Only takers pay the V2 platform fee."""

    TAKER = "TAKER"
    MAKER = "MAKER"


class OrderType(enum.StrEnum):
    GTC = "GTC"  # rests until filled or canceled
    GTD = "GTD"  # rests until `expiration` (unix seconds)
    FOK = "FOK"  # fill completely at once or cancel ("market order")
    FAK = "FAK"  # fill what is available at once, cancel the rest ("market order")

    @property
    def rests(self) -> bool:
        """True for the types that can rest on the book (and may be post-only)."""
        return self in (OrderType.GTC, OrderType.GTD)


class OrderStatus(enum.StrEnum):
    CREATED = "CREATED"  # intent persisted, not sent yet
    SUBMITTED = "SUBMITTED"  # sent, no answer yet
    #: sent, and its outcome is unknown (a timeout, a disconnect, a 5xx, a garbled reply): it may be at the venue. It
    #: stays so until the venue shows it (found by id, by its trades) or shows its absence (not found once the window
    #: for the venue's answer has passed); it is open meanwhile (it may fill, so it reserves what it would spend).
    UNKNOWN = "UNKNOWN"
    ACCEPTED = "ACCEPTED"  # resting on the book (venue status LIVE), nothing filled
    PARTIALLY_FILLED = "PARTIALLY_FILLED"  # resting, some filled
    PENDING_CANCEL = "PENDING_CANCEL"  # cancel sent, no answer yet
    FILLED = "FILLED"  # terminal
    CANCELED = "CANCELED"  # terminal: by us, by the venue, FOK killed or FAK remainder
    EXPIRED = "EXPIRED"  # terminal: GTD expiration
    REJECTED = "REJECTED"  # terminal: never on the book

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATUSES

    @property
    def is_open(self) -> bool:
        """Could still fill (and so reserves balance): sent and not terminal."""
        return self in _OPEN_ORDER_STATUSES


_TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)
_OPEN_ORDER_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.UNKNOWN,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
    }
)


class TradeStatus(enum.StrEnum):
    """The venue's settlement status of a trade (`trade.status` on the user channel and `GET /data/trades`; the 2026
    statuses, protocol.md §11 item 8). Only CONFIRMED is settled money; FAILED undoes the fill."""

    MATCHED = "MATCHED"  # matched, sent to the executor: not settled money
    MATCHED_NOT_BROADCASTED = "MATCHED_NOT_BROADCASTED"  # matched; its transaction not broadcast yet
    MINED = "MINED"  # seen on chain, not final
    CONFIRMED = "CONFIRMED"  # final (terminal)
    RETRYING = "RETRYING"  # transaction reverted or reorged; the operator retries (back to MINED/CONFIRMED, or FAILED)
    FAILED = "FAILED"  # failed for good (terminal), also after MINED: the fill is reversed
    #: A status this engine does not know, as the venue adapters report it (counted). Never a trade's own status: a
    #: trade seen first this way is kept as MATCHED (the match happened, nothing is settled), a known one keeps its own.
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in (TradeStatus.CONFIRMED, TradeStatus.FAILED)
