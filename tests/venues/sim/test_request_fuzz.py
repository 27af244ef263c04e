"""Hypothesis: whatever body a client sends to an endpoint of the simulated venue that reads one (authenticated with
valid L2 headers over that very body, so the body parsing is reached), the sim answers it as the venue would: the
reply, or a 4xx with `{"error": ...}`; never a 500 from an exception of its own parser. Over the handler, without
sockets: one small sim per example."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import trio
import trio_websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzzing import inputs
from tests.venues.sim.conftest import KEY1, receive_json, static_config
from trader.domain.numbers import Side
from trader.venues.polymarket.auth import l2_headers
from trader.venues.polymarket.signing import OrderSigner, order_body
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.markets import make_market
from trader.venues.sim.venue import SimVenue

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")

SIGNER = OrderSigner(KEY1)
TOKEN = make_market("srv:binary", question="Will the test pass?").token_ids[0]
ORDER = order_body(
    SIGNER.limit_order_with_id(
        token_id=TOKEN, side=Side.BUY, price=Decimal("0.3"), size=Decimal(10), tick_size=Decimal("0.01"), neg_risk=False
    )[0],
    owner="OWNER",
    order_type="GTC",
    post_only=False,
    defer_exec=False,
)
#: (method, path) -> bodies a client sends there. "OWNER" becomes the caller's API key.
ENDPOINTS: dict[tuple[str, str], list[bytes]] = {
    ("POST", "/order"): [ORDER.encode()],
    ("POST", "/orders"): [f"[{ORDER},{ORDER}]".encode()],
    ("DELETE", "/order"): [b'{"orderID": "0xabc"}'],
    ("DELETE", "/orders"): [b'["0xabc", "0xdef"]'],
    ("DELETE", "/cancel-market-orders"): [b'{"market": "0xabc", "asset_id": "1"}'],
    ("POST", "/v1/heartbeats"): [b'{"heartbeat_id": ""}'],
    ("POST", "/books"): [json.dumps([{"token_id": TOKEN}]).encode()],
    ("POST", "/prices"): [json.dumps([{"token_id": TOKEN, "side": "BUY"}]).encode()],
    ("POST", "/_sim/faults"): [b'{"kind": "malformed_frames", "frame": "garbage"}', b'{"kind": "reject_orders"}'],
}


def answer(method: str, path: str, body: bytes) -> HttpResponse:
    async def run() -> HttpResponse:
        config = static_config()
        venue = SimVenue(config, config.scenario, 1_767_225_600.0)  # type: ignore[arg-type]
        venue.scenario.setup(venue.exchange, venue.now())
        credentials = venue.api_keys.derive(SIGNER.address)
        body_ = body.replace(b"OWNER", credentials.api_key.encode())
        headers = l2_headers(
            credentials,
            address=SIGNER.address,
            timestamp=int(venue.now()),
            method=method,
            request_path=path,
            body=body_.decode("utf-8", "replace"),  # what the sim reads the body as for the HMAC
        )
        request = HttpRequest(
            method=method,
            target=path,
            path=path,
            query={},
            headers={name.lower(): value for name, value in headers.items()},
            body=body_,
            client="127.0.0.1:1",
        )
        return await venue.rest(request)

    return trio.run(run)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, path = draw(st.sampled_from(sorted(ENDPOINTS)))
    return method, path, draw(inputs(ENDPOINTS[(method, path)]))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
@example(("POST", "/order", b"[" * 20_000))  # json.loads raised RecursionError: a 500
@example(("POST", "/_sim/faults", b'{"kind": "malformed_frames", "frame": ' + b"[" * 5000 + b"]" * 5000 + b"}"))
def test_any_body_gets_the_reply_or_a_4xx_with_an_error(request: tuple[str, str, bytes]) -> None:
    response = answer(*request)

    assert response.status < 500, response.body[:300]
    if response.status >= 400:
        reply = json.loads(response.body)
        # `error`, or `error_msg` where production says so (a stale heartbeat id, protocol.md §11 item 10)
        assert isinstance(reply.get("error", reply.get("error_msg")), str)


def test_the_valid_bodies_are_answered() -> None:
    """The seeds are real requests: the property above starts from bodies the sim accepts."""
    for (method, path), bodies in ENDPOINTS.items():
        for body in bodies:
            assert answer(method, path, body).status == 200, (method, path, body)


@pytest.mark.parametrize("message", ["[" * 5000 + "]" * 5000, '{"a":' * 5000, "\ud800"])
async def test_a_websocket_message_nested_too_deeply_gets_an_error_and_the_socket_stays(
    sim: SimVenue, message: str
) -> None:
    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(message.encode("utf-8", "surrogatepass"))  # as bytes: a str must be valid UTF-8

        assert await receive_json(ws) == {"error": "invalid message: expected a JSON object or PING"}
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"
