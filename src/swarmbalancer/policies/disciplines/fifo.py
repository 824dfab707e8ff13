"""First in, first out by the time a task entered the agent's queue."""

from __future__ import annotations

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.base import KeyedDiscipline
from swarmbalancer.policies.disciplines.heap import Key


class Fifo(KeyedDiscipline):
    """Orders by `task.enqueued_at`, then `task.seq`.

    Keying on when the task entered the agent's queue, not when it entered this level, means a task
    that ages into the level goes ahead of every task that was queued after it did.
    """

    def key(self, task: Task, now: float) -> Key:
        return (task.enqueued_at, task.seq)
