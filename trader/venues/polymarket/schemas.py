"""Wire types of the Polymarket market channel and of the Gamma API, as msgspec Structs with the venue's field names.

These types never leave `trader.venues.polymarket`: `parse.py` and `gamma.py` turn them into domain values.

Market channel (protocol.md §2.3): a text frame is one JSON object or a JSON array of objects, each tagged by
`event_type`; the keepalive reply is the bare text `PONG`. Prices, sizes and tick sizes are decimal *strings* and
stay `str` here: `parse.py` makes them `Decimal` and checks them (a JSON number where a string belongs is a
schema error, never a float on its way to a price). Every field the engine does not need is left out (msgspec
skips unknown fields), and the fields it can live without are optional, so that a venue that adds or drops a
cosmetic field does not make us drop book data.

Gamma (protocol.md §8, §11.2): `outcomes`, `outcomePrices` and `clobTokenIds` arrive as JSON-encoded strings or as
real JSON arrays, so they are typed `str | list[Any]` and read in `gamma.py`; numbers such as
`orderPriceMinTickSize` are JSON numbers on some endpoints and strings on others, so they are typed
`str | int | float` and converted exactly (via the shortest repr of a float) in `gamma.py`.
"""

from __future__ import annotations

from typing import Any

import msgspec

# ----------------------------------------------------------------------------------------------------------------
# Market channel


class WireLevel(msgspec.Struct, frozen=True):
    price: str
    size: str


class WireBook(msgspec.Struct, frozen=True, tag_field="event_type", tag="book"):
    """Full L2 snapshot of one asset. Best levels come LAST in both lists on the real venue: never rely on order."""

    asset_id: str
    bids: list[WireLevel]
    asks: list[WireLevel]
    market: str | None = None
    timestamp: str | None = None
    hash: str | None = None
    tick_size: str | None = None
    last_trade_price: str | None = None


class WirePriceChangeEntry(msgspec.Struct, frozen=True):
    """One level of the current `price_change` schema; `size` is the level's new absolute size ("0" removes)."""

    asset_id: str
    price: str
    size: str
    side: str
    hash: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None


class WireLegacyChange(msgspec.Struct, frozen=True):
    """One level of the legacy (pre 2025-09-15) per-asset `price_change`, which carried no best prices."""

    price: str
    size: str
    side: str


class WirePriceChange(msgspec.Struct, frozen=True, tag_field="event_type", tag="price_change"):
    """Either the current form (`price_changes`, several assets) or the legacy form (`asset_id` + `changes`)."""

    market: str | None = None
    timestamp: str | None = None
    price_changes: list[WirePriceChangeEntry] | None = None
    asset_id: str | None = None
    changes: list[WireLegacyChange] | None = None
    hash: str | None = None


class WireLooseEntries(msgspec.Struct, frozen=True):
    """A `price_change` whose entries are decoded one by one, so that one bad entry does not lose the others."""

    market: str | None = None
    timestamp: str | None = None
    price_changes: list[Any] | None = None
    asset_id: str | None = None
    changes: list[Any] | None = None


class WireLastTradePrice(msgspec.Struct, frozen=True, tag_field="event_type", tag="last_trade_price"):
    asset_id: str
    price: str
    size: str | None = None
    side: str | None = None
    market: str | None = None
    fee_rate_bps: str | None = None
    timestamp: str | None = None
    transaction_hash: str | None = None


class WireTickSizeChange(msgspec.Struct, frozen=True, tag_field="event_type", tag="tick_size_change"):
    asset_id: str
    new_tick_size: str
    old_tick_size: str | None = None
    market: str | None = None
    timestamp: str | None = None


class WireBestBidAsk(msgspec.Struct, frozen=True, tag_field="event_type", tag="best_bid_ask"):
    asset_id: str
    best_bid: str | None = None
    best_ask: str | None = None
    spread: str | None = None
    market: str | None = None
    timestamp: str | None = None


class WireEventMessage(msgspec.Struct, frozen=True):
    id: str | None = None
    ticker: str | None = None
    slug: str | None = None
    title: str | None = None


class WireNewMarket(msgspec.Struct, frozen=True, tag_field="event_type", tag="new_market"):
    market: str
    assets_ids: list[str]
    id: str | None = None
    question: str | None = None
    slug: str | None = None
    condition_id: str | None = None
    outcomes: list[str] | None = None
    clob_token_ids: list[str] | None = None
    event_message: WireEventMessage | None = None
    tags: list[str] | None = None
    active: bool | None = None
    order_price_min_tick_size: str | None = None
    group_item_title: str | None = None
    timestamp: str | None = None


class WireMarketResolved(msgspec.Struct, frozen=True, tag_field="event_type", tag="market_resolved"):
    market: str
    assets_ids: list[str]
    winning_asset_id: str
    id: str | None = None
    winning_outcome: str | None = None
    tags: list[str] | None = None
    timestamp: str | None = None


WireMarketEvent = (
    WireBook
    | WirePriceChange
    | WireLastTradePrice
    | WireTickSizeChange
    | WireBestBidAsk
    | WireNewMarket
    | WireMarketResolved
)

#: event_type -> Struct, for the slow path that decodes a frame object by object.
MARKET_EVENT_TYPES: dict[str, type[WireMarketEvent]] = {
    "book": WireBook,
    "price_change": WirePriceChange,
    "last_trade_price": WireLastTradePrice,
    "tick_size_change": WireTickSizeChange,
    "best_bid_ask": WireBestBidAsk,
    "new_market": WireNewMarket,
    "market_resolved": WireMarketResolved,
}

#: The fast path: a whole frame (one object or an array of objects) in one typed decode.
MARKET_FRAME_DECODER: msgspec.json.Decoder[list[WireMarketEvent] | WireMarketEvent] = msgspec.json.Decoder(
    list[WireMarketEvent] | WireMarketEvent
)
#: The slow path: plain JSON values.
ANY_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


class WireSubscribe(msgspec.Struct, frozen=True, omit_defaults=False):
    """The first frame on a market connection (protocol.md §2.1; note the venue's spelling `assets_ids`)."""

    assets_ids: list[str]
    type: str = "market"
    initial_dump: bool = True
    custom_feature_enabled: bool = False


class WireSubscriptionChange(msgspec.Struct, frozen=True):
    """Subscribe to / unsubscribe from more assets on an open connection."""

    operation: str
    assets_ids: list[str]
    custom_feature_enabled: bool = False


# ----------------------------------------------------------------------------------------------------------------
# Gamma

GammaNumber = str | int | float
#: a list Gamma sends either JSON-encoded in a string (`"[\"Yes\", \"No\"]"`) or as a JSON array
GammaList = str | list[Any]


class WireGammaEventRef(msgspec.Struct, frozen=True):
    """An event as embedded in a market (or returned by /events, which also lists its markets)."""

    id: str
    slug: str | None = None
    title: str | None = None
    ticker: str | None = None
    negRisk: bool | None = None
    enableNegRisk: bool | None = None
    negRiskAugmented: bool | None = None
    negRiskMarketID: str | None = None
    active: bool | None = None
    closed: bool | None = None
    category: str | None = None
    tags: list[WireGammaTag] | None = None
    #: the event's markets as sent: read one by one in `gamma.py`, so that one bad market never refuses the event
    markets: list[Any] | None = None


class WireGammaTag(msgspec.Struct, frozen=True):
    id: str | None = None
    label: str | None = None
    slug: str | None = None


class WireGammaFeeSchedule(msgspec.Struct, frozen=True):
    rate: GammaNumber | None = None
    exponent: GammaNumber | None = None
    takerOnly: bool | None = None
    rebateRate: GammaNumber | None = None


class WireGammaMarket(msgspec.Struct, frozen=True):
    """A Gamma market object (`GET /markets`, `GET /markets/slug/{slug}`, `events[].markets[]`)."""

    id: str
    conditionId: str | None = None
    question: str | None = None
    slug: str | None = None
    outcomes: GammaList | None = None
    outcomePrices: GammaList | None = None
    clobTokenIds: GammaList | None = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    acceptingOrders: bool | None = None
    enableOrderBook: bool | None = None
    negRisk: bool | None = None
    negRiskMarketID: str | None = None
    negRiskOther: bool | None = None
    orderPriceMinTickSize: GammaNumber | None = None
    orderMinSize: GammaNumber | None = None
    makerBaseFee: GammaNumber | None = None
    takerBaseFee: GammaNumber | None = None
    feesEnabled: bool | None = None
    feeSchedule: WireGammaFeeSchedule | None = None
    feeType: str | None = None
    endDate: str | None = None
    liquidity: GammaNumber | None = None
    liquidityNum: GammaNumber | None = None
    liquidityClob: GammaNumber | None = None
    category: str | None = None
    groupItemTitle: str | None = None
    events: list[WireGammaEventRef] | None = None


class WireGammaMarketsPage(msgspec.Struct, frozen=True):
    """A page of `GET /markets/keyset`; the last page has no `next_cursor` (protocol.md §11.1)."""

    markets: list[Any]
    next_cursor: str | None = None


class WireGammaEventsPage(msgspec.Struct, frozen=True):
    """A page of `GET /events/keyset`, as `WireGammaMarketsPage`."""

    events: list[Any]
    next_cursor: str | None = None
