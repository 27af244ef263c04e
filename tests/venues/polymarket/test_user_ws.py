"""The user channel: captured frames -> our events, and the connection loop (subscribe, PING, stall, reconnect)
on in-memory websockets under trio's MockClock."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import WebSocketConnection

from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.numbers import Side
from trader.infra.backoff import Backoff
from trader.testing.websockets import memory_websocket_factory
from trader.venues.base import VenueOrderStatus
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.rest import PolymarketTrade
from trader.venues.polymarket.user_ws import (
    PolymarketOrderUpdate,
    PolymarketUserStream,
    UserEvent,
    UserStreamSettings,
    parse_user_frame,
    websocket_factory,
)

CAPTURED = Path(__file__).parents[2] / "fixtures" / "polymarket" / "captured"
D = Decimal
API_KEY = "00000000-0000-0000-0000-000000000001"
ADDRESS = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
CREDS = ApiCredentials(API_KEY, base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase")
ORDER_ID = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef12"


def frame(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURED / name).read_text())
    data.update(changes)
    return data


def parse(data: object) -> tuple[list[UserEvent], list[tuple[str, str]]]:
    text = data if isinstance(data, str) else json.dumps(data)
    return parse_user_frame(text, api_key=API_KEY, addresses=[ADDRESS.upper().replace("0X", "0x")])


def one_order(data: object) -> PolymarketOrderUpdate:
    (event,), drops = parse(data)
    assert drops == []
    assert isinstance(event, PolymarketOrderUpdate)
    return event


def one_trade(data: object) -> PolymarketTrade:
    (event,), drops = parse(data)
    assert drops == []
    assert isinstance(event, PolymarketTrade)
    return event


# -- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "status", "matched", "reason"),
    [
        ("ws_user_order_placement.json", "PLACEMENT", VenueOrderStatus.LIVE, D(0), None),
        ("ws_user_order_msg.json", "PLACEMENT", VenueOrderStatus.LIVE, D(0), None),
        ("ws_user_order_update.json", "UPDATE", VenueOrderStatus.LIVE, D(25), None),
        ("ws_user_order_matched.json", "UPDATE", VenueOrderStatus.MATCHED, D(100), None),
        ("ws_user_order_cancellation.json", "CANCELLATION", VenueOrderStatus.CANCELED, D(0), None),
        ("ws_user_order_venue_cancel.json", "CANCELLATION", VenueOrderStatus.CANCELED, D(0), "INVALID"),
        (
            "ws_user_order_fok_killed.json",
            "CANCELLATION",
            VenueOrderStatus.CANCELED,
            D(0),
            "order couldn't be fully filled. FOK orders are fully filled or killed.",
        ),
    ],
)
def test_captured_order_events(
    name: str, kind: str, status: VenueOrderStatus, matched: Decimal, reason: str | None
) -> None:
    event = one_order(frame(name))
    assert event.kind == kind
    assert event.order.status is status
    assert event.order.size_matched == matched
    assert event.order.reason == reason


def test_order_event_values_and_timestamps_in_ms_are_normalised() -> None:
    event = one_order(frame("ws_user_order_placement.json"))
    order = event.order
    assert (order.order_id, order.side, order.price, order.original_size) == (ORDER_ID, Side.BUY, D("0.5"), D(100))
    assert order.order_type is OrderType.GTC
    assert order.created_ts == 1703875200.0
    assert event.ts == pytest.approx(1703875200.001)
    killed = one_order(frame("ws_user_order_fok_killed.json")).order
    assert killed.created_ts is None  # the venue sent ""
    assert killed.order_type is OrderType.FOK


def test_trade_as_taker_keeps_only_our_fill() -> None:
    trade = one_trade(frame("ws_user_trade.json"))
    assert trade.trade_id == "trade-0xabcdef1234"
    assert trade.status is TradeStatus.CONFIRMED
    (fill,) = trade.fills  # the maker in maker_orders is someone else
    assert (fill.order_id, fill.side, fill.price, fill.size, fill.liquidity) == (
        ORDER_ID,
        Side.BUY,
        D("0.5"),
        D(25),
        Liquidity.TAKER,
    )
    assert trade.match_ts == 1704067200.0


def test_trade_as_maker_is_found_inside_maker_orders() -> None:
    data = frame("ws_user_trade_msg.json", owner="taker-key", trade_owner="taker-key", trader_side="MAKER")
    data["maker_address"] = "0x" + "7" * 40
    data["maker_orders"] = [
        {"order_id": "0xours", "owner": "someone", "maker_address": ADDRESS, "matched_amount": "10",
         "price": "0.5", "asset_id": data["asset_id"]},
        {"order_id": "0xcomplement", "owner": API_KEY, "maker_address": "", "matched_amount": "5",
         "price": "0.5", "asset_id": "999"},
    ]  # fmt: skip

    trade = one_trade(data)

    assert [(f.order_id, f.side, f.size, f.token_id, f.liquidity) for f in trade.fills] == [
        ("0xours", Side.SELL, D(10), data["asset_id"], Liquidity.MAKER),  # same token: the other side
        ("0xcomplement", Side.BUY, D(5), "999", Liquidity.MAKER),  # the complementary token: the same side
    ]


@pytest.mark.parametrize(
    "status", ["MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING", "FAILED", "TRADE_STATUS_MINED"]
)
def test_every_settlement_status_and_the_old_matchtime_spelling(status: str) -> None:
    data = frame("ws_user_trade_msg.json", status=status, last_update="1703875260")
    data["matchtime"] = data.pop("match_time")
    trade = one_trade(data)
    assert trade.status is TradeStatus(status.removeprefix("TRADE_STATUS_"))
    assert trade.match_ts == 1704067200.0
    assert trade.ts == 1703875260.0


@pytest.mark.parametrize(
    ("fields", "match_ts", "ts"),
    [
        # 2026 production: epoch seconds as strings (protocol.md §11 item 11); `timestamp` in ms
        ({"match_time": "1767225600", "last_update": "1767225607"}, 1767225600.0, 1767225607.0),
        # `last_update` absent: the frame's `timestamp`, in seconds or in milliseconds
        ({"match_time": "1767225600", "last_update": None, "timestamp": "1767225608"}, 1767225600.0, 1767225608.0),
        ({"match_time": "1767225600", "last_update": None, "timestamp": "1767225608500"}, 1767225600.0, 1767225608.5),
        # the captures' ISO strings
        ({"match_time": "2026-01-01T00:00:00Z", "last_update": "2026-01-01T00:00:07Z"}, 1767225600.0, 1767225607.0),
    ],
)
def test_trade_times_in_epoch_seconds_milliseconds_or_iso(fields: dict[str, Any], match_ts: float, ts: float) -> None:
    data = frame("ws_user_trade_msg.json")
    for name, value in fields.items():
        if value is None:
            data.pop(name)
        else:
            data[name] = value
    trade = one_trade(data)
    assert (trade.match_ts, trade.ts) == (match_ts, ts)


def test_an_unknown_settlement_status_is_passed_on_as_unknown_not_dropped() -> None:
    trade = one_trade(frame("ws_user_trade_msg.json", status="SETTLED_ON_MARS"))
    assert (trade.status, trade.status_text) == (TradeStatus.UNKNOWN, "SETTLED_ON_MARS")
    assert len(trade.fills) == 1


def test_an_array_frame_and_pong() -> None:
    events, drops = parse([frame("ws_user_order_msg.json"), frame("ws_user_trade_msg.json")])
    assert [type(e) for e in events] == [PolymarketOrderUpdate, PolymarketTrade]
    assert drops == []
    assert parse("PONG") == ([], [])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ('{"event_type": "order", "id": ', "NOT_JSON"),
        ({"event_type": "order", "id": "0x1"}, "BAD_SHAPE"),
        ({"event_type": "mystery"}, "UNKNOWN_EVENT"),
        (frame("ws_user_order_msg.json", price="abc"), "BAD_VALUE"),
        (frame("ws_user_order_msg.json", status="EXPLODED"), "BAD_VALUE"),
        (frame("ws_user_trade_msg.json", owner="x", trade_owner="x", maker_address="0x" + "1" * 40), "NOT_OURS"),
        ({"error": "invalid message"}, "VENUE_ERROR"),
    ],
)
def test_bad_frames_are_dropped_with_a_reason(data: object, reason: str) -> None:
    events, drops = parse(data)
    assert events == []
    assert [code for code, _ in drops] == [reason]


def test_one_bad_element_does_not_drop_its_neighbours() -> None:
    events, drops = parse([frame("ws_user_order_msg.json", side="SIDEWAYS"), frame("ws_user_order_msg.json")])
    assert len(events) == 1
    assert [code for code, _ in drops] == ["BAD_VALUE"]


# -- the connection loop, in memory ---------------------------------------------------------------------------------


class ScriptedVenue:
    """Checks the subscription, answers PINGs (unless stalled), and sends `frames` once per connection."""

    def __init__(self, frames: list[str], *, stall_first: bool = False) -> None:
        self.frames = frames
        self.stall_first = stall_first
        self.subscriptions: list[dict[str, Any]] = []
        self.connect_times: list[float] = []
        self.ping_times: list[float] = []

    async def __call__(self, ws: WebSocketConnection) -> None:
        self.connect_times.append(trio.current_time())
        self.subscriptions.append(json.loads(await ws.get_message()))
        stalled = self.stall_first and len(self.connect_times) == 1
        for text in self.frames:
            await ws.send_message(text)
        while True:
            message = await ws.get_message()
            if message == "PING":
                self.ping_times.append(trio.current_time())
                if not stalled:
                    await ws.send_message("PONG")


SETTINGS = UserStreamSettings(
    ping_interval_secs=10, stall_timeout_secs=30, backoff=Backoff(initial_secs=1, max_secs=8, jitter=0)
)


async def test_subscribes_pings_and_delivers_events(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue([json.dumps(frame("ws_user_order_msg.json")), json.dumps(frame("ws_user_trade_msg.json"))])
    send, receive = trio.open_memory_channel[UserEvent](10)
    connects: list[int] = []
    async with trio.open_nursery() as nursery:
        stream = PolymarketUserStream(
            memory_websocket_factory(nursery, venue),
            CREDS,
            settings=UserStreamSettings(markets=("0xcond",)),
            on_connect=connects.append,
        )
        await nursery.start(stream.run, send)
        first = await receive.receive()
        second = await receive.receive()
        await trio.sleep(35)
        stats = stream.statistics()
        nursery.cancel_scope.cancel()

    assert isinstance(first, PolymarketOrderUpdate)
    assert isinstance(second, PolymarketTrade)
    assert venue.subscriptions == [
        {"auth": {"apiKey": API_KEY, "secret": CREDS.secret, "passphrase": "pass-phrase"}, "markets": ["0xcond"],
         "type": "user"}
    ]  # fmt: skip
    assert venue.ping_times == [10.0, 20.0, 30.0]
    assert connects == [1]
    assert (stats.connected, stats.events, stats.stalls, stats.reconnects) == (True, 2, 0, 0)


async def test_a_stall_is_detected_and_the_stream_reconnects(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue([], stall_first=True)
    send, _receive = trio.open_memory_channel[UserEvent](10)
    async with trio.open_nursery() as nursery:
        stream = PolymarketUserStream(memory_websocket_factory(nursery, venue), CREDS, settings=SETTINGS)
        await nursery.start(stream.run, send)
        await trio.sleep(45)
        stats = stream.statistics()
        nursery.cancel_scope.cancel()

    # no frame at all after connecting at t=0: a stall at t=30, then the first backoff (1 s)
    assert venue.connect_times == [0.0, 31.0]
    assert sorted(venue.subscriptions[1]) == ["auth", "type"]  # no markets: every market, re-subscribed
    assert (stats.stalls, stats.reconnects, stats.connects, stats.connected) == (1, 1, 2, True)


async def test_the_venue_closing_the_socket_means_reconnect_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def closing_venue(ws: WebSocketConnection) -> None:
        times.append(trio.current_time())
        await ws.get_message()
        await ws.aclose(code=1008, reason="Unauthorized/Invalid api key")

    send, _receive = trio.open_memory_channel[UserEvent](10)
    async with trio.open_nursery() as nursery:
        stream = PolymarketUserStream(memory_websocket_factory(nursery, closing_venue), CREDS, settings=SETTINGS)
        await nursery.start(stream.run, send)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()

    assert times == pytest.approx([0, 1, 3, 7], abs=1e-6)  # backoff 1, 2, 4 s (no healthy reset)


async def test_a_bad_frame_is_counted_and_the_connection_kept(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue(["garbage", json.dumps(frame("ws_user_order_msg.json"))])
    send, receive = trio.open_memory_channel[UserEvent](10)
    async with trio.open_nursery() as nursery:
        stream = PolymarketUserStream(memory_websocket_factory(nursery, venue), CREDS, settings=SETTINGS)
        await nursery.start(stream.run, send)
        event = await receive.receive()
        stats = stream.statistics()
        nursery.cancel_scope.cancel()

    assert isinstance(event, PolymarketOrderUpdate)
    assert stats.drops == {"NOT_JSON": 1}
    assert stats.connects == 1


async def test_a_slow_consumer_is_not_mistaken_for_a_stall(autojump_clock: trio.testing.MockClock) -> None:
    venue = ScriptedVenue([json.dumps(frame("ws_user_order_msg.json"))] * 2, stall_first=True)
    send, receive = trio.open_memory_channel[UserEvent](0)  # unbuffered: the reader waits for us
    async with trio.open_nursery() as nursery:
        stream = PolymarketUserStream(memory_websocket_factory(nursery, venue), CREDS, settings=SETTINGS)
        await nursery.start(stream.run, send)
        await receive.receive()
        await trio.sleep(40)  # busy elsewhere, longer than the stall timeout
        await receive.receive()
        await trio.sleep(1)
        stats = stream.statistics()
        nursery.cancel_scope.cancel()
    assert (stats.stalls, stats.connects) == (0, 1)


async def test_a_venue_that_never_answers_the_handshake_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    with trio.socket.socket() as listener:  # accepts TCP (the kernel's backlog) but never speaks websocket
        await listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        factory = websocket_factory(f"ws://127.0.0.1:{port}/ws/user", connect_timeout_secs=5)
        send, _receive = trio.open_memory_channel[UserEvent](10)
        async with trio.open_nursery() as nursery:
            stream = PolymarketUserStream(factory, CREDS, settings=SETTINGS)
            await nursery.start(stream.run, send)
            await trio.sleep(20)
            stats = stream.statistics()
            nursery.cancel_scope.cancel()
    # handshake timeouts at 5, 11 (after 1 s backoff), 18 (after 2 s): each a reconnect, never a crash
    assert (stats.connects, stats.reconnects, stats.connected) == (0, 3, False)
