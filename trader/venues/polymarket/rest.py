"""The CLOB REST client (protocol.md §4, §5) on httpx + trio, and the parsers from its replies to domain values.

```
async with open_rest_client(base_url, signer, credentials) as rest:
    creds = await rest.create_or_derive_api_key()          # L1 (wallet signature)
    result = await rest.post_order(signed, order_type=OrderType.GTC)   # L2 (HMAC) on every trading call
```

Rules this module keeps:

* The caller owns timeouts: no call takes a timeout; wrap it in `trio.fail_after`. The httpx client is built with
  no timeouts of its own for the same reason.
* Order placement (`POST /order`, `POST /orders`) goes through `order_link.OrderLink`, a lean keep-alive HTTP/1.1
  client on h11 (a third of httpx's CPU per POST), with the same headers httpx sends; every other request, and all
  of them when a test injects an httpx transport, goes through httpx. A placement is never retried by either.
* L2 requests sign `timestamp + METHOD + path + body` with the path WITHOUT its query string; the body is
  serialized once and exactly those bytes are sent.
* httpx / trio / OS exceptions are mapped at this edge (`errors.map_exceptions` with `HTTP_EXCEPTIONS`, as httpcore
  does) to the `VenueError` tree: a failed connect is `VenueConnectionError` (the request was never sent), a connection
  broken after sending is `VenueDisconnected` (the outcome is unknown: resolve a submit by order id), a timeout of the
  transport is `VenueTimeout`, an undecodable reply is `VenueProtocolError`.
* An HTTP error status is a `VenueRequestError` with a stable code: 429 is `is_throttled` and carries
  `retry_after_secs`; 5xx is `is_server_error` and retryable; any other 4xx is not retryable. Except: an order the
  venue refuses (`success: false`, or a 4xx with an error text on POST /order(s)) is a value, `OrderRefused`.
  Trading restrictions (`errors.TradingRestriction`): 425 (the matching engine restarting) is raised on every
  endpoint, placements included (nothing was taken: the same order may be sent again); a 503 is classified by its
  machine `code` (`post_only_mode`) and its text (cancel-only, trading disabled) before its status.
* Rate limits: every reply carrying `Poly-RateLimit-*` or `Retry-After` headers is reported, as a venue-neutral
  `RateLimitReport`, to the listeners of `add_rate_limit_listener` (synchronously, before the call returns or
  raises); a header that cannot be read is ignored and counted (`RestStatistics.bad_rate_limit_headers`).
* Every reply is decoded with msgspec into `user_schemas` Structs and then into domain values; a reply of the wrong
  shape, or a value that cannot be read exactly (a price that is not a decimal, an unknown order status), is a
  `VenueProtocolError` naming the field. A trade's settlement status the engine does not know is not an error: it
  is `TradeStatus.UNKNOWN` (with the venue's word in `status_text`), counted by the venue and ignored by the engine.
  Error texts in messages are truncated; secrets never appear in them.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Protocol, TypeVar

import httpx
import msgspec
import structlog
import trio

from trader.domain.book import Level
from trader.domain.enums import Liquidity, OrderType, TradeStatus
from trader.domain.numbers import DECIMAL_EXPONENT_LIMIT, ONE, ZERO, Side, parse_tick_size, within_limits
from trader.errors import InputError
from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error
from trader.venues.base import (
    MAX_BATCH_SIZE,
    MAX_CANCEL_IDS,
    RateLimitListener,
    RateLimitReport,
    VenueOrderStatus,
)
from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueError,
    VenueProtocolError,
    VenueRejectCode,
    VenueRequestError,
    VenueTimeout,
    map_exceptions,
    parse_retry_after,
    reject_code,
    truncate,
)
from trader.venues.polymarket.auth import ApiCredentials, l1_headers, l2_headers, l2_signature
from trader.venues.polymarket.order_link import Header, OrderLink, OrderLinkStatistics, open_order_link
from trader.venues.polymarket.signing import OrderSigner, SignedOrder, order_body, parse_side
from trader.venues.polymarket.user_schemas import (
    WireApiKey,
    WireBalanceAllowance,
    WireBook,
    WireBookLevel,
    WireCancelReply,
    WireClobMarket,
    WireErrorReply,
    WireFeeRate,
    WireHeartbeatReply,
    WireMakerOrder,
    WireNegRisk,
    WireOpenOrder,
    WireOrderReply,
    WireOrdersPage,
    WireTickSize,
    WireTrade,
    WireTradesPage,
)

__all__ = [
    "CLOB_URL",
    "END_CURSOR",
    "HTTP_EXCEPTIONS",
    "INITIAL_CURSOR",
    "AssetType",
    "BalanceAllowance",
    "CancelOutcome",
    "ClobMarketState",
    "HeartbeatReply",
    "HttpReply",
    "OrderPlaced",
    "OrderPlacement",
    "OrderRefused",
    "PolymarketFill",
    "PolymarketOrder",
    "PolymarketRestClient",
    "PolymarketTrade",
    "RestBook",
    "RestStatistics",
    "open_rest_client",
    "parse_order",
    "parse_order_status",
    "parse_timestamp",
    "parse_trade",
    "parse_trade_status",
    "rate_limit_report",
    "refusal",
    "request_error",
]

log = structlog.get_logger(__name__)

CLOB_URL: Final = "https://clob.polymarket.com"
INITIAL_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="
USER_AGENT: Final = "trader"
#: A paging loop that has not ended after this many pages is a venue bug, not a big account.
MAX_PAGES: Final = 10_000

_T = TypeVar("_T")
_P = TypeVar("_P", WireOrdersPage, WireTradesPage)

# ---------------------------------------------------------------------------------------------------------------
# Exceptions at the edge

#: First match wins: the more specific classes come first.
HTTP_EXCEPTIONS: Final[Mapping[type[BaseException], type[VenueError]]] = {
    httpx.TimeoutException: VenueTimeout,
    httpx.ConnectError: VenueConnectionError,
    httpx.ProxyError: VenueConnectionError,
    httpx.UnsupportedProtocol: VenueConnectionError,
    httpx.ReadError: VenueDisconnected,
    httpx.WriteError: VenueDisconnected,
    httpx.CloseError: VenueDisconnected,
    httpx.RemoteProtocolError: VenueDisconnected,
    httpx.LocalProtocolError: VenueProtocolError,
    httpx.DecodingError: VenueProtocolError,
    httpx.TooManyRedirects: VenueProtocolError,
    httpx.TransportError: VenueConnectionError,
    trio.BrokenResourceError: VenueDisconnected,
    trio.ClosedResourceError: VenueDisconnected,
    ConnectionError: VenueDisconnected,
    OSError: VenueConnectionError,
}


def _decode(content: bytes, wire_type: type[_T], what: str) -> _T:
    try:
        return msgspec.json.decode(content, type=wire_type)
    except msgspec.ValidationError as exc:
        raise VenueProtocolError(f"{what}: unexpected reply shape: {exc}") from None
    except JSON_INPUT_ERRORS as exc:  # not JSON, not UTF-8, or nested too deeply
        raise VenueProtocolError(f"{what}: reply is not JSON: {describe_json_error(exc)}") from None


def _protocol(what: str, exc: InputError) -> VenueProtocolError:
    return VenueProtocolError(f"{what}: {exc}")


class HttpReply(Protocol):
    """What is read of a reply: an `httpx.Response`, or the order link's `LinkResponse` (building an httpx.Response
    for it would cost ~8 µs a reply). `headers.get` is given lower-case names (httpx's headers ignore case)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


def _error_text(response: HttpReply) -> str:
    """The venue's error text from `{"error": ...}` / `{"errorMsg": ...}`, else the (truncated) body."""
    content = response.content
    try:
        reply = msgspec.json.decode(content, type=WireErrorReply)
    except JSON_INPUT_ERRORS:
        return truncate(content.decode("utf-8", "replace").strip())
    return truncate(reply.error or reply.errorMsg or "")


class _WireErrorCode(msgspec.Struct):
    """The machine-readable `code` some error replies carry next to their text (`post_only_mode`)."""

    code: str | None = None


def _error_code(response: HttpReply) -> str | None:
    try:
        code = msgspec.json.decode(response.content, type=_WireErrorCode).code
    except JSON_INPUT_ERRORS:
        return None
    return truncate(code, 64) if code else None


def request_error(response: HttpReply) -> VenueRequestError:
    """The `VenueRequestError` of an HTTP error reply: the venue's error text, its machine code and `Retry-After`."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return VenueRequestError.from_reply(
        response.status_code,
        _error_text(response),
        retry_after_secs=retry_after,
        venue_code=_error_code(response) if response.status_code >= 500 else None,
    )


_REMAINING: Final = "poly-ratelimit-remaining"
_RESET: Final = "poly-ratelimit-reset"
_TIER: Final = "poly-ratelimit-tier"
_WARNING: Final = "poly-ratelimit-warning"


def _header_number(value: str | None, *, negative: bool) -> float | None:
    """A finite number from a header (None when absent); `ValueError` when it is not one."""
    if value is None:
        return None
    number = float(value.strip())  # ValueError for text
    if not math.isfinite(number) or (number < 0 and not negative):
        raise ValueError(value)
    return number


def rate_limit_report(endpoint: str, response: HttpReply) -> tuple[RateLimitReport | None, int]:
    """The `RateLimitReport` of a reply (None when it carries none of the headers), and how many of its rate-limit
    headers could not be read (those are left out)."""
    headers = response.headers
    bad = 0
    values: dict[str, float | None] = {}
    for name, negative in ((_REMAINING, True), (_RESET, False)):
        try:
            values[name] = _header_number(headers.get(name), negative=negative)
        except ValueError:
            values[name] = None
            bad += 1
    tier = (headers.get(_TIER) or "").strip() or None
    if tier is not None and (len(tier) > 32 or not tier.replace("_", "").replace("-", "").isalnum()):
        tier, bad = None, bad + 1
    warning_text = headers.get(_WARNING)
    warning = warning_text is not None and warning_text.strip().lower() == "true"
    raw_retry = headers.get("retry-after")
    retry_after = parse_retry_after(raw_retry)
    if raw_retry is not None and retry_after is None:
        bad += 1
    remaining, reset = values[_REMAINING], values[_RESET]
    if remaining is None and reset is None and tier is None and not warning and retry_after is None:
        return None, bad
    report = RateLimitReport(
        endpoint=endpoint,
        status=response.status_code,
        remaining=remaining,
        reset_at=reset,
        tier=tier,
        warning=warning,
        retry_after_secs=retry_after,
    )
    return report, bad


# ---------------------------------------------------------------------------------------------------------------
# Domain values of the replies


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced:
    """The venue took the order. `status`: "live" (resting), "matched" (filled on entry), "delayed" (held by a
    matching delay), "unmatched" (marketable, delay failed, placed all the same). Amounts as the venue reports them,
    or None when absent."""

    order_id: str
    status: str
    making_amount: Decimal | None = None
    taking_amount: Decimal | None = None
    trade_ids: tuple[str, ...] = ()
    transaction_hashes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRefused:
    """The venue refused the order: never on the book. `code` is stable; `message` is the venue's text."""

    order_id: str | None
    code: VenueRejectCode
    message: str
    http_status: int = 200


OrderPlacement = OrderPlaced | OrderRefused


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    canceled: tuple[str, ...]
    not_canceled: Mapping[str, str]  # order id -> the venue's reason text


@dataclass(frozen=True, slots=True, kw_only=True)
class PolymarketOrder:
    """An order as the venue shows it. Sizes are shares, the price is in the order's own token terms."""

    order_id: str
    status: VenueOrderStatus
    reason: str | None  # why the venue cancelled it: the text of CANCELED_<reason>, or "INVALID"
    condition_id: str
    token_id: str
    side: Side
    price: Decimal
    original_size: Decimal
    size_matched: Decimal
    order_type: OrderType | None
    expiration: int
    owner: str
    maker_address: str
    outcome: str
    trade_ids: tuple[str, ...]
    created_ts: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolymarketFill:
    """One of OUR orders' share of a trade."""

    order_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    liquidity: Liquidity


@dataclass(frozen=True, slots=True, kw_only=True)
class PolymarketTrade:
    """A trade involving us, in one settlement status; `fills` are our orders' parts (taker and/or maker).

    The venue re-sends the same trade id on every status change. `fee` is the venue's pUSD fee when it reports
    one (the V2 venue reports only `fee_rate_bps`; the fee itself follows from the market's fee schedule)."""

    trade_id: str
    status: TradeStatus
    condition_id: str
    fills: tuple[PolymarketFill, ...]
    match_ts: float | None
    ts: float | None
    fee_rate_bps: int | None
    transaction_hash: str | None
    status_text: str = ""  # the venue's own word for `status` (what an UNKNOWN status said), truncated


class AssetType(enum.StrEnum):
    COLLATERAL = "COLLATERAL"
    CONDITIONAL = "CONDITIONAL"


@dataclass(frozen=True, slots=True)
class BalanceAllowance:
    """pUSD or shares, exact (from base units); `allowance` None when the venue did not report one; `allowances`
    spender address -> allowance, None when the venue did not report them."""

    balance: Decimal
    allowance: Decimal | None
    allowances: Mapping[str, Decimal] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClobMarketState:
    """A CLOB market's lifecycle (`GET /markets/{condition_id}`): `winners[i]` is token i's `winner` flag (None when
    the venue left it out); token i belongs to outcome i (0 = YES)."""

    condition_id: str
    token_ids: tuple[str, ...]
    winners: tuple[bool | None, ...]
    closed: bool
    accepting_orders: bool | None


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """`ok=False` means our id was stale and `heartbeat_id` is the one the venue wants next."""

    ok: bool
    heartbeat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RestBook:
    """`GET /book`, best level FIRST in `bids` and `asks` (the venue sends them best-last)."""

    condition_id: str
    token_id: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    tick_size: Decimal | None
    min_order_size: Decimal | None
    neg_risk: bool | None
    ts: float | None
    hash: str | None


@dataclass(frozen=True, slots=True)
class RestStatistics:
    requests: int
    throttled: int  # 429 replies
    server_errors: int  # 5xx replies
    client_errors: int  # other 4xx replies
    transport_errors: int  # connect failures, broken connections, transport timeouts
    order_link: OrderLinkStatistics | None = None  # the placement requests' connections (None: all on httpx)
    early: int = 0  # 425 replies (the matching engine restarting)
    rate_limit_reports: int = 0  # replies that carried rate-limit headers (reported to the listeners)
    bad_rate_limit_headers: int = 0  # rate-limit headers that could not be read (ignored)


# ---------------------------------------------------------------------------------------------------------------
# Parsing (pure)

_MS_THRESHOLD = 100_000_000_000  # 1e11: as seconds that is year 5138; as ms, 1973.
#: Digits of a timestamp or of an integer field: 20 hold any uint64; longer is not a number the venue sends.
_MAX_DIGITS = 20


def parse_timestamp(value: object, field: str) -> float | None:
    """Epoch seconds from the venue's mixed forms: seconds or milliseconds (number or digit string) or ISO 8601.
    `None` and "" are None (the venue sends "" for unknown). Anything else raises `InputError` naming `field`."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(field, "expected a timestamp, got a boolean")
    number: Decimal | None = None
    if isinstance(value, int):
        if not -(10**_MAX_DIGITS) < value < 10**_MAX_DIGITS:
            raise InputError(field, "not a timestamp: a number too large")
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        digits = text.replace(".", "", 1)
        if digits.isascii() and digits.isdigit():  # str.isdigit alone is also true for "²" and "١"
            if len(digits) > _MAX_DIGITS:
                raise InputError(field, f"not a timestamp: {text[:40]!r}")
            number = Decimal(text)
        else:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                raise InputError(field, f"not a timestamp: {text[:40]!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
    else:
        raise InputError(field, f"expected a timestamp, got {type(value).__name__}")
    if number >= _MS_THRESHOLD:
        number /= 1000
    return float(number)


def _decimal(value: object, field: str, *, optional: bool = False) -> Decimal:
    if isinstance(value, str):
        text = value.strip()
        if not text and optional:
            return ZERO
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InputError(field, f"not a decimal number: {text[:40]!r}") from None
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif value is None and optional:
        return ZERO
    else:
        raise InputError(field, f"expected a decimal string, got {type(value).__name__}")
    if not number.is_finite() or number < ZERO or not within_limits(number):
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise InputError(field, f"must be a finite number >= 0 below 1e{DECIMAL_EXPONENT_LIMIT}, got {shown}")
    return number


def _price(value: object, field: str) -> Decimal:
    price = _decimal(value, field)
    if price > ONE:
        raise InputError(field, f"price {price} is above 1")
    return price


def _order_type(value: str, field: str) -> OrderType | None:
    if not value:
        return None
    try:
        return OrderType(value.upper())
    except ValueError:
        raise InputError(field, f"unknown order type {value[:20]!r}") from None


def parse_order_status(venue_status: str) -> tuple[VenueOrderStatus, str | None]:
    """The venue's order status, and for a cancellation by the venue its reason: the text of `CANCELED_<reason>`
    (e.g. a killed FOK) or "INVALID" (the venue took the order off the book as invalid).

    The docs' `ORDER_STATUS_LIVE` forms are accepted. Anything else raises `InputError`."""
    status = venue_status.strip()
    upper = status.upper().removeprefix("ORDER_STATUS_")
    if upper in ("LIVE", "MATCHED", "DELAYED", "UNMATCHED", "CANCELED"):
        return VenueOrderStatus(upper), None
    if upper == "CANCELLED":
        return VenueOrderStatus.CANCELED, None
    if upper == "INVALID":
        return VenueOrderStatus.CANCELED, "INVALID"
    if upper.startswith(("CANCELED_", "CANCELLED_")):
        return VenueOrderStatus.CANCELED, status.split("_", 1)[1]
    raise InputError("status", f"unknown order status {status[:40]!r}")


def parse_order(wire: WireOpenOrder, *, what: str = "order") -> PolymarketOrder:
    """A `PolymarketOrder` from `/data/orders`, `/data/order/{id}` or a user-channel `order` event."""
    try:
        status, reason = parse_order_status(wire.status)
        return PolymarketOrder(
            order_id=wire.id,
            status=status,
            reason=reason,
            condition_id=wire.market,
            token_id=wire.asset_id,
            side=parse_side(wire.side, f"{what}.side"),
            price=_price(wire.price, f"{what}.price"),
            original_size=_decimal(wire.original_size, f"{what}.original_size"),
            size_matched=_decimal(wire.size_matched, f"{what}.size_matched", optional=True),
            order_type=_order_type(wire.order_type, f"{what}.order_type"),
            expiration=_uint(wire.expiration, f"{what}.expiration", "unix seconds") or 0,
            owner=wire.owner,
            maker_address=wire.maker_address,
            outcome=wire.outcome,
            trade_ids=tuple(wire.associate_trades or ()),
            created_ts=parse_timestamp(wire.created_at, f"{what}.created_at"),
        )
    except InputError as exc:
        field = f"{what}.status" if exc.field == "status" else what
        raise VenueProtocolError(f"{field}: {exc.message if exc.field == 'status' else exc}") from None


def parse_trade_status(value: str) -> TradeStatus:
    """A trade's settlement status (the 2026 statuses, also in their `TRADE_STATUS_` form); a status this engine does
    not know is `TradeStatus.UNKNOWN`, never an error: one new status must not make a whole listing unreadable. The
    caller counts it and keeps the trade as it was (`trader.domain.orders.Trade`)."""
    text = value.strip().upper().removeprefix("TRADE_STATUS_")
    try:
        status = TradeStatus(text)
    except ValueError:
        return TradeStatus.UNKNOWN
    return status


def _uint(value: object, field: str, unit: str) -> int | None:
    """A non-negative integer sent as a number or a digit string (expirations, fee rates); None when absent or ""."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    raise InputError(field, f"expected {unit}, got {str(value)[:20]!r}")


def _maker_side(maker: WireMakerOrder, trade: WireTrade, taker_side: Side, field: str) -> Side:
    if maker.side:
        return parse_side(maker.side, field)
    # Same token: the maker took the other side. The complementary token: both sides buy (mint) or sell (merge).
    return taker_side.opposite if (maker.asset_id or trade.asset_id) == trade.asset_id else taker_side


def _same(a: str, b: str) -> bool:
    return bool(a) and a.lower() == b.lower()


def parse_trade(
    wire: WireTrade, *, api_key: str, addresses: Iterable[str] = (), what: str = "trade"
) -> PolymarketTrade:
    """Our fills in a trade: as TAKER when the trade's owner is our API key (or wallet), and as MAKER for each
    entry of `maker_orders` that is ours. A trade with none of ours has no fills."""
    wallets = tuple(addresses)

    def ours(owner: str, address: str) -> bool:
        return _same(owner, api_key) or any(_same(address, a) for a in wallets)

    try:
        status = parse_trade_status(wire.status)
        taker_side = parse_side(wire.side, f"{what}.side")
        fills: list[PolymarketFill] = []
        trade_owner = wire.trade_owner or wire.owner
        is_taker = wire.trader_side != "MAKER" and ours(trade_owner, wire.maker_address)
        if is_taker:
            fills.append(
                PolymarketFill(
                    order_id=wire.taker_order_id,
                    token_id=wire.asset_id,
                    side=taker_side,
                    price=_price(wire.price, f"{what}.price"),
                    size=_decimal(wire.size, f"{what}.size"),
                    liquidity=Liquidity.TAKER,
                )
            )
        for index, maker in enumerate(wire.maker_orders or ()):
            if not ours(maker.owner, maker.maker_address):
                continue
            field = f"{what}.maker_orders[{index}]"
            fills.append(
                PolymarketFill(
                    order_id=maker.order_id,
                    token_id=maker.asset_id or wire.asset_id,
                    side=_maker_side(maker, wire, taker_side, f"{field}.side"),
                    price=_price(maker.price, f"{field}.price"),
                    size=_decimal(maker.matched_amount, f"{field}.matched_amount"),
                    liquidity=Liquidity.MAKER,
                )
            )
        for fill in fills:
            if fill.size <= ZERO:
                raise InputError(f"{what}.size", "a fill of zero shares")
        match_time = wire.match_time if wire.match_time is not None else wire.matchtime
        return PolymarketTrade(
            trade_id=wire.id,
            status=status,
            condition_id=wire.market,
            fills=tuple(fills),
            match_ts=parse_timestamp(match_time, f"{what}.match_time"),
            ts=parse_timestamp(
                wire.last_update if wire.last_update is not None else wire.timestamp, f"{what}.last_update"
            ),
            fee_rate_bps=_uint(wire.fee_rate_bps, f"{what}.fee_rate_bps", "basis points"),
            transaction_hash=wire.transaction_hash or None,
            status_text=truncate(wire.status, 40),
        )
    except InputError as exc:
        raise _protocol(what, exc) from None


def refusal(order_id: str | None, text: str, http_status: int) -> OrderRefused:
    """A refused order from the venue's error text. The one classification of a refusal: `POST /order` answered
    4xx `{"error": ...}`, a `success: false` reply, and a `POST /orders` element all come here, so a killed FOK (or any
    refusal) gets the same code whether it was sent alone or in a batch."""
    return OrderRefused(order_id=order_id, code=reject_code(text), message=truncate(text), http_status=http_status)


#: The `status` of an order the venue took (protocol.md §4).
_PLACED_STATUSES: Final = frozenset({"live", "matched", "delayed", "unmatched"})


def _placement(reply: WireOrderReply, http_status: int, what: str) -> OrderPlacement:
    """One result of `POST /order(s)`. Taken: `success` with an `orderID`, and a placed status or no error text (the
    docs: an errorMsg may accompany a placement, "order match delayed ..." with status delayed). Anything else with an
    error text is a refusal, whatever its `success` says: the docs list the refusal texts of a batch next to a
    success column of "yes"."""
    text = reply.errorMsg or reply.error or ""
    status = (reply.status or "").lower()
    if reply.success and reply.orderID and (not text or status in _PLACED_STATUSES):
        try:
            making = _decimal(reply.makingAmount, f"{what}.makingAmount") if reply.makingAmount else None
            taking = _decimal(reply.takingAmount, f"{what}.takingAmount") if reply.takingAmount else None
        except InputError as exc:
            raise _protocol(what, exc) from None
        return OrderPlaced(
            order_id=reply.orderID,
            status=status or "live",
            making_amount=making,
            taking_amount=taking,
            trade_ids=tuple(reply.tradeIDs or ()),
            transaction_hashes=tuple(reply.transactionsHashes or ()),
        )
    if reply.success and not text:
        raise VenueProtocolError(f"{what}: success without an orderID")
    return refusal(reply.orderID or None, text, http_status)


def _base_units(value: str | int, field: str) -> Decimal:
    """Exact pUSD/shares from integer base units; a fractional base unit is ambiguous, so it is an error."""
    number = _decimal(value, field)
    if number != number.to_integral_value():
        raise InputError(field, f"expected integer base units, got {str(value)[:40]!r}")
    return number.scaleb(-6)


def _levels(levels: Sequence[WireBookLevel], field: str, *, best_is_highest: bool) -> tuple[Level, ...]:
    parsed = [
        Level(_price(lv.price, f"{field}[{i}].price"), _decimal(lv.size, f"{field}[{i}].size"))
        for i, lv in enumerate(levels)
    ]
    return tuple(sorted((lv for lv in parsed if lv.size), key=lambda lv: lv.price, reverse=best_is_highest))


class _WireClosedOnly(msgspec.Struct):
    """`GET /auth/ban-status/closed-only`."""

    closed_only: bool


# ---------------------------------------------------------------------------------------------------------------
# The client


def _wall_secs() -> int:
    return int(time.time())


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


#: The headers the httpx client adds to every request (after Host), for the order link to send the same.
_LINK_DEFAULT_HEADERS: Final[tuple[Header, ...]] = (
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", USER_AGENT.encode()),
)


class PolymarketRestClient:
    """One venue account's REST session. Build it with `open_rest_client`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        signer: OrderSigner,
        credentials: ApiCredentials | None = None,
        *,
        wall_secs: Callable[[], int] = _wall_secs,
        order_link: OrderLink | None = None,
    ) -> None:
        self._http = http
        self._order_link = order_link
        #: the order link's L2 header layout, for one set of credentials: (credentials, headers)
        self._link_fixed: tuple[ApiCredentials, tuple[Header, ...]] | None = None
        self._signer = signer
        self.credentials = credentials
        self._wall_secs = wall_secs
        self._clock_offset_secs = 0
        self._requests = 0
        self._throttled = 0
        self._server_errors = 0
        self._client_errors = 0
        self._transport_errors = 0
        self._early = 0
        self._rate_limit_reports = 0
        self._bad_rate_limit_headers = 0
        self._rate_limit_listeners: list[RateLimitListener] = []

    @property
    def signer(self) -> OrderSigner:
        return self._signer

    def statistics(self) -> RestStatistics:
        return RestStatistics(
            self._requests,
            self._throttled,
            self._server_errors,
            self._client_errors,
            self._transport_errors,
            None if self._order_link is None else self._order_link.statistics(),
            early=self._early,
            rate_limit_reports=self._rate_limit_reports,
            bad_rate_limit_headers=self._bad_rate_limit_headers,
        )

    def add_rate_limit_listener(self, listener: RateLimitListener) -> None:
        """Tell `listener` every `RateLimitReport` (see the module docstring)."""
        self._rate_limit_listeners.append(listener)

    def _observe(self, method: str, path: str, response: HttpReply) -> None:
        """Count the reply's status and report its rate-limit headers."""
        status = response.status_code
        if status == 429:
            self._throttled += 1
        elif status == 425:
            self._early += 1
        elif status >= 500:
            self._server_errors += 1
        elif status >= 400:
            self._client_errors += 1
        report, bad = rate_limit_report(f"{method} {path}", response)
        if bad:
            self._bad_rate_limit_headers += bad
            log.warning("rate_limit_header_unreadable", endpoint=f"{method} {path}", count=bad)
        if report is not None:
            self._rate_limit_reports += 1
            for listener in self._rate_limit_listeners:
                listener(report)

    def _now_secs(self) -> int:
        return self._wall_secs() + self._clock_offset_secs

    def _creds(self) -> ApiCredentials:
        if self.credentials is None:
            raise VenueRequestError(401, VenueRejectCode.UNAUTHORIZED, "no API credentials: derive or set them first")
        return self.credentials

    # -- transport ---------------------------------------------------------------------------------------------

    def _headers(self, method: str, path: str, body: str | None, auth: str | None, nonce: int) -> dict[str, str]:
        headers: dict[str, str] = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth == "l2":
            headers.update(
                l2_headers(
                    self._creds(),
                    address=self._signer.address,
                    timestamp=self._now_secs(),
                    method=method,
                    request_path=path,
                    body=body,
                )
            )
        elif auth == "l1":
            headers.update(l1_headers(self._signer, self._now_secs(), nonce))
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        auth: str | None = None,
        nonce: int = 0,
    ) -> httpx.Response:
        headers = self._headers(method, path, body, auth, nonce)
        self._requests += 1
        try:
            with map_exceptions(HTTP_EXCEPTIONS, what=f"{method} {path}"):
                response = await self._http.request(
                    method,
                    path,
                    params=dict(params) if params else None,
                    content=body.encode() if body is not None else None,
                    headers=headers,
                )
        except VenueError:
            self._transport_errors += 1
            raise
        self._observe(method, path, response)
        return response

    async def _send_placement(self, path: str, body: str) -> HttpReply:
        """An L2 `POST` of orders: on the order link when there is one, with the headers httpx would send (its
        client defaults first, then ours; the link adds Host first and Content-Length last, as httpx does)."""
        link = self._order_link
        if link is None:
            return await self._send("POST", path, body=body, auth="l2")
        headers = self._link_l2_headers(path, body)
        self._requests += 1
        try:
            response = await link.request("POST", path, headers, body.encode())
        except VenueError:
            self._transport_errors += 1
            raise
        self._observe("POST", path, response)
        return response

    def _link_l2_headers(self, path: str, body: str) -> list[Header]:
        """`_headers("POST", path, body, "l2")` for the order link, as bytes, after httpx's client defaults. The
        layout (names, order, the account's values) comes from `_headers` once per set of credentials; each request
        fills in only its signature and timestamp."""
        credentials = self._creds()
        fixed = self._link_fixed
        if fixed is None or fixed[0] is not credentials:
            layout = self._headers("POST", path, body, "l2", 0).items()
            template = (*_LINK_DEFAULT_HEADERS, *((name.encode(), value.encode()) for name, value in layout))
            fixed = self._link_fixed = (credentials, template)
        timestamp = str(self._now_secs())
        signature = l2_signature(credentials.hmac_key, timestamp, "POST", path, body)
        per_request = {b"POLY_SIGNATURE": signature.encode(), b"POLY_TIMESTAMP": timestamp.encode()}
        return [(name, per_request.get(name, value)) for name, value in fixed[1]]

    async def _call(
        self,
        method: str,
        path: str,
        wire_type: type[_T],
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        auth: str | None = None,
        nonce: int = 0,
    ) -> _T:
        response = await self._send(method, path, params=params, body=body, auth=auth, nonce=nonce)
        if not response.is_success:
            raise request_error(response)
        return _decode(response.content, wire_type, f"{method} {path}")

    # -- clock -------------------------------------------------------------------------------------------------

    async def server_time(self) -> int:
        """`GET /time`: the venue's unix seconds."""
        response = await self._send("GET", "/time")
        if not response.is_success:
            raise request_error(response)
        value = _decode(response.content, object, "GET /time")
        if isinstance(value, dict):
            value = value.get("time", value.get("timestamp"))
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise VenueProtocolError("GET /time: expected unix seconds as an integer")
        return value

    async def sync_clock(self) -> int:
        """Sign with the venue's clock from now on (when ours drifts); returns the offset in seconds."""
        self._clock_offset_secs = 0
        self._clock_offset_secs = await self.server_time() - self._wall_secs()
        return self._clock_offset_secs

    # -- L1: API keys ------------------------------------------------------------------------------------------

    @staticmethod
    def _credentials_of(reply: WireApiKey, what: str) -> ApiCredentials:
        try:
            return ApiCredentials(reply.apiKey, reply.secret, reply.passphrase)
        except InputError as exc:
            # The field name only: the values are secrets.
            raise VenueProtocolError(f"{what}: invalid credentials in the reply ({exc.field})") from None

    async def create_api_key(self, nonce: int = 0) -> ApiCredentials:
        reply = await self._call("POST", "/auth/api-key", WireApiKey, auth="l1", nonce=nonce)
        return self._credentials_of(reply, "POST /auth/api-key")

    async def derive_api_key(self, nonce: int = 0) -> ApiCredentials:
        reply = await self._call("GET", "/auth/derive-api-key", WireApiKey, auth="l1", nonce=nonce)
        return self._credentials_of(reply, "GET /auth/derive-api-key")

    async def create_or_derive_api_key(self, nonce: int = 0) -> ApiCredentials:
        """Create the key for `nonce`, or derive it when it exists already (as the official clients do); the
        credentials are kept for L2 calls. A transient failure of the create (429, 5xx, network) is raised."""
        try:
            credentials = await self.create_api_key(nonce)
        except VenueRequestError as exc:
            if exc.retryable:
                raise
            log.info("api_key_create_refused_deriving", status=exc.status, code=str(exc.code))
            credentials = await self.derive_api_key(nonce)
        except VenueProtocolError:
            credentials = await self.derive_api_key(nonce)
        self.credentials = credentials
        return credentials

    # -- orders ------------------------------------------------------------------------------------------------

    def order_body(
        self, order: SignedOrder, *, order_type: OrderType, post_only: bool = False, defer_exec: bool = False
    ) -> str:
        return order_body(
            order, owner=self._creds().api_key, order_type=order_type.value, post_only=post_only, defer_exec=defer_exec
        )

    async def _post_placement(self, path: str, body: str, count: int) -> list[OrderPlacement]:
        what = f"POST {path}"
        response = await self._send_placement(path, body)
        status = response.status_code
        if status in (401, 403, 404, 405, 425, 429) or status >= 500:
            raise request_error(response)
        if not 200 <= status < 300:
            # A refused order (or a refused batch): the venue said no to the order, not to the request.
            return [refusal(None, _error_text(response), status)] * count
        if count == 1 and path == "/order":
            return [_placement(_decode(response.content, WireOrderReply, what), status, what)]
        replies = _decode(response.content, list[WireOrderReply], what)
        if len(replies) != count:
            raise VenueProtocolError(f"{what}: {len(replies)} results for {count} orders")
        return [_placement(reply, status, f"{what}[{i}]") for i, reply in enumerate(replies)]

    async def post_order(
        self, order: SignedOrder, *, order_type: OrderType, post_only: bool = False, defer_exec: bool = False
    ) -> OrderPlacement:
        """`POST /order`. A refusal is a value (`OrderRefused`); request-level failures raise."""
        body = self.order_body(order, order_type=order_type, post_only=post_only, defer_exec=defer_exec)
        (result,) = await self._post_placement("/order", body, 1)
        return result

    async def post_orders(
        self, orders: Sequence[tuple[SignedOrder, OrderType]], *, post_only: bool = False, defer_exec: bool = False
    ) -> list[OrderPlacement]:
        """`POST /orders`: up to 15 orders, processed in parallel by the venue; one result per order, in order."""
        if not orders:
            return []
        if len(orders) > MAX_BATCH_SIZE:
            raise InputError("orders", f"at most {MAX_BATCH_SIZE} orders per batch, got {len(orders)}")
        bodies = [self.order_body(o, order_type=t, post_only=post_only, defer_exec=defer_exec) for o, t in orders]
        return await self._post_placement("/orders", "[" + ",".join(bodies) + "]", len(orders))

    @staticmethod
    def _cancel_outcome(reply: WireCancelReply) -> CancelOutcome:
        return CancelOutcome(tuple(reply.canceled or ()), dict(reply.not_canceled or {}))

    async def cancel(self, order_id: str) -> CancelOutcome:
        reply = await self._call("DELETE", "/order", WireCancelReply, body=_dumps({"orderID": order_id}), auth="l2")
        return self._cancel_outcome(reply)

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelOutcome:
        """`DELETE /orders`: at most `MAX_CANCEL_IDS` ids (the venue refuses more: split them)."""
        if not order_ids:
            return CancelOutcome((), {})
        if len(order_ids) > MAX_CANCEL_IDS:
            raise InputError("order_ids", f"at most {MAX_CANCEL_IDS} order ids per request, got {len(order_ids)}")
        reply = await self._call("DELETE", "/orders", WireCancelReply, body=_dumps(list(order_ids)), auth="l2")
        return self._cancel_outcome(reply)

    async def cancel_all(self) -> CancelOutcome:
        return self._cancel_outcome(await self._call("DELETE", "/cancel-all", WireCancelReply, auth="l2"))

    async def cancel_market_orders(self, *, condition_id: str = "", token_id: str = "") -> CancelOutcome:
        if not condition_id and not token_id:
            raise InputError("condition_id", "give a market (condition id), an asset (token id) or both")
        payload = {k: v for k, v in (("market", condition_id), ("asset_id", token_id)) if v}
        reply = await self._call("DELETE", "/cancel-market-orders", WireCancelReply, body=_dumps(payload), auth="l2")
        return self._cancel_outcome(reply)

    async def _pages(self, path: str, page_type: type[_P], params: Mapping[str, str]) -> list[_P]:
        """Every page of a cursor-paged endpoint (MA== ... LTE=); a cursor that repeats is a protocol error."""
        pages: list[_P] = []
        cursor = INITIAL_CURSOR
        seen: set[str] = set()
        while len(pages) < MAX_PAGES:
            page = await self._call("GET", path, page_type, params={**params, "next_cursor": cursor}, auth="l2")
            pages.append(page)
            cursor = page.next_cursor
            if cursor in (END_CURSOR, ""):
                return pages
            if cursor in seen:
                raise VenueProtocolError(f"GET {path}: the cursor {cursor[:20]!r} came back (paging loop)")
            seen.add(cursor)
        raise VenueProtocolError(f"GET {path}: more than {MAX_PAGES} pages")

    async def open_orders(
        self, *, condition_id: str = "", token_id: str = "", order_id: str = ""
    ) -> list[PolymarketOrder]:
        """`GET /data/orders`, every page (cursor MA== ... LTE=)."""
        params = {k: v for k, v in (("market", condition_id), ("asset_id", token_id), ("id", order_id)) if v}
        result: list[PolymarketOrder] = []
        for page in await self._pages("/data/orders", WireOrdersPage, params):
            result.extend(parse_order(w, what="GET /data/orders") for w in page.data)
        return result

    async def get_order(self, order_id: str) -> PolymarketOrder | None:
        """`GET /data/order/{id}`; None when the venue does not know the order (404, `null` or `{}`): what resolves
        an ambiguous submit."""
        path = f"/data/order/{order_id}"
        response = await self._send("GET", path, auth="l2")
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise request_error(response)
        content = response.content.strip()
        if content in (b"", b"null", b"{}", b'""'):
            return None
        return parse_order(_decode(content, WireOpenOrder, f"GET {path}"), what=f"GET {path}")

    async def trades(
        self,
        *,
        condition_id: str = "",
        token_id: str = "",
        trade_id: str = "",
        after: int | None = None,
        before: int | None = None,
    ) -> list[PolymarketTrade]:
        """`GET /data/trades`, every page; our fills in each (trades with none of ours are dropped)."""
        creds = self._creds()
        params = {
            k: v
            for k, v in (
                ("market", condition_id),
                ("asset_id", token_id),
                ("id", trade_id),
                ("after", "" if after is None else str(after)),
                ("before", "" if before is None else str(before)),
            )
            if v
        }
        result: list[PolymarketTrade] = []
        addresses = (self._signer.address, self._signer.funder)
        for page in await self._pages("/data/trades", WireTradesPage, params):
            for wire in page.data:
                trade = parse_trade(wire, api_key=creds.api_key, addresses=addresses, what="GET /data/trades")
                if trade.fills:
                    result.append(trade)
        return result

    async def balance_allowance(self, asset_type: AssetType, token_id: str = "") -> BalanceAllowance:
        """`GET /balance-allowance` for pUSD (COLLATERAL) or one token's shares (CONDITIONAL)."""
        if asset_type is AssetType.CONDITIONAL and not token_id:
            raise InputError("token_id", "required for CONDITIONAL balances")
        params = {"asset_type": asset_type.value, "signature_type": str(self._signer.signature_type)}
        if token_id:
            params["token_id"] = token_id
        what = "GET /balance-allowance"
        reply = await self._call("GET", "/balance-allowance", WireBalanceAllowance, params=params, auth="l2")
        try:
            balance = _base_units(reply.balance, f"{what}.balance")
            allowance = None
            if reply.allowance is not None and reply.allowance != "":
                allowance = _base_units(reply.allowance, f"{what}.allowance")
            allowances = None
            if reply.allowances is not None:
                allowances = {
                    spender: _base_units(value, f"{what}.allowances[{truncate(spender, 42)}]")
                    for spender, value in reply.allowances.items()
                }
        except InputError as exc:
            raise _protocol(what, exc) from None
        return BalanceAllowance(balance, allowance, allowances)

    async def update_balance_allowance(self, asset_type: AssetType, token_id: str = "") -> None:
        """`GET /balance-allowance/update`: the venue re-reads the wallet from the chain (its balances are cached: after
        a merge or a redemption the CLOB does not know the new balance until asked to look)."""
        if asset_type is AssetType.CONDITIONAL and not token_id:
            raise InputError("token_id", "required for CONDITIONAL balances")
        params = {"asset_type": asset_type.value, "signature_type": str(self._signer.signature_type)}
        if token_id:
            params["token_id"] = token_id
        response = await self._send("GET", "/balance-allowance/update", params=params, auth="l2")
        if not response.is_success:
            raise request_error(response)

    async def clob_market(self, condition_id: str) -> ClobMarketState | None:
        """`GET /markets/{condition_id}`: the market's state and its tokens' `winner` flags; None when the venue does
        not know the market (404)."""
        path = f"/markets/{condition_id}"
        response = await self._send("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise request_error(response)
        wire = _decode(response.content, WireClobMarket, f"GET {path}")
        if wire.condition_id.lower() != condition_id.lower():
            raise VenueProtocolError(f"GET {path}: the reply is about {truncate(wire.condition_id, 70)}")
        return ClobMarketState(
            condition_id=wire.condition_id,
            token_ids=tuple(t.token_id for t in wire.tokens),
            winners=tuple(t.winner for t in wire.tokens),
            closed=bool(wire.closed),
            accepting_orders=wire.accepting_orders,
        )

    async def closed_only(self) -> bool:
        """`GET /auth/ban-status/closed-only` (L2): whether this account may only reduce its positions."""
        return (await self._call("GET", "/auth/ban-status/closed-only", _WireClosedOnly, auth="l2")).closed_only

    async def rate_limit_tier(self) -> str | None:
        """`GET /v1/user/rate-limit-tier` (L2): the signer's tier as the venue names it ("standard", "gold", ...).

        The docs name the endpoint but not its reply: `{"tier": "<name>"}` (as the sim answers), `{"rate_limit_tier":
        ...}` and a bare JSON string are read; anything else is None (the caller keeps what it assumed)."""
        what = "GET /v1/user/rate-limit-tier"
        value = await self._call("GET", "/v1/user/rate-limit-tier", object, auth="l2")
        if isinstance(value, dict):
            value = value.get("tier", value.get("rate_limit_tier"))
        if not isinstance(value, str) or not value.strip() or len(value) > 32:
            log.warning("rate_limit_tier_unreadable", endpoint=what)
            return None
        return value.strip()

    async def heartbeat(self, heartbeat_id: str = "") -> HeartbeatReply:
        """`POST /v1/heartbeats`. A stale id is answered 400 with the right one: `ok=False` and that id."""
        path = "/v1/heartbeats"
        response = await self._send("POST", path, body=_dumps({"heartbeat_id": heartbeat_id}), auth="l2")
        if response.status_code == 400:
            try:
                stale = msgspec.json.decode(response.content, type=WireHeartbeatReply)
            except JSON_INPUT_ERRORS:
                stale = WireHeartbeatReply()
            if stale.heartbeat_id:
                return HeartbeatReply(False, stale.heartbeat_id)
        if not response.is_success:
            raise request_error(response)
        reply = _decode(response.content, WireHeartbeatReply, f"POST {path}")
        if not reply.heartbeat_id:
            raise VenueProtocolError(f"POST {path}: no heartbeat_id in the reply")
        return HeartbeatReply(True, reply.heartbeat_id)

    # -- public market data ------------------------------------------------------------------------------------

    async def book(self, token_id: str) -> RestBook:
        what = "GET /book"
        wire = await self._call("GET", "/book", WireBook, params={"token_id": token_id})
        try:
            return RestBook(
                condition_id=wire.market,
                token_id=wire.asset_id,
                bids=_levels(wire.bids, f"{what}.bids", best_is_highest=True),
                asks=_levels(wire.asks, f"{what}.asks", best_is_highest=False),
                tick_size=None if wire.tick_size is None else parse_tick_size(wire.tick_size, f"{what}.tick_size"),
                min_order_size=None
                if wire.min_order_size is None
                else _decimal(wire.min_order_size, f"{what}.min_order_size"),
                neg_risk=wire.neg_risk,
                ts=parse_timestamp(wire.timestamp, f"{what}.timestamp"),
                hash=wire.hash,
            )
        except InputError as exc:
            raise _protocol(what, exc) from None

    async def tick_size(self, token_id: str) -> Decimal:
        wire = await self._call("GET", "/tick-size", WireTickSize, params={"token_id": token_id})
        try:
            return parse_tick_size(wire.minimum_tick_size, "minimum_tick_size")
        except InputError as exc:
            raise _protocol("GET /tick-size", exc) from None

    async def neg_risk(self, token_id: str) -> bool:
        return (await self._call("GET", "/neg-risk", WireNegRisk, params={"token_id": token_id})).neg_risk

    async def fee_rate_bps(self, token_id: str) -> int:
        wire = await self._call("GET", "/fee-rate", WireFeeRate, params={"token_id": token_id})
        try:
            bps = _uint(wire.base_fee, "base_fee", "basis points")
        except InputError as exc:
            raise _protocol("GET /fee-rate", exc) from None
        if bps is None:
            raise VenueProtocolError("GET /fee-rate: base_fee is empty")
        return bps


@asynccontextmanager
async def open_rest_client(
    base_url: str,
    signer: OrderSigner,
    credentials: ApiCredentials | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    wall_secs: Callable[[], int] = _wall_secs,
    max_connections: int = 20,
) -> AsyncIterator[PolymarketRestClient]:
    """A REST client on one pooled httpx connection set, and the order link for order placement, both closed on
    exit. `transport` replaces the network (httpx.MockTransport in tests): then every request, order placement
    too, goes through it, and there is no order link."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    async with (
        httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(None),
            limits=limits,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        ) as http,
        _open_placement_link(base_url, transport, max_connections) as order_link,
    ):
        yield PolymarketRestClient(http, signer, credentials, wall_secs=wall_secs, order_link=order_link)


@asynccontextmanager
async def _open_placement_link(
    base_url: str, transport: httpx.AsyncBaseTransport | None, max_connections: int
) -> AsyncIterator[OrderLink | None]:
    if transport is not None:
        yield None
        return
    # httpx's SSL context: the order link trusts exactly the CAs (certifi, SSL_CERT_FILE) the httpx client does.
    ssl_context = httpx.create_ssl_context() if base_url.lower().startswith("https:") else None
    async with open_order_link(
        base_url, ssl_context=ssl_context, max_connections=max_connections, max_idle=max_connections
    ) as link:
        yield link
