"""`python -m bench chaos [--kills N] [--phase-secs S] [--scenarios a,b] [--seed S]`: the engine live against the
simulated venue under faults, judged by the venue's own records.

Everything runs as an operator would run it: `trader sim` in a process of its own, and `trader run --venue polymarket
--live` against it (its URLs in `TRADER_ENDPOINTS__*` and `TRADER_CHAIN__*`, a fresh test key per scenario, which the
sim funds with 10,000 pUSD, `TRADER_CONFIRM_LIVE=yes`). The ground truth is the sim's ledger (`GET
/_sim/ledger?address=`: every order the venue took from that wallet with its trades, every refusal, the wallet's pUSD
and shares), never the engine's own view. Faults go through the sim's `/_sim/faults`; the store and Redis outages
stop servers this bench starts itself (a private PostgreSQL cluster made with `initdb` in a temporary directory and a
private `redis-server`, on free ports): the machine's own servers are never touched.

Scenarios (all by default, in this order; `--scenarios` picks some):

- `kill_sqlite`, `kill_postgres`: `--kills` (10) `kill -9` of the engine at random moments (during its start and
  recovery as well as while trading), each followed by a restart on the same store; the cash check after each
  restart, the recovery time of each (from the new process to recovered, below);
- `rest_503`, `rest_429`: every CLOB REST request answered 503 (or 429) for `--phase-secs`;
- `order_500`: the order endpoints alone (`/order`, `/orders`) answer 500 for `--phase-secs`;
- `order_delay`: order replies delayed 1.5 s (the engine's request deadline is 0.5 s) for `--phase-secs`;
- `ws_drop`: every WebSocket dropped every 3 s for `--phase-secs`; `ws_stall`: every WebSocket stalled (open, silent)
  for `--phase-secs`;
- `pg_outage`: the engine on the private PostgreSQL, stopped (`pg_ctl stop -m immediate`) for `--phase-secs`;
- `redis_outage`: the engine publishing to the private Redis, killed for `--phase-secs`.

Each scenario: a fresh key and store, the engine started and trading, the fault, its end, the engine's recovery
(measured, up to `--recover-secs`), a graceful stop (SIGINT), then the comparison of the store with the ledger. One
JSON line per scenario, the last line the totals:

- `duplicate_orders`: orders the venue took that the store has no intent for, though an intent of the same token,
  side, price and size was sent (the same intent sent twice);
- `lost_intents`: intents still PENDING in the store after the graceful stop, and orders the venue took that no
  intent of the store accounts for;
- `contradicted_verdicts`: an intent or order the store calls refused, never sent or not found (REJECTED, NOT_SENT,
  CANCELED SUBMIT_NOT_FOUND / NEVER_SENT) that the venue took, or one it calls taken that the venue never took;
- `store_vs_venue`: differences of orders (missing, matched size, open or not), trades (missing on either side, size,
  failed or not), positions (shares held) and cash (the engine's cash at its exit, and after each restart, against
  the wallet's pUSD);
- `recover_secs` (from the fault's end, or each restart, to `/ready` 200 with trading ACTIVE, every breaker closed and
  no order in doubt), `rss_mb` (the
  engine's largest resident memory seen), what was traded (`orders`, `trades`, `refusals`), and for a fault phase
  `during`: the trading states the engine went through, and when each breaker first counted a failure and first
  opened (seconds into the fault, sampled every 0.5 s).

Exit status 1 when any wrong-outcome count is not 0 (or a scenario could not run), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.servers import PrivatePostgres, PrivateRedis
from bench.soak import _free_port, _rss_mb

SCENARIOS = (
    "kill_sqlite",
    "kill_postgres",
    "rest_503",
    "rest_429",
    "order_500",
    "order_delay",
    "ws_drop",
    "ws_stall",
    "pg_outage",
    "redis_outage",
)
NEVER_TAKEN = {"SUBMIT_NOT_FOUND", "NEVER_SENT"}
WRONG = ("duplicate_orders", "lost_intents", "contradicted_verdicts", "store_vs_venue")


def _emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, default=str), flush=True)


# -- the simulated venue -------------------------------------------------------------------------------------------


class Sim:
    def __init__(self, trader: str, folder: Path, seed: int) -> None:
        self.log = (folder / "sim.log").open("w")
        command = [
            trader, "sim", "--port", "0", "--seed", str(seed),
            "--scenario-param", "gap_rate_per_min=40", "--scenario-param", "dislocation_rate_per_min=6",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=_clean_env()
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"trader sim did not start (exit {self.process.wait()}); see {folder / 'sim.log'}")
        self.urls: dict[str, str] = json.loads(line)
        self.http = httpx.Client(base_url=self.urls["rest"], timeout=30)

    def fault(self, kind: str, **params: object) -> None:
        reply = self.http.post("/_sim/faults", json={"kind": kind, **params})
        reply.raise_for_status()

    def clear(self) -> None:
        self.http.delete("/_sim/faults").raise_for_status()

    def ledger(self, address: str) -> dict[str, Any]:
        reply = self.http.get("/_sim/ledger", params={"address": address})
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def cash(self, address: str) -> Decimal:
        return Decimal(self.ledger(address)["collateral"])

    def close(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}


# -- the engine ----------------------------------------------------------------------------------------------------


@dataclass
class Store:
    url: str
    schema: str | None = None


@dataclass
class Engine:
    """`trader run --venue polymarket --live` against the sim, with one key and one store."""

    trader: str
    sim: Sim
    key: str
    store: Store
    folder: Path
    redis_url: str | None = None
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[str] | None = None
    rss_max: float = 0.0
    starts: int = 0
    address: str = ""

    def env(self) -> dict[str, str]:
        u = self.sim.urls
        env = _clean_env() | {
            "TRADER_ENDPOINTS__REST_URL": u["rest"],
            "TRADER_ENDPOINTS__WS_MARKET_URL": u["ws_market"],
            "TRADER_ENDPOINTS__WS_USER_URL": u["ws_user"],
            "TRADER_ENDPOINTS__GAMMA_URL": u["gamma"],
            "TRADER_ENDPOINTS__ESPN_URL": u["espn"],
            "TRADER_CHAIN__RPC_URL": u["rpc"],
            "TRADER_CHAIN__RELAYER_URL": u["relayer"],
            "TRADER_PRIVATE_KEY": self.key,
            "TRADER_CONFIRM_LIVE": "yes",
            "TRADER_RUN__LOG_FORMAT": "json",
            "TRADER_RUN__LOG_LEVEL": "WARNING",
        }
        if self.store.schema:
            env["TRADER_STORE__SCHEMA"] = self.store.schema
        return env

    def start(self) -> float:
        """Start the engine; the time it started at (monotonic)."""
        command = [
            self.trader, "run", "--venue", "polymarket", "--live", "--http-port", str(self.port),
            "--database-url", self.store.url, "--env-file", os.devnull,
        ]  # fmt: skip
        if self.redis_url:
            command += ["--redis-url", self.redis_url]
        self.starts += 1
        log = (self.folder / f"engine-{self.starts}.log").open("w")
        self.process = subprocess.Popen(  # noqa: S603
            command, env=self.env(), stdout=subprocess.PIPE, stderr=log, text=True
        )
        log.close()
        return time.monotonic()

    def sample_rss(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.rss_max = max(self.rss_max, _rss_mb(self.process.pid) or 0.0)

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)
        except httpx.HTTPError:
            return None

    def status(self) -> dict[str, Any] | None:
        reply = self.get("/status?full=1")  # the short /status has no breakers, capital or funds
        if reply is None or reply.status_code != 200:
            return None
        result: dict[str, Any] = reply.json()
        return result

    def is_ready(self) -> bool:
        """Recovered: `/ready` 200, trading ACTIVE, every breaker closed, no order in doubt."""
        reply = self.get("/ready")
        if reply is None or reply.status_code != 200:
            return False
        status = self.status()
        if status is None or status.get("trading_state") != "ACTIVE":
            return False
        breakers = status.get("breakers") or {}
        closed = all(str(b.get("state", "")).lower() == "closed" for b in breakers.values() if isinstance(b, dict))
        return closed and not (status.get("orders_in_doubt") or {}).get("unknown")

    def wait_ready(self, since: float, timeout: float) -> float | None:
        """Seconds from `since` until ready (None: not within `timeout`, or the engine exited)."""
        deadline = since + timeout
        while time.monotonic() < deadline:
            self.sample_rss()
            if self.process is None or self.process.poll() is not None:
                return None
            if self.is_ready():
                return round(time.monotonic() - since, 2)
            time.sleep(0.25)
        return None

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()

    def stop(self, timeout: float = 90) -> dict[str, Any] | None:
        """SIGINT, wait for the exit; the summary line, if it printed one."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        for line in reversed(out.strip().splitlines()):
            with contextlib.suppress(ValueError):
                summary: dict[str, Any] = json.loads(line)
                return summary
        return None

    def cash_agrees(self, address: str, timeout: float = 20) -> tuple[bool, str]:
        """Whether the engine's cash equals the wallet's pUSD at some moment within `timeout`. Both move with fills
        (a read of the venue before and after the engine's brackets it), and a merge or redemption in flight may have
        paid at the venue before the engine has its confirmation (its payout is then allowed for)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            before = self.sim.cash(address)
            status = self.status()
            after = self.sim.cash(address)
            if status is not None and "cash" in status.get("money", {}):
                engine = Decimal(status["money"]["cash"])
                allowed = {engine}
                if (status.get("capital") or {}).get("open_ops"):
                    with contextlib.suppress(Exception):
                        allowed |= {engine + _d(op["payout"]) for op in _in_flight(_read_store(self.store))}
                if allowed & {before, after}:
                    return True, str(engine)
                funds = (status.get("funds") or {}).get("balance")
                last = f"engine {engine} (funds {funds}) venue {before}..{after}"
            time.sleep(0.5)
        return False, last


# -- the store, read back ------------------------------------------------------------------------------------------

TABLES = {
    "order_intents": "client_order_id, order_id, token_id, side, price, size, state, reason",
    "orders": "order_id, token_id, side, price, original_size, size_matched, status, reason, is_open",
    "trades": "trade_id, order_id, size, status",
    "positions": "token_id, quantity",
    "capital_ops": "op_id, kind, state, yes_token_id, no_token_id, yes_amount, no_amount, payout",
}


def _in_flight(store: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merges and redemptions sent and not confirmed yet: the venue may have applied them already."""
    return [op for op in store["capital_ops"] if op["state"] in ("PREPARED", "PENDING")]


def _read_store(store: Store) -> dict[str, list[dict[str, Any]]]:
    if store.url.startswith("sqlite:"):
        connection = sqlite3.connect(f"file:{store.url.removeprefix('sqlite:')}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        try:
            return {t: [dict(r) for r in connection.execute(f"SELECT {c} FROM {t}")] for t, c in TABLES.items()}  # noqa: S608
        finally:
            connection.close()

    async def read() -> dict[str, list[dict[str, Any]]]:
        import asyncpg

        connection = await asyncpg.connect(store.url)
        try:
            if store.schema:
                await connection.execute(f'SET search_path TO "{store.schema}"')
            out: dict[str, list[dict[str, Any]]] = {}
            for table, columns in TABLES.items():
                out[table] = [dict(r) for r in await connection.fetch(f"SELECT {columns} FROM {table}")]  # noqa: S608
            return out
        finally:
            await connection.close()

    return asyncio.run(read())


# -- the verdict ---------------------------------------------------------------------------------------------------


def _d(text: object) -> Decimal:
    return Decimal(str(text)) if text not in (None, "") else Decimal(0)


def judge(store: dict[str, list[dict[str, Any]]], ledger: dict[str, Any], engine_cash: list[str]) -> dict[str, Any]:
    """The wrong outcomes: the store (and the engine's cash) against the venue's ledger."""
    venue = {o["order_id"]: o for o in ledger["orders"]}
    answered = {text.split(":", 1)[0] for text in ledger["refusals"]}  # refused (a FOK killed, a bad price, ...)
    intents = {i["order_id"]: i for i in store["order_intents"] if i["order_id"]}
    orders = {o["order_id"]: o for o in store["orders"]}
    examples: list[str] = []
    counts: Counter[str] = Counter()

    def wrong(kind: str, detail: str) -> None:
        counts[kind] += 1
        if len(examples) < 12:
            examples.append(f"{kind}: {detail}")

    shapes = Counter((o["token_id"], o["side"], _d(o["price"]), _d(o["original_size"])) for o in venue.values())
    intent_shapes = Counter((i["token_id"], i["side"], _d(i["price"]), _d(i["size"])) for i in intents.values())
    for oid, order in venue.items():
        if oid in intents:
            continue
        shape = (order["token_id"], order["side"], _d(order["price"]), _d(order["original_size"]))
        if intent_shapes[shape] and shapes[shape] > intent_shapes[shape]:
            wrong("duplicate_orders", f"{oid[:12]} taken by the venue, a second order of an intent")
        else:
            wrong("lost_intents", f"{oid[:12]} taken by the venue, no intent in the store")
    for intent in store["order_intents"]:
        if intent["state"] == "PENDING":
            wrong("lost_intents", f"{intent['client_order_id']} still PENDING after the stop")
    for oid, intent in intents.items():
        row = orders.get(oid)
        taken = oid in venue
        refused = intent["state"] in ("REJECTED", "NOT_SENT") or (
            row is not None and row["status"] == "CANCELED" and row["reason"] in NEVER_TAKEN
        )
        if taken and refused:
            wrong("contradicted_verdicts", f"{oid[:12]} {intent['state']}/{row and row['reason']} taken by the venue")
        if (not taken and oid not in answered and intent["state"] == "ACKED") or (
            not taken and row is not None and row["status"] in ("FILLED", "MATCHED", "PARTIALLY_FILLED")
        ):
            wrong("contradicted_verdicts", f"{oid[:12]} {intent['state']}/{row and row['status']} never taken")
    # orders
    for oid, order in venue.items():
        row = orders.get(oid)
        if row is None:
            wrong("store_vs_venue", f"order {oid[:12]} missing from the store")
            continue
        if _d(row["size_matched"]) != _d(order["size_matched"]):
            wrong("store_vs_venue", f"order {oid[:12]} matched {row['size_matched']} vs {order['size_matched']}")
        if bool(row["is_open"]) != (order["status"] == "LIVE"):
            wrong("store_vs_venue", f"order {oid[:12]} open {bool(row['is_open'])} vs venue {order['status']}")
    # trades
    venue_trades = {(t["trade_id"], o["order_id"]): t for o in venue.values() for t in o["trades"]}
    store_trades = {(t["trade_id"], t["order_id"]): t for t in store["trades"]}
    for key, trade in venue_trades.items():
        row = store_trades.get(key)
        if row is None:
            wrong("store_vs_venue", f"trade {key[0][:12]} missing from the store")
        elif _d(row["size"]) != _d(trade["size"]) or (row["status"] == "FAILED") != (trade["status"] == "FAILED"):
            wrong(
                "store_vs_venue",
                f"trade {key[0][:12]} {row['size']} {row['status']} vs {trade['size']} {trade['status']}",
            )
    for key in store_trades.keys() - venue_trades.keys():
        wrong("store_vs_venue", f"trade {key[0][:12]} in the store, not at the venue")
    # positions
    held = {p["token_id"]: _d(p["quantity"]) for p in store["positions"] if _d(p["quantity"])}
    shares = {t: _d(q) for t, q in ledger["shares"].items()}
    moving: dict[str, Decimal] = {}  # what merges and redemptions in flight may already have taken at the venue
    for op in _in_flight(store):
        for side in ("yes", "no"):
            token = op[f"{side}_token_id"]
            moving[token] = moving.get(token, Decimal(0)) + _d(op[f"{side}_amount"])
    settled = set(ledger.get("resolved_tokens", ()))  # settled by the engine at the payout, redeemed or worthless
    for token in (held.keys() | shares.keys()) - settled:
        mine, theirs = held.get(token, Decimal(0)), shares.get(token, Decimal(0))
        if theirs not in (mine, mine - moving.get(token, Decimal(0))):
            wrong("store_vs_venue", f"position {token[:12]} {held.get(token, 0)} vs {shares.get(token, 0)}")
    # cash
    for problem in engine_cash:
        wrong("store_vs_venue", f"cash: {problem}")
    trades = sum(len(o["trades"]) for o in venue.values())
    return {
        **{kind: counts[kind] for kind in WRONG},
        "orders": len(venue),
        "trades": trades,
        "refusals": sum(ledger["refusals"].values()),
        "capital_in_flight": len(_in_flight(store)),
        "resolved_tokens_held": len(settled),
        "examples": examples,
    }


# -- scenarios -----------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    trader: str
    folder: Path
    sim: Sim
    rng: random.Random
    kills: int
    phase_secs: float
    warmup_secs: float
    recover_secs: float
    pg: PrivatePostgres | None = None
    redis: PrivateRedis | None = None

    def postgres(self) -> PrivatePostgres:
        if self.pg is None:
            self.pg = PrivatePostgres(self.folder)
        return self.pg

    def engine(self, name: str, *, postgres: bool = False, redis: bool = False) -> Engine:
        from eth_account import Account

        folder = self.folder / name
        folder.mkdir()
        key = "0x" + self.rng.randbytes(32).hex()
        store = Store(self.postgres().dsn, f"chaos_{name}") if postgres else Store(f"sqlite:{folder}/trader.sqlite3")
        redis_url = None
        if redis:
            self.redis = self.redis or PrivateRedis(self.folder)
            redis_url = self.redis.url
        return Engine(
            self.trader, self.sim, key, store, folder, redis_url=redis_url, address=Account.from_key(key).address
        )

    def run(self, name: str) -> dict[str, Any]:
        started = time.monotonic()
        postgres = name in ("kill_postgres", "pg_outage")
        engine = self.engine(name, postgres=postgres, redis=name == "redis_outage")
        address = engine.address
        cash_problems: list[str] = []
        recover: list[float] = []
        notes: dict[str, Any] = {}
        try:
            since = engine.start()
            first = engine.wait_ready(since, 120)
            if first is None:
                raise RuntimeError(f"the engine did not get ready (see {engine.folder})")
            notes["start_secs"] = first
            if name.startswith("kill_"):
                self._kills(engine, recover, cash_problems, notes)
            else:
                self._sleep(engine, self.warmup_secs)
                self._phase(name, engine, notes)
                ended = time.monotonic()
                took = engine.wait_ready(ended, self.recover_secs)
                if took is None:
                    cash_problems.append("did not recover")  # counted: a fault the engine did not get out of
                else:
                    recover.append(took)
            self._sleep(engine, self.warmup_secs)  # trade a little after recovering, to show it trades
            ok, seen = engine.cash_agrees(address)
            if not ok:
                cash_problems.append(f"before the stop: {seen}")
        finally:
            summary = engine.stop()
            self.sim.clear()
            if name == "pg_outage" and self.pg is not None:
                with contextlib.suppress(subprocess.SubprocessError):
                    self.pg.start()  # already up, unless the phase failed half-way
        time.sleep(1.0)  # the last settlements
        ledger = self.sim.ledger(address)
        if summary is None:
            cash_problems.append("no exit summary")
        elif _d(ledger["collateral"]) not in {
            _d(summary.get("cash")) + _d(op["payout"]) for op in [{"payout": 0}, *_in_flight(_read_store(engine.store))]
        }:
            cash_problems.append(f"at exit: engine {summary.get('cash')} venue {ledger['collateral']}")
        verdict = judge(_read_store(engine.store), ledger, cash_problems)
        line: dict[str, Any] = {
            "scenario": name,
            **{k: verdict[k] for k in WRONG},
            "recover_secs": {"max": max(recover, default=None), "each": recover}
            if len(recover) > 1
            else (recover[0] if recover else None),
            "rss_mb": engine.rss_max,
            "orders": verdict["orders"],
            "trades": verdict["trades"],
            "refusals": verdict["refusals"],
            "capital_in_flight_at_stop": verdict["capital_in_flight"],
            "secs": round(time.monotonic() - started, 1),
            **notes,
        }
        if verdict["examples"]:
            line["examples"] = verdict["examples"]
        return line

    def _sleep(self, engine: Engine, secs: float) -> None:
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            engine.sample_rss()
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _kills(self, engine: Engine, recover: list[float], cash: list[str], notes: dict[str, Any]) -> None:
        moments: list[str] = []
        while len(moments) < self.kills:
            self._sleep(engine, self.rng.uniform(0.2, 8.0))  # trading (or still recovering from the last kill)
            engine.kill9()
            moments.append("trading")
            since = engine.start()
            if len(moments) < self.kills and self.rng.random() < 0.3:
                time.sleep(self.rng.uniform(0.5, 4.0))  # the start: discovery, reconciliation, recovery of intents
                engine.kill9()
                moments.append("starting")
                since = engine.start()
            took = engine.wait_ready(since, self.recover_secs)
            if took is None:
                cash.append(f"did not recover after kill {len(moments)}")
                break
            recover.append(took)
            ok, seen = engine.cash_agrees(engine.address)
            if not ok:
                cash.append(f"after restart {len(moments)}: {seen}")
        notes["kills"] = len(moments)
        notes["killed_while"] = dict(Counter(moments))

    def _phase(self, name: str, engine: Engine, notes: dict[str, Any]) -> None:
        secs, sim = self.phase_secs, self.sim
        big = 1_000_000
        if name == "rest_503":
            sim.fault("http_errors", status=503, count=big)
        elif name == "rest_429":
            sim.fault("http_errors", status=429, count=big)
        elif name == "order_500":
            sim.fault("http_errors", status=500, count=big, path_prefix="/order")
        elif name == "order_delay":
            sim.fault("delay_http", secs="1.5", path_prefix="/order")
        elif name == "ws_stall":
            sim.fault("stall_ws")
        elif name == "pg_outage":
            assert self.pg is not None
            self.pg.stop()
        elif name == "redis_outage":
            assert self.redis is not None
            self.redis.stop()
        if name == "ws_drop":
            deadline = time.monotonic() + secs
            drops = 0
            while time.monotonic() < deadline:
                sim.fault("drop_ws", channel="all")
                drops += 1
                self._sleep(engine, 3.0)
            notes["drops"] = drops
        else:
            notes["during"] = self._watch(engine, secs)
        if name == "pg_outage":
            assert self.pg is not None
            self.pg.start()
        elif name == "redis_outage":
            assert self.redis is not None
            self.redis.start()
        elif name == "ws_stall":
            sim.fault("resume_ws")
        sim.clear()

    def _watch(self, engine: Engine, secs: float) -> dict[str, Any]:
        """The engine during a fault, sampled every half second: the trading states it went through, and when each
        breaker first opened (seconds into the fault)."""
        started = time.monotonic()
        states: list[str] = []
        opened: dict[str, float] = {}
        failed: dict[str, float] = {}
        before: dict[str, int] = {}
        while time.monotonic() < started + secs:
            engine.sample_rss()
            status = engine.status() or {}
            state = str(status.get("trading_state"))
            if not states or states[-1] != state:
                states.append(state)
            now = round(time.monotonic() - started, 1)
            for family, breaker in (status.get("breakers") or {}).items():
                if not isinstance(breaker, dict):
                    continue
                failures = int(breaker.get("failures") or 0)
                if before.setdefault(family, failures) < failures:
                    failed.setdefault(family, now)
                if str(breaker.get("state")).lower() == "open":
                    opened.setdefault(family, now)
            time.sleep(0.5)
        return {
            "trading_states": states,
            "breaker_first_failure_after_secs": failed,
            "breaker_opened_after_secs": opened,
        }

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
        if self.redis is not None:
            self.redis.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="kill -9 restarts per store (default 10)")
    parser.add_argument("--phase-secs", type=float, default=20.0, help="how long each fault lasts (default 20)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    parser.add_argument("--warmup-secs", type=float, default=8.0, help="trading before a fault and after recovery")
    parser.add_argument("--recover-secs", type=float, default=120.0, help="the longest wait for recovery")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, stores)")
    parser.add_argument("--trader", default=str(Path(sys.executable).with_name("trader")), help="the trader command")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        parser.error(f"unknown scenario {unknown}; expected some of {', '.join(SCENARIOS)}")
    if args.kills < 1 or args.phase_secs <= 0:
        parser.error("--kills must be >= 1 and --phase-secs > 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background: the children would inherit
        signal.signal(signal.SIGINT, signal.default_int_handler)  # it, and never take the graceful stop's SIGINT
    folder = Path(tempfile.mkdtemp(prefix="trader-chaos-"))
    _emit({"bench": "chaos", "seed": seed, "scenarios": names, "kills": args.kills, "phase_secs": args.phase_secs,
           "folder": str(folder)})  # fmt: skip
    lines: list[dict[str, Any]] = []
    failed = 0
    sim = Sim(args.trader, folder, seed)
    bench = Bench(
        args.trader, folder, sim, random.Random(seed), args.kills, args.phase_secs, args.warmup_secs, args.recover_secs
    )
    try:
        for name in names:
            try:
                line = bench.run(name)
            except Exception as exc:  # a scenario that could not run is reported, and the others still run
                line = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"}
                failed += 1
            lines.append(line)
            _emit(line)
    finally:
        bench.close()
        sim.close()
        if not args.keep and not failed:
            shutil.rmtree(folder, ignore_errors=True)
    totals = {kind: sum(int(line.get(kind, 0)) for line in lines) for kind in WRONG}
    recoveries = [line["recover_secs"] for line in lines if line.get("recover_secs") is not None]
    worst = max((r["max"] if isinstance(r, dict) else r for r in recoveries), default=None)
    kills = sum(int(line.get("kills", 0)) for line in lines)
    _emit({"totals": totals, "kills": kills, "scenarios": len(lines), "failed_scenarios": failed,
           "max_recover_secs": worst, "max_rss_mb": max((line.get("rss_mb") or 0 for line in lines), default=None),
           "ok": failed == 0 and not any(totals.values())})  # fmt: skip
    return 0 if failed == 0 and not any(totals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
