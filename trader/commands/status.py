"""`trader status`: how a running engine is doing, in a few lines, asked of its operator HTTP server (`GET /status`).

    trader status                                 # the engine of these settings: http://HOST:PORT of TRADER_HTTP__*
    trader status --url http://10.0.0.5:8080      # or TRADER_HTTP_URL
    trader status --json                          # the short status document as JSON
    trader status --full                          # everything there is, as JSON (`/status?full=1`)

It shows the trading state (and, when halted, why, by whom and what brings it back), money and PnL, activity, the
refusals by reason, the markets followed and the health of their books, positions by market name, and problems.

Exit status: 0 the engine answered; 1 no engine answers there (one line saying so); 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from functools import partial
from typing import Any, Final

import httpx
import trio

from trader.commands.checks import add_env_file_argument, env_file
from trader.commands.stop import URL_VARIABLE, base_url
from trader.config import merged_environment
from trader.errors import ConfigError, RuntimeFailure
from trader.infra.console import REFUSAL_KINDS, counts_text, halt_lines, money_text, signed_text

#: How long the request may take: a status that does not come is an answer too.
TIMEOUT_SECS: Final = 10.0
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (an address listened on, not bound here)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--url",
        metavar="URL",
        help=f"the engine's operator HTTP address (default ${URL_VARIABLE}, else the settings' HTTP host and port)",
    )
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--full", action="store_true", help="everything there is, as JSON (/status?full=1)")
    add_env_file_argument(parser)


def engine_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """`--url`, else `TRADER_HTTP_URL`, else the settings' `http.host` and `http.port` (a wildcard host: loopback)."""
    env = merged_environment(dict(environ), env_file(args))
    if args.url is None and not env.get(URL_VARIABLE):
        from trader.settings import load_settings  # noqa: PLC0415 - every part's settings: only when needed

        http = load_settings(environ, dotenv=env_file(args)).http
        if http.port == 0:
            raise ConfigError(
                "TRADER_HTTP__PORT is 0 (the engine picked a free port): give its address with --url (`trader run` "
                "logs it as http_server_started)"
            )
        host = "127.0.0.1" if http.host in _WILDCARDS else http.host
        host = f"[{host}]" if ":" in host else host
        return base_url(f"http://{host}:{http.port}", env)
    return base_url(args.url, env)


async def fetch_status(url: str, *, full: bool) -> dict[str, Any]:
    """The engine's `/status` document; `RuntimeFailure` (one line) when no engine answers there."""
    target = f"{url}/status" + ("?full=1" if full else "")
    try:
        with trio.fail_after(TIMEOUT_SECS):
            async with httpx.AsyncClient(timeout=2 * TIMEOUT_SECS) as client:  # a backstop only
                response = await client.get(target)
    except trio.TooSlowError:
        raise RuntimeFailure(f"no answer from {target} within {TIMEOUT_SECS:g} s") from None
    except httpx.HTTPError as exc:
        raise RuntimeFailure(
            f"no engine answers at {url} ({type(exc).__name__}): is `trader run` up? check --url or TRADER_HTTP__PORT"
        ) from None
    try:
        document = response.json()
    except ValueError:
        document = None
    if not response.is_success or not isinstance(document, dict):
        raise RuntimeFailure(f"{target} answered HTTP {response.status_code}, not a status document: is it an engine?")
    return document


def render(status: Mapping[str, Any], url: str) -> str:
    """The short status document in a few lines for a person."""
    state = status.get("trading_state", "?")
    lines = [f"engine at {url}: {status.get('mode', '?')} on {status.get('venue', '?')} · {state}"]
    halt = status.get("halt")
    if isinstance(halt, Mapping):
        lines += halt_lines(halt)
    money = status.get("money") or {}
    lines.append(
        f"  money       equity {money_text(money.get('equity'))} · cash {money_text(money.get('cash'))} · "
        f"locked {money_text(money.get('locked'))} · PnL {signed_text(money.get('realized_pnl'))} realized, "
        f"{signed_text(money.get('unrealized_pnl'))} unrealized (today {signed_text(money.get('daily_pnl'))})"
    )
    activity = status.get("activity") or {}
    line = (
        f"  activity    {activity.get('intents', 0)} intents · {activity.get('orders_submitted', 0)} orders sent · "
        f"{activity.get('fills', 0)} fills · {activity.get('open_orders', 0)} open orders"
    )
    if activity.get("arbitrage"):
        line += f" · arbitrage {counts_text(activity['arbitrage'])}"
    lines.append(line)
    refusals = [(REFUSAL_KINDS.get(k, k), v) for k, v in (status.get("refusals") or {}).items() if v]
    lines.append("  refusals    " + (" · ".join(f"{k}: {counts_text(v)}" for k, v in refusals) or "none"))
    markets = status.get("markets") or {}
    line = (
        f"  markets     {markets.get('followed', 0)} followed of {markets.get('found', 0)} found · books "
        f"{markets.get('fresh', 0)}/{markets.get('books', 0)} fresh"
    )
    if markets.get("suspect"):
        line += f", {markets['suspect']} suspect"
    if markets.get("discovery_problem"):
        line += f" · discovery: {markets['discovery_problem']}"
    lines.append(line)
    lines += _rows(status)
    problems = status.get("problems") or []
    lines.append("  problems    " + ("none" if not problems else problems[0]))
    lines += [f"              {p}" for p in problems[1:]]
    return "\n".join(lines)


def _rows(status: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    positions = status.get("positions") or []
    if positions:
        lines.append(f"  positions   {len(positions) + int(status.get('positions_not_shown') or 0)}")
        for p in positions:
            pnl = p.get("unrealized_pnl")
            after = "" if pnl is None else f"  (unrealized {signed_text(pnl)})"
            lines.append(f"    {p.get('quantity'):>12}  {p.get('market') or p.get('token_id')}{after}")
    orders = status.get("open_orders") or []
    if orders:
        lines.append(f"  open orders {len(orders) + int(status.get('open_orders_not_shown') or 0)}")
        lines += [
            f"    {o.get('side')} {o.get('size')} @ {o.get('price')} (filled {o.get('filled')})  {o.get('market')}"
            for o in orders
        ]
    return lines


def run(args: argparse.Namespace) -> int:
    url = engine_url(args, os.environ)
    status = trio.run(partial(fetch_status, url, full=args.full))
    print(json.dumps(status, indent=2) if args.json or args.full else render(status, url))
    return 0
