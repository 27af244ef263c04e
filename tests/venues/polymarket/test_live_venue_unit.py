"""The live venue's own logic on httpx.MockTransport: deterministic signing, market parameters, results, fees."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from eth_account import Account

from tests.venues.polymarket.exchange_reference import typed_order
from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.testing import make_intent, make_market
from trader.venues.base import (
    PRICE_OFF_TICK,
    PRICE_OUT_OF_RANGE,
    PrepareRefused,
    SubmitAccepted,
    SubmitRejected,
    VenueOrderStatus,
)
from trader.venues.errors import VenueRejectCode
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.rest import PolymarketFill, PolymarketTrade
from trader.venues.polymarket.signing import (
    EXCHANGE_V3,
    OrderSigner,
    order_id,
    order_salt,
    parse_signed_order,
    recover_order_signer,
)
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue

D = Decimal
KEY = "0x" + "4c" * 32
CREDS = ApiCredentials("key-1", base64.urlsafe_b64encode(b"s" * 32).decode(), "pass")
YES = "1" * 70
NO = "2" * 70
OTHER = "3" * 70
MARKET = make_market(
    question="q",
    slug="q",
    yes_token_id=YES,
    no_token_id=NO,
    neg_risk=True,
    fees=FeeSchedule(rate=D("0.02"), exponent=1),
)
#: A protocol-v2 neg-risk market (module 2): position ids as token ids, so its orders go to Exchange V3.
V3_YES = "1206309059886293435182840326436205163962835673756658697574651196155037088768"
V3_NO = "1206309059886293435182840326436205163962835673756658697574651196155037088769"
V3_MARKET = make_market(2, question="q3", slug="q3", yes_token_id=V3_YES, no_token_id=V3_NO, neg_risk=True)


class Venue:
    def __init__(self) -> None:
        self.bodies: list[object] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path == "/tick-size":
            return httpx.Response(200, content=b'{"minimum_tick_size": 0.001}')
        if request.url.path == "/neg-risk":
            return httpx.Response(200, json={"neg_risk": False})
        body = json.loads(request.content)
        self.bodies.append(body)
        entries = body if isinstance(body, list) else [body]
        replies = []
        for entry in entries:
            signed = parse_signed_order(entry["order"])
            neg_risk = signed.token_id != OTHER
            oid = order_id(signed, neg_risk=neg_risk)
            assert recover_order_signer(signed, neg_risk=neg_risk) == OrderSigner(KEY).address
            if entry["orderType"] == "FOK":
                replies.append({"success": True, "orderID": oid, "status": "matched", "makingAmount": "5.7",
                                "takingAmount": "10", "tradeIDs": ["t-1"]})  # fmt: skip
            else:
                replies.append({"success": False, "orderID": oid, "errorMsg": "INVALID_ORDER_MIN_SIZE"})
        return httpx.Response(200, json=replies if isinstance(body, list) else replies[0])


@pytest.fixture
def mock() -> Venue:
    return Venue()


@pytest.fixture
async def venue(mock: Venue) -> AsyncIterator[PolymarketVenue]:
    settings = PolymarketVenueSettings(rest_url="http://clob.test", heartbeat_enabled=False)
    async with open_polymarket_venue(
        settings, OrderSigner(KEY), credentials=CREDS, transport=httpx.MockTransport(mock), wall_secs=lambda: 1e9
    ) as v:
        v.add_markets([MARKET, V3_MARKET])
        yield v


def intent(
    cid: str, side: Side, price: str, size: str, *, order_type: OrderType = OrderType.GTC, token: str = YES
) -> OrderIntent:
    return make_intent(cid, strategy="s", token_id=token, side=side, price=price, size=size, order_type=order_type)


async def test_prepare_is_deterministic_and_submit_sends_that_order(venue: PolymarketVenue, mock: Venue) -> None:
    first = await venue.prepare(intent("c-1", Side.BUY, "0.57", "10", order_type=OrderType.FOK), ts=1_767_225_600.123)
    again = await venue.prepare(intent("c-1", Side.BUY, "0.57", "10", order_type=OrderType.FOK), ts=1_767_225_600.123)
    other = await venue.prepare(intent("c-2", Side.BUY, "0.57", "10", order_type=OrderType.FOK), ts=1_767_225_600.123)
    assert first.order_id == again.order_id != other.order_id

    result = await venue.submit(first)

    assert result == SubmitAccepted(
        client_order_id="c-1",
        order_id=first.order_id,
        status=VenueOrderStatus.MATCHED,
        filled_size=D(10),
        filled_notional=D("5.7"),
        trade_ids=("t-1",),
    )
    (body,) = mock.bodies
    assert isinstance(body, dict)
    signed = body["order"]
    # a market BUY spends price x size pUSD (floored to the cent): 5.70 for >= 10 shares at 0.57
    assert (signed["makerAmount"], signed["takerAmount"]) == ("5700000", "10000000")
    assert signed["salt"] == order_salt("c-1")
    assert signed["timestamp"] == "1767225600123"


async def test_an_order_for_a_position_id_is_signed_for_exchange_v3(venue: PolymarketVenue, mock: Venue) -> None:
    order = await venue.prepare(
        intent("c-v3", Side.BUY, "0.57", "10", order_type=OrderType.FOK, token=V3_YES), ts=1_767_225_600.123
    )

    result = await venue.submit(order)

    assert isinstance(result, SubmitAccepted)
    assert result.order_id == order.order_id
    (body,) = mock.bodies
    assert isinstance(body, dict)
    signed = body["order"]
    # the market is neg risk, but a position id's order is signed for Exchange V3 (eth-account, on its own)
    typed = typed_order(signed, neg_risk=True)
    assert typed["domain"]["verifyingContract"] == EXCHANGE_V3
    assert order.order_id == "0x" + bytes(Account.sign_typed_data(KEY, full_message=typed).message_hash).hex()
    assert signed["signature"] == "0x" + bytes(Account.sign_typed_data(KEY, full_message=typed).signature).hex()


async def test_a_batch_refusal_keeps_our_order_id(venue: PolymarketVenue, mock: Venue) -> None:
    orders = [
        await venue.prepare(intent("c-3", Side.SELL, "0.40", "2", token=NO), ts=1e9),
        await venue.prepare(intent("c-4", Side.SELL, "0.40", "20", order_type=OrderType.FOK, token=NO), ts=1e9),
    ]
    results = await venue.submit_batch(orders)
    assert results[0] == SubmitRejected(
        client_order_id="c-3",
        order_id=orders[0].order_id,
        reason=VenueRejectCode.MIN_SIZE,
        message="INVALID_ORDER_MIN_SIZE",
    )
    assert isinstance(results[1], SubmitAccepted)
    assert results[1].filled_size == D("5.7")  # a SELL: making = shares
    with pytest.raises(ValueError, match="post-only"):
        await venue.submit_batch([orders[0], dataclasses.replace(orders[1], post_only=True)])


async def test_an_unknown_market_is_asked_for_its_tick_size_and_neg_risk(venue: PolymarketVenue, mock: Venue) -> None:
    order = await venue.prepare(intent("c-5", Side.BUY, "0.123", "10", order_type=OrderType.FOK, token=OTHER), ts=1e9)
    await venue.prepare(intent("c-6", Side.BUY, "0.124", "10", order_type=OrderType.FOK, token=OTHER), ts=1e9)
    assert mock.paths == ["/tick-size", "/neg-risk"]  # asked once, then remembered
    assert isinstance(await venue.submit(order), SubmitAccepted)  # signed for the standard exchange


async def test_fills_get_the_fee_of_their_market(venue: PolymarketVenue) -> None:
    trade = PolymarketTrade(
        trade_id="t-9",
        status=TradeStatus.MATCHED,
        condition_id="0xcond",
        fills=(
            PolymarketFill(
                order_id="0xa", token_id=YES, side=Side.BUY, price=D("0.5"), size=D(10), liquidity=Liquidity.TAKER
            ),
            PolymarketFill(
                order_id="0xb", token_id=YES, side=Side.SELL, price=D("0.5"), size=D(4), liquidity=Liquidity.MAKER
            ),
            PolymarketFill(
                order_id="0xc", token_id=OTHER, side=Side.BUY, price=D("0.5"), size=D(1), liquidity=Liquidity.TAKER
            ),
        ),
        match_ts=1.0,
        ts=2.0,
        fee_rate_bps=0,
        transaction_hash=None,
    )
    taker, maker, unknown = venue._venue_trades(trade)
    assert taker.fee == D("0.05")  # 10 x 0.02 x 0.5 x 0.5
    assert maker.fee == 0  # makers pay nothing
    assert unknown.fee == 0
    assert venue.statistics().unknown_fee_fills == 1  # ...and that zero is counted, not silent


async def test_an_unknown_settlement_status_is_counted_and_passed_on(venue: PolymarketVenue) -> None:
    fill = PolymarketFill(
        order_id="0xa", token_id=YES, side=Side.BUY, price=D("0.5"), size=D(10), liquidity=Liquidity.TAKER
    )
    trade = PolymarketTrade(
        trade_id="t-10",
        status=TradeStatus.UNKNOWN,
        condition_id="0xcond",
        fills=(fill,),
        match_ts=1.0,
        ts=2.0,
        fee_rate_bps=0,
        transaction_hash=None,
        status_text="SETTLING",
    )
    (reported,) = venue._venue_trades(trade)
    venue._venue_trades(trade)
    assert reported.status is TradeStatus.UNKNOWN  # the order manager keeps the trade as it was
    assert venue.statistics().unknown_trade_statuses == 2


async def test_prepare_signs_on_the_tick_in_force_and_refuses_off_its_grid(mock: Venue) -> None:
    ticks = {YES: D("0.01")}
    settings = PolymarketVenueSettings(rest_url="http://clob.test", heartbeat_enabled=False)
    async with open_polymarket_venue(
        settings,
        OrderSigner(KEY),
        credentials=CREDS,
        transport=httpx.MockTransport(mock),
        wall_secs=lambda: 1e9,
        tick_of=ticks.get,
    ) as venue:
        venue.add_markets([dataclasses.replace(MARKET, tick_size=D("0.01"))])
        with pytest.raises(PrepareRefused) as refused:
            await venue.prepare(intent("c-7", Side.BUY, "0.965", "10", order_type=OrderType.FOK), ts=1e9)
        assert refused.value.code == PRICE_OFF_TICK  # never floored to 0.96
        ticks[YES] = D("0.001")  # the market channel's tick_size_change, as the books applied it
        order = await venue.prepare(intent("c-8", Side.BUY, "0.965", "10", order_type=OrderType.FOK), ts=1e9)
        await venue.submit(order)
        signed = mock.bodies[-1]
        assert isinstance(signed, dict)
        # 10 shares at 0.965: 9.65 pUSD for 10 shares, exactly (at 0.96 it would be 9.65 for 10.05)
        assert (signed["order"]["makerAmount"], signed["order"]["takerAmount"]) == ("9650000", "10000000")
        with pytest.raises(PrepareRefused) as out_of_range:
            await venue.prepare(intent("c-9", Side.SELL, "0.9995", "10", token=YES), ts=1e9)
        assert out_of_range.value.code == PRICE_OUT_OF_RANGE
        # a token the books do not follow: the tick the venue gave (GET /tick-size: 0.001)
        await venue.prepare(intent("c-10", Side.BUY, "0.123", "10", order_type=OrderType.FOK, token=OTHER), ts=1e9)
