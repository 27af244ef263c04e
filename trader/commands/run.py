"""`trader run`: the engine. Paper trading against the built-in simulated venue unless told otherwise.

Ctrl+C (SIGINT) or SIGTERM drains gracefully: strategies stop, in-flight orders finish within `drain_secs`, resting
orders are cancelled, the store is flushed, the summary is printed, and the exit status is 0. A second Ctrl+C cuts
the drain short (exit status 130). Live trading needs keys, `--live` AND `TRADER_CONFIRM_LIVE=yes`.

Before anything starts, the settings are checked (exit 2 with one line naming the cause and the fix): the HTTP
port is free, the SQLite file and the `--summary-json` file can be written, the Redis URL is one, the sim's
scenario exists. A database that cannot be reached at start is exit 1; Redis that cannot be reached is not an
error (events are an output that never stands in the way of trading, at start as later: the sink retries).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import structlog
import trio

from trader.app import RunSummary, run_trader
from trader.commands.checks import (
    DATABASE_FLAGS,
    Listen,
    add_env_file_argument,
    bind_error,
    check_file_writable,
    check_port_free,
    check_redis_url,
    check_sqlite_path,
    env_file,
    is_bind_error,
)
from trader.errors import ConfigError, InputError, RuntimeFailure
from trader.infra.groups import collapse_group
from trader.infra.logging import configure_logging, console_chosen
from trader.integrations.store.base import StoreError
from trader.integrations.store.open import intent_journal_path
from trader.integrations.store.urls import sqlite_path
from trader.settings import Settings, VenueKind, load_settings
from trader.venues.errors import VenueError
from trader.venues.sim.scenarios import ScenarioOptions, make_scenario, scenario_names

log = structlog.get_logger(__name__)

CONFIRM_VARIABLE = "TRADER_CONFIRM_LIVE"
EXIT_ABORTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--venue",
        choices=[v.value for v in VenueKind],
        help="sim: start the simulated venue in-process (default); polymarket: the configured endpoints",
    )
    parser.add_argument("--live", action="store_true", help=f"send real orders (needs keys and {CONFIRM_VARIABLE}=yes)")
    parser.add_argument("--duration", type=_positive, metavar="SECS", help="stop by itself after SECS (a drain)")
    parser.add_argument("--http-port", type=_port, metavar="N", help="the operator HTTP port (default 8080; 0: any)")
    parser.add_argument("--http-host", metavar="HOST", help="the operator HTTP address (default 127.0.0.1)")
    parser.add_argument("--summary-json", metavar="PATH", help="write the exit summary there as JSON")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite:PATH or postgresql://... (default: one SQLite file per mode and venue, sqlite:trader.sqlite3 "
        "for paper against the sim)",
    )
    parser.add_argument("--redis-url", metavar="URL", help="also publish events to this Redis")
    parser.add_argument("--markets", type=_positive_int, metavar="N", help="--venue sim: how many binary markets")
    parser.add_argument("--scenario", metavar="NAME", help="--venue sim: the scenario (default synthetic)")
    parser.add_argument("--seed", type=int, metavar="S", help="--venue sim: the scenario's seed")
    parser.add_argument(
        "--log-format",
        choices=["auto", "console", "json"],
        help="console: lines for people (market names, a status line); json: one JSON object a line; auto "
        "(default, TRADER_RUN__LOG_FORMAT): console on a terminal, JSON otherwise",
    )
    add_env_file_argument(parser)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [0, 65535], got {value}")
    return value


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    """The settings: environment and `.env`, then the command line on top. Live mode is checked here."""
    settings = load_settings(environ, dotenv=env_file(args))
    venue = VenueKind(args.venue) if args.venue is not None else settings.run.venue
    if venue is not VenueKind.SIM:  # the sim's flags would be ignored: say so rather than run without them
        given = [
            flag
            for flag, value in (("--markets", args.markets), ("--scenario", args.scenario), ("--seed", args.seed))
            if value is not None
        ]
        if given:
            these, are, them = (given[0], "is", "it") if len(given) == 1 else (" and ".join(given), "are", "them")
            raise ConfigError(
                f"{these} {are} only for --venue sim (this run is --venue {venue}): remove {them}, or use --venue sim"
            )
    run = settings.run
    changes: dict[str, object] = {}
    if args.venue is not None:
        changes["venue"] = VenueKind(args.venue)
    if args.duration is not None:
        changes["duration_secs"] = args.duration
    if args.summary_json is not None:
        changes["summary_json"] = args.summary_json
    if args.database_url is not None:
        sqlite_path(args.database_url)  # a scheme that is neither is named, with the two that are
        changes["database_url"] = args.database_url
    if args.redis_url is not None:
        changes["redis_url"] = args.redis_url
    if getattr(args, "log_format", None) is not None:
        changes["log_format"] = args.log_format
    if run.live and not args.live:
        raise ConfigError("live trading needs --live on the command line (TRADER_RUN__LIVE alone is not enough)")
    changes["live"] = bool(args.live)
    try:
        run = dataclasses.replace(run, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    http = settings.http
    if args.http_port is not None:
        http = dataclasses.replace(http, port=args.http_port)
    if args.http_host is not None:
        http = dataclasses.replace(http, host=args.http_host)
    sim = settings.sim
    if args.markets is not None:
        sim = dataclasses.replace(sim, markets=args.markets)
    if args.scenario is not None:
        sim = dataclasses.replace(sim, scenario=args.scenario)
    if args.seed is not None:
        sim = dataclasses.replace(sim, seed=args.seed)
    settings = dataclasses.replace(settings, run=run, http=http, sim=sim)
    if run.live:
        if environ.get(CONFIRM_VARIABLE, "").strip().lower() != "yes":
            raise ConfigError(f"live trading needs {CONFIRM_VARIABLE}=yes in the environment as well as --live")
        if settings.keys.private_key is None:
            raise ConfigError("live trading needs TRADER_PRIVATE_KEY")
    return settings


def check_before_start(settings: Settings) -> None:
    """What can be checked before anything starts, each a `ConfigError` naming the cause and the fix."""
    run = settings.run
    database = sqlite_path(run.store_url)
    if database is not None:
        check_sqlite_path(database)
    journal = intent_journal_path(run.store_url, settings.store)
    if journal is not None and (database is None or journal.parent != database.parent):
        check_file_writable(journal, what=f"intent journal {journal} (TRADER_STORE__INTENT_JOURNAL)")
    if run.redis_url is not None:
        check_redis_url(run.redis_url)
    if run.summary_json:
        check_file_writable(Path(run.summary_json), what=f"--summary-json {run.summary_json}")
    if run.venue is VenueKind.SIM:
        _check_scenario(settings)
    check_port_free(http_listen(settings))


def http_listen(settings: Settings) -> Listen:
    http = settings.http
    return Listen(http.host, http.port, "HTTP", "--http-port or TRADER_HTTP__PORT", "--http-host or TRADER_HTTP__HOST")


def _check_scenario(settings: Settings) -> None:
    sim = settings.sim
    if sim.scenario not in scenario_names():
        raise ConfigError(
            f"unknown scenario {sim.scenario!r} (--scenario or TRADER_SIM__SCENARIO): "
            f"choose one of {', '.join(scenario_names())}"
        )
    params: dict[str, str] = {}
    for item in sim.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"TRADER_SIM__PARAMS: expected KEY=VALUE items separated by commas, got {item!r}")
        params[key] = value
    try:  # the scenario's own checks of its parameters, as `trader sim` makes them
        make_scenario(sim.scenario, ScenarioOptions(markets=sim.markets, seed=sim.seed, params=params))
    except InputError as exc:
        raise ConfigError(f"TRADER_SIM__PARAMS: {exc}") from None


def for_the_operator(exc: BaseException, settings: Settings) -> BaseException:
    """The error to report for what stopped the engine: the database or the venue failing (at start: they are not
    retried for ever), or the HTTP port taken after the early check (a race), get a line that says what to do;
    anything else is itself."""
    if isinstance(exc, StoreError):
        return RuntimeFailure(f"database: {exc} (is the server up, and {DATABASE_FLAGS} right?)")
    if isinstance(exc, VenueError):
        hint = "" if settings.run.venue is VenueKind.SIM else " (is the venue up, and TRADER_ENDPOINTS__* right?)"
        return RuntimeFailure(f"venue: {exc}{hint}")
    if is_bind_error(exc):  # the HTTP server's port, taken after the check
        return ConfigError(bind_error(exc, http_listen(settings)))
    return exc


async def watch_signals(
    drain: trio.Event, abort: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """First SIGINT/SIGTERM: drain. Second: abort. Runs OUTSIDE the scope it cancels, so the second signal is seen."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not drain.is_set():
                log.warning("signal_received_draining", signal=name)
                drain.set()
            else:
                log.warning("signal_received_aborting", signal=name)
                abort.set()
                return


async def main(settings: Settings) -> RunSummary | None:
    """Run the engine under the signal watcher; None when a second signal aborted it."""
    drain, abort = trio.Event(), trio.Event()
    summary: RunSummary | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_signals, drain, abort)
        with trio.CancelScope() as run_scope:
            nursery.start_soon(_cancel_on, abort, run_scope)
            summary = await run_trader(settings, stop=drain.wait, abort=abort)
        nursery.cancel_scope.cancel()
    return summary


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _terminate_early(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def _for_a_person(settings: Settings) -> bool:
    """The summary in words when stdout is a terminal and the console is on (JSON for pipes and `--log-format
    json`; `--summary-json` always writes JSON)."""
    return sys.stdout.isatty() and console_chosen(settings.run.log_format)


def run(args: argparse.Namespace) -> int:
    # Until the engine's own signal watcher is installed, SIGTERM must still end the process: as PID 1 in a
    # container its default action is ignored (and the stop would end in SIGKILL).
    signal.signal(signal.SIGTERM, _terminate_early)
    settings = settings_from(args, dict(os.environ))
    check_before_start(settings)
    configure_logging(level=settings.run.log_level, fmt=settings.run.log_format, cache_loggers=True)
    try:
        summary = trio.run(main, settings)
    except BaseException as exc:
        inner = collapse_group(exc) if isinstance(exc, BaseExceptionGroup) else exc
        reported = for_the_operator(inner, settings)
        if reported is inner:
            raise
        raise reported from exc
    if summary is None:
        print("trader: aborted by a second signal; resting orders may remain at the venue", file=sys.stderr)
        return EXIT_ABORTED
    document = summary.to_json()
    text = json.dumps(document, default=_json_default)  # one line: log shippers read stdout too
    print(summary.to_text() if _for_a_person(settings) else text)
    if settings.run.summary_json:
        try:
            Path(settings.run.summary_json).write_text(text + "\n")
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot write the summary to {settings.run.summary_json}: {exc.strerror} (it is on stdout above)"
            ) from exc
    return 0
