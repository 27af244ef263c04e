"""A drift-free period on the Trio clock, for loops that do something every `period_secs`.

Tick n is due at `start + n * period_secs`, so the time a tick's work takes does not push the next ones later.
After an overrun (the work took longer than a period) the missed ticks are skipped: the next one is the next grid
point still ahead, never a burst to catch up.

    ticks = Ticker(period_secs)
    while True:
        await ticks.next()
        ...

`next_or(event)` waits the same way but returns early, without taking the tick, when `event` is set: for a loop
that also does something on request between its ticks.
"""

from __future__ import annotations

import math

import trio

__all__ = ["Ticker"]


class Ticker:
    """The grid `start + n * period_secs` (start: now, unless given); `next()` sleeps until the next tick due."""

    __slots__ = ("_n", "_period", "_start")

    def __init__(self, period_secs: float, *, start: float | None = None) -> None:
        if not (math.isfinite(period_secs) and period_secs > 0):
            raise ValueError(f"period_secs must be > 0, got {period_secs}")
        self._period = period_secs
        self._start = trio.current_time() if start is None else start
        self._n = 0

    async def next(self) -> None:
        """Sleep until the next tick: the one after the previous, or, after an overrun, the next one ahead."""
        behind = math.floor((trio.current_time() - self._start) / self._period) + 1
        self._n = max(self._n + 1, behind)
        await trio.sleep_until(self._start + self._n * self._period)

    async def next_or(self, event: trio.Event) -> bool:
        """Like `next()`, but return False as soon as `event` is set (at once if it is already): the tick is not
        taken, so the next call waits for the same one. True when the tick came."""
        behind = math.floor((trio.current_time() - self._start) / self._period) + 1
        n = max(self._n + 1, behind)
        with trio.move_on_at(self._start + n * self._period):
            await event.wait()
            return False
        self._n = n
        return True
