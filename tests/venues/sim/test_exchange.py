"""The exchange core, with explicit `now` values: matching, checks, fees, settlement, timers and emitted events."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from py_clob_client_v2.utilities import generate_orderbook_summary_hash, parse_raw_orderbook_summary

from tests.venues.sim._support import T0, exchange, market, order
from trader.domain.numbers import Side
from trader.venues.sim.events import (
    BookChanged,
    BookResync,
    LastTradePrice,
    LevelChange,
    OrderEvent,
    TickSizeChanged,
    TradeEvent,
)
from trader.venues.sim.exchange import Accepted, Exchange, ExchangeConfig, NoHooks, OrderRequest, Rejected
from trader.venues.sim.markets import FeeSchedule

BUY, SELL = Side.BUY, Side.SELL
U = 1_000_000  # base units per share / pUSD


def accepted(result: Accepted | Rejected) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def rejected(result: Accepted | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def test_a_resting_bid_is_published_for_both_tokens_mirrored() -> None:
    ex, rec = exchange()
    yes, no = ex.markets[0].token_ids

    result = accepted(ex.submit(order(yes, BUY, "0.40", "10"), T0))

    assert result.status == "live"
    assert [e.kind for e in rec.of(OrderEvent)] == ["PLACEMENT"]
    (frame,) = rec.of(BookChanged)
    assert frame.timestamp_ms == int(T0 * 1000)
    assert [dataclasses.replace(c, hash="") for c in frame.changes] == [
        LevelChange(yes, "0.4", "10", "BUY", "", "0.4", "1"),
        LevelChange(no, "0.6", "10", "SELL", "", "0", "0.6"),
    ]
    assert ex.book_levels(no) == ([], [(6000, 10 * U)])
    assert ex.best_prices(no) == (None, 6000)


def test_buy_yes_against_buy_no_mints_a_pair_at_the_maker_price() -> None:
    ex, rec = exchange()
    yes, no = ex.markets[0].token_ids
    ex.submit(order(yes, BUY, "0.40", "10", owner="alice"), T0)
    rec.clear()

    result = accepted(ex.submit(order(no, BUY, "0.65", "5", owner="bob"), T0 + 1))

    assert result.status == "matched"
    assert (result.making_amount, result.taking_amount) == (3 * U, 5 * U)
    alice, bob = (
        ex.wallet(order(yes, BUY, "1", "1", owner="alice").maker_address),
        ex.wallet(order(yes, BUY, "1", "1", owner="bob").maker_address),
    )
    assert (alice.shares[yes], bob.shares[no]) == (5 * U, 5 * U)
    assert alice.collateral == 10_000 * U - 2 * U
    assert bob.collateral == 10_000 * U - 3 * U
    assert alice.reserved_collateral == 2 * U  # the 5 shares still resting at 0.40
    (trade,) = [e.trade for e in rec.of(TradeEvent)]
    assert (trade.asset_id, trade.side, trade.price, trade.size, trade.status) == (no, "BUY", "0.6", "5", "MATCHED")
    assert [(m.asset_id, m.side, m.price, m.matched_amount) for m in trade.maker_orders] == [(yes, "BUY", "0.4", "5")]
    assert rec.of(LastTradePrice) == [
        LastTradePrice(ex.markets[0].condition_id, no, "0.6", "5", "BUY", "0", int((T0 + 1) * 1000))
    ]
    (frame,) = rec.of(BookChanged)
    assert [(c.asset_id, c.price, c.size, c.side) for c in frame.changes] == [
        (yes, "0.4", "5", "BUY"),
        (no, "0.6", "5", "SELL"),
    ]
    assert rec.of(BookResync)[0].asset_ids == (yes, no)
    kinds = [(e.kind, e.order.owner, e.status) for e in rec.of(OrderEvent)]
    assert kinds == [("PLACEMENT", "bob", "LIVE"), ("UPDATE", "alice", "LIVE"), ("UPDATE", "bob", "MATCHED")]


def test_sell_yes_against_sell_no_merges_and_pays_both_sellers() -> None:
    ex, _ = exchange()
    yes, no = ex.markets[0].token_ids
    carol = order(yes, SELL, "0.55", "5", owner="carol")
    dave = order(no, SELL, "0.40", "5", owner="dave")
    ex.fund(carol.maker_address, collateral=0, shares={yes: 5 * U})
    ex.fund(dave.maker_address, collateral=0, shares={no: 5 * U})
    ex.submit(carol, T0)

    result = accepted(ex.submit(dave, T0))

    assert (result.making_amount, result.taking_amount) == (5 * U, int(2.25 * U))
    assert ex.wallet(carol.maker_address).collateral == int(2.75 * U)
    assert ex.wallet(dave.maker_address).collateral == int(2.25 * U)
    assert ex.wallet(carol.maker_address).shares[yes] == 0
    assert ex.wallet(dave.maker_address).shares[no] == 0


def test_price_time_priority_best_level_first_then_arrival_order() -> None:
    ex, _ = exchange()
    yes, _no = ex.markets[0].token_ids
    first = order(yes, BUY, "0.40", "10", owner="alice")
    second = order(yes, BUY, "0.40", "10", owner="bob")
    better = order(yes, BUY, "0.41", "5", owner="carol")
    for o in (first, second, better):
        ex.submit(o, T0)
    seller = order(yes, SELL, "0.40", "18", owner="dave")
    ex.fund(seller.maker_address, shares={yes: 18 * U})

    result = accepted(ex.submit(seller, T0))

    trades = [ex.trade(t) for t in result.trade_ids]
    assert [(t.price_pips, [(f.order.order_id, f.units) for f in t.makers]) for t in trades if t] == [
        (4100, [(better.order_id, 5 * U)]),
        (4000, [(first.order_id, 10 * U), (second.order_id, 3 * U)]),
    ]
    assert result.taking_amount == int((5 * 0.41 + 13 * 0.40) * U)


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (("0.405", "10"), "INVALID_ORDER_MIN_TICK_SIZE", "Price (0.405) breaks minimum tick size rule: 0.01"),
        (("1", "10"), "INVALID_ORDER_ERROR", "out of range: min 0.01 - max 0.99"),
        (("0.5", "4"), "INVALID_ORDER_MIN_SIZE", "Size (4) lower than the minimum: 5"),
    ],
)
def test_order_checks_answer_with_the_venue_codes(request_: tuple[str, str], code: str, message: str) -> None:
    ex, _ = exchange()
    yes, _no = ex.markets[0].token_ids

    result = rejected(ex.submit(order(yes, BUY, *request_), T0))

    assert (result.code, result.http_status) == (code, 400)
    assert message in result.message


def test_post_only_duplicate_and_unknown_token() -> None:
    ex, _ = exchange()
    yes, no = ex.markets[0].token_ids
    ex.submit(order(no, BUY, "0.55", "10", owner="bob"), T0)  # a YES ask at 0.45

    assert rejected(ex.submit(order(yes, BUY, "0.45", "10", post_only=True), T0)).code == "INVALID_POST_ONLY_ORDER"
    assert rejected(ex.submit(order(yes, BUY, "0.45", "10", post_only=True, order_type="FOK"), T0)).code == (
        "INVALID_POST_ONLY_ORDER_TYPE"
    )
    resting = order(yes, BUY, "0.44", "10", post_only=True)
    assert accepted(ex.submit(resting, T0)).status == "live"
    assert rejected(ex.submit(resting, T0)).code == "INVALID_ORDER_DUPLICATED"
    unknown = dataclasses.replace(resting, order_id="0x01", token_id="123")
    assert rejected(ex.submit(unknown, T0)).code == "MARKET_NOT_READY"


def test_gtd_needs_the_60_second_threshold_and_expires_threshold_early() -> None:
    ex, rec = exchange()
    yes, _no = ex.markets[0].token_ids
    too_soon = order(yes, BUY, "0.40", "10", order_type="GTD", expiration=int(T0) + 60)
    assert rejected(ex.submit(too_soon, T0)).code == "INVALID_ORDER_EXPIRATION"
    gtd = order(yes, BUY, "0.40", "10", order_type="GTD", expiration=int(T0) + 60 + 30)
    accepted(ex.submit(gtd, T0))

    ex.advance(T0 + 29.9)
    assert ex.open_orders("alice") != []
    ex.advance(T0 + 30)

    assert ex.open_orders("alice") == []
    assert rec.of(OrderEvent)[-1].kind == "CANCELLATION"
    assert ex.book_levels(yes) == ([], [])


def test_open_orders_reserve_balance() -> None:
    ex, _ = exchange(initial_collateral=100 * U)
    yes, _no = ex.markets[0].token_ids
    first = accepted(ex.submit(order(yes, BUY, "0.50", "150"), T0))  # reserves 75

    over = rejected(ex.submit(order(yes, BUY, "0.50", "60"), T0))
    assert (over.code, over.message) == ("INVALID_ORDER_NOT_ENOUGH_BALANCE", "not enough balance / allowance")
    assert rejected(ex.submit(order(yes, SELL, "0.50", "10"), T0)).code == "INVALID_ORDER_NOT_ENOUGH_BALANCE"

    assert ex.cancel("alice", [first.order_id], T0).canceled == (first.order_id,)
    assert accepted(ex.submit(order(yes, BUY, "0.50", "60"), T0)).status == "live"


def test_fok_is_killed_unless_fully_fillable_and_fak_cancels_the_rest() -> None:
    ex, rec = exchange()
    yes, no = ex.markets[0].token_ids
    ex.submit(order(no, BUY, "0.55", "10", owner="bob"), T0)  # YES ask 0.45 x 10
    rec.clear()

    killed = rejected(ex.submit(order(yes, BUY, "0.45", "12", order_type="FOK"), T0))
    assert killed.message == "order couldn't be fully filled. FOK orders are fully filled or killed."
    (event,) = rec.of(OrderEvent)
    assert (event.kind, event.status) == ("CANCELLATION", f"CANCELED_{killed.message}")
    assert rec.of(BookChanged) == []

    fak = accepted(ex.submit(order(yes, BUY, "0.45", "12", order_type="FAK"), T0))
    assert (fak.status, fak.taking_amount) == ("matched", 10 * U)
    last = rec.of(OrderEvent)[-1]
    assert (last.kind, last.order.size_matched, last.order.status) == ("CANCELLATION", "10", "CANCELED")

    nothing = rejected(ex.submit(order(yes, BUY, "0.45", "12", order_type="FAK"), T0))
    assert nothing.message == (
        "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
    )


def test_taker_pays_the_fee_and_the_maker_does_not() -> None:
    ex, rec = exchange(market(fees=FeeSchedule(rate=Decimal("0.25"), exponent=1)))
    yes, no = ex.markets[0].token_ids
    maker = order(no, BUY, "0.60", "10", owner="bob")
    taker = order(yes, BUY, "0.40", "10", owner="alice")
    ex.submit(maker, T0)

    accepted(ex.submit(taker, T0))

    (trade,) = [e.trade for e in rec.of(TradeEvent)]
    assert (trade.fee, trade.fee_rate_bps) == ("0.6", "2500")  # 10 × 0.25 × 0.4 × 0.6
    assert ex.wallet(taker.maker_address).collateral == 10_000 * U - 4 * U - int(0.6 * U)
    assert ex.wallet(maker.maker_address).collateral == 10_000 * U - 6 * U
    assert ex.fees_collected == int(0.6 * U)


def test_trades_settle_matched_mined_confirmed_on_schedule() -> None:
    ex, rec = exchange(mined_after_secs=1.0, confirmed_after_secs=3.0)
    yes, no = ex.markets[0].token_ids
    ex.submit(order(no, BUY, "0.60", "10", owner="bob"), T0)
    (trade_id,) = accepted(ex.submit(order(yes, BUY, "0.40", "10"), T0)).trade_ids

    ex.advance(T0 + 0.9)
    assert [e.trade.status for e in rec.of(TradeEvent)] == ["MATCHED"]
    ex.advance(T0 + 1.0)
    ex.advance(T0 + 3.0)

    statuses = [(e.trade.status, e.timestamp_ms) for e in rec.of(TradeEvent)]
    assert statuses == [("MATCHED", T0 * 1000), ("MINED", (T0 + 1) * 1000), ("CONFIRMED", (T0 + 3) * 1000)]
    trade = ex.trade(trade_id)
    assert trade is not None
    assert trade.transaction_hash.startswith("0x")
    assert len(trade.transaction_hash) == 66


class _Ghosts(NoHooks):
    def ghost_trade(self, request: OrderRequest) -> bool:
        return True


def test_a_ghost_fill_fails_and_reverts_balances() -> None:
    m = market()
    ex = Exchange([m], config=ExchangeConfig(mined_after_secs=1.0), hooks=_Ghosts())
    yes, no = m.token_ids
    maker, taker = order(no, BUY, "0.60", "10", owner="bob"), order(yes, BUY, "0.40", "10")
    ex.submit(maker, T0)
    (trade_id,) = accepted(ex.submit(taker, T0)).trade_ids
    assert ex.wallet(taker.maker_address).shares[yes] == 10 * U

    ex.advance(T0 + 1)

    trade = ex.trade(trade_id)
    assert trade is not None
    assert trade.status == "FAILED"
    assert ex.wallet(taker.maker_address).shares[yes] == 0
    assert ex.wallet(taker.maker_address).collateral == 10_000 * U
    assert ex.wallet(maker.maker_address).collateral == 10_000 * U


def test_heartbeat_dead_man_cancels_the_owners_orders() -> None:
    ex, _ = exchange(heartbeat_timeout_secs=10.0)
    yes, _no = ex.markets[0].token_ids
    accepted(ex.submit(order(yes, BUY, "0.40", "10"), T0))
    first = ex.heartbeat("alice", "", T0)
    second = ex.heartbeat("alice", first.heartbeat_id, T0 + 5)
    assert first.ok
    assert second.ok
    assert second.heartbeat_id != first.heartbeat_id

    stale = ex.heartbeat("alice", first.heartbeat_id, T0 + 6)
    assert (stale.ok, stale.heartbeat_id) == (False, second.heartbeat_id)

    ex.advance(T0 + 14.9)
    assert len(ex.open_orders("alice")) == 1
    ex.advance(T0 + 15.0)
    assert ex.open_orders("alice") == []


def test_tick_becomes_finer_beyond_096_and_back() -> None:
    ex, rec = exchange()
    yes, no = ex.markets[0].token_ids
    bob = accepted(ex.submit(order(no, BUY, "0.03", "10", owner="bob"), T0))  # YES ask 0.97

    assert [(e.asset_id, e.old_tick_size, e.new_tick_size) for e in rec.of(TickSizeChanged)] == [
        (yes, "0.01", "0.001"),
        (no, "0.01", "0.001"),
    ]
    assert ex.tick_size(yes) == Decimal("0.001")
    fine = accepted(ex.submit(order(yes, BUY, "0.965", "10"), T0))
    rec.clear()
    ex.cancel("alice", [fine.order_id], T0)
    assert rec.of(TickSizeChanged) == []
    ex.cancel("bob", [bob.order_id], T0)
    assert [(e.old_tick_size, e.new_tick_size) for e in rec.of(TickSizeChanged)] == [("0.001", "0.01")] * 2


def test_an_unlinked_market_can_hold_a_yes_plus_no_gap() -> None:
    ex, rec = exchange(market(complementary=False))
    yes, no = ex.markets[0].token_ids
    maker = order(yes, SELL, "0.45", "10", owner="mm")
    ex.fund(maker.maker_address, shares={yes: 10 * U, no: 10 * U})
    ex.submit(maker, T0)
    ex.submit(order(no, SELL, "0.50", "10", owner="mm"), T0)

    assert ex.best_prices(yes) == (None, 4500)
    assert ex.best_prices(no) == (None, 5000)
    assert ex.trades() == []
    assert [len(f.changes) for f in rec.of(BookChanged)] == [1, 1]


def test_book_summary_is_ordered_best_last_and_hashed_like_the_official_client() -> None:
    ex, _ = exchange()
    yes, no = ex.markets[0].token_ids
    for price in ("0.40", "0.42", "0.41"):
        ex.submit(order(yes, BUY, price, "10"), T0)
    for price in ("0.45", "0.47"):
        ex.submit(order(no, BUY, price, "7", owner="bob"), T0)

    summary = ex.book_summary(yes, T0)

    assert summary.bids == (("0.4", "10"), ("0.41", "10"), ("0.42", "10"))
    assert summary.asks == (("0.55", "7"), ("0.53", "7"))
    served = summary.rest_json()  # what REST /book sends
    assert generate_orderbook_summary_hash(parse_raw_orderbook_summary(served)) == summary.hash
    assert ex.book_summary(no, T0).bids == (("0.45", "7"), ("0.47", "7"))
