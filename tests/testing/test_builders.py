"""The shared builders: valid objects from their defaults, defaults that fit together, overrides of any field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.market import NO_FEES, FeeSchedule
from trader.domain.numbers import Side
from trader.domain.orders import Order, is_order_id
from trader.errors import InputError
from trader.integrations.store.base import IntentRecord, IntentState, OrderRecord
from trader.testing import (
    CONDITION,
    NO,
    WALL,
    YES,
    make_arb,
    make_intent,
    make_intent_record,
    make_market,
    make_order,
    make_order_record,
    market_from_sim,
    order_id_for,
)
from trader.venues.sim.markets import FeeSchedule as SimFeeSchedule
from trader.venues.sim.markets import make_market as make_sim_market

D = Decimal


def test_the_defaults_fit_together() -> None:
    market, intent = make_market(), make_intent()
    assert (market.condition_id, market.token_ids) == (CONDITION, (YES, NO))
    assert (intent.condition_id, intent.token_id, intent.side, intent.price, intent.size) == (
        CONDITION,
        YES,
        Side.BUY,
        D("0.40"),
        D(10),
    )
    assert (market.tick_size, market.min_order_size, market.fees, market.is_tradable) == (
        D("0.01"),
        D(5),
        NO_FEES,
        True,
    )
    # the order is the intent, prepared: the same terms under an id derived from the client order id
    assert make_order() == Order.from_intent(intent, order_id=order_id_for("c1"), ts=WALL)
    assert is_order_id(order_id_for("c1"))
    assert order_id_for("c1") != order_id_for("c2")
    assert IntentRecord.of(intent, order_id=order_id_for("c1"), created_at_ns=1) == make_intent_record("c1")
    assert (
        OrderRecord.of(make_order(status=OrderStatus.ACCEPTED, created_ts=0)).token_id == make_order_record().token_id
    )


def test_markets_are_numbered_and_take_overrides() -> None:
    two = make_market(
        2, tick_size="0.001", min_order_size="1", neg_risk=True, neg_risk_market_id="0xevent", closed=True
    )
    assert (two.condition_id, two.yes_token_id, two.no_token_id, two.question, two.slug) == (
        "0xcond2",
        "2001",
        "2002",
        "q2",
        "m2",
    )
    assert (two.tick_size, two.min_order_size, two.neg_risk, two.neg_risk_market_id) == (
        D("0.001"),
        D(1),
        True,
        "0xevent",
    )
    assert not two.is_tradable
    with pytest.raises(InputError, match="tick_size"):
        make_market(tick_size="0.02")


def test_intents_orders_and_baskets_take_overrides() -> None:
    sell = make_intent(
        "c7", side=Side.SELL, price="0.55", size=3, order_type=OrderType.GTD, expiration=5, post_only=True
    )
    assert (sell.side, sell.price, sell.size, sell.order_type, sell.expiration, sell.post_only) == (
        Side.SELL,
        D("0.55"),
        D(3),
        OrderType.GTD,
        5,
        True,
    )
    order = make_order("c7", status=OrderStatus.ACCEPTED, price=D("0.3"), order_id="0x" + "ab" * 32)
    assert (order.status, order.price, order.order_id) == (OrderStatus.ACCEPTED, D("0.3"), "0x" + "ab" * 32)
    basket = make_arb()
    assert [(leg.client_order_id, leg.token_id, leg.price, leg.order_type) for leg in basket.legs] == [
        ("yes", YES, D("0.45"), OrderType.FOK),
        ("no", NO, D("0.52"), OrderType.FOK),
    ]
    assert (basket.arb_id, basket.strategy, basket.max_slippage) == ("arb-1", "sum_to_100", D("0.02"))
    mine = make_arb(make_intent("a"), make_intent("b", token_id=NO), arb_id="x", max_slippage=0)
    assert (mine.arb_id, mine.size, mine.max_slippage) == ("x", D(10), D(0))


def test_records_take_overrides_and_numbers_as_text() -> None:
    unsigned = make_intent_record("c-9", order_id=None, state=IntentState.REJECTED, price="0.47")
    assert (unsigned.order_id, unsigned.state, unsigned.price) == (None, IntentState.REJECTED, D("0.47"))
    row = make_order_record("o-1", status=OrderStatus.FILLED, size_matched="10")
    assert (row.order_id, row.client_order_id, row.status, row.size_matched) == (
        "o-1",
        "c-o-1",
        OrderStatus.FILLED,
        D(10),
    )


def test_a_sim_market_as_discovery_lists_it() -> None:
    sim = make_sim_market("builders", question="Will it build?", fees=SimFeeSchedule(rate=D("0.02"), exponent=1))
    market = market_from_sim(sim)
    assert (market.condition_id, market.token_ids, market.question, market.slug) == (
        sim.condition_id,
        sim.token_ids,
        sim.question,
        sim.slug,
    )
    assert (market.tick_size, market.min_order_size, market.fees) == (
        sim.tick_size,
        sim.min_order_size,
        FeeSchedule(rate=D("0.02"), exponent=1),
    )
    assert market_from_sim(make_sim_market("free", question="Free?")).fees == NO_FEES
