"""An ESPN-shaped scoreboard for the simulated venue, served on the sim's port under `/espn`:

    GET /espn/apis/site/v2/sports/{sport}/{league}/scoreboard
    -> {"leagues": [...], "events": [{"id", "uid", "date", "name", "shortName",
         "competitions": [{"id", "date", "competitors": [{"id", "homeAway", "winner", "score",
                                                           "team": {"id", "displayName", "abbreviation",
                                                                    "shortDisplayName", "name", "location"}}],
                           "status": {"clock", "displayClock", "period",
                                      "type": {"id", "name", "state", "completed", "description", "detail",
                                               "shortDetail"}}}],
         "status": {...the same status}}]}

the shape `trader.integrations.espn` parses (the fields ESPN's public site API sends for a game; names, ids and
`date` like "2026-11-20T03:30Z" as ESPN writes them). A sport/league with no game here answers `{"events": []}`;
any other path is a 404. Status by phase: `pre` STATUS_SCHEDULED, `in` STATUS_IN_PROGRESS, `post` STATUS_FINAL
(completed, exactly one `winner: true`, the winner's score higher).

Faults (`EspnFaults`; also `POST /espn/_sim/faults {"kind": ..., "count": n}`, `GET` lists, `DELETE` clears):
- `down` [count=1]: the next requests get 503 (ESPN is down);
- `junk` [count=1]: the next replies are 200 with a body that is not JSON;
- `flip_final`: a game's final flips back once: the first poll that shows it final does, the next one shows it
  in progress again, the ones after final for good (the sniper must see two consecutive finals).
The sim's general HTTP faults apply here too (`http_errors:status=503,service=espn`, `delay_http:service=espn`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from trader.errors import InputError
from trader.venues.sim.httpserver import HttpRequest, HttpResponse

SCOREBOARD_PREFIX = "/apis/site/v2/sports/"
FAULTS_PATH = "/_sim/faults"

_STATUS = {
    "pre": ("1", "STATUS_SCHEDULED", "Scheduled"),
    "in": ("2", "STATUS_IN_PROGRESS", "In Progress"),
    "post": ("3", "STATUS_FINAL", "Final"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Team:
    display_name: str  # "Los Angeles Lakers"
    short_name: str  # "Lakers"
    abbreviation: str  # "LAL"
    team_id: str = "1"

    def json(self) -> dict[str, object]:
        location = self.display_name.removesuffix(self.short_name).strip() or self.display_name
        return {
            "id": self.team_id,
            "displayName": self.display_name,
            "abbreviation": self.abbreviation,
            "shortDisplayName": self.short_name,
            "name": self.short_name,
            "location": location,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SimGame:
    """One game on the sim's clock (unix seconds). Scores grow with play towards the final score."""

    game_id: str
    sport: str
    league: str
    home: Team
    away: Team
    start: float
    duration_secs: float
    home_final: int
    away_final: int
    periods: int = 4

    def __post_init__(self) -> None:
        if self.home_final == self.away_final:
            raise InputError("final score", "a game here always has a winner")
        if self.duration_secs <= 0:
            raise InputError("duration_secs", "must be > 0")

    @property
    def end(self) -> float:
        return self.start + self.duration_secs

    @property
    def winner(self) -> str:
        return "home" if self.home_final > self.away_final else "away"

    def phase(self, now: float) -> str:
        if now < self.start:
            return "pre"
        return "in" if now < self.end else "post"

    def progress(self, now: float) -> float:
        return min(1.0, max(0.0, (now - self.start) / self.duration_secs))

    def scores(self, now: float) -> tuple[int, int]:
        """(home, away) at `now`: the final scores scaled by the share of the game played, so the lead can swap."""
        f = self.progress(now)
        if f >= 1.0:
            return self.home_final, self.away_final
        # the away side scores early, the home side late: an in-game lead does not give the result away
        home = int(self.home_final * f * f)
        away = int(self.away_final * min(1.0, f * 1.25))
        return home, away

    def event_json(self, now: float, *, phase: str | None = None) -> dict[str, object]:
        phase = phase or self.phase(now)
        home, away = self.scores(now) if phase != "pre" else (0, 0)
        if phase == "in" and self.phase(now) == "post":  # a flipped final: shown as the last seconds of play
            home, away = self.scores(self.end - 1e-6)
        final = phase == "post"
        type_id, name, description = _STATUS[phase]
        period = 0 if phase == "pre" else min(self.periods, 1 + int(self.progress(now) * self.periods))
        remaining = 0.0 if phase != "in" else max(0.0, self.end - now) % (self.duration_secs / self.periods)
        status = {
            "clock": remaining,
            "displayClock": f"{int(remaining) // 60}:{int(remaining) % 60:02d}",
            "period": period,
            "type": {
                "id": type_id,
                "name": name,
                "state": phase,
                "completed": final,
                "description": description,
                "detail": description if phase != "pre" else _espn_date(self.start),
                "shortDetail": description,
            },
        }
        date = _espn_date(self.start)
        competitors = [
            {
                "id": team.team_id,
                "homeAway": side,
                "winner": final and self.winner == side,
                "score": str(score),
                "team": team.json(),
            }
            for side, team, score in (("home", self.home, home), ("away", self.away, away))
        ]
        return {
            "id": self.game_id,
            "uid": f"s:{self.sport}~l:{self.league}~e:{self.game_id}",
            "date": date,
            "name": f"{self.away.display_name} at {self.home.display_name}",
            "shortName": f"{self.away.abbreviation} @ {self.home.abbreviation}",
            "competitions": [{"id": self.game_id, "date": date, "competitors": competitors, "status": status}],
            "status": status,
        }


def _espn_date(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


class EspnFaults:
    """Armed scoreboard faults (counts of requests still to be hit)."""

    KINDS = ("down", "junk", "flip_final")

    def __init__(self) -> None:
        self.down_left = 0
        self.junk_left = 0
        self.flip_armed = False
        #: game id -> polls answered since the flip fault first showed that game final
        self._flips: dict[str, int] = {}

    def arm(self, kind: str, count: int = 1) -> str:
        if count < 1:
            raise InputError("count", "must be at least 1")
        if kind == "down":
            self.down_left += count
        elif kind == "junk":
            self.junk_left += count
        elif kind == "flip_final":
            self.flip_armed = True
            self._flips.clear()
        else:
            raise InputError("kind", f"unknown ESPN fault {kind!r}; expected one of {', '.join(self.KINDS)}")
        return f"espn {kind} armed"

    def clear(self) -> None:
        self.down_left = self.junk_left = 0
        self.flip_armed = False
        self._flips.clear()

    def armed(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        if self.down_left:
            out.append({"kind": "down", "remaining": self.down_left})
        if self.junk_left:
            out.append({"kind": "junk", "remaining": self.junk_left})
        if self.flip_armed:
            out.append({"kind": "flip_final"})
        return out

    def shown_phase(self, game: SimGame, now: float) -> str:
        """The phase this poll shows: a flipped final shows `in` on the poll after its first final."""
        phase = game.phase(now)
        if phase != "post" or not self.flip_armed:
            return phase
        seen = self._flips.get(game.game_id, 0)
        self._flips[game.game_id] = seen + 1
        if seen == 1:
            return "in"
        if seen >= 2:
            self.flip_armed = False  # flipped once: final for good
        return phase


@dataclass(slots=True)
class EspnStats:
    requests: int = 0
    served: int = 0
    down: int = 0
    junk: int = 0
    flipped: int = 0


class EspnBoard:
    """The `/espn` route handler: `context.add_route("/espn", board)`."""

    def __init__(self, games: Sequence[SimGame], clock: Callable[[], float]) -> None:
        self.games = list(games)
        self.clock = clock
        self.faults = EspnFaults()
        self.stats = EspnStats()

    def scoreboard(self, sport: str, league: str, now: float) -> dict[str, object]:
        events = []
        for game in self.games:
            if (game.sport, game.league) != (sport, league):
                continue
            shown = self.faults.shown_phase(game, now)
            if shown != game.phase(now):
                self.stats.flipped += 1
            events.append(game.event_json(now, phase=shown))
        return {
            "leagues": [{"id": league, "abbreviation": league.upper(), "slug": league, "name": league.upper()}],
            "events": events,
        }

    async def __call__(self, request: HttpRequest, path: str) -> HttpResponse:
        if path == FAULTS_PATH:
            return self._admin(request)
        if not path.startswith(SCOREBOARD_PREFIX) or not path.endswith("/scoreboard"):
            return HttpResponse.error(404, "not found")
        parts = path[len(SCOREBOARD_PREFIX) : -len("/scoreboard")].split("/")
        if len(parts) != 2 or not all(parts):
            return HttpResponse.error(404, "not found")
        if request.method != "GET":
            return HttpResponse.error(405, "method not allowed")
        self.stats.requests += 1
        if self.faults.down_left:
            self.faults.down_left -= 1
            self.stats.down += 1
            return HttpResponse.error(503, "Service Unavailable")
        if self.faults.junk_left:
            self.faults.junk_left -= 1
            self.stats.junk += 1
            return HttpResponse(200, b'{"events": [{"id": "40', content_type="application/json")
        self.stats.served += 1
        return HttpResponse.json(self.scoreboard(parts[0], parts[1], self.clock()))

    def _admin(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return HttpResponse.json(self.faults.armed())
        if request.method == "DELETE":
            self.faults.clear()
            return HttpResponse.json({"result": "cleared"})
        if request.method != "POST":
            return HttpResponse.error(405, "method not allowed")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            return HttpResponse.error(400, 'expected {"kind": "down|junk|flip_final", "count": n}')
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int):
            return HttpResponse.error(400, "count: expected an integer")
        try:
            return HttpResponse.json({"result": self.faults.arm(body["kind"], count)})
        except InputError as exc:
            return HttpResponse.error(400, str(exc))
