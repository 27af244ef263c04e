"""Gamma discovery: captured replies -> Markets, selection, neg-risk events, bad replies, periodic refresh."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog
import trio
import trio.testing

from trader.domain.market import NO_FEES, FeeSchedule, Market
from trader.errors import InputError
from trader.venues.errors import VenueConnectionError, VenueProtocolError, VenueRequestError
from trader.venues.polymarket.gamma import (
    Announcements,
    GammaClient,
    MarketQuery,
    RefreshStatistics,
    parse_gamma_market,
    run_market_refresh,
    select_markets,
)
from trader.venues.polymarket.schemas import WireGammaMarket

CAPTURED = Path(__file__).parents[2] / "fixtures" / "polymarket" / "captured"
D = Decimal


def captured(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((CAPTURED / name).read_text())
    return value


def wire(item: dict[str, Any]) -> WireGammaMarket:
    return msgspec.convert(item, WireGammaMarket)


# ----------------------------------------------------------------------------------------------------------------
# captured markets


def test_captured_active_market_maps_outcomes_to_yes_and_no_tokens() -> None:
    found = parse_gamma_market(wire(captured("gamma_market.json")), require_fee_schedule=False)
    assert found.market == Market(
        condition_id="0x78443f961b9a65869dcb39359de9960165c7e5cbad0904eac7f29cd77872a63b",
        question="Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET",
        slug="btc-updown-5m-1773307200",
        yes_token_id="104239898038807136052399800151408521467737075933964991162589336683346093173875",
        no_token_id="71183960810705820955071415844881728181970340514894896943812046065452395013351",
        tick_size=D("0.01"),
        neg_risk=False,
        neg_risk_market_id=None,
        min_order_size=D("5"),
        fees=NO_FEES,
        active=True,
        accepting_orders=True,
        closed=False,
        end_date=datetime(2026, 3, 12, 9, 25, tzinfo=UTC),
        outcomes=("Up", "Down"),
    )
    assert found.gamma_id == "1557558"
    assert found.event_id == "260654"
    assert found.liquidity == D("20328.3747")
    # fees are enabled but no schedule is published: unknown, and flagged as such
    assert not found.fees_known


def test_fees_enabled_without_a_schedule_is_an_error_when_fees_matter() -> None:
    with pytest.raises(InputError) as excinfo:
        parse_gamma_market(wire(captured("gamma_market.json")))
    assert excinfo.value.field == "feeSchedule"


def test_captured_sports_market_has_a_fee_schedule_and_a_fine_tick() -> None:
    found = parse_gamma_market(wire(captured("gamma_market_sports_market_money_line.json")))
    market = found.market
    assert market.outcomes == ("FaZe", "illwill")
    assert market.yes_token_id == "89972346417086440659189114668296975440208562769200022591480064439842896371398"
    assert market.no_token_id == "90510951248295963583566830308208121966213462932425555585207203442852394431867"
    assert market.tick_size == D("0.001")
    assert market.fees == FeeSchedule(rate=D("0.03"), exponent=1, taker_only=True)
    assert (market.closed, market.accepting_orders, market.active) == (True, False, True)
    assert found.fees_known


def test_captured_fee_free_closed_market_still_accepting_orders() -> None:
    found = parse_gamma_market(wire(captured("gamma_market_closed_binary_accepting_true.json")))
    assert found.market.fees == NO_FEES
    assert found.fees_known
    assert (found.market.closed, found.market.accepting_orders) == (True, True)
    assert found.market.end_date == datetime(2027, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["gamma_market_closed_nonbinary_legacy.json", "gamma_market_closed_zero_zero_legacy.json"]
)
def test_captured_legacy_markets_without_a_tick_size_are_refused_by_field(name: str) -> None:
    with pytest.raises(InputError) as excinfo:
        parse_gamma_market(wire(captured(name)))
    assert excinfo.value.field == "orderPriceMinTickSize"


def test_every_captured_gamma_market_is_selected_or_skipped_with_a_reason() -> None:
    items = [captured(p.name) for p in sorted(CAPTURED.glob("gamma_*.json"))]
    result = select_markets(items, MarketQuery(require_fee_schedule=False))
    assert [d.market.slug for d in result.markets] == ["btc-updown-5m-1773307200"]
    # the two legacy markets carry no tick, but they are closed: that is why they are left out (no tick lookup)
    assert [reason.split(":")[0] for _, reason in result.skipped] == ["CLOSED"] * 6
    assert result.needs_tick == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcomes": '["Yes", "No", "Maybe"]'}, "outcomes"),
        ({"outcomes": "Yes,No"}, "outcomes"),
        ({"clobTokenIds": '["1"]'}, "clobTokenIds"),
        ({"clobTokenIds": '["0x12", "34"]'}, "clobTokenIds"),
        ({"clobTokenIds": None}, "clobTokenIds"),
        ({"orderPriceMinTickSize": 0.02}, "orderPriceMinTickSize"),
        ({"orderMinSize": "lots"}, "orderMinSize"),
        ({"conditionId": ""}, "conditionId"),
        ({"enableOrderBook": False}, "enableOrderBook"),
        ({"endDate": "next tuesday"}, "endDate"),
        ({"feesEnabled": True, "feeSchedule": {"rate": "x", "exponent": 1}}, "feeSchedule.rate"),
        ({"feesEnabled": True, "feeSchedule": {"rate": "", "exponent": 1}}, "feeSchedule"),  # was an AssertionError
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    item = captured("gamma_market_closed_binary_accepting_true.json") | change
    with pytest.raises(InputError) as excinfo:
        parse_gamma_market(wire(item))
    assert excinfo.value.field == field


def test_lists_are_read_from_json_strings_and_from_real_arrays_alike() -> None:
    item = captured("gamma_market_closed_binary_accepting_true.json")
    arrays = item | {k: json.loads(item[k]) for k in ("outcomes", "outcomePrices", "clobTokenIds")}
    assert isinstance(arrays["clobTokenIds"], list)
    assert parse_gamma_market(wire(arrays)) == parse_gamma_market(wire(item))
    mixed = item | {"clobTokenIds": arrays["clobTokenIds"]}  # one field of each form in one market
    assert parse_gamma_market(wire(mixed)).market == parse_gamma_market(wire(item)).market


@pytest.mark.parametrize(
    "change",
    [
        {"clobTokenIds": [1, 2]},
        {"clobTokenIds": [None, None]},
        {"clobTokenIds": "[1, 2]"},
        {"outcomes": [["Yes"], ["No"]]},
        {"outcomes": '{"Yes": 1}'},
        {"outcomes": []},
    ],
)
def test_a_list_of_anything_but_strings_is_refused_by_field(change: dict[str, Any]) -> None:
    item = captured("gamma_market_closed_binary_accepting_true.json") | change
    with pytest.raises(InputError) as excinfo:
        parse_gamma_market(wire(item))
    assert excinfo.value.field == next(iter(change))


def active(n: int, **extra: Any) -> dict[str, Any]:
    """A tradable market in Gamma's shape."""
    item = {
        "id": str(1000 + n),
        "conditionId": f"0x{n:064x}",
        "question": f"Question {n}?",
        "slug": f"market-{n}",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.5", "0.5"]',
        "clobTokenIds": json.dumps([str(10**70 + 2 * n), str(10**70 + 2 * n + 1)]),
        "active": True,
        "closed": False,
        "acceptingOrders": True,
        "enableOrderBook": True,
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "negRisk": False,
        "feesEnabled": False,
        "liquidity": "1000",
        "endDate": "2030-01-01T00:00:00Z",
    }
    return item | extra


def test_local_filters_apply_even_if_the_server_ignored_them() -> None:
    items = [
        active(1),
        active(2, acceptingOrders=False),
        active(3, liquidity="10"),
        active(4, category="Sports"),
        active(5, active=False),
        {"id": "6", "conditionId": 7},
        "not an object",
        active(1),  # listed twice
    ]
    result = select_markets(items, MarketQuery(min_liquidity=D(100), category="sports"))
    assert [d.market.slug for d in result.markets] == ["market-4"]
    assert [reason.split(":")[0] for _, reason in result.skipped] == [
        "OTHER_CATEGORY",
        "NOT_ACCEPTING_ORDERS",
        "BELOW_MIN_LIQUIDITY",
        "INACTIVE",
        "BAD_FIELD",
        "BAD_FIELD",
        "OTHER_CATEGORY",
    ]


def test_selection_by_slug_condition_id_and_token_id() -> None:
    items = [active(n) for n in range(1, 6)]
    assert [d.market.slug for d in select_markets(items, MarketQuery(slugs=("market-2",))).markets] == ["market-2"]
    by_condition = select_markets(items, MarketQuery(condition_ids=(f"0x{3:064x}",)))
    assert [d.market.slug for d in by_condition.markets] == ["market-3"]
    by_token = select_markets(items, MarketQuery(token_ids=(str(10**70 + 9),)))
    assert [d.market.slug for d in by_token.markets] == ["market-4"]


# ----------------------------------------------------------------------------------------------------------------
# the client over httpx.MockTransport: the requests it makes, and replies the sim never sends (paging against the
# production-like sim, over sockets: tests/venues/polymarket/test_gamma_sim.py)


def client(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> GammaClient:
    return GammaClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), "https://gamma.test/", **options)


def keyset(key: str, items: list[Any], request: httpx.Request) -> httpx.Response:
    """A keyset page of `items`: cursor "c<position>", at most `limit` (and 100) a page."""
    start = int(request.url.params.get("after_cursor", "c0")[1:])
    end = start + min(int(request.url.params.get("limit", "100")), 100)
    body: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        body["next_cursor"] = f"c{end}"
    return httpx.Response(200, json=body)


async def test_keyset_pages_follow_next_cursor_and_send_every_filter_again() -> None:
    requests: list[httpx.Request] = []
    everything = [active(n) for n in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return keyset("markets", everything, request)

    found = await client(handler).markets(MarketQuery(slugs=("market-1", "market-3"), tag_id="21", page_size=2))
    assert [d.market.slug for d in found.markets] == ["market-1", "market-3"]
    assert (found.complete, found.pages, found.paging) == (True, 3, "keyset")
    assert [r.url.path for r in requests] == ["/markets/keyset"] * 3
    assert [r.url.params.get("after_cursor") for r in requests] == [None, "c2", "c4"]
    for request in requests:
        params = request.url.params
        assert params.get_list("slug") == ["market-1", "market-3"]
        assert (params["tag_id"], params["closed"], params["limit"]) == ("21", "false", "2")
        assert not {"active", "offset", "cursor"} & set(params)  # keyset takes no active, no offset; cursor= is ignored


async def test_a_gamma_without_keyset_is_read_by_offset_with_the_legacy_filters() -> None:
    requests: list[httpx.Request] = []
    everything = [active(n) for n in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path.endswith("/keyset"):
            return httpx.Response(404, json={"error": "not found"})
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json=everything[offset : offset + limit])

    gamma = client(handler)
    found = await gamma.markets(MarketQuery(page_size=2))
    assert len(found.markets) == 5
    assert (found.complete, found.pages, found.paging) == (True, 3, "offset")
    assert [(r.url.path, r.url.params.get("offset")) for r in requests] == [
        ("/markets/keyset", None),
        ("/markets", "0"),
        ("/markets", "2"),
        ("/markets", "4"),
    ]
    assert (requests[1].url.params["active"], requests[1].url.params["closed"]) == ("true", "false")
    await gamma.markets(MarketQuery(page_size=2))  # keyset is asked again each time: Gamma may have gained it
    assert gamma.statistics().keyset_fallbacks == 2
    assert gamma.statistics().paging == "offset"


async def test_a_query_for_closed_markets_too_reads_both_keyset_listings() -> None:
    requests: list[httpx.Request] = []
    listing = [active(1), active(2, closed=True)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        closed = request.url.params["closed"] == "true"
        return keyset("markets", [m for m in listing if m["closed"] is closed], request)

    query = MarketQuery(active_only=False, accepting_orders_only=False, slugs=("market-1", "market-2"))
    found = await client(handler).markets(query)
    assert sorted(d.market.slug for d in found.markets) == ["market-1", "market-2"]
    assert [r.url.params["closed"] for r in requests] == ["false", "true"]


async def test_more_than_100_selector_values_are_asked_in_chunks_of_100() -> None:
    requests: list[httpx.Request] = []
    listing = [active(n) for n in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        wanted = set(request.url.params.get_list("condition_ids"))
        return keyset("markets", [m for m in listing if m["conditionId"] in wanted], request)

    query = MarketQuery(condition_ids=tuple(m["conditionId"] for m in listing))
    found = await client(handler).markets(query)
    assert len(found.markets) == 250
    assert [len(r.url.params.get_list("condition_ids")) for r in requests] == [100, 100, 50]


def test_a_page_size_gamma_would_clamp_is_refused() -> None:
    with pytest.raises(ValueError, match="page_size"):
        MarketQuery(page_size=500)


async def test_a_cursor_that_comes_back_ends_the_listing_incomplete_and_is_warned_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("after_cursor", "c0")[1:])
        return httpx.Response(200, json={"markets": [active(start)], "next_cursor": "c7"})  # always the same

    gamma = client(handler)
    with structlog.testing.capture_logs() as logs:
        first = await gamma.markets(MarketQuery())
        second = await gamma.markets(MarketQuery())
    assert [d.market.slug for d in first.markets] == ["market-0", "market-7"]
    assert (first.complete, first.incomplete_reason and first.incomplete_reason.split(":")[0]) == (
        False,
        "CURSOR_STUCK",
    )
    assert not second.complete
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["gamma_listing_incomplete"]
    assert gamma.statistics().incomplete == {"CURSOR_STUCK": 2}


async def test_the_page_budget_ends_a_listing_incomplete() -> None:
    everything = [active(n) for n in range(7)]
    gamma = client(lambda request: keyset("markets", everything, request))
    found = await gamma.markets(MarketQuery(page_size=2, max_pages=2))
    assert len(found.markets) == 4
    assert (found.complete, found.pages) == (False, 2)
    assert found.incomplete_reason is not None
    assert found.incomplete_reason.startswith("PAGE_LIMIT")


async def test_a_listing_past_the_page_budget_is_warned_once_across_refreshes_and_narrow_lookups() -> None:
    # Arrange: every refresh reads the whole listing (past the budget), then looks up a market it did not reach
    everything = [active(n) for n in range(7)]

    def handler(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get_list("condition_ids")
        items = [m for m in everything if m["conditionId"] in wanted] if wanted else everything
        return keyset("markets", items, request)

    gamma = client(handler)
    whole = MarketQuery(page_size=2, max_pages=2)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):  # three refreshes, a minute apart in the engine
            assert not (await gamma.markets(whole)).complete
            assert (await gamma.markets(replace(whole, condition_ids=(f"0x{6:064x}",)))).complete
    # Assert: said once, with what to do; the narrow lookup being complete does not re-arm it
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["gamma_listing_incomplete"]
    assert "max_pages" in warnings[0]["hint"]
    assert gamma.statistics().incomplete == {"PAGE_LIMIT": 3}


@pytest.mark.parametrize(
    ("keyset_on", "response", "error"),
    [
        (True, httpx.Response(500, text="upstream broke"), VenueRequestError),
        (True, httpx.Response(429, json={"error": "Too Many Requests"}), VenueRequestError),
        (True, httpx.Response(422, json={"type": "validation error", "error": "bad"}), VenueRequestError),
        (True, httpx.Response(200, text="<html>"), VenueProtocolError),
        (True, httpx.Response(200, json=[]), VenueProtocolError),
        (True, httpx.Response(200, json={"items": []}), VenueProtocolError),
        (True, httpx.Response(200, json={"markets": {}}), VenueProtocolError),
        (True, httpx.Response(200, json={"markets": [], "next_cursor": 5}), VenueProtocolError),
        (False, httpx.Response(200, json={"markets": []}), VenueProtocolError),
        (False, httpx.Response(422, json={"type": "validation error", "error": "bad"}), VenueRequestError),
    ],
)
async def test_bad_replies_are_clear_errors(keyset_on: bool, response: httpx.Response, error: type[Exception]) -> None:
    gamma = client(lambda request: response, keyset=keyset_on)
    with pytest.raises(error, match=r"gamma|HTTP"):
        await gamma.markets(MarketQuery())


async def test_a_404_past_the_first_keyset_page_is_an_error_not_a_fallback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "after_cursor" in request.url.params:
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(200, json={"markets": [active(1)], "next_cursor": "c1"})

    with pytest.raises(VenueRequestError, match="404"):
        await client(handler).markets(MarketQuery())


async def test_a_throttled_reply_carries_the_venues_text_and_retry_after() -> None:
    reply = httpx.Response(429, json={"error": "Too Many Requests"}, headers={"Retry-After": "7"})
    with pytest.raises(VenueRequestError) as caught:
        await client(lambda request: reply).markets(MarketQuery())
    assert caught.value.is_throttled
    assert caught.value.retry_after_secs == 7.0
    assert caught.value.message == "Too Many Requests"


async def test_transport_failures_are_venue_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(VenueConnectionError):
        await client(handler).markets(MarketQuery())


# ----------------------------------------------------------------------------------------------------------------
# missing ticks


def untick(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "orderPriceMinTickSize"}


async def test_a_selected_market_without_a_tick_takes_it_from_the_clob_and_one_it_cannot_tell_is_skipped() -> None:
    listing = [active(1), untick(active(2)), untick(active(3)), untick(active(4, closed=True))]
    asked: list[str] = []

    async def tick_size(token_id: str) -> Decimal:
        asked.append(token_id)
        if token_id == str(10**70 + 6):  # market 3's YES token
            raise VenueRequestError.from_reply(404, "No orderbook exists for the requested token id")
        return D("0.001")

    gamma = client(lambda request: keyset("markets", listing, request), tick_size=tick_size)
    found = await gamma.markets(MarketQuery())
    assert [(d.market.slug, d.market.tick_size) for d in found.markets] == [
        ("market-1", D("0.01")),
        ("market-2", D("0.001")),
    ]
    assert [(name, reason.split(":")[0]) for name, reason in found.skipped] == [
        ("market-4", "CLOSED"),  # filtered out before any lookup
        ("market-3", "TICK_SIZE_UNKNOWN"),
    ]
    assert sorted(asked) == [str(10**70 + 4), str(10**70 + 6)]
    stats = gamma.statistics()
    assert (stats.tick_lookups, stats.tick_lookup_failures) == (2, 1)
    await gamma.markets(MarketQuery())
    assert sorted(asked) == [str(10**70 + 4), str(10**70 + 6), str(10**70 + 6)]  # a known tick is not asked again


async def test_without_a_clob_a_market_without_a_tick_is_skipped_by_reason() -> None:
    gamma = client(lambda request: keyset("markets", [untick(active(1))], request))
    found = await gamma.markets(MarketQuery())
    assert found.markets == []
    assert [reason.split(":")[0] for _, reason in found.skipped] == ["TICK_SIZE_UNKNOWN"]


# ----------------------------------------------------------------------------------------------------------------
# neg-risk events


def neg_risk_member(n: int, **extra: Any) -> dict[str, Any]:
    return active(n, negRisk=True, negRiskMarketID="0xnr", **extra)


def events_handler(events: list[Any], requests: list[httpx.Request] | None = None) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(request)
        return keyset("events", events, request)

    return handler


@pytest.mark.parametrize(
    ("event_extra", "members", "complete"),
    [
        ({}, [neg_risk_member(1), neg_risk_member(2), neg_risk_member(3)], True),
        ({"negRiskAugmented": True}, [neg_risk_member(1), neg_risk_member(2), neg_risk_member(3)], False),
        ({}, [neg_risk_member(1), neg_risk_member(2), neg_risk_member(3, clobTokenIds="[]")], False),
        ({}, [neg_risk_member(1), neg_risk_member(2), neg_risk_member(3, closed=True)], False),
        # a market listed twice: the event is still read (it raised InputError), but which listing is right is unknown
        ({}, [neg_risk_member(1), neg_risk_member(2), neg_risk_member(2, question="Other?")], False),
    ],
)
async def test_neg_risk_events_know_when_their_outcome_set_is_incomplete(
    event_extra: dict[str, Any], members: list[dict[str, Any]], complete: bool
) -> None:
    event = {"id": "77", "title": "Who wins?", "negRisk": True, "markets": members} | event_extra
    requests: list[httpx.Request] = []
    plain = {"id": "78", "title": "plain", "negRisk": False, "markets": []}
    gamma = client(events_handler([event, plain], requests))
    found = select_markets([neg_risk_member(1, events=[{"id": "77"}])], MarketQuery())
    events = await gamma.neg_risk_events(found.markets)
    assert requests[0].url.path == "/events/keyset"
    assert requests[0].url.params.get_list("id") == ["77"]
    assert requests[0].url.params["closed"] == "false"  # legacy /events was seen defaulting to closed events
    assert len(events) == 1
    assert events[0].event_id == "77"
    assert events[0].is_complete is complete


async def test_one_bad_event_or_nested_market_never_refuses_the_other_events() -> None:
    good = {"id": "1", "title": "Good", "negRisk": True, "markets": [neg_risk_member(1), neg_risk_member(2)]}
    nameless = {"title": "no id", "negRisk": True, "markets": [neg_risk_member(3)]}  # not an event: dropped
    broken = {"id": "2", "title": "Broken", "negRisk": True, "markets": [neg_risk_member(4), {"conditionId": "0x5"}]}
    untickable = {"id": "3", "title": "No tick", "negRisk": True, "markets": [untick(neg_risk_member(6))]}
    gamma = client(events_handler([nameless, good, broken, "junk", untickable]))
    with structlog.testing.capture_logs() as logs:
        events = {e.event_id: e for e in await gamma.events(["1", "2", "3"])}
    assert events["1"].is_complete
    assert len(events["2"].markets) == 1
    assert not events["2"].is_complete  # one of its outcomes could not be read
    assert (events["3"].markets, events["3"].is_complete) == ((), False)
    assert gamma.statistics().dropped == {"BAD_EVENT": 2, "BAD_FIELD": 1, "TICK_SIZE_UNKNOWN": 1}
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]  # nothing a person has to act on


async def test_a_nested_market_without_a_tick_takes_it_from_discovery_or_the_clob() -> None:
    members = [untick(neg_risk_member(1)), untick(neg_risk_member(2)), neg_risk_member(3)]
    event = {"id": "77", "title": "Who wins?", "negRisk": True, "markets": members}
    asked: list[str] = []

    async def tick_size(token_id: str) -> Decimal:
        asked.append(token_id)
        return D("0.001")

    gamma = client(events_handler([event]), tick_size=tick_size)
    discovered = select_markets([neg_risk_member(1, events=[{"id": "77"}], orderPriceMinTickSize=0.1)], MarketQuery())
    (grouped,) = await gamma.neg_risk_events(discovered.markets)
    assert grouped.is_complete
    assert [m.tick_size for m in grouped.markets] == [D("0.1"), D("0.001"), D("0.01")]
    assert asked == [str(10**70 + 4)]  # market 1's tick was known from discovery


async def test_the_event_lookup_asks_at_most_100_ids_a_request_and_warns_of_nothing() -> None:
    requests: list[httpx.Request] = []
    events = [{"id": str(n), "title": "E", "negRisk": True, "markets": [neg_risk_member(n)]} for n in range(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        wanted = set(request.url.params.get_list("id"))
        return keyset("events", [e for e in events if e["id"] in wanted], request)

    with structlog.testing.capture_logs() as logs:
        found = await client(handler).events(str(n) for n in range(150))
    assert len(found) == 150
    assert [len(r.url.params.get_list("id")) for r in requests] == [100, 50]
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]  # no "page limit" warning any more


async def test_no_neg_risk_markets_no_request() -> None:
    gamma = client(lambda request: pytest.fail("no request expected"))
    assert await gamma.neg_risk_events([]) == []


# ----------------------------------------------------------------------------------------------------------------
# periodic refresh on MockClock


class RecordingTracker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []

    def track(self, market: Market) -> None:
        self.calls.append(("track", market.slug, trio.current_time()))

    def untrack(self, condition_id: str) -> None:
        self.calls.append(("untrack", condition_id, trio.current_time()))


def markets_reply(*items: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"markets": list(items)})


async def test_refresh_picks_up_new_and_closed_markets_without_a_restart(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    replies: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(503, text="down"),  # t=0: Gamma is down; the service waits
        lambda: markets_reply(active(1), active(2)),  # t=60
        lambda: markets_reply(active(2), active(1, closed=True), active(3)),  # t=120
        lambda: httpx.Response(200, text="garbage"),  # t=180: keep what we have
        lambda: markets_reply(active(3)),  # t=240
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return replies.pop(0)() if replies else markets_reply(active(3))

    tracker = RecordingTracker()
    stats = RefreshStatistics()
    found = await nursery.start(
        lambda task_status: run_market_refresh(
            client(handler), MarketQuery(), tracker, period_secs=60, stats=stats, task_status=task_status
        )
    )
    assert trio.current_time() == 60
    assert [d.market.slug for d in found.markets] == ["market-1", "market-2"]
    await trio.sleep(200)
    assert tracker.calls == [
        ("track", "market-1", 60),
        ("track", "market-2", 60),
        ("untrack", f"0x{1:064x}", 120),
        ("track", "market-3", 120),
        ("untrack", f"0x{2:064x}", 240),
    ]
    assert (stats.refreshes, stats.failures, stats.added, stats.removed) == (3, 2, 3, 2)
    assert stats.last_error is not None
    assert "not JSON" in stats.last_error
    assert (stats.found, stats.complete, stats.paging, stats.skipped) == (1, True, "keyset", {})


async def test_an_announced_market_is_looked_up_at_once_not_at_the_next_refresh(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    listed = [active(1)]
    asked_by_id: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get_list("condition_ids")
        if wanted:
            asked_by_id.append(wanted)
            return markets_reply(*(m for m in listed if m["conditionId"] in wanted))
        return markets_reply(*listed)

    tracker = RecordingTracker()
    stats = RefreshStatistics()
    announcements = Announcements()
    await nursery.start(
        lambda task_status: run_market_refresh(
            client(handler),
            MarketQuery(),
            tracker,
            period_secs=60,
            stats=stats,
            announcements=announcements,
            task_status=task_status,
        )
    )
    await trio.sleep(5)
    listed.extend([active(2), active(3, closed=True)])
    announcements.announce(f"0x{2:064x}")
    announcements.announce(f"0x{3:064x}")  # announced, but the query does not select it (closed)
    announcements.announce(f"0x{1:064x}")  # already followed: not asked again
    await trio.sleep(1)
    assert tracker.calls == [("track", "market-1", 0), ("track", "market-2", 5)]  # at 5 s, not at 60
    assert asked_by_id == [[f"0x{2:064x}", f"0x{3:064x}"]]
    assert (stats.announced, stats.announced_added, stats.added) == (2, 1, 2)
    await trio.sleep(60)  # the periodic refresh still comes on its grid, and finds nothing more
    assert stats.refreshes == 2
    assert tracker.calls == [("track", "market-1", 0), ("track", "market-2", 5)]


async def test_announcements_never_widen_a_query_narrowed_to_condition_ids(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    asked_by_id: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked_by_id.append(request.url.params.get_list("condition_ids"))
        return markets_reply(active(1))

    announcements = Announcements()
    await nursery.start(
        lambda task_status: run_market_refresh(
            client(handler),
            MarketQuery(condition_ids=(f"0x{1:064x}",)),
            RecordingTracker(),
            period_secs=60,
            announcements=announcements,
            task_status=task_status,
        )
    )
    announcements.announce(f"0x{2:064x}")
    await trio.sleep(1)
    assert asked_by_id == [[f"0x{1:064x}"]]  # the first refresh only: market 2 is outside the selection


async def test_an_incomplete_refresh_adds_what_it_found_and_removes_only_what_gamma_says_is_gone(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    listings = [
        [markets_reply(active(1), active(2))],  # t=0: complete
        [  # t=60: a cursor that comes back: the listing is incomplete, market 3 new, 1 and 2 not reached
            httpx.Response(200, json={"markets": [active(3)], "next_cursor": "c1"}),
            httpx.Response(200, json={"markets": [], "next_cursor": "c1"}),
        ],
    ]
    asked_by_id: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get_list("condition_ids")
        if wanted:  # the unreached tracked markets, by id: market 2 has closed meanwhile
            asked_by_id.append(wanted)
            return markets_reply(*(m for m in (active(1),) if m["conditionId"] in wanted))
        if listings and listings[0]:
            reply = listings[0].pop(0)
            if not listings[0]:
                listings.pop(0)
            return reply
        return httpx.Response(200, json={"markets": [], "next_cursor": "c1"})

    tracker = RecordingTracker()
    stats = RefreshStatistics()
    await nursery.start(
        lambda task_status: run_market_refresh(
            client(handler), MarketQuery(), tracker, period_secs=60, stats=stats, task_status=task_status
        )
    )
    await trio.sleep(61)
    assert [call[:2] for call in tracker.calls] == [
        ("track", "market-1"),
        ("track", "market-2"),
        ("untrack", f"0x{2:064x}"),  # gone when asked by id
        ("track", "market-3"),
    ]
    assert asked_by_id == [[f"0x{1:064x}", f"0x{2:064x}"]]
    assert (stats.complete, stats.found, stats.removed) == (False, 1, 1)
    assert stats.incomplete_reason is not None
    assert stats.incomplete_reason.startswith("CURSOR_STUCK")
