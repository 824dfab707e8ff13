"""Real coordinator processes on a real redis-server: kill -9 the leader while a standby runs,
and the standby takes over within a few seconds, losing nothing and completing nothing twice;
SIGTERM hands the lease over at once; a leader whose lease is taken exits 3."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.client import Redis

from clusterhelpers import CoordinatorProcess, Worker, collect_replies, rows, submit, wait_until
from redisserver import RedisServer, redis_server
from swarmbalancer.cluster.coordinator import EXIT_LOST
from swarmbalancer.cluster.keys import SwarmKeys

TASKS = 10_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as srv:
        yield srv


def leader_of(coordinators: list[CoordinatorProcess]) -> CoordinatorProcess:
    """The one whose log says it leads (waiting for it)."""

    def leaders() -> list[CoordinatorProcess]:
        return [c for c in coordinators if "leader (epoch" in c.text()]

    wait_until(lambda: bool(leaders()), timeout=60, what="a leader")
    found = leaders()
    assert len(found) == 1, [c.text() for c in coordinators]
    return found[0]


@pytest.mark.timeout(120)
def test_killing_the_leader_hands_the_swarm_to_the_standby_losing_and_repeating_nothing(
    server: RedisServer, tmp_path: Path
) -> None:
    keys = SwarmKeys("failover")
    r = Redis(port=server.port)
    options = ("--lease-ttl", "1.5", "--heartbeat-timeout", "3")
    coordinators = [
        CoordinatorProcess(server.url, keys.swarm_id, tmp_path / f"c{i}.log", *options)
        for i in range(2)
    ]
    workers: list[Worker] = []
    try:
        first = leader_of(coordinators)
        standby = coordinators[1 - coordinators.index(first)]
        workers = [Worker(server.port, keys, f"w{i}", capacity=50).start() for i in range(2)]
        ids = submit(r, keys, list(range(TASKS)), client="c1")
        got = collect_replies(r, keys, "c1", TASKS // 4, timeout=60)
        assert len(got) >= TASKS // 4, "the first leader did not get going"
        first.stop(kill=True)
        killed_at = time.monotonic()
        standby.wait_for("leader (epoch 2)", timeout=30)
        took_over = time.monotonic() - killed_at
        got += collect_replies(r, keys, "c1", TASKS - len(got), timeout=90)
        ran = Counter(t for w in workers for t in w.ran)
    finally:
        for w in workers:
            w.stop()
        for c in coordinators:
            c.stop(kill=True)
    replies = Counter(g["id"] for g in got)
    assert set(replies) == set(ids), f"{len(set(ids) - set(replies))} task(s) lost"
    assert max(replies.values()) == 1, "an outcome was recorded twice"
    states = Counter(row["state"] for row in rows(r, keys).values())
    assert states == {"done": TASKS}, states
    assert all(g["state"] == "done" and g["result"] == int(g["id"][1:]) for g in got)
    assert set(ran) == set(ids)
    twice = sorted(t for t, n in ran.items() if n > 1)
    late = int(r.hget(keys.counters, "late_results") or 0)
    assert took_over < 15, f"the standby took {took_over:.1f}s to take over"
    print(
        f"\nfailover: standby led {took_over:.2f}s after the kill (lease TTL 1.5 s); "
        f"{TASKS} tasks, each completed once; {len(twice)} ran twice (leased by the killed "
        f"leader and not yet recorded done, re-run by the new one); {late} late results "
        "refused or discarded"
    )
    r.close()


@pytest.mark.timeout(60)
def test_sigterm_gives_the_lease_up_and_a_lost_lease_exits_3(
    server: RedisServer, tmp_path: Path
) -> None:
    keys = SwarmKeys("handover")
    r = Redis(port=server.port)
    options = ("--lease-ttl", "30")  # a kill would keep the standby waiting 30 s
    first = CoordinatorProcess(server.url, keys.swarm_id, tmp_path / "a.log", *options)
    second: CoordinatorProcess | None = None
    try:
        first.wait_for("leader (epoch 1)")
        token = r.get(keys.leader)
        second = CoordinatorProcess(server.url, keys.swarm_id, tmp_path / "b.log", *options)
        second.wait_for("standing by")
        assert first.stop() == 0
        assert r.get(keys.leader) != token  # given up, not left to expire
        second.wait_for("leader (epoch 2)", timeout=20)
        r.set(keys.leader, "someone else")  # its lease passed to another process
        assert second.process.wait(timeout=30) == EXIT_LOST
        assert "stepping down" in second.text()
    finally:
        first.stop(kill=True)
        if second is not None:
            second.stop(kill=True)
        r.close()
