"""The exchange core of the simulated venue: pure and synchronous, no I/O; every call takes `now` (unix seconds).

What it does, as the real CLOB does (protocol.md §2-§4, §8):
- keeps one matching book per market (complementary) or per token (unlinked markets), price-time priority;
- complementary matching: a BUY YES at p meets a BUY NO at >= 1 - p and mints a pair; a SELL YES meets a SELL NO
  and merges; plain YES/YES or NO/NO trades transfer shares; trades execute at the resting (maker) price;
- checks orders as the venue does (tick grid, price range, minimum size, post-only crossing, FOK/FAK/GTC/GTD, the GTD
  60 s threshold, duplicates, balance reserved by open orders) and answers with the venue's codes and messages;
- charges taker fees `shares × rate × (p(1 − p))^exponent`, floored to 5 decimals;
- moves each trade along its settlement path on a schedule: MATCHED -> MINED -> CONFIRMED, or one a fault chose
  (`SETTLEMENT_PATHS`: MATCHED -> FAILED for a ghost fill; through RETRYING; FAILED after MINED; first
  MATCHED_NOT_BROADCASTED); a FAILED trade reverts the balances. It also expires GTD orders and runs the heartbeat
  dead-man switch, all from `advance(now)`;
- emits `trader.venues.sim.events` to listeners: exactly what the market and user channels publish.

Wallets hold pUSD and shares in base units (6 dp). A wallet seen for the first time is funded with
`ExchangeConfig.initial_collateral` and unlimited allowances, so any key can trade at once.

Extension point for fault injection: `ExchangeHooks` (see `trader.venues.sim.faults`).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Final, Protocol

from trader.domain.numbers import TICK_SIZES, Side
from trader.errors import InputError
from trader.venues.sim.book import MatchingBook, RawChange
from trader.venues.sim.events import (
    BookChanged,
    BookResync,
    LastTradePrice,
    LevelChange,
    MakerOrderView,
    MarketListed,
    MarketResolved,
    OrderEvent,
    OrderView,
    SimEventType,
    TickSizeChanged,
    TradeEvent,
    TradeView,
)
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, SimEvent, SimMarket, pips_of, price_str, units_str

ORDER_TYPES: Final = frozenset({"GTC", "GTD", "FOK", "FAK"})
COLLATERAL: Final = ""  # the asset key of pUSD in a wallet's flows

LIVE: Final = "LIVE"
MATCHED: Final = "MATCHED"
CANCELED: Final = "CANCELED"

TRADE_MATCHED: Final = "MATCHED"
TRADE_MATCHED_NOT_BROADCASTED: Final = "MATCHED_NOT_BROADCASTED"
TRADE_MINED: Final = "MINED"
TRADE_RETRYING: Final = "RETRYING"
TRADE_CONFIRMED: Final = "CONFIRMED"
TRADE_FAILED: Final = "FAILED"

#: The statuses a trade reports, in order, by settlement path (the 2026 statuses, protocol.md §11 item 8). A trade
#: starts in the first; each later one is reached after `mined_after_secs` (CONFIRMED: after
#: `confirmed_after_secs - mined_after_secs`); FAILED reverts the trade's balances.
SETTLEMENT_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "normal": (TRADE_MATCHED, TRADE_MINED, TRADE_CONFIRMED),
    "ghost": (TRADE_MATCHED, TRADE_FAILED),
    "retrying": (TRADE_MATCHED, TRADE_MINED, TRADE_RETRYING, TRADE_MINED, TRADE_CONFIRMED),
    "failed_after_mined": (TRADE_MATCHED, TRADE_MINED, TRADE_FAILED),
    "not_broadcasted": (TRADE_MATCHED_NOT_BROADCASTED, TRADE_MATCHED, TRADE_MINED, TRADE_CONFIRMED),
}

FOK_KILLED_MESSAGE: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
#: production's words, whole (polymarket-client 0.14.0 maps the exact text to `fak_not_filled`, beside the FOK one)
FAK_NO_MATCH_MESSAGE: Final = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
NOT_ENOUGH_BALANCE_MESSAGE: Final = "not enough balance / allowance"


#: owners of the scenario's own orders (its makers, takers, gaps): `sim-maker-...`, `sim-taker`, ...
SCENARIO_OWNER_PREFIX = "sim-"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeConfig:
    """Behaviour of the exchange core. Amounts in base units (1e-6), times in seconds."""

    initial_collateral: int = 10_000 * UNITS_PER_ONE
    allowance: int = 2**256 - 1
    mined_after_secs: float = 1.0
    confirmed_after_secs: float = 3.0
    gtd_threshold_secs: int = 60
    heartbeat_timeout_secs: float = 10.0
    #: the tick becomes 10x finer while a best price is above `1 - tick_fine_edge` or below `tick_fine_edge`
    tick_fine_edge: Decimal = Decimal("0.04")
    resend_book_after_trade: bool = True
    seed: int = 0
    #: Closed orders and settled trades kept for lookups and listings (the oldest go first, beyond these): the sim
    #: runs for days, and its makers requote every step.
    keep_closed_orders: int = 20_000
    keep_settled_trades: int = 20_000
    #: ... of which the scenario's own (its makers' and takers', owners named `sim-...`) at most this many: they are
    #: most of the traffic, and nobody looks them up
    keep_closed_scenario_orders: int = 2_000
    #: settled trades between the scenario's own orders only (its makers filling its noise takers): at most this many
    keep_settled_scenario_trades: int = 2_000


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """An order as the exchange receives it, after authentication and signature checks (or from a scenario)."""

    order_id: str
    owner: str  # API key (or a scenario's maker id)
    maker_address: str  # the wallet (funder) that pays and receives
    token_id: str
    side: Side
    maker_amount: int
    taker_amount: int
    order_type: str = "GTC"
    expiration: int = 0
    post_only: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """A venue rejection: a stable code, the venue's message, and the HTTP status it is answered with."""

    code: str
    message: str
    http_status: int = 400


@dataclass(frozen=True, slots=True)
class Accepted:
    order_id: str
    status: str  # "live" | "matched"
    making_amount: int
    taking_amount: int
    trade_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelResult:
    canceled: tuple[str, ...]
    not_canceled: dict[str, str]


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a condition resolved: the payout of outcome i per share is `numerators[i] / denominator` (the Conditional
    Tokens contract's payout vector): (1, 0)/1, (0, 1)/1, or (1, 1)/2 for 50/50."""

    numerators: tuple[int, int]
    denominator: int
    resolved_at: float

    @property
    def winner(self) -> int | None:
        """The winning outcome's index, None for a 50/50 resolution."""
        if self.numerators == (1, 0):
            return 0
        if self.numerators == (0, 1):
            return 1
        return None

    def payouts(self, units: tuple[int, int]) -> tuple[int, int]:
        """pUSD base units paid for `units` shares of each outcome, per outcome and floored, as the Conditional
        Tokens contract divides (`stake * numerator / denominator` per position)."""
        u0, u1 = units
        n0, n1 = self.numerators
        return u0 * n0 // self.denominator, u1 * n1 // self.denominator


def resolution_of(winner: int | None, now: float) -> Resolution:
    """The resolution where `winner` (0 or 1) takes all, or 50/50 when None."""
    if winner is None:
        return Resolution((1, 1), 2, now)
    if winner not in (0, 1):
        raise InputError("winner", f"expected 0, 1 or None (50/50), got {winner!r}")
    return Resolution((1, 0) if winner == 0 else (0, 1), 1, now)


@dataclass(frozen=True, slots=True)
class CapitalResult:
    """A merge or redemption applied to (or, dry, checked against) a wallet: `revert` is the reason it cannot be
    done (nothing changed), else `collateral` pUSD base units were paid out for `burned` shares of each outcome."""

    revert: str | None = None
    collateral: int = 0
    burned: tuple[int, int] = (0, 0)


#: The Conditional Tokens contract's revert reasons, as the chain reports them.
REVERT_NOT_RESOLVED: Final = "result for condition not received yet"
REVERT_UNKNOWN_CONDITION: Final = "condition not prepared yet"
REVERT_INSUFFICIENT_BALANCE: Final = "ERC1155: insufficient balance for transfer"


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    ok: bool
    heartbeat_id: str


class ExchangeHooks(Protocol):
    """Where fault injection reaches into matching. Every method is consulted once per relevant action."""

    def on_submit(self, request: OrderRequest) -> Rejected | None:
        """A rejection to return instead of processing `request`, or None."""
        ...

    def fill_cap(self, request: OrderRequest) -> int | None:
        """At most this many base units of `request` may match on entry (a partial fill), or None."""
        ...

    def ghost_trade(self, request: OrderRequest) -> bool:
        """Should trades of this taker order end FAILED instead of MINED/CONFIRMED?"""
        ...

    def settlement_path(self, request: OrderRequest) -> str | None:
        """The settlement path (a key of `SETTLEMENT_PATHS`) of this taker order's trades, or None for "normal"."""
        ...


class NoHooks:
    def on_submit(self, request: OrderRequest) -> Rejected | None:
        return None

    def fill_cap(self, request: OrderRequest) -> int | None:
        return None

    def ghost_trade(self, request: OrderRequest) -> bool:
        return False

    def settlement_path(self, request: OrderRequest) -> str | None:
        return None


# ---------------------------------------------------------------------------------------------------------------
# State records


@dataclass(slots=True, eq=False)
class SimOrder:
    order_id: str
    owner: str
    maker_address: str
    market: str
    token_id: str
    outcome_index: int
    side: Side
    limit_pips: int  # in the order's own token terms
    original: int  # base units of shares
    order_type: str
    expiration: int
    post_only: bool
    created_at: float
    book_key: int
    book_bid: bool
    book_price: int
    matched: int = 0
    status: str = LIVE
    trade_ids: list[str] = field(default_factory=list)
    reserved: int = 0  # base units of pUSD (BUY) or shares (SELL) currently held back for this order

    @property
    def remaining(self) -> int:
        return self.original - self.matched


@dataclass(slots=True, eq=False)
class MakerFill:
    order: SimOrder
    units: int
    price_pips: int


@dataclass(slots=True, eq=False)
class SimTrade:
    trade_id: str
    market: str
    taker: SimOrder
    asset_id: str
    price_pips: int  # taker's token terms
    units: int
    fee: int
    fee_rate_bps: int
    makers: list[MakerFill]
    match_time: float
    status: str = TRADE_MATCHED
    last_update: float = 0.0
    transaction_hash: str = ""
    ghost: bool = False
    path: tuple[str, ...] = SETTLEMENT_PATHS["normal"]  # the statuses it goes through; `status` is path[step]
    step: int = 0
    flows: list[tuple[str, str, int]] = field(default_factory=list)  # (wallet key, asset, delta) for a revert

    def involves(self, owner: str) -> bool:
        return self.taker.owner == owner or any(f.order.owner == owner for f in self.makers)


@dataclass(slots=True, eq=False)
class Wallet:
    address: str
    collateral: int
    shares: dict[str, int] = field(default_factory=dict)
    reserved_collateral: int = 0
    reserved_shares: dict[str, int] = field(default_factory=dict)
    cost: dict[str, int] = field(default_factory=dict)  # pUSD paid for the shares held (cost basis)
    bought: dict[str, int] = field(default_factory=dict)
    realized: dict[str, int] = field(default_factory=dict)

    def available_collateral(self) -> int:
        return self.collateral - self.reserved_collateral

    def snapshot(self) -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
        """What merges and redemptions change (collateral, shares, cost basis, realized), to undo them."""
        return self.collateral, dict(self.shares), dict(self.cost), dict(self.realized)

    def restore(self, snapshot: tuple[int, dict[str, int], dict[str, int], dict[str, int]]) -> None:
        self.collateral, shares, cost, realized = snapshot
        self.shares, self.cost, self.realized = dict(shares), dict(cost), dict(realized)

    def available_shares(self, token_id: str) -> int:
        return self.shares.get(token_id, 0) - self.reserved_shares.get(token_id, 0)


@dataclass(frozen=True, slots=True)
class BookSummary:
    """One token's book as REST /book and the WS `book` frame show it (best levels LAST in each list)."""

    market: str
    asset_id: str
    timestamp: str
    hash: str
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]
    min_order_size: str
    tick_size: str
    neg_risk: bool
    last_trade_price: str

    def rest_json(self) -> dict[str, object]:
        """REST /book: the fields the official client hashes, in its order."""
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": self.timestamp,
            "hash": self.hash,
            "bids": [{"price": p, "size": s} for p, s in self.bids],
            "asks": [{"price": p, "size": s} for p, s in self.asks],
            "min_order_size": self.min_order_size,
            "tick_size": self.tick_size,
            "neg_risk": self.neg_risk,
            "last_trade_price": self.last_trade_price,
        }


@dataclass(slots=True, eq=False)
class _MarketState:
    market: SimMarket
    books: list[MatchingBook[SimOrder]]
    tick: Decimal
    last_trade: list[int]  # pips per outcome
    last_side: list[str] = field(default_factory=lambda: ["", ""])  # the last trade's side per outcome ("": none)
    pending_trades: list[LastTradePrice] = field(default_factory=list)
    traded: bool = False


@dataclass(slots=True)
class _Heartbeat:
    heartbeat_id: str
    last_at: float


def mul_pips(units: int, pips: int) -> int:
    """`units × pips / 10000`, rounded half to even, in base units."""
    quotient, remainder = divmod(units * pips, PIPS_PER_ONE)
    twice = 2 * remainder
    if twice > PIPS_PER_ONE or (twice == PIPS_PER_ONE and quotient % 2):
        quotient += 1
    return quotient


def _ceil_pips(units: int, pips: int) -> int:
    return -((-units * pips) // PIPS_PER_ONE)


def summary_hash(summary: BookSummary) -> str:
    """SHA-1 of the compact JSON summary with `hash` empty, as the official client recomputes it."""
    text = json.dumps(replace(summary, hash="").rest_json(), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _ms(now: float) -> int:
    return int(now * 1000)


class Exchange:
    """The simulated CLOB. Not thread-safe; the Trio shell calls it from one thread."""

    def __init__(
        self,
        markets: Iterable[SimMarket],
        events: Iterable[SimEvent] = (),
        *,
        config: ExchangeConfig | None = None,
        hooks: ExchangeHooks | None = None,
    ) -> None:
        self.config = config or ExchangeConfig()
        self.hooks: ExchangeHooks = hooks or NoHooks()
        self._markets: dict[str, _MarketState] = {}
        self._by_token: dict[str, tuple[_MarketState, int]] = {}
        self.events: dict[str, SimEvent] = {}
        self._orders: dict[str, SimOrder] = {}
        self._trades: dict[str, SimTrade] = {}
        self._trade_order: list[str] = []
        # `_compact` looks again past these sizes: a quarter more than it left, and at least a quarter of what the
        # scenario's own may keep (so that a small allowance is not looked at on every step)
        self._least_growth = max(
            64, min(self.config.keep_closed_scenario_orders, self.config.keep_settled_scenario_trades) // 4
        )
        self._compact_orders_at = self._least_growth
        self._compact_trades_at = self._least_growth
        self._wallets: dict[str, Wallet] = {}
        self._listeners: list[Callable[[SimEventType], None]] = []
        self._timers: list[tuple[float, int, str, str]] = []  # (due, seq, kind, id)
        self._seq = 0
        self._heartbeats: dict[str, _Heartbeat] = {}
        self._touched: dict[str, _MarketState] = {}
        self._resolutions: dict[str, Resolution] = {}
        self.fees_collected = 0
        for market in markets:
            self.add_market(market)
        for event in events:
            self.events[event.event_id] = event

    # -- setup -----------------------------------------------------------------------------------------------

    def add_market(self, market: SimMarket) -> None:
        if market.condition_id in self._markets:
            raise InputError("condition_id", f"market {market.condition_id} already listed")
        books: list[MatchingBook[SimOrder]] = [MatchingBook()]
        if not market.complementary:
            books.append(MatchingBook())
        half = PIPS_PER_ONE // 2
        state = _MarketState(market=market, books=books, tick=market.tick_size, last_trade=[half, half])
        self._markets[market.condition_id] = state
        for index, token in enumerate(market.token_ids):
            if token in self._by_token:
                raise InputError("token_ids", f"token {token} already listed")
            self._by_token[token] = (state, index)

    def list_market(self, market: SimMarket, now: float, *, event: SimEvent | None = None) -> None:
        """List a new market while the sim runs (and its Gamma event, if given): it appears in Gamma and the CLOB
        at once and is announced on the market channel (`new_market`)."""
        self.add_market(market)
        if event is not None:
            self.events[event.event_id] = event
        self._emit(MarketListed(market.condition_id, _ms(now)))

    # -- lifecycle -------------------------------------------------------------------------------------------

    def resolution(self, condition_id: str) -> Resolution | None:
        return self._resolutions.get(condition_id)

    def resolve(self, condition_id: str, winner: int | None, now: float) -> Resolution:
        """Resolve a market: `winner` 0 (YES) or 1 (NO) takes all, None resolves it 50/50. The exchange stops taking
        its orders, cancels the resting ones, and announces it (`market_resolved`); Gamma and the CLOB market show it
        closed, with the payouts and the winner; its shares redeem from now on."""
        state = self._markets.get(condition_id)
        if state is None:
            raise InputError("condition_id", f"no market {condition_id}")
        if condition_id in self._resolutions:
            raise InputError("condition_id", f"market {condition_id} is already resolved")
        resolution = resolution_of(winner, now)
        try:
            for order in self.open_orders(market=condition_id):
                self._cancel_order(order, now)
            market = replace(state.market, closed=True, active=False, accepting_orders=False)
            state.market = market
            self._resolutions[condition_id] = resolution
        finally:
            self._flush(now)
        won = resolution.winner
        self._emit(
            MarketResolved(
                market=condition_id,
                gamma_id=market.gamma_id,
                asset_ids=market.token_ids,
                winning_asset_id="" if won is None else market.token_ids[won],
                winning_outcome="" if won is None else market.outcomes[won],
                timestamp_ms=_ms(now),
            )
        )
        return resolution

    # -- merges and redemptions (what the chain does for the Conditional Tokens contract) ---------------------

    def merge(self, address: str, condition_id: str, units: int, *, dry_run: bool = False) -> CapitalResult:
        """Merge `units` complete sets of `condition_id` held by `address` back into `units` pUSD base units. Shares
        that open SELL orders reserve cannot be merged (the CLOB would lose them under its orders)."""
        state = self._markets.get(condition_id)
        if state is None:
            return CapitalResult(REVERT_UNKNOWN_CONDITION)
        if units <= 0:
            return CapitalResult("merge amount must be positive")
        wallet = self.wallet(address)
        tokens = state.market.token_ids
        if any(wallet.available_shares(t) < units for t in tokens):
            return CapitalResult(REVERT_INSUFFICIENT_BALANCE)
        if not dry_run:
            self._pay_out(wallet, tokens, (units, units), (units // 2, units - units // 2))
        return CapitalResult(None, units, (units, units))

    def redeem(
        self, address: str, condition_id: str, units: tuple[int, int] | None = None, *, dry_run: bool = False
    ) -> CapitalResult:
        """Redeem the shares of a resolved condition at its payout: all `address` holds of both outcomes (the
        Conditional Tokens contract's `redeemPositions`), or `units` of each (the neg-risk adapter's)."""
        state = self._markets.get(condition_id)
        if state is None:
            return CapitalResult(REVERT_UNKNOWN_CONDITION)
        resolution = self._resolutions.get(condition_id)
        if resolution is None:
            return CapitalResult(REVERT_NOT_RESOLVED)
        wallet = self.wallet(address)
        tokens = state.market.token_ids
        held = (wallet.available_shares(tokens[0]), wallet.available_shares(tokens[1]))
        burned = held if units is None else units
        if any(b < 0 or b > h for b, h in zip(burned, held, strict=True)):
            return CapitalResult(REVERT_INSUFFICIENT_BALANCE)
        proceeds = resolution.payouts(burned)
        if not dry_run:
            self._pay_out(wallet, tokens, burned, proceeds)
        return CapitalResult(None, sum(proceeds), burned)

    def _pay_out(
        self, wallet: Wallet, tokens: tuple[str, str], burned: tuple[int, int], proceeds: tuple[int, int]
    ) -> None:
        """Burn shares for pUSD; `proceeds` per token also move the Data API's cost basis and realized profit."""
        wallet.collateral += sum(proceeds)
        for token, units, paid in zip(tokens, burned, proceeds, strict=True):
            if units == 0:
                continue
            held = wallet.shares.get(token, 0)
            basis = wallet.cost.get(token, 0) * units // held if held else 0
            wallet.cost[token] = wallet.cost.get(token, 0) - basis
            wallet.realized[token] = wallet.realized.get(token, 0) + paid - basis
            wallet.shares[token] = held - units

    def add_listener(self, listener: Callable[[SimEventType], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[SimEventType], None]) -> None:
        self._listeners.remove(listener)

    def fund(self, address: str, *, collateral: int | None = None, shares: dict[str, int] | None = None) -> Wallet:
        """Create or top up a wallet (scenarios seed their makers this way)."""
        wallet = self.wallet(address)
        if collateral is not None:
            wallet.collateral = collateral
        for token, units in (shares or {}).items():
            wallet.shares[token] = units
        return wallet

    # -- queries ---------------------------------------------------------------------------------------------

    @property
    def markets(self) -> list[SimMarket]:
        return [s.market for s in self._markets.values()]

    def market(self, condition_id: str) -> SimMarket | None:
        state = self._markets.get(condition_id)
        return state.market if state else None

    def market_of_token(self, token_id: str) -> SimMarket | None:
        found = self._by_token.get(token_id)
        return found[0].market if found else None

    def tick_size(self, token_id: str) -> Decimal:
        return self._by_token[token_id][0].tick

    def wallet(self, address: str) -> Wallet:
        key = address.lower()
        wallet = self._wallets.get(key)
        if wallet is None:
            wallet = self._wallets[key] = Wallet(address=key, collateral=self.config.initial_collateral)
        return wallet

    def wallets(self) -> list[Wallet]:
        """Every wallet the exchange has seen."""
        return list(self._wallets.values())

    def order(self, order_id: str) -> SimOrder | None:
        return self._orders.get(order_id)

    def orders(self) -> Iterator[SimOrder]:
        return iter(self._orders.values())

    def open_orders(
        self, owner: str | None = None, *, market: str | None = None, asset_id: str | None = None
    ) -> list[SimOrder]:
        return [
            o
            for o in self._orders.values()
            if o.status == LIVE
            and (owner is None or o.owner == owner)
            and (market is None or o.market == market)
            and (asset_id is None or o.token_id == asset_id)
        ]

    def trade(self, trade_id: str) -> SimTrade | None:
        return self._trades.get(trade_id)

    def trades(self, owner: str | None = None) -> list[SimTrade]:
        """In match order; with `owner`, the trades it took part in (as taker or maker)."""
        found = (self._trades[t] for t in self._trade_order)
        return [t for t in found if owner is None or t.involves(owner)]

    def best_prices(self, token_id: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) of a token's book, in that token's pips."""
        state, index = self._by_token[token_id]
        if not state.market.complementary:
            book = state.books[index]
            return book.best_bid(), book.best_ask()
        book = state.books[0]
        bid, ask = book.best_bid(), book.best_ask()
        if index == 0:
            return bid, ask
        return (PIPS_PER_ONE - ask if ask is not None else None, PIPS_PER_ONE - bid if bid is not None else None)

    def last_trade_pips(self, token_id: str) -> int:
        state, index = self._by_token[token_id]
        return state.last_trade[index]

    def last_trade_side(self, token_id: str) -> str:
        """The side of a token's last trade, as that token's book saw it (BUY or SELL), or "" before its first."""
        state, index = self._by_token[token_id]
        return state.last_side[index]

    def book_levels(self, token_id: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) of a token's book as (pips, units), each ascending by price."""
        state, index = self._by_token[token_id]
        if not state.market.complementary:
            book = state.books[index]
            return book.levels(True), book.levels(False)
        book = state.books[0]
        bids, asks = book.levels(True), book.levels(False)
        if index == 0:
            return bids, asks
        mirror_bids = [(PIPS_PER_ONE - p, s) for p, s in reversed(asks)]
        mirror_asks = [(PIPS_PER_ONE - p, s) for p, s in reversed(bids)]
        return mirror_bids, mirror_asks

    def book_summary(self, token_id: str, now: float) -> BookSummary:
        state, index = self._by_token[token_id]
        bids, asks = self.book_levels(token_id)
        market = state.market
        unhashed = BookSummary(
            market=market.condition_id,
            asset_id=token_id,
            timestamp=str(_ms(now)),
            hash="",
            bids=tuple((price_str(p), units_str(s)) for p, s in bids),
            asks=tuple((price_str(p), units_str(s)) for p, s in reversed(asks)),
            min_order_size=format(market.min_order_size, "f"),
            tick_size=format(state.tick, "f"),
            neg_risk=market.neg_risk,
            last_trade_price=price_str(state.last_trade[index]),
        )
        return replace(unhashed, hash=summary_hash(unhashed))

    # -- orders ----------------------------------------------------------------------------------------------

    def submit(self, request: OrderRequest, now: float) -> Accepted | Rejected:
        """Check and process one order; market events are published before this returns."""
        try:
            return self._submit(request, now)
        finally:
            self._flush(now)

    def _submit(self, request: OrderRequest, now: float) -> Accepted | Rejected:
        found = self._by_token.get(request.token_id)
        if found is None:
            return Rejected("MARKET_NOT_READY", "the market is not yet ready to process new orders")
        state, outcome = found
        market = state.market
        if not market.accepting_orders or market.closed:
            return Rejected("MARKET_NOT_READY", "the market is not yet ready to process new orders")
        injected = self.hooks.on_submit(request)
        if injected is not None:
            return injected
        oid = request.order_id
        if oid in self._orders:
            return Rejected("INVALID_ORDER_DUPLICATED", f"order {oid} is invalid. Duplicated.")
        order_type = request.order_type
        if order_type not in ORDER_TYPES:
            return Rejected("INVALID_ORDER_ERROR", f"invalid order type {order_type!r}")
        if request.post_only and order_type not in ("GTC", "GTD"):
            return Rejected("INVALID_POST_ONLY_ORDER_TYPE", "invalid post-only order: only GTC and GTD orders")
        if request.maker_amount <= 0 or request.taker_amount <= 0:
            return Rejected("INVALID_ORDER_ERROR", "invalid amounts")
        is_buy = request.side is Side.BUY
        size = request.taker_amount if is_buy else request.maker_amount
        cash = request.maker_amount if is_buy else request.taker_amount
        ratio = Decimal(cash) / Decimal(size)
        tick = state.tick
        tick_pips = pips_of(tick, "tick_size")
        limit_type = order_type in ("GTC", "GTD")
        if limit_type:
            exact = ratio * PIPS_PER_ONE
            if exact != exact.to_integral_value() or int(exact) % tick_pips:
                return Rejected(
                    "INVALID_ORDER_MIN_TICK_SIZE",
                    f"order {oid} is invalid. Price ({_ratio_text(ratio)}) breaks minimum tick size rule: {tick}",
                )
            limit = int(exact)
        else:
            scaled = ratio * PIPS_PER_ONE
            limit = int(scaled.to_integral_value(rounding=ROUND_FLOOR))
            if not is_buy and scaled != limit:
                limit += 1  # a SELL never accepts less than it signed for
        if not tick_pips <= limit <= PIPS_PER_ONE - tick_pips:
            return Rejected(
                "INVALID_ORDER_ERROR",
                f"order {oid} is invalid. Price ({_ratio_text(ratio)}) out of range: min {tick} - max {1 - tick}",
            )
        if limit_type and Decimal(size) < market.min_order_size * UNITS_PER_ONE:
            return Rejected(
                "INVALID_ORDER_MIN_SIZE",
                f"order {oid} is invalid. Size ({units_str(size)}) lower than the minimum: "
                f"{format(market.min_order_size, 'f')}",
            )
        if order_type == "GTD" and request.expiration <= now + self.config.gtd_threshold_secs:
            return Rejected("INVALID_ORDER_EXPIRATION", "invalid expiration")

        book_key, book_bid, book_price = self._placement(market, outcome, request.side, limit)
        book = state.books[book_key]
        marketable = book.marketable(book_bid, book_price)
        wallet = self.wallet(request.maker_address)
        if is_buy:
            needed = cash + (self._fee_bound(market, size, limit) if marketable else 0)
            if wallet.available_collateral() < needed:
                return Rejected("INVALID_ORDER_NOT_ENOUGH_BALANCE", NOT_ENOUGH_BALANCE_MESSAGE)
        elif wallet.available_shares(request.token_id) < size:
            return Rejected("INVALID_ORDER_NOT_ENOUGH_BALANCE", NOT_ENOUGH_BALANCE_MESSAGE)
        if request.post_only and marketable:
            return Rejected("INVALID_POST_ONLY_ORDER", "invalid post-only order: order crosses book")

        order = SimOrder(
            order_id=oid,
            owner=request.owner,
            maker_address=wallet.address,
            market=market.condition_id,
            token_id=request.token_id,
            outcome_index=outcome,
            side=request.side,
            limit_pips=limit,
            original=size,
            order_type=order_type,
            expiration=request.expiration,
            post_only=request.post_only,
            created_at=now,
            book_key=book_key,
            book_bid=book_bid,
            book_price=book_price,
        )
        cap = self.hooks.fill_cap(request)
        matchable = size if cap is None else max(0, min(size, cap))
        if order_type == "FOK" and (matchable < size or book.available(book_bid, book_price, size) < size):
            order.status = CANCELED
            self._orders[oid] = order
            self._emit_order("CANCELLATION", order, now, status=f"CANCELED_{FOK_KILLED_MESSAGE}")
            return Rejected("FOK_ORDER_NOT_FILLED_ERROR", FOK_KILLED_MESSAGE)
        if order_type == "FAK" and (matchable == 0 or not marketable):
            order.status = CANCELED
            self._orders[oid] = order
            self._emit_order("CANCELLATION", order, now)
            return Rejected("FAK_ORDER_NOT_FILLED_ERROR", FAK_NO_MATCH_MESSAGE)

        self._orders[oid] = order
        self._emit_order("PLACEMENT", order, now)
        ghost = self.hooks.ghost_trade(request)
        path = SETTLEMENT_PATHS["ghost" if ghost else self.hooks.settlement_path(request) or "normal"]
        trades, making, taking = self._match(state, order, matchable, now, ghost=ghost, path=path)
        if order.remaining > 0 and limit_type and book.marketable(book_bid, book_price):
            # Only a fill cap (a partial-fill fault) stops matching early: the makers it spared "pulled their
            # quotes" at that moment, so the remainder rests without crossing the book.
            while book.marketable(book_bid, book_price):
                level = book.best(not book_bid)
                assert level is not None
                for maker in list(book.queue(not book_bid, level)):
                    self._cancel_order(maker, now)
        if order.remaining > 0:
            if limit_type:
                self._rest(state, order, now)
            else:
                order.status = CANCELED
                self._emit_order("CANCELLATION", order, now)
        status = "live" if order.status == LIVE else "matched"
        return Accepted(oid, status, making, taking, tuple(t.trade_id for t in trades))

    @staticmethod
    def _placement(market: SimMarket, outcome: int, side: Side, limit: int) -> tuple[int, bool, int]:
        """(book index, rests on the bid side, price in that book's terms) of an order."""
        is_buy = side is Side.BUY
        if not market.complementary:
            return outcome, is_buy, limit
        if outcome == 0:
            return 0, is_buy, limit
        return 0, not is_buy, PIPS_PER_ONE - limit

    def _fee_bound(self, market: SimMarket, units: int, limit: int) -> int:
        if not market.fees.enabled:
            return 0
        worst = min(limit, PIPS_PER_ONE // 2)
        return self._fee(market, units, worst)

    @staticmethod
    def _fee(market: SimMarket, units: int, pips: int) -> int:
        if not market.fees.enabled:
            return 0
        p = Decimal(pips) / PIPS_PER_ONE
        raw = Decimal(units) * market.fees.rate * (p * (1 - p)) ** market.fees.exponent
        return int((raw / 10).to_integral_value(rounding=ROUND_FLOOR)) * 10

    def _rest(self, state: _MarketState, order: SimOrder, now: float) -> None:
        state.books[order.book_key].add(order)
        self._touched[state.market.condition_id] = state
        self._reserve(order)
        if order.order_type == "GTD":
            self._schedule(order.expiration - self.config.gtd_threshold_secs, "expire", order.order_id)

    def _reserve(self, order: SimOrder) -> None:
        wallet = self.wallet(order.maker_address)
        if order.status != LIVE:
            wanted = 0
        elif order.side is Side.BUY:
            wanted = _ceil_pips(order.remaining, order.limit_pips)
        else:
            wanted = order.remaining
        delta = wanted - order.reserved
        order.reserved = wanted
        if order.side is Side.BUY:
            wallet.reserved_collateral += delta
        else:
            wallet.reserved_shares[order.token_id] = wallet.reserved_shares.get(order.token_id, 0) + delta

    def _match(
        self, state: _MarketState, taker: SimOrder, matchable: int, now: float, *, ghost: bool, path: tuple[str, ...]
    ) -> tuple[list[SimTrade], int, int]:
        market = state.market
        book = state.books[taker.book_key]
        self._touched[market.condition_id] = state
        left = matchable
        trades: list[SimTrade] = []
        making = taking = 0
        while left > 0:
            level = book.best(not taker.book_bid)
            if level is None or not book.crosses(taker.book_bid, taker.book_price, level):
                break
            queue = book.queue(not taker.book_bid, level)
            taker_price = self._own_price(market, taker.outcome_index, level)
            trade = SimTrade(
                trade_id=self._new_id("trade"),
                market=market.condition_id,
                taker=taker,
                asset_id=taker.token_id,
                price_pips=taker_price,
                units=0,
                fee=0,
                fee_rate_bps=market.fees.base_fee_bps,
                makers=[],
                match_time=now,
                last_update=now,
                ghost=ghost,
                status=path[0],
                path=path,
            )
            taker_cash = 0
            while queue and left > 0:
                maker = queue[0]
                units = min(maker.remaining, left)
                taker_cash += self._settle_fill(state, trade, maker, units, level)
                maker.matched += units
                left -= units
                trade.units += units
                maker_price = self._own_price(market, maker.outcome_index, level)
                trade.makers.append(MakerFill(maker, units, maker_price))
                if maker.remaining == 0:
                    maker.status = MATCHED
                book.reduce(maker, units)
                self._reserve(maker)
                maker.trade_ids.append(trade.trade_id)
            taker.matched += trade.units
            taker.trade_ids.append(trade.trade_id)
            fee = self._fee(market, trade.units, taker_price)
            if fee:
                trade.fee = fee
                self._flow(trade, taker.maker_address, COLLATERAL, -fee)
                self.fees_collected += fee
            if taker.side is Side.BUY:
                making += taker_cash
                taking += trade.units
            else:
                making += trade.units
                taking += taker_cash
            if taker.remaining == 0:
                taker.status = MATCHED
            self._record_trade(state, trade, now)
            for fill in trade.makers:
                self._emit_order("UPDATE", fill.order, now)
            self._emit_order("UPDATE", taker, now)
            trades.append(trade)
        return trades, making, taking

    @staticmethod
    def _own_price(market: SimMarket, outcome: int, book_price: int) -> int:
        if not market.complementary or outcome == 0:
            return book_price
        return PIPS_PER_ONE - book_price

    def _settle_fill(self, state: _MarketState, trade: SimTrade, maker: SimOrder, units: int, level: int) -> int:
        """Move pUSD and shares for one maker fill; returns the taker's pUSD amount (paid or received)."""
        market = state.market
        taker = trade.taker
        if taker.outcome_index == maker.outcome_index:
            price = self._own_price(market, taker.outcome_index, level)
            amount = mul_pips(units, price)
            buyer, seller = (taker, maker) if taker.side is Side.BUY else (maker, taker)
            self._trade_shares(trade, buyer, units, amount)
            self._trade_shares(trade, seller, -units, -amount)
            return amount
        yes_amount = mul_pips(units, level)  # complementary: the book is in YES terms
        amounts = {0: yes_amount, 1: units - yes_amount}
        sign = 1 if taker.side is Side.BUY else -1  # both BUY: mint a pair; both SELL: merge one
        for party in (taker, maker):
            self._trade_shares(trade, party, sign * units, sign * amounts[party.outcome_index])
        return amounts[taker.outcome_index]

    def _trade_shares(self, trade: SimTrade, order: SimOrder, units: int, cash: int) -> None:
        """`units` > 0: `order`'s wallet receives shares and pays `cash`; < 0: it delivers shares, receives -cash."""
        wallet = self.wallet(order.maker_address)
        token = order.token_id
        held = wallet.shares.get(token, 0)
        if units > 0:
            wallet.cost[token] = wallet.cost.get(token, 0) + cash
            wallet.bought[token] = wallet.bought.get(token, 0) + units
        elif held > 0:
            basis = wallet.cost.get(token, 0) * -units // held
            wallet.cost[token] = wallet.cost.get(token, 0) - basis
            wallet.realized[token] = wallet.realized.get(token, 0) + (-cash - basis)
        self._flow(trade, wallet.address, token, units)
        self._flow(trade, wallet.address, COLLATERAL, -cash)

    def _flow(self, trade: SimTrade, wallet_key: str, asset: str, delta: int) -> None:
        wallet = self._wallets[wallet_key]
        if asset == COLLATERAL:
            wallet.collateral += delta
        else:
            wallet.shares[asset] = wallet.shares.get(asset, 0) + delta
        trade.flows.append((wallet_key, asset, delta))

    def _record_trade(self, state: _MarketState, trade: SimTrade, now: float) -> None:
        self._trades[trade.trade_id] = trade
        self._trade_order.append(trade.trade_id)
        market = state.market
        index = trade.taker.outcome_index
        state.last_trade[index] = trade.price_pips
        state.last_side[index] = trade.taker.side.value
        if market.complementary:  # the mirror: buying YES at p is selling NO at 1 - p
            state.last_trade[1 - index] = PIPS_PER_ONE - trade.price_pips
            state.last_side[1 - index] = (Side.SELL if trade.taker.side is Side.BUY else Side.BUY).value
        state.traded = True
        state.pending_trades.append(
            LastTradePrice(
                market=market.condition_id,
                asset_id=trade.asset_id,
                price=price_str(trade.price_pips),
                size=units_str(trade.units),
                side=trade.taker.side.value,
                fee_rate_bps=str(trade.fee_rate_bps),
                timestamp_ms=_ms(now),
            )
        )
        self._schedule(now + self.config.mined_after_secs, "settle", trade.trade_id)
        self._emit(TradeEvent(self.trade_view(trade), _ms(now)))

    # -- cancels ---------------------------------------------------------------------------------------------

    def cancel(self, owner: str, order_ids: Iterable[str], now: float) -> CancelResult:
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        try:
            for oid in dict.fromkeys(order_ids):
                order = self._orders.get(oid)
                if order is None or order.owner != owner:
                    not_canceled[oid] = "order not found"
                elif order.status != LIVE:
                    not_canceled[oid] = "already canceled or matched"
                else:
                    self._cancel_order(order, now)
                    canceled.append(oid)
        finally:
            self._flush(now)
        return CancelResult(tuple(canceled), not_canceled)

    def cancel_all(
        self, owner: str, now: float, *, market: str | None = None, asset_id: str | None = None
    ) -> CancelResult:
        ids = [o.order_id for o in self.open_orders(owner, market=market, asset_id=asset_id)]
        return self.cancel(owner, ids, now)

    def _cancel_order(self, order: SimOrder, now: float, status: str = CANCELED) -> None:
        state = self._markets[order.market]
        state.books[order.book_key].remove(order)
        self._touched[order.market] = state
        order.status = CANCELED
        self._reserve(order)
        self._emit_order("CANCELLATION", order, now, status=status)

    # -- heartbeats ------------------------------------------------------------------------------------------

    def heartbeat(self, owner: str, heartbeat_id: str, now: float) -> HeartbeatResult:
        """Start ("") or continue a dead-man session. A stale id is refused with the current one."""
        current = self._heartbeats.get(owner)
        if heartbeat_id and (current is None or heartbeat_id != current.heartbeat_id):
            return HeartbeatResult(False, current.heartbeat_id if current else "")
        new_id = self._new_id("heartbeat")
        self._heartbeats[owner] = _Heartbeat(new_id, now)
        self._schedule(now + self.config.heartbeat_timeout_secs, "heartbeat", owner)
        return HeartbeatResult(True, new_id)

    def heartbeat_owners(self) -> list[str]:
        """The owners (API keys) with a dead-man session in force: their orders go when their heartbeats stop."""
        return sorted(self._heartbeats)

    # -- time ------------------------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Run everything due at or before `now`: settlement steps, GTD expiries, heartbeat timeouts."""
        try:
            while self._timers and self._timers[0][0] <= now:
                due, _, kind, key = heapq.heappop(self._timers)
                if kind == "settle":
                    self._settle_step(key, due)
                elif kind == "expire":
                    order = self._orders.get(key)  # closed before it expired, and maybe forgotten since
                    if order is not None and order.status == LIVE:
                        self._cancel_order(order, due)
                elif kind == "heartbeat":
                    session = self._heartbeats.get(key)
                    if session is not None and session.last_at + self.config.heartbeat_timeout_secs <= due:
                        del self._heartbeats[key]
                        for order in self.open_orders(key):
                            self._cancel_order(order, due)
        finally:
            self._flush(now)
        self._compact()

    def _compact(self) -> None:
        """Forget the oldest closed orders and settled trades beyond what `config` keeps. Runs when a quarter more
        has piled up since it last ran, so its cost (one pass) is spread over many
        orders, and what is held stays near the kept amounts (the scenario's own, most of the traffic, are not left
        to pile up to the clients' larger allowance)."""
        config = self.config
        if len(self._orders) > self._compact_orders_at:
            closed = [oid for oid, order in self._orders.items() if order.status != LIVE]  # insertion: oldest first
            scenario = [oid for oid in closed if self._orders[oid].owner.startswith(SCENARIO_OWNER_PREFIX)]
            clients = [oid for oid in closed if not self._orders[oid].owner.startswith(SCENARIO_OWNER_PREFIX)]
            for oid in scenario[: max(0, len(scenario) - config.keep_closed_scenario_orders)]:
                del self._orders[oid]
            for oid in clients[: max(0, len(clients) - config.keep_closed_orders)]:
                del self._orders[oid]
            self._compact_orders_at = len(self._orders) + max(len(self._orders) // 4, self._least_growth)
        if len(self._trade_order) > self._compact_trades_at:
            settled = [t for t in self._trade_order if self._trades[t].step + 1 >= len(self._trades[t].path)]
            scenario = [t for t in settled if _scenario_only(self._trades[t])]
            clients = [t for t in settled if not _scenario_only(self._trades[t])]
            drop = set(scenario[: max(0, len(scenario) - config.keep_settled_scenario_trades)])
            drop.update(clients[: max(0, len(clients) - config.keep_settled_trades)])
            if drop:
                for trade_id in drop:
                    del self._trades[trade_id]
                self._trade_order = [t for t in self._trade_order if t not in drop]
            self._compact_trades_at = len(self._trade_order) + max(len(self._trade_order) // 4, self._least_growth)

    def _settle_step(self, trade_id: str, now: float) -> None:
        """The trade's next status on its path (and the one after that scheduled)."""
        trade = self._trades[trade_id]
        if trade.step + 1 >= len(trade.path):
            return
        trade.step += 1
        trade.status = trade.path[trade.step]
        if trade.status == TRADE_FAILED:
            for wallet_key, asset, delta in reversed(trade.flows):
                wallet = self._wallets[wallet_key]
                if asset == COLLATERAL:
                    wallet.collateral -= delta
                else:
                    wallet.shares[asset] = wallet.shares.get(asset, 0) - delta
            self.fees_collected -= trade.fee
        elif trade.status == TRADE_MINED and not trade.transaction_hash:
            trade.transaction_hash = "0x" + hashlib.sha256(f"{self.config.seed}:tx:{trade_id}".encode()).hexdigest()
        if trade.step + 1 < len(trade.path):
            config = self.config
            confirming = trade.path[trade.step + 1] == TRADE_CONFIRMED and trade.status == TRADE_MINED
            delay = config.confirmed_after_secs - config.mined_after_secs if confirming else config.mined_after_secs
            self._schedule(now + max(0.0, delay), "settle", trade_id)
        trade.last_update = now
        self._emit(TradeEvent(self.trade_view(trade), _ms(now)))

    def _schedule(self, due: float, kind: str, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, key))

    def _new_id(self, kind: str) -> str:
        self._seq += 1
        digest = hashlib.sha256(f"{self.config.seed}:{kind}:{self._seq}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    # -- publishing ------------------------------------------------------------------------------------------

    def _emit(self, event: SimEventType) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _emit_order(self, kind: str, order: SimOrder, now: float, *, status: str | None = None) -> None:
        view = self.order_view(order)
        self._emit(OrderEvent(kind, view, status or view.status, _ms(now)))

    def _flush(self, now: float) -> None:
        """Publish the market-channel events of the operation that just ended."""
        touched, self._touched = self._touched, {}
        for state in touched.values():
            market = state.market
            ts = _ms(now)
            trades, state.pending_trades = state.pending_trades, []
            for trade_event in trades:
                self._emit(trade_event)
            raw = [(key, change) for key, book in enumerate(state.books) for change in book.take_changes()]
            if raw:
                hashes = {t: self.book_summary(t, now).hash for t in market.token_ids}
                changes = tuple(c for key, change in raw for c in self._level_changes(market, key, change, hashes))
                self._emit(BookChanged(market.condition_id, ts, changes))
            self._check_tick(state, now)
            if state.traded and self.config.resend_book_after_trade:
                self._emit(BookResync(market.condition_id, market.token_ids, ts))
            state.traded = False

    @staticmethod
    def _level_changes(market: SimMarket, key: int, change: RawChange, hashes: dict[str, str]) -> list[LevelChange]:
        bid, ask = change.best_bid, change.best_ask
        token = market.token_ids[key]
        own = LevelChange(
            asset_id=token,
            price=price_str(change.price),
            size=units_str(change.size),
            side="BUY" if change.is_bid else "SELL",
            hash=hashes[token],
            best_bid=price_str(bid) if bid is not None else "0",
            best_ask=price_str(ask) if ask is not None else "1",
        )
        if not market.complementary:
            return [own]
        no_token = market.token_ids[1]
        mirror = LevelChange(
            asset_id=no_token,
            price=price_str(PIPS_PER_ONE - change.price),
            size=own.size,
            side="SELL" if change.is_bid else "BUY",
            hash=hashes[no_token],
            best_bid=price_str(PIPS_PER_ONE - ask) if ask is not None else "0",
            best_ask=price_str(PIPS_PER_ONE - bid) if bid is not None else "1",
        )
        return [own, mirror]

    def _check_tick(self, state: _MarketState, now: float) -> None:
        market = state.market
        fine = market.tick_size / 10
        if fine not in TICK_SIZES:
            return
        edge = pips_of(self.config.tick_fine_edge, "tick_fine_edge")
        extreme = False
        for book in state.books:
            for price in (book.best_bid(), book.best_ask()):
                if price is not None and (price < edge or price > PIPS_PER_ONE - edge):
                    extreme = True
        wanted = fine if extreme else market.tick_size
        if wanted == state.tick:
            return
        old, state.tick = state.tick, wanted
        for token in market.token_ids:
            self._emit(TickSizeChanged(market.condition_id, token, format(old, "f"), format(wanted, "f"), _ms(now)))

    # -- views -----------------------------------------------------------------------------------------------

    def order_view(self, order: SimOrder) -> OrderView:
        market = self._markets[order.market].market
        return OrderView(
            order_id=order.order_id,
            owner=order.owner,
            maker_address=order.maker_address,
            market=order.market,
            asset_id=order.token_id,
            side=order.side.value,
            price=price_str(order.limit_pips),
            original_size=units_str(order.original),
            size_matched=units_str(order.matched),
            outcome=market.outcomes[order.outcome_index],
            order_type=order.order_type,
            status=order.status,
            expiration=str(order.expiration),
            associate_trades=tuple(order.trade_ids),
            created_at=int(order.created_at),
        )

    def trade_view(self, trade: SimTrade) -> TradeView:
        market = self._markets[trade.market].market
        taker = trade.taker
        fee_bps = str(trade.fee_rate_bps)
        return TradeView(
            trade_id=trade.trade_id,
            taker_order_id=taker.order_id,
            market=trade.market,
            asset_id=trade.asset_id,
            side=taker.side.value,
            size=units_str(trade.units),
            price=price_str(trade.price_pips),
            fee_rate_bps=fee_bps,
            fee=units_str(trade.fee),
            status=trade.status,
            match_time=trade.match_time,
            last_update=trade.last_update,
            outcome=market.outcomes[taker.outcome_index],
            owner=taker.owner,
            maker_address=taker.maker_address,
            transaction_hash=trade.transaction_hash,
            maker_orders=tuple(
                MakerOrderView(
                    order_id=fill.order.order_id,
                    owner=fill.order.owner,
                    maker_address=fill.order.maker_address,
                    matched_amount=units_str(fill.units),
                    price=price_str(fill.price_pips),
                    fee_rate_bps=fee_bps,
                    asset_id=fill.order.token_id,
                    outcome=market.outcomes[fill.order.outcome_index],
                    side=fill.order.side.value,
                )
                for fill in trade.makers
            ),
        )


def _ratio_text(ratio: Decimal) -> str:
    return format(ratio.normalize(), "f") if ratio == ratio.quantize(Decimal("1e-16")) else format(ratio, ".16f")


def _scenario_only(trade: SimTrade) -> bool:
    """A trade between the scenario's own orders: no client took part."""
    return trade.taker.owner.startswith(SCENARIO_OWNER_PREFIX) and all(
        fill.order.owner.startswith(SCENARIO_OWNER_PREFIX) for fill in trade.makers
    )
