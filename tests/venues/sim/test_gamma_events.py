"""Gamma /events on the sim: the query's filters select events, and each event lists all its markets."""

from __future__ import annotations

import httpx

from trader.venues.polymarket.gamma import GammaClient
from trader.venues.sim.venue import SimVenue


async def test_events_by_id_list_every_market_of_the_event(sim: SimVenue, http: httpx.AsyncClient) -> None:
    (event,) = sim.exchange.events.values()
    listed = (await http.get(sim.urls.gamma + "/events", params={"id": event.event_id})).json()
    assert [e["id"] for e in listed] == [event.event_id]
    assert sorted(m["conditionId"] for m in listed[0]["markets"]) == sorted(event.market_ids)


async def test_the_engine_sees_the_event_complete_with_all_its_outcomes(sim: SimVenue, http: httpx.AsyncClient) -> None:
    (event,) = sim.exchange.events.values()
    (found,) = await GammaClient(http, sim.urls.gamma).events([event.event_id])
    assert found.is_complete
    assert len(found.markets) == len(event.market_ids)
