"""Polymarket's relayer, simulated (`/relayer/...` on the sim's port): how proxy, Safe and deposit wallets merge and
redeem without gas. Learned from the official clients (Polymarket/py-sdk `actions/relayer/*`, builder-relayer-client).

Endpoints:
- `GET /nonce?address=<signer>&type=SAFE|WALLET` -> `{"nonce": "<n>"}`: the wallet's next relay nonce;
- `GET /relay-payload?address=<signer>&type=PROXY` -> `{"address": "<relay>", "nonce": "<n>"}`;
- `GET /deployed?address=<wallet>` -> `{"deployed": true}` (every wallet is deployed here);
- `POST /submit` (headers `RELAYER_API_KEY` and `RELAYER_API_KEY_ADDRESS`, else 401) -> `{"transactionID",
  "transactionHash", "state": "STATE_NEW"}`, or 400 `{"error": "<why>"}`;
- `GET /transaction?id=<id>` -> `[<transaction>]` (`[]` when unknown); `GET /transactions` (authenticated) -> the
  transactions submitted with that API key, newest first. A transaction: `transactionID`, `transactionHash`,
  `from`, `to`, `proxyAddress`, `data`, `nonce`, `value`, `state`, `type`, `metadata`, `errorMsg`, `createdAt`,
  `updatedAt`.

A submission is checked as the relayer would: the wallet must be the signer's (its CREATE2 address: Safe, proxy or
deposit wallet), the nonce the wallet's next one, the signature the signer's over what the wallet executes (the Safe
transaction hash, the proxy relay hash, the deposit wallet's EIP-712 batch), and each call a merge or redemption this
chain knows (`trader.venues.sim.chain`). The relayer then estimates it: a call that would revert (the wallet lacks
the shares, the market has not resolved) is taken but ends `STATE_FAILED` with the reason in `errorMsg` and never
reaches the chain. Otherwise its transaction is sent at once (`STATE_EXECUTED`), mined after the chain's delay
(`STATE_MINED`, or `STATE_FAILED` if it reverted) and `STATE_CONFIRMED` `relayer_confirmations` blocks later.
Faults (`chain_refuse`, `chain_stuck`, `chain_revert` with `source=relayer`) refuse a submission (400), leave its
transaction unmined (`STATE_EXECUTED` for ever), or make it revert.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from trader.errors import InputError
from trader.venues.polymarket.chain import (
    DEPOSIT_WALLET_FACTORY,
    PROXY_FACTORY,
    RELAY_HUB,
    ContractCall,
    decode_proxy_calls,
    deposit_batch_digest,
    deposit_wallet_address,
    proxy_transaction_hash,
    proxy_wallet_address,
    recover_personal_signer,
    recover_safe_signer,
    safe_transaction_hash,
    safe_wallet_address,
)
from trader.venues.polymarket.signing import parse_address, recover_address
from trader.venues.sim.chain import SimChain, SimTransaction, TxStatus
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.markets import hex_id

RELAY_ADDRESS: Final = "0x" + hex_id("sim-relayer")[-40:]
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_TYPES: Final = ("SAFE", "PROXY", "WALLET")
_MAX_METADATA: Final = 500


class _Bad(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True, eq=False)
class RelayerTransaction:
    transaction_id: str
    type: str
    signer: str
    to: str
    wallet: str
    data: str
    nonce: int
    value: str
    metadata: str
    api_key: str
    created_at: float
    chain_tx: SimTransaction | None = None
    failure: str = ""


@dataclass(frozen=True, slots=True)
class _Submission:
    wallet: str
    calls: list[ContractCall]
    data: str


def _text(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise _Bad(f"{key} is required (a string)")
    return value


def _address(body: Mapping[str, object], key: str) -> str:
    try:
        return parse_address(_text(body, key), key)
    except InputError:
        raise _Bad(f"{key} is not an address") from None


def _hex(text: str, key: str) -> bytes:
    if not text.startswith("0x") or len(text) % 2:
        raise _Bad(f"{key} is not 0x-prefixed hex")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise _Bad(f"{key} is not 0x-prefixed hex") from None


def _uint(text: str, key: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise _Bad(f"{key} must be a decimal integer string")
    return int(text)


def _params(body: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise _Bad(f"{key} is required (an object)")
    return value


class SimRelayer:
    """The `/relayer` handler of the sim."""

    def __init__(self, chain: SimChain, clock: Callable[[], float], *, seed: int = 0) -> None:
        self.chain = chain
        self.clock = clock
        self._seed = seed
        self._nonces: dict[tuple[str, str], int] = {}  # (type, wallet) -> next nonce
        self._txs: dict[str, RelayerTransaction] = {}
        self._seq = 0
        self.refused = 0

    def nonce(self, kind: str, wallet: str) -> int:
        return self._nonces.get((kind, wallet.lower()), 0)

    @staticmethod
    def wallet_of(kind: str, signer: str) -> str:
        """The signer's wallet of that kind (the relayer relays for these only)."""
        derive = {"SAFE": safe_wallet_address, "PROXY": proxy_wallet_address, "WALLET": deposit_wallet_address}
        return derive[kind](signer)

    def transaction(self, transaction_id: str) -> RelayerTransaction | None:
        return self._txs.get(transaction_id)

    # -- dispatch ---------------------------------------------------------------------------------------------

    def handle(self, request: HttpRequest, path: str) -> HttpResponse:
        try:
            if request.method == "GET" and path in ("/nonce", "/relay-payload"):
                return self._nonce(request, path)
            if request.method == "GET" and path == "/deployed":
                return HttpResponse.json({"deployed": True})
            if request.method == "GET" and path == "/transaction":
                found = self._txs.get(request.arg("id") or "")
                return HttpResponse.json([self._json(found)] if found is not None else [])
            if request.method == "GET" and path == "/transactions":
                key = self._api_key(request)
                mine = [t for t in self._txs.values() if t.api_key == key]
                return HttpResponse.json([self._json(t) for t in reversed(mine)])
            if request.method == "POST" and path == "/submit":
                return self._submit(request)
        except _Bad as bad:
            return HttpResponse.error(400, bad.message)
        except _Unauthorized:
            return HttpResponse.error(401, "invalid authorization")
        return HttpResponse.error(404, "not found")

    @staticmethod
    def _api_key(request: HttpRequest) -> str:
        key = request.headers.get("relayer_api_key", "")
        owner = request.headers.get("relayer_api_key_address", "")
        try:
            parse_address(owner, "RELAYER_API_KEY_ADDRESS")
        except InputError:
            raise _Unauthorized from None
        if not key:
            raise _Unauthorized
        return key

    def _nonce(self, request: HttpRequest, path: str) -> HttpResponse:
        kind = (request.arg("type") or "").upper()
        wanted = ("PROXY",) if path == "/relay-payload" else ("SAFE", "WALLET")
        if kind not in wanted:
            raise _Bad(f"type must be one of {', '.join(wanted)}")
        try:
            signer = parse_address(request.arg("address") or "", "address")
        except InputError:
            raise _Bad("address is not an address") from None
        nonce = str(self.nonce(kind, self.wallet_of(kind, signer)))
        if path == "/relay-payload":
            return HttpResponse.json({"address": RELAY_ADDRESS, "nonce": nonce})
        return HttpResponse.json({"nonce": nonce})

    # -- submissions ------------------------------------------------------------------------------------------

    def _submit(self, request: HttpRequest) -> HttpResponse:
        api_key = self._api_key(request)
        try:
            body = request.json()
        except ValueError:
            raise _Bad("body is not JSON") from None
        if not isinstance(body, dict):
            raise _Bad("body must be a JSON object")
        kind = _text(body, "type")
        if kind not in _TYPES:
            raise _Bad(f"unsupported transaction type {kind[:20]!r}")
        metadata = body.get("metadata", "")
        if not isinstance(metadata, str) or len(metadata) > _MAX_METADATA:
            raise _Bad(f"metadata must be a string of at most {_MAX_METADATA} characters")
        refusal = self.chain.hooks.refuse_send("relayer")
        if refusal is not None:
            self.refused += 1
            raise _Bad(refusal)
        signer = _address(body, "from")
        nonce = _uint(_text(body, "nonce"), "nonce")
        submission = {"SAFE": self._safe, "PROXY": self._proxy, "WALLET": self._deposit}[kind](body, signer, nonce)
        expected = self.nonce(kind, submission.wallet)
        if nonce != expected:
            raise _Bad(f"invalid nonce: the wallet's next nonce is {expected}, got {nonce}")
        try:
            effect = self.chain.batch_effect(submission.wallet, submission.calls)
        except InputError as exc:
            raise _Bad(f"call not supported: {exc.message}") from None
        now = self.clock()
        self._seq += 1
        digest = hashlib.sha256(f"sim-relayer:{self._seed}:{self._seq}".encode()).digest()
        record = RelayerTransaction(
            transaction_id=str(uuid.UUID(bytes=digest[:16], version=4)),
            type=kind,
            signer=signer,
            to=_text(body, "to"),
            wallet=submission.wallet,
            data=submission.data,
            nonce=nonce,
            value=str(body.get("value", "0")),
            metadata=metadata,
            api_key=api_key,
            created_at=now,
        )
        self._txs[record.transaction_id] = record
        estimate = effect(True)
        if estimate.revert is not None:  # the relayer's gas estimate fails: it never sends it
            record.failure = f"execution reverted: {estimate.revert}"
        else:
            self._nonces[kind, submission.wallet.lower()] = nonce + 1
            record.chain_tx = self.chain.relay(
                RELAY_ADDRESS,
                submission.wallet,
                _hex(submission.data, "data"),
                effect,
                key=record.transaction_id,
                now=now,
            )
        return HttpResponse.json(
            {
                "transactionID": record.transaction_id,
                "transactionHash": record.chain_tx.tx_hash if record.chain_tx is not None else "",
                "state": "STATE_NEW",
            }
        )

    def _check_wallet(self, kind: str, signer: str, wallet: str) -> None:
        if wallet.lower() != self.wallet_of(kind, signer).lower():
            raise _Bad(f"{wallet} is not the {kind.lower()} wallet of {signer}")

    def _safe(self, body: Mapping[str, object], signer: str, nonce: int) -> _Submission:
        wallet = _address(body, "proxyWallet")
        self._check_wallet("SAFE", signer, wallet)
        params = _params(body, "signatureParams")
        if str(params.get("operation", "")) != "0":
            raise _Bad("only operation 0 (CALL) is supported by the sim")
        for key in ("safeTxnGas", "baseGas", "gasPrice"):
            if str(params.get(key, "")) != "0":
                raise _Bad(f"signatureParams.{key} must be 0")
        for key in ("gasToken", "refundReceiver"):
            if str(params.get(key, "")).lower() != _ZERO_ADDRESS:
                raise _Bad(f"signatureParams.{key} must be the zero address")
        to = _address(body, "to")
        data = _text(body, "data")
        value = _uint(str(body.get("value", "0")), "value")
        call = ContractCall(to, _hex(data, "data"), value)
        digest = safe_transaction_hash(wallet, call, nonce, chain_id=self.chain.config.chain_id)
        try:
            recovered = recover_safe_signer(digest, _hex(_text(body, "signature"), "signature"))
        except InputError:
            recovered = ""
        if recovered != signer:
            raise _Bad("invalid signature")
        return _Submission(wallet, [call], data)

    def _proxy(self, body: Mapping[str, object], signer: str, nonce: int) -> _Submission:
        wallet = _address(body, "proxyWallet")
        self._check_wallet("PROXY", signer, wallet)
        to = _address(body, "to")
        if to != PROXY_FACTORY:
            raise _Bad("to must be the proxy wallet factory")
        params = _params(body, "signatureParams")
        relay = parse_address(str(params.get("relay", "")), "relay") if params.get("relay") else ""
        if relay.lower() != RELAY_ADDRESS.lower():
            raise _Bad("signatureParams.relay is not this relayer's relay address")
        if str(params.get("relayHub", "")).lower() != RELAY_HUB.lower():
            raise _Bad("signatureParams.relayHub is not the relay hub")
        data = _text(body, "data")
        raw = _hex(data, "data")
        digest = proxy_transaction_hash(
            from_address=signer,
            to=to,
            data=raw,
            relayer_fee=_uint(str(params.get("relayerFee", "")), "relayerFee"),
            gas_price=_uint(str(params.get("gasPrice", "")), "gasPrice"),
            gas_limit=_uint(str(params.get("gasLimit", "")), "gasLimit"),
            nonce=nonce,
            relay_hub=RELAY_HUB,
            relay=relay,
        )
        try:
            recovered = recover_personal_signer(digest, _hex(_text(body, "signature"), "signature"))
        except InputError:
            recovered = ""
        if recovered != signer:
            raise _Bad("invalid signature")
        try:
            calls = decode_proxy_calls(raw)
        except InputError as exc:
            raise _Bad(f"call not supported: {exc.message}") from None
        return _Submission(wallet, calls, data)

    def _deposit(self, body: Mapping[str, object], signer: str, nonce: int) -> _Submission:
        if _address(body, "to") != DEPOSIT_WALLET_FACTORY:
            raise _Bad("to must be the deposit wallet factory")
        params = _params(body, "depositWalletParams")
        wallet = _address(params, "depositWallet")
        self._check_wallet("WALLET", signer, wallet)
        deadline = _uint(_text(params, "deadline"), "deadline")
        if deadline <= self.clock():
            raise _Bad("deadline has passed")
        items = params.get("calls")
        if not isinstance(items, list) or not items:
            raise _Bad("depositWalletParams.calls must be a non-empty list")
        calls = []
        for item in items:
            if not isinstance(item, dict):
                raise _Bad("each call is an object {target, value, data}")
            calls.append(
                ContractCall(
                    _address(item, "target"), _hex(_text(item, "data"), "data"), _uint(_text(item, "value"), "value")
                )
            )
        digest = deposit_batch_digest(wallet, nonce, deadline, calls, chain_id=self.chain.config.chain_id)
        try:
            recovered = recover_address(digest, _hex(_text(body, "signature"), "signature"))
        except InputError:
            recovered = ""
        if recovered != signer:
            raise _Bad("invalid signature")
        return _Submission(wallet, calls, "0x" + b"".join(c.data for c in calls).hex())

    # -- views ------------------------------------------------------------------------------------------------

    def state(self, record: RelayerTransaction) -> str:
        tx = record.chain_tx
        if record.failure or (tx is not None and tx.status is TxStatus.REVERTED):
            return "STATE_FAILED"
        if tx is None:
            return "STATE_NEW"
        if tx.status is TxStatus.PENDING:
            return "STATE_EXECUTED"
        if self.chain.confirmations(tx, self.clock()) > self.chain.config.relayer_confirmations:
            return "STATE_CONFIRMED"
        return "STATE_MINED"

    def _json(self, record: RelayerTransaction) -> dict[str, object]:
        tx = record.chain_tx
        error = record.failure or (tx.revert_reason if tx is not None and tx.status is TxStatus.REVERTED else "")
        updated = tx.mined_at if tx is not None and tx.mined_at is not None else record.created_at
        return {
            "transactionID": record.transaction_id,
            "transactionHash": tx.tx_hash if tx is not None else "",
            "from": record.signer,
            "to": record.to,
            "proxyAddress": record.wallet,
            "data": record.data,
            "nonce": str(record.nonce),
            "value": record.value,
            "state": self.state(record),
            "type": record.type,
            "metadata": record.metadata,
            "errorMsg": error,
            "createdAt": _iso(record.created_at),
            "updatedAt": _iso(updated),
        }


class _Unauthorized(Exception):
    pass


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")
