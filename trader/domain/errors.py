"""Programmer errors of the domain model: they are bugs, never control flow, and crash the process on purpose.

These are deliberately *not* `trader.errors.TraderError`s: nothing should catch them to carry on. Bad values from
outside are `trader.errors.InputError` (a `ValueError`); expected business outcomes (a risk denial, a venue
rejection) are values and events.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the domain's programmer errors."""


class InvalidTransition(DomainError):
    """An event that the state-transition table does not allow for the object's current state."""

    def __init__(self, what: str, state: str, event: str) -> None:
        super().__init__(f"{what}: no transition from {state} on {event}")
        self.what = what
        self.state = state
        self.event = event


class InvariantViolation(DomainError):
    """A state the model forbids (an overfill, a sell larger than the position, an event for another order)."""
