"""The sim's side of the venue's trading restrictions and per-signer rate limits (protocol.md §4, §11 items 3-5), over
real sockets, on a MockClock that only moves when the test jumps it (nothing on the wire is ever overtaken by time):
the restart's 425s and the post-only window after it, cancel-only, trading disabled, closed-only, the signer's
token buckets with their headers and the tier endpoint, the 1000-id cap on `DELETE /orders`."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio.testing

from tests.venues.sim.conftest import KEY1, KEY2, Trader, make_trader, static_config
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.polymarket.auth import l2_headers
from trader.venues.sim.faults import FAULT_KINDS, FAULT_PARAMETERS, FaultInjector, apply_fault
from trader.venues.sim.ratelimit import SIGNER_TIERS, SignerLimits
from trader.venues.sim.restrictions import CANCEL_ONLY_TEXT, DISABLED_TEXT, POST_ONLY_TEXT
from trader.venues.sim.venue import SimVenue, open_sim_venue

T0 = 1_767_225_600.0


@pytest.fixture
async def sim(mock_clock: trio.testing.MockClock) -> AsyncIterator[SimVenue]:
    async with open_sim_venue(static_config(start_time=T0, timer_period_secs=3600.0)) as venue:
        yield venue


class Client:
    """A trader of the sim whose L2 timestamps follow the sim's clock (the MockClock)."""

    def __init__(self, sim: SimVenue, http: httpx.AsyncClient, key: str = KEY1) -> None:
        self.sim = sim
        self.trader: Trader = make_trader(sim, http, key)
        self.http = http
        self.prices = itertools.cycle(range(10, 40))

    async def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        text = json.dumps(body, separators=(",", ":")) if body is not None else None
        trader = self.trader
        headers = l2_headers(
            trader.credentials,
            address=trader.signer.address,
            timestamp=int(self.sim.now()),
            method=method,
            request_path=path,
            body=text,
        )
        return await self.http.request(method, self.sim.urls.rest + path, content=text, headers=headers)

    def bid(self, *, post_only: bool = False, price: str | None = None) -> object:
        market = self.sim.exchange.markets[0]
        order = self.trader.order(market, Side.BUY, price or f"0.{next(self.prices):02d}", "10")
        return self.trader.body(order, post_only=post_only)

    async def place(self, *, post_only: bool = False) -> httpx.Response:
        return await self.request("POST", "/order", self.bid(post_only=post_only))


@pytest.fixture
async def client(sim: SimVenue) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield Client(sim, http)


async def test_a_restart_answers_425_then_the_post_only_window_follows(
    sim: SimVenue, client: Client, mock_clock: trio.testing.MockClock
) -> None:
    resting = await client.place()
    assert resting.status_code == 200
    order_id = resting.json()["orderID"]
    armed = await client.http.post(
        sim.urls.rest + "/_sim/faults", json={"kind": "restart", "secs": 90, "post_only_secs": 120}
    )
    assert armed.json() == {"result": "restart armed"}

    early = await client.place()
    assert early.status_code == 425
    assert (await client.request("DELETE", "/order", {"orderID": order_id})).status_code == 425  # cancels too
    assert (await client.request("POST", "/orders", [client.bid(post_only=True)])).status_code == 425
    assert (await client.http.get(sim.urls.rest + "/ok")).status_code == 200  # not an order endpoint
    assert (await client.request("GET", "/data/orders")).status_code == 200
    faults = (await client.http.get(sim.urls.rest + "/_sim/faults")).json()
    assert faults == [{"kind": "trading_mode", "mode": "restarting", "secs_left": 90.0}]

    mock_clock.jump(90)  # back: the post-only window
    taker = await client.place()
    assert taker.status_code == 503
    assert taker.json() == {"error": POST_ONLY_TEXT, "code": "post_only_mode"}
    mixed = await client.request("POST", "/orders", [client.bid(post_only=True), client.bid()])
    assert mixed.status_code == 503  # refused whole: one of its orders is not post-only
    maker = await client.place(post_only=True)
    assert maker.status_code == 200
    assert (await client.request("DELETE", "/order", {"orderID": order_id})).json()["canceled"] == [order_id]

    mock_clock.jump(120)
    assert (await client.place()).status_code == 200
    assert sim.faults.modes.refused == {"restarting": 3, "post_only": 2}
    assert sim.exchange.order(early.json().get("orderID", "")) is None  # nothing refused reached the book


async def test_cancel_only_and_trading_disabled(
    sim: SimVenue, client: Client, mock_clock: trio.testing.MockClock
) -> None:
    order_id = (await client.place()).json()["orderID"]
    sim.faults.cancel_only(secs=10)
    refused = await client.place()
    assert (refused.status_code, refused.json()) == (503, {"error": CANCEL_ONLY_TEXT})
    assert (await client.request("DELETE", "/order", {"orderID": order_id})).status_code == 200
    mock_clock.jump(10)
    order_id = (await client.place()).json()["orderID"]

    apply_fault(sim.faults, "trading_disabled", {})  # until cleared
    refused = await client.place()
    assert (refused.status_code, refused.json()) == (503, {"error": DISABLED_TEXT})
    assert (await client.request("DELETE", "/cancel-all")).status_code == 503  # cancels too
    mock_clock.jump(3600)
    assert (await client.place()).status_code == 503
    await client.http.delete(sim.urls.rest + "/_sim/faults")
    assert (await client.request("DELETE", "/order", {"orderID": order_id})).status_code == 200


async def test_closed_only_says_so_and_refuses_buys_only(sim: SimVenue, client: Client) -> None:
    other = Client(sim, client.http, KEY2)
    assert (await client.request("GET", "/auth/ban-status/closed-only")).json() == {"closed_only": False}
    address = client.trader.signer.address
    apply_fault(sim.faults, "closed_only", {"address": address})
    assert (await client.request("GET", "/auth/ban-status/closed-only")).json() == {"closed_only": True}
    assert (await other.request("GET", "/auth/ban-status/closed-only")).json() == {"closed_only": False}
    refused = await client.place()
    assert (refused.status_code, refused.json()) == (400, {"error": f"'{address}' address in closed only mode"})
    assert (await other.place()).status_code == 200
    # a sell is not refused for closed-only (this one has no shares to sell: the exchange's own refusal)
    market = sim.exchange.markets[0]
    sell = client.trader.body(client.trader.order(market, Side.SELL, "0.90", "10"))
    assert "closed only" not in (await client.request("POST", "/order", sell)).text
    apply_fault(sim.faults, "closed_only", {"address": address, "enabled": "false"})
    assert (await client.request("GET", "/auth/ban-status/closed-only")).json() == {"closed_only": False}
    assert (await client.place()).status_code == 200


async def test_a_standard_signer_gets_its_burst_then_429_with_retry_after(
    sim: SimVenue, client: Client, mock_clock: trio.testing.MockClock
) -> None:
    assert (await client.request("GET", "/v1/user/rate-limit-tier")).json() == {"tier": "standard"}
    batch = [client.bid() for _ in range(15)]
    statuses, remaining = [], []
    for _ in range(4):  # 60 tokens: four batches of 15
        reply = await client.request("POST", "/orders", batch[:15])
        statuses.append(reply.status_code)
        remaining.append(reply.headers["Poly-RateLimit-Remaining"])
        batch = [client.bid() for _ in range(15)]
    assert statuses == [200] * 4
    assert remaining == ["45", "30", "15", "0"]
    assert reply.headers["Poly-RateLimit-Tier"] == "standard"
    assert float(reply.headers["Poly-RateLimit-Reset"]) == pytest.approx(sim.now() + 1 / 40)
    refused = await client.place()
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Poly-RateLimit-Remaining"] == "0"
    # cancels have their own bucket
    assert (await client.request("DELETE", "/orders", ["0x01"])).headers["Poly-RateLimit-Remaining"] == "119"
    mock_clock.jump(0.5)  # 20 tokens back
    assert (await client.request("POST", "/orders", batch[:15])).status_code == 200
    assert (await client.request("POST", "/orders", batch[:10])).status_code == 429  # all or nothing
    assert sim.signer_limits is not None
    assert sim.signer_limits.refused[client.trader.signer.address.lower()] == 2


async def test_cancel_all_costs_what_it_cancelled_and_may_go_negative(
    sim: SimVenue, client: Client, mock_clock: trio.testing.MockClock
) -> None:
    assert sim.signer_limits is not None
    sim.signer_limits.set_tier(client.trader.signer.address, "gold")  # orders enough to cancel
    for start in range(0, 150, 15):
        batch = [client.bid(price=f"0.{10 + (start + n) % 30:02d}") for n in range(15)]
        assert (await client.request("POST", "/orders", batch)).status_code == 200
    sim.signer_limits.set_tier(client.trader.signer.address, "standard")  # the cancel bucket now holds 120
    reply = await client.request("DELETE", "/cancel-all")
    assert len(reply.json()["canceled"]) == 150
    assert reply.headers["Poly-RateLimit-Remaining"] == "-31"  # 120 - 1 - 150
    assert (await client.request("DELETE", "/order", {"orderID": "0x01"})).status_code == 429
    mock_clock.jump(32 / 80)
    assert (await client.request("DELETE", "/order", {"orderID": "0x01"})).status_code == 200


async def test_more_than_1000_ids_in_one_cancel_is_refused_whole(sim: SimVenue, client: Client) -> None:
    ids = [f"0x{n:064x}" for n in range(1001)]
    reply = await client.request("DELETE", "/orders", ids)
    assert (reply.status_code, reply.json()) == (400, {"error": "Too many orders in payload, max allowed: 1000"})
    assert sim.signer_limits is not None
    assert sim.signer_limits.refused == {}  # not charged either
    assert (await client.request("DELETE", "/orders", ids[:100])).status_code == 200


async def test_warning_only_mode_lets_an_over_limit_order_through_with_the_warning(
    mock_clock: trio.testing.MockClock,
) -> None:
    config = static_config(start_time=T0, timer_period_secs=3600.0, enforce_signer_limits=False, default_tier="copper")
    async with open_sim_venue(config) as sim, httpx.AsyncClient(timeout=10) as http:
        client = Client(sim, http)
        for n in range(7):  # copper: a burst of 90 orders, the seventh batch is over it
            reply = await client.request("POST", "/orders", [client.bid() for _ in range(15)])
            assert reply.status_code == 200
            assert ("Poly-RateLimit-Warning" in reply.headers) is (n == 6)
        assert reply.headers["Poly-RateLimit-Tier"] == "copper"
        assert reply.headers["Poly-RateLimit-Warning"] == "true"
        assert reply.headers["Poly-RateLimit-Remaining"] == "-15"


def test_signer_limits_tiers_per_wallet() -> None:
    limits = SignerLimits({"0xAA": "Gold"}, default_tier="standard")
    assert limits.tier_of("0xaa").name == "gold"
    assert limits.tier_of("0xbb") is SIGNER_TIERS["standard"]
    assert not limits.take("0xbb", "order", 61, 0.0).allowed  # more than the burst: never
    assert limits.take("0xbb", "order", 61, 0.0).retry_after is None
    with pytest.raises(ValueError, match="unknown rate-limit tier"):
        SignerLimits(default_tier="mithril")


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("restart", {"secs": "-1"}, "secs"),
        ("post_only", {"secs": "nan"}, "secs"),
        ("closed_only", {"enabled": "maybe"}, "enabled"),
        ("cancel_only", {"count": "1"}, "does not take count"),
    ],
)
def test_the_new_fault_kinds_refuse_bad_parameters(kind: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        apply_fault(FaultInjector(), kind, params)
    assert {"restart", "post_only", "cancel_only", "trading_disabled", "closed_only"} <= set(FAULT_KINDS)
    assert FAULT_PARAMETERS["restart"] == {"secs", "post_only_secs"}
