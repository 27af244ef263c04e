"""The paper wallet is saved after every change of it: fills, orders resting or closing, merges and redemptions."""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from trader.app.venue import PaperWalletKeeper
from trader.domain.capital import SetsMerged
from trader.domain.events import RiskRejected
from trader.testing.memory_store import MemoryStore
from trader.venues.paper import PaperVenue
from trader.venues.polymarket.paper_ids import paper_order_id

D = Decimal


async def test_the_wallet_is_saved_when_it_changed_and_only_then(autojump_clock: trio.testing.MockClock) -> None:
    paper = PaperVenue(lambda _t: None, lambda _t: None, order_ids=paper_order_id, cash=D(100), shares={"1": D(5)})
    store = MemoryStore()
    keeper = PaperWalletKeeper(paper, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        paper.move_shares({"1": D(-5)}, cash=D(5))  # a merge landed (the other leg aside)
        keeper.on_event(SetsMerged(condition_id="0xc", op_id="paper-1", sets=D(5), realized_pnl=D(0), ts=1.0))
        await trio.testing.wait_all_tasks_blocked()
        assert store.paper_wallet is not None
        assert (store.paper_wallet.cash, store.paper_wallet.reserved) == (D(105), D(0))
        writes = store.writes
        keeper.on_event(RiskRejected(client_order_id="c1", strategy="s", reason="RISK_MAX_NOTIONAL", ts=1.0))
        keeper.request_save()  # nothing changed: nothing written
        await trio.testing.wait_all_tasks_blocked()
        assert store.writes == writes
        nursery.cancel_scope.cancel()
