"""Polygon-side building blocks of merges and redemptions (protocol.md §8, §11 items 7 and 13): contract addresses,
call data, the hashes the relayer's wallets sign, wallet addresses, and raw transactions. Pure: no I/O.

Which contracts (protocol.md §11 item 7 wins over §8; the addresses are polymarket-client 0.14.0's, its
`PRODUCTION` environment, and its `merge_positions` / `redeem_positions` send to them):

* a standard market merges and redeems through the **CollateralAdapter** `0xAdA1…cE1f`, a neg-risk market through
  the **NegRiskCollateralAdapter** `0xadA2…6eAab`, both with the Conditional Tokens ABI:
  `mergePositions(address collateral, bytes32 parentCollectionId, bytes32 conditionId, uint256[] partition,
  uint256 amount)` with collateral = pUSD, parent 0 and partition [1, 2]; `redeemPositions(address collateral,
  bytes32 parentCollectionId, bytes32 conditionId, uint256[] indexSets)` with index sets [1, 2] (every share held);
* the Conditional Tokens contract itself (`0x4D97…6045`) takes the same calls, and the retired Neg Risk Adapter
  (`0xd91E…5296`, §8) took `mergePositions(bytes32 conditionId, uint256 amount)` and
  `redeemPositions(bytes32 conditionId, uint256[] amounts)`: encoded here too (the simulated chain accepts them), but
  the live adapter sends to the collateral adapters.

Wallets that go through Polymarket's relayer (learned from the official relayer clients, Polymarket/py-sdk and
builder-relayer-client):

* Gnosis Safe (signature type 2): the EOA signs the Safe transaction hash (EIP-712, domain `{chainId,
  verifyingContract: safe}`) with the EIP-191 prefix, and sends `r ‖ s ‖ v+4` (v 31/32: Safe's eth_sign form);
* proxy wallet (type 1): the call goes to the proxy factory as `proxy((uint8 typeCode, address to, uint256 value,
  bytes data)[])`; the EOA signs, with the EIP-191 prefix, `keccak("rlx:" ‖ from ‖ to ‖ data ‖ relayerFee ‖ gasPrice
  ‖ gasLimit ‖ nonce ‖ relayHub ‖ relay)` (the numbers as 32-byte words);
* deposit wallet (type 3): the EOA signs the EIP-712 `Batch(address wallet,uint256 nonce,uint256 deadline,Call[]
  calls)` of domain `{name: "DepositWallet", version: "1", chainId, verifyingContract: wallet}`.

Amounts are integer base units (6 decimals): `base_units` converts an exact Decimal and refuses anything finer.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from trader.errors import InputError
from trader.venues.polymarket.signing import (
    CHAIN_ID_POLYGON,
    OrderSigner,
    checksum_address,
    keccak256,
    parse_address,
    parse_bytes32,
    recover_address,
)

__all__ = [
    "COLLATERAL_ADAPTER",
    "COLLATERAL_TOKEN",
    "CONDITIONAL_TOKENS",
    "DEPOSIT_WALLET_BEACON",
    "DEPOSIT_WALLET_FACTORY",
    "LEGACY_NEG_RISK_ADAPTER",
    "NEG_RISK_COLLATERAL_ADAPTER",
    "PROXY_FACTORY",
    "RELAY_HUB",
    "SAFE_FACTORY",
    "CallKind",
    "ContractCall",
    "DecodedCall",
    "RawTransaction",
    "base_units",
    "decode_capital_call",
    "decode_proxy_calls",
    "decode_raw_transaction",
    "deposit_batch_digest",
    "deposit_wallet_address",
    "merge_call",
    "personal_digest",
    "proxy_call",
    "proxy_transaction_hash",
    "proxy_wallet_address",
    "recover_personal_signer",
    "recover_safe_signer",
    "redeem_call",
    "safe_signature",
    "safe_transaction_hash",
    "safe_wallet_address",
    "sign_personal",
]

# ---------------------------------------------------------------------------------------------------------------
# Addresses (Polygon; polymarket-client 0.14.0 PRODUCTION)

COLLATERAL_TOKEN: Final = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"  # pUSD  # noqa: S105 - an address
CONDITIONAL_TOKENS: Final = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
COLLATERAL_ADAPTER: Final = "0xAdA100Db00Ca00073811820692005400218FcE1f"
NEG_RISK_COLLATERAL_ADAPTER: Final = "0xadA2005600Dec949baf300f4C6120000bDB6eAab"
#: Retired 2026-07-17 (protocol.md §11 item 7); its own ABI, kept for the simulated chain.
LEGACY_NEG_RISK_ADAPTER: Final = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
PROXY_FACTORY: Final = "0xaB45c5A4B0c941a2F231C04C3f49182e1A254052"
RELAY_HUB: Final = "0xD216153c06E857cD7f72665E0aF1d7D82172F494"
SAFE_FACTORY: Final = "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b"
DEPOSIT_WALLET_FACTORY: Final = "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
DEPOSIT_WALLET_BEACON: Final = "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"
_SAFE_INIT_CODE_HASH: Final = bytes.fromhex("2bce2127ff07fb632d16c8347c4ebf501f4841168bed00d9e6ef715ddb6fcecf")
_PROXY_INIT_CODE_HASH: Final = bytes.fromhex("d21df8dc65880a8606f09fe0ce3df9b8869287ab0b058be05aa9e8af6330a00b")

_UNITS: Final = Decimal(10**6)
_UINT256_LIMIT: Final = 2**256
_ZERO32: Final = bytes(32)
_PARTITION: Final = (1, 2)  # YES = index set 0b01, NO = 0b10


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


_CTF_MERGE: Final = "mergePositions(address,bytes32,bytes32,uint256[],uint256)"
_CTF_REDEEM: Final = "redeemPositions(address,bytes32,bytes32,uint256[])"
_NR_MERGE: Final = "mergePositions(bytes32,uint256)"
_NR_REDEEM: Final = "redeemPositions(bytes32,uint256[])"
_PROXY: Final = "proxy((uint8,address,uint256,bytes)[])"
_ARGS: Final[dict[bytes, tuple[str, list[str]]]] = {
    _selector(_CTF_MERGE): (_CTF_MERGE, ["address", "bytes32", "bytes32", "uint256[]", "uint256"]),
    _selector(_CTF_REDEEM): (_CTF_REDEEM, ["address", "bytes32", "bytes32", "uint256[]"]),
    _selector(_NR_MERGE): (_NR_MERGE, ["bytes32", "uint256"]),
    _selector(_NR_REDEEM): (_NR_REDEEM, ["bytes32", "uint256[]"]),
}
_PROXY_SELECTOR: Final = _selector(_PROXY)
_PROXY_TYPE_CALL: Final = 1
_CTF_TARGETS: Final = frozenset(
    a.lower() for a in (COLLATERAL_ADAPTER, NEG_RISK_COLLATERAL_ADAPTER, CONDITIONAL_TOKENS)
)


def base_units(amount: Decimal, field: str) -> int:
    """An exact pUSD or share amount in base units (6 decimals); a finer or negative amount is an `InputError`."""
    scaled = amount * _UNITS
    if not amount.is_finite() or amount < 0 or scaled != scaled.to_integral_value():
        raise InputError(field, f"{amount} is not a whole number of base units (6 decimals) >= 0")
    units = int(scaled)
    if units >= _UINT256_LIMIT:
        raise InputError(field, f"{amount} does not fit in uint256")
    return units


def _condition_bytes(condition_id: str) -> bytes:
    return bytes.fromhex(parse_bytes32(condition_id, "condition_id")[2:])


# ---------------------------------------------------------------------------------------------------------------
# Calls


@dataclass(frozen=True, slots=True)
class ContractCall:
    to: str  # checksummed
    data: bytes
    value: int = 0

    @property
    def data_hex(self) -> str:
        return "0x" + self.data.hex()


def merge_call(condition_id: str, units: int, *, neg_risk: bool) -> ContractCall:
    """Merge `units` complete sets back into pUSD, through the collateral adapter for the market's kind."""
    if units <= 0:
        raise InputError("amount", "a merge takes a positive amount")
    target = NEG_RISK_COLLATERAL_ADAPTER if neg_risk else COLLATERAL_ADAPTER
    return ctf_merge_call(target, condition_id, units)


def redeem_call(condition_id: str, *, neg_risk: bool) -> ContractCall:
    """Redeem every share held of a resolved condition, through the collateral adapter for the market's kind."""
    target = NEG_RISK_COLLATERAL_ADAPTER if neg_risk else COLLATERAL_ADAPTER
    return ctf_redeem_call(target, condition_id)


def ctf_merge_call(target: str, condition_id: str, units: int) -> ContractCall:
    args = abi_encode(
        ["address", "bytes32", "bytes32", "uint256[]", "uint256"],
        [COLLATERAL_TOKEN, _ZERO32, _condition_bytes(condition_id), list(_PARTITION), units],
    )
    return ContractCall(parse_address(target, "target"), _selector(_CTF_MERGE) + args)


def ctf_redeem_call(target: str, condition_id: str) -> ContractCall:
    args = abi_encode(
        ["address", "bytes32", "bytes32", "uint256[]"],
        [COLLATERAL_TOKEN, _ZERO32, _condition_bytes(condition_id), list(_PARTITION)],
    )
    return ContractCall(parse_address(target, "target"), _selector(_CTF_REDEEM) + args)


def legacy_neg_risk_merge_call(condition_id: str, units: int) -> ContractCall:
    args = abi_encode(["bytes32", "uint256"], [_condition_bytes(condition_id), units])
    return ContractCall(LEGACY_NEG_RISK_ADAPTER, _selector(_NR_MERGE) + args)


def legacy_neg_risk_redeem_call(condition_id: str, amounts: tuple[int, int]) -> ContractCall:
    args = abi_encode(["bytes32", "uint256[]"], [_condition_bytes(condition_id), list(amounts)])
    return ContractCall(LEGACY_NEG_RISK_ADAPTER, _selector(_NR_REDEEM) + args)


class CallKind(enum.StrEnum):
    MERGE = "MERGE"
    REDEEM = "REDEEM"


@dataclass(frozen=True, slots=True)
class DecodedCall:
    """A merge or redemption read back from call data. `amounts`: a MERGE's (n, n); a REDEEM's shares of each
    outcome (the adapter's), or None for "everything held" (the Conditional Tokens form)."""

    kind: CallKind
    target: str
    condition_id: str
    amounts: tuple[int, int] | None


def decode_capital_call(to: str, data: bytes) -> DecodedCall:
    """The merge or redemption that `data` sent to `to` asks for. Anything else (an unknown contract or function, a
    collateral other than pUSD, a partition other than [1, 2], call data that does not decode) is an `InputError`
    whose message is the revert reason a chain would give."""
    target = parse_address(to, "to")
    entry = _ARGS.get(bytes(data[:4]))
    if entry is None:
        raise InputError("data", "unknown function selector")
    name, types = entry
    legacy = target.lower() == LEGACY_NEG_RISK_ADAPTER.lower()
    if legacy != name.startswith(("mergePositions(bytes32", "redeemPositions(bytes32")) or (
        not legacy and target.lower() not in _CTF_TARGETS
    ):
        raise InputError("to", f"{target} has no function {name}")
    try:
        values = abi_decode(types, bytes(data[4:]), strict=True)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise InputError("data", f"call data does not decode as {name}: {exc}") from None
    if legacy:
        condition = "0x" + bytes(values[0]).hex()
        if name == _NR_MERGE:
            return DecodedCall(CallKind.MERGE, target, condition, (int(values[1]), int(values[1])))
        amounts = tuple(int(a) for a in values[1])
        if len(amounts) != 2:
            raise InputError("data", "amounts must hold two values (YES, NO)")
        return DecodedCall(CallKind.REDEEM, target, condition, (amounts[0], amounts[1]))
    collateral, parent, condition_raw, partition = values[0], values[1], values[2], values[3]
    if str(collateral).lower() != COLLATERAL_TOKEN.lower():
        raise InputError("data", "collateral is not pUSD")
    if bytes(parent) != _ZERO32:
        raise InputError("data", "parent collection must be 0 (a binary condition)")
    if tuple(int(p) for p in partition) != _PARTITION:
        raise InputError("data", "partition must be [1, 2]")
    condition = "0x" + bytes(condition_raw).hex()
    if name == _CTF_MERGE:
        return DecodedCall(CallKind.MERGE, target, condition, (int(values[4]), int(values[4])))
    return DecodedCall(CallKind.REDEEM, target, condition, None)


def proxy_call(calls: Sequence[ContractCall]) -> ContractCall:
    """The proxy factory call that has a proxy wallet make `calls` (each a plain CALL)."""
    items = [(_PROXY_TYPE_CALL, c.to, c.value, c.data) for c in calls]
    return ContractCall(PROXY_FACTORY, _PROXY_SELECTOR + abi_encode(["(uint8,address,uint256,bytes)[]"], [items]))


def decode_proxy_calls(data: bytes) -> list[ContractCall]:
    """The calls of a proxy factory `proxy(...)` call; `InputError` for anything else (or a non-CALL type code)."""
    if bytes(data[:4]) != _PROXY_SELECTOR:
        raise InputError("data", "not a proxy(...) call")
    try:
        (items,) = abi_decode(["(uint8,address,uint256,bytes)[]"], bytes(data[4:]), strict=True)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise InputError("data", f"call data does not decode as {_PROXY}: {exc}") from None
    calls = []
    for type_code, to, value, inner in items:
        if int(type_code) != _PROXY_TYPE_CALL:
            raise InputError("data", f"proxy call type {type_code} is not supported (only CALL)")
        calls.append(ContractCall(parse_address(str(to), "to"), bytes(inner), int(value)))
    return calls


# ---------------------------------------------------------------------------------------------------------------
# Signatures


def personal_digest(message_hash: bytes) -> bytes:
    """EIP-191 `personal_sign` digest of a 32-byte hash (what `signMessage(hash)` signs)."""
    return keccak256(b"\x19Ethereum Signed Message:\n32" + message_hash)


def sign_personal(signer: OrderSigner, message_hash: bytes) -> bytes:
    """65-byte `r ‖ s ‖ v` (v 27/28) of the EIP-191 digest of `message_hash`."""
    return signer.sign_digest(personal_digest(message_hash))


def recover_personal_signer(message_hash: bytes, signature: bytes) -> str:
    return recover_address(personal_digest(message_hash), signature)


def _word_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(parse_address(address, "address")[2:])


def _word(value: int) -> bytes:
    if not 0 <= value < _UINT256_LIMIT:
        raise InputError("value", f"{value} does not fit in uint256")
    return value.to_bytes(32, "big")


_SAFE_DOMAIN_TYPE: Final = keccak256(b"EIP712Domain(uint256 chainId,address verifyingContract)")
_SAFE_TX_TYPE: Final = keccak256(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
    b"uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)


def safe_transaction_hash(
    safe: str, call: ContractCall, nonce: int, *, operation: int = 0, chain_id: int = CHAIN_ID_POLYGON
) -> bytes:
    """The Safe's EIP-712 transaction hash of `call` (no gas refund: safeTxGas, baseGas, gasPrice 0, no gas token
    and no refund receiver, as the relayer wants)."""
    domain = keccak256(_SAFE_DOMAIN_TYPE + _word(chain_id) + _word_address(safe))
    struct = keccak256(
        _SAFE_TX_TYPE
        + _word_address(call.to)
        + _word(call.value)
        + keccak256(call.data)
        + _word(operation)
        + _word(0)
        + _word(0)
        + _word(0)
        + bytes(32)
        + bytes(32)
        + _word(nonce)
    )
    return keccak256(b"\x19\x01" + domain + struct)


def safe_signature(signer: OrderSigner, safe_hash: bytes) -> bytes:
    """The owner's signature of a Safe transaction hash as the relayer takes it: eth_sign form, v + 4 (31/32)."""
    signature = sign_personal(signer, safe_hash)
    return signature[:64] + bytes((signature[64] + 4,))


def recover_safe_signer(safe_hash: bytes, signature: bytes) -> str:
    """The owner that made a Safe eth_sign signature (v 31/32); `InputError` for any other form."""
    if len(signature) != 65 or signature[64] not in (31, 32):
        raise InputError("signature", "expected a 65-byte Safe eth_sign signature (v 31 or 32)")
    return recover_personal_signer(safe_hash, signature[:64] + bytes((signature[64] - 4,)))


def proxy_transaction_hash(
    *,
    from_address: str,
    to: str,
    data: bytes,
    relayer_fee: int,
    gas_price: int,
    gas_limit: int,
    nonce: int,
    relay_hub: str,
    relay: str,
) -> bytes:
    """What the EOA signs (with the EIP-191 prefix) for a proxy-wallet relay."""
    return keccak256(
        b"rlx:"
        + bytes.fromhex(parse_address(from_address, "from")[2:])
        + bytes.fromhex(parse_address(to, "to")[2:])
        + data
        + _word(relayer_fee)
        + _word(gas_price)
        + _word(gas_limit)
        + _word(nonce)
        + bytes.fromhex(parse_address(relay_hub, "relayHub")[2:])
        + bytes.fromhex(parse_address(relay, "relay")[2:])
    )


_EIP712_DOMAIN_TYPE: Final = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_CALL_TYPE: Final = b"Call(address target,uint256 value,bytes data)"
_CALL_TYPE_HASH: Final = keccak256(_CALL_TYPE)
_BATCH_TYPE_HASH: Final = keccak256(b"Batch(address wallet,uint256 nonce,uint256 deadline,Call[] calls)" + _CALL_TYPE)


def deposit_batch_digest(
    wallet: str, nonce: int, deadline: int, calls: Sequence[ContractCall], *, chain_id: int = CHAIN_ID_POLYGON
) -> bytes:
    """The EIP-712 digest of a deposit wallet's `Batch` (what its owner signs, without a prefix)."""
    domain = keccak256(
        _EIP712_DOMAIN_TYPE + keccak256(b"DepositWallet") + keccak256(b"1") + _word(chain_id) + _word_address(wallet)
    )
    call_hashes = b"".join(
        keccak256(_CALL_TYPE_HASH + _word_address(c.to) + _word(c.value) + keccak256(c.data)) for c in calls
    )
    struct = keccak256(
        _BATCH_TYPE_HASH + _word_address(wallet) + _word(nonce) + _word(deadline) + keccak256(call_hashes)
    )
    return keccak256(b"\x19\x01" + domain + struct)


# ---------------------------------------------------------------------------------------------------------------
# Wallet addresses (CREATE2, as the official relayer clients derive them)


def _create2(factory: str, salt: bytes, init_code_hash: bytes) -> str:
    raw = keccak256(b"\xff" + bytes.fromhex(parse_address(factory, "factory")[2:]) + salt + init_code_hash)
    return checksum_address(raw[12:])


def safe_wallet_address(owner: str) -> str:
    """The Polymarket Safe of an EOA (salt keccak(abi.encode(owner)))."""
    return _create2(SAFE_FACTORY, keccak256(_word_address(owner)), _SAFE_INIT_CODE_HASH)


def proxy_wallet_address(owner: str) -> str:
    """The Polymarket proxy wallet of an EOA (salt keccak(abi.encodePacked(owner)))."""
    salt = keccak256(bytes.fromhex(parse_address(owner, "owner")[2:]))
    return _create2(PROXY_FACTORY, salt, _PROXY_INIT_CODE_HASH)


_BEACON_PREFIX: Final = 0x6100523D8160233D3973
_BEACON_TAIL: Final = bytes.fromhex(
    "60195155f3363d3d373d3d363d602036600436635c60da"
    "1b60e01b36527fa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6c"
    "b3582b35133d50545afa5036515af43d6000803e604d573d6000fd5b3d6000f3"
)


def deposit_wallet_address(owner: str) -> str:
    """The (beacon-proxy) deposit wallet of an EOA, as the deposit wallet factory deploys it."""
    args = _word_address(DEPOSIT_WALLET_FACTORY) + _word_address(owner)
    init_code = (
        (_BEACON_PREFIX + (len(args) << 56)).to_bytes(10, "big")
        + bytes.fromhex(parse_address(DEPOSIT_WALLET_BEACON, "beacon")[2:])
        + _BEACON_TAIL
        + args
    )
    return _create2(DEPOSIT_WALLET_FACTORY, keccak256(args), keccak256(init_code))


# ---------------------------------------------------------------------------------------------------------------
# Raw transactions (the simulated chain's side; signing is `OrderSigner.sign_transaction`)


@dataclass(frozen=True, slots=True, kw_only=True)
class RawTransaction:
    """A signed transaction as a node reads it. `max_fee_per_gas` is the gas price of a legacy transaction."""

    tx_hash: str
    sender: str
    chain_id: int | None  # None: a legacy transaction without EIP-155 replay protection
    nonce: int
    to: str | None
    value: int
    data: bytes
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    type: int


def decode_raw_transaction(raw: bytes) -> RawTransaction:
    """Decode and check a signed EIP-1559 (type 2) or legacy transaction and recover its sender. Anything else (other
    types, bad RLP, a bad signature) is an `InputError`."""
    from eth_account import Account  # noqa: PLC0415 - eth-account's import is slow; only the sim reads transactions
    from eth_account._utils.legacy_transactions import Transaction  # noqa: PLC0415
    from eth_account.typed_transactions.typed_transaction import TypedTransaction  # noqa: PLC0415
    from hexbytes import HexBytes  # noqa: PLC0415 - eth-account's own type for raw bytes

    if not raw:
        raise InputError("transaction", "empty")
    try:
        sender = Account.recover_transaction(raw)
        if raw[0] == 2:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            chain_id: int | None = int(fields["chainId"])
            max_fee, tip = int(fields["maxFeePerGas"]), int(fields["maxPriorityFeePerGas"])
            kind = 2
        elif raw[0] >= 0xC0:
            fields = Transaction.from_bytes(raw).as_dict()
            v = int(fields["v"])
            chain_id = (v - 35) // 2 if v >= 35 else None
            max_fee = tip = int(fields["gasPrice"])
            kind = 0
        else:
            raise InputError("transaction", f"transaction type {raw[0]} is not supported")
        to = bytes(fields["to"])
    except InputError:
        raise
    except Exception as exc:  # eth-account / rlp raise many types for malformed input
        raise InputError("transaction", f"not a valid signed transaction: {type(exc).__name__}") from None
    return RawTransaction(
        tx_hash="0x" + keccak256(raw).hex(),
        sender=str(sender),
        chain_id=chain_id,
        nonce=int(fields["nonce"]),
        to=checksum_address(to) if to else None,
        value=int(fields["value"]),
        data=bytes(fields["data"]),
        gas=int(fields["gas"]),
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=tip,
        type=kind,
    )
