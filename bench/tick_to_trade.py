"""`python -m bench tick_to_trade [--events N]`: from the sim sending the frame that opens an arbitrage to the sim
receiving the engine's signed order, over loopback, in one process.

The simulated venue (`static` scenario: quiet books, nothing moves) and the real engine path of `trader run --live`
run in one Trio process over real loopback sockets: market-data service (WebSocket) -> books -> strategy engine
(`sum_to_100`, plus the sum-deviation analyzer as `trader run` has it) -> execution (risk gate, order manager with its
write-ahead store, rate limiter and breaker) -> the live Polymarket adapter (EIP-712 signing, L2 headers, httpx
`POST /order`) -> the sim.

One event: on an unlinked market of the sim (independent YES and NO books) a large NO ask rests one tick under the
makers' ask (no arbitrage by itself); the bench places a YES ask one tick under fair (size `--size`), straight into
the sim's exchange, so the sim publishes the `price_change` frame that opens the gap (YES ask + NO ask = 1 - 2 ticks).
The engine buys the set (two FOK legs, in parallel); the YES ask is used up, so the book is back where it was. Before
the next event the bench waits until the basket is out of flight and the engine's books are back, then idles
`--idle-ms` (plus up to 5 ms of jitter, so events do not line up with the strategy engine's 100 ms tick). For every
event to be a fresh opportunity the bench configures: `refire_cooldown_secs=0` (sum_to_100), the risk gate's
`duplicate_window_secs=0`, order-rate and position limits out of reach. Everything else keeps its default.

Timestamps (`time.perf_counter_ns`, one process so one clock), through wrappers around the real components and the
market-data service's `frame_tap` (no engine code is changed or patched): the sim's WebSocket writer starts sending
the frame -> the market-data service has the frame text -> parsed -> applied to the books (cells published) -> the
intent is in the channel to execution -> the risk check starts / ends -> the venue's `prepare` (order build +
EIP-712 signature) starts / ends -> `submit` starts (after the write-ahead intent and the rate limiter / breaker) ->
the sim's HTTP handler has the `POST /orders` request (parsed by h11, before the sim's own authentication and
signature check). The legs go out together in one `POST /orders` (the engine's default, `batch_legs`); the headline
is the FIRST leg to reach the sim (the moment the venue has an order of ours); the last leg is reported too.

Stages (contiguous, they add up to the total): `wire` (sim send -> engine has the frame: WebSocket framing both
ways, loopback, the reader task), `parse` (decode + validate), `book` (apply + publish), `strategy` (wake-up,
evaluation, analyzer, until the intent is sent), `queue` (channel hop to execution), `risk` (exposure + gate),
`dispatch` (order task, arbitrage nursery, sending task), `sign` (build + sign every order of the request, one by
one), `persist` (the request's write-ahead intents in one store transaction, rate limiter, breaker), `send` (body,
L2 HMAC, HTTP client, loopback, until the sim has the request).

Prints one JSON object per line: the setup, one line per stage, the last leg, then the headline with `p50_us` and
`p99_us` (and each stage's median). The machine is shared: the load average before and after is in the output.
Exit status 1 if events failed (no order reached the sim); a missed goal is reported, not an error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast

import httpx
import structlog
import trio

from trader.domain.intents import Intent, OrderIntent
from trader.domain.market import Market, NegRiskEvent
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.engine.books import Books
from trader.engine.breaker import CircuitBreaker
from trader.engine.execution import ExecutionService, book_health_from, tick_from
from trader.engine.market_data import FrameStage, MarketDataService
from trader.engine.orders import OrderManager
from trader.engine.rate_limit import RateLimiter
from trader.engine.risk import RiskDecision, RiskGate, RiskSettings
from trader.engine.strategy_engine import StrategyEngine
from trader.integrations.logging import configure_logging
from trader.integrations.store.base import IntentRecord, Store
from trader.integrations.store.sqlite import open_sqlite_store
from trader.strategies import SumTo100, SumTo100Settings, build_analyzers
from trader.strategies.base import intent_key
from trader.testing.fake_venue import MemoryStore
from trader.venues.base import (
    Balances,
    CancelResult,
    SubmitResult,
    VenueEvent,
    VenueOrder,
    VenueTrade,
)
from trader.venues.polymarket.gamma import GammaClient, MarketQuery
from trader.venues.polymarket.market_ws import websocket_factory
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import LIVE, Accepted, ExchangeHooks, OrderRequest, Rejected
from trader.venues.sim.faults import FaultInjector
from trader.venues.sim.httpserver import ReplayStream
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, SimMarket, hex_id, pips_of
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

PRIVATE_KEY = "0x48db5eb81e88e30a34cd681994d285bb24027a9551596eafa1038eb41d694603"  # public test key (vectors k4)
GAP_OWNER = "bench-gap"
GAP_ADDRESS = "0x" + "ab" * 20
GOAL_P50_US = 1000.0
GOAL_P99_US = 5000.0
STAGES = ("wire", "parse", "book", "strategy", "queue", "risk", "dispatch", "sign", "persist", "send")
#: measured but not part of the total: the sim queueing its frame, the write-ahead alone, the sim's own checks
EXTRAS = ("sim_queue", "store_write", "sim_verify", "last_leg_total")
_NS_PER_US = 1000

clock = time.perf_counter_ns


# ---------------------------------------------------------------------------------------------------------------
# One event's timestamps


@dataclass(eq=False)
class Event:
    index: int
    gap_order_id: str
    t_publish: int = 0  # the bench's exchange.submit returned: the frame is in the sim's outgoing queue
    t_sent: int = 0  # the sim starts writing the frame to the socket
    t_frame: int = 0  # the market-data service has the frame text
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
    arrivals: dict[str, tuple[int, int]] = field(default_factory=dict)  # order id -> (HTTP handler, exchange)
    done: trio.Event = field(default_factory=trio.Event)

    def stages(self) -> dict[str, float] | None:
        """Stage durations in µs for the first leg to reach the sim (and the extras), or None if incomplete."""
        if not (self.t_sent and self.t_frame and self.t_parsed and self.t_book and self.t_intent and self.t_risk1):
            return None
        arrived = sorted((http, oid) for oid, (http, _) in self.arrivals.items() if oid in self.client_of)
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
        out["sim_verify"] = (self.arrivals[first_oid][1] - first_at) / _NS_PER_US
        out["last_leg_total"] = (arrived[-1][0] - self.t_sent) / _NS_PER_US
        return out


class Probe:
    """Where every tap writes: the event being measured (None between events)."""

    def __init__(self, yes_token: str) -> None:
        self.yes_token = yes_token
        self.current: Event | None = None
        self.pending_arrival = 0

    def frame(self, stage: FrameStage, data: str | bytes) -> None:
        """The market-data service's `frame_tap`: when it has the event's `price_change` frame, parsed it, applied
        it (the service handles a frame synchronously, so the stages after "received" are that frame's)."""
        event = self.current
        if event is None or not event.t_publish or event.t_book:
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


class _SendTap(trio.abc.HalfCloseableStream):
    """Stands in for the socket under the sim's side of the engine's market connection: notes when the sim starts
    writing the bytes of the event's `price_change` frame (server frames are not masked, so the JSON is visible)."""

    def __init__(self, inner: trio.abc.Stream, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe
        self._token = probe.yes_token.encode()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        event = self._probe.current
        if event is not None and event.t_publish and not event.t_sent:
            raw = bytes(data)
            if b'"price_change"' in raw and self._token in raw:
                event.t_sent = clock()
        await self._inner.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self._inner.receive_some(max_bytes))

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self._inner, trio.abc.HalfCloseableStream):
            await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


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
    """The store, timing the write-ahead `record_intent`; everything else passes through."""

    def __init__(self, inner: Store, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    async def record_intent(self, intent: IntentRecord) -> None:
        await self.record_intents((intent,))

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        start = clock()
        await (self._inner.record_intent(intents[0]) if len(intents) == 1 else self._inner.record_intents(intents))
        event = self._probe.current
        if event is not None:
            for intent in intents:
                event.store[intent.client_order_id] = (start, clock())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ArrivalFaults(FaultInjector):
    """Stands in for the sim's fault injector at its HTTP front door (`http_delay` is asked first, once the request
    is parsed): notes when a `POST /order` is there. The faults themselves stay the sim's."""

    def __init__(self, inner: FaultInjector, probe: Probe) -> None:
        super().__init__()
        self._inner = inner
        self._probe = probe

    def http_delay(self, service: str, path: str) -> float:
        if service == "clob" and path in ("/order", "/orders"):
            self._probe.pending_arrival = clock()
        return self._inner.http_delay(service, path)

    def http_error(self, service: str, path: str) -> Any:
        return self._inner.http_error(service, path)


class _ArrivalHooks:
    """The exchange's hooks: pairs the order id (after the sim's authentication and signature check) with the
    HTTP arrival noted just before, with no checkpoint in between."""

    def __init__(self, inner: ExchangeHooks, probe: Probe) -> None:
        self._inner = inner
        self._probe = probe

    def on_submit(self, request: OrderRequest) -> Rejected | None:
        probe = self._probe
        if probe.pending_arrival and probe.current is not None and request.owner != GAP_OWNER:
            # Every order of a `POST /orders` arrived with its request.
            probe.current.arrivals[request.order_id] = (probe.pending_arrival, clock())
        return self._inner.on_submit(request)

    def fill_cap(self, request: OrderRequest) -> int | None:
        return self._inner.fill_cap(request)

    def ghost_trade(self, request: OrderRequest) -> bool:
        return self._inner.ghost_trade(request)


def _tap_sim_market_connection(sim: SimVenue, probe: Probe) -> bool:
    """Put `_SendTap` under the sim's side of the engine's market connection. The hub shows no public handle on its
    sessions, so this reaches in (its `_conns`, a session's `stream`, `ReplayStream.inner`); if that ever changes,
    False: the events are then timed from the moment the sim queued the frame."""
    conns = [
        c
        for c in getattr(sim.ws, "_conns", ())
        if getattr(c, "channel", None) == "market" and probe.yes_token in getattr(c, "assets", ())
    ]
    stream = getattr(conns[0], "stream", None) if len(conns) == 1 else None
    if not isinstance(stream, ReplayStream):
        return False
    stream.inner = _SendTap(stream.inner, probe)
    return True


# ---------------------------------------------------------------------------------------------------------------
# The gap


@dataclass(frozen=True, slots=True)
class Gap:
    market: SimMarket
    yes: str
    no: str
    tick: int  # pips
    yes_ask: int  # the makers' YES ask, pips: what the book is back to after an event
    yes_gap: int  # the event's YES ask
    no_gap: int  # the resting NO ask


def _choose_gap(sim: SimVenue) -> Gap:
    exchange = sim.exchange
    for market in exchange.markets:
        if market.complementary or market.neg_risk or not market.accepting_orders:
            continue
        yes, no = market.token_ids
        (yes_bid, yes_ask), (_no_bid, no_ask) = exchange.best_prices(yes), exchange.best_prices(no)
        if yes_bid is None or yes_ask is None or no_ask is None:
            continue
        tick = pips_of(market.tick_size)
        fair = (yes_bid + yes_ask) // 2
        gap = Gap(market, yes, no, tick, yes_ask, yes_gap=fair - tick, no_gap=PIPS_PER_ONE - fair - tick)
        if gap.yes_gap > yes_bid and gap.no_gap < no_ask and gap.yes_gap + gap.no_gap <= PIPS_PER_ONE - 2 * tick:
            return gap
    raise RuntimeError("the sim lists no unlinked market with quotes to open a gap on")


def _sell(order_id: str, token: str, price_pips: int, size_units: int) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        owner=GAP_OWNER,
        maker_address=GAP_ADDRESS,
        token_id=token,
        side=Side.SELL,
        maker_amount=size_units,
        taker_amount=size_units * price_pips // PIPS_PER_ONE,
    )


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


@dataclass
class Result:
    samples: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    gap_market: str = ""
    frame_tap: bool = False  # the start is the sim writing the frame (True) or queueing it (False)
    fair: Decimal = Decimal(0)
    orders: int = 0
    denied: Mapping[str, int] = field(default_factory=dict)
    cpu_secs: float = 0.0
    wall_secs: float = 0.0


@asynccontextmanager
async def _open_store(kind: str, directory: Path) -> AsyncIterator[Store]:
    if kind == "memory":
        yield MemoryStore()
        return
    synchronous: Literal["FULL", "NORMAL"] = "FULL" if kind == "sqlite-full" else "NORMAL"
    async with open_sqlite_store(directory / "trader.sqlite3", synchronous=synchronous) as store:
        yield store


async def _until(books: Books, condition: Callable[[], bool], timeout_secs: float) -> bool:
    """Wait (on book changes) until `condition()` holds; False if it did not within `timeout_secs`."""
    with trio.move_on_after(timeout_secs):
        while True:
            seen = books.version
            if condition():
                return True
            await books.wait_changed(seen)
    return False


async def _require(books: Books, condition: Callable[[], bool], timeout_secs: float, what: str) -> None:
    if not await _until(books, condition, timeout_secs):
        raise RuntimeError(f"timed out after {timeout_secs} s waiting for {what}")


async def run(options: Options, directory: Path) -> Result:
    result = Result()
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(_open_store(options.store, directory))
        sim = await stack.enter_async_context(open_sim_venue(SimConfig(scenario="static", markets=options.markets)))
        gap = _choose_gap(sim)
        probe = Probe(gap.yes)
        services = await stack.enter_async_context(trio.open_nursery())
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))

        gamma = GammaClient(http, sim.urls.gamma)
        discovery = await gamma.markets(MarketQuery())
        markets: list[Market] = [d.market for d in discovery.markets]
        events: list[NegRiskEvent] = await gamma.neg_risk_events(discovery.markets)
        books = Books()
        market_data = MarketDataService(websocket_factory(sim.urls.ws_market), books, frame_tap=probe.frame)
        for market in markets:
            market_data.track(market)
        await services.start(market_data.run)
        await _require(books, lambda: all(t.ready for t in books.tokens()), 30, "the books")

        signer = OrderSigner(PRIVATE_KEY)
        sim.exchange.fund(signer.address, collateral=10**9 * UNITS_PER_ONE)
        total = options.events + options.warmup
        sim.exchange.fund(GAP_ADDRESS, shares={gap.yes: 10**7 * UNITS_PER_ONE, gap.no: 10**7 * UNITS_PER_ONE})
        venue = await stack.enter_async_context(
            open_polymarket_venue(PolymarketVenueSettings(rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user), signer)
        )
        venue.add_markets(markets)
        manager = OrderManager(
            cast(Any, _TappedVenue(venue, probe)),
            cast(Store, _TappedStore(store, probe)),
            breaker=CircuitBreaker(name="venue"),
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

        # Taps on the sim: the frame leaving, the order arriving (the fault injector itself stays the sim's).
        sim.rest.faults = _ArrivalFaults(sim.faults, probe)
        sim.exchange.hooks = _ArrivalHooks(sim.exchange.hooks, probe)
        result.frame_tap = _tap_sim_market_connection(sim, probe)
        # The quiet market the gap opens on: a deep NO ask one tick under the makers' (no arbitrage alone).
        half = sim.exchange.submit(
            _sell(hex_id("bench:tick_to_trade:no"), gap.no, gap.no_gap, 10**6 * UNITS_PER_ONE), sim.now()
        )
        if not isinstance(half, Accepted):
            raise RuntimeError(f"the resting NO ask was refused: {half}")

        def no_ask() -> Decimal | None:
            token = books.get_token(gap.no)
            level = token.book.best_ask() if token is not None else None
            return level.price if level is not None else None

        no_price = Decimal(gap.no_gap) / PIPS_PER_ONE
        await _require(books, lambda: no_ask() == no_price, 10, "the NO ask in the engine's books")
        result.gap_market = gap.market.condition_id
        result.fair = Decimal(gap.yes_gap + gap.tick) / PIPS_PER_ONE
        yes_back = Decimal(gap.yes_ask) / PIPS_PER_ONE
        rng = random.Random(options.seed)

        def settled() -> bool:
            token = books.get_token(gap.yes)
            level = token.book.best_ask() if token is not None else None
            return not strategy_engine.in_flight and level is not None and level.price == yes_back

        cpu0, wall0 = time.process_time(), time.perf_counter()
        for n in range(total):
            if not await _until(books, settled, options.event_timeout_secs):
                result.failures.append("the engine did not settle after the previous event: stopped")
                break
            await trio.sleep((options.idle_ms + rng.uniform(0, 5)) / 1000)
            if n == options.warmup:
                cpu0, wall0 = time.process_time(), time.perf_counter()
            event = Event(n, hex_id(f"bench:tick_to_trade:yes:{n}"))
            probe.pending_arrival = 0
            probe.current = event
            placed = sim.exchange.submit(
                _sell(event.gap_order_id, gap.yes, gap.yes_gap, options.size * UNITS_PER_ONE), sim.now()
            )
            event.t_publish = clock()
            if not result.frame_tap:
                event.t_sent = event.t_publish
            if not isinstance(placed, Accepted):
                raise RuntimeError(f"the gap's YES ask was refused: {placed}")
            with trio.move_on_after(options.event_timeout_secs):
                await event.done.wait()
            probe.current = None
            left = sim.exchange.order(event.gap_order_id)
            if left is not None and left.status == LIVE:
                sim.exchange.cancel(GAP_OWNER, [event.gap_order_id], sim.now())
            stages = event.stages()
            if n < options.warmup:
                continue
            if stages is None:
                result.failures.append(_why(event))
                continue
            result.samples.append(stages)
            if options.per_event:
                print(json.dumps({"event": n, **{k: round(v, 1) for k, v in stages.items()}}), flush=True)
        result.cpu_secs = time.process_time() - cpu0
        result.wall_secs = time.perf_counter() - wall0
        stats = execution.statistics()
        result.orders = stats.orders.submitted
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
        choices=("sqlite", "sqlite-full", "memory"),
        default="sqlite",
        help="the write-ahead store: sqlite (trader run's default, synchronous=NORMAL), sqlite-full, memory",
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
    )
    load_before = os.getloadavg()
    print(
        json.dumps(
            {
                "bench": "tick_to_trade",
                "events": options.events,
                "warmup": options.warmup,
                "store": options.store,
                "size": options.size,
                "cpus": os.cpu_count(),
                "load_avg_before": [round(x, 2) for x in load_before],
                "gc": gc.isenabled(),
            }
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-t2t-") as tmp, _quiet_logs(Path(tmp) / "engine.log"):
        result = trio.run(run, options, Path(tmp))
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
                "what": "sim sends the frame that opens an arbitrage -> sim has our first signed order (loopback)",
                "events": len(result.samples),
                "failed_events": len(result.failures),
                "failures": sorted(set(result.failures))[:5],
                "orders_submitted": result.orders,
                "intents_denied": dict(result.denied),
                "store": options.store,
                "start": "sim writes the frame" if result.frame_tap else "sim queues the frame",
                "p50_us": round(p50, 1),
                "p99_us": round(p99, 1),
                "max_us": round(max(totals), 1),
                "stage_p50_us": {n: round(percentile([s[n] for s in result.samples], 0.5), 1) for n in STAGES},
                "stage_p99_us": {n: round(percentile([s[n] for s in result.samples], 0.99), 1) for n in STAGES},
                "last_leg_p50_us": round(percentile([s["last_leg_total"] for s in result.samples], 0.5), 1),
                "goal_p50_us": GOAL_P50_US,
                "goal_p99_us": GOAL_P99_US,
                "meets_goal": p50 < GOAL_P50_US and p99 < GOAL_P99_US,
                "cpu_share": round(result.cpu_secs / result.wall_secs, 2) if result.wall_secs > 0 else None,
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in load_after],
            }
        )
    )
    return 1 if result.failures else 0
