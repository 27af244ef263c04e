"""The venue gate on the MockClock against the scripted FakeVenue: the venue refusing our credentials or answering
nothing halts trading with its own code and an alert, the halt lifts by itself when the venue answers correctly
again, and it never lifts an operator's emergency stop or another gate's hold. (`test_venue_gate_sim.py` does the
same over real sockets against the simulated venue.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import trio
import trio.testing

from tests.engine.test_execution import fresh
from trader.app.alerts import STORE_AVAILABLE, STORE_UNAVAILABLE, TradingHolds, VenueGate, run_venue_gate
from trader.domain.intents import Intent
from trader.domain.positions import Portfolio
from trader.domain.risk import TradingState
from trader.engine.execution import ExecutionService
from trader.engine.order_manager import OrderManager, OrderManagerSettings
from trader.engine.risk import RiskGate
from trader.engine.venue_health import VenueHealthSettings, VenueProblem
from trader.integrations.slack import Alert
from trader.testing.fake_venue import FakeVenue
from trader.testing.memory_store import MemoryStore
from trader.venues.errors import VenueConnectionError, VenueError, VenueRejectCode, VenueRequestError

WALL = 1_700_000_000.0
HEALTH = VenueHealthSettings(auth_failures=2, unreachable_secs=3.0, probe_secs=0.5)


class SickVenue(FakeVenue):
    """The account endpoint (closed-only, the gate's probe) fails with `failure` while it is set."""

    failure: VenueError | None = None

    async def closed_only(self) -> bool:
        failure = self.failure
        if failure is not None:
            await trio.lowlevel.checkpoint()
            raise failure
        return await super().closed_only()


@dataclass
class Gated:
    venue: SickVenue
    manager: OrderManager
    service: ExecutionService
    gate: VenueGate
    holds: TradingHolds
    alerts: list[Alert]

    def state(self) -> tuple[VenueProblem | None, TradingState, str | None]:
        """(the problem halting trading, the trading state, why sending is blocked), read now (a call, so that a type
        checker does not carry one assertion's narrowing over to the next)."""
        return self.gate.halted_by, self.service.risk.state, self.manager.sending_blocked

    def reasons(self) -> tuple[str, ...]:
        return self.holds.reasons


@asynccontextmanager
async def gated() -> AsyncIterator[Gated]:
    venue = SickVenue(wall=WALL)
    settings = OrderManagerSettings(venue_health=HEALTH)
    manager = OrderManager(venue, MemoryStore(), portfolio=Portfolio(cash=Decimal(100)), settings=settings)
    _send, receive = trio.open_memory_channel[Intent](1)
    service = ExecutionService(manager, RiskGate(), receive, book_health=fresh)
    gate, holds, alerts = VenueGate(), TradingHolds(service), []

    def emit(event: object) -> None:
        if isinstance(event, Alert):
            alerts.append(event)

    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await nursery.start(
            lambda task_status: run_venue_gate(service, gate, emit, holds=holds, task_status=task_status)
        )
        yield Gated(venue, manager, service, gate, holds, alerts)
        nursery.cancel_scope.cancel()


async def test_a_refused_key_halts_trading_and_an_accepted_one_resumes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with gated() as g:
        g.venue.failure = VenueRequestError(401, VenueRejectCode.UNAUTHORIZED, "Unauthorized/Invalid api key")
        await g.manager.poll_closed_only()  # one refusal: a suspicion, which the gate confirms by asking again
        with trio.fail_after(2):
            while g.gate.halted_by is None:  # noqa: ASYNC110
                await trio.sleep(0.1)
        assert g.state() == (VenueProblem.AUTH_FAILED, TradingState.HALTED, "VENUE_AUTH_FAILED")
        assert [a.key for a in g.alerts] == ["venue:VENUE_AUTH_FAILED:halted"]
        await trio.sleep(30)  # it holds as long as the venue refuses the key, asked every probe_secs
        assert g.state()[1] is TradingState.HALTED
        asked = g.gate.probes
        assert asked >= 60

        g.venue.failure = None  # the key is taken again
        await trio.sleep(1)
        assert g.state() == (None, TradingState.ACTIVE, None)
        assert [a.key for a in g.alerts][-1] == "venue:VENUE_AUTH_FAILED:lifted"
        assert "trading resumed" in g.alerts[-1].text
        assert dict(g.gate.halts) == {"VENUE_AUTH_FAILED": 1}


async def test_silence_halts_trading_after_unreachable_secs(autojump_clock: trio.testing.MockClock) -> None:
    async with gated() as g:
        g.venue.failure = VenueConnectionError("connect refused")
        start = trio.current_time()
        await g.manager.poll_closed_only()
        with trio.fail_after(10):
            while g.gate.halted_by is None:  # noqa: ASYNC110
                await trio.sleep(0.1)
        assert g.state()[0] is VenueProblem.UNREACHABLE
        assert 3.0 <= trio.current_time() - start <= 3.6  # unreachable_secs, found by asking every probe_secs
        g.venue.failure = None
        with trio.fail_after(60):  # the READS breaker, opened by the failed probes, lets a probe through first
            while g.state()[0] is not None:  # noqa: ASYNC110
                await trio.sleep(0.1)
        assert g.state() == (None, TradingState.ACTIVE, None)


async def test_an_emergency_stop_is_never_lifted_by_the_gate(autojump_clock: trio.testing.MockClock) -> None:
    async with gated() as g:
        g.venue.failure = VenueRequestError(401, VenueRejectCode.UNAUTHORIZED, "Unauthorized/Invalid api key")
        await g.manager.poll_closed_only()
        await trio.sleep(2)
        assert g.state()[0] is VenueProblem.AUTH_FAILED
        await g.service.emergency_stop("operator")
        g.venue.failure = None
        await trio.sleep(2)
        halted_by, trading, blocked = g.state()
        assert halted_by is None  # the venue is fine again ...
        assert trading is TradingState.HALTED  # ... but the operator stopped trading: they resume it
        assert blocked is not None
        assert "stays halted" in g.alerts[-1].text


async def test_trading_resumes_only_when_no_gate_holds_it(autojump_clock: trio.testing.MockClock) -> None:
    async with gated() as g:
        assert g.holds.hold(STORE_UNAVAILABLE)  # the store gate: PostgreSQL is down
        g.venue.failure = VenueRequestError(403, VenueRejectCode.UNAUTHORIZED, "Forbidden")
        await g.manager.poll_closed_only()
        await trio.sleep(2)
        assert g.reasons() == (STORE_UNAVAILABLE, "VENUE_AUTH_FAILED")
        g.venue.failure = None
        await trio.sleep(2)
        assert g.reasons() == (STORE_UNAVAILABLE,)
        assert g.state() == (None, TradingState.HALTED, STORE_UNAVAILABLE)  # the store is still down
        assert g.holds.release(STORE_UNAVAILABLE, resume_reason=STORE_AVAILABLE)
        assert g.state() == (None, TradingState.ACTIVE, None)
