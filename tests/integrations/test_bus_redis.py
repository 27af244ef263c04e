"""The Redis bus on the real server (marked `redis`): channels, the capped stream, JSON a consumer can read.

Each test uses its own key prefix so parallel runs never see each other's events. (Stopping Redis during a run
is in test_outages.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import redis
import trio

from trader.domain.enums import Liquidity
from trader.domain.events import OrderCanceled, OrderFilled
from trader.domain.numbers import Side
from trader.integrations.bus import BusPublisher, EventKind, decode_event
from trader.integrations.bus.redis import RedisBusSettings, open_redis_bus
from trader.integrations.sinks import SinkSettings

from .servers import redis_url

pytestmark = pytest.mark.redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def settings() -> AsyncIterator[RedisBusSettings]:
    value = RedisBusSettings(url=redis_url(), prefix=f"test-{uuid.uuid4().hex[:12]}", stream_maxlen=50)
    yield value
    client = redis.Redis.from_url(value.url)
    try:
        await trio.to_thread.run_sync(client.delete, value.stream)
    finally:
        client.close()


def _fill(i: int) -> OrderFilled:
    return OrderFilled(
        client_order_id=f"c-{i}",
        trade_id=f"t-{i}",
        token_id="111",
        side=Side.SELL,
        price=Decimal("0.53"),
        size=Decimal(i + 1),
        liquidity=Liquidity.MAKER,
        ts=1_767_225_600.0 + i,
    )


class Listener:
    """A consumer on its own connection, in a thread: subscribes, then collects messages."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub: Any = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.channels = channels

    def subscribe(self) -> None:
        self.pubsub.subscribe(*self.channels)
        for _ in self.channels:
            confirmation = self.pubsub.get_message(timeout=2)
            assert confirmation is not None
            assert confirmation["type"] == "subscribe"

    def collect(self, count: int) -> list[tuple[str, bytes]]:
        got: list[tuple[str, bytes]] = []
        for _ in range(count * 3):
            message: Any = self.pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                got.append((message["channel"].decode(), message["data"]))
            if len(got) == count:
                break
        return got

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


async def test_events_reach_live_subscribers_and_the_capped_stream(settings: RedisBusSettings) -> None:
    listener = Listener(settings.url, [settings.channel(EventKind.FILL), settings.channel(EventKind.ORDER)])
    try:
        await trio.to_thread.run_sync(listener.subscribe)
        async with open_redis_bus(settings, SinkSettings(max_batch=50)) as bus:
            publisher = BusPublisher(bus)
            publisher(_fill(0))
            publisher(OrderCanceled(client_order_id="c-0", ts=1.0, reason="SHUTDOWN"))
            for i in range(1, 300):
                publisher(_fill(i))
            with trio.fail_after(10):
                await bus.flush()
            stats = bus.statistics()
        received = await trio.to_thread.run_sync(listener.collect, 301)
        length = await trio.to_thread.run_sync(listener.client.xlen, settings.stream)
        newest: Any = await trio.to_thread.run_sync(lambda: listener.client.xrevrange(settings.stream, count=1))
    finally:
        listener.close()
    assert (stats.published, stats.delivered, stats.dropped, stats.undelivered) == (301, 301, 0, 0)
    assert len(received) == 301
    first = decode_event(received[0][1])
    assert (received[0][0], first.type, first.data["price"], first.data["side"]) == (
        f"{settings.prefix}:fill",
        "order_filled",
        "0.53",
        "SELL",
    )
    canceled = decode_event(received[1][1])
    assert (received[1][0], canceled.type, canceled.data["reason"]) == (
        f"{settings.prefix}:order",
        "order_canceled",
        "SHUTDOWN",
    )
    assert [decode_event(payload).data["size"] for _, payload in received[2:5]] == ["2", "3", "4"]
    assert 50 <= length < 301  # MAXLEN ~ trims in whole nodes: about 50, never everything
    last = decode_event(newest[0][1][b"event"])
    assert (last.type, last.data["size"]) == ("order_filled", "300")


async def test_an_unreachable_redis_never_blocks_publishing(settings: RedisBusSettings) -> None:
    nowhere = RedisBusSettings(url="redis://127.0.0.1:9/0", prefix=settings.prefix, connect_timeout_secs=0.5)
    async with open_redis_bus(nowhere, SinkSettings(capacity=5, keep_last=3, retry_initial_secs=5)) as bus:
        accepted = [bus.publish(_event) for _event in (_encoded(i) for i in range(20))]
        with trio.fail_after(5):
            await bus.flush()
        stats = bus.statistics()
        kept = bus.runner.undelivered()
        sink = bus.sink_statistics()
    assert accepted.count(True) == stats.published >= 5
    assert stats.dropped == 20 - stats.published
    assert (stats.available, stats.undelivered, len(kept)) == (False, stats.published, 3)
    assert sink.last_error is not None
    assert "ConnectionError" in sink.last_error


def _encoded(i: int) -> Any:
    from trader.integrations.bus import bus_event

    return bus_event(_fill(i))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="url"):
        RedisBusSettings(url="http://x")
    with pytest.raises(ValueError, match="prefix"):
        RedisBusSettings(url=DEFAULT_URL, prefix="a b")
    with pytest.raises(ValueError, match="stream_maxlen"):
        RedisBusSettings(url=DEFAULT_URL, stream_maxlen=0)
    with pytest.raises(ValueError, match="socket_timeout_secs"):
        RedisBusSettings(url=DEFAULT_URL, socket_timeout_secs=0)
    assert "secret" not in repr(RedisBusSettings(url="redis://:secret@127.0.0.1:6379/0"))
