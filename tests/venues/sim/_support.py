"""Builders shared by the sim tests."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TypeVar

from trader.domain.numbers import Side
from trader.venues.sim.events import SimEventType
from trader.venues.sim.exchange import Exchange, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import FeeSchedule, SimMarket, make_market

_ids = itertools.count(1)
E = TypeVar("E")
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def market(
    key: str = "m1",
    *,
    complementary: bool = True,
    fees: FeeSchedule | None = None,
    tick: str = "0.01",
) -> SimMarket:
    return make_market(key, question=f"Question {key}", complementary=complementary, fees=fees, tick_size=Decimal(tick))


def order(
    token: str,
    side: Side,
    price: str,
    size: str,
    *,
    owner: str = "alice",
    address: str | None = None,
    order_type: str = "GTC",
    expiration: int = 0,
    post_only: bool = False,
    order_id: str | None = None,
) -> OrderRequest:
    """A limit order in decimal price/size, converted to signed amounts as the clients do."""
    units = int(Decimal(size) * 1_000_000)
    cash = int(Decimal(size) * Decimal(price) * 1_000_000)
    maker, taker = (cash, units) if side is Side.BUY else (units, cash)
    return OrderRequest(
        order_id=order_id or f"0x{next(_ids):064x}",
        owner=owner,
        maker_address=address or f"0x{abs(hash(owner)) % 16**40:040x}",
        token_id=token,
        side=side,
        maker_amount=maker,
        taker_amount=taker,
        order_type=order_type,
        expiration=expiration,
        post_only=post_only,
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[SimEventType] = []

    def __call__(self, event: SimEventType) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def clear(self) -> None:
        self.events.clear()


def exchange(*markets: SimMarket, **config: object) -> tuple[Exchange, Recorder]:
    ex = Exchange(markets or (market(),), config=ExchangeConfig(**config))  # type: ignore[arg-type]
    recorder = Recorder()
    ex.add_listener(recorder)
    return ex, recorder
