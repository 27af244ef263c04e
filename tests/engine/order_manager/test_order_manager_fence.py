"""Active/standby: the order manager's fence (`Leadership.may_send`) is asked right before an order or a cancel
leaves; an engine whose lease is not valid sends nothing (NOT_LEADER), and its intent says it was never sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from trader.domain.enums import OrderStatus
from trader.domain.positions import Portfolio
from trader.engine.order_manager import NOT_LEADER, OrderManager
from trader.engine.order_manager.guard import NotLeader
from trader.integrations.store.base import IntentState
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue
from trader.testing.memory_store import MemoryStore


def fenced_manager(leading: list[bool]) -> tuple[OrderManager, FakeVenue, MemoryStore]:
    venue, store = FakeVenue(), MemoryStore()
    manager = OrderManager(venue, store, portfolio=Portfolio(cash=Decimal(1000)), fence=lambda: leading[0])
    return manager, venue, store


async def test_a_leader_sends_and_a_fenced_one_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    leading = [True]
    manager, venue, store = fenced_manager(leading)
    sent = await manager.submit(make_intent("c1"))
    assert sent.status is OrderStatus.ACCEPTED

    leading[0] = False  # the lease ran out (paused, cut off, a successor took over)
    refused = await manager.submit(make_intent("c2"))

    assert [o.client_order_id for o in venue.submitted] == ["c1"]
    assert refused.status is OrderStatus.REJECTED
    assert store.intents["c2"].state is IntentState.NOT_SENT
    assert store.intents["c2"].reason == NOT_LEADER
    assert manager.statistics().not_sent[NOT_LEADER] == 1
    with pytest.raises(NotLeader):
        await manager.cancel_all(reason="TEST")
    assert venue.cancel_all_reasons == []
    venue.check()
