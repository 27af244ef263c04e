"""Trading history from the store: fills with market names, realized PnL by day, market and strategy, and the
self-contained HTML report (`trader pnl`, `trader trades`, `trader report`).

Pure functions over the store's records (`load_history` reads them). Realized PnL is replayed from the trades and
the confirmed merges and redemptions at average cost, per token:

- a BUY adds `size - fee_shares` shares at `price x size + fee`;
- a SELL realizes `price x size - fee` less the average cost of the shares sold;
- a confirmed MERGE or REDEEM realizes its `payout` less the average cost of the shares it took.

FAILED trades are left out (the venue undid them); trades not yet CONFIRMED count, and `trader trades` shows their
settlement status. A realization is dated when it happened (the trade's match time, the operation's last update),
in UTC days, and belongs to the strategy that last bought the token. Amounts are exact decimals throughout.

The equity curve is the engine's own samples (`equity_samples`, one a minute while `trader run` runs, at its marks);
a store without any gets the cumulative realized PnL instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

from trader.app.charts import bar_chart, line_chart
from trader.domain.enums import TradeStatus
from trader.domain.market import Market
from trader.domain.numbers import ZERO, Side
from trader.integrations.store.base import (
    CapitalOpRecord,
    CapitalOpState,
    EquitySample,
    OrderRecord,
    Store,
    TradeRecord,
)

__all__ = [
    "EquityPoint",
    "FillRow",
    "History",
    "PnlRow",
    "by_day",
    "by_market",
    "by_strategy",
    "load_history",
    "render_report",
    "replay",
    "to_csv",
]


#: pUSD's base unit (6 decimals): replayed amounts that came from a division are shown to it.
_BASE_UNIT = Decimal("0.000001")


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRow:
    """One of our fills, named: what `trader trades` prints."""

    time: dt.datetime
    trade_id: str
    market: str
    outcome: str
    strategy: str
    side: str
    price: Decimal
    size: Decimal
    fee: Decimal
    liquidity: str
    status: str
    realized_pnl: Decimal  # what this fill realized (0 for a buy)
    token_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Realization:
    """Realized PnL at one moment: a sell, or a confirmed merge or redemption."""

    time: dt.datetime
    market: str
    strategy: str
    pnl: Decimal
    fee: Decimal
    volume: Decimal
    fills: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PnlRow:
    """One line of `trader pnl`: a day, a market or a strategy."""

    key: str
    fills: int
    volume: Decimal  # pUSD traded (price x size)
    fees: Decimal
    realized: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class EquityPoint:
    time: dt.datetime
    value: Decimal


@dataclass(slots=True)
class History:
    """What `replay` made of the store's records."""

    fills: list[FillRow] = field(default_factory=list)
    events: list[Realization] = field(default_factory=list)  # every fill and confirmed operation, by time
    equity: list[tuple[dt.datetime, Decimal]] = field(default_factory=list)  # the engine's samples, by time


@dataclass(frozen=True, slots=True, kw_only=True)
class Records:
    """The store's records the history needs."""

    trades: Sequence[TradeRecord]
    orders: Mapping[str, OrderRecord]
    markets: Sequence[Market]
    capital_ops: Sequence[CapitalOpRecord]
    equity: Sequence[EquitySample] = ()


async def load_history(store: Store) -> Records:
    """Read the trades (with their orders, for the strategy), the markets and the merges and redemptions."""
    trades = await store.load_trades()
    orders: dict[str, OrderRecord] = {}
    for order_id in {t.order_id for t in trades}:
        order = await store.load_order(order_id)
        if order is not None:
            orders[order_id] = order
    return Records(
        trades=trades,
        orders=orders,
        markets=await store.load_markets(),
        capital_ops=await store.load_capital_ops(),
        equity=await store.load_equity(),
    )


@dataclass(slots=True)
class _Holding:
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    strategy: str = "?"

    def take(self, quantity: Decimal) -> Decimal:
        """Remove `quantity` shares; the cost they carried (at average cost)."""
        if self.quantity <= ZERO:
            return ZERO
        taken = min(quantity, self.quantity)
        cost = self.cost * taken / self.quantity
        self.quantity -= taken
        self.cost -= cost
        return cost


def replay(records: Records) -> History:
    """Fills named and realized PnL replayed at average cost (see the module docstring)."""
    names: dict[str, tuple[str, str]] = {}
    for known in records.markets:
        title = known.question or known.slug or known.condition_id
        names[known.condition_id] = (title, "")
        for token_id in known.token_ids:
            names[token_id] = (title, known.outcome_of(token_id))
    holdings: dict[str, _Holding] = {}
    history = History(equity=[(_utc(e.ts_ns), e.equity) for e in records.equity])
    timeline: list[tuple[int, int, object]] = [
        (t.match_time_ns, 0, t) for t in records.trades if t.status is not TradeStatus.FAILED
    ]
    timeline += [(op.updated_at_ns, 1, op) for op in records.capital_ops if op.state is CapitalOpState.CONFIRMED]
    timeline.sort(key=lambda item: (item[0], item[1]))
    for ts_ns, _, record in timeline:
        time = _utc(ts_ns)
        if isinstance(record, TradeRecord):
            order = records.orders.get(record.order_id)
            strategy = (order.strategy if order is not None else None) or "?"
            holding = holdings.setdefault(record.token_id, _Holding())
            notional = record.price * record.size
            if record.side is Side.BUY:
                holding.quantity += record.size - record.fee_shares
                holding.cost += notional + record.fee
                holding.strategy = strategy
                pnl = ZERO
            else:
                pnl = notional - record.fee - holding.take(record.size)
            market, outcome = names.get(record.token_id, (record.token_id, "?"))
            history.fills.append(
                FillRow(
                    time=time,
                    trade_id=record.trade_id,
                    market=market,
                    outcome=outcome,
                    strategy=strategy,
                    side=str(record.side),
                    price=record.price,
                    size=record.size,
                    fee=record.fee,
                    liquidity=str(record.liquidity),
                    status=str(record.status),
                    realized_pnl=pnl,
                    token_id=record.token_id,
                )
            )
            history.events.append(
                Realization(
                    time=time, market=market, strategy=strategy, pnl=pnl, fee=record.fee, volume=notional, fills=1
                )
            )
        elif isinstance(record, CapitalOpRecord):
            yes = holdings.setdefault(record.yes_token_id, _Holding())
            no = holdings.setdefault(record.no_token_id, _Holding())
            strategy = yes.strategy if yes.strategy != "?" else no.strategy
            cost = yes.take(record.yes_amount) + no.take(record.no_amount)
            market = names.get(record.condition_id, (record.condition_id, ""))[0]
            history.events.append(
                Realization(
                    time=time,
                    market=market,
                    strategy=strategy,
                    pnl=record.payout - cost,
                    fee=ZERO,
                    volume=ZERO,
                    fills=0,
                )
            )
    return history


def in_range(history: History, since: dt.date | None, until: dt.date | None) -> History:
    """Only what happened on the UTC days from `since` to `until` (both included)."""

    def keep(time: dt.datetime) -> bool:
        day = time.date()
        return (since is None or day >= since) and (until is None or day <= until)

    return History(
        fills=[f for f in history.fills if keep(f.time)],
        events=[e for e in history.events if keep(e.time)],
        equity=[(t, v) for t, v in history.equity if keep(t)],
    )


def _group(events: Iterable[Realization], key: str) -> list[PnlRow]:
    rows: dict[str, list[Realization]] = {}
    for event in events:
        name = event.time.date().isoformat() if key == "day" else getattr(event, key)
        rows.setdefault(name, []).append(event)
    return [
        PnlRow(
            key=name,
            fills=sum(e.fills for e in group),
            volume=sum((e.volume for e in group), ZERO),
            fees=sum((e.fee for e in group), ZERO),
            realized=sum((e.pnl for e in group), ZERO),
        )
        for name, group in rows.items()
    ]


def by_day(history: History) -> list[PnlRow]:
    return sorted(_group(history.events, "day"), key=lambda r: r.key)


def by_market(history: History) -> list[PnlRow]:
    return sorted(_group(history.events, "market"), key=lambda r: (-r.realized, r.key))


def by_strategy(history: History) -> list[PnlRow]:
    return sorted(_group(history.events, "strategy"), key=lambda r: (-r.realized, r.key))


def realized_curve(history: History) -> list[tuple[dt.datetime, Decimal]]:
    """Cumulative realized PnL after each event."""
    total, curve = ZERO, []
    for event in history.events:
        total += event.pnl
        curve.append((event.time, total))
    return curve


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return out.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, Decimal) and value.as_tuple().exponent < -6:  # type: ignore[operator]
        return str(value.quantize(_BASE_UNIT))  # an average cost's division: to pUSD's 6 decimals
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def render_report(history: History, *, title: str, generated: dt.datetime) -> str:
    """One HTML file, nothing external: the equity curve (the engine's samples; without any, the cumulative
    realized PnL), daily PnL, and the results per strategy and per market."""
    days, strategies, markets = by_day(history), by_strategy(history), by_market(history)
    total = sum((r.realized for r in days), ZERO)
    fees = sum((r.fees for r in days), ZERO)
    if history.equity:
        curve = line_chart(history.equity, title="Equity", unit="USD", show_drawdown=True, width=900, height=260)
    else:
        curve = line_chart(
            realized_curve(history), title="Cumulative realized PnL", unit="USD", show_drawdown=True, width=900
        )
    daily = bar_chart([(r.key, r.realized) for r in days], title="Realized PnL per day", unit="USD", width=900)
    per_strategy = bar_chart(
        [(r.key, r.realized) for r in strategies], title="Realized PnL per strategy", unit="USD", width=900
    )
    if history.equity:
        change = history.equity[-1][1] - history.equity[0][1]
        curve += f"<p>equity {escape(_money(history.equity[0][1]))} to {escape(_money(history.equity[-1][1]))} USD "
        curve += f"({escape(_money(change))}), {len(history.equity)} samples</p>"
    first = history.events[0].time.date().isoformat() if history.events else "-"
    last = history.events[-1].time.date().isoformat() if history.events else "-"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#111;max-width:960px}}
table{{border-collapse:collapse;margin:8px 0 24px}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}}
td.n,th.n{{text-align:right;font-variant-numeric:tabular-nums}}h2{{margin-top:28px}}</style></head>
<body><h1>{escape(title)}</h1>
<p>{escape(first)} to {escape(last)} · {len(history.fills)} fills · realized PnL <b>{escape(_money(total))}</b> ·
fees {escape(_money(fees))} · generated {escape(generated.strftime("%Y-%m-%d %H:%M UTC"))}</p>
<h2>Equity</h2>{curve}
<h2>Daily PnL</h2>{daily}{_table(days, "day")}
<h2>Per strategy</h2>{per_strategy}{_table(strategies, "strategy")}
<h2>Per market</h2>{_table(markets, "market")}
</body></html>
"""


def _table(rows: Sequence[PnlRow], key: str) -> str:
    head = (
        f'<tr><th>{escape(key)}</th><th class="n">fills</th><th class="n">volume</th><th class="n">fees</th>'
        '<th class="n">realized PnL</th></tr>'
    )
    body = "".join(
        f'<tr><td>{escape(r.key)}</td><td class="n">{r.fills}</td><td class="n">{escape(_money(r.volume))}</td>'
        f'<td class="n">{escape(_money(r.fees))}</td><td class="n">{escape(_money(r.realized))}</td></tr>'
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def _utc(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.UTC).replace(microsecond=(ts_ns // 1000) % 1_000_000)
