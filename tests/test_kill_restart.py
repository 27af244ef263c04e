"""kill -9 of `trader run --venue polymarket --live` in the middle of trading, then a restart on the same database.

The engine runs as a subprocess against the simulated venue, which this test runs in-process (over real sockets,
exactly as a separately started `trader sim`), so that the test reads the venue's own records. The SIGKILL is sent
from inside the venue at the moment it takes one of our orders, before it answers: the engine dies with that
order's intent written (to the intent journal) and its outcome unknown, and with whatever its write-behind queue
held. After the restart:

- every intent in the store has an outcome (none is left PENDING), the killed order's included;
- every order the venue has from our key is in the store, and every fill the venue has is in the store;
- every position is what the venue holds for us;
- no order was sent twice (no two venue orders share a client order id), and nothing was sent again.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from bench.servers import live_engine_env
from trader.integrations.store.base import IntentState
from trader.integrations.store.journal import read_journal
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.events import OrderEvent, TradeEvent
from trader.venues.sim.exchange import CANCELED
from trader.venues.sim.markets import UNITS_PER_ONE
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

GAPS = {"gap_rate_per_min": "90", "gap_ttl_secs": "3", "dislocation_rate_per_min": "0"}


def _engine_env(sim: SimVenue, key: str, database: Path) -> dict[str, str]:
    return live_engine_env(sim.urls, key, f"sqlite:{database}")


async def _start_engine(tmp_path: Path, env: dict[str, str], name: str) -> trio.Process:
    command = [sys.executable, "-m", "trader", "run", "--venue", "polymarket", "--live"]
    command += ["--env-file", os.devnull]
    out = (tmp_path / f"{name}.out").open("wb")
    err = (tmp_path / f"{name}.err").open("wb")
    try:
        return await trio.lowlevel.open_process(command, env=env, stdout=out, stderr=err)
    finally:
        out.close()
        err.close()


def _ours(sim: SimVenue, address: str) -> dict[str, Any]:
    return {o.order_id: o for o in sim.exchange.orders() if o.maker_address.lower() == address}


def _fills(sim: SimVenue, address: str) -> set[tuple[str, str]]:
    fills: set[tuple[str, str]] = set()
    for trade in sim.exchange.trades():
        if trade.taker.maker_address.lower() == address:
            fills.add((trade.trade_id, trade.taker.order_id))
        fills.update(
            (trade.trade_id, f.order.order_id) for f in trade.makers if f.order.maker_address.lower() == address
        )
    return fills


async def _wait_for_orders(sim: SimVenue, address: str, count: int, process: trio.Process, log: Path) -> None:
    with trio.fail_after(30):
        while len(_ours(sim, address)) < count:  # the sim's records have no event to wait on
            assert process.returncode is None, f"the engine exited early, see {log}"
            await trio.sleep(0.05)


@pytest.mark.timeout(120)  # end to end: 4-8 s on the 2-core machine, more under load
async def test_kill_9_mid_trading_then_restart_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    address = OrderSigner(key).address.lower()
    database = tmp_path / "trader.sqlite3"
    killed: list[str] = []
    async with open_sim_venue(SimConfig(markets=4, seed=7, scenario_params=GAPS)) as sim:
        env = _engine_env(sim, key, database)
        first = await _start_engine(tmp_path, env, "first")
        try:
            await _wait_for_orders(sim, address, 4, first, tmp_path / "first.err")
            earlier = set(_ours(sim, address))  # events of these (cancels, settlement) are not new orders

            def kill_on_our_next_order(event: object) -> None:
                """Called by the venue while it processes an order, before it answers the engine."""
                order_id = None
                if isinstance(event, OrderEvent) and event.order.maker_address.lower() == address:
                    order_id = event.order.order_id
                elif isinstance(event, TradeEvent) and event.trade.maker_address.lower() == address:
                    order_id = event.trade.taker_order_id
                if order_id is not None and order_id not in earlier and not killed:
                    killed.append(order_id)
                    os.kill(first.pid, signal.SIGKILL)

            sim.exchange.add_listener(kill_on_our_next_order)
            with trio.fail_after(30):
                await first.wait()
            sim.exchange.remove_listener(kill_on_our_next_order)
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
        assert first.returncode == -signal.SIGKILL
        (killed_order,) = killed
        assert killed_order in _ours(sim, address)  # the venue has it; the engine never heard back
        # Written before it was sent, outcome unknown: in the intent journal, and in the database if its row landed.
        journaled = {i.order_id: i.state for i in read_journal(Path(f"{database}-intents"))[0]}
        with sqlite3.connect(database) as db:
            row = db.execute("SELECT state FROM order_intents WHERE order_id = ?", (killed_order,)).fetchone()
        assert (row is not None and row[0] == "PENDING") or journaled.get(killed_order) is IntentState.PENDING

        sent_before_restart = len(_ours(sim, address))
        second = await _start_engine(tmp_path, env, "second")
        try:
            await _wait_for_orders(sim, address, sent_before_restart + 2, second, tmp_path / "second.err")
            second.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await second.wait()
        finally:
            if second.returncode is None:
                second.kill()
                await second.wait()
        assert second.returncode == 0, (tmp_path / "second.err").read_text()[-2000:]
        orders, fills = _ours(sim, address), _fills(sim, address)
        shares = {t: Decimal(n) / UNITS_PER_ONE for t, n in sim.exchange.wallet(address).shares.items() if n}

    summary = json.loads((tmp_path / "second.out").read_text().splitlines()[-1])
    assert summary["mode"] == "live"
    with sqlite3.connect(database) as db:
        pending = db.execute("SELECT client_order_id FROM order_intents WHERE state = 'PENDING'").fetchall()
        intents = dict(db.execute("SELECT order_id, state FROM order_intents WHERE order_id IS NOT NULL").fetchall())
        stored = dict(db.execute("SELECT order_id, client_order_id FROM orders").fetchall())
        trades = set(db.execute("SELECT trade_id, order_id FROM trades").fetchall())
        positions = {t: Decimal(q) for t, q in db.execute("SELECT token_id, quantity FROM positions") if Decimal(q)}
    # Every intent has an outcome; the one in flight at the kill was resolved by asking the venue for its id.
    assert pending == []
    assert intents[killed_order] == "ACKED"
    # Every order the venue has from our key is in the store, each from its own intent, none sent twice.
    assert set(orders) <= set(stored)
    client_ids = [stored[order_id] for order_id in orders]
    assert None not in client_ids
    assert len(set(client_ids)) == len(client_ids)
    # Each with its outcome: ACKED, or REJECTED for a FOK the venue killed on arrival (the gap had closed): the venue
    # keeps that order in its records, CANCELED with nothing matched.
    for order_id, order in orders.items():
        state = intents.get(order_id)
        killed_on_arrival = order.order_type == "FOK" and order.status == CANCELED and order.matched == 0
        assert state == "ACKED" or (state == "REJECTED" and killed_on_arrival), (order_id, state, order.status)
    # Every fill the venue has is in the store, the fills of the killed order included.
    assert fills <= trades
    assert {t for t in trades if t[1] in orders} == fills
    # ... and so every position is the venue's.
    assert positions == shares
