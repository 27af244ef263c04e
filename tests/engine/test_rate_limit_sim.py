"""A burst of intents against the simulated venue, over real loopback sockets, through the live Polymarket adapter:
a Standard-tier signer's order bucket (a burst of 60, 40 a second) is respected, so the sim, which enforces the same
per-signer buckets, never answers 429; a batch costs its number of orders; a cancel is not held behind the queued
orders (it has its own bucket, and goes first); every intent's verdict matches the sim's records.

Real time (see `tests/engine/test_arbitrage_sim.py`, whose harness this shares); the burst takes about 4 s.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from tests.engine.test_arbitrage_sim import MARKET, NO, YES, Trading, leg, trading
from trader.domain.enums import OrderStatus, OrderType
from trader.domain.intents import Intent
from trader.engine.arbitrage import ArbitrageSettings
from trader.engine.execution import ExecutionSettings
from trader.engine.order_manager import OrderManagerSettings
from trader.engine.rate_limit import ORDER_BUCKET
from trader.engine.risk import RiskSettings
from trader.testing import make_arb, make_intent

SINGLES = 150  # single GTC bids
BASKETS = 25  # two-leg GTC baskets, each one POST /orders costing 2 tokens
TOKENS = SINGLES + 2 * BASKETS  # 200: more than three bursts of a Standard signer


def single(n: int) -> Intent:
    """A bid below the book (it rests), each distinct (not a duplicate for the risk gate)."""
    return make_intent(
        f"bid-{n}",
        strategy="burst",
        condition_id=MARKET.condition_id,
        token_id=YES,
        price=f"0.{10 + n % 30:02d}",
        size=str(5 + n),
    )


def pair(n: int) -> Intent:
    size = str(5 + n)
    return make_arb(
        leg(f"arb-{n}-yes", YES, "0.40", size=size, order_type=OrderType.GTC),
        leg(f"arb-{n}-no", NO, "0.48", size=size, order_type=OrderType.GTC),
        arb_id=f"arb-{n}",
    )


def status(t: Trading, cid: str) -> OrderStatus | None:
    order = t.manager.get(cid)
    return None if order is None else order.status


def sim_429s(t: Trading) -> int:
    limits = t.sim.signer_limits
    assert limits is not None
    return limits.refused[t.venue.signer.address.lower()]


@pytest.mark.timeout(90)
async def test_a_burst_of_intents_respects_a_standard_signers_buckets() -> None:
    risk = RiskSettings(
        max_orders_per_market=10_000,
        max_orders_global=10_000,
        max_position_usd=Decimal(10**6),
        max_total_exposure_usd=Decimal(10**7),
    )
    orders = OrderManagerSettings(request_timeout_secs=5.0, max_rate_wait_secs=30.0)
    execution = ExecutionSettings(arbitrage=ArbitrageSettings(leg_timeout_secs=60.0))  # the baskets' legs rest
    async with trading(orders=orders, risk=risk, execution=execution) as t:
        first = make_intent(
            "first", strategy="burst", condition_id=MARKET.condition_id, token_id=YES, price="0.05", size="5"
        )
        await t.send.send(first)
        await t.wait_for(lambda: status(t, "first") is OrderStatus.ACCEPTED, "the first order to rest")
        assert t.manager.limiter.statistics().tier_source == "header"  # the sim's reply named the tier

        start = trio.current_time()
        for n in range(SINGLES):
            await t.send.send(single(n))
            if n % 6 == 0:
                await t.send.send(pair(n // 6))
        # while the orders queue for the order bucket, a cancel goes out at once
        canceled = await t.manager.cancel("first")
        cancel_secs = trio.current_time() - start
        sent_when_canceled = t.manager.statistics().submitted

        await t.wait_for(lambda: t.manager.statistics().submitted == 1 + TOKENS, "every order to go out")
        await t.wait_for(lambda: len(t.sim_open_orders()) == TOKENS, "every order to rest at the venue")
        burst_secs = trio.current_time() - start
        # the venue's replies to the last requests may still be on their way to the order manager
        await t.wait_for(
            lambda: all(o.status is not OrderStatus.SUBMITTED for o in t.manager.orders()), "every reply to be read"
        )

        assert canceled.status is OrderStatus.CANCELED
        assert sent_when_canceled < 1 + TOKENS  # the cancel did not wait behind the queue
        # ... and came back long before the queue could have drained (>= 3.5 s at 40 a second): real time on a
        # shared 2-core machine varies by a second, the queue's length does not
        assert cancel_secs < (TOKENS - 60) / 40 / 2
        assert sim_429s(t) == 0  # the venue never had to refuse one
        stats = t.manager.statistics()
        assert stats.responses_429 == 0
        assert stats.not_sent == {}  # none given up
        assert stats.rate_limiter.endpoints["POST /order"].waited > 0  # the limiter held them back
        # 200 tokens at 54 at once (the rest of the burst is headroom for the network) and 40 a second
        assert burst_secs >= (TOKENS - 60) / 40
        # every intent's verdict is the sim's: all resting there, each under the id we computed
        at_venue = set(t.sim_open_orders())
        for order in t.manager.orders():
            if order.client_order_id == "first":
                continue
            assert order.status is OrderStatus.ACCEPTED, order
            assert order.order_id in at_venue
        assert len(at_venue) == TOKENS
        bucket = t.manager.limiter.statistics().buckets[ORDER_BUCKET]
        assert (bucket.capacity, bucket.refill_per_sec) == (60, 40.0)
        await t.manager.cancel_all(reason="TEST")
        await t.wait_for(lambda: t.sim_open_orders() == [], "the cancel-all")
        assert sim_429s(t) == 0
