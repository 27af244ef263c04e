"""One market-channel connection: subscription frames, PING, exceptions translated at the edge, and the
`MarketFeed` port on it (frames parsed against the caller's live ticks, the frame tap)."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from functools import partial

import pytest
import trio
import trio_websocket
from trio_websocket import WebSocketConnection, WebSocketRequest

from trader.domain.feed import BookSnapshot, ParsedFrame, PriceChange
from trader.errors import ConfigError
from trader.testing.websockets import memory_websocket_factory
from trader.venues.base import MarketFeed
from trader.venues.errors import VenueConnectionError, VenueDisconnected
from trader.venues.polymarket.market_ws import (
    PolymarketMarketFeed,
    open_market_connection,
    websocket_factory,
)
from trader.venues.polymarket.parse import UNKNOWN_ASSET

YES, NO = "1" * 77, "2" * 77


async def serve(nursery: trio.Nursery, handler: object) -> str:
    server = await nursery.start(
        partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None)  # type: ignore[arg-type]
    )
    return f"ws://127.0.0.1:{server.port}/ws/market"


async def test_subscribes_pings_and_changes_subscriptions_over_a_real_socket(nursery: trio.Nursery) -> None:
    received: list[str] = []
    done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        while len(received) < 4:
            message = await ws.get_message()
            assert isinstance(message, str)
            received.append(message)
            if message == "PING":
                await ws.send_message("PONG")
        await ws.send_message('[{"event_type":"book"}]')
        await done.wait()

    url = await serve(nursery, handler)
    with trio.fail_after(10):
        async with open_market_connection(websocket_factory(url), [YES, NO], custom_feature_enabled=True) as conn:
            await conn.ping()
            assert await conn.receive() == "PONG"
            await conn.subscribe(["3"])
            await conn.unsubscribe([NO])
            assert await conn.receive() == '[{"event_type":"book"}]'
        done.set()
    assert json.loads(received[0]) == {
        "assets_ids": [YES, NO],
        "type": "market",
        "initial_dump": True,
        "custom_feature_enabled": True,
    }
    assert received[1] == "PING"
    assert json.loads(received[2]) == {"operation": "subscribe", "assets_ids": ["3"], "custom_feature_enabled": True}
    assert json.loads(received[3]) == {"operation": "unsubscribe", "assets_ids": [NO], "custom_feature_enabled": True}


async def test_the_server_going_away_is_venue_disconnected(nursery: trio.Nursery) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()  # the subscription
        await ws.aclose(code=1001, reason="restarting")

    url = await serve(nursery, handler)
    with trio.fail_after(10):
        async with open_market_connection(websocket_factory(url), [YES]) as conn:
            with pytest.raises(VenueDisconnected, match="restarting"):
                await conn.receive()
            with pytest.raises(VenueDisconnected):
                await conn.ping()


async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(10), pytest.raises(VenueConnectionError, match="connect failed"):
        async with open_market_connection(websocket_factory(f"ws://127.0.0.1:{port}/ws/market"), [YES]):
            pytest.fail("connected to nothing")


async def test_a_rejected_handshake_is_a_connection_error(nursery: trio.Nursery) -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"forbidden")

    url = await serve(nursery, handler)
    with trio.fail_after(10), pytest.raises(VenueConnectionError):
        async with open_market_connection(websocket_factory(url), [YES]):
            pytest.fail("the venue refused us")


async def test_errors_in_the_body_are_not_mistaken_for_connect_failures(nursery: trio.Nursery) -> None:
    async def handler(ws: WebSocketConnection) -> None:
        await ws.get_message()
        await trio.sleep_forever()

    with trio.fail_after(10), pytest.raises(OSError, match="ours"):
        async with open_market_connection(memory_websocket_factory(nursery, handler), [YES]):
            raise OSError("ours")


async def test_memory_connections_close_from_either_side(autojump_clock: trio.testing.MockClock) -> None:
    closed_by_server: list[str] = []

    async def handler(ws: WebSocketConnection) -> None:
        message = await ws.get_message()
        closed_by_server.append(str(message))
        # returning closes the server side

    async with trio.open_nursery() as nursery:
        factory = memory_websocket_factory(nursery, handler)
        async with open_market_connection(factory, [YES]) as conn:
            with pytest.raises(VenueDisconnected):
                await conn.receive()
        # and a client that leaves first
        async with open_market_connection(factory, [NO]):
            pass
    assert len(closed_by_server) == 2


@pytest.mark.parametrize("url", ["http://example.com/ws", "ws:///no-host", "not a url"])
def test_a_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="ws://"):
        websocket_factory(url)


# ----------------------------------------------------------------------------------------------------------------
# The MarketFeed port


def _book(asset: str, bid: str) -> str:
    return json.dumps({"event_type": "book", "asset_id": asset, "bids": [{"price": bid, "size": "5"}], "asks": []})


async def test_the_feed_parses_against_the_callers_live_ticks(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(ws: WebSocketConnection) -> None:
        assert json.loads(await ws.get_message())["assets_ids"] == [YES]
        await ws.send_message(_book(YES, "0.5"))
        assert json.loads(await ws.get_message()) == {"operation": "subscribe", "assets_ids": [NO]} | {
            "custom_feature_enabled": True
        }
        await ws.send_message(_book(NO, "0.45"))  # off the 0.1 grid: the caller's tick, not the one it had
        assert await ws.get_message() == "PING"
        await ws.send_message("PONG")
        await ws.send_message(_book(NO, "0.4"))  # the caller stopped following NO

    ticks = {YES: Decimal("0.01")}
    async with trio.open_nursery() as nursery:
        feed: MarketFeed = PolymarketMarketFeed(memory_websocket_factory(nursery, handler))
        async with feed.connect([YES], ticks, custom_feature_enabled=True) as conn:
            first = await conn.receive()
            assert first.events == [BookSnapshot(YES, None, ((Decimal("0.5"), Decimal(5)),), (), None)]
            assert first.on_applied is None  # no tap, nothing to tell
            ticks[NO] = Decimal("0.1")
            await conn.subscribe([NO])
            second = await conn.receive()
            assert second.events == []
            assert [(d.reason, d.asset_id) for d in second.drops] == [("PRICE_OFF_TICK", NO)]
            assert second.suspect == {NO}
            await conn.ping()
            assert (await conn.receive()).pong
            del ticks[NO]
            third = await conn.receive()
            assert [(d.reason, d.asset_id) for d in third.drops] == [(UNKNOWN_ASSET, NO)]
            assert third.suspect == set()
            with pytest.raises(VenueDisconnected):
                await conn.receive()


async def test_the_feeds_tap_hears_received_and_parsed_and_applied_from_the_consumer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    change = json.dumps(
        {
            "event_type": "price_change",
            "price_changes": [{"asset_id": YES, "price": "0.5", "size": "1", "side": "BUY"}],
        }
    )

    async def handler(ws: WebSocketConnection) -> None:
        await ws.get_message()
        await ws.send_message(change)
        await ws.send_message("PONG")
        await trio.sleep_forever()

    seen: list[tuple[str, str | bytes]] = []
    async with trio.open_nursery() as nursery:
        feed = PolymarketMarketFeed(memory_websocket_factory(nursery, handler), frame_tap=lambda *a: seen.append(a))
        async with feed.connect([YES], {YES: Decimal("0.01")}) as conn:
            parsed: ParsedFrame = await conn.receive()
            assert [type(e) for e in parsed.events] == [PriceChange]
            assert seen == [("received", change), ("parsed", change)]
            assert parsed.on_applied is not None
            parsed.on_applied()
            assert seen[2:] == [("applied", change)]
            assert (await conn.receive()).pong
            assert seen[3:] == [("received", "PONG"), ("parsed", "PONG")]
        nursery.cancel_scope.cancel()
