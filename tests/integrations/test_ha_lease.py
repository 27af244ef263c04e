"""The leadership lease on the real PostgreSQL (marked `pg`): the advisory lock, the epoch, breaking a stale holder,
and the store refusing an intent written under an older epoch. Each test has its own schema and lock key."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
import trio

from trader.integrations.store.lease import open_postgres_lease, read_lease, request_step_down
from trader.integrations.store.postgres import (
    PostgresSettings,
    StoreFenced,
    StoreUnavailable,
    drop_postgres_schema,
    open_postgres_store,
)
from trader.integrations.trio_asyncio_bridge import open_asyncio_bridge
from trader.testing.builders import make_intent_record

from .servers import pg_dsn

pytestmark = pytest.mark.pg


@pytest.fixture
async def settings() -> AsyncIterator[PostgresSettings]:
    value = PostgresSettings(url=pg_dsn(), schema=f"test_ha_{uuid.uuid4().hex[:16]}")
    yield value
    await drop_postgres_schema(value)


@pytest.fixture
def key() -> int:
    return secrets.randbelow(2**62) + 1


async def test_one_holder_at_a_time_and_the_epoch_grows_by_one_per_takeover(
    settings: PostgresSettings, key: int
) -> None:
    async with open_asyncio_bridge() as bridge:
        async with (
            open_postgres_lease(settings, key=key, holder="a", bridge=bridge) as a,
            open_postgres_lease(settings, key=key, holder="b", bridge=bridge) as b,
        ):
            won = await a.try_acquire(lease_secs=2.0)
            assert won is not None
            assert won.epoch == 1
            assert won.wait_secs == 0.0  # nobody led before
            assert await b.try_acquire(lease_secs=2.0) is None
            renewal = await a.renew(1, lease_secs=2.0)
            assert renewal.ok
            assert not renewal.step_down
            a.drop()  # kill -9: the session ends, the server frees the lock
            with trio.fail_after(5):
                while (taken := await b.try_acquire(lease_secs=2.0)) is None:  # noqa: ASYNC110 - polling the lock  # noqa: ASYNC110 - polling the lock
                    await trio.sleep(0.05)
            assert taken.epoch == 2
            assert 0 < taken.wait_secs <= 2.0  # a's lease may still run: b must wait it out
            assert (await b.renew(2, lease_secs=2.0)).ok
            # a comes back with its old epoch: refused
            assert await a.try_acquire(lease_secs=2.0) is None
            assert not (await a.renew(1, lease_secs=2.0)).ok
        row = await read_lease(settings)
    assert row is not None
    assert row.epoch == 2
    assert row.holder == "b"


async def test_a_standby_ends_the_session_of_a_stale_holder(settings: PostgresSettings, key: int) -> None:
    async with (
        open_postgres_lease(settings, key=key, holder="a") as a,
        open_postgres_lease(settings, key=key, holder="b") as b,
    ):
        assert await a.try_acquire(lease_secs=2.0) is not None
        assert await b.try_acquire(lease_secs=2.0) is None
        assert await b.break_stale() is not None  # a is paused: its session (and lock) is ended for it
        with trio.fail_after(5):
            while (taken := await b.try_acquire(lease_secs=2.0)) is None:  # noqa: ASYNC110 - polling the lock
                await trio.sleep(0.05)
        assert taken.epoch == 2
        # a wakes: its renewal finds it fenced. Its session was ended by the server; when its client has not noticed
        # yet, the first use finds the connection dead (StoreUnavailable, as a network loss), and the next one
        # reconnects without the lock. Either way a never renews.
        try:
            renewal = await a.renew(1, lease_secs=2.0)
        except StoreUnavailable:
            renewal = await a.renew(1, lease_secs=2.0)
        assert not renewal.ok


async def test_step_down_is_seen_at_the_next_renewal_and_release_needs_no_wait(
    settings: PostgresSettings, key: int
) -> None:
    async with (
        open_postgres_lease(settings, key=key, holder="a") as a,
        open_postgres_lease(settings, key=key, holder="b") as b,
    ):
        assert await a.try_acquire(lease_secs=2.0) is not None
        before = await request_step_down(settings)
        assert before is not None
        assert before.holder == "a"
        renewal = await a.renew(1, lease_secs=2.0)
        assert renewal.ok
        assert renewal.step_down
        await a.release(1)
        taken = await b.try_acquire(lease_secs=2.0)
        assert taken is not None
        assert taken.wait_secs == 0.0  # released cleanly


async def test_the_store_refuses_an_intent_from_an_older_epoch(settings: PostgresSettings, key: int) -> None:
    async with (
        open_postgres_store(settings) as old_leader,
        open_postgres_store(settings) as new_leader,
        open_postgres_lease(settings, key=key, holder="a") as a,
        open_postgres_lease(settings, key=key, holder="b") as b,
    ):
        first = await a.try_acquire(lease_secs=2.0)
        assert first is not None
        old_leader.fence_epoch = first.epoch
        await old_leader.record_intents([make_intent_record(client_order_id="c-1")])
        a.drop()
        with trio.fail_after(5):
            while (second := await b.try_acquire(lease_secs=2.0)) is None:  # noqa: ASYNC110 - polling the lock
                await trio.sleep(0.05)
        new_leader.fence_epoch = second.epoch
        with pytest.raises(StoreFenced):
            await old_leader.record_intents([make_intent_record(client_order_id="c-2")])
        await new_leader.record_intents([make_intent_record(client_order_id="c-3")])
        stored = {i.client_order_id for i in await new_leader.load_pending_intents()}
        assert old_leader.statistics().fenced_writes == 1
    assert stored == {"c-1", "c-3"}
