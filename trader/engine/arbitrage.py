"""Atomic arbitrage: the legs of an `ArbIntent` (YES+NO, or a complete neg-risk basket) as paired tasks.

`run_arbitrage(manager, arb, ...)` sends every leg at once, in one request (`POST /orders`; a basket of more than
`MAX_BATCH_SIZE` legs, or costing more than the signer's order burst, in several, sent concurrently; or one request
per leg with `batch_legs=False`), then watches
each leg in its own task of one nursery until it finishes: filled, closed, or past `leg_timeout_secs`. A leg that
could not be prepared fails its whole request before anything of it is written or sent. As soon as one leg ends
SHORT (rejected, killed, partly filled, not found, timed out), the others are told to stop: a leg still working is
cancelled (and asked for by its order id if its state is still unclear), so that no more of it fills than needed.

A leg whose submit outcome is UNKNOWN (`trader.engine.order_manager.resolve`) is neither filled nor failed: its
cancel waits for the venue to confirm it, and the basket waits for its verdict (asking by id, for at most
`unknown_leg_wait_secs`) before deciding what to sell back. One still UNKNOWN then (the venue cannot be asked) is
treated as possibly filled in full: only what is excess whatever it holds is sold back, and the outcome says why
(`ARB_LEG_UNKNOWN`). The exposure that leaves is reported as residual, and the leg stays watched for a late fill.

Then the basket is evened out, whether a leg ended short or every leg filled: `matched` is the share count every
leg holds (the complete sets); a leg that holds more (it filled more, or paid less of its fee in shares than
another) holds an excess, which is sold back at once (FAK, at no less than its average fill price minus
`arb.max_slippage`, on the tick grid), through the same risk gate as everything else. The strategy sizes legs so that
they hold the same after fees (`trader.strategies.baskets.sizes_after_fees`), so a filled basket normally has no
excess to sell. An unwind that was refused for a reason that can clear by itself (`RETRYABLE_UNWIND_REFUSALS`: an
open breaker, the rate limit, a stale book, no bids) or sold short is tried again, `unwind_attempts` times in all,
`unwind_retry_secs` later and then twice as long each time, on what the legs hold then; never while an unwind's own
outcome is unknown (what it sold is not known, so another could sell too much). Whatever cannot be sold back
(refused for good, still no bids within the cap, or the excess is below what the venue trades) is RESIDUAL exposure:
it is in the `ArbOutcome`, and the execution service records and reports it (an event, the store, statistics).
Nothing is left silently.

Positions count shares held: a buy whose fee was withheld in shares holds fewer than it filled. Below `dust_shares`
(a setting: 0.01 share, one size step, by default) a difference cannot be traded at all; it is kept in the outcome as
dust, not reported as residual.

If the task is cancelled (an emergency stop), no unwind is attempted; `summarize` gives the exposure as it stands,
for the service to report.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import structlog
import trio

from trader.domain.enums import OrderStatus, OrderType
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.numbers import SIZE_STEP, ZERO, Side, ceil_to_tick, floor_size
from trader.domain.orders import Order
from trader.engine.breaker import CircuitOpenError
from trader.engine.order_manager import (
    CIRCUIT_OPEN,
    RATE_LIMITED,
    VENUE_CONNECTION_ERROR,
    DuplicateClientOrderId,
    OrderManager,
    PrepareFailed,
    RateLimitWaitTooLong,
)
from trader.engine.risk import RiskCode
from trader.errors import ConfigError
from trader.venues.errors import VenueError, VenueRejectCode

log = structlog.get_logger(__name__)

#: Reason codes of arbitrage outcomes.
ARB_LEG_SHORT = "ARB_LEG_SHORT"
ARB_UNWIND_REFUSED = "ARB_UNWIND_REFUSED"  # the risk gate (or the sending path) refused the unwind
ARB_UNWIND_SHORT = "ARB_UNWIND_SHORT"  # the unwind did not sell all of the excess within the slippage cap
ARB_BELOW_MIN_SIZE = "ARB_BELOW_MIN_SIZE"  # the excess is too small to sell
ARB_INTERRUPTED = "ARB_INTERRUPTED"  # cancelled (emergency stop) before the basket was evened out
ARB_LEG_UNKNOWN = "ARB_LEG_UNKNOWN"  # a leg's outcome stayed unknown: not sold against, not counted as failed

_LOOKUP_ERRORS = (VenueError, trio.TooSlowError, CircuitOpenError, RateLimitWaitTooLong)

#: Refusals of an unwind that can clear by themselves (a breaker closes, a rate window passes, a book is confirmed
#: again, bids come back, the venue's restart window ends): only these are tried again. One that says the order
#: itself is wrong (its size, its price) or that trading stopped (a halt, a drain, another leader) is final.
RETRYABLE_UNWIND_REFUSALS = frozenset(
    {
        CIRCUIT_OPEN,
        RATE_LIMITED,
        VENUE_CONNECTION_ERROR,
        VenueRejectCode.SERVER_ERROR.value,
        VenueRejectCode.FOK_NOT_FILLED.value,
        RiskCode.RISK_STALE_BOOK.value,
        RiskCode.RISK_SUSPECT_BOOK.value,
        RiskCode.RISK_MARKET_RATE.value,
        RiskCode.RISK_GLOBAL_RATE.value,
        RiskCode.RISK_DUPLICATE_INTENT.value,
        RiskCode.RESTRICTED_RESTARTING.value,
        RiskCode.RESTRICTED_POST_ONLY.value,
    }
)


class ArbStatus(enum.StrEnum):
    COMPLETE = "COMPLETE"  # every leg filled in full (an excess of fee-withheld shares, if any, sold back)
    PARTIAL = "PARTIAL"  # some complete sets; the excess was sold back
    NOT_FILLED = "NOT_FILLED"  # no complete set; whatever filled was sold back
    RESIDUAL = "RESIDUAL"  # exposure is left that could not be hedged: reported


@dataclass(frozen=True, slots=True, kw_only=True)
class ArbitrageSettings:
    """- `leg_timeout_secs` (default 2.0): the longest a leg may work before it is cancelled.
    - `cancel_timeout_secs` (default 1.0): how long to wait for a cancel to be confirmed before asking by id.
    - `unwind_timeout_secs` (default 2.0): how long an unwind order may take.
    - `unknown_leg_wait_secs` (default 10.0): how long a stopped leg whose outcome is still unknown is asked for by
      id before the basket is evened out without its verdict (see the module doc).
    - `dust_shares` (default 0.01): a difference below this cannot be traded and is not residual exposure.
    - `min_unwind_shares` (default 0.01): a smaller excess is not sent (it is residual): set it to the market's
      minimum order size when known.
    - `batch_legs` (default true): the legs go out in one `POST /orders` (one intent write, one request: the
      fastest way to the venue); false sends one `POST /order` per leg, concurrently, so that a request that fails
      or hangs leaves only its own leg unknown.
    - `unwind_attempts` (default 3): how many times an excess is offered before what is left is residual (1: once,
      no retry); see the module doc.
    - `unwind_retry_secs` (default 2.0): the wait before the second attempt; each later wait is twice the one
      before. Keep it at least the risk gate's `duplicate_window_secs` (2 s): sooner, an unwind offered again at the
      same price and size is refused as a duplicate.
    """

    leg_timeout_secs: float = 2.0
    cancel_timeout_secs: float = 1.0
    unwind_timeout_secs: float = 2.0
    unknown_leg_wait_secs: float = 10.0
    dust_shares: Decimal = SIZE_STEP
    min_unwind_shares: Decimal = SIZE_STEP
    batch_legs: bool = True
    unwind_attempts: int = 3
    unwind_retry_secs: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.unwind_attempts, int) and 1 <= self.unwind_attempts <= 10):
            raise ConfigError(f"unwind_attempts must be an integer within [1, 10], got {self.unwind_attempts!r}")
        for name in (
            "leg_timeout_secs",
            "cancel_timeout_secs",
            "unwind_timeout_secs",
            "unknown_leg_wait_secs",
            "unwind_retry_secs",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("dust_shares", "min_unwind_shares"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < ZERO:
                raise ConfigError(f"{name} must be a Decimal >= 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LegResult:
    client_order_id: str
    token_id: str
    status: OrderStatus
    filled: Decimal  # shares filled (gross)
    held: Decimal  # shares this leg added to the position (filled less fees withheld in shares)
    avg_price: Decimal | None
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArbOutcome:
    arb_id: str
    strategy: str
    status: ArbStatus
    size: Decimal  # shares asked per leg
    matched: Decimal  # complete sets held (the least held over the legs, after unwinds)
    legs: tuple[LegResult, ...]
    unwound: Mapping[str, Decimal] = field(default_factory=dict)  # token -> shares sold back
    residual: Mapping[str, Decimal] = field(default_factory=dict)  # token -> unhedged shares (>= dust)
    dust: Mapping[str, Decimal] = field(default_factory=dict)  # token -> untradeable difference (< dust)
    reasons: tuple[str, ...] = ()

    @property
    def has_residual(self) -> bool:
        return bool(self.residual)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArbResidual:
    """An arbitrage left exposure it could not hedge (an event for the store, the bus and the operator)."""

    arb_id: str
    strategy: str
    residual: Mapping[str, Decimal]
    reasons: tuple[str, ...]
    ts: float


#: Decides on an unwind intent: None to send it, or a reason code to refuse it (the execution service passes the
#: risk gate here).
UnwindCheck = Callable[[OrderIntent], str | None]


def _held(order: Order) -> Decimal:
    return order.filled - order.fee_shares if order.side is Side.BUY else -order.filled


def summarize(
    manager: OrderManager,
    arb: ArbIntent,
    *,
    unwinds: Mapping[str, list[str]] | None = None,
    reasons: tuple[str, ...] = (),
    dust_shares: Decimal = SIZE_STEP,
) -> ArbOutcome:
    """The basket as it stands now: per leg what filled and is held, after the unwinds (`token -> unwind client
    order ids`), and the residual exposure. Synchronous: usable while being cancelled."""
    unwinds = unwinds or {}
    legs: list[LegResult] = []
    held: dict[str, Decimal] = {}
    unwound: dict[str, Decimal] = {}
    for leg in arb.legs:
        order = manager.get(leg.client_order_id)
        if order is None:  # never got as far as the order manager
            legs.append(
                LegResult(
                    client_order_id=leg.client_order_id,
                    token_id=leg.token_id,
                    status=OrderStatus.CREATED,
                    filled=ZERO,
                    held=ZERO,
                    avg_price=None,
                    reason=None,
                )
            )
            held[leg.token_id] = ZERO
            continue
        legs.append(
            LegResult(
                client_order_id=order.client_order_id,
                token_id=order.token_id,
                status=order.status,
                filled=order.filled,
                held=_held(order),
                avg_price=order.avg_fill_price,
                reason=order.reason,
            )
        )
        sold = sum((manager.order(cid).filled for cid in unwinds.get(leg.token_id, ())), ZERO)
        if sold:
            unwound[leg.token_id] = sold
        held[leg.token_id] = _held(order) - sold
    matched = max(min(held.values()), ZERO)
    residual: dict[str, Decimal] = {}
    dust: dict[str, Decimal] = {}
    for token, shares in held.items():
        excess = shares - matched
        if excess >= dust_shares and excess > ZERO:
            residual[token] = excess
        elif excess > ZERO:
            dust[token] = excess
    complete = all(r.filled >= leg.size for r, leg in zip(legs, arb.legs, strict=True))
    if residual:
        status = ArbStatus.RESIDUAL
    elif complete:
        status = ArbStatus.COMPLETE
    elif matched >= SIZE_STEP:
        status = ArbStatus.PARTIAL
    else:
        status = ArbStatus.NOT_FILLED
    return ArbOutcome(
        arb_id=arb.arb_id,
        strategy=arb.strategy,
        status=status,
        size=arb.size,
        matched=matched,
        legs=tuple(legs),
        unwound=unwound,
        residual=residual,
        dust=dust,
        reasons=reasons,
    )


class _Run:
    """One basket in flight."""

    def __init__(
        self,
        manager: OrderManager,
        arb: ArbIntent,
        settings: ArbitrageSettings,
        check: UnwindCheck,
        tick_of: Callable[[str], Decimal],
    ) -> None:
        self.manager = manager
        self.arb = arb
        self.settings = settings
        self.check = check
        self.tick_of = tick_of
        self.short = trio.Event()
        self.unwinds: dict[str, list[str]] = {}
        self.reasons: list[str] = []
        self.unknown: set[str] = set()  # legs whose outcome stayed unknown

    async def send(self, legs: Sequence[OrderIntent]) -> None:
        """Send `legs` in one request (one leg: `POST /order`), then watch each leg in its own task until it is done,
        short or stopped."""
        try:
            orders = await self.manager.submit_batch(legs, group_id=self.arb.arb_id)
        except (DuplicateClientOrderId, PrepareFailed, ValueError):
            for leg in legs:
                self._short(f"{ARB_LEG_SHORT}:{leg.client_order_id}")
            return
        # Logged once the orders are out (a log line costs more than a task hop).
        log.info(
            "arb_legs_sent", arb_id=self.arb.arb_id, legs=[leg.client_order_id for leg in legs], size=str(self.arb.size)
        )
        async with trio.open_nursery() as nursery:
            for leg, order in zip(legs, orders, strict=True):
                nursery.start_soon(self.watch_leg, leg, order)

    async def watch_leg(self, leg: OrderIntent, order: Order) -> None:
        manager, cid = self.manager, leg.client_order_id
        done = partial(_done, manager)
        if not done(order):
            with trio.move_on_after(self.settings.leg_timeout_secs):
                order = await _wait_or_abort(manager, cid, self.short)
        if not done(order):
            order = await self._stop(cid)
        if order.status is OrderStatus.UNKNOWN:  # not short, not filled: unknown (see the module doc)
            self.unknown.add(cid)
            self._short(f"{ARB_LEG_UNKNOWN}:{cid}")
        elif order.filled < leg.size:
            self._short(f"{ARB_LEG_SHORT}:{cid}")

    def _short(self, reason: str) -> None:
        self.reasons.append(reason)
        self.short.set()

    async def _stop(self, cid: str) -> Order:
        """Cancel a leg that is still working (one the venue has not confirmed: once it does), and make sure we know
        how much of it filled; an UNKNOWN one is asked for until its verdict (at most `unknown_leg_wait_secs`)."""
        manager, settings = self.manager, self.settings
        try:
            with trio.move_on_after(settings.cancel_timeout_secs):
                await manager.cancel(cid, reason="ARB_LEG_CANCELED")
        except _LOOKUP_ERRORS as exc:
            log.warning("arb_leg_cancel_failed", client_order_id=cid, error=repr(exc))
        with trio.move_on_after(settings.cancel_timeout_secs):
            await manager.wait_until(cid, lambda o: o.is_terminal or o.status is OrderStatus.UNKNOWN)
        if manager.order(cid).status is OrderStatus.UNKNOWN:
            await self._await_verdict(cid)
        order = manager.order(cid)
        if order.status is not OrderStatus.UNKNOWN and (not order.is_terminal or manager.awaiting_fills(cid)):
            try:
                order = await manager.reconcile(cid)
            except _LOOKUP_ERRORS as exc:
                log.error("arb_leg_state_unknown", client_order_id=cid, error=repr(exc))
        return manager.order(cid)

    async def _await_verdict(self, cid: str) -> None:
        """Ask the venue about an UNKNOWN leg until it shows the order or (after the window) its absence, for at most
        `unknown_leg_wait_secs`; events settle it too."""
        manager = self.manager
        pause = manager.settings.lookup_max_secs
        with trio.move_on_after(self.settings.unknown_leg_wait_secs):
            while manager.order(cid).status is OrderStatus.UNKNOWN:
                try:
                    await manager.reconcile(cid)
                except _LOOKUP_ERRORS as exc:
                    log.warning("arb_leg_lookup_failed", client_order_id=cid, error=repr(exc))
                with trio.move_on_after(pause):
                    await manager.wait_until(cid, lambda o: o.status is not OrderStatus.UNKNOWN)
        if manager.order(cid).status is OrderStatus.UNKNOWN:
            log.error("arb_leg_outcome_unknown", arb_id=self.arb.arb_id, client_order_id=cid)

    async def even_out(self) -> None:
        """`unwind`, and again after a wait while an attempt left shares unsold that a later one may sell (see the
        module doc)."""
        wait = self.settings.unwind_retry_secs
        for attempt in range(1, self.settings.unwind_attempts + 1):
            left = await self.unwind()
            if not left or attempt == self.settings.unwind_attempts or self._unwinds_in_doubt():
                return
            log.warning(
                "arb_unwind_retry",
                arb_id=self.arb.arb_id,
                attempt=attempt + 1,
                of=self.settings.unwind_attempts,
                in_secs=wait,
                left={token: str(shares) for token, shares in left.items()},
            )
            await trio.sleep(wait)
            wait *= 2

    def _unwinds_in_doubt(self) -> bool:
        """An unwind order whose outcome is not known yet (what it sold may still change)."""
        for cids in self.unwinds.values():
            for cid in cids:
                order = self.manager.order(cid)
                if order.status is OrderStatus.UNKNOWN or not _done(self.manager, order):
                    return True
        return False

    async def unwind(self) -> dict[str, Decimal]:
        """Sell back whatever some legs hold beyond what every leg holds; a leg whose outcome is UNKNOWN may hold up
        to its size, so only what is excess whatever it holds is sold. Returns what a sell-back was refused or sold
        short of, by token: what another attempt may sell."""
        left: dict[str, Decimal] = {}
        outcome = summarize(self.manager, self.arb, unwinds=self.unwinds, dust_shares=self.settings.dust_shares)
        unknown = {cid for cid in self.unknown if self.manager.order(cid).status is OrderStatus.UNKNOWN}
        held = {r.token_id: r.held - outcome.unwound.get(r.token_id, ZERO) for r in outcome.legs}  # after earlier sells
        could_hold = [self.arb.size if r.client_order_id in unknown else held[r.token_id] for r in outcome.legs]
        matched = max(min(could_hold), ZERO)
        for leg_result, leg in zip(outcome.legs, self.arb.legs, strict=True):
            if leg.client_order_id in unknown:
                continue
            excess = floor_size(held[leg.token_id] - matched)
            if excess <= ZERO:
                continue
            if excess < self.settings.min_unwind_shares:
                self.reasons.append(f"{ARB_BELOW_MIN_SIZE}:{leg.token_id}")
                continue
            unsold = await self._sell_back(leg, leg_result, excess)
            if unsold > ZERO:
                left[leg.token_id] = unsold
        return left

    async def _sell_back(self, leg: OrderIntent, result: LegResult, excess: Decimal) -> Decimal:
        """Offer `excess` shares of `leg`'s token; returns what was refused or not sold (0 when sold, or when the
        outcome is unknown: nothing to try again then)."""
        tick = self.tick_of(leg.token_id)
        reference = result.avg_price if result.avg_price is not None else leg.price
        price = max(ceil_to_tick(reference - self.arb.max_slippage, tick), tick)
        n = len(self.unwinds.get(leg.token_id, ())) + 1
        intent = OrderIntent(
            client_order_id=f"{leg.client_order_id}-unwind-{n}",
            strategy=leg.strategy,
            condition_id=leg.condition_id,
            token_id=leg.token_id,
            side=Side.SELL,
            price=price,
            size=excess,
            order_type=OrderType.FAK,
        )
        refused = self.check(intent)
        if refused is not None:
            log.error("arb_unwind_refused", arb_id=self.arb.arb_id, token_id=leg.token_id, reason=refused)
            self.reasons.append(f"{ARB_UNWIND_REFUSED}:{refused}")
            return excess if refused in RETRYABLE_UNWIND_REFUSALS else ZERO
        log.warning(
            "arb_unwinding",
            arb_id=self.arb.arb_id,
            token_id=leg.token_id,
            size=str(excess),
            price=str(price),
            hint="another leg fell short: the engine sells this leg's shares back (nothing to do)",
        )
        self.unwinds.setdefault(leg.token_id, []).append(intent.client_order_id)
        try:
            order = await self.manager.submit(intent, group_id=self.arb.arb_id)
        except DuplicateClientOrderId:
            self.reasons.append(f"{ARB_UNWIND_REFUSED}:DUPLICATE")
            return ZERO  # not ours to send again
        except PrepareFailed as exc:
            self.reasons.append(f"{ARB_UNWIND_REFUSED}:{exc.reason}")
            return excess if exc.reason in RETRYABLE_UNWIND_REFUSALS else ZERO
        done = partial(_done, self.manager)
        if not done(order):
            with trio.move_on_after(self.settings.unwind_timeout_secs):
                order = await self.manager.wait_until(intent.client_order_id, done)
        if not done(order):
            order = await self._stop(intent.client_order_id)
        if order.status is OrderStatus.UNKNOWN:
            self.reasons.append(f"{ARB_LEG_UNKNOWN}:{intent.client_order_id}")
            return ZERO
        if order.status is OrderStatus.REJECTED:
            self.reasons.append(f"{ARB_UNWIND_REFUSED}:{order.reason}")
            return excess - order.filled if order.reason in RETRYABLE_UNWIND_REFUSALS else ZERO
        if order.filled < excess:
            self.reasons.append(f"{ARB_UNWIND_SHORT}:{leg.token_id}")
        return max(excess - order.filled, ZERO)


def _done(manager: OrderManager, order: Order) -> bool:
    """Filled in full, or closed with every fill the venue reported already applied."""
    if order.filled >= order.size:
        return True
    return order.is_terminal and not manager.awaiting_fills(order.client_order_id)


async def _wait_or_abort(manager: OrderManager, cid: str, abort: trio.Event) -> Order:
    """Wait until the order is done or `abort` is set, whichever comes first."""
    async with trio.open_nursery() as nursery:

        async def watch_abort() -> None:
            await abort.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_abort)
        await manager.wait_until(cid, partial(_done, manager))
        nursery.cancel_scope.cancel()
    return manager.order(cid)


def _default_tick(token_id: str) -> Decimal:
    del token_id
    return Decimal("0.01")


async def run_arbitrage(
    manager: OrderManager,
    arb: ArbIntent,
    *,
    settings: ArbitrageSettings | None = None,
    check: UnwindCheck | None = None,
    tick_of: Callable[[str], Decimal] = _default_tick,
    on_interrupted: Callable[[ArbOutcome], None] | None = None,
) -> ArbOutcome:
    """Trade the basket atomically (see the module docstring) and return what it holds afterwards.

    If the task is cancelled first, `on_interrupted` gets the basket as it stands (synchronously, while the
    cancellation unwinds), so that its exposure can still be reported.
    """
    run = _Run(manager, arb, settings or ArbitrageSettings(), check or (lambda _: None), tick_of)
    # At most what one request may hold and cost (the venue's 15, and the signer's order burst): a larger basket is
    # split into several requests, sent concurrently.
    per_request = manager.max_batch_orders() if run.settings.batch_legs else 1
    requests = [arb.legs[start : start + per_request] for start in range(0, len(arb.legs), per_request)]
    finished = False
    try:
        if len(requests) == 1:  # the usual basket: sent from this task, with no task hop before it leaves
            await run.send(requests[0])
        else:
            async with trio.open_nursery() as nursery:
                for legs in requests:
                    nursery.start_soon(run.send, legs)
        await run.even_out()  # a leg short, or legs holding unequal shares after fees: sell the excess back
        finished = True
    finally:
        if not finished and on_interrupted is not None:
            on_interrupted(
                summarize(
                    manager,
                    arb,
                    unwinds=run.unwinds,
                    reasons=(*run.reasons, ARB_INTERRUPTED),
                    dust_shares=run.settings.dust_shares,
                )
            )
    outcome = summarize(
        manager, arb, unwinds=run.unwinds, reasons=tuple(run.reasons), dust_shares=run.settings.dust_shares
    )
    log_fn = log.error if outcome.has_residual else log.info
    log_fn(
        "arb_finished",
        arb_id=arb.arb_id,
        status=outcome.status,
        matched=str(outcome.matched),
        residual={t: str(s) for t, s in outcome.residual.items()},
        reasons=outcome.reasons,
    )
    return outcome
