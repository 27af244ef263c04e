"""Restart: bring the store up to date with the venue before a (re)started engine trades.

Positions are rebuilt from the stored trades when a write was lost; pending intents are left to the order manager
(it resolves each by its order id); in live mode every order the store has open, and every open order of ours the
store does not know, is looked up at the venue, cancelled if still resting (a restarted engine does not adopt
orders), and recorded with its final state; fills the venue has and the store lacks are recorded. Nothing is sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TypeVar

import structlog
import trio

from trader.domain.enums import OrderStatus, TradeStatus
from trader.domain.errors import InvariantViolation
from trader.domain.events import OrderFilled
from trader.domain.numbers import ZERO
from trader.domain.orders import TRADE_TRANSITIONS
from trader.domain.positions import Position
from trader.errors import TraderError
from trader.integrations.store.base import CapitalOpState, OrderRecord, Store, TradeRecord, secs_to_ns
from trader.venues.base import Venue, VenueOrder, VenueOrderStatus, VenueTrade

log = structlog.get_logger(__name__)

__all__ = [
    "ENGINE_RESTARTED",
    "RESTART_CANCELED",
    "VENUE_NOT_FOUND",
    "RestartReport",
    "reconcile_at_start",
    "trade_record_of",
]

RESTART_CANCELED = "RESTART_CANCELED"  # resting at restart: cancelled (a restarted engine does not adopt orders)
ENGINE_RESTARTED = "ENGINE_RESTARTED"  # a paper order the restarted engine no longer has
VENUE_NOT_FOUND = "VENUE_NOT_FOUND"  # open in the store, unknown to the venue at restart

#: Deadline of the restart reconciliation's venue calls (each).
_RECONCILE_CALL_SECS = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartReport:
    """What the engine found in the store at start, and what it did about it (before trading)."""

    pending_intents: int  # left to the order manager: each resolved by its order id
    open_orders: int  # orders the store had open (pending intents aside)
    closed: int  # of those, recorded with the final state the venue gave (or closed: paper, not found)
    canceled: int  # still resting at the venue (or unknown to the store): cancelled now
    unknown_to_store: int  # open at the venue, not in the store: recorded, and cancelled
    trades_recovered: int  # trades of ours the venue has and the store did not
    trades_updated: int  # stored trades whose settlement status moved on meanwhile
    positions_rebuilt: tuple[str, ...]  # tokens whose stored position disagreed with the stored trades


def _closed_record(base: OrderRecord, found: VenueOrder | None, *, reason: str, now_ns: int) -> OrderRecord:
    """The stored order, with what the venue says of it now (`found`; None: the venue does not know it)."""
    if found is None:
        return dataclasses.replace(base, status=OrderStatus.CANCELED, reason=VENUE_NOT_FOUND, updated_at_ns=now_ns)
    matched = max(found.size_matched, base.size_matched)
    if found.status in (VenueOrderStatus.LIVE, VenueOrderStatus.DELAYED, VenueOrderStatus.UNMATCHED):
        status = OrderStatus.PARTIALLY_FILLED if matched else OrderStatus.ACCEPTED
        return dataclasses.replace(base, status=status, size_matched=matched, updated_at_ns=now_ns)
    if matched >= base.original_size:
        return dataclasses.replace(base, status=OrderStatus.FILLED, size_matched=matched, updated_at_ns=now_ns)
    return dataclasses.replace(
        base, status=OrderStatus.CANCELED, size_matched=matched, reason=reason, updated_at_ns=now_ns
    )


def _record_of(order: VenueOrder, *, now_ns: int) -> OrderRecord:
    """A store row for an order of ours the store did not have (no client id or strategy is known for it)."""
    return OrderRecord(
        order_id=order.order_id,
        client_order_id=None,
        strategy=None,
        condition_id=None,
        token_id=order.token_id,
        side=order.side,
        price=order.price,
        original_size=order.original_size,
        size_matched=order.size_matched,
        order_type=order.order_type,
        status=OrderStatus.ACCEPTED,
        created_at_ns=secs_to_ns(order.ts),
        updated_at_ns=now_ns,
    )


def trade_record_of(trade: VenueTrade, client_order_id: str | None) -> TradeRecord:
    """The store row of a trade as the venue reports it (a status the adapter did not know is stored as MATCHED: the
    match happened, nothing is settled; the venue's next known status moves it on)."""
    return TradeRecord(
        trade_id=trade.trade_id,
        order_id=trade.order_id,
        client_order_id=client_order_id,
        token_id=trade.token_id,
        side=trade.side,
        price=trade.price,
        size=trade.size,
        fee=trade.fee,
        fee_shares=trade.fee_shares,
        liquidity=trade.liquidity,
        status=TradeStatus.MATCHED if trade.status is TradeStatus.UNKNOWN else trade.status,
        match_time_ns=secs_to_ns(trade.match_ts),
        updated_at_ns=secs_to_ns(trade.ts),
    )


async def _venue_call(fn: Callable[[], Awaitable[T]]) -> T:
    with trio.fail_after(_RECONCILE_CALL_SECS):
        return await fn()


async def reconcile_at_start(
    store: Store, venue: Venue | None, *, lookback_secs: float = 3600.0, now: Callable[[], float] = time.time
) -> RestartReport:
    """Bring the store up to date with the venue before trading (see the module docstring). `venue` is None in paper
    mode: the paper venue starts empty, so orders the store has open are closed (`ENGINE_RESTARTED`).

    Writes go straight to `store` (not queued): trading starts on what they say. Venue errors propagate."""
    pending = await store.load_pending_intents()
    pending_ids = {p.order_id for p in pending if p.order_id is not None}
    stored_open = {o.order_id: o for o in await store.load_open_orders() if o.order_id not in pending_ids}
    now_ns = secs_to_ns(now())
    counts: Counter[str] = Counter()
    if venue is None:
        for stale in stored_open.values():
            gone = dataclasses.replace(
                stale, status=OrderStatus.CANCELED, reason=ENGINE_RESTARTED, updated_at_ns=now_ns
            )
            await store.record_order(gone, reason=ENGINE_RESTARTED)
            counts["closed"] += 1
    else:
        await _reconcile_orders(store, venue, stored_open, pending_ids, now_ns, counts)
        since = _trades_since(await store.load_trades(), stored_open.values(), now(), lookback_secs)
        await _reconcile_trades(store, venue, since, stored_open, pending_ids, now_ns, counts)
    rebuilt = await _rebuild_positions(store, now_ns)
    report = RestartReport(
        pending_intents=len(pending),
        open_orders=len(stored_open),
        closed=counts["closed"],
        canceled=counts["canceled"],
        unknown_to_store=counts["unknown"],
        trades_recovered=counts["recovered"],
        trades_updated=counts["updated"],
        positions_rebuilt=rebuilt,
    )
    if any(dataclasses.astuple(report)):
        log.warning("restart_reconciled", **dataclasses.asdict(report))
    return report


async def _reconcile_orders(  # noqa: PLR0917
    store: Store,
    venue: Venue,
    stored_open: Mapping[str, OrderRecord],
    pending_ids: set[str],
    now_ns: int,
    counts: Counter[str],
) -> None:
    """Every order the store has open, and every open order of ours the store does not know (pending intents aside:
    the order manager resolves those): cancelled if still resting, recorded with the venue's final state."""
    at_venue = {o.order_id: o for o in await _venue_call(venue.open_orders)}
    for order_id in sorted((set(stored_open) | set(at_venue)) - pending_ids):
        record = stored_open.get(order_id) or await store.load_order(order_id)
        if order_id in at_venue:
            result = await _venue_call(partial(venue.cancel, order_id))
            if order_id in result.canceled:
                counts["canceled"] += 1
            else:
                log.error("restart_cancel_refused", order_id=order_id, reason=result.not_canceled.get(order_id))
        found = await _venue_call(partial(venue.lookup, order_id))
        if record is None:
            if found is None:
                continue
            counts["unknown"] += 1
            log.error("restart_order_unknown_to_store", order_id=order_id, status=str(found.status))
            record = _record_of(found, now_ns=now_ns)
        final = _closed_record(record, found, reason=RESTART_CANCELED, now_ns=now_ns)
        await store.record_order(final, reason=final.reason)
        if order_id in stored_open and not final.status.is_open:
            counts["closed"] += 1


async def _reconcile_trades(  # noqa: PLR0917
    store: Store,
    venue: Venue,
    since: float,
    stored_open: Mapping[str, OrderRecord],
    pending_ids: set[str],
    now_ns: int,
    counts: Counter[str],
) -> None:
    """Our trades at the venue since `since` that the store lacks (or has with an older settlement status)."""
    stored = {(t.trade_id, t.order_id): t for t in await store.load_trades(since_ns=secs_to_ns(since))}
    for trade in await _venue_call(partial(venue.trades, since_ts=since)):
        if trade.order_id in pending_ids:
            continue  # the order manager resolves it, trades included
        known = stored.get((trade.trade_id, trade.order_id))
        if known is not None:
            if trade.status in TRADE_TRANSITIONS.get(known.status, ()):  # settlement moved on (UNKNOWN: kept as it was)
                await store.record_trade(dataclasses.replace(known, status=trade.status, updated_at_ns=now_ns))
                counts["updated"] += 1
            continue
        record = stored_open.get(trade.order_id) or await store.load_order(trade.order_id)
        if record is None:
            found = await _venue_call(partial(venue.lookup, trade.order_id))
            if found is not None:
                counts["unknown"] += 1
                log.error("restart_order_unknown_to_store", order_id=trade.order_id, status=str(found.status))
                record = _closed_record(_record_of(found, now_ns=now_ns), found, reason=RESTART_CANCELED, now_ns=now_ns)
                await store.record_order(record, reason=record.reason)
        await store.record_trade(trade_record_of(trade, None if record is None else record.client_order_id))
        stored[(trade.trade_id, trade.order_id)] = trade_record_of(trade, None)
        counts["recovered"] += 1
        log.warning("restart_trade_recovered", trade_id=trade.trade_id, order_id=trade.order_id)


def _trades_since(
    trades: Sequence[TradeRecord], open_orders: Iterable[OrderRecord], now: float, lookback_secs: float
) -> float:
    """From when to ask the venue for our trades: before the last stored trade and the oldest open order."""
    start = now
    if trades:
        start = min(start, max(t.match_time_ns for t in trades) / 1e9)
    for order in open_orders:
        start = min(start, order.created_at_ns / 1e9)
    return start - lookback_secs


async def _rebuild_positions(store: Store, now_ns: int) -> tuple[str, ...]:
    """Rebuild (from the stored trades, in match order) every position whose stored quantity disagrees with them:
    a position write lost in a crash after its trade landed.

    Merges and redemptions change positions too: what confirmed ones took is subtracted before comparing, and a
    position a merge or redemption touched is never rebuilt from its trades alone (that would buy back what was
    merged); one that still disagrees is reported (`position_mismatch`) and left as stored, for `trader reconcile`."""
    by_token: dict[str, list[TradeRecord]] = {}
    for trade in await store.load_trades():
        if trade.status is not TradeStatus.FAILED:
            by_token.setdefault(trade.token_id, []).append(trade)
    stored = {p.token_id: p for p in await store.load_positions()}
    taken: dict[str, Decimal] = {}  # token -> shares confirmed merges and redemptions took
    touched: set[str] = set()  # tokens of any merge or redemption
    for op in await store.load_capital_ops():
        touched.update((op.yes_token_id, op.no_token_id))
        if op.state is CapitalOpState.CONFIRMED:
            for token, amount in ((op.yes_token_id, op.yes_amount), (op.no_token_id, op.no_amount)):
                taken[token] = taken.get(token, ZERO) + amount
    rebuilt: list[str] = []
    for token, trades in sorted(by_token.items()):
        position = Position(token_id=token)
        try:
            for t in sorted(trades, key=lambda t: (t.match_time_ns, t.trade_id, t.order_id)):
                fill = OrderFilled(
                    client_order_id=t.client_order_id or t.order_id,
                    trade_id=t.trade_id,
                    fill_id=f"{t.trade_id}:{t.order_id}",
                    token_id=token,
                    side=t.side,
                    price=t.price,
                    size=t.size,
                    liquidity=t.liquidity,
                    fee=t.fee,
                    fee_shares=t.fee_shares,
                    ts=t.match_time_ns / 1e9,
                )
                position = position.apply_fill(fill).settle(t.trade_id)
        except (InvariantViolation, TraderError) as exc:
            log.error("position_rebuild_failed", token_id=token, error=str(exc))
            continue
        known = stored.get(token)
        held = position.quantity - taken.get(token, ZERO)
        if known is not None and known.quantity == held:
            continue
        if token in touched:
            log.error(
                "position_mismatch",
                token_id=token,
                stored=None if known is None else str(known.quantity),
                from_trades_and_capital_ops=str(held),
            )
            continue
        if known is None or known.quantity != position.quantity:
            log.warning(
                "position_rebuilt",
                token_id=token,
                stored=None if known is None else str(known.quantity),
                from_trades=str(position.quantity),
            )
            await store.record_position(position, ts_ns=now_ns)
            rebuilt.append(token)
    return tuple(rebuilt)
