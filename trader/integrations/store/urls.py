"""Database URLs, read the same way by every command: `sqlite:PATH` (also `sqlite:///ABSOLUTE/PATH`), a plain file
path, or `postgresql://...`."""

from __future__ import annotations

from pathlib import Path

from trader.errors import ConfigError

DEFAULT_SQLITE_FILE = "trader.sqlite3"


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path | None:
    """The SQLite file a URL names, or None for a PostgreSQL URL; `ConfigError` for any other scheme."""
    if url.startswith("sqlite:"):
        rest = url.removeprefix("sqlite:")
        rest = rest.removeprefix("//")  # sqlite:///abs/path -> /abs/path
        return Path(rest or DEFAULT_SQLITE_FILE)
    if is_postgres_url(url):
        return None
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"database URL: unsupported scheme {scheme!r}; use sqlite:PATH or postgresql://...")
    return Path(url)
