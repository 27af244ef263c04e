"""The dashboard's equity sampler on Trio's mock clock: a sample every `sample_secs`, one kept in the store every
`persist_secs`, the chart seeded from the store at start, and a store that hangs or fails never stops the chart."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import trio

from trader.app.control import Control
from trader.app.dashboard import Dashboard
from trader.integrations.store import EquitySample, StoreError
from trader.testing.memory_store import MemoryStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


class Money:
    def __init__(self) -> None:
        self.equity = Decimal(1000)

    def __call__(self) -> dict[str, str]:
        return {
            "cash": str(self.equity),
            "receivable": "0",
            "positions_value": "0",
            "equity": str(self.equity),
            "realized_pnl": str(self.equity - 1000),
            "unrealized_pnl": "0",
        }


def _dashboard(store: Any, money: Money) -> Dashboard:
    control = cast(Control, SimpleNamespace(money=money, sinks=SimpleNamespace(store=store)))
    start = trio.current_time()
    return Dashboard(
        control,
        sample_secs=5,
        persist_secs=60,
        wall_clock=lambda: T0 + dt.timedelta(seconds=trio.current_time() - start),
    )


async def test_samples_every_5_s_and_keeps_one_a_minute(autojump_clock: trio.testing.MockClock) -> None:
    store, money = MemoryStore(), Money()
    old = EquitySample(
        ts_ns=int((T0 - dt.timedelta(hours=1)).timestamp()) * 10**9,
        equity=Decimal(990),
        cash=Decimal(990),
        positions_value=Decimal(0),
        realized_pnl=Decimal(-10),
        unrealized_pnl=Decimal(0),
    )
    await store.record_equity(old)
    dashboard = _dashboard(store, money)
    async with trio.open_nursery() as nursery:
        await nursery.start(dashboard.run)
        money.equity = Decimal("1000.5")
        await trio.sleep(127)  # samples at 0, 5, ..., 125 s
        nursery.cancel_scope.cancel()
    kept = await store.load_equity()
    assert [s.ts_ns for s in kept][1:] == [int(T0.timestamp() + t) * 10**9 for t in (0, 60, 120)]
    assert kept[-1].equity == Decimal("1000.5")
    assert dashboard.equity_history()[0] == (
        T0 - dt.timedelta(hours=1),
        Decimal(990),
    )  # the chart starts from the store
    assert len(dashboard.equity_history()) == 1 + 26


class HangingStore(MemoryStore):
    async def record_equity(self, sample: EquitySample) -> None:
        await trio.sleep_forever()


class FailingStore(MemoryStore):
    async def load_equity(self, *, since_ns: int | None = None) -> list[EquitySample]:
        raise StoreError("down")

    async def record_equity(self, sample: EquitySample) -> None:
        raise StoreError("down")


async def test_a_store_that_hangs_or_fails_never_stops_the_chart(autojump_clock: trio.testing.MockClock) -> None:
    for store in (HangingStore(), FailingStore()):
        dashboard = _dashboard(store, Money())
        async with trio.open_nursery() as nursery:
            await nursery.start(dashboard.run)
            await trio.sleep(185)
            nursery.cancel_scope.cancel()
        assert len(dashboard.equity_history()) >= 30  # still every 5 s, give or take the skipped writes' waits
    assert dashboard.equity_writes_failed == 4  # 0, 60, 120, 180 s
