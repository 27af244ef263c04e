"""Every documented setting changes something: a correctly spelt variable that has no effect breaks the promise the
unknown-name check keeps for misspelt ones.

Two runs of the real composition root against the simulated venue over real sockets, each with (almost) every leaf of
the settings tree set to a valid value other than its default, and every section tracked (`tests/settings_probe.py`):

- paper, as `trader run` runs it (the command's `run()`: logging, the engine, the summary JSON), on the in-process sim,
  SQLite and Redis;
- live, with `--venue polymarket`: the endpoints, keys and chain settings pointed at a sim started here, on PostgreSQL.

After both, every variable of the generated settings table must have been consumed: read by the code that builds or
runs a component, or held by a component of the running engine, with the value set (not one the composition root put
in its place). Deleting the wiring of any setting (not passing its section, or replacing one of its fields) leaves it
unconsumed and fails the test, naming the variable; `test_the_probe_sees_missing_wiring` shows that on a small scale.

A new setting needs nothing here when a generic non-default value of its type is valid (not its default: a flipped
bool, a larger number, another enum member); otherwise give it one in `VALUES` (or in the live run's values).

What this cannot see: a field a component holds (so it counts as consumed) whose use a caller always overrides at a
call site, as `run.cancel_resting_on_exit` overrode `execution.cancel_resting_on_drain` through `drain(...,
cancel_resting=...)`. Those need a second name for one thing; keep one name per thing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import secrets
import signal
import types
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

import trader.commands.run as run_command
from tests.integrations.servers import pg_dsn, redis_url
from tests.settings_probe import Leaf, Probe, leaves_of
from trader.app import RunSummary, run_trader
from trader.app.control import RunningEngine
from trader.config import Secret
from trader.integrations.store.postgres import PostgresSettings, drop_postgres_schema
from trader.settings import Settings, VenueKind
from trader.settings_doc import rows
from trader.venues.polymarket.chain import proxy_wallet_address
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.sim.chain import ChainConfig
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

#: Set only in the live run (they mean nothing to a paper run on the in-process sim).
LIVE_ONLY = ("run.venue", "run.live", "endpoints.", "keys.", "chain.", "markets.", "ha.")
#: Left at their default in the paper run (its other settings of the section need them on); off in the live run.
OFF_IN_LIVE_ONLY = ("sum_to_100.enabled", "sum_deviation.enabled")

#: A value for each leaf whose type's generic non-default value would not do (an optional, a string, a constraint).
VALUES: dict[str, object] = {
    "run.duration_secs": 2.0,
    "run.starting_cash_usd": Decimal(2500),
    "run.drain_secs": 2.5,
    "run.log_level": "WARNING",
    "run.log_format": "json",
    "sim.scenario": "static",
    "sim.params": ("levels=3",),
    "sim.markets": 3,
    "http.host": "127.0.0.2",
    "http.port": 0,
    "http.admin_token": "every-setting-token",
    "market_data.max_assets_per_connection": 4,
    "market_data.backoff.jitter": 0.1,
    "espn.backoff.jitter": 0.1,
    "risk.max_price": Decimal("0.998"),
    "risk.daily_reset_utc": dt.time(4, 30),
    "sniper.max_price": Decimal("0.97"),
    "sniper.order_type": "FOK",
    "sniper.targets": (),  # paper: auto_match instead; live: a target on the sim's market
    "clipper.tokens": (),  # paper: every token; live: one of the sim's
    "espn.leagues": ("basketball/nba",),
    "store.intent_journal": "off",
    "store.schema": None,  # set in the live run (PostgreSQL)
    "redis.prefix": "every-setting",
    "slack.label": "every-setting",
    "slack.webhook_url": Secret("http://127.0.0.1:9/hooks/every-setting"),  # nothing listens: posts fail, counted
    "breaker.failure_rate": 0.75,
    "rate_limit.reserve_fraction": 0.2,
    "strategy_engine.overrun_policy": "RUN_ONCE",
    "sum_to_100.order_type": "FAK",
    "clipper.order_type": "FOK",
    "supervisor.discovery_timeout_secs": 30.0,
    "ha.instance": "every-setting",
    "ha.lock_key": secrets.randbelow(2**62) + 1,  # a lock no other test run holds
}


def generic_value(leaf: Leaf, default: object, annotation: Any) -> object:
    """A valid value other than `default`, from the leaf's type alone."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kind = next(a for a in typing.get_args(annotation) if a is not type(None)) if union else annotation
    if typing.get_origin(kind) is typing.Literal:
        return next(v for v in typing.get_args(kind) if v != default)
    if kind is bool:
        return not default
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(m for m in kind if m != default)
    if kind is int:
        return (default or 0) + 1  # type: ignore[operator]
    if kind is float:
        return default * 1.5 if default else 0.5  # type: ignore[operator]
    if kind is Decimal:
        return default * 2 if default else Decimal("0.5")  # type: ignore[operator]
    raise AssertionError(f"{leaf.variable}: give it a non-default value in VALUES (type {annotation!r})")


def with_values(settings: Settings, values: dict[str, object]) -> Settings:
    """`settings` with the leaves named in `values` (dotted paths) set, validating each section."""

    def apply(section: Any, prefix: str) -> Any:
        changes: dict[str, object] = {}
        for f in dataclasses.fields(section):
            path = prefix + f.name
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                changes[f.name] = apply(value, path + ".")
            elif path in values:
                changes[f.name] = _typed(values[path], type(section), f.name)
        return dataclasses.replace(section, **changes)

    result = apply(settings, "")
    assert isinstance(result, Settings)
    return result


def _typed(value: object, cls: type, name: str) -> object:
    """Enum values given as their text become the field's enum."""
    annotation = typing.get_type_hints(cls)[name]
    for option in typing.get_args(annotation) or (annotation,):
        if isinstance(option, type) and issubclass(option, enum.Enum) and isinstance(value, str):
            return option(value)
    return value


def run_values(mode: str, extra: dict[str, object]) -> dict[str, object]:
    """The leaf values of one run: every leaf not its default, but for the other run's own ones."""
    defaults = Settings()
    values: dict[str, object] = {}
    for leaf in leaves_of(defaults):
        path = leaf.dotted
        live_only = path.startswith(LIVE_ONLY)
        if (mode == "paper" and live_only) or (mode == "paper" and path in OFF_IN_LIVE_ONLY):
            continue
        if mode == "live" and path.startswith("sim."):
            continue  # --venue polymarket: no in-process sim
        default = getattr(leaf.section, leaf.name)
        if path in extra:
            values[path] = extra[path]
        elif path in VALUES:
            values[path] = VALUES[path]
        else:
            values[path] = generic_value(leaf, default, typing.get_type_hints(type(leaf.section))[leaf.name])
    return values


# -- running the engine under the probe -------------------------------------------------------------------------------


def probing(probe: Probe, walked: list[int]) -> Callable[..., Awaitable[RunSummary]]:
    """`run_trader`, which also credits what the started engine holds (walked once it is up)."""

    async def run(settings: Settings, **kwargs: Any) -> RunSummary:
        result: list[RunSummary] = []

        async def body(*, task_status: trio.TaskStatus[RunningEngine]) -> None:
            result.append(await run_trader(settings, task_status=task_status, **kwargs))

        async with trio.open_nursery() as nursery:
            engine: RunningEngine = await nursery.start(body)
            walked.append(probe.credit_held([engine, engine.control.sinks, engine.control.venue, engine.control.core]))
        return result[0]

    return run


def paper_run(probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, list[int]]:
    """`trader run` (the command) in paper mode on the in-process sim, with every paper leaf changed."""
    values = run_values(
        "paper",
        {
            "run.database_url": f"sqlite:{tmp_path / 'paper.sqlite3'}",
            "run.summary_json": str(tmp_path / "summary.json"),
            "run.redis_url": redis_url(),
            "sniper.auto_match": True,
        },
    )
    settings = probe.track(with_values(Settings(), values))
    walked: list[int] = []
    logging: list[tuple[object, object]] = []
    monkeypatch.setattr(run_command, "settings_from", lambda args, environ: settings)
    monkeypatch.setattr(run_command, "configure_logging", lambda *, level, fmt, **_: logging.append((level, fmt)))
    monkeypatch.setattr(run_command, "run_trader", probing(probe, walked))
    sigterm = signal.getsignal(signal.SIGTERM)
    probe.active = True
    try:
        assert run_command.run(argparse.Namespace()) == 0
    finally:
        probe.active = False
        signal.signal(signal.SIGTERM, sigterm)
    assert logging == [("WARNING", "json")]
    assert (tmp_path / "summary.json").read_text().startswith("{")
    return settings, walked


@asynccontextmanager
async def live_sim(chain_id: int) -> AsyncIterator[SimVenue]:
    config = SimConfig(scenario="static", markets=3, seed=5, rate_limits=None, chain=ChainConfig(chain_id=chain_id))
    async with open_sim_venue(config) as sim:
        yield sim


def live_run(probe: Probe) -> tuple[Settings, list[int]]:
    """`run_trader` live with `--venue polymarket`, every endpoint, key and chain setting pointed at a sim."""
    chain_id = Settings().chain.chain_id + 1  # a chain the sim is started on: the node must say the same
    key = "0x" + secrets.token_hex(32)
    eoa = OrderSigner(key).address
    schema = PostgresSettings(url=pg_dsn(), schema=f"test_every_setting_{uuid.uuid4().hex[:12]}")
    walked: list[int] = []
    out: list[Settings] = []

    async def main() -> None:
        async with live_sim(chain_id) as sim:
            credentials = sim.api_keys.derive(eoa, 0)
            first = sim.exchange.markets[0]
            urls = sim.urls
            values = run_values(
                "live",
                {
                    "run.venue": VenueKind.POLYMARKET,
                    "run.live": True,
                    "run.database_url": schema.url,
                    "store.schema": schema.schema,
                    "run.summary_json": None,
                    "run.redis_url": None,
                    "endpoints.rest_url": urls.rest,
                    "endpoints.ws_market_url": urls.ws_market,
                    "endpoints.ws_user_url": urls.ws_user,
                    "endpoints.gamma_url": urls.gamma,
                    "endpoints.espn_url": urls.espn,
                    "keys.private_key": Secret(key),
                    "keys.signature_type": 1,  # a Polymarket proxy wallet
                    "keys.funder": proxy_wallet_address(eoa),
                    "keys.api_key": credentials.api_key,
                    "keys.api_secret": Secret(credentials.secret),
                    "keys.api_passphrase": Secret(credentials.passphrase),
                    "chain.rpc_url": urls.rpc,
                    "chain.relayer_url": urls.relayer,
                    "chain.relayer_api_key": Secret("relayer-key"),
                    "chain.relayer_api_key_address": eoa,
                    "chain.chain_id": chain_id,
                    "markets.slugs": (first.slug,),
                    "markets.condition_ids": (first.condition_id,),
                    "markets.token_ids": first.token_ids,
                    "markets.tag_id": "1",
                    "markets.category": "sports",  # the sim's markets have none: nothing is selected
                    "clipper.tokens": (first.token_ids[0],),
                    "sniper.targets": (f"{first.condition_id}=401585601:BOS",),
                    "markets.min_liquidity": Decimal("0.0001"),
                    "sum_to_100.enabled": False,
                    "sum_deviation.enabled": False,
                },
            )
            settings = probe.track(with_values(Settings(), values))
            out.append(settings)
            probe.active = True
            try:
                await probing(probe, walked)(settings, stop=trio.sleep_forever)
            finally:
                probe.active = False
        await drop_postgres_schema(schema)

    trio.run(main)
    return out[0], walked


# -- the tests --------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)  # two runs of the engine of a few seconds each, on a loaded 2-core machine
def test_every_documented_setting_changes_what_the_engine_runs_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = [name for name, _type, _default in rows()]
    probe = Probe()
    paper, walked_paper = paper_run(probe, tmp_path, monkeypatch)
    live, walked_live = live_run(probe)
    assert walked_paper
    assert walked_live
    assert min(walked_paper + walked_live) > 200  # the walk saw the engine

    defaults = {leaf.dotted: getattr(leaf.section, leaf.name) for leaf in leaves_of(Settings())}
    consumed: dict[str, str] = {}
    changed: set[str] = set()
    for run in (paper, live):
        for leaf in leaves_of(run):
            value = object.__getattribute__(leaf.section, leaf.name)
            if value != defaults[leaf.dotted]:
                changed.add(leaf.dotted)
                how = probe.read_by.get((id(leaf.section), leaf.name))
                if how is not None:
                    consumed.setdefault(leaf.variable, how)
    leaves = leaves_of(paper)
    assert [leaf.variable for leaf in leaves] == documented  # exactly the generated table, in its order
    assert changed == {leaf.dotted for leaf in leaves}, "a leaf was left at its default in both runs"
    unconsumed = [leaf.variable for leaf in leaves if leaf.variable not in consumed]
    assert unconsumed == [], (
        f"{len(unconsumed)} documented setting(s) had no effect: set to a non-default value, the engine never read "
        f"them nor held them with that value: {', '.join(unconsumed)}"
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Part:
    """A component's settings in a miniature settings tree."""

    url: str = "a"
    retries: int = 1
    window_secs: float = 1.0


class _Component:
    def __init__(self, settings: _Part) -> None:
        self.settings = settings


def test_the_probe_sees_missing_wiring() -> None:
    """Held, read, replaced, held only through the root, read only by a dump: only the first two consume."""
    probe = Probe()
    root = probe.track(Settings())
    part = probe._tracked(_Part(url="b", retries=2, window_secs=2.0))
    probe.active = True
    held = _Component(part)  # wired: the component holds the section
    assert part.window_secs == 2.0  # wired: read by code
    swapped = _Component(dataclasses.replace(part, url="c"))  # `url` replaced: not wired
    holder = _Component(root.risk)  # type: ignore[arg-type]  # a real section, held: its fields consumed
    everything = _Component(root)  # type: ignore[arg-type]  # the root: nothing through it counts
    repr(root.market_data)  # a dump reads every field: not a use
    probe.active = False
    probe.credit_held([swapped, everything])
    key = id(part)
    assert {(k, f) for k, f in probe.consumed if k == key} == {(key, "window_secs"), (key, "retries")}
    probe.credit_held([held, holder])
    assert (key, "url") in probe.consumed
    assert all((id(root.risk), f.name) in probe.consumed for f in dataclasses.fields(root.risk))
    assert not any(k == id(root.market_data) for k, _ in probe.consumed)
