"""The REST side over real sockets: public data, Gamma, Data API, L2 trading endpoints, heartbeats, rate limits."""

from __future__ import annotations

import json
from typing import Any

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


async def test_the_last_trade_price_has_its_side_and_the_batch_forms(sim: SimVenue, http: httpx.AsyncClient) -> None:
    """`GET /last-trade-price` answers the last trade's price and side ("0.5" and "" before any trade, production's
    defaults); polymarket-client reads a last trade only when the side is BUY or SELL. A trade on one token of a
    binary market is the mirror trade on the other: buying YES at 0.45 sells NO at 0.55."""
    yes, no = sim.exchange.markets[0].token_ids

    async def last(token: str) -> object:
        return (await http.get(sim.urls.rest + "/last-trade-price", params={"token_id": token})).json()

    assert await last(yes) == {"price": "0.5", "side": ""}
    sim.exchange.submit(order(no, Side.BUY, "0.55", "10", owner="mm"), sim.now())  # YES ask 0.45
    sim.exchange.submit(order(yes, Side.BUY, "0.45", "5", owner="taker"), sim.now())
    assert (await last(yes), await last(no)) == ({"price": "0.45", "side": "BUY"}, {"price": "0.55", "side": "SELL"})
    sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), sim.now())
    sim.exchange.submit(order(yes, Side.SELL, "0.40", "5", owner="taker"), sim.now())  # sells what it bought
    assert (await last(yes), await last(no)) == ({"price": "0.4", "side": "SELL"}, {"price": "0.6", "side": "BUY"})
    other = sim.exchange.markets[1].token_ids[0]  # never traded: left out of the batch
    tokens = [{"token_id": t} for t in (yes, other, no)]
    batch = (await http.post(sim.urls.rest + "/last-trades-prices", json=tokens)).json()
    assert batch == [{"token_id": yes, "price": "0.4", "side": "SELL"}, {"token_id": no, "price": "0.6", "side": "BUY"}]
    spreads = (await http.post(sim.urls.rest + "/spreads", json=tokens)).json()
    assert spreads == {yes: "0.05", other: "0", no: "0.05"}  # YES 0.40 / 0.45 after the trades; no book: "0"
    too_many = await http.post(sim.urls.rest + "/last-trades-prices", json=[{"token_id": yes}] * 501)
    assert (too_many.status_code, too_many.json()) == (400, {"error": "Payload exceeds the limit"})


async def test_the_clob_market_listings(sim: SimVenue, http: httpx.AsyncClient) -> None:
    """`/markets`, `/simplified-markets` and the sampling pair page as production's (`next_cursor`, "LTE=" at the
    end); a simplified market has the OpenAPI's seven fields; sampling lists only markets accepting orders."""
    resolved = sim.exchange.markets[0].condition_id
    sim.exchange.resolve(resolved, 0, sim.now())
    everything = (await http.get(sim.urls.rest + "/markets")).json()["data"]

    async def listing(path: str) -> list[dict[str, object]]:
        page = (await http.get(sim.urls.rest + path, params={"next_cursor": "MA=="})).json()
        assert (page["next_cursor"], page["count"]) == ("LTE=", len(page["data"]))
        return page["data"]  # type: ignore[no-any-return]

    simplified = await listing("/simplified-markets")
    fields = {"condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders"}
    assert [set(m) for m in simplified] == [fields] * len(everything)
    assert simplified == [{k: m[k] for k in fields} for m in everything]
    sampling = await listing("/sampling-markets")
    assert sampling == [m for m in everything if m["condition_id"] != resolved]
    assert await listing("/sampling-simplified-markets") == [m for m in simplified if m["condition_id"] != resolved]


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
    (position,) = (await http.get(sim.urls.data + "/positions", params={"user": buyer.maker_address})).json()
    assert (position["asset"], position["size"], position["avgPrice"], position["outcome"]) == (yes, 10, 0.4, "Yes")
    (v2,) = (await http.get(sim.urls.data + "/v2/positions", params={"user": buyer.maker_address})).json()["data"]
    assert (v2["token_id"], v2["current_size"], v2["avg_price"], v2["outcome"]) == (yes, 10, 0.4, "Yes")
    assert (await http.get(sim.urls.data + "/positions")).status_code == 400  # `user` is required
    assert (await http.get(sim.urls.data + "/v3/positions", params={"user": "x"})).status_code == 404


async def test_data_api_v2_positions(sim: SimVenue, http: httpx.AsyncClient) -> None:
    """`/v2/positions` is production's 2026-09 contract (protocol.md §11 item 12): an envelope with `pagination`,
    snake_case rows as py-sdk's fixture of a production reply, OPEN / REDEEMABLE / CLOSED statuses."""
    first, second = sim.exchange.markets[0], sim.exchange.markets[1]
    yes, no = first.token_ids
    alice = "0x00000000000000000000000000000000000a11ce"
    sim.exchange.submit(order(no, Side.BUY, "0.60", "10", owner="mm"), sim.now())
    sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="alice", address=alice), sim.now())  # 10 YES
    sim.exchange.submit(order(yes, Side.BUY, "0.70", "5", owner="mm"), sim.now())
    sim.exchange.submit(order(yes, Side.SELL, "0.70", "5", owner="alice", address=alice), sim.now())  # 5 YES left
    sim.exchange.submit(order(yes, Side.BUY, "0.30", "5", owner="mm"), sim.now())  # YES bid 0.30 ...
    sim.exchange.submit(order(no, Side.BUY, "0.50", "5", owner="mm2"), sim.now())  # ... ask 0.50: mid 0.40
    for token, other in (second.token_ids, second.token_ids[::-1]):  # both outcomes: mergeable; resolved NO below
        sim.exchange.submit(order(other, Side.BUY, "0.50", "5", owner="mm"), sim.now())
        sim.exchange.submit(order(token, Side.BUY, "0.50", "5", owner="alice", address=alice), sim.now())

    async def positions(**params: str) -> dict[str, Any]:
        reply = await http.get(sim.urls.data + "/v2/positions", params={"user": alice, **params})
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    page = await positions()
    assert page["pagination"] == {"has_more": False, "next_cursor": None}
    rows = {row["token_id"]: row for row in page["data"]}
    assert set(rows) == {yes, *second.token_ids}
    held = rows[yes]
    assert {k: held[k] for k in ("proxy_wallet", "condition_id", "outcome", "outcome_index", "opposite_token_id")} == {
        "proxy_wallet": alice,
        "condition_id": first.condition_id,
        "outcome": "Yes",
        "outcome_index": 0,
        "opposite_token_id": no,
    }
    numbers = ("current_size", "total_size", "avg_price", "entry_cost_usdc", "current_price", "current_value")
    assert [held[k] for k in numbers] == [5, 10, 0.4, 2, 0.4, 2]
    assert (held["realized_pnl"], held["unrealized_pnl"], held["total_pnl"]) == (1.5, 0, 1.5)  # sold 5 at +0.30
    assert (held["status"], held["mergeable"], held["redeemable"], held["end_date"]) == (
        "OPEN",
        False,
        False,
        "2030-12-31",
    )
    assert held["first_entry_at"] == held["last_event_at"] == int(sim.now())
    assert all(rows[t]["mergeable"] for t in second.token_ids)
    assert {r["token_id"] for r in (await positions(status="MERGEABLE"))["data"]} == set(second.token_ids)

    sim.exchange.resolve(second.condition_id, 1, sim.now())  # NO wins
    rows = {row["token_id"]: row for row in (await positions())["data"]}
    lost, won = (rows[t] for t in second.token_ids)
    assert (lost["status"], lost["current_price"], won["status"], won["current_price"]) == (
        "REDEEMABLE",
        0,
        "REDEEMABLE",
        1,
    )
    assert (await positions(status="REDEEMABLE_LOST"))["data"] == [lost]

    sim.exchange.submit(order(yes, Side.SELL, "0.30", "5", owner="alice", address=alice), sim.now())  # all gone
    (closed,) = (await positions(status="CLOSED"))["data"]
    assert (closed["token_id"], closed["status"], closed["current_size"]) == (yes, "CLOSED", 0)

    one = await positions(limit="1", sort_by="PRICE", sort_direction="ASC")
    assert ([r["token_id"] for r in one["data"]], one["pagination"]["has_more"]) == ([second.token_ids[0]], True)
    rest = await positions(limit="1", sort_by="PRICE", sort_direction="ASC", cursor=one["pagination"]["next_cursor"])
    assert ([r["token_id"] for r in rest["data"]], rest["pagination"]) == (
        [second.token_ids[1]],
        {"has_more": False, "next_cursor": None},
    )
    by_market = await http.get(sim.urls.data + "/v2/positions", params={"condition_id": second.condition_id})
    holders = by_market.json()["data"]  # every holder of the market: alice and the maker that sold to her
    assert {r["condition_id"] for r in holders} == {second.condition_id}
    assert len({r["proxy_wallet"] for r in holders}) == 2
    for bad in ({}, {"user": alice, "status": "LOST"}, {"user": alice, "limit": "0"}, {"user": alice, "cursor": "x"}):
        assert (await http.get(sim.urls.data + "/v2/positions", params=bad)).status_code == 400


async def test_l2_order_lifecycle_and_errors(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]

    placed = await alice.post(alice.order(market, Side.BUY, "0.40", "10"))
    assert placed.status_code == 200
    body = placed.json()
    assert (body["success"], body["status"], body["makingAmount"], body["takingAmount"]) == (True, "live", "", "")
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
    assert [(r["success"], r["status"]) for r in results] == [(True, "live"), (True, "")]  # production's `success`
    refused = results[1]
    assert refused["errorMsg"].endswith("lower than the minimum: 5")
    assert {k: v for k, v in refused.items() if k != "errorMsg"} == {
        "orderID": "",
        "takingAmount": "",
        "makingAmount": "",
        "status": "",
        "success": True,
    }

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
        v2 = await alice.request("GET", "/balance-allowance", asset_type="CONDITIONAL-V2", token_id=yes)
        assert v2.json() == shares.json()  # the asset type polymarket-client names a position id's shares with
        unknown = await alice.request("GET", "/balance-allowance", asset_type="SHARES", token_id=yes)
        assert (unknown.status_code, unknown.json()) == (400, {"error": "invalid asset_type"})
        assert (await alice.request("GET", "/auth/api-keys")).json() == {"apiKeys": [alice.credentials.api_key]}
        legacy = (await alice.request("GET", "/data/pre-migration-orders", next_cursor="MA==")).json()
        assert legacy == {"limit": 2, "count": 0, "next_cursor": "LTE=", "data": []}  # no V1 orders, ever
        assert (await http.get(base + "/data/pre-migration-orders")).status_code == 401
        scoring = await alice.request("GET", "/order-scoring", order_id=ids[0])
        assert scoring.json() == {"scoring": False}  # the sim has no liquidity rewards
        assert (await alice.request("POST", "/orders-scoring", ids[:2])).json() == dict.fromkeys(ids[:2], False)
        assert (await alice.request("POST", "/orders-scoring", {"ids": ids})).status_code == 400
        assert (await alice.request("GET", "/order-scoring")).status_code == 400


async def test_the_ledger_keeps_every_order_a_client_placed_and_each_refusal(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    """`GET /_sim/ledger?address=`: a harness's ground truth (`python -m bench chaos`), kept whatever the exchange
    has forgotten since."""
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    resting = alice.order(market, Side.BUY, "0.40", "10")
    order_id = (await alice.post(resting)).json()["orderID"]
    assert (await alice.post(resting)).status_code == 400  # the same order again: refused as a duplicate
    await alice.request("DELETE", "/order", {"orderID": order_id})
    account = (await http.get(f"{sim.urls.rest}/_sim/ledger", params={"address": alice.signer.address})).json()
    ((placed),) = account["orders"]
    assert (placed["order_id"], placed["status"], placed["original_size"], placed["size_matched"]) == (
        order_id,
        "CANCELED",
        "10",
        "0",
    )
    assert list(account["refusals"].values()) == [1]
    assert next(iter(account["refusals"])).startswith(f"{order_id}: ")
    assert account["collateral"] == "10000"
    assert (await http.get(f"{sim.urls.rest}/_sim/ledger")).status_code == 400
