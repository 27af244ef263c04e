"""The ESPN scoreboard client against httpx.MockTransport, and the poller on MockClock."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trader.domain.games import GameState
from trader.infra.backoff import Backoff
from trader.integrations.espn import (
    EspnBadReply,
    EspnClient,
    EspnPoller,
    EspnRequestError,
    EspnSettings,
    EspnUnavailable,
    parse_scoreboard,
)

BASE = "http://espn.test"


def competitor(name: str, abbr: str, *, home: bool, winner: bool | None = None, score: Any = "0") -> dict[str, Any]:
    c: dict[str, Any] = {
        "homeAway": "home" if home else "away",
        "score": score,
        "team": {"displayName": name, "abbreviation": abbr, "shortDisplayName": name.rsplit(maxsplit=1)[-1]},
    }
    if winner is not None:
        c["winner"] = winner
    return c


def event(
    game_id: str = "401",
    *,
    state: str = "post",
    completed: bool = True,
    status: str = "STATUS_FINAL",
    home_score: Any = "110",
    away_score: Any = "102",
    home_wins: bool | None = True,
) -> dict[str, Any]:
    return {
        "id": game_id,
        "name": "Boston Celtics at Los Angeles Lakers",
        "shortName": "BOS @ LAL",
        "date": "2026-11-20T03:30Z",
        "competitions": [
            {
                "competitors": [
                    competitor(
                        "Los Angeles Lakers",
                        "LAL",
                        home=True,
                        winner=home_wins,
                        score=home_score,
                    ),
                    competitor(
                        "Boston Celtics",
                        "BOS",
                        home=False,
                        winner=None if home_wins is None else not home_wins,
                        score=away_score,
                    ),
                ],
                "status": {"type": {"state": state, "completed": completed, "name": status}},
            }
        ],
    }


def board(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def transport(replies: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(replies))


async def test_a_final_game_parses_with_its_winner() -> None:
    seen: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=board(event()))

    async with transport(reply) as http:
        (game,) = await EspnClient(http, BASE + "/").scoreboard("basketball", "nba")
    assert seen == [f"{BASE}/apis/site/v2/sports/basketball/nba/scoreboard"]
    assert (game.game_id, game.state, game.completed, game.league) == ("401", GameState.POST, True, "basketball/nba")
    assert game.winner is not None
    assert game.winner.display_name == "Los Angeles Lakers"
    assert game.winner.score == Decimal(110)
    assert game.start is not None
    assert game.start.year == 2026
    assert game.competitor("bos") is game.competitors[1]
    assert game.competitor("Celtics") is game.competitors[1]
    assert game.competitor("Knicks") is None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"state": "in", "completed": False, "home_wins": None}, "in play"),
        ({"completed": False}, "not completed"),
        ({"status": "STATUS_POSTPONED"}, "postponed"),
        ({"home_wins": None}, "nobody won (a draw)"),
        ({"home_score": "100", "away_score": "102"}, "the winner has the lower score"),
    ],
)
def test_no_winner_unless_final_completed_and_consistent(changes: dict[str, Any], why: str) -> None:
    (game,), bad = parse_scoreboard(board(event(**changes)))
    assert bad == 0
    assert game.winner is None, why


def test_numeric_and_missing_scores() -> None:
    (game,), _ = parse_scoreboard(board(event(home_score=99, away_score="n/a")))
    assert [c.score for c in game.competitors] == [Decimal(99), None]
    assert game.winner is not None  # a missing score does not block a clear winner flag


def test_malformed_events_are_skipped_and_counted() -> None:
    missing_status = event("402")
    del missing_status["competitions"][0]["status"]
    weird_state = event("403", state="halftime")
    one_team = event("404")
    one_team["competitions"][0]["competitors"].pop()
    no_comp = event("405")
    no_comp["competitions"] = []
    wrong_type = event("406")
    wrong_type["competitions"][0]["competitors"][0]["winner"] = "yes"
    empty_id = event(" ")
    games, bad = parse_scoreboard(
        board(event("401"), missing_status, weird_state, one_team, no_comp, wrong_type, empty_id, {"id": 7})
    )
    assert [g.game_id for g in games] == ["401"]
    assert bad == 7


def test_event_level_status_and_int_ids_are_accepted() -> None:
    e = event()
    e["id"] = 401
    e["status"] = e["competitions"][0].pop("status")
    e["date"] = "not a date"
    (game,), bad = parse_scoreboard(board(e))
    assert (game.game_id, bad, game.start) == ("401", 0, None)


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b"[]", b'{"events": 3}', b'{"leagues": []}'])
async def test_junk_replies_are_bad_replies(body: bytes) -> None:
    async with transport(lambda request: httpx.Response(200, content=body)) as http:
        client = EspnClient(http, BASE)
        with pytest.raises(EspnBadReply, match="not a scoreboard"):
            await client.scoreboard("basketball", "nba")
    assert client.counts.bad_replies == 1


async def test_failures_are_clear_errors() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with transport(down) as http:
        client = EspnClient(http, BASE)
        with pytest.raises(EspnUnavailable, match="ConnectError"):
            await client.scoreboard("basketball", "nba")
    for status, error in ((503, EspnUnavailable), (429, EspnUnavailable), (404, EspnRequestError)):
        async with transport(lambda request, s=status: httpx.Response(s)) as http:  # type: ignore[misc]
            client = EspnClient(http, BASE)
            with pytest.raises(error, match=f"HTTP {status}"):
                await client.scoreboard("basketball", "nba")
        assert client.counts.failures == 1


class Scripted:
    """Replies in order: bytes -> 200 with that body, int -> that status, None -> connection error,
    "hang" -> never answers."""

    def __init__(self, *script: bytes | int | str | None) -> None:
        self.script = list(script)
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        step = self.script.pop(0) if self.script else board()
        if step == "hang":
            await trio.sleep_forever()
        if step is None:
            raise httpx.ConnectError("down", request=request)
        if isinstance(step, int):
            return httpx.Response(step)
        assert isinstance(step, bytes)
        return httpx.Response(200, content=step)


SETTINGS = EspnSettings(
    leagues=("basketball/nba",),
    poll_interval_secs=10.0,
    request_timeout_secs=5.0,
    backoff=Backoff(initial_secs=1.0, max_secs=8.0, jitter=0.0),
)


async def test_poller_publishes_each_successful_poll_and_backs_off_while_espn_is_down(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    script = Scripted(
        board(event(state="in", completed=False, home_wins=None)), None, 500, b"junk", "hang", board(event())
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        poller = EspnPoller(EspnClient(http, BASE), SETTINGS)
        start = trio.current_time()
        await nursery.start(poller.run)
        first = poller.latest()
        assert first is not None
        assert first.poll_seq == 1
        assert first.games["401"].state is GameState.IN
        await trio.sleep(31)
        # polls: 0 ok, 10 down (backoff 1), 11 500 (2), 13 junk (4), 17 hangs until 22 (8), 30 ok
        assert [t - start for t in script.times] == pytest.approx([0, 10, 11, 13, 17, 30])
        latest = poller.latest()
        assert latest is not None
        assert latest.poll_seq == 2
        assert latest.games["401"].winner is not None
        stats = poller.statistics()
        assert (stats.polls, stats.successful_polls, stats.failures, stats.bad_replies) == (6, 2, 3, 1)
        assert (stats.consecutive_failed_polls, stats.games, stats.requests) == (0, 1, 6)
        nursery.cancel_scope.cancel()


async def test_one_league_down_does_not_hide_the_others(autojump_clock: trio.testing.MockClock) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if "nfl" in request.url.path:
            return httpx.Response(502)
        return httpx.Response(200, content=board(event()))

    settings = EspnSettings(leagues=("football/nfl", "basketball/nba"))
    async with transport(reply) as http:
        poller = EspnPoller(EspnClient(http, BASE), settings)
        board_ = await poller.poll_once()
    assert board_ is not None
    assert list(board_.games) == ["401"]
    assert poller.statistics().failures == 1


async def test_no_leagues_means_no_requests(autojump_clock: trio.testing.MockClock) -> None:
    script = Scripted()
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        poller = EspnPoller(EspnClient(http, BASE), EspnSettings())
        with trio.move_on_after(60):
            await poller.run()
    assert script.times == []
    assert poller.latest() is None


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sport/league"):
        EspnSettings(leagues=("nba",))
    with pytest.raises(ValueError, match="sport/league"):
        EspnSettings(leagues=("basketball/../x",))
    with pytest.raises(ValueError, match="poll_interval_secs"):
        EspnSettings(poll_interval_secs=0)
    assert EspnSettings(leagues=("soccer/eng.1", "basketball/mens-college-basketball")).leagues
