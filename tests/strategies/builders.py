"""Fixed books and market states for the strategy tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from trader.domain.book import OrderBook
from trader.domain.games import Scoreboard
from trader.domain.market import Market, NegRiskEvent
from trader.domain.positions import Portfolio, Position
from trader.strategies.base import BookView, MarketState
from trader.testing import builders

Levels = Sequence[tuple[str, str]]


def D(value: str | int) -> Decimal:
    return Decimal(value)


def token(n: int) -> str:
    return str(10**20 + n)


def make_market(
    n: int,
    *,
    tick: str = "0.01",
    min_size: str = "5",
    neg_risk_id: str | None = None,
    question: str = "Will it happen?",
    **changes: Any,
) -> Market:
    """Market n has condition "0xc<n>", YES token token(2n) and NO token token(2n + 1); `changes` as for
    `trader.testing.make_market` (`fees`, `neg_risk`, `outcomes`, ...)."""
    return builders.make_market(
        n,
        condition_id=f"0xc{n}",
        question=question,
        yes_token_id=token(2 * n),
        no_token_id=token(2 * n + 1),
        tick_size=tick,
        min_order_size=min_size,
        neg_risk_market_id=neg_risk_id,
        **changes,
    )


def make_book(token_id: str, *, bids: Levels = (), asks: Levels = (), tick: str = "0.01") -> OrderBook:
    book = OrderBook(token_id, D(tick))
    book.apply_snapshot([(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks], now=0.0)
    return book


def view(
    book: OrderBook, *, condition_id: str = "0xc", ready: bool = True, suspect: bool = False, age: float | None = 0.1
) -> BookView:
    return BookView(book, condition_id=condition_id, ready=ready, suspect=suspect, age_secs=age)


class StateBuilder:
    """Markets and books for one MarketState."""

    def __init__(self) -> None:
        self.markets: dict[str, Market] = {}
        self.books: dict[str, BookView] = {}
        self.events: list[NegRiskEvent] = []
        self.positions: list[Position] = []

    def market(
        self,
        market: Market,
        *,
        yes: tuple[Levels, Levels] = ((), ()),
        no: tuple[Levels, Levels] = ((), ()),
        ready: bool = True,
        suspect: bool = False,
        age: float | None = 0.1,
    ) -> Market:
        """Add a market with YES and NO books given as (bids, asks)."""
        self.markets[market.condition_id] = market
        for token_id, (bids, asks) in ((market.yes_token_id, yes), (market.no_token_id, no)):
            book = make_book(token_id, bids=bids, asks=asks, tick=str(market.tick_size))
            self.books[token_id] = view(book, condition_id=market.condition_id, ready=ready, suspect=suspect, age=age)
        return market

    def set_book(
        self,
        token_id: str,
        *,
        bids: Levels = (),
        asks: Levels = (),
        tick: str = "0.01",
        ready: bool = True,
        suspect: bool = False,
        age: float | None = 0.1,
    ) -> None:
        condition_id = self.books[token_id].condition_id if token_id in self.books else "0xc"
        book = make_book(token_id, bids=bids, asks=asks, tick=tick)
        self.books[token_id] = view(book, condition_id=condition_id, ready=ready, suspect=suspect, age=age)

    def event(self, event_id: str, markets: Iterable[Market], *, complete: bool = True) -> NegRiskEvent:
        event = NegRiskEvent(event_id=event_id, title=event_id, markets=tuple(markets), complete=complete)
        self.events.append(event)
        return event

    def hold(self, token_id: str, quantity: str, cost: str = "0") -> None:
        self.positions.append(Position(token_id=token_id, quantity=D(quantity), cost_basis=D(cost)))

    def state(
        self,
        *,
        now: float = 100.0,
        in_flight: Iterable[str] = (),
        scoreboard: Scoreboard | None = None,
        markets: Mapping[str, Market] | None = None,
        changed: Iterable[str] | None = None,
        buy_fees_in_shares: bool = False,
    ) -> MarketState:
        return MarketState(
            now=now,
            wall=1_700_000_000.0 + now,
            markets=dict(self.markets if markets is None else markets),
            books=dict(self.books),
            events=tuple(self.events),
            positions=Portfolio(positions=self.positions),
            in_flight=frozenset(in_flight),
            session="t",
            scoreboard=scoreboard,
            changed=None if changed is None else frozenset(changed),
            buy_fees_in_shares=buy_fees_in_shares,
        )
