"""The suite's shared setup: per-test timeouts that work for Trio tests (tests/trio_timeout.py), fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.trio_timeout", "pytester"]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


#: The recursion limit the engine runs with. Importing eth-account (the signing and interop tests do) raises it to
#: 100,000 for the whole test process, and then a deeply nested JSON document overflows the C stack inside msgspec
#: and kills the process instead of raising RecursionError.
ENGINE_RECURSION_LIMIT = 1000


@pytest.fixture(scope="module")
def engine_recursion_limit() -> Iterator[None]:
    """Run a module's tests under the engine's recursion limit (module scope: Hypothesis tests may use it)."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(ENGINE_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
