"""The order path's HTTP/1.1 link against real loopback servers: small scripted h11 servers on Trio for the edge
cases (keep-alive, a server closing or talking out of turn, chunked and compressed replies, cancellation, TLS), the
REST client's placement path on it (same headers as httpx, error replies), and the live venue against the sim."""

from __future__ import annotations

import base64
import gzip
import shutil
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import h11
import httpx
import pytest
import trio
import trio.testing

from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.testing import make_intent
from trader.venues.base import SubmitAccepted
from trader.venues.errors import (
    VenueConnectionError,
    VenueDisconnected,
    VenueProtocolError,
    VenueRejectCode,
    VenueRequestError,
)
from trader.venues.polymarket.auth import ApiCredentials, verify_l2_signature
from trader.venues.polymarket.order_link import OrderLink, open_order_link
from trader.venues.polymarket.rest import OrderRefused, open_rest_client
from trader.venues.polymarket.signing import OrderSigner, SignedOrder
from trader.venues.polymarket.venue import PolymarketVenueSettings, open_polymarket_venue
from trader.venues.sim.exchange import ExchangeConfig
from trader.venues.sim.markets import make_market
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, open_sim_venue

D = Decimal
KEY = "0x" + "4c" * 32
CREDS = ApiCredentials(
    "00000000-0000-0000-0000-000000000001", base64.urlsafe_b64encode(b"s" * 32).decode(), "pass-phrase"
)
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NOW = 1_767_225_600
OK = b'{"ok":true}'
JSON = [(b"Content-Type", b"application/json")]


# -- a scripted h11 server ------------------------------------------------------------------------------------


@dataclass(eq=False)
class Exchange:
    """One request as the server read it, and the means to answer it (or not)."""

    connection: int  # which accepted connection, from 0
    index: int  # which request on that connection, from 0
    request: h11.Request
    body: bytes
    stream: trio.abc.Stream
    conn: h11.Connection
    closed: bool = False

    async def reply(
        self,
        status: int = 200,
        body: bytes = OK,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        chunks: list[bytes] | None = None,
    ) -> None:
        """A whole reply: Content-Length framing, or chunked when `chunks` is given."""
        head = list(JSON if headers is None else headers)
        if chunks is None:
            head.append((b"Content-Length", b"%d" % len(body)))
        else:
            head.append((b"Transfer-Encoding", b"chunked"))
        data = self.conn.send(h11.Response(status_code=status, headers=head)) or b""
        for part in [body] if chunks is None else chunks:
            data += self.conn.send(h11.Data(data=part)) or b""
        data += self.conn.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data)

    async def close(self) -> None:
        self.closed = True
        await trio.aclose_forcefully(self.stream)


Handler = Callable[[Exchange], Awaitable[None]]


async def plain(exchange: Exchange) -> None:
    await exchange.reply()


@dataclass(eq=False)
class Server:
    handler: Handler = plain
    port: int = 0
    exchanges: list[Exchange] = field(default_factory=list)
    ended: list[trio.Event] = field(default_factory=list)  # one per accepted connection: set when it is closed
    alpn: list[str | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, stream: trio.abc.Stream) -> None:
        number = len(self.ended)
        self.ended.append(trio.Event())
        conn = h11.Connection(h11.SERVER)
        try:
            if isinstance(stream, trio.SSLStream):
                await stream.do_handshake()
                self.alpn.append(stream.selected_alpn_protocol())
            index = 0
            while True:
                request, body = await _read_request(stream, conn)
                if request is None:
                    return
                exchange = Exchange(number, index, request, body, stream, conn)
                self.exchanges.append(exchange)
                await self.handler(exchange)
                if exchange.closed or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                index += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            await trio.aclose_forcefully(stream)
            self.ended[number].set()


async def _read_request(stream: trio.abc.Stream, conn: h11.Connection) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        else:  # ConnectionClosed
            return None, b""


@asynccontextmanager
async def serving(handler: Handler = plain, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    async with trio.open_nursery() as nursery:
        if tls is None:
            listeners = await nursery.start(partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
        else:
            serve_tls = partial(trio.serve_ssl_over_tcp, server.serve, 0, tls, host="127.0.0.1", https_compatible=True)
            listeners = await nursery.start(serve_tls)
        server.port = (
            listeners[0].transport_listener.socket.getsockname()[1] if tls else listeners[0].socket.getsockname()[1]
        )
        yield server
        nursery.cancel_scope.cancel()


async def post(link: OrderLink, body: bytes = b'{"order":1}') -> tuple[int, bytes]:
    reply = await link.request("POST", "/order", [(b"Content-Type", b"application/json")], body)
    return reply.status_code, reply.content


async def until_readable(link: OrderLink) -> None:
    """Wait until the pooled connection's socket shows what the server did (loopback delivery runs in the kernel's
    softirq, so "the server has closed" does not mean "the client's socket says so" yet)."""
    (connection,) = link._idle
    with trio.fail_after(5):
        await trio.lowlevel.wait_readable(connection.socket)


# -- keep-alive and the pool ----------------------------------------------------------------------------------


async def test_many_posts_share_one_keep_alive_connection() -> None:
    async with serving() as server, open_order_link(server.url) as link:
        for n in range(10):
            assert await post(link, b'{"n":%d}' % n) == (200, OK)
        stats = link.statistics()
    assert (stats.requests, stats.opened, stats.reused, stats.dropped, stats.idle) == (10, 1, 9, 0, 1)
    assert {e.connection for e in server.exchanges} == {0}
    assert [e.body for e in server.exchanges] == [b'{"n":%d}' % n for n in range(10)]
    request = server.exchanges[0].request
    assert (request.method, request.target) == (b"POST", b"/order")


async def test_parallel_requests_each_get_a_connection_and_both_are_pooled() -> None:
    both_in = trio.Event()
    waiting: list[Exchange] = []

    async def hold_until_both(exchange: Exchange) -> None:
        waiting.append(exchange)
        if len(waiting) == 2:
            both_in.set()
        await both_in.wait()
        await exchange.reply()

    async with serving(hold_until_both) as server, open_order_link(server.url) as link:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post, link)
            nursery.start_soon(post, link)
        stats = link.statistics()
    assert (stats.opened, stats.reused, stats.idle, stats.active) == (2, 0, 2, 0)
    assert len(server.ended) == 2


async def test_a_path_prefix_of_the_base_url_is_kept() -> None:
    async with serving() as server, open_order_link(server.url + "/clob/") as link:
        await post(link)
    assert server.exchanges[0].request.target == b"/clob/order"


async def test_an_idle_connection_closed_by_the_server_is_dropped_and_the_next_post_opens_a_new_one() -> None:
    async def reply_then_close(exchange: Exchange) -> None:
        await exchange.reply(body=b'{"n":%d}' % exchange.connection)
        await exchange.close()

    async with serving(reply_then_close) as server, open_order_link(server.url) as link:
        assert await post(link) == (200, b'{"n":0}')
        await server.ended[0].wait()
        await until_readable(link)
        assert await post(link) == (200, b'{"n":1}')
        stats = link.statistics()
    assert (stats.opened, stats.reused, stats.dropped) == (2, 0, 1)
    # nothing was sent twice: one request on each connection
    assert [(e.connection, e.index) for e in server.exchanges] == [(0, 0), (1, 0)]


async def test_an_idle_connection_with_unasked_bytes_is_dropped() -> None:
    pooled, sent_extra = trio.Event(), trio.Event()

    async def reply_then_408(exchange: Exchange) -> None:
        await exchange.reply()
        if exchange.connection == 0:
            await pooled.wait()  # else the 408 may come with the reply, and the link would not pool the connection
            await exchange.stream.send_all(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            sent_extra.set()

    async with serving(reply_then_408) as server, open_order_link(server.url) as link:
        await post(link)
        assert link.statistics().idle == 1
        pooled.set()
        await sent_extra.wait()
        await until_readable(link)
        assert await post(link) == (200, OK)
        stats = link.statistics()
    assert (stats.opened, stats.dropped) == (2, 1)
    assert [e.connection for e in server.exchanges] == [0, 1]


async def test_bytes_after_the_reply_keep_the_connection_out_of_the_pool() -> None:
    async def reply_and_more(exchange: Exchange) -> None:
        if exchange.connection == 0:  # a second, unasked reply in the same write: h11 holds it after the first
            await exchange.stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{stale}"
            )
        else:
            await exchange.reply()

    async with serving(reply_and_more) as server, open_order_link(server.url) as link:
        assert await post(link) == (200, b"{}")
        assert link.statistics().idle == 0
        assert await post(link) == (200, OK)
    assert [e.connection for e in server.exchanges] == [0, 1]


async def test_the_most_recently_used_connection_is_taken_first() -> None:
    first_in, second_done = trio.Event(), trio.Event()

    async def first_waits_for_the_second(exchange: Exchange) -> None:
        if (exchange.connection, exchange.index) == (0, 0):
            first_in.set()
            await second_done.wait()
        await exchange.reply()
        if exchange.connection == 1:
            second_done.set()

    async with serving(first_waits_for_the_second) as server, open_order_link(server.url) as link:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post, link)
            await first_in.wait()  # the first request is at the server, on connection 0
            nursery.start_soon(post, link)
        # connection 1 went back to the pool first, connection 0 last: 0 is taken (LIFO), 1 keeps waiting
        await post(link)
    assert [e.connection for e in server.exchanges] == [0, 1, 0]


async def test_a_reply_with_connection_close_is_not_pooled() -> None:
    async def closing(exchange: Exchange) -> None:
        await exchange.reply(headers=[*JSON, (b"Connection", b"close")])

    async with serving(closing) as server, open_order_link(server.url) as link:
        await post(link)
        assert link.statistics().idle == 0
        await post(link)
        stats = link.statistics()
    assert (stats.opened, stats.reused, stats.closed) == (2, 0, 2)
    assert [e.connection for e in server.exchanges] == [0, 1]


async def test_idle_connections_expire_after_the_keepalive(autojump_clock: trio.testing.MockClock) -> None:
    async with serving() as server, open_order_link(server.url, keepalive_expiry_secs=5.0) as link:
        await post(link)
        await trio.sleep(4.9)
        await post(link)  # still fresh: reused
        assert (link.statistics().opened, link.statistics().reused) == (1, 1)
        await trio.sleep(5.1)
        await post(link)  # idle for longer than 5 s: closed, a new connection
        stats = link.statistics()
    assert (stats.opened, stats.reused, stats.dropped) == (2, 1, 1)
    assert [e.connection for e in server.exchanges] == [0, 0, 1]
    with trio.fail_after(5):
        await server.ended[0].wait()  # the expired one was closed, not leaked


async def test_the_idle_pool_is_capped() -> None:
    release = trio.Event()
    arrived = 0

    async def hold(exchange: Exchange) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            release.set()
        await release.wait()
        await exchange.reply()

    async with serving(hold) as server, open_order_link(server.url, max_idle=2) as link:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(post, link)
        stats = link.statistics()
    assert (stats.opened, stats.idle, stats.closed) == (3, 2, 1)
    assert len(server.ended) == 3


async def test_requests_beyond_max_connections_wait_for_a_free_one() -> None:
    two_in, release = trio.Event(), trio.Event()

    async def hold(exchange: Exchange) -> None:
        if len(server.exchanges) == 2:
            two_in.set()
        await release.wait()
        await exchange.reply()

    async with serving(hold) as server, open_order_link(server.url, max_connections=2) as link:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(post, link)
            await two_in.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert (len(server.exchanges), link.statistics().active) == (2, 2)
            release.set()
        stats = link.statistics()
    assert (stats.requests, stats.opened, stats.reused) == (3, 2, 1)  # the third waited, then took a pooled one
    assert len(server.ended) == 2


async def test_aclose_closes_every_connection_and_refuses_new_requests() -> None:
    async with serving() as server:
        link = OrderLink(server.url)
        await post(link)
        await link.aclose()
        with trio.fail_after(5):
            await server.ended[0].wait()
        with pytest.raises(RuntimeError, match="closed"):
            await post(link)


# -- failures: mapped, never retried, never pooled -------------------------------------------------------------


async def test_connect_refused_is_a_connection_error() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with open_order_link(f"http://127.0.0.1:{port}") as link:
        with pytest.raises(VenueConnectionError, match="POST /order: connect"):
            await post(link)
        stats = link.statistics()
    assert (stats.opened, stats.idle, stats.active) == (0, 0, 0)


async def test_the_server_closing_mid_reply_is_a_disconnect() -> None:
    async def half_a_reply(exchange: Exchange) -> None:
        await exchange.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await exchange.close()

    async with serving(half_a_reply) as server, open_order_link(server.url) as link:
        with pytest.raises(VenueDisconnected, match="POST /order"):
            await post(link)
        stats = link.statistics()
    assert (stats.opened, stats.idle, stats.closed) == (1, 0, 1)
    assert len(server.exchanges) == 1


async def test_a_reused_connection_that_breaks_is_not_retried() -> None:
    async def second_request_is_dropped(exchange: Exchange) -> None:
        if exchange.index == 1:
            await exchange.close()  # read the request, then hang up without a reply
        else:
            await exchange.reply()

    async with serving(second_request_is_dropped) as server, open_order_link(server.url) as link:
        await post(link)
        with pytest.raises(VenueDisconnected):
            await post(link, b'{"order":2}')
        # the POST reached the server once, and no other connection was opened to send it again
        assert [(e.connection, e.index, e.body) for e in server.exchanges][1:] == [(0, 1, b'{"order":2}')]
        assert link.statistics().opened == 1
        assert await post(link) == (200, OK)  # the next request opens a new connection
        stats = link.statistics()
    assert (stats.opened, stats.reused) == (2, 1)


async def test_garbage_instead_of_a_reply_is_a_disconnect() -> None:
    async def garbage(exchange: Exchange) -> None:
        await exchange.stream.send_all(b"SPDY/9 what\r\n\r\n")

    async with serving(garbage) as server, open_order_link(server.url) as link:
        with pytest.raises(VenueDisconnected, match="POST /order"):
            await post(link)
        assert link.statistics().idle == 0


async def test_a_request_h11_refuses_to_write_is_a_protocol_error() -> None:
    async with serving() as server, open_order_link(server.url) as link:
        with pytest.raises(VenueProtocolError):
            await link.request("POST", "/order", [(b"Bad Name", b"x")], b"{}")
        assert server.exchanges == []


def test_the_request_bytes_are_what_h11_writes() -> None:
    """The link writes the request itself (h11 is slow at it); the bytes must be h11's, byte for byte."""
    link = OrderLink("http://127.0.0.1:8080/api")
    headers = [
        (b"Accept-Encoding", b"gzip, deflate"),
        (b"Connection", b"keep-alive"),
        (b"POLY_SIGNATURE", b"abc_-=="),
        (b"X-Empty", b""),
        (b"X-Inner", b"a \tb"),
    ]
    for body in (b'{"n":1}', b"", None):
        ours = link._request_bytes(h11.Connection(h11.CLIENT), "POST", "/orders", headers, body)
        reference = h11.Connection(h11.CLIENT)
        head = [(b"Host", b"127.0.0.1:8080"), *headers]
        if body is not None:
            head.append((b"Content-Length", b"%d" % len(body)))
        expected = reference.send(h11.Request(method="POST", target="/api/orders", headers=head)) or b""
        if body:
            expected += reference.send(h11.Data(data=body)) or b""
        expected += reference.send(h11.EndOfMessage()) or b""
        assert ours == expected


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Bad", b"a\r\nInjected: 1")],
        [(b"X-Bad", b" leading space")],
        [(b"X-Bad", b"nul\x00")],
        [(b"Bad:Name", b"x")],
        [(b"Content-Length", b"5")],
        [(b"Host", b"elsewhere")],
        [(b"Transfer-Encoding", b"chunked")],
    ],
)
async def test_headers_outside_the_grammar_or_owned_by_the_link_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    async with serving() as server, open_order_link(server.url) as link:
        with pytest.raises(VenueProtocolError):
            await link.request("POST", "/order", headers, b"{}")
        assert server.exchanges == []
        assert await post(link) == (200, OK)  # the link is still usable


@pytest.mark.parametrize(("method", "path"), [("POST", "/ordér"), ("PÖST", "/order"), ("POST", "/or der")])
async def test_a_request_line_outside_the_grammar_is_refused_not_rewritten(method: str, path: str) -> None:
    async with serving() as server, open_order_link(server.url) as link:
        with pytest.raises(VenueProtocolError):
            await link.request(method, path, [], b"{}")
        assert server.exchanges == []


async def test_a_request_asking_to_close_is_not_pooled() -> None:
    async with serving() as server, open_order_link(server.url) as link:
        await link.request("POST", "/order", [(b"Connection", b"close")], b"{}")
        assert link.statistics().idle == 0
        assert await post(link) == (200, OK)
        assert link.statistics().opened == 2


async def test_a_cancelled_request_does_not_poison_the_pool() -> None:
    arrived = trio.Event()
    cancelled = trio.Event()

    async def late(exchange: Exchange) -> None:
        if exchange.connection == 0:
            arrived.set()
            await cancelled.wait()
            await exchange.reply(body=b'{"stale":true}')  # the reply to the cancelled request, too late
        else:
            await exchange.reply()

    async with serving(late) as server, open_order_link(server.url) as link:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_on_arrival() -> None:
                    await arrived.wait()
                    scope.cancel()

                nursery.start_soon(cancel_on_arrival)
                await post(link)
        assert scope.cancelled_caught
        stats = link.statistics()
        assert (stats.idle, stats.active, stats.closed) == (0, 0, 1)
        cancelled.set()
        with trio.fail_after(5):
            await server.ended[0].wait()  # the link closed the cancelled request's connection
        assert await post(link) == (200, OK)  # not the stale reply: a new connection
        stats = link.statistics()
    assert (stats.opened, stats.reused) == (2, 0)
    assert [e.connection for e in server.exchanges] == [0, 1]


# -- replies ----------------------------------------------------------------------------------------------------


async def test_a_chunked_reply_is_read_whole_and_the_connection_reused() -> None:
    async def chunked(exchange: Exchange) -> None:
        await exchange.reply(chunks=[b'{"a":', b'"b",', b'"c":1}'])

    async with serving(chunked) as server, open_order_link(server.url) as link:
        assert await post(link) == (200, b'{"a":"b","c":1}')
        assert await post(link) == (200, b'{"a":"b","c":1}')
        assert link.statistics().reused == 1


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_a_compressed_reply_is_decoded(coding: str, encode: Callable[[bytes], bytes]) -> None:
    async def compressed(exchange: Exchange) -> None:
        await exchange.reply(
            body=encode(b'{"orderID":"0xabc"}'), headers=[*JSON, (b"Content-Encoding", coding.encode())]
        )

    async with serving(compressed) as server, open_order_link(server.url) as link:
        assert await post(link) == (200, b'{"orderID":"0xabc"}')


async def test_an_encoding_we_did_not_ask_for_is_a_protocol_error() -> None:
    async def brotli(exchange: Exchange) -> None:
        await exchange.reply(body=b"\x0b\x02\x80{}\x03", headers=[*JSON, (b"Content-Encoding", b"br")])

    async with serving(brotli) as server, open_order_link(server.url) as link:
        with pytest.raises(VenueProtocolError, match="'br'"):
            await post(link)


async def test_an_error_status_still_yields_status_headers_and_body() -> None:
    async def throttled(exchange: Exchange) -> None:
        await exchange.reply(429, b'{"error":"Too Many Requests"}', [*JSON, (b"Retry-After", b"3")])

    async with serving(throttled) as server, open_order_link(server.url) as link:
        reply = await link.request("POST", "/order", [], b"{}")
        assert (reply.status_code, reply.is_success) == (429, False)
        assert reply.headers["retry-after"] == "3"
        assert reply.content == b'{"error":"Too Many Requests"}'
        assert link.statistics().idle == 1  # an error reply is a complete exchange: the connection is kept


# -- https -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made by the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


async def test_https_keeps_alive_with_alpn_http_1_1(certificate: tuple[Path, Path]) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    async with serving(tls=server_tls(certificate)) as server:
        async with open_order_link(f"https://127.0.0.1:{server.port}", ssl_context=trusted) as link:
            for _ in range(3):
                assert await post(link) == (200, OK)
            stats = link.statistics()
        assert (stats.opened, stats.reused) == (1, 2)
        assert server.alpn == ["http/1.1"]
        assert dict(server.exchanges[0].request.headers)[b"host"] == b"127.0.0.1:%d" % server.port


async def test_https_with_an_untrusted_certificate_is_a_connection_error(certificate: tuple[Path, Path]) -> None:
    async with (
        serving(tls=server_tls(certificate)) as server,
        open_order_link(f"https://127.0.0.1:{server.port}") as link,  # the default CAs do not know it
    ):
        with pytest.raises(VenueConnectionError, match="TLS handshake"):
            await post(link)
        assert link.statistics().opened == 0
    assert server.exchanges == []


def test_only_http_and_https_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        OrderLink("ws://127.0.0.1:1")


# -- the REST client's placement path on the link --------------------------------------------------------------


def signed_order(signer: OrderSigner) -> SignedOrder:
    return signer.limit_order_with_id(
        token_id=YES, side=Side.BUY, price=D("0.5"), size=D("10"), tick_size=D("0.01"), neg_risk=False, salt=7
    )[0]


async def test_post_order_sends_the_same_headers_and_body_as_httpx() -> None:
    """The same L2 POST /order, once on the link and once on httpx (a transport given keeps it on httpx): the
    server reads the same header fields, names (in their case), values and order, and the same body."""
    placed = b'{"success":true,"orderID":"0xabc","status":"live","errorMsg":""}'

    async def ok(exchange: Exchange) -> None:
        await exchange.reply(body=placed)

    seen = []
    order = signed_order(OrderSigner(KEY))
    async with serving(ok) as server:
        for transport in (None, httpx.AsyncHTTPTransport()):
            async with open_rest_client(
                server.url, OrderSigner(KEY), CREDS, transport=transport, wall_secs=lambda: NOW
            ) as rest:
                result = await rest.post_order(order, order_type=OrderType.GTC)
                assert result.order_id == "0xabc"
                seen.append(rest.statistics().order_link)
    assert seen[0] is not None
    assert seen[0].requests == 1
    assert seen[1] is None
    link_request, httpx_request = server.exchanges
    assert link_request.request.headers.raw_items() == httpx_request.request.headers.raw_items()
    assert link_request.body == httpx_request.body
    names = [name for name, _ in link_request.request.headers.raw_items()]
    assert names[0] == b"Host"
    assert names[-1] == b"Content-Length"
    assert {b"Accept", b"Content-Type", b"User-Agent", b"POLY_API_KEY", b"POLY_SIGNATURE"} <= set(names)


async def test_each_post_on_the_link_is_signed_for_its_own_body_and_time() -> None:
    """The link's header layout is kept per credentials; the signature and timestamp are every request's own."""
    placed = b'{"success":true,"orderID":"0xabc","status":"live","errorMsg":""}'

    async def ok(exchange: Exchange) -> None:
        await exchange.reply(body=placed)

    now = [NOW]
    signer = OrderSigner(KEY)
    async with (
        serving(ok) as server,
        open_rest_client(server.url, signer, CREDS, wall_secs=lambda: now[0]) as rest,
    ):
        await rest.post_order(signed_order(signer), order_type=OrderType.GTC)
        now[0] = NOW + 7
        await rest.post_order(signed_order(signer), order_type=OrderType.FOK)
    first, second = server.exchanges
    assert first.request.headers.raw_items()[:-1] != second.request.headers.raw_items()[:-1]
    for exchange, ts in ((first, NOW), (second, NOW + 7)):
        headers = dict(exchange.request.headers.raw_items())
        assert headers[b"POLY_TIMESTAMP"] == str(ts).encode()
        assert verify_l2_signature(
            CREDS.secret,
            headers[b"POLY_SIGNATURE"].decode(),
            timestamp=ts,
            method="POST",
            request_path="/order",
            body=exchange.body.decode(),
        )
        assert headers[b"POLY_API_KEY"] == CREDS.api_key.encode()


async def test_a_429_on_the_link_goes_through_request_error() -> None:
    async def throttled(exchange: Exchange) -> None:
        await exchange.reply(429, b'{"error":"Too Many Requests"}', [*JSON, (b"Retry-After", b"3")])

    async with (
        serving(throttled) as server,
        open_rest_client(server.url, OrderSigner(KEY), CREDS, wall_secs=lambda: NOW) as rest,
    ):
        with pytest.raises(VenueRequestError) as info:
            await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
        stats = rest.statistics()
    assert info.value.is_throttled
    assert info.value.retry_after_secs == 3.0
    assert info.value.code is VenueRejectCode.RATE_LIMITED
    assert (stats.requests, stats.throttled) == (1, 1)
    assert stats.order_link is not None
    assert stats.order_link.requests == 1


async def test_a_400_refusal_on_the_link_is_a_value() -> None:
    async def refused(exchange: Exchange) -> None:
        await exchange.reply(400, b'{"error":"invalid amounts, the market BUY orders maker amount supports a max"}')

    async with (
        serving(refused) as server,
        open_rest_client(server.url, OrderSigner(KEY), CREDS, wall_secs=lambda: NOW) as rest,
    ):
        order = signed_order(rest.signer)
        results = await rest.post_orders([(order, OrderType.GTC), (order, OrderType.FOK)])
        assert rest.statistics().client_errors == 1
    assert [r.code for r in results if isinstance(r, OrderRefused)] == [VenueRejectCode.INVALID_AMOUNTS] * 2
    assert server.exchanges[0].request.target == b"/orders"


async def test_a_broken_link_counts_as_a_transport_error() -> None:
    async def hang_up(exchange: Exchange) -> None:
        await exchange.close()

    async with (
        serving(hang_up) as server,
        open_rest_client(server.url, OrderSigner(KEY), CREDS, wall_secs=lambda: NOW) as rest,
    ):
        with pytest.raises(VenueDisconnected):
            await rest.post_order(signed_order(rest.signer), order_type=OrderType.GTC)
        assert rest.statistics().transport_errors == 1
    assert len(server.exchanges) == 1


# -- the live venue against the sim ------------------------------------------------------------------------------

SIM_MARKET = make_market("order-link", question="Will one connection do?")


async def test_the_live_venue_places_orders_on_one_kept_alive_connection_to_the_sim() -> None:
    config = SimConfig(
        scenario=StaticScenario([SIM_MARKET]),
        start_time=NOW,
        seed=3,
        rate_limits=None,
        exchange=ExchangeConfig(seed=3),
    )
    async with open_sim_venue(config) as sim:
        sim.exchange.fund(OrderSigner(KEY).address, collateral=10**6 * 1_000_000)
        settings = PolymarketVenueSettings(
            rest_url=sim.urls.rest, ws_user_url=sim.urls.ws_user, heartbeat_enabled=False
        )
        async with open_polymarket_venue(settings, OrderSigner(KEY), wall_secs=sim.now) as venue:
            results = []
            for n in range(5):
                intent = make_intent(
                    f"link-{n}", condition_id=SIM_MARKET.condition_id, token_id=SIM_MARKET.token_ids[0], price="0.01"
                )
                results.append(await venue.submit(await venue.prepare(intent, ts=sim.now())))
            stats = venue.statistics().rest.order_link
    assert all(isinstance(r, SubmitAccepted) for r in results), results
    assert stats is not None
    assert (stats.requests, stats.opened, stats.reused) == (5, 1, 4)
