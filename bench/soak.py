"""`python -m bench soak [--minutes M]`: `trader run --venue sim` for M minutes, one JSON line per minute.

The engine runs as a user runs it (its own process, paper against the built-in simulated venue, the default
scenario, a fresh SQLite file), and this bench only watches it from outside: its `/status` and `/metrics` once a
minute, and its resident memory (`/proc/<pid>/status` VmRSS). Each minute's line has what happened in that minute and
where the money stands at its end:

- `fills`, `intents_denied` (by reason), `venue_rejections` (by reason): counts within the minute;
- `cash`, `receivable`, `equity` (cash + what redemptions owe + positions at their marks), `realized_pnl`;
- `locked_sets` (complete sets held and not being merged), `merges`, `merged_usd`, `redemptions`, `redeemed_usd`,
  `settled_markets` (totals so far);
- `rss_mb`, and `wakeup_p50_ms` (the strategy engine's median evaluation cost over its recent evaluations, when it
  reports one; else its longest so far, `wakeup_max_ms`).

The last line is the verdict against issue 13's goals: fills in every minute after the first, no venue balance
rejection, equity never below starting cash minus the daily loss limit, RSS and wake-up cost flat after the first 5
minutes (growth under 10%: the median of the last 10 minutes against that of minutes 6-15; the highest minute
against minute 6 is printed beside it, as `..._peak_after_5_min`). A bench, not a test: it prints numbers, it does
not fail a build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

_METRIC = re.compile(r"^(trader_[a-z_]+?)(?:_total)?(?:\{([^}]*)\})? (\S+)$")
BALANCE_REJECTION = "VENUE_NOT_ENOUGH_BALANCE"


def _metrics(text: str) -> dict[str, dict[str, float]]:
    """name -> {label text -> value} for the trader_* samples of a Prometheus exposition."""
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            name, labels, value = match.groups()
            found.setdefault(name, {})[labels or ""] = float(value)
    return found


def _labelled(metrics: dict[str, dict[str, float]], name: str, label: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in metrics.get(name, {}).items():
        match = re.search(rf'{label}="([^"]*)"', labels)
        if match:
            counts[match.group(1)] = int(value)
    return counts


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sample(http: httpx.Client) -> dict[str, Any]:
    status = http.get("/status", params={"full": "1"}).json()
    metrics = _metrics(http.get("/metrics").text)
    rejections = _labelled(metrics, "trader_orders_rejected", "reason")
    strategies = status.get("strategies", {})
    return {
        "fills": int(metrics.get("trader_fills", {}).get("", 0)),
        "denied": _labelled(metrics, "trader_intents_denied", "reason"),
        "rejections": rejections,
        "money": status.get("money", {}),
        "capital": status.get("capital", {}),
        "strategy": strategies.get("statistics", strategies) if isinstance(strategies, dict) else {},
    }


def _minute_line(minute: int, before: dict[str, Any], now: dict[str, Any], rss: float | None) -> dict[str, Any]:
    capital, money, strategy = now["capital"], now["money"], now["strategy"]
    line: dict[str, Any] = {
        "minute": minute,
        "fills": now["fills"] - before["fills"],
        "intents_denied": dict(now["denied"] - before["denied"]),
        "venue_rejections": dict(now["rejections"] - before["rejections"]),
        "cash": money.get("cash"),
        "receivable": money.get("receivable"),
        "equity": money.get("equity"),
        "realized_pnl": money.get("realized_pnl"),
        "locked_sets": capital.get("locked_sets"),
        "merges": capital.get("merges"),
        "merged_usd": capital.get("merged_sets"),
        "redemptions": capital.get("redemptions"),
        "redeemed_usd": capital.get("redeemed_usd"),
        "settled_markets": capital.get("settled_markets"),
        "rss_mb": rss,
    }
    for key in ("evaluation_p50_ms", "max_evaluation_ms"):
        if isinstance(strategy, dict) and key in strategy:
            line["wakeup_p50_ms" if key == "evaluation_p50_ms" else "wakeup_max_ms"] = strategy[key]
    return line


def _verdict(lines: list[dict[str, Any]], start_cash: Decimal, loss_limit: Decimal) -> dict[str, Any]:
    after_first = lines[1:]
    equities = [Decimal(line["equity"]) for line in lines if line.get("equity")]
    balance = sum(line["venue_rejections"].get(BALANCE_REJECTION, 0) for line in lines)

    def values(key: str) -> list[float]:
        return [float(line[key]) for line in lines[5:] if line.get(key) is not None]

    def growth(key: str) -> float | None:
        """The trend: the median of the last 10 minutes against the median of minutes 6-15. One minute's median
        evaluation cost (~70 µs) moves by a third when the machine is busy for a while; medians of 10 minutes do
        not, and growth that lasts shows in both."""
        found = values(key)
        if len(found) < 2:
            return None
        window = max(1, min(10, len(found) // 2))
        start, end = statistics.median(found[:window]), statistics.median(found[-window:])
        return round((end - start) / start, 4) if start else None

    def peak(key: str) -> float | None:
        """The highest minute against minute 6 (noise included)."""
        found = values(key)
        if len(found) < 2 or not found[0]:
            return None
        return round((max(found) - found[0]) / found[0], 4)

    wakeup = "wakeup_p50_ms" if values("wakeup_p50_ms") else "wakeup_max_ms"
    return {
        "minutes": len(lines),
        "fills_every_minute_after_the_first": all(line["fills"] > 0 for line in after_first),
        "venue_balance_rejections": balance,
        "min_equity": str(min(equities)) if equities else None,
        "equity_floor": str(start_cash - loss_limit),
        "equity_above_floor": bool(equities) and min(equities) >= start_cash - loss_limit,
        "rss_growth_after_5_min": growth("rss_mb"),
        "wakeup_growth_after_5_min": growth(wakeup),
        "rss_peak_after_5_min": peak("rss_mb"),
        "wakeup_peak_after_5_min": peak(wakeup),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--scenario", default="synthetic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trader", default=str(Path(sys.executable).with_name("trader")), help="the trader command")
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error("--minutes must be >= 1")
    start_cash, loss_limit = Decimal(1000), Decimal(100)  # the defaults of TRADER_RUN__ and TRADER_RISK__
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="trader-soak-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
        env |= {"TRADER_RUN__LOG_FORMAT": "json", "TRADER_RUN__LOG_LEVEL": "WARNING"}
        command = [
            args.trader, "run", "--venue", "sim", "--scenario", args.scenario, "--seed", str(args.seed),
            "--duration", str(args.minutes * 60 + 30), "--http-port", str(port),
            "--database-url", f"sqlite:{folder}/trader.sqlite3", "--env-file", os.devnull,
        ]  # fmt: skip
        log = Path(folder, "engine.log").open("w")  # noqa: SIM115
        engine = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)  # noqa: S603
        print(json.dumps({"bench": "soak", "minutes": args.minutes, "pid": engine.pid, "command": " ".join(command)}))
        lines: list[dict[str, Any]] = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if http.get("/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if engine.poll() is not None or time.monotonic() > deadline:
                        print(json.dumps({"error": "the engine did not start", "exit": engine.poll()}))
                        return 1
                    time.sleep(0.5)
                before = _sample(http)
                started = time.monotonic()
                for minute in range(1, args.minutes + 1):
                    time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
                    if engine.poll() is not None:
                        print(json.dumps({"error": "the engine exited", "exit": engine.returncode}))
                        return 1
                    now = _sample(http)
                    line = _minute_line(minute, before, now, _rss_mb(engine.pid))
                    lines.append(line)
                    print(json.dumps(line), flush=True)
                    before = now
        finally:
            if engine.poll() is None:
                engine.send_signal(signal.SIGINT)
            try:
                summary, _ = engine.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                engine.kill()
                summary, _ = engine.communicate()
            log.close()
        print(json.dumps({"summary": json.loads(summary.strip().splitlines()[-1]) if summary.strip() else None}))
        print(json.dumps(_verdict(lines, start_cash, loss_limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
