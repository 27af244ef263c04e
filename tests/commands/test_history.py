"""`trader pnl`, `trader trades` and `trader report` on a store with known trades: realized PnL at average cost,
merges counted, FAILED trades left out, date ranges, CSV, and a self-contained report."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D
from pathlib import Path

import pytest
import trio

from trader.cli import main
from trader.domain.enums import Liquidity, TradeStatus
from trader.domain.numbers import Side
from trader.integrations.store.base import CapitalOpRecord, CapitalOpState, EquitySample, OrderRecord, TradeRecord
from trader.integrations.store.sqlite import open_sqlite_store
from trader.testing import make_market, make_order_record

DAY1 = int(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
DAY2 = int(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
RATES = make_market(1, question="Will the central bank cut rates?")
ELECTION = make_market(2, question="Who wins the election?")


def _order(order_id: str, strategy: str, token_id: str, side: Side) -> OrderRecord:
    return make_order_record(order_id, strategy=strategy, condition_id=None, token_id=token_id, side=side)


def _trade(
    ids: tuple[str, str],
    token_id: str,
    side: Side,
    amounts: tuple[str, str, str],
    *,
    ts: int = DAY1,
    status: TradeStatus = TradeStatus.CONFIRMED,
) -> TradeRecord:
    """A trade of (trade id, order id), at (price, size, fee)."""
    (trade_id, order_id), (price, size, fee) = ids, amounts
    return TradeRecord(
        trade_id=trade_id,
        order_id=order_id,
        client_order_id=None,
        token_id=token_id,
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        liquidity=Liquidity.TAKER,
        status=status,
        match_time_ns=ts,
        updated_at_ns=ts,
    )


async def _fill_store(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        for market in (RATES, ELECTION):
            await store.upsert_market(market, ts_ns=DAY1)
        orders = [
            _order("o1", "maker", RATES.yes_token_id, Side.BUY),
            _order("o2", "maker", RATES.yes_token_id, Side.SELL),
            _order("o3", "sum_to_100", ELECTION.yes_token_id, Side.BUY),
            _order("o4", "sum_to_100", ELECTION.no_token_id, Side.BUY),
        ]
        for order in orders:
            await store.record_order(order)
        # rates: buy 10 at 0.40 (fee 0.01) on day 1, sell them at 0.50 (fee 0.02) on day 2: +0.97
        await store.record_trade(_trade(("t1", "o1"), RATES.yes_token_id, Side.BUY, ("0.40", "10", "0.01")))
        await store.record_trade(
            _trade(
                ("t2", "o2"), RATES.yes_token_id, Side.SELL, ("0.50", "10", "0.02"), ts=DAY2, status=TradeStatus.MINED
            )
        )
        # election: a set of 5 for 0.30 + 0.60, merged for 5 on day 2: +0.50; a FAILED fill never counts
        await store.record_trade(_trade(("t3", "o3"), ELECTION.yes_token_id, Side.BUY, ("0.30", "5", "0"), ts=DAY2))
        await store.record_trade(_trade(("t4", "o4"), ELECTION.no_token_id, Side.BUY, ("0.60", "5", "0"), ts=DAY2))
        await store.record_trade(
            _trade(
                ("t5", "o3"), ELECTION.yes_token_id, Side.BUY, ("0.10", "100", "0"), ts=DAY2, status=TradeStatus.FAILED
            )
        )
        for hour, equity in enumerate(("1000", "998.5", "1001.47")):
            await store.record_equity(
                EquitySample(
                    ts_ns=DAY1 + hour * 3_600_000_000_000,
                    equity=D(equity),
                    cash=D(equity),
                    positions_value=D(0),
                    realized_pnl=D(equity) - 1000,
                    unrealized_pnl=D(0),
                )
            )
        await store.record_capital_op(
            CapitalOpRecord(
                op_id="m1",
                kind="MERGE",
                condition_id=ELECTION.condition_id,
                neg_risk=False,
                yes_token_id=ELECTION.yes_token_id,
                no_token_id=ELECTION.no_token_id,
                yes_amount=D(5),
                no_amount=D(5),
                payout=D(5),
                state=CapitalOpState.CONFIRMED,
                created_at_ns=DAY2 + 1,
                updated_at_ns=DAY2 + 2,
            )
        )


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "history.sqlite3"
    trio.run(_fill_store, path)
    return f"sqlite:{path}"


def _csv(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_pnl_by_day_and_market_at_average_cost_with_merges(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pnl", "--database-url", database, "--csv"]) == 0
    rows = {(r["group"], r["key"]): r for r in _csv(capsys)}
    assert D(rows["day", "2026-12-01"]["realized_pnl"]) == 0
    assert D(rows["day", "2026-12-02"]["realized_pnl"]) == D("1.47")
    assert D(rows["market", "Will the central bank cut rates?"]["realized_pnl"]) == D("0.97")
    assert D(rows["market", "Who wins the election?"]["realized_pnl"]) == D("0.50")
    assert rows["day", "2026-12-02"]["fills"] == "3"  # the FAILED one is not a fill
    assert D(rows["day", "2026-12-01"]["fees"]) == D("0.01")

    assert main(["pnl", "--database-url", database, "--since", "2026-12-02"]) == 0
    out = capsys.readouterr().out
    assert "2026-12-01" not in out
    assert "total realized PnL 1.47 USD" in out


def test_trades_lists_fills_with_names_fees_and_settlement(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trades", "--database-url", database, "--csv", "--until", "2026-12-02"]) == 0
    rows = _csv(capsys)
    assert [r["trade_id"] for r in rows] == ["t1", "t2", "t3", "t4"]
    sell = rows[1]
    assert (sell["market"], sell["outcome"], sell["side"], sell["status"]) == (
        "Will the central bank cut rates?",
        "Yes",
        "SELL",
        "MINED",
    )
    assert (D(sell["price"]), D(sell["fee"]), D(sell["realized_pnl"]), sell["strategy"]) == (
        D("0.50"),
        D("0.02"),
        D("0.97"),
        "maker",
    )
    assert main(["trades", "--database-url", database, "--until", "2026-11-30"]) == 0
    assert "no fills" in capsys.readouterr().out


def test_report_is_one_self_contained_html_file(database: str, tmp_path: Path) -> None:
    output = tmp_path / "report.html"
    assert main(["report", "--database-url", database, "-o", str(output)]) == 0
    html = output.read_text()
    assert html.count("<svg") == 3  # the equity curve, daily PnL, per strategy
    assert "equity 1,000.00 to 1,001.47 USD (1.47), 3 samples" in html
    assert "-1.50 USD" in html  # the drawdown's depth
    for text in ("sum_to_100", "maker", "Who wins the election?", "2026-12-02", "1.47"):
        assert text in html
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_mistakes_are_one_line(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pnl", "--database-url", database, "--since", "2026-12-03", "--until", "2026-12-01"]) == 2
    assert main(["trades", "--database-url", f"sqlite:{tmp_path / 'none.sqlite3'}"]) == 2
    assert main(["report", "--database-url", database, "-o", str(tmp_path / "no" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["pnl", "--since", "yesterday"])
    assert exit_.value.code == 2
