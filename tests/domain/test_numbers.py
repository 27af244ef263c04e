"""Exact prices, sizes and amounts: hand-computed examples, then properties over many digits."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain.numbers import (
    ONE,
    TICK_SIZES,
    ZERO,
    Side,
    ceil_to_tick,
    check_price,
    floor_size,
    floor_to_base_unit,
    floor_to_tick,
    from_base_units,
    is_on_tick,
    is_tick_size,
    max_price,
    min_price,
    parse_decimal,
    parse_tick_size,
    round_price_for,
    to_base_units,
)
from trader.errors import InputError

D = Decimal
TICKS = sorted(TICK_SIZES)


def test_side_opposite() -> None:
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY
    assert Side("BUY") is Side.BUY


@pytest.mark.parametrize(
    ("text", "expected"),
    [(".48", D("0.48")), ("0.920", D("0.92")), ("1", ONE), (" 0.5 ", D("0.5")), ("0", ZERO), ("-0.25", D("-0.25"))],
)
def test_parse_decimal_reads_non_canonical_venue_strings(text: str, expected: Decimal) -> None:
    assert parse_decimal(text, "price") == expected


def test_parse_decimal_accepts_ints_and_decimals() -> None:
    assert parse_decimal(5, "size") == D(5)
    assert parse_decimal(D("0.1"), "size") == D("0.1")


def test_parse_decimal_takes_every_real_magnitude() -> None:
    assert parse_decimal(str(2**256 - 1), "allowance") == D(2**256 - 1)  # an unlimited allowance, in base units
    assert parse_decimal("0.000001", "size") == D("0.000001")
    assert parse_decimal("0E+999999999", "size") == 0  # zero is zero, whatever its exponent


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (0.5, "expected a decimal string, got float"),
        (True, "got bool"),
        (None, "got NoneType"),
        ("abc", "not a decimal number"),
        ("", "not a decimal number"),
        ("NaN", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("²", "not a decimal number"),
        ("1e999999999", "out of range"),  # Decimal takes it; arithmetic on it raises decimal.Overflow
        ("-1e101", "out of range"),
        ("1e-101", "out of range"),
        pytest.param(10**5000, "1e100): a number of int", id="5001 digits"),  # str() of it raises ValueError
    ],
)
def test_parse_decimal_refuses_with_the_field_name(value: object, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_decimal(value, "bids[0].price")
    assert info.value.field == "bids[0].price"
    assert needle in str(info.value)
    assert str(info.value).startswith("bids[0].price: ")


def test_parse_tick_size_accepts_strings_and_the_rest_json_number() -> None:
    assert parse_tick_size("0.01") == D("0.01")
    assert parse_tick_size("0.010") == D("0.01")
    assert parse_tick_size(0.001) == D("0.001")  # GET /tick-size answers a JSON number
    assert parse_tick_size(D("0.0025")) == D("0.0025")
    with pytest.raises(InputError, match=r"tick_size: unsupported tick size 0.02; expected one of"):
        parse_tick_size("0.02")
    with pytest.raises(InputError, match="minimum_tick_size"):
        parse_tick_size(0.5, "minimum_tick_size")


def test_is_tick_size() -> None:
    assert all(is_tick_size(t) for t in TICKS)
    assert is_tick_size(D("0.0100"))
    assert not is_tick_size(D("0.02"))


@pytest.mark.parametrize(
    ("price", "tick", "floor", "ceil"),
    [
        ("0.57", "0.01", "0.57", "0.57"),
        ("0.565", "0.01", "0.56", "0.57"),
        ("0.937", "0.005", "0.935", "0.94"),
        ("0.1234", "0.0025", "0.1225", "0.125"),
        ("0.99", "0.1", "0.9", "1.0"),
        ("0.0004", "0.001", "0", "0.001"),
        ("-0.015", "0.01", "-0.02", "-0.01"),
    ],
)
def test_floor_and_ceil_to_tick(price: str, tick: str, floor: str, ceil: str) -> None:
    assert floor_to_tick(D(price), D(tick)) == D(floor)
    assert ceil_to_tick(D(price), D(tick)) == D(ceil)


def test_rounding_is_exact_beyond_the_context_precision() -> None:
    # 31 digits: a plain division by the tick rounds this up to 50 ticks, i.e. above the price.
    price = D("0.4999999999999999999999999999999")
    assert floor_to_tick(price, D("0.01")) == D("0.49")
    assert ceil_to_tick(price, D("0.01")) == D("0.50")


def test_round_price_for_rounds_in_the_safe_direction() -> None:
    assert round_price_for(Side.BUY, D("0.567"), D("0.01")) == D("0.56")
    assert round_price_for(Side.SELL, D("0.561"), D("0.01")) == D("0.57")


def test_price_bounds_and_check_price() -> None:
    assert min_price(D("0.01")) == D("0.01")
    assert max_price(D("0.01")) == D("0.99")
    assert check_price(D("0.935"), D("0.005")) == D("0.935")
    with pytest.raises(InputError, match=r"invalid price \(0.999\), min: 0.01 - max: 0.99"):
        check_price(D("0.999"), D("0.01"))
    with pytest.raises(InputError, match=r"invalid price \(0\)"):
        check_price(ZERO, D("0.01"))
    with pytest.raises(InputError, match=r"limit_price: limit price is not a multiple of the tick size"):
        check_price(D("0.937"), D("0.005"), "limit_price")


def test_is_on_tick() -> None:
    assert is_on_tick(D("0.50"), D("0.01"))
    assert is_on_tick(D("0.5"), D("0.0025"))
    assert not is_on_tick(D("0.501"), D("0.01"))


@pytest.mark.parametrize(("size", "floored"), [("19.99", "19.99"), ("17.239", "17.23"), ("5", "5.00"), ("0.009", "0")])
def test_floor_size(size: str, floored: str) -> None:
    assert floor_size(D(size)) == D(floored)


def test_base_units() -> None:
    assert to_base_units(D("13.37")) == 13_370_000
    assert to_base_units(D("7.6209")) == 7_620_900
    assert to_base_units(D("1E+2")) == 100_000_000
    assert to_base_units(D("-0.000001")) == -1
    assert to_base_units(ZERO) == 0
    assert from_base_units(11_108_889) == D("11.108889")
    assert repr(from_base_units(1_500_000)) == "Decimal('1.5')"
    assert repr(from_base_units(100_000_000)) == "Decimal('1E+2')"
    assert from_base_units(0) == ZERO
    assert from_base_units(-1) == D("-0.000001")


def test_to_base_units_refuses_to_round() -> None:
    with pytest.raises(InputError, match=r"makerAmount: 1E-7 has more than 6 decimals"):
        to_base_units(D("0.0000001"), "makerAmount")
    # 29 significant digits: a multiplication in the 28-digit context would silently drop the last one.
    with pytest.raises(InputError, match="more than 6 decimals"):
        to_base_units(D("1.0000000000000000000000000001"))
    with pytest.raises(InputError, match="not a finite number"):
        to_base_units(D("NaN"))


def test_from_base_units_is_exact_for_huge_values() -> None:
    assert from_base_units(12345678901234567890123456789012) == D("12345678901234567890123456.789012")


def test_base_unit_rounding() -> None:
    assert floor_to_base_unit(D("0.1234567")) == D("0.123456")


# -- properties ------------------------------------------------------------------------------------------------

#: Prices in [0, 1] with up to 40 decimals, built from a string so that nothing is rounded on the way in.
prices = st.integers(min_value=0, max_value=10**40).map(lambda n: D(f"{n}E-40"))
ticks = st.sampled_from(TICKS)


@settings(max_examples=300)
@given(prices, ticks)
def test_grid_rounding_never_moves_the_wrong_way_and_lands_on_the_grid(price: Decimal, tick: Decimal) -> None:
    down, up = floor_to_tick(price, tick), ceil_to_tick(price, tick)
    assert down <= price <= up
    assert is_on_tick(down, tick)
    assert is_on_tick(up, tick)
    with localcontext() as exact:
        exact.prec = 100  # the differences below need more than 28 digits
        assert price - down < tick
        assert up - price < tick
    assert (down == up) == is_on_tick(price, tick)
    assert round_price_for(Side.BUY, price, tick) == down
    assert round_price_for(Side.SELL, price, tick) == up


@settings(max_examples=200)
@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_base_units_round_trip_from_integers(units: int) -> None:
    assert to_base_units(from_base_units(units)) == units


@settings(max_examples=200)
@given(st.integers(min_value=-(10**24), max_value=10**24), st.integers(min_value=0, max_value=6))
def test_base_units_round_trip_from_decimals(coefficient: int, places: int) -> None:
    value = D(f"{coefficient}E-{places}")
    assert from_base_units(to_base_units(value)) == value


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=10**20), st.integers(min_value=7, max_value=30))
def test_more_than_six_decimals_is_refused(coefficient: int, places: int) -> None:
    value = D(f"{coefficient}E-{places}")
    if value == floor_to_base_unit(value):
        assert from_base_units(to_base_units(value)) == value
    else:
        with pytest.raises(InputError):
            to_base_units(value)
        assert floor_to_base_unit(value) < value < floor_to_base_unit(value) + D("0.000001")


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**12).map(lambda n: D(f"{n}E-6")))
def test_floor_size_floors_to_cents_of_a_share(size: Decimal) -> None:
    floored = floor_size(size)
    assert floored <= size
    assert size - floored < D("0.01")
    assert floored == floor_to_tick(size, D("0.01"))
