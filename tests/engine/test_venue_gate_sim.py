"""Issue 15 item 3's done-when: `trader run --venue polymarket` live against a simulated venue started here (over real
sockets, on the real clock). A wrong API secret (the sim's L2 check refuses every request: 401) and an unreachable
REST endpoint (its port closed under the engine) each halt trading with their own code (`VENUE_AUTH_FAILED`,
`VENUE_UNREACHABLE`) and an alert through the outputs, and the halt lifts by itself once the venue answers correctly
again: the key taken (the venue rotated to the secret the engine has), the port open again.

The REST endpoint is reached through a `Plug`, a TCP forwarder on a port of its own: pulling it closes the port and
every connection through it (new connections are refused), pushing it opens the same port again. The WebSockets,
Gamma and the chain go to the sim directly.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.engine.test_app import GAPS, TOKEN, running, wait_for
from trader.config import Secret
from trader.domain.risk import TradingState
from trader.engine.breaker import BreakerSettings
from trader.engine.order_manager import OrderManagerSettings
from trader.engine.venue_health import VenueHealthSettings, VenueProblem
from trader.integrations.http_server import HttpSettings
from trader.settings import EndpointSettings, KeySettings, RunSettings, Settings, VenueKind
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.capital import ChainSettings
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

#: Found within a few seconds, and the halt lifted within a second or two of the venue's recovery.
HEALTH = VenueHealthSettings(unreachable_secs=2.0, probe_secs=0.5)


class Plug:
    """A TCP forwarder from a port of its own to `target_port` on loopback (see the module docstring)."""

    def __init__(self, nursery: trio.Nursery, target_port: int) -> None:
        self._nursery = nursery
        self._target_port = target_port
        self._scope: trio.CancelScope | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def push(self) -> None:
        """Listen (again, on the same port once it had one) and forward every connection."""
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        self._scope = scope = trio.CancelScope()

        async def serve() -> None:
            with scope:
                await trio.serve_listeners(self._forward, listeners)

        self._nursery.start_soon(serve)

    def pull(self) -> None:
        """Close the port and every connection through it."""
        assert self._scope is not None
        self._scope.cancel()

    async def _forward(self, client: trio.SocketStream) -> None:
        async with client:
            server = await trio.open_tcp_stream("127.0.0.1", self._target_port)
            async with server, trio.open_nursery() as nursery:
                nursery.start_soon(_pipe, client, server, nursery.cancel_scope)
                nursery.start_soon(_pipe, server, client, nursery.cancel_scope)


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


@asynccontextmanager
async def sim_and_plug() -> AsyncIterator[tuple[SimVenue, Plug]]:
    params = dict(p.split("=", 1) for p in GAPS)
    async with open_sim_venue(SimConfig(markets=4, seed=7, scenario_params=params)) as sim, trio.open_nursery() as n:
        plug = Plug(n, int(sim.urls.rest.rsplit(":", 1)[1]))
        await plug.push()
        yield sim, plug
        n.cancel_scope.cancel()


def live_settings(tmp_path: Path, sim: SimVenue, rest_url: str, keys: KeySettings) -> Settings:
    urls = sim.urls
    return Settings(
        run=RunSettings(
            database_url=f"sqlite:{tmp_path / 'trader.sqlite3'}", drain_secs=2.0, live=True, venue=VenueKind.POLYMARKET
        ),
        http=HttpSettings(port=0, admin_token=TOKEN),
        endpoints=EndpointSettings(
            rest_url=rest_url,
            ws_market_url=urls.ws_market,
            ws_user_url=urls.ws_user,
            gamma_url=urls.gamma,
            espn_url=urls.espn,
        ),
        chain=ChainSettings(rpc_url=urls.rpc, relayer_url=urls.relayer),
        keys=keys,
        orders=OrderManagerSettings(venue_health=HEALTH),
        breaker=BreakerSettings(cool_down_secs=1.0),
    )


def alerts(engine: Any) -> list[str]:
    """The keys of the alerts the engine published (the bus; Slack gets the same)."""
    return [e.data["key"] for e in engine.outputs.memory.recent() if e.type == "alert"]


@pytest.mark.timeout(180)  # end to end: about 10 s on the 2-core machine, more under load
async def test_a_wrong_api_secret_halts_trading_until_the_venue_takes_the_key(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    address = OrderSigner(key).address
    async with sim_and_plug() as (sim, _plug):
        issued = sim.api_keys.derive(address)
        wrong = ApiCredentials(issued.api_key, secrets.token_urlsafe(32) + "=", issued.passphrase)
        keys = KeySettings(
            private_key=Secret(key),
            api_key=wrong.api_key,
            api_secret=Secret(wrong.secret),
            api_passphrase=Secret(wrong.passphrase),
        )
        async with running(live_settings(tmp_path, sim, sim.urls.rest, keys)) as run:
            engine: Any = run.engine
            execution = engine.execution
            await wait_for(lambda: engine.venue_gate.halted_by is VenueProblem.AUTH_FAILED)
            status = (await run.http.get("/status?full=1")).json()
            assert status["trading_state"] == "HALTED"
            assert status["venue_health"]["halted_by"] == "VENUE_AUTH_FAILED"
            assert status["venue_health"]["auth_refusals"] >= 2
            metrics = (await run.http.get("/metrics")).text
            assert 'trader_venue_problem{problem="VENUE_AUTH_FAILED"} 1.0' in metrics
            assert 'trader_venue_halts_total{code="VENUE_AUTH_FAILED"} 1.0' in metrics
            assert (await run.http.get("/ready")).json()["checks"]["venue_reachable"] is False
            assert "venue:VENUE_AUTH_FAILED:halted" in alerts(engine)
            await wait_for(lambda: execution.statistics().intents_denied.get("TRADING_HALTED", 0) >= 2)
            assert execution.statistics().orders.submitted == 0  # nothing went to a venue refusing our key

            sim.api_keys.register(wrong, address)  # the venue rotated the key to the secret the engine has
            await wait_for(lambda: engine.venue_gate.halted_by is None)
            assert execution.risk.state is TradingState.ACTIVE
            assert "venue:VENUE_AUTH_FAILED:lifted" in alerts(engine)
            await wait_for(lambda: execution.statistics().orders.accepted >= 1)  # trading resumed
            run.stop.set()
            await wait_for(lambda: bool(run.result))


@pytest.mark.timeout(180)
async def test_an_unreachable_rest_endpoint_halts_trading_until_it_answers_again(tmp_path: Path) -> None:
    keys = KeySettings(private_key=Secret("0x" + secrets.token_hex(32)))
    async with sim_and_plug() as (sim, plug), running(live_settings(tmp_path, sim, plug.url, keys)) as run:
        engine: Any = run.engine
        execution = engine.execution
        await wait_for(lambda: execution.statistics().orders.accepted >= 1)

        plug.pull()  # the REST port closes: connections are refused
        pulled_at = trio.current_time()
        await wait_for(lambda: engine.venue_gate.halted_by is VenueProblem.UNREACHABLE)
        assert trio.current_time() - pulled_at < 10  # unreachable_secs (2 s), found by asking every 0.5 s
        status = (await run.http.get("/status?full=1")).json()
        assert status["trading_state"] == "HALTED"
        assert status["venue_health"]["no_answers"] >= 2
        assert "venue:VENUE_UNREACHABLE:halted" in alerts(engine)
        submitted = execution.statistics().orders.submitted

        await plug.push()  # the same port answers again
        await wait_for(lambda: engine.venue_gate.halted_by is None)
        assert execution.risk.state is TradingState.ACTIVE
        assert "venue:VENUE_UNREACHABLE:lifted" in alerts(engine)
        await wait_for(lambda: execution.statistics().orders.submitted > submitted)  # trading resumed
        run.stop.set()
        await wait_for(lambda: bool(run.result))
