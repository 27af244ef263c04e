"""`trader replay FILE...`: the simulated venue serves a recording on its real WebSocket and REST interfaces.

    trader replay rec/                      # at the recorded pace (1x)
    trader replay rec/ --speed 10           # ten times faster
    trader replay rec/ --max                # as fast as the slowest client reads

The files are a recording of `trader record` (files or directories, in order). The sim lists one market per
recorded market, serves the recorded frames verbatim to market-channel subscribers at their receive times (from the
first subscriber on), and keeps its own books (REST `/book`, `/price`, matching) equal to the replayed ones; this is
the `frames` scenario of `trader sim` (`trader/venues/sim/scenarios/frames.py`). Point `trader run --venue
polymarket` at the URLs it prints (`TRADER_ENDPOINTS__*`), or any client. It prints one JSON line with the URLs, as
`trader sim`, and runs until Ctrl+C (exit 0).
"""

from __future__ import annotations

import argparse

from trader.commands import sim


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="+", metavar="FILE", help="recording files or directories")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="N", help="N times the recorded pace (default 1)")
    pace.add_argument("--max", action="store_true", help="as fast as the slowest client reads")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")


def run(args: argparse.Namespace) -> int:
    params = [
        "path=" + ",".join(args.files),
        "rate=" + ("max" if args.max else "original"),
        f"speed={args.speed}",
        f"loop={'true' if args.loop else 'false'}",
    ]
    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    argv = ["--host", args.host, "--port", str(args.port), "--scenario", "frames"]
    for param in params:
        argv += ["--scenario-param", param]
    return sim.run(parser.parse_args(argv))
