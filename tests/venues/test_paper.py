"""The paper venue on fixed books, every number computed by hand (fees included), on the MockClock.

The book of YES (tick 0.01, minimum size 5, taker fee rate 0.02 with exponent 1, so the fee per share at p is
0.02 x p x (1 - p)):

    asks  0.53 x 300          bids  0.48 x 150
          0.51 x 200                0.47 x 250
          0.50 x 100
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
import trio
import trio.testing
from eth_account import Account

from tests.venues.polymarket.exchange_reference import typed_order
from trader.domain.book import OrderBook
from trader.domain.enums import OrderStatus, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.domain.orders import Order, is_order_id
from trader.domain.positions import Portfolio
from trader.engine.books import Books
from trader.engine.order_manager import OrderManager, pump_venue_events
from trader.errors import ConfigError
from trader.testing import make_intent, make_market, make_order
from trader.testing.memory_store import MemoryStore
from trader.venues.base import (
    PRICE_OFF_TICK,
    PRICE_OUT_OF_RANGE,
    PrepareRefused,
    SubmitAccepted,
    SubmitRejected,
    VenueOrderStatus,
    VenueTrade,
)
from trader.venues.errors import VenueRejectCode
from trader.venues.paper import PaperSettings, PaperVenue, PaperWallet, follow_books
from trader.venues.paper_capital import PaperCapital
from trader.venues.polymarket.paper_ids import PAPER_KEY, PaperOrderIds, paper_order_id
from trader.venues.polymarket.signing import OrderSigner, order_salt

YES = "1001"
NO = "1002"
D = Decimal
WALL = 1_700_000_000.0

MARKET = make_market(question="q", slug="q", fees=FeeSchedule(rate=D("0.02"), exponent=1))


def fixed_book() -> OrderBook:
    book = OrderBook(YES, D("0.01"))
    book.apply_snapshot(
        [(D("0.48"), D(150)), (D("0.47"), D(250))],
        [(D("0.50"), D(100)), (D("0.51"), D(200)), (D("0.53"), D(300))],
        now=0.0,
    )
    return book


_ids = itertools.count(1)


def order(
    side: Side,
    price: str,
    size: str,
    order_type: OrderType = OrderType.GTC,
    *,
    post_only: bool = False,
    token: str = YES,
) -> Order:
    n = next(_ids)
    return make_order(
        f"c{n}",
        order_id=f"0x{n:064x}",
        token_id=token,
        side=side,
        price=price,
        size=size,
        order_type=order_type,
        post_only=post_only,
    )


class Venue:
    """A paper venue on one fixed book, recording its events."""

    def __init__(self, *, cash: str = "1000", shares: dict[str, Decimal] | None = None, latency: float = 0.0) -> None:
        self.book = fixed_book()
        self.market = MARKET
        self.paper = PaperVenue(
            lambda t: self.book if t == YES else None,
            lambda t: self.market if t in (YES, NO) else None,
            order_ids=paper_order_id,
            cash=D(cash),
            shares=shares,
            settings=PaperSettings(latency_secs=latency),
            wall=lambda: WALL,
        )


async def collect(paper: PaperVenue, events: list[object], *, task_status: trio.TaskStatus[None]) -> None:
    async with paper.open_events() as channel:
        task_status.started()
        async for event in channel:
            events.append(event)


async def test_marketable_buy_walks_the_levels_and_pays_its_fee_in_shares() -> None:
    v = Venue()
    result = await v.paper.submit(order(Side.BUY, "0.51", "250"))

    assert isinstance(result, SubmitAccepted)
    assert result.status is VenueOrderStatus.MATCHED
    assert result.filled_size == D(250)
    assert result.filled_notional == D("126.5")  # 100 x 0.50 + 150 x 0.51
    assert result.filled_notional / result.filled_size == D("0.506")  # the VWAP: 0.006 of slippage over 0.50
    trades = await v.paper.trades()
    assert [(t.price, t.size, t.fee, t.fee_shares, t.status) for t in trades] == [
        # fee 100 x 0.02 x 0.25 = 0.5 pUSD = 1 share at 0.50; 150 x 0.02 x 0.2499 = 0.7497 pUSD = 1.47 at 0.51
        (D("0.50"), D(100), D(0), D("1.000000"), TradeStatus.CONFIRMED),
        (D("0.51"), D(150), D(0), D("1.470000"), TradeStatus.CONFIRMED),
    ]
    assert await v.paper.positions() == {YES: D("247.53")}
    assert v.paper.cash == D("873.5")
    assert v.paper.statistics().fee_shares == {YES: D("2.47")}


async def test_fok_that_cannot_fill_completely_is_not_filled_at_all() -> None:
    v = Venue()
    result = await v.paper.submit(order(Side.BUY, "0.53", "700", OrderType.FOK))  # only 600 up to 0.53
    assert isinstance(result, SubmitRejected)
    assert result.reason is VenueRejectCode.FOK_NOT_FILLED
    assert await v.paper.positions() == {}
    assert v.paper.cash == D(1000)
    assert await v.paper.trades() == []


async def test_fak_fills_what_is_there_and_cancels_the_rest() -> None:
    v = Venue()
    events: list[object] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(collect, v.paper, events)
        big = order(Side.BUY, "0.53", "700", OrderType.FAK)
        result = await v.paper.submit(big)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()

    assert isinstance(result, SubmitAccepted)
    assert result.filled_size == D(600)
    assert result.filled_notional == D(311)  # 50 + 102 + 159
    # fees in shares: 1 (0.5 / 0.50) + 1.96 (0.9996 / 0.51) + 2.82 (1.4946 / 0.53) = 5.78
    assert await v.paper.positions() == {YES: D("594.22")}
    assert v.paper.cash == D(689)
    final = [e for e in events if not isinstance(e, VenueTrade)]
    assert [(e.status, e.size_matched) for e in final] == [(VenueOrderStatus.CANCELED, D(600))]  # type: ignore[attr-defined]
    assert (await v.paper.lookup(big.order_id)).status is VenueOrderStatus.CANCELED  # type: ignore[union-attr]


async def test_fak_with_nothing_to_take_is_rejected() -> None:
    v = Venue()
    result = await v.paper.submit(order(Side.BUY, "0.49", "10", OrderType.FAK))
    assert isinstance(result, SubmitRejected)
    assert result.reason is VenueRejectCode.FOK_NOT_FILLED


async def test_resting_order_waits_behind_its_queue_and_fills_when_trades_print_through() -> None:
    v = Venue()
    bid = order(Side.BUY, "0.48", "50")
    result = await v.paper.submit(bid)
    assert isinstance(result, SubmitAccepted)
    assert result.status is VenueOrderStatus.LIVE
    assert v.paper.queue_ahead(bid.order_id) == D(150)  # the size at 0.48 when it arrived

    v.paper.on_trade(YES, D("0.48"), D(100))  # eats 100 of the 150 ahead
    assert v.paper.queue_ahead(bid.order_id) == D(50)
    assert await v.paper.trades() == []

    v.paper.on_trade(YES, D("0.48"), D(80))  # 50 ahead, then 30 for us
    assert v.paper.queue_ahead(bid.order_id) == D(0)
    assert [(t.price, t.size, t.liquidity.value, t.fee_shares) for t in await v.paper.trades()] == [
        (D("0.48"), D(30), "MAKER", D(0))  # makers pay no fee (taker-only schedule)
    ]

    v.paper.on_trade(YES, D("0.47"), D(10))  # printed THROUGH our price: the level is gone, we fill in full
    snapshot = await v.paper.lookup(bid.order_id)
    assert snapshot is not None
    assert (snapshot.status, snapshot.size_matched) == (VenueOrderStatus.MATCHED, D(50))
    assert await v.paper.positions() == {YES: D(50)}
    assert v.paper.cash == D(976)  # 1000 - 50 x 0.48
    assert v.paper.resting_tokens() == []


async def test_prints_elsewhere_do_not_fill_a_resting_order() -> None:
    v = Venue()
    bid = order(Side.BUY, "0.48", "50")
    await v.paper.submit(bid)
    v.paper.on_trade(YES, D("0.50"), D(500))  # above our bid: not through it
    v.paper.on_trade(NO, D("0.48"), D(500))  # another token
    assert await v.paper.trades() == []
    assert v.paper.queue_ahead(bid.order_id) == D(150)


async def test_resting_order_fills_when_the_book_crosses_it() -> None:
    v = Venue()
    bid = order(Side.BUY, "0.48", "20")
    await v.paper.submit(bid)
    # The asks come down to our price: 5 at 0.47 and 10 at 0.48 would trade with us (at our price, as maker).
    v.book.apply_snapshot([(D("0.46"), D(100))], [(D("0.47"), D(5)), (D("0.48"), D(10)), (D("0.50"), D(100))], now=1.0)
    v.paper.on_book(YES)

    trades = await v.paper.trades()
    assert [(t.price, t.size, t.liquidity.value) for t in trades] == [(D("0.48"), D(15), "MAKER")]
    snapshot = await v.paper.lookup(bid.order_id)
    assert snapshot is not None
    assert (snapshot.status, snapshot.size_matched) == (VenueOrderStatus.LIVE, D(15))
    assert v.paper.queue_ahead(bid.order_id) == D(0)
    assert v.paper.cash == D(1000) - D("7.20")


async def test_queue_estimate_shrinks_with_its_level() -> None:
    v = Venue()
    bid = order(Side.BUY, "0.48", "20")
    await v.paper.submit(bid)
    v.book.apply_level(Side.BUY, D("0.48"), D(40), now=1.0)  # 110 cancelled ahead of us (at most)
    v.paper.on_book(YES)
    assert v.paper.queue_ahead(bid.order_id) == D(40)
    v.paper.on_trade(YES, D("0.48"), D(50))  # 40 ahead, 10 for us
    assert (await v.paper.lookup(bid.order_id)).size_matched == D(10)  # type: ignore[union-attr]


async def test_resting_sell_fills_on_prints_above_it() -> None:
    v = Venue(shares={YES: D(100)})
    ask = order(Side.SELL, "0.52", "40")
    result = await v.paper.submit(ask)
    assert isinstance(result, SubmitAccepted)
    assert v.paper.queue_ahead(ask.order_id) == D(0)  # no level at 0.52 yet
    v.paper.on_trade(YES, D("0.53"), D(5))  # above our ask: through it
    assert await v.paper.positions() == {YES: D(60)}
    assert v.paper.cash == D(1000) + D("20.8")  # a maker sell pays no fee here


async def test_marketable_sell_pays_its_fee_in_pusd() -> None:
    v = Venue(shares={YES: D(200)})
    result = await v.paper.submit(order(Side.SELL, "0.47", "120", OrderType.FAK))
    assert isinstance(result, SubmitAccepted)
    assert result.filled_size == D(120)
    trade = (await v.paper.trades())[0]
    # 120 at the best bid 0.48: 57.6 pUSD, fee 120 x 0.02 x 0.48 x 0.52 = 0.59904 pUSD
    assert (trade.price, trade.size, trade.fee, trade.fee_shares) == (D("0.48"), D(120), D("0.59904"), D(0))
    assert v.paper.cash == D(1000) + D("57.6") - D("0.59904")
    assert await v.paper.positions() == {YES: D(80)}


@pytest.mark.parametrize(
    ("side", "price", "size", "post_only", "code"),
    [
        (Side.BUY, "0.50", "4", False, VenueRejectCode.MIN_SIZE),  # minimum size 5
        (Side.BUY, "0.505", "10", False, VenueRejectCode.MIN_TICK_SIZE),  # off the 0.01 grid
        (Side.BUY, "0.50", "10", True, VenueRejectCode.POST_ONLY_WOULD_CROSS),  # the ask is at 0.50
        (Side.SELL, "0.60", "10", False, VenueRejectCode.NOT_ENOUGH_BALANCE),  # holds no shares
    ],
)
async def test_venue_checks(side: Side, price: str, size: str, post_only: bool, code: VenueRejectCode) -> None:
    v = Venue()
    result = await v.paper.submit(order(side, price, size, post_only=post_only))
    assert isinstance(result, SubmitRejected)
    assert result.reason is code
    assert v.paper.statistics().rejected == {code.value: 1}


async def test_prepare_follows_the_books_tick_as_the_live_signer_does() -> None:
    v = Venue()
    with pytest.raises(PrepareRefused) as off_grid:
        await v.paper.prepare(make_intent("t1", token_id=YES, price="0.505"), ts=WALL)
    assert off_grid.value.code == PRICE_OFF_TICK
    v.book.set_tick_size(D("0.001"))  # the market channel's tick_size_change, applied by market data
    prepared = await v.paper.prepare(make_intent("t2", token_id=YES, price="0.505"), ts=WALL)
    assert prepared.price == D("0.505")
    result = await v.paper.submit(prepared)
    assert isinstance(result, SubmitAccepted)
    with pytest.raises(PrepareRefused) as out_of_range:
        await v.paper.prepare(make_intent("t3", token_id=YES, price="0.9995"), ts=WALL)
    assert out_of_range.value.code == PRICE_OUT_OF_RANGE


async def test_insufficient_balance_counts_what_resting_buys_reserve() -> None:
    v = Venue(cash="30")
    result = await v.paper.submit(order(Side.BUY, "0.50", "100"))  # 50 pUSD > 30
    assert isinstance(result, SubmitRejected)
    assert result.reason is VenueRejectCode.NOT_ENOUGH_BALANCE
    first = await v.paper.submit(order(Side.BUY, "0.40", "50"))  # rests: reserves 20
    assert isinstance(first, SubmitAccepted)
    assert (await v.paper.balances()).collateral == D(10)
    second = await v.paper.submit(order(Side.BUY, "0.40", "30"))  # 12 > the 10 left
    assert isinstance(second, SubmitRejected)
    assert second.reason is VenueRejectCode.NOT_ENOUGH_BALANCE
    await v.paper.cancel_all(reason="TEST")
    assert (await v.paper.balances()).collateral == D(30)


async def test_a_marketable_buy_needs_its_taker_fee_bound_as_the_venue_does() -> None:
    # 100 at 0.50 costs 50 pUSD; the fee bound at min(0.50, 1/2) is 100 x 0.02 x 0.25 = 0.5 pUSD (the sim's rule)
    short = Venue(cash="50.49999")
    refused = await short.paper.submit(order(Side.BUY, "0.50", "100", OrderType.FOK))
    assert isinstance(refused, SubmitRejected)
    assert refused.reason is VenueRejectCode.NOT_ENOUGH_BALANCE
    enough = Venue(cash="50.5")
    taken = await enough.paper.submit(order(Side.BUY, "0.50", "100", OrderType.FOK))
    assert isinstance(taken, SubmitAccepted)
    assert enough.paper.cash == D("0.5")  # the fee itself was withheld in shares: the bound only had to be there
    # A buy that rests (not marketable) pays no fee: price x size is enough, and it reserves exactly that.
    resting = Venue(cash="20")
    placed = await resting.paper.submit(order(Side.BUY, "0.40", "50"))
    assert isinstance(placed, SubmitAccepted)
    assert resting.paper.wallet() == PaperWallet(cash=D(20), reserved=D(20))
    # the wallet's collateral is all of it: what resting buys reserve is the caller's to count, by the rule above
    assert (await PaperCapital(resting.paper).collateral()).balance == D(20)


async def test_duplicate_and_unknown_market() -> None:
    v = Venue()
    same = order(Side.BUY, "0.40", "10")
    await v.paper.submit(same)
    again = await v.paper.submit(same)
    assert isinstance(again, SubmitRejected)
    assert again.reason is VenueRejectCode.DUPLICATED
    unknown = await v.paper.submit(order(Side.BUY, "0.40", "10", token="999"))
    assert isinstance(unknown, SubmitRejected)
    assert unknown.reason is VenueRejectCode.MARKET_NOT_READY


async def test_the_same_liquidity_is_not_taken_twice_until_the_book_changes() -> None:
    v = Venue()
    first = await v.paper.submit(order(Side.BUY, "0.50", "100", OrderType.FOK))
    assert isinstance(first, SubmitAccepted)
    second = await v.paper.submit(order(Side.BUY, "0.50", "100", OrderType.FOK))
    assert isinstance(second, SubmitRejected)  # we took the 100 at 0.50 already
    v.book.apply_snapshot([], [(D("0.50"), D(100))], now=2.0)  # the venue reports the level again
    third = await v.paper.submit(order(Side.BUY, "0.50", "100", OrderType.FOK))
    assert isinstance(third, SubmitAccepted)


async def test_fills_at_the_book_as_it_stands_after_the_latency(autojump_clock: trio.testing.MockClock) -> None:
    v = Venue(latency=0.05)
    results: list[object] = []

    async def send() -> None:
        results.append(await v.paper.submit(order(Side.BUY, "0.51", "100", OrderType.FOK)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(0.01)
        v.book.apply_level(Side.SELL, D("0.50"), D(0), now=0.01)  # the 0.50 offer is gone before we arrive
    result = results[0]
    assert isinstance(result, SubmitAccepted)
    assert result.filled_notional == D(51)  # 100 at 0.51, not at 0.50
    assert trio.current_time() == pytest.approx(0.05)


async def test_cancel_and_lookups() -> None:
    v = Venue()
    resting = order(Side.BUY, "0.40", "10")
    await v.paper.submit(resting)
    assert [o.order_id for o in await v.paper.open_orders()] == [resting.order_id]
    assert (await v.paper.cancel(resting.order_id)).canceled == (resting.order_id,)
    assert (await v.paper.cancel(resting.order_id)).not_canceled == {
        resting.order_id: "order not found or already closed"
    }
    assert await v.paper.lookup("0x" + "f" * 64) is None
    assert await v.paper.open_orders() == []
    batch = await v.paper.submit_batch([order(Side.BUY, "0.40", "10"), order(Side.BUY, "0.50", "10", OrderType.FOK)])
    assert [type(r).__name__ for r in batch] == ["SubmitAccepted", "SubmitAccepted"]


def test_paper_order_ids_are_the_live_digest() -> None:
    intent = make_intent("c1", strategy="s", price="0.45")
    ids = PaperOrderIds(lambda _t: MARKET, salt_source=lambda: 12345, clock_ms=lambda: 1_700_000_000_000)
    _, expected = OrderSigner(PAPER_KEY).limit_order_with_id(
        token_id=YES,
        side=Side.BUY,
        price=D("0.45"),
        size=D(10),
        tick_size=D("0.01"),
        neg_risk=False,
        salt=12345,
        timestamp_ms=1_700_000_000_000,
    )
    assert ids.order_id_for(intent) == expected
    assert is_order_id(expected)
    fresh = PaperOrderIds(lambda _t: None)
    assert fresh.order_id_for(intent) != fresh.order_id_for(intent)  # a new salt each time, as live


@pytest.mark.parametrize("neg_risk", [False, True])
@pytest.mark.parametrize(
    "token",
    [
        "71321045679252212594626385532706912750332728571942532289631379312455583992563",  # a V2 token id
        "501093688225649613064090670874523736638044052698366604739684503500820964609",  # a position id: Exchange V3
        "501093688225649613064090670874523736638044052698366604739684504600332592384",  # reserved bit 40 set: V2
    ],
)
def test_paper_order_ids_are_the_digest_for_the_exchange_of_the_token(token: str, neg_risk: bool) -> None:
    market = make_market(yes_token_id=token, neg_risk=neg_risk)
    intent = make_intent("c-v3", strategy="s", token_id=token, side=Side.SELL, price="0.45", size="12")
    paper_id = paper_order_id(intent, market, ts=1_767_225_600.5)
    signed, _ = OrderSigner(PAPER_KEY).limit_order_with_id(
        token_id=token,
        side=Side.SELL,
        price=D("0.45"),
        size=D(12),
        tick_size=D("0.01"),
        neg_risk=neg_risk,
        salt=order_salt("c-v3"),
        timestamp_ms=1_767_225_600_500,
    )
    # the digest under the domain an official client signs for this token (eth-account, not our hashing)
    reference = Account.sign_typed_data(PAPER_KEY, full_message=typed_order(signed.to_json(), neg_risk))
    assert paper_id == "0x" + bytes(reference.message_hash).hex()
    ids = PaperOrderIds(lambda _t: market, salt_source=lambda: order_salt("c-v3"), clock_ms=lambda: 1_767_225_600_500)
    assert ids.order_id_for(intent) == paper_id


async def test_the_order_manager_cannot_tell_it_from_a_live_venue(autojump_clock: trio.testing.MockClock) -> None:
    v = Venue(latency=0.05)
    manager = OrderManager(  # no id source: the paper venue prepares its orders, as the live one does
        v.paper,
        MemoryStore(),
        portfolio=Portfolio(cash=D(1000)),
        wall_ns=lambda: int(WALL * 1e9),
    )

    def intent(cid: str, price: str, size: str, order_type: OrderType) -> OrderIntent:
        return make_intent(cid, strategy="s", price=price, size=size, order_type=order_type)

    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        taker = await manager.submit(intent("taker", "0.51", "250", OrderType.GTC))
        resting = await manager.submit(intent("maker", "0.48", "50", OrderType.GTC))
        v.paper.on_trade(YES, D("0.47"), D(1))
        await trio.testing.wait_all_tasks_blocked()
        assert manager.order("taker").status is OrderStatus.FILLED
        assert manager.order("maker").status is OrderStatus.FILLED
        assert taker.order_id != resting.order_id
        assert manager.positions() == await v.paper.positions() == {YES: D("297.53")}
        assert manager.portfolio.cash == v.paper.cash == D(1000) - D("126.5") - D(24)
        assert manager.portfolio.position(YES).unsettled == ()  # paper trades confirm at once
        nursery.cancel_scope.cancel()


def _paper_on(books: Books, venue: type[PaperVenue] = PaperVenue) -> PaperVenue:
    """A paper venue filling against `books` (MARKET's tokens), with no latency."""
    return venue(
        lambda t: books.token(t).book if t in books else None,
        lambda t: MARKET if t in (YES, NO) else None,
        order_ids=paper_order_id,
        cash=D(1000),
        settings=PaperSettings(latency_secs=0),
        wall=lambda: WALL,
    )


async def test_follow_books_feeds_prints_and_book_changes(autojump_clock: trio.testing.MockClock) -> None:
    from trader.domain.feed import LastTrade

    books = Books()
    cell = books.add(MARKET)
    token = cell.yes
    token.book.apply_snapshot([(D("0.48"), D(150))], [(D("0.50"), D(100))], now=0.0)
    token.last_trade = LastTrade(YES, "0xcond", D("0.49"), D(1), Side.BUY, None, None)  # old news
    paper = _paper_on(books)
    bid = order(Side.BUY, "0.48", "20")
    async with trio.open_nursery() as nursery:
        await nursery.start(follow_books, paper, books)
        await paper.submit(bid)
        books.publish([cell])  # the standing print is not counted
        await trio.testing.wait_all_tasks_blocked()
        assert await paper.trades() == []
        token.last_trade = LastTrade(YES, "0xcond", D("0.48"), D(160), Side.SELL, None, None)
        books.publish([cell])
        await trio.testing.wait_all_tasks_blocked()
        assert (await paper.lookup(bid.order_id)).size_matched == D(10)  # type: ignore[union-attr]
        token.book.apply_level(Side.SELL, D("0.48"), D(50), now=1.0)  # the book crosses our bid
        books.publish([cell])
        await trio.testing.wait_all_tasks_blocked()
        assert (await paper.lookup(bid.order_id)).status is VenueOrderStatus.MATCHED  # type: ignore[union-attr]
        nursery.cancel_scope.cancel()


async def test_follow_books_sleeps_while_nothing_rests_and_sees_the_books_once_an_order_does(
    autojump_clock: trio.testing.MockClock,
) -> None:
    books = Books()
    cell = books.add(MARKET)
    token = cell.yes
    token.book.apply_snapshot([(D("0.48"), D(150))], [(D("0.50"), D(100))], now=0.0)
    looked: list[str] = []

    class Watched(PaperVenue):
        def resting_tokens(self) -> list[str]:
            looked.append("look")
            return super().resting_tokens()

    paper = _paper_on(books, Watched)
    async with trio.open_nursery() as nursery:
        await nursery.start(follow_books, paper, books)
        for price in ("0.51", "0.52", "0.53"):  # the books move, nothing rests: the follower is not woken
            token.book.apply_level(Side.SELL, D(price), D(10), now=1.0)
            books.publish([cell])
            await trio.testing.wait_all_tasks_blocked()
        woken = len(looked)
        bid = order(Side.BUY, "0.48", "20")
        await paper.submit(bid)  # rests at 0.48
        await trio.testing.wait_all_tasks_blocked()
        token.book.apply_level(Side.SELL, D("0.48"), D(50), now=2.0)  # the book crosses the bid
        books.publish([cell])
        await trio.testing.wait_all_tasks_blocked()
        assert (await paper.lookup(bid.order_id)).status is VenueOrderStatus.MATCHED  # type: ignore[union-attr]
        nursery.cancel_scope.cancel()
    assert woken == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        PaperSettings(latency_secs=-1)
    with pytest.raises(ConfigError):
        PaperSettings(event_buffer=0)


async def test_prepare_computes_a_deterministic_live_shaped_id() -> None:
    v = Venue()
    intent = make_intent("c-42", strategy="s", price="0.45")
    first = await v.paper.prepare(intent, ts=WALL)
    again = await v.paper.prepare(intent, ts=WALL)
    later = await v.paper.prepare(intent, ts=WALL + 1)
    expected = PaperOrderIds(lambda _t: MARKET).digest(intent, salt=order_salt("c-42"), timestamp_ms=round(WALL * 1000))
    assert first.order_id == again.order_id == expected
    assert later.order_id != first.order_id
    assert is_order_id(first.order_id)
    assert (first.client_order_id, first.status, first.created_ts) == ("c-42", OrderStatus.CREATED, WALL)


async def test_closed_orders_and_trades_are_kept_for_lookups_up_to_a_bound() -> None:
    v = Venue()
    v.paper.settings = PaperSettings(latency_secs=0.0, keep_closed=3)
    filled = [order(Side.BUY, "0.50", "5", OrderType.FOK) for _ in range(5)]  # each fills at 0.50 on entry
    for each in filled:
        assert isinstance(await v.paper.submit(each), SubmitAccepted)
    resting = order(Side.BUY, "0.40", "5")
    await v.paper.submit(resting)
    assert await v.paper.lookup(filled[0].order_id) is None  # forgotten: three newer orders closed since
    newest = await v.paper.lookup(filled[-1].order_id)
    assert newest is not None
    assert newest.status is VenueOrderStatus.MATCHED
    assert (await v.paper.lookup(resting.order_id)) is not None  # an open order is never forgotten
    assert [t.order_id for t in await v.paper.trades()] == [o.order_id for o in filled[2:]]
    stats = v.paper.statistics()
    assert (stats.trades, stats.resting) == (5, 1)  # counted all the same
