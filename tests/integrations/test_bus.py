"""The event bus without a server: the versioned JSON events, the in-process bus, the publishers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
import trio

from trader.domain.book import Level
from trader.domain.enums import Liquidity, OrderType
from trader.domain.events import OrderCanceled, OrderFilled, RiskRejected
from trader.domain.intents import OrderIntent
from trader.domain.numbers import Side
from trader.domain.risk import RiskStateChanged, TradingState
from trader.errors import InputError
from trader.integrations.bus import (
    BookSummary,
    BusEvent,
    BusPublisher,
    EmergencyStop,
    EventKind,
    MemoryBus,
    bus_event,
    channel_name,
    decode_event,
    encode_event,
    run_book_summaries,
)

FILL = OrderFilled(
    client_order_id="c-1",
    trade_id="t-1",
    token_id="111",
    side=Side.BUY,
    price=Decimal("0.47"),
    size=Decimal("10.50"),
    liquidity=Liquidity.TAKER,
    ts=1_767_225_600.123,
    fee=Decimal("0.0123"),
)


def test_a_fill_becomes_versioned_json_with_exact_decimal_strings() -> None:
    event = bus_event(FILL)
    assert (event.type, event.kind, event.ts_ms, event.channel) == (
        "order_filled",
        EventKind.FILL,
        1_767_225_600_123,
        "trader:fill",
    )
    body = json.loads(encode_event(event))
    assert set(body) == {"v", "id", "type", "ts", "data"}
    assert (body["v"], body["type"], body["ts"], body["id"]) == (1, "order_filled", 1_767_225_600_123, event.id)
    data = body["data"]
    assert (data["price"], data["size"], data["fee"], data["side"], data["liquidity"]) == (
        "0.47",
        "10.50",
        "0.0123",
        "BUY",
        "TAKER",
    )
    assert decode_event(encode_event(event)) == event


def test_every_kind_of_engine_event_lands_on_its_channel() -> None:
    intent = OrderIntent(
        client_order_id="c-2",
        strategy="clipper",
        condition_id="0xc1",
        token_id="111",
        side=Side.SELL,
        price=Decimal("0.6"),
        size=Decimal(5),
        order_type=OrderType.FOK,
    )
    cases = {
        intent: ("order_intent", "trader:intent"),
        OrderCanceled(client_order_id="c-1", ts=1.0): ("order_canceled", "trader:order"),
        RiskRejected(client_order_id="c", strategy="s", reason="RISK_MAX_NOTIONAL", ts=1.0): (
            "risk_rejected",
            "trader:risk",
        ),
        RiskStateChanged(previous=TradingState.ACTIVE, state=TradingState.HALTED, reason="EMERGENCY_STOP", ts=1.0): (
            "risk_state_changed",
            "trader:risk",
        ),
        EmergencyStop(reason="OPERATOR", source="http", orders_cancelled=3, ts=1.0): (
            "emergency_stop",
            "trader:emergency_stop",
        ),
        BookSummary(
            token_id="1",
            condition_id="c",
            best_bid=Decimal("0.4"),
            best_bid_size=Decimal(1),
            best_ask=None,
            best_ask_size=None,
            ts=1.0,
        ): ("book_summary", "trader:book"),
    }
    for obj, (type_, channel) in cases.items():
        event = bus_event(obj, wall_clock=lambda: 2.0)
        assert (event.type, event.channel) == (type_, channel)
        assert decode_event(encode_event(event)).kind == event.kind
    assert bus_event(intent, wall_clock=lambda: 2.5).ts_ms == 2500  # no ts field: the wall clock
    assert channel_name(EventKind.SYSTEM, "paper") == "paper:system"


@dataclass(frozen=True)
class LeakyStatus:
    api_key: str
    nested: dict[str, object]
    ts: float


def test_secrets_never_reach_the_bus() -> None:
    event = bus_event(LeakyStatus(api_key="k-123", nested={"POLY_PASSPHRASE": "p", "ok": [Decimal("1.0")]}, ts=1.0))
    assert event.kind is EventKind.SYSTEM
    raw = encode_event(event)
    assert b"k-123" not in raw
    assert json.loads(raw)["data"] == {
        "api_key": "[redacted]",
        "nested": {"POLY_PASSPHRASE": "[redacted]", "ok": ["1.0"]},
        "ts": 1.0,
    }
    handmade = BusEvent(type="x", kind=EventKind.SYSTEM, ts_ms=1, data={"private_key": "0xdead"})
    assert b"0xdead" not in encode_event(handmade)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{nope", "event"),
        (b"[1]", "event"),
        (b'{"v":2,"id":"a","type":"t","ts":1,"data":{}}', "v"),
        (b'{"v":1,"id":"a","ts":1,"data":{}}', "type"),
        (b'{"v":1,"id":"a","type":"t","ts":1.5,"data":{}}', "ts"),
        (b'{"v":1,"id":"a","type":"t","ts":true,"data":{}}', "ts"),
        (b'{"v":1,"id":"a","type":"t","ts":1,"data":[]}', "data"),
        (b'{"v":1,"type":"t","ts":1,"data":{}}', "id"),
    ],
)
def test_bad_events_are_refused_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InputError) as info:
        decode_event(raw)
    assert info.value.field == field


def test_only_dataclass_events_are_accepted() -> None:
    with pytest.raises(InputError, match="dataclass"):
        bus_event({"type": "dict"})
    with pytest.raises(InputError, match="dataclass"):
        bus_event(OrderFilled)


async def test_the_memory_bus_filters_by_kind_and_a_slow_subscriber_only_loses_its_own() -> None:
    bus = MemoryBus(keep_last=3)
    publisher = BusPublisher(bus)
    with bus.subscribe({EventKind.FILL}, capacity=10) as fills, bus.subscribe(capacity=1) as slow:
        publisher(FILL)
        publisher(OrderCanceled(client_order_id="c-1", ts=2.0))
        publisher(FILL)
        publisher("not an event")
        assert [fills.receive_nowait().type for _ in range(2)] == ["order_filled", "order_filled"]
        with pytest.raises(trio.WouldBlock):
            fills.receive_nowait()
        assert slow.receive_nowait().type == "order_filled"
        with pytest.raises(trio.WouldBlock):
            slow.receive_nowait()
    stats = bus.statistics()
    assert (stats.published, stats.delivered, stats.dropped) == (3, 3, 2)
    assert (publisher.published, publisher.skipped) == (3, 1)
    assert [e.type for e in bus.recent()] == ["order_filled", "order_canceled", "order_filled"]


class RefusingBus(MemoryBus):
    def publish(self, event: BusEvent) -> bool:
        return False


def test_the_publisher_counts_what_the_bus_refused() -> None:
    publisher = BusPublisher(RefusingBus())
    publisher(FILL)
    assert (publisher.published, publisher.dropped) == (0, 1)


@dataclass
class FakeToken:
    asset_id: str
    condition_id: str
    ready: bool
    bid: Level | None
    ask: Level | None

    def best_bid(self) -> Level | None:
        return self.bid

    def best_ask(self) -> Level | None:
        return self.ask


@dataclass
class FakeBooks:
    items: list[FakeToken]

    def tokens(self) -> list[FakeToken]:
        return self.items


async def test_book_summaries_go_out_at_the_set_rate_and_only_when_the_top_changed(
    autojump_clock: trio.abc.Clock,
) -> None:
    yes = FakeToken("111", "0xc1", True, Level(Decimal("0.40"), Decimal(10)), Level(Decimal("0.42"), Decimal(5)))
    no = FakeToken("222", "0xc1", False, None, None)
    seen: list[tuple[float, object]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_book_summaries(
                FakeBooks([yes, no]),
                lambda e: seen.append((trio.current_time(), e)),
                period_secs=0.5,
                wall_clock=lambda: 9.0,
                task_status=task_status,
            )
        )
        await trio.sleep(1.2)  # ticks at 0, 0.5, 1.0: only the first sees a change
        yes.bid = Level(Decimal("0.41"), Decimal(3))
        no.ready = True
        await trio.sleep(0.5)  # tick at 1.5
        nursery.cancel_scope.cancel()
    assert [t for t, _ in seen] == [0.0, 1.5, 1.5]
    first = seen[0][1]
    assert isinstance(first, BookSummary)
    assert (first.best_bid, first.best_ask_size, first.ts) == (Decimal("0.40"), Decimal(5), 9.0)
    later = [e for _, e in seen[1:]]
    assert [(e.token_id, e.best_bid) for e in later if isinstance(e, BookSummary)] == [
        ("111", Decimal("0.41")),
        ("222", None),
    ]
    with pytest.raises(ValueError, match="period_secs"):
        await run_book_summaries(FakeBooks([]), print, period_secs=0)
