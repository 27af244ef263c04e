"""Hypothesis: whatever bytes Gamma answers, with whatever status, on the keyset endpoints (the body wrapped in
`{"markets"|"events": ...}`) or the legacy ones, `GammaClient.markets` returns a `Discovery` (each unreadable market
skipped with its reason) and `.events` the neg-risk events (each unreadable one dropped), or they raise the
documented `VenueProtocolError` (the reply is not the expected JSON) / `VenueRequestError` (an error status).
Nothing else escapes."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzzing import captured_glob, inputs
from trader.domain.market import NegRiskEvent
from trader.venues.errors import VenueProtocolError, VenueRequestError
from trader.venues.polymarket.gamma import Discovery, GammaClient, MarketQuery

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")

MARKETS = captured_glob("gamma_market*.json")
MARKET_LISTS = [b"[" + b",".join(MARKETS) + b"]", *(b"[" + market + b"]" for market in MARKETS)]
EVENT_LISTS = [
    json.dumps(
        [{"id": "e-1", "title": "Who wins?", "negRisk": True, "markets": [json.loads(a), json.loads(b)]}]
    ).encode()
    for a, b in itertools.pairwise(MARKETS)
]
SKIP_REASONS = {"BAD_FIELD", "FEE_SCHEDULE_MISSING", "NOT_A_BINARY_ORDER_BOOK", "CLOSED", "INACTIVE"}
SKIP_REASONS |= {"NOT_ACCEPTING_ORDERS", "BELOW_MIN_LIQUIDITY", "OTHER_CATEGORY", "OTHER_SLUG"}
SKIP_REASONS |= {"OTHER_CONDITION_ID", "OTHER_TOKEN_ID", "TICK_SIZE_UNKNOWN"}


def answer(events: bool, status: int, body: bytes, keyset: bool = False) -> Discovery | list[NegRiskEvent]:
    """`body` as the reply to every request: wrapped as a keyset page when `keyset`, else on the legacy paths
    (the keyset ones answer 404)."""
    key = b"events" if events else b"markets"

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/keyset"):
            if not keyset:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(status, content=b'{"' + key + b'": ' + body + b"}")
        return httpx.Response(status, content=body)

    async def run() -> Discovery | list[NegRiskEvent]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
            gamma = GammaClient(http, "http://gamma.test")
            return await gamma.events(["e-1"]) if events else await gamma.markets(MarketQuery(max_pages=1))

    return trio.run(run)


@st.composite
def replies(draw: st.DrawFn) -> tuple[bool, int, bytes, bool]:
    events = draw(st.booleans())
    status = draw(st.sampled_from((200, 200, 200, 400, 422, 429, 500)))
    return events, status, draw(inputs(EVENT_LISTS if events else MARKET_LISTS)), draw(st.booleans())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
@example((False, 200, b'"\x80"', False))
@example((False, 200, b'[{"slug": "\xff"}]', True))
@example((True, 200, EVENT_LISTS[0].replace(b"[{", b"[" * 3000 + b"{", 1), True))
def test_any_reply_is_markets_with_reasons_or_a_documented_error(reply: tuple[bool, int, bytes, bool]) -> None:
    try:
        found = answer(*reply)
    except (VenueProtocolError, VenueRequestError):
        return
    if isinstance(found, Discovery):
        assert {reason.split(":")[0] for _, reason in found.skipped} <= SKIP_REASONS
    else:
        assert all(isinstance(event, NegRiskEvent) for event in found)


@pytest.mark.parametrize("keyset", [False, True])
@pytest.mark.parametrize("body", [b'["\x80"]', b'[{"slug": "\xff"}]', b"[" * 20_000, b"[{"])
def test_a_reply_that_is_not_utf8_json_is_a_protocol_error(body: bytes, keyset: bool) -> None:
    where = "/markets/keyset" if keyset else "/markets"
    with pytest.raises(VenueProtocolError, match=f"gamma {where}: reply is not JSON"):
        answer(False, 200, body, keyset)


@pytest.mark.parametrize("keyset", [False, True])
def test_a_market_whose_outcomes_nest_too_deeply_is_skipped_by_field(keyset: bool) -> None:
    market = json.loads(MARKETS[0])
    market["outcomes"] = "[" * 5000 + "]" * 5000

    found = answer(False, 200, json.dumps([market]).encode(), keyset)

    assert isinstance(found, Discovery)
    ((_, reason),) = found.skipped
    assert reason.startswith("NOT_A_BINARY_ORDER_BOOK: outcomes: is not a JSON-encoded list")
