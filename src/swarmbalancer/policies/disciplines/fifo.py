"""First in, first out by the time a task entered the agent's queue."""

from __future__ import annotations

from collections.abc import Collection

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.base import Discipline
from swarmbalancer.policies.disciplines.monotone import MonotoneQueue


class Fifo(Discipline):
    """Orders by `task.enqueued_at`, then `task.seq`.

    Keying on when the task entered an agent's queue, not when it was pushed here, means a task
    stolen or migrated in goes ahead of every task that was queued after it was. Those keys
    mostly arrive in order, which a `MonotoneQueue` serves at the cost of a deque.
    """

    def __init__(self) -> None:
        self._queue = MonotoneQueue()

    def push(self, task: Task, now: float) -> None:
        self._queue.push(task.enqueued_at, task)

    def pop(self, now: float) -> Task | None:
        return self._queue.pop_task()

    def peek(self, now: float) -> Task | None:
        return self._queue.peek_task()

    def discard(self, task_id: str) -> Task | None:
        return self._queue.discard(task_id)

    def remove(self, task_ids: Collection[str]) -> list[Task]:
        """Remove present tasks and return them in fifo order (O(k log k))."""
        taken = [
            t for tid in dict.fromkeys(task_ids) if (t := self._queue.discard(tid)) is not None
        ]
        taken.sort(key=lambda t: (t.enqueued_at, t.seq))
        return taken

    def ordered(self) -> list[Task]:
        return self._queue.ordered()

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._queue
