"""Logging: structlog, configured once per process.

Console rendering in a terminal, one JSON object per line otherwise (containers, CI, log shippers). Event names are
snake_case facts with typed key/values. A last processor scrubs anything that looks like a secret, as a safety net
behind the rule that secrets are never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = re.compile(r"(secret|passphrase|private_key|password|admin_token|authorization|api_key)$", re.I)
_HEX_KEY = re.compile(r"0x[0-9a-fA-F]{64}\b")
REDACTED = "[redacted]"

Format = Literal["auto", "console", "json"]


def _is_secret(key: str, value: object) -> bool:
    if key == "event":
        return False
    if _SECRET_KEYS.search(key):
        return True
    return isinstance(value, str) and "key" in key.lower() and _HEX_KEY.search(value) is not None


def _scrub(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _is_secret(key, value):
            event_dict[key] = REDACTED
    return event_dict


def configure_logging(
    *, level: str = "INFO", fmt: Format = "auto", stream: Any = None, cache_loggers: bool = False
) -> None:
    """Configure structlog for this process. `fmt="auto"` picks console for a TTY and JSON otherwise.

    `cache_loggers` lets each module logger keep its bound logger after first use (no rebuild per call, which
    matters on the per-order path); only a long-running process that configures logging once should set it, never
    tests (structlog's testing guide)."""
    out = stream if stream is not None else sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=cache_loggers,
    )
