"""The one place that knows about trio-asyncio: run asyncio libraries (asyncpg) from Trio.

    async with open_asyncio_bridge() as bridge:
        conn = await bridge.run(asyncpg.connect, dsn)
        value = await bridge.run(conn.fetchval, "SELECT 1")

`bridge.run(fn, *args)` calls `fn(*args)` *inside* an asyncio task on a trio-asyncio loop that runs on the current
Trio run, and awaits its result. Cancellation crosses the bridge: cancelling the Trio caller cancels the asyncio
task (and asyncpg then cancels the server-side query); a shielded Trio scope lets it finish.

The bridge holds its loop explicitly, so any Trio task may call it (not only the ones started inside
`open_asyncio_bridge`). Objects created through a bridge (connections) belong to its loop: use them only through
that bridge, and close them before it closes.

trio-asyncio patches asyncio's event-loop policy, which Python deprecates (3.14) and plans to remove (3.16). This
module is the only importer of trio_asyncio, so the bridge can be swapped (e.g. for a sync driver in a thread)
without touching its users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import trio_asyncio

from trader.infra.groups import collapse_group

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["AsyncioBridge", "open_asyncio_bridge"]


class AsyncioBridge:
    """Runs asyncio coroutine functions on one trio-asyncio loop. Create it with `open_asyncio_bridge()`."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._calls = 0

    async def run(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`await fn(*args, **kwargs)` in an asyncio task; cancellation of the caller cancels it."""
        self._calls += 1
        result: T = await trio_asyncio.aio_as_trio(fn, loop=self._loop)(*args, **kwargs)
        return result

    @property
    def calls(self) -> int:
        """How many calls went through this bridge (for statistics)."""
        return self._calls


@asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """Open an asyncio loop on the running Trio loop; closing it cancels what still runs on it."""
    try:
        async with trio_asyncio.open_loop() as loop:
            yield AsyncioBridge(loop)
    except BaseExceptionGroup as group:
        # The loop's nurseries wrap what the caller's block raised; give the caller its own exception back.
        raise collapse_group(group) from None
