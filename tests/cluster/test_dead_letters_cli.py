"""`swarmbalancer dead-letters`: list, requeue some or all, JSON for scripts, errors naming
the option."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from clihelpers import invoke, one_line_error
from redisserver import RedisServer
from swarmbalancer.cluster.keys import SwarmKeys

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)
K = SwarmKeys("t1")


def bury(r: Redis, task_id: str, when: float) -> None:
    row = {"id": task_id, "seq": 1, "state": "failed", "attempt": 3, "payload": {"x": 1},
           "result": None, "error": f"ValueError: {task_id}", "finished_wall": when,
           "client": None}  # fmt: skip
    r.hset(K.tasks, task_id, json.dumps(row))
    r.zadd(K.dead, {task_id: when})
    r.zadd(K.finished, {task_id: when})


def test_it_lists_dead_letters_oldest_first_as_json(server: RedisServer, sync_redis: Redis) -> None:
    bury(sync_redis, "b", 2000.0)
    bury(sync_redis, "a", 1000.0)
    result = invoke("dead-letters", "--store", server.url, "--swarm-id", "t1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "dead_letters": [
            {"id": "a", "attempt": 3, "error": "ValueError: a", "failed_at": 1000.0},
            {"id": "b", "attempt": 3, "error": "ValueError: b", "failed_at": 2000.0},
        ]
    }
    table = invoke("dead-letters", "--store", server.url + "?swarm=t1")
    assert table.exit_code == 0 and "2 dead letter(s)" in table.stdout


def test_requeue_by_id_and_requeue_all(server: RedisServer, sync_redis: Redis) -> None:
    for name in ("a", "b", "c"):
        bury(sync_redis, name, 1.0)
    base = ("dead-letters", "--store", server.url, "--swarm-id", "t1", "--json")
    one = invoke(*base, "--requeue", "a", "--requeue", "zzz")
    assert json.loads(one.stdout) == {"requeued": ["a"], "not_dead_letters": ["zzz"]}
    rest = invoke(*base, "--requeue-all")
    assert json.loads(rest.stdout) == {"requeued": ["b", "c"], "not_dead_letters": []}
    assert sync_redis.lrange(K.inbox, 0, -1) == [b"a", b"b", b"c"]
    assert json.loads(sync_redis.hget(K.tasks, "b"))["state"] == "waiting"
    assert json.loads(invoke(*base).stdout) == {"dead_letters": []}


def test_bad_options_exit_2_naming_them(server: RedisServer) -> None:
    both = invoke("dead-letters", "--store", server.url, "--swarm-id", "t1",
                  "--requeue", "a", "--requeue-all")  # fmt: skip
    assert "--requeue: give task ids or --requeue-all" in one_line_error(both)
    other = invoke("dead-letters", "--store", server.url + "?swarm=a", "--swarm-id", "b")
    assert "swarm_id: 'b' differs" in one_line_error(other)
    bad = invoke("dead-letters", "--store", "mysql://x", "--swarm-id", "t1")
    assert "store: 'mysql://x'" in one_line_error(bad)
