"""The sim's matching book: price levels in pips, FIFO queues of resting orders (price-time priority).

This is deliberately independent of `trader.domain.book` (the engine's books are checked against it).

A book has a bid side and an ask side. In a complementary market one book holds the orders of both tokens in YES
terms (a NO BUY at q rests as a YES ask at 1 − q), so the NO book is its mirror. Every mutation is recorded as a
`RawChange` (side, price, new level total, best bid and ask right after it); the exchange turns those into
`price_change` entries.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Resting(Protocol):
    """What the book needs from an order."""

    order_id: str
    book_bid: bool
    book_price: int

    @property
    def remaining(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RawChange:
    is_bid: bool
    price: int
    size: int
    best_bid: int | None
    best_ask: int | None


OrderT = TypeVar("OrderT", bound=Resting)


class MatchingBook(Generic[OrderT]):
    __slots__ = ("_levels", "_prices", "_totals", "changes")

    def __init__(self) -> None:
        # index 0 = bids, 1 = asks
        self._levels: tuple[dict[int, deque[OrderT]], dict[int, deque[OrderT]]] = ({}, {})
        self._totals: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._prices: tuple[list[int], list[int]] = ([], [])
        self.changes: list[RawChange] = []

    # -- queries ---------------------------------------------------------------------------------------------

    def best_bid(self) -> int | None:
        prices = self._prices[0]
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self._prices[1]
        return prices[0] if prices else None

    def best(self, is_bid: bool) -> int | None:
        return self.best_bid() if is_bid else self.best_ask()

    def levels(self, is_bid: bool) -> list[tuple[int, int]]:
        """(price, total size) ascending by price."""
        side = 0 if is_bid else 1
        totals = self._totals[side]
        return [(p, totals[p]) for p in self._prices[side]]

    def level_total(self, is_bid: bool, price: int) -> int:
        return self._totals[0 if is_bid else 1].get(price, 0)

    def queue(self, is_bid: bool, price: int) -> deque[OrderT]:
        return self._levels[0 if is_bid else 1][price]

    def orders(self) -> Iterator[OrderT]:
        for side in self._levels:
            for queue in side.values():
                yield from queue

    @staticmethod
    def crosses(taker_is_bid: bool, limit: int, level_price: int) -> bool:
        return level_price <= limit if taker_is_bid else level_price >= limit

    def marketable(self, taker_is_bid: bool, limit: int) -> bool:
        best = self.best(not taker_is_bid)
        return best is not None and self.crosses(taker_is_bid, limit, best)

    def available(self, taker_is_bid: bool, limit: int, wanted: int) -> int:
        """Quantity a taker could fill at `limit` or better, counted up to `wanted`."""
        side = 1 if taker_is_bid else 0
        prices = self._prices[side]
        ordered = prices if taker_is_bid else reversed(prices)
        total = 0
        for price in ordered:
            if not self.crosses(taker_is_bid, limit, price) or total >= wanted:
                break
            total += self._totals[side][price]
        return total

    # -- mutations -------------------------------------------------------------------------------------------

    def add(self, order: OrderT) -> None:
        side = 0 if order.book_bid else 1
        price = order.book_price
        level = self._levels[side].get(price)
        if level is None:
            level = self._levels[side][price] = deque()
            self._totals[side][price] = 0
            bisect.insort(self._prices[side], price)
        level.append(order)
        self._totals[side][price] += order.remaining
        self._record(order.book_bid, price)

    def reduce(self, order: OrderT, quantity: int) -> None:
        """`order` lost `quantity` (its `remaining` is already reduced); a finished order leaves its queue."""
        side = 0 if order.book_bid else 1
        price = order.book_price
        self._totals[side][price] -= quantity
        if order.remaining <= 0:
            self._discard(order)
        self._record(order.book_bid, price)

    def remove(self, order: OrderT) -> None:
        """Take a resting order out (cancel / expiry)."""
        side = 0 if order.book_bid else 1
        price = order.book_price
        self._totals[side][price] -= order.remaining
        self._discard(order)
        self._record(order.book_bid, price)

    def _discard(self, order: OrderT) -> None:
        side = 0 if order.book_bid else 1
        price = order.book_price
        level = self._levels[side][price]
        level.remove(order)
        if not level:
            del self._levels[side][price]
            del self._totals[side][price]
            prices = self._prices[side]
            del prices[bisect.bisect_left(prices, price)]

    def _record(self, is_bid: bool, price: int) -> None:
        change = RawChange(is_bid, price, self.level_total(is_bid, price), self.best_bid(), self.best_ask())
        if self.changes and self.changes[-1].is_bid == is_bid and self.changes[-1].price == price:
            self.changes[-1] = change  # coalesce repeated changes of one level within an operation
        else:
            self.changes.append(change)

    def take_changes(self) -> list[RawChange]:
        changes, self.changes = self.changes, []
        return changes
