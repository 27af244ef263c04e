"""Book state for strategies: per market a latest-value cell, per token a book with its health.

Market data is state, not a queue (docs/architecture.md). The market-data service applies frames to the `OrderBook`s
here in place and then bumps the market's cell; a strategy waits with `await cell.wait_changed(seen)` and gets
the *current* version number back, however many changes happened in between. Nothing queues up behind a slow
strategy, and the socket reader never waits for one.

Which markets changed: a consumer that follows many markets (the strategy engine) asks `Books.track_changes()` for
a `ChangeTracker`, its own record of the condition ids changed since it last looked (`take()`): every cell bumped,
every market added or removed. A bump adds one id to each tracker, and `take()` costs what changed: a wake-up
never scans every market.

Each token's book carries its health, which the risk gate uses:
* `ready`: a snapshot arrived on the current connection. False before the first snapshot and from the moment
  the connection carrying the book is lost until the new connection's snapshot for this token arrives.
* `suspect`: the venue's own top of book disagreed with ours, or a frame that may have changed this book was
  dropped. Cleared by the next snapshot (the service asks for one at once).
* `age(now)`: seconds since the book was last *confirmed*: the later of its last applied change and the last
  frame (of any kind, `PONG` included) on the connection carrying it, while it is ready. A quiet market on a
  live connection stays fresh; a stalled connection ages every book on it. None when not ready.

All times are the Trio clock (`trio.current_time()`), passed in as `now`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import trio

from trader.domain.book import FillEstimate, Level, OrderBook
from trader.domain.feed import LastTrade
from trader.domain.market import Market
from trader.domain.numbers import Side

__all__ = ["BookHealth", "Books", "ChangeTracker", "ConnectionLiveness", "MarketCell", "TokenBook"]


@dataclass(frozen=True, slots=True)
class BookHealth:
    ready: bool
    suspect: bool
    age_secs: float | None
    suspect_reason: str | None = None

    @property
    def usable(self) -> bool:
        """Ready and not suspect (the age limit is the caller's, e.g. the risk gate's)."""
        return self.ready and not self.suspect


@dataclass(slots=True)
class ConnectionLiveness:
    """When the connection carrying a set of books last delivered a frame (Trio clock); None while down."""

    last_frame_at: float | None = None


class TokenBook:
    """One token's `OrderBook` and its health. Written only by the market-data service."""

    __slots__ = (
        "asset_id",
        "book",
        "closed",
        "condition_id",
        "confirmed_at",
        "last_trade",
        "last_trade_price",
        "liveness",
        "ready",
        "suspect",
        "suspect_reason",
        "venue_best",
    )

    def __init__(self, asset_id: str, condition_id: str, tick_size: Decimal) -> None:
        self.asset_id = asset_id
        self.condition_id = condition_id
        self.book = OrderBook(asset_id, tick_size)
        self.closed = False  # its market resolved or closed: never traded again
        self.ready = False
        self.suspect = False
        self.suspect_reason: str | None = None
        self.confirmed_at: float | None = None
        self.liveness: ConnectionLiveness | None = None
        self.last_trade: LastTrade | None = None
        self.last_trade_price: Decimal | None = None
        #: the venue's own top of book from `best_bid_ask` (custom feature), for display and checks
        self.venue_best: tuple[Decimal | None, Decimal | None] | None = None

    def age(self, now: float) -> float | None:
        if not self.ready or self.confirmed_at is None:
            return None
        confirmed = self.confirmed_at
        if self.liveness is not None and self.liveness.last_frame_at is not None:
            confirmed = max(confirmed, self.liveness.last_frame_at)
        return now - confirmed

    def health(self, now: float) -> BookHealth:
        return BookHealth(self.ready, self.suspect, self.age(now), self.suspect_reason)

    # -- reading helpers (the domain book does the work) ---------------------------------------------------------

    def best_bid(self) -> Level | None:
        return self.book.best_bid()

    def best_ask(self) -> Level | None:
        return self.book.best_ask()

    def vwap(self, taker_side: Side, size: Decimal, *, limit_price: Decimal | None = None) -> FillEstimate:
        return self.book.fill_estimate(taker_side, size, limit_price=limit_price)

    def depth(self, side: Side, *, limit_price: Decimal | None = None) -> Decimal:
        return self.book.depth(side, limit_price=limit_price)

    def __repr__(self) -> str:
        return f"TokenBook({self.book!r}, ready={self.ready}, suspect={self.suspect})"


class ChangeTracker:
    """One consumer's record of the markets that changed (bumped, added or removed) since its last `take()`.

    Get one from `Books.track_changes()`; `close()` (or leaving its `with` block) stops the recording. It holds at
    most one entry per market, whatever the number of changes.
    """

    __slots__ = ("_changed", "_trackers")

    def __init__(self, trackers: list[set[str]]) -> None:
        self._changed: set[str] = set()
        self._trackers = trackers
        trackers.append(self._changed)

    def take(self) -> frozenset[str]:
        """The condition ids changed since the previous `take()` (or since the tracker was made); then forget them."""
        changed = frozenset(self._changed)
        self._changed.clear()
        return changed

    def close(self) -> None:
        """Stop recording and forget what was recorded (idempotent)."""
        self._changed.clear()
        for n, changed in enumerate(self._trackers):
            if changed is self._changed:
                del self._trackers[n]
                break

    def __enter__(self) -> ChangeTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_STAMPS = itertools.count(1)


class MarketCell:
    """The latest-value cell of one market: its tokens' books and a change counter to wait on.

    `trackers` (given by `Books`): the change sets of the `ChangeTracker`s, each of which a bump adds this market to.
    """

    __slots__ = ("_changed", "_trackers", "market", "resolved_winner", "stamp", "tokens", "version")

    def __init__(self, market: Market, trackers: list[set[str]] | None = None) -> None:
        self.market = market
        self.tokens: dict[str, TokenBook] = {
            token_id: TokenBook(token_id, market.condition_id, market.tick_size) for token_id in market.token_ids
        }
        self.version = 0
        self.stamp = next(_STAMPS)  # new at every bump, never reused by another cell (`MarketState.stamps`)
        self.resolved_winner: str | None = None
        self._changed: trio.Event | None = None  # made by the first waiter: most changes have nobody waiting
        self._trackers: list[set[str]] = [] if trackers is None else trackers

    @property
    def yes(self) -> TokenBook:
        return self.tokens[self.market.yes_token_id]

    @property
    def no(self) -> TokenBook:
        return self.tokens[self.market.no_token_id]

    def bump(self) -> None:
        """Publish a change: every waiter wakes and sees the current state; every change tracker notes the market."""
        self.version += 1
        self.stamp = next(_STAMPS)
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        for changed in self._trackers:
            changed.add(self.market.condition_id)

    async def wait_changed(self, seen: int) -> int:
        """Wait until the version differs from `seen` (at once if it already does); return the current version."""
        while self.version == seen:
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()
        return self.version

    def health(self, now: float) -> dict[str, BookHealth]:
        return {token_id: book.health(now) for token_id, book in self.tokens.items()}

    def is_usable(self) -> bool:
        return all(book.ready and not book.suspect for book in self.tokens.values())


@dataclass(slots=True)
class Books:
    """Every followed market's cell, by condition id and by token id."""

    markets: dict[str, MarketCell] = field(default_factory=dict)
    _tokens: dict[str, TokenBook] = field(default_factory=dict)
    _any_version: int = 0
    _any_changed: trio.Event | None = None  # made by the first waiter, as a cell's
    _trackers: list[set[str]] = field(default_factory=list)
    #: Trio time of the latest change of any book (for tick-to-trade), None before the first
    last_change_at: float | None = None

    def add(self, market: Market) -> MarketCell:
        """Follow a market (idempotent). Its books start NOT READY until their first snapshot."""
        cell = self.markets.get(market.condition_id)
        if cell is not None:
            return cell
        for token_id in market.token_ids:
            if token_id in self._tokens:
                raise ValueError(f"token {token_id} already belongs to market {self._tokens[token_id].condition_id}")
        cell = MarketCell(market, self._trackers)
        self.markets[market.condition_id] = cell
        self._tokens.update(cell.tokens)
        for changed in self._trackers:  # a market that appeared has changed
            changed.add(market.condition_id)
        return cell

    def remove(self, condition_id: str) -> MarketCell | None:
        cell = self.markets.pop(condition_id, None)
        if cell is not None:
            for token_id in cell.tokens:
                self._tokens.pop(token_id, None)
            cell.bump()  # a market that went away has changed (the trackers note it)
            cell._trackers = []  # a cell no longer followed is no one's change
            self._publish()
        return cell

    def market(self, condition_id: str) -> MarketCell:
        return self.markets[condition_id]

    def mark_resolved(self, condition_id: str, winner: str | None = None) -> MarketCell | None:
        """The market resolved (or closed): from now on it is not tradable (strategies skip it, the risk gate refuses
        it). `winner` is the winning token when one did. The caller publishes the change. None: not followed."""
        cell = self.markets.get(condition_id)
        if cell is None:
            return None
        if cell.market.is_tradable:
            cell.market = dataclasses.replace(cell.market, closed=True, active=False, accepting_orders=False)
        if winner is not None:
            cell.resolved_winner = winner
        for token in cell.tokens.values():
            token.closed = True
        return cell

    def token(self, token_id: str) -> TokenBook:
        return self._tokens[token_id]

    def get_token(self, token_id: str) -> TokenBook | None:
        return self._tokens.get(token_id)

    def tick_of(self, token_id: str) -> Decimal | None:
        """The tick in force for a followed token (the market channel's last `tick_size_change` applied), None for
        one not followed: what the signers sign on, so books, strategies and signers agree on the grid."""
        token = self._tokens.get(token_id)
        return None if token is None else token.book.tick_size

    def tokens(self) -> Iterator[TokenBook]:
        return iter(self._tokens.values())

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._tokens

    def __len__(self) -> int:
        return len(self.markets)

    # -- change notification -------------------------------------------------------------------------------------

    def track_changes(self) -> ChangeTracker:
        """A new record of the markets that change from now on (see `ChangeTracker`); close it when done."""
        return ChangeTracker(self._trackers)

    @property
    def version(self) -> int:
        """Bumped whenever any market changed (for a strategy that follows many markets)."""
        return self._any_version

    def publish(self, cells: Iterable[MarketCell], now: float | None = None) -> None:
        """Bump each changed market's cell, then the any-market counter, once. `now`: the Trio time, if the caller
        has it at hand."""
        for cell in cells:
            cell.bump()
        self._publish(now)

    def _publish(self, now: float | None = None) -> None:
        if now is None:
            with contextlib.suppress(RuntimeError):  # outside a Trio run (a synchronous caller, a test's books)
                now = trio.current_time()
        self.last_change_at = now
        self._any_version += 1
        if self._any_changed is not None:
            self._any_changed.set()
            self._any_changed = None

    async def wait_changed(self, seen: int) -> int:
        """Wait until any market changed after version `seen`; return the current version."""
        while self._any_version == seen:
            if self._any_changed is None:
                self._any_changed = trio.Event()
            await self._any_changed.wait()
        return self._any_version

    async def wait_ready(self, condition_id: str) -> MarketCell:
        """Wait until both books of a market are ready and not suspect."""
        cell = self.markets[condition_id]
        while not cell.is_usable():
            await cell.wait_changed(cell.version)
        return cell
