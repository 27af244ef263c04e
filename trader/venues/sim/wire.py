"""JSON shapes of the venue, built from the exchange's views and events (protocol.md §2-§4, captured/*.json).

Every function returns plain dicts/lists; `encode` turns them into the exact text sent (compact JSON, Decimals as
JSON numbers where the venue sends numbers).
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec

from trader.venues.sim.events import (
    BookChanged,
    LastTradePrice,
    MarketResolved,
    OrderEvent,
    OrderView,
    TickSizeChanged,
    TradeView,
)
from trader.venues.sim.exchange import BookSummary, Resolution
from trader.venues.sim.markets import PIPS_PER_ONE, SimEvent, SimMarket, price_str

_ENCODER = msgspec.json.Encoder(decimal_format="number")

JsonObject = dict[str, object]


def encode(payload: object) -> str:
    return _ENCODER.encode(payload).decode()


def epoch_secs(ts: float) -> str:
    """Trade times as production sends them in 2026 (protocol.md §11 item 11): epoch seconds, as a string. (Older
    captures show ISO 8601; the engine reads both.)"""
    return str(int(ts))


# -- market channel / book -----------------------------------------------------------------------------------


def book_frame(summary: BookSummary) -> JsonObject:
    return {
        "market": summary.market,
        "asset_id": summary.asset_id,
        "timestamp": summary.timestamp,
        "hash": summary.hash,
        "bids": [{"price": p, "size": s} for p, s in summary.bids],
        "asks": [{"price": p, "size": s} for p, s in summary.asks],
        "tick_size": summary.tick_size,
        "event_type": "book",
        "last_trade_price": summary.last_trade_price,
    }


def price_change_frame(event: BookChanged, assets: set[str] | None = None) -> JsonObject | None:
    changes = [
        {
            "asset_id": c.asset_id,
            "price": c.price,
            "size": c.size,
            "side": c.side,
            "hash": c.hash,
            "best_bid": c.best_bid,
            "best_ask": c.best_ask,
        }
        for c in event.changes
        if assets is None or c.asset_id in assets
    ]
    if not changes:
        return None
    return {
        "market": event.market,
        "price_changes": changes,
        "timestamp": str(event.timestamp_ms),
        "event_type": "price_change",
    }


def best_bid_ask_frame(market: str, asset_id: str, best_bid: str, best_ask: str, timestamp_ms: int) -> JsonObject:
    """`best_bid_ask` (custom feature; captured/ws_market_best_bid_ask_msg.json): an asset's new top of book."""
    spread = Decimal(best_ask) - Decimal(best_bid)
    return {
        "event_type": "best_bid_ask",
        "market": market,
        "asset_id": asset_id,
        "best_bid": best_bid,
        "best_ask": best_ask,
        "spread": format(spread, "f"),
        "timestamp": str(timestamp_ms),
    }


def last_trade_frame(event: LastTradePrice) -> JsonObject:
    return {
        "market": event.market,
        "asset_id": event.asset_id,
        "price": event.price,
        "size": event.size,
        "fee_rate_bps": event.fee_rate_bps,
        "side": event.side,
        "timestamp": str(event.timestamp_ms),
        "event_type": "last_trade_price",
    }


def tick_size_frame(event: TickSizeChanged) -> JsonObject:
    return {
        "event_type": "tick_size_change",
        "asset_id": event.asset_id,
        "market": event.market,
        "old_tick_size": event.old_tick_size,
        "new_tick_size": event.new_tick_size,
        "timestamp": str(event.timestamp_ms),
    }


def market_resolved_frame(event: MarketResolved) -> JsonObject:
    """`market_resolved` (captured/ws_market_resolved_msg.json); a 50/50 resolution names no winner ("")."""
    return {
        "event_type": "market_resolved",
        "id": event.gamma_id,
        "market": event.market,
        "assets_ids": list(event.asset_ids),
        "winning_asset_id": event.winning_asset_id,
        "winning_outcome": event.winning_outcome,
        "timestamp": str(event.timestamp_ms),
        "tags": [],
    }


def new_market_frame(market: SimMarket, event: SimEvent | None, tick: Decimal, timestamp_ms: int) -> JsonObject:
    """`new_market` (captured/ws_market_new_market_msg.json); unset fields are "" as on the venue."""
    event_message: JsonObject = {}
    if event is not None:
        event_message = {
            "id": event.event_id,
            "ticker": event.slug,
            "slug": event.slug,
            "title": event.title,
            "description": event.description,
        }
    return {
        "event_type": "new_market",
        "id": market.gamma_id,
        "question": market.question,
        "market": market.condition_id,
        "slug": market.slug,
        "description": market.description,
        "assets_ids": list(market.token_ids),
        "outcomes": list(market.outcomes),
        "event_message": event_message,
        "timestamp": str(timestamp_ms),
        "tags": [],
        "condition_id": market.condition_id,
        "active": market.active,
        "clob_token_ids": list(market.token_ids),
        "sports_market_type": "",
        "line": "",
        "game_start_time": "",
        "order_price_min_tick_size": format(tick, "f"),
        "group_item_title": market.group_item_title,
    }


def payout_texts(resolution: Resolution) -> list[str]:
    """Gamma's `outcomePrices` of a resolved market: ["1", "0"], ["0", "1"] or ["0.5", "0.5"]."""
    return [format((Decimal(n) / resolution.denominator).normalize(), "f") for n in resolution.numerators]


# -- orders and trades ---------------------------------------------------------------------------------------


def _expiration(view: OrderView) -> str | None:
    return None if view.expiration == "0" else view.expiration


def order_rest(view: OrderView) -> JsonObject:
    """/data/orders and /data/order/{id} (captured/http_open_order.json)."""
    return {
        "associate_trades": list(view.associate_trades),
        "id": view.order_id,
        "status": view.status,
        "market": view.market,
        "original_size": view.original_size,
        "outcome": view.outcome,
        "maker_address": view.maker_address,
        "owner": view.owner,
        "price": view.price,
        "side": view.side,
        "size_matched": view.size_matched,
        "asset_id": view.asset_id,
        "expiration": _expiration(view),
        "order_type": view.order_type,
        "created_at": view.created_at,
    }


def order_frame(event: OrderEvent) -> JsonObject:
    """User channel `order` event (captured/ws_user_order_*.json)."""
    view = event.order
    return {
        "event_type": "order",
        "asset_id": view.asset_id,
        "associate_trades": list(view.associate_trades) or None,
        "created_at": str(view.created_at),
        "expiration": _expiration(view),
        "id": view.order_id,
        "maker_address": view.maker_address,
        "market": view.market,
        "order_owner": view.owner,
        "order_type": view.order_type,
        "original_size": view.original_size,
        "outcome": view.outcome,
        "owner": view.owner,
        "price": view.price,
        "side": view.side,
        "size_matched": view.size_matched,
        "status": event.status,
        "timestamp": str(event.timestamp_ms),
        "type": event.kind,
    }


def trade_owners(view: TradeView) -> list[str]:
    """Every API key that sees this trade: the taker first, then each maker once."""
    owners = [view.owner]
    for maker in view.maker_orders:
        if maker.owner not in owners:
            owners.append(maker.owner)
    return owners


def trade_json(view: TradeView, viewer: str) -> JsonObject:
    """A trade as `viewer` sees it (REST /data/trades and the user channel). A maker sees `trader_side` MAKER and
    only its own entries in `maker_orders`."""
    is_taker = viewer == view.owner
    makers = [m for m in view.maker_orders if is_taker or m.owner == viewer]
    return {
        "id": view.trade_id,
        "taker_order_id": view.taker_order_id,
        "market": view.market,
        "asset_id": view.asset_id,
        "side": view.side,
        "size": view.size,
        "fee_rate_bps": view.fee_rate_bps,
        "price": view.price,
        "status": view.status,
        "match_time": epoch_secs(view.match_time),
        "last_update": epoch_secs(view.last_update),
        "outcome": view.outcome,
        "bucket_index": 0,
        "owner": viewer,
        "maker_address": view.maker_address if is_taker else makers[0].maker_address,
        "transaction_hash": view.transaction_hash,
        "maker_orders": [
            {
                "asset_id": m.asset_id,
                "fee_rate_bps": m.fee_rate_bps,
                "maker_address": m.maker_address,
                "matched_amount": m.matched_amount,
                "order_id": m.order_id,
                "outcome": m.outcome,
                "owner": m.owner,
                "price": m.price,
                "side": m.side,
            }
            for m in makers
        ],
        "trader_side": "TAKER" if is_taker else "MAKER",
    }


def trade_frame(view: TradeView, viewer: str, timestamp_ms: int) -> JsonObject:
    frame = trade_json(view, viewer)
    frame.update({"event_type": "trade", "type": "TRADE", "trade_owner": viewer, "timestamp": str(timestamp_ms)})
    return frame


# -- markets ---------------------------------------------------------------------------------------------------


def _number(text: str) -> Decimal:
    return Decimal(text)


def clob_market(
    market: SimMarket, prices: tuple[int, int], tick: Decimal, resolution: Resolution | None = None
) -> JsonObject:
    """/markets and /markets/{condition_id} (captured/clob_market_*.json). Resolved: `closed`, the winner's token
    `winner: true` and price 1 (a 50/50 resolution flags no winner, both at 0.5)."""
    winners = (False, False)
    token_prices = [_number(price_str(p)) for p in prices]
    if resolution is not None:
        won = resolution.winner
        winners = (won == 0, won == 1)
        token_prices = [Decimal(p) for p in payout_texts(resolution)]
    return {
        "accepting_orders": market.accepting_orders,
        "active": market.active,
        "archived": False,
        "closed": market.closed,
        "condition_id": market.condition_id,
        "description": market.description,
        "enable_order_book": True,
        "end_date_iso": market.end_date_iso,
        "fpmm": "",
        "game_start_time": None,
        "icon": "",
        "image": "",
        "is_50_50_outcome": resolution is not None and resolution.winner is None,
        "maker_base_fee": 0,
        "market_slug": market.slug,
        "minimum_order_size": market.min_order_size,
        "minimum_tick_size": tick,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id,
        "neg_risk_request_id": "",
        "notifications_enabled": True,
        "question": market.question,
        "question_id": market.question_id,
        "rewards": {"max_spread": 0, "min_size": 0, "rates": None},
        "seconds_delay": 0,
        "tags": [],
        "taker_base_fee": market.fees.base_fee_bps,
        "tokens": [
            {"outcome": outcome, "price": price, "token_id": token, "winner": winner}
            for outcome, token, price, winner in zip(
                market.outcomes, market.token_ids, token_prices, winners, strict=True
            )
        ],
    }


def clob_market_compact(market: SimMarket, tick: Decimal) -> JsonObject:
    """/clob-markets/{condition_id} (V2 compact keys)."""
    compact: JsonObject = {
        "c": market.condition_id,
        "t": [{"t": token, "o": outcome} for token, outcome in zip(market.token_ids, market.outcomes, strict=True)],
        "mts": tick,
        "mos": market.min_order_size,
        "fd": {"r": market.fees.rate, "e": market.fees.exponent, "to": True},
        "mbf": 0,
        "tbf": market.fees.base_fee_bps,
        "ao": market.accepting_orders,
    }
    if market.neg_risk:
        compact["nr"] = True
    return compact


def gamma_market(
    market: SimMarket,
    event: SimEvent | None,
    *,
    best: tuple[int | None, int | None],
    last_trade: int,
    tick: Decimal,
    resolution: Resolution | None = None,
) -> JsonObject:
    """Gamma /markets entry (captured/gamma_market.json); outcomes, prices and token ids are JSON-in-a-string.
    Resolved: `closed`, not `active`, `outcomePrices` the payouts and `umaResolutionStatus` "resolved"."""
    bid, ask = best
    yes_mid = Decimal(bid + ask if bid is not None and ask is not None else 2 * last_trade) / (2 * PIPS_PER_ONE)
    prices = [format(yes_mid.normalize(), "f"), format((1 - yes_mid).normalize(), "f")]
    if resolution is not None:
        prices = payout_texts(resolution)
    result: JsonObject = {
        "id": market.gamma_id,
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "description": market.description,
        "endDate": market.end_date_iso,
        "outcomes": json.dumps(list(market.outcomes)),
        "outcomePrices": json.dumps(prices),
        "clobTokenIds": json.dumps(list(market.token_ids)),
        "active": market.active,
        "closed": market.closed,
        "archived": False,
        "questionID": market.question_id,
        "enableOrderBook": True,
        "acceptingOrders": market.accepting_orders,
        "orderPriceMinTickSize": tick,
        "orderMinSize": market.min_order_size,
        "negRisk": market.neg_risk,
        "negRiskMarketID": market.neg_risk_market_id,
        "negRiskOther": False,
        "groupItemTitle": market.group_item_title,
        "bestBid": _number(price_str(bid)) if bid is not None else None,
        "bestAsk": _number(price_str(ask)) if ask is not None else None,
        "spread": _number(price_str(ask - bid)) if bid is not None and ask is not None else None,
        "lastTradePrice": _number(price_str(last_trade)),
        "makerBaseFee": 0,
        "takerBaseFee": market.fees.base_fee_bps,
        "feesEnabled": market.fees.enabled,
        "feeSchedule": {"rate": market.fees.rate, "exponent": market.fees.exponent, "takerOnly": True},
        "volume": "0",
        "liquidity": "0",
    }
    if resolution is not None:
        result["umaResolutionStatus"] = "resolved"
    if event is not None:
        result["events"] = [gamma_event_header(event)]
    return result


def gamma_event_header(event: SimEvent) -> JsonObject:
    return {
        "id": event.event_id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "active": True,
        "closed": False,
        "archived": False,
        "negRisk": event.neg_risk,
        "enableNegRisk": event.neg_risk,
        "negRiskMarketID": event.neg_risk_market_id,
        "negRiskAugmented": not event.complete,
    }
