"""Logging: structlog, configured once per process.

Console rendering in a terminal (`trader.infra.console`: market names next to ids, the periodic status line, hints
on their own line), one JSON object per line otherwise (containers, CI, log shippers). Event names are
snake_case facts with typed key/values. A last processor scrubs anything that looks like a secret, as a safety net
behind the rule that secrets are never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from trader.infra.console import ConsoleRenderer, use_colour
from trader.infra.secrets import REDACTED, is_secret_log_field

__all__ = ["REDACTED", "Format", "configure_logging", "console_chosen"]

Format = Literal["auto", "console", "json"]


def _scrub(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if is_secret_log_field(key, value):
            event_dict[key] = REDACTED
    return event_dict


def console_chosen(fmt: Format, stream: Any = None) -> bool:
    """True when `fmt` means the console for `stream` (stderr by default): "console", or "auto" on a terminal."""
    out = stream if stream is not None else sys.stderr
    return fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())


def configure_logging(
    *, level: str = "INFO", fmt: Format = "auto", stream: Any = None, cache_loggers: bool = False
) -> None:
    """Configure structlog for this process. `fmt="auto"` picks console for a TTY and JSON otherwise.

    `cache_loggers` lets each module logger keep its bound logger after first use (no rebuild per call, which
    matters on the per-order path); only a long-running process that configures logging once should set it, never
    tests (structlog's testing guide)."""
    out = stream if stream is not None else sys.stderr
    use_console = console_chosen(fmt, out)
    renderer: Any = ConsoleRenderer(colour=use_colour(out)) if use_console else structlog.processors.JSONRenderer()
    stamper = (
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
        if use_console
        else structlog.processors.TimeStamper(fmt="iso", utc=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
            structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=cache_loggers,
    )
