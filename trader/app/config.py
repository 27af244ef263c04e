"""Every section of `trader run`'s configuration, as the composition root consumes it.

`Settings` gathers one frozen section per part: the parts' own settings classes (`RiskSettings` from the risk gate,
`MarketDataSettings` from market data, `StoreSettings` from the store, ...) and the sections that only the
composition root reads (`run`, `endpoints`, `keys`, `sim`, `markets`, `bus`, `redis`, `slack`, `supervisor`).
Loading them from the environment (`TRADER_<SECTION>__<FIELD>`, aliases, `.env`) is `trader.settings`' job, on the
floor above.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from trader.config import Secret, check_positive_secs, check_url
from trader.engine.breaker import BreakerSettings
from trader.engine.capital import CapitalSettings
from trader.engine.execution import ExecutionSettings
from trader.engine.funds import FundsSettings
from trader.engine.leadership import HaSettings
from trader.engine.market_data import MarketDataSettings
from trader.engine.order_manager import OrderManagerSettings
from trader.engine.rate_limit import RateLimitSettings
from trader.engine.risk import RiskSettings
from trader.engine.strategy_engine import StrategyEngineSettings
from trader.errors import ConfigError
from trader.integrations.espn import DEFAULT_BASE_URL as ESPN_URL
from trader.integrations.espn import EspnSettings
from trader.integrations.http_server import HttpSettings
from trader.integrations.sinks import SinkSettings
from trader.integrations.store.base import StoreScope, TradingMode
from trader.integrations.store.settings import StoreSettings
from trader.integrations.store.urls import sqlite_path
from trader.strategies.clipper import ClipperSettings
from trader.strategies.sniper import SniperSettings
from trader.strategies.sum_deviation import SumDeviationSettings
from trader.strategies.sum_to_100 import SumTo100Settings
from trader.venues.paper import PaperSettings
from trader.venues.paper_capital import PaperCapitalSettings
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.capital import ChainSettings
from trader.venues.polymarket.gamma import GAMMA_URL
from trader.venues.polymarket.market_ws import MARKET_WS_URL
from trader.venues.polymarket.rest import CLOB_URL
from trader.venues.polymarket.signing import OrderSigner
from trader.venues.polymarket.user_ws import USER_WS_URL

__all__ = [
    "BusSettings",
    "EndpointSettings",
    "KeySettings",
    "RedisSettings",
    "RunSettings",
    "SelectionSettings",
    "Settings",
    "SimSettings",
    "SlackAlertSettings",
    "SlackSinkSettings",
    "StoreSettings",
    "SupervisorSettings",
    "VenueKind",
    "default_database_url",
    "store_scope",
]


class VenueKind(enum.StrEnum):
    SIM = "sim"  # the simulated venue, started in-process on loopback
    POLYMARKET = "polymarket"  # the endpoints in `EndpointSettings` (Polymarket's by default)


#: The paper wallet's largest starting cash: a trillion pUSD with its 6 decimals is 18 digits, well inside the
#: 28 of Python's default decimal context; far beyond, a cent added to it would round away unseen.
MAX_STARTING_CASH_USD: Final = Decimal(10**12)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """`TRADER_RUN__*`. The process: which venue, paper or live, how long, where records go.

    - `venue` (sim): `sim` starts the simulated venue in-process; `polymarket` uses the endpoints section.
    - `live` (false): send real orders (needs keys, `--live` and `TRADER_CONFIRM_LIVE=yes`); paper otherwise.
    - `duration_secs` (none): stop by itself after this long (a graceful drain, exit 0).
    - `summary_json` (none): write the exit summary there as JSON.
    - `starting_cash_usd` (1000): the paper venue's pUSD balance when its store holds no wallet yet (a restart
      continues from the stored wallet).
    - `database_url` (alias `TRADER_DATABASE_URL`): `sqlite:PATH` or `postgresql://...`; unset, each account scope
      has its own file (`default_database_url`): `trader.sqlite3` for paper against the sim,
      `trader-<paper|live>-<venue>.sqlite3` for the others. A database keeps one scope's records and refuses another.
    - `redis_url` (none; alias `TRADER_REDIS_URL`): publish events to Redis as well as in-process (`redis`).
    - `drain_secs` (5): how long in-flight orders may take to finish on shutdown.
    - `cancel_resting_on_exit` (true): cancel our resting orders at the venue on shutdown.
    - `intent_buffer` (8): the bounded channel between strategies and execution.
    - `log_level` (INFO), `log_format` (auto: console on a terminal, JSON otherwise; `--log-format` on `run`).
    - `status_line_secs` (10): log a `status` line this often (state, equity, cash, locked, PnL, fills, refusals by
      reason, book health); 0 turns it off.
    """

    venue: VenueKind = VenueKind.SIM
    live: bool = False
    duration_secs: float | None = None
    summary_json: str | None = None
    starting_cash_usd: Decimal = Decimal(1000)
    database_url: str | None = None
    redis_url: str | None = None
    drain_secs: float = 5.0
    cancel_resting_on_exit: bool = True
    intent_buffer: int = 8
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"
    status_line_secs: float = 10.0

    def __post_init__(self) -> None:
        check_positive_secs(self, "duration_secs", "drain_secs")
        if not 0 <= self.status_line_secs < float("inf"):
            raise ValueError("status_line_secs must be a number of seconds >= 0 (0 turns the status line off)")
        if self.starting_cash_usd < 0:
            raise ValueError("starting_cash_usd must not be negative")
        if self.starting_cash_usd > MAX_STARTING_CASH_USD:  # beyond, cents would round away in 28-digit decimals
            cash, most = self.starting_cash_usd, MAX_STARTING_CASH_USD
            raise ValueError(f"starting_cash_usd must be at most {most:,}, got {cash}")
        if not 1 <= self.intent_buffer <= 64:
            raise ValueError("intent_buffer must be within [1, 64]")
        url = self.database_url
        if url is not None and not url.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("database_url must be sqlite:PATH or a postgresql:// URL")

    @property
    def store_url(self) -> str:
        """The database of this run: `database_url`, else the default of its scope (`default_database_url`)."""
        return self.database_url or default_database_url(live=self.live, venue=self.venue)


def default_database_url(*, live: bool, venue: VenueKind) -> str:
    """The database a scope uses unless told otherwise: paper trading against the sim keeps the quick start's
    `trader.sqlite3`; every other scope has a file of its own, so that switching mode or venue needs no setting."""
    if not live and venue is VenueKind.SIM:
        return "sqlite:trader.sqlite3"
    return f"sqlite:trader-{'live' if live else 'paper'}-{venue.value}.sqlite3"


def check_ha(settings: Settings) -> None:
    """Active/standby (`ha.enabled`) needs what every engine of the pair shares: a PostgreSQL store, a venue outside
    the process, and intents written to that database (not a local journal). `ConfigError` says which is missing."""
    if not settings.ha.enabled:
        return
    run = settings.run
    if sqlite_path(run.store_url) is not None:
        raise ConfigError(
            "ha.enabled needs a PostgreSQL store shared by the engines (TRADER_DATABASE_URL=postgresql://...); "
            "SQLite has no active/standby"
        )
    if run.venue is VenueKind.SIM:
        raise ConfigError(
            "ha.enabled needs a venue both engines reach: --venue polymarket (with TRADER_ENDPOINTS__* pointing at a "
            "separately started `trader sim` to rehearse); --venue sim runs a venue inside each engine"
        )
    if settings.store.intent_journal not in ("auto", "off"):
        raise ConfigError(
            "ha.enabled: store.intent_journal must be auto or off (a local journal file is not seen by the standby)"
        )


def store_scope(settings: Settings) -> StoreScope:
    """Whose records this run keeps: paper or live, the venue, and live, the wallet holding the funds."""
    run = settings.run
    if not run.live:
        return StoreScope(mode=TradingMode.PAPER, venue=run.venue.value)
    wallet = settings.keys.signer("live trading").funder
    return StoreScope(mode=TradingMode.LIVE, venue=run.venue.value, wallet=wallet.lower())


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSettings:
    """`TRADER_ENDPOINTS__*`: the venue's URLs for `--venue polymarket` (Polymarket's production hosts by default;
    point them at a separately started `trader sim` to rehearse exactly as against Polymarket)."""

    rest_url: str = CLOB_URL
    ws_market_url: str = MARKET_WS_URL
    ws_user_url: str = USER_WS_URL
    gamma_url: str = GAMMA_URL
    espn_url: str = ESPN_URL

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # each parses at all: `trader doctor` says if the scheme is right
            check_url(field.name, getattr(self, field.name))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySettings:
    """Live trading keys (aliases `TRADER_PRIVATE_KEY`, `TRADER_SIGNATURE_TYPE`, `TRADER_FUNDER`, `TRADER_API_KEY`,
    `TRADER_API_SECRET`, `TRADER_API_PASSPHRASE`). The API credentials are derived from the key when not given."""

    private_key: Secret | None = None
    signature_type: int = 0
    funder: str | None = None
    api_key: str | None = None
    api_secret: Secret | None = None
    api_passphrase: Secret | None = None

    def signer(self, purpose: str) -> OrderSigner:
        """The order signer for these keys; `ConfigError` (naming the field, never the key) when they are unusable.
        `purpose` ends the "needs TRADER_PRIVATE_KEY" message, e.g. "live trading"."""
        if self.private_key is None:
            raise ConfigError(f"{purpose} needs TRADER_PRIVATE_KEY")
        try:
            return OrderSigner(self.private_key.get(), signature_type=self.signature_type, funder=self.funder)
        except ValueError as exc:  # the signer's errors name the field, never the key
            raise ConfigError(f"keys: {exc}") from None

    def credentials(self) -> ApiCredentials | None:
        """The configured API credentials, or None to derive them from the key (L1)."""
        given = (self.api_key, self.api_secret, self.api_passphrase)
        if all(v is None for v in given):
            return None
        if self.api_key is None or self.api_secret is None or self.api_passphrase is None:
            raise ConfigError("give all three of TRADER_API_KEY, TRADER_API_SECRET and TRADER_API_PASSPHRASE, or none")
        try:
            return ApiCredentials(self.api_key, self.api_secret.get(), self.api_passphrase.get())
        except ValueError as exc:  # names the field only
            raise ConfigError(f"keys: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class SimSettings:
    """`TRADER_SIM__*`: the in-process simulated venue of `--venue sim`: `scenario` (synthetic), `markets` (8),
    `seed` (0), `params` (comma-separated `key=value` scenario parameters)."""

    scenario: str = "synthetic"
    markets: int = 8
    seed: int = 0
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionSettings:
    """`TRADER_MARKETS__*`: which markets to follow (Gamma discovery; empty selectors select all that pass the
    filters): `slugs`, `condition_ids`, `token_ids`, `tag_id`, `category`, `min_liquidity`, at most `max_markets`
    (100: the books, WebSocket subscriptions and strategy work the engine takes on; the first ones Gamma lists),
    refreshed every `refresh_secs` (60) so new and closed markets are picked up without a restart (a market the
    venue announces on the market channel, `new_market`, is looked up at once and followed if selected). Discovery reads
    Gamma's whole listing, 100 markets a page, at most `max_pages` (50) pages: a bound on each refresh's time and
    traffic (Polymarket lists tens of thousands of open markets: select them with `tag_id`, `slugs`, ...); a
    selection wider than that is followed as far as it was read, and the discovery is reported incomplete."""

    slugs: tuple[str, ...] = ()
    condition_ids: tuple[str, ...] = ()
    token_ids: tuple[str, ...] = ()
    tag_id: str | None = None
    category: str | None = None
    min_liquidity: Decimal | None = None
    max_markets: int = 100
    refresh_secs: float = 60.0
    max_pages: int = 50

    def __post_init__(self) -> None:
        if self.max_markets < 0:
            raise ValueError(f"max_markets must be >= 0, got {self.max_markets}")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {self.max_pages}")
        check_positive_secs(self, "refresh_secs")


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSettings:
    """`TRADER_BUS__*`: the event bus (in-process always; Redis too when `run.redis_url` is set).

    - `book_summary_secs` (1.0): top-of-book summaries are published at most this often per token (0: none).
    - `keep_last` (1000): events the in-process bus keeps for late readers.
    """

    book_summary_secs: float = 1.0
    keep_last: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.book_summary_secs < math.inf:
            raise ValueError(f"book_summary_secs must be >= 0, got {self.book_summary_secs}")
        if self.keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, got {self.keep_last}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    """`TRADER_REDIS__*`: the Redis bus behind `run.redis_url` (alias `TRADER_REDIS_URL`).

    - `prefix` ("trader"): channels `<prefix>:<kind>` (book, intent, order, fill, trade, risk, opportunity,
      emergency_stop, system) and the capped stream `<prefix>:events`.
    - `stream_maxlen` (100000): the stream is trimmed to about this many events.
    - `socket_timeout_secs` (2.0), `connect_timeout_secs` (2.0): bound every call.
    The channel in front of it is the `redis_sink` section (`TRADER_REDIS_SINK__*`).
    """

    prefix: str = "trader"
    stream_maxlen: int = 100_000
    socket_timeout_secs: float = 2.0
    connect_timeout_secs: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackAlertSettings:
    """`TRADER_SLACK__*`: Slack alerts, on when `webhook_url` is set (alias `TRADER_SLACK_WEBHOOK_URL`, a secret).

    - `label` ("trader"): the first word of every message.
    - `min_interval_secs` (1.0): at most one post this often (alerts in between are coalesced).
    - `dedupe_window_secs` (300.0): the same alert is sent once within this window.
    - `timeout_secs` (5.0): one POST.
    - `fills` (true): an alert per fill.
    - `storm_disconnects` (5) within `storm_window_secs` (60.0): a disconnect storm (market or user channel).
    - `daily_summary` (true): a summary when the risk day ends (`risk.daily_reset_utc`), and at exit.
    Storms and daily summaries are published on the event bus (`trader:system`) whether or not Slack is on.
    The channel in front of it is the `slack_sink` section (`TRADER_SLACK_SINK__*`).
    """

    webhook_url: Secret | None = None
    label: str = "trader"
    min_interval_secs: float = 1.0
    dedupe_window_secs: float = 300.0
    timeout_secs: float = 5.0
    fills: bool = True
    storm_disconnects: int = 5
    storm_window_secs: float = 60.0
    daily_summary: bool = True

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            check_url("webhook_url", self.webhook_url.get(), ("https", "http"), secret=True)
        if self.storm_disconnects < 1:
            raise ValueError("storm_disconnects must be >= 1")
        check_positive_secs(self, "storm_window_secs")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSinkSettings(SinkSettings):
    """`TRADER_SLACK_SINK__*`: the Slack channel is smaller than the others: `capacity` (100), `max_batch` (20),
    `keep_last` (50); the rest as `SinkSettings`."""

    capacity: int = 100
    max_batch: int = 20
    keep_last: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorSettings:
    """`TRADER_SUPERVISOR__*`: the composition root's own timings (each was a number in the wiring before).

    - `discovery_timeout_secs` (60): the first market discovery must succeed within this, or `trader run` fails;
      every later refresh (all its pages) is bounded by it too.
    - `events_refresh_secs` (60), `events_timeout_secs` (20): the neg-risk events (which baskets are complete) are
      read again this often, each read bounded.
    - `sink_flush_secs` (5): at exit, the Redis and Slack sinks may take this long to deliver what they hold.
    - `opportunities_write_secs` (1): closed opportunities are written to the store in batches this often;
      `opportunities_flush_secs` (2): at exit, the last batch may take this long.
    - `market_data_close_secs` (3): at exit, the market connections may take this long to close.
    - `disconnect_check_secs` (1): how often reconnect counts are read for disconnect storms.
    - `http_backstop_secs` (60): the HTTP client's own timeout, a backstop: every call is bounded by its caller first.
    """

    discovery_timeout_secs: float = 60.0
    events_refresh_secs: float = 60.0
    events_timeout_secs: float = 20.0
    sink_flush_secs: float = 5.0
    opportunities_write_secs: float = 1.0
    opportunities_flush_secs: float = 2.0
    market_data_close_secs: float = 3.0
    disconnect_check_secs: float = 1.0
    http_backstop_secs: float = 60.0

    def __post_init__(self) -> None:
        check_positive_secs(self, *(f.name for f in dataclasses.fields(self)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting of `trader run`, by section (`TRADER_<SECTION>__<FIELD>`)."""

    run: RunSettings = dataclasses.field(default_factory=RunSettings)
    endpoints: EndpointSettings = dataclasses.field(default_factory=EndpointSettings)
    keys: KeySettings = dataclasses.field(default_factory=KeySettings)
    chain: ChainSettings = dataclasses.field(default_factory=ChainSettings)
    sim: SimSettings = dataclasses.field(default_factory=SimSettings)
    markets: SelectionSettings = dataclasses.field(default_factory=SelectionSettings)
    http: HttpSettings = dataclasses.field(default_factory=HttpSettings)
    market_data: MarketDataSettings = dataclasses.field(default_factory=MarketDataSettings)
    risk: RiskSettings = dataclasses.field(default_factory=RiskSettings)
    execution: ExecutionSettings = dataclasses.field(default_factory=ExecutionSettings)
    funds: FundsSettings = dataclasses.field(default_factory=FundsSettings)
    orders: OrderManagerSettings = dataclasses.field(default_factory=OrderManagerSettings)
    breaker: BreakerSettings = dataclasses.field(default_factory=BreakerSettings)
    rate_limit: RateLimitSettings = dataclasses.field(default_factory=RateLimitSettings)
    paper: PaperSettings = dataclasses.field(default_factory=PaperSettings)
    capital: CapitalSettings = dataclasses.field(default_factory=CapitalSettings)
    paper_capital: PaperCapitalSettings = dataclasses.field(default_factory=PaperCapitalSettings)
    strategy_engine: StrategyEngineSettings = dataclasses.field(default_factory=StrategyEngineSettings)
    sum_to_100: SumTo100Settings = dataclasses.field(default_factory=SumTo100Settings)
    clipper: ClipperSettings = dataclasses.field(default_factory=ClipperSettings)
    sniper: SniperSettings = dataclasses.field(default_factory=SniperSettings)
    sum_deviation: SumDeviationSettings = dataclasses.field(default_factory=SumDeviationSettings)
    espn: EspnSettings = dataclasses.field(default_factory=EspnSettings)
    store: StoreSettings = dataclasses.field(default_factory=StoreSettings)
    store_sink: SinkSettings = dataclasses.field(default_factory=SinkSettings)
    bus: BusSettings = dataclasses.field(default_factory=BusSettings)
    redis: RedisSettings = dataclasses.field(default_factory=RedisSettings)
    redis_sink: SinkSettings = dataclasses.field(default_factory=SinkSettings)
    slack: SlackAlertSettings = dataclasses.field(default_factory=SlackAlertSettings)
    slack_sink: SlackSinkSettings = dataclasses.field(default_factory=SlackSinkSettings)
    supervisor: SupervisorSettings = dataclasses.field(default_factory=SupervisorSettings)
    ha: HaSettings = dataclasses.field(default_factory=HaSettings)
