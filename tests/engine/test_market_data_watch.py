"""`trader watch`: market lookup, the live screen, argument errors."""

from __future__ import annotations

import argparse
import io
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.engine.test_market_data import NO, SAMPLE, YES, FakeMarketVenue
from trader.cli import build_parser, main
from trader.commands.watch import render, resolve, run, watch
from trader.domain.numbers import Side
from trader.engine.books import Books
from trader.engine.market_data import MarketDataService
from trader.errors import ConfigError
from trader.venues.polymarket.gamma import DiscoveredMarket, GammaClient
from trader.venues.polymarket.market_ws import PolymarketMarketFeed

D = Decimal


def gamma_item(slug: str, yes: str, no: str, condition_id: str) -> dict[str, Any]:
    return {
        "id": "1",
        "conditionId": condition_id,
        "question": "Will it?",
        "slug": slug,
        "outcomes": '["Yes", "No"]',
        "clobTokenIds": json.dumps([yes, no]),
        "active": True,
        "closed": True,
        "acceptingOrders": False,
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "feesEnabled": True,  # no schedule: fine for watching
    }


async def test_markets_are_resolved_by_slug_condition_id_or_token_id_and_added_up() -> None:
    seen: list[httpx.QueryParams] = []
    listing = [
        gamma_item("a", "11", "12", "0xa"),
        gamma_item("b", "21", "22", "0xb"),
        gamma_item("c", "31", "32", "0xc"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        params = request.url.params
        matches = [
            m
            for m in listing
            if (
                m["slug"] in params.get_list("slug")
                or m["conditionId"] in params.get_list("condition_ids")
                or set(json.loads(m["clobTokenIds"])) & set(params.get_list("clob_token_ids"))
            )
            and str(m["closed"]).lower() == params["closed"]
        ]
        return httpx.Response(200, json={"markets": matches})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        found = await resolve(GammaClient(http, "https://gamma.test"), ["a"], ["0xb"], ["12", "32"])
    assert sorted(d.market.slug for d in found) == ["a", "b", "c"]
    assert len(seen) == 6  # each kind of selector, open and closed (keyset lists open markets unless asked)
    assert "active" not in seen[0]
    assert [p["closed"] for p in seen] == ["false", "true"] * 3  # closed markets can be watched too
    assert all(not d.fees_known for d in found)


async def test_the_screen_shows_top_of_book_and_health() -> None:
    books = Books()
    cell = books.add(SAMPLE)
    cell.yes.book.apply_snapshot([(D("0.48"), D("100"))], [(D("0.52"), D("40.5"))], now=0)
    cell.yes.ready, cell.yes.confirmed_at = True, 1.0
    cell.no.suspect, cell.no.suspect_reason = True, "BEST_PRICE_MISMATCH"
    service = MarketDataService(PolymarketMarketFeed(lambda: pytest.fail("not connecting")), books)
    screen = render(books, service.statistics(), now=3.5)
    lines = screen.splitlines()
    assert lines[0] == "sample  tick 0.01"
    assert lines[2].split() == ["Yes", "0.48", "x", "100", "0.52", "x", "40.5", "0.50", "2.5s", "READY"]
    assert lines[3].split() == ["No", "-", "-", "-", "-", "NOT", "READY", "SUSPECT(BEST_PRICE_MISMATCH)"]
    assert "books ready 1/2" in screen
    assert "drops: none" in screen


async def test_watch_streams_the_books_and_redraws(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    venue = FakeMarketVenue(nursery)
    venue.book(YES).bids[D("0.40")] = D("10")
    venue.book(NO).asks[D("0.60")] = D("10")
    out = io.StringIO()

    async def move() -> None:
        await venue.subscribed.wait()
        await trio.sleep(1.2)
        await venue.set_level(YES, Side.SELL, "0.45", "3")

    nursery.start_soon(move)
    stats = await watch(
        venue.feed(),
        [DiscoveredMarket(SAMPLE, "1")],
        out=out,
        refresh_secs=0.5,
        duration_secs=2.1,
        redraw=True,
    )
    screens = out.getvalue().split("\x1b[H\x1b[2J")[1:]
    assert len(screens) == 5  # t = 0, 0.5, 1.0, 1.5, 2.0
    assert "0.40 x 10" in screens[1]
    assert "0.45 x 3" not in screens[2]
    assert "0.45 x 3" in screens[3]
    assert "books ready 2/2" in screens[-1]
    assert stats.ready_books == 0  # the service has stopped: nothing is ready any more
    assert stats.frames >= 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["watch"], "name at least one market"),
        (["watch", "--slug", "x", "--refresh-secs", "0"], "--refresh-secs"),
        (["watch", "--slug", "x", "--duration-secs", "-1"], "--duration-secs"),
        (["watch", "--slug", "x", "--ws-url", "http://nope"], "ws://"),
        (["watch", "--slug", "x", "--log-level", "LOUD"], "--log-level"),
    ],
)
def test_bad_arguments_are_config_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser("watch").parse_args(argv)
    with pytest.raises(ConfigError, match=message):
        run(args)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_gamma_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # structlog is configured once per process; keep it off pytest's captured (and later closed) stderr
    monkeypatch.setattr("trader.commands.watch.configure_logging", lambda **_: None)
    status = main(["watch", "--slug", "x", "--gamma-url", "http://127.0.0.1:9", "--duration-secs", "1"])
    assert status == 1  # a failure at run time, not a usage error
    assert "could not look the markets up on Gamma" in capsys.readouterr().err


def test_watch_is_a_registered_command() -> None:
    args = build_parser("watch").parse_args(["watch", "--token-id", "1", "--token-id", "2"])
    assert isinstance(args, argparse.Namespace)
    assert args.token_id == ["1", "2"]
