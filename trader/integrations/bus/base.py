"""The event bus: what the engine tells the outside world, as versioned JSON events.

Every event is one JSON object (UTF-8), version 1:

    {"v": 1, "id": "3f0c...", "type": "order_filled", "ts": 1767225600123, "data": {...}}

- `v`: the format version (1). A consumer refuses versions it does not know.
- `id`: unique per event (32 hex digits): a consumer that reads both the channel and the stream dedupes on it.
- `type`: what happened, the snake_case name of the engine's event (`order_filled`, `order_canceled`,
  `risk_state_changed`, `book_summary`, `emergency_stop`, ...).
- `ts`: when it happened, integer milliseconds since the Unix epoch (UTC wall clock).
- `data`: the event's fields. Prices, sizes and amounts are decimal *strings* ("0.47"), never JSON numbers; enums
  are their string values; times are epoch seconds (numbers) as in the engine's events. Values under keys that look
  like secrets (private key, API secret, passphrase, ...) are replaced by "[redacted]".

Each event has a `kind` (`EventKind`), which names its channel: `trader:<kind>`, e.g. `trader:fill`. Kinds:
`book` (top-of-book summaries, at a configurable rate), `intent` (order intents), `order` (order state changes),
`fill` (fills and reversed fills), `trade` (settlement status changes), `risk` (risk denials, state changes,
breaches), `opportunity`, `emergency_stop`, `capital` (merges, settlements of resolved markets, redemptions), and
`system` (anything else).

`EventBus` is what the engine publishes to: `publish(event)` never blocks and answers False when the event was
dropped (counted). Implementations: `MemoryBus` (in-process, the default) and `RedisBus` (pub/sub + stream).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from trader.errors import InputError
from trader.infra.secrets import scrub_secrets

__all__ = [
    "EVENT_VERSION",
    "BookSummary",
    "BusEvent",
    "BusStatistics",
    "EmergencyStop",
    "EventBus",
    "EventKind",
    "bus_event",
    "channel_name",
    "decode_event",
    "encode_event",
    "kind_of",
]

EVENT_VERSION = 1


class EventKind(enum.StrEnum):
    BOOK = "book"
    INTENT = "intent"
    ORDER = "order"
    FILL = "fill"
    TRADE = "trade"
    RISK = "risk"
    OPPORTUNITY = "opportunity"
    EMERGENCY_STOP = "emergency_stop"
    CAPITAL = "capital"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class BookSummary:
    """Top of one token's book, as published at the configured rate (not every frame)."""

    token_id: str
    condition_id: str
    best_bid: Decimal | None
    best_bid_size: Decimal | None
    best_ask: Decimal | None
    best_ask_size: Decimal | None
    ts: float  # wall clock, epoch seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyStop:
    """The engine stopped hard: nothing new is sent until an operator resumes."""

    reason: str
    source: str  # "http", "cli", "signal", "risk"
    orders_cancelled: int
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BusEvent:
    """One event as published: see the module docstring for the JSON shape."""

    type: str
    kind: EventKind
    ts_ms: int
    data: Mapping[str, object]
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    v: int = EVENT_VERSION

    @property
    def channel(self) -> str:
        return channel_name(self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStatistics:
    published: int  # accepted for delivery
    delivered: int
    dropped: int  # refused at once (a full queue)
    undelivered: int  # accepted but not delivered (the server was down)
    available: bool


class EventBus(Protocol):
    def publish(self, event: BusEvent) -> bool:
        """Hand the event over without waiting; False when it was dropped (and counted)."""
        ...

    def statistics(self) -> BusStatistics: ...


def channel_name(kind: EventKind, prefix: str = "trader") -> str:
    return f"{prefix}:{kind.value}"


_KIND_BY_CLASS: dict[str, EventKind] = {
    "OrderIntent": EventKind.INTENT,
    "IntentRecord": EventKind.INTENT,
    "OrderFilled": EventKind.FILL,
    "OrderFillReversed": EventKind.FILL,
    "TradeStatusChanged": EventKind.TRADE,
    "RiskRejected": EventKind.RISK,
    "RiskStateChanged": EventKind.RISK,
    "DailyLossBreached": EventKind.RISK,
    "RiskEventRecord": EventKind.RISK,
    "Opportunity": EventKind.OPPORTUNITY,
    "OpportunityRecord": EventKind.OPPORTUNITY,
    "EmergencyStop": EventKind.EMERGENCY_STOP,
    "BookSummary": EventKind.BOOK,
    "SetsMerged": EventKind.CAPITAL,
    "MarketSettled": EventKind.CAPITAL,
    "PositionsRedeemed": EventKind.CAPITAL,
    "CapitalOpFailed": EventKind.CAPITAL,
    "CapitalOpStuck": EventKind.CAPITAL,
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def kind_of(obj: object) -> EventKind:
    name = type(obj).__name__
    if name in _KIND_BY_CLASS:
        return _KIND_BY_CLASS[name]
    if name.startswith("Order"):
        return EventKind.ORDER
    return EventKind.SYSTEM


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def bus_event(obj: object, *, wall_clock: Callable[[], float] = time.time) -> BusEvent:
    """The bus event for an engine event (any dataclass): its type, kind, time and exact, secret-free data.

    `ts` comes from the object's `ts` field (epoch seconds) when it has one, else from `wall_clock`.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise InputError("event", f"expected a dataclass event, got {type(obj).__name__}")
    data = scrub_secrets(_jsonable(obj))
    assert isinstance(data, dict)
    ts = getattr(obj, "ts", None)
    seconds = ts if isinstance(ts, int | float) and not isinstance(ts, bool) else wall_clock()
    return BusEvent(
        type=_CAMEL.sub("_", type(obj).__name__).lower(),
        kind=kind_of(obj),
        ts_ms=round(seconds * 1000),
        data=data,
    )


def encode_event(event: BusEvent) -> bytes:
    """The event's JSON (compact, UTF-8). Data is scrubbed of secrets again here: nothing leaks by this path."""
    body = {"v": event.v, "id": event.id, "type": event.type, "ts": event.ts_ms, "data": scrub_secrets(event.data)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode_event(raw: bytes | str) -> BusEvent:
    """Parse and check one event (for consumers and tests). `InputError` names what is wrong."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("event", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError("event", "not a JSON object")
    if body.get("v") != EVENT_VERSION:
        raise InputError("v", f"unsupported event version {body.get('v')!r} (this code reads {EVENT_VERSION})")
    kind_name = body.get("type")
    if not isinstance(kind_name, str) or not kind_name:
        raise InputError("type", "missing or not a string")
    ts = body.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise InputError("ts", f"expected integer milliseconds, got {ts!r}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise InputError("data", "missing or not an object")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InputError("id", "missing or not a string")
    camel = "".join(part.capitalize() for part in kind_name.split("_"))
    kind = _KIND_BY_CLASS.get(camel, EventKind.ORDER if camel.startswith("Order") else EventKind.SYSTEM)
    return BusEvent(type=kind_name, kind=kind, ts_ms=ts, data=data, id=event_id)
