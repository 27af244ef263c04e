"""`trader record`: the market channel of the markets discovery selects, written as received (`run_recorder`).

```
run_recorder(settings, directory, stop=...)
├── endpoints        `--venue sim`: the in-process sim; else the configured Polymarket (or `trader sim`) URLs
├── discovery        Gamma, the same `TRADER_MARKETS__*` selection as `trader run` (first `markets.max_markets`),
│                    and their neg-risk events: the recording's metadata, re-read every `markets.refresh_secs`
├── one task per connection of at most `market_data.max_assets_per_connection` assets: every text frame but the
│   keepalive `PONG` goes to the writer with its receive time, connection number and sequence; a connection that
│   breaks or stalls is reconnected with backoff and the time without frames is written as a gap
└── writer           `trader.infra.recording.RecordingWriter`: gzip'd JSON lines, rotated, bounded, flushed every
                     `flush_secs`, resumed after a restart (a gap from the last frame on disk)
```

The metadata (`recording_meta`) holds what a replay or a backtest needs besides the frames: per market its ids,
tokens, tick, minimum size, neg-risk ids and fee schedule; the neg-risk events and whether each is complete.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio

from trader.app.config import Settings
from trader.app.venue import start_endpoints
from trader.domain.market import FeeSchedule, Market, NegRiskEvent
from trader.errors import InputError
from trader.infra.backoff import Backoff, BackoffCounter
from trader.infra.recording import RecordingWriter
from trader.venues.errors import VenueError
from trader.venues.polymarket.gamma import GammaClient, MarketQuery
from trader.venues.polymarket.market_ws import open_market_connection, websocket_factory
from trader.venues.polymarket.paper_ids import PAPER_KEY
from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.signing import OrderSigner

__all__ = ["RecorderProgress", "markets_from_meta", "recording_meta", "run_recorder"]

log = structlog.get_logger(__name__)

_PING_SECS = 10.0
_STALL_SECS = 30.0


# -- metadata -----------------------------------------------------------------------------------------------------


def _market_json(m: Market) -> dict[str, Any]:
    return {
        "condition_id": m.condition_id,
        "question": m.question,
        "slug": m.slug,
        "tokens": [m.yes_token_id, m.no_token_id],
        "outcomes": list(m.outcomes),
        "tick_size": str(m.tick_size),
        "min_order_size": str(m.min_order_size),
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.neg_risk_market_id,
        "fees": {"rate": str(m.fees.rate), "exponent": str(m.fees.exponent), "taker_only": m.fees.taker_only},
    }


def recording_meta(markets: Iterable[Market], events: Iterable[NegRiskEvent]) -> dict[str, Any]:
    return {
        "markets": [_market_json(m) for m in markets],
        "events": [
            {
                "event_id": e.event_id,
                "title": e.title,
                "markets": [m.condition_id for m in e.markets],
                "complete": e.complete,
            }
            for e in events
        ],
    }


def _market_of(raw: Mapping[str, Any]) -> Market:
    fees = raw.get("fees") or {}
    exponent = Decimal(str(fees.get("exponent", "0")))
    return Market(
        condition_id=str(raw["condition_id"]),
        question=str(raw.get("question", "")),
        slug=str(raw.get("slug", "")),
        yes_token_id=str(raw["tokens"][0]),
        no_token_id=str(raw["tokens"][1]),
        tick_size=Decimal(str(raw["tick_size"])),
        neg_risk=bool(raw.get("neg_risk", False)),
        neg_risk_market_id=raw.get("neg_risk_market_id"),
        min_order_size=Decimal(str(raw.get("min_order_size", "5"))),
        fees=FeeSchedule(
            rate=Decimal(str(fees.get("rate", "0"))),
            exponent=int(exponent) if exponent == exponent.to_integral_value() else exponent,
            taker_only=bool(fees.get("taker_only", True)),
        ),
        outcomes=tuple(raw.get("outcomes") or ("Yes", "No")),
    )


def markets_from_meta(meta: Mapping[str, Any]) -> tuple[dict[str, Market], list[NegRiskEvent], list[str]]:
    """(condition id -> market, neg-risk events, what could not be read): a market the metadata cannot describe is
    left out and named, as is an event missing one of its markets (it is then no complete basket)."""
    markets: dict[str, Market] = {}
    problems: list[str] = []
    for n, raw in enumerate(meta.get("markets") or ()):
        try:
            market = _market_of(raw)
        except (InputError, KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            problems.append(f"markets[{n}]: {exc}")
            continue
        markets[market.condition_id] = market
    events: list[NegRiskEvent] = []
    for raw in meta.get("events") or ():
        try:
            members = tuple(markets[c] for c in raw["markets"])
            events.append(
                NegRiskEvent(
                    event_id=str(raw["event_id"]),
                    title=str(raw.get("title", "")),
                    markets=members,
                    complete=bool(raw.get("complete", False)),
                )
            )
        except (InputError, KeyError, TypeError) as exc:
            problems.append(f"event {raw.get('event_id') if isinstance(raw, dict) else raw!r}: {exc!r}")
    return markets, events, problems


# -- the recorder -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecorderProgress:
    frames: int
    markets: int
    bytes: int  # compressed, written by this run
    gaps: int
    connections: int
    directory: str
    files_deleted: int

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class _Recorder:
    def __init__(self, writer: RecordingWriter, url: str, backoff: Backoff) -> None:
        self.writer = writer
        self.url = url
        self.backoff = backoff
        self.connections = 0
        self.markets = 0

    def progress(self) -> RecorderProgress:
        stats = self.writer.stats
        return RecorderProgress(
            frames=stats.frames,
            markets=self.markets,
            bytes=self.writer.written_bytes(),
            gaps=stats.gaps,
            connections=self.connections,
            directory=str(self.writer.directory),
            files_deleted=stats.files_deleted,
        )

    async def follow(self, assets: Sequence[str]) -> None:
        """One connection's worth of assets, forever: connect, subscribe, write every frame; reconnect on loss."""
        factory = websocket_factory(self.url)
        counter = BackoffCounter(self.backoff, reset_after_secs=60.0)
        lost_at: int | None = None
        reason = ""
        while True:
            self.connections += 1
            conn = self.connections
            seq = 0
            try:
                async with open_market_connection(factory, assets, custom_feature_enabled=True) as connection:
                    counter.record_connected(trio.current_time())
                    if lost_at is not None:
                        self.writer.gap(conn, lost_at, time.time_ns(), reason)
                        lost_at = None
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_ping, connection)
                        while True:
                            with trio.move_on_after(_STALL_SECS) as stall:
                                text = await connection.receive()
                            if stall.cancelled_caught:
                                reason = f"stall: no frame for {_STALL_SECS:g} s"
                                nursery.cancel_scope.cancel()
                                break
                            if text == "PONG":
                                continue
                            seq += 1
                            now = time.time_ns()
                            self.writer.frame(now, conn, seq, text if isinstance(text, str) else text.decode())
                            lost_at = now
                            counter.record_healthy(trio.current_time())
            except* VenueError as group:  # from the connection, or from the reader inside its nursery
                reason = f"disconnected: {group.exceptions[0]}"
            if lost_at is None:
                lost_at = time.time_ns()
            log.warning("record_connection_lost", connection=conn, reason=reason)
            await trio.sleep(counter.next_delay(trio.current_time()))


async def _ping(connection: Any) -> None:
    while True:
        await trio.sleep(_PING_SECS)
        await connection.ping()


async def _discover(gamma: GammaClient, query: MarketQuery, limit: int) -> tuple[list[Market], list[NegRiskEvent]]:
    found = await gamma.markets(query)
    chosen = found.markets[:limit]
    events: list[NegRiskEvent] = []
    if any(d.market.neg_risk for d in chosen):
        try:
            events = await gamma.neg_risk_events(chosen)
        except VenueError as exc:
            log.warning("record_neg_risk_events_failed", error=repr(exc))
    return [d.market for d in chosen], events


async def run_recorder(
    settings: Settings,
    query: MarketQuery,
    directory: Path,
    *,
    stop: Callable[[], Awaitable[object]],
    max_file_bytes: int,
    max_total_bytes: int,
    flush_secs: float = 1.0,
    on_progress: Callable[[RecorderProgress], None] = lambda _: None,
    progress_secs: float = 1.0,
    task_status: trio.TaskStatus[RecorderProgress] = trio.TASK_STATUS_IGNORED,
) -> RecorderProgress:
    """Record until `stop()` returns (or `settings.run.duration_secs` passes); return the last progress."""
    async with (
        trio.open_nursery() as nursery,
        httpx.AsyncClient(timeout=settings.supervisor.http_backstop_secs) as http,
    ):
        _sim, endpoints = await start_endpoints(settings, nursery)
        async with open_rest_client(endpoints.rest, OrderSigner(PAPER_KEY)) as public_rest:
            gamma = GammaClient(http, endpoints.gamma, tick_size=public_rest.tick_size)
            with trio.fail_after(settings.supervisor.discovery_timeout_secs):
                markets, events = await _discover(gamma, query, settings.markets.max_markets)
            if not markets:
                raise InputError("markets", "discovery selected no market to record (check TRADER_MARKETS__*)")
            writer = RecordingWriter(
                directory,
                source=endpoints.ws_market,
                meta=recording_meta(markets, events),
                now_ns=time.time_ns(),
                max_file_bytes=max_file_bytes,
                max_total_bytes=max_total_bytes,
            )
            recorder = _Recorder(writer, endpoints.ws_market, settings.market_data.backoff)
            recorder.markets = len(markets)
            try:
                async with trio.open_nursery() as inner:
                    per = settings.market_data.max_assets_per_connection
                    assets = [t for m in markets for t in m.token_ids]
                    for start in range(0, len(assets), per):
                        inner.start_soon(recorder.follow, assets[start : start + per])
                    inner.start_soon(_flush, writer, flush_secs)
                    inner.start_soon(_report, recorder, on_progress, progress_secs)
                    inner.start_soon(_refresh, gamma, query, settings, writer, recorder)
                    task_status.started(recorder.progress())
                    duration = settings.run.duration_secs
                    with trio.move_on_after(duration if duration is not None else float("inf")):
                        await stop()
                    inner.cancel_scope.cancel()
            finally:
                writer.close(time.time_ns())
            final = recorder.progress()
            on_progress(final)
        nursery.cancel_scope.cancel()
    return final


async def _flush(writer: RecordingWriter, secs: float) -> None:
    while True:
        await trio.sleep(secs)
        writer.flush()


async def _report(recorder: _Recorder, on_progress: Callable[[RecorderProgress], None], secs: float) -> None:
    while True:
        await trio.sleep(secs)
        on_progress(recorder.progress())


async def _refresh(
    gamma: GammaClient, query: MarketQuery, settings: Settings, writer: RecordingWriter, recorder: _Recorder
) -> None:
    """The metadata kept current (ticks, events): a change is written as a `meta` record."""
    known = {t for m in (writer.meta.get("markets") or ()) for t in m["tokens"]}
    while True:
        await trio.sleep(settings.markets.refresh_secs)
        try:
            with trio.fail_after(settings.supervisor.discovery_timeout_secs):
                markets, events = await _discover(gamma, query, settings.markets.max_markets)
        except (VenueError, trio.TooSlowError) as exc:
            log.warning("record_refresh_failed", error=repr(exc))
            continue
        # Markets followed keep their entry (a resolved market leaves Gamma's listing, not the recording); new
        # listings need a restart to be followed.
        merged = {m["condition_id"]: m for m in writer.meta.get("markets") or ()}
        for market in markets:
            if market.yes_token_id in known:
                merged[market.condition_id] = _market_json(market)
        events_json = recording_meta((), events)["events"] or list(writer.meta.get("events") or ())
        writer.set_meta(time.time_ns(), {"markets": list(merged.values()), "events": events_json})
