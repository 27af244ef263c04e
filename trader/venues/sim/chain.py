"""The simulated Polygon chain: blocks, accounts and nonces, transactions that are mined after a delay (or never),
and the merges and redemptions they carry, applied to the exchange's wallets. Pure and synchronous: every call takes
`now` (wall-clock unix seconds); `advance(now)` mines what is due. The JSON-RPC endpoint (`trader.venues.sim.rpc`)
and Polymarket's relayer (`trader.venues.sim.relayer`) sit on top of it.

What a transaction does (`decode_capital_call`): `mergePositions` / `redeemPositions` at the collateral adapters,
the Conditional Tokens contract or the retired neg-risk adapter, for the wallet that sends it (an EOA's own
transaction) or for the wallet a relayer transaction acts for (a Safe, a proxy or a deposit wallet). Anything else
reverts. Its effect is checked when it is sent (as `eth_estimateGas` would) and applied when it is mined; a wallet
that lost its shares in between makes it revert then.

Mining: a transaction accepted at `t` is mined in the first block at or after `t + mining_delay_secs`, unless its
fee cap is below the base fee (it waits, as on a real node) or a `chain_stuck` fault holds it for ever. A
`chain_revert` fault makes it revert (status 0, with the fault's reason) when it is mined. Blocks come every
`block_time_secs`; a block's base fee is `base_fee_wei` (constant: this chain is never congested).

Gas is not charged: accounts hold no native balance (a wallet never fails for want of POL here).
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from trader.errors import InputError
from trader.venues.polymarket.chain import CallKind, ContractCall, decode_capital_call
from trader.venues.polymarket.signing import CHAIN_ID_POLYGON, checksum_address, keccak256
from trader.venues.sim.exchange import CapitalResult, Exchange

GWEI: Final = 10**9
INTRINSIC_GAS: Final = 21_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainConfig:
    """The simulated chain. Times in seconds, fees in wei."""

    chain_id: int = CHAIN_ID_POLYGON
    block_time_secs: float = 2.0
    mining_delay_secs: float = 2.0
    base_fee_wei: int = 30 * GWEI
    priority_fee_wei: int = 30 * GWEI  # what eth_maxPriorityFeePerGas suggests
    capital_gas: int = 180_000  # the gas a merge or a redemption uses
    relayer_confirmations: int = 2  # blocks on top before the relayer says STATE_CONFIRMED
    genesis_block: int = 80_000_000


class ChainHooks(Protocol):
    """Where fault injection reaches into the chain (`trader.venues.sim.faults`). `source` is "rpc" for a
    transaction sent to the node, "relayer" for a submission to the relayer."""

    def refuse_send(self, source: str) -> str | None:
        """A refusal to answer instead of taking the transaction (nothing happens), or None."""
        ...

    def hold_forever(self, source: str) -> bool:
        """Should this accepted transaction never be mined?"""
        ...

    def revert_reason(self, source: str) -> str | None:
        """A reason to revert this transaction with when it is mined, or None."""
        ...


class NoChainHooks:
    def refuse_send(self, source: str) -> str | None:
        return None

    def hold_forever(self, source: str) -> bool:
        return False

    def revert_reason(self, source: str) -> str | None:
        return None


class TxStatus(enum.Enum):
    PENDING = "pending"
    SUCCESS = "success"
    REVERTED = "reverted"


Effect = Callable[[bool], CapitalResult]  # dry_run -> what it did (or would do)


@dataclass(slots=True, eq=False)
class SimTransaction:
    tx_hash: str
    sender: str
    nonce: int
    to: str | None
    data: bytes
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    effect: Effect
    source: str
    accepted_at: float
    due_at: float
    held: bool = False  # a chain_stuck fault: never mined
    forced_revert: str | None = None
    status: TxStatus = TxStatus.PENDING
    block: int | None = None
    mined_at: float | None = None
    revert_reason: str = ""
    result: CapitalResult | None = None
    type: int = 2


@dataclass(slots=True)
class _Account:
    nonce: int = 0  # the next nonce the node takes (pending transactions included)
    mined: int = 0  # transactions of this account mined so far


@dataclass(slots=True)
class ChainStatistics:
    accepted: int = 0
    refused: int = 0
    mined: int = 0
    reverted: int = 0
    held: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class SimChain:
    def __init__(
        self, exchange: Exchange, start: float, *, config: ChainConfig | None = None, hooks: ChainHooks | None = None
    ) -> None:
        self.exchange = exchange
        self.config = config or ChainConfig()
        self.hooks: ChainHooks = hooks or NoChainHooks()
        self._start = start
        self._accounts: dict[str, _Account] = {}
        self._txs: dict[str, SimTransaction] = {}
        self._pending: list[SimTransaction] = []
        self.stats = ChainStatistics()

    # -- blocks ----------------------------------------------------------------------------------------------

    def block_number(self, now: float) -> int:
        return self.config.genesis_block + max(0, int((now - self._start) / self.config.block_time_secs))

    def block_time(self, number: int) -> float:
        return self._start + (number - self.config.genesis_block) * self.config.block_time_secs

    @staticmethod
    def block_hash(number: int) -> str:
        return "0x" + hashlib.sha256(f"sim-block:{number}".encode()).hexdigest()

    @property
    def base_fee(self) -> int:
        return self.config.base_fee_wei

    # -- accounts --------------------------------------------------------------------------------------------

    def _account(self, address: str) -> _Account:
        return self._accounts.setdefault(address.lower(), _Account())

    def nonce(self, address: str, *, pending: bool = True) -> int:
        account = self._accounts.get(address.lower())
        if account is None:
            return 0
        return account.nonce if pending else account.mined

    # -- what a call does ------------------------------------------------------------------------------------

    def capital_effect(self, wallet: str, call: ContractCall) -> Effect:
        """The effect of one merge or redemption call made by (or for) `wallet`; `InputError` (the revert reason)
        for a call this chain does not know."""
        decoded = decode_capital_call(call.to, call.data)
        if call.value:
            raise InputError("value", "the adapters take no native value")

        def effect(dry_run: bool) -> CapitalResult:
            if decoded.kind is CallKind.MERGE:
                assert decoded.amounts is not None
                return self.exchange.merge(wallet, decoded.condition_id, decoded.amounts[0], dry_run=dry_run)
            return self.exchange.redeem(wallet, decoded.condition_id, decoded.amounts, dry_run=dry_run)

        return effect

    def batch_effect(self, wallet: str, calls: list[ContractCall]) -> Effect:
        """Several calls for one wallet, all or nothing (the wallet is restored when one reverts)."""
        effects = [self.capital_effect(wallet, call) for call in calls]

        def effect(dry_run: bool) -> CapitalResult:
            snapshot = self.exchange.wallet(wallet).snapshot()
            total = CapitalResult()
            for one in effects:
                result = one(False)
                if result.revert is not None:
                    self.exchange.wallet(wallet).restore(snapshot)
                    return result
                burned = tuple(a + b for a, b in zip(total.burned, result.burned, strict=True))
                total = CapitalResult(None, total.collateral + result.collateral, (burned[0], burned[1]))
            if dry_run:
                self.exchange.wallet(wallet).restore(snapshot)
            return total

        return effect

    # -- transactions ----------------------------------------------------------------------------------------

    def accept(
        self,
        *,
        tx_hash: str,
        sender: str,
        nonce: int,
        to: str | None,
        data: bytes,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        effect: Effect,
        source: str,
        now: float,
        tx_type: int = 2,
    ) -> SimTransaction:
        """Take a transaction into the pool (the caller checked it); it is mined by `advance`."""
        account = self._account(sender)
        tx = SimTransaction(
            tx_hash=tx_hash,
            sender=checksum_address(bytes.fromhex(sender[2:])),
            nonce=nonce,
            to=to,
            data=data,
            gas=gas,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=max_priority_fee_per_gas,
            effect=effect,
            source=source,
            accepted_at=now,
            due_at=now + self.config.mining_delay_secs,
            type=tx_type,
        )
        tx.held = self.hooks.hold_forever(source)
        tx.forced_revert = None if tx.held else self.hooks.revert_reason(source)
        account.nonce = max(account.nonce, nonce + 1)
        self._txs[tx_hash] = tx
        self._pending.append(tx)
        self.stats.accepted += 1
        self.stats.held += tx.held
        return tx

    def relay(
        self, relayer: str, wallet_to: str, data: bytes, effect: Effect, *, key: str, now: float
    ) -> SimTransaction:
        """The relayer's own transaction for a wallet (it pays the gas and never fails for want of it)."""
        tx_hash = "0x" + keccak256(f"sim-relayer-tx:{key}".encode()).hex()
        nonce = self.nonce(relayer)
        fee = self.base_fee + self.config.priority_fee_wei
        return self.accept(
            tx_hash=tx_hash,
            sender=relayer,
            nonce=nonce,
            to=wallet_to,
            data=data,
            gas=self.config.capital_gas * 2,
            max_fee_per_gas=2 * fee,
            max_priority_fee_per_gas=self.config.priority_fee_wei,
            effect=effect,
            source="relayer",
            now=now,
        )

    def transaction(self, tx_hash: str) -> SimTransaction | None:
        return self._txs.get(tx_hash.lower())

    def confirmations(self, tx: SimTransaction, now: float) -> int:
        return 0 if tx.block is None else self.block_number(now) - tx.block + 1

    def advance(self, now: float) -> None:
        """Mine every pending transaction that is due (in the order they were accepted)."""
        if not self._pending:
            return
        block = self.block_number(now)
        still: list[SimTransaction] = []
        for tx in self._pending:
            # the first block at or after the time it is due
            elapsed = (tx.due_at - self._start) / self.config.block_time_secs
            mined_block = self.config.genesis_block + max(0, math.ceil(elapsed - 1e-9))
            if tx.held or mined_block > block or tx.max_fee_per_gas < self.base_fee:
                still.append(tx)
                continue
            self._mine(tx, mined_block, now)
        self._pending = still

    def _mine(self, tx: SimTransaction, block: int, now: float) -> None:
        tx.block = block
        tx.mined_at = now
        self._account(tx.sender).mined += 1
        self.stats.mined += 1
        if tx.forced_revert is not None:
            tx.status, tx.revert_reason = TxStatus.REVERTED, tx.forced_revert
        else:
            result = tx.effect(False)
            tx.result = result
            if result.revert is None:
                tx.status = TxStatus.SUCCESS
            else:
                tx.status, tx.revert_reason = TxStatus.REVERTED, result.revert
        if tx.status is TxStatus.REVERTED:
            self.stats.reverted += 1


def revert_effect(reason: str) -> Effect:
    """The effect of a call this chain cannot run: it reverts with `reason`."""

    def effect(dry_run: bool) -> CapitalResult:
        return CapitalResult(reason)

    return effect
