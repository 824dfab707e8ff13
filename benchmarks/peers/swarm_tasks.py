"""swarmbalancer's worker handlers (`swarmbalancer worker --handler peers.swarm_tasks:...`):
`echo`, the no-op that returns its payload (so the producer checks every result), and `work`,
an agent of balance_api's heterogeneous swarm whose speed only the handler knows: it comes
from `BENCH_SPEED` in the worker's environment, never from the balancer."""

from __future__ import annotations

import os
from typing import Any

from balance_api import Agent, AgentShape

SPEED_VARIABLE = "BENCH_SPEED"

_agent: Agent | None = None


async def echo(task: Any) -> Any:
    return task.payload


async def work(task: Any) -> None:
    """Do `task.payload` seconds of speed-1 work at this worker's speed, sleeping to absolute
    per-slot deadlines as balance_api's deadline scenario does (timer overshoot never adds up)."""
    global _agent
    if _agent is None:
        _agent = Agent(AgentShape(float(os.environ[SPEED_VARIABLE])), deadlines=True)
    await _agent.work(float(task.payload))
