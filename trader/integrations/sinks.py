"""Sinks: slow or fallible consumers (the store, the event bus, Slack) fed through bounded channels.

The trading core never waits on a sink. Each sink has one writer task (`SinkRunner.run`) fed through a bounded
memory channel; the core hands it items with `offer()` (never blocks: a full channel drops the item and counts it)
or, where nothing may be lost, `put()` (waits for room: backpressure).

A sink delivers batches (`Sink.deliver`, up to `max_batch` items taken from the channel at once) and raises
`DeliveryError` when it cannot (the server is down); `DeliveryError.delivered` says how many items at the head of
the batch did get through. What happens then depends on the runner's mode:

- **lossless** (the store): the rest of the batch is kept and retried with backoff (`Backoff`) until it goes
  through; meanwhile the channel fills and `put()` waits. Nothing is lost (up to the process's life).
- **lossy** (the bus, Slack): the sink is *down*. Undelivered items are counted, and the last `keep_last` are kept;
  items arriving while it is down go to the same ring without an attempt. At each retry time (backoff)
  `Sink.recover(kept)` is called: the sink reconnects and does what it can with the kept items (the Redis bus appends
  them to its stream; Slack posts one digest). When that succeeds the sink is up again.

`statistics()` reports queue depth, delivered, dropped (channel full), undelivered, kept, failures and recoveries;
`flush()` waits until everything offered so far has been dealt with (the caller bounds it with a timeout).

`WriteBehindStore` puts a lossless runner in front of a `Store`: intents (`record_intent`), `mark_sniped` and reads
go straight to the store (the engine must know they landed before it sends an order), every other write is queued.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, Protocol, TypeVar

import structlog
import trio

from trader.config import check_positive_secs
from trader.domain.market import Market
from trader.domain.positions import Position
from trader.errors import TraderError
from trader.infra.backoff import Backoff, BackoffCounter
from trader.infra.groups import collapse_group
from trader.integrations.store.base import (
    CapitalOpRecord,
    CapitalOpState,
    DailyPnlRecord,
    EquitySample,
    IntentRecord,
    IntentState,
    OpportunityRecord,
    OrderEventRecord,
    OrderRecord,
    PaperWalletRecord,
    RiskEventRecord,
    SnipedMarket,
    Store,
    StoreError,
    StoreScope,
    StoreStatistics,
    TradeRecord,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

__all__ = [
    "DeliveryError",
    "Sink",
    "SinkClosed",
    "SinkRunner",
    "SinkSettings",
    "SinkStatistics",
    "StoreSink",
    "StoreWrite",
    "WriteBehindStore",
    "open_sink",
    "open_write_behind_store",
]


class DeliveryError(TraderError):
    """A sink could not deliver (its server is unreachable). The first `delivered` items of the batch got through."""

    def __init__(self, message: str, *, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class SinkClosed(TraderError):
    """The sink was closed: it takes no more items."""


class Sink(Protocol[T_contra]):
    async def deliver(self, batch: Sequence[T_contra]) -> None:
        """Deliver the items in order, or raise `DeliveryError` (with how many got through)."""
        ...

    async def recover(self, kept: Sequence[T_contra]) -> None:
        """After an outage (lossy runners): reconnect and do what can be done with the kept items, or raise
        `DeliveryError`. Called with an empty sequence when nothing was kept."""
        ...


class SinkMode(enum.StrEnum):
    LOSSLESS = "LOSSLESS"
    LOSSY = "LOSSY"


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkSettings:
    """The channel and retry policy of one sink (`TRADER_<SINK>_SINK__*`).

    - `capacity` (1000): items the channel holds; beyond it `offer` drops (counted) and `put` waits.
    - `max_batch` (100): items taken from the channel and delivered at once.
    - `keep_last` (1000): undelivered items kept for `recover` (lossy sinks).
    - `retry_initial_secs` (0.5), `retry_max_secs` (30.0): backoff between retries while the sink is down.
    - `healthy_after_secs` (10.0): a sink up this long starts the backoff schedule again from the first delay.
    """

    capacity: int = 1000
    max_batch: int = 100
    keep_last: int = 1000
    retry_initial_secs: float = 0.5
    retry_max_secs: float = 30.0
    healthy_after_secs: float = 10.0

    def __post_init__(self) -> None:
        for name in ("capacity", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.keep_last < 0:
            raise ValueError(f"keep_last: must be >= 0, got {self.keep_last}")
        check_positive_secs(self, "retry_initial_secs")
        if not self.retry_max_secs >= self.retry_initial_secs:
            raise ValueError("retry_max_secs: must be >= retry_initial_secs")


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkStatistics:
    name: str
    available: bool  # False while the sink is down (between a failure and the next success)
    queued: int  # items waiting in the channel
    capacity: int
    pending: int  # items taken from the channel and being retried (lossless)
    delivered: int
    dropped: int  # refused at the door: channel full, or closed
    undelivered: int  # accepted but not delivered in time (lossy): counted here, the last `keep_last` kept
    kept: int  # undelivered items held now for `recover`
    recovered: int  # kept items handed to a successful `recover`
    failures: int  # failed delivery or recovery attempts
    outages: int  # times the sink went down
    last_error: str | None


class SinkRunner(Generic[T]):
    """One sink's channel and writer task. See the module docstring; start `run` in a nursery (or `open_sink`)."""

    def __init__(
        self,
        name: str,
        sink: Sink[T],
        settings: SinkSettings | None = None,
        *,
        lossless: bool = False,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.settings = settings or SinkSettings()
        self.mode = SinkMode.LOSSLESS if lossless else SinkMode.LOSSY
        self._sink = sink
        self._send, self._receive = trio.open_memory_channel[T](self.settings.capacity)
        backoff = Backoff(
            initial_secs=self.settings.retry_initial_secs, max_secs=self.settings.retry_max_secs, random_fn=random_fn
        )
        self._backoff = BackoffCounter(backoff, reset_after_secs=self.settings.healthy_after_secs)
        self._kept: deque[T] = deque(maxlen=self.settings.keep_last)
        self._pending: list[T] = []
        self._down = False
        self._up_event = trio.Event()
        self._up_event.set()
        self._progress = trio.Event()
        self._accepted = 0
        self._processed = 0
        self._delivered = 0
        self._dropped = 0
        self._undelivered = 0
        self._recovered = 0
        self._failures = 0
        self._outages = 0
        self._last_error: str | None = None

    # -- the producer side ---------------------------------------------------------------------------------------

    def offer(self, item: T) -> bool:
        """Queue `item` without waiting. False (and counted as dropped) when the channel is full or closed."""
        try:
            self._send.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self._dropped += 1
            return False
        self._accepted += 1
        return True

    def put_nowait(self, item: T) -> bool:
        """Queue `item` if the channel has room now (no schedule point): True; False, and nothing queued, when it is
        full (then `put` waits). `SinkClosed` once the sink is closed."""
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._dropped += 1
            raise SinkClosed(f"sink {self.name} is closed") from None
        self._accepted += 1
        return True

    async def put(self, item: T) -> None:
        """Queue `item`, waiting for room (lossless producers). `SinkClosed` once the sink is closed."""
        try:
            await self._send.send(item)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._dropped += 1
            raise SinkClosed(f"sink {self.name} is closed") from None
        self._accepted += 1

    def close(self) -> None:
        """Take no more items; `run` delivers what is queued and returns."""
        self._send.close()

    async def flush(self) -> None:
        """Wait until every item accepted so far was delivered, kept as undelivered, or given up."""
        target = self._accepted
        while self._processed < target:
            await self._progress.wait()

    @property
    def available(self) -> bool:
        return not self._down

    async def wait_available(self) -> None:
        """Return once the sink is up (at once if it is)."""
        await self._up_event.wait()

    def undelivered(self) -> list[T]:
        """The undelivered items kept for recovery (lossy), oldest first."""
        return list(self._kept)

    def statistics(self) -> SinkStatistics:
        return SinkStatistics(
            name=self.name,
            available=not self._down,
            queued=self._receive.statistics().current_buffer_used,
            capacity=self.settings.capacity,
            pending=len(self._pending),
            delivered=self._delivered,
            dropped=self._dropped,
            undelivered=self._undelivered,
            kept=len(self._kept),
            recovered=self._recovered,
            failures=self._failures,
            outages=self._outages,
            last_error=self._last_error,
        )

    # -- the writer task -------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until the channel is closed and drained (or until cancelled)."""
        task_status.started()
        async with self._receive:
            if self.mode is SinkMode.LOSSLESS:
                await self._run_lossless()
            else:
                await self._run_lossy()

    async def _next_batch(self) -> list[T] | None:
        try:
            batch = [await self._receive.receive()]
        except trio.EndOfChannel:
            return None
        while len(batch) < self.settings.max_batch:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    def _done(self, count: int) -> None:
        self._processed += count
        self._progress.set()
        self._progress = trio.Event()

    def _failed(self, exc: DeliveryError) -> float:
        """Count a failed attempt; the delay before the next one."""
        self._failures += 1
        self._last_error = str(exc)
        if not self._down:
            self._down = True
            self._up_event = trio.Event()
            self._outages += 1
            log.warning("sink_down", sink=self.name, error=str(exc))
        return self._backoff.next_delay(trio.current_time())

    def _up(self) -> None:
        if self._down:
            self._down = False
            self._up_event.set()
            self._backoff.record_connected(trio.current_time())
            log.warning("sink_up", sink=self.name, outages=self._outages)
        else:
            self._backoff.record_healthy(trio.current_time())

    async def _run_lossless(self) -> None:
        while True:
            if not self._pending:
                batch = await self._next_batch()
                if batch is None:
                    return
                self._pending = batch
            try:
                await self._sink.deliver(self._pending)
            except DeliveryError as exc:
                got = max(0, min(exc.delivered, len(self._pending)))
                self._delivered += got
                self._pending = self._pending[got:]
                self._done(got)
                await trio.sleep(self._failed(exc))
                continue
            count = len(self._pending)
            self._pending = []
            self._delivered += count
            self._done(count)
            self._up()

    def _keep(self, items: Sequence[T]) -> None:
        self._undelivered += len(items)
        self._kept.extend(items)
        self._done(len(items))

    async def _run_lossy(self) -> None:
        retry_at = 0.0
        while True:
            if self._down:
                with trio.move_on_at(retry_at):
                    batch = await self._next_batch()
                    if batch is None:
                        return
                    self._keep(batch)
                    continue
                kept = list(self._kept)
                try:
                    await self._sink.recover(kept)
                except DeliveryError as exc:
                    retry_at = trio.current_time() + self._failed(exc)
                    continue
                self._recovered += len(kept)
                self._kept.clear()
                self._up()
                continue
            batch = await self._next_batch()
            if batch is None:
                return
            try:
                await self._sink.deliver(batch)
            except DeliveryError as exc:
                got = max(0, min(exc.delivered, len(batch)))
                self._delivered += got
                self._done(got)
                self._keep(batch[got:])
                retry_at = trio.current_time() + self._failed(exc)
                continue
            self._delivered += len(batch)
            self._done(len(batch))
            self._up()


@asynccontextmanager
async def open_sink(
    name: str, sink: Sink[T], settings: SinkSettings | None = None, *, lossless: bool = False
) -> AsyncIterator[SinkRunner[T]]:
    """Run a sink's writer for the block. A normal exit closes the channel and waits for it to drain (bound that
    wait with a timeout around the block); an exception cancels the writer."""
    runner = SinkRunner(name, sink, settings, lossless=lossless)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            try:
                yield runner
            except BaseException:
                nursery.cancel_scope.cancel()
                raise
            runner.close()
    except BaseExceptionGroup as group:
        raise collapse_group(group) from None
    finally:
        stats = runner.statistics()
        lost = stats.queued + stats.pending
        if lost:
            log.error("sink_closed_with_items", sink=name, items=lost)


# -- the store behind a lossless sink ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreWrite:
    """One queued store write: `what` names it (for logs), `call` performs it."""

    what: str
    call: Callable[[], Awaitable[object]] = field(repr=False)


class StoreSink:
    """Applies queued `StoreWrite`s to a store, in order.

    A write that fails while the store is unavailable (its `available` is False) stops the batch: `DeliveryError`,
    retried later. A write the database refuses for good (a duplicate key, an unknown intent) is counted in
    `rejected`, logged and skipped: retrying it would never succeed.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.rejected = 0

    async def deliver(self, batch: Sequence[StoreWrite]) -> None:
        for done, write in enumerate(batch):
            try:
                await write.call()
            except StoreError as exc:
                if not self._store.available:
                    raise DeliveryError(f"store unavailable: {exc}", delivered=done) from exc
                self.rejected += 1
                log.error("store_write_rejected", what=write.what, error=str(exc))

    async def recover(self, kept: Sequence[StoreWrite]) -> None:  # pragma: no cover - lossless runners never call it
        await self.deliver(kept)


class WriteBehindStore:
    """A `Store` whose writes (other than intents and `mark_sniped`) are queued to a lossless writer task.

    `record_intent` goes straight to the store and raises if it cannot be written: the order is then not sent.
    `available` is the underlying store's.
    """

    def __init__(self, store: Store, runner: SinkRunner[StoreWrite], sink: StoreSink) -> None:
        self.store = store
        self.runner = runner
        self._sink = sink

    @property
    def available(self) -> bool:
        return self.store.available

    @property
    def rejected_writes(self) -> int:
        return self._sink.rejected

    async def flush(self) -> None:
        await self.runner.flush()

    def statistics(self) -> StoreStatistics:
        return self.store.statistics()

    def sink_statistics(self) -> SinkStatistics:
        return self.runner.statistics()

    async def _queue(self, what: str, call: Callable[[], Awaitable[object]], *, at_once: bool = False) -> None:
        """Queue a write, waiting for room. `at_once`: with room in the channel, no schedule point (the order
        path's write-ahead: nothing else runs before its order is sent)."""
        write = StoreWrite(what, call)
        try:
            if not (at_once and self.runner.put_nowait(write)):
                await self.runner.put(write)
        except SinkClosed as exc:
            raise StoreError(str(exc)) from None

    # -- straight through ----------------------------------------------------------------------------------------

    async def record_intent(self, intent: IntentRecord) -> None:
        await self.record_intents((intent,))

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        await self.store.record_intents(intents)

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        return await self.store.mark_sniped(sniped)

    async def claim_scope(self, scope: StoreScope, *, ts_ns: int) -> StoreScope:
        return await self.store.claim_scope(scope, ts_ns=ts_ns)

    async def load_scope(self) -> StoreScope | None:
        return await self.store.load_scope()

    async def load_paper_wallet(self) -> PaperWalletRecord | None:
        return await self.store.load_paper_wallet()

    async def load_markets(self) -> list[Market]:
        return await self.store.load_markets()

    async def load_pending_intents(self) -> list[IntentRecord]:
        return await self.store.load_pending_intents()

    async def load_open_orders(self) -> list[OrderRecord]:
        return await self.store.load_open_orders()

    async def load_order(self, order_id: str) -> OrderRecord | None:
        return await self.store.load_order(order_id)

    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]:
        return await self.store.load_order_events(order_id)

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]:
        return await self.store.load_trades(since_ns=since_ns)

    async def load_positions(self) -> list[Position]:
        return await self.store.load_positions()

    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None:
        return await self.store.load_daily_pnl(day)

    async def load_equity(self, *, since_ns: int | None = None) -> list[EquitySample]:
        return await self.store.load_equity(since_ns=since_ns)

    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]:
        return await self.store.load_risk_events(since_ns=since_ns)

    async def load_sniped_markets(self) -> list[SnipedMarket]:
        return await self.store.load_sniped_markets()

    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]:
        return await self.store.load_opportunities(since_ns=since_ns)

    # -- queued --------------------------------------------------------------------------------------------------

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None:
        await self._queue("upsert_market", partial(self.store.upsert_market, market, ts_ns=ts_ns))

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        call = partial(self.store.resolve_intent, client_order_id, state, ts_ns=ts_ns, order_id=order_id, reason=reason)
        await self._queue("resolve_intent", call)

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        await self._queue("record_order", partial(self.store.record_order, order, reason=reason))

    async def record_trade(self, trade: TradeRecord) -> None:
        await self._queue("record_trade", partial(self.store.record_trade, trade))

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        await self._queue("record_position", partial(self.store.record_position, position, ts_ns=ts_ns))

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None:
        await self._queue("record_daily_pnl", partial(self.store.record_daily_pnl, pnl))

    async def record_equity(self, sample: EquitySample) -> None:
        await self._queue("record_equity", partial(self.store.record_equity, sample))

    async def record_paper_wallet(self, wallet: PaperWalletRecord) -> None:
        await self._queue("record_paper_wallet", partial(self.store.record_paper_wallet, wallet))

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await self._queue("record_risk_event", partial(self.store.record_risk_event, event))

    async def record_capital_op(self, op: CapitalOpRecord) -> None:
        """The write-ahead of a chain operation (PREPARED) goes straight through, like an intent: nothing is sent
        before it is written. Its later states are queued behind the writes made before them (the positions a
        confirmed merge changed land first), so a crash never leaves an operation ended and its effect unwritten."""
        if op.state is CapitalOpState.PREPARED:
            await self.store.record_capital_op(op)
        else:
            await self._queue("record_capital_op", partial(self.store.record_capital_op, op))

    async def load_open_capital_ops(self) -> list[CapitalOpRecord]:
        return await self.store.load_open_capital_ops()

    async def load_capital_ops(self) -> list[CapitalOpRecord]:
        return await self.store.load_capital_ops()

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        if opportunities:
            rows = list(opportunities)
            await self._queue("record_opportunities", partial(self.store.record_opportunities, rows))


@asynccontextmanager
async def open_write_behind_store(
    store: Store, settings: SinkSettings | None = None
) -> AsyncIterator[WriteBehindStore]:
    """Queue `store`'s writes behind a lossless sink for the block; a normal exit flushes them."""
    sink = StoreSink(store)
    async with open_sink("store", sink, settings, lossless=True) as runner:
        yield WriteBehindStore(store, runner, sink)
