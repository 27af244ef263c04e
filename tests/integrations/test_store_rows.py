"""`trader.integrations.store.rows`: the one mapping between the tables and the records, for every driver.

The stores' contract tests (test_store.py) run it through real databases; these pin the driver difference it
absorbs (SQLite's BOOLEAN comes back as 0/1, asyncpg's as bool) and the parameter spelling of the shared SQL.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest

from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import Side
from trader.integrations.store import rows
from trader.integrations.store.base import (
    DailyPnlRecord,
    IntentRecord,
    IntentState,
    Migration,
    OpportunityRecord,
    RiskEventRecord,
    SnipedMarket,
    StoreError,
    TradeRecord,
    pending_migrations,
)

MARKET = Market(
    condition_id="0x" + "c" * 64,
    question="Will it rain?",
    slug="rain",
    yes_token_id="111",
    no_token_id="222",
    tick_size=Decimal("0.01"),
    neg_risk=True,
    neg_risk_market_id="0x" + "d" * 64,
    min_order_size=Decimal(5),
    fees=FeeSchedule(rate=Decimal("0.02"), exponent=2, taker_only=False),
    active=True,
    accepting_orders=False,
    closed=False,
    end_date=dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC),
)
INTENT = IntentRecord(
    client_order_id="c-1",
    order_id="0x" + "e" * 64,
    strategy="mm",
    condition_id=MARKET.condition_id,
    token_id="111",
    side=Side.BUY,
    price=Decimal("0.45"),
    size=Decimal("10.50"),
    order_type=OrderType.GTD,
    post_only=True,
    expiration=1_767_225_600,
    group_id="arb-1",
    created_at_ns=5,
    state=IntentState.REJECTED,
    reason="VENUE_POST_ONLY_WOULD_CROSS",
    resolved_at_ns=9,
)
OPPORTUNITY = OpportunityRecord(
    opportunity_id="op-1",
    ts_ns=7,
    strategy="arb",
    kind="SUM_TO_100",
    market="0xevent",
    edge=Decimal("0.0125"),
    size=Decimal(40),
    traded=True,
    detail={"legs": ["111", "222"]},
)


def _as_sqlite_row(values: tuple[object, ...]) -> tuple[object, ...]:
    """What sqlite3 hands back for these values: a bool is stored in a BOOLEAN column as the integer 0 or 1."""
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def test_sqlite_and_asyncpg_rows_read_back_as_the_same_records() -> None:
    # asyncpg returns the bools as written; sqlite3 returns 0/1: both give back the record that was written.
    for values, from_row, record in [
        (rows.intent_values(INTENT), rows.intent_from_row, INTENT),
        (rows.opportunity_values(OPPORTUNITY), rows.opportunity_from_row, OPPORTUNITY),
    ]:
        assert from_row(values) == record
        assert from_row(_as_sqlite_row(values)) == record
    # 1 == True, so equality alone would not see an int slipping through: the flags must be real bools.
    assert type(rows.intent_from_row(_as_sqlite_row(rows.intent_values(INTENT))).post_only) is bool
    assert type(rows.opportunity_from_row(_as_sqlite_row(rows.opportunity_values(OPPORTUNITY))).traded) is bool
    market_row = rows.market_values(MARKET, ts_ns=1)[:-1]  # SELECT_MARKETS reads all but updated_at_ns
    assert rows.market_from_row(market_row) == MARKET
    assert rows.market_from_row(_as_sqlite_row(market_row)) == MARKET
    read = rows.market_from_row(_as_sqlite_row(market_row))
    assert (read.neg_risk, read.fees.taker_only, read.accepting_orders) == (True, False, False)
    assert all(type(v) is bool for v in (read.neg_risk, read.fees.taker_only, read.active, read.closed))


def test_records_round_trip_through_their_values_exactly() -> None:
    trade = TradeRecord(
        trade_id="t-1",
        order_id="o-1",
        client_order_id=None,
        token_id="111",
        side=Side.SELL,
        price=Decimal("0.50"),
        size=Decimal("3.000001"),
        fee=Decimal("0.00105"),
        fee_shares=Decimal("0.000002"),
        liquidity=Liquidity.TAKER,
        status=TradeStatus.FAILED,
        match_time_ns=11,
        updated_at_ns=12,
    )
    pnl = DailyPnlRecord(
        day=dt.date(2026, 11, 24),
        realized=Decimal("-1.5"),
        unrealized=Decimal("0.25"),
        fees=Decimal("0.1"),
        updated_at_ns=3,
    )
    event = RiskEventRecord(
        event_id="r-1", ts_ns=4, kind="STATE_CHANGE", reason_code="DAILY_LOSS", trading_state=None, detail={"a": 1}
    )
    sniped = SnipedMarket(condition_id="0xc", token_id="111", sniped_at_ns=8, detail={"price": "0.99"})
    assert rows.trade_from_row(rows.trade_values(trade)) == trade
    assert str(rows.trade_from_row(rows.trade_values(trade)).price) == "0.50"  # exact text, trailing zero kept
    assert rows.daily_pnl_from_row(rows.daily_pnl_values(pnl)) == pnl
    assert rows.risk_event_from_row(rows.risk_event_values(event)) == event
    assert rows.sniped_from_row(rows.sniped_values(sniped)) == sniped


@pytest.mark.parametrize("stored", [2, -1, "1", "true", None, 1.0])
def test_a_corrupt_stored_boolean_is_an_error_naming_the_column(stored: object) -> None:
    row = _as_sqlite_row(rows.opportunity_values(OPPORTUNITY))
    corrupt = (*row[:7], stored, *row[8:])
    with pytest.raises(StoreError, match=r"opportunities\.traded"):
        rows.opportunity_from_row(corrupt)


def test_shared_statements_keep_their_parameter_numbers_on_sqlite() -> None:
    assert rows.sqlite_sql("VALUES ($1, $2, $10, $11) WHERE x = $1") == "VALUES (?1, ?2, ?10, ?11) WHERE x = ?1"
    conn = sqlite3.connect(":memory:")
    try:
        # ?n binds by number, as $n does on PostgreSQL, whatever the order the numbers appear in.
        assert conn.execute(rows.sqlite_sql("SELECT $2, $1, $2"), ("a", "b")).fetchone() == ("b", "a", "b")
    finally:
        conn.close()


def test_since_none_means_from_the_beginning() -> None:
    assert rows.since(None) == -(2**63)
    assert rows.since(42) == 42


def test_pending_migrations_are_the_unapplied_ones_and_a_changed_or_unknown_one_is_refused() -> None:
    one, two = Migration(1, "init", "CREATE TABLE a (x TEXT)"), Migration(2, "more", "CREATE TABLE b (x TEXT)")
    assert pending_migrations({}, [one, two]) == [one, two]
    assert pending_migrations({1: one.checksum}, [one, two]) == [two]
    assert pending_migrations({1: one.checksum, 2: two.checksum}, [one, two]) == []
    with pytest.raises(StoreError, match="0001_init changed after it was applied"):
        pending_migrations({1: "edited"}, [one, two])
    with pytest.raises(StoreError, match=r"\[3\] that this code does not know"):
        pending_migrations({1: one.checksum, 3: "x"}, [one, two])
