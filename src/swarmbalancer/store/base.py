"""The `Store` protocol: the one place where mutable scheduling state lives.

Every operation is atomic with respect to the others: a task is in exactly one place at a time
(parked, in the shared queue, queued at one agent, running under a lease, delayed for a retry, or
finished), and each
operation moves it between places in one step. The memory store gets this from running on one
event loop; durable and networked stores must get it from transactions or scripts. The contract
suite in `tests/store/contract.py` is what every implementation must pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Protocol

from swarmbalancer.model import AgentState, Task
from swarmbalancer.policies.views import QueueView
from swarmbalancer.store.record import TaskRecord


class Store(Protocol):
    """Agents, their queues, in-flight leases, delayed retries and counters."""

    #: True when accepted tasks and outcomes survive the process once `flush` has returned.
    durable: bool

    # -- agents -------------------------------------------------------------------------------
    def add_agent(self, agent: AgentState) -> None:
        """Register an agent with an empty queue; an id already present is an error."""
        ...

    def remove_agent(self, agent_id: str) -> list[Task]:
        """Unregister an agent that runs nothing; its queued tasks come back unplaced (PENDING)."""
        ...

    def agent(self, agent_id: str) -> AgentState:
        """The live state of one agent (KeyError if unknown)."""
        ...

    def agents(self) -> list[AgentState]:
        """All agents in registration order."""
        ...

    def queue(self, agent_id: str) -> QueueView:
        """A read-only view of one agent's queue."""
        ...

    # -- tasks --------------------------------------------------------------------------------
    def put(self, task: Task) -> tuple[Task, bool]:
        """Accept a new task; with an idempotency key already seen, return that task and False."""
        ...

    def get(self, task_id: str) -> Task | None:
        """A task not yet finished (or remembered for deduplication), by id."""
        ...

    def share(self, task: Task, now: float) -> None:
        """Queue an accepted, unplaced task in the shared queue, bound to no agent yet."""
        ...

    def take_shared(self, now: float) -> Task | None:
        """Pop the shared queue's next task (levels, aging, discipline), unplaced, or None."""
        ...

    def shared_queue(self) -> QueueView:
        """A read-only view of the shared queue."""
        ...

    def queued_counts(self) -> tuple[int, int]:
        """(tasks in the shared queue, tasks queued at agents): what waits for a slot."""
        ...

    def enqueue(self, agent_id: str, task: Task, now: float) -> None:
        """Queue an accepted, unplaced task at an agent and book its expected work there."""
        ...

    def claim(self, agent_id: str, now: float, lease: float | None = None) -> Task | None:
        """Pop the agent's next task and mark it in flight under a lease, in one step."""
        ...

    def start(self, agent_id: str, task: Task, now: float, lease: float | None = None) -> None:
        """Mark an unplaced task (just taken from the shared queue) in flight at an agent."""
        ...

    def move(self, task_ids: Collection[str], source: str, target: str, now: float) -> list[Task]:
        """Move those of `task_ids` still queued at `source` to `target` (steal, migrate)."""
        ...

    def evacuate(self, agent_id: str) -> list[Task]:
        """Take every queued task off an agent, leaving them unplaced (PENDING) for re-routing."""
        ...

    def remove(self, task_id: str) -> Task | None:
        """Take out a task that is not running (queued, parked or delayed), wherever it waits,
        and mark it CANCELLED; None when it is running, finished or unknown."""
        ...

    def ack(
        self,
        task_id: str,
        now: float,
        *,
        ok: bool,
        error: str | None = None,
        result: Any = None,
    ) -> Task:
        """Finish an in-flight task (DONE or FAILED, with the handler's `result`) and release
        its slot."""
        ...

    def defer(self, task_id: str, until: float, now: float) -> Task:
        """Release an in-flight task's slot and hold it until `until` (a retry after backoff)."""
        ...

    def due(self, now: float) -> list[Task]:
        """Delayed tasks whose time has come, taken out of the delay set (earliest first)."""
        ...

    def next_due(self) -> float | None:
        """When the earliest delayed task becomes due."""
        ...

    def park(self, task: Task, now: float) -> None:
        """Hold an accepted task that no agent can take yet; the first park sets `parked_at`."""
        ...

    def unpark(self) -> list[Task]:
        """Take every parked task out, in the order parked."""
        ...

    def oldest_parked(self) -> float | None:
        """When the task parked longest ago was first parked, or None with nothing parked."""
        ...

    def expired(self, now: float) -> list[Task]:
        """In-flight tasks whose lease ran out before `now` (their agent is presumed lost)."""
        ...

    def renew(self, task_id: str, until: float) -> None:
        """Extend an in-flight task's lease."""
        ...

    def charge(self, agent_id: str, task: Task, runtime: float) -> None:
        """Tell the agent's queue discipline how long a task it dispatched actually ran."""
        ...

    # -- counters -----------------------------------------------------------------------------
    def incr(self, name: str, by: int = 1) -> int: ...

    def counters(self) -> dict[str, int]: ...

    def open_tasks(self) -> Iterable[Task]:
        """Every accepted task not yet finished, wherever it is."""
        ...

    # -- durability ---------------------------------------------------------------------------
    def flush(self, now: float) -> None:
        """Make every transition so far durable (one transaction); a no-op for memory."""
        ...

    def take_recovered(self, now: float) -> list[Task]:
        """Unfinished tasks a durable store found from a previous run, in submission order,
        unplaced, to submit again; each is handed out once."""
        ...

    def result(self, task_id: str) -> TaskRecord | None:
        """What the store recorded about a task, finished ones included while retained."""
        ...

    def close(self) -> None:
        """Flush and release what the store holds open (a file and its lock)."""
        ...

    def drop_cancellations(self) -> None:
        """Forget the cancellations not yet flushed: a balancer stopping without draining
        cancels its tasks in memory only, and a durable store keeps them unfinished for the
        next balancer on it to recover; a no-op for memory."""
        ...
