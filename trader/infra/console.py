"""The console: log events as lines a person reads on a terminal (JSON lines are for machines; `logging` picks).

    14:02:11 info  order_filled   client_order_id=sum_to_100-1-0  side=BUY  token_id=5550…6782 "Will it rain…? · Yes"
    14:02:20 info  status         ACTIVE · equity 1,002.31 · cash 756.93 · locked 0.00 · PnL +3.27 realized, …
    14:03:00 WARN  gamma_listing_incomplete  path=/markets  reason="PAGE_LIMIT: …"
                   → narrow the market selection (tag_id, slugs, ...) or raise markets.max_pages

What makes it readable, against the structured event:
- the wall-clock time only (local, to the second); the level in four letters, coloured on a colour terminal;
- token and condition ids shortened (`5550…6782`) with the market's name next to them (`trader.infra.names`), also
  inside lists and as the keys of a mapping; the session prefix dropped from client order and arbitrage ids;
- an event's `hint` (what to do about it; `HINTS` has them for events that carry none) on its own line under the
  event, after an arrow;
- the periodic `status` event as one line: state, equity, cash, locked, PnL, fills, refusals by reason, books.

The renderer is the last structlog processor; everything before it (levels, secret scrubbing) is shared with JSON.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from trader.infra.names import NAMES, MarketNames

__all__ = [
    "HINTS",
    "REFUSAL_KINDS",
    "ConsoleRenderer",
    "counts_text",
    "format_status",
    "halt_lines",
    "money_text",
    "signed_text",
    "use_colour",
]

#: keys whose values are token or condition ids: shown short, with the market's name
_MARKET_KEYS = frozenset({"token_id", "asset_id", "condition_id", "market", "token", "yes_token", "no_token"})
#: keys whose values are our order or arbitrage ids: the session prefix is noise on a console
_ORDER_KEYS = frozenset({"client_order_id", "client_order_ids", "arb_id", "legs", "tokens_differing"})
_SESSION_PREFIX = re.compile(r"^[0-9a-f]{12,32}-")
#: the same prefix inside a text (`detail="leg 1a25…-sum_to_100-3-0: …"`): hex, a hyphen, then a strategy name
_SESSION_IN_TEXT = re.compile(r"\b[0-9a-f]{12,32}-(?=[A-Za-z_])")
_LONG_NUMBER = re.compile(r"^(0x[0-9a-fA-F]{40,}|[0-9]{30,})$")
_SKIP = frozenset({"event", "level", "timestamp", "hint", "exception", "_record", "_from_structlog"})
_LEVELS = {
    "debug": ("dbug", "\x1b[2m"),
    "info": ("info", "\x1b[32m"),
    "warning": ("WARN", "\x1b[33;1m"),
    "error": ("ERR!", "\x1b[31;1m"),
    "critical": ("CRIT", "\x1b[41;97;1m"),
}
_RESET, _DIM, _BOLD = "\x1b[0m", "\x1b[2m", "\x1b[1m"
_EVENT_WIDTH = 24

#: What a person can do about an event that does not carry its own `hint`, by event name (or `event:reason`).
HINTS = {
    "store_unavailable": "the database does not answer: trading is halted until it is back and resumes by itself; "
    "check the PostgreSQL server (`trader doctor`)",
    "trading_halted:STORE_UNAVAILABLE": "bring the database back: trading resumes by itself",
    "trading_halted:VENUE_AUTH_FAILED": "check TRADER_API_KEY, TRADER_API_SECRET and TRADER_API_PASSPHRASE; trading "
    "resumes by itself once the venue accepts them",
    "trading_halted:VENUE_UNREACHABLE": "nothing to do if the venue is down: trading resumes by itself when it "
    "answers; otherwise check the network and TRADER_ENDPOINTS__REST_URL",
    "emergency_stop": "trading is halted and every order cancelled; `trader stop --resume` trades again",
    "daily_loss_breached": "trading is halted (TRADER_RISK__MAX_DAILY_LOSS_USD); `trader stop --resume` trades again",
    "disconnect_storm": "the venue's WebSocket keeps dropping: check the network and the venue's status; the engine "
    "reconnects and resyncs the books by itself",
    "market_ws_reconnecting": "the engine reconnects by itself; if it keeps happening, check the network and "
    "TRADER_ENDPOINTS__WS_MARKET_URL",
    "breaker_opened": "calls of this kind are refused for a while; a probe closes the breaker when the venue answers "
    "again (`trader status` shows it)",
    "book_suspect_resync": "the local book disagreed with the venue's: it is fetched again (nothing to do)",
    "gamma_refresh_failed": "the markets followed are kept and discovery tries again at the next refresh; if it "
    "keeps failing, check TRADER_ENDPOINTS__GAMMA_URL",
    "restart_reconcile_failed": "the store was not brought up to date with the venue at start: run `trader "
    "reconcile` once the venue answers",
    "live_cash_unread": "the wallet's pUSD could not be read: `trader doctor` checks the venue, the RPC and the keys",
    "paper_wallet_missing": "a first paper run on this database: the wallet starts from TRADER_RUN__STARTING_CASH_USD",
    "fill_not_applicable": "the venue reports a fill our order record cannot take: the position follows the venue; "
    "`trader reconcile` compares the store with it",
    "admin_request_refused": "a request to an admin route came without the right TRADER_ADMIN_TOKEN",
    "signal_received_draining": "orders in flight finish and resting ones are cancelled; Ctrl+C again cuts the "
    "drain short (resting orders may then remain at the venue)",
    "sink_flush_timed_out": "an output (store, Redis, Slack) did not finish writing before exit; after a live run, "
    "`trader reconcile` compares the store with the venue",
}
_MAX_VALUE = 160


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


class ConsoleRenderer:
    """A structlog renderer: one event dict -> one or two lines of text."""

    def __init__(self, *, colour: bool = False, names: MarketNames = NAMES) -> None:
        self._colour = colour
        self._names = names

    def __call__(self, _: object, __: str, event_dict: MutableMapping[str, Any]) -> str:
        level = str(event_dict.get("level", "info"))
        tag, colour = _LEVELS.get(level, (level[:4], ""))
        event = str(event_dict.get("event", ""))
        time = str(event_dict.get("timestamp", ""))
        if event == "status":
            body = format_status(event_dict)
        else:
            body = "  ".join(self._field(k, v) for k, v in event_dict.items() if k not in _SKIP)
        head = f"{self._paint(time, _DIM)} {self._paint(tag, colour)}  {self._paint(event.ljust(_EVENT_WIDTH), _BOLD)}"
        line = f"{head} {body}".rstrip()
        hint = event_dict.get("hint") or HINTS.get(f"{event}:{event_dict.get('reason')}") or HINTS.get(event)
        if hint:
            line += "\n" + " " * (len(time) + 8) + self._paint(f"→ {hint}", colour or _BOLD)
        exception = event_dict.get("exception")
        if exception:
            line += "\n" + str(exception).rstrip()
        return line

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self._colour and code else text

    def _field(self, key: str, value: object) -> str:
        return f"{self._paint(key, _DIM)}={self._value(key, value)}"

    def _value(self, key: str, value: object) -> str:
        if key in _MARKET_KEYS and isinstance(value, str):
            return self._names.label(value)
        if key in _ORDER_KEYS:
            if isinstance(value, str):
                return _SESSION_PREFIX.sub("", value)
            if isinstance(value, list | tuple):
                return "[" + ", ".join(_SESSION_PREFIX.sub("", str(v)) for v in value) + "]"
        if isinstance(value, Mapping):
            return "{" + ", ".join(f"{self._key(str(k))}: {self._value('', v)}" for k, v in value.items()) + "}"
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            return "[" + ", ".join(self._key(v) for v in value) + "]"
        text = self._key(value) if isinstance(value, str) else str(value)
        if " " in text and not text.startswith(("{", "[", '"')):
            text = f'"{text}"'
        return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"

    def _key(self, text: str) -> str:
        """A long id as its label (short, with the market's name when known); any other text as it is."""
        return self._names.label(text) if _LONG_NUMBER.match(text) else _SESSION_IN_TEXT.sub("", text)


def money_text(value: object) -> str:
    """An amount of money to the cent, with thousands separators (display only: the records stay exact)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents if cents else abs(cents):,}"  # no "-0.00"


def signed_text(value: object) -> str:
    """`money_text` with its sign, for a PnL."""
    text = money_text(value)
    return text if text.startswith("-") else "+" + text


def counts_text(counts: Mapping[str, object], *, limit: int | None = None) -> str:
    """`REASON n, REASON n` (the first `limit` only, then an ellipsis)."""
    items = list(counts.items())
    shown = ", ".join(f"{reason} {n}" for reason, n in items[:limit])
    return shown + (", …" if limit is not None and len(items) > limit else "")


#: the kinds of refusals (`trader.app.views.refusals_of`), in words
REFUSAL_KINDS = {"denied": "denied by the risk gate", "rejected": "rejected by the venue", "not_sent": "not sent"}


def halt_lines(halt: Mapping[str, object]) -> list[str]:
    """A halt document (`trader.app.views.halt_of`) in two lines for a person: what, since when, why and by whom;
    then what to do."""
    return [
        f"  {halt.get('state')} since {halt.get('since')}: {halt.get('reason')}, by {halt.get('by')}",
        f"    → {halt.get('what_to_do')}",
    ]


def format_status(event: Mapping[str, Any]) -> str:
    """The periodic `status` event as one line (see `trader.app.console.status_fields` for the fields)."""
    parts = [str(event.get("state", "?"))]
    halt = event.get("halt")
    if halt:
        parts[0] += f" ({halt})"
    parts.append(f"equity {money_text(event.get('equity'))}")
    parts.append(f"cash {money_text(event.get('cash'))}")
    parts.append(f"locked {money_text(event.get('locked'))}")
    parts.append(
        f"PnL {signed_text(event.get('realized_pnl'))} realized, {signed_text(event.get('unrealized_pnl'))} unrealized"
    )
    parts.append(f"fills {event.get('fills', 0)}")
    refusals = event.get("refusals") or {}
    if isinstance(refusals, Mapping) and refusals:
        total = sum(int(n) for n in refusals.values())
        parts.append(f"refused {total} ({counts_text(refusals, limit=4)})")
    else:
        parts.append("refused 0")
    books = event.get("books")
    if books is not None:
        parts.append(f"books {books}")
    return " · ".join(parts)
