"""The order path's HTTP client: keep-alive HTTP/1.1 on h11 over trio streams, for one origin.

```
async with open_order_link("https://clob.polymarket.com") as link:
    reply = await link.request("POST", "/order", headers, body)     # the caller bounds it with trio.fail_after
    reply.status_code, reply.headers["content-type"], reply.content
```

Why not httpx here: placing an order is the one request whose latency is the product. Per POST on this machine
httpx costs ~0.9 ms of client CPU, httpcore ~0.55 ms, h11 on a trio stream ~0.27 ms (shared/notes/stack.md). The
rest of the REST client stays on httpx; `rest.open_rest_client` sends only `POST /order(s)` through this link.

What it does, and no more:

* One origin (`http` or `https` base URL; a path prefix is kept). `https` is a `trio.SSLStream` with ALPN
  "http/1.1" and the server name checked; the SSL context is the caller's (`rest` passes httpx's, so both paths
  trust the same CAs) or `ssl.create_default_context()`.
* At most `max_connections` connections in use at once (httpx's limit): a request beyond that waits for one to be
  free. A LIFO pool of idle connections, capped at `max_idle`; an idle connection older than `keepalive_expiry_secs`
  (5 s, httpx's default) is closed rather than used. A connection goes back to the pool only when h11 says the
  exchange ended cleanly and the connection can carry another (`start_next_cycle`), with no stray bytes behind
  the reply. Before an idle connection is used it is polled: readable means the server closed it (EOF) or sent
  something unasked (a 408, garbage), so it is dropped and a new one is opened (httpcore does the same).
* Never a retry: a request that fails after it may have been sent raises. A POST /order's outcome is then unknown
  and is resolved by order id, not by sending it again.
* The whole reply is read (Content-Length, chunked or until-close framing, by h11) and its `Content-Encoding`
  (gzip, deflate: what the request may ask for, as httpx does) is undone.
* Errors are the venue's, mapped by `errors.map_exceptions` as `rest` maps httpx's: a failed connect or TLS handshake is
  `VenueConnectionError` (nothing was sent); a connection broken or closed during the exchange, or a reply h11 cannot
  read, is `VenueDisconnected` (outcome unknown); a request h11 refuses to write is `VenueProtocolError`, as is a reply
  too large or not decodable. `trio.Cancelled` passes through.
* The caller owns timeouts (`trio.fail_after` around `request`). A request that is cancelled or fails closes its
  connection: it is mid-message and never goes back to the pool.
* `aclose()` (or leaving `open_order_link`) closes every connection, idle or in use.
"""

from __future__ import annotations

import re
import select
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import h11
import trio

from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueError,
    VenueProtocolError,
    describe_exception,
    map_exceptions,
)

__all__ = ["Header", "LinkResponse", "OrderLink", "OrderLinkStatistics", "open_order_link"]

Header = tuple[bytes, bytes]

#: httpx's default keep-alive expiry.
KEEPALIVE_EXPIRY_SECS: Final = 5.0
_READ_BYTES: Final = 65536
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

#: During an exchange (the connection was up): first match wins.
_EXCHANGE_ERRORS: Final[Mapping[type[BaseException], type[VenueError]]] = {
    h11.LocalProtocolError: VenueProtocolError,  # we could not write the request (nothing was sent)
    h11.RemoteProtocolError: VenueDisconnected,  # EOF mid-reply, or a reply h11 cannot parse
    trio.BrokenResourceError: VenueDisconnected,
    trio.ClosedResourceError: VenueDisconnected,  # closed under us by aclose()
    OSError: VenueDisconnected,
}


#: h11's grammar (RFC 9110/9112): a method or header name is a token; a header value is visible characters with
#: inner spaces or tabs (no CR, LF or NUL); a request target is visible ASCII.
_TOKEN: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE: Final = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
_TARGET: Final = re.compile(rb"[\x21-\x7e]+")
#: Headers the link writes itself: Host first, Content-Length last (from the body).
_LINK_OWNED: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class LinkResponse:
    """A complete reply. `headers`: lower-case names, repeated fields joined with ", "; `content`: decoded."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class OrderLinkStatistics:
    requests: int
    opened: int  # connections opened (TCP connect, plus the TLS handshake for https)
    reused: int  # requests sent on a pooled keep-alive connection
    dropped: int  # pooled connections found unusable when taken: idle too long, or readable (closed or stray bytes)
    closed: int  # connections closed after a request: not reusable, failed, cancelled, or no room in the pool
    idle: int
    active: int


class _Connection:
    __slots__ = ("conn", "idle_until", "socket", "stream")

    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType) -> None:
        self.stream = stream
        self.socket = socket
        self.conn = h11.Connection(h11.CLIENT)
        self.idle_until = 0.0

    def readable(self) -> bool:
        """True if the socket has something to read (or is closed): an idle connection must have nothing."""
        fd = self.socket.fileno()
        if fd < 0:
            return True
        poller = select.poll()  # not select.select: that fails on descriptors above 1023
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        """At once, without a TLS close_notify: the connection is idle-expired, broken or mid-message."""
        self.socket.close()


class OrderLink:
    """Keep-alive HTTP/1.1 to one origin. Build it with `open_order_link` (or call `aclose()` yourself)."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 20,
        max_idle: int = 20,
        keepalive_expiry_secs: float = KEEPALIVE_EXPIRY_SECS,
        max_response_bytes: int = 8 << 20,
    ) -> None:
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"the order link needs an http(s)://host URL, got {base_url[:80]!r}")
        if max_connections < 1 or max_idle < 0 or keepalive_expiry_secs < 0 or max_response_bytes <= 0:
            raise ValueError(
                "need max_connections >= 1, max_idle >= 0, keepalive_expiry_secs >= 0, max_response_bytes > 0"
            )
        self._host = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS[scheme]
        host = self._host if self._host.isascii() else self._host.encode("idna").decode("ascii")
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        if self._port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{self._port}"
        self._host_header: Header = (b"Host", host.encode("ascii"))
        self._prefix = parts.path.rstrip("/")
        self._ssl_context: ssl.SSLContext | None = None
        if scheme == "https":
            self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        self._slots = trio.Semaphore(max_connections)
        self._max_idle = min(max_idle, max_connections)
        self._expiry_secs = keepalive_expiry_secs
        self._max_response_bytes = max_response_bytes
        self._idle: list[_Connection] = []  # oldest first; taken from the end (LIFO)
        self._active: set[_Connection] = set()
        self._closed = False
        self._requests = self._opened = self._reused = self._dropped = self._closed_count = 0

    def statistics(self) -> OrderLinkStatistics:
        return OrderLinkStatistics(
            requests=self._requests,
            opened=self._opened,
            reused=self._reused,
            dropped=self._dropped,
            closed=self._closed_count,
            idle=len(self._idle),
            active=len(self._active),
        )

    # -- the pool ----------------------------------------------------------------------------------------------

    def _take(self) -> _Connection | None:
        now = trio.current_time()
        while self._idle:
            connection = self._idle.pop()
            if connection.idle_until > now and not connection.readable():
                self._reused += 1
                return connection
            self._dropped += 1
            connection.close()
        return None

    def _put(self, connection: _Connection) -> None:
        if self._closed or self._max_idle == 0:
            self._closed_count += 1
            connection.close()
            return
        if len(self._idle) >= self._max_idle:
            self._closed_count += 1
            self._idle.pop(0).close()
        connection.idle_until = trio.current_time() + self._expiry_secs
        self._idle.append(connection)

    async def _connect(self, what: str) -> _Connection:
        try:
            tcp = await trio.open_tcp_stream(self._host, self._port)
        except OSError as exc:
            raise VenueConnectionError(
                f"{what}: connect to {self._host}:{self._port}: {describe_exception(exc)}"
            ) from exc
        stream: trio.abc.Stream = tcp
        if self._ssl_context is not None:
            tls = trio.SSLStream(tcp, self._ssl_context, server_hostname=self._host, https_compatible=True)
            try:
                await tls.do_handshake()
            except BaseException as exc:
                tcp.socket.close()
                if isinstance(exc, (trio.BrokenResourceError, OSError)):
                    raise VenueConnectionError(
                        f"{what}: TLS handshake with {self._host}: {describe_exception(exc)}"
                    ) from exc
                raise
            stream = tls
        self._opened += 1
        return _Connection(stream, tcp.socket)

    # -- requests ----------------------------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, headers: Sequence[Header] = (), body: bytes | None = None
    ) -> LinkResponse:
        """Send one request and read its whole reply. `headers` go between `Host` (first) and `Content-Length`
        (last, when there is a body), in order and as given. Sent once: never retried."""
        if self._closed:
            raise RuntimeError("the order link is closed")
        what = f"{method} {path}"
        self._requests += 1
        try:
            self._slots.acquire_nowait()  # no schedule point when a connection is free: send_all checkpoints
        except trio.WouldBlock:
            await self._slots.acquire()
        try:
            connection = self._take()
            if connection is None:
                connection = await self._connect(what)
            self._active.add(connection)
            reusable = False
            try:
                with map_exceptions(_EXCHANGE_ERRORS, what=what):
                    status, reply_headers, content, reusable = await self._exchange(
                        connection, method, path, headers, body
                    )
            finally:
                self._active.discard(connection)
                if reusable:
                    self._put(connection)
                else:
                    self._closed_count += 1
                    connection.close()
        finally:
            self._slots.release()
        encoding = reply_headers.get("content-encoding")
        if encoding is not None:
            content = self._decoded(content, encoding, what)
        return LinkResponse(status, reply_headers, content)

    async def _exchange(
        self, connection: _Connection, method: str, path: str, headers: Sequence[Header], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes, bool]:
        conn, stream = connection.conn, connection.stream
        data = self._request_bytes(conn, method, path, headers, body)
        await stream.send_all(data)

        status = 0
        reply_headers: dict[str, str] = {}
        chunks: list[bytes | bytearray] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(_READ_BYTES)))  # no copy when it is bytes
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    key, text = name.decode("latin-1"), value.decode("latin-1")
                    reply_headers[key] = f"{reply_headers[key]}, {text}" if key in reply_headers else text
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self._max_response_bytes:
                    raise VenueProtocolError(f"{method} {path}: reply larger than {self._max_response_bytes} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise VenueDisconnected(f"{method} {path}: the server closed the connection before replying")
            # h11.InformationalResponse (1xx): skipped; PAUSED cannot come before EndOfMessage.
        reusable = False
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and conn.trailing_data == (b"", False):
            conn.start_next_cycle()
            reusable = True
        return status, reply_headers, b"".join(chunks), reusable

    def _request_bytes(
        self, conn: h11.Connection, method: str, path: str, headers: Sequence[Header], body: bytes | None
    ) -> bytes:
        """The request as h11 would write it, checked by h11's grammar (`h11.LocalProtocolError` otherwise), and
        `conn` moved to "request sent, reply expected".

        Written here, not by h11: h11 validates and writes ~12 headers in ~26 µs warm (~70 µs on the cold order
        path), this takes ~3. h11 still reads the reply: it is told of the request by a stand-in with the same
        method, target, Host and Connection headers (what its reply parsing and keep-alive depend on) and no body.
        """
        try:
            verb, target = method.encode("ascii"), (self._prefix + path).encode("ascii")
        except UnicodeEncodeError:  # as h11 refuses it: never a "?" in place of a character
            raise h11.LocalProtocolError(f"non-ASCII request line: {method[:20]!r} {path[:80]!r}") from None
        if not _TOKEN.fullmatch(verb) or not _TARGET.fullmatch(target):
            raise h11.LocalProtocolError(f"illegal request line: {method[:20]!r} {target[:80]!r}")
        lines = [b"%s %s HTTP/1.1\r\n" % (verb, target), b"Host: %s\r\n" % self._host_header[1]]
        connection: list[Header] = []
        for name, value in headers:
            if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
                raise h11.LocalProtocolError(f"illegal header: {name[:40]!r}")
            lowered = name.lower()
            if lowered in _LINK_OWNED:
                raise h11.LocalProtocolError(f"the link writes {name.decode('latin-1')} itself")
            if lowered == b"connection":
                connection.append((name, value))
            lines.append(b"%s: %s\r\n" % (name, value))
        if body is not None:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        if body:
            lines.append(body)
        conn.send(h11.Request(method=method, target=target, headers=[self._host_header, *connection]))
        conn.send(h11.EndOfMessage())
        return b"".join(lines)

    def _decoded(self, content: bytes, encoding: str, what: str) -> bytes:
        """The reply with its content codings undone, last applied first (httpx's decoders)."""
        for coding in reversed([c.strip().lower() for c in encoding.split(",")]):
            if coding in ("", "identity"):
                continue
            if coding in ("gzip", "x-gzip"):
                content = self._inflate(content, zlib.MAX_WBITS | 16, what)
            elif coding == "deflate":
                try:
                    content = self._inflate(content, zlib.MAX_WBITS, what)
                except VenueProtocolError:  # "deflate" sent raw, without the zlib wrapper (httpx accepts both)
                    content = self._inflate(content, -zlib.MAX_WBITS, what)
            else:
                raise VenueProtocolError(f"{what}: reply in an encoding we did not ask for: {coding[:20]!r}")
        return content

    def _inflate(self, content: bytes, wbits: int, what: str) -> bytes:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(content, self._max_response_bytes + 1)
        except zlib.error as exc:
            raise VenueProtocolError(f"{what}: undecodable compressed reply: {exc}") from None
        if len(out) > self._max_response_bytes:
            raise VenueProtocolError(f"{what}: decoded reply larger than {self._max_response_bytes} bytes")
        if not inflater.eof:
            raise VenueProtocolError(f"{what}: truncated compressed reply")
        return out

    # -- closing -----------------------------------------------------------------------------------------------

    def _close_all(self) -> None:
        self._closed = True
        for connection in (*self._idle, *self._active):
            connection.close()
        self._idle.clear()

    async def aclose(self) -> None:
        """Close every connection: idle ones, and in-use ones (their requests fail with `VenueDisconnected`)."""
        self._close_all()
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_order_link(
    base_url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int = 20,
    max_idle: int = 20,
    keepalive_expiry_secs: float = KEEPALIVE_EXPIRY_SECS,
) -> AsyncIterator[OrderLink]:
    """An `OrderLink`, every connection of it closed on exit (also when the exit is a cancellation)."""
    link = OrderLink(
        base_url,
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_idle=max_idle,
        keepalive_expiry_secs=keepalive_expiry_secs,
    )
    try:
        yield link
    finally:
        link._close_all()
