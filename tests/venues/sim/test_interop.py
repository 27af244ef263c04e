"""THE interop test: the official py-clob-client-v2 1.2.1 (synchronous httpx, run in a thread) against the sim, doing
what it would do against production: markets listing, books and prices, orders resting and filled, its trades in the
2026 shapes, batch orders, every cancel, heartbeats with the stale-id recovery, balance-allowance, the venue's
trading restrictions and rate limits.

Its companion for the newest official Python client, polymarket-client 0.14.0 (too heavy to be a dependency), is
`scripts/interop/run` (README, "Interop checks").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import trio
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    BookParams,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderScoringParams,
    OrderType,
    PartialCreateOrderOptions,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.http_helpers import helpers as client_http

from tests.venues.sim.conftest import KEY1, KEY2
from trader.venues.sim.venue import SimVenue

POLYGON = 137
KEY3 = "0x0000000000000000000000000000000000000000000000000000000000000003"
END_CURSOR = "LTE="
#: the trade statuses the 2026 clients know (protocol.md §11 item 8)
TRADE_STATUSES = {"MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING", "FAILED"}


def client_for(sim: SimVenue, key: str) -> ClobClient:
    """As an application starts: derive (or create) the API key with L1, then trade with L2."""
    creds = ClobClient(sim.urls.rest, POLYGON, key=key).create_or_derive_api_key()
    return ClobClient(sim.urls.rest, POLYGON, key=key, creds=creds)


async def in_thread(session: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(session)


@contextmanager
def replies_seen() -> Iterator[list[httpx.Response]]:
    """The responses the client's (module-wide) httpx client receives, for what the client itself never reads."""
    seen: list[httpx.Response] = []
    transport = client_http._http_client
    hooks = transport.event_hooks
    transport.event_hooks = {"request": list(hooks["request"]), "response": [*hooks["response"], seen.append]}
    try:
        yield seen
    finally:
        transport.event_hooks = hooks


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

    result = await in_thread(session)

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


async def test_official_client_lists_markets_every_way_and_reads_prices(sim: SimVenue) -> None:
    """All four CLOB listings, paged by `next_cursor` to "LTE=" as the client expects, one market by id, its compact
    info, and the public price endpoints single and batched."""
    market = sim.exchange.markets[0]
    yes, no = market.token_ids
    closed = sim.exchange.markets[1].condition_id
    sim.exchange.resolve(closed, 0, sim.now())

    def everything(listing: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
        items, cursor = [], "MA=="
        while cursor != END_CURSOR:
            page = listing(cursor)
            items.extend(page["data"])
            cursor = page["next_cursor"]
        return items

    def session() -> dict[str, Any]:
        client = ClobClient(sim.urls.rest, POLYGON)  # L0: no key needed for any of these
        maker = client_for(sim, KEY2)
        maker.create_and_post_order(OrderArgsV2(token_id=no, price=0.55, size=20, side="BUY"))  # YES ask 0.45
        maker.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=20, side="BUY"))
        return {
            "markets": everything(client.get_markets),
            "simplified": everything(client.get_simplified_markets),
            "sampling": everything(client.get_sampling_markets),
            "sampling_simplified": everything(client.get_sampling_simplified_markets),
            "one": client.get_market(market.condition_id),
            "info": client.get_clob_market_info(market.condition_id),
            "tick": client.get_tick_size(yes),
            "neg_risk": client.get_neg_risk(yes),
            "fee": client.get_fee_rate_bps(yes),
            "price": client.get_price(yes, "BUY"),
            "prices": client.get_prices([BookParams(token_id=yes, side="BUY"), BookParams(token_id=yes, side="SELL")]),
            "mid": client.get_midpoint(yes),
            "mids": client.get_midpoints([BookParams(token_id=yes)]),
            "spread": client.get_spread(yes),
            "spreads": client.get_spreads([BookParams(token_id=yes), BookParams(token_id=no)]),
            "books": client.get_order_books([BookParams(token_id=yes), BookParams(token_id=no)]),
            "last": client.get_last_trade_price(yes),
            "lasts": client.get_last_trades_prices([BookParams(token_id=yes)]),
            "version": client.get_version(),
            "ok": client.get_ok(),
        }

    got = await in_thread(session)

    ids = [m.condition_id for m in sim.exchange.markets]
    assert [m["condition_id"] for m in got["markets"]] == ids
    assert [m["condition_id"] for m in got["simplified"]] == ids
    assert set(got["simplified"][0]) == {
        "condition_id",
        "rewards",
        "tokens",
        "active",
        "closed",
        "archived",
        "accepting_orders",
    }
    sampled = [i for i in ids if i != closed]  # the resolved market accepts no orders: not sampled
    assert [m["condition_id"] for m in got["sampling"]] == sampled
    assert [m["condition_id"] for m in got["sampling_simplified"]] == sampled
    assert got["one"] == got["markets"][0]
    assert [t["token_id"] for t in got["one"]["tokens"]] == [yes, no]
    assert got["info"]["t"] == [{"t": yes, "o": "Yes"}, {"t": no, "o": "No"}]
    assert (got["tick"], got["neg_risk"], got["fee"]) == ("0.01", False, 0)
    assert got["price"] == {"price": "0.4"}  # side=BUY: the best bid
    assert got["prices"] == {yes: {"BUY": "0.4", "SELL": "0.45"}}
    assert (got["mid"], got["mids"]) == ({"mid": "0.425"}, {yes: "0.425"})
    assert (got["spread"], got["spreads"]) == ({"spread": "0.05"}, {yes: "0.05", no: "0.05"})
    assert [b["asset_id"] for b in got["books"]] == [yes, no]
    assert (got["last"], got["lasts"]) == ({"price": "0.5", "side": ""}, [])  # no trade yet: production's defaults
    assert (got["version"], got["ok"]) == (2, "OK")


async def test_official_client_gets_filled_and_reads_its_trades_in_the_2026_shapes(sim: SimVenue) -> None:
    """A crossing order against resting liquidity: matched at once, the client waits for its trades' settlement
    hashes (`GET /data/trades?id=`, protocol.md §11 item 8) and returns them; the trades read back with epoch-second
    times and the 2026 statuses, as taker and as maker; a market order (FOK) fills the rest."""
    market = sim.exchange.markets[0]
    yes, no = market.token_ids

    def session() -> dict[str, Any]:
        maker, taker = client_for(sim, KEY2), client_for(sim, KEY1)
        resting = maker.create_and_post_order(OrderArgsV2(token_id=no, price=0.55, size=30, side="BUY"))
        filled = taker.create_and_post_order(OrderArgsV2(token_id=yes, price=0.45, size=10, side="BUY"))
        market_order = taker.create_and_post_market_order(
            MarketOrderArgsV2(token_id=yes, amount=4.5, side="BUY"), order_type=OrderType.FOK
        )
        return {
            "resting": resting,
            "filled": filled,
            "market_order": market_order,
            "taker_trades": taker.get_trades(TradeParams(market=market.condition_id)),
            "one": taker.get_trades(TradeParams(id=filled["tradeIDs"][0])),
            "paged": taker.get_trades_paginated(TradeParams(asset_id=yes)),
            "maker_trades": maker.get_trades(),
            "order": taker.get_order(filled["orderID"]),
            "last": taker.get_last_trade_price(yes),
            "lasts": taker.get_last_trades_prices([BookParams(token_id=yes), BookParams(token_id=no)]),
        }

    got = await in_thread(session)

    filled = got["filled"]
    assert (filled["success"], filled["status"], filled["makingAmount"], filled["takingAmount"]) == (
        True,
        "matched",
        "4.5",
        "10",
    )
    (trade_id,) = filled["tradeIDs"]
    (tx,) = filled["transactionsHashes"]  # resolved by the client's own poll of the trade
    assert (tx[:2], len(tx)) == ("0x", 66)
    assert got["market_order"]["status"] == "matched"
    assert got["market_order"]["takingAmount"] == "10"  # $4.5 at 0.45

    trades = got["taker_trades"]
    assert len(trades) == 2
    assert [t["id"] for t in got["one"]] == [trade_id]
    assert sorted(t["id"] for t in got["paged"]["trades"]) == sorted(t["id"] for t in trades)
    for trade in trades:
        assert trade["status"] in TRADE_STATUSES
        assert (trade["match_time"].isdigit(), trade["last_update"].isdigit()) == (True, True)  # epoch seconds
        assert abs(int(trade["match_time"]) - sim.now()) < 60
        assert (trade["trader_side"], trade["side"], trade["asset_id"], trade["price"]) == ("TAKER", "BUY", yes, "0.45")
        assert [m["side"] for m in trade["maker_orders"]] == ["BUY"]  # always sent (§11 item 11): the maker bought NO
    first = next(t for t in trades if t["id"] == trade_id)
    assert (first["size"], first["transaction_hash"], first["taker_order_id"]) == ("10", tx, filled["orderID"])
    maker_trades = got["maker_trades"]
    assert {t["id"] for t in maker_trades} == {t["id"] for t in trades}
    assert {t["trader_side"] for t in maker_trades} == {"MAKER"}
    assert {m["order_id"] for t in maker_trades for m in t["maker_orders"]} == {got["resting"]["orderID"]}
    order = got["order"]
    assert (order["status"], order["size_matched"], order["associate_trades"]) == ("MATCHED", "10", [trade_id])
    assert got["last"] == {"price": "0.45", "side": "BUY"}
    assert got["lasts"] == [
        {"token_id": yes, "price": "0.45", "side": "BUY"},
        {"token_id": no, "price": "0.55", "side": "SELL"},
    ]


async def test_official_client_batch_posts_and_cancels_every_way(sim: SimVenue) -> None:
    market, other = sim.exchange.markets[0], sim.exchange.markets[1]
    yes = market.token_ids[0]

    def session() -> dict[str, Any]:
        client = client_for(sim, KEY1)
        orders = [
            client.create_order(OrderArgsV2(token_id=yes, price=p, size=10, side="BUY")) for p in (0.3, 0.31, 0.32)
        ]
        elsewhere = client.create_order(OrderArgsV2(token_id=other.token_ids[0], price=0.3, size=10, side="BUY"))
        posted = client.post_orders([PostOrdersV2Args(order=o, orderType=OrderType.GTC) for o in [*orders, elsewhere]])
        ids = [p["orderID"] for p in posted]
        too_many = [PostOrdersV2Args(order=orders[0])] * 16
        with pytest.raises(PolyApiException) as refused:
            client.post_orders(too_many)
        return {
            "posted": posted,
            "too_many": (refused.value.status_code, refused.value.error_msg),
            "open": client.get_open_orders(OpenOrderParams(market=market.condition_id)),
            "scoring": client.is_order_scoring(OrderScoringParams(orderId=ids[0])),
            "one": client.cancel_orders([ids[0]]),
            "market": client.cancel_market_orders(OrderMarketCancelParams(market=market.condition_id)),
            "all": client.cancel_all(),
            "none": client.cancel_all(),
            "after": client.get_open_orders(),
            "legacy": client.get_pre_migration_orders(),
            "ids": ids,
        }

    got = await in_thread(session)

    ids = got["ids"]
    assert [(p["success"], p["status"], p["errorMsg"]) for p in got["posted"]] == [(True, "live", "")] * 4
    assert got["too_many"] == (400, {"error": "Payload exceeds the limit"})  # at most 15 per POST /orders
    assert sorted(o["id"] for o in got["open"]) == sorted(ids[:3])
    assert got["scoring"] == {"scoring": False}
    assert got["one"] == {"canceled": [ids[0]], "not_canceled": {}}
    assert (sorted(got["market"]["canceled"]), got["market"]["not_canceled"]) == (sorted(ids[1:3]), {})
    assert got["all"] == {"canceled": [ids[3]], "not_canceled": {}}
    assert got["none"] == {"canceled": [], "not_canceled": {}}
    assert (got["after"], got["legacy"]) == ([], [])


async def test_official_client_heartbeats_and_recovers_a_stale_id(sim: SimVenue) -> None:
    """`POST /v1/heartbeats`: the first (empty id) starts the dead-man session; a stale id is refused with
    `400 {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": <current>}` (§11 item 10). py-clob-client-v2 does not
    recover by itself: it raises, and the caller sends again with the id the error carries, as production wants."""

    def session() -> dict[str, Any]:
        client = client_for(sim, KEY1)
        first = client.post_heartbeat("")
        second = client.post_heartbeat(first["heartbeat_id"])
        with pytest.raises(PolyApiException) as stale:
            client.post_heartbeat(first["heartbeat_id"])  # already used: stale
        recovered = client.post_heartbeat(stale.value.error_msg["heartbeat_id"])
        return {"first": first, "second": second, "stale": stale.value, "recovered": recovered}

    got = await in_thread(session)

    assert got["first"]["heartbeat_id"] != got["second"]["heartbeat_id"]
    stale = got["stale"]
    assert stale.status_code == 400
    assert stale.error_msg == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": got["second"]["heartbeat_id"]}
    assert set(got["recovered"]) == {"heartbeat_id"}
    assert got["recovered"]["heartbeat_id"] not in (got["first"]["heartbeat_id"], got["second"]["heartbeat_id"])


async def test_official_client_reads_balance_and_allowance(sim: SimVenue) -> None:
    market = sim.exchange.markets[0]
    yes, no = market.token_ids

    def session() -> dict[str, Any]:
        maker, client = client_for(sim, KEY2), client_for(sim, KEY1)
        collateral = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
        before = client.get_balance_allowance(collateral)
        maker.create_and_post_order(OrderArgsV2(token_id=no, price=0.55, size=10, side="BUY"))
        client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.45, size=10, side="BUY"))
        shares = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=yes)
        return {
            "before": before,
            "after": client.get_balance_allowance(collateral),
            "updated": client.update_balance_allowance(collateral),
            "shares": client.get_balance_allowance(shares),
            "closed_only": client.get_closed_only_mode(),
            "keys": client.get_api_keys(),
        }

    got = await in_thread(session)

    start = 10_000 * 10**6  # a new wallet's 10,000 pUSD, in base units
    assert got["before"]["balance"] == str(start)
    assert got["after"]["balance"] == got["updated"]["balance"] == str(start - 4_500_000)  # paid 10 x 0.45
    assert got["shares"]["balance"] == "10000000"
    assert int(got["before"]["allowance"]) > start  # unlimited
    assert got["closed_only"] == {"closed_only": False}
    assert len(got["keys"]["apiKeys"]) == 1


async def test_official_client_meets_the_venues_restrictions_and_rate_limits(sim: SimVenue) -> None:
    """py-clob-client-v2 reads none of the `Poly-RateLimit-*` headers: they are on its order and cancel replies
    nonetheless, and a refusal reaches the caller as a PolyApiException with the venue's status (429 with
    `Retry-After` past the signer's cancel bucket; 425 during an engine restart; closed-only as the venue says it)."""
    token = sim.exchange.markets[0].token_ids[0]

    def fault(body: dict[str, object]) -> None:  # as an operator arms one: the sim's admin endpoint
        httpx.post(sim.urls.rest + "/_sim/faults", json=body).raise_for_status()

    def session() -> dict[str, Any]:
        client = client_for(sim, KEY3)
        with replies_seen() as seen:
            client.create_and_post_order(OrderArgsV2(token_id=token, price=0.3, size=10, side="BUY"))
            placed = seen[-1]
            unknown = [f"0x{i:064x}" for i in range(121)]
            with pytest.raises(PolyApiException) as never:
                client.cancel_orders(unknown)  # 121 ids cost more than a Standard cancel burst (120): never pass
            endless = seen[-1]
            client.cancel_orders(unknown[:120])  # the whole burst...
            with pytest.raises(PolyApiException) as limited:
                client.cancel_orders(unknown[:120])  # ... so the next one waits 1.5 s for its 120 tokens
            refused = seen[-1]
        fault({"kind": "restart", "secs": 30})
        with pytest.raises(PolyApiException) as restarting:
            client.create_and_post_order(OrderArgsV2(token_id=token, price=0.31, size=10, side="BUY"))
        fault({"kind": "clear"})
        fault({"kind": "closed_only"})
        closed_only = client.get_closed_only_mode()
        fault({"kind": "clear"})
        return {
            "placed": placed.headers,
            "refused": refused.headers,
            "never": never.value,
            "endless": endless.headers,
            "limited": limited.value,
            "restarting": restarting.value,
            "closed_only": closed_only,
        }

    got = await in_thread(session)

    placed = got["placed"]
    assert placed["poly-ratelimit-tier"] == "standard"
    assert float(placed["poly-ratelimit-remaining"]) < 60  # one order taken from a Standard burst of 60
    assert float(placed["poly-ratelimit-reset"]) > sim.now() - 1
    for refusal in (got["never"], got["limited"]):
        assert (refusal.status_code, refusal.error_msg) == (429, {"error": "Too Many Requests"})
    assert "retry-after" not in got["endless"]  # no wait makes it pass: it has to be split
    assert 1 <= float(got["refused"]["retry-after"]) <= 2
    assert float(got["refused"]["poly-ratelimit-remaining"]) < 120
    assert got["restarting"].status_code == 425
    assert got["closed_only"] == {"closed_only": True}
