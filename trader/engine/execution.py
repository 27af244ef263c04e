"""The execution service: intents in, through the risk gate, into order tasks that all live in ONE cancel scope.

```
ExecutionService.run
├── venue event pump        venue order/trade events -> OrderManager (state machine, fills, settlement)
├── orders host             owns the "orders scope": a nursery holding every order task (reopened on resume)
│   └── order tasks         one per intent: OrderManager.submit, or run_arbitrage for an ArbIntent
└── intent consumer         the bounded channel the strategy engine sends into -> risk gate -> order task
```

Every intent passes the risk gate (`trader.engine.risk.RiskGate.check`) before anything is written or sent; a
denial is a value (`RiskRejected` events, one per leg), counted by reason code. Approved intents become order
tasks in the orders scope. Intents keep being consumed while trading is halted or draining (and denied), so a
strategy never blocks on a full channel.

Buying power (with `funds`, `trader.engine.funds.Funds`): the gate sees the wallet's balance, and every approved
leg counts as reserved at its whole cost (`trader.engine.risk.order_cost`) from its approval until its order is on
the book or closed: intents are checked one after another and each approved one starts a task that has not sent
anything yet, so the next check must already see what the previous one will spend. A venue refusal for "not enough
balance / allowance" (`VENUE_NOT_ENOUGH_BALANCE`) should then never happen: each one is counted
(`balance_rejections`) and logged as an error (the composition root alerts on it).

Emergency stop (`emergency_stop(reason)`): the risk gate goes HALTED and the order manager stops sending, the orders
scope is cancelled (every order task, wherever it is), a cancel-all goes to the venue in a SHIELDED scope with a
deadline (`cancel_all_timeout_secs`, retried within it; it goes out even with the breaker open), and the event is
persisted (a `RiskEventRecord` of kind EMERGENCY_STOP). Nothing new is sent until `resume()`. Market data is not
touched: it lives elsewhere in the supervisor's tree.

Graceful drain (`drain(deadline_secs, cancel_resting=...)`): stop accepting intents, let in-flight order tasks finish
within the deadline (shielded: the supervisor may already be cancelling), cancel what is still running, then cancel
resting orders at the venue (unless `cancel_resting` is False: the supervisor passes `run.cancel_resting_on_exit`),
and report what was left open.

Arbitrage outcomes with residual exposure become an `ArbResidual` event, a `RiskEventRecord` of kind
ARB_RESIDUAL, and statistics. So does a fill of an arbitrage leg that arrives after its arbitrage ended (reason
`ARB_LATE_FILL`): a leg whose outcome stayed UNKNOWN, or that the venue did not have when asked by id, can still land
at the venue and fill later, and nothing hedges that. Such legs are watched while their order is open and for
`late_fill_watch_secs` once it is closed, at most `MAX_LATE_LEGS` of them (`trader.engine.late_legs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import NoReturn, Protocol

import structlog
import trio

from trader.domain.book import OrderBook
from trader.domain.enums import OrderStatus
from trader.domain.events import OrderFilled, OrderReason, OrderRejected
from trader.domain.intents import ArbIntent, Intent, OrderIntent, legs_of
from trader.domain.market import NO_FEES, FeeSchedule, Market
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order
from trader.domain.risk import DailyLossBreached, TradingState
from trader.engine.arbitrage import ArbitrageSettings, ArbOutcome, ArbResidual, ArbStatus, run_arbitrage
from trader.engine.breaker import CircuitOpenError
from trader.engine.funds import Funds, FundsStatistics
from trader.engine.late_legs import LateLegWatch
from trader.engine.order_manager import (
    SUBMIT_NOT_FOUND,
    DuplicateClientOrderId,
    OrderManager,
    OrderManagerStatistics,
    PrepareFailed,
    RateLimitWaitTooLong,
    pump_venue_events,
)
from trader.engine.risk import (
    BookHealth,
    BuyingPower,
    Exposure,
    Rejected,
    Reserved,
    RiskCode,
    RiskDecision,
    RiskGate,
    RiskStatistics,
    order_cost,
    rejected_events,
)
from trader.errors import ConfigError
from trader.infra.ticks import Ticker
from trader.integrations.store.base import DailyPnlRecord, RiskEventRecord, StoreError
from trader.venues.errors import VenueError, VenueRejectCode

log = structlog.get_logger(__name__)


#: Reason codes of this module.
EMERGENCY_STOP = "EMERGENCY_STOP"
OPERATOR_RESUME = "OPERATOR_RESUME"
DRAINING = "DRAINING"  # an intent that arrived after drain() began: denied
#: denials of every intent while a state lasts: the first is logged (INFO), the rest only counted (and at DEBUG)
_WHILE_STOPPED = frozenset({RiskCode.TRADING_HALTED, RiskCode.TRADING_REDUCING, DRAINING})
_COUNTED = "every intent is denied while this lasts: counted in the status line and /status, not logged each time"
DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
ARB_LATE_FILL = "ARB_LATE_FILL"  # a leg filled after its arbitrage ended: unhedged, reported as residual
#: The most legs of ended arbitrages watched for a late fill (the oldest go first, logged).
MAX_LATE_LEGS = 10_000
#: Residual events kept for `residuals()` (every one is counted, logged, stored and published).
RECENT_RESIDUALS = 100

_VENUE_CALL_ERRORS = (VenueError, trio.TooSlowError, CircuitOpenError, RateLimitWaitTooLong)
#: A leg in these states may still land and fill: its request on the wire, or its outcome unknown.
_UNCONFIRMED = frozenset({OrderStatus.SUBMITTED, OrderStatus.UNKNOWN})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSettings:
    """- `cancel_all_timeout_secs` (default 3.0): deadline of the shielded cancel-all (emergency stop, drain).
    - `cancel_all_retry_secs` (default 0.1): pause between cancel-all attempts within that deadline.
    - `persist_timeout_secs` (default 1.0): deadline of the shielded store write of a stop or residual event.
    - `reconcile_interval_secs` (default 5.0): how often orders whose outcome is unknown, or whose reported
      fills never arrived, are asked for by id.
    - `pnl_interval_secs` (default 1.0): how often PnL at the marks is fed to the risk gate (when `marks` is given);
      a daily-loss breach triggers the emergency stop. The risk day's PnL and baseline are written to the store
      when they change, and read back at start, so a restart does not reset the daily-loss limit.
    - `late_fill_watch_secs` (default 600.0): how long an ended arbitrage's leg that may still land is watched for
      a late fill once its order is closed (see the module doc).
    - `arbitrage`: `ArbitrageSettings`.
    """

    cancel_all_timeout_secs: float = 3.0
    cancel_all_retry_secs: float = 0.1
    persist_timeout_secs: float = 1.0
    reconcile_interval_secs: float = 5.0
    pnl_interval_secs: float = 1.0
    late_fill_watch_secs: float = 600.0
    arbitrage: ArbitrageSettings = field(default_factory=ArbitrageSettings)

    def __post_init__(self) -> None:
        for name in (
            "cancel_all_timeout_secs",
            "cancel_all_retry_secs",
            "persist_timeout_secs",
            "reconcile_interval_secs",
            "pnl_interval_secs",
            "late_fill_watch_secs",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyStopRecord:
    """The last emergency stop: why, who asked for it, when (wall-clock epoch seconds)."""

    reason: str
    by: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ArbStatistics:
    started: int
    by_status: Mapping[str, int]
    residual_events: int
    residual_shares: Mapping[str, Decimal]  # token -> unhedged shares reported so far


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStatistics:
    trading_state: TradingState
    accepting: bool  # False once a drain began
    sending: bool  # False while the order manager may send nothing
    intents_received: int
    intents_denied: Mapping[str, int]  # by reason code (risk codes, DRAINING, duplicates)
    intent_buffer_used: int  # intents waiting in the channel
    order_tasks_started: int
    order_tasks_active: int
    order_tasks_cancelled: int  # by emergency stops and drains
    emergency_stops: int
    cancel_all_failures: int  # cancel-alls that did not get through before their deadline
    balance_rejections: int  # venue refusals for "not enough balance / allowance": should never happen
    pending_legs: int  # approved legs whose orders are not open at the venue yet (reserved at their whole cost)
    arbitrage: ArbStatistics
    orders: OrderManagerStatistics
    risk: RiskStatistics
    funds: FundsStatistics | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainReport:
    tasks_finished: int  # in-flight order tasks that completed within the deadline
    tasks_cancelled: int  # order tasks still running at the deadline
    canceled_order_ids: tuple[str, ...]  # resting orders the final cancel-all took off the book
    cancel_all_ok: bool  # False when the cancel-all was skipped or did not get through
    open_orders_left: tuple[str, ...]  # client order ids still open afterwards


class _TokenBookLike(Protocol):
    @property
    def book(self) -> OrderBook: ...
    @property
    def ready(self) -> bool: ...
    @property
    def suspect(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def condition_id(self) -> str: ...
    def age(self, now: float) -> float | None: ...


class BooksLike(Protocol):
    """What execution reads of the market-data books (`trader.engine.books.Books` has it)."""

    def get_token(self, token_id: str) -> _TokenBookLike | None: ...


def book_health_from(books: BooksLike) -> Callable[[str], BookHealth | None]:
    """The risk gate's view of a token's book (age in ms on the Trio clock, ready, suspect), from the live books."""

    def health(token_id: str) -> BookHealth | None:
        token = books.get_token(token_id)
        if token is None:
            return None
        age = token.age(trio.current_time())
        return BookHealth(
            age_ms=None if age is None else age * 1000.0, ready=token.ready, suspect=token.suspect, closed=token.closed
        )

    return health


class _MarketsLike(Protocol):
    @property
    def market(self) -> Market: ...


class MarketBooksLike(BooksLike, Protocol):
    """What `fees_from` reads of the market-data books (`trader.engine.books.Books` has it)."""

    @property
    def markets(self) -> Mapping[str, _MarketsLike]: ...


def fees_from(books: MarketBooksLike) -> Callable[[str], FeeSchedule | None]:
    """A token's fee schedule, from its followed market (None when the token is not followed)."""

    def fees(token_id: str) -> FeeSchedule | None:
        token = books.get_token(token_id)
        if token is None:
            return None
        cell = books.markets.get(token.condition_id)
        return None if cell is None else cell.market.fees

    return fees


def tick_from(books: BooksLike, default: Decimal = Decimal("0.01")) -> Callable[[str], Decimal]:
    """A token's current tick size, from its live book."""

    def tick(token_id: str) -> Decimal:
        token = books.get_token(token_id)
        return default if token is None else token.book.tick_size

    return tick


class ExecutionService:
    """See the module docstring. Start it with `execution = await nursery.start(service.run)`."""

    def __init__(
        self,
        manager: OrderManager,
        risk: RiskGate,
        intents: trio.MemoryReceiveChannel[Intent],
        *,
        settings: ExecutionSettings | None = None,
        book_health: Callable[[str], BookHealth | None],
        tick_of: Callable[[str], Decimal] | None = None,
        marks: Callable[[], Mapping[str, Decimal]] | None = None,
        on_intent_done: Callable[[Intent], None] | None = None,
        funds: Funds | None = None,
        fees_of: Callable[[str], FeeSchedule | None] | None = None,
    ) -> None:
        """`on_intent_done(intent)` is called once per intent when it is out of flight: denied, or every one of its
        orders terminal (the strategy engine's `finish`, so a strategy never re-fires while its legs work).

        `funds`: the wallet's collateral, for the gate's buying power (None: not checked); `fees_of(token)`: the
        token's fee schedule (its taker fee bound is part of a buy's cost)."""
        self.manager = manager
        self.risk = risk
        self.settings = settings or ExecutionSettings()
        self._intents = intents
        self._book_health = book_health
        self._tick_of = tick_of or (lambda _token: Decimal("0.01"))
        self._marks = marks
        self._on_intent_done = on_intent_done
        self.funds = funds
        self._fees_of = fees_of or (lambda _token: None)
        self.last_stop: EmergencyStopRecord | None = None
        self._quiet: set[str] = set()  # denial reasons logged once while they last (`_WHILE_STOPPED`), then counted
        # Legs approved and not open at the venue yet, by client order id, and the ids each intent added (its legs,
        # and an arbitrage's unwinds), released when its task ends: reserved at their whole cost meanwhile.
        self._pending: dict[str, Reserved] = {}
        self._pending_of: dict[str, list[str]] = {}
        self._shields: set[trio.CancelScope] = set()
        self._aborted = False
        self._service: trio.Nursery | None = None
        self._market_of: dict[str, str] = {}  # token -> condition, of the intents seen
        self._tokens_of: dict[str, set[str]] = {}  # condition -> its tokens seen
        self._orders: trio.Nursery | None = None
        self._orders_open = trio.Event()
        self._resumed = trio.Event()
        self._accepting = True
        self._active = 0
        self._idle = trio.Event()
        self._idle.set()
        self._counts: Counter[str] = Counter()
        self._denied: Counter[str] = Counter()
        self._arb_status: Counter[str] = Counter()
        self._residual_shares: dict[str, Decimal] = {}
        self._event_ids = itertools.count(1)
        self._residuals: deque[ArbResidual] = deque(maxlen=RECENT_RESIDUALS)
        self._ended_legs = LateLegWatch[ArbIntent](  # legs that may still fill after their arbitrage ended
            window_secs=self.settings.late_fill_watch_secs, max_legs=MAX_LATE_LEGS, is_open=self._is_open
        )
        manager.add_listener(self._on_manager_event)

    # -- the service ------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[ExecutionService] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            self._service = nursery
            await nursery.start(pump_venue_events, self.manager)
            recovered = await self.manager.recover_pending()
            if recovered:
                log.warning("pending_intents_recovered", count=len(recovered))
            await nursery.start(self._host_orders)
            nursery.start_soon(self._reconcile_loop)
            if self._marks is not None:
                await self._restore_day()
                nursery.start_soon(self._pnl_loop)
            task_status.started(self)
            await self._consume()
            await trio.sleep_forever()  # the strategies are gone; venue events still matter
        raise AssertionError("unreachable")  # pragma: no cover

    async def _host_orders(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Hold the orders scope; after an emergency stop, wait for resume() and open a fresh one."""
        started = False
        while True:
            async with trio.open_nursery() as orders:
                self._orders = orders
                self._orders_open.set()
                orders.start_soon(trio.sleep_forever)  # keeps the scope open between order tasks
                if not started:
                    started = True
                    task_status.started()
            self._close_orders_scope(orders)
            await self._resumed.wait()
            self._resumed = trio.Event()

    def _close_orders_scope(self, orders: trio.Nursery) -> None:
        """Forget a cancelled orders scope: new order tasks wait for the next one (idempotent)."""
        if self._orders is orders:
            self._orders = None
            if self._orders_open.is_set():
                self._orders_open = trio.Event()

    async def _reconcile_loop(self) -> NoReturn:
        """Ask the venue, by order id, about orders whose state is in doubt (drift-free period); forget the closed
        orders that are due."""
        ticks = Ticker(self.settings.reconcile_interval_secs)
        while True:
            await ticks.next()
            self.manager.forget_closed()
            for order in self.manager.needs_reconcile():
                try:
                    await self.manager.reconcile(order.client_order_id)
                except _VENUE_CALL_ERRORS as exc:
                    log.warning("reconcile_failed", client_order_id=order.client_order_id, error=repr(exc))

    async def _pnl_loop(self) -> NoReturn:
        """Feed realized + marked PnL to the risk gate (and the store, when it changed); a daily-loss breach is an
        emergency stop."""
        assert self._marks is not None
        ticks = Ticker(self.settings.pnl_interval_secs)
        saved: DailyPnlRecord | None = None
        while True:
            await ticks.next()
            portfolio = self.manager.portfolio
            realized = portfolio.realized_pnl
            unrealized = portfolio.marked_unrealized_pnl(self._marks())
            events = self.risk.mark_pnl(
                realized=realized,
                unrealized=unrealized,
                wall=dt.datetime.fromtimestamp(self.manager.now(), tz=dt.UTC),
            )
            day = self.risk.day_baseline
            if day is not None:
                record = DailyPnlRecord(
                    day=day[0],
                    realized=realized,
                    unrealized=unrealized,
                    fees=portfolio.fees_paid,
                    baseline=day[1],
                    updated_at_ns=int(self.manager.now() * 1e9),
                )
                if saved is None or dataclasses.replace(saved, updated_at_ns=record.updated_at_ns) != record:
                    saved = record
                    await self._save_day(record)
            if any(isinstance(event, DailyLossBreached) for event in events):
                log.critical("daily_loss_breached", daily_pnl=str(self.risk.daily_pnl))
                await self.emergency_stop(RiskCode.RISK_DAILY_LOSS, by="the daily loss limit (risk.max_daily_loss_usd)")

    async def _save_day(self, record: DailyPnlRecord) -> None:
        try:
            await self.manager.store.record_daily_pnl(record)
        except StoreError as exc:
            log.error("daily_pnl_write_failed", error=str(exc))

    async def _restore_day(self) -> None:
        """The risk day as stored before a restart (same day only): the daily-loss limit keeps counting."""
        day = self.risk.risk_day(dt.datetime.fromtimestamp(self.manager.now(), tz=dt.UTC))
        try:
            record = await self.manager.store.load_daily_pnl(day)
        except StoreError as exc:
            log.error("daily_pnl_read_failed", error=str(exc))
            return
        if record is not None:
            self.risk.restore_day(day, baseline=record.baseline, pnl=record.pnl)
            log.info("risk_day_restored", day=str(day), daily_pnl=str(record.pnl), baseline=str(record.baseline))

    async def _consume(self) -> None:
        async with self._intents:
            async for intent in self._intents:
                self._counts["intents_received"] += 1
                await self._handle(intent)

    async def _handle(self, intent: Intent) -> None:
        legs = legs_of(intent)
        ts = self.manager.now()
        if not self._accepting:
            self._deny(intent, DRAINING, "execution is draining", ts)
            return
        for leg in legs:
            if self._market_of.setdefault(leg.token_id, leg.condition_id) == leg.condition_id:
                self._tokens_of.setdefault(leg.condition_id, set()).add(leg.token_id)
        decision = self._check(intent)
        if isinstance(decision, Rejected):
            self._deny(intent, decision.reason, decision.detail, ts)
            return
        self._quiet.clear()
        self._reserve(intent.arb_id if isinstance(intent, ArbIntent) else intent.client_order_id, legs)
        orders = self._orders
        while orders is None:  # resumed, but the host has not reopened the scope yet
            await self._orders_open.wait()
            orders = self._orders
        self._task_started()
        if isinstance(intent, ArbIntent):
            orders.start_soon(self._arb_task, intent, name=f"arb {intent.arb_id}")
        else:
            orders.start_soon(self._order_task, intent, name=f"order {intent.client_order_id}")

    def _exposure(self, legs: tuple[OrderIntent, ...] = ()) -> Exposure:
        """What the gate needs to know for `legs`: the holdings of their tokens and of their markets' other tokens,
        and the working orders (what is open, and what was approved and is not open yet)."""
        self._prune_pending()
        tokens: set[str] = set()
        for leg in legs:
            tokens.add(leg.token_id)
            tokens.update(self._tokens_of.get(leg.condition_id, ()))
        return Exposure.of(
            self.manager.portfolio,
            self.manager.open_orders(),
            self._market_of,
            pending=self._pending.values(),
            tokens=tokens,
        )

    def _check(self, intent: Intent) -> RiskDecision:
        legs = legs_of(intent)
        exposure = self._exposure(legs)
        books = {leg.token_id: health for leg in legs if (health := self._book_health(leg.token_id)) is not None}
        funds = self.funds
        buying_power = (
            None if funds is None else BuyingPower(balance=funds.balance, missing_allowances=funds.missing_allowances)
        )
        return self.risk.check(
            intent,
            exposure=exposure,
            books=books,
            now=trio.current_time(),
            funds=buying_power,
            fees={leg.token_id: self._fees(leg.token_id) for leg in legs},
        )

    def _fees(self, token_id: str) -> FeeSchedule:
        fees = self._fees_of(token_id)
        return NO_FEES if fees is None else fees

    # -- reservations of approved legs ---------------------------------------------------------------------------

    def _reserve(self, key: str, legs: tuple[OrderIntent, ...]) -> None:
        """Approved legs count as reserved (at their whole cost) until their orders are open or closed."""
        ids = self._pending_of.setdefault(key, [])
        for leg in legs:
            self._pending[leg.client_order_id] = Reserved(leg, order_cost(leg, self._fees(leg.token_id)))
            ids.append(leg.client_order_id)

    def _release(self, key: str) -> None:
        """The intent's task ended: what its orders still hold is counted from the open orders now."""
        for cid in self._pending_of.pop(key, ()):
            self._pending.pop(cid, None)

    def _prune_pending(self) -> None:
        """A leg whose order is on the book (or closed) is counted by the venue's resting rule (or not at all)."""
        manager = self.manager
        done = [
            cid
            for cid in self._pending
            if (order := manager.get(cid)) is not None and order.status not in _NOT_YET_OPEN
        ]
        for cid in done:
            del self._pending[cid]

    def _deny(self, intent: Intent, reason: str, detail: str, ts: float) -> None:
        """A denial is a value: one `RiskRejected` event per leg, counted by reason; nothing is written or sent."""
        self._denied[reason] += 1
        events = rejected_events(intent, reason, detail, ts)
        for event in events:
            self.manager.publish(event)
        ids = [e.client_order_id for e in events]
        if self.risk.state is TradingState.ACTIVE:
            self._quiet.clear()
        if reason not in _WHILE_STOPPED:
            log.info("intent_denied", reason=reason, detail=detail, client_order_ids=ids)
        elif reason not in self._quiet:  # every intent is denied while it lasts: said once, then only counted
            self._quiet.add(reason)
            log.info("intent_denied", reason=reason, detail=detail, client_order_ids=ids, hint=_COUNTED)
        else:
            log.debug("intent_denied", reason=reason, detail=detail, client_order_ids=ids)
        self._intent_done(intent)

    def _intent_done(self, intent: Intent) -> None:
        if self._on_intent_done is not None:
            self._on_intent_done(intent)

    def _finish_when_terminal(self, intent: Intent) -> None:
        """Call `on_intent_done` now if every order of `intent` is terminal (or was never created), else once they
        are: a resting order keeps its intent in flight. The watcher lives outside the orders scope, so an emergency
        stop does not lose it (the cancel-all makes the orders terminal)."""
        legs = legs_of(intent)
        waiting = [
            leg.client_order_id
            for leg in legs
            if (order := self.manager.get(leg.client_order_id)) is not None and not order.is_terminal
        ]
        if not waiting or self._service is None or self._on_intent_done is None:
            self._intent_done(intent)
            return
        self._service.start_soon(self._wait_terminal, intent, waiting)

    async def _wait_terminal(self, intent: Intent, client_order_ids: list[str]) -> None:
        for cid in client_order_ids:
            await self.manager.wait_until(cid, _is_terminal)
        self._intent_done(intent)

    # -- order tasks (all inside the orders scope) ---------------------------------------------------------------

    def _task_started(self) -> None:
        self._active += 1
        self._counts["order_tasks_started"] += 1
        if self._idle.is_set():
            self._idle = trio.Event()

    def _task_done(self) -> None:
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    async def _order_task(self, intent: OrderIntent) -> None:
        try:
            await self.manager.submit(intent)
        except DuplicateClientOrderId as exc:
            self._denied[DUPLICATE_CLIENT_ORDER_ID] += 1
            log.error("intent_duplicate_client_order_id", error=str(exc))
        except PrepareFailed as exc:  # not sent (recorded NOT_SENT with the reason): this task ends, trading goes on
            self._denied[exc.reason] += 1
            log.warning("intent_not_prepared", reason=exc.reason, error=str(exc))
        finally:
            self._release(intent.client_order_id)
            self._task_done()
            self._finish_when_terminal(intent)

    async def _arb_task(self, arb: ArbIntent) -> None:
        self._counts["arbs_started"] += 1
        try:
            outcome = await run_arbitrage(
                self.manager,
                arb,
                settings=self.settings.arbitrage,
                check=partial(self._check_unwind, arb.arb_id),
                tick_of=self._tick_of,
                on_interrupted=self._on_arb_interrupted,
            )
            await self._on_arb_outcome(outcome)
        finally:
            self._release(arb.arb_id)
            self._watch_late_legs(arb)
            self._task_done()
            self._finish_when_terminal(arb)

    def _check_unwind(self, arb_id: str, intent: OrderIntent) -> str | None:
        decision = self._check(intent)
        if isinstance(decision, Rejected):
            self._deny(intent, decision.reason, decision.detail, self.manager.now())
            return decision.reason.value
        self._reserve(arb_id, (intent,))
        return None

    def _record_arb(self, outcome: ArbOutcome) -> ArbResidual | None:
        self._arb_status[outcome.status] += 1
        if not outcome.has_residual:
            return None
        residual = ArbResidual(
            arb_id=outcome.arb_id,
            strategy=outcome.strategy,
            residual=dict(outcome.residual),
            reasons=outcome.reasons,
            ts=self.manager.now(),
        )
        self._report_residual(residual)
        return residual

    def _report_residual(self, residual: ArbResidual) -> None:
        for token, shares in residual.residual.items():
            self._residual_shares[token] = self._residual_shares.get(token, ZERO) + shares
        self._residuals.append(residual)
        self._counts["residual_events"] += 1
        self.manager.publish(residual)
        log.error(
            "arb_residual_exposure",
            arb_id=residual.arb_id,
            residual={t: str(s) for t, s in residual.residual.items()},
            reasons=residual.reasons,
            hint="these shares are held unhedged (`trader status` lists them); they settle with their market, "
            "or sell them yourself (`trader flatten` sells every position)",
        )

    def _watch_late_legs(self, arb: ArbIntent) -> None:
        """Remember the legs of an ended arbitrage that the venue may still fill: sent with an unknown outcome, or
        closed because the venue did not have them when asked (the request may still land)."""
        for leg in arb.legs:
            order = self.manager.get(leg.client_order_id)
            if order is not None and (order.status in _UNCONFIRMED or order.reason == SUBMIT_NOT_FOUND):
                evicted = self._ended_legs.evicted
                self._ended_legs.add(leg.client_order_id, arb, trio.current_time())
                if self._ended_legs.evicted > evicted:
                    log.error("late_fill_watch_full", max_legs=MAX_LATE_LEGS, evicted=self._ended_legs.evicted)

    def _is_open(self, client_order_id: str) -> bool:
        order = self.manager.get(client_order_id)
        return order is not None and not order.is_terminal

    def _on_manager_event(self, event: object) -> None:
        """A fill of a leg whose arbitrage already ended is exposure nothing hedges: report it (synchronously, as
        listeners must; the store write runs in the service nursery). A venue refusal for lack of balance is counted
        and logged as the error it is."""
        if isinstance(event, OrderRejected) and event.reason == VenueRejectCode.NOT_ENOUGH_BALANCE:
            self._counts["balance_rejections"] += 1
            log.error(
                "venue_balance_rejection",
                client_order_id=event.client_order_id,
                message=event.message,
                balance=None if self.funds is None else str(self.funds.balance),
                rejections=self._counts["balance_rejections"],
            )
            if self.funds is not None:
                self.funds.request_refresh()  # our reading was wrong: read it again
            return
        if not isinstance(event, OrderFilled):
            return
        arb = self._ended_legs.get(event.client_order_id)
        if arb is None:
            return
        held = event.size - event.fee_shares if event.side is Side.BUY else -event.size
        residual = ArbResidual(
            arb_id=arb.arb_id,
            strategy=arb.strategy,
            residual={event.token_id: held},
            reasons=(f"{ARB_LATE_FILL}:{event.client_order_id}",),
            ts=self.manager.now(),
        )
        self._report_residual(residual)
        if self._service is not None:
            self._service.start_soon(self._persist_residual, residual, ArbStatus.RESIDUAL)

    async def _on_arb_outcome(self, outcome: ArbOutcome) -> None:
        residual = self._record_arb(outcome)
        if residual is not None:
            await self._persist_residual(residual, outcome.status)

    def _on_arb_interrupted(self, outcome: ArbOutcome) -> None:
        # Cancelled (emergency stop): report synchronously; the stop itself persists its own event.
        self._record_arb(outcome)

    async def _persist_residual(self, residual: ArbResidual, status: ArbStatus) -> None:
        await self._persist(
            "ARB_RESIDUAL",
            "ARB_RESIDUAL",
            {
                "arb_id": residual.arb_id,
                "strategy": residual.strategy,
                "status": str(status),
                "residual": {t: str(s) for t, s in residual.residual.items()},
                "reasons": list(residual.reasons),
            },
        )

    # -- operator controls --------------------------------------------------------------------------------------

    async def emergency_stop(self, reason: str = EMERGENCY_STOP, *, by: str = "engine") -> None:
        """Halt, cancel every order task, cancel everything at the venue (shielded, with a deadline), persist.
        `by` says who asked (the operator, the daily-loss limit), for `last_stop`."""
        ts = self.manager.now()
        self.last_stop = EmergencyStopRecord(reason=reason, by=by, ts=ts)
        self._counts["emergency_stops"] += 1
        self.manager.block_sending(EMERGENCY_STOP)
        changed = self.risk.halt(reason=EMERGENCY_STOP, ts=ts)
        cancelled_tasks = self._cancel_order_tasks()
        log.critical("emergency_stop", reason=reason, order_tasks_cancelled=cancelled_tasks)
        canceled, ok = await self._cancel_all_shielded(OrderReason.EMERGENCY_STOP)
        await self._persist(
            EMERGENCY_STOP,
            EMERGENCY_STOP,
            {
                "reason": reason,
                "order_tasks_cancelled": cancelled_tasks,
                "orders_canceled": len(canceled),
                "cancel_all_ok": ok,
                "previous_state": str(changed.previous) if changed is not None else None,
            },
        )

    async def resume(self) -> None:
        """Back to ACTIVE: order tasks may run and orders may be sent again (the operator's decision)."""
        self.risk.resume(reason=OPERATOR_RESUME, ts=self.manager.now())
        self.manager.allow_sending()
        self._accepting = True
        if self._orders is not None and self._orders.cancel_scope.cancel_called:
            self._close_orders_scope(self._orders)  # still unwinding: later tasks go to the next scope
        self._resumed.set()
        log.warning("trading_resumed")
        await self._persist("RESUME", OPERATOR_RESUME, {})

    async def drain(self, deadline_secs: float, *, cancel_resting: bool = True) -> DrainReport:
        """Stop accepting intents, let in-flight order tasks finish within `deadline_secs` (shielded), cancel the
        rest, then (unless `cancel_resting` is False) cancel resting orders at the venue. Nothing new is sent
        afterwards."""
        self._accepting = False
        in_flight = self._active
        with self._shielded(deadline_secs):
            await self._idle.wait()
        still_running = self._cancel_order_tasks()
        self.manager.block_sending(OrderReason.SHUTDOWN)
        canceled: tuple[str, ...] = ()
        ok = False
        if cancel_resting:
            canceled, ok = await self._cancel_all_shielded(OrderReason.SHUTDOWN)
        report = DrainReport(
            tasks_finished=in_flight - still_running,
            tasks_cancelled=still_running,
            canceled_order_ids=canceled,
            cancel_all_ok=ok,
            open_orders_left=tuple(o.client_order_id for o in self.manager.open_orders()),
        )
        log.info(
            "execution_drained",
            tasks_finished=report.tasks_finished,
            tasks_cancelled=report.tasks_cancelled,
            canceled=len(report.canceled_order_ids),
            open_orders_left=len(report.open_orders_left),
        )
        return report

    @contextmanager
    def _shielded(self, deadline_secs: float) -> Iterator[trio.CancelScope]:
        """A shielded scope with a deadline that `abort()` can still cut short (an operator's second Ctrl+C)."""
        with trio.move_on_after(deadline_secs, shield=True) as scope:
            if self._aborted:
                scope.cancel()
            self._shields.add(scope)
            try:
                yield scope
            finally:
                self._shields.discard(scope)

    def abort(self) -> None:
        """Cut every shielded wait short, now and from now on (drain deadline, cancel-all): a hard stop."""
        self._aborted = True
        for scope in list(self._shields):
            scope.cancel()

    def _cancel_order_tasks(self) -> int:
        running = self._active
        if self._orders is not None:
            self._orders.cancel_scope.cancel()
        self._counts["order_tasks_cancelled"] += running
        return running

    async def _cancel_all_shielded(self, reason: str) -> tuple[tuple[str, ...], bool]:
        """Cancel-all at the venue, retried until it gets through or the deadline passes; never cancelled."""
        canceled: tuple[str, ...] = ()
        ok = False
        with self._shielded(self.settings.cancel_all_timeout_secs):
            while True:
                try:
                    result = await self.manager.cancel_all(reason=reason, force=True)
                except _VENUE_CALL_ERRORS as exc:
                    log.error("cancel_all_failed", reason=reason, error=repr(exc))
                    await trio.sleep(self.settings.cancel_all_retry_secs)
                    continue
                canceled, ok = result.canceled, True
                break
        if not ok:
            self._counts["cancel_all_failures"] += 1
        return canceled, ok

    async def _persist(self, kind: str, reason_code: str, detail: Mapping[str, object]) -> None:
        record = RiskEventRecord(
            event_id=f"{kind.lower()}-{self.manager.now():.6f}-{next(self._event_ids)}",
            ts_ns=int(self.manager.now() * 1e9),
            kind=kind,
            reason_code=reason_code,
            trading_state=str(self.risk.state),
            detail=dict(detail),
        )
        with trio.move_on_after(self.settings.persist_timeout_secs, shield=True):
            try:
                await self.manager.store.record_risk_event(record)
            except StoreError as exc:
                log.error("risk_event_write_failed", kind=kind, error=str(exc))

    # -- introspection ------------------------------------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        return self.risk.state

    def residuals(self) -> list[ArbResidual]:
        """The latest residual events (at most `RECENT_RESIDUALS`); `statistics()` counts them all."""
        return list(self._residuals)

    def buying_power(self) -> tuple[Decimal | None, Decimal]:
        """(the wallet's balance, what working buys reserve of it): the gate's view now. The balance is None without
        funds, or before the first read."""
        return (None if self.funds is None else self.funds.balance), self._exposure().reserved_usd

    def _funds_snapshot(self) -> dict[str, object] | None:
        if self.funds is None:
            return None
        balance, reserved = self.buying_power()
        stats = self.funds.statistics()
        return {
            "balance": None if balance is None else str(balance),
            "reserved": str(reserved),
            "available": None if balance is None else str(balance - reserved),
            "missing_allowances": list(self.funds.missing_allowances),
            "balance_rejections": self._counts["balance_rejections"],
            "cash_corrections": stats.cash_corrections,  # live: the engine's cash set to the wallet's, when apart
            "last_correction": None if stats.last_correction is None else str(stats.last_correction),
        }

    def statistics(self) -> ExecutionStatistics:
        c = self._counts
        return ExecutionStatistics(
            trading_state=self.risk.state,
            accepting=self._accepting,
            sending=self.manager.sending_blocked is None,
            intents_received=c["intents_received"],
            intents_denied=dict(self._denied),
            intent_buffer_used=self._intents.statistics().current_buffer_used,
            order_tasks_started=c["order_tasks_started"],
            order_tasks_active=self._active,
            order_tasks_cancelled=c["order_tasks_cancelled"],
            emergency_stops=c["emergency_stops"],
            cancel_all_failures=c["cancel_all_failures"],
            balance_rejections=c["balance_rejections"],
            pending_legs=len(self._pending),
            arbitrage=ArbStatistics(
                started=c["arbs_started"],
                by_status=dict(self._arb_status),
                residual_events=c["residual_events"],
                residual_shares=dict(self._residual_shares),
            ),
            orders=self.manager.statistics(),
            risk=self.risk.statistics(),
            funds=None if self.funds is None else self.funds.statistics(),
        )

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready document for /status: trading state, open orders, positions, PnL (decimals as strings)."""
        portfolio = self.manager.portfolio
        marks = dict(self._marks()) if self._marks is not None else {}
        positions = {}
        for token, position in portfolio.positions.items():
            if position.is_flat and not position.unsettled:
                continue
            mark = marks.get(token)
            positions[token] = {
                "quantity": str(position.quantity),
                "avg_cost": None if position.avg_cost is None else str(position.avg_cost),
                "cost_basis": str(position.cost_basis),
                "realized_pnl": str(position.realized_pnl),
                "unrealized_pnl": None if mark is None else str(position.unrealized_pnl(mark)),
                "fees_paid": str(position.fees_paid),
                "unsettled_fills": len(position.unsettled),
            }
        unrealized = portfolio.marked_unrealized_pnl(marks)
        return {
            "trading_state": str(self.risk.state),
            "accepting_intents": self._accepting,
            "sending": self.manager.sending_blocked is None,
            "open_orders": [
                {
                    "client_order_id": o.client_order_id,
                    "order_id": o.order_id,
                    "strategy": o.strategy,
                    "token_id": o.token_id,
                    "side": str(o.side),
                    "price": str(o.price),
                    "size": str(o.size),
                    "filled": str(o.filled),
                    "status": str(o.status),
                    "order_type": str(o.order_type),
                }
                for o in self.manager.open_orders()
            ],
            "unresolved_orders": [o.client_order_id for o in self.manager.unresolved()],
            "positions": positions,
            "cash": str(portfolio.cash),
            "pnl": {
                "realized": str(portfolio.realized_pnl),
                "unrealized": str(unrealized),
                "fees": str(portfolio.fees_paid),
                "daily": str(self.risk.daily_pnl),
            },
            "residual_exposure": {t: str(s) for t, s in self._residual_shares.items()},
            "funds": self._funds_snapshot(),
        }


def _is_terminal(order: Order) -> bool:
    return order.is_terminal


#: Statuses in which an approved leg still counts at its whole cost: not sent yet, or sent with no answer.
_NOT_YET_OPEN = frozenset({OrderStatus.CREATED, OrderStatus.SUBMITTED})
