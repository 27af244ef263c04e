"""Wire types of the CLOB REST replies and of the user channel (protocol.md §3, §4, §5), as msgspec Structs.

Field names are the venue's. Prices, sizes and amounts stay strings here (the venue sends decimal strings; a few
fields are JSON numbers, typed to accept both). Turning them into domain values, with checks that name the field,
is `trader.venues.polymarket.rest` / `user_ws`'s job. Unknown fields are ignored: the venue adds fields over time.
The market channel's types are in `schemas.py`.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = [
    "WireApiKey",
    "WireBalanceAllowance",
    "WireBook",
    "WireBookLevel",
    "WireCancelReply",
    "WireErrorReply",
    "WireFeeRate",
    "WireHeartbeatReply",
    "WireMakerOrder",
    "WireNegRisk",
    "WireOpenOrder",
    "WireOrderReply",
    "WireOrdersPage",
    "WireTickSize",
    "WireTrade",
    "WireTradesPage",
    "WireUserEnvelope",
    "WireUserOrder",
    "WireUserSubscribe",
]


class WireErrorReply(msgspec.Struct):
    """`{"error": "..."}`, the venue's error body; some replies use `errorMsg` instead."""

    error: str | None = None
    errorMsg: str | None = None


class WireApiKey(msgspec.Struct):
    """`POST /auth/api-key` and `GET /auth/derive-api-key`; also the `auth` of the user channel's subscription."""

    apiKey: str
    secret: str
    passphrase: str


class WireOrderReply(msgspec.Struct):
    """One result of `POST /order` (and one element of `POST /orders`)."""

    success: bool = False
    errorMsg: str | None = None
    orderID: str | None = None
    status: str | None = None
    makingAmount: str | None = None
    takingAmount: str | None = None
    transactionsHashes: list[str] | None = None
    tradeIDs: list[str] | None = None
    error: str | None = None


class WireCancelReply(msgspec.Struct):
    """`DELETE /order`, `/orders`, `/cancel-all`, `/cancel-market-orders`."""

    canceled: list[str] | None = None
    not_canceled: dict[str, str] | None = None


class WireOpenOrder(msgspec.Struct):
    """An order as `GET /data/orders` and `GET /data/order/{id}` show it (and, with a few more fields, the user
    channel's `order` event)."""

    id: str
    status: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str
    owner: str = ""
    maker_address: str = ""
    outcome: str = ""
    order_type: str = ""
    expiration: str | int | None = None
    associate_trades: list[str] | None = None
    created_at: str | int | None = None


class WireOrdersPage(msgspec.Struct):
    data: list[WireOpenOrder]
    next_cursor: str
    limit: int | None = None
    count: int | None = None


class WireMakerOrder(msgspec.Struct):
    order_id: str
    matched_amount: str
    price: str
    owner: str = ""
    maker_address: str = ""
    asset_id: str = ""
    outcome: str = ""
    side: str | None = None
    fee_rate_bps: str | int | None = None


class WireTrade(msgspec.Struct):
    """A trade as `GET /data/trades` and the user channel's `trade` event show it."""

    id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: str
    size: str
    price: str
    status: str
    match_time: str | int | None = None
    matchtime: str | int | None = None  # the older spelling
    last_update: str | int | None = None
    timestamp: str | int | None = None
    fee_rate_bps: str | int | None = None
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    transaction_hash: str | None = None
    bucket_index: int | None = None
    trader_side: str | None = None
    maker_orders: list[WireMakerOrder] | None = None
    type: str | None = None
    event_type: str | None = None


class WireTradesPage(msgspec.Struct):
    data: list[WireTrade]
    next_cursor: str
    limit: int | None = None
    count: int | None = None


class WireUserOrder(WireOpenOrder, kw_only=True):
    """The user channel's `order` event (PLACEMENT, UPDATE or CANCELLATION): a `WireOpenOrder` and a few more fields."""

    type: str
    order_owner: str = ""
    timestamp: str | int | None = None
    event_type: str | None = None


class WireUserEnvelope(msgspec.Struct):
    """Just enough of a user-channel frame to know its kind (older captures have no `event_type`)."""

    event_type: str | None = None
    type: str | None = None


class WireUserSubscribe(msgspec.Struct, omit_defaults=True):
    """The first frame on the user channel: raw L2 credentials (no HMAC) and the condition ids to follow (omitted
    when empty: every market). `type` has no default so that it is always sent."""

    type: str
    auth: WireApiKey
    markets: list[str] = msgspec.field(default_factory=list)


class WireBookLevel(msgspec.Struct):
    price: str
    size: str


class WireBook(msgspec.Struct):
    """`GET /book`. Best levels are the LAST elements of `bids` and `asks` (protocol.md §4)."""

    asset_id: str
    bids: list[WireBookLevel]
    asks: list[WireBookLevel]
    market: str = ""
    timestamp: str | int | None = None
    hash: str | None = None
    min_order_size: Decimal | None = None
    tick_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: str | None = None


class WireTickSize(msgspec.Struct):
    """`GET /tick-size`: a JSON number, decoded exactly."""

    minimum_tick_size: Decimal


class WireNegRisk(msgspec.Struct):
    neg_risk: bool


class WireFeeRate(msgspec.Struct):
    """`GET /fee-rate`: bps, seen as a number and as a string."""

    base_fee: int | str


class WireBalanceAllowance(msgspec.Struct):
    """`GET /balance-allowance`: base units (6 decimals) as integer strings; V2 replies carry `allowances`, spender
    address -> base units (older ones a single `allowance`)."""

    balance: str | int
    allowance: str | int | None = None
    allowances: dict[str, str | int] | None = None


class WireClobToken(msgspec.Struct):
    token_id: str
    outcome: str | None = None
    winner: bool | None = None


class WireClobMarket(msgspec.Struct):
    """`GET /markets/{condition_id}`: only what a resolution needs (captured/clob_market_closed_*.json)."""

    condition_id: str
    tokens: list[WireClobToken]
    closed: bool | None = None
    active: bool | None = None
    accepting_orders: bool | None = None
    neg_risk: bool | None = None


class WireHeartbeatReply(msgspec.Struct):
    """`POST /v1/heartbeats`; a 400 for a stale id carries the id to use next, with an `error_msg` (production; older
    replies said `error`): only the id is read."""

    heartbeat_id: str | None = None
    error: str | None = None
