"""What a service hosts: one Balancer, its HTTP agents, its tasks by id and its metrics; the
routes are thin over these calls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from swarmbalancer.errors import AgentError, TaskRejected
from swarmbalancer.metrics.snapshot import Snapshot, take_snapshot
from swarmbalancer.runtime.balancer import Balancer
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.jobs import Job
from swarmbalancer.service.book import TaskBook, record_view, task_view
from swarmbalancer.service.hub import AgentHub, RemoteAgent
from swarmbalancer.service.live import LiveFeed
from swarmbalancer.service.metrics import ServiceMetrics
from swarmbalancer.service.schemas import AgentRegistration, BatchRequest, TaskOptions
from swarmbalancer.service.settings import ServeSettings
from swarmbalancer.service.tickets import StreamTickets


class Service:
    """One embedded Balancer driven over HTTP; `start` and `stop` run in the server's loop."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.balancer = Balancer(settings.config, store=settings.store)
        self.hub = AgentHub(settings.heartbeat_timeout)
        self.metrics = ServiceMetrics(
            self.balancer, max_agents=settings.max_agents, max_tenants=settings.max_tenant_labels
        )
        self.book = TaskBook(
            settings.keep_finished, self.metrics.task_ended, self.metrics.task_accepted
        )
        self.feed = LiveFeed(self, interval=settings.event_interval)
        self.tickets = StreamTickets()
        #: set as the server begins to shut down: open event streams end at once
        self.closing = asyncio.Event()

    async def start(self) -> None:
        await self.balancer.start()

    async def stop(self) -> None:
        """Cancel what is left (a durable store keeps it for the next service) and close."""
        self.closing.set()
        await self.balancer.stop(drain=False)
        for agent in self.hub.agents.values():
            agent.wake()
        self.balancer.close()

    def snapshot(self) -> Snapshot:
        """The live swarm now: the report, the agents as the coordinator sees them, and the
        decision and store timings; what the insight routes and the dashboard read."""
        lb = self.balancer
        return take_snapshot(lb.coordinator, lb.now(), lb.decision_timing)

    # -- tasks --------------------------------------------------------------------------------
    def _keywords(self, options: TaskOptions) -> dict[str, Any]:
        keywords = options.model_dump(exclude_none=True)
        if "deadline" in keywords:  # Unix time on the wire, the balancer's clock inside
            keywords["deadline"] = self.balancer.now() + (keywords["deadline"] - time.time())
        return keywords

    async def submit(self, payload: Any, options: TaskOptions) -> TaskHandle:
        handle = await self.balancer.submit(payload, **self._keywords(options))
        self.book.add(handle)
        return handle

    async def submit_many(self, batch: BatchRequest) -> list[TaskHandle]:
        if len(batch.items) > self.settings.max_batch:
            raise TaskRejected(f"items: at most {self.settings.max_batch} per batch")
        jobs = [
            Job(item.payload, **self._keywords(TaskOptions(**item.model_dump(exclude={"payload"}))))
            for item in batch.items
        ]
        handles = await self.balancer.submit_many(jobs, **self._keywords(batch.options))
        for handle in handles:
            self.book.add(handle)
        return handles

    def task(self, task_id: str) -> dict[str, Any] | None:
        """A task's status and outcome, from its handle or else from the store."""
        handle = self.book.get(task_id)
        if handle is not None:
            return task_view(handle)
        record = self.balancer.result(task_id)
        return None if record is None else record_view(record)

    async def wait_task(self, task_id: str, wait: float) -> dict[str, Any] | None:
        """The task's status once it has ended or `wait` seconds have passed (a long-poll)."""
        handle = self.book.get(task_id)
        if handle is not None and not handle.done() and wait > 0:
            await asyncio.wait({handle}, timeout=min(wait, self.settings.max_wait))
        return self.task(task_id)

    def cancel(self, task_id: str) -> dict[str, Any] | None:
        handle = self.book.get(task_id)
        if handle is None:
            return None
        handle.cancel()
        return task_view(handle)

    # -- HTTP agents --------------------------------------------------------------------------
    def register(self, spec: AgentRegistration) -> RemoteAgent:
        live = sum(not agent.removed for agent in self.hub.agents.values())
        if live >= self.settings.max_agents and spec.id not in self.hub.agents:
            raise AgentError(f"id: this service takes at most {self.settings.max_agents} agents")
        agent = RemoteAgent(spec.id, self.settings.heartbeat_timeout)
        self.balancer.add_agent(
            spec.id,
            agent,
            capacity=spec.capacity,
            weight=spec.weight,
            region=spec.region,
            cost=spec.cost,
            speed_hint=spec.speed_hint,
            tags=spec.tags,
        )
        self.hub.agents[spec.id] = agent
        return agent

    def deregister(self, agent_id: str) -> None:
        """Route nothing more to the agent; the leases it holds may still be reported."""
        self.balancer.remove_agent(agent_id)
        agent = self.hub.get(agent_id)
        if agent is not None:
            agent.removed = True

    def agents(self) -> list[dict[str, Any]]:
        rows = []
        for state in self.balancer.coordinator.store.agents():
            remote = self.hub.get(state.id)
            rows.append(
                {
                    "id": state.id,
                    "capacity": state.capacity,
                    "in_flight": state.in_flight,
                    "queued": state.queued,
                    "completed": state.completed,
                    "failed": state.failed,
                    "draining": state.draining,
                    "region": state.region,
                    "leases": None if remote is None else len(remote.leases),
                }
            )
        return rows
