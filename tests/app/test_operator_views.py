"""What a person sees of a running engine: `/status` (short, `?full=1` for everything), the halt reason and who
halted, refusals by reason, markets by name, the console's status line, `trader status` and the exit summary.

The engine runs against the in-process simulated venue over real sockets (as in tests/engine/test_app.py); the
status line's schedule is checked on trio's MockClock.
"""

from __future__ import annotations

import json
import socket
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
import trio
import trio.testing
from structlog.testing import capture_logs

from tests.engine.test_app import TOKEN, running, settings, wait_for
from trader import cli
from trader.app.control import log_status_lines
from trader.infra.names import NAMES

OPERATOR = "the operator (HTTP /emergency-stop)"


async def test_a_status_line_every_period_on_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[float] = []

    def status_line() -> dict[str, object]:
        seen.append(trio.current_time())
        return {"state": "ACTIVE", "fills": len(seen)}

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log_status_lines, status_line, 10.0)
            await trio.sleep(35)
            nursery.cancel_scope.cancel()
    assert seen == [10.0, 20.0, 30.0]
    assert [(e["event"], e["state"], e["fills"]) for e in logs] == [("status", "ACTIVE", n) for n in (1, 2, 3)]


@pytest.mark.timeout(120)  # end to end: a few seconds, more under load
async def test_status_is_short_names_markets_and_says_why_trading_is_halted_and_by_whom(tmp_path: Path) -> None:
    config = settings(tmp_path, status_line_secs=0.5)
    with capture_logs() as logs:
        async with running(config) as run:
            engine = run.engine
            execution = engine.execution  # type: ignore[attr-defined]
            await wait_for(lambda: execution.statistics().orders.fills >= 4)

            brief = await run.http.get("/status")
            full = await run.http.get("/status?full=1")
            status = brief.json()
            assert len(brief.content) < 8_000 < len(full.content)  # small enough to read; everything is still there
            assert {"discovery", "breakers", "strategies", "market_data"} <= set(full.json())
            assert status["trading_state"] == "ACTIVE"
            assert status["halt"] is None
            assert status["full"] == "/status?full=1"
            assert status["positions"], "the sim's gaps were traded"
            for position in status["positions"]:  # by name: the question and the outcome
                assert position["market"] == NAMES.name(position["token_id"]) is not None
                assert " · " in position["market"]

            stopped = await run.http.post(
                "/emergency-stop", headers={"Authorization": f"Bearer {TOKEN}"}, json={"reason": "drill"}
            )
            assert stopped.status_code == 200
            await wait_for(lambda: execution.statistics().intents_denied.get("TRADING_HALTED", 0) >= 1)
            status = (await run.http.get("/status")).json()
            assert status["trading_state"] == "HALTED"
            halt = status["halt"]
            assert (halt["state"], halt["reason"], halt["by"]) == ("HALTED", "drill", OPERATOR)
            assert "trader stop --resume" in halt["what_to_do"]
            assert status["refusals"]["denied"]["TRADING_HALTED"] >= 1

            line = engine.control.status_line()  # type: ignore[attr-defined]
            assert line["state"] == "HALTED"
            assert line["halt"] == f"drill, by {OPERATOR}"
            assert line["refusals"]["TRADING_HALTED"] >= 1
            assert str(line["books"]).endswith(" fresh")
            assert line["fills"] == execution.statistics().orders.fills

            shown = await trio.run_process(
                [sys.executable, "-m", "trader", "status", "--url", engine.http_url],  # type: ignore[attr-defined]
                capture_stdout=True,
                capture_stderr=True,
            )
            text = shown.stdout.decode()
            assert "· HALTED" in text
            assert f"drill, by {OPERATOR}" in text
            assert "→ `trader stop --resume`" in text
            assert "denied by the risk gate: " in text
            assert "TRADING_HALTED" in text
            assert status["positions"][0]["market"] in text
            as_json = await trio.run_process(
                [sys.executable, "-m", "trader", "status", "--json", "--url", engine.http_url],  # type: ignore[attr-defined]
                capture_stdout=True,
            )
            assert json.loads(as_json.stdout)["halt"]["reason"] == "drill"
    lines = [e for e in logs if e["event"] == "status"]
    assert lines, "the status line is logged while the engine runs"
    assert {"state", "equity", "cash", "locked", "realized_pnl", "unrealized_pnl", "fills", "refusals", "books"} <= set(
        lines[-1]
    )

    (summary,) = run.result
    assert summary.halt is not None
    assert (summary.halt["reason"], summary.halt["by"]) == ("drill", OPERATOR)
    assert summary.refusals["denied"]["TRADING_HALTED"] >= 1
    assert all(p["market"] for p in summary.positions.values())
    text = summary.to_text()
    assert "denied by the risk gate: " in text
    assert "TRADING_HALTED" in text
    assert f"HALTED since {summary.halt['since']}: drill, by {OPERATOR}" in text
    held = [p["market"] for p in summary.positions.values() if Decimal(p["quantity"])]
    assert held
    assert all(name in text for name in held)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_trader_status_with_no_engine_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    port = _free_port()
    monkeypatch.setenv("TRADER_HTTP__PORT", str(port))  # the engine's port from the settings, as `trader run` reads it
    monkeypatch.delenv("TRADER_HTTP_URL", raising=False)
    assert cli.main(["status"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"trader: no engine answers at http://127.0.0.1:{port} ")
    assert "is `trader run` up?" in err
    structlog.reset_defaults()


def test_trader_status_cannot_guess_a_port_the_engine_picked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADER_HTTP__PORT", "0")
    monkeypatch.delenv("TRADER_HTTP_URL", raising=False)
    assert cli.main(["status"]) == 2
    assert "give its address with --url" in capsys.readouterr().err
