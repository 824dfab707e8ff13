"""redis-server killed (SIGKILL) and restarted on its append-only file mid-run, while tasks are
still being submitted and run, under `appendfsync always` and `everysec`: the leader notices (the
server's run id changed), steps down, a fresh takeover rebuilds from what the server kept, and
every task the server kept completes, each outcome recorded once. With `always`, no acknowledged
submission is lost. (With `everysec`, killing the process loses nothing either: Redis writes the
file before it replies and only delays the fsync, so what that setting risks is a power loss,
which a test cannot make; the run prints what was lost.)"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.client import Redis
from redis.exceptions import ConnectionError as Unreachable

from clusterhelpers import InProcessCoordinator, Worker, rows, submit, wait_until
from redisserver import RedisServer
from swarmbalancer.cluster.coordinator import EXIT_LOST
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.config import BalancerConfig

TASKS = 10_000
BATCH = 500
PACE = 0.03  # seconds between batches: the last half takes at least 0.3 s to submit


class Supervisor:
    """Runs an in-process coordinator, and a new one each time the last stepped down (exit 3),
    as a process supervisor would."""

    def __init__(self, url: str, swarm: str) -> None:
        self.url, self.swarm = url, swarm
        self.stints: list[int | None] = []
        self._stop = threading.Event()
        self._current: InProcessCoordinator | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            config = BalancerConfig(park_timeout=None, retry_backoff=0.0)
            c = InProcessCoordinator(self.url, self.swarm, lease_ttl=2.0, config=config)
            self._current = c.start(leader=False)
            while c.code is None and not self._stop.is_set():
                self._stop.wait(0.05)
            code = c.stop()
            self.stints.append(code)
            if code != EXIT_LOST:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis", appendfsync=request.param)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("server", ["always", "everysec"], indirect=True)
def test_a_restarted_redis_loses_no_kept_task_and_records_no_outcome_twice(
    server: RedisServer,
) -> None:
    keys = SwarmKeys("restart")
    r = Redis(port=server.port)
    acknowledged: list[str] = []
    halfway = threading.Event()

    def produce() -> None:
        producer = Redis(port=server.port)
        for start in range(0, TASKS, BATCH):
            while True:
                try:
                    ids = submit(
                        producer, keys, range(start, start + BATCH), client="c1", start=start
                    )
                    break
                except Unreachable:
                    threading.Event().wait(0.1)  # the server is down: submit the batch again
            acknowledged.extend(ids)
            if len(acknowledged) >= TASKS // 2:
                halfway.set()
            threading.Event().wait(PACE)  # a steady producer: still submitting at the kill
        producer.close()

    supervisor = Supervisor(server.url, keys.swarm_id)
    workers = [Worker(server.port, keys, f"w{i}", capacity=50).start() for i in range(2)]
    producer = threading.Thread(target=produce, daemon=True)
    try:
        producer.start()
        assert halfway.wait(60), "half the tasks submitted"
        wait_until(lambda: r.zcard(keys.finished) >= TASKS // 20, 60, what="some done")
        at_kill = len(acknowledged)
        server.restart(kill=True)
        assert at_kill < TASKS, "the server must die while submissions go on"
        r = Redis(port=server.port)
        producer.join(timeout=60)
        kept = set(rows(r, keys))

        def all_done() -> bool:
            return r.zcard(keys.finished) >= len(set(rows(r, keys)))

        wait_until(all_done, 120, what="every kept task done")
    finally:
        for w in workers:
            w.stop()
        supervisor.stop()
    final = rows(r, keys)
    replies = Counter(json.loads(e)["id"] for e in r.lrange(keys.reply("c1"), 0, -1))
    states = Counter(row["state"] for row in final.values())
    assert states == {"done": len(final)}, states
    assert kept <= set(final)
    assert set(replies) == set(final) and max(replies.values()) == 1, "a reply came twice"
    lost_acks = set(acknowledged) - set(final)
    if server.appendfsync == "always":
        assert not lost_acks, f"{len(lost_acks)} acknowledged submission(s) lost"
    ran = Counter(t for w in workers for t in w.ran)
    twice = sum(1 for n in ran.values() if n > 1)
    print(
        f"\nredis kill -9 ({server.appendfsync}) with {at_kill} of {TASKS} submitted: "
        f"{len(acknowledged)} submissions acknowledged, "
        f"{len(final)} kept, {len(lost_acks)} lost with the AOF's last moment; all kept done, "
        f"each replied once; {twice} ran twice; leader stints {supervisor.stints}"
    )
    r.close()
