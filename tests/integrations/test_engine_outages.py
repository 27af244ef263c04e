"""Outages of the REAL servers while `run_trader` trades (live, against the in-process simulated venue).

- PostgreSQL stopped and started again: while it is down no order is sent (trading is HALTED with reason
  STORE_UNAVAILABLE, visible in /status, /ready and /metrics); when it is back trading resumes by itself, and
  nothing is lost: every order and fill the sim has is in PostgreSQL afterwards, no intent is left pending.
- Redis stopped and started again: trading goes on, the events it could not take are counted as undelivered, and
  the bus sink reconnects by itself.

Like test_outages.py, these stop shared servers: they are short, and always start the server again in a `finally`.
They need root and the server tools (as in CI); elsewhere they skip saying why.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

from trader.integrations.sinks import SinkSettings
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema, open_postgres_store
from trader.settings import RedisSettings, Settings, StoreSettings
from trader.venues.sim.markets import UNITS_PER_ONE

from ..engine.test_app import running, settings, wait_for
from ..engine.test_app_persistence import live_settings, sim_records
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

FAST_RETRY = SinkSettings(retry_initial_secs=0.1, retry_max_secs=0.5)


@pytest.fixture
async def pg_schema() -> AsyncIterator[PostgresSettings]:
    settings = PostgresSettings(url=pg_dsn(), schema=f"test_outage_app_{uuid.uuid4().hex[:12]}")
    yield settings
    await pg_wait_ready(settings.url)
    await drop_postgres_schema(settings)


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
@pytest.mark.pg
async def test_postgres_down_halts_new_orders_then_trading_resumes_and_nothing_is_lost(
    pg_schema: PostgresSettings,
) -> None:
    cluster = pg_cluster()
    require_control("pg_ctlcluster", "pg_isready")
    store = StoreSettings(
        schema=pg_schema.schema,
        ping_interval_secs=0.2,
        reconnect_initial_secs=0.1,
        reconnect_max_secs=0.5,
        connect_timeout_secs=2.0,
    )
    config, address = live_settings(pg_schema.url, store)
    config = dataclasses.replace(config, store_sink=FAST_RETRY)
    async with running(config) as run:
        engine: Any = run.engine
        execution = engine.execution
        await wait_for(lambda: execution.statistics().orders.fills >= 2)
        try:
            await trio.run_process([*cluster, "stop", "-m", "fast"], capture_stdout=True)
            await wait_for(lambda: not engine.store_available())
            await wait_for(lambda: engine.store_gate.halted)
            sent_when_down = execution.statistics().orders.submitted
            denied = execution.statistics().intents_denied.get("TRADING_HALTED", 0)
            ready = await run.http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["store_writable"] is False
            status = (await run.http.get("/status?full=1")).json()
            assert status["trading_state"] == "HALTED"
            assert status["store"] == status["store"] | {"available": False, "halted_trading": True, "outages": 1}
            assert "trader_store_available 0.0" in (await run.http.get("/metrics")).text
            # The strategies keep finding gaps; the risk gate refuses them, and nothing goes out.
            await wait_for(lambda: execution.statistics().intents_denied.get("TRADING_HALTED", 0) >= denied + 2)
            assert execution.statistics().orders.submitted == sent_when_down
        finally:
            with trio.CancelScope(shield=True):
                await trio.run_process([*cluster, "start"], capture_stdout=True)
                await pg_wait_ready(pg_schema.url)
        await wait_for(lambda: engine.store_available() and not engine.store_gate.halted)
        assert (await run.http.get("/status")).json()["trading_state"] == "ACTIVE"
        assert (await run.http.get("/ready")).json()["checks"]["store_writable"] is True
        await wait_for(lambda: execution.statistics().orders.submitted > sent_when_down)  # trading resumed
        await wait_for(lambda: execution.statistics().orders.fills >= 4)
        run.stop.set()
        await wait_for(lambda: bool(run.result))
        orders, fills, shares = sim_records(engine.sim, address)
        sink = engine.store.sink_statistics()
        rejected = engine.store.rejected_writes
    (summary,) = run.result
    assert summary.orders_submitted == len(orders)
    assert (sink.queued, sink.pending, rejected) == (0, 0, 0)
    assert sink.outages >= 1
    async with open_postgres_store(pg_schema) as pg:
        assert await pg.load_pending_intents() == []
        for order_id, sim_order in orders.items():
            record = await pg.load_order(order_id)
            assert record is not None, order_id
            assert record.size_matched == Decimal(sim_order.matched) / UNITS_PER_ONE
            intent = await pg.load_intent(str(record.client_order_id))
            assert intent is not None  # written before its order was sent
        assert {(t.trade_id, t.order_id) for t in await pg.load_trades()} == fills
        positions = {p.token_id: p.quantity for p in await pg.load_positions() if p.quantity}
    assert positions == shares


def _sample(metrics: str, name: str) -> float:
    (line,) = [line for line in metrics.splitlines() if line.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
@pytest.mark.redis
async def test_redis_down_trading_continues_undelivered_events_are_counted(tmp_path: Path) -> None:
    url = redis_url()
    require_control("redis-cli", "redis-server")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    base = settings(tmp_path, redis_url=url)
    config = dataclasses.replace(
        base, redis=RedisSettings(prefix=prefix, socket_timeout_secs=1.0), redis_sink=FAST_RETRY
    )
    assert isinstance(config, Settings)
    async with running(config) as run:
        engine: Any = run.engine
        execution = engine.execution
        bus = engine.outputs.redis
        await wait_for(lambda: execution.statistics().orders.fills >= 2 and bus.sink_statistics().delivered > 0)
        try:
            await trio.run_process(redis_stop(url), check=False)
            await wait_for(lambda: not bus.sink_statistics().available)
            fills = execution.statistics().orders.fills
            await wait_for(lambda: execution.statistics().orders.fills >= fills + 2)  # trading goes on
            down = bus.sink_statistics()
            assert down.undelivered > 0
            assert (await run.http.get("/status?full=1")).json()["sinks"]["redis"]["undelivered"] >= down.undelivered
            metrics = (await run.http.get("/metrics")).text
            assert _sample(metrics, 'trader_sink_undelivered_total{sink="redis"}') >= down.undelivered
            assert _sample(metrics, 'trader_sink_available{sink="redis"}') == 0.0
            assert (await run.http.get("/ready")).json()["checks"]["store_writable"] is True
        finally:
            with trio.CancelScope(shield=True):
                await trio.run_process(redis_start(url), capture_stdout=True)
                await redis_wait_ready(url)
        await wait_for(lambda: bus.sink_statistics().available)
        delivered = bus.sink_statistics().delivered
        await wait_for(lambda: bus.sink_statistics().delivered > delivered)  # live events flow again
    up = bus.sink_statistics()
    assert up.outages == 1
    assert up.recovered > 0  # the kept events went to the stream
    client = redis.Redis.from_url(url)
    try:
        await trio.to_thread.run_sync(client.delete, f"{prefix}:events")
    finally:
        client.close()
