"""A market resolving and a market appearing, as clients see them over real sockets: the market channel (custom
features only), Gamma, the CLOB market endpoint and the admin endpoint."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio_websocket

from tests.venues.sim._support import market, order
from tests.venues.sim.conftest import receive_json
from trader.domain.numbers import Side
from trader.venues.sim.venue import SimVenue


async def _subscribe(ws: trio_websocket.WebSocketConnection, assets: list[str], *, custom: bool | None) -> None:
    message: dict[str, object] = {"type": "market", "assets_ids": assets, "initial_dump": False}
    if custom is not None:
        message["custom_feature_enabled"] = custom
    await ws.send_message(json.dumps(message))
    await ws.send_message("PING")
    assert await ws.get_message() == "PONG"


async def _next_of(ws: trio_websocket.WebSocketConnection, event_type: str) -> dict[str, object]:
    while True:
        frame = await receive_json(ws)
        if isinstance(frame, dict) and frame.get("event_type") == event_type:
            return frame


async def _quiet(ws: trio_websocket.WebSocketConnection) -> list[object]:
    """What arrives before a PONG: the frames sent so far."""
    await ws.send_message("PING")
    seen: list[object] = []
    while True:
        with trio.fail_after(5):
            message = await ws.get_message()
        if message == "PONG":
            return seen
        seen.append(json.loads(message))


@pytest.mark.parametrize(
    ("winner", "winning_index", "prices"),
    [("yes", 0, ["1", "0"]), ("no", 1, ["0", "1"]), ("50-50", None, ["0.5", "0.5"])],
)
async def test_a_resolution_reaches_custom_feature_subscribers_gamma_and_the_clob(
    sim: SimVenue, http: httpx.AsyncClient, winner: str, winning_index: int | None, prices: list[str]
) -> None:
    m = sim.exchange.markets[0]
    yes, no = m.token_ids
    sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), sim.now())
    async with (
        trio_websocket.open_websocket_url(sim.urls.ws_market) as custom,
        trio_websocket.open_websocket_url(sim.urls.ws_market) as plain,
        trio_websocket.open_websocket_url(sim.urls.ws_market) as elsewhere,
    ):
        await _subscribe(custom, [yes, no], custom=True)
        await _subscribe(plain, [yes, no], custom=None)
        await _subscribe(elsewhere, [sim.exchange.markets[1].token_ids[0]], custom=True)

        reply = await http.post(
            sim.urls.rest + "/_sim/resolve", json={"condition_id": m.condition_id, "winner": winner}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"result": "resolved", "payouts": prices}

        frame = await _next_of(custom, "market_resolved")
        assert frame["market"] == m.condition_id
        assert frame["id"] == m.gamma_id
        assert frame["assets_ids"] == [yes, no]
        assert frame["winning_asset_id"] == ("" if winning_index is None else m.token_ids[winning_index])
        assert frame["winning_outcome"] == ("" if winning_index is None else m.outcomes[winning_index])
        kinds = [f["event_type"] for f in await _quiet(plain) if isinstance(f, dict)]
        assert "price_change" in kinds  # the resting bid was cancelled
        assert "market_resolved" not in kinds
        assert await _quiet(elsewhere) == []

    clob = (await http.get(f"{sim.urls.rest}/markets/{m.condition_id}")).json()
    assert (clob["closed"], clob["accepting_orders"]) == (True, False)
    assert [t["winner"] for t in clob["tokens"]] == [winning_index == 0, winning_index == 1]
    (gamma,) = (await http.get(sim.urls.gamma + "/markets", params={"condition_ids": m.condition_id})).json()
    assert (gamma["closed"], gamma["active"], json.loads(gamma["outcomePrices"])) == (True, False, prices)
    listed = (await http.get(sim.urls.gamma + "/markets", params={"closed": "false"})).json()
    assert m.condition_id not in {g["conditionId"] for g in listed}
    book = (await http.get(sim.urls.rest + "/book", params={"token_id": yes})).json()
    assert book["bids"] == []

    again = await http.post(sim.urls.rest + "/_sim/resolve", json={"condition_id": m.condition_id, "winner": "no"})
    assert again.status_code == 400
    assert "already resolved" in again.json()["error"]
    bad = await http.post(sim.urls.rest + "/_sim/resolve", json={"condition_id": m.condition_id, "winner": ["x"]})
    assert bad.status_code == 400


async def test_a_new_market_is_announced_to_custom_feature_connections_and_listed(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    followed = sim.exchange.markets[0].token_ids[0]
    new = market("appears-later")
    async with (
        trio_websocket.open_websocket_url(sim.urls.ws_market) as custom,
        trio_websocket.open_websocket_url(sim.urls.ws_market) as flipped,
    ):
        await _subscribe(custom, [followed], custom=True)
        await _subscribe(flipped, [followed], custom=True)
        await _subscribe(flipped, [followed], custom=False)  # re-sending the same asset flips the flag

        sim.exchange.list_market(new, sim.now())

        frame = await _next_of(custom, "new_market")
        assert frame["market"] == frame["condition_id"] == new.condition_id
        assert frame["assets_ids"] == frame["clob_token_ids"] == list(new.token_ids)
        assert (frame["question"], frame["order_price_min_tick_size"], frame["active"]) == (new.question, "0.01", True)
        assert await _quiet(flipped) == []

    gamma = (await http.get(sim.urls.gamma + "/markets", params={"condition_ids": new.condition_id})).json()
    assert [g["conditionId"] for g in gamma] == [new.condition_id]
    assert (await http.get(f"{sim.urls.rest}/markets/{new.condition_id}")).status_code == 200


async def test_best_bid_ask_reaches_custom_feature_subscribers_when_the_top_changes(sim: SimVenue) -> None:
    m = sim.exchange.markets[0]
    yes, no = m.token_ids
    async with (
        trio_websocket.open_websocket_url(sim.urls.ws_market) as custom,
        trio_websocket.open_websocket_url(sim.urls.ws_market) as plain,
    ):
        await _subscribe(custom, [yes, no], custom=True)
        await _subscribe(plain, [yes, no], custom=False)
        sim.exchange.submit(order(yes, Side.BUY, "0.40", "10", owner="mm"), sim.now())
        frames = [f for f in await _quiet(custom) if isinstance(f, dict) and f["event_type"] == "best_bid_ask"]
        # captured/ws_market_best_bid_ask_msg.json's shape, for each token of the (complementary) market
        assert [(f["asset_id"], f["best_bid"], f["best_ask"], f["spread"]) for f in frames] == [
            (yes, "0.4", "1", "0.6"),  # an empty ask side is "1"
            (no, "0", "0.6", "0.6"),  # ... and an empty bid side "0"
        ]
        assert frames[0]["market"] == m.condition_id
        assert str(frames[0]["timestamp"]).isdigit()
        sim.exchange.submit(order(yes, Side.BUY, "0.39", "10", owner="mm"), sim.now())  # below the top: no change
        assert [f for f in await _quiet(custom) if isinstance(f, dict) and f["event_type"] == "best_bid_ask"] == []
        kinds = [f["event_type"] for f in await _quiet(plain) if isinstance(f, dict)]
        assert "price_change" in kinds
        assert "best_bid_ask" not in kinds
