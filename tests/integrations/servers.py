"""The real PostgreSQL and Redis servers the `pg` / `redis` tests use, and how the outage tests stop and restart them.

The servers are the ones named by TRADER_TEST_PG_DSN / TRADER_TEST_REDIS_URL; without the variables the tests use
the local default port, and skip (saying why) when nothing answers there. Stopping a server needs root and the
server tools (as in CI); elsewhere `require_control` skips.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import trio

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1).close()
    except OSError:
        return False
    return True


def pg_dsn() -> str:
    """TRADER_TEST_PG_DSN, else the local server (skips when none answers)."""
    dsn = os.environ.get("TRADER_TEST_PG_DSN")
    if dsn is None:
        dsn = DEFAULT_PG_DSN
        if not _reachable(dsn, 5432):
            pytest.skip("TRADER_TEST_PG_DSN is unset and no PostgreSQL answers on 127.0.0.1:5432")
    return dsn


def redis_url() -> str:
    """TRADER_TEST_REDIS_URL, else the local server (skips when none answers)."""
    url = os.environ.get("TRADER_TEST_REDIS_URL")
    if url is None:
        url = DEFAULT_REDIS_URL
        if not _reachable(url, 6379):
            pytest.skip("TRADER_TEST_REDIS_URL is unset and no Redis answers on 127.0.0.1:6379")
    return url


# -- stopping and starting them (outage tests) ---------------------------------------------------------------------


def require_control(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        pytest.skip(f"stopping the server needs root and {', '.join(tools)} (missing: {missing or 'root'})")


def pg_cluster() -> list[str]:
    """The `pg_ctlcluster` command line of the local cluster (append "stop -m fast" or "start")."""
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        pytest.skip("no local PostgreSQL cluster under /etc/postgresql to stop and start")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


async def pg_wait_ready(dsn: str) -> None:
    parts = urlsplit(dsn)
    ready = ["pg_isready", "-q", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    with trio.fail_after(60):
        while True:
            if (await trio.run_process(ready, check=False)).returncode == 0:
                return
            await trio.sleep(0.2)


def redis_stop(url: str) -> list[str]:
    """The command that stops the Redis server of `url` without saving."""
    parts = urlsplit(url)
    return ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "shutdown", "nosave"]


def redis_start(url: str) -> list[str]:
    """The command that starts it again, as CI runs it: no persistence, so it comes back empty."""
    port = str(urlsplit(url).port or 6379)
    return [
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", port, "--save", "",
        "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
    ]  # fmt: skip


async def redis_wait_ready(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        with trio.fail_after(30):
            while True:
                try:
                    if await trio.to_thread.run_sync(client.ping):
                        return
                except redis.exceptions.RedisError:
                    pass
                await trio.sleep(0.1)
    finally:
        client.close()
