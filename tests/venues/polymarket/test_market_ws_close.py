"""Closing a market connection: polite when leaving normally, immediate when the owner is being cancelled."""

from __future__ import annotations

import trio
import trio.testing
from trio_websocket import WebSocketConnection

from trader.testing.websockets import memory_websocket_factory


async def _echo_until_closed(ws: WebSocketConnection) -> None:
    await trio.sleep_forever()


async def test_a_cancelled_connection_does_not_wait_out_the_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as servers:
        factory = memory_websocket_factory(servers, _echo_until_closed, close_timeout_secs=2.0)
        start = trio.current_time()
        with trio.CancelScope() as scope:
            async with factory():
                scope.cancel()
                await trio.sleep(10)
        assert trio.current_time() - start < 0.1  # was the full 2 s: the reader that waits for the reply is gone
        servers.cancel_scope.cancel()


async def test_a_normal_close_completes_the_handshake(autojump_clock: trio.testing.MockClock) -> None:
    closed = trio.Event()

    async def server(ws: WebSocketConnection) -> None:
        try:
            await ws.get_message()
        except Exception:
            closed.set()
            raise

    async with trio.open_nursery() as servers:
        factory = memory_websocket_factory(servers, server, close_timeout_secs=2.0)
        async with factory():
            pass
        with trio.fail_after(1):
            await closed.wait()
        servers.cancel_scope.cancel()
    assert closed.is_set()
