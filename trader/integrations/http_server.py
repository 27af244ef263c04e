"""The operator's HTTP interface: health, readiness, Prometheus metrics, status, emergency stop and resume.

A small ASGI application served by hypercorn's trio worker, on 127.0.0.1 by default:

| route | what |
|---|---|
| `GET /health` | 200 while the process is alive |
| `GET /ready` | 200 when books are fresh, the venue is reachable and the store is writable; else 503 and the checks |
| `GET /metrics` | Prometheus text exposition |
| `GET /status` | JSON, short: trading state, why halted and by whom, money, refusals by reason, markets by name |
| `GET /status?full=1` | JSON: everything (by token id: positions, orders; every service's counters; opportunities) |
| `POST /emergency-stop` | `Authorization: Bearer <TRADER_ADMIN_TOKEN>`; halts trading and cancels every order |
| `POST /resume` | same token; back to ACTIVE |

The two POST routes are refused (401) without the right token, and disabled (403) when no admin token is configured.
The engine is reached only through the `EngineControl` protocol, so this module knows nothing of its internals.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol
from urllib.parse import parse_qs

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = structlog.get_logger(__name__)

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class EngineControl(Protocol):
    """What the HTTP server may ask of the engine."""

    def readiness(self) -> Mapping[str, bool]:
        """Named readiness checks (e.g. books_fresh, venue_reachable, store_writable)."""
        ...

    def status(self) -> Mapping[str, object]:
        """A JSON-serialisable status document: everything (`/status?full=1`)."""
        ...

    def brief_status(self) -> Mapping[str, object]:
        """The short status document a person reads (`/status`)."""
        ...

    async def emergency_stop(self, reason: str) -> None: ...

    async def resume(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """`host` (default 127.0.0.1), `port` (default 8080; 0 picks a free port), `admin_token` (None disables
    the POST routes)."""

    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 picks a free one), got {self.port!r}")

    def __repr__(self) -> str:
        token = "None" if self.admin_token is None else "'***'"
        return f"HttpSettings(host={self.host!r}, port={self.port}, admin_token={token})"


def _json_default(value: object) -> str:
    return str(value)  # Decimal, enums, datetimes: exact text, never float


class OperatorApp:
    """The ASGI application."""

    def __init__(self, control: EngineControl, registry: CollectorRegistry, *, admin_token: str | None) -> None:
        self._control = control
        self._registry = registry
        self._admin_token = admin_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if (method, path) == ("GET", "/health"):
            await _json(send, 200, {"status": "alive"})
        elif (method, path) == ("GET", "/ready"):
            checks = dict(self._control.readiness())
            ready = all(checks.values())
            await _json(send, 200 if ready else 503, {"ready": ready, "checks": checks})
        elif (method, path) == ("GET", "/metrics"):
            payload: bytes = generate_latest(self._registry)
            await _respond(send, 200, payload, CONTENT_TYPE_LATEST)
        elif (method, path) == ("GET", "/status"):
            full = _wants_full(scope)
            await _json(send, 200, self._control.status() if full else self._control.brief_status())
        elif (method, path) in {("POST", "/emergency-stop"), ("POST", "/resume")}:
            await self._admin(scope, receive, send, path)
        elif path in {"/health", "/ready", "/metrics", "/status", "/emergency-stop", "/resume"}:
            await _json(send, 405, {"error": "method not allowed"})
        else:
            await _json(send, 404, {"error": "not found"})

    async def _admin(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if self._admin_token is None:
            await _json(send, 403, {"error": "admin endpoints are disabled: no TRADER_ADMIN_TOKEN is configured"})
            return
        if not _bearer_matches(scope, self._admin_token):
            log.warning("admin_request_refused", path=path)
            await _json(send, 401, {"error": "missing or wrong bearer token"})
            return
        body = await _read_body(receive)
        if path == "/emergency-stop":
            reason = "operator"
            try:
                parsed = json.loads(body) if body else {}
                if isinstance(parsed, dict) and isinstance(parsed.get("reason"), str):
                    reason = parsed["reason"][:200]
            except (ValueError, RecursionError):  # an unreadable body must never keep the stop from happening
                pass
            await self._control.emergency_stop(reason)
            await _json(send, 200, {"trading_state": "HALTED", "reason": reason})
        else:
            await self._control.resume()
            await _json(send, 200, {"trading_state": "ACTIVE"})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _wants_full(scope: Scope) -> bool:
    """`?full=1` (or true/yes): the whole status document."""
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    return any(v.strip().lower() in {"1", "true", "yes"} for v in query.get("full", []))


def _bearer_matches(scope: Scope, token: str) -> bool:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, presented = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return False


async def _read_body(receive: Receive, limit: int = 64 * 1024) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit or not message.get("more_body", False):
            return body[:limit]


async def _json(send: Send, status: int, document: object) -> None:
    payload = json.dumps(document, default=_json_default, separators=(",", ":")).encode()
    await _respond(send, status, payload, "application/json")


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def run_http_server(
    app: Any,  # an ASGI application: `OperatorApp`, or the engine's web app that mounts it
    settings: HttpSettings,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI `app` until cancelled or `shutdown_trigger` returns; `task_status.started` gets the base URL."""
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 2.0
    config.keep_alive_max_requests = 1_000_000

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown_trigger))
        url = binds[0]
        log.info("http_server_started", url=url)
        task_status.started(url)
