"""The `frames` scenario: what subscribers receive is the file, line for line; the venue's books follow it."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket

from tests.venues.sim._support import T0
from trader.errors import ConfigError
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.scenarios import ScenarioOptions, make_scenario
from trader.venues.sim.scenarios.frames import (
    SAMPLE_FRAMES,
    FramesParams,
    FramesScenario,
    parse_scenario_params,
)
from trader.venues.sim.venue import SimConfig, open_sim_venue

LINES = [line.strip() for line in SAMPLE_FRAMES.read_text().splitlines() if line.strip()]


def _levels(side: list[dict[str, str]]) -> dict[Decimal, Decimal]:
    return {Decimal(level["price"]): Decimal(level["size"]) for level in side}


async def test_subscribers_receive_the_file_verbatim_and_rest_shows_the_replayed_books() -> None:
    config = SimConfig(scenario="frames", scenario_params={"rate": "max"}, rate_limits=None)
    async with open_sim_venue(config) as sim, httpx.AsyncClient() as http:
        scenario = sim.scenario
        assert isinstance(scenario, FramesScenario)
        (market,) = (await http.get(sim.urls.gamma + "/markets")).json()
        first = json.loads(LINES[0])
        assert market["conditionId"] == first[0]["market"]
        assert json.loads(market["clobTokenIds"]) == [first[0]["asset_id"], first[1]["asset_id"]]
        assert market["orderPriceMinTickSize"] == 0.01
        book = (await http.get(sim.urls.rest + "/book", params={"token_id": first[0]["asset_id"]})).json()
        assert _levels(book["bids"]) == _levels(first[0]["bids"])  # seeded before anyone connects
        assert _levels(book["asks"]) == _levels(first[0]["asks"])

        async with trio_websocket.open_websocket_url(sim.urls.ws_market) as ws:
            await ws.send_message(json.dumps({"type": "market", "assets_ids": json.loads(market["clobTokenIds"])}))
            with trio.fail_after(10):
                snapshot = json.loads(await ws.get_message())  # the venue's own answer to the subscription
                received = [await ws.get_message() for _ in LINES]
                await ws.send_message("PING")
                after = await ws.get_message()  # not an echo of the exchange re-placing the replayed books

        assert [b["asset_id"] for b in snapshot] == [first[0]["asset_id"], first[1]["asset_id"]]
        assert received == LINES
        assert after == "PONG"
        assert scenario.stats["frames_sent"] == len(LINES)
        assert scenario.sync_drops == {}
        for asset in json.loads(market["clobTokenIds"]):
            book = (await http.get(sim.urls.rest + "/book", params={"token_id": asset})).json()
            bids, asks = scenario.books.books[asset]
            assert _levels(book["bids"]) == {Decimal(p) / 10_000: Decimal(s) / 10**6 for p, s in bids.items()}
            assert _levels(book["asks"]) == {Decimal(p) / 10_000: Decimal(s) / 10**6 for p, s in asks.items()}
        # the last snapshot was near 0.96 and the file changed the tick to 0.001: the venue did too
        assert book["tick_size"] == "0.001"
        yes = (
            await http.get(sim.urls.rest + "/price", params={"token_id": first[0]["asset_id"], "side": "SELL"})
        ).json()
        assert yes == {"price": "0.968"}


class RecordingPublisher:
    queue_size = 2

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    def publish(self, asset_ids: Collection[str], text: str) -> int:
        self.sent.append((trio.current_time(), text))
        return 1

    def backlog(self) -> int:
        return 0

    def subscribed(self, asset_ids: Collection[str]) -> bool:
        return True

    def market_events_muted(self) -> AbstractContextManager[None]:
        return nullcontext()


class Context:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def now(self) -> float:
        return T0 + trio.current_time()

    def add_route(self, prefix: str, handler: object) -> None:
        raise AssertionError("not used")


async def test_original_timing_follows_the_frame_timestamps_scaled_by_speed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    publisher = RecordingPublisher()
    scenario = FramesScenario(ScenarioOptions(), parse_params(speed="4"), publisher=publisher)
    markets, events = scenario.listing()
    exchange = Exchange(markets, events)
    scenario.setup(exchange, T0)

    await scenario.run(Context(exchange))

    stamps = [min(int(e["timestamp"]) for e in (f if isinstance(f, list) else [f])) for f in map(json.loads, LINES)]
    assert [text for _, text in publisher.sent] == LINES
    expected = [(s - stamps[0]) / 1000 / 4 for s in stamps]
    assert [t for t, _ in publisher.sent] == pytest.approx(expected, abs=1e-9)


async def test_a_fixed_rate_and_looping(autojump_clock: trio.testing.MockClock) -> None:
    publisher = RecordingPublisher()
    scenario = FramesScenario(ScenarioOptions(), parse_params(rate="10", loop="true"), publisher=publisher)
    markets, events = scenario.listing()
    exchange = Exchange(markets, events)
    scenario.setup(exchange, T0)

    with trio.move_on_after(3.45):
        await scenario.run(Context(exchange))

    assert [text for _, text in publisher.sent] == LINES * 2 + LINES[:1]  # 35 frames at 10/s, the file has 17
    assert scenario.stats["loops"] == 2


def parse_params(**params: str) -> FramesParams:
    return parse_scenario_params(FramesParams, "frames", params)


def test_skips_non_frames_and_names_the_line_and_field_of_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("PONG\n\n" + "\n".join(LINES) + "\n")
    scenario = make_scenario("frames", ScenarioOptions(params={"path": str(good)}))
    assert isinstance(scenario, FramesScenario)
    assert scenario.stats["skipped_lines"] == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*LINES[:3], re.sub(r'"price":"[^"]*"', '"price":"0.4x"', LINES[3], count=1)]))
    with pytest.raises(ConfigError, match=r"line 4\.price_changes\[0\]\.price: not a decimal"):
        make_scenario("frames", ScenarioOptions(params={"path": str(bad)}))
    fine = tmp_path / "fine.jsonl"
    fine.write_text(LINES[0].replace('"size":"800"', '"size":"800.0000001"', 1))
    with pytest.raises(ConfigError, match=r"line 1\[0\]\.bids\[1\]\.size: .* more than 6 decimals"):
        make_scenario("frames", ScenarioOptions(params={"path": str(fine)}))
    odd_tick = tmp_path / "odd_tick.jsonl"
    odd_tick.write_text(LINES[0].replace('"tick_size":"0.01"', '"tick_size":"0.02"', 1))
    with pytest.raises(ConfigError, match=r"line 1\[0\]\.tick_size: unsupported tick size 0\.02"):
        make_scenario("frames", ScenarioOptions(params={"path": str(odd_tick)}))

    lonely = tmp_path / "lonely.jsonl"
    lonely.write_text(json.dumps(json.loads(LINES[0])[0]) + "\n")
    with pytest.raises(ConfigError, match="shows 1 asset"):
        make_scenario("frames", ScenarioOptions(params={"path": str(lonely)}))
    with pytest.raises(ConfigError, match="rate: expected original, max"):
        make_scenario("frames", ScenarioOptions(params={"rate": "fast"}))
    with pytest.raises(ConfigError, match="No such file"):
        make_scenario("frames", ScenarioOptions(params={"path": str(tmp_path / "missing.jsonl")}))
