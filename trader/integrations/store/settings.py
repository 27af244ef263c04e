"""`StoreSettings`: how the store behind `run.database_url` is opened and written (`TRADER_STORE__*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trader.config import check_positive_secs
from trader.errors import ConfigError

__all__ = ["StoreSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """`TRADER_STORE__*`: the store behind `run.database_url` (the PostgreSQL fields apply to `postgresql://` only).

    - `sqlite_synchronous` (NORMAL): SQLite's `synchronous` in WAL mode. NORMAL: a committed write survives the
      engine dying (crash, kill -9), not a power loss of the host; FULL adds an fsync to every commit (0.3 to 1 ms
      on the order path) so that it survives that too. The venue is the record of what was sent: the restart
      reconciliation finds orders and fills the store lost (see README, Records and events).
    - `schema` (none: the server's search_path): a PostgreSQL schema to create if missing and to work in.
    - `connect_timeout_secs` (5.0), `commit_timeout_secs` (2.0): one connection attempt; the shielded COMMIT.
    - `ping_interval_secs` (2.0): an idle connection is checked this often, so an outage is seen without a write.
    - `reconnect_initial_secs` (0.25), `reconnect_max_secs` (5.0): backoff while the server is down.
    - `flush_secs` (10.0): at exit, how long queued writes may take to land before they are given up (logged).
    - `intent_journal` (auto): where the order path's write-ahead goes first. An intent is one append to this file
      (~3 µs warm) and its database row is queued behind it; `trader run` puts whatever a crash left only in the file
      into the database at start. `auto`: `<database file>-intents` next to a SQLite file, none for PostgreSQL
      or in-memory SQLite; `off`: none, every intent is a database transaction before its order is sent; any other
      value: the journal's path. Same durability as the database with `sqlite_synchronous=NORMAL` (no fsync).
    The write-behind channel is the `store_sink` section (`TRADER_STORE_SINK__*`, a `SinkSettings`).
    """

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    schema: str | None = None
    connect_timeout_secs: float = 5.0
    commit_timeout_secs: float = 2.0
    ping_interval_secs: float = 2.0
    reconnect_initial_secs: float = 0.25
    reconnect_max_secs: float = 5.0
    flush_secs: float = 10.0
    intent_journal: str = "auto"

    def __post_init__(self) -> None:
        check_positive_secs(self, "flush_secs")
        if not self.intent_journal.strip():
            raise ConfigError("store.intent_journal: auto, off, or a file path")
