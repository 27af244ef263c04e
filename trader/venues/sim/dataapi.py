"""The sim's Data API v2 positions: `GET /v2/positions`, the contract production switched to in 2026-09 (protocol.md
§11 item 12; polymarket-client 0.10+ reads only it).

What changed from the older `GET /positions` (a bare JSON list of camelCase rows, still served beside it):
- the reply is an envelope, `{"data": [...], "pagination": {"has_more": bool, "next_cursor": str | null}}`, paged with
  `limit` (1-1000, default 100) and the opaque `cursor` of the previous page (`has_more` exactly when there is one);
- a row is snake_case (`proxy_wallet`, `token_id`, `condition_id`, `current_size`, `avg_price`, `entry_cost_usdc`,
  `entry_fees_usdc`, `total_cost_usdc`, `current_price`, `current_value`, `total_size`, `realized_pnl`,
  `unrealized_pnl`, `total_pnl`, `percent_pnl`, `percent_realized_pnl`, `status`, `redeemable`, `mergeable`,
  `negative_risk`, `archived`, `verified`, `title`, `slug`, `icon`, `event_id`, `event_slug`, `outcome`,
  `outcome_index`, `opposite_outcome`, `opposite_token_id`, `end_date` as a calendar date, `last_event_at` and
  `first_entry_at` in epoch seconds), shaped as py-sdk's fixture of a production reply
  (tests/fixtures/data_v2/positions.json) and its `Position` model;
- `status` is OPEN, REDEEMABLE (the market resolved) or CLOSED (nothing held any more); the listing shows the open
  and redeemable positions unless `status` asks for CLOSED, OPEN, REDEEMABLE, MERGEABLE (both outcomes held) or
  REDEEMABLE_LOST (held, resolved to a zero payout); `condition_id` (comma-separated) narrows it, and a listing
  without `user` must name exactly one market;
- sorted by `sort_by` (CURRENT_VALUE by default; PRICE, TOKENS, UNREALIZED_PNL, REALIZED_PNL, TOTAL_PNL, TIMESTAMP)
  in `sort_direction` (DESC by default).

The sim keeps no profiles: `name` and `profile_image` are empty, `verified` false, `icon` empty.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from trader.venues.sim.exchange import Exchange
from trader.venues.sim.httpserver import HttpRequest, HttpResponse
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE
from trader.venues.sim.wire import JsonObject

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
STATUSES: Final = frozenset({"OPEN", "REDEEMABLE", "CLOSED", "MERGEABLE", "REDEEMABLE_LOST"})
_SORTS: Final[dict[str, Callable[[JsonObject], Decimal]]] = {
    "CURRENT_VALUE": lambda row: _dec(row["current_value"]),
    "PRICE": lambda row: _dec(row["current_price"]),
    "TOKENS": lambda row: _dec(row["current_size"]),
    "UNREALIZED_PNL": lambda row: _dec(row["unrealized_pnl"]),
    "REALIZED_PNL": lambda row: _dec(row["realized_pnl"]),
    "TOTAL_PNL": lambda row: _dec(row["total_pnl"]),
    "TIMESTAMP": lambda row: _dec(row["last_event_at"]),
}
_CENT: Final = Decimal("0.01")
_PRICE: Final = Decimal("0.0001")


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _units(amount: int) -> Decimal:
    return Decimal(amount) / UNITS_PER_ONE


def positions_v2(exchange: Exchange, request: HttpRequest) -> HttpResponse:
    """`GET /v2/positions` (see the module's docstring)."""
    user = (request.arg("user") or "").lower()
    markets = [c for c in (request.arg("condition_id") or "").split(",") if c]
    if not user and len(markets) != 1:
        return HttpResponse.error(400, "user is required unless exactly one condition_id is given")
    status = (request.arg("status") or "").upper() or None
    if status is not None and status not in STATUSES:
        return HttpResponse.error(400, f"invalid status, expected one of {', '.join(sorted(STATUSES))}")
    sort_by = (request.arg("sort_by") or "CURRENT_VALUE").upper()
    direction = (request.arg("sort_direction") or "DESC").upper()
    if sort_by not in _SORTS or direction not in ("ASC", "DESC"):
        return HttpResponse.error(400, "invalid sort_by or sort_direction")
    try:
        limit = int(request.arg("limit") or DEFAULT_LIMIT)
        offset = _offset(request.arg("cursor"))
    except ValueError:
        return HttpResponse.error(400, "invalid limit or cursor")
    if not 1 <= limit <= MAX_LIMIT:
        return HttpResponse.error(400, f"limit must be between 1 and {MAX_LIMIT}")

    rows = [row for row in _rows(exchange, user, set(markets)) if _listed(row, status)]
    rows.sort(key=lambda row: (_SORTS[sort_by](row), row["token_id"]), reverse=direction == "DESC")
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    cursor = base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode() if more else None
    return HttpResponse.json({"data": page, "pagination": {"has_more": more, "next_cursor": cursor}})


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(cursor) from None
    if not text.startswith("o:") or not text[2:].isdigit():
        raise ValueError(cursor)
    return int(text[2:])


def _listed(row: JsonObject, status: str | None) -> bool:
    if status is None:
        return row["status"] in ("OPEN", "REDEEMABLE")
    if status == "MERGEABLE":
        return row["status"] == "OPEN" and bool(row["mergeable"])
    if status == "REDEEMABLE_LOST":
        return row["status"] == "REDEEMABLE" and _dec(row["current_price"]) == 0
    return row["status"] == status


def _rows(exchange: Exchange, user: str, markets: set[str]) -> list[JsonObject]:
    """One row per (wallet, token) the wallet ever held: of `user`, or of every wallet in the named market."""
    fees: dict[tuple[str, str], int] = {}
    times: dict[tuple[str, str], tuple[float, float]] = {}
    for trade in exchange.trades():
        buyer = trade.taker.maker_address.lower()
        if trade.taker.side.value == "BUY" and trade.fee:
            key = (buyer, trade.asset_id)
            fees[key] = fees.get(key, 0) + trade.fee
        for wallet_key, asset, _ in trade.flows:
            if asset:
                first, last = times.get((wallet_key, asset), (trade.match_time, trade.match_time))
                times[(wallet_key, asset)] = (min(first, trade.match_time), max(last, trade.match_time))
    wallets = [exchange.wallet(user)] if user else list(exchange.wallets())
    out: list[JsonObject] = []
    for wallet in wallets:
        for token in sorted(set(wallet.shares) | set(wallet.bought)):
            market = exchange.market_of_token(token)
            if market is None or (markets and market.condition_id not in markets):
                continue
            units, bought = wallet.shares.get(token, 0), wallet.bought.get(token, 0)
            if units <= 0 and bought <= 0:
                continue
            index = market.outcome_index(token)
            resolution = exchange.resolution(market.condition_id)
            size, total = _units(max(units, 0)), _units(bought)
            cost = _units(wallet.cost.get(token, 0))
            fee_share = _units(fees.get((wallet.address, token), 0)) * (size / total if total else Decimal(0))
            if resolution is not None:
                price = Decimal(resolution.numerators[index]) / resolution.denominator
            else:
                bid, ask = exchange.best_prices(token)
                pips = (
                    Decimal(bid + ask) / 2 if bid is not None and ask is not None else exchange.last_trade_pips(token)
                )
                price = Decimal(pips) / PIPS_PER_ONE
            value = size * price
            realized = _units(wallet.realized.get(token, 0))
            unrealized = value - cost
            first, last = times.get((wallet.address, token), (0.0, 0.0))
            event = exchange.events.get(market.event_id)
            status = "CLOSED" if units <= 0 else "OPEN" if resolution is None else "REDEEMABLE"
            out.append(
                {
                    "proxy_wallet": wallet.address,
                    "token_id": token,
                    "condition_id": market.condition_id,
                    "current_size": size,
                    "avg_price": (cost / size).quantize(_PRICE) if size else Decimal(0),
                    "entry_cost_usdc": cost,
                    "entry_fees_usdc": fee_share.quantize(Decimal("0.000001")),
                    "total_cost_usdc": (cost + fee_share).quantize(Decimal("0.000001")),
                    "current_price": price.quantize(_PRICE),
                    "current_value": value,
                    "total_size": total,
                    "realized_pnl": realized,
                    "unrealized_pnl": unrealized,
                    "total_pnl": realized + unrealized,
                    "percent_pnl": (unrealized / cost * 100).quantize(_PRICE) if cost else Decimal(0),
                    "percent_realized_pnl": Decimal(0),
                    "status": status,
                    "redeemable": resolution is not None and units > 0,
                    "mergeable": resolution is None and all(wallet.shares.get(t, 0) > 0 for t in market.token_ids),
                    "negative_risk": market.neg_risk,
                    "archived": False,
                    "verified": False,
                    "title": market.question,
                    "slug": market.slug,
                    "icon": "",
                    "event_id": event.event_id if event else "",
                    "event_slug": event.slug if event else market.slug,
                    "outcome": market.outcomes[index],
                    "outcome_index": index,
                    "opposite_outcome": market.outcomes[1 - index],
                    "opposite_token_id": market.token_ids[1 - index],
                    "end_date": market.end_date_iso[:10],
                    "last_event_at": int(last),
                    "first_entry_at": int(first),
                    "name": "",
                    "profile_image": "",
                }
            )
    return out
