"""HTTP agents: each registered agent's handler inside the Balancer is a `RemoteAgent`, which
hands the task to the agent's long-poll as a lease and awaits the outcome the agent reports.

An attempt ends when the agent reports, when the balancer's `taskTimeout` expires (the runtime's
own timeout around async handlers), or when the agent has been silent (no poll, heartbeat or
report) for `heartbeat_timeout`: then it fails as any handler error would, and is retried.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from swarmbalancer.errors import NonRetryable, RetryAfter
from swarmbalancer.model import Task


class RemoteError(Exception):
    """The error an HTTP agent reported for its attempt (the message it sent)."""


class AgentSilent(Exception):
    """An HTTP agent stopped polling, heartbeating and reporting while holding a lease."""


@dataclass(eq=False, slots=True)
class Lease:
    """One attempt of a task handed to an HTTP agent; `outcome` resolves when it reports."""

    id: str
    agent_id: str
    task: Task
    outcome: asyncio.Future[Any]
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """What an agent reported for a lease: a result, or an error (with optional retry hints)."""

    result: Any = None
    error: str | None = None
    retry_after: float | None = None
    retryable: bool = True


@dataclass(eq=False)
class RemoteAgent:
    """An HTTP agent's side of the balancer: pending leases, held leases, liveness."""

    id: str
    heartbeat_timeout: float
    leases: dict[str, Lease] = field(default_factory=dict)
    pending: deque[Lease] = field(default_factory=deque)
    last_seen: float = field(default_factory=time.monotonic)
    polling: int = 0
    removed: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    async def __call__(self, task: Task) -> Any:
        """The handler the Balancer runs: lease the task out and await the agent's report."""
        loop = asyncio.get_running_loop()
        lease = Lease(uuid.uuid4().hex, self.id, task, loop.create_future())
        self.leases[lease.id] = lease
        self.pending.append(lease)
        self._ready.set()
        try:
            while True:
                if self.polling:  # an open long-poll is a live agent
                    self.touch()
                remaining = self.last_seen + self.heartbeat_timeout - time.monotonic()
                if remaining <= 0:
                    raise AgentSilent(
                        f"agent {self.id!r}: no poll, heartbeat or report for "
                        f"{self.heartbeat_timeout}s"
                    )
                done, _ = await asyncio.wait({lease.outcome}, timeout=remaining)
                if done:
                    return _settle(lease.outcome.result())
        finally:
            self.leases.pop(lease.id, None)
            if not lease.delivered:
                self.pending.remove(lease)
            if not lease.outcome.done():
                lease.outcome.cancel()

    async def next_lease(self, wait: float) -> Lease | None:
        """The next task for this agent, waiting up to `wait` seconds for one (a long-poll)."""
        self.touch()
        self.polling += 1
        try:
            async with asyncio.timeout(wait):
                while not self.pending:
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            return None
        finally:
            self.polling -= 1
            self.touch()
        lease = self.pending.popleft()
        lease.delivered = True
        return lease

    def report(self, lease_id: str, report: Report) -> bool:
        """Resolve a held lease with the agent's outcome; False when it holds no such lease
        (never delivered to it, already reported, or its attempt ended meanwhile)."""
        self.touch()
        lease = self.leases.get(lease_id)
        if lease is None or not lease.delivered or lease.outcome.done():
            return False
        lease.outcome.set_result(report)
        return True

    def wake(self) -> None:
        """Let every long-poll re-check (used at shutdown, whose cancellation ends them)."""
        self._ready.set()


def _settle(report: Report) -> Any:
    """The handler's return value for a report, or the exception the runtime understands."""
    if report.error is None:
        return report.result
    error = RemoteError(report.error)
    if not report.retryable:
        raise NonRetryable(error)
    if report.retry_after is not None:
        raise RetryAfter(report.retry_after, error)
    raise error


class AgentHub:
    """Every HTTP agent the service knows, by id."""

    def __init__(self, heartbeat_timeout: float) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.agents: dict[str, RemoteAgent] = {}

    def new(self, agent_id: str) -> RemoteAgent:
        agent = RemoteAgent(agent_id, self.heartbeat_timeout)
        self.agents[agent_id] = agent
        return agent

    def get(self, agent_id: str) -> RemoteAgent | None:
        return self.agents.get(agent_id)
