"""The coordinator end to end in virtual time: no task lost or run twice, whatever happens."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simhelpers import run_sim
from swarmbalancer.config import STRATEGIES
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import AgentSpec, AgentState, Priority, Task
from swarmbalancer.sim.driver import Attempt, SimDriver


def _task(i: int, work: float, priority: Priority = Priority.NORMAL, **kw: object) -> Task:
    return Task.create({"i": i}, now=0.0, task_id=f"t{i}", estimate=work, priority=priority, **kw)  # type: ignore[arg-type]


scenario = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(STRATEGIES),
        "agents": st.lists(
            st.tuples(st.integers(1, 3), st.sampled_from([1.0, 2.0, 4.0])), min_size=1, max_size=5
        ),
        "works": st.lists(st.floats(0.001, 0.2), min_size=1, max_size=60),
        "arrival_gap": st.sampled_from([0.0, 0.002, 0.01]),
        "failing": st.dictionaries(st.integers(0, 4), st.sampled_from([0.3, 1.0]), max_size=3),
        "retries": st.integers(0, 3),
        "steal_threshold": st.integers(0, 3),
        "victim": st.sampled_from(["heaviest", "random", "locality"]),
        "seed": st.integers(0, 1000),
    }
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_no_task_is_lost_or_run_twice_across_steals_migrations_breaker_trips_and_retries(
    s: dict,
) -> None:
    agents = [
        AgentSpec(f"a{i}", capacity=c, speed_hint=v, region="eu" if i % 2 else "us")
        for i, (c, v) in enumerate(s["agents"])
    ]
    failing = {f"a{i}": p for i, p in s["failing"].items() if i < len(agents)}
    config = {
        "strategy": s["strategy"],
        "seed": s["seed"],
        "maxRetries": s["retries"],
        "stealThreshold": s["steal_threshold"],
        "victimSelection": s["victim"],
        "checkInterval": 0.01,
        "migrationThreshold": 0.2,
        "cooldownPeriod": 0.02,
        "maxMigrations": 3,
        "failureThreshold": 2,
        "successThreshold": 1,
        "timeout": 0.05,
        "retryBackoff": 0.001,
    }
    tasks = [
        (i * s["arrival_gap"], _task(i, w, max_retries=s["retries"]))
        for i, w in enumerate(s["works"])
    ]
    _, trace, report = run_sim(config, agents, tasks, failing, seed=s["seed"])

    assert report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["failed"] == len(tasks)
    attempts = trace.by_task()
    for task_id, runs in attempts.items():
        assert len(runs) <= s["retries"] + 1, task_id
        assert sum(ok for *_, ok in runs) <= 1, f"{task_id} succeeded twice"
        ordered = sorted(runs, key=lambda r: r[1])
        for before, after in itertools.pairwise(ordered):
            assert after[1] >= before[2], f"{task_id} ran twice at once"
    succeeded = sum(1 for runs in attempts.values() if any(ok for *_, ok in runs))
    assert succeeded == report["completed"]
    for spec in agents:
        assert trace.max_concurrency(spec.id) <= spec.capacity


def test_a_fully_failing_agent_is_cut_out_and_every_task_completes_elsewhere() -> None:
    agents = [AgentSpec(f"a{i}") for i in range(4)]
    tasks = [(i * 0.001, _task(i, 0.01)) for i in range(400)]
    config = {"strategy": "round_robin", "failureThreshold": 3, "timeout": 10.0, "seed": 1}
    coord, trace, report = run_sim(config, agents, tasks, failing={"a2": 1.0})
    assert report["completed"] == 400 and report["failed"] == 0 and report["lost"] == 0
    on_bad = [a for a in trace.attempts if a[1] == "a2"]
    assert len(on_bad) == 3, "after the breaker opens, nothing more is sent to the failing agent"
    assert coord.breakers["a2"].state_label == "open"


def test_when_most_agents_are_open_the_router_spreads_over_all_rather_than_none() -> None:
    agents = [AgentSpec(f"a{i}") for i in range(3)]
    tasks = [(i * 0.01, _task(i, 0.01, max_retries=1)) for i in range(30)]
    config = {
        "strategy": "least_connections",
        "failureThreshold": 1,
        "timeout": 100.0,
        "maxRetries": 1,
        "panicThreshold": 0.5,
    }
    _, trace, report = run_sim(config, agents, tasks, failing={"a0": 1.0, "a1": 1.0, "a2": 1.0})
    assert report["lost"] == 0 and report["failed"] == 30
    assert all(len(runs) == 2 for runs in trace.by_task().values())


def test_a_recovered_agent_is_probed_then_closed_and_ramps_up() -> None:
    coord = Coordinator(
        {
            "failureThreshold": 2,
            "successThreshold": 2,
            "timeout": 1.0,
            "slowStart": 2.0,
            "strategy": "least_connections",
        }
    )
    coord.add_agent(AgentSpec("a"), 0.0)
    coord.add_agent(AgentSpec("b"), 0.0)
    for i in range(2):
        coord.submit(_task(i, 0.1, affinity="a"), 0.0)
        (assignment,) = coord.dispatch(0.0)
        coord.finish(assignment.task, 0.1, ok=False)
    assert coord.breakers["a"].state_label == "open"
    # after the timeout, the next task goes to the half-open agent as a probe
    coord.submit(_task(10, 0.1), 1.5)
    (probe,) = coord.dispatch(1.5)
    assert probe.agent.id == "a"


def test_a_retried_task_comes_back_one_level_lower_and_on_another_agent() -> None:
    coord = Coordinator({"retryBackoff": 0.0, "strategy": "round_robin"})
    coord.add_agent(AgentSpec("a"), 0.0)
    coord.add_agent(AgentSpec("b"), 0.0)
    task = coord.submit(_task(1, 0.1, Priority.HIGH), 0.0)
    (first,) = coord.dispatch(0.0)
    coord.finish(first.task, 0.1, ok=False)
    coord.tick(0.1)
    assert task.level is Priority.NORMAL
    (second,) = coord.dispatch(0.1)
    assert second.agent.id != first.agent.id


def test_a_repeated_idempotency_key_returns_the_first_task() -> None:
    coord = Coordinator()
    coord.add_agent(AgentSpec("a"), 0.0)
    first = coord.submit(_task(1, 0.1, idempotency_key="k"), 0.0)
    second = coord.submit(_task(2, 0.1, idempotency_key="k"), 0.0)
    assert second is first
    assert coord.report()["accepted"] == 1


def test_affinity_holds_across_routing_stealing_and_migration() -> None:
    agents = [
        AgentSpec("a0", region="eu"),
        AgentSpec("a1", region="eu"),
        AgentSpec("a2", region="us", speed_hint=4.0),
    ]
    tasks = [(0.0, _task(i, 0.02, affinity="eu" if i % 2 else None)) for i in range(200)]
    config = {
        "strategy": "round_robin",
        "stealThreshold": 0,
        "checkInterval": 0.01,
        "cooldownPeriod": 0.0,
    }
    _, trace, report = run_sim(config, agents, tasks)
    assert report["completed"] == 200
    assert report["steals"] > 0
    for task_id, agent_id, *_ in trace.attempts:
        if int(task_id[1:]) % 2:
            assert agent_id != "a2"


def test_periodic_tasks_beyond_the_liu_layland_bound_are_rejected_with_a_reason() -> None:
    coord = Coordinator({"discipline": "edf"})
    coord.add_agent(AgentSpec("a"), 0.0)
    coord.submit(_task(1, 0.6, period=1.0), 0.0)
    with pytest.raises(TaskRejected, match="admission"):
        coord.submit(_task(2, 0.5, period=1.0), 0.0)
    assert coord.report()["accepted"] == 1


def test_an_idle_fast_agent_steals_from_a_slow_agents_queue() -> None:
    agents = [AgentSpec("slow", speed_hint=1.0), AgentSpec("fast", speed_hint=4.0)]
    prios = [Priority.CRITICAL, Priority.LOW]
    tasks = [(0.0, _task(i, 0.01, prios[i % 2], affinity=None)) for i in range(100)]
    _, trace, report = run_sim(
        {"strategy": "round_robin", "stealThreshold": 2, "rebalanceEnabled": False}, agents, tasks
    )
    assert report["steals"] > 0 and report["completed"] == 100
    fast = sum(1 for a in trace.attempts if a[1] == "fast")
    assert fast > 60, "the fast agent should end up running most of the work"


def test_a_task_whose_affinity_matches_no_registered_agent_is_rejected_and_not_recorded() -> None:
    coord = Coordinator()
    coord.add_agent(AgentSpec("a", region="eu"), 0.0)
    with pytest.raises(TaskRejected, match="affinity"):
        coord.submit(_task(1, 0.1, affinity="mars", idempotency_key="k"), 0.0)
    assert coord.report()["accepted"] == 0
    assert coord.submit(_task(2, 0.1, affinity="eu", idempotency_key="k"), 0.0).id == "t2"


def test_a_periodic_task_needs_the_edf_discipline_and_is_rejected_before_acceptance() -> None:
    coord = Coordinator({"discipline": "fifo"})
    coord.add_agent(AgentSpec("a"), 0.0)
    with pytest.raises(TaskRejected, match="period"):
        coord.submit(_task(1, 0.1, period=1.0), 0.0)
    assert coord.report()["accepted"] == 0 and coord.report()["open"] == 0


@pytest.mark.parametrize("strategy", ["adaptive", "round_robin"])
def test_a_task_parked_longer_than_the_park_timeout_fails_instead_of_waiting_forever(
    strategy: str,
) -> None:
    coord = Coordinator({"parkTimeout": 10, "strategy": strategy})
    coord.add_agent(AgentSpec("a", region="eu"), 0.0)
    coord.remove_agent("a", 0.0)  # the only agent is gone: what comes now is parked
    task = coord.submit(_task(1, 0.1), 1.0)
    assert coord.dispatch(1.0) == [] and coord.take_abandoned() == ()
    assert coord.next_wakeup() == pytest.approx(11.0)
    coord.tick(11.0)
    assert list(coord.take_abandoned()) == [task]
    report = coord.report()
    assert report["failed"] == 1 and report["open"] == 0 and report["lost"] == 0
    assert "parkTimeout" in (task.error or "")


def test_with_one_class_each_agent_starts_its_tasks_in_submission_order() -> None:
    config = {"strategy": "adaptive", "agingInterval": 0.05}
    agents = [AgentSpec(f"a{i}", capacity=2, speed_hint=s) for i, s in enumerate([1.0, 2.0, 4.0])]
    tasks = [(i * 0.001, _task(i, 0.01 + (i * 7 % 13) / 100)) for i in range(400)]
    _, trace, report = run_sim(config, agents, tasks)
    assert report["completed"] == 400
    for agent in agents:
        started = [
            int(t[1:]) for t, a, *_ in sorted(trace.attempts, key=lambda r: r[2]) if a == agent.id
        ]
        assert started == sorted(started), agent.id


def test_tasks_reserved_behind_an_agent_stuck_past_its_estimate_are_taken_back() -> None:
    coord = Coordinator({"strategy": "adaptive", "exploration": 0})
    finished: dict[str, float] = {}
    speeds = {"fast": 4.0, "slow1": 1.0, "slow2": 1.0}

    def model(task: Task, agent: AgentState, now: float) -> Attempt:
        work = task.estimate or 0.0
        stuck = task.id == "t0"  # announced as short, runs a hundred seconds
        return Attempt(100.0 if stuck else work / speeds[agent.id], True)

    driver = SimDriver(coord, model, on_finish=lambda t, now: finished.__setitem__(t.id, now))
    for agent_id in speeds:
        driver.add_agent_at(0.0, AgentSpec(agent_id))
    for i in range(60):
        driver.submit_at(0.0, _task(i, 0.1))
    driver.run(until=1000.0)
    assert len(finished) == 60 and coord.report()["lost"] == 0
    assert max(t for task_id, t in finished.items() if task_id != "t0") < 5.0


def test_a_retry_after_hold_keeps_the_only_agent_idle_until_it_ends_even_in_panic() -> None:
    coord = Coordinator({"retryBackoff": 0.0, "failureThreshold": 5})
    coord.add_agent(AgentSpec("a"), 0.0)
    coord.submit(_task(1, 0.1), 0.0)
    (first,) = coord.dispatch(0.0)
    coord.finish(first.task, 0.1, ok=False, retry_after=3.0)  # "rate limited, retry after 3 s"
    coord.tick(0.2)
    assert coord.dispatch(0.2) == [] and coord.dispatch(3.0) == []
    assert coord.next_wakeup() == pytest.approx(3.1)
    coord.tick(3.1)
    (second,) = coord.dispatch(3.1)
    assert second.task.id == "t1" and second.agent.id == "a"
