"""`python -m bench sim`: the sim serves one raw WebSocket client, and every frame it counts is JSON."""

from __future__ import annotations

import json

import pytest

from bench import sim as bench_sim


def test_bench_sim_reports_what_the_client_received(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_sim.main(["--secs", "0.5", "--warmup", "0.2", "--target", "1"]) == 0

    *_, last = capsys.readouterr().out.strip().splitlines()
    result = json.loads(last)
    assert result["frames"] > 100
    assert result["frames_per_s"] == pytest.approx(result["frames"] / result["secs"], rel=0.01)
    assert result["bad_frames"] == 0
    assert result["closed"] is None
    assert result["meets_target"] is True
    assert result["events_per_s"] >= result["frames_per_s"]  # the sample's snapshots are arrays of two books
