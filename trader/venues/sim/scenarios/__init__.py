"""Scenarios: what the simulated venue lists and how its markets move.

A scenario is the extension point for new market behaviour (`quotes` replaying recorded top-of-book, `sports`
with an ESPN feed, `frames` replaying WebSocket frames, ...). It:
1. lists markets and events (`listing()`), fixed before the servers start;
2. seeds the books synchronously (`setup(exchange, now)`), before the first client connects;
3. moves the markets while the sim runs (`run(context, task_status=...)`), submitting and cancelling orders
   through `Exchange.submit` / `Exchange.cancel`, the same order path as real clients after authentication, so
   the channels publish exactly what real traffic would. It may also register extra HTTP routes (for example
   `/espn/...`) through `context.add_route(prefix, handler)`.

Register a factory under a name with `register_scenario`; `trader sim --scenario NAME` and `SimConfig(scenario=
"NAME")` then find it. A factory receives `ScenarioOptions` (`--markets`, `--seed`, and free-form `params` from
`--scenario-param key=value`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from trader.errors import ConfigError
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.markets import SimEvent, SimMarket

RouteHandler = Callable[[HttpRequest, str], Awaitable[HttpResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioOptions:
    markets: int = 8
    seed: int = 0
    params: Mapping[str, str] = field(default_factory=dict)


class ScenarioContext(Protocol):
    """What a running scenario may use (the `SimVenue` provides it)."""

    @property
    def exchange(self) -> Exchange: ...

    def now(self) -> float:
        """Wall-clock unix seconds, derived from the Trio clock (so MockClock drives scenarios too)."""
        ...

    def add_route(self, prefix: str, handler: RouteHandler) -> None:
        """Serve `prefix/...` on the sim's HTTP port (e.g. "/espn")."""
        ...


class Scenario(Protocol):
    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]: ...

    def setup(self, exchange: Exchange, now: float) -> None: ...

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...


ScenarioFactory = Callable[[ScenarioOptions], Scenario]

_REGISTRY: dict[str, ScenarioFactory] = {}


def register_scenario(name: str, factory: ScenarioFactory) -> None:
    _REGISTRY[name] = factory


def scenario_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_scenario(name: str, options: ScenarioOptions) -> Scenario:
    _load_builtin()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown scenario {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return factory(options)


def _load_builtin() -> None:
    if "synthetic" not in _REGISTRY:
        from trader.venues.sim.scenarios import synthetic  # noqa: PLC0415 - registers itself on import

        register_scenario("synthetic", synthetic.SyntheticScenario.from_options)
        register_scenario("static", synthetic.SyntheticScenario.static_from_options)
        from trader.venues.sim.scenarios import frames  # noqa: PLC0415 - imports the exchange and ws modules

        register_scenario("frames", frames.FramesScenario.from_options)
        from trader.venues.sim.scenarios import quotes, sports  # noqa: PLC0415 - as above

        register_scenario("quotes", quotes.QuotesScenario.from_options)
        register_scenario("sports", sports.SportsScenario.from_options)


class StaticScenario:
    """Fixed markets and nothing moving: the books hold only what clients (or a test) put there."""

    def __init__(self, markets: Sequence[SimMarket], events: Sequence[SimEvent] = ()) -> None:
        self._markets = tuple(markets)
        self._events = tuple(events)

    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]:
        return self._markets, self._events

    def setup(self, exchange: Exchange, now: float) -> None:
        return None

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
