"""The sniper: two consecutive final polls, the winner's token, price and return limits, once per market."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trader.domain.enums import OrderType
from trader.domain.games import Competitor, Game, GameState, Scoreboard
from trader.domain.intents import OrderIntent
from trader.domain.market import FeeSchedule
from trader.domain.numbers import Side
from trader.errors import InputError
from trader.strategies.base import ClaimedIntent, StrategyOutput
from trader.strategies.sniper import Sniper, SniperSettings, parse_target

from .builders import D, StateBuilder, make_market

START = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


def team(name: str, abbr: str, *, home: bool, winner: bool = False, score: str | None = None) -> Competitor:
    return Competitor(
        home_away="home" if home else "away",
        winner=winner,
        score=None if score is None else Decimal(score),
        display_name=name,
        abbreviation=abbr,
        short_name=name.rsplit(maxsplit=1)[-1],
    )


def game(*, final: bool = True, lakers_win: bool = True, game_id: str = "401") -> Game:
    return Game(
        game_id=game_id,
        name="Boston Celtics at Los Angeles Lakers",
        state=GameState.POST if final else GameState.IN,
        completed=final,
        status_name="STATUS_FINAL" if final else "STATUS_IN_PROGRESS",
        competitors=(
            team(
                "Los Angeles Lakers", "LAL", home=True, winner=final and lakers_win, score="110" if lakers_win else "99"
            ),
            team("Boston Celtics", "BOS", home=False, winner=final and not lakers_win, score="102"),
        ),
        league="basketball/nba",
        start=START,
    )


def board(seq: int, *games: Game) -> Scoreboard:
    return Scoreboard(poll_seq=seq, polled_at=float(seq), games={g.game_id: g for g in games})


MARKET = make_market(1, question="Will the Lakers beat the Celtics?", end_date=START + timedelta(days=1))
TARGET = f"{MARKET.condition_id}=401:LAL"


def books(
    yes_asks: list[tuple[str, str]] | None = None, no_asks: list[tuple[str, str]] | None = None, **kw: object
) -> StateBuilder:
    sb = StateBuilder()
    sb.market(
        kw.pop("market", MARKET),  # type: ignore[arg-type]
        yes=((), yes_asks if yes_asks is not None else [("0.95", "50"), ("0.99", "100")]),
        no=((), no_asks if no_asks is not None else [("0.05", "100")]),
        **kw,  # type: ignore[arg-type]
    )
    return sb


def claimed(outputs: Sequence[StrategyOutput]) -> ClaimedIntent:
    assert len(outputs) == 1
    (item,) = outputs
    assert isinstance(item, ClaimedIntent)
    return item


def bought(item: ClaimedIntent) -> OrderIntent:
    assert isinstance(item.intent, OrderIntent)
    return item.intent


def sniper(**settings: object) -> Sniper:
    settings.setdefault("enabled", True)
    settings.setdefault("targets", (TARGET,))
    return Sniper(SniperSettings(**settings))  # type: ignore[arg-type]


def test_buys_the_winner_after_two_consecutive_final_polls() -> None:
    s, sb = sniper(), books()
    assert s.on_state(sb.state(scoreboard=board(1, game(final=False)))) == []
    assert s.on_state(sb.state(scoreboard=board(2, game()))) == []  # first final poll
    assert s.on_state(sb.state(scoreboard=board(2, game()))) == []  # the same poll again is not a second poll
    item = claimed(s.on_state(sb.state(scoreboard=board(3, game()))))
    intent = bought(item)
    assert (intent.token_id, intent.side, intent.price, intent.size) == (
        MARKET.yes_token_id,
        Side.BUY,
        D("0.95"),
        D(50),
    )
    assert intent.order_type is OrderType.FAK
    assert (item.claim_key, item.token_id) == (MARKET.condition_id, MARKET.yes_token_id)
    assert item.detail["game_id"] == "401"
    assert item.detail["winner"] == "Los Angeles Lakers"
    assert s.sniped == {MARKET.condition_id}
    assert s.on_state(sb.state(scoreboard=board(4, game()))) == []  # never twice


def test_a_poll_that_contradicts_or_misses_the_final_starts_over() -> None:
    s, sb = sniper(), books()
    s.on_state(sb.state(scoreboard=board(1, game())))
    s.on_state(sb.state(scoreboard=board(2, game(final=False))))  # ESPN took it back
    assert s.on_state(sb.state(scoreboard=board(3, game()))) == []
    s.on_state(sb.state(scoreboard=board(4)))  # missing from a poll
    assert s.on_state(sb.state(scoreboard=board(5, game()))) == []
    s2 = sniper()
    s2.on_state(sb.state(scoreboard=board(1, game())))
    assert s2.on_state(sb.state(scoreboard=board(2, game(lakers_win=False)))) == []  # a different winner
    s3 = sniper()
    s3.on_state(sb.state(scoreboard=board(1, game())))
    assert s3.on_state(sb.state(scoreboard=board(3, game()))) == []  # a poll in between was not seen
    assert s3.on_state(sb.state()) == []  # no scoreboard at all
    assert not s3.confirmed("401")


def test_when_the_target_team_lost_the_no_token_is_bought() -> None:
    s, sb = sniper(), books(no_asks=[("0.96", "30")])
    s.on_state(sb.state(scoreboard=board(1, game(lakers_win=False))))
    intent = bought(claimed(s.on_state(sb.state(scoreboard=board(2, game(lakers_win=False))))))
    assert (intent.token_id, intent.price, intent.size) == (MARKET.no_token_id, D("0.96"), D(30))


def confirmed_sniper(**settings: object) -> Sniper:
    s = sniper(**settings)
    s.on_state(books().state(scoreboard=board(1, game())))
    return s


def test_max_price_min_return_and_fees_limit_what_is_taken() -> None:
    two = board(2, game())
    assert confirmed_sniper().on_state(books([("0.99", "100")]).state(scoreboard=two)) == []  # above max_price
    # return (1 - 0.996) / 0.996 = 0.4%: below min_return 0.5% even with max_price lifted
    market = make_market(1, tick="0.001", end_date=MARKET.end_date)
    sb = books([("0.996", "100")], market=market)
    assert confirmed_sniper(max_price=D("0.999")).on_state(sb.state(scoreboard=two)) == []
    sb = books([("0.994", "100")], market=market)
    assert bought(claimed(confirmed_sniper(max_price=D("0.999")).on_state(sb.state(scoreboard=two)))).price == D(
        "0.994"
    )
    # a fee of 0.9 * 0.97 * 0.03 = 0.02619 makes 0.97 cost 0.99619: a 0.38% return
    fees = FeeSchedule(rate=D("0.9"), exponent=1)
    sb = books([("0.97", "100")], market=make_market(1, fees=fees, end_date=MARKET.end_date))
    assert confirmed_sniper().on_state(sb.state(scoreboard=two)) == []


def test_the_budget_caps_the_snipe() -> None:
    s = confirmed_sniper(max_notional_usd=D(10))
    intent = bought(claimed(s.on_state(books().state(scoreboard=board(2, game())))))
    assert (intent.price, intent.size) == (D("0.95"), D("10.52"))


def test_persisted_snipes_are_never_bought_again() -> None:
    s = Sniper(SniperSettings(targets=(TARGET,)), already_sniped=[MARKET.condition_id])
    sb = books()
    s.on_state(sb.state(scoreboard=board(1, game())))
    assert s.on_state(sb.state(scoreboard=board(2, game()))) == []


def test_waits_for_a_usable_book_while_the_result_stands() -> None:
    s = confirmed_sniper()
    assert s.on_state(books(suspect=True).state(scoreboard=board(2, game()))) == []
    assert s.on_state(books([]).state(scoreboard=board(3, game()))) == []  # no asks at all
    assert bought(claimed(s.on_state(books().state(scoreboard=board(4, game()))))).price == D("0.95")


def test_a_target_naming_a_team_not_in_the_game_is_ignored() -> None:
    s = Sniper(SniperSettings(targets=(f"{MARKET.condition_id}=401:NYK",)))
    sb = books()
    s.on_state(sb.state(scoreboard=board(1, game())))
    assert s.on_state(sb.state(scoreboard=board(2, game()))) == []


def auto(market_changes: dict[str, object], *games: Game) -> list[StrategyOutput]:
    market = make_market(2, **market_changes)  # type: ignore[arg-type]
    s = Sniper(SniperSettings(auto_match=True))
    sb = books(market=market)
    s.on_state(sb.state(scoreboard=board(1, *games)))
    return list(s.on_state(sb.state(scoreboard=board(2, *games))))


def test_auto_match_by_outcome_names_or_question() -> None:
    end = {"end_date": START + timedelta(hours=6)}
    by_outcomes = auto({"outcomes": ("Celtics", "Lakers"), "question": "Celtics vs. Lakers", **end}, game())
    assert bought(claimed(by_outcomes)).token_id == make_market(2).no_token_id  # outcome 1 is the Lakers
    by_question = auto({"question": "Will the Celtics beat the Lakers?", **end}, game())
    assert bought(claimed(by_question)).token_id == make_market(2).no_token_id  # the Celtics lost
    by_question = auto({"question": "Will LAL win against BOS on Nov 19?", **end}, game())
    assert bought(claimed(by_question)).token_id == make_market(2).yes_token_id


def test_auto_match_refuses_anything_unclear() -> None:
    end = {"end_date": START + timedelta(hours=6)}
    assert auto({"question": "Will the Lakers win the title?", **end}, game()) == []  # the other team is not named
    assert auto({"question": "Lakers vs. Celtics: who wins?", **end}, game()) == []  # no "will X win"
    assert auto({"question": "Will the Celtics beat the Lakers?"}, game()) == []  # no end date
    late = {"end_date": START + timedelta(days=10)}
    assert auto({"question": "Will the Celtics beat the Lakers?", **late}, game()) == []  # another game
    early = {"end_date": START - timedelta(days=1)}
    assert auto({"question": "Will the Celtics beat the Lakers?", **early}, game()) == []
    twice = (game(), game(game_id="402"))
    assert auto({"question": "Will the Celtics beat the Lakers?", **end}, *twice) == []  # two games match
    assert auto({"outcomes": ("Knicks", "Lakers"), **end}, game()) == []
    assert auto({"outcomes": ("Lakers", "LAL"), **end}, game()) == []  # both outcomes are the same team
    # off by default
    market = make_market(2, question="Will the Celtics beat the Lakers?", end_date=START + timedelta(hours=6))
    s, sb = Sniper(SniperSettings()), books(market=market)
    s.on_state(sb.state(scoreboard=board(1, game())))
    assert s.on_state(sb.state(scoreboard=board(2, game()))) == []


def test_targets_and_settings_are_checked() -> None:
    assert parse_target(" 0xabc = 401585601 : LAL ").game_id == "401585601"
    for bad in ("0xabc", "0xabc=401", "=401:LAL", "0xabc=:LAL", "0xabc=401:"):
        with pytest.raises(InputError, match=r"sniper\.targets"):
            parse_target(bad)
    with pytest.raises(InputError):
        SniperSettings(targets=("junk",))
    with pytest.raises(ValueError, match="confirmations"):
        SniperSettings(confirmations=0)
    with pytest.raises(ValueError, match="max_price"):
        SniperSettings(max_price=D(1))
    with pytest.raises(ValueError, match="order_type"):
        SniperSettings(order_type=OrderType.GTC)
    with pytest.raises(ValueError, match="min_return"):
        SniperSettings(min_return=D(-1))
    with pytest.raises(ValueError, match="max_book_age_secs"):
        SniperSettings(max_book_age_secs=0)
