"""The venue's trading restrictions as the engine follows them (`trader.engine.restrictions`): the pure core on plain
times, and how the risk gate follows them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trader.domain.numbers import Side
from trader.domain.risk import TradingState
from trader.engine.restrictions import RestrictionChanged, RestrictionSettings, VenueRestrictions, follow_restrictions
from trader.engine.risk import BookHealth, Exposure, Rejected, RiskCode, RiskGate, RiskSettings
from trader.errors import ConfigError
from trader.settings import load_settings
from trader.testing import make_intent
from trader.venues.errors import TradingRestriction

R = TradingRestriction
SETTINGS = RestrictionSettings(
    post_only_window_secs=120.0, restart_backoff_initial_secs=1.0, restart_backoff_max_secs=8.0
)


@dataclass(frozen=True)
class Leg:
    side: Side = Side.BUY
    post_only: bool = False


BUY, SELL, MAKER_BUY = Leg(), Leg(Side.SELL), Leg(post_only=True)


def changes(restrictions: VenueRestrictions) -> list[tuple[str, bool, str]]:
    seen: list[tuple[str, bool, str]] = []
    restrictions.add_listener(lambda c: seen.append((str(c.restriction), c.active, c.source)))
    return seen


def test_a_restart_refuses_new_orders_until_each_probe_and_backs_off_doubling() -> None:
    r = VenueRestrictions(SETTINGS)
    seen = changes(r)
    r.on_refusal(R.RESTARTING, sent_at=99.9, now=100.0)
    assert seen == [("RESTARTING", True, "venue")]
    assert r.order_denial([BUY], 100.5) is RiskCode.RESTRICTED_RESTARTING
    assert r.order_denial([MAKER_BUY], 100.5) is RiskCode.RESTRICTED_RESTARTING  # nothing goes
    assert r.restart_retry_at(100.5) == 101.0
    assert r.order_denial([BUY], 101.0) is None  # the probe time: orders test it again
    r.on_refusal(R.RESTARTING, sent_at=100.2, now=101.1)  # sent before the probe time: in flight, changes nothing
    assert r.restart_retry_at(101.1) == 101.1
    backoffs = []
    now = 101.0
    for _ in range(5):  # each probe refused: 2, 4, 8, 8, 8 (capped)
        sent = r.restart_retry_at(now)
        now = sent + 0.05
        r.on_refusal(R.RESTARTING, sent_at=sent, now=now)
        backoffs.append(round(r.restart_retry_at(now) - now, 6))
    assert backoffs == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert not r.accepts_orders(now)


def test_an_answer_ends_a_restart_and_the_post_only_window_follows() -> None:
    r = VenueRestrictions(SETTINGS)
    seen = changes(r)
    r.on_refusal(R.RESTARTING, sent_at=9.0, now=10.0)
    r.on_answer(order_endpoint=True, sent_at=9.5, now=12.0)  # sent before it began: says nothing
    assert r.is_active(R.RESTARTING, 12.0)
    r.on_answer(order_endpoint=False, sent_at=12.0, now=12.1)  # a cancel answered: the engine is back
    assert seen == [("RESTARTING", True, "venue"), ("RESTARTING", False, "answer"), ("POST_ONLY", True, "inferred")]
    assert r.accepts_orders(12.1)
    assert r.order_denial([BUY], 12.2) is RiskCode.RESTRICTED_POST_ONLY
    assert r.order_denial([MAKER_BUY, MAKER_BUY], 12.2) is None
    assert r.order_denial([MAKER_BUY, BUY], 12.2) is RiskCode.RESTRICTED_POST_ONLY  # a batch: all or none
    (active,) = r.active(12.2)
    assert active.restriction is R.POST_ONLY
    assert active.until == pytest.approx(132.1)
    assert r.order_denial([BUY], 132.1) is None  # the window ran out
    assert seen[-1] == ("POST_ONLY", False, "expired")
    stats = r.statistics(133.0)
    assert stats.started == {"RESTARTING": 1, "POST_ONLY": 1}
    assert stats.denied == {"RESTRICTED_POST_ONLY": 3}  # orders: the batch counts its two


def test_a_post_only_refusal_also_ends_a_restart_and_a_normal_answer_ends_the_window() -> None:
    r = VenueRestrictions(SETTINGS)
    r.on_refusal(R.RESTARTING, sent_at=0.0, now=1.0)
    r.on_refusal(R.POST_ONLY, sent_at=2.0, now=2.1)  # the modes exclude each other
    assert [a.restriction for a in r.active(2.1)] == [R.POST_ONLY]
    r.on_order_answered(MAKER_BUY, sent_at=3.0, now=3.1)  # a post-only order says nothing of the window
    assert r.is_active(R.POST_ONLY, 3.1)
    r.on_order_answered(BUY, sent_at=2.0, now=3.2)  # sent before the window was learned
    assert r.is_active(R.POST_ONLY, 3.2)
    r.on_order_answered(BUY, sent_at=3.0, now=3.3)
    assert not r.is_active(R.POST_ONLY, 3.3)


def test_cancel_only_and_disabled_refuse_orders_until_a_probe_and_an_answer_lifts_them() -> None:
    r = VenueRestrictions(RestrictionSettings(probe_initial_secs=5.0, probe_max_secs=20.0))
    r.on_refusal(R.CANCEL_ONLY, sent_at=0.0, now=0.1)
    assert r.order_denial([SELL], 1.0) is RiskCode.RESTRICTED_CANCEL_ONLY
    assert r.order_denial([SELL], 5.1) is None
    r.on_refusal(R.CANCEL_ONLY, sent_at=5.1, now=5.2)  # the probe was refused: 10 s now
    assert r.order_denial([SELL], 15.1) is RiskCode.RESTRICTED_CANCEL_ONLY
    r.on_refusal(R.TRADING_DISABLED, sent_at=15.2, now=15.3)
    assert r.order_denial([SELL], 16.0) is RiskCode.RESTRICTED_TRADING_DISABLED
    r.on_answer(order_endpoint=False, sent_at=16.0, now=16.1)  # a cancel answering does not lift it
    assert not r.accepts_orders(16.1)
    r.on_answer(order_endpoint=True, sent_at=20.4, now=20.5)
    assert r.accepts_orders(20.5)
    assert r.active(20.5) == ()


def test_closed_only_refuses_buys_follows_the_poll_and_asks_for_one_at_once() -> None:
    r = VenueRestrictions(SETTINGS)
    assert not r.poll_now.is_set()
    r.on_refusal(R.CLOSED_ONLY, sent_at=0.0, now=0.1)
    assert r.poll_now.is_set()
    r.on_refusal(R.RESTARTING, sent_at=0.2, now=0.3)  # the account's restriction is not a mode: both hold
    assert {a.restriction for a in r.active(0.3)} == {R.CLOSED_ONLY, R.RESTARTING}
    r.on_answer(order_endpoint=True, sent_at=2.0, now=2.1)
    assert r.order_denial([SELL], 2.2) is RiskCode.RESTRICTED_POST_ONLY
    assert r.order_denial([Leg(Side.SELL, post_only=True)], 2.2) is None
    assert r.order_denial([MAKER_BUY], 2.2) is RiskCode.RESTRICTED_CLOSED_ONLY
    r.on_closed_only(True, 3.0)
    r.on_closed_only(False, 4.0)
    assert not r.is_active(R.CLOSED_ONLY, 4.0)
    r.on_closed_only(True, 5.0)
    r.on_buy_accepted(sent_at=4.9, now=5.1)  # sent before: nothing
    assert r.is_active(R.CLOSED_ONLY, 5.1)
    r.on_buy_accepted(sent_at=5.2, now=5.3)
    assert not r.is_active(R.CLOSED_ONLY, 5.3)
    assert r.statistics(6.0).closed_only_polls == 3


def test_the_risk_gate_refuses_what_the_venue_would_and_reduces_while_closed_only() -> None:
    gate = RiskGate(RiskSettings())
    r = VenueRestrictions(SETTINGS)
    follow_restrictions(gate, r, lambda: 1_700_000_000.0)
    books = {"1001": BookHealth(age_ms=0.0), "1002": BookHealth(age_ms=0.0)}
    buy = make_intent("b1", token_id="1001")
    r.on_refusal(R.RESTARTING, sent_at=0.0, now=1.0)
    decision = gate.check(buy, exposure=Exposure(), books=books, now=1.5)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskCode.RESTRICTED_RESTARTING
    assert state_of(gate) is TradingState.ACTIVE  # a restart is not a trading state of ours
    r.on_closed_only(True, 3.0)
    assert state_of(gate) is TradingState.REDUCING
    r.on_closed_only(False, 4.0)
    assert state_of(gate) is TradingState.ACTIVE
    # an operator's halt is never lifted by the venue
    r.on_closed_only(True, 5.0)
    gate.halt(reason="EMERGENCY_STOP", ts=5.0)
    r.on_closed_only(False, 6.0)
    assert state_of(gate) is TradingState.HALTED


def state_of(gate: RiskGate) -> TradingState:
    """The gate's state now (a call: the type checker must not carry a narrowed state across the changes)."""
    return gate.state


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        RestrictionSettings(post_only_window_secs=0)
    with pytest.raises(ConfigError):
        RestrictionSettings(restart_backoff_initial_secs=4, restart_backoff_max_secs=2)
    with pytest.raises(ConfigError):
        RestrictionSettings(order_retry_secs=-1)
    assert RestrictionChanged(restriction=R.POST_ONLY, active=True, source="venue", ts=0.0).active


def test_the_settings_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "TRADER_ORDERS__RESTRICTIONS__POST_ONLY_WINDOW_SECS": "30",
            "TRADER_ORDERS__RESTRICTIONS__ORDER_RETRY_SECS": "0",
            "TRADER_RATE_LIMIT__SIGNER_BUCKETS": "false",
        },
        dotenv=None,
    )
    assert settings.orders.restrictions.post_only_window_secs == 30.0
    assert settings.orders.restrictions.order_retry_secs == 0.0  # a 425 is then the verdict at once
    assert not settings.rate_limit.signer_buckets
    with pytest.raises(ConfigError, match="order_retry_secs"):
        load_settings({"TRADER_ORDERS__RESTRICTIONS__ORDER_RETRY_SECS": "-1"}, dotenv=None)
