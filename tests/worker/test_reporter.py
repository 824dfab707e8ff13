"""The worker's reporter batches outcomes: one report.lua call per wake-up, per 1000."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis import Redis

from edgeprocs import lease
from redisserver import RedisServer
from swarmbalancer.cluster.connect import connect
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import source
from swarmbalancer.worker.reporter import Reporter

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)
K = SwarmKeys("t1")


def script_calls(r: Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def outcome(lease_id: str) -> str:
    return json.dumps({"lease": lease_id, "task": f"task-{lease_id}", "agent": "w1", "ok": True,
                       "result": 1, "error": None, "retryable": True, "retry_after": None,
                       "runtime": 0.0, "usage": None})  # fmt: skip


def test_outcomes_ready_together_go_out_in_one_call_per_thousand(
    server: RedisServer, sync_redis: Redis
) -> None:
    ids = lease(sync_redis, K, "w1", [None] * 2500)
    sync_redis.script_load(source("report"))  # so no call is a NOSCRIPT miss

    async def main() -> tuple[int, int, int]:
        client = connect(server.url)
        reporter = Reporter(client, K, "w1")
        running = asyncio.get_running_loop().create_task(reporter.run())
        try:
            before = script_calls(sync_redis)
            for lease_id in ids:
                reporter.add(outcome(lease_id))
            reporter.add(outcome("expired"))
            await reporter.flushed()
            return script_calls(sync_redis) - before, reporter.accepted, reporter.late
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await client.aclose()

    calls, accepted, late = asyncio.run(main())
    assert (calls, accepted, late) == (3, 2500, 1)
    assert sync_redis.llen(K.outcomes) == 2500 and sync_redis.hlen(K.leases) == 0
    assert sync_redis.hget(K.counters, "late_results") == b"1"
