"""`trader sim`: run the simulated Polymarket venue on loopback until Ctrl+C.

Prints ONE JSON line once ready: {"rest","ws_market","ws_user","gamma","data","espn","rpc","relayer"} (base URLs),
then serves.
Exit status 0 on SIGINT/SIGTERM (Ctrl+C is how it stops), 2 on bad arguments or a port that is taken.

Faults can be armed at start (`--fault ghost_fills:count=2 --fault http_errors:status=503,count=3`,
`--fault restart:secs=90,post_only_secs=120`) or at any time through the admin endpoint:
`curl -X POST $rest/_sim/faults -d '{"kind":"drop_ws"}'` (see trader.venues.sim.faults for every kind).

Rate limits: the published windows, and per-signer token buckets (every signer Standard unless `--tier
0xADDRESS=gold` or `--default-tier` says otherwise; `--rate-limit-warn-only` lets over-limit orders through with a
warning header instead of 429); `--no-rate-limits` turns both off.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from typing import TextIO

import trio

from trader.commands.checks import Listen, bind_error, check_port_free, is_bind_error
from trader.errors import ConfigError, InputError
from trader.infra.groups import collapse_group
from trader.infra.logging import configure_logging
from trader.venues.sim.chain import ChainConfig
from trader.venues.sim.faults import FAULT_KINDS, FaultInjector, apply_fault, parse_fault_spec
from trader.venues.sim.gamma import GammaConfig
from trader.venues.sim.ratelimit import DEFAULT_TIER, SIGNER_TIERS
from trader.venues.sim.scenarios import ScenarioOptions, make_scenario, scenario_names
from trader.venues.sim.venue import SimConfig, run_sim_venue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument(
        "--scenario", default="synthetic", help=f"market scenario: {', '.join(scenario_names())} (default synthetic)"
    )
    parser.add_argument("--markets", type=int, default=8, help="standalone binary markets (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same markets and moves")
    parser.add_argument(
        "--scenario-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario parameter, repeatable (synthetic: step_secs, levels, ...; quotes: path, speed, slugs; "
        "sports: winner, duration_secs, window_secs, flip_final, ...; frames: path, rate, loop; "
        "see trader/venues/sim/scenarios/)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:K=V,...]",
        help=f"arm a fault at start, repeatable; kinds: {', '.join(sorted(FAULT_KINDS))}",
    )
    parser.add_argument(
        "--mining-delay", type=float, default=2.0, metavar="SECS", help="the chain mines a transaction after (2.0)"
    )
    parser.add_argument("--block-time", type=float, default=2.0, metavar="SECS", help="one block every (2.0)")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the venue's rate limits off")
    parser.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="ADDRESS=TIER",
        help=f"a signer's rate-limit tier, repeatable ({', '.join(SIGNER_TIERS)}); the others get --default-tier",
    )
    parser.add_argument(
        "--default-tier", default=DEFAULT_TIER, metavar="TIER", help="every other signer's tier (default standard)"
    )
    parser.add_argument(
        "--rate-limit-warn-only",
        action="store_true",
        help="the venue's warning-only mode: over-limit orders pass, with Poly-RateLimit-Warning: true",
    )
    parser.add_argument("--asset-limit", type=int, default=500, help="assets per market-channel connection")
    parser.add_argument(
        "--gamma-legacy",
        action="store_true",
        help="Gamma without its keyset endpoints (they answer 404): clients must page by offset",
    )
    parser.add_argument(
        "--gamma-max-offset",
        type=int,
        default=GammaConfig().max_offset,
        metavar="N",
        help=f"Gamma refuses deeper offsets with 422, as production does ({GammaConfig().max_offset})",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    if args.markets < 1:
        raise ConfigError(f"--markets must be at least 1, got {args.markets}")
    if args.asset_limit < 1:
        raise ConfigError(f"--asset-limit must be at least 1, got {args.asset_limit}")
    if args.gamma_max_offset < 0:
        raise ConfigError(f"--gamma-max-offset must be >= 0, got {args.gamma_max_offset}")
    if not (0 <= args.mining_delay < math.inf and 0 < args.block_time < math.inf):
        raise ConfigError("--mining-delay must be >= 0 and --block-time > 0 (seconds)")
    params: dict[str, str] = {}
    for item in args.scenario_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--scenario-param expects KEY=VALUE, got {item!r}")
        params[key] = value
    tiers: dict[str, str] = {}
    for item in args.tier:
        address, sep, tier = item.partition("=")
        if not sep or not address.startswith("0x") or tier.strip().lower() not in SIGNER_TIERS:
            raise ConfigError(f"--tier expects 0xADDRESS=TIER with TIER one of {', '.join(SIGNER_TIERS)}, got {item!r}")
        tiers[address.lower()] = tier
    if args.default_tier.strip().lower() not in SIGNER_TIERS:
        raise ConfigError(f"--default-tier must be one of {', '.join(SIGNER_TIERS)}, got {args.default_tier!r}")
    for spec in args.fault:
        try:
            kind, _ = parse_fault_spec(spec)
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        if kind not in FAULT_KINDS:
            raise ConfigError(f"--fault: unknown kind {kind!r}; expected one of {', '.join(sorted(FAULT_KINDS))}")
        try:  # its parameters, on a throwaway injector (the WebSocket kinds need the running sim: not checked here)
            apply_fault(FaultInjector(), kind, parse_fault_spec(spec)[1])
        except InputError as exc:
            if exc.field != "ws":
                raise ConfigError(f"--fault {spec}: {exc}") from None
    # Build the scenario once here so that bad names and parameters fail before anything binds.
    make_scenario(args.scenario, ScenarioOptions(markets=args.markets, seed=args.seed, params=params))
    return SimConfig(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        markets=args.markets,
        seed=args.seed,
        scenario_params=params,
        rate_limits=None if args.no_rate_limits else SimConfig().rate_limits,
        signer_limits=not args.no_rate_limits,
        signer_tiers=tiers,
        default_tier=args.default_tier,
        enforce_signer_limits=not args.rate_limit_warn_only,
        asset_limit=args.asset_limit,
        faults=tuple(args.fault),
        chain=ChainConfig(mining_delay_secs=args.mining_delay, block_time_secs=args.block_time),
        gamma=GammaConfig(keyset=not args.gamma_legacy, max_offset=args.gamma_max_offset),
    )


async def serve(config: SimConfig, out: TextIO) -> None:
    """Run the sim, print its URLs as one JSON line, return on SIGINT/SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            venue = await nursery.start(run_sim_venue, config)
            print(json.dumps(venue.urls.as_dict()), file=out, flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel(reason="signal")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    listen = Listen(config.host, config.port, "the sim's", "--port", "--host")
    check_port_free(listen)
    configure_logging()  # to stderr: stdout carries only the URL line
    try:
        trio.run(serve, config, sys.stdout)
    except BaseException as exc:
        inner = collapse_group(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(inner, InputError):
            raise ConfigError(str(inner)) from exc
        if is_bind_error(inner):  # its port was taken after the check
            raise ConfigError(bind_error(inner, listen)) from exc
        raise
    return 0
