"""Slack alerts through an incoming webhook: fills, risk breaches, emergency stops, disconnect storms, a daily summary.

    async with open_slack_notifier(SlackSettings(webhook_url=Secret(url))) as slack:
        order_manager.add_listener(slack.notify)        # fills
        slack.notify(EmergencyStop(...))                # anything `alert_for` knows

The notifier never blocks trading: `notify` turns an engine event into an `Alert` (or ignores it), drops a repeat
of the same alert within `dedupe_window_secs` (counted as `suppressed`), and offers it to a lossy sink channel
(a full channel drops and counts). The writer task posts at most one message per `min_interval_secs`, coalescing
alerts that queued up meanwhile into one message, so a burst cannot trip Slack's rate limit.

A failing webhook (a network error, a timeout, 429, 5xx) puts the sink down: its alerts are counted as undelivered
and the last `keep_last` kept; it is retried with backoff, and the first success posts one digest of what was kept.
A 4xx other than 429 (a revoked webhook, a payload Slack refuses) will not get better by retrying: that message is
counted in `rejected` and dropped. The webhook URL is a secret: it never appears in logs, errors or statistics.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx
import structlog
import trio

from trader.config import Secret, check_positive_secs
from trader.domain.events import OrderFilled
from trader.domain.risk import DailyLossBreached, RiskStateChanged, TradingState
from trader.integrations.bus.base import EmergencyStop
from trader.integrations.sinks import DeliveryError, SinkRunner, SinkSettings, SinkStatistics, open_sink

log = structlog.get_logger(__name__)

__all__ = [
    "Alert",
    "AlertKind",
    "DailySummary",
    "DisconnectStorm",
    "DisconnectStormDetector",
    "SlackNotifier",
    "SlackSettings",
    "SlackSink",
    "SlackStatistics",
    "alert_for",
    "open_slack_notifier",
]


class AlertKind(enum.StrEnum):
    FILL = "FILL"
    RISK = "RISK"
    EMERGENCY_STOP = "EMERGENCY_STOP"
    DISCONNECT_STORM = "DISCONNECT_STORM"
    DAILY_SUMMARY = "DAILY_SUMMARY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    kind: AlertKind
    key: str  # alerts with the same key within the dedupe window are sent once
    text: str  # Slack mrkdwn
    ts: float  # wall clock, epoch seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectStorm:
    """Many disconnects in a short window (market or user channel): the feed is unhealthy."""

    source: str
    disconnects: int
    window_secs: float
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DailySummary:
    day: dt.date
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    fills: int
    orders: int
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings:
    """The Slack notifier (`TRADER_SLACK__*`; the webhook also as `TRADER_SLACK_WEBHOOK_URL`).

    - `webhook_url`: the incoming-webhook URL (a secret).
    - `label` ("trader"): the first word of every message (say which engine, e.g. "paper-eu").
    - `min_interval_secs` (1.0): at most one post this often; alerts queued meanwhile are coalesced.
    - `dedupe_window_secs` (300.0): the same alert (same key) is sent once within this window.
    - `timeout_secs` (5.0): one POST.
    - `fills` (True): alert on every fill (turn off for high-frequency strategies).
    """

    webhook_url: Secret
    label: str = "trader"
    min_interval_secs: float = 1.0
    dedupe_window_secs: float = 300.0
    timeout_secs: float = 5.0
    fills: bool = True

    def __post_init__(self) -> None:
        if not self.webhook_url.get().startswith(("https://", "http://")):
            raise ValueError("webhook_url: expected an http(s) URL")
        if self.min_interval_secs < 0 or self.dedupe_window_secs < 0:
            raise ValueError("min_interval_secs and dedupe_window_secs: must be >= 0")
        check_positive_secs(self, "timeout_secs")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackStatistics:
    notified: int  # alerts accepted for sending
    suppressed: int  # repeats within the dedupe window
    posts: int  # messages Slack accepted
    rejected: int  # messages Slack refused for good (4xx other than 429)
    sink: SinkStatistics


def alert_for(obj: object, *, fills: bool = True) -> Alert | None:
    """The alert for an engine event, or None when it is not worth one."""
    if isinstance(obj, Alert):
        return obj
    if isinstance(obj, OrderFilled):
        if not fills:
            return None
        text = (
            f"Fill: {obj.side.value} {obj.size} @ {obj.price} of token {obj.token_id} "
            f"(order {obj.client_order_id}, {obj.liquidity.value}, fee {obj.fee})"
        )
        return Alert(kind=AlertKind.FILL, key=f"fill:{obj.key}", text=text, ts=obj.ts)
    if isinstance(obj, DailyLossBreached):
        text = f":rotating_light: Daily loss limit breached on {obj.day}: PnL {obj.pnl} (limit {obj.limit})"
        return Alert(kind=AlertKind.RISK, key=f"daily_loss:{obj.day}", text=text, ts=obj.ts)
    if isinstance(obj, RiskStateChanged):
        if obj.state is TradingState.ACTIVE:
            text = f"Trading resumed ({obj.previous.value} -> ACTIVE): {obj.reason}"
        else:
            text = f":warning: Trading {obj.state.value} (was {obj.previous.value}): {obj.reason}"
        return Alert(kind=AlertKind.RISK, key=f"risk_state:{obj.state.value}:{obj.reason}", text=text, ts=obj.ts)
    if isinstance(obj, EmergencyStop):
        text = (
            f":octagonal_sign: EMERGENCY STOP ({obj.source}): {obj.reason}. "
            f"{obj.orders_cancelled} order(s) cancelled; nothing new is sent until an operator resumes."
        )
        return Alert(kind=AlertKind.EMERGENCY_STOP, key=f"emergency_stop:{obj.reason}", text=text, ts=obj.ts)
    if isinstance(obj, DisconnectStorm):
        text = f":zap: Disconnect storm on {obj.source}: {obj.disconnects} disconnects in {obj.window_secs:g}s"
        return Alert(kind=AlertKind.DISCONNECT_STORM, key=f"storm:{obj.source}", text=text, ts=obj.ts)
    if isinstance(obj, DailySummary):
        text = (
            f"Daily summary {obj.day}: realized {obj.realized_pnl}, unrealized {obj.unrealized_pnl}, "
            f"fees {obj.fees}; {obj.fills} fill(s), {obj.orders} order(s)"
        )
        return Alert(kind=AlertKind.DAILY_SUMMARY, key=f"summary:{obj.day}", text=text, ts=obj.ts)
    return None


class DisconnectStormDetector:
    """`record(now)` on every disconnect; answers a `DisconnectStorm` when `threshold` fell within `window_secs`.

    Pure (the caller passes the Trio clock's `now` and the wall clock's `ts`), so it is tested without sleeping.
    """

    def __init__(self, source: str, *, threshold: int = 5, window_secs: float = 60.0) -> None:
        if threshold < 1 or not window_secs > 0:
            raise ValueError("threshold must be >= 1 and window_secs > 0")
        self.source = source
        self.threshold = threshold
        self.window_secs = window_secs
        self._times: deque[float] = deque()

    def record(self, now: float, *, ts: float) -> DisconnectStorm | None:
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_secs:
            self._times.popleft()
        if len(self._times) >= self.threshold:
            count = len(self._times)
            self._times.clear()  # one alert per storm; a new storm needs `threshold` more
            return DisconnectStorm(source=self.source, disconnects=count, window_secs=self.window_secs, ts=ts)
        return None


class SlackSink:
    """Posts alerts to the webhook, at most one message per `min_interval_secs`."""

    def __init__(self, settings: SlackSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._next_post_at = -float("inf")
        self.posts = 0
        self.rejected = 0

    async def _post(self, text: str) -> None:
        await trio.sleep_until(self._next_post_at)
        self._next_post_at = trio.current_time() + self._settings.min_interval_secs
        try:
            with trio.fail_after(self._settings.timeout_secs):
                response = await self._client.post(self._settings.webhook_url.get(), json={"text": text})
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            # No str(exc): httpx may put the URL (the secret) in its messages.
            raise DeliveryError(f"slack webhook: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(f"slack webhook: HTTP {response.status_code}")
        if response.status_code >= 400:
            self.rejected += 1
            log.error("slack_message_rejected", status=response.status_code, body=response.text[:200])
            return
        self.posts += 1

    def _message(self, alerts: Sequence[Alert]) -> str:
        lines = [alert.text for alert in alerts]
        head = f"*{self._settings.label}*"
        return f"{head} {lines[0]}" if len(lines) == 1 else "\n".join([f"{head} ({len(lines)} alerts)", *lines])

    async def deliver(self, batch: Sequence[Alert]) -> None:
        await self._post(self._message(batch))

    async def recover(self, kept: Sequence[Alert]) -> None:
        """Post one digest of the alerts kept while the webhook was failing (nothing to probe with otherwise)."""
        if not kept:
            return
        head = f"*{self._settings.label}* {len(kept)} alert(s) could not be delivered while Slack was unreachable:"
        await self._post("\n".join([head, *(alert.text for alert in kept)]))


class SlackNotifier:
    """Engine events in, alerts out (see the module docstring). Open it with `open_slack_notifier`."""

    def __init__(
        self,
        runner: SinkRunner[Alert],
        sink: SlackSink,
        settings: SlackSettings,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self._sink = sink
        self._clock = clock
        self._sent_at: dict[str, float] = {}
        self._notified = 0
        self._suppressed = 0

    def notify(self, obj: object) -> bool:
        """Alert on `obj` if it deserves one. Never blocks; False when ignored, suppressed or dropped."""
        alert = alert_for(obj, fills=self.settings.fills)
        if alert is None:
            return False
        now = self._clock()
        last = self._sent_at.get(alert.key)
        if last is not None and now - last < self.settings.dedupe_window_secs:
            self._suppressed += 1
            return False
        if not self.runner.offer(alert):
            return False
        self._sent_at[alert.key] = now
        if len(self._sent_at) > 10_000:  # forget keys whose window has passed
            horizon = now - self.settings.dedupe_window_secs
            self._sent_at = {k: t for k, t in self._sent_at.items() if t >= horizon}
        self._notified += 1
        return True

    __call__ = notify

    async def flush(self) -> None:
        await self.runner.flush()

    def statistics(self) -> SlackStatistics:
        return SlackStatistics(
            notified=self._notified,
            suppressed=self._suppressed,
            posts=self._sink.posts,
            rejected=self._sink.rejected,
            sink=self.runner.statistics(),
        )


@asynccontextmanager
async def open_slack_notifier(
    settings: SlackSettings,
    sink_settings: SinkSettings | None = None,
    *,
    client: httpx.AsyncClient | None = None,
) -> AsyncIterator[SlackNotifier]:
    """Run the notifier for the block; a normal exit sends what is queued (bound that with a timeout)."""
    sink_settings = sink_settings or SinkSettings(capacity=100, max_batch=20, keep_last=50)
    async with client or httpx.AsyncClient(trust_env=False) as http:
        sink = SlackSink(settings, http)
        async with open_sink("slack", sink, sink_settings) as runner:
            yield SlackNotifier(runner, sink, settings)
