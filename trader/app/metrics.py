"""Prometheus metrics, read from the services' `statistics()` at scrape time.

Nothing is counted twice: the services keep their own counters, and this collector turns them into metric families
when `/metrics` is scraped. The tick-to-trade histogram (`TickToTrade`) is observed as it happens, fed by the order
manager's events; the market-data service counts feed latency into its own histogram (one bisect per frame).

The list of metrics, with their types, labels and meaning, is the README's ("Metrics, dashboard and alerts");
a test compares it with a running engine's scrape. Conventions (`promtool check metrics` passes, also tested): base
units (seconds; pUSD as `_usd`), counters named without `_total` here (the client adds it), percentiles only from
histograms (`_histogram` turns a `trader.infra.histogram.Histogram` into one), and a reason in a label of its own.

Money gauges are floats because Prometheus has no other number type; they are for dashboards, never for decisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal

import trio
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from trader.app.control import Control
from trader.domain.positions import Portfolio, marks_at_mid
from trader.domain.risk import TradingState
from trader.engine.breaker import BreakerState
from trader.engine.capital import CapitalStatistics
from trader.engine.execution import ExecutionService
from trader.engine.strategy_engine import StrategyEngine
from trader.engine.venue_health import VenueProblem
from trader.infra.histogram import HistogramSnapshot
from trader.venues.errors import TradingRestriction

__all__ = ["EngineCollector", "SinkCollector", "TickToTrade"]


def _counter(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels) if labels else None)
    family.add_metric(list(labels.values()) if labels else [], value)
    return family


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], float("nan") if value is None else value)
    return family


def _histogram(name: str, doc: str, snapshot: HistogramSnapshot) -> HistogramMetricFamily:
    buckets = [("+Inf" if math.isinf(bound) else repr(bound), float(count)) for bound, count in snapshot.buckets]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=snapshot.total)


def _labelled(name: str, doc: str, label: str, values: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _money(value: Decimal) -> float:
    return float(value)


class EngineCollector(Collector):
    """Reads the engine's statistics at scrape time."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def collect(self) -> Iterator[Metric]:
        yield from self._discovery()
        yield from self._market_data()
        yield from self._execution(self._control.core.execution)
        yield from self._strategies(self._control.core.strategy_engine)
        yield from self._capital(self._control.core.capital.statistics())
        yield from self._restrictions()
        yield from self._venue_doubts()
        yield from self._heartbeat()

    def _heartbeat(self) -> Iterator[Metric]:
        """The venue's dead-man switch (live only; in paper trading there is none and every value is 0)."""
        live = self._control.venue.live
        beat = None if live is None or live.heartbeat is None else live.heartbeat.statistics()
        yield _gauge(
            "trader_heartbeat_enabled", "1 while the engine feeds the venue's dead-man switch", beat is not None
        )
        yield _counter("trader_heartbeats", "heartbeats sent", 0 if beat is None else beat.sent)
        yield _counter("trader_heartbeat_failures", "heartbeats that failed", 0 if beat is None else beat.failures)
        yield _gauge(
            "trader_heartbeat_lapsed",
            "1 when no heartbeat succeeded for the lapse window: expect the venue to have cancelled our orders",
            beat is not None and beat.lapsed,
        )
        since = None if beat is None or beat.last_success_at is None else trio.current_time() - beat.last_success_at
        yield _gauge("trader_heartbeat_last_success_age_seconds", "seconds since the last heartbeat succeeded", since)

    def _venue_doubts(self) -> Iterator[Metric]:
        """The breakers of the endpoint families, the orders in doubt, and the venue's health."""
        manager = self._control.core.manager
        breakers = manager.breakers.statistics()
        state = GaugeMetricFamily(
            "trader_breaker_state", "1 for the current state of each family's breaker", labels=["family", "state"]
        )
        moves = CounterMetricFamily(
            "trader_breaker_transitions", "breaker state changes, by family and new state", labels=["family", "to"]
        )
        for family, b in breakers.items():
            for candidate in BreakerState:
                state.add_metric([family, str(candidate)], 1.0 if candidate is b.state else 0.0)
            moves.add_metric([family, "open"], b.opens)
            moves.add_metric([family, "half_open"], b.half_opens)
            moves.add_metric([family, "closed"], b.closes)
        yield state
        yield moves
        yield _labelled(
            "trader_breaker_refusals",
            "calls an open breaker refused, by family",
            "family",
            {family: b.rejections for family, b in breakers.items()},
        )
        o = manager.statistics()
        yield _gauge("trader_orders_unknown", "orders whose submit outcome is unknown now", o.unresolved)
        yield _labelled(
            "trader_orders_unknown_resolved",
            "unknown orders settled by the venue's word",
            "verdict",
            {"found": o.resolved_found, "not_found": o.resolved_not_found},
        )
        yield _counter("trader_order_lookups", "lookups by id of unknown orders", o.lookups)
        yield _counter("trader_late_fills", "fills of orders closed without one (applied and reported)", o.late_fills)
        yield _counter(
            "trader_cancels_deferred", "cancels deferred until the venue confirmed the order", o.cancels_deferred
        )
        problem = manager.health.problem(trio.current_time())
        holds = GaugeMetricFamily("trader_venue_problem", "1 while the venue's problem holds", labels=["problem"])
        for code in VenueProblem:
            holds.add_metric([str(code)], 1.0 if code is problem else 0.0)
        yield holds
        yield _labelled(
            "trader_venue_halts",
            "trading halts the venue's problems caused",
            "code",
            dict(self._control.venue_gate.halts),
        )

    def _restrictions(self) -> Iterator[Metric]:
        manager = self._control.core.manager
        stats = manager.restrictions.statistics(trio.current_time())
        active = {a.restriction for a in stats.active}
        held = GaugeMetricFamily(
            "trader_venue_restriction", "1 while the venue's trading restriction holds", labels=["restriction"]
        )
        for restriction in TradingRestriction:
            held.add_metric([str(restriction)], 1.0 if restriction in active else 0.0)
        yield held
        yield _labelled(
            "trader_venue_restriction_refusals", "venue refusals naming a restriction", "restriction", stats.refusals
        )
        yield _labelled(
            "trader_venue_restriction_denied", "orders not sent for a venue restriction", "code", stats.denied
        )
        limits = manager.limiter.statistics()
        tokens = GaugeMetricFamily("trader_rate_limit_tokens", "tokens in the signer's buckets", labels=["bucket"])
        for name, bucket in sorted(limits.buckets.items()):
            tokens.add_metric([name], bucket.tokens)
        yield tokens
        tier = GaugeMetricFamily("trader_rate_limit_tier", "the signer's rate-limit tier", labels=["tier", "source"])
        if limits.tier is not None:
            tier.add_metric([limits.tier, limits.tier_source or ""], 1.0)
        yield tier
        warnings = sum(e.warnings for e in limits.endpoints.values())
        yield _counter("trader_rate_limit_warnings", "replies that carried Poly-RateLimit-Warning", warnings)

    @staticmethod
    def _capital(s: CapitalStatistics) -> Iterator[Metric]:
        yield _counter("trader_capital_merges", "complete-set merges confirmed", s.merges)
        yield _counter("trader_capital_merged_usd", "pUSD freed by merges", _money(s.merged_sets))
        yield _counter("trader_capital_redemptions", "redemptions confirmed", s.redemptions)
        yield _counter("trader_capital_redeemed_usd", "pUSD paid by redemptions", _money(s.redeemed_usd))
        yield _counter("trader_capital_settled_markets", "resolved markets settled", s.settled_markets)
        yield _gauge(
            "trader_capital_settled_pnl_usd", "PnL realized by settling resolved markets", _money(s.settled_pnl)
        )
        yield _gauge("trader_capital_ops_open", "merges and redemptions in flight", s.open_ops)
        yield _labelled(
            "trader_capital_ops_failed", "merges and redemptions that failed, by reason", "reason", s.failed_ops
        )
        yield _gauge("trader_capital_locked_sets", "complete sets held and not being merged", _money(s.locked_sets))
        yield _gauge("trader_capital_receivable_usd", "pUSD owed by redemptions", _money(s.receivable_usd))

    def _discovery(self) -> Iterator[Metric]:
        venue = self._control.venue
        d, g = venue.discovery, venue.gamma.statistics()
        yield _gauge("trader_discovery_markets", "markets the last discovery selected", d.found)
        yield _gauge("trader_discovery_followed", "markets followed (at most markets.max_markets)", len(venue.tracked))
        yield _gauge("trader_discovery_complete", "1 when the last discovery read Gamma's whole listing", d.complete)
        yield _gauge("trader_discovery_pages", "Gamma pages the last discovery read", d.pages)
        family = GaugeMetricFamily("trader_discovery_skipped", "markets the last discovery left out", labels=["reason"])
        for reason, count in sorted(d.skipped.items()):
            family.add_metric([reason], count)
        yield family
        yield _counter("trader_discovery_refreshes", "discoveries that succeeded", d.refreshes)
        yield _counter(
            "trader_discovery_failures", "discoveries that failed (the markets followed were kept)", d.failures
        )
        yield _counter("trader_gamma_pages", "Gamma list pages read", g.pages)
        yield _counter(
            "trader_gamma_keyset_fallbacks", "listings read by offset: keyset answered 404", g.keyset_fallbacks
        )
        yield _counter("trader_gamma_tick_lookups", "missing ticks asked of the CLOB", g.tick_lookups)
        yield _labelled(
            "trader_gamma_incomplete", "Gamma listings that stopped early, by reason", "reason", g.incomplete
        )
        yield _labelled("trader_gamma_dropped", "events and nested markets left out, by reason", "reason", g.dropped)

    def _market_data(self) -> Iterator[Metric]:
        s = self._control.venue.market_data.statistics()
        yield _counter("trader_md_frames", "market-channel frames received (PONG included)", s.frames)
        yield _counter("trader_md_entries", "book levels and level changes read", s.entries)
        yield _labelled("trader_md_drops", "frames or entries dropped, by reason", "reason", s.drops)
        yield _counter("trader_md_reconnects", "market-channel reconnections", s.reconnects)
        yield _counter("trader_md_stalls", "connections closed for silence", s.stalls)
        yield _counter("trader_md_resyncs", "books resynchronised after a mismatch", s.resyncs)
        yield _gauge("trader_md_connections", "market-channel connections up", s.connected)
        yield _gauge("trader_md_books_ready", "books with a current snapshot", s.ready_books)
        yield _gauge("trader_md_books_suspect", "books marked suspect", s.suspect_books)
        yield _gauge("trader_md_books", "books followed (two per market)", s.books)
        yield _gauge("trader_md_max_book_age_seconds", "age of the oldest ready book", s.max_book_age_secs)
        yield _histogram(
            "trader_md_feed_latency_seconds", "local receive time minus the venue's timestamp", s.feed_latency
        )

    def _execution(self, execution: ExecutionService) -> Iterator[Metric]:
        s = execution.statistics()
        o = s.orders
        yield _counter("trader_intents", "intents received from the strategies", s.intents_received)
        yield _labelled("trader_intents_denied", "intents denied, by reason code", "reason", s.intents_denied)
        yield _counter("trader_orders_submitted", "orders sent to the venue", o.submitted)
        yield _counter("trader_orders_accepted", "orders the venue accepted", o.accepted)
        yield _labelled("trader_orders_rejected", "orders the venue refused, by its code", "reason", o.rejected)
        yield _labelled("trader_orders_not_sent", "orders refused before sending, by reason", "reason", o.not_sent)
        yield _gauge("trader_orders_open", "orders open now", o.open_orders)
        yield _counter("trader_fills", "fills received", o.fills)
        yield _counter("trader_trades_failed", "trades that FAILED on chain (fill reversed)", o.trades_failed)
        responses = {
            "429": o.responses_429,
            "5xx": o.responses_5xx,
            "4xx": o.responses_4xx,
            "timeout": o.timeouts,
            "error": o.venue_errors,
        }
        yield _labelled("trader_venue_responses", "venue answers that were not a success", "kind", responses)
        yield _counter("trader_emergency_stops", "emergency stops", s.emergency_stops)
        yield _counter(
            "trader_venue_balance_rejections",
            "orders the venue refused for lack of balance or allowance (should never happen)",
            s.balance_rejections,
        )
        if execution.funds is not None:
            balance, reserved = execution.buying_power()
            yield _gauge(
                "trader_collateral_usd",
                "the wallet's pUSD, as last read and moved by our fills since",
                None if balance is None else _money(balance),
            )
            yield _gauge("trader_reserved_usd", "pUSD held back by working buys", _money(reserved))
        arb = s.arbitrage
        yield _counter("trader_arb_residuals", "arbitrages that left unhedged exposure above dust", arb.residual_events)
        yield _gauge(
            "trader_arb_residual_shares",
            "unhedged shares above dust reported by arbitrages so far (all tokens)",
            _money(sum((abs(v) for v in arb.residual_shares.values()), Decimal(0))),
        )
        state = GaugeMetricFamily("trader_trading_state", "1 for the current trading state", labels=["state"])
        for candidate in TradingState:
            state.add_metric([str(candidate)], 1.0 if candidate is s.trading_state else 0.0)
        yield state
        portfolio: Portfolio = execution.manager.portfolio
        marks = marks_at_mid(t.book for t in self._control.venue.books.tokens())
        unrealized = portfolio.marked_unrealized_pnl(marks)
        yield _gauge("trader_realized_pnl_usd", "realized PnL (pUSD)", _money(portfolio.realized_pnl))
        yield _gauge("trader_unrealized_pnl_usd", "unrealized PnL at mid (pUSD)", _money(unrealized))
        yield _gauge("trader_exposure_usd", "position exposure at cost (pUSD)", _money(portfolio.exposure()))
        yield _gauge("trader_cash_usd", "cash (pUSD)", _money(portfolio.cash))
        risk = self._control.core.risk
        yield _gauge(
            "trader_daily_pnl_usd", "PnL since the risk day began, realized and at mid (pUSD)", _money(risk.daily_pnl)
        )
        yield _gauge(
            "trader_daily_loss_limit_usd",
            "the daily loss that halts trading (risk.max_daily_loss_usd)",
            _money(risk.settings.max_daily_loss_usd),
        )

    def _strategies(self, strategies: StrategyEngine) -> Iterator[Metric]:
        s = strategies.statistics()
        yield _labelled(
            "trader_strategy_intents", "intents emitted", "strategy", {r.name: r.intents for r in s.strategies}
        )
        yield _labelled(
            "trader_strategy_errors", "strategy errors", "strategy", {r.name: r.errors for r in s.strategies}
        )
        yield _counter("trader_strategy_ticks", "strategy engine ticks", s.ticks)
        yield _counter("trader_strategy_overruns", "ticks that overran their period", s.overruns)


class TickToTrade:
    """The histogram of seconds from the latest book change to an order leaving for the venue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "trader_tick_to_trade_seconds",
            "seconds from the latest book change to the order being sent",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )

    def observe(self, seconds: float) -> None:
        self.histogram.observe(max(0.0, seconds))


class SinkCollector(Collector):
    """Prometheus metrics of the store and the sinks (read from their statistics at scrape time).

    `trader_store_available` (gauge), `trader_store_outages_total`, `trader_sink_queued{sink}`,
    `trader_sink_available{sink}` (gauges), `trader_sink_delivered_total{sink}`, `trader_sink_dropped_total{sink}`,
    `trader_sink_undelivered_total{sink}`, `trader_sink_failures_total{sink}`, `trader_bus_events_total{outcome}`.
    """

    def __init__(self, control: Control) -> None:
        self._control = control

    def collect(self) -> Iterator[Metric]:
        sinks = self._control.sinks
        available = GaugeMetricFamily("trader_store_available", "1 while the store can record intents")
        available.add_metric([], 1.0 if sinks.store.available else 0.0)
        yield available
        outages = self._control.store_gate.outages
        if sinks.postgres is not None:
            outages = max(outages, sinks.postgres.statistics().outages)
        yield CounterMetricFamily("trader_store_outages", "times the store became unavailable", value=outages)
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "queued": GaugeMetricFamily("trader_sink_queued", "items waiting in a sink's channel", labels=["sink"]),
            "up": GaugeMetricFamily("trader_sink_available", "1 while a sink delivers", labels=["sink"]),
            "delivered": CounterMetricFamily("trader_sink_delivered", "items a sink delivered", labels=["sink"]),
            "dropped": CounterMetricFamily("trader_sink_dropped", "items refused: channel full", labels=["sink"]),
            "undelivered": CounterMetricFamily(
                "trader_sink_undelivered", "items a lossy sink could not deliver (server down)", labels=["sink"]
            ),
            "failures": CounterMetricFamily("trader_sink_failures", "failed delivery attempts", labels=["sink"]),
        }
        for name, s in sorted(sinks.statistics().items()):
            families["queued"].add_metric([name], s.queued + s.pending)
            families["up"].add_metric([name], 1.0 if s.available else 0.0)
            families["delivered"].add_metric([name], s.delivered)
            families["dropped"].add_metric([name], s.dropped)
            families["undelivered"].add_metric([name], s.undelivered)
            families["failures"].add_metric([name], s.failures)
        yield from families.values()
        publisher = sinks.outputs.publisher
        events = CounterMetricFamily("trader_bus_events", "engine events offered to the bus", labels=["outcome"])
        events.add_metric(["published"], publisher.published)
        events.add_metric(["dropped"], publisher.dropped)
        events.add_metric(["skipped"], publisher.skipped)
        yield events
