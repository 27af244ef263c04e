"""Market discovery from the Gamma API (protocol.md §8, §11.1-2): markets, their tokens and trading parameters,
neg-risk events.

```
async with httpx.AsyncClient() as http:
    gamma = GammaClient(http, base_url, tick_size=rest.tick_size)   # tick_size: the CLOB's GET /tick-size
    found = await gamma.markets(MarketQuery(slugs=("btc-updown-5m-1773307200",)))
    found.markets            # [DiscoveredMarket(market=Market(...), ...)]
    found.skipped            # [(gamma id / slug, reason)] for what could not be used, with the field named
    found.complete           # False when the listing stopped early; `found.incomplete_reason` says why
    events = await gamma.neg_risk_events(found.markets)
    gamma.statistics()       # pages read, fallbacks, offset-limit hits, dropped events and nested markets
```

Listing (protocol.md §11.1). Gamma clamps every list page to 100 items and refuses offsets past a few thousand
(`422 "offset too large, use /markets/keyset for deeper pagination"`). Lists are read through the keyset endpoints,
`GET /markets/keyset` and `GET /events/keyset` (`{"markets"|"events": [...], "next_cursor": "..."}`), 100 a page,
advanced with `after_cursor=<next_cursor>` (never `cursor=`, which Gamma ignores) and every filter sent again; the
last page has no `next_cursor`. Keyset lists only open markets unless asked (`closed=false` upstream by default), so
a query for closed markets too reads `closed=false` and `closed=true`. A Gamma without keyset endpoints (the first
keyset page answers 404) is read by offset, the legacy way: `limit=100&offset=N`, where a page of 100 is not the
end, the offset advances by what came back, and a 422 past the first page ends the listing where it is.
A listing that stops early (that 422, `max_pages` pages, a cursor that does not advance) is returned as far as it
got, with `complete` False and the reason; it is counted, and logged once as a warning (narrow the selection, or
raise `max_pages`) until a listing is complete again; `run_market_refresh` then adds what it found and asks about
the tracked markets it did not reach by id before removing any. One request carries at most 100 values of a
selector (`slug`, `condition_ids`, `clob_token_ids`, `id`); more are asked in several requests and the answers
joined.

Gamma shapes handled here:
* `outcomes`, `outcomePrices` and `clobTokenIds` come as JSON-encoded strings or as real JSON arrays; both are
  read. Token i belongs to outcome i, so outcome 0 ("Yes", "Up", the first team) is YES and outcome 1 is NO.
  Markets with other than two outcomes or without an order book are skipped, with the reason.
* numbers such as `orderPriceMinTickSize`, `orderMinSize` and `feeSchedule.rate` are JSON numbers (sometimes
  strings): converted exactly through their shortest repr, never through float arithmetic.
* a market without `orderPriceMinTickSize` (seen on the markets nested in `/events`) takes its tick from
  elsewhere: the same market as discovered on `/markets`, else the CLOB (`tick_size`, e.g. the REST client's
  `GET /tick-size`); when neither knows it, the market is skipped as `TICK_SIZE_UNKNOWN`.
* fees: `feesEnabled` false -> no fees; true with a `feeSchedule` -> that schedule; true WITHOUT a schedule is
  unknown, and such a market is skipped (`FEE_SCHEDULE_MISSING`) unless the query says fees do not matter
  (`require_fee_schedule=False`, for watching), in which case `fees_known` is False and `Market.fees` must not be
  used.

Selection: by slug, condition id, token id and Gamma tag id on the server; active / not closed, accepting orders,
minimum liquidity and category (the market's or its events' `category`) locally as well, so a server that ignores
a filter cannot widen the selection.

A neg-risk event is complete only when Gamma lists it with all its markets, it is not `negRiskAugmented` (whose
outcome set can still grow and has a placeholder "Other"), and every listed market could be read; the domain's
`NegRiskEvent.incomplete_reasons()` adds closed / not accepting markets. One unreadable event, or one unreadable
market inside an event, is dropped and counted by a stable reason (`statistics().dropped`: `BAD_EVENT`,
`BAD_FIELD`, `NOT_A_BINARY_ORDER_BOOK`, `TICK_SIZE_UNKNOWN`, ...); it never refuses the other events of the reply.

Errors: transport problems are `VenueConnectionError` / `VenueDisconnected` / `VenueTimeout`; an HTTP error is
`VenueRequestError`; a reply that is not the expected JSON is `VenueProtocolError`. One unreadable market in a
list is skipped with its reason; it does not fail the others. The caller owns the timeout of a whole call; a CLOB
tick lookup is bounded here (`tick_timeout_secs`), as one failed lookup must not fail the call.

`run_market_refresh` re-runs a query periodically (drift-free) and tracks new tradable markets in, and closed or
vanished ones out of, the market-data service, so the engine follows the venue without a restart.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from itertools import product
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
from trader.venues.errors import VenueError, VenueProtocolError, VenueRequestError, map_exceptions, truncate
from trader.venues.polymarket.rest import HTTP_EXCEPTIONS, request_error
from trader.venues.polymarket.schemas import (
    GammaList,
    GammaNumber,
    WireGammaEventRef,
    WireGammaEventsPage,
    WireGammaMarket,
    WireGammaMarketsPage,
)

__all__ = [
    "GAMMA_MAX_PAGE",
    "GAMMA_URL",
    "Announcements",
    "DiscoveredMarket",
    "Discovery",
    "GammaClient",
    "GammaStatistics",
    "MarketQuery",
    "RefreshStatistics",
    "TickSizeMissing",
    "group_neg_risk_event",
    "parse_gamma_market",
    "run_market_refresh",
    "select_markets",
]

log = structlog.get_logger(__name__)

GAMMA_URL = "https://gamma-api.polymarket.com"
#: Gamma clamps every list page to this many items (protocol.md §11.1): never ask for more
GAMMA_MAX_PAGE = 100
#: values of one selector (`condition_ids=`, `clob_token_ids=`, `slug=`, `id=`) in one request
MAX_SELECTOR_VALUES = 100
#: incomplete-listing reasons
OFFSET_LIMIT = "OFFSET_LIMIT"  # the legacy offset paging was refused deeper (422)
PAGE_LIMIT = "PAGE_LIMIT"  # `max_pages` pages were read and there were more
CURSOR_STUCK = "CURSOR_STUCK"  # the keyset cursor came back again: following it would loop

_JSON_LIST = msgspec.json.Decoder(list[Any])
_MARKETS_PAGE = msgspec.json.Decoder(WireGammaMarketsPage)
_EVENTS_PAGE = msgspec.json.Decoder(WireGammaEventsPage)
#: a tick that stands in, for the filters only, while a market's real tick is looked up
_PLACEHOLDER_TICK = Decimal("0.01")
_EVENT_PAGES = 10  # an event lookup asks for at most 100 ids a request: one page, unless Gamma pages smaller
_TICK_LOOKUPS = 50  # CLOB tick lookups per call at most (GET /tick-size allows 200 per 10 s); the rest wait
_TICK_LOOKUPS_AT_ONCE = 4
_TICK_CACHE_SECS = 300.0

TickSource = Callable[[str], Awaitable[Decimal]]
Params = list[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketQuery:
    """What to discover. Empty selectors select everything the filters let through (use with `tag_id`).

    `page_size` (at most `GAMMA_MAX_PAGE`, which Gamma clamps to anyway) items a page, at most `max_pages` pages a
    listing: a backstop, reached only by a selection wider than `page_size x max_pages` markets."""

    slugs: tuple[str, ...] = ()
    condition_ids: tuple[str, ...] = ()
    token_ids: tuple[str, ...] = ()
    tag_id: str | None = None
    category: str | None = None
    active_only: bool = True  # active and not closed
    accepting_orders_only: bool = True
    min_liquidity: Decimal | None = None
    require_fee_schedule: bool = True
    page_size: int = GAMMA_MAX_PAGE
    max_pages: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= GAMMA_MAX_PAGE:
            raise ValueError(
                f"page_size must be in 1..{GAMMA_MAX_PAGE} (Gamma clamps larger pages), got {self.page_size}"
            )
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {self.max_pages}")

    def param_sets(self, *, keyset: bool) -> list[Params]:
        """The requests' filters: one set per chunk of selector values (and per `closed` value on keyset)."""
        common: Params = []
        if self.tag_id:
            common.append(("tag_id", self.tag_id))
        if self.min_liquidity is not None:
            common.append(("liquidity_num_min", str(self.min_liquidity)))
        if self.active_only:
            # keyset takes no `active`; the local filter applies it
            closed: list[Params] = [[("closed", "false")]] if keyset else [[("active", "true"), ("closed", "false")]]
        else:
            closed = [[("closed", "false")], [("closed", "true")]] if keyset else [[]]
        selectors = [
            [[(name, value) for value in chunk] for chunk in _chunks(values, MAX_SELECTOR_VALUES)]
            for name, values in (
                ("slug", self.slugs),
                ("condition_ids", self.condition_ids),
                ("clob_token_ids", self.token_ids),
            )
            if values
        ]
        return [
            [param for part in combination for param in part] + common + state
            for combination in product(*selectors)
            for state in closed
        ]


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
    #: selected markets that carry no tick (their `Market.tick_size` is a stand-in): `GammaClient.markets` looks
    #: their ticks up and moves them to `markets`, or skips them as TICK_SIZE_UNKNOWN
    needs_tick: list[DiscoveredMarket] = field(default_factory=list)
    #: False when the listing stopped before its end (`incomplete_reason`: OFFSET_LIMIT, PAGE_LIMIT, CURSOR_STUCK)
    complete: bool = True
    incomplete_reason: str | None = None
    pages: int = 0
    paging: str = "keyset"  # how Gamma was read: "keyset", or "offset" (the legacy fallback)

    def by_condition_id(self) -> dict[str, DiscoveredMarket]:
        return {d.market.condition_id: d for d in self.markets}


@dataclass(slots=True)
class GammaStatistics:
    """What a `GammaClient` did since it was made (counters), and how its last listing was read."""

    requests: int = 0
    pages: int = 0
    #: listings read by offset because the keyset endpoint answered 404
    keyset_fallbacks: int = 0
    #: listings that stopped early, and why: OFFSET_LIMIT (a 422 on a deep offset), PAGE_LIMIT, CURSOR_STUCK
    incomplete: dict[str, int] = field(default_factory=dict)
    #: events and markets nested in events that were left out, by reason (BAD_EVENT, BAD_FIELD, TICK_SIZE_UNKNOWN...)
    dropped: dict[str, int] = field(default_factory=dict)
    tick_lookups: int = 0
    tick_lookup_failures: int = 0
    paging: str = "keyset"

    def copy(self) -> GammaStatistics:
        return replace(self, incomplete=dict(self.incomplete), dropped=dict(self.dropped))


class TickSizeMissing(InputError):
    """The market carries no `orderPriceMinTickSize` (and none was given): look it up, or skip the market."""


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


def _json_list(value: GammaList | None, name: str) -> list[str]:
    """A Gamma list of strings, JSON-encoded in a string or a real JSON array (protocol.md §11.2)."""
    if value is None or value == "":
        raise InputError(name, "missing")
    items: object = value
    if isinstance(value, str):
        try:
            items = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's limit
            raise InputError(name, f"is not a JSON-encoded list: {truncate(value, 60)!r}") from None
        if not isinstance(items, list):
            raise InputError(name, f"is not a JSON-encoded list of strings: {truncate(value, 60)!r}")
    if not isinstance(items, list):
        raise InputError(name, f"is not a list: a {type(items).__name__}")
    for item in items:
        if not isinstance(item, str):  # named by type: the value itself may nest deeply
            raise InputError(name, f"is not a list of strings: it holds a {type(item).__name__}")
    return items


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


def parse_gamma_market(
    wire: WireGammaMarket, *, require_fee_schedule: bool = True, tick_size: Decimal | None = None
) -> DiscoveredMarket:
    """One Gamma market -> a binary `Market` with YES/NO tokens. Raises `InputError` naming the field.

    A market without `orderPriceMinTickSize` takes `tick_size`; without either it raises `TickSizeMissing`, after
    every field before the tick was read (so its YES token is known to be valid)."""
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
    if wire.orderPriceMinTickSize is not None and wire.orderPriceMinTickSize != "":
        tick = parse_tick_size(wire.orderPriceMinTickSize, "orderPriceMinTickSize")
    elif tick_size is not None:
        tick = tick_size
    else:
        raise TickSizeMissing("orderPriceMinTickSize", "missing")
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


def _name_of(item: object) -> str:
    if isinstance(item, dict):
        return truncate(str(item.get("slug") or item.get("id") or "?"), 80)
    return "?"


def _parse(
    wire: WireGammaMarket, require_fee_schedule: bool, ticks: Mapping[str, Decimal]
) -> tuple[DiscoveredMarket, bool]:
    """`parse_gamma_market`, a missing tick taken from `ticks` (YES token -> tick). When `ticks` does not know it
    either, the market is read with a stand-in tick and flagged (True): its real tick must be looked up."""
    try:
        return parse_gamma_market(wire, require_fee_schedule=require_fee_schedule), False
    except TickSizeMissing:
        found = parse_gamma_market(wire, require_fee_schedule=require_fee_schedule, tick_size=_PLACEHOLDER_TICK)
    tick = ticks.get(found.market.yes_token_id)
    if tick is None:
        return found, True
    return replace(found, market=found.market.with_tick_size(tick)), False


def select_markets(items: Iterable[Any], query: MarketQuery, ticks: Mapping[str, Decimal] | None = None) -> Discovery:
    """Decode, validate and filter raw Gamma market objects (pure; one bad market never fails the rest). A market
    without a tick that `ticks` does not know either goes to `needs_tick` once the filters let it through."""
    result = Discovery()
    seen: set[str] = set()
    for item in items:
        name = _name_of(item)
        try:
            wire = msgspec.convert(item, WireGammaMarket)
        except msgspec.ValidationError as exc:
            result.skipped.append((name, f"BAD_FIELD: {exc}"))
            continue
        try:
            found, needs_tick = _parse(wire, query.require_fee_schedule, ticks or {})
        except InputError as exc:
            result.skipped.append((name, f"{_reason_of(exc)}: {exc}"))
            continue
        reason = _filter_reason(found, query)
        if reason is not None:
            result.skipped.append((name, reason))
            continue
        if found.market.condition_id not in seen:
            seen.add(found.market.condition_id)
            (result.needs_tick if needs_tick else result.markets).append(found)
    return result


def _reason_of(exc: InputError) -> str:
    if isinstance(exc, TickSizeMissing):
        return "TICK_SIZE_UNKNOWN"
    if exc.field == "feeSchedule":
        return "FEE_SCHEDULE_MISSING"
    if exc.field in ("outcomes", "clobTokenIds", "enableOrderBook"):
        return "NOT_A_BINARY_ORDER_BOOK"
    return "BAD_FIELD"


def untick_tokens(markets: Iterable[Any]) -> set[str]:
    """The YES tokens of the markets (raw Gamma objects) that carry no tick: what to look up (pure)."""
    tokens: set[str] = set()
    for item in markets:
        if not isinstance(item, dict) or item.get("orderPriceMinTickSize") not in (None, ""):
            continue
        value = item.get("clobTokenIds")
        try:
            token_ids = _json_list(value if isinstance(value, str | list) else None, "clobTokenIds")
        except InputError:
            continue  # unreadable: the market is dropped, and nothing is looked up for it
        if token_ids and is_token_id(token_ids[0]):
            tokens.add(token_ids[0])
    return tokens


def group_neg_risk_event(
    event: WireGammaEventRef, markets: Sequence[Any], ticks: Mapping[str, Decimal] | None = None
) -> tuple[NegRiskEvent, list[tuple[str, str]]]:
    """A Gamma event (with its `markets`) -> `NegRiskEvent`, complete only if Gamma's list is exhaustive and every
    market in it could be read; and the markets left out, as (name, "REASON: detail"). A market without a tick
    takes it from `ticks` (YES token -> tick) or is left out as TICK_SIZE_UNKNOWN."""
    parsed: dict[str, Market] = {}
    dropped: list[tuple[str, str]] = []
    complete = not event.negRiskAugmented and event.closed is not True
    for item in markets:
        name = _name_of(item)
        try:
            found, needs_tick = _parse(msgspec.convert(item, WireGammaMarket), False, ticks or {})
        except msgspec.ValidationError as exc:
            dropped.append((name, f"BAD_FIELD: {exc}"))
            complete = False  # an outcome we cannot read is an outcome missing from the basket
            continue
        except InputError as exc:
            dropped.append((name, f"{_reason_of(exc)}: {exc}"))
            complete = False
            continue
        if needs_tick:
            dropped.append((name, "TICK_SIZE_UNKNOWN: no orderPriceMinTickSize, and the CLOB did not tell it"))
            complete = False
            continue
        market = found.market
        if market.condition_id in parsed:
            complete = False  # a market listed twice: which listing is right is unknown, so the basket is not sure
            continue
        parsed[market.condition_id] = market
    grouped = NegRiskEvent(
        event_id=event.id, title=event.title or "", markets=tuple(parsed.values()), complete=complete
    )
    return grouped, dropped


def _chunks(values: Sequence[str], size: int) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _same(params: Params) -> Callable[[bool], list[Params]]:
    """The same filters for keyset and offset paging."""
    return lambda keyset: [params]


# ----------------------------------------------------------------------------------------------------------------
# The client


@dataclass(slots=True)
class _Listing:
    items: list[Any] = field(default_factory=list)
    pages: int = 0
    paging: str = "keyset"
    incomplete_reason: str | None = None


class _KeysetMissing(Exception):
    """The keyset endpoint answered 404 to its first page: read this listing by offset."""


class GammaClient:
    """Gamma over httpx (on trio). The caller bounds each call with `trio.fail_after`; CLOB tick lookups are
    bounded here (`tick_timeout_secs` each).

    `keyset=False` reads lists by offset only (a Gamma known to lack the keyset endpoints); `tick_size` is where a
    missing tick is looked up (the CLOB's `GET /tick-size`: `PolymarketRestClient.tick_size`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str = GAMMA_URL,
        *,
        keyset: bool = True,
        tick_size: TickSource | None = None,
        tick_timeout_secs: float = 5.0,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._keyset = keyset
        self._tick_source = tick_size
        self._tick_timeout_secs = tick_timeout_secs
        self._ticks: dict[str, tuple[Decimal, float]] = {}  # YES token -> (tick, when looked up)
        self._stats = GammaStatistics()
        # listings whose last run was incomplete (warned once), by path and the selectors asked: the narrow lookup of
        # a few markets by condition id is complete and must not re-arm the warning about the whole listing
        self._incomplete: set[tuple[str, frozenset[str]]] = set()
        self._fallback_logged: set[str] = set()

    def statistics(self) -> GammaStatistics:
        return self._stats.copy()

    # -- requests and pages -------------------------------------------------------------------------------------

    async def _get(self, path: str, params: Sequence[tuple[str, str]]) -> bytes:
        url = self._base_url + path
        self._stats.requests += 1
        with map_exceptions(HTTP_EXCEPTIONS, what=f"gamma GET {path}"):
            response = await self._http.get(url, params=list(params))
        if response.status_code >= 400:
            raise request_error(response)
        return response.content

    async def _keyset_pages(self, path: str, params: Params, page_size: int, pages_left: int, out: _Listing) -> None:
        """Follow `next_cursor` from the first page to the last (or until the page budget is spent)."""
        endpoint = path + "/keyset"
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            if pages_left <= 0:
                out.incomplete_reason = f"{PAGE_LIMIT}: {endpoint} has more than the pages allowed"
                return
            query = [*params, ("limit", str(page_size))] + ([("after_cursor", cursor)] if cursor is not None else [])
            try:
                content = await self._get(endpoint, query)
            except VenueRequestError as exc:
                if exc.status == 404 and cursor is None:
                    raise _KeysetMissing from exc
                raise
            items, cursor = _decode_keyset(content, path)
            out.items.extend(items)
            out.pages += 1
            self._stats.pages += 1
            pages_left -= 1
            if cursor is None:
                return
            if cursor in seen:
                out.incomplete_reason = f"{CURSOR_STUCK}: {endpoint} sent a cursor it had sent before"
                return
            seen.add(cursor)

    async def _offset_pages(self, path: str, params: Params, page_size: int, pages_left: int, out: _Listing) -> None:
        """Legacy paging: a full page is not the end (Gamma clamps pages to 100), the offset advances by what came
        back, and a 422 on a deeper page (offset too large) ends the listing there."""
        offset = 0
        while True:
            if pages_left <= 0:
                out.incomplete_reason = f"{PAGE_LIMIT}: {path} has more than the pages allowed"
                return
            try:
                content = await self._get(path, [*params, ("limit", str(page_size)), ("offset", str(offset))])
            except VenueRequestError as exc:
                if exc.status == 422 and offset > 0:
                    out.incomplete_reason = f"{OFFSET_LIMIT}: {path} refused offset {offset}: {exc.message}"
                    return
                raise
            batch = _decode_list(content, path)
            out.items.extend(batch)
            out.pages += 1
            self._stats.pages += 1
            pages_left -= 1
            if len(batch) < page_size:
                return
            offset += len(batch)

    async def _read(
        self, path: str, param_sets: list[Params], page_size: int, max_pages: int, keyset: bool
    ) -> _Listing:
        out = _Listing(paging="keyset" if keyset else "offset")
        for params in param_sets:
            pages_left = max_pages - out.pages
            if keyset:
                await self._keyset_pages(path, params, page_size, pages_left, out)
            else:
                await self._offset_pages(path, params, page_size, pages_left, out)
            if out.incomplete_reason is not None:
                break
        return out

    async def _list(
        self, path: str, param_sets: Callable[[bool], list[Params]], page_size: int, max_pages: int
    ) -> _Listing:
        """A whole listing, by keyset, or by offset when keyset is off or answers 404; counted, and its being
        incomplete logged once."""
        listing: _Listing | None = None
        if self._keyset:
            try:
                listing = await self._read(path, param_sets(True), page_size, max_pages, keyset=True)
            except _KeysetMissing:
                self._stats.keyset_fallbacks += 1
                if path not in self._fallback_logged:
                    self._fallback_logged.add(path)
                    log.info("gamma_keyset_unavailable", path=path + "/keyset", reading="by offset")
        if listing is None:
            listing = await self._read(path, param_sets(False), page_size, max_pages, keyset=False)
        self._stats.paging = listing.paging
        reason = listing.incomplete_reason
        key = (path, frozenset(name for params in param_sets(True) for name, _ in params))
        if reason is None:
            if key in self._incomplete:
                self._incomplete.discard(key)
                log.info("gamma_listing_complete", path=path, items=len(listing.items), paging=listing.paging)
        else:
            code = reason.split(":", 1)[0]
            self._stats.incomplete[code] = self._stats.incomplete.get(code, 0) + 1
            if key not in self._incomplete:
                self._incomplete.add(key)
                log.warning(
                    "gamma_listing_incomplete",
                    path=path,
                    reason=reason,
                    items=len(listing.items),
                    paging=listing.paging,
                    hint="narrow the market selection (tag_id, slugs, ...) or raise markets.max_pages",
                )
        return listing

    # -- ticks --------------------------------------------------------------------------------------------------

    async def _lookup_ticks(self, tokens: Iterable[str]) -> dict[str, Decimal]:
        """Ticks of these YES tokens from the CLOB (cached for a while); those it cannot tell are left out."""
        wanted = set(tokens)
        if not wanted or self._tick_source is None:
            return {}
        source = self._tick_source
        now = trio.current_time()
        self._ticks = {t: entry for t, entry in self._ticks.items() if now - entry[1] < _TICK_CACHE_SECS}
        found = {t: self._ticks[t][0] for t in wanted if t in self._ticks}
        todo = sorted(wanted - found.keys())[:_TICK_LOOKUPS]
        limiter = trio.CapacityLimiter(_TICK_LOOKUPS_AT_ONCE)

        async def lookup(token: str) -> None:
            async with limiter:
                self._stats.tick_lookups += 1
                try:
                    with trio.fail_after(self._tick_timeout_secs):
                        tick = await source(token)
                except (VenueError, trio.TooSlowError) as exc:
                    self._stats.tick_lookup_failures += 1
                    log.debug("gamma_tick_lookup_failed", token_id=token, error=truncate(str(exc) or repr(exc)))
                    return
                found[token] = tick
                self._ticks[token] = (tick, trio.current_time())

        async with trio.open_nursery() as nursery:
            for token in todo:
                nursery.start_soon(lookup, token)
        return found

    def _drop(self, reason: str) -> None:
        code = reason.split(":", 1)[0]
        self._stats.dropped[code] = self._stats.dropped.get(code, 0) + 1

    # -- markets and events -------------------------------------------------------------------------------------

    async def markets(self, query: MarketQuery) -> Discovery:
        """The markets `query` selects, Gamma's whole listing read (see the module docstring)."""
        listing = await self._list(
            "/markets", lambda keyset: query.param_sets(keyset=keyset), query.page_size, query.max_pages
        )
        found = select_markets(listing.items, query)
        markets, skipped = list(found.markets), list(found.skipped)
        if found.needs_tick:
            ticks = await self._lookup_ticks(d.market.yes_token_id for d in found.needs_tick)
            for pending in found.needs_tick:
                tick = ticks.get(pending.market.yes_token_id)
                if tick is None:
                    name = pending.market.slug or pending.gamma_id
                    skipped.append((name, "TICK_SIZE_UNKNOWN: no orderPriceMinTickSize, and the CLOB did not tell it"))
                else:
                    markets.append(replace(pending, market=pending.market.with_tick_size(tick)))
        return Discovery(
            markets=markets,
            skipped=skipped,
            complete=listing.incomplete_reason is None,
            incomplete_reason=listing.incomplete_reason,
            pages=listing.pages,
            paging=listing.paging,
        )

    async def events(
        self, event_ids: Iterable[str], *, known_ticks: Mapping[str, Decimal] | None = None
    ) -> list[NegRiskEvent]:
        """The neg-risk events with these ids (non-neg-risk events are left out). An unreadable event, or an
        unreadable market inside one, is dropped and counted (`statistics().dropped`); a market without a tick takes
        it from `known_ticks` (YES token -> tick), else from the CLOB."""
        ids = sorted(set(event_ids))
        items: list[Any] = []
        for chunk in _chunks(ids, MAX_SELECTOR_VALUES):
            # closed=false said outright: Gamma's /events has been seen to default to closed events only (a closed
            # event is no basket to trade anyway)
            params = [*(("id", i) for i in chunk), ("closed", "false")]
            listing = await self._list("/events", _same(params), GAMMA_MAX_PAGE, _EVENT_PAGES)
            items.extend(listing.items)
        wanted = set(ids)
        headers: dict[str, tuple[WireGammaEventRef, list[Any]]] = {}
        for item in items:
            try:
                event = msgspec.convert(item, WireGammaEventRef)
            except msgspec.ValidationError as exc:
                self._drop("BAD_EVENT")
                log.debug("gamma_event_dropped", event_id=_name_of(item), reason=f"BAD_EVENT: {exc}")
                continue
            if event.id not in wanted or event.id in headers or not (event.negRisk or event.enableNegRisk):
                continue
            headers[event.id] = (event, event.markets or [])
        ticks = dict(known_ticks or {})
        untick = {t for _, markets in headers.values() for t in untick_tokens(markets)} - ticks.keys()
        ticks.update(await self._lookup_ticks(untick))
        out: list[NegRiskEvent] = []
        for event, markets in headers.values():
            grouped, dropped = group_neg_risk_event(event, markets, ticks)
            for name, reason in dropped:
                self._drop(reason)
                log.debug("gamma_event_market_dropped", event_id=event.id, market=name, reason=truncate(reason))
            out.append(grouped)
        return out

    async def neg_risk_events(self, markets: Iterable[DiscoveredMarket]) -> list[NegRiskEvent]:
        """The full neg-risk events that the given markets belong to; a member's tick known from `markets` is used
        when the event's copy of the market carries none."""
        members = [d for d in markets if d.market.neg_risk and d.event_id]
        known = {d.market.yes_token_id: d.market.tick_size for d in members}
        return await self.events((d.event_id for d in members if d.event_id), known_ticks=known)


def _decode_list(content: bytes, path: str) -> list[Any]:
    try:
        return _JSON_LIST.decode(content)
    except msgspec.ValidationError:
        raise VenueProtocolError(f"gamma {path}: expected a JSON list") from None
    except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, or nested too deeply
        raise VenueProtocolError(f"gamma {path}: reply is not JSON: {describe_json_error(exc)}") from None


def _decode_keyset(content: bytes, path: str) -> tuple[list[Any], str | None]:
    """A keyset page: its items and the cursor of the next page (None on the last: absent, null or "")."""
    try:
        if path == "/events":
            events = _EVENTS_PAGE.decode(content)
            return events.events, events.next_cursor or None
        markets = _MARKETS_PAGE.decode(content)
        return markets.markets, markets.next_cursor or None
    except msgspec.ValidationError as exc:
        raise VenueProtocolError(f"gamma {path}/keyset: unexpected reply shape: {exc}") from None
    except JSON_INPUT_ERRORS as exc:
        raise VenueProtocolError(f"gamma {path}/keyset: reply is not JSON: {describe_json_error(exc)}") from None


# ----------------------------------------------------------------------------------------------------------------
# Periodic refresh


class MarketTracker(Protocol):
    def track(self, market: Market) -> object: ...

    def untrack(self, condition_id: str) -> None: ...


@dataclass(slots=True)
class RefreshStatistics:
    """Counters since the start, and what the last successful refresh found."""

    refreshes: int = 0
    failures: int = 0
    added: int = 0
    removed: int = 0
    last_error: str | None = None
    #: the last refresh: markets selected, whether Gamma's listing was read to its end (and if not, why), the pages
    #: read, how ("keyset" or "offset") and the markets left out by reason
    found: int = 0
    complete: bool = True
    incomplete_reason: str | None = None
    pages: int = 0
    paging: str = "keyset"
    skipped: dict[str, int] = field(default_factory=dict)
    #: markets the venue announced (`new_market`) and the lookups of them between refreshes
    announced: int = 0
    announced_added: int = 0
    announced_dropped: int = 0  # more were pending than `Announcements.limit`: left to the next refresh


class Announcements:
    """Markets the venue announced (the market channel's `new_market`), for the refresh to look up by condition id
    at once instead of at its next period. `announce` is synchronous (called from the frame handler); pending ids
    are bounded by `limit` (more are left to the periodic refresh, which finds them anyway)."""

    __slots__ = ("_event", "_pending", "dropped", "limit")

    def __init__(self, limit: int = MAX_SELECTOR_VALUES) -> None:
        self.limit = limit
        self._pending: set[str] = set()
        self._event = trio.Event()
        self.dropped = 0

    def announce(self, condition_id: str) -> None:
        if condition_id in self._pending:
            return
        if len(self._pending) >= self.limit:
            self.dropped += 1
            return
        self._pending.add(condition_id)
        self._event.set()

    @property
    def ready(self) -> trio.Event:
        """Set while announcements are pending."""
        return self._event

    def take(self) -> tuple[str, ...]:
        pending = tuple(sorted(self._pending))
        self._pending.clear()
        self._event = trio.Event()
        return pending


async def run_market_refresh(
    gamma: GammaClient,
    query: MarketQuery,
    tracker: MarketTracker,
    *,
    period_secs: float = 60.0,
    request_timeout_secs: float = 60.0,
    stats: RefreshStatistics | None = None,
    on_refresh: Callable[[Discovery], None] | None = None,
    announcements: Announcements | None = None,
    task_status: trio.TaskStatus[Discovery] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Track what `query` selects; re-run it every `period_secs` (drift-free), each run bounded by
    `request_timeout_secs`. `started` after the first success.

    A failed refresh keeps the current set and tries again next period (the first refresh retries every period
    until it succeeds, so a start with Gamma down waits rather than crashes). An incomplete one (Gamma's listing
    stopped early) adds what it found; a tracked market it did not reach is not taken for gone: those are asked
    about by condition id (a page or two), and only the ones Gamma no longer selects are removed.

    Between refreshes, markets in `announcements` (the venue's `new_market`) are looked up by condition id at once,
    and tracked when the query selects them: a new market is traded in a second, not at the next period. A failed
    lookup is left to the next refresh.
    """
    stats = stats if stats is not None else RefreshStatistics()
    tracked: set[str] = set()
    started = False
    ticks = Ticker(period_secs)
    while True:
        try:
            with trio.fail_after(request_timeout_secs):
                found = await gamma.markets(query)
                kept: set[str] = set()
                unreached = sorted(tracked - found.by_condition_id().keys()) if not found.complete else []
                if unreached:  # the same selection, narrowed to them (they met every selector when tracked)
                    still = await gamma.markets(replace(query, condition_ids=tuple(unreached)))
                    kept = set(still.by_condition_id())
        except (VenueError, trio.TooSlowError) as exc:
            stats.failures += 1
            stats.last_error = truncate(str(exc) or type(exc).__name__)
            log.warning("gamma_refresh_failed", error=stats.last_error)
        else:
            stats.refreshes += 1
            stats.found = len(found.markets)
            stats.complete, stats.incomplete_reason = found.complete, found.incomplete_reason
            stats.pages, stats.paging = found.pages, found.paging
            stats.skipped = dict(Counter(reason.split(":", 1)[0] for _, reason in found.skipped))
            current = found.by_condition_id()
            for condition_id in sorted(tracked - current.keys() - kept):
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
        if announcements is None or not started:
            await ticks.next()
            continue
        while not await ticks.next_or(announcements.ready):
            await _look_up_announced(
                gamma, query, tracker, announcements, tracked=tracked, stats=stats, timeout_secs=request_timeout_secs
            )


async def _look_up_announced(
    gamma: GammaClient,
    query: MarketQuery,
    tracker: MarketTracker,
    announcements: Announcements,
    *,
    tracked: set[str],
    stats: RefreshStatistics,
    timeout_secs: float,
) -> None:
    wanted = tuple(
        c
        for c in announcements.take()
        if c not in tracked and (not query.condition_ids or c in query.condition_ids)  # never wider than the query
    )
    stats.announced_dropped = announcements.dropped
    if not wanted:
        return
    stats.announced += len(wanted)
    try:
        with trio.fail_after(timeout_secs):
            found = await gamma.markets(replace(query, condition_ids=wanted))
    except (VenueError, trio.TooSlowError) as exc:
        log.info("announced_market_lookup_failed", markets=len(wanted), error=truncate(str(exc) or type(exc).__name__))
        return
    for condition_id, discovered in found.by_condition_id().items():
        if condition_id not in tracked:
            tracker.track(discovered.market)
            tracked.add(condition_id)
            stats.added += 1
            stats.announced_added += 1
