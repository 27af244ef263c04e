"""The `frames` scenario: replay a JSON-lines file of market-channel frames to market subscribers.

    trader sim --scenario frames --scenario-param path=session.jsonl --scenario-param rate=original

The file has one WebSocket text frame per line, verbatim (a JSON object, or a JSON array of objects, each with an
`event_type`), as `sample_market_ws.jsonl` (shipped in `trader/venues/sim/data/`, the default) or a recording.
Lines that are not such frames (blank, `PONG`) are skipped and counted.

Listing (derived from the frames): one binary market per `market` (condition id) seen, with the two asset ids the
file shows for it (the first seen is outcome 0, "Yes"), the tick size of its first `book` frame, and a minimum
order size no larger than the smallest level in the file. A market with other than two assets is an error.
Markets are *unlinked* (`SimMarket.complementary=False`): each token's book is exactly what the file says.

Replay: each line is sent verbatim to every market subscriber of any asset it names (a line naming several
markets goes whole). Books are kept in step: before any other task can run, the exchange's books are set to the
replayed ones (GTC post-only orders of the participant `sim-replay`, placed and cancelled without publishing
their own market events), so REST `/book`, `/price`, `/midpoint`, Gamma `bestBid`/`bestAsk` and matching all
agree with the last frame sent. A level the exchange refuses (off its tick grid, out of range, crossing a
client's order) is counted in `stats["sync_drops"]`, not placed. Client orders rest and trade as usual; the next
frame that names a level resets the replay's own size there. The `book` frames' `hash` and `last_trade_price`
are the file's; REST `/book` computes its own.

Parameters (`--scenario-param key=value`):
- `path` (default: the shipped sample);
- `rate`: `original` (the frames' own timestamps; default), `max` (as fast as the slowest subscriber drains,
  keeping its queue at most half full), or a number of frames per second;
- `speed` (default 1): with `original`, time runs this many times faster;
- `start`: `subscriber` (default: wait for the first subscriber of a replayed asset) or `now`;
- `loop` (default false): start over at the end (the file's first line should be the books' snapshots);
- `sync_secs` (default 0: before every pause, so nothing can see the books out of step): set the exchange's books
  at most this often instead; with `rate=max` a load test spends its CPU on frames, not on re-placing orders, and
  REST may lag the stream by up to `sync_secs`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Protocol, TypeVar

import structlog
import trio

from trader.domain.numbers import Side, parse_decimal, parse_tick_size, to_base_units
from trader.errors import ConfigError, InputError
from trader.infra.recording import Frame as RecordedFrame
from trader.infra.recording import RecordingError, read_recording
from trader.venues.sim.exchange import Accepted, Exchange, OrderRequest, Rejected
from trader.venues.sim.markets import (
    PIPS_PER_ONE,
    UNITS_PER_ONE,
    SimEvent,
    SimMarket,
    gamma_id_of,
    hex_id,
    pips_of,
)
from trader.venues.sim.scenarios import ScenarioContext, ScenarioOptions
from trader.venues.sim.ws import WsHub

log = structlog.get_logger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_FRAMES = DATA_DIR / "sample_market_ws.jsonl"

REPLAY_OWNER = "sim-replay"
_REPLAY_ADDRESS = "0x" + hex_id(REPLAY_OWNER)[-40:]
_FUNDS = 10**12 * UNITS_PER_ONE
_MAX_MIN_ORDER_SIZE = Decimal(5)

P = TypeVar("P")


# -- parameters ---------------------------------------------------------------------------------------------------


def parse_scenario_params(cls: type[P], scenario: str, params: Mapping[str, str]) -> P:
    """A frozen dataclass of parameters from `--scenario-param` strings; unknown keys and bad values are a
    `ConfigError` naming the key. Field types: str, int, float, bool."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, object] = {}
    for key, text in params.items():
        spec = known.get(key)
        if spec is None:
            raise ConfigError(f"unknown {scenario} scenario parameter {key!r}; known: {', '.join(known)}")
        kind = str(spec.type)
        try:
            if kind == "bool":
                if text.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise ValueError(text)
                values[key] = text.lower() in ("1", "true", "yes")
            elif kind == "int":
                values[key] = int(text)
            elif kind == "float":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError(text)
                values[key] = number
            else:
                values[key] = text
        except ValueError:
            raise ConfigError(f"{scenario} scenario parameter {key}: expected {kind}, got {text!r}") from None
    return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class FramesParams:
    path: str = str(SAMPLE_FRAMES)
    rate: str = "original"
    speed: float = 1.0
    start: str = "subscriber"
    loop: bool = False
    sync_secs: float = 0.0

    def frames_per_sec(self) -> float | None:
        """None for `original` and `max`."""
        if self.rate in ("original", "max"):
            return None
        try:
            rate = float(self.rate)
        except ValueError:
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError(
                f"frames scenario parameter rate: expected original, max or frames/s > 0, got {self.rate!r}"
            )
        return rate

    def check(self) -> None:
        self.frames_per_sec()
        if not self.sync_secs >= 0:
            raise ConfigError(f"frames scenario parameter sync_secs must be >= 0, got {self.sync_secs}")
        if not self.speed > 0:
            raise ConfigError(f"frames scenario parameter speed must be > 0, got {self.speed}")
        if self.start not in ("subscriber", "now"):
            raise ConfigError(f"frames scenario parameter start: expected subscriber or now, got {self.start!r}")


# -- the file -----------------------------------------------------------------------------------------------------

Levels = dict[int, int]  # pips -> base units


@dataclass(frozen=True, slots=True)
class BookOp:
    """A `book` frame: replace the asset's book."""

    asset: str
    bids: Levels
    asks: Levels


@dataclass(frozen=True, slots=True)
class LevelOp:
    """One `price_changes[]` entry: the new total size of one level (0 removes it)."""

    asset: str
    is_bid: bool
    price: int
    size: int


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    line: int  # 1-based line number in the file
    text: str  # the line, verbatim
    assets: frozenset[str]
    timestamp_ms: int | None
    ops: tuple[BookOp | LevelOp, ...]


@dataclass(slots=True)
class _MarketSeen:
    assets: list[str] = field(default_factory=list)
    tick: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FrameFile:
    frames: tuple[ReplayFrame, ...]
    markets: dict[str, tuple[str, str]]  # condition id -> (asset 0, asset 1)
    ticks: dict[str, Decimal]  # condition id -> tick of its first book frame
    smallest_size: Decimal | None
    skipped_lines: int


def _decimal(value: object, where: str) -> Decimal:
    if not isinstance(value, str):
        raise InputError(where, f"expected a decimal string, got {value!r}")
    number = parse_decimal(value, where)
    if number < 0:
        raise InputError(where, f"not a non-negative decimal: {value!r}")
    return number


def _units(value: object, where: str) -> int:
    return to_base_units(_decimal(value, where), where)


def _pips(value: object, where: str) -> int:
    price = _decimal(value, where)
    if price > 1:
        raise InputError(where, f"price {value} is above 1")
    return pips_of(price, where)


def _str(event: Mapping[str, object], name: str, where: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}.{name}", "expected a non-empty string")
    return value


def _levels(event: Mapping[str, object], side: str, where: str) -> tuple[Levels, Decimal | None]:
    raw = event.get(side)
    if not isinstance(raw, list):
        raise InputError(f"{where}.{side}", "expected a list of levels")
    levels: Levels = {}
    smallest: Decimal | None = None
    for n, level in enumerate(raw):
        at = f"{where}.{side}[{n}]"
        if not isinstance(level, dict):
            raise InputError(at, "expected {price, size}")
        size = _units(level.get("size"), at + ".size")
        if size:
            levels[_pips(level.get("price"), at + ".price")] = size
            decimal_size = Decimal(size) / UNITS_PER_ONE
            smallest = decimal_size if smallest is None else min(smallest, decimal_size)
    return levels, smallest


def _recording_lines(paths: Sequence[str]) -> tuple[list[str], list[int | None]]:
    """The frames of a recording (`trader record`), each with its receive time in ms."""
    lines: list[str] = []
    stamps: list[int | None] = []
    try:
        for _meta, record in read_recording(paths):
            if isinstance(record, RecordedFrame):
                lines.append(record.text)
                stamps.append(record.t_ns // 1_000_000)
    except RecordingError as exc:
        raise ConfigError(f"recording: {exc}") from None
    return lines, stamps


def is_recording(path: Path) -> bool:
    """A recording's directory or one of its files (gzip'd), rather than a JSON-lines frames file."""
    return path.is_dir() or path.name.endswith(".gz")


def load_frames(path: Path | Sequence[Path]) -> FrameFile:
    """Read and check a frames file, or a recording (`trader record`: one or more files or directories, replayed at
    the recorded receive times). A frame the sim could not replay consistently (a bad price or size, a market with
    other than two assets) is a `ConfigError` naming the line and field."""
    paths = [path] if isinstance(path, Path) else list(path)
    received: list[int | None] = []
    if any(is_recording(p) for p in paths):
        lines, received = _recording_lines([str(p) for p in paths])
        path = paths[0]
    else:
        path = paths[0]
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"frames file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"frames file {path}: not UTF-8 text") from None
    frames: list[ReplayFrame] = []
    seen: dict[str, _MarketSeen] = {}
    asset_market: dict[str, str] = {}
    smallest: Decimal | None = None
    skipped = 0

    def note(market: str, asset: str, where: str) -> None:
        owner = asset_market.setdefault(asset, market)
        if owner != market:
            raise InputError(where, f"asset {asset[:12]}... belongs to two markets ({owner[:12]}..., {market[:12]}...)")
        entry = seen.setdefault(market, _MarketSeen())
        if asset not in entry.assets:
            entry.assets.append(asset)

    for number, line in enumerate(lines, start=1):
        text = line.strip()
        try:
            payload = json.loads(text) if text.startswith(("{", "[")) else None
        except ValueError:
            payload = None
        events = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else []
        if not events or not all(isinstance(e, dict) and isinstance(e.get("event_type"), str) for e in events):
            skipped += 1
            continue
        ops: list[BookOp | LevelOp] = []
        assets: set[str] = set()
        stamps: list[int] = []
        try:
            for index, event in enumerate(events):
                where = f"line {number}" + (f"[{index}]" if isinstance(payload, list) else "")
                kind = event["event_type"]
                market = _str(event, "market", where)
                stamp = event.get("timestamp")
                if isinstance(stamp, str) and stamp.isdigit():
                    stamps.append(int(stamp))
                if kind == "price_change":
                    changes = event.get("price_changes")
                    if not isinstance(changes, list):
                        raise InputError(f"{where}.price_changes", "expected a list")
                    for n, change in enumerate(changes):
                        at = f"{where}.price_changes[{n}]"
                        if not isinstance(change, dict):
                            raise InputError(at, "expected an object")
                        asset = _str(change, "asset_id", at)
                        side = change.get("side")
                        if side not in ("BUY", "SELL"):
                            raise InputError(at + ".side", f"expected BUY or SELL, got {side!r}")
                        size = _units(change.get("size"), at + ".size")
                        if size:
                            decimal_size = Decimal(size) / UNITS_PER_ONE
                            smallest = decimal_size if smallest is None else min(smallest, decimal_size)
                        ops.append(LevelOp(asset, side == "BUY", _pips(change.get("price"), at + ".price"), size))
                        note(market, asset, at)
                        assets.add(asset)
                    continue
                named = event.get("assets_ids")
                if kind not in ("book", "tick_size_change", "last_trade_price") and not event.get("asset_id"):
                    # market_resolved, new_market: sent (verbatim) to the subscribers of the assets they name
                    if isinstance(named, list):
                        assets.update(a for a in named if isinstance(a, str) and a in asset_market)
                    continue
                asset = _str(event, "asset_id", where)
                note(market, asset, where)
                assets.add(asset)
                if kind == "book":
                    bids, low_bid = _levels(event, "bids", where)
                    asks, low_ask = _levels(event, "asks", where)
                    for low in (low_bid, low_ask):
                        if low is not None:
                            smallest = low if smallest is None else min(smallest, low)
                    ops.append(BookOp(asset, bids, asks))
                    tick = parse_tick_size(event.get("tick_size", "0.01"), where + ".tick_size")
                    if seen[market].tick is None:
                        seen[market].tick = tick
        except InputError as exc:
            raise ConfigError(f"frames file {path}: {exc}") from None
        if received:
            stamps = [received[number - 1] or 0]
        frames.append(ReplayFrame(number, text, frozenset(assets), min(stamps) if stamps else None, tuple(ops)))
    markets: dict[str, tuple[str, str]] = {}
    for market, entry in seen.items():
        if len(entry.assets) != 2:
            raise ConfigError(
                f"frames file {path}: market {market} shows {len(entry.assets)} asset(s); a binary market needs 2"
            )
        markets[market] = (entry.assets[0], entry.assets[1])
    if not frames:
        raise ConfigError(f"frames file {path}: no market frames")
    ticks = {m: e.tick or Decimal("0.01") for m, e in seen.items()}
    return FrameFile(tuple(frames), markets, ticks, smallest, skipped)


# -- replayed books and the exchange mirror -----------------------------------------------------------------------


class ReplayBooks:
    """The books as the replayed frames leave them, per asset: (bids, asks), pips -> base units."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[Levels, Levels]] = {}

    def apply(self, op: BookOp | LevelOp) -> None:
        if isinstance(op, BookOp):
            self.books[op.asset] = (dict(op.bids), dict(op.asks))
            return
        bids, asks = self.books.setdefault(op.asset, ({}, {}))
        side = bids if op.is_bid else asks
        if op.size:
            side[op.price] = op.size
        else:
            side.pop(op.price, None)


class _Mirror:
    """Keeps the exchange's books equal to the replayed ones with the orders of `sim-replay`."""

    def __init__(self, exchange: Exchange, markets: Mapping[str, SimMarket]) -> None:
        self.exchange = exchange
        self.market_of = {token: m for m in markets.values() for token in m.token_ids}
        self.resting: dict[tuple[str, bool, int], tuple[str, int]] = {}  # (asset, bid, pips) -> (order id, units)
        self.drops: dict[str, int] = {}
        self._seq = 0

    def sync(self, books: ReplayBooks, assets: Iterable[str], now: float) -> None:
        stale: list[str] = []
        wanted: list[tuple[str, bool, int, int]] = []
        for asset in assets:
            bids, asks = books.books.get(asset, ({}, {}))
            for is_bid, levels in ((True, bids), (False, asks)):
                for key in [k for k in self.resting if k[0] == asset and k[1] == is_bid and k[2] not in levels]:
                    stale.append(self.resting.pop(key)[0])
                for price, units in levels.items():
                    current = self.resting.get((asset, is_bid, price))
                    order = self.exchange.order(current[0]) if current else None
                    if current and order is not None and order.status == "LIVE" and order.remaining == units:
                        continue
                    if current:
                        stale.append(self.resting.pop((asset, is_bid, price))[0])
                    wanted.append((asset, is_bid, price, units))
        if stale:
            self.exchange.cancel(REPLAY_OWNER, stale, now)
        if not wanted:
            return
        self.exchange.fund(
            _REPLAY_ADDRESS,
            collateral=_FUNDS,
            shares=dict.fromkeys({token for a, *_ in wanted for token in self.market_of[a].token_ids}, _FUNDS),
        )
        for asset, is_bid, price, units in wanted:
            self._seq += 1
            order_id = hex_id(f"frames:replay:{self._seq}")
            cash = units * price // PIPS_PER_ONE
            request = OrderRequest(
                order_id=order_id,
                owner=REPLAY_OWNER,
                maker_address=_REPLAY_ADDRESS,
                token_id=asset,
                side=Side.BUY if is_bid else Side.SELL,
                maker_amount=cash if is_bid else units,
                taker_amount=units if is_bid else cash,
                post_only=True,
            )
            result = self.exchange.submit(request, now)
            if isinstance(result, Accepted) and result.status == "live":
                self.resting[asset, is_bid, price] = (order_id, units)
            else:
                code = result.code if isinstance(result, Rejected) else "MATCHED"
                self.drops[code] = self.drops.get(code, 0) + 1


# -- publishing ---------------------------------------------------------------------------------------------------


class FramePublisher(Protocol):
    """Where replayed lines go: the sim's `WsHub`, or a test's recorder."""

    @property
    def queue_size(self) -> int:
        """Frames a subscriber's outgoing queue holds; `rate=max` waits while one is half full."""
        ...

    def publish(self, asset_ids: Collection[str], text: str) -> int:
        """Send `text` to every market subscriber of any of `asset_ids`; returns how many got it."""
        ...

    def backlog(self) -> int:
        """The fullest outgoing queue among market subscribers (frames not yet written)."""
        ...

    def subscribed(self, asset_ids: Collection[str]) -> bool:
        """Is anyone subscribed to one of `asset_ids`?"""
        ...

    def market_events_muted(self) -> AbstractContextManager[None]:
        """Inside the block, the exchange's own market events do not reach subscribers."""
        ...


def _publisher_of(context: ScenarioContext) -> FramePublisher:
    hub = getattr(context, "ws", None)
    if not isinstance(hub, WsHub):
        raise ConfigError("the frames scenario needs the sim's WebSocket hub (run it inside the sim venue)")
    return hub


# -- the scenario -------------------------------------------------------------------------------------------------


class FramesScenario:
    def __init__(self, options: ScenarioOptions, params: FramesParams, *, publisher: FramePublisher | None = None):
        params.check()
        self.params = params
        self.file = load_frames([Path(p).expanduser() for p in params.path.split(",") if p])
        self._publisher = publisher
        self.books = ReplayBooks()
        self.stats: dict[str, int] = {"frames_sent": 0, "deliveries": 0, "loops": 0}
        self.stats["skipped_lines"] = self.file.skipped_lines
        self._markets: dict[str, SimMarket] = {}
        self._events: list[SimEvent] = []
        self._mirror: _Mirror | None = None
        self._dirty: set[str] = set()
        self._last_sync = -math.inf
        min_size = min(_MAX_MIN_ORDER_SIZE, self.file.smallest_size or _MAX_MIN_ORDER_SIZE)
        for n, (condition_id, tokens) in enumerate(self.file.markets.items(), start=1):
            event_id = gamma_id_of(f"frames:event:{condition_id}", base=200_000)
            market = SimMarket(
                condition_id=condition_id,
                question_id=hex_id(f"frames:question:{condition_id}"),
                gamma_id=gamma_id_of(f"frames:gamma:{condition_id}"),
                question=f"Replayed market {n} ({condition_id[:10]})?",
                slug=f"replayed-market-{condition_id[2:10]}",
                token_ids=tokens,
                tick_size=self.file.ticks[condition_id],
                min_order_size=min_size,
                description=f"Replayed from {Path(params.path).name}",
                event_id=event_id,
                complementary=False,
            )
            self._markets[condition_id] = market
            self._events.append(
                SimEvent(event_id=event_id, slug=market.slug, title=market.question, market_ids=(condition_id,))
            )

    @classmethod
    def from_options(cls, options: ScenarioOptions) -> FramesScenario:
        return cls(options, parse_scenario_params(FramesParams, "frames", options.params))

    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]:
        return list(self._markets.values()), self._events

    @property
    def sync_drops(self) -> dict[str, int]:
        return dict(self._mirror.drops) if self._mirror else {}

    def setup(self, exchange: Exchange, now: float) -> None:
        """Seed the exchange with the books of the file's first line (its snapshot), before anyone connects."""
        self._mirror = _Mirror(exchange, self._markets)
        first = self.file.frames[0]
        for op in first.ops:
            self.books.apply(op)
        self._mirror.sync(self.books, sorted(first.assets), now)

    def _apply(self, frame: ReplayFrame) -> None:
        for op in frame.ops:
            self.books.apply(op)
        self._dirty |= frame.assets

    def _sync(self, publisher: FramePublisher, now: float, *, force: bool = False) -> None:
        if not self._dirty or self._mirror is None:
            return
        if not force and self.params.sync_secs and trio.current_time() < self._last_sync + self.params.sync_secs:
            return
        self._last_sync = trio.current_time()
        dirty, self._dirty = sorted(self._dirty), set()
        with publisher.market_events_muted():
            self._mirror.sync(self.books, dirty, now)

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        publisher = self._publisher or _publisher_of(context)
        exchange = context.exchange
        if self._mirror is None:
            self.setup(exchange, context.now())
        task_status.started()
        every = set().union(*(f.assets for f in self.file.frames))
        all_assets = frozenset(every)
        if self.params.start == "subscriber":
            while not publisher.subscribed(all_assets):  # noqa: ASYNC110 - the hub offers no event to wait on
                await trio.sleep(0.01)
        rate = self.params.frames_per_sec()
        high_water = max(1, publisher.queue_size // 2)
        frames = self.file.frames
        origin = trio.current_time()
        first_ms = next((f.timestamp_ms for f in frames if f.timestamp_ms is not None), 0)
        sent = 0  # over every pass, so a fixed rate holds across loops
        while True:
            start = trio.current_time()
            last_ms = first_ms
            for frame in frames:
                if self.params.rate == "original":
                    last_ms = frame.timestamp_ms if frame.timestamp_ms is not None else last_ms
                    due = start + (last_ms - first_ms) / 1000 / self.params.speed
                    if due > trio.current_time():
                        self._sync(publisher, context.now())
                        await trio.sleep_until(due)
                elif rate is not None:
                    self._sync(publisher, context.now())
                    await trio.sleep_until(origin + sent / rate)
                elif publisher.backlog() >= high_water or sent % 256 == 255:
                    self._sync(publisher, context.now())
                    await trio.lowlevel.checkpoint()
                    while publisher.backlog() >= high_water:  # noqa: ASYNC110 - as above
                        await trio.sleep(0.0005)
                self._apply(frame)
                self.stats["deliveries"] += publisher.publish(frame.assets, frame.text)
                self.stats["frames_sent"] += 1
                sent += 1
            self._sync(publisher, context.now(), force=not self.params.loop)
            if not self.params.loop:
                break
            self.stats["loops"] += 1
            await trio.lowlevel.checkpoint()
        log.info("sim_frames_replayed", frames=self.stats["frames_sent"], sync_drops=self.sync_drops)
