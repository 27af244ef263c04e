"""In-memory WebSocket connections for tests and simulations: the real websocket protocol (trio-websocket) over
`trio.testing` memory streams, so time-based behaviour runs on the MockClock with no socket in the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection

from trader.venues.polymarket.market_ws import MAX_MESSAGE_SIZE, WebSocketFactory, websocket_over_stream

__all__ = ["ServerHandler", "memory_websocket_factory"]


ServerHandler = Callable[[WebSocketConnection], Awaitable[Any]]


def memory_websocket_factory(
    nursery: trio.Nursery, handler: ServerHandler, *, close_timeout_secs: float = 1.0
) -> WebSocketFactory:
    """Each call connects a new in-memory client to a new `handler(server_ws)` task started in `nursery`.

    The handler returning closes the server side; the client leaving its context closes the client side.
    """

    @asynccontextmanager
    async def connect() -> AsyncIterator[WebSocketConnection]:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        nursery.start_soon(_serve_one, server_stream, handler, close_timeout_secs)
        async with websocket_over_stream(
            client_stream,
            "memory",
            "/ws/market",
            max_message_size=MAX_MESSAGE_SIZE,
            handshake_timeout_secs=close_timeout_secs,
            close_timeout_secs=close_timeout_secs,
        ) as ws:
            yield ws

    return connect


async def _serve_one(stream: trio.abc.Stream, handler: ServerHandler, close_timeout_secs: float) -> None:
    async with trio.open_nursery() as nursery:
        request = await trio_websocket.wrap_server_stream(nursery, stream, max_message_size=MAX_MESSAGE_SIZE)
        try:
            ws = await request.accept()
        except ConnectionClosed:
            nursery.cancel_scope.cancel()
            return
        try:
            await handler(ws)
        except ConnectionClosed:
            pass  # the client went away: the normal end of a session
        finally:
            with trio.move_on_after(close_timeout_secs) as scope:
                scope.shield = True
                await ws.aclose()
            # The reader may still be completing a close that another task started: give it time, not forever.
            nursery.cancel_scope.deadline = trio.current_time() + close_timeout_secs
