"""Issue 15 item 2's done-when: `trader run` live against the in-process sim, over real sockets, on the real clock.
When the order endpoint alone fails (the sim's `http_errors` fault, HTTP 500, on `/order`: `POST /order`,
`POST /orders` and the cancels under it), the ORDERS breaker opens within 2 s, however well the lookups and account
polls on the other endpoints do (they used to dilute its failure rate: thirty seconds of 500s sent 51 orders in);
`/status` and `/metrics` show it; once the endpoint heals, the breaker's probe closes it and trading resumes.

The sim opens arbitrage gaps on 8 markets several times a second (each basket is one `POST /orders`), so that a
failure streak is seen at the pace an engine trading actively sees it (the ORDERS breaker opens after 3 failures in
a row, `breaker.orders_consecutive_failures`); its cool-down is 1 s here, so that the test ends soon.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import trio

from tests.engine.test_app import running, settings, wait_for
from trader.config import Secret
from trader.engine.breaker import BreakerSettings, BreakerState, EndpointFamily
from trader.settings import KeySettings, Settings, SimSettings

BUSY = ("step_secs=0.1", "gap_rate_per_min=600", "gap_ttl_secs=2", "dislocation_rate_per_min=0")


@pytest.mark.timeout(180)  # end to end: about 10 s on the 2-core machine, more under load
async def test_the_orders_breaker_opens_within_2s_of_the_order_endpoint_failing_and_trading_resumes(
    tmp_path: Path,
) -> None:
    base = settings(tmp_path, live=True)
    config = Settings(
        run=base.run,
        http=base.http,
        sim=SimSettings(markets=16, seed=7, params=BUSY),
        keys=KeySettings(private_key=Secret("0x" + secrets.token_hex(32))),
        breaker=BreakerSettings(cool_down_secs=1.0),
    )
    async with running(config) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        sim = run.engine.sim  # type: ignore[attr-defined]
        manager = execution.manager
        orders, reads = manager.breakers[EndpointFamily.ORDERS], manager.breakers[EndpointFamily.READS]
        await wait_for(lambda: execution.statistics().orders.fills >= 2)

        sim.faults.http_errors(500, count=1_000_000, path_prefix="/order")
        failing_since = trio.current_time()
        await wait_for(lambda: orders.state is BreakerState.OPEN)
        opened_after = trio.current_time() - failing_since
        assert opened_after <= 2.0, opened_after
        assert reads.state is BreakerState.CLOSED  # the lookups of the orders left in doubt answer fine
        assert reads.statistics().successes > 0

        status = (await run.http.get("/status?full=1")).json()["breakers"]
        assert status["orders"]["state"] == "open"
        assert status["orders"]["opens"] >= 1
        assert status["reads"]["state"] == "closed"
        metrics = (await run.http.get("/metrics")).text
        assert 'trader_breaker_state{family="orders",state="open"} 1.0' in metrics
        assert 'trader_breaker_transitions_total{family="orders",to="open"}' in metrics
        ready = await run.http.get("/ready")
        assert (ready.status_code, ready.json()["checks"]["venue_reachable"]) == (503, False)

        sim.faults.clear()  # the endpoint heals: the next probe (an order) closes the breaker
        fills = execution.statistics().orders.fills
        await wait_for(lambda: orders.statistics().closes >= 1 and orders.state is BreakerState.CLOSED)
        await wait_for(lambda: execution.statistics().orders.fills > fills)  # trading resumed
        metrics = (await run.http.get("/metrics")).text
        assert 'trader_breaker_transitions_total{family="orders",to="closed"} 1.0' in metrics
        run.stop.set()
        await wait_for(lambda: bool(run.result))

    breakers = manager.statistics().breakers
    assert (breakers["orders"].opens, breakers["reads"].opens) == (1, 0)  # the order endpoint's failures, its own
    assert breakers["orders"].failures < 10  # not 51: the streak that opened it, and what was already on its way
