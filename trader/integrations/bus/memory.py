"""The in-process event bus (the default): subscribers in the same process, each behind its own bounded channel.

    bus = MemoryBus()
    with bus.subscribe({EventKind.FILL}) as events:      # a trio.MemoryReceiveChannel[BusEvent]
        async for event in events: ...

`publish` never blocks: a subscriber whose channel is full misses the event (counted in `dropped`), the others
still get it. The last `keep_last` events are kept (`recent()`) for a status page or a late subscriber.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio

from trader.integrations.bus.base import BusEvent, BusStatistics, EventKind

__all__ = ["MemoryBus"]


@dataclass(slots=True)
class _Subscriber:
    kinds: frozenset[EventKind] | None
    send: trio.MemorySendChannel[BusEvent]


class MemoryBus:
    def __init__(self, *, keep_last: int = 1000) -> None:
        self._subscribers: list[_Subscriber] = []
        self._recent: deque[BusEvent] = deque(maxlen=keep_last)
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    def publish(self, event: BusEvent) -> bool:
        self._published += 1
        self._recent.append(event)
        for subscriber in self._subscribers:
            if subscriber.kinds is not None and event.kind not in subscriber.kinds:
                continue
            try:
                subscriber.send.send_nowait(event)
            except trio.WouldBlock:
                self._dropped += 1
            else:
                self._delivered += 1
        return True

    @contextmanager
    def subscribe(
        self, kinds: Collection[EventKind] | None = None, *, capacity: int = 100
    ) -> Iterator[trio.MemoryReceiveChannel[BusEvent]]:
        """Events of `kinds` (all when None) published while the block runs, through a channel of `capacity`."""
        send, receive = trio.open_memory_channel[BusEvent](capacity)
        subscriber = _Subscriber(None if kinds is None else frozenset(kinds), send)
        self._subscribers.append(subscriber)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.remove(subscriber)
            send.close()

    def recent(self) -> list[BusEvent]:
        return list(self._recent)

    def statistics(self) -> BusStatistics:
        return BusStatistics(
            published=self._published,
            delivered=self._delivered,
            dropped=self._dropped,
            undelivered=0,
            available=True,
        )
