"""Documented limits (docs/workloads.md, "Limits"): values beyond them are refused naming the
field, values at them are accepted, and within them every sample is a finite number."""

from __future__ import annotations

import copy
import math
import random
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.errors import WorkloadError
from swarmbalancer.workload import (
    BurstyArrival,
    DiurnalArrival,
    LognormalWork,
    ParetoWork,
    Zipf,
    iter_tasks,
    parse_workload,
)
from swarmbalancer.workload.limits import (
    MAX_AGENTS,
    MAX_FACTOR,
    MAX_SECONDS,
    MAX_SIGMA,
    MAX_SLOTS,
    MAX_TASKS,
    MIN_BURST_ARRIVALS,
)

BASE: dict[str, Any] = {
    "agents": [{"id": "a"}],
    "tasks": {"count": 3, "work": {"dist": "constant", "value": 0.01}},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node: Any = data
    *parents, last = path.split(".")
    for step in parents:
        node = node[int(step)] if step.isdigit() else node[step]
    node[last] = value
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(WorkloadError) as info:
        parse_workload(data, Path("."), source="x.yaml")
    return str(info.value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("tasks.count", 2**63, f"x.yaml: tasks.count: must be <= {MAX_TASKS}, got {2**63}"),
        ("agents.0.count", 10**9, f"x.yaml: agents[0].count: must be <= {MAX_AGENTS}"),
        ("agents.0.capacity", 10**9, "x.yaml: agents[0].capacity: must be <= 10000"),
        ("agents.0.speed", 1e-300, "x.yaml: agents[0].speed: must be >= 1e-06"),
        ("agents.0.join", 1e300, "x.yaml: agents[0].join: must be <= 1000000000"),
        ("seed", 2**64, "x.yaml: seed: must be <= 18446744073709551615"),
        ("tasks.work", {"dist": "lognormal", "mean": 1, "sigma": 1e200}, "tasks.work.sigma"),
        ("tasks.work", {"dist": "exponential", "mean": 1e300}, "tasks.work.mean: must be <="),
        (
            "tasks.work",
            {"dist": "pareto", "alpha": 1e300, "mean": 1},
            "tasks.work.alpha: must be <= 1000000",
        ),
        ("tasks.estimate", {"error": 1e200}, "tasks.estimate.error: must be <= 10"),
        ("tasks.deadline", {"slack": 1e300}, "tasks.deadline.slack: must be <= 1000000"),
        ("tasks.arrival", {"process": "poisson", "rate": 5e-324}, "tasks.arrival.rate"),
        (
            "tasks.arrival",
            {"process": "diurnal", "rate": 1, "amplitude": 1, "period": 1e-300},
            "tasks.arrival.period: must be >= 0.001",
        ),
        (
            "tasks.arrival",
            {"process": "bursty", "on_rate": 1e-9, "on": 1e-9, "off": 1},
            f"arrivals per cycle; it must be >= {MIN_BURST_ARRIVALS}",
        ),
    ],
)
def test_values_beyond_the_limits_are_refused_naming_the_field(
    path: str, value: Any, expected: str
) -> None:
    assert expected in refusal(with_(path, value))


@pytest.mark.timeout(10)
def test_a_huge_integer_from_python_is_named_by_its_size_not_printed() -> None:
    assert "seed: must be <= 18446744073709551615, got an integer of about 5000 digits" in (
        refusal(with_("seed", 10**5000))
    )


@pytest.mark.timeout(10)
def test_agents_over_all_groups_are_limited_before_ids_are_expanded() -> None:
    groups = [{"id": f"g{i}", "count": MAX_AGENTS} for i in range(1000)]
    message = refusal(with_("agents", groups))
    assert message == (
        f"x.yaml: agents: {1000 * MAX_AGENTS:,} agents in all; at most {MAX_AGENTS:,} are allowed"
    )


@pytest.mark.timeout(10)
def test_slots_over_all_agents_are_limited() -> None:
    groups = [{"id": "g", "count": 1000, "capacity": 10_000}]
    assert f"at most {MAX_SLOTS:,} are allowed" in refusal(with_("agents", groups))


@pytest.mark.timeout(10)
def test_values_at_the_limits_are_accepted() -> None:
    data = with_("tasks.count", MAX_TASKS)
    data["agents"] = [{"id": "a", "count": MAX_AGENTS, "join": MAX_SECONDS}]
    data["tasks"]["work"] = {"dist": "lognormal", "mean": MAX_SECONDS, "sigma": MAX_SIGMA}
    data["tasks"]["deadline"] = {"slack": MAX_FACTOR}
    workload = parse_workload(data, Path("."))
    assert workload.tasks.count == MAX_TASKS  # type: ignore[union-attr]


def test_a_steep_zipf_over_many_tenants_gives_the_tail_nothing_instead_of_overflowing() -> None:
    probabilities = Zipf(zipf=2000.0).probabilities(5)
    assert probabilities == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_the_capped_pareto_mean_is_finite_for_any_valid_shape() -> None:
    work = ParetoWork(dist="pareto", alpha=MAX_FACTOR, mean=5e8, max=1e9)
    assert work.expected() == pytest.approx(5e8)


@settings(max_examples=150, deadline=None)
@given(
    mean=st.floats(min_value=1e-9, max_value=MAX_SECONDS),
    sigma=st.floats(min_value=0.0, max_value=MAX_SIGMA),
    seed=st.integers(0, 2**32),
)
def test_lognormal_samples_within_the_limits_are_finite(
    mean: float, sigma: float, seed: int
) -> None:
    work = LognormalWork(dist="lognormal", mean=mean, sigma=sigma)
    rng = random.Random(seed)
    assert all(math.isfinite(work.sample(rng)) for _ in range(200))


@settings(max_examples=100, deadline=None)
@given(
    on_rate=st.floats(min_value=1e-9, max_value=1e9),
    on=st.floats(min_value=1e-3, max_value=MAX_SECONDS),
    off=st.floats(min_value=1e-3, max_value=MAX_SECONDS),
)
def test_every_valid_bursty_process_yields_arrivals_quickly(
    on_rate: float, on: float, off: float
) -> None:
    if on_rate * on < MIN_BURST_ARRIVALS:
        return
    process = BurstyArrival(process="bursty", on_rate=on_rate, on=on, off=off)
    times = list(islice(process.iter_times(50, random.Random(1)), 50))
    assert len(times) == 50 and all(math.isfinite(t) for t in times)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=1e-9, max_value=1e9),
    period=st.floats(min_value=1e-3, max_value=MAX_SECONDS),
)
def test_diurnal_arrivals_within_the_limits_are_finite(rate: float, period: float) -> None:
    process = DiurnalArrival(process="diurnal", rate=rate, amplitude=1.0, period=period)
    assert all(math.isfinite(t) for t in process.times(50, random.Random(2)))


@pytest.mark.timeout(20)
def test_a_workload_with_every_value_at_its_extreme_generates_finite_tasks() -> None:
    data = copy.deepcopy(BASE)
    data["agents"] = [{"id": "a", "speed": 1e-6}, {"id": "b", "speed": 1e6, "weight": 1e6}]
    data["tasks"] = {
        "count": 200,
        "work": {"dist": "pareto", "alpha": 1.0000001, "mean": MAX_SECONDS},
        "arrival": {"process": "poisson", "rate": 1e-9},
        "deadline": {"slack": MAX_FACTOR},
        "estimate": {"error": MAX_SIGMA},
    }
    for record in iter_tasks(parse_workload(data, Path("."))):
        values = (record.work, record.arrival, record.estimate, record.deadline)
        assert all(v is not None and math.isfinite(v) for v in values)
