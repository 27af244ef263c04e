"""The engine's store: the database behind a lossless write-behind sink, with the intent journal as the write-ahead.

`open_engine_store(store, settings, on_record=..., journal=...)` yields an `EngineStore` for the block; a normal
exit flushes the queued writes (bound the wait from outside). Every intent written and every risk event recorded is
handed to `on_record` (the composition root sends them to the event bus).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from trader.integrations.sinks import SinkSettings, StoreSink, WriteBehindStore, open_sink
from trader.integrations.store.base import IntentRecord, RiskEventRecord, Store, StoreError
from trader.integrations.store.journal import IntentJournal

__all__ = ["EngineStore", "open_engine_store"]


class EngineStore(WriteBehindStore):
    """The engine's store: writes queued behind a lossless sink, claims straight through, and every written intent
    and recorded risk event handed to `on_record` (the event bus).

    Intents are the write-ahead: the order is sent only once its intent is written. With an `IntentJournal` that
    write is one append to the journal, and the database row is queued like the other writes (the queue is FIFO,
    so it lands before any later write about the intent); without one, the intent goes straight to the database.
    """

    def __init__(
        self,
        store: Store,
        runner: Any,
        sink: StoreSink,
        on_record: Callable[[object], None],
        journal: IntentJournal | None = None,
    ) -> None:
        super().__init__(store, runner, sink)
        self._on_record = on_record
        self.journal = journal

    async def record_intents(self, intents: Sequence[IntentRecord]) -> None:
        journal = self.journal
        if journal is None:
            await super().record_intents(intents)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            rows = list(intents)
            journal.append(rows)  # the write-ahead: from here on the intent survives the engine dying
            try:
                await self._queue("record_intents", partial(self._store_journaled, journal, rows), at_once=True)
            except BaseException:
                # Not queued (the sink closed, or cancelled while waiting for room): this raises, so the order is
                # not sent, and no row will come for these lines. Let them go, or the journal could never be emptied.
                journal.stored(len(rows))
                raise
        for intent in intents:
            self._on_record(intent)

    async def _store_journaled(self, journal: IntentJournal, rows: list[IntentRecord]) -> None:
        try:
            await self.store.record_intents(rows)
        except StoreError:
            if self.store.available:  # refused for good (a duplicate): the sink counts and logs it
                journal.stored(len(rows))
            raise  # else the store is down: retried later, and the journal keeps them meanwhile
        journal.stored(len(rows))

    async def record_risk_event(self, event: RiskEventRecord) -> None:
        await super().record_risk_event(event)
        self._on_record(event)


@asynccontextmanager
async def open_engine_store(
    store: Store,
    settings: SinkSettings | None = None,
    *,
    on_record: Callable[[object], None] = lambda _: None,
    journal: IntentJournal | None = None,
) -> AsyncIterator[EngineStore]:
    """`store` behind a lossless write-behind sink for the block; a normal exit flushes the queued writes."""
    sink = StoreSink(store)
    async with open_sink("store", sink, settings, lossless=True) as runner:
        yield EngineStore(store, runner, sink, on_record, journal)
