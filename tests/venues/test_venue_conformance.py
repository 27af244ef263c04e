"""The `Venue` port's promises (`trader/venues/base.py`), held by every implementation: one set of behavioural tests
run against the test fake (`FakeVenue`), the paper venue (`PaperVenue` over local books) and the live Polymarket
adapter (`open_polymarket_venue`) against the simulated venue over real loopback sockets.

Each venue gets an adapter (`Subject`) that knows how to make an order rest or fill THERE; the assertions are
shared. The market and its books are the same everywhere (tick 0.01, minimum size 5, taker fee 0.02 x p x (1 - p)
per share, makers free):

    YES  asks 0.50 x 100   bids 0.30 x 100         (another trader's orders)
    NO   the mirror: asks 0.70 x 100, bids 0.50 x 100

so a BUY of YES at 0.40 rests alone at its level, and a BUY at 0.50 crosses. We start with `CASH` pUSD and no shares.

Where a venue legitimately differs, the adapter says so instead of the assertion giving way: the fake checks nothing
and matches nothing by itself, it plays what its script says (`Subject.script`), so its refusals and its fills on
entry are scripted to what the book above would give; and the fake charges no fees (its trades carry fee 0, which
the fee-generic assertions below accept as they are).

Time is trio's autojump MockClock (the sim's exchange runs on the Trio clock, as in `tests/venues/polymarket/`);
each test names `autojump_clock` itself, since pytest-trio runs a test on a clock among its own arguments only.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.book import OrderBook
from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order, is_order_id
from trader.testing import make_intent, market_from_sim
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.venues.base import (
    MAX_BATCH_SIZE,
    MAX_CANCEL_IDS,
    PRICE_OFF_TICK,
    PRICE_OUT_OF_RANGE,
    PrepareRefused,
    SubmitAccepted,
    SubmitRejected,
    Venue,
    VenueEvent,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
)
from trader.venues.errors import VenueRejectCode
from trader.venues.paper import PaperSettings, PaperVenue
from trader.venues.polymarket.paper_ids import paper_order_id
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import Accepted, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import UNITS_PER_ONE
from trader.venues.sim.markets import FeeSchedule as SimFeeSchedule
from trader.venues.sim.markets import make_market as make_sim_market
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

D = Decimal
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CASH = D(10_000)  # what the sim funds a new wallet with; the fake and the paper venue get the same
KEY = "0x" + "c0" * 32
MAKER = "0x" + "3a" * 20  # the other trader of the sim
SIM_MARKET = make_sim_market(
    "venue-conformance", question="Does every venue keep the port's promises?", fees=SimFeeSchedule(rate=D("0.02"))
)
MARKET = market_from_sim(SIM_MARKET)
YES, NO = MARKET.token_ids
#: (side, price, shares) of the other trader's YES orders; the NO book is their mirror.
BOOK = ((Side.SELL, "0.50", "100"), (Side.BUY, "0.30", "100"))
ASK, REST = D("0.50"), D("0.40")
EVENT_DEADLINE_SECS = 30.0  # on the MockClock: a missing event fails the test, it does not hang it


# -- the venues under test -----------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One venue under test and what the suite must know of it.

    - `script(token, outcome)`: what the fake must be told to do with the next order of `token` (the others act on
      the order itself and ignore it).
    - `sell_into(order, shares)`: another trader sells `shares` at our resting buy's price (a maker fill of ours).
    - `settle(trade_id)`: what the fake must be told to settle a trade (the others settle by themselves: paper at
      once, the sim on its schedule).
    """

    venue: Venue
    now: Callable[[], float]
    sell_into: Callable[[Order, Decimal], Awaitable[None]]
    script: Callable[[str, Outcome], None] = lambda _token, _outcome: None
    settle: Callable[[str], None] = lambda _trade_id: None
    checks_terms: bool = True  # prepare refuses terms the market refuses (the fake prepares anything)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def intent(
        self,
        side: Side,
        price: Decimal | str,
        size: Decimal | str,
        order_type: OrderType = OrderType.GTC,
        *,
        token_id: str = YES,
        post_only: bool = False,
    ) -> OrderIntent:
        return make_intent(
            f"conf-{next(self._ids)}",
            condition_id=MARKET.condition_id,
            token_id=token_id,
            side=side,
            price=price,
            size=size,
            order_type=order_type,
            post_only=post_only,
        )

    async def prepare(
        self,
        side: Side,
        price: Decimal | str,
        size: Decimal | str,
        order_type: OrderType = OrderType.GTC,
        *,
        token_id: str = YES,
        post_only: bool = False,
    ) -> Order:
        """The venue's order for `intent(...)`, prepared now."""
        intent = self.intent(side, price, size, order_type, token_id=token_id, post_only=post_only)
        return await self.venue.prepare(intent, ts=self.now())

    async def rest(self, price: Decimal | str = REST, size: Decimal | str = "10") -> Order:
        """Our GTC buy of YES below the ask, accepted and resting."""
        order = await self.prepare(Side.BUY, price, size)
        result = await self.venue.submit(order)
        assert isinstance(result, SubmitAccepted), result
        assert result.status is VenueOrderStatus.LIVE
        return order


def paper_books() -> dict[str, OrderBook]:
    yes, no = OrderBook(YES, MARKET.tick_size), OrderBook(NO, MARKET.tick_size)
    bids = [(D(p), D(s)) for side, p, s in BOOK if side is Side.BUY]
    asks = [(D(p), D(s)) for side, p, s in BOOK if side is Side.SELL]
    yes.apply_snapshot(bids, asks, now=0.0)
    no.apply_snapshot([(1 - p, s) for p, s in asks], [(1 - p, s) for p, s in bids], now=0.0)
    return {YES: yes, NO: no}


@asynccontextmanager
async def fake_subject() -> AsyncIterator[Subject]:
    fake = FakeVenue(cash=CASH, wall=T0)

    async def sell_into(order: Order, shares: Decimal) -> None:
        await trio.lowlevel.checkpoint()
        fake.fill(order.order_id, shares)

    def settle(trade_id: str) -> None:
        fake.set_trade_status(trade_id, TradeStatus.CONFIRMED)

    yield Subject(fake, lambda: T0, sell_into, script=fake.script, settle=settle, checks_terms=False)
    fake.check()


@asynccontextmanager
async def paper_subject() -> AsyncIterator[Subject]:
    books = paper_books()
    paper = PaperVenue(
        books.get,
        lambda token: MARKET if token in books else None,
        order_ids=paper_order_id,
        cash=CASH,
        settings=PaperSettings(latency_secs=0.05),
        wall=lambda: T0 + trio.current_time(),
    )

    async def sell_into(order: Order, shares: Decimal) -> None:
        await trio.lowlevel.checkpoint()
        paper.on_trade(order.token_id, order.price, shares)  # a print at our price: nobody was ahead of us

    yield Subject(paper, lambda: T0 + trio.current_time(), sell_into)


def other_trader(sim: SimVenue, side: Side, price: str, size: str, order_type: str = "GTC") -> None:
    """An order of the other trader (funded with shares of both tokens), straight into the sim's exchange."""
    units = int(D(size) * UNITS_PER_ONE)
    cash = int(D(size) * D(price) * UNITS_PER_ONE)
    maker_amount, taker_amount = (cash, units) if side is Side.BUY else (units, cash)
    n = sum(1 for _ in sim.exchange.orders())
    request = OrderRequest(
        order_id=f"0x{n + 1:064x}",
        owner="other-trader",
        maker_address=MAKER,
        token_id=YES,
        side=side,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        order_type=order_type,
    )
    assert isinstance(sim.exchange.submit(request, sim.now()), Accepted)


@asynccontextmanager
async def live_subject() -> AsyncIterator[Subject]:
    config = SimConfig(
        scenario=StaticScenario([SIM_MARKET]),
        start_time=T0,
        seed=11,
        rate_limits=None,
        exchange=ExchangeConfig(seed=11),
    )
    async with open_sim_venue(config) as sim:
        sim.exchange.fund(MAKER, shares={YES: 1_000 * UNITS_PER_ONE, NO: 1_000 * UNITS_PER_ONE})
        for side, price, size in BOOK:
            other_trader(sim, side, price, size)
        settings = PolymarketVenueSettings(
            rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user, heartbeat_enabled=False
        )
        async with open_polymarket_venue(settings, OrderSigner(KEY), wall_secs=sim.now) as venue:
            venue.add_markets([MARKET])

            async def sell_into(order: Order, shares: Decimal) -> None:
                await trio.lowlevel.checkpoint()
                other_trader(sim, Side.SELL, str(order.price), str(shares), "FAK")  # any size: a market order

            yield Subject(venue, sim.now, sell_into)


SUBJECTS: dict[str, Callable[[], AbstractAsyncContextManager[Subject]]] = {
    "fake": fake_subject,
    "paper": paper_subject,
    "live": live_subject,
}


@pytest.fixture(params=list(SUBJECTS))
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    async with SUBJECTS[request.param]() as made:
        yield made


# -- helpers ---------------------------------------------------------------------------------------------------------


async def next_event(
    events: trio.MemoryReceiveChannel[VenueEvent], predicate: Callable[[VenueEvent], bool], what: str
) -> VenueEvent:
    with trio.move_on_after(EVENT_DEADLINE_SECS):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError(f"no event: {what}")


def order_event(order: Order, status: VenueOrderStatus) -> Callable[[VenueEvent], bool]:
    return lambda e: isinstance(e, VenueOrder) and e.order_id == order.order_id and e.status is status


def trade_of(order: Order) -> Callable[[VenueEvent], bool]:
    return lambda e: isinstance(e, VenueTrade) and e.order_id == order.order_id


async def our_trades(venue: Venue, order: Order) -> list[VenueTrade]:
    return [t for t in await venue.trades() if t.order_id == order.order_id]


async def assert_balances_follow(venue: Venue, *, resting_buys: Decimal = ZERO) -> None:
    """Balances and positions are what our trades made of `CASH` and no shares: a buy costs its price and its pUSD
    fee and brings its shares less any fee withheld in shares; open buys reserve their pUSD."""
    trades = [t for t in await venue.trades() if t.status is not TradeStatus.FAILED]
    spent = sum((t.price * t.size + t.fee for t in trades if t.side is Side.BUY), ZERO)
    held = sum((t.size - t.fee_shares for t in trades if t.side is Side.BUY and t.token_id == YES), ZERO)
    positions = await venue.positions()
    assert positions == ({YES: held} if held else {})
    balances = await venue.balances()
    assert balances.collateral == CASH - spent - resting_buys
    assert balances.shares.get(YES, ZERO) == held


# -- prepare -----------------------------------------------------------------------------------------------------------


async def test_prepare_builds_the_order_and_sends_nothing(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    intent = subject.intent(Side.BUY, "0.40", "10")
    ts = subject.now()

    order = await subject.venue.prepare(intent, ts=ts)
    other = await subject.venue.prepare(subject.intent(Side.BUY, "0.40", "10"), ts=ts)

    assert order == Order.from_intent(intent, order_id=order.order_id, ts=ts)  # CREATED, the intent's terms
    assert order.status is OrderStatus.CREATED
    assert is_order_id(order.order_id)  # shaped as the venue's ids: "0x" + 64 hex
    assert other.order_id != order.order_id
    assert await subject.venue.lookup(order.order_id) is None  # computed here: nothing was sent
    assert await subject.venue.open_orders() == []


# -- submit --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "order_type", "code"),
    [
        ("0.405", OrderType.GTC, PRICE_OFF_TICK),  # the market's tick is 0.01
        ("0.505", OrderType.FOK, PRICE_OFF_TICK),  # a market order's worst price too: never floored to the grid
        ("0.995", OrderType.GTC, PRICE_OUT_OF_RANGE),  # above 1 - tick
    ],
)
async def test_prepare_refuses_a_price_off_the_tick_grid_in_force(
    subject: Subject, autojump_clock: trio.testing.MockClock, price: str, order_type: OrderType, code: str
) -> None:
    if not subject.checks_terms:
        pytest.skip("the fake prepares whatever it is given")
    with pytest.raises(PrepareRefused) as refused:
        await subject.prepare(Side.BUY, price, "10", order_type)
    assert refused.value.code == code
    assert await subject.venue.open_orders() == []


async def test_a_resting_order_is_live_under_the_id_computed_before_sending(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    async with venue.open_events() as events:
        order = await subject.prepare(Side.BUY, REST, "10")

        result = await venue.submit(order)

        assert result == SubmitAccepted(
            client_order_id=order.client_order_id, order_id=order.order_id, status=VenueOrderStatus.LIVE
        )
        placed = await next_event(events, order_event(order, VenueOrderStatus.LIVE), "the order's placement")
        assert isinstance(placed, VenueOrder)
        assert (placed.token_id, placed.side, placed.price, placed.original_size, placed.size_matched) == (
            YES,
            Side.BUY,
            REST,
            D(10),
            ZERO,
        )
        assert [o.order_id for o in await venue.open_orders()] == [order.order_id]
        found = await venue.lookup(order.order_id)
        assert found is not None
        assert (found.order_id, found.status, found.order_type, found.size_matched) == (
            order.order_id,
            VenueOrderStatus.LIVE,
            OrderType.GTC,
            ZERO,
        )
        await assert_balances_follow(venue, resting_buys=REST * 10)  # the open buy reserves 4 pUSD


async def test_a_crossing_order_fills_and_balances_and_positions_follow(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    async with venue.open_events() as events:
        order = await subject.prepare(Side.BUY, ASK, "10", OrderType.FOK)  # the fake fills a FOK in full by default

        result = await venue.submit(order)

        assert isinstance(result, SubmitAccepted), result
        assert (result.order_id, result.status, result.filled_size, result.filled_notional) == (
            order.order_id,
            VenueOrderStatus.MATCHED,
            D(10),
            D(5),
        )
        assert result.trade_ids
        event = await next_event(events, trade_of(order), "our trade")
        assert isinstance(event, VenueTrade)
        assert (event.token_id, event.side, event.price, event.size, event.liquidity, event.status) == (
            YES,
            Side.BUY,
            ASK,
            D(10),
            Liquidity.TAKER,
            TradeStatus.MATCHED,
        )
        trades = await our_trades(venue, order)
        assert [t.trade_id for t in trades] == [event.trade_id]  # the venue's list holds it once, at its last status
        assert sum((t.size for t in trades), ZERO) == result.filled_size
        found = await venue.lookup(order.order_id)
        assert found is not None
        assert (found.status, found.size_matched) == (VenueOrderStatus.MATCHED, D(10))
        assert await venue.open_orders() == []
        await assert_balances_follow(venue)
        assert await venue.positions() != {}


async def test_a_marketable_limit_order_takes_the_book_and_rests_the_rest(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    subject.script(YES, Outcome(fill=D(100), fill_price=ASK))  # the fake: what the book above would match
    order = await subject.prepare(Side.BUY, ASK, "150")

    result = await venue.submit(order)

    assert isinstance(result, SubmitAccepted), result
    assert (result.status, result.filled_size, result.filled_notional) == (VenueOrderStatus.LIVE, D(100), D(50))
    found = await venue.lookup(order.order_id)
    assert found is not None
    assert (found.status, found.original_size, found.size_matched) == (VenueOrderStatus.LIVE, D(150), D(100))
    assert [(o.order_id, o.size_matched) for o in await venue.open_orders()] == [(order.order_id, D(100))]
    await assert_balances_follow(venue, resting_buys=ASK * 50)


async def test_a_resting_order_filled_by_another_trader_is_our_maker_trade(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    async with venue.open_events() as events:
        order = await subject.rest()

        await subject.sell_into(order, D(4))

        event = await next_event(events, trade_of(order), "our maker trade")
        assert isinstance(event, VenueTrade)
        assert (event.side, event.price, event.size, event.liquidity, event.fee, event.fee_shares) == (
            Side.BUY,
            REST,
            D(4),
            Liquidity.MAKER,
            ZERO,  # the fee is taker-only
            ZERO,
        )
        update = await next_event(
            events,
            lambda e: isinstance(e, VenueOrder) and e.order_id == order.order_id and e.size_matched == D(4),
            "our order's update",
        )
        assert isinstance(update, VenueOrder)
        assert update.status is VenueOrderStatus.LIVE
        found = await venue.lookup(order.order_id)
        assert found is not None
        assert (found.status, found.size_matched) == (VenueOrderStatus.LIVE, D(4))
        await assert_balances_follow(venue, resting_buys=REST * 6)  # 4 bought, 6 still reserved


async def test_a_trade_is_reported_again_under_its_id_as_it_settles(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    async with venue.open_events() as events:
        order = await subject.prepare(Side.BUY, ASK, "10", OrderType.FOK)
        assert isinstance(await venue.submit(order), SubmitAccepted)
        matched = await next_event(events, trade_of(order), "our trade")
        assert isinstance(matched, VenueTrade)
        assert matched.status is TradeStatus.MATCHED

        subject.settle(matched.trade_id)

        confirmed = await next_event(
            events,
            lambda e: isinstance(e, VenueTrade) and e.trade_id == matched.trade_id and e.status.is_terminal,
            "the trade's settlement",
        )
        assert isinstance(confirmed, VenueTrade)
        assert (confirmed.order_id, confirmed.status, confirmed.size, confirmed.price, confirmed.match_ts) == (
            order.order_id,
            TradeStatus.CONFIRMED,
            matched.size,
            matched.price,
            matched.match_ts,
        )
        assert [(t.trade_id, t.status) for t in await our_trades(venue, order)] == [
            (matched.trade_id, TradeStatus.CONFIRMED)
        ]
        await assert_balances_follow(venue)


#: What makes an order wrong (its order, prepared), and the stable code every venue refuses it with.
REFUSALS: dict[str, tuple[Callable[[Subject], Awaitable[Order]], VenueRejectCode]] = {
    "below the minimum size": (lambda s: s.prepare(Side.BUY, REST, "1"), VenueRejectCode.MIN_SIZE),
    "a FOK the book cannot fill": (
        lambda s: s.prepare(Side.BUY, ASK, "200", OrderType.FOK),
        VenueRejectCode.FOK_NOT_FILLED,
    ),
    "a sell of shares we do not hold": (
        lambda s: s.prepare(Side.SELL, "0.60", "10"),
        VenueRejectCode.NOT_ENOUGH_BALANCE,
    ),
    "a FAK with nothing to take": (
        lambda s: s.prepare(Side.BUY, REST, "10", OrderType.FAK),
        VenueRejectCode.FOK_NOT_FILLED,
    ),
    "a post-only order that would cross": (
        lambda s: s.prepare(Side.BUY, ASK, "10", post_only=True),
        VenueRejectCode.POST_ONLY_WOULD_CROSS,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_refusal_is_a_value_with_a_stable_code_and_nothing_rests(
    subject: Subject, case: str, autojump_clock: trio.testing.MockClock
) -> None:
    prepare, code = REFUSALS[case]
    venue = subject.venue
    subject.script(YES, Outcome(reply="reject", reason=code))  # the fake checks nothing: it is told to refuse
    order = await prepare(subject)

    result = await venue.submit(order)

    assert isinstance(result, SubmitRejected), result
    assert (result.client_order_id, result.order_id, result.reason) == (order.client_order_id, order.order_id, code)
    assert await venue.open_orders() == []
    found = await venue.lookup(order.order_id)
    assert found is None or found.status is VenueOrderStatus.CANCELED  # a venue may remember a killed FOK
    assert await venue.trades() == []
    await assert_balances_follow(venue)


# -- batches ---------------------------------------------------------------------------------------------------------


async def test_a_batch_gives_one_result_per_order_in_order(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    subject.script(NO, Outcome(reply="reject", reason=VenueRejectCode.MIN_SIZE))
    orders = [
        await subject.prepare(Side.BUY, REST, "10"),
        await subject.prepare(Side.BUY, REST, "1", token_id=NO),  # below the minimum size
        await subject.prepare(Side.BUY, "0.39", "10"),
    ]

    results = await venue.submit_batch(orders)

    assert [(type(r), r.client_order_id, r.order_id) for r in results] == [
        (SubmitAccepted, orders[0].client_order_id, orders[0].order_id),
        (SubmitRejected, orders[1].client_order_id, orders[1].order_id),
        (SubmitAccepted, orders[2].client_order_id, orders[2].order_id),
    ]
    refused = results[1]
    assert isinstance(refused, SubmitRejected)
    assert refused.reason is VenueRejectCode.MIN_SIZE
    assert sorted(o.order_id for o in await venue.open_orders()) == sorted([orders[0].order_id, orders[2].order_id])


async def test_a_batch_too_large_empty_or_repeating_an_order_is_refused_before_sending(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    orders = [await subject.prepare(Side.BUY, "0.31", str(10 + n)) for n in range(MAX_BATCH_SIZE + 1)]

    for bad in (orders, [], [orders[0], orders[0]]):
        with pytest.raises(ValueError, match="batch"):
            await venue.submit_batch(bad)

    assert await venue.open_orders() == []
    assert [await venue.lookup(o.order_id) for o in orders] == [None] * len(orders)


# -- cancels ---------------------------------------------------------------------------------------------------------


async def test_cancel_takes_the_order_off_and_says_so(subject: Subject, autojump_clock: trio.testing.MockClock) -> None:
    venue = subject.venue
    async with venue.open_events() as events:
        order = await subject.rest()

        outcome = await venue.cancel(order.order_id)

        assert (outcome.canceled, dict(outcome.not_canceled)) == ((order.order_id,), {})
        await next_event(events, order_event(order, VenueOrderStatus.CANCELED), "the cancellation")
        found = await venue.lookup(order.order_id)
        assert found is not None
        assert found.status is VenueOrderStatus.CANCELED
        assert await venue.open_orders() == []
        await assert_balances_follow(venue)  # nothing reserved any more

        again = await venue.cancel(order.order_id)

        assert again.canceled == ()
        assert list(again.not_canceled) == [order.order_id]


async def test_a_partly_filled_order_cancelled_keeps_what_it_matched(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    order = await subject.rest()
    await subject.sell_into(order, D(4))

    outcome = await venue.cancel(order.order_id)

    assert outcome.canceled == (order.order_id,)
    found = await venue.lookup(order.order_id)
    assert found is not None
    assert (found.status, found.size_matched) == (VenueOrderStatus.CANCELED, D(4))
    assert await venue.open_orders() == []
    await assert_balances_follow(venue)  # the 4 shares bought stay; the rest no longer reserves anything


async def test_cancelling_an_unknown_order_is_an_answer_not_an_error(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    unknown = "0x" + "f" * 64

    outcome = await subject.venue.cancel(unknown)

    assert outcome.canceled == ()
    assert list(outcome.not_canceled) == [unknown]
    assert outcome.not_canceled[unknown]  # the venue's reason, for the record


async def test_cancel_all_cancels_every_open_order_of_ours(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    assert (await venue.cancel_all(reason="SHUTDOWN")).canceled == ()  # nothing open: nothing to say
    first, second = await subject.rest("0.40"), await subject.rest("0.39")

    outcome = await venue.cancel_all(reason="SHUTDOWN")

    assert sorted(outcome.canceled) == sorted([first.order_id, second.order_id])
    assert await venue.open_orders() == []
    for order in (first, second):
        found = await venue.lookup(order.order_id)
        assert found is not None
        assert found.status is VenueOrderStatus.CANCELED


async def test_cancel_orders_cancels_those_named_and_refuses_more_than_the_cap(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    first, second, third = await subject.rest("0.40"), await subject.rest("0.39"), await subject.rest("0.38")
    unknown = "0x" + "e" * 64

    outcome = await venue.cancel_orders([first.order_id, third.order_id, unknown])

    assert sorted(outcome.canceled) == sorted([first.order_id, third.order_id])
    assert list(outcome.not_canceled) == [unknown]
    assert [o.order_id for o in await venue.open_orders()] == [second.order_id]
    with pytest.raises(ValueError, match="1000"):
        await venue.cancel_orders([unknown] * (MAX_CANCEL_IDS + 1))  # the caller splits; nothing is sent


# -- lookups and trades ------------------------------------------------------------------------------------------------


async def test_lookup_of_an_order_the_venue_never_saw_is_none(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    assert await subject.venue.lookup("0x" + "e" * 64) is None


async def test_trades_since_a_time_leave_out_the_older_ones(
    subject: Subject, autojump_clock: trio.testing.MockClock
) -> None:
    venue = subject.venue
    order = await subject.prepare(Side.BUY, ASK, "10", OrderType.FOK)
    assert isinstance(await venue.submit(order), SubmitAccepted)
    (trade,) = await our_trades(venue, order)

    assert [t.trade_id for t in await venue.trades(since_ts=trade.match_ts - 1)] == [trade.trade_id]
    assert await venue.trades(since_ts=trade.match_ts + 2) == []
