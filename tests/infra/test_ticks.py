"""The drift-free period: ticks stay on the grid whatever the work takes, and an overrun skips, never bursts."""

from __future__ import annotations

import pytest
import trio

from trader.infra.ticks import Ticker


async def test_ticks_stay_on_the_grid_however_long_the_work_takes(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    ticks = Ticker(1.0)
    seen = []
    for work in (0.3, 0.9, 0.0, 0.5):
        await ticks.next()
        seen.append(trio.current_time() - start)
        await trio.sleep(work)
    assert seen == [1.0, 2.0, 3.0, 4.0]


async def test_an_overrun_skips_the_missed_ticks(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    ticks = Ticker(1.0)
    await ticks.next()
    await trio.sleep(2.5)  # work past the ticks at 2 and 3
    await ticks.next()
    assert trio.current_time() - start == 4.0
    await ticks.next()
    assert trio.current_time() - start == 5.0


async def test_the_grid_starts_where_it_is_told(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time() + 0.25
    ticks = Ticker(2.0, start=start)
    await ticks.next()
    assert trio.current_time() == start + 2.0


async def test_next_or_returns_early_on_the_event_and_keeps_the_tick(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    ticks = Ticker(10.0)
    event = trio.Event()

    async def set_at(delay: float) -> None:
        await trio.sleep(delay)
        event.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(set_at, 3.0)
        assert await ticks.next_or(event) is False  # woken by the event at 3
        assert trio.current_time() - start == 3.0
        assert await ticks.next_or(event) is False  # still set: at once
        assert await ticks.next_or(trio.Event()) is True  # the same tick, at 10: not skipped
        assert trio.current_time() - start == 10.0
        assert await ticks.next_or(trio.Event()) is True
        assert trio.current_time() - start == 20.0


@pytest.mark.parametrize("period", [0.0, -1.0, float("inf"), float("nan")])
async def test_a_period_must_be_positive_and_finite(period: float) -> None:
    with pytest.raises(ValueError, match="period_secs"):
        Ticker(period)
