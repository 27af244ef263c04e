"""`trader reconcile`: compare what the store believes with what the venue says for our key, and optionally fix the
store to the venue's truth.

    trader reconcile                              # the store of TRADER_DATABASE_URL, the venue of TRADER_ENDPOINTS__*
    trader reconcile --database-url sqlite:/var/lib/trader/trader.sqlite3
    trader reconcile --fix                        # update the store to what the venue says (never the other way)

The venue is asked through the live adapter, as `trader run --live` would (TRADER_PRIVATE_KEY, and the API
credentials TRADER_API_* or derived from the key; endpoints from TRADER_ENDPOINTS__*, Polymarket's by default, a
`trader sim` when pointed at one). Nothing is sent to the venue but reads: no order, no cancel, no heartbeat.

Compared, and printed as one JSON report on standard output:
- orders open on one side only, and orders open on both sides whose fills, price or size differ;
- positions per token (shares held): the store's `positions` against the venue's balance of every token that the
  store or the venue's orders and trades mention;
- trades (our fills, keyed by trade id and order id) missing on either side, or with another status, price or size.
  A trade the store holds as FAILED does not count as missing at the venue.

Trades still settling are not differences. Right after a stop, the venue is still settling our last trades (MATCHED,
then MINED, then CONFIRMED on chain): their status moves on while the store keeps the last one the engine heard.
So, when the only differences about a trade are its status and the venue's is not final yet, or about a token's
shares and its trades at the venue are not final yet (by at most their size), reconcile waits for them, re-reading
the venue every `SETTLE_POLL_SECS` for at most `--settle-secs` (default 60; 0 does not wait). Those that settle
drop out; those still settling then are reported apart, under `"settling"`, and do not count as differences. A trade
the store holds at an earlier step (MATCHED, MINED) that the venue has CONFIRMED is reported under
`"trades": {"status_behind": [...]}`, and does not count either: nothing is wrong but the store's news (`--fix` writes
the final status).

`--fix` writes the venue's view into the store and lists each change under `"fixed"`: orders only the venue has
open are recorded; orders only the store has open get the venue's final state (or CANCELED with reason
NOT_AT_VENUE when the venue does not know them); fills are corrected; trades only the venue has are recorded,
trades only the store has are marked FAILED, status changes are applied; positions take the venue's share counts
(keeping the average cost). The comparison then runs again and is reported under `"after_fix"`.

Exit status: 0 the store and the venue agree (after the fix, with --fix), trades still settling apart, 1 they differ
or the venue or the store could not be read, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Final

import trio

from trader.commands.checks import DATABASE_FLAGS, add_env_file_argument, env_file
from trader.domain.enums import OrderStatus, TradeStatus
from trader.domain.numbers import ZERO, Side
from trader.domain.positions import COST_QUANTUM, Position
from trader.engine.restart import trade_record_of
from trader.errors import ConfigError
from trader.infra.groups import collapse_group
from trader.infra.logging import configure_logging
from trader.integrations.store.base import (
    OrderRecord,
    Store,
    StoreError,
    StoreScope,
    StoreScopeMismatch,
    TradeRecord,
    TradingMode,
    check_scope,
    secs_to_ns,
)
from trader.integrations.store.open import open_store
from trader.integrations.store.postgres import redact_url
from trader.integrations.store.urls import sqlite_path
from trader.settings import Settings, VenueKind, default_database_url, load_settings
from trader.venues.base import VenueOrder, VenueOrderStatus, VenueTrade
from trader.venues.errors import VenueError, VenueRequestError
from trader.venues.polymarket.rest import AssetType
from trader.venues.polymarket.venue import PolymarketVenue, PolymarketVenueSettings, open_polymarket_venue

EXIT_AGREE: Final = 0
EXIT_DIFFER: Final = 1
#: Each phase (connect, read the venue, read the store, fix) must finish within this.
PHASE_TIMEOUT_SECS: Final = 120.0
#: How long reconcile waits, by default, for trades still settling at the venue; and how often it asks meanwhile.
SETTLE_SECS: Final = 60.0
SETTLE_POLL_SECS: Final = 1.0
NOT_AT_VENUE: Final = "NOT_AT_VENUE"
RECONCILED: Final = "RECONCILED"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--database-url", metavar="URL", help="sqlite:PATH or postgresql://... (default TRADER_DATABASE_URL)"
    )
    parser.add_argument("--fix", action="store_true", help="update the store to the venue's truth, then compare again")
    parser.add_argument(
        "--settle-secs",
        type=_settle_secs,
        default=SETTLE_SECS,
        metavar="SECS",
        help=f"wait at most this long for trades still settling at the venue (default {SETTLE_SECS:g}; 0: no wait)",
    )
    add_env_file_argument(parser)


def _settle_secs(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 3600:  # an hour: beyond it, waiting is not what the operator wants
        raise argparse.ArgumentTypeError(f"must be within [0, 3600], got {text}")
    return value


# -- connecting (shared with `trader flatten`) ---------------------------------------------------------------------


@asynccontextmanager
async def open_live_venue(settings: Settings, command: str) -> AsyncIterator[PolymarketVenue]:
    """The live adapter on the configured endpoints, WITHOUT the dead-man heartbeat: an operator tool must not arm
    a switch that cancels every order of the account when the tool exits."""
    venue_settings = PolymarketVenueSettings(
        rest_url=settings.endpoints.rest_url, ws_user_url=settings.endpoints.ws_user_url, heartbeat_enabled=False
    )
    signer = settings.keys.signer(f"trader {command}")
    credentials = settings.keys.credentials()
    async with open_polymarket_venue(venue_settings, signer, credentials=credentials) as venue:
        yield venue


def database_url(given: str | None, settings: Settings) -> str:
    """The live store's URL: an existing SQLite file or a PostgreSQL URL (`sqlite_path` refuses any other scheme).
    Unset, the default database of live trading on Polymarket's endpoints (where these tools connect)."""
    url = given or settings.run.database_url or default_database_url(live=True, venue=VenueKind.POLYMARKET)
    path = sqlite_path(url)
    if path is not None and not path.is_file():  # opening it would create an empty store that "differs" from all
        raise ConfigError(f"no database at {path}: give --database-url or TRADER_DATABASE_URL")
    return url


async def check_live_store(store: Store, settings: Settings, url: str) -> None:
    """The operator tools compare and fix LIVE records only: a store that keeps paper records (or another venue's or
    wallet's) is refused (a `ConfigError`: the wrong database was named). A store that keeps no scope yet (older than
    scopes) is taken as is."""
    kept = await store.load_scope()
    if kept is None:
        return
    wallet = settings.keys.signer("the operator tools").funder.lower()
    wanted = StoreScope(mode=TradingMode.LIVE, venue=VenueKind.POLYMARKET.value, wallet=wallet)
    try:
        check_scope(kept, wanted, database=redact_url(url), fix="Name this account's live store with --database-url.")
    except StoreScopeMismatch as exc:  # the wrong database named: a setting to fix (exit 2), not a database down
        raise ConfigError(str(exc)) from None


async def venue_shares(venue: PolymarketVenue, tokens: Iterable[str]) -> tuple[dict[str, Decimal], list[str]]:
    """Shares held per token (zeros kept) and the tokens the venue does not know (404: counted as 0 shares)."""
    shares: dict[str, Decimal] = {}
    unknown: list[str] = []
    for token in sorted(set(tokens)):
        try:
            shares[token] = (await venue.rest.balance_allowance(AssetType.CONDITIONAL, token)).balance
        except VenueRequestError as exc:
            if exc.status != 404:
                raise
            shares[token] = ZERO
            unknown.append(token)
    return shares, unknown


# -- the comparison (pure) -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreView:
    open_orders: Sequence[OrderRecord]
    trades: Sequence[TradeRecord]
    positions: Mapping[str, Position]


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueView:
    open_orders: Sequence[VenueOrder]
    trades: Sequence[VenueTrade]
    shares: Mapping[str, Decimal]
    unknown_tokens: Sequence[str] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionDiff:
    token_id: str
    store: Decimal
    venue: Decimal
    unsettled_trades: int  # venue trades of this token not yet CONFIRMED/FAILED: a likely cause of a gap


@dataclass(frozen=True, slots=True, kw_only=True)
class Differences:
    orders_only_in_store: tuple[OrderRecord, ...] = ()
    orders_only_at_venue: tuple[VenueOrder, ...] = ()
    orders_mismatched: tuple[tuple[OrderRecord, VenueOrder], ...] = ()
    positions: tuple[PositionDiff, ...] = ()
    trades_only_in_store: tuple[TradeRecord, ...] = ()
    trades_only_at_venue: tuple[VenueTrade, ...] = ()
    trades_mismatched: tuple[tuple[TradeRecord, VenueTrade], ...] = ()

    @property
    def agree(self) -> bool:
        return not any(getattr(self, f.name) for f in dataclasses.fields(self))

    def to_json(self) -> dict[str, object]:
        return {
            "agree": self.agree,
            "orders": {
                "open_only_in_store": [_order_json(o) for o in self.orders_only_in_store],
                "open_only_at_venue": [_order_json(o) for o in self.orders_only_at_venue],
                "mismatched": [
                    {"order_id": s.order_id, "store": _order_json(s), "venue": _order_json(v)}
                    for s, v in self.orders_mismatched
                ],
            },
            "positions": {
                "mismatched": [
                    {
                        "token_id": p.token_id,
                        "store": decimal_text(p.store),
                        "venue": decimal_text(p.venue),
                        "difference": decimal_text(p.venue - p.store),
                        "unsettled_trades_at_venue": p.unsettled_trades,
                    }
                    for p in self.positions
                ]
            },
            "trades": {
                "only_in_store": [_trade_json(t) for t in self.trades_only_in_store],
                "only_at_venue": [_trade_json(t) for t in self.trades_only_at_venue],
                "mismatched": [
                    {
                        "trade_id": s.trade_id,
                        "order_id": s.order_id,
                        "store": _trade_json(s),
                        "venue": _trade_json(v),
                    }
                    for s, v in self.trades_mismatched
                ],
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Settling:
    """What settlement in progress explains: not differences (see the module docstring)."""

    trades: tuple[tuple[TradeRecord, VenueTrade], ...] = ()  # only the status differs; the venue's is not final
    positions: tuple[PositionDiff, ...] = ()  # the token's trades at the venue are not final and cover the gap
    status_behind: tuple[tuple[TradeRecord, VenueTrade], ...] = ()  # stored MATCHED/MINED, CONFIRMED at the venue

    @property
    def in_flight(self) -> bool:
        """Whether waiting may help: something still settles at the venue."""
        return bool(self.trades or self.positions)


def set_apart_settling(diff: Differences, venue: VenueView) -> tuple[Differences, Settling]:
    """`diff` without what settlement in progress explains, and that part."""
    settling: list[tuple[TradeRecord, VenueTrade]] = []
    behind: list[tuple[TradeRecord, VenueTrade]] = []
    mismatched: list[tuple[TradeRecord, VenueTrade]] = []
    for s, v in diff.trades_mismatched:
        same_fill = (s.side, s.price, s.size) == (v.side, v.price, v.size)
        if same_fill and s.status is not TradeStatus.FAILED and not v.status.is_terminal:
            settling.append((s, v))
        elif same_fill and not s.status.is_terminal and v.status is TradeStatus.CONFIRMED:
            behind.append((s, v))
        else:
            mismatched.append((s, v))
    disputed = {t.token_id for t in (*diff.trades_only_in_store, *(s for s, _ in mismatched))}
    disputed |= {t.token_id for t in diff.trades_only_at_venue}
    in_flight: dict[str, Decimal] = {}
    for t in venue.trades:
        if not t.status.is_terminal:
            in_flight[t.token_id] = in_flight.get(t.token_id, ZERO) + t.size
    positions: list[PositionDiff] = []
    settling_positions: list[PositionDiff] = []
    for p in diff.positions:
        explained = p.token_id not in disputed and abs(p.venue - p.store) <= in_flight.get(p.token_id, ZERO)
        (settling_positions if explained else positions).append(p)
    rest = dataclasses.replace(diff, trades_mismatched=tuple(mismatched), positions=tuple(positions))
    return rest, Settling(trades=tuple(settling), positions=tuple(settling_positions), status_behind=tuple(behind))


def settling_json(settling: Settling, waited_secs: float) -> dict[str, object]:
    return {
        "waited_secs": round(waited_secs, 1),
        "trades": [
            {"trade_id": s.trade_id, "order_id": s.order_id, "store": str(s.status), "venue": str(v.status)}
            for s, v in settling.trades
        ],
        "positions": [
            {
                "token_id": p.token_id,
                "store": decimal_text(p.store),
                "venue": decimal_text(p.venue),
                "unsettled_trades_at_venue": p.unsettled_trades,
            }
            for p in settling.positions
        ],
    }


def decimal_text(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros: 10.000000 (from base units) and 10 print alike."""
    return format(value.normalize(), "f") if value else "0"


def _order_json(o: OrderRecord | VenueOrder) -> dict[str, object]:
    """An order of either side; the store's also names its client order id."""
    client = {"client_order_id": o.client_order_id} if isinstance(o, OrderRecord) else {}
    return {
        "order_id": o.order_id,
        **client,
        "token_id": o.token_id,
        "side": str(o.side),
        "price": decimal_text(o.price),
        "size": decimal_text(o.original_size),
        "size_matched": decimal_text(o.size_matched),
        "status": str(o.status),
    }


def _trade_json(t: TradeRecord | VenueTrade) -> dict[str, object]:
    return {
        "trade_id": t.trade_id,
        "order_id": t.order_id,
        "token_id": t.token_id,
        "side": str(t.side),
        "price": decimal_text(t.price),
        "size": decimal_text(t.size),
        "status": str(t.status),
    }


def compare(store: StoreView, venue: VenueView) -> Differences:
    """What differs between the store's and the venue's view. Decimals compare by value (0.5 == 0.50)."""
    venue_open = {o.order_id: o for o in venue.open_orders}
    store_open = {o.order_id: o for o in store.open_orders}
    mismatched_orders = tuple(
        (s, venue_open[s.order_id])
        for s in store.open_orders
        if s.order_id in venue_open and _order_differs(s, venue_open[s.order_id])
    )
    venue_trades = {(t.trade_id, t.order_id): t for t in venue.trades}
    store_trades = {(t.trade_id, t.order_id): t for t in store.trades}
    mismatched_trades = tuple(
        (s, venue_trades[key])
        for key, s in store_trades.items()
        if key in venue_trades and _trade_differs(s, venue_trades[key])
    )
    unsettled: dict[str, int] = {}
    for t in venue.trades:
        if not t.status.is_terminal:
            unsettled[t.token_id] = unsettled.get(t.token_id, 0) + 1
    positions = []
    for token in sorted(set(store.positions) | set(venue.shares)):
        held = store.positions[token].quantity if token in store.positions else ZERO
        at_venue = venue.shares.get(token, ZERO)
        if held != at_venue:
            positions.append(
                PositionDiff(token_id=token, store=held, venue=at_venue, unsettled_trades=unsettled.get(token, 0))
            )
    return Differences(
        orders_only_in_store=tuple(o for o in store.open_orders if o.order_id not in venue_open),
        orders_only_at_venue=tuple(o for o in venue.open_orders if o.order_id not in store_open),
        orders_mismatched=mismatched_orders,
        positions=tuple(positions),
        trades_only_in_store=tuple(
            t for key, t in store_trades.items() if key not in venue_trades and t.status is not TradeStatus.FAILED
        ),
        trades_only_at_venue=tuple(t for key, t in venue_trades.items() if key not in store_trades),
        trades_mismatched=mismatched_trades,
    )


def _order_differs(s: OrderRecord, v: VenueOrder) -> bool:
    return (s.side, s.price, s.original_size, s.size_matched) != (v.side, v.price, v.original_size, v.size_matched)


def _trade_differs(s: TradeRecord, v: VenueTrade) -> bool:
    return (s.side, s.price, s.size, s.status) != (v.side, v.price, v.size, v.status)


def order_status(v: VenueOrder) -> OrderStatus:
    """The domain status of an order as the venue reports it."""
    filled = v.size_matched >= v.original_size
    if v.status is VenueOrderStatus.MATCHED or (v.status is VenueOrderStatus.CANCELED and filled):
        return OrderStatus.FILLED
    if v.status is VenueOrderStatus.CANCELED:
        return OrderStatus.CANCELED
    return OrderStatus.PARTIALLY_FILLED if v.size_matched > ZERO else OrderStatus.ACCEPTED


# -- fixing the store ----------------------------------------------------------------------------------------------


async def fix_store(
    store: Store, venue: PolymarketVenue, diff: Differences, venue_view: VenueView, *, now_ns: int
) -> list[dict[str, object]]:
    """Write the venue's truth into the store; one entry per change made."""
    changes: list[dict[str, object]] = []
    await _fix_orders(store, venue, diff, changes, now_ns)
    await _fix_trades(store, diff, changes, now_ns)
    stored = {p.token_id: p for p in await store.load_positions()}
    for p in diff.positions:
        position = _position_at(stored.get(p.token_id), p.token_id, p.venue, venue_view.trades)
        await store.record_position(position, ts_ns=now_ns)
        changes.append(
            {
                "change": "position_set",
                "token_id": p.token_id,
                "quantity": decimal_text(p.venue),
                "was": decimal_text(p.store),
            }
        )
    return changes


async def _fix_orders(
    store: Store, venue: PolymarketVenue, diff: Differences, changes: list[dict[str, object]], now_ns: int
) -> None:
    conditions = {token: m.condition_id for m in await store.load_markets() for token in m.token_ids}
    for v in diff.orders_only_at_venue:
        await store.record_order(
            OrderRecord(
                order_id=v.order_id,
                client_order_id=None,
                strategy=None,
                condition_id=conditions.get(v.token_id),
                token_id=v.token_id,
                side=v.side,
                price=v.price,
                original_size=v.original_size,
                size_matched=v.size_matched,
                order_type=v.order_type,
                status=order_status(v),
                reason=RECONCILED,
                created_at_ns=secs_to_ns(v.ts),
                updated_at_ns=now_ns,
            ),
            reason=RECONCILED,
        )
        changes.append({"change": "order_recorded", "order_id": v.order_id, "status": str(order_status(v))})
    for s in diff.orders_only_in_store:
        found = await venue.lookup(s.order_id)
        if found is None:
            status, matched, reason = OrderStatus.CANCELED, s.size_matched, NOT_AT_VENUE
        else:
            status, matched, reason = order_status(found), found.size_matched, RECONCILED
        await store.record_order(
            dataclasses.replace(s, status=status, size_matched=matched, reason=reason, updated_at_ns=now_ns),
            reason=reason,
        )
        changes.append({"change": "order_updated", "order_id": s.order_id, "status": str(status), "reason": reason})
    for s, v in diff.orders_mismatched:
        status = order_status(v)
        await store.record_order(
            dataclasses.replace(s, status=status, size_matched=v.size_matched, updated_at_ns=now_ns), reason=RECONCILED
        )
        changes.append(
            {
                "change": "order_updated",
                "order_id": s.order_id,
                "status": str(status),
                "size_matched": decimal_text(v.size_matched),
            }
        )


async def _fix_trades(store: Store, diff: Differences, changes: list[dict[str, object]], now_ns: int) -> None:
    for t in diff.trades_only_at_venue:
        await store.record_trade(trade_record_of(t, None))
        changes.append({"change": "trade_recorded", "trade_id": t.trade_id, "order_id": t.order_id})
    for s in diff.trades_only_in_store:
        await store.record_trade(dataclasses.replace(s, status=TradeStatus.FAILED, updated_at_ns=now_ns))
        changes.append({"change": "trade_marked_failed", "trade_id": s.trade_id, "order_id": s.order_id})
    for s, v in diff.trades_mismatched:
        # Price and size are not rewritten by the store's upsert: reported only. A status the venue adapter did not
        # know (UNKNOWN) leaves the stored one as it is.
        if s.status is not v.status and v.status is not TradeStatus.UNKNOWN:
            await store.record_trade(dataclasses.replace(s, status=v.status, updated_at_ns=now_ns))
            changes.append(
                {"change": "trade_status", "trade_id": s.trade_id, "order_id": s.order_id, "status": str(v.status)}
            )


def _position_at(stored: Position | None, token_id: str, quantity: Decimal, trades: Sequence[VenueTrade]) -> Position:
    """`stored` holding `quantity` shares at its average cost (else our buys' average price at the venue, else 0)."""
    position = stored or Position(token_id=token_id)
    avg = position.avg_cost
    if avg is None:
        buys = [
            t for t in trades if t.token_id == token_id and t.side is Side.BUY and t.status is not TradeStatus.FAILED
        ]
        bought = sum((t.size for t in buys), ZERO)
        avg = sum((t.price * t.size for t in buys), ZERO) / bought if bought else ZERO
    cost = (avg * quantity).quantize(COST_QUANTUM) if quantity else ZERO
    return dataclasses.replace(position, quantity=quantity, cost_basis=cost, unsettled=())


# -- the command ---------------------------------------------------------------------------------------------------


async def read_views(store: Store, venue: PolymarketVenue) -> tuple[StoreView, VenueView]:
    with trio.fail_after(PHASE_TIMEOUT_SECS):
        store_view = StoreView(
            open_orders=await store.load_open_orders(),
            trades=await store.load_trades(),
            positions={p.token_id: p for p in await store.load_positions()},
        )
    with trio.fail_after(PHASE_TIMEOUT_SECS):
        venue.add_markets(await store.load_markets())  # fees of the fills of markets we know
        orders = await venue.open_orders()
        trades = await venue.trades()
        tokens = {
            *store_view.positions,
            *(o.token_id for o in store_view.open_orders),
            *(t.token_id for t in store_view.trades),
            *(o.token_id for o in orders),
            *(t.token_id for t in trades),
        }
        shares, unknown = await venue_shares(venue, tokens)
    return store_view, VenueView(open_orders=orders, trades=trades, shares=shares, unknown_tokens=unknown)


async def reconcile(
    settings: Settings, url: str, *, fix: bool, settle_secs: float = SETTLE_SECS
) -> tuple[int, dict[str, object]]:
    """(exit status, report)."""
    async with open_store(url) as store:
        await check_live_store(store, settings, url)
        async with open_live_venue(settings, "reconcile") as venue:
            return await _reconcile(store, venue, fix=fix, settle_secs=settle_secs)


async def compare_settled(
    store: Store, venue: PolymarketVenue, settle_secs: float
) -> tuple[StoreView, VenueView, Differences, Settling, float]:
    """Read and compare; while trades still settling explain some differences, wait (at most `settle_secs`) and
    read the venue again. (the views, the differences, what is still settling, the seconds waited)"""
    started = trio.current_time()
    deadline = started + settle_secs
    while True:
        store_view, venue_view = await read_views(store, venue)
        diff, settling = set_apart_settling(compare(store_view, venue_view), venue_view)
        if not settling.in_flight or trio.current_time() + SETTLE_POLL_SECS > deadline:
            return store_view, venue_view, diff, settling, trio.current_time() - started
        await trio.sleep(SETTLE_POLL_SECS)


def _report(diff: Differences, settling: Settling, waited_secs: float) -> dict[str, object]:
    report = diff.to_json()
    trades = report["trades"]
    assert isinstance(trades, dict)
    trades["status_behind"] = [
        {"trade_id": s.trade_id, "order_id": s.order_id, "store": str(s.status), "venue": str(v.status)}
        for s, v in settling.status_behind
    ]
    report["settling"] = settling_json(settling, waited_secs)
    return report


async def _reconcile(
    store: Store, venue: PolymarketVenue, *, fix: bool, settle_secs: float = SETTLE_SECS
) -> tuple[int, dict[str, object]]:
    store_view, venue_view, diff, settling, waited = await compare_settled(store, venue, settle_secs)
    report = _report(diff, settling, waited)
    report["checked"] = {
        "store_open_orders": len(store_view.open_orders),
        "venue_open_orders": len(venue_view.open_orders),
        "store_trades": len(store_view.trades),
        "venue_trades": len(venue_view.trades),
        "tokens": len(venue_view.shares),
        "tokens_unknown_at_venue": list(venue_view.unknown_tokens),
    }
    if not fix:
        return (EXIT_AGREE if diff.agree else EXIT_DIFFER), report
    # The statuses of trades still settling and of those the store has behind are written too (positions are not:
    # their trades are still on their way).
    statuses = (*diff.trades_mismatched, *settling.trades, *settling.status_behind)
    with trio.fail_after(PHASE_TIMEOUT_SECS):
        report["fixed"] = await fix_store(
            store, venue, dataclasses.replace(diff, trades_mismatched=statuses), venue_view, now_ns=time.time_ns()
        )
    store_after, venue_after = await read_views(store, venue)
    after, after_settling = set_apart_settling(compare(store_after, venue_after), venue_after)
    report["after_fix"] = _report(after, after_settling, 0.0)
    return (EXIT_AGREE if after.agree else EXIT_DIFFER), report


def run(args: argparse.Namespace) -> int:
    settings = load_settings(dict(os.environ), dotenv=env_file(args))
    url = database_url(args.database_url, settings)
    settings.keys.signer("trader reconcile")  # bad keys are a settings error (exit 2), before anything is opened
    settings.keys.credentials()
    configure_logging(level=settings.run.log_level, fmt=settings.run.log_format)
    try:
        status, report = trio.run(partial(reconcile, fix=args.fix, settle_secs=args.settle_secs), settings, url)
    except Exception as exc:
        print(f"trader: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_DIFFER
    print(json.dumps(report))
    return status


def describe_failure(exc: Exception) -> str:
    """What went wrong, for the operator: the venue, the store or a timeout (inside nursery groups). A settings
    error is re-raised (exit 2); anything else is a bug and is re-raised with its traceback."""
    inner = collapse_group(exc) if isinstance(exc, BaseExceptionGroup) else exc
    if isinstance(inner, trio.TooSlowError):
        return f"the venue or the store did not answer within {PHASE_TIMEOUT_SECS:g} s"
    if isinstance(inner, VenueError):
        return f"venue: {inner} (is the venue up, and TRADER_ENDPOINTS__REST_URL right?)"
    if isinstance(inner, StoreError):
        return f"store: {inner} (is the database up, and {DATABASE_FLAGS} right?)"
    if isinstance(inner, ConfigError):
        raise inner from None
    raise exc
