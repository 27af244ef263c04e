"""The market and user WebSocket channels, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import trio_websocket

from tests.venues.sim._support import order
from tests.venues.sim.conftest import expect_server_close, make_trader, receive_json, static_config
from trader.domain.numbers import Side
from trader.venues.sim.venue import SimVenue, open_sim_venue


async def test_market_channel_snapshot_then_mirrored_price_changes(sim: SimVenue) -> None:
    market = sim.exchange.markets[0]
    yes, no = market.token_ids
    sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), sim.now())
    sim.exchange.submit(order(yes, Side.BUY, "0.42", "20", owner="mm"), sim.now())

    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(json.dumps({"type": "MARKET", "assets_ids": [yes, no]}))
        snapshot = await receive_json(ws)
        assert isinstance(snapshot, list)
        assert [(b["event_type"], b["asset_id"]) for b in snapshot] == [("book", yes), ("book", no)]
        assert snapshot[0]["bids"] == [{"price": "0.4", "size": "10"}, {"price": "0.42", "size": "20"}]
        assert snapshot[1]["asks"] == [{"price": "0.6", "size": "10"}, {"price": "0.58", "size": "20"}]
        assert (snapshot[0]["tick_size"], snapshot[0]["last_trade_price"]) == ("0.01", "0.5")

        sim.exchange.submit(order(no, Side.BUY, "0.55", "5", owner="mm2"), sim.now())
        frame = await receive_json(ws)
        assert isinstance(frame, dict)
        assert frame["event_type"] == "price_change"
        assert [
            (c["asset_id"], c["price"], c["size"], c["side"], c["best_bid"], c["best_ask"])
            for c in frame["price_changes"]
        ] == [
            (yes, "0.45", "5", "SELL", "0.42", "0.45"),
            (no, "0.55", "5", "BUY", "0.55", "0.58"),
        ]

        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"

        await ws.send_message(json.dumps({"operation": "unsubscribe", "assets_ids": [no]}))
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"  # the unsubscribe was processed before this
        sim.exchange.submit(order(yes, Side.BUY, "0.41", "7", owner="mm"), sim.now())
        frame = await receive_json(ws)
        assert isinstance(frame, dict)
        assert [c["asset_id"] for c in frame["price_changes"]] == [yes]

        await ws.send_message("not json")
        assert await receive_json(ws) == {"error": "invalid message: expected a JSON object or PING"}


async def test_trades_publish_last_trade_then_changes_then_books(sim: SimVenue) -> None:
    yes, no = sim.exchange.markets[0].token_ids
    sim.exchange.submit(order(no, Side.BUY, "0.55", "10", owner="mm"), sim.now())  # YES ask 0.45
    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(json.dumps({"type": "market", "assets_ids": [yes], "initial_dump": False}))
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"  # no snapshot came first

        sim.exchange.submit(order(yes, Side.BUY, "0.45", "10", owner="taker"), sim.now())

        kinds = [await receive_json(ws) for _ in range(3)]
        assert [k["event_type"] for k in kinds if isinstance(k, dict)] == ["last_trade_price", "price_change", "book"]
        last = kinds[0]
        assert isinstance(last, dict)
        assert (last["price"], last["size"], last["side"]) == ("0.45", "10", "BUY")


async def test_asset_limit_closes_the_connection_with_a_reason() -> None:
    async with open_sim_venue(static_config(asset_limit=2)) as sim:
        yes, no = sim.exchange.markets[0].token_ids
        other = sim.exchange.markets[1].token_ids[0]
        async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
            await ws.send_message(json.dumps({"type": "market", "assets_ids": [yes, no], "initial_dump": False}))
            await ws.send_message(json.dumps({"operation": "subscribe", "assets_ids": [other]}))
            reason = await expect_server_close(ws)
        assert (reason.code, reason.reason) == (
            1008,
            "too many assets: at most 2 per connection",
        )


async def test_user_channel_reports_orders_and_trades_through_settlement(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    no = market.token_ids[1]
    creds = alice.credentials
    auth = {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}
    async with trio_websocket.open_websocket_url(sim.urls.ws_user) as ws:
        await ws.send_message(json.dumps({"type": "user", "auth": auth, "markets": [market.condition_id]}))
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"

        sim.exchange.submit(order(no, Side.BUY, "0.60", "10", owner="mm"), sim.now())
        placed = await alice.post(alice.order(market, Side.BUY, "0.40", "10"))
        assert placed.status_code == 200, placed.text

        events = [await receive_json(ws) for _ in range(5)]

    order_id = placed.json()["orderID"]
    orders = [e for e in events if isinstance(e, dict) and e["event_type"] == "order"]
    assert [(o["type"], o["status"], o["id"]) for o in orders] == [
        ("PLACEMENT", "LIVE", order_id),
        ("UPDATE", "MATCHED", order_id),
    ]
    assert orders[1]["size_matched"] == "10"
    trades = [e for e in events if isinstance(e, dict) and e["event_type"] == "trade"]
    assert [t["status"] for t in trades] == ["MATCHED", "MINED", "CONFIRMED"]
    first = trades[0]
    assert (first["trader_side"], first["owner"], first["taker_order_id"]) == ("TAKER", creds.api_key, order_id)
    assert first["maker_orders"][0]["asset_id"] == no
    assert trades[1]["transaction_hash"].startswith("0x")


async def test_user_channel_refuses_bad_credentials(sim: SimVenue, http: httpx.AsyncClient) -> None:
    creds = make_trader(sim, http).credentials
    auth = {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": "wrong"}
    async with trio_websocket.open_websocket_url(sim.urls.ws_user) as ws:
        await ws.send_message(json.dumps({"type": "user", "auth": auth}))
        reason = await expect_server_close(ws)
    assert (reason.code, reason.reason) == (1008, "Unauthorized/Invalid api key")
