"""The clipper: clip sizes on the edge cases, fair values, budget, inventory and re-firing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trader.domain.enums import OrderType
from trader.domain.intents import OrderIntent
from trader.domain.market import NO_FEES, FeeSchedule
from trader.domain.numbers import Side
from trader.strategies.base import MarketState
from trader.strategies.clipper import Clip, Clipper, ClipperSettings, FairValue, clip_size

from .builders import D, Levels, StateBuilder, make_book, make_market, view


def size(
    asks: Levels = (),
    bids: Levels = (),
    *,
    side: Side = Side.BUY,
    limit_value: str = "0.47",
    fees: FeeSchedule = NO_FEES,
    clip: str = "20",
    min_size: str = "5",
    min_notional: str = "0",
    budget: str | None = None,
    max_shares: str | None = None,
    tick: str = "0.01",
) -> Clip | None:
    book = view(make_book("1", bids=bids, asks=asks, tick=tick))
    return clip_size(
        book,
        side,
        limit_value=D(limit_value),
        fees=fees,
        tick_size=D(tick),
        clip_shares=D(clip),
        min_size=D(min_size),
        min_notional=D(min_notional),
        budget_usd=None if budget is None else D(budget),
        max_shares=None if max_shares is None else D(max_shares),
    )


def test_a_full_clip_at_the_worst_level_it_touches() -> None:
    assert size([("0.40", "10"), ("0.45", "30"), ("0.48", "100")]) == Clip(D("0.45"), D(20))
    assert size([("0.40", "10"), ("0.45", "30")], clip="10") == Clip(D("0.40"), D(10))


def test_depth_smaller_than_a_clip_takes_the_depth_within_the_limit() -> None:
    assert size([("0.40", "7"), ("0.48", "100")]) == Clip(D("0.40"), D(7))


def test_below_the_minimum_size_or_notional_nothing() -> None:
    assert size([("0.40", "4.99"), ("0.48", "100")]) is None
    assert size([("0.02", "20")], min_notional="1") is None  # 0.40 pUSD
    assert size([("0.05", "20")], min_notional="1") == Clip(D("0.05"), D(20))


def test_budget_limits_and_exhausts() -> None:
    asks = [("0.40", "100")]
    assert size(asks, budget="2.00") == Clip(D("0.40"), D(5))
    assert size(asks, budget="1.99") is None  # 4.97 shares: below the minimum size
    assert size(asks, budget="0") is None
    assert size(asks, budget="-3") is None
    fee = FeeSchedule(rate=D("0.25"), exponent=1)  # 0.06 per share at 0.40: a share costs 0.46
    assert size(asks, budget="4.60", fees=fee, limit_value="0.50") == Clip(D("0.40"), D(10))


def test_a_fee_can_make_the_edge_vanish() -> None:
    asks = [("0.45", "100")]
    assert size(asks) == Clip(D("0.45"), D(20))
    fee = FeeSchedule(rate=D("0.25"), exponent=1)  # 0.061875 per share at 0.45: 0.511875 > 0.47
    assert size(asks, fees=fee) is None
    # the fee also cuts the walk short: 0.40 costs 0.46, 0.44 costs 0.5016
    assert size([("0.40", "10"), ("0.44", "100")], fees=fee) == Clip(D("0.40"), D(10))


def test_tick_rounding_keeps_the_limit_on_the_grid() -> None:
    # 0.455 is off the 0.01 grid: a floored limit (0.45) cannot reach it, so it is not depth
    assert size([("0.40", "5"), ("0.455", "10")]) == Clip(D("0.40"), D(5))
    assert size([("0.40", "5"), ("0.455", "10")], tick="0.001") == Clip(D("0.455"), D(15))
    assert size([("0.405", "10")], tick="0.01") is None  # the only level is off the grid


def test_sell_side_mirror_is_limited_by_inventory_and_ceiled_to_the_grid() -> None:
    bids = [("0.60", "10"), ("0.58", "50"), ("0.55", "100")]
    assert size(bids=bids, side=Side.SELL, limit_value="0.57") == Clip(D("0.58"), D(20))
    assert size(bids=bids, side=Side.SELL, limit_value="0.57", max_shares="12.345") == Clip(D("0.58"), D("12.34"))
    assert size(bids=bids, side=Side.SELL, limit_value="0.57", max_shares="8") == Clip(D("0.60"), D(8))
    assert size(bids=[("0.575", "50")], side=Side.SELL, limit_value="0.57") is None  # ceiled to 0.58: unreachable
    assert size(bids=bids, side=Side.SELL, limit_value="0.61") is None


# -- the strategy ----------------------------------------------------------------------------------------------

MARKET = make_market(1)
YES, NO = MARKET.yes_token_id, MARKET.no_token_id


def dislocated(**hold: str) -> StateBuilder:
    """YES asks 0.40 while NO bids 0.45 (YES is worth 0.55 through NO); nothing else is off."""
    sb = StateBuilder()
    sb.market(MARKET, yes=([("0.38", "50")], [("0.40", "50")]), no=([("0.45", "50")], [("0.62", "50")]))
    for token_id, qty in hold.items():
        sb.hold(YES if token_id == "yes" else NO, qty, cost=str(D(qty) * D("0.40")))
    return sb


def one(outputs: object) -> OrderIntent:
    assert isinstance(outputs, list)
    assert len(outputs) == 1
    assert isinstance(outputs[0], OrderIntent)
    return outputs[0]


def test_buys_a_clip_below_the_complement_fair_value() -> None:
    intent = one(Clipper(ClipperSettings(enabled=True)).on_state(dislocated().state()))
    assert (intent.token_id, intent.side, intent.price, intent.size) == (YES, Side.BUY, D("0.40"), D(20))
    assert intent.order_type is OrderType.FAK
    assert intent.client_order_id == "t-clipper-1"


def test_one_clip_per_token_in_flight_and_the_budget_counts_working_clips() -> None:
    clipper = Clipper(ClipperSettings(max_position_usd=D(10), refire_cooldown_secs=0))
    first = one(clipper.on_state(dislocated().state(now=1.0)))
    assert first.size == D(20)  # 8 pUSD
    assert clipper.on_state(dislocated().state(now=2.0, in_flight={first.client_order_id})) == []
    # filled: the position now holds the cost; 2 pUSD of budget is left: 5 shares at 0.40
    second = one(clipper.on_state(dislocated(yes="20").state(now=3.0)))
    assert second.size == D(5)
    assert clipper.on_state(dislocated(yes="25").state(now=4.0)) == []  # budget exhausted


def test_cooldown_between_clips_on_a_token() -> None:
    clipper = Clipper()
    one(clipper.on_state(dislocated().state(now=1.0)))
    assert clipper.on_state(dislocated().state(now=1.5)) == []
    one(clipper.on_state(dislocated().state(now=2.0)))


def test_sells_held_inventory_when_the_bid_is_rich() -> None:
    sb = StateBuilder()
    # YES bid 0.60 while NO asks 0.45 (YES is worth 0.55 through NO)
    sb.market(MARKET, yes=([("0.60", "50")], [("0.70", "50")]), no=([("0.35", "50")], [("0.45", "50")]))
    clipper = Clipper(ClipperSettings(refire_cooldown_secs=0))
    assert clipper.on_state(sb.state()) == []  # nothing held
    sb.hold(YES, "15")
    intent = one(clipper.on_state(sb.state()))
    assert (intent.token_id, intent.side, intent.price, intent.size) == (YES, Side.SELL, D("0.60"), D(15))
    # while that sale is in flight the same shares are not offered again
    assert clipper.on_state(sb.state(now=101.0, in_flight={intent.client_order_id})) == []
    no_selling = Clipper(ClipperSettings(sell_inventory=False))
    assert no_selling.on_state(sb.state()) == []


def test_watches_only_the_configured_tokens_and_usable_books() -> None:
    assert Clipper(ClipperSettings(tokens=(NO,))).on_state(dislocated().state()) == []
    sb = StateBuilder()
    sb.market(MARKET, yes=([("0.38", "50")], [("0.40", "50")]), no=([("0.45", "50")], [("0.62", "50")]), age=9.0)
    assert Clipper().on_state(sb.state()) == []
    closed = StateBuilder()
    closed.market(make_market(1, closed=True), yes=((), [("0.40", "50")]), no=([("0.45", "50")], ()))
    assert Clipper().on_state(closed.state()) == []


def test_smoothed_mid_fair_value_uses_the_average_before_the_dislocation() -> None:
    yes_book = make_book(YES, bids=[("0.44", "50")], asks=[("0.56", "50")])
    no_book = make_book(NO, bids=[("0.49", "50")], asks=[("0.51", "50")])
    clipper = Clipper(ClipperSettings(fair_value=FairValue.SMOOTHED_MID, tokens=(YES,)))

    def state(now: float) -> MarketState:
        sb = StateBuilder()
        sb.markets[MARKET.condition_id] = MARKET
        sb.books = {YES: view(yes_book), NO: view(no_book)}
        return sb.state(now=now)

    assert clipper.on_state(state(1.0)) == []  # first sight: the average starts at the mid, 0.50
    yes_book.apply_level(Side.SELL, D("0.56"), D(0), now=2.0)
    yes_book.apply_level(Side.SELL, D("0.45"), D(30), now=2.0)  # ask drops to 0.45: mid 0.445
    intent = one(clipper.on_state(state(2.0)))  # 0.45 <= 0.50 - 0.03
    assert (intent.price, intent.size) == (D("0.45"), D(20))
    # the average moved to 0.489: 0.45 is still cheap, but the next clip waits for the cooldown and in-flight
    assert clipper.on_state(state(2.5)) == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        ClipperSettings(smoothing=D(0))
    with pytest.raises(ValueError, match="threshold_usd"):
        ClipperSettings(threshold_usd=D(0))
    with pytest.raises(ValueError, match="clip_shares"):
        ClipperSettings(clip_shares=D(0))
    with pytest.raises(ValueError, match="order_type"):
        ClipperSettings(order_type=OrderType.GTD)
    with pytest.raises(ValueError, match="max_book_age_secs"):
        ClipperSettings(max_book_age_secs=0)
    assert Decimal(ClipperSettings().threshold_usd) == D("0.03")


def test_a_wakeup_looks_only_at_the_markets_that_changed() -> None:
    assert Clipper().on_state(dislocated().state(changed=["0xc2"])) == []
    one(Clipper().on_state(dislocated().state(changed=[MARKET.condition_id])))
