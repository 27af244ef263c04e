"""A recording of what a live paper run saw, backtested, makes the decisions the live run made.

`trader record` and `trader run --venue polymarket` (paper) follow the same simulated venue over real sockets for a
few seconds; `trader backtest` then replays the recording through the engine's core on the virtual clock. The
intents (strategy, token, side, price, size), in order, are the live run's, all of them: both engines decide once per
burst of frames (`StrategyEngineSettings.coalesce_secs`), so a decision depends on the frames and their times only.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from trader.app import run_trader
from trader.app.backtest import recording_data, run_backtest, seed_everything, virtual_clock
from trader.app.recording import run_recorder
from trader.app.venue import market_query
from trader.engine.capital import CapitalSettings
from trader.engine.risk import RiskSettings
from trader.engine.strategy_engine import StrategyEngineSettings
from trader.integrations.http_server import HttpSettings
from trader.settings import EndpointSettings, RunSettings, Settings, VenueKind
from trader.venues.sim.venue import SimConfig, run_sim_venue

GAPS = {"step_secs": "2", "gap_rate_per_min": "180", "gap_ttl_secs": "3", "dislocation_rate_per_min": "0"}
# The sim moves its books once a step (2 s here), sending the step's frames in a burst. With a 0.4 s coalescing
# window the engine decides once per burst, on all of it, live and in the backtest alike (without one, a live decision
# may see half a burst, as the scheduler lets it arrive: no replay can know which half); no periodic tick either,
# whose phase differs between the two runs. The window also gives the live run's order path (the intent journaled
# to SQLite, the paper venue's 50 ms) time to finish an arbitrage before the decision on what its fills left
# (+0.85 s into the step), which the backtest, with no disk, always has; every event stays 1 s from the next step.
ENGINE = StrategyEngineSettings(coalesce_secs=0.4, period_secs=3600.0, full_sweep_secs=3600.0)
# An arbitrage the paper venue filled shows again on the next steps (the sim's book still has it) and is refused as a
# duplicate for `duplicate_window_secs`: a window that is a whole number of steps (the default 2 s) puts a repeat
# exactly on its edge, where a few microseconds of real time decide; 1.5 s leaves a quarter step either side.
RISK = RiskSettings(duplicate_window_secs=1.5)
# A merge lands in the paper wallet 2 s after it is sent (+2.25 s into a step); capital looks every `scan_secs` from
# its own start, whose phase against the sim's steps differs between the two runs: looking often, it sees the landing
# at once in both, and the next decisions size against the same positions.
CAPITAL = CapitalSettings(scan_secs=0.05)

Decision = tuple[str, str, str, Decimal, Decimal]


def _live_settings(tmp_path: Path, urls: object) -> Settings:
    endpoints = EndpointSettings(
        rest_url=urls.rest,  # type: ignore[attr-defined]
        ws_market_url=urls.ws_market,  # type: ignore[attr-defined]
        ws_user_url=urls.ws_user,  # type: ignore[attr-defined]
        gamma_url=urls.gamma,  # type: ignore[attr-defined]
    )
    return Settings(
        run=RunSettings(
            venue=VenueKind.POLYMARKET, database_url=f"sqlite:{tmp_path / 'paper.sqlite3'}", drain_secs=2.0
        ),
        http=HttpSettings(port=0),
        endpoints=endpoints,
        strategy_engine=ENGINE,
        risk=RISK,
        capital=CAPITAL,
    )


async def _live(tmp_path: Path, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(
            run_sim_venue, SimConfig(scenario="synthetic", markets=8, seed=7, scenario_params=GAPS)
        )
        settings = _live_settings(tmp_path, sim.urls)
        stop = trio.Event()
        stop_recording = trio.Event()
        recorded = trio.Event()

        async def record() -> None:
            await run_recorder(
                settings,
                market_query(settings),
                tmp_path / "rec",
                stop=stop_recording.wait,
                max_file_bytes=1 << 24,
                max_total_bytes=1 << 26,
            )
            recorded.set()

        await nursery.start(partial_start, record)
        await trio.sleep(0.5)  # the recorder has its books before the engine subscribes
        nursery.start_soon(_stop_after, stop, seconds)
        await run_trader(settings, stop=stop.wait)
        stop_recording.set()  # after the engine's last decision: the recording holds every frame it decided on
        await recorded.wait()
        nursery.cancel_scope.cancel()


async def _stop_after(stop: trio.Event, seconds: float) -> None:
    await trio.sleep(seconds)
    stop.set()


async def partial_start(function: object, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await function()  # type: ignore[operator]


def _decision(strategy: str, token: str, side: str, price: object, size: object) -> Decision:
    return (strategy, token, str(side), Decimal(str(price)).normalize(), Decimal(str(size)).normalize())


@pytest.mark.timeout(60)  # a few seconds of live trading, then the backtest
def test_a_backtest_of_the_recording_makes_the_live_runs_decisions(tmp_path: Path) -> None:
    trio.run(_live, tmp_path, 16.0)
    with sqlite3.connect(tmp_path / "paper.sqlite3") as db:
        live = [
            _decision(*row)
            for row in db.execute(
                "SELECT strategy, token_id, side, price, size FROM order_intents "
                "ORDER BY created_at_ns, client_order_id"
            )
        ]
    assert len(live) >= 10  # the live run traded the gaps (18 decisions in a usual run)
    seed_everything(0)
    result = trio.run(
        run_backtest,
        Settings(strategy_engine=ENGINE, risk=RISK, capital=CAPITAL),
        recording_data([tmp_path / "rec"]),
        clock=virtual_clock(),
    )
    backtest = [_decision(r.strategy, r.token_id, r.side, r.price, r.size) for r in result.store.intents.values()]
    # The recording goes on a little after the engine stopped deciding (its drain): decisions of that tail may follow.
    assert backtest[: len(live)] == live
