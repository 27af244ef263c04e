"""`MemoryStore`: the `Store` protocol in memory, for the engine's unit tests and for backtests (`trader.app.backtest`).

It is held to the same contract as the SQLite and PostgreSQL stores (`tests/integrations/test_store.py` runs it
too): details are stored as the databases store them (JSON, secrets scrubbed), loads come back in the databases'
order, and a closed store refuses calls. `fail_writes` makes every write raise `StoreError` (a store outage).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import trio

from trader.domain.market import Market
from trader.domain.positions import Position
from trader.integrations.store.base import (
    CapitalOpRecord,
    DailyPnlRecord,
    DuplicateKeyError,
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
    StoreStatistics,
    TradeRecord,
    dump_detail,
    load_detail,
)

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class MemoryStore:
    """The `Store` protocol in memory. `fail_writes` makes every write raise `StoreError` (a store outage)."""

    fail_writes: bool = False
    intents: dict[str, IntentRecord] = field(default_factory=dict)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    order_events: dict[str, list[OrderEventRecord]] = field(default_factory=dict)
    trades: dict[tuple[str, str], TradeRecord] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    risk_events: list[RiskEventRecord] = field(default_factory=list)
    markets: dict[str, Market] = field(default_factory=dict)
    daily_pnl: dict[dt.date, DailyPnlRecord] = field(default_factory=dict)
    equity: dict[int, EquitySample] = field(default_factory=dict)
    sniped: dict[str, SnipedMarket] = field(default_factory=dict)
    opportunities: list[OpportunityRecord] = field(default_factory=list)
    capital_ops: dict[str, CapitalOpRecord] = field(default_factory=dict)
    scope: StoreScope | None = None
    paper_wallet: PaperWalletRecord | None = None
    writes: int = 0
    reads: int = 0
    errors: int = 0
    closed: bool = False  # set by whoever plays the store's lifetime (the contract tests); calls then refuse

    async def _write(self) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        if self.fail_writes:
            self.errors += 1
            raise StoreError("memory store: writes are failing (scripted)")
        self.writes += 1

    async def _read(self) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        self.reads += 1

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("memory store: closed")

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None:
        del ts_ns
        await self._write()
        self.markets[market.condition_id] = market

    async def load_markets(self) -> list[Market]:
        await self._read()
        return [self.markets[k] for k in sorted(self.markets)]

    async def record_intent(self, intent: IntentRecord) -> None:
        await self.record_intents((intent,))

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        await self._write()
        ids = [i.client_order_id for i in intents]
        if len(set(ids)) != len(ids) or any(cid in self.intents for cid in ids):
            raise DuplicateKeyError(f"an intent of {ids} exists")
        for intent in intents:
            self.intents[intent.client_order_id] = intent

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        await self._write()
        intent = self.intents.get(client_order_id)
        if intent is None:
            raise StoreError(f"unknown intent {client_order_id}")
        self.intents[client_order_id] = replace(
            intent, state=state, reason=reason, resolved_at_ns=ts_ns, order_id=order_id or intent.order_id
        )

    async def load_pending_intents(self) -> list[IntentRecord]:
        await self._read()
        pending = [i for i in self.intents.values() if i.state is IntentState.PENDING]
        return sorted(pending, key=lambda i: (i.created_at_ns, i.client_order_id))

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        await self._write()
        previous = self.orders.get(order.order_id)
        self.orders[order.order_id] = order
        if previous is None or (previous.status, previous.size_matched) != (order.status, order.size_matched):
            events = self.order_events.setdefault(order.order_id, [])
            events.append(
                OrderEventRecord(
                    order_id=order.order_id,
                    seq=len(events) + 1,
                    status=order.status,
                    size_matched=order.size_matched,
                    reason=reason,
                    ts_ns=order.updated_at_ns,
                )
            )

    async def load_open_orders(self) -> list[OrderRecord]:
        await self._read()
        open_orders = [o for o in self.orders.values() if o.status.is_open]
        return sorted(open_orders, key=lambda o: (o.created_at_ns, o.order_id))

    async def load_order(self, order_id: str) -> OrderRecord | None:
        await self._read()
        return self.orders.get(order_id)

    @property
    def available(self) -> bool:
        return not self.fail_writes

    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]:
        await self._read()
        return list(self.order_events.get(order_id, ()))

    async def record_trade(self, trade: TradeRecord) -> None:
        await self._write()
        self.trades[(trade.trade_id, trade.order_id)] = trade

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]:
        await self._read()
        trades = [t for t in self.trades.values() if since_ns is None or t.match_time_ns >= since_ns]
        return sorted(trades, key=lambda t: (t.match_time_ns, t.trade_id, t.order_id))

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        del ts_ns
        await self._write()
        self.positions[position.token_id] = position

    async def load_positions(self) -> list[Position]:
        await self._read()
        return [self.positions[k] for k in sorted(self.positions)]

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None:
        await self._write()
        self.daily_pnl[pnl.day] = pnl

    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None:
        await self._read()
        return self.daily_pnl.get(day)

    async def record_equity(self, sample: EquitySample) -> None:
        await self._write()
        self.equity[sample.ts_ns] = sample

    async def load_equity(self, *, since_ns: int | None = None) -> list[EquitySample]:
        await self._read()
        return [self.equity[ts] for ts in sorted(self.equity) if since_ns is None or ts >= since_ns]

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await self._write()
        self.risk_events.append(replace(event, detail=_stored(event.detail)))

    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]:
        await self._read()
        events = [e for e in self.risk_events if since_ns is None or e.ts_ns >= since_ns]
        return sorted(events, key=lambda e: (e.ts_ns, e.event_id))

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        await self._write()
        if sniped.condition_id in self.sniped:
            return False
        self.sniped[sniped.condition_id] = replace(sniped, detail=_stored(sniped.detail))
        return True

    async def load_sniped_markets(self) -> list[SnipedMarket]:
        await self._read()
        return sorted(self.sniped.values(), key=lambda m: m.sniped_at_ns)

    async def claim_scope(self, scope: StoreScope, *, ts_ns: int) -> StoreScope:
        del ts_ns
        await self._write()
        if self.scope is None:
            self.scope = scope
        return self.scope

    async def load_scope(self) -> StoreScope | None:
        await self._read()
        return self.scope

    async def record_paper_wallet(self, wallet: PaperWalletRecord) -> None:
        await self._write()
        self.paper_wallet = wallet

    async def load_paper_wallet(self) -> PaperWalletRecord | None:
        await self._read()
        return self.paper_wallet

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        await self._write()
        self.opportunities.extend(replace(o, detail=_stored(o.detail)) for o in opportunities)

    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]:
        await self._read()
        found = [o for o in self.opportunities if since_ns is None or o.ts_ns >= since_ns]
        return sorted(found, key=lambda o: (o.ts_ns, o.opportunity_id))

    async def record_capital_op(self, op: CapitalOpRecord) -> None:
        await self._write()
        previous = self.capital_ops.get(op.op_id)
        if previous is not None:  # an update keeps what the first write said of the operation
            op = replace(
                previous, state=op.state, tx_hash=op.tx_hash, message=op.message, updated_at_ns=op.updated_at_ns
            )
        self.capital_ops[op.op_id] = op

    async def load_open_capital_ops(self) -> list[CapitalOpRecord]:
        await self._read()
        found = [op for op in self.capital_ops.values() if op.state.is_open]
        return sorted(found, key=lambda op: (op.created_at_ns, op.op_id))

    async def load_capital_ops(self) -> list[CapitalOpRecord]:
        await self._read()
        return sorted(self.capital_ops.values(), key=lambda op: (op.created_at_ns, op.op_id))

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(writes=self.writes, reads=self.reads, errors=self.errors, schema_version=0)


def _stored(detail: object) -> dict[str, object]:
    """A detail mapping as a database keeps it: JSON, with anything secret-looking scrubbed."""
    assert isinstance(detail, dict) or hasattr(detail, "items")
    return load_detail(dump_detail(detail))  # type: ignore[arg-type]
