"""The sum-deviation analyzer: opportunities open, peak and close, traded or not, and the summary adds up."""

from __future__ import annotations

import pytest

from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.strategies.baskets import BasketKind
from trader.strategies.sum_deviation import OpportunityStatus, SumDeviation, SumDeviationSettings
from trader.strategies.sum_to_100 import SumTo100, SumTo100Settings

from .builders import D, Levels, StateBuilder, make_market


def binary(yes: tuple[Levels, Levels], no: tuple[Levels, Levels], **kw: object) -> StateBuilder:
    sb = StateBuilder()
    sb.market(make_market(1, **kw), yes=yes, no=no)  # type: ignore[arg-type]
    return sb


NOTHING = binary(([("0.40", "10")], [("0.55", "10")]), ([("0.40", "10")], [("0.50", "10")]))  # asks 1.05, bids 0.80


def test_an_opportunity_opens_peaks_and_closes_with_its_duration_and_depth() -> None:
    analyzer = SumDeviation()
    assert analyzer.observe(NOTHING.state(now=10.0), []) == []

    sb = binary(([], [("0.48", "30"), ("0.49", "100")]), ([], [("0.50", "20"), ("0.51", "100")]))
    (opened,) = analyzer.observe(sb.state(now=11.0), [])
    assert opened.status is OpportunityStatus.OPENED
    assert (opened.kind, opened.side, opened.basket) == (BasketKind.BINARY, Side.BUY, "0xc1")
    assert opened.edge == D("0.02")
    assert opened.depth_at_peak == D(30)  # 20 units at 0.98 and 10 at 0.99; those at 1.00 have no edge
    assert opened.started_at == 1_700_000_011.0
    assert opened.traded is False

    deeper = binary(([], [("0.45", "40")]), ([], [("0.50", "40")]))
    assert analyzer.observe(deeper.state(now=12.0), []) == []  # still open: no event, new peak 0.05 x 40
    assert analyzer.observe(sb.state(now=12.5), []) == []

    (closed,) = analyzer.observe(NOTHING.state(now=13.5), [])
    assert closed.status is OpportunityStatus.CLOSED
    assert closed.opportunity_id == opened.opportunity_id
    assert closed.duration_secs == pytest.approx(2.5)
    assert (closed.edge, closed.peak_edge, closed.depth_at_peak) == (D("0.02"), D("0.05"), D(40))
    assert closed.ended_at == 1_700_000_013.5

    summary = analyzer.summary()
    assert (summary.count, summary.open, summary.traded) == (1, 0, 0)
    assert summary.total_edge_usd == D("2.00")
    assert summary.peak_edge == D("0.05")
    assert summary.total_duration_secs == pytest.approx(2.5)
    assert summary.max_duration_secs == pytest.approx(2.5)
    assert summary.mean_duration_secs == pytest.approx(2.5)
    assert summary.by_kind == {"BINARY/BUY": 1}
    assert summary.recent == (closed,)


def test_an_opportunity_the_arbitrage_traded_is_marked_traded() -> None:
    sb = binary(([], [("0.45", "100")]), ([], [("0.50", "100")]))
    strategy = SumTo100(SumTo100Settings(max_basket_usd=D(1000)))
    analyzer = SumDeviation()
    state = sb.state()
    (opened,) = analyzer.observe(state, strategy.on_state(state))  # type: ignore[arg-type]
    assert opened.traded is True
    analyzer.observe(NOTHING.state(), [])
    assert analyzer.summary().traded == 1


def test_traded_while_open_is_carried_to_the_close() -> None:
    sb = binary(([], [("0.45", "100")]), ([], [("0.50", "100")]))
    analyzer = SumDeviation()
    (opened,) = analyzer.observe(sb.state(now=1.0), [])
    assert not opened.traded
    strategy = SumTo100(SumTo100Settings(max_basket_usd=D(1000)))
    state = sb.state(now=2.0)
    analyzer.observe(state, strategy.on_state(state))  # type: ignore[arg-type]
    assert analyzer.summary().traded == 1  # counted while still open
    (closed,) = analyzer.observe(NOTHING.state(now=3.0), [])
    assert closed.traded


def test_a_sell_side_opportunity_is_recorded_without_holding_anything() -> None:
    sb = binary(([("0.55", "10")], [("0.60", "10")]), ([("0.50", "10")], [("0.55", "10")]))
    (opened,) = SumDeviation().observe(sb.state(), [])
    assert (opened.side, opened.edge, opened.depth_at_peak) == (Side.SELL, D("0.05"), D(10))


def test_an_unusable_book_closes_the_opportunity() -> None:
    analyzer = SumDeviation()
    good = binary(([], [("0.45", "10")]), ([], [("0.50", "10")]))
    analyzer.observe(good.state(now=1.0), [])
    stale = StateBuilder()
    stale.market(make_market(1), yes=((), [("0.45", "10")]), no=((), [("0.50", "10")]), suspect=True)
    (closed,) = analyzer.observe(stale.state(now=2.0), [])
    assert closed.status is OpportunityStatus.CLOSED
    # a basket that is gone altogether closes too
    analyzer.observe(good.state(now=3.0), [])
    (gone,) = analyzer.observe(StateBuilder().state(now=4.0), [])
    assert gone.status is OpportunityStatus.CLOSED
    assert analyzer.summary().count == 2


def test_fees_and_the_threshold_decide_what_counts() -> None:
    fees = FeeSchedule(rate=D("0.1"), exponent=1)  # 0.02475 + 0.025 per unit at 0.45 / 0.50
    assert SumDeviation().observe(binary(([], [("0.46", "10")]), ([], [("0.50", "10")]), fees=fees).state(), []) == []
    sb = binary(([], [("0.45", "10")]), ([], [("0.50", "10")]), fees=fees)
    (opened,) = SumDeviation().observe(sb.state(), [])
    assert opened.edge == D("0.00025")
    assert SumDeviation(SumDeviationSettings(min_edge_usd=D("0.001"))).observe(sb.state(), []) == []


def test_neg_risk_baskets_count_only_when_complete() -> None:
    for complete, expected in ((True, 1), (False, 0)):
        sb = StateBuilder()
        markets = [
            sb.market(
                make_market(n, neg_risk=True, neg_risk_id="0xnr"), yes=((), [("0.30", "10")]), no=((), [("0.99", "10")])
            )
            for n in (1, 2, 3)
        ]
        sb.event("e1", markets, complete=complete)
        events = SumDeviation(SumDeviationSettings(binary=False)).observe(sb.state(), [])
        assert len(events) == expected
        if expected:
            assert (events[0].kind, events[0].basket, len(events[0].token_ids)) == (BasketKind.NEG_RISK, "e1", 3)


def test_empty_summary_and_settings_checks() -> None:
    summary = SumDeviation().summary()
    assert (summary.count, summary.peak_edge, summary.mean_duration_secs) == (0, None, None)
    with pytest.raises(ValueError, match="min_edge_usd"):
        SumDeviationSettings(min_edge_usd=D("-0.01"))
    with pytest.raises(ValueError, match="recent"):
        SumDeviationSettings(recent=0)


def test_on_a_partial_wakeup_unchanged_opportunities_stay_open() -> None:
    analyzer = SumDeviation()
    sb = binary(([], [("0.45", "10")]), ([], [("0.50", "10")]))
    sb.market(make_market(2), yes=((), [("0.60", "10")]), no=((), [("0.60", "10")]))
    (opened,) = analyzer.observe(sb.state(now=1.0), [])
    assert analyzer.observe(sb.state(now=2.0, changed=["0xc2"]), []) == []  # 0xc1 was not looked at: still open
    assert analyzer.summary().open == 1
    gone = StateBuilder()
    (closed,) = analyzer.observe(gone.state(now=3.0, changed=["0xc1"]), [])
    assert closed.opportunity_id == opened.opportunity_id
