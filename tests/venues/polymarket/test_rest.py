"""The REST client against httpx.MockTransport serving the captured replies: signing, parsing, error mapping."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.base import VenueOrderStatus
from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueProtocolError,
    VenueRejectCode,
    VenueRequestError,
    VenueTimeout,
)
from trader.venues.polymarket.auth import ApiCredentials, verify_l1_headers, verify_l2_signature
from trader.venues.polymarket.rest import (
    AssetType,
    OrderPlaced,
    OrderRefused,
    PolymarketRestClient,
    open_rest_client,
    parse_order,
    parse_timestamp,
    parse_trade,
)
from trader.venues.polymarket.signing import OrderSigner, SignedOrder
from trader.venues.polymarket.user_schemas import WireOpenOrder, WireTrade

CAPTURED = Path(__file__).parents[2] / "fixtures" / "polymarket" / "captured"
D = Decimal
KEY = "0x" + "4c" * 32
CREDS = ApiCredentials(
    "00000000-0000-0000-0000-000000000001", base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase"
)
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NOW = 1_767_225_600


def captured(name: str) -> bytes:
    return (CAPTURED / name).read_bytes()


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Venue:
    """A scripted venue: `replies[(method, path)]` is a list of responses served in turn (the last one repeats)."""

    replies: dict[tuple[str, str], list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    error: Exception | None = None

    def on(self, method: str, path: str, *responses: httpx.Response) -> None:
        self.replies[(method, path)] = list(responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        queue = self.replies[(request.method, request.url.path)]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def reply(status: int, content: bytes | str | object, headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(content, bytes | str):
        return httpx.Response(status, content=content, headers=headers)
    return httpx.Response(status, json=content, headers=headers)


@pytest.fixture
def venue() -> Venue:
    return Venue()


@pytest.fixture
async def rest(venue: Venue) -> AsyncIterator[PolymarketRestClient]:
    async with open_rest_client(
        "http://clob.test", OrderSigner(KEY), CREDS, transport=httpx.MockTransport(venue), wall_secs=lambda: NOW
    ) as client:
        yield client


def signed_order(signer: OrderSigner) -> SignedOrder:
    return signer.limit_order_with_id(
        token_id=YES, side=Side.BUY, price=D("0.5"), size=D("10"), tick_size=D("0.01"), neg_risk=False, salt=7
    )[0]


def assert_l2_signed(request: httpx.Request) -> None:
    """The HMAC covers the path WITHOUT the query string and exactly the bytes sent."""
    headers = request.headers
    assert headers["POLY_API_KEY"] == CREDS.api_key
    assert headers["POLY_TIMESTAMP"] == str(NOW)
    assert verify_l2_signature(
        CREDS.secret,
        headers["POLY_SIGNATURE"],
        timestamp=headers["POLY_TIMESTAMP"],
        method=request.method,
        request_path=request.url.path,
        body=request.content.decode(),
        accept_py_quote_quirk=False,
    )


# -- orders ---------------------------------------------------------------------------------------------------


async def test_post_order_sends_the_signed_bytes_and_parses_the_captured_ok(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on("POST", "/order", reply(200, captured("http_order_response_ok.json")))
    order = signed_order(rest.signer)

    result = await rest.post_order(order, order_type=OrderType.GTC)

    assert result == OrderPlaced(
        order_id="0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef12", status="live"
    )
    (request,) = venue.requests
    assert request.content.decode() == rest.order_body(order, order_type=OrderType.GTC)
    body = json.loads(request.content)
    assert body["owner"] == CREDS.api_key
    assert body["orderType"] == "GTC"
    assert body["order"]["salt"] == 7
    assert_l2_signed(request)


@pytest.mark.parametrize(
    ("status", "content", "code"),
    [
        (200, captured("http_order_response_failed.json"), VenueRejectCode.NOT_ENOUGH_BALANCE),
        (
            400,
            {"error": "INVALID_ORDER_MIN_TICK_SIZE: Price breaks minimum tick size rules"},
            VenueRejectCode.MIN_TICK_SIZE,
        ),
        (400, {"success": False, "errorMsg": "INVALID_POST_ONLY_ORDER"}, VenueRejectCode.POST_ONLY_WOULD_CROSS),
        (400, "order_version_mismatch", VenueRejectCode.ORDER_VERSION_MISMATCH),
    ],
)
async def test_a_refused_order_is_a_value_with_a_stable_code(
    rest: PolymarketRestClient, venue: Venue, status: int, content: object, code: VenueRejectCode
) -> None:
    venue.on("POST", "/order", reply(status, content))
    result = await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert isinstance(result, OrderRefused)
    assert result.code is code
    assert result.http_status == status
    assert result.message


async def test_batch_posts_one_array_and_returns_one_result_per_order(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on(
        "POST",
        "/orders",
        reply(
            200,
            [
                {
                    "success": True,
                    "orderID": "0xa",
                    "status": "matched",
                    "makingAmount": "5",
                    "takingAmount": "10",
                    "tradeIDs": ["t1"],
                },
                {"success": False, "orderID": "0xb", "errorMsg": "not enough balance / allowance"},
            ],
        ),
    )
    order = signed_order(rest.signer)

    results = await rest.post_orders([(order, OrderType.GTC), (order, OrderType.FOK)])

    assert results == [
        OrderPlaced(order_id="0xa", status="matched", making_amount=D(5), taking_amount=D(10), trade_ids=("t1",)),
        OrderRefused(order_id="0xb", code=VenueRejectCode.NOT_ENOUGH_BALANCE, message="not enough balance / allowance"),
    ]
    (request,) = venue.requests
    assert [e["orderType"] for e in json.loads(request.content)] == ["GTC", "FOK"]
    assert_l2_signed(request)
    with pytest.raises(InputError, match="at most 15"):
        await rest.post_orders([(order, OrderType.GTC)] * 16)


#: The venue's refusal texts (protocol.md §4, §11; the sim's, from the same sources) and their codes.
VENUE_REFUSALS = [
    ("order couldn't be fully filled. FOK orders are fully filled or killed.", VenueRejectCode.FOK_NOT_FILLED),
    ("FOK_ORDER_NOT_FILLED_ERROR", VenueRejectCode.FOK_NOT_FILLED),
    ("no orders found to match with FAK order", VenueRejectCode.FOK_NOT_FILLED),
    ("not enough balance / allowance", VenueRejectCode.NOT_ENOUGH_BALANCE),
    ("order is invalid. Price breaks minimum tick size rules", VenueRejectCode.MIN_TICK_SIZE),
    ("order is invalid. Size lower than the minimum", VenueRejectCode.MIN_SIZE),
    ("INVALID_POST_ONLY_ORDER", VenueRejectCode.POST_ONLY_WOULD_CROSS),
    ("invalid expiration", VenueRejectCode.INVALID_EXPIRATION),
    ("the market is not yet ready to process new orders", VenueRejectCode.MARKET_NOT_READY),
    ("could not run the execution", VenueRejectCode.EXECUTION_ERROR),
    ("error delaying the order", VenueRejectCode.DELAYING_ORDER_ERROR),
    (
        "order is invalid. Duplicated. Same order has already been placed, can\u2019t be placed again",
        VenueRejectCode.DUPLICATED,
    ),
    ("MARKET_NOT_READY", VenueRejectCode.MARKET_NOT_READY),
    ("order_version_mismatch", VenueRejectCode.ORDER_VERSION_MISMATCH),
    ("invalid amounts", VenueRejectCode.INVALID_AMOUNTS),
]


@pytest.mark.parametrize(("text", "code"), VENUE_REFUSALS)
async def test_a_refusal_has_the_same_code_alone_and_in_a_batch(
    rest: PolymarketRestClient, venue: Venue, text: str, code: VenueRejectCode
) -> None:
    """Alone, the venue answers a refused order 400 {"error": text}; in a batch, 200 with that order's element
    {"success": false, "errorMsg": text} next to the others'."""
    venue.on("POST", "/order", reply(400, {"error": text}))
    venue.on("POST", "/orders", reply(200, [{"success": True, "orderID": "0xa"}, {"success": False, "errorMsg": text}]))
    order = signed_order(rest.signer)

    alone = await rest.post_order(order, order_type=OrderType.FOK)
    placed, in_batch = await rest.post_orders([(order, OrderType.GTC), (order, OrderType.FOK)])

    assert isinstance(alone, OrderRefused)
    assert isinstance(in_batch, OrderRefused)
    assert alone.code is in_batch.code is code
    assert alone.message == in_batch.message == text
    assert isinstance(placed, OrderPlaced)


FOK_KILLED_DOCS = "order couldn\u2019t be fully filled, FOK orders are fully filled/killed"  # the batch docs' text


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        # the docs' batch table lists the refusal texts with success "yes": the text decides, not the flag
        ({"success": True, "errorMsg": FOK_KILLED_DOCS}, VenueRejectCode.FOK_NOT_FILLED),
        (
            {"success": True, "orderID": "0xb", "status": "", "errorMsg": FOK_KILLED_DOCS},
            VenueRejectCode.FOK_NOT_FILLED,
        ),
        ({"success": False, "orderID": "0xb", "errorMsg": FOK_KILLED_DOCS}, VenueRejectCode.FOK_NOT_FILLED),
        # a placement may carry a text: a delayed match is still a placement
        (
            {"success": True, "orderID": "0xb", "status": "delayed", "errorMsg": "order match delayed"},
            OrderPlaced(order_id="0xb", status="delayed"),
        ),
    ],
)
async def test_a_batch_element_is_refused_by_its_text_and_placed_by_its_status(
    rest: PolymarketRestClient, venue: Venue, element: dict[str, object], expected: object
) -> None:
    venue.on("POST", "/orders", reply(200, [{"success": True, "orderID": "0xa"}, element]))
    order = signed_order(rest.signer)

    _, result = await rest.post_orders([(order, OrderType.GTC), (order, OrderType.FOK)])

    if isinstance(expected, VenueRejectCode):
        assert isinstance(result, OrderRefused)
        assert result.code is expected
        assert result.order_id == element.get("orderID")
    else:
        assert result == expected


async def test_success_without_an_order_id_or_a_text_is_a_protocol_error(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on("POST", "/order", reply(200, {"success": True, "errorMsg": ""}))
    with pytest.raises(VenueProtocolError, match="success without an orderID"):
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)


async def test_a_batch_answering_the_wrong_number_of_results_is_a_protocol_error(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on("POST", "/orders", reply(200, [{"success": True, "orderID": "0xa"}]))
    order = signed_order(rest.signer)
    with pytest.raises(VenueProtocolError, match="1 results for 2 orders"):
        await rest.post_orders([(order, OrderType.GTC)] * 2)


# -- HTTP errors: 429 / 5xx / 4xx are distinct --------------------------------------------------------------------


async def test_429_is_throttled_and_carries_retry_after(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("POST", "/order", reply(429, "Too Many Requests", {"Retry-After": "2.5"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.is_throttled
    assert info.value.retryable
    assert not info.value.is_server_error
    assert info.value.retry_after_secs == 2.5
    assert info.value.code is VenueRejectCode.RATE_LIMITED
    assert rest.statistics().throttled == 1


async def test_5xx_is_a_retryable_server_error(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("DELETE", "/cancel-all", reply(500, captured("http_order_response_error_500.json")))
    with pytest.raises(VenueRequestError) as info:
        await rest.cancel_all()
    assert info.value.is_server_error
    assert info.value.retryable
    assert not info.value.is_throttled
    assert info.value.code is VenueRejectCode.SERVER_ERROR
    assert "Internal server error" in str(info.value)


async def test_503_cancel_only_keeps_its_reason(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("POST", "/order", reply(503, {"error": "Trading is currently cancel-only"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
    assert info.value.code is VenueRejectCode.CANCEL_ONLY
    assert info.value.retryable


async def test_401_is_not_retryable(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("GET", "/data/orders", reply(401, {"error": "Unauthorized/Invalid api key"}))
    with pytest.raises(VenueRequestError) as info:
        await rest.open_orders()
    assert info.value.code is VenueRejectCode.UNAUTHORIZED
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (httpx.ConnectError("refused"), VenueConnectionError),
        (httpx.ReadTimeout("slow"), VenueTimeout),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), VenueDisconnected),
        (httpx.ReadError("reset"), VenueDisconnected),
    ],
)
async def test_transport_exceptions_are_mapped_at_the_edge(
    rest: PolymarketRestClient, venue: Venue, error: Exception, mapped: type[Exception]
) -> None:
    venue.error = error
    with pytest.raises(mapped) as info:
        await rest.cancel("0xabc")
    assert info.value.__cause__ is error
    assert rest.statistics().transport_errors == 1


@pytest.mark.parametrize(
    "content",
    [b"<html>gateway</html>", b'{"canceled": "0xabc"}', b"[1, 2]"],
    ids=["not-json", "wrong-type", "wrong-shape"],
)
async def test_a_malformed_reply_is_a_protocol_error(rest: PolymarketRestClient, venue: Venue, content: bytes) -> None:
    venue.on("DELETE", "/order", reply(200, content))
    with pytest.raises(VenueProtocolError, match="DELETE /order"):
        await rest.cancel("0xabc")


# -- cancels ------------------------------------------------------------------------------------------------------


async def test_cancels_send_the_documented_bodies_and_parse_the_captured_replies(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on("DELETE", "/order", reply(200, captured("http_cancel_response_failed.json")))
    venue.on("DELETE", "/orders", reply(200, captured("http_batch_cancel_response.json")))
    venue.on("DELETE", "/cancel-market-orders", reply(200, captured("http_cancel_response_ok.json")))

    one = await rest.cancel("0xb816")
    many = await rest.cancel_orders(["0x1", "0x2", "0x3"])
    market = await rest.cancel_market_orders(condition_id="0xcond")

    assert one.canceled == ()
    assert list(one.not_canceled.values()) == ["already canceled or matched"]
    assert many.canceled == ("0x" + "1" * 64, "0x" + "2" * 64)
    assert many.not_canceled == {"0x" + "3" * 64: "already canceled or matched"}
    assert market.canceled == ("0xb816482a1234567890abcdef1234567890abcdef1234567890abcdef12345678",)
    bodies = [json.loads(r.content) for r in venue.requests]
    assert bodies == [{"orderID": "0xb816"}, ["0x1", "0x2", "0x3"], {"market": "0xcond"}]
    for request in venue.requests:
        assert_l2_signed(request)


# -- account data ----------------------------------------------------------------------------------------------


async def test_open_orders_follow_the_cursor_and_sign_the_path_without_query(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    first = json.loads(captured("http_open_orders_page.json"))
    first["next_cursor"] = "MTAw"
    second = {"data": [json.loads(captured("http_open_order.json"))], "next_cursor": "LTE="}
    venue.on("GET", "/data/orders", reply(200, first), reply(200, second))

    orders = await rest.open_orders(condition_id="0xdd22")

    assert [o.order_id[:6] for o in orders] == ["0xaaaa", "0xbbbb", "0x1234"]
    assert [r.url.params["next_cursor"] for r in venue.requests] == ["MA==", "MTAw"]
    assert all(r.url.params["market"] == "0xdd22" for r in venue.requests)
    for request in venue.requests:
        assert_l2_signed(request)  # signed over "/data/orders", sent with "?market=...&next_cursor=..."
    partly = orders[1]
    assert (partly.status, partly.side, partly.price, partly.original_size, partly.size_matched) == (
        VenueOrderStatus.LIVE,
        Side.SELL,
        D("0.4"),
        D(150),
        D(50),
    )
    assert partly.order_type is OrderType.GTD
    assert partly.created_ts == 1703875201.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("side", "HOLD", "order.side: must be 'BUY' or 'SELL', got 'HOLD'"),
        ("expiration", "soon", "order.expiration: expected unix seconds, got 'soon'"),
        ("expiration", True, "order.expiration: expected unix seconds, got 'True'"),
    ],
)
def test_an_order_field_that_cannot_be_read_is_a_protocol_error_naming_it(
    field: str, value: object, message: str
) -> None:
    wire = msgspec.json.decode(captured("http_open_order.json"), type=WireOpenOrder)
    assert parse_order(wire).expiration == 0  # null: no expiration
    with pytest.raises(VenueProtocolError) as info:
        parse_order(msgspec.structs.replace(wire, **{field: value}))
    assert str(info.value) == f"order: {message}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"side": "buy"}, "trade.side: must be 'BUY' or 'SELL', got 'buy'"),
        ({"fee_rate_bps": "1.5"}, "trade.fee_rate_bps: expected basis points, got '1.5'"),
    ],
)
def test_a_trade_field_that_cannot_be_read_is_a_protocol_error_naming_it(
    change: dict[str, object], message: str
) -> None:
    wire = msgspec.json.decode(captured("http_trade_report.json"), type=WireTrade)
    assert parse_trade(wire, api_key=CREDS.api_key).fee_rate_bps == 0
    with pytest.raises(VenueProtocolError) as info:
        parse_trade(msgspec.structs.replace(wire, **change), api_key=CREDS.api_key)
    assert str(info.value) == f"trade: {message}"


async def test_a_cursor_that_comes_back_is_a_protocol_error(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("GET", "/data/orders", reply(200, {"data": [], "next_cursor": "MTAw"}))
    with pytest.raises(VenueProtocolError, match="paging loop"):
        await rest.open_orders()


async def test_get_order_resolves_by_id_and_none_when_unknown(rest: PolymarketRestClient, venue: Venue) -> None:
    order_id = "0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
    venue.on("GET", f"/data/order/{order_id}", reply(200, captured("http_open_order_sell_fok.json")))
    venue.on("GET", "/data/order/0xunknown", reply(404, {"error": "order not found"}))

    found = await rest.get_order(order_id)
    missing = await rest.get_order("0xunknown")

    assert found is not None
    assert found.status is VenueOrderStatus.MATCHED
    assert found.order_type is OrderType.FOK
    assert found.expiration == 1735689600
    assert found.trade_ids == ()
    assert missing is None
    assert_l2_signed(venue.requests[0])


async def test_trades_keep_our_fills_only(rest: PolymarketRestClient, venue: Venue) -> None:
    report = json.loads(captured("http_trade_report.json"))
    theirs = dict(report, id="trade-theirs", owner="someone-else", maker_address="0x" + "9" * 40, maker_orders=[])
    venue.on("GET", "/data/trades", reply(200, {"data": [report, theirs], "next_cursor": "LTE="}))

    (trade,) = await rest.trades(condition_id="0xdd22")

    assert trade.trade_id == "trade-0xabcdef1234"
    assert trade.status is TradeStatus.CONFIRMED
    (fill,) = trade.fills
    assert (fill.order_id, fill.side, fill.price, fill.size, fill.liquidity) == (
        report["taker_order_id"],
        Side.BUY,
        D("0.5"),
        D(25),
        Liquidity.TAKER,
    )
    assert trade.match_ts == 1704067200.0
    assert trade.ts == 1704067260.0


async def test_a_listing_with_every_2026_status_and_an_unknown_one_is_read_whole(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    report = json.loads(captured("http_trade_report.json"))
    statuses = ["MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING", "FAILED", "TRADE_STATUS_MINED"]
    page = [dict(report, id=f"t-{n}", status=status) for n, status in enumerate([*statuses, "SETTLING_SOMEHOW"])]
    # 2026 production sends trade times as epoch seconds (strings): read as such
    page[0] |= {"match_time": "1767225600", "last_update": "1767225612"}
    venue.on("GET", "/data/trades", reply(200, {"data": page, "next_cursor": "LTE="}))

    trades = await rest.trades()

    assert [t.status for t in trades] == [
        *(TradeStatus(s.removeprefix("TRADE_STATUS_")) for s in statuses),
        TradeStatus.UNKNOWN,  # one new status does not make the listing a protocol error; it is passed on as such
    ]
    assert trades[-1].status_text == "SETTLING_SOMEHOW"
    assert (trades[0].match_ts, trades[0].ts) == (1767225600.0, 1767225612.0)


async def test_a_match_without_transaction_hashes_yet_is_a_normal_placement(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    order_id = "0x" + "ab" * 32
    venue.on(
        "POST",
        "/order",
        reply(
            200,
            {
                "success": True,
                "errorMsg": "",
                "orderID": order_id,
                "status": "matched",
                "makingAmount": "5",
                "takingAmount": "10",
                "transactionsHashes": [],
                "tradeIDs": ["t-1"],
            },
        ),
    )
    result = await rest.post_order(signed_order(rest.signer), order_type=OrderType.FOK)
    assert isinstance(result, OrderPlaced)
    assert (result.status, result.trade_ids, result.transaction_hashes) == ("matched", ("t-1",), ())


async def test_balance_in_base_units_and_an_ambiguous_balance_is_refused(
    rest: PolymarketRestClient, venue: Venue
) -> None:
    venue.on(
        "GET",
        "/balance-allowance",
        reply(200, captured("http_balance_allowance_collateral.json")),
        reply(200, captured("http_balance_allowance_no_allowance.json")),
    )

    collateral = await rest.balance_allowance(AssetType.COLLATERAL)
    assert collateral.balance == D(1000)
    assert collateral.allowance == D(999_999_999)
    assert venue.requests[0].url.params["asset_type"] == "COLLATERAL"
    # "250.500000" is not a whole number of base units: reading it either way could be wrong by 10^6.
    with pytest.raises(VenueProtocolError, match="balance"):
        await rest.balance_allowance(AssetType.COLLATERAL)


async def test_heartbeat_adopts_the_id_of_a_stale_reply(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on(
        "POST",
        "/v1/heartbeats",
        reply(200, {"heartbeat_id": "hb-1"}),
        reply(400, {"heartbeat_id": "hb-7", "error": "Invalid Heartbeat ID"}),
        reply(400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-8"}),  # production's key (§11 item 10)
        reply(400, {"error": "Invalid heartbeat payload"}),
    )

    first = await rest.heartbeat("")
    stale = await rest.heartbeat("hb-0")
    assert (first.ok, first.heartbeat_id) == (True, "hb-1")
    assert (stale.ok, stale.heartbeat_id) == (False, "hb-7")
    production = await rest.heartbeat("hb-1")
    assert (production.ok, production.heartbeat_id) == (False, "hb-8")
    with pytest.raises(VenueRequestError):
        await rest.heartbeat("hb-7")
    assert json.loads(venue.requests[1].content) == {"heartbeat_id": "hb-0"}
    assert_l2_signed(venue.requests[1])


# -- keys ----------------------------------------------------------------------------------------------------


async def test_create_or_derive_falls_back_to_derive_with_valid_l1_headers(venue: Venue) -> None:
    secret = base64.urlsafe_b64encode(b"t" * 32).decode()
    venue.on("POST", "/auth/api-key", reply(400, {"error": "Could not create api key"}))
    venue.on("GET", "/auth/derive-api-key", reply(200, {"apiKey": "k-2", "secret": secret, "passphrase": "p"}))
    signer = OrderSigner(KEY)
    async with open_rest_client(
        "http://clob.test", signer, transport=httpx.MockTransport(venue), wall_secs=lambda: NOW
    ) as rest:
        with pytest.raises(VenueRequestError, match="no API credentials"):
            await rest.open_orders()
        credentials = await rest.create_or_derive_api_key(nonce=3)

    assert credentials.api_key == "k-2"
    assert rest.credentials == credentials
    for request in venue.requests:
        assert verify_l1_headers(request.headers) == signer.address
        assert request.headers["POLY_NONCE"] == "3"
    assert secret not in repr(credentials)


async def test_create_or_derive_raises_a_transient_failure(venue: Venue) -> None:
    venue.on("POST", "/auth/api-key", reply(503, {"error": "unavailable"}))
    async with open_rest_client("http://clob.test", OrderSigner(KEY), transport=httpx.MockTransport(venue)) as rest:
        with pytest.raises(VenueRequestError) as info:
            await rest.create_or_derive_api_key()
    assert info.value.is_server_error
    assert len(venue.requests) == 1


# -- public data ---------------------------------------------------------------------------------------------


async def test_book_is_best_first_and_tick_size_is_exact(rest: PolymarketRestClient, venue: Venue) -> None:
    venue.on("GET", "/book", reply(200, captured("clob_book_response.json")))
    venue.on("GET", "/tick-size", reply(200, b'{"minimum_tick_size": 0.001}'))
    venue.on("GET", "/fee-rate", reply(200, captured("clob_fee_rate_response_nonzero.json")))
    venue.on("GET", "/neg-risk", reply(200, {"neg_risk": True}))
    venue.on("GET", "/time", reply(200, b"1767225660"))

    book = await rest.book("12345678901234567890")

    assert (book.bids[0].price, book.asks[0].price) == (D("0.50"), D("0.51"))
    assert [lv.price for lv in book.bids] == [D("0.50"), D("0.49"), D("0.48")]
    assert await rest.tick_size(YES) == D("0.001")
    assert await rest.fee_rate_bps(YES) == 150
    assert await rest.neg_risk(YES) is True
    assert await rest.sync_clock() == 60
    assert "POLY_API_KEY" not in venue.requests[0].headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1703875200000", 1703875200.0),
        ("1703875200", 1703875200.0),
        (1703875200, 1703875200.0),
        ("2024-01-01T00:00:00Z", 1704067200.0),
        ("", None),
        (None, None),
    ],
)
def test_timestamps_in_seconds_ms_or_iso_are_normalised(value: Any, expected: float | None) -> None:
    assert parse_timestamp(value, "ts") == expected


def test_an_unreadable_timestamp_names_its_field() -> None:
    with pytest.raises(InputError, match="match_time"):
        parse_timestamp("yesterday", "match_time")
