"""Every moving scenario resolves its markets over the real sockets, as the engine's own market feed parses them:
`market_resolved` (and `new_market` for synthetic listings) on a custom-feature connection, then Gamma and the CLOB
market show the outcome. Time is trio's autojump MockClock."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio
import trio.testing

from trader.domain.feed import MarketResolved, NewMarket
from trader.venues.polymarket.market_ws import PolymarketMarketFeed, websocket_factory
from trader.venues.sim.venue import SimConfig, open_sim_venue

SCENARIOS = {
    "synthetic": {"market_lifetime_secs": "4", "new_market_rate_per_min": "30", "split_rate": "0.5"},
    "sports": {"start_in_secs": "1", "duration_secs": "2", "window_secs": "1", "resolve_after_secs": "1"},
    "quotes": {"speed": "2000"},
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_markets_resolve_on_the_wire(autojump_clock: trio.testing.MockClock, scenario: str) -> None:
    config = SimConfig(scenario=scenario, markets=3, seed=5, scenario_params=SCENARIOS[scenario])
    async with open_sim_venue(config) as sim, httpx.AsyncClient() as http:
        markets = {m.condition_id: m for m in sim.exchange.markets}
        ticks = {t: m.tick_size for m in markets.values() for t in m.token_ids}
        feed = PolymarketMarketFeed(websocket_factory(sim.urls.ws_market))
        resolved: list[MarketResolved] = []
        listed: list[NewMarket] = []
        async with feed.connect(list(ticks), ticks, custom_feature_enabled=True) as connection:
            with trio.fail_after(600):
                while not resolved or (scenario == "synthetic" and not listed):
                    frame = await connection.receive()
                    for drop in frame.drops:  # the engine's parser takes every frame the sim sends
                        assert drop.reason == "UNKNOWN_ASSET", drop
                    for event in frame.events:
                        if isinstance(event, MarketResolved):
                            resolved.append(event)
                        elif isinstance(event, NewMarket):
                            listed.append(event)
                            for token in event.token_ids:
                                ticks[token] = event.tick_size or Decimal("0.01")

        for event in resolved:
            resolution = sim.exchange.resolution(event.condition_id)
            assert resolution is not None
            market = sim.exchange.market(event.condition_id)
            assert market is not None
            assert event.token_ids == market.token_ids
            winner = resolution.winner
            assert event.winning_asset_id == ("" if winner is None else market.token_ids[winner])
            clob = (await http.get(f"{sim.urls.rest}/markets/{event.condition_id}")).json()
            assert clob["closed"] is True
            assert [t["winner"] for t in clob["tokens"]] == [winner == 0, winner == 1]
            (gamma,) = (
                await http.get(sim.urls.gamma + "/markets", params={"condition_ids": event.condition_id})
            ).json()
            assert (gamma["closed"], gamma["active"], gamma["umaResolutionStatus"]) == (True, False, "resolved")
        for announced in listed:
            assert sim.exchange.market(announced.condition_id) is not None
