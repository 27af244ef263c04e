"""Each operator mistake gives ONE line on stderr, `trader: <cause>: <fix>`, and its exit status (2 usage and
configuration, 1 a failure at run time, 130 interrupted; Ctrl+C stops `sim` and `watch` with 0), never a traceback
unless `--debug`. In-process where the command fails before Trio starts; as a process where the behaviour is the
process's (an error from inside Trio's nurseries, Ctrl+C)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trader import __version__
from trader.cli import explain, main, report
from trader.commands.run import for_the_operator
from trader.errors import ConfigError, RuntimeFailure
from trader.integrations.store.base import StoreError
from trader.settings import Settings

TRADER = [sys.executable, "-m", "trader"]
DATABASE_FIX = "(--database-url or TRADER_DATABASE_URL)"


def status_of(argv: list[str]) -> object:
    """`main`'s exit status, also when argparse ends the process itself (usage errors, `--version`)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize(
    ("argv", "status", "line"),
    [
        (
            ["run", "--database-url", "sqlite:nodir/t.db"],
            2,
            "trader: database sqlite:nodir/t.db: the directory nodir does not exist: create it, or choose another "
            f"place {DATABASE_FIX}",
        ),
        (
            ["run", "--database-url", "mysql://u:pw@h/db"],
            2,
            "trader: database URL: unsupported scheme 'mysql'; use sqlite:PATH or postgresql://...",
        ),
        (
            ["run", "--redis-url", "http://h:6379"],
            2,
            "trader: Redis URL has scheme 'http': expected redis://[:PASSWORD@]HOST[:PORT][/DB] "
            "(--redis-url or TRADER_REDIS_URL)",
        ),
        (
            ["run", "--redis-url", "redis://[::1"],
            2,
            "trader: Redis URL cannot be read: expected redis://[:PASSWORD@]HOST[:PORT][/DB] "
            "(--redis-url or TRADER_REDIS_URL)",
        ),
        (
            ["run", "--scenario", "nope"],
            2,
            "trader: unknown scenario 'nope' (--scenario or TRADER_SIM__SCENARIO): choose one of frames, quotes, "
            "sports, static, synthetic",
        ),
        (
            ["run", "--venue", "polymarket", "--seed", "3"],
            2,
            "trader: --seed is only for --venue sim (this run is --venue polymarket): remove it, or use --venue sim",
        ),
        (
            ["run", "--summary-json", "nodir/summary.json"],
            2,
            "trader: --summary-json nodir/summary.json: the directory nodir does not exist: create it, or choose "
            "another path",
        ),
        (
            ["run", "--duration", "-3"],
            2,
            "trader: argument --duration: expected a positive number of seconds, got '-3' (see `trader run --help`)",
        ),
        (
            ["db", "migrate", "--database-url", "sqlite:nodir/t.db"],
            2,
            "trader: database sqlite:nodir/t.db: the directory nodir does not exist: create it, or choose another "
            f"place {DATABASE_FIX}",
        ),
        (["order"], 2, "trader: no action given; usage: trader order sign < order.json"),
        (
            ["stop", "--url", "http://127.0.0.1:9"],
            1,
            "trader: cannot reach the engine at http://127.0.0.1:9/emergency-stop: all attempts to connect to "
            "127.0.0.1:9 failed (is `trader run` up? check --url)",
        ),
    ],
)
def test_a_mistake_is_one_line_and_its_exit_status(
    argv: list[str], status: int, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADER_ADMIN_TOKEN", "t")
    assert status_of(argv) == status
    assert one_line(capsys) == line
    assert not Path("trader.sqlite3").exists()  # found before anything started


@pytest.mark.parametrize("command", [["run"], ["stop"], ["reconcile"], ["flatten"], ["doctor"], ["db", "migrate"]])
def test_a_missing_env_file_given_explicitly_is_an_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--env-file", "prod.env"]) == 2
    assert one_line(capsys) == (
        "trader: --env-file prod.env: no such file (fix the path, or leave --env-file out to read ./.env)"
    )


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("TRADER_HTTP__PORT", "70000", "trader: TRADER_HTTP: port must be 0..65535 (0 picks a free one), got 70000"),
        (
            "TRADER_ENDPOINTS__REST_URL",
            "http://[::1",
            "trader: TRADER_ENDPOINTS: rest_url: must be a URL SCHEME://HOST[:PORT]... (a port in 0..65535), got "
            "'http://[::1'",
        ),
        (
            "TRADER_ENDPOINTS__WS_MARKET_URL",
            "wss://h:99999/ws",
            "trader: TRADER_ENDPOINTS: ws_market_url: must be a URL SCHEME://HOST[:PORT]... (a port in 0..65535), "
            "got 'wss://h:99999/ws'",
        ),
        (
            "TRADER_SLACK__WEBHOOK_URL",
            "hooks.slack.com/services/T0/B0/s3cr3t",
            "trader: TRADER_SLACK: webhook_url: must be a URL https://HOST[:PORT]... or http://HOST[:PORT]... "
            "(a port in 0..65535), got (not shown: a secret)",
        ),
    ],
)
def test_a_setting_that_could_never_work_is_one_line_before_anything_starts(
    name: str, value: str, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)  # each of these was a traceback from deep inside the engine
    assert main(["run", "--venue", "polymarket"]) == 2
    assert one_line(capsys) == line
    assert not Path("trader.sqlite3").exists()


def test_a_setting_name_in_the_wrong_case_is_named_with_its_spelling(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("trader_risk__max_order_notional_usd", "5")
    assert main(["run"]) == 2
    assert one_line(capsys) == (
        "trader: setting names are upper case: rename trader_risk__max_order_notional_usd -> "
        "TRADER_RISK__MAX_ORDER_NOTIONAL_USD"
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "what", "flags"),
    [(["run", "--http-port"], "HTTP", "--http-port or TRADER_HTTP__PORT"), (["sim", "--port"], "the sim's", "--port")],
)
def test_a_port_in_use_is_found_before_anything_starts(
    argv: list[str], what: str, flags: str, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, str(taken_port)]) == 2
    assert one_line(capsys) == (
        f"trader: {what} port {taken_port} on 127.0.0.1 is already in use (another trader?): stop what holds it, "
        f"or choose another port with {flags} (0 picks a free one)"
    )


def test_a_read_only_directory_for_the_sqlite_file_is_found_before_anything_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("ro").mkdir()
    real_access = os.access  # root may write anywhere: make the directory read-only as it would be for others
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != Path("ro") and real_access(path, mode))
    assert main(["run", "--database-url", "sqlite:ro/t.db"]) == 2
    assert one_line(capsys) == (
        "trader: database sqlite:ro/t.db: the directory ro is not writable: make it writable, or choose another "
        f"place {DATABASE_FIX}"
    )


def test_debug_adds_the_traceback_and_the_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "run", "--scenario", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert err.splitlines()[-1].startswith("trader: unknown scenario 'nope'")
    assert main(["run", "--debug", "--scenario", "nope"]) == 2  # after the command too
    assert "Traceback" in capsys.readouterr().err
    assert status_of(["--version"]) == 0
    assert capsys.readouterr().out == f"trader {__version__}\n"


def test_errors_inside_exception_groups_are_explained_and_bugs_keep_their_traceback() -> None:
    store_down = StoreError("cannot connect")
    assert explain(BaseExceptionGroup("n", [ExceptionGroup("m", [store_down])])) == (1, "cannot connect")
    assert explain(BaseExceptionGroup("n", [KeyboardInterrupt(), store_down])) == (130, "interrupted")
    assert explain(ExceptionGroup("n", [ConfigError("a"), StoreError("b")])) == (2, "a; b")
    assert explain(ExceptionGroup("n", [ValueError("bug"), StoreError("b")])) is None
    assert explain(OSError(errno.ENOSPC, "No space left on device", "s.json")) == (
        1,
        "s.json: No space left on device",
    )
    with pytest.raises(ValueError, match="bug"):
        report(ValueError("bug"), command="run", debug=False)
    assert report(KeyboardInterrupt(), command="watch", debug=False) == 0  # Ctrl+C is how `watch` stops


def test_what_stops_the_engine_is_told_the_operator_with_the_fix() -> None:
    """The HTTP port taken between the early check and the server's own bind; the database or the venue failing at
    start (from inside the engine's nurseries)."""
    settings = Settings()
    taken = for_the_operator(OSError(errno.EADDRINUSE, "Address already in use"), settings)
    assert isinstance(taken, ConfigError)
    assert str(taken).startswith("HTTP port 8080 on 127.0.0.1 is already in use")
    down = for_the_operator(StoreError("cannot connect to postgresql://h/db"), settings)
    assert isinstance(down, RuntimeFailure)
    assert str(down) == (
        "database: cannot connect to postgresql://h/db (is the server up, and --database-url or TRADER_DATABASE_URL "
        "right?)"
    )
    bug = ValueError("bug")
    assert for_the_operator(bug, settings) is bug


# -- as a process ---------------------------------------------------------------------------------------------------


def test_an_unreachable_database_at_start_is_one_line_exit_1(tmp_path: Path) -> None:
    """The error is raised inside the engine's nurseries: it reaches the CLI inside exception groups."""
    result = subprocess.run(
        [*TRADER, "run", "--http-port", "0", "--database-url", "postgresql://trader@127.0.0.1:9/trader"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.fullmatch(
        r"trader: database: cannot connect to postgresql://trader@127\.0\.0\.1:9/trader: .+ \(is the server up, "
        r"and --database-url or TRADER_DATABASE_URL right\?\)",
        result.stderr.splitlines()[-1],
    )
    assert result.stdout == ""


def test_an_unreachable_venue_at_start_is_one_line_exit_1(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRADER_ENDPOINTS__GAMMA_URL": "http://127.0.0.1:9",
        "TRADER_ENDPOINTS__WS_MARKET_URL": "ws://127.0.0.1:9",
        "TRADER_SUPERVISOR__DISCOVERY_TIMEOUT_SECS": "1",
        "TRADER_RUN__LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [*TRADER, "run", "--venue", "polymarket", "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "trader: venue: market discovery: no answer from Gamma at http://127.0.0.1:9 within 1 s "
        "(TRADER_SUPERVISOR__DISCOVERY_TIMEOUT_SECS) (is the venue up, and TRADER_ENDPOINTS__* right?)\n"
    )


def _interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:  # pragma: no cover - a hung process must not hang the suite
            process.kill()
            process.communicate()  # and its pipes are closed, not left to warn in a later test
    return process.returncode, err


def test_ctrl_c_stops_sim_and_watch_with_exit_0_and_no_traceback(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [*TRADER, "sim", "--markets", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert sim.stdout is not None
        urls = json.loads(sim.stdout.readline())
        slug = httpx.get(f"{urls['gamma']}/markets", params={"limit": 1}).json()[0]["slug"]
        watch = subprocess.Popen(
            [*TRADER, "watch", "--ws-url", urls["ws_market"], "--gamma-url", urls["gamma"], "--slug", slug],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        assert watch.stdout is not None
        deadline = time.monotonic() + 20
        while "connections" not in watch.stdout.readline():  # the first screen: it is watching
            assert time.monotonic() < deadline
        assert _interrupt(watch) == (0, "")
    finally:
        status, err = _interrupt(sim)
    assert status == 0
    assert "Traceback" not in err
