"""`trader ha status` and `trader ha step-down`: the active/standby lease of a PostgreSQL store (docs/ha.md).

    trader ha status                 # who leads, its epoch, the lease's age (the database's clock), as JSON
    trader ha step-down              # ask the leader to step down: it stops trading at its next renewal and
                                     # releases the lease; a standby takes over at once (the old leader waits
                                     # `ha.takeover_secs` before competing again)

The database and schema are the ones `trader run` uses (TRADER_DATABASE_URL, TRADER_STORE__SCHEMA, `--env-file`),
or `--database-url`/`--schema`. Each engine's own view (role, epoch, lease age) is in its `/status` under `ha`.

Exit status: 0 done (status: also when nobody leads yet), 1 the database refused or could not be reached, or
step-down found no leader, 2 bad arguments or settings (SQLite: no HA).
"""

from __future__ import annotations

import argparse
import json
import os

import trio

from trader.commands.checks import DATABASE_FLAGS, add_env_file_argument, env_file
from trader.errors import ConfigError, RuntimeFailure
from trader.integrations.store import StoreError
from trader.integrations.store.lease import LeaseRow, read_lease, request_step_down
from trader.integrations.store.postgres import PostgresSettings
from trader.integrations.store.urls import sqlite_path
from trader.settings import load_settings

EXIT_OK = 0
EXIT_NO_LEADER = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ha_command", metavar="ACTION")
    for name, text in (
        ("status", "print the lease: the leader, its epoch, the age of its last renewal (JSON)"),
        ("step-down", "ask the leader to step down; a standby takes over"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("--database-url", default=None, help="postgresql://...; default: TRADER_DATABASE_URL")
        action.add_argument("--schema", default=None, help="PostgreSQL schema (default TRADER_STORE__SCHEMA)")
        add_env_file_argument(action)


def _document(row: LeaseRow | None) -> dict[str, object]:
    if row is None:
        return {"leader": None, "epoch": 0, "detail": "no engine has led on this database yet"}
    return {
        "leader": None if row.released else row.holder,
        "last_holder": row.holder,
        "epoch": row.epoch,
        "lease_secs": row.lease_secs,
        "lease_age_secs": round(row.age_secs, 3),
        "held_for_secs": round(row.held_for_secs, 3),
        "expired": row.released or row.age_secs > row.lease_secs,
        "released": row.released,
        "step_down_requested": row.step_down,
    }


def run(args: argparse.Namespace) -> int:
    if args.ha_command not in ("status", "step-down"):
        raise ConfigError("no action given; usage: trader ha status|step-down [--database-url URL] [--schema NAME]")
    settings = load_settings(dict(os.environ), dotenv=env_file(args))
    url = args.database_url or settings.run.store_url
    if sqlite_path(url) is not None:
        raise ConfigError("active/standby needs a PostgreSQL store (TRADER_DATABASE_URL=postgresql://...)")
    try:
        pg = PostgresSettings(url=url, schema=args.schema or settings.store.schema)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        if args.ha_command == "status":
            print(json.dumps(_document(trio.run(read_lease, pg))))
            return EXIT_OK
        before = trio.run(request_step_down, pg)
    except StoreError as exc:
        raise RuntimeFailure(f"database: {exc} (is the server up, and {DATABASE_FLAGS} right?)") from exc
    if before is None or before.released:
        print(json.dumps({"stepped_down": False, "detail": "no engine leads"}))
        return EXIT_NO_LEADER
    print(json.dumps({"stepped_down": True, "leader": before.holder, "epoch": before.epoch}))
    return EXIT_OK
