"""The simulated chain as a client meets it over HTTP: the JSON-RPC node's answers and refusals, the relayer's
checks, mining, the faults that refuse, hold and revert transactions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.venues.sim.conftest import static_config
from trader.venues.polymarket.chain import (
    PROXY_FACTORY,
    RELAY_HUB,
    ContractCall,
    legacy_neg_risk_merge_call,
    legacy_neg_risk_redeem_call,
    merge_call,
    proxy_call,
    proxy_transaction_hash,
    redeem_call,
    safe_signature,
    safe_transaction_hash,
    safe_wallet_address,
    sign_personal,
)
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.chain import ChainConfig
from trader.venues.sim.relayer import RELAY_ADDRESS
from trader.venues.sim.venue import SimVenue, open_sim_venue

KEY = "0x" + "7a" * 32
SIGNER = OrderSigner(KEY)
U = 1_000_000
GWEI = 10**9
AUTH = {"RELAYER_API_KEY": "k", "RELAYER_API_KEY_ADDRESS": SIGNER.address}


@pytest.fixture
async def chain_sim() -> AsyncIterator[SimVenue]:
    config = static_config(chain=ChainConfig(mining_delay_secs=1.0, block_time_secs=1.0))
    async with open_sim_venue(config) as venue:
        yield venue


async def rpc(sim: SimVenue, method: str, *params: object) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            sim.urls.rpc, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}
        )
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    assert body["id"] == 7
    return body


def signed(call: ContractCall, nonce: int, **fields: object) -> str:
    tx: dict[str, object] = {
        "type": 2,
        "chainId": 137,
        "nonce": nonce,
        "to": call.to,
        "value": 0,
        "data": call.data,
        "gas": 300_000,
        "maxFeePerGas": 100 * GWEI,
        "maxPriorityFeePerGas": 30 * GWEI,
    }
    tx.update(fields)
    raw, _ = SIGNER.sign_transaction(tx)
    return "0x" + raw.hex()


async def test_the_node_reports_chain_blocks_fees_and_nonces(
    chain_sim: SimVenue, autojump_clock: trio.testing.MockClock
) -> None:
    assert (await rpc(chain_sim, "eth_chainId"))["result"] == "0x89"
    first = int((await rpc(chain_sim, "eth_blockNumber"))["result"], 16)
    await trio.sleep(3.5)
    assert int((await rpc(chain_sim, "eth_blockNumber"))["result"], 16) == first + 3
    block = (await rpc(chain_sim, "eth_getBlockByNumber", "latest", False))["result"]
    assert (block["number"], block["baseFeePerGas"]) == (hex(first + 3), hex(30 * GWEI))
    assert (await rpc(chain_sim, "eth_getBlockByNumber", hex(first + 99), False))["result"] is None
    assert (await rpc(chain_sim, "eth_maxPriorityFeePerGas"))["result"] == hex(30 * GWEI)
    assert (await rpc(chain_sim, "eth_gasPrice"))["result"] == hex(60 * GWEI)
    history = (await rpc(chain_sim, "eth_feeHistory", "0x2", "latest", [50]))["result"]
    assert history["reward"] == [[hex(30 * GWEI)], [hex(30 * GWEI)]]
    assert (await rpc(chain_sim, "eth_getTransactionCount", SIGNER.address, "pending"))["result"] == "0x0"


async def test_the_node_answers_bad_requests_as_json_rpc_errors(chain_sim: SimVenue) -> None:
    async with httpx.AsyncClient() as http:
        parse = (await http.post(chain_sim.urls.rpc, content=b"{not json")).json()
        assert parse["error"]["code"] == -32700
        assert (await http.post(chain_sim.urls.rpc, json={"id": 1})).json()["error"]["code"] == -32600
        batch = (
            await http.post(
                chain_sim.urls.rpc,
                json=[
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    {"jsonrpc": "2.0", "id": 2, "method": "eth_mine", "params": []},
                ],
            )
        ).json()
        assert [b.get("result") for b in batch] == ["0x89", None]
        assert batch[1]["error"]["code"] == -32601
        assert (await http.get(chain_sim.urls.rpc)).status_code == 405
    assert (await rpc(chain_sim, "eth_getTransactionCount", "nope"))["error"]["code"] == -32602
    assert (await rpc(chain_sim, "eth_getTransactionReceipt"))["error"]["code"] == -32602
    assert (await rpc(chain_sim, "eth_getTransactionReceipt", "0x12"))["error"]["code"] == -32602


async def test_estimate_gas_simulates_merges_and_reverts_with_the_reason(chain_sim: SimVenue) -> None:
    market = chain_sim.exchange.markets[0]
    call = merge_call(market.condition_id, 5 * U, neg_risk=False)
    ask = {"from": SIGNER.address, "to": call.to, "data": call.data_hex}
    reverted = (await rpc(chain_sim, "eth_estimateGas", ask))["error"]
    assert reverted["code"] == 3
    assert reverted["message"] == "execution reverted: ERC1155: insufficient balance for transfer"
    assert reverted["data"].startswith("0x08c379a0")  # Error(string)
    chain_sim.exchange.fund(SIGNER.address, shares=dict.fromkeys(market.token_ids, 5 * U))
    assert (await rpc(chain_sim, "eth_estimateGas", ask))["result"] == hex(180_000)
    assert chain_sim.exchange.wallet(SIGNER.address).shares[market.token_ids[0]] == 5 * U  # only simulated
    unknown = {"from": SIGNER.address, "to": call.to, "data": "0xdeadbeef"}
    assert "unknown function selector" in (await rpc(chain_sim, "eth_estimateGas", unknown))["error"]["message"]
    assert (await rpc(chain_sim, "eth_estimateGas", {"from": SIGNER.address, "to": call.to}))["result"] == "0x5208"
    through_proxy = proxy_call([call])
    proxied = {"from": SIGNER.address, "to": PROXY_FACTORY, "data": through_proxy.data_hex}
    assert (await rpc(chain_sim, "eth_estimateGas", proxied))["error"]["code"] == 3  # the proxy wallet holds none


async def test_send_raw_transaction_checks_as_a_node_does(
    chain_sim: SimVenue, autojump_clock: trio.testing.MockClock
) -> None:
    market = chain_sim.exchange.markets[0]
    chain_sim.exchange.fund(SIGNER.address, collateral=0, shares=dict.fromkeys(market.token_ids, 9 * U))
    call = merge_call(market.condition_id, 2 * U, neg_risk=False)
    refusals = [
        (signed(call, 0, chainId=80002), "invalid chain id: have 80002, want 137"),
        (signed(call, 1), "nonce too high: next nonce 0, tx nonce 1"),
        (signed(call, 0, gas=20_000), "intrinsic gas too low"),
        (signed(call, 0, maxPriorityFeePerGas=GWEI), "transaction underpriced"),
        ("0x02c0", "invalid transaction"),
    ]
    for raw, message in refusals:
        error = (await rpc(chain_sim, "eth_sendRawTransaction", raw))["error"]
        assert (error["code"], error["message"].startswith(message)) == (-32000, True), error

    raw = signed(call, 0)
    tx_hash = (await rpc(chain_sim, "eth_sendRawTransaction", raw))["result"]
    assert (await rpc(chain_sim, "eth_sendRawTransaction", raw))["error"]["message"] == "already known"
    assert (await rpc(chain_sim, "eth_getTransactionCount", SIGNER.address, "pending"))["result"] == "0x1"
    assert (await rpc(chain_sim, "eth_getTransactionCount", SIGNER.address, "latest"))["result"] == "0x0"
    assert (await rpc(chain_sim, "eth_getTransactionReceipt", tx_hash))["result"] is None
    pending = (await rpc(chain_sim, "eth_getTransactionByHash", tx_hash))["result"]
    assert (pending["blockNumber"], pending["from"], pending["nonce"]) == (None, SIGNER.address, "0x0")

    await trio.sleep(2.1)
    receipt = (await rpc(chain_sim, "eth_getTransactionReceipt", tx_hash))["result"]
    assert (receipt["status"], receipt["from"], receipt["gasUsed"]) == ("0x1", SIGNER.address, hex(180_000))
    assert "revertReason" not in receipt
    assert chain_sim.exchange.wallet(SIGNER.address).collateral == 2 * U
    stale = signed(call, 0, maxFeePerGas=101 * GWEI)
    assert (await rpc(chain_sim, "eth_sendRawTransaction", stale))["error"]["message"].startswith("nonce too low")

    short = signed(call, 1, gas=100_000)  # taken, but runs out of gas when mined
    redeem_early = signed(redeem_call(market.condition_id, neg_risk=False), 2)
    hashes = [(await rpc(chain_sim, "eth_sendRawTransaction", raw))["result"] for raw in (short, redeem_early)]
    await trio.sleep(2.1)
    reasons = [(await rpc(chain_sim, "eth_getTransactionReceipt", h))["result"] for h in hashes]
    assert [(r["status"], r["revertReason"]) for r in reasons] == [
        ("0x0", "out of gas"),
        ("0x0", "result for condition not received yet"),
    ]
    assert chain_sim.exchange.wallet(SIGNER.address).collateral == 2 * U


async def test_chain_faults_refuse_hold_and_revert(chain_sim: SimVenue, autojump_clock: trio.testing.MockClock) -> None:
    market = chain_sim.exchange.markets[0]
    chain_sim.exchange.fund(SIGNER.address, collateral=0, shares=dict.fromkeys(market.token_ids, 9 * U))
    call = merge_call(market.condition_id, U, neg_risk=False)
    async with httpx.AsyncClient() as http:
        for spec in (
            {"kind": "chain_refuse", "source": "rpc", "message": "txpool is full"},
            {"kind": "chain_stuck", "source": "rpc"},
            {"kind": "chain_revert", "source": "rpc", "reason": "paused"},
        ):
            armed = await http.post(chain_sim.urls.rest + "/_sim/faults", json=spec)
            assert armed.status_code == 200, armed.text
        listed = (await http.get(chain_sim.urls.rest + "/_sim/faults")).json()
        assert [f["kind"] for f in listed] == ["refuse", "stuck", "revert"]
        bad = await http.post(chain_sim.urls.rest + "/_sim/faults", json={"kind": "chain_stuck", "source": "moon"})
        assert bad.status_code == 400

    assert (await rpc(chain_sim, "eth_sendRawTransaction", signed(call, 0)))["error"]["message"] == "txpool is full"
    held = (await rpc(chain_sim, "eth_sendRawTransaction", signed(call, 0)))["result"]
    reverted = (await rpc(chain_sim, "eth_sendRawTransaction", signed(call, 1)))["result"]
    await trio.sleep(30)
    assert (await rpc(chain_sim, "eth_getTransactionReceipt", held))["result"] is None
    receipt = (await rpc(chain_sim, "eth_getTransactionReceipt", reverted))["result"]
    assert (receipt["status"], receipt["revertReason"]) == ("0x0", "paused")
    assert chain_sim.exchange.wallet(SIGNER.address).shares[market.token_ids[0]] == 9 * U
    stats = chain_sim.chain.stats
    assert (stats.accepted, stats.refused, stats.held, stats.reverted) == (2, 1, 1, 1)


# ---------------------------------------------------------------------------------------------------------------
# The relayer


def safe_payload(
    nonce: int, call: ContractCall, /, *, signer: OrderSigner = SIGNER, **changes: object
) -> dict[str, Any]:
    safe = safe_wallet_address(signer.address)
    digest = safe_transaction_hash(safe, call, nonce)
    payload: dict[str, Any] = {
        "type": "SAFE",
        "from": signer.address,
        "to": call.to,
        "proxyWallet": safe,
        "data": call.data_hex,
        "nonce": str(nonce),
        "signature": "0x" + safe_signature(signer, digest).hex(),
        "signatureParams": {
            "baseGas": "0",
            "gasPrice": "0",
            "gasToken": "0x" + "00" * 20,
            "operation": "0",
            "refundReceiver": "0x" + "00" * 20,
            "safeTxnGas": "0",
        },
        "metadata": "test",
    }
    payload.update(changes)
    return payload


async def submit(sim: SimVenue, payload: object, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(sim.urls.relayer + "/submit", json=payload, headers=AUTH if headers is None else headers)


async def test_the_relayer_refuses_what_the_real_one_would(chain_sim: SimVenue) -> None:
    market = chain_sim.exchange.markets[0]
    call = merge_call(market.condition_id, U, neg_risk=False)
    other = OrderSigner("0x" + "7b" * 32)
    cases: list[tuple[object, str]] = [
        (safe_payload(1, call), "invalid nonce: the wallet's next nonce is 0, got 1"),
        (safe_payload(0, call, proxyWallet=safe_wallet_address(other.address)), "is not the safe wallet of"),
        (safe_payload(0, call, signature=safe_payload(0, call, signer=other)["signature"]), "invalid signature"),
        (safe_payload(0, call, signature="0x1234"), "invalid signature"),
        (safe_payload(0, ContractCall(call.to, b"\x01\x02\x03\x04")), "call not supported: unknown function"),
        (safe_payload(0, call, type="SAFE-CREATE"), "unsupported transaction type"),
        (safe_payload(0, call, nonce="zero"), "nonce must be a decimal integer string"),
        (safe_payload(0, call, metadata="m" * 501), "metadata"),
        ([1, 2], "body must be a JSON object"),
    ]
    for payload, message in cases:
        reply = await submit(chain_sim, payload)
        assert reply.status_code == 400, reply.text
        assert message in reply.json()["error"], (message, reply.json())
    unauthorized = await submit(chain_sim, safe_payload(0, call), headers={"RELAYER_API_KEY": "k"})
    assert (unauthorized.status_code, unauthorized.json()) == (401, {"error": "invalid authorization"})
    async with httpx.AsyncClient() as http:
        assert (await http.get(chain_sim.urls.relayer + "/transactions")).status_code == 401
        assert (await http.get(chain_sim.urls.relayer + "/transaction", params={"id": "x"})).json() == []
        bad_type = await http.get(chain_sim.urls.relayer + "/nonce", params={"address": SIGNER.address, "type": "X"})
        assert bad_type.status_code == 400
        deployed = await http.get(chain_sim.urls.relayer + "/deployed", params={"address": SIGNER.address})
        assert deployed.json() == {"deployed": True}
    assert chain_sim.chain.stats.accepted == 0


async def test_a_relayed_proxy_merge_is_mined_and_confirmed(
    chain_sim: SimVenue, autojump_clock: trio.testing.MockClock
) -> None:
    market = chain_sim.exchange.markets[0]
    wallet = chain_sim.rest.relayer.wallet_of("PROXY", SIGNER.address) if chain_sim.rest.relayer else ""
    chain_sim.exchange.fund(wallet, collateral=0, shares=dict.fromkeys(market.token_ids, 3 * U))
    async with httpx.AsyncClient() as http:
        payload_reply = await http.get(
            chain_sim.urls.relayer + "/relay-payload", params={"address": SIGNER.address, "type": "PROXY"}
        )
        relay = payload_reply.json()
        assert relay == {"address": RELAY_ADDRESS, "nonce": "0"}
        data = proxy_call([merge_call(market.condition_id, 3 * U, neg_risk=False)]).data
        digest = proxy_transaction_hash(
            from_address=SIGNER.address,
            to=PROXY_FACTORY,
            data=data,
            relayer_fee=0,
            gas_price=0,
            gas_limit=400_000,
            nonce=0,
            relay_hub=RELAY_HUB,
            relay=RELAY_ADDRESS,
        )
        payload = {
            "type": "PROXY",
            "from": SIGNER.address,
            "to": PROXY_FACTORY,
            "proxyWallet": wallet,
            "data": "0x" + data.hex(),
            "nonce": "0",
            "signature": "0x" + sign_personal(SIGNER, digest).hex(),
            "signatureParams": {
                "gasLimit": "400000",
                "gasPrice": "0",
                "relay": RELAY_ADDRESS,
                "relayHub": RELAY_HUB,
                "relayerFee": "0",
            },
            "metadata": "merge it",
        }
        submitted = (await submit(chain_sim, payload)).json()
        assert submitted["state"] == "STATE_NEW"
        states = []
        for _ in range(8):
            (tx,) = (
                await http.get(chain_sim.urls.relayer + "/transaction", params={"id": submitted["transactionID"]})
            ).json()
            states.append(tx["state"])
            await trio.sleep(0.5)
        assert states[0] == "STATE_EXECUTED"
        assert "STATE_MINED" in states
        assert states[-1] == "STATE_CONFIRMED"
        assert (tx["transactionHash"], tx["proxyAddress"], tx["metadata"]) == (
            submitted["transactionHash"],
            wallet,
            "merge it",
        )
        mine = (await http.get(chain_sim.urls.relayer + "/transactions", headers=AUTH)).json()
        assert [t["transactionID"] for t in mine] == [submitted["transactionID"]]
        again = await http.get(
            chain_sim.urls.relayer + "/relay-payload", params={"address": SIGNER.address, "type": "PROXY"}
        )
        assert again.json()["nonce"] == "1"
    assert chain_sim.exchange.wallet(wallet).collateral == 3 * U
    assert json.dumps(mine)  # plain JSON


async def test_the_retired_neg_risk_adapter_still_merges_and_redeems_here(
    chain_sim: SimVenue, autojump_clock: trio.testing.MockClock
) -> None:
    market = next(m for m in chain_sim.exchange.markets if m.neg_risk)
    yes, no = market.token_ids
    chain_sim.exchange.fund(SIGNER.address, collateral=0, shares={yes: 5 * U, no: 3 * U})
    merged = await rpc(
        chain_sim, "eth_sendRawTransaction", signed(legacy_neg_risk_merge_call(market.condition_id, 3 * U), 0)
    )
    chain_sim.exchange.resolve(market.condition_id, 0, chain_sim.now())
    redeem = legacy_neg_risk_redeem_call(market.condition_id, (2 * U, 0))
    redeemed = await rpc(chain_sim, "eth_sendRawTransaction", signed(redeem, 1))
    await trio.sleep(2.1)
    for sent in (merged, redeemed):
        assert (await rpc(chain_sim, "eth_getTransactionReceipt", sent["result"]))["result"]["status"] == "0x1"
    wallet = chain_sim.exchange.wallet(SIGNER.address)
    assert (wallet.collateral, wallet.shares[yes], wallet.shares[no]) == (5 * U, 0, 0)
