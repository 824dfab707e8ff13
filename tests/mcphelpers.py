"""Shared by the MCP tests: a tool result's JSON, and a small live swarm whose agents hold
their tasks until released (so queues, plans and states stay put while a test looks)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from swarmbalancer.model import Task
from swarmbalancer.runtime.balancer import Balancer

TOOLS = {
    "agent_list", "agent_metrics", "load_balance", "performance_report", "bottleneck_analyze",
    "token_usage", "task_submit", "task_status", "config_manage",
}  # fmt: skip


def payload(result: Any) -> Any:
    """The JSON a successful tool call returned (its text content)."""
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error_line(result: Any) -> str:
    """The message of a tool error: one line."""
    assert result.is_error
    text: str = result.content[0].text
    assert "\n" not in text
    return text


class Held:
    """An async handler that holds each task until `release` is set, then echoes its payload."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, task: Task) -> Any:
        await self.release.wait()
        return task.payload


@asynccontextmanager
async def held_swarm() -> AsyncIterator[tuple[Balancer, Held]]:
    """Agent a1 (capacity 1) under round robin with no stealing, its handler a `Held` (which
    can serve more agents)."""
    held = Held()
    balancer = Balancer({"strategy": "round_robin", "stealThreshold": 1000, "seed": 1})
    balancer.add_agent("a1", held, capacity=1)
    await balancer.start()
    try:
        yield balancer, held
    finally:
        held.release.set()
        await balancer.stop(drain=False)
