"""Book cells: latest value + change counter, health (ready / suspect / age), queries through the domain book."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from trader.domain.market import Market
from trader.domain.numbers import Side
from trader.engine.books import Books, ConnectionLiveness
from trader.testing import make_market

D = Decimal


def market(n: int) -> Market:
    """Market n: condition 0x{n:064x}, tokens 10**70 + 2n and 10**70 + 2n + 1."""
    return make_market(
        n,
        condition_id=f"0x{n:064x}",
        question="q",
        yes_token_id=str(10**70 + 2 * n),
        no_token_id=str(10**70 + 2 * n + 1),
    )


def test_a_new_market_is_not_ready_and_has_no_age() -> None:
    books = Books()
    cell = books.add(market(1))
    assert books.add(market(1)) is cell  # idempotent
    assert not cell.is_usable()
    health = cell.yes.health(now=5)
    assert (health.ready, health.suspect, health.age_secs, health.usable) == (False, False, None, False)
    assert cell.yes is books.token(market(1).yes_token_id)
    assert cell.no.asset_id == market(1).no_token_id
    assert market(1).yes_token_id in books
    assert len(books) == 1


def test_a_token_cannot_belong_to_two_markets() -> None:
    books = Books()
    books.add(market(1))
    clash = make_market(
        condition_id="0xother", question="q", slug="s", yes_token_id=market(1).yes_token_id, no_token_id="5"
    )
    with pytest.raises(ValueError, match="already belongs"):
        books.add(clash)


def test_age_is_since_the_later_of_the_last_change_and_the_last_frame_on_its_connection() -> None:
    books = Books()
    token = books.add(market(1)).yes
    liveness = ConnectionLiveness()
    token.liveness = liveness
    token.ready, token.confirmed_at = True, 10.0
    assert token.age(now=12.5) == 2.5
    liveness.last_frame_at = 20.0  # a PONG: the connection is alive, so the book is still current
    assert token.age(now=21.0) == 1.0
    liveness.last_frame_at = None  # connection lost
    token.ready = False
    assert token.age(now=21.0) is None


def test_queries_go_through_the_domain_book() -> None:
    token = Books().add(market(1)).yes
    token.book.apply_snapshot(
        [(D("0.48"), D("100")), (D("0.47"), D("200"))], [(D("0.52"), D("50")), (D("0.53"), D("150"))], now=0
    )
    estimate = token.vwap(Side.BUY, D("100"))
    assert (estimate.filled, estimate.notional, estimate.worst_price) == (D("100"), D("52.5"), D("0.53"))
    assert estimate.vwap == D("0.525")
    assert token.depth(Side.BUY, limit_price=D("0.48")) == D("100")
    assert token.best_bid() is not None
    assert token.best_ask() is not None
    assert "ready=False" in repr(token)


def test_remove_forgets_the_tokens() -> None:
    books = Books()
    m = market(1)
    books.add(m)
    assert books.remove(m.condition_id) is not None
    assert books.get_token(m.yes_token_id) is None
    assert books.remove(m.condition_id) is None


async def test_waiters_see_the_latest_version_however_many_changes_happened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    books = Books()
    first, second = books.add(market(1)), books.add(market(2))
    seen_any, seen_first = books.version, first.version
    woke: list[tuple[str, int]] = []

    async def strategy() -> None:
        version = await first.wait_changed(seen_first)
        woke.append(("first", version))

    async def follower() -> None:
        version = await books.wait_changed(seen_any)
        woke.append(("any", version))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(strategy)
        nursery.start_soon(follower)
        await trio.sleep(1)
        assert woke == []
        books.publish([second])  # only the any-market waiter wakes
        await trio.sleep(1)
        books.publish([first])
        books.publish([first])
        books.publish([first])
    # the strategy wakes once, after all three changes, and sees version 3: nothing queued behind it
    assert woke == [("any", 1), ("first", 3)]
    # a late reader is not replayed three changes: it sees the latest at once
    assert await first.wait_changed(seen_first) == 3


async def test_wait_ready_returns_when_both_books_are_usable(autojump_clock: trio.testing.MockClock) -> None:
    books = Books()
    cell = books.add(market(1))

    async def feed() -> None:
        await trio.sleep(2)
        cell.yes.ready = True
        books.publish([cell])
        await trio.sleep(2)
        cell.no.ready = True
        books.publish([cell])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        assert await books.wait_ready(cell.market.condition_id) is cell
        assert trio.current_time() == 4
    cell.no.suspect = True
    assert not cell.is_usable()
    assert cell.health(now=4)[cell.market.no_token_id].suspect


def test_a_change_tracker_records_the_markets_bumped_added_or_removed_since_it_last_looked() -> None:
    books = Books()
    first = books.add(market(1))
    tracker = books.track_changes()
    assert tracker.take() == frozenset()  # what happened before it was made is not its business
    second = books.add(market(2))  # appeared: changed
    books.publish([first])
    first.bump()  # bumped without a publish: still a change
    assert tracker.take() == {first.market.condition_id, second.market.condition_id}
    assert tracker.take() == frozenset()  # taken: forgotten
    books.remove(second.market.condition_id)  # went away: changed
    second.bump()  # a cell no longer followed is no one's change
    assert tracker.take() == {second.market.condition_id}
    books.add(market(2))  # back again: changed
    assert tracker.take() == {second.market.condition_id}


def test_change_trackers_are_independent_and_stop_when_closed() -> None:
    books = Books()
    cell = books.add(market(1))
    with books.track_changes() as early:
        books.publish([cell])
        late = books.track_changes()
        books.publish([cell])
        assert early.take() == {cell.market.condition_id}
        books.publish([books.add(market(2))])
        assert late.take() == {cell.market.condition_id, market(2).condition_id}
        assert early.take() == {market(2).condition_id}
    books.publish([cell])
    assert early.take() == frozenset()  # closed
    late.close()
    late.close()  # idempotent
    books.publish([cell])
    assert late.take() == frozenset()
