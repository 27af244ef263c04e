"""The strategy engine on trio's MockClock: drift-free ticks, overrun policies, book wake-ups, backpressure,
in-flight keys, failing strategies, claims and analyzers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
import trio
import trio.testing

from trader.domain.games import Competitor, Game, GameState, Scoreboard
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.numbers import Side
from trader.engine.books import Books
from trader.engine.strategy_engine import (
    OverrunPolicy,
    StrategyEngine,
    StrategyEngineSettings,
    opportunity_record,
    store_claim,
)
from trader.integrations.store import Store, open_sqlite_store
from trader.strategies.base import ClaimedIntent, Intent, MarketState, StrategyOutput
from trader.strategies.sniper import Sniper, SniperSettings
from trader.strategies.sum_deviation import SumDeviation
from trader.strategies.sum_to_100 import SumTo100, SumTo100Settings
from trader.testing import make_intent

from ..strategies.builders import StateBuilder, make_market

MARKET = make_market(1)


def order(cid: str, token_id: str = MARKET.yes_token_id) -> OrderIntent:
    return make_intent(cid, strategy="rec", condition_id=MARKET.condition_id, token_id=token_id, price="0.50")


class Recording:
    """Records every call; `act(state, n)` decides what to return on call n (0-based)."""

    def __init__(
        self, name: str = "rec", act: Callable[[MarketState, int], Sequence[StrategyOutput]] | None = None
    ) -> None:
        self.name = name
        self.calls: list[MarketState] = []
        self._act = act

    @property
    def times(self) -> list[float]:
        return [state.now for state in self.calls]

    def on_state(self, state: MarketState) -> Sequence[StrategyOutput]:
        self.calls.append(state)
        return [] if self._act is None else self._act(state, len(self.calls) - 1)


class Channel:
    def __init__(self, size: int = 4) -> None:
        self.send, self.receive = trio.open_memory_channel[Intent](size)


def engine_with(
    *strategies: Recording, books: Books | None = None, channel: Channel | None = None, **kwargs: object
) -> tuple[StrategyEngine, Channel]:
    channel = channel or Channel()
    kwargs.setdefault("settings", StrategyEngineSettings())
    kwargs.setdefault("session", "t")
    engine = StrategyEngine(
        books=books or Books(),
        strategies=list(strategies),
        intents=channel.send,
        wall_clock=lambda: 1_700_000_000.0,
        **kwargs,  # type: ignore[arg-type]
    )
    return engine, channel


async def test_ticks_every_100ms_on_the_grid(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    strategy = Recording()
    engine, _ = engine_with(strategy)
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.95)
    assert [t - start for t in strategy.times] == pytest.approx([n * 0.1 for n in range(10)], abs=1e-9)
    stats = engine.statistics()
    assert (stats.ticks, stats.overruns, stats.wakeups) == (10, 0, 0)


async def test_slow_evaluations_do_not_make_ticks_drift(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    def slow(state: MarketState, n: int) -> list[StrategyOutput]:
        autojump_clock.jump(0.03)  # 30 ms of work per tick
        return []

    strategy = Recording(act=slow)
    engine, _ = engine_with(strategy)
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.55)
    assert [t - start for t in strategy.times] == pytest.approx([n * 0.1 for n in range(6)], abs=1e-9)
    assert engine.statistics().overruns == 0


def overrunning(clock: trio.testing.MockClock) -> Callable[[MarketState, int], list[StrategyOutput]]:
    def act(state: MarketState, n: int) -> list[StrategyOutput]:
        if n == 1:
            clock.jump(0.25)  # the tick at 0.1 ends at 0.35: the deadlines 0.2 and 0.3 pass meanwhile
        return []

    return act


async def test_overrun_skip_drops_the_missed_ticks(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    strategy = Recording(act=overrunning(autojump_clock))
    engine, _ = engine_with(strategy, settings=StrategyEngineSettings(overrun_policy=OverrunPolicy.SKIP))
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.65)
    assert [t - start for t in strategy.times] == pytest.approx([0.0, 0.1, 0.4, 0.5, 0.6], abs=1e-9)
    stats = engine.statistics()
    assert (stats.overruns, stats.missed_ticks, stats.ticks) == (1, 2, 5)


async def test_overrun_run_once_catches_up_with_one_tick(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    strategy = Recording(act=overrunning(autojump_clock))
    settings = StrategyEngineSettings(overrun_policy=OverrunPolicy.RUN_ONCE)
    engine, _ = engine_with(strategy, settings=settings)
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.65)
    assert [t - start for t in strategy.times] == pytest.approx([0.0, 0.1, 0.35, 0.4, 0.5, 0.6], abs=1e-9)
    stats = engine.statistics()
    assert (stats.overruns, stats.missed_ticks, stats.ticks) == (1, 1, 6)


def ready_books() -> Books:
    books = Books()
    cell = books.add(MARKET)
    for token in cell.tokens.values():
        token.book.apply_snapshot([], [(Decimal("0.50"), Decimal(10))], now=trio.current_time())
        token.ready = True
        token.confirmed_at = trio.current_time()
    return books


async def test_a_book_change_wakes_the_strategies_at_once_and_a_burst_is_one_wakeup(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    books = ready_books()
    strategy = Recording()
    engine, _ = engine_with(strategy, books=books)
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.05)
    cell = books.market(MARKET.condition_id)
    for price in ("0.49", "0.48", "0.47"):  # three changes before the engine gets to run
        cell.yes.book.apply_level(Side.SELL, Decimal(price), Decimal(5), now=trio.current_time())
        books.publish([cell])
    await trio.sleep(0.04)
    assert [t - start for t in strategy.times] == pytest.approx([0.0, 0.05], abs=1e-9)
    seen = strategy.calls[-1]
    book = seen.books[MARKET.yes_token_id]
    assert book.best_ask() is not None
    assert book.best_ask().price == Decimal("0.47")  # type: ignore[union-attr]
    assert book.ready
    assert book.age_secs == pytest.approx(0.05)
    assert seen.markets[MARKET.condition_id] == MARKET
    assert set(seen.books) == set(MARKET.token_ids)
    assert len(seen.books) == 2
    assert len(seen.markets) == 1
    assert list(seen.markets) == [MARKET.condition_id]
    assert seen.book("123") is None
    stats = engine.statistics()
    assert (stats.wakeups, stats.ticks, stats.evaluations) == (1, 1, 2)
    assert strategy.calls[0].changed is None  # the first tick is a full sweep
    assert seen.changed == frozenset({MARKET.condition_id})  # a wake-up names what changed


async def test_a_coalescing_window_decides_once_on_the_whole_burst(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """Frames of one burst that arrive 10 ms apart: without a window the first wakes the strategies on its own; with
    `coalesce_secs` they are decided on together, once, when the window ends."""
    books = ready_books()
    strategy = Recording()
    settings = StrategyEngineSettings(coalesce_secs=0.05, period_secs=3600.0)
    engine, _ = engine_with(strategy, books=books, settings=settings)
    start = trio.current_time()
    await nursery.start(engine.run)
    await trio.sleep(0.1)
    cell = books.market(MARKET.condition_id)
    for price in ("0.49", "0.48", "0.47"):  # a burst, 10 ms from one frame to the next
        cell.yes.book.apply_level(Side.SELL, Decimal(price), Decimal(5), now=trio.current_time())
        books.publish([cell])
        await trio.sleep(0.01)
    await trio.sleep(0.2)
    assert [t - start for t in strategy.times] == pytest.approx([0.0, 0.15], abs=1e-9)
    assert strategy.calls[-1].books[MARKET.yes_token_id].best_ask().price == Decimal("0.47")  # type: ignore[union-attr]
    assert engine.statistics().wakeups == 1
    with pytest.raises(ValueError, match="coalesce_secs"):
        StrategyEngineSettings(coalesce_secs=-0.1)


async def test_ticks_sweep_everything_once_per_full_sweep_period_and_otherwise_what_changed(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    books = ready_books()
    strategy = Recording()
    engine, _ = engine_with(strategy, books=books, settings=StrategyEngineSettings(full_sweep_secs=0.3))
    await nursery.start(engine.run)
    await trio.sleep(0.15)
    cell = books.market(MARKET.condition_id)
    cell.yes.book.apply_level(Side.SELL, Decimal("0.49"), Decimal(5), now=trio.current_time())
    cell.bump()  # the cell changed, but nobody published: the engine notices it at the next tick
    await trio.sleep(0.1)
    other = make_market(2)
    books.add(other)  # a new market: changed too
    await trio.sleep(0.1)
    books.remove(other.condition_id)  # publishes: a wake-up for the market that went away
    await trio.sleep(0.33)
    changed = [(round(c.now, 2), c.changed) for c in strategy.calls]
    assert changed == [
        (0.0, None),
        (0.1, frozenset()),
        (0.2, frozenset({MARKET.condition_id})),
        (0.3, None),
        (0.35, frozenset({other.condition_id})),
        (0.4, frozenset()),
        (0.5, frozenset()),
        (0.6, None),
    ]
    assert engine.statistics().full_sweeps == 3


async def test_intents_are_sent_and_stay_in_flight_until_execution_finishes_them(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    def act(state: MarketState, n: int) -> list[StrategyOutput]:
        return [order("a")] if n == 0 else []

    strategy = Recording(act=act)
    engine, channel = engine_with(strategy)
    await nursery.start(engine.run)
    intent = await channel.receive.receive()
    assert isinstance(intent, OrderIntent)
    assert intent.client_order_id == "a"
    await trio.sleep(0.15)
    assert strategy.calls[1].in_flight == {"a"}
    assert engine.in_flight == {"a"}
    engine.finish("a")
    engine.finish("never-sent")  # ignored
    await trio.sleep(0.1)
    assert strategy.calls[-1].in_flight == frozenset()
    stats = engine.statistics()
    assert (stats.intents, stats.in_flight, stats.strategies[0].intents) == (1, 0, 1)


async def test_a_slow_execution_backpressures_the_engine_and_no_intent_is_lost(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    def act(state: MarketState, n: int) -> list[StrategyOutput]:
        return [order(f"c{n}")]

    strategy = Recording(act=act)
    engine, channel = engine_with(strategy, channel=Channel(size=1))
    await nursery.start(engine.run)
    received: list[str] = []
    for _ in range(8):
        await trio.sleep(0.5)  # execution takes 0.5 s per intent
        intent = await channel.receive.receive()
        assert isinstance(intent, OrderIntent)
        received.append(intent.client_order_id)
    assert received == [f"c{n}" for n in range(8)]  # every intent, in order
    stats = engine.statistics()
    assert stats.backpressure_waits >= 6
    assert stats.overruns >= 6  # the engine could not tick while blocked
    assert stats.ticks <= 10


async def test_a_failing_strategy_is_counted_then_disabled_and_the_others_carry_on(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    def boom(state: MarketState, n: int) -> list[StrategyOutput]:
        raise ZeroDivisionError("bug")

    def junk(state: MarketState, n: int) -> list[StrategyOutput]:
        return ["not an intent"]  # type: ignore[list-item]

    bad, worse = Recording("bad", act=boom), Recording("junk", act=junk)
    good = Recording("good", act=lambda state, n: [order(f"g{n}")])
    engine, _channel = engine_with(bad, worse, good, channel=Channel(size=64))
    await nursery.start(engine.run)
    await trio.sleep(0.55)
    assert len(bad.calls) == 3  # disabled after max_strategy_errors = 3
    assert len(worse.calls) == 3
    assert len(good.calls) == 6
    stats = {s.name: s for s in engine.statistics().strategies}
    assert (stats["bad"].enabled, stats["bad"].errors, stats["bad"].last_error) == (False, 3, "ZeroDivisionError: bug")
    assert stats["junk"].enabled is False
    assert stats["junk"].last_error is not None
    assert "TypeError" in stats["junk"].last_error
    assert (stats["good"].enabled, stats["good"].intents) == (True, 6)
    assert engine.statistics().errors == 6


def claimed(key: str, cid: str) -> ClaimedIntent:
    return ClaimedIntent(intent=order(cid), claim_key=key, token_id=MARKET.yes_token_id, detail={"game": "1"})


async def test_claimed_intents_are_sent_only_when_the_claim_is_new(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    claims: list[str] = []

    async def claim(item: ClaimedIntent) -> bool:
        await trio.sleep(0.01)
        new = item.claim_key not in claims
        claims.append(item.claim_key)
        return new

    strategy = Recording(act=lambda state, n: [claimed("m1", f"c{n}")] if n < 2 else [])
    engine, channel = engine_with(strategy, claim=claim)
    await nursery.start(engine.run)
    await trio.sleep(0.35)
    assert claims == ["m1", "m1"]
    sent = channel.receive.receive_nowait()
    assert isinstance(sent, OrderIntent)
    assert sent.client_order_id == "c0"
    with pytest.raises(trio.WouldBlock):
        channel.receive.receive_nowait()
    stats = engine.statistics()
    assert (stats.intents, stats.claims_refused, stats.claim_failures) == (1, 1, 0)


async def test_a_failing_or_hanging_claim_sends_nothing(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def claim(item: ClaimedIntent) -> bool:
        if item.claim_key == "down":
            raise OSError("store down")
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    strategy = Recording(act=lambda state, n: [claimed("down", "c0"), claimed("slow", "c1")] if n == 0 else [])
    settings = StrategyEngineSettings(claim_timeout_secs=0.5)
    engine, channel = engine_with(strategy, claim=claim, settings=settings)
    await nursery.start(engine.run)
    await trio.sleep(1.0)
    with pytest.raises(trio.WouldBlock):
        channel.receive.receive_nowait()
    stats = engine.statistics()
    assert (stats.intents, stats.claim_failures, stats.in_flight) == (0, 2, 0)


async def test_without_a_store_claims_are_kept_for_the_run(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    strategy = Recording(act=lambda state, n: [claimed("m1", f"c{n}")] if n < 3 else [])
    engine, _channel = engine_with(strategy)
    await nursery.start(engine.run)
    await trio.sleep(0.35)
    assert engine.statistics().intents == 1
    assert engine.statistics().claims_refused == 2


async def test_store_claim_marks_the_market_once(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "t.db") as store:
        claim = store_claim(store, wall_clock=lambda: 1_700_000_000.5)
        assert await claim(claimed("0xc1", "c0")) is True
        assert await claim(claimed("0xc1", "c1")) is False
        (sniped,) = await store.load_sniped_markets()
    assert (sniped.condition_id, sniped.token_id, sniped.sniped_at_ns) == (
        "0xc1",
        MARKET.yes_token_id,
        1_700_000_000_500_000_000,
    )
    assert sniped.detail == {"game": "1"}


class Counting:
    name = "count"

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[list[Intent]] = []
        self.fail = fail

    def observe(self, state: MarketState, emitted: Sequence[Intent]) -> Sequence[object]:
        if self.fail:
            raise RuntimeError("analyzer bug")
        self.seen.append(list(emitted))
        return [("event", len(self.seen))]

    def summary(self) -> object:
        return {"observed": len(self.seen)}


async def test_analyzers_see_what_the_strategies_emitted_and_their_events_are_published(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    published: list[object] = []
    analyzer = Counting()
    strategy = Recording(act=lambda state, n: [order("a"), claimed("k", "b")] if n == 0 else [])
    engine, _ = engine_with(strategy, analyzers=[analyzer], publish=published.append)
    await nursery.start(engine.run)
    await trio.sleep(0.15)
    assert [[i.client_order_id for i in batch if isinstance(i, OrderIntent)] for batch in analyzer.seen] == [
        ["a", "b"],
        [],
    ]
    assert published == [("event", 1), ("event", 2)]
    assert engine.summaries() == {"count": {"observed": 2}}


async def test_failing_analyzer_and_publisher_are_counted(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    def broken_publish(event: object) -> None:
        raise trio.WouldBlock

    engine, _ = engine_with(Recording(), analyzers=[Counting(fail=True)], publish=broken_publish)
    await nursery.start(engine.run)
    await trio.sleep(0.45)
    stats = engine.statistics()
    assert (stats.analyzers[0].errors, stats.analyzers[0].enabled) == (3, False)

    ok, _ = engine_with(Recording(), analyzers=[Counting()], publish=broken_publish)
    await nursery.start(ok.run)
    await trio.sleep(0.25)
    assert ok.statistics().publish_errors == 3


async def test_cancelling_the_scope_stops_the_engine_and_closes_the_intent_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine, channel = engine_with(Recording(act=lambda state, n: [order("a")] if n == 0 else []))
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(engine.run)
        assert isinstance(scope, trio.CancelScope)
        await trio.sleep(0.25)
        scope.cancel()
    received = [intent async for intent in channel.receive]  # ends: the engine closed its send side
    assert [i.client_order_id for i in received if isinstance(i, OrderIntent)] == ["a"]


def test_settings_and_construction_are_checked() -> None:
    with pytest.raises(ValueError, match="period_secs"):
        StrategyEngineSettings(period_secs=0)
    with pytest.raises(ValueError, match="max_strategy_errors"):
        StrategyEngineSettings(max_strategy_errors=0)
    with pytest.raises(ValueError, match="min_wakeup_interval_secs"):
        StrategyEngineSettings(min_wakeup_interval_secs=-1)
    with pytest.raises(ValueError, match="claim_timeout_secs"):
        StrategyEngineSettings(claim_timeout_secs=0)
    with pytest.raises(ValueError, match="small and bounded"):
        engine_with(Recording(), channel=Channel(size=1000))
    with pytest.raises(ValueError, match="unique"):
        engine_with(Recording("a"), Recording("a"))
    engine, _ = engine_with(Recording(), session=None)
    assert engine.session


async def test_closed_opportunities_round_trip_through_the_store(tmp_path: Path) -> None:
    analyzer = SumDeviation()
    open_state = StateBuilder()
    open_state.market(MARKET, yes=((), [("0.45", "10")]), no=((), [("0.50", "10")]))
    analyzer.observe(open_state.state(now=1.0), [])
    (closed,) = analyzer.observe(StateBuilder().state(now=3.0), [])
    record = opportunity_record(closed)
    async with open_sqlite_store(tmp_path / "t.db") as store:
        await store.record_opportunities([record])
        (loaded,) = await store.load_opportunities()
    assert (loaded.opportunity_id, loaded.kind, loaded.market) == (closed.opportunity_id, "BINARY/BUY", "0xc1")
    assert (loaded.edge, loaded.size, loaded.traded) == (Decimal("0.05"), Decimal(10), False)
    assert loaded.ts_ns == 1_700_000_003_000_000_000
    assert loaded.detail["duration_secs"] == 2.0


async def test_real_strategies_on_live_books_fire_once_per_basket_until_finished(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    books = ready_books()  # both asks at 0.50: no edge yet
    published: list[object] = []
    strategy = SumTo100(SumTo100Settings(max_basket_usd=Decimal(100), refire_cooldown_secs=0.0))
    channel = Channel()
    engine = StrategyEngine(
        books=books,
        strategies=[strategy],
        analyzers=[SumDeviation()],
        intents=channel.send,
        publish=published.append,
        session="t",
    )
    await nursery.start(engine.run)
    await trio.sleep(0.05)
    cell = books.market(MARKET.condition_id)
    cell.yes.book.apply_level(Side.SELL, Decimal("0.45"), Decimal(10), now=trio.current_time())
    cell.yes.confirmed_at = cell.no.confirmed_at = trio.current_time()
    books.publish([cell])
    arb = await channel.receive.receive()
    assert isinstance(arb, ArbIntent)
    assert (arb.size, [leg.price for leg in arb.legs]) == (Decimal(10), [Decimal("0.45"), Decimal("0.50")])
    await trio.sleep(0.3)  # the basket is in flight: no second one
    with pytest.raises(trio.WouldBlock):
        channel.receive.receive_nowait()
    engine.finish(arb.arb_id)
    again = await channel.receive.receive()
    assert isinstance(again, ArbIntent)
    assert again.arb_id != arb.arb_id
    assert [type(e).__name__ for e in published] == ["Opportunity"]
    status = engine.status()
    assert status["session"] == "t"
    assert status["intents"] == 2
    assert status["in_flight_keys"] == [again.arb_id]
    assert status["errors"] == 0
    strategies = status["strategies"]
    assert isinstance(strategies, tuple)
    assert strategies[0]["name"] == "sum_to_100"
    assert strategies[0]["intents"] == 2
    summaries = status["summaries"]
    assert isinstance(summaries, dict)
    assert summaries["sum_deviation"]["count"] == 1
    assert summaries["sum_deviation"]["traded"] == 1
    json.dumps(status, default=str)  # what the HTTP server does with it


async def test_a_sniped_market_is_never_bought_twice_across_restarts(tmp_path: Path) -> None:
    # real clock: the SQLite store works in a thread, which MockClock's autojump does not wait for
    final = Game(
        game_id="401",
        name="BOS @ LAL",
        state=GameState.POST,
        completed=True,
        status_name="STATUS_FINAL",
        competitors=(
            Competitor(
                home_away="home", winner=True, score=None, display_name="Lakers", abbreviation="LAL", short_name=""
            ),
            Competitor(
                home_away="away", winner=False, score=None, display_name="Celtics", abbreviation="BOS", short_name=""
            ),
        ),
    )
    board = Scoreboard(poll_seq=1, polled_at=0.0, games={"401": final})
    settings = SniperSettings(targets=(f"{MARKET.condition_id}=401:LAL",), confirmations=1)
    fast = StrategyEngineSettings(period_secs=0.01)

    class Counted:
        name = "sniper"

        def __init__(self, inner: Sniper) -> None:
            self.inner, self.calls, self.done = inner, 0, trio.Event()

        def on_state(self, state: MarketState) -> Sequence[StrategyOutput]:
            self.calls += 1
            if self.calls == 5:  # the first evaluation's sends are long done
                self.done.set()
            return self.inner.on_state(state)

    async def run_once(sniper: Sniper, store: Store) -> StrategyEngine:
        channel = Channel()
        counted = Counted(sniper)
        engine = StrategyEngine(
            books=ready_books(),
            strategies=[counted],
            intents=channel.send,
            settings=fast,
            scoreboard=lambda: board,
            claim=store_claim(store),
        )
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await nursery.start(engine.run)
                await counted.done.wait()
                nursery.cancel_scope.cancel()
        engine.sent = [i async for i in channel.receive]  # type: ignore[attr-defined]
        return engine

    async with open_sqlite_store(tmp_path / "t.db") as store:
        first = await run_once(Sniper(settings), store)
        assert [i.token_id for i in first.sent] == [MARKET.yes_token_id]  # type: ignore[attr-defined]
        # a restart that forgot to load the persisted set: the store refuses the claim
        forgetful = await run_once(Sniper(settings), store)
        assert (forgetful.sent, forgetful.statistics().claims_refused) == ([], 1)  # type: ignore[attr-defined]
        # a proper restart: the sniper knows at once
        persisted = {m.condition_id for m in await store.load_sniped_markets()}
        restarted = await run_once(Sniper(settings, already_sniped=persisted), store)
        assert (restarted.sent, restarted.statistics().claims_refused) == ([], 0)  # type: ignore[attr-defined]


async def test_intents_are_in_the_channel_before_the_analyzers_run(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    # Sending is on the tick-to-trade path, analyzing is not: what the channel takes at once goes out first. An
    # intent that must wait for room (and everything after it) goes after the analyzers, in order; the analyzers
    # still see everything the strategies emitted.
    channel = Channel(size=2)
    buffered: list[int] = []

    class Watching(Counting):
        def observe(self, state: MarketState, emitted: Sequence[Intent]) -> Sequence[object]:
            buffered.append(channel.send.statistics().current_buffer_used)
            return super().observe(state, emitted)

    analyzer = Watching()
    strategy = Recording(act=lambda state, n: [order("a"), order("b"), order("c")] if n == 0 else [])
    engine, _ = engine_with(strategy, channel=channel, analyzers=[analyzer])
    await nursery.start(engine.run)
    await trio.testing.wait_all_tasks_blocked()
    assert buffered == [2]  # a and b were sent before the analyzer ran; c waits for room
    assert [[i.client_order_id for i in batch if isinstance(i, OrderIntent)] for batch in analyzer.seen] == [
        ["a", "b", "c"]
    ]
    received = []
    for _ in range(3):
        intent = await channel.receive.receive()
        assert isinstance(intent, OrderIntent)
        received.append(intent.client_order_id)
    assert received == ["a", "b", "c"]
    stats = engine.statistics()
    assert (stats.intents, stats.in_flight, stats.backpressure_waits) == (3, 3, 1)
    assert engine.in_flight == {"a", "b", "c"}


class _NoScan(dict[str, object]):
    """A markets dict that counts whole-dict scans."""

    scans = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        _NoScan.scans += 1
        return super().__iter__()

    def items(self):  # type: ignore[no-untyped-def]
        _NoScan.scans += 1
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        _NoScan.scans += 1
        return super().values()


async def test_a_wakeup_costs_what_changed_not_every_market(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    books = Books(markets=_NoScan())  # type: ignore[arg-type]
    for n in range(1, 500):
        books.add(make_market(n))
    strategy = Recording()
    engine, _ = engine_with(strategy, books=books)
    await nursery.start(engine.run)
    await trio.sleep(0.05)  # after the first tick (a full sweep, which looks at everything)
    _NoScan.scans = 0
    cell = books.market(make_market(7).condition_id)
    books.publish([cell])
    await trio.sleep(0.01)
    assert strategy.calls[-1].changed == frozenset({cell.market.condition_id})
    assert _NoScan.scans == 0


class Looking:
    """An analyzer that notes, at each observation, what it sees of the YES book and when it runs."""

    name = "look"

    def __init__(self, log: list[object]) -> None:
        self.log = log

    def observe(self, state: MarketState, emitted: Sequence[Intent]) -> Sequence[object]:
        book = state.book(MARKET.yes_token_id)
        ask = book.best_ask() if book is not None else None
        self.log.append(
            (
                "observed",
                state.changed,
                ask.price if ask is not None else None,
                [i.client_order_id for i in emitted if isinstance(i, OrderIntent)],
            )
        )
        return []

    def summary(self) -> object:
        return None


async def test_a_wakeups_analyzers_run_after_execution_on_the_books_the_strategies_saw(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    # Execution takes the intent (and the feed moves the book) before the analyzers run; they still see the book as
    # the strategy did, and the intents it emitted.
    books = ready_books()
    log: list[object] = []

    def act(state: MarketState, n: int) -> list[StrategyOutput]:
        book = state.book(MARKET.yes_token_id)
        ask = book.best_ask() if book is not None else None
        log.append(("strategy", state.changed, ask.price if ask is not None else None))
        return [order(f"o{n}")] if state.changed else []

    engine, channel = engine_with(Recording(act=act), books=books, analyzers=[Looking(log)])
    await nursery.start(engine.run)
    await trio.sleep(0.05)
    cell = books.market(MARKET.condition_id)

    async def execution() -> None:
        async for intent in channel.receive:
            assert isinstance(intent, OrderIntent)
            log.append(("executed", intent.client_order_id))
            if intent.client_order_id == "o1":
                cell.yes.book.apply_level(Side.SELL, Decimal("0.40"), Decimal(5), now=trio.current_time())
                books.publish([cell])  # the feed moves on at once

    nursery.start_soon(execution)
    await trio.testing.wait_all_tasks_blocked()
    log.clear()
    cell.yes.book.apply_level(Side.SELL, Decimal("0.45"), Decimal(5), now=trio.current_time())
    books.publish([cell])
    await trio.sleep(0.02)
    changed = frozenset({MARKET.condition_id})
    assert log == [
        ("strategy", changed, Decimal("0.45")),
        ("executed", "o1"),
        ("strategy", changed, Decimal("0.40")),  # after the rest, a change: not idle, the next wake-up comes first
        ("executed", "o2"),
        ("observed", changed, Decimal("0.45"), ["o1"]),  # idle after the rest: the snapshot, as the strategy saw it
        ("observed", changed, Decimal("0.40"), ["o2"]),
    ]
    assert engine.statistics().analyzers[0].errors == 0


@pytest.mark.parametrize("why", ["scope_too_large_to_copy", "told_not_to_defer"])
async def test_a_wakeup_is_analyzed_at_once_after_its_sends_when(
    why: str, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = StrategyEngineSettings()
    if why == "scope_too_large_to_copy":
        monkeypatch.setattr("trader.engine.strategy_engine.MAX_SNAPSHOT_BOOKS", 1)
    else:
        settings = StrategyEngineSettings(defer_analyses=False)
    books = ready_books()
    log: list[object] = []
    engine, channel = engine_with(
        Recording(act=lambda state, n: [order(f"o{n}")] if state.changed else []),
        books=books,
        analyzers=[Looking(log)],
        settings=settings,
    )
    await nursery.start(engine.run)
    await trio.sleep(0.05)

    async def execution() -> None:
        async for intent in channel.receive:
            assert isinstance(intent, OrderIntent)
            log.append(("executed", intent.client_order_id))

    nursery.start_soon(execution)
    log.clear()
    books.publish([books.market(MARKET.condition_id)])
    await trio.sleep(0.01)
    assert log == [("observed", frozenset({MARKET.condition_id}), Decimal("0.50"), ["o1"]), ("executed", "o1")]


def test_defer_analyses_is_a_boolean() -> None:
    with pytest.raises(ValueError, match="defer_analyses"):
        StrategyEngineSettings(defer_analyses="no")  # type: ignore[arg-type]


async def test_under_a_feed_that_never_idles_deferred_analyses_are_bounded_and_in_order(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    from trader.engine.strategy_engine import MAX_PENDING_ANALYSES

    books = ready_books()
    analyzer = Counting()
    engine, _ = engine_with(
        Recording(act=lambda state, n: [order(f"o{n}")] if state.changed else []),
        books=books,
        channel=Channel(size=64),
        analyzers=[analyzer],
        settings=StrategyEngineSettings(period_secs=10.0),  # no tick to catch up
    )
    await nursery.start(engine.run)
    cell = books.market(MARKET.condition_id)
    lag = []
    for _ in range(100):  # a change every 1 ms: the engine is never idle after its 5 ms rest
        books.publish([cell])
        await trio.sleep(0.001)
        lag.append(engine.statistics().wakeups - len(analyzer.seen))
    assert max(lag) <= MAX_PENDING_ANALYSES
    assert max(lag) > 1  # they did wait
    await trio.sleep(0.01)  # idle: every one of them ran, in order
    observed = [[i.client_order_id for i in batch if isinstance(i, OrderIntent)] for batch in analyzer.seen[1:]]
    assert observed == [[f"o{n}"] for n in range(1, engine.statistics().wakeups + 1)]


async def test_stopping_the_engine_runs_the_deferred_analyses(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    books = ready_books()
    analyzer = Counting()
    engine, _ = engine_with(
        Recording(act=lambda state, n: [order(f"o{n}")] if state.changed else []), books=books, analyzers=[analyzer]
    )
    scope = await nursery.start(engine.run)
    await trio.sleep(0.05)
    books.publish([books.market(MARKET.condition_id)])
    await trio.sleep(0.001)  # inside the rest: deferred
    assert len(analyzer.seen) == 1
    scope.cancel()
    await trio.sleep(0.001)
    assert [[i.client_order_id for i in batch if isinstance(i, OrderIntent)] for batch in analyzer.seen] == [[], ["o1"]]


async def test_a_snapshot_holds_the_scope_frozen_and_every_other_field_of_the_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import dataclasses

    from trader.domain.market import NegRiskEvent

    books = Books()
    first, second, other = (make_market(n, neg_risk=True, neg_risk_id="0xnr") for n in (1, 2, 3))
    for market in (first, second, other):
        cell = books.add(market)
        for token in cell.tokens.values():
            token.book.apply_snapshot([], [(Decimal("0.50"), Decimal(10))], now=trio.current_time())
            token.ready = True
            token.confirmed_at = trio.current_time()
    event = NegRiskEvent(event_id="e", title="e", markets=(first, second), complete=True)
    engine, _ = engine_with(Recording(), books=books, events=lambda: [event], session="s1", buy_fees_in_shares=True)
    engine._changes = books.track_changes()
    assert engine._state(full=True).buy_fees_in_shares
    books.publish([books.market(first.condition_id)])
    await trio.sleep(0.5)
    state = engine._state(full=False)
    assert state.book(other.yes_token_id) is not None  # a strategy looked at a book out of scope: it is kept
    snapshot = engine._snapshot(state)
    assert snapshot is not None
    # the changed market, the other market of its event, the book a strategy looked at; nothing else
    assert set(snapshot.markets) == {first.condition_id, second.condition_id}
    assert set(snapshot.books) == {*first.token_ids, *second.token_ids, other.yes_token_id}
    live = books.market(first.condition_id).yes.book
    live.apply_level(Side.SELL, Decimal("0.40"), Decimal(5), now=trio.current_time())  # the feed moves on
    frozen = snapshot.books[first.yes_token_id]
    assert frozen.best_ask() is not None
    assert frozen.best_ask().price == Decimal("0.50")  # type: ignore[union-attr]
    assert (frozen.ready, frozen.suspect) == (True, False)
    assert frozen.age_secs == pytest.approx(0.5)
    assert {f.name for f in dataclasses.fields(MarketState)} == {
        "now", "wall", "markets", "books", "events", "positions", "in_flight", "session", "scoreboard", "changed",
        "buy_fees_in_shares", "stamps",
    }, "a new MarketState field: carry it in StrategyEngine._snapshot"  # fmt: skip
    assert state.stamps is not None
    assert snapshot.stamps is None  # the frozen books are not the live ones the stamps number
    for field in dataclasses.fields(MarketState):
        if field.name not in ("markets", "books", "stamps"):
            assert getattr(snapshot, field.name) == getattr(state, field.name), field.name


async def test_a_full_sweep_looks_again_only_at_markets_whose_books_moved(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A full sweep over many quiet markets: the first looks at every book; the next ones only at those that changed
    since (here one, which now has an edge and is traded), the rest stay dismissed by their stamps."""
    books = Books()
    markets = [make_market(n) for n in range(1, 51)]
    for market in markets:
        cell = books.add(market)
        for token in cell.tokens.values():  # YES + NO asks sum to 1.02: no edge
            token.book.apply_snapshot([(Decimal("0.49"), Decimal(50))], [(Decimal("0.51"), Decimal(50))], now=0.0)
            token.ready = True
            token.confirmed_at = trio.current_time()
        cell.bump()
    strategy = SumTo100(SumTo100Settings(max_book_age_secs=3600.0))
    engine, _ = engine_with(strategy, books=books)  # type: ignore[arg-type]

    def sweep() -> tuple[int, list[StrategyOutput]]:
        state = engine._state(full=True)
        out = list(strategy.on_state(state))
        return len(list(state.books.made)), out  # type: ignore[attr-defined]

    assert sweep() == (100, [])
    assert sweep() == (0, [])  # nothing moved: no book looked at
    moved = books.market(markets[7].condition_id)
    moved.no.book.apply_snapshot([(Decimal("0.40"), Decimal(50))], [(Decimal("0.45"), Decimal(50))], now=1.0)
    moved.bump()
    looked, intents = sweep()
    assert looked == 2
    assert len(intents) == 1
    assert {leg.token_id for leg in intents[0].legs} == set(markets[7].token_ids)  # type: ignore[union-attr]
