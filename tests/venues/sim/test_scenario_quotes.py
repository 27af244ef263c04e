"""The `quotes` scenario: the sim's top of book follows the real bid/ask path, segment boundaries and crossed rows
are honoured, labelled markets converge on their outcome."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
import trio_websocket

from tests.venues.sim._support import T0
from trader.errors import ConfigError
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.scenarios import ScenarioOptions, make_scenario
from trader.venues.sim.scenarios.quotes import QUOTES_SLICE, QuotesScenario, timeline
from trader.venues.sim.venue import SimConfig, open_sim_venue


def quotes(markets: int = 5, **params: str) -> QuotesScenario:
    made = make_scenario("quotes", ScenarioOptions(markets=markets, seed=1, params=params))
    assert isinstance(made, QuotesScenario)
    return made


class Context:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def now(self) -> float:
        return T0 + trio.current_time()

    def add_route(self, prefix: str, handler: object) -> None:
        raise AssertionError("not used")


def test_the_shipped_slice_is_small_attributed_and_lists_its_markets() -> None:
    files = list(QUOTES_SLICE.iterdir())
    assert sum(f.stat().st_size for f in files) < 100_000
    assert "Dinesh Gopalakrishnan" in (QUOTES_SLICE / "NOTICE").read_text()
    assert "CC BY 4.0" in (QUOTES_SLICE / "README.md").read_text()

    scenario = quotes(markets=8)  # more than the slice holds: all five
    markets, events = scenario.listing()

    assert len(markets) == len(events) == 5
    by_slug = {m.slug: m for m in markets}
    pos = by_slug["asc-mlb-mil-pit-2026-07-10-pos-2pt5"]
    assert pos.question == "Spread: Milwaukee Brewers (+2.5)"
    assert pos.tick_size == Decimal("0.001")  # its path has prices like 0.815
    assert by_slug["tc-temp-miahigh-2026-07-11-gte91lt92f"].tick_size == Decimal("0.01")
    assert scenario.stats["empty"] == 13  # polls with neither side, skipped
    assert "collector_outage" in scenario.data.known_issues
    labels = {p.slug: p.label for p in scenario.data.paths}
    assert labels["apdc-trumpadmin-2026-tomhom"] is None
    assert labels["asc-mlb-mil-pit-2026-07-10-neg-2pt5"] == 0


async def test_top_of_book_follows_every_row_in_compressed_time(autojump_clock: trio.testing.MockClock) -> None:
    scenario = quotes(markets=2, speed="600")
    markets, events = scenario.listing()
    exchange = Exchange(markets, events)
    scenario.setup(exchange, T0)
    steps = scenario.schedule
    rows = [(when, index, row) for when, index, row, _ in steps if row is not None]
    times = sorted({when for when, *_ in steps})
    checked = 0

    async def check() -> None:
        nonlocal checked
        start = trio.current_time()
        for n, moment in enumerate(times):
            following = times[n + 1] if n + 1 < len(times) else moment + 1
            await trio.sleep_until(start + (moment + following) / 2)
            for when, index, row, _ in steps:
                if when == moment and row is not None:
                    assert exchange.best_prices(markets[index].token_ids[0]) == (row.bid, row.ask)
                    checked += 1

    async with trio.open_nursery() as nursery:
        await nursery.start(scenario.run, Context(exchange))
        nursery.start_soon(check)

    assert checked == len(rows)  # every row of both markets was the top of book for its interval
    # about 2 minutes between polls, 600x faster: the whole day of rows in well under a minute of sim time
    assert 10 < rows[-1][0] < 60
    for market, path in zip(markets, scenario.data.paths, strict=True):
        resolution = exchange.resolution(market.condition_id)
        if path.label is None:  # no outcome known: its last quotes stay, it never resolves
            assert resolution is None
            assert exchange.best_prices(market.token_ids[0]) == (path.rows[-1].bid, path.rows[-1].ask)
            assert len(exchange.book_levels(market.token_ids[0])[0]) == 5  # depth behind the best bid
        else:  # converged on its real outcome, then resolved on it: the book is empty
            assert resolution is not None
            assert resolution.winner == (0 if path.label == 1 else 1)
            assert exchange.best_prices(market.token_ids[0]) == (None, None)
    labelled = sum(p.label is not None for p in scenario.data.paths)
    assert scenario.stats["converged"] == scenario.stats["resolved"] == labelled > 0


def _write(folder: Path, rows: list[str]) -> None:
    header = '"ts","slug","category","bid","ask","mid","spread","volume24hr","segment"\n'
    with gzip.open(folder / "quotes-2026-07-17.csv.gz", "wt") as handle:
        handle.write(header + "".join(row + "\n" for row in rows))


def test_segments_are_never_bridged_and_crossed_rows_are_skipped(tmp_path: Path) -> None:
    _write(
        tmp_path,
        [
            '2026-07-17 17:20:00.000000,"m","sports",0.40,0.42,0.41,0.02,,1',
            '2026-07-17 17:22:00.000000,"m","sports",0.41,0.43,0.42,0.02,,1',
            '2026-07-17 17:24:00.000000,"m","sports",0.45,0.44,0.445,-0.01,,1',  # crossed
            '2026-07-17 17:26:00.000000,"m","sports",0.44,,,,,1',  # one-sided
            '2026-07-22 10:32:48.000000,"m","sports",0.70,0.72,0.71,0.02,,2',  # after the 4-day outage
            '2026-07-22 10:34:48.000000,"m","sports",0.71,0.73,0.72,0.02,,2',
            '2026-07-22 10:36:48.000000,"m","sports",1.5,0.73,,,,2',  # out of range
        ],
    )
    scenario = quotes(markets=1, path=str(tmp_path), speed="60")
    assert scenario.stats["crossed"] == 1
    assert scenario.stats["bad"] == 1
    (path,) = scenario.data.paths
    assert path.question == "m"  # no markets.csv.gz: the slug
    steps = [(when, row.bid, row.ask, fresh) for when, _, row, fresh in timeline(scenario.data.paths, 60) if row]
    assert steps == [
        (0.0, 4000, 4200, True),
        (2.0, 4100, 4300, False),
        (6.0, 4400, None, False),
        (8.0, 7000, 7200, True),  # one poll interval after the segment's end, books rebuilt
        (10.0, 7100, 7300, False),
    ]


def test_bad_paths_and_parameters_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no quotes-\*\.csv\.gz file"):
        quotes(path=str(tmp_path))
    with pytest.raises(ConfigError, match="no usable rows for nope"):
        quotes(slugs="nope")
    with pytest.raises(ConfigError, match="speed must be > 0"):
        quotes(speed="0")


async def test_over_sockets_the_channel_and_rest_agree_with_the_path() -> None:
    params = {"speed": "30000", "slugs": "apdc-trumpadmin-2026-tomhom"}
    async with (
        open_sim_venue(SimConfig(scenario="quotes", scenario_params=params, rate_limits=None)) as sim,
        httpx.AsyncClient(timeout=5) as http,
    ):
        scenario = sim.scenario
        assert isinstance(scenario, QuotesScenario)
        (market,) = (await http.get(sim.urls.gamma + "/markets")).json()
        assert market["slug"] == "apdc-trumpadmin-2026-tomhom"
        yes = json.loads(market["clobTokenIds"])[0]
        best: list[tuple[Decimal, Decimal]] = []
        async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
            await ws.send_message(json.dumps({"type": "market", "assets_ids": [yes]}))
            with trio.fail_after(10):
                while scenario.stats["rows"] < len(scenario.schedule):
                    with trio.move_on_after(0.5):
                        frame = json.loads(await ws.get_message())
                        for change in frame.get("price_changes", []) if isinstance(frame, dict) else []:
                            best.append((Decimal(change["best_bid"]), Decimal(change["best_ask"])))
        (path,) = scenario.data.paths
        shown = {(Decimal(r.bid) / 10_000, Decimal(r.ask) / 10_000) for r in path.rows if r.bid and r.ask}
        assert len(shown & set(best)) > 10  # the channel passed through the path's quotes
        book = (await http.get(sim.urls.rest + "/book", params={"token_id": yes})).json()
        last = path.rows[-1]
        assert max(Decimal(b["price"]) for b in book["bids"]) == Decimal(last.bid or 0) / 10_000
        assert min(Decimal(a["price"]) for a in book["asks"]) == Decimal(last.ask or 0) / 10_000
