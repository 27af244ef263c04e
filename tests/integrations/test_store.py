"""The `Store` contract, written once and run against every implementation (`store_factory` fixture).

SQLite runs always; a PostgreSQL implementation joins the parametrization (marked `pg`) when it exists.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio

from trader.domain.enums import Liquidity, OrderStatus, TradeStatus
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import Side
from trader.domain.orders import Order, Trade
from trader.domain.positions import Position
from trader.infra.secrets import REDACTED
from trader.integrations.store import (
    DailyPnlRecord,
    DuplicateKeyError,
    EquitySample,
    IntentRecord,
    IntentState,
    OpportunityRecord,
    OrderRecord,
    PaperWalletRecord,
    RiskEventRecord,
    SnipedMarket,
    Store,
    StoreError,
    StoreScope,
    StoreScopeMismatch,
    TradeRecord,
    TradingMode,
    open_sqlite_store,
)
from trader.integrations.store.base import CapitalOpRecord, CapitalOpState, check_scope
from trader.testing import make_intent_record, make_order_record
from trader.testing.memory_store import MemoryStore

StoreFactory = Callable[[], AbstractAsyncContextManager[Store]]

ZERO_D = Decimal(0)
SECRET = "0x" + "5e" * 32
API_SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
PASSPHRASE = "correct-horse-battery-staple"


@pytest.fixture(params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.pg)])
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens the same database each time it is called, so a test can 'restart' the engine.

    memory: `trader.testing`'s `MemoryStore`, the store the engine's unit tests run on: one instance, kept across
    'restarts', held to the same contract so those tests prove what they claim.

    PostgreSQL: the server named by TRADER_TEST_PG_DSN (default postgresql://postgres@127.0.0.1:5432/test), in a
    fresh schema per test that is dropped afterwards; skipped only when the variable is unset and nothing answers.
    """
    if request.param == "sqlite":
        path = tmp_path / "trader.db"

        @asynccontextmanager
        async def open_store() -> AsyncIterator[Store]:
            async with open_sqlite_store(path) as store:
                yield store

        yield open_store
        return
    if request.param == "memory":
        memory = MemoryStore()

        @asynccontextmanager
        async def open_memory_store() -> AsyncIterator[Store]:
            await trio.lowlevel.checkpoint()
            memory.closed = False
            try:
                yield memory
            finally:
                memory.closed = True

        yield open_memory_store
        return
    import uuid

    from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema, open_postgres_store

    from .servers import pg_dsn

    settings = PostgresSettings(url=pg_dsn(), schema=f"test_store_{uuid.uuid4().hex[:16]}")

    @asynccontextmanager
    async def open_pg_store() -> AsyncIterator[Store]:
        async with open_postgres_store(settings) as store:
            yield store

    yield open_pg_store
    await drop_postgres_schema(settings)


#: The intent of these tests: a post-only sum_to_100 leg of basket arb-7.
_intent = partial(
    make_intent_record,
    strategy="sum_to_100",
    condition_id="0xc1",
    token_id="71321045679252212594626385532706912750332728571942532289631379312455583992563",
    price="0.50",
    size="10.25",
    post_only=True,
    group_id="arb-7",
    created_at_ns=1_767_225_600_123_000_000,
)


def _order(order_id: str, status: OrderStatus, matched: str = "0", ts: int = 1) -> OrderRecord:
    return make_order_record(
        order_id,
        status=status,
        size_matched=matched,
        updated_at_ns=ts,
        strategy="clipper",
        condition_id="0xc1",
        token_id="111",
        side=Side.SELL,
        price="0.43",
        original_size=20,
    )


def _trade(status: TradeStatus, ts: int = 10, trade_id: str = "t-1") -> TradeRecord:
    return TradeRecord(
        trade_id=trade_id,
        order_id="o-1",
        client_order_id="c-o-1",
        token_id="111",
        side=Side.BUY,
        price=Decimal("0.47"),
        size=Decimal("5"),
        fee=Decimal("0.01234"),
        fee_shares=Decimal("0.02"),
        liquidity=Liquidity.TAKER,
        status=status,
        match_time_ns=ts,
        updated_at_ns=ts,
    )


async def test_intents_written_before_sending_are_pending_after_a_restart(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_intent(_intent("c-1"))
        await store.record_intent(_intent("c-2", created_at_ns=1_767_225_600_124_000_000, side=Side.SELL))
        await store.record_intent(_intent("c-3", order_id=None, created_at_ns=1_767_225_600_125_000_000))
        await store.resolve_intent("c-2", IntentState.ACKED, ts_ns=5)
    async with store_factory() as store:  # the engine restarted
        pending = await store.load_pending_intents()
    assert [i.client_order_id for i in pending] == ["c-1", "c-3"]
    assert pending[0] == _intent("c-1")
    assert str(pending[0].price) == "0.50"  # the exact text, not just an equal number
    assert pending[1].order_id is None


async def test_resolving_an_intent_records_outcome_and_order_id(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_intent(_intent("c-1", order_id=None))
        await store.record_intent(_intent("c-2", order_id="0x" + "cd" * 32))
        await store.resolve_intent("c-1", IntentState.ACKED, ts_ns=7, order_id="paper-1")
        await store.resolve_intent("c-2", IntentState.REJECTED, ts_ns=8, reason="VENUE_POST_ONLY_WOULD_CROSS")
        assert await store.load_pending_intents() == []


async def test_a_second_intent_with_the_same_client_id_is_refused(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_intent(_intent("c-1"))
        with pytest.raises(DuplicateKeyError):
            await store.record_intent(_intent("c-1", price=Decimal("0.51")))
        with pytest.raises(StoreError):
            await store.resolve_intent("missing", IntentState.ACKED, ts_ns=1)
        assert [i.price for i in await store.load_pending_intents()] == [Decimal("0.50")]


async def test_the_intents_of_a_batch_are_written_all_or_none(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_intents([_intent("c-1", group_id="arb-1"), _intent("c-2", group_id="arb-1")])
        await store.record_intent(_intent("c-3", group_id=None, created_at_ns=1_767_225_600_124_000_000))
        with pytest.raises(DuplicateKeyError):  # c-3 exists: c-4 is not written either
            await store.record_intents([_intent("c-4"), _intent("c-3", price=Decimal("0.51"))])
        await store.record_intents([])
    async with store_factory() as store:  # the engine restarted
        pending = await store.load_pending_intents()
    assert [(i.client_order_id, i.group_id) for i in pending] == [("c-1", "arb-1"), ("c-2", "arb-1"), ("c-3", None)]
    assert pending[2].price == Decimal("0.50")


async def test_order_state_changes_are_kept_in_order_and_open_orders_reload(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_order(_order("o-1", OrderStatus.SUBMITTED, ts=1))
        await store.record_order(_order("o-1", OrderStatus.ACCEPTED, ts=2))
        await store.record_order(_order("o-1", OrderStatus.ACCEPTED, ts=3))  # no change: no event
        await store.record_order(_order("o-1", OrderStatus.PARTIALLY_FILLED, "7.5", ts=4))
        await store.record_order(_order("o-2", OrderStatus.ACCEPTED, ts=5))
        await store.record_order(_order("o-2", OrderStatus.CANCELED, ts=6), reason="SHUTDOWN")
    async with store_factory() as store:
        open_orders = await store.load_open_orders()
        events = await store.load_order_events("o-1")
        canceled = await store.load_order_events("o-2")
    assert open_orders == [_order("o-1", OrderStatus.PARTIALLY_FILLED, "7.5", ts=4)]
    assert [(e.seq, e.status, e.size_matched, e.ts_ns) for e in events] == [
        (1, OrderStatus.SUBMITTED, Decimal(0), 1),
        (2, OrderStatus.ACCEPTED, Decimal(0), 2),
        (3, OrderStatus.PARTIALLY_FILLED, Decimal("7.5"), 4),
    ]
    assert canceled[-1].reason == "SHUTDOWN"


async def test_a_failed_trade_is_kept_with_its_status(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.record_trade(_trade(TradeStatus.MATCHED, ts=10))
        await store.record_trade(_trade(TradeStatus.MATCHED, ts=20, trade_id="t-2"))
        await store.record_trade(_trade(TradeStatus.MINED, ts=10))
        await store.record_trade(_trade(TradeStatus.FAILED, ts=10))
        trades = await store.load_trades()
        recent = await store.load_trades(since_ns=15)
    assert [(t.trade_id, t.status) for t in trades] == [("t-1", TradeStatus.FAILED), ("t-2", TradeStatus.MATCHED)]
    assert trades[0].fee == Decimal("0.01234")
    assert [t.trade_id for t in recent] == ["t-2"]


async def test_positions_and_daily_pnl_round_trip_exactly(store_factory: StoreFactory) -> None:
    position = Position(
        token_id="111",
        quantity=Decimal("12.34"),
        cost_basis=Decimal("5.123456789012345678901234567"),
        realized_pnl=Decimal("-1.000001"),
        fees_paid=Decimal("0.00001"),
    )
    day = dt.date(2026, 5, 1)
    pnl = DailyPnlRecord(
        day=day, realized=Decimal("-12.5"), unrealized=Decimal("3.25"), fees=Decimal("0.1"), updated_at_ns=9
    )
    async with store_factory() as store:
        await store.record_position(position, ts_ns=3)
        await store.record_position(dataclasses.replace(position, token_id="222"), ts_ns=3)
        await store.record_position(dataclasses.replace(position, quantity=Decimal(0), cost_basis=Decimal(0)), ts_ns=4)
        await store.record_daily_pnl(pnl)
        await store.record_daily_pnl(dataclasses.replace(pnl, realized=Decimal("-20")))
    async with store_factory() as store:
        positions = await store.load_positions()
        loaded_pnl = await store.load_daily_pnl(day)
        assert await store.load_daily_pnl(dt.date(2026, 5, 2)) is None
    assert positions == [
        dataclasses.replace(position, quantity=Decimal(0), cost_basis=Decimal(0)),
        dataclasses.replace(position, token_id="222"),
    ]
    assert str(positions[1].cost_basis) == "5.123456789012345678901234567"
    assert loaded_pnl is not None
    assert loaded_pnl.realized == Decimal("-20")
    assert loaded_pnl.unrealized == Decimal("3.25")


async def test_equity_samples_round_trip_exactly_in_time_order(store_factory: StoreFactory) -> None:
    def sample(ts_ns: int, equity: str) -> EquitySample:
        return EquitySample(
            ts_ns=ts_ns,
            equity=Decimal(equity),
            cash=Decimal("900.000001"),
            positions_value=Decimal(equity) - Decimal("900.000001"),
            realized_pnl=Decimal("1.123456789012"),
            unrealized_pnl=Decimal("-0.5"),
        )

    async with store_factory() as store:
        assert await store.load_equity() == []
        await store.record_equity(sample(3_000, "1000.25"))
        await store.record_equity(sample(1_000, "999.5"))
        await store.record_equity(sample(2_000, "1001"))
        await store.record_equity(sample(2_000, "1002"))  # the same instant again: the later sample wins
    async with store_factory() as store:
        everything = await store.load_equity()
        recent = await store.load_equity(since_ns=2_000)
    assert [(s.ts_ns, s.equity) for s in everything] == [
        (1_000, Decimal("999.5")),
        (2_000, Decimal("1002")),
        (3_000, Decimal("1000.25")),
    ]
    assert everything[0] == sample(1_000, "999.5")
    assert [s.ts_ns for s in recent] == [2_000, 3_000]


async def test_the_paper_wallet_and_the_days_baseline_survive_a_restart(store_factory: StoreFactory) -> None:
    day = dt.date(2026, 5, 1)
    # 99 lost today: the day began with 5 of PnL (since inception), the marks now say -94
    pnl = DailyPnlRecord(
        day=day,
        realized=Decimal("-60.5"),
        unrealized=Decimal("-33.5"),
        fees=Decimal("1.25"),
        updated_at_ns=9,
        baseline=Decimal(5),
    )
    async with store_factory() as store:
        assert await store.load_paper_wallet() is None
        await store.record_paper_wallet(PaperWalletRecord(cash=Decimal(1000), reserved=ZERO_D, updated_at_ns=1))
        await store.record_paper_wallet(
            PaperWalletRecord(cash=Decimal("412.345678"), reserved=Decimal("20.5"), updated_at_ns=2)
        )
        await store.record_daily_pnl(pnl)
    async with store_factory() as store:
        wallet = await store.load_paper_wallet()
        loaded = await store.load_daily_pnl(day)
    assert wallet == PaperWalletRecord(cash=Decimal("412.345678"), reserved=Decimal("20.5"), updated_at_ns=2)
    assert loaded == pnl
    assert loaded.pnl == Decimal(-99)


async def test_a_store_keeps_one_account_scope_and_says_which(store_factory: StoreFactory) -> None:
    paper = StoreScope(mode=TradingMode.PAPER, venue="sim")
    live = StoreScope(mode=TradingMode.LIVE, venue="polymarket", wallet="0x" + "ab" * 20)
    async with store_factory() as store:
        assert await store.load_scope() is None
        assert await store.claim_scope(paper, ts_ns=1) == paper
    async with store_factory() as store:  # a later run of any scope finds the first one's claim
        assert await store.claim_scope(live, ts_ns=2) == paper
        assert await store.load_scope() == paper
    check_scope(paper, paper, database="sqlite:x", fix="")
    with pytest.raises(StoreScopeMismatch) as refused:
        check_scope(paper, live, database="sqlite:trader.sqlite3", fix="Use --database-url.")
    message = str(refused.value)
    assert "sqlite:trader.sqlite3 keeps the records of paper trading on sim" in message
    assert f"not of live trading on polymarket for wallet {live.wallet}" in message
    assert message.endswith("Use --database-url.")
    with pytest.raises(ValueError, match="names its wallet"):
        StoreScope(mode=TradingMode.LIVE, venue="polymarket")


async def test_a_market_is_sniped_at_most_once_even_across_restarts(store_factory: StoreFactory) -> None:
    sniped = SnipedMarket(condition_id="0xc1", token_id="111", sniped_at_ns=5, detail={"winner": "Yes"})
    async with store_factory() as store:
        assert await store.mark_sniped(sniped) is True
        assert await store.mark_sniped(sniped) is False
    async with store_factory() as store:
        assert await store.mark_sniped(SnipedMarket(condition_id="0xc1", token_id="222", sniped_at_ns=9)) is False
        assert await store.load_sniped_markets() == [sniped]


async def test_risk_events_and_opportunities_round_trip(store_factory: StoreFactory) -> None:
    event = RiskEventRecord(
        event_id="e-1",
        ts_ns=100,
        kind="DAILY_LOSS_BREACH",
        reason_code="RISK_DAILY_LOSS",
        trading_state="HALTED",
        detail={"pnl": Decimal("-50.5"), "limit": "50", "legs": [1, 2]},
    )
    opportunities = [
        OpportunityRecord(
            opportunity_id=f"op-{i}",
            ts_ns=i,
            strategy="sum_deviation",
            kind="BUY_BOTH",
            market="0xc1",
            edge=Decimal("0.013"),
            size=Decimal("40"),
            traded=i % 2 == 0,
            detail={"asks": ["0.49", "0.49"]},
        )
        for i in range(5)
    ]
    async with store_factory() as store:
        await store.record_risk_event(event)
        await store.record_opportunities(opportunities)
        await store.record_opportunities([])
        events = await store.load_risk_events()
        assert await store.load_risk_events(since_ns=101) == []
        loaded = await store.load_opportunities(since_ns=3)
    assert events[0].detail == {"pnl": "-50.5", "limit": "50", "legs": [1, 2]}
    assert [(o.opportunity_id, o.traded) for o in loaded] == [("op-3", False), ("op-4", True)]
    assert loaded[0].edge == Decimal("0.013")


async def test_markets_upsert_and_reload_as_domain_markets(store_factory: StoreFactory) -> None:
    market = Market(
        condition_id="0xc1",
        question="Will it rain?",
        slug="rain",
        yes_token_id="111",
        no_token_id="222",
        tick_size=Decimal("0.01"),
        outcomes=("Up", "Down"),
        fees=FeeSchedule(rate=Decimal("0.02"), exponent=2),
        end_date=dt.datetime(2026, 6, 1, 12, 30, 0, 123456, tzinfo=dt.UTC),
    )
    closed = dataclasses.replace(
        market,
        closed=True,
        accepting_orders=False,
        tick_size=Decimal("0.001"),
        neg_risk=True,
        neg_risk_market_id="0xevent",
        fees=FeeSchedule(rate=Decimal("0.07"), exponent=Decimal("1.5"), taker_only=False),
        end_date=None,
    )
    other = dataclasses.replace(market, condition_id="0xc2", yes_token_id="333", no_token_id="444")
    async with store_factory() as store:
        await store.upsert_market(market, ts_ns=1)
        await store.upsert_market(other, ts_ns=1)
        assert await store.load_markets() == [market, other]
        await store.upsert_market(closed, ts_ns=2)
        assert await store.load_markets() == [closed, other]


def test_records_are_built_from_domain_objects() -> None:
    intent = _intent("c-9").to_intent()
    record = IntentRecord.of(intent, order_id="0x" + "e" * 64, created_at_ns=5, group_id="arb-1")
    assert record.to_intent() == intent
    assert (record.state, record.group_id) == (IntentState.PENDING, "arb-1")
    order = Order.from_intent(intent, order_id="0x" + "e" * 64, ts=1_767_225_600.5)
    row = OrderRecord.of(order)
    assert (row.order_id, row.client_order_id, row.status, row.size_matched) == (
        order.order_id,
        "c-9",
        OrderStatus.CREATED,
        Decimal(0),
    )
    assert row.created_at_ns == 1_767_225_600_500_000_000
    trade = Trade(
        trade_id="t-9",
        client_order_id="c-9",
        order_id=order.order_id,
        token_id=intent.token_id,
        side=Side.BUY,
        price=Decimal("0.5"),
        size=Decimal(3),
        liquidity=Liquidity.MAKER,
        match_ts=1.25,
    )
    assert TradeRecord.of(trade).match_time_ns == 1_250_000_000
    assert TradeRecord.of(trade).status is TradeStatus.MATCHED


async def test_secrets_in_details_are_never_stored(store_factory: StoreFactory, tmp_path: Path) -> None:
    leaky = {
        "private_key": SECRET,
        "api_secret": API_SECRET,
        "nested": {"POLY_PASSPHRASE": PASSPHRASE, "token_id": "111"},
        "creds": [{"passphrase": PASSPHRASE}],
    }
    async with store_factory() as store:
        await store.record_risk_event(
            RiskEventRecord(event_id="e", ts_ns=1, kind="K", reason_code="R", trading_state=None, detail=leaky)
        )
        await store.mark_sniped(SnipedMarket(condition_id="c", token_id="t", sniped_at_ns=1, detail=leaky))
        events = await store.load_risk_events()
    assert events[0].detail == {
        "private_key": REDACTED,
        "api_secret": REDACTED,
        "nested": {"POLY_PASSPHRASE": REDACTED, "token_id": "111"},
        "creds": [{"passphrase": REDACTED}],
    }
    # and not a byte of them on disk (for file-backed stores)
    assert _files_containing(tmp_path, [SECRET, API_SECRET, PASSPHRASE]) == []


def _files_containing(folder: Path, needles: list[str]) -> list[str]:
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and any(needle.encode() in path.read_bytes() for needle in needles)
    ]


async def test_concurrent_writers_all_land(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(store.record_intent, _intent(f"c-{i:03d}", order_id=f"o-{i}", created_at_ns=i))
        pending = await store.load_pending_intents()
        assert [i.client_order_id for i in pending] == [f"c-{i:03d}" for i in range(50)]
        assert store.statistics().writes == 50


async def test_a_closed_store_refuses_calls(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        pass
    with pytest.raises(StoreError, match="closed"):
        await store.load_positions()


def _capital_op(op_id: str, state: CapitalOpState, created: int, **changes: object) -> CapitalOpRecord:
    op = CapitalOpRecord(
        op_id=op_id,
        kind="MERGE",
        condition_id="0xcond",
        neg_risk=False,
        yes_token_id="111",
        no_token_id="222",
        yes_amount=Decimal("12.5"),
        no_amount=Decimal("12.5"),
        payout=Decimal("12.5"),
        state=state,
        created_at_ns=created,
        updated_at_ns=created,
    )
    return dataclasses.replace(op, **changes)  # type: ignore[arg-type]


async def test_capital_operations_are_written_ahead_and_found_again_until_they_end(
    store_factory: StoreFactory,
) -> None:
    async with store_factory() as store:
        await store.record_capital_op(_capital_op("0xb", CapitalOpState.PREPARED, 2))
        await store.record_capital_op(
            _capital_op("0xa", CapitalOpState.PREPARED, 1, kind="REDEEM", payout=Decimal("7"))
        )
        await store.record_capital_op(_capital_op("0xc", CapitalOpState.PREPARED, 3))
        # 0xa is sent (its hash known), 0xc ends; an update never rewrites what the operation is
        await store.record_capital_op(
            _capital_op("0xa", CapitalOpState.PENDING, 1, tx_hash="0xtx", updated_at_ns=5, payout=Decimal("99"))
        )
        await store.record_capital_op(_capital_op("0xc", CapitalOpState.CONFIRMED, 3, updated_at_ns=6))
    async with store_factory() as store:  # a restart
        found = await store.load_open_capital_ops()
        every = await store.load_capital_ops()  # what changed positions besides trades, ended ones too
    assert [op.op_id for op in found] == ["0xa", "0xb"]
    assert [(op.op_id, op.state) for op in every] == [
        ("0xa", CapitalOpState.PENDING),
        ("0xb", CapitalOpState.PREPARED),
        ("0xc", CapitalOpState.CONFIRMED),
    ]
    assert found[0] == _capital_op(
        "0xa", CapitalOpState.PENDING, 1, kind="REDEEM", payout=Decimal("7"), tx_hash="0xtx", updated_at_ns=5
    )
    assert found[1].state is CapitalOpState.PREPARED
