"""Rows and records: how markets, intents, orders, trades, positions, PnL, risk events, sniped markets,
opportunities, the account scope and the paper wallet sit in the tables of `migrations/`, written once for every
driver.

For each table: the SQL that writes and reads it, `<thing>_values(record)` (the parameters of the write, in the
statement's order) and `<thing>_from_row(row)` (a selected row back to its record, by column position). The column
order of a SELECT is the contract with its `_from_row`, which is why both live here, side by side. These functions
are pure: no I/O, no driver.

Drivers. The SQLite and the PostgreSQL stores run the same statements. They are written with PostgreSQL's numbered
parameters `$1, $2, ...`; `sqlite_sql` rewrites them as SQLite's `?1, ?2, ...` (the same numbers, the same meaning).
What a driver hands back differs in one way only, checked against both (asyncpg 0.32, sqlite3 3.40):

| column type | sqlite3            | asyncpg          | read with |
| ----------- | ------------------ | ---------------- | --------- |
| TEXT        | `str`              | `str`            | as is; `Decimal(text)` for amounts (exact, never float) |
| BIGINT      | `int`              | `int`            | as is |
| INTEGER     | `int`              | `int`            | as is |
| BOOLEAN     | `int` 0 or 1       | `bool`           | `flag` (either, nothing else) |
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, Protocol

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import Side
from trader.domain.positions import Position
from trader.integrations.store.base import (
    CapitalOpRecord,
    CapitalOpState,
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
    TradingMode,
    dump_detail,
    load_detail,
)

Values = tuple[object, ...]

#: The smallest BIGINT: "since the beginning" for the `since_ns` loads.
MIN_BIGINT = -(2**63)


class Row(Protocol):
    """A selected row: a sqlite3 tuple or an asyncpg `Record`, read by column position."""

    def __getitem__(self, index: int, /) -> Any: ...


def sqlite_sql(sql: str) -> str:
    """The statement with `$n` parameters spelled as SQLite's `?n` (no statement here has a `$` in a literal)."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


def flag(value: object, column: str) -> bool:
    """A BOOLEAN column: sqlite3 returns the integer 0 or 1, asyncpg a `bool`. Anything else is a corrupt row."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return value == 1
    raise StoreError(f"{column}: expected a stored boolean, got {value!r}")


def since(since_ns: int | None) -> int:
    """The lower bound of a `since_ns` load: everything when None."""
    return MIN_BIGINT if since_ns is None else since_ns


# -- schema migrations -----------------------------------------------------------------------------------------

CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_ns BIGINT NOT NULL
)
"""
SELECT_APPLIED_MIGRATIONS = "SELECT version, checksum FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name, checksum, applied_at_ns) VALUES ($1, $2, $3, $4)"

# -- markets ---------------------------------------------------------------------------------------------------

UPSERT_MARKET = """
    INSERT INTO markets (condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size,
                         neg_risk, neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active,
                         accepting_orders, closed, end_date_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
    ON CONFLICT (condition_id) DO UPDATE SET
        question = excluded.question, slug = excluded.slug, yes_token_id = excluded.yes_token_id,
        no_token_id = excluded.no_token_id, outcomes = excluded.outcomes, tick_size = excluded.tick_size,
        min_order_size = excluded.min_order_size, neg_risk = excluded.neg_risk,
        neg_risk_market_id = excluded.neg_risk_market_id, fee_rate = excluded.fee_rate,
        fee_exponent = excluded.fee_exponent, fee_taker_only = excluded.fee_taker_only, active = excluded.active,
        accepting_orders = excluded.accepting_orders, closed = excluded.closed, end_date_ns = excluded.end_date_ns,
        updated_at_ns = excluded.updated_at_ns
"""
SELECT_MARKETS = """
    SELECT condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size, neg_risk,
           neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active, accepting_orders, closed, end_date_ns
    FROM markets ORDER BY condition_id
"""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _datetime_to_ns(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // dt.timedelta(microseconds=1) * 1_000


def _ns_to_datetime(ns: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def _exponent(text: str) -> Decimal | int:
    value = Decimal(text)
    return int(value) if "." not in text and "E" not in text.upper() else value


def market_values(market: Market, *, ts_ns: int) -> Values:
    return (
        market.condition_id,
        market.question,
        market.slug,
        market.yes_token_id,
        market.no_token_id,
        json.dumps(list(market.outcomes)),
        str(market.tick_size),
        str(market.min_order_size),
        market.neg_risk,
        market.neg_risk_market_id,
        str(market.fees.rate),
        str(market.fees.exponent),
        market.fees.taker_only,
        market.active,
        market.accepting_orders,
        market.closed,
        None if market.end_date is None else _datetime_to_ns(market.end_date),
        ts_ns,
    )


def market_from_row(r: Row) -> Market:
    outcomes = json.loads(r[5])
    return Market(
        condition_id=r[0],
        question=r[1],
        slug=r[2],
        yes_token_id=r[3],
        no_token_id=r[4],
        outcomes=(outcomes[0], outcomes[1]),
        tick_size=Decimal(r[6]),
        min_order_size=Decimal(r[7]),
        neg_risk=flag(r[8], "markets.neg_risk"),
        neg_risk_market_id=r[9],
        fees=FeeSchedule(
            rate=Decimal(r[10]), exponent=_exponent(r[11]), taker_only=flag(r[12], "markets.fee_taker_only")
        ),
        active=flag(r[13], "markets.active"),
        accepting_orders=flag(r[14], "markets.accepting_orders"),
        closed=flag(r[15], "markets.closed"),
        end_date=None if r[16] is None else _ns_to_datetime(r[16]),
    )


# -- intents (write-ahead) -------------------------------------------------------------------------------------

INSERT_INTENT = """
    INSERT INTO order_intents (client_order_id, order_id, strategy, condition_id, token_id, side, price, size,
                               order_type, post_only, expiration, group_id, created_at_ns, state, reason,
                               resolved_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""
_SELECT_INTENTS = """
    SELECT client_order_id, order_id, strategy, condition_id, token_id, side, price, size, order_type, post_only,
           expiration, group_id, created_at_ns, state, reason, resolved_at_ns
    FROM order_intents
"""
SELECT_INTENTS_IN_STATE = _SELECT_INTENTS + " WHERE state = $1 ORDER BY created_at_ns, client_order_id"
SELECT_INTENT = _SELECT_INTENTS + " WHERE client_order_id = $1"
# Parameters: state, reason, resolved_at_ns, order_id (None keeps the stored one), client_order_id.
RESOLVE_INTENT = """
    UPDATE order_intents SET state = $1, reason = $2, resolved_at_ns = $3, order_id = COALESCE($4, order_id)
    WHERE client_order_id = $5
"""


def intent_values(intent: IntentRecord) -> Values:
    return (
        intent.client_order_id,
        intent.order_id,
        intent.strategy,
        intent.condition_id,
        intent.token_id,
        intent.side.value,
        str(intent.price),
        str(intent.size),
        intent.order_type.value,
        intent.post_only,
        intent.expiration,
        intent.group_id,
        intent.created_at_ns,
        intent.state.value,
        intent.reason,
        intent.resolved_at_ns,
    )


def intent_from_row(r: Row) -> IntentRecord:
    return IntentRecord(
        client_order_id=r[0],
        order_id=r[1],
        strategy=r[2],
        condition_id=r[3],
        token_id=r[4],
        side=Side(r[5]),
        price=Decimal(r[6]),
        size=Decimal(r[7]),
        order_type=OrderType(r[8]),
        post_only=flag(r[9], "order_intents.post_only"),
        expiration=r[10],
        group_id=r[11],
        created_at_ns=r[12],
        state=IntentState(r[13]),
        reason=r[14],
        resolved_at_ns=r[15],
    )


# -- orders ----------------------------------------------------------------------------------------------------

# Parameters: `order_values` ($1..$15). Known ids are never overwritten by an update that does not know them.
UPSERT_ORDER = """
    INSERT INTO orders (order_id, client_order_id, strategy, condition_id, token_id, side, price, original_size,
                        size_matched, order_type, status, reason, is_open, created_at_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (order_id) DO UPDATE SET
        client_order_id = COALESCE(excluded.client_order_id, orders.client_order_id),
        strategy = COALESCE(excluded.strategy, orders.strategy),
        condition_id = COALESCE(excluded.condition_id, orders.condition_id),
        size_matched = excluded.size_matched, status = excluded.status, reason = excluded.reason,
        is_open = excluded.is_open, updated_at_ns = excluded.updated_at_ns
"""
_SELECT_ORDERS = """
    SELECT order_id, client_order_id, strategy, condition_id, token_id, side, price, original_size, size_matched,
           order_type, status, reason, created_at_ns, updated_at_ns
    FROM orders
"""
SELECT_OPEN_ORDERS = _SELECT_ORDERS + " WHERE is_open = TRUE ORDER BY created_at_ns, order_id"
SELECT_ORDER = _SELECT_ORDERS + " WHERE order_id = $1"
SELECT_ORDER_EVENTS = """
    SELECT order_id, seq, status, size_matched, reason, ts_ns FROM order_events WHERE order_id = $1 ORDER BY seq
"""


def order_values(order: OrderRecord) -> Values:
    return (
        order.order_id,
        order.client_order_id,
        order.strategy,
        order.condition_id,
        order.token_id,
        order.side.value,
        str(order.price),
        str(order.original_size),
        str(order.size_matched),
        order.order_type.value,
        order.status.value,
        order.reason,
        order.status.is_open,
        order.created_at_ns,
        order.updated_at_ns,
    )


def order_from_row(r: Row) -> OrderRecord:
    return OrderRecord(
        order_id=r[0],
        client_order_id=r[1],
        strategy=r[2],
        condition_id=r[3],
        token_id=r[4],
        side=Side(r[5]),
        price=Decimal(r[6]),
        original_size=Decimal(r[7]),
        size_matched=Decimal(r[8]),
        order_type=OrderType(r[9]),
        status=OrderStatus(r[10]),
        reason=r[11],
        created_at_ns=r[12],
        updated_at_ns=r[13],
    )


def order_event_from_row(r: Row) -> OrderEventRecord:
    return OrderEventRecord(
        order_id=r[0], seq=r[1], status=OrderStatus(r[2]), size_matched=Decimal(r[3]), reason=r[4], ts_ns=r[5]
    )


# -- trades ----------------------------------------------------------------------------------------------------

UPSERT_TRADE = """
    INSERT INTO trades (trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity,
                        status, match_time_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (trade_id, order_id) DO UPDATE SET
        client_order_id = COALESCE(excluded.client_order_id, trades.client_order_id),
        status = excluded.status, fee = excluded.fee, fee_shares = excluded.fee_shares,
        updated_at_ns = excluded.updated_at_ns
"""
SELECT_TRADES_SINCE = """
    SELECT trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity, status,
           match_time_ns, updated_at_ns
    FROM trades WHERE match_time_ns >= $1 ORDER BY match_time_ns, trade_id, order_id
"""


def trade_values(trade: TradeRecord) -> Values:
    return (
        trade.trade_id,
        trade.order_id,
        trade.client_order_id,
        trade.token_id,
        trade.side.value,
        str(trade.price),
        str(trade.size),
        str(trade.fee),
        str(trade.fee_shares),
        trade.liquidity.value,
        trade.status.value,
        trade.match_time_ns,
        trade.updated_at_ns,
    )


def trade_from_row(r: Row) -> TradeRecord:
    return TradeRecord(
        trade_id=r[0],
        order_id=r[1],
        client_order_id=r[2],
        token_id=r[3],
        side=Side(r[4]),
        price=Decimal(r[5]),
        size=Decimal(r[6]),
        fee=Decimal(r[7]),
        fee_shares=Decimal(r[8]),
        liquidity=Liquidity(r[9]),
        status=TradeStatus(r[10]),
        match_time_ns=r[11],
        updated_at_ns=r[12],
    )


# -- positions and PnL -----------------------------------------------------------------------------------------

UPSERT_POSITION = """
    INSERT INTO positions (token_id, quantity, cost_basis, realized_pnl, fees_paid, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (token_id) DO UPDATE SET
        quantity = excluded.quantity, cost_basis = excluded.cost_basis, realized_pnl = excluded.realized_pnl,
        fees_paid = excluded.fees_paid, updated_at_ns = excluded.updated_at_ns
"""
SELECT_POSITIONS = "SELECT token_id, quantity, cost_basis, realized_pnl, fees_paid FROM positions ORDER BY token_id"
UPSERT_DAILY_PNL = """
    INSERT INTO daily_pnl (day, realized, unrealized, fees, updated_at_ns, baseline) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (day) DO UPDATE SET
        realized = excluded.realized, unrealized = excluded.unrealized, fees = excluded.fees,
        updated_at_ns = excluded.updated_at_ns, baseline = excluded.baseline
"""
SELECT_DAILY_PNL = "SELECT day, realized, unrealized, fees, updated_at_ns, baseline FROM daily_pnl WHERE day = $1"


UPSERT_EQUITY = """
    INSERT INTO equity_samples (ts_ns, equity, cash, positions_value, realized_pnl, unrealized_pnl)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (ts_ns) DO UPDATE SET
        equity = excluded.equity, cash = excluded.cash, positions_value = excluded.positions_value,
        realized_pnl = excluded.realized_pnl, unrealized_pnl = excluded.unrealized_pnl
"""
SELECT_EQUITY_SINCE = """
    SELECT ts_ns, equity, cash, positions_value, realized_pnl, unrealized_pnl FROM equity_samples
    WHERE ts_ns >= $1 ORDER BY ts_ns
"""


def equity_values(sample: EquitySample) -> Values:
    return (
        sample.ts_ns,
        str(sample.equity),
        str(sample.cash),
        str(sample.positions_value),
        str(sample.realized_pnl),
        str(sample.unrealized_pnl),
    )


def equity_from_row(r: Row) -> EquitySample:
    return EquitySample(
        ts_ns=r[0],
        equity=Decimal(r[1]),
        cash=Decimal(r[2]),
        positions_value=Decimal(r[3]),
        realized_pnl=Decimal(r[4]),
        unrealized_pnl=Decimal(r[5]),
    )


def position_values(position: Position, *, ts_ns: int) -> Values:
    """The position as kept (its unsettled fill effects are not: trades carry the settlement state)."""
    return (
        position.token_id,
        str(position.quantity),
        str(position.cost_basis),
        str(position.realized_pnl),
        str(position.fees_paid),
        ts_ns,
    )


def position_from_row(r: Row) -> Position:
    return Position(
        token_id=r[0],
        quantity=Decimal(r[1]),
        cost_basis=Decimal(r[2]),
        realized_pnl=Decimal(r[3]),
        fees_paid=Decimal(r[4]),
    )


def day_value(day: dt.date) -> str:
    """The `daily_pnl.day` key: the risk day's start as YYYY-MM-DD."""
    return day.isoformat()


def daily_pnl_values(pnl: DailyPnlRecord) -> Values:
    return (
        day_value(pnl.day),
        str(pnl.realized),
        str(pnl.unrealized),
        str(pnl.fees),
        pnl.updated_at_ns,
        str(pnl.baseline),
    )


def daily_pnl_from_row(r: Row) -> DailyPnlRecord:
    return DailyPnlRecord(
        day=dt.date.fromisoformat(r[0]),
        realized=Decimal(r[1]),
        unrealized=Decimal(r[2]),
        fees=Decimal(r[3]),
        updated_at_ns=r[4],
        baseline=Decimal(r[5]),
    )


# -- the account scope and the paper wallet ------------------------------------------------------------------------

# Inserts nothing (0 rows) when the database keeps a scope already: the check and the write are one statement.
INSERT_SCOPE = """
    INSERT INTO account_scope (id, mode, venue, wallet, claimed_at_ns) VALUES (1, $1, $2, $3, $4)
    ON CONFLICT (id) DO NOTHING
"""
SELECT_SCOPE = "SELECT mode, venue, wallet FROM account_scope WHERE id = 1"
UPSERT_PAPER_WALLET = """
    INSERT INTO paper_wallet (id, cash, reserved, updated_at_ns) VALUES (1, $1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET
        cash = excluded.cash, reserved = excluded.reserved, updated_at_ns = excluded.updated_at_ns
"""
SELECT_PAPER_WALLET = "SELECT cash, reserved, updated_at_ns FROM paper_wallet WHERE id = 1"


def scope_values(scope: StoreScope, *, ts_ns: int) -> Values:
    return (scope.mode.value, scope.venue, scope.wallet, ts_ns)


def scope_from_row(r: Row) -> StoreScope:
    return StoreScope(mode=TradingMode(r[0]), venue=r[1], wallet=r[2])


def paper_wallet_values(wallet: PaperWalletRecord) -> Values:
    return (str(wallet.cash), str(wallet.reserved), wallet.updated_at_ns)


def paper_wallet_from_row(r: Row) -> PaperWalletRecord:
    return PaperWalletRecord(cash=Decimal(r[0]), reserved=Decimal(r[1]), updated_at_ns=r[2])


# -- risk events, sniped markets, opportunities ----------------------------------------------------------------

INSERT_RISK_EVENT = """
    INSERT INTO risk_events (event_id, ts_ns, kind, reason_code, trading_state, detail) VALUES ($1, $2, $3, $4, $5, $6)
"""
SELECT_RISK_EVENTS_SINCE = """
    SELECT event_id, ts_ns, kind, reason_code, trading_state, detail FROM risk_events
    WHERE ts_ns >= $1 ORDER BY ts_ns, event_id
"""
# Inserts nothing (0 rows) when the market was sniped already: the check and the write are one statement.
INSERT_SNIPED = """
    INSERT INTO sniped_markets (condition_id, token_id, sniped_at_ns, detail) VALUES ($1, $2, $3, $4)
    ON CONFLICT (condition_id) DO NOTHING
"""
SELECT_SNIPED = "SELECT condition_id, token_id, sniped_at_ns, detail FROM sniped_markets ORDER BY sniped_at_ns"
INSERT_OPPORTUNITY = """
    INSERT INTO opportunities (opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
SELECT_OPPORTUNITIES_SINCE = """
    SELECT opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail FROM opportunities
    WHERE ts_ns >= $1 ORDER BY ts_ns, opportunity_id
"""


def risk_event_values(event: RiskEventRecord) -> Values:
    return (event.event_id, event.ts_ns, event.kind, event.reason_code, event.trading_state, dump_detail(event.detail))


def risk_event_from_row(r: Row) -> RiskEventRecord:
    return RiskEventRecord(
        event_id=r[0], ts_ns=r[1], kind=r[2], reason_code=r[3], trading_state=r[4], detail=load_detail(r[5])
    )


def sniped_values(sniped: SnipedMarket) -> Values:
    return (sniped.condition_id, sniped.token_id, sniped.sniped_at_ns, dump_detail(sniped.detail))


def sniped_from_row(r: Row) -> SnipedMarket:
    return SnipedMarket(condition_id=r[0], token_id=r[1], sniped_at_ns=r[2], detail=load_detail(r[3]))


def opportunity_values(o: OpportunityRecord) -> Values:
    return (
        o.opportunity_id,
        o.ts_ns,
        o.strategy,
        o.kind,
        o.market,
        str(o.edge),
        str(o.size),
        o.traded,
        dump_detail(o.detail),
    )


def opportunity_from_row(r: Row) -> OpportunityRecord:
    return OpportunityRecord(
        opportunity_id=r[0],
        ts_ns=r[1],
        strategy=r[2],
        kind=r[3],
        market=r[4],
        edge=Decimal(r[5]),
        size=Decimal(r[6]),
        traded=flag(r[7], "opportunities.traded"),
        detail=load_detail(r[8]),
    )


# -- capital operations (merges and redemptions) ------------------------------------------------------------------

UPSERT_CAPITAL_OP = """
    INSERT INTO capital_ops (op_id, kind, condition_id, neg_risk, yes_token_id, no_token_id, yes_amount, no_amount,
                             payout, state, tx_hash, message, created_at_ns, updated_at_ns)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (op_id) DO UPDATE SET state = excluded.state, tx_hash = excluded.tx_hash,
        message = excluded.message, updated_at_ns = excluded.updated_at_ns
"""
_SELECT_CAPITAL_OPS = """
    SELECT op_id, kind, condition_id, neg_risk, yes_token_id, no_token_id, yes_amount, no_amount, payout, state,
           tx_hash, message, created_at_ns, updated_at_ns
    FROM capital_ops
"""
SELECT_OPEN_CAPITAL_OPS = _SELECT_CAPITAL_OPS + " WHERE state IN ('PREPARED', 'PENDING') ORDER BY created_at_ns, op_id"
SELECT_CAPITAL_OPS = _SELECT_CAPITAL_OPS + " ORDER BY created_at_ns, op_id"


def capital_op_values(op: CapitalOpRecord) -> Values:
    return (
        op.op_id,
        op.kind,
        op.condition_id,
        op.neg_risk,
        op.yes_token_id,
        op.no_token_id,
        str(op.yes_amount),
        str(op.no_amount),
        str(op.payout),
        op.state.value,
        op.tx_hash,
        op.message,
        op.created_at_ns,
        op.updated_at_ns,
    )


def capital_op_from_row(r: Row) -> CapitalOpRecord:
    return CapitalOpRecord(
        op_id=r[0],
        kind=r[1],
        condition_id=r[2],
        neg_risk=bool(r[3]),
        yes_token_id=r[4],
        no_token_id=r[5],
        yes_amount=Decimal(r[6]),
        no_amount=Decimal(r[7]),
        payout=Decimal(r[8]),
        state=CapitalOpState(r[9]),
        tx_hash=r[10],
        message=r[11],
        created_at_ns=r[12],
        updated_at_ns=r[13],
    )
