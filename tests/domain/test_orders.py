"""The order and trade state machines: scenarios by hand, the table's shape, and random paths through it."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.builders import ORDER_ID, TOKEN, make_fill, make_order
from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.errors import InvalidTransition, InvariantViolation
from trader.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFillReversed,
    OrderKilled,
    OrderOutcomeUnknown,
    OrderReason,
    OrderRejected,
    OrderSubmitted,
)
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.orders import (
    ORDER_TRANSITIONS,
    RESTING,
    TRADE_TRANSITIONS,
    Order,
    OrderEventKind,
    Trade,
    is_order_id,
)
from trader.errors import InputError

D = Decimal
S = OrderStatus


def submitted(**changes: object) -> Order:
    return make_order(**changes).apply(OrderSubmitted(client_order_id="c1", ts=100.5))


def live(**changes: object) -> Order:
    return submitted(**changes).apply(OrderAccepted(client_order_id="c1", ts=100.6))


def test_gtc_order_life_to_filled() -> None:
    order = make_order()
    assert order.status is S.CREATED
    assert order.updated_ts == 100.0
    assert not order.is_open
    order = live()
    assert order.status is S.ACCEPTED
    assert order.is_open
    order = order.apply(make_fill("t1", "4", "0.50", fee="0.01", ts=102.0))
    assert order.status is S.PARTIALLY_FILLED
    assert (order.filled, order.remaining, order.updated_ts) == (D("4"), D("6"), 102.0)
    order = order.apply(make_fill("t2", "6", "0.45", fee="0.02", ts=103.0))
    assert order.status is S.FILLED
    assert order.is_terminal
    assert not order.is_open
    assert order.filled == 10
    assert order.remaining == 0
    assert order.filled_notional == D("4.70")
    assert order.avg_fill_price == D("0.47")
    assert order.fees == D("0.03")
    assert [f.trade_id for f in order.fills] == ["t1", "t2"]


def test_rejection_keeps_a_stable_reason_code() -> None:
    order = submitted().apply(
        OrderRejected(client_order_id="c1", reason="INVALID_ORDER_MIN_TICK_SIZE", message="breaks tick", ts=101.0)
    )
    assert order.status is S.REJECTED
    assert order.reason == "INVALID_ORDER_MIN_TICK_SIZE"
    assert order.avg_fill_price is None
    # a repeated rejection is harmless; anything else is a bug
    assert (
        order.apply(OrderRejected(client_order_id="c1", reason="OTHER", ts=102.0)).reason
        == "INVALID_ORDER_MIN_TICK_SIZE"
    )
    with pytest.raises(InvalidTransition, match="order c1: no transition from REJECTED on PARTIAL_FILL") as info:
        order.apply(make_fill())
    assert (info.value.state, info.value.event) == ("REJECTED", "PARTIAL_FILL")
    with pytest.raises(InvalidTransition):
        order.apply(OrderAccepted(client_order_id="c1", ts=103.0))


def test_cancel_flow_and_rejected_cancel() -> None:
    order = live().apply(make_fill("t1", "3"))
    pending = order.apply(OrderCancelRequested(client_order_id="c1", ts=102.0))
    assert pending.status is S.PENDING_CANCEL
    assert pending.is_open
    # the cancel is refused: back to resting, and the status says whether anything filled
    assert pending.apply(OrderCancelRejected(client_order_id="c1", reason="NOT_CANCELED", ts=103.0)).status is (
        S.PARTIALLY_FILLED
    )
    untouched = live().apply(OrderCancelRequested(client_order_id="c1", ts=102.0))
    assert untouched.apply(OrderCancelRejected(client_order_id="c1", reason="X", ts=103.0)).status is S.ACCEPTED
    # a fill racing the cancel, then the cancel
    pending = pending.apply(make_fill("t2", "2"))
    assert (pending.status, pending.filled) == (S.PENDING_CANCEL, D("5"))
    canceled = pending.apply(OrderCanceled(client_order_id="c1", reason=OrderReason.SHUTDOWN, ts=104.0))
    assert canceled.status is S.CANCELED
    assert canceled.reason == "SHUTDOWN"
    assert canceled.apply(OrderCanceled(client_order_id="c1", ts=105.0)).reason == "SHUTDOWN"  # repeated: no-op
    with pytest.raises(InvalidTransition):
        canceled.apply(OrderCancelRequested(client_order_id="c1", ts=106.0))


def test_cancel_can_complete_the_order_by_a_racing_fill() -> None:
    pending = live().apply(OrderCancelRequested(client_order_id="c1", ts=102.0))
    assert pending.apply(make_fill("t1", "10")).status is S.FILLED


def test_gtd_expiry() -> None:
    order = live(order_type=OrderType.GTD, expiration=1_767_225_700).apply(make_fill("t1", "1"))
    expired = order.apply(OrderExpired(client_order_id="c1", ts=200.0))
    assert expired.status is S.EXPIRED
    assert expired.reason == "EXPIRED"
    assert expired.filled == 1
    late = expired.apply(make_fill("t2", "2"))  # matched before the expiry, reported after it
    assert (late.status, late.filled) == (S.EXPIRED, D("3"))
    assert late.apply(make_fill("t3", "7")).status is S.FILLED


def test_fok_killed_and_fak_remainder_canceled() -> None:
    fok = submitted(order_type=OrderType.FOK).apply(OrderKilled(client_order_id="c1", ts=101.0))
    assert (fok.status, fok.reason, fok.filled) == (S.CANCELED, "FOK_NOT_FILLED", D(0))
    fak = submitted(order_type=OrderType.FAK).apply(make_fill("t1", "4"))
    fak = fak.apply(OrderKilled(client_order_id="c1", reason=OrderReason.FAK_REMAINDER_CANCELED, ts=101.0))
    assert (fak.status, fak.reason, fak.filled) == (S.CANCELED, "FAK_REMAINDER_CANCELED", D("4"))
    with pytest.raises(InvariantViolation, match="only FOK/FAK orders are killed"):
        live().apply(OrderKilled(client_order_id="c1", ts=101.0))


def test_late_acks_and_fills_before_the_ack() -> None:
    filled = submitted().apply(make_fill("t1", "10"))  # the user stream beat the REST answer
    assert filled.status is S.FILLED
    # a late ack changes nothing but the time of the last update
    assert filled.apply(OrderAccepted(client_order_id="c1", ts=102.0)) == replace(filled, updated_ts=102.0)
    assert filled.apply(OrderAccepted(client_order_id="c1", ts=102.0)).status is S.FILLED
    partial = submitted().apply(make_fill("t1", "3"))
    assert partial.apply(OrderAccepted(client_order_id="c1", ts=102.0)).status is S.PARTIALLY_FILLED


def test_an_unknown_outcome_is_a_state_only_the_venue_moves_on() -> None:
    unknown = submitted().apply(OrderOutcomeUnknown(client_order_id="c1", ts=101.0, cause="TIMEOUT"))
    assert (unknown.status, unknown.is_open, unknown.is_terminal) == (S.UNKNOWN, True, False)
    assert unknown.apply(OrderOutcomeUnknown(client_order_id="c1", ts=101.5, cause="TIMEOUT")).status is S.UNKNOWN
    # not a verdict: nothing of ours closes it, neither a rejection nor a cancel request (deferred by the manager)
    for ours in (
        OrderRejected(client_order_id="c1", reason="INVALID_ORDER_ERROR", ts=102.0),
        OrderCancelRequested(client_order_id="c1", ts=102.0),
        OrderCancelRejected(client_order_id="c1", reason="X", ts=102.0),
    ):
        assert not unknown.can_apply(ours)
        with pytest.raises(InvalidTransition, match="from UNKNOWN"):
            unknown.apply(ours)
    # what the venue shows moves it on: found resting, found by its fills, found killed, or shown absent
    assert unknown.apply(OrderAccepted(client_order_id="c1", ts=102.0)).status is S.ACCEPTED
    assert unknown.apply(make_fill("t1", "3")).status is S.PARTIALLY_FILLED
    assert unknown.apply(make_fill("t1", "10")).status is S.FILLED
    absent = unknown.apply(OrderCanceled(client_order_id="c1", reason="SUBMIT_NOT_FOUND", ts=102.0))
    assert (absent.status, absent.reason) == (S.CANCELED, "SUBMIT_NOT_FOUND")
    assert absent.apply(make_fill("t1", "10")).status is S.FILLED  # a late fill still reaches the order
    with pytest.raises(InputError, match="cause"):
        OrderOutcomeUnknown(client_order_id="c1", ts=1.0, cause="timed out")


def test_a_rejection_after_a_fill_is_an_invariant_violation() -> None:
    pending = submitted().apply(OrderCancelRequested(client_order_id="c1", ts=101.0)).apply(make_fill("t1", "1"))
    with pytest.raises(InvariantViolation, match="rejected after it filled"):
        pending.apply(OrderRejected(client_order_id="c1", reason="INVALID_ORDER_ERROR", ts=102.0))
    unfilled = submitted().apply(OrderCancelRequested(client_order_id="c1", ts=101.0))
    assert unfilled.apply(OrderRejected(client_order_id="c1", reason="X", ts=102.0)).status is S.REJECTED


def test_created_order_can_be_dropped_before_sending() -> None:
    order = make_order().apply(OrderCanceled(client_order_id="c1", reason=OrderReason.NEVER_SENT, ts=101.0))
    assert (order.status, order.reason) == (S.CANCELED, "NEVER_SENT")
    with pytest.raises(InvalidTransition, match="from CREATED on ACCEPT"):
        make_order().apply(OrderAccepted(client_order_id="c1", ts=101.0))


def test_duplicate_fills_are_no_ops_and_split_fills_count_once_each() -> None:
    order = live().apply(make_fill("t1", "4"))
    assert order.apply(make_fill("t1", "4")) is order
    split = live().apply(make_fill("t9", "2", fill_id="t9:m1")).apply(make_fill("t9", "3", fill_id="t9:m2"))
    assert split.filled == 5
    assert split.apply(make_fill("t9", "3", fill_id="t9:m2")) is split


def test_fill_reversal_on_a_resting_order() -> None:
    order = live().apply(make_fill("t1", "4", fee="0.01")).apply(make_fill("t2", "2", "0.48"))
    once = order.apply(OrderFillReversed(client_order_id="c1", trade_id="t1", ts=110.0))
    assert (once.status, once.filled, once.filled_notional, once.fees) == (S.PARTIALLY_FILLED, D("2"), D("0.96"), D(0))
    assert [f.trade_id for f in once.reversed_fills] == ["t1"]
    assert once.apply(OrderFillReversed(client_order_id="c1", trade_id="t1", ts=111.0)) is once  # FAILED re-sent
    assert once.apply(make_fill("t1", "4", fee="0.01")) is once  # the failed trade re-sent: not a new fill
    both = once.apply(OrderFillReversed(client_order_id="c1", trade_id="t2", ts=112.0))
    assert (both.status, both.filled, both.avg_fill_price) == (S.ACCEPTED, D(0), None)
    with pytest.raises(InvariantViolation, match="no fill of trade t7 to reverse"):
        once.apply(OrderFillReversed(client_order_id="c1", trade_id="t7", ts=113.0))
    with pytest.raises(InvalidTransition, match="from ACCEPTED on REVERSE_FILL"):
        both.apply(OrderFillReversed(client_order_id="c1", trade_id="t7", ts=113.0))


def test_fill_reversal_on_a_filled_order_closes_it_as_canceled() -> None:
    order = live().apply(make_fill("t1", "4")).apply(make_fill("t2", "6"))
    reversed_ = order.apply(OrderFillReversed(client_order_id="c1", trade_id="t2", ts=120.0))
    assert (reversed_.status, reversed_.filled, reversed_.remaining) == (S.CANCELED, D("4"), D("6"))
    assert reversed_.is_terminal
    pending = live().apply(make_fill("t1", "4")).apply(OrderCancelRequested(client_order_id="c1", ts=102.0))
    assert pending.apply(OrderFillReversed(client_order_id="c1", trade_id="t1", ts=103.0)).status is S.PENDING_CANCEL


def test_split_trade_is_reversed_as_a_whole() -> None:
    order = live().apply(make_fill("t9", "2", fill_id="t9:a")).apply(make_fill("t9", "3", fill_id="t9:b"))
    undone = order.apply(OrderFillReversed(client_order_id="c1", trade_id="t9", ts=130.0))
    assert (undone.status, undone.filled, len(undone.reversed_fills)) == (S.ACCEPTED, D(0), 2)


def test_inconsistent_fills_are_invariant_violations() -> None:
    order = live()
    with pytest.raises(InvariantViolation, match="overfills"):
        order.apply(make_fill("t1", "10.01"))
    with pytest.raises(InvariantViolation, match="worse than the limit"):
        order.apply(make_fill("t1", "1", "0.51"))
    with pytest.raises(InvariantViolation, match="worse than the limit"):
        live(side=Side.SELL).apply(make_fill("t1", "1", "0.49", side=Side.SELL))
    with pytest.raises(InvariantViolation, match="the order is BUY"):
        order.apply(make_fill("t1", "1", side=Side.SELL))
    with pytest.raises(InvariantViolation, match="the order is BUY"):
        order.apply(make_fill("t1", "1", token_id="42"))
    with pytest.raises(InvariantViolation, match="event for order 'c2' applied to order 'c1'"):
        order.apply(OrderCanceled(client_order_id="c2", ts=1.0))


def test_a_market_buy_may_buy_more_shares_than_its_size() -> None:
    order = submitted(order_type=OrderType.FOK, price=D("0.60")).apply(make_fill("t1", "12", "0.50"))
    assert (order.status, order.filled, order.remaining) == (S.FILLED, D("12"), D(0))


def test_order_validation_names_the_field() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"client_order_id": ""}, "client_order_id"),
        ({"order_id": "0x" + "AB" * 32}, "order_id"),
        ({"order_id": "0x1234"}, "order_id"),
        ({"order_id": "ab" * 32}, "order_id"),
        ({"token_id": "0xdead"}, "token_id"),
        ({"side": "BUY"}, "side"),
        ({"price": D("1")}, "price"),
        ({"price": D("0")}, "price"),
        ({"price": 0.5}, "price"),
        ({"size": D("0")}, "size"),
        ({"order_type": "GTC"}, "order_type"),
        ({"order_type": OrderType.FOK, "post_only": True}, "post_only"),
        ({"order_type": OrderType.GTD}, "expiration"),
        ({"expiration": 1_767_225_700}, "expiration"),
    ]
    for changes, field in cases:
        with pytest.raises(InputError) as info:
            make_order(**changes)
        assert info.value.field == field, changes


def test_from_intent() -> None:
    intent = OrderIntent(
        client_order_id="c1",
        strategy="clipper",
        condition_id="0xcond",
        token_id=TOKEN,
        side=Side.SELL,
        price=D("0.93"),
        size=D("25"),
        order_type=OrderType.GTD,
        post_only=True,
        expiration=1_767_225_700,
    )
    order = Order.from_intent(intent, order_id=ORDER_ID, ts=5.0)
    assert (order.strategy, order.condition_id, order.side, order.price, order.size) == (
        "clipper",
        "0xcond",
        Side.SELL,
        D("0.93"),
        D("25"),
    )
    assert (order.order_type, order.post_only, order.expiration, order.created_ts, order.status) == (
        OrderType.GTD,
        True,
        1_767_225_700,
        5.0,
        S.CREATED,
    )


def test_is_order_id() -> None:
    assert is_order_id(ORDER_ID)
    assert not is_order_id(ORDER_ID[:-1])
    assert not is_order_id(None)


# -- the table itself --------------------------------------------------------------------------------------------


def test_every_status_is_reachable_and_terminal_statuses_stay_terminal() -> None:
    reachable = {S.CREATED}
    queue = deque([S.CREATED])
    while queue:
        status = queue.popleft()
        for (source, _kind), target in ORDER_TRANSITIONS.items():
            if source is not status:
                continue
            targets = [S.ACCEPTED, S.PARTIALLY_FILLED] if target is RESTING else [target]
            for reached in targets:
                assert isinstance(reached, OrderStatus)
                if source.is_terminal:
                    assert reached.is_terminal, (source, _kind, reached)
                if reached not in reachable:
                    reachable.add(reached)
                    queue.append(reached)
    assert reachable == set(OrderStatus)
    assert repr(RESTING) == "RESTING"


def test_can_apply_agrees_with_the_table() -> None:
    order = live()
    assert order.can_apply(make_fill())
    assert order.can_apply(OrderExpired(client_order_id="c1", ts=1.0))
    assert not order.can_apply(OrderCancelRejected(client_order_id="c1", reason="X", ts=1.0))
    assert not order.can_apply(OrderFillReversed(client_order_id="c1", trade_id="t1", ts=1.0))
    filled = order.apply(make_fill("t1", "10"))
    assert not filled.can_apply(make_fill("t2", "1"))
    assert filled.can_apply(make_fill("t1", "10"))  # a duplicate is always fine
    assert filled.kind_of(OrderSubmitted(client_order_id="c1", ts=1.0)) is OrderEventKind.SUBMIT


# Random paths: any event may arrive at any time; an event the table refuses must raise and change nothing, and
# every state reached must satisfy the order's invariants.
TRADES = ["t1", "t2", "t3", "t4"]
event_strategy = st.one_of(
    st.just(OrderSubmitted(client_order_id="c1", ts=1.0)),
    st.just(OrderOutcomeUnknown(client_order_id="c1", ts=1.0, cause="TIMEOUT")),
    st.just(OrderAccepted(client_order_id="c1", ts=1.0)),
    st.just(OrderRejected(client_order_id="c1", reason="INVALID_ORDER_ERROR", ts=1.0)),
    st.just(OrderCancelRequested(client_order_id="c1", ts=1.0)),
    st.just(OrderCancelRejected(client_order_id="c1", reason="NOT_CANCELED", ts=1.0)),
    st.just(OrderCanceled(client_order_id="c1", ts=1.0)),
    st.just(OrderExpired(client_order_id="c1", ts=1.0)),
    st.just(OrderKilled(client_order_id="c1", ts=1.0)),
    st.builds(
        lambda t, n, c: make_fill(t, D(n), D(c) / 100, fee=D(n) / 1000),
        st.sampled_from(TRADES),
        st.integers(min_value=1, max_value=6),
        st.integers(min_value=40, max_value=50),
    ),
    st.builds(lambda t: OrderFillReversed(client_order_id="c1", trade_id=t, ts=1.0), st.sampled_from(TRADES)),
)


def check_invariants(order: Order) -> None:
    live_fills = sum((f.size for f in order.fills), D(0))
    assert order.filled == live_fills
    assert order.filled_notional == sum((f.notional for f in order.fills), D(0))
    assert order.fees == sum((f.fee for f in order.fills), D(0))
    assert 0 <= order.filled <= order.size or order.is_market_buy
    if order.status in (S.CREATED, S.SUBMITTED, S.UNKNOWN, S.ACCEPTED, S.REJECTED):
        assert order.filled == 0, order.status
    if order.status is S.PARTIALLY_FILLED:
        assert 0 < order.filled < order.size
    if order.status is S.FILLED:
        assert order.filled >= order.size
    if order.filled:
        assert order.avg_fill_price is not None
        assert min(f.price for f in order.fills) <= order.avg_fill_price <= max(f.price for f in order.fills)
    keys = [f.key for f in order.fills]
    assert len(keys) == len(set(keys))


@settings(max_examples=200)
@given(st.sampled_from([OrderType.GTC, OrderType.FAK, OrderType.FOK]), st.lists(event_strategy, max_size=25))
def test_every_path_through_the_table_ends_in_a_legal_state(order_type: OrderType, events: list[OrderEvent]) -> None:
    order = make_order(order_type=order_type)
    was_terminal = False
    for event in events:
        before = order
        if before.can_apply(event):
            try:
                order = before.apply(event)
            except InvariantViolation:
                # overfills and kills of resting orders are refused, and refusing changes nothing
                order = before
        else:
            with pytest.raises(InvalidTransition):
                before.apply(event)
        check_invariants(order)
        if was_terminal:
            assert order.is_terminal, (before.status, event, order.status)
        was_terminal = order.is_terminal


# -- trades ----------------------------------------------------------------------------------------------------


def make_trade(**changes: object) -> Trade:
    fields: dict[str, object] = {
        "trade_id": "t1",
        "client_order_id": "c1",
        "order_id": ORDER_ID,
        "token_id": TOKEN,
        "side": Side.BUY,
        "price": D("0.5"),
        "size": D("4"),
        "liquidity": Liquidity.TAKER,
        "match_ts": 50.0,
        "fee": D("0.02"),
    }
    fields.update(changes)
    return Trade(**fields)  # type: ignore[arg-type]


def test_trade_settlement_path() -> None:
    trade = make_trade()
    assert (trade.status, trade.updated_ts) == (TradeStatus.MATCHED, 50.0)
    mined = trade.apply_status(TradeStatus.MINED, 51.0)
    assert mined.apply_status(TradeStatus.MINED, 52.0) is mined  # re-sent: no-op
    retrying = mined.apply_status(TradeStatus.RETRYING, 53.0)
    confirmed = retrying.apply_status(TradeStatus.MINED, 54.0).apply_status(TradeStatus.CONFIRMED, 55.0)
    assert confirmed.is_settled
    assert confirmed.updated_ts == 55.0
    assert not confirmed.is_failed
    with pytest.raises(InvalidTransition, match="trade t1: no transition from CONFIRMED on FAILED"):
        confirmed.apply_status(TradeStatus.FAILED, 56.0)
    failed = retrying.apply_status(TradeStatus.FAILED, 54.0)
    assert failed.is_failed
    assert TradeStatus.FAILED.is_terminal
    with pytest.raises(InvalidTransition):
        failed.apply_status(TradeStatus.MINED, 55.0)
    with pytest.raises(InvalidTransition, match="from MINED on MATCHED"):
        mined.apply_status(TradeStatus.MATCHED, 55.0)
    assert mined.can_transition(TradeStatus.MINED)
    assert not mined.can_transition(TradeStatus.MATCHED)
    assert trade.apply_status(TradeStatus.CONFIRMED, 60.0).is_settled  # a missed MINED is tolerated


def test_trade_table_terminals() -> None:
    for status, targets in TRADE_TRANSITIONS.items():
        assert status not in targets
        assert (not targets) == status.is_terminal
        assert TradeStatus.UNKNOWN not in targets
    assert set(TRADE_TRANSITIONS) == set(TradeStatus) - {TradeStatus.UNKNOWN}


@pytest.mark.parametrize(
    "path",
    [
        # the 2026 statuses (protocol.md §11 item 8), each ending as the venue reports it
        ("MATCHED_NOT_BROADCASTED", "MATCHED", "MINED", "CONFIRMED"),
        ("MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED"),
        ("MATCHED", "MINED", "RETRYING", "MINED", "CONFIRMED"),
        ("MATCHED", "RETRYING", "CONFIRMED"),
        ("MATCHED", "MINED", "RETRYING", "FAILED"),
        ("MATCHED", "MINED", "FAILED"),  # FAILED after MINED
        ("MATCHED_NOT_BROADCASTED", "FAILED"),
    ],
)
def test_trade_settlement_paths_of_2026(path: tuple[str, ...]) -> None:
    trade = make_trade(status=TradeStatus(path[0]))
    for n, status in enumerate(path[1:], 1):
        assert trade.can_transition(TradeStatus(status))
        trade = trade.apply_status(TradeStatus(status), 50.0 + n)
    assert trade.status.is_terminal
    assert trade.is_settled == (path[-1] == "CONFIRMED")
    assert trade.is_failed == (path[-1] == "FAILED")


def test_an_unknown_status_is_no_trade_status() -> None:
    mined = make_trade(status=TradeStatus.MINED)
    assert not mined.can_transition(TradeStatus.UNKNOWN)
    with pytest.raises(InvalidTransition):
        mined.apply_status(TradeStatus.UNKNOWN, 60.0)
    with pytest.raises(InputError, match="status"):
        make_trade(status=TradeStatus.UNKNOWN)


def test_trade_validation_and_fill_event() -> None:
    with pytest.raises(InputError, match="trade_id"):
        make_trade(trade_id="")
    with pytest.raises(InputError, match="size"):
        make_trade(size=D("0"))
    fill = make_trade().fill_event(fill_id="t1:0")
    assert (fill.key, fill.trade_id, fill.size, fill.fee, fill.ts) == ("t1:0", "t1", D("4"), D("0.02"), 50.0)
    assert live().apply(fill).filled == 4


@settings(max_examples=200)
@given(st.lists(st.sampled_from(list(TradeStatus)), max_size=12))
def test_random_trade_status_streams(statuses: list[TradeStatus]) -> None:
    trade = make_trade()
    for n, status in enumerate(statuses):
        if trade.can_transition(status):
            after = trade.apply_status(status, float(n))
            assert after.status is status
            if trade.status.is_terminal:
                assert after is trade
            trade = after
        else:
            with pytest.raises(InvalidTransition):
                trade.apply_status(status, float(n))
