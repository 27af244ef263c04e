"""`trader doctor`: every check against real things (a simulated venue, SQLite files, Redis and PostgreSQL ports)."""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tests.commands._sim import ADDRESS, KEY, cli, point_at, sim_config
from trader.commands.doctor import check_python, check_redis, migration_state
from trader.integrations.store import open_sqlite_store
from trader.integrations.store.base import load_migrations
from trader.venues.sim.venue import SimVenue, open_sim_venue

CLOSED = "127.0.0.1:9"  # nothing listens on the discard port here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_taken_http_port_fails_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_sink: io.StringIO
) -> None:
    with socket.socket() as engine:  # what another engine's HTTP server looks like
        engine.bind(("127.0.0.1", 0))
        engine.listen()
        port = engine.getsockname()[1]
        monkeypatch.setenv("TRADER_HTTP__PORT", str(port))
        assert await cli("doctor") == 1
    found = lines(capsys.readouterr().out)
    assert found["http port"] == (
        f"FAIL  http port: HTTP port {port} on 127.0.0.1 is already in use (another trader?) (hint: stop what holds "
        "it, or choose another port with --http-port or TRADER_HTTP__PORT (0 picks a free one))"
    )
    await cli("doctor")  # the port is free again once the other server is gone (the database check fails here)
    assert lines(capsys.readouterr().out)["http port"] == f"OK    http port: 127.0.0.1:{port} is free"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            lambda sim: sim.faults.closed_only(ADDRESS),
            "FAIL  restrictions: the account is in closed-only mode; rate-limit tier standard (hint: the venue "
            "refuses every buy",
        ),
        (
            lambda sim: sim.faults.trading_disabled(),
            "FAIL  restrictions: the venue refuses order requests now: TRADING_DISABLED",
        ),
        (
            lambda sim: sim.faults.restart(),
            "FAIL  restrictions: the venue refuses order requests now: RESTARTING",
        ),
    ],
    ids=["closed_only", "trading_disabled", "restarting"],
)
async def test_the_venues_trading_restrictions_fail_with_what_they_mean(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_sink: io.StringIO,
    fault: Callable[[SimVenue], None],
    expected: str,
) -> None:
    with trio.fail_after(60):
        async with open_sim_venue(sim_config()) as sim:
            point_at(monkeypatch, sim)
            monkeypatch.setenv("TRADER_HTTP__PORT", "0")
            fault(sim)
            assert await cli("doctor") == 1
    found = lines(capsys.readouterr().out)
    assert found["restrictions"].startswith(expected), found["restrictions"]


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        (
            {"initial_collateral": 0},
            "FAIL  collateral: 0 pUSD in the wallet (hint: deposit pUSD: with none, every buy is refused "
            "(RISK_BUYING_POWER))",
        ),
        ({"allowance": 0}, "FAIL  collateral: 10000 pUSD; missing: 0x"),  # the spenders not approved
    ],
    ids=["empty", "no_allowance"],
)
async def test_a_wallet_that_cannot_buy_fails_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_sink: io.StringIO,
    exchange: dict[str, int],
    expected: str,
) -> None:
    config = sim_config()
    assert config.exchange is not None
    wallet = dataclasses.replace(config, exchange=dataclasses.replace(config.exchange, **exchange))  # type: ignore[arg-type]
    with trio.fail_after(60):
        async with open_sim_venue(wallet) as sim:
            point_at(monkeypatch, sim)
            monkeypatch.setenv("TRADER_HTTP__PORT", "0")
            assert await cli("doctor") == 1
    collateral = lines(capsys.readouterr().out)["collateral"]
    assert collateral.startswith(expected), collateral
    if "allowance" in exchange:
        assert "RISK_ALLOWANCE_MISSING" in collateral


def lines(out: str) -> dict[str, str]:
    """check name -> its whole line."""
    return {line.split(":", 1)[0].split(maxsplit=1)[1]: line for line in out.splitlines()}


async def test_all_ok_against_a_sim_with_a_migrated_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    async with open_sqlite_store(database):
        pass
    with trio.fail_after(60):
        async with open_sim_venue(sim_config()) as sim:
            point_at(monkeypatch, sim, database)
            monkeypatch.setenv("TRADER_RUN__VENUE", "polymarket")
            monkeypatch.setenv("TRADER_HTTP__PORT", str(free_port()))

            assert await cli("doctor") == 0

    out = capsys.readouterr().out
    found = lines(out)
    assert list(found) == [
        "python",
        "settings",
        "database",
        "redis",
        "venue rest",
        "clock",
        "venue ws market",
        "venue ws user",
        "http port",
        "keys",
        "collateral",
        "restrictions",
    ]
    assert all(line.startswith(("OK ", "SKIP ")) for line in found.values()), out
    assert found["redis"].startswith("SKIP")
    assert found["collateral"] == "OK    collateral: 10000 pUSD, exchange allowance set"
    assert f"is at schema version {len(load_migrations())}" in found["database"]
    assert "signer 0x" in found["keys"]
    assert found["http port"].startswith("OK    http port: 127.0.0.1:")
    assert found["restrictions"] == (
        "OK    restrictions: not closed-only, the venue takes order requests; rate-limit tier standard"
    )
    assert KEY[2:] not in out + log_sink.getvalue()


async def test_failures_each_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    old = tmp_path / "old.sqlite3"  # a store whose schema is behind this code
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, checksum TEXT)")
    skewed = dataclasses.replace(sim_config(), start_time=time.time() + 120)
    with trio.fail_after(60):
        async with open_sim_venue(skewed) as sim:
            monkeypatch.setenv("TRADER_ENDPOINTS__REST_URL", sim.urls.rest)  # reachable, clock 2 minutes ahead
            monkeypatch.setenv("TRADER_ENDPOINTS__WS_MARKET_URL", f"ws://{CLOSED}/ws/market")
            monkeypatch.setenv("TRADER_ENDPOINTS__WS_USER_URL", "http://not-a-websocket")
            monkeypatch.setenv("TRADER_DATABASE_URL", f"sqlite:{old}")
            monkeypatch.setenv("TRADER_REDIS_URL", "redis://127.0.0.1:1/0")
            monkeypatch.setenv("TRADER_PRIVATE_KEY", KEY[:-2])  # one byte short

            assert await cli("doctor") == 1

    out = capsys.readouterr().out
    found = lines(out)
    assert found["venue rest"].startswith("OK ")
    for name, text in [
        ("database", "is at schema version 0, this code needs"),
        ("redis", "127.0.0.1:1: ConnectionError"),
        ("clock", "s behind the venue's"),  # by about 120 s (the venue answers in whole seconds)
        ("venue ws market", f"ws://{CLOSED}/ws/market"),
        ("venue ws user", "must be ws:// or wss://"),
        ("keys", "private_key"),
    ]:
        assert found[name].startswith("FAIL "), out
        assert text in found[name]
        assert "(hint: " in found[name]
    assert KEY[2:-2] not in out + log_sink.getvalue()


async def test_an_unknown_setting_and_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_sink: io.StringIO
) -> None:
    monkeypatch.setenv("TRADER_RISK__MAX_LOSS", "5")
    assert await cli("doctor") == 1
    found = lines(capsys.readouterr().out)
    assert found["settings"].startswith("FAIL  settings: unknown setting(s): TRADER_RISK__MAX_LOSS")

    monkeypatch.delenv("TRADER_RISK__MAX_LOSS")
    monkeypatch.setenv("TRADER_DATABASE_URL", "postgresql://trader:pw-123@127.0.0.1:1/trader")
    assert await cli("doctor") == 1
    out = capsys.readouterr().out
    database = lines(out)["database"]
    assert database.startswith("FAIL  database: cannot reach postgresql://trader:***@127.0.0.1:1/trader")
    assert "pw-123" not in out


@pytest.mark.redis
async def test_redis_answers(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get("TRADER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    check = await check_redis(url)
    if check.status == "FAIL" and "TRADER_TEST_REDIS_URL" not in os.environ:
        pytest.skip("TRADER_TEST_REDIS_URL is unset and no Redis answers on 127.0.0.1:6379")
    assert check.status == "OK"
    assert check.detail.endswith("answers PING")


def test_migration_states() -> None:
    shipped = load_migrations()
    current = {m.version: m.checksum for m in shipped}
    assert migration_state(current, shipped, "db").status == "OK"
    newer = migration_state({**current, 999: "x"}, shipped, "db")
    assert (newer.status, newer.hint) == ("FAIL", "upgrade trader")
    edited = migration_state({**current, 1: "edited"}, shipped, "db")
    assert "differ from this code's" in edited.detail


def test_python_version() -> None:
    assert check_python((3, 11, 7)).line() == "OK    python: 3.11.7"
    assert check_python((3, 10, 4)).line() == "FAIL  python: 3.10.4 is too old (hint: use Python 3.11 or newer)"
