"""Runs a workload file for real: synthetic agents (or a user's handler) in the embedded runtime."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from swarmbalancer.config import BalancerConfig
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.errors import ConfigError
from swarmbalancer.runtime.balancer import Balancer, Handler
from swarmbalancer.workload import (
    SyntheticSwarm,
    Workload,
    agent_specs,
    generate_tasks,
    membership_events,
)
from swarmbalancer.workload.tenancy import with_tenants

Progress = Callable[[Coordinator, int], None]

#: Submissions between yields to the loop while a batch is submitted all at once.
YIELD_EVERY = 8


def load_handler(ref: str) -> Handler:
    """Import `module:function`; a bad reference is a ConfigError naming the option."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--handler: {ref!r} is not of the form module:function")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--handler: cannot load {ref!r} ({exc})") from None
    if not callable(fn):
        raise ConfigError(f"--handler: {ref!r} is not callable")
    return fn  # type: ignore[no-any-return]


async def run_workload(
    workload: Workload,
    config: BalancerConfig,
    *,
    handler: Handler | None = None,
    on_progress: Progress | None = None,
    progress_every: float = 0.1,
    store: str | None = None,
) -> dict[str, Any]:
    """Submit every task of the workload at its arrival time and return the final report;
    `store` is a store URL (memory by default, or sqlite:///path.db)."""
    config = with_tenants(config, workload)
    records = generate_tasks(workload)
    specs = {s.id: s for s in agent_specs(workload)}
    swarm = SyntheticSwarm(workload)
    balancer = Balancer(config, store=store)
    if handler is None:  # the synthetic agents run at the workload's speeds: the bound may use them
        balancer.coordinator.recorder.set_reference_speeds(workload.agent_speeds())
    loop = asyncio.get_running_loop()

    def join(agent_id: str) -> None:
        spec = specs[agent_id]
        balancer.add_agent(
            spec.id,
            handler or swarm.handler_for(spec.id),
            capacity=spec.capacity,
            weight=spec.weight,
            region=spec.region,
            cost=spec.cost,
            speed_hint=spec.speed_hint,
            tags=spec.tags,
        )

    events = membership_events(workload)
    joining_later = {agent_id for t, kind, agent_id in events if kind == "join" and t > 0}
    async with balancer:
        origin = loop.time()
        swarm.start(origin)
        for agent_id in specs:
            if agent_id not in joining_later:
                join(agent_id)
        for t, kind, agent_id in events:
            if t > 0:
                action = join if kind == "join" else balancer.remove_agent
                loop.call_at(origin + t, action, agent_id)
        ticker = _start_progress(balancer, len(records), on_progress, progress_every)
        try:
            for i, rec in enumerate(records):
                delay = origin + rec.arrival - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif i % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let started tasks begin while a batch is submitted
                await balancer.submit(
                    {"id": rec.id, "work": rec.work},
                    task_id=rec.id,
                    priority=rec.priority,
                    tenant=rec.tenant,
                    estimate=rec.estimate,
                    affinity=rec.affinity,
                    within=None if rec.deadline is None else max(rec.deadline - rec.arrival, 1e-9),
                )
            await balancer.join()
        finally:
            if ticker is not None:
                ticker.cancel()
    balancer.close()  # a durable store's file is released once the run has drained
    if on_progress is not None:
        on_progress(balancer.coordinator, len(records))
    return balancer.report()


def _start_progress(
    balancer: Balancer, total: int, on_progress: Progress | None, every: float
) -> asyncio.Task[None] | None:
    if on_progress is None:
        return None

    async def tick() -> None:
        while True:
            on_progress(balancer.coordinator, total)
            await asyncio.sleep(every)

    return asyncio.get_running_loop().create_task(tick())
