"""Markets of the simulated venue: binary markets, their YES/NO tokens, and the (neg-risk) events that group them.

Identifiers look like the real venue's: condition ids are `0x` + 64 hex, token ids are ~77-digit decimal strings
(uint256 ERC-1155 position ids), Gamma ids are small decimal strings. They are derived from a key string with
SHA-256, so a seeded scenario produces the same ids on every run.

A market made with `protocol_v2=True` lives in the protocol-v2 namespace (protocol.md §11 item 9), as the venue's
"Poly V2" markets do: its condition id is 31 bytes with the module id (1 binary, 2 neg risk) in the first byte, and
its token ids are *position ids*, the condition id followed by the outcome index byte, whose bits 40..103 are zero.
Orders for them are signed for Exchange V3, and the REST side verifies them so
(`trader.venues.polymarket.signing.order_domain`).

Prices inside the sim are integers in *pips* (1 pip = 0.0001 pUSD per share, the finest tick the venue uses), so
a YES price `p` and its NO mirror `10000 - p` are exact. Quantities are integers in base units (1e-6 shares or
pUSD), as on chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from trader.domain.numbers import TICK_SIZES
from trader.errors import InputError

PIPS_PER_ONE = 10_000
UNITS_PER_ONE = 1_000_000
_PIP = Decimal("0.0001")
_UNIT = Decimal("0.000001")


def pips_of(price: Decimal, field_name: str = "price") -> int:
    """An exact price in pips; a price finer than 0.0001 is an error."""
    scaled = price * PIPS_PER_ONE
    if scaled != scaled.to_integral_value():
        raise InputError(field_name, f"{price} is finer than 0.0001")
    return int(scaled)


def price_str(pips: int) -> str:
    """The venue's price text: shortest exact decimal ("0.5", "0.52", "0.965")."""
    return _plain(Decimal(pips) * _PIP)


def units_str(units: int) -> str:
    """A size or amount in base units as the venue prints it ("100", "940.21")."""
    return _plain(Decimal(units) * _UNIT)


def _plain(value: Decimal) -> str:
    if not value:
        return "0"
    return format(value.normalize(), "f")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def hex_id(key: str) -> str:
    """`0x` + 64 hex, deterministic in `key` (condition ids, question ids, order ids of simulated makers)."""
    return "0x" + _digest(key).hex()


def token_id_of(key: str) -> str:
    """A 77-digit decimal token id, deterministic in `key`."""
    number = int.from_bytes(_digest(key), "big") % (9 * 10**76) + 10**76
    return str(number)


#: Module ids of protocol-v2 position ids: the first byte of the condition id and the top byte of the position id.
MODULE_BINARY = 1
MODULE_NEG_RISK = 2


def v2_condition_id_of(key: str, module: int) -> str:
    """A protocol-v2 condition id, deterministic in `key`: 31 bytes, `module` in the first, and zero in bytes 19..26,
    where a position id's reserved bits 40..103 fall."""
    raw = bytearray(_digest(key)[:31])
    raw[0] = module
    raw[19:27] = bytes(8)
    return "0x" + raw.hex()


def position_id_of(condition_id: str, outcome_index: int) -> str:
    """The position id of outcome `outcome_index` of a protocol-v2 condition: its 31 bytes and the index byte."""
    return str(int.from_bytes(bytes.fromhex(condition_id[2:]) + bytes((outcome_index,)), "big"))


def gamma_id_of(key: str, base: int = 500_000) -> str:
    return str(base + int.from_bytes(_digest(key)[:4], "big") % 1_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeSchedule:
    """Taker fee `shares × rate × (p × (1 − p))^exponent` (protocol.md §8); makers pay nothing."""

    rate: Decimal = Decimal(0)
    exponent: int = 1

    @property
    def base_fee_bps(self) -> int:
        return int(self.rate * 10_000)

    @property
    def enabled(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SimMarket:
    """One binary market: condition id, YES/NO tokens and the venue parameters the sim enforces."""

    condition_id: str
    question_id: str
    gamma_id: str
    question: str
    slug: str
    token_ids: tuple[str, str]
    outcomes: tuple[str, str] = ("Yes", "No")
    tick_size: Decimal = Decimal("0.01")
    min_order_size: Decimal = Decimal(5)
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    description: str = ""
    end_date_iso: str = "2030-12-31T00:00:00Z"
    event_id: str = ""
    group_item_title: str = ""
    #: True on the real venue: YES and NO orders meet in one mirrored book (BUY YES + BUY NO mint a pair, SELL YES +
    #: SELL NO merge). False makes an *unlinked* market with two independent books, where a YES ask + NO ask < 1 gap
    #: can rest; scenarios use it to exercise sum-to-100 paths. The wire format is identical.
    complementary: bool = True
    active: bool = True
    closed: bool = False
    accepting_orders: bool = True

    def __post_init__(self) -> None:
        if self.tick_size not in TICK_SIZES:
            raise InputError("tick_size", f"unsupported tick size {self.tick_size}")
        if len(set(self.token_ids)) != 2:
            raise InputError("token_ids", "a binary market has two distinct tokens")
        if self.min_order_size < 0:
            raise InputError("min_order_size", "must not be negative")

    @property
    def tick_pips(self) -> int:
        return pips_of(self.tick_size, "tick_size")

    def outcome_index(self, token_id: str) -> int:
        return self.token_ids.index(token_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimEvent:
    """A Gamma event grouping markets. A neg-risk event links its markets through the neg-risk adapter.

    `complete` is False when the listed outcomes do not cover every possibility (Gamma `negRiskAugmented`), so
    buying every YES does not guarantee a payout of 1."""

    event_id: str
    slug: str
    title: str
    market_ids: tuple[str, ...]
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    complete: bool = True
    description: str = ""


def make_market(
    key: str,
    *,
    question: str,
    tick_size: Decimal = Decimal("0.01"),
    min_order_size: Decimal = Decimal(5),
    fees: FeeSchedule | None = None,
    neg_risk: bool = False,
    neg_risk_market_id: str = "",
    event_id: str = "",
    group_item_title: str = "",
    complementary: bool = True,
    outcomes: tuple[str, str] = ("Yes", "No"),
    protocol_v2: bool = False,
) -> SimMarket:
    """A market whose ids all derive from `key` (reproducible); `protocol_v2` puts it in the protocol-v2 namespace
    (a 31-byte condition id, position ids as token ids: orders signed for Exchange V3)."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in question.lower()).split())[:80] or key
    if protocol_v2:
        condition_id = v2_condition_id_of(f"condition:{key}", MODULE_NEG_RISK if neg_risk else MODULE_BINARY)
        token_ids = (position_id_of(condition_id, 0), position_id_of(condition_id, 1))
    else:
        condition_id = hex_id(f"condition:{key}")
        token_ids = (token_id_of(f"token:{key}:0"), token_id_of(f"token:{key}:1"))
    return SimMarket(
        condition_id=condition_id,
        question_id=hex_id(f"question:{key}"),
        gamma_id=gamma_id_of(f"gamma:{key}"),
        question=question,
        slug=slug,
        token_ids=token_ids,
        outcomes=outcomes,
        tick_size=tick_size,
        min_order_size=min_order_size,
        neg_risk=neg_risk,
        neg_risk_market_id=neg_risk_market_id,
        fees=fees or FeeSchedule(),
        description=f"Simulated market: {question}",
        event_id=event_id,
        group_item_title=group_item_title,
        complementary=complementary,
    )


def make_neg_risk_event(
    key: str,
    *,
    title: str,
    outcomes: tuple[str, ...],
    complete: bool = True,
    tick_size: Decimal = Decimal("0.01"),
    fees: FeeSchedule | None = None,
    protocol_v2: bool = False,
) -> tuple[SimEvent, tuple[SimMarket, ...]]:
    """A neg-risk event with one binary market per named outcome (`protocol_v2`: in the protocol-v2 namespace, module
    2; still neg risk, but its orders are signed for Exchange V3, where the neg-risk flag does not count)."""
    if len(outcomes) < 2:
        raise InputError("outcomes", "a neg-risk event needs at least two outcomes")
    event_id = gamma_id_of(f"event:{key}", base=100_000)
    nr_id = hex_id(f"negrisk:{key}")
    markets = tuple(
        make_market(
            f"{key}:{i}",
            question=f"{title}: {name}?",
            tick_size=tick_size,
            fees=fees,
            neg_risk=True,
            neg_risk_market_id=nr_id,
            event_id=event_id,
            group_item_title=name,
            protocol_v2=protocol_v2,
        )
        for i, name in enumerate(outcomes)
    )
    event = SimEvent(
        event_id=event_id,
        slug="-".join(title.lower().split()),
        title=title,
        market_ids=tuple(m.condition_id for m in markets),
        neg_risk=True,
        neg_risk_market_id=nr_id,
        complete=complete,
        description=f"Simulated neg-risk event: {title}",
    )
    return event, markets
