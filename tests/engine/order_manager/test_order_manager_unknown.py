"""UNKNOWN is a state, not a verdict: an order whose submit outcome is unknown stays UNKNOWN until the venue shows it
(by id, by an event, by its trades) or its absence once the window has passed; cancels of it wait for the venue to
confirm its id; a fill of an order we had closed without one is applied and reported. On the MockClock against the
scripted FakeVenue (the sim-backed version over real sockets is `tests/engine/test_unknown_sim.py`)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.events import OrderLateFill, OrderOutcomeUnknown, OrderReason
from trader.domain.positions import Portfolio
from trader.engine.order_manager import SUBMIT_NOT_FOUND, OrderManager, OrderManagerSettings, pump_venue_events
from trader.integrations.store.base import IntentState
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore
from trader.venues.errors import VenueProtocolError, VenueRejectCode, VenueRequestError

YES = "1001"
WALL = 1_700_000_000.0
LOST = Outcome(reply="hang", lands=False)  # the request reaches the venue but is not taken (yet), no reply


def manager_for(venue: FakeVenue, store: MemoryStore | None = None, **settings: object) -> OrderManager:
    return OrderManager(
        venue,
        store if store is not None else MemoryStore(),
        portfolio=Portfolio(cash=Decimal(1000)),
        settings=OrderManagerSettings(**settings),  # type: ignore[arg-type]
        wall_ns=lambda: int(WALL * 1e9),
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (VenueRequestError(502, VenueRejectCode.SERVER_ERROR, "Bad Gateway"), "VENUE_SERVER_ERROR"),
        (VenueProtocolError("POST /order: garbled"), "GARBLED_REPLY"),
    ],
)
async def test_a_5xx_or_garbled_reply_is_unknown_with_its_cause(
    autojump_clock: trio.testing.MockClock, error: Exception, cause: str
) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, Outcome(reply="raise", error=error, lands=True))  # type: ignore[arg-type]
    manager = manager_for(venue, store)
    events: list[object] = []
    manager.add_listener(events.append)
    order = await manager.submit(make_intent("c1"))
    assert order.status is OrderStatus.ACCEPTED  # the venue had it: found by id, never called rejected
    (unknown,) = [e for e in events if isinstance(e, OrderOutcomeUnknown)]
    assert unknown.cause == cause
    assert [e.status for e in await store.load_order_events(order.order_id)] == [
        OrderStatus.UNKNOWN,
        OrderStatus.ACCEPTED,
    ]


async def test_reconcile_before_the_window_ends_gives_no_verdict(autojump_clock: trio.testing.MockClock) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, LOST)
    manager = manager_for(venue, store, unknown_grace_secs=10.0)
    with trio.move_on_after(1.0):  # the submitting task is cancelled (a drain): the order stays UNKNOWN
        await manager.submit(make_intent("c1"))
    assert manager.order("c1").status is OrderStatus.UNKNOWN
    assert trio.current_time() < manager.unknown_deadline("c1")
    assert (await manager.reconcile("c1")).status is OrderStatus.UNKNOWN  # "not found" is no verdict yet
    assert [o.client_order_id for o in manager.needs_reconcile()] == ["c1"]
    await trio.sleep_until(manager.unknown_deadline("c1"))
    closed = await manager.reconcile("c1")
    assert (closed.status, closed.reason) == (OrderStatus.CANCELED, SUBMIT_NOT_FOUND)
    assert store.intents["c1"].state is IntentState.REJECTED
    assert manager.needs_reconcile() == []


async def test_found_by_its_trades_when_the_lookup_does_not_know_it(autojump_clock: trio.testing.MockClock) -> None:
    class ForgetfulVenue(FakeVenue):
        """A venue whose by-id endpoint forgets matched orders (only their trades tell)."""

        async def lookup(self, order_id: str) -> None:
            await super().lookup(order_id)

    venue = ForgetfulVenue(wall=WALL)
    venue.script(YES, Outcome(reply="hang", lands=True, fill=Decimal(10), silent=True))
    manager = manager_for(venue, unknown_grace_secs=1.0)
    order = await manager.submit(make_intent("c1", order_type=OrderType.FOK))
    assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal(10))
    assert manager.positions() == {YES: Decimal(10)}
    assert manager.statistics().resolved_found == 1


async def test_a_cancel_of_an_unknown_order_waits_for_the_venue_to_confirm_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, LOST)
    manager = manager_for(venue)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager.submit, make_intent("c1"))
        await trio.sleep(0.6)
        order = await manager.cancel("c1", reason="ARB_LEG_CANCELED")
        assert order.status is OrderStatus.UNKNOWN  # nothing sent: the venue would say "not found"
        assert venue.canceled == []
        assert manager.deferred_cancels() == {"c1": "ARB_LEG_CANCELED"}
        await trio.sleep(1.0)
        venue.land(order.order_id)  # the order lands, and rests: the next lookup finds it
    order = manager.order("c1")
    assert venue.canceled == [order.order_id]  # the deferred cancel went out once the id was confirmed
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "ARB_LEG_CANCELED")
    assert manager.deferred_cancels() == {}
    stats = manager.statistics()
    assert (stats.cancels_deferred, stats.cancels_sent) == (1, 1)


async def test_a_deferred_cancel_is_dropped_when_the_order_proves_absent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(wall=WALL)
    venue.script(YES, LOST)
    manager = manager_for(venue)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager.submit, make_intent("c1"))
        await trio.sleep(0.6)
        await manager.cancel_all(reason=OrderReason.SHUTDOWN)  # defers the cancel of what the venue may not have
    assert manager.order("c1").reason == SUBMIT_NOT_FOUND
    assert (venue.canceled, manager.deferred_cancels()) == ([], {})


async def test_a_late_fill_of_an_order_closed_as_not_found_is_applied_and_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, LOST)
    manager = manager_for(venue, store, unknown_grace_secs=0.5)  # a window shorter than the venue's delay
    events: list[object] = []
    manager.add_listener(events.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1", order_type=OrderType.FOK))
        assert order.reason == SUBMIT_NOT_FOUND
        venue.land(order.order_id)  # ... and the venue takes it after all: a FOK, filled in full
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    order = manager.order("c1")
    assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal(10))  # applied to the order ...
    assert manager.positions() == {YES: Decimal(10)}  # ... and to the position
    (late,) = [e for e in events if isinstance(e, OrderLateFill)]
    assert (late.client_order_id, late.status, late.reason) == ("c1", "CANCELED", SUBMIT_NOT_FOUND)
    assert late.size == Decimal(10)
    assert manager.statistics().late_fills == 1
    assert [p.quantity for p in store.positions.values()] == [Decimal(10)]


async def test_an_order_the_venue_showed_before_its_request_failed_is_not_unknown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, store = FakeVenue(wall=WALL), MemoryStore()
    venue.script(YES, Outcome(reply="hang", lands=True))  # it rests, its event comes; the reply never does
    manager = manager_for(venue, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        order = await manager.submit(make_intent("c1"))
        nursery.cancel_scope.cancel()
    assert order.status is OrderStatus.ACCEPTED
    assert store.intents["c1"].state is IntentState.ACKED  # the venue has it: the intent is resolved
    assert (manager.statistics().ambiguous, venue.lookups) == (0, [])  # never in doubt: nothing to ask
