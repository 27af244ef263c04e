"""The live venue adapter against the simulated venue over real loopback sockets, exactly as against Polymarket:
keys derived with L1, L2-signed REST, the user channel, the dead-man heartbeat. Time is trio's autojump MockClock
(the sim's exchange runs on the Trio clock; its 50 ms timer keeps each jump small while bytes are in flight)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.orders import Order, Trade
from trader.testing import make_intent, market_from_sim
from trader.venues.base import (
    SubmitAccepted,
    SubmitRejected,
    Venue,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
)
from trader.venues.errors import VenueRejectCode, VenueRequestError
from trader.venues.polymarket.heartbeat import HeartbeatSettings
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import Accepted, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import make_market
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

D = Decimal
KEY = "0x" + "4c" * 32
T0 = 1_767_225_600.0
SIM_MARKET = make_market("live-venue", question="Will the adapter work?")
MARKET = market_from_sim(SIM_MARKET)
YES = MARKET.yes_token_id
_ids = itertools.count(1)


@dataclass
class Harness:
    sim: SimVenue
    venue: PolymarketVenue

    def intent(
        self, side: Side, price: str, size: str, *, order_type: OrderType = OrderType.GTC, token_id: str = YES
    ) -> OrderIntent:
        return make_intent(
            f"c-{next(_ids)}",
            condition_id=MARKET.condition_id,
            token_id=token_id,
            side=side,
            price=price,
            size=size,
            order_type=order_type,
        )

    async def prepare(self, side: Side, price: str, size: str, **kwargs: object) -> Order:
        return await self.venue.prepare(self.intent(side, price, size, **kwargs), ts=self.sim.now())  # type: ignore[arg-type]

    def rest_maker(self, side: Side, price: str, size: str, *, token_id: str = YES) -> str:
        """A resting order of another trader (funded with pUSD only), placed straight into the exchange."""
        units = int(D(size) * 1_000_000)
        cash = int(D(size) * D(price) * 1_000_000)
        maker, taker = (cash, units) if side is Side.BUY else (units, cash)
        order_id = f"0x{next(_ids):064x}"
        result = self.sim.exchange.submit(
            OrderRequest(
                order_id=order_id,
                owner="bob",
                maker_address="0x" + "b0" * 20,
                token_id=token_id,
                side=side,
                maker_amount=maker,
                taker_amount=taker,
            ),
            self.sim.now(),
        )
        assert isinstance(result, Accepted), result
        return order_id


def sim_config(heartbeat_timeout_secs: float = 10.0) -> SimConfig:
    return SimConfig(
        scenario=StaticScenario([SIM_MARKET]),
        start_time=T0,
        seed=3,
        rate_limits=None,
        exchange=ExchangeConfig(seed=3, heartbeat_timeout_secs=heartbeat_timeout_secs),
    )


def venue_settings(sim: SimVenue, *, heartbeat: bool = False) -> PolymarketVenueSettings:
    return PolymarketVenueSettings(
        rest_url=sim.urls.rest,
        ws_user_url=sim.urls.ws_user,
        heartbeat_enabled=heartbeat,
        heartbeat=HeartbeatSettings(interval_secs=5),
    )


@asynccontextmanager
async def live(*, heartbeat: bool = False) -> AsyncIterator[Harness]:
    async with (
        open_sim_venue(sim_config()) as sim,
        open_polymarket_venue(venue_settings(sim, heartbeat=heartbeat), OrderSigner(KEY), wall_secs=sim.now) as venue,
    ):
        venue.add_markets([MARKET])
        yield Harness(sim, venue)


async def next_matching(
    events: trio.MemoryReceiveChannel[VenueEvent], predicate: Callable[[VenueEvent], bool]
) -> VenueEvent:
    with trio.fail_after(30):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("event stream ended")


def order_event(order_id: str, status: VenueOrderStatus) -> Callable[[VenueEvent], bool]:
    return lambda e: isinstance(e, VenueOrder) and e.order_id == order_id and e.status is status


def as_venue(venue: PolymarketVenue) -> Venue:
    """mypy checks that the adapter implements the protocol execution talks to."""
    return venue


async def test_keys_submit_lookup_events_and_cancel(autojump_clock: trio.testing.MockClock) -> None:
    with capture_logs() as logs:
        async with live() as h, as_venue(h.venue).open_events() as events:
            credentials = h.venue.credentials
            # the API key was derived over L1 and is the sim's key for our address
            assert h.sim.api_keys.lookup(h.venue.credentials.api_key) is not None
            order = await h.prepare(Side.BUY, "0.40", "10")

            result = await h.venue.submit(order)

            assert result == SubmitAccepted(
                client_order_id=order.client_order_id, order_id=order.order_id, status=VenueOrderStatus.LIVE
            )
            placed = await next_matching(events, order_event(order.order_id, VenueOrderStatus.LIVE))
            assert isinstance(placed, VenueOrder)
            assert (placed.price, placed.original_size, placed.side) == (D("0.4"), D(10), Side.BUY)
            assert [o.order_id for o in await h.venue.open_orders()] == [order.order_id]
            found = await h.venue.lookup(order.order_id)
            assert found is not None
            assert found.status is VenueOrderStatus.LIVE
            balances = await h.venue.balances()
            assert balances.collateral == D(10_000) - D(4)  # the open buy reserves 10 x 0.40

            canceled = await h.venue.cancel(order.order_id)

            assert canceled.canceled == (order.order_id,)
            await next_matching(events, order_event(order.order_id, VenueOrderStatus.CANCELED))
            assert await h.venue.open_orders() == []
    assert credentials.secret not in repr(logs)  # the L2 secrets went over the wire, never into a log line
    assert credentials.passphrase not in repr(logs)


async def test_batch_submit_with_a_refusal_then_cancel_all(autojump_clock: trio.testing.MockClock) -> None:
    async with live() as h:
        orders = [
            await h.prepare(Side.BUY, "0.30", "10"),
            await h.prepare(Side.BUY, "0.31", "1"),  # below the market's minimum size of 5
            await h.prepare(Side.SELL, "0.90", "10", token_id=MARKET.no_token_id),
        ]

        results = await h.venue.submit_batch(orders)

        assert [type(r) for r in results] == [SubmitAccepted, SubmitRejected, SubmitRejected]
        refused = results[1]
        assert isinstance(refused, SubmitRejected)
        assert refused.reason is VenueRejectCode.MIN_SIZE
        assert refused.order_id == orders[1].order_id
        no_shares = results[2]
        assert isinstance(no_shares, SubmitRejected)
        assert no_shares.reason is VenueRejectCode.NOT_ENOUGH_BALANCE

        second = await h.venue.submit(await h.prepare(Side.BUY, "0.32", "10"))
        assert isinstance(second, SubmitAccepted)
        outcome = await h.venue.cancel_all(reason="SHUTDOWN")

        assert sorted(outcome.canceled) == sorted([orders[0].order_id, second.order_id])
        assert await h.venue.open_orders() == []


async def test_a_killed_fok_is_fok_not_filled_alone_and_inside_a_batch(autojump_clock: trio.testing.MockClock) -> None:
    """The sim answers as the venue does: a 400 with the venue's text alone, a refused element in a batch."""
    async with live() as h:
        h.rest_maker(Side.BUY, "0.50", "5", token_id=MARKET.no_token_id)  # 5 YES on offer at 0.50: 10 is too many
        alone = await h.prepare(Side.BUY, "0.50", "10", order_type=OrderType.FOK)
        in_batch = await h.prepare(Side.BUY, "0.50", "10", order_type=OrderType.FOK)
        resting = await h.prepare(Side.BUY, "0.30", "10")

        single = await h.venue.submit(alone)
        batch = await h.venue.submit_batch([in_batch, resting])

        assert isinstance(single, SubmitRejected)
        assert isinstance(batch[0], SubmitRejected)
        assert single.reason is batch[0].reason is VenueRejectCode.FOK_NOT_FILLED
        assert (
            single.message
            == batch[0].message
            == "order couldn't be fully filled. FOK orders are fully filled or killed."
        )
        assert isinstance(batch[1], SubmitAccepted)


async def test_a_ghost_fill_arrives_as_a_failed_trade_that_reverses_the_fill(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with live() as h, h.venue.open_events() as events:
        h.rest_maker(Side.BUY, "0.50", "10", token_id=MARKET.no_token_id)  # BUY NO 0.50 = an ask of YES at 0.50
        h.sim.faults.ghost_fills(owner=h.venue.credentials.api_key)
        order = await h.prepare(Side.BUY, "0.50", "10")

        result = await h.venue.submit(order)

        assert isinstance(result, SubmitAccepted)
        assert (result.status, result.filled_size, result.filled_notional) == (VenueOrderStatus.MATCHED, D(10), D(5))
        matched = await next_matching(events, lambda e: isinstance(e, VenueTrade))
        assert isinstance(matched, VenueTrade)
        assert (matched.order_id, matched.status, matched.liquidity) == (
            order.order_id,
            TradeStatus.MATCHED,
            Liquidity.TAKER,
        )
        assert (matched.side, matched.price, matched.size) == (Side.BUY, D("0.5"), D(10))
        failed = await next_matching(
            events, lambda e: isinstance(e, VenueTrade) and e.status is not TradeStatus.MATCHED
        )
        assert isinstance(failed, VenueTrade)
        assert (failed.trade_id, failed.status) == (matched.trade_id, TradeStatus.FAILED)

        # What execution does with these two events: the fill, then its reversal.
        trade = Trade(
            trade_id=matched.trade_id,
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            token_id=matched.token_id,
            side=matched.side,
            price=matched.price,
            size=matched.size,
            liquidity=matched.liquidity,
            match_ts=matched.match_ts,
        )
        from trader.domain.events import OrderFillReversed, OrderSubmitted

        filled = order.apply(OrderSubmitted(client_order_id=order.client_order_id, ts=1)).apply(trade.fill_event())
        assert filled.status is OrderStatus.FILLED
        reversed_ = filled.apply(
            OrderFillReversed(client_order_id=order.client_order_id, trade_id=failed.trade_id, ts=failed.ts)
        )
        assert (reversed_.filled, reversed_.status) == (D(0), OrderStatus.CANCELED)
        assert trade.apply_status(failed.status, failed.ts).is_failed


async def test_heartbeat_expiry_cancels_our_orders(autojump_clock: trio.testing.MockClock) -> None:
    async with live(heartbeat=True) as h, h.venue.open_events() as events:
        order = await h.prepare(Side.BUY, "0.40", "10")
        assert isinstance(await h.venue.submit(order), SubmitAccepted)
        await trio.sleep(30)  # heartbeats keep the order alive well past the venue's 10 s timeout
        assert [o.order_id for o in await h.venue.open_orders()] == [order.order_id]
        assert h.venue.heartbeat is not None

        h.venue.heartbeat.stop()  # as if the engine died

        canceled = await next_matching(events, order_event(order.order_id, VenueOrderStatus.CANCELED))
        assert await h.venue.open_orders() == []
        stats = h.venue.heartbeat.statistics()
        assert stats.failures == 0
        assert stats.last_success_at is not None
        assert stats.succeeded >= 6  # 0, 5, ..., 25 (the one at 30 may have been in flight at stop())
        # the venue waited its 10 s timeout after the last heartbeat it received, then cancelled
        assert stats.last_success_at + 10 <= canceled.ts - T0 <= stats.last_success_at + 10 + 1


async def test_an_ambiguous_submit_is_resolved_by_order_id(autojump_clock: trio.testing.MockClock) -> None:
    async with live() as h:
        h.sim.faults.delay_http(3.0, count=1, path_prefix="/order")
        order = await h.prepare(Side.BUY, "0.40", "10")

        with trio.move_on_after(1) as scope:  # the caller's deadline passes before the venue answers
            await h.venue.submit(order)
        assert scope.cancelled_caught

        assert await h.venue.lookup(order.order_id) is None  # not processed yet
        await trio.sleep(3)
        found = await h.venue.lookup(order.order_id)
        assert found is not None  # the venue did take it: do NOT send it again
        assert (found.order_id, found.status) == (order.order_id, VenueOrderStatus.LIVE)


@pytest.mark.parametrize(("status", "throttled"), [(429, True), (500, False), (503, False)])
async def test_429_and_5xx_bursts_are_distinct_retryable_errors(
    autojump_clock: trio.testing.MockClock, status: int, throttled: bool
) -> None:
    async with live() as h:
        h.sim.faults.http_errors(status, count=2, path_prefix="/order")
        order = await h.prepare(Side.BUY, "0.40", "10")
        for _ in range(2):
            with pytest.raises(VenueRequestError) as info:
                await h.venue.submit(order)
            assert (info.value.status, info.value.is_throttled, info.value.is_server_error) == (
                status,
                throttled,
                not throttled,
            )
            assert info.value.retryable
        assert isinstance(await h.venue.submit(order), SubmitAccepted)  # the burst is over: the same order goes in


async def test_a_fok_fill_settles_and_shows_in_trades_and_positions(autojump_clock: trio.testing.MockClock) -> None:
    async with live() as h, h.venue.open_events() as events:
        h.rest_maker(Side.BUY, "0.50", "10", token_id=MARKET.no_token_id)
        order = await h.prepare(Side.BUY, "0.50", "10", order_type=OrderType.FOK)

        result = await h.venue.submit(order)

        assert isinstance(result, SubmitAccepted)
        assert (result.status, result.filled_size) == (VenueOrderStatus.MATCHED, D(10))
        await next_matching(events, lambda e: isinstance(e, VenueTrade) and e.status is TradeStatus.CONFIRMED)
        (trade,) = await h.venue.trades()
        assert (trade.order_id, trade.status, trade.size, trade.price) == (
            order.order_id,
            TradeStatus.CONFIRMED,
            D(10),
            D("0.5"),
        )
        assert await h.venue.positions() == {YES: D(10)}
        assert (await h.venue.balances()).collateral == D(10_000) - D(5)


async def test_a_restarted_engine_submits_the_persisted_order_with_the_same_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with live() as h:
        order = await h.prepare(Side.SELL, "0.60", "5", token_id=MARKET.no_token_id)
        settings = PolymarketVenueSettings(
            rest_url=h.sim.urls.rest, ws_user_url=h.sim.urls.ws_user, heartbeat_enabled=False
        )
        async with open_polymarket_venue(settings, OrderSigner(KEY), wall_secs=h.sim.now) as restarted:
            restarted.add_markets([MARKET])
            result = await restarted.submit(order)  # re-signed from the persisted order alone
            with pytest.raises(ValueError, match="re-signing gives"):
                await restarted.submit(dataclasses.replace(order, client_order_id="not-what-was-signed"))
        assert isinstance(result, SubmitRejected)  # no NO shares to sell: refused, but under our id
        assert result.order_id == order.order_id
        assert result.reason is VenueRejectCode.NOT_ENOUGH_BALANCE


async def test_shutdown_can_still_cancel_all_while_the_venue_tasks_are_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome = None
    async with open_sim_venue(sim_config()) as sim:
        with trio.CancelScope() as scope:
            async with open_polymarket_venue(
                venue_settings(sim, heartbeat=True), OrderSigner(KEY), wall_secs=sim.now
            ) as venue:
                venue.add_markets([MARKET])
                async with venue.open_events():
                    order = await Harness(sim, venue).prepare(Side.BUY, "0.40", "10")
                    assert isinstance(await venue.submit(order), SubmitAccepted)
                    try:
                        scope.cancel()  # Ctrl+C: the heartbeat and the user stream are being cancelled...
                        await trio.sleep_forever()
                    finally:
                        with trio.move_on_after(5, shield=True):  # ...and REST still works
                            outcome = await venue.cancel_all(reason="SHUTDOWN")
        orders_left = list(sim.exchange.open_orders(venue.credentials.api_key))
    assert outcome is not None
    assert outcome.canceled == (order.order_id,)
    assert orders_left == []


async def test_events_missed_across_a_reconnect_are_backfilled(autojump_clock: trio.testing.MockClock) -> None:
    async with live() as h, h.venue.open_events() as events:
        h.sim.faults.stall_ws()  # the socket stays open but goes silent: a stall, then a reconnect
        order = await h.prepare(Side.BUY, "0.40", "10")
        assert isinstance(await h.venue.submit(order), SubmitAccepted)  # its PLACEMENT is lost with the socket
        h.sim.faults.resume_ws()
        h.sim.ws.drop_all("user")

        backfilled = await next_matching(events, order_event(order.order_id, VenueOrderStatus.LIVE))

        assert isinstance(backfilled, VenueOrder)
        stats = h.venue.statistics()
        assert stats.backfills == 1
        assert stats.user_streams[0].reconnects == 1
