"""`python -m bench soak`'s verdict: growth is a trend, not one noisy minute."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bench.soak import _verdict


def _minute(n: int, rss: float, wakeup: float) -> dict[str, Any]:
    return {"minute": n, "fills": 3, "venue_rejections": {}, "equity": "1000", "rss_mb": rss, "wakeup_p50_ms": wakeup}


def test_one_busy_minute_is_not_growth_but_a_steady_climb_is() -> None:
    flat = [_minute(n, 100.0, 0.07) for n in range(1, 61)]
    flat[30]["wakeup_p50_ms"] = 0.1  # the machine was busy for a minute
    verdict = _verdict(flat, Decimal(1000), Decimal(100))
    assert verdict["wakeup_growth_after_5_min"] == 0
    assert verdict["wakeup_peak_after_5_min"] > 0.4  # still shown
    assert verdict["fills_every_minute_after_the_first"]
    climbing = [_minute(n, 100.0 + 0.5 * n, 0.07) for n in range(1, 61)]  # +0.5 MB a minute
    verdict = _verdict(climbing, Decimal(1000), Decimal(100))
    assert verdict["rss_growth_after_5_min"] > 0.2
