"""`python -m bench per_event [--history N ...] [--events E]`: what one event costs as the session's history grows.

The engine's per-event work must depend on what changed, not on how long it has run. For each history size N this
builds the state a long session leaves behind, then times the events that come in again and again:

- `risk_check_us`: execution's risk check of a two-leg basket (`ExecutionService._check`: exposure, buying power,
  the gate) with N tokens traded earlier in the session (flat positions now) and two legs approved and pending;
- `order_us`: one FOK order through the order manager (prepare, write ahead, send, the fill applied), with N closed
  orders sent earlier in the session;
- `orders_in_memory`: what the order manager still holds after those N (the store keeps them all): bounded by
  `OrderManagerSettings.max_closed_orders` and `forget_closed_after_secs`, not by N.

One JSON line per history size, then a summary line with the ratio of the largest history's costs to the smallest's
(1.0 is flat). In-process, warm, on a `FakeVenue` and a `MemoryStore`, on a mock clock that skips every wait: the
engine's own cost, not I/O's or the rate limiter's. A bench, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal

import structlog
import trio
import trio.testing

from trader.domain.enums import OrderType, TradeStatus
from trader.domain.intents import ArbIntent, Intent
from trader.domain.market import FeeSchedule
from trader.domain.positions import Portfolio, Position
from trader.engine.execution import ExecutionService
from trader.engine.funds import Funds
from trader.engine.order_manager import OrderManager, OrderManagerSettings, pump_venue_events
from trader.engine.risk import BookHealth, RiskGate, RiskSettings
from trader.infra.logging import configure_logging
from trader.testing import make_intent
from trader.testing.fake_venue import FakeVenue, Outcome
from trader.testing.memory_store import MemoryStore

FEES = FeeSchedule(rate=Decimal("0.02"), exponent=2)
WALL = 1_700_000_000.0


def _basket(n: int) -> ArbIntent:
    legs = tuple(
        make_intent(f"b{n}-{k}", token_id=str(1001 + k), price="0.45", size=10 + n % 50, order_type=OrderType.FOK)
        for k in range(2)
    )
    return ArbIntent(arb_id=f"b{n}", strategy="bench", legs=legs, max_slippage=Decimal("0.02"))


async def _risk_check_us(history: int, events: int) -> float:
    venue = FakeVenue(wall=WALL)
    past = [Position(token_id=str(10**6 + n), realized_pnl=Decimal("0.01")) for n in range(history)]
    portfolio = Portfolio(cash=Decimal(10**9), positions=past)
    manager = OrderManager(venue, MemoryStore(), portfolio=portfolio, wall_ns=lambda: int(WALL * 1e9))
    funds = Funds(venue, portfolio)
    await funds.refresh()
    _send, receive = trio.open_memory_channel[Intent](1)
    limits = RiskSettings(max_orders_global=10**9, max_orders_per_market=10**9, duplicate_window_secs=0)
    service = ExecutionService(
        manager,
        RiskGate(limits),
        receive,
        book_health=lambda _token: BookHealth(age_ms=0.0),
        funds=funds,
        fees_of=lambda _token: FEES,
    )
    pending = _basket(-1)
    service._reserve(pending.arb_id, pending.legs)  # two legs approved, not on the book yet
    baskets = [_basket(n) for n in range(events)]
    started = time.perf_counter()
    for basket in baskets:
        service._check(basket)  # the check itself, not the channel around it
    return (time.perf_counter() - started) / events * 1e6


async def _orders(history: int, events: int) -> tuple[float, int]:
    venue = FakeVenue(wall=WALL)
    venue.default = Outcome(trade_status=TradeStatus.CONFIRMED)  # settled at once, as paper trades are
    wall = [WALL]
    settings = OrderManagerSettings(forget_closed_after_secs=60.0)
    manager = OrderManager(
        venue,
        MemoryStore(),
        portfolio=Portfolio(cash=Decimal(10**9)),
        settings=settings,
        wall_ns=lambda: int(wall[0] * 1e9),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(pump_venue_events, manager)
        for n in range(history):
            wall[0] += 0.1  # ten orders a second of session
            await manager.submit(make_intent(f"h{n}", order_type=OrderType.FOK))
        started = time.perf_counter()
        for n in range(events):
            await manager.submit(make_intent(f"e{n}", order_type=OrderType.FOK))
        elapsed = time.perf_counter() - started
        in_memory = manager.statistics().orders
        nursery.cancel_scope.cancel()
    return elapsed / events * 1e6, in_memory


async def _run(histories: list[int], events: int) -> list[dict[str, float]]:
    await _risk_check_us(0, events)  # warm up (imports, caches) before anything is timed
    await _orders(0, events)
    lines: list[dict[str, float]] = []
    for history in histories:
        check = min([await _risk_check_us(history, events) for _ in range(3)])  # the least disturbed of three
        order, in_memory = min([await _orders(history, events) for _ in range(2)])
        line = {"history": history, "risk_check_us": round(check, 1), "order_us": round(order, 1)}
        line["orders_in_memory"] = in_memory
        print(json.dumps(line), flush=True)
        lines.append(line)
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench per_event", description=__doc__)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 2_000, 20_000], metavar="N")
    parser.add_argument("--events", type=int, default=500, metavar="E")
    args = parser.parse_args(argv)
    saved = structlog.get_config()
    configure_logging(level="WARNING")  # an order's log lines are not what is measured; the caller's come back after
    try:
        # On a mock clock that jumps over every wait (the rate limiter's, the fake venue's): the work is what is timed.
        clock = trio.testing.MockClock(autojump_threshold=0)
        lines = trio.run(_run, sorted(args.history), args.events, clock=clock)
    finally:
        structlog.configure(**saved)
    first, last = lines[0], lines[-1]
    summary = {
        "bench": "per_event",
        "history": [first["history"], last["history"]],
        "risk_check_ratio": round(last["risk_check_us"] / first["risk_check_us"], 2),
        "order_ratio": round(last["order_us"] / first["order_us"], 2),
        "orders_in_memory": last["orders_in_memory"],
    }
    print(json.dumps(summary), flush=True)
    return 0
