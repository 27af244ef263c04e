"""Resolving by order id: what the venue has of an order we sent, asked for by the id we computed before sending.

Unknown is a state, not a verdict. A submit whose outcome is unknown (a timeout, a disconnect, a 5xx or a garbled
reply, or a cancellation while its request was on the wire) leaves the order UNKNOWN (`mark_unknown`: in the store
too, its intent still pending), and it stays so until the venue shows it:

- found by id (`Venue.lookup`; a venue without a by-id endpoint answers from its open orders and trades): its state is
  applied, and its trades are fetched when the venue says more matched than we know;
- found by an event about it (an order update, a trade of it: `trader.engine.order_manager.events`);
- found by its trades, asked for when a lookup finds nothing once the window has passed;
- or absent: not found by id nor by its trades once the WINDOW has passed (`OrderManagerSettings.unknown_window_secs`
  after its request left: the venue's ack latency, up to our deadline, plus `unknown_grace_secs`). Only then is it
  closed, as CANCELED with reason `SUBMIT_NOT_FOUND` (a state that still accepts a late fill, reported as one: see
  `events`). A "not found" before the window ends is no verdict: the request may still be on its way in.

`resolve_unknown` (the submitting task) asks on a backoff schedule (`lookup_initial_secs`, doubling, at most
`lookup_max_secs` apart) and once more when the window ends, waking early when an event settles the order; the order
is never sent again. If the venue could not be asked by then, the order stays UNKNOWN (outcome UNRESOLVED), and the
periodic reconciliation goes on asking (`reconcile`, for `needs_reconcile()`), with the same rule.

Counts (`OrderLedger.put`): `resolved_found` and `resolved_not_found` as orders leave UNKNOWN, `lookups` here. Whoever
applies the change that ends UNKNOWN also records the intent's resolution (ACKED, or REJECTED with `SUBMIT_NOT_FOUND`)
and sends a cancel deferred meanwhile (`trader.engine.order_manager.cancels`).

The same question serves `resync_open_orders` (every open order, after a gap in the venue's events) and
`recover_pending` (at start: intents written but never resolved, rebuilt as UNKNOWN orders and resolved by id, the
window starting at the recovery: when they were sent is not known).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus
from trader.domain.events import OrderCanceled, OrderOutcomeUnknown, OrderReason, OrderSubmitted
from trader.domain.orders import Order
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager.cancels import Canceller
from trader.engine.order_manager.events import VenueEventHandler
from trader.engine.order_manager.guard import LOOKUP_ENDPOINT, TRADES_ENDPOINT, RateLimitWaitTooLong, VenueGuard
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.reasons import SUBMIT_NOT_FOUND, SubmitOutcome
from trader.engine.order_manager.settings import OrderManagerSettings
from trader.infra.backoff import Backoff
from trader.integrations.store.base import IntentState
from trader.venues.base import Venue, VenueOrder, VenueTrade
from trader.venues.errors import VenueError

__all__ = ["Resolver"]

log = structlog.get_logger(__name__)

_LOOKUP_ERRORS = (CircuitOpenError, RateLimitWaitTooLong, VenueError, trio.TooSlowError)
#: Why an order recovered at start is UNKNOWN (its intent was written; whether it was sent is not known).
RECOVERED = "RECOVERED"


def _is_unknown(order: Order) -> bool:
    return order.status is OrderStatus.UNKNOWN


class Resolver:
    """See the module docstring."""

    def __init__(
        self,
        venue: Venue,
        ledger: OrderLedger,
        guard: VenueGuard,
        *,
        events: VenueEventHandler,
        canceller: Canceller,
        settings: OrderManagerSettings,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self._guard = guard
        self._events = events
        self._canceller = canceller
        self._settings = settings
        self._backoff = Backoff(
            initial_secs=settings.lookup_initial_secs, max_secs=settings.lookup_max_secs, jitter=0.0
        )

    # -- UNKNOWN ------------------------------------------------------------------------------------------------

    def mark_unknown(self, cids: Sequence[str], cause: str, *, sent_at: float) -> None:
        """The orders of a request whose outcome is unknown: UNKNOWN from now (their request left at `sent_at`, Trio
        time); the caller saves them. Counted (`ambiguous`) and logged."""
        ledger = self._ledger
        ts = ledger.now()
        for cid in cids:
            if ledger.orders[cid].status is not OrderStatus.SUBMITTED:
                continue  # an event about it came first: the venue has it
            ledger.counts["ambiguous"] += 1
            ledger.sent_at[cid] = sent_at
            ledger.apply(OrderOutcomeUnknown(client_order_id=cid, ts=ts, cause=cause))
            log.warning(
                "submit_outcome_unknown",
                client_order_id=cid,
                order_id=ledger.orders[cid].order_id,
                cause=cause,
                verdict_in_secs=round(self.deadline(cid) - trio.current_time(), 3),
            )

    def deadline(self, cid: str) -> float:
        """The Trio time from which "not found" is a verdict on this UNKNOWN order: its window's end."""
        sent_at = self._ledger.sent_at.get(cid)
        if sent_at is None:  # not known when it left: from now
            sent_at = self._ledger.sent_at[cid] = trio.current_time()
        return sent_at + self._settings.unknown_window_secs

    async def resolve_unknown(self, cid: str) -> SubmitOutcome:
        """Ask the venue about an UNKNOWN order on the backoff schedule until it shows the order or (after the
        window) its absence; UNRESOLVED when the window ended and the venue could not be asked."""
        ledger = self._ledger
        if not _is_unknown(ledger.orders[cid]):
            # An event about it came while its request was failing: the venue has it.
            await ledger.resolve_intent(cid, IntentState.ACKED)
            return self._outcome(ledger.orders[cid])
        deadline = self.deadline(cid)
        attempt = 0
        while True:
            wake = trio.current_time() + self._backoff.delay(attempt)
            final = wake >= deadline
            attempt += 1
            with trio.move_on_at(deadline if final else wake):
                await ledger.wait_until(cid, lambda o: not _is_unknown(o))  # an event settles it meanwhile
            if not _is_unknown(ledger.orders[cid]):
                return self._outcome(ledger.orders[cid])
            try:
                outcome = await self._ask(cid, final=final)
            except _LOOKUP_ERRORS as exc:
                log.warning("order_lookup_failed", client_order_id=cid, attempt=attempt, error=repr(exc))
                outcome = None
            if outcome is not None:
                return outcome
            if final:
                log.error("submit_unresolved", client_order_id=cid, order_id=ledger.orders[cid].order_id)
                return SubmitOutcome.UNRESOLVED

    async def _ask(self, cid: str, *, final: bool) -> SubmitOutcome | None:
        """One lookup by id of an UNKNOWN order, and what it proves: None when nothing yet (not found before the
        window ended). `final`: the window has ended, so "not found" (by id, and by its trades) is the verdict.
        Lookup errors propagate."""
        ledger = self._ledger
        order = ledger.orders[cid]
        ledger.counts["lookups"] += 1
        found = await self._lookup(order.order_id)
        if not _is_unknown(ledger.orders[cid]):  # an event settled it while we asked
            return self._outcome(ledger.orders[cid])
        if found is not None:
            log.info("submit_resolved_found", client_order_id=cid, venue_status=found.status)
            await self._apply_found(cid, found)
            return SubmitOutcome.ACCEPTED
        if not final:
            return None
        mine = [t for t in await self._fetch_trades(order) if t.order_id == order.order_id]
        if mine:
            log.warning("submit_resolved_by_trades", client_order_id=cid, trades=len(mine))
            for trade in mine:
                await self._events.on_trade(trade)
            return self._outcome(ledger.orders[cid])
        if not _is_unknown(ledger.orders[cid]):
            return self._outcome(ledger.orders[cid])
        log.warning(
            "submit_resolved_not_found",
            client_order_id=cid,
            window_secs=self._settings.unknown_window_secs,
        )
        ledger.apply(OrderCanceled(client_order_id=cid, ts=ledger.now(), reason=SUBMIT_NOT_FOUND))
        await ledger.resolve_intent(cid, IntentState.REJECTED, reason=SUBMIT_NOT_FOUND)
        await ledger.save_order(cid)
        await self._canceller.on_changed(cid)
        return SubmitOutcome.NOT_FOUND

    @staticmethod
    def _outcome(order: Order) -> SubmitOutcome:
        return SubmitOutcome.NOT_FOUND if order.reason == SUBMIT_NOT_FOUND else SubmitOutcome.ACCEPTED

    # -- asking on demand ------------------------------------------------------------------------------------------

    async def reconcile(self, client_order_id: str) -> Order:
        """Ask the venue about one order by its id and apply what it says (state, and every trade of it). An UNKNOWN
        order not found is closed only once its window has passed (and its trades show nothing).

        Lookup errors propagate (`VenueError`, `trio.TooSlowError`, `CircuitOpenError`, `RateLimitWaitTooLong`).
        """
        ledger = self._ledger
        order = ledger.orders[client_order_id]
        if _is_unknown(order):
            await self._ask(client_order_id, final=trio.current_time() >= self.deadline(client_order_id))
        else:
            found = await self._lookup(order.order_id)
            if found is not None:  # not found: a request still on its way (SUBMITTED), or an order closed here
                await self._apply_found(client_order_id, found)
        return ledger.orders[client_order_id]

    def needs_reconcile(self) -> list[Order]:
        """Orders to ask the venue about: UNKNOWN, or fills reported by the venue that never arrived."""
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
            except _LOOKUP_ERRORS as exc:
                log.warning("resync_failed", client_order_id=order.client_order_id, error=repr(exc))

    async def recover_pending(self) -> list[Order]:
        """At start: intents written but never resolved (a crash between the write and the answer). Each is rebuilt
        as an UNKNOWN order and resolved by asking the venue for its id (all at once); nothing is sent again."""
        ledger = self._ledger
        store = ledger.store
        recovered: list[str] = []
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
            ledger.counts["recovered"] += 1
            log.warning("recovering_pending_intent", client_order_id=cid, order_id=order.order_id)
            self.mark_unknown((cid,), RECOVERED, sent_at=trio.current_time())
            await ledger.save_order(cid)
            recovered.append(cid)
        async with trio.open_nursery() as nursery:  # asked for concurrently: a takeover waits for the slowest only
            for cid in recovered:
                nursery.start_soon(self.resolve_unknown, cid)
        return [ledger.orders[cid] for cid in recovered]

    # -- the venue -------------------------------------------------------------------------------------------------

    async def _apply_found(self, cid: str, found: VenueOrder) -> None:
        order = self._ledger.orders[cid]
        if found.size_matched > order.filled:
            await self._sync_trades(order)
        await self._events.on_venue_order(found)

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
