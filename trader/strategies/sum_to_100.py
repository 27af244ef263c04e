"""Sum-to-100 arbitrage: buy a complete set below 1 after fees; sell a held complete set above 1 after fees.

A complete set pays exactly 1 at resolution (`trader.strategies.baskets`). When the asks of every leg plus taker
fees sum below `1 - min_edge`, the strategy buys equal share counts of every leg in one `ArbIntent`, sized by
walking all the books together (`walk_basket`) and capped by `max_basket_usd`. Where the venue withholds buy fees in
shares (`MarketState.buy_fees_in_shares`: the paper venue), the legs are sized so that each HOLDS the same shares
after fees (`sizes_after_fees`), not so that each buys the same. The mirror: when we hold the set and the bids less
fees sum above `1 + min_edge`, it sells it (equal counts, at most what every leg holds).

Never fires:
- on an incomplete neg-risk event (`NegRiskEvent.is_complete` False: an implicit "Other", a closed market);
- on a book that is not usable (not ready, suspect, older than `max_book_age_secs`, crossed);
- while any leg of the same basket is in flight (the `arb_id` is in `MarketState.in_flight`), nor within
  `refire_cooldown_secs` of its last firing (the books may not show our own fills yet);
- below the venue's minimum order size of any leg, or below `min_leg_notional_usd` on any leg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from trader.domain.enums import OrderType
from trader.domain.intents import ArbIntent, OrderIntent
from trader.domain.numbers import ONE, ZERO, Side
from trader.strategies.base import IdSequence, MarketState, StrategyOutput, held
from trader.strategies.baskets import (
    Basket,
    BasketFill,
    BasketKind,
    forget_gone,
    iter_baskets,
    sizes_after_fees,
    walk_basket,
)

__all__ = ["SumTo100", "SumTo100Settings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SumTo100Settings:
    """Settings of the sum-to-100 arbitrage.

    - `enabled` (default True).
    - `min_edge_usd` (default 0.01): pUSD per unit (one share of every leg) that each unit must clear after fees.
    - `max_basket_usd` (default 50): the most pUSD one basket may cost (fees included), or bring for a sale.
    - `min_leg_notional_usd` (default 1): the smallest notional per leg (the venue's $1 minimum for marketable
      orders, protocol.md §8, unconfirmed); 0 turns it off.
    - `max_book_age_secs` (default 5.0): older books are not traded on.
    - `refire_cooldown_secs` (default 1.0): the least time between two firings on the same basket.
    - `order_type` (default FOK): every leg fills completely or not at all; FAK takes what is there.
    - `unwind_slippage` (default 0.02): pUSD per share execution may give up to unwind a half-filled basket.
    - `binary` / `neg_risk` (default True): which baskets to trade.
    - `sell_sets` (default True): sell a held complete set when the bids pay above 1 after fees.
    - `max_levels` (default 50): levels per book walked at most.
    - `max_held_basket_usd` (default 250): the most pUSD (at cost) held in the legs of one neg-risk basket. A
      complete set of a binary market is merged back into pUSD at once; a neg-risk basket cannot be merged and holds
      its collateral until the event resolves, so without a cap the arbitrage would sink all the cash into it and
      stop trading for as long as the event lasts. 0: no cap.
    """

    enabled: bool = True
    min_edge_usd: Decimal = Decimal("0.01")
    max_basket_usd: Decimal = Decimal(50)
    min_leg_notional_usd: Decimal = Decimal(1)
    max_book_age_secs: float = 5.0
    refire_cooldown_secs: float = 1.0
    order_type: OrderType = OrderType.FOK
    unwind_slippage: Decimal = Decimal("0.02")
    binary: bool = True
    neg_risk: bool = True
    sell_sets: bool = True
    max_levels: int = 50
    max_held_basket_usd: Decimal = Decimal(250)

    def __post_init__(self) -> None:
        if not self.min_edge_usd > ZERO:
            raise ValueError(f"min_edge_usd must be > 0, got {self.min_edge_usd}")
        if not self.max_basket_usd > ZERO:
            raise ValueError(f"max_basket_usd must be > 0, got {self.max_basket_usd}")
        if self.min_leg_notional_usd < ZERO or self.unwind_slippage < ZERO:
            raise ValueError("min_leg_notional_usd and unwind_slippage must be >= 0")
        if self.max_book_age_secs <= 0 or self.refire_cooldown_secs < 0 or self.max_levels < 1:
            raise ValueError("max_book_age_secs must be > 0, refire_cooldown_secs >= 0, max_levels >= 1")
        if self.max_held_basket_usd < ZERO:
            raise ValueError("max_held_basket_usd must be >= 0 (0: no cap)")
        if self.order_type not in (OrderType.FOK, OrderType.FAK):
            raise ValueError(f"order_type must be FOK or FAK (a taker basket), got {self.order_type}")


@dataclass(frozen=True, slots=True)
class _Fired:
    arb_id: str
    at: float


class SumTo100:
    """The strategy. Its state: the id counter and, per basket, the last basket it fired and when (while that still
    holds the basket back: forgotten at the next full sweep after, so it does not grow with the markets ever seen)."""

    name = "sum_to_100"

    def __init__(self, settings: SumTo100Settings | None = None) -> None:
        self.settings = settings or SumTo100Settings()
        self._ids = IdSequence(self.name)
        self._fired: dict[str, _Fired] = {}
        self._dismissed: dict[str, int] = {}  # `iter_baskets`'s memo

    def on_state(self, state: MarketState) -> Sequence[StrategyOutput]:
        s = self.settings
        out: list[StrategyOutput] = []
        if state.changed is None:  # a full sweep: forget firings that no longer hold anything back
            self._fired = {key: f for key, f in self._fired.items() if self._holds_back(f, state)}
            self._dismissed = forget_gone(self._dismissed, state)
        baskets = iter_baskets(
            state, binary=s.binary, neg_risk=s.neg_risk, bound=s.min_edge_usd, dismissed=self._dismissed
        )
        for basket in baskets:
            if self._busy(basket, state):
                continue
            if not all(leg.book.usable(s.max_book_age_secs) for leg in basket.legs):
                continue
            intent = self._buy(basket, state)
            if intent is None and s.sell_sets:
                intent = self._sell(basket, state)
            if intent is not None:
                self._fired[basket.key] = _Fired(intent.arb_id, state.now)
                out.append(intent)
        return out

    def _busy(self, basket: Basket, state: MarketState) -> bool:
        fired = self._fired.get(basket.key)
        return fired is not None and self._holds_back(fired, state)

    def _holds_back(self, fired: _Fired, state: MarketState) -> bool:
        return fired.arb_id in state.in_flight or state.now - fired.at < self.settings.refire_cooldown_secs

    def _buy(self, basket: Basket, state: MarketState) -> ArbIntent | None:
        s = self.settings
        budget = s.max_basket_usd
        if basket.kind is BasketKind.NEG_RISK and s.max_held_basket_usd:
            held_cost = sum((state.positions.position(leg.token_id).cost_basis for leg in basket.legs), ZERO)
            budget = min(budget, s.max_held_basket_usd - held_cost)
            if budget <= ZERO:
                return None
        # No separate top-of-book check: the walk's first step is that very check (no unit clears: no fill).
        fill = walk_basket(basket, Side.BUY, min_edge=s.min_edge_usd, max_notional=budget, max_levels=s.max_levels)
        return self._intent(basket, Side.BUY, fill, state)

    def _sell(self, basket: Basket, state: MarketState) -> ArbIntent | None:
        s = self.settings
        held_sets = min(held(state, leg.token_id) for leg in basket.legs)
        if held_sets <= ZERO:
            return None
        fill = walk_basket(
            basket,
            Side.SELL,
            min_edge=s.min_edge_usd,
            max_size=held_sets,
            max_notional=s.max_basket_usd,
            max_levels=s.max_levels,
        )
        return self._intent(basket, Side.SELL, fill, state)

    def _intent(self, basket: Basket, side: Side, fill: BasketFill | None, state: MarketState) -> ArbIntent | None:
        s = self.settings
        if fill is None or fill.size < basket.min_order_size:
            return None
        if side is Side.BUY and state.buy_fees_in_shares:
            sizes = sizes_after_fees(basket, fill)
        else:
            sizes = (fill.size,) * len(basket.legs)
        for leg, price, size in zip(basket.legs, fill.prices, sizes, strict=True):
            if (
                size < leg.min_order_size
                or size * price < s.min_leg_notional_usd
                or not leg.tick_size <= price <= ONE - leg.tick_size
            ):
                return None
        arb_id = self._ids.next(state.session)
        legs = tuple(
            [
                OrderIntent(
                    client_order_id=f"{arb_id}-{n}",
                    strategy=self.name,
                    condition_id=leg.condition_id,
                    token_id=leg.token_id,
                    side=side,
                    price=price,
                    size=size,
                    order_type=s.order_type,
                )
                for n, (leg, price, size) in enumerate(zip(basket.legs, fill.prices, sizes, strict=True))
            ]
        )
        return ArbIntent(arb_id=arb_id, strategy=self.name, legs=legs, max_slippage=s.unwind_slippage)
