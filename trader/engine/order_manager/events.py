"""Venue events: what the venue reports of our orders and trades, applied to the orders and the portfolio.

Venue events (`on_venue_order`, `on_trade`; `OrderManager.handle_venue_event` dispatches) are keyed by the venue's
order id: the ledger maps it to our client order id, and an event for an id we do not know is counted
(`unknown_events`) and dropped. Order updates become `OrderAccepted`, `OrderCanceled`, `OrderKilled`
(`apply_venue_status`, which the submit path uses for the venue's reply too); trades become fills (order and
portfolio) on first sight, are settled when CONFIRMED, and a FAILED trade reverses exactly its fill in the order and
in the portfolio (also after MINED or RETRYING). A trade's statuses follow `trader.domain.orders.TRADE_TRANSITIONS`:
MATCHED / MATCHED_NOT_BROADCASTED, MINED, RETRYING (back to MINED or CONFIRMED, or on to FAILED); a status out of
order is counted (`late_events`) and ignored. A status the venue adapter did not know (`TradeStatus.UNKNOWN`) is
counted (`unknown_trade_statuses`) and changes nothing: a trade seen first so is applied as MATCHED (the match
happened; nothing is settled), a known one keeps its status.

An event about an UNKNOWN order (`trader.engine.order_manager.resolve`) is the venue showing it: it moves the order on
(a MATCHED order is acknowledged, its fills follow as trades), its intent is recorded ACKED, and a cancel deferred
meanwhile goes out (`Canceller.on_changed`).

A fill of an order closed without one (REJECTED, or closed as not found or never sent) is applied to the position all
the same and reported: counted (`late_fills`), an `OrderLateFill` event, and an error log line, since a verdict we gave
was wrong. A LIVE order that we had closed as not found (a "ghost" that landed late) is cancelled at once; so is an
order that lands while sending is blocked, before we ever heard of it (its request was on the wire when an emergency
stop cancelled its task, and it reached the venue after the cancel-all).
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus, TradeStatus
from trader.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderFillReversed,
    OrderKilled,
    OrderLateFill,
    OrderReason,
)
from trader.domain.numbers import ZERO
from trader.domain.orders import Order, Trade
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager.cancels import Canceller
from trader.engine.order_manager.guard import CANCEL_ENDPOINT, VenueGuard
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.reasons import SUBMIT_NOT_FOUND
from trader.integrations.store.base import IntentState
from trader.venues.base import Venue, VenueOrder, VenueOrderStatus, VenueTrade
from trader.venues.errors import VenueError

__all__ = ["VenueEventHandler"]

log = structlog.get_logger(__name__)

#: Reasons an order is closed with, without the venue showing that no fill could come (a fill then is a late fill).
_CLOSED_WITHOUT_FILL = frozenset({SUBMIT_NOT_FOUND, OrderReason.NEVER_SENT})


class VenueEventHandler:
    """See the module docstring. Keeps the trades of ours it saw, and the fill each became, for as long as the ledger
    keeps their order (`settled` tells it when nothing more is expected of them)."""

    def __init__(self, venue: Venue, ledger: OrderLedger, guard: VenueGuard, canceller: Canceller) -> None:
        self._venue = venue
        self._ledger = ledger
        self._guard = guard
        self._canceller = canceller
        self._trades: dict[tuple[str, str], Trade] = {}
        self._fills: dict[tuple[str, str], OrderFilled] = {}
        self._keys_of: dict[str, list[tuple[str, str]]] = {}  # order id -> its trades' keys
        ledger.may_forget = self.settled
        ledger.on_forget(self._forget)

    def settled(self, order: Order) -> bool:
        """Every trade of the order is final (CONFIRMED or FAILED): no status change is still expected."""
        return all(self._trades[key].status.is_terminal for key in self._keys_of.get(order.order_id, ()))

    def _forget(self, order: Order) -> None:
        for key in self._keys_of.pop(order.order_id, ()):
            self._trades.pop(key, None)
            self._fills.pop(key, None)

    def _unknown(self, order_id: str, what: str, **fields: object) -> None:
        ledger = self._ledger
        if ledger.was_forgotten(order_id):  # a closed, settled order's news sent again: nothing to apply
            ledger.counts["late_events"] += 1
            log.debug(f"{what}_of_forgotten_order", order_id=order_id, **fields)
            return
        ledger.counts["unknown_events"] += 1
        log.warning(what, order_id=order_id, **fields)

    # -- orders ---------------------------------------------------------------------------------------------------

    async def on_venue_order(self, event: VenueOrder) -> None:
        ledger = self._ledger
        cid = ledger.by_venue_id.get(event.order_id)
        if cid is None:
            self._unknown(event.order_id, "venue_order_unknown", status=event.status)
            return
        order = ledger.orders[cid]
        if (
            event.status is VenueOrderStatus.LIVE
            and order.status is OrderStatus.CANCELED
            and order.reason == SUBMIT_NOT_FOUND
        ):
            ledger.counts["ghost_orders"] += 1
            log.error("ghost_order_live", client_order_id=cid, order_id=event.order_id)
            try:
                await self._guard.call(CANCEL_ENDPOINT, partial(self._venue.cancel, event.order_id))
            except (CircuitOpenError, VenueError, trio.TooSlowError) as exc:
                log.error("ghost_order_cancel_failed", client_order_id=cid, error=repr(exc))
            return
        blocked = self._guard.sending_blocked
        unconfirmed = order.status in (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN)
        landed = event.status is VenueOrderStatus.LIVE and unconfirmed
        if landed and blocked is not None:
            # Its request was on the wire when sending was blocked (an emergency stop cancelled its task) and it
            # reached the venue after the cancel-all: pull it now (the cancel goes out below, once it is applied).
            log.error("order_landed_while_blocked", client_order_id=cid, order_id=event.order_id, blocked=blocked)
            self._canceller.defer(cid, blocked)
        ledger.note_matched(cid, event.size_matched)
        self.apply_venue_status(order, event.status, event.size_matched)
        await self._changed(cid, was_unknown=order.status is OrderStatus.UNKNOWN)

    def apply_venue_status(self, order: Order, status: VenueOrderStatus, size_matched: Decimal) -> None:
        """The domain event the venue's status of an order means (its reply to the submit, or an order update)."""
        ledger = self._ledger
        cid, ts = order.client_order_id, ledger.now()
        if status in (VenueOrderStatus.LIVE, VenueOrderStatus.DELAYED, VenueOrderStatus.UNMATCHED):
            ledger.apply(OrderAccepted(client_order_id=cid, ts=ts))
        elif status is VenueOrderStatus.CANCELED:
            if not order.order_type.rests:
                matched = max(size_matched, order.filled)
                kill = OrderReason.FAK_REMAINDER_CANCELED if matched else OrderReason.FOK_NOT_FILLED
                ledger.apply(OrderKilled(client_order_id=cid, ts=ts, reason=kill))
            else:
                reason = self._canceller.reason_for(cid) or OrderReason.CANCELED_BY_VENUE
                ledger.apply(OrderCanceled(client_order_id=cid, ts=ts, reason=reason))
        elif status is VenueOrderStatus.MATCHED and not order.order_type.rests and ZERO < size_matched < order.size:
            # A FAK matched in part: its remainder is gone (the fills arrive as trades).
            ledger.apply(OrderKilled(client_order_id=cid, ts=ts, reason=OrderReason.FAK_REMAINDER_CANCELED))
        elif status is VenueOrderStatus.MATCHED and order.status is OrderStatus.UNKNOWN:
            # The venue has it, matched: no longer unknown (the fills arrive as trades and complete it).
            ledger.apply(OrderAccepted(client_order_id=cid, ts=ts))
        # MATCHED in full: the fills arrive as trades and complete the order.

    async def _changed(self, cid: str, *, was_unknown: bool) -> None:
        """Persist an order an event changed; if it was UNKNOWN and no longer is, its intent is resolved (the venue
        has it); a cancel deferred until its id was confirmed goes out now."""
        ledger = self._ledger
        if was_unknown and cid not in ledger.unresolved:
            await ledger.resolve_intent(cid, IntentState.ACKED)
        await ledger.save_order(cid)
        await self._canceller.on_changed(cid)

    # -- trades -----------------------------------------------------------------------------------------------------

    async def on_trade(self, event: VenueTrade) -> None:
        ledger = self._ledger
        cid = ledger.by_venue_id.get(event.order_id)
        if cid is None:
            self._unknown(event.order_id, "venue_trade_unknown_order", trade_id=event.trade_id)
            return
        key = (event.trade_id, event.order_id)
        known = self._trades.get(key)
        if known is None:
            await self._first_sight(cid, key, event)
            return
        if event.status is known.status:
            return
        if event.status is TradeStatus.UNKNOWN:
            ledger.counts["unknown_trade_statuses"] += 1
            log.warning("trade_status_unknown_kept", trade_id=event.trade_id, kept=known.status)
            return
        if not known.can_transition(event.status):
            ledger.counts["late_events"] += 1
            log.warning("trade_status_out_of_order", trade_id=event.trade_id, known=known.status, got=event.status)
            return
        trade = known.apply_status(event.status, event.ts)
        self._trades[key] = trade
        ledger.emit_trade_status(trade, known.status)
        if event.status is TradeStatus.FAILED:
            self._reverse(cid, key, trade)
        elif event.status is TradeStatus.CONFIRMED:
            ledger.counts["trades_confirmed"] += 1
            ledger.portfolio.settle(trade.token_id, trade.trade_id)
        await ledger.save_trade(trade)
        await ledger.save_order(cid)
        await ledger.save_position(trade.token_id)

    async def _first_sight(self, cid: str, key: tuple[str, str], event: VenueTrade) -> None:
        ledger = self._ledger
        order = ledger.orders[cid]
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
        self._keys_of.setdefault(event.order_id, []).append(key)
        if event.status is TradeStatus.FAILED:
            # Failed before we ever applied it: record it, change nothing.
            self._trades[key] = trade.apply_status(TradeStatus.FAILED, event.ts)
            await ledger.save_trade(self._trades[key])
            return
        if event.status is TradeStatus.UNKNOWN:
            ledger.counts["unknown_trade_statuses"] += 1
            log.warning("trade_status_unknown_kept", trade_id=event.trade_id, kept=TradeStatus.MATCHED)
        fill = trade.fill_event(fill_id=f"{event.trade_id}:{event.order_id}")
        self._fills[key] = fill
        ledger.counts["fills"] += 1
        if order.status is OrderStatus.REJECTED or (order.is_terminal and order.reason in _CLOSED_WITHOUT_FILL):
            self._late_fill(order, event)
        if order.can_apply(fill):
            ledger.apply(fill)
        else:
            # The venue says we traded: the position must follow it even if our order record cannot.
            ledger.counts["late_events"] += 1
            log.error("fill_not_applicable", client_order_id=cid, status=order.status, trade_id=event.trade_id)
        ledger.portfolio.apply_fill(fill)
        if event.status not in (TradeStatus.MATCHED, TradeStatus.UNKNOWN):
            trade = trade.apply_status(event.status, event.ts)
            if event.status is TradeStatus.CONFIRMED:
                ledger.counts["trades_confirmed"] += 1
                ledger.portfolio.settle(trade.token_id, trade.trade_id)
        self._trades[key] = trade
        log.info(
            "order_filled",
            client_order_id=cid,
            side=str(event.side),
            token_id=event.token_id,
            trade_id=event.trade_id,
            price=str(event.price),
            size=str(event.size),
            liquidity=event.liquidity,
        )
        await ledger.save_trade(trade)
        await self._changed(cid, was_unknown=order.status is OrderStatus.UNKNOWN)
        await ledger.save_position(trade.token_id)

    def _late_fill(self, order: Order, event: VenueTrade) -> None:
        """A fill of an order we had closed without one: applied all the same (by the caller), and reported."""
        ledger = self._ledger
        ledger.counts["late_fills"] += 1
        log.error(
            "late_fill",
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            status=order.status,
            reason=order.reason,
            trade_id=event.trade_id,
            size=str(event.size),
            price=str(event.price),
        )
        ledger.emit(
            OrderLateFill(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                trade_id=event.trade_id,
                token_id=event.token_id,
                side=event.side,
                price=event.price,
                size=event.size,
                status=str(order.status),
                reason=order.reason,
                ts=ledger.now(),
            )
        )

    def _reverse(self, cid: str, key: tuple[str, str], trade: Trade) -> None:
        ledger = self._ledger
        ledger.counts["trades_failed"] += 1
        log.error("trade_failed_reversed", client_order_id=cid, trade_id=trade.trade_id, size=str(trade.size))
        reversal = OrderFillReversed(client_order_id=cid, trade_id=trade.trade_id, ts=ledger.now())
        order = ledger.orders[cid]
        if order.can_apply(reversal) and any(f.trade_id == trade.trade_id for f in order.fills):
            ledger.apply(reversal)
        fill = self._fills.get(key)
        position = ledger.portfolio.position(trade.token_id)
        if fill is not None and any(e.key == fill.key for e in position.unsettled):
            ledger.portfolio.reverse_fill(fill)
