"""The suite cannot hang: a test that runs past its timeout fails alone, saying where it was waiting, and the tests
after it run as usual (Trio tests included: tests/trio_timeout.py). Each case runs pytest in a child process with
this suite's plugins and a timeout of a second or two."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
pytest_plugins = ["tests.trio_timeout"]
"""

TESTS = """
import time

import pytest
import trio
import trio.testing


async def helper() -> None:
    await trio.sleep_forever()


async def test_waits_forever() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(helper)
        await trio.Event().wait()


async def test_next_trio_test_runs_normally() -> None:
    await trio.sleep(0.01)


async def test_autojump_clock_waiting_on_a_thread(autojump_clock: trio.testing.MockClock) -> None:
    await trio.to_thread.run_sync(time.sleep, 60, abandon_on_cancel=True)


def test_sync_sleep_forever() -> None:
    time.sleep(60)


@pytest.mark.timeout(4)
async def test_a_marker_raises_the_limit() -> None:
    await trio.sleep(1.5)


def test_last_sync_test_runs() -> None:
    assert True
"""


SHIELDED = """
import trio


async def test_shielded_wait() -> None:
    with trio.CancelScope(shield=True):
        await trio.sleep(60)


def test_never_reached() -> None:
    pass
"""


def line_of(source: str, text: str) -> int:
    """The line number of `text` in a file that pytester wrote from `source`."""
    return next(n for n, line in enumerate(source.strip().splitlines(), 1) if text in line)


def test_a_hanging_test_fails_alone_and_the_rest_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_hangs=TESTS)
    pytester.makeini("[pytest]\ntrio_mode = true\ntimeout = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("COLUMNS", "300")  # whole lines in the short summary

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3, failed=3)
    text = result.stdout.str()
    # The Trio test fails with the timeout and where its tasks were waiting, not with a broken Trio loop, and the
    # Trio test after it passes.
    assert "test_waits_forever - Failed: Timeout (>1.0s) from pytest-timeout: the Trio test was cancelled." in text
    # where each task of the test was waiting
    assert "task 'test_hangs.helper' waits at " in text
    assert f"test_hangs.py:{line_of(TESTS, 'await trio.sleep_forever()')} in helper" in text
    assert "task \"<test 'test_waits_forever'>\" waits at " in text
    assert f"test_hangs.py:{line_of(TESTS, 'await trio.Event().wait()')} in test_waits_forever" in text
    for broken in ("TrioInternalError", "run() from inside a run()", "PytestUnraisableExceptionWarning"):
        assert broken not in text
    # Waiting on a thread under the autojump clock, and a blocking sync call.
    for name in (
        "test_autojump_clock_waiting_on_a_thread",
        "test_sync_sleep_forever",
    ):
        (summary,) = [line for line in result.outlines if line.startswith(f"FAILED test_hangs.py::{name} - ")]
        assert "Timeout (>1.0s)" in summary


def test_a_trio_test_that_ignores_its_cancellation_stops_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raising inside Trio's loop would break every later Trio test: stop with a report instead of hanging."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_shielded=SHIELDED)
    pytester.makeini("[pytest]\ntrio_mode = true\ntimeout = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == 1
    text = result.stdout.str()
    assert "test_shielded.py::test_shielded_wait did not unwind within 1.0s of its cancellation" in text
    assert f"test_shielded.py:{line_of(SHIELDED, 'await trio.sleep(60)')} in test_shielded_wait" in text
    assert "test_never_reached" not in text
