"""Fault injection for the simulated venue, callable from tests, from `trader sim --fault ...` and from the admin
endpoint `POST /_sim/faults` (body `{"kind": "<kind>", ...params}`; `GET` lists the armed faults, `DELETE` clears).

Kinds (parameters in brackets, all optional):
- `reject_orders` [count=1, token_id, side, owner, code, message, http_status]: the next matching orders are
  refused (e.g. one side of a YES/NO pair: pass that leg's token_id);
- `partial_fills` [count=1, fraction=0.5, token_id, side, owner]: the next matching orders may match only that
  fraction of their size on entry; the makers they would have matched next pull their quotes, and the remainder
  rests (GTC/GTD, without crossing), is cancelled (FAK), or the FOK is killed;
- `ghost_fills` [count=1, token_id, side, owner]: trades of the next matching orders go MATCHED then FAILED, and
  their balances are reverted;
- `settlement_path` [path=retrying, count=1, token_id, side, owner]: trades of the next matching orders settle along
  another of the venue's 2026 paths (`trader.venues.sim.exchange.SETTLEMENT_PATHS`): `retrying` (MATCHED, MINED,
  RETRYING, MINED, CONFIRMED), `failed_after_mined` (MATCHED, MINED, FAILED: balances reverted), `not_broadcasted`
  (MATCHED_NOT_BROADCASTED, MATCHED, MINED, CONFIRMED);
- `delay_http` [secs=1, count (default: until cleared), service=clob, path_prefix]: replies are delayed;
- `http_errors` [status=429, count=1, service=clob, path_prefix]: a burst of 429/5xx replies;
  both match requests of any method whose path starts with `path_prefix` (`/order` also holds back
  `DELETE /order` and `/orders` cancels, each using up one of `count`);
- `drop_ws` [channel=market|user|all]: every WebSocket is closed abruptly (no close frame);
- `stall_ws` / `resume_ws`: connections stop sending and reading (PINGs go unanswered) but stay open;
- `malformed_frames` [frame=garbage|out_of_range|unknown_event|missing_fields]: one bad frame of that kind to every
  market subscriber (`garbage`: truncated JSON; `out_of_range`: a price of 1.5 and a size of -10; `unknown_event`: an
  `event_type` the venue does not send; `missing_fields`: a `book` without its levels). The parameter is `frame`, not
  `kind`: in the endpoint's body `kind` names the fault (`kind=` still works on the command line, as before);
- `chain_refuse` [count=1, source=all|rpc|relayer, message]: the next transactions sent to the node
  (`eth_sendRawTransaction` answers a JSON-RPC error) or submitted to the relayer (400 `{"error": message}`) are
  refused; nothing happens;
- `chain_stuck` [count=1, source]: the next accepted transactions are never mined (no receipt; a relayer transaction
  stays `STATE_EXECUTED`);
- `chain_revert` [count=1, source, reason="execution reverted"]: the next accepted transactions revert when mined
  (receipt status 0; `STATE_FAILED` at the relayer), balances unchanged;
- the venue's trading modes (`trader.venues.sim.restrictions`), each from now on:
  - `restart` [secs=90, post_only_secs=120]: the matching engine restarts: every order and cancel endpoint answers
    425 for `secs`, then the post-only window follows for `post_only_secs`;
  - `post_only` [secs=120]: only orders with `postOnly` are taken (others: 503 with `code: post_only_mode`);
  - `cancel_only` [secs: until cleared]: orders 503 cancel-only, cancels pass;
  - `trading_disabled` [secs: until cleared]: orders and cancels 503 trading disabled;
  - `closed_only` [address: every client, enabled=true]: the closed-only endpoint says so for that address (signer
    or funder), and its buys are refused 400 `'<address>' address in closed only mode`;
- `clear`: disarm everything and resume stalled sockets.

A parameter a kind does not take is refused with the list of those it does (a misspelt one would otherwise be
ignored, and the fault armed with its defaults).

Order faults apply to client orders only (owners not starting with `sim-`, the scenario's own participants),
unless `owner` names one.

To add a kind: a method on `FaultInjector` plus a row in `FAULT_KINDS` (a function from (injector, params) to a
short description of what was armed or done).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from trader.domain.numbers import Side
from trader.errors import InputError
from trader.venues.sim.exchange import (
    NOT_ENOUGH_BALANCE_MESSAGE,
    SETTLEMENT_PATHS,
    Exchange,
    OrderRequest,
    Rejected,
)
from trader.venues.sim.httpserver import HttpResponse
from trader.venues.sim.restrictions import ALL_CLIENTS, TradingModes, closed_only_text
from trader.venues.sim.ws import WsHub

#: Owners of the scenario's simulated participants (makers, takers) start with this.
SCENARIO_OWNER_PREFIX = "sim-"


@dataclass(slots=True, eq=False)
class _OrderRule:
    kind: str
    remaining: int
    token_id: str | None = None
    side: Side | None = None
    owner: str | None = None
    rejection: Rejected | None = None
    fraction: Decimal = Decimal("0.5")
    path: str = "normal"  # settlement faults: the key of SETTLEMENT_PATHS

    def matches(self, request: OrderRequest) -> bool:
        if self.owner is None and request.owner.startswith(SCENARIO_OWNER_PREFIX):
            return False  # faults target clients, not the scenario's own simulated participants
        return (
            (self.token_id is None or request.token_id == self.token_id)
            and (self.side is None or request.side is self.side)
            and (self.owner is None or request.owner == self.owner)
        )


@dataclass(slots=True, eq=False)
class _ChainRule:
    kind: str
    remaining: int
    source: str  # "rpc", "relayer" or "all"
    text: str = ""

    def matches(self, source: str) -> bool:
        return self.source in ("all", source)


_CHAIN_SOURCES = ("all", "rpc", "relayer")
REFUSED_MESSAGE = "insufficient funds for gas * price + value"


@dataclass(slots=True, eq=False)
class _HttpRule:
    kind: str
    remaining: int | None
    service: str
    path_prefix: str
    status: int = 429
    delay_secs: float = 0.0

    def matches(self, service: str, path: str) -> bool:
        return (self.service in ("*", service)) and path.startswith(self.path_prefix)


_HTTP_ERROR_BODIES = {
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",  # a proxy's: the venue's trading-disabled 503 is the `trading_disabled` fault
}


class FaultInjector:
    """Armed faults. Implements `ExchangeHooks`; the WebSocket faults act through the attached `WsHub`."""

    def __init__(self) -> None:
        self._order_rules: list[_OrderRule] = []
        self._http_rules: list[_HttpRule] = []
        self._chain_rules: list[_ChainRule] = []
        self.ws: WsHub | None = None
        self.exchange: Exchange | None = None
        self.modes = TradingModes()
        #: the sim's unix seconds (set by the venue: its clock follows the Trio clock)
        self.clock: Callable[[], float] = time.time

    def attach(self, exchange: Exchange, ws: WsHub) -> None:
        self.exchange, self.ws = exchange, ws

    def armed(self) -> list[dict[str, object]]:
        orders: list[dict[str, object]] = [
            {"kind": r.kind, "remaining": r.remaining, "token_id": r.token_id, "side": r.side, "owner": r.owner}
            | ({"path": r.path} if r.kind == "settlement" else {})
            for r in self._order_rules
        ]
        http: list[dict[str, object]] = [
            {"kind": r.kind, "remaining": r.remaining, "service": r.service, "path_prefix": r.path_prefix}
            for r in self._http_rules
        ]
        chain: list[dict[str, object]] = [
            {"kind": r.kind, "remaining": r.remaining, "source": r.source} for r in self._chain_rules
        ]
        stalled: list[dict[str, object]] = [{"kind": "stall_ws"}] if self.ws is not None and self.ws.stalled else []
        return orders + http + chain + stalled + self.modes.armed(self.clock())

    def clear(self) -> None:
        self._order_rules.clear()
        self._http_rules.clear()
        self._chain_rules.clear()
        self.modes.clear()
        if self.ws is not None:
            self.ws.resume()

    # -- exchange hooks -------------------------------------------------------------------------------------

    def _take(self, kind: str, request: OrderRequest) -> _OrderRule | None:
        for rule in self._order_rules:
            if rule.kind == kind and rule.matches(request):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._order_rules.remove(rule)
                return rule
        return None

    def on_submit(self, request: OrderRequest) -> Rejected | None:
        closed = self._closed_only(request)
        if closed is not None:
            return closed
        rule = self._take("reject", request)
        return rule.rejection if rule is not None else None

    def _closed_only(self, request: OrderRequest) -> Rejected | None:
        """A buy of a closed-only account (scenario participants only when named)."""
        modes = self.modes
        if not modes.closed_only or request.side is not Side.BUY:
            return None
        named = request.maker_address.lower() in modes.closed_only
        client = not request.owner.startswith(SCENARIO_OWNER_PREFIX)
        if named or (client and ALL_CLIENTS in modes.closed_only):
            modes.refused["closed_only"] += 1
            return Rejected("CLOSED_ONLY", closed_only_text(request.maker_address), 400)
        return None

    # -- trading modes (`trader.venues.sim.restrictions`) ---------------------------------------------------

    def restart(self, *, secs: float = 90.0, post_only_secs: float = 120.0) -> None:
        if secs < 0 or post_only_secs < 0:
            raise InputError("secs", "must not be negative")
        self.modes.restart(self.clock(), secs, post_only_secs)

    def post_only(self, *, secs: float = 120.0) -> None:
        if secs < 0:
            raise InputError("secs", "must not be negative")
        self.modes.post_only(self.clock(), secs)

    def cancel_only(self, *, secs: float = math.inf) -> None:
        if secs < 0:
            raise InputError("secs", "must not be negative")
        self.modes.cancel_only_until = self.clock() + secs

    def trading_disabled(self, *, secs: float = math.inf) -> None:
        if secs < 0:
            raise InputError("secs", "must not be negative")
        self.modes.disabled_until = self.clock() + secs

    def closed_only(self, address: str = ALL_CLIENTS, *, enabled: bool = True) -> None:
        self.modes.set_closed_only(address, enabled)

    def fill_cap(self, request: OrderRequest) -> int | None:
        rule = self._take("partial", request)
        if rule is None:
            return None
        size = request.taker_amount if request.side is Side.BUY else request.maker_amount
        return int(Decimal(size) * rule.fraction) // 10_000 * 10_000  # whole cents of a share

    def ghost_trade(self, request: OrderRequest) -> bool:
        return self._take("ghost", request) is not None

    def settlement_path(self, request: OrderRequest) -> str | None:
        rule = self._take("settlement", request)
        return None if rule is None else rule.path

    # -- order faults ---------------------------------------------------------------------------------------

    def reject_orders(
        self,
        *,
        count: int = 1,
        token_id: str | None = None,
        side: Side | None = None,
        owner: str | None = None,
        code: str = "INVALID_ORDER_NOT_ENOUGH_BALANCE",
        message: str = NOT_ENOUGH_BALANCE_MESSAGE,
        http_status: int = 400,
    ) -> None:
        rejection = Rejected(code, message, http_status)
        self._order_rules.append(_OrderRule("reject", count, token_id, side, owner, rejection=rejection))

    def partial_fills(
        self,
        *,
        count: int = 1,
        fraction: Decimal = Decimal("0.5"),
        token_id: str | None = None,
        side: Side | None = None,
        owner: str | None = None,
    ) -> None:
        if not Decimal(0) <= fraction < 1:
            raise InputError("fraction", "must be in [0, 1)")
        self._order_rules.append(_OrderRule("partial", count, token_id, side, owner, fraction=fraction))

    def ghost_fills(
        self, *, count: int = 1, token_id: str | None = None, side: Side | None = None, owner: str | None = None
    ) -> None:
        self._order_rules.append(_OrderRule("ghost", count, token_id, side, owner))

    def settle_along(
        self,
        path: str,
        *,
        count: int = 1,
        token_id: str | None = None,
        side: Side | None = None,
        owner: str | None = None,
    ) -> None:
        """Trades of the next `count` matching orders settle along `path` (a key of `SETTLEMENT_PATHS`)."""
        if path not in SETTLEMENT_PATHS or path in ("normal", "ghost"):
            choices = sorted(set(SETTLEMENT_PATHS) - {"normal", "ghost"})
            raise InputError("path", f"expected one of {', '.join(choices)} (ghost_fills fails at once), got {path!r}")
        self._order_rules.append(_OrderRule("settlement", count, token_id, side, owner, path=path))

    # -- chain faults (`trader.venues.sim.chain.ChainHooks`) ---------------------------------------------------

    def arm_chain(self, kind: str, *, count: int = 1, source: str = "all", text: str = "") -> None:
        if kind not in ("refuse", "stuck", "revert"):
            raise InputError("kind", "expected refuse, stuck or revert")
        if source not in _CHAIN_SOURCES:
            raise InputError("source", f"expected one of {', '.join(_CHAIN_SOURCES)}")
        self._chain_rules.append(_ChainRule(kind, count, source, text))

    def _take_chain(self, kind: str, source: str) -> _ChainRule | None:
        for rule in self._chain_rules:
            if rule.kind == kind and rule.matches(source):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._chain_rules.remove(rule)
                return rule
        return None

    def refuse_send(self, source: str) -> str | None:
        rule = self._take_chain("refuse", source)
        return None if rule is None else rule.text or REFUSED_MESSAGE

    def hold_forever(self, source: str) -> bool:
        return self._take_chain("stuck", source) is not None

    def revert_reason(self, source: str) -> str | None:
        rule = self._take_chain("revert", source)
        return None if rule is None else rule.text or "execution reverted"

    # -- HTTP faults ----------------------------------------------------------------------------------------

    def delay_http(
        self, secs: float, *, count: int | None = None, service: str = "clob", path_prefix: str = ""
    ) -> None:
        if secs < 0:
            raise InputError("secs", "must not be negative")
        self._http_rules.append(_HttpRule("delay", count, service, path_prefix, delay_secs=secs))

    def http_errors(self, status: int = 429, *, count: int = 1, service: str = "clob", path_prefix: str = "") -> None:
        if status not in _HTTP_ERROR_BODIES:
            raise InputError("status", f"expected one of {sorted(_HTTP_ERROR_BODIES)}")
        self._http_rules.append(_HttpRule("error", count, service, path_prefix, status=status))

    def _take_http(self, kind: str, service: str, path: str) -> _HttpRule | None:
        for rule in self._http_rules:
            if rule.kind == kind and rule.matches(service, path):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._http_rules.remove(rule)
                return rule
        return None

    def http_delay(self, service: str, path: str) -> float:
        rule = self._take_http("delay", service, path)
        return rule.delay_secs if rule is not None else 0.0

    def http_error(self, service: str, path: str) -> HttpResponse | None:
        rule = self._take_http("error", service, path)
        if rule is None:
            return None
        return HttpResponse.error(rule.status, _HTTP_ERROR_BODIES[rule.status])

    # -- WebSocket faults -----------------------------------------------------------------------------------

    def _hub(self) -> WsHub:
        if self.ws is None:
            raise InputError("ws", "no WebSocket server attached")
        return self.ws

    def drop_ws(self, channel: str | None = None) -> int:
        return self._hub().drop_all(channel)

    def stall_ws(self) -> None:
        self._hub().stall()

    def resume_ws(self) -> None:
        self._hub().resume()

    def malformed_frames(self, frame: str = "garbage") -> int:
        """Send one malformed frame of kind `frame` to every market subscriber; the number it went to."""
        if frame not in MALFORMED_KINDS:
            raise InputError("frame", f"expected one of {sorted(MALFORMED_KINDS)}, got {frame[:40]!r}")
        hub = self._hub()
        markets = hub.exchange.markets
        market, asset = (markets[0].condition_id, markets[0].token_ids[0]) if markets else ("0x", "0")
        return hub.inject(MALFORMED_KINDS[frame](market, asset))


def _out_of_range(market: str, asset: str) -> str:
    change = {
        "asset_id": asset,
        "price": "1.5",
        "size": "-10",
        "side": "BUY",
        "hash": "0",
        "best_bid": "1.5",
        "best_ask": "-0.2",
    }
    return json.dumps({"market": market, "price_changes": [change], "timestamp": "1", "event_type": "price_change"})


MALFORMED_KINDS: dict[str, Callable[[str, str], str]] = {
    "garbage": lambda market, asset: '{"event_type": "price_change", "market": "' + market + '", "price_chan',
    "out_of_range": _out_of_range,
    "unknown_event": lambda market, asset: json.dumps({"event_type": "mystery", "market": market, "asset_id": asset}),
    "missing_fields": lambda market, asset: json.dumps({"event_type": "book", "asset_id": asset, "market": market}),
}


# -- the registry for the CLI and the admin endpoint ------------------------------------------------------------


def _int(params: Mapping[str, object], name: str, default: int | None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(name, "expected an integer")
    try:
        return int(value)
    except ValueError:
        raise InputError(name, "expected an integer") from None


def _decimal(params: Mapping[str, object], name: str, default: str) -> Decimal:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(name, "expected a decimal number (a string)")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InputError(name, "expected a decimal number") from None


def _str(params: Mapping[str, object], name: str, default: str | None = None) -> str | None:
    value = params.get(name, default)
    if value is not None and not isinstance(value, str):
        raise InputError(name, "expected a string")
    return value


def _side(params: Mapping[str, object]) -> Side | None:
    value = _str(params, "side")
    if value is None:
        return None
    if value.upper() not in ("BUY", "SELL"):
        raise InputError("side", "expected BUY or SELL")
    return Side(value.upper())


def _count(params: Mapping[str, object]) -> int:
    return _int(params, "count", 1) or 1


def _reject(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.reject_orders(
        count=_count(p),
        token_id=_str(p, "token_id"),
        side=_side(p),
        owner=_str(p, "owner"),
        code=_str(p, "code", "INVALID_ORDER_NOT_ENOUGH_BALANCE") or "",
        message=_str(p, "message", NOT_ENOUGH_BALANCE_MESSAGE) or "",
        http_status=_int(p, "http_status", 400) or 400,
    )
    return "reject_orders armed"


def _partial(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.partial_fills(
        count=_count(p),
        fraction=_decimal(p, "fraction", "0.5"),
        token_id=_str(p, "token_id"),
        side=_side(p),
        owner=_str(p, "owner"),
    )
    return "partial_fills armed"


def _ghost(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.ghost_fills(count=_count(p), token_id=_str(p, "token_id"), side=_side(p), owner=_str(p, "owner"))
    return "ghost_fills armed"


def _settlement(f: FaultInjector, p: Mapping[str, object]) -> str:
    path = _str(p, "path", "retrying") or "retrying"
    f.settle_along(path, count=_count(p), token_id=_str(p, "token_id"), side=_side(p), owner=_str(p, "owner"))
    return f"settlement_path {path} armed"


def _delay(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.delay_http(
        float(_decimal(p, "secs", "1")),
        count=_int(p, "count", None),
        service=_str(p, "service", "clob") or "clob",
        path_prefix=_str(p, "path_prefix", "") or "",
    )
    return "delay_http armed"


def _errors(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.http_errors(
        _int(p, "status", 429) or 429,
        count=_count(p),
        service=_str(p, "service", "clob") or "clob",
        path_prefix=_str(p, "path_prefix", "") or "",
    )
    return "http_errors armed"


def _drop(f: FaultInjector, p: Mapping[str, object]) -> str:
    channel = _str(p, "channel", "all")
    return f"dropped {f.drop_ws(None if channel == 'all' else channel)} connections"


def _stall(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.stall_ws()
    return "websockets stalled"


def _resume(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.resume_ws()
    return "websockets resumed"


def _malformed(f: FaultInjector, p: Mapping[str, object]) -> str:
    if "frame" in p and "kind" in p:
        raise InputError("frame", "give the frame kind once, as frame=")
    frame = _str(p, "frame") or _str(p, "kind") or "garbage"  # kind=: the command line's older spelling
    return f"{frame} frame sent to {f.malformed_frames(frame)} connections"


def _chain(kind: str) -> Callable[[FaultInjector, Mapping[str, object]], str]:
    text_param = {"refuse": "message", "revert": "reason"}.get(kind, "")

    def arm(f: FaultInjector, p: Mapping[str, object]) -> str:
        text = (_str(p, text_param) or "") if text_param else ""
        f.arm_chain(kind, count=_count(p), source=_str(p, "source", "all") or "all", text=text)
        return f"chain_{kind} armed"

    return arm


def _secs(params: Mapping[str, object], name: str, default: str | None) -> float:
    """Seconds; an absent parameter with no default is forever (until cleared)."""
    if name not in params and default is None:
        return math.inf
    value = float(_decimal(params, name, default or "0"))
    if not math.isfinite(value) or value < 0:
        raise InputError(name, "expected seconds >= 0")
    return value


def _restart(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.restart(secs=_secs(p, "secs", "90"), post_only_secs=_secs(p, "post_only_secs", "120"))
    return "restart armed"


def _post_only(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.post_only(secs=_secs(p, "secs", "120"))
    return "post_only armed"


def _cancel_only(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.cancel_only(secs=_secs(p, "secs", None))
    return "cancel_only armed"


def _trading_disabled(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.trading_disabled(secs=_secs(p, "secs", None))
    return "trading_disabled armed"


def _closed_only(f: FaultInjector, p: Mapping[str, object]) -> str:
    enabled = p.get("enabled", True)
    if isinstance(enabled, str):
        if enabled.lower() not in ("true", "false"):
            raise InputError("enabled", "expected true or false")
        enabled = enabled.lower() == "true"
    if not isinstance(enabled, bool):
        raise InputError("enabled", "expected true or false")
    address = _str(p, "address", ALL_CLIENTS) or ALL_CLIENTS
    f.closed_only(address, enabled=enabled)
    return f"closed_only {'on' if enabled else 'off'} for {address}"


def _clear(f: FaultInjector, p: Mapping[str, object]) -> str:
    f.clear()
    return "cleared"


FAULT_KINDS: dict[str, Callable[[FaultInjector, Mapping[str, object]], str]] = {
    "reject_orders": _reject,
    "partial_fills": _partial,
    "ghost_fills": _ghost,
    "settlement_path": _settlement,
    "delay_http": _delay,
    "http_errors": _errors,
    "drop_ws": _drop,
    "stall_ws": _stall,
    "resume_ws": _resume,
    "malformed_frames": _malformed,
    "chain_refuse": _chain("refuse"),
    "chain_stuck": _chain("stuck"),
    "chain_revert": _chain("revert"),
    "restart": _restart,
    "post_only": _post_only,
    "cancel_only": _cancel_only,
    "trading_disabled": _trading_disabled,
    "closed_only": _closed_only,
    "clear": _clear,
}


#: The parameters each kind takes (see the module's docstring).
FAULT_PARAMETERS: dict[str, frozenset[str]] = {
    "reject_orders": frozenset({"count", "token_id", "side", "owner", "code", "message", "http_status"}),
    "partial_fills": frozenset({"count", "fraction", "token_id", "side", "owner"}),
    "ghost_fills": frozenset({"count", "token_id", "side", "owner"}),
    "settlement_path": frozenset({"path", "count", "token_id", "side", "owner"}),
    "delay_http": frozenset({"secs", "count", "service", "path_prefix"}),
    "http_errors": frozenset({"status", "count", "service", "path_prefix"}),
    "drop_ws": frozenset({"channel"}),
    "stall_ws": frozenset(),
    "resume_ws": frozenset(),
    "malformed_frames": frozenset({"frame", "kind"}),
    "chain_refuse": frozenset({"count", "source", "message"}),
    "chain_stuck": frozenset({"count", "source"}),
    "chain_revert": frozenset({"count", "source", "reason"}),
    "restart": frozenset({"secs", "post_only_secs"}),
    "post_only": frozenset({"secs"}),
    "cancel_only": frozenset({"secs"}),
    "trading_disabled": frozenset({"secs"}),
    "closed_only": frozenset({"address", "enabled"}),
    "clear": frozenset(),
}


def apply_fault(injector: FaultInjector, kind: str, params: Mapping[str, object]) -> str:
    handler = FAULT_KINDS.get(kind)
    if handler is None:
        raise InputError("kind", f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    unknown = sorted(str(name) for name in params if name not in FAULT_PARAMETERS[kind])
    if unknown:
        takes = ", ".join(sorted(FAULT_PARAMETERS[kind] - {"kind"})) or "no parameters"
        raise InputError(unknown[0], f"{kind} does not take {', '.join(unknown)}; it takes {takes}")
    return handler(injector, params)


def parse_fault_spec(spec: str) -> tuple[str, dict[str, object]]:
    """`kind` or `kind:key=value,key=value` (the CLI's `--fault`)."""
    kind, _, rest = spec.partition(":")
    params: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError("--fault", f"expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return kind.strip(), params
