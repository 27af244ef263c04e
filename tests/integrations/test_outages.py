"""Outages of the REAL servers during a run: PostgreSQL and Redis are stopped and started again.

- PostgreSQL down: the store says it is unavailable, the order manager sends no order whose intent it could not
  write, queued writes wait; when the server is back the store reconnects and every queued write lands.
- Redis down: publishing never blocks, the bus sink goes down and counts what it could not deliver, keeps the last
  N, reconnects with backoff and appends the kept events to the stream.

(Slack down is the webhook server failing on demand, in test_slack.py.)

These stop shared servers, so they are few and short, and every test starts what it stopped again in a `finally`
and waits until it answers. Select them with `-m pg` / `-m redis`. They need to run where the servers are local
and controllable (as root, like CI); elsewhere they skip saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import redis
import trio

from trader.domain.enums import Liquidity, OrderStatus
from trader.domain.events import OrderFilled
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.positions import Portfolio
from trader.engine.order_manager import STORE_WRITE_FAILED, OrderManager
from trader.integrations.bus import bus_event, decode_event
from trader.integrations.bus.redis import RedisBusSettings, open_redis_bus
from trader.integrations.sinks import SinkSettings, open_write_behind_store
from trader.integrations.store import IntentState, RiskEventRecord
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema, open_postgres_store
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue

from .servers import (
    pg_cluster,
    pg_dsn,
    pg_wait_ready,
    redis_start,
    redis_stop,
    redis_url,
    redis_wait_ready,
    require_control,
)

WALL = 1_700_000_000.0


# -- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture
async def pg_settings() -> AsyncIterator[PostgresSettings]:
    settings = PostgresSettings(
        url=pg_dsn(),
        schema=f"test_outage_{uuid.uuid4().hex[:16]}",
        ping_interval_secs=0.2,
        reconnect_initial_secs=0.1,
        reconnect_max_secs=0.5,
        connect_timeout_secs=2,
    )
    yield settings
    await pg_wait_ready(settings.url)
    await drop_postgres_schema(settings)


def _intent(cid: str) -> OrderIntent:
    return make_intent(cid, strategy="outage")


def _risk_event(i: int) -> RiskEventRecord:
    return RiskEventRecord(event_id=f"e-{i}", ts_ns=i, kind="TEST", reason_code="OUTAGE", trading_state=None)


@pytest.mark.pg
async def test_postgres_down_halts_new_orders_and_loses_no_queued_write(pg_settings: PostgresSettings) -> None:
    cluster = pg_cluster()
    require_control("pg_ctlcluster", "pg_isready")
    venue = FakeVenue(wall=WALL)
    sink = SinkSettings(retry_initial_secs=0.1, retry_max_secs=0.5)
    async with open_postgres_store(pg_settings) as pg, open_write_behind_store(pg, sink) as store:
        manager = OrderManager(
            venue,
            store,
            portfolio=Portfolio(cash=Decimal(1000)),
            wall_ns=lambda: int(WALL * 1e9),
        )
        await manager.submit(_intent("c-before"))
        assert len(venue.submitted) == 1
        try:
            await trio.run_process([*cluster, "stop", "-m", "fast"], capture_stdout=True)
            with trio.fail_after(10):
                await pg.wait_unavailable()
            assert not store.available  # the engine's signal to halt new orders
            refused = await manager.submit(_intent("c-during"))
            assert (refused.status, refused.reason) == (OrderStatus.REJECTED, STORE_WRITE_FAILED)
            assert [o.client_order_id for o in venue.submitted] == ["c-before"]  # nothing unrecorded was sent
            for i in range(5):  # writes off the hot path keep being accepted, and wait
                await store.record_risk_event(_risk_event(i))
            await trio.sleep(0.5)
            waiting = store.sink_statistics()
            assert waiting.queued + waiting.pending >= 5
            assert not waiting.available
        finally:
            with trio.CancelScope(shield=True):
                await trio.run_process([*cluster, "start"], capture_stdout=True)
                await pg_wait_ready(pg_settings.url)
        with trio.fail_after(30):
            await pg.wait_available()
            await manager.submit(_intent("c-after"))
            await store.flush()
        assert [o.client_order_id for o in venue.submitted] == ["c-before", "c-after"]
        assert [e.event_id for e in await store.load_risk_events()] == [f"e-{i}" for i in range(5)]
        assert await store.load_pending_intents() == []
        assert await pg.load_intent("c-during") is None
        after = await pg.load_intent("c-after")
        assert after is not None
        assert after.state is IntentState.ACKED
        stats, sink_stats = pg.statistics(), store.sink_statistics()
    assert (stats.outages, stats.available) == (1, True)
    assert stats.reconnects >= 1
    assert stats.unavailable_calls >= 1
    assert (sink_stats.outages, sink_stats.pending, sink_stats.queued) == (1, 0, 0)
    assert store.rejected_writes == 0


# -- Redis -------------------------------------------------------------------------------------------------------


def _fill(i: int) -> OrderFilled:
    return OrderFilled(
        client_order_id=f"c-{i}",
        trade_id=f"t-{i}",
        token_id="1001",
        side=Side.BUY,
        price=Decimal("0.40"),
        size=Decimal(i + 1),
        liquidity=Liquidity.TAKER,
        ts=WALL + i,
    )


@pytest.mark.redis
async def test_redis_down_never_blocks_and_the_kept_events_reach_the_stream() -> None:
    url = redis_url()
    require_control("redis-cli", "redis-server")
    settings = RedisBusSettings(url=url, prefix=f"test-{uuid.uuid4().hex[:12]}", socket_timeout_secs=1)
    sink = SinkSettings(capacity=100, keep_last=3, retry_initial_secs=0.1, retry_max_secs=0.5)
    async with open_redis_bus(settings, sink) as bus:
        assert bus.publish(bus_event(_fill(0)))
        with trio.fail_after(5):
            await bus.flush()
        try:
            await trio.run_process(redis_stop(url), check=False)
            with trio.fail_after(5):  # publishing goes on, without waiting for anything
                for i in range(1, 6):
                    assert bus.publish(bus_event(_fill(i)))
                await bus.flush()
            down = bus.statistics()
            assert (down.available, down.undelivered) == (False, 5)
            assert [decode_event(p).data["size"] for _, p in bus.runner.undelivered()] == ["4", "5", "6"]
        finally:
            with trio.CancelScope(shield=True):
                await trio.run_process(redis_start(url), capture_stdout=True)
                await redis_wait_ready(url)
        with trio.fail_after(15):
            await bus.runner.wait_available()  # the sink retries on its own backoff schedule
            assert bus.publish(bus_event(_fill(6)))
            await bus.flush()
        stats, sink_stats = bus.statistics(), bus.sink_statistics()
    client = redis.Redis.from_url(url)
    try:
        stream: Any = await trio.to_thread.run_sync(client.xrange, settings.stream)
        await trio.to_thread.run_sync(client.delete, settings.stream)
    finally:
        client.close()
    # Redis kept nothing across its restart: the stream holds the kept events, then the new one.
    assert [decode_event(fields[b"event"]).data["size"] for _, fields in stream] == ["4", "5", "6", "7"]
    assert (stats.published, stats.delivered, stats.undelivered, stats.available) == (7, 2, 5, True)
    assert (sink_stats.recovered, sink_stats.outages) == (3, 1)
    assert sink_stats.failures >= 1
