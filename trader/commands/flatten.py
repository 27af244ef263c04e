"""`trader flatten`: cancel every open order of our key, then sell every position back into the book.

    trader flatten --dry-run                      # print the plan, send nothing
    trader flatten                                # asks for confirmation on a terminal
    trader flatten --yes --max-slippage 0.05      # no question (scripts); accept up to 5 cents below the best bid

Keys and endpoints are those of `trader run --live` (TRADER_PRIVATE_KEY, TRADER_API_*, TRADER_ENDPOINTS__*): it works
the same against a `trader sim` and against Polymarket. The positions are the venue's share balances of every token
our open orders and trades at the venue mention, the store's positions (when the database exists) and each
`--token`. Each position is sold with ONE FAK order (fill what the book takes now, cancel the rest) through the same
signing path as the engine: limit price = best bid minus `--max-slippage`, rounded UP onto the market's tick grid
(so the worst price stays within the cap), size = the shares held floored to 0.01; a position with no bid, or smaller
than the market's minimum order size, is not sold and is reported as remaining. The store is not written: run
`trader reconcile --fix` afterwards. Run it while the engine is stopped (`trader stop` first), or the engine will
trade again.

Prints one JSON report: what was cancelled, each sell (limit price, filled shares, average price, proceeds, or the
venue's refusal) and what remains at the venue afterwards.

Exit status: 0 nothing sellable remains (or the dry run was printed), 1 something remains, the operator declined,
or the venue could not be reached, 2 bad arguments, or no --yes without a terminal to ask on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from functools import partial
from typing import Final

import trio

from trader.commands.checks import add_env_file_argument, env_file
from trader.commands.reconcile import (
    EXIT_DIFFER,
    check_live_store,
    database_url,
    decimal_text,
    describe_failure,
    open_live_venue,
    venue_shares,
)
from trader.domain.enums import OrderType
from trader.domain.intents import OrderIntent
from trader.domain.numbers import ONE, ZERO, Side
from trader.errors import ConfigError
from trader.infra.logging import configure_logging
from trader.integrations.store.open import open_store
from trader.settings import Settings, load_settings
from trader.venues.base import SubmitAccepted, VenueOrder
from trader.venues.errors import VenueError
from trader.venues.polymarket.venue import PolymarketVenue

EXIT_FLAT: Final = 0
EXIT_NOT_FLAT: Final = EXIT_DIFFER
PHASE_TIMEOUT_SECS: Final = 120.0
SHARE_STEP: Final = Decimal("0.01")
AVG_PRICE_STEP: Final = Decimal("0.000001")  # an average of several levels is shown to 6 places
STRATEGY: Final = "flatten"


def _slippage(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a price difference such as 0.02, got {text!r}") from None
    if not value.is_finite() or not ZERO <= value < ONE:
        raise argparse.ArgumentTypeError(f"expected a value in [0, 1), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--dry-run", action="store_true", help="print the plan only; send nothing")
    parser.add_argument(
        "--max-slippage",
        type=_slippage,
        default=Decimal("0.02"),
        metavar="P",
        help="sell down to this much below the best bid, in price units (default 0.02)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--token", action="append", default=[], metavar="TOKEN_ID", help="also flatten this token (repeatable)"
    )
    parser.add_argument("--database-url", metavar="URL", help="the store whose positions to include (optional)")
    add_env_file_argument(parser)


# -- the plan (pure) -----------------------------------------------------------------------------------------------


def sell_price(best_bid: Decimal, max_slippage: Decimal, tick: Decimal) -> Decimal:
    """The FAK limit: best bid minus the slippage cap, rounded UP onto the tick grid, within [tick, 1 - tick]."""
    steps = ((best_bid - max_slippage) / tick).to_integral_value(rounding=ROUND_CEILING)
    return min(max(steps * tick, tick), ONE - tick)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sell:
    """What to do with one position: `size` shares at `price` or at worst, or nothing (`skip` says why)."""

    token_id: str
    condition_id: str
    shares: Decimal
    best_bid: Decimal | None
    tick_size: Decimal
    min_order_size: Decimal
    price: Decimal | None = None
    size: Decimal = ZERO
    skip: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "token_id": self.token_id,
            "shares": decimal_text(self.shares),
            "best_bid": None if self.best_bid is None else decimal_text(self.best_bid),
            "limit_price": None if self.price is None else decimal_text(self.price),
            "size": decimal_text(self.size),
            "skip": self.skip,
        }


def plan_sell(
    *,
    token_id: str,
    condition_id: str,
    shares: Decimal,
    best_bid: Decimal | None,
    tick_size: Decimal,
    min_order_size: Decimal,
    max_slippage: Decimal,
) -> Sell:
    size = shares.quantize(SHARE_STEP, rounding=ROUND_DOWN)
    base = Sell(
        token_id=token_id,
        condition_id=condition_id,
        shares=shares,
        best_bid=best_bid,
        tick_size=tick_size,
        min_order_size=min_order_size,
    )
    if size <= ZERO or size < min_order_size:
        return dataclasses.replace(
            base, skip=f"below the market's minimum order size ({decimal_text(min_order_size)} shares)"
        )
    if best_bid is None:
        return dataclasses.replace(base, skip="no bid in the book")
    return dataclasses.replace(base, price=sell_price(best_bid, max_slippage, tick_size), size=size)


# -- talking to the venue ------------------------------------------------------------------------------------------


async def positions_to_flatten(venue: PolymarketVenue, tokens: Iterable[str]) -> dict[str, Decimal]:
    shares, _ = await venue_shares(venue, tokens)
    return {token: held for token, held in shares.items() if held > ZERO}


async def plan(venue: PolymarketVenue, positions: dict[str, Decimal], max_slippage: Decimal) -> list[Sell]:
    sells = []
    for token, shares in sorted(positions.items()):
        book = await venue.rest.book(token)
        tick = book.tick_size if book.tick_size is not None else await venue.rest.tick_size(token)
        sells.append(
            plan_sell(
                token_id=token,
                condition_id=book.condition_id,
                shares=shares,
                best_bid=book.bids[0].price if book.bids else None,
                tick_size=tick,
                min_order_size=book.min_order_size or ZERO,
                max_slippage=max_slippage,
            )
        )
    return sells


async def execute(venue: PolymarketVenue, sell: Sell) -> dict[str, object]:
    """Send one FAK sell; what happened to it (never raises for a venue failure: the outcome is then unknown)."""
    assert sell.price is not None
    intent = OrderIntent(
        client_order_id=f"{STRATEGY}-{uuid.uuid4().hex[:16]}",
        strategy=STRATEGY,
        condition_id=sell.condition_id,
        token_id=sell.token_id,
        side=Side.SELL,
        price=sell.price,
        size=sell.size,
        order_type=OrderType.FAK,
    )
    result: dict[str, object] = {
        "token_id": sell.token_id,
        "limit_price": decimal_text(sell.price),
        "size": decimal_text(sell.size),
    }
    try:
        order = await venue.prepare(intent, ts=time.time())
        result["order_id"] = order.order_id
        outcome = await venue.submit(order)
    except VenueError as exc:
        result.update(status="UNKNOWN", reason=f"{type(exc).__name__}: {exc}")
        return result
    if not isinstance(outcome, SubmitAccepted):
        result.update(status="REJECTED", reason=str(outcome.reason), message=outcome.message, sold="0")
        return result
    sold = outcome.filled_size
    result.update(status="SOLD" if sold >= sell.size else "PARTIAL" if sold else "NOT_FILLED", sold=decimal_text(sold))
    if sold:
        result.update(
            avg_price=decimal_text((outcome.filled_notional / sold).quantize(AVG_PRICE_STEP)),
            proceeds=decimal_text(outcome.filled_notional),
        )
    return result


def _order_json(order: VenueOrder) -> dict[str, object]:
    return {
        "order_id": order.order_id,
        "token_id": order.token_id,
        "side": str(order.side),
        "price": decimal_text(order.price),
        "size": decimal_text(order.original_size),
        "size_matched": decimal_text(order.size_matched),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenOptions:
    dry_run: bool
    max_slippage: Decimal
    tokens: tuple[str, ...]
    database_url: str | None
    confirm: Callable[[str], bool] | None  # None: confirmed already (--yes)


async def _store_tokens(settings: Settings, url: str | None) -> list[str]:
    if url is None:
        return []
    async with open_store(url) as store:
        await check_live_store(store, settings, url)  # a paper store's tokens are not this account's
        return [p.token_id for p in await store.load_positions() if p.quantity]


async def flatten(settings: Settings, options: FlattenOptions) -> tuple[int, dict[str, object]]:
    """(exit status, report)."""
    with trio.fail_after(PHASE_TIMEOUT_SECS):
        stored = await _store_tokens(settings, options.database_url)
    async with open_live_venue(settings, "flatten") as venue:
        with trio.fail_after(PHASE_TIMEOUT_SECS):
            open_orders = await venue.open_orders()
            tokens = {*options.tokens, *stored, *(o.token_id for o in open_orders)}
            tokens.update(t.token_id for t in await venue.trades())
            sells = await plan(venue, await positions_to_flatten(venue, tokens), options.max_slippage)
        report: dict[str, object] = {
            "dry_run": options.dry_run,
            "max_slippage": decimal_text(options.max_slippage),
            "cancel": [_order_json(o) for o in open_orders],
            "plan": [s.to_json() for s in sells],
        }
        if options.dry_run:
            return EXIT_FLAT, report
        if options.confirm is not None:
            question = _summary(open_orders, sells)
            if not await trio.to_thread.run_sync(options.confirm, question):
                report["aborted"] = "not confirmed: nothing was sent"
                return EXIT_NOT_FLAT, report
        with trio.fail_after(PHASE_TIMEOUT_SECS):
            canceled = await venue.cancel_all(reason="FLATTEN")
            report["canceled"] = list(canceled.canceled)
            report["not_canceled"] = dict(canceled.not_canceled)
            # Fresh books and balances: the cancels freed shares and may have removed our own bids.
            sells = await plan(venue, await positions_to_flatten(venue, tokens), options.max_slippage)
        with trio.fail_after(PHASE_TIMEOUT_SECS):
            report["sells"] = [await execute(venue, s) for s in sells if s.skip is None]
        with trio.fail_after(PHASE_TIMEOUT_SECS):
            left = await plan(venue, await positions_to_flatten(venue, tokens), options.max_slippage)
        report["remaining"] = [
            {"token_id": s.token_id, "shares": decimal_text(s.shares), "sellable": s.skip is None, "note": s.skip}
            for s in left
        ]
        unsold = [s for s in left if s.skip is None or s.best_bid is None]  # dust below the minimum does not count
        report["flat"] = not unsold
        return (EXIT_NOT_FLAT if unsold else EXIT_FLAT), report


def _summary(open_orders: Sequence[VenueOrder], sells: Sequence[Sell]) -> str:
    lines = [f"cancel {len(open_orders)} open order(s), then sell:"]
    for s in sells:
        if s.skip is None:
            lines.append(
                f"  {s.token_id}: {decimal_text(s.size)} shares, FAK at {decimal_text(s.price or ZERO)} or better"
            )
        else:
            lines.append(f"  {s.token_id}: {decimal_text(s.shares)} shares NOT sold ({s.skip})")
    return "\n".join(lines)


def ask_on_terminal(question: str) -> bool:
    print(question, file=sys.stderr)
    try:
        answer = input("Type 'flatten' to go ahead: ")
    except EOFError:
        return False
    return answer.strip().lower() == "flatten"


def run(args: argparse.Namespace) -> int:
    settings = load_settings(dict(os.environ), dotenv=env_file(args))
    settings.keys.signer("trader flatten")
    settings.keys.credentials()
    confirm: Callable[[str], bool] | None = None
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to flatten without --yes: standard input is not a terminal to ask on")
        confirm = ask_on_terminal
    url: str | None = None
    if args.database_url is not None:
        url = database_url(args.database_url, settings)  # named explicitly: it must exist
    else:
        try:
            url = database_url(None, settings)
        except ConfigError:
            url = None  # no store here: the venue's own records name the tokens
    for token in args.token:
        if not (token.isascii() and token.isdigit()):
            raise ConfigError(f"--token: expected a token id (decimal digits), got {token[:80]!r}")
    options = FlattenOptions(
        dry_run=args.dry_run,
        max_slippage=args.max_slippage,
        tokens=tuple(args.token),
        database_url=url,
        confirm=confirm,
    )
    configure_logging(level=settings.run.log_level, fmt=settings.run.log_format)
    try:
        status, report = trio.run(partial(flatten, settings, options))
    except Exception as exc:
        print(f"trader: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_NOT_FLAT
    print(json.dumps(report))
    return status
