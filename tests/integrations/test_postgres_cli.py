"""`trader db migrate` on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
import trio

from trader.cli import main
from trader.commands import db
from trader.errors import ConfigError
from trader.integrations.store.base import load_migrations
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema

from .servers import pg_dsn


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    db.add_arguments(parser)
    return db.run(parser.parse_args(argv))


def test_migrating_a_sqlite_file_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.db"
    assert _main(["migrate", "--database-url", f"sqlite://{path}"]) == 0
    assert _main(["migrate", "--database-url", str(path)]) == 0  # again: nothing to do
    out = capsys.readouterr().out
    assert out.count(f"sqlite database {path} is at schema version {len(load_migrations())}") == 2
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(load_migrations()),)
    finally:
        conn.close()


def test_bad_arguments_are_config_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRADER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="TRADER_DATABASE_URL"):
        _main(["migrate"])
    with pytest.raises(ConfigError, match="postgresql://") as info:
        _main(["migrate", "--database-url", "mysql://u:pw@h/db"])
    assert "pw" not in str(info.value)
    with pytest.raises(ConfigError, match="PostgreSQL only"):
        _main(["migrate", "--database-url", "x.db", "--schema", "s"])
    with pytest.raises(ConfigError, match="schema"):
        _main(["migrate", "--database-url", "postgresql://h/db", "--schema", "Bad Name"])
    assert main(["db"]) == 2
    assert capsys.readouterr().err == (
        "trader: no action given; usage: trader db migrate [--database-url URL] [--schema NAME] [--env-file PATH]\n"
    )


def test_an_unreachable_server_exits_1_without_showing_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--database-url", "postgresql://u:hunter2@127.0.0.1:9/db"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("trader: database: cannot connect to postgresql://u:***@127.0.0.1:9/db")
    assert err.endswith("(is the server up, and --database-url or TRADER_DATABASE_URL right?)\n")
    assert "hunter2" not in err


def test_the_database_is_read_as_trader_run_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From `.env` too, and by either name: `trader db migrate` migrates the database `trader run` would use."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADER_DATABASE_URL", raising=False)
    Path(".env").write_text("TRADER_RUN__DATABASE_URL=sqlite:from-dotenv.db\n")
    assert main(["db", "migrate"]) == 0
    assert "sqlite database from-dotenv.db is at schema version" in capsys.readouterr().out


@pytest.mark.pg
def test_migrating_postgres_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = pg_dsn()
    schema = f"test_cli_{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("TRADER_DATABASE_URL", dsn)
    try:
        assert _main(["migrate", "--schema", schema]) == 0
        assert _main(["migrate", "--schema", schema]) == 0
    finally:
        trio.run(drop_postgres_schema, PostgresSettings(url=dsn, schema=schema))
    out = capsys.readouterr().out
    assert out.count(f"(schema {schema}) is at schema version {len(load_migrations())}") == 2


def test_the_db_command_is_registered() -> None:
    from trader.cli import COMMANDS

    assert COMMANDS["db"][0] == "trader.commands.db"
