"""The live `Capital` (trader.venues.base): collateral, resolutions, merges and redemptions on Polymarket.

```
async with open_polymarket_venue(venue_settings, signer) as venue:
    async with open_polymarket_capital(ChainSettings(...), signer, venue.rest, gamma_url=GAMMA_URL) as capital:
        await capital.collateral()                       # GET /balance-allowance (COLLATERAL)
        await capital.resolution(condition_id)           # CLOB tokens[].winner, else Gamma closed + outcomePrices
        prepared = await capital.prepare_op(op)          # built and signed; prepared.op_id known before sending
        ...write prepared.op_id ahead...
        status = await capital.send_op(prepared)         # PENDING, or FAILED (refused: a value); raises: unknown
        status = await capital.op_status(prepared.op_id) # also after a restart
```

How an operation travels depends on the signer's wallet (`OrderSigner.signature_type`):

* **EOA (0)**: its own EIP-1559 Polygon transaction to the collateral adapter (`trader.venues.polymarket.chain`),
  signed here: nonce `eth_getTransactionCount(pending)`, gas `eth_estimateGas` x `gas_limit_multiplier`, tip the
  node's `eth_maxPriorityFeePerGas` clamped to [`min_priority_fee_per_gas_gwei`, `max_priority_fee_per_gas_gwei`],
  fee cap `2 x base fee + tip` but never above `max_fee_per_gas_gwei`. `op_id` is the transaction hash. A call the
  node says would revert (no shares, market not resolved) is not sent: `send_op` answers FAILED with the reason.
  `op_status` reads the receipt: PENDING while there is none (the message says when the fee cap is below the base
  fee: a stuck transaction is reported, never replaced with a new nonce here), CONFIRMED once status 1 has
  `confirmations` blocks, FAILED on status 0, NOT_FOUND when the node knows no such transaction.
* **proxy (1), Safe (2), deposit wallet (3)**: through Polymarket's relayer, as the official clients do: the
  relayer's nonce for the wallet, the EOA's signature over what the wallet will execute (`chain.py` says which), and
  `op_id` is that signed hash. The relayer's transaction id is remembered in memory, and the submission carries
  `metadata` = `trader op <op_id>`, so after a restart `op_status` finds it again in `GET /transactions`: the engine
  stores only `op_id`. Relayer states NEW / EXECUTED / MINED are PENDING, CONFIRMED is CONFIRMED, FAILED / INVALID
  are FAILED (with the relayer's words). A submission the relayer refuses (HTTP 400) is FAILED.

Once `op_status` sees an operation CONFIRMED, it asks the CLOB to re-read the wallet (`/balance-allowance/update`
for pUSD and, when this process prepared it, the condition's two tokens): the CLOB caches balances, and freed pUSD
must back orders at once.

Use one operation at a time per wallet (prepare, write ahead, send, wait): nonces come from the node or the relayer
when an operation is prepared, so two operations prepared before the first one lands get the same nonce and the
second is refused (or, through the relayer, may even get the first one's id). The id is what executes on chain: the
same operation prepared again while the wallet's nonce has not moved (after a refusal, or a relayer estimate that
failed) gets the same `op_id` again, a retry of the same chain operation, not a new one.

Resolutions: the CLOB market (`GET /markets/{condition_id}`): not closed is None; closed with exactly one
`winner` is (1, 0) or (0, 1). Otherwise (no winner flagged: a 50/50 market, or flags not set yet) Gamma decides:
`closed` with `outcomePrices` (a JSON-encoded string or an array) of exactly ["1","0"], ["0","1"] or ["0.5","0.5"]
(and `umaResolutionStatus` "resolved" when Gamma gives one). Prices that do not sum to 1, or are not numbers in [0, 1],
are a counted protocol error (`payout_errors`) and give None, never a value; prices that sum to 1 but are not final
payouts (a closed market's last trade prices) give None too.

Secrets: the EOA key stays in `OrderSigner`; the relayer API key is a `Secret`, sent only in its two headers.
"""

from __future__ import annotations

import dataclasses
import math
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Final

import httpx
import msgspec
import structlog

from trader.config import Secret
from trader.errors import ConfigError, InputError
from trader.venues.base import (
    CapitalOp,
    CapitalOpKind,
    CapitalOpState,
    CapitalOpStatus,
    Collateral,
    PreparedCapitalOp,
    Resolution,
)
from trader.venues.errors import VenueError, VenueProtocolError, map_exceptions, truncate
from trader.venues.polymarket.chain import (
    DEPOSIT_WALLET_FACTORY,
    PROXY_FACTORY,
    RELAY_HUB,
    ContractCall,
    base_units,
    deposit_batch_digest,
    merge_call,
    proxy_call,
    proxy_transaction_hash,
    redeem_call,
    safe_signature,
    safe_transaction_hash,
    sign_personal,
)
from trader.venues.polymarket.gamma import GAMMA_URL
from trader.venues.polymarket.relayer import (
    RELAYER_URL,
    RelayerClient,
    RelayerRefused,
    RelayerState,
    RelayerTransaction,
)
from trader.venues.polymarket.rest import HTTP_EXCEPTIONS, AssetType, PolymarketRestClient, request_error
from trader.venues.polymarket.rpc import JsonRpcClient, JsonRpcError
from trader.venues.polymarket.signing import (
    CHAIN_ID_POLYGON,
    POLY_1271,
    POLY_GNOSIS_SAFE,
    POLY_PROXY,
    SIGNATURE_TYPE_EOA,
    OrderSigner,
    parse_address,
    parse_bytes32,
)

__all__ = [
    "DEFAULT_RPC_URL",
    "CapitalStatistics",
    "ChainSettings",
    "PolymarketCapital",
    "UnknownCapitalOp",
    "open_polymarket_capital",
]

log = structlog.get_logger(__name__)

#: polymarket-client 0.14.0's default Polygon node; use your own in production.
DEFAULT_RPC_URL: Final = "https://polygon.drpc.org"
_GWEI: Final = Decimal(10**9)
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_CACHE: Final = 10_000
_METADATA_PREFIX: Final = "trader op "
_FINAL_PAYOUTS: Final = frozenset(
    {(Decimal(1), Decimal(0)), (Decimal(0), Decimal(1)), (Decimal("0.5"), Decimal("0.5"))}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSettings:
    """`TRADER_CHAIN__*`: merges and redemptions on Polygon (the live `Capital`).

    - `rpc_url` (polymarket-client's public node): the Polygon JSON-RPC endpoint an EOA sends its transactions to
      (and proxy wallets estimate gas with). Use your own node in production. `trader run --venue sim` uses the
      sim's own node and relayer instead of `rpc_url` and `relayer_url`.
    - `relayer_url` (https://relayer-v2.polymarket.com), `relayer_api_key` (a secret) and `relayer_api_key_address`:
      Polymarket's relayer, for proxy, Safe and deposit wallets (signature types 1-3); required for those.
    - `chain_id` (137): the node must say so.
    - `gas_limit_multiplier` (1.3): the node's gas estimate times this.
    - `max_fee_per_gas_gwei` (500), `max_priority_fee_per_gas_gwei` (100), `min_priority_fee_per_gas_gwei` (30,
      Polygon's minimum tip is 25): the fee caps of an EOA's transactions.
    - `confirmations` (3): blocks (its own included) before a mined transaction is CONFIRMED.
    - `proxy_gas_limit` (500000): a proxy wallet's relay gas limit when the node cannot estimate one.
    - `deposit_deadline_secs` (600): how long a deposit wallet's signed batch stays valid.
    """

    rpc_url: str = DEFAULT_RPC_URL
    relayer_url: str = RELAYER_URL
    relayer_api_key: Secret | None = None
    relayer_api_key_address: str | None = None
    chain_id: int = CHAIN_ID_POLYGON
    gas_limit_multiplier: Decimal = Decimal("1.3")
    max_fee_per_gas_gwei: Decimal = Decimal(500)
    max_priority_fee_per_gas_gwei: Decimal = Decimal(100)
    min_priority_fee_per_gas_gwei: Decimal = Decimal(30)
    confirmations: int = 3
    proxy_gas_limit: int = 500_000
    deposit_deadline_secs: int = 600

    def __post_init__(self) -> None:
        if not self.gas_limit_multiplier >= 1:
            raise InputError("gas_limit_multiplier", "must be >= 1")
        fees = (self.min_priority_fee_per_gas_gwei, self.max_priority_fee_per_gas_gwei, self.max_fee_per_gas_gwei)
        if not 0 <= fees[0] <= fees[1] <= fees[2]:
            raise InputError(
                "max_fee_per_gas_gwei",
                "expected 0 <= min_priority_fee_per_gas_gwei <= max_priority_fee_per_gas_gwei <= max_fee_per_gas_gwei",
            )
        if self.confirmations < 1:
            raise InputError("confirmations", "must be >= 1")
        if self.proxy_gas_limit < 21_000:
            raise InputError("proxy_gas_limit", "must be >= 21000")
        if self.deposit_deadline_secs < 60:
            raise InputError("deposit_deadline_secs", "must be >= 60")
        if self.relayer_api_key_address is not None:
            parse_address(self.relayer_api_key_address, "relayer_api_key_address")

    def wei(self, gwei: Decimal) -> int:
        return int((gwei * _GWEI).to_integral_value())

    def __repr__(self) -> str:
        # A node's URL often carries its API key in the path or the query: only its scheme and host are shown.
        fields = ", ".join(
            f"{f.name}={_origin(value) if f.name == 'rpc_url' else value!r}"
            for f in dataclasses.fields(self)
            for value in (getattr(self, f.name),)
        )
        return f"ChainSettings({fields})"

    __str__ = __repr__


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return repr(shown + ("/..." if parts.path.strip("/") or parts.query else ""))


@dataclass(frozen=True, slots=True)
class CapitalStatistics:
    prepared: int
    sent: int
    refused: int  # refused by the node or the relayer (or not sent: the node said it would revert)
    fee_capped: int  # transactions whose fee cap was held at max_fee_per_gas_gwei
    payout_errors: int  # resolutions whose payouts were not numbers in [0, 1] summing to 1
    resolution_protocol_errors: int  # CLOB winner flags that made no sense (both, or not two tokens)
    hash_mismatches: int  # the node named another transaction hash than the one signed
    missing_allowances_unreported: int  # balance replies without any allowance
    balance_refresh_errors: int  # /balance-allowance/update after a confirmed operation failed (retried next time)
    rpc_requests: int
    rpc_errors: int
    rpc_protocol_errors: int
    relayer_requests: int


class UnknownCapitalOp(VenueError):
    """`send_op` of an operation this process did not prepare (after a restart): ask `op_status`, or prepare the
    operation again (it gets a new id)."""


@dataclass(frozen=True, slots=True)
class _Transaction:
    raw: bytes
    max_fee_per_gas: int
    refusal: str | None  # the node said it would revert: not sent


@dataclass(frozen=True, slots=True)
class _Relay:
    payload: dict[str, Any]
    refusal: str | None


class _WireGammaResolution(msgspec.Struct):
    conditionId: str | None = None
    closed: bool | None = None
    outcomePrices: str | list[str] | None = None
    umaResolutionStatus: str | None = None


def _bounded_put(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE:
        cache.popitem(last=False)


class VenueResolutions:
    """How markets resolved, from the venue's public word: the CLOB market's `winner` flags, else Gamma's `closed` and
    `outcomePrices` (see the module's docstring). Needs no key: paper trading asks it too."""

    def __init__(self, rest: PolymarketRestClient, http: httpx.AsyncClient, gamma_url: str = GAMMA_URL) -> None:
        self.rest = rest
        self._http = http
        self._gamma_url = gamma_url.rstrip("/")
        self.payout_errors = 0  # resolutions whose payouts were not numbers in [0, 1] summing to 1
        self.protocol_errors = 0  # CLOB winner flags that made no sense (both, or not two tokens)

    # -- resolutions --------------------------------------------------------------------------------------------

    async def resolution(self, condition_id: str) -> Resolution | None:
        """How `condition_id` resolved, or None while it has not (see the module's docstring)."""
        try:
            parse_bytes32(condition_id, "condition_id")
        except InputError as exc:
            raise ValueError(str(exc)) from None
        market = await self.rest.clob_market(condition_id)
        if market is not None and not market.closed:
            return None
        if market is not None:
            winners = market.winners
            if len(winners) != 2 or all(winners):
                self.protocol_errors += 1
                log.warning("capital_winner_flags_invalid", condition_id=condition_id, winners=list(winners))
            elif winners[0] or winners[1]:
                payouts = (Decimal(1), Decimal(0)) if winners[0] else (Decimal(0), Decimal(1))
                return Resolution(condition_id=condition_id, payouts=payouts)
        return await self._gamma_resolution(condition_id)

    async def _gamma_resolution(self, condition_id: str) -> Resolution | None:
        what = "gamma GET /markets"
        with map_exceptions(HTTP_EXCEPTIONS, what=what):
            response = await self._http.get(
                self._gamma_url + "/markets", params={"condition_ids": condition_id, "closed": "true"}
            )
        if not response.is_success:
            raise request_error(response)
        try:
            items = msgspec.json.decode(response.content, type=list[_WireGammaResolution])
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise VenueProtocolError(f"{what}: unexpected reply: {truncate(str(exc))}") from None
        found = [m for m in items if (m.conditionId or "").lower() == condition_id.lower()]
        if not found or not found[0].closed:
            return None
        market = found[0]
        if market.umaResolutionStatus not in (None, "", "resolved"):
            return None
        payouts = self._payouts(market.outcomePrices, condition_id)
        if payouts is None or payouts not in _FINAL_PAYOUTS:
            return None
        return Resolution(condition_id=condition_id, payouts=payouts)

    def _payouts(self, prices: str | list[str] | None, condition_id: str) -> tuple[Decimal, Decimal] | None:
        """Gamma's `outcomePrices` as (YES, NO) payouts; None, counted, when they are not a payout vector."""
        values: object = prices
        if isinstance(prices, str):
            try:
                values = msgspec.json.decode(prices)
            except msgspec.DecodeError:
                values = None
        try:
            if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
                raise InvalidOperation
            numbers = (Decimal(values[0]), Decimal(values[1]))
            if not all(v.is_finite() and 0 <= v <= 1 for v in numbers) or sum(numbers) != 1:
                raise InvalidOperation
        except InvalidOperation:
            self.payout_errors += 1
            log.warning("capital_payouts_invalid", condition_id=condition_id, outcome_prices=truncate(repr(prices)))
            return None
        return numbers


class PolymarketCapital:
    """The live `Capital`; build it with `open_polymarket_capital`."""

    def __init__(
        self,
        settings: ChainSettings,
        signer: OrderSigner,
        rest: PolymarketRestClient,
        *,
        http: httpx.AsyncClient,
        gamma_url: str = GAMMA_URL,
        wall_secs: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.rest = rest
        self.rpc = JsonRpcClient(http, settings.rpc_url)
        self.relayer = RelayerClient(
            http,
            settings.relayer_url,
            api_key=settings.relayer_api_key,
            api_key_address=settings.relayer_api_key_address,
        )
        self._http = http
        self.resolutions = VenueResolutions(rest, http, gamma_url)
        self._wall_secs = wall_secs
        self._prepared: OrderedDict[str, _Transaction | _Relay] = OrderedDict()
        self._refused: OrderedDict[str, str] = OrderedDict()
        self._relayer_ids: OrderedDict[str, str] = OrderedDict()
        self._ops: OrderedDict[str, CapitalOp] = OrderedDict()
        self._refreshed: OrderedDict[str, bool] = OrderedDict()  # confirmed ops whose balances the CLOB re-read
        self._chain_checked = False
        self._counts = dict.fromkeys(
            (
                "prepared",
                "sent",
                "refused",
                "fee_capped",
                "mismatch",
                "unreported",
                "refresh_errors",
            ),
            0,
        )

    @property
    def uses_relayer(self) -> bool:
        return self.signer.signature_type != SIGNATURE_TYPE_EOA

    def statistics(self) -> CapitalStatistics:
        c = self._counts
        return CapitalStatistics(
            prepared=c["prepared"],
            sent=c["sent"],
            refused=c["refused"],
            fee_capped=c["fee_capped"],
            payout_errors=self.resolutions.payout_errors,
            resolution_protocol_errors=self.resolutions.protocol_errors,
            hash_mismatches=c["mismatch"],
            missing_allowances_unreported=c["unreported"],
            balance_refresh_errors=c["refresh_errors"],
            rpc_requests=self.rpc.requests,
            rpc_errors=self.rpc.errors,
            rpc_protocol_errors=self.rpc.protocol_errors,
            relayer_requests=self.relayer.requests,
        )

    # -- collateral ---------------------------------------------------------------------------------------------

    async def collateral(self) -> Collateral:
        """`GET /balance-allowance` (COLLATERAL): the wallet's pUSD and the exchange spenders whose allowance is 0."""
        reply = await self.rest.balance_allowance(AssetType.COLLATERAL)
        if reply.allowances is not None:
            missing = tuple(sorted(spender for spender, value in reply.allowances.items() if not value))
        elif reply.allowance is not None:
            missing = () if reply.allowance else ("exchange",)
        else:
            self._counts["unreported"] += 1
            if self._counts["unreported"] == 1:
                log.warning("capital_allowances_unreported")
            missing = ()
        return Collateral(balance=reply.balance, missing_allowances=missing)

    # -- resolutions ---------------------------------------------------------------------------------------------

    async def resolution(self, condition_id: str) -> Resolution | None:
        """How `condition_id` resolved, or None while it has not (see the module's docstring)."""
        return await self.resolutions.resolution(condition_id)

    # -- operations ---------------------------------------------------------------------------------------------

    @staticmethod
    def _call(op: CapitalOp) -> ContractCall:
        try:
            if op.kind is CapitalOpKind.MERGE:
                return merge_call(op.condition_id, base_units(op.amounts[0], "amount"), neg_risk=op.neg_risk)
            for amount in op.amounts:
                base_units(amount, "amount")
            return redeem_call(op.condition_id, neg_risk=op.neg_risk)
        except InputError as exc:
            raise ValueError(f"{op.kind} {op.condition_id}: {exc}") from None

    async def prepare_op(self, op: CapitalOp) -> PreparedCapitalOp:
        """Build and sign `op` (see the module's docstring); nothing is sent. `ValueError` for an operation that
        cannot be expressed (an amount finer than 6 decimals, a malformed condition id); a `VenueError` when the
        node or the relayer could not be asked."""
        call = self._call(op)
        kind = self.signer.signature_type
        prepared: _Transaction | _Relay
        if kind == SIGNATURE_TYPE_EOA:
            op_id, prepared = await self._prepare_transaction(call)
        elif kind == POLY_GNOSIS_SAFE:
            op_id, prepared = await self._prepare_safe(call)
        elif kind == POLY_PROXY:
            op_id, prepared = await self._prepare_proxy(call)
        else:
            assert kind == POLY_1271, kind
            op_id, prepared = await self._prepare_deposit_wallet(call)
        _bounded_put(self._prepared, op_id, prepared)
        _bounded_put(self._ops, op_id, op)
        self._refused.pop(op_id, None)  # the same operation again (its nonce did not move): a fresh attempt
        self._relayer_ids.pop(op_id, None)
        self._counts["prepared"] += 1
        log.info(
            "capital_op_prepared",
            op_id=op_id,
            kind=str(op.kind),
            condition_id=op.condition_id,
            neg_risk=op.neg_risk,
            refused=prepared.refusal is not None,
        )
        return PreparedCapitalOp(op_id=op_id, op=op)

    async def _check_chain(self) -> None:
        if not self._chain_checked:
            found = await self.rpc.chain_id()
            if found != self.settings.chain_id:
                raise VenueProtocolError(f"the node at rpc_url is chain {found}, not {self.settings.chain_id}")
            self._chain_checked = True

    async def _estimate(self, sender: str, call: ContractCall) -> tuple[int | None, str | None]:
        """(the gas limit to use, or None if the node could not estimate; the revert reason, or None)."""
        try:
            gas = await self.rpc.estimate_gas({"from": sender, "to": call.to, "data": call.data_hex})
        except JsonRpcError as exc:
            if exc.reverted:
                return None, exc.revert_reason
            raise
        limit = Decimal(gas) * self.settings.gas_limit_multiplier
        return int(limit.to_integral_value(rounding=ROUND_CEILING)), None

    async def _prepare_transaction(self, call: ContractCall) -> tuple[str, _Transaction]:
        await self._check_chain()
        eoa = self.signer.address
        nonce = await self.rpc.transaction_count(eoa, "pending")
        gas, refusal = await self._estimate(eoa, call)
        block = await self.rpc.latest_block()
        if block.base_fee_per_gas is None:
            raise VenueProtocolError("eth_getBlockByNumber: no baseFeePerGas (not an EIP-1559 chain)")
        settings = self.settings
        suggested = await self.rpc.max_priority_fee()
        tip_floor, tip_cap = (
            settings.wei(settings.min_priority_fee_per_gas_gwei),
            settings.wei(settings.max_priority_fee_per_gas_gwei),
        )
        tip = min(max(suggested, tip_floor), tip_cap)
        cap = settings.wei(settings.max_fee_per_gas_gwei)
        wanted = 2 * block.base_fee_per_gas + tip
        max_fee = min(wanted, cap)
        if wanted > cap:
            self._counts["fee_capped"] += 1
            log.warning(
                "capital_fee_capped", wanted_gwei=str(Decimal(wanted) / _GWEI), cap_gwei=str(Decimal(cap) / _GWEI)
            )
        tip = min(tip, max_fee)
        raw, tx_hash = self.signer.sign_transaction(
            {
                "type": 2,
                "chainId": settings.chain_id,
                "nonce": nonce,
                "to": call.to,
                "value": 0,
                "data": call.data,
                "gas": gas if gas is not None else settings.proxy_gas_limit,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
        )
        return tx_hash, _Transaction(raw, max_fee, refusal)

    def _metadata(self, op_id: str) -> str:
        return _METADATA_PREFIX + op_id

    async def _prepare_safe(self, call: ContractCall) -> tuple[str, _Relay]:
        eoa, safe = self.signer.address, self.signer.funder
        nonce = await self.relayer.nonce(eoa, "SAFE")
        digest = safe_transaction_hash(safe, call, nonce, chain_id=self.settings.chain_id)
        op_id = "0x" + digest.hex()
        payload = {
            "type": "SAFE",
            "from": eoa,
            "to": call.to,
            "proxyWallet": safe,
            "data": call.data_hex,
            "nonce": str(nonce),
            "signature": "0x" + safe_signature(self.signer, digest).hex(),
            "signatureParams": {
                "baseGas": "0",
                "gasPrice": "0",
                "gasToken": _ZERO_ADDRESS,
                "operation": "0",
                "refundReceiver": _ZERO_ADDRESS,
                "safeTxnGas": "0",
            },
            "metadata": self._metadata(op_id),
        }
        return op_id, _Relay(payload, None)

    async def _prepare_proxy(self, call: ContractCall) -> tuple[str, _Relay]:
        eoa, wallet = self.signer.address, self.signer.funder
        relay, nonce = await self.relayer.relay_payload(eoa)
        outer = proxy_call([call])
        refusal = None
        try:
            gas, refusal = await self._estimate(eoa, outer)
        except VenueError as exc:  # the node is not essential here: the relayer estimates too
            log.warning("capital_proxy_gas_estimate_failed", error=str(exc))
            gas = None
        gas_limit = gas if gas is not None else self.settings.proxy_gas_limit
        digest = proxy_transaction_hash(
            from_address=eoa,
            to=PROXY_FACTORY,
            data=outer.data,
            relayer_fee=0,
            gas_price=0,
            gas_limit=gas_limit,
            nonce=nonce,
            relay_hub=RELAY_HUB,
            relay=relay,
        )
        op_id = "0x" + digest.hex()
        payload = {
            "type": "PROXY",
            "from": eoa,
            "to": PROXY_FACTORY,
            "proxyWallet": wallet,
            "data": outer.data_hex,
            "nonce": str(nonce),
            "signature": "0x" + sign_personal(self.signer, digest).hex(),
            "signatureParams": {
                "gasLimit": str(gas_limit),
                "gasPrice": "0",
                "relay": relay,
                "relayHub": RELAY_HUB,
                "relayerFee": "0",
            },
            "metadata": self._metadata(op_id),
        }
        return op_id, _Relay(payload, refusal)

    async def _prepare_deposit_wallet(self, call: ContractCall) -> tuple[str, _Relay]:
        eoa, wallet = self.signer.address, self.signer.funder
        nonce = await self.relayer.nonce(eoa, "WALLET")
        deadline = math.floor(self._wall_secs()) + self.settings.deposit_deadline_secs
        digest = deposit_batch_digest(wallet, nonce, deadline, [call], chain_id=self.settings.chain_id)
        op_id = "0x" + digest.hex()
        payload = {
            "type": "WALLET",
            "from": eoa,
            "to": DEPOSIT_WALLET_FACTORY,
            "nonce": str(nonce),
            "signature": "0x" + self.signer.sign_digest(digest).hex(),
            "metadata": self._metadata(op_id),
            "depositWalletParams": {
                "depositWallet": wallet,
                "deadline": str(deadline),
                "calls": [{"target": call.to, "value": str(call.value), "data": call.data_hex}],
            },
        }
        return op_id, _Relay(payload, None)

    def _refuse(self, op_id: str, message: str) -> CapitalOpStatus:
        _bounded_put(self._refused, op_id, message)
        self._counts["refused"] += 1
        log.warning("capital_op_refused", op_id=op_id, message=message)
        return CapitalOpStatus(op_id=op_id, state=CapitalOpState.FAILED, message=message)

    async def send_op(self, prepared: PreparedCapitalOp) -> CapitalOpStatus:
        """Send what `prepare_op` built: PENDING when the node or the relayer took it, FAILED when it was refused
        (or the node had said it would revert: then it is not sent). An exception means the outcome is unknown: ask
        `op_status(op_id)`. `UnknownCapitalOp` when this process did not prepare it."""
        op_id = prepared.op_id
        built = self._prepared.get(op_id)
        if built is None:
            raise UnknownCapitalOp(f"capital op {op_id} was not prepared by this process: ask op_status")
        if built.refusal is not None:
            return self._refuse(op_id, f"would revert: {built.refusal}")
        self._counts["sent"] += 1
        if isinstance(built, _Relay):
            outcome = await self.relayer.submit(built.payload)
            if isinstance(outcome, RelayerRefused):
                return self._refuse(op_id, f"relayer: {outcome.message}")
            _bounded_put(self._relayer_ids, op_id, outcome.transaction_id)
            log.info("capital_op_sent", op_id=op_id, relayer_id=outcome.transaction_id)
            return CapitalOpStatus(
                op_id=op_id,
                state=CapitalOpState.PENDING,
                tx_hash=outcome.transaction_hash,
                message=f"relayer transaction {outcome.transaction_id}",
            )
        try:
            tx_hash = await self.rpc.send_raw_transaction(built.raw)
        except JsonRpcError as exc:
            known = await self.op_status(op_id)  # "already known", or a re-send of one that landed
            if known.state is not CapitalOpState.NOT_FOUND:
                return known
            return self._refuse(op_id, f"node: {exc.rpc_message}")
        if tx_hash != op_id:
            self._counts["mismatch"] += 1
            raise VenueProtocolError(f"eth_sendRawTransaction: the node named {tx_hash}, the signed hash is {op_id}")
        log.info("capital_op_sent", op_id=op_id)
        return CapitalOpStatus(op_id=op_id, state=CapitalOpState.PENDING, tx_hash=op_id, message="sent")

    async def op_status(self, op_id: str) -> CapitalOpStatus:
        """Where an operation stands, by the id `prepare_op` gave it (also in a later process). The first time it is
        seen CONFIRMED, the CLOB is asked to re-read the wallet's balances (it caches them), so that the freed pUSD
        can back orders at once."""
        if self.uses_relayer:
            status = await self._relayer_status(op_id)
        else:
            status = await self._transaction_status(op_id)
        if status.state is CapitalOpState.CONFIRMED and op_id not in self._refreshed:
            await self._refresh_balances(op_id)
        return status

    async def _refresh_balances(self, op_id: str) -> None:
        """Best effort: a failure is logged and counted, and tried again at the next `op_status`."""
        op = self._ops.get(op_id)
        try:
            await self.rest.update_balance_allowance(AssetType.COLLATERAL)
            for token_id in op.token_ids if op is not None else ():
                await self.rest.update_balance_allowance(AssetType.CONDITIONAL, token_id)
        except VenueError as exc:
            self._counts["refresh_errors"] += 1
            log.warning("capital_balance_refresh_failed", op_id=op_id, error=str(exc))
            return
        _bounded_put(self._refreshed, op_id, True)

    def _not_found(self, op_id: str) -> CapitalOpStatus:
        refused = self._refused.get(op_id)
        if refused is not None:
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.FAILED, message=refused)
        return CapitalOpStatus(op_id=op_id, state=CapitalOpState.NOT_FOUND)

    async def _transaction_status(self, op_id: str) -> CapitalOpStatus:
        receipt = await self.rpc.receipt(op_id)
        if receipt is None:
            pending = await self.rpc.transaction(op_id)
            if pending is None:
                return self._not_found(op_id)
            message = "pending"
            block = await self.rpc.latest_block()
            fee = pending.max_fee_per_gas
            if fee is not None and block.base_fee_per_gas is not None and fee < block.base_fee_per_gas:
                message = (
                    f"stuck: its fee cap {Decimal(fee) / _GWEI} gwei is below the base fee "
                    f"{Decimal(block.base_fee_per_gas) / _GWEI} gwei"
                )
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.PENDING, tx_hash=op_id, message=message)
        if receipt.status == 0:
            reason = receipt.revert_reason or "reverted"
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.FAILED, tx_hash=op_id, message=reason)
        depth = await self.rpc.block_number() - receipt.block_number + 1
        needed = self.settings.confirmations
        if depth < needed:
            message = f"mined in block {receipt.block_number}: {max(depth, 0)} of {needed} confirmations"
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.PENDING, tx_hash=op_id, message=message)
        return CapitalOpStatus(op_id=op_id, state=CapitalOpState.CONFIRMED, tx_hash=op_id, message="confirmed")

    async def _relayer_transaction(self, op_id: str) -> RelayerTransaction | None:
        relayer_id = self._relayer_ids.get(op_id)
        if relayer_id is None:  # another process sent it: find it by the metadata it carries
            tag = self._metadata(op_id)
            listed = [t for t in await self.relayer.transactions() if t.metadata == tag]
            if not listed:
                return None
            live = [t for t in listed if t.state not in (RelayerState.FAILED, RelayerState.INVALID)]
            relayer_id = (live or listed)[0].transaction_id  # a retry that went through beats the failed attempt
            _bounded_put(self._relayer_ids, op_id, relayer_id)
        return await self.relayer.transaction(relayer_id)

    async def _relayer_status(self, op_id: str) -> CapitalOpStatus:
        found = await self._relayer_transaction(op_id)
        if found is None:
            return self._not_found(op_id)
        state = found.state
        base = f"relayer {state} ({found.transaction_id})"
        if state in (RelayerState.FAILED, RelayerState.INVALID):
            message = f"{base}: {found.error}" if found.error else base
            return CapitalOpStatus(
                op_id=op_id, state=CapitalOpState.FAILED, tx_hash=found.transaction_hash, message=message
            )
        done = state is RelayerState.CONFIRMED
        return CapitalOpStatus(
            op_id=op_id,
            state=CapitalOpState.CONFIRMED if done else CapitalOpState.PENDING,
            tx_hash=found.transaction_hash,
            message=base,
        )


@asynccontextmanager
async def open_polymarket_capital(
    settings: ChainSettings,
    signer: OrderSigner,
    rest: PolymarketRestClient,
    *,
    gamma_url: str = GAMMA_URL,
    transport: httpx.AsyncBaseTransport | None = None,
    wall_secs: Callable[[], float] = time.time,
) -> AsyncIterator[PolymarketCapital]:
    """The live `Capital` for `signer`'s wallet. `rest` is the venue's REST client (with its L2 credentials: the
    balance needs them). A proxy, Safe or deposit wallet needs the relayer API key (`ConfigError` otherwise). Its own
    httpx client (the node, the relayer, Gamma) is closed on exit; `transport` replaces the network in tests."""
    if signer.signature_type != SIGNATURE_TYPE_EOA and (
        settings.relayer_api_key is None or not settings.relayer_api_key_address
    ):
        raise ConfigError(
            f"signature type {signer.signature_type} merges and redeems through Polymarket's relayer: set "
            "TRADER_CHAIN__RELAYER_API_KEY and TRADER_CHAIN__RELAYER_API_KEY_ADDRESS"
        )
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(None), headers={"User-Agent": "trader"}, follow_redirects=False
    ) as http:
        yield PolymarketCapital(settings, signer, rest, http=http, gamma_url=gamma_url, wall_secs=wall_secs)
