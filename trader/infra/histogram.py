"""A cumulative histogram of non-negative samples (seconds, usually), for Prometheus to compute percentiles from.

The engine's services count; the metrics collector turns the counts into a histogram family at scrape time
(`trader.app.metrics`). Bucket counts only ever grow, as Prometheus requires: never a sliding window, and never a
precomputed percentile (a p99 cannot be aggregated over instances or time; a histogram can).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Histogram", "HistogramSnapshot"]


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    buckets: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), ascending; +Inf last
    total: float  # the sum of the samples
    count: int


class Histogram:
    """Counts samples into fixed buckets (upper bounds, ascending). A negative sample counts as 0."""

    __slots__ = ("_bounds", "_count", "_counts", "_total")

    def __init__(self, bounds: Sequence[float]) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError("bounds must be a non-empty, strictly ascending sequence")
        self._bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._total = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._total += value
        self._count += 1

    def snapshot(self) -> HistogramSnapshot:
        cumulative, buckets = 0, []
        for bound, count in zip((*self._bounds, float("inf")), self._counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramSnapshot(buckets=tuple(buckets), total=self._total, count=self._count)
