"""The venue's trading modes in the sim (protocol.md §4, §11 item 3), armed as scenario faults; all off by default.

- restart (`restart` fault, `secs` long, about 90 s at the venue): every order and cancel endpoint answers
  425 Too Early; then the post-only window (`post_only_secs`, 2 minutes at the venue) follows by itself;
- post-only window (`post_only` fault): an order request holding an order without `postOnly: true` is refused
  whole, 503 `{"error": POST_ONLY_TEXT, "code": "post_only_mode"}`; cancels and post-only orders pass;
- cancel-only (`cancel_only`): order requests 503 `CANCEL_ONLY_TEXT`; cancels pass;
- trading disabled (`trading_disabled`): order and cancel requests 503 `DISABLED_TEXT`;
- closed-only (`closed_only`, per address or for every client): `GET /auth/ban-status/closed-only` says so, and a
  buy (the only order that can add to a position) is refused 400 `'<address>' address in closed only mode`.

The texts of the 503s and of closed-only are the venue's (docs, error codes page); the 425's text and the post-only
window's are not documented (clients key on the status and on `code`), so these are the sim's words.

Pure: every method takes `now` (the sim's unix seconds).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

RESTART_TEXT = "the matching engine is restarting; retry shortly"
POST_ONLY_TEXT = "Trading is currently post-only: only post-only orders are accepted, cancels are allowed."
POST_ONLY_CODE = "post_only_mode"
CANCEL_ONLY_TEXT = "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
DISABLED_TEXT = "Trading is currently disabled. Check polymarket.com for updates"
#: Every client (owners that are not the scenario's own participants).
ALL_CLIENTS = "*"


def closed_only_text(address: str) -> str:
    return f"'{address}' address in closed only mode"


@dataclass(slots=True)
class TradingModes:
    """The modes armed now, by when each ends (unix seconds; inf: until cleared)."""

    restart_until: float = -math.inf
    post_only_from: float = -math.inf
    post_only_until: float = -math.inf
    cancel_only_until: float = -math.inf
    disabled_until: float = -math.inf
    closed_only: set[str] = field(default_factory=set)  # lower-case addresses, or ALL_CLIENTS
    #: requests refused by each mode
    refused: Counter[str] = field(default_factory=Counter)

    def restart(self, now: float, secs: float, post_only_secs: float) -> None:
        self.restart_until = now + secs
        self.post_only_from, self.post_only_until = self.restart_until, self.restart_until + post_only_secs

    def end_restart(self, now: float) -> None:
        """The restart is over now; its post-only window starts now and keeps its length."""
        if self.restart_until > now:
            length = self.post_only_until - self.post_only_from
            self.restart_until = now
            self.post_only_from, self.post_only_until = now, now + length

    def post_only(self, now: float, secs: float) -> None:
        self.post_only_from, self.post_only_until = now, now + secs

    def mode(self, now: float) -> str | None:
        """The venue-wide mode in force: restarting, disabled, cancel_only, post_only, or None (normal trading)."""
        if now < self.restart_until:
            return "restarting"
        if now < self.disabled_until:
            return "disabled"
        if now < self.cancel_only_until:
            return "cancel_only"
        if self.post_only_from <= now < self.post_only_until:
            return "post_only"
        return None

    def is_closed_only(self, *addresses: str) -> bool:
        return ALL_CLIENTS in self.closed_only or any(a.lower() in self.closed_only for a in addresses if a)

    def set_closed_only(self, address: str, enabled: bool) -> None:
        key = address.lower() if address != ALL_CLIENTS else ALL_CLIENTS
        if enabled:
            self.closed_only.add(key)
        else:
            self.closed_only.discard(key)
            if key == ALL_CLIENTS:
                self.closed_only.clear()

    def armed(self, now: float) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        mode = self.mode(now)
        if mode is not None:
            until = {
                "restarting": self.restart_until,
                "disabled": self.disabled_until,
                "cancel_only": self.cancel_only_until,
                "post_only": self.post_only_until,
            }[mode]
            out.append({"kind": "trading_mode", "mode": mode, "secs_left": None if until == math.inf else until - now})
        if self.closed_only:
            out.append({"kind": "closed_only", "addresses": sorted(self.closed_only)})
        return out

    def clear(self) -> None:
        self.restart_until = self.post_only_from = self.post_only_until = -math.inf
        self.cancel_only_until = self.disabled_until = -math.inf
        self.closed_only.clear()
