"""The local L2 order book of one token, and a bounded price history.

`OrderBook` is mutable on purpose: the market-data reader applies venue frames to it in place and strategies read
the latest state (market data is state, not a queue). Prices and sizes are `Decimal`s; a price is a key compared
numerically, so "0.5", "0.50" and ".5" are the same level (the venue's strings are not canonical).

Layout: per side, a dict price -> size plus a list of the prices kept sorted ascending with `bisect`. The best bid
is the last bid price and the best ask the first ask price, so `best_bid` / `best_ask` are O(1) (and the `Level`
they return is cached until that side changes); `apply_level` costs one dict operation, plus a bisect insert or
delete when a level appears or disappears.

Venue order is never trusted: a snapshot's lists can come best-last (WebSocket `book`, REST `/book`) or best-first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from trader.domain.numbers import ONE, TICK_SIZES, ZERO, Side

__all__ = ["FillEstimate", "Level", "OrderBook"]


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class FillEstimate:
    """What the visible book could fill for a taker order right now (no fees, no latency)."""

    filled: Decimal  # shares that the visible book can fill (<= requested)
    notional: Decimal  # sum(price * size) over the filled part
    vwap: Decimal | None  # notional / filled, None when nothing fills
    worst_price: Decimal | None  # the last (worst) price touched
    complete: bool  # filled == requested


class _Unset:
    """Marks a cached best level as stale."""


_STALE = _Unset()


def _check_level(price: Decimal, size: Decimal) -> None:
    if size < ZERO:
        raise ValueError(f"size must not be negative, got {size} at price {price}")
    if not ZERO <= price <= ONE:
        raise ValueError(f"price {price} is outside [0, 1]")


def _check_tick(tick_size: Decimal) -> Decimal:
    if tick_size not in TICK_SIZES:
        raise ValueError(f"unsupported tick size {tick_size}")
    return tick_size


class OrderBook:
    """The L2 book of one asset (token): bids are the BUY side, asks the SELL side."""

    __slots__ = (
        "_ask_prices",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_prices",
        "_bids",
        "asset_id",
        "change_count",
        "last_update",
        "tick_size",
        "ts_event_ms",
    )

    def __init__(self, asset_id: str, tick_size: Decimal) -> None:
        self.asset_id = asset_id
        self.tick_size = _check_tick(tick_size)
        self.change_count = 0
        self.last_update: float | None = None
        self.ts_event_ms: int | None = None
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: best bid last
        self._ask_prices: list[Decimal] = []  # ascending: best ask first
        self._best_bid: Level | _Unset | None = None
        self._best_ask: Level | _Unset | None = None

    # -- changes ----------------------------------------------------------------------------------------------

    def set_tick_size(self, tick_size: Decimal) -> None:
        """A `tick_size_change` takes effect at once. The levels are kept (the venue re-sends what changes)."""
        self.tick_size = _check_tick(tick_size)

    def apply_snapshot(
        self,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        *,
        now: float,
        ts_event_ms: int | None = None,
    ) -> None:
        """Replace the whole book. Input order is irrelevant; zero sizes are skipped.

        A negative size, a price outside [0, 1] or the same price twice on one side raises `ValueError` and leaves
        the book unchanged.
        """
        new_bids = self._side_from(bids, "bids")
        new_asks = self._side_from(asks, "asks")
        self._bids, self._asks = new_bids, new_asks
        self._bid_prices = sorted(new_bids)
        self._ask_prices = sorted(new_asks)
        self._best_bid = self._best_ask = _STALE
        self._touch(now, ts_event_ms)

    @staticmethod
    def _side_from(levels: Iterable[tuple[Decimal, Decimal]], name: str) -> dict[Decimal, Decimal]:
        side: dict[Decimal, Decimal] = {}
        for price, size in levels:
            _check_level(price, size)
            if price in side:
                raise ValueError(f"{name}: price {price} appears twice in one snapshot")
            if size:
                side[price] = size
            else:
                side[price] = ZERO  # remembered for the duplicate check, dropped below
        return {price: size for price, size in side.items() if size}

    def apply_level(
        self, side: Side, price: Decimal, size: Decimal, *, now: float, ts_event_ms: int | None = None
    ) -> None:
        """Set the ABSOLUTE size at one price: BUY is the bid side, SELL the ask side; size 0 removes the level.

        Removing a level that is not there is not an error (it still counts as an applied change).
        `last_update` becomes `now` and `ts_event_ms` becomes the value given (None when not given).
        """
        _check_level(price, size)
        if side is Side.BUY:
            levels, prices = self._bids, self._bid_prices
            self._best_bid = _STALE
        elif side is Side.SELL:
            levels, prices = self._asks, self._ask_prices
            self._best_ask = _STALE
        else:
            raise ValueError(f"side must be a Side, got {side!r}")
        if size:
            if price not in levels:
                insort(prices, price)
            levels[price] = size
        elif levels.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]
        self._touch(now, ts_event_ms)

    def clear(self, *, now: float, ts_event_ms: int | None = None) -> None:
        """Drop every level (on reconnect, before the new snapshot)."""
        self.apply_snapshot((), (), now=now, ts_event_ms=ts_event_ms)

    def _touch(self, now: float, ts_event_ms: int | None) -> None:
        self.change_count += 1
        self.last_update = now
        self.ts_event_ms = ts_event_ms

    # -- reading -----------------------------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        best = self._best_bid
        if isinstance(best, _Unset):
            best = Level(self._bid_prices[-1], self._bids[self._bid_prices[-1]]) if self._bid_prices else None
            self._best_bid = best
        return best

    def best_ask(self) -> Level | None:
        best = self._best_ask
        if isinstance(best, _Unset):
            best = Level(self._ask_prices[0], self._asks[self._ask_prices[0]]) if self._ask_prices else None
            self._best_ask = best
        return best

    def best_bid_price(self) -> Decimal | None:
        """The best bid's price, without building its `Level`."""
        prices = self._bid_prices
        return prices[-1] if prices else None

    def best_ask_price(self) -> Decimal | None:
        """The best ask's price, without building its `Level`."""
        prices = self._ask_prices
        return prices[0] if prices else None

    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) / 2

    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return ask.price - bid.price

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (crossed or locked): the local book is wrong."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid.price >= ask.price

    def _walk(self, side: Side) -> Iterator[Decimal]:
        """Prices of one side, best first."""
        if side is Side.BUY:
            return reversed(self._bid_prices)
        if side is Side.SELL:
            return iter(self._ask_prices)
        raise ValueError(f"side must be a Side, got {side!r}")

    def levels(self, side: Side, depth: int | None = None) -> list[Level]:
        """The levels of one side, best first (at most `depth` of them)."""
        book = self._bids if side is Side.BUY else self._asks
        result: list[Level] = []
        for price in self._walk(side):
            if depth is not None and len(result) >= depth:
                break
            result.append(Level(price, book[price]))
        return result

    def depth(self, side: Side, *, limit_price: Decimal | None = None) -> Decimal:
        """Total size on one side at prices at or better than `limit_price` (all of it without a limit).

        Better means higher for bids (BUY) and lower for asks (SELL).
        """
        if side is Side.BUY:
            book, prices = self._bids, self._bid_prices
            start = 0 if limit_price is None else bisect_left(prices, limit_price)
            chosen = prices[start:]
        elif side is Side.SELL:
            book, prices = self._asks, self._ask_prices
            end = len(prices) if limit_price is None else bisect_right(prices, limit_price)
            chosen = prices[:end]
        else:
            raise ValueError(f"side must be a Side, got {side!r}")
        return sum((book[price] for price in chosen), ZERO)

    def fill_estimate(self, taker_side: Side, size: Decimal, *, limit_price: Decimal | None = None) -> FillEstimate:
        """Walk the side opposite to `taker_side` (a BUY walks the asks from the lowest), up to `limit_price`."""
        if size < ZERO:
            raise ValueError(f"size must not be negative, got {size}")
        maker_side = taker_side.opposite
        book = self._asks if maker_side is Side.SELL else self._bids
        remaining = size
        notional = ZERO
        worst: Decimal | None = None
        for price in self._walk(maker_side):
            if remaining <= ZERO:
                break
            if limit_price is not None and (price > limit_price if taker_side is Side.BUY else price < limit_price):
                break
            take = min(remaining, book[price])
            notional += take * price
            remaining -= take
            worst = price
        filled = size - remaining
        return FillEstimate(
            filled=filled,
            notional=notional,
            vwap=notional / filled if filled else None,
            worst_price=worst,
            complete=remaining == ZERO,
        )

    def age(self, now: float) -> float | None:
        """Seconds since the last applied change, on the caller's clock (None before the first)."""
        return None if self.last_update is None else now - self.last_update

    def copy(self) -> OrderBook:
        """An independent copy (same levels, counters and timestamps)."""
        other = OrderBook(self.asset_id, self.tick_size)
        other._bids = dict(self._bids)
        other._asks = dict(self._asks)
        other._bid_prices = list(self._bid_prices)
        other._ask_prices = list(self._ask_prices)
        other._best_bid = other._best_ask = _STALE
        other.change_count = self.change_count
        other.last_update = self.last_update
        other.ts_event_ms = self.ts_event_ms
        return other

    def __eq__(self, other: object) -> bool:
        """Two books are equal when their levels are (numerically); ids, ticks and counters are not compared."""
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self._bids == other._bids and self._asks == other._asks

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        bid, ask = self.best_bid(), self.best_ask()
        return (
            f"OrderBook({self.asset_id!r}, tick={self.tick_size}, bids={len(self._bids)}, asks={len(self._asks)}, "
            f"best_bid={bid.price if bid else None}, best_ask={ask.price if ask else None})"
        )
