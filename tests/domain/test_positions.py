"""Positions and the portfolio: average-cost accounting by hand, fees in shares, exact reversal."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.builders import TOKEN, make_fill
from trader.domain.book import OrderBook
from trader.domain.errors import InvariantViolation
from trader.domain.events import OrderFilled
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.domain.positions import Portfolio, Position, marks_at_mid

D = Decimal
OTHER = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def test_buy_then_sell_average_cost_and_realized_pnl() -> None:
    position = Position(token_id=TOKEN)
    assert position.avg_cost is None
    assert position.is_flat
    position = position.apply_fill(make_fill("t1", "10", "0.40", fee="0.05"))
    position = position.apply_fill(make_fill("t2", "10", "0.50"))
    assert position.quantity == 20
    assert position.cost_basis == D("9.05")  # 4 + 0.05 + 5
    assert position.avg_cost == D("0.4525")
    position = position.apply_fill(make_fill("t3", "5", "0.60", side=Side.SELL, fee="0.01"))
    # the sale removes a quarter of the cost basis: 2.2625; realized = 3 - 0.01 - 2.2625
    assert position.quantity == 15
    assert position.cost_basis == D("6.7875")
    assert position.realized_pnl == D("0.7275")
    assert position.fees_paid == D("0.06")
    assert position.avg_cost == D("0.4525")
    closed = position.apply_fill(make_fill("t4", "15", "0.30", side=Side.SELL))
    assert (closed.quantity, closed.cost_basis, closed.is_flat) == (D(0), D(0), True)
    assert closed.realized_pnl == D("0.7275") + D("4.5") - D("6.7875")


def test_a_buy_fee_collected_in_shares_raises_the_average_cost() -> None:
    schedule = FeeSchedule(rate=D("0.02"), exponent=2)
    fee_shares = schedule.buy_fee_in_shares(D("100"), D("0.5"))
    assert fee_shares == D("0.25")
    portfolio = Portfolio(cash=D("100"))
    position = portfolio.apply_fill(make_fill("t1", "100", "0.5", fee_shares=fee_shares))
    assert position.quantity == D("99.75")  # the venue kept 0.25 shares
    assert position.cost_basis == D("50")  # for the same 50 pUSD
    assert position.fees_paid == D("0.125")  # 0.25 shares at 0.5
    assert portfolio.cash == D("50")
    assert position.avg_cost == D("50") / D("99.75")
    assert position.unrealized_pnl(D("0.5")) == D("-0.125")  # exactly the fee


def test_selling_more_than_held_is_refused() -> None:
    position = Position(token_id=TOKEN).apply_fill(make_fill("t1", "3"))
    with pytest.raises(InvariantViolation, match="exceeds the position of 3"):
        position.apply_fill(make_fill("t2", "3.01", side=Side.SELL))
    with pytest.raises(InvariantViolation, match="applied to position"):
        position.apply_fill(make_fill("t3", "1", token_id=OTHER))


def test_reversal_is_exact_and_settlement_forgets() -> None:
    start = Position(token_id=TOKEN).apply_fill(make_fill("t1", "3", "0.3")).settle("t1")
    sell = make_fill("t2", "1", "0.7", side=Side.SELL, fee="0.001")
    after = start.apply_fill(sell)
    assert after.apply_fill(sell) is after  # the same fill again is a no-op while unsettled
    assert after.reverse_fill(sell) == start
    assert after.reverse_trade("t2") == start
    assert after.reverse_trade("nope") == after
    settled = after.settle("t2")
    assert settled.unsettled == ()
    with pytest.raises(InvariantViolation, match="not an unsettled fill"):
        settled.reverse_fill(sell)


def test_marks_from_books() -> None:
    book = OrderBook(TOKEN, D("0.01"))
    book.apply_snapshot([(D("0.48"), D("10"))], [(D("0.52"), D("10"))], now=0.0)
    one_sided = OrderBook(OTHER, D("0.01"))
    one_sided.apply_snapshot([(D("0.30"), D("1"))], [], now=0.0)
    assert marks_at_mid([book, one_sided]) == {TOKEN: D("0.50")}
    position = Position(token_id=TOKEN).apply_fill(make_fill("t1", "10", "0.45"))
    assert position.unrealized_pnl(marks_at_mid([book])[TOKEN]) == D("0.5")
    assert marks_at_mid([OrderBook(TOKEN, D("0.01"))]) == {}  # an empty book gives no mark


def test_portfolio_totals_exposure_and_equity() -> None:
    portfolio = Portfolio(cash=D("100"))
    portfolio.apply_fill(make_fill("t1", "10", "0.40", fee="0.1"))
    portfolio.apply_fill(make_fill("t2", "20", "0.55", token_id=OTHER))
    portfolio.apply_fill(make_fill("t3", "4", "0.50", side=Side.SELL))
    assert portfolio.cash == D("100") - D("4.1") - D("11") + D("2")
    assert portfolio.position(TOKEN).quantity == 6
    assert portfolio.exposure(TOKEN) == D("2.46")  # 4.1 * 6 / 10
    assert portfolio.exposure() == D("2.46") + D("11")
    assert portfolio.realized_pnl == D("2") - D("1.64")
    assert portfolio.fees_paid == D("0.1")
    marks = {TOKEN: D("0.5"), OTHER: D("0.5")}
    assert portfolio.market_value(marks) == D("13")
    assert portfolio.unrealized_pnl(marks) == D("13") - D("13.46")
    # equity = starting cash + realized + unrealized
    assert portfolio.equity(marks) == D("100") + portfolio.realized_pnl + portfolio.unrealized_pnl(marks)
    with pytest.raises(KeyError):
        portfolio.market_value({TOKEN: D("0.5")})
    with pytest.raises(KeyError):
        portfolio.unrealized_pnl({TOKEN: D("0.5")})
    # a live view leaves out the position it cannot mark instead of failing
    assert portfolio.marked_unrealized_pnl({TOKEN: D("0.5")}) == portfolio.position(TOKEN).unrealized_pnl(D("0.5"))
    assert portfolio.marked_unrealized_pnl(marks) == portfolio.unrealized_pnl(marks)
    assert portfolio.position("123").is_flat
    assert set(portfolio.positions) == {TOKEN, OTHER}


def test_portfolio_reversal_settlement_and_pruning() -> None:
    portfolio = Portfolio(cash=D("10"))
    buy = make_fill("t1", "10", "0.40")
    portfolio.apply_fill(buy)
    portfolio.apply_fill(buy)  # duplicate: no double count
    assert portfolio.cash == D("6")
    portfolio.reverse_fill(buy)  # the trade FAILED
    assert portfolio.cash == D("10")
    assert portfolio.position(TOKEN).is_flat
    portfolio.apply_fill(make_fill("t2", "2", "0.5", fill_id="t2:a"))
    portfolio.apply_fill(make_fill("t2", "3", "0.5", fill_id="t2:b"))
    portfolio.reverse_trade(TOKEN, "t2")
    assert portfolio.cash == D("10")
    portfolio.apply_fill(make_fill("t3", "2", "0.5"))
    portfolio.settle(TOKEN, "t3")
    portfolio.settle("123", "t3")  # unknown token: nothing to do
    with pytest.raises(InvariantViolation):
        portfolio.reverse_fill(make_fill("t3", "2", "0.5"))
    portfolio.apply_fill(make_fill("t4", "2", "0.6", side=Side.SELL))
    portfolio.settle(TOKEN, "t4")
    assert portfolio.positions == {TOKEN: Position(token_id=TOKEN, realized_pnl=D("0.2"), fees_paid=D("0"))}
    assert Portfolio(positions=[Position(token_id=TOKEN, quantity=D("1"))]).position(TOKEN).quantity == 1


# -- properties ------------------------------------------------------------------------------------------------

fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=10**4).map(lambda n: D(n) / 100),  # shares, 0.01 steps
        st.integers(min_value=1, max_value=999).map(lambda n: D(n) / 1000),  # price
        st.integers(min_value=0, max_value=500).map(lambda n: D(n) / 10**5),  # pUSD fee
        st.booleans(),  # buy fee taken in shares instead
    ),
    max_size=20,
)


def build(history: list[tuple[Side, Decimal, Decimal, Decimal, bool]]) -> tuple[Portfolio, list[OrderFilled]]:
    portfolio = Portfolio(cash=D("1000"))
    applied: list[OrderFilled] = []
    for n, (side, size, price, fee, in_shares) in enumerate(history):
        shares = min(size, portfolio.position(TOKEN).quantity) if side is Side.SELL else size
        if shares <= 0:
            continue
        if side is Side.BUY and in_shares:
            fill = make_fill(f"t{n}", shares, price, fee_shares=min(fee * 10, shares))
        else:
            fill = make_fill(f"t{n}", shares, price, side=side, fee=fee)
        portfolio.apply_fill(fill)
        applied.append(fill)
    return portfolio, applied


@settings(max_examples=100)
@given(fills, fills)
def test_apply_then_reverse_round_trips_exactly(
    history: list[tuple[Side, Decimal, Decimal, Decimal, bool]],
    extra: list[tuple[Side, Decimal, Decimal, Decimal, bool]],
) -> None:
    portfolio, _ = build(history)
    before_cash, before = portfolio.cash, portfolio.position(TOKEN)
    _, extra_fills = build(extra)
    for other in extra_fills:
        fill = make_fill(
            f"x{other.trade_id}", other.size, other.price, side=other.side, fee=other.fee, fee_shares=other.fee_shares
        )
        if fill.side is Side.SELL and fill.size > portfolio.position(TOKEN).quantity:
            continue
        portfolio.apply_fill(fill)
        portfolio.reverse_fill(fill)
        assert portfolio.position(TOKEN) == before
        assert portfolio.cash == before_cash


@settings(max_examples=100)
@given(fills, st.integers(min_value=1, max_value=99).map(lambda n: D(n) / 100))
def test_equity_moves_by_realized_plus_unrealized_pnl(
    history: list[tuple[Side, Decimal, Decimal, Decimal, bool]], mark: Decimal
) -> None:
    portfolio, applied = build(history)
    position = portfolio.position(TOKEN)
    assert position.quantity >= 0
    assert portfolio.equity({TOKEN: mark}) - D("1000") == position.realized_pnl + position.unrealized_pnl(mark)
    expected_fees = sum((f.fee + f.fee_shares * f.price for f in applied), D(0))
    assert position.fees_paid == expected_fees
    # reversing every fill, newest first, gets back to the start exactly
    for fill in reversed(applied):
        portfolio.reverse_fill(fill)
    assert portfolio.position(TOKEN) == Position(token_id=TOKEN)
    assert portfolio.cash == D("1000")


@settings(max_examples=100)
@given(fills, fills)
def test_kept_totals_are_the_sums_over_the_positions(
    history: list[tuple[Side, Decimal, Decimal, Decimal, bool]],
    other: list[tuple[Side, Decimal, Decimal, Decimal, bool]],
) -> None:
    """The portfolio keeps its totals as positions change (so reading them does not cost a pass over every token
    ever traded); they must stay exactly the sums, through fills, reversals and trades undone."""
    portfolio, applied = build(history)
    second, _ = build(other)
    for position in second.positions.values():  # a second token, as a restart loads it
        loaded = dataclasses.replace(position, token_id="2" + TOKEN, unsettled=())
        portfolio = Portfolio(cash=portfolio.cash, positions=[*portfolio.positions.values(), loaded])
    for fill in reversed(applied[len(applied) // 2 :]):
        portfolio.reverse_trade(fill.token_id, fill.trade_id)
    positions = portfolio.positions.values()
    assert portfolio.exposure() == sum((p.cost_basis for p in positions), D(0))
    assert portfolio.realized_pnl == sum((p.realized_pnl for p in positions), D(0))
    assert portfolio.fees_paid == sum((p.fees_paid for p in positions), D(0))


# -- merges, resolutions, redemptions -----------------------------------------------------------------------------


def _hold_set(portfolio: Portfolio, yes_price: str, no_price: str, size: str = "10") -> None:
    portfolio.apply_fill(make_fill("ty", size, yes_price))
    portfolio.apply_fill(make_fill("tn", size, no_price, token_id=OTHER, client_order_id="c2"))
    portfolio.settle(TOKEN, "ty")
    portfolio.settle(OTHER, "tn")


def test_merging_complete_sets_frees_their_collateral_and_realizes_the_edge() -> None:
    portfolio = Portfolio(cash=D("100"))
    _hold_set(portfolio, "0.45", "0.52")  # 10 sets for 9.70
    assert portfolio.cash == D("90.30")
    gain = portfolio.merge_sets(TOKEN, OTHER, D("6"))
    assert gain == D("6") - D("2.70") - D("3.12")  # each leg gives up 6/10 of its cost
    assert portfolio.cash == D("96.30")
    yes, no = portfolio.position(TOKEN), portfolio.position(OTHER)
    assert (yes.quantity, no.quantity) == (D(4), D(4))
    assert (yes.cost_basis, no.cost_basis) == (D("1.80"), D("2.08"))
    assert portfolio.exposure() == D("3.88")  # the kept total follows the merge
    assert yes.realized_pnl + no.realized_pnl == gain  # split between the legs, adding up exactly
    assert yes.realized_pnl == (gain * D("2.70") / D("5.82")).quantize(D("1E-12"))
    with pytest.raises(InvariantViolation, match="exceed the position"):
        portfolio.merge_sets(TOKEN, OTHER, D("5"))


def test_only_settled_shares_can_be_merged() -> None:
    portfolio = Portfolio(cash=D("100"))
    _hold_set(portfolio, "0.45", "0.52")
    portfolio.apply_fill(make_fill("ty2", "5", "0.45"))  # bought, not mined yet
    assert portfolio.position(TOKEN).quantity == D(15)
    assert portfolio.position(TOKEN).settled_quantity == D(10)
    portfolio.settle(TOKEN, "ty2")
    assert portfolio.position(TOKEN).settled_quantity == D(15)


@pytest.mark.parametrize(
    ("payouts", "realized"),
    [
        ((D(1), D(0)), D("10") - D("4.50") - D("5.20")),  # YES won
        ((D(0), D(1)), D("10") - D("4.50") - D("5.20")),  # NO won: a complete set pays 1 either way
        ((D("0.5"), D("0.5")), D("10") - D("9.70")),  # 50/50
    ],
)
def test_a_resolution_settles_at_the_payout_and_the_redemption_pays_it(
    payouts: tuple[Decimal, Decimal], realized: Decimal
) -> None:
    portfolio = Portfolio(cash=D("100"))
    _hold_set(portfolio, "0.45", "0.52")
    equity_before = portfolio.equity({TOKEN: payouts[0], OTHER: payouts[1]})
    pnl = portfolio.settle_resolution("0xcond", {TOKEN: payouts[0], OTHER: payouts[1]})
    assert pnl == realized
    assert portfolio.realized_pnl == realized
    assert portfolio.position(TOKEN).is_flat
    assert portfolio.position(OTHER).is_flat
    assert portfolio.receivables == {"0xcond": D(10)}
    assert portfolio.equity({}) == equity_before  # settling at the payout moves nothing but the marks
    assert portfolio.redeemed("0xcond", D(10)) == D(0)
    assert portfolio.cash == D("100.30")
    assert portfolio.receivable == D(0)


def test_a_one_sided_position_settles_at_a_loss_when_its_side_lost() -> None:
    portfolio = Portfolio(cash=D("100"))
    portfolio.apply_fill(make_fill("ty", "10", "0.45"))
    assert portfolio.settle_resolution("0xcond", {TOKEN: D(0), OTHER: D(1)}) == D("-4.50")
    assert portfolio.receivables == {}  # nothing to redeem
    assert portfolio.realized_pnl == D("-4.50")
