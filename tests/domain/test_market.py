"""Fees (V2 formula and rounding), markets and neg-risk events."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain.enums import Liquidity
from trader.domain.market import FEE_QUANTUM, NO_FEES, FeeSchedule, Market, NegRiskEvent, is_token_id
from trader.errors import InputError
from trader.testing import builders

D = Decimal
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def make_market(n: int = 1, **changes: Any) -> Market:
    """Market n of this file: condition 0x{n:064x}, YES token 1000 + 2n, NO token 1001 + 2n."""
    fields = {
        "condition_id": f"0x{n:064x}",
        "question": f"Outcome {n}?",
        "slug": f"outcome-{n}",
        "yes_token_id": str(1000 + 2 * n),
        "no_token_id": str(1001 + 2 * n),
    }
    return builders.make_market(n, **(fields | changes))


def test_fee_formula_by_hand() -> None:
    docs_example = FeeSchedule(rate=D("0.02"), exponent=2)
    # 100 * 0.02 * (0.5 * 0.5)^2 = 0.125
    assert docs_example.fee(D("100"), D("0.5")) == D("0.125")
    assert docs_example.rate_at(D("0.5")) == D("0.00125")
    crypto = FeeSchedule(rate=D("0.07"), exponent=D("1"))
    # 13.37 * 0.07 * 0.57 * 0.43 = 0.22938909 -> floored at 5 dp
    assert crypto.fee(D("13.37"), D("0.57")) == D("0.22938")
    assert crypto.fee(D("13.37"), D("0.57"), Liquidity.MAKER) == 0
    assert crypto.fee(D("10"), D("0")) == 0
    assert crypto.fee(D("10"), D("1")) == 0
    assert crypto.fee(D("0"), D("0.5")) == 0
    # a tiny fee floors to zero
    assert crypto.fee(D("0.0001"), D("0.5")) == 0
    assert NO_FEES.fee(D("100"), D("0.5")) == 0
    assert NO_FEES.rate_at(D("0.5")) == 0


def test_fractional_exponent_and_makers_paying_when_not_taker_only() -> None:
    sqrt_curve = FeeSchedule(rate=D("0.07"), exponent=D("0.5"), taker_only=False)
    # 100 * 0.07 * sqrt(0.21) = 3.20780...
    assert sqrt_curve.fee(D("100"), D("0.3")) == D("3.20780")
    assert sqrt_curve.fee(D("100"), D("0.3"), Liquidity.MAKER) == D("3.20780")


def test_buy_fee_in_shares() -> None:
    schedule = FeeSchedule(rate=D("0.02"), exponent=2)
    assert schedule.buy_fee_in_shares(D("100"), D("0.5")) == D("0.25")
    # 0.22938 / 0.57 = 0.402421052... -> floored to 6 dp
    assert FeeSchedule(rate=D("0.07"), exponent=1).buy_fee_in_shares(D("13.37"), D("0.57")) == D("0.402421")
    assert schedule.buy_fee_in_shares(D("100"), D("0.5"), Liquidity.MAKER) == 0


def test_taker_fee_bound_is_the_fee_at_the_limit_or_at_one_half() -> None:
    schedule = FeeSchedule(rate=D("0.02"), exponent=1)
    # below 1/2 the limit is the worst price a buy can trade at: 100 x 0.02 x 0.3 x 0.7
    assert schedule.taker_fee_bound(D(100), D("0.3")) == D("0.42")
    # above 1/2 a buy may still trade at 1/2, where p(1 - p) peaks: 100 x 0.02 x 0.25
    assert schedule.taker_fee_bound(D(100), D("0.8")) == D("0.5") > schedule.fee(D(100), D("0.8"))
    assert NO_FEES.taker_fee_bound(D(100), D("0.5")) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": D("-0.01"), "exponent": 1}, "fees.rate"),
        ({"rate": 0.02, "exponent": 1}, "fees.rate"),
        ({"rate": D("NaN"), "exponent": 1}, "fees.rate"),
        ({"rate": D("0.02"), "exponent": -1}, "fees.exponent"),
        ({"rate": D("0.02"), "exponent": 2.0}, "fees.exponent"),
        ({"rate": D("0.02"), "exponent": True}, "fees.exponent"),
        ({"rate": D("0.02"), "exponent": D("Infinity")}, "fees.exponent"),
    ],
)
def test_fee_schedule_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        FeeSchedule(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_fee_arguments_are_checked() -> None:
    schedule = FeeSchedule(rate=D("0.02"), exponent=2)
    with pytest.raises(InputError, match="price"):
        schedule.fee(D("1"), D("1.2"))
    with pytest.raises(InputError, match="price"):
        schedule.fee(D("1"), D("-0.1"), Liquidity.MAKER)
    with pytest.raises(InputError, match="shares: must not be negative"):
        schedule.fee(D("-1"), D("0.5"))


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=10**8).map(lambda n: D(n) / 100),
    st.integers(min_value=0, max_value=10**4).map(lambda n: D(n) / 10**4),
    st.sampled_from([D("0"), D("0.02"), D("0.07"), D("0.25")]),
    st.sampled_from([0, 1, 2, D("0.5")]),
)
def test_fee_is_floored_at_5dp_and_symmetric_in_price(
    shares: Decimal, price: Decimal, rate: Decimal, exponent: Decimal | int
) -> None:
    schedule = FeeSchedule(rate=rate, exponent=exponent)
    fee = schedule.fee(shares, price)
    exact = shares * schedule.rate_at(price)
    assert fee == fee.quantize(FEE_QUANTUM)
    assert 0 <= exact - fee < FEE_QUANTUM
    assert fee == schedule.fee(shares, 1 - price)  # p(1-p) is symmetric: YES and NO pay alike
    in_shares = schedule.buy_fee_in_shares(shares, price)
    if price == 0:
        assert in_shares == 0  # nothing trades at 0; no division by zero either
    else:
        assert 0 <= fee - in_shares * price < D("0.000001") * price


def test_market_tokens_and_outcomes() -> None:
    market = Market(
        condition_id="0x2f71af14933532e9131bfbe45767d407688f13eb01ecb1a736ba6bb6f21e7de5",
        question="Up or down?",
        slug="btc-up-or-down",
        yes_token_id=YES,
        no_token_id=NO,
        tick_size=D("0.01"),
        outcomes=("Up", "Down"),
    )
    assert market.token_ids == (YES, NO)
    assert market.complement(YES) == NO
    assert market.complement(NO) == YES
    assert market.outcome_of(YES) == "Up"
    assert market.outcome_of(NO) == "Down"
    assert market.has_token(NO)
    assert not market.has_token("123")
    assert market.is_tradable
    assert market.min_order_size == 5
    assert market.fees == NO_FEES
    with pytest.raises(InputError, match="token_id: '123' is not a token of market"):
        market.complement("123")
    with pytest.raises(InputError, match="token_id"):
        market.outcome_of("123")
    finer = market.with_tick_size(D("0.001"))
    assert finer.tick_size == D("0.001")
    assert market.tick_size == D("0.01")
    assert not replace(market, closed=True).is_tradable
    assert not replace(market, accepting_orders=False).is_tradable
    assert not replace(market, active=False).is_tradable


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"yes_token_id": 123}, "yes_token_id"),
        ({"no_token_id": "1.5e3"}, "no_token_id"),
        ({"no_token_id": ""}, "no_token_id"),
        ({"no_token_id": "٣"}, "no_token_id"),  # a digit, but not ASCII
        ({"no_token_id": "1002"}, "no_token_id"),  # same as YES
        ({"condition_id": ""}, "condition_id"),
        ({"tick_size": D("0.02")}, "tick_size"),
        ({"min_order_size": D("-1")}, "min_order_size"),
        ({"outcomes": ("Yes",)}, "outcomes"),
        ({"outcomes": ("Yes", "")}, "outcomes"),
    ],
)
def test_market_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        make_market(1, **changes)
    assert info.value.field == field


def test_is_token_id() -> None:
    assert is_token_id(YES)
    assert not is_token_id(int(YES))
    assert not is_token_id(1e76)
    assert not is_token_id("0x12")
    assert not is_token_id("1" * 79)


def neg_risk_market(n: int, **changes: object) -> Market:
    return make_market(n, neg_risk=True, neg_risk_market_id="0xevent", **changes)


def test_complete_neg_risk_event() -> None:
    event = NegRiskEvent(
        event_id="e1",
        title="Who wins?",
        markets=(neg_risk_market(1), neg_risk_market(2), neg_risk_market(3)),
        complete=True,
    )
    assert event.is_complete
    assert event.incomplete_reasons() == ()
    assert tuple(m.yes_token_id for m in event.markets) == ("1002", "1004", "1006")
    market = event.market_of("1005")  # the NO token of market 2
    assert market is not None
    assert market.condition_id == f"0x{2:064x}"
    assert event.market_of("999") is None


def test_incomplete_neg_risk_events_say_why() -> None:
    one = f"0x{1:064x}"
    two = f"0x{2:064x}"
    cases = [
        ((neg_risk_market(1), neg_risk_market(2)), False, ("DECLARED_INCOMPLETE",)),  # e.g. an implicit "Other"
        ((neg_risk_market(1),), True, ("TOO_FEW_MARKETS",)),
        ((neg_risk_market(1), neg_risk_market(2, closed=True)), True, (f"MARKET_CLOSED:{two}",)),
        ((neg_risk_market(1, active=False), neg_risk_market(2)), True, (f"MARKET_INACTIVE:{one}",)),
        ((neg_risk_market(1), neg_risk_market(2, accepting_orders=False)), True, (f"NOT_ACCEPTING_ORDERS:{two}",)),
        ((make_market(1), neg_risk_market(2)), True, ("NEG_RISK_ID_MISMATCH", f"NOT_NEG_RISK:{one}")),
        ((), False, ("DECLARED_INCOMPLETE", "TOO_FEW_MARKETS")),
    ]
    for markets, complete, reasons in cases:
        event = NegRiskEvent(event_id="e", title="t", markets=markets, complete=complete)
        assert event.incomplete_reasons() == reasons
        assert not event.is_complete


def test_neg_risk_event_validation() -> None:
    with pytest.raises(InputError, match="listed twice"):
        NegRiskEvent(event_id="e", title="t", markets=(neg_risk_market(1), neg_risk_market(1)), complete=True)
    with pytest.raises(InputError, match="must be a tuple"):
        NegRiskEvent(event_id="e", title="t", markets=[neg_risk_market(1)], complete=True)  # type: ignore[arg-type]
