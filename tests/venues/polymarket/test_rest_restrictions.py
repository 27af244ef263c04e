"""The REST client's side of the venue's trading restrictions and per-signer rate limits (protocol.md §11 items 3-5),
against httpx.MockTransport: 425 and the restriction 503s are raised with their own codes (never "would cross" or an
unknown error), every reply's rate-limit headers are reported, the account endpoints are read, the 1000-id cap holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.venues.polymarket.test_rest import CREDS, KEY, NOW, Venue, reply, signed_order
from trader.domain.enums import OrderType
from trader.errors import InputError
from trader.venues.base import MAX_CANCEL_IDS, RateLimitReport
from trader.venues.errors import TradingRestriction, VenueRejectCode, VenueRequestError
from trader.venues.polymarket.rest import OrderRefused, PolymarketRestClient, open_rest_client, rate_limit_report
from trader.venues.polymarket.signing import OrderSigner


@pytest.fixture
def venue() -> Venue:
    return Venue()


@pytest.fixture
async def rest(venue: Venue) -> AsyncIterator[PolymarketRestClient]:
    async with open_rest_client(
        "http://clob.test", OrderSigner(KEY), CREDS, transport=httpx.MockTransport(venue), wall_secs=lambda: NOW
    ) as client:
        yield client


POST_ONLY_TEXT = "Trading is currently post-only: only post-only orders are accepted, cancels are allowed."


async def test_425_on_a_placement_is_a_restart_not_a_refusal_of_the_order(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on("POST", "/order", reply(425, {"error": "the matching engine is restarting"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.code is VenueRejectCode.ENGINE_RESTARTING
    assert info.value.restriction is TradingRestriction.RESTARTING
    assert info.value.retryable
    assert not info.value.is_server_error
    assert rest.statistics().early == 1


async def test_425_with_any_text_or_none_is_a_restart(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("DELETE", "/order", reply(425, "Too Early"))
    with pytest.raises(VenueRequestError) as info:
        await rest.cancel("0x01")
    assert info.value.restriction is TradingRestriction.RESTARTING


async def test_the_post_only_window_is_its_own_code_not_would_cross(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("POST", "/order", reply(503, {"error": "not accepted", "code": "post_only_mode"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.code is VenueRejectCode.POST_ONLY_MODE
    assert info.value.restriction is TradingRestriction.POST_ONLY
    venue.on("POST", "/order", reply(503, {"error": POST_ONLY_TEXT}))  # the text alone says it too
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.code is VenueRejectCode.POST_ONLY_MODE
    # while a post-only order that would cross keeps its own code
    venue.on("POST", "/order", reply(400, {"error": "invalid post-only order: order crosses book"}))
    refused = await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC, post_only=True)
    assert isinstance(refused, OrderRefused)
    assert refused.code is VenueRejectCode.POST_ONLY_WOULD_CROSS


async def test_a_plain_503_is_still_a_server_error(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("POST", "/order", reply(503, {"error": "Service Unavailable", "code": "something_else"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.code is VenueRejectCode.SERVER_ERROR
    assert info.value.restriction is None
    assert info.value.is_server_error


async def test_closed_only_refusal_is_a_value_with_its_code(rest: PolymarketRestClient, venue: Venue) -> None:
    address = rest.signer.address
    venue.on("POST", "/order", reply(400, {"error": f"'{address}' address in closed only mode"}))
    refused = await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert isinstance(refused, OrderRefused)
    assert refused.code is VenueRejectCode.CLOSED_ONLY


async def test_rate_limit_headers_are_reported_on_every_reply(rest: PolymarketRestClient, venue: Venue) -> None:
    reports: list[RateLimitReport] = []
    rest.add_rate_limit_listener(reports.append)
    headers = {
        "Poly-RateLimit-Remaining": "-3",
        "Poly-RateLimit-Reset": "1767225601",
        "Poly-RateLimit-Tier": "standard",
        "Poly-RateLimit-Warning": "true",
    }
    venue.on("DELETE", "/orders", reply(200, {"canceled": [], "not_canceled": {}}, headers))
    await rest.cancel_orders(["0x01", "0x02"])
    venue.on("POST", "/order", reply(429, "Too Many Requests", {"Retry-After": "2", "Poly-RateLimit-Remaining": "0"}))
    with pytest.raises(VenueRequestError):
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    venue.on("GET", "/data/orders", reply(200, {"data": [], "next_cursor": "LTE="}))
    await rest.open_orders()  # no headers: nothing reported
    assert reports == [
        RateLimitReport(
            endpoint="DELETE /orders", status=200, remaining=-3.0, reset_at=1767225601.0, tier="standard", warning=True
        ),
        RateLimitReport(endpoint="POST /order", status=429, remaining=0.0, retry_after_secs=2.0),
    ]
    assert rest.statistics().rate_limit_reports == 2


def test_unreadable_rate_limit_headers_are_dropped_and_counted() -> None:
    bad = reply(
        200,
        {},
        {
            "Poly-RateLimit-Remaining": "lots",
            "Poly-RateLimit-Reset": "-5",
            "Poly-RateLimit-Tier": "gold; drop table",
            "Retry-After": "soon",
        },
    )
    report, dropped = rate_limit_report("POST /order", bad)
    assert (report, dropped) == (None, 4)
    partly = reply(200, {}, {"Poly-RateLimit-Remaining": "nan", "Poly-RateLimit-Tier": "Gold"})
    report, dropped = rate_limit_report("POST /order", partly)
    assert report == RateLimitReport(endpoint="POST /order", status=200, tier="Gold")
    assert dropped == 1


async def test_the_account_endpoints(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("GET", "/auth/ban-status/closed-only", reply(200, {"closed_only": True}))
    assert await rest.closed_only() is True
    venue.on("GET", "/v1/user/rate-limit-tier", reply(200, {"tier": "Gold"}))
    assert await rest.rate_limit_tier() == "Gold"
    venue.on("GET", "/v1/user/rate-limit-tier", reply(200, '"silver"'))  # a bare JSON string
    assert await rest.rate_limit_tier() == "silver"
    venue.on("GET", "/v1/user/rate-limit-tier", reply(200, {"limits": {}}))
    assert await rest.rate_limit_tier() is None  # said nothing readable: the caller keeps what it assumed
    request = venue.requests[0]
    assert request.headers["POLY_API_KEY"]  # L2


async def test_more_than_1000_ids_in_one_cancel_is_refused_before_sending(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    with pytest.raises(InputError, match="1000"):
        await rest.cancel_orders([f"0x{n:064x}" for n in range(MAX_CANCEL_IDS + 1)])
    assert venue.requests == []
