"""Gamma discovery: captured replies -> Markets, selection, neg-risk events, bad replies, periodic refresh."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from trader.domain.market import NO_FEES, FeeSchedule, Market
from trader.errors import InputError
from trader.venues.errors import VenueConnectionError, VenueProtocolError, VenueRequestError
from trader.venues.polymarket.gamma import (
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
    assert sorted(reason.split(":")[0] for _, reason in result.skipped) == sorted(
        ["BAD_FIELD", "BAD_FIELD", "CLOSED", "CLOSED", "CLOSED", "CLOSED"]
    )


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
# the client over httpx.MockTransport


def client(handler: Callable[[httpx.Request], httpx.Response]) -> GammaClient:
    return GammaClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), "https://gamma.test/")


async def test_queries_go_to_markets_with_the_selectors_and_pages() -> None:
    requests: list[httpx.Request] = []
    everything = [active(n) for n in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json=everything[offset : offset + limit])

    gamma = client(handler)
    found = await gamma.markets(MarketQuery(slugs=("market-1", "market-3"), tag_id="21", page_size=2))
    assert [d.market.slug for d in found.markets] == ["market-1", "market-3"]
    assert len(requests) == 3
    assert requests[0].url.path == "/markets"
    params = requests[0].url.params
    assert params.get_list("slug") == ["market-1", "market-3"]
    assert (params["tag_id"], params["active"], params["closed"]) == ("21", "true", "false")
    assert [r.url.params["offset"] for r in requests] == ["0", "2", "4"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(500, text="upstream broke"), VenueRequestError),
        (httpx.Response(429, json={"error": "Too Many Requests"}), VenueRequestError),
        (httpx.Response(200, text="<html>"), VenueProtocolError),
        (httpx.Response(200, json={"markets": []}), VenueProtocolError),
    ],
)
async def test_bad_replies_are_clear_errors(response: httpx.Response, error: type[Exception]) -> None:
    gamma = client(lambda request: response)
    with pytest.raises(error, match=r"gamma|HTTP"):
        await gamma.markets(MarketQuery())


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


def neg_risk_member(n: int, **extra: Any) -> dict[str, Any]:
    return active(n, negRisk=True, negRiskMarketID="0xnr", **extra)


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

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=[event, {"id": "78", "title": "plain", "negRisk": False, "markets": []}])

    gamma = client(handler)
    found = select_markets([neg_risk_member(1, events=[{"id": "77"}])], MarketQuery())
    events = await gamma.neg_risk_events(found.markets)
    assert requests[0].url.path == "/events"
    assert requests[0].url.params.get_list("id") == ["77"]
    assert len(events) == 1
    assert events[0].event_id == "77"
    assert events[0].is_complete is complete


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


async def test_refresh_picks_up_new_and_closed_markets_without_a_restart(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    replies: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(503, text="down"),  # t=0: Gamma is down; the service waits
        lambda: httpx.Response(200, json=[active(1), active(2)]),  # t=60
        lambda: httpx.Response(200, json=[active(2), active(1, closed=True), active(3)]),  # t=120
        lambda: httpx.Response(200, text="garbage"),  # t=180: keep what we have
        lambda: httpx.Response(200, json=[active(3)]),  # t=240
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return replies.pop(0)() if replies else httpx.Response(200, json=[active(3)])

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
