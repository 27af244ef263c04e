"""`walk_basket` against a straightforward reference walk (every level from the book, every value recomputed, every
limit re-checked against the book): the fast walk must give exactly the same fill, on any books."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain.market import NO_FEES, FeeSchedule
from trader.domain.numbers import ONE, ZERO, Side, floor_size, round_price_for
from trader.strategies.baskets import Basket, BasketFill, BasketLeg, iter_baskets, walk_basket

from .builders import StateBuilder, make_market

# -- the reference: walk_basket as first written -------------------------------------------------------------------


def _ref_walk_size(
    basket: Basket,
    side: Side,
    *,
    min_edge: Decimal,
    max_size: Decimal | None,
    max_notional: Decimal | None,
    max_levels: int,
    strict: bool,
) -> Decimal:
    maker_side = side.opposite
    ladders = [leg.book.levels(maker_side, max_levels) for leg in basket.legs]
    index = [0] * len(ladders)
    taken = [ZERO] * len(ladders)
    size = ZERO
    spent = ZERO
    while all(i < len(ladder) for i, ladder in zip(index, ladders, strict=True)):
        levels = [ladder[i] for i, ladder in zip(index, ladders, strict=True)]
        unit = sum((leg.unit_value(side, lv.price) for leg, lv in zip(basket.legs, levels, strict=True)), ZERO)
        edge = ONE - unit if side is Side.BUY else unit - ONE
        if edge < min_edge or (strict and edge == min_edge):
            break
        chunk = min(lv.size - t for lv, t in zip(levels, taken, strict=True))
        capped = False
        if max_size is not None and size + chunk >= max_size:
            chunk, capped = max_size - size, True
        unit_notional = unit if side is Side.BUY else sum((lv.price for lv in levels), ZERO)
        if max_notional is not None and spent + chunk * unit_notional >= max_notional:
            chunk, capped = min(chunk, (max_notional - spent) / unit_notional), True
        if chunk <= ZERO:
            break
        size += chunk
        spent += chunk * unit_notional
        if capped:
            break
        for n, lv in enumerate(levels):
            taken[n] += chunk
            if taken[n] >= lv.size:
                index[n] += 1
                taken[n] = ZERO
    return floor_size(size)


def _ref_leg_value(leg: BasketLeg, side: Side, size: Decimal) -> tuple[Decimal, Decimal | None, Decimal]:
    remaining, value, worst = size, ZERO, None
    for level in leg.book.levels(side.opposite):
        if remaining <= ZERO:
            break
        take = min(remaining, level.size)
        value += take * leg.unit_value(side, level.price)
        remaining -= take
        worst = level.price
    return value, worst, size - remaining


def _ref_price_basket(basket: Basket, side: Side, size: Decimal) -> BasketFill | None:
    prices: list[Decimal] = []
    value = ZERO
    for leg in basket.legs:
        leg_value, worst, available = _ref_leg_value(leg, side, size)
        if worst is None or available < size:
            return None
        prices.append(round_price_for(side, worst, leg.tick_size))
        value += leg_value
    edge = size - value if side is Side.BUY else value - size
    return BasketFill(size=size, prices=tuple(prices), value=value, edge=edge)


def reference_walk(
    basket: Basket,
    side: Side,
    *,
    min_edge: Decimal,
    max_size: Decimal | None = None,
    max_notional: Decimal | None = None,
    max_levels: int = 50,
    strict: bool = False,
) -> BasketFill | None:
    size = _ref_walk_size(
        basket,
        side,
        min_edge=min_edge,
        max_size=max_size,
        max_notional=max_notional,
        max_levels=max_levels,
        strict=strict,
    )
    if size <= ZERO:
        return None
    fill = _ref_price_basket(basket, side, size)
    if fill is None:
        return None
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
        repriced = _ref_price_basket(basket, side, size)
        if repriced is None:
            return None
        fill = repriced
    return None


# -- books ---------------------------------------------------------------------------------------------------------

_prices = st.integers(min_value=1, max_value=199).map(lambda n: Decimal(n) / 200)  # on and off the 0.01 grid
_sizes = st.integers(min_value=1, max_value=4000).map(lambda n: Decimal(n) / 4)
_side_levels = st.dictionaries(_prices, _sizes, max_size=12).map(lambda d: [(str(p), str(s)) for p, s in d.items()])
_fees = st.sampled_from(
    [NO_FEES, FeeSchedule(rate=Decimal("0.02"), exponent=2), FeeSchedule(rate=Decimal("0.1"), exponent=1)]
)


@settings(max_examples=400, deadline=None)
@given(
    books=st.lists(st.tuples(_side_levels, _side_levels), min_size=2, max_size=3),
    fees=_fees,
    side=st.sampled_from([Side.BUY, Side.SELL]),
    min_edge=st.sampled_from([Decimal(0), Decimal("0.005"), Decimal("0.01"), Decimal("0.05")]),
    max_size=st.none() | _sizes,
    max_notional=st.none() | st.integers(min_value=1, max_value=500).map(Decimal),
    max_levels=st.integers(min_value=1, max_value=10),
    strict=st.booleans(),
)
def test_the_walk_is_exactly_the_reference_walk(
    *,
    books: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
    fees: FeeSchedule,
    side: Side,
    min_edge: Decimal,
    max_size: Decimal | None,
    max_notional: Decimal | None,
    max_levels: int,
    strict: bool,
) -> None:
    sb = StateBuilder()
    markets = [
        sb.market(make_market(n, fees=fees, neg_risk=len(books) > 2, neg_risk_id="0xnr"), yes=(bids, asks))
        for n, (bids, asks) in enumerate(books, start=1)
    ]
    if len(books) > 2:
        sb.event("e", markets)
    baskets = list(iter_baskets(sb.state(), binary=len(books) == 2, neg_risk=len(books) > 2))
    if len(books) == 2:  # a binary basket of the first market: its YES and NO (the NO book is the second's YES)
        sb.books[markets[0].no_token_id] = sb.books[markets[1].yes_token_id]
        baskets = list(iter_baskets(sb.state(markets={markets[0].condition_id: markets[0]}), neg_risk=False))
    assert len(baskets) == 1
    kwargs = {
        "min_edge": min_edge,
        "max_size": max_size,
        "max_notional": max_notional,
        "max_levels": max_levels,
        "strict": strict,
    }
    assert walk_basket(baskets[0], side, **kwargs) == reference_walk(baskets[0], side, **kwargs)  # type: ignore[arg-type]
