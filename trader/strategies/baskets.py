"""Complete sets ("baskets") and the exact walk of all their books together.

A basket is a set of tokens exactly one of which pays 1 at resolution: the YES and NO of a binary market, or the
YES of every market of a COMPLETE neg-risk event. Buying one share of each costs the sum of the asks plus taker
fees and pays exactly 1; selling one share of each (when held) brings the sum of the bids less fees.

`walk_basket` sizes a basket by walking every leg's book at once, best level first. At each step the marginal
value of one more unit (one share of every leg) is

    BUY:   1 - sum(ask_i + fee_rate_i(ask_i))          SELL:  sum(bid_i - fee_rate_i(bid_i)) - 1

and the walk stops at the first step where it falls below `min_edge` (so every unit bought clears the edge), or
at the size or notional cap. Fees are `FeeSchedule.rate_at` unrounded: never below what the venue charges (it
floors to 5 decimals), so the computed edge is never optimistic. Sizes are floored to 0.01 shares; each leg's
limit price is the worst level it touches, put on the tick grid in the safe direction (floor for a buy, ceil for
a sell), and the size is re-checked against the book at that limit (`OrderBook.fill_estimate`).

Equal after fees (`sizes_after_fees`): a venue that withholds a buy's fee from the shares bought (the paper venue,
`FeeSchedule.buy_fee_in_shares`, one trade per level) leaves legs bought in equal counts holding unequal ones, and
the difference is exposure nothing hedges. So each leg is bought at the least size, on the 0.01 share grid, that
holds at least what the leg holding the least holds at the walked size: the legs then hold the same shares up to
less than 0.01 share each (dust), and no leg is bought larger than the walk found.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from trader.domain.book import Level
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import ONE, SIZE_STEP, ZERO, Side, floor_size, round_price_for
from trader.strategies.base import BookView, MarketState, buy_cost_per_share, sell_proceeds_per_share

__all__ = [
    "Basket",
    "BasketFill",
    "BasketKind",
    "BasketLeg",
    "basket_top_edge",
    "forget_gone",
    "iter_baskets",
    "sizes_after_fees",
    "walk_basket",
]

#: Levels per leg a walk fetches first; it fetches more only when it gets that deep.
_FIRST_LEVELS = 4


class BasketKind(enum.StrEnum):
    BINARY = "BINARY"  # YES + NO of one market
    NEG_RISK = "NEG_RISK"  # YES of every market of a complete neg-risk event


@dataclass(frozen=True, slots=True)
class BasketLeg:
    token_id: str
    condition_id: str
    book: BookView
    fees: FeeSchedule
    tick_size: Decimal
    min_order_size: Decimal

    def unit_value(self, side: Side, price: Decimal) -> Decimal:
        """Per share: the cost of a buy (fee added) or the proceeds of a sell (fee taken off)."""
        return buy_cost_per_share(self.fees, price) if side is Side.BUY else sell_proceeds_per_share(self.fees, price)


@dataclass(frozen=True, slots=True)
class Basket:
    key: str  # "BINARY:<condition id>" or "NEG_RISK:<event id>"
    kind: BasketKind
    ref: str  # the condition id or the event id
    legs: tuple[BasketLeg, ...]

    @property
    def token_ids(self) -> frozenset[str]:
        return frozenset(leg.token_id for leg in self.legs)

    @property
    def min_order_size(self) -> Decimal:
        return max(leg.min_order_size for leg in self.legs)


@dataclass(frozen=True, slots=True)
class BasketFill:
    """A sized basket: `size` shares of every leg at the limit `prices` (one per leg, on the grid)."""

    size: Decimal
    prices: tuple[Decimal, ...]
    value: Decimal  # BUY: pUSD paid, fees included; SELL: pUSD received after fees
    edge: Decimal  # pUSD expected: size - value (BUY) or value - size (SELL)


def _leg(market: Market, token_id: str, book: BookView) -> BasketLeg:
    return BasketLeg(
        token_id=token_id,
        condition_id=market.condition_id,
        book=book,
        fees=market.fees,
        tick_size=market.tick_size,
        min_order_size=market.min_order_size,
    )


def _may_clear(books: Sequence[BookView], bound: Decimal | None) -> bool:
    """A cheap upper bound of the top-of-book edge, fees ignored (they only lower it): False when neither side can
    reach `bound`, so that most baskets are dismissed without any fee arithmetic."""
    if bound is None:
        return True
    asks = bids = ZERO
    buy = sell = True
    for book in books:
        ask, bid = book.best_ask(), book.best_bid()
        if ask is None:
            buy = False
        else:
            asks += ask.price
        if bid is None:
            sell = False
        else:
            bids += bid.price
    return (buy and ONE - asks >= bound) or (sell and bids - ONE >= bound)


def _pair_may_clear(yes: BookView, no: BookView, bound: Decimal) -> bool:
    """`_may_clear((yes, no), bound)` for the two books of a binary market, unrolled (its hot path)."""
    yes_ask, no_ask = yes.best_ask(), no.best_ask()
    if yes_ask is not None and no_ask is not None and ONE - (yes_ask.price + no_ask.price) >= bound:
        return True
    yes_bid, no_bid = yes.best_bid(), no.best_bid()
    return yes_bid is not None and no_bid is not None and yes_bid.price + no_bid.price - ONE >= bound


def iter_baskets(
    state: MarketState,
    *,
    binary: bool = True,
    neg_risk: bool = True,
    bound: Decimal | None = None,
    dismissed: dict[str, int] | None = None,
) -> Iterator[Basket]:
    """Every basket that may be traded now: tradable markets whose books are all known, among the markets in scope
    (`MarketState.markets_in_scope`). An incomplete neg-risk event (`NegRiskEvent.is_complete` False, e.g. with an
    implicit "Other" outcome) is never a basket. With `bound`, baskets whose edge at the best levels cannot reach
    it on either side, even without fees, are left out.

    `dismissed` (the caller's, kept from call to call): binary markets left out by `bound`, with the stamp of their
    books then (`MarketState.stamps`); one whose stamp has not moved is left out again without looking at its books,
    so that a full sweep costs little more than the markets that changed."""
    if binary:
        book_of = state.books.get  # `state.book`, looked up once: a full sweep asks for two books per market
        stamps = state.stamps if bound is not None else None
        memo = dismissed if stamps is not None else None
        for market in state.markets_in_scope():
            if not market.is_tradable:
                continue
            stamp = None
            if memo is not None and stamps is not None:
                stamp = stamps.get(market.condition_id)
                if stamp is not None and memo.get(market.condition_id) == stamp:
                    continue
            yes, no = book_of(market.yes_token_id), book_of(market.no_token_id)
            if yes is None or no is None:
                continue
            if bound is not None and not _pair_may_clear(yes, no, bound):
                if memo is not None and stamp is not None:
                    memo[market.condition_id] = stamp
                continue
            legs = (_leg(market, market.yes_token_id, yes), _leg(market, market.no_token_id, no))
            yield Basket(f"{BasketKind.BINARY}:{market.condition_id}", BasketKind.BINARY, market.condition_id, legs)
    if neg_risk:
        for event in state.events:
            changed = state.changed
            if changed is not None and not any(m.condition_id in changed for m in event.markets):
                continue
            if not event.is_complete:
                continue
            event_legs: list[BasketLeg] = []
            for listed in event.markets:
                market = state.markets.get(listed.condition_id, listed)  # the live one carries tick changes
                book = state.book(market.yes_token_id)
                if book is None or not market.is_tradable:
                    break
                event_legs.append(_leg(market, market.yes_token_id, book))
            else:
                if _may_clear([leg.book for leg in event_legs], bound):
                    key = f"{BasketKind.NEG_RISK}:{event.event_id}"
                    yield Basket(key, BasketKind.NEG_RISK, event.event_id, tuple(event_legs))


def forget_gone(dismissed: dict[str, int], state: MarketState) -> dict[str, int]:
    """`dismissed` without the markets no longer followed, once it holds more entries than there are markets (so
    that it stays bounded as markets come and go)."""
    if len(dismissed) <= len(state.markets):
        return dismissed
    return {cid: stamp for cid, stamp in dismissed.items() if cid in state.markets}


def basket_top_edge(basket: Basket, side: Side) -> Decimal | None:
    """Edge per unit at the best levels (BUY: at the asks, SELL: at the bids); None if a leg has no level."""
    total = ZERO
    for leg in basket.legs:
        level = leg.book.best_ask() if side is Side.BUY else leg.book.best_bid()
        if level is None:
            return None
        total += leg.unit_value(side, level.price)
    return ONE - total if side is Side.BUY else total - ONE


class _Ladder:
    """One leg's side of the book for a walk: its levels, best first and at most `max_levels`, fetched a few at a
    time as the walk goes deeper (most walks stop at the first levels), and their per-share values with fees,
    computed once per level and shared by the sizing, the pricing and the re-pricing."""

    __slots__ = ("_book", "_depth", "_free", "_leg", "_max_levels", "_side", "_values", "levels")

    def __init__(self, leg: BasketLeg, side: Side, max_levels: int) -> None:
        self._leg = leg
        self._side = side
        self._book = leg.book
        self._max_levels = max_levels
        self._free = leg.fees.rate == ZERO  # the value is the price itself
        self._depth = min(max_levels, _FIRST_LEVELS)  # levels asked for so far
        self.levels = leg.book.levels(side.opposite, self._depth)
        self._values: list[Decimal] = []

    def level(self, i: int) -> Level | None:
        """Level i (0 = best), or None when the side (or `max_levels`) has no such level."""
        if i >= len(self.levels) and len(self.levels) == self._depth < self._max_levels:  # there may be more
            self._depth = min(self._max_levels, max(2 * self._depth, i + 1))
            self.levels = self._book.levels(self._side.opposite, self._depth)
        return self.levels[i] if i < len(self.levels) else None

    def value(self, i: int) -> Decimal:
        """The per-share value at level i (which must exist): cost with fee for a buy, proceeds after fee for a
        sell."""
        values = self._values
        while len(values) <= i:
            price = self.levels[len(values)].price
            values.append(price if self._free else self._leg.unit_value(self._side, price))
        return values[i]


def _walk_size(
    ladders: Sequence[_Ladder],
    side: Side,
    *,
    min_edge: Decimal,
    max_size: Decimal | None,
    max_notional: Decimal | None,
    strict: bool,
) -> Decimal:
    legs = range(len(ladders))
    index = [0] * len(ladders)
    taken = [ZERO] * len(ladders)  # taken at the current level of each leg
    size = ZERO
    spent = ZERO  # the notional the cap applies to: BUY pUSD paid with fees, SELL pUSD at the bids
    buy = side is Side.BUY
    levels: list[Level] = []  # the current level of each leg
    while True:
        levels.clear()
        unit = ZERO
        for n in legs:
            level = ladders[n].level(index[n])
            if level is None:
                return floor_size(size)
            levels.append(level)
            unit += ladders[n].value(index[n])
        edge = ONE - unit if buy else unit - ONE
        if edge < min_edge or (strict and edge == min_edge):
            break
        chunk = min([levels[n].size - taken[n] for n in legs])
        capped = False
        if max_size is not None and size + chunk >= max_size:
            chunk, capped = max_size - size, True
        unit_notional = unit if buy else sum([lv.price for lv in levels], ZERO)
        if max_notional is not None and spent + chunk * unit_notional >= max_notional:
            chunk, capped = min(chunk, (max_notional - spent) / unit_notional), True
        if chunk <= ZERO:
            break
        size += chunk
        spent += chunk * unit_notional
        if capped:
            break
        for n in legs:
            taken[n] += chunk
            if taken[n] >= levels[n].size:
                index[n] += 1
                taken[n] = ZERO
    return floor_size(size)


def _leg_value(ladder: _Ladder, size: Decimal) -> tuple[Decimal, Decimal | None, Decimal]:
    """(value with fees, worst price touched, shares available) for `size` shares of one leg.

    The ladder holds every level the size needs: the size was walked on these very levels (and only shrinks)."""
    remaining, value, worst = size, ZERO, None
    i = 0
    while remaining > ZERO and (level := ladder.level(i)) is not None:
        take = min(remaining, level.size)
        value += take * ladder.value(i)
        remaining -= take
        worst = level.price
        i += 1
    return value, worst, size - remaining


def _price_basket(
    basket: Basket, ladders: Sequence[_Ladder], side: Side, size: Decimal
) -> tuple[BasketFill, bool] | None:
    """The fill of `size` at each leg's on-grid limit, and whether every limit is the worst level it touches (so
    the whole size fills at the limits, with no need to ask the books again)."""
    prices: list[Decimal] = []
    value = ZERO
    on_grid = True
    for leg, ladder in zip(basket.legs, ladders, strict=True):
        leg_value, worst, available = _leg_value(ladder, size)
        if worst is None or available < size:
            return None
        limit = round_price_for(side, worst, leg.tick_size)
        on_grid = on_grid and limit == worst
        prices.append(limit)
        value += leg_value
    edge = size - value if side is Side.BUY else value - size
    return BasketFill(size=size, prices=tuple(prices), value=value, edge=edge), on_grid


def walk_basket(
    basket: Basket,
    side: Side,
    *,
    min_edge: Decimal,
    max_size: Decimal | None = None,
    max_notional: Decimal | None = None,
    max_levels: int = 50,
    strict: bool = False,
) -> BasketFill | None:
    """The largest basket whose every unit clears `min_edge` (pUSD per unit, after fees), within the caps.

    `side` is the taker side: BUY walks the asks, SELL the bids. `max_size` caps the shares per leg (the shares
    held, for a sell); `max_notional` caps pUSD (a buy's cost with fees, a sell's notional at the bids). With
    `strict`, a unit must beat `min_edge` rather than reach it. None when nothing clears, or when a leg cannot fill
    the size at its on-grid limit.
    """
    ladders = [_Ladder(leg, side, max_levels) for leg in basket.legs]
    size = _walk_size(ladders, side, min_edge=min_edge, max_size=max_size, max_notional=max_notional, strict=strict)
    if size <= ZERO:
        return None
    priced = _price_basket(basket, ladders, side, size)
    if priced is None:
        return None
    fill, on_grid = priced
    if on_grid:  # each limit is a level the walk took: the whole size fills at the limits
        return fill
    # A level off the tick grid is left out by the rounded limit: keep only what fills at the limits.
    for _ in range(3):
        fillable = min(
            leg.book.fill_estimate(side, fill.size, limit_price=price).filled
            for leg, price in zip(basket.legs, fill.prices, strict=True)
        )
        if fillable >= fill.size:
            return fill
        size = floor_size(fillable)
        if size <= ZERO:
            return None
        repriced = _price_basket(basket, ladders, side, size)
        if repriced is None:
            return None
        fill = repriced[0]
    return None


def _held_after_buy(leg: BasketLeg, size: Decimal, limit: Decimal) -> Decimal:
    """Shares held after buying `size` of one leg as a taker, up to `limit`, its fee withheld in shares per level
    (one trade per level, as the paper venue fills)."""
    remaining, fee_shares = size, ZERO
    for level in leg.book.levels(Side.SELL):
        if remaining <= ZERO or level.price > limit:
            break
        take = min(remaining, level.size)
        fee_shares += leg.fees.buy_fee_in_shares(take, level.price)
        remaining -= take
    return size - fee_shares


def _least_size_holding(leg: BasketLeg, target: Decimal, most: Decimal, limit: Decimal) -> Decimal:
    """The least size on the 0.01 share grid, at most `most`, that holds at least `target` after fees (`most` itself
    holds at least that)."""
    held = _held_after_buy(leg, most, limit)
    size = min(most, max(SIZE_STEP, _ceil_size(most * target / held))) if held > ZERO else most
    while size < most and _held_after_buy(leg, size, limit) < target:
        size += SIZE_STEP
    while size > SIZE_STEP and _held_after_buy(leg, size - SIZE_STEP, limit) >= target:
        size -= SIZE_STEP
    return size


def _ceil_size(size: Decimal) -> Decimal:
    floored = floor_size(size)
    return floored if floored == size else floored + SIZE_STEP


def sizes_after_fees(basket: Basket, fill: BasketFill) -> tuple[Decimal, ...]:
    """Per leg, the share count to BUY so that every leg holds the same shares once its fee is withheld in shares
    (see the module docstring): the leg that keeps the least is bought at `fill.size`, the others at the least size
    that holds as much. Differences left are below 0.01 share per leg (dust)."""
    held = [_held_after_buy(leg, fill.size, price) for leg, price in zip(basket.legs, fill.prices, strict=True)]
    target = min(held)
    return tuple(
        fill.size if kept == target else _least_size_holding(leg, target, fill.size, price)
        for leg, price, kept in zip(basket.legs, fill.prices, held, strict=True)
    )
