"""What a strategy emits: order intents and arbitrage baskets. Pure values, checked on construction.

An intent is not an order yet: the risk gate accepts or denies it (a denial is a `RiskRejected` event), then the
execution service persists it with a locally computed order id and sends it (`Order.from_intent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trader.domain.enums import OrderType
from trader.domain.numbers import ONE, ZERO, Side
from trader.errors import InputError

__all__ = ["ArbIntent", "Intent", "OrderIntent", "check_order_terms", "legs_of"]


def check_order_terms(
    *, price: Decimal, size: Decimal, order_type: OrderType, post_only: bool, expiration: int
) -> None:
    """The venue's rules that do not depend on the market: 0 < price < 1, size > 0, post-only only for resting
    types (GTC/GTD), an expiration (unix seconds) for GTD and 0 otherwise. Raises `InputError`."""
    if not isinstance(price, Decimal) or not price.is_finite() or not ZERO < price < ONE:
        raise InputError("price", f"must be a Decimal strictly between 0 and 1, got {price!r}")
    if not isinstance(size, Decimal) or not size.is_finite() or size <= ZERO:
        raise InputError("size", f"must be a Decimal > 0, got {size!r}")
    if not isinstance(order_type, OrderType):
        raise InputError("order_type", f"must be an OrderType, got {order_type!r}")
    if post_only and not order_type.rests:
        raise InputError("post_only", f"post-only is only allowed for GTC and GTD orders, not {order_type}")
    if order_type is OrderType.GTD:
        if expiration <= 0:
            raise InputError("expiration", "a GTD order needs an expiration (unix seconds)")
    elif expiration != 0:
        raise InputError("expiration", f"only GTD orders expire; use 0 for {order_type}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderIntent:
    """One order a strategy wants: a limit price on the market's grid and a size in shares.

    FOK/FAK intents are "market orders": `price` is the worst acceptable price.
    """

    client_order_id: str
    strategy: str
    condition_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    expiration: int = 0

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise InputError("client_order_id", "must not be empty")
        if not isinstance(self.side, Side):
            raise InputError("side", f"must be a Side, got {self.side!r}")
        check_order_terms(
            price=self.price,
            size=self.size,
            order_type=self.order_type,
            post_only=self.post_only,
            expiration=self.expiration,
        )

    @property
    def notional(self) -> Decimal:
        """pUSD at the limit price (excluding fees)."""
        return self.price * self.size


@dataclass(frozen=True, slots=True, kw_only=True)
class ArbIntent:
    """Several legs traded together (YES+NO, or a complete neg-risk basket) so that each HOLDS the same number of
    shares afterwards: equal share counts, unless a venue withholds buy fees in shares, when a leg that pays more of
    its fee in shares is bought a little larger (`trader.strategies.baskets.sizes_after_fees`).

    The legs go out together; if some fill and others do not, execution unwinds the filled legs, accepting up to
    `max_slippage` (pUSD per share) worse than the fill price.
    """

    arb_id: str
    strategy: str
    legs: tuple[OrderIntent, ...]
    max_slippage: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.legs, tuple) or len(self.legs) < 2:
            raise InputError("legs", "an arbitrage needs at least two legs (as a tuple)")
        if len({leg.side for leg in self.legs}) != 1:
            raise InputError("legs", "every leg must be on the same side (a basket is bought or sold whole)")
        tokens = [leg.token_id for leg in self.legs]
        if len(set(tokens)) != len(tokens):
            raise InputError("legs", "each leg must trade a different token")
        ids = [leg.client_order_id for leg in self.legs]
        if len(set(ids)) != len(ids):
            raise InputError("legs", "each leg needs its own client_order_id")
        if not isinstance(self.max_slippage, Decimal) or not self.max_slippage.is_finite() or self.max_slippage < 0:
            raise InputError("max_slippage", f"must be a Decimal >= 0, got {self.max_slippage!r}")

    @property
    def size(self) -> Decimal:
        """The largest leg's share count (every leg's, when they are equal)."""
        return max(leg.size for leg in self.legs)

    @property
    def price_sum(self) -> Decimal:
        """Sum of the legs' limit prices: below 1 for a buy basket with an edge (before fees)."""
        return sum((leg.price for leg in self.legs), ZERO)

    @property
    def notional(self) -> Decimal:
        """pUSD at the limit prices (excluding fees), every leg at its own size."""
        return sum((leg.price * leg.size for leg in self.legs), ZERO)


#: What a strategy emits and execution receives.
Intent = OrderIntent | ArbIntent


def legs_of(intent: Intent) -> tuple[OrderIntent, ...]:
    """The orders an intent consists of: an arbitrage's legs, or the one order."""
    return intent.legs if isinstance(intent, ArbIntent) else (intent,)
