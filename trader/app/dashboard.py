"""The operator's web page, `GET /`: a dashboard a person keeps open, served by the engine itself.

The engine's HTTP server serves a Starlette application (Starlette runs on anyio, hence on Trio under hypercorn's
trio worker). It routes the page and its live feed, and hands every other path to the operator routes of
`trader.integrations.http_server.OperatorApp` (`/health`, `/ready`, `/metrics`, `/status`, the admin POSTs):

| route | what |
|---|---|
| `GET /` | the page: one HTML document with its CSS and script inline, no external asset (no CDN) |
| `GET /dashboard/state` | the page's data as JSON (decimals as strings) |
| `GET /dashboard/events` | server-sent events: the same document at once, on every fill, order or risk event, and at
  least every `push_secs` |

The page shows the trading state and why it is halted (and who halted it), equity and PnL over time (an inline SVG
from `trader.app.charts`, rendered here), positions and open orders with market names, recent fills and
opportunities, book health and refusal counts by reason. Its stop and resume buttons post to the existing
`/emergency-stop` and `/resume` routes with the admin token typed into the page (kept in the tab's session storage
only), so they are refused without it exactly as `curl` would be.

`Dashboard` reads the engine through the `Control` facade and the in-process event bus only; its `run` task
samples equity every `sample_secs` into a bounded history (the chart), and keeps one sample a minute in the store
(`equity_samples`, migration 0004), from which the chart starts again after a restart and `trader report` draws
the equity curve.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any, NoReturn

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from trader.app.charts import line_chart
from trader.app.control import Control
from trader.integrations.bus import BusEvent, EventKind
from trader.integrations.store import EquitySample, StoreError

__all__ = ["Dashboard", "build_web_app"]

#: Bus events that change what the page shows: it is pushed again (coalesced) when one arrives.
_LIVE_KINDS = (EventKind.FILL, EventKind.ORDER, EventKind.TRADE, EventKind.RISK, EventKind.EMERGENCY_STOP)
_RECENT_FILLS = 20
_RECENT_OPPORTUNITIES = 10


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Dashboard:
    """The page's data, read from `control`; `run` keeps the equity history the chart draws."""

    def __init__(
        self,
        control: Control,
        *,
        sample_secs: float = 5.0,
        persist_secs: float = 60.0,
        history_len: int = 2880,
        push_secs: float = 2.0,
        wall_clock: Callable[[], dt.datetime] = _now_utc,
    ) -> None:
        self.control = control
        self.sample_secs = sample_secs
        self.persist_secs = persist_secs
        self.equity_writes_failed = 0
        self.push_secs = push_secs
        self._clock = wall_clock
        self._equity: deque[tuple[dt.datetime, Decimal]] = deque(maxlen=history_len)
        self._pnl: deque[tuple[dt.datetime, Decimal]] = deque(maxlen=history_len)

    def sample(self) -> EquitySample:
        """Add the current equity and PnL (realized + unrealized) to the history; the sample."""
        money = self.control.money()
        now = self._clock()
        sample = EquitySample(
            ts_ns=_ns(now),
            equity=Decimal(money["equity"]),
            cash=Decimal(money["cash"]),
            positions_value=Decimal(money["positions_value"]),
            realized_pnl=Decimal(money["realized_pnl"]),
            unrealized_pnl=Decimal(money["unrealized_pnl"]),
        )
        self._add(now, sample)
        return sample

    def equity_history(self) -> list[tuple[dt.datetime, Decimal]]:
        """The equity samples the chart draws, oldest first."""
        return list(self._equity)

    def _add(self, when: dt.datetime, sample: EquitySample) -> None:
        self._equity.append((when, sample.equity))
        self._pnl.append((when, sample.realized_pnl + sample.unrealized_pnl))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Sample every `sample_secs` (drift-free) for as long as the engine runs, and keep one sample every
        `persist_secs` in the store (`equity_samples`, for `trader report`; a store that is slow or down only
        skips samples). The chart starts from what the store kept of the last `history_len` samples' span."""
        store = self.control.sinks.store
        span_ns = int(self.sample_secs * (self._equity.maxlen or 0) * 1e9)
        with trio.move_on_after(self.sample_secs):
            try:
                for kept in await store.load_equity(since_ns=_ns(self._clock()) - span_ns):
                    self._add(dt.datetime.fromtimestamp(kept.ts_ns / 1e9, dt.UTC), kept)
            except StoreError:
                pass  # the chart starts empty
        task_status.started()
        deadline = persist_at = trio.current_time()
        while True:
            sample = self.sample()
            if trio.current_time() >= persist_at:
                persist_at += self.persist_secs
                with trio.move_on_after(self.sample_secs):
                    try:
                        await store.record_equity(sample)
                    except StoreError:
                        self.equity_writes_failed += 1
            deadline += self.sample_secs
            await trio.sleep_until(deadline)

    # -- the document ---------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Everything the page shows, JSON-ready (decimals as exact strings)."""
        control, core = self.control, self.control.core
        names = self._names()
        execution = core.execution.snapshot()
        events = self._bus_recent()
        money = control.money()
        now = self._clock()
        pnl = execution.get("pnl", {})
        return {
            "updated": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "mode": control.mode,
            "venue": str(control.settings.run.venue),
            "state": execution.get("trading_state"),
            "halt": _halt(events, str(execution.get("trading_state"))),
            "money": {k: _cents(v) for k, v in money.items()},
            "fees": _cents(pnl.get("fees")) if isinstance(pnl, Mapping) else None,
            "daily_pnl": _cents(pnl.get("daily")) if isinstance(pnl, Mapping) else None,
            "positions": [
                {
                    **_named(names, token),
                    **position,
                    **{k: _cents(position.get(k)) for k in ("realized_pnl", "unrealized_pnl", "cost_basis")},
                    "avg_cost": _cents(position.get("avg_cost"), "0.0001"),
                }
                for token, position in _mapping(execution.get("positions")).items()
                if isinstance(position, Mapping)
            ],
            "open_orders": [
                {**order, **_named(names, str(order.get("token_id", "")))}
                for order in _list(execution.get("open_orders"))
                if isinstance(order, Mapping)
            ],
            "fills_total": core.execution.statistics().orders.fills,
            "fills": [
                {
                    "time": _clock_ms(e.ts_ms),
                    **_named(names, str(e.data.get("token_id", ""))),
                    **{k: e.data.get(k) for k in ("side", "price", "size", "fee", "liquidity")},
                }
                for e in reversed(events)
                if e.type == "order_filled"
            ][:_RECENT_FILLS],
            "opportunities": [
                {
                    "time": _clock_s(op.get("started_at")),
                    "market": _basket_name(names, op),
                    **{k: op.get(k) for k in ("kind", "side", "status", "edge", "peak_edge", "traded")},
                }
                for op in reversed(core.opportunities.recent[-_RECENT_OPPORTUNITIES:])
            ],
            "books": self._books(),
            "refusals": self._refusals(),
            "equity_chart": line_chart(
                [*self._equity, (now, Decimal(money["equity"]))], title="Equity", unit="USD", show_drawdown=True
            ),
            "pnl_chart": line_chart(
                [*self._pnl, (now, Decimal(money["realized_pnl"]) + Decimal(money["unrealized_pnl"]))],
                title="PnL (realized + unrealized)",
                unit="USD",
            ),
        }

    def _names(self) -> dict[str, tuple[str, str]]:
        """token id -> (market question, outcome); condition id -> (question, "")."""
        names: dict[str, tuple[str, str]] = {}
        events: dict[str, list[str]] = {}
        for condition_id, cell in self.control.venue.books.markets.items():
            market = cell.market
            title = market.question or market.slug or condition_id
            names[condition_id] = (title, "")
            for token_id in market.token_ids:
                names[token_id] = (title, market.outcome_of(token_id))
            if market.neg_risk_market_id:
                events.setdefault(market.neg_risk_market_id, []).append(title)
        for event_id, questions in events.items():
            names[event_id] = (_shared_title(questions), "")
        return names

    def _bus_recent(self) -> list[BusEvent]:
        return self.control.sinks.outputs.memory.recent()

    def _books(self) -> dict[str, object]:
        readiness = self.control.readiness()
        now = trio.current_time()
        max_age = self.control.settings.risk.max_book_age_ms / 1000
        tokens = list(self.control.venue.books.tokens())
        fresh = sum(
            1 for t in tokens if (h := t.health(now)).usable and h.age_secs is not None and h.age_secs <= max_age
        )
        return {
            "markets": len(self.control.venue.books.markets),
            "tokens": len(tokens),
            "fresh": fresh,
            "not_fresh": len(tokens) - fresh,
            "connections": self.control.venue.market_data.statistics().connected,
            "ready": all(readiness.values()),
            "checks": readiness,
        }

    def _refusals(self) -> dict[str, int]:
        """Intents refused by the risk gate, and orders the venue's restrictions refused or denied, by reason."""
        counts: dict[str, int] = {}
        for reason, n in self.control.core.risk.statistics().rejections.items():
            counts[f"risk: {reason}"] = counts.get(f"risk: {reason}", 0) + n
        restrictions = self.control.core.manager.restrictions.statistics(trio.current_time())
        for reason, n in {**restrictions.refusals, **restrictions.denied}.items():
            counts[f"venue: {reason}"] = counts.get(f"venue: {reason}", 0) + n
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    # -- the live feed --------------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events: the document now, then again on each burst of live events or every `push_secs`."""
        with self.control.sinks.outputs.memory.subscribe(_LIVE_KINDS, capacity=256) as changes:
            while True:
                yield f"event: state\ndata: {_dumps(self.snapshot())}\n\n"
                with trio.move_on_after(self.push_secs):
                    await changes.receive()
                    await trio.sleep(0.1)  # coalesce a burst (the legs of one arbitrage) into one push
                while True:
                    try:
                        changes.receive_nowait()
                    except trio.WouldBlock:
                        break


def build_web_app(dashboard: Dashboard, operator_routes: Any) -> Starlette:
    """The engine's HTTP application: the page, its data and feed, then every operator route."""

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"cache-control": "no-store"})

    async def state(request: Request) -> Response:
        return Response(_dumps(dashboard.snapshot()), media_type="application/json")

    async def events(request: Request) -> Response:
        return StreamingResponse(
            dashboard.events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def not_allowed(request: Request) -> Response:
        return JSONResponse({"error": "method not allowed"}, status_code=405)

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/", not_allowed, methods=["POST", "PUT", "DELETE", "PATCH"]),
            Route("/dashboard/state", state, methods=["GET"]),
            Route("/dashboard/events", events, methods=["GET"]),
            Mount("/", app=operator_routes),
        ]
    )


def _halt(events: list[BusEvent], state: str) -> dict[str, object] | None:
    """Why trading is not ACTIVE: the last state change's reason, and who stopped it when it was an emergency stop."""
    if state == "ACTIVE":
        return None
    change = next((e for e in reversed(events) if e.type == "risk_state_changed"), None)
    stop = next((e for e in reversed(events) if e.type == "emergency_stop"), None)
    reason = None if change is None else change.data.get("reason")
    document: dict[str, object] = {"reason": reason, "since": None if change is None else _iso_ms(change.ts_ms)}
    if stop is not None and (change is None or stop.ts_ms >= change.ts_ms - 1000):
        document["by"] = stop.data.get("source")
        document["reason"] = stop.data.get("reason") or reason
    return document


def _shared_title(questions: list[str]) -> str:
    """A neg-risk event's name: what its questions share ("Synthetic election 7: who wins"), else the first."""
    shared = os.path.commonprefix(questions).rstrip(" :?-,")  # noqa: RUF071 - text, not paths
    return shared if len(shared) >= 8 else questions[0]


def _basket_name(names: Mapping[str, tuple[str, str]], opportunity: Mapping[str, object]) -> str:
    """An opportunity's market: the condition's question, or for a neg-risk basket what its tokens' questions share."""
    basket = str(opportunity.get("basket", ""))
    if basket in names:
        return names[basket][0]
    tokens = opportunity.get("token_ids")
    questions = (
        [names[t][0] for t in tokens if isinstance(t, str) and t in names] if isinstance(tokens, list | tuple) else []
    )
    return _shared_title(questions) if questions else basket


def _named(names: Mapping[str, tuple[str, str]], token_id: str) -> dict[str, str]:
    market, outcome = names.get(token_id, (token_id, "?"))
    return {"market": market, "outcome": outcome, "token_id": token_id}


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _iso_ms(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _clock_ms(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%H:%M:%S")


def _clock_s(ts: object) -> str | None:
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S")
    return None


def _cents(value: object, step: str = "0.01") -> object:
    """A money amount for the page, to the cent (the exact amounts stay in /status); anything else as it is."""
    try:
        return str(Decimal(str(value)).quantize(Decimal(step))) if value is not None else None
    except ArithmeticError:
        return value


def _dumps(document: object) -> str:
    return json.dumps(document, default=str, separators=(",", ":"))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>trader</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#111}
header{display:flex;gap:16px;align-items:center;padding:10px 16px;background:#111;color:#fff;flex-wrap:wrap}
header h1{font-size:16px;margin:0}
#state{padding:3px 10px;border-radius:4px;font-weight:bold}
.ACTIVE{background:#16a34a}.REDUCING{background:#d97706}.HALTED{background:#dc2626}
#halt{color:#fecaca}
.admin{margin-left:auto;display:flex;gap:6px;align-items:center}
.admin input{width:150px}
button{cursor:pointer;padding:4px 10px;border-radius:4px;border:1px solid #888}
#stop{background:#dc2626;color:#fff;border-color:#991b1b}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px;padding:12px}
section.wide{grid-column:1/-1}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;overflow:auto}
h2{font-size:13px;margin:0 0 6px;text-transform:uppercase;color:#555}
table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;text-align:left;border-bottom:1px solid #eee;
white-space:nowrap;max-width:260px;overflow:hidden;text-overflow:ellipsis}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.money{display:flex;gap:18px;flex-wrap:wrap}.money div b{display:block;font-size:18px}
#msg{min-width:120px}.empty{color:#888}
svg.chart{max-width:100%;height:auto}
</style></head>
<body>
<header><h1>trader</h1><span id="state">…</span><span id="mode"></span><span id="halt"></span>
<span id="updated" style="color:#aaa"></span>
<span class="admin"><input id="token" type="password" placeholder="admin token" autocomplete="off">
<button id="stop">Emergency stop</button><button id="resume">Resume</button><span id="msg"></span></span></header>
<main>
<section class="wide"><h2>Money</h2><div class="money" id="money"></div></section>
<section><h2>Equity</h2><div id="equity_chart"></div></section>
<section><h2>PnL</h2><div id="pnl_chart"></div></section>
<section><h2>Positions</h2><table id="positions"></table></section>
<section><h2>Open orders</h2><table id="open_orders"></table></section>
<section><h2>Recent fills</h2><table id="fills"></table></section>
<section><h2>Opportunities</h2><table id="opportunities"></table></section>
<section><h2>Books</h2><table id="books"></table></section>
<section><h2>Refusals</h2><table id="refusals"></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function table(id, rows, cols) {
  const t = $(id); t.replaceChildren();
  if (!rows.length) { const r = t.insertRow(); const c = r.insertCell(); c.textContent = "none"; c.className = "empty";
    return; }
  const h = t.createTHead().insertRow();
  for (const [key, label, num] of cols) { const th = document.createElement("th"); th.textContent = label;
    if (num) th.className = "n"; h.appendChild(th); }
  const body = t.createTBody();
  for (const row of rows) { const r = body.insertRow(); r.dataset.row = "1";
    for (const [key, , num] of cols) { const c = r.insertCell(); const v = row[key];
      c.textContent = v === null || v === undefined ? "" : String(v); c.title = c.textContent;
      if (num) c.className = "n"; } }
}
function render(s) {
  const st = $("state"); st.textContent = s.state; st.className = s.state;
  $("mode").textContent = s.mode + " · " + s.venue;
  $("halt").textContent = s.halt ? "halted: " + (s.halt.reason || "?") + (s.halt.by ? " (by " + s.halt.by + ")" : "")
    : "";
  $("updated").textContent = "updated " + s.updated;
  const m = s.money, money = $("money"); money.replaceChildren();
  for (const [label, v] of [["equity", m.equity], ["cash", m.cash], ["positions", m.positions_value],
      ["realized PnL", m.realized_pnl], ["unrealized PnL", m.unrealized_pnl], ["today", s.daily_pnl],
      ["fees", s.fees]]) {
    const d = document.createElement("div"); const b = document.createElement("b"); b.textContent = v;
    b.id = "money-" + label.replace(/ /g, "_"); d.append(b, label); money.appendChild(d); }
  $("equity_chart").innerHTML = s.equity_chart;  // SVG rendered and escaped by the engine
  $("pnl_chart").innerHTML = s.pnl_chart;
  table("positions", s.positions, [["market", "market"], ["outcome", "outcome"], ["quantity", "qty", 1],
    ["avg_cost", "avg cost", 1], ["realized_pnl", "realized", 1], ["unrealized_pnl", "unrealized", 1]]);
  table("open_orders", s.open_orders, [["market", "market"], ["outcome", "outcome"], ["side", "side"],
    ["price", "price", 1], ["size", "size", 1], ["filled", "filled", 1], ["status", "status"],
    ["strategy", "strategy"]]);
  table("fills", s.fills, [["time", "time (UTC)"], ["market", "market"], ["outcome", "outcome"], ["side", "side"],
    ["price", "price", 1], ["size", "size", 1], ["fee", "fee", 1]]);
  table("opportunities", s.opportunities, [["time", "time (UTC)"], ["market", "market"], ["kind", "kind"],
    ["status", "status"], ["edge", "edge", 1], ["traded", "traded"]]);
  const b = s.books;
  table("books", [{k: "markets", v: b.markets}, {k: "tokens fresh", v: b.fresh + " / " + b.tokens},
    {k: "connections", v: b.connections}, {k: "ready", v: b.ready}].concat(
    Object.entries(b.checks).map(([k, v]) => ({k: k, v: v}))), [["k", "check"], ["v", "value"]]);
  table("refusals", Object.entries(s.refusals).map(([k, v]) => ({k: k, v: v})), [["k", "reason"], ["v", "count", 1]]);
  document.body.dataset.fills = String(s.fills_total);
  document.body.dataset.state = s.state;
}
const tokenBox = $("token");
tokenBox.value = sessionStorage.getItem("trader-admin-token") || "";
tokenBox.addEventListener("change", () => sessionStorage.setItem("trader-admin-token", tokenBox.value));
async function admin(path) {
  const headers = {"content-type": "application/json"};
  if (tokenBox.value) headers["authorization"] = "Bearer " + tokenBox.value;
  const body = path === "/emergency-stop" ? JSON.stringify({reason: "dashboard"}) : "";
  try {
    const r = await fetch(path, {method: "POST", headers, body});
    const doc = await r.json().catch(() => ({}));
    $("msg").textContent = r.ok ? "done: " + (doc.trading_state || "") : "refused (" + r.status + "): " +
      (doc.error || "");
  } catch (e) { $("msg").textContent = "failed: " + e; }
}
$("stop").addEventListener("click", () => { if (confirm("Halt trading and cancel every order?"))
  admin("/emergency-stop"); });
$("resume").addEventListener("click", () => admin("/resume"));
const feed = new EventSource("dashboard/events");
feed.addEventListener("state", (e) => render(JSON.parse(e.data)));
feed.onerror = () => { $("updated").textContent = "disconnected, retrying…"; };
</script></body></html>
"""
