"""`swarmbalancer mcp`: the tools over stdio, on an embedded balancer hosting a workload's
synthetic swarm (the built-in demo by default) so an LLM client has a live swarm at once.

The workload's agents join (and leave) on its schedule and its tasks arrive at their times, as
`run` does; after the last one the swarm stays up, idle, for the tasks the client submits. Stdout
is the protocol's channel: nothing else may write to it.
"""

from __future__ import annotations

import asyncio
import contextlib

from swarmbalancer.config import BalancerConfig
from swarmbalancer.mcp.swarm import LiveSwarm
from swarmbalancer.mcp.tools import build_server
from swarmbalancer.runtime.feeder import WorkloadFeeder, workload_balancer
from swarmbalancer.workload import Workload


async def play(feeder: WorkloadFeeder) -> None:
    """Join the workload's agents on its schedule and submit its tasks at their arrival times."""
    feeder.start()
    await feeder.feed()


async def serve_stdio(workload: Workload, config: BalancerConfig) -> None:
    """Serve the tools on stdin/stdout until the client closes them; then stop the swarm."""
    balancer = workload_balancer(workload, config)
    server = build_server(LiveSwarm(balancer))
    await balancer.start()
    playing = asyncio.get_running_loop().create_task(play(WorkloadFeeder(workload, balancer)))
    try:
        await server.run_stdio_async()
    finally:
        playing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await playing
        await balancer.stop(drain=False)
        balancer.close()


def run(workload: Workload, config: BalancerConfig) -> None:
    """`swarmbalancer mcp`: serve until the client closes stdin."""
    asyncio.run(serve_stdio(workload, config))
