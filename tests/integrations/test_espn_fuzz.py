"""Hypothesis: whatever bytes ESPN answers, `parse_scoreboard` returns the games it could read and a count of the
events it skipped, or raises the documented `EspnBadReply`. Nothing else escapes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.fuzzing import inputs
from trader.domain.numbers import within_limits
from trader.integrations.espn import EspnBadReply, parse_scoreboard

pytestmark = pytest.mark.usefixtures("engine_recursion_limit")


def competitor(side: str, score: str, name: str, abbr: str) -> dict[str, object]:
    team = {"displayName": name, "abbreviation": abbr, "shortDisplayName": name.rsplit(maxsplit=1)[-1]}
    return {"homeAway": side, "winner": side == "home", "score": score, "team": team}


EVENT = {
    "id": "401",
    "name": "Boston Celtics at Los Angeles Lakers",
    "date": "2026-11-20T03:30Z",
    "competitions": [
        {
            "competitors": [
                competitor("home", "110", "Los Angeles Lakers", "LAL"),
                competitor("away", "102", "Boston Celtics", "BOS"),
            ],
            "status": {"type": {"state": "post", "completed": True, "name": "STATUS_FINAL"}},
        }
    ],
}
SEEDS = [json.dumps({"events": [EVENT]}).encode(), json.dumps({"events": [EVENT, EVENT | {"id": 402}]}).encode()]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(inputs(SEEDS))
@example(b'"\x80"')
@example(b'{"events": ["\xff"]}')
@example(b'{"events": [' + b"[" * 20_000 + b"]}")
def test_any_reply_is_games_and_a_count_of_bad_events_or_a_bad_reply(body: bytes) -> None:
    try:
        games, bad = parse_scoreboard(body, "basketball/nba")
    except EspnBadReply:
        return
    assert bad >= 0
    for game in games:
        assert len(game.competitors) == 2
        for c in game.competitors:
            assert c.score is None or (isinstance(c.score, Decimal) and within_limits(c.score))


@pytest.mark.parametrize("body", [b'"\x80"', b'{"events": "\xff"}', b"[" * 20_000, b'{"events": [' + b"[" * 5000])
def test_a_reply_that_is_not_utf8_json_is_a_bad_reply(body: bytes) -> None:
    with pytest.raises(EspnBadReply, match="not a scoreboard"):
        parse_scoreboard(body)


def test_an_event_that_is_not_utf8_is_skipped_and_counted() -> None:
    body = json.dumps({"events": [EVENT]}).encode()[:-2] + b', {"id": "\xff", "competitions": []}]}'

    games, bad = parse_scoreboard(body)

    assert [game.game_id for game in games] == ["401"]
    assert bad == 1
