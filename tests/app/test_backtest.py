"""`trader backtest`: the engine's own core over a recording or the quotes data, deterministic, with its report."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from trader.app import backtest
from trader.app.backtest import (
    BacktestData,
    BacktestResult,
    SimData,
    _NoNetwork,
    quotes_data,
    recording_data,
    run_backtest,
    seed_everything,
    virtual_clock,
)
from trader.app.backtest_report import build_report, write_report
from trader.app.recording import recording_meta
from trader.infra.recording import RecordingWriter
from trader.settings import load_settings
from trader.testing.builders import make_market
from trader.venues.sim.venue import SimConfig

GAPS = {"gap_rate_per_min": "90", "gap_ttl_secs": "3", "dislocation_rate_per_min": "0"}
RECORDING = Path(__file__).resolve().parent.parent / "fixtures" / "recordings" / "sim-synthetic"


def _backtest(data: BacktestData | SimData, seed: int = 0) -> BacktestResult:
    settings = load_settings({}, dotenv=None)
    seed_everything(seed)
    return trio.run(run_backtest, settings, data, clock=virtual_clock())


def test_two_backtests_of_one_recording_give_identical_reports() -> None:
    first = build_report(_backtest(recording_data([RECORDING])))
    second = build_report(_backtest(recording_data([RECORDING])))
    summary = first["summary"]
    assert isinstance(summary, dict)
    assert summary["orders"] > 0  # it traded: the comparison says something
    assert summary["fills"] > 0
    assert summary["input"]["frames_read"] == summary["input"]["frames_delivered"] > 1000
    assert first == second


def test_the_replay_reads_the_runs_queues_as_trios_public_statistics_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay asks Trio's run queues directly whether every task waits (cheaper than `current_statistics()`,
    which stands in when a Trio version lays them out otherwise): both ways give the same backtest."""
    direct = build_report(_backtest(recording_data([RECORDING])))
    monkeypatch.setattr(backtest, "_idle_probe", partial(backtest._idle_probe, internals=False))
    public = build_report(_backtest(recording_data([RECORDING])))
    assert direct["summary"]["orders"] > 0  # type: ignore[index]
    assert public == direct


def test_the_backtest_trades_on_the_recorded_books() -> None:
    """Every fill is at a price the book offered at decision time or better, within the arbitrage's limits."""
    result = _backtest(recording_data([RECORDING]))
    report = build_report(result)
    fills = str(report["fills"]).splitlines()[1:]
    assert fills
    for line in fills:
        cells = line.split(",")
        side, price, at_decision = cells[5], cells[6], cells[11]
        if at_decision and side == "BUY":
            assert float(price) >= float(at_decision) - 1e-9  # a taker buy pays at least the best ask it saw


def _quotes_dir(tmp_path: Path, rows: list[str]) -> Path:
    directory = tmp_path / "quotes"
    directory.mkdir()
    header = '"ts","slug","category","bid","ask","mid","spread","volume24hr","segment"\n'
    (directory / "quotes-2026-07-10.csv.gz").write_bytes(gzip.compress((header + "\n".join(rows) + "\n").encode()))
    labels = '"slug","y","source"\n"m-one",1,"api"\n'
    (directory / "labels.csv.gz").write_bytes(gzip.compress(labels.encode()))
    return directory


def test_bad_quotes_are_counted_and_the_report_says_so(tmp_path: Path) -> None:
    directory = _quotes_dir(
        tmp_path,
        [
            '2026-07-10 20:00:00.000000,"m-one","sports",0.40,0.42,0.41,0.02,,1',
            '2026-07-10 20:02:00.000000,"m-one","sports",0.45,0.43,0.44,0.02,,1',  # bid above ask
            '2026-07-10 20:04:00.000000,"m-one","sports",,,,,,1',  # no quote at all
            '2026-07-10 20:06:00.000000,"m-one","sports",0.41,0.43,0.42,0.02,,1',
        ],
    )
    result = _backtest(quotes_data(directory))
    report = build_report(result)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["input"]["dropped"] == {"quote_crossed_or_locked": 1, "quote_empty": 1}
    assert summary["input"]["frames_read"] == 2
    assert "left input out" in str(report["html"])
    # the labelled market resolved on its outcome one poll after its last quote
    assert result.final_marks[next(iter(result.data.markets.values())).yes_token_id] == 1


def test_frames_of_a_market_missing_from_the_metadata_are_dropped(tmp_path: Path) -> None:
    known, unknown = make_market(), make_market(condition_id="0x" + "2" * 64, yes_token_id="7", no_token_id="8")
    writer = RecordingWriter(tmp_path, source="test", meta=recording_meta([known], []), now_ns=1)
    for n, market in enumerate((known, unknown, known), start=1):
        book = {
            "event_type": "book",
            "asset_id": market.yes_token_id,
            "market": market.condition_id,
            "bids": [{"price": "0.4", "size": "10"}],
            "asks": [{"price": "0.6", "size": "10"}],
        }
        writer.frame(n * 1_000_000_000, 1, n, json.dumps(book))
    writer.close(10**10)
    result = _backtest(recording_data([tmp_path]))
    assert result.data.dropped == {"market_not_in_metadata": 1}
    assert result.frames_in == 2


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _flatten(document: dict[str, object], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@pytest.mark.skipif(_chromium() is None, reason="no chromium on this machine (.ci/run installs it)")
def test_the_html_report_opens_in_a_headless_browser_and_shows_the_summary(tmp_path: Path) -> None:
    write_report(_backtest(recording_data([RECORDING])), tmp_path / "report")
    summary = _flatten(json.loads((tmp_path / "report" / "summary.json").read_text()))
    browser = subprocess.run(
        [
            str(_chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            (tmp_path / "report" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=25,
        check=True,
    )
    shown = dict(re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', browser.stdout))
    assert len(shown) >= 15
    assert "<svg" in browser.stdout
    for key, value in shown.items():
        assert summary[key] == value.replace("&amp;", "&"), key


@pytest.mark.timeout(120)  # three processes on two cores: ~10 s alone, several times that on a busy machine
def test_a_sweep_of_three_values_runs_in_parallel_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trader",
            "backtest",
            "--recording",
            str(RECORDING),
            "--out",
            str(tmp_path / "sweep"),
            "--param",
            "sum_to_100.min_edge_usd=0.005,0.01,0.05",
            "--jobs",
            "3",
            "--env-file",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout.splitlines()
    assert table[0].split()[:3] == ["sum_to_100.min_edge_usd", "orders", "fills"]
    assert [row.split()[0] for row in table[1:]] == ["0.005", "0.01", "0.05"]
    reports = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert reports == ["01-0.005", "02-0.01", "03-0.05"]
    params = {
        json.loads((tmp_path / "sweep" / r / "summary.json").read_text())["params"]["sum_to_100.min_edge_usd"]
        for r in reports
    }
    assert params == {"0.005", "0.01", "0.05"}
    rows = (tmp_path / "sweep" / "sweep.csv").read_text().splitlines()
    pid = rows[0].split(",").index("pid")
    assert len({row.split(",")[pid] for row in rows[1:]}) >= 2  # worker processes (the first may take two runs)


@pytest.mark.timeout(90)  # two backtests of a 2-minute scenario: ~6 s alone, 20 s on a busy machine
def test_a_sim_scenario_backtest_runs_on_the_virtual_clock_and_repeats_itself() -> None:
    def once() -> dict[str, object]:
        config = SimConfig(scenario="synthetic", markets=4, seed=5, scenario_params=dict(GAPS))
        return build_report(_backtest(SimData(config=config, duration_secs=40.0)))

    first, second = once(), once()
    summary = first["summary"]
    assert isinstance(summary, dict)
    assert summary["input"]["virtual_secs"] >= 40  # 40 s of the sim's time, in well under that of ours
    assert summary["input"]["frames_read"] > 100
    assert summary["orders"] > 0
    assert first == second


def test_quote_books_are_built_as_the_parser_reads_their_frames() -> None:
    """The quotes' books skip the JSON text: what they hand the books equals the parsed text, near 0 and 1 too."""
    from decimal import Decimal

    from trader.app.backtest import _book_frame, _book_parsed
    from trader.venues.polymarket.parse import parse_market_frame

    sizes = [Decimal(120), Decimal(300), Decimal(45), Decimal(80), Decimal(500)]
    ladders: dict[tuple[Decimal, Decimal], tuple[Decimal, ...]] = {}
    for tick in (Decimal("0.01"), Decimal("0.001")):
        market = make_market(tick_size=tick)
        ticks = dict.fromkeys(market.token_ids, tick)
        for bid, ask in [("0.45", "0.47"), ("0.01", "0.03"), ("0.97", "0.99"), (None, "0.5"), ("0.5", None)]:
            b, a = (None if bid is None else Decimal(bid)), (None if ask is None else Decimal(ask))
            expected = parse_market_frame(_book_frame(market, b, a, sizes), ticks)
            assert not expected.drops
            assert _book_parsed(market, b, a, sizes, ladders) == expected


async def test_a_backtest_reaches_no_network() -> None:
    async with httpx.AsyncClient(transport=_NoNetwork()) as http:
        with pytest.raises(httpx.ConnectError, match="a backtest reaches no network: GET https://gamma-api"):
            await http.get("https://gamma-api.polymarket.com/markets")
