"""A small HTTP/1.1 server on Trio and h11, with WebSocket upgrades handed to trio-websocket on the same port.

Why not hypercorn: the sim needs to misbehave on purpose (stall a socket, drop it without a close frame, delay a
reply) and to serve the WebSocket channels from the same listener. Owning the connection loop makes that direct;
h11 already ships with httpx, so this adds no dependency. It is a loopback test server, not a production one:
one request at a time per connection, keep-alive, bodies up to `max_body_bytes`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import msgspec
import structlog
import trio

from trader.infra.jsoninput import JSON_INPUT_ERRORS, describe_json_error

log = structlog.get_logger(__name__)

_JSON = msgspec.json.Encoder(decimal_format="number")
_JSON_DECODER = msgspec.json.Decoder()
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client: str

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The parsed body; raises ValueError if it is not JSON: malformed, not UTF-8, with a lone surrogate escape,
        or nested too deeply (msgspec, strict as the venue's own parser: `json.loads` would let a lone surrogate
        through, and the reply that echoes it could then not be encoded)."""
        if not self.body:
            return None
        try:
            return _JSON_DECODER.decode(self.body)
        except JSON_INPUT_ERRORS as exc:
            raise ValueError(describe_json_error(exc)) from None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def json(cls, payload: object, status: int = 200) -> HttpResponse:
        return cls(status, _JSON.encode(payload))

    @classmethod
    def error(cls, status: int, message: str) -> HttpResponse:
        return cls.json({"error": message}, status)


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
WsHandler = Callable[[trio.abc.Stream, str], Awaitable[None]]
#: Stands in a stream of its own for an accepted connection, before `serve_connection` reads from it (HTTP and
#: WebSocket alike: the same listener serves both). It must not raise, and its stream must pass the bytes through
#: both ways and close the accepted one. For instrumentation: the tick-to-trade bench notes when bytes arrive.
ConnectionWrapper = Callable[[trio.SocketStream], trio.abc.Stream]


class ReplayStream(trio.abc.Stream):
    """A stream that first yields bytes already read from `inner`, then reads from it."""

    def __init__(self, prefix: bytes, inner: trio.abc.Stream) -> None:
        self._prefix = prefix
        self.inner = inner

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        return bytes(await self.inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self.inner, trio.abc.HalfCloseableStream):
            await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _is_websocket_upgrade(head: bytes) -> tuple[bool, str]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    target = parts[1].decode("latin-1") if len(parts) > 1 else "/"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and value.strip().lower() == b"websocket":
            return True, target
    return False, target


def _client(stream: trio.abc.Stream) -> str:
    socket = getattr(stream, "socket", None)
    if socket is None:
        return "unknown"
    try:
        host, port, *_ = socket.getpeername()
    except OSError:
        return "unknown"
    return f"{host}:{port}"


async def serve_connection(
    stream: trio.abc.Stream, handler: HttpHandler, ws_handler: WsHandler, *, max_body_bytes: int = 1 << 20
) -> None:
    """Serve one accepted connection until the peer closes it (or a WebSocket session ends)."""
    client = _client(stream)
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                return
            head += data
            if len(head) > _MAX_HEAD:
                await stream.send_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n")
                return
        upgrade, target = _is_websocket_upgrade(head)
        if upgrade:
            await ws_handler(ReplayStream(head, stream), urlsplit(target).path)
            return
        await _serve_http(stream, head, handler, client, max_body_bytes)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_http(
    stream: trio.abc.Stream, initial: bytes, handler: HttpHandler, client: str, max_body_bytes: int
) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    conn.receive_data(initial)
    while True:
        try:
            request = await _read_request(stream, conn, client, max_body_bytes)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                response = HttpResponse.error(exc.error_status_hint, "Bad Request")
                await _send(stream, conn, response)
            return
        if request is None:
            return
        try:
            response = await handler(request)
        except Exception:
            log.exception("sim_http_handler_failed", path=request.path)
            response = HttpResponse.error(500, "Internal server error")
        await _send(stream, conn, response)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _read_request(
    stream: trio.abc.Stream, conn: h11.Connection, client: str, max_body_bytes: int
) -> HttpRequest | None:
    start: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
            continue
        if isinstance(event, h11.Request):
            start = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body_bytes:
                raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
        elif isinstance(event, h11.EndOfMessage):
            assert start is not None
            target = start.target.decode("latin-1")
            split = urlsplit(target)
            return HttpRequest(
                method=start.method.decode("ascii").upper(),
                target=target,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.headers},
                body=bytes(body),
                client=client,
            )
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send(stream: trio.abc.Stream, conn: h11.Connection, response: HttpResponse) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *response.headers,
    ]
    try:
        reason = HTTPStatus(response.status).phrase.encode()
    except ValueError:
        reason = b""
    data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    data = (data or b"") + (conn.send(h11.Data(data=response.body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
    await stream.send_all(data)
