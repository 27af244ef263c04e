"""`trader sim`: one JSON line of URLs once ready, serves, exits 0 on SIGINT; bad arguments exit 2."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

import httpx
import pytest
import trio

from trader.cli import main
from trader.commands.sim import add_arguments, config_from_args
from trader.venues.sim.gamma import GammaConfig


async def test_trader_sim_prints_its_urls_serves_and_stops_on_sigint() -> None:
    command = [sys.executable, "-m", "trader", "sim", "--markets", "2", "--seed", "3", "--fault", "ghost_fills:count=2"]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, "trader sim exited before printing its URLs"
                line += chunk
        urls = json.loads(line)
        assert set(urls) == {"rest", "ws_market", "ws_user", "gamma", "data", "espn", "rpc", "relayer"}
        assert urls["ws_market"].startswith("ws://127.0.0.1:")
        assert urls["ws_market"].endswith("/ws/market")
        async with httpx.AsyncClient() as http:
            assert (await http.get(urls["rest"] + "/ok")).json() == "OK"
            assert [f["kind"] for f in (await http.get(urls["rest"] + "/_sim/faults")).json()] == ["ghost"]
        process.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            assert await process.wait() == 0
        rest = await process.stdout.receive_some(4096)
        assert rest == b""  # exactly one line on stdout
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must be 0..65535"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--fault", "meteor"], "unknown kind 'meteor'"),
        (["--scenario-param", "levels"], "expects KEY=VALUE"),
        (["--scenario-param", "wobble=1"], "unknown synthetic scenario parameter 'wobble'"),
        (["--block-time", "0"], "--block-time > 0"),
        (["--mining-delay", "-1"], "--mining-delay must be >= 0"),
        (["--gamma-max-offset", "-5"], "--gamma-max-offset must be >= 0"),
        (["--tier", "0xabc=mithril"], "--tier expects 0xADDRESS=TIER"),
        (["--default-tier", "tin"], "--default-tier must be one of standard, copper"),
        (["--fault", "restart:secs=soon"], "secs"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", *argv]) == 2
    assert message in capsys.readouterr().err


def test_gamma_is_production_like_unless_told_otherwise() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = config_from_args(parser.parse_args([]))
    assert default.gamma == GammaConfig()
    assert (default.gamma.keyset, default.gamma.max_page, default.gamma.max_offset) == (True, 100, 2000)
    legacy = config_from_args(parser.parse_args(["--gamma-legacy", "--gamma-max-offset", "300", "--markets", "350"]))
    assert (legacy.gamma.keyset, legacy.gamma.max_offset, legacy.markets) == (False, 300, 350)


def test_tiers_and_the_warning_only_mode_reach_the_sims_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--tier", "0xAbC=Gold", "--default-tier", "copper", "--rate-limit-warn-only", "--fault", "restart:secs=5"]
    )
    config = config_from_args(args)
    assert dict(config.signer_tiers) == {"0xabc": "Gold"}
    assert (config.default_tier, config.enforce_signer_limits, config.signer_limits) == ("copper", False, True)
    assert not config_from_args(parser.parse_args(["--no-rate-limits"])).signer_limits
