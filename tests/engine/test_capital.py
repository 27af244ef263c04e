"""The capital service: complete sets merged, resolved markets settled and redeemed, every operation written ahead.

On trio's MockClock (autojump), against `FakeCapital` (scripted) or the paper wallet (`PaperCapital`), with the
in-memory store held to the store contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.domain.builders import make_fill
from trader.domain.capital import CapitalOpFailed, CapitalOpStuck, MarketSettled, PositionsRedeemed, SetsMerged
from trader.domain.market import Market
from trader.domain.positions import Portfolio
from trader.engine.capital import CapitalService, CapitalSettings, MarketDirectory
from trader.integrations.store.base import CapitalOpState as StoredState
from trader.testing.fake_capital import FakeCapital
from trader.testing.memory_store import MemoryStore
from trader.venues.base import CapitalOpKind, CapitalOpState, Resolution

D = Decimal
YES = "1001"
NO = "1002"
MARKET = Market(
    condition_id="0xcond",
    question="Will it?",
    slug="will-it",
    yes_token_id=YES,
    no_token_id=NO,
    tick_size=D("0.01"),
)
OTHER = Market(
    condition_id="0xcond2",
    question="Will the other?",
    slug="will-the-other",
    yes_token_id="2001",
    no_token_id="2002",
    tick_size=D("0.01"),
)
SETTINGS = CapitalSettings(
    max_open_ops=4, scan_secs=1.0, resolution_check_secs=5.0, not_found_grace_secs=30.0, stuck_after_secs=60.0
)


def holding(yes: str, no: str, *, settled: bool = True) -> Portfolio:
    portfolio = Portfolio(cash=D(100))
    if D(yes):
        portfolio.apply_fill(make_fill("ty", yes, "0.45", token_id=YES, client_order_id="cy"))
    if D(no):
        portfolio.apply_fill(make_fill("tn", no, "0.52", token_id=NO, client_order_id="cn"))
    if settled:
        portfolio.settle(YES, "ty")
        portfolio.settle(NO, "tn")
    return portfolio


class Harness:
    def __init__(self, portfolio: Portfolio, capital: FakeCapital, store: MemoryStore) -> None:
        self.portfolio = portfolio
        self.capital = capital
        self.store = store
        self.events: list[object] = []
        self.winner: str | None = None  # of MARKET
        self.winners: dict[str, str] = {}  # of the others
        self.marked: list[tuple[str, str | None]] = []
        self.service = self.build()

    def build(self, settings: CapitalSettings = SETTINGS) -> CapitalService:
        return CapitalService(
            self.capital,
            self.portfolio,
            MarketDirectory([MARKET, OTHER]),
            self.store,
            settings,
            resolved_winner=lambda c: self.winner if c == MARKET.condition_id else self.winners.get(c),
            mark_resolved=lambda c, w: self.marked.append((c, w)),
            emit=self.events.append,
            wall=lambda: 1_700_000_000.0,
        )

    def of(self, kind: type) -> list[object]:
        return [e for e in self.events if isinstance(e, kind)]


@asynccontextmanager
async def running(h: Harness) -> AsyncIterator[Harness]:
    async with trio.open_nursery() as nursery:
        await nursery.start(h.service.run)
        yield h
        nursery.cancel_scope.cancel()


async def test_a_complete_set_held_is_merged_back_into_cash_and_written_ahead_first() -> None:
    h = Harness(holding("10", "10"), FakeCapital(lands_after=2), MemoryStore())
    await h.service.scan()
    (prepared,) = h.capital.prepared
    assert prepared.op.kind is CapitalOpKind.MERGE
    assert prepared.op.amounts == (D(10), D(10))
    assert h.store.capital_ops[prepared.op_id].state is StoredState.PENDING  # written, then sent
    # while the merge is in flight the shares are not the strategies' to sell, and not merged twice
    assert h.service.position(YES).quantity == D(0)
    assert h.portfolio.position(YES).quantity == D(10)
    await h.service.scan()
    assert len(h.capital.prepared) == 1
    assert h.portfolio.cash == D("90.30")  # nothing applied before the venue confirms
    await h.service.scan()
    await h.service.scan()
    assert h.portfolio.cash == D("100.30")  # 9.70 paid for 10 sets, 10 back
    assert h.portfolio.position(YES).quantity == D(0)
    assert h.portfolio.realized_pnl == D("0.30")
    (merged,) = h.of(SetsMerged)
    assert merged == SetsMerged(
        condition_id="0xcond", op_id=prepared.op_id, sets=D(10), realized_pnl=D("0.30"), ts=1_700_000_000.0
    )
    assert h.store.capital_ops[prepared.op_id].state is StoredState.CONFIRMED
    assert h.store.positions[YES].quantity == D(0)
    assert h.service.statistics().merged_sets == D(10)


async def test_only_the_common_settled_amount_is_merged() -> None:
    portfolio = holding("10", "6")
    portfolio.apply_fill(make_fill("ty2", "5", "0.45", token_id=YES, client_order_id="cy2"))  # not mined yet
    h = Harness(portfolio, FakeCapital(), MemoryStore())
    await h.service.scan()
    assert [p.op.amounts for p in h.capital.prepared] == [(D(6), D(6))]


async def test_below_the_minimum_nothing_is_merged() -> None:
    h = Harness(holding("0.5", "0.5"), FakeCapital(), MemoryStore())
    await h.service.scan()
    assert h.capital.prepared == []
    assert h.service.statistics().locked_sets == D("0.5")


async def test_a_refused_merge_changes_nothing_is_reported_and_is_tried_again() -> None:
    capital = FakeCapital(send_reply="failed")
    h = Harness(holding("10", "10"), capital, MemoryStore())
    await h.service.scan()
    (failed,) = h.of(CapitalOpFailed)
    assert isinstance(failed, CapitalOpFailed)
    assert (failed.reason, failed.message) == ("CAPITAL_REFUSED", "execution reverted")
    assert h.portfolio.position(YES).quantity == D(10)
    assert h.service.position(YES).quantity == D(10)  # released
    assert h.store.capital_ops[failed.op_id].state is StoredState.FAILED
    capital.send_reply = "pending"
    await h.service.scan()
    assert len(capital.prepared) == 2
    assert h.service.statistics().failed_ops == {"CAPITAL_REFUSED": 1}


async def test_a_send_whose_outcome_is_unknown_is_followed_by_id_and_never_sent_twice() -> None:
    capital = FakeCapital(send_reply="raise")
    h = Harness(holding("10", "10"), capital, MemoryStore())
    await h.service.scan()
    (op_id,) = capital.sent
    assert h.store.capital_ops[op_id].state is StoredState.PREPARED
    await h.service.scan()
    await h.service.scan()
    assert capital.sent == [op_id]
    assert h.portfolio.cash == D("100.30")


async def test_a_market_that_resolved_is_settled_closed_and_its_winners_redeemed() -> None:
    h = Harness(holding("10", "4"), FakeCapital(), MemoryStore())
    h.winner = YES  # the market channel's market_resolved
    await h.service.scan()
    assert h.marked == [("0xcond", YES)]
    (settled,) = h.of(MarketSettled)
    assert isinstance(settled, MarketSettled)
    assert settled.payouts == (D(1), D(0))
    assert settled.realized_pnl == D(10) - D("4.50") - D("2.08")
    assert settled.receivable == D(10)
    assert h.portfolio.position(YES).is_flat
    assert h.portfolio.position(NO).is_flat
    redeem = h.capital.prepared[-1]
    assert redeem.op.kind is CapitalOpKind.REDEEM
    assert redeem.op.amounts == (D(10), D(4))
    assert h.portfolio.cash == D("93.42")
    assert h.portfolio.equity({}) == D("103.42")  # the receivable counts
    await h.service.scan()
    await h.service.scan()
    assert h.portfolio.cash == D("103.42")
    assert h.portfolio.receivable == D(0)
    assert h.of(PositionsRedeemed) == [
        PositionsRedeemed(condition_id="0xcond", op_id=redeem.op_id, amount=D(10), ts=1_700_000_000.0)
    ]
    assert not [p for p in h.capital.prepared if p.op.kind is CapitalOpKind.MERGE]  # resolved: redeemed, not merged


async def test_a_market_resolving_while_its_merge_is_in_flight_settles_what_the_merge_leaves() -> None:
    h = Harness(holding("10", "4"), FakeCapital(lands_after=2), MemoryStore())
    await h.service.scan()  # 4 sets go to be merged
    (merge,) = h.capital.prepared
    assert merge.op.amounts == (D(4), D(4))
    h.winner = YES  # the market resolves before the merge is confirmed
    await h.service.scan()
    assert h.of(MarketSettled) == []  # not while the merge is in flight
    await h.service.scan()
    await h.service.scan()  # the merge confirmed: 4 sets back as cash, then the 6 YES left are settled
    assert len(h.of(SetsMerged)) == 1
    (settled,) = h.of(MarketSettled)
    assert isinstance(settled, MarketSettled)
    assert settled.receivable == D(6)
    redeem = h.capital.prepared[-1]
    assert redeem.op.kind is CapitalOpKind.REDEEM
    assert redeem.op.amounts == (D(6), D(0))  # what the wallet still holds, not the shares merged away
    for _ in range(3):  # the redemption confirms
        await h.service.scan()
    assert h.portfolio.receivable == D(0)
    assert h.portfolio.cash == D(100) - D("4.50") - D("2.08") + D(4) + D(6)


async def test_a_refused_redemption_is_tried_again_later_each_time(autojump_clock: trio.testing.MockClock) -> None:
    capital = FakeCapital(send_reply="failed")
    h = Harness(holding("10", "0"), capital, MemoryStore())
    h.winner = YES
    await h.service.scan()  # settled; the redemption is refused
    assert len(capital.sent) == 1
    for _ in range(5):
        await h.service.scan()  # not again at once: merges of other markets get their turns
    assert len(capital.sent) == 1
    await trio.sleep(SETTINGS.scan_secs * 2 + 0.1)
    await h.service.scan()
    assert len(capital.sent) == 2
    await trio.sleep(SETTINGS.scan_secs * 2 + 0.1)  # the second wait is twice as long
    await h.service.scan()
    assert len(capital.sent) == 2
    await trio.sleep(SETTINGS.scan_secs * 2)
    await h.service.scan()
    assert len(capital.sent) == 3
    assert h.portfolio.receivable == D(10)  # still owed, never dropped


async def test_a_lost_position_settles_at_zero_and_its_shares_are_redeemed_for_nothing() -> None:
    """The books hold no shares of a settled market; the wallet must not either: the losing shares are redeemed
    (burned, paying 0), so the venue's balances and the engine's agree at the end."""
    h = Harness(holding("10", "0"), FakeCapital(), MemoryStore())
    h.winner = NO
    await h.service.scan()
    assert h.portfolio.realized_pnl == D("-4.50")
    assert h.service.statistics().settled_markets == 1
    (redeem,) = h.capital.prepared
    assert redeem.op.kind is CapitalOpKind.REDEEM
    assert redeem.op.amounts == (D(10), D(0))
    assert h.service.redeeming() == {YES: D(10), NO: D(0)}  # in flight: still in the wallet
    for _ in range(3):
        await h.service.scan()
    (redeemed,) = h.of(PositionsRedeemed)
    assert isinstance(redeemed, PositionsRedeemed)
    assert redeemed.amount == D(0)
    assert h.portfolio.cash == D(100) - D("4.50")
    assert h.service.redeeming() == {}


@pytest.mark.parametrize("autojump", [True])
async def test_a_50_50_resolution_is_learned_from_the_venue_and_pays_half(
    autojump: bool, autojump_clock: trio.testing.MockClock
) -> None:
    del autojump, autojump_clock
    capital = FakeCapital()
    h = Harness(holding("10", "10"), capital, MemoryStore())
    h.service = h.build(CapitalSettings(merge=False, scan_secs=1.0, resolution_check_secs=5.0))
    async with running(h):
        await trio.sleep(2)
        assert h.of(MarketSettled) == []
        capital.resolutions["0xcond"] = Resolution(condition_id="0xcond", payouts=(D("0.5"), D("0.5")))
        await trio.sleep(10)
    assert capital.resolution_checks.count("0xcond") >= 2  # asked every resolution_check_secs, not every scan
    assert capital.resolution_checks.count("0xcond") <= 4
    (redeemed,) = h.of(PositionsRedeemed)
    assert isinstance(redeemed, PositionsRedeemed)
    assert redeemed.amount == D(10)
    assert h.portfolio.cash == D("100.30")


async def test_settling_waits_until_every_share_is_on_chain() -> None:
    h = Harness(holding("10", "10", settled=False), FakeCapital(), MemoryStore())
    h.winner = YES
    await h.service.scan()
    assert h.of(MarketSettled) == []
    h.portfolio.settle(YES, "ty")
    h.portfolio.settle(NO, "tn")
    await h.service.scan()
    assert len(h.of(MarketSettled)) == 1


async def test_a_restart_follows_open_operations_by_id_and_rebuilds_what_is_owed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    del autojump_clock
    store = MemoryStore()
    capital = FakeCapital(lands_after=1000)  # the engine dies with a merge and a redemption in flight
    portfolio = holding("10", "10")
    portfolio.apply_fill(make_fill("t2", "8", "0.60", token_id=OTHER.yes_token_id, client_order_id="c2"))
    portfolio.settle(OTHER.yes_token_id, "t2")
    store.positions.update(portfolio.positions)  # as the order manager wrote them on each fill
    first = Harness(portfolio, capital, store)
    first.winners[OTHER.condition_id] = OTHER.yes_token_id
    await first.service.scan()  # 0xcond: a merge in flight; 0xcond2 resolved: settled, its redemption in flight
    kinds = {p.op.kind: p.op_id for p in capital.prepared}
    merge_id, redeem_id = kinds[CapitalOpKind.MERGE], kinds[CapitalOpKind.REDEEM]
    sent = list(capital.sent)
    # the restarted engine, from what the store has: nothing is sent again
    restored = Portfolio(cash=D(0), positions=store.positions.values())
    for op_id in (merge_id, redeem_id):
        capital._landing[op_id].checks_left = 0
    again = Harness(restored, capital, store)
    again.service = again.build()
    async with running(again):
        assert restored.receivables == {OTHER.condition_id: D(8)}
        await trio.sleep(3)
    assert capital.sent == sent
    assert {e.op_id for e in again.events if isinstance(e, SetsMerged | PositionsRedeemed)} == {merge_id, redeem_id}
    assert restored.cash == D(18)  # the redemption's 8 and the merge's 10
    assert restored.position(YES).quantity == D(0)


async def test_an_operation_the_chain_never_saw_is_given_up_after_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    del autojump_clock
    capital = FakeCapital(send_reply="raise")
    h = Harness(holding("10", "10"), capital, MemoryStore())
    async with running(h):
        await trio.sleep(1.5)
        (op_id,) = capital.sent
        capital._landing.pop(op_id)
        await trio.sleep(20)
        assert h.of(CapitalOpFailed) == []  # not before the grace
        capital.send_reply = "pending"
        await trio.sleep(15)
    (failed,) = h.of(CapitalOpFailed)
    assert isinstance(failed, CapitalOpFailed)
    assert failed.reason == "CAPITAL_NOT_FOUND"
    assert len(h.of(SetsMerged)) == 1  # tried again, and merged


async def test_an_operation_that_does_not_confirm_is_reported_stuck_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    del autojump_clock
    h = Harness(holding("10", "10"), FakeCapital(lands_after=10_000), MemoryStore())
    async with running(h):
        await trio.sleep(200)
    stuck = h.of(CapitalOpStuck)
    assert len(stuck) == 1
    assert h.service.statistics().stuck_ops == 1
    assert h.service.statistics().open_ops == 1


async def test_merging_off_holds_the_sets(autojump_clock: trio.testing.MockClock) -> None:
    del autojump_clock
    h = Harness(holding("10", "10"), FakeCapital(), MemoryStore())
    h.service = h.build(CapitalSettings(merge=False))
    async with running(h):
        await trio.sleep(5)
    assert h.capital.prepared == []
    assert h.service.statistics().locked_sets == D(10)


def test_states_of_the_port_and_the_store_line_up() -> None:
    assert {s.value for s in StoredState} - {"PREPARED"} <= {s.value for s in CapitalOpState}


async def test_one_operation_at_a_time_by_default_as_a_wallet_nonce_needs() -> None:
    portfolio = holding("10", "10")
    for token_id, trade in ((OTHER.yes_token_id, "t3"), (OTHER.no_token_id, "t4")):
        portfolio.apply_fill(make_fill(trade, "5", "0.48", token_id=token_id, client_order_id=trade))
        portfolio.settle(token_id, trade)
    h = Harness(portfolio, FakeCapital(lands_after=1), MemoryStore())
    h.service = h.build(CapitalSettings())
    await h.service.scan()
    assert [p.op.condition_id for p in h.capital.prepared] == ["0xcond"]  # the other waits its turn
    await h.service.scan()  # 0xcond is still pending
    assert len(h.capital.prepared) == 1
    await h.service.scan()  # 0xcond lands; then 0xcond2 goes
    assert [p.op.condition_id for p in h.capital.prepared] == ["0xcond", "0xcond2"]


async def test_an_engine_that_may_not_send_merges_nothing() -> None:
    h = Harness(holding("10", "10"), FakeCapital(), MemoryStore())
    leading = [False]  # active/standby: a fenced leader (or one whose lease ran out)
    h.service = CapitalService(
        h.capital, h.portfolio, MarketDirectory([MARKET]), h.store, SETTINGS, may_send=lambda: leading[0]
    )
    await h.service.scan()
    assert h.capital.prepared == []
    assert h.store.capital_ops == {}
    assert h.service.statistics().failed_ops.get("NOT_LEADER") == 1
    leading[0] = True
    await h.service.scan()
    assert len(h.capital.prepared) == 1
