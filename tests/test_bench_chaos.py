"""`python -m bench chaos` judges an engine's store by the sim's ledger: each wrong outcome it promises to count is
counted, and an engine that agrees with the venue is found clean. (The bench itself runs for minutes against real
processes; its run is in the README, not in the suite.)"""

from __future__ import annotations

from typing import Any

from bench.chaos import judge


def _venue_order(oid: str, *, matched: str = "10", status: str = "MATCHED", size: str = "10") -> dict[str, Any]:
    trades = (
        [{"trade_id": f"t-{oid}", "size": matched, "price": "0.4", "status": "CONFIRMED"}] if matched != "0" else []
    )
    return {
        "order_id": oid, "token_id": "YES", "side": "BUY", "price": "0.4", "original_size": size,
        "size_matched": matched, "status": status, "trades": trades,
    }  # fmt: skip


def _intent(oid: str, state: str = "ACKED", size: str = "10") -> dict[str, Any]:
    return {
        "client_order_id": f"c-{oid}", "order_id": oid, "token_id": "YES", "side": "BUY", "price": "0.4",
        "size": size, "state": state, "reason": None,
    }  # fmt: skip


def _order(oid: str, *, status: str = "FILLED", matched: str = "10", reason: str | None = None) -> dict[str, Any]:
    return {
        "order_id": oid, "token_id": "YES", "side": "BUY", "price": "0.4", "original_size": "10",
        "size_matched": matched, "status": status, "reason": reason, "is_open": False,
    }  # fmt: skip


def _store(intents: list[dict[str, Any]], orders: list[dict[str, Any]], held: str) -> dict[str, list[dict[str, Any]]]:
    trades = [
        {"trade_id": f"t-{o['order_id']}", "order_id": o["order_id"], "size": o["size_matched"], "status": "CONFIRMED"}
        for o in orders
        if o["size_matched"] != "0"
    ]
    return {
        "order_intents": intents,
        "orders": orders,
        "trades": trades,
        "positions": [{"token_id": "YES", "quantity": held}],
        "capital_ops": [],
    }


def test_a_store_that_agrees_with_the_venue_is_clean() -> None:
    ledger = {"orders": [_venue_order("0xa")], "refusals": {"0xb: order couldn't be fully filled": 1}}
    ledger |= {"shares": {"YES": "10"}, "collateral": "996"}
    store = _store(
        [_intent("0xa"), _intent("0xb")], [_order("0xa"), _order("0xb", status="CANCELED", matched="0")], "10"
    )
    verdict = judge(store, ledger, [])
    assert {k: verdict[k] for k in ("duplicate_orders", "lost_intents", "contradicted_verdicts", "store_vs_venue")} == {
        "duplicate_orders": 0,
        "lost_intents": 0,
        "contradicted_verdicts": 0,
        "store_vs_venue": 0,
    }  # the killed FOK (0xb) was answered by the venue: not a contradiction


def test_each_wrong_outcome_is_counted() -> None:
    ledger = {
        "orders": [
            _venue_order("0xa"),
            _venue_order("0xa2"),  # the same intent sent again under a new id: a duplicate
            _venue_order("0xc", size="7", matched="7"),  # the venue took it; the store has no intent for it: lost
            _venue_order("0xd"),  # the store calls it not found: a contradicted verdict
        ],
        "refusals": {},
        "shares": {"YES": "37"},
        "collateral": "985",
    }
    intents = [_intent("0xa"), _intent("0xd"), _intent("0xe", state="PENDING", size="5")]
    orders = [_order("0xa"), _order("0xd", status="CANCELED", matched="0", reason="SUBMIT_NOT_FOUND")]
    verdict = judge(_store(intents, orders, "10"), ledger, ["at exit: engine 1000 venue 985"])
    assert verdict["duplicate_orders"] == 1
    assert verdict["lost_intents"] == 2  # 0xc at the venue without an intent, 0xe still PENDING
    assert verdict["contradicted_verdicts"] == 1
    # orders 0xa2 and 0xc missing from the store, 0xd matched 0 vs 10; trades of 0xa2, 0xc, 0xd missing; the
    # position (10 vs 37); the cash
    assert verdict["store_vs_venue"] == 8
