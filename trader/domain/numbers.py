"""Exact numbers for prices, sizes and amounts.

Prices are pUSD per share in [0, 1]; sizes are shares; amounts are pUSD. All three are `decimal.Decimal`,
parsed from the venue's decimal strings (never through `float`). On the chain both collateral and shares have
6 decimals, so `to_base_units` / `from_base_units` convert exactly and refuse anything that would round.

Rounding is always explicit and named after its purpose: a buy price is floored to the tick (never pay more
than intended), a sell price is ceiled (never sell for less), sizes are floored to 0.01 shares.

Every helper here is exact for any finite input, whatever its number of digits: grid rounding uses the exact
integer quotient and remainder (not a division rounded to the 28-digit context), and base-unit conversions work on
the decimal's digits as integers.
"""

from __future__ import annotations

import enum
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from trader.errors import InputError

ZERO = Decimal(0)
ONE = Decimal(1)
BASE_UNITS_PER_ONE = 10**6
_BASE_UNIT = Decimal("0.000001")
SIZE_STEP = Decimal("0.01")

#: Every tick size the venue uses. 0.005 and 0.0025 appear in the V2 SDKs only.
TICK_SIZES: frozenset[Decimal] = frozenset(Decimal(t) for t in ("0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"))


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


#: A decimal read from outside is zero or lies within 1e-100 .. 1e100 in magnitude (`within_limits`). That holds
#: everything the venue or a user sends (an unlimited allowance is 2**256 - 1 base units, ~1.2e77), and the products
#: of such numbers stay far below the decimal context's Emax (999999); a value such as 1e999999999 does not, and would
#: raise `decimal.Overflow` in some arithmetic far from the parser that let it in.
DECIMAL_EXPONENT_LIMIT = 100


def within_limits(value: Decimal) -> bool:
    """True for zero and for a finite magnitude between 1e-100 and 1e100 (see `DECIMAL_EXPONENT_LIMIT`)."""
    return not value or (value.is_finite() and -DECIMAL_EXPONENT_LIMIT <= value.adjusted() <= DECIMAL_EXPONENT_LIMIT)


def _excerpt(value: object) -> str:
    # str() of an int of more than 4300 digits raises ValueError: never print a huge int.
    return repr(value[:40]) if isinstance(value, str) else f"a number of {type(value).__name__}"


def parse_decimal(value: object, field: str) -> Decimal:
    """A finite Decimal from a decimal string (or an int) `within_limits`. Floats are refused: they are already
    inexact."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InputError(field, f"expected a decimal string, got {type(value).__name__}")
    try:
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InputError(field, f"not a decimal number: {_excerpt(value)}") from None
    if not result.is_finite():
        raise InputError(field, f"not a finite number: {_excerpt(value)}")
    if not within_limits(result):
        raise InputError(
            field,
            f"out of range (magnitude 1e-{DECIMAL_EXPONENT_LIMIT} to 1e{DECIMAL_EXPONENT_LIMIT}): {_excerpt(value)}",
        )
    return result


def parse_tick_size(value: object, field: str = "tick_size") -> Decimal:
    """One of `TICK_SIZES`, from a string (or an exact number); anything else is an error."""
    if isinstance(value, float):
        # The REST /tick-size endpoint sends a JSON number; its repr is the shortest round-trip form.
        value = repr(value)
    tick = parse_decimal(value, field)
    if tick not in TICK_SIZES:
        allowed = ", ".join(sorted(str(t) for t in TICK_SIZES))
        raise InputError(field, f"unsupported tick size {tick}; expected one of {allowed}")
    return tick


def is_tick_size(tick: Decimal) -> bool:
    """True for one of the venue's tick sizes (compared numerically: "0.010" is 0.01)."""
    return tick in TICK_SIZES


def is_on_tick(price: Decimal, tick: Decimal) -> bool:
    return price % tick == ZERO


def _floor_steps(value: Decimal, step: Decimal) -> int:
    # divmod on Decimals truncates toward zero and is exact (no rounding to the context precision, which
    # `value / step` is not: 0.4999...9 (31 digits) / 0.01 rounds up to 50).
    quotient, remainder = divmod(value, step)
    steps = int(quotient)
    return steps - 1 if remainder < ZERO else steps


def floor_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """The highest price on the tick grid that is <= `price` (for buys: never pay more)."""
    return Decimal(_floor_steps(price, tick)) * tick


def ceil_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """The lowest price on the tick grid that is >= `price` (for sells: never sell for less)."""
    steps = _floor_steps(price, tick)
    if Decimal(steps) * tick != price:
        steps += 1
    return Decimal(steps) * tick


def round_price_for(side: Side, price: Decimal, tick: Decimal) -> Decimal:
    """Put a strategy's price on the grid in the safe direction for `side`."""
    return floor_to_tick(price, tick) if side is Side.BUY else ceil_to_tick(price, tick)


def min_price(tick: Decimal) -> Decimal:
    return tick


def max_price(tick: Decimal) -> Decimal:
    return ONE - tick


def check_price(price: Decimal, tick: Decimal, field: str = "price") -> Decimal:
    """A limit price the venue accepts: within [tick, 1 - tick] and on the grid. Returns it unchanged."""
    if not tick <= price <= ONE - tick:
        raise InputError(field, f"invalid price ({price}), min: {tick} - max: {ONE - tick}")
    if not is_on_tick(price, tick):
        raise InputError(field, f"limit price is not a multiple of the tick size ({price} with tick {tick})")
    return price


def floor_size(size: Decimal) -> Decimal:
    """Shares floored to 0.01, as the venue's order sizes are."""
    return size.quantize(SIZE_STEP, rounding=ROUND_FLOOR)


def to_base_units(value: Decimal, field: str = "amount") -> int:
    """Exact conversion to 6-decimal base units; a value with more decimals is an error, not a rounding."""
    if not value.is_finite():
        raise InputError(field, f"not a finite number: {value}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    coefficient = int("".join(map(str, digits)))
    shift = exponent + 6
    units: int
    if shift >= 0:
        units = coefficient * pow(10, shift)
    else:
        units, rest = divmod(coefficient, pow(10, -shift))
        if rest:
            raise InputError(field, f"{value} has more than 6 decimals")
    return -units if sign else units


def from_base_units(units: int) -> Decimal:
    """The exact decimal value of `units` base units, without trailing zeros (1_500_000 -> 1.5, 10**8 -> 1E+2)."""
    if not units:
        return ZERO
    magnitude, exponent = abs(units), -6
    while magnitude % 10 == 0:
        magnitude //= 10
        exponent += 1
    return Decimal((1 if units < 0 else 0, tuple(int(d) for d in str(magnitude)), exponent))


def floor_to_base_unit(value: Decimal) -> Decimal:
    """`value` rounded down to 6 decimals (one base unit), exactly."""
    return Decimal(_floor_steps(value, _BASE_UNIT)) * _BASE_UNIT
