"""The guarded venue call: every request the order manager makes goes through one `VenueGuard`.

A call waits for the rate limiter first (NORMAL priority for orders and lookups, with a bounded wait; HIGH for
cancels, set by the limiter's endpoint table), then passes the sending gate (when it sends: nothing new goes out once
sending is blocked by an emergency stop or a drain), then the circuit breaker of its endpoint's family (orders,
cancels, reads: `trader.engine.breaker.Breakers`, each opened by its own family's failures alone), and runs under the
per-request deadline (`request_timeout_secs`, default 500 ms), set here, by the caller of the venue.

How each call ended also tells the venue's health (`trader.engine.venue_health`): an answer, a refusal of our
credentials (401/403), or no answer at all (the connection failed or broke, the deadline passed).

What is NOT an unknown outcome: the breaker refusing (`CircuitOpenError`), the rate limiter's wait exceeding its
bound (`RateLimitWaitTooLong`), a connection that could not be made (`VenueConnectionError`), and any 4xx answer
(429 included): the venue did not take the order (`is_unknown_outcome` says which failures leave an order's fate
unknown). 429 blocks the endpoint in the rate limiter (Retry-After or backoff); 5xx counts against the breaker of
the endpoint's family. Each kind is counted separately (`counts`, reported in `OrderManager.statistics()`). A forced
call (the emergency cancel-all and its retries) goes out even when the cancels breaker is open: pulling orders matters
more than sparing a sick venue.

Trading restrictions (`trader.engine.restrictions`, whose `VenueRestrictions` the guard owns): an order call is
refused before it is made when a restriction forbids its orders (`VenueRestricted`, with the restriction's code;
nothing was sent); a reply naming a restriction (425, a 503 for post-only, cancel-only or trading disabled) is told
to the restrictions, counted (`restricted`) and never held against the breaker; any other answer of a trading
endpoint is told too (it ends a restart). `call_retrying` sends a call refused with 425 again (the venue took
nothing: the same order id may go again) at each probe time of the restart, for at most `retry_secs` (cancels:
as long as their caller waits), unless another restriction then forbids it: the 425 is then the verdict.

Leadership (active/standby, `trader.engine.leadership`): with a `fence` (the leadership's `may_send`), every call
to a trading endpoint (orders, cancels, cancel-all) checks it last, right before the request leaves: a call made
while this engine does not hold a valid lease raises `NotLeader` (a `SendingBlocked`; nothing was sent), counted as
`not_leader`.

Rate limits: the venue's `RateLimitReport`s (`on_rate_limit`, a `VenueAccount` listener) go to the limiter, which
follows the signer's buckets; a call is charged its cost (orders in a batch, ids in a cancel).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from trader.engine.breaker import Breakers, CircuitOpenError, EndpointFamily
from trader.engine.rate_limit import RateLimiter
from trader.engine.restrictions import SendsOrders, VenueRestrictions
from trader.engine.risk import RiskCode
from trader.engine.venue_health import VenueHealth
from trader.errors import TraderError
from trader.venues.base import RateLimitReport
from trader.venues.errors import (
    TradingRestriction,
    VenueConnectionError,
    VenueDisconnected,
    VenueError,
    VenueProtocolError,
    VenueRequestError,
    VenueTimeout,
)

__all__ = [
    "NotLeader",
    "RateLimitWaitTooLong",
    "SendingBlocked",
    "VenueGuard",
    "VenueRestricted",
    "family_of",
    "is_unknown_outcome",
    "unknown_cause",
]

T = TypeVar("T")

# The rate limiter's endpoints (its table gives each its budget and priority).
ORDER_ENDPOINT = "POST /order"
BATCH_ENDPOINT = "POST /orders"
CANCEL_ENDPOINT = "DELETE /order"
CANCELS_ENDPOINT = "DELETE /orders"
CANCEL_ALL_ENDPOINT = "DELETE /cancel-all"
LOOKUP_ENDPOINT = "GET /data/order"
OPEN_ORDERS_ENDPOINT = "GET /data/orders"
TRADES_ENDPOINT = "GET /data/trades"
CLOSED_ONLY_ENDPOINT = "GET /auth/ban-status/closed-only"
TIER_ENDPOINT = "GET /v1/user/rate-limit-tier"
#: Endpoints whose answers tell whether the venue is trading (a restart ends when one answers).
_ORDER_ENDPOINTS = frozenset({ORDER_ENDPOINT, BATCH_ENDPOINT})
_TRADING_ENDPOINTS = _ORDER_ENDPOINTS | {CANCEL_ENDPOINT, CANCELS_ENDPOINT, CANCEL_ALL_ENDPOINT}
#: The breaker family of each endpoint (anything else is a read).
_FAMILY: dict[str, EndpointFamily] = {
    ORDER_ENDPOINT: EndpointFamily.ORDERS,
    BATCH_ENDPOINT: EndpointFamily.ORDERS,
    CANCEL_ENDPOINT: EndpointFamily.CANCELS,
    CANCELS_ENDPOINT: EndpointFamily.CANCELS,
    CANCEL_ALL_ENDPOINT: EndpointFamily.CANCELS,
}
_NO_ANSWER = (VenueConnectionError, VenueDisconnected, VenueTimeout, trio.TooSlowError)


def family_of(endpoint: str) -> EndpointFamily:
    """The breaker family of an endpoint of the rate limiter's table."""
    return _FAMILY.get(endpoint, EndpointFamily.READS)


class RateLimitWaitTooLong(TraderError):
    """The rate limiter would have held the call longer than its bound: the call was not made."""


class SendingBlocked(TraderError):
    """Sending was blocked (emergency stop, drain) while the submit waited for the rate limiter."""


class NotLeader(SendingBlocked):
    """This engine does not hold a valid leadership lease (active/standby): the call was not made."""


class VenueRestricted(TraderError):
    """A trading restriction forbids sending these orders now (known before sending): the call was not made."""

    def __init__(self, code: RiskCode) -> None:
        self.code = code
        super().__init__(f"not sent: {code}")


def is_unknown_outcome(exc: BaseException) -> bool:
    """True when a submit failed in a way that leaves the order's fate unknown (it may be at the venue)."""
    if isinstance(exc, trio.TooSlowError):
        return True
    if isinstance(exc, VenueRequestError):
        return exc.is_server_error and exc.restriction is None  # a restriction's 503 says nothing was taken
    return isinstance(exc, VenueError) and not isinstance(exc, VenueConnectionError)


def unknown_cause(exc: BaseException) -> str:
    """A stable code for a failure that left an order's fate unknown (`is_unknown_outcome`), for the record."""
    if isinstance(exc, trio.TooSlowError | VenueTimeout):
        return "TIMEOUT"
    if isinstance(exc, VenueRequestError):
        return exc.code.value  # a 5xx: VENUE_SERVER_ERROR, ...
    if isinstance(exc, VenueDisconnected):
        return "DISCONNECTED"
    if isinstance(exc, VenueProtocolError):
        return "GARBLED_REPLY"
    return "VENUE_ERROR"


class VenueGuard:
    """The rate limiter, the sending gate, the breakers, the deadline, the venue's health and the failure counts of
    venue requests, as one piece (see the module docstring). Not thread-safe: one Trio thread owns it."""

    def __init__(
        self,
        breakers: Breakers,
        limiter: RateLimiter,
        *,
        request_timeout_secs: float,
        restrictions: VenueRestrictions | None = None,
        health: VenueHealth | None = None,
        wall_secs: Callable[[], float] = time.time,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        self.breakers = breakers
        #: active/standby: True while this engine may send (`Leadership.may_send`); None: always.
        self.fence = fence
        self.limiter = limiter
        self.request_timeout_secs = request_timeout_secs
        self.restrictions = restrictions or VenueRestrictions()
        self.health = health or VenueHealth()
        self._wall_secs = wall_secs
        #: The reason nothing new may be sent (an emergency stop, a drain), or None.
        self.sending_blocked: str | None = None
        #: timeouts, responses_429, responses_5xx, responses_4xx, venue_errors, breaker_refusals, breaker_bypassed,
        #: restricted:<RESTRICTION> (refusals for a trading restriction), restart_retries.
        self.counts: Counter[str] = Counter()

    def on_rate_limit(self, report: RateLimitReport) -> None:
        """A reply's rate-limit headers (a `VenueAccount` listener): the limiter follows the signer's buckets."""
        reset_in = None if report.reset_at is None else report.reset_at - self._wall_secs()
        self.limiter.observe(report, trio.current_time(), reset_in)

    async def call(
        self,
        endpoint: str,
        fn: Callable[[], Awaitable[T]],
        *,
        before_send: Callable[[], None] | None = None,
        check_blocked: bool = False,
        force: bool = False,
        max_wait_secs: float | None = None,
        cost: int = 1,
        orders: Sequence[SendsOrders] | None = None,
    ) -> T:
        """One venue request through the rate limiter and the breaker, with the per-request deadline.

        The rate limiter's wait comes first (bounded by `max_wait_secs`; `cost`: the tokens the call costs, orders
        in a batch or ids in a cancel), then (`check_blocked`) the sending gate, then (`orders`) the trading
        restrictions, then the breaker; `before_send` runs once the breaker let the call through, right before it
        is made.
        """
        timeout = self.request_timeout_secs
        if not await self.limiter.acquire(endpoint, cost, max_wait_secs=max_wait_secs):
            raise RateLimitWaitTooLong(f"{endpoint}: rate limiter wait above {max_wait_secs}s")
        if check_blocked and self.sending_blocked is not None:
            raise SendingBlocked(self.sending_blocked)
        if orders is not None and (denial := self.restrictions.order_denial(orders, trio.current_time())) is not None:
            raise VenueRestricted(denial)
        sent_at = trio.current_time()

        async def attempt() -> T:
            nonlocal sent_at
            if before_send is not None:
                before_send()
            sent_at = trio.current_time()
            with trio.fail_after(timeout):
                return await fn()

        health = self.health
        if self.fence is not None and endpoint in _TRADING_ENDPOINTS and not self.fence():
            # Last: no checkpoint between here and the request leaving (the breaker's check does not wait).
            self.counts["not_leader"] += 1
            raise NotLeader("not the leader: this engine's lease is not valid")
        try:
            try:
                result = await self.breakers[family_of(endpoint)].call(attempt)
            except CircuitOpenError:
                if not force:
                    self.counts["breaker_refusals"] += 1
                    raise
                self.counts["breaker_bypassed"] += 1
                result = await attempt()
        except VenueRequestError as exc:
            now = trio.current_time()
            if exc.status in (401, 403):
                health.on_auth_refused(now)
            else:  # a 5xx, 425 or 429 may come from before the check of our credentials
                health.on_answer(now, authenticated=exc.status < 500 and exc.status not in (425, 429))
            if exc.is_throttled:
                self.counts["responses_429"] += 1
                self.limiter.record_429(endpoint, now, exc.retry_after_secs)
            elif exc.restriction is not None:
                self.counts[f"restricted:{exc.restriction}"] += 1
                self.limiter.record_success(endpoint)
                self.restrictions.on_refusal(exc.restriction, sent_at=sent_at, now=now)
            else:
                self.counts["responses_5xx" if exc.is_server_error else "responses_4xx"] += 1
                self.limiter.record_success(endpoint)
                if not exc.is_server_error:
                    self._answered(endpoint, sent_at, now)
            raise
        except trio.TooSlowError:
            self.counts["timeouts"] += 1
            health.on_no_answer(trio.current_time())
            raise
        except VenueError as exc:
            self.counts["venue_errors"] += 1
            if isinstance(exc, _NO_ANSWER):
                health.on_no_answer(trio.current_time())
            else:  # a garbled reply: the venue is there
                health.on_answer(trio.current_time(), authenticated=False)
            raise
        now = trio.current_time()
        health.on_answer(now)
        self.limiter.record_success(endpoint)
        self._answered(endpoint, sent_at, now)
        return result

    def _answered(self, endpoint: str, sent_at: float, now: float) -> None:
        if endpoint in _TRADING_ENDPOINTS:
            self.restrictions.on_answer(order_endpoint=endpoint in _ORDER_ENDPOINTS, sent_at=sent_at, now=now)

    async def call_retrying(
        self,
        endpoint: str,
        fn: Callable[[], Awaitable[T]],
        *,
        retry_secs: float,
        before_send: Callable[[], None] | None = None,
        orders: Sequence[SendsOrders] | None = None,
        check_blocked: bool = False,
        force: bool = False,
        max_wait_secs: float | None = None,
        cost: int = 1,
    ) -> T:
        """`call`, sent again while the venue answers 425 (its matching engine restarting: nothing was taken), at
        each probe time of the restart (`VenueRestrictions.restart_retry_at`), for at most `retry_secs` after the
        first attempt. `before_send` runs before the first attempt only. A retry that another restriction forbids
        by then (the post-only window for an order that is not post-only), or one past the deadline, is not made:
        the last 425 is raised, the venue's verdict on the request."""
        deadline = trio.current_time() + retry_secs
        first = True
        last: VenueRequestError | None = None
        while True:
            try:
                return await self.call(
                    endpoint,
                    fn,
                    before_send=before_send if first else None,
                    check_blocked=check_blocked,
                    force=force,
                    max_wait_secs=max_wait_secs,
                    cost=cost,
                    orders=orders if first else None,
                )
            except VenueRequestError as exc:
                if exc.restriction is not TradingRestriction.RESTARTING:
                    raise
                last = exc
            except (SendingBlocked, VenueRestricted, RateLimitWaitTooLong, CircuitOpenError):
                if last is None:
                    raise
                raise last from None  # a retry that could not go: the venue's 425 stands
            first = False
            while True:
                now = trio.current_time()
                wake = self.restrictions.restart_retry_at(now)
                if wake > deadline:
                    raise last
                if wake > now:
                    await trio.sleep_until(wake)
                if orders is None:
                    break
                denial = self.restrictions.order_denial(orders, trio.current_time(), count=False)
                if denial is None:
                    break
                if denial is not RiskCode.RESTRICTED_RESTARTING:
                    raise last
            if check_blocked and self.sending_blocked is not None:
                raise last
            self.counts["restart_retries"] += 1
