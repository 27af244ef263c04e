"""Done-when of issue 14 (discovery): `trader run --venue polymarket` pointed at the sim, in its production-like
configuration (Gamma pages clamped to 100, 422 past offset 2000, keyset endpoints, both field forms, nested
markets without a tick), with a 350-market scenario, discovers every market of the listing: through the keyset
endpoints, and through the legacy offset paging when the sim has none. Over real sockets, on the real clock.

`markets.max_markets` stays 100 by default (what the engine takes on: books, subscriptions, strategy work), so the
test raises it to follow the whole listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import trio

from trader.app import RunningEngine, run_trader
from trader.domain.market import NegRiskEvent
from trader.integrations.http_server import HttpSettings
from trader.settings import EndpointSettings, RunSettings, SelectionSettings, Settings, VenueKind
from trader.venues.sim.gamma import GammaConfig
from trader.venues.sim.venue import SimConfig, open_sim_venue

STANDALONE = 350  # the synthetic listing adds two neg-risk events of three markets: 356 in all
STILL = ("new_market_rate_per_min=0",)  # the listing stays as it is while the test reads it (markets live >= 150 s)


@dataclass
class Seen:
    listed: set[str]
    followed: set[str]
    discovery: dict[str, Any]
    metrics: str
    events: list[NegRiskEvent]
    warnings: list[str]


async def run_against_sim(tmp_path: Path, gamma: GammaConfig, *, events: int = 2) -> Seen:
    """Start the sim (synthetic, 350 standalone markets) and `trader run --venue polymarket` pointed at it; read
    what the engine follows, `/status` and `/metrics` once `events` neg-risk events are in; stop."""
    sim_config = SimConfig(
        scenario="synthetic",
        markets=STANDALONE,
        seed=14,
        scenario_params=dict(p.split("=", 1) for p in STILL),
        gamma=gamma,
    )
    with trio.fail_after(90), structlog.testing.capture_logs() as logs:
        async with open_sim_venue(sim_config) as sim:
            listed = {m.condition_id for m in sim.exchange.markets}
            settings = Settings(
                run=RunSettings(
                    venue=VenueKind.POLYMARKET, database_url=f"sqlite:{tmp_path / 't.sqlite3'}", drain_secs=1.0
                ),
                endpoints=EndpointSettings(
                    rest_url=sim.urls.rest,
                    ws_market_url=sim.urls.ws_market,
                    ws_user_url=sim.urls.ws_user,
                    gamma_url=sim.urls.gamma,
                ),
                markets=SelectionSettings(max_markets=400),
                http=HttpSettings(port=0),
            )
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                engine: RunningEngine = await nursery.start(partial(run_trader, settings, stop=stop.wait))
                followed = set(engine.control.venue.tracked)
                neg_risk = engine.control.venue.events
                with trio.fail_after(20):
                    while len(neg_risk.current) < events:  # noqa: ASYNC110 - they are read right after discovery
                        await trio.sleep(0.05)
                async with httpx.AsyncClient(base_url=engine.http_url) as http:
                    discovery = (await http.get("/status?full=1")).json()["discovery"]
                    metrics = (await http.get("/metrics")).text
                stop.set()
    warnings = [str(e["event"]) for e in logs if e["log_level"] in ("warning", "error", "critical")]
    return Seen(listed, followed, discovery, metrics, list(neg_risk.current), warnings)


@pytest.mark.timeout(120)  # about 1 s each on the 2-core machine
@pytest.mark.parametrize("keyset", [True, False], ids=["keyset", "offset_fallback"])
async def test_trader_run_against_polymarket_discovers_every_market_of_a_350_market_listing(
    tmp_path: Path, keyset: bool
) -> None:
    seen = await run_against_sim(tmp_path, GammaConfig(keyset=keyset))
    assert len(seen.listed) == STANDALONE + 6
    assert seen.followed == seen.listed  # every market of the listing, none missing
    discovery = seen.discovery
    assert discovery["found"] == discovery["followed"] == len(seen.listed)
    assert discovery["complete"] is True
    assert discovery["incomplete_reason"] is None
    assert discovery["paging"] == ("keyset" if keyset else "offset")
    assert discovery["pages"] == 4  # 100, 100, 100, 56: never more than 100 a page
    assert discovery["skipped"] == {}
    assert discovery["gamma"]["keyset_fallbacks"] == (0 if keyset else 2)  # the markets, then the events
    assert discovery["gamma"]["incomplete"] == {}
    assert "trader_discovery_complete 1.0" in seen.metrics
    assert sorted(e.is_complete for e in seen.events) == [False, True]  # the synthetic award is not complete
    assert seen.warnings == []


@pytest.mark.timeout(120)
async def test_a_gamma_that_refuses_deep_offsets_gives_an_incomplete_discovery_said_once(tmp_path: Path) -> None:
    # the neg-risk markets are listed last: past the refusal, so no events are read
    seen = await run_against_sim(tmp_path, GammaConfig(keyset=False, max_offset=200), events=0)
    assert len(seen.followed) == 300  # offsets 0, 100 and 200 served; 300 refused with a 422
    assert seen.followed < seen.listed
    discovery = seen.discovery
    assert (discovery["complete"], discovery["found"], discovery["pages"]) == (False, 300, 3)
    assert discovery["incomplete_reason"].startswith("OFFSET_LIMIT: /markets refused offset 300: offset too large")
    assert discovery["gamma"]["incomplete"] == {"OFFSET_LIMIT": 1}
    assert 'trader_gamma_incomplete_total{reason="OFFSET_LIMIT"} 1.0' in seen.metrics
    assert "trader_discovery_complete 0.0" in seen.metrics
    assert seen.warnings == ["gamma_listing_incomplete"]  # said once, as a warning: a person should act on it
