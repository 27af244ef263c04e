"""`python -m bench tick_to_trade` stays runnable: a few events end to end (sim -> engine -> signed order -> sim),
every one timed through every stage, with the sim in its own process and in the engine's. A smoke test of the
output's shape, not of the machine's speed."""

from __future__ import annotations

import json

import pytest

from bench import tick_to_trade


@pytest.mark.parametrize("sim", ["process", "in-process"])
def test_tick_to_trade_times_every_event_through_every_stage(sim: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--events", "20", "--warmup", "2", "--idle-ms", "2", "--per-event", "--sim", sim]
    assert tick_to_trade.main(argv) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    header, *middle, last = lines
    events = [line for line in middle if "event" in line]
    stages = [line for line in middle if "stage" in line]
    assert header["bench"] == "tick_to_trade"
    assert header["events"] == 20
    assert header["sim"] == last["sim"] == sim
    by_stage = {line["stage"]: line for line in stages}
    assert set(tick_to_trade.STAGES) <= by_stage.keys()
    for name in tick_to_trade.STAGES:
        assert by_stage[name]["events"] == 20
        assert 0 < by_stage[name]["p50_us"] <= by_stage[name]["p99_us"] <= by_stage[name]["max_us"]

    assert last["events"] == 20
    assert last["failed_events"] == 0
    assert last["start"] == "sim writes the frame"  # the tap on the sim's socket found the engine's connection
    # the end: the kernel's receive timestamp of our POST at the sim's socket, for every order request
    assert last["end"] == "the sim's kernel receives our POST (SO_TIMESTAMPNS)"
    assert last["arrival_fallbacks"] == 0
    assert last["orders_submitted"] >= 2 * 22  # two legs per event, warm-up included
    assert last["intents_denied"] == {}
    assert 0 < last["p50_us"] <= last["p99_us"] <= last["max_us"]
    assert last["stage_p50_us"].keys() == set(tick_to_trade.STAGES)
    # the stages are contiguous: in every event they add up to its total (each rounded to 0.1 µs)
    assert len(events) == 20
    for event in events:
        assert sum(event[name] for name in tick_to_trade.STAGES) == pytest.approx(event["total"], abs=1.0)
        # then the sim wakes up and parses the request: its handler has it (the end point before the wire one)
        assert event["sim_handler"] > 0
        assert event["handler_total"] == pytest.approx(event["total"] + event["sim_handler"], abs=0.2)
    assert last["last_leg_p50_us"] >= last["p50_us"]
    assert last["handler_p50_us"] > last["p50_us"]
    assert isinstance(last["meets_goal"], bool)
    assert last["clock_check_us"] > 0  # the sim's clock reading fell between two of ours
    assert (last["sim_cpu_share"] is None) == (sim == "in-process")
