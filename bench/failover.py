"""`python -m bench failover`: active/standby takeover time over repeated kill -9 of the leader.

Two `trader run --venue polymarket --live` engines (subprocesses, `TRADER_HA__ENABLED=true`) share one PostgreSQL
schema and trade one key against the simulated venue, which runs here over real sockets (as a separately started
`trader sim` would), so its own records are read. Each round kills the leader with SIGKILL at a random moment
(half the rounds: while the venue processes one of its orders, before it answers), measures the time from the kill
to the first order of the new leader that the venue took, and starts the killed engine again as the new standby.

One JSON line per kill (`takeover_s`, the new leader's epoch), then a summary line with `median_takeover_s`,
`max_takeover_s`, and the checks against the venue's records: `duplicate_client_ids` (venue orders sharing a
client order id), `orders_without_intent` (venue orders the store has no write-ahead intent for: lost intents),
`pending_intents` (intents left without an outcome), `positions_match` (the store's positions are the venue's).
Goal: median under 5 s, max under 15 s, every check 0 / true.

    python -m bench failover [--kills 10] [--dsn postgresql://postgres@127.0.0.1:5432/test]

`PairHarness` is also what `tests/test_ha_pair.py` runs, with fewer rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import trio

from bench.servers import live_engine_env
from trader.integrations.store.lease import LeaseRow, read_lease
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema
from trader.integrations.trio_asyncio_bridge import open_asyncio_bridge
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.events import OrderEvent, TradeEvent
from trader.venues.sim.markets import UNITS_PER_ONE
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
GAPS = {"gap_rate_per_min": "90", "gap_ttl_secs": "3", "dislocation_rate_per_min": "0"}


@dataclass
class Engine:
    name: str
    process: trio.Process
    log: Path


@dataclass
class PairHarness:
    """A simulated venue, a PostgreSQL schema, and the engines of one pair trading one key."""

    sim: SimVenue
    workdir: Path
    dsn: str
    schema: str = field(default_factory=lambda: f"bench_ha_{uuid.uuid4().hex[:12]}")
    key: str = field(default_factory=lambda: "0x" + secrets.token_hex(32))
    lock_key: int = field(default_factory=lambda: secrets.randbelow(2**62) + 1)
    lease_secs: float = 2.0
    engines: dict[str, Engine] = field(default_factory=dict)
    started: int = 0
    #: (monotonic time, order id) of each order of ours, as the venue takes it (`listen`); read this, not the
    #: venue's whole book, while the engines run: scanning it starves the venue of its event loop.
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def listen(self) -> None:
        """Record our orders as the venue takes them (from now on)."""
        address = self.address

        def on_event(event: object) -> None:
            order_id = None
            if isinstance(event, OrderEvent) and event.order.maker_address.lower() == address:
                order_id = event.order.order_id
            elif isinstance(event, TradeEvent) and event.trade.maker_address.lower() == address:
                order_id = event.trade.taker_order_id
            if order_id is not None and order_id not in self._seen:
                self._seen.add(order_id)
                self.arrivals.append((time.monotonic(), order_id))

        self.sim.exchange.add_listener(on_event)

    def taken(self) -> set[str]:
        """The ids of our orders the venue has taken so far."""
        return set(self._seen)

    @property
    def address(self) -> str:
        return OrderSigner(self.key).address.lower()

    @property
    def pg(self) -> PostgresSettings:
        return PostgresSettings(url=self.dsn, schema=self.schema)

    def env(self, name: str) -> dict[str, str]:
        urls = self.sim.urls
        return live_engine_env(
            urls,
            self.key,
            self.dsn,
            {
                "TRADER_CHAIN__RPC_URL": urls.rpc,
                "TRADER_CHAIN__RELAYER_URL": urls.relayer,
                "TRADER_STORE__SCHEMA": self.schema,
                "TRADER_HA__ENABLED": "true",
                "TRADER_HA__INSTANCE": name,
                "TRADER_HA__LOCK_KEY": str(self.lock_key),
                "TRADER_HA__LEASE_SECS": str(self.lease_secs),
                "TRADER_HA__RENEW_SECS": str(self.lease_secs / 4),
                "TRADER_HA__TAKEOVER_SECS": str(self.lease_secs * 2.5),
                "TRADER_HA__POLL_SECS": "0.25",
            },
        )

    async def start(self, name: str, **settings: str) -> Engine:
        """Start engine `name`; `settings`: more variables (`TRADER_HA__ON_FENCED="exit"`)."""
        self.started += 1
        log = self.workdir / f"{name}-{self.started}.log"
        command = [sys.executable, "-m", "trader", "run", "--venue", "polymarket", "--live", "--env-file", os.devnull]
        env = {**self.env(name), **settings}
        with log.open("wb") as out:
            process = await trio.lowlevel.open_process(command, env=env, stdout=out, stderr=out)
        engine = Engine(name, process, log)
        self.engines[name] = engine
        return engine

    def ours(self) -> dict[str, Any]:
        """The venue's orders from our key, by order id."""
        return {o.order_id: o for o in self.sim.exchange.orders() if o.maker_address.lower() == self.address}

    async def lease(self) -> LeaseRow | None:
        return await read_lease(self.pg)

    async def wait_leader(self, *, within: float, after_epoch: int = 0) -> LeaseRow:
        """The lease once someone holds it with an epoch above `after_epoch`."""
        with trio.fail_after(within):
            while True:
                self.check_alive()
                row = await self.lease()
                if row is not None and not row.released and row.epoch > after_epoch:
                    return row
                await trio.sleep(0.1)

    async def wait_orders(self, count: int, *, within: float, besides: set[str] | None = None) -> float:
        """Wait until the venue has `count` orders of ours not in `besides`; the time it happened."""
        with trio.fail_after(within):
            while len(self._seen - (besides or set())) < count:
                self.check_alive()
                await trio.sleep(0.02)
        return time.monotonic()

    async def wait_log(self, engine: Engine, event: str, *, within: float) -> None:
        """Wait until `engine` has logged `event` (its JSON log lines)."""
        needle = f'"event": "{event}"'
        with trio.fail_after(within):
            while needle not in engine.log.read_text(errors="replace"):
                if engine.process.returncode is not None and engine.process.returncode != -signal.SIGSTOP:
                    self.check_alive()
                await trio.sleep(0.05)

    async def intent_epochs(self) -> dict[str, int | None]:
        """order id -> the epoch its intent was written under."""
        rows = await self.query("SELECT order_id, epoch FROM order_intents WHERE order_id IS NOT NULL")
        return {r[0]: r[1] for r in rows}

    def local_ports(self, engine: Engine) -> set[int]:
        """The local TCP ports of `engine`'s sockets (its connections to PostgreSQL among them), from /proc."""
        inodes: set[str] = set()
        fd_dir = Path(f"/proc/{engine.process.pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports: set[int] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    async def end_sessions(self) -> int:
        """End every PostgreSQL session of the running engines (locks fall with them), as a server restart would
        for them, without touching the server or anyone else's sessions. How many were ended."""
        ports: set[int] = set()
        for engine in self.engines.values():
            if engine.process.returncode is None:
                ports |= self.local_ports(engine)
        rows = await self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(ARRAY["  # noqa: S608
            + ",".join(str(int(p)) for p in sorted(ports) or [0])  # integers only
            + "]::int[])"
        )
        return len(rows)

    def check_alive(self) -> None:
        for engine in self.engines.values():
            code = engine.process.returncode
            if code is not None and code not in (-signal.SIGKILL, 3):  # killed here, or fenced with on_fenced=exit
                tail = engine.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"engine {engine.name} exited with {code}:\n{tail}")

    async def kill_leader(self, *, mid_order: bool) -> tuple[Engine, LeaseRow, float]:
        """SIGKILL the leader: at once, or while the venue processes its next order. Returns it, its lease, and
        when."""
        row = await self.wait_leader(within=30)
        engine = self.engines[row.holder]
        if not mid_order:
            os.kill(engine.process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
        else:
            earlier = self.taken()
            when: list[float] = []

            def kill_on_next_order(event: object) -> None:
                order_id = None
                if isinstance(event, OrderEvent) and event.order.maker_address.lower() == self.address:
                    order_id = event.order.order_id
                elif isinstance(event, TradeEvent) and event.trade.maker_address.lower() == self.address:
                    order_id = event.trade.taker_order_id
                if order_id is not None and order_id not in earlier and not when:
                    os.kill(engine.process.pid, signal.SIGKILL)
                    when.append(time.monotonic())

            self.sim.exchange.add_listener(kill_on_next_order)
            try:
                with trio.fail_after(30):
                    while not when:
                        self.check_alive()
                        await trio.sleep(0.01)
            finally:
                self.sim.exchange.remove_listener(kill_on_next_order)
            killed_at = when[0]
        with trio.fail_after(10):
            await engine.process.wait()
        return engine, row, killed_at

    async def stop_all(self) -> None:
        for engine in self.engines.values():
            if engine.process.returncode is None:
                engine.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(30):
            for engine in self.engines.values():
                await engine.process.wait()
        for engine in self.engines.values():
            if engine.process.returncode is None:
                engine.process.kill()
                await engine.process.wait()

    async def query(self, sql: str) -> list[Any]:
        async with open_asyncio_bridge() as bridge:
            conn = await bridge.run(asyncpg.connect, self.dsn, server_settings={"search_path": self.schema})
            try:
                rows: list[Any] = await bridge.run(conn.fetch, sql)
                return rows
            finally:
                await bridge.run(conn.close)

    async def checks(self) -> dict[str, object]:
        """The store against the venue's records (run once every engine has stopped)."""
        orders = self.ours()
        intents = {
            r[0]: (r[1], r[2], r[3])
            for r in await self.query(
                "SELECT order_id, client_order_id, state, epoch FROM order_intents WHERE order_id IS NOT NULL"
            )
        }
        client_ids = [intents[o][0] for o in orders if o in intents]
        positions = {r[0]: Decimal(r[1]) for r in await self.query("SELECT token_id, quantity FROM positions")}
        shares = {t: Decimal(n) / UNITS_PER_ONE for t, n in self.sim.exchange.wallet(self.address).shares.items() if n}
        pending = await self.query("SELECT client_order_id FROM order_intents WHERE state = 'PENDING'")
        epochs = sorted({e for _, _, e in intents.values() if e is not None})
        held = {t: q for t, q in positions.items() if q}
        # A merge the last leader sent but had not seen confirmed when it stopped: the venue may have taken the shares
        # already; the next start's recovery records it. Either side of it counts as agreeing.
        in_flight: dict[str, Decimal] = {}
        ops = await self.query(
            "SELECT yes_token_id, no_token_id, yes_amount, no_amount FROM capital_ops"
            " WHERE kind = 'MERGE' AND state IN ('PREPARED', 'PENDING')"
        )
        for yes, no, yes_amount, no_amount in ops:
            in_flight[yes] = in_flight.get(yes, Decimal(0)) + Decimal(yes_amount)
            in_flight[no] = in_flight.get(no, Decimal(0)) + Decimal(no_amount)
        differ = {
            t[-8:]: [str(held.get(t)), str(shares.get(t))]
            for t in set(held) | set(shares)
            if held.get(t, Decimal(0)) - shares.get(t, Decimal(0)) not in (Decimal(0), in_flight.get(t, Decimal(0)))
        }
        return {
            "venue_orders": len(orders),
            "duplicate_client_ids": len(client_ids) - len(set(client_ids)),
            "orders_without_intent": sum(1 for o in orders if o not in intents),
            "pending_intents": len(pending),
            "positions_match": not differ,
            "positions_differ": differ,
            "merges_in_flight": len(ops),
            "epochs": epochs,
        }


@asynccontextmanager
async def open_pair(workdir: Path, dsn: str, *, lease_secs: float = 2.0) -> AsyncIterator[PairHarness]:
    """A simulated venue and a fresh schema for one pair; the engines stopped and the schema dropped on exit."""
    async with open_sim_venue(SimConfig(markets=4, seed=7, scenario_params=GAPS)) as sim:
        harness = PairHarness(sim=sim, workdir=workdir, dsn=dsn, lease_secs=lease_secs)
        harness.listen()
        try:
            yield harness
        finally:
            with trio.CancelScope(shield=True):
                await harness.stop_all()
                await drop_postgres_schema(harness.pg)


async def run_kills(workdir: Path, dsn: str, kills: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    lines: list[dict[str, object]] = []
    async with open_pair(workdir, dsn) as pair:
        await pair.start("a")
        await pair.wait_leader(within=60)
        await pair.wait_log(await pair.start("b"), "engine_standing_by", within=120)
        await pair.wait_orders(2, within=60)
        for n in range(kills):
            await trio.sleep(rng.uniform(0.5, 3.0))  # trading for a random while
            before = pair.taken()
            engine, killed, killed_at = await pair.kill_leader(mid_order=n % 2 == 0)
            before |= pair.taken()  # the killed order, if the venue took it
            row = await pair.wait_leader(within=30, after_epoch=killed.epoch)
            traded_at = await pair.wait_orders(1, within=60, besides=before)
            line = {
                "kill": n + 1,
                "mid_order": n % 2 == 0,
                "killed": engine.name,
                "new_leader": row.holder,
                "epoch": row.epoch,
                "takeover_s": round(traded_at - killed_at, 3),
            }
            print(json.dumps(line), flush=True)
            lines.append(line)
            restarted = await pair.start(engine.name)  # back as the standby, warm before the next kill
            await pair.wait_log(restarted, "engine_standing_by", within=120)
        await trio.sleep(1.0)
        await pair.stop_all()
        checks = await pair.checks()
    takeovers = [float(line["takeover_s"]) for line in lines]  # type: ignore[arg-type]
    summary: dict[str, object] = {
        "bench": "failover",
        "kills": kills,
        "median_takeover_s": round(statistics.median(takeovers), 3),
        "max_takeover_s": round(max(takeovers), 3),
        **checks,
    }
    print(json.dumps(summary), flush=True)
    return [*lines, summary]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench failover", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", default=os.environ.get("TRADER_TEST_PG_DSN", DEFAULT_DSN))
    parser.add_argument("--workdir", default=None, help="where the engines' logs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        trio.run(run_kills, workdir, args.dsn, args.kills, args.seed)
    return 0
