"""The submit path: prepare, write ahead, send, and resolve each order by the venue's answer (or its absence).

Sending one order (`OrderManager.submit`):

1. the venue prepares the order (`Venue.prepare`), computing its id locally (the EIP-712 digest: the live adapter
   signs here, the paper venue computes the same digest with the id function it is given), and it is CREATED; an
   order that reuses a client order id (`DuplicateClientOrderId`) is neither written nor sent; one that cannot be
   built is not sent (`PrepareFailed`, with a reason code: the venue's refusal of its terms, `PrepareRefused`'s code
   such as `PRICE_OFF_TICK`, else `PREPARE_FAILED`, whatever preparing raised): its intent is recorded NOT_SENT
   with that reason (no order id), and the caller's task goes on;
2. the intent is written to the store (write-ahead) BEFORE anything is sent; a store failure means the order is
   not sent (REJECTED, `STORE_WRITE_FAILED`);
3. the call goes through the `VenueGuard` (`trader.engine.order_manager.guard`): the rate limiter (NORMAL priority, a
   bounded wait), the sending gate, the circuit breaker, and the per-request deadline; an order the guard stops is
   not sent (`RATE_LIMITED`, `SENDING_BLOCKED`, `CIRCUIT_OPEN`); it is SUBMITTED right before the request goes out;
4. the reply drives the state machine (`trader.domain.orders`): accepted (LIVE, or matched on entry with the
   fills arriving as trades), rejected (a value with the venue's stable code; a connection that could not be made
   is `VENUE_CONNECTION_ERROR`, and any 4xx is rejected with its code), or UNKNOWN: a timeout, a disconnect, a 5xx
   or a garbled reply. UNKNOWN is a state, not a verdict: the order stays so until the venue shows it or its absence,
   asked by that order id on a backoff schedule (`trader.engine.order_manager.resolve`); the order is never sent
   again. A submit cancelled while its request was on the wire (an emergency stop) is UNKNOWN the same way; one
   cancelled before it left is closed as never sent.

Trading restrictions (`trader.engine.restrictions`): an order the venue would refuse now (a restart, the post-only
window for an order that is not post-only, cancel-only, trading disabled, a buy while closed-only) is not sent:
written, then closed as not sent with the restriction's code (`RESTRICTED_*`), like `SENDING_BLOCKED`. An order the
venue refused with 425 is sent again under the same order id (`VenueGuard.call_retrying`, for at most
`restrictions.order_retry_secs`); if it still cannot go, it is REJECTED with `VENUE_ENGINE_RESTARTING`, the venue's
verdict. A refusal that names a restriction (the post-only window, cancel-only, trading disabled, closed-only) is
REJECTED with that code and tells the restrictions, never "would cross" or an unknown outcome.

Sending several (`OrderManager.submit_batch`, `POST /orders`, up to `MAX_BATCH_SIZE`; an arbitrage's legs): the same
steps, once for all: every order prepared, every intent written in one store transaction, one request through the
guard; then each order by its own result. A failure of the request is a failure of each order in it (an unknown
outcome: each is asked for by its id, concurrently).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus
from trader.domain.events import OrderCanceled, OrderEvent, OrderReason, OrderRejected, OrderSubmitted
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager.cancels import Canceller
from trader.engine.order_manager.events import VenueEventHandler
from trader.engine.order_manager.guard import (
    BATCH_ENDPOINT,
    ORDER_ENDPOINT,
    RateLimitWaitTooLong,
    SendingBlocked,
    VenueGuard,
    VenueRestricted,
    is_unknown_outcome,
    unknown_cause,
)
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.reasons import (
    CIRCUIT_OPEN,
    PREPARE_FAILED,
    RATE_LIMITED,
    SENDING_BLOCKED,
    STORE_WRITE_FAILED,
    VENUE_CONNECTION_ERROR,
    SubmitOutcome,
)
from trader.engine.order_manager.resolve import Resolver
from trader.engine.order_manager.settings import OrderManagerSettings
from trader.errors import TraderError
from trader.integrations.store.base import DuplicateKeyError, IntentRecord, IntentState, StoreError
from trader.venues.base import MAX_BATCH_SIZE, PrepareRefused, SubmitAccepted, SubmitRejected, SubmitResult, Venue
from trader.venues.errors import (
    VenueConnectionError,
    VenueError,
    VenueProtocolError,
    VenueRequestError,
    restriction_of,
)

__all__ = ["DuplicateClientOrderId", "PrepareFailed", "Submitter", "check_batch_intents"]

log = structlog.get_logger(__name__)

#: Why an order is UNKNOWN when its submit was cancelled (an emergency stop) while the request was on the wire.
CANCELLED_IN_FLIGHT = "CANCELLED_IN_FLIGHT"


class PrepareFailed(TraderError):
    """The order could not be built for an intent (its price off the tick grid in force, the venue's market parameters
    unavailable, ...): nothing was sent; the intents were recorded NOT_SENT. `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class DuplicateClientOrderId(TraderError):
    """An intent reused a client order id this manager already knows (a strategy bug): nothing was sent."""


def check_batch_intents(intents: Sequence[OrderIntent]) -> None:
    """Refuse (`ValueError`) a batch the venue would refuse: empty, too large, post-only mixed with not."""
    if not 1 <= len(intents) <= MAX_BATCH_SIZE:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} orders, got {len(intents)}")
    if len({i.post_only for i in intents}) != 1:
        raise ValueError("a batch must be all post-only or all not post-only (one postOnly per request)")


class Submitter:
    """See the module docstring. Counts venue rejections by code (`rejected`) and orders not sent by reason
    (`not_sent`)."""

    def __init__(
        self,
        venue: Venue,
        ledger: OrderLedger,
        guard: VenueGuard,
        *,
        resolver: Resolver,
        events: VenueEventHandler,
        cancels: Canceller,
        settings: OrderManagerSettings,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self._guard = guard
        self._resolver = resolver
        self._events = events
        self._cancels = cancels
        self._settings = settings
        self.rejected: Counter[str] = Counter()
        self.not_sent: Counter[str] = Counter()

    async def submit(self, intents: Sequence[OrderIntent], group_id: str | None) -> list[Order]:
        """Prepare, write, send and resolve the orders of `intents` (one request); their states once known."""
        ledger = self._ledger
        cids = [intent.client_order_id for intent in intents]
        for n, cid in enumerate(cids):
            if cid in ledger.orders or ledger.was_forgotten(cid) or cid in cids[:n]:
                raise DuplicateClientOrderId(f"client order id {cid!r} was already used")
        orders = await self._prepare(intents, group_id)
        for order in orders:
            ledger.add(order)
        outcomes: dict[str, SubmitOutcome] = {}
        sent: list[float] = []  # when the request's last attempt left (an order refused with 425 is sent again)
        try:
            await self._write_and_send(orders, group_id, outcomes, sent)
        finally:
            with trio.move_on_after(self._settings.request_timeout_secs, shield=True):
                for cid in cids:
                    if ledger.orders[cid].status is OrderStatus.CREATED:
                        # Cancelled before it left: close it and say so in the store, even while being cancelled.
                        await self._not_sent(cid, OrderReason.NEVER_SENT, canceled=True)
                    elif cid not in outcomes and ledger.orders[cid].status is OrderStatus.SUBMITTED:
                        # Cancelled while the request was on its way (an emergency stop): the venue may or may not
                        # have the order. It is asked for by id (reconciliation), like any unknown outcome.
                        left = sent[-1] if sent else trio.current_time()
                        self._resolver.mark_unknown((cid,), CANCELLED_IN_FLIGHT, sent_at=left)
                        await ledger.save_order(cid)
        for cid in cids:
            log.debug(
                "order_submit_done", client_order_id=cid, outcome=outcomes.get(cid), status=ledger.orders[cid].status
            )
        return [ledger.orders[cid] for cid in cids]

    async def _prepare(self, intents: Sequence[OrderIntent], group_id: str | None) -> list[Order]:
        """The CREATED orders with their venue order ids, computed before anything is written or sent (one deadline
        for the whole request: preparing is signing, plus a venue lookup for a market it was not told about).

        If any cannot be prepared, none is sent: each intent is recorded NOT_SENT with the reason, and
        `PrepareFailed` says why. Whatever preparing raises ends here: one bad order must not end the task (or the
        orders scope) that sent it."""
        now = self._ledger.now()
        venue = self._venue
        orders: list[Order] = []
        intent = intents[0]
        try:
            with trio.fail_after(self._settings.request_timeout_secs):
                for intent in intents:
                    order = await venue.prepare(intent, ts=now)
                    if order.client_order_id != intent.client_order_id:
                        raise ValueError(
                            f"venue prepared {order.client_order_id!r} for intent {intent.client_order_id!r}"
                        )
                    orders.append(order)
        except PrepareRefused as exc:  # the terms do not fit the market as it is now: a value, not a failure
            reason, detail = exc.code, exc.message
            log.warning("order_prepare_refused", client_order_id=intent.client_order_id, reason=reason, detail=detail)
        except (VenueError, trio.TooSlowError) as exc:
            reason, detail = PREPARE_FAILED, repr(exc)
            log.error("order_prepare_failed", client_order_id=intent.client_order_id, error=detail)
        except Exception as exc:  # a bug in preparing: this order is not sent, the engine keeps trading
            reason, detail = PREPARE_FAILED, repr(exc)
            log.exception("order_prepare_crashed", client_order_id=intent.client_order_id, error=detail)
        else:
            return orders
        self.not_sent[reason] += len(intents)
        await self._record_not_prepared(intents, {o.client_order_id: o.order_id for o in orders}, group_id, reason)
        raise PrepareFailed(reason, f"order {intent.client_order_id} could not be prepared: {detail[:200]}")

    async def _record_not_prepared(
        self, intents: Sequence[OrderIntent], order_ids: dict[str, str], group_id: str | None, reason: str
    ) -> None:
        """The intents of a request that was never prepared, in the store as NOT_SENT with `reason` (best effort: a
        store failure is counted and logged; nothing is pending, so nothing waits on it)."""
        ledger = self._ledger
        now_ns = ledger.wall_ns()
        records = [
            dataclasses.replace(
                IntentRecord.of(
                    intent,
                    order_id=order_ids.get(intent.client_order_id),
                    created_at_ns=now_ns,
                    group_id=group_id,
                ),
                state=IntentState.NOT_SENT,
                reason=reason,
                resolved_at_ns=now_ns,
            )
            for intent in intents
        ]
        try:
            await ledger.store.record_intents(records)
        except (StoreError, DuplicateKeyError) as exc:
            ledger.counts["store_errors"] += 1
            log.error("intent_write_failed", client_order_ids=[r.client_order_id for r in records], error=str(exc))

    async def _write_and_send(
        self, orders: Sequence[Order], group_id: str | None, outcomes: dict[str, SubmitOutcome], sent: list[float]
    ) -> None:
        """Write the intents, send the orders in one request (`POST /order` for one, `POST /orders` for more), and
        resolve each: its outcome goes into `outcomes` as soon as it is known; `sent` gets the Trio time each attempt
        of the request left."""
        ledger = self._ledger
        cids = [order.client_order_id for order in orders]

        async def not_sent(reason: str, *, write_intent: bool = True) -> None:
            for cid in cids:
                await self._not_sent(cid, reason, write_intent=write_intent)
                outcomes[cid] = SubmitOutcome.NOT_SENT

        try:
            await ledger.store.record_intents([ledger.intent_record(order, group_id) for order in orders])
        except (StoreError, DuplicateKeyError) as exc:
            ledger.counts["store_errors"] += 1
            log.error("intent_write_failed", client_order_ids=cids, error=str(exc))
            await not_sent(STORE_WRITE_FAILED, write_intent=False)
            return
        if self._guard.sending_blocked is not None:
            await not_sent(SENDING_BLOCKED)
            return
        restrictions = self._guard.restrictions
        denial = restrictions.order_denial(orders, trio.current_time())
        if denial is not None:
            await not_sent(denial)
            return
        if len(orders) == 1:
            endpoint, call = ORDER_ENDPOINT, partial(self._submit_one, cids[0], sent)
        else:
            endpoint, call = BATCH_ENDPOINT, partial(self._submit_many, cids, sent)
        try:
            results = await self._guard.call_retrying(
                endpoint,
                call,
                retry_secs=self._settings.restrictions.order_retry_secs,
                before_send=partial(self._mark_sent, cids),
                check_blocked=True,
                max_wait_secs=self._settings.max_rate_wait_secs,
                cost=len(orders),
                orders=orders,
            )
        except VenueRestricted as exc:
            await not_sent(exc.code)
            return
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
            if is_unknown_outcome(exc):
                log.warning("submit_request_failed", client_order_ids=cids, error=repr(exc))
                self._resolver.mark_unknown(cids, unknown_cause(exc), sent_at=sent[-1] if sent else trio.current_time())
                for cid in cids:
                    await ledger.save_order(cid)
                async with trio.open_nursery() as nursery:
                    for cid in cids:
                        nursery.start_soon(self._resolve_into, cid, outcomes)
                return
            reason = exc.code.value if isinstance(exc, VenueRequestError) else VENUE_CONNECTION_ERROR
            for cid in cids:
                await self._refused(cid, reason, str(exc), sent=not isinstance(exc, VenueConnectionError))
                outcomes[cid] = SubmitOutcome.REJECTED
            return
        self._tell_restrictions(orders, results, sent[-1] if sent else trio.current_time())
        for cid, result in zip(cids, results, strict=True):
            outcomes[cid] = await self._on_submit_result(cid, result)

    def _tell_restrictions(self, orders: Sequence[Order], results: Sequence[SubmitResult], sent_at: float) -> None:
        """What each order's answer says of the venue's restrictions: a refusal that names one, or an order the
        venue answered for itself (ending a post-only window; a buy taken ends closed-only)."""
        restrictions, now = self._guard.restrictions, trio.current_time()
        for order, result in zip(orders, results, strict=True):
            restriction = restriction_of(result.reason) if isinstance(result, SubmitRejected) else None
            if restriction is not None:
                self._guard.counts[f"restricted:{restriction}"] += 1
                restrictions.on_refusal(restriction, sent_at=sent_at, now=now)
                continue
            restrictions.on_order_answered(order, sent_at=sent_at, now=now)
            if isinstance(result, SubmitAccepted) and order.side is Side.BUY:
                restrictions.on_buy_accepted(sent_at=sent_at, now=now)

    async def _submit_one(self, cid: str, sent: list[float]) -> list[SubmitResult]:
        sent.append(trio.current_time())
        return [await self._venue.submit(self._ledger.orders[cid])]

    async def _submit_many(self, cids: Sequence[str], sent: list[float]) -> list[SubmitResult]:
        orders = self._ledger.orders
        sent.append(trio.current_time())
        results = await self._venue.submit_batch([orders[cid] for cid in cids])
        if len(results) != len(cids):
            raise VenueProtocolError(f"{BATCH_ENDPOINT}: {len(results)} results for {len(cids)} orders")
        return results

    async def _resolve_into(self, cid: str, outcomes: dict[str, SubmitOutcome]) -> None:
        outcomes[cid] = await self._resolver.resolve_unknown(cid)

    def _mark_sent(self, cids: Sequence[str]) -> None:
        ledger = self._ledger
        now = ledger.now()
        for cid in cids:
            ledger.counts["submitted"] += 1
            ledger.apply(OrderSubmitted(client_order_id=cid, ts=now))

    async def _on_submit_result(self, cid: str, result: SubmitResult) -> SubmitOutcome:
        if isinstance(result, SubmitRejected):
            await self._refused(cid, result.reason.value, result.message, sent=True)
            return SubmitOutcome.REJECTED
        ledger = self._ledger
        ledger.counts["accepted"] += 1
        order = ledger.orders[cid]
        ledger.note_matched(cid, result.filled_size)
        self._events.apply_venue_status(order, result.status, result.filled_size)
        await ledger.resolve_intent(cid, IntentState.ACKED)
        await ledger.save_order(cid)
        await self._cancels.on_changed(cid)
        return SubmitOutcome.ACCEPTED

    async def _refused(self, cid: str, reason: str, message: str, *, sent: bool) -> None:
        ledger = self._ledger
        self.rejected[reason] += 1
        order = ledger.orders.get(cid)
        log.info(
            "order_rejected",
            client_order_id=cid,
            token_id=None if order is None else order.token_id,
            reason=reason,
            message=message[:200],
        )
        ledger.apply(OrderRejected(client_order_id=cid, reason=reason, ts=ledger.now(), message=message[:200]))
        await ledger.resolve_intent(cid, IntentState.REJECTED if sent else IntentState.NOT_SENT, reason=reason)
        await ledger.save_order(cid)

    async def _not_sent(self, cid: str, reason: str, *, write_intent: bool = True, canceled: bool = False) -> None:
        ledger = self._ledger
        self.not_sent[reason] += 1
        log.info("order_not_sent", client_order_id=cid, reason=reason)
        event: OrderEvent = (
            OrderCanceled(client_order_id=cid, ts=ledger.now(), reason=reason)
            if canceled
            else OrderRejected(client_order_id=cid, reason=reason, ts=ledger.now())
        )
        ledger.apply(event)
        if write_intent:
            await ledger.resolve_intent(cid, IntentState.NOT_SENT, reason=reason)
            await ledger.save_order(cid)
