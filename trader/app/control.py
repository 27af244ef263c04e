"""The control facade: what the HTTP server (`/status`, `/ready`, the admin routes) and the metrics see of a running
engine. Frozen: it is built once every part is open, and only reads them (or asks execution to stop and resume).

`RunningEngine` is what `run_trader` hands its caller once trading has started (`task_status.started`): the
facade and the operator HTTP address.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

import structlog
import trio

from trader.app.alerts import StoreGate, VenueGate
from trader.app.config import Settings
from trader.app.core import Core
from trader.app.sinks import Outputs, Sinks, as_json
from trader.app.venue import VenueSide
from trader.app.views import by_count, halt_of, refusals_of
from trader.domain.numbers import ZERO
from trader.engine.books import BookHealth
from trader.engine.breaker import BreakerState, EndpointFamily
from trader.engine.execution import ExecutionService
from trader.engine.market_data import MarketDataService
from trader.infra.names import NAMES
from trader.infra.ticks import Ticker
from trader.integrations.store.engine_store import EngineStore
from trader.venues.sim.venue import SimVenue

__all__ = ["Control", "RunningEngine", "log_status_lines"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """The engine as the operator's interfaces see it (`trader.integrations.http_server.EngineControl`)."""

    settings: Settings
    sinks: Sinks
    venue: VenueSide
    core: Core
    store_gate: StoreGate
    venue_gate: VenueGate

    @property
    def mode(self) -> str:
        return "live" if self.settings.run.live else "paper"

    def readiness(self) -> dict[str, bool]:
        now = trio.current_time()
        venue = self.venue
        max_age = self.settings.risk.max_book_age_ms / 1000
        tokens = list(venue.books.tokens())
        fresh = [t for t in tokens if _fresh(t.health(now), max_age)]
        venue_ok = venue.market_data.statistics().connected > 0
        if self.settings.run.live:
            orders = self.core.manager.breakers[EndpointFamily.ORDERS]
            venue_ok = venue_ok and orders.state is not BreakerState.OPEN and self.venue_gate.halted_by is None
        return {
            "books_fresh": bool(tokens) and len(fresh) * 10 >= len(tokens) * 9,
            "venue_reachable": venue_ok,
            "store_writable": self.sinks.store.available,
            "trading_engine": True,
            **self.venue_trading(),
        }

    def venue_trading(self) -> dict[str, bool]:
        """Readiness of the venue's trading: False while it takes no new orders at all (its matching engine
        restarting, cancel-only, trading disabled); the post-only window and closed-only still trade."""
        return {"venue_accepts_orders": self.core.manager.restrictions.accepts_orders(trio.current_time())}

    def restrictions(self) -> dict[str, object]:
        """The venue's trading restrictions in force and the signer's rate limits, for `/status`."""
        manager, now = self.core.manager, trio.current_time()
        stats = manager.restrictions.statistics(now)
        limiter = manager.limiter.statistics()
        return {
            "active": [
                {
                    "restriction": str(a.restriction),
                    "code": str(a.code),
                    "source": a.source,
                    "for_secs": round(now - a.since, 3),
                    "ends_in_secs": None if a.until is None else round(a.until - now, 3),
                    "next_probe_in_secs": None if a.probe_at is None else round(max(0.0, a.probe_at - now), 3),
                }
                for a in stats.active
            ],
            "refusals": dict(stats.refusals),
            "denied": dict(stats.denied),
            "rate_limits": {
                "tier": limiter.tier,
                "tier_source": limiter.tier_source,
                "buckets": {
                    name: {"tokens": round(b.tokens, 3), "burst": b.capacity, "per_sec": b.refill_per_sec}
                    for name, b in limiter.buckets.items()
                },
                "warnings": sum(e.warnings for e in limiter.endpoints.values()),
                "responses_429": sum(e.responses_429 for e in limiter.endpoints.values()),
            },
        }

    def status(self) -> dict[str, object]:
        """Everything there is (`/status?full=1`): positions and orders by token id, every service's counters."""
        document: dict[str, object] = {
            "mode": self.mode,
            "venue": str(self.settings.run.venue),
            "markets": len(self.venue.books.markets),
            "discovery": self.discovery(),
            "market_data": as_json(self.venue.market_data.statistics()),
        }
        document.update(self.core.execution.snapshot())
        document["venue_restrictions"] = self.restrictions()
        document["breakers"] = self.breakers()
        document["orders_in_doubt"] = self.orders_in_doubt()
        document["venue_health"] = self.venue_health()
        document["strategies"] = self.core.strategy_engine.status()
        document["money"] = self.money()
        document["capital"] = as_json(self.core.capital.statistics())
        document["store"] = {
            "available": self.sinks.store.available,
            "halted_trading": self.store_gate.halted,
            "outages": self.store_gate.outages,
            "statistics": as_json(self.sinks.raw_store.statistics()),
        }
        document["sinks"] = {name: as_json(s) for name, s in self.sinks.statistics().items()}
        document["bus"] = self.sinks.outputs.statistics()
        if self.venue.restart is not None:
            document["restart"] = as_json(self.venue.restart)
        document["recent_opportunities"] = self.core.opportunities.recent[-20:]
        return document

    def breakers(self) -> dict[str, dict[str, object]]:
        """The circuit breaker of each endpoint family (orders, cancels, reads): its state, since when, its
        transitions so far, and when a probe may next go through."""
        now = trio.current_time()
        return {
            family: {
                "state": str(b.state),
                "for_secs": None if b.changed_at is None else round(now - b.changed_at, 3),
                "next_probe_in_secs": None if b.retry_at is None else round(max(0.0, b.retry_at - now), 3),
                "opens": b.opens,
                "half_opens": b.half_opens,
                "closes": b.closes,
                "refusals": b.rejections,
                "failures": b.failures,
                "consecutive_failures": b.consecutive_failures,
            }
            for family, b in self.core.manager.breakers.statistics().items()
        }

    def orders_in_doubt(self) -> dict[str, object]:
        """The UNKNOWN orders (each with when "not found" becomes a verdict), the cancels waiting for the venue to
        confirm an order, and how doubts were settled so far."""
        manager, now = self.core.manager, trio.current_time()
        stats = manager.statistics()
        return {
            "unknown": [
                {
                    "client_order_id": o.client_order_id,
                    "order_id": o.order_id,
                    "verdict_in_secs": round(max(0.0, manager.unknown_deadline(o.client_order_id) - now), 3),
                }
                for o in manager.unresolved()
            ],
            "deferred_cancels": manager.deferred_cancels(),
            "went_unknown": stats.ambiguous,
            "found": stats.resolved_found,
            "not_found": stats.resolved_not_found,
            "lookups": stats.lookups,
            "late_fills": stats.late_fills,
        }

    def venue_health(self) -> dict[str, object]:
        """What the requests tell of the venue (refusals of our credentials, silence), and the halts it caused."""
        health = self.core.manager.health.statistics(trio.current_time())
        gate = self.venue_gate
        return {
            "problem": None if health.problem is None else str(health.problem),
            "halted_by": None if gate.halted_by is None else str(gate.halted_by),
            "halts": dict(gate.halts),
            "auth_refusals": health.auth_refusals,
            "consecutive_auth_refusals": health.consecutive_auth_refusals,
            "no_answers": health.no_answers,
            "silent_for_secs": None if health.silent_for_secs is None else round(health.silent_for_secs, 3),
            "probes": gate.probes,
        }

    def discovery(self) -> dict[str, object]:
        """Market discovery: the last refresh (found, complete or why not, pages, how Gamma was read, markets left
        out by reason), what is followed of it (at most `markets.max_markets`), and the Gamma client's counters."""
        stats = self.venue.discovery
        document = {f.name: as_json(getattr(stats, f.name)) for f in dataclasses.fields(stats)}
        document["followed"] = len(self.venue.tracked)
        document["max_markets"] = self.settings.markets.max_markets
        document["gamma"] = as_json(self.venue.gamma.statistics())
        return document

    def money(self) -> dict[str, str]:
        """Cash, what redemptions owe, equity at the marks (positions without a mark at their cost), and PnL."""
        portfolio = self.core.manager.portfolio
        marks = self.core.marks()
        held = ZERO
        for token_id, position in portfolio.positions.items():
            if position.quantity:
                mark = marks.get(token_id)
                held += position.cost_basis if mark is None else position.quantity * mark
        return {
            "cash": str(portfolio.cash),
            "receivable": str(portfolio.receivable),
            "positions_value": str(held),
            "equity": str(portfolio.cash + portfolio.receivable + held),
            "realized_pnl": str(portfolio.realized_pnl),
            "unrealized_pnl": str(portfolio.marked_unrealized_pnl(marks)),
        }

    # -- the short views: `/status`, `trader status`, the console's status line -----------------------------------

    def halt(self) -> dict[str, object] | None:
        """Why trading is not ACTIVE, who stopped it, since when and what brings it back; None while ACTIVE."""
        return halt_of(self.core.execution)

    def refusals(self) -> dict[str, dict[str, int]]:
        """Why intents and orders were turned down, by stable reason code (`trader.app.views.refusals_of`)."""
        return refusals_of(self.core.execution.statistics())

    def books_health(self) -> dict[str, int]:
        """Books followed, fresh (usable and younger than `risk.max_book_age_ms`), and suspect."""
        now = trio.current_time()
        max_age = self.settings.risk.max_book_age_ms / 1000
        healths = [t.health(now) for t in self.venue.books.tokens()]
        return {
            "books": len(healths),
            "fresh": sum(1 for h in healths if _fresh(h, max_age)),
            "suspect": sum(1 for h in healths if h.suspect),
        }

    def status_line(self) -> dict[str, object]:
        """The console's periodic `status` event: state (and why, when not ACTIVE), money, fills, refusals by
        reason (all kinds together, most frequent first) and book health."""
        money = self.money()
        halt = self.halt()
        refused: Counter[str] = Counter()
        for counts in self.refusals().values():
            refused.update(counts)
        books = self.books_health()
        return {
            "state": str(self.core.execution.risk.state),
            "halt": None if halt is None else f"{halt['reason']}, by {halt['by']}",
            "equity": money["equity"],
            "cash": money["cash"],
            "locked": str(self.core.execution.buying_power()[1]),
            "realized_pnl": money["realized_pnl"],
            "unrealized_pnl": money["unrealized_pnl"],
            "fills": self.core.manager.statistics().fills,
            "refusals": dict(refused.most_common()),
            "books": f"{books['fresh']}/{books['books']} fresh"
            + (f", {books['suspect']} suspect" * bool(books["suspect"])),
        }

    def brief_status(self) -> dict[str, object]:
        """`/status`: what a person reads, a few KB at most. Markets by name; `/status?full=1` has everything."""
        execution = self.core.execution
        stats = execution.statistics()
        portfolio = self.core.manager.portfolio
        marks = self.core.marks()
        positions = []
        for token_id, position in portfolio.positions.items():
            if position.is_flat:
                continue
            mark = marks.get(token_id)
            positions.append(
                {
                    "market": NAMES.name(token_id),
                    "token_id": token_id,
                    "quantity": str(position.quantity),
                    "avg_cost": None if position.avg_cost is None else str(position.avg_cost),
                    "unrealized_pnl": None if mark is None else str(position.unrealized_pnl(mark)),
                }
            )
        positions.sort(key=lambda p: str(p["market"] or p["token_id"]))
        orders = list(self.core.manager.open_orders())
        discovery = self.venue.discovery
        return {
            "mode": self.mode,
            "venue": str(self.settings.run.venue),
            "trading_state": str(execution.risk.state),
            "halt": self.halt(),
            "money": {
                **self.money(),
                "locked": str(execution.buying_power()[1]),
                "daily_pnl": str(self.core.risk.daily_pnl),
            },
            "activity": {
                "intents": stats.intents_received,
                "orders_submitted": stats.orders.submitted,
                "fills": stats.orders.fills,
                "open_orders": len(orders),
                "arbitrage": by_count(stats.arbitrage.by_status),
            },
            "refusals": self.refusals(),
            "markets": {
                "followed": len(self.venue.tracked),
                "found": discovery.found,
                "discovery_complete": discovery.complete,
                "discovery_problem": discovery.incomplete_reason or discovery.last_error,
                **self.books_health(),
            },
            "positions": positions[:_BRIEF_ROWS],
            "positions_not_shown": max(0, len(positions) - _BRIEF_ROWS),
            "open_orders": [
                {
                    "market": NAMES.name(o.token_id),
                    "side": str(o.side),
                    "price": str(o.price),
                    "size": str(o.size),
                    "filled": str(o.filled),
                    "strategy": o.strategy,
                }
                for o in orders[:_BRIEF_ROWS]
            ],
            "open_orders_not_shown": max(0, len(orders) - _BRIEF_ROWS),
            "problems": self.problems(),
            "full": "/status?full=1",
        }

    def problems(self) -> list[str]:
        """What needs a look now, each a sentence: readiness checks failing, open breakers, the venue's trading
        restrictions, orders in doubt, the store down."""
        found = [f"not ready: {name}" for name, ok in self.readiness().items() if not ok]
        found += [
            f"the {family} breaker is {b['state']}: calls to the venue are refused until a probe succeeds"
            for family, b in self.breakers().items()
            if b["state"] != str(BreakerState.CLOSED)
        ]
        now = trio.current_time()
        found += [
            f"venue restriction {a.restriction} ({a.code})"
            for a in self.core.manager.restrictions.statistics(now).active
        ]
        unknown = len(self.core.manager.unresolved())
        if unknown:
            found.append(f"{unknown} order(s) in doubt (UNKNOWN): the engine is asking the venue")
        if not self.sinks.store.available:
            found.append("the store is unavailable: trading is halted until it is back")
        return found

    async def emergency_stop(self, reason: str) -> None:
        self.sinks.outputs.stop_source = "http"
        await self.core.execution.emergency_stop(reason, by="the operator (HTTP /emergency-stop)")

    async def resume(self) -> None:
        await self.core.execution.resume()


async def log_status_lines(status_line: Callable[[], Mapping[str, object]], period_secs: float) -> NoReturn:
    """Log the `status` event every `period_secs` (drift-free): `Control.status_line`, the console's line of how
    the engine is doing."""
    ticks = Ticker(period_secs)
    while True:
        await ticks.next()
        log.info("status", **status_line())


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningEngine:
    """A started engine: its control facade and where the operator HTTP server listens."""

    control: Control
    http_url: str

    @property
    def execution(self) -> ExecutionService:
        return self.control.core.execution

    @property
    def outputs(self) -> Outputs:
        return self.control.sinks.outputs

    @property
    def sim(self) -> SimVenue | None:
        return self.control.venue.sim

    @property
    def market_data(self) -> MarketDataService:
        return self.control.venue.market_data

    @property
    def store(self) -> EngineStore:
        return self.control.sinks.store

    @property
    def store_gate(self) -> StoreGate:
        return self.control.store_gate

    @property
    def venue_gate(self) -> VenueGate:
        return self.control.venue_gate

    def store_available(self) -> bool:
        return self.control.sinks.store.available


#: positions and open orders shown by `/status` (all of them with ?full=1)
_BRIEF_ROWS = 20


def _fresh(health: BookHealth, max_age_secs: float) -> bool:
    return health.usable and health.age_secs is not None and health.age_secs <= max_age_secs
