"""`RunSummary`: what a run did, printed at exit and written by `--summary-json`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from trader.app.config import Settings
from trader.app.core import Core
from trader.app.venue import VenueSide
from trader.app.views import halt_of, refusals_of
from trader.domain.numbers import ZERO
from trader.engine.execution import DrainReport
from trader.infra.console import REFUSAL_KINDS, counts_text, halt_lines, money_text, signed_text
from trader.infra.names import NAMES, short_id

__all__ = ["RunSummary", "build_summary", "check_wallet", "standby_summary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What a run did, printed at exit and written by `--summary-json`. Decimals stay exact (JSON strings)."""

    exit_reason: str
    mode: str
    venue: str
    duration_secs: float
    markets: int
    orders_submitted: int
    fills: int
    opportunities: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_paid: Decimal
    cash: Decimal
    open_orders_at_exit: int
    intents: int
    intents_denied: Mapping[str, int]
    arbitrage: Mapping[str, int]
    positions: Mapping[str, Mapping[str, str]]
    drain: Mapping[str, object] = field(default_factory=dict)
    capital: Mapping[str, object] = field(default_factory=dict)
    wallet: Mapping[str, object] = field(default_factory=dict)
    money: Mapping[str, object] = field(default_factory=dict)
    #: why intents and orders were turned down, by reason: `denied` (risk gate), `rejected` (venue), `not_sent`
    refusals: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: why trading was not ACTIVE at the end, who stopped it and what brings it back (None: it was ACTIVE)
    halt: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "exit_reason": self.exit_reason,
            "mode": self.mode,
            "venue": self.venue,
            "duration_secs": round(self.duration_secs, 3),
            "markets": self.markets,
            "orders_submitted": self.orders_submitted,
            "fills": self.fills,
            "opportunities": self.opportunities,
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
            "fees_paid": str(self.fees_paid),
            "cash": str(self.cash),
            "open_orders_at_exit": self.open_orders_at_exit,
            "intents": self.intents,
            "intents_denied": dict(self.intents_denied),
            "arbitrage": dict(self.arbitrage),
            "positions": {k: dict(v) for k, v in self.positions.items()},
            "drain": dict(self.drain),
            "capital": {k: str(v) if isinstance(v, Decimal) else v for k, v in self.capital.items()},
            "wallet": {k: str(v) if isinstance(v, Decimal) else v for k, v in self.wallet.items()},
            "money": {k: str(v) if isinstance(v, Decimal) else v for k, v in self.money.items()},
            "refusals": {kind: dict(counts) for kind, counts in self.refusals.items()},
            "halt": None if self.halt is None else dict(self.halt),
        }

    def to_text(self) -> str:
        """The summary for a person on a terminal: a few lines, markets by name (`to_json` has everything)."""
        lines = [
            f"run ended ({self.exit_reason}) after {_duration(self.duration_secs)}: {self.mode} on {self.venue}, "
            f"{self.markets} markets",
            f"  PnL         {signed_text(self.realized_pnl)} realized, {signed_text(self.unrealized_pnl)} unrealized, "
            f"fees {money_text(self.fees_paid)}; cash {money_text(self.cash)}",
            f"  activity    {self.intents} intents, {self.orders_submitted} orders sent, {self.fills} fills, "
            f"{self.opportunities} opportunities; open orders left: {self.open_orders_at_exit}",
        ]
        if self.arbitrage:
            lines.append("  arbitrage   " + counts_text(self.arbitrage))
        refused = [(REFUSAL_KINDS.get(kind, kind), counts) for kind, counts in self.refusals.items() if counts]
        if refused:
            lines.append("  refusals")
            lines += [f"    {label}: {counts_text(counts)}" for label, counts in refused]
        else:
            lines.append("  refusals    none")
        if self.halt is not None:
            lines += halt_lines(self.halt)
        held = [(p.get("market") or short_id(token), p.get("quantity") or "0") for token, p in self.positions.items()]
        held = [(name, quantity) for name, quantity in held if Decimal(quantity)]
        if held:
            lines.append(f"  positions   {len(held)}")
            lines += [f"    {quantity:>12}  {name}" for name, quantity in held[:10]]
            if len(held) > 10:
                lines.append(f"    … and {len(held) - 10} more (--summary-json has them all)")
        difference = self.wallet.get("cash_difference")
        if difference is not None and Decimal(str(difference)):
            lines.append(f"  wallet      differs from the engine's books by {difference} (run `trader reconcile`)")
        return "\n".join(lines)


def _duration(secs: float) -> str:
    minutes, seconds = divmod(round(secs), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def standby_summary(settings: Settings, *, exit_reason: str, duration: float) -> RunSummary:
    """The summary of an engine of an active/standby pair whose last term (if any) did not end in a drain: it
    stood by, or lost its lease (`exit_reason` "fenced"); what it traded is in the store and the leader's records."""
    return RunSummary(
        exit_reason=exit_reason,
        mode="live" if settings.run.live else "paper",
        venue=str(settings.run.venue),
        duration_secs=duration,
        markets=0,
        orders_submitted=0,
        fills=0,
        opportunities=0,
        realized_pnl=ZERO,
        unrealized_pnl=ZERO,
        fees_paid=ZERO,
        cash=ZERO,
        open_orders_at_exit=0,
        intents=0,
        intents_denied={},
        arbitrage={},
        positions={},
    )


def build_summary(
    settings: Settings,
    venue: VenueSide,
    core: Core,
    report: DrainReport,
    *,
    exit_reason: str,
    duration: float,
    wallet: Mapping[str, object] | None = None,
) -> RunSummary:
    """The summary of a run that has drained."""
    stats = core.execution.statistics()
    orders = stats.orders
    portfolio = core.manager.portfolio
    unrealized = portfolio.marked_unrealized_pnl(core.marks())
    opportunities = 0
    for summary in core.strategy_engine.summaries().values():
        opportunities += int(getattr(summary, "count", 0) or 0)
    positions = {
        token: {
            "market": NAMES.name(token) or "",
            "quantity": str(p.quantity),
            "realized_pnl": str(p.realized_pnl),
            "fees_paid": str(p.fees_paid),
        }
        for token, p in portfolio.positions.items()
        if p.quantity or p.realized_pnl
    }
    return RunSummary(
        exit_reason=exit_reason,
        mode="live" if settings.run.live else "paper",
        venue=str(settings.run.venue),
        duration_secs=duration,
        markets=len(venue.books.markets),
        orders_submitted=orders.submitted,
        fills=orders.fills,
        opportunities=opportunities,
        realized_pnl=portfolio.realized_pnl,
        unrealized_pnl=unrealized,
        fees_paid=portfolio.fees_paid,
        cash=portfolio.cash,
        open_orders_at_exit=len(report.open_orders_left),
        intents=stats.intents_received,
        intents_denied=dict(stats.intents_denied),
        arbitrage=dict(stats.arbitrage.by_status),
        positions=positions,
        drain={
            "tasks_finished": report.tasks_finished,
            "tasks_cancelled": report.tasks_cancelled,
            "canceled_orders": len(report.canceled_order_ids),
            "cancel_all_ok": report.cancel_all_ok,
        },
        capital=_capital(core, portfolio.receivable),
        wallet=dict(wallet or {}),
        money={
            "daily_pnl": core.risk.daily_pnl,
            "balance_rejections": stats.balance_rejections,
            "residual_events": stats.arbitrage.residual_events,
            "residual_exposure": {t: str(q) for t, q in stats.arbitrage.residual_shares.items()},
        },
        refusals=refusals_of(stats),
        halt=halt_of(core.execution),
    )


async def check_wallet(venue: VenueSide, core: Core) -> dict[str, object]:
    """What the venue's wallet holds against what the engine believes, at exit: `cash` (the venue's), `cash_difference`
    (the venue's minus the engine's; 0 when they agree to the cent and beyond) and the tokens whose shares differ
    (the engine's positions plus the shares a redemption in flight is taking; its pay is the receivable).
    Asked of the venue itself: the paper wallet on paper, the venue's balances live."""
    portfolio = core.manager.portfolio
    cash = (await venue.capital.collateral()).balance
    held = await venue.venue.positions()
    redeeming = core.capital.redeeming()  # settled (out of the books), still in the wallet until the chain burns them
    tokens = {t for t, p in portfolio.positions.items() if p.quantity} | {t for t, q in held.items() if q}
    differing = sorted(
        t for t in tokens if held.get(t, ZERO) != portfolio.position(t).quantity + redeeming.get(t, ZERO)
    )
    return {
        "cash": cash,
        "cash_difference": cash - portfolio.cash,
        "positions_differing": len(differing),
        "tokens_differing": differing[:20],
        "shares_differing": {  # the first 20: the venue's shares, the books', and those a redemption owes
            t: {
                "venue": str(held.get(t, ZERO)),
                "engine": str(portfolio.position(t).quantity),
                "redeeming": str(redeeming.get(t, ZERO)),
            }
            for t in differing[:20]
        },
    }


def _capital(core: Core, receivable: Decimal) -> dict[str, object]:
    """Merges, settlements and redemptions of the run."""
    s = core.capital.statistics()
    return {
        "merges": s.merges,
        "merged_usd": s.merged_sets,
        "redemptions": s.redemptions,
        "redeemed_usd": s.redeemed_usd,
        "settled_markets": s.settled_markets,
        "settled_pnl": s.settled_pnl,
        "locked_sets": s.locked_sets,
        "receivable_usd": receivable,
        "open_ops": s.open_ops,
        "failed_ops": sum(s.failed_ops.values()),
    }
