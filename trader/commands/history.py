"""What `trader pnl`, `trader trades` and `trader report` share: the database they read, the date range, and the
history replayed from it (`trader.app.history`).

The database is the one `trader run` would use with the same settings (`--database-url`, else
TRADER_DATABASE_URL, else the default file of the mode and venue); a SQLite file must exist (reading never
creates one). `--since` and `--until` are UTC days, both included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

import trio

from trader.app.config import default_database_url
from trader.app.history import History, in_range, load_history, replay
from trader.commands.checks import DATABASE_FLAGS, add_env_file_argument, env_file
from trader.errors import ConfigError, RuntimeFailure
from trader.integrations.store import StoreError
from trader.integrations.store.open import open_store
from trader.integrations.store.urls import sqlite_path
from trader.settings import Settings, load_settings

__all__ = ["add_history_arguments", "read_history"]


def add_history_arguments(parser: argparse.ArgumentParser, *, csv: bool = True) -> None:
    parser.add_argument("--since", metavar="YYYY-MM-DD", type=_day, help="first UTC day to include")
    parser.add_argument("--until", metavar="YYYY-MM-DD", type=_day, help="last UTC day to include")
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... or sqlite:PATH; default: TRADER_DATABASE_URL, else the database `trader run` uses",
    )
    if csv:
        parser.add_argument("--csv", action="store_true", help="print CSV (a header line, then one row per line)")
    add_env_file_argument(parser)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def database_url(given: str | None, settings: Settings) -> str:
    url = given or settings.run.database_url or default_database_url(live=settings.run.live, venue=settings.run.venue)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise ConfigError(f"no database at {path}: give --database-url or TRADER_DATABASE_URL")
    return url


def read_history(args: argparse.Namespace) -> tuple[History, Settings]:
    """The history in `args`' date range, from the database the settings and `args` name."""
    if args.since is not None and args.until is not None and args.since > args.until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}")
    settings = load_settings(dict(os.environ), dotenv=env_file(args))
    url = database_url(args.database_url, settings)

    async def load() -> History:
        async with open_store(url, settings.store) as store:
            return replay(await load_history(store))

    try:
        history = trio.run(load)
    except StoreError as exc:
        raise RuntimeFailure(f"database: {exc} (is the server up, and {DATABASE_FLAGS} right?)") from exc
    return in_range(history, args.since, args.until), settings
