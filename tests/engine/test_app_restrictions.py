"""`trader run --venue polymarket`'s engine (live, as `run_trader` runs it) against the in-process simulated venue,
over real sockets, on the real clock, through a matching-engine restart and the post-only window after it (the sim's
`restart` fault): no breaker trip, no lost intent (every order's verdict is the sim's record of it), and trading
resumes once the windows are over.

The sim opens an arbitrage gap about every second (the strategies' baskets are FOK: never post-only), so orders are
on their way when the restart begins; the restart is ended by the test once an order refused with 425 has been sent
again (so the test does not depend on how long the gaps take), and the post-only windows (the sim's and the
engine's) are 2 s.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import trio

from tests.engine.test_app import running, settings, wait_for
from trader.config import Secret
from trader.domain.enums import OrderStatus
from trader.domain.events import OrderReason
from trader.engine.order_manager import SUBMIT_NOT_FOUND, OrderManagerSettings
from trader.engine.restrictions import RestrictionSettings
from trader.settings import KeySettings, Settings
from trader.venues.errors import VenueRejectCode
from trader.venues.polymarket.signing import OrderSigner

POST_ONLY_SECS = 2.0


@pytest.mark.timeout(180)  # end to end: about 15 s on the 2-core machine, more under load
async def test_a_live_run_rides_out_a_restart_and_the_post_only_window(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    address = OrderSigner(key).address.lower()
    base = settings(tmp_path, live=True)
    config = Settings(
        run=base.run,
        http=base.http,
        sim=base.sim,
        keys=KeySettings(private_key=Secret(key)),
        orders=OrderManagerSettings(restrictions=RestrictionSettings(post_only_window_secs=POST_ONLY_SECS)),
    )
    async with running(config) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        sim = run.engine.sim  # type: ignore[attr-defined]
        manager = execution.manager
        await wait_for(lambda: execution.statistics().orders.fills >= 2)

        sim.faults.restart(secs=600, post_only_secs=POST_ONLY_SECS)
        await wait_for(lambda: manager.statistics().restart_retries >= 1)  # refused with 425, and sent again
        status = (await run.http.get("/status?full=1")).json()["venue_restrictions"]
        assert [a["restriction"] for a in status["active"]] == ["RESTARTING"]
        ready = await run.http.get("/ready")
        assert (ready.status_code, ready.json()["checks"]["venue_accepts_orders"]) == (503, False)
        sim.faults.modes.end_restart(sim.now())  # the matching engine is back: the sim's post-only window

        await wait_for(lambda: manager.restrictions.statistics(trio.current_time()).started.get("POST_ONLY", 0) >= 1)
        await wait_for(
            lambda: sim.faults.modes.mode(sim.now()) is None and manager.restrictions.active(trio.current_time()) == ()
        )
        fills = execution.statistics().orders.fills
        await wait_for(lambda: execution.statistics().orders.fills > fills)  # trading resumed
        assert (await run.http.get("/ready")).json()["checks"]["venue_accepts_orders"] is True
        metrics = (await run.http.get("/metrics")).text
        assert 'trader_venue_restriction_refusals_total{restriction="RESTARTING"}' in metrics

        run.stop.set()
        await wait_for(lambda: bool(run.result))
        ours = {o.order_id: o for o in sim.exchange.orders() if o.maker_address.lower() == address}
        our_trades = [t for t in sim.exchange.trades() if t.taker.maker_address.lower() == address]
        maker_fills = [f for t in sim.exchange.trades() for f in t.makers if f.order.maker_address.lower() == address]
        refused_by_sim = dict(sim.faults.modes.refused)

    stats = manager.statistics()
    # no breaker trip: the restart's 425s and the post-only 503s are restrictions, not failures
    assert {family: (b.opens, b.failures) for family, b in stats.breakers.items()} == {
        "orders": (0, 0),
        "cancels": (0, 0),
        "reads": (0, 0),
    }
    assert stats.breakers["orders"].restricted >= 2
    assert stats.restricted.get("RESTARTING", 0) >= 1
    assert refused_by_sim.get("restarting", 0) >= 1
    # no lost intent: every order's verdict is the sim's record of it
    engine = {o.order_id: o for o in manager.orders()}
    assert set(ours) <= set(engine)
    never_at_venue = {OrderReason.NEVER_SENT, SUBMIT_NOT_FOUND}
    for order in engine.values():
        assert order.is_terminal, order
        if order.reason == VenueRejectCode.FOK_NOT_FILLED and order.order_id in ours:
            # The venue answers a killed FOK/FAK with an error and keeps it as CANCELED with nothing matched.
            assert (ours[order.order_id].status, ours[order.order_id].matched) == ("CANCELED", 0), order
        elif order.status is OrderStatus.REJECTED or order.reason in never_at_venue:
            assert order.order_id not in ours, order
        else:
            assert order.order_id in ours, order
            assert ours[order.order_id].status != "LIVE"
    reasons = {o.reason for o in engine.values() if o.status is OrderStatus.REJECTED}
    assert VenueRejectCode.UNKNOWN not in reasons
    assert VenueRejectCode.POST_ONLY_WOULD_CROSS not in reasons  # the window is not "would cross"
    denied = execution.statistics().intents_denied
    restricted = {code for code in denied if code.startswith("RESTRICTED_")} | {
        str(r) for r in reasons if str(r).startswith("RESTRICTED_")
    }
    assert restricted & {"RESTRICTED_RESTARTING", "RESTRICTED_POST_ONLY"}  # told apart from the venue's verdicts
    (summary,) = run.result
    assert summary.fills == len(our_trades) + len(maker_fills)
    assert summary.open_orders_at_exit == 0
    assert manager.unresolved() == []
