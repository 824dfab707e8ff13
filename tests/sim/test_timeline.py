"""The timeline: bounded samples on a fixed grid, loads that add up, an honest sojourn CDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.sim.simulate import simulate
from swarmbalancer.sim.timeline import LogHistogram, Timeline
from swarmbalancer.workload import Workload, generate_tasks, parse_workload


def poisson(count: int) -> Workload:
    return parse_workload(
        {
            "seed": 9,
            "agents": [{"id": "a", "count": 3, "speed": 1.0}, {"id": "b", "speed": 2.0}],
            "tasks": {
                "count": count,
                "work": {"dist": "exponential", "mean": 0.01},
                "arrival": {"process": "poisson", "rate": 400},
            },
        },
        Path("."),
    )


def test_samples_stay_bounded_on_a_doubling_grid() -> None:
    timeline = Timeline(max_samples=40, first_step=0.0001)
    report = simulate(poisson(1000), poisson(1000).balancer_config(), timeline=timeline)
    assert len(timeline.times) <= 41
    assert timeline.step > 0.0001  # it had to double to stay within 40 samples
    grid = timeline.times[:-1]
    assert grid == [pytest.approx(k * timeline.step) for k in range(len(grid))]
    assert sorted(timeline.loads) == ["a-0", "a-1", "a-2", "b"]
    for series in timeline.loads.values():
        assert len(series) == len(timeline.times)
        assert min(series) >= 0 and series[-1] == 0  # nothing is left at the end
    assert max(max(s) for s in timeline.loads.values()) > 0
    assert timeline.sojourn.total == report["completed"] + report["failed"]


def test_the_closing_sample_is_the_last_completion() -> None:
    workload = poisson(200)
    timeline = Timeline()
    report = simulate(workload, workload.balancer_config(), timeline=timeline)
    first_arrival = generate_tasks(workload)[0].arrival
    assert timeline.times[0] == 0.0
    assert timeline.times[-1] == pytest.approx(first_arrival + report["makespan_s"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-6, 1e4), min_size=1, max_size=300))
def test_the_cdf_is_within_one_bin_of_the_empirical_one(values: list[float]) -> None:
    histogram = LogHistogram()
    for value in values:
        histogram.add(value)
    edges, shares = histogram.cdf()
    assert shares == sorted(shares) and shares[-1] == 1.0
    n = len(values)
    width = 10 ** (1 / histogram.per_decade)
    for edge, share in zip(edges, shares, strict=True):
        below_lower = sum(v <= edge / width * (1 - 1e-9) for v in values) / n
        at_most = sum(v <= edge * (1 + 1e-9) for v in values) / n
        assert below_lower <= share <= at_most


def test_a_timeline_needs_room_for_two_samples() -> None:
    with pytest.raises(ValueError, match="max_samples"):
        Timeline(max_samples=1)
    with pytest.raises(ValueError, match="first_step"):
        Timeline(first_step=0)
