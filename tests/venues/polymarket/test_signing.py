"""Order signing (CTF Exchange V2 and Exchange V3): golden vectors, eth-account and py-clob-client-v2 cross-checks,
venue-side parsing."""

from __future__ import annotations

import json
import pickle
import random
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from Crypto.Hash import keccak
from eth_account import Account
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_builder.helpers import round_down, round_normal
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
from py_clob_client_v2.order_utils.model.side import Side as PySide
from py_clob_client_v2.signer import Signer as PySigner

from tests.venues.polymarket.exchange_reference import (
    is_position_id_reference,
    random_asset_id,
    reference_domain,
    typed_order,
)
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.polymarket.signing import (
    EXCHANGE_V2,
    EXCHANGE_V3,
    MAX_SALT,
    NEG_RISK_EXCHANGE_V2,
    POLY_1271_SIGNATURE_LENGTH,
    ZERO32,
    OrderSigner,
    SignedOrder,
    checksum_address,
    is_position_id,
    is_v1_order_json,
    keccak256,
    limit_order_amounts,
    market_order_amounts,
    order_body,
    order_digest,
    order_domain,
    order_id,
    parse_address,
    parse_side,
    parse_signed_order,
    parse_token_id,
    recover_order_signer,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "polymarket"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "vectors.json").read_text())
#: Exchange V3 (protocol-v2 position ids), the same contract as `VECTORS` (/work/shared/polymarket/README.md).
VECTORS_V3: dict[str, Any] = json.loads((FIXTURES / "vectors_v3.json").read_text())
ORDER_CASES = VECTORS["orders"] + VECTORS_V3["orders"]
ERROR_CASES = VECTORS["errors"] + VECTORS_V3["errors"]
KEYS = VECTORS["meta"]["keys"]
FUNDERS = VECTORS["meta"]["funders"]
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
K1 = KEYS["k1"]["private_key"]
K4 = KEYS["k4"]["private_key"]
ASSETS_V3 = VECTORS_V3["meta"]["assets"]
POSITION_ID = ASSETS_V3["BIN_YES"]["id"]


def _sign_vector_input(case: dict[str, Any]) -> tuple[SignedOrder, str, str]:
    i = case["input"]
    signer = OrderSigner(i["private_key"], signature_type=i["signature_type"], funder=i["funder"])
    common: dict[str, Any] = {
        "token_id": i["token_id"],
        "side": parse_side(i["side"]),
        "price": Decimal(i["price"]),
        "tick_size": Decimal(i["tick_size"]),
        "neg_risk": i["neg_risk"],
        "salt": i["salt"],
        "timestamp_ms": i["timestamp_ms"],
        "builder_code": i["builder_code"],
        "metadata": i["metadata"],
    }
    if "size" in i:
        order, oid = signer.limit_order_with_id(size=Decimal(i["size"]), expiration=i["expiration"], **common)
    else:
        order, oid = signer.market_order_with_id(amount=Decimal(i["amount"]), **common)
    body = order_body(
        order, owner=i["api_key"], order_type=i["order_type"], post_only=i["post_only"], defer_exec=i["defer_exec"]
    )
    return order, oid, body


@pytest.mark.parametrize("case", ORDER_CASES, ids=lambda c: c["id"])
def test_order_vectors(case: dict[str, Any]) -> None:
    # Arrange / Act
    order, oid, body = _sign_vector_input(case)
    expected = case["expected"]
    domain = order_domain(case["input"]["token_id"], neg_risk=case["input"]["neg_risk"])
    # Assert
    if "signed_order" in expected:
        assert order.to_json() == expected["signed_order"]
        assert list(order.to_json()) == list(expected["signed_order"])  # key order as the official client
        assert oid == expected["order_id"]
        assert json.loads(body) == expected["body"]
        assert domain.verifying_contract == expected["exchange"]
        assert domain.eip712() == expected["domain"]
    else:
        emitted = order.to_json()
        assert {k: emitted[k] for k in expected["signed_order_fields"]} == expected["signed_order_fields"]
    # byte-exact with the official serializer (json.dumps, separators (",", ":"), insertion order)
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    assert oid == order_id(order, neg_risk=case["input"]["neg_risk"])


def test_vector_files_cover_both_exchanges() -> None:
    assert (len(VECTORS["orders"]), len(VECTORS["errors"])) == (25, 7)
    assert (len(VECTORS_V3["orders"]), len(VECTORS_V3["errors"])) == (12, 2)
    exchanges = {c["expected"]["exchange"] for c in ORDER_CASES if "exchange" in c["expected"]}
    assert exchanges == {EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3}


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c["id"])
def test_error_vectors_raise_input_error(case: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        _sign_vector_input(case)


def test_error_messages_follow_the_reference_wording() -> None:
    with pytest.raises(InputError, match=r"invalid price \(0.001\), min: 0.01 - max: 0.99"):
        limit_order_amounts(Side.BUY, Decimal("0.001"), Decimal(10), Decimal("0.01"))
    with pytest.raises(InputError, match="limit price is not a multiple of the tick size"):
        limit_order_amounts(Side.BUY, Decimal("0.937"), Decimal(10), Decimal("0.005"))
    with pytest.raises(InputError, match="post_only is not supported for FOK/FAK orders"):
        order_body(_any_order(), owner="k", order_type="FAK", post_only=True, defer_exec=False)


# ---------------------------------------------------------------------------------------------------------------
# Which exchange: position ids (Exchange V3) and token ids (V2)


@pytest.mark.parametrize("name", sorted(ASSETS_V3))
def test_the_vectors_assets_are_classified_as_described(name: str) -> None:
    asset = ASSETS_V3[name]
    position = "protocol-v2 position id" in asset["what"] and "NOT" not in asset["what"]
    assert is_position_id(int(asset["id"])) is position
    assert is_position_id_reference(asset["id"]) is position
    for neg_risk in (False, True):
        domain = order_domain(asset["id"], neg_risk=neg_risk)
        assert domain.eip712() == reference_domain(asset["id"], neg_risk)
        assert (domain.verifying_contract == EXCHANGE_V3) is position


@pytest.mark.parametrize(
    ("token_id", "position"),
    [
        ("0", True),
        ("1", True),  # the module byte is not checked: the reserved bits alone decide
        (str(2**40 - 1), True),
        (str(2**40), False),  # bit 40
        (str(2**103), False),  # bit 103
        (str(2**104), True),  # bit 104 is above the reserved range
        (str(2**256 - 1), False),
        (str((2**256 - 1) ^ ((2**64 - 1) << 40)), True),  # every bit set but the reserved ones
        (TOKEN, False),
    ],
)
def test_position_ids_are_the_ids_with_bits_40_to_103_clear(token_id: str, position: bool) -> None:
    assert is_position_id(int(token_id)) is position
    assert is_position_id_reference(token_id) is position
    assert order_domain(token_id, neg_risk=True).version == ("3" if position else "2")


def test_order_domain_checks_its_inputs() -> None:
    assert order_domain(TOKEN, neg_risk=False).verifying_contract == EXCHANGE_V2
    assert order_domain(TOKEN, neg_risk=True).verifying_contract == NEG_RISK_EXCHANGE_V2
    # Amoy: the V2 contracts share their Polygon addresses, Exchange V3 does not (the official client's config)
    amoy = get_contract_config(80002)
    assert order_domain(POSITION_ID, neg_risk=False, chain_id=80002).verifying_contract == amoy.exchange_v3
    assert order_domain(TOKEN, neg_risk=True, chain_id=80002).verifying_contract == amoy.neg_risk_exchange_v2
    with pytest.raises(InputError, match="chain_id"):
        order_domain(TOKEN, neg_risk=False, chain_id=1)
    with pytest.raises(InputError, match="token_id"):
        order_domain("0x01", neg_risk=False)


def test_a_position_id_order_is_signed_for_exchange_v3_whatever_neg_risk_says() -> None:
    signer = OrderSigner(K4)
    kwargs: dict[str, Any] = {
        "token_id": POSITION_ID,
        "side": Side.BUY,
        "price": Decimal("0.5"),
        "size": Decimal(10),
        "tick_size": Decimal("0.01"),
        "salt": 5,
        "timestamp_ms": 1767225600123,
    }
    plain, plain_id = signer.limit_order_with_id(neg_risk=False, **kwargs)
    flagged, flagged_id = signer.limit_order_with_id(neg_risk=True, **kwargs)
    assert (plain, plain_id) == (flagged, flagged_id)
    typed = _typed_data(plain, False)
    assert typed["domain"]["verifyingContract"] == EXCHANGE_V3
    assert plain_id == "0x" + bytes(Account.sign_typed_data(K4, full_message=typed).message_hash).hex()
    assert order_id(plain, neg_risk=True) == order_id(plain, neg_risk=False) == plain_id
    # the same order for a V2 token id is another order, for another contract
    v2_order, v2_id = signer.limit_order_with_id(neg_risk=False, **kwargs | {"token_id": TOKEN})
    assert v2_id != plain_id
    assert recover_order_signer(v2_order, neg_risk=False) == signer.address


# ---------------------------------------------------------------------------------------------------------------
# Amounts


@pytest.mark.parametrize(
    ("side", "price", "size", "tick", "maker", "taker"),
    [
        (Side.BUY, "0.57", "13.37", "0.01", 7_620_900, 13_370_000),
        (Side.BUY, "0.001", "1000", "0.001", 1_000_000, 1_000_000_000),
        (Side.SELL, "0.3333", "33.33", "0.0001", 33_330_000, 11_108_889),
        (Side.SELL, "0.5", "10.019", "0.1", 10_010_000, 5_005_000),  # size floored to 0.01
        (Side.BUY, "0.07", "19.99", "0.01", 1_399_300, 19_990_000),  # py float rounding would sign 19.98
        (Side.BUY, "0.07", "17.24", "0.01", 1_206_800, 17_240_000),
        (Side.BUY, "0.9975", "3", "0.0025", 2_992_500, 3_000_000),
        (Side.SELL, "0.005", "0.01", "0.005", 10_000, 50),
        (Side.BUY, ".48", "5.000", "0.01", 2_400_000, 5_000_000),  # non-canonical forms are fine
    ],
)
def test_limit_amounts(side: Side, price: str, size: str, tick: str, maker: int, taker: int) -> None:  # noqa: PLR0917
    assert limit_order_amounts(side, Decimal(price), Decimal(size), Decimal(tick)) == (maker, taker)


@pytest.mark.parametrize(
    ("side", "amount", "price", "tick", "maker", "taker"),
    [
        (Side.BUY, "13.37", "0.57", "0.01", 13_370_000, 23_456_100),  # TS client's (exact) value
        (Side.BUY, "25", "0.567", "0.01", 25_000_000, 44_642_800),  # price floored to 0.56
        (Side.BUY, "1", "0.937", "0.005", 1_000_000, 1_069_510),  # floored to the tick 0.935, not to 3 dp
        (Side.SELL, "1000", "0.001", "0.001", 1_000_000_000, 1_000_000),
        (Side.SELL, "12.345", "0.4567", "0.0001", 12_340_000, 5_635_678),
        (Side.BUY, "33.333", "0.3", "0.1", 33_330_000, 111_100_000),
    ],
)
def test_market_amounts(side: Side, amount: str, price: str, tick: str, maker: int, taker: int) -> None:  # noqa: PLR0917
    assert market_order_amounts(side, Decimal(amount), Decimal(price), Decimal(tick)) == (maker, taker)


@pytest.mark.parametrize(
    ("price", "size", "tick", "field"),
    [
        ("0.555", "10", "0.01", "price"),  # off the grid: an error, not a rounding
        ("0.0025", "10", "0.005", "price"),
        ("1", "10", "0.01", "price"),
        ("0", "10", "0.01", "price"),
        ("0.5", "0", "0.01", "size"),
        ("0.5", "-1", "0.01", "size"),
        ("0.5", "0.009", "0.01", "size"),  # floors to zero
        ("0.5", "1e16", "0.01", "size"),
        ("0.5", "10", "0.02", "tick_size"),
    ],
)
def test_limit_amounts_reject(price: str, size: str, tick: str, field: str) -> None:
    with pytest.raises(InputError) as info:
        limit_order_amounts(Side.BUY, Decimal(price), Decimal(size), Decimal(tick))
    assert info.value.field == field


def test_market_amounts_reject_out_of_range_before_flooring() -> None:
    # 0.95 would floor to 0.9 (valid at tick 0.1) but the requested worst price itself is out of range
    with pytest.raises(InputError, match=r"invalid price \(0.95\), min: 0.1 - max: 0.9"):
        market_order_amounts(Side.BUY, Decimal(10), Decimal("0.95"), Decimal("0.1"))
    with pytest.raises(InputError, match="amount"):
        market_order_amounts(Side.SELL, Decimal("0.001"), Decimal("0.5"), Decimal("0.01"))


def test_sides_must_be_the_enum() -> None:
    with pytest.raises(InputError, match="side"):
        limit_order_amounts("BUY", Decimal("0.5"), Decimal(1), Decimal("0.01"))  # type: ignore[arg-type]


def test_amounts_agree_with_the_official_client_where_its_float_rounding_is_exact() -> None:
    rng = random.Random(20260428)
    builder = OrderBuilder(signer=None)
    compared = 0
    for _ in range(3000):
        tick_text = rng.choice(sorted(ROUNDING_CONFIG))
        tick = Decimal(tick_text)
        config = ROUNDING_CONFIG[tick_text]
        steps = int((1 - tick) / tick)
        price = tick * rng.randint(1, steps)
        size = Decimal(rng.randint(1, 5_000_000)) / 1000
        side = rng.choice([Side.BUY, Side.SELL])
        py_side = PySide.BUY if side is Side.BUY else PySide.SELL
        market = rng.random() < 0.5
        # Only where the official client's float rounding of price and size lands on the exact values.
        rounded_price = round_down if market else round_normal
        if Decimal(str(rounded_price(float(price), config.price))) != price:
            continue
        if Decimal(str(round_down(float(size), config.size))) != size.quantize(Decimal("0.01"), rounding="ROUND_FLOOR"):
            continue
        if market:
            ours = market_order_amounts(side, size, price, tick)
            _, *theirs = builder.get_market_order_amounts(py_side, float(size), float(price), config)
        else:
            ours = limit_order_amounts(side, price, size, tick)
            _, *theirs = builder.get_order_amounts(py_side, float(size), float(price), config)
        assert ours == tuple(theirs), (side, price, size, tick, market)
        compared += 1
    assert compared > 2000


# ---------------------------------------------------------------------------------------------------------------
# The fast path against eth-account and the official client


def _typed_data(order: SignedOrder, neg_risk: bool) -> dict[str, Any]:
    return typed_order(order.to_json(), neg_risk)


def _random_order(rng: random.Random, signer: OrderSigner) -> tuple[SignedOrder, bool]:
    tick = Decimal(rng.choice(["0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"]))
    price = tick * rng.randint(1, int((1 - tick) / tick))
    neg_risk = rng.random() < 0.5
    word = "0x" + rng.randbytes(32).hex()
    kwargs: dict[str, Any] = {
        "token_id": random_asset_id(rng),
        "side": rng.choice([Side.BUY, Side.SELL]),
        "price": price,
        "tick_size": tick,
        "neg_risk": neg_risk,
        "salt": rng.randrange(MAX_SALT),
        "timestamp_ms": rng.randrange(1, 2**45),
        "builder_code": rng.choice([ZERO32, word]),
        "metadata": rng.choice([ZERO32, word]),
    }
    if rng.random() < 0.5:
        order = signer.limit_order_with_id(
            size=Decimal(rng.randint(1, 10**9)) / 100, expiration=rng.randrange(2**40), **kwargs
        )[0]
    else:
        order = signer.market_order_with_id(amount=Decimal(rng.randint(1, 10**9)) / 100, **kwargs)[0]
    return order, neg_risk


@pytest.mark.parametrize("signature_type", [0, 1, 2])
def test_digest_and_signature_equal_eth_account(signature_type: int) -> None:
    rng = random.Random(signature_type)
    domains: set[str] = set()
    for _ in range(90):
        key = "0x" + rng.randbytes(32).hex()
        funder = None if signature_type == 0 else checksum_address(rng.randbytes(20))
        signer = OrderSigner(key, signature_type=signature_type, funder=funder)
        assert signer.address == Account.from_key(key).address
        order, neg_risk = _random_order(rng, signer)
        reference = Account.sign_typed_data(key, full_message=_typed_data(order, neg_risk))
        assert order_digest(order, neg_risk=neg_risk) == bytes(reference.message_hash)
        assert order.signature == "0x" + bytes(reference.signature).hex()
        assert recover_order_signer(order, neg_risk=neg_risk) == signer.address
        domains.add(_typed_data(order, neg_risk)["domain"]["verifyingContract"])
    assert domains == {EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3}


def test_poly_1271_signature_equals_the_official_builder() -> None:
    rng = random.Random(1271)
    versions: set[str] = set()
    for _ in range(60):
        key = "0x" + rng.randbytes(32).hex()
        wallet = checksum_address(rng.randbytes(20))
        signer = OrderSigner(key, signature_type=3, funder=wallet)
        order, neg_risk = _random_order(rng, signer)
        assert order.maker == order.signer == wallet
        domain = reference_domain(order.token_id, neg_risk)
        versions.add(domain["version"])
        official = ExchangeOrderBuilderV2(
            domain["verifyingContract"], 137, PySigner(key, 137), domain_version=domain["version"]
        )
        typed = official.build_order_typed_data(
            official.build_order(
                OrderDataV2(
                    maker=wallet,
                    tokenId=order.token_id,
                    makerAmount=str(order.maker_amount),
                    takerAmount=str(order.taker_amount),
                    side=PySide.BUY if order.side is Side.BUY else PySide.SELL,
                    signer=wallet,
                    signatureType=3,
                    timestamp=str(order.timestamp_ms),
                    metadata=order.metadata,
                    builder=order.builder,
                )
            )
        )
        typed["message"]["salt"] = order.salt
        assert order.signature == official.build_order_signature(typed)
        assert len(bytes.fromhex(order.signature[2:])) == POLY_1271_SIGNATURE_LENGTH == 317
        assert order_id(order, neg_risk=neg_risk) == official.build_order_hash(typed)
        assert recover_order_signer(order, neg_risk=neg_risk) == signer.address
    assert versions == {"2", "3"}


# ---------------------------------------------------------------------------------------------------------------
# Venue side: parse, recover, reject


def _any_order(signature_type: int = 0, *, neg_risk: bool = False) -> SignedOrder:
    funder = None if signature_type == 0 else FUNDERS["FUNDER_A"]
    signer = OrderSigner(K4, signature_type=signature_type, funder=funder)
    return signer.limit_order_with_id(
        token_id=TOKEN,
        side=Side.BUY,
        price=Decimal("0.42"),
        size=Decimal("12.5"),
        tick_size=Decimal("0.01"),
        neg_risk=neg_risk,
        salt=77,
        timestamp_ms=1767225600123,
    )[0]


@pytest.mark.parametrize("signature_type", [0, 1, 2, 3])
@pytest.mark.parametrize("neg_risk", [False, True])
def test_parse_round_trip_and_recover(signature_type: int, neg_risk: bool) -> None:
    order = _any_order(signature_type, neg_risk=neg_risk)
    wire = json.loads(order_body(order, owner="key", order_type="GTC", post_only=False, defer_exec=False))
    parsed = parse_signed_order(wire["order"])
    assert parsed == order
    assert recover_order_signer(parsed, neg_risk=neg_risk) == KEYS["k4"]["address"]
    # signed for the other exchange: recovers someone else (0-2) or is refused (3)
    if signature_type == 3:
        with pytest.raises(InputError, match="another exchange"):
            recover_order_signer(parsed, neg_risk=not neg_risk)
    else:
        assert recover_order_signer(parsed, neg_risk=not neg_risk) != KEYS["k4"]["address"]


@pytest.mark.parametrize("signature_type", [0, 1, 2, 3])
@pytest.mark.parametrize("neg_risk", [False, True])
def test_a_position_id_order_signed_for_a_v2_exchange_does_not_verify(signature_type: int, neg_risk: bool) -> None:
    # what a client that knows nothing of Exchange V3 sends: the official builder, asked for the V2 domain
    funder = FUNDERS["FUNDER_A"] if signature_type else None
    ours = OrderSigner(K4, signature_type=signature_type, funder=funder)
    good = ours.limit_order_with_id(
        token_id=POSITION_ID,
        side=Side.SELL,
        price=Decimal("0.42"),
        size=Decimal("12.5"),
        tick_size=Decimal("0.01"),
        neg_risk=neg_risk,
        salt=77,
        timestamp_ms=1767225600123,
    )[0]
    v2 = ExchangeOrderBuilderV2(NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2, 137, PySigner(K4, 137))
    typed = v2.build_order_typed_data(
        v2.build_order(
            OrderDataV2(
                maker=good.maker,
                tokenId=good.token_id,
                makerAmount=str(good.maker_amount),
                takerAmount=str(good.taker_amount),
                side=PySide.SELL,
                signer=good.signer,
                signatureType=signature_type,
                timestamp=str(good.timestamp_ms),
            )
        )
    )
    typed["message"]["salt"] = good.salt
    wrong = parse_signed_order(good.to_json() | {"signature": v2.build_order_signature(typed)})
    assert wrong.signature != good.signature
    assert recover_order_signer(good, neg_risk=neg_risk) == KEYS["k4"]["address"]
    if signature_type == 3:
        with pytest.raises(InputError, match="another exchange"):
            recover_order_signer(wrong, neg_risk=neg_risk)
    else:
        assert recover_order_signer(wrong, neg_risk=neg_risk) != KEYS["k4"]["address"]
    assert order_id(wrong, neg_risk=neg_risk) != v2.build_order_hash(typed)


def test_tampered_order_recovers_another_address() -> None:
    order = _any_order()
    wire = order.to_json()
    wire["makerAmount"] = str(order.maker_amount + 1)
    assert recover_order_signer(parse_signed_order(wire), neg_risk=False) != KEYS["k4"]["address"]
    # expiration is not signed in V2
    wire = order.to_json()
    wire["expiration"] = "1900000000"
    assert recover_order_signer(parse_signed_order(wire), neg_risk=False) == KEYS["k4"]["address"]
    assert order_id(parse_signed_order(wire), neg_risk=False) == order_id(order, neg_risk=False)


def test_poly_1271_envelope_must_match_the_order() -> None:
    order = _any_order(3)
    wire = order.to_json()
    wire["takerAmount"] = str(order.taker_amount + 1)
    with pytest.raises(InputError, match="contents hash"):
        recover_order_signer(parse_signed_order(wire), neg_risk=False)
    raw = bytes.fromhex(order.signature[2:])
    for bad in (raw[:-1], raw[:-2] + b"\x00\xbb", raw + b"\x00"):
        wire = order.to_json()
        wire["signature"] = "0x" + bad.hex()
        with pytest.raises(InputError, match=r"order\.signature"):
            recover_order_signer(parse_signed_order(wire), neg_risk=False)


@pytest.mark.parametrize(
    "signature",
    [
        "0x" + "00" * 65,  # r = s = 0
        "0x" + "11" * 64 + "1d",  # v = 29
        "0x" + "11" * 64,  # 64 bytes
        "0x" + "11" * 32 + "ff" * 32 + "1b",  # high s
    ],
)
def test_malformed_signatures_raise(signature: str) -> None:
    wire = _any_order().to_json()
    wire["signature"] = signature
    with pytest.raises(InputError, match=r"order\.signature"):
        recover_order_signer(parse_signed_order(wire), neg_risk=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("salt", -1),
        ("salt", True),
        ("salt", "1.5"),
        ("maker", "0x123"),
        ("maker", "0x7e5f4552091a69125d5dfcb7b8c2659029395BDF"),  # mixed case, bad checksum
        ("signer", 12),
        ("tokenId", "0x01"),
        ("tokenId", "007"),
        ("tokenId", str(2**256)),
        ("makerAmount", 5000000),  # amounts are strings on the wire
        ("takerAmount", "-1"),
        ("side", "buy"),
        ("signatureType", 4),
        ("signatureType", "0"),
        ("timestamp", "1.5"),
        ("metadata", "0x00"),
        ("builder", None),
        ("expiration", "soon"),
        ("signature", "0xabc"),
        ("signature", "zz"),
    ],
)
def test_parse_names_the_bad_field(field: str, value: object) -> None:
    wire: dict[str, object] = _any_order().to_json()
    wire[field] = value
    with pytest.raises(InputError) as info:
        parse_signed_order(wire)
    assert info.value.field == f"order.{field}"


def test_parse_rejects_missing_unknown_and_non_objects() -> None:
    wire: dict[str, object] = _any_order().to_json()
    del wire["builder"]
    with pytest.raises(InputError, match=r"order\.builder: missing"):
        parse_signed_order(wire)
    wire = {**_any_order().to_json(), "extra": 1}
    with pytest.raises(InputError, match=r"order\.extra: unknown field"):
        parse_signed_order(wire)
    with pytest.raises(InputError, match="expected an object"):
        parse_signed_order([1, 2])


def test_v1_orders_are_detected() -> None:
    v1 = json.loads(VECTORS["l2"][3]["input"]["body"])["order"]
    assert is_v1_order_json(v1)
    assert not is_v1_order_json(_any_order().to_json())
    assert not is_v1_order_json("order")
    with pytest.raises(InputError, match="order_version_mismatch"):
        parse_signed_order(v1)


def test_lowercase_addresses_are_checksummed() -> None:
    assert parse_address(FUNDERS["FUNDER_A"].lower(), "funder") == FUNDERS["FUNDER_A"]
    assert parse_address(FUNDERS["FUNDER_A"].upper().replace("0X", "0x"), "funder") == FUNDERS["FUNDER_A"]
    signer = OrderSigner(K1, signature_type=1, funder=FUNDERS["FUNDER_A"].lower())
    assert signer.maker == FUNDERS["FUNDER_A"]


def test_parse_token_id() -> None:
    assert parse_token_id("0") == "0"
    for bad in ("", "-1", "1e5", "１２", " 12", 12):
        with pytest.raises(InputError, match="token_id"):
            parse_token_id(bad)


# ---------------------------------------------------------------------------------------------------------------
# The signer: keys, wallets, salts, clocks


def test_signer_never_shows_the_key() -> None:
    signer = OrderSigner(K4)
    secret = K4[2:]
    assert secret not in repr(signer)
    assert secret not in str(signer)
    assert signer.address in repr(signer)
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    for bad in (K4[:-1], K4 + "0", K4[:-1] + "g", "0x" + "00" * 32, "0x" + "ff" * 32):
        with pytest.raises(InputError) as info:
            OrderSigner(bad)
        assert info.value.field == "private_key"
        assert bad[2:12] not in str(info.value)
        assert bad[-10:] not in str(info.value)


def test_key_without_0x_prefix() -> None:
    assert OrderSigner(K4[2:]).address == KEYS["k4"]["address"]


@pytest.mark.parametrize("signature_type", [1, 2, 3])
def test_funder_is_required_for_wallet_types(signature_type: int) -> None:
    with pytest.raises(InputError, match="funder: required"):
        OrderSigner(K1, signature_type=signature_type)


def test_wallet_roles() -> None:
    eoa = KEYS["k1"]["address"]
    funder = FUNDERS["FUNDER_B"]
    assert (OrderSigner(K1).maker, OrderSigner(K1).signer) == (eoa, eoa)
    assert OrderSigner(K1, funder=eoa).maker == eoa  # the key's own address is allowed for type 0
    for kind in (1, 2):
        signer = OrderSigner(K1, signature_type=kind, funder=funder)
        assert (signer.maker, signer.signer, signer.address) == (funder, eoa, eoa)
    deposit = OrderSigner(K1, signature_type=3, funder=funder)
    assert (deposit.maker, deposit.signer, deposit.address) == (funder, funder, eoa)
    with pytest.raises(InputError, match="funder"):
        OrderSigner(K1, funder=funder)
    with pytest.raises(InputError, match="signature_type"):
        OrderSigner(K1, signature_type=4, funder=funder)
    with pytest.raises(InputError, match="chain_id"):
        OrderSigner(K1, chain_id=1)


def test_salt_and_timestamp_come_from_injectable_sources() -> None:
    salts = iter([11, 12])
    signer = OrderSigner(K1, salt_source=lambda: next(salts), clock_ms=lambda: 1_700_000_000_000)
    kwargs: dict[str, Any] = {
        "token_id": TOKEN,
        "side": Side.SELL,
        "price": Decimal("0.5"),
        "size": Decimal(5),
        "tick_size": Decimal("0.01"),
        "neg_risk": False,
    }
    first, second = signer.limit_order_with_id(**kwargs)[0], signer.limit_order_with_id(**kwargs)[0]
    assert (first.salt, second.salt) == (11, 12)
    assert first.timestamp_ms == second.timestamp_ms == 1_700_000_000_000
    assert order_id(first, neg_risk=False) != order_id(second, neg_risk=False)


def test_default_salt_and_timestamp() -> None:
    signer = OrderSigner(K1)
    kwargs: dict[str, Any] = {
        "token_id": TOKEN,
        "side": Side.BUY,
        "amount": Decimal(5),
        "price": Decimal("0.5"),
        "tick_size": Decimal("0.01"),
        "neg_risk": True,
    }
    orders = [signer.market_order_with_id(**kwargs)[0] for _ in range(20)]
    assert all(0 <= o.salt < 2**53 for o in orders)
    assert len({o.salt for o in orders}) == 20
    assert all(o.timestamp_ms > 1_700_000_000_000 for o in orders)
    assert all(o.expiration == 0 for o in orders)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"salt": 2**53}, "salt"),
        ({"salt": -1}, "salt"),
        ({"timestamp_ms": 0}, "timestamp_ms"),
        ({"expiration": -5}, "expiration"),
        ({"builder_code": "0x1234"}, "builder_code"),
        ({"metadata": "00" * 32}, "metadata"),
        ({"token_id": "abc"}, "token_id"),
        ({"token_id": ["1"]}, "token_id"),
        ({"token_id": 1}, "token_id"),
        ({"neg_risk": 1}, "neg_risk"),
    ],
)
def test_bad_order_arguments(override: dict[str, Any], field: str) -> None:
    kwargs: dict[str, Any] = {
        "token_id": TOKEN,
        "side": Side.BUY,
        "price": Decimal("0.5"),
        "size": Decimal(5),
        "tick_size": Decimal("0.01"),
        "neg_risk": False,
        "salt": 1,
        "timestamp_ms": 1,
    } | override
    with pytest.raises(InputError) as info:
        OrderSigner(K1).limit_order_with_id(**kwargs)
    assert info.value.field == field


def test_order_body_checks_and_escapes() -> None:
    order = _any_order()
    with pytest.raises(InputError, match="order_type"):
        order_body(order, owner="k", order_type="gtc", post_only=False, defer_exec=False)
    with pytest.raises(InputError, match="owner"):
        order_body(order, owner="", order_type="GTC", post_only=False, defer_exec=False)
    body = order_body(order, owner='k"\\é', order_type="GTD", post_only=True, defer_exec=True)
    assert body == json.dumps(
        {"order": order.to_json(), "owner": 'k"\\é', "orderType": "GTD", "deferExec": True, "postOnly": True},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def test_hand_built_orders_with_bad_fields_cannot_be_hashed() -> None:
    good = _any_order()
    for bad in (
        SignedOrder(**{**_fields(good), "maker": "0x1234"}),
        SignedOrder(**{**_fields(good), "metadata": "0x00"}),
        SignedOrder(**{**_fields(good), "token_id": "x"}),
    ):
        with pytest.raises(InputError, match="order: cannot be hashed"):
            order_digest(bad, neg_risk=False)


def _fields(order: SignedOrder) -> dict[str, Any]:
    return {name: getattr(order, name) for name in SignedOrder.__slots__}


def test_keccak_in_any_thread() -> None:
    expected = "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"  # keccak256(b"abc")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(keccak256(b"abc").hex())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4
    assert keccak256(b"abc").hex() == expected
    assert keccak256(bytes(1000)) == keccak.new(data=bytes(1000), digest_bits=256).digest()
