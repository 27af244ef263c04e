"""The reason codes of the order manager (besides the domain's `OrderReason` and the venue's `VenueRejectCode`),
and how a submit ended for one order (`SubmitOutcome`)."""

from __future__ import annotations

import enum

__all__ = [
    "CANCEL_NOT_DONE",
    "CIRCUIT_OPEN",
    "NOT_LEADER",
    "PREPARE_FAILED",
    "RATE_LIMITED",
    "SENDING_BLOCKED",
    "STORE_WRITE_FAILED",
    "SUBMIT_NOT_FOUND",
    "VENUE_CONNECTION_ERROR",
    "SubmitOutcome",
]

#: the submit's outcome was unknown and the venue did not have the order once the window for its answer had passed
SUBMIT_NOT_FOUND = "SUBMIT_NOT_FOUND"
CIRCUIT_OPEN = "CIRCUIT_OPEN"
RATE_LIMITED = "RATE_LIMITED"
STORE_WRITE_FAILED = "STORE_WRITE_FAILED"
SENDING_BLOCKED = "SENDING_BLOCKED"  # emergency stop or drain: nothing new goes out
VENUE_CONNECTION_ERROR = "VENUE_CONNECTION_ERROR"
#: active/standby: this engine's lease ran out (fenced, or paused) before the request could leave: not sent.
NOT_LEADER = "NOT_LEADER"
CANCEL_NOT_DONE = "VENUE_CANCEL_NOT_DONE"
#: the order could not be built (the venue's market parameters were unavailable, or preparing it raised): not sent.
#: A refusal of the terms (`trader.venues.base.PrepareRefused`) has its own code instead (`PRICE_OFF_TICK`, ...).
PREPARE_FAILED = "PREPARE_FAILED"


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "ACCEPTED"  # the venue has the order (resting, matched, or already closed)
    REJECTED = "REJECTED"  # the venue refused it
    NOT_SENT = "NOT_SENT"  # it never left (store, breaker, rate limit, blocked, cancelled before sending)
    NOT_FOUND = "NOT_FOUND"  # outcome was unknown; the venue did not have it once the window had passed
    UNRESOLVED = "UNRESOLVED"  # outcome unknown, and the venue could not be asked within the window: still UNKNOWN
