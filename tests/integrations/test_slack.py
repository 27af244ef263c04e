"""Slack alerts against a real local webhook server (a socket on 127.0.0.1:0) that fails on demand."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

import h11
import pytest
import trio

from trader.config import Secret
from trader.domain.enums import Liquidity
from trader.domain.events import OrderCanceled, OrderFilled
from trader.domain.numbers import Side
from trader.domain.risk import DailyLossBreached, RiskStateChanged, TradingState
from trader.integrations.bus import EmergencyStop
from trader.integrations.sinks import SinkSettings
from trader.integrations.slack import (
    Alert,
    AlertKind,
    DailySummary,
    DisconnectStorm,
    DisconnectStormDetector,
    SlackSettings,
    alert_for,
    open_slack_notifier,
)

WEBHOOK_PATH = "/services/T000/B000/s3cr3t-token"


@dataclass
class Webhook:
    """A tiny HTTP/1.1 server: answers POSTs with `status` (or closes the socket when `status` is 0)."""

    status: int = 200
    messages: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    port: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    body = b""
                    while not isinstance(event, h11.EndOfMessage):
                        event = conn.next_event()
                        if event is h11.NEED_DATA:
                            conn.receive_data(await stream.receive_some(65536))
                        elif isinstance(event, h11.Data):
                            body += event.data
                    self.statuses.append(self.status)
                    if self.status == 200:
                        self.messages.append(json.loads(body)["text"])
                    self.changed.set()
                    self.changed = trio.Event()
                    if self.status == 0:
                        return  # drop the connection: a network failure
                    reply = b"ok" if self.status == 200 else b"no"
                    headers = [("content-length", str(len(reply)))]
                    await stream.send_all(conn.send(h11.Response(status_code=self.status, headers=headers)) or b"")
                    await stream.send_all(conn.send(h11.Data(data=reply)) or b"")
                    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                    conn.start_next_cycle()
                    continue
                return

    async def wait_messages(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.messages) < count:
                await self.changed.wait()

    async def wait_requests(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.statuses) < count:
                await self.changed.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"


@pytest.fixture
async def webhook(nursery: trio.Nursery) -> Webhook:
    server = Webhook()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    server.port = listeners[0].socket.getsockname()[1]
    await nursery.start(trio.serve_listeners, server.handle, listeners)
    return server


def _fill(i: int = 1) -> OrderFilled:
    return OrderFilled(
        client_order_id=f"c-{i}",
        trade_id=f"t-{i}",
        token_id="111",
        side=Side.BUY,
        price=Decimal("0.47"),
        size=Decimal("10.5"),
        liquidity=Liquidity.TAKER,
        ts=1.0,
        fee=Decimal("0.01"),
    )


def _settings(webhook: Webhook, **changes: object) -> SlackSettings:
    values: dict[str, object] = {"webhook_url": Secret(webhook.url), "label": "paper", "min_interval_secs": 0.05}
    values.update(changes)
    return SlackSettings(**values)  # type: ignore[arg-type]


def test_alerts_say_what_happened_with_exact_numbers() -> None:
    fill = alert_for(_fill())
    assert fill is not None
    assert (fill.kind, fill.key) == (AlertKind.FILL, "fill:t-1")
    assert fill.text == "Fill: BUY 10.5 @ 0.47 of token 111 (order c-1, TAKER, fee 0.01)"
    assert alert_for(_fill(), fills=False) is None
    assert alert_for(OrderCanceled(client_order_id="c", ts=1.0)) is None
    breach = alert_for(DailyLossBreached(day=dt.date(2026, 5, 1), pnl=Decimal("-50.25"), limit=Decimal(50), ts=1.0))
    assert breach is not None
    assert "PnL -50.25 (limit 50)" in breach.text
    halted = alert_for(RiskStateChanged(previous=TradingState.ACTIVE, state=TradingState.HALTED, reason="X", ts=1.0))
    resumed = alert_for(RiskStateChanged(previous=TradingState.HALTED, state=TradingState.ACTIVE, reason="Y", ts=1.0))
    assert halted is not None
    assert resumed is not None
    assert ("HALTED" in halted.text, resumed.text) == (True, "Trading resumed (HALTED -> ACTIVE): Y")
    stop = alert_for(EmergencyStop(reason="OPERATOR", source="http", orders_cancelled=4, ts=1.0))
    assert stop is not None
    assert (stop.kind, "4 order(s) cancelled" in stop.text) == (AlertKind.EMERGENCY_STOP, True)
    storm = alert_for(DisconnectStorm(source="market_ws", disconnects=6, window_secs=60, ts=1.0))
    assert storm is not None
    assert storm.text.endswith("6 disconnects in 60s")
    summary = alert_for(
        DailySummary(
            day=dt.date(2026, 5, 1),
            realized_pnl=Decimal("12.5"),
            unrealized_pnl=Decimal("-1"),
            fees=Decimal("0.3"),
            fills=7,
            orders=9,
            ts=1.0,
        )
    )
    assert summary is not None
    assert summary.text == "Daily summary 2026-05-01: realized 12.5, unrealized -1, fees 0.3; 7 fill(s), 9 order(s)"


def test_a_disconnect_storm_is_detected_once_per_storm() -> None:
    detector = DisconnectStormDetector("market_ws", threshold=3, window_secs=10)
    assert [detector.record(t, ts=100 + t) for t in (0, 5, 16, 20)] == [None, None, None, None]  # never 3 in 10 s
    storm = detector.record(21, ts=121)
    assert storm == DisconnectStorm(source="market_ws", disconnects=3, window_secs=10, ts=121)
    assert detector.record(22, ts=122) is None  # a new storm needs 3 more
    with pytest.raises(ValueError, match="threshold"):
        DisconnectStormDetector("x", threshold=0)


def test_settings_are_checked_and_the_webhook_stays_secret() -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        SlackSettings(webhook_url=Secret("hooks.slack.com/x"))
    with pytest.raises(ValueError, match="timeout_secs"):
        SlackSettings(webhook_url=Secret("https://x"), timeout_secs=0)
    with pytest.raises(ValueError, match="dedupe_window_secs"):
        SlackSettings(webhook_url=Secret("https://x"), dedupe_window_secs=-1)
    assert "s3cr3t" not in repr(SlackSettings(webhook_url=Secret("https://x" + WEBHOOK_PATH)))


async def test_alerts_are_posted_deduplicated_and_coalesced(webhook: Webhook) -> None:
    async with open_slack_notifier(_settings(webhook, min_interval_secs=0.3)) as slack:
        assert slack.notify(_fill(1)) is True
        await webhook.wait_messages(1)
        assert slack.notify(_fill(1)) is False  # the same fill again: suppressed
        assert slack.notify(OrderCanceled(client_order_id="c", ts=1.0)) is False  # not alert-worthy
        for i in range(2, 5):  # queue up while the rate limit holds the writer: one message
            slack.notify(_fill(i))
        await webhook.wait_messages(2)
    stats = slack.statistics()  # after the exit: the writer has seen Slack's answers
    assert webhook.messages[0] == "*paper* Fill: BUY 10.5 @ 0.47 of token 111 (order c-1, TAKER, fee 0.01)"
    assert webhook.messages[1].startswith("*paper* (3 alerts)\nFill: BUY")
    assert webhook.messages[1].count("\n") == 3
    assert (stats.notified, stats.suppressed, stats.posts, stats.rejected) == (4, 1, 2, 0)


async def test_a_failing_webhook_is_retried_with_backoff_and_gets_a_digest(webhook: Webhook) -> None:
    webhook.status = 500
    sink = SinkSettings(capacity=10, max_batch=1, keep_last=2, retry_initial_secs=0.05, retry_max_secs=0.1)
    async with open_slack_notifier(_settings(webhook), sink) as slack:
        for i in range(3):
            slack.notify(_fill(i))
        with trio.fail_after(10):
            await slack.flush()
        webhook.status = 0  # now the connection drops
        await webhook.wait_requests(4)
        webhook.status = 200
        await webhook.wait_messages(1)
    stats = slack.statistics()
    assert webhook.messages == [
        "*paper* 2 alert(s) could not be delivered while Slack was unreachable:\n"
        "Fill: BUY 10.5 @ 0.47 of token 111 (order c-1, TAKER, fee 0.01)\n"
        "Fill: BUY 10.5 @ 0.47 of token 111 (order c-2, TAKER, fee 0.01)"
    ]
    assert (stats.sink.undelivered, stats.sink.recovered, stats.sink.outages) == (3, 2, 1)
    assert stats.sink.failures >= 3
    assert stats.sink.available
    assert stats.sink.last_error is not None
    assert "s3cr3t" not in stats.sink.last_error


async def test_a_refused_message_is_counted_not_retried_and_a_full_queue_drops(webhook: Webhook) -> None:
    webhook.status = 404
    sink = SinkSettings(capacity=2, max_batch=1)
    with trio.move_on_after(0.5) as scope:  # then leave without waiting out the rate limit (exit would drain)
        async with open_slack_notifier(_settings(webhook, min_interval_secs=5), sink) as slack:
            accepted = [slack.notify(Alert(kind=AlertKind.RISK, key=f"k{i}", text=f"a{i}", ts=1.0)) for i in range(6)]
            await webhook.wait_requests(1)
            await trio.sleep(0.1)
            stats = slack.statistics()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert accepted.count(False) == stats.sink.dropped >= 3
    assert (stats.rejected, stats.posts, stats.sink.available) == (1, 0, True)
