"""The suite's shared setup: Hypothesis profiles, per-test timeouts that work for Trio tests (tests/trio_timeout.py),
fixtures.

Hypothesis: the `ci` profile (derandomized, no example database, 2 s deadline) is loaded when `CI` is set and by
`scripts/test`, so every run draws the same examples and a red run fails the same way again, on every machine and
in a fresh clone alike; otherwise `dev` (new random examples each run, and the `.hypothesis/` database replays past
failures first). `HYPOTHESIS_PROFILE=dev|ci` chooses explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["tests.trio_timeout", "pytester"]

FIXTURES = Path(__file__).parent / "fixtures"

settings.register_profile("ci", derandomize=True, database=None, deadline=timedelta(seconds=2), print_blob=True)
settings.register_profile("dev", deadline=timedelta(seconds=2))


def hypothesis_profile(environ: Mapping[str, str] = os.environ) -> str:
    """`HYPOTHESIS_PROFILE` if set, else `ci` under CI (`CI` set to anything but "", "0" or "false"), else `dev`."""
    chosen = environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if environ.get("CI", "").lower() not in ("", "0", "false") else "dev"


settings.load_profile(hypothesis_profile())


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
