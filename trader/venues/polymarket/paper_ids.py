"""Order ids for the paper venue, computed as the live venue computes them (`OrderSigner`, EIP-712).

The paper venue does not sign anything itself: it is given an id function (`trader.venues.paper.PaperOrderIdSource`)
and the composition root passes `paper_order_id`, so paper ids look and behave like live ones: "0x" + 64 hex,
deterministic, computed before sending. Each is the EIP-712 digest of the order signed as a limit order with
`PAPER_KEY` (a fixed, publicly known key), the tick size and neg-risk flag of its market (0.01 and not neg risk when
the market is unknown), the salt derived from the client order id (`order_salt`) and the signed timestamp from `ts`,
for the exchange its token belongs to as a live order would be (`OrderSigner`: Exchange V3 for a protocol-v2
position id, where the neg-risk flag does not count).

`PaperOrderIds` gives the same digests for a market lookup, with a random salt and the wall clock by default (like a
client that signs at random), or with the salt and timestamp given (`digest`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal

from trader.domain.intents import OrderIntent
from trader.domain.market import Market
from trader.domain.numbers import ONE, is_on_tick
from trader.venues.polymarket.signing import OrderSigner, keccak256, order_salt

__all__ = ["PAPER_KEY", "PaperOrderIds", "paper_order_id"]

#: The paper signer's key: derived from a public phrase, so it is NOT a secret and holds nothing.
PAPER_KEY = "0x" + keccak256(b"trader paper venue: not a secret, holds nothing").hex()

_UNKNOWN_MARKET_TICK = Decimal("0.01")


@functools.cache
def _paper_signer() -> OrderSigner:
    """Built on first use (not at import), in the thread that signs: the signer keeps per-thread buffers."""
    return OrderSigner(PAPER_KEY)


def _limit_order_id(
    signer: OrderSigner, intent: OrderIntent, market: Market | None, *, salt: int | None, timestamp_ms: int | None
) -> str:
    """The EIP-712 digest of the intent signed as a limit order (the tick and neg-risk flag of its market)."""
    tick = market.tick_size if market is not None else _UNKNOWN_MARKET_TICK
    neg_risk = market.neg_risk if market is not None else False
    price = min(max(intent.price, tick), ONE - tick)
    _, order_id = signer.limit_order_with_id(
        token_id=intent.token_id,
        side=intent.side,
        price=price if is_on_tick(price, tick) else tick,
        size=intent.size,
        tick_size=tick,
        neg_risk=neg_risk,
        expiration=intent.expiration,
        salt=salt,
        timestamp_ms=timestamp_ms,
    )
    return order_id


def paper_order_id(intent: OrderIntent, market: Market | None, *, ts: float) -> str:
    """The paper order id of an intent (a `trader.venues.paper.PaperOrderIdSource`): deterministic, from the client
    order id (salt) and `ts` (wall-clock epoch seconds, the signed timestamp)."""
    return _limit_order_id(
        _paper_signer(), intent, market, salt=order_salt(intent.client_order_id), timestamp_ms=round(ts * 1000)
    )


class PaperOrderIds:
    """Order ids for paper orders, computed like live ones (`OrderSigner` with the public paper key)."""

    def __init__(
        self,
        market_of: Callable[[str], Market | None],
        *,
        salt_source: Callable[[], int] | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        kwargs: dict[str, Callable[[], int]] = {}
        if salt_source is not None:
            kwargs["salt_source"] = salt_source
        if clock_ms is not None:
            kwargs["clock_ms"] = clock_ms
        self._signer = OrderSigner(PAPER_KEY, **kwargs)  # type: ignore[arg-type]
        self._market_of = market_of

    def order_id_for(self, intent: OrderIntent) -> str:
        """A fresh id (random salt, the wall clock), like a client that signs at random."""
        return self.digest(intent)

    def digest(self, intent: OrderIntent, *, salt: int | None = None, timestamp_ms: int | None = None) -> str:
        """The EIP-712 digest of the intent signed as a limit order (the tick and neg-risk flag of its market)."""
        return _limit_order_id(
            self._signer, intent, self._market_of(intent.token_id), salt=salt, timestamp_ms=timestamp_ms
        )
