"""`trader watch`: stream chosen markets and print top of book and book health, live.

    trader watch --slug will-x-happen --token-id 7132...563 [--ws-url URL --gamma-url URL]

Markets are chosen by slug, condition id or token id (each repeatable) and looked up on Gamma, then followed on
the market channel by the same market-data service the engine uses. Every `--refresh-secs` the screen shows, per
token: best bid and ask with their sizes, the mid, and the book's health (READY / NOT READY, SUSPECT, age since
last confirmed), and below it the feed's statistics (frames/s, drops by reason, reconnects, stalls, resyncs,
feed latency). On a terminal the screen is redrawn in place; otherwise each refresh is printed as a block under
a `--- <secs>s` line.

Defaults are Polymarket's production endpoints; point `--ws-url` and `--gamma-url` at `trader sim` to watch the
simulated venue. `--duration-secs` stops after that long (exit 0). Exit status 2 on bad arguments or when no
market matches, 1 when Gamma cannot be asked; Ctrl+C stops (exit 0).
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TextIO

import httpx
import trio

from trader.domain.book import Level
from trader.engine.books import Books, TokenBook
from trader.engine.market_data import MarketDataService, MarketDataSettings, MarketDataStatistics
from trader.errors import ConfigError, RuntimeFailure
from trader.infra.logging import configure_logging
from trader.venues.base import MarketFeed
from trader.venues.errors import VenueError
from trader.venues.polymarket.gamma import GAMMA_URL, DiscoveredMarket, GammaClient, MarketQuery
from trader.venues.polymarket.market_ws import MARKET_WS_URL, PolymarketMarketFeed, websocket_factory

CLEAR = "\x1b[H\x1b[2J"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slug", action="append", default=[], help="market slug (repeatable)")
    parser.add_argument("--condition-id", action="append", default=[], help="condition id (repeatable)")
    parser.add_argument("--token-id", action="append", default=[], help="token (asset) id (repeatable)")
    parser.add_argument("--ws-url", default=MARKET_WS_URL, help=f"market channel URL (default {MARKET_WS_URL})")
    parser.add_argument("--gamma-url", default=GAMMA_URL, help=f"Gamma API base URL (default {GAMMA_URL})")
    parser.add_argument("--refresh-secs", type=float, default=0.5, help="screen refresh period (default 0.5)")
    parser.add_argument("--duration-secs", type=float, default=None, help="stop after this long (default: never)")
    parser.add_argument("--log-level", default="WARNING", help="log level on stderr (default WARNING)")


def _level(level: Level | None) -> str:
    return "-" if level is None else f"{level.price} x {level.size}"


def _age(age: float | None) -> str:
    return "-" if age is None else f"{age:.1f}s"


def _health(token: TokenBook, now: float) -> str:
    health = token.health(now)
    words = ["READY" if health.ready else "NOT READY"]
    if health.suspect:
        words.append(f"SUSPECT({health.suspect_reason})")
    return " ".join(words)


def render(books: Books, stats: MarketDataStatistics, now: float) -> str:
    """The screen: one block per market, then the feed's statistics. Pure (reads the books, prints nothing)."""
    lines: list[str] = []
    header = f"{'outcome':<12} {'bid (price x size)':>24} {'ask (price x size)':>24} {'mid':>8} {'age':>7}  health"
    for cell in books.markets.values():
        market = cell.market
        resolved = "" if cell.resolved_winner is None else f"  RESOLVED: {market.outcome_of(cell.resolved_winner)}"
        lines.append(f"{market.slug or market.condition_id}  tick {market.tick_size}{resolved}")
        lines.append(header)
        for token_id in market.token_ids:
            token = cell.tokens[token_id]
            mid: Decimal | None = token.book.mid()
            lines.append(
                f"{market.outcome_of(token_id)[:12]:<12} {_level(token.best_bid()):>24} {_level(token.best_ask()):>24}"
                f" {'-' if mid is None else str(mid):>8} {_age(token.age(now)):>7}  {_health(token, now)}"
            )
        lines.append("")
    drops = ", ".join(f"{reason} {count}" for reason, count in sorted(stats.drops.items())) or "none"
    latency = "-" if stats.feed_latency_p50_ms is None else f"p50 {stats.feed_latency_p50_ms:.0f} ms"
    lines.append(
        f"connections {stats.connected}/{stats.connections}  books ready {stats.ready_books}/{stats.books}"
        f"  suspect {stats.suspect_books}  frames/s {stats.frames_per_sec:.1f}  entries/s {stats.entries_per_sec:.1f}"
    )
    lines.append(
        f"reconnects {stats.reconnects}  stalls {stats.stalls}  resyncs {stats.resyncs}  drops: {drops}"
        f"  feed latency {latency}"
    )
    return "\n".join(lines) + "\n"


async def resolve(
    gamma: GammaClient, slugs: Sequence[str], condition_ids: Sequence[str], token_ids: Sequence[str]
) -> list[DiscoveredMarket]:
    """The markets named by slug, condition id or token id, as Gamma lists them (open or closed)."""
    base = MarketQuery(active_only=False, accepting_orders_only=False, require_fee_schedule=False)
    found: dict[str, DiscoveredMarket] = {}
    # Gamma ANDs different selectors: ask once per kind, so that they add up.
    queries = [
        replace(base, slugs=tuple(slugs)),
        replace(base, condition_ids=tuple(condition_ids)),
        replace(base, token_ids=tuple(token_ids)),
    ]
    for query in queries:
        if query.slugs or query.condition_ids or query.token_ids:
            result = await gamma.markets(query)
            for what, reason in result.skipped:
                print(f"trader watch: skipping {what}: {reason}", file=sys.stderr)
            found.update((d.market.condition_id, d) for d in result.markets)
    return list(found.values())


async def watch(
    feed: MarketFeed,
    markets: Sequence[DiscoveredMarket],
    *,
    out: TextIO,
    refresh_secs: float,
    duration_secs: float | None,
    redraw: bool,
    settings: MarketDataSettings | None = None,
) -> MarketDataStatistics:
    """Follow `markets` and print `render(...)` every `refresh_secs` (drift-free) until `duration_secs`."""
    books = Books()
    for discovered in markets:
        books.add(discovered.market)
    service = MarketDataService(feed, books, settings)
    with trio.move_on_after(math.inf if duration_secs is None else duration_secs):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            start, n = trio.current_time(), 0
            try:
                while True:
                    now = trio.current_time()
                    screen = render(books, service.statistics(), now)
                    out.write(CLEAR + screen if redraw else f"--- {now - start:.1f}s\n{screen}")
                    out.flush()
                    n += 1
                    await trio.sleep_until(start + n * refresh_secs)
            finally:
                nursery.cancel_scope.cancel()
    return service.statistics()


async def _main(args: argparse.Namespace, out: TextIO) -> int:
    """Watch until `--duration-secs`, or until SIGINT/SIGTERM cancels it cleanly (not a KeyboardInterrupt raised
    wherever the code happens to be, which could leave the WebSocket's close half done and the process hanging)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel(reason="signal")
                    return

            nursery.start_soon(stop_on_signal)
            await _watch(args, out)
            nursery.cancel_scope.cancel()
    return 0


async def _watch(args: argparse.Namespace, out: TextIO) -> None:
    async with httpx.AsyncClient() as http:
        gamma = GammaClient(http, args.gamma_url)
        try:
            with trio.fail_after(30):
                markets = await resolve(gamma, args.slug, args.condition_id, args.token_id)
        except (VenueError, trio.TooSlowError) as exc:
            reason = str(exc) or type(exc).__name__
            raise RuntimeFailure(
                f"could not look the markets up on Gamma ({args.gamma_url}): {reason} (is --gamma-url right?)"
            ) from exc
    if not markets:
        raise ConfigError("no market matches the given --slug / --condition-id / --token-id")
    await watch(
        PolymarketMarketFeed(websocket_factory(args.ws_url)),
        markets,
        out=out,
        refresh_secs=args.refresh_secs,
        duration_secs=args.duration_secs,
        redraw=out.isatty(),
    )


def run(args: argparse.Namespace) -> int:
    if not (args.slug or args.condition_id or args.token_id):
        raise ConfigError("name at least one market: --slug, --condition-id or --token-id")
    if not args.refresh_secs > 0:
        raise ConfigError(f"--refresh-secs must be > 0, got {args.refresh_secs}")
    if args.duration_secs is not None and not args.duration_secs > 0:
        raise ConfigError(f"--duration-secs must be > 0, got {args.duration_secs}")
    websocket_factory(args.ws_url)  # a bad URL is a ConfigError before any network call
    if args.log_level.upper() not in logging.getLevelNamesMapping():
        raise ConfigError(f"--log-level must be a logging level name, got {args.log_level!r}")
    configure_logging(level=args.log_level)
    return trio.run(_main, args, sys.stdout)  # Ctrl+C stops it cleanly: exit 0
