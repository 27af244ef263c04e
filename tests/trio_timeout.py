"""Per-test timeouts (pytest-timeout) that also work for Trio tests. Loaded by tests/conftest.py.

pytest-timeout's `signal` method raises `Failed` from a SIGALRM handler wherever the main thread happens to be. In a
Trio test that is usually inside Trio's own run loop (waiting for I/O), which breaks the loop: the test fails with a
`TrioInternalError`, and the *next* Trio test fails too ("Attempted to call run() from inside a run()"). So for Trio
tests this plugin provides pytest-timeout's timer itself (its `pytest_timeout_set_timer` hook):

* every Trio test runs inside a cancel scope of its own (pytest-trio's `trio(run=...)` marker names `trio_run`);
* at the timeout, the SIGALRM handler asks Trio (`TrioToken.run_sync_soon`, which is safe in a signal handler) to
  note where every task is waiting and to cancel that scope: the test and its Trio fixtures unwind as on any
  cancellation, and the test fails with "Timeout (>N s)" and those places;
* a test that has not unwound `GRACE_SECS` later (or its timeout, if shorter) gets pytest-timeout's treatment: `Failed`
  raised where it is busy in its own code (a blocking call, a loop without a checkpoint); but if it is still waiting
  inside Trio (a shielded wait), raising there would break Trio for every later test, so the session stops as with
  pytest-timeout's thread method (the report, then exit 1).

Sync tests, the sync parts of Trio tests (sync fixtures) and `--timeout-method=thread` are pytest-timeout's as usual.
The timeout is `timeout` in pyproject.toml; a test that needs longer says so with `@pytest.mark.timeout(SECS)`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest
import pytest_timeout
import pytest_trio
import trio
from _pytest.outcomes import Failed

#: How long a cancelled Trio test may take to unwind before it is interrupted wherever it is (at most its timeout).
GRACE_SECS = 5.0


@dataclass
class _TrioRun:
    """The Trio test running now (one at a time: pytest runs tests one after the other in a process)."""

    token: trio.lowlevel.TrioToken | None = None
    scope: trio.CancelScope | None = None
    timeout: float | None = None  # set when the timeout fired
    waiting: list[str] = field(default_factory=list)  # where the tasks were waiting then


_active: _TrioRun | None = None


def _task_tree(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _task_tree(child)


#: Frames in these packages are the machinery, not the place a test waits at.
_MACHINERY = tuple(os.path.dirname(module.__file__ or "") + os.sep for module in (trio, pytest_trio))


def _in_machinery(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(_MACHINERY) or frame.f_code.co_filename == __file__


def _note_waiting_tasks(state: _TrioRun) -> None:
    """For each task, the innermost frame of its await stack that is the test's or the project's own."""
    root = trio.lowlevel.current_root_task()
    for task in _task_tree(root) if root is not None else ():
        own = [(frame, lineno) for frame, lineno in task.iter_await_frames() if not _in_machinery(frame)]
        if own:
            frame, lineno = own[-1]
            code = frame.f_code
            state.waiting.append(f"task {task.name!r} waits at {code.co_filename}:{lineno} in {code.co_name}")


def _stop_the_session(item: pytest.Item, settings: Any, state: _TrioRun) -> None:
    """A Trio test that did not unwind while Trio waits: raising here would break Trio's loop for every later test,
    so stop the session as pytest-timeout's thread method does (its report, then exit 1)."""
    terminal = item.config.get_terminal_writer()
    terminal.sep("+", title="Timeout")
    terminal.line(f"{item.nodeid} did not unwind within {min(GRACE_SECS, settings.timeout)}s of its cancellation")
    for place in state.waiting:
        terminal.line(place)
    pytest_timeout.timeout_timer(item, settings)


def _timed_out(state: _TrioRun) -> Failed:
    places = "\n".join(state.waiting[-20:])
    return Failed(f"Timeout (>{state.timeout}s) from pytest-timeout: the Trio test was cancelled.\n{places}")


def trio_run(afn: Callable[[], Awaitable[object]], **kwargs: Any) -> object:
    """`trio.run` for a Trio test, inside a cancel scope that the timeout can cancel (the runner pytest-trio uses)."""
    global _active
    state = _TrioRun()

    async def main() -> object:
        with trio.CancelScope() as scope:
            state.token, state.scope = trio.lowlevel.current_trio_token(), scope
            return await afn()
        return None  # cancelled by the timeout

    _active = state
    try:
        result = trio.run(main, **kwargs)
    except BaseException as exc:
        if state.timeout is not None:
            raise _timed_out(state) from exc
        raise
    finally:
        _active = None
    if state.timeout is not None:
        raise _timed_out(state)
    return result


def _runner(item: pytest.Item) -> object:
    """The runner pytest-trio will use for `item` (the first `trio` marker naming one), or None."""
    return next((m.kwargs["run"] for m in item.iter_markers("trio") if m.kwargs.get("run") is not None), None)


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests (trio_mode)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every Trio test with `trio_run`, unless it names a runner of its own (trio_mode's marker says trio.run)."""
    for item in items:
        if any(True for _ in item.iter_markers("trio")) and _runner(item) in (None, trio.run):
            item.add_marker(pytest.mark.trio(run=trio_run), append=False)


def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """The signal method's timer, made safe for Trio tests (see the module's docstring)."""
    if settings.method != "signal" or _runner(item) is not trio_run:
        return None  # pytest-timeout's own timer

    def cancel_test(state: _TrioRun) -> None:  # runs inside Trio's loop
        _note_waiting_tasks(state)
        assert state.scope is not None
        state.scope.cancel()

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        state = _active
        if state is not None and state.timeout is not None and frame is not None and _in_machinery(frame):
            _stop_the_session(item, settings, state)  # cancelled, yet still waiting inside Trio (a shielded wait)
            return
        if state is None or state.token is None or state.timeout is not None:
            # Not inside the test's Trio run (a sync fixture), or busy in its own code after the cancellation (a
            # blocking call, a loop without a checkpoint): raise there, as pytest-timeout does.
            pytest_timeout.timeout_sigalrm(item, settings)
            return
        state.timeout = settings.timeout
        signal.setitimer(signal.ITIMER_REAL, min(GRACE_SECS, settings.timeout))
        state.token.run_sync_soon(cancel_test, state)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout's cancel hook calls it
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True
