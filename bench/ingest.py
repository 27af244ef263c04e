"""`python -m bench ingest [--frames N] [--entries-per-frame K]`: market-data ingest, ours vs json.loads + dicts.

Each frame is a `price_change` text frame as the venue sends it: K level changes (YES and the mirrored NO entry,
alternately), each with the venue's best bid / best ask after the change. Per frame, both paths do the same work
on the same frames, starting from the same books (a 40-level snapshot per side of each token):

* ours: `parse_market_frame` (msgspec typed decode + validation: Decimal from strings, finite, range, tick grid,
  known asset) -> `OrderBook.apply_level` for each change -> `top_matches` (the service's best-price check);
* baseline: `json.loads` -> dict access -> the same validation written inline -> the same apply and check.

Both paths must end with identical books and no mismatch (checked). `entries_per_s` is entries per second of
this process's CPU time over the loop (one core; on a shared machine, time spent waiting for the CPU is not
counted); `wall_entries_per_s` is the same over wall time. `p50_us` / `p99_us` are per-frame wall times
(perf_counter_ns), so they do include any preemption by other processes.
Prints one JSON object per line; the last has `entries_per_s`, `p99_us` (ours) and `baseline_entries_per_s`.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trader.domain.book import OrderBook
from trader.domain.feed import LevelChange, PriceChange
from trader.domain.numbers import ONE, ZERO, Side
from trader.engine.market_data import top_matches
from trader.venues.polymarket.parse import parse_market_frame

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MARKET = "0x2f71af14933532e9131bfbe45767d407688f13eb01ecb1a736ba6bb6f21e7de5"
TICK = Decimal("0.01")
DEPTH = 40


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class _Reference:
    """The venue's books (YES and its NO mirror) as plain dicts, to generate frames with true best prices."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.levels: dict[tuple[str, Side], dict[Decimal, Decimal]] = {
            (YES, Side.BUY): {},
            (YES, Side.SELL): {},
            (NO, Side.BUY): {},
            (NO, Side.SELL): {},
        }
        for n in range(1, DEPTH + 1):
            bid, ask = Decimal(50 - n) / 100, Decimal(50 + n) / 100
            self._set(YES, Side.BUY, bid, Decimal(rng.randint(1, 5000)))
            self._set(YES, Side.SELL, ask, Decimal(rng.randint(1, 5000)))

    def _set(self, asset: str, side: Side, price: Decimal, size: Decimal) -> None:
        """Set a YES level and its mirror (YES BUY p <-> NO SELL 1 - p)."""
        other = NO if asset == YES else YES
        for key, level in (((asset, side), price), ((other, side.opposite), ONE - price)):
            if size:
                self.levels[key][level] = size
            else:
                self.levels[key].pop(level, None)

    def best(self, asset: str) -> tuple[str, str]:
        bids, asks = self.levels[(asset, Side.BUY)], self.levels[(asset, Side.SELL)]
        return _text(max(bids, default=ZERO)), _text(min(asks, default=ONE))

    def snapshot(self, asset: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return list(self.levels[(asset, Side.BUY)].items()), list(self.levels[(asset, Side.SELL)].items())

    def frame(self, ts: int, entries_wanted: int) -> str:
        """A frame of `entries_wanted` entries (even): each YES change and its mirrored NO change."""
        entries: list[dict[str, str]] = []
        while len(entries) < entries_wanted:
            side = self.rng.choice((Side.BUY, Side.SELL))
            price = Decimal(self.rng.randint(10, 90)) / 100
            bid, ask = self.best(YES)
            if (side is Side.BUY and price >= Decimal(ask)) or (side is Side.SELL and price <= Decimal(bid)):
                continue  # keep the book uncrossed, as a venue would
            size = ZERO if self.rng.random() < 0.3 else Decimal(self.rng.randint(1, 500000)) / 100
            self._set(YES, side, price, size)
            for asset, entry_side, entry_price in ((YES, side, price), (NO, side.opposite, ONE - price)):
                best_bid, best_ask = self.best(asset)
                entries.append(
                    {
                        "asset_id": asset,
                        "price": _text(entry_price),
                        "size": _text(size),
                        "side": entry_side.value,
                        "hash": f"{self.rng.getrandbits(160):040x}",
                        "best_bid": best_bid,
                        "best_ask": best_ask,
                    }
                )
        frame = {"market": MARKET, "price_changes": entries, "timestamp": str(ts), "event_type": "price_change"}
        return json.dumps(frame, separators=(",", ":"))


def _books(reference: _Reference) -> dict[str, OrderBook]:
    books = {}
    for asset in (YES, NO):
        book = OrderBook(asset, TICK)
        bids, asks = reference.snapshot(asset)
        book.apply_snapshot(bids, asks, now=0.0)
        books[asset] = book
    return books


# ----------------------------------------------------------------------------------------------------------------
# the two paths: each returns (entries applied, mismatches)


def ours(frame: str, books: dict[str, OrderBook], ticks: dict[str, Decimal], now: float) -> tuple[int, int]:
    parsed = parse_market_frame(frame, ticks)
    if parsed.drops:
        raise AssertionError(f"unexpected drops: {parsed.drops}")
    mismatches = 0
    for event in parsed.events:
        if isinstance(event, PriceChange):
            last: dict[str, LevelChange] = {}
            for change in event.changes:
                books[change.asset_id].apply_level(
                    change.side, change.price, change.size, now=now, ts_event_ms=event.ts_event_ms
                )
                last[change.asset_id] = change
            for asset_id, change in last.items():
                mismatches += not top_matches(books[asset_id], change)
    return parsed.entries, mismatches


_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def _decimal(text: object) -> Decimal:
    if not isinstance(text, str):
        raise ValueError(f"expected a decimal string, got {text!r}")
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"not finite: {text!r}")
    return value


def baseline(frame: str, books: dict[str, OrderBook], ticks: dict[str, Decimal], now: float) -> tuple[int, int]:
    message: Any = json.loads(frame)
    if message.get("event_type") != "price_change":
        raise AssertionError("unexpected frame")
    ts = int(message["timestamp"])
    last: dict[str, LevelChange] = {}
    entries = 0
    for entry in message["price_changes"]:
        entries += 1
        asset_id = entry["asset_id"]
        tick = ticks[asset_id]
        size = _decimal(entry["size"])
        price = _decimal(entry["price"])
        if size < ZERO or not ZERO <= price <= ONE or (size and price % tick):
            raise ValueError("invalid entry")
        best_bid, best_ask = entry.get("best_bid"), entry.get("best_ask")
        change = LevelChange(
            asset_id,
            _SIDES[entry["side"]],
            price,
            size,
            _decimal(best_bid) if best_bid else None,
            _decimal(best_ask) if best_ask else None,
        )
        books[asset_id].apply_level(change.side, price, size, now=now, ts_event_ms=ts)
        last[asset_id] = change
    mismatches = sum(not top_matches(books[a], c) for a, c in last.items())
    return entries, mismatches


Path = Callable[[str, dict[str, OrderBook], dict[str, Decimal], float], tuple[int, int]]


def _run(path: Path, frames: list[str], reference: _Reference) -> tuple[dict[str, Any], dict[str, OrderBook]]:
    books = _books(reference)
    ticks = {YES: TICK, NO: TICK}
    times: list[int] = []
    entries = mismatches = 0
    clock = time.perf_counter_ns
    gc.collect()
    cpu_start = time.process_time_ns()
    for frame in frames:
        start = clock()
        applied, wrong = path(frame, books, ticks, 1.0)
        times.append(clock() - start)
        entries += applied
        mismatches += wrong
    cpu_secs = (time.process_time_ns() - cpu_start) / 1e9
    wall_secs = sum(times) / 1e9
    times.sort()
    return {
        "frames": len(frames),
        "entries": entries,
        "mismatches": mismatches,
        "entries_per_s": round(entries / cpu_secs),
        "wall_entries_per_s": round(entries / wall_secs),
        "frames_per_s": round(len(frames) / cpu_secs),
        "p50_us": round(times[len(times) // 2] / 1000, 2),
        "p99_us": round(times[min(len(times) - 1, int(len(times) * 0.99))] / 1000, 2),
    }, books


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--entries-per-frame", type=int, default=2, help="level changes per frame (even)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.entries_per_frame < 2 or args.entries_per_frame % 2:
        parser.error("--frames must be >= 1 and --entries-per-frame an even number >= 2")

    rng = random.Random(args.seed)
    reference = _Reference(rng)
    start_books = _Reference(random.Random(args.seed))  # the same initial books, before any frame
    frames = [reference.frame(1_767_225_600_000 + n, args.entries_per_frame) for n in range(args.frames)]
    print(json.dumps({"bench": "ingest", "frames": len(frames), "entries_per_frame": args.entries_per_frame}))

    # Warm up both paths (first-use caches), then measure each once on the same frames.
    _run(ours, frames[:200], start_books)
    _run(baseline, frames[:200], start_books)
    ours_result, our_books = _run(ours, frames, start_books)
    print(json.dumps({"path": "ours (msgspec)"} | ours_result))
    base_result, base_books = _run(baseline, frames, start_books)
    print(json.dumps({"path": "baseline (json.loads + dicts)"} | base_result))

    final = _books(reference)
    if our_books != final or base_books != final or ours_result["mismatches"] or base_result["mismatches"]:
        print(json.dumps({"error": "books differ from the venue's or a best-price check failed"}))
        return 1
    print(
        json.dumps(
            {
                "entries_per_s": ours_result["entries_per_s"],
                "p99_us": ours_result["p99_us"],
                "baseline_entries_per_s": base_result["entries_per_s"],
                "speedup": round(ours_result["entries_per_s"] / base_result["entries_per_s"], 2),
                "books_match": True,
            }
        )
    )
    return 0
