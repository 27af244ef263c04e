"""`run_trader` trading Exchange V3 markets end to end against the in-process sim, over real sockets, on the real
clock: the synthetic scenario with `v3_markets=1` (its unlinked standalone market, where gaps rest) and
`v3_neg_risk=true` (the complete neg-risk event) lists them with protocol-v2 position ids as token ids.

Paper: the engine follows their books and fills against them, with ids that are Exchange V3 digests. Live: every
order reaches the sim's exchange, which verifies each signature under the domain of the token's exchange and refuses
an order signed for the wrong one, and the sim's order ids are the ones the engine computed before sending.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from tests.engine.test_app import GAPS, running, settings, wait_for
from tests.venues.polymarket.exchange_reference import is_position_id_reference, typed_order
from trader.config import Secret
from trader.domain.orders import Order
from trader.settings import KeySettings, Settings
from trader.venues.polymarket.paper_ids import PAPER_KEY
from trader.venues.polymarket.signing import OrderSigner, order_salt

V3_PARAMS = (*GAPS, "v3_markets=1", "v3_neg_risk=true")


def v3_settings(tmp_path: Path, **run: object) -> Settings:
    config = settings(tmp_path, **run)
    return replace(config, sim=replace(config.sim, params=V3_PARAMS))


def v3_filled(orders: list[Order]) -> list[Order]:
    return [o for o in orders if o.filled > 0 and is_position_id_reference(o.token_id)]


@pytest.mark.timeout(120)  # end to end: a few seconds on the 2-core machine, more under load
async def test_a_paper_run_trades_v3_markets_with_v3_order_ids(tmp_path: Path) -> None:
    async with running(v3_settings(tmp_path)) as run:
        control = run.engine.control  # type: ignore[attr-defined]
        manager = control.core.manager
        await wait_for(lambda: len(v3_filled(manager.orders())) >= 2)
        orders = manager.orders()
        markets = {t: cell.market for cell in control.venue.books.markets.values() for t in cell.market.token_ids}
    (summary,) = run.result
    assert summary.mode == "paper"
    filled = v3_filled(orders)
    assert any(is_position_id_reference(token) for token in summary.positions)
    for order in filled:
        # the paper id is the digest of the order signed for Exchange V3 (eth-account under the reference domain)
        market = markets[order.token_id]
        signed, _ = OrderSigner(PAPER_KEY).limit_order_with_id(
            token_id=order.token_id,
            side=order.side,
            price=order.price,
            size=order.size,
            tick_size=market.tick_size,
            neg_risk=market.neg_risk,
            expiration=order.expiration,
            salt=order_salt(order.client_order_id),
            timestamp_ms=round(order.created_ts * 1000),
        )
        typed = typed_order(signed.to_json(), market.neg_risk)
        assert typed["domain"]["version"] == "3"
        assert order.order_id == "0x" + bytes(Account.sign_typed_data(PAPER_KEY, full_message=typed).message_hash).hex()


@pytest.mark.timeout(120)
async def test_a_live_run_trades_v3_markets_and_the_sim_verifies_every_signature(tmp_path: Path) -> None:
    key = "0x" + secrets.token_hex(32)
    address = OrderSigner(key).address
    config = replace(v3_settings(tmp_path, live=True), keys=KeySettings(private_key=Secret(key)))
    async with running(config) as run:
        manager = run.engine.control.core.manager  # type: ignore[attr-defined]
        sim = run.engine.sim  # type: ignore[attr-defined]
        await wait_for(lambda: len(v3_filled(manager.orders())) >= 2)
        run.stop.set()
        await wait_for(lambda: bool(run.result))
        engine_orders = {o.order_id: o for o in manager.orders()}
        ours = [o for o in sim.exchange.orders() if o.maker_address.lower() == address.lower()]
    (summary,) = run.result
    assert summary.mode == "live"
    # every order the engine sent passed the sim's signature check and got the id the engine computed
    assert summary.orders_submitted == len(ours)
    assert {o.order_id for o in ours} <= engine_orders.keys()
    v3_at_sim = [o for o in ours if is_position_id_reference(o.token_id)]
    assert {o.order_id for o in v3_filled(list(engine_orders.values()))} <= {o.order_id for o in v3_at_sim}
    assert any(is_position_id_reference(token) for token in summary.positions)
