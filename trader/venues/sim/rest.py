"""The REST side of the simulated venue on one port: the CLOB API at `/`, Gamma at `/gamma`, the Data API at
`/data-api` (`/v2/positions?user=`, and the older `/positions`), and the sim's admin endpoints at `/_sim`
(`/_sim/faults`; `POST /_sim/resolve {"condition_id": ..., "winner": "yes" | "no" | "50-50"}` resolves a market now;
`GET /_sim/ledger?address=0x...`: a client wallet's pUSD and shares, every order the venue took from it with its
trades, and its refused order ids, `trader.venues.sim.ledger`).
Shapes and error strings follow protocol.md §4-§7 and captured/*.json; a resolved market shows `closed` and its
`tokens[].winner` on `/markets/{condition_id}`, and `closed`, not `active` and its payouts as `outcomePrices` on
Gamma.

Order submission (`POST /order`, `POST /orders`) checks, in the venue's order: L2 HMAC (401 `Unauthorized/Invalid
api key`), the payload, `owner` = the API key, V1 shape (400 `order_version_mismatch`), the EIP-712 signature (under
the domain of the exchange the token belongs to: Exchange V3 for a protocol-v2 position id, else the V2 exchange the
market's neg-risk flag picks; the recovered EOA must be the API key's address, and signer/maker must fit the signature
type; else 400 `invalid signature`, so an order signed for the wrong exchange is refused as the venue refuses it),
then the exchange's own checks (400 `{"error": <venue message>}`).

Before an order or cancel request is routed: the venue's trading mode (`trader.venues.sim.restrictions`: a restart
answers 425, the post-only window, cancel-only and trading disabled 503 with the venue's texts), then the signer's
token buckets (`trader.venues.sim.ratelimit.SignerLimits`: 429 with `Retry-After` when the request's whole cost is
not there); every reply of those endpoints then carries `Poly-RateLimit-Remaining`, `-Reset` and `-Tier` (and
`-Warning: true` in warning-only mode). `DELETE /orders` takes at most `max_cancel_ids` (1000) ids: more is 400
`Too many orders in payload, max allowed: 1000`. `GET /auth/ban-status/closed-only` and `GET /v1/user/rate-limit-tier`
(L2) answer for the key's address.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import trio

from trader.errors import InputError
from trader.venues.polymarket.auth import verify_l1_headers
from trader.venues.polymarket.chain import deposit_wallet_address, proxy_wallet_address, safe_wallet_address
from trader.venues.polymarket.signing import (
    EXCHANGE_V2,
    NEG_RISK_EXCHANGE_V2,
    POLY_1271,
    SIGNATURE_TYPE_EOA,
    is_v1_order_json,
    order_id,
    parse_signed_order,
    recover_order_signer,
)
from trader.venues.sim.apikeys import ApiKeyStore, Principal
from trader.venues.sim.dataapi import positions_v2
from trader.venues.sim.exchange import ORDER_TYPES, Accepted, CancelResult, Exchange, OrderRequest, Rejected
from trader.venues.sim.faults import FaultInjector, apply_fault
from trader.venues.sim.gamma import SimGamma
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.ledger import ClientLedger
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, price_str, units_str
from trader.venues.sim.ratelimit import RateLimiter, SignerLimits
from trader.venues.sim.relayer import SimRelayer
from trader.venues.sim.restrictions import (
    CANCEL_ONLY_TEXT,
    DISABLED_TEXT,
    POST_ONLY_CODE,
    POST_ONLY_TEXT,
    RESTART_TEXT,
)
from trader.venues.sim.rpc import SimRpc
from trader.venues.sim.wire import (
    JsonObject,
    clob_market,
    clob_market_compact,
    order_rest,
    payout_texts,
    trade_json,
)

GAMMA_PREFIX = "/gamma"
DATA_PREFIX = "/data-api"
ADMIN_PREFIX = "/_sim"
ESPN_PREFIX = "/espn"
RPC_PREFIX = "/rpc"
RELAYER_PREFIX = "/relayer"

INITIAL_CURSOR = "MA=="
END_CURSOR = "LTE="

UNAUTHORIZED = "Unauthorized/Invalid api key"
INVALID_PAYLOAD = "Invalid order payload"
NEG_RISK_ADAPTER = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestConfig:
    max_batch_orders: int = 15
    max_cancel_ids: int = 1000
    max_books: int = 500
    page_size: int = 100
    admin: bool = True


Route = Callable[[HttpRequest, str], HttpResponse]


class _Reply(Exception):
    """Raised inside a handler to answer at once (bad parameters, failed auth)."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _cursor_offset(cursor: str | None) -> int | None:
    if not cursor or cursor == INITIAL_CURSOR:
        return 0
    if cursor == END_CURSOR:
        return None
    try:
        offset = int(base64.b64decode(cursor, validate=True).decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _Reply(HttpResponse.error(400, "invalid next_cursor")) from None
    if offset < 0:
        return None
    return offset


def _page(items: Sequence[JsonObject], cursor: str | None, size: int) -> JsonObject:
    offset = _cursor_offset(cursor)
    if offset is None:
        return {"limit": size, "count": 0, "next_cursor": END_CURSOR, "data": []}
    chunk = list(items[offset : offset + size])
    more = offset + size < len(items)
    next_cursor = base64.b64encode(str(offset + size).encode()).decode() if more else END_CURSOR
    return {"limit": size, "count": len(chunk), "next_cursor": next_cursor, "data": chunk}


def _token_arg(request: HttpRequest, name: str = "token_id") -> str:
    token = request.arg(name)
    if not token or not token.isascii() or not token.isdigit():
        raise _Reply(HttpResponse.error(400, "Invalid token id"))
    return token


class SimRestApp:
    """The HTTP handler of the sim (an `HttpHandler`)."""

    def __init__(
        self,
        exchange: Exchange,
        api_keys: ApiKeyStore,
        faults: FaultInjector,
        clock: Callable[[], float],
        *,
        limiter: RateLimiter | None = None,
        signer_limits: SignerLimits | None = None,
        config: RestConfig | None = None,
        extra_routes: dict[str, Callable[[HttpRequest, str], Awaitable[HttpResponse]]] | None = None,
    ) -> None:
        self.exchange = exchange
        self.api_keys = api_keys
        self.faults = faults
        self.clock = clock
        self.limiter = limiter
        #: the per-signer trading buckets (None: not limited)
        self.signer_limits = signer_limits
        self.config = config or RestConfig()
        #: prefix -> async handler(request, path below the prefix): where later services (ESPN) plug in
        self.extra_routes = dict(extra_routes or {})
        self._funders: dict[str, str] = {}
        #: every client order taken and refused, for `GET /_sim/ledger?address=` (the ground truth of harnesses)
        self.ledger = ClientLedger(exchange)
        #: Gamma (`/gamma`); the venue replaces it with one of its configuration and seed
        self.gamma = SimGamma(exchange)
        #: the Polygon node (`/rpc`) and Polymarket's relayer (`/relayer`), set by the venue that owns the chain
        self.rpc: SimRpc | None = None
        self.relayer: SimRelayer | None = None
        self._exact: dict[tuple[str, str], Route] = {
            ("GET", "/ok"): lambda r, p: HttpResponse.json("OK"),
            ("GET", "/time"): lambda r, p: HttpResponse.json(int(self.clock())),
            ("GET", "/version"): lambda r, p: HttpResponse.json({"version": 2}),
            ("GET", "/book"): self._book,
            ("POST", "/books"): self._books,
            ("GET", "/price"): self._price,
            ("POST", "/prices"): self._prices,
            ("GET", "/midpoint"): self._midpoint,
            ("POST", "/midpoints"): self._midpoints,
            ("GET", "/spread"): self._spread,
            ("POST", "/spreads"): self._spreads,
            ("GET", "/last-trade-price"): self._last_trade_price,
            ("POST", "/last-trades-prices"): self._last_trades_prices,
            ("GET", "/tick-size"): self._tick_size,
            ("GET", "/neg-risk"): self._neg_risk,
            ("GET", "/fee-rate"): self._fee_rate,
            ("GET", "/markets"): self._markets,
            ("GET", "/simplified-markets"): self._simplified_markets,
            ("GET", "/sampling-markets"): self._sampling_markets,
            ("GET", "/sampling-simplified-markets"): self._sampling_simplified_markets,
            ("POST", "/auth/api-key"): self._create_api_key,
            ("GET", "/auth/derive-api-key"): self._create_api_key,
            ("GET", "/auth/api-keys"): self._api_keys,
            ("POST", "/order"): self._post_order,
            ("POST", "/orders"): self._post_orders,
            ("DELETE", "/order"): self._cancel_order,
            ("DELETE", "/orders"): self._cancel_orders,
            ("DELETE", "/cancel-all"): self._cancel_all,
            ("DELETE", "/cancel-market-orders"): self._cancel_market_orders,
            ("GET", "/data/orders"): self._open_orders,
            ("GET", "/data/trades"): self._trades,
            ("GET", "/data/pre-migration-orders"): self._pre_migration_orders,
            ("GET", "/order-scoring"): self._order_scoring,
            ("POST", "/orders-scoring"): self._orders_scoring,
            ("GET", "/balance-allowance"): self._balance_allowance,
            ("GET", "/balance-allowance/update"): self._balance_allowance,
            ("POST", "/v1/heartbeats"): self._heartbeat,
            ("POST", "/heartbeats"): self._legacy_heartbeat,
            ("GET", "/auth/ban-status/closed-only"): self._closed_only,
            ("GET", "/v1/user/rate-limit-tier"): self._rate_limit_tier,
        }
        self._prefixed: list[tuple[str, str, Route]] = [
            ("GET", "/markets/", self._market),
            ("GET", "/clob-markets/", self._clob_market),
            ("GET", "/markets-by-token/", self._market_by_token),
            ("GET", "/fee-rate/", self._fee_rate_path),
            ("GET", "/data/order/", self._order),
        ]

    # -- dispatch -------------------------------------------------------------------------------------------

    @staticmethod
    def service_of(path: str) -> tuple[str, str]:
        prefixes = (
            (GAMMA_PREFIX, "gamma"),
            (DATA_PREFIX, "data"),
            (ADMIN_PREFIX, "admin"),
            (ESPN_PREFIX, "espn"),
            (RPC_PREFIX, "rpc"),
            (RELAYER_PREFIX, "relayer"),
        )
        for prefix, service in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return service, path[len(prefix) :] or "/"
        return "clob", path

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        service, path = self.service_of(request.path)
        if service != "admin":
            delay = self.faults.http_delay(service, path)
            if delay > 0:
                await trio.sleep(delay)
            injected = self.faults.http_error(service, path)
            if injected is not None:
                return injected
            if self.limiter is not None:
                client = request.headers.get("poly_api_key") or request.client.rsplit(":", 1)[0]
                full = self.limiter.check(
                    self.clock(), client=client, service=service, method=request.method, path=path
                )
                if full is not None:
                    return HttpResponse.error(429, "Too Many Requests")
            if service == "clob" and (request.method, path) in _TRADING:
                return await self._trading(request, path)
        return await self._route(request, service, path)

    async def _trading(self, request: HttpRequest, path: str) -> HttpResponse:
        """An order or cancel request: the venue's trading mode, the signer's buckets, then the route."""
        key = (request.method, path)
        refused = self._mode_reply(request, key)
        if refused is not None:
            return refused
        limits = self.signer_limits
        found = self.api_keys.lookup(request.headers.get("poly_api_key", "")) if limits is not None else None
        if limits is None or found is None:
            return await self._route(request, "clob", path)  # not limited, or not a key: the route answers 401
        address = found[1]
        kind = "order" if key in _PLACEMENTS else "cancel"
        cost = self._cost(request, key)
        if cost > max(self.config.max_batch_orders, self.config.max_cancel_ids):
            return await self._route(request, "clob", path)  # refused whole (400) for its size, before the buckets
        answer = limits.take(address, kind, cost, self.clock())
        if not answer.allowed:
            return dataclasses.replace(HttpResponse.error(429, "Too Many Requests"), headers=answer.headers())
        response = await self._route(request, "clob", path)
        if key in _CANCEL_ALLS and response.status == 200:
            cancelled = _canceled_count(response)
            if cancelled:
                answer = limits.charge(address, kind, cancelled, self.clock())
        return dataclasses.replace(response, headers=(*response.headers, *answer.headers()))

    def _mode_reply(self, request: HttpRequest, key: tuple[str, str]) -> HttpResponse | None:
        modes = self.faults.modes
        mode = modes.mode(self.clock())
        if mode is None:
            return None
        placement = key in _PLACEMENTS
        reply: HttpResponse | None = None
        if mode == "restarting":
            reply = HttpResponse.error(425, RESTART_TEXT)
        elif mode == "disabled":
            reply = HttpResponse.error(503, DISABLED_TEXT)
        elif mode == "cancel_only" and placement:
            reply = HttpResponse.error(503, CANCEL_ONLY_TEXT)
        elif mode == "post_only" and key == ("POST", "/order") and not _all_post_only(request):
            reply = HttpResponse.json({"error": POST_ONLY_TEXT, "code": POST_ONLY_CODE}, 503)  # a batch: per order
        if reply is not None:
            modes.refused[mode] += 1
        return reply

    @staticmethod
    def _cost(request: HttpRequest, key: tuple[str, str]) -> int:
        """Tokens a request costs up front: one per order or id (a cancel-all one, and the rest after the fact)."""
        if key in (("POST", "/orders"), ("DELETE", "/orders")):
            try:
                body = request.json()
            except ValueError:
                return 1
            return max(1, len(body)) if isinstance(body, list) else 1
        return 1

    async def _route(self, request: HttpRequest, service: str, path: str) -> HttpResponse:
        try:
            if service == "gamma":
                return self._gamma(request, path)
            if service == "data":
                return self._data(request, path)
            if service == "admin":
                return self._admin(request, path)
            if service == "rpc" and self.rpc is not None:
                return self.rpc.handle(request)
            if service == "relayer" and self.relayer is not None:
                return self.relayer.handle(request, path)
            for prefix, extra in self.extra_routes.items():
                if request.path.startswith(prefix):
                    return await extra(request, request.path[len(prefix) :])
            route = self._exact.get((request.method, path))
            if route is not None:
                return route(request, path)
            for method, prefix, handler in self._prefixed:
                if request.method == method and path.startswith(prefix) and len(path) > len(prefix):
                    return handler(request, path[len(prefix) :])
            return HttpResponse.error(404, "not found")
        except _Reply as reply:
            return reply.response

    # -- public market data ---------------------------------------------------------------------------------

    def _known_token(self, token: str) -> str:
        if self.exchange.market_of_token(token) is None:
            raise _Reply(HttpResponse.error(404, "No orderbook exists for the requested token id"))
        return token

    def _book(self, request: HttpRequest, path: str) -> HttpResponse:
        token = self._known_token(_token_arg(request))
        return HttpResponse.json(self.exchange.book_summary(token, self.clock()).rest_json())

    def _json_list(self, request: HttpRequest) -> list[dict[str, object]]:
        try:
            body = request.json()
        except ValueError:
            raise _Reply(HttpResponse.error(400, "Invalid payload")) from None
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise _Reply(HttpResponse.error(400, "Invalid payload"))
        if len(body) > self.config.max_books:
            raise _Reply(HttpResponse.error(400, "Payload exceeds the limit"))
        return body

    def _tokens_of(self, request: HttpRequest) -> list[tuple[str, dict[str, object]]]:
        items = []
        for item in self._json_list(request):
            token = item.get("token_id")
            if not isinstance(token, str) or not token.isdigit():
                raise _Reply(HttpResponse.error(400, "Invalid token id"))
            if self.exchange.market_of_token(token) is not None:
                items.append((token, item))
        return items

    def _books(self, request: HttpRequest, path: str) -> HttpResponse:
        now = self.clock()
        return HttpResponse.json([self.exchange.book_summary(t, now).rest_json() for t, _ in self._tokens_of(request)])

    def _side_price(self, token: str, side: object) -> str:
        if side not in ("BUY", "SELL"):
            raise _Reply(HttpResponse.error(400, "Invalid side"))
        bid, ask = self.exchange.best_prices(token)
        if side == "BUY":  # the best bid, as production answers (protocol.md §4)
            return price_str(bid) if bid is not None else "0"
        return price_str(ask) if ask is not None else "1"

    def _price(self, request: HttpRequest, path: str) -> HttpResponse:
        token = self._known_token(_token_arg(request))
        return HttpResponse.json({"price": self._side_price(token, (request.arg("side") or "").upper())})

    def _prices(self, request: HttpRequest, path: str) -> HttpResponse:
        result: dict[str, dict[str, str]] = {}
        for token, item in self._tokens_of(request):
            side = str(item.get("side", "")).upper()
            result.setdefault(token, {})[side] = self._side_price(token, side)
        return HttpResponse.json(result)

    def _mid(self, token: str) -> str:
        bid, ask = self.exchange.best_prices(token)
        if bid is None or ask is None:
            raise _Reply(HttpResponse.error(404, "No orderbook exists for the requested token id"))
        return format((Decimal(bid + ask) / 2 / PIPS_PER_ONE).normalize(), "f")

    def _midpoint(self, request: HttpRequest, path: str) -> HttpResponse:
        return HttpResponse.json({"mid": self._mid(self._known_token(_token_arg(request)))})

    def _midpoints(self, request: HttpRequest, path: str) -> HttpResponse:
        return HttpResponse.json({token: self._mid(token) for token, _ in self._tokens_of(request)})

    def _spread_of(self, token: str) -> str:
        bid, ask = self.exchange.best_prices(token)
        return price_str(ask - bid) if bid is not None and ask is not None else "0"

    def _spread(self, request: HttpRequest, path: str) -> HttpResponse:
        return HttpResponse.json({"spread": self._spread_of(self._known_token(_token_arg(request)))})

    def _spreads(self, request: HttpRequest, path: str) -> HttpResponse:
        """`POST /spreads [{"token_id": ...}, ...]` -> `{token_id: spread}`, as `POST /midpoints`."""
        return HttpResponse.json({token: self._spread_of(token) for token, _ in self._tokens_of(request)})

    def _last_trade_price(self, request: HttpRequest, path: str) -> HttpResponse:
        """The last trade's price and side; before any trade production's defaults, "0.5" and "" (its OpenAPI)."""
        token = self._known_token(_token_arg(request))
        side = self.exchange.last_trade_side(token)
        return HttpResponse.json({"price": price_str(self.exchange.last_trade_pips(token)), "side": side})

    def _last_trades_prices(self, request: HttpRequest, path: str) -> HttpResponse:
        """`POST /last-trades-prices [{"token_id": ...}, ...]` (at most 500) -> `[{"token_id", "price", "side"}]`.
        A token without a trade yet is left out: every entry production sends has a side (polymarket-client 0.14.0
        reads the side as BUY or SELL and refuses the whole reply otherwise)."""
        items = []
        for token, _ in self._tokens_of(request):
            side = self.exchange.last_trade_side(token)
            if side:
                items.append(
                    {"token_id": token, "price": price_str(self.exchange.last_trade_pips(token)), "side": side}
                )
        return HttpResponse.json(items)

    def _tick_size(self, request: HttpRequest, path: str) -> HttpResponse:
        token = self._known_token(_token_arg(request))
        return HttpResponse.json({"minimum_tick_size": self.exchange.tick_size(token)})  # a JSON number

    def _neg_risk(self, request: HttpRequest, path: str) -> HttpResponse:
        market = self.exchange.market_of_token(self._known_token(_token_arg(request)))
        return HttpResponse.json({"neg_risk": bool(market and market.neg_risk)})

    def _fee_rate_of(self, token: str) -> HttpResponse:
        market = self.exchange.market_of_token(self._known_token(token))
        return HttpResponse.json({"base_fee": market.fees.base_fee_bps if market else 0})

    def _fee_rate(self, request: HttpRequest, path: str) -> HttpResponse:
        return self._fee_rate_of(_token_arg(request))

    def _fee_rate_path(self, request: HttpRequest, token: str) -> HttpResponse:
        return self._fee_rate_of(token)

    def _clob_market_json(self, condition_id: str) -> JsonObject:
        market = self.exchange.market(condition_id)
        if market is None:
            raise _Reply(HttpResponse.error(404, "market not found"))
        yes = market.token_ids[0]
        prices = (self.exchange.last_trade_pips(yes), PIPS_PER_ONE - self.exchange.last_trade_pips(yes))
        return clob_market(market, prices, self.exchange.tick_size(yes), self.exchange.resolution(condition_id))

    def _markets(self, request: HttpRequest, path: str) -> HttpResponse:
        items = [self._clob_market_json(m.condition_id) for m in self.exchange.markets]
        return HttpResponse.json(_page(items, request.arg("next_cursor"), self.config.page_size))

    def _sampling(self) -> list[JsonObject]:
        """The markets of `/sampling-markets`: production's are those its liquidity rewards sample, all open and
        accepting orders; the sim has no rewards program, so every market that accepts orders is sampled."""
        items = (self._clob_market_json(m.condition_id) for m in self.exchange.markets)
        return [m for m in items if m["accepting_orders"] and not m["closed"]]

    def _simplified_markets(self, request: HttpRequest, path: str) -> HttpResponse:
        items = [_simplified(self._clob_market_json(m.condition_id)) for m in self.exchange.markets]
        return HttpResponse.json(_page(items, request.arg("next_cursor"), self.config.page_size))

    def _sampling_markets(self, request: HttpRequest, path: str) -> HttpResponse:
        return HttpResponse.json(_page(self._sampling(), request.arg("next_cursor"), self.config.page_size))

    def _sampling_simplified_markets(self, request: HttpRequest, path: str) -> HttpResponse:
        items = [_simplified(m) for m in self._sampling()]
        return HttpResponse.json(_page(items, request.arg("next_cursor"), self.config.page_size))

    def _market(self, request: HttpRequest, condition_id: str) -> HttpResponse:
        return HttpResponse.json(self._clob_market_json(condition_id))

    def _clob_market(self, request: HttpRequest, condition_id: str) -> HttpResponse:
        market = self.exchange.market(condition_id)
        if market is None:
            return HttpResponse.error(404, "market not found")
        return HttpResponse.json(clob_market_compact(market, self.exchange.tick_size(market.token_ids[0])))

    def _market_by_token(self, request: HttpRequest, token: str) -> HttpResponse:
        market = self.exchange.market_of_token(token)
        if market is None:
            return HttpResponse.error(404, "market not found")
        return HttpResponse.json({"condition_id": market.condition_id})

    # -- authentication -------------------------------------------------------------------------------------

    def _l2(self, request: HttpRequest) -> Principal:
        try:
            return self.api_keys.authenticate_l2(request.headers, request.method, request.path, request.text)
        except InputError:
            raise _Reply(HttpResponse.error(401, UNAUTHORIZED)) from None

    def _create_api_key(self, request: HttpRequest, path: str) -> HttpResponse:
        headers = {name.upper(): value for name, value in request.headers.items() if name.startswith("poly_")}
        try:
            address = verify_l1_headers(headers)
            nonce = int(headers.get("POLY_NONCE", "0"))
        except (InputError, ValueError):
            return HttpResponse.error(401, "Invalid L1 Request headers")
        credentials = self.api_keys.derive(address, nonce)
        return HttpResponse.json(
            {"apiKey": credentials.api_key, "secret": credentials.secret, "passphrase": credentials.passphrase}
        )

    def _api_keys(self, request: HttpRequest, path: str) -> HttpResponse:
        return HttpResponse.json({"apiKeys": [self._l2(request).api_key]})

    # -- orders ---------------------------------------------------------------------------------------------

    def _place(self, principal: Principal, entry: object) -> tuple[int, JsonObject, str]:
        """(HTTP status, reply, order id or "") of one order of a POST /order(s) body."""
        if not isinstance(entry, dict) or not isinstance(entry.get("order"), dict):
            return 400, {"error": INVALID_PAYLOAD}, ""
        if entry.get("owner") != principal.api_key:
            return 400, {"error": "the order owner has to be the same as the API KEY"}, ""
        order_type = entry.get("orderType", "GTC")
        if not isinstance(order_type, str) or order_type not in ORDER_TYPES:
            return 400, {"error": f"{INVALID_PAYLOAD}: orderType must be one of GTC, GTD, FOK, FAK"}, ""
        post_only = entry.get("postOnly", False)
        if not isinstance(post_only, bool):
            return 400, {"error": f"{INVALID_PAYLOAD}: postOnly must be a boolean"}, ""
        raw = entry["order"]
        if is_v1_order_json(raw):
            return 400, {"error": "order_version_mismatch"}, ""
        try:
            signed = parse_signed_order(raw)
        except InputError as exc:
            return 400, {"error": f"{INVALID_PAYLOAD}: {exc}"}, ""
        market = self.exchange.market_of_token(signed.token_id)
        if market is None:
            return 400, {"error": "the market is not yet ready to process new orders"}, ""
        oid = order_id(signed, neg_risk=market.neg_risk)
        try:
            recovered = recover_order_signer(signed, neg_risk=market.neg_risk)
        except InputError:
            return 400, {"error": "invalid signature"}, oid
        eoa = principal.address.lower()
        signer, maker = signed.signer.lower(), signed.maker.lower()
        if signed.signature_type == SIGNATURE_TYPE_EOA:
            valid = recovered.lower() == eoa and signer == eoa and maker == eoa
        elif signed.signature_type == POLY_1271:
            valid = recovered.lower() == eoa and signer == maker
        else:
            valid = recovered.lower() == eoa and signer == eoa
        if not valid:
            return 400, {"error": "invalid signature"}, oid
        self._funders[principal.api_key] = signed.maker
        request = OrderRequest(
            order_id=oid,
            owner=principal.api_key,
            maker_address=signed.maker,
            token_id=signed.token_id,
            side=signed.side,
            maker_amount=signed.maker_amount,
            taker_amount=signed.taker_amount,
            order_type=str(order_type),
            expiration=signed.expiration,
            post_only=post_only,
        )
        result = self.exchange.submit(request, self.clock())
        refusal = result.message if isinstance(result, Rejected) else ""
        self.ledger.placed(principal.api_key, signed.maker, oid, isinstance(result, Accepted), refusal)
        if isinstance(result, Rejected):
            return result.http_status, {"error": result.message}, oid
        return 200, _accepted_json(result), oid

    def _post_order(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        try:
            body = request.json()
        except ValueError:
            return HttpResponse.error(400, INVALID_PAYLOAD)
        status, reply, _ = self._place(principal, body)
        return HttpResponse.json(reply, status)

    def _post_orders(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        try:
            body = request.json()
        except ValueError:
            return HttpResponse.error(400, INVALID_PAYLOAD)
        if not isinstance(body, list) or not body:
            return HttpResponse.error(400, INVALID_PAYLOAD)
        if len(body) > self.config.max_batch_orders:
            return HttpResponse.error(400, "Payload exceeds the limit")
        results: list[JsonObject] = []
        modes = self.faults.modes
        post_only_window = modes.mode(self.clock()) == "post_only"
        for entry in body:
            if post_only_window and not (isinstance(entry, dict) and entry.get("postOnly") is True):
                modes.refused["post_only"] += 1
                results.append(_batch_refusal(POST_ONLY_TEXT))
                continue
            status, reply, _ = self._place(principal, entry)
            results.append(reply if status == 200 else _batch_refusal(str(reply.get("error", ""))))
        return HttpResponse.json(results)

    # -- cancels --------------------------------------------------------------------------------------------

    def _body(self, request: HttpRequest) -> object:
        try:
            return request.json()
        except ValueError:
            raise _Reply(HttpResponse.error(400, INVALID_PAYLOAD)) from None

    def _cancel_order(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("orderID"), str):
            return HttpResponse.error(400, INVALID_PAYLOAD)
        return _cancel_json(self.exchange.cancel(principal.api_key, [body["orderID"]], self.clock()))

    def _cancel_orders(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        body = self._body(request)
        if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
            return HttpResponse.error(400, INVALID_PAYLOAD)
        if len(body) > self.config.max_cancel_ids:
            return HttpResponse.error(400, f"Too many orders in payload, max allowed: {self.config.max_cancel_ids}")
        return _cancel_json(self.exchange.cancel(principal.api_key, body, self.clock()))

    def _cancel_all(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        return _cancel_json(self.exchange.cancel_all(principal.api_key, self.clock()))

    def _cancel_market_orders(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        body = self._body(request) or {}
        if not isinstance(body, dict):
            return HttpResponse.error(400, INVALID_PAYLOAD)
        market, asset = body.get("market") or None, body.get("asset_id") or None
        if (market is not None and not isinstance(market, str)) or (asset is not None and not isinstance(asset, str)):
            return HttpResponse.error(400, INVALID_PAYLOAD)
        return _cancel_json(self.exchange.cancel_all(principal.api_key, self.clock(), market=market, asset_id=asset))

    # -- account data ---------------------------------------------------------------------------------------

    def _open_orders(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        orders = self.exchange.open_orders(
            principal.api_key, market=request.arg("market"), asset_id=request.arg("asset_id")
        )
        wanted = request.arg("id")
        items = [order_rest(self.exchange.order_view(o)) for o in orders if wanted is None or o.order_id == wanted]
        return HttpResponse.json(_page(items, request.arg("next_cursor"), self.config.page_size))

    def _pre_migration_orders(self, request: HttpRequest, path: str) -> HttpResponse:
        """`GET /data/pre-migration-orders` (L2): the account's V1 orders left over from the 2026-04-28 cut-over
        (protocol.md §4), paged as `/data/orders`. The sim opened after the cut-over: it never has any."""
        self._l2(request)
        return HttpResponse.json(_page([], request.arg("next_cursor"), self.config.page_size))

    def _order_scoring(self, request: HttpRequest, path: str) -> HttpResponse:
        """`GET /order-scoring?order_id=` (L2) -> `{"scoring": bool}`: whether an order earns liquidity rewards. The
        sim has no rewards program: no order scores."""
        self._l2(request)
        if not request.arg("order_id"):
            return HttpResponse.error(400, "order_id is required")
        return HttpResponse.json({"scoring": False})

    def _orders_scoring(self, request: HttpRequest, path: str) -> HttpResponse:
        """`POST /orders-scoring ["0x...", ...]` (L2) -> `{order_id: bool}`, as `/order-scoring` for each."""
        self._l2(request)
        body = self._body(request)
        if not isinstance(body, list) or not all(isinstance(i, str) and i for i in body):
            return HttpResponse.error(400, INVALID_PAYLOAD)
        return HttpResponse.json(dict.fromkeys(body, False))

    def _order(self, request: HttpRequest, oid: str) -> HttpResponse:
        principal = self._l2(request)
        order = self.exchange.order(oid)
        if order is None or order.owner != principal.api_key:
            return HttpResponse.error(404, "order not found")
        return HttpResponse.json(order_rest(self.exchange.order_view(order)))

    def _trades(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        key = principal.api_key
        after, before = request.arg("after"), request.arg("before")
        items = []
        for trade in reversed(self.exchange.trades(key)):
            view = self.exchange.trade_view(trade)
            if request.arg("id") not in (None, view.trade_id):
                continue
            if request.arg("market") not in (None, view.market):
                continue
            if request.arg("asset_id") not in (None, view.asset_id, *(m.asset_id for m in view.maker_orders)):
                continue
            address = (request.arg("maker_address") or "").lower()
            if address and address not in (view.maker_address, *(m.maker_address for m in view.maker_orders)):
                continue
            if (after and after.isdigit() and view.match_time < int(after)) or (
                before and before.isdigit() and view.match_time > int(before)
            ):
                continue
            items.append(trade_json(view, key))
        return HttpResponse.json(_page(items, request.arg("next_cursor"), self.config.page_size))

    def _balance_allowance(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        signature_type = request.arg("signature_type") or "0"
        address = principal.address
        if signature_type != "0":  # the funder its orders named, else the signature type's wallet of the key's EOA
            derive = {"1": proxy_wallet_address, "2": safe_wallet_address, "3": deposit_wallet_address}.get(
                signature_type
            )
            default = derive(principal.address) if derive is not None else principal.address
            address = self._funders.get(principal.api_key, default)
        wallet = self.exchange.wallet(address)
        asset_type = (request.arg("asset_type") or "COLLATERAL").upper()
        if asset_type == "COLLATERAL":
            balance = wallet.collateral
        elif asset_type in ("CONDITIONAL", "CONDITIONAL-V2"):  # -V2: a protocol-v2 position id (polymarket-client)
            balance = wallet.shares.get(self._known_token(_token_arg(request)), 0)
        else:
            return HttpResponse.error(400, "invalid asset_type")
        allowance = str(self.exchange.config.allowance)
        spenders = (EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, NEG_RISK_ADAPTER)
        return HttpResponse.json(
            {"balance": str(balance), "allowance": allowance, "allowances": dict.fromkeys(spenders, allowance)}
        )

    def _heartbeat(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        body = self._body(request) or {}
        heartbeat_id = body.get("heartbeat_id", "") if isinstance(body, dict) else None
        if not isinstance(heartbeat_id, str):
            return HttpResponse.error(400, "Invalid heartbeat payload")
        result = self.exchange.heartbeat(principal.api_key, heartbeat_id, self.clock())
        if not result.ok:  # production's words and key (protocol.md §11 item 10): clients recover the id from it
            return HttpResponse.json({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": result.heartbeat_id}, 400)
        return HttpResponse.json({"heartbeat_id": result.heartbeat_id})

    def _legacy_heartbeat(self, request: HttpRequest, path: str) -> HttpResponse:
        """The legacy `POST /heartbeats` (no body): `{"status": "ok"}`, as production answers it. It carries no id, so
        it neither starts nor continues a dead-man session (that is `POST /v1/heartbeats`)."""
        self._l2(request)
        return HttpResponse.json({"status": "ok"})

    def _closed_only(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        funder = self._funders.get(principal.api_key, "")
        return HttpResponse.json({"closed_only": self.faults.modes.is_closed_only(principal.address, funder)})

    def _rate_limit_tier(self, request: HttpRequest, path: str) -> HttpResponse:
        principal = self._l2(request)
        limits = self.signer_limits
        return HttpResponse.json({"tier": limits.tier_of(principal.address).name if limits is not None else "standard"})

    # -- Gamma, Data API, admin -----------------------------------------------------------------------------

    def _gamma(self, request: HttpRequest, path: str) -> HttpResponse:
        return self.gamma.handle(request, path)  # `SimGamma` (sim/gamma.py)

    def _data(self, request: HttpRequest, path: str) -> HttpResponse:
        """The Data API's positions: `GET /v2/positions?user=` (the current contract, protocol.md §11 item 12: an
        envelope of snake_case rows, `trader.venues.sim.dataapi`) and the older `GET /positions?user=` (a bare list of
        camelCase rows, below)."""
        if request.method != "GET" or path not in ("/positions", "/v2/positions"):
            return HttpResponse.error(404, "not found")
        if path == "/v2/positions":
            return positions_v2(self.exchange, request)  # the v2 contract (sim/dataapi.py)
        user = request.arg("user")
        if not user:
            return HttpResponse.error(400, "user is required")
        wallet = self.exchange.wallet(user)
        out: list[JsonObject] = []
        for token, units in sorted(wallet.shares.items()):
            market = self.exchange.market_of_token(token)
            if market is None or units <= 0:
                continue
            index = market.outcome_index(token)
            size = Decimal(units) / UNITS_PER_ONE
            cost = Decimal(wallet.cost.get(token, 0)) / UNITS_PER_ONE
            bid, ask = self.exchange.best_prices(token)
            cur = (
                Decimal(bid + ask) / 2 / PIPS_PER_ONE
                if bid is not None and ask is not None
                else Decimal(self.exchange.last_trade_pips(token)) / PIPS_PER_ONE
            )
            value = size * cur
            event = self.exchange.events.get(market.event_id)
            out.append(
                {
                    "proxyWallet": wallet.address,
                    "asset": token,
                    "conditionId": market.condition_id,
                    "size": size,
                    "avgPrice": (cost / size).quantize(Decimal("0.0001")) if size else Decimal(0),
                    "initialValue": cost,
                    "currentValue": value,
                    "cashPnl": value - cost,
                    "percentPnl": ((value - cost) / cost * 100).quantize(Decimal("0.01")) if cost else Decimal(0),
                    "totalBought": Decimal(wallet.bought.get(token, 0)) / UNITS_PER_ONE,
                    "realizedPnl": Decimal(wallet.realized.get(token, 0)) / UNITS_PER_ONE,
                    "percentRealizedPnl": Decimal(0),
                    "curPrice": cur,
                    "redeemable": self.exchange.resolution(market.condition_id) is not None,
                    "mergeable": all(wallet.shares.get(t, 0) > 0 for t in market.token_ids),
                    "title": market.question,
                    "slug": market.slug,
                    "icon": "",
                    "eventSlug": event.slug if event else market.slug,
                    "outcome": market.outcomes[index],
                    "outcomeIndex": index,
                    "oppositeOutcome": market.outcomes[1 - index],
                    "oppositeAsset": market.token_ids[1 - index],
                    "endDate": market.end_date_iso,
                    "negativeRisk": market.neg_risk,
                }
            )
        return HttpResponse.json(out)

    def _admin(self, request: HttpRequest, path: str) -> HttpResponse:
        if not self.config.admin:
            return HttpResponse.error(404, "not found")
        if path == "/faults" and request.method == "GET":
            return HttpResponse.json(self.faults.armed())
        if path == "/faults" and request.method == "DELETE":
            self.faults.clear()
            return HttpResponse.json({"result": "cleared"})
        if path == "/faults" and request.method == "POST":
            body = self._body(request)
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                return HttpResponse.error(400, 'expected {"kind": "<fault kind>", ...params}')
            params = {k: v for k, v in body.items() if k != "kind"}
            try:
                return HttpResponse.json({"result": apply_fault(self.faults, body["kind"], params)})
            except InputError as exc:
                return HttpResponse.error(400, str(exc))
        if path == "/resolve" and request.method == "POST":
            return self._admin_resolve(request)
        if path == "/ledger" and request.method == "GET":
            address = request.arg("address")
            if not address:
                return HttpResponse.error(400, "address is required")
            return HttpResponse.json(self.ledger.account(address))
        return HttpResponse.error(404, "not found")

    def _admin_resolve(self, request: HttpRequest) -> HttpResponse:
        """`POST /_sim/resolve {"condition_id": ..., "winner": "yes" | "no" | "50-50"}`: resolve a market now."""
        body = self._body(request)
        winners: dict[str, int | None] = {"yes": 0, "no": 1, "50-50": None}
        winner = body.get("winner") if isinstance(body, dict) else None
        condition_id = body.get("condition_id") if isinstance(body, dict) else None
        if not isinstance(condition_id, str) or not isinstance(winner, str) or winner not in winners:
            return HttpResponse.error(400, 'expected {"condition_id": "0x...", "winner": "yes" | "no" | "50-50"}')
        try:
            resolution = self.exchange.resolve(condition_id, winners[winner], self.clock())
        except InputError as exc:
            return HttpResponse.error(400, str(exc))
        return HttpResponse.json({"result": "resolved", "payouts": payout_texts(resolution)})


#: The fields of a simplified market (`/simplified-markets`, `/sampling-simplified-markets` in production's OpenAPI)
_SIMPLIFIED_FIELDS = ("condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders")


def _simplified(market: JsonObject) -> JsonObject:
    return {name: market[name] for name in _SIMPLIFIED_FIELDS}


def _accepted_json(result: Accepted) -> JsonObject:
    """A placed order as production answers it: an order that matched nothing (resting) has empty amounts, ""."""
    matched = bool(result.trade_ids)
    return {
        "success": True,
        "errorMsg": "",
        "orderID": result.order_id,
        "status": result.status,
        "makingAmount": units_str(result.making_amount) if matched else "",
        "takingAmount": units_str(result.taking_amount) if matched else "",
        "transactionsHashes": [],
        "tradeIDs": list(result.trade_ids),
    }


def _batch_refusal(text: str) -> JsonObject:
    """A refused order of a `POST /orders` batch, as production answers it: the refusal's text, no order id, empty
    amounts and status, and `success` true nonetheless (the element polymarket-client 0.14.0's tests read as
    `post_only_mode`; a reply to py-clob-client-v2 quoted in client code, "invalid amount for a marketable BUY order
    ($0.01), min size: $1"; the docs list the refusals of a batch beside a success column of "yes")."""
    return {"errorMsg": text, "orderID": "", "takingAmount": "", "makingAmount": "", "status": "", "success": True}


#: The order and cancel endpoints (a trading mode and the signer's buckets apply to them).
_PLACEMENTS = frozenset({("POST", "/order"), ("POST", "/orders")})
_CANCEL_ALLS = frozenset({("DELETE", "/cancel-all"), ("DELETE", "/cancel-market-orders")})
_TRADING = _PLACEMENTS | _CANCEL_ALLS | {("DELETE", "/order"), ("DELETE", "/orders")}


def _all_post_only(request: HttpRequest) -> bool:
    """Whether every order of a `POST /order(s)` body has `postOnly: true` (a body that is not readable: no, and the
    post-only window refuses it before the route would)."""
    try:
        body = request.json()
    except ValueError:
        return False
    entries = body if isinstance(body, list) else [body]
    return bool(entries) and all(isinstance(e, dict) and e.get("postOnly") is True for e in entries)


def _canceled_count(response: HttpResponse) -> int:
    """How many orders a cancel-all reply says it cancelled (the sim's own JSON)."""
    try:
        reply = json.loads(response.body)
    except ValueError:
        return 0
    canceled = reply.get("canceled") if isinstance(reply, dict) else None
    return len(canceled) if isinstance(canceled, list) else 0


def _cancel_json(result: CancelResult) -> HttpResponse:
    return HttpResponse.json({"canceled": list(result.canceled), "not_canceled": result.not_canceled})
