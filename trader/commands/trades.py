"""`trader trades`: our fills from the store, oldest first, with market names, prices, fees, the PnL each
realized and its settlement status (MATCHED, MINED, CONFIRMED, ...; FAILED trades are left out).

    trader trades [--since 2026-12-01] [--until 2026-12-07] [--csv] [--database-url URL]

`--csv` prints every field exactly (decimals as they are stored). Exit status: 0, 1 the database could not be
read, 2 bad arguments.
"""

from __future__ import annotations

import argparse

from trader.app.history import to_csv
from trader.commands.history import add_history_arguments, read_history

FIELDS = (
    "time",
    "trade_id",
    "market",
    "outcome",
    "strategy",
    "side",
    "price",
    "size",
    "fee",
    "liquidity",
    "status",
    "realized_pnl",
    "token_id",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_arguments(parser)


def run(args: argparse.Namespace) -> int:
    history, _ = read_history(args)
    if args.csv:
        print(to_csv(FIELDS, [[getattr(f, name) for name in FIELDS] for f in history.fills]), end="")
        return 0
    if not history.fills:
        print("no fills in this range")
        return 0
    print(
        f"{'time (UTC)':<19}  {'market':<40}  {'outcome':<8}  {'side':<4}  {'price':>6}  {'size':>10}  {'fee':>8}  "
        f"{'status':<10}  strategy"
    )
    for f in history.fills:
        market = f.market if len(f.market) <= 40 else f.market[:39] + "…"
        print(
            f"{f.time:%Y-%m-%d %H:%M:%S}  {market:<40}  {f.outcome[:8]:<8}  {f.side:<4}  {f.price:>6}  {f.size:>10}  "
            f"{f.fee:>8}  {f.status:<10}  {f.strategy}"
        )
    return 0
