from __future__ import annotations

from pathlib import Path

import pytest

from trader.cli import main
from trader.errors import ConfigError
from trader.integrations.store.urls import sqlite_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:trader.sqlite3", Path("trader.sqlite3")),
        ("sqlite:/var/lib/trader/t.db", Path("/var/lib/trader/t.db")),
        ("sqlite:///var/lib/trader/t.db", Path("/var/lib/trader/t.db")),
        ("sqlite:", Path("trader.sqlite3")),
        ("data/t.db", Path("data/t.db")),
        ("postgresql://postgres@127.0.0.1/test", None),
        ("postgres://postgres@127.0.0.1/test", None),
    ],
)
def test_every_command_reads_a_database_url_the_same_way(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'mysql'"):
        sqlite_path("mysql://root@localhost/x")


def test_db_migrate_with_a_sqlite_url_creates_the_named_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "x.db"
    assert main(["db", "migrate", "--database-url", f"sqlite:{target}"]) == 0
    assert target.is_file()
    assert not (tmp_path / f"sqlite:{target}").exists()
    assert "schema version" in capsys.readouterr().out
