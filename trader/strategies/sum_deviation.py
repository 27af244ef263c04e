"""The sum-deviation analyzer: records every sum-to-100 opportunity seen, traded or not.

At every wake-up (the engine calls `observe` after the strategies, with the intents they just emitted) it looks at
every basket (`trader.strategies.baskets`: YES+NO of a binary market, YES of every market of a complete neg-risk
event) on both sides:

- BUY: the asks plus taker fees sum below 1 (buying the set pays 1 at resolution);
- SELL: the bids less fees sum above 1 (a set minted for 1, or held, sells for more).

An opportunity OPENS when the edge per unit at the best levels exceeds `min_edge_usd` on usable books, and CLOSES
when it no longer does (or a book becomes unusable, or the basket disappears). On a wake-up that looks only at
the markets that changed (`MarketState.changed`), the others keep their state until they change or the next
full sweep. While open it keeps its peak edge
and the depth at the edge when it peaked (the basket units each of which beats `min_edge_usd`, from
`walk_basket`). It is TRADED if a strategy emitted an `ArbIntent` for the same tokens and side while it was open.

`observe` returns an `Opportunity` value for each opening and each closing (to publish and store); `summary()`
counts them for the status page and the exit summary. Pure: no clock but the state's, no I/O.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from trader.domain.intents import ArbIntent
from trader.domain.numbers import ZERO, Side
from trader.strategies.base import IdSequence, Intent, MarketState
from trader.strategies.baskets import Basket, BasketKind, basket_top_edge, forget_gone, iter_baskets, walk_basket

__all__ = ["Opportunity", "OpportunityStatus", "SumDeviation", "SumDeviationSettings", "SumDeviationSummary"]


class OpportunityStatus(enum.StrEnum):
    OPENED = "OPENED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True, kw_only=True)
class Opportunity:
    """One opportunity, as it opened or as it closed."""

    opportunity_id: str
    status: OpportunityStatus
    kind: BasketKind
    side: Side  # BUY: buy the set below 1; SELL: sell the set above 1
    basket: str  # the condition id (BINARY) or the neg-risk event id
    token_ids: tuple[str, ...]
    started_at: float  # wall clock, epoch seconds
    ended_at: float | None  # wall clock, when closed
    duration_secs: float  # Trio clock, 0 when it opens
    edge: Decimal  # pUSD per unit after fees: at the opening, or the last seen when it closes
    peak_edge: Decimal
    depth_at_peak: Decimal  # basket units clearing min_edge when the edge peaked
    traded: bool

    @property
    def peak_value_usd(self) -> Decimal:
        """What the peak was worth if all of its depth had been traded: peak edge x depth."""
        return self.peak_edge * self.depth_at_peak


@dataclass(frozen=True, slots=True)
class SumDeviationSummary:
    count: int  # opportunities opened since the start
    open: int
    traded: int
    total_edge_usd: Decimal  # sum of peak edge x depth over every opportunity
    peak_edge: Decimal | None  # the best edge per unit seen
    total_duration_secs: float  # of the closed ones
    max_duration_secs: float
    mean_duration_secs: float | None
    by_kind: dict[str, int]  # "BINARY/BUY" -> count
    recent: tuple[Opportunity, ...]  # the last closed ones, newest last


@dataclass(frozen=True, slots=True, kw_only=True)
class SumDeviationSettings:
    """Settings of the analyzer.

    - `enabled` (default True).
    - `min_edge_usd` (default 0): an opportunity is an edge per unit strictly above this, after fees.
    - `max_book_age_secs` (default 5.0): older books do not count.
    - `binary` / `neg_risk` (default True): which baskets to watch.
    - `recent` (default 100): closed opportunities kept for the status page.
    - `max_levels` (default 50): levels per book walked for the depth.
    """

    enabled: bool = True
    min_edge_usd: Decimal = ZERO
    max_book_age_secs: float = 5.0
    binary: bool = True
    neg_risk: bool = True
    recent: int = 100
    max_levels: int = 50

    def __post_init__(self) -> None:
        if self.min_edge_usd < ZERO:
            raise ValueError(f"min_edge_usd must be >= 0, got {self.min_edge_usd}")
        if self.max_book_age_secs <= 0 or self.recent < 1 or self.max_levels < 1:
            raise ValueError("max_book_age_secs must be > 0, recent and max_levels >= 1")


@dataclass(slots=True)
class _Open:
    opportunity: Opportunity
    started_mono: float
    markets: frozenset[str]  # the condition ids of the legs


class SumDeviation:
    """The analyzer (`trader.engine.strategy_engine.Analyzer`)."""

    name = "sum_deviation"

    def __init__(self, settings: SumDeviationSettings | None = None) -> None:
        self.settings = settings or SumDeviationSettings()
        self._ids = IdSequence("opp")
        self._open: dict[tuple[str, Side], _Open] = {}
        self._dismissed: dict[str, int] = {}  # `iter_baskets`'s memo
        self._recent: deque[Opportunity] = deque(maxlen=self.settings.recent)
        self._count = 0
        self._traded = 0
        self._by_kind: Counter[str] = Counter()
        self._value_closed = ZERO
        self._peak: Decimal | None = None
        self._closed = 0
        self._total_duration = 0.0
        self._max_duration = 0.0

    def observe(self, state: MarketState, emitted: Sequence[Intent]) -> Sequence[Opportunity]:
        s = self.settings
        traded = {
            (frozenset(leg.token_id for leg in intent.legs), intent.legs[0].side)
            for intent in emitted
            if isinstance(intent, ArbIntent)
        }
        events: list[Opportunity] = []
        seen: set[tuple[str, Side]] = set()
        if state.changed is None:
            self._dismissed = forget_gone(self._dismissed, state)
        baskets = iter_baskets(
            state, binary=s.binary, neg_risk=s.neg_risk, bound=s.min_edge_usd, dismissed=self._dismissed
        )
        for basket in baskets:
            usable = all(leg.book.usable(s.max_book_age_secs) for leg in basket.legs)
            for side in (Side.BUY, Side.SELL):
                key = (basket.key, side)
                edge = basket_top_edge(basket, side) if usable else None
                if edge is None or edge <= s.min_edge_usd:
                    continue  # closed below, with the unseen ones
                seen.add(key)
                is_traded = (basket.token_ids, side) in traded
                current = self._open.get(key)
                if current is None:
                    events.append(self._opened(basket, side, edge, is_traded, state))
                else:
                    self._update(current, basket, side, edge, is_traded)
        for key, current in list(self._open.items()):
            if key not in seen and (state.changed is None or not state.changed.isdisjoint(current.markets)):
                events.append(self._closed_event(self._open.pop(key), state))
        return events

    def _depth(self, basket: Basket, side: Side) -> Decimal:
        s = self.settings
        fill = walk_basket(basket, side, min_edge=s.min_edge_usd, max_levels=s.max_levels, strict=True)
        return ZERO if fill is None else fill.size

    def _opened(self, basket: Basket, side: Side, edge: Decimal, traded: bool, state: MarketState) -> Opportunity:
        opportunity = Opportunity(
            opportunity_id=self._ids.next(state.session),
            status=OpportunityStatus.OPENED,
            kind=basket.kind,
            side=side,
            basket=basket.ref,
            token_ids=tuple(leg.token_id for leg in basket.legs),
            started_at=state.wall,
            ended_at=None,
            duration_secs=0.0,
            edge=edge,
            peak_edge=edge,
            depth_at_peak=self._depth(basket, side),
            traded=traded,
        )
        self._open[(basket.key, side)] = _Open(
            opportunity, state.now, frozenset(leg.condition_id for leg in basket.legs)
        )
        self._count += 1
        self._by_kind[f"{basket.kind}/{side}"] += 1
        self._peak = edge if self._peak is None else max(self._peak, edge)
        return opportunity

    def _update(self, current: _Open, basket: Basket, side: Side, edge: Decimal, traded: bool) -> None:
        opportunity = current.opportunity
        changes: dict[str, object] = {"edge": edge}
        if traded:
            changes["traded"] = True
        if edge > opportunity.peak_edge:
            changes.update(peak_edge=edge, depth_at_peak=self._depth(basket, side))
            self._peak = edge if self._peak is None else max(self._peak, edge)
        current.opportunity = replace(opportunity, **changes)  # type: ignore[arg-type]

    def _closed_event(self, current: _Open, state: MarketState) -> Opportunity:
        duration = max(0.0, state.now - current.started_mono)
        closed = replace(
            current.opportunity, status=OpportunityStatus.CLOSED, ended_at=state.wall, duration_secs=duration
        )
        self._recent.append(closed)
        self._closed += 1
        self._traded += closed.traded
        self._value_closed += closed.peak_value_usd
        self._total_duration += duration
        self._max_duration = max(self._max_duration, duration)
        return closed

    def summary(self) -> SumDeviationSummary:
        open_ones = [o.opportunity for o in self._open.values()]
        return SumDeviationSummary(
            count=self._count,
            open=len(open_ones),
            traded=self._traded + sum(o.traded for o in open_ones),
            total_edge_usd=self._value_closed + sum((o.peak_value_usd for o in open_ones), ZERO),
            peak_edge=self._peak,
            total_duration_secs=self._total_duration,
            max_duration_secs=self._max_duration,
            mean_duration_secs=self._total_duration / self._closed if self._closed else None,
            by_kind=dict(self._by_kind),
            recent=tuple(self._recent),
        )
