"""An arbitrage end to end on the paper venue: execution service, risk gate, order manager, paper fills with fees.

Books (tick 0.01, minimum size 5, taker fee 0.02 x p x (1 - p) per share, withheld in shares on buys):

    YES  asks 0.45 x 100   bids 0.44 x 100
    NO   asks 0.52 x 4     bids 0.50 x 100        (thin: only 4 NO shares on offer)
"""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from trader.domain.book import OrderBook
from trader.domain.enums import OrderType
from trader.domain.intents import ArbIntent, Intent
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.domain.positions import Portfolio
from trader.engine.arbitrage import ArbitrageSettings, ArbStatus
from trader.engine.execution import ExecutionService, ExecutionSettings
from trader.engine.order_manager import OrderManager
from trader.engine.risk import BookHealth, RiskGate
from trader.strategies.base import BookView, MarketState
from trader.strategies.sum_to_100 import SumTo100, SumTo100Settings
from trader.testing import make_arb, make_intent, make_market
from trader.testing.memory_store import MemoryStore
from trader.venues.paper import PaperSettings, PaperVenue
from trader.venues.polymarket.paper_ids import paper_order_id

D = Decimal
YES, NO = "1001", "1002"
WALL = 1_700_000_000.0
MARKET = make_market(question="q", slug="q", fees=FeeSchedule(rate=D("0.02"), exponent=1))


def books() -> dict[str, OrderBook]:
    yes, no = OrderBook(YES, D("0.01")), OrderBook(NO, D("0.01"))
    yes.apply_snapshot([(D("0.44"), D(100))], [(D("0.45"), D(100))], now=0.0)
    no.apply_snapshot([(D("0.50"), D(100))], [(D("0.52"), D(4))], now=0.0)
    return {YES: yes, NO: no}


def basket() -> ArbIntent:
    return make_arb(
        make_intent("yes", strategy="sum_to_100", token_id=YES, price="0.45", order_type=OrderType.FAK),
        make_intent("no", strategy="sum_to_100", token_id=NO, price="0.52", order_type=OrderType.FAK),
        arb_id="a1",
    )


def on_paper(
    book: dict[str, OrderBook],
) -> tuple[PaperVenue, OrderManager, ExecutionService, trio.MemorySendChannel[Intent]]:
    """The paper venue on `book` with 1000 pUSD, its order manager and execution (unwinds at the market's minimum
    size), and the channel intents go in by."""
    paper = PaperVenue(book.get, lambda t: MARKET if t in book else None, order_ids=paper_order_id, cash=D(1000),
                       settings=PaperSettings(latency_secs=0.05), wall=lambda: WALL)  # fmt: skip
    manager = OrderManager(paper, MemoryStore(), portfolio=Portfolio(cash=D(1000)), wall_ns=lambda: int(WALL * 1e9))
    send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(
        manager,
        RiskGate(),
        receive,
        settings=ExecutionSettings(arbitrage=ArbitrageSettings(min_unwind_shares=MARKET.min_order_size)),
        book_health=lambda _t: BookHealth(age_ms=0.0),
        tick_of=lambda _t: MARKET.tick_size,
    )
    return paper, manager, service, send


async def test_thin_leg_is_hedged_on_paper_and_positions_match(autojump_clock: trio.testing.MockClock) -> None:
    book = books()
    paper, manager, service, send = on_paper(book)
    outcomes: list[object] = []
    manager.add_listener(outcomes.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(basket())
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()

        # YES: 10 at 0.45, fee 0.0495 pUSD = 0.11 share -> holds 9.89.
        # NO: 4 at 0.52 (all there is), fee 0.019968 floored to 0.01996 pUSD = 0.038384 share -> holds 3.961616.
        # Excess YES 5.928384, floored to 5.92, sold back FAK at >= 0.43 (0.45 - 0.02): fills at the 0.44 bid,
        # fee 5.92 x 0.02 x 0.2464 = 0.02917 pUSD (floored to 5 decimals).
        unwind = manager.order("yes-unwind-1")
        assert (unwind.side, unwind.size, unwind.price, unwind.filled) == (Side.SELL, D("5.92"), D("0.43"), D("5.92"))
        assert manager.positions() == await paper.positions() == {YES: D("3.97"), NO: D("3.961616")}
        assert manager.portfolio.cash == paper.cash == D(1000) - D("4.5") - D("2.08") + D("2.6048") - D("0.02917")
        stats = service.statistics().arbitrage
        assert stats.by_status == {ArbStatus.PARTIAL.value: 1}  # 0.008384 YES left over is dust (< 0.01 share)
        assert stats.residual_events == 0
        nursery.cancel_scope.cancel()


async def _run_strategy_basket(buy_fees_in_shares: bool) -> tuple[dict[str, int], dict[str, Decimal], Decimal]:
    """The sum-to-100 strategy sizes a basket on deep books (YES 0.45, NO 0.52, 100 each), execution runs it on the
    paper venue: (outcomes by status, positions, residual events)."""
    book = books()
    book[NO].apply_snapshot([(D("0.50"), D(100))], [(D("0.52"), D(100))], now=0.0)
    _, manager, service, send = on_paper(book)
    state = MarketState(
        now=1.0,
        wall=WALL,
        markets={MARKET.condition_id: MARKET},
        books={
            t: BookView(b, condition_id=MARKET.condition_id, ready=True, suspect=False, age_secs=0.0)
            for t, b in book.items()
        },
        buy_fees_in_shares=buy_fees_in_shares,
    )
    (intent,) = SumTo100(SumTo100Settings(max_basket_usd=D(40))).on_state(state)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await send.send(intent)  # type: ignore[arg-type]
        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        stats = service.statistics().arbitrage
        nursery.cancel_scope.cancel()
    return dict(stats.by_status), manager.positions(), D(stats.residual_events)


async def test_a_strategy_basket_on_paper_holds_equal_sets_after_fees(autojump_clock: trio.testing.MockClock) -> None:
    # Equal legs of 40.81 (the 40 pUSD cap): YES gives up 0.011 of each share as its fee, NO 0.0096, so YES holds
    # 40.361112 and NO 40.418231: 0.057119 NO unhedged, below the market's minimum size, so it cannot be sold back.
    by_status, positions, residuals = await _run_strategy_basket(buy_fees_in_shares=False)
    assert by_status == {ArbStatus.RESIDUAL.value: 1}
    assert residuals == 1
    assert positions == {YES: D("40.361112"), NO: D("40.418231")}
    # Sized after fees, NO is bought at 40.76 and holds 40.368712: 0.0076 over YES, dust.
    by_status, positions, residuals = await _run_strategy_basket(buy_fees_in_shares=True)
    assert by_status == {ArbStatus.COMPLETE.value: 1}
    assert residuals == 0
    assert positions == {YES: D("40.361112"), NO: D("40.368712")}
