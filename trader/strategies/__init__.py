"""Strategies: pure functions of the market state to intents (see `trader.strategies.base`).

- `SumTo100`: buy a complete set below 1 after fees (and sell a held one above 1);
- `Clipper`: take a dislocated price in clips;
- `Sniper`: buy the known winner of a finished game (ESPN), once per market ever;
- `SumDeviation`: the analyzer that records every sum-to-100 opportunity, traded or not.

`build_strategies` and `build_analyzers` turn the per-strategy settings into the enabled instances the strategy
engine runs, in a fixed order (arbitrage first).
"""

from __future__ import annotations

from collections.abc import Iterable

from trader.strategies.base import BookView as BookView
from trader.strategies.base import ClaimedIntent as ClaimedIntent
from trader.strategies.base import Intent as Intent
from trader.strategies.base import MarketState as MarketState
from trader.strategies.base import Strategy as Strategy
from trader.strategies.base import StrategyOutput as StrategyOutput
from trader.strategies.clipper import Clipper as Clipper
from trader.strategies.clipper import ClipperSettings as ClipperSettings
from trader.strategies.sniper import Sniper as Sniper
from trader.strategies.sniper import SniperSettings as SniperSettings
from trader.strategies.sum_deviation import SumDeviation as SumDeviation
from trader.strategies.sum_deviation import SumDeviationSettings as SumDeviationSettings
from trader.strategies.sum_to_100 import SumTo100 as SumTo100
from trader.strategies.sum_to_100 import SumTo100Settings as SumTo100Settings

__all__ = [
    "BookView",
    "ClaimedIntent",
    "Clipper",
    "ClipperSettings",
    "Intent",
    "MarketState",
    "Sniper",
    "SniperSettings",
    "Strategy",
    "StrategyOutput",
    "SumDeviation",
    "SumDeviationSettings",
    "SumTo100",
    "SumTo100Settings",
    "build_analyzers",
    "build_strategies",
]


def build_strategies(
    *,
    sum_to_100: SumTo100Settings | None = None,
    clipper: ClipperSettings | None = None,
    sniper: SniperSettings | None = None,
    already_sniped: Iterable[str] = (),
) -> list[Strategy]:
    """The enabled strategies, arbitrage first. `already_sniped`: the condition ids from
    `Store.load_sniped_markets()`, so a restart never snipes a market again."""
    sum_to_100 = sum_to_100 or SumTo100Settings()
    clipper = clipper or ClipperSettings()
    sniper = sniper or SniperSettings()
    strategies: list[Strategy] = []
    if sum_to_100.enabled:
        strategies.append(SumTo100(sum_to_100))
    if clipper.enabled:
        strategies.append(Clipper(clipper))
    if sniper.enabled:
        strategies.append(Sniper(sniper, already_sniped=already_sniped))
    return strategies


def build_analyzers(sum_deviation: SumDeviationSettings | None = None) -> list[SumDeviation]:
    sum_deviation = sum_deviation or SumDeviationSettings()
    return [SumDeviation(sum_deviation)] if sum_deviation.enabled else []
