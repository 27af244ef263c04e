"""Market discovery from the Gamma API (protocol.md §8): markets, their tokens and trading parameters, neg-risk events.

```
async with httpx.AsyncClient() as http:
    gamma = GammaClient(http, base_url)
    found = await gamma.markets(MarketQuery(slugs=("btc-updown-5m-1773307200",)))
    found.markets            # [DiscoveredMarket(market=Market(...), ...)]
    found.skipped            # [(gamma id / slug, reason)] for what could not be used, with the field named
    events = await gamma.neg_risk_events(found.markets)
```

Gamma quirks handled here:
* `outcomes`, `outcomePrices` and `clobTokenIds` are JSON-encoded *strings*; token i belongs to outcome i, so
  outcome 0 ("Yes", "Up", the first team) is YES and outcome 1 is NO. Markets with other than two outcomes or
  without an order book are skipped, with the reason.
* numbers such as `orderPriceMinTickSize`, `orderMinSize` and `feeSchedule.rate` are JSON numbers (sometimes
  strings): converted exactly through their shortest repr, never through float arithmetic.
* fees: `feesEnabled` false -> no fees; true with a `feeSchedule` -> that schedule; true WITHOUT a schedule is
  unknown, and such a market is skipped (`FEE_SCHEDULE_MISSING`) unless the query says fees do not matter
  (`require_fee_schedule=False`, for watching), in which case `fees_known` is False and `Market.fees` must not be
  used.

Selection: by slug, condition id, token id and Gamma tag id on the server; active / not closed, accepting orders,
minimum liquidity and category (the market's or its events' `category`) locally as well, so a server that ignores
a filter cannot widen the selection.

A neg-risk event is complete only when Gamma lists it with all its markets, it is not `negRiskAugmented` (whose
outcome set can still grow and has a placeholder "Other"), and every listed market could be read; the domain's
`NegRiskEvent.incomplete_reasons()` adds closed / not accepting markets.

Errors: transport problems are `VenueConnectionError` / `VenueDisconnected` / `VenueTimeout`; an HTTP error is
`VenueRequestError`; a reply that is not the expected JSON is `VenueProtocolError`. One unreadable market in a
list is skipped with its reason; it does not fail the others. The caller owns timeouts.

`run_market_refresh` re-runs a query periodically (drift-free) and tracks new tradable markets in, and closed or
vanished ones out of, the market-data service, so the engine follows the venue without a restart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, Protocol

import httpx
import msgspec
import structlog
import trio

from trader.domain.market import NO_FEES, FeeSchedule, Market, NegRiskEvent, is_token_id
from trader.domain.numbers import ZERO, parse_decimal, parse_tick_size
from trader.errors import InputError
from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error
from trader.infra.ticks import Ticker
from trader.venues.errors import VenueError, VenueProtocolError, map_exceptions, truncate
from trader.venues.polymarket.rest import HTTP_EXCEPTIONS, request_error
from trader.venues.polymarket.schemas import GammaNumber, WireGammaEventRef, WireGammaMarket

__all__ = [
    "GAMMA_URL",
    "DiscoveredMarket",
    "Discovery",
    "GammaClient",
    "MarketQuery",
    "RefreshStatistics",
    "parse_gamma_market",
    "run_market_refresh",
]

log = structlog.get_logger(__name__)

GAMMA_URL = "https://gamma-api.polymarket.com"

_JSON_LIST = msgspec.json.Decoder(list[Any])


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketQuery:
    """What to discover. Empty selectors select everything the filters let through (use with `tag_id`)."""

    slugs: tuple[str, ...] = ()
    condition_ids: tuple[str, ...] = ()
    token_ids: tuple[str, ...] = ()
    tag_id: str | None = None
    category: str | None = None
    active_only: bool = True  # active and not closed
    accepting_orders_only: bool = True
    min_liquidity: Decimal | None = None
    require_fee_schedule: bool = True
    page_size: int = 500
    max_pages: int = 20

    def params(self) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [("slug", s) for s in self.slugs]
        params += [("condition_ids", c) for c in self.condition_ids]
        params += [("clob_token_ids", t) for t in self.token_ids]
        if self.tag_id:
            params.append(("tag_id", self.tag_id))
        if self.active_only:
            params += [("active", "true"), ("closed", "false")]
        if self.min_liquidity is not None:
            params.append(("liquidity_num_min", str(self.min_liquidity)))
        return params


@dataclass(frozen=True, slots=True)
class DiscoveredMarket:
    market: Market
    gamma_id: str
    event_id: str | None = None
    event_title: str | None = None
    neg_risk_augmented: bool = False
    liquidity: Decimal | None = None
    category: str | None = None
    fees_known: bool = True


@dataclass(frozen=True, slots=True)
class Discovery:
    markets: list[DiscoveredMarket] = field(default_factory=list)
    #: (gamma id or slug, reason): markets Gamma returned that the query's filters or validation left out
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def by_condition_id(self) -> dict[str, DiscoveredMarket]:
        return {d.market.condition_id: d for d in self.markets}


# ----------------------------------------------------------------------------------------------------------------
# Parsing (pure)


def _exact(value: GammaNumber | None, name: str) -> Decimal | None:
    """A Gamma number as an exact Decimal: floats through their shortest repr ("0.01", not 0.01000000000000000020)."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(name, f"not a finite number: {value!r}")
        value = repr(value)
    return parse_decimal(value, name)


def _json_list(text: str | None, name: str) -> list[str]:
    if text is None or text == "":
        raise InputError(name, "missing")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's limit
        raise InputError(name, f"is not a JSON-encoded list: {truncate(text, 60)!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(name, f"is not a JSON-encoded list of strings: {truncate(text, 60)!r}")
    return value


def _fees(wire: WireGammaMarket, require_schedule: bool) -> tuple[FeeSchedule, bool]:
    if not wire.feesEnabled:
        return NO_FEES, True
    schedule = wire.feeSchedule
    rate = None if schedule is None else _exact(schedule.rate, "feeSchedule.rate")  # None also for a rate of ""
    if schedule is None or rate is None:
        if require_schedule:
            raise InputError("feeSchedule", "fees are enabled but the market publishes no fee schedule")
        return NO_FEES, False
    exponent = _exact(schedule.exponent, "feeSchedule.exponent")
    exponent_value: Decimal | int = 1 if exponent is None else exponent
    if isinstance(exponent_value, Decimal) and exponent_value == exponent_value.to_integral_value():
        exponent_value = int(exponent_value)
    taker_only = True if schedule.takerOnly is None else schedule.takerOnly
    return FeeSchedule(rate=rate, exponent=exponent_value, taker_only=taker_only), True


def _end_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InputError("endDate", f"not an ISO 8601 date: {truncate(text, 40)!r}") from None


def parse_gamma_market(wire: WireGammaMarket, *, require_fee_schedule: bool = True) -> DiscoveredMarket:
    """One Gamma market -> a binary `Market` with YES/NO tokens. Raises `InputError` naming the field."""
    if not wire.conditionId:
        raise InputError("conditionId", "missing")
    if wire.enableOrderBook is False:
        raise InputError("enableOrderBook", "the market has no order book")
    outcomes = _json_list(wire.outcomes, "outcomes")
    token_ids = _json_list(wire.clobTokenIds, "clobTokenIds")
    if len(outcomes) != 2:
        raise InputError("outcomes", f"expected a binary market, got {len(outcomes)} outcomes")
    if len(token_ids) != 2:
        raise InputError("clobTokenIds", f"expected two token ids, got {len(token_ids)}")
    for token_id in token_ids:
        if not is_token_id(token_id):
            raise InputError("clobTokenIds", f"not a token id: {truncate(token_id, 40)!r}")
    if wire.orderPriceMinTickSize is None:
        raise InputError("orderPriceMinTickSize", "missing")
    tick = parse_tick_size(wire.orderPriceMinTickSize, "orderPriceMinTickSize")
    min_size = _exact(wire.orderMinSize, "orderMinSize")
    fees, fees_known = _fees(wire, require_fee_schedule)
    events = wire.events or []
    event = events[0] if events else None
    market = Market(
        condition_id=wire.conditionId,
        question=wire.question or "",
        slug=wire.slug or "",
        yes_token_id=token_ids[0],
        no_token_id=token_ids[1],
        tick_size=tick,
        neg_risk=bool(wire.negRisk),
        neg_risk_market_id=wire.negRiskMarketID or None,
        min_order_size=min_size if min_size is not None else Decimal(5),
        fees=fees,
        active=bool(wire.active),
        accepting_orders=bool(wire.acceptingOrders),
        closed=bool(wire.closed),
        end_date=_end_date(wire.endDate),
        outcomes=(outcomes[0], outcomes[1]),
    )
    liquidity = _exact(wire.liquidityNum, "liquidityNum")
    if liquidity is None:
        liquidity = _exact(wire.liquidity, "liquidity")
    category = wire.category or next((e.category for e in events if e.category), None)
    return DiscoveredMarket(
        market=market,
        gamma_id=wire.id,
        event_id=None if event is None else event.id,
        event_title=None if event is None else event.title,
        neg_risk_augmented=bool(event is not None and event.negRiskAugmented),
        liquidity=liquidity,
        category=category,
        fees_known=fees_known,
    )


def _filter_reason(found: DiscoveredMarket, query: MarketQuery) -> str | None:
    market = found.market
    if query.active_only and (market.closed or not market.active):
        return "CLOSED" if market.closed else "INACTIVE"
    if query.accepting_orders_only and not market.accepting_orders:
        return "NOT_ACCEPTING_ORDERS"
    if query.min_liquidity is not None and (found.liquidity or ZERO) < query.min_liquidity:
        return "BELOW_MIN_LIQUIDITY"
    if query.category is not None and (found.category or "").lower() != query.category.lower():
        return "OTHER_CATEGORY"
    if query.slugs and market.slug not in query.slugs:
        return "OTHER_SLUG"
    if query.condition_ids and market.condition_id not in query.condition_ids:
        return "OTHER_CONDITION_ID"
    if query.token_ids and not set(market.token_ids) & set(query.token_ids):
        return "OTHER_TOKEN_ID"
    return None


def select_markets(items: Iterable[Any], query: MarketQuery) -> Discovery:
    """Decode, validate and filter raw Gamma market objects (pure; one bad market never fails the rest)."""
    result = Discovery()
    seen: set[str] = set()
    for item in items:
        name = str(item.get("slug") or item.get("id")) if isinstance(item, dict) else "?"
        try:
            wire = msgspec.convert(item, WireGammaMarket)
        except msgspec.ValidationError as exc:
            result.skipped.append((name, f"BAD_FIELD: {exc}"))
            continue
        try:
            found = parse_gamma_market(wire, require_fee_schedule=query.require_fee_schedule)
        except InputError as exc:
            result.skipped.append((name, f"{_reason_of(exc)}: {exc}"))
            continue
        reason = _filter_reason(found, query)
        if reason is not None:
            result.skipped.append((name, reason))
            continue
        if found.market.condition_id not in seen:
            seen.add(found.market.condition_id)
            result.markets.append(found)
    return result


def _reason_of(exc: InputError) -> str:
    if exc.field == "feeSchedule":
        return "FEE_SCHEDULE_MISSING"
    if exc.field in ("outcomes", "clobTokenIds", "enableOrderBook"):
        return "NOT_A_BINARY_ORDER_BOOK"
    return "BAD_FIELD"


def group_neg_risk_event(event: WireGammaEventRef, markets: Sequence[Any]) -> NegRiskEvent:
    """A Gamma event (with its `markets`) -> `NegRiskEvent`; complete only if Gamma's list is exhaustive and valid."""
    parsed: dict[str, Market] = {}
    complete = not event.negRiskAugmented and event.closed is not True
    for item in markets:
        try:
            market = parse_gamma_market(msgspec.convert(item, WireGammaMarket), require_fee_schedule=False).market
        except (msgspec.ValidationError, InputError):
            complete = False  # an outcome we cannot read is an outcome missing from the basket
            continue
        if market.condition_id in parsed:
            complete = False  # a market listed twice: which listing is right is unknown, so the basket is not sure
            continue
        parsed[market.condition_id] = market
    return NegRiskEvent(event_id=event.id, title=event.title or "", markets=tuple(parsed.values()), complete=complete)


# ----------------------------------------------------------------------------------------------------------------
# The client


class GammaClient:
    """Gamma over httpx (on trio). No timeouts inside: the caller wraps calls in `trio.fail_after`."""

    def __init__(self, http: httpx.AsyncClient, base_url: str = GAMMA_URL) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    async def _get(self, path: str, params: Sequence[tuple[str, str]]) -> bytes:
        url = self._base_url + path
        with map_exceptions(HTTP_EXCEPTIONS, what=f"gamma GET {path}"):
            response = await self._http.get(url, params=list(params))
        if response.status_code >= 400:
            raise request_error(response)
        return response.content

    async def _list(self, path: str, params: Sequence[tuple[str, str]], page_size: int, max_pages: int) -> list[Any]:
        items: list[Any] = []
        for page in range(max_pages):
            content = await self._get(path, [*params, ("limit", str(page_size)), ("offset", str(page * page_size))])
            try:
                batch = _JSON_LIST.decode(content)
            except msgspec.ValidationError:
                raise VenueProtocolError(f"gamma {path}: expected a JSON list") from None
            except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, or nested too deeply
                raise VenueProtocolError(f"gamma {path}: reply is not JSON: {describe_json_error(exc)}") from None
            items.extend(batch)
            if len(batch) < page_size:
                break
        else:
            log.warning("gamma_page_limit", path=path, pages=max_pages)
        return items

    async def markets(self, query: MarketQuery) -> Discovery:
        items = await self._list("/markets", query.params(), query.page_size, query.max_pages)
        return select_markets(items, query)

    async def events(self, event_ids: Iterable[str]) -> list[NegRiskEvent]:
        """The neg-risk events with these ids (non-neg-risk events are left out)."""
        ids = sorted(set(event_ids))
        if not ids:
            return []
        items = await self._list("/events", [("id", i) for i in ids], page_size=max(len(ids), 1), max_pages=1)
        out: list[NegRiskEvent] = []
        for item in items:
            try:
                event = msgspec.convert(item, WireGammaEventRef)
            except msgspec.ValidationError as exc:
                raise VenueProtocolError(f"gamma /events: {exc}") from None
            if event.negRisk or event.enableNegRisk:
                raw_markets = item.get("markets") if isinstance(item, dict) else None
                out.append(group_neg_risk_event(event, raw_markets if isinstance(raw_markets, list) else []))
        return out

    async def neg_risk_events(self, markets: Iterable[DiscoveredMarket]) -> list[NegRiskEvent]:
        """The full neg-risk events that the given markets belong to."""
        return await self.events(d.event_id for d in markets if d.market.neg_risk and d.event_id)


# ----------------------------------------------------------------------------------------------------------------
# Periodic refresh


class MarketTracker(Protocol):
    def track(self, market: Market) -> object: ...

    def untrack(self, condition_id: str) -> None: ...


@dataclass(slots=True)
class RefreshStatistics:
    refreshes: int = 0
    failures: int = 0
    added: int = 0
    removed: int = 0
    last_error: str | None = None


async def run_market_refresh(
    gamma: GammaClient,
    query: MarketQuery,
    tracker: MarketTracker,
    *,
    period_secs: float = 60.0,
    request_timeout_secs: float = 20.0,
    stats: RefreshStatistics | None = None,
    on_refresh: Callable[[Discovery], None] | None = None,
    task_status: trio.TaskStatus[Discovery] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Track what `query` selects; re-run it every `period_secs` (drift-free). `started` after the first success.

    A failed refresh keeps the current set and tries again next period (the first refresh retries every period
    until it succeeds, so a start with Gamma down waits rather than crashes).
    """
    stats = stats if stats is not None else RefreshStatistics()
    tracked: set[str] = set()
    started = False
    ticks = Ticker(period_secs)
    while True:
        try:
            with trio.fail_after(request_timeout_secs):
                found = await gamma.markets(query)
        except (VenueError, trio.TooSlowError) as exc:
            stats.failures += 1
            stats.last_error = truncate(str(exc) or type(exc).__name__)
            log.warning("gamma_refresh_failed", error=stats.last_error)
        else:
            stats.refreshes += 1
            current = found.by_condition_id()
            for condition_id in sorted(tracked - current.keys()):
                tracker.untrack(condition_id)
                tracked.discard(condition_id)
                stats.removed += 1
            for condition_id, discovered in current.items():
                if condition_id not in tracked:
                    tracker.track(discovered.market)
                    tracked.add(condition_id)
                    stats.added += 1
            if on_refresh is not None:
                on_refresh(found)
            if not started:
                started = True
                task_status.started(found)
        await ticks.next()
