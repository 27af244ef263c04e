"""Cancels: one order (`cancel`, `DELETE /order`), several by id (`cancel_many`, `DELETE /orders`, split into requests
of at most `MAX_CANCEL_IDS` ids and at most what one request can cost in the signer's cancel bucket), or every open
order (`cancel_all`, `DELETE /cancel-all`).

All are HIGH priority in the rate limiter (they do not wait behind a blocked order endpoint; cancels have their own
bucket at the venue) and not bounded in their wait here (the caller's deadline applies). They go out whatever the
venue's trading restrictions (cancels pass in post-only and cancel-only modes); while the matching engine restarts
(425) they are sent again at each probe time, for as long as their caller waits. `cancel_all(force=True)` (the
emergency stop) goes out even when the breaker is open: pulling orders matters more than sparing a sick venue. The
reason of a cancel is remembered, so that the venue's CANCELED report of that order closes it with our reason rather
than `CANCELED_BY_VENUE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus
from trader.domain.events import OrderCanceled, OrderCancelRejected, OrderCancelRequested, OrderReason
from trader.domain.orders import Order
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager.guard import (
    CANCEL_ALL_ENDPOINT,
    CANCEL_ENDPOINT,
    CANCELS_ENDPOINT,
    RateLimitWaitTooLong,
    VenueGuard,
)
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.reasons import CANCEL_NOT_DONE
from trader.integrations.store.base import IntentState
from trader.venues.base import MAX_CANCEL_IDS, CancelResult, Venue
from trader.venues.errors import VenueError

log = structlog.get_logger(__name__)

#: The statuses of an order whose id the venue has not confirmed: a cancel of it waits.
_UNCONFIRMED = frozenset({OrderStatus.SUBMITTED, OrderStatus.UNKNOWN})

__all__ = ["Canceller"]


class Canceller:
    """See the module docstring."""

    def __init__(self, venue: Venue, ledger: OrderLedger, guard: VenueGuard) -> None:
        self._venue = venue
        self._ledger = ledger
        self._guard = guard
        self._cancel_reasons: dict[str, str] = {}
        self._cancel_all_reason: str | None = None
        self._deferred: dict[str, str] = {}  # client order id -> reason: cancels waiting for the venue to confirm
        ledger.on_forget(self._forget)

    def _forget(self, order: Order) -> None:
        self._cancel_reasons.pop(order.client_order_id, None)

    def reason_for(self, cid: str) -> str | None:
        """Why we asked the venue to cancel this order (itself, or in a cancel-all under way), or None."""
        return self._cancel_reasons.get(cid) or self._deferred.get(cid) or self._cancel_all_reason

    def deferred(self) -> dict[str, str]:
        """The cancels waiting for the venue to confirm their order's id: client order id -> reason."""
        return dict(self._deferred)

    def defer(self, cid: str, reason: str) -> None:
        """Cancel this unconfirmed order as soon as the venue shows it open (see the module docstring)."""
        if cid not in self._deferred:
            self._ledger.counts["cancels_deferred"] += 1
            log.info("cancel_deferred", client_order_id=cid, status=self._ledger.orders[cid].status, reason=reason)
        self._deferred[cid] = reason

    async def on_changed(self, cid: str) -> None:
        """The order changed: a cancel deferred for it goes out if the venue now shows it open, and is dropped if it
        closed. A failure is logged (the order stays open, as any cancel that failed leaves it)."""
        if cid not in self._deferred:
            return
        order = self._ledger.orders[cid]
        if order.status in _UNCONFIRMED:
            return
        reason = self._deferred.pop(cid)
        if order.is_terminal:
            return
        log.info("deferred_cancel_sent", client_order_id=cid, reason=reason)
        try:  # through a restart's 425s for as long as an order would be (this may be the venue events' task)
            await self.cancel(cid, reason=reason, retry_secs=self._guard.restrictions.settings.order_retry_secs)
        except (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError) as exc:
            log.error("deferred_cancel_failed", client_order_id=cid, error=repr(exc))

    async def cancel(
        self, client_order_id: str, *, reason: str = OrderReason.CANCELED_BY_USER, retry_secs: float = math.inf
    ) -> Order:
        """Ask the venue to cancel one order (HIGH priority; sent again through a restart's 425s for at most
        `retry_secs`). Errors propagate; the order stays PENDING_CANCEL. An order whose id the venue has not confirmed
        is not sent yet (`defer`): it is returned as it is."""
        ledger = self._ledger
        order = ledger.orders[client_order_id]
        if order.is_terminal:
            return order
        if order.status in _UNCONFIRMED:
            self.defer(client_order_id, reason)
            return order
        ledger.apply(OrderCancelRequested(client_order_id=client_order_id, ts=ledger.now()))
        self._cancel_reasons[client_order_id] = reason
        ledger.counts["cancels_sent"] += 1
        result = await self._guard.call_retrying(
            CANCEL_ENDPOINT, partial(self._venue.cancel, order.order_id), retry_secs=retry_secs
        )
        await self._on_cancel_result(result, reason)
        await self._not_done(client_order_id, result)
        await ledger.save_order(client_order_id)
        return ledger.orders[client_order_id]

    async def _not_done(self, cid: str, result: CancelResult) -> None:
        ledger = self._ledger
        order_id = ledger.orders[cid].order_id
        if order_id in result.not_canceled and ledger.orders[cid].status is OrderStatus.PENDING_CANCEL:
            ledger.apply(
                OrderCancelRejected(
                    client_order_id=cid,
                    reason=CANCEL_NOT_DONE,
                    ts=ledger.now(),
                    message=result.not_canceled[order_id][:200],
                )
            )

    def max_ids_per_request(self) -> int:
        """At most `MAX_CANCEL_IDS`, and no more than one request can cost in the signer's cancel bucket."""
        cost = self._guard.limiter.max_cost(CANCELS_ENDPOINT)
        return MAX_CANCEL_IDS if cost is None else max(1, min(MAX_CANCEL_IDS, cost))

    async def cancel_many(self, client_order_ids: Sequence[str], *, reason: str) -> list[Order]:
        """Cancel several orders (see the module docstring); the requests go one after the other. Errors propagate
        (the orders of the failed request and those after it stay as they were, or PENDING_CANCEL)."""
        ledger = self._ledger
        cids = []
        for cid in dict.fromkeys(client_order_ids):
            order = ledger.orders[cid]
            if order.status in _UNCONFIRMED:
                self.defer(cid, reason)
            elif not order.is_terminal:
                cids.append(cid)
        size = self.max_ids_per_request()
        for start in range(0, len(cids), size):
            chunk = cids[start : start + size]
            for cid in chunk:
                ledger.apply(OrderCancelRequested(client_order_id=cid, ts=ledger.now()))
                self._cancel_reasons[cid] = reason
            ledger.counts["cancels_sent"] += len(chunk)
            ids = [ledger.orders[cid].order_id for cid in chunk]
            result = await self._guard.call_retrying(
                CANCELS_ENDPOINT, partial(self._venue.cancel_orders, ids), retry_secs=math.inf, cost=len(ids)
            )
            await self._on_cancel_result(result, reason)
            for cid in chunk:
                await self._not_done(cid, result)
                await ledger.save_order(cid)
        return [ledger.orders[cid] for cid in dict.fromkeys(client_order_ids)]

    async def cancel_all(self, *, reason: str, force: bool = False) -> CancelResult:
        """Cancel every open order at the venue (HIGH priority; `force`: even with the cancels breaker open), and
        those it may not have yet once it shows them (deferred)."""
        self._ledger.counts["cancel_alls"] += 1
        for order in self._ledger.open_orders():
            if order.status in _UNCONFIRMED:
                self.defer(order.client_order_id, reason)
        self._cancel_all_reason = reason
        try:
            result = await self._guard.call_retrying(
                CANCEL_ALL_ENDPOINT, partial(self._venue.cancel_all, reason=reason), force=force, retry_secs=math.inf
            )
        finally:
            self._cancel_all_reason = None
        if result.canceled:
            self._guard.limiter.charge(CANCEL_ALL_ENDPOINT, len(result.canceled), trio.current_time())
        await self._on_cancel_result(result, reason)
        return result

    async def _on_cancel_result(self, result: CancelResult, reason: str) -> None:
        ledger = self._ledger
        for order_id in result.canceled:
            cid = ledger.by_venue_id.get(order_id)
            if cid is None:
                ledger.counts["late_events" if ledger.was_forgotten(order_id) else "unknown_events"] += 1
                continue
            was_unknown = cid in ledger.unresolved
            ledger.apply(OrderCanceled(client_order_id=cid, ts=ledger.now(), reason=reason))
            self._deferred.pop(cid, None)
            if was_unknown:  # the venue had it: the cancel names it
                await ledger.resolve_intent(cid, IntentState.ACKED)
            await ledger.save_order(cid)
