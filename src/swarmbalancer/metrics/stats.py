"""Statistics the report needs: percentiles, Jain's index, variance and a bounded-memory sketch."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of sorted values, interpolating linearly between closest
    ranks as numpy does by default; None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be in [0, 100], got {q}")
    rank = (n - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def jain_index(values: Sequence[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all are equal (all zero included),
    1/n when one value holds everything; None for no values."""
    n = len(values)
    if n == 0:
        return None
    square_sum = sum(v * v for v in values)
    if square_sum == 0:
        return 1.0
    return sum(values) ** 2 / (n * square_sum)


def variance(values: Sequence[float]) -> float | None:
    """Population variance; None for no values."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / n


class QuantileSketch:
    """DDSketch (Masson, Rim & Lee, VLDB 2019): logarithmic buckets with relative accuracy
    `alpha`, so every quantile is within a factor (1 +/- alpha) of a true value at that rank while
    the lowest buckets are not collapsed. Values must be >= 0."""

    def __init__(self, alpha: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
        self.alpha = alpha
        self.gamma = (1 + alpha) / (1 - alpha)
        self._log_gamma = math.log(self.gamma)
        self.max_buckets = max_buckets
        self._buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, x: float) -> None:
        if x < 0 or x != x:
            raise ValueError(f"sketch values must be >= 0, got {x}")
        self.count += 1
        self.sum += x
        self.min = x if self.min is None else min(self.min, x)
        self.max = x if self.max is None else max(self.max, x)
        if x == 0:
            self.zeros += 1
            return
        key = math.ceil(math.log(x) / self._log_gamma)
        self._buckets[key] = self._buckets.get(key, 0) + 1
        if len(self._buckets) > self.max_buckets:
            self._collapse()

    def merge(self, other: QuantileSketch) -> None:
        if other.gamma != self.gamma:
            raise ValueError("cannot merge sketches of different accuracy")
        for key, n in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        for bound in (other.min, other.max):
            if bound is not None:
                self.min = bound if self.min is None else min(self.min, bound)
                self.max = bound if self.max is None else max(self.max, bound)
        while len(self._buckets) > self.max_buckets:
            self._collapse()

    def _collapse(self) -> None:
        """Fold the two lowest buckets into one (the low tail loses accuracy first)."""
        low = sorted(self._buckets)[:2]
        self._buckets[low[1]] += self._buckets.pop(low[0])

    def quantile(self, q: float) -> float | None:
        """Value at quantile q in [0, 1]; None when empty."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen > rank:
                value = 2 * self.gamma**key / (self.gamma + 1)
                assert self.min is not None and self.max is not None
                return min(max(value, self.min), self.max)
        return self.max


class LatencySummary:
    """One latency series: exact values up to `exact_limit` samples, then a QuantileSketch
    (1% relative error), so memory stays bounded; max and mean are always exact."""

    __slots__ = ("_count", "_max", "_sketch", "_sum", "_values", "exact_limit")

    def __init__(self, exact_limit: int = 200_000) -> None:
        self.exact_limit = exact_limit
        self._values: list[float] | None = []
        self._sketch: QuantileSketch | None = None
        # count, sum and max, kept from the switch to the sketch on (the exact list gives them)
        self._count = 0
        self._sum = 0.0
        self._max: float | None = None

    def add(self, x: float) -> None:
        values = self._values
        if values is not None:
            values.append(x)
            if len(values) > self.exact_limit:
                self._to_sketch(values)
            return
        assert self._sketch is not None
        self._count += 1
        self._sum += x
        if self._max is None or x > self._max:
            self._max = x
        self._sketch.add(max(x, 0.0))

    def _to_sketch(self, values: list[float]) -> None:
        sketch = self._sketch = QuantileSketch()
        for v in values:
            sketch.add(max(v, 0.0))
        self._count, self._sum, self._max = len(values), sum(values), max(values)
        self._values = None

    @property
    def count(self) -> int:
        return self._count if self._values is None else len(self._values)

    @property
    def exact(self) -> bool:
        return self._values is not None

    def summary(self) -> dict[str, float | None]:
        """p50, p95, p99, max and mean; all None when empty."""
        count = self.count
        if count == 0:
            return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
        if self._values is not None:
            ordered = sorted(self._values)
            p = [percentile(ordered, q) for q in (50, 95, 99)]
            top: float | None = ordered[-1]
            total = math.fsum(ordered)
        else:
            assert self._sketch is not None
            p = [self._sketch.quantile(q / 100) for q in (50, 95, 99)]
            top, total = self._max, self._sum
        return {"p50": p[0], "p95": p[1], "p99": p[2], "max": top, "mean": total / count}
