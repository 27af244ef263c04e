"""The order ledger: the orders one manager sent, the state machine applied to them, and what it writes.

`OrderLedger` holds every order by client order id, with its indexes (by the venue's order id, which is computed
locally before sending; the open orders and the UNKNOWN ones, kept as states change; the creation rank), when each
UNKNOWN order's request was sent, and what the venue reported matched. Every change of an order goes through `apply`
(the domain state machine, `trader.domain.orders`): an event the order's state no longer accepts is counted
(`late_events`) and not applied; an applied one wakes whoever waits on that order and goes to the listeners and the
recent-events ring.

It also writes to the store what it holds (orders, trades, positions, how intents were resolved): a failed write is
counted (`store_errors`) and logged, and trading goes on. The write-ahead intent itself is the submit path's
(`trader.engine.order_manager.submit`): there, a failed write means the order is not sent.

Memory is bounded by what is recent, not by the session: a closed order is forgotten (with what the other parts keep
about it: its trades, its cancel reason) once it has been closed for `forget_after_secs` and nothing about it is
outstanding (its outcome known, every fill the venue reported applied, every trade settled: `may_forget`), and, past
`max_closed` closed orders, the oldest of those go at once. The store keeps them all. A later event about a forgotten
order (a settlement status sent again) is counted as `late_events`, and its client order id is not taken again.
Forgetting costs what is due: the closed orders are kept oldest first, each close looks at a few of them, and the
periodic housekeeping (`OrderManager.forget_closed`, from execution's reconcile loop) at all.

The other parts of the package (submit, resolve, cancels, venue events) share one ledger and its `counts`.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus, TradeStatus
from trader.domain.events import OrderEvent, TradeStatusChanged
from trader.domain.numbers import ZERO
from trader.domain.orders import Order, Trade
from trader.domain.positions import Portfolio
from trader.engine.order_manager.reasons import SUBMIT_NOT_FOUND
from trader.integrations.store.base import (
    IntentRecord,
    IntentState,
    OrderRecord,
    Store,
    StoreError,
    TradeRecord,
    secs_to_ns,
)

__all__ = ["OrderLedger"]

log = structlog.get_logger(__name__)

#: Closed orders looked at per call of `forget_closed` at most (what is due goes first; the rest waits its turn).
_FORGET_BATCH = 8


class OrderLedger:
    """See the module docstring. Not thread-safe: one Trio thread owns it."""

    def __init__(
        self,
        store: Store,
        portfolio: Portfolio,
        *,
        wall_ns: Callable[[], int],
        recent_events: int,
        forget_after_secs: float = 600.0,
        max_closed: int = 10_000,
    ) -> None:
        self.store = store
        self.portfolio = portfolio
        self.wall_ns = wall_ns
        self.orders: dict[str, Order] = {}
        # The open orders (sent, not terminal), kept as states change: the risk gate asks for them on every intent,
        # and scanning every order ever placed grew with the session. `rank` is each order's creation rank, so
        # views list open orders in creation order, as `orders` does.
        self.open: dict[str, Order] = {}
        self.rank: dict[str, int] = {}
        self.by_venue_id: dict[str, str] = {}
        self._ranks = itertools.count()
        #: The UNKNOWN orders (their submit's outcome unknown), kept by `put`; `sent_at`: the Trio time each one's
        #: request left (the window for the venue's answer starts there).
        self.unresolved: set[str] = set()
        self.sent_at: dict[str, float] = {}
        self.venue_matched: dict[str, Decimal] = {}  # the most the venue said matched, per client order id
        # Closed orders, oldest first, with the wall time they closed (or were last found not forgettable).
        self.closed: OrderedDict[str, float] = OrderedDict()
        self.forget_after_secs = forget_after_secs
        self.max_closed = max_closed
        #: whether nothing more is expected about a closed order (the venue-event part: its trades settled)
        self.may_forget: Callable[[Order], bool] = lambda _order: True
        self._on_forget: list[Callable[[Order], None]] = []
        # The ids of forgotten orders (as many as `max_closed`): a later event about one is late, not unknown.
        self.forgotten: OrderedDict[str, None] = OrderedDict()
        #: The manager's counters (statistics), shared by the parts of the package; the guard keeps its own.
        self.counts: Counter[str] = Counter()
        self._waiters: dict[str, trio.Event] = {}
        self._listeners: list[Callable[[object], None]] = []
        self._recent: deque[object] = deque(maxlen=recent_events)

    def now(self) -> float:
        """Wall-clock epoch seconds, the timestamps of domain events."""
        return self.wall_ns() / 1e9

    # -- orders ---------------------------------------------------------------------------------------------------

    def add(self, order: Order) -> None:
        """A new order (CREATED, or rebuilt at start), found from now on by its client and its venue order id."""
        self.put(order)
        self.by_venue_id[order.order_id] = order.client_order_id

    def put(self, order: Order) -> None:
        """The one place an order's state is stored: keeps the open-orders index in step."""
        cid = order.client_order_id
        if cid not in self.rank:
            self.rank[cid] = next(self._ranks)
        self.orders[cid] = order
        if order.status is OrderStatus.UNKNOWN:
            self.unresolved.add(cid)
        elif cid in self.unresolved:  # the venue showed it, or (after the window) its absence
            self.unresolved.discard(cid)
            self.sent_at.pop(cid, None)
            self.counts["resolved_not_found" if order.reason == SUBMIT_NOT_FOUND else "resolved_found"] += 1
        if order.is_open:
            self.open[cid] = order
        else:
            self.open.pop(cid, None)
            if order.is_terminal and cid not in self.closed:
                self.closed[cid] = self.now()
                self.forget_closed()

    # -- forgetting what is over ----------------------------------------------------------------------------------

    def on_forget(self, callback: Callable[[Order], None]) -> None:
        """`callback(order)` when an order is forgotten: drop what else is kept about it."""
        self._on_forget.append(callback)

    def forget_closed(self, batch: int = _FORGET_BATCH) -> None:
        """Forget the closed orders that are due (see the module docstring), looking at `batch` of the oldest at
        most (each close looks at a few; the periodic housekeeping at all of them)."""
        closed = self.closed
        horizon = self.now() - self.forget_after_secs
        for _ in range(min(batch, len(closed))):
            cid, since = next(iter(closed.items()))
            if since > horizon and len(closed) <= self.max_closed:
                return
            del closed[cid]
            order = self.orders[cid]
            if cid in self.unresolved or cid in self._waiters or self.awaiting_fills(cid) or not self.may_forget(order):
                closed[cid] = self.now()  # something is still expected: looked at again later
                continue
            self._forget(order)

    def _forget(self, order: Order) -> None:
        cid = order.client_order_id
        del self.orders[cid]
        self.rank.pop(cid, None)
        self.by_venue_id.pop(order.order_id, None)
        self.venue_matched.pop(cid, None)
        for callback in self._on_forget:
            callback(order)
        for key in (cid, order.order_id):
            self.forgotten[key] = None
        while len(self.forgotten) > 2 * self.max_closed:
            self.forgotten.popitem(last=False)
        self.counts["orders_forgotten"] += 1

    def was_forgotten(self, order_or_client_id: str) -> bool:
        """An order (by its venue id or client id) that was closed and forgotten, not one never known."""
        return order_or_client_id in self.forgotten

    def open_orders(self) -> list[Order]:
        """Orders sent and not terminal, in creation order (from an index: costs what is open, not what was sent)."""
        rank = self.rank
        return sorted(self.open.values(), key=lambda o: rank[o.client_order_id])

    def note_matched(self, cid: str, size_matched: Decimal) -> None:
        if size_matched > self.venue_matched.get(cid, ZERO):
            self.venue_matched[cid] = size_matched

    def awaiting_fills(self, cid: str) -> Decimal:
        """Shares the venue reported matched (submit reply, order events) whose trades have not arrived yet."""
        order = self.orders[cid]
        reported = self.venue_matched.get(cid, ZERO)
        reversed_size = sum((f.size for f in order.reversed_fills), ZERO)
        return max(reported - order.filled - reversed_size, ZERO)

    # -- the state machine ------------------------------------------------------------------------------------

    def apply(self, event: OrderEvent) -> Order | None:
        cid = event.client_order_id
        order = self.orders[cid]
        if not order.can_apply(event):
            self.counts["late_events"] += 1
            # not `event=`: structlog's first positional argument is the event name
            log.info(
                "order_event_not_applicable", client_order_id=cid, status=order.status, event_type=type(event).__name__
            )
            return None
        updated = order.apply(event)
        if updated is order:
            return order
        self.put(updated)
        waiter = self._waiters.pop(cid, None)
        if waiter is not None:
            waiter.set()
        self.emit(event)
        return updated

    async def wait_until(self, cid: str, predicate: Callable[[Order], bool]) -> Order:
        """Wait until the order satisfies `predicate` (checked now and after each change); the caller sets the
        deadline."""
        while True:
            order = self.orders[cid]
            if predicate(order):
                return order
            event = self._waiters.get(cid)
            if event is None:
                event = self._waiters[cid] = trio.Event()
            await event.wait()

    # -- domain events out ------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[object], None]) -> None:
        self._listeners.append(listener)

    def recent_events(self) -> list[object]:
        return list(self._recent)

    def emit(self, event: object) -> None:
        self._recent.append(event)
        for listener in self._listeners:
            listener(event)

    def emit_trade_status(self, trade: Trade, previous: TradeStatus) -> None:
        self.emit(TradeStatusChanged(trade_id=trade.trade_id, previous=previous, status=trade.status, ts=self.now()))

    # -- persistence (failures are counted and logged; trading goes on) -----------------------------------------

    def intent_record(self, order: Order, group_id: str | None) -> IntentRecord:
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

    async def resolve_intent(self, cid: str, state: IntentState, *, reason: str | None = None) -> None:
        await self.store_call(
            partial(
                self.store.resolve_intent,
                cid,
                state,
                ts_ns=self.wall_ns(),
                order_id=self.orders[cid].order_id,
                reason=reason,
            )
        )

    async def save_order(self, cid: str) -> None:
        order = self.orders[cid]
        await self.store_call(partial(self.store.record_order, OrderRecord.of(order), reason=order.reason))

    async def save_trade(self, trade: Trade) -> None:
        await self.store_call(partial(self.store.record_trade, TradeRecord.of(trade)))

    async def save_position(self, token_id: str) -> None:
        position = self.portfolio.position(token_id)
        await self.store_call(partial(self.store.record_position, position, ts_ns=self.wall_ns()))

    async def store_call(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except StoreError as exc:
            self.counts["store_errors"] += 1
            log.error("store_write_failed", error=str(exc))
