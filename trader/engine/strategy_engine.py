"""The strategy engine: wakes on book changes and on a drift-free tick, runs the strategies, sends their intents.

```
supervisor
└── StrategyEngine.run(task_status)      passes its CancelScope out: the supervisor stops strategies first
      loop: wait for (tick deadline | any book changed) -> build MarketState -> strategies -> send -> analyzers
                                                   (a book wake-up's analyzers: later, on a snapshot; see below)
```

Wake-ups:
- **Book changes**: the market-data service bumps the latest-value cells of `trader.engine.books.Books`; the engine
  waits on `Books.wait_changed(seen)` and reads the *current* books. Nothing queues behind a slow strategy: a burst
  of changes is one wake-up. After a book wake-up the engine rests `min_wakeup_interval_secs` before the next one
  (ticks are not delayed by it), so a busy feed cannot starve the other tasks.
- **Ticks**: drift-free, `deadline = start + n * period_secs`, slept with `trio.sleep_until`. A tick runs late but
  on time as long as it starts before the next deadline. When the engine is still busy at the NEXT deadline (a
  slow evaluation, or backpressure from execution), that is an *overrun*, handled by `overrun_policy`:
  `SKIP` drops every tick whose deadline has passed and waits for the next grid point; `RUN_ONCE` runs one tick
  at once in place of all the missed ones (trio-util's `periodic`), then goes back to the grid. Both count the
  overrun and the ticks missed.

What strategies look at: a book wake-up passes `MarketState.changed`, the markets whose cells changed since the
previous evaluation, so strategies look only at those. A tick is a FULL SWEEP (`changed` None: every market) when
`full_sweep_secs` have passed since the last one, and otherwise looks at what changed too. A full sweep catches
what depends on time alone (a cooldown ending, a basket no longer in flight, a quiet book confirmed again by its
connection), within `full_sweep_secs`. (Measured here: a full sweep of 2000 markets with the three strategies
and the analyzer takes 20-35 ms; a wake-up for a few changed markets well under 1 ms.)

Intents go out through a SMALL BOUNDED trio memory channel (the supervisor makes it, the engine owns and closes its
send side when it stops, which tells execution that no more intents come). A full channel blocks the engine: the
strategies feel the backpressure and no intent is dropped. Before an intent is sent its key (`intent_key`) joins the
in-flight set that strategies see; execution calls `finish(key)` once the intent's orders are all terminal (or it
was denied), and not before. Intents are sent BEFORE the analyzers run (tick-to-trade): those the channel takes at
once go first; a claim, or an intent that must wait for room, is sent after them, in the strategies' order.

Analyzers see exactly the books and the intents the strategies saw and emitted, and every evaluation in order, but
a book wake-up's analyzers run only once execution has had its turn (their CPU is off the tick-to-trade path):
- Before its first checkpoint, the wake-up takes a SNAPSHOT for them: a `MarketState` whose books are copies of the
  books in scope (the changed markets, every market of a neg-risk event with a changed market, and any book a
  strategy looked at), health as the strategies saw it, and only those markets. `positions` stays the live
  portfolio (analyzers look at books).
- The analysis runs when the engine next goes idle (its rest is over and nothing changed since), at the next tick
  (after its sends), or when the engine stops; under a feed so busy that the engine is never idle, once
  `MAX_PENDING_ANALYSES` are waiting, after the next wake-up's sends. Always in the order of the evaluations.
- Ticks (a full sweep looks at every book), wake-ups whose scope exceeds `MAX_SNAPSHOT_BOOKS` books, and an engine
  with no rest (`min_wakeup_interval_secs` 0) or told not to defer (`defer_analyses` off) run the analyzers at once
  after the sends, with no checkpoint in between: on the live books, which are then the same. A backtest turns
  deferring off: on its virtual clock the analyzers' CPU delays nothing, and the copies would be pure cost.

A `ClaimedIntent` (the sniper's) is sent only after `claim(...)` answered True within `claim_timeout_secs`: the store
recorded the claim, so a restart never sends it again. False, a timeout or an error: not sent, counted.

Failures: a strategy (or analyzer) that raises is logged and counted, and the others carry on. After
`max_strategy_errors` errors in total it is DISABLED for the rest of the run (a strategy that keeps failing is
broken; its state may be half-updated, so it must not keep trading). A strategy that returns something that is not
an intent counts as an error too.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import secrets
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog
import trio

from trader.domain.games import Scoreboard
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.market import Market, NegRiskEvent
from trader.engine.books import Books, ChangeTracker, MarketCell
from trader.integrations.store.base import OpportunityRecord, SnipedMarket, Store, secs_to_ns
from trader.strategies.base import (
    NO_POSITIONS,
    BookView,
    ClaimedIntent,
    Intent,
    MarketState,
    PositionReader,
    Strategy,
    StrategyOutput,
    intent_key,
)
from trader.strategies.sum_deviation import Opportunity

__all__ = [
    "Analyzer",
    "OverrunPolicy",
    "StrategyEngine",
    "StrategyEngineSettings",
    "StrategyEngineStatistics",
    "StrategyStatistics",
    "opportunity_record",
    "store_claim",
]

log = structlog.get_logger(__name__)

#: The largest intent buffer the engine accepts: the channel must stay small so strategies feel backpressure.
MAX_INTENT_BUFFER = 64
#: The most books a wake-up copies for its deferred analysis; a larger scope is analyzed at once instead.
MAX_SNAPSHOT_BOOKS = 64
#: Deferred analyses waiting at most (a feed so busy that the engine is never idle); then they run.
MAX_PENDING_ANALYSES = 8


class OverrunPolicy(enum.StrEnum):
    SKIP = "SKIP"  # missed ticks are dropped; the next tick is the next grid point
    RUN_ONCE = "RUN_ONCE"  # one tick runs at once for all the missed ones, then the grid resumes


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyEngineSettings:
    """Settings of the strategy engine.

    - `period_secs` (default 0.1): the tick period.
    - `overrun_policy` (default SKIP): what to do when a tick's next deadline has passed (see the module doc).
    - `min_wakeup_interval_secs` (default 0.005): rest after a book wake-up before waiting for the next change.
    - `max_strategy_errors` (default 3): errors after which a strategy (or analyzer) is disabled for the run.
    - `claim_timeout_secs` (default 2.0): how long a claim may take in the store before the intent is not sent.
    - `full_sweep_secs` (default 1.0): the least time between two full sweeps (see the module doc).
    - `coalesce_secs` (default 0): after a book change wakes the engine, wait this long before evaluating, so that
      the frames of one burst (a venue sends a step's changes to several markets one after the other) are decided
      on together. 0 decides at once, on whatever the scheduler let arrive first; a window longer than a burst and
      shorter than the quiet between bursts makes the decisions a function of the frames and their times alone,
      which is what a backtest of a recording can reproduce exactly.
    - `defer_analyses` (default true): a book wake-up's analyzers run later, on a snapshot, once execution has had
      its turn (see the module doc); false runs them at once after the sends, on the live books.
    """

    period_secs: float = 0.1
    overrun_policy: OverrunPolicy = OverrunPolicy.SKIP
    min_wakeup_interval_secs: float = 0.005
    max_strategy_errors: int = 3
    claim_timeout_secs: float = 2.0
    full_sweep_secs: float = 1.0
    coalesce_secs: float = 0.0
    defer_analyses: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.period_secs) and self.period_secs > 0):
            raise ValueError(f"period_secs must be > 0, got {self.period_secs}")
        if not (math.isfinite(self.min_wakeup_interval_secs) and self.min_wakeup_interval_secs >= 0):
            raise ValueError(f"min_wakeup_interval_secs must be >= 0, got {self.min_wakeup_interval_secs}")
        if self.max_strategy_errors < 1:
            raise ValueError(f"max_strategy_errors must be >= 1, got {self.max_strategy_errors}")
        if not (math.isfinite(self.full_sweep_secs) and self.full_sweep_secs >= 0):
            raise ValueError(f"full_sweep_secs must be >= 0, got {self.full_sweep_secs}")
        if not (math.isfinite(self.coalesce_secs) and self.coalesce_secs >= 0):
            raise ValueError(f"coalesce_secs must be >= 0, got {self.coalesce_secs}")
        if not self.claim_timeout_secs > 0:
            raise ValueError(f"claim_timeout_secs must be > 0, got {self.claim_timeout_secs}")
        if not isinstance(self.defer_analyses, bool):
            raise ValueError(f"defer_analyses must be true or false, got {self.defer_analyses!r}")
        if not isinstance(self.overrun_policy, OverrunPolicy):
            raise ValueError(f"overrun_policy must be an OverrunPolicy, got {self.overrun_policy!r}")


class Analyzer(Protocol):
    """A pure observer of every evaluation, after the strategies, with the state they saw and the intents they
    emitted (for a book wake-up, a snapshot of the books in scope, observed a little later: see the module doc).
    It returns events to publish (`publish`), and keeps a summary for /status and the exit summary."""

    @property
    def name(self) -> str: ...

    def observe(self, state: MarketState, emitted: Sequence[Intent]) -> Sequence[object]: ...

    def summary(self) -> object: ...


@dataclass(frozen=True, slots=True)
class StrategyStatistics:
    name: str
    enabled: bool
    intents: int  # intents sent (an ArbIntent counts once)
    errors: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StrategyEngineStatistics:
    ticks: int
    overruns: int  # times the engine was still busy at a tick's next deadline
    missed_ticks: int  # ticks dropped by the overrun policy
    wakeups: int  # evaluations woken by a book change
    full_sweeps: int  # evaluations that looked at every market
    evaluations: int  # ticks + wakeups
    intents: int  # all intents sent
    in_flight: int
    backpressure_waits: int  # sends that had to wait for execution
    claims_refused: int  # a claimed intent the store already held: not sent
    claim_failures: int  # the claim timed out or failed: not sent
    publish_errors: int
    max_evaluation_ms: float  # the longest evaluation, process time
    strategies: tuple[StrategyStatistics, ...]
    analyzers: tuple[StrategyStatistics, ...]
    evaluation_p50_ms: float | None = None  # the median cost of the strategies' last 1024 evaluations, process time

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.strategies) + sum(a.errors for a in self.analyzers)


@dataclass(slots=True)
class _Runner:
    name: str
    enabled: bool = True
    intents: int = 0
    errors: int = 0
    last_error: str | None = None

    def statistics(self) -> StrategyStatistics:
        return StrategyStatistics(self.name, self.enabled, self.intents, self.errors, self.last_error)


@dataclass(slots=True)
class _Analysis:
    """A deferred analysis: the snapshot of a wake-up's state, what its strategies emitted, how long it took."""

    state: MarketState
    emitted: list[Intent]
    evaluation_secs: float


_V = TypeVar("_V")


class _CellsView(Mapping[str, _V]):
    """condition id -> `read(cell)` of each followed cell, read live on access: `markets` (the live `Market`, tick-size
    changes included) and `stamps` of a `MarketState`."""

    __slots__ = ("_books", "_read")

    def __init__(self, books: Books, read: Callable[[MarketCell], _V]) -> None:
        self._books = books
        self._read = read

    def __getitem__(self, condition_id: str) -> _V:
        return self._read(self._books.markets[condition_id])

    def get(self, condition_id: str, default: _V | None = None) -> _V | None:  # type: ignore[override]
        cell = self._books.markets.get(condition_id)
        return default if cell is None else self._read(cell)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._books.markets))

    def __len__(self) -> int:
        return len(self._books.markets)


def _market_of(cell: MarketCell) -> Market:
    return cell.market


def _stamp_of(cell: MarketCell) -> int:
    return cell.stamp


class _BooksView(Mapping[str, BookView]):
    """token id -> `BookView` with its health at `now`, built on access (strategies look at few books)."""

    __slots__ = ("_books", "_made", "_now")

    def __init__(self, books: Books, now: float) -> None:
        self._books = books
        self._now = now
        self._made: dict[str, BookView] = {}

    def __getitem__(self, token_id: str) -> BookView:
        made = self.get(token_id)
        if made is None:
            raise KeyError(token_id)
        return made

    def get(self, token_id: str, default: BookView | None = None) -> BookView | None:  # type: ignore[override]
        # The hot path of a full sweep (two books per market): no exception for a book that is not followed.
        made = self._made.get(token_id)
        if made is not None:
            return made
        token = self._books.get_token(token_id)
        if token is None:
            return default
        made = self._made[token_id] = BookView(
            token.book,
            condition_id=token.condition_id,
            ready=token.ready,
            suspect=token.suspect,
            age_secs=token.age(self._now),
        )
        return made

    def __iter__(self) -> Iterator[str]:
        return iter([token.asset_id for token in self._books.tokens()])

    @property
    def made(self) -> Iterator[str]:
        """The tokens whose view was asked for (what the strategies looked at)."""
        return iter(self._made)

    def __len__(self) -> int:
        return sum(len(cell.tokens) for cell in self._books.markets.values())


def _no_events() -> Sequence[NegRiskEvent]:
    return ()


def _no_scoreboard() -> Scoreboard | None:
    return None


def new_session(wall: float) -> str:
    """A run id for client order ids: wall-clock milliseconds in hex plus 16 random bits."""
    return f"{int(wall * 1000):x}{secrets.token_hex(2)}"


class StrategyEngine:
    """Runs `strategies` (and `analyzers`) on the live books; start it with `scope = await nursery.start(engine.run)`.

    - `books`: the market-data service's `Books` (the latest-value cells).
    - `strategies`: the enabled strategies (`trader.strategies.base.Strategy`), run in this order.
    - `intents`: the send side of a small bounded memory channel to execution; the engine closes it when it stops.
    - `analyzers`: observers such as `SumDeviation`; their events go to `publish` (a non-blocking callable, e.g. the
      event bus's bounded put; an exception there is counted and logged).
    - `events`: the current complete-or-not neg-risk events (from discovery); `positions`: the portfolio.
    - `scoreboard`: the latest sports scoreboard (`EspnPoller.latest`), for the sniper.
    - `claim`: records a `ClaimedIntent`'s claim in the store, True if it was new (`store_claim(store)`); without
      it, claims are kept in memory for this run only.
    - `buy_fees_in_shares`: the venue takes a buy's fee out of the shares bought (the paper venue): strategies size
      basket legs so that each holds the same shares after fees (`MarketState.buy_fees_in_shares`).
    """

    def __init__(
        self,
        *,
        books: Books,
        strategies: Sequence[Strategy],
        intents: trio.MemorySendChannel[Intent],
        settings: StrategyEngineSettings | None = None,
        analyzers: Sequence[Analyzer] = (),
        events: Callable[[], Sequence[NegRiskEvent]] = _no_events,
        positions: PositionReader = NO_POSITIONS,
        scoreboard: Callable[[], Scoreboard | None] = _no_scoreboard,
        claim: Callable[[ClaimedIntent], Awaitable[bool]] | None = None,
        publish: Callable[[object], None] | None = None,
        session: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        buy_fees_in_shares: bool = False,
    ) -> None:
        buffer = intents.statistics().max_buffer_size
        if not buffer <= MAX_INTENT_BUFFER:
            raise ValueError(f"the intent channel must be small and bounded (<= {MAX_INTENT_BUFFER}), got {buffer}")
        names = [s.name for s in strategies] + [a.name for a in analyzers]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy and analyzer names must be unique, got {names}")
        self._books = books
        self._strategies = [(s, _Runner(s.name)) for s in strategies]
        self._analyzers = [(a, _Runner(a.name)) for a in analyzers]
        self._intents = intents
        self._settings = settings or StrategyEngineSettings()
        self._events = events
        self._positions = positions
        self._scoreboard = scoreboard
        self._claim = claim
        self._claimed: set[str] = set()
        self._publish = publish
        self._wall_clock = wall_clock
        self._buy_fees_in_shares = buy_fees_in_shares
        self.session = session or new_session(wall_clock())
        self._in_flight: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._max_evaluation_secs = 0.0
        self._recent_evaluations: deque[float] = deque(maxlen=1024)  # seconds, the strategies' part of each
        self._changes: ChangeTracker | None = None  # made by run()
        self._pending: list[_Analysis] = []  # deferred analyses, oldest first
        self._last_sweep = -math.inf

    # -- for execution and the supervisor -------------------------------------------------------------------------

    def finish(self, key: str) -> None:
        """Execution is done with the intent `key` (every order terminal, or it was denied): it is no longer in
        flight, so its strategy may fire on that basket or token again. Unknown keys are ignored."""
        self._in_flight.discard(key)

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._in_flight)

    def statistics(self) -> StrategyEngineStatistics:
        c = self._counts
        return StrategyEngineStatistics(
            ticks=c["ticks"],
            overruns=c["overruns"],
            missed_ticks=c["missed_ticks"],
            wakeups=c["wakeups"],
            full_sweeps=c["full_sweeps"],
            evaluations=c["ticks"] + c["wakeups"],
            intents=c["intents"],
            in_flight=len(self._in_flight),
            backpressure_waits=c["backpressure_waits"],
            claims_refused=c["claims_refused"],
            claim_failures=c["claim_failures"],
            publish_errors=c["publish_errors"],
            max_evaluation_ms=self._max_evaluation_secs * 1000,
            evaluation_p50_ms=statistics.median(self._recent_evaluations) * 1000 if self._recent_evaluations else None,
            strategies=tuple(r.statistics() for _, r in self._strategies),
            analyzers=tuple(r.statistics() for _, r in self._analyzers),
        )

    def summaries(self) -> dict[str, object]:
        """Each analyzer's summary, by name (for /status and the exit summary)."""
        return {runner.name: analyzer.summary() for analyzer, runner in self._analyzers}

    def status(self) -> dict[str, object]:
        """A JSON-ready document for /status and the exit summary: the statistics, the keys in flight and each
        analyzer's summary (dataclasses as dicts; Decimals and enums are left for the encoder to write as text)."""
        stats = self.statistics()
        document: dict[str, object] = {"session": self.session, **dataclasses.asdict(stats), "errors": stats.errors}
        document["in_flight_keys"] = sorted(self._in_flight)[:100]
        document["summaries"] = {
            name: dataclasses.asdict(summary)
            if dataclasses.is_dataclass(summary) and not isinstance(summary, type)
            else summary
            for name, summary in self.summaries().items()
        }
        return document

    # -- the service ----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled. `task_status.started(scope)` hands out the engine's own cancel scope: cancelling it
        stops the strategies (and closes the intent channel) without touching anything else."""
        with trio.CancelScope() as scope, self._books.track_changes() as changes:
            self._changes = changes
            async with self._intents:
                log.info(
                    "strategy_engine_started",
                    strategies=[r.name for _, r in self._strategies],
                    analyzers=[r.name for _, r in self._analyzers],
                    session=self.session,
                )
                task_status.started(scope)
                try:
                    await self._loop()
                finally:
                    self._flush_analyses()
                    log.info("strategy_engine_stopped", ticks=self._counts["ticks"], intents=self._counts["intents"])

    def _last_due(self, start: float, now: float) -> int:
        """The largest n with start + n * period <= now (exact on the float grid the loop uses)."""
        period = self._settings.period_secs
        n = max(0, math.floor((now - start) / period))
        while start + (n + 1) * period <= now:
            n += 1
        while n > 0 and start + n * period > now:
            n -= 1
        return n

    async def _loop(self) -> None:
        s = self._settings
        start = trio.current_time()
        n = 0  # the next tick
        seen = self._books.version
        rest_until = -math.inf
        while True:
            deadline = start + n * s.period_secs
            if trio.current_time() < deadline:
                woke = False
                with trio.move_on_at(deadline):
                    if rest_until > trio.current_time():
                        await trio.sleep_until(rest_until)
                    if self._books.version == seen:  # idle: the deferred analysis goes now
                        self._flush_analyses()
                    seen = await self._books.wait_changed(seen)
                    if s.coalesce_secs:  # the rest of the burst first
                        await trio.sleep(s.coalesce_secs)
                        seen = self._books.version
                    woke = True
                if woke:
                    self._counts["wakeups"] += 1
                    await self._evaluate(full=False, defer=s.defer_analyses and s.min_wakeup_interval_secs > 0)
                    rest_until = trio.current_time() + s.min_wakeup_interval_secs
                    continue
            now = trio.current_time()
            due = self._last_due(start, now)
            if due > n:  # still busy at tick n's next deadline
                self._counts["overruns"] += 1
                if s.overrun_policy is OverrunPolicy.SKIP:
                    self._counts["missed_ticks"] += due - n + 1
                    n = due + 1
                    continue
                self._counts["missed_ticks"] += due - n
                n = due
            self._counts["ticks"] += 1
            full = trio.current_time() - self._last_sweep >= s.full_sweep_secs
            await self._evaluate(full=full)
            n += 1

    def _changed_markets(self) -> frozenset[str]:
        """Markets whose cell changed (or that appeared or went away) since the previous evaluation: the engine's
        `ChangeTracker`, so O(changed) and not O(markets). Before `run` (no tracker yet), every market."""
        if self._changes is None:
            return frozenset(self._books.markets)
        return self._changes.take()

    def _state(self, *, full: bool) -> MarketState:
        changed = self._changed_markets()
        if full:
            self._counts["full_sweeps"] += 1
            self._last_sweep = trio.current_time()
        now = trio.current_time()
        return MarketState(
            now=now,
            wall=self._wall_clock(),
            markets=_CellsView(self._books, _market_of),
            books=_BooksView(self._books, now),
            events=self._events(),
            positions=self._positions,
            in_flight=frozenset(self._in_flight),
            changed=None if full else changed,
            session=self.session,
            scoreboard=self._scoreboard(),
            buy_fees_in_shares=self._buy_fees_in_shares,
            stamps=_CellsView(self._books, _stamp_of),
        )

    def _failed(self, runner: _Runner, kind: str, exc: BaseException) -> None:
        runner.errors += 1
        runner.last_error = f"{type(exc).__name__}: {exc}"[:200]
        log.error(f"{kind}_failed", name=runner.name, error=runner.last_error, errors=runner.errors, exc_info=exc)
        if runner.errors >= self._settings.max_strategy_errors:
            runner.enabled = False
            log.error(f"{kind}_disabled", name=runner.name, errors=runner.errors)

    async def _evaluate(self, *, full: bool, defer: bool = False) -> None:
        """Run the strategies, send what they emitted, and analyze: at once after the sends (the deferred analyses of
        earlier wake-ups first), or, when `defer` and the scope is small, later on a snapshot (see the module doc)."""
        started = time.perf_counter()
        state = self._state(full=full)
        outputs: list[tuple[_Runner, StrategyOutput]] = []
        for strategy, runner in self._strategies:
            if not runner.enabled:
                continue
            try:
                produced = list(strategy.on_state(state))
                for item in produced:
                    if not isinstance(item, OrderIntent | ArbIntent | ClaimedIntent):
                        raise TypeError(f"a strategy must return intents, got {type(item).__name__}")
            except Exception as exc:  # a strategy bug must not stop the others
                self._failed(runner, "strategy", exc)
                continue
            outputs.extend((runner, item) for item in produced)
        emitted = [item.intent if isinstance(item, ClaimedIntent) else item for _, item in outputs]
        # Intents go out BEFORE the analyzers run: they are on the tick-to-trade path, the analyzers are not. Only
        # what the channel takes at once goes first, with no checkpoint in between, so the analyzers still see the
        # books exactly as the strategies did; a claim, or an intent that would wait for room, waits for them.
        sent = 0
        for runner, item in outputs:
            if isinstance(item, ClaimedIntent) or not self._send_nowait(runner, item):
                break
            sent += 1
        snapshot = self._snapshot(state) if defer and self._analyzing() else None
        evaluation_secs = time.perf_counter() - started
        self._recent_evaluations.append(evaluation_secs)
        if snapshot is None:
            self._flush_analyses()  # the earlier ones first
            self._analyze(_Analysis(state, emitted, evaluation_secs))
        else:  # taken before any checkpoint: the books as the strategies saw them
            self._max_evaluation_secs = max(self._max_evaluation_secs, evaluation_secs)
            if len(self._pending) >= MAX_PENDING_ANALYSES:
                self._flush_analyses()
            self._pending.append(_Analysis(snapshot, emitted, evaluation_secs))
        for runner, item in outputs[sent:]:
            await self._send(runner, item)

    def _analyzing(self) -> bool:
        return any(runner.enabled for _, runner in self._analyzers)

    def _snapshot(self, state: MarketState) -> MarketState | None:
        """`state` with copies of the books in scope (the changed markets, every market of a neg-risk event with a
        changed market, any book a strategy looked at) and only those markets; None for a full sweep, or a scope
        above `MAX_SNAPSHOT_BOOKS` books."""
        changed = state.changed
        books = state.books
        if changed is None or not isinstance(books, _BooksView):
            return None
        live = self._books.markets
        markets: dict[str, Market] = {cid: cell.market for cid in changed if (cell := live.get(cid)) is not None}
        for event in state.events:
            for listed in event.markets:
                if listed.condition_id in changed:
                    break
            else:
                continue
            for listed in event.markets:
                cell = live.get(listed.condition_id)
                if cell is not None:
                    markets[listed.condition_id] = cell.market
        tokens = {token_id for market in markets.values() for token_id in market.token_ids}
        tokens.update(books.made)
        if len(tokens) > MAX_SNAPSHOT_BOOKS:
            return None
        frozen: dict[str, BookView] = {}
        for token_id in tokens:
            view = books.get(token_id)
            if view is not None:
                frozen[token_id] = view.frozen()
        return MarketState(
            now=state.now,
            wall=state.wall,
            markets=markets,
            books=frozen,
            events=state.events,
            positions=state.positions,
            in_flight=state.in_flight,
            session=state.session,
            scoreboard=state.scoreboard,
            changed=changed,
            buy_fees_in_shares=state.buy_fees_in_shares,
        )

    def _flush_analyses(self) -> None:
        """Run the deferred analyses, oldest first."""
        pending, self._pending = self._pending, []
        for analysis in pending:
            self._analyze(analysis)

    def _analyze(self, analysis: _Analysis) -> None:
        started = time.perf_counter()
        for analyzer, runner in self._analyzers:
            if not runner.enabled:
                continue
            try:
                events = list(analyzer.observe(analysis.state, analysis.emitted))
            except Exception as exc:
                self._failed(runner, "analyzer", exc)
                continue
            for event in events:
                self._publish_event(event)
        elapsed = analysis.evaluation_secs + time.perf_counter() - started
        self._max_evaluation_secs = max(self._max_evaluation_secs, elapsed)

    def _publish_event(self, event: object) -> None:
        if self._publish is None:
            return
        try:
            self._publish(event)
        except Exception as exc:
            self._counts["publish_errors"] += 1
            log.warning("publish_failed", event_type=type(event).__name__, error=f"{type(exc).__name__}: {exc}"[:200])

    def _send_nowait(self, runner: _Runner, intent: Intent) -> bool:
        """Send `intent` if the channel has room now (no checkpoint); False, and nothing done, if it has none."""
        try:
            self._intents.send_nowait(intent)
        except trio.WouldBlock:
            return False
        self._in_flight.add(intent_key(intent))  # no checkpoint since the send: execution cannot have finished it
        runner.intents += 1
        self._counts["intents"] += 1
        return True

    async def _send(self, runner: _Runner, item: StrategyOutput) -> None:
        if isinstance(item, ClaimedIntent):
            if not await self._take_claim(runner, item):
                return
            intent = item.intent
        else:
            intent = item
        key = intent_key(intent)
        self._in_flight.add(key)
        try:
            self._intents.send_nowait(intent)
        except trio.WouldBlock:
            self._counts["backpressure_waits"] += 1
            await self._intents.send(intent)
        runner.intents += 1
        self._counts["intents"] += 1

    async def _take_claim(self, runner: _Runner, item: ClaimedIntent) -> bool:
        if self._claim is None:
            if item.claim_key in self._claimed:
                self._counts["claims_refused"] += 1
                return False
            self._claimed.add(item.claim_key)
            return True
        claimed = False
        try:
            with trio.move_on_after(self._settings.claim_timeout_secs) as timeout:
                claimed = await self._claim(item)
        except Exception as exc:
            self._counts["claim_failures"] += 1
            log.error("claim_failed", strategy=runner.name, claim=item.claim_key, error=f"{type(exc).__name__}: {exc}")
            return False
        if timeout.cancelled_caught:
            self._counts["claim_failures"] += 1
            log.error("claim_timed_out", strategy=runner.name, claim=item.claim_key)
            return False
        if not claimed:
            self._counts["claims_refused"] += 1
            log.warning("claim_refused", strategy=runner.name, claim=item.claim_key)
        return claimed


def store_claim(
    store: Store, *, wall_clock: Callable[[], float] = time.time
) -> Callable[[ClaimedIntent], Awaitable[bool]]:
    """The `claim` for a store: `Store.mark_sniped` (check and write in one step), keyed by the claim key (the
    sniped market's condition id). At start, give the sniper `{m.condition_id for m in await
    store.load_sniped_markets()}`."""

    async def claim(item: ClaimedIntent) -> bool:
        sniped = SnipedMarket(
            condition_id=item.claim_key,
            token_id=item.token_id,
            sniped_at_ns=secs_to_ns(wall_clock()),
            detail=dict(item.detail),
        )
        return await store.mark_sniped(sniped)

    return claim


def opportunity_record(opportunity: Opportunity, *, strategy: str = "sum_deviation") -> OpportunityRecord:
    """The store's row for a CLOSED opportunity (`Store.record_opportunities`): edge is the peak edge per unit,
    size the depth at the peak; the rest goes in `detail`."""
    ended = opportunity.ended_at if opportunity.ended_at is not None else opportunity.started_at
    return OpportunityRecord(
        opportunity_id=opportunity.opportunity_id,
        ts_ns=secs_to_ns(ended),
        strategy=strategy,
        kind=f"{opportunity.kind}/{opportunity.side}",
        market=opportunity.basket,
        edge=opportunity.peak_edge,
        size=opportunity.depth_at_peak,
        traded=opportunity.traded,
        detail={
            "status": str(opportunity.status),
            "started_ns": secs_to_ns(opportunity.started_at),
            "duration_secs": opportunity.duration_secs,
            "last_edge": str(opportunity.edge),
            "token_ids": list(opportunity.token_ids),
        },
    )
