"""The arrival-aware makespan bound: hand-computed cases, a brute-force check and its memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.metrics.bound import MakespanBound, UpperHull


def bound_of(tasks: list[tuple[float, float]], throughput: float, fastest: float) -> float:
    b = MakespanBound()
    for arrival, work in tasks:
        b.add(arrival, work)
    return b.bound(throughput, fastest)


def brute_force(tasks: list[tuple[float, float]], throughput: float, fastest: float) -> float:
    """The definition, quadratically: per task and per arrival instant."""
    per_task = max(a + w / fastest for a, w in tasks)
    swarm = max(t + sum(w for a, w in tasks if a >= t) / throughput for t, _ in tasks)
    return max(per_task, swarm)


def test_an_empty_run_has_a_zero_bound() -> None:
    assert MakespanBound().bound(1.0, 1.0) == 0.0


def test_a_batch_at_zero_is_total_work_over_throughput_or_longest_task_on_the_fastest() -> None:
    # S = 1*2 + 4 = 6, v = 4: three tasks of 4 -> 12 / 6 = 2 beats 4 / 4 = 1
    assert bound_of([(0.0, 4.0)] * 3, 6.0, 4.0) == pytest.approx(2.0)
    # one long task: 40 / 4 = 10 beats 42 / 6 = 7
    assert bound_of([(0.0, 40.0), (0.0, 2.0)], 6.0, 4.0) == pytest.approx(10.0)


def test_poisson_like_arrivals_count_only_the_work_still_to_come() -> None:
    # S = 2, v = 1. Arrivals 0, 1, 2, 3 with work 1 each: from t=3 only 1 unit is left (3.5);
    # the last task alone needs 3 + 1 = 4; from 0 all 4 units need 4 / 2 = 2.
    tasks = [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]
    assert bound_of(tasks, 2.0, 1.0) == pytest.approx(4.0)
    # the same work batched at 0 would only need max(4 / 2, 1 / 1) = 2
    assert bound_of([(0.0, 1.0)] * 4, 2.0, 1.0) == pytest.approx(2.0)


def test_a_burst_after_a_quiet_start_is_bounded_from_its_own_arrival() -> None:
    # S = 4, v = 2: one task at 0, then 20 units at 5: 5 + 20 / 4 = 10 beats 21 / 4 and 5 + 1 / 2
    tasks = [(0.0, 1.0)] + [(5.0, 1.0)] * 20
    assert bound_of(tasks, 4.0, 2.0) == pytest.approx(10.0)


def test_a_late_long_task_is_bounded_by_its_arrival_plus_its_run_on_the_fastest_agent() -> None:
    # S = 10, v = 4: 50 small units at 0 (5 s), then a task of 8 at 9: 9 + 8 / 4 = 11
    tasks = [(0.0, 1.0)] * 50 + [(9.0, 8.0)]
    assert bound_of(tasks, 10.0, 4.0) == pytest.approx(11.0)


arrivals = st.lists(st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 20.0)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(arrivals, st.floats(0.1, 100.0), st.floats(0.1, 10.0))
def test_the_streamed_bound_equals_the_definition(
    tasks: list[tuple[float, float]], throughput: float, fastest: float
) -> None:
    tasks.sort(key=lambda aw: aw[0])
    got = bound_of(tasks, throughput, fastest)
    assert got == pytest.approx(brute_force(tasks, throughput, fastest), rel=1e-9, abs=1e-9)


points_by_x = st.lists(st.tuples(st.integers(0, 30), st.floats(-10.0, 10.0)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(points_by_x, st.floats(0, 5))
def test_the_hull_keeps_the_maximum_of_x_plus_u_y_for_every_u(
    points: list[tuple[int, float]], u: float
) -> None:
    hull = UpperHull()
    points.sort(key=lambda p: p[0])
    for x, y in points:
        hull.add(float(x), y)
    expected = max((x + u * y for x, y in points), default=float("-inf"))
    assert hull.best(u) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert len(hull) <= len(points)


def test_a_long_poisson_stream_keeps_only_a_few_points() -> None:
    rng = random.Random(7)
    b = MakespanBound()
    now = 0.0
    for _ in range(100_000):
        now += rng.expovariate(100.0)
        b.add(now, rng.expovariate(1.0))
    assert len(b) < 200  # the hulls, not the 100,000 tasks
