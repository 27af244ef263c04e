"""`run_trader` with its durable record in the machine's real PostgreSQL and its events on the real Redis.

Live mode against the in-process simulated venue (over real sockets), so the sim keeps its own records of our
orders and trades: after the run, PostgreSQL must hold every order, fill and position, matching the summary and the
sim; a Redis subscriber that subscribed before the run must have received every fill event.

The servers are the ones named by TRADER_TEST_PG_DSN / TRADER_TEST_REDIS_URL; without the variables the tests use
the local defaults and skip only when nothing answers there. Also here: the settings of the sinks, and the restart
reconciliation on SQLite (paper: stale open orders closed; positions rebuilt from the stored trades).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog.testing
import trio

from trader.config import Secret
from trader.domain.enums import Liquidity, OrderStatus, TradeStatus
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.domain.positions import Position
from trader.engine.order_manager import OrderManager
from trader.engine.restart import ENGINE_RESTARTED, RESTART_CANCELED, reconcile_at_start
from trader.engine.risk import RiskSettings
from trader.errors import ConfigError
from trader.integrations.bus import decode_event
from trader.integrations.http_server import HttpSettings
from trader.integrations.store import OrderRecord, TradeRecord, open_sqlite_store
from trader.integrations.store.base import CapitalOpRecord, CapitalOpState
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema, open_postgres_store
from trader.settings import (
    BusSettings,
    KeySettings,
    RedisSettings,
    RunSettings,
    Settings,
    SimSettings,
    SlackAlertSettings,
    StoreSettings,
    load_settings,
)
from trader.testing import make_intent, make_order_record
from trader.testing.fake_venue import FakeVenue
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.markets import UNITS_PER_ONE

from ..integrations.servers import pg_dsn, redis_url
from ..integrations.test_slack import Webhook
from .test_app import GAPS, TOKEN, running, wait_for


@pytest.fixture
async def pg_schema() -> AsyncIterator[PostgresSettings]:
    """A fresh schema on the test server, dropped afterwards."""
    settings = PostgresSettings(url=pg_dsn(), schema=f"test_app_{uuid.uuid4().hex[:16]}")
    yield settings
    await drop_postgres_schema(settings)


def live_settings(database_url: str, store: StoreSettings, **run: Any) -> tuple[Settings, str]:
    key = "0x" + secrets.token_hex(32)
    config = Settings(
        run=RunSettings(database_url=database_url, drain_secs=2.0, live=True, **run),
        http=HttpSettings(port=0, admin_token=TOKEN),
        sim=SimSettings(markets=4, seed=7, params=GAPS),
        keys=KeySettings(private_key=Secret(key)),
        store=store,
    )
    return config, OrderSigner(key).address.lower()


def sim_records(sim: Any, address: str) -> tuple[dict[str, Any], set[tuple[str, str]], dict[str, Decimal]]:
    """Our orders (by id), our fills (trade id, our order id) and our shares (by token), as the sim has them."""
    orders = {o.order_id: o for o in sim.exchange.orders() if o.maker_address.lower() == address}
    fills: set[tuple[str, str]] = set()
    for trade in sim.exchange.trades():
        if trade.taker.maker_address.lower() == address:
            fills.add((trade.trade_id, trade.taker.order_id))
        fills.update(
            (trade.trade_id, f.order.order_id) for f in trade.makers if f.order.maker_address.lower() == address
        )
    shares = {t: Decimal(n) / UNITS_PER_ONE for t, n in sim.exchange.wallet(address).shares.items() if n}
    return orders, fills, shares


@pytest.mark.pg
@pytest.mark.redis
async def test_live_run_leaves_its_record_in_postgres_and_every_fill_on_redis(pg_schema: PostgresSettings) -> None:
    url = redis_url()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url, socket_timeout=5)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    await trio.to_thread.run_sync(pubsub.subscribe, f"{prefix}:fill")  # subscribed before the run starts
    config, address = live_settings(
        pg_schema.url, StoreSettings(schema=pg_schema.schema), redis_url=url, cancel_resting_on_exit=True
    )
    config = dataclasses.replace(config, redis=RedisSettings(prefix=prefix))
    try:
        async with running(config) as run:
            execution = run.engine.execution  # type: ignore[attr-defined]
            sim = run.engine.sim  # type: ignore[attr-defined]
            await wait_for(lambda: execution.statistics().orders.fills >= 4)
            status = (await run.http.get("/status?full=1")).json()
            assert status["store"]["available"] is True
            assert status["sinks"]["store"]["available"] is True
            assert status["sinks"]["redis"]["delivered"] > 0
            metrics = (await run.http.get("/metrics")).text
            assert "trader_store_available 1.0" in metrics
            assert 'trader_sink_delivered_total{sink="redis"}' in metrics
            run.stop.set()
            await wait_for(lambda: bool(run.result))
            orders, fills, shares = sim_records(sim, address)
        (summary,) = run.result
        messages: list[Any] = []
        with trio.fail_after(10):
            while True:
                message = await trio.to_thread.run_sync(pubsub.get_message, False, 0.5)
                if message is None:
                    break
                if message["type"] == "message":
                    messages.append(message)
        stream_length = await trio.to_thread.run_sync(client.xlen, f"{prefix}:events")
    finally:
        await trio.to_thread.run_sync(pubsub.close)
        await trio.to_thread.run_sync(client.delete, f"{prefix}:events")
        await trio.to_thread.run_sync(client.close)

    # The summary agrees with the sim.
    assert summary.mode == "live"
    assert summary.orders_submitted == len(orders)
    assert summary.fills == len(fills) >= 4
    assert summary.open_orders_at_exit == 0
    async with open_postgres_store(pg_schema) as store:
        assert await store.load_pending_intents() == []
        assert await store.load_open_orders() == []
        stored_orders = {order_id: await store.load_order(order_id) for order_id in orders}
        trades = await store.load_trades()
        positions = {p.token_id: p.quantity for p in await store.load_positions() if p.quantity}
        count = await store.transaction(lambda conn: conn.fetchval("SELECT count(*) FROM orders"))
    # Every order of ours at the sim is in PostgreSQL, with the sim's matched size, and nothing else is.
    assert count == len(orders)
    for order_id, sim_order in orders.items():
        record = stored_orders[order_id]
        assert record is not None, order_id
        assert record.size_matched == Decimal(sim_order.matched) / UNITS_PER_ONE
        assert record.status.is_terminal
    # Every fill, once; every position as the summary and the sim's wallet have it.
    assert {(t.trade_id, t.order_id) for t in trades} == fills
    assert len(trades) == summary.fills
    assert positions == {t: Decimal(p["quantity"]) for t, p in summary.positions.items() if Decimal(p["quantity"])}
    assert positions == shares
    # The Redis subscriber got every fill event (versioned JSON), once each.
    events = [decode_event(m["data"]) for m in messages]
    assert all(e.type == "order_filled" and e.v == 1 for e in events)
    assert sorted(str(e.data["fill_id"]) for e in events) == sorted(f"{t}:{o}" for t, o in fills)
    assert stream_length >= len(events) + summary.orders_submitted  # fills, orders, intents...: all in the stream


def test_settings_of_the_sinks_and_their_aliases() -> None:
    settings = load_settings(
        {
            "TRADER_SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/secret-part",
            "TRADER_STORE__PING_INTERVAL_SECS": "0.5",
            "TRADER_STORE_SINK__CAPACITY": "50",
            "TRADER_REDIS_URL": "redis://127.0.0.1:6379/0",
            "TRADER_REDIS__PREFIX": "paper-eu",
            "TRADER_BUS__BOOK_SUMMARY_SECS": "0.25",
            "TRADER_SLACK_SINK__KEEP_LAST": "5",
        },
        dotenv=None,
    )
    assert settings.slack.webhook_url is not None
    assert settings.slack.webhook_url.get().endswith("secret-part")
    assert "secret-part" not in repr(settings)
    assert settings.store.ping_interval_secs == 0.5
    assert settings.store_sink.capacity == 50
    assert settings.run.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.redis.prefix == "paper-eu"
    assert settings.bus.book_summary_secs == 0.25
    assert settings.slack_sink.keep_last == 5
    assert settings.slack_sink.capacity == 100  # the Slack channel's own default
    defaults = Settings()
    assert (defaults.slack.webhook_url, defaults.run.redis_url, defaults.bus.book_summary_secs) == (None, None, 1.0)
    with pytest.raises(ConfigError, match="TRADER_STORE_SINK__CAPACITY"):
        load_settings({"TRADER_STORE_SINK__CAPACITY": "many"}, dotenv=None)
    with pytest.raises(ConfigError, match="TRADER_SLACK__STORM_WINDOW"):
        load_settings({"TRADER_SLACK__STORM_WINDOW": "5"}, dotenv=None)
    with pytest.raises(ConfigError, match="flush_secs"):
        load_settings({"TRADER_STORE__FLUSH_SECS": "0"}, dotenv=None)


def _order(order_id: str, *, status: OrderStatus = OrderStatus.ACCEPTED) -> OrderRecord:
    return make_order_record(order_id, status=status, created_at_ns=1_000, updated_at_ns=1_000)


def _trade(trade_id: str, side: Side, size: str, price: str, at: int) -> TradeRecord:
    return TradeRecord(
        trade_id=trade_id,
        order_id=f"o-{trade_id}",
        client_order_id=None,
        token_id="1001",
        side=side,
        price=Decimal(price),
        size=Decimal(size),
        fee=Decimal(0),
        liquidity=Liquidity.TAKER,
        status=TradeStatus.CONFIRMED,
        match_time_ns=at,
        updated_at_ns=at,
    )


async def test_paper_restart_closes_stale_orders_and_rebuilds_a_position_its_trades_disagree_with(
    tmp_path: Path,
) -> None:
    async with open_sqlite_store(tmp_path / "trader.db") as store:
        await store.record_order(_order("o-open"))
        await store.record_order(_order("o-done", status=OrderStatus.FILLED))
        await store.record_trade(_trade("t1", Side.BUY, "10", "0.40", 1))
        await store.record_trade(_trade("t2", Side.BUY, "5", "0.50", 2))
        await store.record_trade(_trade("t3", Side.SELL, "3", "0.60", 3))
        # The crash lost the position write of t3: the stored position still says 15.
        await store.record_position(Position(token_id="1001", quantity=Decimal(15)), ts_ns=2)
        report = await reconcile_at_start(store, None, now=lambda: 100.0)
        assert (report.open_orders, report.closed, report.positions_rebuilt) == (1, 1, ("1001",))
        assert await store.load_open_orders() == []
        closed = await store.load_order("o-open")
        assert closed is not None
        assert (closed.status, closed.reason) == (OrderStatus.CANCELED, ENGINE_RESTARTED)
        (position,) = await store.load_positions()
        assert position.quantity == Decimal(12)
        assert position.cost_basis == Decimal("6.50") - Decimal("6.50") * 3 / 15
        again = await reconcile_at_start(store, None, now=lambda: 101.0)  # consistent now: nothing to do
        assert (again.closed, again.positions_rebuilt) == (0, ())


async def test_a_restart_does_not_buy_back_what_a_merge_took(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "trader.db") as store:
        await store.record_trade(_trade("t1", Side.BUY, "10", "0.40", 1))
        no_trade = dataclasses.replace(_trade("t2", Side.BUY, "10", "0.55", 2), token_id="1002")
        await store.record_trade(no_trade)
        merge = CapitalOpRecord(
            op_id="paper-1",
            kind="MERGE",
            condition_id="0xcond",
            neg_risk=False,
            yes_token_id="1001",
            no_token_id="1002",
            yes_amount=Decimal(6),
            no_amount=Decimal(6),
            payout=Decimal(6),
            state=CapitalOpState.CONFIRMED,
            created_at_ns=3,
            updated_at_ns=4,
        )
        await store.record_capital_op(merge)
        # 6 sets merged: 4 of each held, as stored by the capital service
        await store.record_position(Position(token_id="1001", quantity=Decimal(4), cost_basis=Decimal("1.6")), ts_ns=4)
        await store.record_position(Position(token_id="1002", quantity=Decimal(4), cost_basis=Decimal("2.2")), ts_ns=4)
        report = await reconcile_at_start(store, None, now=lambda: 100.0)
        assert report.positions_rebuilt == ()
        assert {p.token_id: p.quantity for p in await store.load_positions()} == {
            "1001": Decimal(4),
            "1002": Decimal(4),
        }
        # a position a merge touched that still disagrees is reported, never rebuilt from trades alone
        await store.record_position(Position(token_id="1001", quantity=Decimal(3)), ts_ns=5)
        with structlog.testing.capture_logs() as logs:
            report = await reconcile_at_start(store, None, now=lambda: 101.0)
        assert report.positions_rebuilt == ()
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["position_mismatch"]
        assert (await store.load_positions())[0].quantity == Decimal(3)


async def test_slack_and_the_in_process_bus_hear_fills_storms_stops_and_the_daily_summary(tmp_path: Path) -> None:
    hook = Webhook()
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        hook.port = listeners[0].socket.getsockname()[1]
        await nursery.start(trio.serve_listeners, hook.handle, listeners)
        reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).time().replace(microsecond=0)
        config = dataclasses.replace(
            paper_settings(tmp_path),
            slack=SlackAlertSettings(
                webhook_url=Secret(hook.url), label="paper-test", min_interval_secs=0, storm_disconnects=2
            ),
            risk=RiskSettings(daily_reset_utc=reset),
            bus=BusSettings(book_summary_secs=0.2),
        )
        async with running(config) as run:
            engine: Any = run.engine
            execution = engine.execution
            await wait_for(lambda: execution.statistics().orders.fills >= 2)
            await wait_for(lambda: any(m.startswith("*paper-test* Fill:") for m in hook.messages))
            for drops in (1, 2):  # two market-channel drops in a row: a disconnect storm
                await wait_for(lambda: engine.sim.faults.drop_ws("market") > 0)
                await wait_for(lambda: engine.market_data.statistics().reconnects >= drops)  # noqa: B023
            await wait_for(lambda: any("Disconnect storm on market" in m for m in hook.messages))
            await wait_for(lambda: any("Daily summary" in m for m in hook.messages))  # the risk day's reset
            stopped = await run.http.post("/emergency-stop", headers={"Authorization": f"Bearer {TOKEN}"})
            assert stopped.status_code == 200
            await wait_for(lambda: any("EMERGENCY STOP (http)" in m for m in hook.messages))
            recent = {e.type for e in engine.outputs.memory.recent()}
            status = (await run.http.get("/status?full=1")).json()
        nursery.cancel_scope.cancel()
    messages = "\n".join(hook.messages)
    assert ":warning: Trading HALTED (was ACTIVE): EMERGENCY_STOP" in messages
    assert messages.count("Daily summary") == 2  # at the reset, and at exit
    assert hook.url not in messages
    # Every kind of domain event reached the in-process bus.
    assert {
        "book_summary",
        "intent_record",
        "order_submitted",
        "order_filled",
        "risk_state_changed",
        "risk_event_record",
        "emergency_stop",
        "opportunity",
    } <= recent
    assert status["bus"]["slack"]["posts"] >= 4
    assert status["sinks"]["slack"]["available"] is True


def paper_settings(tmp_path: Path) -> Settings:
    return Settings(
        run=RunSettings(database_url=f"sqlite:{tmp_path / 'trader.sqlite3'}", drain_secs=2.0),
        http=HttpSettings(port=0, admin_token=TOKEN),
        sim=SimSettings(markets=4, seed=7, params=GAPS),
    )


async def test_live_restart_cancels_what_rests_records_final_states_and_recovers_missed_fills(
    tmp_path: Path,
) -> None:
    venue = FakeVenue(wall=WALL)
    async with open_sqlite_store(tmp_path / "trader.db") as store:
        manager = OrderManager(venue, store, wall_ns=lambda: int(WALL * 1e9))
        resting = await manager.submit(make_intent("c-resting"))
        filled_later = await manager.submit(make_intent("c-filled-later"))
        # The engine dies; meanwhile the venue fills one order, and someone's order of ours is there too.
        trade_id = venue.fill(filled_later.order_id, Decimal(10))
        orphan = Order.from_intent(make_intent("c-orphan"), order_id="0x" + "ab" * 32, ts=WALL)
        await venue.submit(orphan)

        report = await reconcile_at_start(store, venue, now=lambda: WALL + 60)
        assert (report.open_orders, report.closed, report.canceled, report.unknown_to_store) == (2, 2, 2, 1)
        assert (report.trades_recovered, report.positions_rebuilt) == (1, ("1001",))
        assert sorted(venue.canceled) == sorted([resting.order_id, orphan.order_id])
        assert venue.live_order_ids() == []
        assert await store.load_open_orders() == []
        after = {o: await store.load_order(o) for o in (resting.order_id, filled_later.order_id, orphan.order_id)}
        assert {o: (r.status, r.reason) for o, r in after.items() if r is not None} == {
            resting.order_id: (OrderStatus.CANCELED, RESTART_CANCELED),
            filled_later.order_id: (OrderStatus.FILLED, None),
            orphan.order_id: (OrderStatus.CANCELED, RESTART_CANCELED),
        }
        orphan_record = after[orphan.order_id]
        assert orphan_record is not None
        assert orphan_record.client_order_id is None  # known only to the venue
        (trade,) = await store.load_trades()
        assert (trade.trade_id, trade.order_id, trade.client_order_id) == (
            trade_id,
            filled_later.order_id,
            "c-filled-later",
        )
        (position,) = await store.load_positions()
        assert position.quantity == Decimal(10)
        again = await reconcile_at_start(store, venue, now=lambda: WALL + 61)
        assert dataclasses.astuple(again)[1:] == (0, 0, 0, 0, 0, 0, ())
    venue.check()


WALL = 1_700_000_000.0
