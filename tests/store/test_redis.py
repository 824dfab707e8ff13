"""The Redis store: the store contract on a real redis-server, then what only it does (takeover,
leader lease and fencing, adopting clients' rows, replies, dead letters, trimming, URLs)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from redis.client import Redis

from clusterhelpers import held, replies, rows, submit
from redisserver import RedisServer, redis_server
from store.contract import (
    FlushAfterEveryCall,
    StoreContract,
    agent,
    check_recovered_history,
    record_history,
    record_last_attempt,
    task,
)
from swarmbalancer.cluster.agents import Handout
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.leader import LeaderLease
from swarmbalancer.cluster.rows import new_row
from swarmbalancer.cluster.scripts import source
from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import ConfigError, StoreError, TaskRejected
from swarmbalancer.model import Task, TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store import open_store
from swarmbalancer.store.base import Store
from swarmbalancer.store.redis_store import RESENT_ARG, RedisConfigWarning, RedisStore
from swarmbalancer.store.url import parse_redis_url

pytestmark = pytest.mark.timeout(60)

_CFG = BalancerConfig()
_swarms = itertools.count()


def queues() -> LevelQueue:
    return LevelQueue.from_config(_CFG)


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
    return SwarmKeys(f"s{next(_swarms)}")


def open_at(server: RedisServer, keys: SwarmKeys, **options: Any) -> RedisStore:
    return RedisStore(Redis(port=server.port), keys.swarm_id, queues, **options)


class _FlushingRedisStore(FlushAfterEveryCall, RedisStore):
    """Writes its journal after every call, so the contract also exercises every flush path."""


class TestRedisStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, server: RedisServer) -> Iterator[None]:
        self.port = server.port
        self.opened: list[RedisStore] = []
        yield
        for store in self.opened:
            store.close()

    def make_store(self) -> Store:
        store = _FlushingRedisStore(Redis(port=self.port), f"c{next(_swarms)}", queues)
        self.opened.append(store)
        return store


def test_reopening_gives_back_every_unfinished_task_and_keeps_finished_results(
    server: RedisServer, keys: SwarmKeys
) -> None:
    store = open_at(server, keys)
    record_history(store)
    store.close()
    again = open_at(server, keys)
    check_recovered_history(again)
    done = again.result("done")
    assert done is not None and done.finished_wall is not None
    assert again.epoch == 2
    again.close()


def test_a_recovered_task_is_not_written_again_until_it_moves(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.put(task("t"))
    store.close()
    before = r.hget(keys.tasks, "t")
    again = open_at(server, keys)
    (back,) = again.take_recovered(0.0)
    assert again.put(back) == (back, True)
    again.flush(0.0)
    assert r.hget(keys.tasks, "t") == before
    again.add_agent(agent("a"))
    again.enqueue("a", back, 0.0)
    again.claim("a", 0.0)
    again.flush(0.0)
    assert rows(r, keys)["t"]["state"] == "running"
    again.close()


def test_a_start_on_a_lease_ahead_leaves_the_row_waiting_until_the_task_finishes(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.add_agent(agent("a", capacity=2))
    for name in ("ahead", "fresh"):
        store.put(task(name))
        store.flush(0.0)
        store.enqueue("a", store.get(name), 0.0)  # type: ignore[arg-type]
    assert store.claim("a", 1.0).id == "ahead"  # type: ignore[union-attr]
    store.started_ahead("ahead")  # what the leader's desk says when its lease was ahead
    assert store.claim("a", 1.0).id == "fresh"  # type: ignore[union-attr]
    store.flush(1.0)
    assert {i: row["state"] for i, row in rows(r, keys).items()} == {
        "ahead": "waiting",
        "fresh": "running",
    }
    store.ack("ahead", 2.0, ok=True, result=1)
    store.flush(2.0)
    assert rows(r, keys)["ahead"]["state"] == "done"
    store.close()


def test_a_running_task_whose_lost_attempt_was_its_last_is_failed_on_recovery(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    record_last_attempt(store)
    store.close()
    again = open_at(server, keys)
    assert again.take_recovered(0.0) == []
    again.close()
    row = rows(r, keys)["last"]
    assert row["state"] == "failed" and "lost" in row["error"]
    assert r.zscore(keys.dead, "last") is not None


def test_a_second_opener_is_refused_while_the_lease_is_held_and_succeeds_after_it_expires(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    frozen = LeaderLease(r, keys, ttl=0.5)  # a leader that stopped renewing (a paused process)
    assert frozen.acquire()
    first = open_at(server, keys, lease=frozen)
    with pytest.raises(StoreError, match="in use"):
        open_at(server, keys)
    deadline = time.monotonic() + 10
    while r.exists(keys.leader) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = open_at(server, keys)
    assert second.epoch == first.epoch + 1
    second.close()


def test_the_lease_is_renewed_while_the_store_is_open_and_given_up_at_close(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys, lease_ttl=1.5)  # renewed every 0.5 s
    time.sleep(2.0)
    with pytest.raises(StoreError, match="in use"):
        open_at(server, keys)
    store.close()
    assert not r.exists(keys.leader)
    open_at(server, keys).close()


def test_a_fenced_flush_after_losing_the_lease_changes_nothing(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    frozen = LeaderLease(r, keys, ttl=0.3)
    assert frozen.acquire()
    old = open_at(server, keys, lease=frozen)
    old.add_agent(agent("a"))
    for name in ("x", "y"):
        old.enqueue("a", old.put(task(name))[0], 0.0)
    old.flush(0.0)
    while r.exists(keys.leader):
        time.sleep(0.05)
    new = open_at(server, keys)  # took over: x and y are its to run
    snapshot = {k: r.dump(k) for k in r.keys(keys.prefix.replace("{", "\\{") + "*")}
    old.claim("a", 1.0)
    old.ack("x", 2.0, ok=True, result=1)
    old.put(task("z"))
    old.publish_report("{}")
    with pytest.raises(StoreError, match="lease is lost"):
        old.flush(2.0)
    with pytest.raises(StoreError, match="lease is lost"):  # known lost: no round trip needed
        old.flush(3.0)
    after = {k: r.dump(k) for k in r.keys(keys.prefix.replace("{", "\\{") + "*")}
    assert {k: v for k, v in after.items() if not k.endswith(b"leader")} == {
        k: v for k, v in snapshot.items() if not k.endswith(b"leader")
    }
    assert r.get(keys.leader) == new.lease.token.encode()
    with pytest.raises(StoreError):
        old.close()
    new.close()


def test_a_renewal_that_finds_another_token_loses_the_lease_at_once(
    keys: SwarmKeys, r: Redis
) -> None:
    lease = LeaderLease(r, keys, ttl=30)
    called: list[bool] = []
    lease.on_lost(lambda: called.append(True))
    assert lease.acquire() and lease.held
    r.set(keys.leader, "someone else")
    assert not lease.renew()
    assert lease.lost.is_set() and not lease.held and called == [True]
    lease.release()
    assert r.get(keys.leader) == b"someone else"  # not ours: left alone


def test_takeover_voids_what_the_previous_leader_handed_out(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    submit(r, keys, [1, 2, 3])
    r.hset(keys.leases, "l1", "w1 t0 1")
    r.hset(keys.agents, "w1", "{}")
    r.hset(keys.beats, "w2", 1.0)
    r.rpush(keys.ready("w1"), "{}")
    r.rpush(keys.ready("w2"), "{}")
    r.set(keys.epoch, 7)
    store = open_at(server, keys)
    assert store.epoch == 8
    assert [t.id for t in store.take_recovered(0.0)] == ["t0", "t1", "t2"]
    for key in (keys.inbox, keys.leases, keys.ready("w1"), keys.ready("w2")):
        assert not r.exists(key), key
    assert r.hexists(keys.agents, "w1")  # registrations stay: the workers are still there
    store.close()


def test_adopted_rows_are_written_when_they_start_and_finish_with_a_reply_to_their_client(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    ids = submit(r, keys, [{"n": 1}, [], {"n": 3}], client="c1", idempotency_key=None)
    submitted = rows(r, keys)
    found = [json.loads(t) for t in r.hmget(keys.tasks, ids) if t is not None]
    tasks = store.adopt(found, 50.0)
    assert [t.id for t in tasks] == ids
    assert [t.seq for t in tasks] == [submitted[i]["seq"] for i in ids]
    assert tasks[1].payload == []
    store.add_agent(agent("a", capacity=3))
    for t in tasks:
        assert store.put(t) == (t, True)
        store.enqueue("a", t, 50.0)
    store.flush(50.0)
    assert rows(r, keys) == submitted  # nothing written: the rows exist
    for _ in ids:
        store.claim("a", 51.0)
    store.flush(51.0)
    assert {row["state"] for row in rows(r, keys).values()} == {"running"}
    store.ack("t0", 52.0, ok=True, result={"r": 1})
    store.ack("t1", 52.0, ok=False, error="boom")
    store.defer("t2", 60.0, 52.0)
    store.flush(52.0)
    after = rows(r, keys)
    assert after["t0"]["state"] == "done" and after["t0"]["result"] == {"r": 1}
    assert after["t1"]["payload"] == [] and after["t1"]["client"] == "c1"
    assert after["t2"]["state"] == "waiting" and after["t2"]["attempt"] == 1
    assert r.zscore(keys.finished, "t0") and r.zscore(keys.dead, "t1")
    assert not r.zscore(keys.finished, "t1") and not r.zscore(keys.dead, "t0")
    assert replies(r, keys, "c1") == [
        {"id": "t0", "state": "done", "result": {"r": 1}, "error": None, "attempt": 1},
        {"id": "t1", "state": "failed", "result": None, "error": "boom", "attempt": 1},
    ]
    assert 0 < r.ttl(keys.reply("c1")) <= 86_400
    current = [json.loads(t) for t in r.hmget(keys.tasks, ids) if t is not None]
    assert store.adopt(current, 53.0) == []  # finished, or live: a second push is ignored
    store.close()


def test_a_task_adopted_with_a_key_remembered_in_memory_is_still_taken(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.add_agent(agent("a"))
    old = store.put(task("old", key="k"))[0]
    store.enqueue("a", old, 0.0)
    store.claim("a", 0.0)
    store.ack("old", 1.0, ok=True)
    store.flush(1.0)
    r.hdel(keys.idem, "k")  # trimmed with its row: a client may use the key again
    submit(r, keys, [1], idempotency_key="k", prefix="new")
    (fresh,) = store.adopt([json.loads(r.hget(keys.tasks, "new0") or b"")], 2.0)
    assert store.put(fresh) == (fresh, True)
    store.close()


def test_idempotency_keys_are_found_in_redis_across_stores(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.add_agent(agent("a"))
    first = store.put(task("first", key="k"))[0]
    store.enqueue("a", first, 0.0)
    store.claim("a", 0.0)
    store.ack("first", 1.0, ok=True, result=7)
    store.put(task("live", key="k2"))
    store.close()
    assert r.hgetall(keys.idem) == {b"k": b"first", b"k2": b"live"}
    again = open_at(server, keys)
    (live,) = again.take_recovered(0.0)
    assert again.put(live) == (live, True)
    seen, created = again.put(task("second", key="k"))
    assert not created and seen.id == "first" and seen.state is TaskState.DONE
    seen, created = again.put(task("other", key="k2"))
    assert not created and seen is live
    again.close()


def test_expired_rows_are_trimmed_in_batches_with_their_keys(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys, retention=0.0, purge_batch=2)
    store.add_agent(agent("a", capacity=5))
    for i in range(5):
        store.enqueue("a", store.put(task(f"t{i}", key=f"k{i}"))[0], 0.0)
    store.put(task("waiting"))
    for i in range(4):
        store.claim("a", 0.0)
        store.ack(f"t{i}", 1.0, ok=i != 3, error=None if i != 3 else "boom")
    store._next_purge = float("inf")
    store.flush(1.0)  # writes the outcomes; their retention (0 s) runs from now
    left = []
    for _ in range(3):
        store._next_purge = 0.0  # a trim is due at every flush from here
        store.flush(2.0)
        left.append(r.hlen(keys.tasks))
    # two from finished and two from dead per flush: the three done, the dead one, never the
    # unfinished tasks
    assert left == [3, 2, 2]
    assert set(rows(r, keys)) == {"t4", "waiting"}
    assert r.hgetall(keys.idem) == {b"k4": b"t4"}
    assert r.zcard(keys.finished) == r.zcard(keys.dead) == 0
    store.close()


def test_the_report_is_stored_with_the_next_flush(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.publish_report('{"completed":3}')
    store.flush(0.0)
    assert r.get(keys.report) == b'{"completed":3}'
    store.close()


def test_a_large_flush_goes_in_several_script_calls(
    server: RedisServer, keys: SwarmKeys, r: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("swarmbalancer.store.redis_store.FLUSH_CHUNK", 3)
    store = open_at(server, keys)
    for i in range(10):
        store.put(task(f"t{i}", key=f"k{i}"))
    store.flush(0.0)
    assert len(rows(r, keys)) == 10 and r.hlen(keys.idem) == 10
    store.close()


def test_payloads_must_be_json_and_within_the_limit(server: RedisServer, keys: SwarmKeys) -> None:
    store = open_at(server, keys, max_payload_bytes=64)
    big = task("big")
    big.payload = "x" * 100
    with pytest.raises(TaskRejected, match=r"payload: 102 bytes .* maxPayloadBytes"):
        store.put(big)
    bad = task("bad")
    bad.payload = {"f": object()}
    with pytest.raises(TaskRejected, match="payload: not JSON"):
        store.put(bad)
    store.close()


def test_a_server_that_may_lose_or_evict_keys_is_warned_about(
    tmp_path: Path, keys: SwarmKeys
) -> None:
    with redis_server(tmp_path) as unsafe:  # its own: turning the AOF back on would rewrite it
        r = Redis(port=unsafe.port)
        r.config_set("appendonly", "no")
        r.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.warns(RedisConfigWarning, match=r"appendonly no.*maxmemory-policy allkeys-lru"):
            store = open_at(unsafe, keys)
        store.close()
        r.close()


def test_store_urls_name_the_server_the_swarm_and_the_lease(server: RedisServer) -> None:
    target = parse_redis_url("redis://:secret@example.com:6390/2?swarm=s1&lease_ttl=3")
    assert (target.swarm_id, target.lease_ttl) == ("s1", 3.0)
    assert "secret" not in target.where and target.where.startswith("redis://example.com:6390/2")
    tls = parse_redis_url("rediss://h/0?ssl_cert_reqs=none", swarm_id="s2")
    assert tls.swarm_id == "s2" and tls.url == "rediss://h/0?ssl_cert_reqs=none"
    assert parse_redis_url("redis://h").swarm_id == "default"
    assert parse_redis_url("redis://h/0?swarm=s3", swarm_id="s3").swarm_id == "s3"
    with pytest.raises(ConfigError, match="swarm_id: 's4' differs from the URL's swarm='s3'"):
        parse_redis_url("redis://h/0?swarm=s3", swarm_id="s4")  # the same rule for every command
    with pytest.raises(ConfigError, match="swarm_id"):
        parse_redis_url("redis://h/0?swarm=a{b}")
    with pytest.raises(ConfigError, match=r"store: 'http://:\*\*\*@h' is not a redis"):
        parse_redis_url("http://:secret@h")  # the password is never shown
    with pytest.raises(ConfigError, match="lease_ttl"):
        parse_redis_url("redis://h/0?lease_ttl=-1")
    with pytest.raises(ConfigError, match="store"):
        open_store("redis://h/0?nonsense_option=1", _CFG)

    store = open_store(f"{server.url}?swarm=url-test&lease_ttl=5", _CFG)
    assert isinstance(store, RedisStore) and store.keys.swarm_id == "url-test"
    assert store.lease.ttl == 5.0
    store.close()


def test_an_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    from redisserver import free_port

    with pytest.raises(StoreError, match="cannot open"):
        open_store(f"redis://127.0.0.1:{free_port()}/0?swarm=x", _CFG)


def two_finished(server: RedisServer, keys: SwarmKeys, r: Redis) -> RedisStore:
    """A store that adopted client c1's tasks t0 and t1, ran them on agent a, and finished t0
    with "r0" and t1 failed, its flush not yet written."""
    store = open_at(server, keys)
    submit(r, keys, [1, 2], client="c1")
    rows_in = [json.loads(t) for t in r.hmget(keys.tasks, ["t0", "t1"]) if t is not None]
    store.add_agent(agent("a", capacity=2))
    for t in store.adopt(rows_in, 0.0):
        store.put(t)
        store.enqueue("a", t, 0.0)
        store.claim("a", 0.0)
    store.ack("t0", 1.0, ok=True, result="r0")
    store.ack("t1", 1.0, ok=False, error="boom")
    return store


def test_a_flush_sent_twice_pushes_each_reply_once(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = two_finished(server, keys, r)
    batch = store.take_journal(1.0)
    assert batch is not None
    sha = r.script_load(source("flush"))
    for again in (False, True):  # the first reply lost on the network: the writer sends it again
        if again:
            batch.resent()  # what the writer does before sending a batch again
        for args in batch.calls:
            r.evalsha(sha, len(store.flush_keys), *store.flush_keys, *args)
    assert [e["id"] for e in replies(r, keys, "c1")] == ["t0", "t1"]
    assert rows(r, keys)["t0"]["result"] == "r0"
    store.close()


def test_a_flush_whose_reply_was_lost_is_written_again_without_a_second_reply(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    store = two_finished(server, keys, r)
    script, sent = store._flush_script, []

    def reply_lost(**call: Any) -> Any:
        answer = script(**call)  # it ran on the server...
        sent.append(call["args"])
        if len(sent) == 1:
            raise RedisConnectionError("connection reset")  # ...and its reply was lost
        return answer

    store._flush_script = reply_lost  # type: ignore[assignment]
    with pytest.raises(StoreError, match="cannot write"):
        store.flush(1.0)
    store.flush(1.0)  # the tasks are still dirty: written again, marked as a repeat
    assert [args[RESENT_ARG] for args in sent] == ["0", "1"]
    assert [e["id"] for e in replies(r, keys, "c1")] == ["t0", "t1"]
    store.close()


def lease_args(
    leases: list[tuple[str, str, str, str]],
    revoked: Sequence[str] = (),
    withdrawn: Sequence[str] = (),
    voided: Sequence[str] = (),
) -> list[Any]:
    """lease.lua's ARGV as the leader's writer builds them (token "tok", epoch 1)."""
    return Handout(list(leases), list(revoked), list(voided), 0, list(withdrawn)).args("tok", 1)


def test_lease_script_revokes_after_handing_out_and_takes_back_entries_not_taken(
    r: Redis, keys: SwarmKeys
) -> None:
    lease = r.register_script(source("lease"))
    script_keys = [keys.leader, keys.leases, keys.counters]
    r.set(keys.leader, "tok")
    entry = '{"task":"t1","lease":"L1","attempt":1,"payload":null}'
    kept = '{"task":"t2","lease":"L2","attempt":1,"payload":null}'
    taken = '{"task":"t3","lease":"L3","attempt":1,"payload":null}'
    new = [("a", "L1", "t1", entry), ("a", "L2", "t2", kept), ("a", "L3", "t3", taken)]
    # L1 handed out and taken back in one call: neither its lease nor its entry is left
    assert lease(keys=script_keys, args=lease_args(new, ["L1"], ["a", entry])) == 3
    assert r.lrange(keys.ready("a"), 0, -1) == [kept.encode(), taken.encode()]
    assert held(r, keys) == ["L2", "L3"]
    assert r.hget(keys.leases, "L2") == b"a t2 1"
    r.lpop(keys.ready("a"), 2)  # the worker took L2 and L3
    # L3 taken back too late: only revoked
    lease(keys=script_keys, args=lease_args([], ["L3"], ["a", taken]))
    assert held(r, keys) == ["L2"] and r.llen(keys.ready("a")) == 0


def test_lease_script_voids_ready_lists_first_and_groups_leases_by_worker(
    r: Redis, keys: SwarmKeys
) -> None:
    lease = r.register_script(source("lease"))
    r.set(keys.leader, "tok")
    r.rpush(keys.ready("a"), "stale")
    new = [("a", "L1", "t1", "e1"), ("b", "L2", "t2", "e2"), ("a", "L3", "t3", "e3")]
    args = lease_args(new, voided=["a"])
    assert lease(keys=[keys.leader, keys.leases, keys.counters], args=args) == 3
    assert r.lrange(keys.ready("a"), 0, -1) == [b"e1", b"e3"]
    assert r.lrange(keys.ready("b"), 0, -1) == [b"e2"]
    assert held(r, keys) == ["L1", "L2", "L3"]


def test_the_leases_hash_is_kept_a_hash_table_whatever_it_holds(r: Redis, keys: SwarmKeys) -> None:
    lease = r.register_script(source("lease"))
    r.set(keys.leader, "tok")
    entry = '{"task":"t1","lease":"L1","attempt":1,"payload":null}'
    script_keys = [keys.leader, keys.leases, keys.counters]
    lease(keys=script_keys, args=lease_args([("a", "L1", "t1", entry)], ["L1"]))
    lease(keys=script_keys, args=lease_args([]))
    # a small hash would be a listpack, which every HGET and HDEL scans from its start
    assert r.object("encoding", keys.leases) == b"hashtable"
    assert held(r, keys) == []


def test_a_row_adopted_with_its_text_hands_its_payload_out_as_the_client_wrote_it(
    server: RedisServer, keys: SwarmKeys
) -> None:
    store = open_at(server, keys)
    payload = {"x": 1.5, "big": 12345678901234567890, "s": "\\u00e9"}
    text = new_row(
        Task.create(payload, now=0.0, task_id="p1"), client=None, wall=1e9, max_payload_bytes=99
    )
    odd = '{"id": "p2", "seq": 1, "state": "waiting", "priority": 2, "submitted_wall": 1.0, '
    odd += '"payload": [1, 2]}'  # another writer's spacing: encoded again
    rows_in = [(json.loads(t), t.encode()) for t in (text, odd)]
    assert [t.id for t in store.adopt(rows_in, 0.0)] == ["p1", "p2"]
    assert store.payload_json("p1") == text[text.index(',"payload":') + 11 : -1]
    assert store.payload_json("p2") == "[1,2]"
    store.close()


def test_a_tasks_later_rows_keep_the_lasting_fields_of_its_first(
    server: RedisServer, keys: SwarmKeys, r: Redis
) -> None:
    store = open_at(server, keys)
    store.add_agent(agent("a", capacity=1))
    t = store.put(task("lasting"))[0]
    store.enqueue("a", t, 0.0)
    store.claim("a", 1.0)
    store.flush(1.0)
    running = rows(r, keys)["lasting"]
    store.ack("lasting", 500.0, ok=True, result=[7])
    store.flush(500.0)  # another clock reading: the row's Unix times are those written first
    done = rows(r, keys)["lasting"]
    changing = ("state", "result", "finished_wall")
    assert {k: v for k, v in done.items() if k not in changing} == {
        k: v for k, v in running.items() if k not in changing
    }
    assert (running["state"], done["state"], done["result"]) == ("running", "done", [7])
    store.close()
