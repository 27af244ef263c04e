"""API keys of the simulated venue: derived deterministically from (address, nonce) and a server secret, so
`POST /auth/api-key` and `GET /auth/derive-api-key` return the same credentials for the same wallet and nonce
(within one sim and across runs with the same seed). Secrets never leave this module except in the L1 replies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from trader.errors import InputError
from trader.venues.polymarket.auth import ApiCredentials, verify_l2_signature


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated L2 caller: its API key and the EOA the key belongs to."""

    api_key: str
    address: str


class ApiKeyStore:
    def __init__(self, server_secret: bytes) -> None:
        self._server_secret = server_secret
        self._keys: dict[str, tuple[ApiCredentials, str]] = {}

    def derive(self, address: str, nonce: int = 0) -> ApiCredentials:
        """The credentials of (address, nonce); registers them so L2 requests can use them."""
        material = hmac.digest(self._server_secret, f"{address.lower()}:{nonce}".encode(), hashlib.sha256)
        more = hmac.digest(self._server_secret, material, hashlib.sha256)
        credentials = ApiCredentials(
            api_key=str(uuid.UUID(bytes=material[:16], version=4)),
            secret=base64.urlsafe_b64encode(more).decode("ascii"),
            passphrase=hashlib.sha256(material + more).hexdigest(),
        )
        self._keys[credentials.api_key] = (credentials, address)
        return credentials

    def register(self, credentials: ApiCredentials, address: str) -> None:
        """Take `credentials` as `address`'s from now on (a key issued elsewhere, or rotated: tests of a client whose
        configured credentials the venue refused until now)."""
        self._keys[credentials.api_key] = (credentials, address)

    def lookup(self, api_key: str) -> tuple[ApiCredentials, str] | None:
        return self._keys.get(api_key)

    def check_user_auth(self, api_key: object, secret: object, passphrase: object) -> str | None:
        """The user channel's raw credentials: the API key if all three match, else None."""
        if not isinstance(api_key, str) or not isinstance(secret, str) or not isinstance(passphrase, str):
            return None
        found = self._keys.get(api_key)
        if found is None:
            return None
        credentials = found[0]
        ok_secret = hmac.compare_digest(credentials.secret.encode(), secret.encode())
        ok_pass = hmac.compare_digest(credentials.passphrase.encode(), passphrase.encode())
        return api_key if ok_secret and ok_pass else None

    def authenticate_l2(self, headers: Mapping[str, str], method: str, path: str, body: str) -> Principal:
        """Verify the POLY_* L2 headers (names lower-case) against the request; InputError if anything is off."""
        needed = ("poly_api_key", "poly_passphrase", "poly_signature", "poly_timestamp", "poly_address")
        missing = [h for h in needed if not headers.get(h)]
        if missing:
            raise InputError(missing[0].upper(), "missing L2 header")
        found = self._keys.get(headers["poly_api_key"])
        if found is None:
            raise InputError("POLY_API_KEY", "unknown API key")
        credentials, address = found
        if not hmac.compare_digest(credentials.passphrase.encode(), headers["poly_passphrase"].encode()):
            raise InputError("POLY_PASSPHRASE", "does not match the API key")
        if headers["poly_address"].lower() != address.lower():
            raise InputError("POLY_ADDRESS", "is not the address of the API key")
        timestamp = headers["poly_timestamp"]
        if not timestamp.isascii() or not timestamp.isdigit():
            raise InputError("POLY_TIMESTAMP", "expected unix seconds")
        if not verify_l2_signature(
            credentials.hmac_key,
            headers["poly_signature"],
            timestamp=timestamp,
            method=method,
            request_path=path,
            body=body,
        ):
            raise InputError("POLY_SIGNATURE", "HMAC does not match the request")
        return Principal(credentials.api_key, address)
