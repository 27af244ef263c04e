"""The simulated Polygon node's JSON-RPC endpoint (`POST /rpc`, one request or a batch): the subset of the Ethereum
JSON-RPC API that merging and redeeming need, on `trader.venues.sim.chain.SimChain`.

Methods: `eth_chainId`, `net_version`, `eth_blockNumber`, `eth_getBlockByNumber` (with `baseFeePerGas`),
`eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_feeHistory`, `eth_getTransactionCount` (`latest` / `pending`),
`eth_estimateGas`, `eth_sendRawTransaction`, `eth_getTransactionByHash`, `eth_getTransactionReceipt`.

As a node answers (geth's words): a call that would revert is JSON-RPC error 3 `execution reverted: <reason>` (with
the ABI-encoded `Error(string)` as `data`) from `eth_estimateGas`; `eth_sendRawTransaction` refuses (error -32000)
a transaction for another chain, without EIP-155 replay protection, with a stale (`nonce too low`) or future
(`nonce too high`: this node does not queue) nonce, one it already has (`already known`), below the intrinsic gas, or
whose tip is under `min_priority_fee_wei` (`transaction underpriced`, as Polygon enforces 25 gwei); a transaction
whose fee cap is below the base fee is taken but waits. Receipts are `null` until mined, then carry `status` 0x1 or
0x0, and, when it reverted, a non-standard `revertReason` (some nodes add one; clients must not need it). A
malformed request is -32600, unparsable JSON -32700, an unknown method -32601, bad parameters -32602.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from eth_abi.abi import encode as abi_encode

from trader.errors import InputError
from trader.venues.polymarket.chain import (
    PROXY_FACTORY,
    ContractCall,
    decode_proxy_calls,
    decode_raw_transaction,
    proxy_wallet_address,
)
from trader.venues.polymarket.signing import keccak256, parse_address
from trader.venues.sim.chain import GWEI, INTRINSIC_GAS, Effect, SimChain, SimTransaction, TxStatus, revert_effect
from trader.venues.sim.exchange import CapitalResult
from trader.venues.sim.httpserver import HttpRequest, HttpResponse

MIN_PRIORITY_FEE_WEI: Final = 25 * GWEI
_ERROR_SELECTOR: Final = keccak256(b"Error(string)")[:4]

Json = Any


class RpcError(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _hex(value: int) -> str:
    return hex(value)


def _quantity(value: object, name: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        raise RpcError(-32602, f"invalid argument {name}: hex string expected")
    try:
        return int(value, 16)
    except ValueError:
        raise RpcError(-32602, f"invalid argument {name}: hex string expected") from None


def _data(value: object, name: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise RpcError(-32602, f"invalid argument {name}: hex data expected")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError(-32602, f"invalid argument {name}: hex data expected") from None


def _address(value: object, name: str) -> str:
    try:
        return parse_address(value, name)
    except InputError:
        raise RpcError(-32602, f"invalid argument {name}: address expected") from None


def _reverted(reason: str) -> RpcError:
    data = "0x" + (_ERROR_SELECTOR + abi_encode(["string"], [reason])).hex()
    return RpcError(3, f"execution reverted: {reason}", data)


class SimRpc:
    """The `/rpc` handler of the sim (sync: the chain is in-process)."""

    def __init__(
        self, chain: SimChain, clock: Callable[[], float], *, min_priority_fee_wei: int = MIN_PRIORITY_FEE_WEI
    ) -> None:
        self.chain = chain
        self.clock = clock
        self.min_priority_fee_wei = min_priority_fee_wei
        self.requests = 0
        self._methods: dict[str, Callable[[list[Json]], Json]] = {
            "eth_chainId": lambda p: _hex(self.chain.config.chain_id),
            "net_version": lambda p: str(self.chain.config.chain_id),
            "eth_blockNumber": lambda p: _hex(self.chain.block_number(self.clock())),
            "eth_gasPrice": lambda p: _hex(self.chain.base_fee + self.chain.config.priority_fee_wei),
            "eth_maxPriorityFeePerGas": lambda p: _hex(self.chain.config.priority_fee_wei),
            "eth_getBlockByNumber": self._block,
            "eth_feeHistory": self._fee_history,
            "eth_getTransactionCount": self._transaction_count,
            "eth_estimateGas": self._estimate_gas,
            "eth_sendRawTransaction": self._send_raw,
            "eth_getTransactionByHash": self._transaction,
            "eth_getTransactionReceipt": self._receipt,
        }

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse.error(405, "method not allowed")
        self.requests += 1
        try:
            body = request.json()
        except ValueError:
            return HttpResponse.json(_error(None, RpcError(-32700, "parse error")))
        if isinstance(body, list):
            if not body:
                return HttpResponse.json(_error(None, RpcError(-32600, "empty batch")))
            return HttpResponse.json([self._one(item) for item in body])
        return HttpResponse.json(self._one(body))

    def _one(self, item: Json) -> Json:
        request_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or not isinstance(item.get("method"), str):
            return _error(request_id, RpcError(-32600, "invalid request"))
        params = item.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, RpcError(-32602, "params must be an array"))
        method = self._methods.get(item["method"])
        if method is None:
            return _error(request_id, RpcError(-32601, f"the method {item['method']} does not exist/is not available"))
        try:
            result = method(params)
        except RpcError as exc:
            return _error(request_id, exc)
        except IndexError:
            return _error(request_id, RpcError(-32602, "missing value for required argument"))
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- blocks and fees -------------------------------------------------------------------------------------

    def _block_tag(self, tag: object) -> int:
        latest = self.chain.block_number(self.clock())
        if tag in ("latest", "pending", "safe", "finalized"):
            return latest
        if tag == "earliest":
            return self.chain.config.genesis_block
        return _quantity(tag, "block")

    def _block(self, params: list[Json]) -> Json:
        number = self._block_tag(params[0])
        if number > self.chain.block_number(self.clock()) or number < self.chain.config.genesis_block:
            return None
        return {
            "number": _hex(number),
            "hash": self.chain.block_hash(number),
            "parentHash": self.chain.block_hash(number - 1),
            "timestamp": _hex(int(self.chain.block_time(number))),
            "baseFeePerGas": _hex(self.chain.base_fee),
            "gasLimit": _hex(30_000_000),
            "gasUsed": _hex(15_000_000),
            "transactions": [],
        }

    def _fee_history(self, params: list[Json]) -> Json:
        count = params[0] if isinstance(params[0], int) else _quantity(params[0], "blockCount")
        count = max(1, min(int(count), 1024))
        newest = self._block_tag(params[1])
        percentiles = params[2] if len(params) > 2 and isinstance(params[2], list) else []
        tip = _hex(self.chain.config.priority_fee_wei)
        return {
            "oldestBlock": _hex(newest - count + 1),
            "baseFeePerGas": [_hex(self.chain.base_fee)] * (count + 1),
            "gasUsedRatio": [0.5] * count,
            "reward": [[tip] * len(percentiles) for _ in range(count)],
        }

    # -- accounts and calls ----------------------------------------------------------------------------------

    def _transaction_count(self, params: list[Json]) -> Json:
        address = _address(params[0], "address")
        tag = params[1] if len(params) > 1 else "latest"
        return _hex(self.chain.nonce(address, pending=tag == "pending"))

    def _effect(self, sender: str, to: str | None, data: bytes, value: int) -> tuple[Effect | None, str | None]:
        """(what the call does, or None for a plain transfer; the reason it reverts at once, or None)."""
        if to is None:
            return None, "contract creation is not supported by the simulated chain"
        if not data:
            return None, None
        try:
            if to.lower() == PROXY_FACTORY.lower():
                return self.chain.batch_effect(proxy_wallet_address(sender), decode_proxy_calls(data)), None
            return self.chain.capital_effect(sender, ContractCall(to, data, value)), None
        except InputError as exc:
            return None, exc.message

    def _estimate_gas(self, params: list[Json]) -> Json:
        call = params[0]
        if not isinstance(call, dict):
            raise RpcError(-32602, "invalid argument 0: transaction object expected")
        sender = _address(call.get("from", "0x" + "00" * 20), "from")
        to = _address(call["to"], "to") if call.get("to") is not None else None
        data = _data(call.get("data", call.get("input")), "data")
        value = _quantity(call["value"], "value") if call.get("value") is not None else 0
        effect, reason = self._effect(sender, to, data, value)
        if reason is not None:
            raise _reverted(reason)
        if effect is None:
            return _hex(INTRINSIC_GAS)
        result = effect(True)
        if result.revert is not None:
            raise _reverted(result.revert)
        return _hex(self.chain.config.capital_gas)

    # -- transactions ----------------------------------------------------------------------------------------

    def _send_raw(self, params: list[Json]) -> Json:
        raw = _data(params[0], "transaction")
        try:
            tx = decode_raw_transaction(raw)
        except InputError as exc:
            raise RpcError(-32000, f"invalid transaction: {exc}") from None
        chain = self.chain
        if tx.chain_id is None:
            raise RpcError(-32000, "only replay-protected (EIP-155) transactions allowed over RPC")
        if tx.chain_id != chain.config.chain_id:
            raise RpcError(-32000, f"invalid chain id: have {tx.chain_id}, want {chain.config.chain_id}")
        if chain.transaction(tx.tx_hash) is not None:
            raise RpcError(-32000, "already known")
        expected = chain.nonce(tx.sender)
        if tx.nonce < expected:
            raise RpcError(-32000, f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}")
        if tx.nonce > expected:
            raise RpcError(-32000, f"nonce too high: next nonce {expected}, tx nonce {tx.nonce}")
        if tx.gas < INTRINSIC_GAS:
            raise RpcError(-32000, "intrinsic gas too low")
        if tx.max_priority_fee_per_gas < self.min_priority_fee_wei:
            raise RpcError(
                -32000,
                f"transaction underpriced: tip needed {self.min_priority_fee_wei}, tip permitted "
                f"{tx.max_priority_fee_per_gas}",
            )
        refusal = chain.hooks.refuse_send("rpc")
        if refusal is not None:
            chain.stats.refused += 1
            raise RpcError(-32000, refusal)
        effect, reason = self._effect(tx.sender, tx.to, tx.data, tx.value)
        if reason is not None:
            effect = revert_effect(reason)
        elif effect is not None and tx.gas < chain.config.capital_gas:
            effect = revert_effect("out of gas")
        chain.accept(
            tx_hash=tx.tx_hash,
            sender=tx.sender,
            nonce=tx.nonce,
            to=tx.to,
            data=tx.data,
            gas=tx.gas,
            max_fee_per_gas=tx.max_fee_per_gas,
            max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
            effect=effect or _transfer,
            source="rpc",
            now=self.clock(),
            tx_type=tx.type,
        )
        return tx.tx_hash

    def _lookup(self, params: list[Json]) -> SimTransaction | None:
        tx_hash = params[0]
        if not isinstance(tx_hash, str) or len(tx_hash) != 66 or not tx_hash.startswith("0x"):
            raise RpcError(-32602, "invalid argument 0: hex string of length 32 expected")
        return self.chain.transaction(tx_hash)

    def _transaction(self, params: list[Json]) -> Json:
        tx = self._lookup(params)
        if tx is None:
            return None
        mined = tx.block is not None
        return {
            "hash": tx.tx_hash,
            "nonce": _hex(tx.nonce),
            "blockHash": self.chain.block_hash(tx.block) if tx.block is not None else None,
            "blockNumber": _hex(tx.block) if tx.block is not None else None,
            "transactionIndex": "0x0" if mined else None,
            "from": tx.sender,
            "to": tx.to,
            "value": "0x0",
            "gas": _hex(tx.gas),
            "gasPrice": _hex(min(tx.max_fee_per_gas, self.chain.base_fee + tx.max_priority_fee_per_gas)),
            "maxFeePerGas": _hex(tx.max_fee_per_gas),
            "maxPriorityFeePerGas": _hex(tx.max_priority_fee_per_gas),
            "input": "0x" + tx.data.hex(),
            "type": _hex(tx.type),
            "chainId": _hex(self.chain.config.chain_id),
        }

    def _receipt(self, params: list[Json]) -> Json:
        tx = self._lookup(params)
        if tx is None or tx.block is None:
            return None
        gas_used = min(tx.gas, self.chain.config.capital_gas if tx.data else INTRINSIC_GAS)
        receipt: dict[str, Json] = {
            "transactionHash": tx.tx_hash,
            "transactionIndex": "0x0",
            "blockHash": self.chain.block_hash(tx.block),
            "blockNumber": _hex(tx.block),
            "from": tx.sender,
            "to": tx.to,
            "cumulativeGasUsed": _hex(gas_used),
            "gasUsed": _hex(gas_used),
            "effectiveGasPrice": _hex(min(tx.max_fee_per_gas, self.chain.base_fee + tx.max_priority_fee_per_gas)),
            "contractAddress": None,
            "logs": [],
            "logsBloom": "0x" + "00" * 256,
            "status": "0x1" if tx.status is TxStatus.SUCCESS else "0x0",
            "type": _hex(tx.type),
        }
        if tx.status is TxStatus.REVERTED:
            receipt["revertReason"] = tx.revert_reason
        return receipt


def _error(request_id: object, error: RpcError) -> Json:
    body: dict[str, Json] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def _transfer(dry_run: bool) -> CapitalResult:
    return CapitalResult()


__all__ = ["SimRpc"]
