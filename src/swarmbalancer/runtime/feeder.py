"""Plays a workload on a running Balancer: its agents join and leave on its schedule and its
tasks are submitted at their arrival times. `run`, `swarmbalancer mcp` and `serve --demo` all
host a workload through this one piece.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from swarmbalancer.config import BalancerConfig
from swarmbalancer.runtime.balancer import Balancer, Handler
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.workload import (
    SyntheticSwarm,
    Workload,
    agent_specs,
    generate_tasks,
    membership_events,
)
from swarmbalancer.workload.generate import TaskRecord
from swarmbalancer.workload.tenancy import with_tenants

#: Submissions between yields to the loop while a batch is submitted all at once.
YIELD_EVERY = 8


def workload_balancer(
    workload: Workload, config: BalancerConfig, *, store: str | None = None, synthetic: bool = True
) -> Balancer:
    """A balancer (not started) for the workload: its tenants configured and, when its synthetic
    agents run the tasks (`synthetic`), their true speeds given to the lower bound."""
    balancer = Balancer(with_tenants(config, workload), store=store)
    if synthetic:
        balancer.coordinator.recorder.set_reference_speeds(workload.agent_speeds())
    return balancer


class WorkloadFeeder:
    """Feeds one workload to a started balancer; `handler` replaces the synthetic agents, and
    `on_submit` sees each handle as its task is accepted."""

    def __init__(
        self,
        workload: Workload,
        balancer: Balancer,
        *,
        handler: Handler | None = None,
        on_submit: Callable[[TaskHandle], object] | None = None,
    ) -> None:
        self.workload = workload
        self.balancer = balancer
        self.swarm = SyntheticSwarm(workload)
        self.handler = handler
        self.on_submit = on_submit
        self.records: list[TaskRecord] = generate_tasks(workload)
        self.origin: float | None = None
        self.rounds = 0
        self._specs = {s.id: s for s in agent_specs(workload)}

    def join(self, agent_id: str) -> None:
        """Add the workload's agent `agent_id` to the balancer."""
        spec = self._specs[agent_id]
        self.balancer.add_agent(
            spec.id,
            self.handler or self.swarm.handler_for(spec.id),
            capacity=spec.capacity,
            weight=spec.weight,
            region=spec.region,
            cost=spec.cost,
            speed_hint=spec.speed_hint,
            tags=spec.tags,
        )

    def start(self) -> None:
        """Workload time 0 is now: the agents present from the start join, and the later joins
        and leaves are scheduled at their times."""
        loop = asyncio.get_running_loop()
        self.restart()
        origin = self.origin
        assert origin is not None
        events = membership_events(self.workload)
        joining_later = {agent_id for t, kind, agent_id in events if kind == "join" and t > 0}
        for agent_id in self._specs:
            if agent_id not in joining_later:
                self.join(agent_id)
        for t, kind, agent_id in events:
            if t > 0:
                action = self.join if kind == "join" else self.balancer.remove_agent
                loop.call_at(origin + t, action, agent_id)

    def restart(self) -> None:
        """Workload time 0 (arrivals and fault windows) is now; the agents stay as they are."""
        self.origin = asyncio.get_running_loop().time()
        self.swarm.start(self.origin)

    async def feed(
        self, records: Sequence[TaskRecord] | None = None, *, prefix: str = ""
    ) -> list[TaskHandle]:
        """Submit each task at its arrival time after `start` (ids prefixed by `prefix`)."""
        loop = asyncio.get_running_loop()
        if self.origin is None:
            raise RuntimeError("WorkloadFeeder.feed: call start() first")
        handles: list[TaskHandle] = []
        for i, rec in enumerate(self.records if records is None else records):
            delay = self.origin + rec.arrival - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let started tasks begin while a batch is submitted
            handle = await self.balancer.submit(
                {"id": rec.id, "work": rec.work},
                task_id=prefix + rec.id,
                priority=rec.priority,
                tenant=rec.tenant,
                estimate=rec.estimate,
                affinity=rec.affinity,
                within=None if rec.deadline is None else max(rec.deadline - rec.arrival, 1e-9),
            )
            if self.on_submit is not None:
                self.on_submit(handle)
            handles.append(handle)
        return handles

    async def repeat(self) -> None:
        """Play the workload round after round until cancelled. Each round's task ids start with
        `r{round}-`; once its tasks have ended, workload time (arrivals and fault windows)
        starts again. The agents' join and leave schedule plays once, in the first round."""
        self.start()
        while True:
            handles = await self.feed(prefix=f"r{self.rounds}-")
            if handles:
                await asyncio.wait(handles)
            else:
                await asyncio.sleep(1.0)  # a workload without tasks: nothing to wait for
            self.rounds += 1
            self.restart()
