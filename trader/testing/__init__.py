"""Fakes and builders for tests (floor 4: never imported by production code).

- `builders`: valid domain objects with keyword overrides (`make_market`, `make_intent`, `make_arb`, `make_order`,
  `make_intent_record`, `make_order_record`, `market_from_sim`).
- `fake_venue.FakeVenue`: a scripted `Venue`; `memory_store.MemoryStore`: an in-memory `Store`;
  `websockets`: in-memory WebSockets.
"""

from trader.testing.builders import (
    CONDITION,
    NO,
    WALL,
    YES,
    Num,
    make_arb,
    make_intent,
    make_intent_record,
    make_market,
    make_order,
    make_order_record,
    market_from_sim,
    order_id_for,
)

__all__ = [
    "CONDITION",
    "NO",
    "WALL",
    "YES",
    "Num",
    "make_arb",
    "make_intent",
    "make_intent_record",
    "make_market",
    "make_order",
    "make_order_record",
    "market_from_sim",
    "order_id_for",
]
