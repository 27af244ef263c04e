"""The REST side over real sockets: public data, Gamma, Data API, L2 trading endpoints, heartbeats, rate limits."""

from __future__ import annotations

import json

import httpx

from tests.venues.sim._support import order
from tests.venues.sim.conftest import KEY1, KEY2, make_trader, static_config
from trader.domain.numbers import Side
from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.ratelimit import RateLimiter, RateRule
from trader.venues.sim.rest import RestConfig
from trader.venues.sim.venue import SimVenue, open_sim_venue


async def test_public_market_data(sim: SimVenue, http: httpx.AsyncClient) -> None:
    market = sim.exchange.markets[0]
    yes, no = market.token_ids
    sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), sim.now())
    sim.exchange.submit(order(no, Side.BUY, "0.55", "10", owner="mm"), sim.now())  # YES ask 0.45
    base = sim.urls.rest

    async def get(path: str, **params: str) -> httpx.Response:
        return await http.get(base + path, params=params)

    book = (await get("/book", token_id=no)).json()
    assert (book["bids"], book["asks"]) == ([{"price": "0.55", "size": "10"}], [{"price": "0.6", "size": "10"}])
    assert (await get("/book", token_id="0xnope")).json() == {"error": "Invalid token id"}
    missing = await get("/book", token_id="123")
    assert (missing.status_code, missing.json()) == (404, {"error": "No orderbook exists for the requested token id"})
    assert (await get("/price", token_id=yes, side="BUY")).json() == {"price": "0.4"}  # the best BID
    assert (await get("/price", token_id=yes, side="SELL")).json() == {"price": "0.45"}
    assert (await get("/midpoint", token_id=yes)).json() == {"mid": "0.425"}
    listed = {m["conditionId"]: m for m in (await http.get(sim.urls.gamma + "/markets")).json()}
    gamma = listed[market.condition_id]
    assert json.loads(gamma["outcomePrices"]) == ["0.425", "0.575"]  # the YES mid and its complement
    assert (gamma["bestBid"], gamma["bestAsk"], gamma["spread"]) == (0.4, 0.45, 0.05)
    quiet = listed[sim.exchange.markets[1].condition_id]  # no book: the last trade price (0.5 at the start)
    assert (json.loads(quiet["outcomePrices"]), quiet["bestBid"]) == (["0.5", "0.5"], None)
    assert (await get("/tick-size", token_id=yes)).text == '{"minimum_tick_size":0.01}'
    assert (await get("/neg-risk", token_id=yes)).json() == {"neg_risk": False}
    assert (await get("/fee-rate", token_id=yes)).json() == {"base_fee": 0}
    assert (await get("/version")).json() == {"version": 2}
    assert (await get("/ok")).json() == "OK"
    assert abs((await get("/time")).json() - sim.now()) < 5
    books = await http.post(base + "/books", json=[{"token_id": yes}, {"token_id": no}])
    assert [b["asset_id"] for b in books.json()] == [yes, no]

    page = (await get("/markets")).json()
    assert (page["count"], page["next_cursor"]) == (len(sim.exchange.markets), "LTE=")
    one = (await get(f"/markets/{market.condition_id}")).json()
    assert [t["token_id"] for t in one["tokens"]] == [yes, no]
    assert (await get(f"/clob-markets/{market.condition_id}")).json()["t"] == [
        {"t": yes, "o": "Yes"},
        {"t": no, "o": "No"},
    ]


async def test_gamma_and_data_api(sim: SimVenue, http: httpx.AsyncClient) -> None:
    markets = (await http.get(sim.urls.gamma + "/markets")).json()
    first = markets[0]
    assert json.loads(first["clobTokenIds"]) == list(sim.exchange.markets[0].token_ids)
    assert json.loads(first["outcomes"]) == ["Yes", "No"]
    events = (await http.get(sim.urls.gamma + "/events")).json()
    (neg_risk,) = [e for e in events if e["negRisk"]]
    assert len(neg_risk["markets"]) == 3
    assert all(m["negRisk"] and m["negRiskMarketID"] == neg_risk["negRiskMarketID"] for m in neg_risk["markets"])
    by_slug = (await http.get(sim.urls.gamma + "/markets", params={"slug": first["slug"]})).json()
    assert [m["id"] for m in by_slug] == [first["id"]]

    yes, no = sim.exchange.markets[0].token_ids
    buyer = order(yes, Side.BUY, "0.40", "10", owner="alice")
    sim.exchange.submit(order(no, Side.BUY, "0.60", "10", owner="mm"), sim.now())
    sim.exchange.submit(buyer, sim.now())
    (position,) = (await http.get(sim.urls.data + "/v2/positions", params={"user": buyer.maker_address})).json()
    assert (position["asset"], position["size"], position["avgPrice"], position["outcome"]) == (yes, 10, 0.4, "Yes")
    assert (await http.get(sim.urls.data + "/positions", params={"user": buyer.maker_address})).json() == [position]
    assert (await http.get(sim.urls.data + "/v2/positions")).status_code == 400  # `user` is required
    assert (await http.get(sim.urls.data + "/v3/positions", params={"user": "x"})).status_code == 404


async def test_l2_order_lifecycle_and_errors(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]

    placed = await alice.post(alice.order(market, Side.BUY, "0.40", "10"))
    assert placed.status_code == 200
    body = placed.json()
    assert (body["success"], body["status"], body["makingAmount"], body["takingAmount"]) == (True, "live", "0", "0")
    order_id = body["orderID"]

    listed = (await alice.request("GET", "/data/orders", next_cursor="MA==")).json()
    assert [o["id"] for o in listed["data"]] == [order_id]
    assert (listed["data"][0]["status"], listed["next_cursor"]) == ("LIVE", "LTE=")
    single = (await alice.request("GET", f"/data/order/{order_id}")).json()
    assert single["original_size"] == "10"

    twice = alice.order(market, Side.BUY, "0.39", "10")
    assert (await alice.post(twice)).status_code == 200
    duplicate = await alice.post(twice)
    assert duplicate.status_code == 400
    assert duplicate.json()["error"].endswith("is invalid. Duplicated.")
    too_small = await alice.post(alice.order(market, Side.BUY, "0.40", "1"))
    assert too_small.status_code == 400
    assert too_small.json()["error"].endswith("Size (1) lower than the minimum: 5")
    post_only = await alice.request(
        "POST", "/order", alice.body(alice.order(market, Side.SELL, "0.40", "10"), post_only=True)
    )
    assert post_only.json() == {"error": "not enough balance / allowance"}

    canceled = (await alice.request("DELETE", "/order", {"orderID": order_id})).json()
    assert canceled == {"canceled": [order_id], "not_canceled": {}}
    again = (await alice.request("DELETE", "/order", {"orderID": order_id})).json()
    assert again == {"canceled": [], "not_canceled": {order_id: "already canceled or matched"}}
    everything = (await alice.request("DELETE", "/cancel-all")).json()
    assert order_id not in everything["canceled"]

    balance = (await alice.request("GET", "/balance-allowance", asset_type="COLLATERAL", signature_type="0")).json()
    assert balance["balance"] == str(10_000 * 10**6)

    bob = make_trader(sim, http, KEY2)
    stolen = alice.body(alice.order(market, Side.BUY, "0.40", "10"))
    refused = await bob.request("POST", "/order", stolen)
    assert refused.json() == {"error": "the order owner has to be the same as the API KEY"}


async def test_batch_orders_limit_and_per_order_results(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    good = alice.body(alice.order(market, Side.BUY, "0.30", "10"))
    bad = alice.body(alice.order(market, Side.BUY, "0.30", "2"))

    results = (await alice.request("POST", "/orders", [good, bad])).json()
    assert [(r["success"], r["status"]) for r in results] == [(True, "live"), (False, "")]
    assert results[1]["errorMsg"].endswith("lower than the minimum: 5")

    sixteen = [alice.body(alice.order(market, Side.BUY, "0.30", "10")) for _ in range(16)]
    too_many = await alice.request("POST", "/orders", sixteen)
    assert (too_many.status_code, too_many.json()) == (400, {"error": "Payload exceeds the limit"})


async def test_wrong_hmac_is_unauthorized(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    headers = {"POLY_API_KEY": alice.credentials.api_key, "POLY_PASSPHRASE": alice.credentials.passphrase}
    headers |= {"POLY_SIGNATURE": "AAAA", "POLY_TIMESTAMP": "1767225600", "POLY_ADDRESS": alice.signer.address}
    response = await http.get(sim.urls.rest + "/data/orders", headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "Unauthorized/Invalid api key"})
    l1 = await http.post(sim.urls.rest + "/auth/api-key", headers={"POLY_ADDRESS": alice.signer.address})
    assert (l1.status_code, l1.json()) == (401, {"error": "Invalid L1 Request headers"})


async def test_heartbeat_over_http(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    first = (await alice.request("POST", "/v1/heartbeats", {"heartbeat_id": ""})).json()["heartbeat_id"]
    second = (await alice.request("POST", "/v1/heartbeats", {"heartbeat_id": first})).json()["heartbeat_id"]
    stale = await alice.request("POST", "/v1/heartbeats", {"heartbeat_id": first})
    assert stale.status_code == 400
    assert stale.json() == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": second}  # production's key
    legacy = await alice.request("POST", "/heartbeats")  # the legacy endpoint: no body, no id
    assert (legacy.status_code, legacy.json()) == (200, {"status": "ok"})
    assert (await http.post(sim.urls.rest + "/heartbeats")).status_code == 401  # still an L2 endpoint
    third = await alice.request("POST", "/v1/heartbeats", {"heartbeat_id": second})
    assert third.status_code == 200  # the legacy call did not touch the session


async def test_the_engines_heartbeat_recovers_the_id_from_a_stale_reply(sim: SimVenue) -> None:
    signer = OrderSigner(KEY1)
    async with open_rest_client(sim.urls.rest, signer, sim.api_keys.derive(signer.address, 0)) as rest:
        first = await rest.heartbeat("")
        await rest.heartbeat(first.heartbeat_id)
        stale = await rest.heartbeat(first.heartbeat_id)
        assert not stale.ok
        assert (await rest.heartbeat(stale.heartbeat_id)).ok  # the id the venue named in `error_msg`'s reply


async def test_rate_limit_answers_429_past_the_window_limit(http: httpx.AsyncClient) -> None:
    rules = (RateRule(name="book", limit=3, paths=("/book",)),)
    async with open_sim_venue(static_config(rate_limits=rules)) as sim:
        token = sim.exchange.markets[0].token_ids[0]
        codes = [(await http.get(sim.urls.rest + "/book", params={"token_id": token})).status_code for _ in range(4)]
        refused = await http.get(sim.urls.rest + "/book", params={"token_id": token})
        other = await http.get(sim.urls.rest + "/midpoint", params={"token_id": token})
    assert codes == [200, 200, 200, 429]
    assert refused.json() == {"error": "Too Many Requests"}
    assert other.status_code != 429


def test_rate_windows_slide() -> None:
    limiter = RateLimiter(
        [RateRule(name="orders", limit=2, window_secs=10, methods=frozenset({"POST"}), paths=("/order",))]
    )

    def check(now: float) -> bool:
        return limiter.check(now, client="k", service="clob", method="POST", path="/order") is None

    assert [check(0.0), check(1.0), check(9.9)] == [True, True, False]
    assert check(10.0)  # the hit at 0.0 left the window
    assert not check(10.5)
    assert check(11.0)
    assert limiter.check(11.0, client="k", service="clob", method="GET", path="/order") is None


async def test_more_endpoints_paging_and_payload_errors(http: httpx.AsyncClient) -> None:
    async with open_sim_venue(static_config(rest=RestConfig(page_size=2))) as sim:
        alice = make_trader(sim, http)
        market = sim.exchange.markets[0]
        yes, no = market.token_ids
        ids = []
        for price in ("0.30", "0.31", "0.32"):
            ids.append((await alice.post(alice.order(market, Side.BUY, price, "10"))).json()["orderID"])

        first = (await alice.request("GET", "/data/orders")).json()
        second = (await alice.request("GET", "/data/orders", next_cursor=first["next_cursor"])).json()
        assert (first["count"], second["count"], second["next_cursor"]) == (2, 1, "LTE=")
        assert [o["id"] for o in first["data"] + second["data"]] == ids
        bad_cursor = await alice.request("GET", "/data/orders", next_cursor="%%%")
        assert (bad_cursor.status_code, bad_cursor.json()) == (400, {"error": "invalid next_cursor"})

        some = (await alice.request("DELETE", "/orders", [ids[0], "0xunknown"])).json()
        assert some == {"canceled": [ids[0]], "not_canceled": {"0xunknown": "order not found"}}
        by_market = (await alice.request("DELETE", "/cancel-market-orders", {"market": market.condition_id})).json()
        assert sorted(by_market["canceled"]) == sorted(ids[1:])

        base = sim.urls.rest
        prices = (await http.post(base + "/prices", json=[{"token_id": yes, "side": "BUY"}])).json()
        assert prices == {yes: {"BUY": "0"}}
        assert (await http.get(base + "/spread", params={"token_id": yes})).json() == {"spread": "0"}
        assert (await http.get(base + "/last-trade-price", params={"token_id": no})).json() == {
            "price": "0.5",
            "side": "",
        }
        assert (await http.get(base + f"/fee-rate/{yes}")).json() == {"base_fee": 0}
        assert (await http.get(base + f"/markets-by-token/{no}")).json() == {"condition_id": market.condition_id}
        assert (await http.get(base + "/markets/0xnope")).status_code == 404
        assert (await http.get(base + "/price", params={"token_id": yes, "side": "UP"})).json() == {
            "error": "Invalid side"
        }
        assert (await http.post(base + "/books", content=b"{")).json() == {"error": "Invalid payload"}
        assert (await http.get(base + "/nowhere")).status_code == 404

        gamma = (await http.get(sim.urls.gamma + "/markets", params={"limit": "1", "offset": "1"})).json()
        assert [m["conditionId"] for m in gamma] == [sim.exchange.markets[1].condition_id]
        one = (await http.get(sim.urls.gamma + f"/markets/{market.gamma_id}")).json()
        assert one["conditionId"] == market.condition_id
        (event,) = sim.exchange.events.values()
        assert (await http.get(sim.urls.gamma + f"/events/{event.event_id}")).json()["negRiskAugmented"] is False

        v1 = {"order": {"salt": 1, "taker": "0x0", "nonce": "0", "feeRateBps": "0"}, "owner": alice.credentials.api_key}
        mismatch = await alice.request("POST", "/order", v1)
        assert (mismatch.status_code, mismatch.json()) == (400, {"error": "order_version_mismatch"})
        malformed = await alice.request("POST", "/order", {"order": {"salt": 1}, "owner": alice.credentials.api_key})
        assert malformed.json()["error"].startswith("Invalid order payload: order.")
        shares = await alice.request("GET", "/balance-allowance", asset_type="CONDITIONAL", token_id=yes)
        assert shares.json()["balance"] == "0"
        assert (await alice.request("GET", "/auth/api-keys")).json() == {"apiKeys": [alice.credentials.api_key]}
