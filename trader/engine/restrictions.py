"""Venue trading restrictions as the engine follows them: a pure core (`VenueRestrictions`, every method takes `now`
on the Trio clock) owned by the order manager's guard, and a Trio loop (`watch_venue_account`) that asks the venue
about the account.

The venue is up but refuses some or all new orders for a while (`trader.venues.errors.TradingRestriction`,
protocol.md §11 item 3). None of it is a failure of ours or of the venue's health: the circuit breaker does not count
it, and an order the venue refused for it was not taken (a verdict the venue showed). Each restriction has a stable
reason code (`RiskCode.RESTRICTED_*`) for the orders the engine then does not send:

- RESTARTING: learned from a 425 on an order or cancel endpoint; every new order is refused until the next probe
  time (`RESTRICTED_RESTARTING`); lifted by any other answer to a request sent after it began, and then POST_ONLY
  follows (inferred: the docs' window after every restart).
- POST_ONLY: inferred after a restart, or learned from a post-only-mode refusal; orders that are not post-only are
  refused (`RESTRICTED_POST_ONLY`); lifted `post_only_window_secs` after it began, or when a non-post-only order is
  answered normally.
- CANCEL_ONLY, TRADING_DISABLED: learned from the venue's refusal; every new order is refused until the next probe
  time (`RESTRICTED_CANCEL_ONLY`, `RESTRICTED_TRADING_DISABLED`); lifted when an order is answered normally.
- CLOSED_ONLY: polled (`closed_only()`), or learned from a closed-only refusal (which polls at once); buys are
  refused (`RESTRICTED_CLOSED_ONLY`) and the risk gate goes REDUCING; lifted when the venue says so (the poll), or
  when a buy is accepted.

RESTARTING, POST_ONLY, CANCEL_ONLY and TRADING_DISABLED are the venue's modes: a refusal naming one ends the others.
CLOSED_ONLY is the account's, independent of them. Cancels are never refused here: they go out in every mode (the
venue answers 425 to them during a restart, and the guard retries them).

Probes: while RESTARTING (or CANCEL_ONLY, TRADING_DISABLED), new orders are refused until `probe_at`; from then on
orders go out again, and the first answer says whether the restriction holds. A refusal of a request sent at or
after `probe_at` (a probe) doubles the wait (RESTARTING: `restart_backoff_initial_secs` doubling to
`restart_backoff_max_secs`, the docs' "1-2 s, doubling"; the others: `probe_initial_secs` to `probe_max_secs`); a
refusal of one sent earlier changes nothing (it was in flight when the restriction began). An order refused with 425
is retried by the guard at each probe time, under the same order id, for at most `order_retry_secs`
(`trader.engine.order_manager.guard`); a stale order is not worth sending after a long outage.

Listeners (`add_listener`) hear every change (`RestrictionChanged`); `follow_restrictions(risk, restrictions)` puts
the risk gate in REDUCING while the account is closed-only (and back to ACTIVE when that lifts, unless something else
changed the state meanwhile) and lets the gate refuse intents the venue would refuse (`gate_check`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, Protocol

import structlog
import trio

from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.engine.risk import Rejected, RiskCode, RiskGate
from trader.errors import ConfigError
from trader.venues.errors import TradingRestriction

if TYPE_CHECKING:
    from trader.engine.order_manager import OrderManager

__all__ = [
    "RESTRICTION_CODES",
    "RestrictionChanged",
    "RestrictionSettings",
    "RestrictionStatistics",
    "SendsOrders",
    "VenueRestrictions",
    "follow_restrictions",
    "watch_venue_account",
]

log = structlog.get_logger(__name__)

#: The denial code of each restriction (orders the engine does not send while it holds).
RESTRICTION_CODES: Mapping[TradingRestriction, RiskCode] = {
    TradingRestriction.RESTARTING: RiskCode.RESTRICTED_RESTARTING,
    TradingRestriction.POST_ONLY: RiskCode.RESTRICTED_POST_ONLY,
    TradingRestriction.CANCEL_ONLY: RiskCode.RESTRICTED_CANCEL_ONLY,
    TradingRestriction.TRADING_DISABLED: RiskCode.RESTRICTED_TRADING_DISABLED,
    TradingRestriction.CLOSED_ONLY: RiskCode.RESTRICTED_CLOSED_ONLY,
}
_MODES = frozenset(
    {
        TradingRestriction.RESTARTING,
        TradingRestriction.POST_ONLY,
        TradingRestriction.CANCEL_ONLY,
        TradingRestriction.TRADING_DISABLED,
    }
)
_PROBED = frozenset(
    {TradingRestriction.RESTARTING, TradingRestriction.CANCEL_ONLY, TradingRestriction.TRADING_DISABLED}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictionSettings:
    """How the engine rides out the venue's trading restrictions.

    - `post_only_window_secs` (default 120): the post-only window after a restart (the docs: 2 minutes), and how long
      a post-only refusal is taken to hold.
    - `restart_backoff_initial_secs` (default 1), `restart_backoff_max_secs` (default 16): while the matching engine
      restarts (425), the wait before the next probe, doubling.
    - `probe_initial_secs` (default 5), `probe_max_secs` (default 60): the same for cancel-only and trading disabled.
    - `order_retry_secs` (default 10): how long an order refused with 425 is sent again (same order id) before it is
      left refused.
    - `closed_only_poll_secs` (default 60): how often the venue is asked whether the account is closed-only.
    - `tier_poll_secs` (default 600): how often the venue is asked for the account's rate-limit tier.
    """

    post_only_window_secs: float = 120.0
    restart_backoff_initial_secs: float = 1.0
    restart_backoff_max_secs: float = 16.0
    probe_initial_secs: float = 5.0
    probe_max_secs: float = 60.0
    order_retry_secs: float = 10.0
    closed_only_poll_secs: float = 60.0
    tier_poll_secs: float = 600.0

    def __post_init__(self) -> None:
        for name in (
            "post_only_window_secs",
            "restart_backoff_initial_secs",
            "restart_backoff_max_secs",
            "probe_initial_secs",
            "probe_max_secs",
            "closed_only_poll_secs",
            "tier_poll_secs",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if not (isinstance(self.order_retry_secs, int | float) and 0 <= self.order_retry_secs < math.inf):
            raise ConfigError(f"order_retry_secs must be a number of seconds >= 0, got {self.order_retry_secs!r}")
        if self.restart_backoff_max_secs < self.restart_backoff_initial_secs:
            raise ConfigError("restart_backoff_max_secs must be >= restart_backoff_initial_secs")
        if self.probe_max_secs < self.probe_initial_secs:
            raise ConfigError("probe_max_secs must be >= probe_initial_secs")


@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictionChanged:
    """A restriction began or ended. `source`: venue (a refusal), inferred (the window after a restart), poll (the
    account endpoint), answer (a normal answer ended it), expired (its window ran out)."""

    restriction: TradingRestriction
    active: bool
    source: str
    ts: float  # Trio time


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveRestriction:
    restriction: TradingRestriction
    code: RiskCode
    source: str
    since: float  # Trio time
    until: float | None  # POST_ONLY: when its window ends
    probe_at: float | None  # RESTARTING, CANCEL_ONLY, TRADING_DISABLED: when orders may test it again
    refusals: int  # venue refusals seen while it held


@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictionStatistics:
    active: tuple[ActiveRestriction, ...]
    refusals: Mapping[str, int]  # venue refusals, by restriction
    denied: Mapping[str, int]  # orders not sent (or intents refused), by code
    started: Mapping[str, int]  # times each restriction began
    closed_only_polls: int
    poll_failures: int


class SendsOrders(Protocol):
    """What `order_denial` reads of an order (an `Order` or an `OrderIntent`)."""

    @property
    def side(self) -> Side: ...

    @property
    def post_only(self) -> bool: ...


@dataclass(slots=True)
class _State:
    restriction: TradingRestriction
    source: str
    since: float
    until: float | None = None
    probe_at: float | None = None
    backoff: float = 0.0
    refusals: int = 0


@dataclass(slots=True)
class _Counts:
    refusals: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)
    started: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    poll_failures: int = 0


class VenueRestrictions:
    """The restrictions in force, as the venue's answers tell them (see the module docstring). Not thread-safe."""

    def __init__(self, settings: RestrictionSettings | None = None) -> None:
        self.settings = settings or RestrictionSettings()
        self._active: dict[TradingRestriction, _State] = {}
        self._listeners: list[Callable[[RestrictionChanged], None]] = []
        self._counts = _Counts()
        #: set when a closed-only refusal arrives: the account watch polls at once
        self.poll_now = trio.Event()

    # -- listeners ------------------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[RestrictionChanged], None]) -> None:
        """Called synchronously with every `RestrictionChanged`; must not block."""
        self._listeners.append(listener)

    def _emit(self, restriction: TradingRestriction, active: bool, source: str, now: float) -> None:
        log_fn = log.warning if active else log.info
        log_fn("venue_restriction", restriction=str(restriction), active=active, source=source)
        change = RestrictionChanged(restriction=restriction, active=active, source=source, ts=now)
        for listener in self._listeners:
            listener(change)

    def _begin(self, restriction: TradingRestriction, source: str, now: float) -> _State:
        if restriction in _MODES:
            for other in [r for r in self._active if r in _MODES and r is not restriction]:
                self._end(other, "venue", now)
        state = self._active.get(restriction)
        if state is not None:
            return state
        state = _State(restriction, source, now)
        if restriction is TradingRestriction.POST_ONLY:
            state.until = now + self.settings.post_only_window_secs
        elif restriction in _PROBED:
            state.backoff = self._initial_backoff(restriction)
            state.probe_at = now + state.backoff
        self._active[restriction] = state
        self._counts.started[restriction] += 1
        self._emit(restriction, True, source, now)
        return state

    def _end(self, restriction: TradingRestriction, source: str, now: float) -> None:
        if self._active.pop(restriction, None) is not None:
            self._emit(restriction, False, source, now)

    def _initial_backoff(self, restriction: TradingRestriction) -> float:
        if restriction is TradingRestriction.RESTARTING:
            return self.settings.restart_backoff_initial_secs
        return self.settings.probe_initial_secs

    def _max_backoff(self, restriction: TradingRestriction) -> float:
        if restriction is TradingRestriction.RESTARTING:
            return self.settings.restart_backoff_max_secs
        return self.settings.probe_max_secs

    def _expire(self, now: float) -> None:
        state = self._active.get(TradingRestriction.POST_ONLY)
        if state is not None and state.until is not None and now >= state.until:
            self._end(TradingRestriction.POST_ONLY, "expired", now)

    # -- what the venue said --------------------------------------------------------------------------------------

    def on_refusal(self, restriction: TradingRestriction, *, sent_at: float, now: float) -> None:
        """The venue refused a request (sent at `sent_at`) for `restriction`."""
        self._expire(now)
        self._counts.refusals[restriction] += 1
        state = self._active.get(restriction)
        if state is None:
            state = self._begin(restriction, "venue", now)
        elif state.probe_at is not None and sent_at >= state.probe_at:  # a probe: the restriction holds
            state.backoff = min(state.backoff * 2, self._max_backoff(restriction))
            state.probe_at = now + state.backoff
        state.refusals += 1
        if restriction is TradingRestriction.CLOSED_ONLY:
            self.poll_now.set()

    def on_answer(self, *, order_endpoint: bool, sent_at: float, now: float) -> None:
        """The venue answered a request sent at `sent_at` without naming a restriction (a success, or a refusal of
        the request for a reason of its own): a restart is over (the post-only window follows), and an order
        endpoint that answers is not cancel-only or disabled any more. Only a request sent after a restriction
        began says anything about it (one sent earlier was on its way before)."""
        self._expire(now)
        restarting = self._active.get(TradingRestriction.RESTARTING)
        if restarting is not None and sent_at > restarting.since:
            self._end(TradingRestriction.RESTARTING, "answer", now)
            self._begin(TradingRestriction.POST_ONLY, "inferred", now)
        if order_endpoint:
            for restriction in (TradingRestriction.CANCEL_ONLY, TradingRestriction.TRADING_DISABLED):
                state = self._active.get(restriction)
                if state is not None and sent_at > state.since:
                    self._end(restriction, "answer", now)

    def on_order_answered(self, order: SendsOrders, *, sent_at: float, now: float) -> None:
        """The venue took an order sent at `sent_at`, or refused it for a reason of its own (not a restriction): a
        non-post-only order answered ends a post-only window; a buy taken ends closed-only."""
        post_only = self._active.get(TradingRestriction.POST_ONLY)
        if post_only is not None and not order.post_only and sent_at > post_only.since:
            self._end(TradingRestriction.POST_ONLY, "answer", now)

    def on_buy_accepted(self, *, sent_at: float, now: float) -> None:
        closed = self._active.get(TradingRestriction.CLOSED_ONLY)
        if closed is not None and sent_at > closed.since:
            self._end(TradingRestriction.CLOSED_ONLY, "answer", now)

    def on_closed_only(self, closed_only: bool, now: float) -> None:
        """What the venue's account endpoint says."""
        self._counts.polls += 1
        if closed_only:
            self._begin(TradingRestriction.CLOSED_ONLY, "poll", now)
        else:
            self._end(TradingRestriction.CLOSED_ONLY, "poll", now)

    def on_poll_failed(self) -> None:
        self._counts.poll_failures += 1

    # -- what may go ------------------------------------------------------------------------------------------------

    def order_denial(self, orders: Sequence[SendsOrders], now: float, *, count: bool = True) -> RiskCode | None:
        """The code of the restriction that forbids sending `orders` (in one request) now, or None."""
        self._expire(now)
        code = self._denial(orders, now)
        if code is not None and count:
            self._counts.denied[code] += len(orders)
        return code

    def _denial(self, orders: Sequence[SendsOrders], now: float) -> RiskCode | None:
        for restriction in (
            TradingRestriction.RESTARTING,
            TradingRestriction.TRADING_DISABLED,
            TradingRestriction.CANCEL_ONLY,
        ):
            state = self._active.get(restriction)
            if state is not None and state.probe_at is not None and now < state.probe_at:
                return RESTRICTION_CODES[restriction]
        if TradingRestriction.POST_ONLY in self._active and not all(o.post_only for o in orders):
            return RiskCode.RESTRICTED_POST_ONLY
        if TradingRestriction.CLOSED_ONLY in self._active and any(o.side is Side.BUY for o in orders):
            return RiskCode.RESTRICTED_CLOSED_ONLY
        return None

    def gate_check(self, legs: Sequence[OrderIntent], now: float) -> Rejected | None:
        """The risk gate's view (`RiskGate.set_venue_check`): a restriction that forbids the intent's orders."""
        code = self.order_denial(legs, now)
        if code is None:
            return None
        return Rejected(code, _DETAIL[code])

    def restart_retry_at(self, now: float) -> float:
        """When an order refused with 425 may be sent again: the next probe while the restart lasts, else now."""
        state = self._active.get(TradingRestriction.RESTARTING)
        if state is None or state.probe_at is None:
            return now
        return max(now, state.probe_at)

    def holds(self, restriction: TradingRestriction) -> bool:
        """Whether `restriction` is in force as last updated (a post-only window may have run out since)."""
        return restriction in self._active

    def is_active(self, restriction: TradingRestriction, now: float) -> bool:
        self._expire(now)
        return restriction in self._active

    def active(self, now: float) -> tuple[ActiveRestriction, ...]:
        self._expire(now)
        return tuple(
            ActiveRestriction(
                restriction=s.restriction,
                code=RESTRICTION_CODES[s.restriction],
                source=s.source,
                since=s.since,
                until=s.until,
                probe_at=s.probe_at,
                refusals=s.refusals,
            )
            for s in self._active.values()
        )

    def accepts_orders(self, now: float) -> bool:
        """False while the venue takes no new orders at all (restarting, cancel-only, disabled)."""
        self._expire(now)
        return not any(r in _PROBED for r in self._active)

    def statistics(self, now: float) -> RestrictionStatistics:
        c = self._counts
        return RestrictionStatistics(
            active=self.active(now),
            refusals=dict(c.refusals),
            denied=dict(c.denied),
            started=dict(c.started),
            closed_only_polls=c.polls,
            poll_failures=c.poll_failures,
        )


_DETAIL: Mapping[RiskCode, str] = {
    RiskCode.RESTRICTED_RESTARTING: "the venue's matching engine is restarting (425): no new orders until it is back",
    RiskCode.RESTRICTED_POST_ONLY: "the venue takes only post-only orders now (the window after a restart)",
    RiskCode.RESTRICTED_CANCEL_ONLY: "the venue is cancel-only: no new orders",
    RiskCode.RESTRICTED_TRADING_DISABLED: "trading is disabled at the venue: no new orders",
    RiskCode.RESTRICTED_CLOSED_ONLY: "the account is closed-only at the venue: it may only reduce positions",
}


def follow_restrictions(risk: RiskGate, restrictions: VenueRestrictions, now: Callable[[], float]) -> None:
    """Let the risk gate refuse what the venue would refuse, and put it in REDUCING while the account is closed-only
    (`now()`: the wall-clock epoch seconds the risk events carry)."""
    risk.set_venue_check(restrictions.gate_check)

    def on_change(change: RestrictionChanged) -> None:
        if change.restriction is not TradingRestriction.CLOSED_ONLY:
            return
        if change.active:
            risk.venue_reduce_only(reason=RiskCode.RESTRICTED_CLOSED_ONLY, ts=now())
        else:
            risk.venue_lift(reason=RiskCode.RESTRICTED_CLOSED_ONLY, ts=now())

    restrictions.add_listener(on_change)
    if restrictions.holds(TradingRestriction.CLOSED_ONLY):
        risk.venue_reduce_only(reason=RiskCode.RESTRICTED_CLOSED_ONLY, ts=now())


async def watch_venue_account(
    manager: OrderManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> NoReturn:
    """Ask the venue (a `VenueAccount`; any other venue: nothing to ask, the task just waits) for the account's
    rate-limit tier (at start, then every `tier_poll_secs`) and whether it is closed-only (every
    `closed_only_poll_secs`, and at once after a closed-only refusal). A failed question is logged and counted; the
    last answer stands."""
    restrictions = manager.restrictions
    settings = restrictions.settings
    if not manager.has_account:
        task_status.started()
        await trio.sleep_forever()
    next_tier = trio.current_time()
    started = False
    while True:
        now = trio.current_time()
        if now >= next_tier:
            next_tier = now + settings.tier_poll_secs
            await manager.refresh_rate_limit_tier()
        restrictions.poll_now = trio.Event()
        await manager.poll_closed_only()
        if not started:
            started = True
            task_status.started()
        with trio.move_on_after(min(settings.closed_only_poll_secs, max(0.0, next_tier - trio.current_time()))):
            await restrictions.poll_now.wait()
