"""`trader order sign`: the contract of /work/shared/polymarket/README.md, on the golden vectors (CTF Exchange V2 and
Exchange V3) and beyond."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import ApiCreds, FeeInfo, MarketOrderArgsV2, OrderArgsV2, PartialCreateOrderOptions
from py_clob_client_v2.order_builder.helpers import round_down
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.order_utils.model.side import Side as PySide

from tests.venues.polymarket.exchange_reference import (
    is_position_id_reference,
    random_position_id,
    random_reserved_bit_id,
    typed_order,
)
from trader.cli import main
from trader.commands.order import FeeTerms, adjust_buy_amount_for_fees, sign_main
from trader.venues.polymarket.signing import EXCHANGE_V3, keccak256, recover_address

FIXTURES = Path(__file__).parents[2] / "fixtures" / "polymarket"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "vectors.json").read_text())
VECTORS_V3: dict[str, Any] = json.loads((FIXTURES / "vectors_v3.json").read_text())
ORDER_CASES = VECTORS["orders"] + VECTORS_V3["orders"]
ERROR_CASES = VECTORS["errors"] + VECTORS_V3["errors"]
META = VECTORS["meta"]
BASE: dict[str, Any] = dict(VECTORS["orders"][0]["input"])
TOKEN = BASE["token_id"]


def run_sign(payload: object | str | bytes) -> tuple[int, dict[str, Any], str]:
    """Run the command in-process on `payload` (an object is sent as JSON); (status, printed object, raw text)."""
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    stdout = io.StringIO()
    status = sign_main(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"), stdout, clock=lambda: 1767225699.9)
    text = stdout.getvalue()
    assert text.endswith("\n")
    assert text.count("\n") == 1
    return status, json.loads(text), text


def _hmac(secret: str, message: str) -> str:
    digest = hmac.new(base64.urlsafe_b64decode(secret), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _assert_secrets_hidden(payload: dict[str, Any], text: str) -> None:
    key = payload.get("private_key")
    for secret in (key, payload.get("api_secret")):
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in text
            assert secret.removeprefix("0x") not in text


def _assert_signed(payload: dict[str, Any], status: int, out: dict[str, Any], text: str) -> None:
    assert status == 0, out
    assert set(out) == {"signed_order", "order_id", "body", "headers"}
    body = out["body"]
    assert json.loads(body)["order"] == out["signed_order"]
    headers = out["headers"]
    assert headers["POLY_ADDRESS"] == Account.from_key(payload["private_key"]).address
    assert headers["POLY_API_KEY"] == payload["api_key"]
    assert headers["POLY_PASSPHRASE"] == payload["api_passphrase"]  # a header sent as it is
    timestamp = str(payload.get("l2_timestamp", 1767225699))
    assert headers["POLY_TIMESTAMP"] == timestamp
    # the HMAC of exactly the printed body
    assert headers["POLY_SIGNATURE"] == _hmac(payload["api_secret"], f"{timestamp}POST/order{body}")
    assert "POLY_PASSPHRASE" in headers
    _assert_secrets_hidden(payload, text)


@pytest.mark.parametrize("case", ORDER_CASES, ids=lambda c: c["id"])
def test_order_vectors(case: dict[str, Any]) -> None:
    status, out, text = run_sign(case["input"])
    _assert_signed(case["input"], status, out, text)
    expected = case["expected"]
    if "signed_order" in expected:
        assert out["signed_order"] == expected["signed_order"]
        assert out["order_id"] == expected["order_id"]
        assert json.loads(out["body"]) == expected["body"]
        typed = typed_order(out["signed_order"], case["input"]["neg_risk"]) | {"domain": expected["domain"]}
        assert (
            out["order_id"]
            == "0x"
            + bytes(Account.sign_typed_data(case["input"]["private_key"], full_message=typed).message_hash).hex()
        )
    else:
        assert {k: out["signed_order"][k] for k in expected["signed_order_fields"]} == expected["signed_order_fields"]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c["id"])
def test_error_vectors(case: dict[str, Any]) -> None:
    status, out, text = run_sign(case["input"])
    assert status == 2
    assert set(out) == {"error"}
    assert out["error"]
    _assert_secrets_hidden(case["input"], text)


def _with(**changes: Any) -> dict[str, Any]:
    payload = dict(BASE)
    for key, value in changes.items():
        if value is _DROP:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


_DROP = object()
FUNDER = META["funders"]["FUNDER_A"]

BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("off-tick price", _with(price="0.505"), "price"),
    ("off-tick price t0.001", _with(price="0.0005", tick_size="0.001"), "price"),
    ("price 0", _with(price="0"), "price"),
    ("price above 1 - tick", _with(price="1.000", tick_size="0.005"), "price"),
    ("negative price", _with(price="-0.5"), "price"),
    ("price not a number", _with(price="half"), "price"),
    ("price infinity", _with(price="Infinity"), "price"),
    ("price as a JSON number", _with(price=0.5), "price"),
    ("size negative", _with(size="-10"), "size"),
    ("size zero", _with(size="0"), "size"),
    ("size floors to zero", _with(size="0.0099"), "size"),
    ("amount floors to zero", _with(size=_DROP, amount="0.001", order_type="FOK"), "amount"),
    ("amount negative", _with(size=_DROP, amount="-5", order_type="FAK"), "amount"),
    ("market price out of range", _with(size=_DROP, amount="5", price="0.999", order_type="FOK"), "price"),
    ("unknown side", _with(side="buy"), "side"),
    ("side as a number", _with(side=0), "side"),
    ("post-only FOK", _with(post_only=True, order_type="FOK"), "post_only"),
    ("post-only FAK market", _with(size=_DROP, amount="5", post_only=True, order_type="FAK"), "post_only"),
    ("unknown order type", _with(order_type="IOC"), "order_type"),
    ("lower-case order type", _with(order_type="gtc"), "order_type"),
    ("GTD without expiration", _with(order_type="GTD"), "expiration"),
    ("market GTD", _with(size=_DROP, amount="5", order_type="GTD", expiration=1900000000), "order_type"),
    ("short key", _with(private_key=BASE["private_key"][:-1]), "private_key"),
    ("non-hex key", _with(private_key="0x" + "zz" * 32), "private_key"),
    ("zero key", _with(private_key="0x" + "00" * 32), "private_key"),
    ("key as a number", _with(private_key=1), "private_key"),
    ("bad funder", _with(signature_type=1, funder="0x1234"), "funder"),
    ("funder with a bad checksum", _with(signature_type=2, funder=FUNDER[:-1] + FUNDER[-1].swapcase()), "funder"),
    ("funder missing for type 1", _with(signature_type=1), "funder"),
    ("funder missing for type 2", _with(signature_type=2, funder=None), "funder"),
    ("funder missing for type 3", _with(signature_type=3, funder=_DROP), "funder"),
    ("funder for an EOA order", _with(funder=FUNDER), "funder"),
    ("signature type 4", _with(signature_type=4, funder=FUNDER), "signature_type"),
    ("signature type null", _with(signature_type=None), "signature_type"),
    ("signature type as text", _with(signature_type="1", funder=FUNDER), "signature_type"),
    ("token id hex", _with(token_id="0xabc"), "token_id"),
    ("token id number", _with(token_id=123), "token_id"),
    ("token id too big", _with(token_id=str(2**256)), "token_id"),
    ("token id empty", _with(token_id=""), "token_id"),
    ("builder code short", _with(builder_code="0x1234"), "builder_code"),
    ("metadata not hex", _with(metadata="0x" + "g" * 64), "metadata"),
    ("metadata null", _with(metadata=None), "metadata"),
    ("tick size unknown", _with(tick_size="0.02"), "tick_size"),
    ("tick size as a number", _with(tick_size=0.01), "tick_size"),
    ("neg_risk as text", _with(neg_risk="false"), "neg_risk"),
    ("neg_risk missing", _with(neg_risk=_DROP), "neg_risk"),
    ("post_only as a number", _with(post_only=0), "post_only"),
    ("salt as text", _with(salt="1"), "salt"),
    ("salt too big", _with(salt=2**53), "salt"),
    ("salt negative", _with(salt=-1), "salt"),
    ("salt float", _with(salt=1.5), "salt"),
    ("timestamp zero", _with(timestamp_ms=0), "timestamp_ms"),
    ("l2 timestamp text", _with(l2_timestamp="1767225600"), "l2_timestamp"),
    ("expiration negative", _with(order_type="GTD", expiration=-1), "expiration"),
    ("api secret not base64", _with(api_secret="not base64!"), "api_secret"),
    ("api key empty", _with(api_key=""), "api_key"),
    ("passphrase number", _with(api_passphrase=5), "api_passphrase"),
    ("both size and amount", _with(amount="5"), "size"),
    ("neither size nor amount", _with(size=_DROP), "size"),
    ("balance negative", _with(user_usdc_balance="-1"), "user_usdc_balance"),
    ("balance float", _with(user_usdc_balance=1.5), "user_usdc_balance"),
    ("fee slippage out of range", _with(user_usdc_balance="1", fee_slippage="0.5"), "fee_slippage"),
    ("missing side", _with(side=_DROP), "side"),
]


@pytest.mark.parametrize(("payload", "field"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_naming_the_field(payload: dict[str, Any], field: str) -> None:
    status, out, text = run_sign(payload)
    assert status == 2
    assert out["error"].startswith(f"{field}: "), out
    _assert_secrets_hidden(payload, text)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "invalid JSON"),
        ("{", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("null", "expected a JSON object"),
        ('"text"', "expected a JSON object"),
        ('{"price": NaN}', "NaN is not valid JSON"),
        ('{"side": "BUY", "side": "SELL"}', "side: duplicate key"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[" * 100_000, "nested deeper than 32 levels"),  # would overflow the C stack once py_ecc is imported
        ('{"a": ' * 40 + "1" + "}" * 40, "nested deeper than 32 levels"),
        ('{"api_key": "' + "[{" * 50 + '"}', "private_key: missing"),  # brackets inside strings do not count
        ('{"api_key": "\\"' + "[" * 50 + '"}', "private_key: missing"),  # an escaped quote stays in the string
    ],
)
def test_unreadable_input_exits_2(raw: str | bytes, message: str) -> None:
    status, out, _ = run_sign(raw)
    assert status == 2
    assert message in out["error"]


def test_oversized_input_is_refused() -> None:
    status, out, _ = run_sign(b" " * (2 << 20))
    assert status == 2
    assert "larger than 1 MiB" in out["error"]


def test_the_private_key_never_leaks_even_when_misplaced() -> None:
    key = META["keys"]["k4"]["private_key"]
    for payload in (
        _with(private_key=key[:-2]),  # malformed key
        _with(private_key=key + "00"),
        _with(private_key=key, token_id=key),  # a key pasted into the wrong field
        _with(private_key=key, funder=key, signature_type=1),
        _with(private_key=key, builder_code=key[:-1]),
        _with(private_key=key, api_secret=key),
        _with(private_key=key, api_passphrase=key, price="2"),
    ):
        status, out, text = run_sign(payload)
        assert status == 2
        assert key[2:-2] not in text, out
        _assert_secrets_hidden(payload, text)


def test_defaults_generate_salt_timestamp_and_l2_time() -> None:
    payload = {k: v for k, v in BASE.items() if k not in ("salt", "timestamp_ms", "l2_timestamp", "order_type")}
    status, out, text = run_sign(payload)
    _assert_signed(payload, status, out, text)
    assert 0 <= out["signed_order"]["salt"] < 2**53
    assert int(out["signed_order"]["timestamp"]) > 1_700_000_000_000
    assert json.loads(out["body"])["orderType"] == "GTC"
    market = {k: v for k, v in payload.items() if k != "size"} | {"amount": "5"}
    status, out, _ = run_sign(market)
    assert status == 0
    assert json.loads(out["body"])["orderType"] == "FOK"


def test_gtd_expiration_is_sent_but_not_signed() -> None:
    baseline = next(c for c in VECTORS["orders"] if c["id"] == "v2-lim-gtd-exp0-baseline")
    status, out, text = run_sign(baseline["input"] | {"order_type": "GTD", "expiration": 1900000000})
    _assert_signed(baseline["input"], status, out, text)
    assert out["order_id"] == baseline["expected"]["order_id"]
    assert out["signed_order"]["signature"] == baseline["expected"]["signed_order"]["signature"]
    assert out["signed_order"]["expiration"] == "1900000000"
    assert json.loads(out["body"])["orderType"] == "GTD"


def test_expiration_on_a_gtc_order_is_passed_through_unsigned_as_the_official_client_does() -> None:
    baseline = next(c for c in VECTORS["orders"] if c["id"] == "v2-lim-gtd-exp0-baseline")
    status, out, text = run_sign(baseline["input"] | {"expiration": 1900000000})
    _assert_signed(baseline["input"], status, out, text)
    assert out["order_id"] == baseline["expected"]["order_id"]
    assert out["signed_order"]["expiration"] == "1900000000"


def test_unknown_fields_are_ignored_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    case = VECTORS["orders"][0]
    status, out, _ = run_sign(case["input"] | {"comment": "hello"})
    assert status == 0
    assert out["order_id"] == case["expected"]["order_id"]
    assert "ignoring unknown field 'comment'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "maker", "taker"),
    [
        # 100 @ 0.5 costs 50; fee 0.02 * 0.25 per share; the fee on min(50, 40) = 40 pUSD of cost is
        # 80 shares * 0.005 = 0.4, so 40 - 0.4 = 39.6 pUSD can be spent: 79.2 shares.
        ({"user_usdc_balance": "40", "fee_rate": "0.02", "fee_exponent": "1"}, 39_600_000, 79_200_000),
        # with a 1% builder fee on top: 40 - 0.4 - 0.4 = 39.2 pUSD: 78.4 shares
        (
            {"user_usdc_balance": "40", "fee_rate": "0.02", "fee_exponent": "1", "builder_taker_fee_rate": "0.01"},
            39_200_000,
            78_400_000,
        ),
        # a balance that covers cost and fees changes nothing
        ({"user_usdc_balance": "1000", "fee_rate": "0.02", "fee_exponent": "1"}, 50_000_000, 100_000_000),
    ],
)
def test_user_balance_shrinks_a_limit_buy_to_fit_cost_and_fees(extra: dict[str, Any], maker: int, taker: int) -> None:
    status, out, _ = run_sign(_with(side="BUY", price="0.5", size="100") | extra)
    assert status == 0, out
    assert (int(out["signed_order"]["makerAmount"]), int(out["signed_order"]["takerAmount"])) == (maker, taker)


def test_user_balance_shrinks_a_market_buy_and_never_a_sell() -> None:
    fees = {"user_usdc_balance": "40", "fee_rate": "0.02", "fee_exponent": "1"}
    market_buy = {k: v for k, v in _with(side="BUY", price="0.5").items() if k != "size"} | {"amount": "50"}
    status, out, _ = run_sign(market_buy | fees)
    assert status == 0, out
    assert (out["signed_order"]["makerAmount"], out["signed_order"]["takerAmount"]) == ("39600000", "79200000")
    status, out, _ = run_sign(_with(side="SELL", price="0.5", size="100") | fees)
    assert status == 0, out
    assert out["signed_order"]["makerAmount"] == "100000000"


# ---------------------------------------------------------------------------------------------------------------
# Our own cases, cross-checked against eth-account and the official client


def _official_client(payload: dict[str, Any]) -> ClobClient:
    client = ClobClient(
        "http://127.0.0.1:9",  # never contacted: every cache it would fill from the network is pre-filled
        chain_id=137,
        key=payload["private_key"],
        creds=ApiCreds(payload["api_key"], payload["api_secret"], payload["api_passphrase"]),
        signature_type=payload["signature_type"],
        funder=payload["funder"],
    )
    cache: dict[str, Any] = client.__dict__
    cache["_ClobClient__tick_sizes"][payload["token_id"]] = payload["tick_size"]
    cache["_ClobClient__neg_risk"][payload["token_id"]] = payload["neg_risk"]
    cache["_ClobClient__fee_infos"][payload["token_id"]] = FeeInfo()
    cache["_ClobClient__cached_version"] = 2
    return client


def _official_body(
    payload: dict[str, Any], *, exact_amounts: tuple[int, int] | None = None
) -> tuple[dict[str, Any], str]:
    """The official client's POST /order body for `payload`. A protocol-v2 position id (by the rule, written out in
    the tests) is passed as `position_id`, which the client routes to Exchange V3, any other id as `token_id`, as
    the vectors were made. `exact_amounts` (maker, taker) replaces the client's float amount arithmetic, so that it
    signs the exact amounts where its rounding would sign others."""
    client = _official_client(payload)
    if exact_amounts is not None:
        side = PySide.BUY if payload["side"] == "BUY" else PySide.SELL
        amounts = (side, *exact_amounts)
        client.builder.get_order_amounts = lambda *_: amounts
        client.builder.get_market_order_amounts = lambda *_: amounts
    options = PartialCreateOrderOptions(tick_size=payload["tick_size"], neg_risk=payload["neg_risk"])
    asset = (
        {"position_id": payload["token_id"]}
        if is_position_id_reference(payload["token_id"])
        else {"token_id": payload["token_id"]}
    )
    if "size" in payload:
        args: Any = OrderArgsV2(
            price=float(payload["price"]),
            size=float(payload["size"]),
            side=payload["side"],
            expiration=payload.get("expiration", 0),
            builder_code=payload["builder_code"],
            metadata=payload["metadata"],
            **asset,
        )
        order = client.create_order(args, options)
    else:
        args = MarketOrderArgsV2(
            amount=float(payload["amount"]),
            side=payload["side"],
            price=float(payload["price"]),
            order_type=payload["order_type"],
            builder_code=payload["builder_code"],
            metadata=payload["metadata"],
            **asset,
        )
        order = client.create_market_order(args, options)
    wire = order_to_json_v2(order, payload["api_key"], payload["order_type"], payload["post_only"], False)
    return wire, json.dumps(wire, separators=(",", ":"), ensure_ascii=False)


def _float_rounding_is_exact(payload: dict[str, Any]) -> bool:
    """True where py-clob-client-v2's float rounding of price and size lands on the exact decimal values."""
    tick = Decimal(payload["tick_size"])
    quantity = Decimal(payload["size"] if "size" in payload else payload["amount"])
    floored = quantity.quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    if Decimal(str(round_down(float(quantity), 2))) != floored:
        return False
    price = Decimal(payload["price"])
    price_dp = {"0.1": 1, "0.01": 2, "0.005": 3, "0.0025": 4, "0.001": 3, "0.0001": 4}[payload["tick_size"]]
    floored_price = (price // tick) * tick
    if Decimal(str(round_down(float(price), price_dp))) != floored_price:
        return False
    if "amount" in payload and payload["side"] == "BUY":
        return True  # the quotient is rounded at amount_dp + 4 first, which absorbs the float error
    # the product in binary floats, e.g. 1074143 * 0.5375 = 577351.8624999999 (exactly 577351.8625)
    return Decimal(str(float(floored) * float(floored_price))) == floored * floored_price


def _own_cases() -> list[dict[str, Any]]:
    rng = random.Random(7)
    keys = [k["private_key"] for k in META["keys"].values()]
    cases: list[dict[str, Any]] = []
    ticks = ["0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"]
    for n in range(96):
        tick = ticks[n % len(ticks)]
        tick_d = Decimal(tick)
        price = tick_d * rng.randint(1, int((1 - tick_d) / tick_d))
        signature_type = (n // 6) % 4
        neg_risk = (n // 24) % 2 == 1
        payload = dict(BASE) | {
            "private_key": keys[n % 4],
            "side": rng.choice(["BUY", "SELL"]),
            "token_id": str(rng.getrandbits(254)),
            "price": str(price),
            "tick_size": tick,
            "neg_risk": neg_risk,
            "signature_type": signature_type,
            "funder": None if signature_type == 0 else rng.choice(list(META["funders"].values())),
            "salt": rng.randrange(2**53),
            "timestamp_ms": 1767225600000 + n,
            "builder_code": rng.choice(["0x" + "00" * 32, "0x" + rng.randbytes(32).hex()]),
            "post_only": False,
            "l2_timestamp": 1767225600 + n,
        }
        quantity = str(Decimal(rng.randint(1, 2_000_000)) / rng.choice([1, 10, 100, 1000]))
        if n % 3 == 2:
            payload.pop("size")
            payload["amount"] = quantity
            payload["order_type"] = rng.choice(["FOK", "FAK"])
            if n % 2:  # a worst price off the grid is floored to the tick
                payload["price"] = str(price + tick_d / 3) if price + tick_d <= 1 - tick_d else str(price)
        else:
            payload["size"] = quantity
            payload["order_type"] = rng.choice(["GTC", "FOK", "FAK"])
            payload["post_only"] = payload["order_type"] == "GTC" and rng.random() < 0.3
        cases.append(payload)
    return cases


OWN_CASES = _own_cases()


@pytest.mark.parametrize("payload", OWN_CASES, ids=[f"own-{n}" for n in range(len(OWN_CASES))])
def test_own_cases_against_eth_account_and_the_official_client(payload: dict[str, Any]) -> None:
    status, out, text = run_sign(payload)
    _assert_signed(payload, status, out, text)
    order = out["signed_order"]
    neg_risk = payload["neg_risk"]
    # roles per signature type
    eoa = Account.from_key(payload["private_key"]).address
    expected_maker = eoa if payload["signature_type"] == 0 else payload["funder"]
    expected_signer = payload["funder"] if payload["signature_type"] == 3 else eoa
    assert (order["maker"], order["signer"]) == (expected_maker, expected_signer)
    # the order id is eth-account's EIP-712 hash; for types 0-2 the signature is eth-account's too
    typed = typed_order(order, neg_risk)
    reference = Account.sign_typed_data(payload["private_key"], full_message=typed)
    assert out["order_id"] == "0x" + bytes(reference.message_hash).hex()
    if payload["signature_type"] != 3:
        assert order["signature"] == "0x" + bytes(reference.signature).hex()
    # the official client, where its float rounding is exact: same amounts, and with its salt and timestamp the
    # byte-identical body
    if _float_rounding_is_exact(payload):
        official, official_text = _official_body(payload)
        assert official["order"]["makerAmount"] == order["makerAmount"]
        assert official["order"]["takerAmount"] == order["takerAmount"]
        replay = payload | {"salt": official["order"]["salt"], "timestamp_ms": int(official["order"]["timestamp"])}
        status, again, _ = run_sign(replay)
        assert status == 0
        assert again["body"] == official_text


def test_own_cases_cover_the_intended_kinds() -> None:
    kinds = {
        ("size" in p, p["side"], p["signature_type"], p["neg_risk"], p["tick_size"] in ("0.005", "0.0025"))
        for p in OWN_CASES
    }
    assert {(k[2], k[3]) for k in kinds} == {(t, n) for t in range(4) for n in (False, True)}
    assert any(not limit and side == "SELL" for limit, side, *_ in kinds)
    assert sum(_float_rounding_is_exact(p) for p in OWN_CASES) >= 40


# ---------------------------------------------------------------------------------------------------------------
# Exchange V3: generated cases around protocol-v2 position ids, cross-checked against the official client


def _v3_cases() -> list[dict[str, Any]]:
    """Position ids of modules 1-3 with both outcome indexes, and ids shaped like them with a reserved bit set (V2);
    neg risk on and off, every signature type, BUY and SELL, limit and market orders, every tick."""
    rng = random.Random(3)
    keys = [k["private_key"] for k in META["keys"].values()]
    ticks = ["0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"]
    cases: list[dict[str, Any]] = []
    for n in range(144):
        signature_type = n % 4
        neg_risk = (n // 4) % 2 == 1
        kind = (n // 8) % 9  # 0-5: module 1-3 x outcome 0/1; 6-8: a reserved bit set, module 1-3
        limit = n < 72
        module, outcome = (kind // 2 + 1, kind % 2) if kind < 6 else (kind - 5, rng.randrange(2))
        token = random_position_id(rng, module, outcome) if kind < 6 else random_reserved_bit_id(rng, module, outcome)
        tick = rng.choice(ticks)
        tick_d = Decimal(tick)
        price = tick_d * rng.randint(1, int((1 - tick_d) / tick_d))
        payload = dict(BASE) | {
            "private_key": keys[n % 4],
            "side": rng.choice(["BUY", "SELL"]),
            "token_id": str(token),
            "price": str(price),
            "tick_size": tick,
            "neg_risk": neg_risk,
            "signature_type": signature_type,
            "funder": None if signature_type == 0 else rng.choice(list(META["funders"].values())),
            "salt": rng.randrange(2**53),
            "timestamp_ms": 1767225600000 + n,
            "builder_code": rng.choice(["0x" + "00" * 32, "0x" + rng.randbytes(32).hex()]),
            "metadata": rng.choice(["0x" + "00" * 32, "0x" + rng.randbytes(32).hex()]),
            "post_only": False,
            "l2_timestamp": 1767225600 + n,
        }
        quantity = str(Decimal(rng.randint(1, 2_000_000)) / rng.choice([1, 10, 100, 1000]))
        if limit:
            payload["size"] = quantity
            payload["order_type"] = rng.choice(["GTC", "GTD", "FOK", "FAK"])
            payload["post_only"] = payload["order_type"] in ("GTC", "GTD") and rng.random() < 0.3
            if payload["order_type"] == "GTD":
                payload["expiration"] = 1900000000 + n
        else:
            payload.pop("size")
            payload["amount"] = quantity
            payload["order_type"] = rng.choice(["FOK", "FAK"])
        cases.append(payload)
    return cases


V3_CASES = _v3_cases()


@pytest.mark.parametrize("payload", V3_CASES, ids=[f"v3-{n}" for n in range(len(V3_CASES))])
def test_exchange_v3_cases_against_eth_account_and_the_official_client(payload: dict[str, Any]) -> None:
    status, out, text = run_sign(payload)
    _assert_signed(payload, status, out, text)
    order = out["signed_order"]
    key, neg_risk = payload["private_key"], payload["neg_risk"]
    # the order id is eth-account's EIP-712 hash under the domain the rule picks; for types 0-2 so is the signature
    typed = typed_order(order, neg_risk)
    assert (typed["domain"]["verifyingContract"] == EXCHANGE_V3) is is_position_id_reference(payload["token_id"])
    reference = Account.sign_typed_data(key, full_message=typed)
    assert out["order_id"] == "0x" + bytes(reference.message_hash).hex()
    if payload["signature_type"] != 3:
        assert order["signature"] == "0x" + bytes(reference.signature).hex()
    # the official client, given the id as position_id or token_id: its own amounts where its float rounding is
    # exact, else ours (the exact ones, as the vectors' signed_order_fields); with its salt and timestamp the body is
    # byte-identical, signature included
    exact = None if _float_rounding_is_exact(payload) else (int(order["makerAmount"]), int(order["takerAmount"]))
    official, official_text = _official_body(payload, exact_amounts=exact)
    assert (official["order"]["makerAmount"], official["order"]["takerAmount"]) == (
        order["makerAmount"],
        order["takerAmount"],
    )
    replay = payload | {"salt": official["order"]["salt"], "timestamp_ms": int(official["order"]["timestamp"])}
    status, again, _ = run_sign(replay)
    assert status == 0
    assert again["body"] == official_text
    # and the official signature is over our order id
    signature = bytes.fromhex(official["order"]["signature"][2:])
    if payload["signature_type"] == 3:
        assert "0x" + keccak256(b"\x19\x01" + signature[65:129]).hex() == again["order_id"]
    else:
        assert recover_address(bytes.fromhex(again["order_id"][2:]), signature) == Account.from_key(key).address


def test_exchange_v3_cases_cover_the_intended_kinds() -> None:
    def shape(payload: dict[str, Any]) -> tuple[object, ...]:
        token = int(payload["token_id"])
        return (token >> 248, token & 0xFF, is_position_id_reference(payload["token_id"]))

    shapes = {shape(p) for p in V3_CASES}
    assert {(m, o, True) for m in (1, 2, 3) for o in (0, 1)} <= shapes
    assert {m for m, _, position in shapes if not position} == {1, 2, 3}
    kinds = {("size" in p, p["side"], p["signature_type"], p["neg_risk"]) for p in V3_CASES}
    assert {(k[2], k[3]) for k in kinds} == {(t, n) for t in range(4) for n in (False, True)}
    assert {(k[0], k[1]) for k in kinds} == {(limit, side) for limit in (True, False) for side in ("BUY", "SELL")}
    exact = sum(_float_rounding_is_exact(p) for p in V3_CASES)
    assert 40 <= exact <= len(V3_CASES) - 20  # both ways of comparing with the official client are used
    assert {p["tick_size"] for p in V3_CASES} == {"0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"}


# ---------------------------------------------------------------------------------------------------------------
# Through the real command line


def test_cli_routes_order_sign(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    case = VECTORS["orders"][2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(case["input"]).encode())))
    assert main(["order", "sign"]) == 0
    assert json.loads(capsys.readouterr().out)["order_id"] == case["expected"]["order_id"]
    assert main(["order"]) == 2
    assert "usage" in capsys.readouterr().err


def test_subprocess_no_traceback_and_exit_codes() -> None:
    command = [sys.executable, "-m", "trader", "order", "sign"]
    ok = subprocess.run(
        command, input=json.dumps(VECTORS["orders"][0]["input"]), capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["order_id"] == VECTORS["orders"][0]["expected"]["order_id"]
    bad = subprocess.run(command, input="{not json", capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "error" in json.loads(bad.stdout)
    assert "Traceback" not in bad.stderr


ODD_VALUES: list[object] = [None, True, 0, -1, 1.5, 2**300, "", "x", "1e999", "NaN", "0x" + "00" * 32, [], {}, ["BUY"]]


@pytest.mark.parametrize("kind", ["limit", "market"])
def test_any_odd_value_in_any_field_is_a_clean_answer(kind: str) -> None:
    base = BASE if kind == "limit" else _with(size=_DROP, amount="7.5", order_type="FAK")
    for field in base:
        for value in ODD_VALUES:
            payload = base | {field: value}
            status, out, text = run_sign(payload)
            assert status in (0, 2), (field, value, out)
            if status == 2:
                assert out["error"].startswith(f"{field}: "), (field, value, out)
            _assert_secrets_hidden(payload, text)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.99"), places=2),
    balance=st.decimals(min_value=Decimal(0), max_value=Decimal(10_000), places=2),
    rate=st.sampled_from([Decimal(0), Decimal("0.02"), Decimal("0.07")]),
    exponent=st.sampled_from([Decimal(1), Decimal(2)]),
    builder=st.sampled_from([Decimal(0), Decimal("0.005")]),
)
def test_balance_adjustment_agrees_with_the_official_sdk(  # noqa: PLR0917
    amount: Decimal, price: Decimal, balance: Decimal, rate: Decimal, exponent: Decimal, builder: Decimal
) -> None:
    from py_clob_client_v2.fees import adjust_buy_amount_for_fees as official

    ours = adjust_buy_amount_for_fees(amount, price, balance, FeeTerms(rate, exponent, builder))
    theirs = official(float(amount), float(price), float(balance), float(rate), float(exponent), float(builder))
    assert float(ours) == pytest.approx(theirs, rel=1e-9, abs=1e-9)
