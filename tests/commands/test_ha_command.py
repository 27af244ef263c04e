"""`trader ha status|step-down` against the real PostgreSQL, and the settings HA refuses (`check_ha`)."""

from __future__ import annotations

import argparse
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tests.integrations.servers import pg_dsn
from trader.app.config import Settings, check_ha
from trader.commands import ha
from trader.engine.leadership import HaSettings
from trader.errors import ConfigError
from trader.integrations.store.lease import open_postgres_lease
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema
from trader.settings import load_settings


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    ha.add_arguments(parser)
    return ha.run(parser.parse_args([*argv[:1], "--env-file", "/dev/null", *argv[1:]]))


def _documents(out: str) -> list[dict[str, Any]]:
    """The command's JSON lines (structlog's console lines, unconfigured under pytest, go to stdout too)."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def pg() -> Iterator[PostgresSettings]:
    settings = PostgresSettings(url=pg_dsn(), schema=f"test_ha_cli_{uuid.uuid4().hex[:12]}")
    yield settings
    trio.run(drop_postgres_schema, settings)


@pytest.mark.pg
def test_status_names_the_leader_and_step_down_asks_it_to_go(
    pg: PostgresSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--database-url", pg.url, "--schema", str(pg.schema)]
    assert _main(["status", *args]) == 0
    assert _documents(capsys.readouterr().out)[0]["leader"] is None
    assert _main(["step-down", *args]) == 1  # nobody leads
    capsys.readouterr()

    async def lead_then_ask() -> tuple[bool, bool]:
        async with open_postgres_lease(pg, key=secrets.randbelow(2**62) + 1, holder="engine-a") as lease:
            won = await lease.try_acquire(lease_secs=2.0)
            assert won is not None
            status = await trio.to_thread.run_sync(_main, ["status", *args])
            asked = await trio.to_thread.run_sync(_main, ["step-down", *args])
            renewal = await lease.renew(won.epoch, lease_secs=2.0)
            return status == 0 and asked == 0, renewal.step_down

    ok, seen = trio.run(lead_then_ask)
    assert ok
    assert seen  # the leader learns it at its next renewal
    status, stepped = _documents(capsys.readouterr().out)
    assert status["leader"] == "engine-a"
    assert status["epoch"] == 1
    assert status["lease_age_secs"] < 2
    assert stepped == {"stepped_down": True, "leader": "engine-a", "epoch": 1}


def test_ha_refuses_sqlite_the_in_process_sim_and_a_journal_file() -> None:
    base = {"TRADER_HA__ENABLED": "true"}
    with pytest.raises(ConfigError, match="PostgreSQL"):
        check_ha(load_settings({**base, "TRADER_DATABASE_URL": "sqlite:x.db"}, dotenv=None))
    pg_url = {"TRADER_DATABASE_URL": "postgresql://u@h/db"}
    with pytest.raises(ConfigError, match="--venue polymarket"):
        check_ha(load_settings({**base, **pg_url, "TRADER_RUN__VENUE": "sim"}, dotenv=None))
    journal = {"TRADER_RUN__VENUE": "polymarket", "TRADER_STORE__INTENT_JOURNAL": "/tmp/j"}
    with pytest.raises(ConfigError, match="intent_journal"):
        check_ha(load_settings({**base, **pg_url, **journal}, dotenv=None))
    check_ha(load_settings({**base, **pg_url, "TRADER_RUN__VENUE": "polymarket"}, dotenv=None))
    check_ha(Settings())  # off: nothing to check
    with pytest.raises(ConfigError, match="takeover_secs"):  # the default takeover wait (5 s) is too short for it
        load_settings({**base, "TRADER_HA__LEASE_SECS": "6"}, dotenv=None)
    assert HaSettings(lease_secs=4.0).takeover_secs > 4.0
