"""The sim's Gamma behaves as production's (protocol.md §11.1-2): pages clamped to 100, 422 past the offset limit,
keyset endpoints with opaque cursors, both forms of the list fields, nested markets without a tick."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from trader.venues.sim.gamma import GammaConfig
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

MARKETS = 250  # standalone markets; the synthetic listing adds two neg-risk events of three


async def open_sim(**gamma: Any) -> AsyncIterator[SimVenue]:
    config = SimConfig(scenario="static", markets=MARKETS, seed=5, rate_limits=None, gamma=GammaConfig(**gamma))
    async with open_sim_venue(config) as sim:
        yield sim


@pytest.fixture
async def sim() -> AsyncIterator[SimVenue]:
    async for venue in open_sim():
        yield venue


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_legacy_pages_are_clamped_to_100_and_deep_offsets_refused(sim: SimVenue, http: httpx.AsyncClient) -> None:
    markets = sim.urls.gamma + "/markets"
    assert len((await http.get(markets, params={"limit": "500"})).json()) == 100  # clamped, not refused
    assert len((await http.get(markets)).json()) == 100
    assert len((await http.get(markets, params={"limit": "7", "offset": "250"})).json()) == 6
    refused = await http.get(markets, params={"limit": "100", "offset": "2100"})
    assert refused.status_code == 422
    assert refused.json() == {
        "type": "validation error",
        "error": "offset too large, use /markets/keyset for deeper pagination",
    }
    assert (await http.get(markets, params={"offset": "2000"})).json() == []  # the deepest offset still served
    events = await http.get(sim.urls.gamma + "/events", params={"offset": "2001"})
    assert events.json()["error"] == "offset too large, use /events/keyset for deeper pagination"
    assert (await http.get(markets, params={"limit": "x"})).status_code == 422


async def test_keyset_pages_follow_after_cursor_to_a_last_page_without_a_cursor(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    url = sim.urls.gamma + "/markets/keyset"
    seen: list[str] = []
    params: dict[str, str] = {"limit": "500"}
    pages = 0
    while True:
        page = (await http.get(url, params=params)).json()
        pages += 1
        assert len(page["markets"]) <= 100
        seen += [m["conditionId"] for m in page["markets"]]
        if "next_cursor" not in page:
            break
        params = {"limit": "500", "after_cursor": page["next_cursor"]}
    assert pages == 3
    assert seen == [m.condition_id for m in sim.exchange.markets]  # every market once, in order

    first = (await http.get(url, params={"limit": "100"})).json()
    again = (await http.get(url, params={"limit": "100", "cursor": first["next_cursor"]})).json()
    assert again == first  # `cursor=` is ignored, as on production


async def test_a_keyset_cursor_is_bound_to_its_query_and_offset_is_refused(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    url = sim.urls.gamma + "/markets/keyset"
    first = (await http.get(url, params={"limit": "10", "closed": "false"})).json()
    cursor = first["next_cursor"]
    same = await http.get(url, params={"limit": "20", "closed": "false", "after_cursor": cursor})
    assert same.status_code == 200  # the page size may change; the filters may not
    other = await http.get(url, params={"limit": "10", "closed": "true", "after_cursor": cursor})
    assert other.status_code == 422
    assert (await http.get(url, params={"after_cursor": "not a cursor"})).json()["type"] == "validation error"
    assert (await http.get(url, params={"offset": "100"})).status_code == 422


async def test_keyset_lists_open_markets_unless_asked_and_events_too(sim: SimVenue, http: httpx.AsyncClient) -> None:
    market = sim.exchange.markets[0]
    sim.exchange.resolve(market.condition_id, 0, sim.now())
    url = sim.urls.gamma + "/markets/keyset"
    listed = (await http.get(url, params={"condition_ids": market.condition_id})).json()
    assert listed == {"markets": []}  # closed: keyset's default is closed=false
    closed = (await http.get(url, params={"condition_ids": market.condition_id, "closed": "true"})).json()
    assert [m["conditionId"] for m in closed["markets"]] == [market.condition_id]
    legacy = (await http.get(sim.urls.gamma + "/markets", params={"condition_ids": market.condition_id})).json()
    assert [m["conditionId"] for m in legacy] == [market.condition_id]  # the legacy list shows all by default

    events = (await http.get(sim.urls.gamma + "/events/keyset", params={"limit": "100"})).json()
    assert len(events["events"]) == 100
    assert "next_cursor" in events


async def test_list_fields_come_in_both_forms_per_market_and_the_same_each_time(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    page = (await http.get(sim.urls.gamma + "/markets")).json()
    forms = {m["conditionId"]: isinstance(m["clobTokenIds"], list) for m in page}
    assert 20 < sum(forms.values()) < 80  # about half of them arrays
    for market in page:
        arrays = {isinstance(market[name], list) for name in ("outcomes", "outcomePrices", "clobTokenIds")}
        assert arrays == {forms[market["conditionId"]]}  # one form per market
        tokens = market["clobTokenIds"] if forms[market["conditionId"]] else json.loads(market["clobTokenIds"])
        assert tokens == list(sim.exchange.market(market["conditionId"]).token_ids)  # type: ignore[union-attr]
        assert "orderPriceMinTickSize" in market  # top-level markets always carry their tick
    again = (await http.get(sim.urls.gamma + "/markets")).json()
    assert {m["conditionId"]: isinstance(m["clobTokenIds"], list) for m in again} == forms


async def test_some_nested_markets_carry_no_tick(sim: SimVenue, http: httpx.AsyncClient) -> None:
    events = (await http.get(sim.urls.gamma + "/events", params={"limit": "100", "offset": "200"})).json()
    nested = [m for e in events for m in e["markets"]]
    untick = [m for m in nested if "orderPriceMinTickSize" not in m]
    assert 0 < len(untick) < len(nested) / 2


async def test_a_legacy_gamma_has_no_keyset_endpoints() -> None:
    async for sim in open_sim(keyset=False, max_offset=150, array_share=0.0, untick_share=0.0):
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(sim.urls.gamma + "/markets/keyset")).status_code == 404
            assert (await http.get(sim.urls.gamma + "/events/keyset")).status_code == 404
            assert (await http.get(sim.urls.gamma + "/markets", params={"offset": "151"})).status_code == 422
            page = (await http.get(sim.urls.gamma + "/markets")).json()
            assert all(isinstance(m["clobTokenIds"], str) for m in page)


def test_a_config_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        GammaConfig(array_share=1.5)
    with pytest.raises(ValueError, match="max_page"):
        GammaConfig(max_page=0)
