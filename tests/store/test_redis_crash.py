"""A real crash on Redis: a subprocess runs an embedded Balancer on a Redis store, is killed with
SIGKILL mid-run, and a new Balancer on the same swarm (once the dead one's lease expired)
finishes every unfinished task, each outcome recorded exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from redis.client import Redis

from clusterhelpers import rows
from redisserver import redis_server
from store.test_crash import events, run_child_until_killed
from swarmbalancer import Balancer, Task
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.errors import StoreError


def open_when_free(url: str) -> Balancer:
    """A Balancer on the swarm once the killed process's lease has expired."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return Balancer({"maxRetries": 3}, store=url)
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.timeout(90)
def test_a_killed_balancer_on_redis_loses_nothing_and_records_each_outcome_once(
    tmp_path: Path,
) -> None:
    keys = SwarmKeys("crash")
    log = tmp_path / "events.log"
    with redis_server(tmp_path / "redis") as server:
        url = f"{server.url}?swarm={keys.swarm_id}&lease_ttl=1"
        r = Redis(port=server.port)
        run_child_until_killed(url, log, wait=20.0)
        before = {i: row["state"] for i, row in rows(r, keys).items()}
        child = events(log)
        at_crash = Counter(before.values())
        assert child["S"] <= set(before), "a submission acknowledged before the crash was lost"
        assert "DONE" not in log.read_text()

        reran: list[str] = []

        async def handler(task: Task) -> int:
            reran.append(task.id)
            await asyncio.sleep(0)
            return int(task.payload["n"]) * 2

        async def resume() -> None:
            lb = open_when_free(url)
            assert lb.outstanding == at_crash["waiting"] + at_crash["running"]
            for i in range(4):
                lb.add_agent(f"a{i}", handler, capacity=16)
            async with lb:
                await lb.join()
            lb.close()

        asyncio.run(resume())
        after = rows(r, keys)
        r.close()
    states = Counter(row["state"] for row in after.values())
    assert states == {"done": len(before)}, states  # 0 lost, nothing left waiting or running
    assert all(row["result"] == 2 * int(i[1:]) for i, row in after.items())
    done_before = {i for i, s in before.items() if s == "done"}
    assert not done_before & set(reran), "a task finished before the crash ran again"
    assert len(reran) == len(set(reran)) == len(before) - len(done_before)
    ran_twice = child["B"] & set(reran)
    assert ran_twice == child["B"] - done_before  # every unfinished start ran again, once
    running = {i for i, s in before.items() if s == "running"}
    assert all(after[i]["attempt"] == 2 for i in running)  # the lost attempt counted
    ended = ran_twice & child["E"]
    print(
        f"\ncrash on redis: {len(before)} rows ({dict(at_crash)}), {len(child['S'])} "
        f"submissions acknowledged; after recovery all {len(after)} done; ran twice: "
        f"{len(ran_twice)} ({len(ran_twice & running)} running at the crash per the rows, "
        f"{len(ran_twice - running)} started after the last flush; {len(ended)} of them had "
        "returned but their outcome was not yet flushed)"
    )
