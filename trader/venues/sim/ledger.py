"""What the sim's clients did, kept for the sim's admin endpoint `GET /_sim/ledger?address=0x...`: the ground truth a
harness compares an engine's records with (`python -m bench chaos`).

The exchange forgets closed orders and settled trades beyond its bounds (its makers requote all day); the ledger
keeps, per client wallet (the order's maker address, lower-case), every order the venue took and every refusal of
an order id, up to `limit` orders in all (the oldest go first). It holds the exchange's own order objects, so what
it shows (matched, status, trades) is the exchange's state, not a copy. Scenario participants (owners `sim-...`)
are not recorded.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from trader.domain.numbers import Side
from trader.venues.sim.exchange import SCENARIO_OWNER_PREFIX, Exchange, SimOrder, SimTrade
from trader.venues.sim.markets import price_str, units_str
from trader.venues.sim.wire import JsonObject


class ClientLedger:
    def __init__(self, exchange: Exchange, *, limit: int = 200_000) -> None:
        self.exchange = exchange
        self.limit = limit
        self._orders: OrderedDict[str, tuple[str, SimOrder]] = OrderedDict()  # order id -> (address, order)
        self._refusals: dict[str, Counter[str]] = {}  # address -> "order id: message" -> count
        self._trades: dict[str, SimTrade] = {}  # trade id -> trade (kept while one of our orders is kept)

    def placed(self, owner: str, address: str, order_id: str, accepted: bool, message: str = "") -> None:
        """One order of a `POST /order(s)` answered: taken by the venue (`accepted`), or refused with `message`."""
        if owner.startswith(SCENARIO_OWNER_PREFIX):
            return
        address = address.lower()
        order = self.exchange.order(order_id) if accepted else None
        if order is None:
            self._refusals.setdefault(address, Counter())[f"{order_id}: {message[:120]}"] += 1
            return
        if order_id not in self._orders:
            self._orders[order_id] = (address, order)
            while len(self._orders) > self.limit:
                self._orders.popitem(last=False)

    def _trades_of(self, order: SimOrder) -> list[JsonObject]:
        out: list[JsonObject] = []
        for trade_id in order.trade_ids:
            trade = self._trades.get(trade_id) or self.exchange.trade(trade_id)
            if trade is None:
                continue
            self._trades[trade_id] = trade  # the exchange may forget it later
            if trade.taker is order:
                units, pips = trade.units, trade.price_pips
            else:
                fills = [f for f in trade.makers if f.order is order]
                units, pips = sum(f.units for f in fills), fills[0].price_pips if fills else 0
            out.append(
                {
                    "trade_id": trade_id,
                    "size": units_str(units),
                    "price": price_str(pips),
                    "status": trade.status,
                    "role": "TAKER" if trade.taker is order else "MAKER",
                }
            )
        return out

    def account(self, address: str) -> JsonObject:
        """Everything recorded for `address`: its wallet (pUSD and shares), its orders with their trades, refusals."""
        address = address.lower()
        wallet = self.exchange.wallet(address)
        orders: list[JsonObject] = []
        for order_id, (owner_address, order) in self._orders.items():
            if owner_address != address:
                continue
            orders.append(
                {
                    "order_id": order_id,
                    "token_id": order.token_id,
                    "side": order.side.value if isinstance(order.side, Side) else str(order.side),
                    "price": price_str(order.limit_pips),
                    "original_size": units_str(order.original),
                    "size_matched": units_str(order.matched),
                    "status": order.status,
                    "order_type": order.order_type,
                    "created_at": order.created_at,
                    "trades": self._trades_of(order),
                }
            )
        shares = {token: units_str(units) for token, units in sorted(wallet.shares.items()) if units}
        resolved = sorted(
            token
            for token in shares
            if (market := self.exchange.market_of_token(token)) is not None
            and self.exchange.resolution(market.condition_id) is not None
        )
        return {
            "address": address,
            "collateral": units_str(wallet.collateral),
            "collateral_units": wallet.collateral,
            "shares": shares,
            "resolved_tokens": resolved,  # of those held: their market resolved (a loser's shares stay, worthless)
            "orders": orders,
            "refusals": dict(self._refusals.get(address, Counter())),
        }
