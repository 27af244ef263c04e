"""The sniper: buys the known winner of a finished game before the market resolves.

Inputs: `MarketState.scoreboard` (the latest ESPN poll, `trader.integrations.espn.EspnPoller`) and the books.

1. **Confirmation.** A game counts as decided when it is final with the same winner (`Game.winner`: post, completed,
   exactly one winner, scores consistent, not postponed) on `confirmations` (default 2) CONSECUTIVE successful
   polls (`Scoreboard.poll_seq` n, n+1, ...). A poll in between that shows it otherwise, or misses it, starts over.
2. **Mapping a market to a game.**
   - Configured targets, `"<condition id>=<game id>:<team>"`: YES pays if `<team>` wins (display name,
     abbreviation or short name), so the sniper buys YES when that team won and NO when the other one did.
   - With `auto_match`, also: a market whose two outcomes are the two teams' names (the token of outcome i is
     team i), or a Yes/No market whose question reads "Will [the] <team> win/beat/defeat ..." and names the other
     team too (YES is that team). Only when the market ends within `auto_match_max_days` after the game's start,
     and only when exactly one game matches.
3. **Buying.** The winner's token, taking ask levels up to `max_price` whose return after the taker fee,
   `(1 - cost) / cost` with `cost = price + fee`, is at least `min_return`; within `max_notional_usd` and
   `max_shares`; at least the market's minimum size and `min_order_notional_usd`; limit on the tick grid. A FAK
   order by default: take what is there.
4. **Once per market, ever.** A snipe is a `ClaimedIntent` keyed by the condition id: the engine records the claim
   in the store (`Store.mark_sniped`) before sending, and sends nothing if the claim was there already. At start
   the sniper is given the persisted set (`already_sniped`); the market is also remembered here as soon as the
   intent is emitted, whatever happens to it (a missed snipe is cheaper than a double buy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from trader.domain.enums import OrderType
from trader.domain.games import Competitor, Game, Scoreboard
from trader.domain.intents import OrderIntent
from trader.domain.market import Market
from trader.domain.numbers import ONE, ZERO, Side, floor_to_tick
from trader.errors import InputError
from trader.strategies.base import ClaimedIntent, IdSequence, MarketState, StrategyOutput, buy_cost_per_share
from trader.strategies.clipper import clip_size

__all__ = ["SnipeTarget", "Sniper", "SniperSettings", "parse_target"]

_VALUE_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class SnipeTarget:
    """A configured mapping: YES of `condition_id` pays if `team` wins game `game_id`."""

    condition_id: str
    game_id: str
    team: str


def parse_target(text: str) -> SnipeTarget:
    """`"<condition id>=<game id>:<team>"`, e.g. `"0xabc=401585601:LAL"`."""
    condition_id, sep, rest = text.partition("=")
    game_id, sep2, team = rest.partition(":")
    if not sep or not sep2 or not condition_id.strip() or not game_id.strip() or not team.strip():
        raise InputError("sniper.targets", f"expected '<condition id>=<game id>:<team>', got {text!r}")
    return SnipeTarget(condition_id.strip(), game_id.strip(), team.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class SniperSettings:
    """Settings of the sniper.

    - `enabled` (default False).
    - `targets` (default empty): `"<condition id>=<game id>:<team>"` mappings (see the module doc).
    - `auto_match` (default False) and `auto_match_max_days` (default 3.0): match markets to games by team names.
    - `confirmations` (default 2): consecutive polls that must show the same final winner.
    - `max_price` (default 0.98): the highest price paid.
    - `min_return` (default 0.005): the least return per share after the fee, (1 - cost) / cost.
    - `max_notional_usd` (default 100) and `max_shares` (default 10000): per snipe.
    - `min_order_notional_usd` (default 1): the venue's marketable-order minimum (protocol.md §8).
    - `max_book_age_secs` (default 5.0); `order_type` (default FAK).
    """

    enabled: bool = False
    targets: tuple[str, ...] = ()
    auto_match: bool = False
    auto_match_max_days: float = 3.0
    confirmations: int = 2
    max_price: Decimal = Decimal("0.98")
    min_return: Decimal = Decimal("0.005")
    max_notional_usd: Decimal = Decimal(100)
    max_shares: Decimal = Decimal(10_000)
    min_order_notional_usd: Decimal = Decimal(1)
    max_book_age_secs: float = 5.0
    order_type: OrderType = OrderType.FAK

    def __post_init__(self) -> None:
        for target in self.targets:
            parse_target(target)
        if self.confirmations < 1:
            raise ValueError(f"confirmations must be >= 1, got {self.confirmations}")
        if not ZERO < self.max_price < ONE:
            raise ValueError(f"max_price must be within (0, 1), got {self.max_price}")
        if self.min_return < ZERO or not self.max_notional_usd > ZERO or not self.max_shares > ZERO:
            raise ValueError("min_return must be >= 0; max_notional_usd and max_shares > 0")
        if self.max_book_age_secs <= 0 or self.auto_match_max_days <= 0:
            raise ValueError("max_book_age_secs and auto_match_max_days must be > 0")
        if self.order_type not in (OrderType.FOK, OrderType.FAK):
            raise ValueError(f"order_type must be FOK or FAK, got {self.order_type}")

    def parsed_targets(self) -> tuple[SnipeTarget, ...]:
        return tuple(parse_target(t) for t in self.targets)


@dataclass(frozen=True, slots=True)
class _Final:
    winner: str  # the winner's display name, lower-cased
    count: int
    seq: int


def _winner_key(winner: Competitor) -> str:
    return (winner.display_name or winner.abbreviation or winner.short_name).strip().lower()


_YES_NO = {("yes", "no"), ("no", "yes")}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Sniper:
    """The strategy. State: the sniped markets, the finals seen per game, the id counter."""

    name = "sniper"

    def __init__(self, settings: SniperSettings | None = None, *, already_sniped: Iterable[str] = ()) -> None:
        self.settings = settings or SniperSettings()
        self._targets = self.settings.parsed_targets()
        self._sniped: set[str] = set(already_sniped)
        self._finals: dict[str, _Final] = {}
        self._seq: int | None = None
        self._ids = IdSequence(self.name)

    @property
    def sniped(self) -> frozenset[str]:
        """Condition ids sniped (persisted ones included): never bought again."""
        return frozenset(self._sniped)

    def confirmed(self, game_id: str) -> bool:
        final = self._finals.get(game_id)
        return final is not None and final.count >= self.settings.confirmations

    def _observe(self, board: Scoreboard) -> None:
        if board.poll_seq == self._seq:
            return
        self._seq = board.poll_seq
        finals: dict[str, _Final] = {}
        for game_id, game in board.games.items():
            winner = game.winner
            if winner is None:
                continue
            key = _winner_key(winner)
            previous = self._finals.get(game_id)
            if previous is not None and previous.winner == key and previous.seq == board.poll_seq - 1:
                finals[game_id] = _Final(key, previous.count + 1, board.poll_seq)
            else:
                finals[game_id] = _Final(key, 1, board.poll_seq)
        self._finals = finals

    def on_state(self, state: MarketState) -> Sequence[StrategyOutput]:
        board = state.scoreboard
        if board is None:
            return []
        self._observe(board)
        decided = [board.games[g] for g in self._finals if self.confirmed(g)]
        if not decided:
            return []
        out: list[StrategyOutput] = []
        for market, token_id, game in self._snipes(state, decided):
            intent = self._buy(market, token_id, game, state)
            if intent is not None:
                self._sniped.add(market.condition_id)
                out.append(intent)
        return out

    def _snipes(self, state: MarketState, games: list[Game]) -> list[tuple[Market, str, Game]]:
        """(market, the winner's token, game) for every decided game's markets not sniped yet."""
        found: list[tuple[Market, str, Game]] = []
        targeted = {t.condition_id for t in self._targets}
        by_id = {g.game_id: g for g in games}
        for target in self._targets:
            game = by_id.get(target.game_id)
            market = state.markets.get(target.condition_id)
            if game is None or market is None or market.condition_id in self._sniped:
                continue
            team, winner = game.competitor(target.team), game.winner
            if team is None or winner is None:
                continue  # the configured team is not in this game: a wrong mapping, never guessed
            found.append((market, market.yes_token_id if team is winner else market.no_token_id, game))
        if self.settings.auto_match:
            for market in state.markets.values():
                if market.condition_id in targeted or market.condition_id in self._sniped:
                    continue
                matches = [(token, game) for game in games if (token := self._auto_token(market, game)) is not None]
                if len(matches) == 1:
                    token, game = matches[0]
                    found.append((market, token, game))
        return found

    def _auto_token(self, market: Market, game: Game) -> str | None:
        """The token of `market` that pays if `game`'s winner won, when the market is clearly about this game."""
        winner = game.winner
        if winner is None or market.end_date is None or game.start is None:
            return None
        lead = _aware(market.end_date) - _aware(game.start)
        if not 0 <= lead.total_seconds() <= self.settings.auto_match_max_days * 86_400:
            return None
        names = tuple(o.strip().lower() for o in market.outcomes)
        if names not in _YES_NO:
            teams = [game.competitor(outcome) for outcome in market.outcomes]
            if teams[0] is None or teams[1] is None or teams[0] is teams[1]:
                return None
            return market.token_ids[0] if teams[0] is winner else market.token_ids[1]
        question = market.question.lower()
        subjects = [c for c in game.competitors if _asks_if_wins(question, c)]
        if len(subjects) != 1:
            return None
        (subject,) = subjects
        (other,) = [c for c in game.competitors if c is not subject]
        if not any(_mentions(question, name) for name in other.names()):
            return None
        return market.yes_token_id if subject is winner else market.no_token_id

    def _buy(self, market: Market, token_id: str, game: Game, state: MarketState) -> ClaimedIntent | None:
        s = self.settings
        book = state.book(token_id)
        if book is None or not market.is_tradable or not book.usable(s.max_book_age_secs):
            return None
        # cost * (1 + min_return) <= 1, and price <= max_price (the cost rises with the price)
        limit_value = min(
            floor_to_tick(ONE / (ONE + s.min_return), _VALUE_QUANTUM), buy_cost_per_share(market.fees, s.max_price)
        )
        clip = clip_size(
            book,
            Side.BUY,
            limit_value=limit_value,
            fees=market.fees,
            tick_size=market.tick_size,
            clip_shares=s.max_shares,
            min_size=market.min_order_size,
            min_notional=s.min_order_notional_usd,
            budget_usd=s.max_notional_usd,
        )
        if clip is None or clip.price > s.max_price:
            return None
        intent = OrderIntent(
            client_order_id=self._ids.next(state.session),
            strategy=self.name,
            condition_id=market.condition_id,
            token_id=token_id,
            side=Side.BUY,
            price=clip.price,
            size=clip.size,
            order_type=s.order_type,
        )
        winner = game.winner
        detail: dict[str, object] = {
            "game_id": game.game_id,
            "game": game.name,
            "winner": winner.display_name if winner else "",
            "poll_seq": self._seq,
            "price": str(clip.price),
            "size": str(clip.size),
        }
        return ClaimedIntent(intent=intent, claim_key=market.condition_id, token_id=token_id, detail=detail)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text) is not None


def _asks_if_wins(question: str, team: Competitor) -> bool:
    return any(
        re.search(rf"\bwill (the )?{re.escape(name)} (win|beat|defeat)\b", question) is not None
        for name in team.names()
    )
