"""Sum-to-100 arbitrage on fixed books: sizing across levels, fees, the grid, baskets and re-firing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain.enums import OrderType
from trader.domain.intents import ArbIntent
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.strategies.baskets import BasketLeg, basket_top_edge, iter_baskets, sizes_after_fees, walk_basket
from trader.strategies.sum_to_100 import SumTo100, SumTo100Settings

from .builders import D, StateBuilder, make_market

BIG = SumTo100Settings(max_basket_usd=D(10_000))


def only_arb(outputs: object) -> ArbIntent:
    assert isinstance(outputs, list)
    assert len(outputs) == 1
    (intent,) = outputs
    assert isinstance(intent, ArbIntent)
    return intent


def binary(yes_asks: list[tuple[str, str]], no_asks: list[tuple[str, str]], **kw: object) -> StateBuilder:
    sb = StateBuilder()
    sb.market(make_market(1, **kw), yes=((), yes_asks), no=((), no_asks))  # type: ignore[arg-type]
    return sb


def test_binary_basket_bought_below_one_with_equal_legs_at_the_asks() -> None:
    sb = binary([("0.45", "100")], [("0.50", "100")])
    arb = only_arb(SumTo100(BIG).on_state(sb.state()))
    assert [leg.token_id for leg in arb.legs] == [sb.markets["0xc1"].yes_token_id, sb.markets["0xc1"].no_token_id]
    assert [leg.price for leg in arb.legs] == [D("0.45"), D("0.50")]
    assert {leg.size for leg in arb.legs} == {D(100)}
    assert all(leg.side is Side.BUY and leg.order_type is OrderType.FOK for leg in arb.legs)
    assert arb.legs[0].client_order_id == f"{arb.arb_id}-0"
    assert arb.arb_id == "t-sum_to_100-1"


def test_size_walks_every_book_until_the_marginal_unit_stops_clearing_the_edge() -> None:
    # unit costs: 0.45+0.50 (10 units), 0.47+0.50 (5), 0.47+0.52 (15, edge exactly 0.01), then YES is exhausted
    sb = binary([("0.45", "10"), ("0.47", "20")], [("0.50", "15"), ("0.52", "30")])
    arb = only_arb(SumTo100(BIG).on_state(sb.state()))
    assert arb.size == D(30)
    assert [leg.price for leg in arb.legs] == [D("0.47"), D("0.52")]  # the worst level each leg touches

    tighter = SumTo100(SumTo100Settings(min_edge_usd=D("0.02"), max_basket_usd=D(10_000)))
    arb = only_arb(tighter.on_state(sb.state()))
    assert arb.size == D(15)
    assert [leg.price for leg in arb.legs] == [D("0.47"), D("0.50")]


def test_risk_budget_caps_the_basket_cost_including_fees() -> None:
    sb = binary([("0.45", "100")], [("0.50", "100")])
    arb = only_arb(SumTo100(SumTo100Settings(max_basket_usd=D(50))).on_state(sb.state()))
    assert arb.size == D("52.63")  # 50 / 0.95 floored to 0.01 share
    assert arb.size * D("0.95") <= D(50)


def test_taker_fees_can_remove_the_edge() -> None:
    fees = FeeSchedule(rate=D("0.1"), exponent=1)  # 0.02475 + 0.025 per unit at 0.45 / 0.50
    sb = binary([("0.45", "100")], [("0.50", "100")], fees=fees)
    assert SumTo100(BIG).on_state(sb.state()) == []
    (basket,) = iter_baskets(sb.state())
    assert basket_top_edge(basket, Side.BUY) == D("0.00025")

    small_fee = FeeSchedule(rate=D("0.02"), exponent=2)  # 0.02 * (p(1-p))^2: about 0.0012 per leg
    sb = binary([("0.45", "100")], [("0.50", "100")], fees=small_fee)
    assert only_arb(SumTo100(BIG).on_state(sb.state())).size == D(100)


def test_edge_exactly_at_the_threshold_fires_and_just_below_does_not() -> None:
    assert SumTo100(BIG).on_state(binary([("0.49", "10")], [("0.50", "10")]).state()) != []
    assert SumTo100(BIG).on_state(binary([("0.49", "10")], [("0.51", "10")]).state()) == []


def test_walk_reports_the_edge_after_fees() -> None:
    fees = FeeSchedule(rate=D("0.1"), exponent=1)
    sb = binary([("0.40", "10")], [("0.50", "10")], fees=fees)
    (basket,) = iter_baskets(sb.state())
    fill = walk_basket(basket, Side.BUY, min_edge=D("0.01"))
    assert fill is not None
    # per unit: 0.40 + 0.024 + 0.50 + 0.025 = 0.949
    assert fill.value == D("9.49")
    assert fill.edge == D("0.51")
    assert fill.edge / fill.size == D("0.051")


def test_limit_prices_stay_on_the_tick_grid_and_the_size_shrinks_to_what_fills_there() -> None:
    # a level off the 0.01 grid (0.455) cannot be reached by an on-grid limit: only the 0.44 level is bought
    sb = binary([("0.44", "10"), ("0.455", "10")], [("0.50", "100")])
    arb = only_arb(SumTo100(BIG).on_state(sb.state()))
    assert arb.size == D(10)
    assert [leg.price for leg in arb.legs] == [D("0.44"), D("0.50")]


def test_below_the_minimum_order_size_or_leg_notional_nothing_fires() -> None:
    assert SumTo100(BIG).on_state(binary([("0.45", "4.99")], [("0.50", "100")]).state()) == []
    # 10 shares at 0.05 is 0.50 pUSD: under the $1 leg minimum, fine once the minimum is off
    sb = binary([("0.05", "10")], [("0.90", "10")])
    assert SumTo100(BIG).on_state(sb.state()) == []
    no_min = SumTo100(SumTo100Settings(max_basket_usd=D(10_000), min_leg_notional_usd=D(0)))
    assert only_arb(no_min.on_state(sb.state())).size == D(10)


@pytest.mark.parametrize("health", [{"ready": False}, {"suspect": True}, {"age": 30.0}, {"age": None}], ids=str)
def test_unusable_books_are_not_traded(health: dict[str, Any]) -> None:
    sb = StateBuilder()
    sb.market(make_market(1), yes=((), [("0.45", "100")]), no=((), [("0.50", "100")]), **health)
    assert SumTo100(BIG).on_state(sb.state()) == []


def test_closed_market_is_not_traded() -> None:
    assert SumTo100(BIG).on_state(binary([("0.45", "100")], [("0.50", "100")], closed=True).state()) == []


def neg_risk_event(complete: bool = True, asks: tuple[str, ...] = ("0.30", "0.30", "0.35")) -> StateBuilder:
    sb = StateBuilder()
    markets = [
        sb.market(
            make_market(n, neg_risk=True, neg_risk_id="0xnr"),
            yes=((), [(price, "100")]),
            no=((), [("0.99", "100")]),
        )
        for n, price in enumerate(asks, start=1)
    ]
    sb.event("e1", markets, complete=complete)
    return sb


def test_complete_neg_risk_event_bought_as_one_basket_of_every_yes() -> None:
    sb = neg_risk_event()
    arb = only_arb(SumTo100(SumTo100Settings(max_basket_usd=D(95), binary=False)).on_state(sb.state()))
    assert [leg.token_id for leg in arb.legs] == [m.yes_token_id for m in sb.markets.values()]
    assert [leg.price for leg in arb.legs] == [D("0.30"), D("0.30"), D("0.35")]
    assert arb.size == D(100)


def test_incomplete_neg_risk_event_never_fires() -> None:
    sb = neg_risk_event(complete=False)
    assert SumTo100(SumTo100Settings(binary=False)).on_state(sb.state()) == []
    # a closed outcome market makes the basket incomplete too
    sb = neg_risk_event()
    first = next(iter(sb.markets))
    closed = dict(sb.markets)
    closed[first] = make_market(1, neg_risk=True, neg_risk_id="0xnr", closed=True)
    sb.events = [sb.events[0].__class__(event_id="e1", title="e1", markets=tuple(closed.values()), complete=True)]
    assert SumTo100(SumTo100Settings(binary=False)).on_state(sb.state(markets=closed)) == []


def test_never_refires_while_the_basket_is_in_flight_nor_within_the_cooldown() -> None:
    sb = binary([("0.45", "100")], [("0.50", "100")])
    strategy = SumTo100(BIG)
    first = only_arb(strategy.on_state(sb.state(now=100.0)))
    assert strategy.on_state(sb.state(now=100.5, in_flight={first.arb_id})) == []
    assert strategy.on_state(sb.state(now=105.0, in_flight={first.arb_id})) == []
    assert strategy.on_state(sb.state(now=100.9)) == []  # done, but within the 1 s cooldown
    second = only_arb(strategy.on_state(sb.state(now=101.0)))
    assert second.arb_id == "t-sum_to_100-2"


def test_held_complete_set_is_sold_when_the_bids_pay_above_one_after_fees() -> None:
    sb = StateBuilder()
    market = sb.market(
        make_market(1), yes=([("0.55", "100")], [("0.60", "100")]), no=([("0.50", "100")], [("0.55", "100")])
    )
    strategy = SumTo100(BIG)
    assert strategy.on_state(sb.state()) == []  # nothing held
    sb.hold(market.yes_token_id, "20")
    assert strategy.on_state(sb.state()) == []  # YES alone is not a set
    sb.hold(market.no_token_id, "12.345")
    arb = only_arb(strategy.on_state(sb.state()))
    assert all(leg.side is Side.SELL for leg in arb.legs)
    assert arb.size == D("12.34")  # limited by the shares held of every leg
    assert [leg.price for leg in arb.legs] == [D("0.55"), D("0.50")]


def test_sell_side_fees_can_remove_the_edge() -> None:
    fees = FeeSchedule(rate=D("0.1"), exponent=1)  # 0.02475 + 0.025 per unit at 0.55 / 0.50
    sb = StateBuilder()
    market = sb.market(make_market(1, fees=fees), yes=([("0.55", "100")], []), no=([("0.50", "100")], []))
    sb.hold(market.yes_token_id, "20")
    sb.hold(market.no_token_id, "20")
    assert SumTo100(BIG).on_state(sb.state()) == []


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="min_edge_usd"):
        SumTo100Settings(min_edge_usd=Decimal(0))
    with pytest.raises(ValueError, match="order_type"):
        SumTo100Settings(order_type=OrderType.GTC)


def test_a_wakeup_looks_only_at_the_markets_that_changed() -> None:
    sb = neg_risk_event()
    sb.market(make_market(9), yes=((), [("0.45", "100")]), no=((), [("0.50", "100")]))
    assert SumTo100(BIG).on_state(sb.state(changed=[])) == []
    assert SumTo100(BIG).on_state(sb.state(changed=["0xc404"])) == []  # unknown market: nothing
    (binary_arb,) = SumTo100(BIG).on_state(sb.state(changed=["0xc9"]))
    assert isinstance(binary_arb, ArbIntent)
    assert binary_arb.legs[0].condition_id == "0xc9"
    (event_arb,) = SumTo100(BIG).on_state(sb.state(changed=["0xc2"]))  # one outcome of the event changed
    assert isinstance(event_arb, ArbIntent)
    assert len(event_arb.legs) == 3
    assert len(SumTo100(BIG).on_state(sb.state())) == 2  # a full sweep sees both


# -- legs equal after fees --------------------------------------------------------------------------------------

TAKER_FEE = FeeSchedule(rate=D("0.02"), exponent=1)  # 0.02 x p(1 - p) pUSD per share


def test_where_buy_fees_are_withheld_in_shares_the_legs_hold_the_same_shares_after_fees() -> None:
    sb = binary([("0.45", "1000")], [("0.50", "1000")], fees=TAKER_FEE)
    # Equal legs of 1000 would hold 1000 - 4.95 / 0.45 = 989 YES and 1000 - 5 / 0.5 = 990 NO: one NO unhedged.
    assert {leg.size for leg in only_arb(SumTo100(BIG).on_state(sb.state())).legs} == {D(1000)}
    arb = only_arb(SumTo100(BIG).on_state(sb.state(now=200.0, buy_fees_in_shares=True)))
    yes, no = arb.legs
    assert (yes.size, no.size) == (D(1000), D("998.99"))
    held_yes = yes.size - TAKER_FEE.buy_fee_in_shares(yes.size, yes.price)
    held_no = no.size - TAKER_FEE.buy_fee_in_shares(no.size, no.price)
    assert (held_yes, held_no) == (D(989), D("989.0001"))  # what is left over is dust: under 0.01 share


@settings(max_examples=150, deadline=None)
@given(
    prices=st.lists(st.integers(min_value=5, max_value=60), min_size=2, max_size=4),
    depth=st.lists(st.integers(min_value=5, max_value=5_000), min_size=8, max_size=8),
    rate=st.sampled_from(["0.01", "0.02", "0.07", "0.25"]),
    exponent=st.sampled_from([1, 2]),
)
def test_after_fee_sizes_leave_at_most_dust_on_any_books(
    prices: list[int], depth: list[int], rate: str, exponent: int
) -> None:
    """Any basket, books of two levels per leg: the legs hold the same shares after fees to within 0.01 share, none
    is bought larger than the walk found, and each is the least size on the grid that holds that much."""
    fees = FeeSchedule(rate=D(rate), exponent=exponent)
    sb = StateBuilder()
    markets = [make_market(n, fees=fees, neg_risk=True, neg_risk_id="e") for n in range(len(prices))]
    for n, (market, cents) in enumerate(zip(markets, prices, strict=True)):
        asks = [(str(D(cents) / 100), str(depth[2 * n % 8])), (str(D(cents + 1) / 100), str(depth[(2 * n + 1) % 8]))]
        sb.market(market, yes=((), asks), no=((), [("0.99", "10")]))
    sb.event("e", markets)
    state = sb.state(buy_fees_in_shares=True)
    baskets = [b for b in iter_baskets(state, binary=False) if b.key == "NEG_RISK:e"]
    fill = walk_basket(baskets[0], Side.BUY, min_edge=D("0.01"), max_notional=D(10_000)) if baskets else None
    if fill is None:
        return
    sizes = sizes_after_fees(baskets[0], fill)

    def held(leg: BasketLeg, size: Decimal, limit: Decimal) -> Decimal:
        left, kept = size, size
        for level in leg.book.levels(Side.SELL):
            if left <= 0 or level.price > limit:
                break
            take = min(left, level.size)
            kept -= leg.fees.buy_fee_in_shares(take, level.price)
            left -= take
        return kept

    legs = list(zip(baskets[0].legs, fill.prices, sizes, strict=True))
    holdings = [held(leg, size, limit) for leg, limit, size in legs]
    assert all(size <= fill.size for size in sizes)
    assert max(holdings) - min(holdings) < D("0.01")
    for leg, limit, size in legs:  # the least size: 0.01 share less would hold less than the basket's least
        assert size == fill.size or held(leg, size - D("0.01"), limit) < min(holdings)


def test_past_firings_are_forgotten_once_they_hold_nothing_back() -> None:
    sb = StateBuilder()
    for n in range(1, 21):  # twenty markets, each with a gap
        sb.market(make_market(n), yes=((), [("0.45", "100")]), no=((), [("0.50", "100")]))
    strategy = SumTo100(BIG)
    fired = strategy.on_state(sb.state(now=100.0))
    assert len(fired) == 20
    in_flight = {intent.arb_id for intent in fired if isinstance(intent, ArbIntent)}
    assert strategy.on_state(sb.state(now=100.5, in_flight=in_flight)) == []  # in flight, and within the cooldown
    assert len(strategy._fired) == 20
    strategy.on_state(sb.state(now=101.5, in_flight=in_flight, changed=[]))  # a wake-up: nothing is pruned
    assert len(strategy._fired) == 20
    sb.markets.clear()  # those markets are no longer followed
    strategy.on_state(sb.state(now=102.0))  # a full sweep, every basket done and past its cooldown
    assert strategy._fired == {}


def test_a_neg_risk_basket_holds_at_most_its_cap_of_collateral_until_the_event_resolves() -> None:
    """A neg-risk basket cannot be merged back: what it costs stays locked until the event resolves, so the strategy
    keeps at most `max_held_basket_usd` in one (binary sets are merged at once and have no such cap)."""
    settings = SumTo100Settings(max_basket_usd=D(95), max_held_basket_usd=D(60), binary=False)
    sb = neg_risk_event()  # each unit (one YES of every outcome) costs 0.95
    arb = only_arb(SumTo100(settings).on_state(sb.state()))
    assert arb.size * D("0.95") <= D(60)  # the cap, not max_basket_usd, sized it
    assert arb.size == D("63.15")  # 60 / 0.95, floored to the share grid
    yes_tokens = [m.yes_token_id for m in sb.markets.values()]
    for token in yes_tokens:  # 40 units held already, at cost: 20 + 8 + 8 + ... = 38 pUSD
        sb.hold(token, "40", cost=str(D("0.95") * 40 / 3))
    arb = only_arb(SumTo100(settings).on_state(sb.state()))
    assert arb.size * D("0.95") <= D(60) - D(38)
    for token in yes_tokens:  # at the cap: nothing more
        sb.hold(token, "63", cost="20")
    assert SumTo100(settings).on_state(sb.state()) == []
    uncapped = SumTo100Settings(max_basket_usd=D(95), max_held_basket_usd=D(0), binary=False)
    assert only_arb(SumTo100(uncapped).on_state(sb.state())).size == D(100)
