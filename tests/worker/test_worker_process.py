"""`swarmbalancer worker` as a real process against a real redis-server, the leader played with
plain redis commands: running, reporting, timeouts, failures, usage, drain, kill -9, restart."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from edgeprocs import eventually, lease, outcomes, worker_process
from redisserver import RedisServer
from swarmbalancer.cluster.keys import SwarmKeys

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(90)

K = SwarmKeys("t1")
HANDLERS = ["edge_handlers:plain_handler", "edge_handlers:async_handler"]


def registered(r: Redis, agent: str) -> None:
    eventually(lambda: r.hexists(K.agents, agent), what=f"{agent} to register")


def events(r: Redis) -> list[tuple[str, str]]:
    return [(e["event"], e["agent"]) for e in map(json.loads, r.lrange(K.events, 0, -1))]


def test_a_worker_registers_runs_its_leases_and_reports_every_result(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path, capacity=4, extra=("--region", "eu")) as w:
        registered(sync_redis, "w1")
        reg = json.loads(sync_redis.hget(K.agents, "w1"))
        assert reg["capacity"] == 4 and reg["region"] == "eu" and reg["draining"] is False
        assert reg["pid"] == w.process.pid
        leases = lease(sync_redis, K, "w1", [{"n": i} for i in range(50)])
        got = {o["lease"]: o for o in outcomes(sync_redis, K, 50)}
        assert set(got) == set(leases)
        for i, lease_id in enumerate(leases):
            o = got[lease_id]
            assert (o["ok"], o["result"], o.get("error")) == (True, 2 * i, None)
            assert o["task"] == f"task-{lease_id}" and o["agent"] == "w1" and "usage" not in o
            assert o["runtime"] >= 0
        assert (
            sync_redis.hlen(K.leases) == 0 and sync_redis.hget(K.counters, "late_results") is None
        )
        before = float(sync_redis.hget(K.beats, "w1"))
        eventually(lambda: float(sync_redis.hget(K.beats, "w1")) > before, what="a heartbeat")


def test_an_async_handler_runs_as_many_tasks_at_once_as_the_capacity(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    lease(sync_redis, K, "w1", [{"do": "peak", "sleep": 0.5}] * 8)  # waiting before it starts
    with worker_process(server.url, "w1", tmp_path, handler=HANDLERS[1], capacity=8):
        assert [o["result"] for o in outcomes(sync_redis, K, 8)] == [8] * 8


@pytest.mark.parametrize("handler", HANDLERS)
def test_failures_non_json_results_and_usage_become_outcomes(
    server: RedisServer, sync_redis: Redis, tmp_path: Path, handler: str
) -> None:
    payloads = [
        {"do": "fail", "n": 1},
        {"do": "never"},
        {"do": "rest"},
        {"do": "object"},
        {"do": "big", "size": 200},
        {"do": "usage"},
        {"do": "double", "n": 21},
        {"do": "own-timeout"},
    ]
    extra = ("--max-result-bytes", "100")
    with worker_process(server.url, "w1", tmp_path, handler=handler, extra=extra) as w:
        ids = lease(sync_redis, K, "w1", payloads)
        got = {o["lease"]: o for o in outcomes(sync_redis, K, len(ids))}
        fail, never, rest, obj, big, usage, double, own = (got[i] for i in ids)
        assert (fail["ok"], fail["error"], fail["retryable"]) == (False, "ValueError: bad 1", True)
        assert (never["error"], never["retryable"]) == ("KeyError: 'gone'", False)
        assert (rest["retryable"], rest["retry_after"]) == (True, 2.5)
        assert not obj["ok"] and "not JSON-serialisable" in obj["error"]
        assert obj["retryable"] is False and obj["result"] is None
        assert "exceed --max-result-bytes (100)" in big["error"]
        assert usage["result"] == "metered"
        assert usage["usage"] == {"input_tokens": 6, "output_tokens": 8, "model": "m1", "cost": 0.5}
        assert double["result"] == 42
        assert own["result"] == "in a task"  # asyncio.timeout works inside a handler
        assert w.process.poll() is None  # none of it stopped the worker


def test_an_async_task_past_its_timeout_is_reported_as_a_retryable_timeout(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path, handler=HANDLERS[1], capacity=1):
        [slow] = lease(sync_redis, K, "w1", [{"do": "double", "n": 1, "sleep": 30}], timeout=0.3)
        [o] = outcomes(sync_redis, K, 1)
        assert o["lease"] == slow and o["ok"] is False and o["retryable"] is True
        assert o["error"].startswith("TimeoutError: no result after 0.3s")
        lease(sync_redis, K, "w1", [{"n": 2}])  # the slot is free again
        assert outcomes(sync_redis, K, 1)[0]["result"] == 4


def test_a_plain_task_past_its_timeout_is_reported_and_its_late_return_discarded(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path, capacity=1) as w:
        lease(sync_redis, K, "w1", [{"do": "double", "n": 1, "sleep": 1.5}], timeout=0.3)
        [o] = outcomes(sync_redis, K, 1)
        assert o["error"].startswith("TimeoutError") and o["retryable"] is True
        # the thread still holds the only slot: this task runs after it returned
        lease(sync_redis, K, "w1", [{"n": 2}])
        [after] = outcomes(sync_redis, K, 1)
        assert after["result"] == 4
        assert sync_redis.llen(K.outcomes) == 0  # the late return was never reported
        assert sync_redis.hget(K.counters, "late_results") is None
        eventually(lambda: "result discarded" in w.output(), what="the discard to be logged")


@pytest.mark.parametrize("handler", HANDLERS)
def test_sigterm_drains_runs_everything_taken_and_left_reports_deregisters_and_exits_0(
    server: RedisServer, sync_redis: Redis, tmp_path: Path, handler: str
) -> None:
    with worker_process(server.url, "w1", tmp_path, handler=handler, capacity=4) as w:
        registered(sync_redis, "w1")
        ids = lease(sync_redis, K, "w1", [{"n": i, "sleep": 0.2} for i in range(30)])
        first = outcomes(sync_redis, K, 1)  # running now, most still in the ready list
        w.process.send_signal(signal.SIGTERM)
        assert w.process.wait(timeout=60) == 0, w.output()
        rest = outcomes(sync_redis, K, 29, timeout=1)
        assert sorted(o["lease"] for o in first + rest) == sorted(ids)
        assert all(o["ok"] for o in first + rest)
        assert sync_redis.hlen(K.leases) == 0 and sync_redis.llen(K.ready("w1")) == 0
        assert not sync_redis.hexists(K.agents, "w1") and not sync_redis.hexists(K.beats, "w1")
        assert events(sync_redis) == [("register", "w1"), ("drain", "w1"), ("deregister", "w1")]


def test_a_worker_killed_9_leaves_its_unreported_leases_for_the_leader_to_expire(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path, capacity=2) as w:
        registered(sync_redis, "w1")
        ids = lease(sync_redis, K, "w1", [{"n": i, "sleep": 30} for i in range(6)])
        eventually(lambda: sync_redis.llen(K.ready("w1")) == 4, what="two tasks to be taken")
        w.process.kill()
        w.process.wait(timeout=10)
    assert set(sync_redis.hkeys(K.leases)) == {i.encode() for i in ids}
    assert sync_redis.llen(K.outcomes) == 0 and sync_redis.llen(K.ready("w1")) == 4
    assert sync_redis.hexists(K.agents, "w1")  # the leader finds it lost by its beats


def test_a_worker_outlives_a_redis_restart_and_reports_afterwards(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path, capacity=4) as w:
        registered(sync_redis, "w1")
        lease(sync_redis, K, "w1", [{"n": i} for i in range(10)])
        assert len(outcomes(sync_redis, K, 10)) == 10
        sync_redis.close()
        server.stop()
        time.sleep(4)  # longer than redis-py's own retries: the worker's loops must wait it out
        server.start()
        again = Redis.from_url(server.url)
        try:
            ids = lease(again, K, "w1", [{"n": i} for i in range(10)])
            got = outcomes(again, K, 10, timeout=60)
            assert sorted(o["lease"] for o in got) == sorted(ids), w.output()
            assert all(o["ok"] for o in got)
            stamp = float(again.hget(K.beats, "w1") or 0)
            eventually(lambda: float(again.hget(K.beats, "w1") or 0) > stamp, what="a beat")
            w.process.send_signal(signal.SIGTERM)
            assert w.process.wait(timeout=30) == 0, w.output()
        finally:
            again.close()


def test_a_second_process_with_a_live_agents_id_exits_2_naming_the_id(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    with worker_process(server.url, "w1", tmp_path) as first:
        registered(sync_redis, "w1")
        with worker_process(server.url, "w1", tmp_path) as second:
            assert second.process.wait(timeout=30) == 2
            assert "--id: agent 'w1' is registered by another live process" in second.output()
        assert first.process.poll() is None


def test_a_worker_warns_when_redis_may_lose_or_evict_the_swarms_state(
    server: RedisServer, sync_redis: Redis, tmp_path: Path
) -> None:
    sync_redis.config_set("maxmemory-policy", "allkeys-lru")
    sync_redis.config_set("appendonly", "no")
    try:
        with worker_process(server.url, "w1", tmp_path) as w:
            registered(sync_redis, "w1")
            assert "maxmemory-policy allkeys-lru" in w.output()
            assert "appendonly no" in w.output()
    finally:
        sync_redis.config_set("maxmemory-policy", "noeviction")
        sync_redis.config_set("appendonly", "yes")
