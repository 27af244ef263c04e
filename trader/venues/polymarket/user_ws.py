"""The user channel (protocol.md §3): our orders' and trades' events, authenticated with the L2 credentials.

```
stream = PolymarketUserStream(websocket_factory(url), credentials, addresses=(signer.address, signer.funder))
await nursery.start(stream.run, send_channel)      # reconnects forever; events go to send_channel
```

Per connection: subscribe `{"type":"user","auth":{...},"markets":[...]}` (no markets = all of ours), text `PING`
every `ping_interval_secs`, and any frame (`PONG` included) proves the socket alive; none for
`stall_timeout_secs` is a stall and the socket is recycled. Every loss reconnects after `Backoff.delay(attempt)`;
the attempt count restarts once a connection stayed up `healthy_reset_secs`. Events missed while disconnected are
NOT replayed by the venue: `on_connect(count)` tells the owner, which reconciles over REST.

Frames are parsed here (`parse_user_frame`, pure): a frame is one object or an array; `order` events become
`PolymarketOrderUpdate` (statuses incl. `CANCELED_<reason>` and `INVALID`), `trade` events `PolymarketTrade` with only
OUR fills (as taker, and as a maker inside `maker_orders`, matched by our API key or wallet addresses); events
without `event_type` (older captures) are classified by `type`. Timestamps in seconds, milliseconds or ISO 8601 are
normalised to epoch seconds; `match_time` and `matchtime` are both read. A bad frame is counted by reason and
dropped; the connection is kept. The credentials are sent on the socket and never logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import msgspec
import structlog
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from trader.infra.backoff import Backoff, BackoffCounter
from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error
from trader.infra.ticks import Ticker
from trader.venues.errors import VenueProtocolError
from trader.venues.polymarket import market_ws
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.market_ws import WebSocketFactory
from trader.venues.polymarket.rest import PolymarketOrder, PolymarketTrade, parse_order, parse_timestamp, parse_trade
from trader.venues.polymarket.user_schemas import (
    WireApiKey,
    WireTrade,
    WireUserEnvelope,
    WireUserOrder,
    WireUserSubscribe,
)

__all__ = [
    "USER_WS_URL",
    "PolymarketOrderUpdate",
    "PolymarketUserStream",
    "UserEvent",
    "UserStreamSettings",
    "UserStreamStatistics",
    "WebSocketFactory",
    "parse_user_frame",
    "subscribe_message",
    "websocket_factory",
]

log = structlog.get_logger(__name__)

USER_WS_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
PING: Final = "PING"
PONG: Final = "PONG"
MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024

# Drop reasons (stable codes).
NOT_JSON: Final = "NOT_JSON"
BAD_SHAPE: Final = "BAD_SHAPE"
BAD_VALUE: Final = "BAD_VALUE"
UNKNOWN_EVENT: Final = "UNKNOWN_EVENT"
VENUE_ERROR: Final = "VENUE_ERROR"
NOT_OURS: Final = "NOT_OURS"

ORDER_EVENT_TYPES: Final = frozenset({"PLACEMENT", "UPDATE", "CANCELLATION"})


def websocket_factory(
    url: str = USER_WS_URL, *, connect_timeout_secs: float = 10.0, disconnect_timeout_secs: float = 2.0
) -> WebSocketFactory:
    """Connections to `url` over the network (TLS for wss://): the market channel's factory, which also closes the
    TCP stream that trio-websocket 0.12 leaves open, with the user channel's frame size limit."""
    return market_ws.websocket_factory(
        url,
        connect_timeout_secs=connect_timeout_secs,
        disconnect_timeout_secs=disconnect_timeout_secs,
        max_message_size=MAX_MESSAGE_SIZE,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolymarketOrderUpdate:
    """A user-channel `order` event. `kind`: PLACEMENT (on the book), UPDATE (matched some), CANCELLATION."""

    kind: str
    order: PolymarketOrder
    ts: float | None  # of the event (epoch seconds), when the venue gave one


UserEvent = PolymarketOrderUpdate | PolymarketTrade

# -- parsing (pure) ---------------------------------------------------------------------------------------------

_envelope = msgspec.json.Decoder(WireUserEnvelope)
_order_decoder = msgspec.json.Decoder(WireUserOrder)
_trade_decoder = msgspec.json.Decoder(WireTrade)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_encode = msgspec.json.Encoder().encode


class _Drop(Exception):
    """Control flow inside the parser: this item is dropped, for `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _parse_one(raw: bytes, api_key: str, addresses: tuple[str, ...]) -> UserEvent | None:
    try:
        envelope = _envelope.decode(raw)
    except msgspec.ValidationError as exc:
        raise _Drop(BAD_SHAPE, str(exc)) from None
    except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, or nested too deeply
        raise _Drop(NOT_JSON, describe_json_error(exc)) from None
    kind = (envelope.event_type or "").lower()
    sub_type = (envelope.type or "").upper()
    if not kind:
        kind = "trade" if sub_type == "TRADE" else "order" if sub_type in ORDER_EVENT_TYPES else ""
    try:
        if kind == "order":
            wire_order = _order_decoder.decode(raw)
            if sub_type not in ORDER_EVENT_TYPES:
                raise _Drop(UNKNOWN_EVENT, f"order event of type {sub_type[:30]!r}")
            order = parse_order(wire_order, what="order")
            return PolymarketOrderUpdate(kind=sub_type, order=order, ts=parse_timestamp(wire_order.timestamp, "ts"))
        if kind == "trade":
            trade = parse_trade(_trade_decoder.decode(raw), api_key=api_key, addresses=addresses, what="trade")
            return trade if trade.fills else None
    except msgspec.ValidationError as exc:
        raise _Drop(BAD_SHAPE, f"{kind}: {exc}") from None
    except JSON_INPUT_ERRORS as exc:  # the envelope skips what it does not read: the rest may still be bad
        raise _Drop(NOT_JSON, f"{kind}: {describe_json_error(exc)}") from None
    except VenueProtocolError as exc:
        raise _Drop(BAD_VALUE, str(exc)) from None
    except ValueError as exc:  # InputError from a timestamp
        raise _Drop(BAD_VALUE, f"{kind}: {exc}") from None
    if b'"error"' in raw:
        raise _Drop(VENUE_ERROR, raw[:200].decode("utf-8", "replace"))
    raise _Drop(UNKNOWN_EVENT, f"event_type {kind[:30]!r}")


def parse_user_frame(
    data: str | bytes, *, api_key: str, addresses: Iterable[str] = ()
) -> tuple[list[UserEvent], list[tuple[str, str]]]:
    """(events, drops) of one text frame; `PONG` is neither. A drop is (reason code, detail)."""
    try:
        raw = data.encode() if isinstance(data, str) else data
    except UnicodeEncodeError as exc:  # a str with a lone surrogate: no UTF-8 text could have said that
        return [], [(NOT_JSON, describe_json_error(exc))]
    stripped = raw.strip()
    if stripped == PONG.encode():
        return [], []
    wallets = tuple(addresses)
    if stripped.startswith(b"["):
        try:
            items = [bytes(item) for item in _raw_list.decode(stripped)]
        except JSON_INPUT_ERRORS as exc:
            return [], [(NOT_JSON, describe_json_error(exc))]
    else:
        items = [stripped]
    events: list[UserEvent] = []
    drops: list[tuple[str, str]] = []
    for item in items:
        try:
            event = _parse_one(item, api_key, wallets)
        except _Drop as drop:
            drops.append((drop.reason, str(drop)))
            continue
        if event is None:
            drops.append((NOT_OURS, "a trade with none of our orders"))
        else:
            events.append(event)
    return events, drops


def subscribe_message(credentials: ApiCredentials, markets: Iterable[str] = ()) -> str:
    """The subscription frame. It carries the raw secret: send it, never log it."""
    auth = WireApiKey(credentials.api_key, credentials.secret, credentials.passphrase)
    return _encode(WireUserSubscribe(type="user", auth=auth, markets=list(markets))).decode()


def _closed(exc: ConnectionClosed) -> str:
    reason = exc.reason
    if reason is None:
        return "closed by the venue"
    return f"closed by the venue ({reason.code} {reason.reason or ''})".strip()


# -- the service ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStreamSettings:
    """Defaults: PING every 10 s, a stall after 30 s without any frame (the official SDKs' numbers), backoff 0.5 s
    doubling to 30 s with 25% jitter, reset after 60 s connected; all markets."""

    ping_interval_secs: float = 10.0
    stall_timeout_secs: float = 30.0
    healthy_reset_secs: float = 60.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_secs=0.5, max_secs=30.0))
    markets: tuple[str, ...] = ()  # condition ids; empty = every market

    def __post_init__(self) -> None:
        for name in ("ping_interval_secs", "stall_timeout_secs", "healthy_reset_secs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.stall_timeout_secs <= self.ping_interval_secs:
            raise ValueError("stall_timeout_secs must be longer than ping_interval_secs (a PONG answers each PING)")


@dataclass(frozen=True, slots=True)
class UserStreamStatistics:
    connected: bool
    connects: int
    reconnects: int
    stalls: int
    pings: int
    frames: int
    events: int
    drops: Mapping[str, int]
    current_buffer_used: int  # events waiting in the output channel


class PolymarketUserStream:
    """Our order and trade events from the user channel, forever (reconnecting).

    Start it with `await nursery.start(stream.run, send_channel)`."""

    def __init__(
        self,
        factory: WebSocketFactory,
        credentials: ApiCredentials,
        *,
        addresses: Iterable[str] = (),
        settings: UserStreamSettings | None = None,
        on_connect: Callable[[int], None] | None = None,
    ) -> None:
        self._factory = factory
        self._credentials = credentials
        self._addresses = tuple(addresses)
        self._settings = settings or UserStreamSettings()
        self._on_connect = on_connect
        self._connected = trio.Event()
        self._is_connected = False
        self._connects = 0
        self._reconnects = 0
        self._stalls = 0
        self._pings = 0
        self._frames = 0
        self._events = 0
        self._drops: Counter[str] = Counter()
        self._send: trio.MemorySendChannel[UserEvent] | None = None

    def statistics(self) -> UserStreamStatistics:
        buffered = self._send.statistics().current_buffer_used if self._send is not None else 0
        return UserStreamStatistics(
            connected=self._is_connected,
            connects=self._connects,
            reconnects=self._reconnects,
            stalls=self._stalls,
            pings=self._pings,
            frames=self._frames,
            events=self._events,
            drops=dict(self._drops),
            current_buffer_used=buffered,
        )

    async def wait_connected(self) -> None:
        """Return once a connection is up and subscribed (at once if it is now)."""
        await self._connected.wait()

    async def run(
        self, send: trio.MemorySendChannel[UserEvent], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, subscribe, deliver events to `send`; on any loss, back off and reconnect. Never returns on its
        own; closes `send` when cancelled."""
        self._send = send
        counter = BackoffCounter(self._settings.backoff, self._settings.healthy_reset_secs)
        task_status.started()
        async with send:
            while True:
                reason = await self._connect_once(send, counter)
                delay = counter.next_delay(trio.current_time())
                self._reconnects += 1
                log.warning("user_ws_reconnecting", reason=reason, delay_secs=round(delay, 3))
                await trio.sleep(delay)

    async def _connect_once(self, send: trio.MemorySendChannel[UserEvent], counter: BackoffCounter) -> str:
        stage = "connect"
        try:
            async with self._factory() as ws:
                stage = "subscribe"
                await ws.send_message(subscribe_message(self._credentials, self._settings.markets))
                stage = "body"
                now = trio.current_time()
                counter.record_connected(now)
                self._connects += 1
                self._is_connected = True
                self._connected.set()
                log.info("user_ws_connected", api_key=self._credentials.api_key, connects=self._connects)
                if self._on_connect is not None:
                    self._on_connect(self._connects)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._ping_loop, ws)
                    reason = await self._read_loop(ws, send, counter, now)
                    nursery.cancel_scope.cancel()
                stage = "close"
                return reason
        except ConnectionClosed as exc:
            return _closed(exc)
        except (HandshakeError, OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
            if stage == "close":
                return "closed"
            return f"{stage} failed: {type(exc).__name__}: {exc}"
        finally:
            self._is_connected = False
            if self._connected.is_set():
                self._connected = trio.Event()

    async def _read_loop(
        self, ws: WebSocketConnection, send: trio.MemorySendChannel[UserEvent], counter: BackoffCounter, start: float
    ) -> str:
        stall = self._settings.stall_timeout_secs
        last = start
        while True:
            data: str | bytes | None = None
            with trio.move_on_at(last + stall):
                try:
                    data = await ws.get_message()
                except ConnectionClosed as exc:
                    return _closed(exc)
            if data is None:
                self._stalls += 1
                return f"stall: no frame for {stall} s"
            last = trio.current_time()
            counter.record_healthy(last)
            self._frames += 1
            events, drops = parse_user_frame(data, api_key=self._credentials.api_key, addresses=self._addresses)
            for reason, detail in drops:
                self._drops[reason] += 1
                if reason != NOT_OURS:
                    log.warning("user_ws_frame_dropped", reason=reason, detail=detail[:200])
            for event in events:
                self._events += 1
                await send.send(event)
            if events:
                # Time spent waiting for a slow consumer is not the venue's silence: restart the stall clock.
                last = trio.current_time()

    async def _ping_loop(self, ws: WebSocketConnection) -> None:
        """PING every period, drift-free; after an overrun the missed ticks are skipped."""
        ticks = Ticker(self._settings.ping_interval_secs)
        while True:
            await ticks.next()
            try:
                await ws.send_message(PING)
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the reader sees the close (or the stall) and ends the connection
            self._pings += 1
