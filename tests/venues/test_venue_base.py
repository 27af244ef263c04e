"""The Venue protocol can be implemented with domain types only, and its helpers refuse bad batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
import trio

from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.testing import make_intent, make_order
from trader.venues.base import (
    MAX_BATCH_SIZE,
    Balances,
    CancelResult,
    SubmitAccepted,
    SubmitRejected,
    SubmitResult,
    Venue,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
    check_batch,
    check_cancel_ids,
    lookup_in_open_orders_and_trades,
)
from trader.venues.errors import VenueRejectCode


def _order(n: int) -> Order:
    return make_order(f"c-{n}", order_id=f"0x{n:064x}", strategy="s", condition_id="0xm", created_ts=1.0)


class _EchoVenue:
    """The smallest Venue: accepts bids below 0.5 as LIVE, rejects the rest, reports each accepted order."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[VenueEvent](100)
        self.live: dict[str, Order] = {}
        self._prepared = 0

    async def prepare(self, intent: OrderIntent, *, ts: float) -> Order:
        await trio.lowlevel.checkpoint()
        self._prepared += 1
        return Order.from_intent(intent, order_id="0x" + f"{self._prepared:064x}", ts=ts)

    async def lookup(self, order_id: str) -> VenueOrder | None:
        return await lookup_in_open_orders_and_trades(self, order_id)

    async def submit(self, order: Order) -> SubmitResult:
        await trio.lowlevel.checkpoint()
        if order.price >= Decimal("0.5"):
            return SubmitRejected(
                client_order_id=order.client_order_id, order_id=order.order_id, reason=VenueRejectCode.MIN_TICK_SIZE
            )
        self.live[order.order_id] = order
        self._send.send_nowait(self._snapshot(order))
        return SubmitAccepted(
            client_order_id=order.client_order_id, order_id=order.order_id, status=VenueOrderStatus.LIVE
        )

    async def submit_batch(self, orders: Sequence[Order]) -> list[SubmitResult]:
        check_batch(orders)
        return [await self.submit(order) for order in orders]

    async def cancel(self, order_id: str) -> CancelResult:
        await trio.lowlevel.checkpoint()
        if self.live.pop(order_id, None) is None:
            return CancelResult(not_canceled={order_id: "not found"})
        return CancelResult(canceled=(order_id,))

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        check_cancel_ids(order_ids)
        canceled: list[str] = []
        for order_id in order_ids:
            if (await self.cancel(order_id)).canceled:
                canceled.append(order_id)
        return CancelResult(
            canceled=tuple(canceled), not_canceled={o: "not found" for o in order_ids if o not in canceled}
        )

    async def cancel_all(self, *, reason: str) -> CancelResult:
        await trio.lowlevel.checkpoint()
        canceled, self.live = tuple(self.live), {}
        return CancelResult(canceled=canceled)

    async def open_orders(self) -> list[VenueOrder]:
        await trio.lowlevel.checkpoint()
        return [self._snapshot(order) for order in self.live.values()]

    async def trades(self, *, since_ts: float | None = None) -> list[VenueTrade]:
        await trio.lowlevel.checkpoint()
        return []

    async def balances(self) -> Balances:
        await trio.lowlevel.checkpoint()
        return Balances(collateral=Decimal(100))

    async def positions(self) -> Mapping[str, Decimal]:
        await trio.lowlevel.checkpoint()
        return {}

    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[VenueEvent]]:
        await trio.lowlevel.checkpoint()
        yield self._receive

    @staticmethod
    def _snapshot(order: Order) -> VenueOrder:
        return VenueOrder.of(order, size_matched=Decimal(0), status=VenueOrderStatus.LIVE, ts=1.0)


async def test_a_venue_built_from_domain_types_serves_execution() -> None:
    venue: Venue = _EchoVenue()  # mypy checks the protocol here
    async with venue.open_events() as events:
        results = await venue.submit_batch([_order(1), _order(2)])
        assert [type(r) for r in results] == [SubmitAccepted, SubmitAccepted]
        first = await events.receive()
        assert isinstance(first, VenueOrder)
        assert first.order_id == _order(1).order_id
    assert [o.order_id for o in await venue.open_orders()] == [_order(1).order_id, _order(2).order_id]
    assert (await venue.cancel(_order(1).order_id)).canceled == (_order(1).order_id,)
    assert (await venue.cancel_all(reason="SHUTDOWN")).canceled == (_order(2).order_id,)
    assert (await venue.cancel("0xgone")).not_canceled == {"0xgone": "not found"}


def test_check_batch_refuses_what_the_venue_would() -> None:
    check_batch([_order(n) for n in range(MAX_BATCH_SIZE)])
    with pytest.raises(ValueError, match="1 to 15"):
        check_batch([_order(n) for n in range(MAX_BATCH_SIZE + 1)])
    with pytest.raises(ValueError, match="1 to 15"):
        check_batch([])
    with pytest.raises(ValueError, match="twice"):
        check_batch([_order(1), _order(1)])


def test_rejections_know_whether_the_venue_or_the_order_was_at_fault() -> None:
    def rejected(code: VenueRejectCode) -> SubmitRejected:
        return SubmitRejected(client_order_id="c", order_id=None, reason=code)

    assert rejected(VenueRejectCode.EXECUTION_ERROR).retryable
    assert not rejected(VenueRejectCode.POST_ONLY_WOULD_CROSS).retryable
    assert not rejected(VenueRejectCode.NOT_ENOUGH_BALANCE).retryable


def test_venue_order_of_a_domain_order_carries_its_fields_and_the_state_given() -> None:
    order = _order(1)
    snapshot = VenueOrder.of(order, size_matched=Decimal(4), status=VenueOrderStatus.LIVE, ts=5.0)
    assert snapshot == VenueOrder(
        order_id=order.order_id,
        token_id="1001",
        side=Side.BUY,
        price=Decimal("0.40"),
        original_size=Decimal(10),
        size_matched=Decimal(4),
        status=VenueOrderStatus.LIVE,
        order_type=order.order_type,
        ts=5.0,
    )


async def test_a_venue_without_a_by_id_endpoint_looks_up_in_its_open_orders() -> None:
    venue: Venue = _EchoVenue()
    intent = make_intent("c-7", strategy="s", condition_id="0xm")
    order = await venue.prepare(intent, ts=2.0)
    assert (order.client_order_id, order.order_id, order.created_ts) == ("c-7", "0x" + f"{1:064x}", 2.0)
    assert await venue.lookup(order.order_id) is None  # not sent
    await venue.submit(order)
    found = await venue.lookup(order.order_id)
    assert found is not None
    assert (found.order_id, found.status) == (order.order_id, VenueOrderStatus.LIVE)
