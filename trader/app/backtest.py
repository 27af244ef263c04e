"""`trader backtest`: the engine of `trader run`, fed from recorded or historical market data on a virtual clock.

```
run_backtest(settings, data)                     (inside trio.run(..., clock=MockClock(autojump_threshold=0)))
├── market data      MarketDataService, the same class as `trader run`, on a `ReplayFeed`: the recorded text
│                    frames, parsed by the Polymarket parser (`parse_market_frame`), at their recorded times
├── paper venue      PaperVenue + follow_books + PaperCapital (resolutions from the frames' `market_resolved`)
├── sinks            the store in memory (MemoryStore behind the same write-behind EngineStore), the in-process bus
└── open_core        the same core as `trader run`: order manager, risk gate, funds, capital, execution,
                     strategy engine and its strategies
```

Only the edges differ from `trader run`: frames come from a file instead of a socket (`ReplayFeed` implements the
`MarketFeed` port), the store is in memory, nothing listens on HTTP, and the clock is virtual: Trio's `MockClock`
with `autojump_threshold=0` jumps to the next deadline whenever every task waits, so a day of data runs as fast as
the CPU allows and every timer (paper latency, order lookups, capital) keeps its meaning. There is no I/O and no
thread on the path, so with the scheduler and `random` seeded (`seed_everything`) and a fixed `PYTHONHASHSEED`
the same input, settings and seed give the same decisions, fills and report, byte for byte.

Inputs (`BacktestData`): a recording (`recording_data`, `trader.infra.recording`) or the Polymarket quotes dataset
(`quotes_data`): each quote row becomes a `book` frame of both tokens of its market with `levels` levels one tick
apart behind the row's bid and ask (sizes seeded; handed over as the values the parser would read from its text,
without writing the text), and a labelled market whose data ends within the files resolves
on its real outcome one poll interval after its last row. What an input could not give (corrupt lines, frames out of
order, crossed quotes, markets missing from the metadata) is counted in `BacktestData.dropped` and shown by the
report.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import json
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio
from trio.testing import MockClock, memory_stream_pair, wait_all_tasks_blocked

from trader.app.config import Settings
from trader.app.core import Core, open_core
from trader.app.recording import markets_from_meta
from trader.app.sinks import Outputs, Sinks
from trader.app.summary import RunSummary, build_summary, check_wallet
from trader.app.venue import Endpoints, NegRiskEvents, VenueSide, paper_resolution, paper_venue
from trader.domain.events import OrderFilled
from trader.domain.feed import BookSnapshot, ParsedFrame
from trader.domain.market import NO_FEES, FeeSchedule, Market, NegRiskEvent
from trader.engine.books import Books
from trader.engine.capital import MarketDirectory
from trader.engine.market_data import MarketDataService
from trader.errors import ConfigError
from trader.infra.recording import Frame, Gap, MetaChange, ReadStats, read_meta, read_recording, recording_files
from trader.integrations.bus import MemoryBus
from trader.integrations.store.engine_store import open_engine_store
from trader.integrations.store.memory import MemoryStore
from trader.venues.paper import follow_books
from trader.venues.paper_capital import PaperCapital
from trader.venues.polymarket.gamma import GammaClient, RefreshStatistics
from trader.venues.polymarket.market_ws import (
    MAX_MESSAGE_SIZE,
    PolymarketMarketFeed,
    WebSocketFactory,
    websocket_over_stream,
)
from trader.venues.polymarket.parse import parse_market_frame
from trader.venues.sim.markets import SimMarket
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

__all__ = [
    "BacktestData",
    "BacktestResult",
    "ReplayFeed",
    "SimData",
    "quotes_data",
    "recording_data",
    "run_backtest",
    "seed_everything",
    "virtual_clock",
]

log = structlog.get_logger(__name__)

#: (seconds after the start, the frame, an asset it names: where it is routed). The frame is the text as received
#: (a recording), or, for input that never was a wire frame (the quotes dataset's books), the `ParsedFrame` the
#: Polymarket parser would make of its text, built directly.
TimedFrame = tuple[float, str | ParsedFrame, str]

_ASSET = re.compile(r'"asset_id"\s*:\s*"(\d+)"|"assets_ids"\s*:\s*\[\s*"(\d+)"')
_PONG = "PONG"
_BATCH = 256  # frames a reader takes at one instant before the other tasks get a turn


def virtual_clock() -> MockClock:
    """The backtest's clock: Trio's `MockClock`, jumping to the next deadline as soon as every task waits."""
    return MockClock(autojump_threshold=0)


def seed_everything(seed: int) -> None:
    """The run's randomness from `seed`: Python's `random` and Trio's scheduler (which otherwise shuffles the order
    of tasks woken together, on purpose). With `PYTHONHASHSEED` fixed too, a run is reproducible."""
    random.seed(seed)
    runner = getattr(trio._core._run, "_r", None)
    if isinstance(runner, random.Random):
        runner.seed(seed)


# -- inputs -------------------------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class BacktestData:
    """A backtest's input: the markets, the neg-risk events, and the frames in time order (an iterator, read once).
    `dropped` counts input left out by reason (filled while the frames are read); `notes` says what else to know."""

    label: str
    markets: dict[str, Market]
    events: list[NegRiskEvent]
    frames: Iterator[TimedFrame]
    start_ns: int  # the wall time of second 0
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gaps: list[dict[str, object]] = field(default_factory=list)
    input_frames: int = 0

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


def _asset_of(text: str) -> str:
    found = _ASSET.search(text)
    return "" if found is None else found.group(1) or found.group(2) or ""


def recording_data(paths: Sequence[str | Path]) -> BacktestData:
    """A recording (files or directories) as backtest input. The markets are those of every file's header."""
    files = recording_files(paths)
    if not files:
        raise ConfigError("backtest: no recording files given")
    markets: dict[str, Market] = {}
    events: dict[str, NegRiskEvent] = {}
    problems: list[str] = []
    for path in files:
        found, found_events, bad = markets_from_meta(read_meta(path))
        markets.update(found)
        events.update({e.event_id: e for e in found_events})
        problems.extend(bad)
    data = BacktestData(
        label=", ".join(str(p) for p in paths),
        markets=markets,
        events=list(events.values()),
        frames=iter(()),
        start_ns=0,
    )
    if problems:
        data.drop("metadata_unreadable", len(problems))
        data.notes.extend(problems[:20])
    stats = ReadStats()
    first_ns = _first_frame_ns(files)
    data.start_ns = first_ns or 0
    known = {t for m in markets.values() for t in m.token_ids}

    def frames() -> Iterator[TimedFrame]:
        for _meta, record in read_recording(files, stats):
            if isinstance(record, Frame):
                asset = _asset_of(record.text)
                if asset and asset not in known:
                    data.drop("market_not_in_metadata")
                    continue
                data.input_frames += 1
                yield (record.t_ns - data.start_ns) / 1e9, record.text, asset
            elif isinstance(record, Gap):
                data.gaps.append(
                    {
                        "connection": record.conn,
                        "from_ns": record.from_ns,
                        "to_ns": record.to_ns,
                        "reason": record.reason,
                    }
                )
            elif isinstance(record, MetaChange):
                continue
        data.drop("corrupt_lines", stats.corrupt_lines)
        data.drop("frames_out_of_order", stats.out_of_order)
        if stats.truncated_files:
            data.notes.append(f"files cut short (read up to where they end): {', '.join(stats.truncated_files)}")
            data.drop("truncated_files", len(stats.truncated_files))
        data.dropped = {k: v for k, v in data.dropped.items() if v}

    data.frames = frames()
    return data


def _first_frame_ns(files: Sequence[Path]) -> int | None:
    for _meta, record in read_recording(files[:1]):
        if isinstance(record, Frame):
            return record.t_ns
    return None


# -- the quotes dataset -------------------------------------------------------------------------------------------

_TICKS = (Decimal("0.01"), Decimal("0.001"), Decimal("0.0001"))
_POLL_SECS = 120.0


def _ts(text: str) -> float | None:
    """Unix seconds of a dataset timestamp (`2026-07-10 20:25:46.000000`, UTC); None when it is not one."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _price(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and 0 < value < 1 else None


class _Memo(dict[str, Any]):
    """`function(text)` remembered by text: the quotes repeat a few thousand timestamps and prices ~800,000 times."""

    def __init__(self, function: Any) -> None:
        super().__init__()
        self._function = function

    def __missing__(self, text: str) -> Any:
        value = self[text] = self._function(text)
        return value


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _quote_rows(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """(ts, slug, bid, ask) of each row of a quotes file (a plain reader: the files have ~800,000 rows)."""
    with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        try:
            at = [header.index(name) for name in ("ts", "slug", "bid", "ask")]
        except ValueError:
            raise ConfigError(f"backtest: {path} lacks one of the columns ts, slug, bid, ask") from None
        width = max(at) + 1
        ts, slug, bid, ask = at
        for row in reader:
            if len(row) >= width:
                yield row[ts], row[slug], row[bid], row[ask]


def _token(slug: str, outcome: str) -> str:
    return str(int.from_bytes(hashlib.sha256(f"quotes:{slug}:{outcome}".encode()).digest()[:12], "big"))


def _quote_market(slug: str, question: str, tick: Decimal) -> Market:
    return Market(
        condition_id="0x" + hashlib.sha256(f"quotes:{slug}".encode()).hexdigest(),
        question=question or slug,
        slug=slug,
        yes_token_id=_token(slug, "yes"),
        no_token_id=_token(slug, "no"),
        tick_size=tick,
        min_order_size=Decimal(5),
    )


def _level_sizes(slug: str, seed: int, levels: int) -> list[Decimal]:
    rng = random.Random(f"{seed}:{slug}")
    return [Decimal(rng.randrange(50, 500) * (1 + i)) for i in range(levels)]


def quotes_data(
    path: Path, *, seed: int = 0, levels: int = 5, slugs: Sequence[str] = (), max_markets: int | None = None
) -> BacktestData:
    """The quotes dataset under `path` (a directory of `quotes-*.csv.gz`, with `markets.csv.gz` and `labels.csv.gz`
    when present) as backtest input. A first pass picks the markets (`slugs`, else all, at most `max_markets` in the
    order they first quote) and the coarsest standard tick holding every price of each; the second makes frames."""
    files = sorted(path.glob("quotes-*.csv.gz"))
    if not files:
        raise ConfigError(f"backtest: no quotes-*.csv.gz files in {path}")
    questions: dict[str, str] = {}
    last_listed: dict[str, float] = {}
    if (path / "markets.csv.gz").exists():
        for row in _rows(path / "markets.csv.gz"):
            questions[row.get("slug", "")] = row.get("question", "")
            last = _ts(row.get("last_ts", ""))
            if last is not None:
                last_listed[row.get("slug", "")] = last
    labels: dict[str, int] = {}
    if (path / "labels.csv.gz").exists():
        for row in _rows(path / "labels.csv.gz"):
            if row.get("source") == "api" and row.get("y") in ("0", "1"):
                labels[row["slug"]] = int(row["y"])
    wanted = set(slugs)
    stamps, prices = _Memo(_ts), _Memo(_price)
    order: list[str] = []
    ticks: dict[str, Decimal] = {}
    last_row: dict[str, float] = {}
    rows: list[tuple[float, str, str, str]] = []  # (ts, slug, bid, ask), sorted by time below
    bad_ts = 0
    for file in files:
        for stamp, slug, bid, ask in _quote_rows(file):
            if wanted and slug not in wanted:
                continue
            if slug not in ticks:
                if max_markets is not None and len(order) >= max_markets:
                    continue
                order.append(slug)
                ticks[slug] = _TICKS[0]
            for text in (bid, ask):
                price = prices[text]
                while price is not None and price % ticks[slug] and ticks[slug] != _TICKS[-1]:
                    ticks[slug] = _TICKS[_TICKS.index(ticks[slug]) + 1]
            when = stamps[stamp]
            if when is None:
                bad_ts += 1
                continue
            last_row[slug] = max(last_row.get(slug, when), when)
            rows.append((when, slug, bid, ask))
    if not order:
        raise ConfigError(f"backtest: no quotes of the chosen markets in {path}")
    rows.sort(key=lambda r: r[0])  # stable: rows of one time keep the files' order
    markets = {slug: _quote_market(slug, questions.get(slug, ""), ticks[slug]) for slug in order}
    end_of_data = max(last_row.values()) if last_row else 0.0
    # A labelled market resolves on its real outcome one poll after its last row here, also when its listing goes on
    # after these files (then counted in the notes: the position is settled as it would be, only earlier).
    resolves = {slug: labels[slug] for slug in order if slug in labels and slug in last_row}
    early = sum(1 for slug in resolves if last_listed.get(slug, 0.0) > end_of_data)
    data = BacktestData(
        label=str(path),
        markets={m.condition_id: m for m in markets.values()},
        events=[],
        frames=iter(()),
        start_ns=int(rows[0][0] * 1e9) if rows else 0,
    )
    if bad_ts:
        data.drop("quote_bad_timestamp", bad_ts)
    data.notes.append(
        f"quotes: {len(order)} markets, {levels} levels of seeded depth behind each quote, no fees; "
        f"{len(resolves)} resolve on their labelled outcome after their last quote ({early} of them are listed "
        "beyond these files and resolve earlier than they did)"
    )

    def frames() -> Iterator[TimedFrame]:
        start = rows[0][0] if rows else 0.0
        sizes = {slug: _level_sizes(slug, seed, levels) for slug in order}
        ladders: dict[tuple[Decimal, Decimal], tuple[Decimal, ...]] = {}
        last_books: dict[str, tuple[str, str, ParsedFrame]] = {}  # slug -> its last quote (the snapshots are frozen)
        pending: list[tuple[float, str]] = []  # (when, slug) resolutions still to send, in time order
        for when, slug, bid_text, ask_text in rows:
            market = markets[slug]
            while pending and pending[0][0] <= when:
                at, done = pending.pop(0)
                yield at - start, _resolved_frame(markets[done], resolves[done]), markets[done].yes_token_id
            bid, ask = prices[bid_text], prices[ask_text]
            if bid is None and ask is None:
                data.drop("quote_empty")
                continue
            if bid is not None and ask is not None and ask <= bid:
                data.drop("quote_crossed_or_locked")
                continue
            data.input_frames += 1
            repeated = last_books.get(slug)
            if repeated is not None and repeated[0] == bid_text and repeated[1] == ask_text:  # the same quote again
                book = ParsedFrame(events=list(repeated[2].events), entries=repeated[2].entries)
            else:
                book = _book_parsed(market, bid, ask, sizes[slug], ladders)
                last_books[slug] = (bid_text, ask_text, book)
            yield when - start, book, market.yes_token_id
            if slug in resolves and when >= last_row[slug]:
                pending.append((when + _POLL_SECS, slug))
                pending.sort()
        for at, done in pending:
            yield at - start, _resolved_frame(markets[done], resolves[done]), markets[done].yes_token_id

    data.frames = frames()
    return data


def _levels(top: Decimal | None, step: Decimal, sizes: Sequence[Decimal]) -> list[dict[str, str]]:
    if top is None:
        return []
    out = []
    for i, size in enumerate(sizes):
        price = top + step * i
        if not 0 < price < 1:
            break
        out.append({"price": str(price), "size": str(size)})
    out.reverse()  # best level last, as the venue sends them
    return out


def _book_frame(market: Market, bid: Decimal | None, ask: Decimal | None, sizes: Sequence[Decimal]) -> str:
    tick = market.tick_size
    yes = {
        "event_type": "book",
        "asset_id": market.yes_token_id,
        "market": market.condition_id,
        "bids": _levels(bid, -tick, sizes),
        "asks": _levels(ask, tick, sizes),
        "tick_size": str(tick),
    }
    no = {
        "event_type": "book",
        "asset_id": market.no_token_id,
        "market": market.condition_id,
        "bids": _levels(None if ask is None else 1 - ask, -tick, sizes),
        "asks": _levels(None if bid is None else 1 - bid, tick, sizes),
        "tick_size": str(tick),
    }
    return json.dumps([yes, no], separators=(",", ":"))


def _ladder(
    top: Decimal | None,
    step: Decimal,
    sizes: Sequence[Decimal],
    ladders: dict[tuple[Decimal, Decimal], tuple[Decimal, ...]],
) -> tuple[tuple[Decimal, Decimal], ...]:
    """`_levels` as the parser reads them: (price, size), best level last."""
    if top is None:
        return ()
    prices = ladders.get((top, step))
    if prices is None:
        found = []
        for i in range(len(sizes)):
            price = top + step * i
            if not 0 < price < 1:
                break
            found.append(price)
        prices = ladders[(top, step)] = tuple(found)
    return tuple(reversed(tuple(zip(prices, sizes, strict=False))))


def _book_parsed(
    market: Market,
    bid: Decimal | None,
    ask: Decimal | None,
    sizes: Sequence[Decimal],
    ladders: dict[tuple[Decimal, Decimal], tuple[Decimal, ...]],
) -> ParsedFrame:
    """What `parse_market_frame(_book_frame(market, bid, ask, sizes), ticks)` gives, without writing and reading the
    JSON text (a test holds them equal): the quotes day has ~800,000 of these frames."""
    tick = market.tick_size
    no_bid = None if ask is None else 1 - ask
    no_ask = None if bid is None else 1 - bid
    yes_bids, yes_asks = _ladder(bid, -tick, sizes, ladders), _ladder(ask, tick, sizes, ladders)
    no_bids, no_asks = _ladder(no_bid, -tick, sizes, ladders), _ladder(no_ask, tick, sizes, ladders)
    condition_id = market.condition_id
    return ParsedFrame(
        events=[
            BookSnapshot(market.yes_token_id, condition_id, yes_bids, yes_asks, None, tick),
            BookSnapshot(market.no_token_id, condition_id, no_bids, no_asks, None, tick),
        ],
        entries=len(yes_bids) + len(yes_asks) + len(no_bids) + len(no_asks),
    )


def _resolved_frame(market: Market, yes_won: int) -> str:
    winner = market.yes_token_id if yes_won else market.no_token_id
    return json.dumps(
        {
            "event_type": "market_resolved",
            "market": market.condition_id,
            "assets_ids": list(market.token_ids),
            "winning_asset_id": winner,
            "winning_outcome": "Yes" if yes_won else "No",
        },
        separators=(",", ":"),
    )


# -- the feed -----------------------------------------------------------------------------------------------------


class _ReplayConnection:
    """One market-data connection (`MarketFeedConnection`): the frames of its assets, parsed as they are received;
    a PING is answered by a PONG after what the reader was already handed. Frames reach it through its `inbox`, or
    straight from the feed when its reader is the one pulling them (`ReplayFeed`)."""

    def __init__(self, feed: ReplayFeed, assets: Sequence[str], ticks: Mapping[str, Decimal]) -> None:
        self._feed = feed
        self._ticks = ticks
        self.assets = set(assets)
        self.inbox: deque[str | ParsedFrame] = deque()
        self.arrived = trio.Event()

    def hand(self, text: str | ParsedFrame) -> None:
        self.inbox.append(text)
        self.arrived.set()

    async def receive(self) -> ParsedFrame:
        frame = await self._feed.next_for(self)
        return frame if isinstance(frame, ParsedFrame) else parse_market_frame(frame, self._ticks)

    async def ping(self) -> None:
        self.hand(_PONG)
        await trio.lowlevel.checkpoint()

    async def subscribe(self, asset_ids: Sequence[str]) -> None:
        self.assets.update(asset_ids)
        self._feed.reroute()
        await trio.lowlevel.checkpoint()

    async def unsubscribe(self, asset_ids: Sequence[str]) -> None:
        self.assets.difference_update(asset_ids)
        self._feed.reroute()
        await trio.lowlevel.checkpoint()


def _autojumping(clock: object) -> MockClock | None:
    """The run's clock when it is a virtual one that jumps as soon as every task waits (`virtual_clock`)."""
    if isinstance(clock, MockClock) and clock.autojump_threshold == 0 and clock.rate == 0:
        return clock
    return None


class ReplayFeed:
    """The `MarketFeed` port over recorded frames: `drive(frames)` hands each frame, at its time on the Trio clock,
    to the open connection that follows its asset. A frame for an asset no connection follows is counted
    (`undelivered`).

    The frames are pulled by a reader: one connection's reader waiting for a frame pulls the next ones (the other
    readers wait on their inbox); a frame for another connection goes to that one's inbox and wakes it. A frame due
    later than now waits for its time with the clock as any timer does, except when nothing could happen before it
    (no task runnable, no deadline sooner) on the virtual clock: then the reader moves the clock itself (what the
    clock's autojump would do) and takes the frame at once, with no trip through the scheduler. Frames due at the
    same instant are taken one after the other (at most `_BATCH` before the reader lets the other tasks run). With
    no connection open, `drive` hands the frames out itself."""

    def __init__(self) -> None:
        self._connections: list[_ReplayConnection] = []
        self._route: dict[str, _ReplayConnection] = {}
        self.undelivered = 0
        self.sent = 0
        self._rerouted = trio.Event()
        self._frames: Iterator[TimedFrame] | None = None  # while driving
        self._peeked: TimedFrame | None = None
        self._origin = 0.0
        self._last = 0.0
        self._on_frame: Any = None
        self._clock: MockClock | None = None
        self._idle_until: Callable[[], float | None] = lambda: None  # set by `drive`
        self._pulling: _ReplayConnection | None = None
        self._driver_wake = trio.Event()
        self._unyielded = 0

    def reroute(self) -> None:
        self._route = {a: c for c in self._connections for a in sorted(c.assets)}
        self._rerouted.set()

    @asynccontextmanager
    async def _connect(self, asset_ids: Sequence[str], ticks: Mapping[str, Decimal]) -> AsyncIterator[Any]:
        connection = _ReplayConnection(self, asset_ids, ticks)
        self._connections.append(connection)
        self.reroute()
        self._kick()
        try:
            await trio.lowlevel.checkpoint()
            yield connection
        finally:
            self._connections.remove(connection)
            self.reroute()
            self._kick()

    def connect(
        self, asset_ids: Sequence[str], ticks: Mapping[str, Decimal], *, custom_feature_enabled: bool = False
    ) -> Any:
        return self._connect(asset_ids, ticks)

    async def wait_following(self, assets: Iterable[str]) -> None:
        """Until every asset is followed by an open connection."""
        wanted = list(assets)
        while not all(a in self._route for a in wanted):
            self._rerouted = trio.Event()
            await self._rerouted.wait()

    def _kick(self) -> None:
        """Wake every waiting reader and the driver: whoever finds nobody pulling takes over."""
        for connection in self._connections:
            connection.arrived.set()
        self._driver_wake.set()

    async def drive(self, frames: Iterable[TimedFrame], *, on_frame: Any = None) -> float:
        """Send every frame at `origin + its time`; returns the time of the last one."""
        self._origin = trio.current_time()
        self._last = 0.0
        self._peeked = None
        self._on_frame = on_frame
        self._clock = _autojumping(trio.lowlevel.current_clock())
        self._idle_until = _idle_probe()
        self._frames = iter(frames)
        self._kick()
        while self._frames is not None:
            if self._connections:  # a reader pulls
                self._driver_wake = trio.Event()
                await self._driver_wake.wait()
                continue
            frame = self._peek()
            if frame is None:
                break
            due = self._origin + self._last
            if due > trio.current_time():
                await trio.sleep_until(due)
            self._peeked = None
            connection = self._deliver(frame)
            if connection is not None:  # opened while this one waited
                connection.hand(frame[1])
        return self._last

    def _peek(self) -> TimedFrame | None:
        """The next frame (kept until delivered), with `_last` its time; None (and the drive ends) after the last."""
        frame = self._peeked
        if frame is None:
            assert self._frames is not None
            frame = self._peeked = next(self._frames, None)
            if frame is None:
                self._frames = None
                self._driver_wake.set()
                return None
            self._last = max(self._last, frame[0])
        return frame

    def _deliver(self, frame: TimedFrame) -> _ReplayConnection | None:
        connection = self._route.get(frame[2])
        if connection is None:
            self.undelivered += 1
            return None
        self.sent += 1
        if self._on_frame is not None:
            self._on_frame()
        return connection

    async def next_for(self, connection: _ReplayConnection) -> str | ParsedFrame:
        """The next frame for `connection`: from its inbox, or pulled from the frames when nobody else pulls."""
        while True:
            if connection.inbox:
                return connection.inbox.popleft()
            if self._frames is not None and self._pulling is None:
                self._pulling = connection
                try:
                    text = await self._pull(connection)
                finally:
                    self._pulling = None
                if text is not None:
                    return text
                if connection.inbox:
                    continue
                # The frames ended, or the last one went to another reader, which pulls the next ones after it.
            connection.arrived = trio.Event()
            await connection.arrived.wait()

    async def _pull(self, reader: _ReplayConnection) -> str | ParsedFrame | None:
        """Hand out frames until one is for `reader` (returned), or something arrives in its inbox, or the frames
        end, or the frame just handed to another reader is the last of its instant (None): that reader pulls on
        once it has read it, with no extra trip through the scheduler for this one."""
        while True:
            frame = self._peek()
            if frame is None:
                return None
            due = self._origin + self._last
            now = trio.current_time()
            if due > now and not self._jump(due, now):
                if self._clock is not None:  # the others run first; the reader goes on when they all wait
                    await wait_all_tasks_blocked()
                else:
                    reader.arrived = trio.Event()
                    with trio.move_on_at(due):
                        await reader.arrived.wait()
                self._unyielded = 0
                if reader.inbox:
                    return None
                continue
            self._peeked = None
            connection = self._deliver(frame)
            if connection is reader:
                self._unyielded += 1
                if self._unyielded >= _BATCH:  # the frame is taken: a cancellation must not lose it
                    self._unyielded = 0
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return frame[1]
            if connection is not None:
                connection.hand(frame[1])
                if self._peek() is None or self._origin + self._last > trio.current_time():
                    return None

    def _jump(self, due: float, now: float) -> bool:
        """Move the virtual clock to `due` when nothing could happen before (what its autojump would do): True. When
        another task can run, False; when a timer expires first, the clock moves to it, and False: its task runs
        next, and the reader once every task waits again (`wait_all_tasks_blocked`), with no trip through the
        clock's own autojump and no timer of the reader's."""
        clock = self._clock
        if clock is None:
            return False
        next_timer = self._idle_until()
        if next_timer is None:
            return False
        if due < next_timer:
            clock.jump(due - now)
            return True
        if next_timer > now:
            clock.jump(next_timer - now)
        return False


def _idle_probe(*, internals: bool = True) -> Callable[[], float | None]:
    """For this Trio run: a function that says whether every task waits, with the time of the next timer (inf when
    there is none), or None when a task can run or a callback is queued.

    Trio's public `current_statistics()` answers this, but builds two statistics objects to do it (~3 µs, a tenth
    of a replayed frame, asked once per frame); the run's own queues answer in a tenth of that. They are Trio's
    internals, so the public call stands in whenever a Trio version lays them out otherwise."""
    runner = getattr(getattr(trio._core._run, "GLOBAL_RUN_CONTEXT", None), "runner", None)
    runq = getattr(runner, "runq", None)
    size = getattr(getattr(runner, "entry_queue", None), "size", None)
    next_deadline = getattr(getattr(runner, "deadlines", None), "next_deadline", None)
    if internals and isinstance(runq, deque) and callable(size) and callable(next_deadline):

        def internal() -> float | None:
            if runq or size():
                return None
            return float(next_deadline())

        return internal

    def public() -> float | None:
        stats = trio.lowlevel.current_statistics()
        if stats.tasks_runnable or stats.run_sync_soon_queue_size:
            return None
        return trio.current_time() + stats.seconds_to_next_deadline

    return public


# -- a sim scenario ---------------------------------------------------------------------------------------------


class _NoNetwork(httpx.AsyncBaseTransport):
    """The HTTP client's transport in a backtest: nothing in one may reach the network, and a request that tried
    would fail at once. (Also spares each backtest the default transport's TLS context, a few milliseconds.)"""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"a backtest reaches no network: {request.method} {request.url}", request=request)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimData:
    """A sim scenario as backtest input: the in-process sim runs on the same virtual clock for `duration_secs`, its
    market channel reached over in-memory streams (the Polymarket feed and parser, as `trader run` uses them)."""

    config: SimConfig
    duration_secs: float


def _sim_market(market: SimMarket) -> Market:
    fees = FeeSchedule(rate=market.fees.rate, exponent=market.fees.exponent) if market.fees.enabled else NO_FEES
    return Market(
        condition_id=market.condition_id,
        question=market.question,
        slug=market.slug,
        yes_token_id=market.token_ids[0],
        no_token_id=market.token_ids[1],
        tick_size=market.tick_size,
        min_order_size=market.min_order_size,
        fees=fees,
        neg_risk=market.neg_risk,
        neg_risk_market_id=market.neg_risk_market_id or None,
        outcomes=market.outcomes,
    )


def _sim_input(sim: SimVenue, data: SimData) -> BacktestData:
    listed, sim_events = sim.scenario.listing()
    markets = {m.condition_id: _sim_market(m) for m in listed if not m.closed}
    events = [
        NegRiskEvent(
            event_id=e.event_id,
            title=e.title,
            markets=tuple(markets[c] for c in e.market_ids),
            complete=e.complete,
        )
        for e in sim_events
        if e.neg_risk and all(c in markets for c in e.market_ids)
    ]
    config = data.config
    return BacktestData(
        label=f"sim scenario {config.scenario} (markets {config.markets}, seed {config.seed}, "
        f"{data.duration_secs:g} s)",
        markets=markets,
        events=events,
        frames=iter(()),
        start_ns=int(sim.now() * 1e9),
    )


def _hub_factory(nursery: trio.Nursery, sim: SimVenue) -> WebSocketFactory:
    """Connections to the sim's market channel over in-memory streams (no socket: the virtual clock holds)."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        client, server = memory_stream_pair()
        nursery.start_soon(sim.ws.handle, server, "/ws/market")
        async with websocket_over_stream(
            client,
            "sim",
            "/ws/market",
            max_message_size=MAX_MESSAGE_SIZE,
            handshake_timeout_secs=10.0,
            close_timeout_secs=1.0,
        ) as ws:
            yield ws

    return connect


# -- the run ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    summary: RunSummary
    data: BacktestData
    store: MemoryStore
    events: list[tuple[float, object]]  # (seconds after the start, order event / fill / risk denial), in order
    equity: list[tuple[float, Decimal, Decimal]]  # (seconds after the start, equity, cash)
    markets_by_token: dict[str, Market]
    frames_in: int
    frames_delivered: int
    frames_undelivered: int
    virtual_secs: float
    decisions: dict[str, object]  # the book at each order's decision: client order id -> (best bid, best ask)
    final_marks: dict[str, Decimal]  # token -> its mid at the end


def backtest_settings(settings: Settings) -> Settings:
    """The run's settings as a backtest needs them: paper mode, no sniper (there is no scoreboard in the data), no
    HTTP server, every asset followable on as few connections as possible, and analyzers that run at once."""
    market_data = dataclasses.replace(settings.market_data, max_assets_per_connection=500)
    run = dataclasses.replace(settings.run, live=False)
    sniper = dataclasses.replace(settings.sniper, enabled=False)
    markets = dataclasses.replace(settings.markets, max_markets=10**9)
    # On the virtual clock the analyzers' CPU delays nothing: they run at once, on the books the strategies saw,
    # with no copies of them (the same analyses as deferred ones, on the same books).
    engine = dataclasses.replace(settings.strategy_engine, defer_analyses=False)
    return dataclasses.replace(
        settings, market_data=market_data, run=run, sniper=sniper, markets=markets, strategy_engine=engine
    )


async def run_backtest(
    settings: Settings, data: BacktestData | SimData, *, equity_every_secs: float = 60.0, settle_secs: float = 30.0
) -> BacktestResult:
    """Run the engine's core over `data` (see the module docstring). Call inside `trio.run` with a `MockClock`
    (autojump_threshold=0) for a virtual clock; it works on the real clock as well, only slower."""
    settings = backtest_settings(settings)
    books = Books()
    store = MemoryStore()
    events: list[tuple[float, object]] = []
    equity: list[tuple[float, Decimal, Decimal]] = []
    decisions: dict[str, object] = {}
    origin = trio.current_time()
    simulated: AbstractAsyncContextManager[SimVenue | None] = (
        open_sim_venue(dataclasses.replace(data.config, start_time=data.config.start_time or 1.8e9))
        if isinstance(data, SimData)
        else nullcontext(None)
    )
    async with (
        simulated as sim,
        open_engine_store(store, settings.store_sink) as engine_store,
        httpx.AsyncClient(transport=_NoNetwork()) as http,  # no ESPN, no Gamma (their clients want one)
        trio.open_nursery() as nursery,
    ):
        feed = ReplayFeed()
        market_data = MarketDataService(
            feed if sim is None else PolymarketMarketFeed(_hub_factory(nursery, sim)), books, settings.market_data
        )
        if isinstance(data, SimData):
            assert sim is not None
            sim_data, data = data, _sim_input(sim, data)
        sinks = Sinks(raw_store=store, store=engine_store, outputs=Outputs(MemoryBus(keep_last=1)))
        await nursery.start(market_data.run)
        directory = MarketDirectory()
        tracked: dict[str, Market] = {}
        for market in data.markets.values():
            tracked[market.condition_id] = market
            directory.remember(market)
            market_data.track(market)
        neg_risk = NegRiskEvents()
        neg_risk.current = tuple(data.events)
        cash = settings.run.starting_cash_usd
        paper = paper_venue(settings, books, cash, [])
        await nursery.start(follow_books, paper, books)
        capital = PaperCapital(paper, partial(paper_resolution, books, None), settings.paper_capital)
        side = VenueSide(
            endpoints=Endpoints("backtest:", "backtest:", "backtest:", "backtest:", "", "", ""),
            sim=None,
            books=books,
            market_data=market_data,
            tracked=tracked,
            events=neg_risk,
            gamma=GammaClient(http, "http://backtest.invalid"),
            discovery=RefreshStatistics(),
            venue=paper,
            live=None,
            paper=paper,
            restart=None,
            positions=[],
            cash=cash,
            directory=directory,
            capital=capital,
        )
        async with open_core(settings, sinks, side, http) as core:

            def on_event(event: object) -> None:
                now = trio.current_time() - origin
                events.append((now, event))
                if isinstance(event, OrderFilled):
                    equity.append((now, *_equity(core)))

            core.manager.add_listener(on_event)
            _watch_decisions(core, books, decisions)
            nursery.start_soon(_sample_equity, core, equity, origin, equity_every_secs)
            if sim is None:
                await feed.wait_following([t for m in data.markets.values() for t in m.token_ids])
                last = await feed.drive(data.frames)
            else:
                await trio.sleep(sim_data.duration_secs)
                last = trio.current_time() - origin
                data.input_frames = market_data.statistics().frames
            # The data ends: no new decisions on books that no longer move (as `trader run` stops its strategies
            # first), then the orders in flight, settlements and redemptions finish.
            engine = settings.strategy_engine
            await trio.sleep(engine.coalesce_secs + engine.min_wakeup_interval_secs)  # the last frame's own decisions
            core.strategy_scope.cancel()
            await trio.sleep_until(origin + last + settle_secs)
            virtual = trio.current_time() - origin
            report = await core.execution.drain(settings.run.drain_secs, cancel_resting=True)
            with trio.move_on_after(settings.supervisor.opportunities_flush_secs):
                await core.opportunities.write()
            wallet = await check_wallet(side, core)
            equity.append((virtual, *_equity(core)))
            final_marks = core.marks()
            for cell in books.markets.values():  # a resolved market's tokens are worth their payout
                if cell.resolved_winner is not None:
                    for token in cell.market.token_ids:
                        final_marks[token] = Decimal(1 if token == cell.resolved_winner else 0)
            summary = build_summary(
                settings, side, core, report, exit_reason="end_of_data", duration=virtual, wallet=wallet
            )
        nursery.cancel_scope.cancel()
    return BacktestResult(
        summary=summary,
        data=data,
        store=store,
        events=events,
        equity=equity,
        markets_by_token={t: m for m in data.markets.values() for t in m.token_ids},
        frames_in=data.input_frames,
        frames_delivered=feed.sent if sim is None else data.input_frames,
        frames_undelivered=feed.undelivered,
        virtual_secs=virtual,
        decisions=decisions,
        final_marks=final_marks,
    )


def _equity(core: Core) -> tuple[Decimal, Decimal]:
    portfolio = core.manager.portfolio
    marks = core.held_marks()  # every minute and at every fill: not the mids of every book followed
    positions_value = sum(
        (p.quantity * marks.get(t, Decimal(0)) for t, p in portfolio.positions.items() if p.quantity), Decimal(0)
    )
    return portfolio.cash + positions_value + portfolio.receivable, portfolio.cash


async def _sample_equity(
    core: Core, equity: list[tuple[float, Decimal, Decimal]], origin: float, every_secs: float
) -> None:
    while True:
        equity.append((trio.current_time() - origin, *_equity(core)))
        await trio.sleep(every_secs)


def _watch_decisions(core: Core, books: Books, decisions: dict[str, object]) -> None:
    """The book at decision time of each order: its token's best bid and ask when the order was submitted."""

    def on_event(event: object) -> None:
        cid = getattr(event, "client_order_id", None)
        if cid is None or cid in decisions:
            return
        order = core.manager.get(cid)
        if order is None:
            return
        token = books.get_token(order.token_id)
        if token is None:
            return
        bid, ask = token.best_bid(), token.best_ask()
        decisions[cid] = (
            None if bid is None else bid.price,
            None if ask is None else ask.price,
        )

    core.manager.add_listener(on_event)


def frames_hash(frames: Iterable[TimedFrame]) -> str:
    digest = hashlib.sha256()
    for at, text, _asset in frames:
        digest.update(
            f"{at:.9f}\0{text!r}\n".encode() if isinstance(text, ParsedFrame) else f"{at:.9f}\0{text}\n".encode()
        )
    return digest.hexdigest()
