"""The `Store` protocol: what the engine persists, and what it reads back at restart.

The engine writes every order intent *before* the order is sent (`record_intent`), then resolves it when the venue
answers (`resolve_intent`). At restart it loads what it needs to carry on safely:

- `load_pending_intents()`: intents written but never resolved. The order may or may not have reached the venue;
  ask the venue by the locally computed `order_id` and resolve each one.
- `load_open_orders()`, `load_positions()`: the book of work and the inventory as last known.
- `load_sniped_markets()`: markets the sniper already traded, so a restart never snipes twice
  (`mark_sniped` answers False when the market was already there: the check and the write are one step).
- `load_paper_wallet()`: the paper venue's cash (and what resting buys reserved of it) as of its last change, so a
  restart does not hand back the starting cash while keeping the positions.
- `load_daily_pnl(day)`: the risk day's PnL and its `baseline`, so a restart does not reset the daily-loss limit.
- `load_equity()`: the account's equity over time (`record_equity`, a sample a minute), for `trader report`.

Scope: a database keeps ONE account's records, paper or live, on one venue, one wallet (`StoreScope`). The first
run claims the database (`claim_scope`); `check_scope` refuses any other (`StoreScopeMismatch`), so that paper and
live records never mix.

Markets and positions are the domain's own `Market` and `Position`; orders, trades and intents are the frozen
records below, each with an `of(domain_object)` constructor: exact `Decimal`s (stored as TEXT), times as integer
nanoseconds since the epoch (UTC wall clock), domain enums. Free-form `detail` mappings are stored as JSON with
anything that looks like a secret replaced by `"[redacted]"` (`scrub_secrets`): no private key, API secret or
passphrase is ever stored.

Implementations: `trader.integrations.store.sqlite` (standard library, the default) and
`trader.integrations.store.postgres`, on the same versioned migrations (`load_migrations`, portable SQL in
`migrations/NNNN_name.sql`). Both are a `sql.SqlStore`: the statements and the row <-> record mapping are written
once, in `rows`; each driver adds only what it does its own way.
Errors are `StoreError` (a `TraderError`); a second intent with the same client order id is `DuplicateKeyError`.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import importlib.resources
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from trader.domain.enums import Liquidity, OrderStatus, OrderType, TradeStatus
from trader.domain.intents import OrderIntent
from trader.domain.market import Market
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order, Trade
from trader.domain.positions import Position
from trader.errors import TraderError
from trader.infra.secrets import scrub_secrets


class StoreError(TraderError):
    """The store could not do what was asked (the database is unreachable, corrupt, or newer than this code)."""


class DuplicateKeyError(StoreError):
    """A row with this key exists already (e.g. a second intent with the same client order id)."""


class IntentState(enum.StrEnum):
    PENDING = "PENDING"  # written, outcome unknown (the order may or may not have reached the venue)
    ACKED = "ACKED"  # the venue answered: the order exists there
    REJECTED = "REJECTED"  # the venue refused it
    NOT_SENT = "NOT_SENT"  # it never left (risk, breaker, rate limit, shutdown)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentRecord:
    """One order as decided, before it is sent (the write-ahead log)."""

    client_order_id: str
    order_id: str | None  # the locally computed EIP-712 digest (the venue's order id), when signed
    strategy: str
    condition_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType
    post_only: bool = False
    expiration: int = 0
    group_id: str | None = None  # the legs of one arbitrage share it
    created_at_ns: int
    state: IntentState = IntentState.PENDING
    reason: str | None = None
    resolved_at_ns: int | None = None

    @classmethod
    def of(
        cls, intent: OrderIntent, *, order_id: str | None, created_at_ns: int, group_id: str | None = None
    ) -> IntentRecord:
        return cls(
            client_order_id=intent.client_order_id,
            order_id=order_id,
            strategy=intent.strategy,
            condition_id=intent.condition_id,
            token_id=intent.token_id,
            side=intent.side,
            price=intent.price,
            size=intent.size,
            order_type=intent.order_type,
            post_only=intent.post_only,
            expiration=intent.expiration,
            group_id=group_id,
            created_at_ns=created_at_ns,
        )

    def to_intent(self) -> OrderIntent:
        """The domain intent again (to rebuild the `Order` at restart with `Order.from_intent`)."""
        return OrderIntent(
            client_order_id=self.client_order_id,
            strategy=self.strategy,
            condition_id=self.condition_id,
            token_id=self.token_id,
            side=self.side,
            price=self.price,
            size=self.size,
            order_type=self.order_type,
            post_only=self.post_only,
            expiration=self.expiration,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    order_id: str
    client_order_id: str | None
    strategy: str | None
    condition_id: str | None
    token_id: str
    side: Side
    price: Decimal
    original_size: Decimal
    size_matched: Decimal
    order_type: OrderType
    status: OrderStatus
    reason: str | None = None
    created_at_ns: int
    updated_at_ns: int

    @classmethod
    def of(cls, order: Order) -> OrderRecord:
        updated = order.updated_ts if order.updated_ts is not None else order.created_ts
        return cls(
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            strategy=order.strategy or None,
            condition_id=order.condition_id or None,
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            original_size=order.size,
            size_matched=order.filled,
            order_type=order.order_type,
            status=order.status,
            reason=order.reason,
            created_at_ns=secs_to_ns(order.created_ts),
            updated_at_ns=secs_to_ns(updated),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEventRecord:
    """One state change of an order; `seq` counts from 1 per order."""

    order_id: str
    seq: int
    status: OrderStatus
    size_matched: Decimal
    reason: str | None
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRecord:
    """Our side of one trade. Its `status` moves MATCHED -> MINED -> CONFIRMED (or FAILED, which is kept)."""

    trade_id: str
    order_id: str
    client_order_id: str | None
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_shares: Decimal = ZERO
    liquidity: Liquidity
    status: TradeStatus
    match_time_ns: int
    updated_at_ns: int

    @classmethod
    def of(cls, trade: Trade) -> TradeRecord:
        updated = trade.updated_ts if trade.updated_ts is not None else trade.match_ts
        return cls(
            trade_id=trade.trade_id,
            order_id=trade.order_id,
            client_order_id=trade.client_order_id,
            token_id=trade.token_id,
            side=trade.side,
            price=trade.price,
            size=trade.size,
            fee=trade.fee,
            fee_shares=trade.fee_shares,
            liquidity=trade.liquidity,
            status=trade.status,
            match_time_ns=secs_to_ns(trade.match_ts),
            updated_at_ns=secs_to_ns(updated),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyPnlRecord:
    """The risk day's PnL as last marked: `realized` and `unrealized` are running totals (since inception), `baseline`
    their sum when the day began; the day's PnL is `realized + unrealized - baseline`."""

    day: dt.date  # the risk day (it starts at the configured UTC reset time)
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    updated_at_ns: int
    baseline: Decimal = ZERO

    @property
    def pnl(self) -> Decimal:
        return self.realized + self.unrealized - self.baseline


@dataclass(frozen=True, slots=True, kw_only=True)
class EquitySample:
    """What the account was worth at `ts_ns` (pUSD at the marks then; positions without a mark at their cost)."""

    ts_ns: int
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    realized_pnl: Decimal  # since inception
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperWalletRecord:
    """The paper venue's wallet: `cash` (all its pUSD) and `reserved` (what resting buys held back of it)."""

    cash: Decimal
    reserved: Decimal
    updated_at_ns: int


class TradingMode(enum.StrEnum):
    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreScope:
    """Whose records a database keeps: paper or live trading, on which venue, and live, which wallet (its address,
    lower-case; empty for paper)."""

    mode: TradingMode
    venue: str
    wallet: str = ""

    def __post_init__(self) -> None:
        if (self.mode is TradingMode.LIVE) != bool(self.wallet):
            raise ValueError("a live scope names its wallet, a paper one none")
        if self.wallet != self.wallet.lower():
            raise ValueError("the wallet address is kept lower-case")

    def __str__(self) -> str:
        if self.mode is TradingMode.PAPER:
            return f"paper trading on {self.venue}"
        return f"live trading on {self.venue} for wallet {self.wallet}"


class StoreScopeMismatch(StoreError):
    """The database keeps another account's records (paper vs live, another venue or wallet): refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEventRecord:
    event_id: str
    ts_ns: int
    kind: str  # e.g. "STATE_CHANGE", "DAILY_LOSS_BREACH", "EMERGENCY_STOP"
    reason_code: str
    trading_state: str | None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnipedMarket:
    condition_id: str
    token_id: str
    sniped_at_ns: int
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpportunityRecord:
    opportunity_id: str
    ts_ns: int
    strategy: str
    kind: str
    market: str  # condition id, or the neg-risk event id
    edge: Decimal  # expected profit per unit, after fees
    size: Decimal
    traded: bool
    detail: Mapping[str, object] = field(default_factory=dict)


class CapitalOpState(enum.StrEnum):
    """Where a merge or redemption stands in the store (the write-ahead of chain operations)."""

    PREPARED = "PREPARED"  # written before sending; it may or may not have been sent
    PENDING = "PENDING"  # the chain or the relayer took it
    CONFIRMED = "CONFIRMED"  # balances changed
    FAILED = "FAILED"  # refused, reverted, or never seen

    @property
    def is_open(self) -> bool:
        return self in (CapitalOpState.PREPARED, CapitalOpState.PENDING)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalOpRecord:
    """A merge or redemption as stored. `kind` is "MERGE" or "REDEEM"; amounts are the shares of each outcome it
    takes, `payout` the pUSD it pays when confirmed."""

    op_id: str
    kind: str
    condition_id: str
    neg_risk: bool
    yes_token_id: str
    no_token_id: str
    yes_amount: Decimal
    no_amount: Decimal
    payout: Decimal
    state: CapitalOpState
    tx_hash: str | None = None
    message: str | None = None
    created_at_ns: int
    updated_at_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    writes: int
    reads: int
    errors: int
    schema_version: int


class Store(Protocol):
    """What the engine persists. Every method is a cancel point, and all but the write-ahead (`record_intent`,
    `record_intents`, which an implementation may make without yielding) a schedule point too; writes are durable
    when they return."""

    async def upsert_market(self, market: Market, *, ts_ns: int) -> None: ...
    async def load_markets(self) -> list[Market]: ...

    async def record_intent(self, intent: IntentRecord) -> None:
        """Write an intent before sending it. Raises `DuplicateKeyError` if the client order id exists."""
        ...

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        """Write the intents of one request (a batch of orders) before sending it: all of them or none, in one
        durable write. Raises `DuplicateKeyError` (and writes none) if any client order id exists."""
        ...

    async def resolve_intent(
        self,
        client_order_id: str,
        state: IntentState,
        *,
        ts_ns: int,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record the outcome of a sent (or not sent) intent. Unknown client order id: `StoreError`."""
        ...

    async def load_pending_intents(self) -> list[IntentRecord]: ...

    async def record_order(self, order: OrderRecord, *, reason: str | None = None) -> None:
        """Upsert the order; when its status or matched size changed, append an `OrderEventRecord`."""
        ...

    async def load_open_orders(self) -> list[OrderRecord]: ...
    async def load_order(self, order_id: str) -> OrderRecord | None: ...
    async def load_order_events(self, order_id: str) -> list[OrderEventRecord]: ...

    async def record_trade(self, trade: TradeRecord) -> None:
        """Upsert by (trade_id, order_id): a status change updates the row; nothing is ever deleted."""
        ...

    async def load_trades(self, *, since_ns: int | None = None) -> list[TradeRecord]: ...

    async def record_position(self, position: Position, *, ts_ns: int) -> None:
        """Upsert the position (its unsettled fill effects are not kept: trades carry the settlement state)."""
        ...

    async def load_positions(self) -> list[Position]: ...

    async def record_daily_pnl(self, pnl: DailyPnlRecord) -> None: ...
    async def load_daily_pnl(self, day: dt.date) -> DailyPnlRecord | None: ...

    async def record_equity(self, sample: EquitySample) -> None:
        """Keep one equity sample (a second one at the same `ts_ns` replaces it)."""
        ...

    async def load_equity(self, *, since_ns: int | None = None) -> list[EquitySample]:
        """The equity samples from `since_ns` on, oldest first."""
        ...

    async def record_risk_event(self, event: RiskEventRecord) -> None: ...
    async def load_risk_events(self, *, since_ns: int | None = None) -> list[RiskEventRecord]: ...

    async def mark_sniped(self, sniped: SnipedMarket) -> bool:
        """Record that a market was sniped. False (and nothing written) if it already was."""
        ...

    async def load_sniped_markets(self) -> list[SnipedMarket]: ...

    async def claim_scope(self, scope: StoreScope, *, ts_ns: int) -> StoreScope:
        """Record that this database keeps `scope`'s records, unless it keeps some scope's already; return the scope
        it keeps (the check and the write are one step). Compare with `check_scope`."""
        ...

    async def load_scope(self) -> StoreScope | None: ...

    async def record_paper_wallet(self, wallet: PaperWalletRecord) -> None: ...
    async def load_paper_wallet(self) -> PaperWalletRecord | None: ...

    async def record_opportunities(self, opportunities: Sequence[OpportunityRecord]) -> None: ...
    async def load_opportunities(self, *, since_ns: int | None = None) -> list[OpportunityRecord]: ...

    async def record_capital_op(self, op: CapitalOpRecord) -> None:
        """Write (or update, by `op_id`) a merge or redemption; the first write of one is its write-ahead."""
        ...

    async def load_open_capital_ops(self) -> list[CapitalOpRecord]:
        """The merges and redemptions still PREPARED or PENDING, oldest first."""
        ...

    async def load_capital_ops(self) -> list[CapitalOpRecord]:
        """Every merge and redemption, in any state, oldest first (what changed positions besides trades)."""
        ...

    def statistics(self) -> StoreStatistics: ...

    @property
    def available(self) -> bool:
        """False while the store cannot take writes (a server store's connection is down): trading halts new orders
        until it is back. An embedded store is always available while open."""
        ...


def check_scope(kept: StoreScope, wanted: StoreScope, *, database: str, fix: str) -> None:
    """Refuse (`StoreScopeMismatch`) a database that keeps another scope's records than `wanted`; `fix` says what to
    do instead (e.g. the database the wanted scope uses by default)."""
    if kept != wanted:
        raise StoreScopeMismatch(
            f"{database} keeps the records of {kept}, not of {wanted}: paper and live records (and those of each "
            f"venue and wallet) are kept apart. {fix}"
        )


def secs_to_ns(secs: float) -> int:
    """Epoch seconds (the domain's `ts`) to integer nanoseconds, to the microsecond (a float holds no more)."""
    return round(secs * 1_000_000) * 1_000


def dump_detail(detail: Mapping[str, object]) -> str:
    return json.dumps(scrub_secrets(detail), sort_keys=True, separators=(",", ":"))


def load_detail(text: str) -> dict[str, object]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"stored detail is not a JSON object: {text[:40]!r}")
    return value


# -- migrations ------------------------------------------------------------------------------------------------

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The versioned migrations shipped with the package, in order. Versions must be 1, 2, 3, ... with no gap."""
    folder = importlib.resources.files("trader.integrations.store").joinpath("migrations")
    migrations: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise StoreError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return migrations


def pending_migrations(applied: Mapping[int, str], migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations still to apply, in order, given the applied ones (version -> checksum) of a database.

    A database that has a migration this code does not know, or whose applied migration differs from the shipped
    file, is refused (`StoreError`) rather than guessed at.
    """
    known = {m.version for m in migrations}
    newer = sorted(set(applied) - known)
    if newer:
        raise StoreError(f"database schema has migrations {newer} that this code does not know: refusing to use it")
    pending = []
    for migration in migrations:
        if migration.version not in applied:
            pending.append(migration)
        elif applied[migration.version] != migration.checksum:
            raise StoreError(f"migration {migration.version:04d}_{migration.name} changed after it was applied")
    return pending
