"""The simulator's cost follows tasks and agents, never virtual time: idle stretches are free.

Each reproducer here used to run for seconds or forever (periodic checks ticked through idle
virtual time, agents were registered in quadratic time); each now has a tight time limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.sim.simulate import simulate
from swarmbalancer.workload import parse_workload


def _simulate(agents: list[dict[str, Any]], tasks: dict[str, Any], **config: Any) -> dict[str, Any]:
    workload = parse_workload({"seed": 1, "agents": agents, "tasks": tasks}, Path("."))
    return simulate(workload, workload.balancer_config().updated(config))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("work", [1e7, 1e8, 1e9])
def test_one_huge_task_costs_two_events_not_its_duration(work: float) -> None:
    report = _simulate(
        [{"id": "a", "count": 2}], {"count": 1, "work": {"dist": "constant", "value": work}}
    )
    assert report["completed"] == 1
    assert report["makespan_s"] == pytest.approx(work)


@pytest.mark.timeout(10)
def test_sparse_arrivals_cost_nothing_between_them() -> None:
    report = _simulate(
        [{"id": "a", "count": 3}],
        {
            "count": 20,
            "work": {"dist": "constant", "value": 0.1},
            "arrival": {"process": "poisson", "rate": 1e-6},
        },
    )
    assert report["completed"] == 20 and report["lost"] == 0


@pytest.mark.timeout(10)
def test_an_agent_joining_far_in_the_future_does_not_tick_until_then() -> None:
    report = _simulate(
        [{"id": "a"}, {"id": "late", "join": 1e9}],
        {"count": 50, "work": {"dist": "constant", "value": 0.01}},
    )
    assert report["completed"] == 50 and report["lost"] == 0


@pytest.mark.timeout(10)
def test_tasks_arriving_after_every_agent_left_fail_after_the_park_timeout() -> None:
    report = _simulate(
        [{"id": "a", "leave": 1.0}],
        {
            "count": 10,
            "work": {"dist": "constant", "value": 0.01},
            "arrival": {"process": "poisson", "rate": 5},
        },
        parkTimeout=30,
    )
    assert report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["failed"] == 10
    assert report["failed"] >= 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize("agents", [10_000, 50_000])
def test_many_agents_with_few_tasks_simulate_in_linear_time(agents: int) -> None:
    report = _simulate(
        [{"id": "a", "count": agents}], {"count": 3, "work": {"dist": "constant", "value": 1.0}}
    )
    assert report["completed"] == 3
