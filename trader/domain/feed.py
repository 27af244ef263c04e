"""The market feed's values: what one frame of a venue's market channel says, parsed and validated.

A market feed (the `MarketFeed` port of `trader.venues.base`; Polymarket's parses with
`trader.venues.polymarket.parse`) turns each frame into a `ParsedFrame`: the events in frame order (`BookSnapshot`,
`PriceChange` of `LevelChange`s, `LastTrade`, `TickSizeChange`, `BestBidAsk`, `NewMarket`, `MarketResolved`), the
`Drop`s (what it refused, each with a stable reason code), the known assets whose books may have missed data because
of a drop (`suspect`), and the number of entries read. The market-data service (`trader.engine.market_data`) applies
them to the books. Prices and sizes are exact `Decimal`s, already checked (range, tick grid) by the feed; nothing
here knows the venue's wire format.

The values a busy feed makes several of per frame (`LevelChange`, `PriceChange`, `BestBidAsk`) are named tuples,
the others frozen dataclasses: both immutable, but a named tuple is built about 3x faster (a frozen dataclass sets
each field through `object.__setattr__`), which is a few microseconds of every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from trader.domain.numbers import Side

__all__ = [
    "BestBidAsk",
    "BookSnapshot",
    "Drop",
    "LastTrade",
    "LevelChange",
    "MarketEvent",
    "MarketResolved",
    "NewMarket",
    "ParsedFrame",
    "PriceChange",
    "PriceSize",
    "TickSizeChange",
]

PriceSize = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Full book of one asset; replaces whatever was known. Levels are (price, size), size > 0, any order."""

    asset_id: str
    market: str | None
    bids: tuple[PriceSize, ...]
    asks: tuple[PriceSize, ...]
    ts_event_ms: int | None
    tick_size: Decimal | None = None
    last_trade_price: Decimal | None = None
    hash: str | None = None


class LevelChange(NamedTuple):
    """The new absolute size of one price level (0 removes it), with the venue's top of book after it if sent."""

    asset_id: str
    side: Side
    price: Decimal
    size: Decimal
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None


class PriceChange(NamedTuple):
    market: str | None
    ts_event_ms: int | None
    changes: tuple[LevelChange, ...]


@dataclass(frozen=True, slots=True)
class LastTrade:
    asset_id: str
    market: str | None
    price: Decimal
    size: Decimal | None
    side: Side | None
    fee_rate_bps: Decimal | None
    ts_event_ms: int | None
    transaction_hash: str | None = None


@dataclass(frozen=True, slots=True)
class TickSizeChange:
    asset_id: str
    market: str | None
    old_tick_size: Decimal | None
    new_tick_size: Decimal
    ts_event_ms: int | None


class BestBidAsk(NamedTuple):
    asset_id: str
    market: str | None
    best_bid: Decimal | None
    best_ask: Decimal | None
    ts_event_ms: int | None


@dataclass(frozen=True, slots=True)
class NewMarket:
    condition_id: str
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    question: str | None
    slug: str | None
    gamma_id: str | None
    event_id: str | None
    tick_size: Decimal | None
    active: bool | None
    tags: tuple[str, ...]
    ts_event_ms: int | None


@dataclass(frozen=True, slots=True)
class MarketResolved:
    condition_id: str
    token_ids: tuple[str, ...]
    winning_asset_id: str
    winning_outcome: str | None
    ts_event_ms: int | None


MarketEvent = BookSnapshot | PriceChange | LastTrade | TickSizeChange | BestBidAsk | NewMarket | MarketResolved


@dataclass(frozen=True, slots=True)
class Drop:
    """Something the feed refused. `reason` is a stable code of the feed's (Polymarket's: `DROP_REASONS` in
    `trader.venues.polymarket.parse`), `detail` is for humans."""

    reason: str
    detail: str
    asset_id: str | None = None


@dataclass(slots=True)
class ParsedFrame:
    """One frame of the market feed, parsed: its events in frame order, what was dropped, and which books that may
    have cost."""

    events: list[MarketEvent] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    #: known assets whose books may have missed data because of a drop in this frame
    suspect: set[str] = field(default_factory=set)
    #: book levels and level changes read (valid or not), for throughput statistics
    entries: int = 0
    #: the frame was the keepalive reply `PONG`
    pong: bool = False
    #: set by a feed that reports its frames to a tap (a benchmark's timing point): the consumer calls it once the
    #: frame's changes are applied and published (not for a PONG), before it asks for the next frame
    on_applied: Callable[[], None] | None = field(default=None, compare=False, repr=False)
