"""The order manager: client ids, write-ahead intents, protected venue calls, the order state machine, settlement.

One `OrderManager` per engine owns every order it sent (by client order id, and by the venue's order id, which is
computed locally before sending), the trades of those orders, and the `Portfolio` they change.

Sending an order (`submit`, or `submit_batch` for up to `MAX_BATCH_SIZE` in one `POST /orders`: an arbitrage's legs):
the venue prepares it (`Venue.prepare`: its id is computed, and live the order signed, before anything else); the
intent is written to the store BEFORE anything is sent (write-ahead: a store failure means the order is not sent);
the request goes through the rate limiter, the sending gate and the circuit breaker of its endpoint family (orders,
cancels, reads) under a per-request deadline; the reply drives the state machine (`trader.domain.orders`): accepted,
rejected (a value with the venue's stable code), or UNKNOWN (a timeout, a disconnect, a 5xx, a garbled reply). UNKNOWN
is a state, not a verdict: the order stays UNKNOWN until the venue shows it, ASKED FOR BY THAT ORDER ID
(`Venue.lookup`) on a backoff schedule, never sent again; "not found" is a verdict only once the window for the
venue's answer has passed (`OrderManagerSettings.unknown_window_secs`). Venue events (order updates and trades, keyed
by the venue's order id) then move the order and the portfolio on: fills, settlement, reversals of FAILED trades; a
fill of an order closed without one is applied and reported (`OrderLateFill`). Cancels are HIGH priority, deferred
for an order whose id the venue has not confirmed; the emergency cancel-all goes out even with the cancels breaker
open. How the requests end tells the venue's health (`trader.engine.venue_health`).

The parts, each a module of this package, each an object the manager builds and owns:

- `submit`: the submit path (`Submitter`): prepare, write ahead, send, the state an answer means;
- `resolve`: asking the venue by order id (`Resolver`): UNKNOWN orders (the lookup schedule and the window),
  `reconcile`, the resync after a gap in the venue's events, the intents left pending by a crash (`recover_pending`);
- `guard`: the guarded venue call (`VenueGuard`): rate limiter, sending gate, the breakers of the endpoint families,
  deadline, the venue's health, and the counts of each kind of failure, as one piece; which failures leave an order's
  fate unknown;
- `events`: venue events (`VenueEventHandler`): order updates, trades, settlement, reversals, ghosts;
- `cancels`: one order or all of them (`Canceller`), and the cancels deferred until the venue confirms an order;
- `ledger`: the orders, their indexes, the state machine's application, listeners, and the store writes of what it
  holds (`OrderLedger`), shared by the parts above;
- `reasons`: the reason codes of this package and `SubmitOutcome`; `settings`: `OrderManagerSettings` and
  `OrderManagerStatistics`; `manager`: `OrderManager` itself and `pump_venue_events`.
"""

from __future__ import annotations

from trader.engine.order_manager.guard import NotLeader, RateLimitWaitTooLong, SendingBlocked
from trader.engine.order_manager.manager import OrderManager, pump_venue_events
from trader.engine.order_manager.reasons import (
    CANCEL_NOT_DONE,
    CIRCUIT_OPEN,
    NOT_LEADER,
    PREPARE_FAILED,
    RATE_LIMITED,
    SENDING_BLOCKED,
    STORE_WRITE_FAILED,
    SUBMIT_NOT_FOUND,
    VENUE_CONNECTION_ERROR,
    SubmitOutcome,
)
from trader.engine.order_manager.settings import OrderManagerSettings, OrderManagerStatistics
from trader.engine.order_manager.submit import DuplicateClientOrderId, PrepareFailed

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
    "DuplicateClientOrderId",
    "NotLeader",
    "OrderManager",
    "OrderManagerSettings",
    "OrderManagerStatistics",
    "PrepareFailed",
    "RateLimitWaitTooLong",
    "SendingBlocked",
    "SubmitOutcome",
    "pump_venue_events",
]
