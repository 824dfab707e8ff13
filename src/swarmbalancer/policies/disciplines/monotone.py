"""A queue of tasks keyed by (time, task.seq) that costs a deque when keys arrive in order.

Queues fill in time order almost always: a task enters an agent's queue at `now`, and `now` only
grows. Only a task stolen, migrated or aged in keeps an older time. So in-order keys go to a deque
(O(1), and nothing per task that the garbage collector must track), the rare older key goes to a
`TaskHeap`, and a pop takes the smaller of the two heads. Removal is lazy in both.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.heap import Key, TaskHeap

_MIN_GARBAGE = 64


class MonotoneQueue:
    """Tasks ordered by `(time, task.seq)`, smallest first; `time` is given at `push`."""

    __slots__ = (
        "_last_seq",
        "_last_time",
        "_late",
        "_late_count",
        "_live",
        "_order",
        "_tasks",
        "_tokens",
    )

    def __init__(self) -> None:
        self._order: deque[float] = deque()  # time, token, time, token, ... in key order
        self._tasks: dict[float, Task] = {}  # token -> task of each live deque entry
        self._live: dict[str, float] = {}  # task id -> its token
        self._late = TaskHeap()  # entries whose key is below the deque's last key
        self._late_count = 0
        self._last_time = -math.inf  # the key of the last entry appended to the deque
        self._last_seq = -1
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._live) + self._late_count

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live or task_id in self._late

    def __iter__(self) -> Iterator[Task]:
        """The queued tasks in no particular order."""
        yield from self._tasks.values()
        yield from self._late

    def push(self, time: float, task: Task) -> None:
        """Queue `task` under the key `(time, task.seq)`; a task id may be present only once."""
        task_id, seq, order = task.id, task.seq, self._order
        if task_id in self._live or (self._late_count and task_id in self._late):
            raise ValueError(f"task {task_id!r} is already queued")
        if not self._tasks and order:
            order.clear()  # only dead entries left: the deque may restart at any key
        last_time = self._last_time
        if not order or time > last_time or (time == last_time and seq > self._last_seq):
            self._tokens = token = self._tokens + 1
            order.append(time)
            order.append(token)
            self._tasks[token] = task
            self._live[task_id] = token
            self._last_time, self._last_seq = time, seq
        else:
            self._late.push((time, task.seq), task)
            self._late_count += 1

    def peek(self) -> tuple[Key, Task] | None:
        """The smallest key and its task, without removing it; None when empty."""
        token = self._head()
        late = self._late.peek() if self._late_count else None
        if token is None:
            return late
        task = self._tasks[token]
        key = (self._order[0], task.seq)
        return late if late is not None and late[0] < key else (key, task)

    def peek_task(self) -> Task | None:
        """The task `pop_task` would return, without removing it (no key copy); None when empty."""
        token = self._head()
        if token is None:
            late = self._late.peek() if self._late_count else None
            return None if late is None else late[1]
        task = self._tasks[token]
        if self._late_count:
            late = self._late.peek()
            if late is not None and late[0] < (self._order[0], task.seq):
                return late[1]
        return task

    def pop_task(self) -> Task | None:
        """Remove and return the task of the smallest key; None when empty."""
        token = self._head()
        if token is None:
            return self._pop_late()
        order = self._order
        task = self._tasks[token]
        if self._late_count:
            late = self._late.peek()
            if late is not None and late[0] < (order[0], task.seq):
                return self._pop_late()
        order.popleft()
        order.popleft()
        del self._tasks[token]
        del self._live[task.id]
        return task

    def discard(self, task_id: str) -> Task | None:
        """Forget the task with this id in O(1) amortized; returns it, or None if absent."""
        token = self._live.pop(task_id, None)
        if token is None:
            task = self._late.discard(task_id)
            if task is not None:
                self._late_count -= 1
            return task
        task = self._tasks.pop(token)
        order = self._order
        if order[1] == token:  # the head, as when tasks leave in order: nothing left behind
            order.popleft()
            order.popleft()
        elif len(order) > 4 * len(self._tasks) + 2 * _MIN_GARBAGE:
            self._compact()
        return task

    def _pop_late(self) -> Task | None:
        task = self._late.pop_task()
        if task is not None:
            self._late_count -= 1
        return task

    def ordered(self) -> list[Task]:
        """A snapshot of the queued tasks, smallest key first (O(n log n))."""
        keyed = [(self._order[i], task.seq, task) for i, task in self._live_entries()]
        keyed.extend((key[0], task.seq, task) for key, task in self._late_items())
        keyed.sort(key=lambda entry: (entry[0], entry[1]))
        return [entry[2] for entry in keyed]

    def _head(self) -> float | None:
        """The token of the first live deque entry, dropping dead ones; None when none."""
        order, tasks = self._order, self._tasks
        while order:
            token = order[1]
            if token in tasks:
                return token
            order.popleft()
            order.popleft()
        return None

    def _compact(self) -> None:
        """Drop dead entries: removals in the middle of the deque leave them behind."""
        order, tasks = self._order, self._tasks
        kept: deque[float] = deque()
        for i in range(0, len(order), 2):
            if order[i + 1] in tasks:
                kept.append(order[i])
                kept.append(order[i + 1])
        self._order = kept

    def _live_entries(self) -> Iterator[tuple[int, Task]]:
        order, tasks = self._order, self._tasks
        for i in range(0, len(order), 2):
            task = tasks.get(order[i + 1])
            if task is not None:
                yield i, task

    def _late_items(self) -> Iterator[tuple[Key, Task]]:
        late = self._late
        for task in late:
            key = late.key_of(task.id)
            assert key is not None
            yield key, task
