"""The live Polymarket venue: `open_polymarket_venue(...)` -> a `trader.venues.base.Venue`.

```
signer = OrderSigner(private_key, signature_type=..., funder=...)
async with open_polymarket_venue(PolymarketVenueSettings(), signer, tick_of=tick_of) as venue:   # API keys (L1)
    venue.add_markets(markets)                                  # tick size, neg risk, fees of what we trade
    order = await venue.prepare(intent, ts=wall_clock_secs)     # signs; order.order_id is the EIP-712 digest
    ...persist order (write-ahead)...
    result = await venue.submit(order)                          # SubmitAccepted | SubmitRejected, or raises
    async with venue.open_events() as events: ...               # the user channel, as domain-level VenueEvents
```

Tick sizes: the tick an order is signed on is the one in force when it is prepared. `tick_of(token_id)` (the
composition root passes the live books' tick, which the market channel's `tick_size_change` updates) is read at every
`prepare`; the tick of `add_markets` (discovery) or of `GET /tick-size` stands in for a token it does not know. A price
off that grid, or outside [tick, 1 - tick], is refused before signing (`PrepareRefused`, `PRICE_OFF_TICK` /
`PRICE_OUT_OF_RANGE`): never floored to another grid, never an exception of the signer.

Signing is deterministic: the salt comes from the client order id and the order timestamp from `Order.created_ts`,
so the order id persisted before sending is the one the venue receives, also when `submit` re-signs after a
restart (a signed order is cached by id between `prepare` and `submit`). FOK/FAK orders are signed as market
orders (the SDKs' amounts): a BUY spends `price x size` pUSD floored to the cent, a SELL sells `size` shares.

An exception from `submit` means the outcome is unknown (timeout, broken connection, 5xx): resolve it with
`lookup(order_id)`, which asks `GET /data/order/{id}`. A 429 is `VenueRequestError.is_throttled` with
`retry_after_secs`; a 5xx is `is_server_error`; both are retryable. A refusal is a `SubmitRejected` value. A trading
restriction (425 while the matching engine restarts, a 503 naming post-only, cancel-only or trading disabled) is a
`VenueRequestError` whose `restriction` says which: the venue did not take the order, which may be sent again.

The venue is also a `VenueAccount` (`trader.venues.base`): its REST replies' rate-limit headers reach the listeners
of `add_rate_limit_listener`; `closed_only()` and `rate_limit_tier()` ask the venue about the account.

Task tree (`open_polymarket_venue` owns a nursery, tricycle's service-nursery shape): the heartbeat task, and
one user-channel stream + translator per `open_events()`. Leaving the context cancels those tasks; the REST client
closes last, so a shielded `cancel_all` in the caller's `finally` still works while they are being cancelled.
After a user-channel reconnect, the events missed while disconnected are backfilled over REST (our trades since
the last one seen, and our open orders); repeats are harmless (the domain ignores a fill it has applied).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Final

import httpx
import structlog
import trio

from trader.domain.enums import OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.market import Market
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order
from trader.venues.base import (
    Balances,
    CancelResult,
    RateLimitListener,
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
from trader.venues.errors import VenueError, VenueProtocolError
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.heartbeat import HeartbeatService, HeartbeatSettings, HeartbeatStatistics
from trader.venues.polymarket.rest import (
    CLOB_URL,
    AssetType,
    CancelOutcome,
    OrderPlaced,
    OrderPlacement,
    PolymarketOrder,
    PolymarketRestClient,
    PolymarketTrade,
    RestStatistics,
    open_rest_client,
)
from trader.venues.polymarket.signing import OrderSigner, SignedOrder, order_salt
from trader.venues.polymarket.user_ws import (
    USER_WS_URL,
    PolymarketOrderUpdate,
    PolymarketUserStream,
    UserEvent,
    UserStreamSettings,
    UserStreamStatistics,
    WebSocketFactory,
    websocket_factory,
)

__all__ = [
    "PolymarketVenue",
    "PolymarketVenueSettings",
    "PolymarketVenueStatistics",
    "open_polymarket_venue",
]

log = structlog.get_logger(__name__)

_CENT: Final = Decimal("0.01")
#: Trades are backfilled from this long before the last one seen (clock skew, same-second trades).
_BACKFILL_MARGIN_SECS: Final = 60.0
_SIGNED_CACHE_SIZE: Final = 10_000
#: Distinct unknown trade statuses counted by name (a venue inventing them cannot grow the counter without bound).
_MAX_STATUS_TEXTS: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class PolymarketVenueSettings:
    """Live venue settings. Defaults: production URLs, API key nonce 0, the dead-man heartbeat on (every 5 s),
    an event buffer of 1024, the venue's clock not used (set `use_server_time` when ours may drift)."""

    rest_url: str = CLOB_URL
    ws_user_url: str = USER_WS_URL
    api_key_nonce: int = 0
    heartbeat_enabled: bool = True
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    user_stream: UserStreamSettings = field(default_factory=UserStreamSettings)
    event_buffer: int = 1024
    use_server_time: bool = False
    max_connections: int = 20


@dataclass(frozen=True, slots=True)
class PolymarketVenueStatistics:
    rest: RestStatistics
    heartbeat: HeartbeatStatistics | None
    user_streams: tuple[UserStreamStatistics, ...]
    submitted: int
    accepted: int
    rejected: int
    order_id_mismatches: int  # the venue named another id than the one we computed (signing bug)
    backfills: int
    unknown_fee_fills: int  # fills of markets we were not told about: fee reported as 0
    unknown_trade_statuses: int = 0  # trade reports with a settlement status we do not know (passed on as UNKNOWN)


@dataclass(frozen=True, slots=True)
class _MarketParams:
    tick_size: Decimal
    neg_risk: bool
    market: Market | None


class PolymarketVenue:
    """A `Venue` on the live CLOB. Build it with `open_polymarket_venue`."""

    def __init__(
        self,
        rest: PolymarketRestClient,
        settings: PolymarketVenueSettings,
        *,
        ws_factory: WebSocketFactory,
        wall_secs: Callable[[], float],
        tick_of: Callable[[str], Decimal | None] | None = None,
    ) -> None:
        self.rest = rest
        self._settings = settings
        self._ws_factory = ws_factory
        self._wall_secs = wall_secs
        self._tick_of = tick_of
        self._params: dict[str, _MarketParams] = {}
        self._signed: dict[str, tuple[SignedOrder, str]] = {}  # order id -> (signed order, client order id)
        self._order_types: dict[str, OrderType] = {}
        self.heartbeat: HeartbeatService | None = None
        self._streams: list[PolymarketUserStream] = []
        self._submitted = self._accepted = self._rejected = 0
        self._mismatches = 0
        self._backfills = 0
        self._unknown_fee: Counter[str] = Counter()
        self._unknown_status: Counter[str] = Counter()

    @property
    def signer(self) -> OrderSigner:
        return self.rest.signer

    @property
    def credentials(self) -> ApiCredentials:
        assert self.rest.credentials is not None  # set by open_polymarket_venue
        return self.rest.credentials

    def statistics(self) -> PolymarketVenueStatistics:
        return PolymarketVenueStatistics(
            rest=self.rest.statistics(),
            heartbeat=self.heartbeat.statistics() if self.heartbeat is not None else None,
            user_streams=tuple(s.statistics() for s in self._streams),
            submitted=self._submitted,
            accepted=self._accepted,
            rejected=self._rejected,
            order_id_mismatches=self._mismatches,
            backfills=self._backfills,
            unknown_fee_fills=sum(self._unknown_fee.values()),
            unknown_trade_statuses=sum(self._unknown_status.values()),
        )

    # -- markets -----------------------------------------------------------------------------------------------

    def add_markets(self, markets: Iterable[Market]) -> None:
        """What we trade: tick size and neg-risk (for signing) and the fee schedule (for fills), per token."""
        for market in markets:
            for token_id in market.token_ids:
                self._params[token_id] = _MarketParams(market.tick_size, market.neg_risk, market)

    async def _market_params(self, token_id: str) -> _MarketParams:
        """The token's signing parameters, with the tick in force now (`tick_of`, when it knows the token)."""
        params = self._params.get(token_id)
        if params is None:  # a market we were not told about: ask the venue (and remember)
            tick, neg_risk = await self.rest.tick_size(token_id), await self.rest.neg_risk(token_id)
            params = self._params[token_id] = _MarketParams(tick, neg_risk, None)
        live_tick = self._tick_of(token_id) if self._tick_of is not None else None
        if live_tick is not None and live_tick != params.tick_size:
            params = _MarketParams(live_tick, params.neg_risk, params.market)
        return params

    # -- signing -----------------------------------------------------------------------------------------------

    async def _sign(self, order: OrderIntent | Order, ts: float) -> tuple[SignedOrder, str]:
        """The signed order and its id (the EIP-712 digest), from the terms of an intent (before its Order exists)
        or of an order; `ts` is the order's creation time (epoch seconds). The signer picks the exchange from the
        token id (Exchange V3 for a protocol-v2 position id, else the V2 exchange of the market's neg-risk flag). A
        price off the tick grid in force is `PrepareRefused`."""
        params = await self._market_params(order.token_id)
        check_price_on_grid(order.price, params.tick_size)
        salt = order_salt(order.client_order_id)
        timestamp_ms = round(ts * 1000)
        signer = self.signer
        if order.order_type.rests:
            return signer.limit_order_with_id(
                token_id=order.token_id,
                side=order.side,
                price=order.price,
                size=order.size,
                tick_size=params.tick_size,
                neg_risk=params.neg_risk,
                expiration=order.expiration,
                salt=salt,
                timestamp_ms=timestamp_ms,
            )
        amount = order.size
        if order.side is Side.BUY:
            amount = (order.price * order.size).quantize(_CENT, rounding=ROUND_FLOOR)
        return signer.market_order_with_id(
            token_id=order.token_id,
            side=order.side,
            amount=amount,
            price=order.price,
            tick_size=params.tick_size,
            neg_risk=params.neg_risk,
            salt=salt,
            timestamp_ms=timestamp_ms,
        )

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        """The CREATED order for an accepted intent, signed now; `order.order_id` is what the venue will use.
        `ts` is wall-clock epoch seconds (it becomes the signed order timestamp)."""
        signed, oid = await self._sign(intent, ts)
        self._remember(oid, signed, intent.client_order_id, intent.order_type)
        return Order.from_intent(intent, order_id=oid, ts=ts)

    def _remember(self, oid: str, signed: SignedOrder, client_order_id: str, order_type: OrderType) -> None:
        if len(self._signed) >= _SIGNED_CACHE_SIZE:
            self._signed.pop(next(iter(self._signed)))
        if len(self._order_types) >= _SIGNED_CACHE_SIZE:
            self._order_types.pop(next(iter(self._order_types)))
        self._signed[oid] = (signed, client_order_id)
        self._order_types[oid] = order_type

    async def _signed_for(self, order: Order) -> SignedOrder:
        cached = self._signed.get(order.order_id)
        if cached is not None and cached[1] == order.client_order_id:
            return cached[0]
        signed, oid = await self._sign(order, order.created_ts)
        if oid != order.order_id:
            raise ValueError(
                f"order {order.client_order_id}: re-signing gives {oid}, not the persisted {order.order_id} "
                "(the market's tick size or neg-risk flag changed, or the order was not prepared by this venue)"
            )
        self._remember(oid, signed, order.client_order_id, order.order_type)
        return signed

    # -- orders ------------------------------------------------------------------------------------------------

    def _result(self, order: Order, placement: OrderPlacement) -> SubmitResult:
        if isinstance(placement, OrderPlaced):
            self._accepted += 1
            if placement.order_id.lower() != order.order_id:
                self._mismatches += 1
                log.error(
                    "order_id_mismatch",
                    client_order_id=order.client_order_id,
                    computed=order.order_id,
                    venue=placement.order_id,
                )
            try:
                status = VenueOrderStatus(placement.status.upper())
            except ValueError:
                raise VenueProtocolError(f"POST /order: unknown status {placement.status[:20]!r}") from None
            making = placement.making_amount or ZERO
            taking = placement.taking_amount or ZERO
            shares, cash = (taking, making) if order.side is Side.BUY else (making, taking)
            return SubmitAccepted(
                client_order_id=order.client_order_id,
                order_id=placement.order_id.lower(),
                status=status,
                filled_size=shares,
                filled_notional=cash,
                trade_ids=placement.trade_ids,
            )
        self._rejected += 1
        return SubmitRejected(
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            reason=placement.code,
            message=placement.message,
        )

    async def submit(self, order: Order) -> SubmitResult:
        signed = await self._signed_for(order)
        self._submitted += 1
        placement = await self.rest.post_order(signed, order_type=order.order_type, post_only=order.post_only)
        return self._result(order, placement)

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        """One `POST /orders`. The venue takes one `postOnly` per request: a batch mixing post-only and not is
        refused (`ValueError`), as is any batch `check_batch` refuses."""
        check_batch(orders)
        post_only = {o.post_only for o in orders}
        if len(post_only) != 1:
            raise ValueError("a batch must be all post-only or all not post-only")
        signed = [(await self._signed_for(o), o.order_type) for o in orders]
        self._submitted += len(orders)
        placements = await self.rest.post_orders(signed, post_only=post_only.pop())
        return [self._result(o, p) for o, p in zip(orders, placements, strict=True)]

    @staticmethod
    def _cancel_result(outcome: CancelOutcome) -> CancelResult:
        return CancelResult(canceled=outcome.canceled, not_canceled=outcome.not_canceled)

    async def cancel(self, order_id: str) -> CancelResult:
        return self._cancel_result(await self.rest.cancel(order_id))

    async def cancel_all(self, *, reason: str) -> CancelResult:
        log.info("cancel_all", reason=reason)
        return self._cancel_result(await self.rest.cancel_all())

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        """`DELETE /orders`, at most `MAX_CANCEL_IDS` ids (`ValueError` for more: the caller splits)."""
        check_cancel_ids(order_ids)
        return self._cancel_result(await self.rest.cancel_orders(order_ids))

    # -- the account (`VenueAccount`) ----------------------------------------------------------------------------

    def add_rate_limit_listener(self, listener: RateLimitListener) -> None:
        self.rest.add_rate_limit_listener(listener)

    async def closed_only(self) -> bool:
        return await self.rest.closed_only()

    async def rate_limit_tier(self) -> str | None:
        return await self.rest.rate_limit_tier()

    # -- state -------------------------------------------------------------------------------------------------

    def _venue_order(self, order: PolymarketOrder, ts: float | None) -> VenueOrder:
        order_type = order.order_type or self._order_types.get(order.order_id)
        if order_type is None:
            log.warning("order_type_unknown_assuming_gtc", order_id=order.order_id)
            order_type = OrderType.GTC
        return VenueOrder(
            order_id=order.order_id,
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            original_size=order.original_size,
            size_matched=order.size_matched,
            status=order.status,
            order_type=order_type,
            ts=ts if ts is not None else order.created_ts if order.created_ts is not None else self._wall_secs(),
        )

    def _venue_trades(self, trade: PolymarketTrade) -> list[VenueTrade]:
        if trade.status is TradeStatus.UNKNOWN:  # counted; the engine keeps the trade as it was
            key = trade.status_text if len(self._unknown_status) < _MAX_STATUS_TEXTS else "(other)"
            if self._unknown_status[key] == 0:
                log.warning("trade_status_unknown", status=trade.status_text, trade_id=trade.trade_id)
            self._unknown_status[key] += 1
        ts = trade.ts if trade.ts is not None else self._wall_secs()
        match_ts = trade.match_ts if trade.match_ts is not None else ts
        out = []
        for fill in trade.fills:
            params = self._params.get(fill.token_id)
            if params is not None and params.market is not None:
                fee = params.market.fees.fee(fill.size, fill.price, fill.liquidity)
            else:
                fee = ZERO
                if self._unknown_fee[fill.token_id] == 0:
                    log.warning("fill_fee_unknown", token_id=fill.token_id, trade_id=trade.trade_id)
                self._unknown_fee[fill.token_id] += 1
            out.append(
                VenueTrade(
                    trade_id=trade.trade_id,
                    order_id=fill.order_id,
                    token_id=fill.token_id,
                    side=fill.side,
                    price=fill.price,
                    size=fill.size,
                    fee=fee,
                    liquidity=fill.liquidity,
                    status=trade.status,
                    match_ts=match_ts,
                    ts=ts,
                )
            )
        return out

    async def open_orders(self) -> list[VenueOrder]:
        return [self._venue_order(o, None) for o in await self.rest.open_orders()]

    async def lookup(self, order_id: str) -> VenueOrder | None:
        """The venue's view of one order, or None if it does not know it: resolves an ambiguous submit."""
        order = await self.rest.get_order(order_id)
        return None if order is None else self._venue_order(order, None)

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        after = None if since_ts is None else int(since_ts)
        out: list[VenueTrade] = []
        for trade in await self.rest.trades(after=after):
            out.extend(self._venue_trades(trade))
        return out

    async def balances(self) -> Balances:
        """pUSD not reserved by our open buys, and the shares of every token we were told about."""
        collateral = await self.rest.balance_allowance(AssetType.COLLATERAL)
        reserved = sum(
            (o.price * (o.original_size - o.size_matched) for o in await self.rest.open_orders() if o.side is Side.BUY),
            ZERO,
        )
        return Balances(collateral=collateral.balance - reserved, shares=await self.positions())

    async def positions(self) -> Mapping[str, Decimal]:
        shares: dict[str, Decimal] = {}
        for token_id in sorted(self._params):
            held = (await self.rest.balance_allowance(AssetType.CONDITIONAL, token_id)).balance
            if held:
                shares[token_id] = held
        return shares

    # -- events ------------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[VenueEvent]]:
        """Our order and trade events from the user channel (reconnecting, backfilled after a reconnect).

        Returns once the first connection is up and subscribed (the caller bounds the wait), so that what it
        does next is reported; the venue sends no acknowledgement, so a subscription still in flight is a
        window of a few milliseconds."""
        raw_send, raw_receive = trio.open_memory_channel[UserEvent](self._settings.event_buffer)
        send, receive = trio.open_memory_channel[VenueEvent](self._settings.event_buffer)
        reconnected = _Flag()
        stream = PolymarketUserStream(
            self._ws_factory,
            self.credentials,
            addresses=(self.signer.address, self.signer.funder),
            settings=self._settings.user_stream,
            on_connect=lambda count: reconnected.set() if count > 1 else None,
        )
        self._streams.append(stream)
        state = _StreamState()
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.run, raw_send)
            nursery.start_soon(self._translate, raw_receive, send.clone(), state)
            nursery.start_soon(self._backfill, reconnected, send.clone(), state)
            send.close()
            await stream.wait_connected()
            with receive:
                yield receive
            nursery.cancel_scope.cancel(reason="venue events closed by caller")
        self._streams.remove(stream)

    async def _translate(
        self,
        raw: trio.MemoryReceiveChannel[UserEvent],
        send: trio.MemorySendChannel[VenueEvent],
        state: _StreamState,
    ) -> None:
        async with raw, send:
            async for event in raw:
                if isinstance(event, PolymarketOrderUpdate):
                    await send.send(self._venue_order(event.order, event.ts))
                    continue
                if event.match_ts is not None:
                    state.last_match_ts = max(state.last_match_ts or 0.0, event.match_ts)
                for trade in self._venue_trades(event):
                    await send.send(trade)

    async def _backfill(self, flag: _Flag, send: trio.MemorySendChannel[VenueEvent], state: _StreamState) -> None:
        """After each reconnect: our trades since the last one seen, and our open orders, over REST."""
        async with send:
            while True:
                await flag.wait()
                since = None if state.last_match_ts is None else state.last_match_ts - _BACKFILL_MARGIN_SECS
                try:
                    trades = await self.trades(since_ts=since)
                    orders = await self.open_orders()
                except (VenueError, trio.TooSlowError) as exc:  # the next reconnect tries again; a bug surfaces
                    log.warning("user_ws_backfill_failed", error=str(exc))
                    continue
                self._backfills += 1
                log.info("user_ws_backfilled", trades=len(trades), open_orders=len(orders))
                backlog: list[VenueEvent] = [*trades, *orders]
                for item in backlog:
                    await send.send(item)


class _Flag:
    """A re-armable event: `set()` wakes one `wait()`, which re-arms it."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


@dataclass(slots=True)
class _StreamState:
    last_match_ts: float | None = None


def _wall_secs() -> float:
    return time.time()


@asynccontextmanager
async def open_polymarket_venue(
    settings: PolymarketVenueSettings,
    signer: OrderSigner,
    *,
    credentials: ApiCredentials | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    ws_factory: WebSocketFactory | None = None,
    wall_secs: Callable[[], float] = _wall_secs,
    tick_of: Callable[[str], Decimal | None] | None = None,
    may_send: Callable[[], bool] = lambda: True,
) -> AsyncIterator[PolymarketVenue]:
    """Connect to the venue as `signer`: create or derive the API key (unless `credentials` are given), start
    the dead-man heartbeat (unless disabled), yield the venue; on exit stop its tasks, then close the REST client.
    `tick_of(token_id)`: the tick in force for a token now (None when unknown), read at every `prepare`.
    `may_send()` (active/standby): asked before each heartbeat; False withholds it."""
    async with open_rest_client(
        settings.rest_url,
        signer,
        credentials,
        transport=transport,
        wall_secs=lambda: int(wall_secs()),
        max_connections=settings.max_connections,
    ) as rest:
        if settings.use_server_time:
            await rest.sync_clock()
        if credentials is None:
            await rest.create_or_derive_api_key(settings.api_key_nonce)
        factory = ws_factory or websocket_factory(settings.ws_user_url)
        async with trio.open_nursery() as nursery:
            venue = PolymarketVenue(rest, settings, ws_factory=factory, wall_secs=wall_secs, tick_of=tick_of)
            if settings.heartbeat_enabled:
                venue.heartbeat = HeartbeatService(rest.heartbeat, settings.heartbeat, allowed=may_send)
                await nursery.start(venue.heartbeat.run)
            try:
                yield venue
            finally:
                nursery.cancel_scope.cancel(reason="polymarket venue closed")
