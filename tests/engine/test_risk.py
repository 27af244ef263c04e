from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from trader.domain.enums import Liquidity
from trader.domain.events import OrderAccepted, OrderFilled, OrderSubmitted, RiskRejected
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.market import NO_FEES, FeeSchedule
from trader.domain.numbers import Side
from trader.domain.orders import Order
from trader.domain.positions import Portfolio, Position
from trader.domain.risk import DailyLossBreached, RiskStateChanged, TradingState
from trader.engine.risk import (
    Approved,
    BookHealth,
    BuyingPower,
    Exposure,
    Rejected,
    Reserved,
    RiskCode,
    RiskGate,
    RiskSettings,
    order_cost,
    rejected_events,
)
from trader.errors import ConfigError
from trader.testing import make_arb, make_intent

YES, NO, OTHER = "1001", "1002", "2001"
MARKET, MARKET_2 = "0xm1", "0xm2"
FRESH = {token: BookHealth(age_ms=50.0) for token in (YES, NO, OTHER)}
NOTHING = Exposure()
SETTINGS = RiskSettings(
    max_order_notional_usd=Decimal(50),
    max_position_usd=Decimal(100),
    max_total_exposure_usd=Decimal(150),
    max_daily_loss_usd=Decimal(20),
    daily_reset_utc=dt.time(13, 30),
    max_book_age_ms=1_000.0,
    min_price=Decimal("0.01"),
    max_price=Decimal("0.99"),
    min_order_size_shares=Decimal(5),
    max_order_size_shares=Decimal(1000),
    max_orders_per_market=3,
    max_orders_global=5,
    order_rate_window_secs=1.0,
    duplicate_window_secs=2.0,
)
_ids = iter(range(1_000_000))


def _intent(
    side: Side = Side.BUY,
    *,
    price: str = "0.40",
    size: str = "10",
    token: str = YES,
    market: str = MARKET,
    strategy: str = "clipper",
) -> OrderIntent:
    return make_intent(
        f"c-{next(_ids)}", strategy=strategy, condition_id=market, token_id=token, side=side, price=price, size=size
    )


def _gate(**changes: object) -> RiskGate:
    return RiskGate(dataclasses.replace(SETTINGS, **changes))  # type: ignore[arg-type]


def _reason(decision: Approved | Rejected) -> RiskCode | None:
    return decision.reason if isinstance(decision, Rejected) else None


def test_a_plain_order_is_approved_and_counted() -> None:
    gate = _gate()
    assert gate.check(_intent(), exposure=NOTHING, books=FRESH, now=0.0) == Approved()
    stats = gate.statistics()
    assert (stats.state, stats.approvals, stats.rejections) == (TradingState.ACTIVE, 1, {})


def test_halted_refuses_everything_even_reducing_orders() -> None:
    gate = _gate()
    assert gate.halt(reason="EMERGENCY_STOP", ts=1.0) == RiskStateChanged(
        previous=TradingState.ACTIVE, state=TradingState.HALTED, reason="EMERGENCY_STOP", ts=1.0
    )
    held = Exposure(held_shares={YES: Decimal(100)})
    decision = gate.check(_intent(Side.SELL), exposure=held, books=FRESH, now=0.0)
    assert _reason(decision) is RiskCode.TRADING_HALTED
    assert gate.statistics().rejections == {"TRADING_HALTED": 1}


def test_reducing_lets_only_sells_of_shares_held_and_not_already_offered() -> None:
    gate = _gate()
    gate.reduce_only(reason="OPERATOR", ts=0.0)
    held = Exposure(held_shares={YES: Decimal(30)}, working_sell_shares={YES: Decimal(15)})
    assert _reason(gate.check(_intent(Side.BUY), exposure=held, books=FRESH, now=0.0)) is RiskCode.TRADING_REDUCING
    assert gate.check(_intent(Side.SELL, size="15"), exposure=held, books=FRESH, now=0.0) == Approved()
    too_much = gate.check(_intent(Side.SELL, size="16"), exposure=held, books=FRESH, now=0.0)
    assert _reason(too_much) is RiskCode.TRADING_REDUCING
    not_held = gate.check(_intent(Side.SELL, token=NO), exposure=held, books=FRESH, now=0.0)
    assert _reason(not_held) is RiskCode.TRADING_REDUCING


def test_state_changes_are_reported_once() -> None:
    gate = _gate()
    assert gate.resume(reason="X", ts=0.0) is None
    assert gate.reduce_only(reason="X", ts=0.0) is not None
    assert gate.reduce_only(reason="X", ts=0.0) is None
    assert gate.resume(reason="OPERATOR", ts=1.0) is not None
    assert gate.statistics().state_changes == 2


@pytest.mark.parametrize(
    ("price", "size", "reason"),
    [
        ("0.995", "10", RiskCode.RISK_PRICE_BOUNDS),
        ("0.005", "10", RiskCode.RISK_PRICE_BOUNDS),
        ("0.40", "4.99", RiskCode.RISK_SIZE_BOUNDS),
        ("0.01", "1001", RiskCode.RISK_SIZE_BOUNDS),
    ],
)
def test_price_and_size_bounds(price: str, size: str, reason: RiskCode) -> None:
    decision = _gate().check(_intent(price=price, size=size), exposure=NOTHING, books=FRESH, now=0.0)
    assert _reason(decision) is reason


def test_the_same_intent_again_within_the_window_is_a_duplicate() -> None:
    gate = _gate()
    assert gate.check(_intent(), exposure=NOTHING, books=FRESH, now=0.0) == Approved()
    again = gate.check(_intent(), exposure=NOTHING, books=FRESH, now=1.5)
    assert _reason(again) is RiskCode.RISK_DUPLICATE_INTENT
    assert gate.check(_intent(price="0.41"), exposure=NOTHING, books=FRESH, now=1.5) == Approved()
    assert gate.check(_intent(strategy="other"), exposure=NOTHING, books=FRESH, now=1.5) == Approved()
    assert gate.check(_intent(), exposure=NOTHING, books=FRESH, now=2.0) == Approved()  # window passed


def test_a_rejected_intent_does_not_count_as_seen() -> None:
    gate = _gate()
    assert _reason(gate.check(_intent(), exposure=NOTHING, books={}, now=0.0)) is RiskCode.RISK_STALE_BOOK
    assert gate.check(_intent(), exposure=NOTHING, books=FRESH, now=0.1) == Approved()


@pytest.mark.parametrize(
    ("health", "reason"),
    [
        (None, RiskCode.RISK_STALE_BOOK),
        (BookHealth(age_ms=None), RiskCode.RISK_STALE_BOOK),
        (BookHealth(age_ms=10.0, ready=False), RiskCode.RISK_STALE_BOOK),
        (BookHealth(age_ms=1_000.1), RiskCode.RISK_STALE_BOOK),
        (BookHealth(age_ms=10.0, suspect=True), RiskCode.RISK_SUSPECT_BOOK),
        (BookHealth(age_ms=1_000.0), None),
    ],
)
def test_book_health(health: BookHealth | None, reason: RiskCode | None) -> None:
    books = {} if health is None else {YES: health}
    assert _reason(_gate().check(_intent(), exposure=NOTHING, books=books, now=0.0)) is reason


def test_notional_position_and_exposure_limits() -> None:
    gate = _gate()
    big = gate.check(_intent(price="0.51", size="100"), exposure=NOTHING, books=FRESH, now=0.0)
    assert _reason(big) is RiskCode.RISK_MAX_NOTIONAL
    near_market_limit = Exposure(market_usd={MARKET: Decimal("96.01")}, total_usd=Decimal("96.01"))
    assert _reason(gate.check(_intent(), exposure=near_market_limit, books=FRESH, now=0.0)) is (
        RiskCode.RISK_MAX_POSITION
    )
    assert gate.check(_intent(market=MARKET_2, token=OTHER), exposure=near_market_limit, books=FRESH, now=0.0) == (
        Approved()
    )
    near_total = Exposure(market_usd={MARKET_2: Decimal(99)}, total_usd=Decimal(147))
    assert _reason(gate.check(_intent(size="11"), exposure=near_total, books=FRESH, now=0.0)) is (
        RiskCode.RISK_MAX_EXPOSURE
    )
    # sells add no exposure
    full = Exposure(held_shares={YES: Decimal(500)}, market_usd={MARKET: Decimal(200)}, total_usd=Decimal(200))
    assert gate.check(_intent(Side.SELL, size="12"), exposure=full, books=FRESH, now=0.0) == Approved()


def test_per_market_and_global_order_rates() -> None:
    gate = _gate()
    for i in range(3):
        assert gate.check(_intent(size=str(10 + i)), exposure=NOTHING, books=FRESH, now=0.1 * i) == Approved()
    market_rate = gate.check(_intent(size="20"), exposure=NOTHING, books=FRESH, now=0.5)
    assert _reason(market_rate) is RiskCode.RISK_MARKET_RATE
    for i in range(2):
        other = _intent(market=MARKET_2, token=OTHER, size=str(30 + i))
        assert gate.check(other, exposure=NOTHING, books=FRESH, now=0.5) == Approved()
    global_rate = gate.check(_intent(market="0xm3", token=OTHER, size="40"), exposure=NOTHING, books=FRESH, now=0.5)
    assert _reason(global_rate) is RiskCode.RISK_GLOBAL_RATE
    # one second after the first orders, their slots are free again
    assert gate.check(_intent(size="21"), exposure=NOTHING, books=FRESH, now=1.05) == Approved()


def test_order_rate_windows_expire_per_order_in_every_market() -> None:
    gate = _gate(max_orders_global=1000, duplicate_window_secs=0.0)
    markets = [f"0xm{n}" for n in range(50)]
    for i in range(3):  # three rounds, each an order in every market: market n at i/2 + n/100
        for n, market in enumerate(markets):
            intent = _intent(market=market, token=OTHER, size=str(10 + i))
            assert gate.check(intent, exposure=NOTHING, books=FRESH, now=i / 2 + n / 100) == Approved()
    # at t = 1.75 the first round has left every window, the second only for markets 0..25: those take two more
    # orders (limit 3), the others one
    for attempt in range(2):
        for n, market in enumerate(markets):
            intent = _intent(market=market, token=OTHER, size=str(20 + attempt))
            decision = gate.check(intent, exposure=NOTHING, books=FRESH, now=1.75)
            assert _reason(decision) == (RiskCode.RISK_MARKET_RATE if attempt and n > 25 else None), (attempt, n)
    # once every window has passed, nothing is counted any more
    assert gate.check(_intent(market=markets[0], token=OTHER, size="30"), exposure=NOTHING, books=FRESH, now=9.0) == (
        Approved()
    )
    assert len(gate._orders) == 1  # the one just approved: the rest expired
    assert gate._market_orders == {markets[0]: 1}


def _arb(*legs: OrderIntent) -> ArbIntent:
    return make_arb(*legs, arb_id=f"arb-{next(_ids)}", max_slippage="0.01")


def test_an_arbitrage_basket_is_approved_as_a_whole() -> None:
    gate = _gate()
    basket = _arb(_intent(price="0.45", token=YES), _intent(price="0.50", token=NO))
    assert gate.check(basket, exposure=NOTHING, books=FRESH, now=0.0) == Approved()
    stats = gate.statistics()
    assert stats.approvals == 1
    # both legs took a per-market slot: one more order fits, a two-leg basket does not
    second = _arb(_intent(price="0.44", token=YES), _intent(price="0.51", token=NO))
    assert _reason(gate.check(second, exposure=NOTHING, books=FRESH, now=0.1)) is RiskCode.RISK_MARKET_RATE


def test_one_bad_leg_rejects_the_whole_basket_and_records_nothing() -> None:
    gate = _gate()
    good, stale = _intent(price="0.45", token=YES), _intent(price="0.50", token=NO)
    basket = _arb(good, stale)
    decision = gate.check(basket, exposure=NOTHING, books={YES: BookHealth(age_ms=5.0)}, now=0.0)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskCode.RISK_STALE_BOOK
    assert stale.client_order_id in decision.detail
    events = rejected_events(basket, decision.reason, decision.detail, ts=12.0)
    assert [e.client_order_id for e in events] == [good.client_order_id, stale.client_order_id]
    assert all(isinstance(e, RiskRejected) and e.reason == "RISK_STALE_BOOK" for e in events)
    # nothing of the rejected basket was recorded: the good leg alone is not a duplicate
    assert gate.check(dataclasses.replace(good, client_order_id="c-new"), exposure=NOTHING, books=FRESH, now=0.1) == (
        Approved()
    )


def test_basket_exposure_is_the_sum_of_its_buy_legs() -> None:
    gate = _gate()
    some = Exposure(market_usd={MARKET: Decimal(10)}, total_usd=Decimal(10))
    yes, no = _intent(price="0.45", size="100", token=YES), _intent(price="0.50", size="100", token=NO)
    # each leg alone fits (10 + 45, 10 + 50), both together do not (10 + 95 > 100)
    assert gate.check(yes, exposure=some, books=FRESH, now=0.0) == Approved()
    assert gate.check(no, exposure=some, books=FRESH, now=0.0) == Approved()
    basket = _arb(
        dataclasses.replace(yes, client_order_id="y2", size=Decimal(99)),
        dataclasses.replace(no, client_order_id="n2", size=Decimal(99)),
    )
    assert _reason(gate.check(basket, exposure=some, books=FRESH, now=0.0)) is RiskCode.RISK_MAX_POSITION


def _utc(hour: int, minute: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 5, day, hour, minute, tzinfo=dt.UTC)


def test_risk_day_starts_at_the_configured_utc_time() -> None:
    gate = _gate()
    assert gate.risk_day(_utc(13, 29, day=2)) == dt.date(2026, 5, 1)
    assert gate.risk_day(_utc(13, 30, day=2)) == dt.date(2026, 5, 2)
    other_zone = dt.datetime(2026, 5, 2, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert gate.risk_day(other_zone) == dt.date(2026, 5, 2)
    with pytest.raises(ValueError, match="aware"):
        gate.risk_day(dt.datetime(2026, 5, 2, 14, 0))  # naive: the point of the test


def test_a_daily_loss_breach_halts_once_and_a_new_day_resets_the_baseline() -> None:
    gate = _gate()
    assert gate.mark_pnl(realized=Decimal(50), unrealized=Decimal(5), wall=_utc(14)) == []  # baseline 55
    assert gate.mark_pnl(realized=Decimal(40), unrealized=Decimal("-4.99"), wall=_utc(15)) == []  # -19.99
    events = gate.mark_pnl(realized=Decimal(40), unrealized=Decimal(-5), wall=_utc(16))  # -20
    assert events == [
        DailyLossBreached(day=dt.date(2026, 5, 1), pnl=Decimal(-20), limit=Decimal(20), ts=_utc(16).timestamp()),
        RiskStateChanged(
            previous=TradingState.ACTIVE,
            state=TradingState.HALTED,
            reason="RISK_DAILY_LOSS",
            ts=_utc(16).timestamp(),
        ),
    ]
    assert gate.state is TradingState.HALTED
    assert gate.mark_pnl(realized=Decimal(30), unrealized=Decimal(-5), wall=_utc(17)) == []  # latched for the day
    # the operator resumes; buys stay refused while the loss is beyond the limit, reducing sells pass
    gate.resume(reason="OPERATOR", ts=0.0)
    assert _reason(gate.check(_intent(), exposure=NOTHING, books=FRESH, now=0.0)) is RiskCode.RISK_DAILY_LOSS
    held = Exposure(held_shares={YES: Decimal(100)})
    assert gate.check(_intent(Side.SELL), exposure=held, books=FRESH, now=0.0) == Approved()
    # next risk day (after 13:30 UTC on May 2): a fresh baseline, buys pass again
    assert gate.mark_pnl(realized=Decimal(30), unrealized=Decimal(-5), wall=_utc(13, 31, day=2)) == []
    assert gate.daily_pnl == 0
    assert gate.check(_intent(size="11"), exposure=NOTHING, books=FRESH, now=0.0) == Approved()
    assert gate.statistics().risk_day == dt.date(2026, 5, 2)


def test_exposure_from_portfolio_and_open_orders() -> None:
    portfolio = Portfolio(cash=Decimal(1000))
    portfolio.apply_fill(
        OrderFilled(
            client_order_id="c-f",
            trade_id="t-1",
            token_id=YES,
            side=Side.BUY,
            price=Decimal("0.40"),
            size=Decimal(50),
            liquidity=Liquidity.TAKER,
            ts=1.0,
            fee=Decimal("0.5"),
        )
    )

    def working(intent: OrderIntent, n: int) -> Order:
        order = Order.from_intent(intent, order_id="0x" + f"{n:x}" * 64, ts=1.0)
        order = order.apply(OrderSubmitted(client_order_id=intent.client_order_id, ts=1.0))
        return order.apply(OrderAccepted(client_order_id=intent.client_order_id, ts=1.0))

    orders = [
        working(_intent(Side.BUY, price="0.30", size="10", token=NO), 1),
        working(_intent(Side.SELL, price="0.60", size="20", token=YES), 2),
        Order.from_intent(_intent(Side.BUY, price="0.30", size="10", token=OTHER), order_id="0x" + "3" * 64, ts=1.0),
    ]
    exposure = Exposure.of(portfolio, orders, market_of={YES: MARKET, NO: MARKET})
    assert exposure.held_shares == {YES: Decimal(50)}
    assert exposure.working_sell_shares == {YES: Decimal(20)}
    assert exposure.market_usd == {MARKET: Decimal("20.5") + Decimal(3)}
    assert exposure.total_usd == Decimal("23.5")
    with_flat = Portfolio(positions=[*portfolio.positions.values(), Position(token_id=OTHER)])
    assert Exposure.of(with_flat, orders, market_of={YES: MARKET, NO: MARKET}) == exposure  # a flat one adds nothing


# -- buying power -----------------------------------------------------------------------------------------------

#: A taker pays 0.02 x p(1 - p) per share.
FEES = FeeSchedule(rate=Decimal("0.02"), exponent=1)


def _funds(balance: str | None, *missing: str) -> BuyingPower:
    return BuyingPower(balance=None if balance is None else Decimal(balance), missing_allowances=missing)


def test_an_order_costs_price_times_size_plus_its_taker_fee_bound() -> None:
    buy = _intent(price="0.40", size="100")  # 40 pUSD + 100 x 0.02 x 0.4 x 0.6 = 0.48
    assert order_cost(buy, FEES) == Decimal("40.48")
    assert order_cost(buy, NO_FEES) == Decimal(40)
    assert order_cost(_intent(Side.SELL, price="0.40", size="100"), FEES) == 0  # a sell needs shares, not pUSD
    gate = _gate(max_order_notional_usd=Decimal(1000), max_position_usd=Decimal(1000))
    fees = {YES: FEES}
    refused = gate.check(buy, exposure=NOTHING, books=FRESH, now=0.0, funds=_funds("40.47"), fees=fees)
    assert isinstance(refused, Rejected)
    assert refused.reason is RiskCode.RISK_BUYING_POWER
    assert "40.48" in refused.detail
    assert "40.47 available" in refused.detail
    assert gate.check(buy, exposure=NOTHING, books=FRESH, now=0.0, funds=_funds("40.48"), fees=fees) == Approved()


def test_a_basket_is_costed_with_every_leg_together() -> None:
    gate = _gate(max_order_notional_usd=Decimal(1000), max_position_usd=Decimal(1000))
    yes, no = _intent(price="0.45", size="20", token=YES), _intent(price="0.50", size="20", token=NO)
    funds = _funds("15")  # each leg alone fits (9 and 10 pUSD); both together (19) do not
    assert gate.check(yes, exposure=NOTHING, books=FRESH, now=0.0, funds=funds) == Approved()
    assert gate.check(no, exposure=NOTHING, books=FRESH, now=0.0, funds=funds) == Approved()
    basket = _arb(
        dataclasses.replace(yes, client_order_id="y2", price=Decimal("0.44")),
        dataclasses.replace(no, client_order_id="n2", price=Decimal("0.51")),
    )
    decision = gate.check(basket, exposure=NOTHING, books=FRESH, now=0.1, funds=funds)
    assert isinstance(decision, Rejected)
    assert decision.reason is RiskCode.RISK_BUYING_POWER
    assert decision.detail.startswith("the basket costs 19.00 pUSD")


def test_what_is_reserved_is_not_available() -> None:
    gate = _gate(max_order_notional_usd=Decimal(1000), max_position_usd=Decimal(1000))
    buy = _intent(price="0.50", size="20")  # 10 pUSD
    reserved = Exposure(reserved_usd=Decimal("90.01"))
    assert _reason(gate.check(buy, exposure=reserved, books=FRESH, now=0.0, funds=_funds("100"))) is (
        RiskCode.RISK_BUYING_POWER
    )
    assert gate.check(buy, exposure=Exposure(reserved_usd=Decimal(90)), books=FRESH, now=0.0, funds=_funds("100")) == (
        Approved()
    )


def test_an_unread_balance_refuses_buys_and_a_missing_allowance_refuses_everything() -> None:
    gate = _gate()
    unread = gate.check(_intent(), exposure=NOTHING, books=FRESH, now=0.0, funds=_funds(None))
    assert isinstance(unread, Rejected)
    assert (unread.reason, unread.detail) == (RiskCode.RISK_BUYING_POWER, "the wallet's balance has not been read yet")
    held = Exposure(held_shares={YES: Decimal(100)})
    missing = gate.check(
        _intent(Side.SELL), exposure=held, books=FRESH, now=0.0, funds=_funds("1000", "pUSD allowance for the exchange")
    )
    assert isinstance(missing, Rejected)
    assert missing.reason is RiskCode.RISK_ALLOWANCE_MISSING
    assert "pUSD allowance for the exchange" in missing.detail
    # without funds (no venue to ask), nothing of this is checked
    assert gate.check(_intent(size="12"), exposure=NOTHING, books=FRESH, now=0.0) == Approved()


def test_a_sell_needs_shares_held_and_not_offered_yet() -> None:
    gate = _gate()
    held = Exposure(held_shares={YES: Decimal(30)}, working_sell_shares={YES: Decimal(15)})
    too_many = gate.check(_intent(Side.SELL, size="16"), exposure=held, books=FRESH, now=0.0, funds=_funds("0"))
    assert _reason(too_many) is RiskCode.RISK_BUYING_POWER
    assert gate.check(_intent(Side.SELL, size="15"), exposure=held, books=FRESH, now=0.0, funds=_funds("0")) == (
        Approved()
    )


def test_approved_legs_not_yet_open_reserve_their_whole_cost_in_place_of_their_order() -> None:
    portfolio = Portfolio(cash=Decimal(1000))
    resting = _intent(Side.BUY, price="0.30", size="10", token=NO)
    order = Order.from_intent(resting, order_id="0x" + "a" * 64, ts=1.0)
    order = order.apply(OrderSubmitted(client_order_id=resting.client_order_id, ts=1.0))
    rested = order.apply(OrderAccepted(client_order_id=resting.client_order_id, ts=1.0))
    approved = _intent(Side.BUY, price="0.40", size="100", token=YES)
    selling = _intent(Side.SELL, price="0.60", size="5", token=OTHER)
    fees = {YES: FEES, NO: FEES, OTHER: FEES}.__getitem__
    # the resting buy reserves price x remaining (3); the approved one its whole cost (40.48), and its order, sent
    # but not answered yet, is counted once
    sent = Order.from_intent(approved, order_id="0x" + "b" * 64, ts=1.0).apply(
        OrderSubmitted(client_order_id=approved.client_order_id, ts=1.0)
    )
    pending = [Reserved(leg, order_cost(leg, fees(leg.token_id))) for leg in (approved, selling)]
    exposure = Exposure.of(portfolio, [rested, sent], {}, pending=pending)
    assert exposure.reserved_usd == Decimal("43.48")
    assert exposure.total_usd == Decimal(43)  # exposure counts notional at the limit, without the fee bound
    assert exposure.working_sell_shares == {OTHER: Decimal(5)}


@pytest.mark.parametrize(
    "changes",
    [
        {"max_order_notional_usd": Decimal(0)},
        {"max_daily_loss_usd": Decimal("NaN")},
        {"max_position_usd": 5},
        {"min_price": Decimal("0.6"), "max_price": Decimal("0.5")},
        {"max_price": Decimal(1)},
        {"min_price": 0.1},
        {"min_order_size_shares": Decimal(10), "max_order_size_shares": Decimal(5)},
        {"daily_reset_utc": dt.time(0, 0, tzinfo=dt.UTC)},
        {"max_orders_global": 0},
        {"max_book_age_ms": -1.0},
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(SETTINGS, **changes)  # type: ignore[arg-type]


def test_exposure_for_an_intent_looks_at_its_markets_not_every_token_ever_held() -> None:
    # A long session: a thousand tokens traded and flat now, and one market held.
    history = [Position(token_id=str(5000 + n), realized_pnl=Decimal("0.1")) for n in range(1000)]
    held = [
        Position(token_id=YES, quantity=Decimal(10), cost_basis=Decimal(4)),
        Position(token_id=NO, quantity=Decimal(5), cost_basis=Decimal(3)),
        Position(token_id=OTHER, quantity=Decimal(7), cost_basis=Decimal(2)),
    ]
    portfolio = Portfolio(positions=[*history, *held])
    market_of = {YES: MARKET, NO: MARKET, OTHER: MARKET_2}
    full = Exposure.of(portfolio, [], market_of)
    scoped = Exposure.of(portfolio, [], market_of, tokens=[YES, NO])
    assert scoped.market_usd == {MARKET: Decimal(7)} == {MARKET: full.market_usd[MARKET]}
    assert scoped.held_shares == {YES: Decimal(10), NO: Decimal(5)}
    assert scoped.total_usd == full.total_usd == Decimal(9)  # the portfolio's kept total: every market


def test_nothing_is_traded_in_a_market_that_resolved_or_closed() -> None:
    closed = {YES: BookHealth(age_ms=10.0, closed=True)}
    assert _reason(_gate().check(_intent(), exposure=NOTHING, books=closed, now=0.0)) is RiskCode.RISK_MARKET_CLOSED
    held = Exposure(held_shares={YES: Decimal(10)})
    sell = _intent(Side.SELL, size="10")  # not even a sell that reduces: the book is gone
    assert _reason(_gate().check(sell, exposure=held, books=closed, now=0.0)) is RiskCode.RISK_MARKET_CLOSED
