"""A backtest's report directory: `summary.json`, `orders.csv`, `fills.csv` and a self-contained `report.html`.

Everything here is a function of the backtest's result alone, with times as the data's own (the recorded receive
times, or the quotes' timestamps) and order ids numbered in the order the orders were made (`o1`, `o2`, ...; the
engine's ids carry a per-run session): two backtests of the same input, settings and seed write the same bytes.

The summary holds the engine's exit summary (`RunSummary`, as `trader run` prints it) under `engine`, and the
backtest's own accounting: the input (frames read, delivered, dropped by reason, gaps, notes), PnL per strategy and
per market, opportunities seen vs taken vs filled, fill ratio and slippage against the book at decision time,
refusals by reason. The HTML page shows the same numbers (the test reads them back) with the equity curve and its
drawdown and bar charts from `trader.app.charts` (the charts of the operator's report).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path

from trader.app.backtest import BacktestResult
from trader.app.charts import bar_chart, line_chart
from trader.domain.events import OrderFilled, RiskRejected
from trader.domain.numbers import Side

__all__ = ["build_report", "write_report"]

_ZERO = Decimal(0)


def _iso(start_ns: int, secs: float) -> str:
    return datetime.fromtimestamp(start_ns / 1e9 + secs, tz=UTC).isoformat(timespec="milliseconds")


def _ids(result: BacktestResult) -> dict[str, str]:
    ids: dict[str, str] = {}
    for _at, event in result.events:
        cid = getattr(event, "client_order_id", None)
        if isinstance(cid, str) and cid not in ids:
            ids[cid] = f"o{len(ids) + 1}"
    return ids


def build_report(result: BacktestResult, params: Mapping[str, str] | None = None) -> dict[str, object]:
    """The report's documents: `summary` (JSON-ready), `orders` and `fills` (CSV text), `html`."""
    ids = _ids(result)
    store = result.store
    start_ns = result.data.start_ns
    by_cid_record = {r.client_order_id: r for r in store.intents.values()}
    fills_rows: list[list[str]] = []
    pnl_market: dict[str, Decimal] = {}
    slippage_total = _ZERO
    slippage_shares = _ZERO
    filled_orders: set[str] = set()
    refusals: Counter[str] = Counter()
    for at, event in result.events:
        if isinstance(event, RiskRejected):
            refusals[event.reason] += 1
            continue
        if not isinstance(event, OrderFilled):
            continue
        intent = by_cid_record.get(event.client_order_id)
        strategy = intent.strategy if intent is not None else ""
        market = result.markets_by_token.get(event.token_id)
        decision = result.decisions.get(event.client_order_id)
        reference: Decimal | None = None
        if isinstance(decision, tuple):
            reference = decision[1] if event.side is Side.BUY else decision[0]
        slip = _ZERO
        if reference is not None:
            slip = (event.price - reference) if event.side is Side.BUY else (reference - event.price)
            slippage_total += slip * event.size
            slippage_shares += event.size
        filled_orders.add(event.client_order_id)
        fills_rows.append(
            [
                _iso(start_ns, at),
                ids.get(event.client_order_id, ""),
                strategy,
                market.slug if market is not None else "",
                event.token_id,
                str(event.side),
                str(event.price),
                str(event.size),
                str(event.fee),
                str(event.fee_shares),
                str(event.liquidity),
                "" if reference is None else str(reference),
                str(slip),
            ]
        )
    summary_engine = result.summary.to_json()
    positions = result.summary.positions
    for token, position in positions.items():
        market = result.markets_by_token.get(token)
        name = market.slug or market.condition_id if market is not None else token
        pnl_market[name] = pnl_market.get(name, _ZERO) + Decimal(position["realized_pnl"])
    # PnL per strategy: the cash flows of its fills, and what they left held marked at the end (the last mid).
    flows: dict[str, Decimal] = {}
    held: dict[tuple[str, str], Decimal] = {}
    for row in fills_rows:
        strategy, token, side, price, size, fee = (
            row[2],
            row[4],
            row[5],
            Decimal(row[6]),
            Decimal(row[7]),
            Decimal(row[8]),
        )
        sign = Decimal(-1) if side == "BUY" else Decimal(1)
        flows[strategy] = flows.get(strategy, _ZERO) + sign * price * size - fee
        shares = size - Decimal(row[9]) if side == "BUY" else -size
        held[strategy, token] = held.get((strategy, token), _ZERO) + shares
    for (strategy, token), quantity in held.items():
        flows[strategy] = flows.get(strategy, _ZERO) + quantity * result.final_marks.get(token, _ZERO)
    intents_total = len(by_cid_record)
    orders_rows: list[list[str]] = []
    for record in sorted(by_cid_record.values(), key=lambda r: int(ids.get(r.client_order_id, "o0")[1:] or 0)):
        order = store.orders.get(record.order_id or "")
        market = result.markets_by_token.get(record.token_id)
        orders_rows.append(
            [
                ids.get(record.client_order_id, ""),
                record.strategy,
                market.slug if market is not None else "",
                record.token_id,
                str(record.side),
                str(record.price),
                str(record.size),
                str(record.order_type),
                "" if order is None else str(order.status),
                "" if order is None else str(order.size_matched),
                "" if order is None or order.reason is None else order.reason,
            ]
        )
    # Seen: what the analyzers counted. Taken: decisions that passed the risk gate and were sent (an arbitrage's
    # legs are one decision; the orders that sell back a failed arbitrage are not decisions of their own). Filled:
    # those with at least one fill.
    opportunities = result.summary.opportunities
    decisions = [r for r in by_cid_record.values() if "-unwind-" not in r.client_order_id]
    taken = len({r.group_id or r.client_order_id for r in decisions})
    filled_groups = len({r.group_id or r.client_order_id for r in decisions if r.client_order_id in filled_orders})
    orders_count = len(orders_rows)
    fill_ratio = (Decimal(len(filled_orders)) / orders_count).quantize(Decimal("0.0001")) if orders_count else _ZERO
    avg_slippage = (slippage_total / slippage_shares).quantize(Decimal("0.000001")) if slippage_shares else _ZERO
    start_equity = result.equity[0][1] if result.equity else _ZERO
    end_equity = result.equity[-1][1] if result.equity else _ZERO
    peak = _ZERO
    max_dd = _ZERO
    for _at, value, _cash in result.equity:
        peak = max(peak, value)
        max_dd = min(max_dd, value - peak)
    summary: dict[str, object] = {
        "input": {
            "source": result.data.label,
            "start": _iso(start_ns, 0),
            "end": _iso(start_ns, result.virtual_secs),
            "virtual_secs": round(result.virtual_secs, 3),
            "frames_read": result.frames_in,
            "frames_delivered": result.frames_delivered,
            "frames_undelivered": result.frames_undelivered,
            "dropped": dict(sorted(result.data.dropped.items())),
            "dropped_total": sum(result.data.dropped.values()) + result.frames_undelivered,
            "gaps": len(result.data.gaps),
            "notes": list(result.data.notes),
            "markets": len(result.data.markets),
        },
        "params": dict(params or {}),
        "equity": {
            "start": str(start_equity),
            "end": str(end_equity),
            "pnl": str(end_equity - start_equity),
            "max_drawdown": str(max_dd),
        },
        "pnl_by_strategy": {k: str(v.quantize(Decimal("0.000001"))) for k, v in sorted(flows.items())},
        "pnl_by_market": {k: str(v) for k, v in sorted(pnl_market.items())},
        "opportunities": {"seen": opportunities, "taken": taken, "filled": filled_groups},
        "orders": orders_count,
        "intents": intents_total,
        "orders_filled": len(filled_orders),
        "fills": len(fills_rows),
        "fill_ratio": str(fill_ratio),
        "avg_slippage_vs_decision": str(avg_slippage),
        "refusals": dict(sorted(refusals.items())),
        "engine": summary_engine,
    }
    orders_csv = _csv(
        [
            "order",
            "strategy",
            "market",
            "token_id",
            "side",
            "price",
            "size",
            "type",
            "status",
            "filled",
            "reason",
        ],
        orders_rows,
    )
    fills_csv = _csv(
        [
            "time",
            "order",
            "strategy",
            "market",
            "token_id",
            "side",
            "price",
            "size",
            "fee",
            "fee_shares",
            "liquidity",
            "book_at_decision",
            "slippage",
        ],
        fills_rows,
    )
    equity_points = [(datetime.fromtimestamp(start_ns / 1e9 + at, tz=UTC), value) for at, value, _ in result.equity]
    html = _html(summary, equity_points, flows, pnl_market, refusals)
    return {"summary": summary, "orders": orders_csv, "fills": fills_csv, "html": html}


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _dumps(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def write_report(result: BacktestResult, directory: Path, params: Mapping[str, str] | None = None) -> dict[str, object]:
    """Write the report into `directory` (created); returns the summary."""
    documents = build_report(result, params)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(_dumps(documents["summary"]))
    (directory / "orders.csv").write_text(str(documents["orders"]))
    (directory / "fills.csv").write_text(str(documents["fills"]))
    (directory / "report.html").write_text(str(documents["html"]))
    summary = documents["summary"]
    assert isinstance(summary, dict)
    return summary


def _row(name: str, value: object, key: str) -> str:
    return f'<tr><th>{escape(name)}</th><td data-key="{escape(key)}">{escape(str(value))}</td></tr>'


def _html(
    summary: Mapping[str, object],
    equity: list[tuple[datetime, Decimal]],
    by_strategy: Mapping[str, Decimal],
    by_market: Mapping[str, Decimal],
    refusals: Mapping[str, int],
) -> str:
    data = summary["input"]
    money = summary["equity"]
    opportunities = summary["opportunities"]
    assert isinstance(data, dict)
    assert isinstance(money, dict)
    assert isinstance(opportunities, dict)
    rows = [
        _row("source", data["source"], "input.source"),
        _row("from", data["start"], "input.start"),
        _row("to", data["end"], "input.end"),
        _row("markets", data["markets"], "input.markets"),
        _row("frames read", data["frames_read"], "input.frames_read"),
        _row("input dropped", data["dropped_total"], "input.dropped_total"),
        _row("equity at start", money["start"], "equity.start"),
        _row("equity at end", money["end"], "equity.end"),
        _row("PnL", money["pnl"], "equity.pnl"),
        _row("max drawdown", money["max_drawdown"], "equity.max_drawdown"),
        _row("opportunities seen", opportunities["seen"], "opportunities.seen"),
        _row("opportunities taken", opportunities["taken"], "opportunities.taken"),
        _row("opportunities filled", opportunities["filled"], "opportunities.filled"),
        _row("orders", summary["orders"], "orders"),
        _row("fills", summary["fills"], "fills"),
        _row("fill ratio", summary["fill_ratio"], "fill_ratio"),
        _row(
            "average slippage vs the book at decision (per share)",
            summary["avg_slippage_vs_decision"],
            "avg_slippage_vs_decision",
        ),
    ]
    dropped = data["dropped"]
    assert isinstance(dropped, dict)
    warning = ""
    if data["dropped_total"]:
        items = ", ".join(f"{escape(k)}: {v}" for k, v in dropped.items())
        warning = f'<p class="warn">This backtest left input out ({items}); its results cover what remained.</p>'
    notes = "".join(f"<li>{escape(str(n))}</li>" for n in data["notes"])
    charts = [
        line_chart(equity, title="Equity (pUSD) and drawdown", unit="USD", show_drawdown=True),
        bar_chart(sorted(by_strategy.items()), title="PnL per strategy (marked at the end)", unit="USD"),
        bar_chart(sorted(by_market.items(), key=lambda kv: kv[1])[:30], title="Realized PnL per market", unit="USD"),
        bar_chart([(k, Decimal(v)) for k, v in sorted(refusals.items())], title="Refusals at the risk gate by reason"),
        bar_chart(
            [
                ("seen", Decimal(int(str(opportunities["seen"])))),
                ("taken", Decimal(int(str(opportunities["taken"])))),
                ("filled", Decimal(int(str(opportunities["filled"])))),
            ],
            title="Opportunities: seen, taken, filled",
        ),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>trader backtest</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:720px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}th{text-align:left;padding:2px 12px 2px 0;font-weight:normal;color:#555}"
        "td{font-variant-numeric:tabular-nums}.warn{background:#fff3cd;padding:8px}</style></head><body>"
        "<h1>Backtest</h1>"
        + warning
        + '<table id="summary">'
        + "".join(rows)
        + "</table>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "".join(f"<figure>{c}</figure>" for c in charts)
        + "<p>Files beside this page: summary.json, orders.csv, fills.csv.</p></body></html>\n"
    )
