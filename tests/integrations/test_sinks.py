"""The bounded-channel sink runner and the write-behind store, on MockClock with scripted sinks.

(The same machinery against real servers being stopped and restarted is in test_outages.py.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from trader.domain.enums import OrderStatus
from trader.domain.positions import Position
from trader.integrations.sinks import (
    DeliveryError,
    SinkClosed,
    SinkRunner,
    SinkSettings,
    StoreWrite,
    open_sink,
    open_write_behind_store,
)
from trader.integrations.store import (
    DailyPnlRecord,
    IntentState,
    OpportunityRecord,
    OrderRecord,
    RiskEventRecord,
    SnipedMarket,
    StoreError,
    open_sqlite_store,
)
from trader.testing import make_intent_record, make_order_record


@dataclass
class ScriptedSink:
    """Delivers into `delivered` unless `down`; `partial_ok` items of a failing batch still get through."""

    down: bool = False
    partial_ok: int = 0
    delivered: list[int] = field(default_factory=list)
    recovered: list[list[int]] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)
    gate: trio.Event | None = None

    async def deliver(self, batch: Sequence[int]) -> None:
        self.attempts.append(trio.current_time())
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            got = min(self.partial_ok, len(batch))
            self.delivered.extend(batch[:got])
            raise DeliveryError("server down", delivered=got)
        self.delivered.extend(batch)

    async def recover(self, kept: Sequence[int]) -> None:
        self.attempts.append(trio.current_time())
        if self.down:
            raise DeliveryError("still down")
        self.recovered.append(list(kept))


def _runner(sink: ScriptedSink, *, lossless: bool = False, **settings: int) -> SinkRunner[int]:
    values = {"capacity": 4, "max_batch": 2, "keep_last": 3, "retry_initial_secs": 1.0, "retry_max_secs": 4.0}
    values.update(settings)
    return SinkRunner("test", sink, SinkSettings(**values), lossless=lossless, random_fn=lambda: 0.0)  # type: ignore[arg-type]


async def test_a_full_channel_drops_and_counts_without_blocking_the_producer(autojump_clock: trio.abc.Clock) -> None:
    sink = ScriptedSink(gate=trio.Event())
    runner = _runner(sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        accepted = [runner.offer(i) for i in range(10)]  # the writer is stuck on the gate: room for 4 only
        await trio.testing.wait_all_tasks_blocked()
        assert runner.statistics().queued + len(sink.attempts) * 2 >= 4
        assert accepted.count(False) == runner.statistics().dropped >= 4
        sink.gate.set()  # type: ignore[union-attr]
        runner.close()
    kept = [i for i, ok in zip(range(10), accepted, strict=True) if ok]
    assert sink.delivered == kept
    assert runner.statistics().delivered == len(kept)
    assert runner.offer(99) is False  # closed


async def test_a_lossy_sink_keeps_the_last_items_while_down_and_hands_them_to_recover(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = ScriptedSink(down=True, partial_ok=1)
    runner = _runner(sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.offer(1)
        runner.offer(2)
        await runner.flush()  # 1 got through, 2 did not
        assert sink.delivered == [1]
        assert not runner.statistics().available
        for i in range(3, 7):  # arrive while down: kept without an attempt, only the last 3
            runner.offer(i)
            await runner.flush()
        assert runner.undelivered() == [4, 5, 6]
        await trio.sleep(5)  # recovery attempts at t=1 (fails) and t=1+2=3 (fails) then t=3+4...
        sink.down = False
        await runner.wait_available()
        assert trio.current_time() == 7.0
        assert sink.recovered == [[4, 5, 6]]
        assert runner.available
        runner.offer(7)
        await runner.flush()
        runner.close()
    assert sink.delivered == [1, 7]
    stats = runner.statistics()
    assert (stats.undelivered, stats.kept, stats.recovered, stats.outages) == (5, 0, 3, 1)
    assert stats.failures >= 3
    assert stats.last_error == "still down"
    assert sink.attempts[:4] == [0.0, 1.0, 3.0, 7.0]  # first failure, then backoff 1, 2, 4 s


async def test_a_lossless_sink_retries_with_backoff_and_loses_nothing(autojump_clock: trio.abc.Clock) -> None:
    sink = ScriptedSink(down=True)
    runner = _runner(sink, lossless=True, capacity=2, max_batch=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await trio.testing.wait_all_tasks_blocked()  # the writer waits for its first item
        for i in range(3):  # 0 goes to the writer (and fails), 1 and 2 fill the channel
            await runner.put(i)
        with trio.move_on_after(0.5) as scope:  # the channel is full and the sink down: put waits
            await runner.put(3)
        assert scope.cancelled_caught
        assert (runner.statistics().queued, runner.statistics().pending) == (2, 1)
        await trio.sleep(10)  # attempts at t = 0, 1, 3, 7 (backoff 1, 2, 4, capped at 4)
        sink.partial_ok = 1  # from t = 11 one item per attempt gets through: it must not be sent again
        await trio.sleep(10)
        sink.down = False
        await runner.put(3)
        await runner.put(4)
        with trio.fail_after(60):
            await runner.flush()
        runner.close()
    assert sink.delivered == [0, 1, 2, 3, 4]  # in order, each once, none lost
    stats = runner.statistics()
    assert (stats.delivered, stats.undelivered, stats.dropped, stats.pending, stats.outages) == (5, 0, 0, 0, 1)
    assert sink.attempts[:6] == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0]
    gaps = [b - a for a, b in zip(sink.attempts, sink.attempts[1:], strict=False)]
    assert max(gaps) == 4.0  # capped


async def test_open_sink_drains_on_exit_and_refuses_afterwards(autojump_clock: trio.abc.Clock) -> None:
    sink = ScriptedSink()
    async with open_sink("t", sink, SinkSettings(capacity=10, max_batch=3), lossless=True) as runner:
        for i in range(7):
            await runner.put(i)
    assert sink.delivered == list(range(7))
    with pytest.raises(SinkClosed):
        await runner.put(8)

    async def fail_inside() -> None:
        async with open_sink("t", ScriptedSink(gate=trio.Event())) as stuck:
            stuck.offer(1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):  # not wrapped in a group; the stuck writer is cancelled
        await fail_inside()


def test_sink_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SinkSettings(capacity=0)
    with pytest.raises(ValueError, match="keep_last"):
        SinkSettings(keep_last=-1)
    with pytest.raises(ValueError, match="retry_initial_secs"):
        SinkSettings(retry_initial_secs=0)
    with pytest.raises(ValueError, match="retry_max_secs"):
        SinkSettings(retry_initial_secs=2, retry_max_secs=1)


def _order(status: OrderStatus, matched: str) -> OrderRecord:
    return make_order_record(
        "o-1",
        client_order_id="c-1",
        strategy="clipper",
        condition_id="0xc1",
        token_id="111",
        size_matched=matched,
        status=status,
        updated_at_ns=2,
    )


async def test_the_write_behind_store_writes_intents_at_once_and_queues_the_rest(tmp_path: Path) -> None:
    intent = make_intent_record("c-1", order_id="0xabc", strategy="clipper", condition_id="0xc1", token_id="111")
    async with open_sqlite_store(tmp_path / "t.db") as sqlite, open_write_behind_store(sqlite) as store:
        await store.record_intent(intent)  # durable when it returns: before any order is sent
        assert await sqlite.load_pending_intents() == [intent]
        await store.resolve_intent("c-1", IntentState.ACKED, ts_ns=2)
        await store.resolve_intent("c-unknown", IntentState.ACKED, ts_ns=2)  # refused for good: counted, skipped
        await store.record_order(_order(OrderStatus.ACCEPTED, "0"))
        await store.record_order(_order(OrderStatus.PARTIALLY_FILLED, "4"), reason=None)
        await store.record_position(Position(token_id="111", quantity=Decimal(4)), ts_ns=3)
        day = dt.date(2026, 1, 1)
        pnl = DailyPnlRecord(day=day, realized=Decimal(1), unrealized=Decimal(0), fees=Decimal(0), updated_at_ns=1)
        await store.record_daily_pnl(pnl)
        event = RiskEventRecord(event_id="e", ts_ns=1, kind="K", reason_code="R", trading_state=None)
        await store.record_risk_event(event)
        opportunity = OpportunityRecord(
            opportunity_id="op",
            ts_ns=1,
            strategy="s",
            kind="k",
            market="m",
            edge=Decimal(0),
            size=Decimal(1),
            traded=False,
        )
        await store.record_opportunities([opportunity])
        await store.record_opportunities([])
        assert await store.mark_sniped(SnipedMarket(condition_id="0xc1", token_id="111", sniped_at_ns=1))
        await store.flush()
        assert store.available
        assert store.rejected_writes == 1
        assert await store.load_pending_intents() == []
        assert [o.size_matched for o in await store.load_open_orders()] == [Decimal(4)]
        assert [e.status for e in await store.load_order_events("o-1")] == [
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
        ]
        assert await store.load_positions() == [Position(token_id="111", quantity=Decimal(4))]
        assert await store.load_daily_pnl(day) == pnl
        assert await store.load_risk_events() == [event]
        assert await store.load_opportunities() == [opportunity]
        assert len(await store.load_sniped_markets()) == 1
        assert await store.load_markets() == []
        assert await store.load_trades() == []
        assert store.sink_statistics().delivered == 8
        assert store.statistics().writes >= 8
    with pytest.raises(StoreError, match="closed"):
        await store.record_trade(None)  # type: ignore[arg-type]


@dataclass
class FlakyStore:
    """Just enough of a store whose server comes and goes."""

    available: bool = True
    written: list[str] = field(default_factory=list)

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        if not self.available:
            raise StoreError("connection lost")
        self.written.append(event.event_id)


async def test_queued_writes_wait_out_an_outage_and_land_in_order(autojump_clock: trio.abc.Clock) -> None:
    from trader.integrations.sinks import StoreSink

    flaky = FlakyStore(available=False)
    sink = StoreSink(flaky)  # type: ignore[arg-type]
    runner = SinkRunner("store", sink, SinkSettings(retry_initial_secs=0.5, retry_max_secs=2), lossless=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        for i in range(5):
            event = RiskEventRecord(event_id=f"e{i}", ts_ns=i, kind="K", reason_code="R", trading_state=None)
            await runner.put(StoreWrite("record_risk_event", partial(flaky.record_risk_event, event)))
        await trio.sleep(30)
        assert flaky.written == []
        assert runner.statistics().failures > 5
        flaky.available = True
        await runner.flush()
        runner.close()
    assert flaky.written == ["e0", "e1", "e2", "e3", "e4"]
    assert (sink.rejected, runner.statistics().outages) == (0, 1)
