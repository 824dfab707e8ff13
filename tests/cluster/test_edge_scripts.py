"""The edge's Lua scripts against a real redis-server: submit, report, register, requeue."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.exceptions import ResponseError

from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.rows import SEQ_HEAD, new_row
from swarmbalancer.cluster.scripts import script
from swarmbalancer.model import Task

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(60)
K = SwarmKeys("t1")
#: each example empties the keys it uses, so sharing the function-scoped server is fine
FIXTURE_REUSE = HealthCheck.function_scoped_fixture

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def row(
    task_id: str, payload: Any = None, key: str | None = None, client: str | None = None
) -> str:
    task = Task.create(payload, now=100.0, task_id=task_id, idempotency_key=key)
    return new_row(task, client=None, wall=1000.0, max_payload_bytes=1 << 20)


def submit(r: Redis, *rows: str) -> list[tuple[str, int]]:
    """Send rows as the client does (id, key, row tail); (id, code) per row back."""
    args: list[str] = []
    for text in rows:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {}
        key = parsed.get("key")
        args += (parsed.get("id", ""), "" if key is None else "=" + key, text[len(SEQ_HEAD) :])
    reply = script(r, "submit")(keys=[K.seq, K.tasks, K.idem, K.inbox], args=args)
    return pairs(args, reply)


def pairs(args: list[str], reply: list[Any]) -> list[tuple[str, int]]:
    codes, existing = reply[0].decode(), iter(reply[1:])
    names = {"1": 1, "0": 0, "x": -1, "m": -2}
    return [
        (next(existing).decode() if code == "0" else args[3 * i], names[code])
        for i, code in enumerate(codes)
    ]


def report(r: Redis, agent: str, *outcomes: dict[str, Any]) -> int:
    args = [agent, *(json.dumps(o) for o in outcomes)]
    return int(script(r, "report")(keys=[K.leases, K.outcomes, K.counters], args=args))


def register(r: Redis, agent: str, action: str, reg: dict[str, Any] | None = None) -> Any:
    text = json.dumps(reg or {"id": agent, "host": "h", "pid": 1, "draining": False})
    keys = [K.agents, K.beats, K.events, K.ready(agent)]
    return script(r, "register")(keys=keys, args=[agent, action, text, 3.0])


def requeue(r: Redis, *ids: str) -> list[str]:
    keys = [K.tasks, K.dead, K.inbox, K.finished, K.counters]
    return [i.decode() for i in script(r, "requeue")(keys=keys, args=list(ids))]


def stored(r: Redis, task_id: str) -> dict[str, Any]:
    return json.loads(r.hget(K.tasks, task_id))


# submit.lua


def test_submit_stores_rows_with_increasing_seq_and_queues_their_ids_in_order(
    sync_redis: Redis,
) -> None:
    assert submit(sync_redis, row("a"), row("b"), row("c")) == [("a", 1), ("b", 1), ("c", 1)]
    assert [stored(sync_redis, i)["seq"] for i in "abc"] == [1, 2, 3]
    assert sync_redis.lrange(K.inbox, 0, -1) == [b"a", b"b", b"c"]
    assert stored(sync_redis, "a")["state"] == "waiting"


def test_a_repeated_idempotency_key_returns_the_first_task_without_a_new_row(
    sync_redis: Redis,
) -> None:
    assert submit(sync_redis, row("a", key="k"), row("b", key="k")) == [("a", 1), ("a", 0)]
    assert submit(sync_redis, row("c", key="k")) == [("a", 0)]
    assert sync_redis.hlen(K.tasks) == 1 and sync_redis.lrange(K.inbox, 0, -1) == [b"a"]
    assert sync_redis.hget(K.idem, "k") == b"a"


def test_an_id_in_use_refuses_that_row_only(sync_redis: Redis) -> None:
    submit(sync_redis, row("a", payload=1))
    assert submit(sync_redis, row("b"), row("a", payload=2), row("c")) == [
        ("b", 1),
        ("a", -1),
        ("c", 1),
    ]
    assert stored(sync_redis, "a")["payload"] == 1
    assert sync_redis.lrange(K.inbox, 0, -1) == [b"a", b"b", b"c"]


def test_a_malformed_row_is_refused_and_the_others_accepted(sync_redis: Redis) -> None:
    assert submit(sync_redis, "not json but long enough", '{"id":"x"}', row("a")) == [
        ("", -2),
        ("x", -2),
        ("a", 1),
    ]
    assert sync_redis.hkeys(K.tasks) == [b"a"]


def test_a_key_given_twice_in_one_call_names_the_first_task(sync_redis: Redis) -> None:
    assert submit(sync_redis, row("a", key="k"), row("b"), row("c", key="k"), row("b")) == [
        ("a", 1),
        ("b", 1),
        ("a", 0),
        ("b", -1),
    ]
    assert [stored(sync_redis, i)["seq"] for i in "ab"] == [1, 2]
    assert sync_redis.get(K.seq) == b"2" and sync_redis.lrange(K.inbox, 0, -1) == [b"a", b"b"]


def test_an_empty_idempotency_key_is_a_key(sync_redis: Redis) -> None:
    assert submit(sync_redis, row("a", key=""), row("b", key="")) == [("a", 1), ("a", 0)]
    assert sync_redis.hget(K.idem, "") == b"a"


def test_submit_takes_only_whole_triples(sync_redis: Redis) -> None:
    with pytest.raises(ResponseError, match="triples"):
        script(sync_redis, "submit")(keys=[K.seq, K.tasks, K.idem, K.inbox], args=["a", ""])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=json_values)
def test_a_payload_is_stored_byte_for_byte(sync_redis: Redis, payload: Any) -> None:
    sync_redis.delete(K.tasks, K.inbox)
    text = row("p", payload=payload)
    submit(sync_redis, text)
    got = sync_redis.hget(K.tasks, "p").decode()
    assert got == text.replace('"seq":0,', f'"seq":{stored(sync_redis, "p")["seq"]},', 1)
    assert json.loads(got)["payload"] == payload


# report.lua


def lease(r: Redis, lease_id: str, agent: str, task: str, epoch: int = 1) -> None:
    r.hset(K.leases, lease_id, f"{agent} {task} {epoch}")


def outcome(lease_id: str, task: str, agent: str, result: Any = 1) -> dict[str, Any]:
    return {"lease": lease_id, "task": task, "agent": agent, "ok": True, "result": result,
            "error": None, "retryable": True, "retry_after": None, "runtime": 0.1,
            "usage": None}  # fmt: skip


def test_a_report_under_its_own_lease_is_kept_verbatim_and_ends_the_lease(
    sync_redis: Redis,
) -> None:
    lease(sync_redis, "L1", "w1", "task one")  # task ids may hold spaces
    lease(sync_redis, "L2", "w1", "t2")
    o1, o2 = outcome("L1", "task one", "w1", 2**70), outcome("L2", "t2", "w1")
    assert report(sync_redis, "w1", o1, o2) == 2
    assert sync_redis.hlen(K.leases) == 0
    assert [json.loads(x) for x in sync_redis.lrange(K.outcomes, 0, -1)] == [o1, o2]
    assert sync_redis.hget(K.counters, "late_results") is None


def test_late_foreign_and_repeated_reports_are_discarded_and_counted(sync_redis: Redis) -> None:
    lease(sync_redis, "mine", "w1", "t1")
    lease(sync_redis, "theirs", "w2", "t2")
    lease(sync_redis, "other-task", "w1", "t3")
    assert report(sync_redis, "w1", outcome("mine", "t1", "w1")) == 1
    kept = report(
        sync_redis,
        "w1",
        outcome("mine", "t1", "w1"),  # reported twice
        outcome("theirs", "t2", "w1"),  # another worker's lease
        outcome("gone", "t4", "w1"),  # expired: the leader deleted it
        outcome("other-task", "t9", "w1"),  # a lease of another task
    )
    assert kept == 0
    assert sync_redis.hget(K.counters, "late_results") == b"4"
    assert sync_redis.llen(K.outcomes) == 1
    assert set(sync_redis.hkeys(K.leases)) == {b"theirs", b"other-task"}


def test_a_lease_must_name_exactly_this_agent_and_task(sync_redis: Redis) -> None:
    lease(sync_redis, "a", "w10", "t1")  # an agent whose id starts with the reporter's
    lease(sync_redis, "b", "w1", "t10")  # a task whose id starts with the reported one
    lease(sync_redis, "c", "w1", "t1 x")  # a task id that goes on past a space
    lease(sync_redis, "d", "w1", "t1")
    kept = report(
        sync_redis,
        "w1",
        outcome("a", "t1", "w1"),
        outcome("b", "t1", "w1"),
        outcome("c", "t1", "w1"),
        outcome("d", "t1", "w1"),
        outcome("d", "t1", "w1"),  # the same lease twice in one call: the second is late
    )
    assert kept == 1 and sync_redis.hget(K.counters, "late_results") == b"4"
    assert sorted(sync_redis.hkeys(K.leases)) == [b"a", b"b", b"c"]


def test_a_malformed_outcome_counts_as_late(sync_redis: Redis) -> None:
    kept = script(sync_redis, "report")(keys=[K.leases, K.outcomes, K.counters], args=["w", "{"])
    assert kept == 0 and sync_redis.hget(K.counters, "late_results") == b"1"


# register.lua


def test_register_writes_the_agent_its_beat_in_redis_time_and_an_event(
    sync_redis: Redis,
) -> None:
    assert register(sync_redis, "w1", "register") == 1
    assert json.loads(sync_redis.hget(K.agents, "w1"))["id"] == "w1"
    sec, usec = sync_redis.time()
    assert abs(float(sync_redis.hget(K.beats, "w1")) - (sec + usec / 1e6)) < 5
    assert json.loads(sync_redis.lpop(K.events)) == {"event": "register", "agent": "w1"}


def test_a_beat_of_an_unknown_agent_asks_it_to_register_again(sync_redis: Redis) -> None:
    assert register(sync_redis, "w1", "beat") == 0
    assert not sync_redis.hexists(K.beats, "w1")
    register(sync_redis, "w1", "register")
    sync_redis.hset(K.beats, "w1", "1.0")
    assert register(sync_redis, "w1", "beat") == 1
    assert float(sync_redis.hget(K.beats, "w1")) > 1e9


def test_a_live_registration_of_another_process_refuses_the_id(sync_redis: Redis) -> None:
    mine = {"id": "w1", "host": "h", "pid": 1, "draining": False}
    other = {"id": "w1", "host": "h", "pid": 2, "draining": False}
    register(sync_redis, "w1", "register", mine)
    assert register(sync_redis, "w1", "register", mine) == 1  # the same process again
    refused = register(sync_redis, "w1", "register", other)
    assert refused[0] == 0 and float(refused[1]) < 3
    sync_redis.hset(K.beats, "w1", str(time.time() - 60))  # its beats stopped: stale
    assert register(sync_redis, "w1", "register", other) == 1


def test_drain_marks_the_agent_draining_and_tells_the_leader(sync_redis: Redis) -> None:
    register(sync_redis, "w1", "register")
    reg = {"id": "w1", "host": "h", "pid": 1, "draining": True}
    assert register(sync_redis, "w1", "drain", reg) == 1
    assert json.loads(sync_redis.hget(K.agents, "w1"))["draining"] is True
    events = [json.loads(e) for e in sync_redis.lrange(K.events, 0, -1)]
    assert [e["event"] for e in events] == ["register", "drain"]


def test_deregister_hands_back_leases_left_in_the_ready_list_before_leaving(
    sync_redis: Redis,
) -> None:
    register(sync_redis, "w1", "register")
    sync_redis.rpush(K.ready("w1"), "e1", "e2")
    assert register(sync_redis, "w1", "deregister") == [b"e1", b"e2"]
    assert sync_redis.hexists(K.agents, "w1") and sync_redis.llen(K.ready("w1")) == 0
    assert register(sync_redis, "w1", "deregister") == []
    assert not sync_redis.hexists(K.agents, "w1") and not sync_redis.hexists(K.beats, "w1")
    assert json.loads(sync_redis.lrange(K.events, -1, -1)[0])["event"] == "deregister"


# requeue.lua


def dead_row(r: Redis, task_id: str, text: str) -> None:
    r.hset(K.tasks, task_id, text)
    r.zadd(K.dead, {task_id: 5.0})
    r.zadd(K.finished, {task_id: 5.0})


def test_requeue_resets_a_dead_letter_and_queues_it_again(sync_redis: Redis) -> None:
    text = (
        '{"id":"d1","seq":7,"state":"failed","attempt":3,"payload":{"state":"failed",'
        '"s":"a \\"quoted\\" } ] {","n":12345678901234567890123,"f":0.1},"result":null,'
        '"error":"ValueError: x","finished_wall":5.0,"client":"c1","max_retries":2}'
    )
    dead_row(sync_redis, "d1", text)
    assert requeue(sync_redis, "d1", "not-dead") == ["d1"]
    got = sync_redis.hget(K.tasks, "d1").decode()
    assert json.loads(got) == {**json.loads(text), "state": "waiting", "attempt": 0,
                               "error": None, "finished_wall": None}  # fmt: skip
    assert '"n":12345678901234567890123' in got and '"f":0.1' in got  # digits kept
    assert sync_redis.lrange(K.inbox, 0, -1) == [b"d1"]
    assert sync_redis.zcard(K.dead) == 0 and sync_redis.zcard(K.finished) == 0
    assert sync_redis.hget(K.counters, "requeued") == b"1"
    assert requeue(sync_redis, "d1") == []  # no longer a dead letter


def test_requeue_reads_rows_with_spaces_between_tokens(sync_redis: Redis) -> None:
    dead_row(sync_redis, "d", '{ "id" : "d", "state" : "failed" , "attempt" : 2 , "x" : [1, 2] }')
    assert requeue(sync_redis, "d") == ["d"]
    assert json.loads(sync_redis.hget(K.tasks, "d")) == {
        "id": "d",
        "state": "waiting",
        "attempt": 0,
        "x": [1, 2],
    }


def test_requeue_skips_a_dead_letter_whose_row_is_gone(sync_redis: Redis) -> None:
    sync_redis.zadd(K.dead, {"gone": 1.0})
    assert requeue(sync_redis, "gone") == []
    assert sync_redis.llen(K.inbox) == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_requeue_changes_exactly_the_reset_fields_of_any_row(
    sync_redis: Redis, fields: dict[str, Any]
) -> None:
    sync_redis.delete(K.tasks, K.dead, K.finished, K.inbox)
    original = {**fields, "state": "failed", "attempt": 3}
    dead_row(sync_redis, "r", json.dumps(original, separators=(",", ":")))
    assert requeue(sync_redis, "r") == ["r"]
    expected = {**original, "state": "waiting", "attempt": 0}
    for name in ("error", "result", "finished_wall"):
        if name in expected:
            expected[name] = None
    assert json.loads(sync_redis.hget(K.tasks, "r")) == expected
