"""The paper venue's chain side: merges and redemptions applied to the paper wallet after a latency.

`PaperCapital(paper, resolution_of, settings)` implements the `Capital` port (`trader.venues.base`) on a
`PaperVenue`'s wallet, as the chain would: a merge of n complete sets takes n YES and n NO shares and pays n pUSD; a
redemption takes every share of a resolved condition and pays its payout. Both land `latency_secs` after they are
sent (Trio clock): until then the operation is PENDING, then CONFIRMED (applied once, when it is first asked for
after that time; an ended operation is told once, then forgotten) or FAILED (the wallet lacks the shares, the market
has not resolved). Ids are `paper-<n>`,
known when prepared, so the engine writes them ahead as it does live ones. A restarted engine has a new paper
venue: ids of a previous run are NOT_FOUND.

Resolutions come from `resolution_of(condition_id)`: paper trading reads the real venue's public word (the market
channel, Gamma, the CLOB), which the composition root passes in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from trader.domain.numbers import ZERO
from trader.errors import ConfigError
from trader.venues.base import (
    CapitalOp,
    CapitalOpKind,
    CapitalOpState,
    CapitalOpStatus,
    Collateral,
    PreparedCapitalOp,
    Resolution,
)
from trader.venues.paper import PaperVenue

__all__ = ["PaperCapital", "PaperCapitalSettings"]

ResolutionSource = Callable[[str], Awaitable[Resolution | None]]


async def _no_resolution(_condition_id: str) -> Resolution | None:
    await trio.lowlevel.checkpoint()
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperCapitalSettings:
    """`latency_secs` (default 2.0): from sending a merge or redemption to its landing in the wallet."""

    latency_secs: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.latency_secs, int | float) and 0 <= self.latency_secs < math.inf):
            raise ConfigError(f"latency_secs must be a finite number >= 0, got {self.latency_secs!r}")


@dataclass(slots=True)
class _Sent:
    op: CapitalOp
    due: float
    state: CapitalOpState = CapitalOpState.PENDING
    message: str = ""


class PaperCapital:
    """See the module docstring."""

    def __init__(
        self,
        paper: PaperVenue,
        resolution_of: ResolutionSource = _no_resolution,
        settings: PaperCapitalSettings | None = None,
    ) -> None:
        self._paper = paper
        self._resolution_of = resolution_of
        self.settings = settings or PaperCapitalSettings()
        self._ids = itertools.count(1)
        self._prepared: dict[str, CapitalOp] = {}
        self._sent: dict[str, _Sent] = {}

    async def collateral(self) -> Collateral:
        await trio.lowlevel.checkpoint()
        return Collateral(balance=self._paper.cash)

    async def resolution(self, condition_id: str) -> Resolution | None:
        return await self._resolution_of(condition_id)

    async def prepare_op(self, op: CapitalOp) -> PreparedCapitalOp:
        await trio.lowlevel.checkpoint()
        op_id = f"paper-{next(self._ids)}"
        self._prepared[op_id] = op
        return PreparedCapitalOp(op_id=op_id, op=op)

    async def send_op(self, prepared: PreparedCapitalOp) -> CapitalOpStatus:
        await trio.lowlevel.checkpoint()
        op = self._prepared.pop(prepared.op_id, prepared.op)
        self._sent[prepared.op_id] = _Sent(op, trio.current_time() + self.settings.latency_secs)
        return CapitalOpStatus(op_id=prepared.op_id, state=CapitalOpState.PENDING)

    async def op_status(self, op_id: str) -> CapitalOpStatus:
        sent = self._sent.get(op_id)
        if sent is None:
            await trio.lowlevel.checkpoint()
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.NOT_FOUND)
        if sent.state is CapitalOpState.PENDING and trio.current_time() >= sent.due:
            await self._land(sent)
        else:
            await trio.lowlevel.checkpoint()
        if sent.state is not CapitalOpState.PENDING:
            del self._sent[op_id]  # told once: the engine stops asking (memory stays bounded over days)
        return CapitalOpStatus(op_id=op_id, state=sent.state, message=sent.message)

    async def _land(self, sent: _Sent) -> None:
        op = sent.op
        yes, no = op.token_ids
        if op.kind is CapitalOpKind.MERGE:
            changes = {yes: -op.amounts[0], no: -op.amounts[1]}
            cash = op.amounts[0]
        else:
            resolution = await self._resolution_of(op.condition_id)
            if resolution is None:
                sent.state, sent.message = CapitalOpState.FAILED, "the condition has not resolved"
                return
            # the chain redeems every share of the condition the wallet holds, whatever was asked
            held = (self._paper.wallet_shares(yes), self._paper.wallet_shares(no))
            changes = {yes: -held[0], no: -held[1]}
            cash = held[0] * resolution.payouts[0] + held[1] * resolution.payouts[1]
            if cash == ZERO and not any(held):
                sent.state, sent.message = CapitalOpState.FAILED, "nothing to redeem"
                return
        try:
            self._paper.move_shares(changes, cash)
        except ValueError as exc:
            sent.state, sent.message = CapitalOpState.FAILED, str(exc)
            return
        sent.state = CapitalOpState.CONFIRMED
