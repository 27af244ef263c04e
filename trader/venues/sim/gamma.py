"""Gamma on the simulated venue (`/gamma`), behaving as production does by default (protocol.md §8, §11.1-2).

- `GET /markets`, `GET /events`: the legacy lists, paged by `limit` and `offset`. `limit` is clamped to
  `max_page` (100; without a limit, a page is that long too), never refused; an `offset` past `max_offset`
  answers `422 {"type": "validation error", "error": "offset too large, use /markets/keyset for deeper
  pagination"}` (production refused offsets past about 2,000 in 2026-06; `/events` names `/events/keyset`).
- `GET /markets/keyset`, `GET /events/keyset`: `{"markets"|"events": [...], "next_cursor": "..."}`, `limit`
  clamped the same way, advanced with `after_cursor=<next_cursor>`; the last page has no `next_cursor`.
  `cursor=` is ignored (the first page again, as production does: a client that sends it loops); `offset` is
  refused (422). Keyset lists only what is not closed unless `closed=` is given (production's default). A cursor
  is opaque to clients: the position after the page's last item and a fingerprint of the filters, so a cursor
  used with other filters is refused (422; the filters are hashed into the cursor upstream too, the wording here
  is the sim's own), as is one that is not a cursor. `keyset=False` (`trader sim --gamma-legacy`) is a Gamma
  without them: 404, for the clients' offset fallback.
- `GET /markets/{id}`, `GET /events/{id}`.
- Filters: `id`, `slug`, `condition_ids`, `clob_token_ids` (repeated or comma-separated), `active`, `closed`;
  others (`tag_id`, `liquidity_num_min`, `order`, ...) are accepted and ignored. An event lists all its markets,
  whatever the filters (which name events on `/events`).
- Field forms: `outcomes`, `outcomePrices` and `clobTokenIds` are JSON-encoded strings on some markets and real
  JSON arrays on others (`array_share` of the markets, chosen per market from the seed: a market always comes in
  the same form); `untick_share` of the markets nested in events carry no `orderPriceMinTickSize` (clients take
  it from the CLOB); the top-level copies always carry it.

Only what a page shows is rendered, so a long listing costs a page at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from trader.venues.sim.exchange import Exchange
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.markets import SimEvent, SimMarket
from trader.venues.sim.wire import JsonObject, gamma_event_header, gamma_market

__all__ = ["GammaConfig", "SimGamma"]

_LIST_FIELDS = ("outcomes", "outcomePrices", "clobTokenIds")
#: the request parameters that are not filters (left out of a cursor's fingerprint)
_PAGING = frozenset({"limit", "offset", "after_cursor", "cursor"})

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class GammaConfig:
    """How the sim's Gamma pages and shapes its lists; the defaults are production's (module docstring)."""

    max_page: int = 100
    max_offset: int = 2000
    keyset: bool = True
    array_share: float = 0.5
    untick_share: float = 0.25

    def __post_init__(self) -> None:
        if self.max_page < 1 or self.max_offset < 0:
            raise ValueError("max_page must be >= 1 and max_offset >= 0")
        if not (0 <= self.array_share <= 1 and 0 <= self.untick_share <= 1):
            raise ValueError("array_share and untick_share must be in [0, 1]")


class _Invalid(Exception):
    """A request Gamma refuses with 422 (`{"type": "validation error", "error": ...}`)."""


def _validation_error(message: str) -> HttpResponse:
    return HttpResponse.json({"type": "validation error", "error": message}, 422)


class SimGamma:
    """The `/gamma` routes over the exchange's markets and events (see the module docstring)."""

    def __init__(self, exchange: Exchange, config: GammaConfig | None = None, *, seed: int = 0) -> None:
        self.exchange = exchange
        self.config = config or GammaConfig()
        self.seed = seed

    def handle(self, request: HttpRequest, path: str) -> HttpResponse:
        if request.method != "GET":
            return HttpResponse.error(405, "method not allowed")
        try:
            return self._route(request, path)
        except _Invalid as exc:
            return _validation_error(str(exc))

    def _route(self, request: HttpRequest, path: str) -> HttpResponse:
        if path in ("/markets/keyset", "/events/keyset"):
            if not self.config.keyset:
                return HttpResponse.error(404, "not found")
            kind = path.split("/")[1]
            return HttpResponse.json(self._keyset(kind, request))
        if path == "/markets":
            markets = self._offset_page(self._markets(request.query), request, "/markets/keyset")
            return HttpResponse.json([self.market_json(m) for m in markets])
        if path == "/events":
            events = self._offset_page(self._events(request.query), request, "/events/keyset")
            return HttpResponse.json([self.event_json(e) for e in events])
        if path.startswith("/markets/"):
            wanted = path[len("/markets/") :]
            found = [m for m in self.exchange.markets if m.gamma_id == wanted]
            return (
                HttpResponse.json(self.market_json(found[0])) if found else HttpResponse.error(404, "market not found")
            )
        if path.startswith("/events/"):
            event = self.exchange.events.get(path[len("/events/") :])
            return HttpResponse.json(self.event_json(event)) if event else HttpResponse.error(404, "event not found")
        return HttpResponse.error(404, "not found")

    # -- selection ----------------------------------------------------------------------------------------------

    def _markets(self, q: Mapping[str, list[str]], *, open_by_default: bool = False) -> list[SimMarket]:
        ids, slugs = _values(q, "id"), _values(q, "slug")
        conditions, tokens = _values(q, "condition_ids"), set(_values(q, "clob_token_ids"))
        closed = q.get("closed", ["false"] if open_by_default else [])
        out = []
        for market in self.exchange.markets:
            if (ids and market.gamma_id not in ids) or (slugs and market.slug not in slugs):
                continue
            if (conditions and market.condition_id not in conditions) or (
                tokens and not tokens & set(market.token_ids)
            ):
                continue
            if _flag(q.get("active"), market.active) and _flag(closed, market.closed):  # resolved: closed, inactive
                out.append(market)
        return out

    def _events(self, q: Mapping[str, list[str]]) -> list[SimEvent]:
        ids, slugs = _values(q, "id"), _values(q, "slug")
        return [
            e
            for e in self.exchange.events.values()
            if (not ids or e.event_id in ids) and (not slugs or e.slug in slugs) and _flag(q.get("closed"), False)
        ]

    # -- paging -------------------------------------------------------------------------------------------------

    def _limit(self, request: HttpRequest) -> int:
        text = request.arg("limit")
        try:
            limit = int(text) if text else self.config.max_page
        except ValueError:
            raise _Invalid("limit must be an integer") from None
        return min(max(limit, 1), self.config.max_page)  # clamped, never refused

    def _offset_page(self, items: Sequence[_T], request: HttpRequest, keyset: str) -> Sequence[_T]:
        try:
            offset = max(int(request.arg("offset") or 0), 0)
        except ValueError:
            raise _Invalid("offset must be an integer") from None
        if offset > self.config.max_offset:
            raise _Invalid(f"offset too large, use {keyset} for deeper pagination")
        return items[offset : offset + self._limit(request)]

    def _keyset(self, kind: str, request: HttpRequest) -> JsonObject:
        if request.arg("offset") is not None:
            raise _Invalid("offset is not supported here, use after_cursor")
        limit = self._limit(request)
        filters = sorted((k, v) for k, values in request.query.items() if k not in _PAGING for v in values)
        fingerprint = hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:12]
        cursor = request.arg("after_cursor")  # `cursor=` is not read: production ignores it too
        start = _position(cursor, fingerprint) if cursor else 0
        # Positions are in the exchange's own order (a listing only ever appends), so a cursor stays valid while
        # markets are listed and resolved.
        if kind == "markets":
            chosen = {m.condition_id for m in self._markets(request.query, open_by_default=True)}
            markets, after = _keyset_page(self.exchange.markets, lambda m: m.condition_id in chosen, start, limit)
            page = [self.market_json(m) for m in markets]
        else:
            wanted = {e.event_id for e in self._events(request.query)}
            events, after = _keyset_page(
                list(self.exchange.events.values()), lambda e: e.event_id in wanted, start, limit
            )
            page = [self.event_json(e) for e in events]
        return {kind: page} if after is None else {kind: page, "next_cursor": _cursor(after, fingerprint)}

    # -- shapes -------------------------------------------------------------------------------------------------

    def _share(self, what: str, key: str) -> float:
        digest = hashlib.sha256(f"sim-gamma:{self.seed}:{what}:{key}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32

    def market_json(self, market: SimMarket, *, nested: bool = False) -> JsonObject:
        ex = self.exchange
        yes = market.token_ids[0]
        item = gamma_market(
            market,
            None if nested else ex.events.get(market.event_id),
            best=ex.best_prices(yes),
            last_trade=ex.last_trade_pips(yes),
            tick=ex.tick_size(yes),
            resolution=ex.resolution(market.condition_id),
        )
        if self._share("arrays", market.condition_id) < self.config.array_share:
            for name in _LIST_FIELDS:
                item[name] = json.loads(str(item[name]))
        if nested and self._share("untick", market.condition_id) < self.config.untick_share:
            del item["orderPriceMinTickSize"]
        return item

    def event_json(self, event: SimEvent) -> JsonObject:
        header = gamma_event_header(event)
        markets = (self.exchange.market(c) for c in event.market_ids)
        header["markets"] = [self.market_json(m, nested=True) for m in markets if m is not None]
        return header


def _keyset_page(
    source: Sequence[_T], chosen: Callable[[_T], bool], start: int, limit: int
) -> tuple[list[_T], int | None]:
    """Up to `limit` chosen items from position `start`, and the position to go on from (None: the last page)."""
    page: list[_T] = []
    for position in range(start, len(source)):
        if chosen(source[position]):
            if len(page) == limit:  # one more exists: this page is not the last
                return page, position
            page.append(source[position])
    return page, None


def _cursor(position: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([position, fingerprint]).encode()).decode().rstrip("=")


def _position(cursor: str, fingerprint: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position, made_for = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise _Invalid("invalid after_cursor") from None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0 or made_for != fingerprint:
        raise _Invalid("invalid after_cursor: it belongs to another query")
    return position


def _values(query: Mapping[str, list[str]], name: str) -> list[str]:
    return [part for value in query.get(name, []) for part in value.split(",") if part]


def _flag(values: list[str] | None, actual: bool) -> bool:
    """Whether a boolean filter (`active=true`, `closed=false`) lets `actual` through; absent lets all through."""
    if not values:
        return True
    return values[0].lower() == str(actual).lower()
