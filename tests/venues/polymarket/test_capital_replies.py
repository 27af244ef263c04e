"""The live `Capital`, the JSON-RPC client and the relayer client against bad and odd replies (httpx.MockTransport,
the captured production replies): a clear error or a counted value, never a crash or a silent wrong value."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from trader.config import Secret
from trader.venues.base import CapitalOp, CapitalOpKind, Collateral, Resolution
from trader.venues.errors import VenueProtocolError, VenueRequestError
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.capital import ChainSettings, PolymarketCapital, open_polymarket_capital
from trader.venues.polymarket.relayer import RelayerClient, RelayerRefused, RelayerState, RelayerSubmitted
from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.rpc import JsonRpcClient, JsonRpcError
from trader.venues.polymarket.signing import OrderSigner

CAPTURED = Path(__file__).parents[2] / "fixtures" / "polymarket" / "captured"
KEY = "0x" + "4c" * 32
CREDS = ApiCredentials(
    "00000000-0000-0000-0000-000000000001", base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase"
)
CONDITION = "0x8ccc3f4951ff02c1d34b87988752b4444ad17228732780a6cf22afefe8478bb6"  # the captured closed market
D = Decimal
Route = Callable[[httpx.Request], httpx.Response]


def captured(name: str) -> bytes:
    return (CAPTURED / name).read_bytes()


def reply(body: object, status: int = 200) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content)


@asynccontextmanager
async def capital(routes: dict[str, Route]) -> AsyncIterator[PolymarketCapital]:
    def handle(request: httpx.Request) -> httpx.Response:
        for prefix, route in routes.items():
            if f"{request.url.host}{request.url.path}".startswith(prefix):
                return route(request)
        return reply({"error": "not found"}, 404)

    transport = httpx.MockTransport(handle)
    settings = ChainSettings(rpc_url="http://rpc.test/", relayer_url="http://relayer.test")
    signer = OrderSigner(KEY)
    async with (
        open_rest_client("http://clob.test", signer, CREDS, transport=transport) as rest,
        open_polymarket_capital(settings, signer, rest, gamma_url="http://gamma.test", transport=transport) as cap,
    ):
        yield cap


# ---------------------------------------------------------------------------------------------------------------
# Collateral


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (captured("http_balance_allowance_collateral.json"), Collateral(balance=D(1000))),
        ({"balance": "5000000", "allowance": "0"}, Collateral(balance=D(5), missing_allowances=("exchange",))),
        (
            {"balance": "2500000", "allowances": {"0xE111180000d2663C0091e4f400237545B87B996B": "0", "0xB": "10"}},
            Collateral(balance=D("2.5"), missing_allowances=("0xE111180000d2663C0091e4f400237545B87B996B",)),
        ),
        ({"balance": 7}, Collateral(balance=D("0.000007"))),
    ],
    ids=["captured", "single-zero", "map", "unreported"],
)
async def test_collateral_and_missing_allowances(body: object, expected: Collateral) -> None:
    async with capital({"clob.test/balance-allowance": lambda r: reply(body)}) as cap:
        assert await cap.collateral() == expected
        assert cap.statistics().missing_allowances_unreported == (1 if expected.balance == D("0.000007") else 0)


@pytest.mark.parametrize(
    "body",
    [
        captured("http_balance_allowance_no_allowance.json"),  # "250.500000": not integer base units
        {"balance": "-1"},
        {"balance": "12", "allowances": {"0xE": "lots"}},
        b"not json",
    ],
)
async def test_unreadable_balances_are_protocol_errors(body: object) -> None:
    async with capital({"clob.test/balance-allowance": lambda r: reply(body)}) as cap:
        with pytest.raises(VenueProtocolError, match="balance-allowance"):
            await cap.collateral()


# ---------------------------------------------------------------------------------------------------------------
# Resolutions


def _clob(closed: bool, winners: list[bool]) -> dict[str, object]:
    tokens = [
        {"token_id": str(i + 1), "outcome": o, "winner": w} for i, (o, w) in enumerate(zip("YN", winners, strict=False))
    ]
    return {"condition_id": CONDITION, "closed": closed, "tokens": tokens}


def _gamma(prices: object, *, closed: bool = True, status: str | None = "resolved") -> list[dict[str, object]]:
    market: dict[str, object] = {"id": "1", "conditionId": CONDITION, "closed": closed, "outcomePrices": prices}
    if status is not None:
        market["umaResolutionStatus"] = status
    return [market]


async def test_the_captured_closed_market_resolved_no() -> None:
    routes = {
        f"clob.test/markets/{CONDITION}": lambda r: reply(captured("clob_market_closed_binary_accepting_false.json"))
    }
    async with capital(routes) as cap:
        assert await cap.resolution(CONDITION) == Resolution(condition_id=CONDITION, payouts=(D(0), D(1)))


async def test_an_open_market_has_no_resolution_and_gamma_is_not_asked() -> None:
    def gamma(request: httpx.Request) -> httpx.Response:
        raise AssertionError("gamma asked")

    routes = {f"clob.test/markets/{CONDITION}": lambda r: reply(_clob(False, [False, False])), "gamma.test": gamma}
    async with capital(routes) as cap:
        assert await cap.resolution(CONDITION) is None


@pytest.mark.parametrize(
    ("clob", "gamma", "expected", "payout_errors", "flag_errors"),
    [
        (_clob(True, [False, False]), _gamma('["0.5", "0.5"]'), (D("0.5"), D("0.5")), 0, 0),
        (_clob(True, [False, False]), _gamma(["0", "1"]), (D(0), D(1)), 0, 0),  # the array form
        (None, _gamma('["1", "0"]'), (D(1), D(0)), 0, 0),  # the CLOB does not know it
        (_clob(True, [True, True]), _gamma('["1", "0"]'), (D(1), D(0)), 0, 1),  # nonsense flags: Gamma decides
        (_clob(True, [True]), _gamma('["1", "0"]'), (D(1), D(0)), 0, 1),
        (_clob(True, [False, False]), _gamma('["0.6", "0.6"]'), None, 1, 0),
        (_clob(True, [False, False]), _gamma('["0", "0"]'), None, 1, 0),  # captured legacy zero-zero
        (_clob(True, [False, False]), _gamma('["1.5", "-0.5"]'), None, 1, 0),
        (_clob(True, [False, False]), _gamma('["1", "0", "0"]'), None, 1, 0),
        (_clob(True, [False, False]), _gamma("not json"), None, 1, 0),
        (_clob(True, [False, False]), _gamma('["0.9995", "0.0005"]', status=None), None, 0, 0),  # last prices
        (_clob(True, [False, False]), _gamma('["1", "0"]', status="proposed"), None, 0, 0),  # UMA not done
        (_clob(True, [False, False]), _gamma('["1", "0"]', closed=False), None, 0, 0),
        (_clob(True, [False, False]), [], None, 0, 0),
    ],
)
async def test_gamma_decides_what_the_clob_flags_do_not(
    clob: object, gamma: object, expected: tuple[Decimal, Decimal] | None, payout_errors: int, flag_errors: int
) -> None:
    routes = {
        f"clob.test/markets/{CONDITION}": lambda r: reply(clob) if clob is not None else reply({"error": "nf"}, 404),
        "gamma.test/markets": lambda r: reply(gamma),
    }
    async with capital(routes) as cap:
        found = await cap.resolution(CONDITION)
        assert found == (None if expected is None else Resolution(condition_id=CONDITION, payouts=expected))
        stats = cap.statistics()
        assert (stats.payout_errors, stats.resolution_protocol_errors) == (payout_errors, flag_errors)


async def test_resolution_errors_are_clear() -> None:
    other = _clob(True, [True, False]) | {"condition_id": "0x" + "11" * 32}
    async with capital({f"clob.test/markets/{CONDITION}": lambda r: reply(other)}) as cap:
        with pytest.raises(VenueProtocolError, match="the reply is about"):
            await cap.resolution(CONDITION)
        with pytest.raises(ValueError, match="condition_id"):
            await cap.resolution("0x1234")
    async with capital({f"clob.test/markets/{CONDITION}": lambda r: reply({"error": "down"}, 503)}) as cap:
        with pytest.raises(VenueRequestError) as error:
            await cap.resolution(CONDITION)
        assert error.value.is_server_error
    routes = {
        f"clob.test/markets/{CONDITION}": lambda r: reply(_clob(True, [False, False])),
        "gamma.test/markets": lambda r: reply({"not": "a list"}),
    }
    async with capital(routes) as cap:
        with pytest.raises(VenueProtocolError, match="gamma"):
            await cap.resolution(CONDITION)


async def test_amounts_finer_than_base_units_are_refused_before_anything_is_asked() -> None:
    op = CapitalOp(
        kind=CapitalOpKind.MERGE,
        condition_id=CONDITION,
        neg_risk=False,
        token_ids=("1", "2"),
        amounts=(D("0.0000001"), D("0.0000001")),
    )
    async with capital({}) as cap:
        with pytest.raises(ValueError, match="base units"):
            await cap.prepare_op(op)


# ---------------------------------------------------------------------------------------------------------------
# The JSON-RPC client


async def _rpc(answer: Callable[[dict[str, object]], httpx.Response]) -> JsonRpcClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return answer(json.loads(request.content))

    return JsonRpcClient(httpx.AsyncClient(transport=httpx.MockTransport(handle)), "http://rpc.test")


def _result(value: object) -> Callable[[dict[str, object]], httpx.Response]:
    return lambda body: reply({"jsonrpc": "2.0", "id": body["id"], "result": value})


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (lambda body: reply(b"<html>bad gateway</html>"), "not a JSON-RPC object"),
        (lambda body: reply({"jsonrpc": "2.0", "id": 999, "result": "0x1"}), "for request 999"),
        (lambda body: reply({"jsonrpc": "1.0", "id": body["id"], "result": "0x1"}), "not a JSON-RPC 2.0"),
        (lambda body: reply({"jsonrpc": "2.0", "id": body["id"], "error": "boom"}), "not an object"),
        (lambda body: reply({"jsonrpc": "2.0", "id": body["id"], "error": {"code": "x"}}), "no integer code"),
        (_result("12"), "0x-hex quantity"),
        (_result("0xzz"), "0x-hex quantity"),
        (_result(None), "0x-hex quantity"),
        (_result(True), "0x-hex quantity"),
    ],
)
async def test_malformed_json_rpc_replies_are_protocol_errors(
    answer: Callable[[dict[str, object]], httpx.Response], match: str
) -> None:
    rpc = await _rpc(answer)
    with pytest.raises(VenueProtocolError, match=match):
        await rpc.block_number()
    assert rpc.protocol_errors == 1


async def test_json_rpc_errors_and_reverts() -> None:
    revert = {"code": 3, "message": "execution reverted: result for condition not received yet", "data": "0x08c3"}
    rpc = await _rpc(lambda body: reply({"jsonrpc": "2.0", "id": body["id"], "error": revert}))
    with pytest.raises(JsonRpcError) as error:
        await rpc.estimate_gas({"to": "0x" + "00" * 20})
    assert error.value.reverted
    assert error.value.revert_reason == "result for condition not received yet"
    assert (error.value.rpc_code, error.value.rpc_data, error.value.retryable) == (3, "0x08c3", False)

    low = {"code": -32000, "message": "nonce too low"}
    rpc = await _rpc(lambda body: reply({"jsonrpc": "2.0", "id": body["id"], "error": low}))
    with pytest.raises(JsonRpcError) as refused:
        await rpc.send_raw_transaction(b"\x02")
    assert not refused.value.reverted
    assert refused.value.revert_reason == "nonce too low"

    rpc = await _rpc(lambda body: reply({"error": "busy"}, 503))
    with pytest.raises(VenueRequestError) as server:
        await rpc.chain_id()
    assert server.value.is_server_error
    assert not isinstance(server.value, JsonRpcError)


@pytest.mark.parametrize(
    ("receipt", "match"),
    [
        ({"transactionHash": "0x" + "1" * 64, "blockNumber": "0x10", "status": "0x2"}, "0x0 or 0x1"),
        ({"transactionHash": "0x" + "1" * 64, "blockNumber": "0x10"}, "status"),
        ({"transactionHash": "0x12", "blockNumber": "0x10", "status": "0x1"}, "transactionHash"),
        ({"transactionHash": "0x" + "1" * 64, "status": "0x1"}, "blockNumber"),
        ("a receipt", "receipt object"),
    ],
)
async def test_malformed_receipts_are_protocol_errors(receipt: object, match: str) -> None:
    rpc = await _rpc(_result(receipt))
    with pytest.raises(VenueProtocolError, match=match):
        await rpc.receipt("0x" + "1" * 64)


async def test_rpc_readers_accept_what_nodes_send() -> None:
    receipt = {"transactionHash": "0x" + "AB" * 32, "blockNumber": "0x10", "status": "0x0", "gasUsed": "0x5208"}
    read = await (await _rpc(_result(receipt))).receipt("0x" + "ab" * 32)
    assert read is not None
    assert (read.tx_hash, read.block_number, read.status, read.gas_used, read.revert_reason) == (
        "0x" + "ab" * 32,
        16,
        0,
        21000,
        "",
    )
    assert await (await _rpc(_result(None))).receipt("0x" + "ab" * 32) is None
    assert await (await _rpc(_result(None))).transaction("0x" + "ab" * 32) is None
    legacy = {"hash": "0x" + "cd" * 32, "blockNumber": None, "nonce": "0x3", "gasPrice": "0x64"}
    tx = await (await _rpc(_result(legacy))).transaction("0x" + "cd" * 32)
    assert tx is not None
    assert (tx.block_number, tx.nonce, tx.max_fee_per_gas) == (None, 3, 100)
    with pytest.raises(VenueProtocolError, match="32-byte"):
        await (await _rpc(_result("0x1234"))).send_raw_transaction(b"\x02")
    block = await (await _rpc(_result({"number": "0x2a"}))).latest_block()
    assert (block.number, block.base_fee_per_gas) == (42, None)


# ---------------------------------------------------------------------------------------------------------------
# The relayer client


def _relayer(answer: Route) -> RelayerClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return RelayerClient(http, "http://relayer.test/", api_key=Secret("k"), api_key_address="0x" + "11" * 20)


async def test_relayer_replies() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/submit":
            return reply({"transactionID": "t-1", "transactionHash": "", "state": "STATE_NEW"})
        return reply({"nonce": "7", "address": "0x" + "22" * 20})

    relayer = _relayer(answer)
    assert await relayer.nonce("0x" + "33" * 20, "SAFE") == 7
    assert await relayer.relay_payload("0x" + "33" * 20) == ("0x" + "22" * 20, 7)
    assert await relayer.submit({"type": "SAFE"}) == RelayerSubmitted(transaction_id="t-1", transaction_hash=None)
    assert seen[-1].headers["RELAYER_API_KEY"] == "k"
    assert "RELAYER_API_KEY" not in seen[0].headers  # the key goes only where it is needed

    refused = _relayer(lambda r: reply({"error": "invalid signature"}, 400))
    assert await refused.submit({}) == RelayerRefused(message="invalid signature")
    assert await _relayer(lambda r: reply(b"gateway", 400)).submit({}) == RelayerRefused(message="gateway")
    with pytest.raises(VenueRequestError) as unauthorized:
        await _relayer(lambda r: reply({"error": "invalid authorization"}, 401)).submit({})
    assert unauthorized.value.status == 401

    listed = [{"transactionID": "t-1", "state": "STATE_MINED", "metadata": "m", "transactionHash": "0x1"}]
    found = await _relayer(lambda r: reply(listed)).transaction("t-1")
    assert found is not None
    assert (found.state, found.metadata, found.error) == (RelayerState.MINED, "m", "")
    assert await _relayer(lambda r: reply([])).transaction("t-2") is None


@pytest.mark.parametrize(
    ("answer", "call", "match"),
    [
        (lambda r: reply({"nonce": "seven"}), "nonce", "not a decimal integer"),
        (lambda r: reply({"nonce": "1"}), "relay_payload", "no relay address"),
        (lambda r: reply({"state": "STATE_NEW"}), "submit", "unexpected reply shape"),
        (lambda r: reply({"transactionID": ""}), "submit", "no transactionID"),
        (lambda r: reply([{"transactionID": "t", "state": "STATE_WEIRD"}]), "transaction", "unknown state"),
        (lambda r: reply(b"nope"), "transactions", "not JSON"),
    ],
)
async def test_malformed_relayer_replies_are_protocol_errors(answer: Route, call: str, match: str) -> None:
    relayer = _relayer(answer)
    calls = {
        "nonce": lambda: relayer.nonce("0x" + "33" * 20, "SAFE"),
        "relay_payload": lambda: relayer.relay_payload("0x" + "33" * 20),
        "submit": lambda: relayer.submit({}),
        "transaction": lambda: relayer.transaction("t"),
        "transactions": relayer.transactions,
    }
    with pytest.raises(VenueProtocolError, match=match):
        await calls[call]()


async def test_a_relayer_client_without_a_key_says_so() -> None:
    relayer = RelayerClient(
        httpx.AsyncClient(transport=httpx.MockTransport(lambda r: reply({}))),
        "http://relayer.test",
        api_key=None,
        api_key_address=None,
    )
    with pytest.raises(VenueProtocolError, match="no API key"):
        await relayer.submit({})


async def test_a_confirmed_operation_has_the_clob_re_read_the_wallet_until_it_succeeds() -> None:
    tx_hash = "0x" + "ab" * 32
    updates: list[str] = []
    failing = [True]

    def node(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        result = {
            "eth_getTransactionReceipt": {"transactionHash": tx_hash, "blockNumber": "0x10", "status": "0x1"},
            "eth_blockNumber": "0x20",
        }[body["method"]]
        return reply({"jsonrpc": "2.0", "id": body["id"], "result": result})

    def update(request: httpx.Request) -> httpx.Response:
        updates.append(request.url.params["asset_type"])
        if failing[0]:
            failing[0] = False
            return reply({"error": "busy"}, 503)
        return reply({})

    routes: dict[str, Route] = {"rpc.test": node, "clob.test/balance-allowance/update": update}
    async with capital(routes) as cap:
        first = await cap.op_status(tx_hash)
        assert first.state.value == "CONFIRMED"
        assert cap.statistics().balance_refresh_errors == 1
        await cap.op_status(tx_hash)  # tried again: it failed the first time
        await cap.op_status(tx_hash)  # done: not asked again
        assert updates == ["COLLATERAL", "COLLATERAL"]
