"""`trader reconcile` between a real SQLite store and a real simulated venue, through the live adapter."""

from __future__ import annotations

import dataclasses
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from tests.commands._sim import ADDRESS, KEY, NO, YES, cli, other_trader, our_shares, place, point_at, sim_and_venue
from trader.cli import main
from trader.domain.enums import Liquidity, OrderStatus, TradeStatus
from trader.domain.numbers import Side
from trader.domain.positions import Position
from trader.engine.restart import trade_record_of
from trader.integrations.store import OrderRecord, StoreScope, TradeRecord, TradingMode, open_sqlite_store
from trader.testing import make_order_record
from trader.venues.polymarket.venue import PolymarketVenue
from trader.venues.sim.exchange import ExchangeConfig
from trader.venues.sim.venue import SimVenue

D = Decimal
T0_NS = 1_767_225_600 * 10**9
GHOST_ORDER = "0x" + "ab" * 32


def order_record(order_id: str, *, price: str, size: str) -> OrderRecord:
    """An ACCEPTED buy of YES in the store, without a client order id or a market (as the venue reports one)."""
    return make_order_record(
        order_id,
        client_order_id=None,
        condition_id=None,
        token_id=YES,
        price=price,
        original_size=size,
        created_at_ns=T0_NS,
        updated_at_ns=T0_NS,
    )


async def test_differences_are_reported_then_fixed_to_the_venue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    with trio.fail_after(60):
        async with sim_and_venue() as (sim, venue):
            both, _ = await place(sim, venue, Side.BUY, "0.40", "10")  # open at the venue, and known to the store
            venue_only, _ = await place(sim, venue, Side.BUY, "0.30", "10")  # open at the venue only
            other_trader(sim, Side.SELL, "0.60", "10")
            taken, fill = await place(sim, venue, Side.BUY, "0.60", "10")  # a trade the store never heard of
            assert fill.filled_size == D(10)
            async with open_sqlite_store(database) as store:
                await store.record_order(order_record(both.order_id, price="0.4", size="10.00"))
                await store.record_order(order_record(GHOST_ORDER, price="0.45", size="5"))  # open in the store only
                await store.record_trade(
                    TradeRecord(
                        trade_id="ghost-trade",
                        order_id=GHOST_ORDER,
                        client_order_id=None,
                        token_id=YES,
                        side=Side.BUY,
                        price=D("0.45"),
                        size=D(5),
                        fee=D(0),
                        liquidity=Liquidity.TAKER,
                        status=TradeStatus.MATCHED,
                        match_time_ns=T0_NS,
                        updated_at_ns=T0_NS,
                    )
                )
                await store.record_position(Position(token_id=NO, quantity=D(5), cost_basis=D("2.5")), ts_ns=T0_NS)
            point_at(monkeypatch, sim, database)
            held = our_shares(sim, YES)

            assert await cli("reconcile") == 1
            report = json.loads(capsys.readouterr().out)

            assert report["agree"] is False
            assert [o["order_id"] for o in report["orders"]["open_only_in_store"]] == [GHOST_ORDER]
            assert [o["order_id"] for o in report["orders"]["open_only_at_venue"]] == [venue_only.order_id]
            assert report["orders"]["mismatched"] == []  # 0.4 == 0.40 and 10.00 == 10: values, not texts
            assert held == D(10)
            assert sorted(report["positions"]["mismatched"], key=lambda p: p["token_id"] != NO) == [
                {"token_id": NO, "store": "5", "venue": "0", "difference": "-5", "unsettled_trades_at_venue": 0},
                {"token_id": YES, "store": "0", "venue": "10", "difference": "10", "unsettled_trades_at_venue": 1},
            ]
            assert [t["trade_id"] for t in report["trades"]["only_in_store"]] == ["ghost-trade"]
            (venue_trade,) = report["trades"]["only_at_venue"]
            assert (venue_trade["order_id"], venue_trade["price"], venue_trade["size"]) == (taken.order_id, "0.6", "10")

            assert await cli("reconcile", "--fix") == 0
            fixed = json.loads(capsys.readouterr().out)

            assert fixed["after_fix"]["agree"] is True
            assert sorted(c["change"] for c in fixed["fixed"]) == [
                "order_recorded",
                "order_updated",
                "position_set",
                "position_set",
                "trade_marked_failed",
                "trade_recorded",
            ]
            assert {
                "change": "order_updated",
                "order_id": GHOST_ORDER,
                "status": "CANCELED",
                "reason": "NOT_AT_VENUE",
            } in fixed["fixed"]
            async with open_sqlite_store(database) as store:
                positions = {p.token_id: p for p in await store.load_positions()}
                assert (positions[YES].quantity, positions[NO].quantity) == (held, D(0))
                assert positions[YES].cost_basis == (D("0.6") * held).quantize(D("1E-12"))  # our buy price at the venue
                assert {o.order_id for o in await store.load_open_orders()} == {both.order_id, venue_only.order_id}

            assert await cli("reconcile") == 0  # and they agree from now on
            assert json.loads(capsys.readouterr().out)["agree"] is True
    out, err = capsys.readouterr()
    assert KEY[2:] not in out + err + log_sink.getvalue()
    credentials = venue.credentials
    assert credentials.secret not in log_sink.getvalue()
    assert credentials.passphrase not in log_sink.getvalue()


async def test_an_unreachable_venue_is_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    async with open_sqlite_store(database):
        pass
    monkeypatch.setenv("TRADER_PRIVATE_KEY", KEY)
    monkeypatch.setenv("TRADER_ENDPOINTS__REST_URL", "http://127.0.0.1:9")
    assert await cli("reconcile", "--database-url", f"sqlite:{database}") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("trader: venue: ")
    assert KEY[2:] not in err + log_sink.getvalue()


async def test_a_paper_store_is_never_compared_with_the_venue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    async with open_sqlite_store(database) as store:
        await store.claim_scope(StoreScope(mode=TradingMode.PAPER, venue="sim"), ts_ns=T0_NS)
    monkeypatch.setenv("TRADER_PRIVATE_KEY", KEY)
    monkeypatch.setenv("TRADER_ENDPOINTS__REST_URL", "http://127.0.0.1:9")  # never asked: the store is refused first
    assert await cli("reconcile", "--database-url", f"sqlite:{database}") == 2  # the wrong database named
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"trader: sqlite:{database} keeps the records of paper trading on sim")
    assert "is the database up" not in err  # it is up: it is another account's
    assert f"not of live trading on polymarket for wallet {ADDRESS.lower()}" in err
    assert "venue:" not in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["reconcile"], {}, "trader reconcile needs TRADER_PRIVATE_KEY"),
        (
            ["reconcile", "--database-url", "sqlite:nowhere.db"],
            {"TRADER_PRIVATE_KEY": KEY},
            "no database at nowhere.db",
        ),
        (
            ["reconcile", "--database-url", "mysql://x"],
            {"TRADER_PRIVATE_KEY": KEY},
            "unsupported scheme",
        ),
        (["reconcile"], {"TRADER_PRIVATE_KEY": "0x1234"}, "keys: "),
        (["reconcile"], {"TRADER_PRIVATE_KEY": KEY, "TRADER_API_KEY": "k"}, "give all three of TRADER_API_KEY"),
        (["reconcile"], {"TRADER_PRIVATE_KEY": KEY, "TRADER_RECONCILE": "1"}, "unknown setting(s): TRADER_RECONCILE"),
    ],
)
def test_bad_settings_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In the test's own directory, the default live store exists: the settings are what is wrong.
    Path("trader-live-polymarket.sqlite3").write_bytes(b"")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert KEY[2:] not in out + err


async def test_a_partial_fill_the_store_missed_is_corrected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    with trio.fail_after(60):
        async with sim_and_venue() as (sim, venue):
            resting, _ = await place(sim, venue, Side.BUY, "0.40", "10")
            other_trader(sim, Side.SELL, "0.40", "5")  # fills 5 of our 10
            (trade,) = await venue.trades()
            async with open_sqlite_store(database) as store:
                await store.record_order(order_record(resting.order_id, price="0.40", size="10"))  # thinks: unfilled
                await store.record_trade(
                    TradeRecord(
                        trade_id=trade.trade_id,
                        order_id=trade.order_id,
                        client_order_id=resting.client_order_id,
                        token_id=YES,
                        side=Side.BUY,
                        price=trade.price,
                        size=trade.size,
                        fee=trade.fee,
                        liquidity=trade.liquidity,
                        status=TradeStatus.MINED,  # the venue says MATCHED
                        match_time_ns=T0_NS,
                        updated_at_ns=T0_NS,
                    )
                )
                await store.record_position(Position(token_id=YES, quantity=D(5), cost_basis=D(2)), ts_ns=T0_NS)
            point_at(monkeypatch, sim, database)
            credentials = venue.credentials  # given this time, not derived
            monkeypatch.setenv("TRADER_API_KEY", credentials.api_key)
            monkeypatch.setenv("TRADER_API_SECRET", credentials.secret)
            monkeypatch.setenv("TRADER_API_PASSPHRASE", credentials.passphrase)

            assert await cli("reconcile", "--fix", "--settle-secs", "0") == 0
            report = json.loads(capsys.readouterr().out)

            (order,) = report["orders"]["mismatched"]
            assert (order["store"]["size_matched"], order["venue"]["size_matched"]) == ("0", "5")
            assert set(order["store"]) - set(order["venue"]) == {"client_order_id"}  # only the store knows it
            assert report["trades"]["mismatched"] == []  # the same fill, still settling at the venue: set apart
            (settling,) = report["settling"]["trades"]
            assert (settling["store"], settling["venue"]) == ("MINED", "MATCHED")
            assert report["settling"]["waited_secs"] == 0
            assert report["positions"]["mismatched"] == []
            assert report["after_fix"]["agree"] is True
            async with open_sqlite_store(database) as store:
                (stored,) = await store.load_open_orders()
                assert (stored.status, stored.size_matched) == (OrderStatus.PARTIALLY_FILLED, D(5))
                (stored_trade,) = await store.load_trades()
                assert stored_trade.status is TradeStatus.MATCHED
    out, err = capsys.readouterr()
    assert credentials.secret not in out + err + log_sink.getvalue()
    assert credentials.passphrase not in out + err + log_sink.getvalue()


async def _filled_buy_the_store_heard_as_matched(
    sim: SimVenue, venue: PolymarketVenue, database: Path, *, then: TradeStatus
) -> str:
    """Our buy of 10 YES, filled; the store as a clean stop leaves it: the trade MATCHED (the last status the engine
    heard), the shares held. Returns once the venue's trade has reached `then`."""
    other_trader(sim, Side.SELL, "0.60", "10")
    await place(sim, venue, Side.BUY, "0.60", "10")
    (trade,) = await venue.trades()
    async with open_sqlite_store(database) as store:
        await store.record_trade(trade_record_of(dataclasses.replace(trade, status=TradeStatus.MATCHED), None))
        await store.record_position(Position(token_id=YES, quantity=D(10), cost_basis=D(6)), ts_ns=T0_NS)
    while (await venue.trades())[0].status is not then:  # noqa: ASYNC110 - the venue is polled, as reconcile does
        await trio.sleep(0.05)
    return trade.trade_id


async def test_trades_still_settling_after_a_stop_are_waited_out_not_called_differences(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    settles = ExchangeConfig(seed=5, mined_after_secs=0.2, confirmed_after_secs=4)  # MINED, then CONFIRMED ~4 s on
    with trio.fail_after(25):
        async with sim_and_venue(exchange=settles) as (sim, venue):
            trade_id = await _filled_buy_the_store_heard_as_matched(sim, venue, database, then=TradeStatus.MINED)
            point_at(monkeypatch, sim, database)

            assert await cli("reconcile", "--settle-secs", "15") == 0
            report = json.loads(capsys.readouterr().out)

    assert report["agree"] is True
    assert report["settling"]["trades"] == []  # it settled while reconcile waited
    assert 0.5 <= report["settling"]["waited_secs"] < 15
    assert report["trades"]["status_behind"] == [
        {
            "trade_id": trade_id,
            "order_id": report["trades"]["status_behind"][0]["order_id"],
            "store": "MATCHED",
            "venue": "CONFIRMED",
        }
    ]
    assert report["trades"]["mismatched"] == []


async def test_trades_still_settling_after_the_wait_are_reported_apart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, log_sink: io.StringIO
) -> None:
    database = tmp_path / "trader.sqlite3"
    slow_chain = ExchangeConfig(seed=5, mined_after_secs=0.2, confirmed_after_secs=1e6)  # MINED, never CONFIRMED
    with trio.fail_after(25):
        async with sim_and_venue(exchange=slow_chain) as (sim, venue):
            trade_id = await _filled_buy_the_store_heard_as_matched(sim, venue, database, then=TradeStatus.MINED)
            point_at(monkeypatch, sim, database)

            assert await cli("reconcile", "--settle-secs", "1.5") == 0
            report = json.loads(capsys.readouterr().out)
            assert await cli("reconcile", "--settle-secs", "0", "--fix") == 0
            fixed = json.loads(capsys.readouterr().out)
            async with open_sqlite_store(database) as store:
                (stored,) = await store.load_trades()

    assert report["agree"] is True
    assert 1 <= report["settling"]["waited_secs"] < 3  # the bound, and one read of the venue past it at most
    ((settling),) = report["settling"]["trades"]
    assert (settling["trade_id"], settling["store"], settling["venue"]) == (trade_id, "MATCHED", "MINED")
    assert report["trades"]["mismatched"] == []
    assert {"change": "trade_status", "trade_id": trade_id, "order_id": stored.order_id, "status": "MINED"} in fixed[
        "fixed"
    ]
    assert stored.status is TradeStatus.MINED  # --fix writes the venue's latest step


def test_a_bad_settle_wait_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reconcile", "--settle-secs", "-1"])
    assert exited.value.code == 2
    assert "must be within [0, 3600]" in capsys.readouterr().err
