"""`trader record --out DIR`: write the market channel of the selected markets to a recording, until Ctrl+C.

The markets are those `trader run` would follow (`TRADER_MARKETS__*`, at most `TRADER_MARKETS__MAX_MARKETS`), or the
`--slug`s given; `--venue sim` records the in-process simulated venue, `--venue polymarket` the configured endpoints
(Polymarket, or a `trader sim` they point at). Every frame is written as received with its receive time, connection
and sequence, into gzip'd JSON-lines files that rotate at `--max-file-mb` and are deleted oldest first beyond
`--max-total-mb`; a disconnect is written as a gap, and a restart into the same directory continues with the next
file (the time it was down is a gap). A terminal shows frames, markets, bytes and gaps as they grow; otherwise one
JSON line every 10 s. Exit 0 on Ctrl+C or after `--duration`, with the totals as one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import trio

from trader.app.recording import RecorderProgress, run_recorder
from trader.app.venue import market_query
from trader.commands.checks import add_env_file_argument, env_file, make_output_directory
from trader.errors import ConfigError
from trader.infra.logging import configure_logging
from trader.settings import Settings, VenueKind, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", required=True, metavar="DIR", help="the recording's directory (created if needed)")
    parser.add_argument("--venue", choices=[v.value for v in VenueKind], help="sim (in-process) or polymarket")
    parser.add_argument("--slug", action="append", default=[], metavar="SLUG", help="record this market (repeatable)")
    parser.add_argument("--duration", type=float, metavar="SECS", help="stop by itself after SECS")
    parser.add_argument("--max-file-mb", type=float, default=64.0, metavar="MB", help="rotate files at (default 64)")
    parser.add_argument(
        "--max-total-mb", type=float, default=1024.0, metavar="MB", help="delete oldest files beyond (default 1024)"
    )
    parser.add_argument("--markets", type=int, metavar="N", help="--venue sim: how many binary markets")
    parser.add_argument("--scenario", metavar="NAME", help="--venue sim: the scenario (default synthetic)")
    parser.add_argument("--seed", type=int, metavar="S", help="--venue sim: the scenario's seed")
    add_env_file_argument(parser)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(dict(os.environ), dotenv=env_file(args))
    run = settings.run
    if args.venue is not None:
        run = dataclasses.replace(run, venue=VenueKind(args.venue))
    if args.duration is not None:
        if not args.duration > 0:
            raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
        run = dataclasses.replace(run, duration_secs=args.duration)
    sim = settings.sim
    for name in ("markets", "scenario", "seed"):
        value = getattr(args, name)
        if value is not None:
            if run.venue is not VenueKind.SIM:
                raise ConfigError(f"--{name} is only for --venue sim: remove it, or use --venue sim")
            sim = dataclasses.replace(sim, **{name: value})
    markets = settings.markets
    if args.slug:
        markets = dataclasses.replace(markets, slugs=tuple(args.slug))
    return dataclasses.replace(settings, run=run, sim=sim, markets=markets)


def _bytes(mb: float, flag: str) -> int:
    if not mb > 0:
        raise ConfigError(f"{flag} must be > 0, got {mb}")
    return int(mb * 1024 * 1024)


class _Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.ticks = 0

    def __call__(self, p: RecorderProgress) -> None:
        self.ticks += 1
        if self.tty:
            sys.stderr.write(
                f"\rrecording {p.directory}: {p.frames} frames, {p.markets} markets, "
                f"{p.bytes / 1024:.1f} KiB, {p.gaps} gaps  "
            )
            sys.stderr.flush()
        elif self.ticks % 10 == 0:
            print(json.dumps({"progress": p.to_json()}), file=sys.stderr)


async def _main(settings: Settings, args: argparse.Namespace, progress: _Progress) -> RecorderProgress:
    async def stop() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                return

    return await run_recorder(
        settings,
        market_query(settings),
        Path(args.out),
        stop=stop,
        max_file_bytes=_bytes(args.max_file_mb, "--max-file-mb"),
        max_total_bytes=_bytes(args.max_total_mb, "--max-total-mb"),
        on_progress=progress,
    )


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.max_total_mb < args.max_file_mb:
        raise ConfigError("--max-total-mb must be at least --max-file-mb")
    make_output_directory(Path(args.out), what=f"--out {args.out}")
    configure_logging(level="WARNING", fmt=settings.run.log_format, cache_loggers=True)
    progress = _Progress()
    final = trio.run(_main, settings, args, progress)
    if progress.tty:
        sys.stderr.write("\n")
    print(json.dumps(final.to_json()))
    return 0
