"""The coordinator on a real redis-server, run in-process, with workers and clients written
from the wire formats (tests/clusterhelpers.py): tasks run once and reply once, failures retry
or go to the dead letters, lost and restarted workers give their tasks back, a takeover
re-runs what the previous leader left, a lost lease stops the leader at once."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from redis.client import Redis

from clusterhelpers import (
    InProcessCoordinator,
    Worker,
    collect_replies,
    held,
    outcome,
    report,
    rows,
    submit,
    wait_until,
)
from redisserver import RedisServer, redis_server
from swarmbalancer.cluster.coordinator import EXIT_LOST
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.config import BalancerConfig

pytestmark = pytest.mark.timeout(60)

_swarms = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as srv:
        yield srv


@pytest.fixture
def r(server: RedisServer) -> Iterator[Redis]:
    client = Redis(port=server.port)
    yield client
    client.close()


@pytest.fixture
def keys() -> SwarmKeys:
    return SwarmKeys(f"k{next(_swarms)}")


def joined(r: Redis, keys: SwarmKeys, agent: str) -> None:
    """Wait until the leader's report lists `agent` (written every second)."""

    def listed() -> bool:
        report = json.loads(r.get(keys.report) or "{}")
        return any(row["id"] == agent for row in report.get("per_agent", []))

    wait_until(listed, timeout=15, what=f"{agent} in the report")


class Swarm:
    """A coordinator and workers on one swarm, stopped whatever happens."""

    def __init__(self, server: RedisServer, keys: SwarmKeys) -> None:
        self.server, self.keys = server, keys
        self.workers: list[Worker] = []
        self.coordinators: list[InProcessCoordinator] = []

    def coordinator(self, *, leader: bool = True, **options: Any) -> InProcessCoordinator:
        options.setdefault("lease_ttl", 2.0)
        options.setdefault("heartbeat_timeout", 1.0)
        options.setdefault("config", BalancerConfig(park_timeout=None, retry_backoff=0.0))
        c = InProcessCoordinator(self.server.url, self.keys.swarm_id, **options)
        self.coordinators.append(c)
        return c.start(leader=leader)

    def worker(self, agent: str, **options: Any) -> Worker:
        w = Worker(self.server.port, self.keys, agent, **options).start()
        self.workers.append(w)
        return w

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        for c in self.coordinators:
            c.stop()


@pytest.fixture
def swarm(server: RedisServer, keys: SwarmKeys) -> Iterator[Swarm]:
    s = Swarm(server, keys)
    try:
        yield s
    finally:
        s.close()


def test_submitted_tasks_run_on_the_workers_and_each_reply_comes_once(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    a, b = swarm.worker("a", capacity=8), swarm.worker("b", capacity=8)
    ids = submit(r, keys, [{"n": i} for i in range(300)], client="c1")
    got = collect_replies(r, keys, "c1", len(ids), timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert all(g["state"] == "done" and g["result"] == {"n": int(g["id"][1:])} for g in got)
    assert Counter(a.ran + b.ran) == Counter(ids)  # each ran exactly once
    assert a.ran and b.ran
    after = rows(r, keys)
    assert {row["state"] for row in after.values()} == {"done"}
    assert all(r.zscore(keys.finished, i) is not None for i in ids)
    wait_until(lambda: json.loads(r.get(keys.report) or "{}").get("completed") == 300, 10)
    assert held(r, keys) == [] and r.llen(keys.inbox) == 0


def test_failures_are_retried_and_a_non_retryable_one_is_a_dead_letter(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    tries: Counter[str] = Counter()

    def flaky(entry: dict[str, Any]) -> dict[str, Any]:
        tries[entry["task"]] += 1
        if entry["payload"] == "poison":
            return {"error": "ValueError: poison", "retryable": False}
        if entry["payload"] == "flaky" and entry["attempt"] == 1:
            return {"error": "boom"}
        return {"result": entry["attempt"]}

    swarm.coordinator()
    swarm.worker("a", handle=flaky)
    ids = submit(r, keys, ["poison", "flaky", "fine"], client="c1")
    got = {g["id"]: g for g in collect_replies(r, keys, "c1", 3, timeout=30)}
    assert got[ids[0]]["state"] == "failed" and "poison" in got[ids[0]]["error"]
    assert got[ids[1]] == {"id": ids[1], "state": "done", "result": 2, "error": None, "attempt": 2}
    assert got[ids[2]]["result"] == 1
    assert tries == {ids[0]: 1, ids[1]: 2, ids[2]: 1}
    assert r.zrange(keys.dead, 0, -1) == [ids[0].encode()]
    assert rows(r, keys)[ids[0]]["state"] == "failed"


def test_a_worker_that_stops_beating_gives_its_tasks_back_and_its_late_reports_are_refused(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    dead = swarm.worker("dead", capacity=50, running=False)  # what it is given waits
    ids = submit(r, keys, list(range(20)), client="c1")
    wait_until(lambda: r.llen(keys.ready("dead")) == 20, what="leases to the dead worker")
    held = [json.loads(e) for e in r.lrange(keys.ready("dead"), 0, -1)]
    r.delete(keys.ready("dead"))  # it took them, then died
    dead.beating = False
    alive = swarm.worker("alive", capacity=50)
    got = collect_replies(r, keys, "c1", 20, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert sorted(alive.ran) == sorted(ids)
    assert all(g["attempt"] == 2 for g in got)  # the lost attempt counted
    accepted = report(r, keys, "dead", [outcome(e, "dead", result="late") for e in held])
    assert accepted == 0 and int(r.hget(keys.counters, "late_results") or 0) == 20
    assert {row["result"] for row in rows(r, keys).values()} == set(range(20))


def test_a_worker_restarted_under_the_same_id_gets_its_lost_attempts_again(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    first = swarm.worker("w", capacity=10, pid=1, running=False)
    ids = submit(r, keys, list(range(10)), client="c1")
    wait_until(lambda: r.llen(keys.ready("w")) == 10, what="leases")
    r.delete(keys.ready("w"))  # taken by the first process, which then died
    first.stop()
    second = swarm.worker("w", capacity=10, pid=2)
    got = collect_replies(r, keys, "c1", 10, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert sorted(second.ran) == sorted(ids)


def test_a_drained_worker_finishes_what_it_holds_and_gets_nothing_more(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    leaving = swarm.worker("leaving", capacity=5, running=False)
    submit(r, keys, list(range(5)), client="c1", prefix="first")
    wait_until(lambda: r.llen(keys.ready("leaving")) == 5, what="leases")
    r.rpush(keys.events, json.dumps({"event": "drain", "agent": "leaving"}))
    wait_until(lambda: r.llen(keys.events) == 0, what="the drain to be taken")
    time.sleep(0.2)  # and applied: the leader does so as it takes it
    staying = swarm.worker("staying", capacity=5)
    ids = submit(r, keys, list(range(5)), client="c1", prefix="second")
    got = collect_replies(r, keys, "c1", 5, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids) and sorted(staying.ran) == sorted(ids)
    leaving.running = True  # it reports what it held, then leaves
    got = collect_replies(r, keys, "c1", 5, timeout=30)
    assert sorted(g["id"] for g in got) == [f"first{i}" for i in range(5)]
    r.rpush(keys.events, json.dumps({"event": "deregister", "agent": "leaving"}))
    more = submit(r, keys, list(range(5)), client="c1", prefix="third")
    got = collect_replies(r, keys, "c1", 5, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(more)
    assert not set(more) & set(leaving.ran)


def test_a_new_leader_reruns_what_the_previous_one_left_and_voids_its_leases(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    old = swarm.coordinator()
    w = swarm.worker("w", capacity=10, running=False)
    ids = submit(r, keys, list(range(10)), client="c1")
    wait_until(lambda: r.llen(keys.ready("w")) == 10, what="leases")
    wait_until(lambda: {row["state"] for row in rows(r, keys).values()} == {"running"}, what="rows")
    stale = [json.loads(e) for e in r.lrange(keys.ready("w"), 0, -1)]
    assert old.stop() == 0
    assert not r.exists(keys.leader)  # given up: the next leader need not wait
    swarm.coordinator()
    w.running = True
    got = collect_replies(r, keys, "c1", 10, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert all(g["attempt"] == 2 for g in got)
    assert int(r.get(keys.epoch) or 0) == 2
    assert report(r, keys, "w", [outcome(e, "w", result="stale") for e in stale]) == 0


def test_a_leader_whose_lease_is_taken_steps_down_and_writes_nothing_more(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    leader = swarm.coordinator(lease_ttl=1.5)
    w = swarm.worker("w", capacity=10, running=False)
    submit(r, keys, list(range(5)), client="c1")
    wait_until(lambda: r.llen(keys.ready("w")) == 5, what="leases")
    r.set(keys.leader, "another process", px=60_000)  # as if its lease had passed
    wait_until(lambda: leader.code is not None, timeout=10, what="stepping down")
    assert leader.stop() == EXIT_LOST
    before = rows(r, keys)
    w.running = True
    wait_until(lambda: r.llen(keys.ready("w")) == 0, what="the worker to take its leases")
    time.sleep(0.3)
    assert r.llen(keys.outcomes) == 5  # reported, but nobody writes them
    assert rows(r, keys) == before
    assert r.get(keys.leader) == b"another process"


def test_a_task_no_worker_can_ever_take_fails_with_a_reply(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    swarm.worker("w", region="eu")
    joined(r, keys, "w")  # with no agent at all, the task would wait for one
    (task_id,) = submit(r, keys, [1], client="c1", affinity="mars")
    (got,) = collect_replies(r, keys, "c1", 1, timeout=30)
    assert got["id"] == task_id and got["state"] == "failed" and "rejected" in got["error"]
    assert r.zscore(keys.dead, task_id) is not None


def test_tasks_wait_for_a_worker_and_reported_usage_reaches_the_report(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    ids = submit(r, keys, list(range(3)), client="c1", tenant="acme")
    time.sleep(0.5)  # no worker yet: they wait
    assert r.llen(keys.reply("c1")) == 0
    usage = {"input_tokens": 10, "output_tokens": 5, "model": "m", "cost": 0.5}
    swarm.worker("w", handle=lambda e: {"result": 1, "usage": usage})
    assert len(collect_replies(r, keys, "c1", len(ids), timeout=30)) == 3

    def tokens() -> Any:
        return json.loads(r.get(keys.report) or "{}").get("token_usage") or {}

    wait_until(lambda: tokens().get("input_tokens") == 30, 10, what="usage")
    assert tokens()["per_tenant"]["acme"]["cost"] == pytest.approx(1.5)


def test_a_new_leader_takes_the_live_workers_but_not_a_draining_or_silent_one(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    live = swarm.worker("live", capacity=5)
    swarm.worker("draining", capacity=5, draining=True)
    silent = Worker(swarm.server.port, keys, "silent", capacity=5)
    silent.beating = False  # before its thread starts, which would beat at once otherwise
    swarm.workers.append(silent.start())
    r.hset(keys.beats, "silent", 1.0)  # its last beat, long ago
    r.delete(keys.events)  # registered under an earlier leader: no notices left
    swarm.coordinator()
    ids = submit(r, keys, list(range(30)), client="c1")
    assert len(collect_replies(r, keys, "c1", 30, timeout=30)) == 30
    assert sorted(live.ran) == sorted(ids)


def test_malformed_rows_and_events_are_skipped_and_the_rest_run(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator()
    swarm.worker("w")
    r.hset(keys.tasks, mapping={"bad1": "not json", "bad2": "[1, 2]", "bad3": '{"id": "bad3"}'})
    r.rpush(keys.inbox, "bad1", "bad2", "bad3", "missing")
    r.rpush(keys.events, "not json", json.dumps({"event": "explode", "agent": "w"}))
    ids = submit(r, keys, [1, 2], client="c1")
    got = collect_replies(r, keys, "c1", 2, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert r.hget(keys.tasks, "bad3") == b'{"id": "bad3"}'  # left as it is


def ahead_config() -> BalancerConfig:
    return BalancerConfig(park_timeout=None, retry_backoff=0.0, prefetch=1)


def test_a_worker_holds_one_lease_per_slot_ahead_and_each_task_runs_once(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator(config=ahead_config())
    w = swarm.worker("w", capacity=2, running=False)
    joined(r, keys, "w")
    ids = submit(r, keys, list(range(10)), client="c1")
    wait_until(lambda: r.llen(keys.ready("w")) == 4, what="2 leases to run, 2 ahead")
    time.sleep(0.3)
    assert r.llen(keys.ready("w")) == 4 and len(held(r, keys)) == 4  # no more than that
    w.running = True
    got = collect_replies(r, keys, "c1", 10, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert all(g["state"] == "done" and g["attempt"] == 1 for g in got)
    assert Counter(w.ran) == Counter(ids)  # each ran once, its lease handed out once
    assert held(r, keys) == [] and r.llen(keys.ready("w")) == 0


def test_a_lease_ahead_whose_task_goes_elsewhere_is_taken_back_or_its_late_report_refused(
    swarm: Swarm, r: Redis, keys: SwarmKeys
) -> None:
    swarm.coordinator(config=ahead_config())
    swarm.worker("leaving", capacity=1, running=False)
    joined(r, keys, "leaving")
    ids = submit(r, keys, list(range(4)), client="c1")
    wait_until(lambda: r.llen(keys.ready("leaving")) == 2, what="one lease to run, one ahead")
    first, second = (json.loads(e) for e in r.lrange(keys.ready("leaving"), 0, -1))
    assert rows(r, keys)[first["task"]]["state"] == "running"  # started, then the one ahead
    assert rows(r, keys)[second["task"]]["state"] == "waiting"
    running, ahead = first, second
    r.lpop(keys.ready("leaving"))  # it took the first; the one ahead is still in its list
    r.rpush(keys.events, json.dumps({"event": "drain", "agent": "leaving"}))
    wait_until(lambda: r.llen(keys.ready("leaving")) == 0, what="the lease ahead taken back")
    assert r.hexists(keys.leases, ahead["lease"]) == 0
    assert r.hexists(keys.leases, running["lease"]) == 1
    staying = swarm.worker("staying", capacity=2)
    got = collect_replies(r, keys, "c1", 3, timeout=30)
    assert sorted(g["id"] for g in got) == sorted(i for i in ids if i != running["task"])
    assert ahead["task"] in staying.ran
    # the leaving worker reports what it ran: its running lease counts, a stale one would not
    assert report(r, keys, "leaving", [outcome(ahead, "leaving", result="stale")]) == 0
    assert report(r, keys, "leaving", [outcome(running, "leaving", result=0)]) == 1
    got = collect_replies(r, keys, "c1", 1, timeout=30)
    assert [g["id"] for g in got] == [running["task"]]
    assert Counter(staying.ran)[ahead["task"]] == 1
    assert {row["state"] for row in rows(r, keys).values()} == {"done"}
