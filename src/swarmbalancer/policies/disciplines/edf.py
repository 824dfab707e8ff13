"""Earliest deadline first: the task whose absolute deadline is soonest goes next."""

from __future__ import annotations

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.base import KeyedDiscipline
from swarmbalancer.policies.disciplines.heap import Key


class EarliestDeadlineFirst(KeyedDiscipline):
    """Orders by `task.deadline`; tasks without one come after all others, in fifo order.

    Ties between equal deadlines are broken in fifo order (`enqueued_at`, then `seq`). Dispatching a
    batch released together in this order meets every deadline whenever any order does (Jackson).
    """

    def key(self, task: Task, now: float) -> Key:
        if task.deadline is None:
            return (1.0, 0.0, task.enqueued_at, task.seq)
        return (0.0, task.deadline, task.enqueued_at, task.seq)
