"""Rate limits of the real venue (protocol.md §4, the published table): sliding windows per endpoint group.

A request counts against every rule that matches it (its endpoint's rule and the general ones); it is refused with
429 `Too Many Requests` if any of them is full, and then counts against none. Limits are per client: the API key
when the request carries one, else the peer address. Pure: `check(now, ...)` takes the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RateRule:
    """`limit` requests per `window_secs` for requests of `service` whose method and path match."""

    name: str
    limit: int
    window_secs: float = 10.0
    service: str = "clob"
    methods: frozenset[str] = frozenset()  # empty = any method
    paths: tuple[str, ...] = ()  # exact paths; empty = any path of the service
    prefixes: tuple[str, ...] = ()

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.service not in (service, "*"):
            return False
        if self.methods and method not in self.methods:
            return False
        if not self.paths and not self.prefixes:
            return True
        return path in self.paths or any(path.startswith(p) for p in self.prefixes)


def _rule(
    name: str,
    limit: int,
    *,
    window: float = 10.0,
    service: str = "clob",
    methods: str = "",
    paths: Sequence[str] = (),
    prefixes: Sequence[str] = (),
) -> RateRule:
    return RateRule(
        name=name,
        limit=limit,
        window_secs=window,
        service=service,
        methods=frozenset(methods.split()) if methods else frozenset(),
        paths=tuple(paths),
        prefixes=tuple(prefixes),
    )


#: The published table (2026). Trading endpoints have a burst (10 s) and a sustained (10 min) window.
DEFAULT_RULES: tuple[RateRule, ...] = (
    _rule("general", 15_000, service="*"),
    _rule("clob_general", 9_000),
    _rule("book_price_midpoint", 1_500, methods="GET", paths=("/book", "/price", "/midpoint")),
    _rule("books_prices_midpoints", 500, methods="POST", paths=("/books", "/prices", "/midpoints")),
    _rule("tick_size", 200, paths=("/tick-size",)),
    _rule("data_orders_trades", 500, prefixes=("/data/orders", "/data/trades", "/data/order/")),
    _rule("api_keys", 100, prefixes=("/auth/",)),
    _rule("balance_allowance", 200, methods="GET", paths=("/balance-allowance",)),
    _rule("balance_allowance_update", 50, paths=("/balance-allowance/update",)),
    _rule("post_order_burst", 3_500, methods="POST", paths=("/order",)),
    _rule("post_order_sustained", 36_000, window=600.0, methods="POST", paths=("/order",)),
    _rule("delete_order_burst", 3_000, methods="DELETE", paths=("/order",)),
    _rule("delete_order_sustained", 30_000, window=600.0, methods="DELETE", paths=("/order",)),
    _rule("post_orders_burst", 1_000, methods="POST", paths=("/orders",)),
    _rule("post_orders_sustained", 15_000, window=600.0, methods="POST", paths=("/orders",)),
    _rule("delete_orders_burst", 1_000, methods="DELETE", paths=("/orders",)),
    _rule("delete_orders_sustained", 15_000, window=600.0, methods="DELETE", paths=("/orders",)),
    _rule("cancel_all_burst", 250, methods="DELETE", paths=("/cancel-all", "/cancel-market-orders")),
    _rule(
        "cancel_all_sustained", 6_000, window=600.0, methods="DELETE", paths=("/cancel-all", "/cancel-market-orders")
    ),
    _rule("gamma_general", 4_000, service="gamma"),
    _rule("gamma_markets", 300, service="gamma", paths=("/markets",)),
    _rule("gamma_events", 500, service="gamma", paths=("/events",)),
    _rule("data_general", 1_000, service="data"),
)


class RateLimiter:
    def __init__(self, rules: Sequence[RateRule] = DEFAULT_RULES) -> None:
        self.rules = tuple(rules)
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self.refused = 0

    def check(self, now: float, *, client: str, service: str, method: str, path: str) -> RateRule | None:
        """Count the request and return None, or return the full rule (the request is refused, not counted)."""
        matching = [r for r in self.rules if r.matches(service, method, path)]
        windows = []
        for rule in matching:
            hits = self._hits.setdefault((rule.name, client), deque())
            while hits and hits[0] <= now - rule.window_secs:
                hits.popleft()
            if len(hits) >= rule.limit:
                self.refused += 1
                return rule
            windows.append(hits)
        for hits in windows:
            hits.append(now)
        return None
