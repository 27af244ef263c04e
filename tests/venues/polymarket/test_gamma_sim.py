"""`GammaClient` against the production-like sim, over real sockets: the whole listing through keyset pages of 100,
the offset fallback of a Gamma without keyset (clamp understood, the 422 a counted stop warned once), and both
forms of the list fields read alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog

from trader.venues.polymarket.gamma import GammaClient, MarketQuery
from trader.venues.sim.gamma import GammaConfig
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

STANDALONE = 250  # and two neg-risk events of three markets: 256 in all


@asynccontextmanager
async def gamma_of(config: GammaConfig) -> AsyncIterator[tuple[SimVenue, GammaClient]]:
    sim_config = SimConfig(scenario="static", markets=STANDALONE, seed=8, rate_limits=None, gamma=config)
    async with open_sim_venue(sim_config) as sim, httpx.AsyncClient(timeout=10) as http:
        yield sim, GammaClient(http, sim.urls.gamma)


async def test_keyset_discovery_finds_every_market_in_pages_of_100() -> None:
    async with gamma_of(GammaConfig()) as (sim, gamma):
        found = await gamma.markets(MarketQuery())
    assert {d.market.condition_id for d in found.markets} == {m.condition_id for m in sim.exchange.markets}
    assert (found.complete, found.pages, found.paging, found.skipped) == (True, 3, "keyset", [])
    assert gamma.statistics().keyset_fallbacks == 0


async def test_without_keyset_the_offset_fallback_finds_every_market_too() -> None:
    async with gamma_of(GammaConfig(keyset=False)) as (sim, gamma):
        with structlog.testing.capture_logs() as logs:
            found = await gamma.markets(MarketQuery())
            await gamma.markets(MarketQuery())
    assert {d.market.condition_id for d in found.markets} == {m.condition_id for m in sim.exchange.markets}
    assert (found.complete, found.pages, found.paging) == (True, 3, "offset")  # 100, 100, 56: a full page goes on
    assert gamma.statistics().keyset_fallbacks == 2
    assert [e["event"] for e in logs] == ["gamma_keyset_unavailable"]  # once, and not a warning
    assert logs[0]["log_level"] == "info"


async def test_a_deep_offset_refused_ends_the_discovery_incomplete_counted_and_warned_once() -> None:
    async with gamma_of(GammaConfig(keyset=False, max_offset=150)) as (_sim, gamma):
        with structlog.testing.capture_logs() as logs:
            first = await gamma.markets(MarketQuery())
            second = await gamma.markets(MarketQuery())
    for found in (first, second):
        assert len(found.markets) == 200  # offsets 0 and 100 served; 200 refused with a 422
        assert not found.complete
        assert found.incomplete_reason is not None
        assert found.incomplete_reason.startswith("OFFSET_LIMIT: /markets refused offset 200: offset too large")
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["gamma_listing_incomplete"]
    assert gamma.statistics().incomplete == {"OFFSET_LIMIT": 2}


async def test_markets_of_both_field_forms_are_discovered_alike() -> None:
    async with gamma_of(GammaConfig(array_share=0.5)) as (sim, gamma):
        found = await gamma.markets(MarketQuery())
        async with httpx.AsyncClient() as http:
            page = (await http.get(sim.urls.gamma + "/markets")).json()
    arrays = {m["conditionId"] for m in page if isinstance(m["clobTokenIds"], list)}
    strings = {m["conditionId"] for m in page} - arrays
    discovered = {d.market.condition_id: d.market for d in found.markets}
    assert arrays
    assert strings
    assert arrays | strings <= discovered.keys()
    for condition_id in arrays | strings:
        assert discovered[condition_id].token_ids == sim.exchange.market(condition_id).token_ids  # type: ignore[union-attr]
