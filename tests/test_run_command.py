"""`trader run` as an operator runs it: a real process, real signals, against a `trader sim` process.

The engine runs in live mode against the sim "exactly as against Polymarket" (endpoint URLs from the environment), so
the sim's own records show what the engine left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from trader.venues.polymarket.rest import open_rest_client
from trader.venues.polymarket.signing import OrderSigner

TRADER = [sys.executable, "-m", "trader"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    env.update(extra)
    return env


@contextmanager
def sim_process(*params: str) -> Iterator[dict[str, str]]:
    args = [*TRADER, "sim", "--port", "0", "--markets", "4", "--seed", "3"]
    for param in params:
        args += ["--scenario-param", param]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), text=True)
    try:
        assert proc.stdout is not None
        urls: dict[str, str] = json.loads(proc.stdout.readline())
        yield urls
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung sim must not hang the suite
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _engine_env(urls: dict[str, str], key: str, db: Path) -> dict[str, str]:
    return _env(
        TRADER_ENDPOINTS__REST_URL=urls["rest"],
        TRADER_ENDPOINTS__WS_MARKET_URL=urls["ws_market"],
        TRADER_ENDPOINTS__WS_USER_URL=urls["ws_user"],
        TRADER_ENDPOINTS__GAMMA_URL=urls["gamma"],
        TRADER_PRIVATE_KEY=key,
        TRADER_CONFIRM_LIVE="yes",
        TRADER_DATABASE_URL=f"sqlite:{db}",
        TRADER_RUN__LOG_FORMAT="json",
        TRADER_RUN__DRAIN_SECS="3",
    )


def _wait_for_log(proc: subprocess.Popen[str], event: str, timeout: float) -> list[str]:
    """Read the engine's JSON log lines until one with `event`; all lines read so far."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if f'"event": "{event}"' in line:
            return lines
    raise AssertionError(f"no {event} within {timeout} s; last lines: {lines[-5:]}")


async def _open_orders_at_sim(rest_url: str, key: str) -> int:
    async with open_rest_client(rest_url, OrderSigner(key)) as rest:
        await rest.create_or_derive_api_key()
        return len(await rest.open_orders())


@pytest.mark.slow
def test_sigint_drains_and_exits_0_leaving_no_order_open_at_the_venue(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    with sim_process("gap_rate_per_min=90", "gap_ttl_secs=3") as urls:
        proc = subprocess.Popen(
            [*TRADER, "run", "--venue", "polymarket", "--live", "--http-port", "0"],
            env=_engine_env(urls, key, tmp_path / "t.sqlite3"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_log(proc, "order_filled", timeout=40)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=15)
            elapsed = time.monotonic() - sent
        finally:
            if proc.poll() is None:  # pragma: no cover
                proc.kill()
                proc.wait()
        assert proc.returncode == 0
        assert elapsed < 3 + 3 + 2  # drain deadline + cancel-all deadline + process exit
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["exit_reason"] == "signal"
        assert summary["mode"] == "live"
        assert summary["orders_submitted"] >= 1
        assert summary["open_orders_at_exit"] == 0
        assert trio.run(_open_orders_at_sim, urls["rest"], key) == 0


def test_live_mode_refuses_without_the_confirmation_variable(tmp_path: Path) -> None:
    env = _env(TRADER_PRIVATE_KEY="0x" + secrets.token_hex(32), TRADER_DATABASE_URL=f"sqlite:{tmp_path / 'x'}")
    result = subprocess.run(
        [*TRADER, "run", "--venue", "polymarket", "--live"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "TRADER_CONFIRM_LIVE=yes" in result.stderr
    assert env["TRADER_PRIVATE_KEY"][2:] not in result.stderr + result.stdout


def test_bad_settings_and_arguments_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [*TRADER, "run", "--duration", "1"],
        env=_env(TRADER_RISK__MAX_NOTIONL_USD="5"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "TRADER_RISK__MAX_NOTIONL_USD" in result.stderr
    result = subprocess.run([*TRADER, "run", "--duration", "-3"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "positive number of seconds" in result.stderr


def test_a_database_of_another_account_exits_2_naming_the_fix(tmp_path: Path) -> None:
    """Paper and live never share records: a live run on the paper database stops before trading, without a
    traceback, and says how to give it a database of its own."""
    database = f"sqlite:{tmp_path / 'paper.sqlite3'}"
    run = [*TRADER, "run", "--duration", "0.5", "--http-port", "0", "--markets", "1", "--database-url", database]
    paper = subprocess.run(run, env=_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert paper.returncode == 0, paper.stderr  # the paper run claims the database
    env = _env(TRADER_PRIVATE_KEY="0x" + secrets.token_hex(32), TRADER_CONFIRM_LIVE="yes")
    live = subprocess.run([*run, "--live"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert live.returncode == 2
    assert live.stderr.startswith(f"trader: {database} keeps the records of paper trading on sim, not of live")
    assert "Traceback" not in live.stderr
    assert live.stderr.rstrip().endswith("(unset, it uses sqlite:trader-live-sim.sqlite3).")
    assert live.stdout == ""  # no summary: it never ran


@pytest.mark.timeout(60)  # 6-10 s; the waits below fail it with a clear message before this would
def test_a_second_sigint_cuts_the_drain_short_exit_130_and_one_line(tmp_path: Path) -> None:
    """`trader run --venue sim` in its own process: Ctrl+C starts the drain; while it waits for an order in flight (the
    paper venue answers in 30 s, an order in doubt waits its 60 s grace), a second Ctrl+C ends the process at once,
    with exit status 130 and one line on stderr saying what it means."""
    env = _env(
        TRADER_RUN__LOG_FORMAT="json",
        TRADER_RUN__DRAIN_SECS="60",
        TRADER_PAPER__LATENCY_SECS="30",
        TRADER_ORDERS__UNKNOWN_GRACE_SECS="60",
        TRADER_SIM__PARAMS="gap_rate_per_min=120,gap_ttl_secs=5",
    )
    command = [*TRADER, "run", "--venue", "sim", "--markets", "4", "--http-port", "0", "--env-file", os.devnull]
    command += ["--database-url", f"sqlite:{tmp_path / 't.sqlite3'}"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_log(proc, "submit_outcome_unknown", timeout=20)  # an order in flight: the drain will wait for it
        proc.send_signal(signal.SIGINT)
        _wait_for_log(proc, "signal_received_draining", timeout=5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:  # pragma: no cover - a hung engine must not hang the suite
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert elapsed < 10  # cut short: the drain alone would have waited up to 60 s
    assert out == ""  # no summary: the run was aborted
    last = err.strip().splitlines()[-1]
    assert last == "trader: aborted by a second signal; resting orders may remain at the venue"
