"""The cumulative histogram behind the feed-latency metric: counts only grow, and each sample lands in its bucket."""

from __future__ import annotations

import math

import pytest

from trader.infra.histogram import Histogram


def test_samples_land_in_cumulative_buckets_with_their_sum() -> None:
    histogram = Histogram((0.01, 0.1, 1.0))
    for value in (0.005, 0.01, 0.05, 0.5, 7.0, -0.2):  # -0.2: a clock behind the venue's counts as 0
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.buckets == ((0.01, 3), (0.1, 4), (1.0, 5), (math.inf, 6))
    assert snapshot.count == 6
    assert snapshot.total == pytest.approx(0.005 + 0.01 + 0.05 + 0.5 + 7.0)
    histogram.observe(0.02)
    assert histogram.snapshot().buckets == ((0.01, 3), (0.1, 5), (1.0, 6), (math.inf, 7))  # never a sliding window


@pytest.mark.parametrize("bounds", [(), (1.0, 0.5), (0.1, 0.1)])
def test_bounds_must_ascend_strictly(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        Histogram(bounds)
