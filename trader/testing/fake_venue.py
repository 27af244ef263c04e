"""`FakeVenue`: a scripted `Venue` for tests, in the style of Trio's `Scenario` (fake networks with scripted outcomes).

It implements the `trader.venues.base.Venue` protocol (`prepare` numbers the orders: "0x" + 64 hex, 1, 2, ... per
fake; `lookup(order_id)` is the lookup by id that execution uses to resolve an ambiguous submit), keeps its own book of
orders, trades and positions, and records what it was asked:

- `submitted`: every order that reached it (including those whose reply never came back), `submit_times` (Trio clock);
- `canceled`: order ids it was asked to cancel (`cancel_batches`: the size of each `cancel_orders` request);
  `cancel_all_reasons`: the reasons of every cancel-all, with `cancel_all_times`; `lookups`: order ids it was asked
  about.

It is a `VenueAccount` too: `closed_only()` answers `closed_only_answer`, `rate_limit_tier()` `tier_answer`, and
`report_rate_limit(report)` hands a `RateLimitReport` to the listeners (what a reply's headers would say).

Outcomes are scripted per token (`script(token_id, Outcome(...), ...)`, consumed in order) with `default` for the
rest. An `Outcome` says how long the venue takes, what it answers (accept, reject, raise an error, or never answer),
how much matches on entry, and, for raise/hang, whether the order landed anyway (the ambiguous case).

It also answers `collateral()` (the `Capital` port's read of the wallet): `cash` (moved by its trades) with the
allowances a test lists in `missing_allowances`, counting the reads in `collateral_reads`; `collateral_error` (when
set) is raised instead.

Later events are pushed by the test: `land(order_id)` (an order that reached the venue without landing, scripted with
`lands=False`, lands now: a request held up on its way in, after the client gave up waiting), `fill(order_id, size)`
(a maker fill of a resting order), `set_trade_status(trade_id, status)` (MINED/CONFIRMED/FAILED: a FAILED trade is
undone in the fake's positions), `cancel_by_venue(order_id)`. Every change reaches the channels opened with
`open_events()`.

`check()` asserts the invariants a correct client keeps: no order id submitted twice (an ambiguous submit is resolved
by asking, never by resending; an order refused whole by a trading restriction, e.g. a 425, may be sent again),
nothing submitted while `halted` (set by the test to watch an emergency stop), no overfill, no negative position.

`MemoryStore` is an in-memory `Store` (what the SQLite store would hold), for tests that run on `MockClock`: the
SQLite store works in a worker thread, during which an autojump clock may jump.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

import trio

from trader.domain.enums import Liquidity, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order
from trader.venues.base import (
    Balances,
    CancelResult,
    Collateral,
    RateLimitListener,
    RateLimitReport,
    SubmitAccepted,
    SubmitRejected,
    SubmitResult,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
    check_batch,
    check_cancel_ids,
)
from trader.venues.errors import VenueError, VenueRejectCode

__all__ = ["FakeVenue", "Outcome"]

Reply = Literal["accept", "reject", "raise", "hang"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the fake does with one submit.

    - `delay_secs`: time before the order reaches the book (and before the reply).
    - `reply`: "accept" (SubmitAccepted), "reject" (SubmitRejected with `reason`), "raise" (raises `error` after
      the delay), "hang" (never answers: the caller's timeout fires).
    - `fill`: shares matched on entry at `fill_price` (default: the order's price). None means nothing for GTC/GTD
      and everything for FOK/FAK. A FAK's unmatched rest is cancelled at once; a FOK must be filled completely
      (script a reject otherwise).
    - `lands`: for "raise"/"hang", whether the venue took the order anyway (an ambiguous outcome).
    - `trade_status`: the settlement status of the trades made on entry.
    - `fee_shares`: a buy fee withheld in shares from the trade made on entry (as the paper venue does).
    - `silent`: the events of this submit (order update, trades on entry) are lost: only asking tells.
    """

    delay_secs: float = 0.0
    reply: Reply = "accept"
    fill: Decimal | None = None
    fill_price: Decimal | None = None
    reason: VenueRejectCode = VenueRejectCode.INVALID_ORDER
    message: str = ""
    error: VenueError | None = None
    lands: bool = True
    trade_status: TradeStatus = TradeStatus.MATCHED
    fee_shares: Decimal = ZERO
    silent: bool = False


@dataclass(slots=True)
class _FakeOrder:
    order: Order
    status: VenueOrderStatus
    matched: Decimal = ZERO


class FakeVenue:
    """A scripted venue. See the module docstring."""

    def __init__(self, *, cash: Decimal = Decimal(1_000_000), wall: float = 1_700_000_000.0) -> None:
        self.default = Outcome()
        self.cash = cash
        self.wall = wall  # the wall-clock epoch seconds its events carry
        self.halted = False  # set by a test: any submit while True is a violation that check() reports
        self.cancel_delay_secs = 0.0
        self.cancel_all_delay_secs = 0.0
        self.lookup_error: VenueError | None = None  # order() / open_orders() raise this when set
        self.missing_allowances: tuple[str, ...] = ()
        self.collateral_error: VenueError | None = None  # collateral() raises this when set
        self.collateral_reads = 0
        self.submitted: list[Order] = []
        self._submitted_ids: set[str] = set()  # the ids in `submitted`, for the resend check
        self.submit_times: list[float] = []
        self.canceled: list[str] = []
        self.cancel_batches: list[int] = []  # ids per cancel_orders request
        self.cancel_errors: list[VenueError] = []  # `cancel` raises these first, one per call (set by the test)
        self.cancel_all_reasons: list[str] = []
        self.cancel_all_times: list[float] = []
        self.lookups: list[str] = []
        self.violations: list[str] = []
        self._scripts: dict[str, list[Outcome]] = {}
        self._orders: dict[str, _FakeOrder] = {}
        self._trades: dict[str, VenueTrade] = {}
        self._positions: dict[str, Decimal] = {}
        self._subscribers: list[trio.MemorySendChannel[VenueEvent]] = []
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._submit_arrived = trio.Event()
        self._refused: set[str] = set()  # order ids refused by a trading restriction (may be sent again)
        self.closed_only_answer = False  # what `closed_only()` answers (set by the test)
        self.closed_only_asks = 0
        self.tier_answer: str | None = None  # what `rate_limit_tier()` answers
        self._rate_limit_listeners: list[RateLimitListener] = []

    # -- scripting ----------------------------------------------------------------------------------------------

    def script(self, token_id: str, *outcomes: Outcome) -> None:
        """Outcomes for the next submits of `token_id`, in order (then `default`)."""
        self._scripts.setdefault(token_id, []).extend(outcomes)

    def _next_outcome(self, order: Order) -> Outcome:
        queue = self._scripts.get(order.token_id)
        return queue.pop(0) if queue else self.default

    async def wait_submitted(self, count: int) -> None:
        """Wait until at least `count` orders reached the venue."""
        while len(self.submitted) < count:
            await self._submit_arrived.wait()

    # -- the Venue protocol ----------------------------------------------------------------------------------------

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        """The CREATED order with the fake's next id, deterministic and shaped like the venue's ("0x" + 64 hex).

        No checkpoint: numbering an order is instant, as computing an id locally is (a subclass may script more)."""
        return Order.from_intent(intent, order_id=f"0x{next(self._order_ids):064x}", ts=ts)

    async def submit(self, order: Order) -> SubmitResult:
        outcome = self._next_outcome(order)
        if outcome.delay_secs:
            await trio.sleep(outcome.delay_secs)
        else:
            await trio.lowlevel.checkpoint()
        self._record_arrival(order)
        if outcome.reply == "reject":
            return SubmitRejected(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                reason=outcome.reason,
                message=outcome.message,
            )
        if outcome.reply in ("raise", "hang") and not outcome.lands:
            return await self._fail(outcome, order)
        status, trade_ids = self._land(order, outcome)
        if outcome.reply in ("raise", "hang"):
            return await self._fail(outcome)
        fake = self._orders[order.order_id]
        return SubmitAccepted(
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            status=status,
            filled_size=fake.matched,
            filled_notional=sum((self._trades[t].price * self._trades[t].size for t in trade_ids), ZERO),
            trade_ids=trade_ids,
        )

    async def _fail(self, outcome: Outcome, order: Order | None = None) -> SubmitResult:
        if outcome.reply == "hang":
            await trio.sleep_forever()
        assert outcome.error is not None, "an Outcome with reply='raise' needs an error"
        if order is not None and getattr(outcome.error, "restriction", None) is not None:
            self._refused.add(order.order_id)  # a trading restriction: the venue took nothing
        raise outcome.error

    def _record_arrival(self, order: Order) -> None:
        if order.order_id in self._refused:  # refused as a whole before (a restriction): it may come again
            self._refused.discard(order.order_id)
        elif order.order_id in self._submitted_ids:
            self.violations.append(f"order {order.order_id} submitted twice")
        self._submitted_ids.add(order.order_id)
        if self.halted:
            self.violations.append(f"order {order.client_order_id} submitted while halted")
        self.submitted.append(order)
        self.submit_times.append(trio.current_time())
        self._submit_arrived.set()
        self._submit_arrived = trio.Event()

    def _land(self, order: Order, outcome: Outcome) -> tuple[VenueOrderStatus, tuple[str, ...]]:
        immediate = not order.order_type.rests
        fill = outcome.fill if outcome.fill is not None else (order.size if immediate else ZERO)
        fake = _FakeOrder(order=order, status=VenueOrderStatus.LIVE)
        self._orders[order.order_id] = fake
        trade_ids: list[str] = []
        if fill > ZERO:
            price = outcome.fill_price if outcome.fill_price is not None else order.price
            trade_ids.append(
                self._trade(
                    fake,
                    fill,
                    price,
                    Liquidity.TAKER,
                    outcome.trade_status,
                    fee_shares=outcome.fee_shares,
                    emit=not outcome.silent,
                )
            )
        if fake.matched >= order.size:
            fake.status = VenueOrderStatus.MATCHED
        elif immediate:
            fake.status = VenueOrderStatus.CANCELED
        if fake.status is not VenueOrderStatus.MATCHED and not outcome.silent:
            self._emit(self._snapshot(fake))
        return fake.status, tuple(trade_ids)

    def land(self, order_id: str, outcome: Outcome | None = None) -> VenueOrderStatus:
        """The venue takes now an order that reached it without landing (`Outcome(lands=False)`), as `outcome` says
        (what matches on entry; default: nothing for GTC/GTD, everything for FOK/FAK); its events go out."""
        if order_id in self._orders:
            raise ValueError(f"order {order_id} has landed already")
        order = next((o for o in self.submitted if o.order_id == order_id), None)
        if order is None:
            raise ValueError(f"order {order_id} never reached the venue")
        status, _ = self._land(order, outcome or Outcome())
        return status

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        check_batch(orders)
        return [await self.submit(order) for order in orders]

    async def cancel(self, order_id: str) -> CancelResult:
        await self._pause(self.cancel_delay_secs)
        if self.cancel_errors:
            raise self.cancel_errors.pop(0)
        self.canceled.append(order_id)
        fake = self._orders.get(order_id)
        if fake is None or fake.status is not VenueOrderStatus.LIVE:
            return CancelResult(not_canceled={order_id: "order not found or already closed"})
        self._close(fake)
        return CancelResult(canceled=(order_id,))

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        """`DELETE /orders`: records each id in `canceled` and the request's size in `cancel_batches`."""
        check_cancel_ids(order_ids)
        await self._pause(self.cancel_delay_secs)
        self.cancel_batches.append(len(order_ids))
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for order_id in order_ids:
            self.canceled.append(order_id)
            fake = self._orders.get(order_id)
            if fake is None or fake.status is not VenueOrderStatus.LIVE:
                not_canceled[order_id] = "order not found or already closed"
            else:
                self._close(fake)
                canceled.append(order_id)
        return CancelResult(canceled=tuple(canceled), not_canceled=not_canceled)

    async def cancel_all(self, *, reason: str) -> CancelResult:
        await self._pause(self.cancel_all_delay_secs)
        self.cancel_all_reasons.append(reason)
        self.cancel_all_times.append(trio.current_time())
        canceled = []
        for fake in self._orders.values():
            if fake.status is VenueOrderStatus.LIVE:
                self._close(fake)
                canceled.append(fake.order.order_id)
        return CancelResult(canceled=tuple(canceled))

    # -- the account (`VenueAccount`) ----------------------------------------------------------------------------

    def add_rate_limit_listener(self, listener: RateLimitListener) -> None:
        self._rate_limit_listeners.append(listener)

    def report_rate_limit(self, report: RateLimitReport) -> None:
        """What a reply's rate-limit headers would tell the listeners (driven by the test)."""
        for listener in self._rate_limit_listeners:
            listener(report)

    async def closed_only(self) -> bool:
        await trio.lowlevel.checkpoint()
        self.closed_only_asks += 1
        return self.closed_only_answer

    async def rate_limit_tier(self) -> str | None:
        await trio.lowlevel.checkpoint()
        return self.tier_answer

    async def lookup(self, order_id: str) -> VenueOrder | None:
        """The venue's view of one order (GET /data/order/{id}); None if it never arrived."""
        await trio.lowlevel.checkpoint()
        self.lookups.append(order_id)
        if self.lookup_error is not None:
            raise self.lookup_error
        fake = self._orders.get(order_id)
        return None if fake is None else self._snapshot(fake)

    async def open_orders(self) -> list[VenueOrder]:
        await trio.lowlevel.checkpoint()
        if self.lookup_error is not None:
            raise self.lookup_error
        return [self._snapshot(f) for f in self._orders.values() if f.status is VenueOrderStatus.LIVE]

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        await trio.lowlevel.checkpoint()
        return [t for t in self._trades.values() if since_ts is None or t.match_ts >= since_ts]

    async def balances(self) -> Balances:
        """`cash` less what our open buys reserve (as every venue reports it), and the shares held."""
        await trio.lowlevel.checkpoint()
        reserved = sum(
            (
                fake.order.price * (fake.order.size - fake.matched)
                for fake in self._orders.values()
                if fake.status is VenueOrderStatus.LIVE and fake.order.side is Side.BUY
            ),
            ZERO,
        )
        return Balances(collateral=self.cash - reserved, shares=dict(self._positions))

    async def positions(self) -> Mapping[str, Decimal]:
        await trio.lowlevel.checkpoint()
        return {token: size for token, size in self._positions.items() if size}

    async def collateral(self) -> Collateral:
        await trio.lowlevel.checkpoint()
        self.collateral_reads += 1
        if self.collateral_error is not None:
            raise self.collateral_error
        return Collateral(balance=self.cash, missing_allowances=self.missing_allowances)

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[VenueEvent]]:
        send, receive = trio.open_memory_channel[VenueEvent](math.inf)  # a test fake: never blocks the venue
        self._subscribers.append(send)
        try:
            with receive:
                yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            send.close()

    # -- what the test drives ----------------------------------------------------------------------------------

    def fill(
        self, order_id: str, size: Decimal, *, price: Decimal | None = None, status: TradeStatus = TradeStatus.MATCHED
    ) -> str:
        """A maker fill of a resting order; returns the trade id."""
        fake = self._orders[order_id]
        if fake.status is not VenueOrderStatus.LIVE:
            raise ValueError(f"order {order_id} is not resting ({fake.status})")
        trade_id = self._trade(fake, size, fake.order.price if price is None else price, Liquidity.MAKER, status)
        if fake.matched >= fake.order.size:
            fake.status = VenueOrderStatus.MATCHED
        self._emit(self._snapshot(fake))
        return trade_id

    def set_trade_status(self, trade_id: str, status: TradeStatus) -> None:
        """A settlement update; FAILED undoes the trade in the fake's positions and matched sizes."""
        trade = self._trades[trade_id]
        if trade.status is status:
            return
        if trade.status.is_terminal:
            raise ValueError(f"trade {trade_id} is already {trade.status}")
        updated = replace(trade, status=status, ts=self.wall)
        self._trades[trade_id] = updated
        if status is TradeStatus.FAILED:
            self._move(trade, -1)
            self._orders[trade.order_id].matched -= trade.size
        self._emit(updated)

    def drop_events(self) -> None:
        """End every open event subscription (a user-channel disconnect); later events reach no one until the
        client subscribes again."""
        for send in list(self._subscribers):
            send.close()
        self._subscribers.clear()

    def resend(self, trade_id: str) -> None:
        """The venue sends a trade again as it stands (it re-sends trades on each status change, and after a
        reconnect)."""
        self._emit(self._trades[trade_id])

    def cancel_by_venue(self, order_id: str) -> None:
        self._close(self._orders[order_id])

    def order_status(self, order_id: str) -> VenueOrderStatus | None:
        fake = self._orders.get(order_id)
        return None if fake is None else fake.status

    def live_order_ids(self) -> list[str]:
        return [oid for oid, f in self._orders.items() if f.status is VenueOrderStatus.LIVE]

    def check(self) -> None:
        """Assert the invariants a correct client keeps (see the module docstring)."""
        problems = list(self.violations)
        for fake in self._orders.values():
            order = fake.order
            if fake.matched > order.size and not order.is_market_buy:
                problems.append(f"order {order.order_id} overfilled: {fake.matched} > {order.size}")
        problems.extend(f"negative position {t}: {q}" for t, q in self._positions.items() if q < ZERO)
        assert not problems, "FakeVenue invariants broken:\n" + "\n".join(problems)

    # -- internals ---------------------------------------------------------------------------------------------

    async def _pause(self, secs: float) -> None:
        if secs:
            await trio.sleep(secs)
        else:
            await trio.lowlevel.checkpoint()

    def _trade(
        self,
        fake: _FakeOrder,
        size: Decimal,
        price: Decimal,
        liquidity: Liquidity,
        status: TradeStatus,
        *,
        fee_shares: Decimal = ZERO,
        emit: bool = True,
    ) -> str:
        order = fake.order
        trade = VenueTrade(
            trade_id=f"fake-trade-{next(self._trade_ids)}",
            order_id=order.order_id,
            token_id=order.token_id,
            side=order.side,
            price=price,
            size=size,
            fee=ZERO,
            liquidity=liquidity,
            status=status,
            match_ts=self.wall,
            ts=self.wall,
            fee_shares=fee_shares,
        )
        self._trades[trade.trade_id] = trade
        fake.matched += size
        if status is not TradeStatus.FAILED:
            self._move(trade, +1)
        if emit:
            self._emit(trade)
        return trade.trade_id

    def _move(self, trade: VenueTrade, sign: int) -> None:
        shares = trade.size - trade.fee_shares if trade.side is Side.BUY else -trade.size
        cash = -trade.price * trade.size if trade.side is Side.BUY else trade.price * trade.size
        self._positions[trade.token_id] = self._positions.get(trade.token_id, ZERO) + sign * shares
        self.cash += sign * cash

    def _close(self, fake: _FakeOrder) -> None:
        fake.status = VenueOrderStatus.CANCELED
        self._emit(self._snapshot(fake))

    def _snapshot(self, fake: _FakeOrder) -> VenueOrder:
        return VenueOrder.of(fake.order, size_matched=fake.matched, status=fake.status, ts=self.wall)

    def _emit(self, event: VenueEvent) -> None:
        for send in self._subscribers:
            send.send_nowait(event)
