"""polymarket-client 0.14.0 (Polymarket/py-sdk, the newest official Python client) against a running `trader sim`.

    python polymarket_client_check.py '<the sim's first JSON line>'

Run by `scripts/interop/run`, with the interpreter of a virtual environment of its own holding polymarket-client
(it is not one of the project's dependencies, and this script imports nothing of the project). The client is pointed
at the sim the way its own integration tests fork production (`tests/integration/_environment.py` in py-sdk):
`create_environment` over `PRODUCTION_CONFIG` with the sim's URLs in place of Polymarket's. It then does what an
application does against production, and prints one JSON line per check, `{"check", "ok", "secs", "detail"}`;
the exit status is 1 when any check failed.

The sim is expected fresh (`trader sim --scenario static`: seeded books that do not move, new wallets funded with
10,000 pUSD, admin endpoints on, to arm the venue's trading modes as faults).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from eth_account import Account
from polymarket import (
    AcceptedOrder,
    AsyncSecureClient,
    Market,
    OrderHeartbeatMismatchError,
    RateLimitError,
    RejectedOrder,
    RequestRejectedError,
    SecureClient,
)
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
from polymarket.rate_limit import RateLimitUpdate
from polymarket.streams import MarketSpec, UserSpec

#: one signer per concern, so that a heartbeat session, a drained rate-limit bucket or a restricted address does not
#: reach into another check
KEYS = {name: "0x" + f"{i:02x}" * 32 for i, name in enumerate(("trader", "heartbeat", "limits", "modes", "streams"), 1)}
TRADE_STATUSES = {"MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING", "FAILED"}
START_BALANCE = 10_000 * 10**6  # a new wallet's pUSD in the sim, in base units
WAIT = 20.0  # seconds any one wait may last (settlement is 3 s in the sim; a stream frame comes in milliseconds)


class CheckFailed(Exception):
    pass


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclasses.dataclass
class Run:
    urls: dict[str, str]
    environment: Any
    updates: list[RateLimitUpdate] = dataclasses.field(default_factory=list)
    clients: dict[str, SecureClient] = dataclasses.field(default_factory=dict)
    market: Market | None = None
    fill: dict[str, Any] = dataclasses.field(default_factory=dict)

    def client(self, name: str) -> SecureClient:
        if name not in self.clients:
            key = KEYS[name]
            listener = self.updates.append if name == "trader" else None
            self.clients[name] = SecureClient.create(
                private_key=key,
                wallet=Account.from_key(key).address,  # an EOA wallet: orders signed by and for the key's address
                environment=self.environment,
                on_rate_limit_update=listener,
            )
        return self.clients[name]

    def fault(self, body: dict[str, object] | None) -> None:
        """Arm one of the venue's trading modes (None: clear them all) through the sim's admin endpoint."""
        url = self.urls["rest"] + "/_sim/faults"
        reply = httpx.delete(url) if body is None else httpx.post(url, json=body)
        reply.raise_for_status()

    def traded(self) -> tuple[Market, str, str]:
        expect(self.market is not None, "no market chosen (markets_listing failed)")
        assert self.market is not None
        return self.market, self.market.outcomes.yes.token_id, self.market.outcomes.no.token_id


CHECKS: list[tuple[str, Callable[[Run], object]]] = []


def check(function: Callable[[Run], object]) -> Callable[[Run], object]:
    CHECKS.append((function.__name__, function))
    return function


@check
def client_and_api_key(run: Run) -> object:
    """`SecureClient.create`: derives the API key with an L1 signature, validates it (`GET /auth/api-keys`)."""
    client = run.client("trader")
    expect(client.wallet_type == "EOA", f"wallet type {client.wallet_type}")
    expect(client.fetch_api_keys() == (client.credentials.key,), "the key is not the account's one key")
    expect(client.get_closed_only_mode() is False, "a new account is closed-only")
    return {"wallet": client.wallet, "wallet_type": client.wallet_type}


@check
def markets_listing(run: Run) -> object:
    """`list_markets` pages Gamma's `/markets/keyset` (by `after_cursor`) to its end; the listing agrees with the
    CLOB's; `list_events` pages `/events/keyset`. Picks the market the trading checks use."""
    client = run.client("trader")
    pages = list(client.list_markets(page_size=5))
    markets = [m for page in pages for m in page.items]
    expect(len(pages) >= 2, f"{len(markets)} markets in {len(pages)} page(s): the keyset cursor was not followed")
    ids = [m.condition_id for m in markets]
    expect(len(set(ids)) == len(ids), "a market listed twice")
    clob, cursor = set(), "MA=="
    while cursor != "LTE=":
        page = httpx.get(run.urls["rest"] + "/markets", params={"next_cursor": cursor}).json()
        clob |= {m["condition_id"] for m in page["data"] if m["active"] and not m["closed"]}
        cursor = page["next_cursor"]
    expect(set(ids) == clob, f"Gamma lists {len(ids)} open markets, the CLOB {len(clob)}")
    events = [e for page in client.list_events(page_size=5) for e in page.items]
    in_events = {m.condition_id for e in events for m in e.markets}
    expect(set(ids) <= in_events, "a market in no event")
    expect(any(len(e.markets) > 2 for e in events), "no multi-outcome (neg-risk) event")
    for market in markets:
        book = client.get_order_book(token_id=market.outcomes.yes.token_id)
        fees = market.trading.fee_schedule
        if not market.state.neg_risk and (fees is None or fees.rate == 0) and book.bids and book.asks:
            run.market = market
            break
    expect(run.market is not None, "no fee-free binary market with a two-sided book to trade")
    return {"markets": len(markets), "pages": len(pages), "events": len(events), "trading": run.market.slug}


@check
def order_book_and_prices(run: Run) -> object:
    """Books (best levels last, as production sends them), the mirror book of NO, prices single and batched."""
    client = run.client("trader")
    market, yes, no = run.traded()
    book = client.get_order_book(token_id=yes)
    bids, asks = [level.price for level in book.bids], [level.price for level in book.asks]
    expect(bids == sorted(bids) and asks == sorted(asks, reverse=True), "levels not ordered best-last")
    bid, ask = bids[-1], asks[-1]
    expect(bid < ask, f"crossed book {bid} / {ask}")
    expect(book.tick_size == market.trading.minimum_tick_size, "tick differs from Gamma's")
    yes_book, no_book = client.get_order_books(token_ids=[yes, no])
    expect((yes_book.asset_id, no_book.asset_id) == (yes, no), "books out of order")
    expect(no_book.bids[-1].price == 1 - ask, "the NO book does not mirror the YES book")
    expect(client.get_midpoint(token_id=yes) == (bid + ask) / 2, "midpoint")
    expect(client.get_price(token_id=yes, side="BUY") == bid, "price BUY is not the best bid")
    expect(client.get_spread(token_id=yes) == ask - bid, "spread")
    expect(client.get_spreads(token_ids=[yes]) == {yes: ask - bid}, "spreads")
    expect(client.get_midpoints(token_ids=[yes]) == {yes: (bid + ask) / 2}, "midpoints")
    return {"bid": str(bid), "ask": str(ask), "tick": str(book.tick_size), "min_order_size": str(book.min_order_size)}


@check
def limit_order_rests_and_cancels(run: Run) -> object:
    client = run.client("trader")
    market, yes, _ = run.traded()
    bid = client.get_order_book(token_id=yes).bids[-1].price
    price = bid - market.trading.minimum_tick_size
    placed = client.place_limit_order(token_id=yes, price=price, size=5, side="BUY")
    expect(isinstance(placed, AcceptedOrder) and placed.status == "live", f"not resting: {placed!r}")
    assert isinstance(placed, AcceptedOrder)
    listed = list(client.list_open_orders(market=market.condition_id).iter_items())
    expect([o.id for o in listed] == [placed.order_id], f"open orders {[o.id for o in listed]}")
    one = client.get_order(order_id=placed.order_id)
    expect((one.price, one.original_size, one.side, one.status) == (price, 5, "BUY", "LIVE"), f"order {one!r}")
    canceled = client.cancel_order(order_id=placed.order_id)
    expect(canceled.canceled == (placed.order_id,) and not canceled.not_canceled, f"cancel {canceled!r}")
    again = client.cancel_order(order_id=placed.order_id)
    expect(placed.order_id in again.not_canceled, "a canceled order canceled twice")
    expect(not list(client.list_open_orders().iter_items()), "orders left open")
    return {"order_id": placed.order_id, "price": str(price)}


@check
def fill_and_trades(run: Run) -> object:
    """A crossing order against the resting asks: matched at once; the fill's settlement hashes; the trade read back
    with the 2026 statuses and times; the last trade price with its side."""
    client = run.client("trader")
    market, yes, _ = run.traded()
    before = client.get_balance_allowance(asset_type="COLLATERAL").balance
    ask = client.get_order_book(token_id=yes).asks[-1].price
    filled = client.place_limit_order(token_id=yes, price=ask, size=5, side="BUY")
    expect(isinstance(filled, AcceptedOrder) and filled.status == "matched", f"not filled: {filled!r}")
    assert isinstance(filled, AcceptedOrder)
    expect((filled.making_amount, filled.taking_amount) == (5 * ask, 5), f"amounts {filled!r}")
    expect(len(filled.trade_ids) == 1, f"trade ids {filled.trade_ids}")
    hashes = client.wait_for_order_fill_settlement(filled, timeout_s=WAIT)
    expect(len(hashes) == 1 and hashes[0].startswith("0x"), f"settlement hashes {hashes}")
    (trade,) = client.list_account_trades(id=filled.trade_ids[0]).iter_items()
    expect(trade.status in TRADE_STATUSES and trade.status == "CONFIRMED", f"trade status {trade.status}")
    expect((trade.trader_side, trade.side, trade.price, trade.size) == ("TAKER", "BUY", ask, 5), f"trade {trade!r}")
    expect(trade.transaction_hash == hashes[0], "the trade's hash is not the settlement's")
    age = abs((datetime.now(UTC) - trade.matched_at).total_seconds())
    expect(age < 120, f"match time {trade.matched_at} is {age:.0f} s off")
    expect(trade.updated_at >= trade.matched_at, "last update before the match")
    every = list(client.list_account_trades(market=market.condition_id).iter_items())
    expect([t.id for t in every] == [trade.id], f"trades of the market {[t.id for t in every]}")
    last = client.get_last_trade_price(token_id=yes)
    expect(last is not None and (last.price, last.side) == (ask, "BUY"), f"last trade price {last!r}")
    lasts = client.get_last_trade_prices(token_ids=[yes])
    expect([(p.asset_id, p.price, p.side) for p in lasts] == [(yes, ask, "BUY")], f"last trade prices {lasts!r}")
    run.fill = {"price": ask, "before": before, "paid": filled.making_amount}
    return {"trade": trade.id, "price": str(ask), "status": trade.status, "tx": hashes[0]}


@check
def balance_allowance(run: Run) -> object:
    client = run.client("trader")
    _, yes, _ = run.traded()
    expect(run.fill, "no fill to account for (fill_and_trades failed)")
    collateral = client.get_balance_allowance(asset_type="COLLATERAL")
    paid = int(run.fill["paid"] * 10**6)
    expect(run.fill["before"] == START_BALANCE, f"a new wallet holds {run.fill['before']}")
    expect(collateral.balance == START_BALANCE - paid, f"balance {collateral.balance}, paid {paid} (no fee)")
    spender = "0xE111180000d2663C0091e4f400237545B87B996B"  # the CTF Exchange V2
    allowance = {k.lower(): v for k, v in collateral.allowances.items()}.get(spender.lower(), 0)
    expect(allowance >= START_BALANCE, f"the exchange's allowance is {allowance}")
    shares = client.get_balance_allowance(asset_type="CONDITIONAL", token_id=yes)
    expect(shares.balance == 5 * 10**6, f"shares {shares.balance}")
    return {"balance": collateral.balance, "shares": shares.balance}


@check
def positions(run: Run) -> object:
    """Data API v2 (`/v2/positions`, its paged envelope)."""
    client = run.client("trader")
    market, yes, _ = run.traded()
    expect(run.fill, "no fill to hold (fill_and_trades failed)")
    rows = list(client.list_positions().iter_items())
    held = [p for p in rows if p.asset_id == yes]
    expect(len(held) == 1, f"positions {[(p.asset_id, p.current_size) for p in rows]}")
    position = held[0]
    expect(position.wallet.lower() == client.wallet.lower(), f"wallet {position.wallet}")
    expect(
        (position.current_size, position.avg_price, position.status) == (5, run.fill["price"], "OPEN"), repr(position)
    )
    expect(position.condition_id == market.condition_id and position.outcome == "Yes", repr(position))
    one = list(client.list_positions(condition_id=market.condition_id).iter_items())
    expect([p.asset_id for p in one] == [yes], "the listing by market")
    return {
        "size": str(position.current_size),
        "avg_price": str(position.avg_price),
        "value": str(position.current_value),
    }


@check
def market_order(run: Run) -> object:
    client = run.client("trader")
    _, yes, _ = run.traded()
    bought = client.place_market_order(token_id=yes, side="BUY", amount=Decimal(5))
    expect(isinstance(bought, AcceptedOrder) and bought.status == "matched", f"market order {bought!r}")
    assert isinstance(bought, AcceptedOrder)
    return {"spent": str(bought.making_amount), "shares": str(bought.taking_amount)}


@check
def batch_and_cancels(run: Run) -> object:
    """`post_orders`, then every way to cancel: by id, by market, all."""
    client = run.client("trader")
    market, yes, no = run.traded()
    tick = market.trading.minimum_tick_size
    bid = client.get_order_book(token_id=yes).bids[-1].price
    signed = [client.create_limit_order(token_id=yes, price=bid - k * tick, size=5, side="BUY") for k in (2, 3, 4)]
    no_bid = client.get_order_book(token_id=no).bids[-1].price
    signed.append(client.create_limit_order(token_id=no, price=no_bid - 2 * tick, size=5, side="BUY"))
    posted = client.post_orders(signed)
    expect(all(isinstance(p, AcceptedOrder) and p.status == "live" for p in posted), f"batch {posted!r}")
    ids = [p.order_id for p in posted if isinstance(p, AcceptedOrder)]
    expect(client.get_order_scoring(order_id=ids[0]) is False, "an order scores in a sim without rewards")
    one = client.cancel_orders(order_ids=ids[:1])
    expect(one.canceled == (ids[0],), f"cancel_orders {one!r}")
    by_token = client.cancel_market_orders(asset_id=yes)
    expect(sorted(by_token.canceled) == sorted(ids[1:3]), f"cancel_market_orders(asset_id) {by_token!r}")
    everything = client.cancel_all()
    expect(everything.canceled == (ids[3],), f"cancel_all {everything!r}")
    expect(client.cancel_all().canceled == (), "cancel_all twice")
    expect(not list(client.list_open_orders().iter_items()), "orders left open")
    return {"posted": len(ids)}


@check
def heartbeats_and_the_stale_id(run: Run) -> object:
    """`send_order_heartbeat`: a stale id is refused `400 {"error_msg": "Invalid Heartbeat ID", "heartbeat_id":
    <current>}`, which the client raises as `OrderHeartbeatMismatchError(heartbeat_id)`; sending again with that id
    is accepted."""
    client = run.client("heartbeat")
    first = client.send_order_heartbeat().heartbeat_id
    second = client.send_order_heartbeat(heartbeat_id=first).heartbeat_id
    try:
        client.send_order_heartbeat(heartbeat_id=first)
    except OrderHeartbeatMismatchError as stale:
        expect(stale.heartbeat_id == second, f"the refusal names {stale.heartbeat_id!r}, the current id is {second!r}")
        recovered = client.send_order_heartbeat(heartbeat_id=stale.heartbeat_id).heartbeat_id
    else:
        raise CheckFailed("a stale heartbeat id was accepted")
    expect(len({first, second, recovered}) == 3, "heartbeat ids repeat")
    return {"ids": 3, "recovered": True}


@check
def rate_limit_headers(run: Run) -> object:
    """`on_rate_limit_update` hears the `Poly-RateLimit-*` headers of order and cancel replies; a drained cancel
    bucket answers 429, which the client raises as `RateLimitError` with `retry_after` and the bucket's state."""
    heard = [u for u in run.updates if u.tier is not None]
    expect(heard, "no rate-limit update from the trading checks' orders and cancels")
    expect({u.tier for u in heard} == {"standard"}, f"tiers {sorted({str(u.tier) for u in heard})}")
    expect(all(u.remaining is not None and u.reset is not None for u in heard), "an update without remaining/reset")
    expect(all(u.reset is not None and u.reset > time.time() - 60 for u in heard), "a reset in the past")
    client = run.client("limits")
    unknown = [f"0x{i:064x}" for i in range(120)]  # a Standard signer's whole cancel burst
    first = client.cancel_orders(order_ids=unknown)
    expect(len(first.not_canceled) == 120, "unknown ids were cancelled")
    try:
        client.cancel_orders(order_ids=unknown)  # 1.5 s of refill short
    except RateLimitError as limited:
        expect(limited.retry_after is not None and 0 < limited.retry_after <= 2, f"retry after {limited.retry_after}")
        state = limited.rate_limit
        expect(state is not None and state.remaining is not None and state.remaining < 120, f"bucket {state!r}")
        return {"updates": len(heard), "retry_after": limited.retry_after, "remaining": state and state.remaining}
    raise CheckFailed("a second cancel burst at once was not rate limited")


@check
def trading_restrictions(run: Run) -> object:
    """The venue's trading modes (protocol.md §11 item 3) as the client types them (`RequestRejectedError
    .restriction`): a restart's 425, the post-only window (a batch refused order by order), cancel-only, trading
    disabled, and an address in closed-only mode."""
    client = run.client("modes")
    market, yes, _ = run.traded()
    bid = client.get_order_book(token_id=yes).bids[-1].price
    price = bid - 5 * market.trading.minimum_tick_size
    seen: dict[str, object] = {}

    def refused(what: str, *, post_only: bool = False) -> RequestRejectedError:
        try:
            client.place_limit_order(token_id=yes, price=price, size=5, side="BUY", post_only=post_only)
        except RequestRejectedError as error:
            seen[what] = f"{error.status} {error.restriction}: {error}"
            return error
        raise CheckFailed(f"{what}: an order was taken")

    try:
        run.fault({"kind": "restart", "secs": 60, "post_only_secs": 60})
        restarting = refused("restart")
        expect((restarting.status, restarting.restriction) == (425, "restarting"), seen["restart"])
        run.fault(None)
        run.fault({"kind": "post_only", "secs": 60})
        window = refused("post_only")
        expect((window.status, window.restriction) == (503, "post_only"), seen["post_only"])
        maker = client.place_limit_order(token_id=yes, price=price, size=5, side="BUY", post_only=True)
        expect(isinstance(maker, AcceptedOrder), f"a post-only order in the window: {maker!r}")
        tick = market.trading.minimum_tick_size
        post_only, plain = (
            client.create_limit_order(token_id=yes, price=price - k * tick, size=5, side="BUY", post_only=k == 1)
            for k in (1, 2)
        )
        batch = client.post_orders([post_only, plain])
        expect(isinstance(batch[0], AcceptedOrder), f"the post-only order of a batch: {batch[0]!r}")
        expect(isinstance(batch[1], RejectedOrder) and batch[1].code == "post_only_mode", f"the other: {batch[1]!r}")
        run.fault(None)
        run.fault({"kind": "cancel_only"})
        cancel_only = refused("cancel_only")
        expect((cancel_only.status, cancel_only.restriction) == (503, "cancel_only"), seen["cancel_only"])
        expect(len(client.cancel_all().canceled) == 2, "cancels do not pass in cancel-only mode")
        run.fault(None)
        run.fault({"kind": "trading_disabled"})
        disabled = refused("trading_disabled")
        expect(disabled.status == 503 and "disabled" in str(disabled), seen["trading_disabled"])
        run.fault(None)
        run.fault({"kind": "closed_only", "address": client.wallet})
        expect(client.get_closed_only_mode() is True, "closed-only not reported")
        closed = refused("closed_only")
        expect(closed.status == 400 and "closed only mode" in str(closed), seen["closed_only"])
    finally:
        run.fault(None)
    return seen


@check
def streams(run: Run) -> object:
    """The market and user channels through the client's own streams (`AsyncSecureClient.subscribe`): the book
    snapshots, an order's placement, a fill's trade and last trade price, and no frame the client could not read."""
    _, yes, no = run.traded()
    return asyncio.run(_streams(run, yes, no))


async def _streams(run: Run, yes: str, no: str) -> object:
    dropped: list[str] = []

    class Drops(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "dropped" in record.getMessage() or "error" in record.getMessage():
                dropped.append(record.getMessage())

    logger = logging.getLogger("interop.streams")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Drops())
    key = KEYS["streams"]
    client = await AsyncSecureClient.create(
        private_key=key, wallet=Account.from_key(key).address, environment=run.environment, logger=logger
    )
    market = run.market
    assert market is not None
    got: dict[str, object] = {}
    try:
        prices = await client.subscribe(MarketSpec(asset_ids=[yes, no], custom_feature_enabled=True))
        mine = await client.subscribe(UserSpec(markets=[market.condition_id]))

        async def first(handle: Any, want: Callable[[Any], bool], what: str) -> Any:
            async with asyncio.timeout(WAIT):
                async for event in handle:
                    if want(event):
                        return event
            raise CheckFailed(f"{what}: the stream ended")

        books: set[str] = set()
        while books != {yes, no}:
            book = await first(prices, lambda e: e.type == "book", "book snapshot")
            books.add(book.payload.asset_id)
        book = await client.get_order_book(token_id=yes)
        price = book.bids[-1].price - market.trading.minimum_tick_size
        resting = await client.place_limit_order(token_id=yes, price=price, size=5, side="BUY")
        placement = await first(mine, lambda e: e.type == "order" and e.payload.id == resting.order_id, "placement")
        expect(placement.payload.order_event_type == "PLACEMENT", f"order event {placement.payload!r}")
        ask = book.asks[-1].price
        filled = await client.place_limit_order(token_id=yes, price=ask, size=5, side="BUY")
        expect(isinstance(filled, AcceptedOrder) and filled.trade_ids, f"not filled: {filled!r}")
        trade = await first(mine, lambda e: e.type == "trade" and e.payload.id == filled.trade_ids[0], "trade")
        expect(trade.payload.status in TRADE_STATUSES and trade.payload.trader_side == "TAKER", repr(trade.payload))
        last = await first(prices, lambda e: e.type == "last_trade_price" and e.payload.asset_id == yes, "last trade")
        expect((last.payload.price, last.payload.side) == (ask, "BUY"), repr(last.payload))
        await client.cancel_all()
        got = {"books": len(books), "placement": placement.payload.id, "trade": trade.payload.status}
        await prices.close()
        await mine.close()
    finally:
        await client.close()
    expect(not dropped, f"the client dropped frames: {dropped}")
    return got


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    urls = json.loads(argv[1])
    config = dataclasses.replace(
        PRODUCTION_CONFIG,
        clob_url=urls["rest"],
        clob_market_ws_url=urls["ws_market"],
        clob_user_ws_url=urls["ws_user"],
        gamma_url=urls["gamma"],
        data_url=urls["data"],
        relayer_url=urls["relayer"],
        rpc_url=urls["rpc"],
    )
    run = Run(urls=urls, environment=create_environment(name="trader-sim", config=config))
    failed = 0
    for name, function in CHECKS:
        started = time.monotonic()
        try:
            detail = function(run)
            ok = True
        except Exception as exc:  # a check that fails says how, and the others still run
            ok, failed = False, failed + 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {exc} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        line = {"check": name, "ok": ok, "secs": round(time.monotonic() - started, 2), "detail": detail}
        print(json.dumps(line, default=str), flush=True)
    for client in run.clients.values():
        client.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
