"""The order manager: client ids, write-ahead intents, protected venue calls, the order state machine, settlement.

One `OrderManager` per engine owns every order it sent (by client order id, and by the venue's order id, which is
computed locally before sending), the trades of those orders, and the `Portfolio` they change.

Sending one order (`submit`):

1. the venue prepares the order (`Venue.prepare`), computing its id locally (the EIP-712 digest: the live adapter
   signs here, the paper venue computes the same digest with the id function it is given), and it is CREATED;
2. the intent is written to the store (write-ahead) BEFORE anything is sent; a store failure means the order is
   not sent (REJECTED, `STORE_WRITE_FAILED`);
3. the call goes through the rate limiter (NORMAL priority, a bounded wait) and the circuit breaker, with a
   per-request timeout (`request_timeout_secs`, default 500 ms) set here, by the caller of the venue;
4. the reply drives the state machine (`trader.domain.orders`): accepted (LIVE, or matched on entry with the
   fills arriving as trades), rejected (a value with the venue's stable code), or UNKNOWN: a timeout, a
   disconnect, a 5xx or a garbled reply. An unknown outcome is resolved by ASKING THE VENUE FOR THAT ORDER ID
   (`Venue.lookup`; a venue without a by-id endpoint answers from its open orders and trades), a few times; the
   order is never sent again. Not there: the order is closed as CANCELED with reason `SUBMIT_NOT_FOUND` (a state
   that still accepts a late fill, so the position follows the venue); still unknown after every attempt: the
   order stays SUBMITTED and is counted as unresolved until an event or a reconciliation settles it. A submit
   cancelled while its request was on the wire (an emergency stop) is unresolved the same way.

Sending several (`submit_batch`, `POST /orders`, up to `MAX_BATCH_SIZE`; an arbitrage's legs): the same steps,
once for all: every order prepared, every intent written in one store transaction, one request through the rate
limiter and the breaker; then each order by its own result. A failure of the request is a failure of each order in
it (an unknown outcome: each is asked for by its id, concurrently).

What is NOT an unknown outcome: the breaker refusing (`CIRCUIT_OPEN`), the rate limiter's wait exceeding its bound
(`RATE_LIMITED`), a connection that could not be made (`VENUE_CONNECTION_ERROR`), and any 4xx answer (429
included): the venue did not take the order. 429 blocks the endpoint in the rate limiter (Retry-After or
backoff); 5xx counts against the breaker. Each kind is counted separately in `statistics()`.

Venue events (`handle_venue_event`) are keyed by the venue's order id: order updates become `OrderAccepted`,
`OrderCanceled`, `OrderKilled`; trades become fills (order and portfolio) on first sight, are settled when
CONFIRMED, and a FAILED trade reverses exactly its fill in the order and in the portfolio. A LIVE order that we had
closed as not found (a "ghost" that landed late) is cancelled at once; so is an order that lands while sending is
blocked, before we ever heard of it (its request was on the wire when an emergency stop cancelled its task, and it
reached the venue after the cancel-all).

Cancels (`cancel`, `cancel_all`) are HIGH priority in the rate limiter. `cancel_all(force=True)` (the emergency
stop) goes out even when the breaker is open: pulling orders matters more than sparing a sick venue.
"""

from __future__ import annotations

import enum
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import NoReturn, TypeVar

import structlog
import trio

from trader.domain.enums import OrderStatus, TradeStatus
from trader.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderFilled,
    OrderFillReversed,
    OrderKilled,
    OrderReason,
    OrderRejected,
    OrderSubmitted,
    TradeStatusChanged,
)
from trader.domain.intents import OrderIntent
from trader.domain.numbers import ZERO
from trader.domain.orders import Order, Trade
from trader.domain.positions import Portfolio
from trader.engine.breaker import BreakerStatistics, CircuitBreaker, CircuitOpenError
from trader.engine.rate_limit import RateLimiter, RateLimiterStatistics
from trader.errors import ConfigError, TraderError
from trader.integrations.store.base import (
    DuplicateKeyError,
    IntentRecord,
    IntentState,
    OrderRecord,
    Store,
    StoreError,
    TradeRecord,
    secs_to_ns,
)
from trader.venues.base import (
    MAX_BATCH_SIZE,
    CancelResult,
    SubmitRejected,
    SubmitResult,
    Venue,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
)
from trader.venues.errors import VenueConnectionError, VenueError, VenueProtocolError, VenueRequestError

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: Reason codes of this module (besides the domain's `OrderReason` and the venue's `VenueRejectCode`).
SUBMIT_NOT_FOUND = "SUBMIT_NOT_FOUND"  # the submit's outcome was unknown and the venue does not have the order
CIRCUIT_OPEN = "CIRCUIT_OPEN"
RATE_LIMITED = "RATE_LIMITED"
STORE_WRITE_FAILED = "STORE_WRITE_FAILED"
SENDING_BLOCKED = "SENDING_BLOCKED"  # emergency stop or drain: nothing new goes out
VENUE_CONNECTION_ERROR = "VENUE_CONNECTION_ERROR"
CANCEL_NOT_DONE = "VENUE_CANCEL_NOT_DONE"

_ORDER_ENDPOINT = "POST /order"
_BATCH_ENDPOINT = "POST /orders"
_CANCEL_ENDPOINT = "DELETE /order"
_CANCEL_ALL_ENDPOINT = "DELETE /cancel-all"
_LOOKUP_ENDPOINT = "GET /data/order"
_TRADES_ENDPOINT = "GET /data/trades"


class PrepareFailed(TraderError):
    """The order could not be built for an intent (e.g. the venue's market parameters were unavailable): nothing
    was written or sent."""


class DuplicateClientOrderId(TraderError):
    """An intent reused a client order id this manager already knows (a strategy bug): nothing was sent."""


class RateLimitWaitTooLong(TraderError):
    """The rate limiter would have held the call longer than its bound: the call was not made."""


class SendingBlocked(TraderError):
    """Sending was blocked (emergency stop, drain) while the submit waited for the rate limiter."""


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "ACCEPTED"  # the venue has the order (resting, matched, or already closed)
    REJECTED = "REJECTED"  # the venue refused it
    NOT_SENT = "NOT_SENT"  # it never left (store, breaker, rate limit, blocked, cancelled before sending)
    NOT_FOUND = "NOT_FOUND"  # outcome was unknown; the venue does not have it
    UNRESOLVED = "UNRESOLVED"  # outcome unknown, and the venue could not be asked


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerSettings:
    """- `request_timeout_secs` (default 0.5): the deadline of each venue request.
    - `max_rate_wait_secs` (default 1.0): the longest a submit or lookup waits for the rate limiter before it is
      given up (not sent); cancels are not bounded here (the caller's deadline applies).
    - `resolve_attempts` (default 3) and `resolve_retry_secs` (default 0.5): asking the venue about an order whose
      submit outcome is unknown.
    - `trades_lookback_secs` (default 3600): how far before an order's creation to ask for its trades.
    - `recent_events` (default 200): how many domain events `recent_events()` keeps.
    """

    request_timeout_secs: float = 0.5
    max_rate_wait_secs: float = 1.0
    resolve_attempts: int = 3
    resolve_retry_secs: float = 0.5
    trades_lookback_secs: float = 3600.0
    recent_events: int = 200

    def __post_init__(self) -> None:
        for name in ("request_timeout_secs", "max_rate_wait_secs", "resolve_retry_secs", "trades_lookback_secs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and value != float("inf")):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.request_timeout_secs <= 0:
            raise ConfigError("request_timeout_secs must be > 0")
        if self.resolve_attempts < 1:
            raise ConfigError("resolve_attempts must be >= 1")
        if self.recent_events < 1:
            raise ConfigError("recent_events must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderManagerStatistics:
    orders: int
    open_orders: int
    submitted: int  # orders that went out
    accepted: int
    rejected: dict[str, int]  # venue rejections, by code
    not_sent: dict[str, int]  # by reason
    ambiguous: int  # submits whose outcome was unknown
    resolved_found: int
    resolved_not_found: int
    unresolved: int  # still unknown now
    timeouts: int  # requests past their deadline (any endpoint)
    responses_429: int
    responses_5xx: int
    responses_4xx: int  # other 4xx answers
    venue_errors: int  # disconnects, protocol and connection errors
    breaker_refusals: int
    breaker_bypassed: int  # forced calls (emergency cancel-all) made while the breaker was open
    cancels_sent: int
    cancel_alls: int
    fills: int
    trades_confirmed: int
    trades_failed: int  # FAILED trades whose fill was reversed
    late_events: int  # events the order's state no longer accepts (counted, not applied)
    unknown_events: int  # events for order ids we do not know
    ghost_orders: int  # orders found live after we closed them as not found (cancelled at once)
    store_errors: int
    recovered: int  # pending intents found at start and resolved by id
    event_gaps: int  # times the venue's event subscription ended and was reopened
    breaker: BreakerStatistics
    rate_limiter: RateLimiterStatistics


def _is_unknown_outcome(exc: BaseException) -> bool:
    """True when a submit failed in a way that leaves the order's fate unknown (it may be at the venue)."""
    if isinstance(exc, trio.TooSlowError):
        return True
    if isinstance(exc, VenueRequestError):
        return exc.is_server_error
    return isinstance(exc, VenueError) and not isinstance(exc, VenueConnectionError)


class OrderManager:
    """See the module docstring. Not thread-safe: one Trio thread owns it."""

    def __init__(
        self,
        venue: Venue,
        store: Store,
        *,
        portfolio: Portfolio | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        settings: OrderManagerSettings | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.store = store
        self.settings = settings or OrderManagerSettings()
        self.portfolio = portfolio if portfolio is not None else Portfolio()
        self.breaker = breaker or CircuitBreaker(name="venue")
        self.limiter = limiter or RateLimiter()
        if not callable(getattr(venue, "prepare", None)):  # once, here: an untyped caller fails now, not per order
            raise ConfigError("OrderManager needs a venue that prepares its own orders (`Venue.prepare`)")
        self._wall_ns = wall_ns
        self._orders: dict[str, Order] = {}
        # The open orders (sent, not terminal), kept as states change: the risk gate asks for them on every intent,
        # and scanning every order ever placed grew with the session. `_rank` is each order's creation rank, so
        # views list open orders in creation order, as `orders()` does.
        self._open: dict[str, Order] = {}
        self._rank: dict[str, int] = {}
        self._by_venue_id: dict[str, str] = {}
        self._trades: dict[tuple[str, str], Trade] = {}
        self._fills: dict[tuple[str, str], OrderFilled] = {}
        self._waiters: dict[str, trio.Event] = {}
        self._unresolved: set[str] = set()
        self._sending_blocked: str | None = None
        self._cancel_reasons: dict[str, str] = {}
        self._venue_matched: dict[str, Decimal] = {}  # the most the venue said matched, per client order id
        self._cancel_all_reason: str | None = None
        self._listeners: list[Callable[[object], None]] = []
        self._recent: deque[object] = deque(maxlen=self.settings.recent_events)
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._not_sent_counts: Counter[str] = Counter()

    # -- views -------------------------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> Order:
        return self._orders[client_order_id]

    def get(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def orders(self) -> list[Order]:
        return list(self._orders.values())

    def open_orders(self) -> list[Order]:
        """Orders sent and not terminal, in creation order (from an index: costs what is open, not what was sent)."""
        rank = self._rank
        return sorted(self._open.values(), key=lambda o: rank[o.client_order_id])

    def awaiting_fills(self, client_order_id: str) -> Decimal:
        """Shares the venue reported matched (submit reply, order events) whose trades have not arrived yet."""
        order = self._orders[client_order_id]
        reported = self._venue_matched.get(client_order_id, ZERO)
        reversed_size = sum((f.size for f in order.reversed_fills), ZERO)
        return max(reported - order.filled - reversed_size, ZERO)

    def _note_matched(self, cid: str, size_matched: Decimal) -> None:
        if size_matched > self._venue_matched.get(cid, ZERO):
            self._venue_matched[cid] = size_matched

    def unresolved(self) -> list[Order]:
        return [self._orders[cid] for cid in sorted(self._unresolved)]

    def recent_events(self) -> list[object]:
        return list(self._recent)

    def publish(self, event: object) -> None:
        """Hand a domain event to the listeners and the recent-events ring (the execution service uses it too)."""
        self._emit(event)

    def add_listener(self, listener: Callable[[object], None]) -> None:
        """Called synchronously with every domain event (order events, trade status changes); must not block."""
        self._listeners.append(listener)

    @property
    def sending_blocked(self) -> str | None:
        """The reason nothing new may be sent (an emergency stop, a drain), or None."""
        return self._sending_blocked

    def block_sending(self, reason: str) -> None:
        """From now on, `submit` sends nothing (a submit already past this check may still be on the wire)."""
        self._sending_blocked = reason

    def allow_sending(self) -> None:
        self._sending_blocked = None

    def now(self) -> float:
        """Wall-clock epoch seconds, the timestamps of domain events."""
        return self._wall_ns() / 1e9

    # -- sending ----------------------------------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent, *, group_id: str | None = None) -> Order:
        """Persist, send and resolve one order (`POST /order`); returns its state once the venue's answer (or its
        absence) is known.

        Raises `DuplicateClientOrderId` if the client order id was used before, and `PrepareFailed` if the order could
        not be built: in both cases nothing is written or sent.
        """
        (order,) = await self._submit((intent,), group_id)
        return order

    async def submit_batch(self, intents: Sequence[OrderIntent], *, group_id: str | None = None) -> list[Order]:
        """`submit` for up to `MAX_BATCH_SIZE` orders in ONE request (`POST /orders`): every order is prepared, every
        intent written in one store transaction, the request passes the rate limiter and the breaker once, and each
        order is then resolved by its own result (an unknown outcome of the request leaves each order's unknown, and
        each is asked for by its id). One order's refusal does not refuse the others.

        Raises `DuplicateClientOrderId` or `PrepareFailed` if any order reuses a client order id or cannot be built,
        and `ValueError` for a batch the venue would refuse (empty, too large, post-only mixed with not): in every
        case before anything is written or sent.
        """
        if not 1 <= len(intents) <= MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} orders, got {len(intents)}")
        if len({i.post_only for i in intents}) != 1:
            raise ValueError("a batch must be all post-only or all not post-only (one postOnly per request)")
        return await self._submit(intents, group_id)

    async def _submit(self, intents: Sequence[OrderIntent], group_id: str | None) -> list[Order]:
        cids = [intent.client_order_id for intent in intents]
        for n, cid in enumerate(cids):
            if cid in self._orders or cid in cids[:n]:
                raise DuplicateClientOrderId(f"client order id {cid!r} was already used")
        orders = await self._prepare(intents)
        for order in orders:
            self._put(order)
            self._by_venue_id[order.order_id] = order.client_order_id
        outcomes: dict[str, SubmitOutcome] = {}
        try:
            await self._write_and_send(orders, group_id, outcomes)
        finally:
            with trio.move_on_after(self.settings.request_timeout_secs, shield=True):
                for cid in cids:
                    if self._orders[cid].status is OrderStatus.CREATED:
                        # Cancelled before it left: close it and say so in the store, even while being cancelled.
                        await self._not_sent(cid, OrderReason.NEVER_SENT, canceled=True)
                    elif cid not in outcomes and self._orders[cid].status is OrderStatus.SUBMITTED:
                        # Cancelled while the request was on its way (an emergency stop): the venue may or may not
                        # have the order. It is asked for by id (reconciliation), like any unknown outcome.
                        self._unresolved.add(cid)
        for cid in cids:
            log.debug(
                "order_submit_done", client_order_id=cid, outcome=outcomes.get(cid), status=self._orders[cid].status
            )
        return [self._orders[cid] for cid in cids]

    async def _prepare(self, intents: Sequence[OrderIntent]) -> list[Order]:
        """The CREATED orders with their venue order ids, computed before anything is written or sent (one deadline
        for the whole request: preparing is signing, plus a venue lookup for a market it was not told about)."""
        now = self.now()
        venue = self.venue
        orders: list[Order] = []
        intent = intents[0]
        try:
            with trio.fail_after(self.settings.request_timeout_secs):
                for intent in intents:
                    order = await venue.prepare(intent, ts=now)
                    if order.client_order_id != intent.client_order_id:
                        raise PrepareFailed(
                            f"venue prepared {order.client_order_id!r} for intent {intent.client_order_id!r}"
                        )
                    orders.append(order)
        except (VenueError, trio.TooSlowError) as exc:
            self._not_sent_counts["PREPARE_FAILED"] += 1
            log.error("order_prepare_failed", client_order_id=intent.client_order_id, error=repr(exc))
            raise PrepareFailed(f"order {intent.client_order_id} could not be prepared: {exc!r}") from exc
        return orders

    async def _write_and_send(
        self, orders: Sequence[Order], group_id: str | None, outcomes: dict[str, SubmitOutcome]
    ) -> None:
        """Write the intents, send the orders in one request (`POST /order` for one, `POST /orders` for more), and
        resolve each: its outcome goes into `outcomes` as soon as it is known."""
        cids = [order.client_order_id for order in orders]

        async def not_sent(reason: str, *, write_intent: bool = True) -> None:
            for cid in cids:
                await self._not_sent(cid, reason, write_intent=write_intent)
                outcomes[cid] = SubmitOutcome.NOT_SENT

        try:
            await self.store.record_intents([self._intent_record(order, group_id) for order in orders])
        except (StoreError, DuplicateKeyError) as exc:
            self._counts["store_errors"] += 1
            log.error("intent_write_failed", client_order_ids=cids, error=str(exc))
            await not_sent(STORE_WRITE_FAILED, write_intent=False)
            return
        if self._sending_blocked is not None:
            await not_sent(SENDING_BLOCKED)
            return
        if len(orders) == 1:
            endpoint, call = _ORDER_ENDPOINT, partial(self._submit_one, cids[0])
        else:
            endpoint, call = _BATCH_ENDPOINT, partial(self._submit_many, cids)
        try:
            results = await self._call(
                endpoint,
                call,
                before_send=partial(self._mark_sent, cids),
                check_blocked=True,
                max_wait_secs=self.settings.max_rate_wait_secs,
            )
        except CircuitOpenError:
            await not_sent(CIRCUIT_OPEN)
            return
        except RateLimitWaitTooLong:
            await not_sent(RATE_LIMITED)
            return
        except SendingBlocked:
            await not_sent(SENDING_BLOCKED)
            return
        except (trio.TooSlowError, VenueError) as exc:
            if _is_unknown_outcome(exc):
                self._counts["ambiguous"] += len(cids)
                self._unresolved.update(cids)
                for order in orders:
                    log.warning(
                        "submit_outcome_unknown",
                        client_order_id=order.client_order_id,
                        order_id=order.order_id,
                        error=repr(exc),
                    )
                async with trio.open_nursery() as nursery:
                    for cid in cids:
                        nursery.start_soon(self._resolve_into, cid, outcomes)
                return
            reason = exc.code.value if isinstance(exc, VenueRequestError) else VENUE_CONNECTION_ERROR
            for cid in cids:
                await self._refused(cid, reason, str(exc), sent=not isinstance(exc, VenueConnectionError))
                outcomes[cid] = SubmitOutcome.REJECTED
            return
        for cid, result in zip(cids, results, strict=True):
            outcomes[cid] = await self._on_submit_result(cid, result)

    async def _submit_one(self, cid: str) -> list[SubmitResult]:
        return [await self.venue.submit(self._orders[cid])]

    async def _submit_many(self, cids: Sequence[str]) -> list[SubmitResult]:
        results = await self.venue.submit_batch([self._orders[cid] for cid in cids])
        if len(results) != len(cids):
            raise VenueProtocolError(f"{_BATCH_ENDPOINT}: {len(results)} results for {len(cids)} orders")
        return results

    async def _resolve_into(self, cid: str, outcomes: dict[str, SubmitOutcome]) -> None:
        outcomes[cid] = await self._resolve_unknown(cid)

    def _mark_sent(self, cids: Sequence[str]) -> None:
        now = self.now()
        for cid in cids:
            self._counts["submitted"] += 1
            self._apply(OrderSubmitted(client_order_id=cid, ts=now))

    async def _on_submit_result(self, cid: str, result: SubmitResult) -> SubmitOutcome:
        if isinstance(result, SubmitRejected):
            await self._refused(cid, result.reason.value, result.message, sent=True)
            return SubmitOutcome.REJECTED
        self._counts["accepted"] += 1
        self._unresolved.discard(cid)
        order = self._orders[cid]
        self._note_matched(cid, result.filled_size)
        self._apply_venue_status(order, result.status, result.filled_size)
        await self._resolve_intent(cid, IntentState.ACKED)
        await self._save_order(cid)
        return SubmitOutcome.ACCEPTED

    async def _refused(self, cid: str, reason: str, message: str, *, sent: bool) -> None:
        self._unresolved.discard(cid)
        self._rejected[reason] += 1
        log.info("order_rejected", client_order_id=cid, reason=reason, message=message[:200])
        self._apply(OrderRejected(client_order_id=cid, reason=reason, ts=self.now(), message=message[:200]))
        await self._resolve_intent(cid, IntentState.REJECTED if sent else IntentState.NOT_SENT, reason=reason)
        await self._save_order(cid)

    async def _not_sent(self, cid: str, reason: str, *, write_intent: bool = True, canceled: bool = False) -> None:
        self._not_sent_counts[reason] += 1
        log.info("order_not_sent", client_order_id=cid, reason=reason)
        event: OrderEvent = (
            OrderCanceled(client_order_id=cid, ts=self.now(), reason=reason)
            if canceled
            else OrderRejected(client_order_id=cid, reason=reason, ts=self.now())
        )
        self._apply(event)
        if write_intent:
            await self._resolve_intent(cid, IntentState.NOT_SENT, reason=reason)
            await self._save_order(cid)

    # -- resolving an unknown outcome by order id ------------------------------------------------------------------

    async def _resolve_unknown(self, cid: str) -> SubmitOutcome:
        for attempt in range(self.settings.resolve_attempts):
            if attempt:
                await trio.sleep(self.settings.resolve_retry_secs)
            if self._orders[cid].status is not OrderStatus.SUBMITTED:
                # Venue events about this order arrived (before or after the timeout): the venue has it.
                self._unresolved.discard(cid)
                self._counts["resolved_found"] += 1
                await self._resolve_intent(cid, IntentState.ACKED)
                return SubmitOutcome.ACCEPTED
            try:
                found = await self._lookup(self._orders[cid].order_id)
            except (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError) as exc:
                log.warning("order_lookup_failed", client_order_id=cid, attempt=attempt + 1, error=repr(exc))
                continue
            if cid not in self._unresolved:  # an event settled it while we asked
                return SubmitOutcome.ACCEPTED
            self._unresolved.discard(cid)
            if found is None:
                self._counts["resolved_not_found"] += 1
                log.warning("submit_resolved_not_found", client_order_id=cid)
                self._apply(OrderCanceled(client_order_id=cid, ts=self.now(), reason=SUBMIT_NOT_FOUND))
                await self._resolve_intent(cid, IntentState.REJECTED, reason=SUBMIT_NOT_FOUND)
                await self._save_order(cid)
                return SubmitOutcome.NOT_FOUND
            self._counts["resolved_found"] += 1
            log.info("submit_resolved_found", client_order_id=cid, venue_status=found.status)
            await self._apply_found(cid, found)
            await self._resolve_intent(cid, IntentState.ACKED)
            return SubmitOutcome.ACCEPTED
        log.error("submit_unresolved", client_order_id=cid, order_id=self._orders[cid].order_id)
        return SubmitOutcome.UNRESOLVED

    async def reconcile(self, client_order_id: str) -> Order:
        """Ask the venue about one order by its id and apply what it says (state, and every trade of it).

        Lookup errors propagate (`VenueError`, `trio.TooSlowError`, `CircuitOpenError`, `RateLimitWaitTooLong`).
        """
        order = self._orders[client_order_id]
        was_unresolved = client_order_id in self._unresolved
        found = await self._lookup(order.order_id)
        if found is None:
            if order.status is OrderStatus.SUBMITTED:
                self._unresolved.discard(client_order_id)
                self._apply(OrderCanceled(client_order_id=client_order_id, ts=self.now(), reason=SUBMIT_NOT_FOUND))
                await self._save_order(client_order_id)
                if was_unresolved:
                    self._counts["resolved_not_found"] += 1
                    await self._resolve_intent(client_order_id, IntentState.REJECTED, reason=SUBMIT_NOT_FOUND)
        else:
            await self._apply_found(client_order_id, found)
            if was_unresolved:
                self._counts["resolved_found"] += 1
                await self._resolve_intent(client_order_id, IntentState.ACKED)
        return self._orders[client_order_id]

    def needs_reconcile(self) -> list[Order]:
        """Orders to ask the venue about: outcome unknown, or fills reported by the venue that never arrived."""
        # Only orders unresolved or with venue-reported fills can qualify: not a scan of every order ever sent. An
        # order whose reported fills all arrived is forgotten here (its awaited fills are 0 with or without the entry;
        # a later report adds it back), so what this looks at stays what is outstanding, not the session's history.
        for cid in [cid for cid in self._venue_matched if not self.awaiting_fills(cid)]:
            del self._venue_matched[cid]
        candidates = sorted(self._unresolved.union(self._venue_matched), key=self._rank.__getitem__)
        orders = [self._orders[cid] for cid in candidates]
        return [
            o
            for o in orders
            if o.client_order_id in self._unresolved or (self.awaiting_fills(o.client_order_id) and o.filled < o.size)
        ]

    def note_event_gap(self) -> None:
        self._counts["event_gaps"] += 1

    async def resync_open_orders(self) -> None:
        """Ask the venue about every open order by id (after a gap in its events); failures are logged."""
        for order in self.open_orders():
            try:
                await self.reconcile(order.client_order_id)
            except (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError) as exc:
                log.warning("resync_failed", client_order_id=order.client_order_id, error=repr(exc))

    async def recover_pending(self) -> list[Order]:
        """At start: intents written but never resolved (a crash between the write and the answer). Each is rebuilt
        as a SUBMITTED order and resolved by asking the venue for its id; nothing is sent again."""
        recovered: list[Order] = []
        for record in await self.store.load_pending_intents():
            cid = record.client_order_id
            if cid in self._orders:
                continue
            if record.order_id is None:  # never signed, so never sent
                await self._store_call(
                    partial(
                        self.store.resolve_intent,
                        cid,
                        IntentState.NOT_SENT,
                        ts_ns=self._wall_ns(),
                        reason=OrderReason.NEVER_SENT,
                    )
                )
                continue
            order = Order.from_intent(record.to_intent(), order_id=record.order_id, ts=record.created_at_ns / 1e9)
            self._put(order)
            self._by_venue_id[order.order_id] = cid
            self._apply(OrderSubmitted(client_order_id=cid, ts=self.now()))
            self._unresolved.add(cid)
            self._counts["recovered"] += 1
            log.warning("recovering_pending_intent", client_order_id=cid, order_id=order.order_id)
            await self._resolve_unknown(cid)
            recovered.append(self._orders[cid])
        return recovered

    async def _apply_found(self, cid: str, found: VenueOrder) -> None:
        order = self._orders[cid]
        if found.size_matched > order.filled:
            await self._sync_trades(order)
        await self._on_venue_order(found)
        self._unresolved.discard(cid)

    async def _lookup(self, order_id: str) -> VenueOrder | None:
        return await self._call(
            _LOOKUP_ENDPOINT, partial(self.venue.lookup, order_id), max_wait_secs=self.settings.max_rate_wait_secs
        )

    async def _fetch_trades(self, order: Order) -> list[VenueTrade]:
        since = order.created_ts - self.settings.trades_lookback_secs
        return await self._call(
            _TRADES_ENDPOINT, partial(self.venue.trades, since_ts=since), max_wait_secs=self.settings.max_rate_wait_secs
        )

    async def _sync_trades(self, order: Order) -> None:
        for trade in await self._fetch_trades(order):
            if trade.order_id == order.order_id:
                await self._on_trade(trade)

    # -- cancels ------------------------------------------------------------------------------------------------

    async def cancel(self, client_order_id: str, *, reason: str = OrderReason.CANCELED_BY_USER) -> Order:
        """Ask the venue to cancel one order (HIGH priority). Errors propagate; the order stays PENDING_CANCEL."""
        order = self._orders[client_order_id]
        if order.is_terminal:
            return order
        self._apply(OrderCancelRequested(client_order_id=client_order_id, ts=self.now()))
        self._cancel_reasons[client_order_id] = reason
        self._counts["cancels_sent"] += 1
        result = await self._call(_CANCEL_ENDPOINT, partial(self.venue.cancel, order.order_id))
        await self._on_cancel_result(result, reason)
        if order.order_id in result.not_canceled and self._orders[client_order_id].status is OrderStatus.PENDING_CANCEL:
            self._apply(
                OrderCancelRejected(
                    client_order_id=client_order_id,
                    reason=CANCEL_NOT_DONE,
                    ts=self.now(),
                    message=result.not_canceled[order.order_id][:200],
                )
            )
        await self._save_order(client_order_id)
        return self._orders[client_order_id]

    async def cancel_all(self, *, reason: str, force: bool = False) -> CancelResult:
        """Cancel every open order at the venue (HIGH priority; `force`: even with the breaker open)."""
        self._counts["cancel_alls"] += 1
        self._cancel_all_reason = reason
        try:
            result = await self._call(_CANCEL_ALL_ENDPOINT, partial(self.venue.cancel_all, reason=reason), force=force)
        finally:
            self._cancel_all_reason = None
        if result.canceled:
            self.limiter.charge(_CANCEL_ALL_ENDPOINT, len(result.canceled), trio.current_time())
        await self._on_cancel_result(result, reason)
        return result

    async def _on_cancel_result(self, result: CancelResult, reason: str) -> None:
        for order_id in result.canceled:
            cid = self._by_venue_id.get(order_id)
            if cid is None:
                self._counts["unknown_events"] += 1
                continue
            self._unresolved.discard(cid)
            self._apply(OrderCanceled(client_order_id=cid, ts=self.now(), reason=reason))
            await self._save_order(cid)

    # -- venue events -----------------------------------------------------------------------------------------

    async def handle_venue_event(self, event: VenueEvent) -> None:
        """Apply one venue event (order update or trade) and persist what changed."""
        if isinstance(event, VenueTrade):
            await self._on_trade(event)
        else:
            await self._on_venue_order(event)

    async def _on_venue_order(self, event: VenueOrder) -> None:
        cid = self._by_venue_id.get(event.order_id)
        if cid is None:
            self._counts["unknown_events"] += 1
            log.warning("venue_order_unknown", order_id=event.order_id, status=event.status)
            return
        order = self._orders[cid]
        self._unresolved.discard(cid)
        if (
            event.status is VenueOrderStatus.LIVE
            and order.status is OrderStatus.CANCELED
            and order.reason == SUBMIT_NOT_FOUND
        ):
            self._counts["ghost_orders"] += 1
            log.error("ghost_order_live", client_order_id=cid, order_id=event.order_id)
            try:
                await self._call(_CANCEL_ENDPOINT, partial(self.venue.cancel, event.order_id))
            except (CircuitOpenError, VenueError, trio.TooSlowError) as exc:
                log.error("ghost_order_cancel_failed", client_order_id=cid, error=repr(exc))
            return
        blocked = self._sending_blocked
        landed = event.status is VenueOrderStatus.LIVE and order.status is OrderStatus.SUBMITTED
        self._note_matched(cid, event.size_matched)
        self._apply_venue_status(order, event.status, event.size_matched)
        await self._save_order(cid)
        if landed and blocked is not None:
            # Its request was on the wire when sending was blocked (an emergency stop cancelled its task) and it
            # reached the venue after the cancel-all: pull it now.
            log.error("order_landed_while_blocked", client_order_id=cid, order_id=event.order_id, blocked=blocked)
            try:
                await self.cancel(cid, reason=blocked)
            except (CircuitOpenError, VenueError, trio.TooSlowError) as exc:
                log.error("landed_order_cancel_failed", client_order_id=cid, error=repr(exc))

    def _apply_venue_status(self, order: Order, status: VenueOrderStatus, size_matched: Decimal) -> None:
        cid, ts = order.client_order_id, self.now()
        if status in (VenueOrderStatus.LIVE, VenueOrderStatus.DELAYED, VenueOrderStatus.UNMATCHED):
            self._apply(OrderAccepted(client_order_id=cid, ts=ts))
        elif status is VenueOrderStatus.CANCELED:
            if not order.order_type.rests:
                matched = max(size_matched, order.filled)
                kill = OrderReason.FAK_REMAINDER_CANCELED if matched else OrderReason.FOK_NOT_FILLED
                self._apply(OrderKilled(client_order_id=cid, ts=ts, reason=kill))
            else:
                reason = self._cancel_reasons.get(cid) or self._cancel_all_reason or OrderReason.CANCELED_BY_VENUE
                self._apply(OrderCanceled(client_order_id=cid, ts=ts, reason=reason))
        elif status is VenueOrderStatus.MATCHED and not order.order_type.rests and ZERO < size_matched < order.size:
            # A FAK matched in part: its remainder is gone (the fills arrive as trades).
            self._apply(OrderKilled(client_order_id=cid, ts=ts, reason=OrderReason.FAK_REMAINDER_CANCELED))
        # MATCHED in full: the fills arrive as trades and complete the order.

    async def _on_trade(self, event: VenueTrade) -> None:
        cid = self._by_venue_id.get(event.order_id)
        if cid is None:
            self._counts["unknown_events"] += 1
            log.warning("venue_trade_unknown_order", trade_id=event.trade_id, order_id=event.order_id)
            return
        self._unresolved.discard(cid)
        key = (event.trade_id, event.order_id)
        known = self._trades.get(key)
        if known is None:
            await self._first_sight(cid, key, event)
            return
        if event.status is known.status:
            return
        if not known.can_transition(event.status):
            self._counts["late_events"] += 1
            log.warning("trade_status_out_of_order", trade_id=event.trade_id, known=known.status, got=event.status)
            return
        trade = known.apply_status(event.status, event.ts)
        self._trades[key] = trade
        self._emit_trade_status(trade, known.status)
        if event.status is TradeStatus.FAILED:
            self._reverse(cid, key, trade)
        elif event.status is TradeStatus.CONFIRMED:
            self._counts["trades_confirmed"] += 1
            self.portfolio.settle(trade.token_id, trade.trade_id)
        await self._save_trade(trade)
        await self._save_order(cid)
        await self._save_position(trade.token_id)

    async def _first_sight(self, cid: str, key: tuple[str, str], event: VenueTrade) -> None:
        order = self._orders[cid]
        trade = Trade(
            trade_id=event.trade_id,
            client_order_id=cid,
            order_id=event.order_id,
            token_id=event.token_id,
            side=event.side,
            price=event.price,
            size=event.size,
            liquidity=event.liquidity,
            match_ts=event.match_ts,
            fee=event.fee,
            fee_shares=event.fee_shares,
        )
        if event.status is TradeStatus.FAILED:
            # Failed before we ever applied it: record it, change nothing.
            self._trades[key] = trade.apply_status(TradeStatus.FAILED, event.ts)
            await self._save_trade(self._trades[key])
            return
        fill = trade.fill_event(fill_id=f"{event.trade_id}:{event.order_id}")
        self._fills[key] = fill
        self._counts["fills"] += 1
        if order.can_apply(fill):
            self._apply(fill)
        else:
            # The venue says we traded: the position must follow it even if our order record cannot.
            self._counts["late_events"] += 1
            log.error("fill_not_applicable", client_order_id=cid, status=order.status, trade_id=event.trade_id)
        self.portfolio.apply_fill(fill)
        if event.status is not TradeStatus.MATCHED:
            trade = trade.apply_status(event.status, event.ts)
            if event.status is TradeStatus.CONFIRMED:
                self._counts["trades_confirmed"] += 1
                self.portfolio.settle(trade.token_id, trade.trade_id)
        self._trades[key] = trade
        log.info(
            "order_filled",
            client_order_id=cid,
            trade_id=event.trade_id,
            price=str(event.price),
            size=str(event.size),
            liquidity=event.liquidity,
        )
        await self._save_trade(trade)
        await self._save_order(cid)
        await self._save_position(trade.token_id)

    def _reverse(self, cid: str, key: tuple[str, str], trade: Trade) -> None:
        self._counts["trades_failed"] += 1
        log.error("trade_failed_reversed", client_order_id=cid, trade_id=trade.trade_id, size=str(trade.size))
        reversal = OrderFillReversed(client_order_id=cid, trade_id=trade.trade_id, ts=self.now())
        if self._orders[cid].can_apply(reversal) and any(f.trade_id == trade.trade_id for f in self._orders[cid].fills):
            self._apply(reversal)
        fill = self._fills.get(key)
        position = self.portfolio.position(trade.token_id)
        if fill is not None and any(e.key == fill.key for e in position.unsettled):
            self.portfolio.reverse_fill(fill)

    # -- waiting ----------------------------------------------------------------------------------------------

    async def wait_until(self, client_order_id: str, predicate: Callable[[Order], bool]) -> Order:
        """Wait until the order satisfies `predicate` (checked now and after each change); the caller sets the
        deadline."""
        while True:
            order = self._orders[client_order_id]
            if predicate(order):
                return order
            event = self._waiters.get(client_order_id)
            if event is None:
                event = self._waiters[client_order_id] = trio.Event()
            await event.wait()

    # -- the state machine ------------------------------------------------------------------------------------

    def _apply(self, event: OrderEvent) -> Order | None:
        cid = event.client_order_id
        order = self._orders[cid]
        if not order.can_apply(event):
            self._counts["late_events"] += 1
            # not `event=`: structlog's first positional argument is the event name
            log.info(
                "order_event_not_applicable", client_order_id=cid, status=order.status, event_type=type(event).__name__
            )
            return None
        updated = order.apply(event)
        if updated is order:
            return order
        self._put(updated)
        waiter = self._waiters.pop(cid, None)
        if waiter is not None:
            waiter.set()
        self._emit(event)
        return updated

    def _put(self, order: Order) -> None:
        """The one place an order's state is stored: keeps the open-orders index in step."""
        cid = order.client_order_id
        if cid not in self._rank:
            self._rank[cid] = len(self._rank)
        self._orders[cid] = order
        if order.is_open:
            self._open[cid] = order
        else:
            self._open.pop(cid, None)

    def _emit(self, event: object) -> None:
        self._recent.append(event)
        for listener in self._listeners:
            listener(event)

    def _emit_trade_status(self, trade: Trade, previous: TradeStatus) -> None:
        self._emit(TradeStatusChanged(trade_id=trade.trade_id, previous=previous, status=trade.status, ts=self.now()))

    # -- protected venue calls ----------------------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        fn: Callable[[], Awaitable[T]],
        *,
        before_send: Callable[[], None] | None = None,
        check_blocked: bool = False,
        force: bool = False,
        max_wait_secs: float | None = None,
    ) -> T:
        """One venue request through the rate limiter and the breaker, with the per-request deadline.

        The rate limiter's wait comes first (bounded by `max_wait_secs`), then (`check_blocked`) the sending gate,
        then the breaker; `before_send` runs once the breaker let the call through, right before it is made.
        """
        timeout = self.settings.request_timeout_secs
        if not await self.limiter.acquire(endpoint, max_wait_secs=max_wait_secs):
            raise RateLimitWaitTooLong(f"{endpoint}: rate limiter wait above {max_wait_secs}s")
        if check_blocked and self._sending_blocked is not None:
            raise SendingBlocked(self._sending_blocked)

        async def attempt() -> T:
            if before_send is not None:
                before_send()
            with trio.fail_after(timeout):
                return await fn()

        try:
            try:
                result = await self.breaker.call(attempt)
            except CircuitOpenError:
                if not force:
                    self._counts["breaker_refusals"] += 1
                    raise
                self._counts["breaker_bypassed"] += 1
                result = await attempt()
        except VenueRequestError as exc:
            if exc.is_throttled:
                self._counts["responses_429"] += 1
                self.limiter.record_429(endpoint, trio.current_time(), exc.retry_after_secs)
            else:
                self._counts["responses_5xx" if exc.is_server_error else "responses_4xx"] += 1
                self.limiter.record_success(endpoint)
            raise
        except trio.TooSlowError:
            self._counts["timeouts"] += 1
            raise
        except VenueError:
            self._counts["venue_errors"] += 1
            raise
        self.limiter.record_success(endpoint)
        return result

    # -- persistence (failures are counted and logged; trading goes on) -----------------------------------------

    def _intent_record(self, order: Order, group_id: str | None) -> IntentRecord:
        return IntentRecord(
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            strategy=order.strategy,
            condition_id=order.condition_id,
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            size=order.size,
            order_type=order.order_type,
            post_only=order.post_only,
            expiration=order.expiration,
            group_id=group_id,
            created_at_ns=secs_to_ns(order.created_ts),
        )

    async def _resolve_intent(self, cid: str, state: IntentState, *, reason: str | None = None) -> None:
        await self._store_call(
            partial(
                self.store.resolve_intent,
                cid,
                state,
                ts_ns=self._wall_ns(),
                order_id=self._orders[cid].order_id,
                reason=reason,
            )
        )

    async def _save_order(self, cid: str) -> None:
        order = self._orders[cid]
        await self._store_call(partial(self.store.record_order, OrderRecord.of(order), reason=order.reason))

    async def _save_trade(self, trade: Trade) -> None:
        await self._store_call(partial(self.store.record_trade, TradeRecord.of(trade)))

    async def _save_position(self, token_id: str) -> None:
        position = self.portfolio.position(token_id)
        await self._store_call(partial(self.store.record_position, position, ts_ns=self._wall_ns()))

    async def _store_call(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except StoreError as exc:
            self._counts["store_errors"] += 1
            log.error("store_write_failed", error=str(exc))

    # -- introspection ----------------------------------------------------------------------------------------------

    def statistics(self) -> OrderManagerStatistics:
        c = self._counts
        return OrderManagerStatistics(
            orders=len(self._orders),
            open_orders=len(self._open),
            submitted=c["submitted"],
            accepted=c["accepted"],
            rejected=dict(self._rejected),
            not_sent=dict(self._not_sent_counts),
            ambiguous=c["ambiguous"],
            resolved_found=c["resolved_found"],
            resolved_not_found=c["resolved_not_found"],
            unresolved=len(self._unresolved),
            timeouts=c["timeouts"],
            responses_429=c["responses_429"],
            responses_5xx=c["responses_5xx"],
            responses_4xx=c["responses_4xx"],
            venue_errors=c["venue_errors"],
            breaker_refusals=c["breaker_refusals"],
            breaker_bypassed=c["breaker_bypassed"],
            cancels_sent=c["cancels_sent"],
            cancel_alls=c["cancel_alls"],
            fills=c["fills"],
            trades_confirmed=c["trades_confirmed"],
            trades_failed=c["trades_failed"],
            late_events=c["late_events"],
            unknown_events=c["unknown_events"],
            ghost_orders=c["ghost_orders"],
            store_errors=c["store_errors"],
            recovered=c["recovered"],
            event_gaps=c["event_gaps"],
            breaker=self.breaker.statistics(),
            rate_limiter=self.limiter.statistics(),
        )

    def positions(self) -> dict[str, Decimal]:
        """Token -> shares held, as the portfolio has it (for comparing with the venue's)."""
        return {t: p.quantity for t, p in self.portfolio.positions.items() if p.quantity}


async def pump_venue_events(
    manager: OrderManager,
    *,
    reopen_delay_secs: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Subscribe to the venue's events and apply each to `manager`, until cancelled.

    If the venue closes the subscription, it is reopened after `reopen_delay_secs`, and every open order is then
    asked for by id: events may have been missed in between (counted in `statistics().event_gaps`).
    """
    started = False
    while True:
        async with manager.venue.open_events() as events:
            if not started:
                started = True
                task_status.started()
            else:
                await manager.resync_open_orders()
            async for event in events:
                await manager.handle_venue_event(event)
        manager.note_event_gap()
        log.warning("venue_events_closed", reopen_in_secs=reopen_delay_secs)
        await trio.sleep(reopen_delay_secs)
