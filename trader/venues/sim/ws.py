"""The market and user WebSocket channels (protocol.md §2, §3), fed by the exchange's events.

Behaviour at the edges, as documented for users of the sim:
- text `PING` is answered with text `PONG`; anything else must be a JSON object;
- a message that is not JSON, or not a valid (un)subscribe, gets a text frame `{"error": "<reason>"}` and the
  connection stays open;
- market channel: a subscription past `asset_limit` assets on one connection closes it with code 1008 and a reason
  naming the limit;
- market channel, custom features: a connection that subscribed with `custom_feature_enabled: true` (the last
  subscribe message that carries the flag decides) also gets `best_bid_ask` for its assets whenever their top of book
  changes, `market_resolved` for the markets of its assets and `new_market` for every market listed while it is open;
  others never see them, as on the venue;
- user channel: the first message must be `{"type":"user","auth":{...}}` with valid credentials, else the
  connection is closed with code 1008, reason `Unauthorized/Invalid api key`;
- each connection has a bounded outgoing queue (`queue_size` frames); a client too slow to drain it is
  disconnected (close code 1008, reason `slow consumer`), as a real server would rather than buffer forever.

Fault hooks (used by `trader.venues.sim.faults`): `drop_all` (abrupt TCP close, no close frame), `stall` / `resume`
(the connection stops sending and stops reading, so PINGs go unanswered, but stays open), `inject` (send raw text).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import msgspec
import structlog
import trio
import trio_websocket
from wsproto.events import TextMessage

from trader.infra.jsoninput import JSON_INPUT_ERRORS
from trader.venues.sim.apikeys import ApiKeyStore
from trader.venues.sim.events import (
    BookChanged,
    BookResync,
    LastTradePrice,
    MarketListed,
    MarketResolved,
    OrderEvent,
    SimEventType,
    TickSizeChanged,
    TradeEvent,
)
from trader.venues.sim.exchange import Exchange
from trader.venues.sim.httpserver import ReplayStream
from trader.venues.sim.wire import (
    best_bid_ask_frame,
    book_frame,
    encode,
    last_trade_frame,
    market_resolved_frame,
    new_market_frame,
    order_frame,
    price_change_frame,
    tick_size_frame,
    trade_frame,
    trade_owners,
)

log = structlog.get_logger(__name__)

MARKET_PATH = "/ws/market"
USER_PATH = "/ws/user"
POLICY_VIOLATION = 1008

_MESSAGE_DECODER = msgspec.json.Decoder()
_MARKET_EVENTS = (BookChanged, BookResync, TickSizeChanged, LastTradePrice)


@dataclass(frozen=True, slots=True)
class WsStatistics:
    market_connections: int
    user_connections: int
    frames_sent: int
    slow_consumers_dropped: int


@dataclass(eq=False)
class _Conn:
    channel: str
    stream: trio.abc.Stream
    ws: trio_websocket.WebSocketConnection
    send: trio.MemorySendChannel[str]
    receive: trio.MemoryReceiveChannel[str]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    assets: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)
    api_key: str | None = None
    custom_features: bool = False  # the market channel's `custom_feature_enabled`, as last subscribed
    dropped: bool = False
    close_code: int = 1000
    close_reason: str = ""

    def push(self, text: str) -> bool:
        try:
            self.send.send_nowait(text)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return True
        return True


class WsHub:
    """Owns the WebSocket sessions; `on_event` is registered as an exchange listener."""

    def __init__(
        self,
        exchange: Exchange,
        api_keys: ApiKeyStore,
        clock: Callable[[], float],
        *,
        asset_limit: int = 500,
        queue_size: int = 4096,
    ) -> None:
        self.exchange = exchange
        self.api_keys = api_keys
        self.clock = clock
        self.asset_limit = asset_limit
        self.queue_size = queue_size
        self._conns: set[_Conn] = set()
        self._running = trio.Event()
        self._running.set()
        self._frames_sent = 0
        self._slow = 0
        self._market_muted = False
        self._tops: dict[str, tuple[str, str]] = {}  # asset -> (best bid, best ask) as last announced

    def statistics(self) -> WsStatistics:
        return WsStatistics(
            market_connections=sum(c.channel == "market" for c in self._conns),
            user_connections=sum(c.channel == "user" for c in self._conns),
            frames_sent=self._frames_sent,
            slow_consumers_dropped=self._slow,
        )

    # -- faults ---------------------------------------------------------------------------------------------

    def drop_all(self, channel: str | None = None) -> int:
        """Abruptly close every connection (of `channel`): the TCP stream is closed without a close frame."""
        count = 0
        for conn in list(self._conns):
            if channel is None or conn.channel == channel:
                conn.dropped = True
                conn.scope.cancel()
                count += 1
        return count

    def stall(self) -> None:
        """Stop every session from sending and reading (connections stay open) until `resume`."""
        if self._running.is_set():
            self._running = trio.Event()

    def resume(self) -> None:
        self._running.set()

    @property
    def stalled(self) -> bool:
        return not self._running.is_set()

    def inject(self, text: str, channel: str = "market") -> int:
        """Send raw text (e.g. a malformed frame) to every connection of `channel`."""
        count = 0
        for conn in list(self._conns):
            if conn.channel == channel and (channel != "market" or conn.assets):
                self._push(conn, text)
                count += 1
        return count

    # -- raw market frames (the `frames` scenario) -----------------------------------------------------------

    def publish(self, asset_ids: Collection[str], text: str) -> int:
        """Send `text` verbatim to every market subscriber of any of `asset_ids`; returns how many got it."""
        count = 0
        for conn in self._market_conns():
            if not conn.assets.isdisjoint(asset_ids):
                self._push(conn, text)
                count += 1
        return count

    def subscribed(self, asset_ids: Collection[str]) -> bool:
        """Is any market connection subscribed to one of `asset_ids`?"""
        return any(not conn.assets.isdisjoint(asset_ids) for conn in self._market_conns())

    def backlog(self) -> int:
        """The fullest outgoing queue among market subscribers, in frames not yet written."""
        return max((conn.send.statistics().current_buffer_used for conn in self._market_conns()), default=0)

    @contextmanager
    def market_events_muted(self) -> Iterator[None]:
        """Inside the block, the exchange's own market-channel events are not published (user-channel events
        still are): a scenario that publishes its own frames can move the exchange's books without echoes."""
        self._market_muted = True
        try:
            yield
        finally:
            self._market_muted = False

    # -- sessions -------------------------------------------------------------------------------------------

    async def handle(self, stream: trio.abc.Stream, path: str) -> None:
        """The `ws_handler` of the HTTP server."""
        async with trio.open_nursery() as nursery:
            request = await trio_websocket.wrap_server_stream(nursery, stream, message_queue_size=64)
            if path not in (MARKET_PATH, USER_PATH):
                await request.reject(404, body=b"not found")
                nursery.cancel_scope.cancel()
                return
            ws = await request.accept()
            send, receive = trio.open_memory_channel[str](self.queue_size)
            conn = _Conn("market" if path == MARKET_PATH else "user", stream, ws, send, receive)
            self._conns.add(conn)
            try:
                with conn.scope:
                    async with trio.open_nursery() as session:
                        session.start_soon(self._writer, conn)
                        await self._reader(conn)
                        session.cancel_scope.cancel()
            finally:
                self._conns.discard(conn)
                send.close()
                with trio.CancelScope(shield=True):
                    if conn.dropped:
                        inner = stream.inner if isinstance(stream, ReplayStream) else stream
                        await trio.aclose_forcefully(inner)
                    else:
                        with trio.move_on_after(1):
                            await ws.aclose(conn.close_code, conn.close_reason)
                nursery.cancel_scope.cancel()

    async def _reader(self, conn: _Conn) -> None:
        while True:
            await self._running.wait()
            try:
                message = await conn.ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            await self._running.wait()
            if isinstance(message, bytes):
                message = message.decode("utf-8", errors="replace")
            if message == "PING":
                self._push(conn, "PONG")
                continue
            try:
                body = _MESSAGE_DECODER.decode(message)  # msgspec refuses lone surrogate escapes, as the venue does
            except JSON_INPUT_ERRORS:  # malformed, or nested deeper than the interpreter's recursion limit
                self._push(conn, encode({"error": "invalid message: expected a JSON object or PING"}))
                continue
            if not isinstance(body, dict):
                self._push(conn, encode({"error": "invalid message: expected a JSON object"}))
                continue
            if conn.channel == "market":
                self._market_message(conn, body)
            else:
                self._user_message(conn, body)
            if conn.scope.cancel_called:
                return

    async def _writer(self, conn: _Conn) -> None:
        """Send what is queued, in batches: everything waiting (up to `_BATCH` frames) goes out in one write.

        trio-websocket's `send_message` takes the stream lock and writes once per frame, which caps one client at
        ~12k frames/s here. The batch path encodes each frame with the connection's own wsproto and writes them
        together under the same lock (trio-websocket 0.12 internals, pinned in the lock file); without them it falls
        back to one `send_message` per frame."""
        batched = _can_batch(conn.ws)
        async for text in conn.receive:
            batch = [text]
            while len(batch) < _BATCH:
                try:
                    batch.append(conn.receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            if not self._running.is_set():
                await self._running.wait()
            try:
                if batched:
                    await _send_batch(conn.ws, batch)
                else:
                    for item in batch:
                        await conn.ws.send_message(item)
            except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                conn.scope.cancel()
                return
            self._frames_sent += len(batch)

    def _close(self, conn: _Conn, code: int, reason: str) -> None:
        conn.close_code, conn.close_reason = code, reason
        conn.scope.cancel()

    def _push(self, conn: _Conn, text: str) -> None:
        if not conn.push(text) and not conn.scope.cancel_called:
            self._slow += 1
            log.warning("sim_ws_slow_consumer_dropped", channel=conn.channel)  # once per connection
            self._close(conn, POLICY_VIOLATION, "slow consumer")

    # -- market channel -------------------------------------------------------------------------------------

    def _market_message(self, conn: _Conn, body: dict[str, object]) -> None:
        kind = str(body.get("type", "")).lower()
        operation = str(body.get("operation", "subscribe" if kind == "market" else "")).lower()
        assets = body.get("assets_ids", [])
        if operation not in ("subscribe", "unsubscribe") or (kind and kind != "market"):
            self._push(conn, encode({"error": "invalid message: expected type 'market' or an operation"}))
            return
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            self._push(conn, encode({"error": "invalid message: assets_ids must be a list of token id strings"}))
            return
        if operation == "unsubscribe":
            conn.assets.difference_update(assets)
            return
        custom = body.get("custom_feature_enabled")
        if isinstance(custom, bool):  # absent: unchanged (re-sending assets with the other value flips it)
            conn.custom_features = custom
        new = [a for a in dict.fromkeys(assets) if a not in conn.assets]
        if len(conn.assets) + len(new) > self.asset_limit:
            self._close(conn, POLICY_VIOLATION, f"too many assets: at most {self.asset_limit} per connection")
            return
        conn.assets.update(new)
        if body.get("initial_dump", True) is not False:
            now = self.clock()
            snapshots = [
                book_frame(self.exchange.book_summary(a, now))
                for a in new
                if self.exchange.market_of_token(a) is not None
            ]
            if snapshots:
                self._push(conn, encode(snapshots))

    # -- user channel ---------------------------------------------------------------------------------------

    def _user_message(self, conn: _Conn, body: dict[str, object]) -> None:
        markets = body.get("markets", [])
        if not isinstance(markets, list) or not all(isinstance(m, str) for m in markets):
            self._push(conn, encode({"error": "invalid message: markets must be a list of condition ids"}))
            return
        if conn.api_key is None:
            auth = body.get("auth")
            key = None
            if str(body.get("type", "")).lower() == "user" and isinstance(auth, dict):
                key = self.api_keys.check_user_auth(auth.get("apiKey"), auth.get("secret"), auth.get("passphrase"))
            if key is None:
                self._close(conn, POLICY_VIOLATION, "Unauthorized/Invalid api key")
                return
            conn.api_key = key
            conn.markets.update(markets)
            return
        operation = str(body.get("operation", "")).lower()
        if operation == "subscribe":
            conn.markets.update(markets)
        elif operation == "unsubscribe":
            conn.markets.difference_update(markets)
        else:
            self._push(conn, encode({"error": "invalid message: expected an operation"}))

    # -- fan-out --------------------------------------------------------------------------------------------

    def on_event(self, event: SimEventType) -> None:
        if self._market_muted and isinstance(event, _MARKET_EVENTS):
            return
        if isinstance(event, BookChanged):
            self._fan_out_price_change(event)
        elif isinstance(event, LastTradePrice):
            self.publish([event.asset_id], encode(last_trade_frame(event)))
        elif isinstance(event, TickSizeChanged):
            self.publish([event.asset_id], encode(tick_size_frame(event)))
        elif isinstance(event, BookResync):
            for asset in event.asset_ids:
                if self.subscribed([asset]):
                    summary = self.exchange.book_summary(asset, event.timestamp_ms / 1000)
                    self.publish([asset], encode(book_frame(summary)))
        elif isinstance(event, MarketResolved):
            text = encode(market_resolved_frame(event))
            for conn in self._market_conns():
                if conn.custom_features and not conn.assets.isdisjoint(event.asset_ids):
                    self._push(conn, text)
        elif isinstance(event, MarketListed):
            self._announce(event)
        elif isinstance(event, OrderEvent):
            self._to_user(event.order.owner, event.order.market, encode(order_frame(event)))
        elif isinstance(event, TradeEvent):
            for owner in trade_owners(event.trade):
                text = encode(trade_frame(event.trade, owner, event.timestamp_ms))
                self._to_user(owner, event.trade.market, text)

    def _announce(self, event: MarketListed) -> None:
        """`new_market` to every market connection with custom features on (nobody follows the new assets yet)."""
        market = self.exchange.market(event.market)
        if market is None:
            return
        text: str | None = None
        for conn in self._market_conns():
            if conn.custom_features:
                if text is None:
                    tick = self.exchange.tick_size(market.token_ids[0])
                    listed = self.exchange.events.get(market.event_id)
                    text = encode(new_market_frame(market, listed, tick, event.timestamp_ms))
                self._push(conn, text)

    def _market_conns(self) -> Iterable[_Conn]:
        return (c for c in list(self._conns) if c.channel == "market" and c.assets)

    def _fan_out_price_change(self, event: BookChanged) -> None:
        self._fan_out_price_levels(event)
        tops = {c.asset_id: (c.best_bid, c.best_ask) for c in event.changes}  # each asset's last entry: its new top
        for asset, top in tops.items():
            if self._tops.get(asset) == top:
                continue
            self._tops[asset] = top
            text: str | None = None
            for conn in self._market_conns():
                if conn.custom_features and asset in conn.assets:
                    if text is None:
                        text = encode(best_bid_ask_frame(event.market, asset, *top, event.timestamp_ms))
                    self._push(conn, text)

    def _fan_out_price_levels(self, event: BookChanged) -> None:
        assets = {c.asset_id for c in event.changes}
        full: str | None = None
        for conn in self._market_conns():
            if assets <= conn.assets:
                if full is None:
                    frame = price_change_frame(event)
                    full = encode(frame)
                self._push(conn, full)
            elif assets & conn.assets:
                partial = price_change_frame(event, conn.assets)
                if partial is not None:
                    self._push(conn, encode(partial))

    def _to_user(self, owner: str, market: str, text: str) -> None:
        for conn in list(self._conns):
            if conn.channel == "user" and conn.api_key == owner and (not conn.markets or market in conn.markets):
                self._push(conn, text)


#: frames written together by one `send_all`
_BATCH = 256


def _can_batch(ws: trio_websocket.WebSocketConnection) -> bool:
    return all(hasattr(ws, name) for name in ("_wsproto", "_stream", "_stream_lock", "_close_reason"))


async def _send_batch(ws: trio_websocket.WebSocketConnection, texts: list[str]) -> None:
    if ws._close_reason:
        raise trio_websocket.ConnectionClosed(ws._close_reason)
    data = b"".join(ws._wsproto.send(TextMessage(data=text)) for text in texts)
    async with ws._stream_lock:
        await ws._stream.send_all(data)
