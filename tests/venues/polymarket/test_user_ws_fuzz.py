"""Hypothesis: whatever bytes arrive on the user channel, `parse_user_frame` returns our events and counted drops (one
of the documented reasons), never an exception, and every event it lets through carries exact, sane values."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.fuzzing import captured_glob, inputs
from trader.domain.numbers import ONE, ZERO, within_limits
from trader.venues.polymarket.rest import PolymarketTrade
from trader.venues.polymarket.user_ws import (
    BAD_SHAPE,
    BAD_VALUE,
    NOT_JSON,
    NOT_OURS,
    UNKNOWN_EVENT,
    VENUE_ERROR,
    PolymarketOrderUpdate,
    parse_user_frame,
)

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")

API_KEY = "00000000-0000-0000-0000-000000000001"
ADDRESS = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
DOCUMENTED_DROPS = {NOT_JSON, BAD_SHAPE, BAD_VALUE, UNKNOWN_EVENT, VENUE_ERROR, NOT_OURS}
FRAMES = captured_glob("ws_user_*.json")
SEEDS = [*FRAMES, b"[" + b",".join(FRAMES[:3]) + b"]"]


def parse(data: str | bytes) -> tuple[list[PolymarketOrderUpdate | PolymarketTrade], list[tuple[str, str]]]:
    return parse_user_frame(data, api_key=API_KEY, addresses=[ADDRESS])


def check(events: list[PolymarketOrderUpdate | PolymarketTrade], drops: list[tuple[str, str]]) -> None:
    assert {reason for reason, _ in drops} <= DOCUMENTED_DROPS
    for event in events:
        if isinstance(event, PolymarketOrderUpdate):
            order = event.order
            assert ZERO <= order.price <= ONE
            for size in (order.size_matched, order.original_size):
                assert size >= ZERO
                assert within_limits(size)
        else:
            assert event.fills  # a trade with none of ours is a NOT_OURS drop, not an event
            for fill in event.fills:
                assert ZERO <= fill.price <= ONE
                assert fill.size > ZERO
                assert within_limits(fill.size)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(SEEDS))
@example(b'"\x80"')
@example(b'{"event_type": "order", "type": "PLACEMENT", "id": "\xff"}')  # invalid UTF-8 past the envelope
@example(b'{"event_type": "order", "created_at": "\\u00b2"}')  # "²".isdigit() is True, Decimal("²") raises
def test_any_bytes_are_our_events_or_counted_drops(data: bytes) -> None:
    check(*parse(data))


@pytest.mark.parametrize(
    "frame",
    [
        b'{"event_type": "\x80"}',
        b"[" + b'{"a":' * 5_000,
        b"[" * 20_000,
        '"\ud800"',
        b'[{"event_type": "order", "id": "\xff"}]',
    ],
)
def test_a_frame_that_is_not_utf8_json_is_a_not_json_drop(frame: str | bytes) -> None:
    events, drops = parse(frame)

    assert events == []
    assert [reason for reason, _ in drops] == [NOT_JSON]


def test_a_timestamp_in_other_digits_is_a_bad_value_drop_naming_the_field() -> None:
    order = (
        FRAMES[0]
        .replace(b'"timestamp": "', b'"timestamp": "\\u00b2')
        .replace(b'"timestamp":"', b'"timestamp":"\\u00b2')
    )
    assert order != FRAMES[0]

    events, drops = parse(order)

    assert events == []
    ((reason, detail),) = drops
    assert reason == BAD_VALUE
    assert "ts" in detail
