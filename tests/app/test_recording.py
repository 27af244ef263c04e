"""`trader record` against the in-process sim (real sockets, real clock, a few seconds), and `trader replay`'s
reading of a recording."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import trio

from trader.app.recording import RecorderProgress, markets_from_meta, recording_meta, run_recorder
from trader.app.venue import Endpoints, market_query, start_endpoints
from trader.infra.recording import Frame, Gap, ReadStats, RecordingWriter, read_meta, read_recording
from trader.settings import RunSettings, Settings, SimSettings, VenueKind
from trader.testing.builders import make_market
from trader.venues.sim.faults import apply_fault
from trader.venues.sim.scenarios import ScenarioOptions
from trader.venues.sim.scenarios.frames import FramesScenario, load_frames
from trader.venues.sim.venue import SimVenue

RECORDING = Path(__file__).resolve().parent.parent / "fixtures" / "recordings" / "sim-synthetic"


def _settings() -> Settings:
    return Settings(run=RunSettings(venue=VenueKind.SIM), sim=SimSettings(markets=4, seed=3))


async def _record(directory: Path, secs: float, *, drop_after: float | None = None) -> RecorderProgress:
    settings = _settings()
    stop = trio.Event()
    seen: list[RecorderProgress] = []
    async with trio.open_nursery() as nursery:

        async def body() -> None:
            seen.append(
                await run_recorder(
                    settings,
                    market_query(settings),
                    directory,
                    stop=stop.wait,
                    max_file_bytes=1 << 20,
                    max_total_bytes=1 << 22,
                    on_progress=seen.append,
                    progress_secs=0.5,
                )
            )

        nursery.start_soon(body)
        if drop_after is not None:
            await trio.sleep(drop_after)
            sim = _running_sim()
            apply_fault(sim.faults, "drop_ws", {"channel": "market"})
        await trio.sleep(secs - (drop_after or 0))
        stop.set()
    return seen[-1]


_SIMS: list[SimVenue] = []


def _running_sim() -> SimVenue:
    return _SIMS[-1]


@pytest.fixture(autouse=True)
def _capture_sims(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder starts the sim itself (`--venue sim`): keep a handle on it, to drop its sockets."""

    async def start(settings: Settings, nursery: trio.Nursery) -> tuple[SimVenue | None, Endpoints]:
        sim, endpoints = await start_endpoints(settings, nursery)
        if sim is not None:
            _SIMS.append(sim)
        return sim, endpoints

    monkeypatch.setattr("trader.app.recording.start_endpoints", start)


@pytest.mark.timeout(60)
async def test_a_recording_holds_the_frames_and_the_markets_metadata(tmp_path: Path) -> None:
    final = await _record(tmp_path, 3.0)
    assert final.frames > 20
    assert final.markets >= 4
    markets, _events, problems = markets_from_meta(read_meta(tmp_path / "rec-000001.jsonl.gz"))
    assert problems == []
    assert len(markets) == final.markets
    stats = ReadStats()
    frames = [r for _m, r in read_recording([tmp_path], stats) if isinstance(r, Frame)]
    assert len(frames) == final.frames
    assert stats.truncated_files == []  # closed cleanly
    tokens = {t for m in markets.values() for t in m.token_ids}
    assert any(t in frames[0].text for t in tokens)  # the first frames are the books of the followed markets
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))


@pytest.mark.timeout(60)
async def test_a_dropped_connection_is_recorded_as_a_gap_and_a_restart_resumes(tmp_path: Path) -> None:
    first = await _record(tmp_path, 4.0, drop_after=1.5)
    assert first.gaps == 1
    assert first.connections == 2
    await _record(tmp_path, 1.5)
    gaps = [r for _m, r in read_recording([tmp_path]) if isinstance(r, Gap)]
    assert [g.reason.split(":")[0] for g in gaps] == ["disconnected", "recorder restarted"]
    assert all(g.from_ns < g.to_ns for g in gaps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec-000001.jsonl.gz", "rec-000002.jsonl.gz"]  # noqa: ASYNC240


def test_the_sim_replays_a_recording_at_its_receive_times() -> None:
    scenario = FramesScenario.from_options(ScenarioOptions(params={"path": str(RECORDING)}))
    markets, _events = scenario.listing()
    assert len(markets) == 14
    loaded = load_frames([RECORDING])
    stamps = [f.timestamp_ms for f in loaded.frames]
    recorded = [r.t_ns // 1_000_000 for _m, r in read_recording([RECORDING]) if isinstance(r, Frame)]
    assert stamps == recorded  # paced by when they were received, not by the venue's own timestamps
    assert dataclasses.asdict(scenario.params)["rate"] == "original"


def test_the_sim_replays_resolutions_and_listings_of_a_recording(tmp_path: Path) -> None:
    market = make_market()
    writer = RecordingWriter(tmp_path, source="test", meta=recording_meta([market], []), now_ns=1)
    for n, token in enumerate(market.token_ids, start=1):
        book = {"event_type": "book", "asset_id": token, "market": market.condition_id, "bids": [], "asks": []}
        writer.frame(n, 1, n, json.dumps(book))
    resolved = {
        "event_type": "market_resolved",
        "market": market.condition_id,
        "assets_ids": list(market.token_ids),
        "winning_asset_id": market.yes_token_id,
    }
    listed = {"event_type": "new_market", "market": "0x" + "9" * 64, "assets_ids": ["11", "12"]}
    writer.frame(3, 1, 3, json.dumps(resolved))
    writer.frame(4, 1, 4, json.dumps(listed))
    writer.close(5)
    loaded = load_frames([tmp_path])
    assert loaded.frames[2].assets == frozenset(market.token_ids)  # to the subscribers of the resolved market
    assert loaded.frames[3].assets == frozenset()  # a market the replay does not list: nobody follows it
    assert list(loaded.markets) == [market.condition_id]
