from __future__ import annotations

import pytest

from trader.errors import TraderError
from trader.venues.errors import (
    RETRYABLE_REJECTS,
    TradingRestriction,
    VenueConnectionError,
    VenueDisconnected,
    VenueError,
    VenueRejectCode,
    VenueRequestError,
    map_exceptions,
    parse_retry_after,
    reject_code,
    restriction_of,
)


@pytest.mark.parametrize(
    ("error_msg", "code"),
    [
        ("INVALID_ORDER_MIN_TICK_SIZE", VenueRejectCode.MIN_TICK_SIZE),
        ("order is invalid. Price breaks minimum tick size rules", VenueRejectCode.MIN_TICK_SIZE),
        ("INVALID_ORDER_MIN_SIZE", VenueRejectCode.MIN_SIZE),
        ("Size (1.08) lower than the minimum: 5", VenueRejectCode.MIN_SIZE),
        ("INVALID_ORDER_DUPLICATED", VenueRejectCode.DUPLICATED),
        ("INVALID_ORDER_NOT_ENOUGH_BALANCE", VenueRejectCode.NOT_ENOUGH_BALANCE),
        ("not enough balance / allowance", VenueRejectCode.NOT_ENOUGH_BALANCE),
        ("Insufficient balance", VenueRejectCode.NOT_ENOUGH_BALANCE),
        ("INVALID_ORDER_EXPIRATION", VenueRejectCode.INVALID_EXPIRATION),
        ("invalid expiration", VenueRejectCode.INVALID_EXPIRATION),
        ("INVALID_ORDER_ERROR", VenueRejectCode.INVALID_ORDER),
        ("could not insert order", VenueRejectCode.INVALID_ORDER),
        ("INVALID_POST_ONLY_ORDER_TYPE", VenueRejectCode.POST_ONLY_INVALID_TYPE),
        ("INVALID_POST_ONLY_ORDER", VenueRejectCode.POST_ONLY_WOULD_CROSS),
        ("invalid post-only order: order crosses book", VenueRejectCode.POST_ONLY_WOULD_CROSS),
        ("EXECUTION_ERROR", VenueRejectCode.EXECUTION_ERROR),
        ("DELAYING_ORDER_ERROR", VenueRejectCode.DELAYING_ORDER_ERROR),
        ("FOK_ORDER_NOT_FILLED_ERROR", VenueRejectCode.FOK_NOT_FILLED),
        # the venue's text for a killed FOK (captured/ws_user_order_fok_killed.json), and the docs' spelling of it
        ("order couldn't be fully filled. FOK orders are fully filled or killed.", VenueRejectCode.FOK_NOT_FILLED),
        ("order couldn\u2019t be fully filled, FOK orders are fully filled/killed", VenueRejectCode.FOK_NOT_FILLED),
        ("order couldn't be fully filled, FOK orders are fully filled/killed", VenueRejectCode.FOK_NOT_FILLED),
        ("no orders found to match with FAK order", VenueRejectCode.FOK_NOT_FILLED),
        ("MARKET_NOT_READY", VenueRejectCode.MARKET_NOT_READY),
        ("order_version_mismatch", VenueRejectCode.ORDER_VERSION_MISMATCH),
        ("invalid amounts", VenueRejectCode.INVALID_AMOUNTS),
        ("Unauthorized/Invalid api key", VenueRejectCode.UNAUTHORIZED),
        ("Trading is currently disabled. Check polymarket.com for updates", VenueRejectCode.TRADING_DISABLED),
        ("Trading is currently cancel-only.", VenueRejectCode.CANCEL_ONLY),
        ("something new", VenueRejectCode.UNKNOWN),
        ("", VenueRejectCode.UNKNOWN),
        (None, VenueRejectCode.UNKNOWN),
    ],
)
def test_reject_code_maps_venue_text_to_stable_codes(error_msg: str | None, code: VenueRejectCode) -> None:
    assert reject_code(error_msg) is code


def test_identifier_inside_a_sentence_is_found() -> None:
    assert reject_code("error: INVALID_ORDER_MIN_SIZE (size 1 < 5)") is VenueRejectCode.MIN_SIZE


@pytest.mark.parametrize(
    ("status", "text", "code", "retryable"),
    [
        (429, "Too Many Requests", VenueRejectCode.RATE_LIMITED, True),
        (429, None, VenueRejectCode.RATE_LIMITED, True),
        (500, "Internal server error", VenueRejectCode.SERVER_ERROR, True),
        (503, "Trading is currently cancel-only", VenueRejectCode.CANCEL_ONLY, True),
        (401, "Invalid L1 Request headers", VenueRejectCode.UNAUTHORIZED, False),
        (403, None, VenueRejectCode.UNAUTHORIZED, False),
        (404, "No orderbook exists for the requested token id", VenueRejectCode.NOT_FOUND, False),
        (400, "Invalid token id", VenueRejectCode.UNKNOWN, False),
        (400, "INVALID_ORDER_MIN_TICK_SIZE", VenueRejectCode.MIN_TICK_SIZE, False),
    ],
)
def test_request_error_from_reply(status: int, text: str | None, code: VenueRejectCode, retryable: bool) -> None:
    error = VenueRequestError.from_reply(status, text)
    assert isinstance(error, VenueError)
    assert isinstance(error, TraderError)
    assert error.code is code
    assert error.retryable is retryable
    assert str(status) in str(error)


def test_request_error_message_is_bounded() -> None:
    error = VenueRequestError.from_reply(500, "x" * 10_000)
    assert len(str(error)) < 300


def test_retryable_rejects_are_the_venue_side_ones() -> None:
    assert VenueRejectCode.EXECUTION_ERROR in RETRYABLE_REJECTS
    assert VenueRejectCode.MIN_SIZE not in RETRYABLE_REJECTS
    assert VenueRejectCode.POST_ONLY_WOULD_CROSS not in RETRYABLE_REJECTS


@pytest.mark.parametrize(
    ("value", "secs"),
    [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), (None, None), ("-1", None), ("nan", None), ("inf", None), ("soon", None)],
)
def test_parse_retry_after(value: str | None, secs: float | None) -> None:
    assert parse_retry_after(value) == secs


_MAPPING: dict[type[BaseException], type[VenueError]] = {
    ConnectionResetError: VenueDisconnected,  # a subclass of OSError: listed first, so it wins
    OSError: VenueConnectionError,
}


def _raise_mapped(exc: BaseException, what: str) -> None:
    with map_exceptions(_MAPPING, what=what):
        raise exc


def test_map_exceptions_maps_the_first_match_and_keeps_the_cause() -> None:
    reset = ConnectionResetError("reset by peer")
    with pytest.raises(VenueDisconnected, match=r"^POST /order: ConnectionResetError: reset by peer$") as info:
        _raise_mapped(reset, "POST /order")
    assert info.value.__cause__ is reset


def test_map_exceptions_describes_an_exception_without_text_by_its_cause() -> None:
    wrapper = OSError()
    wrapper.__cause__ = TimeoutError("handshake timed out")
    with pytest.raises(VenueConnectionError, match=r"^GET /x: TimeoutError: handshake timed out$"):
        _raise_mapped(wrapper, "GET /x")


def test_map_exceptions_lets_venue_errors_and_unmapped_exceptions_through() -> None:
    own = VenueRequestError(500, VenueRejectCode.SERVER_ERROR)
    with pytest.raises(VenueRequestError) as info:
        _raise_mapped(own, "x")
    assert info.value is own
    with pytest.raises(KeyError):
        _raise_mapped(KeyError("k"), "x")


@pytest.mark.parametrize(
    ("status", "text", "venue_code", "code", "restriction"),
    [
        (425, None, None, VenueRejectCode.ENGINE_RESTARTING, TradingRestriction.RESTARTING),
        (425, "Too Early", None, VenueRejectCode.ENGINE_RESTARTING, TradingRestriction.RESTARTING),
        (425, "invalid post-only order", None, VenueRejectCode.ENGINE_RESTARTING, TradingRestriction.RESTARTING),
        (503, "whatever", "post_only_mode", VenueRejectCode.POST_ONLY_MODE, TradingRestriction.POST_ONLY),
        (503, "Trading is currently post-only", None, VenueRejectCode.POST_ONLY_MODE, TradingRestriction.POST_ONLY),
        (
            503,
            "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed.",
            None,
            VenueRejectCode.CANCEL_ONLY,
            TradingRestriction.CANCEL_ONLY,
        ),
        (
            503,
            "Trading is currently disabled. Check polymarket.com for updates",
            None,
            VenueRejectCode.TRADING_DISABLED,
            TradingRestriction.TRADING_DISABLED,
        ),
        (503, "Service Unavailable", None, VenueRejectCode.SERVER_ERROR, None),
        (503, "Service Unavailable", "unheard_of", VenueRejectCode.SERVER_ERROR, None),
        (
            400,
            "'0x00000000000000000000000000000000000000aa' address in closed only mode",
            None,
            VenueRejectCode.CLOSED_ONLY,
            TradingRestriction.CLOSED_ONLY,
        ),
        (400, "invalid post-only order: order crosses book", None, VenueRejectCode.POST_ONLY_WOULD_CROSS, None),
        (400, "Too many orders in payload, max allowed: 1000", None, VenueRejectCode.TOO_MANY_ORDERS, None),
    ],
)
def test_trading_restrictions_have_their_own_codes(
    status: int,
    text: str | None,
    venue_code: str | None,
    code: VenueRejectCode,
    restriction: TradingRestriction | None,
) -> None:
    error = VenueRequestError.from_reply(status, text, venue_code=venue_code)
    assert error.code is code
    assert error.restriction is restriction
    assert restriction_of(code) is restriction
    if restriction is not None and restriction is not TradingRestriction.CLOSED_ONLY:
        assert error.retryable  # transient: the same request may pass once the restriction lifts
        assert code in RETRYABLE_REJECTS
