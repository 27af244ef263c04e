"""`trader backtest`: the engine's strategies, risk gate, execution and paper venue over recorded market data.

    trader backtest --recording rec/ --out report/
    trader backtest --quotes trader/venues/sim/data/polymarket-quotes --out report/
    trader backtest --recording rec/ --param sum_to_100.min_edge_usd=0.005,0.01,0.02 --out sweep/

The input is a recording (`trader record`; files or directories) or the Polymarket quotes dataset (a directory of
`quotes-*.csv.gz`; the slice shipped in `trader/venues/sim/data/polymarket-quotes` by default, or the full files).
It runs on a virtual clock as fast as the CPU allows (`trader.app.backtest`) and writes the report directory:
`summary.json`, `orders.csv`, `fills.csv`, `report.html`. The same input, settings and `--seed` give byte-identical
reports: each backtest runs in a process of its own started with `PYTHONHASHSEED=0`.

`--param SECTION.KEY=V1,V2,...` (repeatable) sets a setting (`TRADER_<SECTION>__<KEY>`) for the run; with more than
one value, every combination runs, in parallel processes (`--jobs`, default the number of CPUs), each into
`OUT/<n>-<values>/`, and one comparison table is printed (and written to `OUT/sweep.csv`). Settings come from the
environment and `.env` as for `trader run`; `--param` wins.

Exit 0 when every run finished; 1 when one failed; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import itertools
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trader.commands.checks import add_env_file_argument, env_file, make_output_directory
from trader.config import merged_environment
from trader.errors import ConfigError, RuntimeFailure

SHIPPED_QUOTES = Path(__file__).resolve().parent.parent / "venues" / "sim" / "data" / "polymarket-quotes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recording", nargs="+", metavar="PATH", help="recording files or directories")
    source.add_argument(
        "--quotes",
        nargs="?",
        const=str(SHIPPED_QUOTES),
        metavar="DIR",
        help="the quotes dataset (default: the slice shipped with trader)",
    )
    source.add_argument("--scenario", metavar="NAME", help="a sim scenario, run on the virtual clock for --duration")
    parser.add_argument("--duration", type=float, default=600.0, metavar="SECS", help="--scenario: virtual seconds")
    parser.add_argument("--markets", type=int, default=8, metavar="N", help="--scenario: binary markets (8)")
    parser.add_argument(
        "--scenario-param", action="append", default=[], metavar="K=V", help="--scenario: a scenario parameter"
    )
    parser.add_argument(
        "--out", default="backtest-report", metavar="DIR", help="report directory (default ./backtest-report)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="SECTION.KEY=V1,V2", help="a setting, or values to sweep"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N", help="parallel processes")
    parser.add_argument("--slug", action="append", default=[], metavar="SLUG", help="--quotes: only these markets")
    parser.add_argument("--max-markets", type=int, metavar="N", help="--quotes: at most N markets")
    parser.add_argument("--levels", type=int, default=5, metavar="N", help="--quotes: depth levels per side (5)")
    parser.add_argument(
        "--tick-secs",
        type=float,
        metavar="SECS",
        help="the strategy engine's period (TRADER_STRATEGY_ENGINE__PERIOD_SECS; --quotes default 5, and a full "
        "sweep every 60 s: the quotes change every ~2 minutes)",
    )
    add_env_file_argument(parser)


@dataclass(frozen=True, slots=True)
class Job:
    index: int
    env: dict[str, str]  # the settings' environment, params applied
    params: dict[str, str]
    recording: list[str] | None
    quotes: str | None
    scenario: str | None
    scenario_params: list[str]
    markets: int
    duration: float
    slugs: list[str]
    max_markets: int | None
    levels: int
    seed: int
    out: str


def parse_params(specs: list[str]) -> list[tuple[str, str, list[str]]]:
    """(`section.key`, its variable, values) of each `--param`."""
    out = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        section, dot, key = name.partition(".")
        if not sep or not dot or not section or not key or not values:
            raise ConfigError(
                f"--param {spec!r}: expected SECTION.KEY=VALUE[,VALUE...], e.g. sum_to_100.min_edge_usd=0.01"
            )
        variable = f"TRADER_{section.upper()}__{key.upper()}"
        out.append((name, variable, [v.strip() for v in values.split(",") if v.strip()]))
    return out


def run_job(job: Job) -> dict[str, object]:
    """One backtest (in a worker process): returns the headline numbers and the wall time."""
    import trio  # noqa: PLC0415 - the worker's imports

    from trader.app.backtest import (  # noqa: PLC0415
        BacktestData,
        SimData,
        quotes_data,
        recording_data,
        run_backtest,
        seed_everything,
        virtual_clock,
    )
    from trader.app.backtest_report import write_report  # noqa: PLC0415
    from trader.infra.logging import configure_logging  # noqa: PLC0415
    from trader.settings import load_settings  # noqa: PLC0415
    from trader.venues.sim.venue import SimConfig  # noqa: PLC0415

    settings = load_settings(job.env, dotenv=None)
    configure_logging(level="ERROR", fmt="json", cache_loggers=True)
    started = time.perf_counter()
    data: BacktestData | SimData
    if job.recording is not None:
        data = recording_data(job.recording)
    elif job.scenario is not None:
        params = dict(p.split("=", 1) for p in job.scenario_params if "=" in p)
        config = SimConfig(scenario=job.scenario, markets=job.markets, seed=job.seed, scenario_params=params)
        data = SimData(config=config, duration_secs=job.duration)
    else:
        assert job.quotes is not None
        data = quotes_data(
            Path(job.quotes), seed=job.seed, levels=job.levels, slugs=job.slugs, max_markets=job.max_markets
        )
    seed_everything(job.seed)
    result = trio.run(run_backtest, settings, data, clock=virtual_clock())
    wall = time.perf_counter() - started
    summary = write_report(result, Path(job.out), {**job.params, "seed": str(job.seed)})
    equity = summary["equity"]
    assert isinstance(equity, dict)
    return {
        "index": job.index,
        "params": job.params,
        "out": job.out,
        "frames": result.frames_in,
        "orders": summary["orders"],
        "fills": summary["fills"],
        "fill_ratio": summary["fill_ratio"],
        "pnl": equity["pnl"],
        "max_drawdown": equity["max_drawdown"],
        "dropped": summary["input"]["dropped_total"],  # type: ignore[index]
        "wall_secs": round(wall, 3),
        "frames_per_s": round(result.frames_in / wall, 1) if wall > 0 else None,
        "pid": os.getpid(),
    }


def _jobs(args: argparse.Namespace) -> list[Job]:
    from trader.settings import load_settings  # noqa: PLC0415

    base = dict(os.environ)
    dotenv = env_file(args)
    if args.tick_secs is not None:
        base["TRADER_STRATEGY_ENGINE__PERIOD_SECS"] = str(args.tick_secs)
    elif args.quotes is not None:  # quotes change every ~2 minutes: look less often (a day has thousands of markets)
        base.setdefault("TRADER_STRATEGY_ENGINE__PERIOD_SECS", "5")
        base.setdefault("TRADER_STRATEGY_ENGINE__FULL_SWEEP_SECS", "60")
    params = parse_params(args.param)
    combos = list(itertools.product(*[[(name, var, v) for v in values] for name, var, values in params])) or [()]
    out = Path(args.out)
    jobs = []
    for index, combo in enumerate(combos, start=1):
        env = dict(base)
        chosen: dict[str, str] = {}
        for name, variable, value in combo:
            env[variable] = value
            chosen[name] = value
        load_settings(env, dotenv=dotenv)  # a bad name or value: exit 2 here, before any process starts
        env = dict(merged_environment(env, dotenv))
        label = "-".join(f"{v}" for v in chosen.values())
        directory = out if len(combos) == 1 else out / f"{index:02d}-{label}"
        jobs.append(
            Job(
                index=index,
                env={k: v for k, v in env.items() if k.startswith("TRADER_")},
                params=chosen,
                recording=args.recording,
                quotes=args.quotes,
                scenario=args.scenario,
                scenario_params=list(args.scenario_param),
                markets=args.markets,
                duration=args.duration,
                slugs=list(args.slug),
                max_markets=args.max_markets,
                levels=args.levels,
                seed=args.seed,
                out=str(directory),
            )
        )
    return jobs


def _table(rows: list[dict[str, object]], names: list[str]) -> str:
    columns = [*names, "orders", "fills", "fill_ratio", "pnl", "max_drawdown", "dropped", "wall_secs"]
    cells = [[str(r["params"].get(n, "")) for n in names] + [str(r[c]) for c in columns[len(names) :]] for r in rows]  # type: ignore[attr-defined]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.recording is not None:
        from trader.infra.recording import RecordingError, recording_files  # noqa: PLC0415

        try:
            recording_files(args.recording)
        except RecordingError as exc:
            raise ConfigError(str(exc)) from None
    elif args.quotes is not None:
        if not Path(args.quotes).is_dir():
            raise ConfigError(f"--quotes {args.quotes}: not a directory")
        if not any(Path(args.quotes).glob("quotes-*.csv.gz")):
            raise ConfigError(f"--quotes {args.quotes}: no quotes-*.csv.gz files there (give the dataset's directory)")
        if not 1 <= args.levels <= 50:
            raise ConfigError(f"--levels must be within 1..50, got {args.levels}")
        if args.max_markets is not None and args.max_markets < 1:
            raise ConfigError(f"--max-markets must be at least 1, got {args.max_markets}")
    elif args.scenario is not None:
        if args.markets < 1:
            raise ConfigError(f"--markets must be at least 1, got {args.markets}")
        from trader.venues.sim.scenarios import ScenarioOptions, make_scenario  # noqa: PLC0415

        params = dict(p.split("=", 1) for p in args.scenario_param if "=" in p)
        make_scenario(args.scenario, ScenarioOptions(markets=args.markets, seed=args.seed, params=params))
        if not args.duration > 0:
            raise ConfigError(f"--duration must be > 0, got {args.duration}")
    jobs = _jobs(args)
    make_output_directory(Path(args.out), what=f"--out {args.out}")  # before the runs, not when their reports are due
    os.environ["PYTHONHASHSEED"] = "0"  # the workers start with it: sets and dicts of strings iterate alike
    context = multiprocessing.get_context("spawn")
    results: list[dict[str, object]] = []
    failed: list[str] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                results.append(future.result())
            except Exception as exc:  # one failed run is reported; the others still finish
                failed.append(f"run {job.index} {job.params}: {exc}" if len(jobs) > 1 else str(exc))
    results.sort(key=lambda r: int(str(r["index"])))
    names = list(jobs[0].params)
    if len(jobs) == 1 and results:
        print(json.dumps(results[0]))
    elif results:
        print(_table(results, names))
        text = io.StringIO()
        writer = csv.DictWriter(
            text, fieldnames=[*names, *[k for k in results[0] if k != "params"]], lineterminator="\n"
        )
        writer.writeheader()
        for row in results:
            writer.writerow({**{n: row["params"][n] for n in names}, **{k: v for k, v in row.items() if k != "params"}})  # type: ignore[index]
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "sweep.csv").write_text(text.getvalue())
    for line in failed:
        print(f"trader: backtest failed: {line}", file=sys.stderr)
    if failed:
        raise RuntimeFailure(f"{len(failed)} of {len(jobs)} backtests failed (see above)")
    return 0
