"""`trader db migrate`: bring a database's schema up to this code's version, then exit.

    trader db migrate                                   # the database named by TRADER_DATABASE_URL
    trader db migrate --database-url postgresql://trader@db:5432/trader [--schema trader]
    trader db migrate --database-url sqlite:/var/lib/trader/trader.db   # or sqlite:///abs/path, or a plain path

The same versioned migrations (`trader/integrations/store/migrations/`) serve SQLite and PostgreSQL; each applied
one is recorded with its checksum, and a database that is newer than this code, or whose applied migration was
edited, is refused. `trader run` migrates at start too; this command is for deploys that migrate first.
Prefer TRADER_DATABASE_URL to --database-url when the URL holds a password (command lines are visible to `ps`).

Exit status: 0 migrated (or already current), 1 the database refused or could not be reached, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

import trio

from trader.errors import ConfigError
from trader.integrations.store import StoreError, open_sqlite_store
from trader.integrations.store.postgres import PostgresSettings, migrate_postgres, redact_url
from trader.integrations.store.urls import sqlite_path

EXIT_OK = 0
EXIT_STORE_ERROR = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    migrate = sub.add_parser("migrate", help="apply the schema migrations this code ships, then exit")
    migrate.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... or sqlite:PATH (or a file path); default: TRADER_DATABASE_URL",
    )
    migrate.add_argument("--schema", default=None, help="PostgreSQL schema to work in (created if missing)")


async def _migrate(url: str, schema: str | None) -> str:
    path = sqlite_path(url)
    if path is not None:
        if schema is not None:
            raise ConfigError("--schema applies to PostgreSQL only")
        async with open_sqlite_store(path) as store:
            return f"sqlite database {path} is at schema version {store.statistics().schema_version}"
    try:
        settings = PostgresSettings(url=url, schema=schema)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    version = await migrate_postgres(settings)
    where = redact_url(url) + (f" (schema {schema})" if schema else "")
    return f"postgresql database {where} is at schema version {version}"


def run(args: argparse.Namespace) -> int:
    if args.db_command != "migrate":
        print("usage: trader db migrate [--database-url URL] [--schema NAME]", file=sys.stderr)
        return 2
    url = args.database_url or os.environ.get("TRADER_DATABASE_URL")
    if not url:
        raise ConfigError("no database: pass --database-url or set TRADER_DATABASE_URL")
    try:
        message = trio.run(_migrate, url, args.schema)
    except StoreError as exc:
        print(f"trader db migrate: {exc}", file=sys.stderr)
        return EXIT_STORE_ERROR
    print(message)
    return EXIT_OK
