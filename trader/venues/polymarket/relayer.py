"""A client of Polymarket's relayer (`https://relayer-v2.polymarket.com`): gasless transactions for proxy, Safe and
deposit wallets, as the official clients use it (Polymarket/py-sdk `actions/relayer/*`, builder-relayer-client).

```
relayer = RelayerClient(http, RELAYER_URL, api_key=Secret(...), api_key_address="0x...")
nonce = await relayer.nonce(signer_address, "SAFE")          # or relay_payload(...) for a proxy wallet
outcome = await relayer.submit(payload)                       # RelayerSubmitted | RelayerRefused
found = await relayer.transaction(outcome.transaction_id)     # RelayerTransaction | None
```

Authentication: the relayer API key headers (`RELAYER_API_KEY`, `RELAYER_API_KEY_ADDRESS`) on `POST /submit` and
`GET /transactions`; the key is a secret and appears nowhere else. A refusal of a submission (HTTP 400 with the
relayer's words) is a value, `RelayerRefused`; every other failure raises the `VenueError` tree (401/403, 429 and
5xx are `VenueRequestError`s; after a 5xx or a broken connection the outcome of a submission is unknown), and a reply
of the wrong shape (a missing `transactionID`, an unknown `state`) is a `VenueProtocolError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
import msgspec

from trader.config import Secret
from trader.venues.errors import VenueProtocolError, map_exceptions, truncate
from trader.venues.polymarket.rest import HTTP_EXCEPTIONS, request_error

__all__ = [
    "RELAYER_URL",
    "RelayerClient",
    "RelayerRefused",
    "RelayerState",
    "RelayerSubmitted",
    "RelayerTransaction",
]

RELAYER_URL: Final = "https://relayer-v2.polymarket.com"
_T = TypeVar("_T")


class RelayerState(enum.StrEnum):
    NEW = "STATE_NEW"
    EXECUTED = "STATE_EXECUTED"
    MINED = "STATE_MINED"
    CONFIRMED = "STATE_CONFIRMED"
    INVALID = "STATE_INVALID"
    FAILED = "STATE_FAILED"


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayerSubmitted:
    transaction_id: str
    transaction_hash: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayerRefused:
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayerTransaction:
    transaction_id: str
    state: RelayerState
    transaction_hash: str | None
    metadata: str
    error: str  # the relayer's words when it failed ("" otherwise)


class _WireNonce(msgspec.Struct):
    nonce: str | int
    address: str | None = None


class _WireSubmitted(msgspec.Struct):
    transactionID: str
    transactionHash: str | None = None
    state: str | None = None


class _WireTransaction(msgspec.Struct):
    transactionID: str
    state: str
    transactionHash: str | None = None
    metadata: str | None = None
    errorMsg: str | None = None
    error_msg: str | None = None


class _WireError(msgspec.Struct):
    error: str | None = None
    message: str | None = None


def _decode(content: bytes, wire_type: type[_T], what: str) -> _T:
    try:
        return msgspec.json.decode(content, type=wire_type)
    except msgspec.ValidationError as exc:
        raise VenueProtocolError(f"relayer {what}: unexpected reply shape: {exc}") from None
    except msgspec.DecodeError:
        raise VenueProtocolError(f"relayer {what}: the reply is not JSON") from None


def _nonce(wire: _WireNonce, what: str) -> int:
    text = str(wire.nonce)
    if not text.isascii() or not text.isdigit():
        raise VenueProtocolError(f"relayer {what}: the nonce is not a decimal integer: {truncate(text, 30)!r}")
    return int(text)


def _transaction(wire: _WireTransaction, what: str) -> RelayerTransaction:
    try:
        state = RelayerState(wire.state)
    except ValueError:
        raise VenueProtocolError(f"relayer {what}: unknown state {truncate(wire.state, 30)!r}") from None
    return RelayerTransaction(
        transaction_id=wire.transactionID,
        state=state,
        transaction_hash=wire.transactionHash or None,
        metadata=wire.metadata or "",
        error=truncate(wire.errorMsg or wire.error_msg or ""),
    )


class RelayerClient:
    """The relayer over httpx (on trio). No timeouts inside: the caller wraps calls in `trio.fail_after`."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, *, api_key: Secret | None, api_key_address: str | None
    ) -> None:
        self._http = http
        self._url = url.rstrip("/")
        self._api_key = api_key
        self._api_key_address = api_key_address
        self.requests = 0

    def _auth(self) -> dict[str, str]:
        if self._api_key is None or not self._api_key_address:
            raise VenueProtocolError("relayer: no API key configured (chain.relayer_api_key and its address)")
        return {"RELAYER_API_KEY": self._api_key.get(), "RELAYER_API_KEY_ADDRESS": self._api_key_address}

    async def _get(self, path: str, params: Mapping[str, str], *, auth: bool = False) -> httpx.Response:
        headers = self._auth() if auth else None
        self.requests += 1
        with map_exceptions(HTTP_EXCEPTIONS, what=f"relayer GET {path}"):
            response = await self._http.get(self._url + path, params=dict(params), headers=headers)
        if not response.is_success:
            raise request_error(response)
        return response

    async def nonce(self, signer: str, kind: str) -> int:
        """`GET /nonce`: the next nonce of the signer's wallet of `kind` ("SAFE" or "WALLET")."""
        response = await self._get("/nonce", {"address": signer, "type": kind})
        return _nonce(_decode(response.content, _WireNonce, "/nonce"), "/nonce")

    async def relay_payload(self, signer: str) -> tuple[str, int]:
        """`GET /relay-payload` for a proxy wallet: (the relay address to sign for, the nonce)."""
        response = await self._get("/relay-payload", {"address": signer, "type": "PROXY"})
        wire = _decode(response.content, _WireNonce, "/relay-payload")
        if not wire.address:
            raise VenueProtocolError("relayer /relay-payload: no relay address in the reply")
        return wire.address, _nonce(wire, "/relay-payload")

    async def submit(self, payload: Mapping[str, Any]) -> RelayerSubmitted | RelayerRefused:
        """`POST /submit`. A 400 is the relayer refusing it (a value); anything else that is not a success raises."""
        body = msgspec.json.encode(dict(payload))
        headers = {**self._auth(), "Content-Type": "application/json"}
        self.requests += 1
        with map_exceptions(HTTP_EXCEPTIONS, what="relayer POST /submit"):
            response = await self._http.post(self._url + "/submit", content=body, headers=headers)
        if response.status_code == 400:
            try:
                error = msgspec.json.decode(response.content, type=_WireError)
                text = error.error or error.message or ""
            except (msgspec.ValidationError, msgspec.DecodeError):
                text = response.content.decode("utf-8", "replace")
            return RelayerRefused(message=truncate(text.strip() or "refused (HTTP 400)"))
        if not response.is_success:
            raise request_error(response)
        wire = _decode(response.content, _WireSubmitted, "/submit")
        if not wire.transactionID:
            raise VenueProtocolError("relayer /submit: no transactionID in the reply")
        return RelayerSubmitted(transaction_id=wire.transactionID, transaction_hash=wire.transactionHash or None)

    async def transaction(self, transaction_id: str) -> RelayerTransaction | None:
        """`GET /transaction?id=`: the relayer's view of one transaction, None when it knows none by that id."""
        response = await self._get("/transaction", {"id": transaction_id})
        found = _decode(response.content, list[_WireTransaction], "/transaction")
        if not found:
            return None
        return _transaction(found[0], "/transaction")

    async def transactions(self) -> list[RelayerTransaction]:
        """`GET /transactions`: the transactions submitted with our API key, as the relayer lists them."""
        response = await self._get("/transactions", {}, auth=True)
        return [
            _transaction(w, "/transactions") for w in _decode(response.content, list[_WireTransaction], "/transactions")
        ]
