"""Connections to the Polymarket market channel (protocol.md §2.1-2.2), and the `MarketFeed` port on it.

```
PolymarketMarketFeed(factory).connect(assets, ticks)   the port (trader.venues.base.MarketFeed), for the engine
└── ParsedMarketConnection: text frame -> parse_market_frame(text, ticks) -> ParsedFrame (trader.domain.feed)
open_market_connection(factory, assets)                 the same socket, text frames as they come
└── MarketConnection
```

Both open a WebSocket through `factory`, send the subscription (with `initial_dump`, so the venue starts with a
`book` per asset) and yield a connection: frames in, `PING` and subscription changes out. The market-data service
(`trader.engine.market_data`) sees only the port: it gets parsed, venue-neutral frames, parsed here inside
`receive()` against the service's live tick map (`trader.venues.polymarket.parse`). Websocket and network
exceptions are translated at this edge:

* connecting or the handshake failed  -> `VenueConnectionError`
* an established connection broke     -> `VenueDisconnected` (from `receive`, `ping`, `subscribe`, ...)

Timing (PING period, stall detection, reconnects) belongs to the caller, `trader.engine.market_data`.

A `WebSocketFactory` is any zero-argument callable returning an async context manager of a trio-websocket
connection. `websocket_factory(url)` connects over the network. `memory_websocket_factory(nursery, handler)`
(`trader.testing.websockets`) connects over in-memory streams to a handler that plays the venue, so tests run on
trio's `MockClock` with no real socket; `PolymarketMarketFeed(memory_websocket_factory(...))` is a feed over it.
"""

from __future__ import annotations

import math
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Literal, TypeVar, cast

import msgspec
import trio
import trio_websocket
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from trader.domain.feed import ParsedFrame
from trader.errors import ConfigError
from trader.venues.errors import VenueConnectionError, VenueDisconnected
from trader.venues.polymarket.parse import parse_market_frame
from trader.venues.polymarket.schemas import WireSubscribe, WireSubscriptionChange

__all__ = [
    "MARKET_WS_URL",
    "FrameStage",
    "FrameTap",
    "MarketConnection",
    "ParsedMarketConnection",
    "PolymarketMarketFeed",
    "WebSocketFactory",
    "open_market_connection",
    "websocket_factory",
    "websocket_over_stream",
]

#: how long a cancelled connection spends on its close handshake
_CLOSE_WHEN_CANCELLED_SECS = 0.05
MARKET_WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
PING = "PING"
#: A `book` frame of a deep market is tens of KB; the initial dump of 200 assets arrives as one array.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

WebSocketFactory = Callable[[], AbstractAsyncContextManager[WebSocketConnection]]

#: When a tapped frame is reported: the feed has its text, has parsed it, the consumer has applied it.
FrameStage = Literal["received", "parsed", "applied"]
FrameTap = Callable[[FrameStage, str | bytes], None]

_encode = msgspec.json.Encoder().encode


def websocket_factory(
    url: str = MARKET_WS_URL,
    *,
    connect_timeout_secs: float = 10.0,
    disconnect_timeout_secs: float = 2.0,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> WebSocketFactory:
    """Connections to `url` over the network (TLS for wss://).

    The TCP (or TLS) stream is opened here rather than by `trio_websocket.open_websocket_url`, so that it is
    always closed on exit: trio-websocket 0.12 leaves the client socket open when the server closes first.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"market websocket URL must be ws:// or wss:// with a host, got {url!r}")
    secure = parts.scheme == "wss"
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    host_header = host if parts.port is None else f"{host}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    async def open_stream() -> trio.abc.Stream:
        if secure:
            return await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=ssl.create_default_context(), https_compatible=True
            )
        return await trio.open_tcp_stream(host, port)

    @asynccontextmanager
    async def connect() -> AsyncIterator[WebSocketConnection]:
        with trio.fail_after(connect_timeout_secs):
            stream = await open_stream()
        try:
            async with websocket_over_stream(
                stream,
                host_header,
                resource,
                max_message_size=max_message_size,
                handshake_timeout_secs=connect_timeout_secs,
                close_timeout_secs=disconnect_timeout_secs,
            ) as ws:
                yield ws
        finally:
            await trio.aclose_forcefully(stream)

    return connect


@asynccontextmanager
async def websocket_over_stream(
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    max_message_size: int,
    handshake_timeout_secs: float,
    close_timeout_secs: float,
) -> AsyncIterator[WebSocketConnection]:
    """The client side of a websocket over `stream`; exceptions from the body come out unwrapped."""
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(handshake_timeout_secs):
                ws = await trio_websocket.wrap_client_stream(
                    nursery, cast(trio.SocketStream, stream), host, resource, max_message_size=max_message_size
                )
            try:
                yield ws
            finally:
                # Being cancelled, the reader that would receive the peer's close reply is cancelled too: send our
                # close frame but do not wait out the timeout for a reply that cannot be read.
                cancelled = trio.current_effective_deadline() == -math.inf
                with trio.move_on_after(_CLOSE_WHEN_CANCELLED_SECS if cancelled else close_timeout_secs) as scope:
                    scope.shield = True
                    await ws.aclose()
                # Let the reader finish the close handshake, but not forever.
                nursery.cancel_scope.deadline = trio.current_time() + close_timeout_secs
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            inner = group.exceptions[0]
            raise inner from inner.__cause__
        raise


class _MarketChannel:
    """The sending half of an open, subscribed market-channel socket, shared by both connection kinds below."""

    __slots__ = ("_ws", "custom_feature_enabled")

    def __init__(self, ws: WebSocketConnection, *, custom_feature_enabled: bool = False) -> None:
        self._ws = ws
        self.custom_feature_enabled = custom_feature_enabled

    async def _send(self, message: str) -> None:
        try:
            await self._ws.send_message(message)
        except ConnectionClosed as exc:
            raise VenueDisconnected(f"market channel closed: {exc.reason}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise VenueDisconnected(f"market channel broken: {exc!r}") from None

    async def ping(self) -> None:
        """The application-level keepalive: the text `PING`; the venue answers the text `PONG`."""
        await self._send(PING)

    async def subscribe_initial(self, asset_ids: Iterable[str]) -> None:
        message = WireSubscribe(assets_ids=list(asset_ids), custom_feature_enabled=self.custom_feature_enabled)
        await self._send(_encode(message).decode())

    async def subscribe(self, asset_ids: Iterable[str]) -> None:
        """Add assets to the open connection; the venue sends their `book` first."""
        message = WireSubscriptionChange("subscribe", list(asset_ids), self.custom_feature_enabled)
        await self._send(_encode(message).decode())

    async def unsubscribe(self, asset_ids: Iterable[str]) -> None:
        message = WireSubscriptionChange("unsubscribe", list(asset_ids), self.custom_feature_enabled)
        await self._send(_encode(message).decode())

    async def aclose(self) -> None:
        await self._ws.aclose()


class MarketConnection(_MarketChannel):
    """An open, subscribed market-channel socket: text frames in."""

    __slots__ = ()

    async def receive(self) -> str | bytes:
        """The next text frame (`PONG` included). Raises `VenueDisconnected` when the connection is gone."""
        try:
            return await self._ws.get_message()
        except ConnectionClosed as exc:
            raise VenueDisconnected(f"market channel closed: {exc.reason}") from None


class ParsedMarketConnection(_MarketChannel):
    """An open, subscribed market-channel socket: parsed frames in (`trader.venues.base.MarketFeedConnection`).

    Each frame is parsed by `parse_market_frame` against the caller's live `ticks`, inside `receive()`. This is the
    tick-to-trade path: no await but the socket's, nothing allocated beyond what parsing allocates."""

    __slots__ = ("_applied", "_frame_tap", "_last", "_ticks")

    def __init__(
        self,
        ws: WebSocketConnection,
        ticks: Mapping[str, Decimal],
        *,
        custom_feature_enabled: bool = False,
        frame_tap: FrameTap | None = None,
    ) -> None:
        super().__init__(ws, custom_feature_enabled=custom_feature_enabled)
        self._ticks = ticks
        self._frame_tap = frame_tap
        self._last: str | bytes = ""
        self._applied = self._tell_applied  # bound once: a tapped frame carries it without allocating

    async def receive(self) -> ParsedFrame:
        """The next frame, parsed (a `PONG` is `pong=True`). Raises `VenueDisconnected` when the connection is
        gone; a bad frame is counted in the result's `drops`, never raised."""
        try:
            data = await self._ws.get_message()
        except ConnectionClosed as exc:
            raise VenueDisconnected(f"market channel closed: {exc.reason}") from None
        tap = self._frame_tap
        if tap is None:
            return parse_market_frame(data, self._ticks)
        tap("received", data)
        parsed = parse_market_frame(data, self._ticks)
        tap("parsed", data)
        self._last = data
        parsed.on_applied = self._applied
        return parsed

    def _tell_applied(self) -> None:
        """`ParsedFrame.on_applied` of a tapped frame: the consumer applies a frame before it receives the next,
        so the last frame received is the one applied."""
        if self._frame_tap is not None:  # pragma: no branch (only tapped frames carry this)
            self._frame_tap("applied", self._last)


_Connection = TypeVar("_Connection", bound=_MarketChannel)


@asynccontextmanager
async def _subscribed(
    factory: WebSocketFactory, asset_ids: Iterable[str], connection: Callable[[WebSocketConnection], _Connection]
) -> AsyncIterator[_Connection]:
    """Connect, wrap the socket with `connection`, subscribe to `asset_ids`, yield it; close it on exit."""
    stage = "connect"
    try:
        async with factory() as ws:
            stage = "body"
            opened = connection(ws)
            await opened.subscribe_initial(asset_ids)
            yield opened
            stage = "close"
    except (HandshakeError, ConnectionClosed, OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        if stage == "connect":
            raise VenueConnectionError(f"market channel connect failed: {exc!r}") from exc
        if stage == "body":
            raise
        # Closing a dead connection failed (e.g. the close handshake timed out): it is closed all the same.


def open_market_connection(
    factory: WebSocketFactory, asset_ids: Iterable[str], *, custom_feature_enabled: bool = False
) -> AbstractAsyncContextManager[MarketConnection]:
    """Connect, subscribe to `asset_ids`, yield the connection (text frames); close it on exit."""
    return _subscribed(
        factory, asset_ids, lambda ws: MarketConnection(ws, custom_feature_enabled=custom_feature_enabled)
    )


class PolymarketMarketFeed:
    """The `MarketFeed` port (`trader.venues.base`) on the Polymarket market channel: each `connect` opens a
    WebSocket through `factory` and yields a `ParsedMarketConnection`.

    `frame_tap(stage, data)`, optional (None by default: nothing is called), is told of each text frame as it is
    "received" and "parsed" (in `receive()`), and "applied" when the consumer calls the frame's
    `ParsedFrame.on_applied` (the market-data service does once the frame's changes are published; not for a
    `PONG`), synchronously: a benchmark's timing point, with no wrapping of anyone's internals."""

    __slots__ = ("_factory", "_frame_tap")

    def __init__(self, factory: WebSocketFactory, *, frame_tap: FrameTap | None = None) -> None:
        self._factory = factory
        self._frame_tap = frame_tap

    def connect(
        self, asset_ids: Sequence[str], ticks: Mapping[str, Decimal], *, custom_feature_enabled: bool = False
    ) -> AbstractAsyncContextManager[ParsedMarketConnection]:
        """Connect, subscribe to `asset_ids`, yield the parsed connection; close it on exit. `ticks`: the caller's
        live map of the tick in force per followed asset (see `trader.venues.base`, MarketFeed)."""
        tap = self._frame_tap
        return _subscribed(
            self._factory,
            asset_ids,
            lambda ws: ParsedMarketConnection(ws, ticks, custom_feature_enabled=custom_feature_enabled, frame_tap=tap),
        )
