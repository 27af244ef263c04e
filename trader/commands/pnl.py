"""`trader pnl`: realized PnL by day and by market, from the store (see `trader.app.history` for how it is counted).

    trader pnl [--since 2026-12-01] [--until 2026-12-07] [--csv] [--database-url URL]

Prints a table per day and per market (fills, volume, fees, realized PnL) and the total; `--csv` prints one CSV
with a `group` column (`day` or `market`). Exit status: 0, 1 the database could not be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from decimal import Decimal

from trader.app.history import PnlRow, by_day, by_market, to_csv
from trader.commands.history import add_history_arguments, read_history
from trader.domain.numbers import ZERO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_arguments(parser)


def run(args: argparse.Namespace) -> int:
    history, _ = read_history(args)
    days, markets = by_day(history), by_market(history)
    if args.csv:
        rows = [("day", r.key, r.fills, r.volume, r.fees, r.realized) for r in days]
        rows += [("market", r.key, r.fills, r.volume, r.fees, r.realized) for r in markets]
        print(to_csv(("group", "key", "fills", "volume", "fees", "realized_pnl"), rows), end="")
        return 0
    if not history.events:
        print("no fills in this range")
        return 0
    print(_table("day", days))
    print()
    print(_table("market", markets))
    total = sum((r.realized for r in days), ZERO)
    fees = sum((r.fees for r in days), ZERO)
    print(f"\ntotal realized PnL {_money(total)} USD, fees {_money(fees)} USD, {len(history.fills)} fills")
    return 0


def _table(key: str, rows: Sequence[PnlRow]) -> str:
    width = min(60, max([len(key), *(len(r.key) for r in rows)]))
    lines = [f"{key:<{width}}  {'fills':>6}  {'volume':>12}  {'fees':>9}  {'realized':>10}"]
    for r in rows:
        name = r.key if len(r.key) <= width else r.key[: width - 1] + "…"
        lines.append(
            f"{name:<{width}}  {r.fills:>6}  {_money(r.volume):>12}  {_money(r.fees):>9}  {_money(r.realized):>10}"
        )
    return "\n".join(lines)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"
