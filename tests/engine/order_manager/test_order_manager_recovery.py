"""Restart and reconciliation: pending intents are resolved by order id, never resent; doubtful orders are asked
for periodically; the FakeVenue's own checks catch a client that resends."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.enums import OrderStatus
from trader.domain.events import OrderReason
from trader.domain.intents import Intent, OrderIntent
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.engine.execution import ExecutionService, ExecutionSettings
from trader.engine.order_manager import (
    PREPARE_FAILED,
    SUBMIT_NOT_FOUND,
    OrderManager,
    PrepareFailed,
    pump_venue_events,
)
from trader.engine.risk import BookHealth, RiskGate
from trader.errors import InputError
from trader.integrations.store.base import IntentRecord, IntentState
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.base import PRICE_OFF_TICK, PrepareRefused
from trader.venues.errors import VenueTimeout

YES = "1001"
WALL = 1_700_000_000.0


def manager_for(venue: FakeVenue, store: MemoryStore) -> OrderManager:
    return OrderManager(
        venue,
        store,
        portfolio=Portfolio(cash=Decimal(100)),
        wall_ns=lambda: int(WALL * 1e9),
    )


async def test_pending_intents_are_resolved_by_id_at_start(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    # Before the "crash": three intents written; one reached the venue (and filled 4), one did not, one was
    # never even signed.
    reached = Order.from_intent(make_intent("reached"), order_id="0x" + "a" * 64, ts=WALL)
    lost = Order.from_intent(make_intent("lost", size="11"), order_id="0x" + "b" * 64, ts=WALL)
    for n, order in enumerate((reached, lost)):  # written in this order, as a store lists them
        record = IntentRecord.of(make_intent(order.client_order_id, size=order.size), order_id=order.order_id,
                                 created_at_ns=int(WALL * 1e9) + n)  # fmt: skip
        await store.record_intent(record)
    await store.record_intent(
        IntentRecord.of(make_intent("unsigned", size="12"), order_id=None, created_at_ns=int(WALL * 1e9))
    )
    await venue.submit(reached)
    venue.fill(reached.order_id, Decimal(4))

    manager = manager_for(venue, store)
    recovered = await manager.recover_pending()

    assert [o.client_order_id for o in recovered] == ["reached", "lost"]
    assert manager.order("reached").status is OrderStatus.PARTIALLY_FILLED
    assert manager.order("reached").filled == Decimal(4)
    assert manager.positions() == {YES: Decimal(4)}
    assert manager.order("lost").status is OrderStatus.CANCELED
    assert manager.order("lost").reason == SUBMIT_NOT_FOUND
    assert {cid: r.state for cid, r in store.intents.items()} == {
        "reached": IntentState.ACKED,
        "lost": IntentState.REJECTED,
        "unsigned": IntentState.NOT_SENT,
    }
    assert store.intents["unsigned"].reason == OrderReason.NEVER_SENT
    assert len(venue.submitted) == 1  # nothing resent
    assert manager.statistics().recovered == 2
    venue.check()


async def test_execution_reconciles_doubtful_orders_periodically(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, Outcome(reply="hang", lands=True, silent=True))
    venue.lookup_error = VenueTimeout("no answer")
    manager = manager_for(venue, store)
    send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(
        manager,
        RiskGate(),
        receive,
        settings=ExecutionSettings(reconcile_interval_secs=5.0),
        book_health=lambda _t: BookHealth(age_ms=0.0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(make_intent("c1"))
        await trio.sleep(3)
        assert manager.statistics().unresolved == 1
        assert store.intents["c1"].state.value == "PENDING"
        venue.lookup_error = None  # the venue answers again
        await trio.sleep(3)  # past the 5 s reconciliation
        assert manager.order("c1").status is OrderStatus.ACCEPTED
        assert manager.statistics().unresolved == 0
        assert store.intents["c1"].state.value == "ACKED"
        assert len(venue.submitted) == 1
        nursery.cancel_scope.cancel()


async def test_fills_reported_but_never_delivered_are_fetched(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, Outcome(fill=Decimal(10), silent=True))  # MATCHED on entry, trade events lost
    manager = manager_for(venue, store)
    order = await manager.submit(make_intent("c1"))
    assert order.status is OrderStatus.SUBMITTED
    assert manager.awaiting_fills("c1") == Decimal(10)
    assert [o.client_order_id for o in manager.needs_reconcile()] == ["c1"]
    await manager.reconcile("c1")
    assert manager.order("c1").status is OrderStatus.FILLED
    assert manager.needs_reconcile() == []
    assert manager.positions() == await venue.positions()
    # What the 5 s reconciliation looks at is what is outstanding, not every order that ever filled.
    assert manager._venue_matched == {}


async def test_fake_venue_check_catches_a_resend_and_a_send_while_halted() -> None:
    venue = FakeVenue(wall=WALL)
    order = Order.from_intent(make_intent("c1"), order_id="0x" + "c" * 64, ts=WALL)
    await venue.submit(order)
    venue.check()
    await venue.submit(order)
    with pytest.raises(AssertionError, match="submitted twice"):
        venue.check()
    halted = FakeVenue(wall=WALL)
    halted.halted = True
    await halted.submit(order)
    with pytest.raises(AssertionError, match="while halted"):
        halted.check()


async def test_memory_store_round_trips() -> None:
    store = MemoryStore()
    record = IntentRecord.of(make_intent("c1"), order_id="0x" + "d" * 64, created_at_ns=1)
    await store.record_intent(record)
    assert await store.load_pending_intents() == [record]
    await store.resolve_intent("c1", IntentState.ACKED, ts_ns=2)
    assert await store.load_pending_intents() == []
    assert await store.load_trades() == []
    assert await store.load_positions() == []
    assert await store.load_open_orders() == []
    assert await store.load_order_events("0x") == []
    assert await store.load_risk_events() == []
    assert store.statistics().writes == 2


async def test_a_gap_in_venue_events_is_closed_by_asking_for_open_orders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    manager = manager_for(venue, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1"))
        venue.drop_events()  # the user channel drops ...
        venue.fill(order.order_id, Decimal(6))  # ... and this fill's event reaches no one
        await trio.sleep(0.5)
        assert manager.order("c1").filled == 0
        await trio.sleep(1)  # the pump reopens after 1 s and asks about every open order
        assert manager.order("c1").filled == Decimal(6)
        assert manager.positions() == await venue.positions()
        assert manager.statistics().event_gaps == 1
        nursery.cancel_scope.cancel()


class UnpreparedVenue(FakeVenue):
    """A venue that signs its own orders but cannot reach its market parameters."""

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        await trio.lowlevel.checkpoint()
        raise VenueTimeout(f"tick size of {intent.token_id} unavailable")


async def test_an_order_that_cannot_be_prepared_is_not_sent_and_recorded_not_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, store = UnpreparedVenue(wall=WALL), MemoryStore()
    manager = OrderManager(venue, store, wall_ns=lambda: int(WALL * 1e9))
    with pytest.raises(PrepareFailed) as failed:
        await manager.submit(make_intent("c1"))
    assert failed.value.reason == PREPARE_FAILED
    assert venue.submitted == []
    record = store.intents["c1"]
    assert (record.state, record.reason, record.order_id) == (IntentState.NOT_SENT, PREPARE_FAILED, None)
    assert await store.load_pending_intents() == []  # nothing for a restart to chase
    send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(manager, RiskGate(), receive, book_health=lambda _t: BookHealth(age_ms=0.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(make_intent("c2"))
        await trio.testing.wait_all_tasks_blocked()
        assert service.statistics().intents_denied == {"PREPARE_FAILED": 1}
        nursery.cancel_scope.cancel()


class BrokenPrepareVenue(FakeVenue):
    """Preparing the order "bad" raises `error`; every other order is prepared as usual."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(wall=WALL)
        self.error = error

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        if intent.client_order_id == "bad":
            await trio.lowlevel.checkpoint()
            raise self.error
        return await super().prepare(intent, ts=ts)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PrepareRefused(PRICE_OFF_TICK, "price 0.965 is not on the tick grid 0.01"), PRICE_OFF_TICK),
        (InputError("price", "invalid price (0.965), min: 0.01 - max: 0.99"), PREPARE_FAILED),
        (KeyError("token"), PREPARE_FAILED),
        (RuntimeError("a bug in signing"), PREPARE_FAILED),
        (ExceptionGroup("several", [ZeroDivisionError(), AssertionError()]), PREPARE_FAILED),
    ],
    ids=["refused", "input-error", "key-error", "runtime-error", "exception-group"],
)
async def test_any_exception_from_preparing_one_order_leaves_the_engine_trading(
    autojump_clock: trio.testing.MockClock, error: Exception, reason: str
) -> None:
    venue, store = BrokenPrepareVenue(error), MemoryStore()
    manager = OrderManager(venue, store, wall_ns=lambda: int(WALL * 1e9))
    send, receive = trio.open_memory_channel[Intent](4)
    service = ExecutionService(manager, RiskGate(), receive, book_health=lambda _t: BookHealth(age_ms=0.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(make_intent("before"))
        await send.send(make_intent("bad", price="0.49"))
        await send.send(make_intent("after", price="0.48"))
        await trio.testing.wait_all_tasks_blocked()
        # The orders scope is still open: the orders before and after were sent and rest at the venue.
        assert [o.client_order_id for o in manager.open_orders()] == ["before", "after"]
        assert len(venue.submitted) == 2
        assert manager.get("bad") is None
        assert service.statistics().intents_denied == {reason: 1}
        assert (store.intents["bad"].state, store.intents["bad"].reason) == (IntentState.NOT_SENT, reason)
        await send.send(make_intent("later", price="0.47"))
        await trio.testing.wait_all_tasks_blocked()
        assert len(venue.submitted) == 3
        nursery.cancel_scope.cancel()


def test_a_preparing_venue_is_required() -> None:
    from trader.errors import ConfigError

    with pytest.raises(ConfigError):
        OrderManager(object(), MemoryStore())  # type: ignore[arg-type]  # no `prepare`: not a Venue
