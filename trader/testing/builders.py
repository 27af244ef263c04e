"""Builders of valid domain objects for tests: the one place that knows how to build each of them.

Each builder gives a valid object from its defaults alone, and takes any field as a keyword override. Numbers are
given as `Decimal`, `str` or `int` (never `float`) and become exact `Decimal`s. The defaults fit together:
`make_intent()` trades the YES token of `make_market()` (market 1: condition "0xcond", tokens "1001" and "1002"),
`make_order()` is that intent as an order, `make_arb()` buys YES and NO of market 1 as a basket.

    make_market(2, fees=FeeSchedule(rate=D("0.02"), exponent=1))     # condition "0xcond2", tokens "2001" / "2002"
    make_intent("c7", side=Side.SELL, price="0.55", order_type=OrderType.FOK)
    make_order("c7", status=OrderStatus.ACCEPTED, filled=D(4))
    make_arb(make_intent("y", price="0.45"), make_intent("n", token_id=NO, price="0.52"))
    make_intent_record("c-1", state=IntentState.REJECTED)
    make_order_record("0x...", status=OrderStatus.ACCEPTED)

A test that relies on other values passes them (or wraps the builder in a one-line `functools.partial`).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.market import NO_FEES, FeeSchedule, Market
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.integrations.store.base import IntentRecord, OrderRecord
from trader.venues.sim.markets import SimMarket

__all__ = [
    "CONDITION",
    "NO",
    "WALL",
    "YES",
    "Num",
    "make_arb",
    "make_intent",
    "make_intent_record",
    "make_market",
    "make_order",
    "make_order_record",
    "market_from_sim",
    "order_id_for",
]

#: A number as a test writes it: exact, never a float.
Num = Decimal | str | int

#: Market 1 of `make_market`: its condition, YES and NO tokens (the defaults of the other builders).
CONDITION = "0xcond"
YES = "1001"
NO = "1002"

#: The default wall-clock time of the builders (epoch seconds, 2023-11-14).
WALL = 1_700_000_000.0


def _d(value: Num) -> Decimal:
    # Anything else (a float, a wrong type) goes through as it is: the domain's own checks must see it.
    return Decimal(value) if isinstance(value, str | int) else value


def _decimals(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    """`fields` with the numbers among `names` made Decimals (a test may give them as str or int)."""
    return {k: _d(v) if k in names and isinstance(v, str | int) else v for k, v in fields.items()}


def order_id_for(client_order_id: str) -> str:
    """A venue-shaped order id ("0x" + 64 hex) derived from a client order id: distinct ids give distinct ids."""
    return "0x" + hashlib.sha256(client_order_id.encode()).hexdigest()


def make_market(
    n: int = 1,
    *,
    condition_id: str | None = None,
    question: str | None = None,
    slug: str | None = None,
    yes_token_id: str | None = None,
    no_token_id: str | None = None,
    tick_size: Num = "0.01",
    min_order_size: Num = 5,
    fees: FeeSchedule = NO_FEES,
    neg_risk: bool = False,
    neg_risk_market_id: str | None = None,
    **changes: Any,
) -> Market:
    """Binary market `n`: condition "0xcond" (market 1) or "0xcond<n>", question "q<n>", slug "m<n>", YES token
    "<n>001", NO token "<n>002", tick 0.01, minimum size 5 shares, no fees, not neg-risk, open. `changes` sets any
    other `Market` field (`active`, `accepting_orders`, `closed`, `end_date`, `outcomes`)."""
    return Market(
        condition_id=condition_id if condition_id is not None else CONDITION if n == 1 else f"0xcond{n}",
        question=question if question is not None else f"q{n}",
        slug=slug if slug is not None else f"m{n}",
        yes_token_id=yes_token_id if yes_token_id is not None else f"{n}001",
        no_token_id=no_token_id if no_token_id is not None else f"{n}002",
        tick_size=_d(tick_size),
        min_order_size=_d(min_order_size),
        fees=fees,
        neg_risk=neg_risk,
        neg_risk_market_id=neg_risk_market_id,
        **changes,
    )


def market_from_sim(market: SimMarket, **changes: Any) -> Market:
    """The domain `Market` of a simulated venue's market (ids, tick, minimum size, fees, neg risk, state), as
    discovery would list it; `changes` as for `make_market`."""
    fields: dict[str, Any] = {
        "condition_id": market.condition_id,
        "question": market.question,
        "slug": market.slug,
        "yes_token_id": market.token_ids[0],
        "no_token_id": market.token_ids[1],
        "tick_size": market.tick_size,
        "min_order_size": market.min_order_size,
        "fees": FeeSchedule(rate=market.fees.rate, exponent=market.fees.exponent) if market.fees.enabled else NO_FEES,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id or None,
        "outcomes": market.outcomes,
        "active": market.active,
        "closed": market.closed,
        "accepting_orders": market.accepting_orders,
    }
    fields.update(changes)
    return make_market(**fields)


def make_intent(
    client_order_id: str = "c1",
    *,
    strategy: str = "test",
    condition_id: str = CONDITION,
    token_id: str = YES,
    side: Side = Side.BUY,
    price: Num = "0.40",
    size: Num = 10,
    order_type: OrderType = OrderType.GTC,
    post_only: bool = False,
    expiration: int = 0,
) -> OrderIntent:
    """An order intent: BUY 10 of token "1001" (YES of market 1) at 0.40, GTC, strategy "test"."""
    return OrderIntent(
        client_order_id=client_order_id,
        strategy=strategy,
        condition_id=condition_id,
        token_id=token_id,
        side=side,
        price=_d(price),
        size=_d(size),
        order_type=order_type,
        post_only=post_only,
        expiration=expiration,
    )


def make_arb(
    *legs: OrderIntent, arb_id: str = "arb-1", strategy: str = "sum_to_100", max_slippage: Num = "0.02"
) -> ArbIntent:
    """An arbitrage basket of `legs` (default: FOK buys of 10 YES at 0.45 and 10 NO at 0.52 of market 1, client
    order ids "yes" and "no")."""
    if not legs:
        legs = (
            make_intent("yes", strategy=strategy, price="0.45", order_type=OrderType.FOK),
            make_intent("no", strategy=strategy, token_id=NO, price="0.52", order_type=OrderType.FOK),
        )
    return ArbIntent(arb_id=arb_id, strategy=strategy, legs=tuple(legs), max_slippage=_d(max_slippage))


def make_order(
    client_order_id: str = "c1",
    *,
    order_id: str | None = None,
    token_id: str = YES,
    side: Side = Side.BUY,
    price: Num = "0.40",
    size: Num = 10,
    created_ts: float = WALL,
    order_type: OrderType = OrderType.GTC,
    condition_id: str = CONDITION,
    strategy: str = "test",
    **changes: Any,
) -> Order:
    """An order: `make_intent()`'s terms, CREATED at `WALL`, its id `order_id_for(client_order_id)` unless given.
    `changes` sets any other `Order` field (`status`, `filled`, `fills`, `post_only`, `expiration`, ...)."""
    return Order(
        client_order_id=client_order_id,
        order_id=order_id if order_id is not None else order_id_for(client_order_id),
        token_id=token_id,
        side=side,
        price=_d(price),
        size=_d(size),
        created_ts=created_ts,
        order_type=order_type,
        condition_id=condition_id,
        strategy=strategy,
        **changes,
    )


def make_intent_record(client_order_id: str = "c-1", **changes: Any) -> IntentRecord:
    """A PENDING write-ahead record of `make_intent(client_order_id)` (order id `order_id_for`, created at 1 ns).
    `changes` sets any field (`order_id=None` for an intent that was never signed)."""
    fields: dict[str, Any] = {
        "client_order_id": client_order_id,
        "order_id": order_id_for(client_order_id),
        "strategy": "test",
        "condition_id": CONDITION,
        "token_id": YES,
        "side": Side.BUY,
        "price": Decimal("0.40"),
        "size": Decimal(10),
        "order_type": OrderType.GTC,
        "created_at_ns": 1,
    }
    fields.update(changes)
    return IntentRecord(**_decimals(fields, "price", "size"))


def make_order_record(order_id: str | None = None, **changes: Any) -> OrderRecord:
    """The stored row of an ACCEPTED order with `make_intent()`'s terms, nothing matched, created and updated at
    1 ns; client order id "c-<order id>". `changes` sets any field."""
    order_id = order_id if order_id is not None else order_id_for("c1")
    fields: dict[str, Any] = {
        "order_id": order_id,
        "client_order_id": f"c-{order_id}",
        "strategy": "test",
        "condition_id": CONDITION,
        "token_id": YES,
        "side": Side.BUY,
        "price": Decimal("0.40"),
        "original_size": Decimal(10),
        "size_matched": Decimal(0),
        "order_type": OrderType.GTC,
        "status": OrderStatus.ACCEPTED,
        "created_at_ns": 1,
        "updated_at_ns": 1,
    }
    fields.update(changes)
    return OrderRecord(**_decimals(fields, "price", "original_size", "size_matched"))
