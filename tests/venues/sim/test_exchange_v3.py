"""The sim's order endpoints and Exchange V3: markets in the protocol-v2 namespace (position ids as token ids) take
orders signed for Exchange V3, and refuse an order for such a token signed for a V2 exchange with `invalid
signature`, as the venue does; the synthetic scenario lists such markets on request."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from eth_account import Account
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
from py_clob_client_v2.order_utils.model.side import Side as PySide
from py_clob_client_v2.signer import Signer as PySigner

from tests.venues.polymarket.exchange_reference import is_position_id_reference, reference_domain, typed_order
from tests.venues.sim.conftest import KEY1, KEY2, Trader, make_trader, static_config
from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.venues.polymarket.signing import EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, OrderSigner, SignedOrder
from trader.venues.sim.markets import SimMarket, make_market, make_neg_risk_event
from trader.venues.sim.scenarios import ScenarioOptions, StaticScenario, make_scenario
from trader.venues.sim.venue import SimVenue, open_sim_venue

V3_BINARY = make_market("v3:binary", question="Will the position id trade?", protocol_v2=True)
V2_BINARY = make_market("v3:plain", question="Will the token id trade?")
V3_EVENT, V3_NEG_RISK = make_neg_risk_event("v3:nr", title="Who wins V3", outcomes=("A", "B"), protocol_v2=True)
FUNDER = "0xA528f53936E975133dc2757476F5d212bdb904CA"


@pytest.fixture
async def sim() -> AsyncIterator[SimVenue]:
    scenario = StaticScenario([V3_BINARY, V2_BINARY, *V3_NEG_RISK], [V3_EVENT])
    async with open_sim_venue(static_config(scenario=scenario)) as venue:
        yield venue


def test_protocol_v2_markets_have_position_ids_as_token_ids() -> None:
    for market in (V3_BINARY, *V3_NEG_RISK):
        module = 2 if market.neg_risk else 1
        assert len(bytes.fromhex(market.condition_id[2:])) == 31
        assert market.condition_id[2:4] == f"{module:02x}"
        for outcome, token in enumerate(market.token_ids):
            assert is_position_id_reference(token)
            assert int(token) == int(market.condition_id[2:] + f"{outcome:02x}", 16)
    assert not any(is_position_id_reference(t) for t in V2_BINARY.token_ids)


def v2_signed(trader: Trader, market: SimMarket, side: Side, price: str, size: str) -> SignedOrder:
    """The order `trader.order` builds, but signed the way a client that knows nothing of Exchange V3 signs it: by
    the official builder for the V2 exchange of the market's neg-risk flag."""
    good = trader.order(market, side, price, size)
    key = KEY1 if trader.signer.address == OrderSigner(KEY1).address else KEY2
    builder = ExchangeOrderBuilderV2(NEG_RISK_EXCHANGE_V2 if market.neg_risk else EXCHANGE_V2, 137, PySigner(key, 137))
    typed = builder.build_order_typed_data(
        builder.build_order(
            OrderDataV2(
                maker=good.maker,
                tokenId=good.token_id,
                makerAmount=str(good.maker_amount),
                takerAmount=str(good.taker_amount),
                side=PySide.BUY if side is Side.BUY else PySide.SELL,
                signer=good.signer,
                signatureType=good.signature_type,
                timestamp=str(good.timestamp_ms),
            )
        )
    )
    typed["message"]["salt"] = good.salt
    return dataclasses.replace(good, signature=builder.build_order_signature(typed))


@pytest.mark.parametrize("market", [V3_BINARY, V3_NEG_RISK[0]], ids=["binary", "neg-risk"])
async def test_an_order_signed_for_exchange_v3_is_taken(
    sim: SimVenue, http: httpx.AsyncClient, market: SimMarket
) -> None:
    alice = make_trader(sim, http)
    order = alice.order(market, Side.BUY, "0.40", "10")
    placed = await alice.post(order)
    assert placed.status_code == 200, placed.text
    # the venue's order id is the EIP-712 digest under Exchange V3's domain, whatever the neg-risk flag
    typed = typed_order(order.to_json(), market.neg_risk)
    assert typed["domain"]["version"] == "3"
    assert (
        placed.json()["orderID"] == "0x" + bytes(Account.sign_typed_data(KEY1, full_message=typed).message_hash).hex()
    )
    assert [o.order_id for o in sim.exchange.open_orders(alice.credentials.api_key)] == [placed.json()["orderID"]]


@pytest.mark.parametrize("market", [V3_BINARY, V3_NEG_RISK[1]], ids=["binary", "neg-risk"])
async def test_an_order_for_a_position_id_signed_for_v2_is_an_invalid_signature(
    sim: SimVenue, http: httpx.AsyncClient, market: SimMarket
) -> None:
    alice = make_trader(sim, http)
    wrong = v2_signed(alice, market, Side.BUY, "0.40", "10")
    refused = await alice.post(wrong)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid signature"})
    # in a batch, only that order is refused
    good = alice.order(market, Side.BUY, "0.39", "10")
    results = (await alice.request("POST", "/orders", [alice.body(wrong), alice.body(good)])).json()
    assert [(r["success"], r["errorMsg"]) for r in results] == [(False, "invalid signature"), (True, "")]
    assert len(sim.exchange.open_orders(alice.credentials.api_key)) == 1


async def test_a_v2_market_still_takes_v2_orders_beside_v3_ones(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice = make_trader(sim, http)
    assert reference_domain(V2_BINARY.token_ids[0], False)["version"] == "2"
    assert (await alice.post(alice.order(V2_BINARY, Side.BUY, "0.40", "10"))).status_code == 200
    assert (await alice.post(alice.order(V3_BINARY, Side.BUY, "0.40", "10"))).status_code == 200


async def test_a_deposit_wallet_order_for_a_position_id_must_carry_the_v3_envelope(
    sim: SimVenue, http: httpx.AsyncClient
) -> None:
    eoa = OrderSigner(KEY1)
    wallet = Trader(sim, http, OrderSigner(KEY1, signature_type=3, funder=FUNDER), sim.api_keys.derive(eoa.address, 0))
    sim.exchange.fund(FUNDER, collateral=1_000 * 10**6)
    assert (await wallet.post(wallet.order(V3_BINARY, Side.BUY, "0.40", "10"))).status_code == 200
    refused = await wallet.post(v2_signed(wallet, V3_BINARY, Side.BUY, "0.41", "10"))
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid signature"})


async def test_two_traders_match_on_a_v3_market(sim: SimVenue, http: httpx.AsyncClient) -> None:
    alice, bob = make_trader(sim, http), make_trader(sim, http, KEY2)
    yes, no = V3_BINARY.token_ids
    assert (await alice.post(alice.order(V3_BINARY, Side.BUY, "0.40", "10"))).status_code == 200
    taken = await bob.post(bob.order(V3_BINARY, Side.BUY, "0.60", "10", outcome=1))  # BUY NO + BUY YES mint a pair
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "matched"
    assert sim.exchange.wallet(alice.signer.address).shares[yes] == 10 * 10**6
    assert sim.exchange.wallet(bob.signer.address).shares[no] == 10 * 10**6


def test_the_synthetic_scenario_lists_v3_markets_on_request() -> None:
    def listing(**params: str) -> list[SimMarket]:
        scenario = make_scenario("synthetic", ScenarioOptions(markets=4, seed=3, params=params))
        return list(scenario.listing()[0])

    default = listing()
    assert not any(is_position_id_reference(t) for m in default for t in m.token_ids)
    v3 = listing(v3_markets="1", v3_neg_risk="true")
    assert [m.question for m in v3] == [m.question for m in default]  # the same listing otherwise
    moved = [m for m in v3 if is_position_id_reference(m.token_ids[0])]
    # the last standalone market (the unlinked one, where gaps rest) and the complete neg-risk event's three markets
    assert [(m.question in default[3].question, m.complementary, m.neg_risk) for m in moved] == [
        (True, False, False),
        (False, True, True),
        (False, True, True),
        (False, True, True),
    ]
    unchanged = {m.question: m.token_ids for m in v3 if m not in moved}
    assert unchanged == {m.question: m.token_ids for m in default if m.question in unchanged}
    with pytest.raises(ConfigError, match="v3_markets"):
        listing(v3_markets="-1")
