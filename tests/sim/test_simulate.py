"""The simulator: repeatable bit for bit, sensitive to the seed, and close to the lower bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simhelpers import run_sim
from swarmbalancer.config import STRATEGIES
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Task
from swarmbalancer.sim.simulate import WorkloadSimulation, simulate
from swarmbalancer.sim.timeline import Timeline
from swarmbalancer.workload import (
    FaultPlan,
    Workload,
    attempt_outcome,
    load_workload,
    parse_workload,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "workloads"


def mixed(seed: int) -> Workload:
    """Small but busy: three speeds, a late joiner and a leaver, faults, tenants, deadlines."""
    return parse_workload(
        {
            "seed": seed,
            "agents": [
                {"id": "slow", "count": 3, "speed": 1.0, "region": "eu"},
                {"id": "fast", "count": 2, "capacity": 2, "speed": 3.0, "region": "us"},
                {"id": "late", "speed": 2.0, "join": 0.05, "leave": 0.15},
            ],
            "tenants": [{"id": "a", "weight": 2}, {"id": "b"}],
            "tasks": {
                "count": 300,
                "work": {"dist": "exponential", "mean": 0.01},
                "arrival": {"process": "poisson", "rate": 1800},
                "priority": {"high": 0.3, "normal": 0.5, "low": 0.2},
                "tenant": {"a": 0.5, "b": 0.5},
                "deadline": {"slack": 4},
            },
            "faults": [
                {"agent": "slow-1", "from": 0.05, "until": 0.2, "error_rate": 0.6},
                {"agent": "fast-0", "from": 0.1, "slowdown": 2.0},
            ],
        },
        Path("."),
    )


def run(workload: Workload, **config: Any) -> dict[str, Any]:
    return simulate(workload, workload.balancer_config().updated(config))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    strategy=st.sampled_from(STRATEGIES),
    discipline=st.sampled_from(["fifo", "edf", "cfs", "wfq"]),
)
def test_the_same_seed_gives_the_identical_report(
    seed: int, strategy: str, discipline: str
) -> None:
    first = run(mixed(seed), strategy=strategy, discipline=discipline)
    second = run(mixed(seed), strategy=strategy, discipline=discipline)
    assert first == second
    assert first["lost"] == 0 and first["open"] == 0


@settings(max_examples=10, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32), min_size=2, max_size=2, unique=True))
def test_another_workload_seed_gives_another_report(seeds: list[int]) -> None:
    first, second = (run(mixed(seed)) for seed in seeds)
    assert first != second
    assert first["makespan_s"] != second["makespan_s"]


def test_a_timeline_changes_nothing_in_the_report() -> None:
    workload = mixed(3)
    plain = run(workload)
    timeline = Timeline(max_samples=50)
    sampled = simulate(workload, workload.balancer_config(), timeline=timeline)
    assert sampled == plain
    assert len(timeline.times) > 10


def test_adaptive_told_nothing_is_near_the_lower_bound_on_the_heterogeneous_swarm() -> None:
    # No speeds declared: late binding places each task once something has been learned
    workload = load_workload(SHARED / "heterogeneous.yaml")
    adaptive = run(workload, strategy="adaptive")
    round_robin = run(workload, strategy="round_robin")
    for report in (adaptive, round_robin):
        assert report["lost"] == 0 and report["completed"] == 2000
    assert adaptive["makespan_s"] <= 1.02 * adaptive["lower_bound_s"]
    assert round_robin["makespan_s"] >= 1.10 * round_robin["lower_bound_s"]


@settings(max_examples=100, deadline=None)
@given(
    work=st.floats(0, 1e4),
    hint=st.one_of(st.none(), st.floats(1e-3, 1e3)),
    agent_id=st.sampled_from(["slow-0", "mid-1", "fast-3"]),
    now=st.floats(0, 1e6),
)
def test_attempts_without_faults_take_what_attempt_outcome_says_at_the_true_speed(
    work: float, hint: float | None, agent_id: str, now: float
) -> None:
    workload = load_workload(SHARED / "heterogeneous.yaml")  # no faults: the short path
    sim = WorkloadSimulation(workload, workload.balancer_config())
    task = Task(id="t1", payload={"id": "t1", "work": work}, attempt=1)
    agent = AgentState(spec=AgentSpec(id=agent_id, speed_hint=hint), stats=AgentStats(speed=1.0))
    attempt = sim._attempt(task, agent, now)
    outcome = attempt_outcome(  # the workload's speed, whatever the balancer was told
        seed=workload.seed,
        task_id="t1",
        attempt=1,
        agent_id=agent_id,
        speed={"slow": 1.0, "mid": 2.0, "fast": 4.0}[agent_id.split("-")[0]],
        work=work,
        start=now,
        faults=FaultPlan([]),
    )
    assert attempt.duration == outcome.duration and attempt.ok is not outcome.failed


def test_with_one_priority_class_aging_changes_no_dispatch_order() -> None:
    # Each agent is an M/M/1 queue at 90% load; aging (every 0.2 s of waiting) must keep FIFO.
    workload = parse_workload(
        {
            "seed": 5,
            "agents": [{"id": "a", "count": 10}],
            "tasks": {
                "count": 3000,
                "work": {"dist": "exponential", "mean": 0.1},
                "arrival": {"process": "poisson", "rate": 90},
            },
            "config": {"strategy": "random", "stealEnabled": False, "rebalanceEnabled": False},
        },
        Path("."),
    )
    aged = run(workload, aging_interval=0.2, aging_boost=1)
    fifo = run(workload, aging_boost=0)
    assert aged["sojourn_ms"]["max"] > 1000  # tasks waited through several aging intervals
    assert aged["sojourn_ms"] == fifo["sojourn_ms"]
    assert aged["queue_latency_ms"] == fifo["queue_latency_ms"]


def test_with_one_priority_class_each_agent_starts_its_tasks_in_arrival_order() -> None:
    # Overloaded (1.1x), so queues grow and tasks wait through several aging intervals.
    config = {"strategy": "round_robin", "stealEnabled": False, "rebalanceEnabled": False}
    agents = [AgentSpec(f"a{i}") for i in range(3)]
    tasks = [
        (0.3 * i, Task.create({"i": i}, now=0.0, task_id=f"t{i:03d}", estimate=1.0))
        for i in range(600)
    ]
    _, trace, report = run_sim(config, agents, tasks)
    assert report["completed"] == 600
    assert report["queue_latency_ms"]["max"] > 3 * 5000.0  # three default aging intervals
    for agent in agents:
        started = [task_id for task_id, a, *_ in trace.attempts if a == agent.id]
        assert started == sorted(started)
