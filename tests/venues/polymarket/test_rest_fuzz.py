"""Hypothesis: whatever bytes the venue answers, with whatever status, every call of the REST client returns a value or
raises one of its two documented errors: `VenueProtocolError` (the reply cannot be read) or `VenueRequestError` (an
error status). Nothing else escapes, a non-UTF-8 or not-JSON success reply included."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal

import httpx
import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzzing import captured, captured_glob, inputs
from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.venues.errors import VenueProtocolError, VenueRequestError
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.rest import AssetType, OrderRefused, PolymarketRestClient, open_rest_client
from trader.venues.polymarket.signing import OrderSigner, SignedOrder

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")

KEY = "0x" + "4c" * 32
CREDS = ApiCredentials(
    "00000000-0000-0000-0000-000000000001", base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase"
)
SIGNER = OrderSigner(KEY)
ORDER = SIGNER.limit_order_with_id(
    token_id="1", side=Side.BUY, price=Decimal("0.5"), size=Decimal(10), tick_size=Decimal("0.01"), neg_risk=False
)[0]
PLACED = captured("http_order_response_ok.json", "http_order_response_failed.json")
BATCH = b"[" + b",".join(PLACED) + b"]"
CANCELS = captured_glob("http_*cancel_response*.json")
ORDERS = captured("http_open_order.json", "http_open_order_sell_fok.json")
HEARTBEATS = [b'{"heartbeat_id": "hb-1"}', b'{"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-2"}']
KEYS = [json.dumps({"apiKey": CREDS.api_key, "secret": CREDS.secret, "passphrase": "p"}).encode()]
Call = Callable[[PolymarketRestClient, SignedOrder], Awaitable[object]]

#: Every reply the client reads: name -> (the call, replies the venue sends).
ENDPOINTS: dict[str, tuple[Call, list[bytes]]] = {
    "POST /order": (lambda c, o: c.post_order(o, order_type=OrderType.FOK), PLACED),
    "POST /orders": (lambda c, o: c.post_orders([(o, OrderType.GTC), (o, OrderType.FOK)]), [BATCH]),
    "DELETE /order": (lambda c, o: c.cancel("0xabc"), CANCELS),
    "DELETE /cancel-all": (lambda c, o: c.cancel_all(), CANCELS),
    "GET /data/orders": (lambda c, o: c.open_orders(), captured("http_open_orders_page.json")),
    "GET /data/order": (lambda c, o: c.get_order("0xabc"), ORDERS),
    "GET /data/trades": (lambda c, o: c.trades(), captured("http_trades_page.json")),
    "GET /book": (lambda c, o: c.book("1"), captured("clob_book_response.json")),
    "GET /balance-allowance": (lambda c, o: c.balance_allowance(AssetType.COLLATERAL), captured_glob("http_balance*")),
    "POST /v1/heartbeats": (lambda c, o: c.heartbeat("hb-0"), HEARTBEATS),
    "GET /tick-size": (lambda c, o: c.tick_size("1"), [b'{"minimum_tick_size": 0.01}']),
    "GET /neg-risk": (lambda c, o: c.neg_risk("1"), [b'{"neg_risk": true}']),
    "GET /fee-rate": (lambda c, o: c.fee_rate_bps("1"), captured_glob("clob_fee_rate_response_*.json")),
    "GET /time": (lambda c, o: c.server_time(), [b"1767225600", b'{"time": 1767225600}']),
    "POST /auth/api-key": (lambda c, o: c.create_api_key(), KEYS),
}


def answer(name: str, status: int, body: bytes) -> object:
    """The outcome of calling endpoint `name` when the venue answers `status` with `body`."""
    call, _ = ENDPOINTS[name]

    async def run() -> object:
        transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
        async with open_rest_client("http://clob.test", SIGNER, CREDS, transport=transport) as rest:
            return await call(rest, ORDER)

    return trio.run(run)


@st.composite
def replies(draw: st.DrawFn) -> tuple[str, int, bytes]:
    name = draw(st.sampled_from(sorted(ENDPOINTS)))
    status = draw(st.sampled_from((200, 200, 200, 201, 400, 401, 404, 425, 429, 500, 503)))
    return name, status, draw(inputs(ENDPOINTS[name][1]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
@example(("GET /book", 200, b'"\x80"'))  # the reported bug: non-UTF-8 escaped as UnicodeDecodeError
@example(("POST /order", 400, b'{"error": "\xff"}'))
@example(("GET /balance-allowance", 200, b'{"balance": "1e999999999"}'))  # decimal.Overflow in the base units
@example(("GET /data/order", 200, b'{"id": "1", "status": "LIVE", "market": "m", "asset_id": "1", "side": "BUY",'
          b' "price": "0.5", "original_size": "1", "size_matched": "0", "created_at": "\\u00b2"}'))  # fmt: skip
def test_any_reply_is_a_value_or_a_documented_error(reply: tuple[str, int, bytes]) -> None:
    with contextlib.suppress(VenueProtocolError, VenueRequestError):
        answer(*reply)


NOT_UTF8 = b'{"errorMsg": "\xff", "asset_id": "\xff", "data": ["\xff"]}'  # in a field each of the calls reads


@pytest.mark.parametrize("body", [b'"\x80"', NOT_UTF8, b"[" * 20_000, b"{", b""])
@pytest.mark.parametrize("name", ["GET /book", "POST /order", "POST /orders", "GET /data/trades"])
def test_a_success_reply_that_is_not_utf8_json_is_a_protocol_error(name: str, body: bytes) -> None:
    with pytest.raises(VenueProtocolError, match=r"reply is not JSON|unexpected reply shape"):
        answer(name, 200, body)


@pytest.mark.parametrize("body", [b'{"error": "\xff"}', b"\x80\x81", b"[" * 20_000])
def test_an_unreadable_refusal_is_still_a_refusal_with_the_text_it_had(body: bytes) -> None:
    refused = answer("POST /order", 400, body)

    assert isinstance(refused, OrderRefused)
    assert refused.http_status == 400
    assert refused.message == body.decode("utf-8", "replace")[:200] + ("..." if len(body) > 200 else "")
