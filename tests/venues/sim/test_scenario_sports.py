"""The `sports` scenario: a game the engine's ESPN client reads, faults the sniper must survive, and a market
whose winner can still be bought below 1 for a while after the final whistle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from tests.venues.sim._support import T0
from trader.app import RunSummary, run_trader
from trader.domain.games import GameState
from trader.errors import ConfigError
from trader.integrations.espn import (
    EspnBadReply,
    EspnClient,
    EspnRequestError,
    EspnSettings,
    EspnUnavailable,
    parse_scoreboard,
)
from trader.integrations.http_server import HttpSettings
from trader.settings import RunSettings, Settings, SimSettings
from trader.strategies.sniper import SniperSettings
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.httpserver import HttpRequest
from trader.venues.sim.scenarios import RouteHandler, ScenarioOptions, make_scenario
from trader.venues.sim.scenarios.sports import SportsScenario
from trader.venues.sim.venue import SimConfig, open_sim_venue

PATH = "/apis/site/v2/sports/basketball/nba/scoreboard"


def scenario(**params: str) -> SportsScenario:
    values = {"start_in_secs": "10", "duration_secs": "60", "window_secs": "20", "step_secs": "0.5"} | params
    made = make_scenario("sports", ScenarioOptions(seed=4, params=values))
    assert isinstance(made, SportsScenario)
    return made


class Context:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.routes: dict[str, RouteHandler] = {}

    def now(self) -> float:
        return T0 + trio.current_time()

    def add_route(self, prefix: str, handler: RouteHandler) -> None:
        self.routes[prefix] = handler

    async def get(self, path: str = PATH) -> tuple[int, bytes]:
        request = HttpRequest("GET", "/espn" + path, "/espn" + path, {}, {}, b"", "test")
        response = await self.routes["/espn"](request, path)
        return response.status, response.body


async def test_espn_phases_market_stages_and_the_snipe_window(autojump_clock: trio.testing.MockClock) -> None:
    sports = scenario(winner="away")
    (market,), _ = sports.listing()
    exchange = Exchange(*sports.listing())
    sports.setup(exchange, T0)
    context = Context(exchange)
    seen: dict[float, tuple[GameState, bool, str | None, tuple[int | None, int | None], int]] = {}

    async def poll() -> None:
        for _ in range(100):
            status, body = await context.get()
            assert status == 200
            (game,), bad = parse_scoreboard(body, "basketball/nba")
            assert bad == 0
            winner = game.winner.abbreviation if game.winner else None
            away_token = market.token_ids[1]
            depth = len(exchange.book_levels(away_token)[1])
            seen[trio.current_time()] = (game.state, game.completed, winner, exchange.best_prices(away_token), depth)
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        await nursery.start(sports.run, context)
        nursery.start_soon(poll)

    assert seen[5.0][:3] == (GameState.PRE, False, None)
    assert seen[40.0][:3] == (GameState.IN, False, None)
    mid_game_bid, mid_game_ask = seen[40.0][3]
    assert mid_game_bid is not None
    assert mid_game_ask is not None
    assert 3500 <= mid_game_bid < mid_game_ask <= 6500
    # final at 70 s: the away team (token 1) won and its token still offers 0.95 until 90 s, then 0.99
    assert seen[71.0][:3] == (GameState.POST, True, "BOS")
    assert seen[71.0][3:] == ((8500, 9500), 5)  # with depth behind the stale ask
    assert seen[89.0][3] == (8500, 9500)
    assert seen[91.0][3:] == ((9800, 9900), 1)  # nothing can rest above 0.99
    # resolve_after_secs (30) after the window the market resolves on the result: the away team, outcome 1
    assert sports.phase == "resolved"
    resolution = exchange.resolution(market.condition_id)
    assert resolution is not None
    assert (resolution.winner, resolution.resolved_at) == (1, sports.resolves_at) == (1, T0 + 120)
    assert exchange.best_prices(market.token_ids[1]) == (None, None)


async def test_espn_faults_down_junk_and_a_final_that_flips_back_once(autojump_clock: trio.testing.MockClock) -> None:
    sports = scenario(winner="home", espn_down="1", espn_junk="1", flip_final="true", start_in_secs="0")
    exchange = Exchange(*sports.listing())
    sports.setup(exchange, T0)
    context = Context(exchange)
    async with trio.open_nursery() as nursery:
        await nursery.start(sports.run, context)
        assert (await context.get())[0] == 503
        status, body = await context.get()
        with pytest.raises(EspnBadReply):
            parse_scoreboard(body)
        assert status == 200
        await trio.sleep(61)
        states = []
        for _ in range(4):
            (game,), _ = parse_scoreboard((await context.get())[1])
            states.append((game.state, game.winner.abbreviation if game.winner else None))
        assert states == [
            (GameState.POST, "LAL"),
            (GameState.IN, None),
            (GameState.POST, "LAL"),
            (GameState.POST, "LAL"),
        ]
        assert (await context.get("/apis/site/v2/sports/football/nfl/scoreboard"))[
            1
        ] == b'{"leagues":[{"id":"nfl","abbreviation":"NFL","slug":"nfl","name":"NFL"}],"events":[]}'
        assert (await context.get("/apis/nope"))[0] == 404
        nursery.cancel_scope.cancel()
    assert sports.board.stats.down == 1
    assert sports.board.stats.junk == 1
    assert sports.board.stats.flipped == 1


async def test_over_sockets_the_engine_client_reads_the_game_and_gamma_lists_its_market() -> None:
    params = {"start_in_secs": "0", "duration_secs": "0.3", "window_secs": "0.3", "step_secs": "0.05", "winner": "home"}
    async with (
        open_sim_venue(SimConfig(scenario="sports", seed=2, scenario_params=params, rate_limits=None)) as sim,
        httpx.AsyncClient(timeout=5) as http,
    ):
        client = EspnClient(http, sim.urls.espn)
        (market,) = (await http.get(sim.urls.gamma + "/markets")).json()
        assert market["question"] == "Lakers vs. Celtics"
        assert json.loads(market["outcomes"]) == ["Lakers", "Celtics"]
        with trio.fail_after(5):
            while True:
                (game,) = await client.scoreboard("basketball", "nba")
                if game.winner is not None:
                    break
                await trio.sleep(0.05)
        assert game.winner.abbreviation == "LAL"
        assert all(game.competitor(name) is not None for name in json.loads(market["outcomes"]))
        assert game.start is not None
        lead = datetime.fromisoformat(market["endDate"]) - game.start.astimezone(UTC)
        assert 0 <= lead.total_seconds() <= 3 * 86_400  # what the sniper's auto-match asks of a market

        armed = await http.post(sim.urls.espn + "/_sim/faults", json={"kind": "down", "count": 2})
        assert armed.json() == {"result": "espn down armed"}
        assert (await http.get(sim.urls.espn + "/_sim/faults")).json() == [{"kind": "down", "remaining": 2}]
        with pytest.raises(EspnUnavailable):
            await client.scoreboard("basketball", "nba")
        await http.delete(sim.urls.espn + "/_sim/faults")
        assert len(await client.scoreboard("basketball", "nba")) == 1
        with pytest.raises(EspnRequestError):
            await client.scoreboard("basketball", "nba-nope/x")
        bad = await http.post(sim.urls.espn + "/_sim/faults", json={"kind": "meteor"})
        assert bad.status_code == 400


def test_bad_parameters_are_clear() -> None:
    with pytest.raises(ConfigError, match="winner: expected home, away or random"):
        scenario(winner="draw")
    with pytest.raises(ConfigError, match="window_ask"):
        scenario(window_ask="1.2")
    with pytest.raises(ConfigError, match="unknown sports scenario parameter 'colour'"):
        scenario(colour="red")
    with pytest.raises(ConfigError, match="different names"):
        scenario(away_short="Lakers")


def _sniping(tmp_path: Path, params: tuple[str, ...]) -> Settings:
    """Paper against the in-process sim's `sports` scenario, the sniper on, ESPN polled every 0.1 s."""
    return Settings(
        run=RunSettings(database_url=f"sqlite:{tmp_path / 'trader.sqlite3'}", drain_secs=2.0),
        http=HttpSettings(port=0),
        sim=SimSettings(scenario="sports", seed=3, params=params),
        sniper=SniperSettings(enabled=True, auto_match=True),
        espn=EspnSettings(leagues=("basketball/nba",), poll_interval_secs=0.1),
    )


async def test_the_engine_snipes_the_winner_in_the_window_despite_a_flipped_final(tmp_path: Path) -> None:
    params = (
        "start_in_secs=0.3",
        "duration_secs=0.7",
        "window_secs=10",
        "step_secs=0.05",
        "winner=away",
        "flip_final=true",
    )
    config = _sniping(tmp_path, params)
    stop = trio.Event()
    result: list[RunSummary] = []

    async def run(*, task_status: trio.TaskStatus[object]) -> None:
        result.append(await run_trader(config, stop=stop.wait, task_status=task_status))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            engine = await nursery.start(run)
            execution = engine.execution
            while execution.statistics().orders.fills < 1:  # noqa: ASYNC110 - the engine exposes counters
                await trio.sleep(0.05)
            stop.set()
    (summary,) = result
    assert summary.fills == 1
    assert summary.intents == 1  # once per market, ever
    ((token, position),) = summary.positions.items()
    assert engine.sim is not None
    sim_market = engine.sim.exchange.markets[0]
    assert token == sim_market.token_ids[1]  # the away team's token: the winner
    assert Decimal(position["quantity"]) > 0


@pytest.mark.timeout(120)  # two end-to-end runs
async def test_a_restart_knows_what_was_sniped_and_does_not_try_it_again(tmp_path: Path) -> None:
    """The store's sniped markets are loaded at start: after a restart the sniper sees the same game end on the same
    market and does not even ask the store to claim it again (the claim would refuse it, but a store slow to answer
    or down would leave the snipe to chance, and each refusal is a needless trip)."""
    from trader.strategies.sniper import Sniper

    def _games(board: object) -> list[str]:
        return [] if board is None else list(board.games)  # type: ignore[attr-defined]

    params = ("start_in_secs=0.3", "duration_secs=0.7", "window_secs=30", "step_secs=0.05", "winner=away")
    config = _sniping(tmp_path, params)

    async def run(until: str) -> tuple[RunSummary, int]:
        stop = trio.Event()
        result: list[RunSummary] = []

        async def engine_task(*, task_status: trio.TaskStatus[object]) -> None:
            result.append(await run_trader(config, stop=stop.wait, task_status=task_status))

        with trio.fail_after(45):
            async with trio.open_nursery() as nursery:
                engine = await nursery.start(engine_task)
                core = engine.control.core
                (sniper,) = [s for s in core.strategies if isinstance(s, Sniper)]

                def reached() -> bool:
                    if until == "filled":
                        return bool(core.execution.statistics().orders.fills >= 1)
                    return any(sniper.confirmed(game_id) for game_id in _games(core.espn.latest()))

                while not reached():  # noqa: ASYNC110 - the engine exposes counters
                    await trio.sleep(0.05)
                if until != "filled":
                    await trio.sleep(1.0)  # the strategy engine evaluates every 0.1 s: ten chances to snipe
                refused = core.strategy_engine.statistics().claims_refused
                stop.set()
        return result[0], refused

    first, _ = await run("filled")
    assert (first.intents, first.fills) == (1, 1)
    second, refused = await run("final confirmed")
    assert (second.intents, second.fills) == (0, 0)
    assert refused == 0  # it knew: no claim was even tried
