"""Private servers for benches and tests that stop or restart them: a throw-away PostgreSQL cluster (`initdb` in a
temporary directory) and a private `redis-server`, each on a free port of 127.0.0.1. The machine's own servers,
which other users share, are never touched.

`python -m bench chaos` stops them for its outages; `tests/test_ha_pair.py` restarts the PostgreSQL under a running
pair. `live_engine_env`: the environment of a `trader run --venue polymarket --live` process pointed at a sim."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from bench.soak import _free_port
from trader.venues.sim.venue import SimUrls


def live_engine_env(urls: SimUrls, key: str, database_url: str, extra: Mapping[str, str] = {}) -> dict[str, str]:
    """This process's environment without its `TRADER_*` variables, plus those of a live engine trading on the sim
    at `urls` with `key`, storing in `database_url`, on any HTTP port, draining in 2 s, logging JSON; `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    env.update(
        {
            "TRADER_ENDPOINTS__REST_URL": urls.rest,
            "TRADER_ENDPOINTS__WS_MARKET_URL": urls.ws_market,
            "TRADER_ENDPOINTS__WS_USER_URL": urls.ws_user,
            "TRADER_ENDPOINTS__GAMMA_URL": urls.gamma,
            "TRADER_ENDPOINTS__ESPN_URL": urls.espn,
            "TRADER_PRIVATE_KEY": key,
            "TRADER_CONFIRM_LIVE": "yes",
            "TRADER_DATABASE_URL": database_url,
            "TRADER_HTTP__PORT": "0",
            "TRADER_RUN__DRAIN_SECS": "2",
            "TRADER_RUN__LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    which = shutil.which(name)
    if which is None:
        raise RuntimeError(f"{name} not found (apt-get install postgresql)")
    return which


def private_postgres_missing() -> str | None:
    """Why a `PrivatePostgres` cannot be made here (for a test's skip reason), or None when it can."""
    for name in ("initdb", "pg_ctl"):
        try:
            _pg_bin(name)
        except RuntimeError as e:
            return str(e)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in `folder`/pg, on a free port, with trust authentication, listening on
    127.0.0.1 only, fsync off. `folder` must be reachable by the postgres user when run as root (a fresh
    `tempfile.mkdtemp()`, not pytest's 0700 `tmp_path`): it is handed to that user. The methods block (initdb takes
    seconds): from Trio, call them in a thread."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder / "pg"
        self.dir.mkdir()
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(folder, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)  # noqa: S603

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        data = str(self.dir / "data")
        self._run(_pg_bin("pg_ctl"), "-D", data, "-o", options, "-l", str(self.dir / "log"), "-w", *args, action)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` (a crash, as for an outage) or `fast` (sessions ended, a clean shutdown)."""
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart`: every session ends, then the server is back on the same port."""
        self._ctl("restart", "-m", mode)

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop()


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def close(self) -> None:
        self.stop()
