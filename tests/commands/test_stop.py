"""`trader stop` against the real operator HTTP server (hypercorn on loopback) with a fake engine behind it.

The command runs `trio.run` itself, so it is called in a worker thread while the server runs on the test's loop."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from trader.cli import build_parser, main
from trader.commands import stop as stop_command
from trader.integrations.http_server import HttpSettings, OperatorApp, run_http_server

TOKEN = "tok-9f8e7d6c5b4a"


class FakeControl:
    def __init__(self) -> None:
        self.stops: list[str] = []
        self.resumes = 0

    def readiness(self) -> Mapping[str, bool]:
        return {"books_fresh": True}

    def status(self) -> Mapping[str, object]:
        return {}

    def brief_status(self) -> Mapping[str, object]:
        return {}

    async def emergency_stop(self, reason: str) -> None:
        self.stops.append(reason)

    async def resume(self) -> None:
        self.resumes += 1


@asynccontextmanager
async def engine(control: FakeControl, token: str | None) -> AsyncIterator[str]:
    app = OperatorApp(control, CollectorRegistry(), admin_token=token)
    with capture_logs():
        async with trio.open_nursery() as nursery:
            url: str = await nursery.start(partial(run_http_server, app, HttpSettings(port=0)))
            yield url
            nursery.cancel_scope.cancel()


async def stop(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, ["stop", *argv])


async def test_emergency_stop_then_resume(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADER_ADMIN_TOKEN", TOKEN)
    control = FakeControl()
    async with engine(control, TOKEN) as url:
        assert await stop("--url", url, "--reason", "venue incident") == 0
        stopped = capsys.readouterr()
        assert json.loads(stopped.out) == {"trading_state": "HALTED", "reason": "venue incident"}
        assert control.stops == ["venue incident"]

        monkeypatch.setenv("TRADER_HTTP_URL", url)  # the URL from the environment this time
        assert await stop("--resume") == 0
        resumed = capsys.readouterr()
        assert json.loads(resumed.out) == {"trading_state": "ACTIVE"}
        assert control.resumes == 1
    assert TOKEN not in stopped.out + stopped.err + resumed.out + resumed.err


async def test_a_wrong_token_is_refused_and_not_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADER_ADMIN_TOKEN", "wrong-" + TOKEN)
    control = FakeControl()
    async with engine(control, TOKEN) as url:
        assert await stop("--url", url) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "HTTP 401" in err
    assert "missing or wrong bearer token" in err
    assert TOKEN not in err
    assert control.stops == []


async def test_an_engine_without_admin_token_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADER_ADMIN_TOKEN", TOKEN)
    async with engine(FakeControl(), None) as url:
        assert await stop("--url", url, "--resume") == 1
    assert "HTTP 403" in capsys.readouterr().err


async def test_an_unreachable_engine(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADER_ADMIN_TOKEN", TOKEN)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await stop("--url", f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert f"cannot reach the engine at http://127.0.0.1:{port}/emergency-stop" in err
    assert TOKEN not in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "no admin token: set TRADER_ADMIN_TOKEN"),
        (["--url", "127.0.0.1:8080"], {"TRADER_ADMIN_TOKEN": TOKEN}, "--url: expected http://HOST:PORT"),
        (["--url", "http://[::1"], {"TRADER_ADMIN_TOKEN": TOKEN}, "--url: expected http://HOST:PORT"),  # no traceback
        (["--url", "http://h:99999"], {"TRADER_ADMIN_TOKEN": TOKEN}, "--url: expected http://HOST:PORT"),
        (["--resume", "--reason", "x"], {"TRADER_ADMIN_TOKEN": TOKEN}, "--reason goes with an emergency stop"),
        (["--reason", "x" * 201], {"TRADER_ADMIN_TOKEN": TOKEN}, "at most 200"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["stop", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert TOKEN not in out + err


def test_the_token_may_come_from_the_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "ops.env"
    env_file.write_text(f"TRADER_ADMIN_TOKEN={TOKEN}\n")
    args = build_parser("stop").parse_args(["stop", "--env-file", str(env_file)])
    url, token, body = stop_command.request_from(args, {})
    assert (url, token, body) == ("http://127.0.0.1:8080/emergency-stop", TOKEN, {"reason": "operator: trader stop"})
