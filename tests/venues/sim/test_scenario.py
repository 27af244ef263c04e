"""The synthetic scenario: listing, reproducibility, gaps, and the market traffic it drives through the channel."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
import trio
import trio_websocket

from tests.venues.sim._support import T0, Recorder
from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.venues.sim.events import BookChanged, MarketListed, MarketResolved
from trader.venues.sim.exchange import Exchange, ExchangeConfig
from trader.venues.sim.scenarios import ScenarioOptions, make_scenario, scenario_names
from trader.venues.sim.scenarios.synthetic import SyntheticScenario, _limit, _rests
from trader.venues.sim.venue import SimConfig, open_sim_venue


def _run(seed: int, steps: int, **params: str) -> tuple[SyntheticScenario, Exchange, Recorder]:
    scenario = SyntheticScenario.from_options(ScenarioOptions(markets=4, seed=seed, params=params))
    markets, events = scenario.listing()
    exchange = Exchange(markets, events)
    recorder = Recorder()
    exchange.add_listener(recorder)
    scenario.setup(exchange, T0)
    for n in range(steps):
        scenario.step(exchange, T0 + 0.2 * (n + 1))
    return scenario, exchange, recorder


def test_listing_has_linked_unlinked_and_both_kinds_of_neg_risk_events() -> None:
    scenario = make_scenario("synthetic", ScenarioOptions(markets=4, seed=7))
    markets, events = scenario.listing()

    assert len(markets) == 4 + 3 + 3
    assert [m.complementary for m in markets[:4]] == [True, True, True, False]
    neg = [e for e in events if e.neg_risk]
    assert [(len(e.market_ids), e.complete) for e in neg] == [(3, True), (3, False)]
    assert all(len(m.token_ids[0]) == 77 for m in markets)
    assert {"synthetic", "static"} <= set(scenario_names())


def test_same_seed_same_traffic_and_books_are_seeded() -> None:
    _, exchange_a, rec_a = _run(seed=3, steps=40)
    _, _, rec_b = _run(seed=3, steps=40)
    _, _, rec_c = _run(seed=4, steps=40)

    frames_a = [e for e in rec_a.events if isinstance(e, BookChanged)]
    assert frames_a == [e for e in rec_b.events if isinstance(e, BookChanged)]
    assert frames_a != [e for e in rec_c.events if isinstance(e, BookChanged)]
    for market in exchange_a.markets:
        bids, asks = exchange_a.book_levels(market.token_ids[0])
        assert len(bids) >= 3
        assert len(asks) >= 3


def test_gaps_appear_in_the_unlinked_market_or_the_complete_basket() -> None:
    scenario, exchange, _ = _run(seed=5, steps=1, gap_rate_per_min="100000", taker_rate_per_min="0")

    assert scenario.stats["gaps"] == 1
    unlinked = [m for m in exchange.markets if not m.complementary]
    binary_gap = any(
        (exchange.best_prices(m.token_ids[0])[1] or 10**6) + (exchange.best_prices(m.token_ids[1])[1] or 10**6) < 10_000
        for m in unlinked
    )
    (complete,) = [e for e in exchange.events.values() if e.neg_risk and e.complete]
    asks = [exchange.best_prices(exchange.market(c).token_ids[0])[1] for c in complete.market_ids]  # type: ignore[union-attr]
    basket_gap = all(a is not None for a in asks) and sum(a for a in asks if a is not None) < 10_000
    assert binary_gap or basket_gap
    scenario.params = replace(scenario.params, gap_rate_per_min=0)
    scenario.step(exchange, T0 + 0.2 + 4.9)
    assert exchange.open_orders("sim-arb-gap") != []
    scenario.step(exchange, T0 + 0.2 + 5.0)  # gap_ttl_secs later the gap orders are withdrawn
    assert exchange.open_orders("sim-arb-gap") == []


async def test_the_scenario_moves_on_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    scenario = SyntheticScenario.from_options(ScenarioOptions(markets=2, seed=1))
    markets, events = scenario.listing()
    exchange = Exchange(markets, events)
    scenario.setup(exchange, T0)
    setup_requotes = scenario.stats["requotes"]

    class Context:
        def __init__(self) -> None:
            self.exchange = exchange

        def now(self) -> float:
            return T0 + trio.current_time()

        def add_route(self, prefix: str, handler: object) -> None:
            raise AssertionError("not used")

    with trio.move_on_after(10.1):
        await scenario.run(Context())

    assert scenario.stats["requotes"] - setup_requotes >= 50  # one step per 0.2 s


async def test_market_channel_traffic_is_consistent_with_the_books() -> None:
    config = SimConfig(markets=2, seed=11, scenario_params={"step_secs": "0.01", "taker_rate_per_min": "600"})
    async with open_sim_venue(config) as sim:
        assets = [t for m in sim.exchange.markets for t in m.token_ids]
        books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        changes = 0
        async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
            await ws.send_message(json.dumps({"type": "market", "assets_ids": assets}))
            with trio.fail_after(10):
                while changes < 150:
                    message = json.loads(await ws.get_message())
                    for frame in message if isinstance(message, list) else [message]:
                        if frame["event_type"] == "book":
                            books[frame["asset_id"]] = {
                                side: {Decimal(lv["price"]): Decimal(lv["size"]) for lv in frame[side]}
                                for side in ("bids", "asks")
                            }
                        elif frame["event_type"] == "price_change":
                            for entry in frame["price_changes"]:
                                side = books[entry["asset_id"]]["bids" if entry["side"] == "BUY" else "asks"]
                                price, size = Decimal(entry["price"]), Decimal(entry["size"])
                                if size:
                                    side[price] = size
                                else:
                                    side.pop(price, None)
                                book = books[entry["asset_id"]]
                                best_bid = max(book["bids"], default=Decimal(0))
                                best_ask = min(book["asks"], default=Decimal(1))
                                assert (best_bid, best_ask) == (Decimal(entry["best_bid"]), Decimal(entry["best_ask"]))
                                changes += 1


def test_markets_resolve_after_their_lifetime_and_new_ones_are_listed_and_quoted() -> None:
    params = {"market_lifetime_secs": "4", "new_market_rate_per_min": "120", "split_rate": "0.3"}
    scenario, exchange, recorder = _run(seed=9, steps=100, **params)  # 20 s
    again, _, recorder_again = _run(seed=9, steps=100, **params)

    resolved = recorder.of(MarketResolved)
    listed = recorder.of(MarketListed)
    assert resolved
    assert listed
    assert scenario.stats["resolved"] == len(resolved)
    assert scenario.stats["listed"] == len(listed)
    assert recorder_again.of(MarketResolved) == resolved  # the same seed: the same lifecycle
    assert again.stats == scenario.stats
    standalone = {m.condition_id for m in scenario.listing()[0] if not m.neg_risk}
    for event in resolved:
        assert event.market in standalone  # neg-risk events live for ever by default
        resolution = exchange.resolution(event.market)
        assert resolution is not None
        assert exchange.open_orders(market=event.market) == []
        if resolution.winner is None:
            assert event.winning_asset_id == ""
        else:
            market = exchange.market(event.market)
            assert market is not None
            assert event.winning_asset_id == market.token_ids[resolution.winner]
    for announced in listed:
        market = exchange.market(announced.market)
        assert market is not None
        if exchange.resolution(announced.market) is None:
            bids, asks = exchange.book_levels(market.token_ids[0])
            assert bids
            assert asks  # its own maker quotes it
    # the original 4 standalone markets lived 2-6 s; every one has resolved
    assert {m.condition_id for m in scenario.listing()[0][:4]} <= {r.market for r in resolved}


def test_binary_gaps_go_on_after_the_first_unlinked_market_resolves() -> None:
    params = {"market_lifetime_secs": "4", "new_market_rate_per_min": "0", "event_lifetime_secs": "0"}
    scenario, exchange, _ = _run(seed=9, steps=150, **params)  # 30 s: the first markets lived 2-6 s
    (first_unlinked,) = [m for m in scenario.listing()[0][:4] if not m.complementary]
    assert exchange.resolution(first_unlinked.condition_id) is not None
    open_unlinked = [
        m
        for m in scenario.listing()[0]
        if not m.complementary and not m.neg_risk and exchange.resolution(m.condition_id) is None
    ]
    assert len(open_unlinked) == 1  # a new market took its place (none are listed at random here)
    (market,) = open_unlinked
    scenario.params = replace(scenario.params, gap_rate_per_min=100_000)
    scenario._complete_event = []  # only the binary kind of gap is left to draw
    scenario.step(exchange, T0 + 0.2 * 151)
    yes_ask, no_ask = (exchange.best_prices(token)[1] for token in market.token_ids)
    assert yes_ask is not None
    assert no_ask is not None
    assert yes_ask + no_ask < 10_000  # a YES + NO gap rests on the new unlinked market


def test_neg_risk_events_resolve_as_one_with_at_most_one_winner() -> None:
    params = {"market_lifetime_secs": "0", "event_lifetime_secs": "2", "new_market_rate_per_min": "0"}
    scenario, exchange, recorder = _run(seed=2, steps=30, **params)
    resolved = recorder.of(MarketResolved)
    listed = [e for e in scenario.listing()[1] if e.neg_risk]
    # an event resolves whole; each one that ended was replaced by a new event of its kind, still open
    events = [e for e in listed if any(exchange.resolution(c) is not None for c in e.market_ids)]
    assert len(events) >= 2
    assert len(listed) > len(events)
    assert {r.market for r in resolved} == {c for e in events for c in e.market_ids}
    for event in events:
        winners = [exchange.resolution(c) for c in event.market_ids]
        assert all(r is not None and r.winner is not None for r in winners)
        yes_wins = [r for r in winners if r is not None and r.winner == 0]
        assert len(yes_wins) <= 1
        if event.complete:
            assert len(yes_wins) == 1


def test_lifecycle_parameters_are_checked() -> None:
    for bad in ({"split_rate": "2"}, {"market_lifetime_secs": "-1"}, {"new_market_rate_per_min": "-3"}):
        with pytest.raises(ConfigError):
            SyntheticScenario.from_options(ScenarioOptions(params=bad))


def test_a_long_run_keeps_a_bounded_history_of_closed_orders_and_settled_trades() -> None:
    """The makers requote every step: without a bound the exchange's memory (and every listing's cost) grew with the
    run. Live orders are never forgotten; the oldest closed orders and settled trades are."""
    scenario = SyntheticScenario.from_options(
        ScenarioOptions(markets=4, seed=5, params={"taker_rate_per_min": "600", "gap_rate_per_min": "120"})
    )
    markets, events = scenario.listing()
    config = ExchangeConfig(
        keep_closed_orders=200, keep_settled_trades=20, keep_closed_scenario_orders=100, keep_settled_scenario_trades=20
    )
    exchange = Exchange(markets, events, config=config)
    scenario.setup(exchange, T0)
    client = "0x" + "c1" * 20
    exchange.fund(client, collateral=10**9)
    ours = _limit("client-order", "client", client, markets[0], outcome=0, side=Side.BUY, price=100, size=10**7)
    assert _rests(exchange.submit(ours, T0))
    exchange.cancel("client", ["client-order"], T0)  # closed at the very start: the oldest closed order of all
    _bid, ask = exchange.best_prices(markets[0].token_ids[0])
    assert ask is not None
    take = _limit("client-take", "client", client, markets[0], outcome=0, side=Side.BUY, price=ask, size=5 * 10**6)
    exchange.submit(replace(take, order_type="FAK"), T0)
    (our_trade,) = exchange.trades("client")  # the oldest trade of all
    live_before = None
    most_scenario_closed = 0  # the makers' closed orders held at once, at the worst moment
    for n in range(600):
        now = T0 + 0.2 * (n + 1)
        scenario.step(exchange, now)
        exchange.advance(now)
        if n == 300:
            live_before = len(exchange.open_orders())
        held = sum(1 for o in exchange.orders() if o.status != "LIVE" and o.owner.startswith("sim-"))
        most_scenario_closed = max(most_scenario_closed, held)
    # compacted back each time it passes the margin, the makers' own to their allowance (100), not up to the sum of
    # both allowances (300) as before
    assert most_scenario_closed <= 100 + 64 + 150 // 4
    assert sum(1 for o in exchange.orders() if o.status != "LIVE") <= 300 + 75
    found = exchange.order("client-order")  # a client's closed order outlives thousands of the makers' requotes
    assert found is not None
    assert found.status != "LIVE"
    assert live_before is not None
    assert len(exchange.open_orders()) > 0  # the books are still quoted
    assert all(exchange.order(o.order_id) is o for o in exchange.open_orders())
    trades = exchange.trades()
    assert 0 < len(trades) <= 40 + 64 + 40  # settled ones bounded; a few still settling
    assert our_trade in trades  # a client's trade outlives the makers' and noise takers' trades
    assert scenario.stats["requotes"] > 500  # the run did pile up far more than it kept
