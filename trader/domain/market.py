"""Markets, their fee schedule, and neg-risk events.

Fees (Polymarket CLOB V2, protocol.md §8): a taker-only platform fee decided at match time,

    fee = shares * rate * (p * (1 - p)) ** exponent        in pUSD,

with per-market `rate`, `exponent` and `taker_only` (`clob-markets.fd = {r, e, to}`, Gamma `feeSchedule`).

Rounding, decided here: the pUSD fee is computed exactly and then floored to 5 decimals (`FEE_QUANTUM`), as one
official client and NautilusTrader's Polymarket adapter do ("matching the venue charge"). An integral exponent is
exact; a fractional exponent is computed correctly rounded to the 28-digit context before the floor.

A buy's fee expressed in shares (`buy_fee_in_shares`) is `fee_usd / price`, floored to one base unit (6
decimals): the paper venue collects buy fees in shares, as the CTF exchange does for the asset a buyer receives,
and an integer division on chain rounds down. Floors favour the trader by less than one unit of the last decimal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from trader.domain.enums import Liquidity
from trader.domain.numbers import ONE, ZERO, floor_to_base_unit, is_tick_size
from trader.errors import InputError

__all__ = ["FEE_QUANTUM", "NO_FEES", "FeeSchedule", "Market", "NegRiskEvent", "is_token_id"]

#: The pUSD fee is floored to this (5 decimals).
FEE_QUANTUM = Decimal("0.00001")
HALF = Decimal("0.5")


def _check_price(price: Decimal) -> None:
    if not ZERO <= price <= ONE:
        raise InputError("price", f"price {price} is outside [0, 1]")


def _check_shares(shares: Decimal) -> None:
    if shares < ZERO:
        raise InputError("shares", f"must not be negative, got {shares}")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """One market's V2 platform fee parameters: `rate`, `exponent`, and whether only takers pay."""

    rate: Decimal
    exponent: Decimal | int
    taker_only: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or self.rate < ZERO:
            raise InputError("fees.rate", f"must be a finite Decimal >= 0, got {self.rate!r}")
        exponent = self.exponent
        if isinstance(exponent, bool) or not isinstance(exponent, Decimal | int):
            raise InputError("fees.exponent", f"must be a Decimal or an int, got {type(exponent).__name__}")
        if isinstance(exponent, Decimal) and not exponent.is_finite():
            raise InputError("fees.exponent", f"must be finite, got {exponent}")
        if exponent < 0:
            raise InputError("fees.exponent", f"must not be negative, got {exponent}")

    def rate_at(self, price: Decimal) -> Decimal:
        """The effective fee per share traded at `price`: rate * (p * (1 - p)) ** exponent (unrounded)."""
        _check_price(price)
        if self.rate == ZERO:
            return ZERO
        exponent = self.exponent
        if isinstance(exponent, Decimal) and exponent == exponent.to_integral_value():
            exponent = int(exponent)
        if exponent == 0:
            return self.rate  # a flat fee per share (and 0 ** 0 is undefined for Decimal)
        return self.rate * (price * (ONE - price)) ** exponent

    def applies_to(self, liquidity: Liquidity) -> bool:
        return liquidity is Liquidity.TAKER or not self.taker_only

    def fee(self, shares: Decimal, price: Decimal, liquidity: Liquidity = Liquidity.TAKER) -> Decimal:
        """The fee in pUSD for `shares` traded at `price`, floored to 5 decimals; 0 for a maker if taker-only."""
        _check_shares(shares)
        if not self.applies_to(liquidity):
            _check_price(price)
            return ZERO
        raw = shares * self.rate_at(price)
        return raw.quantize(FEE_QUANTUM, rounding=ROUND_FLOOR) if raw else ZERO

    def buy_fee_in_shares(self, shares: Decimal, price: Decimal, liquidity: Liquidity = Liquidity.TAKER) -> Decimal:
        """A buy's fee collected in shares: fee(shares, price) / price, floored to 6 decimals (0 at price 0)."""
        fee = self.fee(shares, price, liquidity)
        return floor_to_base_unit(fee / price) if fee and price else ZERO

    def taker_fee_bound(self, shares: Decimal, limit: Decimal) -> Decimal:
        """The most a taker can pay in fees for `shares` bought at `limit` or better: the fee at min(limit, 1/2),
        since `p * (1 - p)` grows up to 1/2 and a buy never trades above its limit. The venue holds this back on top
        of `limit * shares` before it matches a marketable buy (the sim's exchange does the same)."""
        return self.fee(shares, min(limit, HALF))


#: A market without fees.
NO_FEES = FeeSchedule(rate=ZERO, exponent=1)


def is_token_id(value: object) -> bool:
    """A token (asset) id is a uint256 as a decimal string: ASCII digits only, never an int or a float."""
    return isinstance(value, str) and 0 < len(value) <= 78 and value.isascii() and value.isdigit()


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    """One binary market (a condition) with its YES and NO tokens."""

    condition_id: str
    question: str
    slug: str
    yes_token_id: str
    no_token_id: str
    tick_size: Decimal
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    min_order_size: Decimal = Decimal(5)
    fees: FeeSchedule = NO_FEES
    active: bool = True
    accepting_orders: bool = True
    closed: bool = False
    end_date: datetime | None = None
    outcomes: tuple[str, str] = ("Yes", "No")

    def __post_init__(self) -> None:
        if not isinstance(self.condition_id, str) or not self.condition_id:
            raise InputError("condition_id", "must be a non-empty string")
        for name in ("yes_token_id", "no_token_id"):
            if not is_token_id(getattr(self, name)):
                raise InputError(name, f"must be a decimal string of digits, got {getattr(self, name)!r}")
        if self.yes_token_id == self.no_token_id:
            raise InputError("no_token_id", "YES and NO token ids must differ")
        if not isinstance(self.tick_size, Decimal) or not is_tick_size(self.tick_size):
            raise InputError("tick_size", f"unsupported tick size {self.tick_size}")
        if not isinstance(self.min_order_size, Decimal) or self.min_order_size < ZERO:
            raise InputError("min_order_size", f"must be a Decimal >= 0, got {self.min_order_size!r}")
        if len(self.outcomes) != 2 or not all(isinstance(o, str) and o for o in self.outcomes):
            raise InputError("outcomes", f"expected two outcome names, got {self.outcomes!r}")

    @property
    def token_ids(self) -> tuple[str, str]:
        """(YES, NO), in the venue's outcome order."""
        return (self.yes_token_id, self.no_token_id)

    @property
    def is_tradable(self) -> bool:
        return self.active and self.accepting_orders and not self.closed

    def has_token(self, token_id: str) -> bool:
        return token_id in (self.yes_token_id, self.no_token_id)

    def complement(self, token_id: str) -> str:
        """The other token of this market (YES <-> NO)."""
        if token_id == self.yes_token_id:
            return self.no_token_id
        if token_id == self.no_token_id:
            return self.yes_token_id
        raise InputError("token_id", f"{token_id!r} is not a token of market {self.condition_id}")

    def outcome_of(self, token_id: str) -> str:
        """The outcome name of a token ("Yes"/"No", or "Up"/"Down", ...)."""
        if token_id == self.yes_token_id:
            return self.outcomes[0]
        if token_id == self.no_token_id:
            return self.outcomes[1]
        raise InputError("token_id", f"{token_id!r} is not a token of market {self.condition_id}")

    def with_tick_size(self, tick_size: Decimal) -> Market:
        """The same market after a `tick_size_change`."""
        return replace(self, tick_size=tick_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class NegRiskEvent:
    """A multi-outcome neg-risk event: one binary market per outcome, exactly one of which resolves YES.

    `complete` is what discovery knows: True only when the listed markets are known to be ALL the outcomes. It must
    be False when the set may be incomplete (an implicit or placeholder "Other" outcome, outcomes still to be
    added, markets missing from the listing). `incomplete_reasons()` adds what the markets themselves show (closed,
    not accepting orders, not neg-risk, different neg-risk ids), and `is_complete` is True only when there is no
    reason at all. Arbitrage on a basket must check `is_complete`: on an incomplete set, buying every listed YES
    does not guarantee a payout of 1.
    """

    event_id: str
    title: str
    markets: tuple[Market, ...]
    complete: bool

    def __post_init__(self) -> None:
        if not isinstance(self.markets, tuple):
            raise InputError("markets", f"must be a tuple of Market, got {type(self.markets).__name__}")
        seen: set[str] = set()
        for market in self.markets:
            if market.condition_id in seen:
                raise InputError("markets", f"market {market.condition_id} is listed twice")
            seen.add(market.condition_id)

    def incomplete_reasons(self) -> tuple[str, ...]:
        """Stable codes, "CODE" or "CODE:<condition id>"; empty when the basket is complete and tradable."""
        reasons: list[str] = []
        if not self.complete:
            reasons.append("DECLARED_INCOMPLETE")
        if len(self.markets) < 2:
            reasons.append("TOO_FEW_MARKETS")
        if len({m.neg_risk_market_id for m in self.markets}) > 1:
            reasons.append("NEG_RISK_ID_MISMATCH")
        for market in self.markets:
            if not market.neg_risk:
                reasons.append(f"NOT_NEG_RISK:{market.condition_id}")
            if market.closed:
                reasons.append(f"MARKET_CLOSED:{market.condition_id}")
            elif not market.active:
                reasons.append(f"MARKET_INACTIVE:{market.condition_id}")
            elif not market.accepting_orders:
                reasons.append(f"NOT_ACCEPTING_ORDERS:{market.condition_id}")
        return tuple(reasons)

    @property
    def is_complete(self) -> bool:
        """True only for a known-exhaustive set of open neg-risk markets: the only case arbitrage may use."""
        return not self.incomplete_reasons()

    def market_of(self, token_id: str) -> Market | None:
        for market in self.markets:
            if market.has_token(token_id):
                return market
        return None
