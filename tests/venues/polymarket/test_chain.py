"""Chain building blocks: call data, the hashes relayer wallets sign (golden vectors of Polymarket's official relayer
client, py-builder-relayer-client's tests), wallet addresses, raw transactions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data

from trader.errors import InputError
from trader.venues.polymarket.chain import (
    COLLATERAL_ADAPTER,
    COLLATERAL_TOKEN,
    CONDITIONAL_TOKENS,
    LEGACY_NEG_RISK_ADAPTER,
    NEG_RISK_COLLATERAL_ADAPTER,
    PROXY_FACTORY,
    RELAY_HUB,
    CallKind,
    ContractCall,
    DecodedCall,
    base_units,
    ctf_merge_call,
    decode_capital_call,
    decode_proxy_calls,
    decode_raw_transaction,
    deposit_batch_digest,
    deposit_wallet_address,
    legacy_neg_risk_merge_call,
    legacy_neg_risk_redeem_call,
    merge_call,
    proxy_call,
    proxy_transaction_hash,
    proxy_wallet_address,
    recover_personal_signer,
    recover_safe_signer,
    redeem_call,
    safe_signature,
    safe_transaction_hash,
    safe_wallet_address,
    sign_personal,
)
from trader.venues.polymarket.signing import OrderSigner, keccak256

CONDITION = "0x" + "ab" * 32
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # publicly known (anvil #0)
ANVIL = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_base_units_are_exact() -> None:
    assert base_units(Decimal("12.5"), "amount") == 12_500_000
    assert base_units(Decimal("0.000001"), "amount") == 1
    for bad in (Decimal("0.0000001"), Decimal(-1), Decimal("NaN"), Decimal(2) ** 300):
        with pytest.raises(InputError, match="amount"):
            base_units(bad, "amount")


@pytest.mark.parametrize("neg_risk", [False, True])
def test_merge_and_redeem_go_to_the_collateral_adapters_with_the_ctf_abi(neg_risk: bool) -> None:
    target = NEG_RISK_COLLATERAL_ADAPTER if neg_risk else COLLATERAL_ADAPTER
    merge = merge_call(CONDITION, 7_000_000, neg_risk=neg_risk)
    assert merge.to == target
    selector = keccak256(b"mergePositions(address,bytes32,bytes32,uint256[],uint256)")[:4]
    expected = abi_encode(
        ["address", "bytes32", "bytes32", "uint256[]", "uint256"],
        [COLLATERAL_TOKEN, bytes(32), bytes.fromhex("ab" * 32), [1, 2], 7_000_000],
    )
    assert merge.data == selector + expected
    assert merge.data_hex == "0x" + merge.data.hex()
    assert decode_capital_call(merge.to, merge.data) == DecodedCall(
        CallKind.MERGE, target, CONDITION, (7_000_000, 7_000_000)
    )

    redeem = redeem_call(CONDITION, neg_risk=neg_risk)
    assert redeem.data[:4] == keccak256(b"redeemPositions(address,bytes32,bytes32,uint256[])")[:4]
    assert decode_capital_call(redeem.to, redeem.data) == DecodedCall(CallKind.REDEEM, target, CONDITION, None)
    with pytest.raises(InputError):
        merge_call(CONDITION, 0, neg_risk=neg_risk)


def test_the_conditional_tokens_contract_and_the_retired_adapter_are_read_too() -> None:
    direct = ctf_merge_call(CONDITIONAL_TOKENS, CONDITION, 5)
    assert decode_capital_call(direct.to, direct.data).target == CONDITIONAL_TOKENS
    legacy_merge = legacy_neg_risk_merge_call(CONDITION, 3)
    assert legacy_merge.data[:4] == keccak256(b"mergePositions(bytes32,uint256)")[:4]
    assert decode_capital_call(legacy_merge.to, legacy_merge.data) == DecodedCall(
        CallKind.MERGE, LEGACY_NEG_RISK_ADAPTER, CONDITION, (3, 3)
    )
    legacy_redeem = legacy_neg_risk_redeem_call(CONDITION, (4, 0))
    assert decode_capital_call(legacy_redeem.to, legacy_redeem.data) == DecodedCall(
        CallKind.REDEEM, LEGACY_NEG_RISK_ADAPTER, CONDITION, (4, 0)
    )


def test_calls_that_are_not_merges_or_redemptions_are_refused_with_a_reason() -> None:
    merge = merge_call(CONDITION, 1, neg_risk=False)
    cases = [
        (COLLATERAL_ADAPTER, b"\x12\x34\x56\x78", "unknown function"),
        (COLLATERAL_TOKEN, merge.data, "has no function"),
        (LEGACY_NEG_RISK_ADAPTER, merge.data, "has no function"),
        (COLLATERAL_ADAPTER, legacy_neg_risk_merge_call(CONDITION, 1).data, "has no function"),
        (COLLATERAL_ADAPTER, merge.data[:40], "does not decode"),
        (COLLATERAL_ADAPTER, merge.data[:4] + _swap_collateral(merge.data[4:]), "not pUSD"),
        (LEGACY_NEG_RISK_ADAPTER, _three_amounts(), "two values"),
    ]
    for to, data, reason in cases:
        with pytest.raises(InputError, match=reason):
            decode_capital_call(to, data)
    with pytest.raises(InputError):
        decode_capital_call("not an address", merge.data)


def _swap_collateral(args: bytes) -> bytes:
    return bytes(12) + bytes.fromhex("11" * 20) + args[32:]


def _three_amounts() -> bytes:
    return keccak256(b"redeemPositions(bytes32,uint256[])")[:4] + abi_encode(
        ["bytes32", "uint256[]"], [bytes(32), [1, 2, 3]]
    )


def test_proxy_factory_calls_round_trip() -> None:
    inner = merge_call(CONDITION, 9, neg_risk=True)
    outer = proxy_call([inner])
    assert outer.to == PROXY_FACTORY
    assert outer.data[:4] == keccak256(b"proxy((uint8,address,uint256,bytes)[])")[:4]
    assert decode_proxy_calls(outer.data) == [inner]
    with pytest.raises(InputError, match="not a proxy"):
        decode_proxy_calls(inner.data)
    delegate = outer.data[:4] + abi_encode(["(uint8,address,uint256,bytes)[]"], [[(2, inner.to, 0, inner.data)]])
    with pytest.raises(InputError, match="only CALL"):
        decode_proxy_calls(delegate)
    with pytest.raises(InputError, match="does not decode"):
        decode_proxy_calls(outer.data[:10])


def test_safe_hash_and_signature_match_the_official_relayer_client() -> None:
    multisend_data = bytes.fromhex(
        "8d80ff0a000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000"
        "00000000000000000000000000000132002791bca1f2de4661ed88a30c99a7a9449aa84174000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000044095ea7"
        "b30000000000000000000000004d97dcd97ec945f40cf65f87097ace5ea0476045ffffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffffffffff002791bca1f2de4661ed88a30c99a7a9449aa84174000000000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000044095ea7b30000"
        "000000000000000000004d97dcd97ec945f40cf65f87097ace5ea0476045ffffffffffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffff0000000000000000000000000000"
    )
    call = ContractCall("0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761", multisend_data)
    digest = safe_transaction_hash("0xd93B25cb943D14d0d34FBaF01Fc93a0f8b5F6E47", call, 8, operation=1)
    assert "0x" + digest.hex() == "0x06d5102c3e356b62a75f8203cd5ce7ab1fa8fdab33875ef621eee102220d90b8"

    signature = safe_signature(OrderSigner(ANVIL_KEY), digest)
    assert "0x" + signature.hex() == (
        "0xad62657208a0d885f91bba7490de238741bf7c51eb792f00856171aafc9e012373156fb672e55d840733c8bf723ec458545f"
        "cd5749aa5e547f808c222e7e117020"
    )
    assert recover_safe_signer(digest, signature) == ANVIL
    with pytest.raises(InputError, match="Safe eth_sign"):
        recover_safe_signer(digest, signature[:64] + b"\x1b")


def test_safe_hash_is_the_eip712_hash_eth_account_computes() -> None:
    call = merge_call(CONDITION, 5_000_000, neg_risk=False)
    safe = "0x" + "5a" * 20
    typed = {
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "SafeTx": [
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "data", "type": "bytes"},
                {"name": "operation", "type": "uint8"},
                {"name": "safeTxGas", "type": "uint256"},
                {"name": "baseGas", "type": "uint256"},
                {"name": "gasPrice", "type": "uint256"},
                {"name": "gasToken", "type": "address"},
                {"name": "refundReceiver", "type": "address"},
                {"name": "nonce", "type": "uint256"},
            ],
        },
        "primaryType": "SafeTx",
        "domain": {"chainId": 137, "verifyingContract": safe},
        "message": {
            "to": call.to,
            "value": 0,
            "data": call.data,
            "operation": 0,
            "safeTxGas": 0,
            "baseGas": 0,
            "gasPrice": 0,
            "gasToken": "0x" + "00" * 20,
            "refundReceiver": "0x" + "00" * 20,
            "nonce": 12,
        },
    }
    signable = encode_typed_data(full_message=typed)
    expected = keccak256(b"\x19" + signable.version + signable.header + signable.body)
    assert safe_transaction_hash(safe, call, 12) == expected


def test_proxy_signature_matches_the_official_relayer_client() -> None:
    approve = ContractCall(
        "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174",
        bytes.fromhex(
            "095ea7b30000000000000000000000004d97dcd97ec945f40cf65f87097ace5ea0476045"
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        ),
    )
    digest = proxy_transaction_hash(
        from_address=ANVIL,
        to=PROXY_FACTORY,
        data=proxy_call([approve]).data,
        relayer_fee=0,
        gas_price=0,
        gas_limit=85338,
        nonce=0,
        relay_hub=RELAY_HUB,
        relay="0xae700edfd9ab986395f3999fe11177b9903a52f1",
    )
    signature = sign_personal(OrderSigner(ANVIL_KEY), digest)
    assert "0x" + signature.hex() == (
        "0x4c18e2d2294a00d686714aff8e7936ab657cb4655dfccb2b556efadcb7e835f800dc2fecec69c501e29bb36ecb54b4da6b7c410c"
        "4dc740a33af2afde2b77297e1b"
    )
    assert recover_personal_signer(digest, signature) == ANVIL


def test_deposit_wallet_batch_digest_is_the_eip712_hash_eth_account_computes() -> None:
    calls = [merge_call(CONDITION, 2, neg_risk=False), redeem_call(CONDITION, neg_risk=True)]
    wallet = "0x" + "d3" * 20
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Call": [
                {"name": "target", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "data", "type": "bytes"},
            ],
            "Batch": [
                {"name": "wallet", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
                {"name": "calls", "type": "Call[]"},
            ],
        },
        "primaryType": "Batch",
        "domain": {"name": "DepositWallet", "version": "1", "chainId": 137, "verifyingContract": wallet},
        "message": {
            "wallet": wallet,
            "nonce": 4,
            "deadline": 1_800_000_000,
            "calls": [{"target": c.to, "value": c.value, "data": c.data} for c in calls],
        },
    }
    signed = Account.sign_typed_data(ANVIL_KEY, full_message=typed)
    digest = deposit_batch_digest(wallet, 4, 1_800_000_000, calls)
    assert digest == bytes(signed.message_hash)
    assert OrderSigner(ANVIL_KEY).sign_digest(digest) == bytes(signed.signature)


def test_wallet_addresses_match_the_official_relayer_client() -> None:
    assert safe_wallet_address("0x6e0c80c90ea6c15917308F820Eac91Ce2724B5b5") == (
        "0x6d8c4e9aDF5748Af82Dabe2C6225207770d6B4fa"
    )
    assert deposit_wallet_address("0x0000000000000000000000000000000000000001") == (
        "0x94bF330955A0b957662fEaF878dE77bf25f76cD9"
    )
    assert proxy_wallet_address(ANVIL) != safe_wallet_address(ANVIL)
    assert proxy_wallet_address(ANVIL) == proxy_wallet_address(ANVIL.lower())


def test_raw_transactions_decode_with_their_sender() -> None:
    signer = OrderSigner(ANVIL_KEY)
    call = merge_call(CONDITION, 1, neg_risk=False)
    raw, tx_hash = signer.sign_transaction(
        {
            "type": 2,
            "chainId": 137,
            "nonce": 5,
            "to": call.to,
            "value": 0,
            "data": call.data,
            "gas": 210_000,
            "maxFeePerGas": 200 * 10**9,
            "maxPriorityFeePerGas": 30 * 10**9,
        }
    )
    tx = decode_raw_transaction(raw)
    assert (tx.tx_hash, tx.sender, tx.chain_id, tx.nonce, tx.to, tx.data, tx.type) == (
        tx_hash,
        ANVIL,
        137,
        5,
        call.to,
        call.data,
        2,
    )
    assert (tx.gas, tx.max_fee_per_gas, tx.max_priority_fee_per_gas) == (210_000, 200 * 10**9, 30 * 10**9)

    legacy, legacy_hash = signer.sign_transaction(
        {"chainId": 80002, "nonce": 1, "to": call.to, "value": 0, "data": b"", "gas": 21_000, "gasPrice": 10**9}
    )
    read = decode_raw_transaction(legacy)
    assert (read.tx_hash, read.chain_id, read.type, read.max_fee_per_gas) == (legacy_hash, 80002, 0, 10**9)

    for bad in (b"", b"\x01\x02", b"\x02\xc0", raw[:-3]):
        with pytest.raises(InputError, match="transaction"):
            decode_raw_transaction(bad)
    with pytest.raises(InputError, match="cannot be signed"):
        signer.sign_transaction({"type": 2, "chainId": 137, "nonce": "x"})
