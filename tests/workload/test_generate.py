"""Task generation: deterministic, faithful to the distributions, and the derived plans."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.model import Priority
from swarmbalancer.workload import (
    FaultEffect,
    FaultPlan,
    MembershipEvent,
    ParetoWork,
    TaskRecord,
    Workload,
    generate_tasks,
    load_workload,
    lower_bound,
    membership_events,
    parse_workload,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "workloads"
SHARED_FILES = sorted(p.name for p in SHARED.glob("*.yaml"))


def workload(tasks: dict[str, Any], **top: Any) -> Workload:
    data: dict[str, Any] = {"seed": 5, "agents": [{"id": "a", "count": 2, "region": "eu"}]}
    data.update(top)
    data["tasks"] = tasks
    return parse_workload(data, Path("."))


def works(dist: dict[str, Any], count: int = 20_000) -> list[float]:
    return [r.work for r in generate_tasks(workload({"count": count, "work": dist}))]


@pytest.mark.parametrize("name", SHARED_FILES)
def test_the_same_file_gives_the_same_tasks(name: str) -> None:
    assert generate_tasks(load_workload(SHARED / name)) == generate_tasks(
        load_workload(SHARED / name)
    )


@pytest.mark.parametrize("name", SHARED_FILES)
def test_another_seed_gives_other_tasks(name: str) -> None:
    original = load_workload(SHARED / name)
    reseeded = original.model_copy(update={"seed": original.seed + 1})
    first, second = generate_tasks(original), generate_tasks(reseeded)
    assert len(first) == len(second)
    assert first != second


@pytest.mark.parametrize("name", SHARED_FILES)
def test_tasks_are_sorted_by_arrival_with_indexed_ids(name: str) -> None:
    records = generate_tasks(load_workload(SHARED / name))
    assert [r.arrival for r in records] == sorted(r.arrival for r in records)
    assert {r.id for r in records} == {f"t{i:06d}" for i in range(len(records))}
    assert all(r.work >= 0 and r.estimate == r.work for r in records)


def test_changing_one_aspect_leaves_the_others_draws_alone() -> None:
    base = {"count": 500, "work": {"dist": "exponential", "mean": 1.0}}
    plain = generate_tasks(workload(base))
    mixed = generate_tasks(workload({**base, "priority": {"high": 0.5, "low": 0.5}}))
    assert [r.work for r in plain] == [r.work for r in mixed]
    assert [r.arrival for r in plain] == [r.arrival for r in mixed]


@pytest.mark.parametrize(
    ("dist", "mean"),
    [
        ({"dist": "constant", "value": 0.25}, 0.25),
        ({"dist": "exponential", "mean": 0.5}, 0.5),
        ({"dist": "lognormal", "mean": 0.006, "sigma": 1.0}, 0.006),
        ({"dist": "bimodal", "short": 0.01, "long": 1.0, "p_long": 0.1}, 0.109),
        ({"dist": "pareto", "alpha": 3.0, "mean": 2.0}, 2.0),
    ],
)
def test_sample_means_match_the_specified_mean(dist: dict[str, Any], mean: float) -> None:
    assert statistics.fmean(works(dist)) == pytest.approx(mean, rel=0.05)


def test_the_pareto_cap_lowers_the_mean_to_its_analytical_value() -> None:
    spec = {"dist": "pareto", "alpha": 1.5, "mean": 0.02, "max": 0.2}
    capped = ParetoWork.model_validate(spec)
    xm = 0.02 * 0.5 / 1.5
    assert capped.scale == pytest.approx(xm)
    assert capped.expected() == pytest.approx(0.02 - xm**1.5 * 0.2**-0.5 / 0.5)
    sample = works(spec, 40_000)
    assert min(sample) >= xm and max(sample) == 0.2
    assert statistics.fmean(sample) == pytest.approx(capped.expected(), rel=0.05)
    assert statistics.fmean(sample) < 0.02


def test_lognormal_spread_follows_sigma() -> None:
    logs = [math.log(w) for w in works({"dist": "lognormal", "mean": 1.0, "sigma": 0.5})]
    assert statistics.stdev(logs) == pytest.approx(0.5, rel=0.05)
    assert statistics.fmean(logs) == pytest.approx(-0.125, abs=0.02)


def arrivals(process: dict[str, Any], count: int = 20_000) -> list[float]:
    tasks = {"count": count, "work": {"dist": "constant", "value": 1}, "arrival": process}
    return [r.arrival for r in generate_tasks(workload(tasks))]


def test_batch_arrivals_share_one_instant() -> None:
    assert set(arrivals({"process": "batch", "at": 2.5}, 100)) == {2.5}
    assert set(arrivals({"process": "batch"}, 100)) == {0.0}


def test_poisson_arrivals_come_at_the_rate() -> None:
    times = arrivals({"process": "poisson", "rate": 400.0})
    assert len(times) / times[-1] == pytest.approx(400.0, rel=0.05)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.stdev(gaps) == pytest.approx(statistics.fmean(gaps), rel=0.05)


def test_bursty_arrivals_stay_inside_on_phases() -> None:
    spec = {"process": "bursty", "on_rate": 1000.0, "off_rate": 0.0, "on": 0.5, "off": 1.5}
    times = arrivals(spec, 5000)
    assert all(t % 2.0 < 0.5 for t in times)
    assert len(times) / (math.floor(times[-1] / 2.0) * 0.5 + times[-1] % 2.0) == pytest.approx(
        1000.0, rel=0.05
    )


def test_diurnal_arrivals_follow_the_sine() -> None:
    spec = {"process": "diurnal", "rate": 200.0, "amplitude": 0.8, "period": 10.0}
    times = arrivals(spec)
    whole = [t for t in times if t < math.floor(times[-1] / 10.0) * 10.0]
    assert len(whole) / (math.floor(times[-1] / 10.0) * 10.0) == pytest.approx(200.0, rel=0.05)
    rising = sum(1 for t in whole if t % 10.0 < 5.0)
    # Mean rate over the peak half is rate * (1 + 2A/pi), over the trough half rate * (1 - 2A/pi).
    expected = (1 + 1.6 / math.pi) / (1 - 1.6 / math.pi)
    assert rising / (len(whole) - rising) == pytest.approx(expected, rel=0.1)


def test_priority_mix_follows_its_probabilities() -> None:
    tasks = {
        "count": 20_000,
        "work": {"dist": "constant", "value": 1},
        "priority": {"critical": 0.1, "normal": 0.6, "background": 0.3},
    }
    counts = Counter(r.priority for r in generate_tasks(workload(tasks)))
    assert set(counts) == {Priority.CRITICAL, Priority.NORMAL, Priority.BACKGROUND}
    assert counts[Priority.CRITICAL] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Priority.BACKGROUND] / 20_000 == pytest.approx(0.3, abs=0.01)


def test_tenant_mapping_and_zipf() -> None:
    tenants = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    base = {"count": 20_000, "work": {"dist": "constant", "value": 1}}
    mapped = generate_tasks(workload({**base, "tenant": {"a": 0.7, "c": 0.3}}, tenants=tenants))
    counts = Counter(r.tenant for r in mapped)
    assert set(counts) == {"a", "c"} and counts["a"] / 20_000 == pytest.approx(0.7, abs=0.01)
    zipf = generate_tasks(workload({**base, "tenant": {"zipf": 1.0}}, tenants=tenants))
    counts = Counter(r.tenant for r in zipf)
    # ranks 1..3 with s = 1: probabilities 6/11, 3/11, 2/11
    assert counts["a"] / 20_000 == pytest.approx(6 / 11, abs=0.01)
    assert counts["c"] / 20_000 == pytest.approx(2 / 11, abs=0.01)


def test_deadlines_are_arrival_plus_work_times_slack() -> None:
    tasks = {
        "count": 200,
        "work": {"dist": "exponential", "mean": 1.0},
        "arrival": {"process": "poisson", "rate": 10.0},
        "deadline": {"slack": 3.0},
    }
    for r in generate_tasks(workload(tasks)):
        assert r.deadline == pytest.approx(r.arrival + 3.0 * r.work)


def test_affinity_pins_a_share_of_tasks_and_leaves_the_rest_free() -> None:
    tasks = {
        "count": 20_000,
        "work": {"dist": "constant", "value": 1},
        "affinity": {"eu": 0.2, "a-1": 0.1},
    }
    counts = Counter(r.affinity for r in generate_tasks(workload(tasks)))
    assert counts[("eu",)] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert counts[("a-1",)] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[None] / 20_000 == pytest.approx(0.7, abs=0.01)


def test_estimate_noise_is_unbiased_in_the_mean() -> None:
    tasks = {
        "count": 20_000,
        "work": {"dist": "constant", "value": 2.0},
        "estimate": {"error": 0.5},
    }
    records = generate_tasks(workload(tasks))
    ratios = [r.estimate / r.work for r in records]
    assert statistics.fmean(ratios) == pytest.approx(1.0, rel=0.03)
    assert statistics.stdev(math.log(x) for x in ratios) == pytest.approx(0.5, rel=0.05)


def swarm(*agents: tuple[float, int]) -> Workload:
    """A workload whose agents have these (true speed, capacity); its own tasks do not matter."""
    return parse_workload(
        {
            "agents": [
                {"id": f"a{i}", "speed": speed, "capacity": capacity, "speed_hint": 100.0}
                for i, (speed, capacity) in enumerate(agents)
            ],
            "tasks": {"count": 1, "work": {"dist": "constant", "value": 1.0}},
        },
        Path("."),
    )


def record(work: float, arrival: float = 0.0) -> TaskRecord:
    return TaskRecord("t", work, arrival, Priority.NORMAL, None, None, None, work)


def test_lower_bound_of_a_batch_is_total_work_or_longest_task_at_the_true_speeds() -> None:
    specs = swarm((1.0, 2), (4.0, 1))  # the hints (100) are not the speeds: they do not count
    # total work 12 over throughput 1*2 + 4 = 6 -> 2; longest 4 on speed 4 -> 1
    assert lower_bound([record(4.0), record(4.0), record(4.0)], specs) == pytest.approx(2.0)
    # one long task: 40 on speed 4 -> 10 beats 42 / 6 = 7
    assert lower_bound([record(40.0), record(2.0)], specs) == pytest.approx(10.0)
    assert lower_bound([], specs) == 0.0


def test_lower_bound_counts_late_arrivals() -> None:
    specs = swarm((1.0, 1), (1.0, 1))
    # both tasks arrive at 10: 10 + 4 / 2 = 12, and 10 + 3 / 1 = 13
    records = [record(1.0, 10.0), record(3.0, 10.0), record(0.5, 0.0)]
    assert lower_bound(records, specs) == pytest.approx(13.0)


def test_lower_bound_of_the_heterogeneous_file_matches_the_batch_formula() -> None:
    wl = load_workload(SHARED / "heterogeneous.yaml")
    records = generate_tasks(wl)
    total = sum(r.work for r in records)
    expected = max(total / 32.0, max(r.work for r in records) / 4.0)
    assert lower_bound(records, wl) == pytest.approx(expected)


def fault_plan() -> FaultPlan:
    wl = workload(
        {"count": 1, "work": {"dist": "constant", "value": 1}},
        faults=[
            {"agent": "a-0", "from": 1.0, "until": 3.0, "error_rate": 0.2, "slowdown": 2.0},
            {"agent": "a-0", "from": 2.0, "until": 4.0, "error_rate": 0.5, "slowdown": 3.0},
            {"agent": "a-1", "from": 5.0, "down": True},
        ],
    )
    return FaultPlan.from_workload(wl)


def test_faults_combine_max_error_and_product_of_slowdowns() -> None:
    plan = fault_plan()
    assert plan.at("a-0", 0.5) == FaultEffect()
    assert plan.at("a-0", 1.0) == FaultEffect(error_rate=0.2, slowdown=2.0)
    assert plan.at("a-0", 2.5) == FaultEffect(error_rate=0.5, slowdown=6.0)
    assert plan.at("a-0", 3.0) == FaultEffect(error_rate=0.5, slowdown=3.0)
    assert plan.at("a-0", 4.0).healthy
    assert plan.at("a-1", 4.9).healthy and plan.at("a-1", 1e9).down
    assert plan.boundaries() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_membership_events_are_ordered_joins_first() -> None:
    wl = parse_workload(
        {
            "agents": [
                {"id": "base", "count": 2},
                {"id": "late", "join": 5.0, "leave": 9.0},
                {"id": "gone", "leave": 5.0},
            ],
            "tasks": {"count": 1, "work": {"dist": "constant", "value": 1}},
        },
        Path("."),
    )
    assert membership_events(wl) == [
        MembershipEvent(5.0, "join", "late"),
        MembershipEvent(5.0, "leave", "gone"),
        MembershipEvent(9.0, "leave", "late"),
    ]
    assert [s.id for s in wl.initial_agent_specs()] == ["base-0", "base-1", "gone"]


def test_a_record_becomes_a_task_with_a_work_payload() -> None:
    tasks = {"count": 1, "work": {"dist": "constant", "value": 0.5}, "deadline": {"slack": 2.0}}
    (rec,) = generate_tasks(workload(tasks))
    task = rec.to_task(now=100.0, origin=100.0)
    assert task.id == rec.id and task.payload == {"work": 0.5}
    assert task.deadline == pytest.approx(101.0) and task.estimate == 0.5
