"""Every fault kind, through the admin endpoint or the injector, observed by a client over real sockets."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.venues.sim._support import order
from tests.venues.sim.conftest import expect_server_close, make_trader, receive_json
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.polymarket.parse import (
    BAD_FIELD,
    MALFORMED_JSON,
    NEGATIVE_SIZE,
    UNKNOWN_EVENT_TYPE,
    parse_market_frame,
)
from trader.venues.sim.events import TradeEvent
from trader.venues.sim.faults import FAULT_KINDS, FAULT_PARAMETERS, apply_fault, parse_fault_spec
from trader.venues.sim.venue import SimVenue


async def test_drop_stall_and_malformed_frames_on_the_market_channel(sim: SimVenue, http: httpx.AsyncClient) -> None:
    yes, no = sim.exchange.markets[0].token_ids
    subscribe = json.dumps({"type": "market", "assets_ids": [yes, no], "initial_dump": False})
    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(subscribe)
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"

        sim.faults.stall_ws()
        await ws.send_message("PING")
        with trio.move_on_after(0.3) as waited:
            await ws.get_message()
        assert waited.cancelled_caught  # no PONG while stalled, and the socket is still open
        sim.faults.resume_ws()
        assert await ws.get_message() == "PONG"

        assert sim.faults.malformed_frames("garbage") == 1
        assert str(await ws.get_message()).startswith('{"event_type": "price_change", "market": "0x')
        sim.faults.malformed_frames("out_of_range")
        bad = await receive_json(ws)
        assert isinstance(bad, dict)
        assert (bad["price_changes"][0]["price"], bad["price_changes"][0]["size"]) == ("1.5", "-10")

        reply = await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "drop_ws"})
        assert reply.json() == {"result": "dropped 1 connections"}
        reason = await expect_server_close(ws)
    assert reason.code == 1006  # abnormal closure: no close frame was sent


@pytest.mark.parametrize(
    ("frame", "reasons"),
    [
        ("garbage", [MALFORMED_JSON]),
        ("out_of_range", [NEGATIVE_SIZE]),  # the size of -10 (checked before the price of 1.5)
        ("unknown_event", [UNKNOWN_EVENT_TYPE]),
        ("missing_fields", [BAD_FIELD]),
    ],
)
async def test_each_malformed_frame_through_the_endpoint(
    sim: SimVenue, http: httpx.AsyncClient, frame: str, reasons: list[str]
) -> None:
    """`frame` names the kind: `kind` in the body is the fault's, so it could only ever send the default, garbage."""
    yes, no = sim.exchange.markets[0].token_ids
    ticks = {yes: sim.exchange.markets[0].tick_size, no: sim.exchange.markets[0].tick_size}
    async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
        await ws.send_message(json.dumps({"type": "market", "assets_ids": [yes, no], "initial_dump": False}))
        await ws.send_message("PING")
        assert await ws.get_message() == "PONG"  # subscribed

        reply = await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "malformed_frames", "frame": frame})

        assert reply.json() == {"result": f"{frame} frame sent to 1 connections"}
        parsed = parse_market_frame(await ws.get_message(), ticks)
        assert [drop.reason for drop in parsed.drops] == reasons
        assert parsed.events == []


async def test_fault_parameters_a_kind_does_not_take_are_refused(sim: SimVenue, http: httpx.AsyncClient) -> None:
    url = sim.urls.rest + "/_sim/faults"

    misspelt = await http.post(url, json={"kind": "malformed_frames", "frame_kind": "out_of_range"})
    extra = await http.post(url, json={"kind": "malformed_frames", "frame": "garbage", "count": 2})
    unknown = await http.post(url, json={"kind": "malformed_frames", "frame": "poetry"})

    assert (misspelt.status_code, misspelt.json()) == (
        400,
        {"error": "frame_kind: malformed_frames does not take frame_kind; it takes frame"},
    )
    assert (extra.status_code, extra.json()) == (
        400,
        {"error": "count: malformed_frames does not take count; it takes frame"},
    )
    assert unknown.status_code == 400
    assert "frame: expected one of ['garbage', 'missing_fields', 'out_of_range', 'unknown_event']" in unknown.text
    assert sorted(FAULT_PARAMETERS) == sorted(FAULT_KINDS)


async def test_http_delay_and_error_bursts(sim: SimVenue, http: httpx.AsyncClient) -> None:
    armed = await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "http_errors", "status": 503, "count": 2})
    assert armed.json() == {"result": "http_errors armed"}
    statuses = [(await http.get(sim.urls.rest + "/ok")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    sim.faults.http_errors(429, path_prefix="/book")
    assert (await http.get(sim.urls.rest + "/ok")).status_code == 200
    limited = await http.get(sim.urls.rest + "/book", params={"token_id": "1"})
    assert (limited.status_code, limited.json()) == (429, {"error": "Too Many Requests"})

    sim.faults.delay_http(0.3, count=1)
    start = trio.current_time()
    assert (await http.get(sim.urls.rest + "/ok")).status_code == 200
    assert trio.current_time() - start >= 0.3
    start = trio.current_time()
    await http.get(sim.urls.rest + "/ok")
    assert trio.current_time() - start < 0.3


async def test_reject_one_side_of_a_pair(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "reject_orders", "token_id": market.token_ids[1]})

    yes_leg = await alice.post(alice.order(market, Side.BUY, "0.30", "10", outcome=0))
    no_leg = await alice.post(alice.order(market, Side.BUY, "0.30", "10", outcome=1))
    no_again = await alice.post(alice.order(market, Side.BUY, "0.30", "10", outcome=1))

    assert yes_leg.status_code == 200
    assert (no_leg.status_code, no_leg.json()) == (400, {"error": "not enough balance / allowance"})
    assert no_again.status_code == 200  # count=1: only the next order was refused


async def test_partial_fill_rests_the_remainder(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    yes, no = market.token_ids
    sim.exchange.submit(order(no, Side.BUY, "0.60", "10", owner="mm"), sim.now())  # YES ask 0.40 x 10
    sim.faults.partial_fills(fraction=Decimal("0.5"))

    reply = (await alice.post(alice.order(market, Side.BUY, "0.40", "10"))).json()

    assert (reply["status"], reply["takingAmount"], reply["makingAmount"]) == ("live", "5", "2")
    (resting,) = sim.exchange.open_orders(alice.credentials.api_key)
    assert resting.remaining == 5 * 10**6
    assert sim.exchange.best_prices(yes) == (4000, None)  # the maker "pulled" the rest: the book is not crossed


async def test_ghost_fill_goes_matched_then_failed(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    sim.exchange.submit(order(market.token_ids[1], Side.BUY, "0.60", "10", owner="mm"), sim.now())
    await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "ghost_fills"})

    failed = trio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, TradeEvent) and event.trade.status == "FAILED":
            failed.set()

    sim.exchange.add_listener(on_event)
    reply = (await alice.post(alice.order(market, Side.BUY, "0.40", "10"))).json()
    (trade_id,) = reply["tradeIDs"]
    with trio.fail_after(5):
        await failed.wait()

    trades = (await alice.request("GET", "/data/trades", id=trade_id)).json()["data"]
    assert [(t["id"], t["status"], t["transaction_hash"]) for t in trades] == [(trade_id, "FAILED", "")]
    wallet = sim.exchange.wallet(alice.signer.address)
    assert (wallet.shares.get(market.token_ids[0], 0), wallet.collateral) == (0, 10_000 * 10**6)


@pytest.mark.parametrize(
    ("path", "statuses", "kept"),
    [
        ("retrying", ["MATCHED", "MINED", "RETRYING", "MINED", "CONFIRMED"], True),
        ("failed_after_mined", ["MATCHED", "MINED", "FAILED"], False),
        ("not_broadcasted", ["MATCHED_NOT_BROADCASTED", "MATCHED", "MINED", "CONFIRMED"], True),
    ],
)
async def test_settlement_paths_of_2026_as_a_fault(
    sim: SimVenue, http: httpx.AsyncClient, path: str, statuses: list[str], kept: bool
) -> None:
    alice = make_trader(sim, http)
    market = sim.exchange.markets[0]
    sim.exchange.submit(order(market.token_ids[1], Side.BUY, "0.60", "10", owner="mm"), sim.now())
    armed = await http.post(sim.urls.rest + "/_sim/faults", json={"kind": "settlement_path", "path": path})
    assert armed.json() == {"result": f"settlement_path {path} armed"}
    seen: list[str] = []
    done = trio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, TradeEvent):
            seen.append(event.trade.status)
            if event.trade.status in ("CONFIRMED", "FAILED"):
                done.set()

    sim.exchange.add_listener(on_event)
    async with trio_websocket.open_websocket_url(sim.urls.ws_user) as ws:
        auth = alice.credentials
        await ws.send_message(
            json.dumps(
                {"type": "user", "auth": {"apiKey": auth.api_key, "secret": auth.secret, "passphrase": auth.passphrase}}
            )
        )
        reply = (await alice.post(alice.order(market, Side.BUY, "0.40", "10"))).json()
        (trade_id,) = reply["tradeIDs"]
        with trio.fail_after(5):
            await done.wait()
        frames: list[dict[str, Any]] = []
        while len(frames) < len(statuses):
            frame = await receive_json(ws)
            assert isinstance(frame, dict)
            if frame.get("event_type") == "trade":
                frames.append(frame)
    assert seen == statuses
    assert [f["status"] for f in frames] == statuses  # the user channel reports every step
    (listed,) = (await alice.request("GET", "/data/trades", id=trade_id)).json()["data"]
    assert listed["status"] == statuses[-1]
    # trade times as production sends them in 2026: epoch seconds as strings (REST and the user channel)
    trade = sim.exchange.trade(trade_id)
    assert trade is not None
    for report in (listed, *frames):
        assert report["match_time"] == str(int(trade.match_time))
        assert report["last_update"].isdigit()
    assert listed["last_update"] == str(int(trade.last_update))
    wallet = sim.exchange.wallet(alice.signer.address)
    assert wallet.shares.get(market.token_ids[0], 0) == (10 * 10**6 if kept else 0)


async def test_admin_lists_clears_and_refuses_unknown_kinds(sim: SimVenue, http: httpx.AsyncClient) -> None:
    url = sim.urls.rest + "/_sim/faults"
    await http.post(url, json={"kind": "ghost_fills", "count": 2})
    await http.post(url, json={"kind": "stall_ws"})
    assert [f["kind"] for f in (await http.get(url)).json()] == ["ghost", "stall_ws"]
    assert (await http.delete(url)).json() == {"result": "cleared"}
    assert (await http.get(url)).json() == []
    unknown = await http.post(url, json={"kind": "meteor"})
    assert unknown.status_code == 400
    assert "unknown fault kind 'meteor'" in unknown.json()["error"]


def test_fault_specs_from_the_command_line() -> None:
    assert parse_fault_spec("http_errors:status=503,count=3") == ("http_errors", {"status": "503", "count": "3"})
    assert parse_fault_spec("drop_ws") == ("drop_ws", {})
    with pytest.raises(InputError, match="expected key=value"):
        parse_fault_spec("http_errors:status")


async def test_fault_parameters_are_checked(sim: SimVenue) -> None:
    with pytest.raises(InputError, match="fraction"):
        apply_fault(sim.faults, "partial_fills", {"fraction": "1.5"})
    with pytest.raises(InputError, match="status"):
        apply_fault(sim.faults, "http_errors", {"status": "418"})
    with pytest.raises(InputError, match="frame: expected one of"):
        apply_fault(sim.faults, "malformed_frames", {"frame": "poetry"})
    with pytest.raises(InputError, match="give the frame kind once"):
        apply_fault(sim.faults, "malformed_frames", {"frame": "garbage", "kind": "garbage"})
    with pytest.raises(InputError, match="ghost_fills does not take fraction; it takes count, owner, side, token_id"):
        apply_fault(sim.faults, "ghost_fills", {"fraction": "0.5"})
    with pytest.raises(InputError, match="path"):
        apply_fault(sim.faults, "settlement_path", {"path": "sideways"})


async def test_the_command_line_still_takes_kind_for_the_frame(sim: SimVenue) -> None:
    kind, params = parse_fault_spec("malformed_frames:kind=unknown_event")

    assert apply_fault(sim.faults, kind, params) == "unknown_event frame sent to 0 connections"
