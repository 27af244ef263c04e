"""`trader doctor`: check that this machine and these settings can run the engine; one line per check.

    $ trader doctor
    OK    python: 3.11.7
    OK    settings: loaded (environment and .env)
    FAIL  database: no database at trader.sqlite3 (hint: run `trader db migrate --database-url trader.sqlite3`, ...)
    SKIP  redis: not configured (TRADER_REDIS_URL)
    ...

Checks: the Python version; the settings load (an unknown or malformed TRADER_* variable fails); the database is
reachable and at this code's schema version (read only: nothing is created or migrated); Redis answers PING when
configured; the venue's REST endpoint answers `GET /ok` and `GET /time`, with our clock within 5 s of the venue's;
the market and user WebSocket endpoints accept a connection; the operator HTTP port (`TRADER_HTTP__HOST`/`PORT`) is
free, as `trader run` needs it (taken: another engine probably runs); the keys are well-formed when live settings are
given (the signer's public address is shown; the key and the API secrets never are); with usable keys, the wallet's
pUSD (none fails: nothing to buy with) and whether the exchange allowance is there (`GET /balance-allowance`: without
it `trader run --live` refuses to trade, reason `RISK_ALLOWANCE_MISSING`), and the venue's trading restrictions: the
account's closed-only mode (`GET /auth/ban-status/closed-only`: buys refused), the signer's rate-limit tier, and a
cancel of an order id that cannot exist (it cancels nothing) that the venue answers 425 while its matching engine
restarts and 503 while trading is disabled. (Cancel-only and the post-only window refuse only new orders: the
engine learns them from its first order.) The venue checks run when the venue is `polymarket`, when
TRADER_ENDPOINTS__* point somewhere else than the defaults, or when keys are given.

Exit status: 0 no check failed, 1 at least one failed.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
import trio

from trader.commands.checks import add_env_file_argument, check_port_free, check_redis_url, env_file
from trader.commands.reconcile import decimal_text
from trader.commands.run import http_listen
from trader.errors import ConfigError
from trader.infra.logging import configure_logging
from trader.integrations.store.base import Migration, load_migrations
from trader.integrations.store.postgres import redact_url
from trader.integrations.store.urls import sqlite_path
from trader.settings import EndpointSettings, Settings, VenueKind, load_settings
from trader.venues.errors import VenueError, VenueRequestError
from trader.venues.polymarket.capital import open_polymarket_capital
from trader.venues.polymarket.market_ws import websocket_factory
from trader.venues.polymarket.rest import PolymarketRestClient, open_rest_client
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.venue import PolymarketVenueSettings

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
CHECK_TIMEOUT_SECS: Final = 5.0
MAX_CLOCK_SKEW_SECS: Final = 5.0
MIN_PYTHON: Final = (3, 11)
#: An order id no order has: cancelling it changes nothing, and the venue's answer shows whether it takes requests.
PROBE_ORDER_ID: Final = "0x" + "0" * 64


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # "OK", "FAIL" or "SKIP"
    detail: str
    hint: str = ""

    def line(self) -> str:
        hint = f" (hint: {self.hint})" if self.hint and self.status == "FAIL" else ""
        return f"{self.status:<5} {self.name}: {self.detail}{hint}"


def ok(name: str, detail: str) -> Check:
    return Check(name, "OK", detail)


def fail(name: str, detail: str, hint: str) -> Check:
    return Check(name, "FAIL", detail, hint)


def skip(name: str, detail: str) -> Check:
    return Check(name, "SKIP", detail)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_env_file_argument(parser)


# -- the checks ----------------------------------------------------------------------------------------------------


def check_python(version: Sequence[int] = sys.version_info[:3]) -> Check:
    text = ".".join(map(str, version))
    if tuple(version[:2]) >= MIN_PYTHON:
        return ok("python", text)
    return fail("python", f"{text} is too old", "use Python 3.11 or newer")


def check_settings(environ: Mapping[str, str], env_file: Path) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(environ, dotenv=env_file)
    except ConfigError as exc:
        return fail("settings", str(exc), "correct the variable or remove it"), None
    source = f"environment and {env_file}" if env_file.is_file() else "environment"
    return ok("settings", f"loaded ({source})"), settings


def migration_state(applied: Mapping[int, str], shipped: Sequence[Migration], where: str) -> Check:
    """Whether the migrations recorded in a database (version -> checksum) are exactly the shipped ones."""
    known = {m.version: m for m in shipped}
    latest = max(known, default=0)
    newer = sorted(set(applied) - set(known))
    if newer:
        return fail("database", f"{where} has migrations {newer} this code does not know", "upgrade trader")
    changed = [v for v, checksum in applied.items() if known[v].checksum != checksum]
    if changed:
        return fail(
            "database", f"{where}: applied migration(s) {changed} differ from this code's", "restore the database"
        )
    if len(applied) < len(known):
        current = max(applied, default=0)
        return fail(
            "database", f"{where} is at schema version {current}, this code needs {latest}", "run `trader db migrate`"
        )
    return ok("database", f"{where} is at schema version {latest}")


def _sqlite_migrations(path: Path) -> dict[int, str] | None:
    """The applied migrations, read only; None when there is no file."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        table = conn.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
        if table is None:
            return {}
        return {int(v): str(c) for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
    finally:
        conn.close()


async def _postgres_migrations(url: str) -> dict[int, str]:
    import asyncpg  # noqa: PLC0415  (only when PostgreSQL is configured)

    from trader.integrations.trio_asyncio_bridge import open_asyncio_bridge  # noqa: PLC0415

    async def read(bridge_url: str) -> dict[int, str]:
        conn = await asyncpg.connect(bridge_url, timeout=CHECK_TIMEOUT_SECS)
        try:
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
                return {}
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
            return {int(r[0]): str(r[1]) for r in rows}
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        return await bridge.run(read, url)


async def check_database(url: str) -> Check:
    path = sqlite_path(url)
    if path is not None:
        try:
            applied = await trio.to_thread.run_sync(_sqlite_migrations, path)
        except sqlite3.Error as exc:
            return fail("database", f"cannot read {path}: {exc}", "is it a trader SQLite database?")
        if applied is None:
            hint = f"run `trader db migrate --database-url {path}`, or start `trader run` once"
            return fail("database", f"no database at {path}", hint)
        return migration_state(applied, load_migrations(), f"sqlite {path}")
    where = redact_url(url)
    try:
        applied = await _postgres_migrations(url)
    except Exception as exc:  # asyncpg's and the OS's errors alike: the message says which
        return fail(
            "database", f"cannot reach {where}: {type(exc).__name__}: {exc}", "is PostgreSQL up and the URL right?"
        )
    return migration_state(applied, load_migrations(), f"postgresql {where}")


async def check_redis(url: str | None) -> Check:
    if not url:
        return skip("redis", "not configured (TRADER_REDIS_URL)")
    import redis  # noqa: PLC0415

    try:
        check_redis_url(url)  # its message never shows the URL (it may carry a password)
    except ConfigError as exc:
        return fail("redis", str(exc), "fix TRADER_REDIS_URL")
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"

    def ping() -> bool:
        client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECS, socket_timeout=CHECK_TIMEOUT_SECS)
        try:
            return bool(client.ping())
        finally:
            client.close()

    try:
        answered = await trio.to_thread.run_sync(ping, abandon_on_cancel=True)
    except Exception as exc:  # redis-py's connection and auth errors
        return fail("redis", f"{where}: {type(exc).__name__}: {exc}", "is Redis up and TRADER_REDIS_URL right?")
    return ok("redis", f"{where} answers PING") if answered else fail("redis", f"{where}: no PONG", "check Redis")


async def check_rest(http: httpx.AsyncClient, base: str) -> list[Check]:
    """`GET /ok`, then the clock skew from `GET /time` (our clock taken half way through the request)."""
    hint = "is the venue up and TRADER_ENDPOINTS__REST_URL right?"
    try:
        response = await http.get(f"{base}/ok")
    except httpx.HTTPError as exc:
        reason = f"{base}: {type(exc).__name__}: {exc}"
        return [fail("venue rest", reason, hint), _time_skipped()]
    if not response.is_success:
        return [fail("venue rest", f"{base}/ok answered HTTP {response.status_code}", hint), _time_skipped()]
    checks = [ok("venue rest", f"{base}/ok answers")]
    before = time.time()
    try:
        response = await http.get(f"{base}/time")
        after = time.time()
        value = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return [*checks, fail("clock", f"{base}/time: {type(exc).__name__}", "the venue's /time did not answer")]
    if isinstance(value, dict):
        value = value.get("time", value.get("timestamp"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [*checks, fail("clock", f"{base}/time: not unix seconds", "is this a CLOB endpoint?")]
    skew = float(value) - (before + after) / 2
    text = f"ours is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} the venue's"
    if abs(skew) > MAX_CLOCK_SKEW_SECS:
        return [*checks, fail("clock", text, "synchronise the clock (NTP); signed requests carry timestamps")]
    return [*checks, ok("clock", text)]


def _time_skipped() -> Check:
    return skip("clock", "the venue's REST endpoint did not answer")


async def check_websocket(name: str, url: str) -> Check:
    try:
        async with websocket_factory(url, connect_timeout_secs=CHECK_TIMEOUT_SECS)():
            pass
    except trio.TooSlowError:
        return fail(name, f"{url}: no handshake within {CHECK_TIMEOUT_SECS:g} s", "is the endpoint right?")
    except Exception as exc:  # OS, handshake and configuration errors: the message says which
        return fail(name, f"{url}: {type(exc).__name__}: {exc}", "is the venue up and the URL right?")
    return ok(name, f"{url} accepts a connection")


def check_keys(settings: Settings) -> Check:
    keys = settings.keys
    given = keys.private_key is not None or any(
        v is not None for v in (keys.api_key, keys.api_secret, keys.api_passphrase)
    )
    if not given and not settings.run.live:
        return skip("keys", "none given (paper mode needs none)")
    if keys.private_key is None:
        return fail("keys", "no private key", "set TRADER_PRIVATE_KEY for live trading, reconcile and flatten")
    try:
        signer = keys.signer("trader doctor")
        credentials = keys.credentials()
    except ConfigError as exc:  # names the field, never the value
        return fail("keys", str(exc), "check TRADER_PRIVATE_KEY, TRADER_SIGNATURE_TYPE, TRADER_FUNDER, TRADER_API_*")
    api = "API credentials given" if credentials is not None else "API credentials derived at start"
    return ok("keys", f"signer {signer.address} (signature type {keys.signature_type}); {api}")


@asynccontextmanager
async def _account(settings: Settings) -> AsyncIterator[tuple[OrderSigner, PolymarketRestClient]]:
    """The REST client with L2 credentials (given, or derived from the key), as `trader run --live` opens it. The
    keys must be usable (a `ConfigError` otherwise)."""
    keys = settings.keys
    signer = keys.signer("trader doctor")
    credentials = keys.credentials()
    async with open_rest_client(settings.endpoints.rest_url.rstrip("/"), signer, credentials) as rest:
        if credentials is None:
            await rest.create_or_derive_api_key(PolymarketVenueSettings().api_key_nonce)
        yield signer, rest


def _keys_usable(settings: Settings) -> bool:
    try:
        settings.keys.signer("trader doctor")
        settings.keys.credentials()
    except ConfigError:
        return False
    return True


async def check_collateral(settings: Settings) -> Check:
    """The wallet's pUSD and its exchange allowance, as `trader run --live` reads them (L2: needs usable keys)."""
    if settings.keys.private_key is None:
        return skip("collateral", "no keys (a paper run trades its own wallet)")
    if not _keys_usable(settings):
        return skip("collateral", "the keys are not usable (see keys)")
    try:
        async with (
            _account(settings) as (signer, rest),
            open_polymarket_capital(settings.chain, signer, rest) as capital,
        ):
            collateral = await capital.collateral()
    except VenueError as exc:
        return fail("collateral", f"GET /balance-allowance: {exc}", "are the keys this venue's account?")
    except ConfigError as exc:  # the live capital's settings (a relayer key for proxy, Safe and deposit wallets)
        return fail("collateral", str(exc), "trader run --live needs it too")
    if collateral.balance <= 0:
        return fail(
            "collateral",
            f"{decimal_text(collateral.balance)} pUSD in the wallet",
            "deposit pUSD: with none, every buy is refused (RISK_BUYING_POWER)",
        )
    if collateral.missing_allowances:
        return fail(
            "collateral",
            f"{decimal_text(collateral.balance)} pUSD; missing: {', '.join(collateral.missing_allowances)}",
            "approve pUSD (buys) and the conditional tokens (sells) for the exchange contracts: until then "
            "`trader run --live` refuses every order (RISK_ALLOWANCE_MISSING)",
        )
    return ok("collateral", f"{decimal_text(collateral.balance)} pUSD, exchange allowance set")


def check_http_port(settings: Settings) -> Check:
    """`trader run`'s own early check of its HTTP address: free, and an address of this machine."""
    listen = http_listen(settings)
    try:
        check_port_free(listen)
    except ConfigError as exc:
        return fail("http port", str(exc).split(": ", 1)[0], str(exc).split(": ", 1)[-1])
    return ok("http port", f"{listen.host}:{listen.port} is free" if listen.port else "0: a free port is chosen")


async def check_restrictions(settings: Settings) -> Check:
    """The venue's trading restrictions for this account: closed-only, the rate-limit tier, and whether the venue
    takes order requests at all (a cancel of an order that does not exist: 425 restarting, 503 trading disabled)."""
    if not _keys_usable(settings):
        return skip("restrictions", "the keys are not usable (see keys)")
    try:
        async with _account(settings) as (_, rest):
            closed_only = await rest.closed_only()
            try:
                tier = await rest.rate_limit_tier()
            except VenueRequestError:  # informative only: `trader run` assumes the standard tier until told
                tier = None
            try:
                await rest.cancel(PROBE_ORDER_ID)
            except VenueRequestError as exc:  # any other refusal of that id is an answer too: requests are taken
                if exc.restriction is not None:
                    return fail(
                        "restrictions",
                        f"the venue refuses order requests now: {exc.restriction} ({exc})",
                        "wait: `trader run` holds new orders until the venue takes them again",
                    )
    except VenueError as exc:
        return fail("restrictions", f"{type(exc).__name__}: {exc}", "are the keys this venue's account?")
    tier_text = f"rate-limit tier {tier}" if tier else "rate-limit tier not named (the standard one is assumed)"
    if closed_only:
        return fail(
            "restrictions",
            f"the account is in closed-only mode; {tier_text}",
            "the venue refuses every buy: only sells that reduce positions pass (ask Polymarket why)",
        )
    return ok("restrictions", f"not closed-only, the venue takes order requests; {tier_text}")


def _venue_checked(settings: Settings) -> bool:
    keys = settings.keys
    return (
        settings.run.venue is VenueKind.POLYMARKET
        or settings.endpoints != EndpointSettings()
        or keys.private_key is not None
        or settings.run.live
    )


async def _bounded(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    with trio.move_on_after(CHECK_TIMEOUT_SECS * 2):
        return await check()
    return fail(name, f"no answer within {CHECK_TIMEOUT_SECS * 2:g} s", "is it reachable from here?")


async def run_checks(environ: Mapping[str, str], env_file: Path) -> list[Check]:
    settings_check, settings = check_settings(environ, env_file)
    checks = [check_python(), settings_check]
    if settings is None:
        return [*checks, skip("others", "not run: the settings did not load")]
    checks.append(await _bounded("database", lambda: check_database(settings.run.store_url)))
    checks.append(await _bounded("redis", lambda: check_redis(settings.run.redis_url)))
    endpoints = settings.endpoints
    rest_ok = False
    if _venue_checked(settings):
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECS) as http:
            with trio.move_on_after(CHECK_TIMEOUT_SECS * 3) as scope:
                rest = await check_rest(http, endpoints.rest_url.rstrip("/"))
            if scope.cancelled_caught:
                rest = [fail("venue rest", f"{endpoints.rest_url}: no answer", "is the venue up?"), _time_skipped()]
        checks.extend(rest)
        rest_ok = rest[0].status == "OK"
        checks.append(
            await _bounded("venue ws market", lambda: check_websocket("venue ws market", endpoints.ws_market_url))
        )
        checks.append(await _bounded("venue ws user", lambda: check_websocket("venue ws user", endpoints.ws_user_url)))
    else:
        checks.append(skip("venue", "the simulated venue runs in-process (TRADER_RUN__VENUE=sim)"))
    checks.append(check_http_port(settings))
    keys = check_keys(settings)
    checks.append(keys)
    if rest_ok:
        checks.append(await _bounded("collateral", lambda: check_collateral(settings)))
        if keys.status == "OK":
            checks.append(await _bounded("restrictions", lambda: check_restrictions(settings)))
    return checks


def run(args: argparse.Namespace) -> int:
    settings_file = env_file(args)
    configure_logging(level="WARNING")
    checks = trio.run(run_checks, dict(os.environ), settings_file)
    for check in checks:
        print(check.line())
    return EXIT_FAILED if any(c.status == "FAIL" for c in checks) else EXIT_OK
