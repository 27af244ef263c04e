"""What the capital service did, as frozen events: merges, settlements of resolved markets, redemptions.

Every `ts` is wall-clock epoch seconds passed in by the caller. Amounts are exact pUSD; `sets` are complete sets
(one YES and one NO share each, worth 1 pUSD merged).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["CapitalOpFailed", "CapitalOpStuck", "MarketSettled", "PositionsRedeemed", "SetsMerged"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetsMerged:
    """`sets` complete sets of a condition merged back into `sets` pUSD; `realized_pnl` is the edge they held."""

    condition_id: str
    op_id: str
    sets: Decimal
    realized_pnl: Decimal
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSettled:
    """A resolved condition settled at its payouts (YES, NO): its positions closed, `receivable` owed by the
    redemption (0 when only the losing side was held)."""

    condition_id: str
    payouts: tuple[Decimal, Decimal]
    realized_pnl: Decimal
    receivable: Decimal
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionsRedeemed:
    """The redemption of a resolved condition paid `amount` pUSD."""

    condition_id: str
    op_id: str
    amount: Decimal
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalOpFailed:
    """A merge or redemption was refused, reverted or never seen; nothing changed, and it will be tried again."""

    condition_id: str
    op_id: str
    kind: str
    reason: str
    message: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalOpStuck:
    """A merge or redemption has been pending longer than expected (a transaction that does not confirm)."""

    condition_id: str
    op_id: str
    kind: str
    pending_secs: float
    ts: float
