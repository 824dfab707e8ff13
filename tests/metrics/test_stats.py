"""Statistics: numpy-like percentiles, Jain's index bounds, and the sketch's error bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmbalancer.metrics.stats import (
    LatencySummary,
    QuantileSketch,
    jain_index,
    percentile,
    variance,
)

positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


def test_empty_inputs_give_none_not_a_made_up_number() -> None:
    assert percentile([], 50) is None
    assert jain_index([]) is None
    assert variance([]) is None
    assert QuantileSketch().quantile(0.5) is None
    assert LatencySummary().summary() == dict.fromkeys(("p50", "p95", "p99", "max", "mean"))


def test_percentile_interpolates_like_numpy_linear() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 25) == pytest.approx(1.75)
    with pytest.raises(ValueError, match="q must be"):
        percentile(values, 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_jain_index_lies_between_one_over_n_and_one(values: list[float]) -> None:
    j = jain_index(values)
    assert j is not None
    assert 1 / len(values) - 1e-9 <= j <= 1 + 1e-9


def test_jain_index_extremes() -> None:
    assert jain_index([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert variance([1.0, 3.0]) == pytest.approx(1.0)


@given(st.lists(positive, min_size=1, max_size=300), st.floats(min_value=0, max_value=1))
def test_sketch_quantile_is_within_relative_accuracy_of_the_true_value(
    values: list[float], q: float
) -> None:
    sketch = QuantileSketch(alpha=0.01)
    for v in values:
        sketch.add(v)
    ordered = sorted(values)
    true = ordered[math.floor(q * (len(values) - 1))]
    got = sketch.quantile(q)
    assert got is not None
    assert abs(got - true) <= 0.01 * true * (1 + 1e-9)


def test_sketch_merge_equals_one_sketch_of_everything() -> None:
    a, b, whole = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for i in range(1, 1000):
        (a if i % 2 else b).add(i / 10)
        whole.add(i / 10)
    a.merge(b)
    for q in (0.0, 0.5, 0.99, 1.0):
        assert a.quantile(q) == whole.quantile(q)


def test_sketch_memory_is_bounded() -> None:
    sketch = QuantileSketch(max_buckets=64)
    for i in range(1, 20_000):
        sketch.add(1.001**i)
    assert len(sketch._buckets) <= 64
    top = sketch.quantile(1.0)
    assert top == sketch.max


def test_latency_summary_switches_to_the_sketch_past_its_limit_and_keeps_exact_max() -> None:
    summary = LatencySummary(exact_limit=100)
    for i in range(1, 1001):
        summary.add(float(i))
    assert not summary.exact and summary.count == 1000
    out = summary.summary()
    assert out["max"] == 1000.0 and out["mean"] == pytest.approx(500.5)
    assert out["p50"] == pytest.approx(500.5, rel=0.02)
    assert out["p99"] == pytest.approx(990, rel=0.02)
