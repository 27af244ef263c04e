"""`SimVenue.wrap_connection`: a stream of the caller's stands in for each accepted connection, HTTP and WebSocket
alike (one listener serves both), and the sim serves through it as before."""

from __future__ import annotations

import json

import httpx
import trio
import trio_websocket

from tests.venues.sim.conftest import receive_json
from trader.venues.sim.venue import SimVenue


class _Recording(trio.abc.Stream):
    """Passes the bytes through, keeping a copy of what the client sent."""

    def __init__(self, inner: trio.SocketStream, received: bytearray) -> None:
        self._inner = inner
        self._received = received

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self._inner.receive_some(max_bytes)
        self._received += data
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_the_wrapper_sees_the_request_bytes_and_the_sim_still_answers(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    received = bytearray()
    sim.wrap_connection = lambda stream: _Recording(stream, received)
    yes, _no = sim.exchange.markets[0].token_ids

    reply = await http.post(sim.urls.rest + "/books", json=[{"token_id": yes}])

    assert reply.status_code == 200
    assert [book["asset_id"] for book in reply.json()] == [yes]
    assert received.startswith(b"POST /books HTTP/1.1\r\n")
    assert received.endswith(json.dumps([{"token_id": yes}]).replace(" ", "").encode())

    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(json.dumps({"type": "MARKET", "assets_ids": [yes]}))
        snapshot = await receive_json(ws)
    assert isinstance(snapshot, list)
    assert snapshot[0]["asset_id"] == yes
    assert b"GET /ws/market HTTP/1.1\r\n" in received
