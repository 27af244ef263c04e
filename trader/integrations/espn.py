"""ESPN's public scoreboard: a small client and a polling service that keeps the latest `Scoreboard` for the sniper.

    GET {base}/apis/site/v2/sports/{sport}/{league}/scoreboard
    -> {"events": [{"id", "name", "shortName", "date",
                    "competitions": [{"competitors": [{"homeAway", "winner", "score",
                                                       "team": {"displayName", "abbreviation", "shortDisplayName"}}],
                                      "status": {"type": {"state": "pre|in|post", "completed", "name"}}}]}]}

Parsing (msgspec, then explicit checks): a reply that is not JSON, or has no `events` list, is a bad reply
(`EspnBadReply`, counted); an event that does not have the shape above is skipped and counted (`bad_events`), the
others are kept. Nothing ESPN sends can crash the engine. The result is `trader.domain.games.Game` values; no
JSON leaves this module.

Errors (`EspnError`, a `TraderError`):
- `EspnUnavailable`: the request failed (connect, read, a 5xx or 429): retry later;
- `EspnRequestError`: any other non-200 status (a wrong sport/league path): retrying will not help;
- `EspnBadReply`: the body is junk.

The client sets no timeout (the caller owns it). `EspnPoller.run` is the caller: it polls every configured league
each `poll_interval_secs` inside `trio.fail_after(request_timeout_secs)`, backs off (`Backoff`) while every
league fails, and publishes the games of the leagues that answered as the next `Scoreboard` (`latest()`), whose
`poll_seq` counts successful polls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NoReturn

import httpx
import msgspec
import structlog
import trio

from trader.config import check_positive_secs
from trader.domain.games import Competitor, Game, GameState, Scoreboard
from trader.domain.numbers import within_limits
from trader.errors import TraderError
from trader.infra.backoff import Backoff
from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error

__all__ = [
    "EspnBadReply",
    "EspnClient",
    "EspnError",
    "EspnPoller",
    "EspnRequestError",
    "EspnSettings",
    "EspnStatistics",
    "EspnUnavailable",
    "parse_scoreboard",
]

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://site.api.espn.com"


class EspnError(TraderError):
    """ESPN could not give us a scoreboard."""


class EspnUnavailable(EspnError):
    """The request failed or ESPN is unwell (network error, timeout, 5xx, 429): try again later."""


class EspnRequestError(EspnError):
    """ESPN refused the request (a non-200 status that is not 5xx or 429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EspnBadReply(EspnError):
    """The reply is not a scoreboard."""


# -- wire shapes (lenient: every field has a default, unknown fields are ignored) -----------------------------------


class _Team(msgspec.Struct):  # field names are ESPN's
    displayName: str = ""
    abbreviation: str = ""
    shortDisplayName: str = ""


class _Competitor(msgspec.Struct):
    team: _Team
    homeAway: str = ""
    winner: bool = False
    score: str | int | None = None


class _StatusType(msgspec.Struct):
    state: str
    completed: bool = False
    name: str = ""


class _Status(msgspec.Struct):
    type: _StatusType


class _Competition(msgspec.Struct):
    competitors: list[_Competitor]
    status: _Status | None = None


class _Event(msgspec.Struct):
    id: str | int
    competitions: list[_Competition]
    name: str = ""
    shortName: str = ""
    date: str | None = None
    status: _Status | None = None


class _Board(msgspec.Struct):
    events: list[msgspec.Raw]


_BOARD = msgspec.json.Decoder(_Board)
_EVENT = msgspec.json.Decoder(_Event)
#: An event that cannot be read (JSON_INPUT_ERRORS), or is not the documented shape (ValueError from `_game`).
_BAD_EVENT: tuple[type[Exception], ...] = (*JSON_INPUT_ERRORS, ValueError)


def _score(value: str | int | None) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        score = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return None
    return score if within_limits(score) else None


def _start(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _game(event: _Event, league: str) -> Game:
    """One event as a Game; ValueError when it is not the documented shape."""
    game_id = str(event.id).strip()
    if not game_id:
        raise ValueError("empty event id")
    if not event.competitions:
        raise ValueError("no competition")
    competition = event.competitions[0]
    status = competition.status or event.status
    if status is None:
        raise ValueError("no status")
    state = GameState(status.type.state)  # ValueError for anything but pre/in/post
    competitors = tuple(
        Competitor(
            home_away=c.homeAway,
            winner=c.winner,
            score=_score(c.score),
            display_name=c.team.displayName,
            abbreviation=c.team.abbreviation,
            short_name=c.team.shortDisplayName,
        )
        for c in competition.competitors
    )
    if len(competitors) != 2 or any(not c.names() for c in competitors):
        raise ValueError("expected two named competitors")
    return Game(
        game_id=game_id,
        name=event.name or event.shortName,
        state=state,
        completed=status.type.completed,
        status_name=status.type.name,
        competitors=competitors,
        league=league,
        start=_start(event.date),
    )


def parse_scoreboard(body: bytes, league: str = "") -> tuple[list[Game], int]:
    """(the games, the number of events skipped as malformed). Raises `EspnBadReply` for a body that is not a
    scoreboard at all."""
    try:
        board = _BOARD.decode(body)
    except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, nested too deeply, or not the shape
        raise EspnBadReply(f"not a scoreboard: {describe_json_error(exc)[:120]}") from None
    games: list[Game] = []
    bad = 0
    for raw in board.events:
        try:
            games.append(_game(_EVENT.decode(raw), league))
        except _BAD_EVENT:
            bad += 1
    return games, bad


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    failures: int = 0
    bad_replies: int = 0
    bad_events: int = 0


class EspnClient:
    """One scoreboard request at a time over the caller's `httpx.AsyncClient` (the caller sets timeouts)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.counts = _Counts()

    async def scoreboard(self, sport: str, league: str) -> list[Game]:
        url = f"{self._base_url}/apis/site/v2/sports/{sport}/{league}/scoreboard"
        self.counts.requests += 1
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            self.counts.failures += 1
            raise EspnUnavailable(f"GET {sport}/{league} scoreboard failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            self.counts.failures += 1
            if response.status_code >= 500 or response.status_code == 429:
                raise EspnUnavailable(f"GET {sport}/{league} scoreboard: HTTP {response.status_code}")
            raise EspnRequestError(
                response.status_code, f"GET {sport}/{league} scoreboard: HTTP {response.status_code}"
            )
        try:
            games, bad = parse_scoreboard(response.content, f"{sport}/{league}")
        except EspnBadReply:
            self.counts.bad_replies += 1
            raise
        self.counts.bad_events += bad
        return games


@dataclass(frozen=True, slots=True, kw_only=True)
class EspnSettings:
    """Settings of the scoreboard poller.

    - `leagues` (default empty: no polling): "sport/league" paths, e.g. "basketball/nba", "football/nfl".
    - `poll_interval_secs` (default 10.0): between polls while ESPN answers.
    - `request_timeout_secs` (default 5.0): per request.
    - `backoff` (default 2 s doubling to 120 s): between polls while every league fails.
    """

    leagues: tuple[str, ...] = ()
    poll_interval_secs: float = 10.0
    request_timeout_secs: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_secs=2.0, max_secs=120.0))

    def __post_init__(self) -> None:
        for league in self.leagues:
            parts = league.split("/")
            if len(parts) != 2 or not all(p and p.replace("-", "").replace(".", "").isalnum() for p in parts):
                raise ValueError(f"leagues: expected 'sport/league' like 'basketball/nba', got {league!r}")
        check_positive_secs(self, "poll_interval_secs", "request_timeout_secs")


@dataclass(frozen=True, slots=True)
class EspnStatistics:
    polls: int
    successful_polls: int  # at least one league answered
    requests: int
    failures: int  # requests that failed (network, timeout, status)
    bad_replies: int  # bodies that were not a scoreboard
    bad_events: int  # events skipped as malformed
    consecutive_failed_polls: int
    games: int  # in the latest scoreboard
    last_success_at: float | None  # Trio clock


class EspnPoller:
    """Polls the configured leagues and keeps the latest `Scoreboard`. Start with `await nursery.start(poller.run)`."""

    def __init__(self, client: EspnClient, settings: EspnSettings) -> None:
        self._client = client
        self._settings = settings
        self._latest: Scoreboard | None = None
        self._polls = 0
        self._successes = 0
        self._timeouts = 0
        self._failed_in_a_row = 0

    def latest(self) -> Scoreboard | None:
        """The last successful poll (None before the first)."""
        return self._latest

    def statistics(self) -> EspnStatistics:
        counts = self._client.counts
        return EspnStatistics(
            polls=self._polls,
            successful_polls=self._successes,
            requests=counts.requests,
            failures=counts.failures + self._timeouts,
            bad_replies=counts.bad_replies,
            bad_events=counts.bad_events,
            consecutive_failed_polls=self._failed_in_a_row,
            games=0 if self._latest is None else len(self._latest.games),
            last_success_at=None if self._latest is None else self._latest.polled_at,
        )

    async def poll_once(self) -> Scoreboard | None:
        """Poll every league once; the new scoreboard, or None when no league answered."""
        self._polls += 1
        games: dict[str, Game] = {}
        answered = 0
        for league in self._settings.leagues:
            sport, name = league.split("/")
            try:
                with trio.fail_after(self._settings.request_timeout_secs):
                    found = await self._client.scoreboard(sport, name)
            except trio.TooSlowError:
                self._timeouts += 1
                log.warning("espn_poll_failed", league=league, error="timeout")
                continue
            except EspnError as exc:
                log.warning("espn_poll_failed", league=league, error=str(exc))
                continue
            answered += 1
            games.update({game.game_id: game for game in found})
        if not answered:
            self._failed_in_a_row += 1
            return None
        self._failed_in_a_row = 0
        self._successes += 1
        seq = 1 if self._latest is None else self._latest.poll_seq + 1
        self._latest = Scoreboard(poll_seq=seq, polled_at=trio.current_time(), games=games)
        return self._latest

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        if not self._settings.leagues:
            await trio.sleep_forever()
        while True:
            board = await self.poll_once()
            if board is None:
                await trio.sleep(self._settings.backoff.delay(self._failed_in_a_row - 1))
            else:
                await trio.sleep(self._settings.poll_interval_secs)
