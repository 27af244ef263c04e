"""Active/standby end to end: two `trader run --venue polymarket --live` engines (subprocesses) on one PostgreSQL
schema, trading one key against the simulated venue over real sockets (run here, so its own records are read).
The harness is `bench.failover`'s; `python -m bench failover` repeats the kill ten times and measures takeovers.

- both started at once: exactly one leads, the other stands by (warm: discovered, books, no order);
- kill -9 of the leader while the venue takes one of its orders: the standby trades again within 15 s; no venue
  order shares a client order id with another, every venue order has its write-ahead intent, none is left PENDING,
  and the store's positions are the venue's;
- SIGSTOP of the leader for longer than its takeover wait, then SIGCONT: the standby has taken over; the old leader
  says it was fenced and stops (and exits with status 3: `ha.on_fenced=exit`), and no order reaches the venue from it
  after it wakes (every order the venue takes from then on was written under the new epoch);
- every database session of both engines ended at once (what a PostgreSQL restart does to them; the shared server
  itself is never restarted here): never two leaders by their `/status`, and trading resumes under a new epoch.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from bench.failover import Engine, open_pair
from tests.integrations.servers import pg_dsn
from trader.commands.status import render

pytestmark = [pytest.mark.pg, pytest.mark.timeout(150)]  # end to end: subprocess engines on a shared 2-core box


async def test_kill_9_of_the_leader_standby_trades_within_15_s_nothing_sent_twice_nothing_lost(
    tmp_path: Path,
) -> None:
    async with open_pair(tmp_path, pg_dsn()) as pair:
        engines = {"a": await pair.start("a"), "b": await pair.start("b")}  # both at once
        first = await pair.wait_leader(within=60)
        standby = engines["b" if first.holder == "a" else "a"]
        await pair.wait_log(standby, "engine_standing_by", within=60)
        await pair.wait_orders(2, within=60)
        assert first.epoch == 1  # exactly one led: the other never took the lease
        assert '"event": "ha_leader"' not in standby.log.read_text()
        status, ready, metrics = await _operator_view(standby)
        assert status["ha"]["role"] == "standby"
        assert status["ha"]["leader"] == first.holder
        assert status["markets"]["books"] > 0  # warm: discovered, books kept
        assert f"{standby.name} is standby" in render(status, "url")  # `trader status`
        assert ready.status_code == 503
        assert ready.json()["checks"]["leader"] is False
        assert f'trader_ha_role{{instance="{standby.name}"}} 0.0' in metrics
        assert "trader_ha_takeovers_total 0.0" in metrics
        before = pair.taken()
        killed_engine, killed, killed_at = await pair.kill_leader(mid_order=True)
        assert killed_engine is engines[first.holder]
        before |= pair.taken()
        row = await pair.wait_leader(within=30, after_epoch=killed.epoch)
        traded_at = await pair.wait_orders(1, within=30, besides=before)
        assert row.holder == standby.name
        assert row.epoch == killed.epoch + 1
        assert traded_at - killed_at < 15
        await pair.wait_orders(3, within=30, besides=before)
        await pair.stop_all()
        assert standby.process.returncode == 0, standby.log.read_text()[-3000:]
        checks = await pair.checks()
    assert checks["duplicate_client_ids"] == 0
    assert checks["orders_without_intent"] == 0
    assert checks["pending_intents"] == 0
    assert checks["positions_differ"] == {}
    assert checks["epochs"] == [1, 2]


async def _operator_view(engine: Engine) -> tuple[dict[str, Any], httpx.Response, str]:
    """The engine's `/status` document, its `/ready` response and its `/metrics` (the URL from its log)."""
    url = _http_url(engine)
    async with httpx.AsyncClient(timeout=10) as client:
        status = (await client.get(f"{url}/status")).json()
        ready = await client.get(f"{url}/ready")
        metrics = (await client.get(f"{url}/metrics")).text
        page = (await client.get(f"{url}/")).text
    assert f"{engine.name} is <b>standby</b>" in page  # the web page says so too
    return status, ready, metrics


async def test_paused_leader_is_fenced_and_sends_nothing_after_it_wakes(tmp_path: Path) -> None:
    async with open_pair(tmp_path, pg_dsn(), lease_secs=1.5) as pair:
        a = await pair.start("a", TRADER_HA__ON_FENCED="exit")
        first = await pair.wait_leader(within=60)
        b = await pair.start("b")
        await pair.wait_log(b, "engine_standing_by", within=60)
        await pair.wait_orders(2, within=60)
        paused_at = len(pair.arrivals)
        os.kill(a.process.pid, signal.SIGSTOP)
        try:
            row = await pair.wait_leader(within=30, after_epoch=first.epoch)
            assert row.holder == "b"
            await pair.wait_orders(1, within=30, besides=pair.taken())
        finally:
            os.kill(a.process.pid, signal.SIGCONT)
        woke_at = time.monotonic()
        await pair.wait_log(a, "ha_fenced", within=30)
        await pair.wait_log(a, "ha_trading_stopped", within=30)
        with trio.fail_after(30):
            assert await a.process.wait() == 3  # `ha.on_fenced=exit`: for a supervisor to restart it
        await pair.wait_orders(1, within=30, besides=pair.taken())  # b trades on
        await pair.stop_all()
        epochs = await pair.intent_epochs()
    after_waking = [oid for at, oid in pair.arrivals[paused_at:] if at >= woke_at]
    assert all(epochs.get(oid) == row.epoch for oid in after_waking), [(o, epochs.get(o)) for o in after_waking]
    assert "ha_stale_leader_ended" in b.log.read_text()  # b ended a's session: a was paused, not dead


async def test_every_database_session_ending_at_once_never_two_leaders_and_trading_resumes(tmp_path: Path) -> None:
    """As a PostgreSQL restart does to a running pair (without restarting the shared server): every session of both
    engines ends at once, the leader's lock with it."""
    async with open_pair(tmp_path, pg_dsn()) as pair:
        engines = {"a": await pair.start("a"), "b": await pair.start("b")}
        first = await pair.wait_leader(within=60)
        await pair.wait_log(engines["b" if first.holder == "a" else "a"], "engine_standing_by", within=60)
        await pair.wait_orders(2, within=60)
        urls = {name: _http_url(engine) for name, engine in engines.items()}
        leaders_at_once: list[int] = []

        async def watch(client: httpx.AsyncClient) -> None:
            while True:
                roles = [(await client.get(f"{url}/status")).json()["ha"]["role"] for url in urls.values()]
                leaders_at_once.append(roles.count("leader"))
                await trio.sleep(0.1)

        async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
            nursery.start_soon(watch, client)
            before = pair.taken()
            assert await pair.end_sessions() >= 4  # each engine's store and lease connections, at least
            row = await pair.wait_leader(within=30, after_epoch=first.epoch)
            await pair.wait_orders(1, within=30, besides=before)  # trading resumed
            await trio.sleep(2)
            nursery.cancel_scope.cancel()
        await pair.stop_all()
        checks = await pair.checks()
    assert max(leaders_at_once) == 1
    assert row.epoch > first.epoch
    assert checks["duplicate_client_ids"] == 0
    assert checks["orders_without_intent"] == 0
    assert checks["pending_intents"] == 0


def _http_url(engine: Engine) -> str:
    line = next(x for x in engine.log.read_text().splitlines() if '"event": "engine_standing_by"' in x)
    return str(json.loads(line)["http"])
