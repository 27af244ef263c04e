"""Money that survives a restart: the day's loss keeps counting against the limit, the paper wallet keeps its cash,
and paper and live records never share a database.

The daily-loss test runs on every store of the contract (memory, SQLite, PostgreSQL: `store_factory`); the paper
runs are `run_trader` against the in-process sim, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from trader.app import run_trader
from trader.config import Secret
from trader.domain.intents import Intent
from trader.domain.positions import Portfolio, Position
from trader.domain.risk import TradingState
from trader.engine.execution import ExecutionService, ExecutionSettings
from trader.engine.order_manager import OrderManager
from trader.engine.risk import BookHealth, RiskCode, RiskGate, RiskSettings
from trader.errors import ConfigError
from trader.integrations.store import Store, StoreScope, TradingMode, open_sqlite_store
from trader.integrations.store.postgres import PostgresSettings, open_postgres_store
from trader.settings import KeySettings, RunSettings, Settings, StoreSettings, VenueKind, default_database_url
from trader.testing.fake_venue import FakeVenue

from ..integrations.test_store import StoreFactory, store_factory  # noqa: F401  (the fixture: every store)
from .test_app import running, settings, wait_for
from .test_app_persistence import pg_schema  # noqa: F401  (the fixture)

D = Decimal
YES = "1001"
DAY = dt.date(2026, 5, 1)
WALL = dt.datetime(2026, 5, 1, 15, 0, tzinfo=dt.UTC).timestamp()  # within that risk day (reset at 00:00 UTC)


# -- the day's loss ----------------------------------------------------------------------------------------------


@asynccontextmanager
async def engine_on(store: Store, mark: list[Decimal]) -> AsyncIterator[ExecutionService]:
    """Execution over `store` as a starting engine builds it (the portfolio from the stored positions, the risk day
    from the stored PnL), with a daily-loss limit of 100; `mark[0]` is YES's mark."""
    portfolio = Portfolio(cash=D(1000), positions=await store.load_positions())
    manager = OrderManager(FakeVenue(wall=WALL), store, portfolio=portfolio, wall_ns=lambda: int(WALL * 1e9))
    _send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(
        manager,
        RiskGate(RiskSettings(max_daily_loss_usd=D(100))),
        receive,
        settings=ExecutionSettings(pnl_interval_secs=0.01),
        book_health=lambda _token: BookHealth(age_ms=0.0),
        marks=lambda: {YES: mark[0]},
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield service
        nursery.cancel_scope.cancel()


async def until(predicate: Callable[[], Awaitable[bool]]) -> None:
    with trio.fail_after(10):
        while not await predicate():  # noqa: ASYNC110 - polls a store and the PnL loop, which run on their own
            await trio.sleep(0.01)


def holds(value: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await trio.lowlevel.checkpoint()
        return value()

    return check


async def test_a_restart_does_not_reset_the_daily_loss(store_factory: StoreFactory) -> None:  # noqa: F811
    held = Position(token_id=YES, quantity=D(400), cost_basis=D(200))  # 400 YES bought at 0.50
    mark = [D("0.50")]
    async with store_factory() as store:
        await store.record_position(held, ts_ns=1)
        async with engine_on(store, mark) as run:
            await until(holds(lambda: run.risk.day_baseline is not None))  # the day begins flat
            mark[0] = D("0.2525")  # 400 x 0.2525 - 200 = -99: within the limit

            async def stored_loss() -> bool:
                record = await store.load_daily_pnl(DAY)
                return record is not None and record.pnl == D(-99)

            await until(stored_loss)
        assert run.risk.state is TradingState.ACTIVE
    async with store_factory() as store:  # the engine starts again, the same day
        async with engine_on(store, mark) as run:
            assert run.risk.daily_pnl == D(-99)  # counted from the day's stored start, not from now
            mark[0] = D("0.005")  # another 99: 400 x 0.005 - 200 = -198

            async def stopped() -> bool:
                return bool(await store.load_risk_events())

            await until(stopped)  # the breach is an emergency stop, recorded
            assert run.risk.state is TradingState.HALTED
            assert run.risk.daily_pnl == D(-198)
            assert run.statistics().emergency_stops == 1
        events = await store.load_risk_events()
        assert [(e.kind, e.detail["reason"]) for e in events] == [("EMERGENCY_STOP", RiskCode.RISK_DAILY_LOSS)]


# -- the paper wallet --------------------------------------------------------------------------------------------


async def _paper_run(config: Settings, fills: int) -> tuple[Decimal, dict[str, Decimal], Decimal, dict[str, Decimal]]:
    """Run until `fills` fills (0: start and stop): (cash and positions at start, cash and positions at exit)."""
    async with running(config) as run:
        core = run.engine.control.core  # type: ignore[attr-defined]
        paper = run.engine.control.venue.paper  # type: ignore[attr-defined]
        portfolio = core.manager.portfolio
        start_cash = portfolio.cash
        start_positions = {t: p.quantity for t, p in portfolio.positions.items() if p.quantity}
        assert paper.cash == start_cash  # the wallet and the portfolio agree from the start
        assert await paper.positions() == start_positions
        if fills:
            await wait_for(lambda: core.execution.statistics().orders.fills >= fills)
    (summary,) = run.result
    positions = {token: D(p["quantity"]) for token, p in summary.positions.items() if D(p["quantity"])}
    return start_cash, start_positions, summary.cash, positions


async def _restart_keeps_the_paper_wallet(config: Settings) -> None:
    cash, positions, left_cash, left_positions = await _paper_run(config, 4)
    assert (cash, positions) == (D(1000), {})
    assert left_cash < cash
    assert left_positions
    cash, positions, _, _ = await _paper_run(config, 0)
    assert (cash, positions) == (left_cash, left_positions)  # not the starting cash again beside the positions


async def test_a_paper_restart_keeps_its_cash_on_sqlite(tmp_path: Path) -> None:
    await _restart_keeps_the_paper_wallet(settings(tmp_path))


@pytest.mark.pg
async def test_a_paper_restart_keeps_its_cash_on_postgresql(
    tmp_path: Path,
    pg_schema: PostgresSettings,  # noqa: F811
) -> None:
    config = settings(tmp_path)
    config = dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, database_url=pg_schema.url),
        store=StoreSettings(schema=pg_schema.schema),
    )
    await _restart_keeps_the_paper_wallet(config)
    async with open_postgres_store(pg_schema) as store:
        assert await store.load_scope() == StoreScope(mode=TradingMode.PAPER, venue="sim")
        wallet = await store.load_paper_wallet()
    assert wallet is not None
    assert wallet.reserved == 0  # the run cancelled its resting orders when it stopped


# -- paper and live apart ----------------------------------------------------------------------------------------


def test_each_scope_has_its_own_default_database() -> None:
    assert RunSettings().store_url == "sqlite:trader.sqlite3"  # the quick start's
    assert RunSettings(live=True).store_url == "sqlite:trader-live-sim.sqlite3"
    assert RunSettings(venue=VenueKind.POLYMARKET).store_url == "sqlite:trader-paper-polymarket.sqlite3"
    live = RunSettings(venue=VenueKind.POLYMARKET, live=True)
    assert live.store_url == default_database_url(live=True, venue=VenueKind.POLYMARKET)
    assert live.store_url == "sqlite:trader-live-polymarket.sqlite3"
    assert RunSettings(live=True, database_url="sqlite:mine.sqlite3").store_url == "sqlite:mine.sqlite3"


async def test_a_live_run_refuses_a_paper_database_and_names_the_fix(tmp_path: Path) -> None:
    paper = settings(tmp_path)
    await _paper_run(paper, 0)  # the paper run claims the database
    key = "0x" + secrets.token_hex(32)
    live = dataclasses.replace(
        paper, run=dataclasses.replace(paper.run, live=True), keys=KeySettings(private_key=Secret(key))
    )
    with pytest.raises(ConfigError) as refused:  # a setting to change: `trader run` prints it and exits 2
        await run_trader(live, stop=trio.sleep_forever)
    message = str(refused.value)
    assert "keeps the records of paper trading on sim, not of live trading on sim for wallet 0x" in message
    assert "(unset, it uses sqlite:trader-live-sim.sqlite3)" in message
    async with open_sqlite_store(tmp_path / "trader.sqlite3") as store:  # untouched: still the paper store
        assert await store.load_scope() == StoreScope(mode=TradingMode.PAPER, venue="sim")
