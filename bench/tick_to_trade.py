"""`python -m bench tick_to_trade [--events N] [--sim process|in-process]`: from the sim sending the frame that
opens an arbitrage to the sim receiving the engine's signed order, over loopback.

The real engine path of `trader run --live` runs in this process, on one Trio loop: market-data service (WebSocket)
-> books -> strategy engine (`sum_to_100`, plus the sum-deviation analyzer as `trader run` has it) -> execution (risk
gate, order manager with its write-ahead store as `trader run` builds it (SQLite behind the write-behind channel, the
intents appended to the intent journal first), rate limiter and breaker) -> the live Polymarket adapter (EIP-712
signing, L2 headers, `POST /orders`) -> the simulated venue (`static` scenario: quiet books, nothing moves),
over real loopback sockets. The sim runs in a child process of its own with its own Trio loop (`--sim process`, the
default: the real venue is another machine, so its WebSocket framing, its parsing of our POST, its signature checks
and its matching are not the engine's CPU), or in this process's Trio loop (`--sim in-process`, the earlier setup,
for comparison: there the sim's work runs on the engine's core, between the engine's steps). The bench drives the
sim (`bench._tick_to_trade_sim`) through one control channel in both cases: one JSON line per command and reply
over a socketpair to the child; the same commands handled directly in-process.

One event: on an unlinked market of the sim (independent YES and NO books) a large NO ask rests one tick under the
makers' ask (no arbitrage by itself); the bench places a YES ask one tick under fair (size `--size`), straight into
the sim's exchange, so the sim publishes the `price_change` frame that opens the gap (YES ask + NO ask = 1 - 2 ticks).
The engine buys the set (two FOK legs, in parallel); the YES ask is used up, so the book is back where it was. Before
the next event the bench waits until the basket is out of flight and the engine's books are back, then idles
`--idle-ms` (plus up to 5 ms of jitter, so events do not line up with the strategy engine's 100 ms tick). For every
event to be a fresh opportunity the bench configures: `refire_cooldown_secs=0` (sum_to_100), the risk gate's
`duplicate_window_secs=0`, order-rate and position limits out of reach. Everything else keeps its default.

Timestamps are `time.perf_counter_ns()`: on Linux that is CLOCK_MONOTONIC, one clock for every process of the
machine, so the sim's readings (taken in its process, sent back with `finish`) and the engine's subtract. At start
the bench checks it: the sim's clock is the same and its reading lies between two of the bench's (`clock_check_us`
is that window). They are taken through wrappers around the real components and the market feed's `frame_tap`
(no engine code is changed or patched); the first and the last on the sim's side, the rest on the engine's: the
sim's WebSocket writer starts sending the frame -> the feed has the frame text -> parsed -> applied to the books
by the market-data service (cells published) -> the intent is in the channel to execution -> the risk check
starts / ends -> the venue's `prepare` (order build + EIP-712 signature) starts / ends -> `submit` starts (after the
write-ahead intent and the rate limiter / breaker) -> the sim's kernel has the `POST /orders` request: its software
receive timestamp (`SO_TIMESTAMPNS`) of the segment that completed the request, on the sim's accepted socket. That
timestamp is CLOCK_REALTIME; the sim moves it onto CLOCK_MONOTONIC by the two clocks' offset read back to back as it
reads the bytes, so it errs by the few hundred ns between those reads, and an NTP step of the wall clock during the
run would shift it by the step. Where the kernel gives no timestamp the sim's read time stands in, and the headline
counts those requests (`arrival_fallbacks`). After the end point, reported apart: the sim's HTTP handler has the
request (`sim_handler`: the sim waking up and its h11 parse, the venue's work; the end point before this one, whose
total is `handler_total`), then its exchange has the orders (`sim_verify`: its authentication and signature check).
Switching the kernel's receive timestamps on (any socket asking for them) stamps every packet the machine receives,
a few tens of ns each. The legs go out together in one `POST /orders` (the engine's default, `batch_legs`); the
headline is the FIRST leg to reach the sim (the moment the venue has an order of ours); the last leg is reported too.

Stages (contiguous, they add up to the total): `wire` (sim send -> engine has the frame: WebSocket framing both
ways, loopback, waking the engine, the reader task), `parse` (decode + validate), `book` (apply + publish),
`strategy` (wake-up, evaluation, analyzer, until the intent is sent), `queue` (channel hop to execution), `risk`
(exposure + gate), `dispatch` (order task, arbitrage nursery, sending task), `sign` (build + sign every order of the
request, one by one), `persist` (the request's write-ahead intents: one journal append, or with
`--store sqlite-no-journal` one store transaction; rate limiter, breaker), `send` (body, L2 HMAC, HTTP client,
loopback, until the request's last bytes are at the sim's socket: neither the sim waking up nor its parse, which
are `sim_handler`).

Prints one JSON object per line: the setup, one line per stage and extra, then the headline with `p50_us` and
`p99_us` (and each stage's median, the last leg's, and `handler_p50_us`: the median to the sim's handler). The
machine is shared: the load average before and after is in the output, and the CPU share of this process
(`cpu_share`) and of the sim's (`sim_cpu_share`, when it has its own).
`extra_intents` counts intents beyond one per event: the strategy firing again on the gap after the first basket was
done but before the frame that takes the gap away reached the engine (the fill's reply can beat that frame).
Exit status 1 if events failed (no order reached the sim); a missed goal is reported, not an error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, cast

import httpx
import structlog
import trio

from bench._tick_to_trade_sim import Gap, LineChannel, SimSide, clock, clock_implementation, sim_config
from trader.domain.intents import Intent, OrderIntent
from trader.domain.market import Market, NegRiskEvent
from trader.domain.orders import Order
from trader.engine.books import Books
from trader.engine.breaker import Breakers
from trader.engine.execution import ExecutionService, book_health_from, tick_from
from trader.engine.market_data import MarketDataService
from trader.engine.order_manager import OrderManager
from trader.engine.rate_limit import RateLimiter
from trader.engine.risk import RiskDecision, RiskGate, RiskSettings
from trader.engine.strategy_engine import StrategyEngine
from trader.infra.logging import configure_logging
from trader.integrations.store.base import IntentRecord, Store
from trader.integrations.store.engine_store import open_engine_store
from trader.integrations.store.open import intent_journal_path, open_intent_journal
from trader.integrations.store.sqlite import open_sqlite_store
from trader.settings import StoreSettings
from trader.strategies import SumTo100, SumTo100Settings, build_analyzers
from trader.strategies.base import intent_key
from trader.testing.memory_store import MemoryStore
from trader.venues.base import (
    Balances,
    CancelResult,
    SubmitResult,
    VenueEvent,
    VenueOrder,
    VenueTrade,
)
from trader.venues.polymarket.gamma import GammaClient, MarketQuery
from trader.venues.polymarket.market_ws import FrameStage, PolymarketMarketFeed, websocket_factory
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.markets import PIPS_PER_ONE
from trader.venues.sim.venue import SimUrls, open_sim_venue

PRIVATE_KEY = "0x48db5eb81e88e30a34cd681994d285bb24027a9551596eafa1038eb41d694603"  # public test key (vectors k4)
GOAL_P50_US = 1000.0
GOAL_P99_US = 5000.0
STAGES = ("wire", "parse", "book", "strategy", "queue", "risk", "dispatch", "sign", "persist", "send")
#: measured but not part of the total: the sim queueing its frame, the write-ahead alone, the sim's wake-up and parse
#: of our request, its own checks, the last leg's total, and the total up to the sim's handler (the former end point)
EXTRAS = ("sim_queue", "store_write", "sim_handler", "sim_verify", "last_leg_total", "handler_total")
_NS_PER_US = 1000

SimPlacement = Literal["process", "in-process"]
_BENCH_ROOT = str(Path(__file__).resolve().parent.parent)  # on the child's path, so it imports this `bench`


# ---------------------------------------------------------------------------------------------------------------
# One event's timestamps


@dataclass(eq=False)
class Event:
    index: int
    t_armed: int = 0  # the bench is about to place the gap's YES ask (its frame counts from here on)
    t_publish: int = 0  # (sim) the gap's YES ask is in the exchange: the frame is in the sim's outgoing queue
    t_sent: int = 0  # (sim) the sim starts writing the frame to the socket
    t_frame: int = 0  # the market feed has the frame text
    t_parsed: int = 0
    t_book: int = 0
    t_intent: int = 0  # the intent is in the channel to execution
    arb_id: str | None = None
    legs: int = 0
    t_risk0: int = 0
    t_risk1: int = 0
    sign: dict[str, tuple[int, int]] = field(default_factory=dict)  # client order id -> (start, end)
    store: dict[str, tuple[int, int]] = field(default_factory=dict)
    submit: dict[str, int] = field(default_factory=dict)
    client_of: dict[str, str] = field(default_factory=dict)  # venue order id -> client order id
    #: (sim) order id -> (its request's bytes at the sim's socket, the sim's HTTP handler, the sim's exchange)
    arrivals: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)

    def stages(self) -> dict[str, float] | None:
        """Stage durations in µs for the first leg to reach the sim (and the extras), or None if incomplete."""
        if not (self.t_sent and self.t_frame and self.t_parsed and self.t_book and self.t_intent and self.t_risk1):
            return None
        arrived = sorted((wire, oid) for oid, (wire, _, _) in self.arrivals.items() if oid in self.client_of)
        if len(arrived) < max(self.legs, 1):
            return None
        first_at, first_oid = arrived[0]
        cid = self.client_of[first_oid]
        if cid not in self.sign or cid not in self.submit:
            return None
        # The orders of the first leg's request (all legs, when they go out in one POST /orders): signed one by one.
        request = [c for c, at in self.submit.items() if at == self.submit[cid] and c in self.sign]
        sign0, sign1 = min(self.sign[c][0] for c in request), max(self.sign[c][1] for c in request)
        points = {
            "wire": (self.t_sent, self.t_frame),
            "parse": (self.t_frame, self.t_parsed),
            "book": (self.t_parsed, self.t_book),
            "strategy": (self.t_book, self.t_intent),
            "queue": (self.t_intent, self.t_risk0),
            "risk": (self.t_risk0, self.t_risk1),
            "dispatch": (self.t_risk1, sign0),
            "sign": (sign0, sign1),
            "persist": (sign1, self.submit[cid]),
            "send": (self.submit[cid], first_at),
        }
        out = {name: (end - start) / _NS_PER_US for name, (start, end) in points.items()}
        out["total"] = (first_at - self.t_sent) / _NS_PER_US
        out["sim_queue"] = (self.t_sent - self.t_publish) / _NS_PER_US
        store = self.store.get(cid)
        if store is not None:
            out["store_write"] = (store[1] - store[0]) / _NS_PER_US
        _, handler_at, exchange_at = self.arrivals[first_oid]
        out["sim_handler"] = (handler_at - first_at) / _NS_PER_US
        out["sim_verify"] = (exchange_at - handler_at) / _NS_PER_US
        out["last_leg_total"] = (arrived[-1][0] - self.t_sent) / _NS_PER_US
        out["handler_total"] = (handler_at - self.t_sent) / _NS_PER_US
        return out


class Probe:
    """Where every tap writes: the event being measured (None between events)."""

    def __init__(self, yes_token: str) -> None:
        self.yes_token = yes_token
        self.current: Event | None = None
        #: intents beyond the event's first: the strategy fired again on the gap, after its first intent was done
        #: but before the frame that takes the gap out of the books reached the engine
        self.extra_intents = 0

    def frame(self, stage: FrameStage, data: str | bytes) -> None:
        """The market feed's `frame_tap`: when the feed has the event's `price_change` frame, parsed it, and the
        market-data service applied it (the service applies a frame before it receives the next, so the stages
        after "received" are that frame's)."""
        event = self.current
        if event is None or not event.t_armed or event.t_book:
            return
        if stage == "received":
            if not event.t_frame and isinstance(data, str) and '"price_change"' in data and self.yes_token in data:
                event.t_frame = clock()
        elif event.t_frame:
            if stage == "parsed":
                event.t_parsed = clock()
            else:
                event.t_book = clock()

    def intent_done(self, intent: Intent) -> None:
        event = self.current
        if event is not None and event.arb_id == intent_key(intent):
            event.done.set()


# ---------------------------------------------------------------------------------------------------------------
# Taps: wrappers around the real components


class _TappedIntents:
    """The send side of the intent channel, noting when the event's intent is in it."""

    def __init__(self, inner: trio.MemorySendChannel[Intent], probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    def _sent(self, intent: Intent) -> None:
        event = self._probe.current
        if event is not None and not event.t_intent:
            event.t_intent = clock()
            event.arb_id = intent_key(intent)
            event.legs = len(getattr(intent, "legs", (intent,)))
        else:
            self._probe.extra_intents += 1

    def send_nowait(self, intent: Intent) -> None:
        self._inner.send_nowait(intent)
        self._sent(intent)

    async def send(self, intent: Intent) -> None:
        await self._inner.send(intent)
        self._sent(intent)

    def statistics(self) -> Any:
        return self._inner.statistics()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.aclose()


class TappedExecution(ExecutionService):
    """The execution service, timing the risk check (exposure, book health, gate) of the event's intent."""

    probe: Probe | None = None

    def _check(self, intent: Intent) -> RiskDecision:
        event = self.probe.current if self.probe is not None else None
        if event is None or event.t_risk0 or intent_key(intent) != event.arb_id:
            return super()._check(intent)
        event.t_risk0 = clock()
        decision = super()._check(intent)
        event.t_risk1 = clock()
        return decision


class _TappedVenue:
    """The live adapter, timing `prepare` (build + sign) and noting when `submit` starts, per client order id."""

    def __init__(self, inner: PolymarketVenue, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        start = clock()
        order = await self._inner.prepare(intent, ts=ts)
        event = self._probe.current
        if event is not None:
            event.sign[intent.client_order_id] = (start, clock())
            event.client_of[order.order_id] = intent.client_order_id
        return order

    async def submit(self, order: Order) -> SubmitResult:
        event = self._probe.current
        if event is not None:
            event.submit[order.client_order_id] = clock()
        return await self._inner.submit(order)

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        event = self._probe.current
        if event is not None:
            now = clock()
            for order in orders:
                event.submit[order.client_order_id] = now
        return await self._inner.submit_batch(orders)

    async def cancel(self, order_id: str) -> CancelResult:
        return await self._inner.cancel(order_id)

    async def cancel_all(self, *, reason: str) -> CancelResult:
        return await self._inner.cancel_all(reason=reason)

    async def lookup(self, order_id: str) -> VenueOrder | None:
        return await self._inner.lookup(order_id)

    async def open_orders(self) -> list[VenueOrder]:
        return await self._inner.open_orders()

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        return await self._inner.trades(since_ts=since_ts)

    async def balances(self) -> Balances:
        return await self._inner.balances()

    async def positions(self) -> Mapping[str, Decimal]:
        return await self._inner.positions()

    def open_events(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[VenueEvent]]:
        return self._inner.open_events()


class _TappedStore:
    """The store, timing the write-ahead `record_intents`; everything else passes through."""

    def __init__(self, inner: Store, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        start = clock()
        await self._inner.record_intents(intents)
        event = self._probe.current
        if event is not None:
            for intent in intents:
                event.store[intent.client_order_id] = (start, clock())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------------------------------------------
# The sim: in a child process (default) or in the bench's own Trio loop


class SimHandle(Protocol):
    """The bench's end of the sim: where it listens, the gap it opens, and the commands of `SimSide.handle`."""

    urls: SimUrls
    gap: Gap

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        """A command and its reply (RuntimeError if the sim answered an error)."""

    async def post(self, command: dict[str, Any]) -> None:
        """A command with no reply (`place`)."""


def _checked(reply: dict[str, Any], command: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        raise RuntimeError(f"the sim refused {command['op']!r}: {reply['error']}")
    return reply


class _InProcessSim:
    """`--sim in-process`: the sim's side runs right here, in the engine's Trio thread."""

    def __init__(self, side: SimSide) -> None:
        self._side = side
        self.urls = side.sim.urls
        self.gap = side.gap

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        return _checked(self._side.handle(command) or {}, command)

    async def post(self, command: dict[str, Any]) -> None:
        self._side.handle(command)


class _ChildSim:
    """`--sim process`: the sim's side runs in a child process; commands go over the control channel."""

    def __init__(self, channel: LineChannel, process: trio.Process, hello: dict[str, Any]) -> None:
        self._channel = channel
        self._process = process
        self.urls = SimUrls(**hello["urls"])
        self.gap = Gap(**hello["gap"])

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        await self._channel.send(command)
        reply = await self._channel.receive()
        if reply is None:
            with trio.move_on_after(5):
                await self._process.wait()
            raise RuntimeError(f"the sim process ended (status {self._process.returncode}); its traceback is above")
        return _checked(reply, command)

    async def post(self, command: dict[str, Any]) -> None:
        await self._channel.send(command)


@asynccontextmanager
async def _open_sim_in_process(markets: int) -> AsyncIterator[SimHandle]:
    async with open_sim_venue(sim_config(markets)) as sim:
        yield _InProcessSim(SimSide(sim))


@asynccontextmanager
async def _open_sim_process(markets: int, log_path: Path) -> AsyncIterator[SimHandle]:
    """The sim in `python -m bench._tick_to_trade_sim`, in its own session (Ctrl+C is the bench's to handle),
    holding the other end of a socketpair. Leaving closes the channel; the child closes its sim and exits (killed
    if it has not within 10 s), on every way out: normal, error, cancellation, KeyboardInterrupt."""
    ours, theirs = socket.socketpair()
    with ours:
        try:
            path = os.pathsep.join(p for p in (_BENCH_ROOT, os.environ.get("PYTHONPATH", "")) if p)
            command = [sys.executable, "-m", "bench._tick_to_trade_sim", "--fd", str(theirs.fileno())]
            command += ["--markets", str(markets), "--log", str(log_path)]
            process = await trio.lowlevel.open_process(
                command,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": path},
            )
        finally:
            theirs.close()  # the child's end is the child's alone: its exit is our end of file
        channel = LineChannel(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
        try:
            with trio.fail_after(60):
                hello = await channel.receive()
            if hello is None:
                with trio.move_on_after(5):
                    await process.wait()
                raise RuntimeError(f"the sim process ended before it was ready (status {process.returncode})")
            yield _ChildSim(channel, process, hello)
        finally:
            with trio.CancelScope(shield=True):
                await channel.stream.aclose()
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def _check_clock(sim: SimHandle) -> int:
    """The sim's clock is ours: its reading lies between two of ours. The window (ns) it was checked in."""
    before = clock()
    reply = await sim.request({"op": "clock"})
    after = clock()
    theirs = reply["ns"]
    if reply["implementation"] != clock_implementation() or not before <= theirs <= after:
        raise RuntimeError(
            f"the sim's clock is not ours: {reply['implementation']} read {theirs}, "
            f"{clock_implementation()} read {before} .. {after}"
        )
    return after - before


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    events: int = 1000
    warmup: int = 50
    size: int = 10
    idle_ms: float = 10.0
    markets: int = 8
    store: str = "sqlite"
    event_timeout_secs: float = 5.0
    seed: int = 1
    per_event: bool = False
    sim: SimPlacement = "process"


@dataclass
class Result:
    samples: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    gap_market: str = ""
    frame_tap: bool = False  # the start is the sim writing the frame (True) or queueing it (False)
    fair: Decimal = Decimal(0)
    orders: int = 0
    extra_intents: int = 0
    arrival_fallbacks: int = 0  # measured requests whose wire arrival is the sim's read time (no kernel timestamp)
    denied: Mapping[str, int] = field(default_factory=dict)
    cpu_secs: float = 0.0  # the bench's process: the engine (and, in-process, the sim)
    sim_cpu_secs: float | None = None  # the sim's process, if it has its own
    wall_secs: float = 0.0
    clock_check_ns: int = 0  # the window the sim's clock reading was checked in


@asynccontextmanager
async def _open_store(kind: str, directory: Path) -> AsyncIterator[Store]:
    if kind == "memory":
        yield MemoryStore()
        return
    # As `trader run` builds it: the database behind the write-behind channel, the intents appended to the journal
    # next to it (`sqlite-no-journal`: each intent a database transaction, `TRADER_STORE__INTENT_JOURNAL=off`).
    synchronous: Literal["FULL", "NORMAL"] = "FULL" if kind == "sqlite-full" else "NORMAL"
    database = directory / "trader.sqlite3"
    settings = StoreSettings(intent_journal="off" if kind == "sqlite-no-journal" else "auto")
    async with (
        open_sqlite_store(database, synchronous=synchronous) as raw,
        open_intent_journal(intent_journal_path(f"sqlite:{database}", settings), raw) as journal,
        open_engine_store(raw, journal=journal) as store,
    ):
        yield store


async def _until(books: Books, condition: Callable[[], bool], timeout_secs: float) -> bool:
    """Wait until `condition()` holds, checked on every book change and at least every millisecond (an intent
    finishing changes no book); False if it did not within `timeout_secs`. Only between events."""
    with trio.move_on_after(timeout_secs):
        while True:
            seen = books.version
            if condition():
                return True
            with trio.move_on_after(0.001):
                await books.wait_changed(seen)
    return False


async def _require(books: Books, condition: Callable[[], bool], timeout_secs: float, what: str) -> None:
    if not await _until(books, condition, timeout_secs):
        raise RuntimeError(f"timed out after {timeout_secs} s waiting for {what}")


async def run(options: Options, directory: Path) -> Result:
    result = Result()
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(_open_store(options.store, directory))
        sim = await stack.enter_async_context(
            _open_sim_process(options.markets, directory / "sim.log")
            if options.sim == "process"
            else _open_sim_in_process(options.markets)
        )
        result.clock_check_ns = await _check_clock(sim)
        gap = sim.gap
        probe = Probe(gap.yes)
        services = await stack.enter_async_context(trio.open_nursery())
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))

        gamma = GammaClient(http, sim.urls.gamma)
        discovery = await gamma.markets(MarketQuery())
        markets: list[Market] = [d.market for d in discovery.markets]
        events: list[NegRiskEvent] = await gamma.neg_risk_events(discovery.markets)
        books = Books()
        feed = PolymarketMarketFeed(websocket_factory(sim.urls.ws_market), frame_tap=probe.frame)
        market_data = MarketDataService(feed, books)
        for market in markets:
            market_data.track(market)
        await services.start(market_data.run)
        await _require(books, lambda: all(t.ready for t in books.tokens()), 30, "the books")

        signer = OrderSigner(PRIVATE_KEY)
        await sim.request({"op": "fund", "address": signer.address})
        total = options.events + options.warmup
        venue = await stack.enter_async_context(
            open_polymarket_venue(PolymarketVenueSettings(rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user), signer)
        )
        venue.add_markets(markets)
        manager = OrderManager(
            cast(Any, _TappedVenue(venue, probe)),
            cast(Store, _TappedStore(store, probe)),
            breakers=Breakers(),
            limiter=RateLimiter(),
        )
        send, receive = trio.open_memory_channel[Intent](8)
        strategy_engine = StrategyEngine(
            books=books,
            strategies=[SumTo100(SumTo100Settings(refire_cooldown_secs=0.0))],
            analyzers=build_analyzers(),
            intents=cast(Any, _TappedIntents(send, probe)),
            events=lambda: events,
            positions=manager.portfolio,
        )

        def intent_done(intent: Intent) -> None:
            strategy_engine.finish(intent_key(intent))
            probe.intent_done(intent)

        unlimited = Decimal(10**9)
        execution = TappedExecution(
            manager,
            RiskGate(
                RiskSettings(
                    max_position_usd=unlimited,
                    max_total_exposure_usd=unlimited,
                    max_daily_loss_usd=unlimited,
                    max_orders_per_market=10**6,
                    max_orders_global=10**6,
                    duplicate_window_secs=0.0,
                )
            ),
            receive,
            book_health=book_health_from(books),
            tick_of=tick_from(books),
            on_intent_done=intent_done,
        )
        execution.probe = probe
        core = await stack.enter_async_context(trio.open_nursery())
        await core.start(execution.run)
        await core.start(strategy_engine.run)

        # The tap on the sim's side of the engine's market connection (the frame leaving), then the quiet market the
        # gap opens on: a deep NO ask one tick under the makers' (no arbitrage alone).
        result.frame_tap = bool((await sim.request({"op": "tap"}))["frame_tap"])
        await sim.request({"op": "rest_no_ask"})

        def no_ask() -> Decimal | None:
            token = books.get_token(gap.no)
            level = token.book.best_ask() if token is not None else None
            return level.price if level is not None else None

        no_price = Decimal(gap.no_gap) / PIPS_PER_ONE
        await _require(books, lambda: no_ask() == no_price, 10, "the NO ask in the engine's books")
        result.gap_market = gap.condition_id
        result.fair = Decimal(gap.yes_gap + gap.tick) / PIPS_PER_ONE
        yes_back = Decimal(gap.yes_ask) / PIPS_PER_ONE
        rng = random.Random(options.seed)

        def settled() -> bool:
            token = books.get_token(gap.yes)
            level = token.book.best_ask() if token is not None else None
            return not strategy_engine.in_flight and level is not None and level.price == yes_back

        cpu0, wall0 = time.process_time(), time.perf_counter()
        sim_cpu0 = (await sim.request({"op": "cpu"}))["secs"]
        for n in range(total):
            if not await _until(books, settled, options.event_timeout_secs):
                result.failures.append("the engine did not settle after the previous event: stopped")
                break
            await trio.sleep((options.idle_ms + rng.uniform(0, 5)) / 1000)
            if n == options.warmup:
                sim_cpu0 = (await sim.request({"op": "cpu"}))["secs"]
                cpu0, wall0 = time.process_time(), time.perf_counter()
            event = Event(n)
            probe.current = event
            event.t_armed = clock()
            # The sim places the gap's YES ask; it says how that went with `finish`, once the event is over (so in
            # the meantime this process has nothing of the sim's to read).
            await sim.post({"op": "place", "index": n, "size": options.size})
            with trio.move_on_after(options.event_timeout_secs):
                await event.done.wait()
            probe.current = None
            sim_side = await sim.request({"op": "finish"})
            if sim_side["refused"]:
                raise RuntimeError(f"the gap's YES ask was refused: {sim_side['refused']}")
            event.t_publish = sim_side["t_publish"]
            event.t_sent = sim_side["t_sent"] if result.frame_tap else event.t_publish
            event.arrivals = {oid: (wire, http, ex) for oid, (wire, http, ex) in sim_side["arrivals"].items()}
            stages = event.stages()
            if n < options.warmup:
                continue
            result.arrival_fallbacks += sim_side["arrival_fallbacks"]
            if stages is None:
                result.failures.append(_why(event))
                continue
            result.samples.append(stages)
            if options.per_event:
                print(json.dumps({"event": n, **{k: round(v, 1) for k, v in stages.items()}}), flush=True)
        result.cpu_secs = time.process_time() - cpu0
        result.wall_secs = time.perf_counter() - wall0
        if options.sim == "process":
            result.sim_cpu_secs = (await sim.request({"op": "cpu"}))["secs"] - sim_cpu0
        stats = execution.statistics()
        result.orders = stats.orders.submitted
        result.extra_intents = probe.extra_intents
        result.denied = dict(stats.intents_denied)
        core.cancel_scope.cancel()
        services.cancel_scope.cancel()
    return result


def _why(event: Event) -> str:
    if not event.t_sent:
        return "the sim sent no frame"
    if not event.t_book:
        return "the engine did not apply the frame"
    if not event.t_intent:
        return "no intent"
    if not event.t_risk1:
        return "no risk check"
    if len(event.arrivals) < max(event.legs, 1):
        return f"{len(event.arrivals)} of {event.legs} legs reached the sim"
    return "incomplete timestamps"


# ---------------------------------------------------------------------------------------------------------------
# Report


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_us": round(percentile(values, 0.5), 1),
        "p90_us": round(percentile(values, 0.9), 1),
        "p99_us": round(percentile(values, 0.99), 1),
        "max_us": round(max(values), 1),
        "mean_us": round(sum(values) / len(values), 1),
    }


@contextmanager
def _quiet_logs(path: Path) -> Iterator[None]:
    """The engine logs as `trader run` does (JSON, INFO) but to a file; the caller's logging is restored after."""
    saved = structlog.get_config()
    with path.open("w") as out:
        configure_logging(level="INFO", fmt="json", stream=out)
        try:
            yield
        finally:
            structlog.configure(**saved)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tick_to_trade", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events measured (default 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="events run first and not counted (default 50)")
    parser.add_argument("--size", type=int, default=10, help="shares of the gap's YES ask (default 10)")
    parser.add_argument("--idle-ms", type=float, default=10.0, help="quiet time between events (default 10)")
    parser.add_argument("--markets", type=int, default=8, help="binary markets the sim lists (default 8)")
    parser.add_argument(
        "--store",
        choices=("sqlite", "sqlite-no-journal", "sqlite-full", "memory"),
        default="sqlite",
        help="the store, as trader run builds it: sqlite (the default: synchronous=NORMAL, intent journal, "
        "write-behind), sqlite-no-journal (each intent a transaction), sqlite-full (FULL, with the journal), memory",
    )
    parser.add_argument(
        "--sim",
        choices=("process", "in-process"),
        default="process",
        help="where the sim runs: its own process (default, as the real venue is elsewhere) or the engine's Trio loop",
    )
    parser.add_argument("--per-event", action="store_true", help="also print every event's stages")
    args = parser.parse_args(argv)
    if args.events < 1 or args.warmup < 0 or args.size < 5 or args.idle_ms < 0:
        parser.error("--events must be >= 1, --warmup >= 0, --size >= 5 (the market's minimum) and --idle-ms >= 0")
    options = Options(
        events=args.events,
        warmup=args.warmup,
        size=args.size,
        idle_ms=args.idle_ms,
        markets=args.markets,
        store=args.store,
        per_event=args.per_event,
        sim=args.sim,
    )
    load_before = os.getloadavg()
    print(
        json.dumps(
            {
                "bench": "tick_to_trade",
                "events": options.events,
                "warmup": options.warmup,
                "store": options.store,
                "sim": options.sim,
                "size": options.size,
                "cpus": os.cpu_count(),
                "load_avg_before": [round(x, 2) for x in load_before],
                "gc": gc.isenabled(),
            }
        ),
        flush=True,
    )
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="bench-t2t-") as tmp, _quiet_logs(Path(tmp) / "engine.log"):
        try:
            result = trio.run(run, options, Path(tmp))
        except* KeyboardInterrupt:  # everything is closed by now, the sim's process included
            interrupted = True
    if interrupted:
        print(json.dumps({"bench": "tick_to_trade", "error": "interrupted"}))
        return 130
    load_after = os.getloadavg()
    if not result.samples:
        print(json.dumps({"bench": "tick_to_trade", "error": "no event completed", "failures": result.failures[:10]}))
        return 1
    for name in (*STAGES, *EXTRAS):
        values = [s[name] for s in result.samples if name in s]
        if values:
            print(json.dumps({"stage": name, "events": len(values), **_summary(values)}), flush=True)
    totals = [s["total"] for s in result.samples]
    p50, p99 = percentile(totals, 0.5), percentile(totals, 0.99)
    print(
        json.dumps(
            {
                "bench": "tick_to_trade",
                "what": "sim sends the frame that opens an arbitrage -> sim receives our first signed order (loopback)",
                "events": len(result.samples),
                "failed_events": len(result.failures),
                "failures": sorted(set(result.failures))[:5],
                "orders_submitted": result.orders,
                "extra_intents": result.extra_intents,
                "intents_denied": dict(result.denied),
                "store": options.store,
                "sim": options.sim,
                "start": "sim writes the frame" if result.frame_tap else "sim queues the frame",
                "end": "the sim's kernel receives our POST (SO_TIMESTAMPNS)"
                + ("; the sim's read where it gave no timestamp" if result.arrival_fallbacks else ""),
                "arrival_fallbacks": result.arrival_fallbacks,
                "p50_us": round(p50, 1),
                "p99_us": round(p99, 1),
                "max_us": round(max(totals), 1),
                "stage_p50_us": {n: round(percentile([s[n] for s in result.samples], 0.5), 1) for n in STAGES},
                "stage_p99_us": {n: round(percentile([s[n] for s in result.samples], 0.99), 1) for n in STAGES},
                "last_leg_p50_us": round(percentile([s["last_leg_total"] for s in result.samples], 0.5), 1),
                "handler_p50_us": round(percentile([s["handler_total"] for s in result.samples], 0.5), 1),
                "goal_p50_us": GOAL_P50_US,
                "goal_p99_us": GOAL_P99_US,
                "meets_goal": p50 < GOAL_P50_US and p99 < GOAL_P99_US,
                "cpu_share": round(result.cpu_secs / result.wall_secs, 2) if result.wall_secs > 0 else None,
                "sim_cpu_share": (
                    round(result.sim_cpu_secs / result.wall_secs, 2)
                    if result.sim_cpu_secs is not None and result.wall_secs > 0
                    else None
                ),
                "clock_check_us": round(result.clock_check_ns / _NS_PER_US, 1),
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in load_after],
            }
        )
    )
    return 1 if result.failures else 0
