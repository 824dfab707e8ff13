"""The recorder: strict JSON, the arrival-aware lower bound and its speeds, agents that rejoin,
tenants."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simhelpers import work_model
from swarmbalancer.config import load_config
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.metrics.recorder import Recorder, strict_json
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Task
from swarmbalancer.sim.driver import SimDriver


def agent(agent_id: str, *, capacity: int = 1, hint: float | None = None) -> AgentState:
    spec = AgentSpec(agent_id, capacity=capacity, speed_hint=hint)
    return AgentState(spec=spec, stats=AgentStats(speed=hint or 1.0))


def accept(rec: Recorder, at: float, work: float | None, tenant: str | None = None) -> Task:
    task = Task(id=f"t{rec.accepted}", estimate=work, tenant=tenant, submitted_at=at)
    rec.task_accepted(task, at)
    return task


def test_the_bound_uses_the_reference_speeds_over_the_hints() -> None:
    rec = Recorder()
    rec.agent_joined(agent("a", capacity=2, hint=100.0), 0.0)
    rec.agent_joined(agent("b", hint=100.0), 0.0)
    for _ in range(3):
        accept(rec, 10.0, 4.0)  # a batch at 10: the bound counts from the first submission
    rec.set_reference_speeds({"a": 1.0, "b": 4.0})
    # S = 1*2 + 4 = 6: 12 / 6 = 2 beats 4 / 4 = 1, the old batch formula
    assert rec.lower_bound() == pytest.approx(2.0)


def test_without_reference_speeds_the_bound_needs_a_hint_from_every_agent() -> None:
    rec = Recorder()
    rec.agent_joined(agent("a", hint=2.0), 0.0)
    accept(rec, 0.0, 4.0)
    assert rec.lower_bound() == pytest.approx(2.0)  # 4 / 2
    rec.agent_joined(agent("b"), 0.0)
    assert rec.lower_bound() is None  # b's speed is unknown
    rec.set_reference_speeds({"b": 8.0})  # a keeps its hint
    assert rec.lower_bound() == pytest.approx(0.5)  # max(4 / (2 + 8), 4 / 8)
    with pytest.raises(ValueError, match="reference speed of 'b'"):
        rec.set_reference_speeds({"b": 0.0})


def test_the_bound_needs_an_estimate_from_every_task() -> None:
    rec = Recorder()
    rec.agent_joined(agent("a", hint=1.0), 0.0)
    accept(rec, 0.0, 1.0)
    accept(rec, 0.5, None)
    assert rec.lower_bound() is None


def test_the_bound_counts_arrivals_and_every_agent_ever_present() -> None:
    rec = Recorder()
    rec.set_reference_speeds({"a": 1.0, "b": 1.0})
    rec.agent_joined(agent("a"), 0.0)
    rec.agent_joined(agent("b"), 0.0)
    for at in (5.0, 6.0, 7.0, 8.0):
        accept(rec, at, 1.0)
    rec.agent_left("b", 6.5)
    # relative to the first submission (5): the last task alone needs 3 + 1 / 1 = 4
    assert rec.lower_bound() == pytest.approx(4.0)
    rec.agent_joined(agent("b", capacity=3), 9.0)  # back with 3 slots: S = 1 + 3
    assert rec.lower_bound() == pytest.approx(4.0)
    accept(rec, 9.0, 12.0)  # 4 + 12 / 1 = 16 beats 4 + 12 / 4
    assert rec.lower_bound() == pytest.approx(16.0)


def test_an_agent_removed_and_added_again_keeps_its_history_in_one_row() -> None:
    rec = Recorder()
    a = agent("a")
    rec.agent_joined(a, 0.0)
    for i in range(3):
        task = accept(rec, float(i), 1.0)
        rec.attempt_finished(task, "a", 1.0, ok=True)
        rec.task_finished(task, float(i) + 1.0, ok=True)
    rec.agent_left("a", 3.0)
    rec.agent_joined(agent("a", capacity=2), 5.0)
    task = accept(rec, 5.0, 1.0)
    rec.attempt_finished(task, "a", 1.0, ok=True)
    rec.task_finished(task, 6.0, ok=True)
    report = rec.report(0, {"a": "closed"})
    (row,) = report["per_agent"]
    assert (row["id"], row["completed"], row["busy_s"]) == ("a", 4, 4.0)
    # present 0..3 with 1 slot and 5..6 with 2: 4 busy seconds over 5 slot-seconds
    assert row["utilization"] == pytest.approx(4.0 / 5.0)
    assert report["utilization"] == pytest.approx(4.0 / 5.0)


def test_per_agent_completions_add_up_when_agents_leave_and_rejoin_in_a_simulation() -> None:
    coordinator = Coordinator(load_config({"strategy": "round_robin"}))
    driver = SimDriver(coordinator, work_model())
    for name in ("a", "b"):
        driver.add_agent_at(0.0, AgentSpec(name))
    for i in range(200):
        task = Task.create({"i": i}, now=0.0, task_id=f"t{i}", estimate=0.01)
        driver.submit_at(i * 0.01, task)
    for k in range(3):  # b leaves and comes back three times
        driver.remove_agent_at(0.3 + 0.5 * k, "b")
        driver.add_agent_at(0.5 + 0.5 * k, AgentSpec("b"))
    driver.run(until=100.0)
    report = coordinator.report()
    assert report["completed"] == 200 and report["lost"] == 0
    rows = {row["id"]: row["completed"] for row in report["per_agent"]}
    assert sorted(rows) == ["a", "b"] and sum(rows.values()) == 200
    assert rows["b"] > 0


def tenant_report(events: list[tuple[str, str, float]]) -> dict[str, Any]:
    """Feed (kind, tenant, time) events: `accept` a task, `run` the tenant's oldest open one."""
    rec = Recorder({"gold": 3.0})
    rec.agent_joined(agent("a", hint=1.0), 0.0)
    open_tasks: dict[str, list[Task]] = {}
    for kind, tenant, at in events:
        if kind == "accept":
            open_tasks.setdefault(tenant, []).append(accept(rec, at, 1.0, tenant))
        else:
            task = open_tasks[tenant].pop(0)
            task.attempt = 1
            rec.task_started(task, at, saturated=False)
            rec.attempt_finished(task, "a", 1.0, ok=True)
            rec.task_finished(task, at + 1.0, ok=True)
    per_tenant = rec.report(0, {"a": "closed"})["per_tenant"]
    assert isinstance(per_tenant, dict)
    return per_tenant


def test_per_tenant_figures_give_service_shares_and_queue_latency() -> None:
    events = [("accept", t, 0.0) for t in ("gold", "gold", "free", "free")]
    events += [("run", "gold", 0.0), ("run", "free", 1.0), ("run", "gold", 2.0)]
    events += [("run", "free", 3.0)]
    gold, free = (tenant_report(events)[name] for name in ("gold", "free"))
    assert (gold["fair_share"], free["fair_share"]) == (0.75, 0.25)
    assert gold["share"] == free["share"] == 0.5
    # while both had open tasks (until gold's second finished), gold got 2 attempts, free 1
    assert gold["backlogged_share"] == pytest.approx(2 / 3)
    assert free["backlogged_share"] == pytest.approx(1 / 3)
    assert gold["queue_latency_ms"] == {"p50": pytest.approx(1000.0), "p99": pytest.approx(1980.0)}
    assert free["queue_latency_ms"]["p50"] == pytest.approx(2000.0)


def test_without_tenants_there_are_no_tenant_figures() -> None:
    rec = Recorder()
    accept(rec, 0.0, 1.0)
    assert rec.report(1, {})["per_tenant"] is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@given(_json)
def test_strict_json_turns_every_non_finite_float_into_null_and_keeps_the_rest(
    value: object,
) -> None:
    cleaned = strict_json(value)
    json.dumps(cleaned, allow_nan=False)
    if isinstance(value, float) and math.isfinite(value):
        assert cleaned == value


def _agent(capacity: int) -> AgentState:
    return AgentState(spec=AgentSpec("a", capacity=capacity), stats=AgentStats(speed=1.0))


def test_an_agent_that_leaves_and_comes_back_keeps_its_counts_and_presence() -> None:
    rec = Recorder()
    task = Task.create(None, now=0.0, task_id="t")
    rec.task_accepted(task, 0.0)
    rec.agent_joined(_agent(1), 0.0)
    rec.attempt_finished(task, "a", 1.0, ok=True)
    rec.agent_left("a", 2.0)
    rec.agent_joined(_agent(2), 3.0)
    rec.attempt_finished(task, "a", 1.0, ok=True)
    rec.task_finished(task, 5.0, ok=True)
    row = rec.report(0, {"a": "closed"})["per_agent"][0]
    assert row["completed"] == 2 and row["busy_s"] == 2.0
    # present 0-2 with 1 slot and 3-5 with 2 slots: 6 slot-seconds, 2 of them busy
    assert math.isclose(row["utilization"], 2.0 / 6.0)


def test_latency_samples_bounds_every_latency_series() -> None:
    """`latencySamples` is the exact-value limit of every series the recorder keeps."""
    from swarmbalancer import Coordinator
    from swarmbalancer.model import Priority

    recorder = Coordinator({"latencySamples": 7}).recorder
    assert recorder.sojourn.exact_limit == 7 and recorder.queue_latency.exact_limit == 7
    assert recorder._levels[Priority.LOW].queue_latency.exact_limit == 7
    assert recorder._tenant("t1").queue_latency.exact_limit == 7


@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, "t1", "t2"]),  # tenant
            st.sampled_from([None, 0.5, 5.0]),  # deadline
            st.floats(0.0, 3.0),  # duration
        ),
        min_size=1,
        max_size=20,
    )
)
def test_task_completed_records_what_attempt_finished_then_task_finished_record(
    finished: list[tuple[str | None, float | None, float]],
) -> None:
    """The hot path's one call and the two it stands for give the same report."""
    one, two = Recorder(), Recorder()
    for rec in (one, two):
        rec.agent_joined(agent("a"), 0.0)
    for k, (tenant, deadline, duration) in enumerate(finished):
        now = 1.0 + k
        for rec in (one, two):
            task = Task(id=f"t{k}", tenant=tenant, deadline=deadline, submitted_at=0.5)
            task.expected_work = duration / 2
            rec.task_accepted(task, 0.5)
            rec.task_started(task, 0.75, False)
            if rec is one:
                rec.task_completed(task, "a", duration, now)
            else:
                rec.attempt_finished(task, "a", duration, True)
                rec.task_finished(task, now, True)
    assert one.report(0, {"a": "closed"}) == two.report(0, {"a": "closed"})
