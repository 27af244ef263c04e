"""The clipper: takes a dislocated price in clips sized from the visible depth and a risk budget.

For each watched token, a fair value:
- `COMPLEMENT` (default): from the complementary token's book. Buying at the ask is compared with
  `1 - best bid of the complement` (what the same outcome costs through the other book), selling at the bid with
  `1 - best ask of the complement`.
- `SMOOTHED_MID`: an exponential average of the token's own mid, updated once per book change with weight
  `smoothing`. The signal uses the average from BEFORE the current change, so a dislocated quote does not drag its
  own fair value along.

BUY when the cost of a share at the best ask, taker fee included, is at least `threshold_usd` below the fair value:
take every ask level whose cost with fee stays at or below `fair - threshold`, at most `clip_shares`, at most what
the budget allows (`max_position_usd` per token, at cost: the position held plus our buys in flight), floored to
0.01 share, and only if the clip reaches the market's minimum order size and `min_order_notional_usd`. SELL is the
mirror, for inventory held (less our sells in flight) when the bid less the fee is `threshold_usd` above fair value.

The limit price is the worst level the clip touches, on the tick grid in the safe direction (floor for a buy,
ceil for a sell); levels off the grid that the rounded limit cannot reach are not counted as depth. One clip per
token in flight at a time, and `refire_cooldown_secs` between clips on a token.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from trader.domain.enums import OrderType
from trader.domain.intents import OrderIntent
from trader.domain.market import FeeSchedule, Market
from trader.domain.numbers import ONE, ZERO, Side, floor_size, round_price_for
from trader.strategies.base import (
    BookView,
    IdSequence,
    MarketState,
    StrategyOutput,
    buy_cost_per_share,
    held,
    sell_proceeds_per_share,
)

__all__ = ["Clip", "Clipper", "ClipperSettings", "FairValue", "clip_size"]


class FairValue(enum.StrEnum):
    COMPLEMENT = "COMPLEMENT"
    SMOOTHED_MID = "SMOOTHED_MID"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipperSettings:
    """Settings of the clipper.

    - `enabled` (default False).
    - `tokens` (default empty: every token of every followed market): the tokens to watch.
    - `fair_value` (default COMPLEMENT) and `smoothing` (default 0.2, the weight of the newest mid).
    - `threshold_usd` (default 0.03): pUSD per share, after the taker fee, beyond the fair value.
    - `clip_shares` (default 20): the most shares per clip.
    - `max_position_usd` (default 100): per token, pUSD at cost held plus buys in flight.
    - `min_order_notional_usd` (default 1): the smallest clip notional (the venue's marketable minimum, §8).
    - `max_book_age_secs` (default 5.0), `refire_cooldown_secs` (default 1.0).
    - `order_type` (default FAK: take what is there at the limit, cancel the rest).
    - `sell_inventory` (default True): sell held shares when the bid is rich.
    """

    enabled: bool = False
    tokens: tuple[str, ...] = ()
    fair_value: FairValue = FairValue.COMPLEMENT
    smoothing: Decimal = Decimal("0.2")
    threshold_usd: Decimal = Decimal("0.03")
    clip_shares: Decimal = Decimal(20)
    max_position_usd: Decimal = Decimal(100)
    min_order_notional_usd: Decimal = Decimal(1)
    max_book_age_secs: float = 5.0
    refire_cooldown_secs: float = 1.0
    order_type: OrderType = OrderType.FAK
    sell_inventory: bool = True

    def __post_init__(self) -> None:
        if not ZERO < self.smoothing <= ONE:
            raise ValueError(f"smoothing must be within (0, 1], got {self.smoothing}")
        if not self.threshold_usd > ZERO:
            raise ValueError(f"threshold_usd must be > 0, got {self.threshold_usd}")
        if not self.clip_shares > ZERO or self.max_position_usd < ZERO or self.min_order_notional_usd < ZERO:
            raise ValueError("clip_shares must be > 0; max_position_usd and min_order_notional_usd >= 0")
        if self.max_book_age_secs <= 0 or self.refire_cooldown_secs < 0:
            raise ValueError("max_book_age_secs must be > 0 and refire_cooldown_secs >= 0")
        if self.order_type not in (OrderType.FOK, OrderType.FAK):
            raise ValueError(f"order_type must be FOK or FAK (the clipper takes), got {self.order_type}")


@dataclass(frozen=True, slots=True)
class Clip:
    price: Decimal  # the limit, on the grid
    size: Decimal  # shares


def clip_size(
    book: BookView,
    side: Side,
    *,
    limit_value: Decimal,
    fees: FeeSchedule,
    tick_size: Decimal,
    clip_shares: Decimal,
    min_size: Decimal,
    min_notional: Decimal = ZERO,
    budget_usd: Decimal | None = None,
    max_shares: Decimal | None = None,
) -> Clip | None:
    """The clip to take from `book` as a taker on `side`, or None.

    `limit_value` bounds the value per share with the fee: a buy's cost (price + fee) must stay <= it, a sell's
    proceeds (price - fee) >= it. The clip is the smallest of `clip_shares`, the depth of the levels within the
    limit (and within the on-grid limit price), `max_shares` (inventory for a sell) and what `budget_usd` buys at
    the limit price with its fee; floored to 0.01 share; None below `min_size` or `min_notional`.
    """
    worst: Decimal | None = None
    for level in book.levels(side.opposite):
        value = (
            buy_cost_per_share(fees, level.price) if side is Side.BUY else sell_proceeds_per_share(fees, level.price)
        )
        if (value > limit_value) if side is Side.BUY else (value < limit_value):
            break
        worst = level.price
    if worst is None:
        return None
    limit = round_price_for(side, worst, tick_size)
    if not tick_size <= limit <= ONE - tick_size:
        return None
    size = min(clip_shares, book.depth(side.opposite, limit_price=limit))
    if max_shares is not None:
        size = min(size, max_shares)
    if budget_usd is not None:
        size = min(size, max(budget_usd, ZERO) / buy_cost_per_share(fees, limit))
    size = floor_size(size)
    if size <= ZERO or size < min_size:
        return None
    touched = book.fill_estimate(side, size, limit_price=limit).worst_price
    assert touched is not None  # the size is within the depth at the limit
    price = round_price_for(side, touched, tick_size)
    if price != limit and book.fill_estimate(side, size, limit_price=price).filled < size:
        price = limit  # the tighter price would leave an off-grid level out
    if size * price < min_notional:
        return None
    return Clip(price=price, size=size)


@dataclass(frozen=True, slots=True)
class _Working:
    token_id: str
    side: Side
    size: Decimal
    cost: Decimal  # pUSD at the limit with fee (buys; 0 for sells)


class Clipper:
    """The strategy. State: id counter, smoothed mids, the clips in flight and the last clip time per token."""

    name = "clipper"

    def __init__(self, settings: ClipperSettings | None = None) -> None:
        self.settings = settings or ClipperSettings()
        self._wanted = frozenset(self.settings.tokens)
        self._ids = IdSequence(self.name)
        self._ema: dict[str, Decimal] = {}
        self._ema_seen: dict[str, int] = {}
        self._working: dict[str, _Working] = {}  # client order id -> clip in flight
        self._last: dict[str, float] = {}  # token -> when the last clip went out

    def _tokens(self, state: MarketState) -> Iterator[tuple[Market, str]]:
        wanted = self._wanted
        for market in state.markets_in_scope():
            if not market.is_tradable:
                continue
            for token_id in market.token_ids:
                if not wanted or token_id in wanted:
                    yield market, token_id

    def on_state(self, state: MarketState) -> Sequence[StrategyOutput]:
        s = self.settings
        if self._working:
            self._working = {cid: w for cid, w in self._working.items() if cid in state.in_flight}
        busy = {w.token_id for w in self._working.values()}
        out: list[StrategyOutput] = []
        for market, token_id in self._tokens(state):
            book = state.book(token_id)
            if book is None:
                continue
            fair_buy, fair_sell = self._fair(market, token_id, book, state)
            # cheap test first (fees only make it harder): is either side beyond fair value at all?
            ask, bid = book.best_ask(), book.best_bid()
            buy = fair_buy is not None and ask is not None and ask.price <= fair_buy - s.threshold_usd
            sell = (
                s.sell_inventory
                and fair_sell is not None
                and bid is not None
                and bid.price >= fair_sell + s.threshold_usd
            )
            if not (buy or sell) or token_id in busy or not book.usable(s.max_book_age_secs):
                continue
            if state.now - self._last.get(token_id, float("-inf")) < s.refire_cooldown_secs:
                continue
            intent = None
            if buy and fair_buy is not None:
                intent = self._buy(market, token_id, book, fair_buy, state)
            if intent is None and sell and fair_sell is not None:
                intent = self._sell(market, token_id, book, fair_sell, state)
            if intent is not None:
                self._last[token_id] = state.now
                out.append(intent)
        return out

    def _fair(
        self, market: Market, token_id: str, book: BookView, state: MarketState
    ) -> tuple[Decimal | None, Decimal | None]:
        """(fair value for buying, fair value for selling); also advances the smoothed mid."""
        if self.settings.fair_value is FairValue.COMPLEMENT:
            other = state.book(market.complement(token_id))
            if other is None or not other.usable(self.settings.max_book_age_secs):
                return None, None
            bid, ask = other.best_bid(), other.best_ask()
            return (ONE - bid.price if bid else None), (ONE - ask.price if ask else None)
        previous = self._ema.get(token_id)
        if self._ema_seen.get(token_id) == book.change_count or not book.usable(self.settings.max_book_age_secs):
            return previous, previous
        mid = book.mid()
        if mid is not None:
            self._ema_seen[token_id] = book.change_count
            alpha = self.settings.smoothing
            self._ema[token_id] = mid if previous is None else previous + alpha * (mid - previous)
        return previous, previous

    def _budget(self, token_id: str, state: MarketState) -> Decimal:
        working = sum((w.cost for w in self._working.values() if w.token_id == token_id), ZERO)
        return self.settings.max_position_usd - state.positions.position(token_id).cost_basis - working

    def _buy(
        self, market: Market, token_id: str, book: BookView, fair: Decimal, state: MarketState
    ) -> OrderIntent | None:
        s = self.settings
        clip = clip_size(
            book,
            Side.BUY,
            limit_value=fair - s.threshold_usd,
            fees=market.fees,
            tick_size=market.tick_size,
            clip_shares=s.clip_shares,
            min_size=market.min_order_size,
            min_notional=s.min_order_notional_usd,
            budget_usd=self._budget(token_id, state),
        )
        if clip is None:
            return None
        return self._intent(market, token_id, Side.BUY, clip, state)

    def _sell(
        self, market: Market, token_id: str, book: BookView, fair: Decimal, state: MarketState
    ) -> OrderIntent | None:
        s = self.settings
        selling = sum((w.size for w in self._working.values() if w.token_id == token_id and w.side is Side.SELL), ZERO)
        inventory = held(state, token_id) - selling
        if inventory <= ZERO:
            return None
        clip = clip_size(
            book,
            Side.SELL,
            limit_value=fair + s.threshold_usd,
            fees=market.fees,
            tick_size=market.tick_size,
            clip_shares=s.clip_shares,
            min_size=market.min_order_size,
            min_notional=s.min_order_notional_usd,
            max_shares=inventory,
        )
        if clip is None:
            return None
        return self._intent(market, token_id, Side.SELL, clip, state)

    def _intent(self, market: Market, token_id: str, side: Side, clip: Clip, state: MarketState) -> OrderIntent:
        intent = OrderIntent(
            client_order_id=self._ids.next(state.session),
            strategy=self.name,
            condition_id=market.condition_id,
            token_id=token_id,
            side=side,
            price=clip.price,
            size=clip.size,
            order_type=self.settings.order_type,
        )
        cost = clip.size * buy_cost_per_share(market.fees, clip.price) if side is Side.BUY else ZERO
        self._working[intent.client_order_id] = _Working(token_id, side, clip.size, cost)
        return intent
