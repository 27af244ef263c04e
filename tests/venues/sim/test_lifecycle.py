"""Market lifecycle in the exchange core: resolution (won, lost, 50/50), new listings, merges and redemptions."""

from __future__ import annotations

import pytest

from tests.venues.sim._support import T0, exchange, market, order
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.sim.events import BookChanged, MarketListed, MarketResolved, OrderEvent
from trader.venues.sim.exchange import (
    REVERT_INSUFFICIENT_BALANCE,
    REVERT_NOT_RESOLVED,
    REVERT_UNKNOWN_CONDITION,
    Accepted,
    CapitalResult,
    Rejected,
)
from trader.venues.sim.wire import clob_market, gamma_market, payout_texts

U = 1_000_000
ALICE = "0x" + "a1" * 20


def _holding(ex_market: tuple[str, str], yes: int, no: int) -> dict[str, int]:
    return {ex_market[0]: yes * U, ex_market[1]: no * U}


@pytest.mark.parametrize(
    ("winner", "numerators", "winning_outcome", "texts"),
    [(0, (1, 0), "Yes", ["1", "0"]), (1, (0, 1), "No", ["0", "1"]), (None, (1, 1), "", ["0.5", "0.5"])],
)
def test_resolving_closes_the_market_cancels_its_orders_and_announces_the_winner(
    winner: int | None, numerators: tuple[int, int], winning_outcome: str, texts: list[str]
) -> None:
    ex, rec = exchange()
    m = ex.markets[0]
    yes, no = m.token_ids
    resting = ex.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), T0)
    assert isinstance(resting, Accepted)
    rec.clear()

    resolution = ex.resolve(m.condition_id, winner, T0 + 1)

    assert resolution.numerators == numerators
    assert resolution.winner == winner
    order_events = rec.of(OrderEvent)
    assert [(e.kind, e.order.order_id) for e in order_events] == [("CANCELLATION", resting.order_id)]
    assert rec.of(BookChanged)  # the cancelled level leaves the book
    (announced,) = rec.of(MarketResolved)
    assert announced.market == m.condition_id
    assert announced.asset_ids == (yes, no)
    assert announced.winning_asset_id == ("" if winner is None else m.token_ids[winner])
    assert announced.winning_outcome == winning_outcome
    assert announced.timestamp_ms == int((T0 + 1) * 1000)
    assert isinstance(rec.events[-1], MarketResolved)  # after the cancellations

    closed = ex.market(m.condition_id)
    assert closed is not None
    assert (closed.closed, closed.active, closed.accepting_orders) == (True, False, False)
    refused = ex.submit(order(yes, Side.BUY, "0.40", "10", owner="late"), T0 + 2)
    assert isinstance(refused, Rejected)
    assert refused.code == "MARKET_NOT_READY"

    clob = clob_market(closed, (5000, 5000), m.tick_size, ex.resolution(m.condition_id))
    tokens = clob["tokens"]
    assert isinstance(tokens, list)
    assert [t["winner"] for t in tokens] == [winner == 0, winner == 1]
    assert clob["closed"] is True
    assert clob["is_50_50_outcome"] is (winner is None)
    gamma = gamma_market(
        closed, None, best=(None, None), last_trade=5000, tick=m.tick_size, resolution=ex.resolution(m.condition_id)
    )
    assert (gamma["closed"], gamma["active"], gamma["umaResolutionStatus"]) == (True, False, "resolved")
    assert gamma["outcomePrices"] == '["' + '", "'.join(texts) + '"]'
    assert payout_texts(resolution) == texts


def test_a_market_resolves_once_and_unknown_markets_are_an_error() -> None:
    ex, _ = exchange()
    cid = ex.markets[0].condition_id
    ex.resolve(cid, 0, T0)
    with pytest.raises(InputError, match="already resolved"):
        ex.resolve(cid, 1, T0)
    with pytest.raises(InputError, match="no market"):
        ex.resolve("0x" + "00" * 32, 0, T0)
    fresh, _ = exchange()
    with pytest.raises(InputError, match="winner"):
        fresh.resolve(cid, 2, T0)
    assert fresh.resolution(cid) is None


def test_listing_a_market_adds_it_and_announces_it() -> None:
    ex, rec = exchange()
    new = market("listed-later")
    ex.list_market(new, T0 + 5)
    assert ex.market(new.condition_id) == new
    assert rec.of(MarketListed) == [MarketListed(new.condition_id, int((T0 + 5) * 1000))]
    assert isinstance(ex.submit(order(new.token_ids[0], Side.BUY, "0.3", "10"), T0 + 6), Accepted)


def test_merge_turns_complete_sets_into_collateral() -> None:
    ex, _ = exchange()
    m = ex.markets[0]
    wallet = ex.fund(ALICE, collateral=0, shares=_holding(m.token_ids, 10, 7))

    assert ex.merge(ALICE, m.condition_id, 8 * U, dry_run=True) == CapitalResult(REVERT_INSUFFICIENT_BALANCE)
    checked = ex.merge(ALICE, m.condition_id, 7 * U, dry_run=True)
    assert checked == CapitalResult(None, 7 * U, (7 * U, 7 * U))
    assert wallet.collateral == 0  # a dry run changes nothing

    assert ex.merge(ALICE, m.condition_id, 7 * U) == checked
    assert wallet.collateral == 7 * U
    assert wallet.shares == _holding(m.token_ids, 3, 0)
    assert ex.merge(ALICE, "0x" + "11" * 32, U).revert == REVERT_UNKNOWN_CONDITION
    assert ex.merge(ALICE, m.condition_id, 0).revert is not None


def test_shares_reserved_by_open_sells_cannot_be_merged() -> None:
    ex, _ = exchange()
    m = ex.markets[0]
    yes, _no = m.token_ids
    ex.fund(ALICE, collateral=0, shares=_holding(m.token_ids, 10, 10))
    assert isinstance(ex.submit(order(yes, Side.SELL, "0.9", "6", owner="alice", address=ALICE), T0), Accepted)
    assert ex.merge(ALICE, m.condition_id, 5 * U).revert == REVERT_INSUFFICIENT_BALANCE
    assert ex.merge(ALICE, m.condition_id, 4 * U).revert is None


@pytest.mark.parametrize(
    ("winner", "paid"), [(0, 10 * U), (1, 4 * U), (None, 7 * U)], ids=["yes-won", "no-won", "fifty-fifty"]
)
def test_redeem_pays_the_resolution_and_burns_every_share(winner: int | None, paid: int) -> None:
    ex, _ = exchange()
    m = ex.markets[0]
    wallet = ex.fund(ALICE, collateral=0, shares=_holding(m.token_ids, 10, 4))
    assert ex.redeem(ALICE, m.condition_id).revert == REVERT_NOT_RESOLVED

    ex.resolve(m.condition_id, winner, T0)
    result = ex.redeem(ALICE, m.condition_id)

    assert result == CapitalResult(None, paid, (10 * U, 4 * U))
    assert wallet.collateral == paid
    assert wallet.shares == _holding(m.token_ids, 0, 0)
    assert ex.redeem(ALICE, m.condition_id) == CapitalResult(None, 0, (0, 0))  # nothing left: pays nothing


def test_redeem_of_given_amounts_floors_each_position() -> None:
    ex, _ = exchange()
    m = ex.markets[0]
    wallet = ex.fund(ALICE, collateral=0, shares={m.token_ids[0]: 3, m.token_ids[1]: 3})
    ex.resolve(m.condition_id, None, T0)
    assert ex.redeem(ALICE, m.condition_id, (3, 4)).revert == REVERT_INSUFFICIENT_BALANCE
    assert ex.redeem(ALICE, m.condition_id, (3, 1)) == CapitalResult(None, 1, (3, 1))  # 3/2 -> 1, 1/2 -> 0
    assert wallet.shares == {m.token_ids[0]: 0, m.token_ids[1]: 2}
