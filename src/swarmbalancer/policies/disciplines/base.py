"""The interface every in-level scheduling discipline implements, and a base for static keys.

A discipline orders the tasks of one priority level of one agent. It is a pure data structure:
time comes in as `now`, and ties are always broken by `task.seq`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.heap import Key, TaskHeap


class Discipline(ABC):
    """Orders the queued tasks of one level; `pop` hands out the next task to dispatch."""

    #: True when `charge` matters, so callers must report the runtime of every popped task.
    uses_charge: bool = False

    @abstractmethod
    def push(self, task: Task, now: float) -> None:
        """Queue `task`; raises ValueError if a task with the same id is already queued."""

    @abstractmethod
    def pop(self, now: float) -> Task | None:
        """Remove and return the next task to dispatch, or None when empty."""

    @abstractmethod
    def peek(self, now: float) -> Task | None:
        """The task `pop(now)` would return, without removing it or changing any state."""

    @abstractmethod
    def discard(self, task_id: str) -> Task | None:
        """Remove the task with this id in O(1) amortized and return it; None if absent.

        Used when a task leaves the level for another one (aging), where order does not matter.
        """

    @abstractmethod
    def ordered(self) -> list[Task]:
        """A snapshot of the queued tasks in the order they would be dispatched."""

    @abstractmethod
    def __len__(self) -> int:
        """How many tasks are queued."""

    @abstractmethod
    def __contains__(self, task_id: object) -> bool:
        """True when a task with this id is queued."""

    def remove(self, task_ids: Collection[str]) -> list[Task]:
        """Remove the tasks with these ids that are present and return them in dispatch order."""
        present = [tid for tid in dict.fromkeys(task_ids) if tid in self]
        if len(present) > 1:
            rank = {t.id: i for i, t in enumerate(self.ordered())}
            present.sort(key=rank.__getitem__)
        return [task for tid in present if (task := self.discard(tid)) is not None]

    def charge(self, task: Task, actual_runtime: float) -> None:
        """Learn that `task`, which this discipline popped, ran for `actual_runtime`; no-op here."""
        del task, actual_runtime


class KeyedDiscipline(Discipline):
    """A discipline whose dispatch order is a key fixed when the task is pushed."""

    def __init__(self) -> None:
        self._heap = TaskHeap()

    @abstractmethod
    def key(self, task: Task, now: float) -> Key:
        """The sort key of `task` pushed at `now`; its last component is `task.seq`."""

    def push(self, task: Task, now: float) -> None:
        self._heap.push(self.key(task, now), task)

    def pop(self, now: float) -> Task | None:
        return self._heap.pop_task()

    def peek(self, now: float) -> Task | None:
        head = self._heap.peek()
        return None if head is None else head[1]

    def discard(self, task_id: str) -> Task | None:
        return self._heap.discard(task_id)

    def remove(self, task_ids: Collection[str]) -> list[Task]:
        """Remove present tasks and return them sorted by their keys (O(k log k))."""
        heap = self._heap
        keyed = [(key, t) for t in dict.fromkeys(task_ids) if (key := heap.key_of(t)) is not None]
        keyed.sort(key=lambda kt: kt[0])
        return [task for _, tid in keyed if (task := self.discard(tid)) is not None]

    def ordered(self) -> list[Task]:
        return self._heap.ordered()

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._heap


def tenant_weights_table(tenant_weights: Mapping[str, float]) -> dict[str, float]:
    """A private copy of per-tenant weights; raises ValueError unless every weight is > 0."""
    for tenant, weight in tenant_weights.items():
        if not weight > 0:
            raise ValueError(f"weight of tenant {tenant!r} must be > 0, got {weight!r}")
    return dict(tenant_weights)
