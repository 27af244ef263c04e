from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from trader.infra import logging as trader_logging


@pytest.fixture
def log_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The commands configure structlog for the process: send it to a buffer the test can read (never to pytest's
    captured stderr, which is closed after the test), and put the previous configuration back afterwards."""
    sink = io.StringIO()
    saved = structlog.get_config()

    def configure(**kwargs: object) -> None:
        trader_logging.configure_logging(level="DEBUG", fmt="json", stream=sink)

    configure()  # the sim and the test's own adapter log too
    for module in ("reconcile", "flatten", "doctor"):
        if importlib.util.find_spec(f"trader.commands.{module}") is not None:
            monkeypatch.setattr(f"trader.commands.{module}.configure_logging", configure)
    yield sink
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TRADER_* variable or `.env` of the developer's shell leaks into a command under test."""
    for name in list(os.environ):
        if name.startswith("TRADER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
