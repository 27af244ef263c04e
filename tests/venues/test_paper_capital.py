"""The paper wallet's chain side: merges and redemptions land after a latency, as the chain's would."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.venues.base import CapitalOp, CapitalOpKind, CapitalOpState, Resolution
from trader.venues.paper import PaperVenue
from trader.venues.paper_capital import PaperCapital, PaperCapitalSettings
from trader.venues.polymarket.paper_ids import paper_order_id

D = Decimal
YES, NO = "1001", "1002"


def wallet(yes: str, no: str, cash: str = "100") -> PaperVenue:
    return PaperVenue(
        lambda _t: None,
        lambda _t: None,
        order_ids=paper_order_id,
        cash=D(cash),
        shares={YES: D(yes), NO: D(no)},
    )


def merge(sets: str) -> CapitalOp:
    return CapitalOp(
        kind=CapitalOpKind.MERGE, condition_id="0xc", neg_risk=False, token_ids=(YES, NO), amounts=(D(sets), D(sets))
    )


def redeem(yes: str, no: str) -> CapitalOp:
    return CapitalOp(
        kind=CapitalOpKind.REDEEM, condition_id="0xc", neg_risk=False, token_ids=(YES, NO), amounts=(D(yes), D(no))
    )


async def test_a_merge_lands_after_the_latency_and_moves_shares_into_cash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    del autojump_clock
    paper = wallet("10", "7")
    capital = PaperCapital(paper, settings=PaperCapitalSettings(latency_secs=2.0))
    prepared = await capital.prepare_op(merge("7"))
    assert prepared.op_id == "paper-1"
    assert (await capital.send_op(prepared)).state is CapitalOpState.PENDING
    await trio.sleep(1.9)
    assert (await capital.op_status(prepared.op_id)).state is CapitalOpState.PENDING
    assert paper.cash == D(100)
    await trio.sleep(0.2)
    assert (await capital.op_status(prepared.op_id)).state is CapitalOpState.CONFIRMED
    assert paper.cash == D(107)
    assert (paper.wallet_shares(YES), paper.wallet_shares(NO)) == (D(3), D(0))
    assert (await capital.collateral()).balance == D(107)
    # told once, then forgotten: the wallet's memory does not grow with the session
    assert (await capital.op_status(prepared.op_id)).state is CapitalOpState.NOT_FOUND


async def test_a_merge_of_shares_the_wallet_lacks_fails_and_changes_nothing() -> None:
    paper = wallet("3", "10")
    capital = PaperCapital(paper, settings=PaperCapitalSettings(latency_secs=0))
    prepared = await capital.prepare_op(merge("5"))
    await capital.send_op(prepared)
    status = await capital.op_status(prepared.op_id)
    assert status.state is CapitalOpState.FAILED
    assert "holds 3" in status.message
    assert paper.cash == D(100)
    assert (paper.wallet_shares(YES), paper.wallet_shares(NO)) == (D(3), D(10))


@pytest.mark.parametrize(
    ("payouts", "cash"),
    [((D(1), D(0)), D(110)), ((D(0), D(1)), D(104)), ((D("0.5"), D("0.5")), D(107))],
)
async def test_a_redemption_pays_every_share_at_the_payout(payouts: tuple[Decimal, Decimal], cash: Decimal) -> None:
    resolutions = {"0xc": Resolution(condition_id="0xc", payouts=payouts)}

    async def resolution_of(condition_id: str) -> Resolution | None:
        await trio.lowlevel.checkpoint()
        return resolutions.get(condition_id)

    paper = wallet("10", "4")
    capital = PaperCapital(paper, resolution_of, PaperCapitalSettings(latency_secs=0))
    assert await capital.resolution("0xc") == resolutions["0xc"]
    prepared = await capital.prepare_op(redeem("10", "4"))
    await capital.send_op(prepared)
    assert (await capital.op_status(prepared.op_id)).state is CapitalOpState.CONFIRMED
    assert paper.cash == cash
    assert (paper.wallet_shares(YES), paper.wallet_shares(NO)) == (D(0), D(0))


async def test_a_redemption_before_the_market_resolved_fails() -> None:
    paper = wallet("10", "4")
    capital = PaperCapital(paper, settings=PaperCapitalSettings(latency_secs=0))
    prepared = await capital.prepare_op(redeem("10", "4"))
    await capital.send_op(prepared)
    status = await capital.op_status(prepared.op_id)
    assert (status.state, status.message) == (CapitalOpState.FAILED, "the condition has not resolved")
    assert paper.cash == D(100)
