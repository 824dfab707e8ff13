"""The edge end to end: a `Client`, two `swarmbalancer worker` processes, and the leader played
by `FakeLeader` leasing through Redis as the wire formats say."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgeprocs import worker_process
from fakeleader import FakeLeader
from redisserver import RedisServer
from swarmbalancer import Client, TaskFailed

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(90)


def test_a_client_and_two_worker_processes_run_a_batch_end_to_end(
    server: RedisServer, tmp_path: Path
) -> None:
    url = server.url

    async def main() -> set[str]:
        async with FakeLeader(url, "t1") as leader, Client(url, "t1") as client:
            await asyncio.wait_for(asyncio.gather(leader.joined("w1"), leader.joined("w2")), 30)
            handles = await client.submit_many([{"n": i} for i in range(500)])
            failing = await client.submit({"do": "fail", "n": 7}, max_retries=2)
            assert await asyncio.gather(*handles) == [2 * i for i in range(500)]
            with pytest.raises(TaskFailed, match=r"after 3 attempt.*ValueError: bad 7"):
                await failing
            record = await client.result(handles[7].id)
            assert record is not None and (record.state, record.result) == ("done", 14)
            return {o["agent"] for o in leader.outcomes}

    with (
        worker_process(url, "w1", tmp_path, handler="edge_handlers:async_handler", capacity=8),
        worker_process(url, "w2", tmp_path, handler="edge_handlers:plain_handler", capacity=4),
    ):
        assert asyncio.run(main()) == {"w1", "w2"}
