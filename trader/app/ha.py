"""Active/standby (`TRADER_HA__*`, docs/ha.md): the leadership of an engine of a pair, and what the operator sees of it.

```
open_leadership(settings, sinks) -> Leadership     the lease on a PostgreSQL connection of its own, its service
PairControl                                        /status, /ready, admin routes: the current term's `Control`
                                                   when leading, the warm market side and the role otherwise
PairWeb                                            the HTTP application: the term's page (`PairDashboard`: the
                                                   role and epoch beside the mode) and routes while leading, a
                                                   short page saying who leads while standing by
LeadershipCollector                                trader_ha_* metrics; the engine's own while a term runs
```

The supervisor (`trader.app.supervisor`) runs the pair's loop: the market side stays open (warm), and each time this
engine becomes the leader it opens the trading side and the core exactly as a restart does, and closes them at once
when the lease is lost.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trader.app.config import Settings
from trader.app.control import Control
from trader.app.dashboard import Dashboard
from trader.app.metrics import EngineCollector, SinkCollector
from trader.app.sinks import Sinks, as_json
from trader.app.venue import MarketSide
from trader.engine.leadership import Leadership, Role, lock_key_for
from trader.errors import ConfigError
from trader.integrations.http_server import Receive, Scope, Send
from trader.integrations.store.lease import open_postgres_lease
from trader.integrations.store.open import postgres_settings

__all__ = ["LeadershipCollector", "PairControl", "PairDashboard", "PairWeb", "open_leadership"]

log = structlog.get_logger(__name__)

_ROLE_VALUE = {Role.STANDBY: 0.0, Role.TAKING_OVER: 0.5, Role.LEADER: 1.0}


@asynccontextmanager
async def open_leadership(settings: Settings, sinks: Sinks) -> AsyncIterator[Leadership]:
    """The lease (on a connection of its own) and the leadership service competing for it, until the block exits;
    leaving, a leader releases the lease (a standby then takes over without waiting it out)."""
    postgres = sinks.postgres
    if postgres is None:
        raise ConfigError("ha.enabled needs a PostgreSQL store")
    ha = settings.ha
    pg = postgres_settings(settings.run.store_url, settings.store)
    key = lock_key_for(ha, settings.store.schema)
    async with open_postgres_lease(pg, key=key, holder=ha.instance_name) as lease:
        leadership = Leadership(lease, ha)
        log.info(
            "ha_started",
            instance=leadership.instance,
            lock_key=key,
            lease_secs=ha.lease_secs,
            renew_secs=ha.renew_secs,
            takeover_secs=ha.takeover_secs,
            poll_secs=ha.poll_secs,
            on_fenced=ha.on_fenced,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(leadership.run)
            try:
                yield leadership
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await leadership.resign("shutdown")


class PairControl:
    """The operator's view of an engine of a pair (`trader.integrations.http_server.EngineControl`): while it leads,
    the current term's `Control`; while it stands by, its warm market side, and `/ready` fails (`leader: false`)."""

    def __init__(self, settings: Settings, sinks: Sinks, market: MarketSide, leadership: Leadership) -> None:
        self.settings = settings
        self.sinks = sinks
        self.market = market
        self.leadership = leadership
        self.current: Control | None = None

    def readiness(self) -> Mapping[str, bool]:
        checks = {"leader": self.leadership.is_leader}
        if self.current is not None:
            checks.update(self.current.readiness())
        else:
            checks["store_writable"] = self.sinks.store.available
            checks["market_data"] = self.market.market_data.statistics().connected > 0
        return checks

    def ha_status(self) -> dict[str, object]:
        document = as_json(self.leadership.statistics())
        assert isinstance(document, dict)
        return document

    def status(self) -> Mapping[str, object]:
        """`/status?full=1`: the engine's while leading, the warm market side's while standing by; with `ha`."""
        return self._with_role(None if self.current is None else self.current.status())

    def brief_status(self) -> Mapping[str, object]:
        """`/status`: the engine's short document while leading; with `ha`."""
        return self._with_role(None if self.current is None else self.current.brief_status())

    def _with_role(self, leading: Mapping[str, object] | None) -> Mapping[str, object]:
        if leading is not None:
            document = dict(leading)
        else:
            market = self.market
            books = list(market.books.tokens())
            document = {
                "mode": "live" if self.settings.run.live else "paper",
                "venue": str(self.settings.run.venue),
                "trading_state": "STANDBY",
                "markets": {"followed": len(market.tracked), "found": len(market.books.markets), "books": len(books)},
                "market_data": as_json(market.market_data.statistics()),
                "store": {"available": self.sinks.store.available},
            }
        document["ha"] = self.ha_status()
        return document

    async def emergency_stop(self, reason: str) -> None:
        if self.current is not None:
            await self.current.emergency_stop(reason)
        else:
            log.warning("emergency_stop_on_standby", reason=reason, detail="a standby sends nothing; nothing to stop")

    async def resume(self) -> None:
        if self.current is not None:
            await self.current.resume()


class LeadershipCollector(Collector):
    """`trader_ha_role` (1 leader, 0.5 taking over, 0 standby), `trader_ha_epoch`, `trader_ha_lease_age_seconds`,
    `trader_ha_takeovers_total`, `trader_ha_fenced_total`; and, while this engine leads, the engine's own metrics."""

    def __init__(self, pair: PairControl) -> None:
        self._pair = pair

    def collect(self) -> Iterator[Metric]:
        leadership = self._pair.leadership
        stats = leadership.statistics()
        role = GaugeMetricFamily("trader_ha_role", "1 leader, 0.5 taking over, 0 standby", labels=["instance"])
        role.add_metric([stats.instance], _ROLE_VALUE[leadership.role])
        yield role
        epoch = GaugeMetricFamily("trader_ha_epoch", "the lease's epoch (fencing token) as this engine knows it")
        epoch.add_metric([], float(stats.epoch or 0))
        yield epoch
        age = GaugeMetricFamily("trader_ha_lease_age_seconds", "seconds since the lease was last renewed")
        age.add_metric([], -1.0 if stats.lease_age_secs is None else stats.lease_age_secs)
        yield age
        takeovers = CounterMetricFamily("trader_ha_takeovers", "times this engine became the leader")
        takeovers.add_metric([], float(stats.takeovers))
        yield takeovers
        fenced = CounterMetricFamily("trader_ha_fenced", "times this engine lost the lease without stepping down")
        fenced.add_metric([], float(stats.fenced))
        yield fenced
        current = self._pair.current
        if current is not None:
            yield from EngineCollector(current).collect()
            yield from SinkCollector(current).collect()


class PairDashboard(Dashboard):
    """The page of a term: the engine's, with this engine's role and epoch beside the mode and venue."""

    def __init__(self, control: Control, leadership: Leadership) -> None:
        super().__init__(control)
        self.leadership = leadership

    def snapshot(self) -> dict[str, object]:
        document = super().snapshot()
        stats = self.leadership.statistics()
        document["venue"] = f"{document['venue']} · {stats.role} {stats.instance} (epoch {stats.epoch})"
        document["ha"] = as_json(stats)
        return document


class PairWeb:
    """The HTTP application of an engine of a pair (ASGI). While a term runs, `term_app` (the page, its feed and the
    operator routes of that term); otherwise the operator routes, and at `GET /` a short page with the role."""

    def __init__(self, pair: PairControl, routes: Any) -> None:
        self.pair = pair
        self.routes = routes
        self.term_app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.term_app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/" and scope.get("method") == "GET":
            await self._standby_page(send)
        else:
            await self.routes(scope, receive, send)

    async def _standby_page(self, send: Send) -> None:
        stats = self.pair.leadership.statistics()
        age = "-" if stats.lease_age_secs is None else f"{stats.lease_age_secs:.1f} s"
        body = (
            "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=2>"
            f"<title>trader: {html.escape(stats.role)}</title></head><body><h1>trader</h1>"
            f"<p>{html.escape(stats.instance)} is <b>{html.escape(stats.role)}</b>: it trades nothing."
            f" Leader: {html.escape(str(stats.leader))}, epoch {stats.epoch}, lease age {age};"
            f" takeovers here: {stats.takeovers}. <a href=/status>/status</a></p></body></html>"
        ).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
