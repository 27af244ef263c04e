"""The sinks: where the engine's records and events go, opened first and closed last (`open_sinks`).

```
open_sinks(settings)  -> Sinks
├── raw store        SQLite file or PostgreSQL (`run.store_url`), opened first, closed last; it must keep the
│                    records of this run's account scope (paper/live, venue, wallet), or the run stops there
├── outputs          the in-process bus always; Redis (`run.redis_url`) and Slack (a webhook) when configured
├── intent journal   the order path's write-ahead (`store.intent_journal`), replayed into the store at start
└── store            the engine's store: the raw store behind a lossless write-behind sink
```

`Outputs` is the fan-out every engine event goes through (never blocking): the event bus (in-process, plus Redis)
and Slack. Leaving `open_sinks` normally flushes each sink within its deadline (`store.flush_secs` for the store,
`supervisor.sink_flush_secs` for Redis and Slack); leaving by an exception stops them at once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import structlog
import trio

from trader.app.config import Settings, SlackAlertSettings, default_database_url, store_scope
from trader.config import Secret
from trader.errors import ConfigError
from trader.integrations.bus import BusPublisher, BusStatistics, EmergencyStop, EventBus, MemoryBus
from trader.integrations.bus.base import BusEvent
from trader.integrations.bus.redis import RedisBus, RedisBusSettings, open_redis_bus
from trader.integrations.sinks import SinkStatistics
from trader.integrations.slack import SlackNotifier, SlackSettings, open_slack_notifier
from trader.integrations.store.base import RiskEventRecord, Store, StoreScopeMismatch, check_scope
from trader.integrations.store.engine_store import EngineStore, open_engine_store
from trader.integrations.store.open import intent_journal_path, open_intent_journal, open_store
from trader.integrations.store.postgres import PostgresStore, redact_url

__all__ = ["Outputs", "Sinks", "as_json", "exit_within", "open_sinks"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


@asynccontextmanager
async def exit_within(secs: float, manager: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter `manager`. Leaving normally, its exit (a sink's flush) is shielded from the caller's cancellation but
    bounded by `secs`; leaving by an exception, it exits as it does by itself (a sink then stops at once)."""
    with trio.CancelScope() as scope:
        async with manager as value:
            yield value  # an exception here propagates untouched: this scope was never cancelled
            scope.deadline = trio.current_time() + secs
            scope.shield = True
    if scope.cancelled_caught:
        log.error("sink_flush_timed_out", secs=secs)


class _FanOut:
    """One `EventBus` that hands each event to several (the in-process bus, and Redis when configured)."""

    def __init__(self, buses: Sequence[EventBus]) -> None:
        self.buses = tuple(buses)

    def publish(self, event: BusEvent) -> bool:
        ok = True
        for bus in self.buses:
            ok = bus.publish(event) and ok
        return ok

    def statistics(self) -> BusStatistics:
        stats = [bus.statistics() for bus in self.buses]
        return BusStatistics(
            published=max(s.published for s in stats),
            delivered=sum(s.delivered for s in stats),
            dropped=sum(s.dropped for s in stats),
            undelivered=sum(s.undelivered for s in stats),
            available=all(s.available for s in stats),
        )


class Outputs:
    """Engine events out: the event bus (in-process, plus Redis when configured) and Slack. Never blocks.

    Call it with any engine event (it is an order-manager listener); `record` takes the store's records (intents,
    risk events) and turns a recorded emergency stop into an `EmergencyStop` event."""

    def __init__(self, memory: MemoryBus, redis: RedisBus | None = None, slack: SlackNotifier | None = None) -> None:
        self.memory = memory
        self.redis = redis
        self.slack = slack
        self.publisher = BusPublisher(_FanOut([memory] if redis is None else [memory, redis]))
        self.stop_source = "risk"  # who asked for the next emergency stop (the HTTP route says "http")

    def __call__(self, event: object) -> None:
        self.publisher(event)
        if self.slack is not None:
            self.slack.notify(event)

    def record(self, record: object) -> None:
        self(record)
        if isinstance(record, RiskEventRecord) and record.kind == "EMERGENCY_STOP":
            detail = record.detail
            cancelled = detail.get("orders_canceled", 0)
            self(
                EmergencyStop(
                    reason=str(detail.get("reason", record.reason_code)),
                    source=self.stop_source,
                    orders_cancelled=cancelled if isinstance(cancelled, int) else 0,
                    ts=record.ts_ns / 1e9,
                )
            )
            self.stop_source = "risk"

    def statistics(self) -> dict[str, object]:
        document: dict[str, object] = {
            "published": self.publisher.published,
            "dropped": self.publisher.dropped,
            "skipped": self.publisher.skipped,
            "memory": as_json(self.memory.statistics()),
        }
        if self.redis is not None:
            document["redis"] = as_json(self.redis.sink_statistics())
        if self.slack is not None:
            document["slack"] = as_json(self.slack.statistics())
        return document


@dataclass(frozen=True, slots=True, kw_only=True)
class Sinks:
    """The open sinks. `store` is what the engine writes to; `raw_store` is the database itself."""

    raw_store: Store
    store: EngineStore
    outputs: Outputs

    @property
    def postgres(self) -> PostgresStore | None:
        return self.raw_store if isinstance(self.raw_store, PostgresStore) else None

    def statistics(self) -> dict[str, SinkStatistics]:
        sinks = {"store": self.store.sink_statistics()}
        if self.outputs.redis is not None:
            sinks["redis"] = self.outputs.redis.sink_statistics()
        if self.outputs.slack is not None:
            sinks["slack"] = self.outputs.slack.statistics().sink
        return sinks


@asynccontextmanager
async def open_sinks(settings: Settings) -> AsyncIterator[Sinks]:
    """Open the store, the event outputs, the intent journal and the write-behind store, in that order."""
    run, flush_secs = settings.run, settings.supervisor.sink_flush_secs
    url = run.store_url
    async with AsyncExitStack() as stack:
        raw_store = await stack.enter_async_context(open_store(url, settings.store))
        await _claim_scope(raw_store, settings, url)
        memory_bus = MemoryBus(keep_last=settings.bus.keep_last)
        redis_bus: RedisBus | None = None
        if run.redis_url is not None:
            redis_bus = await stack.enter_async_context(
                exit_within(flush_secs, open_redis_bus(_redis_settings(settings, run.redis_url), settings.redis_sink))
            )
        slack: SlackNotifier | None = None
        webhook = settings.slack.webhook_url
        if webhook is not None:
            slack = await stack.enter_async_context(
                exit_within(
                    flush_secs, open_slack_notifier(_slack_settings(settings.slack, webhook), settings.slack_sink)
                )
            )
        outputs = Outputs(memory_bus, redis_bus, slack)
        journal = await stack.enter_async_context(
            open_intent_journal(intent_journal_path(url, settings.store), raw_store)
        )
        store = await stack.enter_async_context(
            exit_within(
                settings.store.flush_secs,
                open_engine_store(raw_store, settings.store_sink, on_record=outputs.record, journal=journal),
            )
        )
        yield Sinks(raw_store=raw_store, store=store, outputs=outputs)


async def _claim_scope(store: Store, settings: Settings, url: str) -> None:
    """The database keeps this run's account scope (claimed now if it keeps none yet), or the run stops here."""
    scope = store_scope(settings)
    kept = await store.claim_scope(scope, ts_ns=time.time_ns())
    run = settings.run
    default = default_database_url(live=run.live, venue=run.venue)
    fix = f"Give {scope} a database of its own with --database-url or TRADER_DATABASE_URL" + (
        f" (unset, it uses {default})." if run.database_url is not None else "."
    )
    try:
        check_scope(kept, scope, database=redact_url(url), fix=fix)
    except StoreScopeMismatch as exc:  # a setting to change, not a fault: `trader run` says so and exits 2
        raise ConfigError(str(exc)) from None
    log.info("store_scope", scope=str(scope), database=redact_url(url))


def _slack_settings(slack: SlackAlertSettings, webhook: Secret) -> SlackSettings:
    try:
        return SlackSettings(
            webhook_url=webhook,
            label=slack.label,
            min_interval_secs=slack.min_interval_secs,
            dedupe_window_secs=slack.dedupe_window_secs,
            timeout_secs=slack.timeout_secs,
            fills=slack.fills,
        )
    except ValueError as exc:
        raise ConfigError(f"slack: {exc}") from None


def _redis_settings(settings: Settings, url: str) -> RedisBusSettings:
    r = settings.redis
    try:
        return RedisBusSettings(
            url=url,
            prefix=r.prefix,
            stream_maxlen=r.stream_maxlen,
            socket_timeout_secs=r.socket_timeout_secs,
            connect_timeout_secs=r.connect_timeout_secs,
        )
    except ValueError as exc:
        raise ConfigError(f"redis: {exc}") from None


def as_json(value: object) -> object:
    """A dataclass tree as JSON-ready values (non-finite floats as null), for `/status`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
