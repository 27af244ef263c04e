"""`trader record` and `trader backtest` as a user runs them (in-process), and their mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trader.cli import main
from trader.commands import backtest
from trader.commands.backtest import Job, parse_params, run_job
from trader.errors import ConfigError
from trader.infra.recording import Frame, read_recording

RECORDING = Path(__file__).resolve().parent.parent / "fixtures" / "recordings" / "sim-synthetic"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands set the process's logging up; the tests leave it as the suite has it."""
    monkeypatch.setattr("trader.commands.record.configure_logging", lambda **_: None)
    monkeypatch.setattr("trader.infra.logging.configure_logging", lambda **_: None)  # a backtest job's


@pytest.mark.timeout(60)
def test_record_writes_a_recording_and_prints_its_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec"
    code = main(
        ["record", "--venue", "sim", "--markets", "2", "--out", str(out), "--duration", "2", "--env-file", "/dev/null"]
    )
    assert code == 0
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert totals["frames"] > 0
    assert totals["gaps"] == 0
    frames = [r for _m, r in read_recording([out]) if isinstance(r, Frame)]
    assert len(frames) == totals["frames"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["record", "--out", "x", "--max-file-mb", "10", "--max-total-mb", "5"], "--max-total-mb"),
        (["record", "--out", "x", "--venue", "polymarket", "--markets", "3"], "only for --venue sim"),
        (["backtest", "--recording", "missing-dir"], "no such file"),
        (["backtest", "--recording", str(RECORDING), "--param", "nodot=1"], "SECTION.KEY"),
        (["backtest", "--recording", str(RECORDING), "--param", "sum_to_100.no_such_key=1"], "NO_SUCH_KEY"),
        (["backtest", "--scenario", "nonesuch"], "unknown scenario"),
        (["backtest", "--quotes", str(RECORDING)], "no quotes-*.csv.gz files"),
        (["backtest", "--quotes", "--levels", "0"], "--levels must be within 1..50"),
        (["backtest", "--quotes", "--max-markets", "0"], "--max-markets must be at least 1"),
        (["backtest", "--scenario", "synthetic", "--markets", "0"], "--markets must be at least 1"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--env-file", "/dev/null"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


@pytest.mark.parametrize("command", [["record", "--venue", "sim"], ["backtest", "--recording", str(RECORDING)]])
def test_an_output_directory_that_cannot_be_made_is_a_usage_error_found_before_the_run(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out"
    assert main([*command, "--out", str(out), "--env-file", "/dev/null"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran: no totals, no report
    err = captured.err.strip().splitlines()
    assert len(err) == 1
    assert f"--out {out}: cannot create it" in err[0]


def test_a_backtest_job_writes_its_report(tmp_path: Path) -> None:
    job = Job(
        index=1,
        env={"TRADER_SUM_TO_100__MIN_EDGE_USD": "0.02"},
        params={"sum_to_100.min_edge_usd": "0.02"},
        recording=[str(RECORDING)],
        quotes=None,
        scenario=None,
        scenario_params=[],
        markets=8,
        duration=1.0,
        slugs=[],
        max_markets=None,
        levels=5,
        seed=0,
        out=str(tmp_path / "report"),
    )
    row = run_job(job)
    assert row["frames"] == 1349
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "fills.csv",
        "orders.csv",
        "report.html",
        "summary.json",
    ]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["params"] == {"sum_to_100.min_edge_usd": "0.02", "seed": "0"}
    assert summary["orders"] == row["orders"]


def test_params_name_their_setting() -> None:
    assert parse_params(["sum_to_100.min_edge_usd=0.005, 0.01"]) == [
        ("sum_to_100.min_edge_usd", "TRADER_SUM_TO_100__MIN_EDGE_USD", ["0.005", "0.01"])
    ]
    with pytest.raises(ConfigError):
        parse_params(["sum_to_100.min_edge_usd="])
    assert "0.01" in backtest._table(
        [
            {
                "params": {"k": "0.01"},
                "orders": 1,
                "fills": 1,
                "fill_ratio": "1",
                "pnl": "0",
                "max_drawdown": "0",
                "dropped": 0,
                "wall_secs": 1.0,
            }
        ],
        ["k"],
    )
