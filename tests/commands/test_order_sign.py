"""`trader order sign`: a bad price on a balance-limited buy is a clean input error, never an internal one."""

from __future__ import annotations

import pytest

from tests.venues.polymarket.test_order_sign_cli import _DROP, _with, run_sign


@pytest.mark.parametrize(("order", "price"), [("amount", "0"), ("amount", "1"), ("size", "0")])
def test_a_balance_limited_buy_at_an_impossible_price_exits_2_naming_the_price(order: str, price: str) -> None:
    other = "size" if order == "amount" else "amount"
    payload = _with(
        **{order: "10", other: _DROP},
        side="BUY",
        price=price,
        user_usdc_balance="5",
        fee_rate="0.02",
        fee_exponent="1",
    )
    status, out, _ = run_sign(payload)
    assert status == 2
    assert out["error"].startswith("price: ")
