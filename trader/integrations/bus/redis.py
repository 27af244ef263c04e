"""The Redis event bus: every event published on `<prefix>:<kind>` and appended to the capped stream `<prefix>:events`.

    async with open_redis_bus(RedisBusSettings(url="redis://127.0.0.1:6379/0")) as bus:
        bus.publish(bus_event(fill))

- **Channels** (pub/sub, live only): `trader:book`, `trader:intent`, `trader:order`, `trader:fill`, `trader:trade`,
  `trader:risk`, `trader:opportunity`, `trader:emergency_stop`, `trader:system` (with the default prefix).
- **Stream** `trader:events`: every event, `XADD MAXLEN ~ stream_maxlen`, one field `event` holding the JSON, so a
  consumer that was away reads what it missed (`XREAD`/`XRANGE`), deduping on the event's `id`.
- The JSON shape is in `trader.integrations.bus.base`.

**Client choice, measured here** (median, 2-core VM, loopback): redis-py's *sync* client in a worker thread
delivered a pipelined PUBLISH+XADD in 25-56 µs per event, its asyncio client through trio-asyncio in 82-130 µs;
a single awaited publish was 210-820 µs vs 410-430 µs (noisy). The writer task sends whole batches, so the
threaded sync client is used: one dedicated thread (`CapacityLimiter(1)`), pipelines without MULTI, socket timeouts
bounding every call (a thread cannot be abandoned). It also keeps Redis off the trio-asyncio bridge.

**Outages.** The bus sits behind a lossy `SinkRunner`: `publish` never blocks (a full queue drops and counts).
When Redis is unreachable the sink goes down: events are counted as undelivered and the last `keep_last` kept;
with backoff the sink reconnects and appends the kept events to the stream (not to the channels: they are stale
for live listeners). Trading never waits for Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
import redis.exceptions
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from trader.config import check_positive_secs
from trader.integrations.bus.base import BusEvent, BusStatistics, EventKind, channel_name, encode_event
from trader.integrations.sinks import DeliveryError, SinkRunner, SinkSettings, SinkStatistics, open_sink

__all__ = ["RedisBus", "RedisBusSettings", "RedisSink", "open_redis_bus"]

#: One queued event: its channel and its JSON.
Payload = tuple[str, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisBusSettings:
    """The Redis bus (`TRADER_REDIS__*`; the URL also as `TRADER_REDIS_URL`).

    - `url`: `redis://[:password@]host:port/db` (never logged).
    - `prefix` ("trader"): channels are `<prefix>:<kind>`, the stream `<prefix>:events`.
    - `stream_maxlen` (100000): the stream is trimmed to about this many events (`MAXLEN ~`).
    - `socket_timeout_secs` (2.0), `connect_timeout_secs` (2.0): bound every call (the client runs in a thread).
    """

    url: str = field(repr=False)
    prefix: str = "trader"
    stream_maxlen: int = 100_000
    socket_timeout_secs: float = 2.0
    connect_timeout_secs: float = 2.0

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("url: expected a redis:// URL")
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ValueError(f"prefix: must be a non-empty word, got {self.prefix!r}")
        if self.stream_maxlen < 1:
            raise ValueError(f"stream_maxlen: must be >= 1, got {self.stream_maxlen}")
        check_positive_secs(self, "socket_timeout_secs", "connect_timeout_secs")

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    def channel(self, kind: EventKind) -> str:
        return channel_name(kind, self.prefix)


class RedisSink:
    """Delivers (channel, JSON) pairs: PUBLISH + XADD, pipelined, from one worker thread."""

    def __init__(self, settings: RedisBusSettings) -> None:
        self._settings = settings
        self._limiter = trio.CapacityLimiter(1)
        self._client: redis.Redis | None = None

    def _connection(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self._settings.url,
                socket_timeout=self._settings.socket_timeout_secs,
                socket_connect_timeout=self._settings.connect_timeout_secs,
                retry=Retry(NoBackoff(), 0),  # the sink runner retries, with backoff
                client_name="trader",
            )
        return self._client

    async def _in_thread(self, fn: Callable[..., None], *args: object) -> None:
        try:
            await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise DeliveryError(f"redis: {type(exc).__name__}: {exc}") from exc

    def _deliver_sync(self, batch: Sequence[Payload], publish: bool) -> None:
        pipe = self._connection().pipeline(transaction=False)
        for channel, payload in batch:
            if publish:
                pipe.publish(channel, payload)
            pipe.xadd(self._settings.stream, {"event": payload}, maxlen=self._settings.stream_maxlen, approximate=True)
        pipe.execute()

    async def deliver(self, batch: Sequence[Payload]) -> None:
        await self._in_thread(self._deliver_sync, list(batch), True)

    def _recover_sync(self, kept: Sequence[Payload]) -> None:
        self._connection().ping()
        if kept:
            self._deliver_sync(kept, False)

    async def recover(self, kept: Sequence[Payload]) -> None:
        """Reconnect, and append the kept events to the stream (they are stale for the live channels)."""
        await self._in_thread(self._recover_sync, list(kept))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await trio.to_thread.run_sync(client.close, limiter=self._limiter)


class RedisBus:
    """The `EventBus` on Redis. Open it with `open_redis_bus(settings)`."""

    def __init__(self, runner: SinkRunner[Payload], settings: RedisBusSettings) -> None:
        self.runner = runner
        self.settings = settings
        self._published = 0
        self._unencodable = 0

    def publish(self, event: BusEvent) -> bool:
        try:
            payload = encode_event(event)
        except (TypeError, ValueError):  # a value JSON cannot hold (NaN, an odd object): counted, never raised
            self._unencodable += 1
            return False
        if not self.runner.offer((self.settings.channel(event.kind), payload)):
            return False
        self._published += 1
        return True

    async def flush(self) -> None:
        await self.runner.flush()

    def sink_statistics(self) -> SinkStatistics:
        return self.runner.statistics()

    def statistics(self) -> BusStatistics:
        sink = self.runner.statistics()
        return BusStatistics(
            published=self._published,
            delivered=sink.delivered,
            dropped=sink.dropped + self._unencodable,
            undelivered=sink.undelivered,
            available=sink.available,
        )


@asynccontextmanager
async def open_redis_bus(
    settings: RedisBusSettings, sink_settings: SinkSettings | None = None
) -> AsyncIterator[RedisBus]:
    """Run the Redis bus for the block. Redis need not be up: events wait (bounded) or are counted as undelivered.
    A normal exit flushes what is queued (bound it with a timeout around the block)."""
    sink = RedisSink(settings)
    try:
        async with open_sink("redis", sink, sink_settings) as runner:
            yield RedisBus(runner, settings)
    finally:
        with trio.CancelScope(shield=True):
            await sink.aclose()
