"""The capital service: complete sets merged back into collateral, resolved markets settled and redeemed.

An arbitrage that completes leaves a complete set held (one YES and one NO share of a condition): worth exactly 1 pUSD,
but its collateral stays locked until the set is merged back (`mergePositions`) or the market resolves and the shares
are redeemed (`redeemPositions`). An engine that never does either runs out of cash in minutes. This service does
both, through the `Capital` port (`trader.venues.base`): live, an EOA's own Polygon transaction or Polymarket's
relayer; on paper, the paper wallet.

```
CapitalService.run()            (started by the composition root: `await nursery.start(service.run)`)
    at start: every merge or redemption the store has open (PREPARED, PENDING) is asked for by its id
    every `scan_secs`, or at once when woken (a fill, a resolution):
    1. open operations: polled by id; CONFIRMED is applied to the portfolio, FAILED releases what it held
    2. resolutions: a held market that resolved (the market channel's `market_resolved`, or the venue asked every
       `resolution_check_secs`) is marked closed (nothing more is traded in it), its positions are settled at the
       payout (the value owed becomes a receivable) and the winning shares are redeemed
    3. merges: where both legs of a condition are held (settled on chain), the common amount is merged, when it is
       at least `min_merge_sets`
```

Every operation is written ahead like an order intent: prepared (its id known: a transaction hash, the relayer's
hash, a paper id), recorded PREPARED in the store, then sent, then PENDING, CONFIRMED or FAILED. A crash leaves it
PREPARED or PENDING, and the restart asks the venue about it by id; nothing is sent twice. Shares taken by an open
merge are `committed`: the strategies see the position without them (`positions` is a `PositionReader` for them),
so they are never sold while being merged.

A verdict is given only when the venue has shown it: a merge is applied to the portfolio on CONFIRMED, never on
sending; an operation the chain has never seen is given up (FAILED, tried again next scan) only after
`not_found_grace_secs`. A redemption that fails keeps its receivable and is tried again.

All timing is `trio.current_time()`; wall-clock times (`wall`, injectable) are only recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import NoReturn

import structlog
import trio

from trader.config import check_positive_secs
from trader.domain.capital import CapitalOpFailed, CapitalOpStuck, MarketSettled, PositionsRedeemed, SetsMerged
from trader.domain.errors import InvariantViolation
from trader.domain.events import OrderFilled, TradeStatusChanged
from trader.domain.market import Market
from trader.domain.numbers import ONE, ZERO
from trader.domain.positions import Portfolio, Position
from trader.infra.names import NAMES
from trader.integrations.store.base import CapitalOpRecord, CapitalOpState, Store, StoreError, secs_to_ns
from trader.venues.base import (
    Capital,
    CapitalOp,
    CapitalOpKind,
    CapitalOpStatus,
    PreparedCapitalOp,
    Resolution,
)
from trader.venues.base import (
    CapitalOpState as VenueOpState,
)
from trader.venues.errors import VenueError

__all__ = ["CapitalService", "CapitalSettings", "CapitalStatistics", "MarketDirectory"]

log = structlog.get_logger(__name__)

#: On-chain amounts have 6 decimals: merges are floored to one base unit.
BASE_UNIT = Decimal("0.000001")

#: Reason codes of this module.
CAPITAL_NOT_FOUND = "CAPITAL_NOT_FOUND"  # the chain or relayer never saw the operation
CAPITAL_REFUSED = "CAPITAL_REFUSED"  # refused or reverted


#: the longest wait before a refused redemption is tried again
_MAX_REDEEM_RETRY_SECS = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalSettings:
    """`TRADER_CAPITAL__*`: merging complete sets, settling resolved markets, redeeming.

    - `merge` (true): merge complete sets (YES + NO of a condition) back into pUSD as soon as they are held; off,
      they are held (the arbitrage may sell them when the bids pay more than 1) until resolution.
    - `min_merge_sets` (1): the smallest merge, in sets (a transaction costs gas live).
    - `redeem` (true): redeem the shares of resolved markets (their value is owed until then).
    - `scan_secs` (1.0): how often holdings and open operations are looked at (a fill wakes it at once).
    - `resolution_check_secs` (30): how often the venue is asked whether the markets held resolved (the market
      channel's `market_resolved` tells sooner, when the custom feature is on).
    - `call_timeout_secs` (10): one call to the venue, chain or relayer.
    - `max_open_ops` (1): operations in flight at once. Live, one per wallet: a wallet's nonce is read when an
      operation is prepared, so a second one prepared before the first lands would collide with it.
    - `stuck_after_secs` (300): an operation pending longer is reported (once) as stuck; it is still followed.
    - `not_found_grace_secs` (120): an operation the chain has never seen after this long is given up.
    """

    merge: bool = True
    min_merge_sets: Decimal = ONE
    redeem: bool = True
    scan_secs: float = 1.0
    resolution_check_secs: float = 30.0
    call_timeout_secs: float = 10.0
    max_open_ops: int = 1
    stuck_after_secs: float = 300.0
    not_found_grace_secs: float = 120.0

    def __post_init__(self) -> None:
        check_positive_secs(
            self, "scan_secs", "resolution_check_secs", "call_timeout_secs", "stuck_after_secs", "not_found_grace_secs"
        )
        if self.max_open_ops < 1:
            raise ValueError(f"max_open_ops must be >= 1, got {self.max_open_ops}")
        if not self.min_merge_sets > ZERO:
            raise ValueError(f"min_merge_sets must be > 0, got {self.min_merge_sets}")


@dataclass(frozen=True, slots=True)
class CapitalStatistics:
    merges: int
    merged_sets: Decimal  # pUSD freed by merges
    redemptions: int
    redeemed_usd: Decimal
    settled_markets: int
    settled_pnl: Decimal  # realized by settling resolved markets
    open_ops: int
    failed_ops: Mapping[str, int]  # by reason
    stuck_ops: int
    locked_sets: Decimal  # complete sets held and not being merged: collateral a merge would free
    receivable_usd: Decimal  # owed by redemptions not yet paid


class MarketDirectory:
    """The markets the engine follows or holds positions in, by condition and by token, including ones no longer
    followed by market data (discovery drops a market when it closes; its shares are still ours). Fed by
    `remember`; built at start from the store's markets (`stored`), which it need not write again."""

    def __init__(self, stored: Iterable[Market] = ()) -> None:
        self._markets: dict[str, Market] = {}
        self._by_token: dict[str, str] = {}
        for market in stored:
            self.remember(market)
        self.stored: set[str] = set(self._markets)  # conditions whose market the store has

    def remember(self, market: Market) -> bool:
        """Keep `market` (the latest version wins) and name it for the operator's views (`trader.infra.names`);
        True when it was not known."""
        new = market.condition_id not in self._markets
        NAMES.add_market(
            market.condition_id, market.question or market.slug, {t: market.outcome_of(t) for t in market.token_ids}
        )
        self._markets[market.condition_id] = market
        for token_id in market.token_ids:
            self._by_token[token_id] = market.condition_id
        return new

    def get(self, condition_id: str) -> Market | None:
        return self._markets.get(condition_id)

    def condition_of(self, token_id: str) -> str | None:
        return self._by_token.get(token_id)


@dataclass(slots=True)
class _Open:
    """An operation in flight: its record, and when (Trio clock) this engine first saw it open."""

    record: CapitalOpRecord
    since: float
    stuck_reported: bool = False


@dataclass(slots=True)
class _ToRedeem:
    """A settled condition whose redemption is owed: the shares to redeem and what they pay."""

    market: Market
    amounts: tuple[Decimal, Decimal]
    payout: Decimal


@dataclass(slots=True)
class _Counts:
    merges: int = 0
    merged_sets: Decimal = ZERO
    redemptions: int = 0
    redeemed_usd: Decimal = ZERO
    settled_markets: int = 0
    settled_pnl: Decimal = ZERO
    failed: Counter[str] = field(default_factory=Counter)
    stuck: int = 0


class CapitalService:
    """See the module docstring. `portfolio` is the order manager's; `resolved_winner(condition_id)` reads the
    market channel's word (the books); `mark_resolved(condition_id, winner)` tells the books a market is closed."""

    def __init__(
        self,
        capital: Capital,
        portfolio: Portfolio,
        markets: MarketDirectory,
        store: Store,
        settings: CapitalSettings | None = None,
        *,
        resolved_winner: Callable[[str], str | None] = lambda _: None,
        mark_resolved: Callable[[str, str | None], None] = lambda _c, _w: None,
        emit: Callable[[object], None] = lambda _: None,
        on_balance_changed: Callable[[], None] = lambda: None,
        wall: Callable[[], float] = time.time,
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        """`may_send()` (active/standby: the leadership's lease) is asked before a merge or a redemption is prepared
        and again before it is sent: False, nothing goes out (a prepared one stays PREPARED, for the next leader's
        recovery to ask about by its id)."""
        self._capital = capital
        self._may_send = may_send
        self._portfolio = portfolio
        self.markets = markets
        self._store = store
        self.settings = settings or CapitalSettings()
        self._resolved_winner = resolved_winner
        self._mark_resolved = mark_resolved
        self._emit = emit
        self._on_balance_changed = on_balance_changed
        self._wall = wall
        self._open: dict[str, _Open] = {}  # op id -> in flight
        self._committed: dict[str, Decimal] = {}  # token -> shares taken by open merges
        self._resolutions: dict[str, Resolution] = {}  # condition -> how it resolved (settled or not yet)
        self._settled: set[str] = set()  # conditions settled by this engine
        self._to_redeem: dict[str, _ToRedeem] = {}
        # A refused redemption is tried again later and later (scan_secs doubling, at most every 5 minutes), so that
        # one that keeps failing never takes every turn from the merges: condition -> (failures, not before)
        self._redeem_backoff: dict[str, tuple[int, float]] = {}
        self._next_resolution_check = -float("inf")
        self._wake = trio.Event()
        self._counts = _Counts()

    # -- the strategies' view of positions -------------------------------------------------------------------------

    def position(self, token_id: str) -> Position:
        """The position as the strategies may trade it: without the shares committed to an open merge."""
        position = self._portfolio.position(token_id)
        committed = self._committed.get(token_id)
        return replace(position, quantity=position.quantity - committed) if committed else position

    def wake(self) -> None:
        """Look now (what is held changed, a market resolved)."""
        self._wake.set()

    def wake_on(self, event: object) -> None:
        """An order-manager listener: a fill, or a trade settling (its shares now on chain), wakes the service."""
        if isinstance(event, OrderFilled | TradeStatusChanged):
            self._wake.set()

    # -- the service -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        await self._recover()
        task_status.started()
        while True:
            with trio.move_on_after(self.settings.scan_secs):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.scan()
            except Exception:  # a bug in one pass must not stop trading: logged whole, counted, tried again
                self._counts.failed["SCAN_ERROR"] += 1
                log.exception("capital_scan_failed")

    async def scan(self) -> None:
        """One pass: open operations, then resolutions, then merges (see the module docstring)."""
        await self._store_held_markets()
        await self._poll_open()
        await self._check_resolutions()
        if self.settings.redeem:
            for condition_id in list(self._to_redeem):
                await self._redeem(condition_id)
        if self.settings.merge:
            await self._merge_sets()

    # -- restart -----------------------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """What the store has open is followed from here: committed shares are rebuilt, and so is the receivable of
        a redemption whose market was settled (its positions stored flat). A redemption whose positions the store
        still holds (the crash came between the two writes) is settled again by the next scan."""
        now = trio.current_time()
        for record in await self._store.load_open_capital_ops():
            self._track(record, now)
            if record.kind != CapitalOpKind.REDEEM:
                continue
            yes, no = (self._portfolio.position(t) for t in (record.yes_token_id, record.no_token_id))
            if yes.quantity or no.quantity:
                continue
            self._settled.add(record.condition_id)
            self._portfolio.receivables[record.condition_id] = record.payout
        if self._open:
            log.info("capital_ops_recovered", count=len(self._open))

    def _track(self, record: CapitalOpRecord, now: float) -> None:
        self._open[record.op_id] = _Open(record, now)
        if record.kind == CapitalOpKind.MERGE:
            for token_id, amount in ((record.yes_token_id, record.yes_amount), (record.no_token_id, record.no_amount)):
                self._committed[token_id] = self._committed.get(token_id, ZERO) + amount

    def _untrack(self, op_id: str) -> CapitalOpRecord | None:
        held = self._open.pop(op_id, None)
        if held is None:
            return None
        record = held.record
        if record.kind == CapitalOpKind.MERGE:
            for token_id, amount in ((record.yes_token_id, record.yes_amount), (record.no_token_id, record.no_amount)):
                left = self._committed.get(token_id, ZERO) - amount
                if left > ZERO:
                    self._committed[token_id] = left
                else:
                    self._committed.pop(token_id, None)
        return record

    # -- open operations ---------------------------------------------------------------------------------------------

    async def _poll_open(self) -> None:
        for op_id in list(self._open):
            held = self._open.get(op_id)
            if held is None:
                continue
            try:
                with trio.fail_after(self.settings.call_timeout_secs):
                    status = await self._capital.op_status(op_id)
            except (VenueError, trio.TooSlowError) as exc:
                log.warning("capital_op_status_failed", op_id=op_id, error=repr(exc))
                continue
            await self._on_status(held, status)

    async def _on_status(self, held: _Open, status: CapitalOpStatus) -> None:
        record, now = held.record, trio.current_time()
        if status.state is VenueOpState.CONFIRMED:
            await self._confirmed(record, status)
        elif status.state is VenueOpState.FAILED:
            await self._failed(record, CAPITAL_REFUSED, status.message, status.tx_hash)
        elif status.state is VenueOpState.NOT_FOUND:
            if now - held.since >= self.settings.not_found_grace_secs:
                await self._failed(record, CAPITAL_NOT_FOUND, status.message or "never seen by the venue", None)
        else:  # PENDING
            if record.state is CapitalOpState.PREPARED or (status.tx_hash and status.tx_hash != record.tx_hash):
                held.record = await self._save(record, CapitalOpState.PENDING, tx_hash=status.tx_hash)
            if not held.stuck_reported and now - held.since >= self.settings.stuck_after_secs:
                held.stuck_reported = True
                self._counts.stuck += 1
                log.error("capital_op_stuck", op_id=record.op_id, kind=record.kind, secs=round(now - held.since))
                self._emit(
                    CapitalOpStuck(
                        condition_id=record.condition_id,
                        op_id=record.op_id,
                        kind=record.kind,
                        pending_secs=now - held.since,
                        ts=self._wall(),
                    )
                )

    async def _confirmed(self, record: CapitalOpRecord, status: CapitalOpStatus) -> None:
        """Apply a confirmed operation to the portfolio, then record it: the positions are written first and the
        CONFIRMED state after them (the store keeps that order), so a crash in between leaves the operation open
        and the restart applies it again to the positions as they were."""
        self._untrack(record.op_id)
        ts = self._wall()
        try:
            if record.kind == CapitalOpKind.MERGE:
                self._apply_merge(record, ts)
            else:
                self._apply_redemption(record, ts)
        except InvariantViolation as exc:  # the portfolio disagrees with the chain: reconcile will tell
            log.error("capital_op_not_applied", op_id=record.op_id, kind=record.kind, error=str(exc))
        await self._save_positions((record.yes_token_id, record.no_token_id))
        await self._save(record, CapitalOpState.CONFIRMED, tx_hash=status.tx_hash or record.tx_hash)
        self._on_balance_changed()

    def _apply_merge(self, record: CapitalOpRecord, ts: float) -> None:
        gain = self._portfolio.merge_sets(record.yes_token_id, record.no_token_id, record.yes_amount)
        self._counts.merges += 1
        self._counts.merged_sets += record.yes_amount
        log.info("sets_merged", condition_id=record.condition_id, sets=str(record.yes_amount), pnl=str(gain))
        self._emit(
            SetsMerged(
                condition_id=record.condition_id, op_id=record.op_id, sets=record.yes_amount, realized_pnl=gain, ts=ts
            )
        )

    def _apply_redemption(self, record: CapitalOpRecord, ts: float) -> None:
        difference = self._portfolio.redeemed(record.condition_id, record.payout)
        self._to_redeem.pop(record.condition_id, None)
        self._redeem_backoff.pop(record.condition_id, None)
        self._forget(record.condition_id)
        self._counts.redemptions += 1
        self._counts.redeemed_usd += record.payout
        if difference:
            log.error("redemption_differs", condition_id=record.condition_id, difference=str(difference))
        log.info("positions_redeemed", condition_id=record.condition_id, amount=str(record.payout))
        self._emit(PositionsRedeemed(condition_id=record.condition_id, op_id=record.op_id, amount=record.payout, ts=ts))

    def _forget(self, condition_id: str) -> None:
        """A resolved market that is settled and paid: nothing is left to do about it (bounded memory)."""
        self._settled.discard(condition_id)
        self._resolutions.pop(condition_id, None)
        self._redeem_backoff.pop(condition_id, None)

    async def _failed(self, record: CapitalOpRecord, reason: str, message: str, tx_hash: str | None) -> None:
        self._untrack(record.op_id)
        await self._save(record, CapitalOpState.FAILED, tx_hash=tx_hash or record.tx_hash, message=message)
        self._counts.failed[reason] += 1
        log.error("capital_op_failed", op_id=record.op_id, kind=record.kind, reason=reason, message=message)
        self._emit(
            CapitalOpFailed(
                condition_id=record.condition_id,
                op_id=record.op_id,
                kind=record.kind,
                reason=reason,
                message=message,
                ts=self._wall(),
            )
        )
        if record.kind == CapitalOpKind.REDEEM:  # still owed: tried again, later each time
            failures = self._redeem_backoff.get(record.condition_id, (0, 0.0))[0] + 1
            delay = min(self.settings.scan_secs * 2**failures, _MAX_REDEEM_RETRY_SECS)
            self._redeem_backoff[record.condition_id] = (failures, trio.current_time() + delay)
            market = self.markets.get(record.condition_id)
            if market is not None:
                self._to_redeem[record.condition_id] = _ToRedeem(
                    market, (record.yes_amount, record.no_amount), record.payout
                )

    # -- resolutions -------------------------------------------------------------------------------------------------

    def held_conditions(self) -> set[str]:
        """The conditions of every position that is not flat (or still carries cost)."""
        held: set[str] = set()
        for token_id, position in self._portfolio.positions.items():
            if position.quantity or position.cost_basis:
                condition_id = self.markets.condition_of(token_id)
                if condition_id is not None:
                    held.add(condition_id)
        return held

    async def _check_resolutions(self) -> None:
        held = self.held_conditions() - self._settled
        now = trio.current_time()
        ask = now >= self._next_resolution_check
        if ask:
            self._next_resolution_check = now + self.settings.resolution_check_secs
        for condition_id in sorted(held):
            market = self.markets.get(condition_id)
            if market is None:
                continue
            resolution = self._resolutions.get(condition_id) or self._from_channel(market)
            if resolution is None and ask:
                resolution = await self._ask_resolution(condition_id)
            if resolution is None:
                continue
            self._resolutions[condition_id] = resolution
            await self._settle(market, resolution)

    def _from_channel(self, market: Market) -> Resolution | None:
        winner = self._resolved_winner(market.condition_id)
        if winner is None or not market.has_token(winner):
            return None
        yes_won = winner == market.yes_token_id
        return Resolution(condition_id=market.condition_id, payouts=(ONE, ZERO) if yes_won else (ZERO, ONE))

    async def _ask_resolution(self, condition_id: str) -> Resolution | None:
        try:
            with trio.fail_after(self.settings.call_timeout_secs):
                return await self._capital.resolution(condition_id)
        except (VenueError, trio.TooSlowError, ValueError) as exc:
            log.warning("resolution_check_failed", condition_id=condition_id, error=repr(exc))
            return None

    async def _settle(self, market: Market, resolution: Resolution) -> None:
        """Close the positions of a resolved market at its payouts; its winning shares are then redeemed."""
        yes, no = self._portfolio.position(market.yes_token_id), self._portfolio.position(market.no_token_id)
        if yes.settled_quantity != yes.quantity or no.settled_quantity != no.quantity:
            return  # a trade of ours is still settling on chain: settle once the shares are all there
        condition_id = market.condition_id
        if any(
            h.record.condition_id == condition_id and h.record.kind == CapitalOpKind.MERGE for h in self._open.values()
        ):
            # A merge of its sets is in flight: the chain applies it whether or not the market resolved, so settle
            # what is left once it is done (settling first would redeem shares the merge takes, for ever refused).
            return
        winner = None
        if resolution.payouts in ((ONE, ZERO), (ZERO, ONE)):
            winner = market.yes_token_id if resolution.payouts[0] == ONE else market.no_token_id
        self._mark_resolved(condition_id, winner)
        amounts = (max(yes.quantity, ZERO), max(no.quantity, ZERO))
        payout = amounts[0] * resolution.payouts[0] + amounts[1] * resolution.payouts[1]
        pnl = self._portfolio.settle_resolution(
            condition_id, {market.yes_token_id: resolution.payouts[0], market.no_token_id: resolution.payouts[1]}
        )
        self._settled.add(condition_id)
        self._counts.settled_markets += 1
        self._counts.settled_pnl += pnl
        owed = self._portfolio.receivables.get(condition_id, ZERO)
        log.info(
            "market_settled", condition_id=condition_id, payouts=[str(p) for p in resolution.payouts], pnl=str(pnl)
        )
        self._emit(
            MarketSettled(
                condition_id=condition_id,
                payouts=resolution.payouts,
                realized_pnl=pnl,
                receivable=owed,
                ts=self._wall(),
            )
        )
        await self._save_positions(market.token_ids)
        if payout > ZERO or any(amounts):
            # Losing shares are redeemed too (for nothing): the chain burns them, and the wallet holds what the books
            # say (no shares of a settled market) instead of worthless tokens for ever.
            self._to_redeem[condition_id] = _ToRedeem(market, amounts, payout)
        else:
            self._forget(condition_id)  # nothing to redeem: the positions are flat, and nothing is owed

    def _room(self) -> bool:
        return len(self._open) < self.settings.max_open_ops

    async def _redeem(self, condition_id: str) -> None:
        if not self._room():
            return
        if any(
            h.record.condition_id == condition_id and h.record.kind == CapitalOpKind.REDEEM for h in self._open.values()
        ):
            return
        backoff = self._redeem_backoff.get(condition_id)
        if backoff is not None and trio.current_time() < backoff[1]:
            return
        todo = self._to_redeem[condition_id]
        market = todo.market
        op = CapitalOp(
            kind=CapitalOpKind.REDEEM,
            condition_id=condition_id,
            neg_risk=market.neg_risk,
            token_ids=(market.yes_token_id, market.no_token_id),
            amounts=todo.amounts,
        )
        await self._run_op(op, todo.payout)

    # -- merges ------------------------------------------------------------------------------------------------------

    def redeeming(self) -> dict[str, Decimal]:
        """Shares of settled markets still owed to a redemption (queued, waiting to be tried again, or in flight), by
        token: the books hold none of them any more, the wallet still does until the chain burns them."""
        taken: dict[str, tuple[tuple[str, Decimal], ...]] = {
            condition_id: ((todo.market.yes_token_id, todo.amounts[0]), (todo.market.no_token_id, todo.amounts[1]))
            for condition_id, todo in self._to_redeem.items()
        }
        for handle in self._open.values():
            record = handle.record
            if record.kind == CapitalOpKind.REDEEM and record.condition_id not in taken:  # recovered at a restart
                taken[record.condition_id] = (
                    (record.yes_token_id, record.yes_amount),
                    (record.no_token_id, record.no_amount),
                )
        shares: dict[str, Decimal] = {}
        for pairs in taken.values():
            for token_id, amount in pairs:
                shares[token_id] = shares.get(token_id, ZERO) + amount
        return shares

    def mergeable(self, market: Market) -> Decimal:
        """Complete sets of `market` that could be merged now: settled on both legs, not already being merged,
        floored to the chain's base unit."""
        yes, no = self._portfolio.position(market.yes_token_id), self._portfolio.position(market.no_token_id)
        sets = min(
            yes.settled_quantity - self._committed.get(market.yes_token_id, ZERO),
            no.settled_quantity - self._committed.get(market.no_token_id, ZERO),
        )
        return sets.quantize(BASE_UNIT, rounding=ROUND_FLOOR) if sets > ZERO else ZERO

    async def _merge_sets(self) -> None:
        for condition_id in sorted(self.held_conditions() - self._settled):
            market = self.markets.get(condition_id)
            if market is None or condition_id in self._resolutions:
                continue
            sets = self.mergeable(market)
            if sets < self.settings.min_merge_sets or not self._room():
                continue
            op = CapitalOp(
                kind=CapitalOpKind.MERGE,
                condition_id=condition_id,
                neg_risk=market.neg_risk,
                token_ids=(market.yes_token_id, market.no_token_id),
                amounts=(sets, sets),
            )
            await self._run_op(op, sets)

    # -- one operation: prepare, write ahead, send ------------------------------------------------------------------

    async def _run_op(self, op: CapitalOp, payout: Decimal) -> None:
        if not self._may_send():
            self._counts.failed["NOT_LEADER"] += 1
            return
        timeout = self.settings.call_timeout_secs
        try:
            with trio.fail_after(timeout):
                prepared = await self._capital.prepare_op(op)
        except (VenueError, trio.TooSlowError, ValueError) as exc:
            log.warning("capital_op_prepare_failed", kind=op.kind, condition_id=op.condition_id, error=repr(exc))
            return
        now_ns = secs_to_ns(self._wall())
        record = CapitalOpRecord(
            op_id=prepared.op_id,
            kind=op.kind.value,
            condition_id=op.condition_id,
            neg_risk=op.neg_risk,
            yes_token_id=op.token_ids[0],
            no_token_id=op.token_ids[1],
            yes_amount=op.amounts[0],
            no_amount=op.amounts[1],
            payout=payout,
            state=CapitalOpState.PREPARED,
            created_at_ns=now_ns,
            updated_at_ns=now_ns,
        )
        try:
            await self._store.record_capital_op(record)  # the write-ahead: nothing is sent without it
        except StoreError as exc:
            log.error("capital_op_not_written", op_id=prepared.op_id, error=repr(exc))
            return
        self._track(record, trio.current_time())
        await self._send(prepared)

    async def _send(self, prepared: PreparedCapitalOp) -> None:
        held = self._open[prepared.op_id]
        if not self._may_send():
            self._counts.failed["NOT_LEADER"] += 1
            log.warning("capital_op_withheld", op_id=prepared.op_id, reason="NOT_LEADER")
            return
        try:
            with trio.fail_after(self.settings.call_timeout_secs):
                status = await self._capital.send_op(prepared)
        except (VenueError, trio.TooSlowError) as exc:  # unknown: followed by id from here
            log.warning("capital_op_send_unknown", op_id=prepared.op_id, error=repr(exc))
            return
        log.info("capital_op_sent", op_id=prepared.op_id, kind=prepared.op.kind, state=status.state)
        await self._on_status(held, status)

    # -- the store ---------------------------------------------------------------------------------------------------

    async def _save(
        self, record: CapitalOpRecord, state: CapitalOpState, *, tx_hash: str | None, message: str | None = None
    ) -> CapitalOpRecord:
        updated = replace(record, state=state, tx_hash=tx_hash, message=message, updated_at_ns=secs_to_ns(self._wall()))
        try:
            await self._store.record_capital_op(updated)
        except StoreError as exc:  # the open operation is still followed; the restart asks the venue again
            log.error("capital_op_update_not_written", op_id=record.op_id, state=state, error=repr(exc))
        return updated

    async def _store_held_markets(self) -> None:
        """The store keeps the market of every position (restarts and `trader reconcile` read it)."""
        for condition_id in sorted(self.held_conditions() - self.markets.stored):
            market = self.markets.get(condition_id)
            if market is None:
                continue
            try:
                await self._store.upsert_market(market, ts_ns=secs_to_ns(self._wall()))
            except StoreError as exc:
                log.error("market_not_written", condition_id=condition_id, error=repr(exc))
                continue
            self.markets.stored.add(condition_id)

    async def _save_positions(self, token_ids: Iterable[str]) -> None:
        ts_ns = secs_to_ns(self._wall())
        for token_id in token_ids:
            try:
                await self._store.record_position(self._portfolio.position(token_id), ts_ns=ts_ns)
            except StoreError as exc:
                log.error("position_not_written", token_id=token_id, error=repr(exc))

    # -- introspection -----------------------------------------------------------------------------------------------

    def statistics(self) -> CapitalStatistics:
        locked = ZERO
        for condition_id in self.held_conditions() - self._settled:
            market = self.markets.get(condition_id)
            if market is not None:
                locked += self.mergeable(market)
        counts = self._counts
        return CapitalStatistics(
            merges=counts.merges,
            merged_sets=counts.merged_sets,
            redemptions=counts.redemptions,
            redeemed_usd=counts.redeemed_usd,
            settled_markets=counts.settled_markets,
            settled_pnl=counts.settled_pnl,
            open_ops=len(self._open),
            failed_ops=MappingProxyType(dict(counts.failed)),
            stuck_ops=counts.stuck,
            locked_sets=locked,
            receivable_usd=self._portfolio.receivable,
        )
