"""Weighted fair queueing between tenants, in its self-clocked variant (SCFQ, Golestani 1994).

Each tenant is a flow. On push a task gets the finish tag `F = max(V, F_last) + size / weight`,
where `F_last` is the tag of the flow's previous task, `size` is `task.estimate` (1.0 when unset)
and `weight` comes from `tenant_weights` (default 1.0). Pop takes the smallest tag, ties by `seq`.
The virtual time `V` is self-clocked: the finish tag of the most recently popped task, so no
fluid (GPS) reference system has to be simulated.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.base import KeyedDiscipline, tenant_weights_table
from swarmbalancer.policies.disciplines.heap import Key


class WeightedFairQueueing(KeyedDiscipline):
    """Self-clocked fair queueing: tenants share dispatched work in proportion to their weights."""

    def __init__(self, tenant_weights: Mapping[str, float]) -> None:
        super().__init__()
        self._weights = tenant_weights_table(tenant_weights)
        self._virtual_time = 0.0
        self._last_finish: dict[str, float] = {}
        self._queued: dict[str, int] = {}

    @property
    def virtual_time(self) -> float:
        """V: the finish tag of the most recently popped task."""
        return self._virtual_time

    def key(self, task: Task, now: float) -> Key:
        flow = task.tenant or ""
        size = 1.0 if task.estimate is None else task.estimate
        start = max(self._virtual_time, self._last_finish.get(flow, 0.0))
        finish = start + size / self._weights.get(flow, 1.0)
        return (finish, task.seq)

    def push(self, task: Task, now: float) -> None:
        key = self.key(task, now)
        self._heap.push(key, task)
        flow = task.tenant or ""
        self._last_finish[flow] = key[0]
        self._queued[flow] = self._queued.get(flow, 0) + 1

    def pop(self, now: float) -> Task | None:
        popped = self._heap.pop()
        if popped is None:
            return None
        key, task = popped
        self._virtual_time = key[0]
        self._left(task)
        return task

    def discard(self, task_id: str) -> Task | None:
        """Remove a task; a flow left with nothing queued is not charged for what was taken away."""
        task = self._heap.discard(task_id)
        if task is not None:
            self._left(task)
        return task

    def _left(self, task: Task) -> None:
        flow = task.tenant or ""
        left = self._queued[flow] - 1
        if left:
            self._queued[flow] = left
        else:
            # With nothing queued, the flow's next tag starts from V, as if it had never been here.
            del self._queued[flow]
            self._last_finish.pop(flow, None)
