"""`python -m bench fuzz [--examples N] [--seed S] [--parser NAME ...] [--show K]`: mutation fuzzing of every parser
of venue input, counting what each input turned into.

Parsers (each gets N random examples, default 100,000):

* `market`: `parse_market_frame` (market channel frames) -> a `ParsedFrame`; its drops, counted by reason;
* `user`: `parse_user_frame` (user channel frames) -> events and drops, counted by reason;
* `rest`: the CLOB REST client (`PolymarketRestClient`, every reply it reads: placements single and batch, cancels,
  orders and trades pages, one order, book, balance, heartbeat, tick size, neg risk, fee rate, time, API keys) over
  `httpx.MockTransport` answering the example as the body, with a 2xx status mostly and an error status sometimes
  -> a value, or the documented `VenueProtocolError` (reply not readable) / `VenueRequestError` (error status);
* `gamma`: `GammaClient.markets` and `.events` the same way, half of the examples as keyset pages (the example
  wrapped in `{"markets"|"events": ...}`) and half on the legacy paths -> a `Discovery` (its skipped markets are
  the counted drops, by reason) or neg-risk events, or `VenueProtocolError` / `VenueRequestError`;
* `espn`: `parse_scoreboard` -> games plus a count of bad events (the drops), or the documented `EspnBadReply`.

Examples are mutations of seeds (the captured venue replies under tests/fixtures/polymarket, and a few written here):
JSON-aware edits (a value replaced by one of another type, a huge or non-finite number, a decimal string that is
not one, a lone surrogate, a deep nest; a key removed or added) and byte edits (bytes flipped, inserted, deleted,
repeated, truncated, invalid UTF-8, two seeds spliced), stacked; and some purely random bytes. They are random (seed
from the OS unless `--seed`), so each run tries new inputs; the seed is printed, and `--seed S` replays a run.

Output: one JSON line per parser, `{"parser", "examples", "value", "drop", "documented_error",
"undocumented", "drops_by_reason", "documented_errors_by_type", "undocumented_by_type", "secs"}` (`value`: the parser
returned without a drop; `drop`: it returned with at least one counted drop), then a last line with the totals.
`undocumented` must be 0: anything else is a bug, and the first `--show` offending inputs go to stderr (exit 1).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx
import trio
from structlog.testing import capture_logs

from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.integrations.espn import EspnBadReply, parse_scoreboard
from trader.venues.errors import VenueProtocolError, VenueRequestError
from trader.venues.polymarket.auth import ApiCredentials
from trader.venues.polymarket.gamma import GammaClient, MarketQuery
from trader.venues.polymarket.parse import parse_market_frame
from trader.venues.polymarket.rest import AssetType, PolymarketRestClient, open_rest_client
from trader.venues.polymarket.signing import OrderSigner, SignedOrder
from trader.venues.polymarket.user_ws import parse_user_frame

FIXTURES: Final = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "polymarket"
CAPTURED: Final = FIXTURES / "captured"
#: The engine's own limit: above ~30,000 a deeply nested input overflows the C stack instead of raising.
MAX_RECURSION_LIMIT: Final = 10_000

KEY: Final = "0x" + "4c" * 32
API_KEY: Final = "00000000-0000-0000-0000-000000000001"
CREDENTIALS: Final = ApiCredentials(API_KEY, base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase")
WALLET: Final = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


# -- tallies ------------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    parser: str
    examples: int = 0
    value: int = 0
    drop: int = 0
    documented_error: int = 0
    undocumented: int = 0
    drops_by_reason: Counter[str] = field(default_factory=Counter)
    documented_errors_by_type: Counter[str] = field(default_factory=Counter)
    undocumented_by_type: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[str, bytes, str]] = field(default_factory=list)  # (where, input, traceback)

    def returned(self, drops: Sequence[str]) -> None:
        self.examples += 1
        if drops:
            self.drop += 1
            self.drops_by_reason.update(drops)
        else:
            self.value += 1

    def documented(self, exc: BaseException) -> None:
        self.examples += 1
        self.documented_error += 1
        self.documented_errors_by_type[type(exc).__name__] += 1

    def crashed(self, exc: BaseException, where: str, data: bytes, keep: int) -> None:
        self.examples += 1
        self.undocumented += 1
        self.undocumented_by_type[type(exc).__name__] += 1
        if len(self.samples) < keep:
            self.samples.append((where, data, "".join(traceback.format_exception(exc))))

    def row(self, secs: float) -> dict[str, object]:
        return {
            "parser": self.parser,
            "examples": self.examples,
            "value": self.value,
            "drop": self.drop,
            "documented_error": self.documented_error,
            "undocumented": self.undocumented,
            "drops_by_reason": dict(sorted(self.drops_by_reason.items())),
            "documented_errors_by_type": dict(sorted(self.documented_errors_by_type.items())),
            "undocumented_by_type": dict(sorted(self.undocumented_by_type.items())),
            "secs": round(secs, 2),
        }


# -- mutation -----------------------------------------------------------------------------------------------------


class Raw(str):
    """Text written into the JSON as it is (numbers JSON's own types cannot hold, bare words)."""


_TOKENS: Final[tuple[bytes, ...]] = (
    b'"', b"\\", b"{", b"}", b"[", b"]", b":", b",", b"\x00", b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\ud800",
    b"\\u0000", b"1e999", b"-", b"NaN", b"null", b"true", b"0", b"9" * 30, b" ", b"\n", b"PONG", b'"",',
)  # fmt: skip
_DECIMAL_TEXTS: Final = (
    "0", "1", "0.5", "0.50", ".5", "0.505", "0.01", "0.001", "0.0001", "1.5", "-0.1", "-0", "1e-2", "1E+400",
    "1e999999999", "1e-999999999", "NaN", "sNaN", "Infinity", "-Infinity", "", " ", " 0.5 ", "0x10", "1_000", "²",
    "١٢", "0.5\x00", "9" * 50, "9" * 5000, "0." + "0" * 60 + "1", "5", "10", "15000", "100000000000000",
)  # fmt: skip
_OTHER_TEXTS: Final = (
    "BUY", "SELL", "buy", "HOLD", "GTC", "FOK", "FAK", "GTD", "IOC", "LIVE", "MATCHED", "CANCELED",
    "CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed.", "ORDER_STATUS_LIVE", "INVALID",
    "CONFIRMED", "MINED", "FAILED", "RETRYING", "PLACEMENT", "UPDATE", "CANCELLATION", "TRADE", "MAKER", "TAKER",
    "book", "price_change", "tick_size_change", "last_trade_price", "best_bid_ask", "new_market", "market_resolved",
    "order", "trade", "pre", "in", "post", "home", "away", "Yes", "No", "1767225600", "1767225600000",
    "2026-01-01T00:00:00Z", "2026-11-20T03:30Z", "0001-01-01T00:00:00+05:00", "9" * 40, "not a date", "\ud800",
    "\udfff", "\x00", "é", "日本", "🙂", '"', "\\", "LTE=", "MA==", '["Yes", "No"]', '["1", "2"]', "[", "[" * 3000,
    API_KEY, WALLET, "FOK_ORDER_NOT_FILLED_ERROR", "INVALID_ORDER_MIN_TICK_SIZE", "not enough balance / allowance",
)  # fmt: skip
_RAW_NUMBERS: Final = (
    "1e999", "-1e999", "1e-999", "9" * 400, "9" * 5000, "-0", "0.1", "1E2", "18446744073709551616", "NaN", "Infinity",
)  # fmt: skip


def dump(value: object, *, ascii_only: bool) -> str:
    """JSON text of `value`; `Raw` as it is; lone surrogates kept (they become invalid UTF-8 when encoded)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(dump(v, ascii_only=ascii_only) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{dump(str(k), ascii_only=ascii_only)}:{dump(v, ascii_only=ascii_only)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    raise TypeError(type(value))


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _containers(value: object, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in `value`, for picking a place to edit."""
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((value, key))
            _containers(item, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((value, index))
            _containers(item, found)
    return found


class Mutator:
    """Random inputs near the seeds: JSON-aware edits, byte edits, splices, and plain random bytes."""

    def __init__(self, seeds: Sequence[bytes], rng: random.Random) -> None:
        if not seeds:
            raise ValueError("no seeds")
        self.seeds = list(seeds)
        self.rng = rng
        self.json_seeds: list[bytes] = []
        keys: set[str] = set()
        texts: set[str] = set()
        for seed in self.seeds:
            try:
                value = json.loads(seed)
            except ValueError:
                continue
            self.json_seeds.append(seed)
            for container, key in _containers(value, []):
                if isinstance(key, str):
                    keys.add(key)
                item = container[key]
                if isinstance(item, str) and len(item) < 100:
                    texts.add(item)
        self.keys = sorted(keys) or ["x"]
        self.texts = sorted(texts) + list(_OTHER_TEXTS)

    def example(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return rng.randbytes(rng.randrange(0, 64))
        if roll < 0.6 and self.json_seeds:
            data = self._json_edit()
            edits = rng.choice((0, 0, 0, 1, 2))
        else:
            data = rng.choice(self.seeds)
            edits = rng.randint(1, 4)
        for _ in range(edits):
            data = self._byte_edit(data)
        return data

    # JSON-aware

    def _scalar(self) -> object:
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:
            return rng.choice((None, True, False))
        if kind == 1:
            return rng.choice((0, 1, -1, 5, 100, 2**63, -(2**63) - 1, 2**64, 10**30))
        if kind == 2:
            return rng.choice((0.5, 0.01, -0.0, 1e308, 5e-324, 1.0, 3.14159))
        if kind == 3:
            return Raw(rng.choice(_RAW_NUMBERS))
        if kind in (4, 5):
            return rng.choice(_DECIMAL_TEXTS)
        return rng.choice(self.texts)

    def _value(self, depth: int = 0) -> object:
        rng = self.rng
        roll = rng.random()
        if depth < 3 and roll < 0.08:
            return [self._value(depth + 1) for _ in range(rng.randrange(4))]
        if depth < 3 and roll < 0.16:
            return {rng.choice(self.keys): self._value(depth + 1) for _ in range(rng.randrange(4))}
        if roll < 0.18:
            return Raw("[" * rng.choice((50, 900, 2000, 5000)))  # deep, unterminated
        if roll < 0.2:
            depth_ = rng.choice((50, 900, 2000, 5000))
            return Raw("[" * depth_ + "]" * depth_)
        if roll < 0.3 and self.json_seeds:
            return json.loads(rng.choice(self.json_seeds))  # a whole other seed, in place of a field
        return self._scalar()

    def _json_edit(self) -> bytes:
        rng = self.rng
        value: object = json.loads(rng.choice(self.json_seeds))
        for _ in range(rng.randint(1, 3)):
            places = _containers(value, [])
            if not places or rng.random() < 0.05:
                value = self._value()
                continue
            container, key = rng.choice(places)
            action = rng.random()
            if action < 0.6:
                container[key] = self._value()
            elif action < 0.75:
                del container[key]
            elif action < 0.85 and isinstance(container, dict):
                container[rng.choice(self.keys)] = self._value()
            elif isinstance(container, list):
                container.insert(rng.randrange(len(container) + 1), self._value())
            else:
                container[key] = [container[key]] if rng.random() < 0.5 else {rng.choice(self.keys): container[key]}
        if rng.random() < 0.1:
            value = [value] if rng.random() < 0.7 else [value, json.loads(rng.choice(self.json_seeds))]
        return encode(dump(value, ascii_only=rng.random() < 0.3))

    # bytes

    def _byte_edit(self, data: bytes) -> bytes:
        rng = self.rng
        n = len(data)
        kind = rng.randrange(9)
        if kind == 0 and n:  # replace a byte
            i = rng.randrange(n)
            return data[:i] + bytes((rng.randrange(256),)) + data[i + 1 :]
        if kind == 1:  # insert a token
            i = rng.randrange(n + 1)
            return data[:i] + rng.choice(_TOKENS) + data[i:]
        if kind == 2 and n:  # delete a range
            i = rng.randrange(n)
            return data[:i] + data[i + rng.randint(1, 16) :]
        if kind == 3 and n:  # repeat a range
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            return data[:j] + data[i:j] * rng.randint(1, 4) + data[j:]
        if kind == 4 and n:  # truncate
            return data[: rng.randrange(n)]
        if kind == 5:  # splice with another seed
            other = rng.choice(self.seeds)
            return data[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1) :]
        if kind == 6 and n:  # invalid UTF-8 inside the text
            i = rng.randrange(n)
            return (
                data[:i]
                + rng.choice((b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xff"))
                + data[i:]
            )
        if kind == 7:  # nest it
            depth = rng.choice((1, 2, 10, 900, 3000))
            return b"[" * depth + data + b"]" * (depth if rng.random() < 0.8 else 0)
        if kind == 8 and n:  # flip a bit
            i = rng.randrange(n)
            return data[:i] + bytes((data[i] ^ (1 << rng.randrange(8)),)) + data[i + 1 :]
        return data


# -- seeds --------------------------------------------------------------------------------------------------------


def _captured(*names: str) -> list[bytes]:
    out = []
    for name in names:
        path = CAPTURED / name
        if path.exists():
            out.append(path.read_bytes())
    return out


def _glob(pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(CAPTURED.glob(pattern))]


def market_seeds() -> list[bytes]:
    seeds = _glob("ws_market_*.json") + _captured(
        "ws_book_snapshot.json", "ws_last_trade.json", "ws_tick_size_change.json"
    )
    sample = FIXTURES / "sample_market_ws.jsonl"
    if sample.exists():
        seeds += [line.encode() for line in sample.read_text().splitlines() if line.strip()]
    seeds += [b"PONG", b"[]"]
    return seeds


def known_assets(seeds: Sequence[bytes]) -> dict[str, Decimal]:
    """Every long digit string in the seeds, as an asset followed (alternately on ticks 0.01 and 0.001)."""
    found: set[str] = set()
    for seed in seeds:
        try:
            value = json.loads(seed)
        except ValueError:
            continue
        for container, key in _containers(value, []):
            item = container[key]
            if isinstance(item, str) and item.isdigit() and len(item) >= 10:
                found.add(item)
    return {asset: Decimal("0.01") if i % 2 == 0 else Decimal("0.001") for i, asset in enumerate(sorted(found))}


def user_seeds() -> list[bytes]:
    seeds = _glob("ws_user_*.json")
    as_list = b"[" + b",".join(seeds[:3]) + b"]"
    return [*seeds, as_list, b"PONG"]


_SCOREBOARD: Final = {
    "events": [
        {
            "id": "401",
            "name": "Boston Celtics at Los Angeles Lakers",
            "shortName": "BOS @ LAL",
            "date": "2026-11-20T03:30Z",
            "competitions": [
                {
                    "competitors": [
                        {
                            "homeAway": side,
                            "winner": side == "home",
                            "score": score,
                            "team": {"displayName": name, "abbreviation": abbr, "shortDisplayName": name.split()[-1]},
                        }
                        for side, score, name, abbr in (
                            ("home", "110", "Los Angeles Lakers", "LAL"),
                            ("away", "102", "Boston Celtics", "BOS"),
                        )
                    ],
                    "status": {"type": {"state": "post", "completed": True, "name": "STATUS_FINAL"}},
                }
            ],
        }
    ]
}


def espn_seeds() -> list[bytes]:
    board = json.dumps(_SCOREBOARD).encode()
    two = json.loads(board)
    two["events"].append(json.loads(board)["events"][0] | {"id": 402, "date": None})
    two["events"][1]["competitions"][0]["status"]["type"] = {"state": "in", "completed": False, "name": "STATUS_IN"}
    return [board, json.dumps(two).encode(), b'{"events": []}']


# -- harnesses ----------------------------------------------------------------------------------------------------


def _inputs(mutator: Mutator, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield mutator.example()


def fuzz_market(tally: Tally, rng: random.Random, examples: int, keep: int) -> None:
    seeds = market_seeds()
    ticks = known_assets(seeds)
    for data in _inputs(Mutator(seeds, rng), examples):
        try:
            parsed = parse_market_frame(data, ticks)
        except Exception as exc:
            tally.crashed(exc, "parse_market_frame", data, keep)
        else:
            tally.returned([d.reason for d in parsed.drops])


def fuzz_user(tally: Tally, rng: random.Random, examples: int, keep: int) -> None:
    for data in _inputs(Mutator(user_seeds(), rng), examples):
        try:
            _, drops = parse_user_frame(data, api_key=API_KEY, addresses=(WALLET,))
        except Exception as exc:
            tally.crashed(exc, "parse_user_frame", data, keep)
        else:
            tally.returned([reason for reason, _ in drops])


def fuzz_espn(tally: Tally, rng: random.Random, examples: int, keep: int) -> None:
    for data in _inputs(Mutator(espn_seeds(), rng), examples):
        try:
            _, bad = parse_scoreboard(data, "basketball/nba")
        except EspnBadReply as exc:
            tally.documented(exc)
        except Exception as exc:
            tally.crashed(exc, "parse_scoreboard", data, keep)
        else:
            tally.returned(["BAD_EVENT"] * bad)


@dataclass
class _Reply:
    """What the mock transport answers next."""

    status: int = 200
    body: bytes = b""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, content=self.body)


@dataclass
class _KeysetReply(_Reply):
    """Gamma: the body as a keyset page (`{"<key>": body}`) on the keyset endpoints, or, when `keyset` is off, 404
    there and the body as it is on the legacy ones."""

    key: bytes = b"markets"
    keyset: bool = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/keyset"):
            if not self.keyset:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(self.status, content=b'{"' + self.key + b'": ' + self.body + b"}")
        return httpx.Response(self.status, content=self.body)


_ERROR_STATUSES: Final = (400, 400, 401, 404, 425, 429, 500, 503)


def _status(rng: random.Random) -> int:
    return 200 if rng.random() < 0.85 else rng.choice(_ERROR_STATUSES)


def _order_list(seeds: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(seeds) + b"]"


RestCall = Callable[[PolymarketRestClient, SignedOrder], Awaitable[object]]


def rest_calls() -> list[tuple[str, RestCall, list[bytes]]]:
    """(name, the client call, seed replies) of every reply the REST client reads."""
    placed = _captured("http_order_response_ok.json", "http_order_response_failed.json")
    placed += [
        b'{"success": true, "orderID": "0xabc", "status": "matched", "makingAmount": "5", "takingAmount": "10",'
        b' "tradeIDs": ["t-1"], "transactionsHashes": []}',
        b'{"error": "order couldn\'t be fully filled. FOK orders are fully filled or killed."}',
    ]
    batches = [_order_list(placed[:2]), _order_list(placed[2:])]
    cancels = _captured(
        "http_cancel_response_ok.json", "http_cancel_response_failed.json", "http_batch_cancel_response.json"
    )
    orders = [*_captured("http_open_order.json", "http_open_order_sell_fok.json"), b"null"]
    heartbeat = [b'{"heartbeat_id": "hb-1"}', b'{"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-2"}']
    ticks = [b'{"minimum_tick_size": 0.01}', b'{"minimum_tick_size": "0.001"}']
    keys = [json.dumps({"apiKey": API_KEY, "secret": CREDENTIALS.secret, "passphrase": "pass-phrase"}).encode()]
    errors = [*_captured("http_order_response_error_500.json"), b'{"error": "Invalid token id"}']
    return [
        ("POST /order", lambda c, o: c.post_order(o, order_type=OrderType.GTC), placed),
        ("POST /orders", lambda c, o: c.post_orders([(o, OrderType.GTC), (o, OrderType.FOK)]), batches),
        ("DELETE /order", lambda c, o: c.cancel("0xabc"), cancels),
        ("DELETE /orders", lambda c, o: c.cancel_orders(["0xabc", "0xdef"]), cancels),
        ("DELETE /cancel-all", lambda c, o: c.cancel_all(), cancels),
        ("GET /data/orders", lambda c, o: c.open_orders(), _captured("http_open_orders_page.json")),
        ("GET /data/order", lambda c, o: c.get_order("0xabc"), orders),
        ("GET /data/trades", lambda c, o: c.trades(), _captured("http_trades_page.json")),
        ("GET /book", lambda c, o: c.book("1"), _captured("clob_book_response.json")),
        ("GET /balance-allowance", lambda c, o: c.balance_allowance(AssetType.COLLATERAL), _glob("http_balance_*")),
        ("POST /v1/heartbeats", lambda c, o: c.heartbeat("hb-0"), heartbeat),
        ("GET /tick-size", lambda c, o: c.tick_size("1"), ticks),
        ("GET /neg-risk", lambda c, o: c.neg_risk("1"), [b'{"neg_risk": true}']),
        ("GET /fee-rate", lambda c, o: c.fee_rate_bps("1"), _glob("clob_fee_rate_response_*.json")),
        ("GET /time", lambda c, o: c.server_time(), [b"1767225600", b'{"time": 1767225600}']),
        ("POST /auth/api-key", lambda c, o: c.create_api_key(), keys),
        ("error reply", lambda c, o: c.book("1"), errors),
    ]


def fuzz_rest(tally: Tally, rng: random.Random, examples: int, keep: int) -> None:
    calls = [(name, call, Mutator(seeds, rng)) for name, call, seeds in rest_calls()]
    reply = _Reply()

    async def run() -> None:
        signer = OrderSigner(KEY)
        order = signer.limit_order_with_id(
            token_id="1",
            side=Side.BUY,
            price=Decimal("0.5"),
            size=Decimal(10),
            tick_size=Decimal("0.01"),
            neg_risk=False,
        )[0]
        async with open_rest_client(
            "http://clob.test", signer, CREDENTIALS, transport=httpx.MockTransport(reply)
        ) as rest:
            for _ in range(examples):
                name, call, mutator = rng.choice(calls)
                reply.body = mutator.example()
                reply.status = 400 if name == "error reply" else _status(rng)
                try:
                    await call(rest, order)
                except (VenueProtocolError, VenueRequestError) as exc:
                    tally.documented(exc)
                except Exception as exc:
                    tally.crashed(exc, f"{name} HTTP {reply.status}", reply.body, keep)
                else:
                    tally.returned([])

    trio.run(run)


def gamma_seeds() -> tuple[list[bytes], list[bytes]]:
    markets = _glob("gamma_market*.json")
    lists = [*(b"[" + m + b"]" for m in markets), b"[" + b",".join(markets) + b"]", b"[]"]
    events = []
    for first, second in [*itertools.pairwise(markets), (markets[0], markets[0])]:  # and a market listed twice
        event = {
            "id": "e-1",
            "title": "Who wins?",
            "negRisk": True,
            "negRiskAugmented": False,
            "markets": [json.loads(first), json.loads(second)],
        }
        events.append(json.dumps([event]).encode())
    return lists, events


def fuzz_gamma(tally: Tally, rng: random.Random, examples: int, keep: int) -> None:
    lists, events = gamma_seeds()
    market_mutator, event_mutator = Mutator(lists, rng), Mutator(events, rng)
    reply = _KeysetReply()
    query = MarketQuery(page_size=100, max_pages=1)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
            gamma = GammaClient(http, "http://gamma.test")
            for _ in range(examples):
                is_events = rng.random() < 0.3
                reply.key = b"events" if is_events else b"markets"
                reply.keyset = rng.random() < 0.5  # half on the keyset endpoints, half on the legacy ones
                reply.body = (event_mutator if is_events else market_mutator).example()
                reply.status = _status(rng)
                try:
                    if is_events:
                        await gamma.events(["e-1"])
                        drops: list[str] = []
                    else:
                        found = await gamma.markets(query)
                        drops = [reason.split(":")[0] for _, reason in found.skipped]
                except (VenueProtocolError, VenueRequestError) as exc:
                    tally.documented(exc)
                except Exception as exc:
                    where = "GammaClient.events" if is_events else "GammaClient.markets"
                    tally.crashed(exc, f"{where} HTTP {reply.status}", reply.body, keep)
                else:
                    tally.returned(drops)

    trio.run(run)


# -- main ---------------------------------------------------------------------------------------------------------


HARNESSES: Final[dict[str, Callable[[Tally, random.Random, int, int], None]]] = {
    "market": fuzz_market,
    "user": fuzz_user,
    "rest": fuzz_rest,
    "gamma": fuzz_gamma,
    "espn": fuzz_espn,
}


def run_parser(name: str, examples: int, rng: random.Random, keep: int) -> Tally:
    """`examples` random inputs through parser `name`, counted by outcome; the first `keep` crashes kept."""
    tally = Tally(name)
    HARNESSES[name](tally, rng, examples, keep)
    return tally


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="random inputs per parser (default 100000)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a new seed from the OS)")
    parser.add_argument("--parser", action="append", choices=sorted(HARNESSES), help="only these parsers (repeatable)")
    parser.add_argument("--show", type=int, default=3, help="undocumented failures to print to stderr (default 3)")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    if sys.getrecursionlimit() > MAX_RECURSION_LIMIT:
        print(
            f"the recursion limit is {sys.getrecursionlimit()} (something imported eth-account's py_ecc): a deeply "
            "nested input would overflow the C stack; run this in a fresh interpreter",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(8), "big")
    names = args.parser or list(HARNESSES)
    print(
        json.dumps({"bench": "fuzz", "seed": seed, "examples_per_parser": args.examples, "parsers": names}), flush=True
    )
    totals: Counter[str] = Counter()
    for name in names:
        rng = random.Random(f"{seed}:{name}")  # a parser's inputs depend on the seed alone: --parser NAME replays it
        start = time.perf_counter()
        with capture_logs():  # the parsers' warnings about bad input are expected by the thousand: keep stdout JSON
            tally = run_parser(name, args.examples, rng, args.show)
        print(json.dumps(tally.row(time.perf_counter() - start)), flush=True)
        totals.update(examples=tally.examples, undocumented=tally.undocumented)
        for where, data, trace in tally.samples:
            print(f"--- {name}: undocumented exception in {where} for input {data[:300]!r}\n{trace}", file=sys.stderr)
    print(
        json.dumps(
            {"bench": "fuzz", "seed": seed, "examples": totals["examples"], "undocumented": totals["undocumented"]}
        )
    )
    return 1 if totals["undocumented"] else 0
