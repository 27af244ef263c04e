"""Rate limits of the real venue: the published sliding windows per endpoint group (protocol.md §4, Cloudflare's), and
the per-signer trading token buckets by tier (`SignerLimits`, protocol.md §11 item 4).

Windows: a request counts against every rule that matches it (its endpoint's rule and the general ones); it is
refused with 429 `Too Many Requests` if any of them is full, and then counts against none. Limits are per client:
the API key when the request carries one, else the peer address. Pure: `check(now, ...)` takes the time.

Signer buckets: see `SignerLimits`; the REST app charges them on the order and cancel endpoints and puts their
`Poly-RateLimit-*` headers on every reply of those (and `Retry-After` on a 429).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
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


# -- per-signer trading buckets (protocol.md §11 item 4) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerTier:
    """One tier: order tokens per second and burst, cancel tokens per second and burst."""

    name: str
    order_rate: float
    order_burst: int
    cancel_rate: float
    cancel_burst: int


#: The tiers by 30-day volume (protocol.md §11 item 4). Written out here on purpose, apart from the engine's copy
#: (`trader.engine.rate_limit.SIGNER_TIERS`): the sim is a model of the venue, and a slip in either shows in tests.
SIGNER_TIERS: dict[str, SignerTier] = {
    t.name: t
    for t in (
        SignerTier("standard", 40, 60, 80, 120),
        SignerTier("copper", 60, 90, 120, 180),
        SignerTier("bronze", 80, 120, 160, 240),
        SignerTier("silver", 200, 300, 400, 600),
        SignerTier("gold", 400, 600, 800, 1_200),
        SignerTier("platinum", 450, 675, 900, 1_350),
        SignerTier("diamond", 525, 787, 1_050, 1_575),
        SignerTier("elite", 600, 900, 1_200, 1_800),
    )
}
DEFAULT_TIER = "standard"


def signer_tier(name: str) -> SignerTier:
    """The tier of that name (any case); `ValueError` naming the known ones otherwise."""
    tier = SIGNER_TIERS.get(name.strip().lower())
    if tier is None:
        raise ValueError(f"unknown rate-limit tier {name!r}; expected one of {', '.join(SIGNER_TIERS)}")
    return tier


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
            self.updated = now


@dataclass(frozen=True, slots=True)
class BucketAnswer:
    """What the per-signer buckets said of one request: `allowed` (in warning mode an over-limit request is allowed
    with `warning`), and the headers every order and cancel reply carries."""

    allowed: bool
    remaining: float
    reset_at: float  # unix seconds when the bucket holds a token again (now, when it does)
    tier: str
    warning: bool = False
    retry_after: float | None = None  # a refusal: seconds until the request's cost is there (None: never)

    def headers(self) -> tuple[tuple[str, str], ...]:
        out = [
            ("Poly-RateLimit-Remaining", str(math.floor(self.remaining))),
            ("Poly-RateLimit-Reset", f"{self.reset_at:.3f}"),
            ("Poly-RateLimit-Tier", self.tier),
        ]
        if self.warning:
            out.append(("Poly-RateLimit-Warning", "true"))
        if not self.allowed and self.retry_after is not None:
            out.append(("Retry-After", str(max(1, math.ceil(self.retry_after)))))
        return tuple(out)


class SignerLimits:
    """Token buckets per signer address: an order bucket (1 token per order, a batch its number of orders) and a
    cancel bucket (1 per id; cancel-all and cancel-market-orders 1 up front plus 1 per order cancelled, charged
    after the fact: the balance may go negative, and then the signer waits it out). A request is all or nothing: it
    passes only if its whole cost is there (a batch costing more than the burst never passes). With `enforce` off
    (the venue's warning-only mode), an over-limit request passes and its reply says `Poly-RateLimit-Warning: true`.

    Tiers per address (`tiers`, lower-case addresses), `default_tier` for the rest. Pure: every call takes `now`
    (unix seconds). `refused` counts the requests answered 429, per address."""

    def __init__(
        self, tiers: Mapping[str, str] | None = None, *, default_tier: str = DEFAULT_TIER, enforce: bool = True
    ) -> None:
        self.default = signer_tier(default_tier)
        self._tiers = {address.lower(): signer_tier(name) for address, name in (tiers or {}).items()}
        self.enforce = enforce
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.refused: Counter[str] = Counter()
        self.warned: Counter[str] = Counter()

    def tier_of(self, address: str) -> SignerTier:
        return self._tiers.get(address.lower(), self.default)

    def set_tier(self, address: str, name: str) -> None:
        """Change an address's tier; its buckets are rebuilt full at the new size."""
        address = address.lower()
        self._tiers[address] = signer_tier(name)
        for kind in ("order", "cancel"):
            self._buckets.pop((address, kind), None)

    def _bucket(self, address: str, kind: str, now: float) -> _Bucket:
        key = (address.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            tier = self.tier_of(address)
            rate, burst = (
                (tier.order_rate, tier.order_burst) if kind == "order" else (tier.cancel_rate, tier.cancel_burst)
            )
            bucket = self._buckets[key] = _Bucket(rate, burst, float(burst), now)
        bucket.refill(now)
        return bucket

    def take(self, address: str, kind: str, cost: int, now: float) -> BucketAnswer:
        """Charge `cost` tokens of the `kind` ("order" or "cancel") bucket if they are all there."""
        bucket = self._bucket(address, kind, now)
        tier = self.tier_of(address).name
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return self._answer(bucket, tier, now, allowed=True)
        retry = None if cost > bucket.burst else (cost - bucket.tokens) / bucket.rate
        if not self.enforce:
            self.warned[address.lower()] += 1
            bucket.tokens -= cost
            return self._answer(bucket, tier, now, allowed=True, warning=True)
        self.refused[address.lower()] += 1
        return self._answer(bucket, tier, now, allowed=False, retry_after=retry)

    def charge(self, address: str, kind: str, cost: int, now: float) -> BucketAnswer:
        """Charge `cost` more tokens after the fact (what a cancel-all cancelled): the balance may go negative."""
        bucket = self._bucket(address, kind, now)
        bucket.tokens -= cost
        return self._answer(bucket, self.tier_of(address).name, now, allowed=True)

    @staticmethod
    def _answer(
        bucket: _Bucket,
        tier: str,
        now: float,
        *,
        allowed: bool,
        warning: bool = False,
        retry_after: float | None = None,
    ) -> BucketAnswer:
        wait = max(0.0, (1.0 - bucket.tokens) / bucket.rate)
        return BucketAnswer(allowed, bucket.tokens, now + wait, tier, warning, retry_after)
