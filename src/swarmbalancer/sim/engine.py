"""A tiny exact event loop in the manner of simpy's core: a heap of (time, seq, action).

The sequence number makes equal times resolve in scheduling order on every run, so a simulation
is bit-for-bit repeatable.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class EventLoop:
    """Virtual time that jumps from one scheduled action to the next; `events` counts the actions
    run (brought up to date whenever `run` returns)."""

    __slots__ = ("_heap", "_seq", "events", "now")

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self.events = 0

    def at(self, when: float, action: Callable[..., Any], *args: Any) -> None:
        """Run `action(*args)` at virtual time `when` (not before now)."""
        if when < self.now:
            when = self.now
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, action, args))

    def run(self, until: float | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Process actions in time order until none are left, `until` is passed or `stop()`."""
        heap = self._heap
        pop = heapq.heappop
        events = self.events
        try:
            while heap:
                when, _, action, args = heap[0]
                if until is not None and when > until:
                    self.now = until
                    return
                pop(heap)
                self.now = when
                events += 1
                action(*args)
                if stop is not None and stop():
                    return
        finally:
            self.events = events

    def __len__(self) -> int:
        return len(self._heap)
