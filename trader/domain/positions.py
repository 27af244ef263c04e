"""Positions per token and the portfolio (cash in pUSD), with exact fill reversal.

Accounting (average cost):

* BUY `size` shares at `price` with a pUSD fee `fee` and a fee in shares `fee_shares`: cash goes down by
  `size * price + fee`; the position grows by `size - fee_shares`; the cost basis grows by `size * price + fee`.
  A fee collected in shares is therefore not a separate cash flow: the same pUSD bought fewer shares, so the
  average cost per share rises. `fees_paid` counts it at its value at the fill, `fee_shares * price`.
* SELL: cash goes up by `size * price - fee`; the cost basis shrinks by the sold fraction of it
  (`cost_basis * size / quantity` rounded to 12 decimals, the whole of it when the position closes; the only
  rounding in this module, so cash, realized PnL and cost basis always add up exactly), and realized PnL is
  `proceeds - fee - cost removed`. A sell larger than the position raises `InvariantViolation` (long only).
* Unrealized PnL at a mark price is `quantity * mark - cost_basis`; so equity (cash + value at the marks) moves by
  exactly the realized plus unrealized PnL.

Merging and resolution (protocol.md §8, §11 item 13):

* MERGE of `n` complete sets (n YES and n NO shares of one condition) pays `n` pUSD. Each leg gives up `n` shares
  and the same fraction of its cost basis as a sell would; the gain, `n` minus the two costs removed, is realized
  and split between the legs in proportion to the cost each gave up (rounded to 12 decimals, the NO leg takes the
  remainder, so the legs add up to the gain exactly).
* RESOLUTION at payouts (p_yes, p_no), summing to 1: every share held is worth its payout. The position closes
  (quantity and cost basis to 0), its realized PnL takes `quantity * payout - cost_basis`, and the value becomes a
  receivable of the condition until the redemption pays it into cash (`redeemed`). Equity counts receivables, so
  settling a market moves equity by nothing but the difference from its marks.

Reversal: a fill's effect on the position (`FillEffect`) is kept until its trade is settled (`settle`), and
`reverse_fill` subtracts exactly that effect. Right after `apply_fill` this returns the original position, equal
in every field; with other fills in between, quantity, cash, cost basis, realized PnL and fees all lose exactly
what that fill added (a reversed buy whose shares were already sold can leave a negative quantity: the sell
will fail on chain too, and reversing it restores the balance).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

from trader.domain.book import OrderBook
from trader.domain.errors import InvariantViolation
from trader.domain.events import OrderFilled
from trader.domain.numbers import ZERO, Side

__all__ = ["COST_QUANTUM", "FillEffect", "Portfolio", "Position", "marks_at_mid", "settled_sets"]

#: The cost removed by a partial sell is rounded (half-even) to 12 decimals, so that every amount here stays a
#: short fixed-point number and sums of them are exact (a 28-digit quotient would make later sums round).
COST_QUANTUM = Decimal("1E-12")


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill changed, kept so that a FAILED trade can be undone exactly."""

    key: str
    trade_id: str
    quantity: Decimal
    cost_basis: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    token_id: str
    quantity: Decimal = ZERO  # shares held
    cost_basis: Decimal = ZERO  # pUSD paid for the shares held, buy fees included
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO  # pUSD, fees in shares valued at their fill price
    unsettled: tuple[FillEffect, ...] = ()  # effects of fills whose trade is not settled yet

    @property
    def avg_cost(self) -> Decimal | None:
        """pUSD per share held, fees included (None when flat)."""
        return self.cost_basis / self.quantity if self.quantity else None

    @property
    def is_flat(self) -> bool:
        return self.quantity == ZERO

    @property
    def settled_quantity(self) -> Decimal:
        """Shares held whose trades are settled: what the wallet holds on chain (a bought share is not there until
        its trade is mined), and so what a merge or a redemption can take."""
        pending = sum((e.quantity for e in self.unsettled if e.quantity > ZERO), ZERO)
        return max(ZERO, self.quantity - pending)

    def cost_of(self, shares: Decimal) -> Decimal:
        """The cost basis `shares` of the position carry (all of it for the whole position), as a sell removes it."""
        if shares > self.quantity:
            raise InvariantViolation(f"{shares} shares of {self.token_id} exceed the position of {self.quantity}")
        if shares == self.quantity:
            return self.cost_basis
        return (self.cost_basis * shares / self.quantity).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)

    def effect_of(self, fill: OrderFilled) -> FillEffect:
        """What `fill` would change (raises `InvariantViolation` for a sell larger than the position)."""
        if fill.token_id != self.token_id:
            raise InvariantViolation(f"fill {fill.key} for token {fill.token_id} applied to position {self.token_id}")
        notional = fill.notional
        if fill.side is Side.BUY:
            return FillEffect(
                key=fill.key,
                trade_id=fill.trade_id,
                quantity=fill.net_shares,
                cost_basis=notional + fill.fee,
                realized_pnl=ZERO,
                fees_paid=fill.fee + fill.fee_shares * fill.price,
                cash=-(notional + fill.fee),
            )
        if fill.size > self.quantity:
            raise InvariantViolation(
                f"sell of {fill.size} {self.token_id} exceeds the position of {self.quantity} (fill {fill.key})"
            )
        removed = self.cost_of(fill.size)
        return FillEffect(
            key=fill.key,
            trade_id=fill.trade_id,
            quantity=-fill.size,
            cost_basis=-removed,
            realized_pnl=notional - fill.fee - removed,
            fees_paid=fill.fee,
            cash=notional - fill.fee,
        )

    def apply_fill(self, fill: OrderFilled) -> Position:
        """The position after `fill`. A fill whose key is already unsettled here is a no-op."""
        if any(e.key == fill.key for e in self.unsettled):
            return self
        effect = self.effect_of(fill)
        return self._with(effect, +1, (*self.unsettled, effect))

    def reverse_fill(self, fill: OrderFilled) -> Position:
        """Undo `fill` exactly (its trade FAILED). Raises `InvariantViolation` if it is not unsettled here."""
        for effect in self.unsettled:
            if effect.key == fill.key:
                return self._with(effect, -1, tuple(e for e in self.unsettled if e is not effect))
        raise InvariantViolation(f"fill {fill.key} is not an unsettled fill of position {self.token_id}")

    def reverse_trade(self, trade_id: str) -> Position:
        """Undo every unsettled fill of `trade_id` (none: unchanged)."""
        position = self
        for effect in self.unsettled:
            if effect.trade_id == trade_id:
                position = position._with(effect, -1, tuple(e for e in position.unsettled if e is not effect))
        return position

    def settle(self, trade_id: str) -> Position:
        """Forget the effects of `trade_id` once it is CONFIRMED: it can no longer be reversed."""
        return replace(self, unsettled=tuple(e for e in self.unsettled if e.trade_id != trade_id))

    def _with(self, effect: FillEffect, sign: int, unsettled: tuple[FillEffect, ...]) -> Position:
        op = operator.add if sign > 0 else operator.sub
        return replace(
            self,
            quantity=op(self.quantity, effect.quantity),
            cost_basis=op(self.cost_basis, effect.cost_basis),
            realized_pnl=op(self.realized_pnl, effect.realized_pnl),
            fees_paid=op(self.fees_paid, effect.fees_paid),
            unsettled=unsettled,
        )

    def market_value(self, mark: Decimal) -> Decimal:
        return self.quantity * mark

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """PnL of the shares held if valued at `mark`."""
        return self.quantity * mark - self.cost_basis


def settled_sets(yes: Position, no: Position) -> Decimal:
    """How many complete sets the two legs of a condition hold, settled on both sides."""
    return min(yes.settled_quantity, no.settled_quantity)


def marks_at_mid(books: Iterable[OrderBook]) -> dict[str, Decimal]:
    """token -> mid, for the books that have both sides."""
    return {book.asset_id: mid for book in books if (mid := book.mid()) is not None}


class Portfolio:
    """Positions by token and cash in pUSD. Mutable: the engine owns one and feeds it fills.

    The totals (cost basis, realized PnL, fees) are kept as positions change, exactly: reading them costs the same
    however many tokens were ever traded."""

    __slots__ = ("_cost", "_fees", "_positions", "_realized", "cash", "receivables")

    def __init__(
        self, cash: Decimal = ZERO, positions: Iterable[Position] = (), receivables: Mapping[str, Decimal] | None = None
    ) -> None:
        self.cash = cash
        self._positions: dict[str, Position] = {}
        self._cost = self._realized = self._fees = ZERO
        for position in positions:
            self._set(position.token_id, position)
        #: condition id -> pUSD owed by the redemption of its resolved shares
        self.receivables: dict[str, Decimal] = dict(receivables or {})

    def _set(self, token_id: str, after: Position) -> None:
        before = self._positions.get(token_id)
        if before is not None:
            self._cost -= before.cost_basis
            self._realized -= before.realized_pnl
            self._fees -= before.fees_paid
        self._positions[token_id] = after
        self._cost += after.cost_basis
        self._realized += after.realized_pnl
        self._fees += after.fees_paid

    def position(self, token_id: str) -> Position:
        """The position in `token_id` (a flat one if there is none)."""
        position = self._positions.get(token_id)
        return Position(token_id=token_id) if position is None else position

    @property
    def positions(self) -> Mapping[str, Position]:
        """A copy of token -> position (flat positions included)."""
        return dict(self._positions)

    def apply_fill(self, fill: OrderFilled) -> Position:
        before = self.position(fill.token_id)
        after = before.apply_fill(fill)
        if after is not before:
            self.cash += after.unsettled[-1].cash
            self._set(fill.token_id, after)
        return after

    def reverse_fill(self, fill: OrderFilled) -> Position:
        before = self.position(fill.token_id)
        effect = next((e for e in before.unsettled if e.key == fill.key), None)
        after = before.reverse_fill(fill)
        assert effect is not None  # reverse_fill raised otherwise
        self.cash -= effect.cash
        self._set(fill.token_id, after)
        return after

    def reverse_trade(self, token_id: str, trade_id: str) -> Position:
        before = self.position(token_id)
        self.cash -= sum((e.cash for e in before.unsettled if e.trade_id == trade_id), ZERO)
        after = before.reverse_trade(trade_id)
        self._set(token_id, after)
        return after

    def settle(self, token_id: str, trade_id: str) -> None:
        if token_id in self._positions:
            self._positions[token_id] = self._positions[token_id].settle(trade_id)

    # -- merges and resolutions ---------------------------------------------------------------------------------

    def merge_sets(self, yes_token: str, no_token: str, sets: Decimal) -> Decimal:
        """`sets` complete sets merged into `sets` pUSD (see the module docstring); returns the realized gain.
        Raises `InvariantViolation` when either leg holds fewer shares."""
        if sets <= ZERO:
            raise InvariantViolation(f"a merge takes a positive number of sets, got {sets}")
        yes, no = self.position(yes_token), self.position(no_token)
        removed_yes, removed_no = yes.cost_of(sets), no.cost_of(sets)
        gain = sets - removed_yes - removed_no
        removed = removed_yes + removed_no
        if removed:
            gain_yes = (gain * removed_yes / removed).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        else:
            gain_yes = (gain / 2).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        for position, cost, leg_gain in ((yes, removed_yes, gain_yes), (no, removed_no, gain - gain_yes)):
            self._set(
                position.token_id,
                replace(
                    position,
                    quantity=position.quantity - sets,
                    cost_basis=position.cost_basis - cost,
                    realized_pnl=position.realized_pnl + leg_gain,
                ),
            )
        self.cash += sets
        return gain

    def settle_resolution(self, condition_id: str, payouts: Mapping[str, Decimal]) -> Decimal:
        """The condition resolved: each token of `payouts` (token -> pUSD per share) closes at its payout, and
        the value becomes the condition's receivable. Returns the realized PnL of the settlement."""
        realized = ZERO
        owed = ZERO
        for token_id, payout in payouts.items():
            position = self._positions.get(token_id)
            if position is None or (not position.quantity and not position.cost_basis):
                continue
            value = position.quantity * payout
            pnl = value - position.cost_basis
            self._set(
                token_id,
                replace(
                    position, quantity=ZERO, cost_basis=ZERO, realized_pnl=position.realized_pnl + pnl, unsettled=()
                ),
            )
            realized += pnl
            owed += value
        if owed:
            self.receivables[condition_id] = self.receivables.get(condition_id, ZERO) + owed
        return realized

    def redeemed(self, condition_id: str, amount: Decimal) -> Decimal:
        """The redemption of a resolved condition paid `amount` pUSD into cash; its receivable is cleared. Returns
        what the payment differed from the receivable by (0 when it paid what was owed)."""
        owed = self.receivables.pop(condition_id, ZERO)
        self.cash += amount
        return amount - owed

    # -- totals ------------------------------------------------------------------------------------------------

    @property
    def realized_pnl(self) -> Decimal:
        return self._realized

    @property
    def fees_paid(self) -> Decimal:
        return self._fees

    def exposure(self, token_id: str | None = None) -> Decimal:
        """pUSD at risk: the cost basis of the shares held (of one token, or of all)."""
        if token_id is not None:
            return self.position(token_id).cost_basis
        return self._cost

    def market_value(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Value of the positions at the marks; a held token without a mark raises `KeyError`."""
        return sum((p.market_value(marks[t]) for t, p in self._positions.items() if p.quantity), ZERO)

    def unrealized_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum((p.unrealized_pnl(marks[t]) for t, p in self._positions.items() if p.quantity), ZERO)

    def marked_unrealized_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Unrealized PnL of the positions that have a mark; a held token without one (e.g. a book with an empty
        side, so no mid) is left out rather than raising, as a live status or risk check needs."""
        return sum((p.unrealized_pnl(marks[t]) for t, p in self._positions.items() if p.quantity and t in marks), ZERO)

    @property
    def receivable(self) -> Decimal:
        """pUSD owed by redemptions not yet paid."""
        return sum(self.receivables.values(), ZERO)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Cash plus the positions at the marks plus what redemptions still owe."""
        return self.cash + self.market_value(marks) + self.receivable
