"""Leases handed to workers ahead of their free slots: what the Coordinator's `prefetch`
means across machines.

The Coordinator decides, as in an embedded swarm, which tasks wait at each agent beyond those it
runs (`prefetch` places per slot, under late binding); in-process those wait in the agent's
queue until a slot frees. A worker is a round trip away (leader -> Redis -> worker -> Redis ->
leader), so after each dispatch the leader also leases out the head of each worker's queue, up
to `capacity x prefetch` tasks: they wait in the worker's ready list, and the worker starts the
next the moment a slot frees (it takes no more than its free slots). When the Coordinator starts
one of them, its attempt awaits that lease (`LeaseDesk.lease`). A task that leaves the queue
otherwise (stolen, rescued, moved, cancelled, its worker removed) has its lease withdrawn: taken
out of the ready list and revoked, so if the worker took it meanwhile its report is late, and
discarded, while the task runs where the Coordinator sent it (at-least-once execution,
exactly-once completion).
"""

from __future__ import annotations

from swarmbalancer.cluster.agents import LeaseDesk
from swarmbalancer.model import TaskState
from swarmbalancer.store.base import Store

#: A prefetched task's states that keep its lease: queued at the worker, or started there (its
#: attempt's handler takes the lease over).
_KEPT = (TaskState.QUEUED, TaskState.RUNNING)


class Prefetcher:
    """Keeps each worker's leases-ahead in step with the head of its queue."""

    def __init__(self, desk: LeaseDesk, store: Store, per_slot: int) -> None:
        self._desk = desk
        self._store = store
        self._per_slot = per_slot

    def __call__(self) -> None:
        """Withdraw the leases whose task left its worker's queue; lease out the head of each
        queue up to the worker's allowance."""
        desk, store = self._desk, self._store
        for agent_id, held in list(desk.ahead.items()):
            for task_id in list(held):
                task = store.get(task_id)
                if task is None or task.agent_id != agent_id or task.state not in _KEPT:
                    desk.withdraw(agent_id, task_id)
        if not self._per_slot:
            return
        for agent in store.agents():
            if not agent.queued or agent.draining:
                continue
            ahead = desk.ahead.get(agent.id) or {}
            allowance = agent.spec.capacity * self._per_slot
            if len(ahead) >= allowance:
                continue
            head = getattr(store.queue(agent.id), "head", None)
            if head is None:
                continue
            taken = len(ahead)
            for task in head(allowance):
                if taken >= allowance:
                    break
                if task.id not in ahead:
                    desk.prefetch(agent.id, task)
                    taken += 1
