"""Issue 13's end state on the engine's own path: markets resolve while it trades, and at the end the venue's wallet
holds what the books say, to the cent and to the share (the paper wallet on paper; `check_wallet` asks it).

The in-process sim on the virtual clock (`trader backtest --scenario`: the engine's core, the paper venue and
capital, as `trader run` has them) with a fast lifecycle: markets live ~40 s, neg-risk events ~60 s, six new markets
a minute. Merges, settlements at 1/0 and 0/1, and redemptions of won and of lost shares all happen in 6 minutes.
"""

from __future__ import annotations

import trio

from trader.app.backtest import SimData, run_backtest, seed_everything, virtual_clock
from trader.settings import Settings
from trader.venues.sim.venue import SimConfig

FAST = {"event_lifetime_secs": "60", "market_lifetime_secs": "40", "new_market_rate_per_min": "6"}


def test_after_markets_resolve_the_wallet_holds_what_the_books_say() -> None:
    seed_everything(0)
    config = SimConfig(scenario="synthetic", markets=8, seed=3, scenario_params=FAST)
    result = trio.run(run_backtest, Settings(), SimData(config=config, duration_secs=360.0), clock=virtual_clock())
    summary = result.summary
    capital = summary.capital
    counts = {key: int(str(capital[key])) for key in ("settled_markets", "merges", "redemptions")}
    assert counts["settled_markets"] >= 3
    assert counts["merges"] >= 1
    assert counts["redemptions"] >= 3  # won and lost shares alike
    assert summary.fills >= 20
    wallet = summary.wallet
    assert wallet["cash_difference"] == 0, wallet
    assert wallet["positions_differing"] == 0, wallet
