"""The risk gate: every intent passes through `RiskGate.check` before it is persisted and sent.

Pure and synchronous. The caller passes everything that changes: `now` (seconds on the Trio clock) for the rate
and duplicate windows, the current `Exposure` (from the portfolio and the open orders), the health of the books
(`BookHealth` per token), and the wall clock (`wall`, an aware UTC datetime) when it marks PnL.

Trading states (NautilusTrader's): ACTIVE (everything the limits allow), REDUCING (only orders that reduce
exposure: sells of shares held and not already offered; the venue's closed-only mode puts the gate here,
`venue_reduce_only`, and takes it back, `venue_lift`), HALTED (nothing). A daily-loss breach HALTS trading and
returns a `DailyLossBreached` event with the `RiskStateChanged`; nothing resumes trading but `resume()` (the
operator). The loss is realized plus marked-to-market PnL since the start of the risk day, which starts at
`daily_reset_utc` each day.

A check returns a value, never raises: `Approved()` or `Rejected(reason, detail)`, where `reason` is a stable
`RiskCode`. An `ArbIntent` is checked as a whole: every leg passes, or the whole basket is rejected with the first
failing leg's reason. Approval records the order(s) in the rate and duplicate windows; a rejection records nothing.

Checks, in order: trading state; the venue's trading restrictions (`set_venue_check`: a restart, the post-only
window, cancel-only, trading disabled, closed-only; codes `RESTRICTED_*`); allowances the venue says are missing
(`RISK_ALLOWANCE_MISSING`); order size and price bounds; duplicate intent (same strategy, token, side, price and size
within `duplicate_window_secs`); book health (not ready or suspect, or older than `max_book_age_ms`); daily loss;
notional per order; position per market and total exposure (buys only: pUSD at cost, working buys included); buying
power; per-market and global order rates.

Buying power (`RISK_BUYING_POWER`), checked when the caller passes `funds`: the buy legs of the intent together
cost `price x size` plus the taker fee bound each (`order_cost`, the venue's rule: `FeeSchedule.taker_fee_bound`),
and that must not exceed the balance less what is already reserved (`Exposure.reserved_usd`: open buys reserve
`price x remaining`, approved intents whose orders are not open yet reserve their whole cost). A sell needs the
shares held and not already offered (open and approved sells). An unknown balance (never read) refuses buys.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from trader.domain.events import RiskRejected
from trader.domain.intents import ArbIntent, OrderIntent, legs_of
from trader.domain.market import NO_FEES, FeeSchedule
from trader.domain.numbers import ZERO, Side
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.domain.risk import DailyLossBreached, RiskEvent, RiskStateChanged, TradingState
from trader.errors import ConfigError


class RiskCode(enum.StrEnum):
    """Stable reason codes of the risk gate's rejections and events."""

    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    RISK_MAX_POSITION = "RISK_MAX_POSITION"
    RISK_MAX_NOTIONAL = "RISK_MAX_NOTIONAL"
    RISK_MAX_EXPOSURE = "RISK_MAX_EXPOSURE"
    RISK_DAILY_LOSS = "RISK_DAILY_LOSS"
    RISK_STALE_BOOK = "RISK_STALE_BOOK"
    RISK_SUSPECT_BOOK = "RISK_SUSPECT_BOOK"
    RISK_PRICE_BOUNDS = "RISK_PRICE_BOUNDS"
    RISK_SIZE_BOUNDS = "RISK_SIZE_BOUNDS"
    RISK_MARKET_RATE = "RISK_MARKET_RATE"
    RISK_GLOBAL_RATE = "RISK_GLOBAL_RATE"
    RISK_DUPLICATE_INTENT = "RISK_DUPLICATE_INTENT"
    RISK_MARKET_CLOSED = "RISK_MARKET_CLOSED"  # the market resolved or closed
    RISK_BUYING_POWER = "RISK_BUYING_POWER"  # costs more than the collateral not yet reserved, or sells unheld shares
    RISK_ALLOWANCE_MISSING = "RISK_ALLOWANCE_MISSING"  # the venue says an exchange allowance is missing
    # The venue restricts trading (`trader.engine.restrictions`): what it would refuse is not sent.
    RESTRICTED_RESTARTING = "RESTRICTED_RESTARTING"  # the matching engine is restarting (425)
    RESTRICTED_POST_ONLY = "RESTRICTED_POST_ONLY"  # only post-only orders (the window after a restart)
    RESTRICTED_CANCEL_ONLY = "RESTRICTED_CANCEL_ONLY"  # the venue is cancel-only
    RESTRICTED_TRADING_DISABLED = "RESTRICTED_TRADING_DISABLED"  # trading is disabled at the venue
    RESTRICTED_CLOSED_ONLY = "RESTRICTED_CLOSED_ONLY"  # the account may only reduce positions


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSettings:
    """Limits of the risk gate. Amounts in pUSD, sizes in shares, prices in pUSD per share.

    - `max_order_notional_usd` (default 100): price x size of one order (each leg of a basket).
    - `max_position_usd` (default 500): per market (condition), pUSD at cost held plus working buys plus this order.
    - `max_total_exposure_usd` (default 2000): the same over all markets.
    - `max_daily_loss_usd` (default 100): realized plus marked-to-market loss since the risk day started; a breach
      HALTS trading.
    - `daily_reset_utc` (default 00:00): the UTC time of day at which the risk day starts.
    - `max_book_age_ms` (default 10000): an older book is stale; no book, or one not ready, is stale too.
    - `min_price` / `max_price` (defaults 0.001 / 0.999): limit prices outside are refused.
    - `min_order_size_shares` / `max_order_size_shares` (defaults 1 / 10000).
    - `max_orders_per_market` (default 10) and `max_orders_global` (default 50) per `order_rate_window_secs`
      (default 1.0).
    - `duplicate_window_secs` (default 2.0): the same strategy, token, side, price and size again within this is
      refused.
    """

    max_order_notional_usd: Decimal = Decimal(100)
    max_position_usd: Decimal = Decimal(500)
    max_total_exposure_usd: Decimal = Decimal(2000)
    max_daily_loss_usd: Decimal = Decimal(100)
    daily_reset_utc: dt.time = dt.time(0, 0)
    max_book_age_ms: float = 10_000.0
    min_price: Decimal = Decimal("0.001")
    max_price: Decimal = Decimal("0.999")
    min_order_size_shares: Decimal = Decimal(1)
    max_order_size_shares: Decimal = Decimal(10_000)
    max_orders_per_market: int = 10
    max_orders_global: int = 50
    order_rate_window_secs: float = 1.0
    duplicate_window_secs: float = 2.0

    def __post_init__(self) -> None:
        for name in (
            "max_order_notional_usd",
            "max_position_usd",
            "max_total_exposure_usd",
            "max_daily_loss_usd",
            "min_order_size_shares",
            "max_order_size_shares",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= ZERO:
                raise ConfigError(f"{name} must be a positive Decimal, got {value!r}")
        if not (isinstance(self.min_price, Decimal) and isinstance(self.max_price, Decimal)):
            raise ConfigError("min_price and max_price must be Decimals")
        if not ZERO < self.min_price <= self.max_price < 1:
            raise ConfigError(f"need 0 < min_price <= max_price < 1, got {self.min_price} and {self.max_price}")
        if self.min_order_size_shares > self.max_order_size_shares:
            raise ConfigError("min_order_size_shares must not exceed max_order_size_shares")
        if self.daily_reset_utc.tzinfo is not None:
            raise ConfigError("daily_reset_utc is a naive time of day, read as UTC")
        for name in ("max_orders_per_market", "max_orders_global"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        for name in ("max_book_age_ms", "order_rate_window_secs", "duplicate_window_secs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0")


@dataclass(frozen=True, slots=True)
class Approved:
    """The intent (every leg of it) may be sent."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The intent must not be sent. `reason` is stable; `detail` is for humans."""

    reason: RiskCode
    detail: str


RiskDecision = Approved | Rejected
_APPROVED = Approved()
#: What the venue would refuse now (`RiskGate.set_venue_check`): legs and the Trio time in, a rejection or None out.
VenueCheck = Callable[[tuple[OrderIntent, ...], float], Rejected | None]


def rejected_events(intent: OrderIntent | ArbIntent, reason: str, detail: str, ts: float) -> list[RiskRejected]:
    """The domain events of a denial: one `RiskRejected` per order (every leg of a basket)."""
    return [
        RiskRejected(client_order_id=leg.client_order_id, strategy=leg.strategy, reason=reason, ts=ts, message=detail)
        for leg in legs_of(intent)
    ]


@dataclass(frozen=True, slots=True)
class BookHealth:
    """What the market-data side knows of one token's book: its age, and whether it can be trusted."""

    age_ms: float | None  # None: no book at all
    ready: bool = True  # a snapshot has been applied since (re)connecting
    suspect: bool = False  # e.g. crossed, or a hash/sequence mismatch not yet resolved
    closed: bool = False  # the market resolved or closed: nothing more is traded in it


def order_cost(leg: OrderIntent, fees: FeeSchedule) -> Decimal:
    """pUSD a new order may take from the balance, by the venue's rule: a buy's `price x size` plus its taker fee
    bound (`FeeSchedule.taker_fee_bound`); a sell takes none (it needs shares)."""
    if leg.side is not Side.BUY:
        return ZERO
    return leg.price * leg.size + fees.taker_fee_bound(leg.size, leg.price)


@dataclass(frozen=True, slots=True)
class Reserved:
    """An approved leg whose order is not open at the venue yet, with what it may take (`order_cost`, computed once
    when it was approved)."""

    leg: OrderIntent
    cost: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class BuyingPower:
    """The wallet's collateral as the venue last reported it (`trader.engine.funds.Funds`): `balance` None when it
    was never read; `missing_allowances` names what the venue says is not approved (empty: all is)."""

    balance: Decimal | None
    missing_allowances: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """Holdings and working orders, as the portfolio and the open orders say. Build it with `Exposure.of`."""

    held_shares: Mapping[str, Decimal] = field(default_factory=dict)  # token -> shares held
    working_sell_shares: Mapping[str, Decimal] = field(default_factory=dict)  # token -> shares offered
    market_usd: Mapping[str, Decimal] = field(default_factory=dict)  # condition -> cost held + working buys
    total_usd: Decimal = ZERO
    reserved_usd: Decimal = ZERO  # pUSD the venue holds back for working buys (approved ones at their whole cost)

    @classmethod
    def of(
        cls,
        portfolio: Portfolio,
        open_orders: Iterable[Order],
        market_of: Mapping[str, str],
        *,
        pending: Iterable[Reserved] = (),
        tokens: Iterable[str] | None = None,
    ) -> Exposure:
        """From the portfolio, the open orders, `market_of` (token -> condition id) and `pending`: the legs of
        approved intents whose orders are not open at the venue yet, counted at their whole cost in place of any open
        order of theirs.

        `tokens`: the tokens whose holdings the caller will ask about (an intent's, and every token of their
        markets): only their positions are looked at, so the cost is that of the intent and the open orders, not of
        every token ever held. None: every position. The total is the portfolio's kept total either way."""
        held: dict[str, Decimal] = {}
        market_usd: dict[str, Decimal] = {}
        total, reserved = portfolio.exposure(), ZERO
        pending_ids: set[str] = set()
        working_sells: dict[str, Decimal] = {}
        for approved in pending:
            leg = approved.leg
            pending_ids.add(leg.client_order_id)
            if leg.side is Side.SELL:
                working_sells[leg.token_id] = working_sells.get(leg.token_id, ZERO) + leg.size
                continue
            notional = leg.price * leg.size
            market_usd[leg.condition_id] = market_usd.get(leg.condition_id, ZERO) + notional
            total += notional
            reserved += approved.cost
        positions = portfolio.positions.values() if tokens is None else [portfolio.position(t) for t in set(tokens)]
        for position in positions:
            token, quantity, cost = position.token_id, position.quantity, position.cost_basis
            if quantity:
                held[token] = quantity
            if cost:  # a flat position (most of them, after a while) adds nothing
                key = market_of.get(token, token)
                market_usd[key] = market_usd.get(key, ZERO) + cost
        for order in open_orders:
            if not order.is_open or order.client_order_id in pending_ids:
                continue
            if order.side is Side.SELL:
                working_sells[order.token_id] = working_sells.get(order.token_id, ZERO) + order.remaining
            else:
                notional = order.price * order.remaining
                key = order.condition_id or market_of.get(order.token_id, order.token_id)
                market_usd[key] = market_usd.get(key, ZERO) + notional
                total += notional
                reserved += notional  # a resting buy reserves price x remaining (its fee bound is spent or moot)
        return cls(
            held_shares=held,
            working_sell_shares=working_sells,
            market_usd=market_usd,
            total_usd=total,
            reserved_usd=reserved,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskStatistics:
    state: TradingState
    approvals: int
    rejections: Mapping[str, int]  # by reason code
    state_changes: int
    daily_pnl: Decimal
    risk_day: dt.date | None


class RiskGate:
    """Pure risk checks plus the trading state. One per engine; not thread-safe (the engine is one Trio thread)."""

    def __init__(self, settings: RiskSettings | None = None, *, state: TradingState = TradingState.ACTIVE) -> None:
        self.settings = settings or RiskSettings()
        self._state = state
        self._approvals = 0
        self._rejections: dict[str, int] = {}
        self._state_changes = 0
        # The order-rate window: one (time, market) per approved order, oldest first, and the count per market.
        self._orders: deque[tuple[float, str]] = deque()
        self._market_orders: dict[str, int] = {}
        self._recent: dict[_DedupKey, float] = {}
        self._recent_order: deque[tuple[float, _DedupKey]] = deque()
        self._risk_day: dt.date | None = None
        self._day_baseline = ZERO
        self._daily_pnl = ZERO
        self._breached_day: dt.date | None = None
        self._venue_check: VenueCheck | None = None
        self._reduced_for: str | None = None
        self._last_change: RiskStateChanged | None = None

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def last_change(self) -> RiskStateChanged | None:
        """The last change of the trading state (its reason says why trading is HALTED or REDUCING now)."""
        return self._last_change

    # -- state ----------------------------------------------------------------------------------------------------

    def set_state(self, state: TradingState, *, reason: str, ts: float) -> RiskStateChanged | None:
        """Change the trading state; None if it already was `state`."""
        if state is self._state:
            return None
        event = RiskStateChanged(previous=self._state, state=state, reason=reason, ts=ts)
        self._state = state
        self._state_changes += 1
        self._last_change = event
        return event

    def halt(self, *, reason: str, ts: float) -> RiskStateChanged | None:
        return self.set_state(TradingState.HALTED, reason=reason, ts=ts)

    def reduce_only(self, *, reason: str, ts: float) -> RiskStateChanged | None:
        return self.set_state(TradingState.REDUCING, reason=reason, ts=ts)

    def resume(self, *, reason: str, ts: float) -> RiskStateChanged | None:
        """Back to ACTIVE: the operator's decision, also after a daily-loss halt."""
        return self.set_state(TradingState.ACTIVE, reason=reason, ts=ts)

    # -- venue restrictions ---------------------------------------------------------------------------------------

    def set_venue_check(self, check: VenueCheck | None) -> None:
        """Consult `check(legs, now)` on every intent, after the trading state: what the venue would refuse now (a
        trading restriction, `trader.engine.restrictions`) is rejected with the check's code."""
        self._venue_check = check

    def venue_reduce_only(self, *, reason: str, ts: float) -> RiskStateChanged | None:
        """REDUCING because the venue lets the account only reduce positions (closed-only): only from ACTIVE (a
        HALT stays a HALT); `venue_lift` with the same reason undoes it."""
        if self._state is not TradingState.ACTIVE:
            return None
        self._reduced_for = reason
        return self.reduce_only(reason=reason, ts=ts)

    def venue_lift(self, *, reason: str, ts: float) -> RiskStateChanged | None:
        """Back to ACTIVE if REDUCING was `venue_reduce_only(reason)`'s doing; anything else stays as it is."""
        if self._state is not TradingState.REDUCING or self._reduced_for != reason:
            return None
        self._reduced_for = None
        return self.set_state(TradingState.ACTIVE, reason=reason, ts=ts)

    # -- PnL ------------------------------------------------------------------------------------------------------

    def risk_day(self, wall: dt.datetime) -> dt.date:
        """The risk day `wall` falls in: it starts at `daily_reset_utc`."""
        if wall.tzinfo is None:
            raise ValueError("wall must be an aware datetime")
        utc = wall.astimezone(dt.UTC)
        reset = dt.datetime.combine(utc.date(), self.settings.daily_reset_utc, tzinfo=dt.UTC)
        return utc.date() if utc >= reset else utc.date() - dt.timedelta(days=1)

    def mark_pnl(self, *, realized: Decimal, unrealized: Decimal, wall: dt.datetime) -> list[RiskEvent]:
        """Feed the running totals (realized PnL since inception, unrealized at the marks).

        The first mark of a risk day sets its baseline; the daily PnL is the change since then. A loss at or beyond
        `max_daily_loss_usd` HALTS trading (once per day) and returns the events to persist and alert.
        """
        day = self.risk_day(wall)
        total = realized + unrealized
        if day != self._risk_day:
            self._risk_day = day
            self._day_baseline = total
        self._daily_pnl = total - self._day_baseline
        limit = self.settings.max_daily_loss_usd
        if self._daily_pnl > -limit or self._breached_day == day:
            return []
        self._breached_day = day
        ts = wall.timestamp()
        events: list[RiskEvent] = [DailyLossBreached(day=day, pnl=self._daily_pnl, limit=limit, ts=ts)]
        changed = self.halt(reason=RiskCode.RISK_DAILY_LOSS, ts=ts)
        if changed is not None:
            events.append(changed)
        return events

    @property
    def daily_pnl(self) -> Decimal:
        return self._daily_pnl

    @property
    def day_baseline(self) -> tuple[dt.date, Decimal] | None:
        """(the risk day, the total PnL when it began), once a mark started it: what a restart must get back."""
        return None if self._risk_day is None else (self._risk_day, self._day_baseline)

    def restore_day(self, day: dt.date, *, baseline: Decimal, pnl: Decimal) -> None:
        """Continue a risk day that began before a restart: its baseline, and its PnL as last marked, which the
        daily-loss check uses until the next mark (a day lost beyond the limit stays refused)."""
        self._risk_day, self._day_baseline, self._daily_pnl = day, baseline, pnl

    # -- checks ---------------------------------------------------------------------------------------------------

    def check(
        self,
        intent: OrderIntent | ArbIntent,
        *,
        exposure: Exposure,
        books: Mapping[str, BookHealth],
        now: float,
        funds: BuyingPower | None = None,
        fees: Mapping[str, FeeSchedule] | None = None,
    ) -> RiskDecision:
        """Approve or reject an intent (all legs of a basket together). Approval records it in the rate windows.

        `funds` (None: no buying-power check) is the wallet's collateral; `fees` each leg's fee schedule (token ->
        schedule; a token without one is costed without fees)."""
        legs = legs_of(intent)
        keys: list[_DedupKey] = []  # filled by _check
        rejected = self._check(legs, keys, exposure=exposure, books=books, now=now, funds=funds, fees=fees or {})
        if rejected is not None:
            self._rejections[rejected.reason] = self._rejections.get(rejected.reason, 0) + 1
            return rejected
        self._record(legs, keys, now)
        self._approvals += 1
        return _APPROVED

    def _check(
        self,
        legs: tuple[OrderIntent, ...],
        keys: list[_DedupKey],
        *,
        exposure: Exposure,
        books: Mapping[str, BookHealth],
        now: float,
        funds: BuyingPower | None,
        fees: Mapping[str, FeeSchedule],
    ) -> Rejected | None:
        settings = self.settings
        if self._state is TradingState.HALTED:
            return Rejected(RiskCode.TRADING_HALTED, "trading is halted")
        if self._venue_check is not None and (restricted := self._venue_check(legs, now)) is not None:
            return restricted
        reduces = all(self._reduces(leg, exposure) for leg in legs)
        if self._state is TradingState.REDUCING and not reduces:
            return Rejected(RiskCode.TRADING_REDUCING, "only orders that reduce a position are allowed")
        if funds is not None and funds.missing_allowances:
            return Rejected(
                RiskCode.RISK_ALLOWANCE_MISSING,
                f"the venue reports missing allowances ({', '.join(funds.missing_allowances)}): approve them for "
                "the exchange contracts (`trader doctor` checks)",
            )
        for leg in legs:
            if not settings.min_price <= leg.price <= settings.max_price:
                return Rejected(
                    RiskCode.RISK_PRICE_BOUNDS,
                    f"{_describe(leg, len(legs))}price {leg.price} outside [{settings.min_price}, "
                    f"{settings.max_price}]",
                )
            if not settings.min_order_size_shares <= leg.size <= settings.max_order_size_shares:
                return Rejected(
                    RiskCode.RISK_SIZE_BOUNDS,
                    f"{_describe(leg, len(legs))}size {leg.size} outside [{settings.min_order_size_shares}, "
                    f"{settings.max_order_size_shares}]",
                )
        self._expire(now)
        for leg in legs:
            key = _dedup_key(leg)
            approved_at = self._recent.get(key)
            if approved_at is not None:
                return Rejected(
                    RiskCode.RISK_DUPLICATE_INTENT,
                    f"{_describe(leg, len(legs))}same order as one approved {now - approved_at:.3f}s ago",
                )
            keys.append(key)
        for leg in legs:
            bad_book = self._check_book(leg, books.get(leg.token_id), len(legs))
            if bad_book is not None:
                return bad_book
        if not reduces and self._daily_pnl <= -settings.max_daily_loss_usd:
            return Rejected(
                RiskCode.RISK_DAILY_LOSS,
                f"daily PnL {self._daily_pnl} at or beyond the loss limit {settings.max_daily_loss_usd}",
            )
        added_total = ZERO
        added_market: dict[str, Decimal] = {}
        for leg in legs:
            notional = leg.price * leg.size
            if notional > settings.max_order_notional_usd:
                return Rejected(
                    RiskCode.RISK_MAX_NOTIONAL,
                    f"{_describe(leg, len(legs))}notional {notional} above {settings.max_order_notional_usd}",
                )
            if leg.side is Side.BUY:
                added_total += notional
                added_market[leg.condition_id] = added_market.get(leg.condition_id, ZERO) + notional
        for market, added in added_market.items():
            after = exposure.market_usd.get(market, ZERO) + added
            if after > settings.max_position_usd:
                return Rejected(
                    RiskCode.RISK_MAX_POSITION,
                    f"market {market} would be at {after} pUSD, above {settings.max_position_usd}",
                )
        if added_total and exposure.total_usd + added_total > settings.max_total_exposure_usd:
            return Rejected(
                RiskCode.RISK_MAX_EXPOSURE,
                f"total exposure would be {exposure.total_usd + added_total} pUSD, "
                f"above {settings.max_total_exposure_usd}",
            )
        if funds is not None:
            short = self._check_funds(legs, exposure, funds, fees)
            if short is not None:
                return short
        per_market: dict[str, int] = {}
        for leg in legs:
            per_market[leg.condition_id] = per_market.get(leg.condition_id, 0) + 1
        for market, count in per_market.items():
            recent = self._market_orders.get(market, 0)
            if recent + count > settings.max_orders_per_market:
                return Rejected(
                    RiskCode.RISK_MARKET_RATE,
                    f"market {market}: {recent} orders in the last {settings.order_rate_window_secs}s, "
                    f"limit {settings.max_orders_per_market}",
                )
        if len(self._orders) + len(legs) > settings.max_orders_global:
            return Rejected(
                RiskCode.RISK_GLOBAL_RATE,
                f"{len(self._orders)} orders in the last {settings.order_rate_window_secs}s, "
                f"limit {settings.max_orders_global}",
            )
        return None

    @staticmethod
    def _check_funds(
        legs: tuple[OrderIntent, ...], exposure: Exposure, funds: BuyingPower, fees: Mapping[str, FeeSchedule]
    ) -> Rejected | None:
        cost = sum((order_cost(leg, fees.get(leg.token_id, NO_FEES)) for leg in legs), ZERO)
        if cost:
            if funds.balance is None:
                return Rejected(RiskCode.RISK_BUYING_POWER, "the wallet's balance has not been read yet")
            available = funds.balance - exposure.reserved_usd
            if cost > available:
                what = "the basket costs" if len(legs) > 1 else "the order costs"
                return Rejected(
                    RiskCode.RISK_BUYING_POWER,
                    f"{what} {cost} pUSD (price x size + taker fee bound), {available} available "
                    f"(balance {funds.balance} - reserved {exposure.reserved_usd})",
                )
        selling: dict[str, Decimal] = {}
        for leg in legs:
            if leg.side is Side.SELL:
                selling[leg.token_id] = selling.get(leg.token_id, ZERO) + leg.size
        for token, size in selling.items():
            free = exposure.held_shares.get(token, ZERO) - exposure.working_sell_shares.get(token, ZERO)
            if size > free:
                return Rejected(
                    RiskCode.RISK_BUYING_POWER, f"sells {size} of token {token}: only {free} held and not offered"
                )
        return None

    def _check_book(self, leg: OrderIntent, health: BookHealth | None, n_legs: int) -> Rejected | None:
        if health is not None and health.closed:
            return Rejected(
                RiskCode.RISK_MARKET_CLOSED, f"{_describe(leg, n_legs)}the market of token {leg.token_id} is closed"
            )
        if health is None or health.age_ms is None or not health.ready:
            return Rejected(RiskCode.RISK_STALE_BOOK, f"{_describe(leg, n_legs)}no ready book for token {leg.token_id}")
        if health.suspect:
            return Rejected(
                RiskCode.RISK_SUSPECT_BOOK, f"{_describe(leg, n_legs)}the book of token {leg.token_id} is suspect"
            )
        if health.age_ms > self.settings.max_book_age_ms:
            return Rejected(
                RiskCode.RISK_STALE_BOOK,
                f"{_describe(leg, n_legs)}book is {health.age_ms:.0f} ms old "
                f"(limit {self.settings.max_book_age_ms:.0f} ms)",
            )
        return None

    @staticmethod
    def _reduces(leg: OrderIntent, exposure: Exposure) -> bool:
        if leg.side is not Side.SELL:
            return False
        free = exposure.held_shares.get(leg.token_id, ZERO) - exposure.working_sell_shares.get(leg.token_id, ZERO)
        return leg.size <= free

    def _expire(self, now: float) -> None:
        """Forget what left the windows: costs what expired, not what is in them."""
        horizon = now - self.settings.order_rate_window_secs
        orders, counts = self._orders, self._market_orders
        while orders and orders[0][0] <= horizon:
            _, market = orders.popleft()
            left = counts[market] - 1
            if left:
                counts[market] = left
            else:
                del counts[market]
        dup_horizon = now - self.settings.duplicate_window_secs
        while self._recent_order and self._recent_order[0][0] <= dup_horizon:
            ts, key = self._recent_order.popleft()
            if self._recent.get(key) == ts:
                del self._recent[key]

    def _record(self, legs: tuple[OrderIntent, ...], keys: list[_DedupKey], now: float) -> None:
        counts = self._market_orders
        for leg, key in zip(legs, keys, strict=False):  # as long as each other (_check made the keys)
            self._orders.append((now, leg.condition_id))
            counts[leg.condition_id] = counts.get(leg.condition_id, 0) + 1
            self._recent[key] = now
            self._recent_order.append((now, key))

    def statistics(self) -> RiskStatistics:
        return RiskStatistics(
            state=self._state,
            approvals=self._approvals,
            rejections=dict(self._rejections),
            state_changes=self._state_changes,
            daily_pnl=self._daily_pnl,
            risk_day=self._risk_day,
        )


#: strategy, token, side, price, size
_DedupKey = tuple[str, str, Side, Decimal, Decimal]


def _dedup_key(leg: OrderIntent) -> _DedupKey:
    return (leg.strategy, leg.token_id, leg.side, leg.price, leg.size)


def _describe(leg: OrderIntent, n_legs: int) -> str:
    return f"leg {leg.client_order_id}: " if n_legs > 1 else ""
