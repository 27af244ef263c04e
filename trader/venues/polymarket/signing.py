"""CLOB V2 order signing: EIP-712 orders for the Polymarket CTF Exchange V2 and V3 (protocol.md §6, §7, §11.9).

Which exchange an order is signed for follows from its asset id alone, as in the official clients (py-clob-client-v2
routes a `position_id` to version 3; polymarket-client's `resolve_order_exchange_address`): an id whose bits 40..103
are all zero is a protocol-v2 *position id* (module id 1/2/3 in the top byte, outcome index in the last byte) and is
signed for **Exchange V3** (domain version "3"; the neg-risk flag is ignored); any other id is an ordinary token id,
signed for the CTF Exchange V2 or, if `neg_risk`, the Neg Risk CTF Exchange V2 (domain version "2"). The struct is
the same 11-field Order for both. `order_domain` names the chosen domain; the signer, `order_digest` / `order_id`
and `recover_order_signer` all choose it the same way, so an order id computed before sending is the venue's.

What is here:
- amount arithmetic in exact decimals (`limit_order_amounts`, `market_order_amounts`), protocol.md §6.4;
- `OrderSigner`, which holds the EOA key and builds, signs and serializes orders (the fast path: EIP-712 digest from
  precomputed domain separators and type hashes, keccak from pycryptodome, secp256k1 from coincurve; the result is
  identical to eth-account's `sign_typed_data`, which a test checks);
- the venue side: `parse_signed_order`, `order_digest` / `order_id`, `recover_order_signer`, `is_v1_order_json`.

Signature types: 0 EOA (maker = signer = EOA), 1 POLY_PROXY and 2 POLY_GNOSIS_SAFE (maker = funder, signer = EOA),
3 POLY_1271 deposit wallet (maker = signer = funder; the EOA signs an ERC-7739 `TypedDataSign` wrapper and the
submitted signature is `innerSig ‖ appDomainSeparator ‖ contentsHash ‖ contentsType ‖ uint16(len(contentsType))`).

The order id is the EIP-712 digest of the order (for every signature type, including 3).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from pathlib import Path
from typing import Final, NamedTuple

import coincurve
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _SECP_CONTEXT
from Crypto.Hash import keccak as _keccak_mod

from trader.domain.numbers import ONE, TICK_SIZES, Side, check_price, floor_size, floor_to_tick
from trader.errors import InputError

__all__ = [
    "CHAIN_ID_AMOY",
    "CHAIN_ID_POLYGON",
    "EXCHANGE_V2",
    "EXCHANGE_V3",
    "NEG_RISK_EXCHANGE_V2",
    "ORDER_TYPES",
    "ORDER_TYPE_STRING",
    "POLY_1271",
    "POLY_GNOSIS_SAFE",
    "POLY_PROXY",
    "SIGNATURE_TYPE_EOA",
    "ZERO32",
    "OrderDomain",
    "OrderSigner",
    "SignedOrder",
    "checksum_address",
    "is_position_id",
    "is_v1_order_json",
    "keccak256",
    "limit_order_amounts",
    "market_order_amounts",
    "order_body",
    "order_digest",
    "order_domain",
    "order_id",
    "order_salt",
    "parse_address",
    "parse_bytes32",
    "parse_side",
    "parse_signed_order",
    "parse_token_id",
    "preload_transaction_signing",
    "recover_address",
    "recover_order_signer",
]

# ---------------------------------------------------------------------------------------------------------------
# Constants (protocol.md §6.1, §6.2; py-clob-client-v2 config.py)

CHAIN_ID_POLYGON: Final = 137
CHAIN_ID_AMOY: Final = 80002
EXCHANGE_V2: Final = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2: Final = "0xe2222d279d744050d28e00520010520000310F59"
#: Exchange V3, for protocol-v2 position ids (protocol.md §6.1, §11 item 9), on Polygon.
EXCHANGE_V3: Final = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
#: The V2 exchange contracts are at the same addresses on Polygon and on Amoy; Exchange V3 is not (py-clob-client-v2
#: 1.2.1 `get_contract_config`).
_EXCHANGE_V3_BY_CHAIN: Final[Mapping[int, str]] = {
    CHAIN_ID_POLYGON: EXCHANGE_V3,
    CHAIN_ID_AMOY: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
}
_SUPPORTED_CHAINS: Final = frozenset(_EXCHANGE_V3_BY_CHAIN)

#: The exchanges an order can be signed for; each indexes the precomputed domain separators (V2 and V2 neg risk are
#: 0 and 1 so that `neg_risk` itself is the index).
_V2: Final = 0
_V2_NEG_RISK: Final = 1
_V3: Final = 2
_EXCHANGE_NAME: Final = "Polymarket CTF Exchange"
#: Bits 40..103 of an asset id: all zero in a protocol-v2 position id, which puts it in Exchange V3's namespace.
_POSITION_ID_RESERVED_BITS: Final = (2**64 - 1) << 40

ZERO32: Final = "0x" + "00" * 32

SIGNATURE_TYPE_EOA: Final = 0
POLY_PROXY: Final = 1
POLY_GNOSIS_SAFE: Final = 2
POLY_1271: Final = 3
SIGNATURE_TYPES: Final = frozenset({SIGNATURE_TYPE_EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271})

ORDER_TYPES: Final = ("GTC", "GTD", "FOK", "FAK")
MARKET_ORDER_TYPES: Final = frozenset({"FOK", "FAK"})

#: A salt must survive JSON number parsing in JavaScript clients and servers (`parseInt`).
MAX_SALT: Final = 2**53
_UINT256_LIMIT: Final = 2**256
#: No real order comes near this; the bound keeps the decimal arithmetic far from its precision limit.
MAX_ORDER_VALUE: Final = Decimal(10) ** 15

ORDER_TYPE_STRING: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,"
    "uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
_DOMAIN_TYPE_STRING: Final = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_TYPED_DATA_SIGN_TYPE_STRING: Final = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
    + ORDER_TYPE_STRING
)

# secp256k1 group order; signatures with s above half of it are malleable and refused by the exchange (OpenZeppelin).
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N: Final = _SECP256K1_N // 2

_HEX40 = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX64 = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX_ANY = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_DIGITS = re.compile(r"0|[1-9][0-9]*")


def _keccak256_portable(data: bytes) -> bytes:
    digest: bytes = _keccak_mod.new(data=data, digest_bits=256).digest()
    return digest


_KECCAK_EMPTY: Final = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def _make_raw_keccak() -> Callable[[bytes], bytes] | None:
    """Keccak-256 through pycryptodome's C library with one kept state, or None if that library is not usable.

    `Crypto.Hash.keccak.new` spends most of its ~6 µs building Python objects around four C calls; calling the same
    library through ctypes with a kept state takes ~2.5 µs. The state belongs to the importing thread (the one that
    signs, under trio); other threads take the public API. The library is private to pycryptodome, so the result is
    checked against the public API at import, and any difference means the fallback is used."""
    try:
        lib = ctypes.CDLL(str(Path(_keccak_mod.__file__).with_name("_keccak.abi3.so")))
        lib.keccak_init.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_uint8]
        lib.keccak_reset.argtypes = [ctypes.c_void_p]
        lib.keccak_absorb.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.keccak_digest.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8]
        for function in (lib.keccak_init, lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest):
            function.restype = ctypes.c_int
        state = ctypes.c_void_p()
        if lib.keccak_init(ctypes.byref(state), 64, 24) != 0:  # capacity 512 bits, 24 rounds: Keccak-256
            return None  # pragma: no cover
    except (OSError, AttributeError, TypeError):  # pragma: no cover - depends on the installed pycryptodome
        return None
    out = ctypes.create_string_buffer(32)
    reset, absorb, squeeze = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
    get_ident, owner, portable = threading.get_ident, threading.get_ident(), _keccak256_portable

    def keccak(data: bytes) -> bytes:
        if get_ident() != owner:
            return portable(data)
        reset(state)
        absorb(state, data, len(data))
        squeeze(state, out, 32, 1)  # padding byte 0x01: Keccak, not SHA-3
        return out.raw

    samples = (b"", b"abc", bytes(range(256)) * 3)
    if keccak(b"") != _KECCAK_EMPTY or any(keccak(sample) != portable(sample) for sample in samples):
        return None  # pragma: no cover
    return keccak


#: Keccak-256 (Ethereum's hash, not SHA3-256): `keccak256(data: bytes) -> bytes`.
keccak256: Callable[[bytes], bytes] = _make_raw_keccak() or _keccak256_portable


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


_ORDER_TYPE_HASH: Final = keccak256(ORDER_TYPE_STRING.encode())
_DOMAIN_TYPE_HASH: Final = keccak256(_DOMAIN_TYPE_STRING.encode())
_TYPED_DATA_SIGN_TYPE_HASH: Final = keccak256(_TYPED_DATA_SIGN_TYPE_STRING.encode())
_EXCHANGE_NAME_HASH: Final = keccak256(_EXCHANGE_NAME.encode())
#: EIP-712 domain version per exchange kind.
_EXCHANGE_VERSIONS: Final = ("2", "2", "3")
_EXCHANGE_VERSION_HASHES: Final = tuple(keccak256(version.encode()) for version in _EXCHANGE_VERSIONS)
_DEPOSIT_WALLET_NAME_HASH: Final = keccak256(b"DepositWallet")
_DEPOSIT_WALLET_VERSION_HASH: Final = keccak256(b"1")
_ZERO_WORD: Final = bytes(32)
_CONTENTS_TYPE: Final = ORDER_TYPE_STRING.encode()
_CONTENTS_TYPE_TAIL: Final = _CONTENTS_TYPE + len(_CONTENTS_TYPE).to_bytes(2, "big")
#: innerSig (65) + appDomainSeparator (32) + contentsHash (32) + contentsType + uint16 length = 317 bytes.
POLY_1271_SIGNATURE_LENGTH: Final = 65 + 32 + 32 + len(_CONTENTS_TYPE_TAIL)
_SIDE_CODE: Final = {Side.BUY: 0, Side.SELL: 1}

# ---------------------------------------------------------------------------------------------------------------
# Addresses, words and keys


def checksum_address(raw: bytes) -> str:
    """EIP-55 checksummed text of a 20-byte address."""
    lower = raw.hex()
    hashed = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if h >= "8" else c for c, h in zip(lower, hashed[:40], strict=True))


def parse_address(value: object, field: str) -> str:
    """A checksummed address from `0x` + 40 hex digits; mixed case must carry a valid EIP-55 checksum."""
    if not isinstance(value, str):
        raise InputError(field, f"expected an address string, got {type(value).__name__}")
    if _HEX40.fullmatch(value) is None:
        raise InputError(field, "not an address (expected 0x followed by 40 hex digits)")
    checksummed = checksum_address(bytes.fromhex(value[2:]))
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise InputError(field, "address has an invalid EIP-55 checksum")
    return checksummed


def parse_bytes32(value: object, field: str) -> str:
    """`0x` + 64 hex digits, returned as given."""
    if not isinstance(value, str):
        raise InputError(field, f"expected a bytes32 hex string, got {type(value).__name__}")
    if _HEX64.fullmatch(value) is None:
        raise InputError(field, "not a bytes32 value (expected 0x followed by 64 hex digits)")
    return value


def parse_token_id(value: object, field: str = "token_id") -> str:
    """A token id: the decimal string of a uint256 (no sign, no leading zeros)."""
    if not isinstance(value, str):
        raise InputError(field, f"expected a decimal string, got {type(value).__name__}")
    if not value.isascii() or _DIGITS.fullmatch(value) is None or len(value) > 78:
        raise InputError(field, "not a token id (expected the decimal string of a uint256)")
    if int(value) >= _UINT256_LIMIT:
        raise InputError(field, "token id does not fit in uint256")
    return value


def _parse_private_key(value: object) -> coincurve.PrivateKey:
    # The messages never include the value, not even a part of it.
    field = "private_key"
    if not isinstance(value, str):
        raise InputError(field, f"expected a hex string, got {type(value).__name__}")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    if len(text) != 64 or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise InputError(field, "not a private key (expected 32 bytes as 64 hex digits)")
    secret = int(text, 16)
    if not 0 < secret < _SECP256K1_N:
        raise InputError(field, "not a valid secp256k1 private key (out of range)")
    return coincurve.PrivateKey(bytes.fromhex(text))


def _address_of(public_key: coincurve.PublicKey) -> str:
    return checksum_address(keccak256(public_key.format(compressed=False)[1:])[12:])


def recover_address(digest: bytes, signature: bytes, field: str = "signature") -> str:
    """The checksummed address whose key made the 65-byte `r ‖ s ‖ v` signature (v = 27/28) of `digest`.

    Like the exchange (OpenZeppelin ECDSA), it refuses v outside 27/28 and a high s."""
    if len(signature) != 65:
        raise InputError(field, f"expected a 65-byte signature, got {len(signature)} bytes")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise InputError(field, f"signature v must be 27 or 28, got {v}")
    if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_HALF_N):
        raise InputError(field, "signature r/s out of range (or s not in the lower half)")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises plain Exception / ValueError on an unrecoverable signature
        raise InputError(field, "signature does not recover to a public key") from None
    return _address_of(public_key)


def _parse_hex_bytes(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(field, f"expected a hex string, got {type(value).__name__}")
    if _HEX_ANY.fullmatch(value) is None:
        raise InputError(field, "not a 0x-prefixed hex string of whole bytes")
    return bytes.fromhex(value[2:])


# ---------------------------------------------------------------------------------------------------------------
# Amounts (protocol.md §6.4), exact

#: tick -> decimal places of a maker/taker amount (the "amount" column of the SDKs' rounding table).
AMOUNT_DECIMALS: Final[Mapping[Decimal, int]] = {
    Decimal("0.1"): 3,
    Decimal("0.01"): 4,
    Decimal("0.005"): 5,
    Decimal("0.0025"): 6,
    Decimal("0.001"): 5,
    Decimal("0.0001"): 6,
}
assert frozenset(AMOUNT_DECIMALS) == TICK_SIZES
_QUANTUM: Final = {dp: Decimal(1).scaleb(-dp) for dp in range(11)}
# Enough digits that no product or quotient below MAX_ORDER_VALUE is rounded by the context itself.
_CTX: Final = Context(prec=60)
_MILLION: Final = Decimal(10**6)


def _check_tick(tick: Decimal) -> int:
    dp = AMOUNT_DECIMALS.get(tick)
    if dp is None:
        allowed = ", ".join(sorted(str(t) for t in TICK_SIZES))
        raise InputError("tick_size", f"unsupported tick size {tick}; expected one of {allowed}")
    return dp


def _fit_amount(value: Decimal, amount_dp: int) -> Decimal:
    """The SDKs' rule: round up at amount_dp + 4 decimals, then down to amount_dp (a no-op if it already fits).

    With exact decimals the first step never moves a value across an amount_dp boundary (the distance to the next
    boundary is at least 1e-4 of a unit for every tick), so this is a floor to amount_dp; the two steps are kept to
    mirror the reference."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -amount_dp:
        return value
    up = value.quantize(_QUANTUM[amount_dp + 4], rounding=ROUND_CEILING, context=_CTX)
    return up.quantize(_QUANTUM[amount_dp], rounding=ROUND_FLOOR, context=_CTX)


def _base_units(value: Decimal) -> int:
    # Every value reaching here has at most 6 decimals, so this is exact.
    return int(_CTX.multiply(value, _MILLION))


def _check_quantity(value: Decimal, field: str) -> Decimal:
    if value <= 0:
        raise InputError(field, f"must be positive, got {value}")
    if value > MAX_ORDER_VALUE:
        raise InputError(field, f"too large ({value})")
    floored = floor_size(value)
    if floored == 0:
        raise InputError(field, f"{value} is below 0.01 and floors to zero")
    return floored


def parse_side(value: object, field: str = "side") -> Side:
    """`Side` from the exact text "BUY" or "SELL"."""
    if value == "BUY":
        return Side.BUY
    if value == "SELL":
        return Side.SELL
    raise InputError(field, f"must be 'BUY' or 'SELL', got {str(value)[:20]!r}")


def _check_side(side: object) -> Side:
    if isinstance(side, Side):
        return side
    raise InputError("side", "must be 'BUY' or 'SELL'")


def limit_order_amounts(side: Side, price: Decimal, size: Decimal, tick_size: Decimal) -> tuple[int, int]:
    """(makerAmount, takerAmount) in base units for a limit order of `size` shares at `price`.

    The price must lie on the tick grid within [tick, 1 - tick] (an error, never a rounding); the size is floored
    to 0.01 shares and must stay positive."""
    side = _check_side(side)
    amount_dp = _check_tick(tick_size)
    check_price(price, tick_size)
    shares = _check_quantity(size, "size")
    notional = _fit_amount(_CTX.multiply(shares, price), amount_dp)
    if side is Side.BUY:
        return _base_units(notional), _base_units(shares)
    return _base_units(shares), _base_units(notional)


def market_order_amounts(side: Side, amount: Decimal, price: Decimal, tick_size: Decimal) -> tuple[int, int]:
    """(makerAmount, takerAmount) for a market order: BUY spends `amount` pUSD, SELL sells `amount` shares.

    `price` is the worst acceptable price; it must lie within [tick, 1 - tick] and is floored to the tick."""
    side = _check_side(side)
    amount_dp = _check_tick(tick_size)
    if not tick_size <= price <= ONE - tick_size:
        raise InputError("price", f"invalid price ({price}), min: {tick_size} - max: {ONE - tick_size}")
    worst = floor_to_tick(price, tick_size)
    maker = _check_quantity(amount, "amount")
    if side is Side.BUY:
        taker = _fit_amount(_CTX.divide(maker, worst), amount_dp)
    else:
        taker = _fit_amount(_CTX.multiply(maker, worst), amount_dp)
    return _base_units(maker), _base_units(taker)


# ---------------------------------------------------------------------------------------------------------------
# The signed order


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """A CLOB V2 order as signed and sent. Amounts are integer base units (6 decimals)."""

    salt: int
    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    signature_type: int
    timestamp_ms: int
    metadata: str
    builder: str
    expiration: int
    signature: str

    def to_json(self) -> dict[str, object]:
        """The "order" object of the POST /order body, in the key order py-clob-client-v2 emits."""
        return {
            "salt": self.salt,
            "maker": self.maker,
            "signer": self.signer,
            "tokenId": self.token_id,
            "makerAmount": str(self.maker_amount),
            "takerAmount": str(self.taker_amount),
            "side": self.side.value,
            "expiration": str(self.expiration),
            "signatureType": self.signature_type,
            "timestamp": str(self.timestamp_ms),
            "metadata": self.metadata,
            "builder": self.builder,
            "signature": self.signature,
        }


_ORDER_JSON_KEYS: Final = frozenset(
    {
        "salt",
        "maker",
        "signer",
        "tokenId",
        "makerAmount",
        "takerAmount",
        "side",
        "expiration",
        "signatureType",
        "timestamp",
        "metadata",
        "builder",
        "signature",
    }
)
_V1_ONLY_KEYS: Final = frozenset({"taker", "nonce", "feeRateBps"})


def is_v1_order_json(obj: object) -> bool:
    """True if a JSON "order" object is shaped like a CLOB V1 order (has taker / nonce / feeRateBps).

    The venue answers such an order with `order_version_mismatch`."""
    return isinstance(obj, Mapping) and not _V1_ONLY_KEYS.isdisjoint(obj.keys())


def _json_uint(value: object, field: str, *, limit: int = _UINT256_LIMIT, allow_int: bool = True) -> int:
    """A non-negative integer sent as a decimal string (or, where allowed, a JSON number)."""
    if isinstance(value, bool):
        raise InputError(field, "expected an integer, got bool")
    if isinstance(value, int) and allow_int:
        number = value
    elif isinstance(value, str) and value.isascii() and _DIGITS.fullmatch(value) and len(value) <= 78:
        number = int(value)
    else:
        raise InputError(field, "expected a non-negative integer as a decimal string")
    if not 0 <= number < limit:
        raise InputError(field, "integer out of range")
    return number


def parse_signed_order(obj: object) -> SignedOrder:
    """A `SignedOrder` from the "order" object of a POST /order body; `InputError` names the bad field."""
    if not isinstance(obj, Mapping):
        raise InputError("order", f"expected an object, got {type(obj).__name__}")
    if is_v1_order_json(obj):
        raise InputError("order", "order_version_mismatch: a V1 order (taker/nonce/feeRateBps) sent to the V2 API")
    keys = set(obj.keys())
    missing = _ORDER_JSON_KEYS - keys
    if missing:
        raise InputError(f"order.{sorted(missing)[0]}", "missing")
    unknown = keys - _ORDER_JSON_KEYS
    if unknown:
        raise InputError(f"order.{sorted(unknown)[0]}", "unknown field")
    side = parse_side(obj["side"], "order.side")
    signature_type = obj["signatureType"]
    if isinstance(signature_type, bool) or not isinstance(signature_type, int) or signature_type not in SIGNATURE_TYPES:
        raise InputError("order.signatureType", "must be the integer 0, 1, 2 or 3")
    signature = obj["signature"]
    _parse_hex_bytes(signature, "order.signature")
    return SignedOrder(
        salt=_json_uint(obj["salt"], "order.salt"),
        maker=parse_address(obj["maker"], "order.maker"),
        signer=parse_address(obj["signer"], "order.signer"),
        token_id=parse_token_id(obj["tokenId"], "order.tokenId"),
        maker_amount=_json_uint(obj["makerAmount"], "order.makerAmount", allow_int=False),
        taker_amount=_json_uint(obj["takerAmount"], "order.takerAmount", allow_int=False),
        side=side,
        signature_type=signature_type,
        timestamp_ms=_json_uint(obj["timestamp"], "order.timestamp", allow_int=False),
        metadata=parse_bytes32(obj["metadata"], "order.metadata"),
        builder=parse_bytes32(obj["builder"], "order.builder"),
        expiration=_json_uint(obj["expiration"], "order.expiration", allow_int=False),
        signature=str(signature),
    )


# ---------------------------------------------------------------------------------------------------------------
# EIP-712 digests

_DOMAIN_SEPARATORS: dict[tuple[int, int], bytes] = {}


def is_position_id(token_id: int) -> bool:
    """True if the asset id (as an integer) is a protocol-v2 position id: bits 40..103 all zero (protocol.md §11
    item 9). Such an asset's orders go to Exchange V3. The module byte is not checked, as the official clients do
    not: the reserved bits alone decide the namespace (a small id such as 1 is a position id too)."""
    return not token_id & _POSITION_ID_RESERVED_BITS


def _exchange_kind(token_id: int, neg_risk: bool) -> int:
    return _V3 if not token_id & _POSITION_ID_RESERVED_BITS else _V2_NEG_RISK if neg_risk else _V2


def _exchange_contract(kind: int, chain_id: int) -> str:
    if kind == _V3:
        return _EXCHANGE_V3_BY_CHAIN[chain_id]
    return NEG_RISK_EXCHANGE_V2 if kind == _V2_NEG_RISK else EXCHANGE_V2


class OrderDomain(NamedTuple):
    """The EIP-712 domain an order is signed under; `verifying_contract` is the exchange."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def eip712(self) -> dict[str, object]:
        """The domain as EIP-712 typed data writes it (the vectors' `expected.domain`)."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def order_domain(token_id: str, *, neg_risk: bool, chain_id: int = CHAIN_ID_POLYGON) -> OrderDomain:
    """The exchange and EIP-712 domain of an order for `token_id`: Exchange V3 (version "3") for a protocol-v2
    position id whatever `neg_risk` says, else the (Neg Risk, if `neg_risk`) CTF Exchange V2 (version "2")."""
    if chain_id not in _SUPPORTED_CHAINS:
        raise InputError("chain_id", f"unsupported chain {chain_id}; expected 137 (Polygon) or 80002 (Amoy)")
    kind = _exchange_kind(int(parse_token_id(token_id)), neg_risk)
    return OrderDomain(_EXCHANGE_NAME, _EXCHANGE_VERSIONS[kind], chain_id, _exchange_contract(kind, chain_id))


def _domain_separator(chain_id: int, kind: int) -> bytes:
    key = (chain_id, kind)
    separator = _DOMAIN_SEPARATORS.get(key)
    if separator is None:
        if chain_id not in _SUPPORTED_CHAINS:
            raise InputError("chain_id", f"unsupported chain {chain_id}; expected 137 (Polygon) or 80002 (Amoy)")
        contract = bytes.fromhex(_exchange_contract(kind, chain_id)[2:])
        separator = keccak256(
            _DOMAIN_TYPE_HASH
            + _EXCHANGE_NAME_HASH
            + _EXCHANGE_VERSION_HASHES[kind]
            + _u256(chain_id)
            + bytes(12)
            + contract
        )
        _DOMAIN_SEPARATORS[key] = separator
    return separator


#: The Order struct's values in signing order; `maker` and `signer` already left-padded to 32-byte words.
_OrderValues = tuple[int, bytes, bytes, int, int, int, int, int, int, bytes, bytes]


def _struct_hash(values: _OrderValues) -> bytes:
    """hashStruct(Order)."""
    salt, maker, signer, token_id, maker_amount, taker_amount, side_code, signature_type, timestamp_ms, meta, bld = (
        values
    )
    return keccak256(
        b"".join(
            (
                _ORDER_TYPE_HASH,
                salt.to_bytes(32, "big"),
                maker,
                signer,
                token_id.to_bytes(32, "big"),
                maker_amount.to_bytes(32, "big"),
                taker_amount.to_bytes(32, "big"),
                side_code.to_bytes(32, "big"),
                signature_type.to_bytes(32, "big"),
                timestamp_ms.to_bytes(32, "big"),
                meta,
                bld,
            )
        )
    )


def _word_of_address(address: str) -> bytes:
    raw = bytes.fromhex(address[2:])
    if len(raw) != 20 or not address.startswith("0x"):
        raise ValueError("not a 20-byte address")
    return bytes(12) + raw


def _word_of_bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:])
    if len(raw) != 32 or not value.startswith("0x"):
        raise ValueError("not a bytes32 value")
    return raw


def _order_hashes(order: SignedOrder, *, neg_risk: bool, chain_id: int) -> tuple[bytes, bytes]:
    """(domain separator, hashStruct(order)): the exchange is chosen from the order's token id (`order_domain`)."""
    try:
        token = int(order.token_id)
        contents_hash = _struct_hash(
            (
                order.salt,
                _word_of_address(order.maker),
                _word_of_address(order.signer),
                token,
                order.maker_amount,
                order.taker_amount,
                _SIDE_CODE[order.side],
                order.signature_type,
                order.timestamp_ms,
                _word_of_bytes32(order.metadata),
                _word_of_bytes32(order.builder),
            )
        )
    except (ValueError, OverflowError, KeyError) as exc:  # a SignedOrder built by hand with bad fields
        raise InputError("order", f"cannot be hashed: {type(exc).__name__}") from None
    return _domain_separator(chain_id, _exchange_kind(token, neg_risk)), contents_hash


def order_digest(order: SignedOrder, *, neg_risk: bool, chain_id: int = CHAIN_ID_POLYGON) -> bytes:
    """The 32-byte EIP-712 digest of the order: what the EOA signs (types 0-2) and the venue's order id.

    `neg_risk` is the market's flag; it picks between the two V2 exchanges and is ignored for a position id (V3)."""
    app_separator, contents_hash = _order_hashes(order, neg_risk=neg_risk, chain_id=chain_id)
    return keccak256(b"\x19\x01" + app_separator + contents_hash)


def order_id(order: SignedOrder, *, neg_risk: bool, chain_id: int = CHAIN_ID_POLYGON) -> str:
    return "0x" + order_digest(order, neg_risk=neg_risk, chain_id=chain_id).hex()


def _typed_data_sign_digest(app_separator: bytes, contents_hash: bytes, wallet: bytes, chain_id: int) -> bytes:
    """The ERC-7739 digest the EOA signs for a POLY_1271 deposit-wallet order (`wallet` is a 32-byte word)."""
    struct = keccak256(
        _TYPED_DATA_SIGN_TYPE_HASH
        + contents_hash
        + _DEPOSIT_WALLET_NAME_HASH
        + _DEPOSIT_WALLET_VERSION_HASH
        + _u256(chain_id)
        + wallet
        + _ZERO_WORD
    )
    return keccak256(b"\x19\x01" + app_separator + struct)


def recover_order_signer(order: SignedOrder, *, neg_risk: bool, chain_id: int = CHAIN_ID_POLYGON) -> str:
    """The checksummed EOA that produced `order.signature`.

    The exchange is chosen from the order's token id as when signing (`order_domain`), so an order signed for another
    exchange recovers another address (types 0-2) or is refused (type 3). For POLY_1271 the ERC-7739 envelope is
    unwrapped (its domain separator, contents hash and contents type must match this order) and the EOA is recovered
    from the inner signature. The caller decides whether that EOA may sign for `order.maker` / `order.signer`. A
    malformed signature raises `InputError`."""
    signature = _parse_hex_bytes(order.signature, "order.signature")
    app_separator, contents_hash = _order_hashes(order, neg_risk=neg_risk, chain_id=chain_id)
    if order.signature_type != POLY_1271:
        digest = keccak256(b"\x19\x01" + app_separator + contents_hash)
        return recover_address(digest, signature, "order.signature")
    if len(signature) != POLY_1271_SIGNATURE_LENGTH:
        raise InputError(
            "order.signature",
            f"a POLY_1271 signature is {POLY_1271_SIGNATURE_LENGTH} bytes, got {len(signature)}",
        )
    inner, envelope_separator, envelope_contents = signature[:65], signature[65:97], signature[97:129]
    if signature[129:] != _CONTENTS_TYPE_TAIL:
        raise InputError("order.signature", "POLY_1271 envelope does not carry the V2 Order contents type")
    if envelope_separator != app_separator:
        raise InputError("order.signature", "POLY_1271 envelope is for another exchange domain")
    if envelope_contents != contents_hash:
        raise InputError("order.signature", "POLY_1271 envelope contents hash does not match the order")
    digest = _typed_data_sign_digest(app_separator, contents_hash, _word_of_address(order.signer), chain_id)
    return recover_address(digest, inner, "order.signature")


# ---------------------------------------------------------------------------------------------------------------
# Building and signing


#: token id text -> (its uint256, whether it is a position id), for the ids a signer sees again and again (checked
#: and classified once, when first seen).
_TOKENS: dict[str, tuple[int, bool]] = {}
_TOKEN_CACHE_SIZE: Final = 4096


def _default_salt() -> int:
    return random.getrandbits(53)


def order_salt(client_order_id: str) -> int:
    """The order's salt, derived from the client order id: in [1, 2^53), so the JSON number survives `parseInt`.
    The live venue and the paper venue both sign with it, so an order's id follows from its client order id."""
    digest = hashlib.sha256(client_order_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SALT - 1) + 1


def _default_timestamp_ms() -> int:
    return time.time_ns() // 1_000_000


def _make_raw_signer(secret: bytes, portable: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """secp256k1 recoverable signing straight through coincurve's libsecp256k1 bindings, with buffers kept per
    signer (coincurve allocates three cffi objects and builds the bytes in Python on every call: ~5 µs of the ~40).
    The buffers belong to the creating thread; other threads take coincurve's public API."""
    sig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    out = _ffi.new("unsigned char[64]")
    recid = _ffi.new("int *")
    ctx = _SECP_CONTEXT.ctx
    sign, serialize = (
        _lib.secp256k1_ecdsa_sign_recoverable,
        _lib.secp256k1_ecdsa_recoverable_signature_serialize_compact,
    )
    buffer, null, get_ident, owner = _ffi.buffer, _ffi.NULL, threading.get_ident, threading.get_ident()

    def signer(digest: bytes) -> bytes:
        if get_ident() != owner or len(digest) != 32:
            return portable(digest)
        if not sign(ctx, sig, digest, secret, null, null):
            return portable(digest)  # cannot happen for a valid key; the public API raises the right error
        serialize(ctx, out, recid, sig)
        raw: bytes = buffer(out, 64)[:]
        return raw + bytes((recid[0] + 27,))

    return signer


class OrderSigner:
    """Holds the EOA key and signs orders for one wallet setup. The key never appears in repr, str or errors.

    Each order is signed for the exchange its token id belongs to (`order_domain`): Exchange V3 for a protocol-v2
    position id (`neg_risk` ignored), else CTF Exchange V2 or Neg Risk CTF Exchange V2 by `neg_risk`. The three
    domain separators are computed once, here.

    `salt_source` and `clock_ms` are injectable (tests, replay); by default a random salt below 2^53 and the wall
    clock in milliseconds."""

    __slots__ = (
        "_app_separators",
        "_chain_id",
        "_clock_ms",
        "_key",
        "_maker_word",
        "_salt_source",
        "_sign_raw",
        "_signer_word",
        "address",
        "funder",
        "maker",
        "signature_type",
        "signer",
    )

    address: str
    """The EOA (checksummed)."""
    maker: str
    """The order's maker: the EOA (type 0) or the funder (types 1-3)."""
    signer: str
    """The order's signer: the EOA (types 0-2) or the deposit wallet (type 3)."""

    def __init__(
        self,
        private_key: str,
        *,
        signature_type: int = SIGNATURE_TYPE_EOA,
        funder: str | None = None,
        chain_id: int = CHAIN_ID_POLYGON,
        salt_source: Callable[[], int] = _default_salt,
        clock_ms: Callable[[], int] = _default_timestamp_ms,
    ) -> None:
        self._key = _parse_private_key(private_key)
        self._sign_raw = _make_raw_signer(self._key.secret, self._sign_portable)
        self.address = _address_of(self._key.public_key)
        if isinstance(signature_type, bool) or signature_type not in SIGNATURE_TYPES:
            raise InputError("signature_type", "must be 0 (EOA), 1 (POLY_PROXY), 2 (POLY_GNOSIS_SAFE) or 3 (POLY_1271)")
        self.signature_type = signature_type
        if signature_type == SIGNATURE_TYPE_EOA:
            if funder is not None and parse_address(funder, "funder") != self.address:
                raise InputError("funder", "signature_type 0 (EOA) trades from the key's own address; omit funder")
            self.funder = self.address
        else:
            if funder is None:
                raise InputError("funder", f"required for signature_type {signature_type} (the wallet holding funds)")
            self.funder = parse_address(funder, "funder")
        self.maker = self.funder
        self.signer = self.funder if signature_type == POLY_1271 else self.address
        self._maker_word = _word_of_address(self.maker)
        self._signer_word = _word_of_address(self.signer)
        #: Indexed by exchange kind: V2 (0), V2 neg risk (1), V3 (2).
        self._app_separators = (
            _domain_separator(chain_id, _V2),
            _domain_separator(chain_id, _V2_NEG_RISK),
            _domain_separator(chain_id, _V3),
        )
        self._chain_id = chain_id
        self._salt_source = salt_source
        self._clock_ms = clock_ms

    def __repr__(self) -> str:
        return (
            f"OrderSigner(address={self.address!r}, signature_type={self.signature_type}, funder={self.funder!r}, "
            f"chain_id={self._chain_id})"
        )

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("OrderSigner holds a private key and cannot be pickled")

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte `r ‖ s ‖ v` signature (v = 27/28) of a 32-byte digest, as eth-account's `unsafe_sign_hash`."""
        return self._sign_raw(digest)

    def sign_transaction(self, transaction: Mapping[str, object]) -> tuple[bytes, str]:
        """Sign a Polygon transaction (eth-account's `sign_transaction` fields: an EIP-1559 one has `type` 2,
        `chainId`, `nonce`, `to`, `value`, `data`, `gas`, `maxFeePerGas`, `maxPriorityFeePerGas`) with the EOA key;
        the raw signed bytes and the transaction hash (`0x` + 64 hex). The key never leaves this object."""
        from eth_account import Account  # noqa: PLC0415 - eth-account's import is slow; only chain operations sign

        try:
            signed = Account.sign_transaction(dict(transaction), self._key.secret)
        except (TypeError, ValueError) as exc:  # names a field of the transaction, never the key
            raise InputError("transaction", f"cannot be signed: {type(exc).__name__}: {exc}") from None
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def _sign_portable(self, digest: bytes) -> bytes:
        raw: bytes = self._key.sign_recoverable(digest, hasher=None)
        return raw[:64] + bytes((raw[64] + 27,))

    def limit_order_with_id(
        self,
        *,
        token_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        tick_size: Decimal,
        neg_risk: bool,
        expiration: int = 0,
        salt: int | None = None,
        timestamp_ms: int | None = None,
        builder_code: str = ZERO32,
        metadata: str = ZERO32,
    ) -> tuple[SignedOrder, str]:
        """A signed limit order for `size` shares at `price` (see `limit_order_amounts`), and its order id, computed
        once (for the write-ahead record)."""
        maker_amount, taker_amount = limit_order_amounts(side, price, size, tick_size)
        return self._sign(
            token_id=token_id,
            side=side,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            neg_risk=neg_risk,
            expiration=expiration,
            salt=salt,
            timestamp_ms=timestamp_ms,
            builder_code=builder_code,
            metadata=metadata,
        )

    def market_order_with_id(
        self,
        *,
        token_id: str,
        side: Side,
        amount: Decimal,
        price: Decimal,
        tick_size: Decimal,
        neg_risk: bool,
        salt: int | None = None,
        timestamp_ms: int | None = None,
        builder_code: str = ZERO32,
        metadata: str = ZERO32,
    ) -> tuple[SignedOrder, str]:
        """A signed market (FOK/FAK) order: BUY spends `amount` pUSD, SELL sells `amount` shares, at worst `price`;
        and its order id."""
        maker_amount, taker_amount = market_order_amounts(side, amount, price, tick_size)
        return self._sign(
            token_id=token_id,
            side=side,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            neg_risk=neg_risk,
            expiration=0,
            salt=salt,
            timestamp_ms=timestamp_ms,
            builder_code=builder_code,
            metadata=metadata,
        )

    def _sign(
        self,
        *,
        token_id: str,
        side: Side,
        maker_amount: int,
        taker_amount: int,
        neg_risk: bool,
        expiration: int,
        salt: int | None,
        timestamp_ms: int | None,
        builder_code: str,
        metadata: str,
    ) -> tuple[SignedOrder, str]:
        known = _TOKENS.get(token_id) if type(token_id) is str else None
        if known is None:
            number = int(parse_token_id(token_id))
            known = (number, is_position_id(number))
            if len(_TOKENS) >= _TOKEN_CACHE_SIZE:
                _TOKENS.clear()
            _TOKENS[token_id] = known
        token, position_id = known
        if salt is None:
            salt = self._salt_source()
        if isinstance(salt, bool) or not isinstance(salt, int) or not 0 <= salt < MAX_SALT:
            raise InputError("salt", "must be an integer in [0, 2^53)")
        if timestamp_ms is None:
            timestamp_ms = self._clock_ms()
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or not 0 < timestamp_ms < 2**63:
            raise InputError("timestamp_ms", "must be a positive integer (milliseconds)")
        if isinstance(expiration, bool) or not isinstance(expiration, int) or not 0 <= expiration < 2**63:
            raise InputError("expiration", "must be a non-negative integer (unix seconds, 0 = none)")
        if neg_risk is not True and neg_risk is not False:
            raise InputError("neg_risk", "must be a boolean")
        builder_word = (
            _ZERO_WORD if builder_code == ZERO32 else bytes.fromhex(parse_bytes32(builder_code, "builder_code")[2:])
        )
        metadata_word = _ZERO_WORD if metadata == ZERO32 else bytes.fromhex(parse_bytes32(metadata, "metadata")[2:])
        app_separator = self._app_separators[_V3 if position_id else neg_risk]
        contents_hash = _struct_hash(
            (
                salt,
                self._maker_word,
                self._signer_word,
                token,
                maker_amount,
                taker_amount,
                _SIDE_CODE[side],
                self.signature_type,
                timestamp_ms,
                metadata_word,
                builder_word,
            )
        )
        digest = keccak256(b"\x19\x01" + app_separator + contents_hash)
        if self.signature_type == POLY_1271:
            inner_digest = _typed_data_sign_digest(app_separator, contents_hash, self._signer_word, self._chain_id)
            signature = self.sign_digest(inner_digest) + app_separator + contents_hash + _CONTENTS_TYPE_TAIL
        else:
            signature = self.sign_digest(digest)
        order = SignedOrder(
            salt=salt,
            maker=self.maker,
            signer=self.signer,
            token_id=token_id,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            side=side,
            signature_type=self.signature_type,
            timestamp_ms=timestamp_ms,
            metadata=metadata,
            builder=builder_code,
            expiration=expiration,
            signature="0x" + signature.hex(),
        )
        return order, "0x" + digest.hex()


# ---------------------------------------------------------------------------------------------------------------
# The POST /order body (protocol.md §7)


@functools.lru_cache(maxsize=64)
def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def order_body(order: SignedOrder, *, owner: str, order_type: str, post_only: bool, defer_exec: bool) -> str:
    """The exact POST /order body text, as py-clob-client-v2 serializes it (key order kept, separators (",", ":"),
    salt a JSON number). Sign the L2 HMAC over exactly this text and send exactly these bytes."""
    if order_type not in ORDER_TYPES:
        raise InputError("order_type", f"must be one of {', '.join(ORDER_TYPES)}")
    if post_only and order_type in MARKET_ORDER_TYPES:
        raise InputError("post_only", "post_only is not supported for FOK/FAK orders")
    if not isinstance(owner, str) or not owner:
        raise InputError("owner", "must be the non-empty API key")
    # Every order field is digits or hex (checked when the order was built or parsed); only owner needs escaping.
    owner_json = _json_string(owner)
    return (
        f'{{"order":{{"salt":{order.salt},"maker":"{order.maker}","signer":"{order.signer}",'
        f'"tokenId":"{order.token_id}","makerAmount":"{order.maker_amount}","takerAmount":"{order.taker_amount}",'
        f'"side":"{order.side.value}","expiration":"{order.expiration}","signatureType":{order.signature_type},'
        f'"timestamp":"{order.timestamp_ms}","metadata":"{order.metadata}","builder":"{order.builder}",'
        f'"signature":"{order.signature}"}},"owner":{owner_json},'
        f'"orderType":"{order_type}","deferExec":{"true" if defer_exec else "false"},'
        f'"postOnly":{"true" if post_only else "false"}}}'
    )


def preload_transaction_signing() -> None:
    """Import eth-account, which `OrderSigner.sign_transaction` (merges, redemptions) needs: its import takes 1 to 3
    seconds, which would otherwise stall the event loop at the first merge. Run it in a worker thread
    (`trio.to_thread.run_sync`) before trading."""
    import eth_account  # noqa: F401, PLC0415 - the point is the import itself
