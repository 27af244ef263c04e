"""The paper venue: fills orders against the LIVE local books, with latency, depth, queues, fees and a balance.

It implements the `Venue` protocol (`prepare` and `lookup(order_id)` included), so execution cannot tell it from
the live venue. It reads the books that market data keeps (`book_of(token) -> OrderBook`) and the markets
(`market_of(token) -> Market`: tick, minimum size, fees, neg risk); `follow_books` feeds it trade prints and book
changes.

Matching, step by step (all exact decimals):

1. `submit` waits `latency_secs` (Trio clock), then looks at the book AS IT STANDS THEN.
2. Checks, as the venue does: the market is known and has a book; the price is on the tick grid within
   [tick, 1 - tick] (`VENUE_MIN_TICK_SIZE`); the size is at least the market's minimum (`VENUE_MIN_SIZE`); a
   post-only order must not cross (`VENUE_POST_ONLY_WOULD_CROSS`); the order id is new (`VENUE_DUPLICATED`); the
   balance covers it (`VENUE_NOT_ENOUGH_BALANCE`), by the venue's rule (the sim's exchange applies the same): a buy
   needs `price x size` pUSD not already reserved by resting buys, plus its taker fee bound when it is marketable
   (`FeeSchedule.taker_fee_bound`, although the fee is then withheld in shares); a resting buy reserves
   `price x remaining`; a sell needs the shares not already offered.
3. The marketable part walks the opposite levels from the best, up to the limit price: one trade per level, at
   that level's price (so the average is the VWAP and the slippage is visible). Liquidity this venue already
   took from a level is remembered until that book next changes (the venue then reports the level as it is), so two
   orders cannot take the same shares.
   FOK: everything or nothing (`VENUE_FOK_NOT_FILLED`); FAK: what is there, the rest cancelled (nothing there: the
   same rejection); GTC/GTD: what is there, the rest rests.
4. Taker fees (`FeeSchedule`, protocol.md §8): a BUY pays in SHARES, `fee_schedule.buy_fee_in_shares(size, price)`
   withheld from the shares bought (cash pays exactly `price x size`); a SELL pays `fee(size, price)` pUSD out of
   the proceeds. Makers pay nothing unless the schedule is not taker-only.
5. A resting order waits at its price with an estimate of the queue ahead of it: the size at that level of the
   book when it arrived (our order is not in the live book, so everything there was first). A trade print AT our
   price eats the queue first, then fills us; a print THROUGH our price (a lower trade for a bid, a higher one for
   an ask) means the level was emptied: we fill in full. If the opposite side of the book reaches our price (the
   book crosses it), we fill against that liquidity at our price. When the level shrinks below the queue
   estimate, the estimate shrinks with it (cancellations ahead of us). All of these fills are MAKER fills.

Trades are reported MATCHED and then CONFIRMED at once (paper has no chain). Cash and shares are the simulated
balance (`Balances`, `positions()`).

Order ids: `prepare(intent, ts=...)` (as the live adapter's) computes them with the id function it is given
(`order_ids`, a `PaperOrderIdSource`: a function of the intent, its market and `ts`). The composition root passes
`trader.venues.polymarket.paper_ids.paper_order_id`, the EIP-712 digest of the order signed as a limit order with a
fixed, publicly known paper key, the salt derived from the client order id and the timestamp from `ts`. So they look
and behave like live ones: "0x" + 64 hex, deterministic, computed before sending. As the live adapter does, `prepare`
refuses a price off its book's tick grid in force (`PrepareRefused`, `PRICE_OFF_TICK` / `PRICE_OUT_OF_RANGE`): the
same intent is not sent in paper as in live.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import NoReturn, Protocol

import structlog
import trio

from trader.domain.book import OrderBook
from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.market import Market
from trader.domain.numbers import ONE, ZERO, Side, is_on_tick
from trader.domain.orders import Order
from trader.errors import ConfigError
from trader.venues.base import (
    Balances,
    CancelResult,
    SubmitAccepted,
    SubmitRejected,
    SubmitResult,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
    check_batch,
    check_cancel_ids,
    check_price_on_grid,
)
from trader.venues.errors import VenueRejectCode

log = structlog.get_logger(__name__)

__all__ = ["PaperOrderIdSource", "PaperSettings", "PaperStatistics", "PaperVenue", "PaperWallet", "follow_books"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperSettings:
    """- `latency_secs` (default 0.05): from receipt to matching against the book (Trio clock).
    - `event_buffer` (default 1000): events buffered per subscriber; a full buffer drops (and counts) events.
    - `keep_closed` (default 10000): closed orders, and trades, kept for lookups by id (`lookup`, `trades`); the
      oldest are forgotten first, so memory does not grow with the session.
    """

    latency_secs: float = 0.05
    event_buffer: int = 1000
    keep_closed: int = 10_000

    def __post_init__(self) -> None:
        if not (isinstance(self.latency_secs, int | float) and 0 <= self.latency_secs < math.inf):
            raise ConfigError(f"latency_secs must be a finite number >= 0, got {self.latency_secs!r}")
        if self.event_buffer < 1:
            raise ConfigError("event_buffer must be >= 1")
        if self.keep_closed < 1:
            raise ConfigError("keep_closed must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperWallet:
    """The paper wallet's pUSD: `cash` (all of it) and `reserved` (held back by resting buys)."""

    cash: Decimal
    reserved: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperStatistics:
    submitted: int
    rejected: Mapping[str, int]
    trades: int
    taker_trades: int
    maker_trades: int
    resting: int
    fees_usd: Decimal  # pUSD fees charged on sells
    fee_shares: Mapping[str, Decimal]  # token -> shares withheld on buys
    cash: Decimal
    reserved_cash: Decimal
    events_dropped: int


class PaperOrderIdSource(Protocol):
    """Computes a paper order's id before it is sent, from the intent, its market (None when unknown) and `ts`
    (wall-clock epoch seconds, the order's signed timestamp): the same arguments give the same id."""

    def __call__(self, intent: OrderIntent, market: Market | None, *, ts: float) -> str: ...


@dataclass(slots=True)
class _PaperOrder:
    order: Order
    status: VenueOrderStatus
    matched: Decimal = ZERO
    queue_ahead: Decimal = ZERO
    ts: float = 0.0

    @property
    def remaining(self) -> Decimal:
        return self.order.size - self.matched


@dataclass(slots=True)
class _Consumed:
    """Liquidity this venue took from one book, valid until that book changes."""

    change_count: int
    levels: dict[tuple[Side, Decimal], Decimal] = field(default_factory=dict)


class PaperVenue:
    """See the module docstring."""

    def __init__(
        self,
        book_of: Callable[[str], OrderBook | None],
        market_of: Callable[[str], Market | None],
        *,
        order_ids: PaperOrderIdSource,
        cash: Decimal,
        settings: PaperSettings | None = None,
        shares: Mapping[str, Decimal] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or PaperSettings()
        self._book_of = book_of
        self._market_of = market_of
        self._order_ids = order_ids
        self._wall = wall
        self.cash = cash
        self._shares: dict[str, Decimal] = dict(shares or {})
        self._orders: dict[str, _PaperOrder] = {}
        self._closed: deque[str] = deque()  # ids of closed orders, oldest first (forgotten past `keep_closed`)
        self._resting: dict[str, list[_PaperOrder]] = {}  # token -> resting orders, oldest first
        self._rested = trio.Event()  # set when an order starts resting (`wait_resting`)
        self._trades: dict[str, VenueTrade] = {}
        self._consumed: dict[str, _Consumed] = {}
        self._subscribers: list[trio.MemorySendChannel[VenueEvent]] = []
        self._trade_ids = itertools.count(1)
        self._rejected: dict[str, int] = {}
        self._submitted = 0
        self._taker_trades = 0
        self._maker_trades = 0
        self._fees_usd = ZERO
        self._fee_shares: dict[str, Decimal] = {}
        self._events_dropped = 0

    # -- the Venue protocol --------------------------------------------------------------------------------------

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        """The CREATED order for an intent, with the id a live signer would compute (`order_ids`): deterministic, from
        the intent, its market and `ts` (wall-clock epoch seconds, the signed timestamp). A price off the book's tick
        grid in force is `PrepareRefused`, as live."""
        await trio.lowlevel.checkpoint()
        book = self._book_of(intent.token_id)
        if book is not None:
            check_price_on_grid(intent.price, book.tick_size)
        order_id = self._order_ids(intent, self._market_of(intent.token_id), ts=ts)
        return Order.from_intent(intent, order_id=order_id, ts=ts)

    async def submit(self, order: Order) -> SubmitResult:
        if self.settings.latency_secs:
            await trio.sleep(self.settings.latency_secs)
        else:
            await trio.lowlevel.checkpoint()
        self._submitted += 1
        return self._match_new(order)

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        check_batch(orders)
        if self.settings.latency_secs:
            await trio.sleep(self.settings.latency_secs)
        else:
            await trio.lowlevel.checkpoint()
        self._submitted += len(orders)
        return [self._match_new(order) for order in orders]

    async def cancel(self, order_id: str) -> CancelResult:
        await trio.lowlevel.checkpoint()
        paper = self._orders.get(order_id)
        if paper is None or paper.status is not VenueOrderStatus.LIVE:
            return CancelResult(not_canceled={order_id: "order not found or already closed"})
        self._close(paper)
        return CancelResult(canceled=(order_id,))

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        check_cancel_ids(order_ids)
        await trio.lowlevel.checkpoint()
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for order_id in dict.fromkeys(order_ids):
            paper = self._orders.get(order_id)
            if paper is None or paper.status is not VenueOrderStatus.LIVE:
                not_canceled[order_id] = "order not found or already closed"
            else:
                self._close(paper)
                canceled.append(order_id)
        return CancelResult(canceled=tuple(canceled), not_canceled=not_canceled)

    async def cancel_all(self, *, reason: str) -> CancelResult:
        await trio.lowlevel.checkpoint()
        canceled = [p.order.order_id for p in self._orders.values() if p.status is VenueOrderStatus.LIVE]
        for order_id in canceled:
            self._close(self._orders[order_id])
        log.info("paper_cancel_all", reason=reason, canceled=len(canceled))
        return CancelResult(canceled=tuple(canceled))

    async def lookup(self, order_id: str) -> VenueOrder | None:
        await trio.lowlevel.checkpoint()
        paper = self._orders.get(order_id)
        return None if paper is None else self._snapshot(paper)

    async def open_orders(self) -> list[VenueOrder]:
        await trio.lowlevel.checkpoint()
        return [self._snapshot(p) for p in self._orders.values() if p.status is VenueOrderStatus.LIVE]

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        await trio.lowlevel.checkpoint()
        return [t for t in self._trades.values() if since_ts is None or t.match_ts >= since_ts]

    async def balances(self) -> Balances:
        await trio.lowlevel.checkpoint()
        return Balances(collateral=self.cash - self._reserved_cash(), shares=dict(self._shares))

    async def positions(self) -> Mapping[str, Decimal]:
        await trio.lowlevel.checkpoint()
        return {token: size for token, size in self._shares.items() if size}

    def wallet(self) -> PaperWallet:
        """Cash and what resting buys reserve of it, now: what the composition root persists."""
        return PaperWallet(cash=self.cash, reserved=self._reserved_cash())

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[VenueEvent]]:
        send, receive = trio.open_memory_channel[VenueEvent](self.settings.event_buffer)
        self._subscribers.append(send)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.remove(send)
            send.close()

    # -- market data in -------------------------------------------------------------------------------------------

    def resting_tokens(self) -> list[str]:
        return [token for token, orders in self._resting.items() if orders]

    async def wait_resting(self) -> None:
        """Until some order rests (at once when one does)."""
        while not any(self._resting.values()):
            if self._rested.is_set():
                self._rested = trio.Event()
            await self._rested.wait()

    def on_trade(self, token_id: str, price: Decimal, size: Decimal) -> None:
        """A trade printed on the venue (`last_trade_price`): it eats the queues ahead of our resting orders."""
        for paper in list(self._resting.get(token_id, ())):
            order = paper.order
            if order.side is Side.BUY:
                through, at = price < order.price, price == order.price
            else:
                through, at = price > order.price, price == order.price
            if through:
                paper.queue_ahead = ZERO
                self._maker_fill(paper, paper.remaining)
            elif at:
                left = size - paper.queue_ahead
                paper.queue_ahead = max(paper.queue_ahead - size, ZERO)
                if left > ZERO:
                    self._maker_fill(paper, min(left, paper.remaining))

    def on_book(self, token_id: str) -> None:
        """The book changed: a resting order fills if the opposite side reached its price; the queue estimate
        shrinks with its level."""
        book = self._book_of(token_id)
        if book is None:
            return
        for paper in list(self._resting.get(token_id, ())):
            order = paper.order
            crossing = self._available(book, order.side, order.size, limit=order.price)
            if crossing:
                take = min(paper.remaining, sum((size for _, size in crossing), ZERO))
                left = take
                for price, size in crossing:
                    used = min(left, size)
                    self._consume(book, order.side.opposite, price, used)
                    left -= used
                    if not left:
                        break
                paper.queue_ahead = ZERO
                self._maker_fill(paper, take)
                continue
            level = _level_size(book, order.side, order.price)
            paper.queue_ahead = min(paper.queue_ahead, level)

    # -- matching -------------------------------------------------------------------------------------------------

    def _match_new(self, order: Order) -> SubmitResult:
        rejected = self._check(order)
        if rejected is not None:
            self._rejected[rejected.reason] = self._rejected.get(rejected.reason, 0) + 1
            log.info("paper_rejected", client_order_id=order.client_order_id, reason=rejected.reason)
            return rejected
        book = self._book_of(order.token_id)
        assert book is not None  # checked
        levels = self._available(book, order.side, order.size, limit=order.price)
        available = sum((size for _, size in levels), ZERO)
        if order.order_type is OrderType.FOK and available < order.size:
            return self._reject(order, VenueRejectCode.FOK_NOT_FILLED, "order couldn't be fully filled (FOK)")
        if order.order_type is OrderType.FAK and not available:
            return self._reject(order, VenueRejectCode.FOK_NOT_FILLED, "no orders found to match with FAK order")
        paper = _PaperOrder(order=order, status=VenueOrderStatus.LIVE, ts=self._wall())
        self._orders[order.order_id] = paper
        trade_ids: list[str] = []
        notional = ZERO
        left = order.size
        for price, size in levels:
            take = min(left, size)
            self._consume(book, order.side.opposite, price, take)
            trade_ids.append(self._trade(paper, take, price, Liquidity.TAKER))
            notional += take * price
            left -= take
            if not left:
                break
        if paper.remaining == ZERO:
            paper.status = VenueOrderStatus.MATCHED
            self._closing(paper)
        elif not order.order_type.rests:
            paper.status = VenueOrderStatus.CANCELED
            self._closing(paper)
            self._emit(self._snapshot(paper))
        else:
            paper.queue_ahead = _level_size(book, order.side, order.price)
            self._resting.setdefault(order.token_id, []).append(paper)
            self._rested.set()
            self._emit(self._snapshot(paper))
        log.debug(
            "paper_order",
            client_order_id=order.client_order_id,
            side=str(order.side),
            token_id=order.token_id,
            status=paper.status,
            matched=str(paper.matched),
            queue_ahead=str(paper.queue_ahead),
        )
        return SubmitAccepted(
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            status=VenueOrderStatus.MATCHED if paper.matched and not order.order_type.rests else paper.status,
            filled_size=paper.matched,
            filled_notional=notional,
            trade_ids=tuple(trade_ids),
        )

    def _check(self, order: Order) -> SubmitRejected | None:
        market = self._market_of(order.token_id)
        book = self._book_of(order.token_id)
        if market is None or book is None or not market.is_tradable:
            return self._reject(order, VenueRejectCode.MARKET_NOT_READY, "market not known, closed or without a book")
        tick = book.tick_size
        if not (tick <= order.price <= ONE - tick and is_on_tick(order.price, tick)):
            return self._reject(order, VenueRejectCode.MIN_TICK_SIZE, "Price breaks minimum tick size rules")
        if order.size < market.min_order_size:
            return self._reject(
                order, VenueRejectCode.MIN_SIZE, f"Size lower than the minimum: {market.min_order_size}"
            )
        if order.order_id in self._orders:
            return self._reject(order, VenueRejectCode.DUPLICATED, "order is duplicated")
        marketable = bool(self._available(book, order.side, order.size, limit=order.price))
        if order.post_only and marketable:
            return self._reject(order, VenueRejectCode.POST_ONLY_WOULD_CROSS, "post-only order would cross")
        if order.side is Side.BUY:
            needed = order.price * order.size
            if marketable:  # the venue's rule: a taker's fee bound is held back too (the sim's exchange does so)
                needed += market.fees.taker_fee_bound(order.size, order.price)
            if needed > self.cash - self._reserved_cash():
                return self._reject(order, VenueRejectCode.NOT_ENOUGH_BALANCE, "not enough balance / allowance")
        elif order.size > self._shares.get(order.token_id, ZERO) - self._reserved_shares(order.token_id):
            return self._reject(order, VenueRejectCode.NOT_ENOUGH_BALANCE, "not enough balance / allowance")
        return None

    def _reject(self, order: Order, code: VenueRejectCode, message: str) -> SubmitRejected:
        return SubmitRejected(
            client_order_id=order.client_order_id, order_id=order.order_id, reason=code, message=message
        )

    def _available(
        self, book: OrderBook, side: Side, size: Decimal, *, limit: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        """(price, shares) a taker on `side` could take now, best first, up to `limit`, less what we took."""
        consumed = self._consumed_of(book)
        result: list[tuple[Decimal, Decimal]] = []
        wanted = size
        for level in book.levels(side.opposite):
            if level.price > limit if side is Side.BUY else level.price < limit:
                break
            free = level.size - consumed.levels.get((side.opposite, level.price), ZERO)
            if free <= ZERO:
                continue
            result.append((level.price, free))
            wanted -= free
            if wanted <= ZERO:
                break
        return result

    def _consumed_of(self, book: OrderBook) -> _Consumed:
        consumed = self._consumed.get(book.asset_id)
        if consumed is None or consumed.change_count != book.change_count:
            consumed = self._consumed[book.asset_id] = _Consumed(book.change_count)
        return consumed

    def _consume(self, book: OrderBook, maker_side: Side, price: Decimal, size: Decimal) -> None:
        levels = self._consumed_of(book).levels
        levels[(maker_side, price)] = levels.get((maker_side, price), ZERO) + size

    def _maker_fill(self, paper: _PaperOrder, size: Decimal) -> None:
        if size <= ZERO:
            return
        self._trade(paper, size, paper.order.price, Liquidity.MAKER)
        if paper.remaining == ZERO:
            paper.status = VenueOrderStatus.MATCHED
            self._unrest(paper)
            self._closing(paper)
        self._emit(self._snapshot(paper))

    def _trade(self, paper: _PaperOrder, size: Decimal, price: Decimal, liquidity: Liquidity) -> str:
        order = paper.order
        market = self._market_of(order.token_id)
        fees = market.fees if market is not None else None
        fee = fee_shares = ZERO
        if fees is not None:
            if order.side is Side.BUY:
                fee_shares = fees.buy_fee_in_shares(size, price, liquidity)
            else:
                fee = fees.fee(size, price, liquidity)
        if order.side is Side.BUY:
            self.cash -= size * price
            self._shares[order.token_id] = self._shares.get(order.token_id, ZERO) + size - fee_shares
            if fee_shares:
                self._fee_shares[order.token_id] = self._fee_shares.get(order.token_id, ZERO) + fee_shares
        else:
            self.cash += size * price - fee
            self._shares[order.token_id] = self._shares.get(order.token_id, ZERO) - size
            self._fees_usd += fee
        paper.matched += size
        if liquidity is Liquidity.TAKER:
            self._taker_trades += 1
        else:
            self._maker_trades += 1
        now = self._wall()
        trade = VenueTrade(
            trade_id=f"paper-{next(self._trade_ids)}",
            order_id=order.order_id,
            token_id=order.token_id,
            side=order.side,
            price=price,
            size=size,
            fee=fee,
            liquidity=liquidity,
            status=TradeStatus.MATCHED,
            match_ts=now,
            ts=now,
            fee_shares=fee_shares,
        )
        confirmed = replace(trade, status=TradeStatus.CONFIRMED)
        self._trades[trade.trade_id] = confirmed
        if len(self._trades) > self.settings.keep_closed:  # the oldest trade is forgotten (it is settled)
            del self._trades[next(iter(self._trades))]
        self._emit(trade)
        self._emit(confirmed)
        return trade.trade_id

    def _close(self, paper: _PaperOrder) -> None:
        paper.status = VenueOrderStatus.CANCELED
        self._unrest(paper)
        self._closing(paper)
        self._emit(self._snapshot(paper))

    def _closing(self, paper: _PaperOrder) -> None:
        """A closed order is kept for lookups until `keep_closed` newer ones closed."""
        self._closed.append(paper.order.order_id)
        while len(self._closed) > self.settings.keep_closed:
            self._orders.pop(self._closed.popleft(), None)

    def _unrest(self, paper: _PaperOrder) -> None:
        resting = self._resting.get(paper.order.token_id)
        if resting and paper in resting:
            resting.remove(paper)

    def _reserved_cash(self) -> Decimal:
        return sum(
            (
                p.order.price * p.remaining
                for orders in self._resting.values()
                for p in orders
                if p.order.side is Side.BUY
            ),
            ZERO,
        )

    def _reserved_shares(self, token_id: str) -> Decimal:
        return sum((p.remaining for p in self._resting.get(token_id, ()) if p.order.side is Side.SELL), ZERO)

    def _snapshot(self, paper: _PaperOrder) -> VenueOrder:
        return VenueOrder.of(paper.order, size_matched=paper.matched, status=paper.status, ts=self._wall())

    def _emit(self, event: VenueEvent) -> None:
        for send in self._subscribers:
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self._events_dropped += 1
                log.error("paper_event_dropped", subscribers=len(self._subscribers))

    # -- the wallet's chain side (what `trader.venues.paper_capital` changes) ------------------------------------

    def wallet_shares(self, token_id: str) -> Decimal:
        """Shares of `token_id` in the paper wallet."""
        return self._shares.get(token_id, ZERO)

    def move_shares(self, changes: Mapping[str, Decimal], cash: Decimal) -> None:
        """Apply a merge or a redemption to the wallet: shares change by `changes` (token -> delta), cash by `cash`.
        A change that would leave a negative balance raises `ValueError` and changes nothing."""
        for token_id, delta in changes.items():
            if self._shares.get(token_id, ZERO) + delta < ZERO:
                raise ValueError(f"the wallet holds {self._shares.get(token_id, ZERO)} of {token_id}, not {-delta}")
        for token_id, delta in changes.items():
            left = self._shares.get(token_id, ZERO) + delta
            if left:
                self._shares[token_id] = left
            else:
                self._shares.pop(token_id, None)
        self.cash += cash

    # -- introspection ----------------------------------------------------------------------------------------------

    def queue_ahead(self, order_id: str) -> Decimal:
        return self._orders[order_id].queue_ahead

    def statistics(self) -> PaperStatistics:
        return PaperStatistics(
            submitted=self._submitted,
            rejected=dict(self._rejected),
            trades=self._taker_trades + self._maker_trades,
            taker_trades=self._taker_trades,
            maker_trades=self._maker_trades,
            resting=sum(len(orders) for orders in self._resting.values()),
            fees_usd=self._fees_usd,
            fee_shares=dict(self._fee_shares),
            cash=self.cash,
            reserved_cash=self._reserved_cash(),
            events_dropped=self._events_dropped,
        )


def _level_size(book: OrderBook, side: Side, price: Decimal) -> Decimal:
    """The size resting at exactly `price` on `side` of the book (0 when there is no such level)."""
    for level in book.levels(side):
        if level.price == price:
            return level.size
        if level.price < price if side is Side.BUY else level.price > price:
            break
    return ZERO


# -- following the live books ------------------------------------------------------------------------------------


class _Print(Protocol):
    @property
    def price(self) -> Decimal: ...
    @property
    def size(self) -> Decimal | None: ...


class _TokenLike(Protocol):
    @property
    def last_trade(self) -> _Print | None: ...


class PaperBooks(Protocol):
    """What `follow_books` reads of the market-data books (`trader.engine.books.Books` has it)."""

    @property
    def version(self) -> int: ...
    async def wait_changed(self, seen: int) -> int: ...
    def get_token(self, token_id: str) -> _TokenLike | None: ...


async def follow_books(
    paper: PaperVenue, books: PaperBooks, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> NoReturn:
    """Feed the paper venue from market data: each new trade print (`last_trade_price`), then the book change, for
    every token with a resting paper order.

    Market data is state, not a queue: only the latest print per token per wake-up is seen (a burst of prints
    between two wake-ups counts as its last one). The print standing when a token first gets a resting order is
    old news and is skipped; so, conservatively, is one that lands before the first wake-up after that.
    """
    seen = books.version
    printed: dict[str, object] = {}
    task_status.started()
    while True:
        # Nothing rests: no book change concerns the paper venue, so none wakes this task (a backtest delivers
        # thousands a second). The changes since the last look still count once an order rests: `seen` stays.
        await paper.wait_resting()
        seen = await books.wait_changed(seen)
        resting = paper.resting_tokens()
        for token_id in resting:
            token = books.get_token(token_id)
            if token is None:
                continue
            last = token.last_trade
            if token_id not in printed:
                printed[token_id] = last
            elif last is not None and printed[token_id] is not last:
                printed[token_id] = last
                if last.size is not None:
                    paper.on_trade(token_id, last.price, last.size)
            paper.on_book(token_id)
        for token_id in [t for t in printed if t not in resting]:
            del printed[token_id]
