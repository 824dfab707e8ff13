"""EDF admission control: Liu & Layland, density and the exact processor-demand test."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.errors import TaskRejected
from swarmbalancer.policies.admission import (
    PeriodicTask,
    admit,
    demand_bound,
    processor_demand_test,
)


def edf_simulation_meets_all_deadlines(tasks: list[tuple[int, int, int]]) -> bool:
    """Brute force: preemptive EDF in unit steps over one hyperperiod from a synchronous release.

    With integer parameters every scheduling decision happens at an integer time, and with D <= T
    every job released before the hyperperiod H is due by H; if all of them finish, the state at H
    equals the state at 0 and the schedule repeats, so [0, H] decides feasibility.
    """
    hyper = math.lcm(*(period for _, period, _ in tasks))
    jobs: list[list[int]] = []  # [absolute deadline, remaining execution]
    for now in range(hyper):
        for execution, period, deadline in tasks:
            if now % period == 0 and execution:
                jobs.append([now + deadline, execution])
        if jobs:
            job = min(jobs)
            job[1] -= 1
            if job[1] == 0:
                jobs.remove(job)
        if any(due <= now + 1 for due, _ in jobs):
            return False
    return not jobs


def periodic(specs: list[tuple[int, int, int]]) -> list[PeriodicTask]:
    return [PeriodicTask(float(c), float(t), float(d)) for c, t, d in specs]


@st.composite
def constrained_sets(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """Small integer task sets (C, T, D) with D <= T and at least one D < T."""
    n = draw(st.integers(1, 4))
    out = []
    for _ in range(n):
        period = draw(st.integers(2, 10))
        deadline = draw(st.integers(1, period))
        execution = draw(st.integers(0, deadline))
        out.append((execution, period, deadline))
    if all(d == t for _, t, d in out):
        c, t, _ = out[0]
        out[0] = (min(c, t - 1), t, t - 1)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(1, 12)), min_size=1, max_size=5))
def test_implicit_deadline_sets_are_accepted_exactly_when_utilization_is_at_most_one(
    specs: list[tuple[int, int]],
) -> None:
    tasks = [PeriodicTask(float(c), float(t)) for c, t in specs]
    verdict = admit(tasks[:-1], tasks[-1])
    exact_u = sum(Fraction(c, t) for c, t in specs)
    assert verdict.test == "liu-layland"
    assert verdict.accepted == (exact_u <= 1)
    assert verdict.utilization == pytest.approx(float(exact_u))


@settings(max_examples=200, deadline=None)
@given(constrained_sets())
def test_constrained_deadline_verdict_matches_a_brute_force_edf_simulation(
    specs: list[tuple[int, int, int]],
) -> None:
    tasks = periodic(specs)
    verdict = admit(tasks[:-1], tasks[-1])
    assert verdict.test in ("density", "demand-bound")
    assert verdict.accepted == edf_simulation_meets_all_deadlines(specs)
    if not verdict.accepted:
        assert "not schedulable under EDF" in verdict.reason


@settings(max_examples=100, deadline=None)
@given(constrained_sets())
def test_processor_demand_test_alone_matches_the_simulation(
    specs: list[tuple[int, int, int]],
) -> None:
    assert processor_demand_test(periodic(specs)).schedulable == (
        edf_simulation_meets_all_deadlines(specs)
    )


def test_a_set_over_full_utilization_is_rejected_with_a_sentence_naming_the_bound() -> None:
    existing = [PeriodicTask(3, 5), PeriodicTask(2, 10)]
    verdict = admit(existing, PeriodicTask(3.2, 10))
    assert not verdict.accepted
    assert verdict.test == "liu-layland"
    assert verdict.utilization == pytest.approx(1.12)
    assert verdict.reason.startswith("utilization 1.12 > 1.0: the task set is not schedulable")
    assert "Liu & Layland" in verdict.reason


def test_full_utilization_is_accepted_despite_rounding() -> None:
    verdict = admit([PeriodicTask(0.1, 1.0), PeriodicTask(0.2, 1.0)], PeriodicTask(0.7, 1.0))
    assert verdict.accepted and verdict.test == "liu-layland"


def test_deadlines_longer_than_periods_use_the_utilization_bound() -> None:
    verdict = admit([PeriodicTask(1, 2, deadline=5)], PeriodicTask(1, 2, deadline=3))
    assert verdict.accepted and verdict.test == "liu-layland"


def test_low_density_sets_are_accepted_by_the_density_test() -> None:
    verdict = admit([PeriodicTask(1, 10, deadline=4)], PeriodicTask(2, 10, deadline=5))
    assert verdict.accepted and verdict.test == "density"


def test_sets_failing_density_but_meeting_demand_are_accepted_by_the_demand_bound_test() -> None:
    # density 2/3 + 2/4 > 1, yet dbf(3) = 2, dbf(4) = 4, dbf(9) = 6, ...: always within capacity.
    verdict = admit([PeriodicTask(2, 6, deadline=3)], PeriodicTask(2, 8, deadline=4))
    assert verdict.accepted and verdict.test == "demand-bound"


def test_sets_whose_demand_exceeds_time_are_rejected_naming_the_interval() -> None:
    verdict = admit([PeriodicTask(2, 10, deadline=2)], PeriodicTask(2, 10, deadline=3))
    assert not verdict.accepted and verdict.test == "demand-bound"
    assert verdict.reason.startswith("processor demand 4 > 3")


def test_demand_bound_function_counts_jobs_due_by_t() -> None:
    tasks = [PeriodicTask(2, 5, deadline=3), PeriodicTask(1, 4)]
    assert demand_bound(tasks, 2.9) == 0
    assert demand_bound(tasks, 3) == 2
    assert demand_bound(tasks, 8) == 2 * 2 + 2 * 1


def test_too_many_checkpoints_are_refused_to_stay_safe() -> None:
    tasks = [PeriodicTask(0.5, 1.0, deadline=0.9), PeriodicTask(4.9, 10.0, deadline=9.5)]
    verdict = processor_demand_test(tasks, max_checkpoints=3)
    assert not verdict.schedulable
    assert "more than 3" in verdict.reason


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"execution": -1.0, "period": 1.0}, "execution"),
        ({"execution": 1.0, "period": 0.0}, "period"),
        ({"execution": 1.0, "period": 1.0, "deadline": math.nan}, "deadline"),
    ],
)
def test_invalid_periodic_tasks_are_refused_naming_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(TaskRejected, match=field):
        PeriodicTask(**kwargs)
