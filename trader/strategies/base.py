"""What a strategy sees and what it returns: the read-only `MarketState`, `BookView`, and the `Strategy` protocol.

A strategy is a pure function of the market state to intents, plus its own small state (an id counter, what it
fired and when, a smoothed price). It never touches trio, a socket or a wire type: the strategy engine
(`trader.engine.strategy_engine`) builds a `MarketState` at every wake-up and sends what comes back to execution.

- `MarketState.books` maps token id -> `BookView`: the live `OrderBook` behind a read-only face, with its health
  (`ready`, `suspect`, `age_secs`). The engine calls strategies synchronously, so no book changes while a strategy
  runs; a view must not be kept across calls.
- `MarketState.in_flight` holds the keys (`intent_key`) of every intent the engine has sent whose orders are not
  finished yet: a strategy uses it to never re-fire while its own legs are working.
- `MarketState.changed` names the markets whose books changed since the previous wake-up (book wake-ups), or is
  None on a full sweep (every tick): a strategy may look only at `markets_in_scope()`, since anything that depends
  on time alone (a cooldown, an in-flight basket finishing, a book confirmed again) is seen at the next tick.
- Times: `now` is the Trio clock (monotonic seconds) for durations and cooldowns; `wall` is epoch seconds, only
  recorded.
- `buy_fees_in_shares`: the venue withholds a buy's taker fee from the shares bought (the paper venue) instead of
  charging it in pUSD (the CLOB V2, the sim): a basket bought with equal share counts would then hold unequal ones.
- Client order ids are `"<session>-<strategy>-<n>"` (`IdSequence`): the engine's `session` is unique per run, so
  ids never repeat across restarts.

A strategy returns `OrderIntent`s and `ArbIntent`s (`trader.domain.intents`), or a `ClaimedIntent`: an intent that
may be sent only once ever (the sniper's), which the engine sends only after the store has recorded the claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from trader.domain.book import FillEstimate, Level, OrderBook
from trader.domain.intents import ArbIntent, Intent, OrderIntent
from trader.domain.market import FeeSchedule, Market, NegRiskEvent
from trader.domain.numbers import ZERO, Side
from trader.domain.positions import Position

if TYPE_CHECKING:
    from trader.domain.games import Scoreboard

__all__ = [
    "BookView",
    "ClaimedIntent",
    "IdSequence",
    "Intent",
    "MarketState",
    "PositionReader",
    "Strategy",
    "StrategyOutput",
    "buy_cost_per_share",
    "intent_key",
    "sell_proceeds_per_share",
]


def intent_key(intent: Intent) -> str:
    """The key by which an intent is tracked in flight: the basket's `arb_id`, or the order's client id."""
    return intent.arb_id if isinstance(intent, ArbIntent) else intent.client_order_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedIntent:
    """An intent that must never be sent twice, even across restarts.

    The engine records the claim (`claim_key`, e.g. the sniped market's condition id) in the store first and sends
    the intent only if the claim is new; a claim the store already holds, or a store error, means the intent is not
    sent (and is counted).
    """

    intent: Intent
    claim_key: str
    token_id: str
    detail: Mapping[str, object] = field(default_factory=dict)


StrategyOutput = OrderIntent | ArbIntent | ClaimedIntent


class BookView:
    """A read-only face of one token's live `OrderBook` and its health at the time the state was built."""

    __slots__ = ("_book", "age_secs", "condition_id", "ready", "suspect")

    def __init__(
        self, book: OrderBook, *, condition_id: str, ready: bool, suspect: bool, age_secs: float | None
    ) -> None:
        self._book = book
        self.condition_id = condition_id
        self.ready = ready
        self.suspect = suspect
        self.age_secs = age_secs

    @property
    def token_id(self) -> str:
        return self._book.asset_id

    @property
    def tick_size(self) -> Decimal:
        return self._book.tick_size

    @property
    def change_count(self) -> int:
        return self._book.change_count

    def usable(self, max_age_secs: float) -> bool:
        """Ready, not suspect, confirmed within `max_age_secs`, and not crossed: a book a strategy may act on."""
        return (
            self.ready
            and not self.suspect
            and self.age_secs is not None
            and self.age_secs <= max_age_secs
            and not self._book.is_crossed()
        )

    def frozen(self) -> BookView:
        """A view of a copy of the book as it is now, with the same health: it no longer follows the live book."""
        return BookView(
            self._book.copy(),
            condition_id=self.condition_id,
            ready=self.ready,
            suspect=self.suspect,
            age_secs=self.age_secs,
        )

    def best_bid(self) -> Level | None:
        return self._book.best_bid()

    def best_ask(self) -> Level | None:
        return self._book.best_ask()

    def mid(self) -> Decimal | None:
        return self._book.mid()

    def levels(self, side: Side, depth: int | None = None) -> list[Level]:
        """Levels of one side (BUY = bids, SELL = asks), best first."""
        return self._book.levels(side, depth)

    def depth(self, side: Side, *, limit_price: Decimal | None = None) -> Decimal:
        return self._book.depth(side, limit_price=limit_price)

    def fill_estimate(self, taker_side: Side, size: Decimal, *, limit_price: Decimal | None = None) -> FillEstimate:
        return self._book.fill_estimate(taker_side, size, limit_price=limit_price)

    def __repr__(self) -> str:
        return f"BookView({self._book!r}, ready={self.ready}, suspect={self.suspect}, age_secs={self.age_secs})"


class PositionReader(Protocol):
    """Where positions come from (`trader.domain.positions.Portfolio` is one)."""

    def position(self, token_id: str) -> Position: ...


class _NoPositions:
    def position(self, token_id: str) -> Position:
        return Position(token_id=token_id)


NO_POSITIONS: PositionReader = _NoPositions()


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketState:
    """Everything a strategy may look at during one wake-up. Built by the engine; never mutated by strategies."""

    now: float  # Trio clock, seconds
    wall: float  # epoch seconds (recorded only)
    markets: Mapping[str, Market]  # by condition id
    books: Mapping[str, BookView]  # by token id
    events: Sequence[NegRiskEvent] = ()
    positions: PositionReader = NO_POSITIONS
    in_flight: frozenset[str] = frozenset()
    session: str = "s"
    scoreboard: Scoreboard | None = None
    changed: frozenset[str] | None = None  # condition ids whose books changed since the last wake-up; None: all
    buy_fees_in_shares: bool = False  # the venue takes a buy's fee out of the shares bought (the paper venue)
    # condition id -> a number that changes whenever the market's books do and is never reused: what a strategy
    # concluded from the books alone holds while the number stays (None: the books may differ from the numbers)
    stamps: Mapping[str, int] | None = None

    def markets_in_scope(self) -> Iterable[Market]:
        """The markets to look at: those whose books changed, or every market on a full sweep (a tick)."""
        if self.changed is None:
            return self.markets.values()
        return [m for cid in self.changed if (m := self.markets.get(cid)) is not None]

    def book(self, token_id: str) -> BookView | None:
        return self.books.get(token_id)

    def quantity(self, token_id: str) -> Decimal:
        """Shares held of a token (0 when none)."""
        return self.positions.position(token_id).quantity


class Strategy(Protocol):
    """A trading strategy: `on_state` is called at every wake-up and returns what to send (often nothing)."""

    @property
    def name(self) -> str: ...

    def on_state(self, state: MarketState) -> Sequence[StrategyOutput]: ...


class IdSequence:
    """Client order ids `"<session>-<prefix>-<n>"`, n counting from 1 within the strategy."""

    __slots__ = ("count", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self, session: str) -> str:
        self.count += 1
        return f"{session}-{self.prefix}-{self.count}"


def buy_cost_per_share(fees: FeeSchedule, price: Decimal) -> Decimal:
    """pUSD paid per share bought as a taker at `price`, fee included (unrounded: never less than the venue's)."""
    return price + fees.rate_at(price)


def sell_proceeds_per_share(fees: FeeSchedule, price: Decimal) -> Decimal:
    """pUSD received per share sold as a taker at `price`, after the fee (unrounded: never more than the venue's)."""
    return price - fees.rate_at(price)


def held(state: MarketState, token_id: str) -> Decimal:
    """Shares held, never negative (a reversed fill can leave a negative quantity for a moment)."""
    return max(state.quantity(token_id), ZERO)
