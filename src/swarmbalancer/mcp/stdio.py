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
from swarmbalancer.runtime.balancer import Balancer
from swarmbalancer.workload import (
    SyntheticSwarm,
    Workload,
    agent_specs,
    generate_tasks,
    membership_events,
)
from swarmbalancer.workload.tenancy import with_tenants


def host(workload: Workload, config: BalancerConfig) -> tuple[Balancer, SyntheticSwarm]:
    """A balancer for the workload's synthetic swarm (not started)."""
    balancer = Balancer(with_tenants(config, workload))
    balancer.coordinator.recorder.set_reference_speeds(workload.agent_speeds())
    return balancer, SyntheticSwarm(workload)


async def play(workload: Workload, balancer: Balancer, swarm: SyntheticSwarm) -> None:
    """Join the workload's agents on its schedule and submit its tasks at their arrival times."""
    loop = asyncio.get_running_loop()
    specs = {s.id: s for s in agent_specs(workload)}

    def join(agent_id: str) -> None:
        spec = specs[agent_id]
        balancer.add_agent(
            spec.id,
            swarm.handler_for(spec.id),
            capacity=spec.capacity,
            weight=spec.weight,
            region=spec.region,
            cost=spec.cost,
            speed_hint=spec.speed_hint,
            tags=spec.tags,
        )

    events = membership_events(workload)
    later = {agent_id for t, kind, agent_id in events if kind == "join" and t > 0}
    origin = loop.time()
    swarm.start(origin)
    for agent_id in specs:
        if agent_id not in later:
            join(agent_id)
    for t, kind, agent_id in events:
        if t > 0:
            loop.call_at(origin + t, join if kind == "join" else balancer.remove_agent, agent_id)
    for rec in generate_tasks(workload):
        delay = origin + rec.arrival - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await balancer.submit(
            {"id": rec.id, "work": rec.work},
            task_id=rec.id,
            priority=rec.priority,
            tenant=rec.tenant,
            estimate=rec.estimate,
            affinity=rec.affinity,
            within=None if rec.deadline is None else max(rec.deadline - rec.arrival, 1e-9),
        )


async def serve_stdio(workload: Workload, config: BalancerConfig) -> None:
    """Serve the tools on stdin/stdout until the client closes them; then stop the swarm."""
    balancer, swarm = host(workload, config)
    server = build_server(LiveSwarm(balancer))
    await balancer.start()
    feeder = asyncio.get_running_loop().create_task(play(workload, balancer, swarm))
    try:
        await server.run_stdio_async()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await balancer.stop(drain=False)
        balancer.close()


def run(workload: Workload, config: BalancerConfig) -> None:
    """`swarmbalancer mcp`: serve until the client closes stdin."""
    asyncio.run(serve_stdio(workload, config))
