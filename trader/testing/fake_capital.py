"""`FakeCapital`: a scripted `Capital` (`trader.venues.base`) for tests of the capital service.

Operations get ids `0xop1`, `0xop2`, ... when prepared. What happens to a sent one is scripted: `send_reply`
("pending", "failed" or "raise": the send's outcome is unknown), and `lands_after` status checks the operation
answers CONFIRMED (or `final`, e.g. FAILED). Resolutions and the collateral are plain attributes. Everything asked
is recorded (`prepared`, `sent`, `status_checks`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import trio

from trader.venues.base import (
    CapitalOp,
    CapitalOpState,
    CapitalOpStatus,
    Collateral,
    PreparedCapitalOp,
    Resolution,
)
from trader.venues.errors import VenueTimeout

__all__ = ["FakeCapital"]

SendReply = Literal["pending", "failed", "raise"]


@dataclass(slots=True)
class _Landing:
    checks_left: int
    final: CapitalOpState


@dataclass
class FakeCapital:
    balance: Decimal = Decimal(1000)
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    send_reply: SendReply = "pending"
    lands_after: int = 1  # status checks after sending before the final state
    final: CapitalOpState = CapitalOpState.CONFIRMED
    prepared: list[PreparedCapitalOp] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    status_checks: list[str] = field(default_factory=list)
    resolution_checks: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _landing: dict[str, _Landing] = field(default_factory=dict)

    async def collateral(self) -> Collateral:
        await trio.lowlevel.checkpoint()
        return Collateral(balance=self.balance)

    async def resolution(self, condition_id: str) -> Resolution | None:
        await trio.lowlevel.checkpoint()
        self.resolution_checks.append(condition_id)
        return self.resolutions.get(condition_id)

    async def prepare_op(self, op: CapitalOp) -> PreparedCapitalOp:
        await trio.lowlevel.checkpoint()
        prepared = PreparedCapitalOp(op_id=f"0xop{next(self._ids)}", op=op)
        self.prepared.append(prepared)
        return prepared

    async def send_op(self, prepared: PreparedCapitalOp) -> CapitalOpStatus:
        await trio.lowlevel.checkpoint()
        self.sent.append(prepared.op_id)
        if self.send_reply == "failed":
            return CapitalOpStatus(op_id=prepared.op_id, state=CapitalOpState.FAILED, message="execution reverted")
        self._landing[prepared.op_id] = _Landing(self.lands_after, self.final)
        if self.send_reply == "raise":
            raise VenueTimeout("POST /submit timed out")
        return CapitalOpStatus(op_id=prepared.op_id, state=CapitalOpState.PENDING)

    async def op_status(self, op_id: str) -> CapitalOpStatus:
        await trio.lowlevel.checkpoint()
        self.status_checks.append(op_id)
        landing = self._landing.get(op_id)
        if landing is None:
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.NOT_FOUND)
        if landing.checks_left > 0:
            landing.checks_left -= 1
            return CapitalOpStatus(op_id=op_id, state=CapitalOpState.PENDING, tx_hash=f"0xtx-{op_id}")
        return CapitalOpStatus(op_id=op_id, state=landing.final, tx_hash=f"0xtx-{op_id}", message="scripted")
