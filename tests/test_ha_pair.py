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
- every database session of both engines ended at once (what a PostgreSQL restart does to them, without the
  downtime; on the shared server): never two leaders by their `/status`, and trading resumes under a new epoch;
- the PostgreSQL server itself restarted (`pg_ctl restart -m fast`) while the leader trades: a private cluster
  (`bench.servers.PrivatePostgres`: `initdb` in a temporary directory, a free port; the shared server is never
  restarted), skipped where `initdb`/`pg_ctl` are missing. Never two leaders by their `/status`, afterwards exactly
  one, trading again under a new epoch within a bound, and no client order id sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from bench.failover import Engine, PairHarness, open_pair
from bench.servers import PrivatePostgres, private_postgres_missing
from tests.integrations.servers import pg_dsn
from trader.commands.status import render
from trader.integrations.store.lease import LeaseRow
from trader.venues.sim.events import OrderEvent, TradeEvent

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
    """As a PostgreSQL restart does to a running pair, without its downtime (and without restarting the shared
    server): every session of both engines ends at once, the leader's lock with it."""
    async with open_pair(tmp_path, pg_dsn()) as pair:
        first = await _trading_pair(pair)
        leaders_at_once: list[int] = []
        async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
            nursery.start_soon(_count_leaders, client, pair, leaders_at_once)
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


@pytest.mark.parametrize("down_secs", [0, 4], ids=["pg_ctl_restart", "down_4s"])
async def test_postgresql_restarted_under_a_running_pair_never_two_leaders_and_trading_resumes(
    tmp_path: Path, down_secs: float
) -> None:
    """`pg_ctl restart -m fast` (down for a fraction of a second: either engine may lead next), or stopped (`-m fast`)
    for longer than the lease and started again, while the leader trades: stopped while the venue takes one of its
    orders (its intents are left pending, their fills land while the server is down) and with the standby paused
    meanwhile, so that the leader, fenced by the outage, wins its lease back in the same process: its new term
    resolves those intents and starts from their fills (the store's positions equal the venue's at the end)."""
    missing = private_postgres_missing()
    if missing is not None:
        pytest.skip(f"a private PostgreSQL cluster is needed (the shared one is never restarted): {missing}")
    with tempfile.TemporaryDirectory(prefix="trader-ha-pg-") as folder:  # not tmp_path: the postgres user needs it
        pg = await trio.to_thread.run_sync(PrivatePostgres, Path(folder))
        try:
            async with open_pair(tmp_path, pg.dsn) as pair:
                first = await _trading_pair(pair)
                leaders_at_once: list[int] = []
                async with httpx.AsyncClient(timeout=10) as client:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_count_leaders, client, pair, leaders_at_once)
                        await pair.wait_orders(1, within=30, besides=pair.taken())  # the leader is trading now
                        standby = pair.engines["b" if first.holder == "a" else "a"]
                        if down_secs:
                            os.kill(standby.process.pid, signal.SIGSTOP)
                            try:
                                restarted_at = await _stop_on_next_order(pair, pg)  # every session ends
                                await trio.sleep(down_secs)
                                await trio.to_thread.run_sync(pg.start)
                                back_at = time.monotonic()
                                row = await pair.wait_leader(within=60, after_epoch=first.epoch)
                                leads_at = time.monotonic()
                                assert row.holder == first.holder
                            finally:
                                os.kill(standby.process.pid, signal.SIGCONT)
                        else:
                            restarted_at = time.monotonic()
                            await trio.to_thread.run_sync(pg.restart)  # every session ends, the server is back
                            back_at = time.monotonic()
                            row = await pair.wait_leader(within=60, after_epoch=first.epoch)
                            leads_at = time.monotonic()
                        await pair.wait_orders(1, within=60, besides=pair.taken())
                        await trio.sleep(2)
                        nursery.cancel_scope.cancel()
                    roles = await _roles(client, pair)
                await pair.stop_all()
                checks = await pair.checks()
                epochs = await pair.intent_epochs()
        finally:
            await trio.to_thread.run_sync(pg.close)
    new_term = [at for at, oid in pair.arrivals if epochs.get(oid) == row.epoch]
    assert new_term, "no order under the new epoch"
    timings = {
        "down_s": round(back_at - restarted_at, 2),
        "leader_again_s": round(leads_at - restarted_at, 2),
        "first_order_s": round(min(new_term) - restarted_at, 2),
    }
    print(json.dumps({"pg_restart": timings, "samples": len(leaders_at_once)}))  # for the record (pytest -s)
    assert len(leaders_at_once) > 5  # a paused engine's /status times out (1 s) while it is paused
    assert max(leaders_at_once) == 1, leaders_at_once
    assert sorted(map(str, roles.values())) == ["leader", "standby"], roles  # afterwards exactly one leads
    assert roles[row.holder] == "leader"
    assert row.epoch > first.epoch
    assert timings["first_order_s"] < 30, timings
    assert checks["duplicate_client_ids"] == 0
    assert checks["orders_without_intent"] == 0
    assert checks["pending_intents"] == 0
    assert checks["positions_differ"] == {}


async def _stop_on_next_order(pair: PairHarness, pg: PrivatePostgres) -> float:
    """Stop the server (`-m fast`) while the venue takes the next order of ours, before it answers; when."""
    earlier, stopped, when = pair.taken(), trio.Event(), [0.0]

    def stop_on_next_order(event: object) -> None:
        order_id = None
        if isinstance(event, OrderEvent) and event.order.maker_address.lower() == pair.address:
            order_id = event.order.order_id
        elif isinstance(event, TradeEvent) and event.trade.maker_address.lower() == pair.address:
            order_id = event.trade.taker_order_id
        if order_id is not None and order_id not in earlier and not stopped.is_set():
            when[0] = time.monotonic()
            pg.stop("fast")  # blocks the venue meanwhile: its answer (and the fills) come once the server is down
            stopped.set()

    pair.sim.exchange.add_listener(stop_on_next_order)
    try:
        with trio.fail_after(30):
            await stopped.wait()
    finally:
        pair.sim.exchange.remove_listener(stop_on_next_order)
    return when[0]


async def _trading_pair(pair: PairHarness) -> LeaseRow:
    """Both engines started at once, one leading and trading, the other standing by; the leader's lease."""
    engines = {"a": await pair.start("a"), "b": await pair.start("b")}
    first = await pair.wait_leader(within=60)
    await pair.wait_log(engines["b" if first.holder == "a" else "a"], "engine_standing_by", within=60)
    await pair.wait_orders(2, within=60)
    return first


async def _roles(client: httpx.AsyncClient, pair: PairHarness) -> dict[str, str | None]:
    """Each running engine's `/status` role, asked of both at once (None: it did not answer)."""
    roles: dict[str, str | None] = {}

    async def ask(name: str, url: str) -> None:
        try:
            roles[name] = (await client.get(f"{url}/status", timeout=1)).json()["ha"]["role"]  # paused: None
        except (httpx.HTTPError, ValueError, KeyError):
            roles[name] = None

    async with trio.open_nursery() as nursery:
        for name, engine in pair.engines.items():
            if engine.process.returncode is None:
                nursery.start_soon(ask, name, _http_url(engine))
    return roles


async def _count_leaders(client: httpx.AsyncClient, pair: PairHarness, counts: list[int]) -> None:
    """Sample how many engines say they lead, every 0.1 s, into `counts`."""
    while True:
        counts.append(list((await _roles(client, pair)).values()).count("leader"))
        await trio.sleep(0.1)


def _http_url(engine: Engine) -> str:
    line = next(x for x in engine.log.read_text().splitlines() if '"event": "engine_standing_by"' in x)
    return str(json.loads(line)["http"])
