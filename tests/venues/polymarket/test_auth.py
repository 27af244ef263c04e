"""L1 (ClobAuth EIP-712) and L2 (HMAC) authentication: golden vectors and the server-side checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from trader.errors import InputError
from trader.venues.polymarket.auth import (
    CLOB_AUTH_MESSAGE,
    ApiCredentials,
    decode_api_secret,
    l1_digest,
    l1_headers,
    l1_signature,
    l2_headers,
    l2_message,
    l2_signature,
    recover_l1_address,
    verify_l1_headers,
    verify_l2_signature,
)
from trader.venues.polymarket.signing import OrderSigner

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "polymarket" / "vectors.json").read_text()
)
CREDS = VECTORS["meta"]["api_creds"]
K1 = VECTORS["meta"]["keys"]["k1"]
K2 = VECTORS["meta"]["keys"]["k2"]


@pytest.mark.parametrize("case", VECTORS["l1"], ids=lambda c: c["id"])
def test_l1_vectors(case: dict[str, Any]) -> None:
    i, expected = case["input"], case["expected"]
    signer = OrderSigner(i["private_key"])
    headers = l1_headers(signer, i["timestamp"], i["nonce"])
    assert headers == expected["headers"]
    if "eip712_digest" in expected:
        assert "0x" + l1_digest(signer.address, i["timestamp"], i["nonce"]).hex() == expected["eip712_digest"]
        assert l1_signature(signer, i["timestamp"], i["nonce"]) == expected["signature"]
    # server side
    assert verify_l1_headers(headers) == signer.address
    assert (
        recover_l1_address(
            address=headers["POLY_ADDRESS"],
            signature=headers["POLY_SIGNATURE"],
            timestamp=headers["POLY_TIMESTAMP"],
            nonce=headers["POLY_NONCE"],
        )
        == signer.address
    )


def test_l1_digest_equals_eth_account() -> None:
    signer = OrderSigner(K2["private_key"])
    typed = {
        "primaryType": "ClobAuth",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 80002},
        "message": {"address": signer.address, "timestamp": "1767225999", "nonce": 7, "message": CLOB_AUTH_MESSAGE},
    }
    reference = Account.sign_message(encode_typed_data(full_message=typed), K2["private_key"])
    assert l1_digest(signer.address, 1767225999, 7, chain_id=80002) == bytes(reference.message_hash)
    assert l1_signature(signer, 1767225999, 7, chain_id=80002) == "0x" + bytes(reference.signature).hex()


def test_l1_verification_rejects_forgeries() -> None:
    headers = l1_headers(OrderSigner(K1["private_key"]), 1767225600, 0)
    # another address claimed with K1's signature
    with pytest.raises(InputError, match="POLY_SIGNATURE: signature was not made by POLY_ADDRESS"):
        verify_l1_headers({**headers, "POLY_ADDRESS": K2["address"]})
    # the signature does not carry over to another timestamp or nonce
    with pytest.raises(InputError, match="POLY_SIGNATURE"):
        verify_l1_headers({**headers, "POLY_TIMESTAMP": "1767225601"})
    with pytest.raises(InputError, match="POLY_SIGNATURE"):
        verify_l1_headers({**headers, "POLY_NONCE": "1"})
    for header, value in (
        ("POLY_SIGNATURE", "0xzz"),
        ("POLY_SIGNATURE", "abcd"),
        ("POLY_SIGNATURE", "0x" + "00" * 65),
        ("POLY_TIMESTAMP", "-1"),
        ("POLY_NONCE", "x"),
        ("POLY_ADDRESS", "0x12"),
    ):
        with pytest.raises(InputError) as info:
            verify_l1_headers({**headers, header: value})
        assert info.value.field == header
    with pytest.raises(InputError, match="POLY_TIMESTAMP: missing"):
        verify_l1_headers({k: v for k, v in headers.items() if k != "POLY_TIMESTAMP"})
    # POLY_NONCE defaults to 0
    assert verify_l1_headers({k: v for k, v in headers.items() if k != "POLY_NONCE"}) == K1["address"]


@pytest.mark.parametrize("case", VECTORS["l2"], ids=lambda c: c["id"])
def test_l2_vectors(case: dict[str, Any]) -> None:
    i, expected = case["input"], case["expected"]
    assert l2_message(i["timestamp"], i["method"], i["request_path"], i["body"]) == expected["signed_message"]
    signature = l2_signature(i["secret"], i["timestamp"], i["method"], i["request_path"], i["body"])
    assert signature == expected["signature"]
    assert verify_l2_signature(
        i["secret"],
        signature,
        timestamp=i["timestamp"],
        method=i["method"],
        request_path=i["request_path"],
        body=i["body"],
    )


def test_l2_signs_the_path_without_its_query() -> None:
    secret = CREDS["secret"]
    assert l2_signature(secret, 1767225600, "GET", "/data/orders?next_cursor=MA==") == (
        "XCX79qBZt5JrhBrgvQHusdC3tnALI3WhiRNPRltFIrA="  # vector l2-hmac-00 (path /data/orders)
    )
    assert l2_message(1, "get", "/x?a=1") == "1GET/x"


def test_l2_body_is_signed_exactly_unless_the_py_quirk_is_asked_for() -> None:
    secret = CREDS["secret"]
    body = '{"owner":"o\'k"}'
    exact = l2_signature(secret, 5, "POST", "/order", body)
    quirk = l2_signature(secret, 5, "POST", "/order", body, py_quote_quirk=True)
    assert exact != quirk
    assert quirk == l2_signature(secret, 5, "POST", "/order", body.replace("'", '"'))
    kwargs: dict[str, Any] = {"timestamp": 5, "method": "POST", "request_path": "/order", "body": body}
    assert verify_l2_signature(secret, exact, **kwargs)
    assert verify_l2_signature(secret, quirk, **kwargs)
    assert not verify_l2_signature(secret, quirk, accept_py_quote_quirk=False, **kwargs)
    assert not verify_l2_signature(secret, exact, **(kwargs | {"body": body + " "}))
    assert not verify_l2_signature(secret, exact, **(kwargs | {"timestamp": 6}))


def test_api_credentials_hide_their_secrets() -> None:
    creds = ApiCredentials(CREDS["api_key"], CREDS["secret"], CREDS["passphrase"])
    for text in (repr(creds), str(creds)):
        assert CREDS["secret"] not in text
        assert CREDS["passphrase"] not in text
        assert CREDS["api_key"] in text
    headers = l2_headers(
        creds, address=K1["address"], timestamp=1767225600, method="GET", request_path="/data/orders", body=None
    )
    assert headers == {
        "POLY_ADDRESS": K1["address"],
        "POLY_SIGNATURE": "XCX79qBZt5JrhBrgvQHusdC3tnALI3WhiRNPRltFIrA=",
        "POLY_TIMESTAMP": "1767225600",
        "POLY_API_KEY": CREDS["api_key"],
        "POLY_PASSPHRASE": CREDS["passphrase"],
    }


@pytest.mark.parametrize(
    ("api_key", "secret", "passphrase", "field"),
    [
        ("", CREDS["secret"], "p", "api_key"),
        ("k", CREDS["secret"], "", "api_passphrase"),
        ("k", "not base64!", "p", "api_secret"),
        ("k", "abc", "p", "api_secret"),  # bad padding
        ("k", "", "p", "api_secret"),
        ("k", "ünïcode", "p", "api_secret"),
    ],
)
def test_bad_credentials_name_the_field_and_hide_the_value(
    api_key: str, secret: str, passphrase: str, field: str
) -> None:
    with pytest.raises(InputError) as info:
        ApiCredentials(api_key, secret, passphrase)
    assert info.value.field == field
    if secret:
        assert secret not in str(info.value)


def test_decode_api_secret() -> None:
    assert decode_api_secret("AAAA") == b"\x00\x00\x00"
    assert decode_api_secret("-_-_") == bytes.fromhex("fbffbf")
    with pytest.raises(InputError, match="api_secret"):
        decode_api_secret("AAAA!")  # no characters outside the alphabet are skipped
