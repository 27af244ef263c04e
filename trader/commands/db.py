"""`trader db migrate`: bring a database's schema up to this code's version, then exit.

    trader db migrate                                   # the database of TRADER_DATABASE_URL (environment or .env)
    trader db migrate --database-url postgresql://trader@db:5432/trader [--schema trader]
    trader db migrate --database-url sqlite:/var/lib/trader/trader.db   # or sqlite:///abs/path, or a plain path

The same versioned migrations (`trader/integrations/store/migrations/`) serve SQLite and PostgreSQL; each applied
one is recorded with its checksum, and a database that is newer than this code, or whose applied migration was
edited, is refused. `trader run` migrates at start too; this command is for deploys that migrate first.
Prefer TRADER_DATABASE_URL to --database-url when the URL holds a password (command lines are visible to `ps`).
The settings are read as `trader run` reads them (environment and `.env`, the same names and checks), so the
database and the schema (`TRADER_STORE__SCHEMA`) are the ones `trader run` would use; unlike `trader run`, this
command will not default to `sqlite:trader.sqlite3`: name the database.

Exit status: 0 migrated (or already current), 1 the database refused or could not be reached, 2 bad arguments or
settings (a SQLite file that cannot be written there is one).
"""

from __future__ import annotations

import argparse
import os

import trio

from trader.commands.checks import DATABASE_FLAGS, add_env_file_argument, check_sqlite_path, env_file
from trader.config import merged_environment
from trader.errors import ConfigError, RuntimeFailure
from trader.integrations.store import StoreError, open_sqlite_store
from trader.integrations.store.postgres import PostgresSettings, migrate_postgres, redact_url
from trader.integrations.store.urls import sqlite_path
from trader.settings import load_settings

#: The variables that name the database (the short one and the section's own).
DATABASE_VARIABLES = ("TRADER_DATABASE_URL", "TRADER_RUN__DATABASE_URL")

EXIT_OK = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    migrate = sub.add_parser("migrate", help="apply the schema migrations this code ships, then exit")
    migrate.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... or sqlite:PATH (or a file path); default: TRADER_DATABASE_URL",
    )
    migrate.add_argument(
        "--schema", default=None, help="PostgreSQL schema to work in (created if missing; default TRADER_STORE__SCHEMA)"
    )
    add_env_file_argument(migrate)


async def _migrate(url: str, schema: str | None) -> str:
    path = sqlite_path(url)
    if path is not None:
        if schema is not None:
            raise ConfigError("--schema applies to PostgreSQL only")
        check_sqlite_path(path)
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
        raise ConfigError(
            "no action given; usage: trader db migrate [--database-url URL] [--schema NAME] [--env-file PATH]"
        )
    environ, dotenv = dict(os.environ), env_file(args)
    settings = load_settings(environ, dotenv=dotenv)  # the names and values checked as for `trader run`
    named = any(name in merged_environment(environ, dotenv) for name in DATABASE_VARIABLES)
    url = args.database_url or (settings.run.database_url if named else None)
    if not url:
        raise ConfigError("no database: pass --database-url or set TRADER_DATABASE_URL")
    schema = args.schema
    if schema is None and sqlite_path(url) is None:  # TRADER_STORE__SCHEMA is PostgreSQL's, as for `trader run`
        schema = settings.store.schema
    try:
        message = trio.run(_migrate, url, schema)
    except StoreError as exc:
        raise RuntimeFailure(f"database: {exc} (is the server up, and {DATABASE_FLAGS} right?)") from exc
    print(message)
    return EXIT_OK
