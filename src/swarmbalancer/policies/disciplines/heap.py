"""A min-heap of tasks under keys fixed at insertion, with lazy removal by task id.

Removal only forgets the task in a side table; its heap entry is skipped when it surfaces, and the
heap is rebuilt once dead entries outnumber live ones, so every operation is O(log n) amortized.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from swarmbalancer.model import Task

#: A sort key; the last component should be `task.seq` so that keys never tie.
Key = tuple[float, ...]
# Flat (*key, token, task): flat tuples compare faster than nested ones; the unique token keeps
# the comparison from ever reaching the task.
_Entry = tuple[Any, ...]

_MIN_GARBAGE = 64


class TaskHeap:
    """Tasks ordered by a key given at `push`; the smallest key comes out first."""

    __slots__ = ("_garbage", "_heap", "_live", "_tokens")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, _Entry] = {}
        self._garbage = 0
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live

    def __iter__(self) -> Iterator[Task]:
        """The live tasks in no particular order."""
        return (entry[-1] for entry in self._live.values())

    def push(self, key: Key, task: Task) -> None:
        """Insert `task` under `key`; a task id may be present only once."""
        if task.id in self._live:
            raise ValueError(f"task {task.id!r} is already queued")
        self._tokens += 1
        entry = (*key, self._tokens, task)
        self._live[task.id] = entry
        heapq.heappush(self._heap, entry)

    def peek(self) -> tuple[Key, Task] | None:
        """The smallest key and its task, without removing it; None when empty."""
        heap, live = self._heap, self._live
        while heap:
            entry = heap[0]
            task: Task = entry[-1]
            if live.get(task.id) is entry:
                return entry[:-2], task
            heapq.heappop(heap)
            self._garbage -= 1
        return None

    def pop(self) -> tuple[Key, Task] | None:
        """Remove and return the smallest key and its task; None when empty."""
        entry = self._pop_entry()
        return None if entry is None else (entry[:-2], entry[-1])

    def pop_task(self) -> Task | None:
        """Remove and return the task of the smallest key (no key copy); None when empty."""
        entry = self._pop_entry()
        return None if entry is None else entry[-1]

    def _pop_entry(self) -> _Entry | None:
        """Remove the smallest live entry, dropping dead ones on the way."""
        heap, live = self._heap, self._live
        while heap:
            entry = heapq.heappop(heap)
            if live.get(entry[-1].id) is entry:
                del live[entry[-1].id]
                return entry
            self._garbage -= 1
        return None

    def discard(self, task_id: str) -> Task | None:
        """Forget the task with this id in O(1) amortized; returns it, or None if absent."""
        entry = self._live.pop(task_id, None)
        if entry is None:
            return None
        self._garbage += 1
        if self._garbage > _MIN_GARBAGE and self._garbage > len(self._live):
            self._heap = list(self._live.values())
            heapq.heapify(self._heap)
            self._garbage = 0
        task: Task = entry[-1]
        return task

    def key_of(self, task_id: str) -> Key | None:
        """The key a live task was pushed with, or None if absent."""
        entry = self._live.get(task_id)
        return None if entry is None else entry[:-2]

    def ordered(self) -> list[Task]:
        """A snapshot of the live tasks, smallest key first (O(n log n))."""
        return [entry[-1] for entry in sorted(self._live.values(), key=_without_task)]


def _without_task(entry: _Entry) -> _Entry:
    return entry[:-1]
