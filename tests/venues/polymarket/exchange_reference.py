"""The exchange an order is signed for, written out for the tests on their own (not taken from `trader`): the rule of
protocol.md §11 item 9 and vectors_v3.json's conventions, the contract addresses of py-clob-client-v2's config, and
made-up asset ids of every kind the rule tells apart."""

from __future__ import annotations

import random
from typing import Any

from py_clob_client_v2.config import get_contract_config

_RESERVED_BITS = (2**64 - 1) << 40


def is_position_id_reference(token_id: str) -> bool:
    """A protocol-v2 position id: bits 40..103 all zero."""
    return (int(token_id) >> 40) & (2**64 - 1) == 0


def reference_domain(token_id: str, neg_risk: bool, chain_id: int = 137) -> dict[str, Any]:
    """The EIP-712 domain an official client signs under: Exchange V3, version "3", for a position id (neg risk
    ignored); else version "2" and the V2 exchange neg risk picks."""
    config = get_contract_config(chain_id)
    if is_position_id_reference(token_id):
        contract, version = config.exchange_v3, "3"
    else:
        contract, version = (config.neg_risk_exchange_v2 if neg_risk else config.exchange_v2), "2"
    return {"name": "Polymarket CTF Exchange", "version": version, "chainId": chain_id, "verifyingContract": contract}


def random_position_id(rng: random.Random, module: int, outcome: int) -> int:
    """A made-up position id: module id in the top byte, reserved bits clear, outcome index in the last byte."""
    middle = rng.getrandbits(256) & ~(_RESERVED_BITS | (0xFF << 248) | 0xFF)
    return (module << 248) | middle | outcome


def random_reserved_bit_id(rng: random.Random, module: int, outcome: int) -> int:
    """Shaped like a position id but with one reserved bit set: an ordinary V2 token id."""
    return random_position_id(rng, module, outcome) | (1 << rng.randrange(40, 104))


def random_asset_id(rng: random.Random) -> str:
    """A spread of asset ids: position ids of modules 1-3 (both outcomes), reserved-bit ids (V2), and ordinary token
    ids of several widths (an 8-bit id is a position id by the rule)."""
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.getrandbits(rng.choice([8, 64, 255, 256])))
    module, outcome = rng.choice([1, 2, 3]), rng.choice([0, 1])
    if kind == 1:
        return str(random_reserved_bit_id(rng, module, outcome))
    return str(random_position_id(rng, module, outcome))


ORDER_FIELDS = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"},
    {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]


def typed_order(order: dict[str, Any], neg_risk: bool) -> dict[str, Any]:
    """eth-account typed data of an order given as the JSON "order" object, under `reference_domain`."""
    return {
        "primaryType": "Order",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": ORDER_FIELDS,
        },
        "domain": reference_domain(order["tokenId"], neg_risk),
        "message": {
            "salt": order["salt"],
            "maker": order["maker"],
            "signer": order["signer"],
            "tokenId": int(order["tokenId"]),
            "makerAmount": int(order["makerAmount"]),
            "takerAmount": int(order["takerAmount"]),
            "side": 0 if order["side"] == "BUY" else 1,
            "signatureType": order["signatureType"],
            "timestamp": int(order["timestamp"]),
            "metadata": bytes.fromhex(order["metadata"][2:]),
            "builder": bytes.fromhex(order["builder"][2:]),
        },
    }
