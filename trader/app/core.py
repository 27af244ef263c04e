"""The trading core: strategies -> risk gate -> execution -> the venue (`open_core`).

```
open_core(settings, sinks, venue_side, http, ...)  -> Core         (one nursery, cancelled on exit)
├── order manager        write-ahead, guarded venue calls, the order state machine, the portfolio
├── venue account        live: the signer's rate-limit tier and closed-only, asked periodically (the venue's
│                        trading restrictions reach the risk gate: `trader.engine.restrictions`)
├── espn poller          when the sniper is on: the latest scoreboard
├── opportunities        closed opportunities to the store in batches (`supervisor.opportunities_write_secs`)
├── execution            risk gate -> order tasks, all inside ONE orders scope
└── strategy engine      book changes + 100 ms ticks -> intents (a bounded channel) -> execution
```

Where an order goes, step by step: a strategy emits an intent (`trader.engine.strategy_engine`); the execution
service risk-checks it (`trader.engine.risk.RiskGate.check`, in `trader.engine.execution`); the order manager has the
venue prepare and sign it (`Venue.prepare`), writes it ahead to the store and sends it (`trader.engine.order_manager`);
the paper venue fills it against the books (`trader.venues.paper`), the live venue sends it to Polymarket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import httpx
import structlog
import trio

from trader.app.alerts import ObservedRiskGate, money_alerts
from trader.app.config import Settings
from trader.app.sinks import Sinks, as_json
from trader.app.venue import PaperWalletKeeper, VenueSide
from trader.domain.events import OrderSubmitted
from trader.domain.intents import Intent
from trader.domain.positions import Portfolio, marks_at_mid
from trader.engine.books import Books
from trader.engine.breaker import Breakers
from trader.engine.capital import CapitalService
from trader.engine.execution import ExecutionService, book_health_from, fees_from, tick_from
from trader.engine.funds import Funds
from trader.engine.order_manager import OrderManager
from trader.engine.rate_limit import RateLimiter
from trader.engine.restrictions import follow_restrictions, watch_venue_account
from trader.engine.strategy_engine import StrategyEngine, opportunity_record, store_claim
from trader.integrations.espn import EspnClient, EspnPoller
from trader.integrations.store.base import Store
from trader.strategies import build_analyzers, build_strategies
from trader.strategies.base import Strategy, intent_key
from trader.strategies.sum_deviation import Opportunity

__all__ = ["Core", "OpportunityLog", "open_core"]

log = structlog.get_logger(__name__)


class OpportunityLog:
    """Analyzer events (opportunities) from the strategy engine: to the event bus, the last 100 kept for `/status`,
    and the closed ones buffered for the store (`write`)."""

    def __init__(self, emit: Callable[[object], None], store: Store) -> None:
        self._emit = emit
        self._store = store
        self._closed: list[Opportunity] = []
        self.recent: list[dict[str, object]] = []

    def publish(self, event: object) -> None:
        self._emit(event)
        if isinstance(event, Opportunity):
            self.recent.append(_opportunity_json(event))
            del self.recent[:-100]
            if str(event.status) == "CLOSED":
                self._closed.append(event)

    async def write(self) -> None:
        """Hand the closed opportunities gathered so far to the store (a failure is logged, never raised)."""
        batch, self._closed = self._closed, []
        if batch:
            try:
                await self._store.record_opportunities([opportunity_record(op) for op in batch])
            except Exception as exc:  # a store outage must not stop trading; the records are logged
                log.error("opportunities_write_failed", count=len(batch), error=repr(exc))

    async def run(self, period_secs: float) -> None:
        """Write the closed ones every `period_secs`, off the strategy engine's path."""
        while True:
            await trio.sleep(period_secs)
            await self.write()


@dataclass(frozen=True, slots=True, kw_only=True)
class Core:
    """The open trading core. `strategy_scope` stops the strategies (the first step of shutdown)."""

    books: Books
    manager: OrderManager
    risk: ObservedRiskGate
    funds: Funds
    paper_wallet: PaperWalletKeeper | None
    execution: ExecutionService
    strategy_engine: StrategyEngine
    strategies: tuple[Strategy, ...]
    opportunities: OpportunityLog
    espn: EspnPoller | None
    capital: CapitalService
    strategy_scope: trio.CancelScope

    def marks(self) -> dict[str, Decimal]:
        """Marks at mid of every book (for unrealized PnL)."""
        return marks_at_mid(t.book for t in self.books.tokens())

    def held_marks(self) -> dict[str, Decimal]:
        """Marks at mid of the tokens held: what valuing the positions needs, at a cost that does not grow with the
        markets followed."""
        return _held_marks(self.books, self.manager.portfolio)


@asynccontextmanager
async def open_core(
    settings: Settings,
    sinks: Sinks,
    venue: VenueSide,
    http: httpx.AsyncClient,
    *,
    on_submitted: Callable[[float], None] = lambda _: None,
    fence: Callable[[], bool] | None = None,
) -> AsyncIterator[Core]:
    """Build the core on the open sinks and venue side and start execution and the strategies.

    `on_submitted(seconds)` is told, for each order sent, how long after the latest book change it left (the
    tick-to-trade histogram). `fence()` (active/standby: `Leadership.may_send`) is asked right before every order,
    cancel, merge and redemption leaves; False: it does not."""
    store, books = sinks.store, venue.books
    portfolio = Portfolio(cash=venue.cash, positions=venue.positions)
    manager = OrderManager(
        venue.venue,
        store,
        portfolio=portfolio,
        breakers=Breakers(settings.breaker),
        limiter=RateLimiter(settings.rate_limit),
        settings=settings.orders,
        fence=fence,
    )

    def on_order_event(event: object) -> None:
        if isinstance(event, OrderSubmitted) and books.last_change_at is not None:
            on_submitted(trio.current_time() - books.last_change_at)

    manager.add_listener(on_order_event)
    manager.add_listener(sinks.outputs)  # order events, fills, risk denials -> bus and Slack
    if sinks.outputs.slack is not None:  # balance refusals and residual exposure: alerts
        manager.add_listener(money_alerts(sinks.outputs.slack.notify))
    funds = Funds(venue.capital, portfolio, settings.funds, follow_venue=venue.live is not None)
    manager.add_listener(funds.on_event)  # a fill: read the wallet's collateral again
    wallet = None if venue.paper is None else PaperWalletKeeper(venue.paper, store)
    if wallet is not None:
        manager.add_listener(wallet.on_event)  # a fill, an order resting or closed: the wallet is saved
    # A merge or a redemption moved the wallet: buying power reads it again, the paper wallet is saved.
    capital_listeners = [funds.on_event] if wallet is None else [funds.on_event, wallet.on_event]
    capital = _capital_service(settings, sinks, venue, portfolio, capital_listeners, fence=fence)
    manager.add_listener(capital.wake_on)  # a fill or a settled trade may complete a set
    send, receive = trio.open_memory_channel[Intent](settings.run.intent_buffer)
    sniped = {m.condition_id for m in await store.load_sniped_markets()}
    strategies = build_strategies(
        sum_to_100=settings.sum_to_100,
        clipper=settings.clipper,
        sniper=settings.sniper,
        already_sniped=sniped,
    )
    opportunities = OpportunityLog(sinks.outputs, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(capital.run)  # before trading: what a crash left open is followed, receivables rebuilt
        espn: EspnPoller | None = None
        if settings.sniper.enabled:
            # Where ESPN is: `endpoints.espn_url`, or the in-process sim's own (`--venue sim`).
            espn = EspnPoller(EspnClient(http, venue.endpoints.espn), settings.espn)
            await nursery.start(espn.run)
        strategy_engine = StrategyEngine(
            books=books,
            strategies=strategies,
            analyzers=build_analyzers(settings.sum_deviation),
            intents=send,
            settings=settings.strategy_engine,
            events=lambda: venue.events.current,
            positions=capital,  # the portfolio, less the shares being merged: those are not for sale
            scoreboard=espn.latest if espn is not None else lambda: None,
            claim=store_claim(store),
            publish=opportunities.publish,
            buy_fees_in_shares=venue.paper is not None,  # the paper venue withholds buy fees in shares
        )
        risk = ObservedRiskGate(settings.risk, sinks.outputs)
        # The venue's trading restrictions: what it would refuse is denied at the gate; closed-only -> REDUCING.
        follow_restrictions(risk, manager.restrictions, manager.now)
        await nursery.start(watch_venue_account, manager)
        await nursery.start(funds.run)
        if wallet is not None:
            await nursery.start(wallet.run)
        execution = ExecutionService(
            manager,
            risk,
            receive,
            settings=settings.execution,
            book_health=book_health_from(books),
            tick_of=tick_from(books),
            marks=lambda: _held_marks(books, portfolio),  # what PnL needs: the mids of the tokens held
            on_intent_done=lambda intent: strategy_engine.finish(intent_key(intent)),
            funds=funds,
            fees_of=fees_from(books),
        )
        nursery.start_soon(opportunities.run, settings.supervisor.opportunities_write_secs)
        await nursery.start(execution.run)
        strategy_scope: trio.CancelScope = await nursery.start(strategy_engine.run)
        yield Core(
            books=books,
            manager=manager,
            risk=risk,
            funds=funds,
            paper_wallet=wallet,
            execution=execution,
            strategy_engine=strategy_engine,
            strategies=tuple(strategies),
            opportunities=opportunities,
            espn=espn,
            capital=capital,
            strategy_scope=strategy_scope,
        )
        nursery.cancel_scope.cancel()


def _capital_service(
    settings: Settings,
    sinks: Sinks,
    venue: VenueSide,
    portfolio: Portfolio,
    listeners: Sequence[Callable[[object], None]],
    *,
    fence: Callable[[], bool] | None = None,
) -> CapitalService:
    """Merges, settlements and redemptions through the venue side's `Capital`. What it does goes to the outputs and
    to `listeners`."""
    books = venue.books

    def resolved_winner(condition_id: str) -> str | None:
        cell = books.markets.get(condition_id)
        return None if cell is None else cell.resolved_winner

    def mark_resolved(condition_id: str, winner: str | None) -> None:
        cell = books.mark_resolved(condition_id, winner)
        if cell is not None:
            books.publish([cell])

    return CapitalService(
        venue.capital,
        portfolio,
        venue.directory,
        sinks.store,
        settings.capital,
        resolved_winner=resolved_winner,
        mark_resolved=mark_resolved,
        emit=partial(_tell, (sinks.outputs, *listeners)),
        may_send=fence or (lambda: True),
    )


def _held_marks(books: Books, portfolio: Portfolio) -> dict[str, Decimal]:
    """Marks at mid of the tokens held: what the PnL loop values, at a cost that does not grow with the markets
    followed (a backtest of thousands of markets marks its PnL every second)."""
    return marks_at_mid(tb.book for token in portfolio.positions if (tb := books.get_token(token)) is not None)


def _tell(listeners: Sequence[Callable[[object], None]], event: object) -> None:
    for listener in listeners:
        listener(event)


def _opportunity_json(op: Opportunity) -> dict[str, object]:
    document = as_json(op)
    assert isinstance(document, dict)
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in document.items()}
