"""The errors a venue adapter raises, and the venue's error strings mapped to stable codes.

```
TraderError                          (trader.errors)
└── VenueError                       adapters raise only these; trio/httpx/websocket errors stop at the adapter
    ├── VenueConnectionError         connect or handshake failed: retry with backoff
    ├── VenueDisconnected            the peer or the network broke an established connection
    ├── VenueTimeout                 the venue did not answer in time (from trio.TooSlowError at the edge)
    ├── VenueProtocolError           a malformed or unknown frame or reply: log, count, reconnect
    └── VenueRequestError            the venue answered a request with an error status
                                     .status (HTTP), .code (stable, below), .retryable, .retry_after_secs
```

What the circuit breaker counts (`trader.engine.breaker.classify_error`): connection errors, disconnects, timeouts,
protocol errors and 5xx replies are *failures* (the venue is unwell); 429 is *throttling* (the rate limiter backs
the endpoint off); a *trading restriction* (below) is neither; any other 4xx is a *rejection* (our request was wrong,
the venue is fine).

Trading restrictions (protocol.md §4, §11 item 3): the venue is up but refuses some or all new orders for a while.
Each has its reject code and a `TradingRestriction` (`restriction_of(code)`), and none is a failure of ours:

- RESTARTING (`VENUE_ENGINE_RESTARTING`): HTTP 425 Too Early on the order endpoints (the weekly matching-engine
  restart, about 90 s);
- POST_ONLY (`VENUE_POST_ONLY_MODE`): 503 `{"code": "post_only_mode", "error": ...}` for an order without `postOnly`
  (the 2 minutes after a restart);
- CANCEL_ONLY (`VENUE_CANCEL_ONLY`): 503 `Trading is currently cancel-only. ...` (cancels pass);
- TRADING_DISABLED (`VENUE_TRADING_DISABLED`): 503 `Trading is currently disabled. ...`;
- CLOSED_ONLY (`VENUE_CLOSED_ONLY`): 400 `'<address>' address in closed only mode` (the account may only reduce
  positions; `GET /auth/ban-status/closed-only` says whether it is).

A refusal for a restriction is the venue's verdict on that request: the order was not taken (a 503 that names a
restriction is not an unknown outcome, unlike any other 5xx). `VENUE_POST_ONLY_MODE` is not "would cross"
(`VENUE_POST_ONLY_WOULD_CROSS`, the post-only order itself was marketable).

Expected business outcomes are not exceptions: an order the venue refuses (`success: false` with an `errorMsg`)
is a value, `trader.venues.base.SubmitRejected`, whose reason is `reject_code(errorMsg)`. The same codes name
HTTP-level errors in `VenueRequestError.code`. Codes are stable strings (`"VENUE_MIN_TICK_SIZE"`); the venue's own
text stays in the message for humans, truncated, and never decides control flow elsewhere.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from trader.errors import TraderError

_MAX_TEXT = 200


class VenueRejectCode(enum.StrEnum):
    """Stable reason codes for venue rejections (protocol.md §4 error strings)."""

    POST_ONLY_WOULD_CROSS = "VENUE_POST_ONLY_WOULD_CROSS"
    POST_ONLY_INVALID_TYPE = "VENUE_POST_ONLY_INVALID_TYPE"
    NOT_ENOUGH_BALANCE = "VENUE_NOT_ENOUGH_BALANCE"
    MIN_TICK_SIZE = "VENUE_MIN_TICK_SIZE"
    MIN_SIZE = "VENUE_MIN_SIZE"
    FOK_NOT_FILLED = "VENUE_FOK_NOT_FILLED"
    DUPLICATED = "VENUE_DUPLICATED"
    INVALID_EXPIRATION = "VENUE_INVALID_EXPIRATION"
    INVALID_AMOUNTS = "VENUE_INVALID_AMOUNTS"
    INVALID_ORDER = "VENUE_INVALID_ORDER"
    EXECUTION_ERROR = "VENUE_EXECUTION_ERROR"
    DELAYING_ORDER_ERROR = "VENUE_DELAYING_ORDER_ERROR"
    MARKET_NOT_READY = "VENUE_MARKET_NOT_READY"
    ORDER_VERSION_MISMATCH = "VENUE_ORDER_VERSION_MISMATCH"
    UNAUTHORIZED = "VENUE_UNAUTHORIZED"
    TRADING_DISABLED = "VENUE_TRADING_DISABLED"
    CANCEL_ONLY = "VENUE_CANCEL_ONLY"
    ENGINE_RESTARTING = "VENUE_ENGINE_RESTARTING"  # 425: the matching engine is restarting
    POST_ONLY_MODE = "VENUE_POST_ONLY_MODE"  # only post-only orders are taken (the window after a restart)
    CLOSED_ONLY = "VENUE_CLOSED_ONLY"  # the account may only reduce positions
    TOO_MANY_ORDERS = "VENUE_TOO_MANY_ORDERS"  # more orders (or ids) in one request than the venue takes
    RATE_LIMITED = "VENUE_RATE_LIMITED"
    NOT_FOUND = "VENUE_NOT_FOUND"
    SERVER_ERROR = "VENUE_SERVER_ERROR"
    UNKNOWN = "VENUE_UNKNOWN_ERROR"


#: Rejections that may succeed if the same order is sent again later (the venue, not the order, was the problem).
RETRYABLE_REJECTS: frozenset[VenueRejectCode] = frozenset(
    {
        VenueRejectCode.EXECUTION_ERROR,
        VenueRejectCode.DELAYING_ORDER_ERROR,
        VenueRejectCode.MARKET_NOT_READY,
        VenueRejectCode.TRADING_DISABLED,
        VenueRejectCode.RATE_LIMITED,
        VenueRejectCode.SERVER_ERROR,
        VenueRejectCode.ENGINE_RESTARTING,
        VenueRejectCode.POST_ONLY_MODE,
        VenueRejectCode.CANCEL_ONLY,
    }
)


class TradingRestriction(enum.StrEnum):
    """A venue-wide restriction on new orders (see the module docstring): transient, and not our failure."""

    RESTARTING = "RESTARTING"  # no order endpoint answers (425); retry with backoff
    POST_ONLY = "POST_ONLY"  # only post-only orders; cancels pass
    CANCEL_ONLY = "CANCEL_ONLY"  # no new orders; cancels pass
    TRADING_DISABLED = "TRADING_DISABLED"  # no new orders (the venue refuses cancels too)
    CLOSED_ONLY = "CLOSED_ONLY"  # this account may only reduce its positions


_RESTRICTIONS: Mapping[VenueRejectCode, TradingRestriction] = {
    VenueRejectCode.ENGINE_RESTARTING: TradingRestriction.RESTARTING,
    VenueRejectCode.POST_ONLY_MODE: TradingRestriction.POST_ONLY,
    VenueRejectCode.CANCEL_ONLY: TradingRestriction.CANCEL_ONLY,
    VenueRejectCode.TRADING_DISABLED: TradingRestriction.TRADING_DISABLED,
    VenueRejectCode.CLOSED_ONLY: TradingRestriction.CLOSED_ONLY,
}


def restriction_of(code: VenueRejectCode) -> TradingRestriction | None:
    """The trading restriction a reject code reports, or None when it is about the order (or the request)."""
    return _RESTRICTIONS.get(code)


# Machine-readable error identifiers, matched as whole words. Longest first so that
# INVALID_POST_ONLY_ORDER_TYPE is not read as INVALID_POST_ONLY_ORDER.
_IDENTIFIERS: tuple[tuple[str, VenueRejectCode], ...] = tuple(
    sorted(
        {
            "INVALID_ORDER_MIN_TICK_SIZE": VenueRejectCode.MIN_TICK_SIZE,
            "INVALID_ORDER_MIN_SIZE": VenueRejectCode.MIN_SIZE,
            "INVALID_ORDER_DUPLICATED": VenueRejectCode.DUPLICATED,
            "INVALID_ORDER_NOT_ENOUGH_BALANCE": VenueRejectCode.NOT_ENOUGH_BALANCE,
            "INVALID_ORDER_EXPIRATION": VenueRejectCode.INVALID_EXPIRATION,
            "INVALID_ORDER_ERROR": VenueRejectCode.INVALID_ORDER,
            "INVALID_POST_ONLY_ORDER_TYPE": VenueRejectCode.POST_ONLY_INVALID_TYPE,
            "INVALID_POST_ONLY_ORDER": VenueRejectCode.POST_ONLY_WOULD_CROSS,
            "EXECUTION_ERROR": VenueRejectCode.EXECUTION_ERROR,
            "DELAYING_ORDER_ERROR": VenueRejectCode.DELAYING_ORDER_ERROR,
            "FOK_ORDER_NOT_FILLED_ERROR": VenueRejectCode.FOK_NOT_FILLED,
            "MARKET_NOT_READY": VenueRejectCode.MARKET_NOT_READY,
            "ORDER_VERSION_MISMATCH": VenueRejectCode.ORDER_VERSION_MISMATCH,
            "POST_ONLY_MODE": VenueRejectCode.POST_ONLY_MODE,  # the `code` of the post-only window's 503
        }.items(),
        key=lambda item: -len(item[0]),
    )
)

# Human-readable forms seen from the venue and the SDKs, matched case-insensitively as substrings (after the
# typographic apostrophe of the docs is made a plain one).
_PHRASES: tuple[tuple[str, VenueRejectCode], ...] = (
    # Trading restrictions first: a post-only window's text names "post-only" and is not "would cross".
    ("address in closed only mode", VenueRejectCode.CLOSED_ONLY),
    ("closed-only mode", VenueRejectCode.CLOSED_ONLY),
    ("post-only mode", VenueRejectCode.POST_ONLY_MODE),
    ("currently post-only", VenueRejectCode.POST_ONLY_MODE),
    ("cancel-only", VenueRejectCode.CANCEL_ONLY),
    ("trading is currently disabled", VenueRejectCode.TRADING_DISABLED),
    ("matching engine is restarting", VenueRejectCode.ENGINE_RESTARTING),
    ("too many orders in payload", VenueRejectCode.TOO_MANY_ORDERS),
    # A killed FOK: "order couldn't be fully filled. FOK orders are fully filled or killed." (the venue's text, as a
    # 400 on POST /order and as a batch element's errorMsg); the docs write "...fully filled/killed".
    ("couldn't be fully filled", VenueRejectCode.FOK_NOT_FILLED),
    ("could not be fully filled", VenueRejectCode.FOK_NOT_FILLED),
    ("fok orders are fully filled", VenueRejectCode.FOK_NOT_FILLED),
    # A FAK that found nothing to match is killed whole, like a FOK (the paper venue says the same).
    ("no orders found to match with fak order", VenueRejectCode.FOK_NOT_FILLED),
    ("not yet ready to process new orders", VenueRejectCode.MARKET_NOT_READY),
    ("could not run the execution", VenueRejectCode.EXECUTION_ERROR),
    ("error delaying the order", VenueRejectCode.DELAYING_ORDER_ERROR),
    ("minimum tick size", VenueRejectCode.MIN_TICK_SIZE),
    ("lower than the minimum", VenueRejectCode.MIN_SIZE),
    ("not enough balance", VenueRejectCode.NOT_ENOUGH_BALANCE),
    ("insufficient balance", VenueRejectCode.NOT_ENOUGH_BALANCE),
    ("invalid expiration", VenueRejectCode.INVALID_EXPIRATION),
    ("invalid amounts", VenueRejectCode.INVALID_AMOUNTS),
    ("duplicated", VenueRejectCode.DUPLICATED),
    ("could not insert order", VenueRejectCode.INVALID_ORDER),
    ("post-only", VenueRejectCode.POST_ONLY_WOULD_CROSS),
    ("post only", VenueRejectCode.POST_ONLY_WOULD_CROSS),
    ("unauthorized", VenueRejectCode.UNAUTHORIZED),
    ("invalid api key", VenueRejectCode.UNAUTHORIZED),
    ("invalid l1 request headers", VenueRejectCode.UNAUTHORIZED),
    ("too many requests", VenueRejectCode.RATE_LIMITED),
)


def _words(text: str) -> set[str]:
    word: list[str] = []
    words: set[str] = set()
    for char in text:
        if char.isalnum() or char == "_":
            word.append(char)
        elif word:
            words.add("".join(word))
            word.clear()
    if word:
        words.add("".join(word))
    return words


def reject_code(error_msg: str | None) -> VenueRejectCode:
    """The stable code for a venue `errorMsg` (or `{"error": ...}` text); `UNKNOWN` when nothing matches."""
    if not error_msg:
        return VenueRejectCode.UNKNOWN
    words = {word.upper() for word in _words(error_msg)}
    for identifier, code in _IDENTIFIERS:
        if identifier in words:
            return code
    lowered = error_msg.lower().replace("\u2019", "'")
    for phrase, code in _PHRASES:
        if phrase in lowered:
            return code
    return VenueRejectCode.UNKNOWN


def status_code(status: int, error_text: str | None, venue_code: str | None = None) -> VenueRejectCode:
    """The stable code for an HTTP error reply: 425 is a restart whatever the text; else the venue's machine code
    (`{"code": ...}`) and then its text decide when they are known, else the status."""
    if status == 425:
        return VenueRejectCode.ENGINE_RESTARTING
    code = reject_code(venue_code) if venue_code else VenueRejectCode.UNKNOWN
    if code is VenueRejectCode.UNKNOWN:
        code = reject_code(error_text)
    if code is not VenueRejectCode.UNKNOWN:
        return code
    if status == 429:
        return VenueRejectCode.RATE_LIMITED
    if status in (401, 403):
        return VenueRejectCode.UNAUTHORIZED
    if status == 404:
        return VenueRejectCode.NOT_FOUND
    if status >= 500:
        return VenueRejectCode.SERVER_ERROR
    return VenueRejectCode.UNKNOWN


def truncate(text: str, limit: int = _MAX_TEXT) -> str:
    """Venue text for messages: bounded, so a hostile or huge reply cannot flood a log line."""
    return text if len(text) <= limit else text[:limit] + "..."


def describe_exception(exc: BaseException) -> str:
    """`Type: text` of an exception, for a message (truncated); one with no text is described by its cause (trio's
    `BrokenResourceError` wraps the `OSError` that says what happened)."""
    text = str(exc)
    if not text and exc.__cause__ is not None:
        return describe_exception(exc.__cause__)
    return f"{type(exc).__name__}: {truncate(text)}"


class VenueError(TraderError):
    """Base class of every error a venue adapter raises."""


class VenueConnectionError(VenueError):
    """Connecting or the handshake failed. Retry with backoff."""


class VenueDisconnected(VenueError):
    """An established connection was broken by the peer or the network."""


class VenueTimeout(VenueError):
    """The venue did not answer in time."""


class VenueProtocolError(VenueError):
    """The venue sent something malformed or unknown."""


class VenueRequestError(VenueError):
    """The venue answered a request with an error status.

    `status` is the HTTP status, `code` a stable `VenueRejectCode`, `retryable` whether the same request may succeed
    later (425, 429 and 5xx by default), `retry_after_secs` the venue's `Retry-After` when it sent one;
    `restriction` the trading restriction the reply reports (None for any other error).
    """

    def __init__(
        self,
        status: int,
        code: VenueRejectCode,
        message: str = "",
        *,
        retryable: bool | None = None,
        retry_after_secs: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = truncate(message)
        self.retryable = (status in (425, 429) or status >= 500) if retryable is None else retryable
        self.retry_after_secs = retry_after_secs
        super().__init__(f"HTTP {status} {code}" + (f": {self.message}" if self.message else ""))

    @classmethod
    def from_reply(
        cls,
        status: int,
        error_text: str | None,
        *,
        retry_after_secs: float | None = None,
        venue_code: str | None = None,
    ) -> VenueRequestError:
        """Build the error for an HTTP error reply whose body carried `error_text` (and maybe a machine `code`)."""
        code = status_code(status, error_text, venue_code)
        return cls(status, code, error_text or "", retry_after_secs=retry_after_secs)

    @property
    def restriction(self) -> TradingRestriction | None:
        return restriction_of(self.code)

    @property
    def is_throttled(self) -> bool:
        return self.status == 429

    @property
    def is_server_error(self) -> bool:
        return self.status >= 500


@contextmanager
def map_exceptions(mapping: Mapping[type[BaseException], type[VenueError]], *, what: str) -> Iterator[None]:
    """Re-raise a third-party exception as the `VenueError` it maps to, first match in `mapping` winning (httpcore's
    `map_exceptions`): the adapters' edge. A `VenueError` passes as it is, and so does anything not in `mapping`.

    Only `Exception`s are mapped: `trio.Cancelled` (a BaseException) passes through untouched."""
    try:
        yield
    except VenueError:
        raise
    except Exception as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                raise target(f"{what}: {describe_exception(exc)}") from exc
        raise


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given in seconds; None when absent or not a plain number.

    (The HTTP-date form needs a wall clock; the venue sends seconds. A value we cannot read is ignored, and the
    rate limiter's own backoff applies.)
    """
    if value is None:
        return None
    try:
        secs = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(secs) or secs < 0:
        return None
    return secs
