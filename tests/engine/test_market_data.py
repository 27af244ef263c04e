"""The market-data service on trio's MockClock, against a scripted venue over in-memory websockets."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import trio
import trio.testing
from trio_websocket import HandshakeError, WebSocketConnection

from trader.domain.book import OrderBook
from trader.domain.market import Market
from trader.domain.numbers import Side
from trader.engine.books import Books
from trader.engine.market_data import MarketDataService, MarketDataSettings
from trader.infra.backoff import Backoff
from trader.testing import builders
from trader.testing.websockets import memory_websocket_factory
from trader.venues.polymarket.market_ws import FrameTap, PolymarketMarketFeed, WebSocketFactory

D = Decimal
FIXTURES = Path(__file__).parents[1] / "fixtures" / "polymarket"
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
SAMPLE_MARKET = "0x2f71af14933532e9131bfbe45767d407688f13eb01ecb1a736ba6bb6f21e7de5"


def make_market(n: int, tick: str = "0.01") -> Market:
    """Market n: condition 0x{n:064x}, tokens 10**70 + 2n and 10**70 + 2n + 1."""
    return builders.make_market(
        n,
        condition_id=f"0x{n:064x}",
        yes_token_id=str(10**70 + 2 * n),
        no_token_id=str(10**70 + 2 * n + 1),
        tick_size=tick,
    )


SAMPLE = builders.make_market(
    condition_id=SAMPLE_MARKET, question="sample", slug="sample", yes_token_id=YES, no_token_id=NO
)


def _price_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class FakeBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def levels(self, side: Side) -> dict[Decimal, Decimal]:
        return self.bids if side is Side.BUY else self.asks

    def best(self) -> tuple[str, str]:
        bid = max(self.bids, default=D(0))
        ask = min(self.asks, default=D(1))
        return _price_text(bid), _price_text(ask)

    def frame(self, asset_id: str) -> dict[str, Any]:
        return {
            "event_type": "book",
            "asset_id": asset_id,
            "market": "m",
            "timestamp": "1000",
            "bids": [{"price": str(p), "size": str(s)} for p, s in sorted(self.bids.items())],
            "asks": [{"price": str(p), "size": str(s)} for p, s in sorted(self.asks.items(), reverse=True)],
        }


class FakeConnection:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.assets: set[str] = set()
        self.closed = trio.Event()


class FakeMarketVenue:
    """Plays the market channel: books per asset, PING -> PONG, subscribe / unsubscribe, scripted faults."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.books: dict[str, FakeBook] = {}
        self.connections: list[FakeConnection] = []
        self.connect_times: list[float] = []
        self.pings: list[float] = []
        self.received: list[Any] = []
        self.answer_pings = True
        self.honour_resubscribe = True
        self.fail_connects = 0
        self.connected = trio.Event()
        self.subscribed = trio.Event()
        self._nursery = nursery
        self._memory = memory_websocket_factory(nursery, self._handle)

    def factory(self) -> WebSocketFactory:
        def connect() -> AbstractAsyncContextManager[WebSocketConnection]:
            if self.fail_connects:
                self.fail_connects -= 1
                self.connect_times.append(trio.current_time())
                return _Failing()
            return self._memory()

        return connect

    def feed(self, *, frame_tap: FrameTap | None = None) -> PolymarketMarketFeed:
        """The engine's side: the Polymarket feed over `factory()`."""
        return PolymarketMarketFeed(self.factory(), frame_tap=frame_tap)

    def book(self, asset_id: str) -> FakeBook:
        return self.books.setdefault(asset_id, FakeBook())

    def live(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed.is_set()]

    async def _handle(self, ws: WebSocketConnection) -> None:
        conn = FakeConnection(ws)
        self.connections.append(conn)
        self.connect_times.append(trio.current_time())
        self.connected.set()
        self.connected = trio.Event()
        try:
            while True:
                message = await ws.get_message()
                if message == "PING":
                    self.pings.append(trio.current_time())
                    if self.answer_pings:
                        await ws.send_message("PONG")
                    continue
                request = json.loads(message)
                self.received.append(request)
                assets = request["assets_ids"]
                if request.get("operation") == "unsubscribe":
                    if self.honour_resubscribe:
                        conn.assets -= set(assets)
                    continue
                if request.get("operation") == "subscribe" and not self.honour_resubscribe:
                    continue
                conn.assets |= set(assets)
                await ws.send_message(json.dumps([self.book(a).frame(a) for a in assets]))
                self.subscribed.set()
                self.subscribed = trio.Event()
        finally:
            conn.closed.set()

    async def send(self, frame: object, *, to: FakeConnection | None = None) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        for conn in [to] if to is not None else self.live():
            await conn.ws.send_message(text)

    async def set_level(
        self, asset_id: str, side: Side, price: str, size: str, *, lie_about_best: bool = False, send: bool = True
    ) -> None:
        """Change one level and publish it (to connections subscribed to the asset) with the true best prices."""
        book = self.book(asset_id)
        levels = book.levels(side)
        if D(size):
            levels[D(price)] = D(size)
        else:
            levels.pop(D(price), None)
        best_bid, best_ask = book.best()
        if lie_about_best:
            best_bid = "0.01"
        frame = {
            "event_type": "price_change",
            "market": "m",
            "timestamp": "2000",
            "price_changes": [
                {
                    "asset_id": asset_id,
                    "price": price,
                    "size": size,
                    "side": side.value,
                    "best_bid": best_bid,
                    "best_ask": best_ask,
                }
            ],
        }
        if send:
            for conn in self.live():
                if asset_id in conn.assets:
                    await conn.ws.send_message(json.dumps(frame))

    async def drop_all(self) -> None:
        for conn in self.live():
            await conn.ws.aclose()


class _Failing:
    async def __aenter__(self) -> WebSocketConnection:
        raise HandshakeError("connection refused")

    async def __aexit__(self, *exc: object) -> None:
        return None


def expected_book(fake: FakeBook, asset_id: str) -> OrderBook:
    book = OrderBook(asset_id, D("0.0001"))
    book.apply_snapshot(fake.bids.items(), fake.asks.items(), now=0)
    return book


def settings(**overrides: Any) -> MarketDataSettings:
    base: dict[str, Any] = {"backoff": Backoff(initial_secs=0.5, max_secs=4, jitter=0)}
    return MarketDataSettings(**(base | overrides))


@pytest.fixture
def venue(nursery: trio.Nursery) -> FakeMarketVenue:
    return FakeMarketVenue(nursery)


async def start(
    nursery: trio.Nursery, venue: FakeMarketVenue, markets: list[Market], **overrides: Any
) -> MarketDataService:
    books = Books()
    for market in markets:
        books.add(market)
    service = MarketDataService(venue.feed(), books, settings(**overrides), wall_ns=lambda: 1_767_225_700_000_000_000)
    await nursery.start(service.run)
    return service


async def wait_until(books: Books, predicate: Any) -> None:
    with trio.fail_after(120):
        while not predicate():
            await books.wait_changed(books.version)


# ----------------------------------------------------------------------------------------------------------------


async def test_books_become_ready_with_the_snapshot_and_follow_changes(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.book(YES).bids[D("0.48")] = D("100")
    venue.book(YES).asks[D("0.52")] = D("50")
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    assert not books.token(YES).ready
    await books.wait_ready(SAMPLE_MARKET)
    assert books.token(YES).book == expected_book(venue.book(YES), YES)
    assert venue.received[0] == {
        "assets_ids": sorted([YES, NO]),
        "type": "market",
        "initial_dump": True,
        "custom_feature_enabled": True,
    }

    await venue.set_level(YES, Side.BUY, "0.49", "10")
    await venue.set_level(YES, Side.SELL, "0.52", "0")
    await wait_until(books, lambda: books.token(YES).best_ask() is None)
    assert books.token(YES).book == expected_book(venue.book(YES), YES)
    health = books.token(YES).health(trio.current_time())
    assert health.ready
    assert not health.suspect
    assert health.age_secs == 0


async def test_a_frame_tap_is_told_of_each_frame_received_parsed_and_applied(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.book(YES).bids[D("0.48")] = D("100")
    books = Books()
    books.add(SAMPLE)
    seen: list[tuple[str, str | bytes, bool]] = []

    def tap(stage: str, data: str | bytes) -> None:
        seen.append((stage, data, books.token(YES).ready))

    service = MarketDataService(venue.feed(frame_tap=tap), books, settings())
    await nursery.start(service.run)
    await books.wait_ready(SAMPLE_MARKET)
    snapshot = seen[0][1]
    assert '"book"' in str(snapshot)
    # applied means in the books: the YES book is ready only at the third stage
    assert seen == [("received", snapshot, False), ("parsed", snapshot, False), ("applied", snapshot, True)]
    seen.clear()
    await trio.sleep(10.5)  # the PONG to the first PING: received and parsed, nothing to apply
    assert seen == [("received", "PONG", True), ("parsed", "PONG", True)]


async def test_pings_every_ten_seconds_and_pongs_keep_the_connection(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    await trio.sleep(95)
    assert venue.pings == [10.0 * n for n in range(1, 10)]
    assert venue.connect_times == [0.0]
    stats = service.statistics()
    assert stats.pings == 9
    assert stats.stalls == 0
    assert stats.reconnects == 0


async def test_a_silent_connection_is_a_stall_and_is_replaced(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.answer_pings = False
    service = await start(nursery, venue, [SAMPLE], stall_timeout_secs=25)
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    # The snapshot at t=0 was the last frame: at t=25 the connection is declared stalled, the books are no
    # longer ready, and the service reconnects after the first backoff delay (0.5 s).
    await wait_until(books, lambda: not books.token(YES).ready)
    assert trio.current_time() == 25
    await books.wait_ready(SAMPLE_MARKET)
    assert venue.connect_times == [0.0, 25.5]
    stats = service.statistics()
    assert stats.stalls == 1
    assert stats.reconnects == 1


async def test_a_stall_is_declared_exactly_the_timeout_after_the_last_frame_of_a_live_connection(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    # PONGs at t=10, 20, 30 keep the connection alive; the stall timer is moved forward lazily (at most every half
    # timeout), so it first fires at t=45, 15 s after the last frame: not yet a stall. It is declared at t=55.
    service = await start(nursery, venue, [SAMPLE], stall_timeout_secs=25)
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    await trio.sleep(35)
    venue.answer_pings = False
    await wait_until(books, lambda: not books.token(YES).ready)
    assert trio.current_time() == 55
    assert service.statistics().stalls == 1


async def test_book_age_grows_on_a_stalled_connection_but_not_on_a_quiet_live_one(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE], stall_timeout_secs=25)
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    await trio.sleep(14)  # PONG at t=10 confirms the quiet book
    assert books.token(YES).age(trio.current_time()) == 4
    venue.answer_pings = False
    await trio.sleep(10)  # t=24: no frame since t=10
    assert books.token(YES).age(trio.current_time()) == 14
    assert service.statistics().max_book_age_secs == 14


async def test_reconnects_follow_the_backoff_schedule_and_reset_after_a_healthy_period(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.fail_connects = 4
    service = await start(nursery, venue, [SAMPLE], healthy_reset_secs=60)
    await service.books.wait_ready(SAMPLE_MARKET)
    # delays 0.5, 1, 2, 4 after the four refused connects
    assert venue.connect_times == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert service.statistics().reconnects == 4
    # A connection that lived 100 s resets the schedule: the next loss waits the first delay again.
    await trio.sleep(100)
    venue.fail_connects = 1
    await venue.drop_all()
    await wait_until(service.books, lambda: not service.books.token(YES).ready)
    await service.books.wait_ready(SAMPLE_MARKET)
    # the schedule restarted: 0.5 s, then 1 s after the refused connect
    assert venue.connect_times[-2:] == [107.5 + 0.5, 107.5 + 0.5 + 1.0]


async def test_a_lost_connection_makes_books_not_ready_until_the_new_snapshot(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.book(YES).bids[D("0.40")] = D("1")
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    # While we are away the book changes; nobody tells us.
    await venue.drop_all()
    await wait_until(books, lambda: not books.token(YES).ready)
    assert books.token(YES).health(trio.current_time()).age_secs is None
    await venue.set_level(YES, Side.BUY, "0.45", "7", send=False)
    await books.wait_ready(SAMPLE_MARKET)
    assert books.token(YES).book == expected_book(venue.book(YES), YES)
    assert venue.received[-1]["assets_ids"] == sorted([YES, NO])


async def test_a_best_price_mismatch_marks_the_book_suspect_and_resubscribes_it(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    # A change we never see (the venue lost it), then one whose best prices reveal the gap.
    await venue.set_level(YES, Side.BUY, "0.30", "5", send=False)
    await venue.set_level(YES, Side.SELL, "0.70", "5")
    await wait_until(books, lambda: books.token(YES).suspect)
    assert books.token(YES).suspect_reason == "BEST_PRICE_MISMATCH"
    await books.wait_ready(SAMPLE_MARKET)
    assert books.token(YES).book == expected_book(venue.book(YES), YES)
    assert [r.get("operation") for r in venue.received[-2:]] == ["unsubscribe", "subscribe"]
    assert venue.received[-1]["assets_ids"] == [YES]
    stats = service.statistics()
    assert stats.resyncs == 1
    assert stats.reconnects == 0


async def test_a_resync_the_venue_ignores_falls_back_to_reconnecting(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.honour_resubscribe = False
    service = await start(nursery, venue, [SAMPLE], resync_timeout_secs=5)
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    await venue.set_level(YES, Side.BUY, "0.30", "5", lie_about_best=True)
    await wait_until(books, lambda: books.token(YES).suspect)
    await wait_until(books, lambda: not books.token(YES).ready)
    assert trio.current_time() == 5
    await books.wait_ready(SAMPLE_MARKET)
    assert venue.connect_times == [0.0, 5.5]
    assert not books.token(YES).suspect


async def test_resync_by_reconnecting_when_configured(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE], resync_by_resubscribe=False)
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    await venue.set_level(NO, Side.SELL, "0.60", "5", lie_about_best=True)
    await wait_until(books, lambda: not books.token(NO).ready)
    await books.wait_ready(SAMPLE_MARKET)
    assert venue.connect_times == [0.0, 0.5]


async def test_malformed_and_unknown_frames_are_counted_and_the_connection_keeps_running(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    await venue.send("{not json")
    await venue.send({"event_type": "something_new", "asset_id": YES})
    await venue.send([{"event_type": "book", "asset_id": "999", "bids": [], "asks": []}])
    await venue.set_level(YES, Side.BUY, "0.41", "3")
    await wait_until(books, lambda: books.token(YES).best_bid() is not None)
    stats = service.statistics()
    assert dict(stats.drops) == {"MALFORMED_JSON": 1, "UNKNOWN_EVENT_TYPE": 1, "UNKNOWN_ASSET": 1}
    assert stats.reconnects == 0
    assert stats.resyncs == 0
    assert not books.token(YES).suspect


async def test_a_dropped_change_for_our_book_triggers_a_resync(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    bad = {"asset_id": YES, "price": "0.505", "size": "1", "side": "BUY"}
    await venue.send({"event_type": "price_change", "market": "m", "timestamp": "1", "price_changes": [bad]})
    await wait_until(books, lambda: books.token(YES).suspect)
    assert books.token(YES).suspect_reason == "DROPPED_BOOK_DATA"
    await books.wait_ready(SAMPLE_MARKET)
    stats = service.statistics()
    assert dict(stats.drops) == {"PRICE_OFF_TICK": 1}
    assert stats.resyncs == 1


async def test_the_sample_session_replays_into_exact_books(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    lines = (FIXTURES / "sample_market_ws.jsonl").read_text().splitlines()
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await venue.subscribed.wait()
    for line in lines:
        await venue.send(line)
    await wait_until(books, lambda: books.market(SAMPLE_MARKET).market.tick_size == D("0.001") and books.version > 0)
    await trio.sleep(1)
    yes, no = books.token(YES), books.token(NO)
    # Expected from the file: the second snapshot near 0.96, then the 0.97 ask grew to 550, then 3-decimal levels.
    assert yes.book.levels(Side.BUY) == expected_levels(("0.961", "1000"), ("0.95", "5000"), ("0.94", "1200"))
    assert yes.book.levels(Side.SELL) == expected_levels(("0.968", "75.5"), ("0.97", "550"), ("0.99", "20000"))
    assert no.book.levels(Side.BUY) == expected_levels(("0.032", "75.5"), ("0.03", "550"), ("0.01", "20000"))
    assert no.book.levels(Side.SELL) == expected_levels(("0.039", "1000"), ("0.05", "5000"), ("0.06", "1200"))
    assert yes.book.tick_size == no.book.tick_size == D("0.001")
    assert yes.last_trade_price == D("0.97")
    assert yes.venue_best == (D("0.49"), D("0.52"))
    assert not yes.suspect
    assert not no.suspect
    stats = service.statistics()
    assert stats.drops == {}
    assert stats.resyncs == 0
    # the last sample frame is stamped 1767225671624 ms; the injected wall clock reads 1767225700000 ms
    assert stats.feed_latency_ms == 1_767_225_700_000 - 1_767_225_671_624
    assert stats.entries == 2 * 0 + 16 + 2 + 2 + 2 + 2 + 2 + 8 + 2 + 8 + 2 + 2 + 2


def expected_levels(*pairs: tuple[str, str]) -> list[Any]:
    from trader.domain.book import Level

    return [Level(D(p), D(s)) for p, s in pairs]


async def test_assets_are_sharded_by_market_at_most_200_per_connection(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    markets = [make_market(n) for n in range(250)]
    service = await start(nursery, venue, markets)
    shards = service.shard_assets()
    assert [len(s) for s in shards] == [200, 200, 100]
    for market in markets:  # both tokens of a market share a connection
        assert sum(market.yes_token_id in s and market.no_token_id in s for s in shards) == 1
    for market in markets:
        await service.books.wait_ready(market.condition_id)
    assert len(venue.connections) == 3
    assert sorted(len(c.assets) for c in venue.connections) == [100, 200, 200]
    assert service.statistics().connected == 3


async def test_tracking_and_untracking_markets_while_running(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    first, second = make_market(1), make_market(2)
    service = await start(nursery, venue, [first])
    await service.books.wait_ready(first.condition_id)
    service.track(second)
    await service.books.wait_ready(second.condition_id)
    assert venue.received[-1] == {
        "operation": "subscribe",
        "assets_ids": sorted(second.token_ids),
        "custom_feature_enabled": True,
    }
    service.untrack(first.condition_id)
    await trio.sleep(1)
    assert venue.received[-1]["operation"] == "unsubscribe"
    assert sorted(venue.received[-1]["assets_ids"]) == sorted(first.token_ids)
    assert first.condition_id not in service.books.markets
    assert len(venue.connections) == 1


async def test_a_waiting_strategy_sees_the_latest_state_not_a_queue(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    cell = await books.wait_ready(SAMPLE_MARKET)
    seen = cell.version
    for n in range(1, 6):  # five changes while the strategy is busy
        await venue.set_level(YES, Side.BUY, f"0.{10 + n}", "1")
    await trio.sleep(1)
    version = await cell.wait_changed(seen)
    assert version == cell.version
    assert version - seen == 5
    assert cell.yes.best_bid() is not None
    assert cell.yes.best_bid().price == D("0.15")  # type: ignore[union-attr]
    # Nothing new: a waiter blocks until the next change.
    with trio.move_on_after(5) as scope:
        await cell.wait_changed(version)
    assert scope.cancelled_caught


async def test_statistics_rates(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE], rate_window_secs=10)
    await service.books.wait_ready(SAMPLE_MARKET)
    for _ in range(20):
        await venue.set_level(YES, Side.BUY, "0.20", "1")
    await trio.sleep(0.5)
    stats = service.statistics()
    assert stats.frames == 21  # the snapshot array and twenty changes
    assert stats.frames_per_sec == 2.1
    assert stats.entries_per_sec == 2.0
    await trio.sleep(20)
    stats = service.statistics()
    assert stats.frames_per_sec == pytest.approx(0.1)  # the PONG at t=20 only


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_assets_per_connection"):
        MarketDataSettings(max_assets_per_connection=1)
    with pytest.raises(ValueError, match="stall_timeout_secs"):
        MarketDataSettings(ping_interval_secs=10, stall_timeout_secs=5)
    with pytest.raises(ValueError, match="resync_timeout_secs"):
        MarketDataSettings(resync_timeout_secs=0)


async def test_run_is_started_with_nursery_start(nursery: trio.Nursery) -> None:
    service = MarketDataService(
        PolymarketMarketFeed(memory_websocket_factory(nursery, partial(trio.sleep, 0))), Books()
    )
    books = await nursery.start(service.run)
    assert books is service.books
    assert service.statistics().connections == 0


async def test_drops_are_all_counted_but_logged_sparingly(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    service = await start(nursery, venue, [SAMPLE])
    await service.books.wait_ready(SAMPLE_MARKET)
    with structlog.testing.capture_logs() as logs:
        for _ in range(9):
            await venue.send({"event_type": "mystery"})
        await trio.sleep(1)
    assert service.statistics().drops == {"UNKNOWN_EVENT_TYPE": 9}
    assert [e["count"] for e in logs if e["event"] == "market_frame_dropped"] == [1, 2, 4, 8]


async def test_a_new_market_on_the_channel_is_handed_to_discovery(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    announced: list[str] = []
    heard = trio.Event()

    def on_new_market(condition_id: str) -> None:
        announced.append(condition_id)
        heard.set()

    books = Books()
    books.add(make_market(1))
    service = MarketDataService(venue.feed(), books, settings(), on_new_market=on_new_market)
    await nursery.start(service.run)
    await books.wait_ready(make_market(1).condition_id)
    captured = Path(__file__).parents[1] / "fixtures" / "polymarket" / "captured" / "ws_market_new_market_msg.json"
    frame = json.loads(captured.read_text())  # as production sends it
    await venue.send(frame)
    with trio.fail_after(5):
        await heard.wait()
    assert announced == ["0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1"]


async def test_a_market_resolved_on_the_channel_is_closed_for_trading(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, venue: FakeMarketVenue
) -> None:
    venue.book(YES).bids[D("0.48")] = D("100")
    service = await start(nursery, venue, [SAMPLE])
    books = service.books
    await books.wait_ready(SAMPLE_MARKET)
    assert books.market(SAMPLE_MARKET).market.is_tradable
    frame = {
        "event_type": "market_resolved",
        "market": SAMPLE_MARKET,
        "assets_ids": [YES, NO],
        "winning_asset_id": YES,
        "winning_outcome": "Yes",
        "timestamp": "1767225600000",
    }
    await venue.send(frame)
    await wait_until(books, lambda: books.market(SAMPLE_MARKET).resolved_winner == YES)
    assert not books.market(SAMPLE_MARKET).market.is_tradable  # the strategies skip it
    assert books.token(YES).closed  # and the risk gate refuses it
    assert books.token(NO).closed
