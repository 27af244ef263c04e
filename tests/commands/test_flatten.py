"""`trader flatten` against a real simulated venue: cancel everything, then sell every position with FAK orders."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
import trio

from tests.commands._sim import (
    ADDRESS,
    KEY,
    SIM_MARKET,
    YES,
    cli,
    other_trader,
    our_shares,
    place,
    point_at,
    sim_and_venue,
)
from trader.cli import main
from trader.commands.flatten import FlattenOptions, Sell, ask_on_terminal, flatten, plan_sell, sell_price
from trader.domain.numbers import Side
from trader.settings import load_settings
from trader.venues.sim.markets import make_market

D = Decimal


@pytest.mark.parametrize(
    ("bid", "slippage", "tick", "price"),
    [
        ("0.55", "0.02", "0.01", "0.53"),
        ("0.553", "0.0125", "0.001", "0.541"),  # 0.5405 rounds UP: never more than the cap below the bid
        ("0.55", "0", "0.01", "0.55"),
        ("0.02", "0.05", "0.01", "0.01"),  # not below the lowest price
        ("0.9712", "0.0001", "0.0001", "0.9711"),
    ],
)
def test_sell_price_is_on_the_grid_within_the_cap(bid: str, slippage: str, tick: str, price: str) -> None:
    assert sell_price(D(bid), D(slippage), D(tick)) == D(price)


def test_plan_floors_the_size_and_skips_what_cannot_be_sold() -> None:
    def sell(shares: str, bid: str | None) -> Sell:
        return plan_sell(
            token_id="1",
            condition_id="0xc",
            shares=D(shares),
            best_bid=None if bid is None else D(bid),
            tick_size=D("0.01"),
            min_order_size=D(5),
            max_slippage=D("0.02"),
        )

    planned = sell("12.349999", "0.40")
    assert (planned.price, planned.size, planned.skip) == (D("0.38"), D("12.34"), None)
    assert sell("4.999", "0.40").skip == "below the market's minimum order size (5 shares)"
    assert sell("10", None).skip == "no bid in the book"


async def test_dry_run_then_flatten_then_the_rest_with_more_slippage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_sink: io.StringIO
) -> None:
    with trio.fail_after(60):
        async with sim_and_venue() as (sim, venue):
            other_trader(sim, Side.SELL, "0.60", "20")
            await place(sim, venue, Side.BUY, "0.60", "20")  # we hold 20 YES
            resting, _ = await place(sim, venue, Side.BUY, "0.30", "10")  # and one open order
            other_trader(sim, Side.BUY, "0.55", "12")
            other_trader(sim, Side.BUY, "0.50", "20")
            point_at(monkeypatch, sim)
            assert our_shares(sim, YES) == D(20)

            assert await cli("flatten", "--dry-run") == 0
            dry = json.loads(capsys.readouterr().out)

            assert [o["order_id"] for o in dry["cancel"]] == [resting.order_id]
            assert dry["plan"] == [
                {"token_id": YES, "shares": "20", "best_bid": "0.55", "limit_price": "0.53", "size": "20", "skip": None}
            ]
            assert [o.order_id for o in await venue.open_orders()] == [resting.order_id]  # nothing was sent
            assert our_shares(sim, YES) == D(20)

            assert await cli("flatten", "--yes") == 1  # 0.50 is below the cap: 8 shares remain
            done = json.loads(capsys.readouterr().out)

            assert done["canceled"] == [resting.order_id]
            assert await venue.open_orders() == []
            (sold,) = done["sells"]
            assert (sold["status"], sold["limit_price"], sold["sold"], sold["avg_price"]) == (
                "PARTIAL",
                "0.53",
                "12",
                "0.55",
            )
            assert done["remaining"] == [{"token_id": YES, "shares": "8", "sellable": True, "note": None}]
            assert done["flat"] is False
            assert our_shares(sim, YES) == D(8)

            assert await cli("flatten", "--yes", "--max-slippage", "0.05") == 0
            rest = json.loads(capsys.readouterr().out)

            assert [(s["status"], s["sold"], s["avg_price"]) for s in rest["sells"]] == [("SOLD", "8", "0.5")]
            assert (rest["remaining"], rest["flat"]) == ([], True)
            assert our_shares(sim, YES) == D(0)
    out, err = capsys.readouterr()
    assert KEY[2:] not in out + err + log_sink.getvalue()


async def test_a_position_in_a_v3_market_is_sold_with_an_order_signed_for_exchange_v3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_sink: io.StringIO
) -> None:
    # a neg-risk market in the protocol-v2 namespace: the venue says neg risk, but its orders go to Exchange V3
    v3_market = make_market("operator-tools-v3", question="Will V3 flatten?", neg_risk=True, protocol_v2=True)
    v3_yes = v3_market.token_ids[0]
    with trio.fail_after(60):
        async with sim_and_venue((SIM_MARKET, v3_market)) as (sim, venue):
            other_trader(sim, Side.SELL, "0.60", "20", token_id=v3_yes)
            await place(sim, venue, Side.BUY, "0.60", "20", token_id=v3_yes)
            other_trader(sim, Side.BUY, "0.55", "20", token_id=v3_yes)
            point_at(monkeypatch, sim)

            assert await cli("flatten", "--yes") == 0
            done = json.loads(capsys.readouterr().out)

            (sold,) = done["sells"]
            assert (sold["token_id"], sold["status"], sold["sold"]) == (v3_yes, "SOLD", "20")
            # the sim took it, so its signature verified for Exchange V3, and its id is the one flatten computed
            (at_sim,) = [
                o for o in sim.exchange.orders() if o.maker_address.lower() == ADDRESS.lower() and o.side is Side.SELL
            ]
            assert at_sim.order_id == sold["order_id"]
            assert our_shares(sim, v3_yes) == D(0)


async def test_a_declined_confirmation_sends_nothing(log_sink: io.StringIO) -> None:
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    with trio.fail_after(60):
        async with sim_and_venue() as (sim, venue):
            resting, _ = await place(sim, venue, Side.BUY, "0.30", "10")
            environ = {
                "TRADER_PRIVATE_KEY": KEY,
                "TRADER_ENDPOINTS__REST_URL": sim.urls.rest,
                "TRADER_ENDPOINTS__WS_USER_URL": sim.urls.ws_user,
            }
            options = FlattenOptions(
                dry_run=False, max_slippage=D("0.02"), tokens=(), database_url=None, confirm=decline
            )

            status, report = await flatten(load_settings(environ, dotenv=None), options)

            assert status == 1
            assert report["aborted"] == "not confirmed: nothing was sent"
            assert questions == ["cancel 1 open order(s), then sell:"]
            assert [o.order_id for o in await venue.open_orders()] == [resting.order_id]
    assert KEY[2:] not in log_sink.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["flatten"], "refusing to flatten without --yes: standard input is not a terminal"),
        (["flatten", "--yes", "--token", "abc"], "--token: expected a token id"),
        (["flatten", "--yes", "--database-url", "sqlite:missing.db"], "no database at missing.db"),
    ],
)
def test_refusals_exit_2(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADER_PRIVATE_KEY", KEY)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1", "-0.01", "two cents", "NaN"])
def test_a_bad_slippage_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["flatten", "--dry-run", "--max-slippage", value])
    assert exit_info.value.code == 2
    assert "argument --max-slippage" in capsys.readouterr().err


@pytest.mark.parametrize(("typed", "confirmed"), [("flatten\n", True), ("yes\n", False), ("", False)])
def test_the_terminal_question_wants_the_word_flatten(
    typed: str, confirmed: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert ask_on_terminal("cancel 2 open order(s), then sell:") is confirmed
    assert "cancel 2 open order(s)" in capsys.readouterr().err
