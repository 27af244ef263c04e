"""THE interop test: the official py-clob-client-v2 (synchronous httpx, run in a thread) against the sim."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import ApiCreds, OpenOrderParams, OrderArgsV2, OrderPayload, PartialCreateOrderOptions
from py_clob_client_v2.exceptions import PolyApiException

from tests.venues.sim.conftest import KEY1
from trader.venues.sim.venue import SimVenue

POLYGON = 137


async def test_official_client_derives_a_key_reads_a_book_posts_lists_and_cancels(sim: SimVenue) -> None:
    market = next(m for m in sim.exchange.markets if str(m.tick_size) == "0.005")
    token = market.token_ids[0]

    def session() -> dict[str, object]:
        l1 = ClobClient(sim.urls.rest, POLYGON, key=KEY1)
        creds = l1.create_or_derive_api_key()
        client = ClobClient(sim.urls.rest, POLYGON, key=KEY1, creds=creds)
        book = client.get_order_book(token)
        assert client.get_order_book_hash(dict(book)) == book["hash"]
        posted = client.create_and_post_order(OrderArgsV2(token_id=token, price=0.455, size=10, side="BUY"))
        open_orders = client.get_open_orders(OpenOrderParams(market=market.condition_id))
        canceled = client.cancel_order(OrderPayload(orderID=posted["orderID"]))
        after = client.get_open_orders()
        return {"creds": creds, "posted": posted, "open": open_orders, "canceled": canceled, "after": after}

    result = await trio.to_thread.run_sync(session)

    creds = result["creds"]
    assert isinstance(creds, ApiCreds)
    assert sim.api_keys.lookup(creds.api_key) is not None
    posted = result["posted"]
    assert isinstance(posted, dict)
    assert (posted["success"], posted["status"], posted["errorMsg"]) == (True, "live", "")
    opened = result["open"]
    assert isinstance(opened, list)
    assert [(o["id"], o["price"], o["original_size"], o["side"]) for o in opened] == [
        (posted["orderID"], "0.455", "10", "BUY")
    ]
    assert result["canceled"] == {"canceled": [posted["orderID"]], "not_canceled": {}}
    assert result["after"] == []


async def test_the_sim_refuses_what_the_venue_refuses(sim: SimVenue) -> None:
    market = next(m for m in sim.exchange.markets if str(m.tick_size) == "0.005")
    token = market.token_ids[0]
    options = PartialCreateOrderOptions(tick_size="0.005", neg_risk=False)

    def attempt(what: str) -> PolyApiException:
        l1 = ClobClient(sim.urls.rest, POLYGON, key=KEY1)
        creds = l1.create_or_derive_api_key()
        client = ClobClient(sim.urls.rest, POLYGON, key=KEY1, creds=creds)
        if what == "hmac":
            wrong = ApiCreds(creds.api_key, "c2ltLXdyb25nLXNlY3JldC1zaW0td3Jvbmctc2VjcmV0LQ==", creds.api_passphrase)
            client = ClobClient(sim.urls.rest, POLYGON, key=KEY1, creds=wrong)
        price = 0.937 if what == "tick" else 0.45  # 0.937 is signed happily by the client, off the 0.005 grid
        order = client.create_order(OrderArgsV2(token_id=token, price=price, size=10, side="BUY"), options)
        if what == "signature":
            flipped = "1" if order.signature[10] != "1" else "2"
            order = replace(order, signature=order.signature[:10] + flipped + order.signature[11:])
        with pytest.raises(PolyApiException) as raised:
            client.post_order(order)
        return raised.value

    tampered = await trio.to_thread.run_sync(attempt, "signature")
    assert (tampered.status_code, tampered.error_msg) == (400, {"error": "invalid signature"})
    hmac = await trio.to_thread.run_sync(attempt, "hmac")
    assert (hmac.status_code, hmac.error_msg) == (401, {"error": "Unauthorized/Invalid api key"})
    off_tick = await trio.to_thread.run_sync(attempt, "tick")
    assert off_tick.status_code == 400
    assert isinstance(off_tick.error_msg, dict)
    assert off_tick.error_msg["error"].endswith("is invalid. Price (0.937) breaks minimum tick size rule: 0.005")
    assert sim.exchange.open_orders() == []
