"""The legs of ended arbitrages that the venue may still fill: bounded in time and in number.

Why: an arbitrage leg whose outcome is still UNKNOWN when its arbitrage ends (the venue could not be asked), or that
the venue did not have when asked by id (`SUBMIT_NOT_FOUND`), may still land and fill after its arbitrage ended;
nothing hedges that fill, so execution reports it as residual exposure (`ARB_LATE_FILL`). It must therefore remember
such legs after their arbitrage ended, but not for the whole session.

Bound: a leg is watched while its order is open (not terminal: an UNKNOWN one, a resting leg), and for at least
`window_secs` once it is closed: from its arbitrage's end if it was closed then, else from the first look that found it
closed (open legs are looked at once per window). A request the venue has not had `window_secs` after we gave up on it
is presumed never to land, and the trades of a closed order arrive within that time. On top of that, at most
`max_legs` are watched: past it the oldest go first (`evicted` counts them; a watch that long means the venue is
badly unwell).

Cost: `add` expires what is due, oldest first (each leg is looked at about once per window), `get` is a dict lookup.
All times are the caller's `now` (the Trio clock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LateLegWatch"]

T = TypeVar("T")


class LateLegWatch(Generic[T]):
    """Client order id -> what it belongs to (the arbitrage), for the legs that may still fill; see the module doc.

    `is_open(client_order_id)`: whether the leg's order is still open (not terminal), which keeps it watched.
    """

    def __init__(self, *, window_secs: float, max_legs: int, is_open: Callable[[str], bool]) -> None:
        if not window_secs > 0 or max_legs < 1:
            raise ValueError(f"need window_secs > 0 and max_legs >= 1, got {window_secs} and {max_legs}")
        self.window_secs = window_secs
        self.max_legs = max_legs
        self.evicted = 0
        self._is_open = is_open
        self._legs: dict[str, tuple[T, float, bool]] = {}  # oldest first: (owner, since, closed since then)

    def add(self, client_order_id: str, owner: T, now: float) -> None:
        """Watch a leg from `now` (again from `now`, if it was watched already)."""
        self.expire(now)
        self._legs.pop(client_order_id, None)
        self._legs[client_order_id] = (owner, now, not self._is_open(client_order_id))
        while len(self._legs) > self.max_legs:
            del self._legs[next(iter(self._legs))]
            self.evicted += 1

    def get(self, client_order_id: str) -> T | None:
        entry = self._legs.get(client_order_id)
        return None if entry is None else entry[0]

    def expire(self, now: float) -> None:
        """Stop watching the legs closed for `window_secs`; one open, or closed since the last look, is looked at
        again a window later."""
        horizon = now - self.window_secs
        legs = self._legs
        for _ in range(len(legs)):
            client_order_id, (owner, since, closed) = next(iter(legs.items()))
            if since > horizon:
                break
            del legs[client_order_id]
            if not closed:  # to the back: closed from now, or looked at again a window from now
                legs[client_order_id] = (owner, now, not self._is_open(client_order_id))

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._legs
