"""A Polygon JSON-RPC client on httpx + trio: the calls an EOA needs to send its own merges and redemptions.

```
rpc = JsonRpcClient(http, "https://polygon-rpc.example")
nonce = await rpc.transaction_count(address, "pending")
receipt = await rpc.receipt(tx_hash)        # None while pending
```

Errors: transport problems are the `VenueError` tree (`map_exceptions` with the REST client's table); an HTTP error
status is a `VenueRequestError`; a reply that is not a JSON-RPC 2.0 object for our request id, or whose result is
not what the method returns (a quantity that is not `0x` hex, a receipt without a status), is a `VenueProtocolError`
naming the method; a JSON-RPC error object is a `JsonRpcError` (a `VenueRequestError` with the node's code and
message): `reverted` says whether the node reports an EVM revert (code 3, or "execution reverted"). The caller owns
timeouts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import msgspec

from trader.venues.errors import (
    VenueProtocolError,
    VenueRejectCode,
    VenueRequestError,
    map_exceptions,
    truncate,
)
from trader.venues.polymarket.rest import HTTP_EXCEPTIONS, request_error

__all__ = ["Block", "JsonRpcClient", "JsonRpcError", "Receipt", "RpcTransaction"]

_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_REVERT_CODES: Final = frozenset({3, -32000, -32003, -32015, -32603})


class JsonRpcError(VenueRequestError):
    """The node answered with a JSON-RPC error object (HTTP 200): `rpc_code`, `rpc_message`, `rpc_data`."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        super().__init__(200, VenueRejectCode.UNKNOWN, f"{method}: JSON-RPC error {code}: {message}", retryable=False)
        self.rpc_code = code
        self.rpc_message = truncate(message)
        self.rpc_data = data

    @property
    def reverted(self) -> bool:
        """The node says the call reverted in the EVM (as opposed to refusing the request)."""
        return self.rpc_code in _REVERT_CODES and "revert" in self.rpc_message.lower()

    @property
    def revert_reason(self) -> str:
        """The node's words after "execution reverted: " (or the whole message)."""
        text = self.rpc_message
        _, sep, reason = text.partition("execution reverted: ")
        return reason if sep else text


class _Envelope(msgspec.Struct):
    jsonrpc: str | None = None
    id: int | str | None = None
    result: Any = None
    error: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    tx_hash: str
    block_number: int
    status: int  # 1 success, 0 reverted
    gas_used: int | None
    revert_reason: str  # "" unless the node volunteered one (non-standard)


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcTransaction:
    tx_hash: str
    block_number: int | None  # None while pending
    nonce: int
    max_fee_per_gas: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    number: int
    base_fee_per_gas: int | None


def quantity(value: object, what: str) -> int:
    """A JSON-RPC quantity (`0x` + hex digits); anything else is a `VenueProtocolError`."""
    if isinstance(value, str) and value.startswith(("0x", "0X")) and 2 < len(value) <= 66:
        digits = value[2:]
        if set(digits) <= _HEX_DIGITS:
            return int(digits, 16)
    raise VenueProtocolError(f"{what}: expected a 0x-hex quantity, got {truncate(repr(value), 40)}")


def _hash(value: object, what: str) -> str:
    if isinstance(value, str) and len(value) == 66 and value.startswith("0x") and set(value[2:]) <= _HEX_DIGITS:
        return value.lower()
    raise VenueProtocolError(f"{what}: expected a 32-byte 0x-hex hash, got {truncate(repr(value), 70)}")


class JsonRpcClient:
    """JSON-RPC 2.0 over HTTP POST to one URL. No timeouts inside: the caller wraps calls in `trio.fail_after`."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._ids = itertools.count(1)
        self.requests = 0
        self.errors = 0  # JSON-RPC error objects
        self.protocol_errors = 0

    async def call(self, method: str, params: Sequence[object]) -> Any:
        """The `result` of one call; raises as the module says."""
        request_id = next(self._ids)
        payload = msgspec.json.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
        self.requests += 1
        with map_exceptions(HTTP_EXCEPTIONS, what=f"JSON-RPC {method}"):
            response = await self._http.post(self._url, content=payload, headers={"Content-Type": "application/json"})
        if response.status_code >= 400:
            raise request_error(response)
        try:
            envelope = msgspec.json.decode(response.content, type=_Envelope)
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise self._protocol(f"{method}: the reply is not a JSON-RPC object") from None
        if envelope.error is not None:
            self.errors += 1
            error = envelope.error
            if not isinstance(error, dict):
                raise self._protocol(f"{method}: the error is not an object")
            code = error.get("code")
            message = error.get("message")
            if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
                raise self._protocol(f"{method}: the error has no integer code and text message")
            raise JsonRpcError(method, code, message, error.get("data"))
        if envelope.id != request_id:
            raise self._protocol(f"{method}: the reply is for request {truncate(repr(envelope.id), 20)}")
        if envelope.jsonrpc != "2.0":
            raise self._protocol(f"{method}: not a JSON-RPC 2.0 reply")
        return envelope.result

    def _protocol(self, text: str) -> VenueProtocolError:
        self.protocol_errors += 1
        return VenueProtocolError(f"JSON-RPC {text}")

    async def _quantity(self, method: str, params: Sequence[object]) -> int:
        value = await self.call(method, params)
        try:
            return quantity(value, method)
        except VenueProtocolError:
            self.protocol_errors += 1
            raise

    async def chain_id(self) -> int:
        return await self._quantity("eth_chainId", [])

    async def block_number(self) -> int:
        return await self._quantity("eth_blockNumber", [])

    async def transaction_count(self, address: str, block: str = "pending") -> int:
        return await self._quantity("eth_getTransactionCount", [address, block])

    async def max_priority_fee(self) -> int:
        return await self._quantity("eth_maxPriorityFeePerGas", [])

    async def estimate_gas(self, call: Mapping[str, str]) -> int:
        return await self._quantity("eth_estimateGas", [dict(call)])

    async def latest_block(self) -> Block:
        value = await self.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(value, dict):
            raise self._protocol("eth_getBlockByNumber: expected a block object")
        try:
            base_fee = value.get("baseFeePerGas")
            return Block(
                number=quantity(value.get("number"), "eth_getBlockByNumber.number"),
                base_fee_per_gas=None if base_fee is None else quantity(base_fee, "eth_getBlockByNumber.baseFee"),
            )
        except VenueProtocolError:
            self.protocol_errors += 1
            raise

    async def send_raw_transaction(self, raw: bytes) -> str:
        value = await self.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        try:
            return _hash(value, "eth_sendRawTransaction")
        except VenueProtocolError:
            self.protocol_errors += 1
            raise

    async def transaction(self, tx_hash: str) -> RpcTransaction | None:
        value = await self.call("eth_getTransactionByHash", [tx_hash])
        if value is None:
            return None
        what = "eth_getTransactionByHash"
        if not isinstance(value, dict):
            raise self._protocol(f"{what}: expected a transaction object or null")
        try:
            block = value.get("blockNumber")
            fee = value.get("maxFeePerGas", value.get("gasPrice"))
            return RpcTransaction(
                tx_hash=_hash(value.get("hash"), f"{what}.hash"),
                block_number=None if block is None else quantity(block, f"{what}.blockNumber"),
                nonce=quantity(value.get("nonce"), f"{what}.nonce"),
                max_fee_per_gas=None if fee is None else quantity(fee, f"{what}.maxFeePerGas"),
            )
        except VenueProtocolError:
            self.protocol_errors += 1
            raise

    async def receipt(self, tx_hash: str) -> Receipt | None:
        value = await self.call("eth_getTransactionReceipt", [tx_hash])
        if value is None:
            return None
        what = "eth_getTransactionReceipt"
        if not isinstance(value, dict):
            raise self._protocol(f"{what}: expected a receipt object or null")
        try:
            status = quantity(value.get("status"), f"{what}.status")
            if status not in (0, 1):
                raise VenueProtocolError(f"{what}.status: expected 0x0 or 0x1, got {status}")
            gas_used = value.get("gasUsed")
            reason = value.get("revertReason")
            return Receipt(
                tx_hash=_hash(value.get("transactionHash"), f"{what}.transactionHash"),
                block_number=quantity(value.get("blockNumber"), f"{what}.blockNumber"),
                status=status,
                gas_used=None if gas_used is None else quantity(gas_used, f"{what}.gasUsed"),
                revert_reason=truncate(reason) if isinstance(reason, str) else "",
            )
        except VenueProtocolError:
            self.protocol_errors += 1
            raise
