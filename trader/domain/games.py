"""Game results as plain values: what the sniper reads, whatever scoreboard they came from.

`trader.integrations.espn` parses ESPN's scoreboard into these; the sniper (`trader.strategies.sniper`) never sees
JSON. A `Scoreboard` is one successful poll of one or more leagues; `poll_seq` counts successful polls, so the
sniper can tell two consecutive polls apart from the same poll seen twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ["Competitor", "Game", "GameState", "Scoreboard"]

#: Status names that never count as a final result, whatever the other flags say.
NOT_FINAL_STATUS_NAMES = frozenset(
    {
        "STATUS_POSTPONED",
        "STATUS_CANCELED",
        "STATUS_CANCELLED",
        "STATUS_SUSPENDED",
        "STATUS_DELAYED",
        "STATUS_ABANDONED",
        "STATUS_RAIN_DELAY",
    }
)


class GameState(enum.StrEnum):
    PRE = "pre"
    IN = "in"
    POST = "post"


@dataclass(frozen=True, slots=True, kw_only=True)
class Competitor:
    home_away: str  # "home" | "away"
    winner: bool
    score: Decimal | None  # None when absent or not a number
    display_name: str
    abbreviation: str
    short_name: str

    def names(self) -> frozenset[str]:
        """Every name this team goes by, lower-cased (for matching configured or market names)."""
        return frozenset(n.strip().lower() for n in (self.display_name, self.abbreviation, self.short_name) if n)

    def is_called(self, name: str) -> bool:
        return name.strip().lower() in self.names()


@dataclass(frozen=True, slots=True, kw_only=True)
class Game:
    game_id: str
    name: str
    state: GameState
    completed: bool
    status_name: str
    competitors: tuple[Competitor, ...]
    league: str = ""
    start: datetime | None = None

    @property
    def winner(self) -> Competitor | None:
        """The winner of a finished game: final, completed, exactly one winner and (when scores are known) the
        higher score. None for anything else (in play, postponed, a draw, contradictory data)."""
        if self.state is not GameState.POST or not self.completed or self.status_name in NOT_FINAL_STATUS_NAMES:
            return None
        if len(self.competitors) != 2:
            return None
        winners = [c for c in self.competitors if c.winner]
        if len(winners) != 1:
            return None
        (winner,) = winners
        (loser,) = [c for c in self.competitors if c is not winner]
        if winner.score is not None and loser.score is not None and winner.score <= loser.score:
            return None
        return winner

    def competitor(self, name: str) -> Competitor | None:
        """The competitor called `name` (display name, abbreviation or short name; case-insensitive)."""
        matches = [c for c in self.competitors if c.is_called(name)]
        return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Scoreboard:
    """The games of one successful poll, by game id."""

    poll_seq: int
    polled_at: float  # Trio clock
    games: Mapping[str, Game]
