"""The part of a SQL `Store` that is the same on every driver: each method here is one statement of `rows`.

A driver subclasses `SqlStore` and gives three primitives that run a statement written with `$n` parameters
(`_execute`, `_fetch`, `_fetchrow`), then adds what it does its own way: `record_order` (the upsert and its event
in one atomic step), `record_intents` and `record_opportunities` (batches, all rows or none), opening, closing
and `statistics`.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence

from trader.domain.market import Market
from trader.domain.positions import Position
from trader.integrations.store import rows
from trader.integrations.store.base import (
    CapitalOpRecord,
    DailyPnlRecord,
    EquitySample,
    IntentRecord,
    IntentState,
    OpportunityRecord,
    OrderEventRecord,
    OrderRecord,
    PaperWalletRecord,
    RiskEventRecord,
    SnipedMarket,
    StoreError,
    StoreScope,
    TradeRecord,
)


class SqlStore(abc.ABC):
    """The `Store` methods that are one shared statement each, over a driver's three primitives."""

    @abc.abstractmethod
    async def _execute(self, sql: str, *args: object) -> int:
        """Run one write; the number of rows it changed."""

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: object) -> list[rows.Row]:
        """Run one query; all its rows."""

    @abc.abstractmethod
    async def _fetchrow(self, sql: str, *args: object) -> rows.Row | None:
        """Run one query; its first row, or None."""

    # -- markets --------------------------------------------------------------------------------------------------

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None:
        await self._execute(rows.UPSERT_MARKET, *rows.market_values(market, ts_ns=ts_ns))

    async def load_markets(self) -> list[Market]:
        return [rows.market_from_row(r) for r in await self._fetch(rows.SELECT_MARKETS)]

    # -- intents (write-ahead) ------------------------------------------------------------------------------------

    async def record_intent(self, intent: IntentRecord) -> None:
        await self.record_intents((intent,))

    @abc.abstractmethod
    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        """All of the intents in one transaction, or none (`DuplicateKeyError` if one exists)."""

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        updated = await self._execute(rows.RESOLVE_INTENT, state.value, reason, ts_ns, order_id, client_order_id)
        if updated != 1:
            raise StoreError(f"no intent with client_order_id {client_order_id!r}")

    async def load_pending_intents(self) -> list[IntentRecord]:
        selected = await self._fetch(rows.SELECT_INTENTS_IN_STATE, IntentState.PENDING.value)
        return [rows.intent_from_row(r) for r in selected]

    async def load_intent(self, client_order_id: str) -> IntentRecord | None:
        row = await self._fetchrow(rows.SELECT_INTENT, client_order_id)
        return None if row is None else rows.intent_from_row(row)

    # -- orders (`record_order` is the driver's) ------------------------------------------------------------------

    async def load_open_orders(self) -> list[OrderRecord]:
        return [rows.order_from_row(r) for r in await self._fetch(rows.SELECT_OPEN_ORDERS)]

    async def load_order(self, order_id: str) -> OrderRecord | None:
        row = await self._fetchrow(rows.SELECT_ORDER, order_id)
        return None if row is None else rows.order_from_row(row)

    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]:
        return [rows.order_event_from_row(r) for r in await self._fetch(rows.SELECT_ORDER_EVENTS, order_id)]

    # -- trades ---------------------------------------------------------------------------------------------------

    async def record_trade(self, trade: TradeRecord) -> None:
        await self._execute(rows.UPSERT_TRADE, *rows.trade_values(trade))

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]:
        return [rows.trade_from_row(r) for r in await self._fetch(rows.SELECT_TRADES_SINCE, rows.since(since_ns))]

    # -- positions and PnL ----------------------------------------------------------------------------------------

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        await self._execute(rows.UPSERT_POSITION, *rows.position_values(position, ts_ns=ts_ns))

    async def load_positions(self) -> list[Position]:
        return [rows.position_from_row(r) for r in await self._fetch(rows.SELECT_POSITIONS)]

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None:
        await self._execute(rows.UPSERT_DAILY_PNL, *rows.daily_pnl_values(pnl))

    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None:
        row = await self._fetchrow(rows.SELECT_DAILY_PNL, rows.day_value(day))
        return None if row is None else rows.daily_pnl_from_row(row)

    async def record_equity(self, sample: EquitySample) -> None:
        await self._execute(rows.UPSERT_EQUITY, *rows.equity_values(sample))

    async def load_equity(self, *, since_ns: int | None = None) -> list[EquitySample]:
        return [rows.equity_from_row(r) for r in await self._fetch(rows.SELECT_EQUITY_SINCE, rows.since(since_ns))]

    # -- risk events ----------------------------------------------------------------------------------------------

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await self._execute(rows.INSERT_RISK_EVENT, *rows.risk_event_values(event))

    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]:
        selected = await self._fetch(rows.SELECT_RISK_EVENTS_SINCE, rows.since(since_ns))
        return [rows.risk_event_from_row(r) for r in selected]

    # -- sniped markets -------------------------------------------------------------------------------------------

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        return await self._execute(rows.INSERT_SNIPED, *rows.sniped_values(sniped)) == 1

    async def load_sniped_markets(self) -> list[SnipedMarket]:
        return [rows.sniped_from_row(r) for r in await self._fetch(rows.SELECT_SNIPED)]

    # -- the account scope and the paper wallet -------------------------------------------------------------------

    async def claim_scope(self, scope: StoreScope, *, ts_ns: int) -> StoreScope:
        await self._execute(rows.INSERT_SCOPE, *rows.scope_values(scope, ts_ns=ts_ns))
        kept = await self.load_scope()
        if kept is None:  # pragma: no cover - the row was just written, or was there
            raise StoreError("account_scope: no row after claiming it")
        return kept

    async def load_scope(self) -> StoreScope | None:
        row = await self._fetchrow(rows.SELECT_SCOPE)
        return None if row is None else rows.scope_from_row(row)

    async def record_paper_wallet(self, wallet: PaperWalletRecord) -> None:
        await self._execute(rows.UPSERT_PAPER_WALLET, *rows.paper_wallet_values(wallet))

    async def load_paper_wallet(self) -> PaperWalletRecord | None:
        row = await self._fetchrow(rows.SELECT_PAPER_WALLET)
        return None if row is None else rows.paper_wallet_from_row(row)

    # -- opportunities (`record_opportunities` is the driver's) ---------------------------------------------------

    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]:
        selected = await self._fetch(rows.SELECT_OPPORTUNITIES_SINCE, rows.since(since_ns))
        return [rows.opportunity_from_row(r) for r in selected]

    # -- capital operations ---------------------------------------------------------------------------------------

    async def record_capital_op(self, op: CapitalOpRecord) -> None:
        await self._execute(rows.UPSERT_CAPITAL_OP, *rows.capital_op_values(op))

    async def load_open_capital_ops(self) -> list[CapitalOpRecord]:
        return [rows.capital_op_from_row(r) for r in await self._fetch(rows.SELECT_OPEN_CAPITAL_OPS)]

    async def load_capital_ops(self) -> list[CapitalOpRecord]:
        return [rows.capital_op_from_row(r) for r in await self._fetch(rows.SELECT_CAPITAL_OPS)]
