"""The market-data service: the venue's market feed -> exact local books, fresh, and never silently stalled.

```
MarketDataService(feed, books).run()          (started by the supervisor: `books = await nursery.start(svc.run)`)
└── one task per shard (<= max_assets_per_connection assets; both tokens of a market on the same shard)
    └── per connection (`feed.connect(assets, shard.ticks)`): reader (the parent's body), PING every
        ping_interval_secs, control (subscriptions, resyncs)
```

`feed` is the `MarketFeed` port (`trader.venues.base`; live: `PolymarketMarketFeed` in
`trader.venues.polymarket.market_ws`): its connections hand over each frame parsed and validated, as
`trader.domain.feed` values. No wire text and no venue module reaches this service. Each shard keeps
`shard.ticks`, asset id -> tick in force, for every asset it follows: the live map the feed parses with. The
service adds an asset there before subscribing it, removes it on `untrack`, and writes a new tick as soon as it
applies a tick change, before it receives the next frame (the port's contract).

Per connection, in order:
1. connect and subscribe (the venue starts with a snapshot per asset); every book of the shard is NOT READY until
   its `BookSnapshot` arrives;
2. each frame (parsed by the feed) is applied synchronously, in arrival order: `BookSnapshot` replaces,
   `PriceChange` sets each level (size 0 removes), `TickSizeChange` takes effect at once, `LastTrade` is kept;
   then the changed markets' cells are bumped (never a queue);
3. after a `PriceChange`, each asset's local top of book is checked against the venue's `best_bid`/`best_ask`
   of the asset's last entry in the frame (after all the frame's entries, so either per-entry or per-frame
   semantics of those fields pass). A mismatch, or a dropped frame that could have changed a book, marks that
   book SUSPECT and resyncs it: unsubscribe + subscribe on the same connection to get a fresh snapshot; if none
   arrives within `resync_timeout_secs` (the venue may not support it), the whole connection is recycled;
4. a frame of any kind (`PONG` included) proves the connection alive; none for `stall_timeout_secs` is a stall:
   the connection is closed and reconnected;
5. any loss (stall, disconnect, failed connect, resync timeout) marks the shard's books NOT READY and reconnects
   after `Backoff.delay(attempt)`; the attempt count restarts once a connection stayed up `healthy_reset_secs`.

All timing is `trio.current_time()` (MockClock in tests); the wall clock (`wall_ns`, injectable) is only read to
record feed latency (local receive time minus the venue's timestamp).

A feed may report its frames to a tap (a benchmark's timing point: `PolymarketMarketFeed(..., frame_tap=...)` is
told of each frame "received" and "parsed"); this service then calls the frame's `ParsedFrame.on_applied` once the
frame's changes are published ("applied"; not for a PONG), synchronously.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NoReturn

import structlog
import trio

from trader.domain.book import OrderBook
from trader.domain.feed import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    LevelChange,
    MarketResolved,
    NewMarket,
    ParsedFrame,
    PriceChange,
    TickSizeChange,
)
from trader.domain.market import Market
from trader.engine.books import Books, ConnectionLiveness, MarketCell, TokenBook
from trader.infra.backoff import Backoff, BackoffCounter
from trader.infra.histogram import Histogram, HistogramSnapshot
from trader.infra.ticks import Ticker
from trader.venues.base import MarketFeed, MarketFeedConnection
from trader.venues.errors import VenueConnectionError, VenueDisconnected

__all__ = ["FEED_LATENCY_BUCKETS_SECS", "MarketDataService", "MarketDataSettings", "MarketDataStatistics"]

log = structlog.get_logger(__name__)

# Feed latency (local receive time minus the venue's timestamp), seconds: from a colocated feed to a congested one.
FEED_LATENCY_BUCKETS_SECS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Suspect reasons (stable codes).
BEST_PRICE_MISMATCH = "BEST_PRICE_MISMATCH"
DROPPED_BOOK_DATA = "DROPPED_BOOK_DATA"

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketDataSettings:
    """Market-data settings. Defaults: 200 assets per connection, PING every 10 s, a stall after 30 s without
    any frame, resync by resubscribing with a 10 s fallback to reconnecting, backoff 0.5 s doubling to 30 s with
    25% jitter, reset after 60 s of healthy connection. `custom_feature_enabled` (on) asks the venue for its optional
    events: `market_resolved` (how the engine learns first that a market it holds resolved), `new_market`,
    `best_bid_ask`."""

    max_assets_per_connection: int = 200
    ping_interval_secs: float = 10.0
    stall_timeout_secs: float = 30.0
    resync_timeout_secs: float = 10.0
    resync_by_resubscribe: bool = True
    healthy_reset_secs: float = 60.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_secs=0.5, max_secs=30.0))
    custom_feature_enabled: bool = True
    rate_window_secs: int = 10
    latency_samples: int = 1024

    def __post_init__(self) -> None:
        if not 2 <= self.max_assets_per_connection <= 500:
            raise ValueError(f"max_assets_per_connection must be within [2, 500], got {self.max_assets_per_connection}")
        for name in ("ping_interval_secs", "stall_timeout_secs", "resync_timeout_secs", "healthy_reset_secs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.stall_timeout_secs <= self.ping_interval_secs:
            raise ValueError("stall_timeout_secs must be longer than ping_interval_secs (a PONG answers each PING)")
        if self.rate_window_secs < 1 or self.latency_samples < 1:
            raise ValueError("rate_window_secs and latency_samples must be >= 1")


@dataclass(frozen=True, slots=True)
class MarketDataStatistics:
    connections: int  # shards (one connection each when up)
    connected: int
    markets: int
    books: int
    ready_books: int
    suspect_books: int
    frames: int  # every text frame, PONG included
    entries: int  # book levels and level changes read
    frames_per_sec: float  # over the last rate_window_secs
    entries_per_sec: float
    drops: Mapping[str, int]  # by the feed's reason code (Polymarket's: trader.venues.polymarket.parse)
    reconnects: int
    stalls: int
    resyncs: int
    pings: int
    max_book_age_secs: float | None  # the oldest ready book's age
    feed_latency_ms: float | None  # the last sample: local receive wall time - venue timestamp
    feed_latency_p50_ms: float | None
    feed_latency_p99_ms: float | None
    feed_latency_max_ms: float | None
    feed_latency: HistogramSnapshot  # every sample since start, in seconds (Prometheus computes percentiles from it)


class _Rate:
    """Count per second over the last `window` seconds, in one-second buckets (cheap enough for every frame)."""

    __slots__ = ("_buckets", "_window")

    def __init__(self, window: int) -> None:
        self._window = window
        self._buckets: deque[list[int]] = deque()

    def add(self, now: float, count: int) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
            return
        self._buckets.append([second, count])
        while self._buckets[0][0] <= second - self._window:
            self._buckets.popleft()

    def per_sec(self, now: float) -> float:
        second = int(now)
        return sum(count for at, count in self._buckets if at > second - self._window) / self._window


class _Shard:
    """One connection's worth of assets and the state of its current connection."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.tokens: dict[str, TokenBook] = {}
        self.ticks: dict[str, Decimal] = {}  # the live tick map the feed parses with (trader.venues.base)
        self.subscribed: set[str] = set()  # what the open connection was asked for
        self.resync_wanted: set[str] = set()
        self.resync_deadlines: dict[str, float] = {}
        self.liveness = ConnectionLiveness()
        self.wake = trio.Event()
        self.scope: trio.CancelScope | None = None
        self.end_reason: str | None = None

    @property
    def connected(self) -> bool:
        return self.scope is not None

    def end(self, reason: str) -> None:
        """End the current connection (first reason wins); the shard task reconnects."""
        if self.scope is not None and self.end_reason is None:
            self.end_reason = reason
            self.scope.cancel()

    def resync_pending(self, asset_id: str) -> bool:
        return asset_id in self.resync_wanted or asset_id in self.resync_deadlines


def top_matches(book: OrderBook, change: LevelChange) -> bool:
    """The venue's reported top of book (if any) equals ours; bid "0" / ask "1" also stand for an empty side."""
    if change.best_bid is not None:
        bid = book.best_bid_price()
        if (bid if bid is not None else _ZERO) != change.best_bid:
            return False
    if change.best_ask is not None:
        ask = book.best_ask_price()
        if (ask if ask is not None else _ONE) != change.best_ask:
            return False
    return True


class MarketDataService:
    """Keeps `books` equal to the venue's books. Start with `books = await nursery.start(service.run)`."""

    def __init__(
        self,
        feed: MarketFeed,
        books: Books,
        settings: MarketDataSettings | None = None,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        on_new_market: Callable[[str], None] | None = None,
    ) -> None:
        self._feed = feed
        self._on_new_market = on_new_market
        self._books = books
        self._settings = settings or MarketDataSettings()
        self._wall_ns = wall_ns
        self._shards: list[_Shard] = []
        self._shard_of: dict[str, _Shard] = {}  # condition id -> shard
        self._nursery: trio.Nursery | None = None
        self._frames = 0
        self._entries = 0
        self._frame_rate = _Rate(self._settings.rate_window_secs)
        self._entry_rate = _Rate(self._settings.rate_window_secs)
        self._drops: Counter[str] = Counter()
        self._reconnects = 0
        self._stalls = 0
        self._resyncs = 0
        self._pings = 0
        self._latencies: deque[float] = deque(maxlen=self._settings.latency_samples)
        self._latency_histogram = Histogram(FEED_LATENCY_BUCKETS_SECS)
        for cell in books.markets.values():
            self._place(cell)

    @property
    def books(self) -> Books:
        return self._books

    # -- subscriptions ---------------------------------------------------------------------------------------------

    def track(self, market: Market) -> MarketCell:
        """Follow a market (before or while running): its books appear NOT READY until their snapshots arrive."""
        cell = self._books.add(market)
        if market.condition_id not in self._shard_of:
            self._place(cell)
        return cell

    def untrack(self, condition_id: str) -> None:
        """Stop following a market: unsubscribe its tokens and forget its books."""
        shard = self._shard_of.pop(condition_id, None)
        cell = self._books.markets.get(condition_id)
        if shard is not None and cell is not None:
            for token_id in cell.tokens:
                shard.tokens.pop(token_id, None)
                shard.ticks.pop(token_id, None)
                shard.resync_wanted.discard(token_id)
                shard.resync_deadlines.pop(token_id, None)
            shard.wake.set()
        self._books.remove(condition_id)

    def _place(self, cell: MarketCell) -> None:
        room = self._settings.max_assets_per_connection
        shard = next((s for s in self._shards if len(s.tokens) + len(cell.tokens) <= room), None)
        if shard is None:
            shard = _Shard(len(self._shards))
            self._shards.append(shard)
            if self._nursery is not None:
                self._nursery.start_soon(self._run_shard, shard)
        for token_id, token in cell.tokens.items():
            shard.tokens[token_id] = token
            shard.ticks[token_id] = token.book.tick_size
            token.liveness = shard.liveness
        self._shard_of[cell.market.condition_id] = shard
        shard.wake.set()

    # -- the service -------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Books] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for shard in self._shards:
                nursery.start_soon(self._run_shard, shard)
            task_status.started(self._books)
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_shard(self, shard: _Shard) -> NoReturn:
        counter = BackoffCounter(self._settings.backoff, self._settings.healthy_reset_secs)
        while True:
            if not shard.tokens:
                await shard.wake.wait()
                shard.wake = trio.Event()
                continue
            reason = await self._connect_once(shard, counter)
            self._lost(shard)
            delay = counter.next_delay(trio.current_time())
            self._reconnects += 1
            log.warning("market_ws_reconnecting", shard=shard.index, reason=reason, delay_secs=round(delay, 3))
            await trio.sleep(delay)

    async def _connect_once(self, shard: _Shard, counter: BackoffCounter) -> str:
        assets = sorted(shard.tokens)
        shard.resync_wanted.clear()
        shard.resync_deadlines.clear()
        shard.end_reason = None
        try:
            async with self._feed.connect(
                assets, shard.ticks, custom_feature_enabled=self._settings.custom_feature_enabled
            ) as connection:
                now = trio.current_time()
                counter.record_connected(now)
                shard.subscribed = set(assets)
                shard.liveness.last_frame_at = now
                log.info("market_ws_connected", shard=shard.index, assets=len(assets))
                try:
                    async with trio.open_nursery() as nursery:
                        shard.scope = nursery.cancel_scope
                        nursery.start_soon(self._ping_loop, connection, shard)
                        nursery.start_soon(self._control_loop, connection, shard)
                        await self._read_loop(connection, shard, counter)
                finally:
                    self._lost(shard)  # at once: the close handshake of a dead link can take a while
        except VenueConnectionError as exc:
            return str(exc)
        except VenueDisconnected as exc:  # while subscribing
            return str(exc)
        finally:
            shard.scope = None
            shard.liveness.last_frame_at = None
        return shard.end_reason or "closed"

    def _lost(self, shard: _Shard) -> None:
        """The connection is gone: its books are NOT READY until the next connection's snapshots."""
        shard.resync_wanted.clear()
        shard.resync_deadlines.clear()
        changed: set[MarketCell] = set()
        for token in shard.tokens.values():
            if token.ready:
                token.ready = False
                changed.add(self._books.markets[token.condition_id])
        if changed:
            self._books.publish(changed)

    async def _read_loop(self, connection: MarketFeedConnection, shard: _Shard, counter: BackoffCounter) -> None:
        stall_secs = self._settings.stall_timeout_secs
        rearm_secs = stall_secs / 2
        # The stall timer is a cancel scope around the reads, its deadline moved forward at most every half
        # `stall_secs` (moving a deadline costs more than applying a small frame). When it fires, frames that
        # arrived after it was set may mean the silence is shorter than `stall_secs`: the reads go on under a new
        # deadline, `stall_secs` after the last frame, so a stall is declared exactly `stall_secs` after it.
        # Applying a frame never waits, so the timer cannot fire between receiving a frame and applying it, and
        # `receive()` is cancel-safe (a frame not yet handed out stays queued).
        while True:
            last = shard.liveness.last_frame_at
            armed_at = last if last is not None else trio.current_time()
            with trio.move_on_at(armed_at + stall_secs) as timer:
                now = armed_at
                while now - armed_at < rearm_secs:
                    try:
                        parsed = await connection.receive()
                    except VenueDisconnected as exc:
                        shard.end(str(exc))
                        return
                    now = trio.current_time()
                    shard.liveness.last_frame_at = now
                    counter.record_healthy(now)
                    self._on_frame(shard, parsed, now)
            if timer.cancelled_caught:
                last = shard.liveness.last_frame_at
                if last is None or trio.current_time() - last >= stall_secs:
                    break
        self._stalls += 1
        shard.end(f"stall: no frame for {stall_secs} s")

    async def _ping_loop(self, connection: MarketFeedConnection, shard: _Shard) -> None:
        """PING every period, drift-free; after an overrun, skip the missed ticks."""
        ticks = Ticker(self._settings.ping_interval_secs)
        while True:
            await ticks.next()
            try:
                await connection.ping()
            except VenueDisconnected as exc:
                shard.end(str(exc))
                return
            self._pings += 1

    async def _control_loop(self, connection: MarketFeedConnection, shard: _Shard) -> None:
        """Sends subscription changes and resyncs; recycles the connection when a resync gets no snapshot."""
        timeout = self._settings.resync_timeout_secs
        while True:
            with trio.move_on_at(min(shard.resync_deadlines.values(), default=math.inf)):
                await shard.wake.wait()
            shard.wake = trio.Event()
            now = trio.current_time()
            expired = [a for a, deadline in shard.resync_deadlines.items() if deadline <= now]
            if expired:
                shard.end(f"resync timeout: {len(expired)} book(s) got no snapshot within {timeout} s")
                return
            desired = set(shard.tokens)
            removed = shard.subscribed - desired
            added = desired - shard.subscribed
            resync = (shard.resync_wanted & desired) - added
            shard.resync_wanted.clear()
            if resync and not self._settings.resync_by_resubscribe:
                shard.end(f"resync of {len(resync)} book(s) by reconnecting")
                return
            try:
                if removed:
                    await connection.unsubscribe(sorted(removed))
                    shard.subscribed -= removed
                if resync:
                    await connection.unsubscribe(sorted(resync))
                    added |= resync
                if added:
                    await connection.subscribe(sorted(added))
                    shard.subscribed |= added
            except VenueDisconnected as exc:
                shard.end(str(exc))
                return
            for asset_id in added:
                shard.resync_deadlines[asset_id] = now + timeout

    # -- applying frames (synchronous: nothing here waits) -----------------------------------------------------------

    def _on_frame(self, shard: _Shard, parsed: ParsedFrame, now: float) -> None:
        self._frames += 1
        self._frame_rate.add(now, 1)
        if parsed.entries:
            self._entries += parsed.entries
            self._entry_rate.add(now, parsed.entries)
        if parsed.pong:
            return
        for drop in parsed.drops:
            count = self._drops[drop.reason] = self._drops[drop.reason] + 1
            if count & (count - 1) == 0:  # the 1st, 2nd, 4th, 8th, ... of each reason: a bad feed cannot flood the log
                log.warning(
                    "market_frame_dropped", reason=drop.reason, count=count, detail=drop.detail, asset_id=drop.asset_id
                )
        changed: set[MarketCell] = set()
        latency_recorded = False
        for event in parsed.events:
            if not latency_recorded:
                ts_event_ms = getattr(event, "ts_event_ms", None)
                if ts_event_ms is not None:
                    latency_ms = self._wall_ns() / 1e6 - ts_event_ms
                    self._latencies.append(latency_ms)
                    self._latency_histogram.observe(latency_ms / 1000)
                    latency_recorded = True
            if isinstance(event, PriceChange):
                self._apply_price_change(shard, event, now, changed)
            elif isinstance(event, BestBidAsk):  # the most frequent after price_change
                shard.tokens[event.asset_id].venue_best = (event.best_bid, event.best_ask)
            elif isinstance(event, BookSnapshot):
                self._apply_snapshot(shard, event, now, changed)
            elif isinstance(event, TickSizeChange):
                self._apply_tick_size(shard, event.asset_id, event.new_tick_size, changed)
            elif isinstance(event, LastTrade):
                token = shard.tokens[event.asset_id]
                token.last_trade = event
                token.last_trade_price = event.price
                changed.add(self._books.markets[token.condition_id])
            elif isinstance(event, MarketResolved):
                resolved = self._books.mark_resolved(event.condition_id, event.winning_asset_id)
                if resolved is not None:
                    changed.add(resolved)
                log.info("market_resolved", condition_id=event.condition_id, winner=event.winning_asset_id)
            elif isinstance(event, NewMarket):  # pragma: no branch
                log.info("new_market_announced", condition_id=event.condition_id, slug=event.slug)
                if self._on_new_market is not None:  # discovery looks it up at once (trader.app.venue)
                    self._on_new_market(event.condition_id)
        for asset_id in parsed.suspect:
            self._mark_suspect(shard, asset_id, DROPPED_BOOK_DATA, changed)
        if changed:
            self._books.publish(changed, now)
        applied = parsed.on_applied
        if applied is not None:
            applied()

    def _apply_snapshot(self, shard: _Shard, event: BookSnapshot, now: float, changed: set[MarketCell]) -> None:
        token = shard.tokens[event.asset_id]
        if event.tick_size is not None and event.tick_size != token.book.tick_size:
            self._apply_tick_size(shard, event.asset_id, event.tick_size, changed)
        token.book.apply_snapshot(event.bids, event.asks, now=now, ts_event_ms=event.ts_event_ms)
        token.ready = True
        token.suspect = False
        token.suspect_reason = None
        token.confirmed_at = now
        if event.last_trade_price is not None:
            token.last_trade_price = event.last_trade_price
        shard.resync_deadlines.pop(event.asset_id, None)
        changed.add(self._books.markets[token.condition_id])

    def _apply_price_change(self, shard: _Shard, event: PriceChange, now: float, changed: set[MarketCell]) -> None:
        last: dict[str, LevelChange] = {}
        tokens = shard.tokens
        for change in event.changes:
            token = tokens[change.asset_id]
            if not token.ready:
                continue  # waiting for this book's snapshot, which replaces everything
            token.book.apply_level(change.side, change.price, change.size, now=now, ts_event_ms=event.ts_event_ms)
            last[change.asset_id] = change
        for asset_id, change in last.items():
            token = tokens[asset_id]
            if not token.suspect:
                if top_matches(token.book, change):
                    token.confirmed_at = now
                else:
                    self._mark_suspect(shard, asset_id, BEST_PRICE_MISMATCH, changed)
            changed.add(self._books.markets[token.condition_id])

    def _apply_tick_size(self, shard: _Shard, asset_id: str, tick: Decimal, changed: set[MarketCell]) -> None:
        token = shard.tokens[asset_id]
        token.book.set_tick_size(tick)
        shard.ticks[asset_id] = tick
        cell = self._books.markets[token.condition_id]
        if cell.market.tick_size != tick:
            cell.market = cell.market.with_tick_size(tick)
        changed.add(cell)

    def _mark_suspect(self, shard: _Shard, asset_id: str, reason: str, changed: set[MarketCell]) -> None:
        token = shard.tokens.get(asset_id)
        if token is None:
            return
        if not token.suspect:
            token.suspect = True
            token.suspect_reason = reason
            changed.add(self._books.markets[token.condition_id])
        if shard.resync_pending(asset_id):
            return
        self._resyncs += 1
        shard.resync_wanted.add(asset_id)
        shard.wake.set()
        bid, ask = token.book.best_bid(), token.book.best_ask()
        log.warning(
            "book_suspect_resync",
            asset_id=asset_id,
            reason=reason,
            local_bid=None if bid is None else str(bid.price),
            local_ask=None if ask is None else str(ask.price),
        )

    # -- introspection -------------------------------------------------------------------------------------------------

    def statistics(self) -> MarketDataStatistics:
        now = trio.current_time()
        tokens = list(self._books.tokens())
        ages = [age for token in tokens if (age := token.age(now)) is not None]
        latencies = sorted(self._latencies)
        return MarketDataStatistics(
            connections=len(self._shards),
            connected=sum(shard.connected for shard in self._shards),
            markets=len(self._books),
            books=len(tokens),
            ready_books=sum(token.ready for token in tokens),
            suspect_books=sum(token.suspect for token in tokens),
            frames=self._frames,
            entries=self._entries,
            frames_per_sec=self._frame_rate.per_sec(now),
            entries_per_sec=self._entry_rate.per_sec(now),
            drops=MappingProxyType(dict(self._drops)),
            reconnects=self._reconnects,
            stalls=self._stalls,
            resyncs=self._resyncs,
            pings=self._pings,
            max_book_age_secs=max(ages, default=None),
            feed_latency_ms=self._latencies[-1] if self._latencies else None,
            feed_latency_p50_ms=_quantile(latencies, 0.5),
            feed_latency_p99_ms=_quantile(latencies, 0.99),
            feed_latency_max_ms=latencies[-1] if latencies else None,
            feed_latency=self._latency_histogram.snapshot(),
        )

    def shard_assets(self) -> list[list[str]]:
        """The assets of each connection (for tests and `trader watch`)."""
        return [sorted(shard.tokens) for shard in self._shards]


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
