"""`python -m bench backtest`: frames per second through the whole backtest path, and a quotes day's wall time.

    python -m bench backtest [--recording PATH] [--record-secs 20] [--markets 120] [--step-secs 0.02]
                             [--quotes DIR] [--skip-quotes] [--tick-secs 5] [--runs 3]

1. A recording of at least 100 markets: `--recording`, or one made first by `trader record`'s recorder against the
   in-process sim (`--markets` binary markets of the synthetic scenario, its makers stepping every `--step-secs`,
   for `--record-secs` of real time).
2. Its frames, read into memory, go through the whole backtest path (`trader.app.backtest.run_backtest`: the
   Polymarket parser, the books, the strategies, the risk gate, execution, the paper venue's fills) on the virtual
   clock: frames over wall time, once to warm up (imports, the parser's caches; reported, not counted) and then
   `--runs` times: `frames_per_s` is their median, `frames_per_s_runs` each of them.
3. The same frames through ingest alone (the same feed, parser and `MarketDataService` books, nothing else), warmed
   up and timed the same way: `ingest_frames_per_s`.
4. A backtest of the whole quotes day (`--quotes`, default the full files beside the project,
   `../shared/data/polymarket-quotes`, else the shipped slice), loading included: `quotes_day_secs`.

One JSON object per line; the last carries `frames_per_s`, `ingest_frames_per_s` and `quotes_day_secs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import trio

from trader.app.backtest import (
    BacktestData,
    ReplayFeed,
    quotes_data,
    recording_data,
    run_backtest,
    seed_everything,
    virtual_clock,
)
from trader.app.recording import run_recorder
from trader.app.venue import market_query
from trader.engine.books import Books
from trader.engine.market_data import MarketDataService
from trader.engine.strategy_engine import StrategyEngineSettings
from trader.infra.logging import configure_logging
from trader.settings import RunSettings, Settings, SimSettings, VenueKind

ROOT = Path(__file__).resolve().parent.parent
FULL_QUOTES = ROOT.parent / "shared" / "data" / "polymarket-quotes"
SLICE = ROOT / "trader" / "venues" / "sim" / "data" / "polymarket-quotes"


def _emit(document: dict[str, object]) -> None:
    print(json.dumps(document), flush=True)


async def _record(directory: Path, markets: int, step_secs: float, secs: float) -> None:
    settings = Settings(
        run=RunSettings(venue=VenueKind.SIM, duration_secs=secs),
        sim=SimSettings(markets=markets, seed=1, params=(f"step_secs={step_secs}", "market_lifetime_secs=0")),
    )
    settings = dataclasses.replace(settings, markets=dataclasses.replace(settings.markets, max_markets=10_000))
    await run_recorder(
        settings,
        market_query(settings),
        directory,
        stop=trio.sleep_forever,
        max_file_bytes=1 << 28,
        max_total_bytes=1 << 30,
    )


def _in_memory(data: BacktestData) -> BacktestData:
    frames = list(data.frames)
    data.frames = iter(frames)
    return data


async def _ingest(data: BacktestData) -> int:
    """The feed, the parser and the books of `MarketDataService`, and nothing else."""
    books = Books()
    feed = ReplayFeed()
    service = MarketDataService(feed, books, Settings().market_data)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        for market in data.markets.values():
            service.track(market)
        await feed.wait_following([t for m in data.markets.values() for t in m.token_ids])
        await feed.drive(data.frames)
        nursery.cancel_scope.cancel()
    return feed.sent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench backtest", description=__doc__)
    parser.add_argument("--recording", metavar="PATH")
    parser.add_argument("--record-secs", type=float, default=20.0)
    parser.add_argument("--markets", type=int, default=120)
    parser.add_argument("--step-secs", type=float, default=0.02)
    parser.add_argument("--quotes", metavar="DIR", default=str(FULL_QUOTES if FULL_QUOTES.is_dir() else SLICE))
    parser.add_argument("--skip-quotes", action="store_true")
    parser.add_argument("--tick-secs", type=float, default=5.0, help="the strategy engine's period for the quotes")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the recording, after one to warm up")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    configure_logging(level="CRITICAL", fmt="json", cache_loggers=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.recording) if args.recording else Path(scratch) / "rec"
        if not args.recording:
            started = time.perf_counter()
            trio.run(_record, path, args.markets, args.step_secs, args.record_secs)
            _emit({"stage": "recorded", "secs": round(time.perf_counter() - started, 1), "path": str(path)})
        data = _in_memory(recording_data([path]))
        frames = data.input_frames
        _emit({"stage": "recording", "markets": len(data.markets), "frames": frames})

        full_rates: list[float] = []
        for run in range(args.runs + 1):  # the first warms up: imports, the parser's caches, the allocator
            data = _in_memory(recording_data([path]))
            seed_everything(0)
            started = time.perf_counter()
            result = trio.run(run_backtest, Settings(), data, clock=virtual_clock())
            full_secs = time.perf_counter() - started
            summary = result.summary
            _emit(
                {
                    "stage": "backtest" if run else "backtest_warmup",
                    "frames": result.frames_delivered,
                    "secs": round(full_secs, 3),
                    "frames_per_s": round(result.frames_delivered / full_secs),
                    "orders": summary.orders_submitted,
                    "fills": summary.fills,
                    "virtual_secs": round(result.virtual_secs, 1),
                }
            )
            if run:
                full_rates.append(result.frames_delivered / full_secs)

        ingest_rates: list[float] = []
        for run in range(args.runs + 1):
            data = _in_memory(recording_data([path]))
            started = time.perf_counter()
            ingested = trio.run(_ingest, data, clock=virtual_clock())
            ingest_secs = time.perf_counter() - started
            _emit({"stage": "ingest" if run else "ingest_warmup", "frames": ingested, "secs": round(ingest_secs, 3)})
            if run:
                ingest_rates.append(ingested / ingest_secs)

    quotes_secs: float | None = None
    if not args.skip_quotes:
        engine = StrategyEngineSettings(period_secs=args.tick_secs, full_sweep_secs=60.0)  # as `--quotes` does
        settings = dataclasses.replace(Settings(), strategy_engine=engine)
        started = time.perf_counter()
        quotes = quotes_data(Path(args.quotes))
        seed_everything(0)
        day = trio.run(run_backtest, settings, quotes, clock=virtual_clock())
        quotes_secs = time.perf_counter() - started
        _emit(
            {
                "stage": "quotes_day",
                "path": args.quotes,
                "markets": len(quotes.markets),
                "quotes": day.frames_in,
                "dropped": dict(quotes.dropped),
                "secs": round(quotes_secs, 1),
                "orders": day.summary.orders_submitted,
            }
        )
    _emit(
        {
            "frames_per_s": round(statistics.median(full_rates)),
            "ingest_frames_per_s": round(statistics.median(ingest_rates)),
            "runs": args.runs,
            "frames_per_s_runs": [round(rate) for rate in full_rates],
            "quotes_day_secs": None if quotes_secs is None else round(quotes_secs, 1),
            "recording_markets": len(result.data.markets),
            "recording_frames": frames,
        }
    )
    return 0
