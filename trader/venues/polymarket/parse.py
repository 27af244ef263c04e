"""Market-channel frames -> validated domain values. Pure: no I/O, no clock, never raises on bad input.

`parse_market_frame(data, ticks)` takes one WebSocket text frame and the current tick size of every asset we
follow (`ticks`: asset id -> tick; its keys are the *known* assets), and returns a `ParsedFrame` (the venue-neutral
values of `trader.domain.feed`): the events in frame order, the drops (each with a stable reason code), the known
assets whose books may have missed data, and the number of entries (book levels and level changes) it read.

Validation at the edge:
* prices and sizes are `Decimal` parsed from the venue's strings; a JSON number where a string belongs is a
  schema error (`BAD_FIELD`), never a float on its way to a price;
* prices are finite and within [0, 1]; a book level or level change that adds size must sit on the asset's
  current tick grid (`PRICE_OFF_TICK`); a removal (size 0) needs only the range check, so that levels left on a
  finer grid by a tick-size change can still be removed;
* sizes are finite and >= 0; a book snapshot lists each price once (`DUPLICATE_LEVEL`);
* only known assets are accepted (`UNKNOWN_ASSET`); `new_market` is about assets nobody knows yet and
  `market_resolved` only names assets, so those two are not checked against `ticks`;
* a tick size comes from the venue's set of tick sizes; a `tick_size_change` (or the `tick_size` of a `book`)
  applies at once to the rest of the same frame.

Bad input policy: **one invalid field drops the smallest unit that contains it** (a level change; a whole book
snapshot, because half a snapshot is a wrong book; any other event) and is counted under its reason. If what
was dropped could have changed a known asset's book (a level change, a snapshot, a tick-size change), that asset
is listed in `ParsedFrame.suspect`; the market-data service marks its book SUSPECT and resyncs it, and applies
the rest of the frame. A frame that is not JSON at all (malformed, not UTF-8, or nested deeper than the recursion
limit) is one `MALFORMED_JSON` drop and lists as suspect every known asset id that appears in its text. Unknown
event types, objects without `event_type` and non-object array items are counted and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from trader.domain.feed import (
    BestBidAsk,
    BookSnapshot,
    Drop,
    LastTrade,
    LevelChange,
    MarketEvent,
    MarketResolved,
    NewMarket,
    ParsedFrame,
    PriceChange,
    PriceSize,
    TickSizeChange,
)
from trader.domain.numbers import DECIMAL_EXPONENT_LIMIT, ONE, TICK_SIZES, ZERO, Side
from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error
from trader.venues.polymarket.schemas import (
    ANY_DECODER,
    MARKET_EVENT_TYPES,
    MARKET_FRAME_DECODER,
    WireBestBidAsk,
    WireBook,
    WireLastTradePrice,
    WireLegacyChange,
    WireLevel,
    WireLooseEntries,
    WireMarketEvent,
    WireMarketResolved,
    WireNewMarket,
    WirePriceChange,
    WirePriceChangeEntry,
    WireTickSizeChange,
)

MALFORMED_JSON: Final = "MALFORMED_JSON"
NOT_AN_OBJECT: Final = "NOT_AN_OBJECT"
MISSING_EVENT_TYPE: Final = "MISSING_EVENT_TYPE"
UNKNOWN_EVENT_TYPE: Final = "UNKNOWN_EVENT_TYPE"
BAD_FIELD: Final = "BAD_FIELD"
UNKNOWN_ASSET: Final = "UNKNOWN_ASSET"
BAD_NUMBER: Final = "BAD_NUMBER"
PRICE_OUT_OF_RANGE: Final = "PRICE_OUT_OF_RANGE"
PRICE_OFF_TICK: Final = "PRICE_OFF_TICK"
NEGATIVE_SIZE: Final = "NEGATIVE_SIZE"
BAD_SIDE: Final = "BAD_SIDE"
BAD_TICK_SIZE: Final = "BAD_TICK_SIZE"
BAD_TIMESTAMP: Final = "BAD_TIMESTAMP"
DUPLICATE_LEVEL: Final = "DUPLICATE_LEVEL"
EMPTY_PRICE_CHANGE: Final = "EMPTY_PRICE_CHANGE"

DROP_REASONS: Final = frozenset(
    {
        MALFORMED_JSON,
        NOT_AN_OBJECT,
        MISSING_EVENT_TYPE,
        UNKNOWN_EVENT_TYPE,
        BAD_FIELD,
        UNKNOWN_ASSET,
        BAD_NUMBER,
        PRICE_OUT_OF_RANGE,
        PRICE_OFF_TICK,
        NEGATIVE_SIZE,
        BAD_SIDE,
        BAD_TICK_SIZE,
        BAD_TIMESTAMP,
        DUPLICATE_LEVEL,
        EMPTY_PRICE_CHANGE,
    }
)

# ----------------------------------------------------------------------------------------------------------------
# Field parsers: raise _Invalid, which the event/entry loop turns into a Drop.

#: Builds a feed value (a NamedTuple) from its fields in order, in C: the NamedTuple's own constructor is a Python
#: function, and cost a third of a price_change entry's parse. Used where the fields are listed in their order.
_new: Final = tuple.__new__

_SIDES: Final[dict[str, Side]] = {"BUY": Side.BUY, "SELL": Side.SELL, "buy": Side.BUY, "sell": Side.SELL}
_TICKS_BY_TEXT: dict[str, Decimal] = {}
_DETAIL_CHARS: Final = 60


class _Invalid(Exception):
    """Internal control flow: an invalid field. Never escapes this module."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _number(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError, TypeError):
        raise _Invalid(BAD_NUMBER, f"{name} is not a decimal string: {_clip(text)}") from None
    if not value.is_finite():
        raise _Invalid(BAD_NUMBER, f"{name} is not finite: {_clip(text)}")
    if value and not -DECIMAL_EXPONENT_LIMIT <= value.adjusted() <= DECIMAL_EXPONENT_LIMIT:  # within_limits, inline
        raise _Invalid(BAD_NUMBER, f"{name} is out of range: {_clip(text)}")
    return value


#: Validated price texts -> values: `_PRICES` for the range check alone, `_ON_GRID[tick]` for range + grid. The
#: venue repeats the same few hundred price strings, and a dict lookup is ~10x cheaper than Decimal + checks.
#: Only texts that passed are cached, so the caches cannot change a result; they are cleared when full.
_PRICES: dict[str, Decimal] = {}
#: Validated size texts -> values, the same way: sizes repeat less than prices, but a book's levels and the
#: makers' requotes come back to the same few thousand.
_SIZES: dict[str, Decimal] = {}
_ON_GRID: dict[Decimal, dict[str, Decimal]] = {}
_CACHE_LIMIT: Final = 20_000


def _price(text: str, name: str, tick: Decimal | None) -> Decimal:
    """A price in [0, 1]; on the `tick` grid unless `tick` is None."""
    cache = _PRICES if tick is None else _ON_GRID.get(tick)
    if cache is not None:
        cached = cache.get(text)
        if cached is not None:
            return cached
    value = _number(text, name)
    if value < ZERO or value > ONE:
        raise _Invalid(PRICE_OUT_OF_RANGE, f"{name} {text!s:.40} is outside [0, 1]")
    if tick is not None and value % tick:
        raise _Invalid(PRICE_OFF_TICK, f"{name} {text!s:.40} is not a multiple of the tick size {tick}")
    if cache is None:
        assert tick is not None
        cache = _ON_GRID.setdefault(tick, {})
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[text] = value
    return value


def _size(text: str, name: str) -> Decimal:
    cached = _SIZES.get(text)
    if cached is not None:
        return cached
    value = _number(text, name)
    if value < ZERO:
        raise _Invalid(NEGATIVE_SIZE, f"{name} {text!s:.40} is negative")
    if len(_SIZES) >= _CACHE_LIMIT:
        _SIZES.clear()
    _SIZES[text] = value
    return value


def _optional_price(text: str | None, name: str) -> Decimal | None:
    """A reported top-of-book price; "" and missing mean 'not reported'."""
    if text is None or text == "":
        return None
    return _price(text, name, None)


def _tick(text: str, name: str) -> Decimal:
    tick = _TICKS_BY_TEXT.get(text)
    if tick is None:
        value = _number(text, name)
        if value not in TICK_SIZES:
            raise _Invalid(BAD_TICK_SIZE, f"{name} {text!s:.40} is not a tick size of the venue")
        tick = value
        if len(_TICKS_BY_TEXT) < 64:  # a cache of the few spellings the venue uses; bounded against junk
            _TICKS_BY_TEXT[text] = tick
    return tick


def _timestamp(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise _Invalid(BAD_TIMESTAMP, f"timestamp is not epoch milliseconds: {_clip(text)}")
    return int(text)


def _side(text: str) -> Side:
    side = _SIDES.get(text)
    if side is None:
        raise _Invalid(BAD_SIDE, f"side must be BUY or SELL, got {_clip(text)}")
    return side


def _levels(levels: Sequence[WireLevel], tick: Decimal, name: str) -> tuple[PriceSize, ...]:
    out: dict[Decimal, Decimal] = {}
    for level in levels:
        size = _size(level.size, f"{name}.size")
        price = _price(level.price, f"{name}.price", tick if size else None)
        if price in out:
            raise _Invalid(DUPLICATE_LEVEL, f"{name} lists price {price} twice")
        out[price] = size
    return tuple((p, s) for p, s in out.items() if s)


# ----------------------------------------------------------------------------------------------------------------
# The frame parser


class _FrameParser:
    """State for one frame: the ticks in force (the caller's, overlaid by changes earlier in the frame)."""

    __slots__ = ("changed_ticks", "out", "ticks")

    def __init__(self, ticks: Mapping[str, Decimal]) -> None:
        self.ticks = ticks
        self.changed_ticks: dict[str, Decimal] = {}
        self.out = ParsedFrame()

    def tick(self, asset_id: str) -> Decimal | None:
        if self.changed_ticks:
            tick = self.changed_ticks.get(asset_id)
            if tick is not None:
                return tick
        return self.ticks.get(asset_id)

    def drop(self, reason: str, detail: str, asset_id: str | None = None, *, book_data: bool = False) -> None:
        self.out.drops.append(Drop(reason, detail, asset_id))
        if book_data and asset_id is not None and asset_id in self.ticks:
            self.out.suspect.add(asset_id)

    def known_tick(self, asset_id: str, what: str) -> Decimal:
        tick = self.tick(asset_id)
        if tick is None:
            raise _Invalid(UNKNOWN_ASSET, f"{what} for an asset that is not subscribed: {_clip(asset_id)}")
        return tick

    # -- one event --------------------------------------------------------------------------------------------

    def event(self, wire: WireMarketEvent) -> None:
        if isinstance(wire, WirePriceChange):
            self.price_change(wire)
            return
        try:
            event = self._convert(wire)
        except _Invalid as exc:
            book_data = isinstance(wire, WireBook | WireTickSizeChange) and exc.reason != UNKNOWN_ASSET
            self.drop(exc.reason, exc.detail, getattr(wire, "asset_id", None), book_data=book_data)
        except ArithmeticError as exc:  # a Decimal operation that a hostile value pushed out of the context
            asset_id = getattr(wire, "asset_id", None)
            book_data = isinstance(wire, WireBook | WireTickSizeChange)
            self.drop(BAD_NUMBER, f"{type(wire).__name__}: {exc!r}", asset_id, book_data=book_data)
        else:
            self.out.events.append(event)

    def _convert(self, wire: WireMarketEvent) -> MarketEvent:
        if isinstance(wire, WireBestBidAsk):  # the most frequent after price_change
            self.known_tick(wire.asset_id, "best_bid_ask")
            bid, ask = wire.best_bid, wire.best_ask
            return _new(
                BestBidAsk,
                (
                    wire.asset_id,
                    wire.market,
                    (_PRICES.get(bid) or _price(bid, "best_bid", None)) if bid else None,
                    (_PRICES.get(ask) or _price(ask, "best_ask", None)) if ask else None,
                    _timestamp(wire.timestamp),
                ),
            )
        if isinstance(wire, WireBook):
            return self.book(wire)
        if isinstance(wire, WireLastTradePrice):
            self.known_tick(wire.asset_id, "last_trade_price")
            return LastTrade(
                asset_id=wire.asset_id,
                market=wire.market,
                price=_price(wire.price, "price", None),
                size=None if wire.size is None else _size(wire.size, "size"),
                side=None if wire.side is None else _side(wire.side),
                fee_rate_bps=None if not wire.fee_rate_bps else _size(wire.fee_rate_bps, "fee_rate_bps"),
                ts_event_ms=_timestamp(wire.timestamp),
                transaction_hash=wire.transaction_hash,
            )
        if isinstance(wire, WireTickSizeChange):
            self.known_tick(wire.asset_id, "tick_size_change")
            new_tick = _tick(wire.new_tick_size, "new_tick_size")
            old_tick = None if not wire.old_tick_size else _tick(wire.old_tick_size, "old_tick_size")
            event = TickSizeChange(wire.asset_id, wire.market, old_tick, new_tick, _timestamp(wire.timestamp))
            self.changed_ticks[wire.asset_id] = new_tick
            return event
        if isinstance(wire, WireNewMarket):
            tick_text = wire.order_price_min_tick_size
            return NewMarket(
                condition_id=wire.condition_id or wire.market,
                token_ids=tuple(wire.clob_token_ids or wire.assets_ids),
                outcomes=tuple(wire.outcomes or ()),
                question=wire.question,
                slug=wire.slug,
                gamma_id=wire.id,
                event_id=None if wire.event_message is None else wire.event_message.id,
                tick_size=None if not tick_text else _tick(tick_text, "order_price_min_tick_size"),
                active=wire.active,
                tags=tuple(wire.tags or ()),
                ts_event_ms=_timestamp(wire.timestamp),
            )
        assert isinstance(wire, WireMarketResolved), type(wire)
        return MarketResolved(
            condition_id=wire.market,
            token_ids=tuple(wire.assets_ids),
            winning_asset_id=wire.winning_asset_id,
            winning_outcome=wire.winning_outcome,
            ts_event_ms=_timestamp(wire.timestamp),
        )

    def book(self, wire: WireBook) -> BookSnapshot:
        self.out.entries += len(wire.bids) + len(wire.asks)
        tick = self.known_tick(wire.asset_id, "book")
        if wire.tick_size:
            tick = _tick(wire.tick_size, "tick_size")
            self.changed_ticks[wire.asset_id] = tick
        return BookSnapshot(
            asset_id=wire.asset_id,
            market=wire.market,
            bids=_levels(wire.bids, tick, "bids"),
            asks=_levels(wire.asks, tick, "asks"),
            ts_event_ms=_timestamp(wire.timestamp),
            tick_size=tick if wire.tick_size else None,
            last_trade_price=_optional_price(wire.last_trade_price, "last_trade_price"),
            hash=wire.hash,
        )

    # -- price_change: entry by entry ----------------------------------------------------------------------------

    def price_change(self, wire: WirePriceChange) -> None:
        if wire.price_changes is not None:
            entries: Sequence[WirePriceChangeEntry] = wire.price_changes
            self.changes(wire.market, wire.timestamp, entries, ())
        elif wire.changes is not None and wire.asset_id is not None:
            self.legacy_changes(wire.market, wire.timestamp, wire.asset_id, wire.changes, ())
        else:
            self.drop(EMPTY_PRICE_CHANGE, "price_change without price_changes or asset_id+changes", wire.asset_id)

    def changes(
        self,
        market: str | None,
        timestamp: str | None,
        entries: Sequence[WirePriceChangeEntry],
        failed: Sequence[tuple[str | None, str]],
    ) -> None:
        """The current form. `failed` are entries the slow path could not even decode: (asset id, detail)."""
        self.out.entries += len(entries) + len(failed)
        for asset_id, detail in failed:
            self.drop(BAD_FIELD, detail, asset_id, book_data=True)
        try:
            ts = _timestamp(timestamp)
        except _Invalid as exc:
            for entry in entries:
                self.drop(exc.reason, exc.detail, entry.asset_id, book_data=True)
            return
        changes: list[LevelChange] = []
        ticks, changed_ticks, prices, sizes, sides = self.ticks, self.changed_ticks, _PRICES, _SIZES, _SIDES
        grid_tick: Decimal | None = None
        grid: dict[str, Decimal] | None = None
        # The hot path of the whole feed: cache hits are inlined, misses and errors go through the checked parsers.
        for entry in entries:
            asset_id = entry.asset_id
            try:
                tick = changed_ticks.get(asset_id) if changed_ticks else None
                if tick is None:
                    tick = ticks.get(asset_id)
                    if tick is None:
                        tick = self.known_tick(asset_id, "price_change")
                size = sizes.get(entry.size)
                if size is None:
                    size = _size(entry.size, "size")
                side = sides.get(entry.side)
                if side is None:
                    side = _side(entry.side)
                if size:
                    if tick is not grid_tick:
                        grid_tick, grid = tick, _ON_GRID.get(tick)
                    price = grid.get(entry.price) if grid is not None else None
                    if price is None:
                        price = _price(entry.price, "price", tick)
                        grid_tick = None  # the miss may have made the tick's cache
                else:
                    price = _price(entry.price, "price", None)
                text = entry.best_bid
                best_bid = (prices.get(text) or _price(text, "best_bid", None)) if text else None
                text = entry.best_ask
                best_ask = (prices.get(text) or _price(text, "best_ask", None)) if text else None
                changes.append(_new(LevelChange, (asset_id, side, price, size, best_bid, best_ask)))
            except _Invalid as exc:
                self.drop(exc.reason, exc.detail, asset_id, book_data=exc.reason != UNKNOWN_ASSET)
            except ArithmeticError as exc:
                self.drop(BAD_NUMBER, f"price_change entry: {exc!r}", asset_id, book_data=True)
        if changes:
            self.out.events.append(_new(PriceChange, (market, ts, tuple(changes))))

    def legacy_changes(
        self,
        market: str | None,
        timestamp: str | None,
        asset_id: str,
        entries: Sequence[WireLegacyChange],
        failed: Sequence[str],
    ) -> None:
        converted = [WirePriceChangeEntry(asset_id, e.price, e.size, e.side) for e in entries]
        self.changes(market, timestamp, converted, [(asset_id, detail) for detail in failed])

    # -- the slow path: a frame that did not decode as a whole ---------------------------------------------------

    def salvage(self, value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                self.drop(NOT_AN_OBJECT, f"frame item is not an object: {_clip(item)}")
                continue
            event_type = item.get("event_type")
            asset_id = item.get("asset_id")
            asset_id = asset_id if isinstance(asset_id, str) else None
            if event_type is None:
                self.drop(MISSING_EVENT_TYPE, f"object without event_type, keys {_clip(sorted(item)[:8])}", asset_id)
                continue
            cls = MARKET_EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
            if cls is None:
                self.drop(UNKNOWN_EVENT_TYPE, f"event_type {_clip(event_type)}", asset_id)
                continue
            try:
                wire = msgspec.convert(item, cls)
            except msgspec.ValidationError as exc:
                if cls is WirePriceChange:
                    self.salvage_price_change(item, exc)
                else:
                    book_data = cls in (WireBook, WireTickSizeChange)
                    self.drop(BAD_FIELD, f"{event_type}: {exc}", asset_id, book_data=book_data)
                continue
            self.event(wire)

    def salvage_price_change(self, item: dict[str, Any], error: msgspec.ValidationError) -> None:
        try:
            loose = msgspec.convert(item, WireLooseEntries)
        except msgspec.ValidationError as exc:
            assets: list[str | None] = [*sorted(_mentioned_assets(item, self.ticks))]
            for known in assets or [None]:
                self.drop(BAD_FIELD, f"price_change: {exc}", known, book_data=True)
            return
        if loose.price_changes is not None:
            good: list[WirePriceChangeEntry] = []
            failed: list[tuple[str | None, str]] = []
            for entry in loose.price_changes:
                try:
                    good.append(msgspec.convert(entry, WirePriceChangeEntry))
                except msgspec.ValidationError as exc:
                    named = entry.get("asset_id") if isinstance(entry, dict) else None
                    failed.append((named if isinstance(named, str) else None, f"price_change entry: {exc}"))
            self.changes(loose.market, loose.timestamp, good, failed)
        elif loose.changes is not None and loose.asset_id is not None:
            legacy: list[WireLegacyChange] = []
            legacy_failed: list[str] = []
            for entry in loose.changes:
                try:
                    legacy.append(msgspec.convert(entry, WireLegacyChange))
                except msgspec.ValidationError as exc:
                    legacy_failed.append(f"price_change change: {exc}")
            self.legacy_changes(loose.market, loose.timestamp, loose.asset_id, legacy, legacy_failed)
        else:
            self.drop(EMPTY_PRICE_CHANGE, f"price_change: {error}", loose.asset_id, book_data=True)


_ASSET_ID_TEXT = re.compile(r"\d{10,}")


def _mentioned_assets(value: object, ticks: Mapping[str, Decimal]) -> set[str]:
    """Known asset ids named by `asset_id` fields of an object or of its `price_changes` entries."""
    found: set[str] = set()
    if isinstance(value, dict):
        asset_id = value.get("asset_id")
        if isinstance(asset_id, str) and asset_id in ticks:
            found.add(asset_id)
        for key in ("price_changes", "changes"):
            entries = value.get(key)
            if isinstance(entries, list):
                for entry in entries:
                    found |= _mentioned_assets(entry, ticks)
    return found


def _malformed(parser: _FrameParser, data: str | bytes, exc: Exception) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    parser.drop(MALFORMED_JSON, f"{describe_json_error(exc)}; frame starts {_clip(text[:40])}")
    parser.out.suspect.update(a for a in _ASSET_ID_TEXT.findall(text) if a in parser.ticks)


def parse_market_frame(data: str | bytes, ticks: Mapping[str, Decimal]) -> ParsedFrame:
    """One market-channel text frame -> events, drops and suspect assets. Never raises on bad input."""
    if data in ("PONG", b"PONG"):
        return ParsedFrame(pong=True)
    parser = _FrameParser(ticks)
    try:
        decoded = MARKET_FRAME_DECODER.decode(data)
    except msgspec.ValidationError:
        # Not entirely our schema (or not JSON further on: msgspec stops at the first type mismatch).
        try:
            value = ANY_DECODER.decode(data)
        except JSON_INPUT_ERRORS as exc:
            _malformed(parser, data, exc)
        else:
            parser.salvage(value)
    except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, or nested too deeply
        if data.strip() in ("PONG", b"PONG"):
            return ParsedFrame(pong=True)
        _malformed(parser, data, exc)
    else:
        if isinstance(decoded, list):
            for wire in decoded:
                parser.event(wire)
        else:
            parser.event(decoded)
    return parser.out


# ----------------------------------------------------------------------------------------------------------------
# Single events, for frames that arrive without `event_type` (some captured ones) and for tests


def parse_event(wire: WireMarketEvent, ticks: Mapping[str, Decimal]) -> ParsedFrame:
    """One decoded wire event; its `event_type` may have been absent from the JSON (the caller chose the type)."""
    parser = _FrameParser(ticks)
    parser.event(wire)
    return parser.out
