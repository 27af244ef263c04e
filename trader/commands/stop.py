"""`trader stop`: ask a running engine for an emergency stop (or to resume), through its operator HTTP server.

    trader stop                                   # POST http://127.0.0.1:8080/emergency-stop
    trader stop --reason "venue incident"         # the reason is recorded and alerted
    trader stop --resume                          # POST /resume: back to trading
    trader stop --url http://10.0.0.5:8080        # or TRADER_HTTP_URL

The admin token comes from TRADER_ADMIN_TOKEN (or TRADER_HTTP__ADMIN_TOKEN, or the `.env` file) and is sent as
`Authorization: Bearer <token>`; it is never printed. An emergency stop halts trading, cancels every order task and
every resting order at the venue, and keeps market data running; nothing new is sent until `trader stop --resume`.

Exit status: 0 the engine answered (its JSON answer is printed), 1 it refused (401/403/other) or could not be
reached, 2 bad arguments or no admin token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Final
from urllib.parse import urlsplit

import httpx
import trio

from trader.commands.checks import add_env_file_argument, env_file
from trader.config import check_url, merged_environment
from trader.errors import ConfigError, InputError

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
DEFAULT_URL: Final = "http://127.0.0.1:8080"
URL_VARIABLE: Final = "TRADER_HTTP_URL"
TOKEN_VARIABLES: Final = ("TRADER_ADMIN_TOKEN", "TRADER_HTTP__ADMIN_TOKEN")
#: How long the whole request may take: an emergency tool must answer, one way or the other.
TIMEOUT_SECS: Final = 15.0
MAX_REASON_CHARS: Final = 200  # the server keeps no more


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--url", metavar="URL", help=f"the engine's operator HTTP address (default ${URL_VARIABLE} or {DEFAULT_URL})"
    )
    parser.add_argument("--reason", metavar="TEXT", help="why (recorded with the stop; at most 200 characters)")
    parser.add_argument("--resume", action="store_true", help="resume trading instead of stopping it")
    add_env_file_argument(parser)


def base_url(given: str | None, env: dict[str, str]) -> str:
    """`given`, else `TRADER_HTTP_URL`, else the default, checked to be `http://HOST:PORT`."""
    url = (given or env.get(URL_VARIABLE) or DEFAULT_URL).strip().rstrip("/")
    try:
        check_url("--url", url, ("http", "https"))  # parses, with a host and a usable port
    except InputError:
        raise ConfigError(f"--url: expected http://HOST:PORT, got {url!r}") from None
    parts = urlsplit(url)
    if parts.path or parts.query:
        raise ConfigError(f"--url: expected http://HOST:PORT, got {url!r}")
    return url


def _token(env: dict[str, str]) -> str:
    for name in TOKEN_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    raise ConfigError("no admin token: set TRADER_ADMIN_TOKEN to the token the engine was started with")


def request_from(args: argparse.Namespace, environ: dict[str, str]) -> tuple[str, str, dict[str, str] | None]:
    """(url, token, JSON body) of the request; `ConfigError` for bad arguments or a missing token."""
    env = merged_environment(environ, env_file(args))
    base = base_url(args.url, env)
    if args.resume:
        if args.reason is not None:
            raise ConfigError("--reason goes with an emergency stop, not with --resume")
        return f"{base}/resume", _token(env), None
    reason = args.reason if args.reason is not None else "operator: trader stop"
    if not reason.strip():
        raise ConfigError("--reason must not be empty")
    if len(reason) > MAX_REASON_CHARS:
        raise ConfigError(f"--reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    return f"{base}/emergency-stop", _token(env), {"reason": reason}


async def post(url: str, token: str, body: dict[str, str] | None) -> tuple[int, str]:
    """(exit status, text to print). Never raises for a refusal or an unreachable engine; never shows the token."""
    try:
        with trio.fail_after(TIMEOUT_SECS):
            async with httpx.AsyncClient(timeout=2 * TIMEOUT_SECS) as client:  # a backstop only
                response = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    except trio.TooSlowError:
        return EXIT_REFUSED, f"no answer from {url} within {TIMEOUT_SECS:g} s"
    except httpx.ConnectError as exc:
        return EXIT_REFUSED, f"cannot reach the engine at {url}: {_reason(exc)} (is `trader run` up? check --url)"
    except httpx.HTTPError as exc:
        return EXIT_REFUSED, f"request to {url} failed: {type(exc).__name__}: {_reason(exc)}"
    text = response.text.strip()
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.is_success and isinstance(answer, dict):
        return EXIT_OK, json.dumps(answer)
    message = answer.get("error") if isinstance(answer, dict) else None
    message = str(message) if message else (text[:200] or response.reason_phrase)
    hint = ""
    if response.status_code == 401:
        hint = " (check TRADER_ADMIN_TOKEN: it must be the engine's token)"
    elif response.status_code == 403:
        hint = " (start the engine with TRADER_ADMIN_TOKEN set to enable this)"
    return EXIT_REFUSED, f"{url} refused (HTTP {response.status_code}): {message}{hint}".replace(token, "***")


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def run(args: argparse.Namespace) -> int:
    url, token, body = request_from(args, dict(os.environ))
    status, text = trio.run(post, url, token, body)
    if status == EXIT_OK:
        print(text)
    else:
        print(f"trader: {text}", file=sys.stderr)
    return status
