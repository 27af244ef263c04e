"""The simulated venue as one Trio service on loopback: REST (CLOB, Gamma, Data API, admin) and both WebSocket
channels on a single port, the exchange core, its timers, and a scenario moving the markets.

    async with open_sim_venue(SimConfig(seed=1)) as sim:
        sim.urls.rest, sim.urls.ws_market, ...      # base URLs for clients
        sim.urls.rpc, sim.urls.relayer              # the Polygon node and Polymarket's relayer (merges, redemptions)
        sim.exchange                                # books, orders, trades, wallets
        sim.chain                                   # blocks, transactions, nonces
        sim.faults                                  # fault injection

or, under a supervisor: `sim = await nursery.start(run_sim_venue, config)`.

Time: the exchange works in wall-clock unix seconds, derived from the Trio clock (`start_time` +
`trio.current_time()` elapsed), so a MockClock drives settlement, GTD expiry, heartbeats and scenarios alike.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import structlog
import trio

from trader.venues.sim.apikeys import ApiKeyStore
from trader.venues.sim.chain import ChainConfig, SimChain
from trader.venues.sim.exchange import Exchange, ExchangeConfig
from trader.venues.sim.faults import FaultInjector, apply_fault, parse_fault_spec
from trader.venues.sim.gamma import GammaConfig, SimGamma
from trader.venues.sim.httpserver import ConnectionWrapper, serve_connection
from trader.venues.sim.ratelimit import DEFAULT_RULES, DEFAULT_TIER, RateLimiter, RateRule, SignerLimits
from trader.venues.sim.relayer import SimRelayer
from trader.venues.sim.rest import (
    DATA_PREFIX,
    ESPN_PREFIX,
    GAMMA_PREFIX,
    RELAYER_PREFIX,
    RPC_PREFIX,
    RestConfig,
    SimRestApp,
)
from trader.venues.sim.rpc import SimRpc
from trader.venues.sim.scenarios import RouteHandler, Scenario, ScenarioOptions, make_scenario
from trader.venues.sim.ws import MARKET_PATH, USER_PATH, WsHub

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Everything `trader sim` can set. `scenario` is a registered name or a ready `Scenario`."""

    host: str = "127.0.0.1"
    port: int = 0
    scenario: str | Scenario = "synthetic"
    markets: int = 8
    seed: int = 0
    scenario_params: Mapping[str, str] = field(default_factory=dict)
    exchange: ExchangeConfig | None = None
    chain: ChainConfig = field(default_factory=ChainConfig)
    rest: RestConfig = field(default_factory=RestConfig)
    #: Gamma's paging and shapes (production's by default: pages of 100, 422 past offset 2000, keyset endpoints)
    gamma: GammaConfig = field(default_factory=GammaConfig)
    #: the published rate-limit table; None turns limiting off
    rate_limits: tuple[RateRule, ...] | None = DEFAULT_RULES
    #: the per-signer trading buckets: on (True), the tier of each signer address (the rest: `default_tier`), and
    #: whether an over-limit request is refused (429) or only warned about (`Poly-RateLimit-Warning: true`)
    signer_limits: bool = True
    signer_tiers: Mapping[str, str] = field(default_factory=dict)
    default_tier: str = DEFAULT_TIER
    enforce_signer_limits: bool = True
    asset_limit: int = 500
    ws_queue_size: int = 4096
    timer_period_secs: float = 0.05
    #: wall-clock unix seconds at start (default: now); fixed values make runs reproducible
    start_time: float | None = None
    #: fault specs armed at start, as `trader sim --fault kind:key=value,...`
    faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimUrls:
    rest: str
    ws_market: str
    ws_user: str
    gamma: str
    data: str
    espn: str
    rpc: str = ""
    relayer: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "rest": self.rest,
            "ws_market": self.ws_market,
            "ws_user": self.ws_user,
            "gamma": self.gamma,
            "data": self.data,
            "espn": self.espn,
            "rpc": self.rpc,
            "relayer": self.relayer,
        }


class SimVenue:
    """A running simulated venue (also the `ScenarioContext` of its scenario)."""

    def __init__(self, config: SimConfig, scenario: Scenario, start_time: float) -> None:
        self.config = config
        self.scenario = scenario
        self._epoch = start_time - trio.current_time()
        markets, events = scenario.listing()
        exchange_config = config.exchange or ExchangeConfig(seed=config.seed)
        self.faults = FaultInjector()
        self._exchange = Exchange(markets, events, config=exchange_config, hooks=self.faults)
        secret = hashlib.sha256(f"trader-sim:{config.seed}".encode()).digest()
        self.api_keys = ApiKeyStore(secret)
        self.ws = WsHub(
            self._exchange, self.api_keys, self.now, asset_limit=config.asset_limit, queue_size=config.ws_queue_size
        )
        self._exchange.add_listener(self.ws.on_event)
        self.faults.attach(self._exchange, self.ws)
        self.faults.clock = self.now
        limiter = RateLimiter(config.rate_limits) if config.rate_limits is not None else None
        self.signer_limits = (
            SignerLimits(config.signer_tiers, default_tier=config.default_tier, enforce=config.enforce_signer_limits)
            if config.signer_limits
            else None
        )
        self.chain = SimChain(self._exchange, start_time, config=config.chain, hooks=self.faults)
        self.rest = SimRestApp(
            self._exchange,
            self.api_keys,
            self.faults,
            self.now,
            limiter=limiter,
            signer_limits=self.signer_limits,
            config=config.rest,
        )
        self.rest.gamma = SimGamma(self._exchange, config.gamma, seed=config.seed)
        self.rest.rpc = SimRpc(self.chain, self.now)
        self.rest.relayer = SimRelayer(self.chain, self.now, seed=config.seed)
        self.urls = SimUrls("", "", "", "", "", "")
        #: None (the default): every accepted connection is served as accepted. Set, it wraps each connection
        #: accepted from then on (see `ConnectionWrapper`); the tick-to-trade bench's `SimSide` sets it.
        self.wrap_connection: ConnectionWrapper | None = None

    @property
    def exchange(self) -> Exchange:
        return self._exchange

    def now(self) -> float:
        return self._epoch + trio.current_time()

    def add_route(self, prefix: str, handler: RouteHandler) -> None:
        self.rest.extra_routes[prefix] = handler

    def _set_port(self, host: str, port: int) -> None:
        http, ws = f"http://{host}:{port}", f"ws://{host}:{port}"
        self.urls = SimUrls(
            rest=http,
            ws_market=ws + MARKET_PATH,
            ws_user=ws + USER_PATH,
            gamma=http + GAMMA_PREFIX,
            data=http + DATA_PREFIX,
            espn=http + ESPN_PREFIX,
            rpc=http + RPC_PREFIX,
            relayer=http + RELAYER_PREFIX,
        )

    async def _run_timers(self) -> None:
        period = self.config.timer_period_secs
        start, n = trio.current_time(), 0
        while True:
            n += 1
            await trio.sleep_until(start + n * period)
            now = self.now()
            self._exchange.advance(now)
            self.chain.advance(now)


async def run_sim_venue(
    config: SimConfig, *, task_status: trio.TaskStatus[SimVenue] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; `task_status.started(venue)` once the port is bound and the books are seeded."""
    if isinstance(config.scenario, str):
        options = ScenarioOptions(markets=config.markets, seed=config.seed, params=dict(config.scenario_params))
        scenario = make_scenario(config.scenario, options)
    else:
        scenario = config.scenario
    venue = SimVenue(config, scenario, config.start_time if config.start_time is not None else time.time())
    serve = partial(serve_connection, handler=venue.rest, ws_handler=venue.ws.handle)

    async def handler(stream: trio.SocketStream) -> None:
        wrap = venue.wrap_connection
        await serve(stream if wrap is None else wrap(stream))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, config.port, host=config.host))
        port = listeners[0].socket.getsockname()[1]
        venue._set_port(config.host, port)
        scenario.setup(venue.exchange, venue.now())
        for spec in config.faults:
            kind, params = parse_fault_spec(spec)
            apply_fault(venue.faults, kind, params)
        nursery.start_soon(venue._run_timers)
        await nursery.start(partial(scenario.run, venue))
        log.info("sim_venue_ready", rest=venue.urls.rest, markets=len(venue.exchange.markets))
        task_status.started(venue)


@asynccontextmanager
async def open_sim_venue(config: SimConfig | None = None) -> AsyncIterator[SimVenue]:
    """A running sim for the body of the `async with`; stopped (all sockets closed) on exit."""
    async with trio.open_nursery() as nursery:
        venue: SimVenue = await nursery.start(run_sim_venue, config or SimConfig())
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel(reason="sim venue closed by caller")
