"""The local L2 book: venue-shaped examples by hand, then a reference-model property test."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain.book import FillEstimate, Level, OrderBook
from trader.domain.numbers import Side

D = Decimal
TICK = D("0.01")


def lv(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(s)) for p, s in pairs]


def venue_book() -> OrderBook:
    """A `book` frame as the venue sends it: bids ascending, asks descending, i.e. the best level LAST."""
    book = OrderBook("71321", TICK)
    book.apply_snapshot(
        lv(("0.01", "10000"), ("0.45", "800"), (".47", "3300.5"), ("0.48", "1250")),
        lv(("0.99", "12000"), ("0.55", "610"), ("0.530", "2000"), ("0.52", "940.21")),
        now=10.0,
        ts_event_ms=1767225600137,
    )
    return book


def test_snapshot_with_best_level_last() -> None:
    book = venue_book()
    assert book.best_bid() == Level(D("0.48"), D("1250"))
    assert book.best_ask() == Level(D("0.52"), D("940.21"))
    assert book.mid() == D("0.50")
    assert book.spread() == D("0.04")
    assert not book.is_crossed()
    assert book.levels(Side.BUY) == [
        Level(D(p), D(s)) for p, s in [("0.48", "1250"), ("0.47", "3300.5"), ("0.45", "800"), ("0.01", "10000")]
    ]
    assert [lvl.price for lvl in book.levels(Side.SELL, 2)] == [D("0.52"), D("0.53")]
    assert book.change_count == 1
    assert book.last_update == 10.0
    assert book.ts_event_ms == 1767225600137


def test_snapshot_order_is_irrelevant() -> None:
    best_first = OrderBook("71321", TICK)
    best_first.apply_snapshot(
        lv(("0.48", "1250"), ("0.47", "3300.5"), ("0.01", "10000"), ("0.45", "800")),
        lv(("0.52", "940.21"), ("0.53", "2000"), ("0.55", "610"), ("0.99", "12000")),
        now=0.0,
    )
    assert best_first == venue_book()


def test_prices_are_compared_numerically() -> None:
    book = OrderBook("1", TICK)
    book.apply_snapshot(lv(("0.50", "10"), ("0.920", "3")), lv(("1", "5")), now=0.0)
    book.apply_level(Side.BUY, D("0.5"), D("12"), now=1.0)  # same level as "0.50"
    book.apply_level(Side.BUY, D(".92"), D("0"), now=2.0)  # removes "0.920"
    assert book.levels(Side.BUY) == [Level(D("0.5"), D("12"))]
    assert book.best_ask() == Level(D("1.0"), D("5"))
    other = OrderBook("1", TICK)
    other.apply_snapshot(lv(("0.5", "12.00")), lv(("1.00", "5")), now=0.0)
    assert book == other


def test_zero_sizes_are_skipped_and_bad_levels_refused_without_damage() -> None:
    book = venue_book()
    before = book.copy()
    book.apply_snapshot(lv(("0.4", "0"), ("0.3", "1")), lv(("0.6", "0.00")), now=11.0)
    assert book.levels(Side.BUY) == [Level(D("0.3"), D("1"))]
    assert book.best_ask() is None
    for bids, asks, message in [
        (lv(("0.4", "-1")), [], "size must not be negative"),
        ([], lv(("1.5", "1")), "outside"),
        (lv(("0.4", "1"), ("0.40", "2")), [], "bids: price 0.40 appears twice"),
    ]:
        with pytest.raises(ValueError, match=message):
            before.apply_snapshot(bids, asks, now=12.0)
    assert before == venue_book()
    assert before.change_count == 1
    with pytest.raises(ValueError, match="size must not be negative"):
        before.apply_level(Side.SELL, D("0.6"), D("-5"), now=12.0)
    with pytest.raises(ValueError, match="outside"):
        before.apply_level(Side.BUY, D("-0.1"), D("5"), now=12.0)
    assert before == venue_book()
    assert before.change_count == 1


def test_level_updates_are_absolute_and_zero_removes() -> None:
    book = venue_book()
    book.apply_level(Side.BUY, D("0.49"), D("500"), now=11.0, ts_event_ms=1767225600549)
    assert book.best_bid() == Level(D("0.49"), D("500"))
    book.apply_level(Side.BUY, D("0.49"), D("200"), now=12.0)  # new total, not a delta
    assert book.best_bid() == Level(D("0.49"), D("200"))
    assert book.ts_event_ms is None
    book.apply_level(Side.BUY, D("0.49"), D("0"), now=13.0)
    assert book.best_bid() == Level(D("0.48"), D("1250"))
    book.apply_level(Side.SELL, D("0.52"), D("0"), now=14.0)
    assert book.best_ask() == Level(D("0.53"), D("2000"))
    book.apply_level(Side.SELL, D("0.77"), D("0"), now=15.0)  # removing an absent level is harmless
    assert book.change_count == 6
    assert book.age(20.0) == 5.0


def test_empty_and_crossed_books() -> None:
    book = OrderBook("1", TICK)
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.mid() is None
    assert book.spread() is None
    assert book.age(5.0) is None
    assert not book.is_crossed()
    book.apply_level(Side.BUY, D("0.5"), D("1"), now=1.0)
    assert book.mid() is None
    assert not book.is_crossed()
    book.apply_level(Side.SELL, D("0.5"), D("1"), now=1.0)
    assert book.is_crossed()  # locked counts: a CLOB would have matched it
    assert book.spread() == 0
    book.apply_level(Side.SELL, D("0.49"), D("1"), now=1.0)
    assert book.is_crossed()
    book.clear(now=2.0)
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.change_count == 4


def test_depth_counts_levels_at_or_better_than_the_limit() -> None:
    book = venue_book()
    assert book.depth(Side.BUY) == D("15350.5")
    assert book.depth(Side.BUY, limit_price=D("0.47")) == D("4550.5")
    assert book.depth(Side.BUY, limit_price=D("0.475")) == D("1250")
    assert book.depth(Side.BUY, limit_price=D("0.49")) == 0
    assert book.depth(Side.SELL, limit_price=D("0.53")) == D("2940.21")
    assert book.depth(Side.SELL, limit_price=D("0.51")) == 0
    assert book.depth(Side.SELL) == D("15550.21")


def test_fill_estimate_walks_the_opposite_side() -> None:
    book = OrderBook("1", TICK)
    book.apply_snapshot(lv(("0.40", "3"), ("0.45", "4")), lv(("0.55", "20"), ("0.52", "10"), ("0.51", "5")), now=0.0)
    # BUY 12: 5 @ 0.51 + 7 @ 0.52 = 2.55 + 3.64
    assert book.fill_estimate(Side.BUY, D("12")) == FillEstimate(
        filled=D("12"), notional=D("6.19"), vwap=D("6.19") / 12, worst_price=D("0.52"), complete=True
    )
    limited = book.fill_estimate(Side.BUY, D("12"), limit_price=D("0.515"))
    assert (limited.filled, limited.notional, limited.vwap, limited.worst_price, limited.complete) == (
        D("5"),
        D("2.55"),
        D("0.51"),
        D("0.51"),
        False,
    )
    # SELL 5 walks the bids from the highest: 4 @ 0.45 + 1 @ 0.40
    sell = book.fill_estimate(Side.SELL, D("5"))
    assert (sell.filled, sell.notional, sell.vwap, sell.worst_price) == (D("5"), D("2.20"), D("0.44"), D("0.40"))
    too_big = book.fill_estimate(Side.SELL, D("100"))
    assert (too_big.filled, too_big.complete) == (D("7"), False)
    nothing = book.fill_estimate(Side.SELL, D("1"), limit_price=D("0.5"))
    assert nothing == FillEstimate(filled=D(0), notional=D(0), vwap=None, worst_price=None, complete=False)
    zero = book.fill_estimate(Side.BUY, D("0"))
    assert (zero.filled, zero.vwap, zero.complete) == (D(0), None, True)
    with pytest.raises(ValueError, match="size must not be negative"):
        book.fill_estimate(Side.BUY, D("-1"))


def test_tick_size_changes_at_once() -> None:
    book = venue_book()
    book.set_tick_size(D("0.001"))
    assert book.tick_size == D("0.001")
    with pytest.raises(ValueError, match=r"unsupported tick size 0\.02"):
        book.set_tick_size(D("0.02"))
    with pytest.raises(ValueError, match="unsupported tick size"):
        OrderBook("1", D("0.3"))
    assert book.tick_size == D("0.001")


def test_side_must_be_a_side() -> None:
    book = venue_book()
    with pytest.raises(ValueError, match="side must be a Side"):
        book.apply_level("BUY", D("0.5"), D("1"), now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side must be a Side"):
        book.depth("SELL")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side must be a Side"):
        book.levels("SELL")  # type: ignore[arg-type]


def test_copy_is_independent_and_equality_ignores_identity() -> None:
    book = venue_book()
    twin = book.copy()
    assert twin == book
    assert (twin.change_count, twin.last_update, twin.ts_event_ms) == (1, 10.0, 1767225600137)
    twin.apply_level(Side.BUY, D("0.48"), D("1"), now=11.0)
    assert twin != book
    assert book.best_bid() == Level(D("0.48"), D("1250"))
    assert book != "a book"
    assert OrderBook("x", TICK) == OrderBook("y", D("0.1"))
    with pytest.raises(TypeError):
        hash(book)
    assert "best_bid=0.48" in repr(book)
    assert "best_bid=None" in repr(OrderBook("x", TICK))


# Adapted from the start of the sample WebSocket session (shared/polymarket/sample_market_ws.jsonl): two mirrored `book`
# frames (best level last), then `price_change` frames whose best_bid/best_ask say what the book must show.
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"


def wire_levels(text: str) -> list[dict[str, str]]:
    """ "0.4:15000 0.45:800" -> the venue's [{"price": "0.4", "size": "15000"}, ...], in the order given."""
    return [{"price": p, "size": s} for p, s in (pair.split(":") for pair in text.split())]


SESSION = [
    [
        {"event_type": "book", "asset_id": YES, "timestamp": "1767225600137",
         "bids": wire_levels("0.4:15000 0.45:800 0.47:3300.5 0.48:1250"),
         "asks": wire_levels("0.6:12000 0.55:610 0.53:2000 0.52:940.21")},
        {"event_type": "book", "asset_id": NO, "timestamp": "1767225600137",
         "bids": wire_levels("0.4:12000 0.45:610 0.47:2000 0.48:940.21"),
         "asks": wire_levels("0.6:15000 0.55:800 0.53:3300.5 0.52:1250")},
    ],
    {"event_type": "price_change", "timestamp": "1767225600549", "price_changes": [
        {"asset_id": YES, "price": "0.49", "size": "500", "side": "BUY", "best_bid": "0.49", "best_ask": "0.52"},
        {"asset_id": NO, "price": "0.51", "size": "500", "side": "SELL", "best_bid": "0.48", "best_ask": "0.51"}]},
    {"event_type": "price_change", "timestamp": "1767225600644", "price_changes": [
        {"asset_id": YES, "price": "0.52", "size": "740.21", "side": "SELL", "best_bid": "0.49", "best_ask": "0.52"},
        {"asset_id": NO, "price": "0.48", "size": "740.21", "side": "BUY", "best_bid": "0.48", "best_ask": "0.51"}]},
    {"event_type": "price_change", "timestamp": "1767225600700", "price_changes": [
        {"asset_id": YES, "price": "0.52", "size": "0", "side": "SELL", "best_bid": "0.49", "best_ask": "0.53"},
        {"asset_id": NO, "price": "0.48", "size": "0", "side": "BUY", "best_bid": "0.47", "best_ask": "0.51"}]},
]  # fmt: skip


def test_replaying_a_venue_session_matches_the_venue_top_of_book() -> None:
    books = {YES: OrderBook(YES, TICK), NO: OrderBook(NO, TICK)}
    frames = json.loads(json.dumps(SESSION))  # exactly as decoded from the wire
    checked = 0
    for now, frame in enumerate(frames):
        for event in frame if isinstance(frame, list) else [frame]:
            ts = int(event["timestamp"])
            if event["event_type"] == "book":
                books[event["asset_id"]].apply_snapshot(
                    [(D(x["price"]), D(x["size"])) for x in event["bids"]],
                    [(D(x["price"]), D(x["size"])) for x in event["asks"]],
                    now=float(now),
                    ts_event_ms=ts,
                )
                continue
            for change in event["price_changes"]:
                book = books[change["asset_id"]]
                book.apply_level(
                    Side(change["side"]), D(change["price"]), D(change["size"]), now=float(now), ts_event_ms=ts
                )
                best_bid, best_ask = book.best_bid(), book.best_ask()
                assert best_bid is not None
                assert best_ask is not None
                assert (best_bid.price, best_ask.price) == (D(change["best_bid"]), D(change["best_ask"]))
                checked += 1
    assert checked == 6
    # YES and NO mirror each other: YES bid p <-> NO ask 1 - p, same size.
    yes, no = books[YES], books[NO]
    assert [(1 - x.price, x.size) for x in yes.levels(Side.BUY)] == [(x.price, x.size) for x in no.levels(Side.SELL)]
    assert [(1 - x.price, x.size) for x in yes.levels(Side.SELL)] == [(x.price, x.size) for x in no.levels(Side.BUY)]


# -- properties ------------------------------------------------------------------------------------------------

sides = st.sampled_from([Side.BUY, Side.SELL])
# Prices on a 0.01 grid in non-canonical spellings ("0.5", "0.50", ".5"), sizes with 0 (a removal) often.
price_texts = st.integers(min_value=1, max_value=99).flatmap(
    lambda c: st.sampled_from([f"0.{c:02d}", f".{c:02d}", f"0.{c:02d}0", str(D(c) / 100)])
)
size_texts = st.one_of(st.just("0"), st.integers(min_value=1, max_value=10**6).map(lambda n: str(D(n) / 100)))
updates = st.lists(st.tuples(sides, price_texts, size_texts), max_size=60)


@settings(max_examples=100)
@given(updates, updates)
def test_random_updates_match_a_reference_dict_model(
    initial: list[tuple[Side, str, str]], changes: list[tuple[Side, str, str]]
) -> None:
    model: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    snapshot: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for side, price, size in initial:
        snapshot[side][D(price)] = D(size)  # the last spelling of a price wins, so no duplicates
    book = OrderBook("1", TICK)
    book.apply_snapshot(reversed(list(snapshot[Side.BUY].items())), snapshot[Side.SELL].items(), now=0.0)
    for side in Side:
        model[side] = {p: s for p, s in snapshot[side].items() if s}
    bids, asks = model[Side.BUY], model[Side.SELL]
    for n, (side, price, size) in enumerate(changes, start=1):
        book.apply_level(side, D(price), D(size), now=float(n))
        if D(size):
            model[side][D(price)] = D(size)
        else:
            model[side].pop(D(price), None)
        assert book.best_bid_price() == (max(bids) if bids else None)  # asked first: no cached Level to lean on
        assert book.best_ask_price() == (min(asks) if asks else None)
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid == (Level(max(bids), bids[max(bids)]) if bids else None)
        assert best_ask == (Level(min(asks), asks[min(asks)]) if asks else None)
    assert book.levels(Side.BUY) == [Level(p, bids[p]) for p in sorted(bids, reverse=True)]
    assert book.levels(Side.SELL) == [Level(p, asks[p]) for p in sorted(asks)]
    assert book.depth(Side.BUY) == sum(bids.values(), D(0))
    assert book.change_count == 1 + len(changes)
    rebuilt = OrderBook("1", TICK)
    rebuilt.apply_snapshot(bids.items(), asks.items(), now=0.0)
    assert rebuilt == book


@settings(max_examples=100)
@given(
    st.lists(st.tuples(sides, price_texts, size_texts), min_size=1, max_size=30),
    sides,
    st.integers(min_value=0, max_value=10**5).map(lambda n: D(n) / 10),
    st.one_of(st.none(), st.integers(min_value=1, max_value=99).map(lambda c: D(c) / 100)),
)
def test_fill_estimate_is_bounded_by_depth_and_vwap_lies_between_best_and_worst(
    changes: list[tuple[Side, str, str]], taker: Side, size: Decimal, limit: Decimal | None
) -> None:
    book = OrderBook("1", TICK)
    for side, price, level_size in changes:
        book.apply_level(side, D(price), D(level_size), now=0.0)
    estimate = book.fill_estimate(taker, size, limit_price=limit)
    available = book.depth(taker.opposite, limit_price=limit)
    assert estimate.filled == min(size, available)
    assert estimate.complete == (estimate.filled == size)
    if estimate.filled:
        best = book.best_ask() if taker is Side.BUY else book.best_bid()
        assert best is not None
        assert estimate.vwap is not None
        assert estimate.worst_price is not None
        low, high = sorted((best.price, estimate.worst_price))
        assert low <= estimate.vwap <= high
        if limit is not None:
            assert estimate.worst_price <= limit if taker is Side.BUY else estimate.worst_price >= limit
    else:
        assert estimate.vwap is None
        assert estimate.worst_price is None
        assert estimate.notional == 0
