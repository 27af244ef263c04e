"""Circuit breakers for calls to the venue: a pure core that takes `now`, plus a thin Trio shell (`call`), one per
endpoint family (`Breakers`).

Families (`EndpointFamily`): ORDERS (`POST /order`, `POST /orders`), CANCELS (`DELETE /order`, `DELETE /orders`,
`DELETE /cancel-all`) and READS (lookups by id, trades, the account's status). Each family has its own breaker,
opened by the failures of that family alone: an order endpoint answering 500 opens the ORDERS breaker even while
lookups and account polls succeed (they used to dilute its failure rate), and a failing read does not stop orders.

States:

```
CLOSED --(N consecutive failures, or failure rate >= R over window_secs with >= min_calls)--> OPEN
OPEN --(cool_down_secs elapsed; the next allow() is the probe)--> HALF_OPEN
HALF_OPEN --(probe succeeds)--> CLOSED        HALF_OPEN --(probe fails)--> OPEN (a fresh cool-down)
```

In HALF_OPEN exactly one probe is let through; every other call is refused until the probe reports. A probe that
never reports (its caller was cancelled and did not call `release`) is presumed lost after `probe_timeout_secs`,
and the next call becomes the new probe.

What counts (`classify_error`): connection errors, disconnects, timeouts (`VenueTimeout`, `trio.TooSlowError`),
protocol errors and 5xx replies are FAILURES; a 4xx reply is a REJECTION of our request by a healthy venue and
counts as a success for the breaker; 429 is THROTTLING, which is the rate limiter's business: it neither opens nor
closes the breaker (a throttled probe frees the probe slot). A trading restriction (a 425 while the matching engine
restarts, a 503 naming post-only, cancel-only or trading disabled: `VenueRequestError.restriction`) is RESTRICTED:
the venue is up and said exactly why it took nothing, which is not a failure of ours or of its health; like
throttling it neither opens nor closes the breaker (`trader.engine.restrictions` follows it).

Assumption: calls have caller-set timeouts shorter than `cool_down_secs`, so a slow success from before the breaker
opened cannot be mistaken for the probe's verdict (late outcomes while OPEN are counted, and change nothing).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import structlog
import trio

from trader.errors import ConfigError, TraderError
from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueProtocolError,
    VenueRequestError,
    VenueTimeout,
)

T = TypeVar("T")

log = structlog.get_logger(__name__)


class EndpointFamily(enum.StrEnum):
    """The venue's endpoints grouped by what they do; each family has its own breaker."""

    ORDERS = "orders"  # POST /order, POST /orders
    CANCELS = "cancels"  # DELETE /order, DELETE /orders, DELETE /cancel-all
    READS = "reads"  # lookups by id, trades, the account's status


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CallOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # the venue is unwell: 5xx, timeout, connection trouble, garbage
    REJECTED = "rejected"  # 4xx: our request was refused by a healthy venue
    THROTTLED = "throttled"  # 429: for the rate limiter
    RESTRICTED = "restricted"  # a trading restriction (425, post-only / cancel-only / disabled): not a failure


def classify_error(exc: BaseException) -> CallOutcome:
    """What an exception from a venue call says about the venue's health."""
    if isinstance(exc, VenueRequestError):
        if exc.is_throttled:
            return CallOutcome.THROTTLED
        if exc.restriction is not None:
            return CallOutcome.RESTRICTED
        return CallOutcome.FAILURE if exc.is_server_error else CallOutcome.REJECTED
    if isinstance(
        exc, VenueTimeout | VenueConnectionError | VenueDisconnected | VenueProtocolError | trio.TooSlowError
    ):
        return CallOutcome.FAILURE
    # Anything unexpected is presumed to be trouble: failing safe means calling less, not more.
    return CallOutcome.FAILURE


class CircuitOpenError(TraderError):
    """The breaker refused the call. `retry_at` is the Trio time at which a probe may next go through."""

    def __init__(self, name: str, retry_at: float) -> None:
        self.name = name
        self.retry_at = retry_at
        super().__init__(f"circuit {name or 'breaker'} is open; next probe at t={retry_at:.3f}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    """When the breaker opens and how it recovers.

    - `consecutive_failures` (default 5): open after this many failures in a row.
    - `orders_consecutive_failures` (default 3): the same for the ORDERS family, which opens sooner: every failed
      order request leaves its orders in doubt (UNKNOWN) until the venue is asked about them.
    - `failure_rate` (default 0.5): open when failures / calls over the last `window_secs` reach this ...
    - `min_calls` (default 20): ... and the window holds at least this many calls.
    - `window_secs` (default 60.0): length of the sliding window for the failure rate.
    - `cool_down_secs` (default 30.0): how long the breaker stays OPEN before a probe.
    - `probe_timeout_secs` (default 30.0): a probe with no verdict after this long is presumed lost.
    """

    consecutive_failures: int = 5
    orders_consecutive_failures: int = 3
    failure_rate: float = 0.5
    min_calls: int = 20
    window_secs: float = 60.0
    cool_down_secs: float = 30.0
    probe_timeout_secs: float = 30.0

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.orders_consecutive_failures < 1:
            raise ConfigError("consecutive_failures and orders_consecutive_failures must be >= 1")
        if not 0 < self.failure_rate <= 1:
            raise ConfigError("failure_rate must be in (0, 1]")
        if self.min_calls < 1:
            raise ConfigError("min_calls must be >= 1")
        for name in ("window_secs", "cool_down_secs", "probe_timeout_secs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStatistics:
    name: str
    state: BreakerState
    opens: int  # times the breaker went OPEN (from CLOSED or from a failed probe)
    rejections: int  # calls refused by the breaker
    failures: int  # calls recorded as failures
    successes: int  # calls recorded as successes (incl. 4xx rejections by a healthy venue)
    throttled: int  # calls that got 429
    probes: int  # probes let through in HALF_OPEN
    consecutive_failures: int
    window_calls: int
    window_failures: int
    restricted: int = 0  # calls refused for a trading restriction (not failures)
    half_opens: int = 0  # times a probe was let through after the cool-down (OPEN -> HALF_OPEN)
    closes: int = 0  # times a probe succeeded (HALF_OPEN -> CLOSED)
    changed_at: float | None = None  # Trio time of the last transition (None: never left CLOSED)
    retry_at: float | None = None  # while OPEN or HALF_OPEN: when a probe may next go through


class CircuitBreaker:
    """Pure core: every method takes `now` (seconds on the Trio clock); `call` is the Trio shell."""

    def __init__(self, settings: BreakerSettings | None = None, *, name: str = "") -> None:
        self.settings = settings or BreakerSettings()
        self.name = name
        self._state = BreakerState.CLOSED
        self._opened_at = -math.inf
        self._probe_started_at: float | None = None
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()  # (time, failed)
        self._window_failures = 0
        self._opens = 0
        self._rejections = 0
        self._failures = 0
        self._successes = 0
        self._throttled = 0
        self._restricted = 0
        self._probes = 0
        self._half_opens = 0
        self._closes = 0
        self._changed_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state as last updated (OPEN becomes HALF_OPEN only when a call asks, in `allow`)."""
        return self._state

    def allow(self, now: float) -> bool:
        """May a call go now? In HALF_OPEN a True answer makes the caller the probe: it must report an outcome."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now < self._opened_at + self.settings.cool_down_secs:
                self._rejections += 1
                return False
            self._state = BreakerState.HALF_OPEN
            self._half_opens += 1
            self._changed_at = now
            log.info("breaker_half_open", breaker=self.name)
        # HALF_OPEN
        if self._probe_started_at is not None and now < self._probe_started_at + self.settings.probe_timeout_secs:
            self._rejections += 1
            return False
        self._probe_started_at = now
        self._probes += 1
        return True

    def check(self, now: float) -> None:
        """`allow`, raising `CircuitOpenError` when refused."""
        if not self.allow(now):
            raise CircuitOpenError(self.name, self.retry_at())

    def retry_at(self) -> float:
        """The earliest Trio time at which `allow` may next say yes (now or earlier when CLOSED)."""
        if self._state is BreakerState.CLOSED:
            return -math.inf
        if self._state is BreakerState.OPEN:
            return self._opened_at + self.settings.cool_down_secs
        if self._probe_started_at is None:
            return -math.inf
        return self._probe_started_at + self.settings.probe_timeout_secs

    def record(self, outcome: CallOutcome, now: float) -> None:
        if outcome is CallOutcome.FAILURE:
            self.record_failure(now)
        elif outcome is CallOutcome.THROTTLED:
            self.record_throttled(now)
        elif outcome is CallOutcome.RESTRICTED:
            self.record_restricted(now)
        else:
            self.record_success(now)

    def record_success(self, now: float) -> None:
        self._successes += 1
        if self._state is BreakerState.HALF_OPEN:
            self._close(now)
        elif self._state is BreakerState.CLOSED:
            self._consecutive = 0
            self._push(now, failed=False)

    def record_failure(self, now: float) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN:
            self._open(now)
        elif self._state is BreakerState.CLOSED:
            self._consecutive += 1
            self._push(now, failed=True)
            if self._consecutive >= self.settings.consecutive_failures or self._rate_exceeded():
                self._open(now)

    def record_throttled(self, now: float) -> None:
        """A 429: not a verdict on the venue's health. A throttled probe frees the slot for the next probe."""
        del now
        self._throttled += 1
        if self._state is BreakerState.HALF_OPEN:
            self._probe_started_at = None

    def record_restricted(self, now: float) -> None:
        """A trading restriction: not a verdict on the venue's health. A restricted probe frees the slot."""
        del now
        self._restricted += 1
        if self._state is BreakerState.HALF_OPEN:
            self._probe_started_at = None

    def release(self, now: float) -> None:
        """The call ended with no outcome (cancelled). Frees the probe slot if it was the probe."""
        del now
        if self._state is BreakerState.HALF_OPEN:
            self._probe_started_at = None

    def statistics(self) -> BreakerStatistics:
        retry_at = self.retry_at()
        return BreakerStatistics(
            name=self.name,
            state=self._state,
            opens=self._opens,
            rejections=self._rejections,
            failures=self._failures,
            successes=self._successes,
            throttled=self._throttled,
            probes=self._probes,
            consecutive_failures=self._consecutive,
            window_calls=len(self._window),
            window_failures=self._window_failures,
            restricted=self._restricted,
            half_opens=self._half_opens,
            closes=self._closes,
            changed_at=self._changed_at,
            retry_at=retry_at if math.isfinite(retry_at) else None,
        )

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn()` through the breaker on the Trio clock; raises `CircuitOpenError` when refused.

        The outcome is classified with `classify_error`; the exception itself is always re-raised. A cancelled call
        records nothing (and frees the probe slot). Use `functools.partial` for arguments.
        """
        self.check(trio.current_time())
        recorded = False
        try:
            result = await fn()
        except Exception as exc:
            self.record(classify_error(exc), trio.current_time())
            recorded = True
            raise
        else:
            self.record_success(trio.current_time())
            recorded = True
            return result
        finally:
            if not recorded:
                self.release(trio.current_time())

    def _push(self, now: float, *, failed: bool) -> None:
        self._window.append((now, failed))
        self._window_failures += failed
        horizon = now - self.settings.window_secs
        while self._window and self._window[0][0] <= horizon:
            _, old_failed = self._window.popleft()
            self._window_failures -= old_failed

    def _rate_exceeded(self) -> bool:
        calls = len(self._window)
        return calls >= self.settings.min_calls and self._window_failures >= self.settings.failure_rate * calls

    def _open(self, now: float) -> None:
        log.warning(
            "breaker_opened",
            breaker=self.name,
            was=self._state,
            consecutive_failures=self._consecutive,
            window_failures=self._window_failures,
            window_calls=len(self._window),
        )
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._changed_at = now
        self._probe_started_at = None
        self._opens += 1
        self._reset_counts()

    def _close(self, now: float) -> None:
        log.warning("breaker_closed", breaker=self.name)
        self._state = BreakerState.CLOSED
        self._changed_at = now
        self._closes += 1
        self._probe_started_at = None
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._consecutive = 0
        self._window.clear()
        self._window_failures = 0


class Breakers:
    """One `CircuitBreaker` per `EndpointFamily`, each with `settings` (the ORDERS one opening after
    `orders_consecutive_failures` in a row; see the module docstring)."""

    def __init__(self, settings: BreakerSettings | None = None, *, name: str = "venue") -> None:
        settings = settings or BreakerSettings()
        orders = dataclasses.replace(settings, consecutive_failures=settings.orders_consecutive_failures)
        self._by_family = {
            family: CircuitBreaker(orders if family is EndpointFamily.ORDERS else settings, name=f"{name}:{family}")
            for family in EndpointFamily
        }

    def __getitem__(self, family: EndpointFamily) -> CircuitBreaker:
        return self._by_family[family]

    def __iter__(self) -> Iterator[EndpointFamily]:
        return iter(self._by_family)

    def statistics(self) -> dict[str, BreakerStatistics]:
        """Family name -> its breaker's statistics."""
        return {str(family): breaker.statistics() for family, breaker in self._by_family.items()}
