"""Resolving by order id: what the venue has of an order we sent, asked for by the id we computed before sending.

A submit whose outcome is unknown (a timeout, a disconnect, a 5xx or a garbled reply) is resolved by ASKING THE
VENUE FOR THAT ORDER ID (`Venue.lookup`; a venue without a by-id endpoint answers from its open orders and trades),
up to `resolve_attempts` times, `resolve_retry_secs` apart; the order is never sent again. Found: its state is
applied, and its trades are fetched when the venue says more matched than we know. Not there: the order is closed
as CANCELED with reason `SUBMIT_NOT_FOUND` (a state that still accepts a late fill, so the position follows the
venue); still unknown after every attempt (the venue could not be asked): the order stays SUBMITTED and is counted as
unresolved until an event or a reconciliation settles it. Venue events about the order that arrive meanwhile settle
it too.

The same question serves `reconcile` (one order, on demand: the periodic reconciliation asks for
`needs_reconcile()`), `resync_open_orders` (every open order, after a gap in the venue's events) and
`recover_pending` (at start: intents written but never resolved, rebuilt as SUBMITTED orders and resolved by id).
"""

from __future__ import annotations

from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus
from trader.domain.events import OrderCanceled, OrderReason, OrderSubmitted
from trader.domain.orders import Order
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager.events import VenueEventHandler
from trader.engine.order_manager.guard import LOOKUP_ENDPOINT, TRADES_ENDPOINT, RateLimitWaitTooLong, VenueGuard
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.reasons import SUBMIT_NOT_FOUND, SubmitOutcome
from trader.engine.order_manager.settings import OrderManagerSettings
from trader.integrations.store.base import IntentState
from trader.venues.base import Venue, VenueOrder, VenueTrade
from trader.venues.errors import VenueError

__all__ = ["Resolver"]

log = structlog.get_logger(__name__)


class Resolver:
    """See the module docstring."""

    def __init__(
        self,
        venue: Venue,
        ledger: OrderLedger,
        guard: VenueGuard,
        *,
        events: VenueEventHandler,
        settings: OrderManagerSettings,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self._guard = guard
        self._events = events
        self._settings = settings

    async def resolve_unknown(self, cid: str) -> SubmitOutcome:
        ledger = self._ledger
        for attempt in range(self._settings.resolve_attempts):
            if attempt:
                await trio.sleep(self._settings.resolve_retry_secs)
            if ledger.orders[cid].status is not OrderStatus.SUBMITTED:
                # Venue events about this order arrived (before or after the timeout): the venue has it.
                ledger.unresolved.discard(cid)
                ledger.counts["resolved_found"] += 1
                await ledger.resolve_intent(cid, IntentState.ACKED)
                return SubmitOutcome.ACCEPTED
            try:
                found = await self._lookup(ledger.orders[cid].order_id)
            except (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError) as exc:
                log.warning("order_lookup_failed", client_order_id=cid, attempt=attempt + 1, error=repr(exc))
                continue
            if cid not in ledger.unresolved:  # an event settled it while we asked
                return SubmitOutcome.ACCEPTED
            ledger.unresolved.discard(cid)
            if found is None:
                ledger.counts["resolved_not_found"] += 1
                log.warning("submit_resolved_not_found", client_order_id=cid)
                ledger.apply(OrderCanceled(client_order_id=cid, ts=ledger.now(), reason=SUBMIT_NOT_FOUND))
                await ledger.resolve_intent(cid, IntentState.REJECTED, reason=SUBMIT_NOT_FOUND)
                await ledger.save_order(cid)
                return SubmitOutcome.NOT_FOUND
            ledger.counts["resolved_found"] += 1
            log.info("submit_resolved_found", client_order_id=cid, venue_status=found.status)
            await self._apply_found(cid, found)
            await ledger.resolve_intent(cid, IntentState.ACKED)
            return SubmitOutcome.ACCEPTED
        log.error("submit_unresolved", client_order_id=cid, order_id=ledger.orders[cid].order_id)
        return SubmitOutcome.UNRESOLVED

    async def reconcile(self, client_order_id: str) -> Order:
        """Ask the venue about one order by its id and apply what it says (state, and every trade of it).

        Lookup errors propagate (`VenueError`, `trio.TooSlowError`, `CircuitOpenError`, `RateLimitWaitTooLong`).
        """
        ledger = self._ledger
        order = ledger.orders[client_order_id]
        was_unresolved = client_order_id in ledger.unresolved
        found = await self._lookup(order.order_id)
        if found is None:
            if order.status is OrderStatus.SUBMITTED:
                ledger.unresolved.discard(client_order_id)
                ledger.apply(OrderCanceled(client_order_id=client_order_id, ts=ledger.now(), reason=SUBMIT_NOT_FOUND))
                await ledger.save_order(client_order_id)
                if was_unresolved:
                    ledger.counts["resolved_not_found"] += 1
                    await ledger.resolve_intent(client_order_id, IntentState.REJECTED, reason=SUBMIT_NOT_FOUND)
        else:
            await self._apply_found(client_order_id, found)
            if was_unresolved:
                ledger.counts["resolved_found"] += 1
                await ledger.resolve_intent(client_order_id, IntentState.ACKED)
        return ledger.orders[client_order_id]

    def needs_reconcile(self) -> list[Order]:
        """Orders to ask the venue about: outcome unknown, or fills reported by the venue that never arrived."""
        ledger = self._ledger
        # Only orders unresolved or with venue-reported fills can qualify: not a scan of every order ever sent. An
        # order whose reported fills all arrived is forgotten here (its awaited fills are 0 with or without the entry;
        # a later report adds it back), so what this looks at stays what is outstanding, not the session's history.
        for cid in [cid for cid in ledger.venue_matched if not ledger.awaiting_fills(cid)]:
            del ledger.venue_matched[cid]
        candidates = sorted(ledger.unresolved.union(ledger.venue_matched), key=ledger.rank.__getitem__)
        orders = [ledger.orders[cid] for cid in candidates]
        return [
            o
            for o in orders
            if o.client_order_id in ledger.unresolved
            or (ledger.awaiting_fills(o.client_order_id) and o.filled < o.size)
        ]

    async def resync_open_orders(self) -> None:
        """Ask the venue about every open order by id (after a gap in its events); failures are logged."""
        for order in self._ledger.open_orders():
            try:
                await self.reconcile(order.client_order_id)
            except (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError) as exc:
                log.warning("resync_failed", client_order_id=order.client_order_id, error=repr(exc))

    async def recover_pending(self) -> list[Order]:
        """At start: intents written but never resolved (a crash between the write and the answer). Each is rebuilt
        as a SUBMITTED order and resolved by asking the venue for its id; nothing is sent again."""
        ledger = self._ledger
        store = ledger.store
        recovered: list[Order] = []
        for record in await store.load_pending_intents():
            cid = record.client_order_id
            if cid in ledger.orders:
                continue
            if record.order_id is None:  # never signed, so never sent
                await ledger.store_call(
                    partial(
                        store.resolve_intent,
                        cid,
                        IntentState.NOT_SENT,
                        ts_ns=ledger.wall_ns(),
                        reason=OrderReason.NEVER_SENT,
                    )
                )
                continue
            order = Order.from_intent(record.to_intent(), order_id=record.order_id, ts=record.created_at_ns / 1e9)
            ledger.add(order)
            ledger.apply(OrderSubmitted(client_order_id=cid, ts=ledger.now()))
            ledger.unresolved.add(cid)
            ledger.counts["recovered"] += 1
            log.warning("recovering_pending_intent", client_order_id=cid, order_id=order.order_id)
            await self.resolve_unknown(cid)
            recovered.append(ledger.orders[cid])
        return recovered

    async def _apply_found(self, cid: str, found: VenueOrder) -> None:
        order = self._ledger.orders[cid]
        if found.size_matched > order.filled:
            await self._sync_trades(order)
        await self._events.on_venue_order(found)
        self._ledger.unresolved.discard(cid)

    async def _lookup(self, order_id: str) -> VenueOrder | None:
        return await self._guard.call(
            LOOKUP_ENDPOINT, partial(self._venue.lookup, order_id), max_wait_secs=self._settings.max_rate_wait_secs
        )

    async def _fetch_trades(self, order: Order) -> list[VenueTrade]:
        since = order.created_ts - self._settings.trades_lookback_secs
        return await self._guard.call(
            TRADES_ENDPOINT,
            partial(self._venue.trades, since_ts=since),
            max_wait_secs=self._settings.max_rate_wait_secs,
        )

    async def _sync_trades(self, order: Order) -> None:
        for trade in await self._fetch_trades(order):
            if trade.order_id == order.order_id:
                await self._events.on_trade(trade)
