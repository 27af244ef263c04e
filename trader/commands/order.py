"""`trader order sign`: sign one CLOB V2 order described by a JSON object on standard input.

Input (the `input` objects of the shared golden vectors): `private_key`, `side` ("BUY"/"SELL"), `token_id`, `price`,
`tick_size`, `neg_risk`, `api_key`, `api_secret`, `api_passphrase`, and exactly one of `size` (shares: a limit
order) or `amount` (a market order: pUSD to spend for BUY, shares to sell for SELL). Optional: `signature_type` (0),
`funder` (null; required for signature types 1-3), `salt` and `timestamp_ms` (generated), `expiration` (0; required
for GTD; sent but not signed), `builder_code` and `metadata` (zero bytes32), `order_type` ("GTC" for a limit
order, "FOK" for a market order), `post_only` and `defer_exec` (false), `l2_timestamp` (now, unix seconds).
Balance-limited buys, as the official SDKs do it: with `user_usdc_balance` (pUSD), a BUY is shrunk so that its cost
plus the platform fee (`fee_rate`, `fee_exponent`: the market's fee schedule, default 0) and the builder fee
(`builder_taker_fee_rate`, default 0; `fee_slippage` percent, default 0) fits the balance.
Prices, sizes and amounts are decimal strings; a JSON number with a fraction is refused (it is a binary float).
Unknown fields are ignored with a warning on standard error.

Output, one JSON object: `signed_order` (the "order" object of the body), `order_id` (the EIP-712 digest), `body`
(the exact POST /order text that is sent and HMAC-signed) and `headers` (the L2 headers for POST /order, sent as
they are). The private key and the API secret never appear in any output or error. Exit status 0.

On bad input: `{"error": "<field>: <what is wrong>"}` on standard output and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TextIO

from trader.domain.numbers import Side, check_price, parse_decimal, parse_tick_size
from trader.errors import ConfigError, InputError
from trader.venues.polymarket.auth import ApiCredentials, l2_headers
from trader.venues.polymarket.signing import (
    ORDER_TYPES,
    ZERO32,
    OrderSigner,
    SignedOrder,
    market_order_amounts,
    order_body,
    parse_bytes32,
    parse_side,
    parse_token_id,
)

EXIT_OK: Final = 0
EXIT_INTERNAL: Final = 1
EXIT_BAD_INPUT: Final = 2
REDACTED: Final = "<redacted>"
_HUNDRED: Final = Decimal(100)
POST_ORDER_PATH: Final = "/order"

_REQUIRED: Final = (
    "private_key",
    "side",
    "token_id",
    "price",
    "tick_size",
    "neg_risk",
    "api_key",
    "api_secret",
    "api_passphrase",
)
_OPTIONAL: Final = (
    "size",
    "amount",
    "signature_type",
    "funder",
    "salt",
    "timestamp_ms",
    "expiration",
    "builder_code",
    "metadata",
    "order_type",
    "post_only",
    "defer_exec",
    "l2_timestamp",
    "user_usdc_balance",
    "fee_rate",
    "fee_exponent",
    "builder_taker_fee_rate",
    "fee_slippage",
)
_KNOWN: Final = frozenset(_REQUIRED + _OPTIONAL)
_SECRET_FIELDS: Final = ("private_key", "api_secret")
_MAX_INPUT_BYTES: Final = 1 << 20
_MAX_DEPTH: Final = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser(
        "sign",
        help="sign a CLOB V2 order read as JSON from stdin; print the order, its id, the POST body and headers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) != "sign":
        raise ConfigError("no action given; usage: trader order sign < order.json")
    return sign_main(sys.stdin, sys.stdout)


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignRequest:
    """A checked `trader order sign` input."""

    signer: OrderSigner
    credentials: ApiCredentials
    order: SignedOrder
    order_id: str
    order_type: str
    post_only: bool
    defer_exec: bool
    l2_timestamp: int


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(key, "duplicate key")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise InputError("input", f"{name} is not valid JSON")


def _nesting_depth(text: str) -> int:
    """The deepest nesting of JSON arrays/objects in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_input_text(text: str) -> dict[str, object]:
    """The input object from JSON text; `InputError` for invalid JSON, a non-object, duplicate keys."""
    # Bound the nesting before the C decoder recurses: eth-account's py_ecc raises the interpreter's recursion
    # limit to 100,000 on import, and then a deeply nested document overflows the C stack instead of raising.
    if text.count("[") + text.count("{") > _MAX_DEPTH and _nesting_depth(text) > _MAX_DEPTH:
        raise InputError("input", f"JSON nested deeper than {_MAX_DEPTH} levels")
    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError("input", f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise InputError("input", "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise InputError("input", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _bool(obj: dict[str, object], field: str, default: bool | None = None) -> bool:
    value = obj.get(field, default)
    if not isinstance(value, bool):
        raise InputError(field, f"expected true or false, got {_type_name(value)}")
    return value


def _int(obj: dict[str, object], field: str, default: int | None, *, low: int, high: int) -> int | None:
    if field in obj and obj[field] is None:
        raise InputError(field, "expected an integer, got null")
    value = obj.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(field, f"expected an integer, got {_type_name(value)}")
    if not low <= value < high:
        raise InputError(field, f"out of range: must be in [{low}, {high})")
    return value


def _str(obj: dict[str, object], field: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str):
        raise InputError(field, f"expected a string, got {_type_name(value)}")
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _decimal(obj: dict[str, object], field: str) -> Decimal:
    value = obj.get(field)
    if not isinstance(value, str):
        # A JSON number is refused, even a whole one: these are decimal strings on the venue's wire.
        raise InputError(field, f"expected a decimal string, got {_type_name(value)}")
    return parse_decimal(value, field)


def _optional_decimal(obj: dict[str, object], field: str) -> Decimal | None:
    if obj.get(field) is None:
        return None
    value = obj[field]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    result = _decimal({field: value}, field)
    if result < 0:
        raise InputError(field, f"must not be negative, got {result}")
    return result


@dataclass(frozen=True, slots=True)
class FeeTerms:
    """What a taker BUY pays on top of its cost: the platform fee schedule and the builder's fee rate."""

    rate: Decimal = Decimal(0)
    exponent: Decimal = Decimal(0)
    builder_rate: Decimal = Decimal(0)
    slippage_pct: Decimal = Decimal(0)


def _fee_terms(obj: dict[str, object]) -> FeeTerms:
    slippage = _optional_decimal(obj, "fee_slippage") or Decimal(0)
    if slippage and not 1 <= slippage <= 100:
        raise InputError("fee_slippage", "must be 0 or a percentage between 1 and 100")
    return FeeTerms(
        rate=_optional_decimal(obj, "fee_rate") or Decimal(0),
        exponent=_optional_decimal(obj, "fee_exponent") or Decimal(0),
        builder_rate=_optional_decimal(obj, "builder_taker_fee_rate") or Decimal(0),
        slippage_pct=slippage,
    )


def adjust_buy_amount_for_fees(amount: Decimal, price: Decimal, balance: Decimal, fees: FeeTerms) -> Decimal:
    """The pUSD a BUY may spend so that cost + platform fee + builder fee fits `balance` (exact decimals).

    The official SDKs' rule: the fees are estimated on min(amount, balance); when the balance does not cover
    amount + fees, spend what is left of the balance after those fees (never below zero).
    """
    platform_rate = fees.rate * (price * (1 - price)) ** fees.exponent * (1 + fees.slippage_pct / _HUNDRED)
    fee_base = min(amount, balance)
    platform_fee = fee_base / price * platform_rate
    builder_fee = fee_base * fees.builder_rate
    if balance <= amount + platform_fee + builder_fee:
        return max(balance - platform_fee - builder_fee, Decimal(0))
    return amount


def parse_sign_request(obj: dict[str, object], *, clock: Callable[[], float] = time.time) -> SignRequest:
    """Check every field and sign. Raises `InputError` naming the first bad field; never echoes a secret."""
    missing = [field for field in _REQUIRED if field not in obj]
    if missing:
        raise InputError(missing[0], "missing")
    if ("size" in obj) == ("amount" in obj):
        raise InputError("size", "give exactly one of size (a limit order) or amount (a market order)")
    is_market = "amount" in obj

    signature_type = _int(obj, "signature_type", 0, low=0, high=4)
    assert signature_type is not None
    funder = obj.get("funder")
    if funder is not None and not isinstance(funder, str):
        raise InputError("funder", f"expected an address string or null, got {_type_name(funder)}")
    signer = OrderSigner(_str(obj, "private_key"), signature_type=signature_type, funder=funder)
    credentials = ApiCredentials(_str(obj, "api_key"), _str(obj, "api_secret"), _str(obj, "api_passphrase"))

    side = parse_side(obj["side"])
    token_id = parse_token_id(obj["token_id"])
    if not isinstance(obj["tick_size"], str):
        raise InputError("tick_size", f"expected a decimal string, got {_type_name(obj['tick_size'])}")
    tick_size = parse_tick_size(obj["tick_size"])
    price = _decimal(obj, "price")
    neg_risk = _bool(obj, "neg_risk")
    order_type = obj.get("order_type", "FOK" if is_market else "GTC")
    if not isinstance(order_type, str) or order_type not in ORDER_TYPES:
        raise InputError("order_type", f"must be one of {', '.join(ORDER_TYPES)}")
    post_only = _bool(obj, "post_only", False)
    defer_exec = _bool(obj, "defer_exec", False)
    if is_market and order_type == "GTD":
        raise InputError("order_type", "a market order (amount) carries no expiration, so it cannot be GTD")
    expiration = _int(obj, "expiration", 0, low=0, high=2**63)
    assert expiration is not None
    if order_type == "GTD" and expiration == 0:
        raise InputError("expiration", "a GTD order needs an expiration (unix seconds)")
    salt = _int(obj, "salt", None, low=0, high=2**53)
    timestamp_ms = _int(obj, "timestamp_ms", None, low=1, high=2**63)
    l2_timestamp = _int(obj, "l2_timestamp", None, low=0, high=2**63)
    builder_code = parse_bytes32(obj.get("builder_code", ZERO32), "builder_code")
    metadata = parse_bytes32(obj.get("metadata", ZERO32), "metadata")

    balance = _optional_decimal(obj, "user_usdc_balance")
    if is_market:
        amount = _decimal(obj, "amount")
        if side is Side.BUY and balance:  # the SDKs skip a zero balance for market orders
            market_order_amounts(side, amount, price, tick_size)  # the signer's checks, before dividing by price
            amount = adjust_buy_amount_for_fees(amount, price, balance, _fee_terms(obj))
        order, oid = signer.market_order_with_id(
            token_id=token_id,
            side=side,
            amount=amount,
            price=price,
            tick_size=tick_size,
            neg_risk=neg_risk,
            salt=salt,
            timestamp_ms=timestamp_ms,
            builder_code=builder_code,
            metadata=metadata,
        )
    else:
        size = _decimal(obj, "size")
        if side is Side.BUY and balance is not None:
            check_price(price, tick_size)
            size = adjust_buy_amount_for_fees(size * price, price, balance, _fee_terms(obj)) / price
        order, oid = signer.limit_order_with_id(
            token_id=token_id,
            side=side,
            price=price,
            size=size,
            tick_size=tick_size,
            neg_risk=neg_risk,
            expiration=expiration,
            salt=salt,
            timestamp_ms=timestamp_ms,
            builder_code=builder_code,
            metadata=metadata,
        )
    return SignRequest(
        signer=signer,
        credentials=credentials,
        order=order,
        order_id=oid,
        order_type=order_type,
        post_only=post_only,
        defer_exec=defer_exec,
        l2_timestamp=int(clock()) if l2_timestamp is None else l2_timestamp,
    )


def render(request: SignRequest) -> dict[str, object]:
    body = order_body(
        request.order,
        owner=request.credentials.api_key,
        order_type=request.order_type,
        post_only=request.post_only,
        defer_exec=request.defer_exec,
    )
    headers = l2_headers(
        request.credentials,
        address=request.signer.address,
        timestamp=request.l2_timestamp,
        method="POST",
        request_path=POST_ORDER_PATH,
        body=body,
    )
    return {"signed_order": request.order.to_json(), "order_id": request.order_id, "body": body, "headers": headers}


def _secrets_of(obj: object) -> list[str]:
    """The secret values given in the input (any type), as texts that must never be printed."""
    if not isinstance(obj, dict):
        return []
    found: list[str] = []
    for field in _SECRET_FIELDS:
        value = obj.get(field)
        if isinstance(value, str) and len(value.strip()) >= 6:
            text = value.strip()
            found.append(text)
            if text[:2] in ("0x", "0X") and len(text) > 8:
                found.append(text[2:])
    return found


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def sign_main(stdin: TextIO, stdout: TextIO, *, clock: Callable[[], float] = time.time) -> int:
    """Read one order description, print one JSON object; return the exit status. Never raises, never a traceback."""
    obj: object = None
    try:
        raw = stdin.buffer.read(_MAX_INPUT_BYTES + 1) if hasattr(stdin, "buffer") else stdin.read().encode()
        if len(raw) > _MAX_INPUT_BYTES:
            raise InputError("input", "larger than 1 MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("input", "not UTF-8 text") from None
        obj = parse_input_text(text)
        for field in sorted(set(obj) - _KNOWN):
            print(f"trader order sign: ignoring unknown field {field!r}", file=sys.stderr)
        output = json.dumps(render(parse_sign_request(obj, clock=clock)))
        status = EXIT_OK
    except InputError as exc:
        output, status = json.dumps({"error": str(exc)}), EXIT_BAD_INPUT
    except Exception as exc:  # a bug: report its type only, since a message could carry input values
        output, status = json.dumps({"error": f"internal error ({type(exc).__name__})"}), EXIT_INTERNAL
    stdout.write(_scrub(output, _secrets_of(obj)) + "\n")
    stdout.flush()
    return status
