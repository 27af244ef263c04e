"""What the exchange core emits. Market-channel events carry exactly the strings the market channel publishes;
user-channel events carry frozen snapshots of the order or trade at that moment.

Listeners are plain synchronous callables (`Exchange.add_listener`), called in emission order inside the operation
that caused them. The WebSocket servers, the recorder of a test, or a differential checker all subscribe this way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LevelChange:
    """One `price_changes[]` entry: the new absolute size of a level of one asset's book."""

    asset_id: str
    price: str
    size: str
    side: str  # "BUY" = bid side of that asset's book, "SELL" = ask side
    hash: str
    best_bid: str
    best_ask: str


@dataclass(frozen=True, slots=True)
class BookChanged:
    """A `price_change` frame: every level change of one market in one operation (YES and mirrored NO)."""

    market: str
    timestamp_ms: int
    changes: tuple[LevelChange, ...]


@dataclass(frozen=True, slots=True)
class LastTradePrice:
    market: str
    asset_id: str
    price: str
    size: str
    side: str  # the taker's side
    fee_rate_bps: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class TickSizeChanged:
    market: str
    asset_id: str
    old_tick_size: str
    new_tick_size: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class BookResync:
    """The venue re-sends full `book` snapshots of these assets (it does so after trades that touch a book)."""

    market: str
    asset_ids: tuple[str, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the venue shows it (REST /data/orders and the user channel)."""

    order_id: str
    owner: str
    maker_address: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str
    outcome: str
    order_type: str
    status: str
    expiration: str
    associate_trades: tuple[str, ...]
    created_at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A user-channel `order` event: PLACEMENT, UPDATE or CANCELLATION (`status` may carry a reason)."""

    kind: str
    order: OrderView
    status: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class MakerOrderView:
    order_id: str
    owner: str
    maker_address: str
    matched_amount: str
    price: str
    fee_rate_bps: str
    asset_id: str
    outcome: str
    side: str


@dataclass(frozen=True, slots=True)
class TradeView:
    trade_id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: str
    size: str
    price: str
    fee_rate_bps: str
    fee: str
    status: str
    match_time: float
    last_update: float
    outcome: str
    owner: str  # the taker's API key
    maker_address: str  # the taker's wallet
    transaction_hash: str
    maker_orders: tuple[MakerOrderView, ...]


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A user-channel `trade` event for every status change (MATCHED, MINED, CONFIRMED, FAILED)."""

    trade: TradeView
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class MarketResolved:
    """A market resolved (the market channel's `market_resolved`, a custom-feature event). `winning_asset_id` and
    `winning_outcome` are "" when it resolved 50/50."""

    market: str
    gamma_id: str
    asset_ids: tuple[str, ...]
    winning_asset_id: str
    winning_outcome: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class MarketListed:
    """A market was listed while the sim runs (the market channel's `new_market`, a custom-feature event)."""

    market: str
    timestamp_ms: int


SimEventType = (
    BookChanged
    | LastTradePrice
    | TickSizeChanged
    | BookResync
    | OrderEvent
    | TradeEvent
    | MarketResolved
    | MarketListed
)
