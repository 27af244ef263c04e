"""The venue's health as the order manager's requests see it: does it answer, and does it take our credentials?

Every request of the order manager goes through its `VenueGuard`, which tells `VenueHealth` how it ended:

- an answer that proves our credentials (a success, or a refusal of the request itself: a 400 about the order, a
  404): the venue is reachable and takes our key;
- an answer that proves only that the venue is there (a 5xx, a 425, a 429, a garbled reply): reachable;
- a refusal of our credentials (401 or 403): reachable, and one more authentication failure in a row;
- no answer (the connection could not be made or broke, the request timed out): the venue went silent at the first
  of these since its last answer.

Two problems follow, each a stable code (`VenueProblem`) that halts trading (`trader.app.alerts.run_venue_gate`):
`VENUE_AUTH_FAILED` after `auth_failures` refusals of our credentials in a row (a wrong API secret, a revoked key: the
engine cannot trade until an operator fixes it, and every order it sends is refused), and `VENUE_UNREACHABLE` when the
venue has not answered anything for `unreachable_secs` though asked at least twice (its port closed, DNS or the
network down). Both end by themselves with the first answer that proves what was missing: any answer ends
`VENUE_UNREACHABLE`, one proving our credentials ends `VENUE_AUTH_FAILED`.

A suspicion (one refusal of our credentials, or one request without an answer) wakes `wait_suspect()`: the gate then
asks the venue (`OrderManager.probe_venue`, every `probe_secs`) until the suspicion is cleared or confirmed, so a
problem is found without waiting for the next order, and its end without trading.

Pure apart from that wake-up (`trio.Event`): every method takes `now` (the Trio clock). The per-request cost is two
attribute checks.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import trio

from trader.errors import ConfigError

__all__ = ["VENUE_HEALTHY", "VenueHealth", "VenueHealthSettings", "VenueHealthStatistics", "VenueProblem"]


class VenueProblem(enum.StrEnum):
    """Why the venue cannot be traded with: the reason codes of the halts they cause."""

    AUTH_FAILED = "VENUE_AUTH_FAILED"  # the venue refuses our credentials (401/403)
    UNREACHABLE = "VENUE_UNREACHABLE"  # the venue answers nothing (no connection, no reply)


#: The reason trading resumes with once the venue answers as it should again.
VENUE_HEALTHY = "VENUE_HEALTHY"


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueHealthSettings:
    """When the venue's answers (or their absence) halt trading, and how the halt is lifted.

    - `auth_failures` (default 2): refusals of our credentials (401/403) in a row that mean they are wrong:
      `VENUE_AUTH_FAILED`.
    - `unreachable_secs` (default 5.0): no answer to anything for this long, though asked at least twice:
      `VENUE_UNREACHABLE`.
    - `probe_secs` (default 1.0): how often the venue is asked (an authenticated read) while a problem is suspected
      or holds, to confirm it or to see it end.
    """

    auth_failures: int = 2
    unreachable_secs: float = 5.0
    probe_secs: float = 1.0

    def __post_init__(self) -> None:
        if self.auth_failures < 1:
            raise ConfigError("auth_failures must be >= 1")
        for name in ("unreachable_secs", "probe_secs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueHealthStatistics:
    problem: VenueProblem | None  # the problem holding now
    auth_refusals: int  # requests refused for our credentials
    consecutive_auth_refusals: int
    no_answers: int  # requests that got no answer (connection failed or broke, timeout)
    silent_for_secs: float | None  # since the first request without an answer after the last answer


class VenueHealth:
    """See the module docstring. Not thread-safe: one Trio thread owns it."""

    def __init__(self, settings: VenueHealthSettings | None = None) -> None:
        self.settings = settings or VenueHealthSettings()
        self._auth_streak = 0
        self._auth_refusals = 0
        self._silent_since: float | None = None
        self._silent_count = 0
        self._no_answers = 0
        self._suspect = trio.Event()

    # -- what the requests tell ---------------------------------------------------------------------------------

    def on_answer(self, now: float, *, authenticated: bool = True) -> None:
        """The venue answered; `authenticated`: the answer proves our credentials (not a 5xx, 425, 429 or garble)."""
        del now
        if self._silent_since is not None:
            self._silent_since, self._silent_count = None, 0
        if authenticated and self._auth_streak:
            self._auth_streak = 0

    def on_auth_refused(self, now: float) -> None:
        """The venue refused our credentials (401/403): it is there, and our key is not taken."""
        self.on_answer(now, authenticated=False)
        self._auth_streak += 1
        self._auth_refusals += 1
        self._suspect.set()

    def on_no_answer(self, now: float) -> None:
        """A request got no answer (the connection could not be made or broke, or the request timed out)."""
        self._no_answers += 1
        self._silent_count += 1
        if self._silent_since is None:
            self._silent_since = now
        self._suspect.set()

    # -- what it means --------------------------------------------------------------------------------------------

    def problem(self, now: float) -> VenueProblem | None:
        """The problem holding at `now`, if any (a refusal of our credentials outranks silence)."""
        settings = self.settings
        if self._auth_streak >= settings.auth_failures:
            return VenueProblem.AUTH_FAILED
        silent = self._silent_since
        if silent is not None and self._silent_count >= 2 and now - silent >= settings.unreachable_secs:
            return VenueProblem.UNREACHABLE
        return None

    @property
    def suspect(self) -> bool:
        """Something is wrong or may be: a refusal of our credentials or a silence since the last good answer."""
        return self._auth_streak > 0 or self._silent_since is not None

    async def wait_suspect(self) -> None:
        """Return once something is (or may be) wrong: at once if it already is."""
        while not self.suspect:
            await self._suspect.wait()
            self._suspect = trio.Event()

    def statistics(self, now: float) -> VenueHealthStatistics:
        silent = self._silent_since
        return VenueHealthStatistics(
            problem=self.problem(now),
            auth_refusals=self._auth_refusals,
            consecutive_auth_refusals=self._auth_streak,
            no_answers=self._no_answers,
            silent_for_secs=None if silent is None else now - silent,
        )
