"""`python -m bench sim [--secs S] [--frames N] [--scenario NAME] [--scenario-param K=V ...]`: how many market
frames per second the simulated venue delivers to ONE client on loopback.

The sim runs as `python -m trader sim` in its own process (rate limits off); by default its `frames` scenario
replays the shipped sample session in a loop as fast as the client drains it (`rate=max`, `loop=true`), the load
mode meant for load-testing the engine. The client here subscribes to every listed asset and reads with a
minimal RFC 6455 reader on a plain Trio TCP stream (trio-websocket's client tops out near 15-17k frames/s on
this class of machine, so it would measure itself), decoding every frame with msgspec to check it is JSON.

It measures what the client actually receives: WebSocket text frames (one JSON object or array each), their bytes
and the JSON events inside, after `--warmup` seconds, over `--secs` seconds or until `--frames` frames, whichever
comes first. Prints one JSON object per line; the last has `frames_per_s`, `events_per_s`, `mb_per_s`, the target
(`--target`, default 20000 frames/s) and whether it was met. Exit status 1 if the sim failed, closed the
connection, or sent a frame that is not JSON; a missed target is reported, not an error (machines differ).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import msgspec
import trio

_DECODER = msgspec.json.Decoder()


@dataclass
class Counts:
    frames: int = 0
    events: int = 0
    bytes: int = 0
    bad: int = 0
    closed: str = ""


class RawWsClient:
    """Just enough of a WebSocket client to subscribe and count what arrives (text frames, unmasked from the
    server; a PING is answered, a close frame ends the read)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> RawWsClient:
        stream = await trio.open_tcp_stream(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        client = cls(stream)
        while b"\r\n\r\n" not in client.buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("the sim closed the connection during the handshake")
            client.buffer += chunk
        head, _, rest = bytes(client.buffer).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        client.buffer = bytearray(rest)
        return client

    async def send_text(self, text: str, opcode: int = 0x1) -> None:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = bytes([0x80 | opcode, 0x80 | size])
        elif size < 1 << 16:
            header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", size)
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.stream.send_all(header + mask + masked)

    async def read(self, counts: Counts, until: float, max_frames: int) -> None:
        """Count text frames into `counts` until the perf-counter deadline or `max_frames`."""
        data, pos = self.buffer, 0
        while counts.frames < max_frames and time.perf_counter() < until:
            chunk = await self.stream.receive_some(1 << 18)
            if not chunk:
                counts.closed = "connection closed by the sim"
                return
            data += chunk
            while counts.frames < max_frames:
                available = len(data) - pos
                if available < 2:
                    break
                opcode, length, start = data[pos] & 0x0F, data[pos + 1] & 0x7F, pos + 2
                if length == 126:
                    if available < 4:
                        break
                    (length,) = struct.unpack_from("!H", data, start)
                    start += 2
                elif length == 127:
                    if available < 10:
                        break
                    (length,) = struct.unpack_from("!Q", data, start)
                    start += 8
                end = start + length
                if len(data) < end:
                    break
                payload = bytes(data[start:end])
                pos = end
                if opcode == 0x8:
                    counts.closed = f"close frame from the sim: {payload[2:].decode(errors='replace')}"
                    return
                if opcode == 0x9:
                    await self.send_text(payload.decode(errors="replace"), opcode=0xA)
                    continue
                if opcode not in (0x1, 0x0):
                    continue
                counts.frames += 1
                counts.bytes += length
                try:
                    decoded = _DECODER.decode(payload)
                except msgspec.DecodeError:
                    counts.bad += 1
                    continue
                counts.events += len(decoded) if isinstance(decoded, list) else 1
            if pos > 1 << 20:
                del data[:pos]
                pos = 0
        del data[:pos]


async def _start_sim(argv: list[str]) -> tuple[trio.Process, dict[str, str]]:
    command = [sys.executable, "-m", "trader", "sim", "--no-rate-limits", *argv]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = b""
    with trio.fail_after(60):
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                raise RuntimeError(f"the sim exited before it was ready: {' '.join(command)}")
            line += chunk
    urls: dict[str, str] = json.loads(line)
    return process, urls


async def _stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run(args: argparse.Namespace) -> dict[str, object]:
    sim_argv = ["--scenario", args.scenario, "--markets", str(args.markets)]
    params = list(args.scenario_param)
    if args.scenario == "frames" and not params:
        params = ["rate=max", "loop=true", "sync_secs=0.1"]
    for param in params:
        sim_argv += ["--scenario-param", param]
    process, urls = await _start_sim(sim_argv)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            markets = (await http.get(urls["gamma"] + "/markets")).json()
        assets = [token for market in markets for token in json.loads(market["clobTokenIds"])]
        host, _, port = urls["ws_market"].removeprefix("ws://").partition("/")[0].rpartition(":")
        client = await RawWsClient.connect(host, int(port), "/ws/market")
        await client.send_text(json.dumps({"type": "market", "assets_ids": assets}))
        warm = Counts()
        await client.read(warm, time.perf_counter() + args.warmup, 1 << 62)
        counts = Counts(closed=warm.closed)
        started = time.perf_counter()
        cpu_started = time.process_time()
        if not counts.closed:
            await client.read(counts, started + args.secs, args.frames)
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
        await client.stream.aclose()
    finally:
        await _stop(process)
    rate = counts.frames / elapsed if elapsed > 0 else 0.0
    return {
        "scenario": args.scenario,
        "params": params,
        "assets": len(assets),
        "frames": counts.frames,
        "secs": round(elapsed, 3),
        "frames_per_s": round(rate),
        "events_per_s": round(counts.events / elapsed) if elapsed > 0 else 0,
        "mb_per_s": round(counts.bytes / elapsed / 1e6, 2) if elapsed > 0 else 0,
        "avg_frame_bytes": round(counts.bytes / counts.frames) if counts.frames else 0,
        "client_cpu_share": round(client_cpu / elapsed, 2) if elapsed > 0 else 0,
        "bad_frames": counts.bad + warm.bad,
        "closed": counts.closed or None,
        "target_frames_per_s": args.target,
        "meets_target": rate >= args.target,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sim", description=__doc__.splitlines()[0])
    parser.add_argument("--secs", type=float, default=5.0, help="measure for this long (default 5)")
    parser.add_argument("--frames", type=int, default=10**9, help="or until this many frames (default: no limit)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds read before measuring (default 0.5)")
    parser.add_argument("--scenario", default="frames", help="the sim's scenario (default frames)")
    parser.add_argument("--markets", type=int, default=8, help="--markets for the sim (default 8)")
    parser.add_argument(
        "--scenario-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the sim; frames defaults to rate=max loop=true sync_secs=0.1",
    )
    parser.add_argument("--target", type=int, default=20_000, help="frames/s to reach (default 20000)")
    args = parser.parse_args(argv)
    if args.secs <= 0 or args.frames < 1 or args.warmup < 0:
        parser.error("--secs must be > 0, --frames >= 1 and --warmup >= 0")
    print(json.dumps({"bench": "sim", "scenario": args.scenario, "secs": args.secs, "frames": args.frames}))
    result = trio.run(run, args)
    print(json.dumps(result))
    return 1 if result["closed"] or result["bad_frames"] or not result["frames"] else 0
