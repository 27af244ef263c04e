"""`OrderManager`, the one object the engine talks to about orders, and `pump_venue_events`, which feeds it.

The manager builds its parts over one `OrderLedger` and one `VenueGuard` and hands each call to the part that does
it: sending to the `Submitter`, asking by id to the `Resolver`, cancels to the `Canceller`, venue events to the
`VenueEventHandler`. Views of the orders read the ledger directly (the risk gate reads them on every intent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NoReturn

import structlog
import trio

from trader.domain.events import OrderReason
from trader.domain.intents import OrderIntent
from trader.domain.orders import Order
from trader.domain.positions import Portfolio
from trader.engine.breaker import Breakers, CircuitOpenError
from trader.engine.order_manager.cancels import Canceller
from trader.engine.order_manager.events import VenueEventHandler
from trader.engine.order_manager.guard import (
    BATCH_ENDPOINT,
    CLOSED_ONLY_ENDPOINT,
    OPEN_ORDERS_ENDPOINT,
    TIER_ENDPOINT,
    RateLimitWaitTooLong,
    VenueGuard,
)
from trader.engine.order_manager.ledger import OrderLedger
from trader.engine.order_manager.resolve import Resolver
from trader.engine.order_manager.settings import OrderManagerSettings, OrderManagerStatistics
from trader.engine.order_manager.submit import Submitter, check_batch_intents
from trader.engine.rate_limit import RateLimiter, TierSource
from trader.engine.restrictions import VenueRestrictions
from trader.engine.venue_health import VenueHealth
from trader.errors import ConfigError
from trader.integrations.store.base import Store
from trader.venues.base import MAX_BATCH_SIZE, CancelResult, Venue, VenueAccount, VenueEvent, VenueTrade
from trader.venues.errors import VenueError

__all__ = ["OrderManager", "pump_venue_events"]

log = structlog.get_logger(__name__)


class OrderManager:
    """See the package docstring (`trader.engine.order_manager`). Not thread-safe: one Trio thread owns it."""

    def __init__(
        self,
        venue: Venue,
        store: Store,
        *,
        portfolio: Portfolio | None = None,
        breakers: Breakers | None = None,
        limiter: RateLimiter | None = None,
        settings: OrderManagerSettings | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        """`fence` (active/standby): True while this engine may send (`Leadership.may_send`), checked right before
        every order and cancel request leaves."""
        if not callable(getattr(venue, "prepare", None)):  # once, here: an untyped caller fails now, not per order
            raise ConfigError("OrderManager needs a venue that prepares its own orders (`Venue.prepare`)")
        self._venue = venue
        self._settings = settings = settings or OrderManagerSettings()
        self._wall_ns = wall_ns
        self._guard = guard = VenueGuard(
            breakers or Breakers(),
            limiter or RateLimiter(),
            request_timeout_secs=settings.request_timeout_secs,
            restrictions=VenueRestrictions(settings.restrictions),
            health=VenueHealth(settings.venue_health),
            wall_secs=self.now,
            fence=fence,
        )
        #: the venue's account side (rate-limit reports, closed-only, tier), when it has one
        self._account = venue if isinstance(venue, VenueAccount) else None
        if self._account is not None:
            self._account.add_rate_limit_listener(guard.on_rate_limit)
        self._ledger = ledger = OrderLedger(
            store,
            portfolio if portfolio is not None else Portfolio(),
            wall_ns=wall_ns,
            recent_events=settings.recent_events,
            forget_after_secs=settings.forget_closed_after_secs,
            max_closed=settings.max_closed_orders,
        )
        self._cancels = Canceller(venue, ledger, guard)
        self._events = VenueEventHandler(venue, ledger, guard, self._cancels)
        self._resolver = Resolver(venue, ledger, guard, events=self._events, canceller=self._cancels, settings=settings)
        self._submitter = Submitter(
            venue, ledger, guard, resolver=self._resolver, events=self._events, cancels=self._cancels, settings=settings
        )

    # -- what it was built with -----------------------------------------------------------------------------------

    @property
    def venue(self) -> Venue:
        return self._venue

    @property
    def store(self) -> Store:
        return self._ledger.store

    @property
    def settings(self) -> OrderManagerSettings:
        return self._settings

    @property
    def portfolio(self) -> Portfolio:
        return self._ledger.portfolio

    @property
    def breakers(self) -> Breakers:
        """The circuit breakers, one per endpoint family (orders, cancels, reads)."""
        return self._guard.breakers

    @property
    def health(self) -> VenueHealth:
        """The venue's health as the requests see it (answers, refusals of our credentials, silence)."""
        return self._guard.health

    @property
    def limiter(self) -> RateLimiter:
        return self._guard.limiter

    @property
    def restrictions(self) -> VenueRestrictions:
        """The venue's trading restrictions as the replies tell them (`trader.engine.restrictions`)."""
        return self._guard.restrictions

    @property
    def has_account(self) -> bool:
        """Whether the venue can be asked about the account (`VenueAccount`: closed-only, rate-limit tier)."""
        return self._account is not None

    def max_batch_orders(self) -> int:
        """The most orders one `submit_batch` request may hold: the venue's cap, and the most one request can cost
        in the signer's order bucket (a batch costing more than the tier's burst can never pass: split it)."""
        cost = self.limiter.max_cost(BATCH_ENDPOINT)
        return MAX_BATCH_SIZE if cost is None else max(1, min(MAX_BATCH_SIZE, cost))

    # -- views -------------------------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> Order:
        return self._ledger.orders[client_order_id]

    def get(self, client_order_id: str) -> Order | None:
        return self._ledger.orders.get(client_order_id)

    def orders(self) -> list[Order]:
        return list(self._ledger.orders.values())

    def open_orders(self) -> list[Order]:
        """Orders sent and not terminal, in creation order (from an index: costs what is open, not what was sent)."""
        return self._ledger.open_orders()

    def awaiting_fills(self, client_order_id: str) -> Decimal:
        """Shares the venue reported matched (submit reply, order events) whose trades have not arrived yet."""
        return self._ledger.awaiting_fills(client_order_id)

    @property
    def _venue_matched(self) -> dict[str, Decimal]:
        """The most the venue said matched, per client order id, of the orders `needs_reconcile` still looks at."""
        return self._ledger.venue_matched

    def unresolved(self) -> list[Order]:
        """The UNKNOWN orders (their submit's outcome unknown), by client order id."""
        orders = self._ledger.orders
        return [orders[cid] for cid in sorted(self._ledger.unresolved)]

    def unknown_deadline(self, client_order_id: str) -> float:
        """For an UNKNOWN order: the Trio time from which the venue's "not found" is a verdict (its window's end)."""
        return self._resolver.deadline(client_order_id)

    def deferred_cancels(self) -> dict[str, str]:
        """Cancels waiting for the venue to confirm their order's id: client order id -> reason."""
        return self._cancels.deferred()

    def recent_events(self) -> list[object]:
        return self._ledger.recent_events()

    def publish(self, event: object) -> None:
        """Hand a domain event to the listeners and the recent-events ring (the execution service uses it too)."""
        self._ledger.emit(event)

    def add_listener(self, listener: Callable[[object], None]) -> None:
        """Called synchronously with every domain event (order events, trade status changes); must not block."""
        self._ledger.add_listener(listener)

    @property
    def sending_blocked(self) -> str | None:
        """The reason nothing new may be sent (an emergency stop, a drain), or None."""
        return self._guard.sending_blocked

    def block_sending(self, reason: str) -> None:
        """From now on, `submit` sends nothing (a submit already past this check may still be on the wire)."""
        self._guard.sending_blocked = reason

    def allow_sending(self) -> None:
        self._guard.sending_blocked = None

    def now(self) -> float:
        """Wall-clock epoch seconds, the timestamps of domain events."""
        return self._wall_ns() / 1e9

    # -- sending ----------------------------------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent, *, group_id: str | None = None) -> Order:
        """Persist, send and resolve one order (`POST /order`); returns its state once the venue's answer (or its
        absence) is known.

        Raises `DuplicateClientOrderId` if the client order id was used before, and `PrepareFailed` if the order could
        not be built: in both cases nothing is written or sent.
        """
        (order,) = await self._submitter.submit((intent,), group_id)
        return order

    async def submit_batch(self, intents: Sequence[OrderIntent], *, group_id: str | None = None) -> list[Order]:
        """`submit` for up to `MAX_BATCH_SIZE` orders in ONE request (`POST /orders`): every order is prepared, every
        intent written in one store transaction, the request passes the rate limiter and the breaker once, and each
        order is then resolved by its own result (an unknown outcome of the request leaves each order's unknown, and
        each is asked for by its id). One order's refusal does not refuse the others.

        Raises `DuplicateClientOrderId` or `PrepareFailed` if any order reuses a client order id or cannot be built,
        and `ValueError` for a batch the venue would refuse (empty, too large, post-only mixed with not): in every
        case before anything is written or sent.
        """
        check_batch_intents(intents)
        return await self._submitter.submit(intents, group_id)

    # -- asking the venue by order id ------------------------------------------------------------------------------

    async def reconcile(self, client_order_id: str) -> Order:
        """Ask the venue about one order by its id and apply what it says (state, and every trade of it); an UNKNOWN
        order not found is closed only once its window has passed.

        Lookup errors propagate (`VenueError`, `trio.TooSlowError`, `CircuitOpenError`, `RateLimitWaitTooLong`).
        """
        return await self._resolver.reconcile(client_order_id)

    def forget_closed(self) -> None:
        """Housekeeping: forget every closed order that is due (`OrderManagerSettings.forget_closed_after_secs`)."""
        self._ledger.forget_closed(batch=len(self._ledger.closed))

    def needs_reconcile(self) -> list[Order]:
        """Orders to ask the venue about: outcome unknown, or fills reported by the venue that never arrived."""
        return self._resolver.needs_reconcile()

    async def resync_open_orders(self) -> None:
        """Ask the venue about every open order by id (after a gap in its events); failures are logged."""
        await self._resolver.resync_open_orders()

    async def recover_pending(self) -> list[Order]:
        """At start: intents written but never resolved (a crash between the write and the answer). Each is rebuilt
        as an UNKNOWN order and resolved by asking the venue for its id; nothing is sent again."""
        return await self._resolver.recover_pending()

    # -- cancels ------------------------------------------------------------------------------------------------

    async def cancel(self, client_order_id: str, *, reason: str = OrderReason.CANCELED_BY_USER) -> Order:
        """Ask the venue to cancel one order (HIGH priority). Errors propagate; the order stays PENDING_CANCEL. The
        cancel of an order whose id the venue has not confirmed (SUBMITTED, UNKNOWN) is deferred until it does."""
        return await self._cancels.cancel(client_order_id, reason=reason)

    async def cancel_all(self, *, reason: str, force: bool = False) -> CancelResult:
        """Cancel every open order at the venue (HIGH priority; `force`: even with the cancels breaker open); those
        it has not confirmed yet are cancelled once it does."""
        return await self._cancels.cancel_all(reason=reason, force=force)

    async def cancel_many(self, client_order_ids: Sequence[str], *, reason: str) -> list[Order]:
        """Cancel several orders by id (`DELETE /orders`, HIGH priority), in as few requests as the venue takes: at
        most `MAX_CANCEL_IDS` ids each, and no more than one request can cost in the signer's cancel bucket. Errors
        propagate (the orders of a failed request stay PENDING_CANCEL); returns the orders' states."""
        return await self._cancels.cancel_many(client_order_ids, reason=reason)

    # -- the venue's account (restrictions, rate-limit tier) -------------------------------------------------

    async def poll_closed_only(self) -> bool | None:
        """Ask the venue whether the account is closed-only and tell the restrictions; None when it could not be
        asked (logged, counted) or has no account side."""
        account = self._account
        if account is None:
            return None
        try:
            closed = await self._guard.call(CLOSED_ONLY_ENDPOINT, account.closed_only)
        except (VenueError, trio.TooSlowError, CircuitOpenError, RateLimitWaitTooLong) as exc:
            self.restrictions.on_poll_failed()
            log.warning("closed_only_poll_failed", error=repr(exc))
            return None
        self.restrictions.on_closed_only(closed, trio.current_time())
        return closed

    async def refresh_rate_limit_tier(self) -> str | None:
        """Ask the venue for the signer's rate-limit tier and size the buckets for it; None when it did not say
        (the buckets stay as they are: Standard until a tier is known)."""
        account = self._account
        if account is None:
            return None
        try:
            tier = await self._guard.call(TIER_ENDPOINT, account.rate_limit_tier)
        except (VenueError, trio.TooSlowError, CircuitOpenError, RateLimitWaitTooLong) as exc:
            log.warning("rate_limit_tier_failed", error=repr(exc), kept=self.limiter.tier)
            return None
        if tier is not None:
            self.limiter.set_tier(tier, TierSource.ENDPOINT, trio.current_time())
        return tier

    async def probe_venue(self) -> bool:
        """Ask the venue one authenticated question (closed-only, or the open orders for a venue without an account
        side) through the guard, so that its outcome tells the venue's health; True when it was answered."""
        if self._account is not None:
            return await self.poll_closed_only() is not None
        try:
            await self._guard.call(
                OPEN_ORDERS_ENDPOINT, self._venue.open_orders, max_wait_secs=self._settings.max_rate_wait_secs
            )
        except (VenueError, trio.TooSlowError, CircuitOpenError, RateLimitWaitTooLong) as exc:
            log.warning("venue_probe_failed", error=repr(exc))
            return False
        return True

    # -- venue events -----------------------------------------------------------------------------------------

    async def handle_venue_event(self, event: VenueEvent) -> None:
        """Apply one venue event (order update or trade) and persist what changed."""
        if isinstance(event, VenueTrade):
            await self._events.on_trade(event)
        else:
            await self._events.on_venue_order(event)

    def note_event_gap(self) -> None:
        self._ledger.counts["event_gaps"] += 1

    # -- waiting ----------------------------------------------------------------------------------------------

    async def wait_until(self, client_order_id: str, predicate: Callable[[Order], bool]) -> Order:
        """Wait until the order satisfies `predicate` (checked now and after each change); the caller sets the
        deadline."""
        return await self._ledger.wait_until(client_order_id, predicate)

    # -- introspection ----------------------------------------------------------------------------------------------

    def statistics(self) -> OrderManagerStatistics:
        ledger, guard = self._ledger, self._guard
        c, g = ledger.counts, guard.counts
        return OrderManagerStatistics(
            orders=len(ledger.orders),
            open_orders=len(ledger.open),
            submitted=c["submitted"],
            accepted=c["accepted"],
            rejected=dict(self._submitter.rejected),
            not_sent=dict(self._submitter.not_sent),
            ambiguous=c["ambiguous"],
            resolved_found=c["resolved_found"],
            resolved_not_found=c["resolved_not_found"],
            unresolved=len(ledger.unresolved),
            timeouts=g["timeouts"],
            responses_429=g["responses_429"],
            responses_5xx=g["responses_5xx"],
            responses_4xx=g["responses_4xx"],
            venue_errors=g["venue_errors"],
            breaker_refusals=g["breaker_refusals"],
            breaker_bypassed=g["breaker_bypassed"],
            cancels_sent=c["cancels_sent"],
            cancel_alls=c["cancel_alls"],
            fills=c["fills"],
            trades_confirmed=c["trades_confirmed"],
            trades_failed=c["trades_failed"],
            late_events=c["late_events"],
            unknown_events=c["unknown_events"],
            ghost_orders=c["ghost_orders"],
            store_errors=c["store_errors"],
            recovered=c["recovered"],
            event_gaps=c["event_gaps"],
            orders_forgotten=c["orders_forgotten"],
            breakers=guard.breakers.statistics(),
            rate_limiter=guard.limiter.statistics(),
            unknown_trade_statuses=c["unknown_trade_statuses"],
            restrictions=guard.restrictions.statistics(trio.current_time()),
            restricted={k.split(":", 1)[1]: n for k, n in g.items() if k.startswith("restricted:")},
            restart_retries=g["restart_retries"],
            lookups=c["lookups"],
            late_fills=c["late_fills"],
            cancels_deferred=c["cancels_deferred"],
            venue_health=guard.health.statistics(trio.current_time()),
        )

    def positions(self) -> dict[str, Decimal]:
        """Token -> shares held, as the portfolio has it (for comparing with the venue's)."""
        return {t: p.quantity for t, p in self.portfolio.positions.items() if p.quantity}


async def pump_venue_events(
    manager: OrderManager,
    *,
    reopen_delay_secs: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Subscribe to the venue's events and apply each to `manager`, until cancelled.

    If the venue closes the subscription, it is reopened after `reopen_delay_secs`, and every open order is then
    asked for by id: events may have been missed in between (counted in `statistics().event_gaps`).
    """
    started = False
    while True:
        async with manager.venue.open_events() as events:
            if not started:
                started = True
                task_status.started()
            else:
                await manager.resync_open_orders()
            async for event in events:
                await manager.handle_venue_event(event)
        manager.note_event_gap()
        log.warning("venue_events_closed", reopen_in_secs=reopen_delay_secs)
        await trio.sleep(reopen_delay_secs)
