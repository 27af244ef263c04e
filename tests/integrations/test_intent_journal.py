"""The intent journal: the write-ahead as one append, the database row behind it, and a crash's leftovers restored
at the next start."""

from __future__ import annotations

import os
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio

from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.integrations.store import StoreError, open_sqlite_store
from trader.integrations.store.base import IntentState
from trader.integrations.store.engine_store import EngineStore, open_engine_store
from trader.integrations.store.journal import IntentJournal, read_journal, replay_journal
from trader.integrations.store.open import intent_journal_path, open_intent_journal
from trader.settings import StoreSettings
from trader.testing import make_intent_record

#: The intent of these tests: a FOK sum_to_100 leg of basket arb-7.
_intent = partial(
    make_intent_record,
    strategy="sum_to_100",
    condition_id="0xc1",
    token_id="71321045679252212594626385532706912750332728571942532289631379312455583992563",
    price="0.47",
    size="10.25",
    order_type=OrderType.FOK,
    group_id="arb-7",
    created_at_ns=1_767_225_600_123_000_001,
)


def test_appended_intents_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = IntentJournal.open(path)
    legs = [_intent("a-0"), _intent("a-1", side=Side.SELL, price=Decimal("0.530"), order_type=OrderType.GTC)]
    journal.append(legs)
    journal.close()
    intents, torn = read_journal(path)
    assert intents == legs
    assert intents[1].price == Decimal("0.530")
    assert str(intents[1].price) == "0.530"  # the exact decimal, not a float's
    assert torn == 0


def test_lines_the_disk_gave_back_as_garbage_are_counted_as_torn(tmp_path: Path) -> None:
    """After a power loss a journal may end in any bytes; the restart that reads it must not die on them."""
    path = tmp_path / "j"
    journal = IntentJournal.open(path)
    journal.append([_intent("a-0")])
    journal.close()
    with path.open("ab") as f:
        f.write(b'{"client_order_id":"\xff\xfe"}\n\x00\x00\x00\n' + b"[" * 5000 + b"\n")

    intents, torn = read_journal(path)

    assert [i.client_order_id for i in intents] == ["a-0"]
    assert torn == 3


def test_the_file_is_emptied_once_every_journaled_intent_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = IntentJournal.open(path)
    journal.append([_intent("a-0"), _intent("a-1")])
    journal.append([_intent("b-0")])
    journal.stored(2)
    assert journal.unstored == 1
    assert len(read_journal(path)[0]) == 3  # b-0 is not in the database yet: nothing goes
    journal.stored(1)
    assert journal.unstored == 0
    assert path.stat().st_size == 0
    journal.append([_intent("c-0")])  # appends start again at the beginning
    assert [i.client_order_id for i in read_journal(path)[0]] == ["c-0"]
    journal.close()


def test_a_write_the_os_refuses_is_a_store_error(tmp_path: Path) -> None:
    journal = IntentJournal.open(tmp_path / "j")
    os.close(journal._fd)  # as if the descriptor had gone bad
    with pytest.raises(StoreError, match="write failed"):
        journal.append([_intent("a-0")])
    assert journal.unstored == 0
    journal._fd = -1


async def test_replay_restores_what_only_the_journal_holds_as_pending(tmp_path: Path) -> None:
    path = tmp_path / "j"
    async with open_sqlite_store(tmp_path / "t.db") as store:
        await store.record_intents([_intent("a-0")])  # this one reached the database before the crash
        await store.resolve_intent("a-0", IntentState.ACKED, ts_ns=5)
        journal = IntentJournal.open(path)
        journal.append([_intent("a-0"), _intent("a-1")])
        journal.close()
        with path.open("ab") as f:
            f.write(b'{"client_order_id":"torn-0","order_id":')  # the engine died inside this write
        replay = await replay_journal(path, store)
        assert (replay.restored, replay.present, replay.torn) == (1, 1, 1)
        pending = await store.load_pending_intents()
        assert [i.client_order_id for i in pending] == ["a-1"]  # the engine's recovery asks the venue about it
        assert pending[0] == _intent("a-1")
        assert path.stat().st_size == 0
        assert (await replay_journal(path, store)).restored == 0  # nothing twice


async def test_engine_store_sends_after_the_append_and_writes_the_row_behind(tmp_path: Path) -> None:
    path = tmp_path / "t.db-intents"
    async with open_sqlite_store(tmp_path / "t.db") as raw, open_intent_journal(path, raw) as journal:
        assert journal is not None
        async with open_engine_store(raw, journal=journal) as store:
            assert isinstance(store, EngineStore)
            await store.record_intents([_intent("a-0"), _intent("a-1")])
            assert [i.client_order_id for i in read_journal(path)[0]] == ["a-0", "a-1"]
            await store.resolve_intent("a-0", IntentState.ACKED, ts_ns=7)  # queued behind the row it updates
            await store.flush()
            pending = await raw.load_pending_intents()
            assert [i.client_order_id for i in pending] == ["a-1"]
            assert journal.unstored == 0
            assert path.stat().st_size == 0


async def test_the_journaled_write_ahead_lets_nothing_else_run_before_the_send(tmp_path: Path) -> None:
    ran: list[str] = []

    async def other_task() -> None:
        ran.append("other")

    async with (
        open_sqlite_store(tmp_path / "t.db") as raw,
        open_intent_journal(tmp_path / "j", raw) as journal,
        open_engine_store(raw, journal=journal) as store,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(other_task)
        await store.record_intents([_intent("a-0")])
        ran.append("written")  # what the order manager does next: send the order
    assert ran == ["written", "other"]


async def test_a_crash_before_the_rows_land_loses_no_intent(tmp_path: Path) -> None:
    db, path = tmp_path / "t.db", tmp_path / "t.db-intents"
    async with open_sqlite_store(db) as raw:
        async with open_intent_journal(path, raw) as journal:
            assert journal is not None
            engine_store = EngineStore(raw, _NeverDelivers(), None, lambda _: None, journal)  # type: ignore[arg-type]
            await engine_store.record_intents([_intent("a-0"), _intent("a-1")])
        assert await raw.load_pending_intents() == []  # the rows never reached the database
    # The next start: `trader run` replays the journal before its recovery loads the pending intents.
    async with open_sqlite_store(db) as raw, open_intent_journal(path, raw):
        assert [i.client_order_id for i in await raw.load_pending_intents()] == ["a-0", "a-1"]


async def test_an_intent_the_queue_refuses_is_not_sent_and_does_not_pin_the_journal(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "t.db") as raw, open_intent_journal(tmp_path / "j", raw) as journal:
        assert journal is not None
        async with open_engine_store(raw, journal=journal) as store:
            store.runner.close()  # the engine is shutting down
            with pytest.raises(StoreError):
                await store.record_intents([_intent("a-0")])
            assert journal.unstored == 0


class _NeverDelivers:
    """A write-behind runner whose writer task died with the process: it takes writes and never applies them."""

    def put_nowait(self, item: object) -> bool:
        return True

    async def put(self, item: object) -> None:
        await trio.lowlevel.checkpoint()


def test_journal_path_follows_the_setting(tmp_path: Path) -> None:
    auto = StoreSettings()
    assert intent_journal_path(f"sqlite:{tmp_path}/t.db", auto) == tmp_path / "t.db-intents"
    assert intent_journal_path(str(tmp_path / "x.sqlite"), auto) == tmp_path / "x.sqlite-intents"
    assert intent_journal_path("sqlite::memory:", auto) is None
    assert intent_journal_path("postgresql://127.0.0.1/test", auto) is None
    assert intent_journal_path(f"sqlite:{tmp_path}/t.db", StoreSettings(intent_journal="off")) is None
    chosen = StoreSettings(intent_journal=str(tmp_path / "elsewhere"))
    assert intent_journal_path("postgresql://127.0.0.1/test", chosen) == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match="intent_journal"):
        StoreSettings(intent_journal=" ")
