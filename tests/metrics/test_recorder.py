"""The recorder's report: strict JSON, and an agent's history across leaving and coming back."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from swarmbalancer.metrics.recorder import Recorder, strict_json
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Task

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
