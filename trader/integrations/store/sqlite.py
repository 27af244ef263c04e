"""The SQLite `Store`: the standard library's sqlite3 on one dedicated connection, run through `trio.to_thread`.

One connection, WAL journal, autocommit mode with explicit transactions; a `CapacityLimiter(1)` makes sure only
one worker thread touches it at a time. A thread call is not abandoned when the caller is cancelled, so a write
that started completes (and is durable) even if the engine is shutting down around it. `synchronous=FULL` by
default: a committed intent survives a power loss, not only a process crash (pass `"NORMAL"` to trade that for
lower write latency).

Schema changes are the versioned files in `migrations/`, applied in order inside a transaction each and recorded
in `schema_migrations` (version, name, checksum, time). A database whose applied migration differs from the shipped
file, or that is newer than this code, is refused rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Literal, TypeVar

import trio

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import Side
from trader.domain.positions import Position
from trader.integrations.store.base import (
    DailyPnlRecord,
    DuplicateKeyError,
    IntentRecord,
    IntentState,
    Migration,
    OpportunityRecord,
    OrderEventRecord,
    OrderRecord,
    RiskEventRecord,
    SnipedMarket,
    StoreError,
    StoreStatistics,
    TradeRecord,
    dump_detail,
    load_detail,
    load_migrations,
)

T = TypeVar("T")
Synchronous = Literal["FULL", "NORMAL"]

_CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_ns BIGINT NOT NULL
)
"""

_UPSERT_MARKET = """
    INSERT INTO markets (condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size,
                         neg_risk, neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active,
                         accepting_orders, closed, end_date_ns, updated_at_ns)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (condition_id) DO UPDATE SET
        question = excluded.question, slug = excluded.slug, yes_token_id = excluded.yes_token_id,
        no_token_id = excluded.no_token_id, outcomes = excluded.outcomes, tick_size = excluded.tick_size,
        min_order_size = excluded.min_order_size, neg_risk = excluded.neg_risk,
        neg_risk_market_id = excluded.neg_risk_market_id, fee_rate = excluded.fee_rate,
        fee_exponent = excluded.fee_exponent, fee_taker_only = excluded.fee_taker_only, active = excluded.active,
        accepting_orders = excluded.accepting_orders, closed = excluded.closed, end_date_ns = excluded.end_date_ns,
        updated_at_ns = excluded.updated_at_ns
"""
_SELECT_MARKETS = """
    SELECT condition_id, question, slug, yes_token_id, no_token_id, outcomes, tick_size, min_order_size, neg_risk,
           neg_risk_market_id, fee_rate, fee_exponent, fee_taker_only, active, accepting_orders, closed, end_date_ns
    FROM markets ORDER BY condition_id
"""
_INSERT_INTENT = """
    INSERT INTO order_intents (client_order_id, order_id, strategy, condition_id, token_id, side, price, size,
                               order_type, post_only, expiration, group_id, created_at_ns, state, reason,
                               resolved_at_ns)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SELECT_INTENTS = """
    SELECT client_order_id, order_id, strategy, condition_id, token_id, side, price, size, order_type, post_only,
           expiration, group_id, created_at_ns, state, reason, resolved_at_ns
    FROM order_intents
"""
_UPSERT_ORDER = """
    INSERT INTO orders (order_id, client_order_id, strategy, condition_id, token_id, side, price, original_size,
                        size_matched, order_type, status, reason, is_open, created_at_ns, updated_at_ns)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
_UPSERT_TRADE = """
    INSERT INTO trades (trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity,
                        status, match_time_ns, updated_at_ns)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (trade_id, order_id) DO UPDATE SET
        client_order_id = COALESCE(excluded.client_order_id, trades.client_order_id),
        status = excluded.status, fee = excluded.fee, fee_shares = excluded.fee_shares,
        updated_at_ns = excluded.updated_at_ns
"""
_SELECT_TRADES = """
    SELECT trade_id, order_id, client_order_id, token_id, side, price, size, fee, fee_shares, liquidity, status,
           match_time_ns, updated_at_ns
    FROM trades
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


def _now_ns() -> int:
    return time.time_ns()


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations not yet applied, each in its own transaction. Returns the schema version."""
    conn.execute(_CREATE_SCHEMA_MIGRATIONS)
    applied = {row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations")}
    known = {m.version: m for m in migrations}
    newer = sorted(set(applied) - set(known))
    if newer:
        raise StoreError(f"database schema has migrations {newer} that this code does not know: refusing to use it")
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise StoreError(f"migration {migration.version:04d}_{migration.name} changed after it was applied")
            continue
        conn.execute("BEGIN")
        try:
            # sqlite3.executescript would COMMIT first; run the statements one by one inside our transaction.
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at_ns) VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, _now_ns()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return max(known, default=0)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (the files use no semicolons inside strings or triggers)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def _dec(text: str) -> Decimal:
    return Decimal(text)


class SqliteStore:
    """The `Store` on SQLite. Open it with `open_sqlite_store(path)`."""

    def __init__(self, conn: sqlite3.Connection, schema_version: int) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)
        self._schema_version = schema_version
        self._writes = 0
        self._reads = 0
        self._errors = 0
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            result = await trio.to_thread.run_sync(fn, self._conn, limiter=self._limiter)
        except sqlite3.IntegrityError as exc:
            self._errors += 1
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise DuplicateKeyError(f"duplicate key: {exc}") from exc
            raise StoreError(f"sqlite: {exc}") from exc
        except sqlite3.Error as exc:
            self._errors += 1
            raise StoreError(f"sqlite: {exc}") from exc
        if write:
            self._writes += 1
        else:
            self._reads += 1
        return result

    @staticmethod
    def _transaction(conn: sqlite3.Connection, body: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def aclose(self) -> None:
        """Checkpoint the WAL and close. Idempotent."""
        if self._closed:
            return

        def close(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

        await self._run(close, write=False)
        self._closed = True

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(
            writes=self._writes, reads=self._reads, errors=self._errors, schema_version=self._schema_version
        )

    # -- markets --------------------------------------------------------------------------------------------------

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None:
        row = (
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
        await self._run(lambda conn: conn.execute(_UPSERT_MARKET, row), write=True)

    async def load_markets(self) -> list[Market]:
        rows = await self._run(lambda conn: conn.execute(_SELECT_MARKETS).fetchall(), write=False)
        markets = []
        for r in rows:
            outcomes = json.loads(r[5])
            markets.append(
                Market(
                    condition_id=r[0],
                    question=r[1],
                    slug=r[2],
                    yes_token_id=r[3],
                    no_token_id=r[4],
                    outcomes=(outcomes[0], outcomes[1]),
                    tick_size=_dec(r[6]),
                    min_order_size=_dec(r[7]),
                    neg_risk=bool(r[8]),
                    neg_risk_market_id=r[9],
                    fees=FeeSchedule(rate=_dec(r[10]), exponent=_exponent(r[11]), taker_only=bool(r[12])),
                    active=bool(r[13]),
                    accepting_orders=bool(r[14]),
                    closed=bool(r[15]),
                    end_date=None if r[16] is None else _ns_to_datetime(r[16]),
                )
            )
        return markets

    # -- intents (write-ahead) ------------------------------------------------------------------------------------

    async def record_intent(self, intent: IntentRecord) -> None:
        row = (
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
        sql = _INSERT_INTENT
        await self._run(lambda conn: conn.execute(sql, row), write=True)

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        sql = """UPDATE order_intents SET state = ?, reason = ?, resolved_at_ns = ?,
                        order_id = COALESCE(?, order_id)
                 WHERE client_order_id = ?"""
        params = (state.value, reason, ts_ns, order_id, client_order_id)
        updated = await self._run(lambda conn: conn.execute(sql, params).rowcount, write=True)
        if updated != 1:
            raise StoreError(f"no intent with client_order_id {client_order_id!r}")

    async def load_pending_intents(self) -> list[IntentRecord]:
        sql = _SELECT_INTENTS + " WHERE state = ? ORDER BY created_at_ns, client_order_id"
        rows = await self._run(lambda conn: conn.execute(sql, (IntentState.PENDING.value,)).fetchall(), write=False)
        return [self._intent(r) for r in rows]

    async def load_intent(self, client_order_id: str) -> IntentRecord | None:
        sql = _SELECT_INTENTS + " WHERE client_order_id = ?"
        row = await self._run(lambda conn: conn.execute(sql, (client_order_id,)).fetchone(), write=False)
        return None if row is None else self._intent(row)

    @staticmethod
    def _intent(r: Sequence[Any]) -> IntentRecord:
        return IntentRecord(
            client_order_id=r[0],
            order_id=r[1],
            strategy=r[2],
            condition_id=r[3],
            token_id=r[4],
            side=Side(r[5]),
            price=_dec(r[6]),
            size=_dec(r[7]),
            order_type=OrderType(r[8]),
            post_only=bool(r[9]),
            expiration=r[10],
            group_id=r[11],
            created_at_ns=r[12],
            state=IntentState(r[13]),
            reason=r[14],
            resolved_at_ns=r[15],
        )

    # -- orders ---------------------------------------------------------------------------------------------------

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        row = (
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
        upsert = _UPSERT_ORDER

        def write(conn: sqlite3.Connection) -> None:
            def body() -> None:
                before = conn.execute(
                    "SELECT status, size_matched FROM orders WHERE order_id = ?", (order.order_id,)
                ).fetchone()
                conn.execute(upsert, row)
                if before is None or before[0] != order.status.value or _dec(before[1]) != order.size_matched:
                    seq = conn.execute(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM order_events WHERE order_id = ?", (order.order_id,)
                    ).fetchone()[0]
                    conn.execute(
                        "INSERT INTO order_events (order_id, seq, status, size_matched, reason, ts_ns)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (order.order_id, seq, order.status.value, str(order.size_matched), reason, order.updated_at_ns),
                    )

            self._transaction(conn, body)

        await self._run(write, write=True)

    async def load_open_orders(self) -> list[OrderRecord]:
        sql = _SELECT_ORDERS + " WHERE is_open = ? ORDER BY created_at_ns, order_id"
        rows = await self._run(lambda conn: conn.execute(sql, (True,)).fetchall(), write=False)
        return [self._order(r) for r in rows]

    async def load_order(self, order_id: str) -> OrderRecord | None:
        sql = _SELECT_ORDERS + " WHERE order_id = ?"
        row = await self._run(lambda conn: conn.execute(sql, (order_id,)).fetchone(), write=False)
        return None if row is None else self._order(row)

    @staticmethod
    def _order(r: Sequence[Any]) -> OrderRecord:
        return OrderRecord(
            order_id=r[0],
            client_order_id=r[1],
            strategy=r[2],
            condition_id=r[3],
            token_id=r[4],
            side=Side(r[5]),
            price=_dec(r[6]),
            original_size=_dec(r[7]),
            size_matched=_dec(r[8]),
            order_type=OrderType(r[9]),
            status=OrderStatus(r[10]),
            reason=r[11],
            created_at_ns=r[12],
            updated_at_ns=r[13],
        )

    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]:
        sql = """SELECT order_id, seq, status, size_matched, reason, ts_ns FROM order_events
                 WHERE order_id = ? ORDER BY seq"""
        rows = await self._run(lambda conn: conn.execute(sql, (order_id,)).fetchall(), write=False)
        return [
            OrderEventRecord(
                order_id=r[0], seq=r[1], status=OrderStatus(r[2]), size_matched=_dec(r[3]), reason=r[4], ts_ns=r[5]
            )
            for r in rows
        ]

    # -- trades ---------------------------------------------------------------------------------------------------

    async def record_trade(self, trade: TradeRecord) -> None:
        row = (
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
        sql = _UPSERT_TRADE
        await self._run(lambda conn: conn.execute(sql, row), write=True)

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]:
        sql = _SELECT_TRADES + " WHERE match_time_ns >= ? ORDER BY match_time_ns, trade_id, order_id"
        since = -(2**63) if since_ns is None else since_ns
        rows = await self._run(lambda conn: conn.execute(sql, (since,)).fetchall(), write=False)
        return [
            TradeRecord(
                trade_id=r[0],
                order_id=r[1],
                client_order_id=r[2],
                token_id=r[3],
                side=Side(r[4]),
                price=_dec(r[5]),
                size=_dec(r[6]),
                fee=_dec(r[7]),
                fee_shares=_dec(r[8]),
                liquidity=Liquidity(r[9]),
                status=TradeStatus(r[10]),
                match_time_ns=r[11],
                updated_at_ns=r[12],
            )
            for r in rows
        ]

    # -- positions and PnL ----------------------------------------------------------------------------------------

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        row = (
            position.token_id,
            str(position.quantity),
            str(position.cost_basis),
            str(position.realized_pnl),
            str(position.fees_paid),
            ts_ns,
        )
        sql = """
            INSERT INTO positions (token_id, quantity, cost_basis, realized_pnl, fees_paid, updated_at_ns)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (token_id) DO UPDATE SET
                quantity = excluded.quantity, cost_basis = excluded.cost_basis,
                realized_pnl = excluded.realized_pnl, fees_paid = excluded.fees_paid,
                updated_at_ns = excluded.updated_at_ns
        """
        await self._run(lambda conn: conn.execute(sql, row), write=True)

    async def load_positions(self) -> list[Position]:
        sql = "SELECT token_id, quantity, cost_basis, realized_pnl, fees_paid FROM positions ORDER BY token_id"
        rows = await self._run(lambda conn: conn.execute(sql).fetchall(), write=False)
        return [
            Position(
                token_id=r[0], quantity=_dec(r[1]), cost_basis=_dec(r[2]), realized_pnl=_dec(r[3]), fees_paid=_dec(r[4])
            )
            for r in rows
        ]

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None:
        row = (pnl.day.isoformat(), str(pnl.realized), str(pnl.unrealized), str(pnl.fees), pnl.updated_at_ns)
        sql = """
            INSERT INTO daily_pnl (day, realized, unrealized, fees, updated_at_ns) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (day) DO UPDATE SET
                realized = excluded.realized, unrealized = excluded.unrealized, fees = excluded.fees,
                updated_at_ns = excluded.updated_at_ns
        """
        await self._run(lambda conn: conn.execute(sql, row), write=True)

    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None:
        sql = "SELECT day, realized, unrealized, fees, updated_at_ns FROM daily_pnl WHERE day = ?"
        r = await self._run(lambda conn: conn.execute(sql, (day.isoformat(),)).fetchone(), write=False)
        if r is None:
            return None
        return DailyPnlRecord(
            day=dt.date.fromisoformat(r[0]),
            realized=_dec(r[1]),
            unrealized=_dec(r[2]),
            fees=_dec(r[3]),
            updated_at_ns=r[4],
        )

    # -- risk events ----------------------------------------------------------------------------------------------

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        row = (
            event.event_id,
            event.ts_ns,
            event.kind,
            event.reason_code,
            event.trading_state,
            dump_detail(event.detail),
        )
        sql = """INSERT INTO risk_events (event_id, ts_ns, kind, reason_code, trading_state, detail)
                 VALUES (?, ?, ?, ?, ?, ?)"""
        await self._run(lambda conn: conn.execute(sql, row), write=True)

    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]:
        sql = """SELECT event_id, ts_ns, kind, reason_code, trading_state, detail FROM risk_events
                 WHERE ts_ns >= ? ORDER BY ts_ns, event_id"""
        since = -(2**63) if since_ns is None else since_ns
        rows = await self._run(lambda conn: conn.execute(sql, (since,)).fetchall(), write=False)
        return [
            RiskEventRecord(
                event_id=r[0], ts_ns=r[1], kind=r[2], reason_code=r[3], trading_state=r[4], detail=load_detail(r[5])
            )
            for r in rows
        ]

    # -- sniped markets -------------------------------------------------------------------------------------------

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        row = (sniped.condition_id, sniped.token_id, sniped.sniped_at_ns, dump_detail(sniped.detail))
        sql = """INSERT INTO sniped_markets (condition_id, token_id, sniped_at_ns, detail) VALUES (?, ?, ?, ?)
                 ON CONFLICT (condition_id) DO NOTHING"""
        inserted: int = await self._run(lambda conn: conn.execute(sql, row).rowcount, write=True)
        return inserted == 1

    async def load_sniped_markets(self) -> list[SnipedMarket]:
        sql = "SELECT condition_id, token_id, sniped_at_ns, detail FROM sniped_markets ORDER BY sniped_at_ns"
        rows = await self._run(lambda conn: conn.execute(sql).fetchall(), write=False)
        return [
            SnipedMarket(condition_id=r[0], token_id=r[1], sniped_at_ns=r[2], detail=load_detail(r[3])) for r in rows
        ]

    # -- opportunities --------------------------------------------------------------------------------------------

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None:
        rows = [
            (
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
            for o in opportunities
        ]
        sql = """INSERT INTO opportunities (opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""

        def write(conn: sqlite3.Connection) -> None:
            self._transaction(conn, lambda: conn.executemany(sql, rows))

        if rows:
            await self._run(write, write=True)

    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]:
        sql = """SELECT opportunity_id, ts_ns, strategy, kind, market, edge, size, traded, detail FROM opportunities
                 WHERE ts_ns >= ? ORDER BY ts_ns, opportunity_id"""
        since = -(2**63) if since_ns is None else since_ns
        rows = await self._run(lambda conn: conn.execute(sql, (since,)).fetchall(), write=False)
        return [
            OpportunityRecord(
                opportunity_id=r[0],
                ts_ns=r[1],
                strategy=r[2],
                kind=r[3],
                market=r[4],
                edge=_dec(r[5]),
                size=_dec(r[6]),
                traded=bool(r[7]),
                detail=load_detail(r[8]),
            )
            for r in rows
        ]


def _connect(path: str, synchronous: Synchronous) -> tuple[sqlite3.Connection, int]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal" and path != ":memory:":
            raise StoreError(f"could not switch {path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        version = migrate(conn, load_migrations())
    except BaseException:
        conn.close()
        raise
    return conn, version


@asynccontextmanager
async def open_sqlite_store(
    path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL"
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database at `path`, and close it on exit."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
    try:
        conn, version = await trio.to_thread.run_sync(_connect, os.fspath(path), synchronous)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open sqlite store at {os.fspath(path)}: {exc}") from exc
    store = SqliteStore(conn, version)
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
