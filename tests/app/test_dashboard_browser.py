"""The dashboard in a real headless Chromium (from the system packages), driven over the Chrome DevTools protocol
with trio-websocket: the page loads against a running engine (paper, sim venue), updates when a fill happens, and
its stop button halts trading with the admin token and is refused without it.

CI installs Chromium (`.ci/run`); locally the test is skipped when no `chromium` is on the PATH. Set
`WEB_SCREENSHOT_PATH=docs/dashboard.png` to refresh the README's screenshot."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.engine.test_app import TOKEN, running, settings, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on the PATH (CI installs it: apt-get install -y chromium)"
)


class Page:
    """One browser tab over CDP: commands answered by id, events ignored."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, method: str, **params: object) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_message(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def eval(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_until(self, expression: str) -> Any:
        """Poll `expression` in the page (the page's own state, no event to wait on) until it is truthy."""
        with trio.fail_after(20):
            while not (value := await self.eval(expression)):  # noqa: ASYNC110
                await trio.sleep(0.1)
        return value


@asynccontextmanager
async def open_chromium(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "about:blank",
    ]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            partial(trio.run_process, args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        )
        try:
            port = await _devtools_port(process.stderr)
            nursery.start_soon(_drain, process.stderr)
            async with httpx.AsyncClient() as http:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with open_websocket_url(page_url, max_message_size=64 * 1024 * 1024) as ws:
                yield Page(ws)
        finally:
            process.terminate()


async def _devtools_port(stderr: trio.abc.ReceiveStream) -> int:
    seen = b""
    with trio.fail_after(20):
        while not (match := re.search(rb"DevTools listening on ws://[^:]+:(\d+)/", seen)):
            chunk = await stderr.receive_some()
            if not chunk:
                raise AssertionError(f"chromium exited: {seen.decode(errors='replace')[-2000:]}")
            seen += chunk
    return int(match.group(1))


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


@pytest.mark.timeout(120)  # engine and browser: ~10 s, more under load
async def test_the_page_updates_live_and_the_stop_button_needs_the_token(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as run, open_chromium(tmp_path) as page:
        execution = run.engine.execution  # type: ignore[attr-defined]
        await page.send(
            "Emulation.setDeviceMetricsOverride", width=1400, height=1100, deviceScaleFactor=1, mobile=False
        )
        await page.send("Page.enable")
        await page.send("Page.navigate", url=f"{run.http.base_url}/")
        assert await page.wait_until("document.body && document.body.dataset.state") == "ACTIVE"
        await page.eval("window.loaded = true")  # gone if the page reloads

        # a fill happens: the page shows it without a reload
        shown = int(await page.eval("document.body.dataset.fills"))
        await wait_for(lambda: execution.statistics().orders.fills > shown)
        await page.wait_until(f"Number(document.body.dataset.fills) > {shown}")
        assert await page.eval("window.loaded") is True
        market = await page.eval("document.querySelector('#fills tbody tr td:nth-child(2)').textContent")
        assert market
        assert not market.isdigit()  # the market's name, not its token id
        assert await page.eval("document.querySelector('#equity_chart svg') !== null")

        screenshot = os.environ.get("WEB_SCREENSHOT_PATH")
        if screenshot:  # with some history on the chart
            await wait_for(lambda: execution.statistics().orders.fills > shown + 12)
            await trio.sleep(3)
            shot = await page.send("Page.captureScreenshot", format="png")
            await trio.Path(screenshot).write_bytes(base64.b64decode(shot["data"]))

        # the stop button without the token: refused, trading goes on
        await page.eval("window.confirm = () => true")
        await page.eval("document.getElementById('stop').click()")
        assert "refused (401)" in await page.wait_until("document.getElementById('msg').textContent")
        assert str(execution.risk.state) == "ACTIVE"

        # with the token: halted, and the page says so and why
        await page.eval(
            f"document.getElementById('msg').textContent = ''; document.getElementById('token').value = {TOKEN!r}"
        )
        await page.eval("document.getElementById('stop').click()")
        assert "done" in await page.wait_until("document.getElementById('msg').textContent")
        assert str(execution.risk.state) == "HALTED"
        await page.wait_until("document.body.dataset.state === 'HALTED'")
        assert "by http" in await page.eval("document.getElementById('halt').textContent")
