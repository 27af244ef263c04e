"""Checks the commands make before they start anything: each mistake is one `ConfigError` naming the cause and the
fix (exit 2), found in the first second rather than after a run.

- `env_file(args)`: the `--env-file` to read; `.env` may be absent, a file named on the command line must exist
  (`/dev/null` reads none).
- `check_port_free(listen)`: the address resolves and the port can be bound (0 always can).
- `check_file_writable(path, ...)`: a file can be created (or overwritten) there: its directory exists and is
  writable, and it is not a directory.
- `check_sqlite_path(path)`: the SQLite file (and the journals SQLite and `trader` keep beside it) can be written.
- `make_output_directory(path, what=...)`: an output directory exists (made if needed, with its parents) and is
  writable.
- `check_redis_url(url)`: a `redis://`, `rediss://` or `unix://` URL with a usable port.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeGuard
from urllib.parse import urlsplit

from trader.errors import ConfigError

DEFAULT_ENV_FILE: Final = Path(".env")
DATABASE_FLAGS: Final = "--database-url or TRADER_DATABASE_URL"


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="settings file (default .env, read when present; a file named here must exist)",
    )


def env_file(args: argparse.Namespace) -> Path:
    """`--env-file`, which must exist when given; otherwise `.env`, which may be absent."""
    given: str | None = args.env_file
    if given is None:
        return DEFAULT_ENV_FILE
    path = Path(given)
    if not path.exists():
        raise ConfigError(f"--env-file {given}: no such file (fix the path, or leave --env-file out to read ./.env)")
    if path.is_dir():
        raise ConfigError(f"--env-file {given}: is a directory (name the settings file itself)")
    return path  # /dev/null is allowed: the way to say "no settings file"


@dataclass(frozen=True, slots=True)
class Listen:
    """Where a server listens, and where the operator sets it: `what` ("HTTP"), the flags or variables of the port
    and of the host."""

    host: str
    port: int
    what: str
    port_flags: str
    host_flags: str


def check_port_free(listen: Listen) -> None:
    """The server can listen there: the host resolves to an address of this machine and the port is free."""
    host, port = listen.host, listen.port
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"{listen.what} address {host!r} does not resolve ({exc.strerror}): use 127.0.0.1, 0.0.0.0 or a name "
            f"of this machine ({listen.host_flags})"
        ) from None
    if port == 0:
        return  # the system picks a free port
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no clash
            try:
                sock.bind(address)
            except OSError as exc:
                raise ConfigError(bind_error(exc, listen)) from None


def is_bind_error(exc: BaseException) -> TypeGuard[OSError]:
    """Whether `exc` is what binding a listening socket raises when the address or port cannot be used."""
    return (
        isinstance(exc, OSError)
        and exc.filename is None
        and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)
    )


def bind_error(exc: OSError, listen: Listen) -> str:
    """The operator's line for a failed bind (the early check, or the server's own bind losing a race)."""
    what, host, port = listen.what, listen.host, listen.port
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{what} port {port} on {host} is already in use (another trader?): stop what holds it, or choose "
            f"another port with {listen.port_flags} (0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return f"{what} port {port} needs privileges: choose a port above 1023 with {listen.port_flags}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{what} address {host} is not one of this machine's: use 127.0.0.1 or 0.0.0.0 ({listen.host_flags})"
    return f"{what} cannot listen on {host}:{port}: {exc.strerror or exc} ({listen.port_flags}, {listen.host_flags})"


def check_file_writable(path: Path, *, what: str) -> None:
    """A file can be written at `path`; `what` names the setting, e.g. "--summary-json /x/s.json"."""
    if path.is_dir():
        raise ConfigError(f"{what}: is a directory: name a file in it")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{what}: the file is not writable: fix its permissions or choose another path")
        return
    _check_directory(path, what=what)


def check_sqlite_path(path: Path) -> None:
    """SQLite writes the file and, beside it, its own journal (-wal, -shm) and `trader`'s intent journal: the file
    must be writable and its directory too."""
    if str(path) == ":memory:":
        return
    what = f"database sqlite:{path}"
    if path.is_dir():
        raise ConfigError(f"{what}: is a directory: name a file in it ({DATABASE_FLAGS})")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(
            f"{what}: the file is not writable: fix its permissions, or choose another ({DATABASE_FLAGS})"
        )
    _check_directory(path, what=what, fix=f"or choose another place ({DATABASE_FLAGS})")


def make_output_directory(path: Path, *, what: str) -> None:
    """`path` is a writable directory, made (with its parents) when missing; `what` names the flag, e.g. "--out x"."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what}: exists and is not a directory: choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot create it ({exc.strerror or exc}): choose another path") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: the directory is not writable: make it writable or choose another path")


def _check_directory(path: Path, *, what: str, fix: str = "or choose another path") -> None:
    directory = path.parent
    if not directory.exists():
        raise ConfigError(f"{what}: the directory {directory} does not exist: create it, {fix}")
    if not directory.is_dir():
        raise ConfigError(f"{what}: {directory} is not a directory: {fix.removeprefix('or ')}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: the directory {directory} is not writable: make it writable, {fix}")


def check_redis_url(url: str) -> None:
    """The URL's scheme and port (never its password) are usable; whether Redis answers is not checked here."""
    fix = "expected redis://[:PASSWORD@]HOST[:PORT][/DB] (--redis-url or TRADER_REDIS_URL)"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        raise ConfigError(f"Redis URL cannot be read: {fix}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigError(f"Redis URL has {shown}: {fix}")
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"Redis URL unix:// names no socket path: {fix}")
        return
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError:
        raise ConfigError(f"Redis URL has a bad port: {fix}") from None
