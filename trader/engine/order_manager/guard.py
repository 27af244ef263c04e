"""The guarded venue call: every request the order manager makes goes through one `VenueGuard`.

A call waits for the rate limiter first (NORMAL priority for orders and lookups, with a bounded wait; HIGH for
cancels, set by the limiter's endpoint table), then passes the sending gate (when it sends: nothing new goes out once
sending is blocked by an emergency stop or a drain), then the circuit breaker, and runs under the per-request
deadline (`request_timeout_secs`, default 500 ms), set here, by the caller of the venue.

What is NOT an unknown outcome: the breaker refusing (`CircuitOpenError`), the rate limiter's wait exceeding its
bound (`RateLimitWaitTooLong`), a connection that could not be made (`VenueConnectionError`), and any 4xx answer
(429 included): the venue did not take the order (`is_unknown_outcome` says which failures leave an order's fate
unknown). 429 blocks the endpoint in the rate limiter (Retry-After or backoff); 5xx counts against the breaker. Each
kind is counted separately (`counts`, reported in `OrderManager.statistics()`). A forced call (the emergency
cancel-all) goes out even when the breaker is open: pulling orders matters more than sparing a sick venue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from trader.engine.breaker import CircuitBreaker, CircuitOpenError
from trader.engine.rate_limit import RateLimiter
from trader.errors import TraderError
from trader.venues.errors import VenueConnectionError, VenueError, VenueRequestError

__all__ = ["RateLimitWaitTooLong", "SendingBlocked", "VenueGuard", "is_unknown_outcome"]

T = TypeVar("T")

# The rate limiter's endpoints (its table gives each its budget and priority).
ORDER_ENDPOINT = "POST /order"
BATCH_ENDPOINT = "POST /orders"
CANCEL_ENDPOINT = "DELETE /order"
CANCEL_ALL_ENDPOINT = "DELETE /cancel-all"
LOOKUP_ENDPOINT = "GET /data/order"
TRADES_ENDPOINT = "GET /data/trades"


class RateLimitWaitTooLong(TraderError):
    """The rate limiter would have held the call longer than its bound: the call was not made."""


class SendingBlocked(TraderError):
    """Sending was blocked (emergency stop, drain) while the submit waited for the rate limiter."""


def is_unknown_outcome(exc: BaseException) -> bool:
    """True when a submit failed in a way that leaves the order's fate unknown (it may be at the venue)."""
    if isinstance(exc, trio.TooSlowError):
        return True
    if isinstance(exc, VenueRequestError):
        return exc.is_server_error
    return isinstance(exc, VenueError) and not isinstance(exc, VenueConnectionError)


class VenueGuard:
    """The rate limiter, the sending gate, the breaker, the deadline and the failure counts of venue requests, as
    one piece (see the module docstring). Not thread-safe: one Trio thread owns it."""

    def __init__(self, breaker: CircuitBreaker, limiter: RateLimiter, *, request_timeout_secs: float) -> None:
        self.breaker = breaker
        self.limiter = limiter
        self.request_timeout_secs = request_timeout_secs
        #: The reason nothing new may be sent (an emergency stop, a drain), or None.
        self.sending_blocked: str | None = None
        #: timeouts, responses_429, responses_5xx, responses_4xx, venue_errors, breaker_refusals, breaker_bypassed.
        self.counts: Counter[str] = Counter()

    async def call(
        self,
        endpoint: str,
        fn: Callable[[], Awaitable[T]],
        *,
        before_send: Callable[[], None] | None = None,
        check_blocked: bool = False,
        force: bool = False,
        max_wait_secs: float | None = None,
    ) -> T:
        """One venue request through the rate limiter and the breaker, with the per-request deadline.

        The rate limiter's wait comes first (bounded by `max_wait_secs`), then (`check_blocked`) the sending gate,
        then the breaker; `before_send` runs once the breaker let the call through, right before it is made.
        """
        timeout = self.request_timeout_secs
        if not await self.limiter.acquire(endpoint, max_wait_secs=max_wait_secs):
            raise RateLimitWaitTooLong(f"{endpoint}: rate limiter wait above {max_wait_secs}s")
        if check_blocked and self.sending_blocked is not None:
            raise SendingBlocked(self.sending_blocked)

        async def attempt() -> T:
            if before_send is not None:
                before_send()
            with trio.fail_after(timeout):
                return await fn()

        try:
            try:
                result = await self.breaker.call(attempt)
            except CircuitOpenError:
                if not force:
                    self.counts["breaker_refusals"] += 1
                    raise
                self.counts["breaker_bypassed"] += 1
                result = await attempt()
        except VenueRequestError as exc:
            if exc.is_throttled:
                self.counts["responses_429"] += 1
                self.limiter.record_429(endpoint, trio.current_time(), exc.retry_after_secs)
            else:
                self.counts["responses_5xx" if exc.is_server_error else "responses_4xx"] += 1
                self.limiter.record_success(endpoint)
            raise
        except trio.TooSlowError:
            self.counts["timeouts"] += 1
            raise
        except VenueError:
            self.counts["venue_errors"] += 1
            raise
        self.limiter.record_success(endpoint)
        return result
