"""Capped exponential backoff with jitter: a pure function of the attempt number.

`Backoff.delay(attempt)` is `min(max_secs, initial_secs * multiplier**attempt)` stretched by up to `jitter` of
itself (`random_fn()` in [0, 1) times `jitter`), so many clients that lost the same server do not come back in
step. Jitter only ever lengthens a delay: the cap is the longest *un-jittered* wait, and the longest wait overall
is `max_secs * (1 + jitter)`.

`BackoffCounter` keeps the attempt number for a connection loop: `next_delay()` after each failure, and
`record_healthy(now)` / `record_connected(now)` so that a connection that stayed up for `reset_after_secs` starts
the schedule again from the first delay. Both take `now` from the caller (the Trio clock), so tests are plain
synchronous tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from trader.config import check_positive_secs


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    initial_secs: float = 0.5
    max_secs: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.25
    random_fn: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_positive_secs(self, "initial_secs")
        if not self.max_secs >= self.initial_secs:
            raise ValueError(f"max_secs ({self.max_secs}) must be >= initial_secs ({self.initial_secs})")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0 = the first retry)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        try:
            capped = min(self.max_secs, self.initial_secs * self.multiplier**attempt)
        except OverflowError:  # a long outage: multiplier**attempt no longer fits in a float
            capped = self.max_secs
        return capped * (1 + self.jitter * self.random_fn())


@dataclass(slots=True)
class BackoffCounter:
    """The attempt number of one reconnecting loop, reset once a connection has been healthy long enough."""

    backoff: Backoff
    reset_after_secs: float
    attempt: int = 0
    _connected_at: float | None = None

    def record_connected(self, now: float) -> None:
        self._connected_at = now

    def record_healthy(self, now: float) -> None:
        """Call while the connection is up (e.g. on every frame); resets the schedule once it has held long enough."""
        if self._connected_at is not None and now - self._connected_at >= self.reset_after_secs:
            self.attempt = 0

    def next_delay(self, now: float) -> float:
        """The wait before the next try, after a failure at `now`; advances the schedule."""
        self.record_healthy(now)
        self._connected_at = None
        delay = self.backoff.delay(self.attempt)
        self.attempt += 1
        return delay
