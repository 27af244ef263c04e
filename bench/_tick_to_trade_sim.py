"""The simulated venue's side of `python -m bench tick_to_trade`: the sim, the taps that live on it, and the
exchange operations the bench makes on it. By default it runs in its own process with its own Trio loop, as
`python -m bench._tick_to_trade_sim --fd N --log PATH`, started by the bench (`--sim in-process` keeps it in the
bench's own Trio loop, through the same `SimSide.handle`).

The control channel is a socket (one end of a `socketpair`, inherited as fd N): one JSON object per line each way.
The child first writes a hello (`urls`, `gap`, the clock), then answers every command with one line, except
`place`, which is answered by the next `finish` (so the bench's process reads nothing while the event is in flight).
An error answers `{"error": "..."}`. End of file on the channel (the bench ended, however it ended: normally, on an
error, on Ctrl+C, even killed) stops the child: it closes the sim and exits 0. The bench starts it in a session of
its own, so Ctrl+C reaches the bench alone, which closes the channel.

Timestamps are `time.perf_counter_ns()`: CLOCK_MONOTONIC on Linux, one clock for every process on the machine, so
the child's readings and the bench's can be subtracted. The bench checks it at start (`clock`).

The taps, all on the sim's side: the frame leaving (`_SendTap`, under the sim's side of the engine's market
connection: the sim starts writing the `price_change` frame), and our orders arriving, three times each: on the
wire (`_ArrivalTap`, under every connection the sim accepts, through `SimVenue.wrap_connection`: the kernel's
receive timestamp of the chunk that completed the `POST /orders`, `SO_TIMESTAMPNS`, CLOCK_REALTIME moved onto
CLOCK_MONOTONIC, see `_arrival_of`; the sim's read time if the kernel gave none, counted in `arrival_fallbacks`),
at the sim's HTTP handler (`_ArrivalFaults`: the sim has woken up and h11 has parsed the request) and in the
exchange (`_ArrivalHooks`: after the sim's authentication and signature check). The wire arrival is the bench's
end point: the sim receiving the order; the rest is the venue's work. Only this side installs the taps: the sim
itself serves as it always does.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import socket
import struct
import sys
import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from trader.domain.numbers import Side
from trader.infra.logging import configure_logging
from trader.venues.sim.exchange import LIVE, Accepted, ExchangeHooks, OrderRequest, Rejected
from trader.venues.sim.faults import FaultInjector
from trader.venues.sim.httpserver import ReplayStream
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, hex_id, pips_of
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

GAP_OWNER = "bench-gap"
GAP_ADDRESS = "0x" + "ab" * 20

clock = time.perf_counter_ns


def clock_implementation() -> str:
    return time.get_clock_info("perf_counter").implementation


def sim_config(markets: int) -> SimConfig:
    return SimConfig(scenario="static", markets=markets)


# ---------------------------------------------------------------------------------------------------------------
# The gap


@dataclass(frozen=True, slots=True)
class Gap:
    condition_id: str
    yes: str
    no: str
    tick: int  # pips
    yes_ask: int  # the makers' YES ask, pips: what the book is back to after an event
    yes_gap: int  # the event's YES ask
    no_gap: int  # the resting NO ask


def choose_gap(sim: SimVenue) -> Gap:
    exchange = sim.exchange
    for market in exchange.markets:
        if market.complementary or market.neg_risk or not market.accepting_orders:
            continue
        yes, no = market.token_ids
        (yes_bid, yes_ask), (_no_bid, no_ask) = exchange.best_prices(yes), exchange.best_prices(no)
        if yes_bid is None or yes_ask is None or no_ask is None:
            continue
        tick = pips_of(market.tick_size)
        fair = (yes_bid + yes_ask) // 2
        gap = Gap(market.condition_id, yes, no, tick, yes_ask, yes_gap=fair - tick, no_gap=PIPS_PER_ONE - fair - tick)
        if gap.yes_gap > yes_bid and gap.no_gap < no_ask and gap.yes_gap + gap.no_gap <= PIPS_PER_ONE - 2 * tick:
            return gap
    raise RuntimeError("the sim lists no unlinked market with quotes to open a gap on")


def _sell(order_id: str, token: str, price_pips: int, size_units: int) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        owner=GAP_OWNER,
        maker_address=GAP_ADDRESS,
        token_id=token,
        side=Side.SELL,
        maker_amount=size_units,
        taker_amount=size_units * price_pips // PIPS_PER_ONE,
    )


# ---------------------------------------------------------------------------------------------------------------
# One event, the sim's side


@dataclass(eq=False)
class SimEvent:
    gap_order_id: str
    t_publish: int = 0  # the gap's YES ask is in the exchange: its frame is in the sim's outgoing queue
    t_sent: int = 0  # the sim starts writing the frame to the engine's socket
    #: order id -> (wire: the sim's kernel has the request's last bytes, HTTP handler, exchange)
    arrivals: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: requests of the event whose wire arrival is the sim reading them (no kernel timestamp), not the kernel's
    arrival_fallbacks: int = 0
    refused: str = ""


class _Relay(trio.abc.HalfCloseableStream):
    """A stream passing everything through to `inner`; the taps below override what they watch."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self._inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self._inner.receive_some(max_bytes))

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self._inner, trio.abc.HalfCloseableStream):
            await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SendTap(_Relay):
    """Stands in for the socket under the sim's side of the engine's market connection: notes when the sim starts
    writing the bytes of the event's `price_change` frame (server frames are not masked, so the JSON is visible)."""

    def __init__(self, inner: trio.abc.Stream, side: SimSide) -> None:
        super().__init__(inner)
        self._side = side
        self._token = side.gap.yes.encode()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        event = self._side.current
        if event is not None and event.t_publish and not event.t_sent:
            raw = bytes(data)
            if b'"price_change"' in raw and self._token in raw:
                event.t_sent = clock()
        await self._inner.send_all(data)


_TIMESPEC = struct.Struct("qq")  # struct timespec on 64-bit Linux: tv_sec, tv_nsec (native longs)
#: SO_TIMESTAMPNS, also the control message's type (SCM_TIMESTAMPNS). Python's socket module does not name it (3.11
#: here): Linux's asm-generic value (x86, arm, riscv), the 64-bit timespec one (SO_TIMESTAMPNS_OLD).
_SO_TIMESTAMPNS: int | None = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_RECEIVE_SIZE = 65536  # trio.SocketStream's default

#: The wire arrival of the latest chunk read on the current task's connection (each accepted connection is served
#: by a task of its own, which reads its requests and runs their handlers): (perf_counter ns, from the kernel).
_wire_arrival: ContextVar[tuple[int, bool]] = ContextVar("tick_to_trade_wire_arrival", default=(0, False))


def _arrival_of(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, bool]:
    """When the bytes just read arrived, on `clock()`'s timeline, and whether the kernel said so.

    The kernel's software receive timestamp (`SO_TIMESTAMPNS`: for TCP, that of the newest segment the read took;
    on loopback it is taken as the segment enters the receive path, in the sender's `send`, just before TCP queues
    it on the socket) is CLOCK_REALTIME. It is moved to CLOCK_MONOTONIC by the offset between the two clocks, read
    back to back now: the conversion errs by the time between those two reads (a few hundred ns), and an NTP step
    of the wall clock during the run would shift every stamp after it by that step (slewing is too slow to show).
    Without the control message (a kernel or socket that does not stamp): the read time, `(clock(), False)`."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            real, mono = time.time_ns(), clock()
            secs, nanos = _TIMESPEC.unpack_from(data)
            return secs * 1_000_000_000 + nanos + (mono - real), True
    return clock(), False


class _ArrivalTap(_Relay):
    """Stands in for every connection the sim accepts (`SimVenue.wrap_connection`), so the bench can end where the
    sim receives our `POST /orders` (its bytes at the sim's socket), not where the sim's handler has it: in between
    are the sim's wake-up and its h11 parse, the venue's work. Reads with `recvmsg`, keeping the kernel's timestamp
    of the chunk read (`_arrival_of`) in the task's `_wire_arrival` for the handler to pair with its request; the
    rest passes through. `socket` is the accepted one's (the server asks it for the peer's address)."""

    def __init__(self, inner: trio.SocketStream) -> None:
        super().__init__(inner)
        self.socket = inner.socket
        self._ancillary_size = socket.CMSG_SPACE(_TIMESPEC.size)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = _RECEIVE_SIZE if max_bytes is None else max_bytes
        if size < 1:
            raise ValueError("max_bytes must be >= 1")
        try:
            data, ancillary, _flags, _address = await self.socket.recvmsg(size, self._ancillary_size)
        except OSError as exc:  # as trio.SocketStream translates them
            if exc.errno == errno.EBADF:
                raise trio.ClosedResourceError("this socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
        if data:
            _wire_arrival.set(_arrival_of(ancillary))
        return data


def tap_arrivals(stream: trio.SocketStream) -> trio.abc.Stream:
    """The sim's `wrap_connection`: asks the kernel to timestamp what the connection receives, then taps it."""
    # Refused (or unknown here): no kernel timestamps, every arrival falls back to its read time (and is counted).
    if _SO_TIMESTAMPNS is not None:
        with contextlib.suppress(OSError):
            stream.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    return _ArrivalTap(stream)


class _ArrivalFaults(FaultInjector):
    """Stands in for the sim's fault injector at its HTTP front door (`http_delay` is asked first, once the request
    is parsed): notes when a `POST /order` is there, with the wire arrival of its connection's latest chunk, the one
    that completed the request (the handler runs in the task that read it, right after). The faults themselves stay
    the sim's."""

    def __init__(self, inner: FaultInjector, side: SimSide) -> None:
        super().__init__()
        self._inner = inner
        self._side = side

    def http_delay(self, service: str, path: str) -> float:
        if service == "clob" and path in ("/order", "/orders"):
            now = clock()
            wire, kernel = _wire_arrival.get()
            self._side.pending_arrival = (wire or now, now)
            event = self._side.current
            if event is not None and not kernel:
                event.arrival_fallbacks += 1
        return self._inner.http_delay(service, path)

    def http_error(self, service: str, path: str) -> Any:
        return self._inner.http_error(service, path)


class _ArrivalHooks:
    """The exchange's hooks: pairs the order id (after the sim's authentication and signature check) with the
    request's arrivals noted just before, with no checkpoint in between."""

    def __init__(self, inner: ExchangeHooks, side: SimSide) -> None:
        self._inner = inner
        self._side = side

    def on_submit(self, request: OrderRequest) -> Rejected | None:
        side = self._side
        if side.pending_arrival is not None and side.current is not None and request.owner != GAP_OWNER:
            # Every order of a `POST /orders` arrived with its request.
            side.current.arrivals[request.order_id] = (*side.pending_arrival, clock())
        return self._inner.on_submit(request)

    def fill_cap(self, request: OrderRequest) -> int | None:
        return self._inner.fill_cap(request)

    def ghost_trade(self, request: OrderRequest) -> bool:
        return self._inner.ghost_trade(request)

    def settlement_path(self, request: OrderRequest) -> str | None:
        return self._inner.settlement_path(request)


class SimSide:
    """The bench's hands on the sim: its taps and the exchange operations, driven by commands (JSON-able dicts)
    through `handle`, in the sim's Trio thread, whichever process that is."""

    def __init__(self, sim: SimVenue) -> None:
        self.sim = sim
        self.gap = choose_gap(sim)
        self.current: SimEvent | None = None
        self.pending_arrival: tuple[int, int] | None = None  # the latest order request's (wire, handler)
        # Taps on the sim: the order arriving, at its socket and at its handler (the fault injector itself stays the
        # sim's). They note only while an event is current; the connections are tapped from here on (the engine's
        # are all opened later).
        sim.wrap_connection = tap_arrivals
        sim.rest.faults = _ArrivalFaults(sim.faults, self)
        sim.exchange.hooks = _ArrivalHooks(sim.exchange.hooks, self)

    def hello(self) -> dict[str, Any]:
        return {"urls": self.sim.urls.as_dict(), "gap": asdict(self.gap), "clock": clock_implementation()}

    def handle(self, command: dict[str, Any]) -> dict[str, Any] | None:
        """One command; its reply (None for `place`, whose outcome the next `finish` reports)."""
        op = command["op"]
        if op == "clock":
            return {"ns": clock(), "implementation": clock_implementation()}
        if op == "cpu":
            return {"secs": time.process_time()}
        if op == "fund":
            self._fund(command["address"])
            return {}
        if op == "tap":
            return {"frame_tap": self._tap_market_connection()}
        if op == "rest_no_ask":
            return self._rest_no_ask()
        if op == "place":
            self._place(command["index"], command["size"])
            return None
        if op == "finish":
            return self._finish()
        raise ValueError(f"unknown command {op!r}")

    def _fund(self, address: str) -> None:
        gap, exchange = self.gap, self.sim.exchange
        exchange.fund(address, collateral=10**9 * UNITS_PER_ONE)
        exchange.fund(GAP_ADDRESS, shares={gap.yes: 10**7 * UNITS_PER_ONE, gap.no: 10**7 * UNITS_PER_ONE})

    def _tap_market_connection(self) -> bool:
        """Put `_SendTap` under the sim's side of the engine's market connection. The hub shows no public handle
        on its sessions, so this reaches in (its `_conns`, a session's `stream`, `ReplayStream.inner`); if that ever
        changes, False: the events are then timed from the moment the sim queued the frame."""
        conns = [
            c
            for c in getattr(self.sim.ws, "_conns", ())
            if getattr(c, "channel", None) == "market" and self.gap.yes in getattr(c, "assets", ())
        ]
        stream = getattr(conns[0], "stream", None) if len(conns) == 1 else None
        if not isinstance(stream, ReplayStream):
            return False
        stream.inner = _SendTap(stream.inner, self)
        return True

    def _rest_no_ask(self) -> dict[str, Any]:
        """The quiet market the gap opens on: a deep NO ask one tick under the makers' (no arbitrage alone)."""
        order = _sell(hex_id("bench:tick_to_trade:no"), self.gap.no, self.gap.no_gap, 10**6 * UNITS_PER_ONE)
        placed = self.sim.exchange.submit(order, self.sim.now())
        return {} if isinstance(placed, Accepted) else {"error": f"the resting NO ask was refused: {placed}"}

    def _place(self, index: int, size: int) -> None:
        """The event: the gap's YES ask, straight into the exchange, which publishes its `price_change` frame."""
        event = SimEvent(hex_id(f"bench:tick_to_trade:yes:{index}"))
        self.pending_arrival = None
        self.current = event
        placed = self.sim.exchange.submit(
            _sell(event.gap_order_id, self.gap.yes, self.gap.yes_gap, size * UNITS_PER_ONE), self.sim.now()
        )
        event.t_publish = clock()
        if not isinstance(placed, Accepted):
            event.refused = str(placed)

    def _finish(self) -> dict[str, Any]:
        """The event is over (or timed out): its timestamps; what is left of the gap's YES ask is cancelled."""
        event, self.current = self.current, None
        if event is None:
            return {"error": "finish without place"}
        left = self.sim.exchange.order(event.gap_order_id)
        if left is not None and left.status == LIVE:
            self.sim.exchange.cancel(GAP_OWNER, [event.gap_order_id], self.sim.now())
        return {
            "t_publish": event.t_publish,
            "t_sent": event.t_sent,
            "arrivals": event.arrivals,
            "arrival_fallbacks": event.arrival_fallbacks,
            "refused": event.refused,
        }


# ---------------------------------------------------------------------------------------------------------------
# The child process


class LineChannel:
    """One JSON object per line over a byte stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send_all(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def receive(self) -> dict[str, Any] | None:
        """The next message; None at end of file."""
        while (end := self._buffer.find(b"\n")) < 0:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        message: dict[str, Any] = json.loads(line)
        return message


async def serve(fd: int, markets: int) -> None:
    """Run the sim and answer the bench's commands until the channel ends."""
    channel = LineChannel(trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=fd))))
    async with channel.stream, open_sim_venue(sim_config(markets)) as sim:
        side = SimSide(sim)
        try:
            await channel.send(side.hello())
            while (command := await channel.receive()) is not None:
                try:
                    reply = side.handle(command)
                except Exception as exc:  # the bench raises it; the sim keeps serving until the channel ends
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                if reply is not None:
                    await channel.send(reply)
        except trio.BrokenResourceError:
            return  # the bench is gone (it ended while we started or answered): so are we


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._tick_to_trade_sim")
    parser.add_argument("--fd", type=int, required=True, help="the control socket, inherited")
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument("--log", type=Path, required=True, help="the sim's logs (JSON lines)")
    args = parser.parse_args()
    with args.log.open("w") as out:
        configure_logging(level="INFO", fmt="json", stream=out)
        trio.run(serve, args.fd, args.markets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
