"""Gamma /events on the sim: the query's filters select events, each event lists all its markets, and some of the
nested markets carry no tick (as on production): the engine's client takes it from the CLOB."""

from __future__ import annotations

import httpx

from trader.venues.polymarket.gamma import GammaClient
from trader.venues.polymarket.paper_ids import PAPER_KEY
from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.venue import SimVenue


async def test_events_by_id_list_every_market_of_the_event(sim: SimVenue, http: httpx.AsyncClient) -> None:
    (event,) = sim.exchange.events.values()
    listed = (await http.get(sim.urls.gamma + "/events", params={"id": event.event_id})).json()
    assert [e["id"] for e in listed] == [event.event_id]
    assert sorted(m["conditionId"] for m in listed[0]["markets"]) == sorted(event.market_ids)


async def test_the_engine_sees_the_event_complete_with_ticks_from_the_clob(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    (event,) = sim.exchange.events.values()
    (listed,) = (await http.get(sim.urls.gamma + "/events/keyset", params={"id": event.event_id})).json()["events"]
    untick = [m["conditionId"] for m in listed["markets"] if "orderPriceMinTickSize" not in m]
    assert untick  # the sim's seed 0 leaves some nested markets without a tick

    async with open_rest_client(sim.urls.rest, OrderSigner(PAPER_KEY)) as rest:
        gamma = GammaClient(http, sim.urls.gamma, tick_size=rest.tick_size)
        (found,) = await gamma.events([event.event_id])
    assert found.is_complete
    assert {m.condition_id: m.tick_size for m in found.markets} == {
        c: sim.exchange.tick_size(sim.exchange.market(c).token_ids[0])  # type: ignore[union-attr]
        for c in event.market_ids
    }
    assert gamma.statistics().tick_lookups == len(untick)


async def test_without_the_clob_an_event_with_an_untickable_market_is_incomplete_and_counted(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    (event,) = sim.exchange.events.values()
    gamma = GammaClient(http, sim.urls.gamma)
    (found,) = await gamma.events([event.event_id])
    assert not found.is_complete
    assert 0 < len(found.markets) < len(event.market_ids)
    assert gamma.statistics().dropped == {"TICK_SIZE_UNKNOWN": len(event.market_ids) - len(found.markets)}
