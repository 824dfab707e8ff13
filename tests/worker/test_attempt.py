"""A worker's attempts: ready entries read, outcomes written (valid JSON whatever they hold),
and report.lua accepting what the worker writes, whatever the task id."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from redisserver import RedisServer
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import script
from swarmbalancer.metrics.usage import Usage
from swarmbalancer.model import Task
from swarmbalancer.runtime.outcomes import classify
from swarmbalancer.worker.attempt import Attempt, failed, parse_entries, parse_entry, succeeded

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(60)
K = SwarmKeys("t1")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def test_a_ready_entry_becomes_an_attempt_with_its_task() -> None:
    entry = {"lease": "L", "task": "t1", "attempt": 2, "payload": {"n": 1},
             "deadline": 1700000000.5, "timeout": 3}  # fmt: skip
    attempt = parse_entry(json.dumps(entry))
    assert attempt is not None and (attempt.lease, attempt.timeout) == ("L", 3.0)
    task = attempt.task
    assert (task.id, task.attempt, task.payload, task.deadline) == ("t1", 2, {"n": 1}, 1700000000.5)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"task": "t"}',
        '{"lease": 1, "task": "t"}',
        '{"lease": "L", "task": "t", "attempt": "2"}',
    ],
)
def test_a_malformed_ready_entry_is_skipped(raw: str) -> None:
    assert parse_entry(raw) is None
    good = b'{"lease": "L", "task": "t", "payload": [1, 2]}'
    found = parse_entries([good, raw.encode(), good])  # the rest of its batch still runs
    assert [(a.lease, a.task.id, a.task.payload) for a in found] == [("L", "t", [1, 2])] * 2


def test_a_batch_of_ready_entries_becomes_its_attempts_in_order() -> None:
    raws = [
        json.dumps({"lease": f"L{i}", "task": f"t{i}", "payload": i}).encode() for i in range(5)
    ]
    found = parse_entries(raws)
    assert [(a.lease, a.task.id, a.task.payload, a.task.attempt) for a in found] == [
        (f"L{i}", f"t{i}", i, 1) for i in range(5)
    ]
    assert parse_entries([b"1,2", raws[0]])[0].lease == "L0"  # not one entry: each on its own


@given(
    task_id=st.text(min_size=1),
    result=json_values,
    runtime=st.floats(min_value=0, max_value=1e6),
    tokens=st.none() | st.integers(min_value=0, max_value=10**9),
)
def test_a_success_is_valid_json_holding_exactly_its_fields(
    task_id: str, result: Any, runtime: float, tokens: int | None
) -> None:
    attempt = Attempt("abc", Task(id=task_id), None)
    if tokens is not None:
        attempt.usage_sink("w", None, Usage(input_tokens=tokens, model="m"))
    outcome = json.loads(succeeded("w1", attempt, result, runtime, 1 << 30))
    usage = None if tokens is None else {"input_tokens": tokens, "output_tokens": None,
                                         "model": "m", "cost": None}  # fmt: skip
    full = {"lease": "abc", "task": task_id, "agent": "w1", "ok": True, "error": None,
            "retryable": True, "retry_after": None, "runtime": runtime, "usage": usage,
            "result": result}  # fmt: skip
    if usage is None:  # a plain success leaves out the fields at their defaults
        full = {k: v for k, v in full.items() if k not in ("error", "retryable", "retry_after",
                                                           "usage")}  # fmt: skip
    assert outcome == full
    assert list(outcome)[:2] == ["lease", "task"]  # report.lua reads these two first


@given(message=st.text(), seconds=st.none() | st.floats(min_value=0, max_value=1e9))
def test_a_failure_is_valid_json_with_its_error_and_retry_hint(
    message: str, seconds: float | None
) -> None:
    error = ValueError(message)
    if seconds is not None:
        error.retry_after = seconds  # type: ignore[attr-defined]
    outcome = json.loads(
        failed("w1", Attempt("L", Task(id="t"), None), classify(error, frozenset()), 1.0)
    )
    assert outcome["ok"] is False and outcome["error"] == f"ValueError: {message}"
    assert outcome["retry_after"] == seconds and outcome["result"] is None


def test_results_that_are_not_json_or_too_long_become_failures() -> None:
    attempt = Attempt("L", Task(id="t"), None)
    for bad, why in ((math.nan, "not JSON-serialisable"), ({1, 2}, "not JSON-serialisable"),
                     ("x" * 50, "exceed --max-result-bytes (10)")):  # fmt: skip
        outcome = json.loads(succeeded("w1", attempt, bad, 0.0, 10))
        assert outcome["ok"] is False and why in outcome["error"]
        assert outcome["retryable"] is False


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(task_id=st.text(min_size=1, max_size=30))
def test_report_lua_accepts_what_the_worker_writes_for_any_task_id(
    sync_redis: Redis, server: RedisServer, task_id: str
) -> None:
    sync_redis.delete(K.leases, K.outcomes, K.counters)
    sync_redis.hset(K.leases, "L1", f"w1 {task_id} 3")
    outcome = succeeded("w1", Attempt("L1", Task(id=task_id), None), [1], 0.1, 1000)
    report = script(sync_redis, "report")
    assert report(keys=[K.leases, K.outcomes, K.counters], args=["w1", outcome]) == 1
    assert sync_redis.lrange(K.outcomes, 0, -1) == [outcome.encode()]
    assert report(keys=[K.leases, K.outcomes, K.counters], args=["w1", outcome]) == 0  # late
    other = succeeded("w1", Attempt("L2", Task(id=task_id + "x"), None), 1, 0.1, 1000)
    sync_redis.hset(K.leases, "L2", f"w1 {task_id} 3")  # a lease of another task
    assert report(keys=[K.leases, K.outcomes, K.counters], args=["w1", other]) == 0
