"""`GET /` on a running engine (paper, in-process sim, real sockets): the page, its data and its live feed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

from tests.engine.test_app import TOKEN, running, settings, wait_for
from trader.integrations.store.sqlite import open_sqlite_store


@pytest.mark.timeout(120)  # end to end: a few seconds, more under load
async def test_the_page_is_self_contained_and_its_data_names_markets(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        page = await run.http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "Emergency stop" in page.text
        # every asset is served by the engine: no script, style or image from anywhere else
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
        assert "@import" not in page.text

        await wait_for(lambda: execution.statistics().orders.fills >= 2)
        state = (await run.http.get("/dashboard/state")).json()
        assert state["state"] == "ACTIVE"
        assert state["halt"] is None
        assert state["fills_total"] >= 2
        fill = state["fills"][0]
        assert not fill["market"].isdigit()  # a question, not a 77-digit token id
        assert fill["outcome"] in {"Yes", "No"}
        assert fill["price"]
        assert fill["size"]
        assert all(not op["market"].isdigit() for op in state["opportunities"])  # neg-risk events by name too
        assert state["books"]["tokens"] == 20
        assert "<svg" in state["equity_chart"]
        assert state["money"]["equity"]
        # the operator routes still answer behind the page
        assert (await run.http.get("/health")).json() == {"status": "alive"}
        assert (await run.http.post("/")).status_code == 405
    async with open_sqlite_store(tmp_path / "trader.sqlite3") as store:
        (kept,) = await store.load_equity()  # one sample a minute: the first at the start
    assert kept.equity == kept.cash + kept.positions_value


@pytest.mark.timeout(120)
async def test_the_feed_pushes_fills_and_the_halt_reason_without_a_reload(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        async with await open_feed(str(run.http.base_url)) as feed:
            first = await feed.next_document()
            with trio.fail_after(20):
                while (await feed.next_document())["fills_total"] == first["fills_total"]:
                    pass
            stopped = await run.http.post("/emergency-stop", headers={"Authorization": f"Bearer {TOKEN}"})
            assert stopped.status_code == 200
            with trio.fail_after(10):
                while (halted := await feed.next_document())["state"] != "HALTED":
                    pass
        assert halted["halt"] == {"reason": "operator", "since": halted["halt"]["since"], "by": "http"}  # type: ignore[index]
        assert execution.statistics().orders.fills >= 1


class Feed:
    """A bare server-sent-events reader over a TCP stream (each event is one chunk of the chunked response)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def __aenter__(self) -> Feed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def next_document(self) -> dict[str, object]:
        while True:
            match = re.search(rb"data: (.*)\n\n", self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                document = json.loads(match.group(1))
                assert isinstance(document, dict)
                return document
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise AssertionError("the feed ended")
            self.buffer += chunk
            if self.buffer.startswith(b"HTTP/1.1 "):
                head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                assert b"200" in head.split(b"\r\n")[0]
                assert b"text/event-stream" in head.lower()


async def open_feed(base_url: str) -> Feed:
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    stream = await trio.open_tcp_stream(url.hostname, url.port)
    await stream.send_all(b"GET /dashboard/events HTTP/1.1\r\nHost: engine\r\nAccept: text/event-stream\r\n\r\n")
    return Feed(stream)
