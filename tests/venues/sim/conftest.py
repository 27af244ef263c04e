from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import trio
import trio_websocket

from trader.domain.numbers import Side
from trader.venues.polymarket.auth import ApiCredentials, l2_headers
from trader.venues.polymarket.signing import OrderSigner, SignedOrder, order_body
from trader.venues.sim.exchange import ExchangeConfig
from trader.venues.sim.markets import SimMarket, make_market, make_neg_risk_event
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

KEY1 = "0x0000000000000000000000000000000000000000000000000000000000000001"
KEY2 = "0x0000000000000000000000000000000000000000000000000000000000000002"


def sim_markets() -> tuple[list[SimMarket], list[object]]:
    binary = make_market("srv:binary", question="Will the test pass?")
    coarse = make_market("srv:t005", question="Tick 0.005 market?", tick_size=Decimal("0.005"))
    event, neg = make_neg_risk_event("srv:nr", title="Who wins", outcomes=("A", "B", "C"))
    return [binary, coarse, *neg], [event]


def static_config(**overrides: object) -> SimConfig:
    markets, events = sim_markets()
    values: dict[str, object] = {
        "scenario": StaticScenario(markets, events),  # type: ignore[arg-type]
        "exchange": ExchangeConfig(mined_after_secs=0.05, confirmed_after_secs=0.1),
        "timer_period_secs": 0.02,
    }
    values.update(overrides)
    return SimConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[SimVenue]:
    async with open_sim_venue(static_config()) as venue:
        yield venue


@dataclass
class Trader:
    """A client of the sim speaking the real protocol with the project's own signing and auth helpers."""

    sim: SimVenue
    http: httpx.AsyncClient
    signer: OrderSigner
    credentials: ApiCredentials

    async def request(self, method: str, path: str, body: object = None, **params: str) -> httpx.Response:
        text = json.dumps(body, separators=(",", ":")) if body is not None else None
        headers = l2_headers(
            self.credentials,
            address=self.signer.address,
            timestamp=int(time.time()),
            method=method,
            request_path=path,
            body=text,
        )
        return await self.http.request(
            method, self.sim.urls.rest + path, content=text, headers=headers, params=params or None
        )

    def order(self, market: SimMarket, side: Side, price: str, size: str, *, outcome: int = 0) -> SignedOrder:
        return self.signer.limit_order_with_id(
            token_id=market.token_ids[outcome],
            side=side,
            price=Decimal(price),
            size=Decimal(size),
            tick_size=market.tick_size,
            neg_risk=market.neg_risk,
        )[0]

    def body(self, order: SignedOrder, order_type: str = "GTC", *, post_only: bool = False) -> object:
        return json.loads(
            order_body(
                order, owner=self.credentials.api_key, order_type=order_type, post_only=post_only, defer_exec=False
            )
        )

    async def post(self, order: SignedOrder, order_type: str = "GTC") -> httpx.Response:
        return await self.request("POST", "/order", self.body(order, order_type))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def make_trader(sim: SimVenue, http: httpx.AsyncClient, key: str = KEY1) -> Trader:
    signer = OrderSigner(key)
    return Trader(sim, http, signer, sim.api_keys.derive(signer.address, 0))


async def receive_json(ws: trio_websocket.WebSocketConnection) -> object:
    with trio.fail_after(5):
        message = await ws.get_message()
    return json.loads(message)


async def expect_server_close(ws: trio_websocket.WebSocketConnection) -> trio_websocket.CloseReason:
    """Wait for the server to close `ws`, and return its close reason.

    trio-websocket 0.12's client does not close its socket when the server closes first (its reader waits for the
    TCP close, then `aclose()` returns early because a close reason is already set), so the stream is closed here."""
    with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
        await ws.get_message()
    await trio.aclose_forcefully(ws._stream)
    assert closed.value.reason is not None
    return closed.value.reason
