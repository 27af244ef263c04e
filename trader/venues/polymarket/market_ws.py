"""One connection to the Polymarket market channel (protocol.md §2.1-2.2).

`open_market_connection(factory, asset_ids)` opens a WebSocket through `factory`, sends the subscription (with
`initial_dump`, so the venue starts with a `book` per asset) and yields a `MarketConnection`: text frames in,
`PING` and subscription changes out. It translates websocket and network exceptions at this edge:

* connecting or the handshake failed  -> `VenueConnectionError`
* an established connection broke     -> `VenueDisconnected` (from `receive`, `ping`, `subscribe`, ...)

Timing (PING period, stall detection, reconnects) belongs to the caller, `trader.engine.market_data`.

A `WebSocketFactory` is any zero-argument callable returning an async context manager of a trio-websocket
connection. `websocket_factory(url)` connects over the network. `memory_websocket_factory(nursery, handler)`
connects over in-memory streams to a handler that plays the venue, so tests run on trio's `MockClock` with no
real socket.
"""

from __future__ import annotations

import math
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import cast

import msgspec
import trio
import trio_websocket
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from trader.errors import ConfigError
from trader.venues.errors import VenueConnectionError, VenueDisconnected
from trader.venues.polymarket.schemas import WireSubscribe, WireSubscriptionChange

__all__ = [
    "MARKET_WS_URL",
    "MarketConnection",
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


class MarketConnection:
    """An open, subscribed market-channel socket."""

    __slots__ = ("_ws", "custom_feature_enabled")

    def __init__(self, ws: WebSocketConnection, *, custom_feature_enabled: bool = False) -> None:
        self._ws = ws
        self.custom_feature_enabled = custom_feature_enabled

    async def receive(self) -> str | bytes:
        """The next text frame (`PONG` included). Raises `VenueDisconnected` when the connection is gone."""
        try:
            return await self._ws.get_message()
        except ConnectionClosed as exc:
            raise VenueDisconnected(f"market channel closed: {exc.reason}") from None

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


@asynccontextmanager
async def open_market_connection(
    factory: WebSocketFactory, asset_ids: Iterable[str], *, custom_feature_enabled: bool = False
) -> AsyncIterator[MarketConnection]:
    """Connect, subscribe to `asset_ids`, yield the connection; close it on exit."""
    stage = "connect"
    try:
        async with factory() as ws:
            stage = "body"
            connection = MarketConnection(ws, custom_feature_enabled=custom_feature_enabled)
            await connection.subscribe_initial(asset_ids)
            yield connection
            stage = "close"
    except (HandshakeError, ConnectionClosed, OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        if stage == "connect":
            raise VenueConnectionError(f"market channel connect failed: {exc!r}") from exc
        if stage == "body":
            raise
        # Closing a dead connection failed (e.g. the close handshake timed out): it is closed all the same.
