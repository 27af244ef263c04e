"""Strategy intents and domain events: validation that names the field, and the reason-code shape."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from decimal import Decimal
from typing import Any

import pytest

from tests.domain.builders import TOKEN, make_fill
from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.errors import InvalidTransition
from trader.domain.events import (
    OrderCanceled,
    OrderCancelRejected,
    OrderKilled,
    OrderReason,
    OrderRejected,
    RiskReason,
    RiskRejected,
    TradeStatusChanged,
    is_reason_code,
)
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.testing import make_intent

D = Decimal
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def intent(**changes: Any) -> OrderIntent:
    """A sum_to_100 BUY of 10 TOKEN at 0.48; `changes` go to the constructor as they are, so that its checks see
    them (a price given as text included)."""
    return replace(make_intent(strategy="sum_to_100", token_id=TOKEN, price="0.48"), **changes)


def test_order_intent_defaults_and_notional() -> None:
    buy = intent()
    assert (buy.order_type, buy.post_only, buy.expiration) == (OrderType.GTC, False, 0)
    assert buy.notional == D("4.80")
    with pytest.raises(FrozenInstanceError):
        buy.price = D("0.5")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_order_id": ""}, "client_order_id"),
        ({"side": "BUY"}, "side"),
        ({"price": D("0")}, "price"),
        ({"price": D("1")}, "price"),
        ({"price": D("NaN")}, "price"),
        ({"price": "0.5"}, "price"),
        ({"size": D("-1")}, "size"),
        ({"size": D("Infinity")}, "size"),
        ({"order_type": "FOK"}, "order_type"),
        ({"order_type": OrderType.FAK, "post_only": True}, "post_only"),
        ({"order_type": OrderType.GTD, "expiration": 0}, "expiration"),
        ({"order_type": OrderType.FOK, "expiration": 5}, "expiration"),
    ],
)
def test_order_intent_validation(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        intent(**changes)
    assert info.value.field == field


def test_post_only_gtd_intent_is_fine() -> None:
    gtd = intent(order_type=OrderType.GTD, post_only=True, expiration=1_767_225_700)
    assert gtd.order_type.rests
    assert not OrderType.FOK.rests


def test_arb_intent_yes_plus_no() -> None:
    arb = ArbIntent(
        arb_id="a1",
        strategy="sum_to_100",
        legs=(intent(), intent(client_order_id="c2", token_id=NO, price=D("0.49"))),
        max_slippage=D("0.02"),
    )
    assert arb.size == 10
    assert arb.price_sum == D("0.97")
    assert arb.notional == D("9.70")

    # a leg that pays more of its buy fee in shares is bought larger: sizes may differ, notional counts each
    uneven = ArbIntent(
        arb_id="a2",
        strategy="s",
        legs=(intent(size=D("10.05")), intent(client_order_id="c2", token_id=NO, size=D("10"))),
        max_slippage=D("0.01"),
    )
    assert uneven.size == D("10.05")
    assert uneven.notional == D("0.48") * D("10.05") + D("0.48") * D(10)


@pytest.mark.parametrize(
    ("legs", "slippage", "message"),
    [
        ((intent(),), D("0.01"), "at least two legs"),
        ([intent(), intent(client_order_id="c2", token_id=NO)], D("0.01"), "at least two legs"),
        ((intent(), intent(client_order_id="c2", token_id=NO, side=Side.SELL)), D("0.01"), "same side"),
        ((intent(), intent(client_order_id="c2")), D("0.01"), "different token"),
        ((intent(), intent(token_id=NO)), D("0.01"), "own client_order_id"),
        ((intent(), intent(client_order_id="c2", token_id=NO)), D("-0.01"), "max_slippage"),
    ],
)
def test_arb_intent_validation(legs: tuple[OrderIntent, ...], slippage: Decimal, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ArbIntent(arb_id="a1", strategy="s", legs=legs, max_slippage=slippage)


def test_reason_codes_are_stable_upper_snake_strings() -> None:
    assert is_reason_code("RISK_MAX_NOTIONAL")
    assert is_reason_code(RiskReason.TRADING_HALTED)
    assert not is_reason_code("risk max")
    assert not is_reason_code("")
    assert not is_reason_code(None)
    assert all(is_reason_code(r) for r in [*RiskReason, *OrderReason])
    rejected = RiskRejected(client_order_id="c1", strategy="clipper", reason=RiskReason.RISK_MAX_NOTIONAL, ts=1.0)
    assert rejected.reason == "RISK_MAX_NOTIONAL"
    for build in (
        lambda: RiskRejected(client_order_id="c1", strategy="s", reason="max notional", ts=1.0),
        lambda: OrderRejected(client_order_id="c1", reason="not enough balance", ts=1.0),
        lambda: OrderCancelRejected(client_order_id="c1", reason="", ts=1.0),
        lambda: OrderCanceled(client_order_id="c1", reason="by user", ts=1.0),
        lambda: OrderKilled(client_order_id="c1", reason="fok", ts=1.0),
    ):
        with pytest.raises(InputError, match="reason: a reason is a stable UPPER_SNAKE code"):
            build()


def test_fill_event_validation_and_views() -> None:
    fill = make_fill("t1", "10", "0.5", fee_shares="0.25")
    assert (fill.key, fill.notional, fill.net_shares) == ("t1", D("5.0"), D("9.75"))
    assert make_fill("t1", fill_id="t1:2").key == "t1:2"
    cases: list[tuple[dict[str, object], str]] = [
        ({"trade_id": ""}, "trade_id"),
        ({"price": "1.1"}, "price"),
        ({"size": "0"}, "size"),
        ({"fee": "-0.1"}, "fee"),
        ({"fee_shares": "11"}, "fee_shares"),
        ({"fee_shares": "-1"}, "fee_shares"),
        ({"fee_shares": "0.1", "side": Side.SELL}, "fee_shares"),
    ]
    for changes, field in cases:
        with pytest.raises(InputError) as info:
            make_fill(**changes)  # type: ignore[arg-type]
        assert info.value.field == field, changes


def test_trade_status_changed_event_and_enums() -> None:
    event = TradeStatusChanged(trade_id="t1", previous=TradeStatus.MATCHED, status=TradeStatus.MINED, ts=2.0)
    assert event.previous is TradeStatus.MATCHED
    assert not TradeStatus.MINED.is_terminal
    assert Liquidity("MAKER") is Liquidity.MAKER
    assert {s for s in OrderStatus if s.is_terminal} == {"FILLED", "CANCELED", "EXPIRED", "REJECTED"}
    assert {s for s in OrderStatus if s.is_open} == {
        "SUBMITTED",
        "UNKNOWN",
        "ACCEPTED",
        "PARTIALLY_FILLED",
        "PENDING_CANCEL",
    }
    error = InvalidTransition("order c1", "FILLED", "CANCEL")
    assert str(error) == "order c1: no transition from FILLED on CANCEL"
