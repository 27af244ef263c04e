from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial

import httpx
import pytest
import trio
from prometheus_client import CollectorRegistry, Counter

from trader.integrations.http_server import HttpSettings, OperatorApp, run_http_server


class FakeControl:
    def __init__(self) -> None:
        self.ready = {"books_fresh": True, "venue_reachable": True, "store_writable": True}
        self.stops: list[str] = []
        self.resumes = 0

    def readiness(self) -> Mapping[str, bool]:
        return self.ready

    def status(self) -> Mapping[str, object]:
        return {"trading_state": "ACTIVE", "realized_pnl": Decimal("1.25")}

    def brief_status(self) -> Mapping[str, object]:
        return {"trading_state": "ACTIVE"}

    async def emergency_stop(self, reason: str) -> None:
        self.stops.append(reason)

    async def resume(self) -> None:
        self.resumes += 1


@asynccontextmanager
async def serving(control: FakeControl, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    registry = CollectorRegistry()
    Counter("trader_test_frames", "frames", registry=registry).inc(3)
    app = OperatorApp(control, registry, admin_token=token)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(run_http_server, app, HttpSettings(port=0)))
        async with httpx.AsyncClient(base_url=url) as client:
            yield client
        nursery.cancel_scope.cancel()


async def test_health_ready_metrics_status() -> None:
    control = FakeControl()
    async with serving(control, None) as client:
        assert (await client.get("/health")).json() == {"status": "alive"}
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        control.ready["books_fresh"] = False
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["books_fresh"] is False
        metrics = await client.get("/metrics")
        assert "trader_test_frames_total 3.0" in metrics.text
        assert (await client.get("/status")).json() == {"trading_state": "ACTIVE"}  # the short one by default
        status = await client.get("/status?full=1")
        assert status.json() == {"trading_state": "ACTIVE", "realized_pnl": "1.25"}
        assert (await client.get("/status?full=0")).json() == {"trading_state": "ACTIVE"}
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/status")).status_code == 405


async def test_admin_routes_need_the_bearer_token() -> None:
    control = FakeControl()
    async with serving(control, "s3cret-token") as client:
        assert (await client.post("/emergency-stop")).status_code == 401
        wrong = await client.post("/emergency-stop", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "s3cret" not in wrong.text
        assert control.stops == []
        ok = await client.post(
            "/emergency-stop", headers={"Authorization": "Bearer s3cret-token"}, json={"reason": "drill"}
        )
        assert ok.status_code == 200
        assert control.stops == ["drill"]
        resumed = await client.post("/resume", headers={"Authorization": "Bearer s3cret-token"})
        assert resumed.json() == {"trading_state": "ACTIVE"}
        assert control.resumes == 1


@pytest.mark.usefixtures("engine_recursion_limit")
@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe\x00", b"[" * 5000 + b"]" * 5000])
async def test_an_unreadable_body_still_stops_trading(body: bytes) -> None:
    control = FakeControl()
    async with serving(control, "s3cret-token") as client:
        stopped = await client.post("/emergency-stop", headers={"Authorization": "Bearer s3cret-token"}, content=body)

        assert stopped.json() == {"trading_state": "HALTED", "reason": "operator"}
        assert control.stops == ["operator"]


async def test_admin_routes_are_disabled_without_a_configured_token() -> None:
    control = FakeControl()
    async with serving(control, None) as client:
        refused = await client.post("/emergency-stop", headers={"Authorization": "Bearer anything"})
        assert refused.status_code == 403
        assert control.stops == []


def test_settings_repr_hides_the_token() -> None:
    assert "abc" not in repr(HttpSettings(admin_token="abc"))
