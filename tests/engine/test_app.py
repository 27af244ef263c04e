"""`run_trader` end to end against the in-process simulated venue, over real sockets, on the real clock.

Each run is a few seconds with the sim opening an arbitrage gap about every second, so the strategies trade.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio

from trader.app import RunSummary, run_trader
from trader.config import Secret
from trader.integrations.http_server import HttpSettings
from trader.integrations.store.sqlite import open_sqlite_store
from trader.settings import KeySettings, RunSettings, Settings, SimSettings
from trader.venues.polymarket.signing import OrderSigner

TOKEN = "test-admin-token"
GAPS = ("gap_rate_per_min=90", "gap_ttl_secs=3", "dislocation_rate_per_min=0")


def settings(tmp_path: Path, **run: object) -> Settings:
    return Settings(
        run=RunSettings(database_url=f"sqlite:{tmp_path / 'trader.sqlite3'}", drain_secs=2.0, **run),  # type: ignore[arg-type]
        http=HttpSettings(port=0, admin_token=TOKEN),
        sim=SimSettings(markets=4, seed=7, params=GAPS),
    )


@dataclass
class Running:
    engine: object
    http: httpx.AsyncClient
    stop: trio.Event
    result: list[RunSummary] = field(default_factory=list)


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[Running]:
    stop = trio.Event()
    result: list[RunSummary] = []

    async def run(*, task_status: trio.TaskStatus[object]) -> None:
        result.append(await run_trader(config, stop=stop.wait, task_status=task_status))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            engine = await nursery.start(run)
            url = _http_url(engine)
            async with httpx.AsyncClient(base_url=url) as http:
                handle = Running(engine, http, stop, result)
                yield handle
            stop.set()


def _http_url(engine: object) -> str:
    return str(engine.http_url)  # type: ignore[attr-defined]


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll an engine's statistics (it exposes counters, not events) until `predicate` holds, for at most 20 s."""
    with trio.fail_after(20):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.05)


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
async def test_paper_run_trades_the_gaps_and_its_summary_agrees_with_the_store(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        await wait_for(lambda: execution.statistics().orders.fills >= 4)
    (summary,) = run.result
    assert summary.exit_reason == "signal"
    assert summary.mode == "paper"
    assert summary.orders_submitted >= 4
    assert summary.fills >= 4
    assert summary.opportunities >= 1
    assert summary.open_orders_at_exit == 0
    money = summary.to_json()["money"]
    assert isinstance(money, dict)
    assert money["balance_rejections"] == 0  # buying power kept every order within what the wallet holds
    assert {"daily_pnl", "residual_events", "residual_exposure"} <= set(money)
    async with open_sqlite_store(tmp_path / "trader.sqlite3") as store:
        trades = await store.load_trades()
        positions = {p.token_id: p for p in await store.load_positions()}
        opportunities = await store.load_opportunities()
        assert await store.load_pending_intents() == []
    assert len(trades) == summary.fills
    for token, position in summary.positions.items():
        assert positions[token].quantity == Decimal(position["quantity"])
    assert 1 <= len(opportunities) <= summary.opportunities


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
async def test_operator_http_status_metrics_and_emergency_stop(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        await wait_for(lambda: execution.statistics().orders.fills >= 2)
        assert (await run.http.get("/health")).status_code == 200
        ready = await run.http.get("/ready")
        assert ready.json()["checks"]["venue_reachable"] is True
        status = (await run.http.get("/status?full=1")).json()
        assert status["trading_state"] == "ACTIVE"
        assert status["markets"] == 10
        funds = status["funds"]
        assert Decimal(funds["balance"]) == Decimal(funds["available"]) + Decimal(funds["reserved"]) > 0
        assert (funds["missing_allowances"], funds["balance_rejections"]) == ([], 0)
        assert (funds["cash_corrections"], funds["last_correction"]) == (0, None)  # paper: its own book of the wallet
        metrics = (await run.http.get("/metrics")).text
        assert "trader_md_frames_total" in metrics
        assert "trader_fills_total" in metrics
        assert "trader_tick_to_trade_seconds_count" in metrics
        assert "trader_venue_balance_rejections_total 0.0" in metrics
        assert "trader_collateral_usd " in metrics
        assert "trader_arb_residuals_total" in metrics

        assert (await run.http.post("/emergency-stop")).status_code == 401
        stopped = await run.http.post("/emergency-stop", headers={"Authorization": f"Bearer {TOKEN}"})
        assert stopped.status_code == 200
        assert (await run.http.get("/status")).json()["trading_state"] == "HALTED"
        submitted = execution.statistics().orders.submitted
        denied_before = execution.statistics().intents_denied.get("TRADING_HALTED", 0)
        await wait_for(lambda: execution.statistics().intents_denied.get("TRADING_HALTED", 0) > denied_before)
        assert execution.statistics().orders.submitted == submitted  # nothing new went out
        assert (await run.http.get("/ready")).json()["checks"]["books_fresh"] is True  # market data kept running

        resumed = await run.http.post("/resume", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resumed.json() == {"trading_state": "ACTIVE"}
        await wait_for(lambda: execution.statistics().orders.submitted > submitted)


async def test_live_run_against_the_sim_agrees_with_the_sims_own_records(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    address = OrderSigner(key).address
    config = settings(tmp_path, live=True)
    config = Settings(run=config.run, http=config.http, sim=config.sim, keys=KeySettings(private_key=Secret(key)))
    async with running(config) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        sim = run.engine.sim  # type: ignore[attr-defined]
        await wait_for(lambda: execution.statistics().orders.fills >= 4)
        metrics = (await run.http.get("/metrics")).text  # live: the venue's dead-man switch is fed
        run.stop.set()
        await wait_for(lambda: bool(run.result))
        ours = [o for o in sim.exchange.orders() if o.maker_address.lower() == address.lower()]
        open_at_sim = [o for o in ours if o.status == "LIVE"]
        our_trades = [t for t in sim.exchange.trades() if t.taker.maker_address.lower() == address.lower()]
        maker_fills = [
            f for t in sim.exchange.trades() for f in t.makers if f.order.maker_address.lower() == address.lower()
        ]
    (summary,) = run.result
    assert summary.mode == "live"
    assert "trader_heartbeat_enabled 1.0" in metrics
    assert "trader_heartbeat_lapsed 0.0" in metrics
    assert re.search(r"^trader_heartbeats_total [1-9]", metrics, re.M)
    assert "trader_heartbeat_failures_total 0.0" in metrics
    assert summary.orders_submitted == len(ours)
    assert summary.fills == len(our_trades) + len(maker_fills)
    assert summary.open_orders_at_exit == len(open_at_sim) == 0


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
async def test_live_trading_keeps_the_venues_dead_man_heartbeat_by_default(tmp_path: Path) -> None:
    """Live with no heartbeat setting at all: the venue holds a dead-man session for our key, so orders left resting
    by an engine that died are cancelled by the venue (about 10 s after its last heartbeat)."""
    key = "0x" + secrets.token_hex(32)
    config = settings(tmp_path, live=True)
    config = Settings(run=config.run, http=config.http, sim=config.sim, keys=KeySettings(private_key=Secret(key)))
    async with running(config) as run:
        sim = run.engine.sim  # type: ignore[attr-defined]
        await wait_for(lambda: bool(sim.exchange.heartbeat_owners()))
        ours = sim.api_keys.derive(OrderSigner(key).address, 0).api_key  # the key the engine signed in with
        assert sim.exchange.heartbeat_owners() == [ours]
