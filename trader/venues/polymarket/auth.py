"""CLOB authentication (protocol.md §5): L1 wallet signatures (ClobAuth EIP-712) and L2 HMAC request signatures.

Both sides are here: the client signs (`l1_headers`, `l2_headers`) and the simulated venue verifies
(`recover_l1_address`, `verify_l2_signature`). Secrets never appear in reprs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from trader.errors import InputError
from trader.venues.polymarket.signing import (
    CHAIN_ID_POLYGON,
    OrderSigner,
    keccak256,
    parse_address,
    recover_address,
)

__all__ = [
    "CLOB_AUTH_MESSAGE",
    "ApiCredentials",
    "decode_api_secret",
    "l1_digest",
    "l1_headers",
    "l1_signature",
    "l2_headers",
    "l2_message",
    "l2_signature",
    "recover_l1_address",
    "verify_l1_headers",
    "verify_l2_signature",
]

CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"
_CLOB_AUTH_TYPE_HASH: Final = keccak256(b"ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_DOMAIN_TYPE_HASH: Final = keccak256(b"EIP712Domain(string name,string version,uint256 chainId)")
_MESSAGE_HASH: Final = keccak256(CLOB_AUTH_MESSAGE.encode())
_UINT256_LIMIT: Final = 2**256


def _clob_auth_domain_separator(chain_id: int) -> bytes:
    return keccak256(_DOMAIN_TYPE_HASH + keccak256(b"ClobAuthDomain") + keccak256(b"1") + chain_id.to_bytes(32, "big"))


_DOMAIN_SEPARATOR_137: Final = _clob_auth_domain_separator(CHAIN_ID_POLYGON)


def _check_timestamp(timestamp: int | str, field_name: str) -> str:
    text = str(timestamp) if isinstance(timestamp, int) and not isinstance(timestamp, bool) else timestamp
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise InputError(field_name, "expected unix seconds as a non-negative integer")
    return text


def _check_nonce(nonce: int | str, field_name: str) -> int:
    if isinstance(nonce, bool):
        raise InputError(field_name, "expected a non-negative integer")
    if isinstance(nonce, str):
        if not nonce.isascii() or not nonce.isdigit():
            raise InputError(field_name, "expected a non-negative integer")
        nonce = int(nonce)
    if not isinstance(nonce, int) or not 0 <= nonce < _UINT256_LIMIT:
        raise InputError(field_name, "expected a non-negative integer below 2^256")
    return nonce


def l1_digest(address: str, timestamp: int | str, nonce: int | str = 0, *, chain_id: int = CHAIN_ID_POLYGON) -> bytes:
    """The EIP-712 digest of ClobAuth(address, timestamp (seconds, as a string), nonce, fixed message)."""
    checked = parse_address(address, "address")
    struct = keccak256(
        _CLOB_AUTH_TYPE_HASH
        + bytes(12)
        + bytes.fromhex(checked[2:])
        + keccak256(_check_timestamp(timestamp, "timestamp").encode())
        + _check_nonce(nonce, "nonce").to_bytes(32, "big")
        + _MESSAGE_HASH
    )
    separator = _DOMAIN_SEPARATOR_137 if chain_id == CHAIN_ID_POLYGON else _clob_auth_domain_separator(chain_id)
    return keccak256(b"\x19\x01" + separator + struct)


def l1_signature(signer: OrderSigner, timestamp: int, nonce: int = 0, *, chain_id: int = CHAIN_ID_POLYGON) -> str:
    """`0x` + 65-byte signature by the EOA of the ClobAuth message."""
    return "0x" + signer.sign_digest(l1_digest(signer.address, timestamp, nonce, chain_id=chain_id)).hex()


def l1_headers(
    signer: OrderSigner, timestamp: int, nonce: int = 0, *, chain_id: int = CHAIN_ID_POLYGON
) -> dict[str, str]:
    """Headers for the L1 endpoints (create / derive API keys). POLY_ADDRESS is the EOA, also for proxy wallets."""
    return {
        "POLY_ADDRESS": signer.address,
        "POLY_SIGNATURE": l1_signature(signer, timestamp, nonce, chain_id=chain_id),
        "POLY_TIMESTAMP": _check_timestamp(timestamp, "timestamp"),
        "POLY_NONCE": str(_check_nonce(nonce, "nonce")),
    }


def recover_l1_address(
    *, address: str, signature: str, timestamp: int | str, nonce: int | str = 0, chain_id: int = CHAIN_ID_POLYGON
) -> str:
    """Server side: the checksummed address that signed the ClobAuth message claiming `address`.

    The request is authentic when the result equals `address` (see `verify_l1_headers`)."""
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise InputError("POLY_SIGNATURE", "expected a 0x-prefixed hex signature")
    try:
        raw = bytes.fromhex(signature[2:])
    except ValueError:
        raise InputError("POLY_SIGNATURE", "not hex") from None
    return recover_address(l1_digest(address, timestamp, nonce, chain_id=chain_id), raw, "POLY_SIGNATURE")


def verify_l1_headers(headers: Mapping[str, str], *, chain_id: int = CHAIN_ID_POLYGON) -> str:
    """Server side: the checksummed EOA of valid L1 headers, else `InputError` naming the bad header.

    Checking the timestamp's freshness is the caller's job (it owns the clock)."""
    missing = [h for h in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP") if h not in headers]
    if missing:
        raise InputError(missing[0], "missing L1 header")
    address = parse_address(headers["POLY_ADDRESS"], "POLY_ADDRESS")
    recovered = recover_l1_address(
        address=address,
        signature=headers["POLY_SIGNATURE"],
        timestamp=_check_timestamp(headers["POLY_TIMESTAMP"], "POLY_TIMESTAMP"),
        nonce=_check_nonce(headers.get("POLY_NONCE", "0"), "POLY_NONCE"),
        chain_id=chain_id,
    )
    if recovered != address:
        raise InputError("POLY_SIGNATURE", "signature was not made by POLY_ADDRESS")
    return address


# ---------------------------------------------------------------------------------------------------------------
# L2


def decode_api_secret(secret: str) -> bytes:
    """The HMAC key: the API secret is URL-safe base64 (with `=` padding). The message never shows the secret."""
    if not isinstance(secret, str) or not secret:
        raise InputError("api_secret", "expected a non-empty URL-safe base64 string")
    try:
        return base64.b64decode(secret.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InputError("api_secret", "not valid URL-safe base64") from None


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    """L2 API credentials. `repr` and `str` show the key only; the secret and passphrase are hidden."""

    api_key: str
    secret: str
    passphrase: str
    _hmac_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key:
            raise InputError("api_key", "expected a non-empty string")
        if not isinstance(self.passphrase, str) or not self.passphrase:
            raise InputError("api_passphrase", "expected a non-empty string")
        object.__setattr__(self, "_hmac_key", decode_api_secret(self.secret))

    def __repr__(self) -> str:
        return f"ApiCredentials(api_key={self.api_key!r}, secret='***', passphrase='***')"

    __str__ = __repr__

    @property
    def hmac_key(self) -> bytes:
        return self._hmac_key


def l2_message(timestamp: int | str, method: str, request_path: str, body: str | None = None) -> str:
    """`timestamp + METHOD + path + body`; the path is signed without its query string, a missing body is ""."""
    return f"{_check_timestamp(timestamp, 'timestamp')}{method.upper()}{request_path.split('?', 1)[0]}{body or ''}"


def _hmac_b64(key: bytes, message: str) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, message.encode(), hashlib.sha256)).decode("ascii")


def l2_signature(
    secret: str | bytes,
    timestamp: int | str,
    method: str,
    request_path: str,
    body: str | None = None,
    *,
    py_quote_quirk: bool = False,
) -> str:
    """URL-safe base64 (with padding) HMAC-SHA256 of `l2_message(...)`, keyed by the decoded API secret.

    `secret` is the base64 text or the already decoded key. The body is signed exactly as given (as the TS client
    does); `py_quote_quirk=True` reproduces py-clob-client's replacement of `'` by `"` before hashing, for a
    server that wants to accept both clients."""
    key = secret if isinstance(secret, bytes) else decode_api_secret(secret)
    if py_quote_quirk and body:
        body = body.replace("'", '"')
    return _hmac_b64(key, l2_message(timestamp, method, request_path, body))


def l2_headers(
    credentials: ApiCredentials,
    *,
    address: str,
    timestamp: int | str,
    method: str,
    request_path: str,
    body: str | None = None,
) -> dict[str, str]:
    """Headers for an L2 request. `address` is the EOA (the signer), also for proxy / safe / deposit wallets."""
    timestamp_text = _check_timestamp(timestamp, "timestamp")
    return {
        "POLY_ADDRESS": address,
        "POLY_SIGNATURE": l2_signature(credentials.hmac_key, timestamp_text, method, request_path, body),
        "POLY_TIMESTAMP": timestamp_text,
        "POLY_API_KEY": credentials.api_key,
        "POLY_PASSPHRASE": credentials.passphrase,
    }


def verify_l2_signature(
    secret: str | bytes,
    signature: str,
    *,
    timestamp: int | str,
    method: str,
    request_path: str,
    body: str | None = None,
    accept_py_quote_quirk: bool = True,
) -> bool:
    """Server side: does `signature` match? Constant-time. Accepts the py-clob-client quote quirk by default."""
    key = secret if isinstance(secret, bytes) else decode_api_secret(secret)
    given = signature.encode() if isinstance(signature, str) else b""
    exact = l2_signature(key, timestamp, method, request_path, body).encode()
    if hmac.compare_digest(given, exact):
        return True
    if accept_py_quote_quirk and body and "'" in body:
        quirk = l2_signature(key, timestamp, method, request_path, body, py_quote_quirk=True).encode()
        return hmac.compare_digest(given, quirk)
    return False
