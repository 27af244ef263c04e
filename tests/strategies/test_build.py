"""Building the enabled strategies from their settings."""

from __future__ import annotations

from trader.strategies import (
    Clipper,
    ClipperSettings,
    Sniper,
    SniperSettings,
    SumDeviation,
    SumDeviationSettings,
    SumTo100,
    SumTo100Settings,
    build_analyzers,
    build_strategies,
)


def test_defaults_run_the_arbitrage_and_the_analyzer_only() -> None:
    strategies = build_strategies()
    assert [type(s) for s in strategies] == [SumTo100]
    assert [type(a) for a in build_analyzers()] == [SumDeviation]
    assert build_analyzers(SumDeviationSettings(enabled=False)) == []


def test_enabled_strategies_in_order_and_the_sniper_knows_the_persisted_snipes() -> None:
    strategies = build_strategies(
        sum_to_100=SumTo100Settings(enabled=False),
        clipper=ClipperSettings(enabled=True),
        sniper=SniperSettings(enabled=True),
        already_sniped=["0xc1"],
    )
    assert [type(s) for s in strategies] == [Clipper, Sniper]
    sniper = strategies[1]
    assert isinstance(sniper, Sniper)
    assert sniper.sniped == {"0xc1"}
    assert [s.name for s in strategies] == ["clipper", "sniper"]
