"""Client-side rate limiting that follows the venue's published limits: a pure core plus a thin Trio shell.

The table (`POLYMARKET_LIMITS`, `POLYMARKET_ENDPOINTS`, from docs.polymarket.com/api-reference/rate-limits and
protocol.md §4) names each limit once; an endpoint is charged on its own limits and on the shared ones (CLOB
general 9,000/10 s, general 15,000/10 s). Two kinds of limit:

- `WindowLimit`: at most `limit` units in any sliding `period_secs` (Cloudflare's IP limits, which count
  *requests*; `per_token=True` makes a window count the call's `cost` instead). The window is kept as `slots`
  sub-intervals and a unit leaves the window only when its whole slot has: the count is never under-estimated, so
  the limiter never sends more than the venue allows (it may wait up to one slot longer than strictly needed).
- `BucketLimit`: a token bucket (`capacity`, `refill_per_sec`), always counting *tokens*: the per-signer order and
  cancel buckets of 2026 (protocol.md §11 item 4: 1 token per order, N for a batch of N, all or nothing; 1 per
  cancelled id, cancel-all and cancel-market-orders 1 + the number cancelled). Their size depends on the account's
  tier (`SIGNER_TIERS`), so they are not in the default table: `with_signer_buckets` adds them, and a limiter built
  with `RateLimitSettings.signer_buckets` (the default) adds them itself.

Following the venue's per-signer buckets (`signer_buckets`): the tier is never assumed to be better than it is known
to be. Until the venue names it (the `Poly-RateLimit-Tier` header of a reply, or `GET /v1/user/rate-limit-tier`),
the buckets are sized for Standard, the most conservative tier, and the log says so (`rate_limit_tier_assumed`);
`set_tier` resizes them (tokens above a smaller burst are dropped; a larger burst fills up by refilling). Every
reply's report (`observe`: `Poly-RateLimit-Remaining`, `-Reset`, `-Tier`, `-Warning`, `Retry-After`) corrects the
local bucket: the venue's remaining count only ever lowers ours (it may be negative: then the bucket waits the
debt out), a 429's `Retry-After`, or `Reset` when the venue says the bucket is empty, blocks the bucket (every
endpoint charged on it), a warning is counted. A call costing more than a bucket's burst can never pass: `max_cost`
says how much one call may cost, so callers split (a basket's legs, a long list of cancels); `try_acquire` refuses
a larger cost with a ValueError rather than waiting forever.

Priority: cancels and heartbeats are `Priority.HIGH`. NORMAL calls may use only `1 - reserve_fraction` of every
limit they are charged on, so the reserve is always there for a cancel on a shared limit; and HIGH calls never wait
in the FIFO queue that NORMAL calls of the same endpoint wait in. Cancels have a bucket of their own at the venue, so
a burst of orders never holds a cancel back. On the signer's order bucket (no cancel is charged on it) the reserve is
headroom for the network instead: the limiter counts requests as they leave, the venue as they arrive, and
requests delayed unevenly on the way arrive closer together than they left (Standard: 54 of the 60 tokens at once,
6 tokens, 150 ms at 40/s, of jitter absorbed).

A 429 from the venue blocks that endpoint for `Retry-After` seconds when the reply has one, else for an
exponential backoff (`backoff_initial_secs` doubling to `backoff_max_secs`) that resets on the next success.

Pure core: `try_acquire(endpoint, cost, now) -> wait_secs` (0.0 means granted and charged; otherwise nothing
was charged and `wait_secs` is when to try again). Shell: `await acquire(endpoint, cost)` on the Trio clock.

`acquire` is always a cancel point before anything is charged (a cancelled caller charges nothing). It is a
schedule point only when it waits: a call granted at once (no one queued ahead, the limits have room) returns
without yielding to the scheduler, so an order on its way out does not let every other runnable task go first.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import structlog
import trio

from trader.errors import ConfigError
from trader.venues.base import RateLimitReport

log = structlog.get_logger(__name__)


class Priority(enum.IntEnum):
    NORMAL = 0
    HIGH = 1  # cancels and heartbeats: may use the reserve, never queued behind NORMAL calls


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `limit` units in any sliding `period_secs`; a unit is a request, or a token when `per_token`."""

    limit: int
    period_secs: float
    per_token: bool = False


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """A token bucket holding at most `capacity` tokens, refilled at `refill_per_sec`; charged the call's cost."""

    capacity: int
    refill_per_sec: float


LimitSpec = WindowLimit | BucketLimit


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """The limits (by name in the limit table) an endpoint is charged on, and its priority."""

    limits: tuple[str, ...]
    priority: Priority = Priority.NORMAL


def _w(limit: int, period_secs: float = 10.0) -> WindowLimit:
    return WindowLimit(limit, period_secs)


_TEN_MIN = 600.0

#: Published limits, by name (docs.polymarket.com/api-reference/rate-limits).
POLYMARKET_LIMITS: Mapping[str, LimitSpec] = {
    "general": _w(15_000),
    "clob": _w(9_000),
    "gamma": _w(4_000),
    "data": _w(1_000),
    "ok": _w(100),
    "book": _w(1_500),
    "books": _w(500),
    "price": _w(1_500),
    "prices": _w(500),
    "midpoint": _w(1_500),
    "midpoints": _w(500),
    "tick-size": _w(200),
    "data/orders": _w(500),
    "data/trades": _w(500),
    "api-keys": _w(100),
    "balance-allowance": _w(200),
    "balance-allowance/update": _w(50),
    "POST /order burst": _w(3_500),
    "POST /order sustained": _w(36_000, _TEN_MIN),
    "DELETE /order burst": _w(3_000),
    "DELETE /order sustained": _w(30_000, _TEN_MIN),
    "POST /orders burst": _w(1_000),
    "POST /orders sustained": _w(15_000, _TEN_MIN),
    "DELETE /orders burst": _w(1_000),
    "DELETE /orders sustained": _w(15_000, _TEN_MIN),
    "DELETE /cancel-all burst": _w(250),
    "DELETE /cancel-all sustained": _w(6_000, _TEN_MIN),
    "DELETE /cancel-market-orders burst": _w(1_000),
    "DELETE /cancel-market-orders sustained": _w(1_500, _TEN_MIN),
    "gamma /markets": _w(300),
    "gamma /events": _w(500),
    "gamma listing": _w(900),
    "data /trades": _w(200),
    "data /positions": _w(150),
}

_CLOB = ("clob", "general")
_HIGH = Priority.HIGH

#: Which limits each endpoint is charged on. Endpoint names are "METHOD /path" on the CLOB host, and
#: "gamma ..." / "data ..." for the Gamma and Data APIs.
POLYMARKET_ENDPOINTS: Mapping[str, EndpointRule] = {
    "POST /order": EndpointRule(("POST /order burst", "POST /order sustained", *_CLOB)),
    "POST /orders": EndpointRule(("POST /orders burst", "POST /orders sustained", *_CLOB)),
    "DELETE /order": EndpointRule(("DELETE /order burst", "DELETE /order sustained", *_CLOB), _HIGH),
    "DELETE /orders": EndpointRule(("DELETE /orders burst", "DELETE /orders sustained", *_CLOB), _HIGH),
    "DELETE /cancel-all": EndpointRule(("DELETE /cancel-all burst", "DELETE /cancel-all sustained", *_CLOB), _HIGH),
    "DELETE /cancel-market-orders": EndpointRule(
        ("DELETE /cancel-market-orders burst", "DELETE /cancel-market-orders sustained", *_CLOB), _HIGH
    ),
    "POST /v1/heartbeats": EndpointRule(_CLOB, _HIGH),
    "GET /book": EndpointRule(("book", *_CLOB)),
    "POST /books": EndpointRule(("books", *_CLOB)),
    "GET /price": EndpointRule(("price", *_CLOB)),
    "POST /prices": EndpointRule(("prices", *_CLOB)),
    "GET /midpoint": EndpointRule(("midpoint", *_CLOB)),
    "POST /midpoints": EndpointRule(("midpoints", *_CLOB)),
    "GET /tick-size": EndpointRule(("tick-size", *_CLOB)),
    "GET /neg-risk": EndpointRule(_CLOB),
    "GET /fee-rate": EndpointRule(_CLOB),
    "GET /markets": EndpointRule(_CLOB),
    "GET /clob-markets": EndpointRule(_CLOB),
    "GET /time": EndpointRule(_CLOB),
    "GET /ok": EndpointRule(("ok", "general")),
    "GET /data/orders": EndpointRule(("data/orders", *_CLOB)),
    "GET /data/order": EndpointRule(_CLOB),
    "GET /data/trades": EndpointRule(("data/trades", *_CLOB)),
    "GET /balance-allowance": EndpointRule(("balance-allowance", *_CLOB)),
    "GET /balance-allowance/update": EndpointRule(("balance-allowance/update", *_CLOB)),
    "GET /auth/ban-status/closed-only": EndpointRule(("api-keys", *_CLOB)),
    "GET /v1/user/rate-limit-tier": EndpointRule(("api-keys", *_CLOB)),
    "API keys": EndpointRule(("api-keys", *_CLOB)),
    "gamma GET /markets": EndpointRule(("gamma /markets", "gamma listing", "gamma")),
    "gamma GET /events": EndpointRule(("gamma /events", "gamma listing", "gamma")),
    "data GET /trades": EndpointRule(("data /trades", "data")),
    "data GET /positions": EndpointRule(("data /positions", "data")),
}

_ORDER_ENDPOINTS = ("POST /order", "POST /orders")
_CANCEL_ENDPOINTS = ("DELETE /order", "DELETE /orders", "DELETE /cancel-all", "DELETE /cancel-market-orders")
#: The names of the per-signer buckets in the limit table.
ORDER_BUCKET = "signer orders"
CANCEL_BUCKET = "signer cancels"


@dataclass(frozen=True, slots=True)
class SignerTier:
    """One rate-limit tier of the per-signer buckets: tokens per second and burst, for orders and for cancels."""

    name: str
    order: BucketLimit
    cancel: BucketLimit


def _tier(name: str, order_rate: int, order_burst: int, cancel_rate: int, cancel_burst: int) -> SignerTier:
    return SignerTier(name, BucketLimit(order_burst, float(order_rate)), BucketLimit(cancel_burst, float(cancel_rate)))


#: protocol.md §11 item 4 (tiers by 30-day volume): order rate/s and burst, cancel rate/s and burst.
SIGNER_TIERS: Mapping[str, SignerTier] = {
    t.name: t
    for t in (
        _tier("standard", 40, 60, 80, 120),
        _tier("copper", 60, 90, 120, 180),
        _tier("bronze", 80, 120, 160, 240),
        _tier("silver", 200, 300, 400, 600),
        _tier("gold", 400, 600, 800, 1_200),
        _tier("platinum", 450, 675, 900, 1_350),
        _tier("diamond", 525, 787, 1_050, 1_575),
        _tier("elite", 600, 900, 1_200, 1_800),
    )
}
#: The tier assumed until the venue names one: the most conservative.
CONSERVATIVE_TIER = "standard"


class TierSource(enum.StrEnum):
    ASSUMED = "assumed"  # not known yet: the most conservative tier
    HEADER = "header"  # a reply's Poly-RateLimit-Tier
    ENDPOINT = "endpoint"  # GET /v1/user/rate-limit-tier


def signer_tier(name: str) -> SignerTier | None:
    """The tier of that name (case and surrounding blanks ignored), None when unknown."""
    return SIGNER_TIERS.get(name.strip().lower())


def with_signer_buckets(
    limits: Mapping[str, LimitSpec],
    endpoints: Mapping[str, EndpointRule],
    *,
    order: BucketLimit,
    cancel: BucketLimit,
) -> tuple[dict[str, LimitSpec], dict[str, EndpointRule]]:
    """The table plus the per-signer order and cancel token buckets, sized for the account's tier."""
    new_limits = {**limits, ORDER_BUCKET: order, CANCEL_BUCKET: cancel}
    new_endpoints = dict(endpoints)
    for names, bucket in ((_ORDER_ENDPOINTS, ORDER_BUCKET), (_CANCEL_ENDPOINTS, CANCEL_BUCKET)):
        for name in names:
            rule = new_endpoints[name]
            new_endpoints[name] = replace(rule, limits=(*rule.limits, bucket))
    return new_limits, new_endpoints


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitSettings:
    """How closely to follow the published limits.

    - `reserve_fraction` (default 0.1): share of every limit that only HIGH-priority calls may use.
    - `slots` (default 100): sub-intervals per sliding window (10 s windows -> 100 ms resolution).
    - `backoff_initial_secs` (default 1.0), `backoff_max_secs` (default 30.0): block after a 429 with no Retry-After.
    - `retry_after_max_secs` (default 300.0): a larger Retry-After is capped (a bad header
      must not stop us for days).
    - `signer_buckets` (default true): follow the venue's per-signer order and cancel token buckets, sized for the
      account's tier as the venue reports it (Standard until it does).
    """

    reserve_fraction: float = 0.1
    slots: int = 100
    backoff_initial_secs: float = 1.0
    backoff_max_secs: float = 30.0
    retry_after_max_secs: float = 300.0
    signer_buckets: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.reserve_fraction < 1:
            raise ConfigError("reserve_fraction must be in [0, 1)")
        if self.slots < 1:
            raise ConfigError("slots must be >= 1")
        for name in ("backoff_initial_secs", "backoff_max_secs", "retry_after_max_secs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of seconds")


class _Window:
    def __init__(self, spec: WindowLimit, slots: int) -> None:
        if spec.limit < 1 or not (math.isfinite(spec.period_secs) and spec.period_secs > 0):
            raise ConfigError(f"bad window limit {spec}")
        self.spec = spec
        self.capacity = spec.limit
        self.slot_secs = spec.period_secs / slots
        self._slots: deque[list[float]] = deque()  # [slot end time, units]
        self.used = 0.0

    def _expire(self, now: float) -> None:
        period = self.spec.period_secs
        while self._slots and self._slots[0][0] + period <= now:
            self.used -= self._slots.popleft()[1]
        if not self._slots:
            self.used = 0.0  # no drift from float sums

    def wait(self, now: float, units: float, usable: float) -> float:
        self._expire(now)
        if self.used + units <= usable:
            return 0.0
        remaining = self.used
        for end, slot_units in self._slots:
            remaining -= slot_units
            if remaining + units <= usable:
                return end + self.spec.period_secs - now
        return math.inf  # cannot happen when units <= usable (checked by the caller)

    def take(self, now: float, units: float) -> None:
        end = (math.floor(now / self.slot_secs) + 1) * self.slot_secs
        if self._slots and self._slots[-1][0] >= end:
            self._slots[-1][1] += units
        else:
            self._slots.append([end, units])
        self.used += units


class _Bucket:
    def __init__(self, spec: BucketLimit) -> None:
        _check_bucket(spec)
        self.spec = spec
        self.capacity = spec.capacity
        self.tokens = float(spec.capacity)
        self._updated: float | None = None
        self.blocked_until = -math.inf  # the venue said: nothing before then (a 429's Retry-After, its Reset)

    def _refill(self, now: float) -> None:
        if self._updated is not None and now > self._updated:
            self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.spec.refill_per_sec)
        if self._updated is None or now > self._updated:
            self._updated = now

    @property
    def used(self) -> float:
        return self.capacity - self.tokens

    def wait(self, now: float, units: float, usable: float) -> float:
        self._refill(now)
        # NORMAL calls must leave (capacity - usable) tokens in the bucket.
        missing = units + (self.capacity - usable) - self.tokens
        # A float remainder of a token is no wait (and a real wait is never shorter than a microsecond): else a
        # waiter could sleep until a time equal to now, again and again, while the clock never moves.
        wait = 0.0 if missing <= _TOKEN_EPSILON else max(missing / self.spec.refill_per_sec, _MIN_WAIT_SECS)
        return max(wait, self.blocked_until - now)

    def take(self, now: float, units: float) -> None:
        self._refill(now)
        self.tokens -= units  # may go negative for after-the-fact charges (cancel-all)

    def resize(self, spec: BucketLimit, now: float) -> None:
        """Another tier: a smaller burst drops the tokens above it; a larger one fills up by refilling."""
        _check_bucket(spec)
        self._refill(now)
        self.spec, self.capacity = spec, spec.capacity
        self.tokens = min(self.tokens, float(spec.capacity))

    def sync(self, now: float, remaining: float) -> None:
        """The venue's count of what is left: ours never stays above it (it may be negative: a debt to wait out)."""
        self._refill(now)
        self.tokens = min(self.tokens, remaining)

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)


_TOKEN_EPSILON = 1e-9
_MIN_WAIT_SECS = 1e-6


def _check_bucket(spec: BucketLimit) -> None:
    if spec.capacity < 1 or not (math.isfinite(spec.refill_per_sec) and spec.refill_per_sec > 0):
        raise ConfigError(f"bad token bucket {spec}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStatistics:
    granted: int  # calls let through
    waited: int  # acquire() calls that had to sleep first
    throttled: int  # try_acquire answers that said "wait" (our own limiter held the call back)
    responses_429: int
    warnings: int  # replies carrying Poly-RateLimit-Warning: true
    blocked_until: float  # Trio time until which a 429 blocks the endpoint (-inf when not)


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketStatistics:
    tokens: float  # as of its last use (negative: a debt the venue reported)
    capacity: int  # the burst
    refill_per_sec: float
    blocked_until: float  # Trio time until which the venue blocked it (-inf when not)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiterStatistics:
    endpoints: Mapping[str, EndpointStatistics]
    usage: Mapping[str, float]  # units in use per limit, as of its last use (window count, or tokens spent)
    tier: str | None = None  # the per-signer tier the buckets are sized for (None: no signer buckets)
    tier_source: str | None = None  # assumed | header | endpoint
    buckets: Mapping[str, BucketStatistics] = field(default_factory=dict)
    reports: int = 0  # rate-limit reports observed (replies with rate-limit headers)
    unknown_tiers: int = 0  # tier names the venue sent that are not in SIGNER_TIERS (ignored)


@dataclass(slots=True)
class _EndpointState:
    rule: EndpointRule
    granted: int = 0
    waited: int = 0
    throttled: int = 0
    responses_429: int = 0
    warnings: int = 0
    streak_429: int = 0
    blocked_until: float = -math.inf
    lock: trio.Lock = field(default_factory=trio.Lock)


class RateLimiter:
    """Pure core (`try_acquire`, `record_429`, `record_success`) plus the Trio shell `acquire`."""

    def __init__(
        self,
        settings: RateLimitSettings | None = None,
        *,
        limits: Mapping[str, LimitSpec] = POLYMARKET_LIMITS,
        endpoints: Mapping[str, EndpointRule] = POLYMARKET_ENDPOINTS,
    ) -> None:
        self.settings = settings or RateLimitSettings()
        self._tier: SignerTier | None = None
        self._tier_source: TierSource | None = None
        self._reports = 0
        self._unknown_tiers = 0
        if (
            self.settings.signer_buckets
            and ORDER_BUCKET not in limits
            and all(name in endpoints for name in (*_ORDER_ENDPOINTS, *_CANCEL_ENDPOINTS))
        ):
            self._tier, self._tier_source = SIGNER_TIERS[CONSERVATIVE_TIER], TierSource.ASSUMED
            limits, endpoints = with_signer_buckets(limits, endpoints, order=self._tier.order, cancel=self._tier.cancel)
            log.info(
                "rate_limit_tier_assumed",
                tier=CONSERVATIVE_TIER,
                why="the venue has not named the signer's tier yet: the most conservative one until it does",
            )
        self._limits: dict[str, _Window | _Bucket] = {
            name: _Window(spec, self.settings.slots) if isinstance(spec, WindowLimit) else _Bucket(spec)
            for name, spec in limits.items()
        }
        self._endpoints: dict[str, _EndpointState] = {}
        for name, rule in endpoints.items():
            missing = [limit for limit in rule.limits if limit not in self._limits]
            if missing:
                raise ConfigError(f"endpoint {name!r} names unknown limits {missing}")
            self._endpoints[name] = _EndpointState(rule)

    def _endpoint(self, endpoint: str) -> _EndpointState:
        try:
            return self._endpoints[endpoint]
        except KeyError:
            raise ValueError(f"no rate limit rule for endpoint {endpoint!r}") from None

    def _counts_tokens(self, name: str) -> bool:
        limit = self._limits[name]
        return isinstance(limit, _Bucket) or limit.spec.per_token

    def _units(self, name: str, cost: int) -> float:
        return float(cost) if self._counts_tokens(name) else 1.0

    def _usable(self, name: str, priority: Priority) -> float:
        capacity = self._limits[name].capacity
        if priority is Priority.HIGH:
            return float(capacity)
        return float(math.floor(capacity * (1 - self.settings.reserve_fraction)))

    def try_acquire(self, endpoint: str, cost: int, now: float) -> float:
        """0.0 when the call may go now (and it is charged); else seconds to wait, with nothing charged.

        `cost` is the call's token count (orders in a batch, ids in a cancel). Raises ValueError for an unknown
        endpoint, or a cost that no wait could ever satisfy (split the batch).
        """
        state = self._endpoint(endpoint)
        if cost < 1:
            raise ValueError(f"cost must be >= 1, got {cost}")
        priority = state.rule.priority
        wait = max(0.0, state.blocked_until - now)
        for name in state.rule.limits:
            units, usable = self._units(name, cost), self._usable(name, priority)
            if units > usable:
                raise ValueError(f"{endpoint}: cost {cost} can never fit limit {name!r} ({usable:g} usable)")
            wait = max(wait, self._limits[name].wait(now, units, usable))
        if wait > 0:
            state.throttled += 1
            return wait
        for name in state.rule.limits:
            self._limits[name].take(now, self._units(name, cost))
        state.granted += 1
        return 0.0

    def charge(self, endpoint: str, cost: int, now: float) -> None:
        """Charge `cost` more tokens after the fact, without waiting (cancel-all costs 1 + the cancelled count)."""
        state = self._endpoint(endpoint)
        for name in state.rule.limits:
            limit = self._limits[name]
            if isinstance(limit, _Bucket) or limit.spec.per_token:
                limit.take(now, float(cost))

    def record_429(self, endpoint: str, now: float, retry_after_secs: float | None = None) -> float:
        """The venue answered 429: block the endpoint. Returns the Trio time until which it is blocked."""
        state = self._endpoint(endpoint)
        state.responses_429 += 1
        settings = self.settings
        if retry_after_secs is not None and math.isfinite(retry_after_secs) and retry_after_secs >= 0:
            block = min(retry_after_secs, settings.retry_after_max_secs)
        else:
            block = min(settings.backoff_max_secs, settings.backoff_initial_secs * 2.0**state.streak_429)
        state.streak_429 += 1
        state.blocked_until = max(state.blocked_until, now + block)
        return state.blocked_until

    def max_cost(self, endpoint: str) -> int | None:
        """The most tokens one call of `endpoint` can ever cost (the smallest usable burst of the token-counting
        limits it is charged on), or None when nothing limits its cost: a larger call must be split."""
        state = self._endpoint(endpoint)
        sizes = [
            math.floor(self._usable(name, state.rule.priority))
            for name in state.rule.limits
            if self._counts_tokens(name)
        ]
        return min(sizes) if sizes else None

    # -- the venue's per-signer buckets ---------------------------------------------------------------------------

    @property
    def tier(self) -> str | None:
        """The tier the signer buckets are sized for (None: the limiter has none)."""
        return None if self._tier is None else self._tier.name

    def set_tier(self, name: str, source: TierSource, now: float) -> bool:
        """Size the signer buckets for the tier the venue named; False (and logged) for a name not in
        `SIGNER_TIERS`, which changes nothing: the buckets stay as conservative as they were."""
        if self._tier is None:
            return False
        tier = signer_tier(name)
        if tier is None:
            self._unknown_tiers += 1
            if self._unknown_tiers == 1:
                log.warning("rate_limit_tier_unknown", tier=name[:32], kept=self._tier.name)
            return False
        if tier is not self._tier:
            log.info("rate_limit_tier", tier=tier.name, previous=self._tier.name, source=str(source))
            self._tier = tier
            for bucket_name, spec in ((ORDER_BUCKET, tier.order), (CANCEL_BUCKET, tier.cancel)):
                bucket = self._limits[bucket_name]
                assert isinstance(bucket, _Bucket)
                bucket.resize(spec, now)
        self._tier_source = source
        return True

    def _bucket_of(self, state: _EndpointState) -> _Bucket | None:
        for name in state.rule.limits:
            limit = self._limits[name]
            if isinstance(limit, _Bucket):
                return limit
        return None

    def observe(self, report: RateLimitReport, now: float, reset_in_secs: float | None = None) -> None:
        """What a reply said of the signer's limits (see the module docstring). `now` is the Trio time; the
        caller turns the report's wall-clock `reset_at` into seconds from now (`reset_in_secs`)."""
        state = self._endpoints.get(report.endpoint)
        if state is None:
            return
        self._reports += 1
        if report.tier is not None:
            self.set_tier(report.tier, TierSource.HEADER, now)
        if report.warning:
            state.warnings += 1
            if state.warnings == 1:
                log.warning("rate_limit_warning", endpoint=report.endpoint, remaining=report.remaining)
        bucket = self._bucket_of(state)
        if bucket is None:
            return
        if report.remaining is not None:
            bucket.sync(now, report.remaining)
        block: float | None = None
        if report.retry_after_secs is not None and report.status == 429:
            block = report.retry_after_secs
        elif reset_in_secs is not None and (
            report.status == 429 or (report.remaining is not None and report.remaining <= 0)
        ):
            block = reset_in_secs
        if block is not None and math.isfinite(block) and block > 0:
            bucket.block(now + min(block, self.settings.retry_after_max_secs))

    def record_success(self, endpoint: str) -> None:
        """A reply that was not a 429: the backoff starts again from its initial value."""
        self._endpoint(endpoint).streak_429 = 0

    def record_warning(self, endpoint: str) -> None:
        """A reply carried `Poly-RateLimit-Warning: true` (would have been refused under enforcement)."""
        self._endpoint(endpoint).warnings += 1

    def _first_answer(self, state: _EndpointState, endpoint: str, cost: int) -> float | None:
        """A call's first try: None when a NORMAL call of the endpoint is queued ahead of it (it must queue too),
        else `try_acquire` now (0.0: granted and charged; else seconds to wait, nothing charged)."""
        if state.rule.priority is not Priority.HIGH and state.lock.locked():
            return None
        return self.try_acquire(endpoint, cost, trio.current_time())

    async def acquire(self, endpoint: str, cost: int = 1, *, max_wait_secs: float | None = None) -> bool:
        """Wait on the Trio clock until the call may go, then charge it; True once charged.

        NORMAL calls of one endpoint wait in FIFO order (a fair trio.Lock); HIGH calls bypass that queue.
        A cancel point first: a cancelled call charges nothing. Granted at once (nobody queued ahead, room in every
        limit): charged and back with no schedule point, and no deadline set up; otherwise it waits (and yields) as
        its turn comes, for at most `max_wait_secs` when given: past it, False and nothing charged.
        """
        state = self._endpoint(endpoint)
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancel point before anything is charged
        wait = self._first_answer(state, endpoint, cost)
        if wait == 0:
            return True
        until = None if wait is None else trio.current_time() + wait
        with trio.move_on_after(math.inf if max_wait_secs is None else max_wait_secs) as waiting:
            if state.rule.priority is Priority.HIGH:
                await self._wait_until_granted(state, endpoint, cost, until)
            else:
                async with state.lock:
                    await self._wait_until_granted(state, endpoint, cost, until)
        return not waiting.cancelled_caught

    async def _wait_until_granted(
        self, state: _EndpointState, endpoint: str, cost: int, until: float | None = None
    ) -> None:
        """`until`: the time a first answer (just now, not charged) said to wait for."""
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancel point before anything is charged
        waited = False
        if until is not None:
            waited = True
            state.waited += 1
            await trio.sleep_until(until)
        while True:
            now = trio.current_time()
            wait = self.try_acquire(endpoint, cost, now)
            if wait == 0:
                break
            if not waited:
                waited = True
                state.waited += 1
            await trio.sleep_until(now + wait)
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()  # a schedule point that cannot lose the grant

    def statistics(self) -> RateLimiterStatistics:
        buckets = {
            name: BucketStatistics(
                tokens=limit.tokens,
                capacity=limit.capacity,
                refill_per_sec=limit.spec.refill_per_sec,
                blocked_until=limit.blocked_until,
            )
            for name, limit in self._limits.items()
            if isinstance(limit, _Bucket)
        }
        return RateLimiterStatistics(
            tier=self.tier,
            tier_source=None if self._tier_source is None else str(self._tier_source),
            buckets=buckets,
            reports=self._reports,
            unknown_tiers=self._unknown_tiers,
            endpoints={
                name: EndpointStatistics(
                    granted=state.granted,
                    waited=state.waited,
                    throttled=state.throttled,
                    responses_429=state.responses_429,
                    warnings=state.warnings,
                    blocked_until=state.blocked_until,
                )
                for name, state in self._endpoints.items()
            },
            usage={name: limit.used for name, limit in self._limits.items()},
        )
