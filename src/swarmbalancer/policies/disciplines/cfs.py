"""Completely fair scheduling between tenants, after the Linux CFS: least virtual runtime first.

Each tenant (a task without one belongs to tenant "") has a virtual runtime that grows by the
runtime it received divided by its weight from `tenant_weights` (default 1.0). Pop serves the
tenant with the least virtual runtime among those with queued tasks (ties by tenant name), fifo
inside the tenant. Because many pops can happen before any task finishes, pop charges the expected
runtime at once (`task.estimate`, else the running mean of reported runtimes, else 1.0) and
`charge` later corrects it to the actual runtime. A tenant that becomes active starts at
`max(own vruntime, min vruntime)`, where min vruntime is that of the active tenants, or the last one
seen when none is active, so a newcomer or a returning sleeper cannot monopolise the level.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.base import Discipline, tenant_weights_table
from swarmbalancer.policies.disciplines.heap import TaskHeap

_MIN_STALE = 64


class CompletelyFair(Discipline):
    """Weighted fair sharing of actual runtime between tenants; call `charge` for every pop.

    A popped task stays in a small in-flight table until it is charged, so a driver using this
    discipline must report the runtime of every dispatched task (also of those that failed).
    """

    uses_charge = True

    def __init__(self, tenant_weights: Mapping[str, float]) -> None:
        self._weights = tenant_weights_table(tenant_weights)
        self._queues: dict[str, TaskHeap] = {}  # active tenants only: fifo of their tasks
        self._tenant_of: dict[str, str] = {}  # queued task id -> tenant
        self._vruntime: dict[str, float] = {}
        self._active: list[tuple[float, str, int]] = []  # (vruntime, tenant, version), lazy
        self._version: dict[str, int] = {}
        self._min_vruntime = 0.0
        self._inflight: dict[str, tuple[str, float]] = {}  # popped id -> (tenant, provisional)
        self._mean_runtime = 0.0
        self._samples = 0

    def __len__(self) -> int:
        return len(self._tenant_of)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tenant_of

    def vruntime(self, tenant: str | None) -> float:
        """The tenant's virtual runtime so far (0.0 for a tenant never seen)."""
        return self._vruntime.get(tenant or "", 0.0)

    def expected_runtime(self, task: Task) -> float:
        """What pop provisionally charges: the estimate, else the mean runtime seen, else 1.0."""
        if task.estimate is not None:
            return task.estimate
        return self._mean_runtime if self._samples else 1.0

    def push(self, task: Task, now: float) -> None:
        if task.id in self._tenant_of:
            raise ValueError(f"task {task.id!r} is already queued")
        tenant = task.tenant or ""
        queue = self._queues.get(tenant)
        if queue is None:
            floor = self._floor()
            self._vruntime[tenant] = max(self._vruntime.get(tenant, floor), floor)
            queue = self._queues[tenant] = TaskHeap()
            self._schedule(tenant)
        queue.push((task.enqueued_at, task.seq), task)
        self._tenant_of[task.id] = tenant

    def pop(self, now: float) -> Task | None:
        entry = self._head()
        if entry is None:
            return None
        heapq.heappop(self._active)
        tenant = entry[1]
        queue = self._queues[tenant]
        popped = queue.pop()
        assert popped is not None  # an active tenant always has a queued task
        task = popped[1]
        del self._tenant_of[task.id]
        expected = self.expected_runtime(task)
        self._vruntime[tenant] += expected / self._weight(tenant)
        self._inflight[task.id] = (tenant, expected)
        if queue:
            self._schedule(tenant)
        else:
            self._deactivate(tenant)
        head = self._head()
        seen = self._vruntime[tenant] if head is None else head[0]
        self._min_vruntime = max(self._min_vruntime, seen)
        return task

    def peek(self, now: float) -> Task | None:
        entry = self._head()
        if entry is None:
            return None
        head = self._queues[entry[1]].peek()
        assert head is not None  # an active tenant always has a queued task
        return head[1]

    def charge(self, task: Task, actual_runtime: float) -> None:
        """Correct the popping tenant's vruntime by (actual - provisional) / weight."""
        if not (actual_runtime >= 0 and math.isfinite(actual_runtime)):
            raise ValueError(f"actual_runtime must be a finite number >= 0, got {actual_runtime!r}")
        self._samples += 1
        self._mean_runtime += (actual_runtime - self._mean_runtime) / self._samples
        record = self._inflight.pop(task.id, None)
        if record is None:
            return
        tenant, provisional = record
        self._vruntime[tenant] += (actual_runtime - provisional) / self._weight(tenant)
        if tenant in self._queues:
            self._schedule(tenant)  # re-position it; the old heap entry goes stale

    def discard(self, task_id: str) -> Task | None:
        tenant = self._tenant_of.pop(task_id, None)
        if tenant is None:
            return None
        queue = self._queues[tenant]
        task = queue.discard(task_id)
        if not queue:
            self._deactivate(tenant)
        return task

    def ordered(self) -> list[Task]:
        """Simulate the pops on a copy of the vruntimes: O(n log n)."""
        fifos = {tenant: queue.ordered() for tenant, queue in self._queues.items()}
        heap = [(self._vruntime[tenant], tenant, 0) for tenant in fifos]
        heapq.heapify(heap)
        out: list[Task] = []
        while heap:
            vruntime, tenant, index = heapq.heappop(heap)
            fifo = fifos[tenant]
            task = fifo[index]
            out.append(task)
            if index + 1 < len(fifo):
                vruntime += self.expected_runtime(task) / self._weight(tenant)
                heapq.heappush(heap, (vruntime, tenant, index + 1))
        return out

    def _weight(self, tenant: str) -> float:
        return self._weights.get(tenant, 1.0)

    def _head(self) -> tuple[float, str, int] | None:
        """The valid active-heap entry of least vruntime, dropping stale ones on the way."""
        active, version = self._active, self._version
        while active:
            entry = active[0]
            if version.get(entry[1]) == entry[2]:
                return entry
            heapq.heappop(active)
        return None

    def _floor(self) -> float:
        """Where a tenant becoming active starts at least: the current min vruntime."""
        head = self._head()
        if head is None:
            return self._min_vruntime
        self._min_vruntime = max(self._min_vruntime, head[0])
        return head[0]

    def _schedule(self, tenant: str) -> None:
        version = self._version.get(tenant, 0) + 1
        self._version[tenant] = version
        heapq.heappush(self._active, (self._vruntime[tenant], tenant, version))
        if len(self._active) > 2 * len(self._queues) + _MIN_STALE:
            self._active = [(self._vruntime[t], t, self._version[t]) for t in self._queues]
            heapq.heapify(self._active)

    def _deactivate(self, tenant: str) -> None:
        del self._queues[tenant]
        self._version[tenant] = self._version.get(tenant, 0) + 1
