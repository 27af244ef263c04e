"""Market-channel frames -> domain values: every captured frame and every sample line, with hand-written values."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from trader.domain.feed import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    LevelChange,
    MarketEvent,
    MarketResolved,
    NewMarket,
    ParsedFrame,
    PriceChange,
    TickSizeChange,
)
from trader.domain.numbers import Side
from trader.venues.polymarket.parse import parse_event, parse_market_frame
from trader.venues.polymarket.schemas import (
    WireBook,
    WireLastTradePrice,
    WirePriceChange,
    WireSubscribe,
    WireTickSizeChange,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "polymarket"
CAPTURED = FIXTURES / "captured"

D = Decimal
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
SAMPLE_MARKET = "0x2f71af14933532e9131bfbe45767d407688f13eb01ecb1a736ba6bb6f21e7de5"
CAPTURED_MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
BBA_ASSET = "85354956062430465315924116860125388538595433819574542752031640332592237464430"
NVDA_YES = "76043073756653678226373981964075571318267289248134717369284518995922789326425"
NVDA_NO = "31690934263385727664202099278545688007799199447969475608906331829650099442770"
NVDA_MARKET = "0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1"


def levels(*pairs: tuple[str, str]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((D(p), D(s)) for p, s in pairs)


def change(asset: str, side: Side, price: str, size: str, bid: str, ask: str) -> LevelChange:  # noqa: PLR0917
    return LevelChange(asset, side, D(price), D(size), D(bid), D(ask))


BUY, SELL = Side.BUY, Side.SELL

# ----------------------------------------------------------------------------------------------------------------
# sample_market_ws.jsonl: line by line (line number -> events), values written out from the file by hand

SAMPLE_EXPECTED: list[list[MarketEvent]] = [
    [
        BookSnapshot(
            YES,
            SAMPLE_MARKET,
            bids=levels(("0.4", "15000"), ("0.45", "800"), ("0.47", "3300.5"), ("0.48", "1250")),
            asks=levels(("0.6", "12000"), ("0.55", "610"), ("0.53", "2000"), ("0.52", "940.21")),
            ts_event_ms=1767225600137,
            tick_size=D("0.01"),
            last_trade_price=D("0.51"),
            hash="bf1baea92d051ad0afc659de731334c0a884b871",
        ),
        BookSnapshot(
            NO,
            SAMPLE_MARKET,
            bids=levels(("0.4", "12000"), ("0.45", "610"), ("0.47", "2000"), ("0.48", "940.21")),
            asks=levels(("0.6", "15000"), ("0.55", "800"), ("0.53", "3300.5"), ("0.52", "1250")),
            ts_event_ms=1767225600137,
            tick_size=D("0.01"),
            last_trade_price=D("0.49"),
            hash="58e8f4fa665b60fa3bda54efb6ac81f6cb406e97",
        ),
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225600549,
            (change(YES, BUY, "0.49", "500", "0.49", "0.52"), change(NO, SELL, "0.51", "500", "0.48", "0.51")),
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225600644,
            (
                change(YES, SELL, "0.52", "740.21", "0.49", "0.52"),
                change(NO, BUY, "0.48", "740.21", "0.48", "0.51"),
            ),
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225601847,
            (change(YES, BUY, "0.45", "0", "0.49", "0.52"), change(NO, SELL, "0.55", "0", "0.48", "0.51")),
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225601887,
            (change(YES, SELL, "0.51", "300", "0.49", "0.51"), change(NO, BUY, "0.49", "300", "0.49", "0.51")),
        )
    ],
    [
        LastTrade(
            YES,
            SAMPLE_MARKET,
            price=D("0.51"),
            size=D("300"),
            side=BUY,
            fee_rate_bps=D("0"),
            ts_event_ms=1767225604097,
            transaction_hash="0x709b55bd3da0f5a838125bd0ee20c5bfdd7caba173912d4281cae816b79a201b",
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225604100,
            (change(YES, SELL, "0.51", "0", "0.49", "0.52"), change(NO, BUY, "0.49", "0", "0.48", "0.51")),
        )
    ],
    [
        BookSnapshot(
            YES,
            SAMPLE_MARKET,
            bids=levels(("0.4", "15000"), ("0.47", "3300.5"), ("0.48", "1250"), ("0.49", "500")),
            asks=levels(("0.6", "12000"), ("0.55", "610"), ("0.53", "2000"), ("0.52", "740.21")),
            ts_event_ms=1767225604101,
            tick_size=D("0.01"),
            last_trade_price=D("0.51"),
            hash="2c0e2922f0b5eeae0a2aa27daefd8db11cdb7d38",
        )
    ],
    [BestBidAsk(YES, SAMPLE_MARKET, D("0.49"), D("0.52"), 1767225604102)],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225609102,
            (
                change(YES, BUY, "0.5", "2500.55", "0.5", "0.52"),
                change(NO, SELL, "0.5", "2500.55", "0.48", "0.5"),
            ),
        )
    ],
    [
        BookSnapshot(
            YES,
            SAMPLE_MARKET,
            bids=levels(("0.94", "1200"), ("0.95", "5000")),
            asks=levels(("0.99", "20000"), ("0.97", "800")),
            ts_event_ms=1767225670102,
            tick_size=D("0.01"),
            last_trade_price=D("0.96"),
            hash="ac4727e34c2b4799c1627c1ceb4ff0e7b954a904",
        ),
        BookSnapshot(
            NO,
            SAMPLE_MARKET,
            bids=levels(("0.01", "20000"), ("0.03", "800")),
            asks=levels(("0.06", "1200"), ("0.05", "5000")),
            ts_event_ms=1767225670102,
            tick_size=D("0.01"),
            last_trade_price=D("0.04"),
            hash="21c4e04c9af96f878fd5505684ff52759e8bd92f",
        ),
    ],
    [
        LastTrade(
            YES,
            SAMPLE_MARKET,
            price=D("0.97"),
            size=D("250"),
            side=BUY,
            fee_rate_bps=D("0"),
            ts_event_ms=1767225670402,
            transaction_hash="0x27ca64c092a959c7edc525ed45e845b1de6a7590d173fd2fad9133c8a779a1e3",
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225670404,
            (change(YES, SELL, "0.97", "550", "0.95", "0.97"), change(NO, BUY, "0.03", "550", "0.03", "0.05")),
        )
    ],
    [TickSizeChange(YES, SAMPLE_MARKET, D("0.01"), D("0.001"), 1767225671304)],
    [TickSizeChange(NO, SAMPLE_MARKET, D("0.01"), D("0.001"), 1767225671304)],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225671554,
            (
                change(YES, BUY, "0.961", "1000", "0.961", "0.97"),
                change(NO, SELL, "0.039", "1000", "0.03", "0.039"),
            ),
        )
    ],
    [
        PriceChange(
            SAMPLE_MARKET,
            1767225671624,
            (
                change(YES, SELL, "0.968", "75.5", "0.961", "0.968"),
                change(NO, BUY, "0.032", "75.5", "0.032", "0.039"),
            ),
        )
    ],
]


def sample_lines() -> list[str]:
    return (FIXTURES / "sample_market_ws.jsonl").read_text().splitlines()


def test_every_sample_line_parses_to_the_values_written_out_by_hand() -> None:
    # Arrange: both tokens known at the 0.01 tick, as after discovery.
    ticks = {YES: D("0.01"), NO: D("0.01")}
    lines = sample_lines()
    assert len(lines) == len(SAMPLE_EXPECTED) == 17
    for number, (line, expected) in enumerate(zip(lines, SAMPLE_EXPECTED, strict=True), start=1):
        # Act
        parsed = parse_market_frame(line, ticks)
        # Assert
        assert parsed.drops == [], f"line {number}"
        assert parsed.suspect == set(), f"line {number}"
        assert parsed.events == expected, f"line {number}"
        for event in parsed.events:  # the service applies tick changes; do the same between lines
            if isinstance(event, TickSizeChange):
                ticks[event.asset_id] = event.new_tick_size


def test_sample_entries_are_counted() -> None:
    ticks = {YES: D("0.01"), NO: D("0.01")}
    counts = [parse_market_frame(line, ticks).entries for line in sample_lines()[:5]]
    assert counts == [16, 2, 2, 2, 2]


def test_three_decimal_prices_are_off_tick_until_the_tick_size_change_arrives() -> None:
    line = sample_lines()[15]
    parsed = parse_market_frame(line, {YES: D("0.01"), NO: D("0.01")})
    assert parsed.events == []
    assert [(d.reason, d.asset_id) for d in parsed.drops] == [("PRICE_OFF_TICK", YES), ("PRICE_OFF_TICK", NO)]
    assert parsed.suspect == {YES, NO}


def test_a_tick_size_change_applies_to_the_rest_of_its_frame() -> None:
    lines = sample_lines()
    frame = "[" + ",".join([lines[13], lines[14], lines[15]]) + "]"
    parsed = parse_market_frame(frame, {YES: D("0.01"), NO: D("0.01")})
    assert parsed.drops == []
    assert parsed.events == SAMPLE_EXPECTED[13] + SAMPLE_EXPECTED[14] + SAMPLE_EXPECTED[15]


def test_the_parser_does_not_change_the_callers_ticks() -> None:
    ticks = {YES: D("0.01"), NO: D("0.01")}
    parse_market_frame(sample_lines()[13], ticks)
    assert ticks == {YES: D("0.01"), NO: D("0.01")}


# ----------------------------------------------------------------------------------------------------------------
# captured/ frames (production shapes from NautilusTrader's test data)


def captured(name: str) -> bytes:
    return (CAPTURED / name).read_bytes()


CAPTURED_TICKS = {YES: D("0.01"), NO: D("0.01"), BBA_ASSET: D("0.01")}

CAPTURED_BOOK = BookSnapshot(
    YES,
    CAPTURED_MARKET,
    bids=levels(("0.50", "200.0"), ("0.49", "350.0")),
    asks=levels(("0.51", "150.0"), ("0.52", "250.0")),
    ts_event_ms=1703875200000,
)
CAPTURED_TRADE = LastTrade(
    YES, CAPTURED_MARKET, price=D("0.51"), size=D("25"), side=BUY, fee_rate_bps=D(0), ts_event_ms=1703875202000
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ws_market_book_msg.json", CAPTURED_BOOK),
        ("ws_market_last_trade_msg.json", CAPTURED_TRADE),
        (
            "ws_market_price_change_msg.json",
            PriceChange(CAPTURED_MARKET, 1703875201000, (change(YES, BUY, "0.51", "150.0", "0.51", "0.52"),)),
        ),
        (
            "ws_market_best_bid_ask_msg.json",
            BestBidAsk(
                BBA_ASSET,
                "0x0005c0d312de0be897668695bae9f32b624b4a1ae8b140c49f08447fcc74f442",
                D("0.73"),
                D("0.77"),
                1766789469958,
            ),
        ),
        (
            "ws_market_new_market_msg.json",
            NewMarket(
                condition_id=NVDA_MARKET,
                token_ids=(NVDA_YES, NVDA_NO),
                outcomes=("Yes", "No"),
                question="Will NVIDIA (NVDA) close above $240 end of January?",
                slug="nvda-above-240-on-january-30-2026",
                gamma_id="1031769",
                event_id="125819",
                tick_size=D("0.01"),
                active=True,
                tags=("stocks",),
                ts_event_ms=1766790415550,
            ),
        ),
        (
            "ws_market_resolved_msg.json",
            MarketResolved(NVDA_MARKET, (NVDA_YES, NVDA_NO), NVDA_YES, "Yes", 1766790415550),
        ),
    ],
)
def test_captured_frames_with_event_type(name: str, expected: MarketEvent) -> None:
    parsed = parse_market_frame(captured(name), CAPTURED_TICKS)
    assert parsed.drops == []
    assert parsed.events == [expected]


def test_captured_tick_size_change_with_event_type() -> None:
    # The captured frame moves the tick from 0.1 to 0.01.
    parsed = parse_market_frame(captured("ws_market_tick_size_msg.json"), {YES: D("0.1")})
    assert parsed.events == [TickSizeChange(YES, CAPTURED_MARKET, D("0.1"), D("0.01"), 1703875210000)]


def test_captured_frames_without_event_type_parse_with_their_specific_type() -> None:
    book = msgspec.json.decode(captured("ws_book_snapshot.json"), type=WireBook)
    assert parse_event(book, CAPTURED_TICKS).events == [
        BookSnapshot(
            YES,
            CAPTURED_MARKET,
            bids=levels(("0.48", "500.0"), ("0.49", "350.0"), ("0.50", "200.0")),
            asks=levels(("0.53", "400.0"), ("0.52", "250.0"), ("0.51", "150.0")),
            ts_event_ms=1703875200000,
        )
    ]
    trade = msgspec.json.decode(captured("ws_last_trade.json"), type=WireLastTradePrice)
    assert parse_event(trade, CAPTURED_TICKS).events == [CAPTURED_TRADE]
    quotes = msgspec.json.decode(captured("ws_quotes.json"), type=WirePriceChange)
    assert parse_event(quotes, CAPTURED_TICKS).events == [
        PriceChange(
            CAPTURED_MARKET,
            1703875201000,
            (change(YES, BUY, "0.51", "150.0", "0.51", "0.52"), change(NO, SELL, "0.49", "100.0", "0.48", "0.49")),
        )
    ]
    tick = msgspec.json.decode(captured("ws_tick_size_change.json"), type=WireTickSizeChange)
    assert parse_event(tick, {YES: D("0.1")}).events == [
        TickSizeChange(YES, CAPTURED_MARKET, D("0.1"), D("0.01"), 1703875210000)
    ]


def test_a_captured_frame_of_an_unsubscribed_asset_is_dropped_as_unknown() -> None:
    parsed = parse_market_frame(captured("ws_market_book_msg.json"), {NO: D("0.01")})
    assert parsed.events == []
    assert [(d.reason, d.asset_id) for d in parsed.drops] == [("UNKNOWN_ASSET", YES)]
    assert parsed.suspect == set()  # not ours: nothing to resync


# ----------------------------------------------------------------------------------------------------------------
# Bad input: dropped, counted by reason, and the affected books named


TICKS = {YES: D("0.01"), NO: D("0.01")}


def entry(
    asset: str = YES, price: object = "0.5", size: object = "10", side: object = "BUY", **extra: object
) -> dict[str, Any]:
    return {"asset_id": asset, "price": price, "size": size, "side": side, "best_bid": "0.5", "best_ask": "0.6"} | extra


def frame(*entries: dict[str, Any], **top: object) -> str:
    return json.dumps({"event_type": "price_change", "market": "m", "timestamp": "1", "price_changes": entries} | top)


def reasons(parsed: ParsedFrame) -> list[tuple[str, str | None]]:
    return [(d.reason, d.asset_id) for d in parsed.drops]


def test_pong_is_not_json_and_not_an_error() -> None:
    for pong in ("PONG", b"PONG", "PONG\n"):
        parsed = parse_market_frame(pong, TICKS)
        assert parsed.pong
        assert parsed.drops == []


@pytest.mark.parametrize(
    ("bad_entry", "reason"),
    [
        (entry(price="0.505"), "PRICE_OFF_TICK"),
        (entry(price="1.01"), "PRICE_OUT_OF_RANGE"),
        (entry(price="-0.01"), "PRICE_OUT_OF_RANGE"),
        (entry(price="NaN"), "BAD_NUMBER"),
        (entry(price="Infinity"), "BAD_NUMBER"),
        (entry(price="abc"), "BAD_NUMBER"),
        (entry(size="-1"), "NEGATIVE_SIZE"),
        (entry(size="sNaN"), "BAD_NUMBER"),
        (entry(side="HOLD"), "BAD_SIDE"),
        (entry(best_bid="2"), "PRICE_OUT_OF_RANGE"),
        (entry(price=0.5), "BAD_FIELD"),  # a JSON number is not a decimal string
        (entry(size=None), "BAD_FIELD"),
        ({"asset_id": YES, "price": "0.5"}, "BAD_FIELD"),
    ],
)
def test_one_bad_entry_is_dropped_and_its_book_named_the_rest_applies(bad_entry: dict[str, Any], reason: str) -> None:
    parsed = parse_market_frame(frame(bad_entry, entry(asset=NO, price="0.4")), TICKS)
    assert reasons(parsed) == [(reason, YES)]
    assert parsed.suspect == {YES}
    assert parsed.events == [
        PriceChange("m", 1, (LevelChange(NO, BUY, D("0.4"), D("10"), D("0.5"), D("0.6")),)),
    ]
    assert parsed.entries == 2


def test_values_remembered_from_earlier_frames_change_no_result() -> None:
    """Validated price and size texts are remembered (a dict lookup instead of Decimal + checks): a text seen in a
    good entry parses the same later, in any entry, and a text once refused is refused again."""
    texts = [
        frame(entry(size="12.5"), entry(asset=NO, price="0.4", size="0")),
        frame(entry(price="0.505", size="12.5")),
        frame(entry(size="-12.5")),
        frame(entry(asset=NO, price="0.4", size="12.5", best_bid="0.4", best_ask="0.505")),
    ]
    first = [parse_market_frame(text, TICKS) for text in texts]
    again = [parse_market_frame(text, TICKS) for text in reversed(texts)][::-1]
    assert again == first
    assert [reasons(p) for p in first] == [[], [("PRICE_OFF_TICK", YES)], [("NEGATIVE_SIZE", YES)], []]
    assert first[3].events == [PriceChange("m", 1, (LevelChange(NO, BUY, D("0.4"), D("12.5"), D("0.4"), D("0.505")),))]


def test_an_entry_for_an_unknown_asset_is_counted_but_suspects_nothing() -> None:
    parsed = parse_market_frame(frame(entry(asset="123"), entry(asset=NO)), TICKS)
    assert reasons(parsed) == [("UNKNOWN_ASSET", "123")]
    assert parsed.suspect == set()
    assert len(parsed.events) == 1


def test_a_removal_off_the_grid_is_accepted_so_finer_levels_can_go_after_a_tick_change() -> None:
    parsed = parse_market_frame(frame(entry(price="0.961", size="0")), TICKS)
    assert parsed.drops == []
    assert parsed.events[0].changes[0].price == D("0.961")  # type: ignore[union-attr]


def test_unreported_best_prices_are_none() -> None:
    parsed = parse_market_frame(frame(entry(best_bid="", best_ask=None)), TICKS)
    assert parsed.events == [PriceChange("m", 1, (LevelChange(YES, BUY, D("0.5"), D("10")),))]


def test_a_bad_timestamp_drops_the_whole_change_and_names_its_books() -> None:
    parsed = parse_market_frame(frame(entry(), entry(asset=NO), timestamp="12:00"), TICKS)
    assert parsed.events == []
    assert reasons(parsed) == [("BAD_TIMESTAMP", YES), ("BAD_TIMESTAMP", NO)]
    assert parsed.suspect == {YES, NO}


def test_a_snapshot_with_one_bad_level_is_dropped_whole() -> None:
    book = {"event_type": "book", "asset_id": YES, "timestamp": "1", "bids": [{"price": "0.5", "size": "1"}]}
    for bad_asks, reason in [
        ([{"price": "0.6", "size": "-1"}], "NEGATIVE_SIZE"),
        ([{"price": "0.605", "size": "1"}], "PRICE_OFF_TICK"),
        ([{"price": "0.6", "size": "1"}, {"price": "0.60", "size": "2"}], "DUPLICATE_LEVEL"),
        ([{"price": "0.6"}], "BAD_FIELD"),
    ]:
        parsed = parse_market_frame(json.dumps(book | {"asks": bad_asks}), TICKS)
        assert parsed.events == [], reason
        assert reasons(parsed) == [(reason, YES)]
        assert parsed.suspect == {YES}


def test_zero_size_levels_of_a_snapshot_are_left_out() -> None:
    book = {"event_type": "book", "asset_id": YES, "bids": [{"price": "0.5", "size": "0"}], "asks": []}
    parsed = parse_market_frame(json.dumps(book), TICKS)
    assert parsed.events == [BookSnapshot(YES, None, (), (), None)]


def test_a_snapshot_with_its_own_tick_size_is_checked_on_that_grid() -> None:
    book = {"event_type": "book", "asset_id": YES, "tick_size": "0.001", "bids": [{"price": "0.961", "size": "1"}]}
    parsed = parse_market_frame(json.dumps(book | {"asks": []}), TICKS)
    assert parsed.events == [BookSnapshot(YES, None, levels(("0.961", "1")), (), None, tick_size=D("0.001"))]


def test_a_bad_tick_size_change_names_the_book() -> None:
    tick = {"event_type": "tick_size_change", "asset_id": YES, "old_tick_size": "0.01", "new_tick_size": "0.02"}
    parsed = parse_market_frame(json.dumps(tick), TICKS)
    assert reasons(parsed) == [("BAD_TICK_SIZE", YES)]
    assert parsed.suspect == {YES}


def test_a_bad_trade_or_best_bid_ask_is_dropped_without_suspecting_the_book() -> None:
    trade = {"event_type": "last_trade_price", "asset_id": YES, "price": "7", "size": "1", "side": "BUY"}
    bba = {"event_type": "best_bid_ask", "asset_id": YES, "best_bid": "x"}
    parsed = parse_market_frame(json.dumps([trade, bba]), TICKS)
    assert reasons(parsed) == [("PRICE_OUT_OF_RANGE", YES), ("BAD_NUMBER", YES)]
    assert parsed.suspect == set()


def test_an_empty_or_missing_best_price_is_not_reported_rather_than_bad() -> None:
    frames = [
        {"event_type": "best_bid_ask", "asset_id": YES, "market": SAMPLE_MARKET, "best_bid": "", "best_ask": "0.52"},
        {"event_type": "best_bid_ask", "asset_id": NO, "best_bid": "0.48", "timestamp": "1767225604102"},
    ]
    parsed = parse_market_frame(json.dumps(frames), TICKS)
    assert parsed.drops == []
    assert parsed.events == [
        BestBidAsk(YES, SAMPLE_MARKET, None, D("0.52"), None),
        BestBidAsk(NO, None, D("0.48"), None, 1767225604102),
    ]


def test_malformed_json_is_dropped_and_names_the_known_books_in_its_text() -> None:
    parsed = parse_market_frame('{"event_type":"price_change","price_changes":[{"asset_id":"' + YES + '","pr', TICKS)
    assert reasons(parsed) == [("MALFORMED_JSON", None)]
    assert parsed.suspect == {YES}


def test_json_that_breaks_after_a_type_mismatch_is_still_malformed_json() -> None:
    parsed = parse_market_frame('{"event_type": 7, "asset_id": "' + NO + '" ]', TICKS)
    assert reasons(parsed) == [("MALFORMED_JSON", None)]
    assert parsed.suspect == {NO}


def test_unknown_and_missing_event_types_and_non_objects_are_counted_and_the_rest_applies() -> None:
    good = json.loads(frame(entry()))
    parsed = parse_market_frame(
        json.dumps([{"event_type": "shiny_new"}, {"asset_id": YES}, 17, [1], {"event_type": ["book"]}, good]), TICKS
    )
    assert [d.reason for d in parsed.drops] == [
        "UNKNOWN_EVENT_TYPE",
        "MISSING_EVENT_TYPE",
        "NOT_AN_OBJECT",
        "NOT_AN_OBJECT",
        "UNKNOWN_EVENT_TYPE",
    ]
    assert parsed.suspect == set()
    assert len(parsed.events) == 1


def test_an_unreadable_price_change_names_every_known_book_it_mentions() -> None:
    parsed = parse_market_frame(frame(entry(), entry(asset=NO), timestamp=17), TICKS)
    assert reasons(parsed) == [("BAD_FIELD", NO), ("BAD_FIELD", YES)]
    assert parsed.suspect == {YES, NO}


def test_a_price_change_without_entries_is_counted() -> None:
    parsed = parse_market_frame(json.dumps({"event_type": "price_change", "market": "m"}), TICKS)
    assert reasons(parsed) == [("EMPTY_PRICE_CHANGE", None)]


def test_the_legacy_per_asset_price_change_is_accepted() -> None:
    legacy = {
        "event_type": "price_change",
        "asset_id": YES,
        "market": "m",
        "timestamp": "5",
        "hash": "h",
        "changes": [{"price": "0.5", "side": "BUY", "size": "10"}, {"price": "0.6", "side": "SELL", "size": "0"}],
    }
    parsed = parse_market_frame(json.dumps(legacy), TICKS)
    assert parsed.events == [
        PriceChange("m", 5, (LevelChange(YES, BUY, D("0.5"), D("10")), LevelChange(YES, SELL, D("0.6"), D("0")))),
    ]


def test_a_bad_change_in_the_legacy_form_is_dropped_alone() -> None:
    legacy = {
        "event_type": "price_change",
        "asset_id": YES,
        "changes": [{"price": "0.5", "side": "BUY", "size": 10}, {"price": "0.6", "side": "SELL", "size": "1"}],
    }
    parsed = parse_market_frame(json.dumps(legacy), TICKS)
    assert reasons(parsed) == [("BAD_FIELD", YES)]
    assert parsed.events == [PriceChange(None, None, (LevelChange(YES, SELL, D("0.6"), D("1")),))]


def test_subscribe_message_uses_the_venue_spelling() -> None:
    message = json.loads(msgspec.json.encode(WireSubscribe(assets_ids=[YES])))
    assert message == {"assets_ids": [YES], "type": "market", "initial_dump": True, "custom_feature_enabled": False}
