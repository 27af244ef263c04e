"""Engine-side publishing: engine events to bus events, and top-of-book summaries at a fixed rate.

- `BusPublisher(bus)` is a listener (`OrderManager.add_listener(publisher)`, or call it with any engine event: an
  `OrderIntent`, a `RiskStateChanged`, an `Opportunity`, an `EmergencyStop`...). It never blocks and never raises:
  objects it cannot turn into an event are counted in `skipped`.
- `run_book_summaries(books, publish, period_secs=...)` publishes a `BookSummary` per ready token whose top of book
  changed since the last period (drift-free period on the Trio clock). Books change far faster than anyone needs to
  watch them; this is the "configurable rate".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import NoReturn, Protocol

import trio

from trader.domain.book import Level
from trader.errors import InputError
from trader.integrations.bus.base import BookSummary, EventBus, bus_event

__all__ = ["BusPublisher", "run_book_summaries"]


class BusPublisher:
    def __init__(self, bus: EventBus, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.bus = bus
        self._wall_clock = wall_clock
        self.published = 0
        self.dropped = 0
        self.skipped = 0

    def __call__(self, obj: object) -> None:
        try:
            event = bus_event(obj, wall_clock=self._wall_clock)
        except InputError:
            self.skipped += 1
            return
        if self.bus.publish(event):
            self.published += 1
        else:
            self.dropped += 1


class _TokenLike(Protocol):
    @property
    def asset_id(self) -> str: ...
    @property
    def condition_id(self) -> str: ...
    @property
    def ready(self) -> bool: ...
    def best_bid(self) -> Level | None: ...
    def best_ask(self) -> Level | None: ...


class _BookSource(Protocol):
    def tokens(self) -> Iterable[_TokenLike]: ...


Top = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]


def _top(token: _TokenLike) -> Top:
    bid, ask = token.best_bid(), token.best_ask()
    return (
        None if bid is None else bid.price,
        None if bid is None else bid.size,
        None if ask is None else ask.price,
        None if ask is None else ask.size,
    )


async def run_book_summaries(
    books: _BookSource,
    publish: Callable[[object], None],
    *,
    period_secs: float,
    wall_clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Every `period_secs`, publish the top of each ready token's book that changed. Runs until cancelled."""
    if not period_secs > 0:
        raise ValueError(f"period_secs: must be > 0, got {period_secs}")
    last: dict[str, Top] = {}
    start = trio.current_time()
    tick = 0
    task_status.started()
    while True:
        for token in books.tokens():
            if not token.ready:
                continue
            top = _top(token)
            if last.get(token.asset_id) == top:
                continue
            last[token.asset_id] = top
            publish(
                BookSummary(
                    token_id=token.asset_id,
                    condition_id=token.condition_id,
                    best_bid=top[0],
                    best_bid_size=top[1],
                    best_ask=top[2],
                    best_ask_size=top[3],
                    ts=wall_clock(),
                )
            )
        tick += 1
        deadline = start + tick * period_secs
        now = trio.current_time()
        if deadline < now:  # overran: skip the missed ticks rather than bursting
            tick = int((now - start) // period_secs) + 1
            deadline = start + tick * period_secs
        await trio.sleep_until(deadline)
