"""The `Venue` protocol: what the execution service talks to (live Polymarket, the paper venue, test fakes).

Only domain types and the plain values below cross this boundary: no wire names, no JSON, no httpx/trio-websocket
exceptions (adapters raise the `trader.venues.errors.VenueError` tree and nothing else).

Outcomes:

- `prepare(intent, ts=...)` builds (and, live, signs) the order an intent becomes, computing its `order_id` before
  anything is written or sent; every venue prepares its own orders (the live one signs them, the paper one computes
  the same digest, the fake numbers them). An order the venue would refuse for its terms as they stand now (a price
  off the market's tick grid in force: `check_price_on_grid`) is refused here, as `PrepareRefused` with a stable
  code: nothing is signed, written or sent.
- `submit(order)` returns a `SubmitResult`: `SubmitAccepted` (the venue took it: `status` LIVE/MATCHED/DELAYED/
  UNMATCHED, with what matched on entry) or `SubmitRejected` (the venue refused it: a stable `VenueRejectCode`).
  A refusal is a value. An exception (`VenueTimeout`, `VenueDisconnected`, a 5xx `VenueRequestError`) means the
  outcome is UNKNOWN: the order may exist. The caller resolves it by the order id it computed before sending
  (`lookup(order_id)`, the event stream), never by blindly sending again.
- `submit_batch(orders)` sends at most `MAX_BATCH_SIZE` (15) orders in one request and returns one result per order,
  in the same order. A larger batch is a `ValueError` (a bug in the caller).
- `cancel(order_id)`, `cancel_orders(order_ids)` (at most `MAX_CANCEL_IDS` per request), `cancel_all(reason=...)`
  return a `CancelResult` (which ids were cancelled, which not and why).

Optional: a venue with per-account state the engine must follow (live Polymarket) also implements `VenueAccount`:
its rate-limit replies (`RateLimitReport`, from every order and cancel reply's headers) go to the listeners added with
`add_rate_limit_listener`, and it answers whether the account is closed-only and which rate-limit tier it has.

Events: `open_events()` is an async context manager yielding a `trio.MemoryReceiveChannel[VenueEvent]` of order
updates and trades as the venue reports them (the user channel live, the simulator's fills on paper). They are
keyed by the venue's `order_id`, not by our client order id: the venue does not know ours, and after a restart
only the store does. The execution service maps `order_id` -> client order id (it computed the id before sending)
and turns them into `trader.domain.events` (`OrderAccepted`, `OrderFilled` via `Trade.fill_event`, ...).
The same trade id arrives again on each settlement status change (MATCHED -> MINED -> CONFIRMED, or FAILED).

A fake for tests (`FakeVenue`) implements exactly these methods, scripts outcomes (accept/reject/raise/delay per
call), records what it was asked (`submitted`, `canceled`, `cancel_all_reasons`), and pushes `VenueEvent`s into the
channel it yields from `open_events()`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

import trio

from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.feed import ParsedFrame
from trader.domain.intents import OrderIntent
from trader.domain.numbers import ONE, ZERO, Side, is_on_tick
from trader.domain.orders import Order
from trader.errors import TraderError
from trader.venues.errors import RETRYABLE_REJECTS, VenueRejectCode

#: The venue's limit on orders per `POST /orders` request.
MAX_BATCH_SIZE = 15
#: The venue's limit on order ids per `DELETE /orders` request (protocol.md §11 item 5).
MAX_CANCEL_IDS = 1000

#: `PrepareRefused` codes: the limit price is not a multiple of the tick in force, or lies outside [tick, 1 - tick].
PRICE_OFF_TICK = "PRICE_OFF_TICK"
PRICE_OUT_OF_RANGE = "PRICE_OUT_OF_RANGE"


class PrepareRefused(TraderError):
    """`Venue.prepare` will not build this order as asked: its terms do not fit the market as it is now (e.g. a price
    off the tick grid since a tick-size change). A value's fault, not the venue's: `code` is a stable reason code
    (`PRICE_OFF_TICK`, `PRICE_OUT_OF_RANGE`); nothing was signed, written or sent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def check_price_on_grid(price: Decimal, tick: Decimal) -> None:
    """For `prepare`: raise `PrepareRefused` unless `price` lies on the tick grid within [tick, 1 - tick], as the
    venue requires of every order's limit price (also a FOK/FAK's worst price: the signer would otherwise floor it to
    the grid, a silently different order)."""
    if not tick <= price <= ONE - tick:
        raise PrepareRefused(PRICE_OUT_OF_RANGE, f"price {price} is outside [{tick}, {ONE - tick}] (tick {tick})")
    if not is_on_tick(price, tick):
        raise PrepareRefused(PRICE_OFF_TICK, f"price {price} is not on the tick grid {tick}")


class VenueOrderStatus(enum.StrEnum):
    """The venue's status of an order (the POST /order reply, and the user channel)."""

    LIVE = "LIVE"  # resting on the book
    MATCHED = "MATCHED"  # matched in full on entry
    DELAYED = "DELAYED"  # marketable, held by the market's matching delay
    UNMATCHED = "UNMATCHED"  # marketable, the delay failed, placement still OK
    CANCELED = "CANCELED"  # off the book (by us, by the venue, or the rest of a FAK / a killed FOK)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitAccepted:
    """The venue took the order. `filled_size` shares matched on entry, for `filled_notional` pUSD."""

    client_order_id: str
    order_id: str
    status: VenueOrderStatus
    filled_size: Decimal = ZERO
    filled_notional: Decimal = ZERO
    trade_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitRejected:
    """The venue refused the order; it is not on the book. `message` is the venue's text, for humans."""

    client_order_id: str
    order_id: str | None
    reason: VenueRejectCode
    message: str = ""

    @property
    def retryable(self) -> bool:
        """True when the venue, not the order, was the problem (the same order may succeed later)."""
        return self.reason in RETRYABLE_REJECTS


SubmitResult = SubmitAccepted | SubmitRejected


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelResult:
    canceled: tuple[str, ...] = ()  # order ids
    not_canceled: Mapping[str, str] = field(default_factory=dict)  # order id -> the venue's reason


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueOrder:
    """An order as the venue reports it (open orders, and the user channel's order events)."""

    order_id: str
    token_id: str
    side: Side
    price: Decimal
    original_size: Decimal
    size_matched: Decimal
    status: VenueOrderStatus
    order_type: OrderType
    ts: float  # wall-clock epoch seconds of this state

    @classmethod
    def of(cls, order: Order, *, size_matched: Decimal, status: VenueOrderStatus, ts: float) -> VenueOrder:
        """The venue's view of one of our orders, in the state given (for venues that keep domain `Order`s)."""
        return cls(
            order_id=order.order_id,
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            original_size=order.size,
            size_matched=size_matched,
            status=status,
            order_type=order.order_type,
            ts=ts,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueTrade:
    """One of our fills as the venue reports it; re-sent on each settlement status change."""

    trade_id: str
    order_id: str  # our order in this trade (as taker, or as one of the makers)
    token_id: str
    side: Side  # our side
    price: Decimal
    size: Decimal
    fee: Decimal
    liquidity: Liquidity
    status: TradeStatus
    match_ts: float
    ts: float  # of this status
    fee_shares: Decimal = ZERO  # BUY only: fee withheld in shares (how the paper venue collects buy fees)


VenueEvent = VenueOrder | VenueTrade


@dataclass(frozen=True, slots=True, kw_only=True)
class Balances:
    collateral: Decimal  # pUSD available (not reserved by open buys)
    shares: Mapping[str, Decimal] = field(default_factory=dict)  # token -> shares held


class Venue(Protocol):
    """The operations execution needs. Every method is a checkpoint (a test fake's `prepare` may skip it); the
    caller sets timeouts."""

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        """The CREATED order for an intent, built (live: signed) now; `order.order_id` is the id the venue will use,
        computed here, before anything is written or sent. `ts` is wall-clock epoch seconds (the order's creation
        time; live, its signed timestamp). `PrepareRefused` (with a code) means the venue would refuse these terms now
        (e.g. a price off the tick grid in force); a `VenueError` or a timeout means the order could not be built."""
        ...

    async def submit(self, order: Order) -> SubmitResult:
        """Send one signed order (its `order_id` was computed and persisted before)."""
        ...

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        """Send up to `MAX_BATCH_SIZE` orders in one request; one result per order, in order."""
        ...

    async def cancel(self, order_id: str) -> CancelResult: ...

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        """Cancel up to `MAX_CANCEL_IDS` orders in one request (`DELETE /orders`); more is a `ValueError` (the
        caller splits)."""
        ...

    async def cancel_all(self, *, reason: str) -> CancelResult:
        """Cancel every open order of ours. `reason` (a stable code, e.g. "SHUTDOWN") is for the record."""
        ...

    async def lookup(self, order_id: str) -> VenueOrder | None:
        """The venue's view of one order by its id (live: `GET /data/order/{id}`), None when it does not know the
        order: how an unknown submit outcome is resolved. A venue without a by-id endpoint answers from its open
        orders and trades (`lookup_in_open_orders_and_trades`)."""
        ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]: ...

    async def balances(self) -> Balances: ...

    async def positions(self) -> Mapping[str, Decimal]:
        """Token -> shares held, as the venue (or the chain) sees it: for reconciliation."""
        ...

    def open_events(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[VenueEvent]]:
        """Subscribe to order and trade events for as long as the context is open."""
        ...


async def lookup_in_open_orders_and_trades(
    venue: Venue, order_id: str, *, since_ts: float | None = None
) -> VenueOrder | None:
    """`Venue.lookup` for a venue without a by-id endpoint: the order among its open orders, else as its trades (those
    since `since_ts`) tell it, else None.

    An order known only by its trades is off the book: it is reported CANCELED with what matched (a rest, if any, is
    gone; FAILED trades do not count). Its size and type are not known here: `original_size` is what matched and
    `order_type` GTC. The caller, who knows the order, applies the trades themselves.
    """
    for venue_order in await venue.open_orders():
        if venue_order.order_id == order_id:
            return venue_order
    trades = [t for t in await venue.trades(since_ts=since_ts) if t.order_id == order_id]
    if not trades:
        return None
    matched = sum((t.size for t in trades if t.status is not TradeStatus.FAILED), ZERO)
    first = trades[0]
    return VenueOrder(
        order_id=order_id,
        token_id=first.token_id,
        side=first.side,
        price=first.price,
        original_size=matched,
        size_matched=matched,
        status=VenueOrderStatus.CANCELED,
        order_type=OrderType.GTC,
        ts=max(t.ts for t in trades),
    )


def check_cancel_ids(order_ids: Sequence[str]) -> None:
    """For implementations: refuse a cancel request the venue would refuse (more than `MAX_CANCEL_IDS` ids)."""
    if len(order_ids) > MAX_CANCEL_IDS:
        raise ValueError(f"a cancel request holds at most {MAX_CANCEL_IDS} order ids, got {len(order_ids)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitReport:
    """What one reply said about the account's rate limits (Polymarket: the `Poly-RateLimit-*` and `Retry-After`
    headers of the order and cancel endpoints). `endpoint` is "METHOD /path" (e.g. "POST /orders"); `remaining`
    the tokens left in that endpoint's bucket after this request (may be negative); `reset_at` wall-clock unix
    seconds when the current wait ends; `tier` the venue's name of the account's tier; `warning` the venue would
    have refused this request under enforcement; `retry_after_secs` of a 429; `status` the reply's HTTP status."""

    endpoint: str
    status: int
    remaining: float | None = None
    reset_at: float | None = None
    tier: str | None = None
    warning: bool = False
    retry_after_secs: float | None = None


RateLimitListener = Callable[[RateLimitReport], None]


@runtime_checkable
class VenueAccount(Protocol):
    """Per-account state of a venue, for the engine to follow (implemented by the live venue)."""

    def add_rate_limit_listener(self, listener: RateLimitListener) -> None:
        """Call `listener` (synchronously, it must not block) with every `RateLimitReport`."""
        ...

    async def closed_only(self) -> bool:
        """Whether the account may only reduce its positions (Polymarket: `GET /auth/ban-status/closed-only`)."""
        ...

    async def rate_limit_tier(self) -> str | None:
        """The account's rate-limit tier as the venue names it, None when it does not say."""
        ...


def check_batch(orders: Sequence[Order]) -> None:
    """For implementations: refuse a batch the venue would refuse (too large, or one order twice)."""
    if not 1 <= len(orders) <= MAX_BATCH_SIZE:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} orders, got {len(orders)}")
    ids = [order.order_id for order in orders]
    if len(set(ids)) != len(ids):
        raise ValueError("a batch must not hold the same order twice")


# ----------------------------------------------------------------------------------------------------------------
# MarketFeed: the market channel, parsed (what the market-data service talks to)
#
# `feed.connect(asset_ids, ticks)` opens one connection to the venue's market channel, subscribed to `asset_ids`
# (the venue starts with a snapshot of each), and yields a `MarketFeedConnection`: parsed frames in, keepalive and
# subscription changes out. Only `trader.domain.feed` values cross: the wire format, its parser and the socket
# library stay in the adapter (Polymarket: `trader.venues.polymarket.market_ws.PolymarketMarketFeed`).
#
# Ticks: parsing a frame needs the tick size in force for each asset (a price that adds size must sit on the grid)
# and the set of assets followed (a frame about any other is dropped as unknown). `ticks` is the caller's live
# mapping, asset id -> tick, read by the feed at every `receive()` and never written by it. The caller keeps it
# current: it adds an asset before subscribing it, removes an asset it no longer follows, and when it applies a
# tick change (a `TickSizeChange`, or a `BookSnapshot` with a `tick_size`) it writes the new tick before calling
# `receive()` again. Within one frame the feed applies a tick change to the rest of that frame by itself.
#
# Errors: connecting or the handshake failed -> `VenueConnectionError` (from entering `connect`); an established
# connection broke -> `VenueDisconnected` (from `receive`, `ping`, `subscribe`, `unsubscribe`). A bad frame is
# not an error: it is counted in `ParsedFrame.drops`. Timing (PING period, stall detection, reconnects, resyncs)
# belongs to the caller.


class MarketFeedConnection(Protocol):
    """One open market-channel connection."""

    async def receive(self) -> ParsedFrame:
        """The next frame, parsed against `ticks` as they are now; the keepalive reply is `pong=True`."""
        ...

    async def ping(self) -> None:
        """Send the keepalive; the venue answers with a frame that `receive` returns with `pong=True`."""
        ...

    async def subscribe(self, asset_ids: Sequence[str]) -> None:
        """Follow more assets (in `ticks` already); the venue sends a snapshot of each first."""
        ...

    async def unsubscribe(self, asset_ids: Sequence[str]) -> None: ...


class MarketFeed(Protocol):
    """Opens market-channel connections (one per shard of assets)."""

    def connect(
        self, asset_ids: Sequence[str], ticks: Mapping[str, Decimal], *, custom_feature_enabled: bool = False
    ) -> AbstractAsyncContextManager[MarketFeedConnection]:
        """Connect and subscribe to `asset_ids`; close on exit. `ticks`: the caller's live map (see above).
        `custom_feature_enabled`: also ask for the venue's optional events (`BestBidAsk`, `NewMarket`,
        `MarketResolved`); the name is Polymarket's flag, kept as the `MarketDataSettings` key."""
        ...


# ----------------------------------------------------------------------------------------------------------------
# Capital: collateral, resolutions, merges and redemptions (what the capital service talks to)
#
# A complete set (one YES and one NO share of a condition) is worth exactly 1 pUSD: merged back (Conditional Tokens
# `mergePositions`; neg-risk markets through the neg-risk adapter) it frees its collateral at once. After a market
# resolves, its shares redeem at the payout (`redeemPositions`). Both are chain operations, not CLOB orders: an EOA
# sends its own Polygon transaction, a proxy, safe or deposit wallet goes through Polymarket's relayer, the paper
# venue applies them to its wallet after a latency (protocol.md §8, §11 items 7, 8, 13).
#
# An operation is prepared first (built and signed), so its id is known before anything is sent: the engine writes it
# ahead, like an order intent, and after a crash asks for it by that id (`op_status`) instead of sending it again.
# `send_op` answers PENDING when the chain or the relayer took it; a refusal is a FAILED status (a value, with the
# venue's message); an exception (a timeout, a broken connection) means the outcome is unknown: ask `op_status`.


class CapitalOpKind(enum.StrEnum):
    MERGE = "MERGE"  # complete sets of one condition back into collateral
    REDEEM = "REDEEM"  # the shares of a resolved condition, at its payout


class CapitalOpState(enum.StrEnum):
    PENDING = "PENDING"  # sent; not mined (or not confirmed) yet
    CONFIRMED = "CONFIRMED"  # done: balances changed
    FAILED = "FAILED"  # refused or reverted: balances unchanged
    NOT_FOUND = "NOT_FOUND"  # the chain or relayer has never seen it (never sent, or dropped before it landed)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalOp:
    """One merge or redemption. `token_ids` are the condition's (YES, NO) tokens; `amounts` the shares of each:
    a MERGE of n sets is (n, n); a REDEEM gives what is held of each (all of it is redeemed)."""

    kind: CapitalOpKind
    condition_id: str
    neg_risk: bool
    token_ids: tuple[str, str]
    amounts: tuple[Decimal, Decimal]

    def __post_init__(self) -> None:
        if any(a < ZERO for a in self.amounts) or not any(self.amounts):
            raise ValueError(f"{self.kind} amounts must be >= 0 and not all 0, got {self.amounts}")
        if self.kind is CapitalOpKind.MERGE and self.amounts[0] != self.amounts[1]:
            raise ValueError(f"a merge takes as many YES as NO shares, got {self.amounts}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedCapitalOp:
    """A built and signed operation. `op_id` is known before sending (an EOA's transaction hash, the relayer's hash
    of what was signed, a paper id) and is how the operation is found again after a restart."""

    op_id: str
    op: CapitalOp


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalOpStatus:
    op_id: str
    state: CapitalOpState
    tx_hash: str | None = None  # the Polygon transaction, once known
    message: str = ""  # the chain's or relayer's words, for humans


@dataclass(frozen=True, slots=True, kw_only=True)
class Collateral:
    """The wallet's pUSD (all of it: what open orders reserve is the caller's to subtract, by the venue's rule) and
    the exchange allowances that are missing (empty: the wallet can trade)."""

    balance: Decimal
    missing_allowances: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """A resolved condition: the payout per share of (YES, NO), each in [0, 1], summing to 1 (1/0, 0/1, 0.5/0.5)."""

    condition_id: str
    payouts: tuple[Decimal, Decimal]

    def __post_init__(self) -> None:
        if any(not ZERO <= p <= 1 for p in self.payouts) or sum(self.payouts) != 1:
            raise ValueError(f"payouts must be in [0, 1] and sum to 1, got {self.payouts}")


class Capital(Protocol):
    """Collateral, resolutions, merges and redemptions. Every method is a checkpoint; the caller sets timeouts."""

    async def collateral(self) -> Collateral:
        """The wallet's pUSD and missing allowances (live: `GET /balance-allowance`; paper: its wallet)."""
        ...

    async def resolution(self, condition_id: str) -> Resolution | None:
        """How a condition resolved, or None while it has not (live: the CLOB market's `winner`, Gamma's
        `closed`/`outcomePrices`)."""
        ...

    async def prepare_op(self, op: CapitalOp) -> PreparedCapitalOp:
        """Build and sign `op`; nothing is sent."""
        ...

    async def send_op(self, prepared: PreparedCapitalOp) -> CapitalOpStatus:
        """Send a prepared operation: PENDING (taken), or FAILED (refused, a value). An exception: unknown."""
        ...

    async def op_status(self, op_id: str) -> CapitalOpStatus:
        """Where an operation stands, by its id (NOT_FOUND when it was never seen)."""
        ...
