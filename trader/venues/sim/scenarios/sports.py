"""The `sports` scenario: one game with a known winner, its money-line market, and an ESPN scoreboard beside it.

    trader sim --scenario sports --scenario-param duration_secs=60 --scenario-param winner=away

The game (`trader.venues.sim.espn.SimGame`) is scheduled `start_in_secs` after the sim starts (or at `start`, an
ISO time: give it when the sim runs with a fixed `SimConfig.start_time`, since the market's end date is set from
the wall clock when the scenario is built) and lasts `duration_secs`; its final score is seeded, the winner is
`winner` (home, away, or random from the seed). ESPN's scoreboard for it is served at
`{espn}/apis/site/v2/sports/{sport}/{league}/scoreboard`
(`SimUrls.espn`); faults: `espn_down=N`, `espn_junk=N`, `flip_final=true` at start, or at any time
`POST {espn}/_sim/faults {"kind": "down|junk|flip_final", "count": n}` (see `trader.venues.sim.espn`).

The market is shaped like a Gamma sports money line: question "<home> vs. <away>", outcomes the two teams' short
names (outcome 0, the YES token, is the home team), an end date one day after the game's start (so the sniper's
auto-match, which wants the end within days of the start, finds it), tick 0.01. A maker quotes it:
- before and during the game, around 0.5: the home team's fair value leans with the score difference as the game
  goes on, within 0.35-0.65 (`levels` levels a side, one tick apart, every `step_secs`);
- at the final whistle the maker is slow: for `window_secs` the winner's token still offers asks below 1 (best ask
  `window_ask`, default 0.95, and levels above it), the window a sniper exploits;
- then it reprices: the winner's token bid 0.98 / ask 0.99, the loser's 0.01 / 0.02;
- `resolve_after_secs` later the market resolves on the game's result (the true one, whatever ESPN's faults say):
  `market_resolved`, Gamma closed with `outcomePrices`, the CLOB market's `winner`, its shares redeemable.

Parameters (`--scenario-param key=value`): home, home_short, home_abbr, away, away_short, away_abbr, sport, league,
game_id, start, start_in_secs, duration_secs, winner, window_secs, window_ask, resolve_after_secs, step_secs, levels,
espn_down, espn_junk, flip_final.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import trio

from trader.errors import ConfigError
from trader.venues.sim.espn import EspnBoard, SimGame, Team
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.markets import PIPS_PER_ONE, SimEvent, SimMarket, make_market, pips_of
from trader.venues.sim.rest import ESPN_PREFIX
from trader.venues.sim.scenarios import ScenarioContext, ScenarioOptions
from trader.venues.sim.scenarios.frames import parse_scenario_params
from trader.venues.sim.scenarios.quotes import LadderMaker

_HALF_SPREAD = 100  # pips: bid 1 tick under the fair value, ask 1 tick over


@dataclass(frozen=True, slots=True, kw_only=True)
class SportsParams:
    home: str = "Los Angeles Lakers"
    home_short: str = "Lakers"
    home_abbr: str = "LAL"
    away: str = "Boston Celtics"
    away_short: str = "Celtics"
    away_abbr: str = "BOS"
    sport: str = "basketball"
    league: str = "nba"
    game_id: str = ""
    start: str = ""
    start_in_secs: float = 5.0
    duration_secs: float = 60.0
    winner: str = "random"
    window_secs: float = 30.0
    window_ask: str = "0.95"
    resolve_after_secs: float = 30.0
    step_secs: float = 0.5
    levels: int = 5
    espn_down: int = 0
    espn_junk: int = 0
    flip_final: bool = False

    def check(self) -> None:
        if self.winner not in ("home", "away", "random"):
            raise ConfigError(f"sports scenario parameter winner: expected home, away or random, got {self.winner!r}")
        for name in ("duration_secs", "step_secs"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"sports scenario parameter {name} must be > 0")
        if min(self.window_secs, self.start_in_secs, self.espn_down, self.espn_junk, self.resolve_after_secs) < 0:
            raise ConfigError(
                "sports scenario parameters window_secs, start_in_secs, espn_down, espn_junk, resolve_after_secs: >= 0"
            )
        if not 1 <= self.levels <= 20:
            raise ConfigError(f"sports scenario parameter levels must be in 1..20, got {self.levels}")
        if {self.home_short.lower(), self.home_abbr.lower()} & {self.away_short.lower(), self.away_abbr.lower()}:
            raise ConfigError("sports scenario: the two teams need different names")
        for part in (self.sport, self.league):
            if not part or not part.replace("-", "").replace(".", "").isalnum():
                raise ConfigError(f"sports scenario: sport and league must be path words, got {part!r}")
        self.window_ask_pips()
        self.start_time()

    def window_ask_pips(self) -> int:
        try:
            pips = pips_of(Decimal(self.window_ask), "window_ask")
        except (InvalidOperation, ValueError):
            pips = -1
        if not 5000 <= pips <= 9800 or pips % 100:
            raise ConfigError(
                f"sports scenario parameter window_ask: a price in 0.50..0.98 on the 0.01 grid, got {self.window_ask!r}"
            )
        return pips

    def start_time(self) -> float | None:
        if not self.start:
            return None
        try:
            parsed = datetime.fromisoformat(self.start)
        except ValueError:
            raise ConfigError(f"sports scenario parameter start: not an ISO time: {self.start!r}") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class SportsScenario:
    def __init__(self, options: ScenarioOptions, params: SportsParams, *, now: float | None = None) -> None:
        params.check()
        self.params = params
        self.rng = random.Random(options.seed)
        loser_score = self.rng.randrange(85, 115)
        winner_score = loser_score + self.rng.randrange(1, 15)
        winner = params.winner if params.winner != "random" else self.rng.choice(("home", "away"))
        start = params.start_time()
        self._anchored = start is not None
        if start is None:
            start = (time.time() if now is None else now) + params.start_in_secs
        home = Team(display_name=params.home, short_name=params.home_short, abbreviation=params.home_abbr, team_id="1")
        away = Team(display_name=params.away, short_name=params.away_short, abbreviation=params.away_abbr, team_id="2")
        self.game = SimGame(
            game_id=params.game_id or str(401_000_000 + self.rng.randrange(1_000_000)),
            sport=params.sport,
            league=params.league,
            home=home,
            away=away,
            start=start,
            duration_secs=params.duration_secs,
            home_final=winner_score if winner == "home" else loser_score,
            away_final=winner_score if winner == "away" else loser_score,
        )
        self.board = EspnBoard([self.game], clock=time.time)
        if params.espn_down:
            self.board.faults.arm("down", params.espn_down)
        if params.espn_junk:
            self.board.faults.arm("junk", params.espn_junk)
        if params.flip_final:
            self.board.faults.arm("flip_final")
        question = f"{params.home_short} vs. {params.away_short}"
        market = make_market(
            f"sports:{options.seed}:{self.game.game_id}",
            question=question,
            outcomes=(params.home_short, params.away_short),
            event_id="",
        )
        end = datetime.fromtimestamp(start + 86_400, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = SimEvent(
            event_id=market.gamma_id + "1",
            slug=f"{params.league}-{params.away_abbr}-{params.home_abbr}".lower(),
            title=f"{params.away} vs. {params.home}",
            market_ids=(market.condition_id,),
        )
        self.market = replace(
            market,
            end_date_iso=end,
            event_id=event.event_id,
            group_item_title="Match Winner",
            description=(
                f"This market refers to the {params.league.upper()} game between the {params.home} and the "
                f"{params.away}. It resolves to the team that wins."
            ),
        )
        self.event = event
        self.maker = LadderMaker(self.market, f"sim-sports-{self.game.game_id}", self.rng, levels=params.levels)
        self.phase = "pre"

    @classmethod
    def from_options(cls, options: ScenarioOptions) -> SportsScenario:
        return cls(options, parse_scenario_params(SportsParams, "sports", options.params))

    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]:
        return [self.market], [self.event]

    # -- prices ---------------------------------------------------------------------------------------------------

    def fair(self, now: float) -> int:
        """The home team's fair value in pips (on the 0.01 grid) before the final whistle."""
        home, away = self.game.scores(now) if self.game.phase(now) != "pre" else (0, 0)
        lean = math.tanh((home - away) / 12 * self.game.progress(now))
        value = 5000 + int(1500 * lean)
        return max(3500, min(6500, value - value % 100))

    def quotes(self, now: float) -> tuple[str, int, int]:
        """(stage, YES best bid, YES best ask) at `now`: stage is pre, in, window or settled."""
        game = self.game
        if now < game.end:
            fair = self.fair(now)
            return game.phase(now), fair - _HALF_SPREAD, fair + _HALF_SPREAD
        home_won = game.winner == "home"
        if now < game.end + self.params.window_secs:
            ask = self.params.window_ask_pips()
            bid = ask - 1000  # the stale side: well under the ask
            return ("window", bid, ask) if home_won else ("window", PIPS_PER_ONE - ask, PIPS_PER_ONE - bid)
        return ("settled", 9800, 9900) if home_won else ("settled", 100, 200)

    def step(self, exchange: Exchange, now: float) -> None:
        stage, bid, ask = self.quotes(now)
        self.maker.quote(exchange, now, bid, ask)
        self.phase = stage

    # -- the scenario ---------------------------------------------------------------------------------------------

    def setup(self, exchange: Exchange, now: float) -> None:
        if not self._anchored:  # the game starts start_in_secs after the sim does, on the sim's own clock
            self.game = replace(self.game, start=now + self.params.start_in_secs)
            self.board.games = [self.game]
        self.step(exchange, now)

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.board.clock = context.now
        context.add_route(ESPN_PREFIX, self.board)
        task_status.started()
        start = trio.current_time()
        n = 0
        while self.phase != "settled":
            n += 1
            await trio.sleep_until(start + n * self.params.step_secs)
            self.step(context.exchange, context.now())
        await trio.sleep(max(0.0, self.resolves_at - context.now()))
        self.resolve(context.exchange, context.now())

    @property
    def resolves_at(self) -> float:
        """When the market resolves (sim wall-clock seconds)."""
        return self.game.end + self.params.window_secs + self.params.resolve_after_secs

    def resolve(self, exchange: Exchange, now: float) -> None:
        """Resolve the market on the game's result: the home team is outcome 0 (YES)."""
        if exchange.resolution(self.market.condition_id) is None:
            exchange.resolve(self.market.condition_id, 0 if self.game.winner == "home" else 1, now)
            self.phase = "resolved"
