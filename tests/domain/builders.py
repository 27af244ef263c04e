"""Small builders shared by the domain tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trader.domain.enums import Liquidity
from trader.domain.events import OrderFilled
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.testing import builders

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
ORDER_ID = "0x" + "ab" * 32


def make_order(**changes: Any) -> Order:
    """An order of the domain tests: BUY 10 of TOKEN at 0.50, GTC, created at 100 s, outside any strategy or
    market; `changes` sets any field."""
    fields: dict[str, Any] = {
        "order_id": ORDER_ID,
        "token_id": TOKEN,
        "price": "0.50",
        "created_ts": 100.0,
        "condition_id": "",
        "strategy": "",
    }
    return builders.make_order(**(fields | changes))


def make_fill(
    trade_id: str = "t1",
    size: str | Decimal = "4",
    price: str | Decimal = "0.50",
    *,
    side: Side = Side.BUY,
    fee: str | Decimal = "0",
    fee_shares: str | Decimal = "0",
    client_order_id: str = "c1",
    token_id: str = TOKEN,
    fill_id: str | None = None,
    ts: float = 101.0,
    liquidity: Liquidity = Liquidity.TAKER,
) -> OrderFilled:
    return OrderFilled(
        client_order_id=client_order_id,
        trade_id=trade_id,
        fill_id=fill_id,
        token_id=token_id,
        side=side,
        price=Decimal(price),
        size=Decimal(size),
        fee=Decimal(fee),
        fee_shares=Decimal(fee_shares),
        liquidity=liquidity,
        ts=ts,
    )
