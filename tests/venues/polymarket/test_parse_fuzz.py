"""Hypothesis: no input crashes the market-frame parser, and whatever it lets through is valid. Every outcome is a
`ParsedFrame`: events that pass the checks below, and drops with a reason code from `DROP_REASONS`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzzing import FIXTURE_DIR, captured_glob, inputs
from trader.domain.feed import BookSnapshot, LastTrade, ParsedFrame, PriceChange, TickSizeChange
from trader.domain.numbers import ONE, ZERO, within_limits
from trader.venues.polymarket.parse import DROP_REASONS, MALFORMED_JSON, parse_market_frame

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
TICKS = {YES: Decimal("0.01"), NO: Decimal("0.001")}
#: Captured market frames (those of the sample file are for YES and NO).
CAPTURED_FRAMES = [
    *captured_glob("ws_market_*.json"),
    *(line.encode() for line in (FIXTURE_DIR / "sample_market_ws.jsonl").read_text().splitlines() if line.strip()),
]

decimal_text = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=-2, max_value=2, places=4).map(str),
    st.sampled_from(["0", "1", ".5", "0.50", "1e-2", "1E+400", "-0", "NaN", "sNaN", "-Infinity", "", " 0.5 ", "0x1"]),
    st.text(max_size=12),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), decimal_text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
asset = st.one_of(st.sampled_from([YES, NO, "1", ""]), json_scalar)
side = st.one_of(st.sampled_from(["BUY", "SELL", "buy", "HOLD"]), json_scalar)
level = st.fixed_dictionaries({"price": decimal_text, "size": decimal_text}) | json_value
change_entry = st.fixed_dictionaries(
    {"asset_id": asset, "price": decimal_text, "size": decimal_text, "side": side},
    optional={"best_bid": decimal_text, "best_ask": decimal_text, "hash": json_scalar},
)
timestamp = st.one_of(st.integers(min_value=0).map(str), json_scalar)
event = st.one_of(
    st.fixed_dictionaries(
        {"event_type": st.just("book"), "asset_id": asset, "bids": st.lists(level), "asks": st.lists(level)},
        optional={"timestamp": timestamp, "tick_size": decimal_text, "last_trade_price": decimal_text},
    ),
    st.fixed_dictionaries(
        {"event_type": st.just("price_change"), "price_changes": st.lists(change_entry | json_value, max_size=5)},
        optional={"timestamp": timestamp, "market": json_scalar},
    ),
    st.fixed_dictionaries(
        {"event_type": st.just("price_change"), "asset_id": asset, "changes": st.lists(level, max_size=3)},
    ),
    st.fixed_dictionaries(
        {"event_type": st.just("tick_size_change"), "asset_id": asset, "new_tick_size": decimal_text},
        optional={"old_tick_size": decimal_text, "timestamp": timestamp},
    ),
    st.fixed_dictionaries(
        {"event_type": st.just("last_trade_price"), "asset_id": asset, "price": decimal_text},
        optional={"size": decimal_text, "side": side, "fee_rate_bps": decimal_text, "timestamp": timestamp},
    ),
    st.fixed_dictionaries(
        {"event_type": st.sampled_from(["best_bid_ask", "new_market", "market_resolved", "nope"])},
        optional={"asset_id": asset, "market": json_scalar, "assets_ids": json_value, "best_bid": decimal_text},
    ),
    json_value,
)
frame = st.one_of(event, st.lists(event, max_size=4)).map(json.dumps)


def check_invariants(parsed: ParsedFrame) -> None:
    assert {d.reason for d in parsed.drops} <= DROP_REASONS
    assert parsed.suspect <= set(TICKS)
    ticks = dict(TICKS)  # the parser applies tick changes to the rest of the frame
    for item in parsed.events:
        if isinstance(item, BookSnapshot):
            assert item.asset_id in TICKS
            ticks[item.asset_id] = item.tick_size or ticks[item.asset_id]
            for price, size in item.bids + item.asks:
                assert ZERO <= price <= ONE
                assert price % ticks[item.asset_id] == ZERO
                assert size > ZERO
                assert within_limits(size)  # no size that overflows the arithmetic downstream
        elif isinstance(item, PriceChange):
            assert item.changes
            for change in item.changes:
                assert change.asset_id in TICKS
                assert ZERO <= change.price <= ONE
                assert change.size >= ZERO
                assert within_limits(change.size)
                assert change.size == ZERO or change.price % ticks[change.asset_id] == ZERO
        elif isinstance(item, TickSizeChange):
            assert item.asset_id in TICKS
            ticks[item.asset_id] = item.new_tick_size
        elif isinstance(item, LastTrade):
            assert item.asset_id in TICKS


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(frame)
def test_structured_frames_never_crash_the_parser(text: str) -> None:
    check_invariants(parse_market_frame(text, TICKS))
    check_invariants(parse_market_frame(text.encode(), TICKS))


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(b'"\x80"')  # invalid UTF-8 inside a string: msgspec raises UnicodeDecodeError, not a DecodeError
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    check_invariants(parse_market_frame(data, TICKS))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(CAPTURED_FRAMES))
def test_bytes_near_captured_frames_are_events_or_counted_drops(data: bytes) -> None:
    check_invariants(parse_market_frame(data, TICKS))


@pytest.mark.parametrize(
    "frame",
    [
        b'"\x80"',
        b'{"event_type": "book", "asset_id": "\xff", "bids": [], "asks": []}',
        b'[{"event_type": "price_change", "price_changes": [{"asset_id": "' + YES.encode() + b'", "side": "\xc3("}]}]',
        b"[" * 20_000,
        b'{"a":' * 5_000,
        '"\ud800"',  # a str that no UTF-8 text could be
    ],
)
def test_a_frame_that_is_not_utf8_json_is_one_counted_malformed_drop(frame: str | bytes) -> None:
    parsed = parse_market_frame(frame, TICKS)

    assert parsed.events == []
    assert [drop.reason for drop in parsed.drops] == [MALFORMED_JSON]


def test_a_size_beyond_any_real_one_is_dropped_not_passed_to_the_books() -> None:
    change = {"asset_id": YES, "price": "0.5", "side": "BUY", "size": "1e999999999"}
    parsed = parse_market_frame(json.dumps({"event_type": "price_change", "price_changes": [change]}), TICKS)

    assert parsed.events == []
    assert [(drop.reason, drop.asset_id) for drop in parsed.drops] == [("BAD_NUMBER", YES)]
    assert parsed.suspect == {YES}


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_parser(data: str) -> None:
    check_invariants(parse_market_frame(data, TICKS))


@settings(max_examples=200)
@given(frame, st.integers(min_value=0, max_value=400))
def test_truncated_frames_never_crash_the_parser(text: str, cut: int) -> None:
    parsed = parse_market_frame(text[:cut], TICKS)
    check_invariants(parsed)


def _valid_price(tick: Decimal) -> Any:
    steps = int(ONE / tick)
    return st.integers(min_value=0, max_value=steps).map(lambda n: n * tick)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from([YES, NO]), st.sampled_from(["BUY", "SELL"]), st.data()),
        min_size=1,
        max_size=6,
    )
)
def test_valid_changes_come_through_exactly(entries: list[tuple[str, str, st.DataObject]]) -> None:
    wire = []
    for asset_id, side_text, data in entries:
        price = data.draw(_valid_price(TICKS[asset_id]))
        size = data.draw(st.decimals(min_value=0, max_value=10**9, places=2))
        wire.append({"asset_id": asset_id, "price": str(price), "size": str(size), "side": side_text})
    parsed = parse_market_frame(json.dumps({"event_type": "price_change", "price_changes": wire}), TICKS)
    assert parsed.drops == []
    assert len(parsed.events) == 1
    change_event = parsed.events[0]
    assert isinstance(change_event, PriceChange)
    assert [(c.asset_id, c.side.value, str(c.price), str(c.size)) for c in change_event.changes] == [
        (w["asset_id"], w["side"], w["price"], w["size"]) for w in wire
    ]
